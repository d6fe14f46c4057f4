"""The compiled core renumbers nodes for locality inside; nothing of it may show outside.

Maps here are shaped like the ones the renumbering targets (racks of servers cabled to a switch,
VMs on hypervisors, services carried by blocks of carriers, one hub service with more than 64
edges so the ordering's hub rule is taken) and then given an adversarial external numbering: a
random permutation, the reverse of the natural order, or services and carriers interleaved. The
compiled core must answer exactly as the fallback, which does not renumber: footprints, capped
walks (a cap stops a walk at a point that depends on the order neighbours are scanned), decisions
with their paths, batches through the index, rank and blast radius.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from business_application.correlation.backend import index_class_for
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

from .engine_maps import Map, exact

COMPARE = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CAPS = (0, 1, 3, 7, 25, 10_000)
SCORING = (0.3, 900.0, 0.8, 0.6, 0.4)


@st.composite
def shaped_maps(draw: st.DrawFn) -> Map:
    """Services first, then a switch and racks of servers (some hypervisors in a cluster, with VMs)."""
    services = draw(st.integers(3, 12))
    servers = draw(st.integers(66, 90))  # more than 64 carriers of the hub service
    vms = draw(st.integers(0, 12))
    kinds = [SERVICE] * services + [DEVICE] + [DEVICE] * servers + [CLUSTER] + [VM] * vms
    switch, first_server = services, services + 1
    cluster = first_server + servers
    src, dst, kind, group = [], [], [], []

    def edge(s: int, d: int, k: int, g: int = -1) -> None:
        src.append(s)
        dst.append(d)
        kind.append(k)
        group.append(g)

    for s in range(1, services):
        provider = draw(st.integers(0, s - 1))
        if draw(st.booleans()):
            edge(provider, s, DEPENDS)
        else:
            edge(provider, s, REDUNDANT, 7)
            edge(draw(st.integers(0, s - 1)), s, REDUNDANT, 7)
    for i in range(servers):
        server = first_server + i
        edge(switch, server, CABLE)
        edge(server, 0, CARRIES)  # service 0 is the hub
        edge(server, draw(st.integers(1, services - 1)), CARRIES)
        if i < 8:
            edge(server, cluster, CLUSTER_MEMBER)
    for v in range(vms):
        vm = cluster + 1 + v
        edge(first_server + draw(st.integers(0, 7)), vm, HOSTS)
        edge(vm, draw(st.integers(0, services - 1)), CARRIES)
    return Map(kinds, src, dst, kind, group)


@st.composite
def renumbered(draw: st.DrawFn) -> Map:
    """A shaped map under an adversarial external numbering."""
    graph_map = draw(shaped_maps())
    n = len(graph_map.kinds)
    how = draw(st.sampled_from(['random', 'reverse', 'interleave']))
    if how == 'random':
        order = draw(st.permutations(range(n)))
    elif how == 'reverse':
        order = list(range(n - 1, -1, -1))
    else:
        order = [x for pair in zip(range(n // 2), range(n // 2, n), strict=False) for x in pair]
        order += [x for x in range(n) if x not in set(order)]
    new_id = {old: new for new, old in enumerate(order)}
    kinds = [0] * n
    for old, new in new_id.items():
        kinds[new] = graph_map.kinds[old]
    return Map(
        kinds,
        [new_id[s] for s in graph_map.src],
        [new_id[d] for d in graph_map.dst],
        graph_map.kind,
        graph_map.group,
    )


@COMPARE
@given(graph_map=renumbered())
def test_prop_renumbered_core_walks_like_the_fallback(compiled, fallback, graph_map):
    rust, python = compiled(*graph_map.args), fallback(*graph_map.args)
    for x in range(rust.node_count):
        assert rust.footprint(x) == python.footprint(x)
        assert rust.maintenance_scope(x) == python.maintenance_scope(x)
        for cap in CAPS:
            assert rust.reach(x, 5, cap) == python.reach(x, 5, cap), (x, cap)


@COMPARE
@given(graph_map=renumbered(), data=st.data())
def test_prop_renumbered_core_decides_like_the_fallback(compiled, fallback, graph_map, data):
    rust, python = compiled(*graph_map.args), fallback(*graph_map.args)
    n = rust.node_count
    node = st.integers(0, n - 1)
    candidates = data.draw(
        st.lists(st.tuples(st.integers(0, 3), st.none() | st.just(500.0), st.lists(node, max_size=4)), max_size=6)
    )
    rust_index, python_index = index_class_for(rust)(rust), index_class_for(python)(python)
    for key, (severity, last, members) in enumerate(candidates):
        rust_index.add_incident(key, severity, last, members)
        python_index.add_incident(key, severity, last, members)
        assert rust_index.incident(key) == python_index.incident(key)
    events = data.draw(st.lists(st.tuples(node, st.integers(0, 3), st.just(1000.0)), min_size=1, max_size=8))
    for cap in CAPS:
        for x, severity, time in events:
            query = (x, severity, time, candidates, 5, cap, *SCORING)
            assert exact(rust.decide(*query)) == exact(python.decide(*query)), (x, cap)
            indexed = (x, severity, time, 5, cap, *SCORING)
            assert exact(rust_index.decide(*indexed)) == exact(python_index.decide(*indexed))
        batch = (events, 5, cap, *SCORING)
        expected = exact(python_index.decide_batch(*batch))
        assert exact(rust_index.decide_batch(*batch, threads=1)) == expected
        assert exact(rust_index.decide_batch(*batch, threads=2)) == expected
        failing = [x for x, _, _ in events]
        assert rust.rank_upstream(failing, 5, cap) == python.rank_upstream(failing, 5, cap)
        assert rust.blast_radius(failing, 5, cap) == python.blast_radius(failing, 5, cap)
