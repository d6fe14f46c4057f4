"""rank_upstream and blast_radius on both backends."""

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


@pytest.fixture
def rack(build):
    """0 switch cabled to 1 server carrying 2 service, on which 3 service depends; 4 app supported by 3."""
    kinds = [DEVICE, DEVICE, SERVICE, SERVICE, APPLICATION]
    return build(kinds, [(0, 1, CABLE), (1, 2, CARRIES), (2, 3, DEPENDS), (3, 4, SUPPORTS)])


def test_rank_upstream_counts_the_other_members_each_walk_reaches(rack):
    assert rack.rank_upstream([3, 1, 0, -1, 2], 5, 100) == [0, 2, 3, 0, 2]
    assert rack.rank_upstream([0, 0], 5, 100) == [1, 1]  # a repeated node meets its own footprint
    assert rack.rank_upstream([], 5, 100) == []


def test_rank_upstream_is_bounded_by_depth_and_work_cap(rack):
    assert rack.rank_upstream([0, 2, 3], 1, 100) == [0, 1, 0]  # the switch reaches only the server
    assert rack.rank_upstream([0, 2, 3], 2, 100) == [1, 1, 0]
    assert rack.rank_upstream([0, 3], 5, 1) == [0, 0]


def test_rank_upstream_stops_at_terminal_edges(build):
    # db 0 is one of two redundant providers of orders 1, which 2 depends on
    graph = build([SERVICE] * 3, [(0, 1, REDUNDANT, 1), (1, 2, DEPENDS)])
    assert graph.rank_upstream([0, 1, 2], 5, 100) == [1, 1, 0]


@pytest.mark.parametrize(
    ('nodes', 'depth', 'work_cap', 'message'),
    [
        ([0, 5], 1, 1, "nodes[1]: node 5 is outside the map's 5 nodes"),
        ([-2], 1, 1, "nodes[0]: node -2 is outside the map's 5 nodes"),
        ([0], -1, 1, 'depth must be >= 0, got -1'),
        ([0, 'a'], 1, 1, 'nodes[1] is not a 64-bit integer'),
    ],
)
def test_rank_upstream_errors(rack, nodes, depth, work_cap, message):
    with pytest.raises(GraphError) as info:
        rack.rank_upstream(nodes, depth, work_cap)
    assert str(info.value) == message


@pytest.fixture
def orders(build):
    """db-a 0 and db-b 1 redundant providers of orders 2 (group 7); reporting 3 depends on orders;
    app 4 supported by reporting; VMs 5 and 6 carry db-a and db-b; audit 7 redundant on db-a alone
    (group 8) and on orders (group 9)."""
    kinds = [SERVICE, SERVICE, SERVICE, SERVICE, APPLICATION, VM, VM, SERVICE]
    edges = [
        (0, 2, REDUNDANT, 7),
        (1, 2, REDUNDANT, 7),
        (2, 3, DEPENDS),
        (3, 4, SUPPORTS),
        (5, 0, CARRIES),
        (6, 1, CARRIES),
        (0, 7, REDUNDANT, 8),
        (2, 7, REDUNDANT, 9),
    ]
    return build(kinds, edges)


def test_one_provider_down_degrades_and_nothing_downstream(orders):
    # db-a's VM fails: db-a (carried by it alone) is down, orders degraded, reporting untouched;
    # audit loses its only group-8 provider, so it is down too
    assert orders.blast_radius([5], 10, 100) == ([0, 7], [2], False)


def test_all_providers_down_takes_the_dependents_down(orders):
    assert orders.blast_radius([5, 6], 10, 100) == ([0, 1, 2, 3, 4, 7], [], False)
    assert orders.blast_radius([-1, 0, -1, 1], 10, 100) == ([0, 1, 2, 3, 4, 7], [], False)


def test_a_failing_service_is_down_itself(orders):
    assert orders.blast_radius([3], 10, 100) == ([3, 4], [], False)
    assert orders.blast_radius([-1], 10, 100) == ([], [], False)


def test_blast_radius_depth_and_work_cap(orders):
    assert orders.blast_radius([5, 6], 1, 100) == ([0, 1, 2, 7], [], False)
    assert orders.blast_radius([5, 6], 0, 100) == ([0, 1], [], False)
    down, degraded, capped = orders.blast_radius([5, 6], 10, 1)
    assert capped is True
    assert (down, degraded) == ([0, 1, 2], [])


def test_a_provider_outside_the_region_counts_as_up(orders):
    # with depth 1 from db-a alone, db-b is outside the region: orders stays degraded
    assert orders.blast_radius([0], 1, 100) == ([0, 7], [2], False)


def test_carriers_form_one_group(build):
    # VMs 0 and 1 both carry service 2; app 3 is carried by VM 0 only
    graph = build([VM, VM, SERVICE, APPLICATION], [(0, 2, CARRIES), (1, 2, CARRIES), (0, 3, CARRIES)])
    assert graph.blast_radius([0], 5, 100) == ([3], [2], False)
    assert graph.blast_radius([0, 1], 5, 100) == ([2, 3], [], False)


def test_cluster_hosts_form_one_group(build):
    # hosts 0 and 1 in cluster 2; VM 3 known only by its cluster carries 4; VM 5 on host 0 carries 6
    kinds = [DEVICE, DEVICE, CLUSTER, VM, SERVICE, VM, SERVICE]
    edges = [
        (0, 2, CLUSTER_MEMBER),
        (1, 2, CLUSTER_MEMBER),
        (2, 3, HOSTS),
        (3, 4, CARRIES),
        (0, 5, HOSTS),
        (5, 6, CARRIES),
    ]
    graph = build(kinds, edges)
    # one host: its own VM's service is down, the cluster only degraded (and not listed), 4 untouched
    assert graph.blast_radius([0], 5, 100) == ([6], [], False)
    assert graph.blast_radius([0, 1], 5, 100) == ([4, 6], [], False)


def test_hard_edges_take_children_down(build):
    # switch 0 cabled to server 1 hosting VM 2 carrying service 3 supporting app 4; service 5 depends on 3
    kinds = [DEVICE, DEVICE, VM, SERVICE, APPLICATION, SERVICE]
    graph = build(kinds, [(0, 1, CABLE), (1, 2, HOSTS), (2, 3, CARRIES), (3, 4, SUPPORTS), (3, 5, DEPENDS)])
    assert graph.blast_radius([0], 10, 100) == ([3, 4, 5], [], False)
    assert graph.blast_radius([0], 3, 100) == ([3], [], False)


def test_degraded_never_propagates(build):
    # 0, 1 redundant providers of 2 (group 1); 2 -> 3; 3 redundant with 4 for 5 (group 2)
    graph = build(
        [SERVICE] * 6,
        [(0, 2, REDUNDANT, 1), (1, 2, REDUNDANT, 1), (2, 3, DEPENDS), (3, 5, REDUNDANT, 2), (4, 5, REDUNDANT, 2)],
    )
    assert graph.blast_radius([0], 10, 100) == ([0], [2], False)


def test_cycles_terminate(build):
    graph = build([SERVICE] * 3, [(0, 1, DEPENDS), (1, 2, DEPENDS), (2, 0, DEPENDS)])
    assert graph.blast_radius([1], 100, 100) == ([0, 1, 2], [], False)


@pytest.mark.parametrize(
    ('failing', 'depth', 'work_cap', 'message'),
    [
        ([0, 8], 1, 1, "failing[1]: node 8 is outside the map's 8 nodes"),
        ([0], 1, -1, 'work_cap must be >= 0, got -1'),
        (None, 1, 1, 'failing is not a sequence of integers'),
    ],
)
def test_blast_radius_errors(orders, failing, depth, work_cap, message):
    with pytest.raises(GraphError) as info:
        orders.blast_radius(failing, depth, work_cap)
    assert str(info.value) == message
