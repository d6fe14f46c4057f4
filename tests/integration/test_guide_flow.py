"""The guide's own code, run as written: Event.objects.create correlates through the post_save signal."""

from django.contrib.contenttypes.models import ContentType
from django.test import TestCase, override_settings
from django.utils import timezone

from dcim.models import Device

from business_application.models import Event, EventCrit, EventStatus, Incident

from .maps import DATABASE_OUTAGE, SWITCH_FAILURE, build


def create_event(device, dedup_id, criticallity=EventCrit.CRITICAL, status=EventStatus.TRIGGERED, message='x'):
    return Event.objects.create(
        message=message,
        status=status,
        criticallity=criticallity,
        content_type=ContentType.objects.get_for_model(Device),
        object_id=device.id,
        dedup_id=dedup_id,
        last_seen_at=timezone.now(),
    )


class GuideFlowTest(TestCase):
    def setUp(self):
        self.objects = build(DATABASE_OUTAGE)
        self.db = self.objects['device:DB-PROD-01']
        self.web = self.objects['device:WEB-APP-01']

    def test_event_create_opens_an_incident_named_after_the_service(self):
        event = create_event(self.db, 'test-db-001', message='Test database connection failed')
        incidents = event.incidents.all()
        self.assertEqual(len(incidents), 1)
        self.assertEqual(incidents[0].title, 'Service disruption affecting Database Service')
        self.assertEqual(incidents[0].severity, 'critical')
        self.assertEqual(incidents[0].commander, 'NOC Team')
        self.assertEqual(incidents[0].root_cause, 'device:DB-PROD-01')
        self.assertEqual(list(incidents[0].affected_services.values_list('name', flat=True)), ['Database Service'])

    def test_related_event_joins_with_its_score_and_path(self):
        first = create_event(self.db, 'test-db-001')
        second = create_event(self.web, 'test-web-001', criticallity=EventCrit.WARNING)
        common = set(first.incidents.all()) & set(second.incidents.all())
        self.assertEqual(len(common), 1)
        membership = second.memberships.get()
        self.assertEqual(membership.link, 'dependency')
        self.assertAlmostEqual(membership.score, 0.6 * 1.0 * 0.8)
        self.assertEqual(membership.path, ['service:Web Service', 'service:Database Service'])
        self.assertEqual(Incident.objects.count(), 1)

    def test_unrelated_device_opens_its_own_incident(self):
        create_event(self.db, 'test-db-001')
        create_event(self.objects['device:MAIL-01'], 'mail-001')
        self.assertEqual(Incident.objects.count(), 2)
        self.assertTrue(Incident.objects.filter(title='Infrastructure alert affecting MAIL-01').exists())

    def test_clearing_every_member_resolves_and_a_flap_reopens(self):
        event = create_event(self.db, 'test-db-001')
        incident = event.incidents.get()
        event.status = EventStatus.OK
        event.save()
        incident.refresh_from_db()
        self.assertEqual(incident.status, 'resolved')
        self.assertIsNotNone(incident.resolved_at)
        event.status = EventStatus.TRIGGERED
        event.save()
        incident.refresh_from_db()
        self.assertEqual(incident.status, 'new')
        self.assertIsNone(incident.resolved_at)
        kinds = list(incident.timeline.values_list('kind', flat=True))
        self.assertEqual(kinds, ['opened', 'cleared', 'resolved', 'reopened'])

    def test_saving_an_event_again_without_change_does_nothing_new(self):
        event = create_event(self.db, 'test-db-001')
        event.message = 'still failing'
        event.save()
        event.save()
        self.assertEqual(Incident.objects.count(), 1)
        self.assertEqual(event.memberships.count(), 1)

    @override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
    def test_disabled_automation_stores_but_does_not_correlate(self):
        event = create_event(self.db, 'test-db-001')
        self.assertEqual(event.incidents.count(), 0)
        self.assertEqual(Event.objects.count(), 1)

    @override_settings(BUSINESS_APP_REQUIRE_MINIMUM_SEVERITY='high')
    def test_below_minimum_severity_opens_nothing(self):
        event = create_event(self.db, 'test-db-001', criticallity=EventCrit.WARNING)
        self.assertEqual(event.incidents.count(), 0)


class SwitchFailureTest(TestCase):
    def test_servers_behind_a_failed_switch_join_its_incident(self):
        objects = build(SWITCH_FAILURE)
        create_event(objects['device:SWITCH-01'], 'sw')
        create_event(objects['device:WEB-01'], 'web')
        create_event(objects['device:APP-02'], 'app', criticallity=EventCrit.WARNING)
        incident = Incident.objects.get()
        self.assertEqual(incident.title, 'Infrastructure alert affecting SWITCH-01')
        self.assertEqual(incident.memberships.count(), 3)
        self.assertEqual(
            set(incident.memberships.exclude(opened_incident=True).values_list('link', flat=True)), {'infrastructure'}
        )

    def test_a_new_cable_reaches_the_map_without_a_restart(self):
        objects = build(SWITCH_FAILURE.replace(', links: [SWITCH-01]}', '}'))
        create_event(objects['device:SWITCH-01'], 'sw')
        create_event(objects['device:WEB-01'], 'web-1')
        self.assertEqual(Incident.objects.count(), 2)
        from dcim.models import Cable, Interface

        ports = [
            Interface.objects.create(device=objects[label], name='eth0', type='1000base-t')
            for label in ('device:SWITCH-01', 'device:APP-02')
        ]
        Cable(a_terminations=[ports[0]], b_terminations=[ports[1]]).save()
        create_event(objects['device:APP-02'], 'app-1')
        switch_incident = Incident.objects.get(root_cause='device:SWITCH-01')
        self.assertEqual(switch_incident.memberships.count(), 2)
