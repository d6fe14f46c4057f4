"""decide: link classes, tie-breaks, decay, severity matching, threshold and ordering, on both backends."""

import pytest

from business_application.correlation.errors import GraphError
from business_application.correlation.kinds import APPLICATION, CABLE, CARRIES, DEPENDS, DEVICE, SERVICE, SUPPORTS


@pytest.fixture
def shop(build):
    """0 db, 1 api (depends on db), 2 web (depends on api): services; 3 server carrying db; 4 server
    carrying web; 5 switch cabled to 3; 6 app supported by web; 7 server also carrying db."""
    kinds = [SERVICE, SERVICE, SERVICE, DEVICE, DEVICE, DEVICE, APPLICATION, DEVICE]
    edges = [
        (0, 1, DEPENDS),
        (1, 2, DEPENDS),
        (3, 0, CARRIES),
        (4, 2, CARRIES),
        (5, 3, CABLE),
        (2, 6, SUPPORTS),
        (7, 0, CARRIES),
    ]
    return build(kinds, edges)


def test_match_tuple_shape(shop, decide):
    matches, capped, visited = decide(shop, 3, [(3, None, [7])])
    assert matches == [(0, 0.8, 'service', 0.8, 1.0, 1.0, 0, [0], 'same')]
    assert capped is False
    assert isinstance(visited, int)


def test_same_object_and_shared_service_are_service_links(shop, decide):
    matches, _, _ = decide(shop, 3, [(3, None, [3]), (3, None, [0]), (3, None, [7])])
    assert [(m[0], m[2], m[7], m[8]) for m in matches] == [
        (0, 'service', [3], 'same'),
        (1, 'service', [0], 'same'),
        (2, 'service', [0], 'same'),
    ]


def test_dependency_beats_infrastructure_and_paths_run_from_the_event(shop, decide):
    # from server 3 (footprint 3, db): web is reached by the pure walk, the switch only by the mixed one
    matches, _, _ = decide(shop, 3, [(3, None, [2]), (3, None, [5]), (3, None, [4]), (3, None, [6])])
    assert [(m[0], m[2], m[3], m[7], m[8]) for m in matches] == [
        (0, 'dependency', 0.6, [0, 1, 2], 'downstream'),
        (2, 'dependency', 0.6, [0, 1, 2], 'downstream'),  # server 4 carries web
        (1, 'infrastructure', 0.4, [3, 5], 'upstream'),
        (3, 'infrastructure', 0.4, [0, 1, 2, 6], 'downstream'),  # SUPPORTS is not a pure edge
    ]


def test_nearest_node_then_down_before_up_then_footprint_order(build, decide):
    # 2 -> 0 -> 1 and 0 -> 3; device 9 carries 1, 2 and 3
    kinds = [SERVICE] * 4 + [DEVICE] * 6
    graph = build(
        kinds, [(2, 0, DEPENDS), (0, 1, DEPENDS), (0, 3, DEPENDS), (9, 1, CARRIES), (9, 2, CARRIES), (9, 3, CARRIES)]
    )
    matches, _, _ = decide(graph, 0, [(3, None, [9])])
    # 1, 2 and 3 are all one hop away: down (1, 3) before up (2), then 1 comes first in the footprint
    assert [(m[2], m[7], m[8]) for m in matches] == [('dependency', [0, 1], 'downstream')]


def test_best_member_by_weight_then_distance_then_index(build, decide):
    # chain 0 -> 1 -> 2 -> 3; device 4 carries 0; switch 5 is cabled to device 4
    kinds = [SERVICE] * 4 + [DEVICE, DEVICE]
    graph = build(kinds, [(0, 1, DEPENDS), (1, 2, DEPENDS), (2, 3, DEPENDS), (4, 0, CARRIES), (5, 4, CABLE)])
    # members: switch (infrastructure), 3 (dependency at 3), 2 (dependency at 2), 2 again (same)
    matches, _, _ = decide(graph, 0, [(3, None, [5, 3, 2, 2, -1])])
    assert [(m[2], m[6], m[7]) for m in matches] == [('dependency', 2, [0, 1, 2])]
    # with dependency weighted above service, a dependency member beats a same-object member
    matches, _, _ = decide(graph, 0, [(3, None, [0, 1])], weights=(0.5, 0.9, 0.4))
    assert [(m[2], m[3], m[6]) for m in matches] == [('dependency', 0.9, 1)]


def test_unmapped_members_never_link(shop, decide):
    assert decide(shop, 3, [(3, None, [-1]), (3, None, [])])[0] == []
    matches, _, _ = decide(shop, 3, [(3, None, [-1, -1, 0])])
    assert [(m[0], m[6]) for m in matches] == [(0, 2)]


@pytest.mark.parametrize(
    ('time', 'last_activity', 'window_s', 'decay'),
    [
        (1000.0, None, 600.0, 1.0),
        (1000.0, 700.0, 600.0, 0.75),
        (1000.0, 400.0, 600.0, 0.5),
        (1000.0, 100.0, 600.0, 0.5),
        (1000.0, 1200.0, 600.0, 1.0),  # activity after the event: no decay
        (1000.0, 1000, 0.0, 1.0),
        (1000.0, 999.0, 0.0, 0.5),
        (1000.0, 999.0, -5.0, 0.5),
        (1000.0, 990.0, 30.0, 1.0 - 0.5 * (10.0 / 30.0)),
    ],
)
def test_decay(shop, decide, time, last_activity, window_s, decay):
    (match,), _, _ = decide(shop, 3, [(3, last_activity, [3])], time=time, window_s=window_s)
    assert match[4] == decay
    assert match[1] == (0.8 * decay) * 1.0


@pytest.mark.parametrize(
    ('event', 'candidate', 'factor'), [(3, 3, 1.0), (3, 1, 0.8), (0, 3, 1.0 - 0.1 * 3), (2, 1, 0.9)]
)
def test_severity_factor(shop, decide, event, candidate, factor):
    (match,), _, _ = decide(shop, 3, [(candidate, 700.0, [5])], severity=event)
    assert match[5] == factor
    assert match[1] == (0.4 * 0.75) * factor


def test_threshold_is_inclusive_and_matches_sort_by_score_then_index(shop, decide):
    candidates = [(3, None, [5]), (3, None, [2]), (3, None, [0]), (3, None, [4]), (2, None, [0])]
    matches, _, _ = decide(shop, 3, candidates, threshold=0.6)
    assert [(m[0], m[1]) for m in matches] == [(2, 0.8), (4, 0.8 * 0.9), (1, 0.6), (3, 0.6)]
    matches, _, _ = decide(shop, 3, candidates, threshold=0.61)
    assert [m[0] for m in matches] == [2, 4]


def test_no_candidates_still_walks(shop, decide):
    matches, capped, visited = decide(shop, 3, [])
    assert (matches, capped) == ([], False)
    assert visited > 0


@pytest.mark.parametrize(
    ('node', 'severity', 'candidates', 'depth', 'work_cap', 'message'),
    [
        (8, 3, [], 5, 10, "node 8 is outside the map's 8 nodes"),
        (-1, 3, [], 5, 10, "node -1 is outside the map's 8 nodes"),
        (0, 4, [], 5, 10, 'severity 4 is outside 0..3'),
        (0, 3, [(3, None, [0, -2])], 5, 10, "candidate 0, member 1: node -2 is outside the map's 8 nodes"),
        (0, 3, [(3, None, [0]), (7, None, [0])], 5, 10, 'candidate 1: severity 7 is outside 0..3'),
        (0, 3, [(3, None, [0])], -1, 10, 'depth must be >= 0, got -1'),
        (0, 3, [(3, None, [0])], 1, -10, 'work_cap must be >= 0, got -10'),
        (0, 3, [(3, None)], 1, 1, 'candidates[0] is not a (severity, last_activity, members) triple'),
        (0, 3, [5], 1, 1, 'candidates[0] is not a (severity, last_activity, members) triple'),
        (0, 3, [(3.5, None, [])], 1, 1, 'candidates[0] severity is not a 64-bit integer'),
        (0, 3, [(3, 'now', [])], 1, 1, 'candidates[0] last_activity is not a number or None'),
        (0, 3, [(3, None, [0, 'x'])], 1, 1, 'candidates[0] members[1] is not a 64-bit integer'),
        (0, 3, 7, 1, 1, 'candidates is not a sequence'),
        # arguments are checked in signature order: the node before the candidates
        (9, 3, [(3, None, [9])], -1, 1, "node 9 is outside the map's 8 nodes"),
    ],
)
def test_decide_errors(shop, decide, node, severity, candidates, depth, work_cap, message):
    with pytest.raises(GraphError) as info:
        shop.decide(node, severity, 0.0, candidates, depth, work_cap, 0.0, 60.0, 0.8, 0.6, 0.4)
    assert str(info.value) == message


def test_candidates_as_lists_and_ints_as_floats(shop):
    matches, _, _ = shop.decide(3, 3, 1000, [[3, 700, [3]]], 5, 100, 0, 600, 1, 1, 1)
    assert matches == [(0, 0.75, 'service', 1.0, 0.75, 1.0, 0, [3], 'same')]
    assert all(type(v) is float for v in matches[0][1:6] if not isinstance(v, str))


def test_one_graph_serves_concurrent_queries(shop):
    """The map is immutable and the compiled core releases the GIL while walking: threads share one graph."""
    from concurrent.futures import ThreadPoolExecutor

    candidates = [(3, None, [2]), (2, 700.0, [5, -1]), (3, None, [0])]
    expected = shop.decide(3, 3, 1000.0, candidates, 5, 100, 0.0, 600.0, 0.8, 0.6, 0.4)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda _: shop.decide(3, 3, 1000.0, candidates, 5, 100, 0.0, 600.0, 0.8, 0.6, 0.4), range(200))
        )
    assert all(r == expected for r in results)
