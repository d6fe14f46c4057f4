"""The walk rules of docs/engine-api.md, observed through decide on both backends."""

from business_application.correlation.kinds import (
    CABLE,
    CARRIES,
    CLUSTER,
    CLUSTER_MEMBER,
    DEPENDS,
    DEVICE,
    HOSTS,
    REDUNDANT,
    SERVICE,
    VM,
)


def links(result):
    """``{candidate: (link, member, path, direction)}`` of a decide result."""
    return {m[0]: (m[2], m[6], m[7], m[8]) for m in result[0]}


def test_down_walk_ends_on_a_redundancy_edge(build, decide):
    # 0 -R-> 1 -> 2: a link may end on the redundancy edge but not continue past it
    graph = build([SERVICE] * 3, [(0, 1, REDUNDANT, 7), (1, 2, DEPENDS)])
    result = decide(graph, 0, [(3, None, [1]), (3, None, [2])])
    assert links(result) == {0: ('dependency', 0, [0, 1], 'downstream')}


def test_down_walk_expands_a_node_reached_again_without_a_terminal_edge(build, decide):
    # 0 -R-> 1 and 0 -> 2 -> 1 -> 3: node 1 is recorded at distance 1 but expanded at 2
    graph = build([SERVICE] * 4, [(0, 1, REDUNDANT, 1), (0, 2, DEPENDS), (2, 1, DEPENDS), (1, 3, DEPENDS)])
    result = decide(graph, 0, [(3, None, [3]), (3, None, [1])], depth=3)
    assert links(result) == {
        0: ('dependency', 0, [0, 2, 1, 3], 'downstream'),
        1: ('dependency', 0, [0, 1], 'downstream'),
    }
    assert decide(graph, 0, [(3, None, [3])], depth=2)[0] == []


def test_up_walk_follows_a_terminal_edge_only_from_a_source(build, decide):
    # 1 -R-> 0, 2 -> 0, 3 -R-> 2, 4 -> 2
    graph = build([SERVICE] * 5, [(1, 0, REDUNDANT, 1), (2, 0, DEPENDS), (3, 2, REDUNDANT, 1), (4, 2, DEPENDS)])
    result = decide(graph, 0, [(3, None, [1]), (3, None, [3]), (3, None, [4])])
    assert links(result) == {0: ('dependency', 0, [0, 1], 'upstream'), 2: ('dependency', 0, [0, 2, 4], 'upstream')}


def test_cluster_membership_is_terminal(build, decide):
    # hosts 0 and 1 in cluster 2, which hosts VM 3 (no known host) carrying service 4
    kinds = [DEVICE, DEVICE, CLUSTER, VM, SERVICE]
    graph = build(kinds, [(0, 2, CLUSTER_MEMBER), (1, 2, CLUSTER_MEMBER), (2, 3, HOSTS), (3, 4, CARRIES)])
    # one host's event does not reach the cluster's VM, nor the other host
    assert decide(graph, 0, [(3, None, [3]), (3, None, [1])])[0] == []
    # the cluster's own event reaches its hosts (terminal edge from a source)...
    assert links(decide(graph, 2, [(3, None, [0])])) == {0: ('infrastructure', 0, [2, 0], 'upstream')}
    # ...but the VM's event stops at the cluster
    assert links(decide(graph, 3, [(3, None, [2]), (3, None, [1])])) == {
        0: ('infrastructure', 0, [3, 2], 'upstream'),
    }


def test_depth_limit(build, decide):
    graph = build([SERVICE] * 5, [(0, 1, DEPENDS), (1, 2, DEPENDS), (2, 3, DEPENDS), (3, 4, DEPENDS)])
    candidates = [(3, None, [2]), (3, None, [3])]
    assert links(decide(graph, 0, candidates, depth=2)) == {0: ('dependency', 0, [0, 1, 2], 'downstream')}
    assert sorted(links(decide(graph, 0, candidates, depth=3))) == [0, 1]
    assert decide(graph, 0, candidates, depth=0) == ([], False, 0)


def test_cycles_terminate_and_the_nearest_direction_wins(build, decide):
    # 0 -> 1 -> 2 -> 0 plus a self-dependency on 1, which is skipped
    graph = build([SERVICE] * 3, [(0, 1, DEPENDS), (1, 2, DEPENDS), (2, 0, DEPENDS), (1, 1, DEPENDS)])
    assert graph.skipped_self_loops == 1
    result = decide(graph, 0, [(3, None, [2]), (3, None, [1])], depth=50)
    # 2 is two hops down but one hop up; 1 is one hop down
    assert links(result) == {0: ('dependency', 0, [0, 2], 'upstream'), 1: ('dependency', 0, [0, 1], 'downstream')}
    # each of the four walks discovers the two other services once
    assert result[1:] == (False, 8)


def test_work_cap_stops_the_walk_and_is_reported(build, decide):
    # 0 -> 1, 2, 3, 4, 5
    graph = build([SERVICE] * 6, [(0, n, DEPENDS) for n in range(1, 6)])
    candidates = [(3, None, [2]), (3, None, [3])]
    matches, capped, visited = decide(graph, 0, candidates, work_cap=2)
    assert [m[0] for m in matches] == [0]
    assert (capped, visited) == (True, 4)  # mixed down and pure down stop at 2; the up walks find nothing
    assert decide(graph, 0, candidates, work_cap=5)[1:] == (False, 10)
    assert decide(graph, 0, candidates, work_cap=0)[1:] == (True, 0)


def test_pure_walks_start_from_services_and_skip_infrastructure(build, decide):
    # device 0 carries services 1 and 2; 1 -> 3; switch 4 cabled to device 0
    graph = build(
        [DEVICE, SERVICE, SERVICE, SERVICE, DEVICE], [(0, 1, CARRIES), (0, 2, CARRIES), (1, 3, DEPENDS), (4, 0, CABLE)]
    )
    result = decide(graph, 1, [(3, None, [2]), (3, None, [3]), (3, None, [4]), (3, None, [0])])
    # from service 1, service 2 would need a walk up to the device and back down: no link; the
    # switch is two hops up through the device; the device's footprint holds service 1 itself
    assert links(result) == {
        1: ('dependency', 0, [1, 3], 'downstream'),
        2: ('infrastructure', 0, [1, 0, 4], 'upstream'),
        3: ('service', 0, [1], 'same'),
    }
    # the device's event: its own services are in its footprint; the switch is infrastructure upstream
    result = decide(graph, 0, [(3, None, [2]), (3, None, [3]), (3, None, [4])])
    assert links(result) == {
        0: ('service', 0, [2], 'same'),
        1: ('dependency', 0, [1, 3], 'downstream'),
        2: ('infrastructure', 0, [0, 4], 'upstream'),
    }


def test_a_healthy_shared_upstream_does_not_link(build, decide):
    # dns 0 serves 1 and 2; an event on 1 does not reach 2 (up to 0, but never back down)
    graph = build([SERVICE] * 3, [(0, 1, DEPENDS), (0, 2, DEPENDS)])
    assert decide(graph, 1, [(3, None, [2])])[0] == []
    assert links(decide(graph, 1, [(3, None, [0])])) == {0: ('dependency', 0, [1, 0], 'upstream')}
