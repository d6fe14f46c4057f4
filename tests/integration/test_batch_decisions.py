"""Deciding events in batches gives exactly the decisions of deciding them one at a time (PRODUCT rule 14).

Every scenario file, and a generated storm behind a core switch (repeats, clears, flaps, a late
parent alert, one unmapped object), is stored notification by notification in groups, as a
receiver would store an alert group; each group is then decided either event by event with
``process_event`` or all at once with ``decide_events``. Each run starts from the same pristine
database (a rolled-back transaction) and must leave the same incidents, members (scores, factors,
paths, statuses), root causes, severities, titles, blast radii, affected services, timelines and
event bookkeeping.
"""

import contextlib
import random
import re
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test.utils import override_settings
from django.utils import timezone

from business_application.correlation.scenario import load_scenario, parse_scenario
from business_application.management.commands.replay_scenario import create_maintenance, event_fields, replay_start
from business_application.models import Event, EventSource, Incident, IncidentEvent, IncidentTimelineEntry
from business_application.services import member_cache
from business_application.services.batch import decide_events
from business_application.services.graph_loader import forget_map
from business_application.services.incident_service import process_event
from business_application.services.intake import repeat_changes
from business_application.services.map_import import import_map

from ..scenarios import SCENARIOS


class _Rollback(Exception):
    pass


def storm_text(servers=40, seed=7):
    """A core switch fails behind many servers: firing, repeats, flaps and clears, the switch alerting late."""
    rng = random.Random(seed)
    services = [f'svc-{i}' for i in range(servers // 4)]
    lines = ['name: generated-storm', 'graph:', f'  services: [{", ".join(services)}]', '  devices:']
    lines.append('    - {name: core-1, role: switch}')
    lines.append('    - {name: core-2, role: switch}')
    for i in range(servers):
        uplink = 'core-1' if i % 5 else 'core-2'
        lines.append(
            f'    - {{name: srv-{i}, role: server, services: [{services[i % len(services)]}], links: [{uplink}]}}'
        )
    events = []
    for i in range(servers):
        t = rng.uniform(0, 120)
        severity = rng.choice(['critical', 'high', 'warning'])
        events.append((t, f'device:srv-{i}', 'firing', severity, f'srv-{i}-down'))
        for _ in range(rng.randint(0, 3)):
            events.append((t + rng.uniform(1, 200), f'device:srv-{i}', 'firing', 'critical', f'srv-{i}-down'))
        if rng.random() < 0.3:
            cleared = t + rng.uniform(30, 400)
            events.append((cleared, f'device:srv-{i}', 'resolved', severity, f'srv-{i}-down'))
            if rng.random() < 0.5:
                events.append((cleared + rng.uniform(5, 90), f'device:srv-{i}', 'firing', severity, f'srv-{i}-down'))
    events.append((150, 'device:core-1', 'firing', 'critical', 'core-1-snmp'))
    events.append((170, 'device:ghost-host', 'firing', 'high', 'ghost'))
    events.append((175, 'device:ghost-host', 'firing', 'critical', 'ghost'))
    events.append((600, 'device:core-1', 'resolved', 'critical', 'core-1-snmp'))
    lines.append('events:')
    for n, (t, obj, status, severity, dedup) in enumerate(sorted(events, key=lambda e: e[0])):
        lines.append(
            f'  - {{t: {t:.3f}, ref: e{n}, object: "{obj}", severity: {severity}, status: {status}, dedup_id: {dedup}}}'
        )
    return '\n'.join(lines) + '\n'


def store(item, objects, arrival, event_time):
    """Store one notification as the receivers do, without deciding it (queryset writes send no signal)."""
    source, _ = EventSource.objects.get_or_create(name=item.source)
    fields = event_fields(item, arrival, event_time)
    existing = Event.objects.filter(event_source=source, dedup_id=item.dedup_id).first()
    if existing is not None:
        changes = repeat_changes(existing, fields)
        for name, value in changes.items():
            setattr(existing, name, value)
        if existing.note_state():  # as the receivers do: the change of state waits for its decision
            changes['pending_states'] = existing.pending_states
        Event.objects.filter(pk=existing.pk).update(**changes)
        return existing.pk
    target = objects.get(item.object)
    if target is not None:
        fields.update(content_type=ContentType.objects.get_for_model(target), object_id=target.pk)
    else:
        fields['unmapped_label'] = item.object
    event = Event(event_source=source, dedup_id=item.dedup_id, **fields)
    event.note_state()
    Event.objects.bulk_create([event])
    return event.pk


def snapshot(start):
    """Everything the decisions wrote, with ids replaced by their order (the two runs number rows alike)."""
    incidents = list(Incident.objects.order_by('pk').values_list('pk', flat=True))
    events = {item.pk: item.raw['scenario_ref'] for item in Event.objects.order_by('pk')}
    rank = {pk: n for n, pk in enumerate(incidents)}

    def offset(moment):
        return None if moment is None else round((moment - start).total_seconds(), 6)  # ids and start differ

    return {
        'incidents': [
            (
                row['status'],
                row['severity'],
                row['title'],
                events.get(row['root_cause_event_id']),
                row['root_cause'],
                offset(row['detected_at']),
                offset(row['resolved_at']),
                offset(row['resolved_event_time']),
                offset(row['last_activity_at']),
                rank.get(row['merged_into_id']),
                {
                    side: [{'type': n['type'], 'name': n['name']} for n in nodes] if side != 'capped' else nodes
                    for side, nodes in (row['blast_radius'] or {}).items()
                },
            )
            for row in Incident.objects.order_by('pk').values()
        ],
        'services': sorted(
            (rank[pk], name) for pk, name in Incident.objects.values_list('pk', 'affected_services__name') if name
        ),
        'members': [
            (
                rank[row['incident_id']],
                events[row['event_id']],
                row['occurrence'],
                offset(row['joined_at']),
                row['opened_incident'],
                row['score'],
                row['link'],
                row['factors'],
                row['path'],
                row['status'],
                row['severity'],
                offset(row['last_activity_at']),
            )
            for row in IncidentEvent.objects.order_by('incident_id', 'joined_at', 'pk').values()
        ],
        'timeline': [
            (
                rank[row['incident_id']],
                offset(row['time']),
                row['kind'],
                re.sub(r'[Ii]ncident (\d+)', lambda m: f'incident #{rank[int(m[1])]}', row['message']),
                events.get(row['event_id']),
            )
            for row in IncidentTimelineEntry.objects.order_by('pk').values()
        ],
        'events': [
            (
                events[row['id']],
                row['status'],
                row['processed_status'],
                row['occurrence'],
                offset(row['occurrence_started_at']),
                offset(row['cleared_at']),
                row['pending_states'],
            )
            for row in Event.objects.order_by('pk').values()
        ],
    }


def run(scenario, group, batched, shuffle=None, committed=False, before_batch=None):
    """Store the scenario's notifications in groups of ``group`` and decide each group; return the snapshot.
    ``shuffle`` (a ``random.Random``) decides each group in a shuffled order instead of arrival order. Everything is
    rolled back at the end, unless ``committed``: then each group is stored and decided in its own transactions, as
    decision jobs do (the test needs ``transaction=True``). ``before_batch`` is called before each group."""
    overrides = {
        f'BUSINESS_APP_{name.upper()}': getattr(scenario.settings, name)
        for name in scenario.settings.names()
        if name not in ('engine_backend', 'notification_webhooks', 'incident_notifications_enabled')
    }
    result = None
    try:
        with override_settings(**overrides), contextlib.nullcontext() if committed else transaction.atomic():
            objects = import_map(scenario)
            forget_map()
            member_cache.clear()
            start = replay_start(scenario)
            create_maintenance(scenario, objects, start)
            for first in range(0, len(scenario.events), group):
                if before_batch is not None:
                    before_batch()
                items = []
                for item in scenario.events[first : first + group]:
                    arrival = start + timedelta(seconds=item.t)
                    items.append((store(item, objects, arrival, start + timedelta(seconds=item.event_time)), arrival))
                if shuffle is not None:
                    shuffle.shuffle(items)
                if batched:
                    for event_id, outcome in decide_events(items):
                        assert not isinstance(outcome, Exception), (event_id, outcome)
                else:
                    for event_id, arrival in items:
                        process_event(event_id, now=arrival)
            result = snapshot(start)
            if not committed:
                raise _Rollback
    except _Rollback:
        pass
    finally:
        forget_map()
        member_cache.clear()
    return result


CASES = [*SCENARIOS, 'generated-storm']


@pytest.mark.django_db(transaction=False)
@pytest.mark.parametrize('group', [3, 50])
@pytest.mark.parametrize('source', CASES, ids=lambda p: getattr(p, 'stem', p))
def test_batched_decisions_equal_one_at_a_time(source, group):
    scenario = parse_scenario(storm_text()) if source == 'generated-storm' else load_scenario(source)
    one_by_one = run(scenario, group, batched=False)
    batched = run(scenario, group, batched=True)
    assert one_by_one['events']
    if source == 'generated-storm':  # (a few files' notifications cancel out when stored in groups of 50)
        assert len(one_by_one['incidents']) >= 3
        assert any(row[9] is not None for row in one_by_one['incidents']), 'the late switch alert merged nothing'
    for part in ('incidents', 'services', 'members', 'timeline', 'events'):
        assert batched[part] == one_by_one[part], part


@pytest.mark.django_db
def test_one_failing_event_loses_none_of_the_others():
    """A decision that fails (here PostgreSQL refuses one event's membership) rolls the batch back; its
    events are then decided one at a time, so every other event is decided and the failing one is left
    unprocessed for the sweep."""
    scenario = parse_scenario(storm_text(servers=10, seed=3))
    objects = import_map(scenario)
    forget_map()
    source = EventSource.objects.create(name='prometheus')
    now = timezone.now()
    device = ContentType.objects.get_by_natural_key('dcim', 'device')
    events = Event.objects.bulk_create(
        [
            Event(
                event_source=source,
                dedup_id=f'srv-{i}',
                message='down',
                status='triggered',
                criticallity='critical',
                content_type=device,
                object_id=objects[f'device:srv-{i}'].pk,
                last_seen_at=now,
                event_time=now,
            )
            for i in range(10)
        ]
    )
    bad = events[4].pk
    with connection.cursor() as cursor:
        cursor.execute(
            'CREATE FUNCTION ba_test_refuse() RETURNS trigger AS $$ BEGIN '
            f"IF NEW.event_id = {bad} THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            'CREATE TRIGGER ba_test_refuse BEFORE INSERT ON business_application_incidentevent '
            'FOR EACH ROW EXECUTE FUNCTION ba_test_refuse()'
        )
    results = dict(decide_events([(event.pk, now) for event in events]))
    assert isinstance(results[bad], Exception)
    assert all(not isinstance(outcome, Exception) for pk, outcome in results.items() if pk != bad)
    assert set(Event.objects.filter(processed_status='triggered').values_list('pk', flat=True)) == {
        event.pk for event in events if event.pk != bad
    }
    assert Event.objects.get(pk=bad).processed_status == ''
    assert IncidentEvent.objects.count() == 9
    forget_map()
