"""Attack 6 on the members cache (``services.member_cache``, migration 0009).

Each test compares what ``DjangoStore._load`` gives with the cache (``kept = True``) against a fresh read
(``kept = False``), or checks a concurrency property. Tests marked "Failed on 8557fbc" showed a bug there;
each holds since.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction

from business_application.models import Incident, IncidentEvent, IncidentMembersRevision
from business_application.services import batch as batch_module
from business_application.services import member_cache
from business_application.services.batch import BatchStore, decide_events
from business_application.services.graph_loader import current_map
from business_application.services.incident_service import DjangoStore
from business_application.settings import get_settings

from .test_batch_decisions import store as store_notification
from .test_member_cache import comparable, storm_items

pytestmark = pytest.mark.django_db(transaction=True)


def revision(incident_id):
    return IncidentMembersRevision.objects.filter(incident_id=incident_id).values_list('revision', flat=True).first()


def load(keys, kept):
    reader = DjangoStore(current_map(), get_settings())
    reader.kept = kept
    states = reader._load(Incident.objects.filter(pk__in=keys).order_by('pk'))
    return {
        state.key: ([comparable(m) for m in state.members], sorted(state.services), state.root_node) for state in states
    }


def assert_cache_is_fresh(keys):
    cached, fresh = load(keys, True), load(keys, False)
    for key in keys:
        assert cached[key] == fresh[key], f'incident {key}: the cache gave other members than a fresh read'


def decide_first(storm_map, count=30, first=0):
    results = decide_events(storm_items(storm_map, first, count))
    for event_id, outcome in results:
        assert not isinstance(outcome, Exception), (event_id, outcome)
    return results


def biggest_incident():
    counts = {}
    for incident_id in IncidentEvent.objects.values_list('incident_id', flat=True):
        counts[incident_id] = counts.get(incident_id, 0) + 1
    return max(counts, key=counts.get)


# --- Stale members -------------------------------------------------------------------------------------------


def test_truncate_of_members_leaves_the_cache_stale(storm_map):
    """Failed on 8557fbc, fixed since: TRUNCATE fires no row/statement DML trigger, and 0009 has no TRUNCATE trigger,
    so emptying the members table by raw SQL keeps every incident's revision; the process then keeps deciding
    with members the database no longer holds."""
    decide_first(storm_map)
    keys = list(Incident.objects.values_list('pk', flat=True))
    load(keys, True)  # this process keeps the members
    with connection.cursor() as cursor:
        cursor.execute('TRUNCATE business_application_incidentevent')
    assert_cache_is_fresh(keys)


def test_a_write_from_another_connection_is_seen_at_the_next_load(storm_map):
    """Holds: another connection (as another worker would) deletes and updates members; the next load here
    reads them, because the triggers move the revision whoever writes."""
    decide_first(storm_map)
    key = biggest_incident()
    load([key], True)
    assert (
        member_cache.get(
            current_map(), key, *Incident.objects.filter(pk=key).values_list('created').first(), revision(key)
        )
        is not None
    )

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


def test_event_retarget_by_bulk_update_moves_the_revision(storm_map):
    """Holds: ``QuerySet.update`` of many events' objects at once (one statement, several rows) gives every
    incident holding them a new revision."""
    scenario, objects, start = storm_map
    decide_first(storm_map)
    keys = list(Incident.objects.values_list('pk', flat=True))
    load(keys, True)
    from business_application.models import Event

    members = IncidentEvent.objects.values_list('event_id', flat=True)
    Event.objects.filter(pk__in=members).update(object_id=objects['device:core-2'].pk)
    assert_cache_is_fresh(keys)


# --- Migration -----------------------------------------------------------------------------------------------


def test_migrating_back_and_forward_reuses_revision_numbers(storm_map):
    """Failed on 8557fbc, fixed since: 0009's backward drops the sequence, its forward creates it again from 1, so the
    "a number is never given twice" promise breaks: a process that kept members before ``migrate
    business_application 0008`` and forward again (a deploy rolled back and redone while a worker lived on)
    finds an incident at a revision it already kept, with other members, and decides with the old ones."""
    decide_first(storm_map)
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


def test_forward_migration_numbers_every_incident_with_members(storm_map):
    """Holds: after 0008 -> 0009 on a database with incidents, every incident with members has a revision and
    no two incidents share one."""
    decide_first(storm_map)
    try:
        call_command('migrate', 'business_application', '0008', verbosity=0)
    finally:
        call_command('migrate', 'business_application', verbosity=0)
    with_members = set(IncidentEvent.objects.values_list('incident_id', flat=True))
    numbers = dict(IncidentMembersRevision.objects.values_list('incident_id', 'revision'))
    assert with_members <= set(numbers)
    assert len(set(numbers.values())) == len(numbers)


# --- Concurrency ---------------------------------------------------------------------------------------------


def _new_alert_joining(storm_map):
    """An alert of the storm_map, on an object with no event yet, that joins an incident already open (found by a
    rolled-back dry run): ``(item, arrival, incident)``."""
    from business_application.models import Event

    scenario, objects, start = storm_map
    known = set(Event.objects.values_list('object_id', flat=True))
    for item in scenario.events[30:]:
        target = objects.get(item.object)
        if target is None or target.pk in known:
            continue
        arrival = start + timedelta(seconds=item.t)
        with transaction.atomic():
            event_id = store_notification(item, objects, arrival, start + timedelta(seconds=item.event_time))
            ((_, outcome),) = decide_events([(event_id, arrival)])
            transaction.set_rollback(True)
        if getattr(outcome, 'action', None) == 'joined':
            return item, arrival, outcome.incident
        known.add(target.pk)
    pytest.skip('no alert of a new object joins an open incident')


def test_operator_move_and_a_batch_joining_the_same_incident_do_not_deadlock(storm_map, monkeypatch, caplog):
    """Holds (passes): the decision locks (map component) that ``lock_incidents`` takes first serialise the move
    with any batch joining the incident, so the new lock order below never closes a cycle on this path.
    Had the move locked the incident rows before the decision locks, it would deadlock: a new lock order. The
    operator's move (``ui/actions.py``) locks the incident rows
    (``lock_incidents``) and then, through 0009's trigger, the members revision rows; a decision batch now
    locks the revision row first (``BatchStore._claim``) and then needs the incident row (the foreign key
    check of its member insert, its incident update). The batch's alert is on a new object, so the decision
    locks do not serialise the two. Before 0009 the batch only waited for the move; now PostgreSQL finds a
    deadlock and kills one: the operator's request fails, or the batch is rolled back and redone one event at
    a time. The interleaving is forced by pausing the batch right after its claim."""
    from business_application.ui.actions import lock_incidents

    scenario, objects, start = storm_map
    decide_first(storm_map)
    item, arrival, incident = _new_alert_joining(storm_map)
    member_event = (
        IncidentEvent.objects.filter(incident_id=incident).order_by('pk').values_list('event_id', flat=True)[0]
    )
    target = (
        Incident.objects.filter(status__in=('new', 'investigating', 'identified', 'monitoring'))
        .exclude(pk=incident)
        .order_by('pk')
        .values_list('pk', flat=True)
        .first()
    )
    assert target is not None
    event_id = store_notification(item, objects, arrival, start + timedelta(seconds=item.event_time))

    claimed, operator_waiting = threading.Event(), threading.Event()
    errors, paused = [], []
    original = BatchStore._claim

    def claim(self, keys):
        original(self, keys)
        if incident in self.claimed and not paused:
            paused.append(True)
            claimed.set()
            operator_waiting.wait(10)
            time.sleep(0.5)  # the operator's member update now waits for the revision row

    monkeypatch.setattr(BatchStore, '_claim', claim)

    def operator():
        try:
            assert claimed.wait(20), 'the batch never claimed the incident'
            with transaction.atomic():
                lock_incidents([incident, target], extra_events=[member_event])
                operator_waiting.set()
                IncidentEvent.objects.filter(incident_id=incident, event_id=member_event).update(incident_id=target)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            operator_waiting.set()
            connection.close()

    thread = threading.Thread(target=operator)
    thread.start()
    with caplog.at_level('WARNING', logger='business_application.services.batch'):
        results = decide_events([(event_id, arrival)])
    thread.join(30)
    assert paused, 'the batch never paused at its claim'
    assert not errors, f"the operator's move failed: {errors!r}"
    fell_back = [r for r in caplog.records if 'one at a time' in r.getMessage()]
    assert not fell_back, 'the batch failed (deadlock) and was decided again one event at a time'
    assert not isinstance(results[0][1], Exception), results


def _merge_with_a_foreign_deletion(storm_map, monkeypatch, orm):
    """Run the storm_map in batches of 7; at the first merge whose source holds a member the batch neither wrote nor
    decides, another connection deletes that member (``orm``: deletes its event through the ORM, as the REST
    API and the UI do, which takes no decision lock for a member no longer alerting; else raw SQL) and commits,
    between the batch's read and its claim. Returns (source, target, deleted event)."""
    from business_application.models import Event

    scenario, objects, start = storm_map
    original = BatchStore.move_members
    done = []

    def move_members(self, source, target):
        if not done:
            busy = self.written | set(self.new_members) | set(self.member_changes) | set(self.memberships)
            victims = [m for m in source.members if (m.alert, m.occurrence) not in busy]
            if orm:
                victims = [m for m in victims if m.status != 'triggered']
            if victims:
                victim = victims[0]
                outcome = []

                def other_writer():
                    try:
                        if orm:
                            Event.objects.get(pk=victim.alert).delete()
                        else:
                            with connection.cursor() as cursor:
                                cursor.execute(
                                    'DELETE FROM business_application_incidentevent '
                                    'WHERE event_id = %s AND occurrence = %s',
                                    [victim.alert, victim.occurrence],
                                )
                        outcome.append('deleted')
                    except Exception as exc:  # noqa: BLE001
                        outcome.append(exc)
                    finally:
                        connection.close()

                thread = threading.Thread(target=other_writer)
                thread.start()
                thread.join(10)
                assert not thread.is_alive(), 'the other writer waited on the batch'
                assert outcome == ['deleted'], outcome
                done.append((source.key, target.key, victim.alert))
        return original(self, source, target)

    monkeypatch.setattr(BatchStore, 'move_members', move_members)
    for _ in range(20):  # the map import's deltas, applied before the storm_map (else every batch has a new map)
        if current_map() is current_map():
            break
    for first in range(0, len(scenario.events), 7):
        if orm:  # one cleared (no longer alerting) member in each incident of three or more
            for incident_id in Incident.objects.filter(merged_into__isnull=True).values_list('pk', flat=True):
                rows = list(
                    IncidentEvent.objects.filter(incident_id=incident_id).order_by('pk').values_list('pk', 'status')
                )
                if len(rows) >= 3 and all(status == 'triggered' for _, status in rows):
                    IncidentEvent.objects.filter(pk=rows[0][0]).update(status='ok')
        items = []
        for item in scenario.events[first : first + 7]:
            arrival = start + timedelta(seconds=item.t)
            event_id = store_notification(item, objects, arrival, start + timedelta(seconds=item.event_time))
            items.append((event_id, arrival))
        decide_events(items)
        if done:
            break
    assert done, 'no merge in the storm_map'
    source, target, victim = done[0]
    assert not IncidentEvent.objects.filter(event_id=victim).exists()
    return source, target, victim


def test_a_merge_into_a_clean_target_keeps_a_member_deleted_by_raw_sql(storm_map, monkeypatch):
    """Failed on 8557fbc, fixed since: ``_claim`` judges each incident alone. In a merge the target's revision did not
    move, so it is "clean", but the members it receives are the source's as the batch read them. If another
    writer deleted a member of the source in between (raw SQL here, committed in another connection), the
    database's target gets the source's real rows while ``remember_members`` keeps the target with the
    deleted member (and its services). The next decision in this process reads a member that is gone."""
    source, target, victim = _merge_with_a_foreign_deletion(storm_map, monkeypatch, orm=False)
    assert_cache_is_fresh([target])


def test_a_merge_into_a_clean_target_keeps_an_event_deleted_through_the_orm(storm_map, monkeypatch):
    """Failed on 8557fbc, fixed since: as above, the other writer being an operator deleting a cleared event (REST API /
    UI ``Event.delete``: its pre_delete takes the decision lock only for a member still alerting, so nothing
    serialises it with the batch)."""
    source, target, victim = _merge_with_a_foreign_deletion(storm_map, monkeypatch, orm=True)
    assert_cache_is_fresh([target])


# --- Rollback, memory ----------------------------------------------------------------------------------------


@pytest.mark.parametrize('outer', [False, True])
def test_a_batch_that_fails_after_remembering_keeps_nothing_stale(storm_map, monkeypatch, outer):
    """Holds: the batch fails after ``remember_members`` (in ``_write_events``), rolls back and is decided one
    at a time (also inside an outer transaction that then commits): the cache still equals a fresh read."""
    scenario, objects, start = storm_map
    for _ in range(20):
        if current_map() is current_map():
            break
    original = batch_module._write_events
    calls = []

    def failing(*args, **kwargs):
        calls.append(True)
        if len(calls) % 3 == 2:
            raise RuntimeError('fails after the batch remembered its members')
        return original(*args, **kwargs)

    monkeypatch.setattr(batch_module, '_write_events', failing)
    for first in range(0, len(scenario.events), 7):
        items = storm_items(storm_map, first, 7)
        if outer:
            with transaction.atomic():
                decide_events(items)
        else:
            decide_events(items)
        assert_cache_is_fresh(list(Incident.objects.values_list('pk', flat=True)))
    assert len(calls) > 3


def test_a_small_max_members_keeps_decisions_fresh(storm_map, monkeypatch):
    """Holds: with ``MAX_MEMBERS`` smaller than the storm_map's incident the cache resets and never serves stale
    members, and the counter of kept members stays within the bound."""
    scenario, objects, start = storm_map
    monkeypatch.setattr(member_cache, 'MAX_MEMBERS', 12)
    for first in range(0, len(scenario.events), 7):
        items = storm_items(storm_map, first, 7)
        decide_events(items)
        assert member_cache.stats()['members'] <= 12
        assert_cache_is_fresh(list(Incident.objects.values_list('pk', flat=True)))


def test_a_write_in_another_process_is_seen_at_the_next_decision_here(storm_map):
    """Holds: another process (``netbox shell`` on the test database) updates one member and deletes another
    event of a kept incident; this process's next load equals a fresh read."""
    import subprocess
    import sys
    from pathlib import Path

    from .test_workers import worker_env

    decide_first(storm_map)
    key = biggest_incident()
    load([key], True)
    rows = list(IncidentEvent.objects.filter(incident_id=key).order_by('pk').values_list('pk', 'event_id'))
    assert len(rows) >= 2
    code = (
        'from business_application.models import Event, IncidentEvent; '
        f'IncidentEvent.objects.filter(pk={rows[0][0]}).update(status="ok", score=0.25); '
        f'Event.objects.get(pk={rows[-1][1]}).delete()'
    )
    netbox = Path(sys.executable).with_name('netbox')
    result = subprocess.run(
        [str(netbox), 'shell', '-c', code], env=worker_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not IncidentEvent.objects.filter(pk=rows[-1][0]).exists()
    assert_cache_is_fresh([key])


def _decided_state():
    return sorted(
        (
            incident.pk,
            incident.status,
            incident.severity,
            incident.title,
            tuple(sorted(incident.affected_services.values_list('pk', flat=True))),
            repr(incident.blast_radius),
        )
        for incident in Incident.objects.prefetch_related('affected_services')
    )


def test_after_the_stale_merge_clearing_every_alert_decides_otherwise_than_a_fresh_read(storm_map, monkeypatch):
    """Failed on 8557fbc, fixed since: the stale merge target above changes decisions. After the merge with a member
    deleted by raw SQL, every alert still in the target clears, in one batch: decided once with members read
    fresh (``DjangoStore.kept = False``, rolled back), once as the product does (kept members). The outcomes
    and the incidents' decided fields (status, severity, title, services, blast radius) must be equal; with
    the kept members the deleted member still alerts in memory."""
    import dataclasses

    from django.test.utils import override_settings

    from business_application.models import Event

    scenario, objects, start = storm_map
    with override_settings(BUSINESS_APP_AUTO_RESOLVE_INCIDENTS=True):
        source, target, victim = _merge_with_a_foreign_deletion(storm_map, monkeypatch, orm=False)
        by_dedup = {item.dedup_id: item for item in scenario.events}
        alerting = Event.objects.filter(memberships__incident_id=target, memberships__status='triggered').distinct()
        later = max(item.t for item in scenario.events) + 30
        items = []
        for dedup_id in alerting.values_list('dedup_id', flat=True):
            clear = dataclasses.replace(by_dedup[dedup_id], status='ok', t=later, event_time=later)
            arrival = start + timedelta(seconds=later)
            items.append((store_notification(clear, objects, arrival, arrival), arrival))
        assert items
        with transaction.atomic():
            monkeypatch.setattr(DjangoStore, 'kept', False)
            fresh = [(e, getattr(o, 'action', o), getattr(o, 'incident', None)) for e, o in decide_events(items)]
            fresh_state = _decided_state()
            monkeypatch.setattr(DjangoStore, 'kept', True)
            transaction.set_rollback(True)
        kept = [(e, getattr(o, 'action', o), getattr(o, 'incident', None)) for e, o in decide_events(items)]
        kept_state = _decided_state()
        outcomes = [(f, k) for f, k in zip(fresh, kept, strict=True) if f != k]
        incidents = [(f, k) for f, k in zip(fresh_state, kept_state, strict=True) if f != k]
        assert not outcomes, f'fresh vs kept outcomes {outcomes}'
        assert not incidents, f'fresh vs kept incidents {incidents}'
