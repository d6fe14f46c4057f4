"""The guide's events/ payload through the REST API: upsert, ordering, clear errors and permissions."""

import json

from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from rest_framework import status

from dcim.models import Device
from users.models import ObjectPermission
from utilities.testing import APITestCase

from business_application.models import Event, EventSource, Incident

from .maps import DATABASE_OUTAGE, build

EVENTS_URL = 'plugins-api:business_application-api:event-list'


class EventsAPIMixin:
    """A map, an event source, and a user of NetBox's ``APITestCase`` given object permissions on events."""

    model = Event

    def setUp(self):
        super().setUp()
        self.objects = build(DATABASE_OUTAGE)
        self.source = EventSource.objects.create(name='prometheus')
        self.url = reverse(EVENTS_URL)

    def allow(self, *actions, constraints=None):
        permission = ObjectPermission(name=f'events {actions}', actions=list(actions), constraints=constraints)
        permission.save()
        permission.object_types.add(ContentType.objects.get_by_natural_key('business_application', 'event'))
        permission.users.add(self.user)

    def payload(self, **changes):
        data = {
            'message': 'DB-PROD-01 connection timeout',
            'status': 'triggered',
            'criticallity': 'critical',
            'content_type': 'dcim.device',
            'object_id': self.objects['device:DB-PROD-01'].pk,
            'dedup_id': 'fp-1',
            'event_source': self.source.pk,
            'raw': {'fingerprint': 'fp-1', 'labels': {}},
            'last_seen_at': '2026-12-04T10:00:00Z',
        }
        data.update(changes)
        return data


class EventsAPITest(EventsAPIMixin, APITestCase):
    def test_anonymous_and_unpermitted_requests_are_refused(self):
        self.assertEqual(self.client.post(self.url, self.payload(), format='json').status_code, 403)
        response = self.client.post(self.url, self.payload(), format='json', **self.header)
        self.assertEqual(response.status_code, 403)
        self.assertEqual(Event.objects.count(), 0)

    def test_guide_payload_creates_an_event_and_an_incident(self):
        self.allow('add', 'view')
        numeric = ContentType.objects.get_for_model(Device).pk
        response = self.client.post(self.url, self.payload(content_type=numeric), format='json', **self.header)
        self.assertEqual(response.status_code, status.HTTP_201_CREATED, response.data)
        self.assertEqual(response.data['content_type'], 'dcim.device')
        self.assertEqual(len(response.data['incidents']), 1)
        incident = Incident.objects.get()
        self.assertEqual(incident.title, 'Service disruption affecting Database Service')

    def test_source_by_name_and_repeat_updates_the_same_alert(self):
        self.allow('add', 'change', 'view')
        first = self.client.post(self.url, self.payload(event_source='prometheus'), format='json', **self.header)
        self.assertEqual(first.status_code, 201, first.data)
        repeat = self.client.post(
            self.url,
            self.payload(criticallity='high', message='still down', last_seen_at='2026-12-04T10:01:00Z'),
            format='json',
            **self.header,
        )
        self.assertEqual(repeat.status_code, 200, repeat.data)
        self.assertEqual(repeat.data['id'], first.data['id'])
        event = Event.objects.get()
        self.assertEqual((event.message, event.criticallity), ('still down', 'high'))
        self.assertEqual(Incident.objects.count(), 1)

    def test_repeat_without_change_permission_is_refused(self):
        self.allow('add', 'view')
        self.client.post(self.url, self.payload(), format='json', **self.header)
        response = self.client.post(self.url, self.payload(message='other'), format='json', **self.header)
        self.assertEqual(response.status_code, 403)
        self.assertEqual(Event.objects.get().message, 'DB-PROD-01 connection timeout')

    def test_clear_resolves_and_an_older_notification_does_not_roll_back(self):
        self.allow('add', 'change', 'view')
        self.client.post(self.url, self.payload(), format='json', **self.header)
        clear = self.payload(status='ok', last_seen_at='2026-12-04T10:05:00Z')
        self.assertEqual(self.client.post(self.url, clear, format='json', **self.header).status_code, 200)
        self.assertEqual(Incident.objects.get().status, 'resolved')
        stale = self.payload(status='triggered', last_seen_at='2026-12-04T10:02:00Z')
        self.assertEqual(self.client.post(self.url, stale, format='json', **self.header).status_code, 200)
        event = Event.objects.get()
        self.assertEqual(event.status, 'ok')
        self.assertEqual(Incident.objects.get().status, 'resolved')

    def test_bad_input_names_the_field_and_stores_nothing(self):
        self.allow('add', 'view')
        cases = [
            ('criticallity', self.payload(criticallity='catastrophic')),
            ('content_type', self.payload(content_type='dcim.nothing')),
            ('object_id', self.payload(object_id=999999)),
            ('event_source', self.payload(event_source='no-such-source')),
            ('last_seen_at', self.payload(last_seen_at='yesterday')),
            ('raw', self.payload(raw={'summary': 'x\x00y'})),
            # Lone surrogates, high or low, in a value or a key: PostgreSQL's jsonb refuses them all.
            ('raw', self.payload(raw={'summary': 'x\ud800'})),
            ('raw', self.payload(raw={'summary': '\udc80'})),
            ('raw', self.payload(raw={'labels': {'\udc80k': 'v'}})),
            ('raw', self.payload(raw={'list': ['ok', '\udfff\ud800']})),
        ]
        for field, data in cases:
            with self.subTest(field=field, data=data.get(field)):
                # json.dumps writes lone surrogates as \u escapes, as a client in another language would.
                body = json.dumps(data)
                response = self.client.post(self.url, body, content_type='application/json', **self.header)
                self.assertEqual(response.status_code, 400)
                self.assertIn(field, response.data)
        self.assertEqual(Event.objects.count(), 0)
        self.assertEqual(Incident.objects.count(), 0)

    def test_unmapped_event_is_stored_with_its_label_and_opens_its_own_incident(self):
        self.allow('add', 'view')
        data = self.payload(content_type=None, object_id=None, unmapped_label='device:ghost-07', dedup_id='g')
        response = self.client.post(self.url, data, format='json', **self.header)
        self.assertEqual(response.status_code, 201, response.data)
        self.assertFalse(response.data['is_mapped'])
        self.assertEqual(Incident.objects.get().title, 'Alert on unmapped device:ghost-07')

    def test_object_permission_constraints_limit_what_a_token_sees(self):
        self.allow('add', 'view', constraints={'status': 'triggered'})
        self.client.post(self.url, self.payload(), format='json', **self.header)
        Event.objects.create(message='hidden', status='ok', criticallity='info', dedup_id='h', event_source=self.source)
        listed = self.client.get(self.url, **self.header)
        self.assertEqual(listed.status_code, 200)
        self.assertEqual([e['message'] for e in listed.data['results']], ['DB-PROD-01 connection timeout'])
        hidden = Event.objects.get(dedup_id='h')
        detail = self.client.get(
            reverse('plugins-api:business_application-api:event-detail', args=[hidden.pk]), **self.header
        )
        self.assertEqual(detail.status_code, 404)


class IncidentEditRaceTest(APITestCase):
    model = Incident

    def test_a_patch_with_a_stale_instance_keeps_what_the_correlator_wrote_meanwhile(self):
        from rest_framework.test import APIRequestFactory

        from business_application.api.serializers import IncidentSerializer

        incident = Incident.objects.create(title='db slow', severity='warning', auto_created=True)
        stale = Incident.objects.get(pk=incident.pk)
        Incident.objects.filter(pk=incident.pk).update(severity='critical', title='Service disruption affecting db')
        request = APIRequestFactory().patch('/')
        request.user = self.user
        serializer = IncidentSerializer(
            stale, data={'description': 'DBA paged'}, partial=True, context={'request': request}
        )
        self.assertTrue(serializer.is_valid(), serializer.errors)
        serializer.save()
        incident.refresh_from_db()
        self.assertEqual(
            (incident.description, incident.severity, incident.title),
            ('DBA paged', 'critical', 'Service disruption affecting db'),
        )


class HardeningTest(EventsAPITest):
    def test_events_naming_no_object_do_not_glue_together(self):
        self.allow('add', 'view')
        for number in range(2):
            data = self.payload(content_type=None, object_id=None, dedup_id=f'bare-{number}', message=f'm{number}')
            self.assertEqual(self.client.post(self.url, data, format='json', **self.header).status_code, 201)
        self.assertEqual(Incident.objects.count(), 2)

    def test_the_upsert_checks_the_change_constraint_after_the_change_too(self):
        self.allow('add', 'view')
        self.allow('change', constraints={'criticallity': 'critical'})
        self.client.post(self.url, self.payload(), format='json', **self.header)
        response = self.client.post(self.url, self.payload(criticallity='info'), format='json', **self.header)
        self.assertEqual(response.status_code, 403)
        self.assertEqual(Event.objects.get().criticallity, 'critical')
