"""Pure-Python twin of the compiled core's ``IncidentIndex``: live incidents indexed by footprint node.

Same methods, checks, messages and answers as ``core_rs/engine/src/index.rs`` and ``batch.rs``:
``by_node`` maps every node of every mapped member's footprint to the ``(incident key, member
index)`` pairs holding it, so ``decide`` scores only the incidents the event's walks reach, and
equals ``Graph.decide`` with the incidents as candidates in ascending key order (the key in place
of the candidate index). ``decide_batch`` decides each event against the index as it stands; its
``threads`` argument is checked and otherwise ignored (the fallback runs on one thread).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable, Sequence
from typing import Any

from .errors import GraphError
from .fallback import Graph, MatchTuple, _check_severity, _finish, _i64, _int_list, _limits, _real

__all__ = ('IncidentIndex',)

DecisionTuple = tuple[list[MatchTuple], bool, int]
# (severity rank, last activity or None, member nodes with None for unmapped ones)
_Incident = tuple[int, float | None, list[int | None]]


class IncidentIndex:
    """The live incidents of one fallback ``Graph``, indexed by the nodes of their members' footprints."""

    __slots__ = ('_by_node', '_graph', '_incidents')

    def __init__(self, graph: Graph) -> None:
        if not isinstance(graph, Graph):
            raise TypeError(f"argument 'graph': expected the fallback Graph, got {type(graph).__name__}")
        self._graph = graph
        self._incidents: dict[int, _Incident] = {}
        self._by_node: dict[int, list[tuple[int, int]]] = {}

    def __repr__(self) -> str:
        return f'<IncidentIndex incidents={len(self)}>'

    def __len__(self) -> int:
        return len(self._incidents)

    def __contains__(self, key: object) -> bool:
        return _i64(key) in self._incidents

    @property
    def graph(self) -> Graph:
        return self._graph

    def keys(self) -> list[int]:
        return sorted(self._incidents)

    def incident(self, key: int) -> tuple[int, float | None, list[int]] | None:
        """``(severity, last_activity, members)`` of incident ``key`` (``-1`` for unmapped members), or None."""
        found = self._incidents.get(_i64(key))
        if found is None:
            return None
        severity, last_activity, members = found
        return severity, last_activity, [-1 if m is None else m for m in members]

    def add_incident(self, key: int, severity: int, last_activity: float | None, members: Iterable[int]) -> None:
        """Adds a live incident; checks the key, the severity, then each member, before changing anything."""
        key, severity = _i64(key), _i64(severity)
        last_activity = None if last_activity is None else _real(last_activity)
        ids = _int_list(members, 'members')
        if key in self._incidents:
            raise GraphError(f'incident {key} already exists')
        _check_severity(severity, f'incident {key}: ')
        nodes = [self._member(key, m, x) for m, x in enumerate(ids)]

        for m, node in enumerate(nodes):
            if node is not None:
                self._link(key, m, node)
        self._incidents[key] = (severity, last_activity, nodes)

    def add_member(self, key: int, member: int) -> int:
        """Appends a member (``-1`` for an unmapped one) to incident ``key``; returns its member index."""
        key, member = _i64(key), _i64(member)
        found = self._incidents.get(key)
        if found is None:
            raise GraphError(f'incident {key} is not in the index')
        members = found[2]
        node = self._member(key, len(members), member)
        members.append(node)
        if node is not None:
            self._link(key, len(members) - 1, node)
        return len(members) - 1

    def update_incident(self, key: int, severity: int, last_activity: float | None) -> None:
        """Sets incident ``key``'s severity rank and latest member activity."""
        key, severity = _i64(key), _i64(severity)
        last_activity = None if last_activity is None else _real(last_activity)
        found = self._incidents.get(key)
        if found is None:
            raise GraphError(f'incident {key} is not in the index')
        _check_severity(severity, f'incident {key}: ')
        self._incidents[key] = (severity, last_activity, found[2])

    def remove_incident(self, key: int) -> bool:
        """Removes incident ``key``; False when it was not there."""
        found = self._incidents.pop(_i64(key), None)
        if found is None:
            return False
        for node in found[2]:
            if node is None:
                continue
            for n in self._graph._footprint(node):
                pairs = self._by_node.get(n)
                if pairs is not None:
                    pairs[:] = [p for p in pairs if p[0] != key]
                    if not pairs:
                        del self._by_node[n]
        return True

    def decide(
        self,
        node: int,
        severity: int,
        time: float,
        depth: int,
        work_cap: int,
        threshold: float,
        window_s: float,
        w_service: float,
        w_dependency: float,
        w_infrastructure: float,
        max_matches: int | None = None,
    ) -> DecisionTuple:
        """Scores an event against the indexed incidents; see docs/engine-api.md, "IncidentIndex"."""
        node, severity, time = _i64(node), _i64(severity), _real(time)
        depth, work_cap, threshold, window_s = _i64(depth), _i64(work_cap), _real(threshold), _real(window_s)
        weights = (_real(w_service), _real(w_dependency), _real(w_infrastructure))
        keep = _max_matches(max_matches)
        node = self._graph._node(node, '')
        _check_severity(severity, '')
        _limits(depth, work_cap)
        return self._decide(node, severity, time, depth, work_cap, threshold, window_s, weights, keep)

    def decide_batch(
        self,
        events: Iterable[Sequence[Any]],
        depth: int,
        work_cap: int,
        threshold: float,
        window_s: float,
        w_service: float,
        w_dependency: float,
        w_infrastructure: float,
        threads: int = 1,
        max_matches: int | None = None,
    ) -> list[DecisionTuple]:
        """``decide`` for each ``(node, severity, time)`` event, in input order; all checked first."""
        depth, work_cap, threshold, window_s = _i64(depth), _i64(work_cap), _real(threshold), _real(window_s)
        weights = (_real(w_service), _real(w_dependency), _real(w_infrastructure))
        threads = _i64(threads)
        max_matches = None if max_matches is None else _i64(max_matches)
        parsed = _events(events)
        keep = _max_matches(max_matches)
        if threads < 1:
            raise GraphError(f'threads must be >= 1, got {threads}')
        for i, (node, severity, _) in enumerate(parsed):
            self._graph._node(node, f'events[{i}]: ')
            _check_severity(severity, f'events[{i}]: ')
        _limits(depth, work_cap)
        return [
            self._decide(node, severity, time, depth, work_cap, threshold, window_s, weights, keep)
            for node, severity, time in parsed
        ]

    # Helpers.

    def _decide(
        self,
        node: int,
        severity: int,
        time: float,
        depth: int,
        work_cap: int,
        threshold: float,
        window_s: float,
        weights: tuple[float, float, float],
        keep: int | None,
    ) -> DecisionTuple:
        graph = self._graph
        walks = graph._event_walks(node, depth, work_cap)
        by_node = self._by_node
        touched = sorted({pair for walk in walks[1] for n in walk.seen for pair in by_node.get(n, ())})

        matches = []
        for key, pairs in itertools.groupby(touched, key=operator.itemgetter(0)):
            candidate_severity, last_activity, nodes = self._incidents[key]
            members = ((m, nodes[m]) for _, m in pairs)
            found = graph._score_candidate(
                walks, key, candidate_severity, last_activity, members, severity, time, threshold, window_s, weights
            )
            if found is not None:
                matches.append(found)
        decision = _finish(matches, walks)
        if keep is not None:
            del decision[0][keep:]
        return decision

    def _member(self, key: int, m: int, x: int) -> int | None:
        return None if x == -1 else self._graph._node(x, f'incident {key}, member {m}: ')

    def _link(self, key: int, m: int, node: int) -> None:
        for n in self._graph._footprint(node):
            self._by_node.setdefault(n, []).append((key, m))


def _max_matches(value: int | None) -> int | None:
    """``max_matches`` checked as the compiled core checks it (``None``: every match)."""
    if value is None:
        return None
    value = _i64(value)
    if value < 0:
        raise GraphError(f'max_matches must be >= 0, got {value}')
    return value


def _events(events: Iterable[Sequence[Any]]) -> list[tuple[int, int, float]]:
    """The ``(node, severity, time)`` triples, checked as the compiled core checks them."""
    try:
        items = iter(events)
    except TypeError:
        raise GraphError('events is not a sequence') from None
    parsed = []
    for i, item in enumerate(items):
        try:
            if not isinstance(item, tuple | list) or len(item) != 3:
                raise TypeError
            node, severity, time = item
            parsed.append((_i64(node), _i64(severity), _real(time)))
        except (TypeError, ValueError, OverflowError):
            raise GraphError(f'events[{i}] is not a (node, severity, time) triple of integers and a number') from None
    return parsed
