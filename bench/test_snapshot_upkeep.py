"""The worker snapshot's two passes over every edge, in the compiled core and in Python, side by side.

After a dependency is removed or an object deleted, the snapshot (business_application/services/
snapshot.py) recomputes its map components (the decision locks) at the next lock question, and a
deletion turns the deleted nodes' edges into self-loops. Both passes run over the generated maps'
edge arrays (bench/mapgen.py), as the snapshot holds them: ``components`` from scratch, and
``sweep`` of ten random deleted nodes.
"""

from __future__ import annotations

import random
from array import array

import pytest

from bench.conftest import SIZES, enterprise_map, size_id
from business_application.services.snapshot import SnapshotBuilder, canonical_key

BACKENDS = ('rust', 'python')


def _snapshot(n: int, backend: str) -> SnapshotBuilder:
    graph_map = enterprise_map(n)
    builder = SnapshotBuilder()
    builder.kinds = array('b', graph_map.kinds)
    builder.src = array('i', graph_map.src)
    builder.dst = array('i', graph_map.dst)
    builder._pks = array('q', range(n))
    builder._node_keys = array('i', map(canonical_key, builder.kinds, builder._pks))
    builder._backend = backend
    return builder


def _rounds(n: int, backend: str) -> int:
    return 5 if backend == 'rust' or n < 1_000_000 else 2


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('n', SIZES, ids=size_id)
def test_components(benchmark, n, backend):
    builder = _snapshot(n, backend)
    benchmark.group = f'snapshot components {size_id(n)}'
    benchmark.extra_info['edges'] = len(builder.src)
    benchmark.pedantic(builder._recompute_components, rounds=_rounds(n, backend), iterations=1)
    assert builder.component(0) == builder.component(int(builder.dst[0]))


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('n', SIZES, ids=size_id)
def test_sweep(benchmark, n, backend):
    builder = _snapshot(n, backend)
    original = array('i', builder.dst)
    doomed = set(random.Random(1).sample(range(n), 10))
    removed = []

    def fresh():
        builder.dst = array('i', original)

    benchmark.group = f'snapshot sweep {size_id(n)}'
    benchmark.pedantic(
        lambda: removed.append(builder.sweep_dead(doomed)), setup=fresh, rounds=_rounds(n, backend), iterations=1
    )
    assert removed[0] > 0
    assert len(set(removed)) == 1
