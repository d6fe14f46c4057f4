"""Stub of the compiled engine core built from core_rs/pybind (see docs/engine-api.md)."""

from array import array
from collections.abc import Iterable
from typing import SupportsFloat, SupportsIndex, final

__all__ = ['Graph', 'IncidentIndex', '__version__', 'components', 'drop_edges_touching']

__version__: str

_Int = SupportsIndex
_Float = SupportsFloat | SupportsIndex
_Candidate = tuple[_Int, _Float | None, Iterable[_Int]] | list[object]
_MatchTuple = tuple[int, float, str, float, float, float, int, list[int], str]
_DecisionTuple = tuple[list[_MatchTuple], bool, int]
_Event = tuple[_Int, _Int, _Float] | list[object]

@final
class Graph:
    """The dependency map, built once and queried many times; immutable and thread-safe."""

    # The binding's constructor is __new__ (PyO3's #[new]); callers see the contract's arguments.
    def __new__(
        cls,
        kinds: Iterable[_Int],
        src: Iterable[_Int],
        dst: Iterable[_Int],
        kind: Iterable[_Int],
        group: Iterable[_Int],
    ) -> Graph: ...
    @property
    def node_count(self) -> int: ...
    @property
    def edge_count(self) -> int: ...
    @property
    def skipped_self_loops(self) -> int: ...
    @property
    def memory_bytes(self) -> int:
        """Bytes held by the node kinds and both adjacencies (allocated capacity)."""
    def footprint(self, x: _Int) -> list[int]: ...
    def maintenance_scope(self, x: _Int) -> list[int]: ...
    def decide(
        self,
        node: _Int,
        severity: _Int,
        time: _Float,
        candidates: Iterable[_Candidate],
        depth: _Int,
        work_cap: _Int,
        threshold: _Float,
        window_s: _Float,
        w_service: _Float,
        w_dependency: _Float,
        w_infrastructure: _Float,
    ) -> _DecisionTuple: ...
    def reach(self, x: _Int, depth: _Int, work_cap: _Int) -> tuple[int, int, bool]: ...
    def rank_upstream(self, nodes: Iterable[_Int], depth: _Int, work_cap: _Int) -> list[int]: ...
    def blast_radius(
        self, failing: Iterable[_Int], depth: _Int, work_cap: _Int
    ) -> tuple[list[int], list[int], bool]: ...

@final
class IncidentIndex:
    """Live incidents of one Graph indexed by footprint node; reads and writes release the GIL."""

    def __new__(cls, graph: Graph) -> IncidentIndex: ...
    @property
    def graph(self) -> Graph: ...
    def __len__(self) -> int: ...
    def __contains__(self, key: _Int) -> bool: ...
    def keys(self) -> list[int]: ...
    def incident(self, key: _Int) -> tuple[int, float | None, list[int]] | None: ...
    def add_incident(
        self, key: _Int, severity: _Int, last_activity: _Float | None, members: Iterable[_Int]
    ) -> None: ...
    def add_member(self, key: _Int, member: _Int) -> int: ...
    def update_incident(self, key: _Int, severity: _Int, last_activity: _Float | None) -> None: ...
    def remove_incident(self, key: _Int) -> bool: ...
    def decide(
        self,
        node: _Int,
        severity: _Int,
        time: _Float,
        depth: _Int,
        work_cap: _Int,
        threshold: _Float,
        window_s: _Float,
        w_service: _Float,
        w_dependency: _Float,
        w_infrastructure: _Float,
        max_matches: _Int | None = None,
    ) -> _DecisionTuple: ...
    def decide_batch(
        self,
        events: Iterable[_Event],
        depth: _Int,
        work_cap: _Int,
        threshold: _Float,
        window_s: _Float,
        w_service: _Float,
        w_dependency: _Float,
        w_infrastructure: _Float,
        threads: _Int = 1,
        max_matches: _Int | None = None,
    ) -> list[_DecisionTuple]: ...

# The worker snapshot's edge passes (services/snapshot.py; Python loops when the core is missing).
def components(src: array[int], dst: array[int], parent: array[int], least: array[int]) -> None: ...
def drop_edges_touching(src: array[int], dst: array[int], nodes: list[int], node_count: int) -> int: ...
