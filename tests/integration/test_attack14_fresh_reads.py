"""attack14: members read fresh as ``member_cache.Kept`` rows (b0ee62f) equal what the read before it gave.

``reference_load`` is ``DjangoStore._load`` as it was at 9b63a8c (ORM datetimes, eager ``MemberState``s). Each test
reads, or decides, the same database both ways (and with kept members) and compares everything.
"""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Subquery, TextField
from django.db.models.functions import Cast

from business_application.choices import IncidentStatusChoices
from business_application.correlation.kinds import severity_rank
from business_application.correlation.lifecycle import MERGED, OPEN, RESOLVED, MemberState
from business_application.correlation.scenario import load_scenario, parse_scenario
from business_application.models import Event, EventSource, Incident, IncidentEvent
from business_application.services import member_cache
from business_application.services.graph_loader import current_map, node_of
from business_application.services.incident_service import DjangoStore, to_epoch
from business_application.services.stored_incident import StoredIncident
from business_application.settings import get_settings

from ..scenarios import SCENARIOS
from .test_batch_decisions import run, storm_text


def reference_load(self, queryset):
    """``DjangoStore._load`` at 9b63a8c."""
    rows = list(
        queryset.annotate(
            members_revision=Subquery(self._revisions),
            blast_text=Cast('blast_radius', output_field=TextField()),
        ).values(
            'pk',
            'created',
            'members_revision',
            'detected_at',
            'status',
            'severity',
            'title',
            'root_cause_event_id',
            'root_cause',
            'resolved_at',
            'resolved_event_time',
            'last_updated',
            'merged_into_id',
            'blast_text',
        )
    )

    def resolution_time(row):
        if row['resolved_at'] is None and row['status'] not in IncidentStatusChoices.OPEN and not row['merged_into_id']:
            return row['last_updated']
        return row['resolved_at']

    fresh = [row for row in rows if row['pk'] not in self.cache]
    states, unread = {}, {}
    for row in fresh:
        key, status = row['pk'], row['status']
        kept = self.kept and member_cache.entry(self.map, key, row['created'], row['members_revision'])
        state = StoredIncident.read(
            {
                'key': key,
                'opened_at': to_epoch(row['detected_at']),
                'status': MERGED
                if row['merged_into_id']
                else (OPEN if status in IncidentStatusChoices.OPEN else RESOLVED),
                'severity': severity_rank(row['severity']),
                'title': row['title'],
                'root_alert': row['root_cause_event_id'],
                'root_label': row['root_cause'],
                'resolved_at': to_epoch(resolution_time(row)),
                'resolved_event_time': to_epoch(row['resolved_event_time']),
                'merged_into': row['merged_into_id'],
            },
            kept or None,
            self.order,
            self.parse_blast,
            row['blast_text'],
        )
        self.db_status[key] = status
        self.revisions[key] = (row['created'], row['members_revision'])
        states[key] = state
        if not kept:
            unread[key] = []
    if unread:
        members = (
            IncidentEvent.objects.filter(incident_id__in=unread)
            .order_by('joined_at', 'pk')
            .values(
                'pk',
                'incident_id',
                'event_id',
                'occurrence',
                'status',
                'severity',
                'joined_at',
                'last_activity_at',
                'event__content_type_id',
                'event__object_id',
                'event__unmapped_label',
            )
        )
        for row in members:
            self.order[(row['event_id'], row['occurrence'])] = row['pk']
            node = node_of(self.map, row['event__content_type_id'], row['event__object_id'])
            member = MemberState(
                alert=row['event_id'],
                occurrence=row['occurrence'],
                node=node,
                label=self._label(
                    node,
                    row['event__content_type_id'],
                    row['event__object_id'],
                    row['event__unmapped_label'],
                    row['event_id'],
                ),
                status=row['status'],
                severity=severity_rank(row['severity']),
                joined_at=to_epoch(row['joined_at']),
                last_activity=to_epoch(row['last_activity_at']),
            )
            states[row['incident_id']].members.append(member)
            unread[row['incident_id']].append((member, row['pk']))
        for key, read in unread.items():
            state = states[key]
            for member, _ in read:
                state.services.update(self.map.services_of(member.node))
            if self.kept:
                member_cache.put(self.map, key, *self.revisions[key], read, state.services)
    for state in states.values():
        state.root_node = self._root_node(state)
    self.cache.update(states)
    return [self.cache[row['pk']] for row in rows]


def described(states, order):
    """Everything a decision may read of the incidents, to the bit (floats as their hex)."""

    def bits(value):
        return value.hex() if isinstance(value, float) else value

    out = []
    for state in states:
        fields = {}
        for field in dataclasses.fields(state):
            value = getattr(state, field.name)
            if field.name == 'members':
                value = [tuple(bits(v) for v in dataclasses.astuple(m)) for m in value]
            elif field.name == 'services':
                value = sorted(value)
            else:
                value = bits(value)
            fields[field.name] = value
        fields['root_node'] = state.root_node
        fields['types'] = [tuple(type(v).__name__ for v in dataclasses.astuple(m)) for m in state.members]
        out.append(fields)
    return out, dict(order)


def read(keys, how):
    reader = DjangoStore(current_map(), get_settings())
    reader.kept = how != 'kept-off'
    loader = reference_load if how == 'before' else DjangoStore._load
    states = loader(reader, Incident.objects.filter(pk__in=keys).order_by('pk'))
    summary = [
        (s.key, s.triggered(), s.last_activity(), s.member_nodes(), s.node_of_alert(s.root_alert)) for s in states
    ]
    return summary, described(states, reader.order)


@pytest.fixture
def odd_members(storm_map):
    """Incidents whose members are on odd objects, at odd times."""
    scenario, objects, start = storm_map
    source = EventSource.objects.create(name='attack14')
    device = ContentType.objects.get_by_natural_key('dcim', 'device')
    site = ContentType.objects.get_by_natural_key('dcim', 'site')
    core = objects['device:core-1']
    srv = objects['device:srv-1']

    def event(name, **fields):
        item = Event(
            event_source=source, dedup_id=name, message=name, status='triggered', criticallity='critical', **fields
        )
        Event.objects.bulk_create([item])  # no signal: nothing decides it
        return item

    events = [
        event('mapped', content_type=device, object_id=core.pk),
        event('mapped-2', content_type=device, object_id=srv.pk),
        event('unmapped-label', unmapped_label='host:ghost'),
        event('no-object'),
        event('unknown-model', content_type=site, object_id=core.site_id),
        event('gone', content_type=device, object_id=10**12),
        event('empty-label', unmapped_label=''),
    ]
    moments = [
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1900, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 12, 6, 12, 0, 0, 123_457, tzinfo=UTC),
        datetime(2026, 12, 6, 12, 0, 0, 123_457, tzinfo=UTC),  # a tie to the microsecond: pk decides
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 12, 6, 12, 0, 0, 123_456, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
    ]
    first = Incident.objects.create(
        title='odd',
        status='investigating',
        severity='critical',
        detected_at=datetime(1969, 7, 20, 20, 17, 40, 1, tzinfo=UTC),
        root_cause_event=events[0],
        root_cause='device:core-1',
    )
    second = Incident.objects.create(
        title='by hand',
        status='resolved',
        severity='high',
        detected_at=datetime(2026, 12, 6, tzinfo=UTC),
        resolved_event_time=datetime(1950, 5, 5, 5, 5, 5, 555_555, tzinfo=UTC),
        root_cause_event=events[3],
    )
    empty = Incident.objects.create(title='empty', status='new', severity='warning')
    merged = Incident.objects.create(title='merged', status='resolved', severity='info', merged_into=first)
    # Reversed pk order within a tie: the members inserted last join first.
    for index in reversed(range(len(events))):
        IncidentEvent.objects.create(
            incident=first,
            event=events[index],
            occurrence=1,
            joined_at=moments[index],
            last_activity_at=moments[(index + 3) % len(moments)],
            status='triggered' if index % 2 else 'ok',
            severity=['critical', 'high', 'warning', 'info'][index % 4],
        )
    for index, item in enumerate(events[:4]):
        IncidentEvent.objects.create(
            incident=second,
            event=item,
            occurrence=2,
            joined_at=moments[2],
            last_activity_at=moments[2] + timedelta(microseconds=index),
            status='ok',
            severity='warning',
        )
    Incident.objects.filter(pk=second.pk).update(last_updated=datetime(1955, 1, 1, 0, 0, 0, 7, tzinfo=UTC))
    return [first.pk, second.pk, empty.pk, merged.pk]


def read_every_way(keys):
    """The incidents as the read before the change gives them, after checking that the new read, with the cache off,
    filling it and from it, gives the same."""
    member_cache.clear()
    before = read(keys, 'before')
    member_cache.clear()
    assert read(keys, 'kept-off') == before
    assert read(keys, 'kept') == before
    assert read(keys, 'kept') == before
    return before


@pytest.mark.django_db(transaction=True)
def test_a_fresh_read_gives_what_the_previous_read_gave(odd_members):
    member_cache.clear()
    before = read(odd_members, 'before')
    member_cache.clear()
    off = read(odd_members, 'kept-off')
    member_cache.clear()
    fresh = read(odd_members, 'kept')  # read and kept
    again = read(odd_members, 'kept')  # from the cache
    assert off == before
    assert fresh == before
    assert again == before


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('zone', ['America/St_Johns', 'Pacific/Chatham', 'Asia/Kathmandu'])
def test_a_fresh_read_in_another_session_time_zone(odd_members, zone):
    member_cache.clear()
    before = read(odd_members, 'before')
    with connection.cursor() as cursor:
        cursor.execute('SET TIME ZONE %s', [zone])
    try:
        member_cache.clear()
        off = read(odd_members, 'kept-off')  # (the ORM's read would be off: Django takes the session zone as UTC)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
    assert off == before


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize('batched', [False, True])
@pytest.mark.parametrize('source', [*SCENARIOS, 'generated-storm'], ids=lambda p: getattr(p, 'stem', p))
def test_decisions_from_fresh_reads_equal_the_previous_reads(source, batched, monkeypatch):
    """The same scenario decided with kept members, with every read fresh (``kept = False``) and with the read of
    9b63a8c (fresh, eager): the same everything."""
    scenario = parse_scenario(storm_text()) if source == 'generated-storm' else load_scenario(source)
    kept = run(scenario, 5, batched=batched)
    monkeypatch.setattr(DjangoStore, 'kept', False)
    fresh = run(scenario, 5, batched=batched)
    monkeypatch.setattr(DjangoStore, '_load', reference_load)
    before = run(scenario, 5, batched=batched)
    assert fresh == before
    assert kept == before


@pytest.mark.django_db(transaction=True)
def test_changing_what_a_fresh_read_built_changes_nothing_kept(odd_members):
    """A decision changes the members it built in place (and may then roll back): the kept rows, the shared
    ``READ_FACTS`` and the other incidents keep what the database holds."""
    member_cache.clear()
    before = read(odd_members, 'before')
    facts = (member_cache.READ_FACTS[:3], dict(member_cache.READ_FACTS[3]))
    reader = DjangoStore(current_map(), get_settings())
    states = reader._load(Incident.objects.filter(pk__in=odd_members).order_by('pk'))
    for state in states:
        state.member_nodes().append(99)
        state.services.add(12345)
        for member in state.members:
            member.factors['changed'] = True
            member.factors.setdefault('nested', []).append(1)
            member.status, member.severity, member.joined_at, member.last_activity = 'x', 9, -1.0, -1.0
            member.opener, member.score, member.link = True, 0.5, 'l'
            member.path.append(3)
        if state.members:
            state.members.append(state.members[0])
            state.members.reverse()
    assert (member_cache.READ_FACTS[:3], dict(member_cache.READ_FACTS[3])) == facts
    assert read(odd_members, 'kept') == before  # from the cache
    member_cache.clear()
    assert read(odd_members, 'kept') == before


COMMITTED = {}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('mode', ['before', 'kept', 'cleared', 'kept-off'])
def test_committed_batches_decide_alike_however_members_are_read(mode, monkeypatch):
    """Committed batches of the storm: with the members the previous batches kept, with the cache emptied before
    each batch (another worker wrote them), with every read fresh, and with the read of 9b63a8c."""
    if mode == 'before':
        monkeypatch.setattr(DjangoStore, '_load', reference_load)
        monkeypatch.setattr(DjangoStore, 'kept', False)
    if mode == 'kept-off':
        monkeypatch.setattr(DjangoStore, 'kept', False)
    scenario = parse_scenario(storm_text(servers=40, seed=11))
    clear = member_cache.clear if mode == 'cleared' else None
    COMMITTED[mode] = run(scenario, 4, batched=True, committed=True, before_batch=clear)
    if mode != 'before':
        if 'before' not in COMMITTED:
            pytest.skip('run with the "before" case first')
        for part in ('incidents', 'services', 'members', 'timeline', 'events'):
            assert COMMITTED[mode][part] == COMMITTED['before'][part], part


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('change', ['rename', 'delete', 'rename-service'])
def test_kept_members_follow_a_change_of_the_map(odd_members, storm_map, change):
    """Members kept on one map, then the map changes (an object renamed or deleted): the next read, kept or
    fresh, gives what the read before b0ee62f gives on the new map."""
    scenario, objects, start = storm_map
    member_cache.clear()
    read(odd_members, 'kept')  # kept on the map as it was
    old_map = current_map()
    if change == 'rename':
        device = objects['device:core-1']
        device.name = 'core-1-renamed'
        device.save()
    elif change == 'delete':
        objects['device:srv-1'].delete()
    else:
        service = next(value for label, value in objects.items() if label.startswith('service:'))
        service.name = f'{service.name}-renamed'
        service.save()
    new_map = current_map()
    kept = read(odd_members, 'kept')
    before = read(odd_members, 'before')
    assert kept == before, f'map object replaced: {new_map is not old_map}'


@pytest.mark.django_db(transaction=True)
def test_random_members_read_fresh_as_before(storm_map):
    """Random incidents of random members (mapped and unmapped objects, objects of models the map does not know,
    no object), at times drawn from a few moments (ties) and a wide range: every read gives what 9b63a8c read."""
    import random

    scenario, objects, start = storm_map
    rng = random.Random(14)
    source = EventSource.objects.create(name='attack14-random')
    site = ContentType.objects.get_by_natural_key('dcim', 'site')
    targets = [(ContentType.objects.get_for_model(value), value.pk) for value in objects.values()]
    targets += [(site, next(iter(objects.values())).pk), (site, 10**9), (targets[0][0], 10**9), (None, None)]
    ties = [datetime(2026, 12, 6, 12, 0, 0, n, tzinfo=UTC) for n in (0, 1, 999_999)]
    events = []
    for n in range(60):
        content_type, object_id = rng.choice(targets)
        item = Event(
            event_source=source,
            dedup_id=f'r{n}',
            message='r',
            status='triggered',
            criticallity='critical',
            content_type=content_type,
            object_id=object_id,
            unmapped_label=rng.choice(['', 'host:x', 'device:srv-1', 'ghost']) if content_type is None else '',
        )
        events.append(item)
    Event.objects.bulk_create(events)

    def moment():
        if rng.random() < 0.5:
            return rng.choice(ties)
        return datetime(1900, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(200 * 365 * 86_400 * 10**6))

    keys = []
    for n in range(8):
        incident = Incident.objects.create(
            title=f'r{n}',
            status=rng.choice(['new', 'investigating', 'resolved', 'closed']),
            severity=rng.choice(['critical', 'high', 'warning', 'info']),
            detected_at=rng.choice([None, moment()]),
            resolved_at=rng.choice([None, moment()]),
            resolved_event_time=rng.choice([None, moment()]),
            root_cause_event=rng.choice([None, *events]),
        )
        keys.append(incident.pk)
    rows = []
    for item in events:
        for occurrence in range(1, rng.randint(1, 3) + 1):
            rows.append(
                IncidentEvent(
                    incident_id=rng.choice(keys),
                    event=item,
                    occurrence=occurrence,
                    joined_at=moment(),
                    last_activity_at=moment(),
                    status=rng.choice(['triggered', 'ok', 'suppressed']),
                    severity=rng.choice(['critical', 'high', 'warning', 'info']),
                )
            )
    rng.shuffle(rows)
    IncidentEvent.objects.bulk_create(rows)
    read_every_way(keys)
    for key in keys:  # one at a time, as get_incident reads them
        member_cache.clear()
        assert read([key], 'kept-off') == read([key], 'before')


@pytest.mark.django_db(transaction=True)
def test_an_open_incident_without_a_detection_time_does_not_break_decisions(storm_map):
    """Not b0ee62f's (9b63a8c reads it alike): an incident an operator opened without ``detected_at`` (the form and
    the API leave it empty), holding a failing member (an event moved into it), is live; the next decisions must
    still decide (``opened_at`` None is compared with the other live incidents' and subtracted from ``now``)."""
    from business_application.services.batch import decide_events
    from business_application.services.incident_service import process_event

    from .test_member_cache import storm_items

    scenario, objects, start = storm_map
    for event_id, outcome in decide_events(storm_items(storm_map, 0, 10)):
        assert not isinstance(outcome, Exception), (event_id, outcome)
    source = EventSource.objects.create(name='operator')
    device = ContentType.objects.get_by_natural_key('dcim', 'device')
    moved = Event(
        event_source=source,
        dedup_id='moved',
        message='moved',
        status='triggered',
        criticallity='critical',
        content_type=device,
        object_id=objects['device:srv-39'].pk,
    )
    Event.objects.bulk_create([moved])
    by_hand = Incident.objects.create(title='opened by hand', status='investigating', severity='high')
    IncidentEvent.objects.create(
        incident=by_hand,
        event=moved,
        joined_at=start,
        last_activity_at=start,
        status='triggered',
        severity='high',
    )
    items = storm_items(storm_map, 10, 10)
    outcomes = decide_events(items[:5])
    errors = [(event_id, outcome) for event_id, outcome in outcomes if isinstance(outcome, Exception)]
    assert errors == []
    for event_id, arrival in items[5:]:
        process_event(event_id, now=arrival)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('batched', [True, False])
def test_members_kept_by_a_rolled_back_decision_equal_a_fresh_read(storm_map, batched):
    """Decisions whose transaction rolls back read incidents fresh (kept on the way) and change the members they
    built: after the rollback, what the cache gives equals the database, and the next decisions decide alike."""
    from django.db import transaction

    from business_application.services.batch import decide_events
    from business_application.services.incident_service import process_event

    from .test_member_cache import storm_items
    from .test_member_cache_attack6 import assert_cache_is_fresh

    for event_id, outcome in decide_events(storm_items(storm_map, 0, 40)):
        assert not isinstance(outcome, Exception), (event_id, outcome)
    items = storm_items(storm_map, 40, 40)
    member_cache.clear()  # another worker wrote them
    with transaction.atomic():
        if batched:
            for event_id, outcome in decide_events(items):
                assert not isinstance(outcome, Exception), (event_id, outcome)
        else:
            for event_id, arrival in items:
                process_event(event_id, now=arrival)
        transaction.set_rollback(True)
    keys = list(Incident.objects.values_list('pk', flat=True))
    assert member_cache.stats()['incidents'] > 0
    assert_cache_is_fresh(keys)


_WORKER = """
import json, sys
from datetime import datetime
from business_application.services.batch import decide_events
for line in sys.stdin:
    items = [(event_id, datetime.fromisoformat(arrival)) for event_id, arrival in json.loads(line)]
    errors = [repr(outcome) for _, outcome in decide_events(items) if isinstance(outcome, Exception)]
    print('DONE ' + json.dumps(errors), flush=True)
"""

TWO_WORKERS = {}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('workers', [1, 2])
def test_two_workers_taking_turns_decide_as_one(storm_map, workers, tmp_path):
    """The storm's batches decided by one process, or alternately by this process and another (``netbox shell``):
    each then reads fresh the incidents the other wrote last. Everything written must be the same."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from business_application.services.batch import decide_events

    from .test_batch_decisions import snapshot
    from .test_member_cache import storm_items
    from .test_workers import worker_env

    scenario, objects, start = storm_map
    other = None
    if workers == 2:
        script = tmp_path / 'worker.py'
        script.write_text(_WORKER)
        netbox = Path(sys.executable).with_name('netbox')
        other = subprocess.Popen(
            [str(netbox), 'shell', '-c', f'exec(open({str(script)!r}).read())'],
            env=worker_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
    try:
        for turn, first in enumerate(range(0, len(scenario.events), 6)):
            items = storm_items(storm_map, first, 6)
            if other is not None and turn % 2:
                other.stdin.write(json.dumps([(e, a.isoformat()) for e, a in items]) + '\n')
                other.stdin.flush()
                line = other.stdout.readline()
                while line and not line.startswith('DONE '):  # the shell's banner
                    line = other.stdout.readline()
                assert line.startswith('DONE '), line
                assert json.loads(line[5:]) == [], line
            else:
                for event_id, outcome in decide_events(items):
                    assert not isinstance(outcome, Exception), (event_id, outcome)
    finally:
        if other is not None:
            other.stdin.close()
            other.wait(timeout=60)
    TWO_WORKERS[workers] = snapshot(start)
    if workers == 2:
        if 1 not in TWO_WORKERS:
            pytest.skip('run with the one-worker case first')
        for part in ('incidents', 'services', 'members', 'timeline', 'events'):
            assert TWO_WORKERS[2][part] == TWO_WORKERS[1][part], part


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('max_members', [member_cache.MAX_MEMBERS, 3000, 10])
def test_large_incidents_read_fresh_as_before(storm_map, monkeypatch, max_members):
    """Thousands of members, many at the same microsecond, some incidents past ``MAX_MEMBERS``: each read (fresh,
    kept, after the cache started again) gives what 9b63a8c read."""
    scenario, objects, start = storm_map
    monkeypatch.setattr(member_cache, 'MAX_MEMBERS', max_members)
    source = EventSource.objects.create(name='attack14-large')
    device = ContentType.objects.get_by_natural_key('dcim', 'device')
    pks = [value.pk for label, value in objects.items() if label.startswith('device:')]
    events = [
        Event(
            event_source=source,
            dedup_id=f'l{n}',
            message='l',
            status='triggered',
            criticallity='warning',
            content_type=device if n % 7 else None,
            object_id=pks[n % len(pks)] if n % 7 else None,
            unmapped_label='' if n % 7 else f'host:{n % 3}',
        )
        for n in range(2500)
    ]
    Event.objects.bulk_create(events)
    keys = [Incident.objects.create(title=f'l{n}', status='new', detected_at=start).pk for n in range(3)]
    rows = [
        IncidentEvent(
            incident_id=keys[0] if n < 2000 else keys[1 + n % 2],
            event=item,
            occurrence=1,
            joined_at=start + timedelta(microseconds=n % 5),
            last_activity_at=start + timedelta(seconds=n % 11, microseconds=1),
            status='triggered' if n % 3 else 'ok',
            severity='warning',
        )
        for n, item in enumerate(reversed(events))
    ]
    IncidentEvent.objects.bulk_create(rows, batch_size=1000)
    before = read_every_way(keys)
    assert member_cache.stats()['members'] <= max_members
    assert read(keys[1:], 'kept') == read(keys[1:], 'before')
    assert read(keys, 'kept') == before
