"""Every kind of map change reaches another worker's snapshot as a delta, without a full reload.

"Another worker" is this process with its own-change records dropped: its snapshot arrays stay,
and it learns of the change only from the delta published to Redis after commit (the commit is
simulated with ``captureOnCommitCallbacks(execute=True)``). Each test asserts that no full load
ran (the loader's counter) and that catching up took a handful of queries, none of them a bulk
read of the map, then that the map, and a decision made on it, follow the change.
"""

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dcim.models import Cable, Device, DeviceRole, Interface
from virtualization.models import Cluster, ClusterType, VirtualMachine

from business_application.correlation.kinds import (
    APPLICATION,
    CABLE,
    CARRIES,
    CLUSTER,
    CLUSTER_MEMBER,
    DEPENDS,
    DEVICE,
    HOSTS,
    REDUNDANT,
    SERVICE,
    SUPPORTS,
    VM,
)
from business_application.models import (
    BusinessApplication,
    Event,
    EventCrit,
    EventStatus,
    Incident,
    ServiceDependency,
    TechnicalService,
    UnannouncedMapChange,
)
from business_application.services import graph_loader
from business_application.services.graph_loader import MapDeltas, current_map, forget_map, stats

from .maps import build, snapshot_edges

MAP = """
name: snapshot-deltas
graph:
  services: [Database Service, Web Service, Batch Service]
  dependencies:
    - {service: Web Service, depends_on: Database Service}
  clusters:
    - {name: CL-A, services: []}
    - {name: CL-B, services: []}
  devices:
    - {name: SWITCH-01, role: switch}
    - {name: DB-01, role: server, services: [Database Service], links: [SWITCH-01]}
    - {name: WEB-01, role: server, services: [Web Service]}
    - {name: BATCH-01, role: server, services: [Batch Service]}
    - {name: HV-01, role: server, cluster: CL-A}
  vms:
    - {name: VM-01, cluster: CL-A, services: [Batch Service]}
"""

#: At most this many queries to catch up with one delta: reading the version, the deltas, and the
#: rows they name (never the whole map).
CATCH_UP_QUERIES = 6
BULK_TABLES = ('"dcim_device"', '"virtualization_virtualmachine"', '"dcim_cabletermination"')


class SnapshotDeltaTest(TestCase):
    def setUp(self):
        self.objects = build(MAP)
        forget_map()
        current_map()  # this worker's snapshot, loaded in full once
        self.loads = stats()['full_loads']

    def tearDown(self):
        forget_map()

    def other_worker(self):
        """This worker's own-change records dropped: what it sees now came through Redis."""
        graph_loader._local.clear()

    def change(self, make_change):
        """Commit a change, then let the other worker catch up; returns its map."""
        self.other_worker()
        with self.captureOnCommitCallbacks(execute=True):
            make_change()
        self.other_worker()
        batches = stats()['delta_batches']
        with CaptureQueriesContext(connection) as queries:
            service_map = current_map()
        self.assertEqual(stats()['full_loads'], self.loads, 'the change was read with a full reload')
        self.assertEqual(stats()['delta_batches'], batches + 1)
        self.assertLessEqual(len(queries), CATCH_UP_QUERIES, [q['sql'] for q in queries])
        for query in queries:
            self.assertTrue(
                ' IN (' in query['sql'] or not any(table in query['sql'] for table in BULK_TABLES), query['sql']
            )
        return service_map

    def node(self, service_map, kind, label):
        return service_map.node(kind, self.objects[label].pk)

    def edges(self):
        return snapshot_edges()

    def services(self, service_map, label, kind=DEVICE):
        node = self.node(service_map, kind, label)
        return sorted(service_map.names[n] for n in service_map.services_of(node))

    def event(self, label, dedup, criticallity=EventCrit.CRITICAL):
        obj = self.objects[label]
        return Event.objects.create(
            message='x',
            status=EventStatus.TRIGGERED,
            criticallity=criticallity,
            content_type=ContentType.objects.get_for_model(obj),
            object_id=obj.pk,
            dedup_id=dedup,
            last_seen_at=timezone.now(),
        )

    # Dependencies

    def test_a_new_dependency_reaches_the_snapshot_and_the_next_decision(self):
        edge = ('service:Database Service', 'service:Batch Service', DEPENDS)
        current_map()
        self.assertNotIn(edge, self.edges())
        self.change(
            lambda: ServiceDependency.objects.create(
                name='batch needs db',
                upstream_service=self.objects['service:Database Service'],
                downstream_service=self.objects['service:Batch Service'],
            )
        )
        self.assertIn(edge, self.edges())
        # The decision after the change links the batch server's alert to the database's incident.
        self.other_worker()
        self.event('device:DB-01', 'db')
        self.event('device:BATCH-01', 'batch', EventCrit.WARNING)
        self.assertEqual(Incident.objects.count(), 1)
        self.assertEqual(stats()['full_loads'], self.loads)

    def test_a_removed_dependency_leaves_the_snapshot_and_the_next_decision(self):
        dependency = ServiceDependency.objects.get()
        edge = ('service:Database Service', 'service:Web Service', DEPENDS)
        current_map()
        self.assertIn(edge, self.edges())
        self.change(dependency.delete)
        self.assertNotIn(edge, self.edges())
        self.other_worker()
        self.event('device:DB-01', 'db')
        self.event('device:WEB-01', 'web', EventCrit.WARNING)
        self.assertEqual(Incident.objects.count(), 2)
        self.assertEqual(stats()['full_loads'], self.loads)

    def test_a_dependency_turned_redundant_changes_its_edge(self):
        dependency = ServiceDependency.objects.get()

        def make_redundant():
            dependency.dependency_type = 'redundancy'
            dependency.save()

        self.change(make_redundant)
        self.assertIn(('service:Database Service', 'service:Web Service', REDUNDANT), self.edges())
        self.assertNotIn(('service:Database Service', 'service:Web Service', DEPENDS), self.edges())

    # Memberships

    def test_service_membership_added_removed_and_cleared(self):
        batch = self.objects['service:Batch Service']
        web = self.objects['device:WEB-01']
        service_map = self.change(lambda: batch.devices.add(web))
        self.assertEqual(self.services(service_map, 'device:WEB-01'), ['Batch Service', 'Web Service'])
        service_map = self.change(lambda: web.technical_services.remove(batch))  # the reverse side
        self.assertEqual(self.services(service_map, 'device:WEB-01'), ['Web Service'])
        service_map = self.change(lambda: web.technical_services.clear())
        self.assertEqual(self.services(service_map, 'device:WEB-01'), [])

    def test_application_membership(self):
        def create():
            app = BusinessApplication.objects.create(appcode='APP-1', name='Shop')
            self.objects['app:APP-1'] = app
            app.technical_services.add(self.objects['service:Web Service'])  # the reverse side

        service_map = self.change(create)
        app = self.objects['app:APP-1']
        self.assertIsNotNone(self.node(service_map, APPLICATION, 'app:APP-1'))
        self.assertIn(('service:Web Service', 'app:APP-1', SUPPORTS), self.edges())
        self.change(lambda: app.devices.add(self.objects['device:BATCH-01']))
        self.assertIn(('device:BATCH-01', 'app:APP-1', CARRIES), self.edges())
        self.change(lambda: app.devices.clear())
        self.assertNotIn(('device:BATCH-01', 'app:APP-1', CARRIES), self.edges())

    # Placement

    def test_vm_placement_moves_between_clusters_and_onto_a_host(self):
        vm = self.objects['vm:VM-01']
        cluster_b = Cluster.objects.get(name='CL-B')
        self.objects['cluster:CL-B'] = cluster_b
        current_map()
        self.assertIn(('cluster:CL-A', 'vm:VM-01', HOSTS), self.edges())

        def move(**fields):
            for name, value in fields.items():
                setattr(vm, name, value)
            vm.save()

        self.change(lambda: move(cluster=cluster_b))
        self.assertNotIn(('cluster:CL-A', 'vm:VM-01', HOSTS), self.edges())
        self.assertIn(('cluster:CL-B', 'vm:VM-01', HOSTS), self.edges())
        hv = self.objects['device:HV-01']
        self.change(lambda: move(cluster=Cluster.objects.get(name='CL-A'), device=hv))
        self.assertEqual(
            {edge for edge in self.edges() if edge[1] == 'vm:VM-01' and edge[2] == HOSTS},
            {('device:HV-01', 'vm:VM-01', HOSTS)},
        )

    def test_a_device_joining_a_cluster(self):
        batch = self.objects['device:BATCH-01']

        def join():
            batch.cluster = Cluster.objects.get(name='CL-A')
            batch.save()

        self.change(join)
        self.assertIn(('device:BATCH-01', 'cluster:CL-A', CLUSTER_MEMBER), self.edges())

    # Cables

    def test_a_cable_created_then_deleted(self):
        switch, web = self.objects['device:SWITCH-01'], self.objects['device:WEB-01']
        ports = [Interface.objects.create(device=device, name='eth9', type='1000base-t') for device in (switch, web)]
        edge = ('device:SWITCH-01', 'device:WEB-01', CABLE)
        current_map()
        self.assertNotIn(edge, self.edges())
        cable = Cable(a_terminations=[ports[0]], b_terminations=[ports[1]])
        self.change(cable.save)
        self.assertIn(edge, self.edges())
        self.change(Cable.objects.get(pk=cable.pk).delete)
        self.assertNotIn(edge, self.edges())

    def test_a_device_role_change_turns_its_cables_around(self):
        db = self.objects['device:DB-01']
        switch = self.objects['device:SWITCH-01']
        current_map()
        self.assertIn(('device:SWITCH-01', 'device:DB-01', CABLE), self.edges())

        def swap():
            server_role, switch_role = db.role, switch.role
            switch.role = server_role
            switch.save()
            db.role = switch_role
            db.save()

        self.change(swap)
        self.assertIn(('device:DB-01', 'device:SWITCH-01', CABLE), self.edges())
        self.assertNotIn(('device:SWITCH-01', 'device:DB-01', CABLE), self.edges())

    def test_a_cable_between_two_tiers_of_switches_and_a_role_change_turning_it(self):
        switch, web = self.objects['device:SWITCH-01'], self.objects['device:WEB-01']
        core = DeviceRole.objects.create(name='Core switch', slug='core-switch')
        with override_settings(BUSINESS_APP_NETWORK_TIERS=['core-switch', 'switch']):
            forget_map()
            current_map()  # the tiers change the graph: loaded once more, in full, before the changes
            self.loads = stats()['full_loads']
            ports = [Interface.objects.create(device=d, name='eth8', type='1000base-t') for d in (switch, web)]

            def promote():  # WEB-01 becomes a core switch, cabled to SWITCH-01
                web.role = core
                web.save()
                Cable(a_terminations=[ports[0]], b_terminations=[ports[1]]).save()

            self.change(promote)
            self.assertIn(('device:WEB-01', 'device:SWITCH-01', CABLE), self.edges())
            self.assertIn(('device:SWITCH-01', 'device:DB-01', CABLE), self.edges())

            def demote():  # the same role as SWITCH-01's: one tier, so the cable has no direction
                web.role = switch.role
                web.save()

            self.change(demote)
            self.assertFalse({e for e in self.edges() if {e[0], e[1]} == {'device:WEB-01', 'device:SWITCH-01'}})

    # Objects created, renamed and deleted

    def test_objects_created_renamed_and_deleted(self):
        site, device_type = self.objects['device:WEB-01'].site, self.objects['device:WEB-01'].device_type
        role = self.objects['device:WEB-01'].role
        created = {}

        def create():
            created['service'] = TechnicalService.objects.create(name='New Service')
            created['device'] = Device.objects.create(name='NEW-01', role=role, device_type=device_type, site=site)
            created['device'].technical_services.add(created['service'])
            created['cluster'] = Cluster.objects.create(name='CL-NEW', type=ClusterType.objects.get())
            created['vm'] = VirtualMachine.objects.create(name='VM-NEW', cluster=created['cluster'])

        service_map = self.change(create)
        new_device = service_map.node(DEVICE, created['device'].pk)
        self.assertEqual(service_map.labels[new_device], 'device:NEW-01')
        self.assertEqual([service_map.names[n] for n in service_map.services_of(new_device)], ['New Service'])
        self.assertIsNotNone(service_map.node(VM, created['vm'].pk))

        def rename():
            created['device'].name = 'NEW-02'
            created['device'].save()

        service_map = self.change(rename)
        self.assertEqual(service_map.labels[service_map.node(DEVICE, created['device'].pk)], 'device:NEW-02')
        self.assertEqual(service_map.by_label['device:NEW-02'], new_device)
        self.assertNotIn('device:NEW-01', service_map.by_label)

        def delete():
            created['vm'].delete()
            created['cluster'].delete()
            created['device'].delete()
            created['service'].delete()

        keys = {kind: created[name].pk for kind, name in ((VM, 'vm'), (CLUSTER, 'cluster'), (DEVICE, 'device'))}
        service_pk = created['service'].pk
        service_map = self.change(delete)
        for kind, pk in keys.items():
            self.assertIsNone(service_map.node(kind, pk))
        self.assertIsNone(service_map.node(SERVICE, service_pk))
        self.assertEqual(service_map.graph.footprint(new_device), [new_device])  # no edge left

    def test_a_deleted_service_takes_its_dependencies_along(self):
        web = self.objects['service:Web Service']
        service_map = self.change(web.delete)
        self.assertIsNone(service_map.node(SERVICE, web.pk))
        self.assertFalse([edge for edge in self.edges() if 'service:Web Service' in edge])
        self.assertEqual(self.services(service_map, 'device:WEB-01'), [])

    def test_lock_keys_agree_with_a_fresh_load(self):
        """Node ids differ between a delta-fed and a reloaded snapshot; the decision locks must not."""
        created = {}

        def create():
            created['service'] = TechnicalService.objects.create(name='Late Service')
            ServiceDependency.objects.create(
                name='late',
                upstream_service=self.objects['service:Batch Service'],
                downstream_service=created['service'],
            )

        service_map = self.change(create)
        fresh = graph_loader.load_map()
        for kind, label in ((SERVICE, 'service:Batch Service'), (DEVICE, 'device:DB-01'), (VM, 'vm:VM-01')):
            self.assertEqual(
                service_map.component(self.node(service_map, kind, label)),
                fresh.component(fresh.node(kind, self.objects[label].pk)),
            )
        self.assertEqual(
            service_map.component(service_map.node(SERVICE, created['service'].pk)),
            service_map.component(self.node(service_map, VM, 'vm:VM-01')),
        )

    # Falling back to a full load

    def test_a_gap_in_the_deltas_falls_back_to_a_full_reload(self):
        self.other_worker()
        with self.captureOnCommitCallbacks(execute=True):
            ServiceDependency.objects.get().delete()
        _, version = MapDeltas.head()
        MapDeltas.client().zremrangebyscore(MapDeltas.DELTAS, version, version)  # trimmed away
        self.other_worker()
        current_map()
        self.assertEqual(stats()['full_loads'], self.loads + 1)
        self.assertNotIn(('service:Database Service', 'service:Web Service', DEPENDS), self.edges())

    def test_a_flushed_redis_falls_back_to_a_full_reload(self):
        client = MapDeltas.client()
        client.delete(MapDeltas.VERSION, MapDeltas.EPOCH, MapDeltas.DELTAS)
        self.other_worker()
        with self.captureOnCommitCallbacks(execute=True):
            ServiceDependency.objects.get().delete()
        self.other_worker()
        current_map()
        self.assertEqual(stats()['full_loads'], self.loads + 1)
        self.assertNotIn(('service:Database Service', 'service:Web Service', DEPENDS), self.edges())

    def test_a_bulk_change_asks_for_a_full_reload(self):
        with self.captureOnCommitCallbacks(execute=True):
            graph_loader.bump_map_version()
        self.other_worker()
        current_map()
        self.assertEqual(stats()['full_loads'], self.loads + 1)

    # This worker's own changes

    def test_own_change_is_seen_before_commit_and_forgotten_after_rollback(self):
        batch = self.objects['service:Batch Service']
        try:
            with transaction.atomic():
                ServiceDependency.objects.create(
                    name='batch needs db',
                    upstream_service=self.objects['service:Database Service'],
                    downstream_service=batch,
                )
                current_map()
                self.assertIn(('service:Database Service', 'service:Batch Service', DEPENDS), self.edges())
                raise RuntimeError('roll back')
        except RuntimeError:
            pass
        current_map()
        self.assertNotIn(('service:Database Service', 'service:Batch Service', DEPENDS), self.edges())
        self.assertEqual(stats()['full_loads'], self.loads)


#: A Redis that does not answer: nothing listens on this loopback port.
DEAD_REDIS = {
    'default': {
        'BACKEND': 'django_redis.cache.RedisCache',
        'LOCATION': 'redis://127.0.0.1:1/0',
        'OPTIONS': {'CLIENT_CLASS': 'django_redis.client.DefaultClient', 'SOCKET_CONNECT_TIMEOUT': 1},
    }
}


class UnannouncedChangeTest(TestCase):
    """A map change committed while Redis does not answer is announced (as a full reload, since its delta was never
    published) by the process that made it, at its next decision once Redis answers again."""

    def change_while_redis_is_down(self):
        """Add a service while Redis does not answer; the map version before it."""
        from django.test import override_settings

        build(MAP)
        current_map()
        _, before = MapDeltas.head()
        self.addCleanup(setattr, graph_loader, '_unannounced', False)
        with override_settings(CACHES=DEAD_REDIS), self.captureOnCommitCallbacks(execute=True):
            TechnicalService.objects.create(name='Added While Redis Was Down', service_type='technical')
        return before

    def test_a_change_made_while_redis_was_down_is_announced_once_it_answers(self):
        before = self.change_while_redis_is_down()
        self.assertEqual(MapDeltas.head()[1], before, 'nothing reached Redis')
        self.assertTrue(graph_loader._unannounced)

        service_map = current_map()  # Redis answers again
        _, after = MapDeltas.head()
        self.assertEqual(after, before + 1)
        self.assertEqual(MapDeltas.since(before, after), [[[graph_loader.RELOAD]]])
        self.assertFalse(graph_loader._unannounced)
        self.assertIn('service:Added While Redis Was Down', service_map.by_label)
        self.assertFalse(UnannouncedMapChange.objects.exists())

    def test_a_change_whose_process_stopped_is_announced_by_the_next_full_load(self):
        """The database keeps the unannounced change: should its process stop before Redis answers again, the next
        process to load the map in full (a restarted worker, say) announces it, once, and loads only once."""
        before = self.change_while_redis_is_down()
        self.assertTrue(UnannouncedMapChange.objects.exists())

        graph_loader._unannounced = False  # the process that made the change stops
        forget_map()  # another process starts
        loads = graph_loader.stats()['full_loads']
        service_map = current_map()
        _, after = MapDeltas.head()
        self.assertEqual(MapDeltas.since(before, after), [[[graph_loader.RELOAD]]])
        self.assertFalse(UnannouncedMapChange.objects.exists())
        self.assertIn('service:Added While Redis Was Down', service_map.by_label)
        self.assertIs(current_map(), service_map, 'the reload it announced is the load it made')
        self.assertEqual(graph_loader.stats()['full_loads'], loads + 1)
