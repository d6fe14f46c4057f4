"""The receivers store an alert group with a fixed number of queries, whatever its size, and each
stored alert is still correlated once."""

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from users.constants import TOKEN_PREFIX
from users.models import ObjectPermission, Token, User

from business_application.models import Event, IncidentEvent

from ..integration.maps import build

SERVERS = 24
MAP = 'name: rack\ngraph:\n  services: [web]\n  devices:\n    - {name: tor, role: switch}\n' + ''.join(
    f'    - {{name: srv-{i}, role: server, services: [web], links: [tor]}}\n' for i in range(SERVERS)
)
URL = '/api/plugins/business-application/alerts/alertmanager/'


def group(hosts, alertname='HostDown', status='firing', minute=0):
    """An Alertmanager notification of ``hosts``, started at ``minute`` past midnight (resolved 5 minutes later)."""
    return {
        'version': '4',
        'status': status,
        'alerts': [
            {
                'status': status,
                'labels': {'alertname': alertname, 'instance': f'{host}:9100', 'severity': 'critical'},
                'startsAt': f'2026-01-01T00:{minute:02}:00Z',
                'endsAt': '0001-01-01T00:00:00Z' if status == 'firing' else f'2026-01-01T00:{minute + 5:02}:00Z',
                'fingerprint': f'{alertname}-{host}',
            }
            for host in hosts
        ],
    }


class SenderTestCase(TestCase):
    """A receiving user with a token, and a post that counts its queries."""

    def setUp(self):
        build(MAP)
        user = User.objects.create_user(username='batch-sender')
        permission = ObjectPermission.objects.create(name='batch-send', actions=['view', 'add', 'change'])
        permission.object_types.add(
            ContentType.objects.get_by_natural_key('business_application', 'event'),
            ContentType.objects.get_by_natural_key('business_application', 'eventsource'),
        )
        permission.users.add(user)
        token = Token.objects.create(user=user, write_enabled=True)
        self.header = {'HTTP_AUTHORIZATION': f'Bearer {TOKEN_PREFIX}{token.key}.{token.token}'}
        self.client = APIClient()
        # The process's one-time lookups (content types, the event source) for a new and a repeat.
        self.post(group(['srv-0'], alertname='Warmup'))
        self.post(group(['srv-0'], alertname='Warmup'))

    def post(self, payload, counted=lambda sql: True):
        """Post the group; returns how many of its queries ``counted`` takes (all by default)."""
        with CaptureQueriesContext(connection) as queries:
            response = self.client.post(URL, payload, format='json', **self.header)
        self.assertEqual(response.status_code, 200, response.content[:300])
        return sum(bool(counted(query['sql'])) for query in queries.captured_queries)


class BatchedIntakeTest(SenderTestCase):
    def test_a_group_costs_the_same_queries_whatever_its_size(self):
        hosts = [f'srv-{i}' for i in range(SERVERS)]
        with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
            small = self.post(group(hosts[:4], alertname='Small'))
            large = self.post(group(hosts, alertname='Large'))
            small_repeat = self.post(group(hosts[:4], alertname='Small'))
            large_repeat = self.post(group(hosts, alertname='Large'))
        self.assertEqual(small, large)
        self.assertEqual(small_repeat, large_repeat)
        self.assertEqual(Event.objects.filter(dedup_id__startswith='Large-').count(), SERVERS)

    def test_each_alert_of_a_group_is_correlated_once(self):
        hosts = [f'srv-{i}' for i in range(SERVERS)]
        self.post(group(hosts))
        self.post(group(hosts))
        events = Event.objects.filter(dedup_id__startswith='HostDown-')
        self.assertEqual(events.count(), SERVERS)
        self.assertEqual(events.exclude(processed_status='triggered').count(), 0)
        self.assertEqual(IncidentEvent.objects.filter(event__in=events).count(), SERVERS)
        self.post(group(hosts, status='resolved'))
        self.assertEqual(events.exclude(processed_status='ok').count(), 0)

    def test_a_group_naming_one_alert_twice_applies_both_in_turn(self):
        payload = group(['srv-1'])
        payload['alerts'].append({**payload['alerts'][0], 'status': 'resolved', 'endsAt': '2026-01-01T00:05:00Z'})
        self.post(payload)
        event = Event.objects.get(dedup_id='HostDown-srv-1')
        self.assertEqual((event.status, event.processed_status, event.occurrence), ('ok', 'ok', 1))


class BatchedIntakeChangeLogTest(SenderTestCase):
    """The group's events are in NetBox's change log, as NetBox's own bulk views write it: one record per event
    created or updated, with the request's user and id, at a fixed number of queries per group."""

    def test_created_and_updated_events_are_in_the_change_log(self):
        from core.models import ObjectChange

        hosts = [f'srv-{i}' for i in range(4)]
        ObjectChange.objects.all().delete()
        self.post(group(hosts, alertname='Logged'))
        created = ObjectChange.objects.filter(action='create', changed_object_type__model='event')
        self.assertEqual(created.count(), 4)
        events = {e.pk: e for e in Event.objects.filter(dedup_id__startswith='Logged-')}
        self.assertEqual(set(created.values_list('changed_object_id', flat=True)), set(events))
        self.assertEqual(set(created.values_list('user_name', flat=True)), {'batch-sender'})
        self.assertEqual(len(set(created.values_list('request_id', flat=True))), 1)
        record = created.first()
        self.assertIsNone(record.prechange_data)
        self.assertEqual(record.postchange_data['dedup_id'], events[record.changed_object_id].dedup_id)
        self.assertEqual(record.object_repr, str(events[record.changed_object_id]))

        self.post(group(hosts, alertname='Logged', status='resolved'))
        updated = ObjectChange.objects.filter(action='update', changed_object_type__model='event')
        self.assertEqual(updated.count(), 4)
        record = updated.first()
        self.assertEqual((record.prechange_data['status'], record.postchange_data['status']), ('triggered', 'ok'))
        self.assertNotEqual(updated.first().request_id, created.first().request_id)

    def test_the_change_log_costs_the_same_queries_whatever_the_group_size(self):
        hosts = [f'srv-{i}' for i in range(SERVERS)]
        with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
            small = self.post(group(hosts[:4], alertname='Small'))
            large = self.post(group(hosts, alertname='Large'))
            small_repeat = self.post(group(hosts[:4], alertname='Small', status='resolved'))
            large_repeat = self.post(group(hosts, alertname='Large', status='resolved'))
        self.assertEqual(small, large)
        self.assertEqual(small_repeat, large_repeat)


class BatchedIntakeSearchTest(SenderTestCase):
    """NetBox's global search keeps each stored alert's dedup_id, message and unmapped label: a repeat that changes
    none of them leaves its entries alone, one that changes the message has it found by the new words only."""

    def entries(self, dedup_ids):
        from extras.models import CachedValue

        events = Event.objects.filter(dedup_id__in=dedup_ids)
        return dict(
            CachedValue.objects.filter(
                object_type=ContentType.objects.get_for_model(Event), object_id__in=events.values('pk')
            ).values_list('pk', 'value')
        )

    def test_repeats_keep_their_search_entries_unless_what_is_searched_changes(self):
        hosts = [f'srv-{i}' for i in range(4)]
        payload = group(hosts, alertname='Searched')
        for alert in payload['alerts']:
            alert['annotations'] = {'summary': f'disk full on {alert["labels"]["instance"]}'}
        dedup_ids = [f'Searched-{host}' for host in hosts]
        self.post(payload)
        first = self.entries(dedup_ids)
        self.assertEqual(sum('disk full on' in value for value in first.values()), 4)
        self.post(payload)  # a plain repeat: same alerts, same words
        self.assertEqual(self.entries(dedup_ids), first)
        payload['alerts'][0]['annotations'] = {'summary': 'disk almost empty again'}
        self.post(payload)
        after = self.entries(dedup_ids)
        self.assertEqual(sum('disk almost empty again' in value for value in after.values()), 1)
        self.assertEqual(sum('disk full on' in value for value in after.values()), 3)
        self.assertEqual(len(set(first) & set(after)), len(first) - 2)  # the changed alert's two entries are new
