"""What NetBox's event rules see of a receiver request that did not store its alerts, or stored them and then
failed to queue the rules' actions."""

from django.test import override_settings
from rest_framework.test import APIClient

from core.events import OBJECT_CREATED, OBJECT_UPDATED

from business_application.models import Event

from ..senders import sender_authorization
from .test_batched_intake import URL, group
from .test_event_rules import SEND_WEBHOOK, RuleTestCase, webhook_rule


class EventRuleFailureTest(RuleTestCase):
    def webhook_jobs(self):
        return [job for job in self.queue.get_jobs() if job.func_name == SEND_WEBHOOK]

    def test_alerts_a_permission_constraint_refused_reach_no_rule(self):
        """The request's alerts are rolled back (403): no webhook may carry them, as NetBox's own API guarantees."""
        webhook_rule('alert-changes', [OBJECT_CREATED, OBJECT_UPDATED])
        client = APIClient()
        header = {'HTTP_AUTHORIZATION': sender_authorization('warnings-only', {'criticallity': 'warning'})}
        for hosts in (['srv-1'], ['srv-1', 'srv-2']):  # stored through the model, and in bulk
            with self.subTest(hosts=hosts):
                response = client.post(URL, group(hosts, alertname='Refused'), format='json', **header)
                self.assertEqual(response.status_code, 403, response.content[:300])
                self.assertFalse(Event.objects.filter(dedup_id__startswith='Refused-').exists())
                self.assertEqual(self.webhook_jobs(), [])

    def test_alerts_stored_when_the_rules_actions_cannot_be_queued_are_answered_as_stored(self):
        webhook_rule('alert-changes', [OBJECT_CREATED, OBJECT_UPDATED])
        # NetBox puts webhook jobs on a queue Redis does not have: queueing the action fails after the commit.
        with override_settings(QUEUE_MAPPINGS={'webhook': 'no-such-queue'}):
            response = self.client.post(
                URL, group(['srv-1', 'srv-2'], alertname='Unqueued'), format='json', **self.header
            )
        self.assertEqual(Event.objects.filter(dedup_id__startswith='Unqueued-').count(), 2)
        self.assertEqual(response.status_code, 200, response.content[:300])
