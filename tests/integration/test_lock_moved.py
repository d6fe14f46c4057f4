"""A decision takes the lock of the part of the map its event is in when its row is locked.

A decision reads which lock to take from the event's row before it takes the lock (it may not lock
the row first: every path takes its advisory locks before any row lock). If the event's object
changes in between (a PATCH moving the alert to another device), the decision must not go on under
the old part's lock while another decision works on the new part: it starts again (a batch: one at
a time) and waits for the new part's lock.

The interleaving is forced with real PostgreSQL locks: another session holds both parts' locks,
the event is moved while the decision waits for the first one, and ``pg_locks`` shows which lock
the decision waits for next.
"""

import threading
import time

import django_rq
import psycopg
import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import override_settings

from business_application.jobs import process_events_job
from business_application.models import Event, Incident
from business_application.services.graph_loader import current_map
from business_application.services.incident_service import LOCK_FIELDS, LOCK_NAMESPACE, lock_key, process_event

from .maps import build

MAP = """name: two racks
graph:
  services: [web, db]
  devices:
    - {name: web-01, role: server, services: [web]}
    - {name: db-01, role: server, services: [db]}
"""


def key_of(device):
    content_type = ContentType.objects.get_for_model(device)
    return lock_key(current_map(), {'content_type_id': content_type.pk, 'object_id': device.pk, 'unmapped_label': ''})


def waiting_for(key, pid):
    """Whether the session ``pid`` waits for the decision lock ``key``."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = %s"
            ' AND classid = %s AND objid = %s',
            [pid, LOCK_NAMESPACE, key & 0xFFFFFFFF],
        )
        return cursor.fetchone()[0] == 1


def until(condition, what, seconds=60):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f'gave up waiting: {what}'
        time.sleep(0.05)


def decide_in_thread(decide, event_id):
    """Run the decision in a thread with its own database session; returns (thread, state)."""
    state = {}

    def run():
        try:
            with connection.cursor() as cursor:
                cursor.execute('SELECT pg_backend_pid()')
                state['pid'] = cursor.fetchone()[0]
            state['result'] = decide(event_id)
        except Exception as error:  # noqa: BLE001 - reported by the test
            state['error'] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    until(lambda: 'pid' in state or 'error' in state, 'the decision thread to connect')
    return thread, state


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    'decide',
    [lambda event_id: process_event(event_id), lambda event_id: process_events_job([(event_id, None)])],
    ids=['one event', 'batch job'],
)
def test_a_decision_waits_for_the_lock_of_the_part_its_event_moved_to(decide):
    objects = build(MAP)
    web, db = objects['device:web-01'], objects['device:db-01']
    queue = django_rq.get_queue('default')
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):  # stored, not decided
        event = Event.objects.create(message='web-01 down', status='triggered', criticallity='critical', obj=web)
    queue.empty()
    old_key, new_key = key_of(web), key_of(db)
    assert old_key != new_key
    assert lock_key(current_map(), Event.objects.values(*LOCK_FIELDS).get(pk=event.pk)) == old_key

    holder = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    try:
        holder.execute(
            'SELECT pg_advisory_lock(%s, %s), pg_advisory_lock(%s, %s)',
            [LOCK_NAMESPACE, old_key, LOCK_NAMESPACE, new_key],
        )
        thread, state = decide_in_thread(decide, event.pk)
        until(lambda: waiting_for(old_key, state['pid']), 'the decision to wait for the old part')

        Event.objects.filter(pk=event.pk).update(object_id=db.pk)
        holder.execute('SELECT pg_advisory_unlock(%s, %s)', [LOCK_NAMESPACE, old_key])
        # Free to go on under the old part's lock, the decision instead waits for the new part's.
        until(
            lambda: waiting_for(new_key, state['pid']) or not thread.is_alive(),
            'the decision to wait for the new part or finish',
        )
        assert thread.is_alive(), f"decided under the old part's lock only: {state}"
        holder.execute('SELECT pg_advisory_unlock_all()')
        thread.join(timeout=60)
    finally:
        holder.close()
    assert 'error' not in state, state
    incident = Incident.objects.get()
    assert list(incident.memberships.values_list('event_id', flat=True)) == [event.pk]
    # Decided as it fired, on web-01 (the object it named when it was stored), under the locks of both parts.
    assert incident.title == 'Service disruption affecting web'
    assert Event.objects.get(pk=event.pk).processed_status == 'triggered'
