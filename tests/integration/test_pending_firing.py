"""An alert that fires and clears before a worker decides it still opens, and resolves, its incident.

With asynchronous processing the receivers store each notification at once and a worker decides
it later, from the event's row. A firing followed by its clear before any worker ran used to leave
a row that only said "cleared": no incident at all, where deciding each notification as it came
opens one and resolves it. The row now remembers the undecided firing until a decision acts on it.

The alerts go through the Alertmanager receiver (its bulk write path) and the REST API (the model's
save); the queued jobs are the real ones read back from Redis, run here in any order and more than
once, or by real ``netbox rqworker`` processes.
"""

import django_rq
import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import TestCase, override_settings
from rest_framework.test import APIClient

from users.constants import TOKEN_PREFIX
from users.models import Token, User

from business_application.models import Event, Incident, IncidentEvent, Maintenance
from business_application.services.automation import process_events, unprocessed_events

from ..receivers.test_batched_intake import group as alertmanager_group
from ..senders import sender_authorization
from .maps import build
from .test_workers import run_workers

SERVERS = 4
MAP = 'name: rack\ngraph:\n  services: [web]\n  devices:\n    - {name: tor, role: switch}\n' + ''.join(
    f'    - {{name: srv-{i}, role: server, services: [web], links: [tor]}}\n' for i in range(SERVERS)
)
URL = '/api/plugins/business-application/alerts/alertmanager/'
DECISION_JOBS = ('business_application.jobs.process_event_job', 'business_application.jobs.process_events_job')
ASYNC = override_settings(BUSINESS_APP_ASYNC_PROCESSING=True)


def group(hosts, status='firing', alertname='HostDown', minute=0):
    return alertmanager_group(hosts, alertname, status, minute)


def sender():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=sender_authorization('pending-sender'))
    return client


def queued_jobs(queue, functions=DECISION_JOBS):
    return [job for job in queue.get_jobs() if job.func_name in functions]


def run(job):
    """What a worker runs for the job, with the arguments stored in Redis."""
    return job.func(*job.args, **job.kwargs)


def shape(incident):
    """What the tests compare between ways of deciding: status, members, timeline kinds."""
    return {
        'status': incident.status,
        'members': sorted(
            (member.event.dedup_id, member.occurrence, member.status) for member in incident.memberships.all()
        ),
        'timeline': [entry.kind for entry in incident.timeline.order_by('time', 'pk')],
    }


#: The incident of srv-0's alert that fired and cleared.
OPENED_AND_RESOLVED = {
    'status': 'resolved',
    'members': [('HostDown-srv-0', 1, 'ok')],
    'timeline': ['opened', 'cleared', 'resolved'],
}


class AsyncSenderTestCase(TestCase):
    """A map (the rack by default), a sender's client, and the decision queue, emptied before and after each test."""

    map_text = MAP

    def setUp(self):
        self.objects = build(self.map_text)
        self.client = sender()
        self.queue = django_rq.get_queue('default')
        self.queue.empty()
        self.addCleanup(self.queue.empty)


class PendingFiringTest(AsyncSenderTestCase):
    def post(self, payload):
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(URL, payload, format='json')
        self.assertEqual(response.status_code, 200, response.content[:300])

    def fire_and_clear(self, hosts, alertname='HostDown', minute=0):
        """Both notifications stored with asynchronous processing; returns the queued decision jobs."""
        with ASYNC:
            self.post(group(hosts, alertname=alertname, minute=minute))
            self.post(group(hosts, 'resolved', alertname=alertname, minute=minute))
        return queued_jobs(self.queue)

    def test_the_firing_opens_the_incident_the_clear_resolves(self):
        firing, clear = self.fire_and_clear(['srv-0'])
        event = Event.objects.get()
        self.assertEqual((event.status, event.processed_status), ('ok', ''))
        self.assertEqual([state['status'] for state in event.pending_states], ['triggered', 'ok'])
        self.assertEqual([event.pk for event in unprocessed_events()], [event.pk])

        # The firing's job decides the firing; the clear, which came later, is left to its own job.
        run(firing)
        incident = Incident.objects.get()
        self.assertEqual(
            shape(incident),
            {'status': 'new', 'members': [('HostDown-srv-0', 1, 'triggered')], 'timeline': ['opened']},
        )
        event.refresh_from_db()
        self.assertEqual(
            (event.processed_status, event.occurrence, [state['status'] for state in event.pending_states]),
            ('triggered', 1, ['ok']),
        )
        self.assertEqual([event.pk for event in unprocessed_events()], [event.pk])

        run(clear)
        incident = Incident.objects.get()
        self.assertEqual(shape(incident), OPENED_AND_RESOLVED)
        event.refresh_from_db()
        self.assertEqual((event.processed_status, event.occurrence, event.pending_states), ('ok', 1, []))
        # Opened when the firing came, resolved when the clear came.
        self.assertEqual(incident.detected_at, event.occurrence_started_at)
        self.assertEqual(incident.resolved_at, event.last_seen_at)
        self.assertEqual(incident.resolved_at, event.cleared_at)
        self.assertFalse(unprocessed_events().exists())

        run(clear)
        run(firing)
        self.assertEqual(Incident.objects.count(), 1)
        self.assertEqual(shape(Incident.objects.get()), shape(incident))

    def test_jobs_in_any_order_and_run_twice_decide_once(self):
        firing, clear = self.fire_and_clear(['srv-0', 'srv-1'])
        for job in (clear, firing, clear, firing):
            run(job)
        incident = Incident.objects.get()
        self.assertEqual(incident.status, 'resolved')
        self.assertEqual(shape(incident)['members'], [('HostDown-srv-0', 1, 'ok'), ('HostDown-srv-1', 1, 'ok')])
        self.assertEqual(shape(incident)['timeline'].count('resolved'), 1)
        self.assertEqual(IncidentEvent.objects.count(), 2)

    def test_the_same_incident_as_deciding_each_notification_as_it_came(self):
        self.post(group(['srv-0', 'srv-1'], alertname='InRequest'))
        self.post(group(['srv-0', 'srv-1'], 'resolved', alertname='InRequest'))
        in_request = Incident.objects.get()
        for job in self.fire_and_clear(['srv-0', 'srv-1']):
            run(job)
        later = Incident.objects.exclude(pk=in_request.pk).get()
        expected = shape(in_request)
        expected['members'] = [(dedup.replace('InRequest', 'HostDown'), *rest) for dedup, *rest in expected['members']]
        self.assertEqual(shape(later), expected)

    def test_the_sweep_decides_a_firing_whose_jobs_were_lost(self):
        # Decided once as it came: opened and resolved.
        self.post(group(['srv-2']))
        self.post(group(['srv-2'], 'resolved'))
        incident = Incident.objects.get()
        # Fires and clears again with asynchronous processing; the jobs are lost. The row's state
        # ("ok", processed "ok") alone would not say that anything is left to decide.
        self.fire_and_clear(['srv-2'], minute=10)
        self.queue.empty()
        event = Event.objects.get()
        self.assertEqual((event.status, event.processed_status), ('ok', 'ok'))
        self.assertEqual(list(unprocessed_events().values_list('pk', flat=True)), [event.pk])

        summary = process_events([event.pk], at_arrival=True)
        self.assertEqual(summary.errors, [])
        self.assertEqual(Incident.objects.get(), incident)  # within the reopen window: the same incident
        self.assertEqual(
            shape(incident)['timeline'], ['opened', 'cleared', 'resolved', 'reopened', 'cleared', 'resolved']
        )
        self.assertFalse(unprocessed_events().exists())

    def test_a_firing_inside_maintenance_stays_suppressed(self):
        Maintenance.objects.create(
            description='rack work',
            content_type=ContentType.objects.get_by_natural_key('dcim', 'device'),
            object_id=self.objects['device:srv-3'].pk,
            start='2025-12-31T23:00:00Z',
            end='2026-01-01T01:00:00Z',
            status='in-progress',
        )
        for job in self.fire_and_clear(['srv-3']):
            run(job)
        self.assertFalse(Incident.objects.exists())
        event = Event.objects.get()
        self.assertEqual((event.status, event.pending_states), ('ok', []))

    def test_both_steps_are_notified(self):
        django_rq.get_queue('low').empty()
        hook = 'http://127.0.0.1:9/hook'  # never called: the notification jobs stay queued
        with override_settings(BUSINESS_APP_NOTIFICATION_WEBHOOKS=[hook]):
            jobs = self.fire_and_clear(['srv-0'])
            with self.captureOnCommitCallbacks(execute=True):
                for job in jobs:
                    run(job)
        notifications = django_rq.get_queue('low')
        self.addCleanup(notifications.empty)
        sent = [
            job.args[1] for job in queued_jobs(notifications, ('business_application.notifications.send_notification',))
        ]
        self.assertEqual(sorted(sent), ['created', 'resolved'])

    def test_a_repeat_of_a_decided_firing_remembers_nothing(self):
        self.post(group(['srv-1']))
        with ASYNC:
            self.post(group(['srv-1']))
        event = Event.objects.get()
        self.assertEqual((event.processed_status, event.pending_states), ('triggered', []))

    def test_the_rest_api_remembers_a_firing_too(self):
        payload = {
            'message': 'srv-0 down',
            'status': 'triggered',
            'criticallity': 'critical',
            'content_type': 'dcim.device',
            'object_id': self.objects['device:srv-0'].pk,
            'dedup_id': 'rest-srv-0',
        }
        user = User.objects.create_superuser(username='rest-admin')
        token = Token.objects.create(user=user, write_enabled=True)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f'Bearer {TOKEN_PREFIX}{token.key}.{token.token}')
        url = '/api/plugins/business-application/events/'
        with ASYNC, self.captureOnCommitCallbacks(execute=True):
            created = client.post(url, payload, format='json')
            self.assertEqual(created.status_code, 201, created.content[:300])
            cleared = client.patch(f'{url}{created.json()["id"]}/', {'status': 'ok'}, format='json')
            self.assertEqual(cleared.status_code, 200, cleared.content[:300])
        for job in queued_jobs(self.queue):
            run(job)
        incident = Incident.objects.get()
        self.assertEqual(shape(incident)['members'], [('rest-srv-0', 1, 'ok')])
        self.assertEqual(incident.status, 'resolved')


@pytest.mark.django_db(transaction=True)
def test_real_workers_open_and_resolve_the_incident_of_a_storm_that_cleared_meanwhile():
    queue = django_rq.get_queue('default')
    queue.empty()
    build(MAP)
    client = sender()
    hosts = [f'srv-{i}' for i in range(SERVERS)]
    with ASYNC:
        for status in ('firing', 'resolved'):
            response = client.post(URL, group(hosts, status), format='json')
            assert response.status_code == 200, response.content[:300]
    assert [len(states) for states in Event.objects.values_list('pending_states', flat=True)] == [2] * SERVERS
    run_workers()
    incident = Incident.objects.get()
    assert incident.status == 'resolved'
    assert incident.memberships.count() == SERVERS
    assert not Event.objects.filter(Event.UNDECIDED).exists()
