"""The map snapshot a worker keeps in memory, and how a change to NetBox's map is applied to it in place.

A full load (``graph_loader.load_map``) reads every object and relation with a fixed handful of bulk
queries into a ``SnapshotBuilder``. After that, each committed change to the map is announced as a
*refresh record* naming the changed object or relation (see ``MapDeltas``); applying a batch of
records re-reads only those rows, by primary key, and changes the builder's node and edge arrays:

- a node keeps its id for the life of the snapshot; a deleted object's node stays in the arrays
  with no edges and leaves the index, so events on it are unmapped from then on;
- every edge remembers its *owner* (a dependency, a VM's placement, a device's cluster, a
  membership pair, a cable); refreshing the owner removes its old edges and adds the current ones;
- a removed edge becomes a self-loop, which both engine backends skip, so the arrays are never
  compacted in place and edge ids stay valid; a full reload compacts them.

Records are idempotent (they say "look at this row again", not "add this edge"), so applying one
twice, or applying one whose change a full load already saw, is harmless.
"""

from __future__ import annotations

import logging
import threading
from array import array
from collections.abc import Hashable, Iterable

from ..correlation.kinds import APPLICATION, CLUSTER, DEVICE, SERVICE, VM
from ..correlation.mapbuilder import KIND_PREFIX, MapBuilder

__all__ = ('M2M_RELATIONS', 'SnapshotBuilder', 'canonical_key')

logger = logging.getLogger('business_application.services.snapshot')

# Owner tags: an owner key is ``pk * TAGS + tag`` (a membership pair packs both keys), a plain int
# rather than a tuple, which keeps the owner index small on million-object maps.
_TAGS = 16
_DEP, _PLACE, _MEMBER, _CABLE = 1, 2, 3, 4
_M2M_BASE = 5  # 5..10: one tag per relation in M2M_RELATIONS
_PAIR_SHIFT = 1 << 32

#: The membership relations of the map, as (name, left kind, right kind, edge maker). The left side
#: owns the relation in NetBox (``TechnicalService.devices`` and so on).
M2M_RELATIONS = (
    ('service_apps', SERVICE, APPLICATION, 'supports'),
    ('service_devices', SERVICE, DEVICE, 'carries'),
    ('service_vms', SERVICE, VM, 'carries'),
    ('service_clusters', SERVICE, CLUSTER, 'carries'),
    ('app_devices', APPLICATION, DEVICE, 'carries'),
    ('app_vms', APPLICATION, VM, 'carries'),
)
M2M_INDEX = {name: i for i, (name, *_) in enumerate(M2M_RELATIONS)}

# A canonical lock key is ``kind << 28 | pk`` (pk reduced to 28 bits): the same object gets the same
# key in every process, whatever node id its snapshot gave it.
_KEY_BITS = 28
_KEY_MASK = (1 << _KEY_BITS) - 1


def canonical_key(kind: int, pk: Hashable) -> int:
    """A process-independent positive 31-bit number for a NetBox object (collisions only over-serialise)."""
    return (kind << _KEY_BITS) | (int(pk) & _KEY_MASK)  # type: ignore[call-overload]


class SnapshotBuilder(MapBuilder):
    """A ``MapBuilder`` that also remembers who owns each edge, so the map can change in place."""

    def __init__(self, network_roles: Iterable[str] = ()):
        super().__init__(network_roles)
        # Typed arrays instead of lists of ints: a few bytes per node and edge instead of dozens.
        self.kinds = array('b')  # type: ignore[assignment]
        self.src = array('i')  # type: ignore[assignment]
        self.dst = array('i')  # type: ignore[assignment]
        self.edge_kind = array('b')  # type: ignore[assignment]
        self.group = array('i')  # type: ignore[assignment]
        self.owners: dict[int, int | list[int]] = {}
        self._owner: int | None = None
        self.dead: set[int] = set()
        self.roles: dict[int, str | None] = {}  # device node -> role slug
        self.cable_ends: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}  # cable pk -> device nodes
        self.by_label: dict[str, int] = {}
        self.keys: list[tuple[int, Hashable]] = []  # node -> (kind, pk), kept for deleted nodes too
        # Connected components: a union-find kept up to date as edges are added; a removal makes it
        # stale and the next question recomputes it from the edges.
        self._parent = array('i')
        self._least = array('i')  # per root: the least canonical key in its component
        self._components_stale = False
        self._components_lock = threading.Lock()

    # Nodes

    def add(self, kind: int, key: Hashable, name: str) -> int:
        index_key = (kind, key)
        existing = self.index.get(index_key)
        if existing is not None:
            return existing
        node = len(self.kinds)
        self.kinds.append(kind)
        label = f'{KIND_PREFIX[kind]}:{name}'
        self.labels.append(label)
        self.names.append(name)
        self.index[index_key] = node
        self.by_label[label] = node
        self.keys.append(index_key)
        self._parent.append(node)
        self._least.append(canonical_key(kind, key))
        return node

    def rename(self, node: int, name: str) -> None:
        if self.names[node] == name:
            return
        label = self.labels[node]
        if self.by_label.get(label) == node:
            del self.by_label[label]
        self.names[node] = name
        self.labels[node] = label.split(':', 1)[0] + ':' + name
        self.by_label[self.labels[node]] = node

    def remove_node(self, kind: int, key: Hashable) -> int | None:
        """Forget a deleted object: its node leaves the index; its edges go at the next ``sweep_dead``."""
        node = self.index.pop((kind, key), None)
        if node is None:
            return None
        if self.by_label.get(self.labels[node]) == node:
            del self.by_label[self.labels[node]]
        self.dead.add(node)
        self.roles.pop(node, None)
        return node

    def sweep_dead(self, nodes: set[int]) -> int:
        """Remove every edge touching one of ``nodes`` (one pass over the edge arrays)."""
        if not nodes:
            return 0
        src, dst = self.src, self.dst
        removed = 0
        for i in range(len(src)):
            s, d = src[i], dst[i]
            if s != d and (s in nodes or d in nodes):
                dst[i] = s
                removed += 1
        if removed:
            self._components_stale = True
        return removed

    # Edges and their owners

    def _edge(self, src: int, dst: int, kind: int, group: int = -1) -> None:
        owner = self._owner
        if owner is not None:
            index = len(self.src)
            held = self.owners.get(owner)
            if held is None:
                self.owners[owner] = index
            elif isinstance(held, list):
                held.append(index)
            else:
                self.owners[owner] = [held, index]
        super()._edge(src, dst, kind, group)
        if src != dst and not self._components_stale:
            self._union(src, dst)

    def drop_owner(self, owner: int) -> None:
        held = self.owners.pop(owner, None)
        if held is None:
            return
        for i in held if isinstance(held, list) else (held,):
            if self.src[i] != self.dst[i]:
                self.dst[i] = self.src[i]  # a self-loop: both backends skip it
                self._components_stale = True

    def owned(self, tag: int, pk: int) -> SnapshotBuilder:
        """Use as ``builder.owned(tag, pk).depends(...)``: the next edges belong to that owner."""
        self._owner = pk * _TAGS + tag
        return self

    def replace(self, tag: int, pk: int) -> SnapshotBuilder:
        """Drop the owner's edges, then make it the owner of the edges added next."""
        self.drop_owner(pk * _TAGS + tag)
        return self.owned(tag, pk)

    def pair_owner(self, relation: int, left: int, right: int) -> SnapshotBuilder:
        return self.owned(_M2M_BASE + relation, left * _PAIR_SHIFT + right)

    def drop_pair(self, relation: int, left: int, right: int) -> None:
        self.drop_owner((left * _PAIR_SHIFT + right) * _TAGS + _M2M_BASE + relation)

    def has_pair(self, relation: int, left: int, right: int) -> bool:
        return (left * _PAIR_SHIFT + right) * _TAGS + _M2M_BASE + relation in self.owners

    def done(self) -> None:
        self._owner = None

    # Relations, by owner

    def set_dependency(self, pk: int, downstream: int | None, upstream: int | None, kind: str, name: str) -> None:
        self.replace(_DEP, pk)
        if downstream is not None and upstream is not None:
            group = (name or 'redundancy') if kind == 'redundancy' else None
            self.depends(downstream, upstream, group)
        self.done()

    def set_placement(self, vm_pk: int, vm: int, host: int | None) -> None:
        self.replace(_PLACE, vm_pk)
        if host is not None:
            self.hosts(host, vm)
        self.done()

    def set_cluster(self, device_pk: int, device: int, cluster: int | None) -> None:
        self.replace(_MEMBER, device_pk)
        if cluster is not None:
            self.cluster_member(device, cluster)
        self.done()

    def set_pair(self, relation: int, left_pk: int, right_pk: int, present: bool) -> None:
        name, left_kind, right_kind, maker = M2M_RELATIONS[relation]
        if not present:
            self.drop_pair(relation, left_pk, right_pk)
            return
        if self.has_pair(relation, left_pk, right_pk):
            return
        left, right = self.node(left_kind, left_pk), self.node(right_kind, right_pk)
        if left is None or right is None:
            return
        self.pair_owner(relation, left_pk, right_pk)
        if maker == 'supports':
            self.supports(left, right)
        else:
            self.carries(right, left)  # the device, VM or cluster carries the service or application
        self.done()

    def set_cable(self, cable_pk: int, a_side: Iterable[int], b_side: Iterable[int]) -> None:
        self.cable_ends.pop(cable_pk, None)
        a_side, b_side = tuple(dict.fromkeys(a_side)), tuple(dict.fromkeys(b_side))
        self.replace(_CABLE, cable_pk)
        if a_side or b_side:
            self.cable_ends[cable_pk] = (a_side, b_side)
            for a in a_side:
                for b in b_side:
                    self.cable(a, self.roles.get(a), b, self.roles.get(b))
        self.done()

    def recable(self, device: int) -> None:
        """Re-derive the cables of a device whose role changed (a cable's direction depends on roles)."""
        touching = [pk for pk, (a_side, b_side) in self.cable_ends.items() if device in a_side or device in b_side]
        for cable_pk in touching:  # a pass over the cables: role changes are rare
            a_side, b_side = self.cable_ends[cable_pk]
            self.set_cable(cable_pk, a_side, b_side)

    # Components

    def _find(self, node: int) -> int:
        parent = self._parent
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    def _union(self, a: int, b: int) -> None:
        a, b = self._find(a), self._find(b)
        if a != b:
            if a > b:
                a, b = b, a
            self._parent[b] = a
            if self._least[b] < self._least[a]:
                self._least[a] = self._least[b]

    def _recompute_components(self) -> None:
        self._parent = array('i', range(len(self.kinds)))
        self._least = array('i', (canonical_key(kind, pk) for kind, pk in self.keys))
        self._components_stale = False
        for s, d in zip(self.src, self.dst, strict=True):
            if s != d:
                self._union(s, d)

    def component(self, node: int) -> int:
        """The least canonical key of the node's component: the same number in every process."""
        with self._components_lock:
            if self._components_stale:
                self._recompute_components()
            return self._least[self._find(node)]

    def _map_options(self) -> dict:
        return {'keys': self.keys, 'by_label': self.by_label, 'component_of': self.component}
