"""Attack 11: a map change that reaches the database but never reaches another worker's snapshot.

"Another worker" is this process with its own-change records dropped (as in ``test_snapshot_deltas``): it learns of
a committed change only from the delta published to Redis. After the change, its snapshot must hold the edges a
fresh full load of the same database gives.
"""

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone

from dcim.models import Device, DeviceRole

from business_application.models import Event, EventCrit, EventStatus, TechnicalService
from business_application.services.graph_loader import current_map

from .maps import FollowedMapTest, fresh_edges
from .maps import snapshot_edges as live_edges

MAP = """
name: attack11-role-slug
graph:
  services: [Web Service]
  devices:
    - {name: SWITCH-01, role: switch}
    - {name: WEB-01, role: server, services: [Web Service], links: [SWITCH-01]}
"""


class RoleSlugChangeTest(FollowedMapTest):
    MAP = MAP

    def test_a_device_role_slug_edit_reaches_other_workers_snapshots(self):
        """The snapshot reads each device's role by its slug (``role__slug``) and a cable's direction depends on
        whether that slug is a network role. Editing the role itself (its slug, on the role's page) changes no
        Device row, so no delta is published: every other worker keeps deciding with the switch as the upstream of
        the server it serves, while a worker that loads the map afresh has no such edge."""
        switch = self.objects['device:SWITCH-01']
        before = live_edges()
        self.assertTrue([e for e in before if e[:2] == ('device:SWITCH-01', 'device:WEB-01')])

        def rename():
            role = DeviceRole.objects.get(pk=switch.role_id)
            role.slug = 'patch-panel'  # no longer one of the network roles
            role.save()

        followed = self.other_worker_follows(rename)
        self.assertEqual(followed, fresh_edges(), 'a worker that was running keeps an edge a fresh load does not have')


ROLLBACK_MAP = """
name: attack11-rollback
graph:
  services: [Database Service, Web Service]
  dependencies:
    - {service: Web Service, depends_on: Database Service}
  devices:
    - {name: SWITCH-01, role: switch}
    - {name: DB-01, role: server, services: [Database Service], links: [SWITCH-01]}
    - {name: WEB-01, role: server, services: [Web Service], links: [SWITCH-01]}
"""


class RolledBackDeletionTest(FollowedMapTest):
    MAP = ROLLBACK_MAP

    def decide_an_alert(self):
        """An alert stored and decided in the current transaction (synchronous intake)."""
        Event.objects.create(
            message='db down',
            status=EventStatus.TRIGGERED,
            criticallity=EventCrit.CRITICAL,
            content_type=ContentType.objects.get_for_model(Device),
            object_id=self.objects['device:DB-01'].pk,
            dedup_id='db-down',
            last_seen_at=timezone.now(),
        )

    def test_a_device_deletion_rolled_back_after_a_decision_leaves_the_device_with_its_edges(self):
        """A transaction deletes a device, a decision in it reads the map (this process follows its own change
        before commit: the device's node goes, and with it every edge touching it), then the transaction rolls
        back. The snapshot then re-reads the device from its record and gives it a new node, but nothing re-reads
        what hung off the old one: its service membership and its cable. Until a full reload, this process decides
        as if WEB-01 carried no service and hung off no switch."""
        before = live_edges()
        self.assertIn(('device:WEB-01', 'service:Web Service'), {e[:2] for e in before})
        web = self.objects['device:WEB-01']
        try:
            with transaction.atomic():
                Device.objects.get(pk=web.pk).delete()
                # An alert stored in the same transaction is correlated there (synchronous intake): its decision
                # reads the map, which follows this transaction's own change.
                self.decide_an_alert()
                raise RuntimeError('roll back')
        except RuntimeError:
            pass
        self.assertTrue(Device.objects.filter(pk=web.pk).exists())
        current_map()
        after = live_edges()
        self.assertEqual(after, before, 'the rolled-back deletion left the device without its edges')

    def test_a_service_deletion_rolled_back_leaves_its_dependencies_and_carriers(self):
        """The same for a service: its dependency rows come back through their own records, but the device that
        carries it does so through a membership row that the cascade deleted without a signal."""
        before = live_edges()
        self.assertIn(('device:WEB-01', 'service:Web Service'), {e[:2] for e in before})
        self.assertIn(('service:Database Service', 'service:Web Service'), {e[:2] for e in before})
        try:
            with transaction.atomic():
                TechnicalService.objects.get(name='Web Service').delete()
                self.decide_an_alert()
                self.assertNotIn('service:Web Service', {e[1] for e in live_edges()})
                raise RuntimeError('roll back')
        except RuntimeError:
            pass
        current_map()
        self.assertEqual(live_edges(), before, 'the rolled-back deletion left the service without its edges')
