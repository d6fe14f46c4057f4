"""Attack 12: the network tiers (BUSINESS_APP_NETWORK_TIERS) as another worker follows them, against a fresh load."""

from django.db import transaction
from django.test import override_settings

from dcim.models import Cable, Device, DeviceRole, Interface

from business_application.services.graph_loader import current_map

from .maps import FollowedMapTest, fresh_edges
from .maps import snapshot_edges as live_edges

MAP = """
name: attack12-tiers
graph:
  services: [Web Service, App Service]
  devices:
    - {name: CORE-01, role: core-switch}
    - {name: CORE-02, role: core-switch}
    - {name: TOR-01, role: access-switch, links: [CORE-01]}
    - {name: TOR-02, role: access-switch}
    - {name: WEB-01, role: server, services: [Web Service], links: [TOR-01]}
    - {name: APP-01, role: server, services: [App Service], links: [TOR-02]}
"""

TIERS = ['core-switch', 'access-switch']


@override_settings(BUSINESS_APP_NETWORK_TIERS=TIERS)
class TiersFollowedTest(FollowedMapTest):
    MAP = MAP

    def port(self, device, name):
        return Interface.objects.create(device=self.objects[f'device:{device}'], name=name, type='1000base-t')

    def test_a_multi_termination_cable_then_a_role_change(self):
        def cable():
            Cable(
                a_terminations=[self.port('CORE-01', 'x1'), self.port('CORE-02', 'x1')],
                b_terminations=[self.port('TOR-02', 'x1')],
            ).save()

        followed = self.other_worker_follows(cable)
        self.assertIn(('device:CORE-02', 'device:TOR-02'), {e[:2] for e in followed})
        self.assertEqual(followed, fresh_edges())

        def demote():
            device = Device.objects.get(name='CORE-02')
            device.role = DeviceRole.objects.get(slug='access-switch')
            device.save()

        followed = self.other_worker_follows(demote)
        self.assertEqual(followed, fresh_edges())

    def test_a_role_slug_swap_between_two_tiered_roles(self):
        def swap():
            core, access = DeviceRole.objects.get(slug='core-switch'), DeviceRole.objects.get(slug='access-switch')
            core.slug = 'tmp-core'
            core.save()
            access.slug = 'core-switch'
            access.save()
            core.slug = 'access-switch'
            core.save()

        followed = self.other_worker_follows(swap)
        self.assertIn(('device:TOR-01', 'device:CORE-01'), {e[:2] for e in followed})
        self.assertEqual(followed, fresh_edges())

    def test_slug_changed_and_back_in_one_transaction(self):
        def there_and_back():
            role = DeviceRole.objects.get(slug='access-switch')
            role.slug = 'server-x'
            role.save()
            role.slug = 'access-switch'
            role.save()

        followed = self.other_worker_follows(there_and_back)
        self.assertEqual(followed, fresh_edges())

    def test_a_rolled_back_core_switch_deletion_in_a_savepoint(self):
        before = live_edges()
        with transaction.atomic():
            try:
                with transaction.atomic():
                    Device.objects.get(name='CORE-01').delete()
                    current_map()
                    raise RuntimeError
            except RuntimeError:
                pass
            current_map()
            self.assertEqual(live_edges(), before)
        current_map()
        self.assertEqual(live_edges(), before)
        self.assertEqual(fresh_edges(), before)

    def test_tiers_changed_while_running(self):
        with override_settings(BUSINESS_APP_NETWORK_TIERS=['access-switch', 'core-switch']):
            current_map()
            self.assertIn(('device:TOR-01', 'device:CORE-01'), {e[:2] for e in live_edges()})
        current_map()
        self.assertIn(('device:CORE-01', 'device:TOR-01'), {e[:2] for e in live_edges()})
