"""The incident index decides exactly as per-call candidates do, and the compiled index equals the fallback's.

A random map gets a random history of index updates (incidents added and removed, members added,
severity and last activity changed), mirrored in a plain model. Each decision of the index must
equal, bit for bit, ``Graph.decide`` given the model's incidents as candidates in ascending key
order with the candidate index replaced by the key; batches must equal one decision per event for
any thread count; and both backends must agree on every answer and every error.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from business_application.correlation.backend import index_class_for
from business_application.correlation.errors import GraphError

from .engine_maps import decide_queries, exact, maps, members

COMPARE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = st.sampled_from([-(2**63), -5, 0, 3, 4, 17, 1000, 2**63 - 1])


@st.composite
def histories(draw: st.DrawFn, n: int) -> list[tuple]:
    """Index updates on a map of ``n`` nodes; some name missing keys, repeat keys or hold bad ids."""
    last = st.none() | st.sampled_from([0.0, 100.0, 999.5, float('nan')])
    # One id in ten names no node, so most additions succeed and some must be refused whole.
    node = st.integers(0, 9).flatmap(lambda roll: st.sampled_from([n, -2]) if roll == 0 else members(n))
    op = st.one_of(
        st.tuples(st.just('add'), KEYS, st.integers(0, 3) | st.just(4), last, st.lists(node, max_size=4)),
        st.tuples(st.just('member'), KEYS, node),
        st.tuples(st.just('update'), KEYS, st.integers(0, 3) | st.just(-1), last),
        st.tuples(st.just('remove'), KEYS),
    )
    valid_add = st.tuples(st.just('add'), KEYS, st.integers(0, 3), last, st.lists(members(n), min_size=1, max_size=4))
    first = draw(st.lists(valid_add, min_size=1, max_size=6, unique_by=lambda o: o[1]))
    return first + draw(st.lists(op, max_size=10))


def apply(index, op: tuple) -> object:
    """Runs one update; returns its result or the text of the ``GraphError`` it raised."""
    method = {'add': 'add_incident', 'member': 'add_member', 'update': 'update_incident', 'remove': 'remove_incident'}
    try:
        return getattr(index, method[op[0]])(*op[1:])
    except GraphError as exc:
        return f'GraphError: {exc}'


def candidates_of(index) -> tuple[list[int], list[tuple]]:
    """The index's incidents as ``Graph.decide`` candidates, in ascending key order."""
    keys = index.keys()
    return keys, [index.incident(key) for key in keys]


def by_key(decision: tuple, keys: list[int]) -> tuple:
    matches, capped, visited = decision
    return [(keys[m[0]], *m[1:]) for m in matches], capped, visited


@COMPARE
@given(data=st.data(), graph_map=maps(typed=True, max_nodes=40))
def test_prop_index_decides_like_candidates_in_key_order(graph_class, data, graph_map):
    graph = graph_class(*graph_map.args)
    index = index_class_for(graph)(graph)
    for op in data.draw(histories(len(graph_map.kinds))):
        apply(index, op)
    keys, candidates = candidates_of(index)
    for _ in range(3):
        node, severity, time, _, *settings_ = data.draw(decide_queries(len(graph_map.kinds)))
        expected = by_key(graph.decide(node, severity, time, candidates, *settings_), keys)
        assert exact(index.decide(node, severity, time, *settings_)) == exact(expected)


@COMPARE
@given(data=st.data(), graph_map=maps())
def test_prop_index_backends_agree_on_updates_decisions_and_batches(compiled, fallback, data, graph_map):
    n = len(graph_map.kinds)
    rust_graph, python_graph = compiled(*graph_map.args), fallback(*graph_map.args)
    rust, python = index_class_for(rust_graph)(rust_graph), index_class_for(python_graph)(python_graph)
    for op in data.draw(histories(n)):
        assert exact(apply(rust, op)) == exact(apply(python, op))
        assert exact(candidates_of(rust)) == exact(candidates_of(python))

    queries = data.draw(st.lists(decide_queries(n), min_size=1, max_size=4))
    settings_ = queries[0][4:]
    events = [q[:3] for q in queries]
    one_by_one = [rust.decide(*event, *settings_) for event in events]
    for index in (rust, python):
        for threads in (1, 2, 3):
            assert exact(index.decide_batch(events, *settings_, threads=threads)) == exact(one_by_one)
    assert exact([python.decide(*event, *settings_) for event in events]) == exact(one_by_one)

    keep = data.draw(st.integers(0, 3))
    best = [(matches[:keep], capped, visited) for matches, capped, visited in one_by_one]
    for index in (rust, python):
        assert exact(index.decide_batch(events, *settings_, threads=2, max_matches=keep)) == exact(best)
        assert exact(index.decide(*events[0], *settings_, max_matches=keep)) == exact(best[0])


@COMPARE
@given(
    data=st.data(),
    graph_map=maps(max_nodes=10),
    events=st.lists(st.tuples(st.integers(-2, 12), st.integers(-1, 4), st.sampled_from([0.0, 1.5, 'x'])), max_size=4),
    threads=st.integers(-1, 2),
    limits=st.tuples(st.integers(-1, 3), st.integers(-1, 3)),
    max_matches=st.none() | st.integers(-1, 1),
)
def test_prop_index_backends_reject_bad_batches_alike(
    compiled, fallback, data, graph_map, events, threads, limits, max_matches
):
    outcomes = []
    for graph_class in (compiled, fallback):
        graph = graph_class(*graph_map.args)
        index = index_class_for(graph)(graph)
        try:
            scoring = (*limits, 0.0, 60.0, 0.8, 0.6, 0.4)
            outcomes.append(exact(index.decide_batch(events, *scoring, threads=threads, max_matches=max_matches)))
        except GraphError as exc:
            outcomes.append(f'GraphError: {exc}')
    assert outcomes[0] == outcomes[1]
