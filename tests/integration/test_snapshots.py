"""Change-log snapshots: ``models.snapshots.snapshot_of`` gives what NetBox's ``serialize_object`` gives, and the
receivers' change records of a repeated alert hold the alert's tags and fields before and after, as NetBox writes
them."""

import itertools
import math
from datetime import UTC, datetime, timedelta

from django.contrib.contenttypes.models import ContentType
from django.test import TestCase, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase
from rest_framework.test import APIClient

from core.models import ObjectChange, ObjectType
from extras.models import CustomField, Tag
from utilities.serialization import serialize_object

from business_application.models import Event, EventSource, Incident
from business_application.models.snapshots import snapshot_of
from business_application.services.intake import _exclude

from ..senders import sender_authorization

URL = '/api/plugins/business-application/alerts/alertmanager/'
numbers = itertools.count()

# What PostgreSQL's jsonb stores: no NUL character, no lone surrogate.
text = st.text(alphabet=st.characters(blacklist_categories=('Cs',), blacklist_characters='\x00'), max_size=12)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=20,
)
moments = (
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)) | st.none()
)


class SnapshotOfTest(HypothesisTestCase):
    """Objects of every shape, saved or not: the two snapshots are equal, key for key."""

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        raw=json_values,
        message=st.text(max_size=40),
        times=st.tuples(moments, moments, moments),
        seen=st.datetimes(min_value=datetime(1970, 1, 2), timezones=st.just(UTC)),
        states=st.lists(st.dictionaries(st.sampled_from(['status', 'at', 'object']), json_scalars), max_size=3),
        exclude=st.lists(st.sampled_from(['last_updated', 'raw', 'created', 'message', 'nothing']), max_size=3),
        extra=st.none() | st.dictionaries(st.sampled_from(['tags', 'raw', 'other']), json_scalars, max_size=2),
    )
    def test_an_unsaved_event(self, raw, message, times, seen, states, exclude, extra):
        starts, ends, event_time = times
        event = Event(
            message=message,
            raw=raw,
            starts_at=starts,
            ends_at=ends,
            event_time=event_time,
            last_seen_at=seen,
            pending_states=states,
            dedup_id=message[:20],
            custom_field_data={'note': message, 'count': len(message)},
        )
        arguments = {'resolve_tags': False, 'exclude': exclude, 'extra': extra}
        self.assertEqual(snapshot_of(event, **arguments), serialize_object(event, **arguments))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        raw=st.dictionaries(text, json_values, max_size=4),
        tags=st.sets(st.sampled_from(['zeta', 'alpha', 'Mid', 'mid-2']), max_size=4),
    )
    def test_a_stored_event_with_tags(self, raw, tags):
        source, _ = EventSource.objects.get_or_create(name='snapshots')
        event = Event.objects.create(event_source=source, message='m', raw=raw, dedup_id=f'snap-{next(numbers)}')
        event.tags.set([Tag.objects.get_or_create(name=name, slug=name.lower())[0] for name in tags])
        event = Event.objects.get(pk=event.pk)  # as stored: the JSON as PostgreSQL gives it back
        expected = serialize_object(event, exclude=['last_updated'])
        self.assertEqual(snapshot_of(event, exclude=['last_updated']), expected)
        self.assertEqual(event.serialize_object(exclude=['last_updated']), expected)  # the model's own hook
        self.assertEqual(expected['tags'], sorted(tags))


class SnapshotOfCasesTest(TestCase):
    def test_times_are_cut_to_milliseconds_as_netbox_writes_them(self):
        moment = datetime(2026, 12, 6, 15, 4, 5, 678901, tzinfo=UTC)
        event = Event(message='m', last_seen_at=moment, starts_at=moment, raw={'at': 1.5})
        snapshot = snapshot_of(event, resolve_tags=False)
        self.assertEqual(snapshot['last_seen_at'], '2026-12-06T15:04:05.678Z')
        self.assertEqual(snapshot, serialize_object(event, resolve_tags=False))

    def test_custom_fields_and_an_incident(self):
        field = CustomField.objects.create(name='runbook', type='text')
        field.object_types.set([ObjectType.objects.get_for_model(Incident), ObjectType.objects.get_for_model(Event)])
        incident = Incident.objects.create(title='db down', custom_field_data={'runbook': 'restart it'})
        incident.tags.set([Tag.objects.create(name='noc', slug='noc')])
        incident = Incident.objects.get(pk=incident.pk)
        snapshot = incident.serialize_object()
        self.assertEqual(snapshot, serialize_object(incident))
        self.assertEqual((snapshot['custom_fields'], snapshot['tags']), ({'runbook': 'restart it'}, ['noc']))
        self.assertNotIn('custom_field_data', snapshot)

    def test_json_numbers_keep_their_values(self):
        raw = {'big': 2**64 + 1, 'tiny': 5e-324, 'neg': -0.0, 'huge': 1.7976931348623157e308, 'text': 'é\u2028"\\'}
        event = Event(message='m', raw=raw)
        snapshot = snapshot_of(event, resolve_tags=False)
        self.assertEqual(snapshot['raw'], raw)
        self.assertEqual(math.copysign(1, snapshot['raw']['neg']), -1.0)
        self.assertEqual(snapshot, serialize_object(event, resolve_tags=False))


def alertmanager(fingerprint, status='firing', summary='disk full'):
    started = (datetime.now(UTC) - timedelta(minutes=2)).isoformat().replace('+00:00', 'Z')
    return {
        'version': '4',
        'status': status,
        'alerts': [
            {
                'status': status,
                'labels': {'alertname': 'DiskFull', 'instance': 'nowhere-7:9100', 'severity': 'warning'},
                'annotations': {'summary': summary},
                'startsAt': started,
                'endsAt': '0001-01-01T00:00:00Z',
                'fingerprint': fingerprint,
            }
        ],
    }


class ReceiverChangeRecordTest(TestCase):
    """A delivery that repeats a stored, tagged alert writes one update record whose snapshots are NetBox's own of
    the alert before and after: its tags (read with the batch's one query) on both sides."""

    def setUp(self):
        self.client = APIClient()
        self.header = {'HTTP_AUTHORIZATION': sender_authorization('snapshot-sender')}

    def post(self, payload):
        response = self.client.post(URL, payload, format='json', **self.header)
        self.assertEqual(response.status_code, 200, response.content[:300])

    def test_a_repeat_of_a_tagged_alert(self):
        self.post(alertmanager('snap-tagged'))
        self.post(alertmanager('snap-plain'))
        tagged = Event.objects.get(dedup_id='snap-tagged')
        tagged.tags.set([Tag.objects.create(name=name, slug=name) for name in ('storage', 'customer-a')])
        before = {
            event.pk: serialize_object(event, exclude=_exclude())
            for event in Event.objects.filter(dedup_id__startswith='snap-')
        }
        ObjectChange.objects.all().delete()

        payload = alertmanager('snap-tagged', summary='disk still full')
        payload['alerts'] += alertmanager('snap-plain', status='resolved')['alerts']
        with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):  # the rows stay as the delivery stored them
            self.post(payload)

        records = {
            record.changed_object_id: record
            for record in ObjectChange.objects.filter(
                changed_object_type=ContentType.objects.get_for_model(Event), action='update'
            )
        }
        self.assertEqual(set(records), set(before))
        for event in Event.objects.filter(dedup_id__startswith='snap-'):
            record = records[event.pk]
            self.assertEqual(record.prechange_data, before[event.pk])
            self.assertEqual(record.postchange_data, serialize_object(event, exclude=_exclude()))
        self.assertEqual(records[tagged.pk].postchange_data['tags'], ['customer-a', 'storage'])
        self.assertEqual(records[tagged.pk].postchange_data['message'], 'DiskFull: disk still full')
        self.assertEqual(records[tagged.pk].prechange_data['message'], 'DiskFull: disk full')
