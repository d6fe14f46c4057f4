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
