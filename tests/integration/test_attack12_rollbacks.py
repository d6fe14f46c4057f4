"""Attack 12: rolled-back deletions of clusters, VMs and applications, in savepoints, against a fresh load."""

from django.db import transaction

from dcim.models import Device
from virtualization.models import Cluster, VirtualMachine

from business_application.models import BusinessApplication
from business_application.services.graph_loader import current_map, forget_map

from .maps import FollowedMapTest, fresh_edges
from .maps import snapshot_edges as live_edges

MAP = """
name: attack12-rollbacks
graph:
  services: [Batch Service, Web Service]
  clusters:
    - {name: CL-A, services: [Batch Service]}
  devices:
    - {name: SWITCH-01, role: switch}
    - {name: HV-01, role: server, cluster: CL-A, links: [SWITCH-01]}
    - {name: WEB-01, role: server, services: [Web Service], links: [SWITCH-01]}
  vms:
    - {name: VM-01, host: HV-01, services: [Batch Service]}
    - {name: VM-02, cluster: CL-A, services: [Web Service]}
"""


class RolledBackTest(FollowedMapTest):
    MAP = MAP

    def setUp(self):
        super().setUp()
        app = BusinessApplication.objects.create(appcode='APP1', name='App One')
        app.technical_services.add(self.objects['service:Web Service'])
        self.objects['app:APP1'] = app
        app.devices.add(self.objects['device:WEB-01'])
        app.virtual_machines.add(self.objects['vm:VM-02'])
        forget_map()
        current_map()
        self.before = live_edges()

    def roll_back(self, delete):
        try:
            with transaction.atomic():
                delete()
                current_map()
                raise RuntimeError
        except RuntimeError:
            pass
        current_map()
        followed = live_edges()
        self.assertEqual(fresh_edges(), self.before)
        self.assertEqual(followed, self.before)

    def test_vm(self):
        self.roll_back(lambda: VirtualMachine.objects.get(name='VM-02').delete())

    def test_application(self):
        self.roll_back(lambda: BusinessApplication.objects.get(pk=self.objects['app:APP1'].pk).delete())

    def test_cluster_without_vms(self):
        VirtualMachine.objects.filter(name='VM-02').delete()
        VirtualMachine.objects.filter(name='VM-01').delete()
        forget_map()
        current_map()
        self.before = live_edges()
        self.roll_back(lambda: Cluster.objects.get(name='CL-A').delete())

    def test_switch_then_server_in_nested_savepoints(self):
        def delete():
            Device.objects.get(name='SWITCH-01').delete()
            current_map()
            with transaction.atomic():
                Device.objects.get(name='WEB-01').delete()
                current_map()

        self.roll_back(delete)

    def test_deleted_twice_after_a_savepoint_rollback_then_committed_seen_by_another_worker(self):
        web = self.objects['device:WEB-01']
        with self.captureOnCommitCallbacks(execute=True):
            with transaction.atomic():
                try:
                    with transaction.atomic():
                        Device.objects.get(pk=web.pk).delete()
                        current_map()
                        raise RuntimeError
                except RuntimeError:
                    pass
                current_map()
                Device.objects.get(pk=web.pk).delete()
                current_map()
        current_map()
        mine = live_edges()
        forget_map()
        current_map()
        self.assertEqual(mine, live_edges())
