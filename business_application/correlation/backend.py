"""Choosing the engine backend: the compiled core or the pure-Python fallback.

Both expose the same raw ``Graph`` class (docs/engine-api.md). ``auto`` prefers the compiled core
and falls back with one warning per process; ``rust`` insists on it; ``python`` forces the
fallback. The default comes from the ``BUSINESS_APP_ENGINE_BACKEND`` environment variable.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable, Sequence
from typing import Any, Literal, Protocol, cast

from .errors import BackendUnavailableError

__all__ = ('BACKENDS', 'ENV_VAR', 'RawGraph', 'RawIncidentIndex', 'backend_name', 'index_class_for', 'load_graph_class')

logger = logging.getLogger('business_application.correlation.backend')

ENV_VAR = 'BUSINESS_APP_ENGINE_BACKEND'
BACKENDS = ('auto', 'rust', 'python')
_COMPILED_MODULE = 'business_application._core'
BUILD_HINT = (
    'build it with `maturin develop --release` (or `pip install -e .`) from the repository root, '
    'with Rust and maturin installed'
)

_warned = False

# A decide match as the backends return it (docs/engine-api.md).
RawMatch = tuple[int, float, str, float, float, float, int, list[int], str]


class RawGraph(Protocol):
    """What both backends' ``Graph`` classes provide: the raw methods of docs/engine-api.md."""

    def __init__(
        self, kinds: Iterable[int], src: Iterable[int], dst: Iterable[int], kind: Iterable[int], group: Iterable[int]
    ) -> None: ...

    @property
    def node_count(self) -> int: ...

    @property
    def edge_count(self) -> int: ...

    @property
    def skipped_self_loops(self) -> int: ...

    def footprint(self, x: int) -> list[int]: ...

    def maintenance_scope(self, x: int) -> list[int]: ...

    def decide(
        self,
        node: int,
        severity: int,
        time: float,
        candidates: Iterable[Sequence[Any]],
        depth: int,
        work_cap: int,
        threshold: float,
        window_s: float,
        w_service: float,
        w_dependency: float,
        w_infrastructure: float,
    ) -> tuple[list[RawMatch], bool, int]: ...

    def rank_upstream(self, nodes: Iterable[int], depth: int, work_cap: int) -> list[int]: ...

    def blast_radius(self, failing: Iterable[int], depth: int, work_cap: int) -> tuple[list[int], list[int], bool]: ...

    def reach(self, x: int, depth: int, work_cap: int) -> tuple[int, int, bool]: ...


RawDecision = tuple[list[RawMatch], bool, int]


class RawIncidentIndex(Protocol):
    """What both backends' ``IncidentIndex`` classes provide (docs/engine-api.md, "IncidentIndex")."""

    def __len__(self) -> int: ...

    def __contains__(self, key: object) -> bool: ...

    def keys(self) -> list[int]: ...

    def incident(self, key: int) -> tuple[int, float | None, list[int]] | None: ...

    def add_incident(self, key: int, severity: int, last_activity: float | None, members: Iterable[int]) -> None: ...

    def add_member(self, key: int, member: int) -> int: ...

    def update_incident(self, key: int, severity: int, last_activity: float | None) -> None: ...

    def remove_incident(self, key: int) -> bool: ...

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
    ) -> RawDecision: ...

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
    ) -> list[RawDecision]: ...


def load_graph_class(name: str | None = None) -> type[RawGraph]:
    """The raw ``Graph`` class of backend ``name`` ('rust', 'python' or 'auto').

    ``None`` reads ``BUSINESS_APP_ENGINE_BACKEND`` and defaults to ``'auto'``. Raises ValueError for
    an unknown name and ``BackendUnavailableError`` for 'rust' when the compiled core is missing.
    """
    if name is None:
        name = os.environ.get(ENV_VAR) or 'auto'
    name = name.strip().lower()
    if name not in BACKENDS:
        raise ValueError(f'unknown engine backend {name!r}; expected one of {", ".join(BACKENDS)}')
    if name == 'python':
        return _fallback_class()

    try:
        module = importlib.import_module(_COMPILED_MODULE)
    except ImportError as exc:
        if name == 'rust':
            raise BackendUnavailableError(
                f'the compiled engine core ({_COMPILED_MODULE}) is not importable: {exc}; {BUILD_HINT}'
            ) from exc
        _warn_fallback(exc)
        return _fallback_class()
    return cast('type[RawGraph]', module.Graph)


def index_class_for(graph: RawGraph) -> type[RawIncidentIndex]:
    """The raw ``IncidentIndex`` class of the backend that built ``graph``."""
    if backend_name(type(graph)) == 'rust':
        return cast('type[RawIncidentIndex]', importlib.import_module(_COMPILED_MODULE).IncidentIndex)
    from .fallback_index import IncidentIndex

    return IncidentIndex


def backend_name(cls: type) -> Literal['rust', 'python']:
    """Which backend a raw ``Graph`` class (or instance's class) belongs to."""
    return 'rust' if cls.__module__ == _COMPILED_MODULE else 'python'


def _fallback_class() -> type[RawGraph]:
    from .fallback import Graph

    return Graph


def _warn_fallback(exc: ImportError) -> None:
    global _warned
    if not _warned:
        _warned = True
        logger.warning(
            'the compiled engine core is not available (%s); using the pure-Python fallback, which is slower; %s',
            exc,
            BUILD_HINT,
        )
