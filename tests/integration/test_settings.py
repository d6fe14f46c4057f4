"""Each setting, read from NetBox's configuration or PLUGINS_CONFIG, changes what the plugin does."""

from datetime import timedelta

import django_rq
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ImproperlyConfigured
from django.test import TestCase, override_settings
from django.utils import timezone

from dcim.models import Device

from business_application import notifications
from business_application.models import Event, EventSource, Incident
from business_application.services import clock
from business_application.settings import get_settings, validate

from .maps import DATABASE_OUTAGE, SWITCH_FAILURE, build


def fire(objects, name, status='triggered', dedup=None, criticallity='critical', source=None, at=None):
    with clock.replay_clock(at or timezone.now()):
        return Event.objects.create(
            message=f'{name} {status}',
            status=status,
            criticallity=criticallity,
            dedup_id=dedup or name,
            content_type=ContentType.objects.get_for_model(Device),
            object_id=objects[f'device:{name}'].pk,
            event_source=source,
            last_seen_at=at or timezone.now(),
        )


def update(event, status, at):
    with clock.replay_clock(at):
        event.status = status
        event.last_seen_at = at
        event.event_time = at
        event.save()


class SettingSourcesTest(TestCase):
    def test_plugins_config_keys_are_read_with_or_without_the_prefix(self):
        with override_settings(
            PLUGINS_CONFIG={
                'business_application': {
                    'correlation_threshold': 0.5,
                    'BUSINESS_APP_MAX_DEPENDENCY_DEPTH': 3,
                }
            }
        ):
            settings = validate()
        self.assertEqual((settings.correlation_threshold, settings.max_dependency_depth), (0.5, 3))

    def test_a_top_level_setting_wins_over_plugins_config(self):
        with override_settings(
            PLUGINS_CONFIG={'business_application': {'correlation_threshold': 0.5}},
            BUSINESS_APP_CORRELATION_THRESHOLD=0.7,
        ):
            self.assertEqual(get_settings().correlation_threshold, 0.7)

    def test_bad_values_stop_start_up_naming_the_setting(self):
        cases = {
            'BUSINESS_APP_CORRELATION_THRESHOLD': ('high', 'must be a number'),
            'BUSINESS_APP_REQUIRE_MINIMUM_SEVERITY': ('fatal', 'must be one of info, warning, high, critical'),
            'BUSINESS_APP_NOTIFICATION_WEBHOOKS': (['ftp://x'], "has 'ftp://x', which is not an http(s) URL"),
            'BUSINESS_APP_MAX_DEPENDENCY_DEPTH': (0, 'must be between 1 and 64'),
            'BUSINESS_APP_AUTO_RESOLVE_INCIDENTS': ('yes', 'must be true or false'),
            'BUSINESS_APP_NETWORK_TIERS': (['core-switch', 'Core-Switch'], "names 'core-switch' twice"),
        }
        for name, (value, reason) in cases.items():
            with self.subTest(name=name), override_settings(**{name: value}):
                with self.assertRaisesMessage(ImproperlyConfigured, f'business_application: {name} {reason}'):
                    validate()
        with override_settings(PLUGINS_CONFIG={'business_application': {'no_such_thing': 1}}):
            with self.assertRaisesMessage(ImproperlyConfigured, 'is not a known setting'):
                validate()


class SettingEffectsTest(TestCase):
    def setUp(self):
        self.objects = build(DATABASE_OUTAGE)
        self.start = timezone.now() - timedelta(hours=2)

    @override_settings(BUSINESS_APP_DEFAULT_INCIDENT_COMMANDER='Ana on call')
    def test_default_commander(self):
        fire(self.objects, 'DB-PROD-01')
        self.assertEqual(Incident.objects.get().commander, 'Ana on call')

    @override_settings(BUSINESS_APP_EXCLUDE_EVENT_SOURCES=['synthetics'])
    def test_excluded_sources_are_stored_but_never_correlated(self):
        source = EventSource.objects.create(name='synthetics')
        event = fire(self.objects, 'DB-PROD-01', source=source)
        self.assertEqual(Event.objects.get().pk, event.pk)
        self.assertEqual(Incident.objects.count(), 0)
        from business_application.services.automation import unprocessed_events

        self.assertFalse(unprocessed_events().filter(pk=event.pk).exists(), 'batch processing skips them too')
        from business_application.config import check_incident_automation_health

        self.assertEqual(check_incident_automation_health()['unprocessed_events'], 0, 'nor are they a backlog')
        fire(self.objects, 'WEB-APP-01')
        self.assertEqual(Incident.objects.count(), 1)

    def test_reopen_window(self):
        for window, expected_incidents in ((10, 1), (1, 2)):
            with self.subTest(window=window), override_settings(BUSINESS_APP_REOPEN_WINDOW_MINUTES=window):
                Incident.objects.all().delete()
                Event.objects.all().delete()
                event = fire(self.objects, 'DB-PROD-01', at=self.start)
                update(event, 'ok', self.start + timedelta(minutes=1))
                update(event, 'triggered', self.start + timedelta(minutes=4))
                self.assertEqual(Incident.objects.count(), expected_incidents)

    def test_dependency_weight_decides_a_join(self):
        for weight, expected_incidents in ((0.6, 1), (0.2, 2)):
            with self.subTest(weight=weight), override_settings(BUSINESS_APP_DEPENDENCY_WEIGHT=weight):
                Incident.objects.all().delete()
                Event.objects.all().delete()
                fire(self.objects, 'DB-PROD-01')
                fire(self.objects, 'WEB-APP-01')
                self.assertEqual(Incident.objects.count(), expected_incidents)

    def test_incident_notifications_enabled(self):
        queue = django_rq.get_queue(notifications.QUEUE)
        queue.empty()
        for enabled, expected in ((False, 0), (True, 1)):
            with (
                self.subTest(enabled=enabled),
                override_settings(
                    BUSINESS_APP_INCIDENT_NOTIFICATIONS_ENABLED=enabled,
                    BUSINESS_APP_NOTIFICATION_WEBHOOKS=['http://127.0.0.1:9/hook'],
                ),
            ):
                Incident.objects.all().delete()
                Event.objects.all().delete()
                with self.captureOnCommitCallbacks(execute=True):
                    fire(self.objects, 'DB-PROD-01')
                self.assertEqual(queue.count, expected)
                queue.empty()


class NetworkRolesTest(TestCase):
    def test_only_devices_with_a_network_role_are_upstream_of_their_cables(self):
        objects = build(SWITCH_FAILURE)
        for roles, expected_incidents in ((['switch'], 1), (['router'], 2)):
            with self.subTest(roles=roles), override_settings(BUSINESS_APP_NETWORK_ROLES=roles):
                Incident.objects.all().delete()
                Event.objects.all().delete()
                fire(objects, 'SWITCH-01')
                fire(objects, 'WEB-01')
                self.assertEqual(Incident.objects.count(), expected_incidents)


CORE_FAILURE = """
name: core-failure
graph:
  services: [Web Service]
  devices:
    - {name: CORE-01, role: core-switch}
    - {name: ACCESS-01, role: access-switch, links: [CORE-01]}
    - {name: ACCESS-02, role: access-switch, links: [CORE-01, ACCESS-01]}
    - {name: WEB-01, role: server, services: [Web Service], links: [ACCESS-01]}
"""


class NetworkTiersTest(TestCase):
    def setUp(self):
        self.objects = build(CORE_FAILURE)

    def incidents_of(self, *names):
        Incident.objects.all().delete()
        Event.objects.all().delete()
        for name in names:
            fire(self.objects, name)
        return sorted(
            sorted(e.obj.name for e in incident.events.all())
            for incident in Incident.objects.filter(merged_into__isnull=True)
        )

    def test_a_core_switch_gathers_the_alerts_of_the_switches_and_servers_behind_it(self):
        tiers = ['core-switch', 'access-switch']
        for setting, expected in (
            ([], [['ACCESS-01', 'WEB-01'], ['CORE-01']]),  # the server hangs off its switch either way
            (tiers, [['ACCESS-01', 'CORE-01', 'WEB-01']]),
        ):
            with self.subTest(tiers=setting), override_settings(BUSINESS_APP_NETWORK_TIERS=setting):
                self.assertEqual(self.incidents_of('CORE-01', 'ACCESS-01', 'WEB-01'), expected)

    def test_switches_of_one_tier_stay_apart(self):
        # ACCESS-01 and ACCESS-02 are cabled to each other, but neither is upstream of the other: only their common
        # upstream, once it alerts, links them (a healthy shared upstream glues nothing).
        with override_settings(BUSINESS_APP_NETWORK_TIERS=['core-switch', 'access-switch']):
            self.assertEqual(self.incidents_of('ACCESS-01', 'ACCESS-02'), [['ACCESS-01'], ['ACCESS-02']])
            self.assertEqual(
                self.incidents_of('ACCESS-01', 'ACCESS-02', 'CORE-01'), [['ACCESS-01', 'ACCESS-02', 'CORE-01']]
            )

    def test_the_order_of_the_tiers_sets_the_direction(self):
        # Reversed tiers: the access switch is upstream, so its alert gathers the core switch's, and the server
        # behind the access switch is no longer reached from the core switch.
        with override_settings(BUSINESS_APP_NETWORK_TIERS=['access-switch', 'core-switch']):
            self.assertEqual(self.incidents_of('CORE-01', 'WEB-01'), [['CORE-01'], ['WEB-01']])
            self.assertEqual(self.incidents_of('ACCESS-01', 'CORE-01'), [['ACCESS-01', 'CORE-01']])


class WorkCapTest(TestCase):
    @override_settings(BUSINESS_APP_WORK_CAP=1)
    def test_a_decision_that_hits_the_work_cap_says_so_in_the_log(self):
        objects = build(SWITCH_FAILURE)
        with self.assertLogs('business_application.services.incident_service', 'WARNING') as logs:
            fire(objects, 'SWITCH-01')  # two servers hang off it: a walk of one node cannot reach both
        self.assertIn('the work cap of 1 nodes was hit', logs.output[0])
