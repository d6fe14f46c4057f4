"""Loading NetBox's map into the engine, keeping it fresh by delta, and the memory it takes.

For maps of 10k, 100k and 1M objects (QUICK=1: 10k and 100k) written into NetBox's database:

- ``test_full_load``: one full load from the database into the engine (target: at most 30 s at 1M);
- ``test_delta_catch_up``: a worker catching up with one committed new dependency by delta,
  against the full reload it replaces (the ratio is in extra_info and the figures file);
- ``test_snapshot_rss``: the resident memory of a fresh process holding the snapshot (target: at
  most 1 GB at 1M), measured in a subprocess.

Figures go to pytest-benchmark's table and to .work/bench-product-snapshot.json, from which
bench/RESULTS.md ("Whole product") was written.
"""

import os
import time

import pytest

from bench.product_support import FIGURES, grow_map_to, record, snapshot_rss, use_test_database

QUICK = bool(os.environ.get('QUICK'))
SIZES = (10_000, 100_000) if QUICK else (10_000, 100_000, 1_000_000)
FULL_LOAD_TARGET_S = 30
RSS_TARGET_BYTES = 1 << 30


@pytest.fixture(scope='module')
def bench_database(django_db_blocker):
    FIGURES.unlink(missing_ok=True)
    with django_db_blocker.unblock():
        name = use_test_database()
        yield name


@pytest.fixture(scope='module', params=SIZES, ids=lambda size: f'{size // 1000}k')
def sized_map(request, bench_database, django_db_blocker):
    with django_db_blocker.unblock():
        nodes, seconds = grow_map_to(request.param)
    record(request.param, nodes=nodes, write_seconds=round(seconds, 1))
    return request.param


def test_full_load(benchmark, sized_map, django_db_blocker):
    from business_application.services.graph_loader import load_map

    with django_db_blocker.unblock():
        service_map = benchmark.pedantic(load_map, rounds=1 if sized_map >= 1_000_000 else 3, iterations=1)
    seconds = benchmark.stats.stats.median
    benchmark.extra_info.update(nodes=len(service_map), edges=service_map.graph.edge_count)
    record(
        sized_map,
        full_load_s=round(seconds, 2),
        nodes=len(service_map),
        edges=service_map.graph.edge_count,
        backend=service_map.graph.backend,
    )
    if sized_map >= 1_000_000:
        benchmark.extra_info['target_met'] = seconds <= FULL_LOAD_TARGET_S


def test_delta_catch_up(benchmark, sized_map, django_db_blocker):
    """One new dependency committed by "another process", then this worker's next map read."""
    from business_application.models import ServiceDependency, TechnicalService
    from business_application.services import graph_loader

    with django_db_blocker.unblock():
        graph_loader.forget_map()
        started = time.perf_counter()
        graph_loader.current_map()
        full_reload = time.perf_counter() - started
        loads = graph_loader.stats()['full_loads']
        services = list(TechnicalService.objects.order_by('-pk').values_list('pk', flat=True)[:400])
        pairs = iter(zip(services[1::2], services[::2], strict=False))

        def commit_a_change():
            downstream, upstream = next(pairs)
            ServiceDependency.objects.create(
                name=f'bench delta {downstream}', downstream_service_id=downstream, upstream_service_id=upstream
            )  # autocommit: the delta is published at once
            graph_loader._local.clear()  # the change came from another process

        def catch_up():
            return graph_loader.current_map().component(0)

        benchmark.pedantic(catch_up, setup=commit_a_change, rounds=5, iterations=1)
        assert graph_loader.stats()['full_loads'] == loads, 'a delta fell back to a full reload'
    delta = benchmark.stats.stats.median
    benchmark.extra_info.update(full_reload_s=full_reload, ratio=full_reload / delta)
    record(sized_map, full_reload_s=round(full_reload, 3), delta_s=round(delta, 4), ratio=round(full_reload / delta, 1))


def test_snapshot_rss(benchmark, sized_map, bench_database):
    figures = benchmark.pedantic(snapshot_rss, args=(bench_database,), rounds=1, iterations=1)
    benchmark.extra_info.update(figures)
    record(
        sized_map,
        rss_after_mb=round(figures['rss_after'] / 2**20),
        rss_peak_mb=round(figures['rss_peak'] / 2**20),
        rss_before_mb=round(figures['rss_before'] / 2**20),
        subprocess_load_s=round(figures['seconds'], 2),
    )
    if sized_map >= 1_000_000:
        benchmark.extra_info['target_met'] = figures['rss_peak'] <= RSS_TARGET_BYTES
