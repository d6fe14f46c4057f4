"""What an event remembers of the states no decision has seen yet (``Event.pending_states``).

A save from an instance read before a decision must not bring back the states that decision took off the row, and
an alert flapping while no worker decides it remembers a bounded number of states.
"""

from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from rest_framework.test import APIClient

from dcim.models import Device
from users.constants import TOKEN_PREFIX
from users.models import Token, User

from business_application.models import Event, EventSource, Incident, Maintenance
from business_application.services import clock
from business_application.services.automation import process_events, unprocessed_events

from .test_pending_firing import ASYNC, OPENED_AND_RESOLVED, URL, AsyncSenderTestCase, group, queued_jobs, run, shape
from .test_pending_firing_order import MAP, START, notification, rest_payload, stamp


def statuses(event):
    return [state['status'] for state in event.pending_states]


class PendingStatesTest(AsyncSenderTestCase):
    def post(self, payload):
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(URL, payload, format='json')
        self.assertEqual(response.status_code, 200, response.content[:300])

    def run_queued(self):
        for job in queued_jobs(self.queue):
            run(job)
        self.queue.empty()

    def test_a_save_from_an_instance_read_before_a_decision_adds_only_its_own_state(self):
        with ASYNC:
            self.post(group(['srv-0']))
        stale = Event.objects.get()
        self.assertEqual(statuses(stale), ['triggered'])
        self.run_queued()
        self.assertEqual((Event.objects.get().processed_status, statuses(Event.objects.get())), ('triggered', []))

        stale.status = 'ok'  # still remembers the firing the decision took off the row
        with ASYNC, self.captureOnCommitCallbacks(execute=True):
            stale.save()
        self.assertEqual(statuses(stale), ['ok'])
        self.assertEqual(statuses(Event.objects.get()), ['ok'])

        self.run_queued()
        incident = Incident.objects.get()
        self.assertEqual(shape(incident), OPENED_AND_RESOLVED)

    def test_a_save_that_keeps_the_status_remembers_nothing(self):
        with ASYNC:
            self.post(group(['srv-1']))
        self.run_queued()
        event = Event.objects.get()
        event.message = 'srv-1 is still down'
        with ASYNC, self.captureOnCommitCallbacks(execute=True):
            event.save()
        self.assertEqual(statuses(Event.objects.get()), [])
        self.assertFalse(unprocessed_events().exists())

    def test_an_alert_flapping_with_no_decision_remembers_its_latest_states(self):
        with ASYNC:
            for minute in range(40):
                self.post(notification('srv-0', 'firing' if minute % 2 == 0 else 'resolved', minute))
        event = Event.objects.get()
        self.assertEqual(len(event.pending_states), Event.MAX_PENDING_STATES)
        self.assertEqual(statuses(event), ['triggered', 'ok'] * (Event.MAX_PENDING_STATES // 2))
        self.assertEqual(event.pending_states[-1]['at'], event.last_seen_at.isoformat())

        # The jobs were lost; the sweep decides what is remembered, in order.
        self.queue.empty()
        summary = process_events(list(unprocessed_events().values_list('pk', flat=True)), at_arrival=True)
        self.assertEqual(summary.errors, [])
        self.assertFalse(unprocessed_events().exists())
        incident = Incident.objects.get()  # every firing came within the reopen window of the clear before
        self.assertEqual(incident.status, 'resolved')
        timeline = shape(incident)['timeline']
        self.assertEqual((timeline.count('reopened'), timeline.count('resolved')), (15, 16))

    def test_a_group_is_decided_in_its_own_order_when_an_older_alert_fires_again(self):
        # srv-0 fires and clears; half an hour later (past the reopen window) one group says srv-1 (a new alert)
        # and srv-0 (an older row) fire: decided in the group's order, srv-1 opens the incident and srv-0 joins.
        for hosts, status, minute in (('srv-0', 'firing', 0), ('srv-0', 'resolved', 1), ('srv-1 srv-0', 'firing', 30)):
            with clock.replay_clock(START + timedelta(minutes=minute)):
                self.post(notification(hosts, status, minute))
        incident = Incident.objects.get(status='new')
        self.assertEqual(
            sorted((m.event.dedup_id, m.opened_incident) for m in incident.memberships.all()),
            [('HostDown-srv-0', False), ('HostDown-srv-1', True)],
        )


EVENTS_URL = '/api/plugins/business-application/events/'


class MaintenanceRepeatTest(AsyncSenderTestCase):
    """A firing stored during maintenance, repeated after the window ended before any worker ran: as deciding each
    notification as it came, the first is suppressed and the repeat opens an incident."""

    map_text = MAP

    def setUp(self):
        super().setUp()
        user = User.objects.create_superuser(username='rest-admin')
        token = Token.objects.create(user=user, write_enabled=True)
        self.rest = APIClient()
        self.rest.credentials(HTTP_AUTHORIZATION=f'Bearer {TOKEN_PREFIX}{token.key}.{token.token}')
        self.source = EventSource.objects.create(name='rest')
        for rack in (0, 1):
            Maintenance.objects.create(
                description='rack work',
                content_type=ContentType.objects.get_for_model(Device),
                object_id=Device.objects.get(name=f'srv-0-{rack}').pk,
                start=START - timedelta(hours=1),
                end=START + timedelta(minutes=5),
                status='in-progress',
            )

    def send(self, rack, minute):
        payload = rest_payload(rack, self.source, event_time=stamp(minute), last_seen_at=stamp(minute))
        with clock.replay_clock(START + timedelta(minutes=minute)), self.captureOnCommitCallbacks(execute=True):
            response = self.rest.post(EVENTS_URL, payload, format='json')
        self.assertIn(response.status_code, (200, 201), response.content[:300])

    def test_a_repeat_after_the_window_opens_the_incident_as_in_the_request(self):
        self.send(0, 0)  # inside the window: suppressed
        self.assertEqual(Event.objects.get(dedup_id='rest-0').status, 'suppressed')
        self.send(0, 10)  # the window ended at minute 5: opens an incident
        self.assertEqual(Incident.objects.filter(memberships__event__dedup_id='rest-0').count(), 1)

        with ASYNC:
            self.send(1, 0)
            self.send(1, 10)
        jobs = queued_jobs(self.queue)
        self.assertEqual(len(jobs), 2)
        with clock.replay_clock(START + timedelta(minutes=11)):
            for job in jobs:
                run(job)
        event = Event.objects.get(dedup_id='rest-1')
        self.assertEqual((event.status, event.processed_status, event.pending_states), ('triggered', 'triggered', []))
        self.assertEqual(Incident.objects.filter(memberships__event__dedup_id='rest-1').count(), 1)
