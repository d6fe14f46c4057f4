"""A decision about an event that moved to another part of the map changes the incident its occurrence is in, which
belongs to the part the event left: it must hold that part's lock too, or a decision of another event of that part
can change the same incident at the same time (say, both clear their member, each reads the other still failing, and
the incident is left open with every member cleared).

The old part's lock is held by another PostgreSQL session; ``pg_locks`` shows whether the decision waits for it.
"""

import django_rq
import psycopg
import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from users.constants import TOKEN_PREFIX
from users.models import Token, User

from business_application.models import Event, Incident
from business_application.services.incident_service import LOCK_NAMESPACE, process_event

from .test_lock_moved import MAP, build, decide_in_thread, key_of, until, waiting_for


@pytest.mark.django_db(transaction=True)
def test_clearing_a_moved_event_waits_for_the_lock_of_its_incidents_part():
    objects = build(MAP)
    web, db = objects['device:web-01'], objects['device:db-01']
    event = Event.objects.create(message='web-01 down', status='triggered', criticallity='critical', obj=web)
    incident = Incident.objects.get()
    queue = django_rq.get_queue('default')
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):  # stored, not decided
        event.status, event.obj = 'ok', db
        event.save()
    queue.empty()
    old_key, new_key = key_of(web), key_of(db)
    assert old_key != new_key

    holder = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    try:
        holder.execute('SELECT pg_advisory_lock(%s, %s)', [LOCK_NAMESPACE, old_key])
        thread, state = decide_in_thread(lambda event_id: process_event(event_id), event.pk)
        until(
            lambda: waiting_for(old_key, state['pid']) or not thread.is_alive(),
            "the decision to wait for the incident's part or finish",
        )
        alive = thread.is_alive()
        holder.execute('SELECT pg_advisory_unlock_all()')
        thread.join(timeout=60)
    finally:
        holder.close()
    assert 'error' not in state, state
    assert alive, f"changed incident {incident.pk} without its part's lock: {state}"
    incident.refresh_from_db()
    assert incident.status == 'resolved'


EVENTS_URL = '/api/plugins/business-application/events/'


@pytest.mark.django_db(transaction=True)
def test_two_moved_events_cleared_at_once_do_not_deadlock():
    """A request takes every lock its decision needs before it locks the event's row: two events that each moved to
    the other's part of the map, cleared at the same time, wait for each other's locks instead of deadlocking."""
    objects = build(MAP)
    web, db = objects['device:web-01'], objects['device:db-01']
    # Decided in the request: each opens its incident on its own device.
    first = Event.objects.create(message='web-01 down', status='triggered', criticallity='critical', obj=web)
    second = Event.objects.create(message='db-01 down', status='triggered', criticallity='critical', obj=db)
    assert Incident.objects.count() == 2
    # Each is moved to the other's device while it keeps firing (a repeat: its occurrence stays where it started).
    first.obj = db
    first.save()
    second.obj = web
    second.save()
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.occurrence_object[1], first.object_id) == (web.pk, db.pk)
    assert (second.occurrence_object[1], second.object_id) == (db.pk, web.pk)

    user = User.objects.create_superuser(username='rest-admin')
    token = Token.objects.create(user=user, write_enabled=True)
    authorization = f'Bearer {TOKEN_PREFIX}{token.key}.{token.token}'

    def clear(event_id, device):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=authorization)
        change = {'status': 'ok', 'content_type': 'dcim.device', 'object_id': device.pk}
        response = client.patch(f'{EVENTS_URL}{event_id}/', change, format='json')
        return response.status_code

    web_key, db_key = key_of(web), key_of(db)
    holder = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    try:
        holder.execute(
            'SELECT pg_advisory_lock(%s, %s), pg_advisory_lock(%s, %s)',
            [LOCK_NAMESPACE, web_key, LOCK_NAMESPACE, db_key],
        )
        thread_a, state_a = decide_in_thread(lambda event_id: clear(event_id, db), first.pk)
        thread_b, state_b = decide_in_thread(lambda event_id: clear(event_id, web), second.pk)
        for state in (state_a, state_b):
            until(
                lambda state=state: waiting_for(web_key, state['pid']) or waiting_for(db_key, state['pid']),
                'both clears to wait for the parts',
            )
        holder.execute('SELECT pg_advisory_unlock_all()')
        thread_a.join(timeout=60)
        thread_b.join(timeout=60)
    finally:
        holder.close()
    assert ('error' in state_a, 'error' in state_b) == (False, False), (state_a, state_b)
    assert (state_a['result'], state_b['result']) == (200, 200)
    assert sorted(Incident.objects.values_list('status', flat=True)) == ['resolved', 'resolved']
