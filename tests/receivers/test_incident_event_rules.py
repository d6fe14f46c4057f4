"""NetBox's event rules on incidents see what the correlator does: an incident a decision opens reaches an
object-created rule once, with the title, severity and root cause that decision gave it (not its placeholder), and
each later decision that changes it (a joining alert, a resolution) reaches an object-updated rule once, with the
incident's snapshots before and after that decision. Synchronous decisions queue them in the receiver's request;
asynchronous ones in the decision job, which runs under NetBox's event tracking as NetBox runs a script job. NetBox's
change log records an opened incident in the state the decision left it, not its placeholder.

The alerts go through the Alertmanager receiver; the decision jobs and NetBox's webhook jobs are the real ones read
back from Redis (the decision jobs are run here as a worker would, the webhook jobs never)."""

import collections
import logging
import types

import django_rq
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from core.events import OBJECT_CREATED, OBJECT_UPDATED
from core.models import ObjectChange
from extras.models import Tag
from netbox.config import get_config
from netbox.constants import RQ_QUEUE_DEFAULT
from utilities.serialization import serialize_object

from business_application.models import Incident

from ..integration.maps import build
from ..senders import sender_authorization, webhook_rule

SEND_WEBHOOK = 'extras.webhooks.send_webhook'
DECISION_JOBS = ('business_application.jobs.process_event_job', 'business_application.jobs.process_events_job')
URL = '/api/plugins/business-application/alerts/alertmanager/'
PLACEHOLDER = '(correlating)'

#: Racks, each a component of the map: an alert group on one never touches another's incident ('w' warms up).
RACKS = {'w': 1, 'a': 4, 'b': 24}
MAP = (
    'name: racks\ngraph:\n  services: ['
    + ', '.join(f'web-{rack}' for rack in RACKS)
    + ']\n  devices:\n'
    + ''.join(f'    - {{name: tor-{rack}, role: switch}}\n' for rack in RACKS)
    + ''.join(
        f'    - {{name: {rack}-{i}, role: server, services: [web-{rack}], links: [tor-{rack}]}}\n'
        for rack, size in RACKS.items()
        for i in range(size)
    )
)
#: Two servers on different services behind one switch: each opens its incident, the switch merges them.
MERGE = (
    'name: merge\ngraph:\n  services: [m0, m1]\n  devices:\n    - {name: core-m, role: switch}\n'
    '    - {name: m-0, role: server, services: [m0], links: [core-m]}\n'
    '    - {name: m-1, role: server, services: [m1], links: [core-m]}\n'
)


def group(hosts, status='firing', severity='critical', alertname='HostDown', minute=0):
    return {
        'version': '4',
        'status': status,
        'alerts': [
            {
                'status': status,
                'labels': {'alertname': alertname, 'instance': f'{host}:9100', 'severity': severity},
                'startsAt': f'2026-01-01T00:{minute:02}:00Z',
                'endsAt': '0001-01-01T00:00:00Z' if status == 'firing' else f'2026-01-01T00:{minute + 5:02}:00Z',
                'fingerprint': f'{alertname}-{host}',
            }
            for host in hosts
        ],
    }


def rack(name, count=None):
    return [f'{name}-{i}' for i in range(RACKS[name] if count is None else count)]


def incident_rule(name, event_types, conditions=None):
    """An enabled event rule on the Incident object type whose action is a webhook."""
    return webhook_rule(name, Incident, event_types, conditions)


class IncidentRulesTestCase(TestCase):
    """A sender with a token, the map, and NetBox's webhook queue emptied before and after each test."""

    def setUp(self):
        build(MAP)
        self.client = APIClient()
        self.client.credentials(HTTP_AUTHORIZATION=sender_authorization('incident-rules-sender'))
        self.webhooks = django_rq.get_queue(get_config().QUEUE_MAPPINGS.get('webhook', RQ_QUEUE_DEFAULT))
        self.decisions = django_rq.get_queue('default')
        for queue in (self.webhooks, self.decisions):
            queue.empty()
            self.addCleanup(queue.empty)
        self.ran = set()

    def post(self, payload):
        """Post a group, then (with asynchronous processing) run the decision jobs it queued, as a worker would."""
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(URL, payload, format='json')
        self.assertEqual(response.status_code, 200, response.content[:300])
        for job in self.decisions.get_jobs():
            if job.func_name in DECISION_JOBS and job.id not in self.ran:
                self.ran.add(job.id)
                job.func(*job.args, **job.kwargs)

    def jobs(self, rule):
        """The webhook jobs NetBox queued for this rule since the last call: [(event type, data, snapshots)]."""
        found = [
            (job.kwargs['event_type'], job.kwargs['data'], job.kwargs['snapshots'])
            for job in self.webhooks.get_jobs()
            if job.func_name == SEND_WEBHOOK and job.kwargs['event_rule'].pk == rule.pk
        ]
        for job in self.webhooks.get_jobs():
            if job.func_name == SEND_WEBHOOK:
                job.delete()
        return found


class IncidentEventRulesTest(IncidentRulesTestCase):
    def check_lifecycle(self):
        rule = incident_rule('incident-changes', [OBJECT_CREATED, OBJECT_UPDATED])

        # Opened by the first alert, joined by the others of the same group: one created event, its final state.
        self.post(group(rack('a', 3), severity='warning'))
        incident = Incident.objects.get()
        self.assertNotEqual(incident.title, PLACEHOLDER)
        ((event_type, data, snapshots),) = self.jobs(rule)
        self.assertEqual(event_type, OBJECT_CREATED)
        self.assertEqual(data['id'], incident.pk)
        self.assertEqual(data['title'], incident.title)
        self.assertEqual(data['severity']['value'], 'warning')
        self.assertEqual(data['root_cause'], incident.root_cause)
        self.assertNotEqual(data['root_cause'], '')
        self.assertEqual(data['status']['value'], 'new')
        self.assertEqual(len(data['members']), 3)
        self.assertEqual([service['name'] for service in data['affected_services']], ['web-a'])
        self.assertIsNone(snapshots['prechange'])
        self.assertEqual(snapshots['postchange']['title'], incident.title)
        self.assertEqual(snapshots['postchange']['severity'], 'warning')

        # A critical alert joins: one updated event, before and after this decision.
        self.post(group(['a-3'], severity='critical'))
        ((event_type, data, snapshots),) = self.jobs(rule)
        self.assertEqual((event_type, data['id']), (OBJECT_UPDATED, incident.pk))
        self.assertEqual(data['severity']['value'], 'critical')
        self.assertEqual(len(data['members']), 4)
        before, after = snapshots['prechange'], snapshots['postchange']
        self.assertEqual((before['severity'], after['severity']), ('warning', 'critical'))
        self.assertEqual(snapshots['prechange']['title'], incident.title)

        # Every alert clears: one updated event for the whole group, resolving the incident.
        self.post(group(rack('a'), status='resolved', severity='critical'))
        ((event_type, data, snapshots),) = self.jobs(rule)
        self.assertEqual((event_type, data['id'], data['status']['value']), (OBJECT_UPDATED, incident.pk, 'resolved'))
        self.assertEqual((snapshots['prechange']['status'], snapshots['postchange']['status']), ('new', 'resolved'))
        self.assertIsNone(snapshots['prechange']['resolved_at'])
        self.assertIsNotNone(snapshots['postchange']['resolved_at'])
        incident.refresh_from_db()
        self.assertEqual(incident.status, 'resolved')

        # A repeat of the clears changes no incident: nothing queued.
        self.post(group(rack('a'), status='resolved', severity='critical'))
        self.assertEqual(self.jobs(rule), [])

    def test_synchronous_decisions_queue_the_incidents_rules_in_the_request(self):
        self.check_lifecycle()

    @override_settings(BUSINESS_APP_ASYNC_PROCESSING=True)
    def test_decision_jobs_queue_the_incidents_rules_under_netboxs_event_tracking(self):
        self.check_lifecycle()

    @override_settings(BUSINESS_APP_ASYNC_PROCESSING=True)
    def test_a_decision_job_queues_its_rules_as_the_user_that_stored_the_events(self):
        rule = incident_rule('incident-created', [OBJECT_CREATED])
        self.post(group(rack('a', 2)))
        (job,) = [job for job in self.webhooks.get_jobs() if job.func_name == SEND_WEBHOOK]
        self.assertEqual(job.kwargs['event_rule'].pk, rule.pk)
        self.assertEqual(job.kwargs['request'].user.username, 'incident-rules-sender')
        self.assertEqual(job.kwargs['request'].COOKIES, {})

    @override_settings(BUSINESS_APP_ASYNC_PROCESSING=True)
    def test_the_sweep_decides_under_the_request_that_stored_the_events(self):
        from business_application.jobs import SweepUnprocessedEventsJob
        from business_application.models import Event

        rule = incident_rule('incident-created', [OBJECT_CREATED])
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(URL, group(rack('a', 2)), format='json')
        self.assertEqual(response.status_code, 200, response.content[:300])
        self.decisions.empty()  # the decision job is lost: a worker was killed
        stored = ObjectChange.objects.filter(changed_object_type=ContentType.objects.get_for_model(Event)).latest('pk')
        self.assertIsNotNone(stored.request_id)

        sweep = SweepUnprocessedEventsJob.__new__(SweepUnprocessedEventsJob)  # its run, without NetBox's Job row
        sweep.job, sweep.logger = types.SimpleNamespace(data=None), logging.getLogger('test')
        with self.captureOnCommitCallbacks(execute=True):
            sweep.run()
        incident = Incident.objects.get()
        self.assertNotEqual(incident.title, PLACEHOLDER)
        (job,) = [job for job in self.webhooks.get_jobs() if job.func_name == SEND_WEBHOOK]
        self.assertEqual(job.kwargs['request'].user.username, 'incident-rules-sender')
        ((event_type, data, _),) = self.jobs(rule)
        self.assertEqual((event_type, data['id'], data['title']), (OBJECT_CREATED, incident.pk, incident.title))
        created = ObjectChange.objects.get(
            changed_object_type=ContentType.objects.get_for_model(Incident), changed_object_id=incident.pk
        )
        self.assertEqual(
            (created.action, created.request_id, created.user_name, created.postchange_data['title']),
            ('create', stored.request_id, 'incident-rules-sender', incident.title),
        )

    def test_each_rule_gets_only_its_event_types(self):
        created = incident_rule('incident-created', [OBJECT_CREATED])
        updated = incident_rule('incident-updated', [OBJECT_UPDATED])
        self.post(group(rack('a', 2)))
        self.post(group(rack('a', 2), status='resolved'))
        self.assertEqual(
            [(event_type, data['status']['value']) for event_type, data, _ in self.jobs(created)],
            [(OBJECT_CREATED, 'new')],
        )
        self.post(group(rack('a', 2), minute=10))  # reopened
        self.assertEqual(
            [(event_type, data['status']['value']) for event_type, data, _ in self.jobs(updated)],
            [(OBJECT_UPDATED, 'new')],
        )

    def check_merge(self):
        rule = incident_rule('incident-updated', [OBJECT_UPDATED])
        build(MERGE)
        self.post(group(['m-0']))
        self.post(group(['m-1']))
        first, second = Incident.objects.order_by('pk')
        self.assertEqual(self.jobs(rule), [])

        # The switch alert joins the first incident and merges the second into it: one update each.
        self.post(group(['core-m']))
        updates = {data['id']: (event_type, data, snapshots) for event_type, data, snapshots in self.jobs(rule)}
        self.assertEqual(set(updates), {first.pk, second.pk})
        self.assertEqual({event_type for event_type, _, _ in updates.values()}, {OBJECT_UPDATED})
        _, data, snapshots = updates[second.pk]
        self.assertEqual((data['status']['value'], data['merged_into']), ('closed', first.pk))
        before, after = snapshots['prechange'], snapshots['postchange']
        self.assertEqual((before['status'], before['merged_into']), ('new', None))
        self.assertEqual((after['status'], after['merged_into']), ('closed', first.pk))
        _, data, snapshots = updates[first.pk]
        first.refresh_from_db()
        self.assertEqual(data['title'], first.title)
        self.assertNotEqual(snapshots['prechange']['title'], snapshots['postchange']['title'])
        self.assertEqual(snapshots['postchange']['title'], first.title)
        self.assertEqual(len(data['members']), 3)

    def test_a_merge_updates_both_incidents(self):
        self.check_merge()

    @override_settings(BUSINESS_APP_ASYNC_PROCESSING=True)
    def test_a_merge_by_a_decision_job_updates_both_incidents(self):
        self.check_merge()

    def check_conditions(self):
        matching = incident_rule(
            'critical-incidents', [OBJECT_CREATED, OBJECT_UPDATED], {'attr': 'severity.value', 'value': 'critical'}
        )
        other = incident_rule(
            'info-incidents', [OBJECT_CREATED, OBJECT_UPDATED], {'attr': 'severity.value', 'value': 'info'}
        )
        self.post(group(rack('a')))
        self.post(group(rack('a'), status='resolved'))
        self.assertEqual(self.webhook_rules(), collections.Counter({matching.pk: 2}))
        self.assertNotIn(other.pk, self.webhook_rules())

    def webhook_rules(self):
        return collections.Counter(
            job.kwargs['event_rule'].pk for job in self.webhooks.get_jobs() if job.func_name == SEND_WEBHOOK
        )

    def test_a_rule_whose_conditions_do_not_match_queues_nothing(self):
        self.check_conditions()

    @override_settings(BUSINESS_APP_ASYNC_PROCESSING=True)
    def test_a_rule_whose_conditions_do_not_match_queues_nothing_from_a_job(self):
        self.check_conditions()


class IncidentChangeLogTest(IncidentRulesTestCase):
    """NetBox's change log records an opened incident as the decision left it, and each decision batch that changes
    it, with or without event rules."""

    def check_creation_record(self):
        self.post(group(rack('a', 3), severity='warning'))
        incident = Incident.objects.get()
        (record,) = ObjectChange.objects.filter(
            changed_object_type=ContentType.objects.get_for_model(Incident), changed_object_id=incident.pk
        )
        self.assertEqual(record.action, 'create')
        self.assertEqual(record.user_name, 'incident-rules-sender')
        self.assertEqual(record.object_repr, str(incident))
        self.assertNotIn(PLACEHOLDER, record.object_repr)
        data = record.postchange_data
        self.assertEqual((data['title'], data['severity'], data['status']), (incident.title, 'warning', 'new'))
        self.assertEqual(data['root_cause'], incident.root_cause)
        self.assertNotEqual(data['root_cause'], '')
        self.assertEqual(data['affected_services'], [incident.affected_services.get().pk])

    def check_update_records(self):
        """Each decision batch that changes the incident writes one update record with its snapshots before and
        after; one that only moves its latest activity (a repeat) writes none."""
        incident = Incident.objects.get()

        def updates():
            return list(
                ObjectChange.objects.filter(
                    changed_object_type=ContentType.objects.get_for_model(Incident),
                    changed_object_id=incident.pk,
                    action='update',
                ).order_by('pk')
            )

        self.post(group(rack('a', 3), severity='warning'))  # repeats
        self.assertEqual(updates(), [])
        incident.tags.set([Tag.objects.create(name=name, slug=name) for name in ('noc', 'customer-a')])
        exclude = ['last_updated'] if get_config().CHANGELOG_SKIP_EMPTY_CHANGES else []
        before = serialize_object(Incident.objects.get(pk=incident.pk), exclude=exclude)
        self.post(group(['a-3'], severity='critical'))  # joins and raises the severity
        (raised,) = updates()
        self.assertEqual(
            (raised.prechange_data['severity'], raised.postchange_data['severity']), ('warning', 'critical')
        )
        # NetBox's own snapshots of the incident before and after the batch, its tags on both sides.
        self.assertEqual(raised.prechange_data, before)
        after = serialize_object(Incident.objects.get(pk=incident.pk), exclude=exclude)
        self.assertEqual(raised.postchange_data, after)
        self.assertEqual(raised.postchange_data['tags'], ['customer-a', 'noc'])
        self.assertEqual((raised.user_name, raised.object_repr), ('incident-rules-sender', str(incident)))
        self.post(group(rack('a'), status='resolved'))
        resolved = updates()[-1]
        self.assertEqual(len(updates()), 2)
        self.assertEqual((resolved.prechange_data['status'], resolved.postchange_data['status']), ('new', 'resolved'))

    def test_synchronous_decisions(self):
        self.check_creation_record()
        self.check_update_records()

    @override_settings(BUSINESS_APP_ASYNC_PROCESSING=True)
    def test_decision_jobs(self):
        self.check_creation_record()
        self.check_update_records()

    def check_repeats_read_no_snapshot(self):
        """A batch of repeats reads only the incident's latest activity, not its snapshots (their tags among
        them); one that changes the incident reads them before and after its writes."""

        def tag_reads(payload):
            with CaptureQueriesContext(connection) as queries:
                self.post(payload)
            return sum(
                'extras_taggeditem' in query['sql'] and '"model" = \'incident\'' in query['sql']
                for query in queries.captured_queries
            )

        self.post(group(rack('a', 3), severity='warning'))
        self.assertEqual(tag_reads(group(rack('a', 3), severity='warning')), 0)
        self.assertEqual(tag_reads(group(['a-3'], severity='critical')), 2)

    def test_repeats_read_no_snapshot(self):
        self.check_repeats_read_no_snapshot()

    @override_settings(BUSINESS_APP_ASYNC_PROCESSING=True)
    def test_repeats_read_no_snapshot_in_decision_jobs(self):
        self.check_repeats_read_no_snapshot()

    def check_merge_records(self):
        """A batch whose repeat and join first move both incidents' latest activity, then merges them: each update
        record's snapshot before is the incident as it was before the batch, latest activity included."""
        build(MERGE)
        self.post(group(['m-0']))
        self.post(group(['m-1'], minute=1))
        first, second = Incident.objects.order_by('pk')
        before = {incident.pk: incident.serialize_object()['last_activity_at'] for incident in (first, second)}
        self.post(group(['m-0', 'core-m', 'm-1'], minute=2))
        records = {
            record.changed_object_id: record
            for record in ObjectChange.objects.filter(
                changed_object_type=ContentType.objects.get_for_model(Incident), action='update'
            )
        }
        self.assertEqual(set(records), {first.pk, second.pk})
        second.refresh_from_db()
        self.assertEqual(second.merged_into_id, first.pk)
        for pk, record in records.items():
            self.assertEqual(record.prechange_data['last_activity_at'], before[pk])
            stored = Incident.objects.get(pk=pk).serialize_object()
            self.assertEqual(record.postchange_data['last_activity_at'], stored['last_activity_at'])
        self.assertEqual(records[second.pk].prechange_data['merged_into'], None)
        self.assertNotEqual(records[first.pk].prechange_data['title'], records[first.pk].postchange_data['title'])

    def test_a_merge_records_both_incidents_as_they_were(self):
        self.check_merge_records()

    @override_settings(BUSINESS_APP_ASYNC_PROCESSING=True)
    def test_a_merge_by_a_decision_job_records_both_incidents_as_they_were(self):
        self.check_merge_records()


class IncidentEventRulesQueryCountTest(IncidentRulesTestCase):
    """With a rule on every incident change, a decision batch costs the same queries whatever its size: each
    changed incident is read and serialized once, not once per alert."""

    def setUp(self):
        super().setUp()
        incident_rule('every-incident', [OBJECT_CREATED, OBJECT_UPDATED])
        # The process's one-time lookups (content types, the event source), on neither rack.
        self.post(group(rack('w'), alertname='Warmup'))
        self.post(group(rack('w'), alertname='Warmup', status='resolved'))

    def count(self, payload):
        with CaptureQueriesContext(connection) as queries:
            self.post(payload)
        return len(queries.captured_queries)

    def check_counts(self):
        counts = {}
        for name in ('a', 'b'):
            counts[name, 'open'] = self.count(group(rack(name)))
            counts[name, 'resolve'] = self.count(group(rack(name), status='resolved'))
        self.assertEqual(counts['a', 'open'], counts['b', 'open'], counts)
        self.assertEqual(counts['a', 'resolve'], counts['b', 'resolve'], counts)
        self.assertEqual(Incident.objects.filter(status='resolved').count(), 3)
        return counts

    def test_synchronous_decisions(self):
        print(f'queries per group with an incident rule, synchronous: {self.check_counts()}')

    @override_settings(BUSINESS_APP_ASYNC_PROCESSING=True)
    def test_decision_jobs(self):
        print(f'queries per group and its decision job with an incident rule: {self.check_counts()}')
