"""Attack 11: a notification older than the stored alert must not roll the alert back, its object included."""

from utilities.testing import APITestCase

from business_application.models import Event, IncidentEvent

from ..integration.test_events_api import EventsAPIMixin
from .base import ReceiverTestCase, object_of


class StaleNotificationObjectTest(ReceiverTestCase):
    def test_an_older_notification_does_not_move_the_alert_to_the_object_it_named(self):
        """The stored alert fires on site1 as of 10:05; a delayed notification of 10:00 (sent before the alert's
        labels were corrected, say) arrives next, naming WEB-01. Its state is rightly ignored (it is older), but
        the alert is moved to WEB-01 all the same, and the incident it opened now holds an event on another
        object than the one that is failing."""
        base = {'dedup_id': 'x', 'status': 'triggered', 'severity': 'critical', 'message': 'down'}
        first = self.post('generic', {**base, 'object': 'device:site1', 'event_time': '2026-12-04T10:05:00Z'})
        self.assertEqual(first.status_code, 200, first.data)
        incident = IncidentEvent.objects.get().incident_id
        late = self.post('generic', {**base, 'object': 'device:WEB-01', 'event_time': '2026-12-04T10:00:00Z'})
        self.assertEqual(late.status_code, 200, late.data)
        event = Event.objects.get()
        self.assertEqual(event.status, 'triggered')
        self.assertEqual(object_of(event), 'device:site1', 'an older notification moved the alert to its object')
        self.assertEqual(IncidentEvent.objects.get().incident_id, incident)


class StaleRestUpsertObjectTest(EventsAPIMixin, APITestCase):
    def test_an_older_upsert_does_not_move_the_alert_to_the_object_it_named(self):
        """The same through the events API's upsert (``intake.repeat_changes`` drops only STATE_FIELDS)."""
        self.allow('add', 'change', 'view')
        fresh = self.payload(last_seen_at='2026-12-04T10:05:00Z')
        first = self.client.post(self.url, fresh, format='json', **self.header)
        self.assertEqual(first.status_code, 201, first.data)
        stale = self.payload(object_id=self.objects['device:MAIL-01'].pk, last_seen_at='2026-12-04T10:00:00Z')
        self.assertEqual(self.client.post(self.url, stale, format='json', **self.header).status_code, 200)
        event = Event.objects.get()
        self.assertEqual(event.object_id, self.objects['device:DB-PROD-01'].pk, 'an older upsert moved the alert')
