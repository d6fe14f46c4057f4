"""The compiled core equals the fallback exactly on random maps and queries, and the engine's invariants hold.

Each comparison builds the same random map on both backends and asks the same question; results
must match bit for bit (floats by their hex form), paths, counts and flags included, and so must
the error raised for a malformed input.
"""

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from business_application.correlation.errors import GraphError

from .engine_maps import LIMITS, Map, decide_queries, exact, maps, members

# Small maps and these example counts keep the whole tier well under a minute; raise them locally
# (or with a Hypothesis profile) for a deeper search.
COMPARE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
INVARIANT = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def both(compiled, fallback, graph_map: Map):
    return compiled(*graph_map.args), fallback(*graph_map.args)


@COMPARE
@given(graph_map=maps())
def test_prop_backends_build_the_same_map(compiled, fallback, graph_map):
    rust, python = both(compiled, fallback, graph_map)
    assert (rust.node_count, rust.edge_count, rust.skipped_self_loops) == (
        python.node_count,
        python.edge_count,
        python.skipped_self_loops,
    )
    for x in range(rust.node_count):
        assert rust.footprint(x) == python.footprint(x)
        assert rust.maintenance_scope(x) == python.maintenance_scope(x)


@COMPARE
@given(data=st.data(), graph_map=maps())
def test_prop_backends_decide_alike(compiled, fallback, data, graph_map):
    rust, python = both(compiled, fallback, graph_map)
    for _ in range(2):
        query = data.draw(decide_queries(len(graph_map.kinds)))
        assert exact(rust.decide(*query)) == exact(python.decide(*query))


@COMPARE
@given(data=st.data(), graph_map=maps(typed=True, max_nodes=40))
def test_prop_backends_decide_alike_on_typed_maps(compiled, fallback, data, graph_map):
    rust, python = both(compiled, fallback, graph_map)
    for _ in range(2):
        query = data.draw(decide_queries(len(graph_map.kinds), odd_floats=False))
        assert exact(rust.decide(*query)) == exact(python.decide(*query))


@COMPARE
@given(data=st.data(), graph_map=maps())
def test_prop_backends_rank_and_blast_alike(compiled, fallback, data, graph_map):
    rust, python = both(compiled, fallback, graph_map)
    n = len(graph_map.kinds)
    for _ in range(2):
        nodes = data.draw(st.lists(members(n), max_size=6))
        depth, work_cap = data.draw(LIMITS)
        assert rust.rank_upstream(nodes, depth, work_cap) == python.rank_upstream(nodes, depth, work_cap)
        assert rust.blast_radius(nodes, depth, work_cap) == python.blast_radius(nodes, depth, work_cap)


@COMPARE
@given(
    kinds=st.lists(st.integers(-1, 6), max_size=4),
    edges=st.lists(st.tuples(st.integers(-1, 4), st.integers(-1, 4), st.integers(-1, 8)), max_size=4),
    drop=st.sampled_from([None, 'src', 'dst', 'kind', 'group']),
)
def test_prop_backends_reject_malformed_maps_alike(compiled, fallback, kinds, edges, drop):
    args = {
        'kinds': kinds,
        'src': [e[0] for e in edges],
        'dst': [e[1] for e in edges],
        'kind': [e[2] for e in edges],
        'group': [-1] * len(edges),
    }
    if drop is not None and edges:
        args[drop] = args[drop][:-1]
    outcomes = []
    for cls in (compiled, fallback):
        try:
            graph = cls(*args.values())
            outcomes.append(('built', graph.edge_count, graph.skipped_self_loops))
        except GraphError as exc:
            outcomes.append(('error', str(exc)))
    assert outcomes[0] == outcomes[1]


@COMPARE
@given(data=st.data(), graph_map=maps(), queries=st.integers(0, 3))
def test_prop_backends_reject_bad_queries_alike(compiled, fallback, data, graph_map, queries):
    rust, python = both(compiled, fallback, graph_map)
    n = len(graph_map.kinds)
    node = data.draw(st.integers(-3, n + 2))
    ids = data.draw(st.lists(st.integers(-3, n + 2), max_size=4))
    depth, work_cap = data.draw(st.integers(-2, 3)), data.draw(st.integers(-2, 3))
    severity = data.draw(st.integers(-1, 4))
    calls = [
        lambda g: g.footprint(node),
        lambda g: g.decide(node, severity, 0.0, [(severity, None, ids)], depth, work_cap, 0.0, 60.0, 0.8, 0.6, 0.4),
        lambda g: g.rank_upstream(ids, depth, work_cap),
        lambda g: g.blast_radius(ids, depth, work_cap),
    ]
    outcomes = []
    for graph in (rust, python):
        try:
            outcomes.append(('ok', exact(calls[queries](graph))))
        except GraphError as exc:
            outcomes.append(('error', str(exc)))
    assert outcomes[0] == outcomes[1]


@INVARIANT
@given(data=st.data(), graph_map=maps(), other=maps(max_nodes=15))
def test_prop_decide_ignores_a_disconnected_component(graph_class, data, graph_map, other):
    query = data.draw(decide_queries(len(graph_map.kinds)))
    alone = graph_class(*graph_map.args)
    joined = graph_class(*graph_map.with_component(other).args)
    assert exact(joined.decide(*query)) == exact(alone.decide(*query))


@INVARIANT
@given(graph_map=maps(typed=True, max_nodes=20), depth=st.integers(0, 6))
def test_prop_link_symmetry(graph_class, graph_map, depth):
    """If a links to b through a single-member candidate, b links to a with the same link class."""
    graph = graph_class(*graph_map.args)
    n = len(graph_map.kinds)
    every_node = [(3, None, [b]) for b in range(n)]
    links = {}
    for a in range(n):
        matches, capped, _ = graph.decide(a, 3, 0.0, every_node, depth, 10**9, 0.0, 60.0, 0.8, 0.6, 0.4)
        assert not capped
        links.update({(a, m[0]): m[2] for m in matches})
    assert {(b, a): link for (a, b), link in links.items()} == links


@INVARIANT
@given(data=st.data(), graph_map=maps())
def test_prop_blast_radius_down_grows_with_the_failing_set(graph_class, data, graph_map):
    graph = graph_class(*graph_map.args)
    n = len(graph_map.kinds)
    failing = data.draw(st.lists(members(n), max_size=4))
    more = failing + data.draw(st.lists(members(n), min_size=1, max_size=3))
    depth = data.draw(st.integers(0, 6))
    down, _, capped = graph.blast_radius(failing, depth, 10**9)
    down_more, _, capped_more = graph.blast_radius(more, depth, 10**9)
    assume(not capped and not capped_more)
    assert set(down) <= set(down_more)


@pytest.mark.parametrize('typed', [False, True])
def test_generated_maps_exercise_every_edge_kind(typed):
    """Guards the generator: the maps it draws use every edge kind, redundancy groups and self-loops."""
    seen_kinds, groups, self_loops = set(), set(), 0

    @settings(max_examples=25, deadline=None, database=None)
    @given(graph_map=maps(typed=typed))
    def collect(graph_map):
        nonlocal self_loops
        seen_kinds.update(graph_map.kind)
        groups.update(g for g, k in zip(graph_map.group, graph_map.kind, strict=True) if k == 1)
        self_loops += sum(s == d for s, d in zip(graph_map.src, graph_map.dst, strict=True))

    collect()
    assert seen_kinds == set(range(7))
    assert len(groups) >= 2
    assert self_loops > 0


def _with_repeats(data, items: list) -> list:
    """``items`` with some of them repeated at later places (the first place of each stays first)."""
    out = list(items)
    for _ in range(data.draw(st.integers(0, 6)) if items else 0):
        item = data.draw(st.sampled_from(items))
        out.insert(data.draw(st.integers(out.index(item) + 1, len(out))), item)
    return out


@INVARIANT
@given(data=st.data(), graph_map=maps())
def test_prop_repeated_members_change_no_decision(graph_class, data, graph_map):
    """Members repeating a node (many alerts on one host) decide as the node named once at its first place, the
    member that linked aside: the first of equally linked members wins."""
    graph = graph_class(*graph_map.args)
    node, severity, time, candidates, *rest = data.draw(decide_queries(len(graph_map.kinds)))
    repeated = [(s, last, _with_repeats(data, list(dict.fromkeys(nodes)))) for s, last, nodes in candidates]
    once = [(s, last, list(dict.fromkeys(nodes))) for s, last, nodes in repeated]
    matches, capped, visited = graph.decide(node, severity, time, repeated, *rest)
    matches_once, capped_once, visited_once = graph.decide(node, severity, time, once, *rest)
    assert (capped, visited) == (capped_once, visited_once)
    assert exact([m[:6] + m[7:] for m in matches]) == exact([m[:6] + m[7:] for m in matches_once])
    # The member that linked is the first one naming the node that linked once.
    for m, m_once in zip(matches, matches_once, strict=True):
        members = repeated[m[0]][2]
        assert m[6] == members.index(once[m[0]][2][m_once[6]])


@INVARIANT
@given(data=st.data(), graph_map=maps())
def test_prop_repeated_failing_nodes_change_no_blast_radius(graph_class, data, graph_map):
    """Failing nodes named several times (an incident's members on one host) give the radius of each named once, at
    its first place, capped walks included."""
    graph = graph_class(*graph_map.args)
    failing = list(dict.fromkeys(data.draw(st.lists(members(len(graph_map.kinds)), max_size=5))))
    depth, work_cap = data.draw(LIMITS)
    repeated = _with_repeats(data, failing)
    assert graph.blast_radius(repeated, depth, work_cap) == graph.blast_radius(failing, depth, work_cap)
