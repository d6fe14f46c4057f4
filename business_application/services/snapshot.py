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

import importlib
import logging
import threading
from array import array
from collections.abc import Hashable, Iterable

from ..correlation.backend import backend_name, load_graph_class
from ..correlation.kinds import APPLICATION, CARRIES, CLUSTER, DEVICE, NO_GROUP, NODE_KINDS, SERVICE, SUPPORTS, VM
from ..correlation.mapbuilder import KIND_PREFIX, MapBuilder, ServiceMap

__all__ = ('M2M_RELATIONS', 'SnapshotBuilder', 'canonical_key')

logger = logging.getLogger('business_application.services.snapshot')

# Owner tags: an owner key is ``pk * TAGS + tag`` (a membership pair packs both keys), a plain int
# rather than a tuple, which keeps the owner index small on million-object maps.
_TAGS = 16
_DEP, _CABLE = 1, 4
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


def compiled_core(backend: str | None):
    """The compiled core's module when ``backend`` resolves to it, else None (the Python passes run)."""
    graph_class = load_graph_class(backend)
    return importlib.import_module(graph_class.__module__) if backend_name(graph_class) == 'rust' else None


def canonical_key(kind: int, pk: Hashable) -> int:
    """A process-independent positive 31-bit number for a NetBox object (collisions only over-serialise)."""
    return (kind << _KEY_BITS) | (int(pk) & _KEY_MASK)  # type: ignore[call-overload]


class _KindIndex:
    """(kind, pk) -> node as one dict per kind keyed by the plain pk: cheaper to hash and to hold than tuples."""

    __slots__ = ('by_kind',)

    def __init__(self):
        self.by_kind: dict[int, dict] = {kind: {} for kind in NODE_KINDS}

    def get(self, key, default=None):
        by_pk = self.by_kind.get(key[0])
        return default if by_pk is None else by_pk.get(key[1], default)

    def __getitem__(self, key):
        return self.by_kind[key[0]][key[1]]

    def __setitem__(self, key, node):
        self.by_kind[key[0]][key[1]] = node

    def __contains__(self, key):
        return self.get(key) is not None

    def pop(self, key, default=None):
        by_pk = self.by_kind.get(key[0])
        return default if by_pk is None else by_pk.pop(key[1], default)

    def items(self):
        for kind, by_pk in self.by_kind.items():
            for pk, node in by_pk.items():
                yield (kind, pk), node

    def __len__(self):
        return sum(len(by_pk) for by_pk in self.by_kind.values())


class _Keys:
    """node -> (kind, pk), read from the kind and pk arrays."""

    __slots__ = ('_kinds', '_pks')

    def __init__(self, kinds, pks):
        self._kinds, self._pks = kinds, pks

    def __getitem__(self, node: int) -> tuple[int, int]:
        return self._kinds[node], self._pks[node]

    def __len__(self) -> int:
        return len(self._pks)

    def __iter__(self):
        return zip(self._kinds, self._pks, strict=True)


class _Names:
    """A node's name, read from its label (``kind:name``) rather than kept twice."""

    __slots__ = ('_labels',)

    def __init__(self, labels: list[str]):
        self._labels = labels

    def __getitem__(self, node: int) -> str:
        return self._labels[node].split(':', 1)[1]

    def __len__(self) -> int:
        return len(self._labels)


class _LabelIndex:
    """Label -> node, built on first use after a change (only old blast-radius rows without ids ask)."""

    def __init__(self, labels: list[str], dead: set[int]):
        self._labels, self._dead = labels, dead
        self._index: dict[str, int] | None = None

    def forget(self) -> None:
        self._index = None

    def get(self, label: str, default: int | None = None) -> int | None:
        if self._index is None:
            self._index = {lab: node for node, lab in enumerate(self._labels) if node not in self._dead}
        return self._index.get(label, default)

    def __getitem__(self, label: str) -> int:
        node = self.get(label)
        if node is None:
            raise KeyError(label)
        return node

    def __contains__(self, label: str) -> bool:
        return self.get(label) is not None


class SnapshotBuilder(MapBuilder):
    """A ``MapBuilder`` that also remembers who owns each edge, so the map can change in place."""

    def __init__(self, network_roles: Iterable[str] = (), network_tiers: Iterable[str] = ()):
        super().__init__(network_roles, network_tiers)
        # Typed arrays instead of lists of ints: a few bytes per node and edge instead of dozens.
        self.kinds = array('b')  # type: ignore[assignment]
        self.src = array('i')  # type: ignore[assignment]
        self.dst = array('i')  # type: ignore[assignment]
        self.edge_kind = array('b')  # type: ignore[assignment]
        self.group = array('i')  # type: ignore[assignment]
        self.owners: dict[int, int | list[int]] = {}
        self._owner: int | None = None
        self.dead: set[int] = set()
        #: (kind, pk) of every object removed: one found again (its deletion rolled back) has its relations re-read.
        self.removed: set[tuple[int, Hashable]] = set()
        self.roles: dict[int, str | None] = {}  # device node -> role slug
        self.cable_ends: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}  # cable pk -> device nodes
        self.names = _Names(self.labels)  # type: ignore[assignment]
        self.by_label = _LabelIndex(self.labels, self.dead)
        self._own_edge = array('i')  # node -> its placement (VM) or cluster membership (device) edge, or -1
        self.index = _KindIndex()  # type: ignore[assignment]
        self._pks = array('q')
        self.keys = _Keys(self.kinds, self._pks)  # node -> (kind, pk), kept for deleted nodes too
        # Connected components: a union-find kept up to date as edges are added; a removal makes it
        # stale and the next question recomputes it from the edges.
        self._parent = array('i')
        self._least = array('i')  # per root: the least canonical key in its component
        self._node_keys = array('i')  # per node: its own canonical key, where a recomputation starts
        self._components_stale = False
        self._backend: str | None = None  # of the last build: the edge passes below run in its core
        self._components_lock = threading.Lock()

    # Nodes

    def node(self, kind: int, key: Hashable) -> int | None:
        return self.index.by_kind[kind].get(key)

    def add(self, kind: int, key: Hashable, name: str) -> int:
        by_pk = self.index.by_kind[kind]
        existing = by_pk.get(key)
        if existing is not None:
            return existing
        node = len(self.kinds)
        self.kinds.append(kind)
        label = f'{KIND_PREFIX[kind]}:{name}'
        self.labels.append(label)
        by_pk[key] = node
        self.by_label.forget()
        self._pks.append(key)  # type: ignore[arg-type]
        self._own_edge.append(-1)
        self._parent.append(node)
        self._node_keys.append(canonical_key(kind, key))
        self._least.append(self._node_keys[-1])
        return node

    def rename(self, node: int, name: str) -> None:
        if self.names[node] == name:
            return
        self.labels[node] = self.labels[node].split(':', 1)[0] + ':' + name
        self.by_label.forget()

    def remove_node(self, kind: int, key: Hashable) -> int | None:
        """Forget a deleted object: its node leaves the index; its edges go at the next ``sweep_dead``."""
        node = self.index.pop((kind, key), None)
        if node is None:
            return None
        self.removed.add((kind, key))
        self.dead.add(node)
        self.by_label.forget()
        self.roles.pop(node, None)
        return node

    def sweep_dead(self, nodes: set[int]) -> int:
        """Remove every edge touching one of ``nodes`` (one pass over the edge arrays, in the compiled core
        when the snapshot is built with it: tens of milliseconds at 1M objects, about 1 s in Python)."""
        if not nodes:
            return 0
        src, dst = self.src, self.dst
        core = compiled_core(self._backend)
        if core is not None:
            removed = core.drop_edges_touching(src, dst, sorted(nodes), len(self.kinds))
        else:
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

    def _replace_own_edge(self, node: int) -> None:
        # A VM's placement and a device's cluster are one edge each: kept by node in an array, not
        # in the owner index, which saves a dict entry for most nodes of a large map.
        old = self._own_edge[node]
        if old >= 0 and self.src[old] != self.dst[old]:
            self.dst[old] = self.src[old]
            self._components_stale = True
        self._own_edge[node] = -1
        self._owner = None

    def set_placement(self, vm_pk: int, vm: int, host: int | None) -> None:
        self._replace_own_edge(vm)
        if host is not None:
            self._own_edge[vm] = len(self.src)
            self.hosts(host, vm)

    def set_cluster(self, device_pk: int, device: int, cluster: int | None) -> None:
        self._replace_own_edge(device)
        if cluster is not None:
            self._own_edge[device] = len(self.src)
            self.cluster_member(device, cluster)

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
        # A removed edge makes the next lock question redo this pass over every edge: in the compiled
        # core when the snapshot is built with it, else in Python (about 4 s on a 1M-object map).
        least = self._node_keys[:]
        core = compiled_core(self._backend)
        if core is not None:
            parent = array('i', [0]) * len(self.kinds)
            core.components(self.src, self.dst, parent, least)
            self._parent, self._least, self._components_stale = parent, least, False
            return
        parent = self._parent = array('i', range(len(self.kinds)))
        self._least = least
        self._components_stale = False
        for s, d in zip(self.src, self.dst, strict=True):  # _union inlined: this runs once per edge
            if s == d:
                continue
            while parent[s] != s:
                parent[s] = parent[parent[s]]
                s = parent[s]
            while parent[d] != d:
                parent[d] = parent[parent[d]]
                d = parent[d]
            if s != d:
                if s > d:
                    s, d = d, s
                parent[d] = s
                if least[d] < least[s]:
                    least[s] = least[d]

    # Full load: the same edges as the set_* methods, without a method call per edge

    def defer_components(self) -> None:
        """Skip the union-find while loading; the first lock question computes it in one pass."""
        self._components_stale = True

    def bulk_pairs(self, relation: int, rows: Iterable[tuple[int, int]]) -> None:
        _, left_kind, right_kind, maker = M2M_RELATIONS[relation]
        left_index, right_index, owners = self.index.by_kind[left_kind], self.index.by_kind[right_kind], self.owners
        src, dst, edge_kind, group = self.src, self.dst, self.edge_kind, self.group
        supports = maker == 'supports'
        kind = SUPPORTS if supports else CARRIES
        tag = _M2M_BASE + relation
        for left_pk, right_pk in rows:
            left, right = left_index.get(left_pk), right_index.get(right_pk)
            owner = (left_pk * _PAIR_SHIFT + right_pk) * _TAGS + tag
            if left is None or right is None or owner in owners:
                continue
            owners[owner] = len(src)
            src.append(left if supports else right)
            dst.append(right if supports else left)
            edge_kind.append(kind)
            group.append(NO_GROUP)
        self._components_stale = True

    def bulk_own_edges(self, edges: Iterable[tuple[int, int | None]], kind: int, towards_owner: bool) -> None:
        """(owner node, other node) pairs: VM placements (host -> VM) or cluster memberships (device -> cluster)."""
        own, src, dst, edge_kind, group = self._own_edge, self.src, self.dst, self.edge_kind, self.group
        for owner, other in edges:
            if other is None or own[owner] >= 0:
                continue
            own[owner] = len(src)
            src.append(other if towards_owner else owner)
            dst.append(owner if towards_owner else other)
            edge_kind.append(kind)
            group.append(NO_GROUP)
        self._components_stale = True

    def component(self, node: int) -> int:
        """The least canonical key of the node's component: the same number in every process."""
        with self._components_lock:
            if self._components_stale:
                self._recompute_components()
            return self._least[self._find(node)]

    def build(self, backend: str | None = None) -> ServiceMap:
        self._backend = backend
        return super().build(backend)

    def _map_options(self) -> dict:
        return {'keys': self.keys, 'by_label': self.by_label, 'component_of': self.component}
