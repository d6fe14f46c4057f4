"""``DependencyGraph``: the engine's answers as typed values, whichever backend computes them.

The raw backends return plain tuples (docs/engine-api.md); this wrapper turns them into frozen
dataclasses and passes the other questions through unchanged. ``IncidentIndex`` keeps the live
incidents of one graph indexed by footprint node, so a decision costs what the event's walks touch
rather than the number of incidents, and decides batches of events in one call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Literal, cast

from .backend import RawGraph, RawIncidentIndex, RawMatch, backend_name, index_class_for, load_graph_class

__all__ = ('BlastRadius', 'Decision', 'DependencyGraph', 'IncidentIndex', 'Match', 'Reach')

LinkName = Literal['service', 'dependency', 'infrastructure']
DirectionName = Literal['same', 'downstream', 'upstream']
# (severity rank, latest member activity in seconds or None, member node ids with -1 for unmapped)
CandidateTuple = tuple[int, float | None, Sequence[int]]
# (node, severity rank, arrival time in seconds)
EventTuple = tuple[int, int, float]


@dataclasses.dataclass(frozen=True, slots=True)
class Match:
    """How an event links to one candidate incident, through the member that linked best."""

    candidate: int
    score: float
    link: LinkName
    weight: float
    decay: float
    severity_factor: float
    member: int
    path: tuple[int, ...]
    direction: DirectionName


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    """The matches at or above the threshold, best first, and the walks' statistics."""

    matches: tuple[Match, ...]
    capped: bool
    visited: int


@dataclasses.dataclass(frozen=True, slots=True)
class Reach:
    """What the mixed down and up walks from a node's footprint discovered, and whether one was capped."""

    down: int
    up: int
    capped: bool


@dataclasses.dataclass(frozen=True, slots=True)
class BlastRadius:
    """Services and applications down or degraded, ascending, and whether the region was capped."""

    down: tuple[int, ...]
    degraded: tuple[int, ...]
    capped: bool


class DependencyGraph:
    """The dependency map on one backend, answering with the dataclasses above."""

    __slots__ = ('_raw',)

    def __init__(self, raw: RawGraph) -> None:
        self._raw = raw

    @classmethod
    def build(
        cls,
        kinds: Iterable[int],
        src: Iterable[int],
        dst: Iterable[int],
        kind: Iterable[int],
        group: Iterable[int],
        backend: str | None = None,
    ) -> DependencyGraph:
        """Builds the map on ``backend`` ('rust', 'python', 'auto', or None for the configured one)."""
        return cls(load_graph_class(backend)(kinds, src, dst, kind, group))

    def __repr__(self) -> str:
        return f'<DependencyGraph {self.backend} nodes={self.node_count} edges={self.edge_count}>'

    @property
    def raw(self) -> RawGraph:
        """The backend's own ``Graph`` object."""
        return self._raw

    @property
    def backend(self) -> Literal['rust', 'python']:
        return backend_name(type(self._raw))

    @property
    def node_count(self) -> int:
        return self._raw.node_count

    @property
    def edge_count(self) -> int:
        return self._raw.edge_count

    @property
    def skipped_self_loops(self) -> int:
        return self._raw.skipped_self_loops

    def footprint(self, x: int) -> list[int]:
        return self._raw.footprint(x)

    def maintenance_scope(self, x: int) -> list[int]:
        return self._raw.maintenance_scope(x)

    def decide(
        self,
        node: int,
        severity: int,
        time: float,
        candidates: Sequence[CandidateTuple],
        depth: int,
        work_cap: int,
        threshold: float,
        window_s: float,
        w_service: float,
        w_dependency: float,
        w_infrastructure: float,
    ) -> Decision:
        """Scores an event against the candidate incidents (docs/engine-api.md, "decide")."""
        matches, capped, visited = self._raw.decide(
            node,
            severity,
            time,
            candidates,
            depth,
            work_cap,
            threshold,
            window_s,
            w_service,
            w_dependency,
            w_infrastructure,
        )
        return _decision(matches, capped, visited)

    def rank_upstream(self, nodes: Sequence[int], depth: int, work_cap: int) -> list[int]:
        return self._raw.rank_upstream(nodes, depth, work_cap)

    def blast_radius(self, failing: Sequence[int], depth: int, work_cap: int) -> BlastRadius:
        down, degraded, capped = self._raw.blast_radius(failing, depth, work_cap)
        return BlastRadius(tuple(down), tuple(degraded), capped)

    def reach(self, x: int, depth: int, work_cap: int) -> Reach:
        """The mixed down and up walks from ``footprint(x)`` as ``decide`` runs them (docs/engine-api.md)."""
        return Reach(*self._raw.reach(x, depth, work_cap))

    def incident_index(self) -> IncidentIndex:
        """An empty index of live incidents over this map, on the same backend."""
        return IncidentIndex(index_class_for(self._raw)(self._raw))


class IncidentIndex:
    """The live incidents of one map, keyed by the caller's incident id (docs/engine-api.md, "IncidentIndex").

    ``decide`` equals ``DependencyGraph.decide`` given the incidents as candidates in ascending key
    order, except that each match's ``candidate`` is the incident's key. Rebuild the index when the
    map is rebuilt: footprints are read from the map the index was made for.
    """

    __slots__ = ('_raw',)

    def __init__(self, raw: RawIncidentIndex) -> None:
        self._raw = raw

    def __repr__(self) -> str:
        return f'<IncidentIndex incidents={len(self)}>'

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, key: object) -> bool:
        return key in self._raw

    @property
    def raw(self) -> RawIncidentIndex:
        """The backend's own ``IncidentIndex`` object."""
        return self._raw

    def keys(self) -> list[int]:
        """The incident keys, ascending."""
        return self._raw.keys()

    def incident(self, key: int) -> CandidateTuple | None:
        """``(severity, last_activity, members)`` of incident ``key``, or None."""
        return self._raw.incident(key)

    def add_incident(self, key: int, severity: int, last_activity: float | None, members: Sequence[int]) -> None:
        """Adds a live incident (``-1`` members unmapped); on bad input raises ``GraphError``, changing nothing."""
        self._raw.add_incident(key, severity, last_activity, members)

    def add_member(self, key: int, member: int) -> int:
        """Appends a member to incident ``key`` and returns its member index."""
        return self._raw.add_member(key, member)

    def update_incident(self, key: int, severity: int, last_activity: float | None) -> None:
        """Sets the incident's severity rank and latest member activity (None: a member is still triggered)."""
        self._raw.update_incident(key, severity, last_activity)

    def remove_incident(self, key: int) -> bool:
        """Forgets incident ``key`` (resolved, merged); False when it was not indexed."""
        return self._raw.remove_incident(key)

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
    ) -> Decision:
        """Scores an event against the indexed incidents; ``Match.candidate`` is the incident key.

        ``max_matches`` keeps only the best matches (1: just the incident to join), which spares
        building the others' paths and Python objects; None keeps them all.
        """
        raw = self._raw.decide(
            node,
            severity,
            time,
            depth,
            work_cap,
            threshold,
            window_s,
            w_service,
            w_dependency,
            w_infrastructure,
            max_matches,
        )
        return _decision(*raw)

    def decide_batch(
        self,
        events: Sequence[EventTuple],
        depth: int,
        work_cap: int,
        threshold: float,
        window_s: float,
        w_service: float,
        w_dependency: float,
        w_infrastructure: float,
        threads: int = 1,
        max_matches: int | None = None,
    ) -> tuple[Decision, ...]:
        """Decides each ``(node, severity, time)`` against the index as it stands, in input order.

        The compiled core releases the GIL and splits the events over ``threads`` threads; the
        answers never depend on ``threads``. Each decision's ``capped`` says whether that event hit
        the work cap.
        """
        raw = self._raw.decide_batch(
            events,
            depth,
            work_cap,
            threshold,
            window_s,
            w_service,
            w_dependency,
            w_infrastructure,
            threads=threads,
            max_matches=max_matches,
        )
        return tuple(_decision(*one) for one in raw)


def _decision(matches: list[RawMatch], capped: bool, visited: int) -> Decision:
    return Decision(
        matches=tuple(
            Match(
                candidate,
                score,
                cast(LinkName, link),
                weight,
                decay,
                severity_factor,
                member,
                tuple(path),
                cast(DirectionName, direction),
            )
            for candidate, score, link, weight, decay, severity_factor, member, path, direction in matches
        ),
        capped=capped,
        visited=visited,
    )
