"""Deleting an event by hand: an open incident it leaves with no alerting member resolves, as if the event had
cleared; an incident that still has an alerting member stays open."""

from django.contrib.contenttypes.models import ContentType
from django.test import TestCase, override_settings

from dcim.models import Device

from business_application.models import Event, EventSource, Incident

from .maps import DATABASE_OUTAGE, build


class EventDeletionTest(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.objects = build(DATABASE_OUTAGE)
        cls.source = EventSource.objects.create(name='prometheus')
        cls.device_type = ContentType.objects.get_for_model(Device)

    def alert(self, device, dedup_id):
        return Event.objects.create(
            event_source=self.source,
            dedup_id=dedup_id,
            message=f'{device} down',
            status='triggered',
            criticallity='critical',
            content_type=self.device_type,
            object_id=self.objects[f'device:{device}'].pk,
        )

    def incident_of(self, event):
        return Incident.objects.get(memberships__event=event)

    def test_deleting_the_only_alerting_event_resolves_its_incident(self):
        event = self.alert('DB-PROD-01', 'db')
        incident = self.incident_of(event)
        self.assertIn(incident.status, ('new', 'investigating', 'identified', 'monitoring'))
        pk = event.pk
        event.delete()
        incident.refresh_from_db()
        self.assertEqual(incident.status, 'resolved')
        self.assertIsNotNone(incident.resolved_at)
        entry = incident.timeline.filter(kind='resolved').get()
        self.assertIn(f'#{pk}', entry.message)

    def test_an_incident_with_another_alerting_member_stays_open(self):
        database = self.alert('DB-PROD-01', 'db')
        web = self.alert('WEB-APP-01', 'web')
        incident = self.incident_of(database)
        self.assertEqual(self.incident_of(web), incident)
        web.delete()
        incident.refresh_from_db()
        self.assertEqual(incident.status, 'new')
        self.assertFalse(incident.timeline.filter(kind='resolved').exists())
        database.delete()
        incident.refresh_from_db()
        self.assertEqual(incident.status, 'resolved')

    @override_settings(BUSINESS_APP_AUTO_RESOLVE_INCIDENTS=False)
    def test_without_auto_resolve_the_incident_stays_open(self):

        event = self.alert('DB-PROD-01', 'db')
        incident = self.incident_of(event)
        event.delete()
        incident.refresh_from_db()
        self.assertEqual(incident.status, 'new')
