"""The locks a receiver's request takes before it locks an event row, forced with real PostgreSQL sessions.

With asynchronous processing a request only stores alerts; the workers decide them. It then queues on the locks of
the alerts' identities (two deliveries of the same group), not on the decision locks of their parts of the map: a
request does not wait for a worker that decides in the same part, which in a storm made every request wait for the
workers. It still takes the decision locks when it decides in the request (synchronous processing), and when an
alert moves to another object, even one that moved only after the request read it.

Another session holds the locks; ``pg_locks`` and ``pg_stat_activity`` show what the request waits for.
"""

import random
import threading

import django_rq
import psycopg
import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from business_application.models import Event, EventSource, Incident
from business_application.services.batch import decide_events
from business_application.services.incident_service import LOCK_NAMESPACE
from business_application.services.intake import INTAKE_NAMESPACE, intake_key

from ..senders import sender_authorization
from .test_lock_moved import MAP, build, decide_in_thread, key_of, until, waiting_for

URL = '/api/plugins/business-application/alerts/alertmanager/'


def group(*alerts):
    """An Alertmanager notification of ``(fingerprint, host)`` alerts, all firing."""
    return {
        'version': '4',
        'status': 'firing',
        'receiver': 'netbox',
        'alerts': [
            {
                'status': 'firing',
                'labels': {'alertname': 'HostDown', 'instance': f'{host}:9100', 'severity': 'critical'},
                'startsAt': '2026-12-05T10:00:00Z',
                'endsAt': '0001-01-01T00:00:00Z',
                'fingerprint': fingerprint,
            }
            for fingerprint, host in alerts
        ],
    }


def poster(authorization):
    def post(payload):
        response = APIClient().post(URL, payload, format='json', HTTP_AUTHORIZATION=authorization)
        return response.status_code

    return post


def waits_for_a_row(pid):
    """Whether the session ``pid`` waits for a row lock (another transaction's)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'"
            " AND wait_event IN ('transactionid', 'tuple')",
            [pid],
        )
        return cursor.fetchone()[0] == 1


def in_thread(post, payload):
    return decide_in_thread(lambda _: post(payload), None)


@pytest.fixture
def held():
    """A PostgreSQL session of its own, to hold locks the request may wait for."""
    session = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    yield session
    session.close()


@pytest.fixture
def setup():
    objects = build(MAP)
    return objects['device:web-01'], objects['device:db-01'], poster(sender_authorization('alertmanager'))


@pytest.mark.django_db(transaction=True)
def test_an_asynchronous_request_does_not_wait_for_a_decision_in_its_part(setup, held):
    web, db, post = setup
    queue = django_rq.get_queue('default')
    queue.empty()
    held.execute(
        'SELECT pg_advisory_lock(%s, %s), pg_advisory_lock(%s, %s)',
        [LOCK_NAMESPACE, key_of(web), LOCK_NAMESPACE, key_of(db)],
    )
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
        for payload in (group(('a', 'web-01'), ('b', 'db-01')), group(('a', 'web-01'))):  # new, then a repeat
            thread, state = in_thread(post, payload)
            thread.join(timeout=30)
            assert not thread.is_alive(), 'the request waited for the decision lock of its part'
            assert state == {'pid': state['pid'], 'result': 200}
    assert sorted(Event.objects.values_list('dedup_id', 'processed_status')) == [('a', ''), ('b', '')]
    # One decision job per request, queued after commit.
    jobs = sorted(job.func_name.rpartition('.')[2] for job in queue.get_jobs())
    assert jobs == ['process_event_job', 'process_events_job']


@pytest.mark.django_db(transaction=True)
def test_a_synchronous_request_waits_for_the_decision_lock(setup, held):
    web, _, post = setup
    held.execute('SELECT pg_advisory_lock(%s, %s)', [LOCK_NAMESPACE, key_of(web)])
    thread, state = in_thread(post, group(('a', 'web-01')))
    until(lambda: waiting_for(key_of(web), state['pid']), 'the request to wait for the decision lock')
    held.execute('SELECT pg_advisory_unlock_all()')
    thread.join(timeout=60)
    assert state['result'] == 200
    assert Incident.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_alert_moving_to_another_object_waits_for_the_decision_locks(setup, held):
    web, db, post = setup
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
        assert post(group(('a', 'web-01'))) == 200
        held.execute('SELECT pg_advisory_lock(%s, %s)', [LOCK_NAMESPACE, key_of(web)])
        thread, state = in_thread(post, group(('a', 'db-01')))  # the same alert, now on db-01
        until(lambda: waiting_for(key_of(web), state['pid']), 'the request to wait for the part the alert leaves')
        held.execute('SELECT pg_advisory_unlock_all()')
        thread.join(timeout=60)
    assert state['result'] == 200
    assert Event.objects.get(dedup_id='a').object_id == db.pk


@pytest.mark.django_db(transaction=True)
def test_an_alert_moved_by_another_writer_after_the_read_takes_the_decision_locks(setup, held):
    """The request reads the stored alert on web-01 (the alert names web-01: no move), then waits for its row, which
    another writer moves to db-01 meanwhile. Locked, the row names another object than the alert: the request
    starts again under the decision locks (here: it waits for db-01's part, which the stored alert leaves)."""
    web, db, post = setup
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
        assert post(group(('a', 'web-01'))) == 200
        event = Event.objects.get(dedup_id='a')
        held.execute('BEGIN')
        held.execute('SELECT id FROM business_application_event WHERE id = %s FOR UPDATE', [event.pk])
        thread, state = in_thread(post, group(('a', 'web-01')))
        until(lambda: waits_for_a_row(state['pid']), 'the request to wait for the row')
        held.execute('UPDATE business_application_event SET object_id = %s WHERE id = %s', [db.pk, event.pk])
        held.execute('SELECT pg_advisory_lock(%s, %s)', [LOCK_NAMESPACE, key_of(db)])  # kept after the commit
        held.execute('COMMIT')
        until(
            lambda: waiting_for(key_of(db), state['pid']) or not thread.is_alive(),
            'the request to wait for the decision lock of the part the row left, or finish',
        )
        assert thread.is_alive(), f'stored a moved alert without the decision locks: {state}'
        held.execute('SELECT pg_advisory_unlock_all()')
        thread.join(timeout=60)
    assert state['result'] == 200
    assert Event.objects.get(dedup_id='a').object_id == web.pk


@pytest.mark.django_db(transaction=True)
def test_requests_storing_the_same_alert_queue_on_its_identity(setup, held):
    _, _, post = setup
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
        assert post(group(('first', 'web-01'))) == 200  # the event source exists from now on
        source = EventSource.objects.get()
        key = intake_key(source.pk, 'a')
        held.execute('SELECT pg_advisory_lock(%s, %s)', [INTAKE_NAMESPACE, key])
        thread, state = in_thread(post, group(('a', 'web-01')))
        until(lambda: waiting_for_intake(key, state['pid']), "the request to wait for the alert's identity")
        held.execute('SELECT pg_advisory_unlock_all()')
        thread.join(timeout=60)
    assert state['result'] == 200
    assert Event.objects.filter(dedup_id='a').count() == 1


def waiting_for_intake(key, pid):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = %s"
            ' AND classid = %s AND objid = %s',
            [pid, INTAKE_NAMESPACE, key],
        )
        return cursor.fetchone()[0] == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_stored_asynchronously_decide_as_one_at_a_time(setup):
    """Eight replicas deliver overlapping groups at once while nothing queues them on the decision locks: every
    delivery is answered 200, each alert is stored once, and deciding what they stored gives one incident per host
    (the two racks share nothing; the unknown host is its own)."""
    _, _, post = setup
    alerts = [(f'{host}-{check}', host) for host in ('web-01', 'db-01', 'ghost') for check in range(4)]
    shuffle = random.Random(3)
    groups = [group(*shuffle.sample(alerts, k=len(alerts))) for _ in range(8)]
    barrier = threading.Barrier(len(groups))
    answers = []

    def send(payload):
        try:
            barrier.wait(timeout=30)
            answers.append(post(payload))
        finally:
            connection.close()

    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
        threads = [threading.Thread(target=send, args=(payload,)) for payload in groups]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=180)
    assert answers == [200] * len(groups)
    assert sorted(Event.objects.values_list('dedup_id', flat=True)) == sorted(f for f, _ in alerts)
    django_rq.get_queue('default').empty()
    decide_events([(pk, None) for pk in Event.objects.order_by('pk').values_list('pk', flat=True)])
    incidents = sorted(sorted(i.memberships.values_list('event__dedup_id', flat=True)) for i in Incident.objects.all())
    assert incidents == [sorted(f for f, h in alerts if h == host) for host in ('db-01', 'ghost', 'web-01')]
