"""Attack 10 on c3ade41 (walk marks of one byte, places found by scanning the recorded list).

Guards: decisions, paths and statistics past the byte's range (distance >= 254), through the terminal-edge rule's
``via`` expansions, under the work cap and on maps of different sizes in one process, agree between the backends.

Bug (fixed): a node's place (its parent, for a match's path, and its distance past 253) was found by a linear scan of
every recorded node at its distance, so tracing many paths through one wide layer (every match of a hub's alert kept,
as the plugin decides) or one deep path past distance 253 was quadratic. Lookups now build a map of the places once
their scans have read as many entries as the list holds; the engine's unit tests (``walk.rs``) bound what they read.
The timing tests that found it are not kept (speed lives in ``bench/``); the agreement tests below are.
"""

import pytest

from business_application.correlation.backend import index_class_for, load_graph_class
from business_application.correlation.kinds import CLUSTER, CLUSTER_MEMBER, DEPENDS, DEVICE, REDUNDANT, SERVICE

SCORING = (0.0, 60.0, 0.8, 0.6, 0.4)


def raw(backend, kinds, edges):
    cls = load_graph_class(backend)
    return cls(
        list(kinds),
        [e[0] for e in edges],
        [e[1] for e in edges],
        [e[2] for e in edges],
        [e[3] if len(e) == 4 else -1 for e in edges],
    )


def both(kinds, edges):
    return raw('rust', kinds, edges), raw('python', kinds, edges)


def decide(graph, node, candidates, depth, work_cap=10**6):
    return graph.decide(node, 3, 0.0, list(candidates), depth, work_cap, *SCORING)


def via_map():
    """A DEPENDS chain 0 -> 1 -> ... -> 299; 0 -R-> 300 (recorded at distance 1, not expanded), 280 -> 300 (so 300 is
    expanded at distance 281, via 280); 300 -> 301 -> 302; a device 303 member of cluster 304 reached the same way."""
    edges = [(i, i + 1, DEPENDS) for i in range(299)]
    edges += [(0, 300, REDUNDANT, 7), (280, 300, DEPENDS), (300, 301, DEPENDS), (301, 302, DEPENDS)]
    kinds = [SERVICE] * 303
    return kinds, edges


@pytest.mark.parametrize('depth', [253, 254, 255, 256, 281, 282, 283, 1000])
def test_via_expansion_past_the_saturated_mark_traces_the_same_path(depth):
    kinds, edges = via_map()
    rust, python = both(kinds, edges)
    candidates = [(3, None, [n]) for n in (300, 301, 302, 299, 253, 254, 255)]
    a, b = decide(rust, 0, candidates, depth), decide(python, 0, candidates, depth)
    assert a == b
    by_member = {m[0]: m[7] for m in a[0]}
    assert by_member[0] == [0, 300]  # recorded through the redundancy edge: its first parent
    if depth >= 282:
        assert by_member[1] == [*range(281), 300, 301]
    # Upstream from the end of the chain: the far nodes' distances are read from the list.
    up_a = decide(rust, 302, candidates, depth)
    assert up_a == decide(python, 302, candidates, depth)


@pytest.mark.parametrize('work_cap', [0, 1, 253, 254, 255, 280, 281, 299, 300, 301])
def test_deep_walks_under_the_work_cap_agree(work_cap):
    kinds, edges = via_map()
    rust, python = both(kinds, edges)
    candidates = [(3, None, [n]) for n in range(0, 303, 7)]
    for node in (0, 150, 302):
        assert decide(rust, node, candidates, 1000, work_cap) == decide(python, node, candidates, 1000, work_cap)
        assert rust.reach(node, 1000, work_cap) == python.reach(node, 1000, work_cap)
    failing = [0, 300, 254]
    assert rust.blast_radius(failing, 1000, work_cap) == python.blast_radius(failing, 1000, work_cap)
    assert rust.rank_upstream(failing + [302], 1000, work_cap) == python.rank_upstream(failing + [302], 1000, work_cap)


def test_cluster_member_terminal_edge_past_the_saturated_mark():
    """Device 300 at the end of a 300-hop chain of devices carried by cables? Simpler: a long DEPENDS chain whose end
    is carried by a device that is a member of a cluster; the cluster is recorded through CLUSTER_MEMBER."""
    kinds = [SERVICE] * 300 + [DEVICE, CLUSTER]
    edges = [(i, i + 1, DEPENDS) for i in range(299)] + [(300, 0, 2), (300, 301, CLUSTER_MEMBER)]
    rust, python = both(kinds, edges)
    candidates = [(3, None, [n]) for n in (301, 299, 256, 0)]
    for depth in (254, 255, 300, 301):
        for node in (300, 299, 301):
            assert decide(rust, node, candidates, depth) == decide(python, node, candidates, depth)


def test_marks_of_a_big_map_reused_on_small_ones_and_back_on_two_threads():
    """Batches on two threads over a big deep map, then a small one, then the big one again, in one process."""
    big_kinds, big_edges = via_map()
    small_kinds = [SERVICE] * 4
    small_edges = [(0, 1, DEPENDS), (1, 2, REDUNDANT, 1), (2, 3, DEPENDS)]
    results = {}
    for backend in ('rust', 'python'):
        out = []
        for kinds, edges, n in ((big_kinds, big_edges, 303), (small_kinds, small_edges, 4)) * 2:
            graph = raw(backend, kinds, edges)
            index = index_class_for(graph)(graph)
            for key in range(0, n, max(1, n // 20)):
                index.add_incident(key, 3, None, [key, (key * 7) % n])
            events = [(x % n, 3, 0.0) for x in range(0, 2 * n, 3)]
            out.append(index.decide_batch(events, 1000, 10**6, *SCORING, threads=2))
            out.append(index.decide_batch(events, 255, 200, *SCORING, threads=2, max_matches=1))
        results[backend] = out
    assert results['rust'] == results['python']


def _hub_index(backend, leaves):
    """A service every one of ``leaves`` services depends on, and one live incident on each of them."""
    graph = raw(backend, [SERVICE] * (leaves + 1), [(0, x, DEPENDS) for x in range(1, leaves + 1)])
    index = index_class_for(graph)(graph)
    for x in range(1, leaves + 1):
        index.add_incident(x, 3, None, [x])
    return index


def test_every_match_through_a_wide_layer_is_traced_alike():
    """The plugin's own shape (depth 3, every match kept): an alert on a hub service that 3,000 services depend on,
    one live incident on each. Every path is [hub, leaf]; the compiled core finds each leaf's parent among the
    3,000 nodes at distance 1 (its unit tests bound what those lookups read: at most about twice the list)."""
    scoring = (3, 10**6, *SCORING)
    rust, python = (_hub_index(backend, 3000).decide(0, 3, 0.0, *scoring) for backend in ('rust', 'python'))
    assert rust == python
    assert sorted(tuple(m[7]) for m in rust[0]) == [(0, x) for x in range(1, 3001)]


def test_a_deep_match_path_and_many_far_members_agree():
    """A chain of 3,000 services: a match at its end (a path of 3,000 nodes) and an incident of its 2,700 members
    past distance 253, whose distances are read from the recorded list."""
    n = 3000
    rust, python = both([SERVICE] * n, [(i, i + 1, DEPENDS) for i in range(n - 1)])
    for candidates in ([(3, None, [n - 1])], [(3, None, list(range(n - 1, 299, -1)))]):
        a = decide(rust, 0, candidates, n)
        assert a == decide(python, 0, candidates, n)
    assert decide(rust, 0, [(3, None, [n - 1])], n)[0][0][7] == list(range(n))
