"""The sweep (and the jobs and commands) decide what the lost decision jobs would have decided.

Each test stores one notification sequence twice: in the request (synchronous processing) on rack 0,
and with asynchronous processing on rack 1, whose decision jobs are then lost; the sweep decides rack 1.
Both racks must end with the same incidents.
"""

from datetime import timedelta

from business_application.models import Event, Incident
from business_application.services import clock
from business_application.services.automation import process_events, unprocessed_events

from .test_pending_firing import ASYNC, AsyncSenderTestCase
from .test_pending_firing_order import MAP, START, URL, incidents_of, notification


class SweepOrderTest(AsyncSenderTestCase):
    map_text = MAP

    def post(self, payload, minute):
        with clock.replay_clock(START + timedelta(minutes=minute)), self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(URL, payload, format='json')
        self.assertEqual(response.status_code, 200, response.content[:300])

    def replay_then_sweep(self, sequence):
        for host, status, own, arrival, *severity in sequence:
            self.post(notification(host.replace('R', '0'), status, own, *severity), arrival)
        with ASYNC:
            for host, status, own, arrival, *severity in sequence:
                self.post(notification(host.replace('R', '1'), status, own, *severity), arrival)
        self.queue.empty()  # the decision jobs are lost (a worker was killed)
        with clock.replay_clock(START + timedelta(minutes=sequence[-1][3] + 1)):
            ids = list(unprocessed_events().values_list('pk', flat=True))
            summary = process_events(ids, at_arrival=True)
        self.assertEqual(summary.errors, [])
        self.assertFalse(unprocessed_events().exists())
        return incidents_of(0), incidents_of(1)

    def test_alerts_stored_by_different_requests_are_decided_in_the_order_they_came(self):
        # srv-0 fires (opens), srv-1 fires (joins), srv-0 clears, srv-1 clears: one incident of two members.
        in_request, by_sweep = self.replay_then_sweep(
            [
                ('srv-0-R', 'firing', 0, 0),
                ('srv-1-R', 'firing', 1, 1),
                ('srv-0-R', 'resolved', 2, 2),
                ('srv-1-R', 'resolved', 3, 3),
            ]
        )
        self.assertEqual([(shape['status'], len(shape['members'])) for shape in in_request], [('resolved', 2)])
        self.assertEqual(by_sweep, in_request)

    def test_a_repeat_that_raised_the_severity_is_decided(self):
        # srv-0 fires as a warning, then (same firing) repeats as critical before any worker decided it.
        self.replay_then_sweep([('srv-0-R', 'firing', 0, 0, 'warning'), ('srv-0-R', 'firing', 0, 1, 'critical')])
        severities = {
            rack: list(
                Incident.objects.filter(memberships__event__dedup_id__endswith=f'-{rack}').values_list(
                    'severity', flat=True
                )
            )
            for rack in (0, 1)
        }
        self.assertEqual(severities[0], ['critical'])
        self.assertEqual(Event.objects.get(dedup_id='HostDown-srv-0-1').criticallity, 'critical')
        self.assertEqual(severities[1], severities[0])
