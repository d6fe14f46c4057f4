"""The benchmark map generator (bench/mapgen.py) is deterministic for a seed and builds on both backends."""

import pytest

from bench import mapgen
from business_application.correlation.kinds import CABLE, CARRIES, SERVICE


def test_same_seed_same_map_and_events_other_seed_other_map():
    first, again, other = mapgen.generate(2000, seed=4), mapgen.generate(2000, seed=4), mapgen.generate(2000, seed=5)
    assert first.args == again.args
    assert first.behind_core == again.behind_core
    assert first.args != other.args
    assert mapgen.events(first, 300, seed=9) == mapgen.events(again, 300, seed=9)
    assert mapgen.events(first, 300, seed=9) != mapgen.events(first, 300, seed=10)


def test_map_shape_and_storm(graph_class):
    graph_map = mapgen.generate(5000, seed=1)
    kinds = graph_map.kinds
    assert sum(1 for k in kinds if k == SERVICE) == 750
    carried = {d for s, d, k in zip(graph_map.src, graph_map.dst, graph_map.kind, strict=True) if k == CARRIES}
    assert carried == set(graph_map.services)  # every service has a carrier
    graph = graph_class(*graph_map.args)
    assert graph.skipped_self_loops == 0
    assert 2.5 < graph.edge_count / len(kinds) < 4.0

    events = mapgen.events(graph_map, 1000, seed=2)
    assert len(events) == 1000
    assert [e[2] for e in events] == sorted(e[2] for e in events)
    core = graph_map.core_switches[0]
    edges = zip(graph_map.src, graph_map.dst, graph_map.kind, strict=True)
    below = {d for s, d, k in edges if k == CABLE and s == core}
    # 700 background events with the 300 of the storm in their middle, all behind the first core.
    storm_nodes = set(mapgen.storm_nodes(graph_map))
    assert all(e[0] in storm_nodes for e in events[350:650])
    assert len(storm_nodes) < len(kinds)
    assert events[649][2] - events[350][2] < events[349][2] - events[50][2]  # a burst: ten times denser
    assert below
    assert below <= set(graph_map.behind_core[0])


def test_too_small_a_map_is_refused():
    with pytest.raises(ValueError, match='at least 1000'):
        mapgen.generate(999)
