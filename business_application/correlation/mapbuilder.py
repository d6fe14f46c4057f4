"""Turns the objects of a dependency map into the engine's node and edge arrays.

NetBox's loader and the scenario reader both describe the map object by object; this one class
decides the edges (which way they point, which are redundancy groups, which cables count), so
the two paths build the very same graph.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TYPE_CHECKING

from .kinds import (
    APPLICATION,
    CABLE,
    CARRIES,
    CLUSTER,
    CLUSTER_MEMBER,
    DEPENDS,
    DEVICE,
    HOSTS,
    NO_GROUP,
    REDUNDANT,
    SERVICE,
    SUPPORTS,
    VM,
)
from .lifecycle import MapView

if TYPE_CHECKING:
    from .graph import DependencyGraph

__all__ = ('KIND_PREFIX', 'MapBuilder', 'ServiceMap')

#: How a node of each kind is named in labels, scenario files and root causes (``device:SWITCH-01``).
KIND_PREFIX = {SERVICE: 'service', DEVICE: 'device', VM: 'vm', CLUSTER: 'cluster', APPLICATION: 'app'}


class ServiceMap(MapView):
    """A built map: the engine graph, names for people, and the index from object keys to nodes."""

    def __init__(
        self,
        graph: DependencyGraph,
        kinds: list[int],
        labels: list[str],
        names: list[str],
        index: dict[tuple[int, Hashable], int],
        skipped: list[str],
        edges: tuple[list[int], list[int]] = ([], []),
        edge_kinds: list[int] | None = None,
        keys: list[tuple[int, Hashable]] | None = None,
        by_label: dict[str, int] | None = None,
        component_of: Callable[[int], int] | None = None,
    ):
        super().__init__(graph, kinds, labels, names)
        self.index = index
        if keys is None:
            keys = [None] * len(kinds)  # type: ignore[list-item]
            for key, node in index.items():
                keys[node] = key
        self.keys: list[tuple[int, Hashable]] = keys
        self.skipped = skipped
        self.by_label = {label: node for node, label in enumerate(labels)} if by_label is None else by_label
        self._edges = edges
        self._edge_kinds = edge_kinds if edge_kinds is not None else [-1] * len(edges[0])
        self._components: list[int] | None = None
        self._component_of = component_of
        # A snapshot that changes in place (services.snapshot) may add nodes after this map was built;
        # this map answers only for the nodes its graph has.
        self._node_count = graph.node_count

    def component(self, node: int) -> int:
        """An id shared by every node connected to this one (in either direction): events in different
        components can never link, so their decisions may run in parallel."""
        if self._component_of is not None:
            return self._component_of(node)
        if self._components is None:
            self._components = _components(len(self.kinds), *self._edges)
        return self._components[node]

    def node(self, kind: int, key: Hashable) -> int | None:
        node = self.index.get((kind, key))
        return node if node is not None and node < self._node_count else None

    def edges(self) -> tuple[list[int], list[int], list[int]]:
        """The edges as parallel lists: source, destination (which depends on the source) and edge kind."""
        return self._edges[0], self._edges[1], self._edge_kinds

    def __len__(self) -> int:
        return self._node_count


def _components(count: int, src: list[int], dst: list[int]) -> list[int]:
    """Connected components by union-find over the graph's edges; each labelled by its smallest node id."""
    parent = list(range(count))

    def find(node: int) -> int:
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for a, b in zip(src, dst, strict=True):
        a, b = find(a), find(b)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return [find(node) for node in range(count)]


class MapBuilder:
    """Collects nodes and relations, then builds a ``ServiceMap`` on the chosen backend."""

    def __init__(self, network_roles: Iterable[str] = (), network_tiers: Iterable[str] = ()):
        #: A role's place in ``network_tiers`` (0 the most upstream); those roles are network roles too.
        self.tiers = {role.lower(): place for place, role in enumerate(network_tiers)}
        self.network_roles = {role.lower() for role in network_roles} | set(self.tiers)
        self.kinds: list[int] = []
        self.labels: list[str] = []
        self.names: list[str] = []
        self.index: dict[tuple[int, Hashable], int] = {}
        self.src: list[int] = []
        self.dst: list[int] = []
        self.edge_kind: list[int] = []
        self.group: list[int] = []
        self.groups: dict[tuple[int, str], int] = {}
        self.skipped: list[str] = []

    def add(self, kind: int, key: Hashable, name: str) -> int:
        """Add a node (once per kind and key) and return its id."""
        existing = self.index.get((kind, key))
        if existing is not None:
            return existing
        node = len(self.kinds)
        self.kinds.append(kind)
        self.labels.append(f'{KIND_PREFIX[kind]}:{name}')
        self.names.append(name)
        self.index[(kind, key)] = node
        return node

    def node(self, kind: int, key: Hashable) -> int | None:
        return self.index.get((kind, key))

    def _edge(self, src: int, dst: int, kind: int, group: int = NO_GROUP) -> None:
        self.src.append(src)
        self.dst.append(dst)
        self.edge_kind.append(kind)
        self.group.append(group)

    def depends(self, downstream: int, upstream: int, redundancy_group: str | None = None) -> None:
        """``downstream`` depends on ``upstream``; a redundancy edge names its group."""
        if downstream == upstream:
            self.skipped.append(f'{self.labels[downstream]} depends on itself: dependency skipped')
            return
        if redundancy_group is None:
            self._edge(upstream, downstream, DEPENDS)
            return
        group = self.groups.setdefault((downstream, redundancy_group), len(self.groups))
        self._edge(upstream, downstream, REDUNDANT, group)

    def carries(self, component: int, carried: int) -> None:
        """A device, VM or cluster carries a service (or a device or VM belongs to an application)."""
        self._edge(component, carried, CARRIES)

    def supports(self, service: int, application: int) -> None:
        self._edge(service, application, SUPPORTS)

    def hosts(self, host: int, vm: int) -> None:
        """The VM runs on this host device (or, when NetBox knows no host, in this cluster)."""
        self._edge(host, vm, HOSTS)

    def cluster_member(self, device: int, cluster: int) -> None:
        self._edge(device, cluster, CLUSTER_MEMBER)

    def is_network(self, role: str | None) -> bool:
        return bool(role) and role.lower() in self.network_roles

    def cable(self, a: int, role_a: str | None, b: int, role_b: str | None) -> None:
        """A cable between two devices: the network device is upstream of the server it serves, and of a network
        device whose role comes later in the tiers (a core switch of its access switches).

        Cables between two servers, or between two network devices without distinct tiers, carry no direction and
        are not used.
        """
        if a == b:
            return
        a_net, b_net = self.is_network(role_a), self.is_network(role_b)
        if a_net and not b_net:
            self._edge(a, b, CABLE)
        elif b_net and not a_net:
            self._edge(b, a, CABLE)
        elif a_net and b_net:
            tier_a, tier_b = self.tiers.get(role_a.lower()), self.tiers.get(role_b.lower())
            if tier_a is None or tier_b is None or tier_a == tier_b:
                return
            if tier_a < tier_b:
                self._edge(a, b, CABLE)
            else:
                self._edge(b, a, CABLE)

    def build(self, backend: str | None = None) -> ServiceMap:
        from .graph import DependencyGraph

        graph = DependencyGraph.build(self.kinds, self.src, self.dst, self.edge_kind, self.group, backend=backend)
        return ServiceMap(
            graph,
            self.kinds,
            self.labels,
            self.names,
            self.index,
            self.skipped,
            (self.src, self.dst),
            self.edge_kind,
            **self._map_options(),
        )

    def _map_options(self) -> dict:
        """Extra arguments for the ``ServiceMap`` (a builder that keeps its own indexes passes them)."""
        return {}
