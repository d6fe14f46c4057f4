"""Hypothesis strategies for random dependency maps and engine queries.

Maps mix every node and edge kind, hubs (a few nodes that take many edges), cycles, self-loops,
repeated edges and redundancy groups. ``typed=True`` keeps each edge kind between the node kinds
the contract's table allows (needed by invariants such as link symmetry); untyped maps put any
edge kind anywhere, which the engine must handle all the same.
"""

from dataclasses import dataclass

from hypothesis import strategies as st

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

# Which (src kinds, dst kinds) each edge kind joins, per docs/engine-api.md.
TYPED_ENDS = {
    DEPENDS: ((SERVICE,), (SERVICE,)),
    REDUNDANT: ((SERVICE,), (SERVICE,)),
    CARRIES: ((DEVICE, VM, CLUSTER), (SERVICE, APPLICATION)),
    HOSTS: ((DEVICE, CLUSTER), (VM,)),
    CLUSTER_MEMBER: ((DEVICE,), (CLUSTER,)),
    CABLE: ((DEVICE,), (DEVICE,)),
    SUPPORTS: ((SERVICE,), (APPLICATION,)),
}
NODE_KIND_WEIGHTS = [SERVICE] * 4 + [DEVICE] * 3 + [VM] * 2 + [CLUSTER, APPLICATION]


@dataclass(frozen=True)
class Map:
    """A map as the five sequences a backend is built from."""

    kinds: list[int]
    src: list[int]
    dst: list[int]
    kind: list[int]
    group: list[int]

    @property
    def args(self) -> tuple[list[int], list[int], list[int], list[int], list[int]]:
        return self.kinds, self.src, self.dst, self.kind, self.group

    def with_component(self, other: 'Map') -> 'Map':
        """This map plus ``other`` as a disconnected component (its ids shifted past ours)."""
        shift = len(self.kinds)
        return Map(
            self.kinds + other.kinds,
            self.src + [s + shift for s in other.src],
            self.dst + [d + shift for d in other.dst],
            self.kind + other.kind,
            self.group + other.group,
        )


# One edge as drawn: kind, two raw picks for its ends, a group pick, and a 1-in-10 repeat.
_RAW_EDGE = st.tuples(st.integers(0, 6), st.integers(0, 255), st.integers(0, 255), st.integers(0, 3), st.integers(0, 9))


def _pick(pool: list[int], hubs: list[int], raw: int) -> int:
    """A node of ``pool`` from a raw draw; half of the picks go to the hubs in the pool, if any."""
    hub_pool = [h for h in hubs if h in pool]
    if hub_pool and raw % 2:
        return hub_pool[(raw // 2) % len(hub_pool)]
    return pool[(raw // 2) % len(pool)]


@st.composite
def maps(draw: st.DrawFn, typed: bool = False, max_nodes: int = 30) -> Map:
    n = draw(st.integers(1, max_nodes))
    kinds = draw(st.lists(st.sampled_from(NODE_KIND_WEIGHTS), min_size=n, max_size=n))
    hubs = draw(st.lists(st.integers(0, n - 1), max_size=3))
    raw_edges = draw(st.lists(_RAW_EDGE, min_size=n, max_size=3 * n))
    everyone = list(range(n))

    src, dst, kind, group = [], [], [], []
    for edge_kind, raw_src, raw_dst, raw_group, repeat in raw_edges:
        if typed:
            src_kinds, dst_kinds = TYPED_ENDS[edge_kind]
            sources = [i for i in everyone if kinds[i] in src_kinds]
            targets = [i for i in everyone if kinds[i] in dst_kinds]
            if not sources or not targets:
                continue
        else:
            sources = targets = everyone
        # REDUNDANT edges use a few group ids (-1 included); other kinds sometimes carry a stray group
        g = raw_group - 1 if edge_kind == REDUNDANT else (4 if raw_group == 3 else -1)
        for _ in range(2 if repeat == 0 else 1):
            src.append(_pick(sources, hubs, raw_src))
            dst.append(_pick(targets, hubs, raw_dst))
            kind.append(edge_kind)
            group.append(g)
    return Map(kinds, src, dst, kind, group)


def members(n: int) -> st.SearchStrategy[int]:
    """A member or entry id: a node, or -1 for an unmapped object."""
    return st.integers(-1, n - 1)


_PLAIN_TIMES = [0.0, 100.0, 1000.0, 1000.5, 1e12, -3.25]
_ODD_TIMES = [float('nan'), float('inf'), -float('inf'), -0.0]
WEIGHTS = st.sampled_from([(0.8, 0.6, 0.4), (0.5, 0.5, 0.5), (0.5, 0.9, 0.4), (1.0, 0.0, 0.4)])


@st.composite
def decide_queries(draw: st.DrawFn, n: int, odd_floats: bool = True) -> tuple:
    """Arguments of ``decide`` (after ``self``) on a map of ``n`` nodes."""
    times = st.sampled_from(_PLAIN_TIMES + _ODD_TIMES if odd_floats else _PLAIN_TIMES) | st.floats(-1e6, 1e6)
    candidate = st.tuples(st.integers(0, 3), st.none() | times, st.lists(members(n), max_size=3))
    return (
        draw(st.integers(0, n - 1)),
        draw(st.integers(0, 3)),
        draw(times),
        draw(st.lists(candidate, max_size=4)),
        draw(st.integers(0, 6)),
        draw(st.sampled_from([0, 1, 2, 5, 10_000])),
        draw(st.sampled_from([0.0, 0.3, 0.5, 0.61, -1.0])),
        draw(st.sampled_from([0.0, 60.0, 600.0, float('inf')])),
        *draw(WEIGHTS),
    )


LIMITS = st.tuples(st.integers(0, 6), st.sampled_from([0, 1, 3, 10_000]))


def exact(value: object) -> object:
    """``value`` with every float replaced by its hex form, so results compare bit for bit (NaN too)."""
    if isinstance(value, float):
        return value.hex()
    if isinstance(value, list | tuple):
        return type(value)(exact(v) for v in value)
    return value
