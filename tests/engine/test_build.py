"""Building the map, its errors, footprints and maintenance scopes, on both backends."""

import pytest

from business_application.correlation.errors import GraphError
from business_application.correlation.kinds import (
    APPLICATION,
    CABLE,
    CARRIES,
    CLUSTER,
    CLUSTER_MEMBER,
    DEPENDS,
    DEVICE,
    HOSTS,
    REDUNDANT,
    SERVICE,
    SUPPORTS,
    VM,
)


def test_counts_nodes_and_edges(build):
    graph = build([SERVICE, SERVICE, DEVICE], [(0, 1, DEPENDS), (2, 0, CARRIES)])
    assert (graph.node_count, graph.edge_count, graph.skipped_self_loops) == (3, 2, 0)


def test_empty_map(graph_class):
    graph = graph_class([], [], [], [], [])
    assert (graph.node_count, graph.edge_count) == (0, 0)
    assert graph.blast_radius([], 3, 10) == ([], [], False)
    assert graph.rank_upstream([-1, -1], 3, 10) == [0, 0]


def test_self_loops_are_skipped_and_each_counted(build):
    graph = build([SERVICE, SERVICE], [(0, 0, DEPENDS), (0, 1, DEPENDS), (1, 1, REDUNDANT, 4), (0, 0, DEPENDS)])
    assert (graph.edge_count, graph.skipped_self_loops) == (1, 3)
    assert graph.footprint(0) == [0]


def test_duplicate_edges_are_kept_once(build):
    graph = build(
        [SERVICE, SERVICE],
        [(0, 1, DEPENDS), (0, 1, DEPENDS), (0, 1, REDUNDANT, 3), (0, 1, REDUNDANT, 3), (0, 1, REDUNDANT, 4)],
    )
    assert graph.edge_count == 3


def test_group_is_ignored_for_edges_that_are_not_redundant(graph_class):
    graph = graph_class([DEVICE, SERVICE], [0, 0], [1, 1], [CARRIES, CARRIES], [5, 9])
    assert graph.edge_count == 1


def test_accepts_any_iterable_of_ints(graph_class):
    graph = graph_class((SERVICE, SERVICE), range(1), iter([1]), (DEPENDS,), [-1])
    assert graph.edge_count == 1


@pytest.mark.parametrize(
    ('args', 'message'),
    [
        (([0, 0], [0, 1], [1], [0, 0], [-1, -1]), 'edge sequences differ in length: src 2, dst 1, kind 2, group 2'),
        (([0, 0], [0], [1], [0], []), 'edge sequences differ in length: src 1, dst 1, kind 1, group 0'),
        (([0, 5], [], [], [], []), 'node 1 has unknown kind 5'),
        (([0, -1], [], [], [], []), 'node 1 has unknown kind -1'),
        (([0, 0], [0, 2], [1, 0], [0, 0], [-1, -1]), "edge 1: src 2 is outside the map's 2 nodes"),
        (([0, 0], [0, 1], [1, -1], [0, 0], [-1, -1]), "edge 1: dst -1 is outside the map's 2 nodes"),
        (([0, 0], [0], [1], [7], [-1]), 'edge 0 has unknown kind 7'),
        (([0, 0], [1], [1], [9], [-1]), 'edge 0 has unknown kind 9'),  # a self-loop is checked before it is skipped
        (([0, 'x'], [], [], [], []), 'kinds[1] is not a 64-bit integer'),
        (([0, 0], [0, 1.0], [1, 0], [0, 0], [-1, -1]), 'src[1] is not a 64-bit integer'),
        (([0, 0], [0], [1], [1], [2**63]), 'group[0] is not a 64-bit integer'),
        (([0], 5, [], [], []), 'src is not a sequence of integers'),
    ],
)
def test_build_errors_name_the_offending_index(graph_class, args, message):
    with pytest.raises(GraphError) as info:
        graph_class(*args)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError)


def test_footprint_is_the_node_then_its_carried_services_ascending(build):
    # 0, 2 services; 1 device carrying 2 and 0 and application 3; 4 VM carrying nothing
    graph = build([SERVICE, DEVICE, SERVICE, APPLICATION, VM], [(1, 2, CARRIES), (1, 0, CARRIES), (1, 3, CARRIES)])
    assert graph.footprint(1) == [1, 0, 2]
    assert graph.footprint(0) == [0]
    assert graph.footprint(4) == [4]


@pytest.mark.parametrize('node', [-1, 5, 2**40])
def test_footprint_of_an_unknown_node(build, node):
    graph = build([SERVICE] * 5, [])
    with pytest.raises(GraphError, match=rf"^node {node} is outside the map's 5 nodes$"):
        graph.footprint(node)
    with pytest.raises(GraphError, match=rf'^node {node} is outside'):
        graph.maintenance_scope(node)


def test_maintenance_scope_covers_carried_services_host_and_cluster(build):
    # 0 host device, 1 cluster, 2 VM on host 0 in cluster 1, carrying services 4 and 3; 5 another device
    kinds = [DEVICE, CLUSTER, VM, SERVICE, SERVICE, DEVICE]
    edges = [
        (0, 2, HOSTS),
        (1, 2, HOSTS),
        (2, 4, CARRIES),
        (2, 3, CARRIES),
        (0, 1, CLUSTER_MEMBER),
        (5, 0, CABLE),
        (3, 4, DEPENDS),
    ]
    graph = build(kinds, edges)
    assert graph.maintenance_scope(2) == [2, 0, 1, 3, 4]
    assert graph.maintenance_scope(0) == [0]  # cabled switch and cluster membership are not "hosting"
    assert graph.maintenance_scope(4) == [4]


def test_maintenance_scope_without_repeats(build):
    # a service carried by 2 that also hosts... the carried service and a HOSTS parent appear once each
    graph = build([SERVICE, DEVICE, VM], [(1, 2, HOSTS), (2, 0, CARRIES), (1, 2, HOSTS), (0, 2, SUPPORTS)])
    assert graph.maintenance_scope(2) == [2, 0, 1]
