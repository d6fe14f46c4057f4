"""Shared set-up of the benchmark suites: sizes, quick mode, generated maps and percentiles.

Kept free of Django and NetBox imports so every suite in bench/ can use it. ``QUICK=1`` (``make
bench QUICK=1``) limits the maps to 10k and 100k nodes; otherwise the 1M map runs too. Maps are
generated once per process and size (seed 1), and written once to ``.work/bench-maps/`` so a
subprocess can load one without generating it again.
"""

from __future__ import annotations

import functools
import os
import statistics
import sys
from array import array
from pathlib import Path

import pytest

from bench import mapgen

QUICK = os.environ.get('QUICK', '') not in ('', '0')
SIZES = (10_000, 100_000) if QUICK else (10_000, 100_000, 1_000_000)
SEED = 1
REPO = Path(__file__).resolve().parent.parent
MAP_DIR = REPO / '.work' / 'bench-maps'


def size_id(n: int) -> str:
    return f'{n // 1_000_000}M' if n >= 1_000_000 else f'{n // 1000}k'


@functools.cache
def enterprise_map(n: int) -> mapgen.EnterpriseMap:
    """The generated map of ``n`` nodes, once per process."""
    return mapgen.generate(n, SEED)


def map_file(n: int) -> Path:
    """The map of ``n`` nodes as a binary file of five arrays (see ``load_map_file``), written once."""
    path = MAP_DIR / f'map-{n}-seed{SEED}-v{mapgen.VERSION}.bin'
    if not path.exists():
        MAP_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix('.tmp')
        with tmp.open('wb') as out:
            for values in enterprise_map(n).args:
                array('q', [len(values)]).tofile(out)
                values.tofile(out)
        tmp.replace(path)
    return path


def load_map_file(path: Path | str) -> tuple[array, ...]:
    """The five arrays written by ``map_file``."""
    arrays = []
    with open(path, 'rb') as f:
        for _ in range(5):
            length = array('q')
            length.fromfile(f, 1)
            values = array('q')
            values.fromfile(f, length[0])
            arrays.append(values)
    return tuple(arrays)


def percentile(data: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``data``, by linear interpolation."""
    ordered = sorted(data)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=1000, method='inclusive')[min(998, max(0, round(q * 10) - 1))]


def record_percentiles(benchmark, scale: float = 1e6, unit: str = 'us') -> None:
    """Stores p50 and p99 of the rounds just measured (one operation per round) in ``extra_info``."""
    data = list(benchmark.stats.stats.data)
    benchmark.extra_info[f'p50_{unit}'] = round(percentile(data, 50) * scale, 3)
    benchmark.extra_info[f'p99_{unit}'] = round(percentile(data, 99) * scale, 3)


@pytest.fixture(scope='session')
def python_executable() -> str:
    return sys.executable
