"""Stub of the compiled engine core built from core_rs/pybind (see docs/engine-api.md)."""

from collections.abc import Iterable
from typing import SupportsFloat, SupportsIndex, final

__all__ = ['Graph', '__version__']

__version__: str

_Int = SupportsIndex
_Float = SupportsFloat | SupportsIndex
_Candidate = tuple[_Int, _Float | None, Iterable[_Int]] | list[object]
_MatchTuple = tuple[int, float, str, float, float, float, int, list[int], str]

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
    ) -> tuple[list[_MatchTuple], bool, int]: ...
    def rank_upstream(self, nodes: Iterable[_Int], depth: _Int, work_cap: _Int) -> list[int]: ...
    def blast_radius(
        self, failing: Iterable[_Int], depth: _Int, work_cap: _Int
    ) -> tuple[list[int], list[int], bool]: ...
