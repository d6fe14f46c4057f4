"""Runs a scenario through the correlator without any database, and scores the result.

``run_scenario`` keeps alerts and incidents in memory (``MemoryStore``); ``build_report`` and
``compare`` are shared with NetBox's ``replay_scenario`` command, so both print the same JSON.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from .kinds import APPLICATION, CLUSTER, DEVICE, SERVICE, VM
from .lifecycle import (
    MERGED,
    OPEN,
    AlertState,
    Correlator,
    IncidentState,
    MapView,
    MemberState,
    Notification,
    merge_notification,
)
from .mapbuilder import MapBuilder, ServiceMap
from .scenario import Scenario
from .settings import Settings

__all__ = ('MemoryStore', 'ReplayRun', 'build_map', 'build_report', 'compare', 'pair_scores', 'replay', 'run_scenario')

KIND_BY_PREFIX = {'service': SERVICE, 'device': DEVICE, 'vm': VM, 'cluster': CLUSTER, 'app': APPLICATION}


def role_slug(role: str) -> str:
    """The slug NetBox gives a role of this name when the scenario's map is imported (Django's ``slugify``, at most
    100 characters): network roles and tiers name slugs, so "Core Switch" is the role core-switch in both replays."""
    text = unicodedata.normalize('NFKD', role).encode('ascii', 'ignore').decode('ascii')
    text = re.sub(r'[^\w\s-]', '', text.lower())
    return re.sub(r'[-\s]+', '-', text).strip('-_')[:100] or 'x'


def build_map(scenario: Scenario, backend: str | None = None) -> ServiceMap:
    """The scenario's map as engine arrays; nodes are keyed by name."""
    builder = MapBuilder(scenario.settings.network_roles, scenario.settings.network_tiers)
    for service in scenario.services:
        builder.add(SERVICE, service['name'], service['name'])
    for app in scenario.applications:
        node = builder.add(APPLICATION, app['appcode'], app['appcode'])
        for name in app['services']:
            builder.supports(builder.node(SERVICE, name), node)
    for dependency in scenario.dependencies:
        group = (dependency['name'] or 'redundancy') if dependency['type'] == 'redundancy' else None
        builder.depends(
            builder.node(SERVICE, dependency['service']), builder.node(SERVICE, dependency['depends_on']), group
        )
    for cluster in scenario.clusters:
        node = builder.add(CLUSTER, cluster['name'], cluster['name'])
        for name in cluster['services']:
            builder.carries(node, builder.node(SERVICE, name))
    roles = {}
    for device in scenario.devices:
        node = builder.add(DEVICE, device['name'], device['name'])
        roles[node] = role_slug(device['role'])
        for name in device['services']:
            builder.carries(node, builder.node(SERVICE, name))
        if device['cluster']:
            builder.cluster_member(node, builder.node(CLUSTER, device['cluster']))
    for device in scenario.devices:
        node = builder.node(DEVICE, device['name'])
        for link in device['links']:
            other = builder.node(DEVICE, link)
            builder.cable(node, roles[node], other, roles[other])
    for vm in scenario.vms:
        node = builder.add(VM, vm['name'], vm['name'])
        for name in vm['services']:
            builder.carries(node, builder.node(SERVICE, name))
        if vm['host']:
            builder.hosts(builder.node(DEVICE, vm['host']), node)
        elif vm['cluster']:
            builder.hosts(builder.node(CLUSTER, vm['cluster']), node)
    return builder.build(backend)


class MemoryStore:
    """Alerts and incidents held in dicts, for the replay tool and the engine tests."""

    def __init__(self, maintenance: Iterable[tuple[int, float, float]] = ()):
        self.alerts: dict[Any, AlertState] = {}
        self.by_key: dict[int, AlertState] = {}
        self.incidents: dict[int, IncidentState] = {}
        self.timeline: list[tuple[int, float, str, str]] = []
        self.maintenance = list(maintenance)
        self._keys = itertools.count(1)
        self._incident_keys = itertools.count(1)

    def new_alert_key(self) -> int:
        return next(self._keys)

    def remember(self, identity: Any, alert: AlertState) -> None:
        self.alerts[identity] = alert
        self.by_key[alert.key] = alert

    def live_incidents(self, now: float, settings: Settings) -> list[IncidentState]:
        live = [incident for incident in self.incidents.values() if incident.is_live(now, settings)]
        live.sort(key=lambda incident: (incident.opened_at, incident.key))
        return live

    def get_incident(self, key: Any) -> IncidentState | None:
        return self.incidents.get(key)

    def in_maintenance(self, nodes: Sequence[int], at: float) -> bool:
        scope = set(nodes)
        return any(node in scope and start <= at <= end for node, start, end in self.maintenance)

    def create_incident(self, incident: IncidentState) -> int:
        key = next(self._incident_keys)
        self.incidents[key] = incident
        return key

    def save_incident(self, incident: IncidentState, fields: Iterable[str]) -> None:
        """Nothing to write: the incident object is the stored one."""

    def add_member(self, incident: IncidentState, member: MemberState) -> None:
        """Nothing to write: the correlator appended the member to the stored incident."""

    def save_member(self, incident: IncidentState, member: MemberState) -> None:
        """Nothing to write: the member object is the stored one."""

    def move_members(self, source: IncidentState, target: IncidentState) -> None:
        for member in source.members:
            alert = self.by_key.get(member.alert)
            if alert is not None and alert.incident == source.key and alert.occurrence == member.occurrence:
                alert.incident = target.key

    def add_timeline(
        self,
        incident: IncidentState,
        time: float,
        kind: str,
        message: str,
        alert: Any = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.timeline.append((incident.key, time, kind, message))


@dataclasses.dataclass
class ReplayRun:
    """Everything a replay leaves behind: the map, the store and which notification started what."""

    service_map: ServiceMap
    store: MemoryStore
    refs: dict[tuple[Any, int], str]
    event_refs: dict[str, tuple[Any, int]]
    capped: int


def replay(scenario: Scenario, backend: str | None = None, settings: Settings | None = None) -> ReplayRun:
    """Feed every notification, in arrival order, through the correlator with an in-memory store."""
    settings = settings or scenario.settings
    service_map = build_map(scenario, backend)
    maintenance = []
    for window in scenario.maintenance:
        node = service_map.node(KIND_BY_PREFIX[window['object'][0]], window['object'][1])
        if node is not None:
            maintenance.append((node, window['start'], window['end']))
    store = MemoryStore(maintenance)
    correlator = Correlator(service_map, settings, store)
    run = ReplayRun(service_map, store, {}, {}, 0)
    for event in scenario.events:
        node = service_map.node(KIND_BY_PREFIX[event.object_kind], event.object_name)
        note = Notification(
            node=node,
            label=event.object,
            severity=event.severity_rank,
            status=event.status,
            arrival=event.t,
            event_time=event.event_time,
            message=event.message,
        )
        identity = (event.source, event.dedup_id)
        alert = merge_notification(store.alerts.get(identity), note, store.new_alert_key)
        store.remember(identity, alert)
        before = alert.occurrence
        outcome = correlator.process(alert, event.t)
        run.capped += outcome.capped
        if alert.occurrence != before:
            run.refs[(alert.key, alert.occurrence)] = event.ref
        run.event_refs[event.ref] = (alert.key, alert.occurrence)
    return run


def run_scenario(scenario: Scenario, backend: str | None = None, settings: Settings | None = None) -> dict[str, Any]:
    """Replay a scenario and return the report (with the comparison when it has expectations)."""
    run = replay(scenario, backend, settings)
    incidents = [incident for _, incident in sorted(run.store.incidents.items())]
    report = build_report(run.service_map, incidents, run.refs, run.event_refs, offset=0.0)
    report['scenario'] = scenario.name
    report['backend'] = run.service_map.graph.backend
    report['capped_decisions'] = run.capped
    report['skipped'] = run.service_map.skipped
    if scenario.expected is not None:
        report['comparison'] = compare(report, scenario.expected)
    return report


def build_report(
    view: MapView,
    incidents: Sequence[IncidentState],
    refs: dict[tuple[Any, int], str],
    event_refs: dict[str, tuple[Any, int]],
    offset: float,
) -> dict[str, Any]:
    """The replay JSON of scenario-format.md: incidents (merged ones left out) and each ref's fate."""
    from .kinds import SEVERITIES

    listed = []
    membership: dict[tuple[Any, int], int] = {}
    for number, incident in enumerate((i for i in incidents if i.status != MERGED), start=1):
        members = []
        for member in incident.members:
            ref = refs.get((member.alert, member.occurrence))
            membership[(member.alert, member.occurrence)] = number
            members.append(
                {
                    'ref': ref,
                    'object': member.label,
                    'joined_at': member.joined_at - offset,
                    'score': None if member.score is None else round(member.score, 4),
                    'link': member.link or None,
                    'path': [view.labels[n] for n in member.path],
                    'opened': member.opener,
                }
            )
        listed.append(
            {
                'id': number,
                'members': sorted(m['ref'] for m in members if m['ref'] is not None),
                'status': 'open' if incident.status == OPEN else 'resolved',
                'severity': SEVERITIES[incident.severity],
                'title': incident.title,
                'root_cause': incident.root_label,
                'resolved_at': None if incident.resolved_at is None else incident.resolved_at - offset,
                'blast_radius': {
                    'down': sorted(view.names[n] for n in incident.blast_down),
                    'degraded': sorted(view.names[n] for n in incident.blast_degraded),
                },
                'details': members,
            }
        )
    events = []
    for ref, key in event_refs.items():
        opener = refs.get(key)
        events.append({'ref': ref, 'occurrence': opener, 'incident': membership.get(key)})
    return {'incidents': listed, 'events': events}


def pair_scores(actual: Sequence[Sequence[str]], expected: Sequence[Sequence[str]]) -> dict[str, float]:
    """Pairwise precision and recall of "these two alerts share an incident"."""

    def pairs(groups: Sequence[Sequence[str]]) -> set[tuple[str, str]]:
        return {tuple(sorted(p)) for group in groups for p in itertools.combinations(sorted(set(group)), 2)}

    got, want = pairs(actual), pairs(expected)
    both = len(got & want)
    precision = both / len(got) if got else 1.0
    recall = both / len(want) if want else 1.0
    return {'pair_precision': round(precision, 4), 'pair_recall': round(recall, 4)}


def compare(report: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """Check a report against a scenario's expectations: which expected incidents differ, and how."""
    actual = {tuple(i['members']): i for i in report['incidents']}
    differences = []
    for number, want in enumerate(expected['incidents'], start=1):
        members = tuple(sorted(want['members']))
        got = actual.get(members)
        if got is None:
            overlap = [i['members'] for i in report['incidents'] if set(i['members']) & set(members)]
            differences.append(
                {
                    'expected': number,
                    'members': list(members),
                    'problem': f'no incident has exactly these members; found {overlap or "none"}',
                }
            )
            continue
        for problem in _key_problems(got, want):
            differences.append({'expected': number, 'members': list(members), 'problem': problem})
    wanted = {tuple(sorted(w['members'])) for w in expected['incidents']}
    for members, got in actual.items():
        if members not in wanted:
            differences.append(
                {'unexpected': got['id'], 'members': list(members), 'problem': 'incident not in the expectations'}
            )
    placed = {e['ref']: e['incident'] for e in report['events']}
    for ref in expected['no_incident']:
        if placed.get(ref) is not None:
            differences.append({'ref': ref, 'problem': f'expected no incident, got incident {placed[ref]}'})
    scores = pair_scores([i['members'] for i in report['incidents']], [w['members'] for w in expected['incidents']])
    return {'matched': not differences, 'differences': differences, **scores}


def _key_problems(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    problems = []
    for key in ('status', 'severity', 'root_cause'):
        if key in want and str(want[key]) != str(got[key]):
            problems.append(f'{key}: expected {want[key]!r}, got {got[key]!r}')
    if 'resolved_at' in want:
        if got['resolved_at'] is None or abs(float(want['resolved_at']) - got['resolved_at']) > 1e-6:
            problems.append(f'resolved_at: expected {want["resolved_at"]!r}, got {got["resolved_at"]!r}')
    if 'title_contains' in want and str(want['title_contains']) not in got['title']:
        problems.append(f'title: expected it to contain {want["title_contains"]!r}, got {got["title"]!r}')
    for side in ('down', 'degraded'):
        wanted = (want.get('blast_radius') or {}).get(side)
        if wanted is not None and sorted(map(str, wanted)) != got['blast_radius'][side]:
            problems.append(f'blast_radius.{side}: expected {sorted(wanted)}, got {got["blast_radius"][side]}')
    return problems
