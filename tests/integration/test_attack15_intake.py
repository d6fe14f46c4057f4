"""Attack round 15 on 5b4e2e5 (snapshots by ``models.snapshots``, tags by one TaggedItem query, the "before" check in
``ingest``): the receivers' change records and event-rule snapshots must be NetBox's own (``serialize_object`` of the
object as stored), and the permission checks must refuse what they refused before, whatever the payload, tags,
custom fields and settings."""

import itertools
import json
from datetime import UTC, datetime, timedelta

import django_rq
from django.contrib.contenttypes.models import ContentType
from django.test import TestCase, override_settings
from rest_framework.test import APIClient

from core.events import OBJECT_CREATED, OBJECT_UPDATED
from core.models import ObjectChange, ObjectType
from extras.models import CustomField, CustomFieldChoiceSet, Tag, TaggedItem
from netbox.config import get_config
from netbox.constants import RQ_QUEUE_DEFAULT
from users.models import ObjectPermission, User
from utilities.serialization import serialize_object

from business_application.models import Event, EventSource, Incident

from ..senders import event_sender_header, sender_authorization, webhook_rule

BASE = '/api/plugins/business-application/alerts/{}/'
numbers = itertools.count()

ODD_RAW = {
    'big': 2**80 + 7,
    'neg_big': -(2**70),
    'tiny': 5e-324,
    'huge': 1.7976931348623157e308,
    'negzero': -0.0,
    'float': 0.1 + 0.2,
    'unicode': 'héllo wörld \u2028\u2029 \U0001f525 \u00a0 "quoted" \\ back',
    'keys': {'ключ': 1, '鍵': [1, 2, {'深': None}], '': True, 'emoji \U0001f600': False},
    'nested': [[[[[[[[{'x': [1.5, '2', None, True]}]]]]]]]],
    'empty': {'list': [], 'dict': {}, 'str': ''},
}


def now_iso(minutes=0):
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat().replace('+00:00', 'Z')


def am_alert(fingerprint, status='firing', summary='disk full', severity='warning', extra_labels=None):
    return {
        'status': status,
        'labels': {'alertname': 'DiskFull', 'instance': 'nowhere-7:9100', 'severity': severity, **(extra_labels or {})},
        'annotations': {'summary': summary, 'odd': json.dumps(ODD_RAW, ensure_ascii=False)},
        'startsAt': now_iso(5),
        'endsAt': '0001-01-01T00:00:00Z' if status == 'firing' else now_iso(1),
        'fingerprint': fingerprint,
    }


def am_group(*alerts):
    return {'version': '4', 'status': 'firing', 'alerts': list(alerts), 'commonLabels': {'ünï': 'cødé'}}


def generic_alert(dedup_id, status='triggered', severity='warning', message='generic alert', raw=None):
    return {
        'source': 'a15-generic',
        'dedup_id': dedup_id,
        'status': status,
        'severity': severity,
        'message': message,
        'labels': {'host': 'ghost-a15'},
        'odd': raw if raw is not None else ODD_RAW,
    }


class RecordTestCase(TestCase):
    maxDiff = None
    """A superuser-free sender with a token; helpers to compare the receivers' change records with NetBox's own
    snapshots of the rows as stored."""

    def setUp(self):
        self.client = APIClient()
        self.header = {'HTTP_AUTHORIZATION': sender_authorization(f'a15-sender-{next(numbers)}')}
        self.queue = django_rq.get_queue(get_config().QUEUE_MAPPINGS.get('webhook', RQ_QUEUE_DEFAULT))
        self.queue.empty()
        self.addCleanup(self.queue.empty)

    def post(self, receiver, payload, status=None, query=''):
        response = self.client.post(BASE.format(receiver) + query, payload, format='json', **self.header)
        status = status or (202 if receiver == 'pagerduty' else 200)
        self.assertEqual(response.status_code, status, response.content[:500])
        return response

    @staticmethod
    def exclude():
        return ['last_updated'] if get_config().CHANGELOG_SKIP_EMPTY_CHANGES else []

    def netbox_snapshots(self, events):
        return {event.pk: serialize_object(Event.objects.get(pk=event.pk), exclude=self.exclude()) for event in events}

    def deliver_and_compare(self, receiver, payload, query=''):
        """Post (async, so the rows stay as the delivery stored them) and check each event record of the request
        against NetBox's serialize_object of the row before and after; returns the records by event id."""
        stored_before = {e.pk: e for e in Event.objects.all()}
        before = self.netbox_snapshots(stored_before.values())
        seen = set(ObjectChange.objects.values_list('pk', flat=True))
        with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
            self.post(receiver, payload, query=query)
        records = list(
            ObjectChange.objects.filter(changed_object_type=ContentType.objects.get_for_model(Event))
            .exclude(pk__in=seen)
            .order_by('pk')
        )
        after = self.netbox_snapshots(Event.objects.all())
        by_event = {}
        for record in records:
            self.assertNotIn(record.changed_object_id, by_event, 'two records for one event in one request')
            by_event[record.changed_object_id] = record
            pk = record.changed_object_id
            if record.action == 'create':
                self.assertIsNone(record.prechange_data)
                self.assertNotIn(pk, before)
            else:
                self.assertEqual(record.action, 'update')
                self.assertEqual(record.prechange_data, before[pk], f'prechange of event {pk}')
            self.assertEqual(record.postchange_data, after[pk], f'postchange of event {pk}')
        return by_event

    def webhook_jobs(self, rule):
        jobs = [job for job in self.queue.get_jobs() if job.func_name == 'extras.webhooks.send_webhook']
        return [
            (job.kwargs['event_type'], job.kwargs['data'], job.kwargs['snapshots'])
            for job in jobs
            if job.kwargs['event_rule'].pk == rule.pk
        ]


def event_custom_fields():
    """Custom fields of several types on events, and values for them."""
    choices = CustomFieldChoiceSet.objects.create(name='a15-choices', extra_choices=[['a', 'A'], ['b', 'B']])
    specs = [
        ('a15_text', 'text', {}),
        ('a15_long', 'longtext', {}),
        ('a15_int', 'integer', {}),
        ('a15_dec', 'decimal', {}),
        ('a15_bool', 'boolean', {}),
        ('a15_date', 'date', {}),
        ('a15_dt', 'datetime', {}),
        ('a15_url', 'url', {}),
        ('a15_json', 'json', {}),
        ('a15_select', 'select', {'choice_set': choices}),
        ('a15_multi', 'multiselect', {'choice_set': choices}),
        ('a15_obj', 'object', {'related_object_type': ObjectType.objects.get_for_model(EventSource)}),
        ('a15_objs', 'multiobject', {'related_object_type': ObjectType.objects.get_for_model(EventSource)}),
    ]
    for name, kind, more in specs:
        field = CustomField.objects.create(name=name, type=kind, **more)
        field.object_types.set([ObjectType.objects.get_for_model(Event)])
    source = EventSource.objects.get_or_create(name='a15-cf-target')[0]
    return {
        'a15_text': 'tëxt \U0001f525',
        'a15_long': 'line\nline',
        'a15_int': 2**40,
        'a15_dec': '12.50',
        'a15_bool': False,
        'a15_date': '2026-12-06',
        'a15_dt': '2026-12-06T15:04:05.123456+00:00',
        'a15_url': 'https://example.invalid/ü',
        'a15_json': {'n': [1, 2.5, None], 'big': 2**70, 'ü': 'ß'},
        'a15_select': 'a',
        'a15_multi': ['b', 'a'],
        'a15_obj': source.pk,
        'a15_objs': [source.pk],
    }


class ChangeRecordsTest(RecordTestCase):
    def scenario(self, receiver, first, repeat, resolved, ids):
        created = self.deliver_and_compare(receiver, first)
        self.assertEqual({r.action for r in created.values()}, {'create'})
        events = list(Event.objects.filter(dedup_id__in=ids).order_by('pk'))
        self.assertEqual(len(events), len(ids))
        # tags via the ORM on one, a custom field value and tags via REST on another
        values = event_custom_fields()
        tags = [Tag.objects.create(name=name, slug=f'a15-{i}') for i, name in enumerate(['zeta', 'Alpha', 'ärger'])]
        events[0].tags.set(tags[:2])
        admin = User.objects.create_superuser(username=f'a15-admin-{next(numbers)}')
        admin_client = APIClient()
        admin_client.force_authenticate(admin)
        response = admin_client.patch(
            f'/api/plugins/business-application/events/{events[-1].pk}/',
            {'tags': [{'name': 'ärger'}, {'name': 'zeta'}], 'custom_fields': values},
            format='json',
        )
        self.assertEqual(response.status_code, 200, response.content[:500])
        Event.objects.filter(pk=events[0].pk).update(custom_field_data={'a15_int': 7, 'a15_json': [1, {'a': 'b'}]})

        repeated = self.deliver_and_compare(receiver, repeat)
        resolved_records = self.deliver_and_compare(receiver, resolved)
        again = self.deliver_and_compare(receiver, resolved)  # a plain repeat of the clear
        return created, repeated, resolved_records, again

    def check_alertmanager(self):
        first = am_group(am_alert('a15-am-1'), am_alert('a15-am-2', severity='critical'))
        repeat = am_group(am_alert('a15-am-1', summary='still full'), am_alert('a15-am-2', severity='critical'))
        resolved = am_group(am_alert('a15-am-1', status='resolved'), am_alert('a15-am-2', status='resolved'))
        _, repeated, resolved_records, _ = self.scenario(
            'alertmanager', first, repeat, resolved, ['a15-am-1', 'a15-am-2']
        )
        tagged = Event.objects.get(dedup_id='a15-am-1')
        if tagged.pk in repeated:
            self.assertEqual(repeated[tagged.pk].postchange_data['tags'], ['Alpha', 'zeta'])
        self.assertEqual(len(resolved_records), 2)

    def test_alertmanager_skip_empty_on(self):
        with override_settings(CHANGELOG_SKIP_EMPTY_CHANGES=True):
            self.check_alertmanager()

    def test_alertmanager_skip_empty_off(self):
        with override_settings(CHANGELOG_SKIP_EMPTY_CHANGES=False):
            self.check_alertmanager()

    def test_generic_odd_payloads(self):
        odd = dict(ODD_RAW, deep=ODD_RAW)
        first = {'source': 'a15-generic', 'alerts': [generic_alert('g-1', raw=odd), generic_alert('g-2')]}
        repeat = {
            'source': 'a15-generic',
            'alerts': [generic_alert('g-1', raw={**odd, 'x': 'ÿ'}), generic_alert('g-2')],
        }
        resolved = {
            'source': 'a15-generic',
            'alerts': [generic_alert('g-1', status='ok'), generic_alert('g-2', status='ok')],
        }
        for skip in (True, False):
            with self.subTest(skip=skip), override_settings(CHANGELOG_SKIP_EMPTY_CHANGES=skip):
                Event.objects.all().delete()
                CustomField.objects.all().delete()
                CustomFieldChoiceSet.objects.all().delete()
                Tag.objects.all().delete()
                self.scenario('generic', first, repeat, resolved, ['g-1', 'g-2'])

    def test_pagerduty_and_grafana(self):
        trigger = {
            'routing_key': '0123',
            'event_action': 'trigger',
            'dedup_key': 'a15/pd-1',
            'payload': {
                'summary': 'pd ünïcode',
                'source': 'ghost-pd',
                'severity': 'error',
                'custom_details': ODD_RAW,
            },
        }
        self.deliver_and_compare('pagerduty', trigger, query='?source=a15-pd')
        event = Event.objects.get(dedup_id='a15/pd-1')
        event.tags.set([Tag.objects.create(name='pd-tag', slug='pd-tag')])
        self.deliver_and_compare('pagerduty', {**trigger, 'event_action': 'acknowledge'}, query='?source=a15-pd')
        self.deliver_and_compare('pagerduty', {**trigger, 'event_action': 'resolve'}, query='?source=a15-pd')
        grafana = {
            'receiver': 'netbox',
            'status': 'firing',
            'orgId': 1,
            'alerts': [
                {
                    'status': 'firing',
                    'labels': {'alertname': 'A15', 'severity': 'error', 'instance': 'ghost-gf'},
                    'annotations': {'summary': 'grafana ✓'},
                    'startsAt': now_iso(3),
                    'endsAt': '0001-01-01T00:00:00Z',
                    'fingerprint': 'a15-gf-1',
                    'values': {'B': 1e300, 'C': -0.0},
                }
            ],
            'version': '1',
        }
        self.deliver_and_compare('grafana', grafana)
        Event.objects.get(dedup_id='a15-gf-1').tags.set([Tag.objects.get(name='pd-tag')])
        grafana['alerts'][0]['annotations']['summary'] = 'grafana ✗'
        self.deliver_and_compare('grafana', grafana)

    def test_duplicate_tagged_items(self):
        """A tag assigned twice (NetBox's TaggedItem has no unique constraint: two concurrent tag edits can do it)
        is one tag in NetBox's snapshot (taggit's query is DISTINCT)."""
        self.deliver_and_compare('alertmanager', am_group(am_alert('a15-dup')))
        event = Event.objects.get(dedup_id='a15-dup')
        tag = Tag.objects.create(name='twice', slug='twice')
        event_type = ContentType.objects.get_for_model(Event)
        TaggedItem.objects.create(content_type=event_type, object_id=event.pk, tag=tag)
        TaggedItem.objects.create(content_type=event_type, object_id=event.pk, tag=tag)
        self.assertEqual(serialize_object(event)['tags'], ['twice'])
        records = self.deliver_and_compare('alertmanager', am_group(am_alert('a15-dup', summary='changed')))
        self.assertEqual(records[event.pk].postchange_data['tags'], ['twice'])

    def test_a_group_naming_one_alert_twice(self):
        """The per-alert path (``_store``, through the model and NetBox's signal)."""
        self.deliver_and_compare('alertmanager', am_group(am_alert('a15-twice-0')))
        stored = Event.objects.get(dedup_id='a15-twice-0')
        stored.tags.set([Tag.objects.create(name='t2', slug='t2'), Tag.objects.create(name='t1', slug='t1')])
        payload = am_group(
            am_alert('a15-twice-0', summary='first'),
            am_alert('a15-twice-1'),
            am_alert('a15-twice-1', status='resolved'),
            am_alert('a15-twice-0', summary='second'),
        )
        seen = set(ObjectChange.objects.values_list('pk', flat=True))
        with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
            self.post('alertmanager', payload)
        records = ObjectChange.objects.filter(changed_object_type=ContentType.objects.get_for_model(Event)).exclude(
            pk__in=seen
        )
        last = {}
        for record in records.order_by('pk'):
            last[record.changed_object_id] = record
        self.assertEqual(len(last), 2)
        for pk, record in last.items():
            event = Event.objects.get(pk=pk)
            self.assertEqual(record.postchange_data, serialize_object(event, exclude=self.exclude()))
        self.assertEqual(last[stored.pk].postchange_data['tags'], ['t1', 't2'])


class EventRuleSnapshotsTest(RecordTestCase):
    def test_rule_snapshots_are_the_change_records(self):
        rule = webhook_rule('a15-rule', Event, [OBJECT_CREATED, OBJECT_UPDATED])
        self.deliver_and_compare('alertmanager', am_group(am_alert('a15-r1'), am_alert('a15-r2')))
        values = event_custom_fields()
        first = Event.objects.get(dedup_id='a15-r1')
        first.tags.set([Tag.objects.create(name='b-tag', slug='b-tag'), Tag.objects.create(name='a-tag', slug='a-tag')])
        Event.objects.filter(pk=first.pk).update(custom_field_data=values)
        self.queue.empty()
        records = self.deliver_and_compare(
            'alertmanager', am_group(am_alert('a15-r1', status='resolved'), am_alert('a15-r2', summary='new'))
        )
        jobs = self.webhook_jobs(rule)
        self.assertEqual(len(jobs), 2)
        for event_type, data, snapshots in jobs:
            self.assertEqual(event_type, OBJECT_UPDATED)
            record = records[data['id']]
            self.assertEqual(snapshots['prechange'], record.prechange_data)
            self.assertEqual(snapshots['postchange'], record.postchange_data)
            if data['id'] == first.pk:
                self.assertEqual(sorted(t['name'] for t in data['tags']), ['a-tag', 'b-tag'])
                self.assertEqual(snapshots['postchange']['tags'], ['a-tag', 'b-tag'])
                self.assertEqual(snapshots['postchange']['custom_fields']['a15_json'], values['a15_json'])


class PermissionTest(TestCase):
    def setUp(self):
        self.client = APIClient()
        self.admin = event_sender_header('a15-admin', [], superuser=True)

    def post(self, header, payload, receiver='alertmanager', query=''):
        return self.client.post(BASE.format(receiver) + query, payload, format='json', **header)

    def state(self):
        return sorted(Event.objects.values_list('pk', 'dedup_id', 'criticallity', 'status', 'message', 'last_seen_at'))

    def assert_refused_and_nothing_changed(self, header, payload, receiver='alertmanager', query=''):
        before = self.state()
        changes = ObjectChange.objects.count()
        response = self.post(header, payload, receiver, query)
        self.assertEqual(response.status_code, 403, response.content[:400])
        self.assertEqual(self.state(), before)
        self.assertEqual(ObjectChange.objects.count(), changes)
        return response

    def test_before_check_on_criticallity(self):
        self.assertEqual(self.post(self.admin, am_group(am_alert('p-1', severity='critical'))).status_code, 200)
        user = event_sender_header('a15-warn', [(['view', 'add'], None), (['change'], {'criticallity': 'warning'})])
        # the stored one is critical: the user may not change it, whatever it would become
        self.assert_refused_and_nothing_changed(user, am_group(am_alert('p-1', severity='warning')))
        self.assert_refused_and_nothing_changed(
            user, am_group(am_alert('p-new', severity='warning'), am_alert('p-1', severity='warning'))
        )
        self.assertFalse(Event.objects.filter(dedup_id='p-new').exists())

    def test_after_check_on_status(self):
        self.assertEqual(self.post(self.admin, am_group(am_alert('p-2'))).status_code, 200)
        user = event_sender_header('a15-trig', [(['view', 'add', 'change'], {'status': 'triggered'})])
        self.assert_refused_and_nothing_changed(user, am_group(am_alert('p-2', status='resolved')))
        self.assertEqual(self.post(user, am_group(am_alert('p-2', summary='x'))).status_code, 200)

    def test_constraint_on_event_source_and_dedup_id(self):
        self.assertEqual(self.post(self.admin, am_group(am_alert('p-3')), query='?source=other').status_code, 200)
        self.assertEqual(self.post(self.admin, am_group(am_alert('p-3'))).status_code, 200)
        user = event_sender_header(
            'a15-src', [(['view', 'add', 'change'], {'event_source__name': 'prometheus', 'dedup_id__startswith': 'p-'})]
        )
        self.assertEqual(self.post(user, am_group(am_alert('p-3', summary='ok'))).status_code, 200)
        self.assert_refused_and_nothing_changed(user, am_group(am_alert('p-3', summary='no')), query='?source=other')
        self.assert_refused_and_nothing_changed(user, am_group(am_alert('q-3')))
        # the group naming one alert twice (the per-alert path) is checked as well
        self.assert_refused_and_nothing_changed(
            user, am_group(am_alert('p-3', summary='a'), am_alert('p-3', summary='b')), query='?source=other'
        )

    def test_list_of_constraints(self):
        """Two constraint sets (OR): the stored alert matches the second only."""
        self.assertEqual(self.post(self.admin, am_group(am_alert('p-4', severity='critical'))).status_code, 200)
        user = event_sender_header(
            'a15-or',
            [(['view', 'add'], None), (['change'], [{'criticallity': 'info'}, {'criticallity': 'critical'}])],
        )
        self.assertEqual(self.post(user, am_group(am_alert('p-4', severity='critical', summary='y'))).status_code, 200)
        self.assert_refused_and_nothing_changed(user, am_group(am_alert('p-4', severity='warning')))

    def test_user_token_constraint(self):
        """A ``$user`` constraint token."""
        self.assertEqual(self.post(self.admin, am_group(am_alert('p-5'))).status_code, 200)
        user = event_sender_header('a15-tok', [(['view', 'add'], None), (['change'], {'tags__name': '$user'})])
        self.assert_refused_and_nothing_changed(user, am_group(am_alert('p-5', summary='z')))

    def test_read_only_token_and_no_permissions(self):
        self.assertEqual(self.post(self.admin, am_group(am_alert('p-6'))).status_code, 200)
        read_only = event_sender_header('a15-ro', [(['view', 'add', 'change'], None)], write_enabled=False)
        self.assert_refused_and_nothing_changed(read_only, am_group(am_alert('p-6', summary='ro')))
        self.assert_refused_and_nothing_changed(read_only, am_group(am_alert('p-6-new')))
        nothing = event_sender_header('a15-none', [])
        self.assert_refused_and_nothing_changed(nothing, am_group(am_alert('p-6', summary='none')))
        admin_ro = event_sender_header('a15-admin-ro', [], superuser=True, write_enabled=False)
        self.assert_refused_and_nothing_changed(admin_ro, am_group(am_alert('p-6', summary='admin-ro')))

    def test_answer_hides_what_the_user_may_not_view(self):
        self.assertEqual(self.post(self.admin, am_group(am_alert('p-7', severity='critical'))).status_code, 200)
        hidden = Event.objects.get(dedup_id='p-7')
        # may change anything, view only warnings; no view of incidents
        user = event_sender_header('a15-view', [(['add', 'change'], None), (['view'], {'criticallity': 'warning'})])
        response = self.post(user, am_group(am_alert('p-7', severity='critical', summary='v'), am_alert('p-8')))
        self.assertEqual(response.status_code, 200, response.content[:300])
        body = response.json()
        text = json.dumps(body)
        events = {e['dedup_id']: e for e in body['events']}
        self.assertIsNone(events['p-7']['id'])
        self.assertEqual(events['p-8']['id'], Event.objects.get(dedup_id='p-8').pk)
        self.assertIsNone(body['unmapped'])
        self.assertEqual(body['incidents'], [])
        for event in body['events']:
            self.assertEqual(event['incidents'], [])
        self.assertNotIn(f'"id": {hidden.pk}', text)
        # with a view on incidents constrained to none of them
        user2 = event_sender_header('a15-view2', [(['add', 'change', 'view'], None)], extra=())
        permission = ObjectPermission.objects.create(name='a15-inc', actions=['view'], constraints={'pk': 0})
        permission.object_types.add(ContentType.objects.get_for_model(Incident))
        permission.users.add(User.objects.get(username='a15-view2'))
        response = self.post(user2, am_group(am_alert('p-7', severity='critical', summary='w')))
        self.assertEqual(response.status_code, 200, response.content[:300])
        self.assertEqual(response.json()['incidents'], [])

    def test_superuser_sees_everything(self):
        response = self.post(self.admin, am_group(am_alert('p-9', severity='critical')))
        self.assertEqual(response.status_code, 200)
        body = response.json()
        self.assertEqual(body['events'][0]['id'], Event.objects.get(dedup_id='p-9').pk)
        self.assertEqual(body['incidents'], sorted(Incident.objects.values_list('pk', flat=True)))
        self.assertIsNotNone(body['unmapped'])


class TaggedQueryCountTest(RecordTestCase):
    """Tagged stored alerts, with and without rules, sync and async: a repeat costs the same queries whatever the
    group's size (no query per alert for its tags)."""

    def count(self, payload, receiver='alertmanager'):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            self.post(receiver, payload)
        return [
            q['sql'] for q in queries.captured_queries if not q['sql'].startswith('INSERT INTO "core_objectchange"')
        ]

    def run_sizes(self, rules):
        from business_application.models import Incident as IncidentModel

        if rules:
            webhook_rule('a15-ev', Event, [OBJECT_CREATED, OBJECT_UPDATED])
            webhook_rule('a15-inc', IncidentModel, [OBJECT_CREATED, OBJECT_UPDATED])
        tags = [Tag.objects.create(name=f'qc-{i}', slug=f'qc-{i}') for i in range(3)]
        results = {}
        for asynchronous in (True, False):
            with override_settings(BUSINESS_APP_ASYNC_PROCESSING=asynchronous):
                for size in (2, 3, 12):  # 2: warm-up of the process caches
                    name = f'QC{size}{asynchronous}'
                    alerts = [am_alert(f'{name}-{i}', extra_labels={'n': str(i)}) for i in range(size)]
                    self.post('alertmanager', am_group(*alerts))
                    for event in Event.objects.filter(dedup_id__startswith=f'{name}-'):
                        event.tags.set(tags)
                    repeat = [am_alert(f'{name}-{i}', summary='again', extra_labels={'n': str(i)}) for i in range(size)]
                    results[(asynchronous, size)] = self.count(am_group(*repeat))
        return results

    def test_without_rules(self):
        results = self.run_sizes(False)
        for asynchronous in (True, False):
            small, large = results[(asynchronous, 3)], results[(asynchronous, 12)]
            self.assertEqual(len(small), len(large), (asynchronous, sorted(set(large) - set(small))[:5]))

    def test_with_rules(self):
        results = self.run_sizes(True)
        for asynchronous in (True, False):
            small, large = results[(asynchronous, 3)], results[(asynchronous, 12)]
            import collections
            import re

            def norm(qs):
                return collections.Counter(re.sub(r'\d+', 'N', re.sub(r'IN \([^)]*\)', 'IN (..)', q))[:160] for q in qs)

            self.assertEqual(
                len(small), len(large), (asynchronous, norm(large) - norm(small), norm(small) - norm(large))
            )


class IncidentRecordsTest(RecordTestCase):
    """The incidents' change records written by a synchronous delivery (opened, widened, tagged, with custom
    fields) end with NetBox's own snapshot of the incident as stored."""

    def incident_records(self, seen):
        last = {}
        for record in (
            ObjectChange.objects.filter(changed_object_type=ContentType.objects.get_for_model(Incident))
            .exclude(pk__in=seen)
            .order_by('pk')
        ):
            last[record.changed_object_id] = record
        return last

    def deliver_sync(self, payload):
        seen = set(ObjectChange.objects.values_list('pk', flat=True))
        before = {i.pk: serialize_object(i, exclude=self.exclude()) for i in Incident.objects.all()}
        with override_settings(BUSINESS_APP_ASYNC_PROCESSING=False):
            self.post('alertmanager', payload)
        records = self.incident_records(seen)
        for pk, record in records.items():
            self.assertEqual(
                record.postchange_data, serialize_object(Incident.objects.get(pk=pk), exclude=self.exclude())
            )
            if record.action == 'update' and pk in before:
                first = (
                    ObjectChange.objects.filter(
                        changed_object_type=ContentType.objects.get_for_model(Incident), changed_object_id=pk
                    )
                    .exclude(pk__in=seen)
                    .order_by('pk')
                    .first()
                )
                self.assertEqual(first.prechange_data, before[pk])
        return records

    def test_incidents(self):
        from ..integration.maps import build

        build(
            'name: a15\ngraph:\n  services: [web]\n  devices:\n'
            '    - {name: a15-a, role: server, services: [web]}\n    - {name: a15-b, role: server, services: [web]}\n'
        )
        field = CustomField.objects.create(name='a15_runbook', type='json')
        field.object_types.set([ObjectType.objects.get_for_model(Incident)])
        first = am_alert('inc-a', extra_labels={'instance': 'a15-a:9100'})
        first['labels']['instance'] = 'a15-a:9100'
        records = self.deliver_sync(am_group(first))
        self.assertTrue(records)
        incident = Incident.objects.get()
        incident.tags.set([Tag.objects.create(name='noc', slug='noc'), Tag.objects.create(name='Ops', slug='ops')])
        Incident.objects.filter(pk=incident.pk).update(custom_field_data={'a15_runbook': {'ü': [1, 2**65, 0.5]}})
        second = am_alert('inc-b')
        second['labels']['instance'] = 'a15-b:9100'
        for skip in (True, False):
            with override_settings(CHANGELOG_SKIP_EMPTY_CHANGES=skip):
                self.deliver_sync(am_group(first, second))
        resolved = [am_alert('inc-a', status='resolved'), am_alert('inc-b', status='resolved')]
        resolved[0]['labels']['instance'] = 'a15-a:9100'
        resolved[1]['labels']['instance'] = 'a15-b:9100'
        self.deliver_sync(am_group(*resolved))


class RefusedBeforeLeavesNoTraceTest(RecordTestCase):
    """The "before" refusal now comes after ``ingest`` created the missing event sources: nothing of them may
    remain (row, change record, event-rule job)."""

    def test_refused_repeat_with_a_new_source_in_the_batch(self):
        rule = webhook_rule('a15-sources', EventSource, [OBJECT_CREATED])
        admin = event_sender_header('a15-admin-src', [], superuser=True)
        first = {'source': 'a15-old', 'alerts': [generic_alert('s-1', severity='critical')]}
        first['alerts'][0]['source'] = 'a15-old'
        self.assertEqual(self.client.post(BASE.format('generic'), first, format='json', **admin).status_code, 200)
        self.queue.empty()
        user = event_sender_header('a15-src-user', [(['view', 'add'], None), (['change'], {'criticallity': 'warning'})])
        batch = {
            'alerts': [dict(generic_alert('s-2'), source='a15-brand-new'), dict(generic_alert('s-1'), source='a15-old')]
        }
        changes = ObjectChange.objects.count()
        response = self.client.post(BASE.format('generic'), batch, format='json', **user)
        self.assertEqual(response.status_code, 403, response.content[:300])
        self.assertFalse(EventSource.objects.filter(name='a15-brand-new').exists())
        self.assertEqual(ObjectChange.objects.count(), changes)
        self.assertEqual(self.webhook_jobs(rule), [])
        self.assertEqual(Event.objects.get(dedup_id='s-1').criticallity, 'critical')
