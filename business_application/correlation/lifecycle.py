"""The life of alerts and incidents: one implementation for NetBox, the replay tool and the tests.

``merge_notification`` applies one notification to the stored alert (dedup and out-of-order
rules). ``Correlator.process`` then acts on what changed: it starts an event occurrence and
correlates it (join, merge or open), raises severity, clears, resolves and reopens. It reads and
writes through a ``Store``: an in-memory one for the replay tool, the ORM for NetBox. The graph
questions go to the engine backend (``DependencyGraph``), compiled or pure Python.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from .fallback import time_decay
from .kinds import APPLICATION, SERVICE, SEVERITIES
from .settings import Settings

__all__ = (
    'AlertState',
    'Correlator',
    'IncidentState',
    'MapView',
    'MemberState',
    'Notification',
    'Outcome',
    'PendingState',
    'Store',
    'merge_notification',
)

logger = logging.getLogger('business_application.services.incident_service')

TRIGGERED, OK, SUPPRESSED = 'triggered', 'ok', 'suppressed'
OPEN, RESOLVED, MERGED = 'open', 'resolved', 'merged'


@dataclasses.dataclass
class Notification:
    """One alert notification as it arrives, already mapped to a graph node (or not)."""

    node: int | None
    label: str
    severity: int
    status: str
    arrival: float
    event_time: float
    message: str = ''


@dataclasses.dataclass
class AlertState:
    """A stored alert (an ``Event`` row) with what the correlator already decided for it."""

    key: Any
    node: int | None
    label: str
    severity: int
    status: str
    event_time: float
    last_seen: float
    message: str = ''
    processed_status: str = ''
    occurrence: int = 0
    occurrence_started_at: float | None = None
    incident: Any = None
    cleared_at: float | None = None
    #: The states stored since the last decision, oldest first (``Correlator.decide_pending``).
    pending: list['PendingState'] = dataclasses.field(default_factory=list)
    #: The object the alert names, as the store identifies it, and the one its current occurrence started on.
    where: Any = None
    origin: Any = None
    #: The arrival of the latest stored state decided (``Correlator.decide_next``).
    decided_arrival: float | None = None


@dataclasses.dataclass
class PendingState:
    """A state an alert was stored with that no decision has seen yet: each change of status, as it came."""

    status: str
    arrival: float
    event_time: float
    severity: int
    node: int | None
    label: str
    where: Any = None
    #: What the store read it from.
    source: Any = None


@dataclasses.dataclass
class MemberState:
    """An event occurrence inside an incident, with why it joined."""

    alert: Any
    occurrence: int
    node: int | None
    label: str
    status: str
    severity: int
    joined_at: float
    last_activity: float
    opener: bool = False
    score: float | None = None
    link: str = ''
    factors: dict[str, Any] = dataclasses.field(default_factory=dict)
    path: list[int] = dataclasses.field(default_factory=list)


#: Why a member joined: written once, when it joins, and read back by no decision (a store's read may leave them at
#: their defaults, ``DjangoStore``).
JOIN_FACTS = ('opener', 'score', 'link', 'factors', 'path')


@dataclasses.dataclass
class IncidentState:
    key: Any
    opened_at: float
    status: str
    severity: int
    title: str = ''
    root_alert: Any = None
    root_node: int | None = None
    root_label: str = ''
    resolved_at: float | None = None
    resolved_event_time: float | None = None
    blast_down: list[int] = dataclasses.field(default_factory=list)
    blast_degraded: list[int] = dataclasses.field(default_factory=list)
    blast_capped: bool = False
    services: set[int] = dataclasses.field(default_factory=set)
    members: list[MemberState] = dataclasses.field(default_factory=list)
    merged_into: Any = None
    #: Who resolved it by hand, when the store knows (it says so when it saves a reopen); '' otherwise.
    resolved_by: str = ''

    def triggered(self) -> bool:
        return any(m.status == TRIGGERED for m in self.members)

    def last_activity(self) -> float:
        return max((m.last_activity for m in self.members), default=self.opened_at)

    def is_live(self, now: float, settings: Settings) -> bool:
        """A candidate for new events: open, not too old, and failing or active within the window."""
        if self.status != OPEN:
            return False
        if settings.max_incident_age_hours and now - self.opened_at > settings.max_age_seconds:
            return False
        return self.triggered() or now - self.last_activity() <= settings.window_seconds

    def member_nodes(self) -> list[int]:
        """Each member's node, -1 where the map has none: what the engine scores an event against."""
        return [m.node if m.node is not None else -1 for m in self.members]

    def first_unmapped(self, label: str) -> int | None:
        """The position of the first member on no node of the map that names ``label``, if any."""
        return next((i for i, m in enumerate(self.members) if m.node is None and m.label == label), None)

    def node_of_alert(self, alert: Any) -> int | None:
        """The node of the alert's first member (None when it has none, or is on no node)."""
        return next((m.node for m in self.members if m.alert == alert), None)

    def member(self, alert: Any, occurrence: int) -> MemberState | None:
        for member in self.members:
            if member.alert == alert and member.occurrence == occurrence:
                return member
        return None


@dataclasses.dataclass
class Outcome:
    """What one call of ``Correlator.process`` did, for logs, the API and the tests."""

    action: str = 'none'
    incident: Any = None
    score: float | None = None
    merged: list[Any] = dataclasses.field(default_factory=list)
    capped: bool = False
    #: What the same decision did before: the outcomes of its undecided states (``Correlator.decide``).
    earlier: list['Outcome'] = dataclasses.field(default_factory=list)

    def steps(self) -> list['Outcome']:
        return [*self.earlier, self]


class Store(Protocol):
    """Where alerts and incidents live; every method is one small, bounded read or write."""

    def live_incidents(self, now: float, settings: Settings) -> list[IncidentState]: ...
    def get_incident(self, key: Any) -> IncidentState | None: ...
    def in_maintenance(self, nodes: Sequence[int], at: float) -> bool: ...
    def create_incident(self, incident: IncidentState) -> Any: ...
    def save_incident(self, incident: IncidentState, fields: Iterable[str]) -> None: ...
    def add_member(self, incident: IncidentState, member: MemberState) -> None: ...
    def save_member(self, incident: IncidentState, member: MemberState) -> None: ...
    def move_members(self, source: IncidentState, target: IncidentState) -> None: ...
    def add_timeline(
        self,
        incident: IncidentState,
        time: float,
        kind: str,
        message: str,
        alert: Any = None,
        data: dict[str, Any] | None = None,
    ) -> None: ...


class MapView:
    """The dependency map as the correlator sees it: the engine graph plus names for people."""

    def __init__(self, graph: Any, kinds: Sequence[int], labels: Sequence[str], names: Sequence[str]):
        self.graph = graph
        self.kinds = kinds
        self.labels = labels
        self.names = names

    def services_of(self, node: int | None) -> list[int]:
        """The services in a node's footprint (the node itself when it is a service)."""
        if node is None or self.graph is None:
            return []
        return [n for n in self.graph.footprint(node) if self.kinds[n] == SERVICE]

    def title_for(self, node: int | None, label: str) -> str:
        if node is None:
            return f'Alert on unmapped {label}'
        if self.kinds[node] == APPLICATION:
            return f'Service disruption affecting {self.names[node]}'
        services = len(self.services_of(node))
        if services:
            more = f' and {services - 2} more' if services > 2 else ''
            return f'Service disruption affecting {", ".join(self.names[s] for s in self.title_nodes(node))}{more}'
        return f'Infrastructure alert affecting {self.names[node]}'

    def title_nodes(self, node: int | None) -> list[int]:
        """The nodes ``title_for`` names: an application, the first two of the services of the root cause by name,
        or the root cause itself."""
        if node is None:
            return []
        if self.kinds[node] == APPLICATION:
            return [node]
        services = self.services_of(node)
        if services:
            return sorted(services, key=lambda s: self.names[s])[:2]
        return [node]


def merge_notification(alert: AlertState | None, note: Notification, key_factory: Callable[[], Any]) -> AlertState:
    """Apply a notification to the stored alert: repeats update it; an older one never rolls it back."""
    if alert is None:
        return AlertState(
            key=key_factory(),
            node=note.node,
            label=note.label,
            severity=note.severity,
            status=note.status,
            event_time=note.event_time,
            last_seen=note.arrival,
            message=note.message,
        )
    alert.last_seen = max(alert.last_seen, note.arrival)
    if note.event_time < alert.event_time:
        return alert
    alert.event_time = note.event_time
    alert.status = note.status
    alert.severity = note.severity
    alert.message = note.message or alert.message
    alert.node, alert.label = note.node, note.label
    return alert


class Correlator:
    """Decides what an alert's latest state means for incidents, by the rules of docs/correlation.md."""

    def __init__(self, view: MapView, settings: Settings, store: Store):
        self.view = view
        self.settings = settings
        self.store = store

    # Entry point

    def decide_pending(self, alert: AlertState, until: float) -> list[Outcome]:
        """Decide the alert's stored, undecided states that came by ``until``, each as of its arrival and on the
        object it named then, oldest first; returns what each did and forgets them.

        Asynchronous processing behind a busy queue may find an alert that has fired, cleared and fired again
        since its last decision. Deciding each state in turn makes the incidents that deciding each notification
        as it came would have made. A state that came later is left to the decision queued when it came, so
        that other alerts' notifications that came in between are decided before it.
        """
        outcomes = []
        while alert.pending and alert.pending[0].arrival <= until:
            outcomes.append(self.decide_next(alert))
        return outcomes

    def decide_next(self, alert: AlertState) -> Outcome:
        """Decide the alert's oldest undecided state (``decide_pending``)."""
        state = alert.pending.pop(0)
        stored = (alert.status, alert.event_time, alert.severity, alert.node, alert.label, alert.where)
        alert.status, alert.event_time, alert.severity = state.status, state.event_time, state.severity
        alert.node, alert.label, alert.where = state.node, state.label, state.where
        try:
            outcome = self.process(alert, state.arrival)
        finally:
            decided = alert.status
            alert.status, alert.event_time, alert.severity, alert.node, alert.label, alert.where = stored
        alert.decided_arrival = state.arrival
        if not alert.pending and state.status == alert.status and alert.last_seen <= state.arrival:
            # The state stored now, as decided (maintenance may have suppressed it). A repeat that came after it
            # keeps the status it was stored with, for its own decision.
            alert.status = decided
        return outcome

    def decide(self, alert: AlertState, now: float, queued: bool = True, decided: Sequence[Outcome] = ()) -> Outcome:
        """Decide the alert as of ``now``: its undecided states, then its state now.

        ``queued``: the decision was queued for the alert's notification that came at ``now`` (a decision job);
        states and notifications that came later are left to their own decisions. Otherwise (in the request,
        the sweep) every stored state is decided. ``decided``: the steps a batch already took for the alert's
        states (``decide_next``) since its previous decision.
        """
        until = now if queued else float('inf')
        steps = [*decided, *self.decide_pending(alert, until)]
        if alert.pending and not steps:
            return Outcome()  # every undecided state came later: each is left to its own decision
        if alert.pending or (steps and self.came_later(alert, until)):
            outcome = steps.pop()  # what came later is left to its own decision
        elif steps and alert.status == alert.processed_status and alert.last_seen <= alert.decided_arrival:
            outcome = steps.pop()  # the latest state was the last notification: decided
        else:
            outcome = self.process(alert, now)  # its state now, or a repeat that came after its latest state
        outcome.earlier = [step for earlier in steps for step in earlier.steps()]
        return outcome

    @staticmethod
    def came_later(alert: AlertState, now: float) -> bool:
        """Whether a notification of the alert came after ``now``, the moment a decision is taken at: then its
        current state is left to the decision queued when it came (or the sweep)."""
        return alert.last_seen > now

    def process(self, alert: AlertState, now: float) -> Outcome:
        """Act on the difference between what was last processed for this alert and its state now."""
        previous, current = alert.processed_status, alert.status
        alert.processed_status = current

        if current == TRIGGERED:
            if previous == TRIGGERED:
                return self._repeat(alert, now)
            if previous == OK and self._continues_occurrence(alert, now):
                return self._retrigger(alert, now)
            if self._suppressed(alert):
                # Maintenance suppresses the start of an occurrence; the alert is kept as suppressed.
                alert.status = alert.processed_status = SUPPRESSED
                return Outcome(action='suppressed')
            return self._start_occurrence(alert, now)
        if previous == TRIGGERED:
            # A clear, or a source that suppressed an alert it had fired: the member stops failing.
            return self._clear(alert, now)
        return Outcome(action='suppressed' if current == SUPPRESSED else 'none')

    # The steps

    def _suppressed(self, alert: AlertState) -> bool:
        if alert.node is None or self.view.graph is None:
            return False
        return self.store.in_maintenance(self.view.graph.maintenance_scope(alert.node), alert.event_time)

    def _continues_occurrence(self, alert: AlertState, now: float) -> bool:
        """A cleared alert that fires again while its incident is open, or soon after, is the same occurrence."""
        if alert.incident is None:
            return alert.cleared_at is not None and now - alert.cleared_at <= self.settings.reopen_seconds
        incident = self.store.get_incident(alert.incident)
        if incident is None or incident.status == MERGED:
            return False
        if incident.status == OPEN:
            return True
        return incident.resolved_at is not None and now - incident.resolved_at <= self.settings.reopen_seconds

    def _start_occurrence(self, alert: AlertState, now: float) -> Outcome:
        alert.occurrence += 1
        alert.occurrence_started_at = now
        alert.origin = alert.where
        alert.incident = None
        alert.cleared_at = None
        if not self.settings.auto_incidents_enabled:
            return Outcome()

        live = self.store.live_incidents(now, self.settings)
        matches, capped = self._score(alert, live, now)
        if matches:
            return self._join(alert, live, matches, now, capped)
        if alert.severity < SEVERITIES.index(self.settings.require_minimum_severity):
            logger.info('event %s below minimum severity opens nothing (correlation_score=none)', alert.key)
            return Outcome(capped=capped)
        return self._open(alert, now, capped)

    def _score(self, alert: AlertState, live: list[IncidentState], now: float) -> tuple[list[dict], bool]:
        """Matches at or above the threshold, best first; each a dict with the incident and the factors."""
        settings = self.settings
        if alert.node is None or self.view.graph is None:
            return self._score_unmapped(alert, live, now), False
        candidates = [
            (
                incident.severity,
                None if incident.triggered() else incident.last_activity(),
                incident.member_nodes(),
            )
            for incident in live
        ]
        decision = self.view.graph.decide(
            alert.node,
            alert.severity,
            now,
            candidates,
            settings.max_dependency_depth,
            settings.work_cap,
            settings.correlation_threshold,
            settings.window_seconds,
            settings.service_weight,
            settings.dependency_weight,
            settings.infrastructure_weight,
        )
        matches = [
            {
                'incident': live[m.candidate],
                'score': m.score,
                'link': m.link,
                'member': m.member,
                'path': list(m.path),
                'direction': m.direction,
                'factors': {
                    'link': m.link,
                    'weight': m.weight,
                    'time_decay': m.decay,
                    'severity_match': m.severity_factor,
                    'direction': m.direction,
                },
            }
            for m in decision.matches
        ]
        if decision.capped:
            logger.warning(
                'event %s: the work cap of %s nodes was hit; the decision used a partial walk',
                alert.key,
                settings.work_cap,
            )
        return matches, decision.capped

    def _score_unmapped(self, alert: AlertState, live: list[IncidentState], now: float) -> list[dict]:
        """An unmapped event links only to members naming the very same unknown object."""
        settings = self.settings
        matches = []
        for index, incident in enumerate(live):
            member = incident.first_unmapped(alert.label)
            if member is None:
                continue
            # The same time decay and severity match as the engines' decide (docs/engine-api.md).
            last = None if incident.triggered() else incident.last_activity()
            decay = time_decay(now, last, settings.window_seconds)
            factor = 1.0 - 0.1 * abs(alert.severity - incident.severity)
            score = (settings.service_weight * decay) * factor
            if score >= settings.correlation_threshold:
                matches.append(
                    {
                        'incident': incident,
                        'score': score,
                        'link': 'service',
                        'member': member,
                        'path': [],
                        'direction': 'same',
                        'index': index,
                        'factors': {
                            'link': 'service',
                            'weight': settings.service_weight,
                            'time_decay': decay,
                            'severity_match': factor,
                            'direction': 'same',
                        },
                    }
                )
        matches.sort(key=lambda m: (-m['score'], m['index']))
        return matches

    def _join(
        self, alert: AlertState, live: list[IncidentState], matches: list[dict], now: float, capped: bool
    ) -> Outcome:
        order = {id(incident): position for position, incident in enumerate(live)}
        linked = sorted(
            {id(m['incident']): m['incident'] for m in matches}.values(),
            key=lambda incident: (incident.opened_at, order[id(incident)]),
        )
        target = linked[0]
        match = next(m for m in matches if m['incident'] is target)
        others = linked[1:]
        added = [m for other in others for m in other.members]
        for other in others:
            self._merge(other, target, alert, now)

        member = self._member(alert, now, opener=False, match=match)
        target.members.append(member)
        self.store.add_member(target, member)
        alert.incident = target.key
        path = self._path_words(match['path'])
        self.store.add_timeline(
            target,
            now,
            'joined',
            f'{alert.label} joined (score {match["score"]:.2f}, {match["link"]} link'
            + (f' via {path}' if path else '')
            + ')',
            alert.key,
            {'score': match['score'], 'factors': match['factors'], 'path': match['path']},
        )
        logger.info(
            'event %s joined incident %s (correlation_score=%.3f, link=%s, merged=%s)',
            alert.key,
            target.key,
            match['score'],
            match['link'],
            [o.key for o in others],
        )
        self._refresh(
            target,
            now,
            roots=[target.root_alert, *[o.root_alert for o in others], alert.key],
            alert=alert,
            severity=alert.severity,
            added=[*added, member],
        )
        return Outcome(
            action='merged' if others else 'joined',
            incident=target.key,
            score=match['score'],
            merged=[o.key for o in others],
            capped=capped,
        )

    def _merge(self, source: IncidentState, target: IncidentState, alert: AlertState, now: float) -> None:
        self.store.move_members(source, target)
        target.members.extend(source.members)
        source.members = []
        source.status = MERGED
        source.merged_into = target.key
        target.severity = max(target.severity, source.severity)
        self.store.save_incident(source, ('status', 'merged_into'))
        self.store.add_timeline(
            source,
            now,
            'merged',
            f'Merged into incident {target.key} by {alert.label}',
            alert.key,
            {'into': target.key},
        )
        self.store.add_timeline(
            target,
            now,
            'merged',
            f'Incident {source.key} merged in, linked by {alert.label}',
            alert.key,
            {'from': source.key},
        )
        logger.info('incident %s merged into incident %s', source.key, target.key)

    def _open(self, alert: AlertState, now: float, capped: bool) -> Outcome:
        incident = IncidentState(key=None, opened_at=now, status=OPEN, severity=alert.severity)
        member = self._member(alert, now, opener=True, match=None)
        incident.members.append(member)
        incident.key = self.store.create_incident(incident)
        self.store.add_member(incident, member)
        alert.incident = incident.key
        self.store.add_timeline(incident, now, 'opened', f'Opened by {alert.label}', alert.key)
        self._refresh(incident, now, roots=[alert.key], alert=alert, severity=alert.severity, opened=True)
        logger.info(
            'event %s opened incident %s "%s" (correlation_score=none)', alert.key, incident.key, incident.title
        )
        return Outcome(action='opened', incident=incident.key, capped=capped)

    def _repeat(self, alert: AlertState, now: float) -> Outcome:
        incident, member = self._current_member(alert)
        if member is None:
            return Outcome()
        member.last_activity = now
        raised = alert.severity > member.severity
        member.severity = max(member.severity, alert.severity)
        self.store.save_member(incident, member)
        if raised and alert.severity > incident.severity and incident.status == OPEN:
            self._raise_severity(incident, alert, now)
        return Outcome(action='updated', incident=incident.key)

    def _retrigger(self, alert: AlertState, now: float) -> Outcome:
        alert.cleared_at = None
        incident, member = self._current_member(alert)
        if member is None:
            return Outcome()
        member.status = TRIGGERED
        member.last_activity = now
        member.severity = max(member.severity, alert.severity)
        self.store.save_member(incident, member)
        if incident.status == RESOLVED:
            incident.status = OPEN
            incident.resolved_at = incident.resolved_event_time = None
            # The store reopens it as it was before the resolution (an acknowledged incident stays acknowledged)
            # and, for one resolved by a person, says who did.
            self.store.save_incident(incident, ('status', 'resolved_at', 'resolved_event_time'))
            by = f' after {incident.resolved_by} resolved it' if incident.resolved_by else ''
            self.store.add_timeline(incident, now, 'reopened', f'Reopened: {alert.label} fired again{by}', alert.key)
            logger.info('incident %s reopened by event %s', incident.key, alert.key)
            action = 'reopened'
        else:
            action = 'retriggered'
        if alert.severity > incident.severity:
            self._raise_severity(incident, alert, now)
        self._update_blast(incident)
        return Outcome(action=action, incident=incident.key)

    def _clear(self, alert: AlertState, now: float) -> Outcome:
        alert.cleared_at = now
        incident, member = self._current_member(alert)
        if member is None:
            return Outcome(action='cleared')
        member.status = OK
        member.last_activity = now
        self.store.save_member(incident, member)
        self.store.add_timeline(incident, now, 'cleared', f'{alert.label} cleared', alert.key)
        if incident.status != OPEN:
            return Outcome(action='cleared', incident=incident.key)
        if self.settings.auto_resolve_incidents and not incident.triggered():
            incident.status = RESOLVED
            incident.resolved_at = now
            incident.resolved_event_time = alert.event_time
            self.store.save_incident(incident, ('status', 'resolved_at', 'resolved_event_time'))
            self.store.add_timeline(incident, now, 'resolved', 'Resolved: every member cleared', alert.key)
            logger.info('incident %s resolved: every member cleared', incident.key)
            self._update_blast(incident)
            return Outcome(action='resolved', incident=incident.key)
        self._update_blast(incident)
        return Outcome(action='cleared', incident=incident.key)

    # Helpers

    def _current_member(self, alert: AlertState) -> tuple[IncidentState | None, MemberState | None]:
        if alert.incident is None:
            return None, None
        incident = self.store.get_incident(alert.incident)
        if incident is None:
            return None, None
        return incident, incident.member(alert.key, alert.occurrence)

    def _member(self, alert: AlertState, now: float, opener: bool, match: dict | None) -> MemberState:
        member = MemberState(
            alert=alert.key,
            occurrence=alert.occurrence,
            node=alert.node,
            label=alert.label,
            status=TRIGGERED,
            severity=alert.severity,
            joined_at=now,
            last_activity=now,
            opener=opener,
        )
        if match is not None:
            member.score = match['score']
            member.link = match['link']
            member.factors = match['factors']
            member.path = match['path']
        return member

    def _raise_severity(self, incident: IncidentState, alert: AlertState, now: float) -> None:
        old = incident.severity
        incident.severity = alert.severity
        self.store.save_incident(incident, ('severity',))
        self.store.add_timeline(
            incident,
            now,
            'severity',
            f'Severity raised from {SEVERITIES[old]} to {SEVERITIES[alert.severity]} by {alert.label}',
            alert.key,
        )

    def _refresh(
        self,
        incident: IncidentState,
        now: float,
        roots: list[Any],
        alert: AlertState | Any,
        severity: int,
        opened: bool = False,
        added: Sequence[MemberState] | None = None,
    ) -> None:
        """Recompute root cause, title, severity, affected services and blast radius after a change; ``alert`` is the
        alert (or the key of the event) that caused it, named by the timeline entries.

        ``added``: the members that arrived since ``incident.services`` last held every member's services (a join
        and the incidents it merged); by default every member's services are added again. An incident with
        thousands of members then costs a join what the join adds, not what the incident holds."""
        cause = alert.key if isinstance(alert, AlertState) else alert
        fields = {'severity', 'services', 'root', 'title'}
        old_severity = incident.severity
        incident.severity = max(incident.severity, severity)
        members = self._last_members(incident, dict.fromkeys(roots))
        roots = [r for r in dict.fromkeys(roots) if r in members]
        root = self._most_upstream([members[r] for r in roots])
        old_root = incident.root_alert
        incident.root_alert, incident.root_node, incident.root_label = root.alert, root.node, root.label
        incident.title = self.view.title_for(root.node, root.label)
        for member in incident.members if added is None else added:
            incident.services.update(self.view.services_of(member.node))
        self._update_blast(incident, save=False)
        self.store.save_incident(incident, fields | {'blast'})
        if not opened and old_root != root.alert:
            self.store.add_timeline(incident, now, 'root_cause', f'Probable root cause is now {root.label}', cause)
        if not opened and incident.severity > old_severity:
            self.store.add_timeline(
                incident,
                now,
                'severity',
                f'Severity raised from {SEVERITIES[old_severity]} to {SEVERITIES[incident.severity]}',
                cause,
            )

    @staticmethod
    def _last_members(incident: IncidentState, alerts: Iterable[Any]) -> dict[Any, MemberState]:
        """Each of these alerts' last member in the incident's order, read from the end: the latest members are the
        ones a join asks for."""
        wanted, found = set(alerts), {}
        for member in reversed(incident.members):
            if member.alert in wanted and member.alert not in found:
                found[member.alert] = member
                if len(found) == len(wanted):
                    break
        return found

    def recompute(self, incident: IncidentState, now: float, cause: Any, roots: Sequence[Any] = ()) -> None:
        """Rebuild an incident's decided fields after members left or arrived outside a decision (an operator moved
        an event): severity from its members, then root cause, title, affected services and blast radius as
        ``_refresh`` writes them. ``roots`` are the candidate root causes, as for a join; when none of them is
        still a member, every member is a candidate. ``cause`` is the event the timeline entries name."""
        if not incident.members:
            incident.services = set()
            if incident.root_alert is not None:  # its root cause left with the last event
                incident.root_alert, incident.root_label, incident.root_node = None, '', None
                self.store.save_incident(incident, ('root',))
            self._update_blast(incident)
            return
        old_severity = incident.severity
        incident.severity = max(m.severity for m in incident.members)
        members = {m.alert for m in incident.members}
        candidates = [r for r in roots if r in members] or [m.alert for m in incident.members]
        incident.services = set()
        self._refresh(incident, now, roots=candidates, alert=cause, severity=incident.severity)
        if incident.severity != old_severity:
            self.store.add_timeline(
                incident,
                now,
                'severity',
                f'Severity {"raised" if incident.severity > old_severity else "lowered"} from '
                f'{SEVERITIES[old_severity]} to {SEVERITIES[incident.severity]}',
                cause,
            )

    def _most_upstream(self, members: list[MemberState]) -> MemberState:
        if len(members) == 1 or self.view.graph is None:
            return members[0]
        nodes = [m.node if m.node is not None else -1 for m in members]
        counts = self.view.graph.rank_upstream(nodes, self.settings.max_dependency_depth, self.settings.work_cap)
        best = max(range(len(members)), key=lambda i: (counts[i], -i))
        return members[best]

    def _update_blast(self, incident: IncidentState, save: bool = True) -> None:
        failing = [m.node for m in incident.members if m.status == TRIGGERED and m.node is not None]
        if self.view.graph is None or not failing:
            incident.blast_down, incident.blast_degraded, incident.blast_capped = [], [], False
        else:
            blast = self.view.graph.blast_radius(failing, self.settings.max_dependency_depth, self.settings.work_cap)
            incident.blast_down, incident.blast_degraded = list(blast.down), list(blast.degraded)
            incident.blast_capped = blast.capped
        if save:
            self.store.save_incident(incident, ('blast',))

    def _path_words(self, path: list[int]) -> str:
        return ' -> '.join(self.view.labels[n] for n in path)
