"""Attack 7: the receiver's search index skip (15eac06), the join's services and settle (61b80c1), the members
cache (8557fbc, 539e2d5).

Tests saying "Failed on 8181e6e" showed a bug there (15eac06), fixed since; the others are properties that held.
"""

import random
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test.utils import override_settings
from django.utils import timezone

from business_application.correlation.scenario import parse_scenario
from business_application.models import Event, Incident
from business_application.services.batch import decide_events
from business_application.services.graph_loader import current_map, forget_map
from business_application.services.incident_service import DjangoStore, process_event
from business_application.services.intake import IncomingAlert, ingest
from business_application.settings import get_settings

from .test_batch_decisions import run, storm_text
from .test_batch_decisions import store as store_notification
from .test_member_cache import comparable

pytestmark = pytest.mark.django_db(transaction=True)


# --- 1. Search entries of repeats (15eac06) ----------------------------------------------------------------------


def entries(event):
    """The search entries NetBox holds for this event: (field, value, weight)."""
    from extras.models import CachedValue

    return sorted(
        CachedValue.objects.filter(
            object_type=ContentType.objects.get_for_model(Event), object_id=event.pk
        ).values_list('field', 'value', 'weight')
    )


def expected(event):
    """What NetBox's own ``search_backend.cache(event)`` stores for the event as it is in the database now."""
    from extras.models import CustomField

    from business_application.search import EventIndex

    event = Event.objects.get(pk=event.pk)
    fields = [cf for cf in CustomField.objects.get_for_model(Event) if cf.search_weight > 0]
    return sorted((v.name, str(v.value), v.weight) for v in EventIndex.to_cache(event, custom_fields=fields))


def alert(dedup_id, message, label='', **extra):
    return IncomingAlert(
        source='attack7',
        dedup_id=dedup_id,
        message=message,
        status=extra.pop('status', 'triggered'),
        criticallity='critical',
        raw={},
        unmapped_label=label,
        **extra,
    )


def test_a_repeat_no_longer_restores_search_entries_an_earlier_store_failed_to_write(monkeypatch):
    """Failed on 8181e6e, fixed since. ``_index`` swallows any failure ("search is a convenience; never fail intake over
    it"), so a batch whose indexing failed (a transient error) stores its alerts unsearchable. Before 15eac06 the
    next repeat of each alert rewrote its entries; now a repeat that changes no indexed field skips them, so an alert
    that repeats every minute for days stays out of NetBox's global search for good."""
    from netbox.search.backends import search_backend

    real = search_backend.cache

    def broken(*args, **kwargs):
        raise RuntimeError('transient search failure')

    monkeypatch.setattr(search_backend, 'cache', broken)
    [(event, created)] = ingest([alert('a7-lost', 'database primary unreachable', 'db-host-1')], create_sources=True)
    assert created
    monkeypatch.setattr(search_backend, 'cache', real)
    assert entries(event) == []  # the failure left it out
    for _ in range(3):  # the alert keeps repeating, unchanged
        ingest([alert('a7-lost', 'database primary unreachable', 'db-host-1'), alert('a7-other', 'x', 'h')])
    assert entries(event) == expected(event), 'repeats never put the alert back in the search index'


def test_a_repeat_no_longer_indexes_a_custom_field_default_netbox_filled_in_without_reindexing():
    """Failed on 8181e6e, fixed since. Adding a searchable custom field with a default to events makes NetBox write the
    default into every stored event's custom_field_data with a queryset update (``populate_initial_data``), which
    reindexes nothing. Before 15eac06 the next repeat of each alert rewrote its entries from the row (the default
    included); ``_indexed`` now compares the row before and after the repeat, both with the default, and skips it:
    the stored alerts are never found by the field's value, while NetBox's ``cache(event)`` would index it."""
    from extras.models import CustomField

    [(event, _)] = ingest([alert('a7-cf', 'disk full', 'fs-host-1')], create_sources=True)
    field = CustomField.objects.create(
        name='a7_team', type='text', default='storage-oncall', search_weight=500, required=False
    )
    field.object_types.set([ContentType.objects.get_for_model(Event)])
    assert Event.objects.get(pk=event.pk).custom_field_data.get('a7_team') == 'storage-oncall'
    ingest([alert('a7-cf', 'disk full', 'fs-host-1'), alert('a7-cf-other', 'y', 'h')])
    assert entries(event) == expected(event), 'the repeat left the custom field out of the search index'


def test_netbox_deferred_index_race_is_no_longer_healed_by_the_next_repeat():
    """Failed on 8181e6e, fixed since. NetBox 4.7 indexes a saved event later (``SearchCacheJob`` on an RQ worker, or on
    commit): it reads the row, then deletes and rewrites its entries, and calls the race with a concurrent write
    "benign: the concurrent save schedules its own deferred update". The receiver's repeat schedules none (it
    writes the entries itself, in its transaction), so a repeat that changes the message between the job's read and
    its write leaves the old words indexed. Before 15eac06 the alert's next repeat rewrote them; now every later
    repeat (same message) skips it, and the alert is found by words it no longer has, not by those it has."""
    from netbox.search.backends import search_backend

    [(event, _)] = ingest([alert('a7-race', 'link flapping on uplink', 'edge-1')], create_sources=True)
    stale = list(Event.objects.filter(pk=event.pk))  # the job reads the row (say, after a user set a field)...
    ingest([alert('a7-race', 'uplink down hard', 'edge-1'), alert('a7-r2', 'q', 'h')])  # ...a repeat commits...
    object_type = ContentType.objects.get_for_model(Event).pk
    search_backend._remove_by_id(object_type, [event.pk])  # ...and the job writes what it read
    search_backend.cache(stale, remove_existing=False)
    for _ in range(3):
        ingest([alert('a7-race', 'uplink down hard', 'edge-1'), alert('a7-r2', 'q', 'h')])
    assert entries(event) == expected(event), 'the old message stays indexed through every later repeat'


def test_search_entries_follow_the_row_through_edits_label_changes_duplicates_and_truncation():
    """Held: after each step (API-like saves of custom fields and message, repeats that change the unmapped label,
    a mapping, a message past 2,000 characters changed only beyond the cut, a group naming one alert twice) the
    entries equal what ``search_backend.cache(event)`` would store."""
    from dcim.models import Device
    from extras.models import CustomField

    field = CustomField.objects.create(name='a7_note', type='text', search_weight=400, required=False)
    field.object_types.set([ContentType.objects.get_for_model(Event)])
    [(event, _)] = ingest([alert('a7-held', 'cpu hot', 'host-a')], create_sources=True)
    assert entries(event) == expected(event)

    stored = Event.objects.get(pk=event.pk)  # a user sets a custom field (the API and the UI save the object)
    stored.custom_field_data['a7_note'] = 'ticket INC-4711'
    stored.save()
    assert entries(event) == expected(event)
    ingest([alert('a7-held', 'cpu hot', 'host-a'), alert('a7-h2', 'z', 'h')])
    assert entries(event) == expected(event)

    stored = Event.objects.get(pk=event.pk)  # a user edits the message, the sender repeats the original
    stored.message = 'edited by hand'
    stored.save()
    ingest([alert('a7-held', 'cpu hot', 'host-a'), alert('a7-h2', 'z', 'h')])
    assert Event.objects.get(pk=event.pk).message == 'cpu hot'
    assert entries(event) == expected(event)

    ingest([alert('a7-held', 'cpu hot', 'host-b'), alert('a7-h2', 'z', 'h')])  # a new unmapped label
    assert entries(event) == expected(event)
    device = Device.objects.first()
    if device is not None:  # mapped: no unmapped label any more
        ct = ContentType.objects.get_for_model(Device)
        ingest([alert('a7-held', 'cpu hot', '', content_type=ct, object_id=device.pk), alert('a7-h2', 'z', 'h')])
        assert entries(event) == expected(event)

    long = 'L' * 2000
    ingest([alert('a7-held', long + 'first tail', 'host-c'), alert('a7-h2', 'z', 'h')])
    first = entries(event)
    ingest([alert('a7-held', long + 'other tail', 'host-c'), alert('a7-h2', 'z', 'h')])
    assert entries(event) == first == expected(event)

    ingest([alert('a7-held', 'first of two', 'host-d'), alert('a7-held', 'second of two', 'host-d')])
    assert entries(event) == expected(event)
    assert any('second of two' in value for _, value, _ in entries(event))


# --- 2. Batch decisions with out-of-order arrivals, both backends (61b80c1) ---------------------------------------


def run_shuffled(scenario, group, batched, seed):
    """As test_batch_decisions.run, but each group is decided in a shuffled order (arrival times not ascending
    inside one batch, as concurrent receivers' rows reach one job)."""
    return run(scenario, group, batched, shuffle=random.Random(seed) if seed is not None else None)


@pytest.fixture(autouse=True)
def fresh_settings():
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def use_backend(monkeypatch, backend):
    monkeypatch.setenv('BUSINESS_APP_ENGINE_BACKEND', backend)
    get_settings.cache_clear()
    assert get_settings().engine_backend == backend


def old_behaviour(monkeypatch):
    """Decisions as before 61b80c1: every join adds every member's services again, and after each event every
    incident the batch holds is sorted whole into a fresh read's order."""
    from business_application.correlation.lifecycle import Correlator
    from business_application.services.batch import BatchStore

    refresh = Correlator._refresh

    def full_refresh(self, *args, **kwargs):
        kwargs.pop('added', None)
        return refresh(self, *args, **kwargs)

    def full_settle(self):
        for state in self.cache.values():
            state.members.sort(key=self._member_order)
        self.touched.clear()
        self.appended.clear()

    monkeypatch.setattr(Correlator, '_refresh', full_refresh)
    monkeypatch.setattr(BatchStore, 'settle', full_settle)


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize('backend', ['rust', 'python'])
@pytest.mark.parametrize('seed', [1, 2, 3])
def test_shuffled_batches_decide_as_before_61b80c1(backend, seed, monkeypatch):
    """Held: groups of 25 decided out of arrival order (batch and one at a time) give the same decisions with the
    new ``added``/``settle`` as with the old full recompute and full sort, on each backend."""
    use_backend(monkeypatch, backend)
    scenario = parse_scenario(storm_text(servers=30, seed=seed))
    new = {batched: run_shuffled(scenario, 25, batched, seed) for batched in (True, False)}
    old_behaviour(monkeypatch)
    old = {batched: run_shuffled(scenario, 25, batched, seed) for batched in (True, False)}
    for batched in (True, False):
        for part in ('incidents', 'services', 'members', 'timeline', 'events'):
            assert new[batched][part] == old[batched][part], (batched, part)


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize('seed', [4, 5])
def test_python_backend_batches_equal_one_at_a_time_and_rust(seed, monkeypatch):
    """Held: in arrival order, the python backend's batch decisions equal its one-at-a-time decisions and the Rust
    core's."""
    scenario = parse_scenario(storm_text(servers=30, seed=seed))
    results = {}
    for backend in ('python', 'rust'):
        use_backend(monkeypatch, backend)
        results[backend] = {batched: run_shuffled(scenario, 20, batched, None) for batched in (True, False)}
    for part in ('incidents', 'services', 'members', 'timeline', 'events'):
        assert results['python'][True][part] == results['python'][False][part], part
        assert results['python'][True][part] == results['rust'][True][part], part


# --- 3. Members cache (8557fbc, 539e2d5) -------------------------------------------------------------------------


def load(kept):
    reader = DjangoStore(current_map(), get_settings())
    reader.kept = kept
    states = reader._load(Incident.objects.order_by('pk'))
    return {
        state.key: ([comparable(m) for m in state.members], sorted(state.services), state.root_node) for state in states
    }


def decide(storm_map, first, count):
    scenario, objects, start = storm_map
    items = []
    for item in scenario.events[first : first + count]:
        arrival = start + timedelta(seconds=item.t)
        items.append((store_notification(item, objects, arrival, start + timedelta(seconds=item.event_time)), arrival))
    for event_id, outcome in decide_events(items):
        assert not isinstance(outcome, Exception), (event_id, outcome)


def test_cached_members_follow_a_device_rename_a_deleted_device_and_settings(storm_map):
    """Held: after batches kept members, a device rename, a deletion of a member's device (its node becomes None)
    and a change of network roles each give the cache the members a fresh read gives."""
    from dcim.models import Device

    decide(storm_map, 0, 40)
    load(True)
    device = Device.objects.filter(name__startswith='srv-').order_by('pk').first()
    device.name = 'renamed-' + device.name
    device.save()
    assert load(True) == load(False)
    decide(storm_map, 40, 20)
    assert load(True) == load(False)
    Device.objects.filter(name__startswith='srv-').order_by('-pk').first().delete()
    assert load(True) == load(False)
    with override_settings(BUSINESS_APP_NETWORK_ROLES=['server']):
        assert load(True) == load(False)
    forget_map()
    assert load(True) == load(False)


def test_process_event_then_batches_in_one_process_keep_fresh_members(storm_map):
    """Held: events decided one at a time (``process_event``) between batches, and a ``forget_map`` in between."""
    scenario, objects, start = storm_map
    decide(storm_map, 0, 30)
    for item in scenario.events[30:40]:
        arrival = start + timedelta(seconds=item.t)
        process_event(
            store_notification(item, objects, arrival, start + timedelta(seconds=item.event_time)), now=arrival
        )
        assert load(True) == load(False)
    forget_map()
    decide(storm_map, 40, 30)
    assert load(True) == load(False)
    now = timezone.now()
    assert now is not None


def test_cached_members_after_reprocess_and_a_backend_switch(storm_map, monkeypatch):
    """Held: the management command's re-correlation (memberships deleted, events decided again) and a switch of
    the engine backend between batches leave the cache giving what a fresh read gives."""
    from django.core.management import call_command

    decide(storm_map, 0, 50)
    load(True)
    call_command('process_incidents', mode='reprocess', hours=8760, force_correlate=True, stdout=open('/dev/null', 'w'))
    assert load(True) == load(False)
    use_backend(monkeypatch, 'python')
    decide(storm_map, 50, 30)
    assert load(True) == load(False)
    use_backend(monkeypatch, 'rust')
    decide(storm_map, 80, 30)
    assert load(True) == load(False)
    call_command('process_incidents', mode='process', hours=8760, stdout=open('/dev/null', 'w'))
    assert load(True) == load(False)
