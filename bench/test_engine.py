"""Engine benchmarks: the compiled core, the pure-Python fallback and networkx, side by side in one run.

On the generated maps (bench/mapgen.py) at 10k, 100k and 1M nodes (1M skipped with QUICK=1):

- ``build``: the graph from the five edge arrays; ``memory``: the graph's resident size, measured in
  a fresh subprocess as the RSS growth while building (the compiled core also reports its arrays);
- ``walk``: the depth-5 mixed walks down and up from a random node's footprint (``reach``), one
  per round, p50 and p99 in ``extra_info``; networkx runs the same walk rules on a ``DiGraph``;
- ``decide``: one event against 1,000 live incidents of 20 or 300 services, through the incident
  index keeping the best match (both backends: walk, score, choose), the index returning every
  match, and per-call candidates returning every match (the compiled core's path before the
  index);
- ``batch``: an event stream with a storm behind a core switch, decided in one call on one and on
  two threads, at the plugin's default work cap (100,000) and at 10,000; decisions per second and
  work-cap hits in ``extra_info``.

Every speed claim in bench/RESULTS.md is a ratio between rows of the same group of one run.
"""

from __future__ import annotations

import functools
import random
import subprocess
from collections import deque

import pytest

from bench import mapgen
from bench.conftest import REPO, SIZES, enterprise_map, map_file, record_percentiles, size_id
from business_application.correlation.backend import index_class_for, load_graph_class

DEPTH = 5
WORK_CAP = 100_000  # the plugin's default
THRESHOLD, WINDOW_S, WEIGHTS = 0.3, 900.0, (0.8, 0.6, 0.4)
SCORING = (DEPTH, WORK_CAP, THRESHOLD, WINDOW_S, *WEIGHTS)
INCIDENTS = 1000
IMPLS = ('rust', 'python', 'networkx')

# Rounds per implementation: the fallback and networkx are slow on the big maps.
WALK_ROUNDS = {'rust': 3000, 'python': 300, 'networkx': 200}
DECIDE_ROUNDS = {'rust': 2000, 'python': 150}
BATCH_EVENTS = {'rust': 5000, 'python': 200}

sizes = pytest.mark.parametrize('n', SIZES, ids=size_id)
impls = pytest.mark.parametrize('impl', IMPLS)


# The networkx twin of the engine's mixed walk (docs/engine-api.md, "Walks"), on a DiGraph whose
# edges carry their kind. Edges are inserted sorted, so neighbours come in the engine's order.


def nx_build(kinds, src, dst, kind, group):
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(kinds)))
    graph.add_edges_from((s, d, {'kind': k}) for s, d, k in sorted(zip(src, dst, kind, strict=True)) if s != d)
    graph.graph['kinds'] = kinds
    return graph


def nx_walk(adjacency, sources, down, depth, work_cap):
    seen = {}
    queue = deque()
    for s in sources:
        if s not in seen:
            seen[s] = 0
            queue.append((s, 0))
    unexpanded = set()
    discovered = 0
    while queue:
        u, dist = queue.popleft()
        if dist >= depth:
            continue
        for v, data in adjacency[u].items():
            terminal = data['kind'] in (mapgen.REDUNDANT, mapgen.CLUSTER_MEMBER)
            if not down and terminal and dist != 0:
                continue
            if v not in seen:
                if discovered == work_cap:
                    return discovered, True
                discovered += 1
                seen[v] = dist + 1
                if terminal and down:
                    unexpanded.add(v)
                else:
                    queue.append((v, dist + 1))
            elif not terminal and v in unexpanded:
                unexpanded.discard(v)
                queue.append((v, dist + 1))
    return discovered, False


def nx_reach(graph, x, depth, work_cap):
    kinds = graph.graph['kinds']
    carried = sorted(v for v, data in graph.succ[x].items() if data['kind'] == mapgen.CARRIES and kinds[v] == 0)
    footprint = [x, *carried]
    down, down_capped = nx_walk(graph.succ, footprint, True, depth, work_cap)
    up, up_capped = nx_walk(graph.pred, footprint, False, depth, work_cap)
    return down, up, down_capped or up_capped


@functools.cache
def graph(n: int, impl: str):
    """The map of ``n`` nodes built by ``impl``, once per process."""
    args = enterprise_map(n).args
    if impl == 'networkx':
        return nx_build(*args)
    return load_graph_class(impl)(*args)


def reach(impl: str):
    if impl == 'networkx':
        return lambda g, x: nx_reach(g, x, DEPTH, WORK_CAP)
    return lambda g, x: g.reach(x, DEPTH, WORK_CAP)


def sample_nodes(n: int, count: int, seed: int = 3) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(n) for _ in range(count)]


@sizes
@impls
def test_build(benchmark, n, impl):
    args = enterprise_map(n).args
    benchmark.group = f'build {size_id(n)}'
    if impl == 'networkx':
        result = benchmark.pedantic(nx_build, args, rounds=1, iterations=1)
    else:
        cls = load_graph_class(impl)
        result = benchmark.pedantic(cls, args, rounds=5 if impl == 'rust' else 1, iterations=1)
    benchmark.extra_info['edges'] = result.number_of_edges() if impl == 'networkx' else result.edge_count
    benchmark.extra_info['nodes'] = n


# Run in a fresh interpreter: the RSS growth while the graph is built and held.
_MEMORY_PROBE = """
import sys
from bench.conftest import load_map_file
from bench.test_engine import nx_build
from business_application.correlation.backend import load_graph_class

def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * 4096

args = load_map_file(sys.argv[2])
before = rss()
graph = nx_build(*args) if sys.argv[1] == 'networkx' else load_graph_class(sys.argv[1])(*args)
after = rss()
print(after - before, getattr(graph, 'memory_bytes', -1))
"""


@sizes
@impls
def test_memory(benchmark, n, impl, python_executable):
    path = map_file(n)
    benchmark.group = f'memory {size_id(n)}'

    def probe():
        out = subprocess.run(
            [python_executable, '-c', _MEMORY_PROBE, impl, str(path)],
            check=True,
            capture_output=True,
            text=True,
            cwd=str(REPO),
        )
        return [int(v) for v in out.stdout.split()]

    rss, arrays = benchmark.pedantic(probe, rounds=1, iterations=1)
    benchmark.extra_info['rss_growth_mb'] = round(rss / 2**20, 1)
    if arrays >= 0:
        benchmark.extra_info['memory_bytes_mb'] = round(arrays / 2**20, 1)


@sizes
@impls
def test_walk(benchmark, n, impl):
    g = graph(n, impl)
    walk = reach(impl)
    nodes = sample_nodes(n, WALK_ROUNDS[impl])
    # The three implementations walk alike: the same counts on the first nodes of the sample.
    rust = graph(n, 'rust')
    for x in nodes[:20]:
        assert walk(g, x) == rust.reach(x, DEPTH, WORK_CAP)
    benchmark.group = f'walk {size_id(n)}'
    it = iter(nodes)
    benchmark.pedantic(walk, setup=lambda: ((g, next(it)), {}), rounds=len(nodes), iterations=1)
    record_percentiles(benchmark)
    touched = sorted(sum(rust.reach(x, DEPTH, WORK_CAP)[:2]) for x in nodes)
    benchmark.extra_info['touched_median'] = touched[len(touched) // 2]
    benchmark.extra_info['touched_mean'] = round(sum(touched) / len(touched))


@functools.cache
def incident_index(n: int, backend: str, size: int):
    """1,000 live incidents of ``size`` random services each (seeded), on ``backend``'s index."""
    g = graph(n, backend)
    index = index_class_for(g)(g)
    rng = random.Random(5)
    services = enterprise_map(n).services
    for key in range(1, INCIDENTS + 1):
        members = [services[rng.randrange(len(services))] for _ in range(size)]
        index.add_incident(key, rng.randint(0, 3), rng.choice([None, 0.0, 500.0]), members)
    return index


def candidates(index) -> list[tuple]:
    return [index.incident(key) for key in index.keys()]


@sizes
@pytest.mark.parametrize('size', [20, 300])
@pytest.mark.parametrize('impl', ['rust', 'python', 'rust-all-matches', 'rust-per-call'])
def test_decide(benchmark, n, size, impl):
    backend = impl.split('-')[0]
    index = incident_index(n, backend, size)
    nodes = sample_nodes(n, DECIDE_ROUNDS[backend] // (10 if impl == 'rust-per-call' else 1), seed=7)
    benchmark.group = f'decide {size_id(n)} x{INCIDENTS} incidents of {size}'
    it = iter(nodes)
    if impl == 'rust-per-call':
        g, listed = graph(n, 'rust'), candidates(index)

        def run(x):
            return g.decide(x, 3, 1000.0, listed, *SCORING)
    else:
        keep = None if impl == 'rust-all-matches' else 1

        def run(x):
            return index.decide(x, 3, 1000.0, *SCORING, max_matches=keep)

    benchmark.pedantic(run, setup=lambda: ((next(it),), {}), rounds=len(nodes), iterations=1)
    record_percentiles(benchmark)
    decisions = [index.decide(x, 3, 1000.0, *SCORING) for x in nodes[:200]]
    benchmark.extra_info['matched_share'] = round(sum(1 for d in decisions if d[0]) / len(decisions), 3)


@functools.cache
def stream(n: int, count: int) -> list[tuple[int, int, float]]:
    return mapgen.events(enterprise_map(n), count, seed=2, start=1000.0)


BATCH_RUNS = {
    'rust-1': ('rust', 1, WORK_CAP),
    'rust-2': ('rust', 2, WORK_CAP),
    'rust-1-cap10k': ('rust', 1, 10_000),
    'rust-2-cap10k': ('rust', 2, 10_000),
    'python': ('python', 1, WORK_CAP),
}


@sizes
@pytest.mark.parametrize('run', list(BATCH_RUNS))
def test_batch(benchmark, n, run):
    """Batches at the plugin's default work cap, and at a tenth of it to show what the hub events cost."""
    impl, threads, work_cap = BATCH_RUNS[run]
    index = incident_index(n, impl, 20)
    events = stream(n, BATCH_EVENTS[impl])
    benchmark.group = f'batch {size_id(n)}'
    decisions = benchmark.pedantic(
        index.decide_batch,
        (events, DEPTH, work_cap, *SCORING[2:]),
        {'threads': threads, 'max_matches': 1},
        rounds=3 if impl == 'rust' else 1,
        iterations=1,
    )
    benchmark.extra_info['events'] = len(events)
    benchmark.extra_info['work_cap'] = work_cap
    benchmark.extra_info['decisions_per_s'] = round(len(events) / benchmark.stats.stats.median)
    benchmark.extra_info['capped'] = sum(1 for d in decisions if d[1])
    benchmark.extra_info['storm_share'] = 0.3


def test_generator_walk_profile(benchmark):
    """Not a speed figure: the shape of the generated maps (edges per node, walk sizes, hubs)."""
    benchmark.group = 'map profile'
    profile = {}

    def measure():
        for n in SIZES:
            g = graph(n, 'rust')
            touched = sorted(sum(g.reach(x, DEPTH, 10**9)[:2]) for x in sample_nodes(n, 2000, seed=11))
            hubs = [sum(g.reach(x, DEPTH, 10**9)[:2]) for x in enterprise_map(n).core_switches]
            profile[size_id(n)] = {
                'edges_per_node': round(g.edge_count / n, 2),
                'touched_median': touched[len(touched) // 2],
                'touched_mean': round(sum(touched) / len(touched)),
                'touched_p99': touched[int(len(touched) * 0.99)],
                'core_switch': max(hubs),
                **{f'walk_{k}': round(v, 2) for k, v in mapgen.walk_stats(enterprise_map(n)).items()},
            }

    benchmark.pedantic(measure, rounds=1, iterations=1)
    benchmark.extra_info.update({f'{k}_{m}': v for k, d in profile.items() for m, v in d.items()})
