"""The receivers run NetBox's own event rules for the alerts they store, as a save through the model does: NetBox
queues an event rule's action once per alert created and once per alert changed, with the event's data and its
snapshots, after the request, and not at all when the rule's conditions do not match."""

import django_rq
from django.test import override_settings

from core.events import OBJECT_CREATED, OBJECT_UPDATED
from extras.models import EventRule
from netbox.config import get_config
from netbox.constants import RQ_QUEUE_DEFAULT

from business_application.models import Event

from ..senders import webhook_rule as rule_on
from .test_batched_intake import SERVERS, SenderTestCase, group

SEND_WEBHOOK = 'extras.webhooks.send_webhook'


def webhook_rule(name, event_types, conditions=None):
    """An enabled event rule on the Event object type whose action is a webhook."""
    return rule_on(name, Event, event_types, conditions)


class RuleTestCase(SenderTestCase):
    """A sender, and the RQ queue on which NetBox puts its webhook jobs, emptied before and after each test."""

    def setUp(self):
        super().setUp()
        self.queue = django_rq.get_queue(get_config().QUEUE_MAPPINGS.get('webhook', RQ_QUEUE_DEFAULT))
        self.queue.empty()
        self.addCleanup(self.queue.empty)


class ReceiverEventRulesTest(RuleTestCase):
    def setUp(self):
        super().setUp()
        self.hosts = [f'srv-{i}' for i in range(4)]

    def webhook_jobs(self, rule):
        """The webhook jobs NetBox queued in Redis for this rule: [(event type, event data, snapshots)]."""
        jobs = [job for job in self.queue.get_jobs() if job.func_name == SEND_WEBHOOK]
        return [
            (job.kwargs['event_type'], job.kwargs['data'], job.kwargs['snapshots'])
            for job in jobs
            if job.kwargs['event_rule'].pk == rule.pk
        ]

    def test_each_new_and_each_changed_alert_queues_the_rules_webhook(self):
        rule = webhook_rule('alert-changes', [OBJECT_CREATED, OBJECT_UPDATED])

        self.post(group(self.hosts, alertname='Ruled'))
        events = {event.pk: event for event in Event.objects.filter(dedup_id__startswith='Ruled-')}
        created = self.webhook_jobs(rule)
        self.assertEqual([event_type for event_type, _, _ in created], [OBJECT_CREATED] * 4)
        self.assertEqual({data['id'] for _, data, _ in created}, set(events))
        for _, data, snapshots in created:
            event = events[data['id']]
            self.assertEqual(data['dedup_id'], event.dedup_id)
            self.assertEqual(data['status']['value'], 'triggered')
            self.assertEqual(data['obj']['id'], event.object_id)
            self.assertEqual(data['obj']['name'], event.dedup_id.removeprefix('Ruled-'))
            self.assertEqual(data['incidents'], sorted(set(event.memberships.values_list('incident_id', flat=True))))
            self.assertNotEqual(data['incidents'], [])
            self.assertEqual(data['event_source_name'], 'prometheus')
            self.assertIsNone(snapshots['prechange'])
            self.assertEqual(snapshots['postchange']['dedup_id'], data['dedup_id'])

        self.queue.empty()
        self.post(group(self.hosts, alertname='Ruled', status='resolved'))
        updated = self.webhook_jobs(rule)
        self.assertEqual([event_type for event_type, _, _ in updated], [OBJECT_UPDATED] * 4)
        self.assertEqual({data['id'] for _, data, _ in updated}, set(events))
        for _, data, snapshots in updated:
            self.assertEqual(data['status']['value'], 'ok')
            self.assertEqual((snapshots['prechange']['status'], snapshots['postchange']['status']), ('triggered', 'ok'))

    def test_a_repeat_queues_one_update_per_alert_and_no_create(self):
        created_only = webhook_rule('alert-created', [OBJECT_CREATED])
        updated_only = webhook_rule('alert-updated', [OBJECT_UPDATED])

        self.post(group(self.hosts, alertname='Repeated'))
        self.post(group(self.hosts, alertname='Repeated'))
        self.assertEqual(len(self.webhook_jobs(created_only)), 4)
        updates = self.webhook_jobs(updated_only)
        self.assertEqual(len(updates), 4)
        self.assertEqual({data['dedup_id'] for _, data, _ in updates}, {f'Repeated-{host}' for host in self.hosts})

    def test_a_rule_whose_conditions_do_not_match_queues_nothing(self):
        matching = webhook_rule(
            'critical-alerts', [OBJECT_CREATED, OBJECT_UPDATED], {'attr': 'criticallity.value', 'value': 'critical'}
        )
        other = webhook_rule(
            'info-alerts', [OBJECT_CREATED, OBJECT_UPDATED], {'attr': 'criticallity.value', 'value': 'info'}
        )

        self.post(group(self.hosts, alertname='Conditional'))
        self.post(group(self.hosts, alertname='Conditional', status='resolved'))
        self.assertEqual(len(self.webhook_jobs(matching)), 8)
        self.assertEqual(self.webhook_jobs(other), [])

    def test_a_group_naming_one_alert_twice_queues_it_once(self):
        """Stored alert by alert, through the model: NetBox's own signal queues it, and folds its two saves."""
        rule = webhook_rule('twice', [OBJECT_CREATED, OBJECT_UPDATED])
        payload = group(['srv-1'], alertname='Twice')
        payload['alerts'].append({**payload['alerts'][0], 'status': 'resolved', 'endsAt': '2026-01-01T00:05:00Z'})

        self.post(payload)
        ((event_type, data, _),) = self.webhook_jobs(rule)
        self.assertEqual((event_type, data['dedup_id'], data['status']['value']), (OBJECT_CREATED, 'Twice-srv-1', 'ok'))

    def test_a_disabled_rule_queues_nothing(self):
        rule = webhook_rule('disabled', [OBJECT_CREATED, OBJECT_UPDATED])
        EventRule.objects.filter(pk=rule.pk).update(enabled=False)

        self.post(group(self.hosts, alertname='Disabled'))
        self.assertEqual(self.webhook_jobs(rule), [])

    def test_the_receivers_jobs_carry_what_the_events_endpoint_sends(self):
        """An alert stored by a receiver reaches the rule with the same fields as one posted to ``events/``."""
        rule = webhook_rule('parity', [OBJECT_CREATED])
        self.post(group(['srv-1'], alertname='Parity'))
        response = self.client.post(
            '/api/plugins/business-application/events/',
            {'message': 'by hand', 'status': 'triggered', 'criticallity': 'critical', 'dedup_id': 'by-hand'},
            format='json',
            **self.header,
        )
        self.assertEqual(response.status_code, 201, response.content[:300])
        (_, received, received_snapshots), (_, posted, posted_snapshots) = sorted(
            self.webhook_jobs(rule), key=lambda job: job[1]['id']
        )
        self.assertEqual(set(received), set(posted))
        self.assertEqual(set(received_snapshots['postchange']), set(posted_snapshots['postchange']))


class ReceiverEventRulesQueryCountTest(RuleTestCase):
    """With a rule that applies to every alert, a group still costs the same queries whatever its size: NetBox's
    serialization of each queued event reads nothing the batch has not read for all of them."""

    def post(self, payload):
        """The group's queries but the change log's inserts: one for the alerts whatever their number, and one more
        when the decisions changed an incident's own data, which depends on what the alerts say, not on how many
        there are (the larger group here widens its incident, the smaller one does not)."""
        return super().post(payload, counted=lambda sql: not sql.startswith('INSERT INTO "core_objectchange"'))

    def test_a_matching_rule_costs_the_same_queries_whatever_the_group_size(self):
        webhook_rule('every-alert', [OBJECT_CREATED, OBJECT_UPDATED])
        hosts = [f'srv-{i}' for i in range(SERVERS)]
        for asynchronous in (True, False):
            with self.subTest(asynchronous=asynchronous), override_settings(BUSINESS_APP_ASYNC_PROCESSING=asynchronous):
                name = 'Async' if asynchronous else 'Sync'
                small = self.post(group(hosts[:4], alertname=f'Small{name}'))
                large = self.post(group(hosts, alertname=f'Large{name}'))
                small_repeat = self.post(group(hosts[:4], alertname=f'Small{name}', status='resolved'))
                large_repeat = self.post(group(hosts, alertname=f'Large{name}', status='resolved'))
                self.assertEqual(small, large)
                self.assertEqual(small_repeat, large_repeat)
