"""Engine tier: every case runs once on the compiled core and once on the pure-Python fallback.

Nothing here touches Django, so the tier runs with ``-p no:django`` as well as under pytest-django.
The 'rust' case fails (never skips) when the compiled core is missing: CI forces that backend.
"""

from collections.abc import Callable, Sequence

import pytest

from business_application.correlation.backend import load_graph_class
from business_application.correlation.errors import BackendUnavailableError

BACKENDS = ('rust', 'python')

# Default weights of the guide and a generous window, shared by the decide tests.
WEIGHTS = (0.8, 0.6, 0.4)

Edge = tuple[int, int, int] | tuple[int, int, int, int]


@pytest.fixture(params=BACKENDS)
def graph_class(request: pytest.FixtureRequest) -> type:
    """The raw ``Graph`` class of each backend in turn."""
    try:
        return load_graph_class(request.param)
    except BackendUnavailableError as exc:
        pytest.fail(f'backend {request.param!r} is unavailable: {exc}', pytrace=False)


@pytest.fixture
def build(graph_class: type) -> Callable[[Sequence[int], Sequence[Edge]], object]:
    """``build(kinds, edges)`` with edges as ``(src, dst, kind)`` or ``(src, dst, kind, group)``."""

    def make(kinds: Sequence[int], edges: Sequence[Edge]) -> object:
        src = [e[0] for e in edges]
        dst = [e[1] for e in edges]
        kind = [e[2] for e in edges]
        group = [e[3] if len(e) == 4 else -1 for e in edges]
        return graph_class(list(kinds), src, dst, kind, group)

    return make


@pytest.fixture
def decide() -> Callable[..., tuple]:
    """``decide(graph, node, candidates, **overrides)`` with the guide's defaults for the rest."""

    def run(
        graph: object,
        node: int,
        candidates: Sequence[tuple],
        *,
        severity: int = 3,
        time: float = 1000.0,
        depth: int = 5,
        work_cap: int = 10_000,
        threshold: float = 0.0,
        window_s: float = 600.0,
        weights: tuple[float, float, float] = WEIGHTS,
    ) -> tuple:
        return graph.decide(node, severity, time, list(candidates), depth, work_cap, threshold, window_s, *weights)

    return run
