"""Attack 12: one receiver request holding several notifications of one alert, in any order, and the events API's
bulk upsert doing the same: the alert ends on the object its newest notification names."""

from utilities.testing import APITestCase

from business_application.models import Event

from ..integration.test_events_api import EventsAPIMixin
from .base import ReceiverTestCase, object_of

BASE = {'dedup_id': 'x', 'status': 'triggered', 'severity': 'critical', 'message': 'down'}
OLD = {**BASE, 'object': 'device:WEB-01', 'event_time': '2026-12-04T10:00:00Z'}
NEW = {**BASE, 'object': 'device:site1', 'event_time': '2026-12-04T10:05:00Z'}


class BatchRepeatsTest(ReceiverTestCase):
    def check(self, alerts, stored_first=None):
        if stored_first is not None:
            self.assertEqual(self.post('generic', stored_first).status_code, 200)
        response = self.post('generic', {'alerts': alerts})
        self.assertEqual(response.status_code, 200, response.data)
        self.assertEqual(object_of(Event.objects.get()), 'device:site1')

    def test_newest_first(self):
        self.check([NEW, OLD])

    def test_newest_last(self):
        self.check([OLD, NEW])

    def test_newest_first_on_a_stored_alert(self):
        self.check([NEW, OLD], stored_first={**BASE, 'object': 'device:BADHOST', 'event_time': '2026-12-04T09:00:00Z'})

    def test_a_distinct_batch_moves_a_stored_alert_with_a_newer_notification(self):
        stored = {**BASE, 'object': 'device:WEB-01', 'event_time': '2026-12-04T10:00:00Z'}
        other = {**BASE, 'dedup_id': 'y', 'object': 'device:BADHOST', 'event_time': '2026-12-04T09:00:00Z'}
        self.assertEqual(self.post('generic', stored).status_code, 200)
        self.assertEqual(self.post('generic', {**other, 'event_time': '2026-12-04T09:30:00Z'}).status_code, 200)
        self.assertEqual(self.post('generic', {'alerts': [NEW, other]}).status_code, 200)
        self.assertEqual(object_of(Event.objects.get(dedup_id='x')), 'device:site1')
        self.assertEqual(object_of(Event.objects.get(dedup_id='y')), 'device:BADHOST')


class BulkUpsertRepeatsTest(EventsAPIMixin, APITestCase):
    def test_bulk_upsert_newest_first(self):
        self.allow('add', 'change', 'view')
        newer = self.payload(object_id=self.objects['device:MAIL-01'].pk, last_seen_at='2026-12-04T10:05:00Z')
        older = self.payload(last_seen_at='2026-12-04T10:00:00Z')
        response = self.client.post(self.url, [newer, older], format='json', **self.header)
        self.assertIn(response.status_code, (200, 201), response.data)
        self.assertEqual(Event.objects.get().object_id, self.objects['device:MAIL-01'].pk)
