"""``DependencyGraph``: the engine's answers as typed values, whichever backend computes them.

The raw backends return plain tuples (docs/engine-api.md); this wrapper turns them into frozen
dataclasses and passes the other questions through unchanged.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Literal, cast

from .backend import RawGraph, backend_name, load_graph_class

__all__ = ('BlastRadius', 'Decision', 'DependencyGraph', 'Match')

LinkName = Literal['service', 'dependency', 'infrastructure']
DirectionName = Literal['same', 'downstream', 'upstream']
# (severity rank, latest member activity in seconds or None, member node ids with -1 for unmapped)
CandidateTuple = tuple[int, float | None, Sequence[int]]


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

    def rank_upstream(self, nodes: Sequence[int], depth: int, work_cap: int) -> list[int]:
        return self._raw.rank_upstream(nodes, depth, work_cap)

    def blast_radius(self, failing: Sequence[int], depth: int, work_cap: int) -> BlastRadius:
        down, degraded, capped = self._raw.blast_radius(failing, depth, work_cap)
        return BlastRadius(tuple(down), tuple(degraded), capped)
