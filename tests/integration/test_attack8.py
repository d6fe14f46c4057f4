"""Attack round 8: the receivers' locks against bulk REST writers, workers and ordering, and the notifications'
once-per-transaction enqueue (caff592).

The intake locks of 2b3433b (a receiver request with asynchronous processing storing without the decision locks)
were reverted after these tests: they deadlocked with bulk REST writers, decided one part's alerts out of arrival
order and exhausted PostgreSQL's lock table on large groups. These tests keep any later attempt honest."""

import threading

import psycopg
import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from users.constants import TOKEN_PREFIX
from users.models import Token, User

from business_application.models import Event
from business_application.services.incident_service import LOCK_NAMESPACE

from ..senders import sender_authorization
from .test_lock_moved import MAP, build, decide_in_thread, until

EVENTS_URL = '/api/plugins/business-application/events/'

URL = '/api/plugins/business-application/alerts/alertmanager/'


def group(*alerts, status='firing', ends=None):
    """An Alertmanager notification of ``(fingerprint, host)`` alerts (as test_intake_locks sends them)."""
    return {
        'version': '4',
        'status': status,
        'receiver': 'netbox',
        'alerts': [
            {
                'status': status,
                'labels': {'alertname': 'HostDown', 'instance': f'{host}:9100', 'severity': 'critical'},
                # A clear is of an earlier firing than the one a firing notification names.
                'startsAt': '2026-12-05T10:00:00Z' if status == 'firing' else '2026-12-05T09:00:00Z',
                'endsAt': '0001-01-01T00:00:00Z' if status == 'firing' else ends or '2026-12-05T09:05:00Z',
                'fingerprint': fingerprint,
            }
            for fingerprint, host in alerts
        ],
    }


def poster(authorization):
    def post(payload):
        return APIClient().post(URL, payload, format='json', HTTP_AUTHORIZATION=authorization).status_code

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


def waits_for_a_lock(pid):
    """Whether the session ``pid`` waits for any lock (a row's, or an advisory lock)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND wait_event_type = 'Lock'", [pid])
        return cursor.fetchone()[0] == 1


def in_thread(post, payload):
    return decide_in_thread(lambda _: post(payload), None)


@pytest.fixture
def held():
    session = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    yield session
    session.close()


def rest_authorization():
    user = User.objects.create_superuser(username='rest-admin')
    token = Token.objects.create(user=user, write_enabled=True)
    return f'Bearer {TOKEN_PREFIX}{token.key}.{token.token}'


def race_with_delivery(held, higher, rest_call, post, payload):
    """Run ``rest_call`` (a bulk REST request) while ``held`` holds the ``higher`` event's row, start the delivery of
    ``payload`` once the REST request waits for that row, and release the row once the delivery waits too. Returns
    both answers, after checking that neither hung nor failed (a deadlock kills one of them)."""
    held.execute('BEGIN')
    held.execute('SELECT id FROM business_application_event WHERE id = %s FOR UPDATE', [higher.pk])
    rest_thread, rest_state = decide_in_thread(rest_call, None)
    until(lambda: waits_for_a_row(rest_state['pid']), 'the REST request to wait for the higher row')
    receiver_thread, receiver_state = in_thread(post, payload)
    until(lambda: waits_for_a_lock(receiver_state['pid']), 'the delivery to wait')
    held.execute('COMMIT')
    rest_thread.join(timeout=60)
    receiver_thread.join(timeout=60)
    assert not rest_thread.is_alive(), 'hung'
    assert not receiver_thread.is_alive(), 'hung'
    assert 'error' not in rest_state, f'{rest_state!r}\n{receiver_state!r}'
    assert 'error' not in receiver_state, f'{rest_state!r}\n{receiver_state!r}'
    return rest_state['result'], receiver_state['result']


ONE_SERVICE = """name: one service
graph:
  services: [web]
  devices:
    - {name: web-01, role: server, services: [web]}
    - {name: web-02, role: server, services: [web]}
"""


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('method', ['post', 'patch'])
@pytest.mark.parametrize(
    ('map_text', 'second'), [(ONE_SERVICE, 'web-02'), (MAP, 'db-01')], ids=['one-part', 'two-parts']
)
def test_async_delivery_and_rest_bulk_upsert_of_the_same_alerts_do_not_deadlock(held, map_text, second, method):
    """A REST bulk POST of two known alerts (an upsert, saved item by item, here the higher pk first), or a bulk PATCH
    of the same two, and an
    asynchronous Alertmanager delivery of the same two alerts. Both take every decision lock of their alerts first,
    ascending, then the rows: they queue instead of deadlocking. 2b3433b (reverted) let the delivery skip the decision
    locks and lock rows in pk order: with one part, each then held a row the other waited for. With two parts the bulk
    POST took each item's decision locks only when it saved that item (NetBox 4.7 calls ``perform_create`` per item,
    so ``EventSerializer.lock_batch`` never ran): it held one part's lock while the delivery held the other.

    The third session only orders the two writers (it holds the higher row a moment, as any writer may)."""
    objects = build(map_text)
    web, db = objects['device:web-01'], objects[f'device:{second}']
    post = poster(sender_authorization('alertmanager'))
    rest = rest_authorization()
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
        assert post(group(('a', 'web-01'), ('b', second))) == 200
        first, higher = Event.objects.get(dedup_id='a'), Event.objects.get(dedup_id='b')
        assert first.pk < higher.pk
        source = first.event_source

        def bulk(_):
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=rest)
            items = [
                {
                    'event_source': source.pk,
                    'dedup_id': dedup_id,
                    'status': 'triggered',
                    'criticallity': 'critical',
                    'message': f'{dedup_id} from REST',
                    'content_type': 'dcim.device',
                    'object_id': device.pk,
                }
                for dedup_id, device in (('b', db), ('a', web))  # the higher pk first
            ]
            if method == 'patch':  # a bulk update of the same two, saved object by object as well
                items = [{'id': pk, 'message': 'from REST'} for pk in (higher.pk, first.pk)]
            response = getattr(client, method)(EVENTS_URL, items, format='json')
            return response.status_code, response.content[:300]

        # The delivery waits for a decision lock the bulk POST holds (with 2b3433b it locked the lower row and waited
        # for the higher).
        answer, delivered = race_with_delivery(held, higher, bulk, post, group(('a', 'web-01'), ('b', second)))
    assert (answer[0], delivered) == ({'post': 201, 'patch': 200}[method], 200)


@pytest.mark.django_db(transaction=True)
def test_async_deliveries_with_moving_alerts_and_concurrent_decisions_never_fail():
    """Asynchronous deliveries of overlapping groups whose alerts move between the two hosts from round to round,
    while two workers decide every stored event again and again: every delivery is answered 200, no decision
    fails, and each alert is stored once."""
    import random

    from business_application.services.batch import decide_events

    build(MAP)
    post = poster(sender_authorization('alertmanager'))
    hosts = ('web-01', 'db-01', 'ghost')
    fingerprints = [f'f{i}' for i in range(6)]
    errors, answers = [], []
    stop = threading.Event()

    def deliver(seed):
        rnd = random.Random(seed)
        try:
            for _ in range(6):
                alerts = [(f, rnd.choice(hosts)) for f in rnd.sample(fingerprints, k=4)]
                answers.append(post(group(*alerts, status=rnd.choice(('firing', 'firing', 'resolved')))))
        except Exception as error:  # noqa: BLE001
            errors.append(('deliver', repr(error)))
        finally:
            connection.close()

    def decide(seed):
        rnd = random.Random(seed)
        try:
            while not stop.is_set():
                ids = list(Event.objects.values_list('pk', flat=True))
                rnd.shuffle(ids)
                for event_id, result in decide_events([(pk, None) for pk in ids]):
                    if isinstance(result, Exception) and not isinstance(result, Event.DoesNotExist):
                        errors.append(('decide', event_id, repr(result)))
        except Exception as error:  # noqa: BLE001
            errors.append(('decide', repr(error)))
        finally:
            connection.close()

    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
        deciders = [threading.Thread(target=decide, args=(s,)) for s in range(2)]
        senders = [threading.Thread(target=deliver, args=(s,)) for s in range(4)]
        for thread in deciders + senders:
            thread.start()
        for thread in senders:
            thread.join(timeout=240)
        stop.set()
        for thread in deciders:
            thread.join(timeout=120)
    assert not errors, errors[:5]
    assert set(answers) == {200}, answers
    dedup = list(Event.objects.values_list('dedup_id', flat=True))
    assert len(dedup) == len(set(dedup))


@pytest.mark.django_db(transaction=True)
def test_the_cached_queue_enqueues_after_redis_drops_its_connections(caplog):
    """Redis restarting (here: closing every client connection, as a restart does) must not lose the next
    notification or decision job: the process's one cached queue reconnects."""
    import django_rq

    from business_application import notifications, signals
    from business_application.queues import get_queue

    low, default = get_queue('low'), get_queue('default')
    low.empty()
    default.empty()
    notifications._enqueue(1, 'created', 'http://127.0.0.1:9/never-called')
    assert low.count == 1
    killer = django_rq.get_connection('low')
    killer.client_kill_filter(_type='normal', skipme=True)
    notifications._enqueue(2, 'created', 'http://127.0.0.1:9/never-called')
    killer.client_kill_filter(_type='normal', skipme=True)
    signals._enqueue([(123, None)])
    assert not [r for r in caplog.records if r.levelname in ('ERROR', 'WARNING')], caplog.text
    assert (low.count, default.count) == (2, 1)
    low.empty()
    default.empty()


@pytest.mark.django_db(transaction=True)
def test_alerts_of_one_part_are_decided_in_the_order_they_arrived(held):
    """Two hosts of one service alert one after the other, each in its own delivery, while a worker deciding the
    first host's alert holds what a decision holds (the part's decision lock and the alert's row).

    The first delivery arrives first (its arrival, taken before it locks the row, is the earlier). It must be queued
    for a decision before the second one, so that the worker decides them in the order they came (docs/correlation.md:
    "the other alerts' notifications that came in between are decided before them"): the first host opens the
    incident, the second joins it. The second delivery queues behind the first on the part's decision lock. With
    2b3433b (reverted) it did not: it stored, committed and queued its decision while the first waited for its row,
    and the worker decided the later alert first, so the second host opened the incident."""
    from rq import SimpleWorker

    from business_application.models import IncidentEvent
    from business_application.queues import get_queue

    from .test_lock_moved import key_of

    objects = build(ONE_SERVICE)
    web1 = objects['device:web-01']
    post = poster(sender_authorization('alertmanager'))
    queue = get_queue('default')
    queue.empty()
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
        # web-01's alert is known, cleared (opens nothing).
        assert post(group(('a', 'web-01'), status='resolved')) == 200
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        first = Event.objects.get(dedup_id='a')
        # A worker deciding web-01's alert: the part's decision lock, then the alert's row.
        held.execute('BEGIN')
        held.execute('SELECT pg_advisory_xact_lock(%s, %s)', [LOCK_NAMESPACE, key_of(web1)])
        held.execute('SELECT id FROM business_application_event WHERE id = %s FOR UPDATE', [first.pk])
        thread_a, state_a = in_thread(post, group(('a', 'web-01')))  # web-01 fires again: arrives first
        until(lambda: waits_for_a_lock(state_a['pid']), 'the first delivery to wait')
        thread_b, state_b = in_thread(post, group(('b', 'web-02')))  # web-02 fires: arrives second
        until(lambda: not thread_b.is_alive() or waits_for_a_lock(state_b['pid']), 'the second delivery to wait or end')
        held.execute('COMMIT')
        thread_a.join(timeout=60)
        thread_b.join(timeout=60)
        assert (state_a.get('result'), state_b.get('result')) == (200, 200), (state_a, state_b)
        arrivals = dict(Event.objects.values_list('dedup_id', 'last_seen_at'))
        assert arrivals['a'] < arrivals['b']
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
    openers = list(IncidentEvent.objects.filter(opened_incident=True).values_list('event__dedup_id', flat=True))
    assert openers == ['a'], f'opened by {openers}; arrivals {arrivals}'


@pytest.mark.django_db(transaction=True)
def test_an_alerts_undecided_states_stay_in_the_order_they_arrived(held):
    """An Alertmanager delivery clears two alerts (db-01's, then web-01's: the rows in key order) while db-01's row
    is held by another transaction (a worker deciding it). The delivery takes its arrival before it locks the rows.
    Meanwhile, a moment later, an operator suppresses web-01's alert through the REST API. The later write must be the
    alert's state: the clear, then the suppression. The PATCH queues behind the delivery on web-01's decision lock.
    With 2b3433b (reverted) it was stored first, and the delivery, whose arrival was earlier, overwrote it when it got
    the row: the alert ended up cleared, its states [triggered, suppressed, ok]."""
    from django.utils import timezone

    build(MAP)
    post = poster(sender_authorization('alertmanager'))
    rest = rest_authorization()
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
        assert post(group(('z', 'db-01'), ('a', 'web-01'))) == 200
        z, a = Event.objects.get(dedup_id='z'), Event.objects.get(dedup_id='a')
        assert z.pk < a.pk
        held.execute('BEGIN')
        held.execute('SELECT id FROM business_application_event WHERE id = %s FOR UPDATE', [z.pk])
        cleared = group(('z', 'db-01'), ('a', 'web-01'), status='resolved', ends='2026-12-05T10:05:00Z')
        thread_r, state_r = in_thread(post, cleared)
        until(lambda: waits_for_a_lock(state_r['pid']), 'the delivery to wait')

        def suppress(_):
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=rest)
            change = {'status': 'suppressed', 'last_seen_at': timezone.now().isoformat()}
            return client.patch(f'{EVENTS_URL}{a.pk}/', change, format='json').status_code

        thread_w, state_w = decide_in_thread(suppress, None)
        until(lambda: not thread_w.is_alive() or waits_for_a_lock(state_w['pid']), 'the PATCH to wait or end')
        held.execute('COMMIT')
        thread_r.join(timeout=60)
        thread_w.join(timeout=60)
    assert (state_r.get('result'), state_w.get('result')) == (200, 200), (state_r, state_w)
    a.refresh_from_db()
    states = [(state['status'], state['at']) for state in a.pending_states]
    assert [status for status, _ in states] == ['triggered', 'ok', 'suppressed'], states
    assert a.status == 'suppressed', (a.status, states)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ('map_text', 'second'), [(ONE_SERVICE, 'web-02'), (MAP, 'db-01')], ids=['one-part', 'two-parts']
)
def test_async_delivery_and_rest_bulk_delete_of_the_same_alerts_do_not_deadlock(held, map_text, second):
    """A REST bulk DELETE of two decided alerts (NetBox deletes them one by one, newest first: the higher pk first;
    each deletion takes its part's decision lock in pre_delete) and an asynchronous delivery repeating both. The
    delivery takes every decision lock first, then the rows: it must queue on the DELETE's decision locks, not hold
    the lower row while the DELETE holds the higher (2b3433b, reverted, did: a deadlock). With two parts the DELETE
    takes both parts' locks before its first row, or it and the delivery each hold one part. The third session only
    orders the two writers."""
    from rq import SimpleWorker

    from business_application.queues import get_queue

    build(map_text)
    post = poster(sender_authorization('alertmanager'))
    rest = rest_authorization()
    queue = get_queue('default')
    queue.empty()
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
        assert post(group(('a', 'web-01'), ('b', second))) == 200
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
        lower, higher = Event.objects.get(dedup_id='a'), Event.objects.get(dedup_id='b')
        assert lower.pk < higher.pk
        assert lower.memberships.exists()
        assert higher.memberships.exists()

        def delete(_):
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION=rest)
            return client.delete(EVENTS_URL, [{'id': lower.pk}, {'id': higher.pk}], format='json').status_code

        deleted, delivered = race_with_delivery(held, higher, delete, post, group(('a', 'web-01'), ('b', second)))
        queue.empty()
    assert (deleted, delivered) == (204, 200)


@pytest.mark.django_db(transaction=True)
def test_a_large_group_on_one_host_is_stored():
    """Alertmanager groups 16,000 alerts of one host (under the receivers' 1 MiB body limit). The request takes one
    decision lock (the host's part of the map). With 2b3433b (reverted) it took one advisory lock per alert identity,
    all held to the end of its transaction, in PostgreSQL's shared lock table, which holds about
    max_locks_per_transaction x (max_connections + workers) = 64 x ~120 entries by default (some 12,500 advisory
    locks fit on this test server): the request failed with "out of shared memory" (a 500)."""
    import json

    build(MAP)
    post = poster(sender_authorization('alertmanager'))
    count = 16_000
    payload = {
        'version': '4',
        'status': 'firing',
        'receiver': 'netbox',
        'alerts': [{'labels': {'instance': 'web-01:9100'}, 'fingerprint': f'{i}'} for i in range(count)],
    }
    assert len(json.dumps(payload, separators=(',', ':'))) < 1024 * 1024
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
        assert post(payload) == 200
    assert Event.objects.count() == count


@pytest.mark.django_db(transaction=True)
def test_a_notification_dropped_with_its_savepoint_is_registered_again():
    """notify's once-per-transaction check must not count a callback of a rolled-back savepoint (held up)."""
    from django.db import transaction

    from business_application.notifications import notify
    from business_application.queues import get_queue

    low = get_queue('low')
    low.empty()
    url = 'http://127.0.0.1:9/never-called'
    with override_settings(BUSINESS_APP_NOTIFICATION_WEBHOOKS=[url, url + '/2']):
        with transaction.atomic():
            try:
                with transaction.atomic():
                    notify(7, 'created')
                    notify(7, 'resolved')
                    raise RuntimeError('the batch failed')
            except RuntimeError:
                pass
            with transaction.atomic():
                notify(7, 'created')
            notify(7, 'created')
            notify(7, 'resolved')
        jobs = sorted((job.args[1], job.args[2]) for job in low.get_jobs())
    low.empty()
    assert jobs == sorted([('created', url), ('created', url + '/2'), ('resolved', url), ('resolved', url + '/2')]), (
        jobs
    )


def test_a_forked_child_makes_its_own_queue_and_enqueues():
    """An RQ work horse (a fork) must not share its parent's Redis connection (held up)."""
    import os

    from business_application.queues import get_queue

    parent = get_queue('low')
    parent.empty()
    parent.connection.ping()  # the parent's pool holds a connection
    pid = os.fork()
    if pid == 0:  # the child: exit code 0 only if it got its own queue and could enqueue
        code = 1
        try:
            child = get_queue('low')
            child.enqueue('builtins.print', 'from the child')
            code = 0 if child is not parent else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    parent.connection.ping()
    assert parent.count == 1
    parent.empty()
