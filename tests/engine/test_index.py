"""IncidentIndex and decide_batch through the DependencyGraph wrapper, on both backends.

The index's decisions are compared with per-call candidates in tests/property; here: the wrapper's
typed answers, updates that refuse bad input without changing anything, work-cap hits reported per
event by a batch, and thread counts that never change an answer.
"""

import pytest

from business_application.correlation.errors import GraphError
from business_application.correlation.graph import Decision, DependencyGraph, IncidentIndex, Reach
from business_application.correlation.kinds import CABLE, CARRIES, DEPENDS, DEVICE, SERVICE

from .conftest import BACKENDS, WEIGHTS

# depth, work_cap, threshold, window_s and the three weights
SCORING = (5, 10_000, 0.0, 600.0, *WEIGHTS)


@pytest.fixture(params=BACKENDS)
def shop(request) -> DependencyGraph:
    """0 db, 1 api (depends on db), 2 web (depends on api); 3 server carrying db; 4 server carrying
    web; 5 switch cabled to both servers; 6..25 services that all depend on db (a small hub)."""
    kinds = [SERVICE, SERVICE, SERVICE, DEVICE, DEVICE, DEVICE] + [SERVICE] * 20
    edges = [(0, 1, DEPENDS), (1, 2, DEPENDS), (3, 0, CARRIES), (4, 2, CARRIES), (5, 3, CABLE), (5, 4, CABLE)]
    edges += [(0, x, DEPENDS) for x in range(6, 26)]
    return DependencyGraph.build(
        kinds,
        [e[0] for e in edges],
        [e[1] for e in edges],
        [e[2] for e in edges],
        [-1] * len(edges),
        backend=request.param,
    )


@pytest.fixture
def index(shop) -> IncidentIndex:
    index = shop.incident_index()
    index.add_incident(30, 3, None, [2])  # web
    index.add_incident(10, 3, 400.0, [-1, 4])  # unmapped, then the web server
    return index


def test_index_answers_with_incident_keys_as_the_wrapper_types_them(shop, index):
    decision = index.decide(3, 3, 1000.0, *SCORING)
    assert isinstance(decision, Decision)
    assert [(m.candidate, m.link, m.member, m.path) for m in decision.matches] == [
        (30, 'dependency', 0, (0, 1, 2)),
        (10, 'dependency', 1, (0, 1, 2)),
    ]
    # The same as per-call candidates in ascending key order, keys standing in for positions.
    listed = [index.incident(key) for key in index.keys()]
    per_call = shop.decide(3, 3, 1000.0, listed, *SCORING)
    assert [m.candidate for m in per_call.matches] == [1, 0]
    assert [m.score for m in per_call.matches] == [m.score for m in decision.matches]
    assert shop.reach(3, 5, 100) == Reach(down=22, up=1, capped=False)


def test_updates_change_decisions_and_bad_updates_change_nothing(index):
    assert len(index) == 2
    assert 10 in index
    assert 11 not in index
    with pytest.raises(GraphError, match=r'^incident 10 already exists$'):
        index.add_incident(10, 1, None, [0])
    with pytest.raises(GraphError, match=r"^incident 11, member 1: node 99 is outside the map's 26 nodes$"):
        index.add_incident(11, 1, None, [0, 99])
    with pytest.raises(GraphError, match=r'^incident 11: severity 7 is outside 0..3$'):
        index.add_incident(11, 7, None, [0])
    with pytest.raises(GraphError, match=r'^incident 12 is not in the index$'):
        index.add_member(12, 0)
    with pytest.raises(GraphError, match=r'^incident 10: severity -1 is outside 0..3$'):
        index.update_incident(10, -1, None)
    assert index.keys() == [10, 30]
    assert index.incident(10) == (3, 400.0, [-1, 4])

    assert index.add_member(10, 3) == 2  # the db server: now a service link for an event on it
    index.update_incident(10, 1, None)
    best = index.decide(3, 3, 1000.0, *SCORING).matches[0]
    assert (best.candidate, best.link, best.member, best.severity_factor) == (10, 'service', 2, 0.8)

    assert index.remove_incident(10) is True
    assert index.remove_incident(10) is False
    assert [m.candidate for m in index.decide(3, 3, 1000.0, *SCORING).matches] == [30]


def test_batch_reports_the_work_cap_per_event_in_input_order(index):
    # An event on db walks 22 nodes down; a cap of 5 stops it. One on the web server walks little.
    events = [(0, 3, 1000.0), (4, 3, 1000.0), (0, 2, 1001.0), (2, 3, 1002.0)]
    capped_scoring = (5, 5, *SCORING[2:])
    one = index.decide_batch(events, *capped_scoring)
    assert [d.capped for d in one] == [True, False, True, False]
    assert [(m.candidate, m.link, m.decay) for m in one[1].matches] == [(30, 'service', 1.0), (10, 'service', 0.5)]
    assert one == tuple(index.decide(*event, *capped_scoring) for event in events)
    for threads in (2, 3, 16):
        assert index.decide_batch(events, *capped_scoring, threads=threads) == one
    assert all(not d.capped for d in index.decide_batch(events, *SCORING))


def test_batch_refuses_bad_events_and_thread_counts_naming_them(index):
    with pytest.raises(GraphError, match=r"^events\[1\]: node 26 is outside the map's 26 nodes$"):
        index.decide_batch([(0, 3, 1.0), (26, 3, 1.0)], *SCORING)
    with pytest.raises(GraphError, match=r'^events\[0\]: severity 4 is outside 0..3$'):
        index.decide_batch([(0, 4, 1.0)], *SCORING)
    with pytest.raises(GraphError, match=r'^events\[0\] is not a \(node, severity, time\) triple'):
        index.decide_batch([(0, 3)], *SCORING)
    with pytest.raises(GraphError, match=r'^threads must be >= 1, got 0$'):
        index.decide_batch([(0, 3, 1.0)], *SCORING, threads=0)
    with pytest.raises(GraphError, match=r'^work_cap must be >= 0, got -1$'):
        index.decide_batch([(0, 3, 1.0)], 5, -1, *SCORING[2:])
    assert index.decide_batch([], *SCORING) == ()
