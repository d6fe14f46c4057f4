"""Attack 6 on the members cache (``services.member_cache``, migration 0009).

Each test compares what ``DjangoStore._load`` gives with the cache (``kept = True``) against a fresh read
(``kept = False``), or checks a concurrency property. Tests that show a bug FAIL on 8557fbc and say so.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, connections, transaction

from business_application.models import Incident, IncidentEvent, IncidentMembersRevision
from business_application.services import batch as batch_module
from business_application.services import member_cache
from business_application.services.batch import BatchStore, decide_events
from business_application.services.graph_loader import current_map
from business_application.services.incident_service import DjangoStore
from business_application.settings import get_settings

from .test_batch_decisions import store as store_notification
from .test_member_cache import comparable, storm  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True)


def revision(incident_id):
    return IncidentMembersRevision.objects.filter(incident_id=incident_id).values_list('revision', flat=True).first()


def load(keys, kept):
    reader = DjangoStore(current_map(), get_settings())
    reader.kept = kept
    states = reader._load(Incident.objects.filter(pk__in=keys).order_by('pk'))
    return {
        state.key: ([comparable(m) for m in state.members], sorted(state.services), state.root_node)
        for state in states
    }


def assert_cache_is_fresh(keys):
    cached, fresh = load(keys, True), load(keys, False)
    for key in keys:
        assert cached[key] == fresh[key], f'incident {key}: the cache gave other members than a fresh read'


def decide_first(storm, count=30, first=0):
    scenario, objects, start = storm
    items = []
    for item in scenario.events[first : first + count]:
        arrival = start + timedelta(seconds=item.t)
        items.append((store_notification(item, objects, arrival, start + timedelta(seconds=item.event_time)), arrival))
    results = decide_events(items)
    for event_id, outcome in results:
        assert not isinstance(outcome, Exception), (event_id, outcome)
    return results


def biggest_incident():
    counts = {}
    for incident_id in IncidentEvent.objects.values_list('incident_id', flat=True):
        counts[incident_id] = counts.get(incident_id, 0) + 1
    return max(counts, key=counts.get)


# --- Stale members -------------------------------------------------------------------------------------------


def test_truncate_of_members_leaves_the_cache_stale(storm):
    """BUG (fails on 8557fbc): TRUNCATE fires no row/statement DML trigger, and 0009 has no TRUNCATE trigger,
    so emptying the members table by raw SQL keeps every incident's revision; the process then keeps deciding
    with members the database no longer holds."""
    decide_first(storm)
    keys = list(Incident.objects.values_list('pk', flat=True))
    load(keys, True)  # this process keeps the members
    with connection.cursor() as cursor:
        cursor.execute('TRUNCATE business_application_incidentevent')
    assert_cache_is_fresh(keys)


def test_a_write_from_another_connection_is_seen_at_the_next_load(storm):
    """Holds: another connection (as another worker would) deletes and updates members; the next load here
    reads them, because the triggers move the revision whoever writes."""
    decide_first(storm)
    key = biggest_incident()
    load([key], True)
    assert member_cache.get(current_map(), key, *Incident.objects.filter(pk=key).values_list('created').first(),
                            revision(key)) is not None

    def other():
        try:
            first = IncidentEvent.objects.filter(incident_id=key).order_by('pk').first()
            IncidentEvent.objects.filter(pk=first.pk).update(status='ok', score=0.01)
            IncidentEvent.objects.filter(incident_id=key).order_by('-pk').first().delete()
        finally:
            connections.close_all()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert_cache_is_fresh([key])


def test_event_retarget_by_bulk_update_moves_the_revision(storm):
    """Holds: ``QuerySet.update`` of many events' objects at once (one statement, several rows) gives every
    incident holding them a new revision."""
    scenario, objects, start = storm
    decide_first(storm)
    keys = list(Incident.objects.values_list('pk', flat=True))
    load(keys, True)
    from business_application.models import Event

    members = IncidentEvent.objects.values_list('event_id', flat=True)
    Event.objects.filter(pk__in=members).update(object_id=objects['device:core-2'].pk)
    assert_cache_is_fresh(keys)


# --- Migration -----------------------------------------------------------------------------------------------


def test_migrating_back_and_forward_reuses_revision_numbers(storm):
    """BUG (fails on 8557fbc): 0009's backward drops the sequence, its forward creates it again from 1, so the
    "a number is never given twice" promise breaks: a process that kept members before ``migrate
    business_application 0008`` and forward again (a deploy rolled back and redone while a worker lived on)
    finds an incident at a revision it already kept, with other members, and decides with the old ones."""
    decide_first(storm)
    key = biggest_incident()
    load([key], True)
    kept_at = revision(key)
    assert kept_at is not None
    try:
        call_command('migrate', 'business_application', '0008', verbosity=0)
        # Without triggers (the window between the two migrations) an operator deletes a member.
        with connection.cursor() as cursor:
            cursor.execute(
                'DELETE FROM business_application_incidentevent WHERE id = '
                '(SELECT max(id) FROM business_application_incidentevent WHERE incident_id = %s)',
                [key],
            )
    finally:
        call_command('migrate', 'business_application', verbosity=0)
    now = revision(key)
    assert now is not None, 'the forward migration gave the incident no revision'
    # Ordinary traffic (status repeats) moves the number on, one nextval at a time, through the kept one.
    while now < kept_at:
        IncidentEvent.objects.filter(incident_id=key).update(status='triggered')
        now = revision(key)
    assert_cache_is_fresh([key])


def test_forward_migration_numbers_every_incident_with_members(storm):
    """Holds: after 0008 -> 0009 on a database with incidents, every incident with members has a revision and
    no two incidents share one."""
    decide_first(storm)
    try:
        call_command('migrate', 'business_application', '0008', verbosity=0)
    finally:
        call_command('migrate', 'business_application', verbosity=0)
    with_members = set(IncidentEvent.objects.values_list('incident_id', flat=True))
    numbers = dict(IncidentMembersRevision.objects.values_list('incident_id', 'revision'))
    assert with_members <= set(numbers)
    assert len(set(numbers.values())) == len(numbers)
