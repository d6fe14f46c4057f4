"""What the operator pages read from the in-memory dependency map: paths in words, blast-radius and neighbourhood
pictures.

Everything here walks the process's map snapshot (``graph_loader.current_map``), never the database, so a page
costs the same few queries whatever the size of the incident or of the map. The walks are bounded by a depth and
a work cap. Names of objects the user may not view are replaced, with one query per kind of object shown.
"""

import logging
from collections import defaultdict, deque

from dcim.models import Device
from virtualization.models import Cluster, VirtualMachine

from ..correlation.kinds import (
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
from ..correlation.mapbuilder import KIND_PREFIX
from ..models import BusinessApplication, TechnicalService
from . import svg

__all__ = ('MAX_DEPTH', 'blast_picture', 'neighbourhood_picture', 'path_in_words')

logger = logging.getLogger('business_application.ui.maps')

#: How deep the service page may walk, and how many nodes any picture's walk may visit.
MAX_DEPTH = 5
WORK_CAP = 5000
#: How far the blast-radius picture follows the failure from the failing components.
BLAST_DEPTH = 8

KIND_MODELS = {
    SERVICE: TechnicalService,
    APPLICATION: BusinessApplication,
    DEVICE: Device,
    VM: VirtualMachine,
    CLUSTER: Cluster,
}
BLAST_KINDS = {
    'service': SERVICE,
    'technicalservice': SERVICE,
    'app': APPLICATION,
    'application': APPLICATION,
    'businessapplication': APPLICATION,
}

#: How a step along an edge reads, walking with the edge (the next node depends on this one) or against it.
WITH_EDGE = {
    DEPENDS: 'is needed by',
    REDUNDANT: 'is one provider of',
    CARRIES: 'runs',
    HOSTS: 'hosts',
    CLUSTER_MEMBER: 'is a member of',
    CABLE: 'connects',
    SUPPORTS: 'supports',
}
AGAINST_EDGE = {
    DEPENDS: 'depends on',
    REDUNDANT: 'depends (redundantly) on',
    CARRIES: 'runs on',
    HOSTS: 'runs on',
    CLUSTER_MEMBER: 'has member',
    CABLE: 'is connected to',
    SUPPORTS: 'is supported by',
}


class Adjacency:
    """Both directions of the map's edges, built once per map snapshot."""

    def __init__(self, service_map):
        src, dst, kinds = service_map.edges()
        self.down = defaultdict(list)  # node -> the nodes that depend on it
        self.up = defaultdict(list)  # node -> the nodes it depends on
        self.kind = {}
        count = len(service_map)
        for s, d, k in zip(src, dst, kinds, strict=True):
            # A removed edge is kept as a self-loop, and a snapshot updated in place may hold edges to
            # nodes newer than this map's graph: neither is drawn.
            if s == d or s >= count or d >= count:
                continue
            self.down[s].append(d)
            self.up[d].append(s)
            self.kind.setdefault((s, d), k)


def adjacency(service_map):
    cached = getattr(service_map, '_ui_adjacency', None)
    if cached is None:
        cached = Adjacency(service_map)
        service_map._ui_adjacency = cached  # a map change builds a new ServiceMap
    return cached


def path_in_words(service_map, labels, hidden=frozenset(), unknown=str):
    """A stored member path (node labels, from the event's object to the member it linked to) as a sentence:
    ``web-01 → runs → checkout-api → depends on → payments-db``. The nodes in ``hidden`` (objects the reader may
    not view) read ``(hidden device)`` and so on; a label the map no longer knows reads as ``unknown`` gives it
    (a redactor's ``label_text`` hides one the reader may not see)."""
    if not isinstance(labels, list):
        return str(labels)
    nodes = [service_map.by_label.get(label) if isinstance(label, str) else None for label in labels]
    edges = adjacency(service_map).kind
    words = []
    for index, (label, node) in enumerate(zip(labels, nodes, strict=True)):
        if index:
            before = nodes[index - 1]
            relation = None
            if before is not None and node is not None:
                if (before, node) in edges:
                    relation = WITH_EDGE.get(edges[(before, node)])
                elif (node, before) in edges:
                    relation = AGAINST_EDGE.get(edges[(node, before)])
            words.append(relation or '')
        if node in hidden:
            words.append(f'(hidden {_kind_name(service_map, node)})')
        else:
            words.append(service_map.names[node] if node is not None else unknown(str(label)))
    text = ''
    for index, word in enumerate(words):
        if index == 0:
            text = word
        elif index % 2:
            text += f' → {word} →' if word else ' →'
        else:
            text += f' {word}'
    return text


def _kind_name(service_map, node):
    return KIND_PREFIX[service_map.kinds[node]]


def _visible(service_map, user, nodes):
    """The nodes whose objects ``user`` may view: one query per kind of object among ``nodes``."""
    by_kind = defaultdict(list)
    for node in nodes:
        kind, pk = service_map.keys[node]
        by_kind[kind].append(pk)
    visible = set()
    for kind, pks in by_kind.items():
        allowed = set(KIND_MODELS[kind].objects.restrict(user, 'view').filter(pk__in=pks).values_list('pk', flat=True))
        visible.update(service_map.node(kind, pk) for pk in allowed)
    return visible


def _node(service_map, node, layer, state, visible, weight=0):
    kind, pk = service_map.keys[node]
    if node not in visible:
        return svg.Node(
            key=node,
            name=f'(hidden {KIND_PREFIX[kind]})',
            kind=KIND_PREFIX[kind],
            layer=layer,
            state=state,
            weight=weight,
        )
    return svg.Node(
        key=node,
        name=service_map.names[node],
        kind=KIND_PREFIX[kind],
        layer=layer,
        state=state,
        url=KIND_MODELS[kind](pk=pk).get_absolute_url(),
        weight=weight,
    )


def blast_nodes(service_map, blast_radius):
    """The map nodes of an incident's stored blast radius: (down, degraded)."""
    result = []
    for side in ('down', 'degraded'):
        nodes = set()
        items = blast_radius.get(side) if isinstance(blast_radius, dict) else None
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and type(item.get('id')) is int:
                kind = BLAST_KINDS.get(str(item.get('type', '')).lower())
                node = service_map.node(kind, item['id']) if kind is not None else None
                if node is not None:
                    nodes.add(node)
        result.append(nodes)
    return result


def blast_picture(service_map, user, failing, blast_radius, per_layer=12):
    """The failing components (layer 0), the paths from them to what they impact, and the impacted services and
    applications, each column summarised beyond ``per_layer``. ``failing`` are map nodes."""
    down, degraded = blast_nodes(service_map, blast_radius)
    targets = down | degraded
    graph = adjacency(service_map)

    # Forward from the failing components that no other failing component feeds (a switch before the servers
    # cabled to it), so the picture reads as the failure spreading; then from any failing component not reached.
    failing = sorted(failing)
    failing_set = set(failing)
    roots = [node for node in failing if not any(before in failing_set for before in graph.up.get(node, ()))]
    distance = {}
    for seeds in (roots, failing):
        fresh = [node for node in seeds if node not in distance]
        distance.update(dict.fromkeys(fresh, 0))
        queue = deque(fresh)
        while queue and len(distance) < WORK_CAP:
            node = queue.popleft()
            if distance[node] >= BLAST_DEPTH:
                continue
            for nxt in graph.down.get(node, ()):
                if nxt not in distance:
                    distance[nxt] = distance[node] + 1
                    queue.append(nxt)

    # Back from the impacted nodes: keep only what lies on a path to them.
    keep = set(failing) | (targets & distance.keys())
    queue = deque(targets & distance.keys())
    while queue:
        node = queue.popleft()
        for before in graph.up.get(node, ()):
            if before in distance and before not in keep and distance[before] < distance[node]:
                keep.add(before)
                queue.append(before)
    unreached = targets - distance.keys()
    last = max((distance[n] for n in keep), default=0) + 1

    visible = _visible(service_map, user, keep | unreached)
    nodes = []
    for node in keep | unreached:
        state = (
            'failing' if node in failing_set else 'down' if node in down else 'degraded' if node in degraded else 'path'
        )
        layer = distance.get(node, last)
        nodes.append(_node(service_map, node, layer, state, visible, weight=len(graph.down.get(node, ()))))
    edges = [
        svg.Edge(a, b) for a in keep for b in graph.down.get(a, ()) if b in keep and distance.get(b) == distance[a] + 1
    ]
    titles = {0: 'Where it starts'}
    return svg.render(
        nodes,
        edges,
        title='Blast radius',
        per_layer=per_layer,
        element_id='ba-blast-radius',
        layer_titles={k: v for k, v in titles.items() if v},
    )


def neighbourhood_picture(service_map, user, focus, depth, per_layer=12, affected=None):
    """What ``focus`` depends on (left, upstream) and what depends on it (right, downstream), to ``depth`` steps.

    ``affected`` maps nodes to 'down' or 'degraded' (from the open incidents) to colour them.
    """
    graph = adjacency(service_map)
    affected = affected or {}
    layer = {focus: 0}
    for step, neighbours in ((-1, graph.up), (1, graph.down)):
        frontier = [focus]
        seen = {focus}
        for distance in range(1, depth + 1):
            following = []
            for node in frontier:
                for nxt in neighbours.get(node, ()):
                    if nxt not in seen and len(seen) < WORK_CAP:
                        seen.add(nxt)
                        following.append(nxt)
                        layer.setdefault(nxt, step * distance)
            frontier = following

    visible = _visible(service_map, user, layer)
    nodes = [
        _node(service_map, node, where, 'focus' if node == focus else affected.get(node, 'normal'), visible)
        for node, where in layer.items()
    ]
    edges = [svg.Edge(a, b) for a in layer for b in graph.down.get(a, ()) if b in layer]
    titles = {}
    if any(where < 0 for where in layer.values()):
        titles[min(layer.values())] = 'Upstream (depends on)'
    if any(where > 0 for where in layer.values()):
        titles[max(layer.values())] = 'Downstream (depended on by)'
    return svg.render(
        nodes,
        edges,
        title=f'Dependency map around {service_map.names[focus]}',
        per_layer=per_layer,
        element_id='ba-service-map',
        layer_titles=titles,
    )
