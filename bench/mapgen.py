"""Seeded generator of enterprise-like dependency maps and event streams, for the benchmarks.

A map of ``n`` nodes (docs/engine-api.md encoding), the same for the same ``(n, seed)`` on any
machine (only ``random.Random`` draws, in a fixed order):

- 15% services in four layers (5% platform, 15% middleware, 30% business, 50% edge services). Each
  service above the platform layer depends on 1-2 draws of services of the layers below, picked with a
  power-law preference (Zipf over a shuffled order), so a few shared services gain thousands of
  dependants; one service in ten has a redundant pair of providers instead of one plain provider.
- 85% devices and VMs: two core switches, a distribution switch per 2,000 nodes and an access
  switch per 40 servers, joined by cables (core -> distribution -> access -> server, most servers
  on two access switches of the same distribution switch); hypervisor
  servers grouped in clusters of 12 (CLUSTER_MEMBER) hosting about 4 VMs each (HOSTS); plain
  servers and VMs carry 1-3 services each (CARRIES, mostly one), and every service has at least
  one carrier. Neighbouring ids share a rack, a hypervisor and an application: servers are cabled
  rack by rack, VMs fill one hypervisor after another, and each block of 16 neighbouring carriers
  runs its own share of the services, plus now and then a popular shared service (Zipf).
- About 2.5 edges per node in all (TARGETS.md's maps have 3.5; see ``walk_stats`` and
  bench/RESULTS.md for the walks this gives).

Event streams draw background events on random devices, VMs and services, and storms: a burst of
events on the switches, servers, VMs and services behind one core switch. Nothing here imports
Django or NetBox.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
from array import array

# Bumped whenever the generator's output for a given (n, seed) changes (names the cached map files).
VERSION = 2

SERVICE, DEVICE, VM, CLUSTER = 0, 1, 2, 3
DEPENDS, REDUNDANT, CARRIES, HOSTS, CLUSTER_MEMBER, CABLE = 0, 1, 2, 3, 4, 5

# Share of the services in each layer, bottom (platform) first.
LAYERS = (0.05, 0.15, 0.30, 0.50)
ZIPF_EXPONENT = 1.1
# Calibrated towards TARGETS.md's reference walks (median 60, mean 490 edges at depth 5, see
# ``walk_stats``): an event's walk goes up from each service it carries to all of that service's
# carriers, so the carriers per service (CARRIES_WEIGHTS: 1, 2 or 3 services a carrier) set the
# median, and the Zipf share of carried services (ZIPF_CARRIES) sets the mean and the hubs.
DEPENDENCY_DRAWS = 2
CARRIER_BLOCK = 16
REDUNDANT_SHARE = 0.1
DUAL_HOMED = 0.8
CARRIES_WEIGHTS = (6, 3, 1)
ZIPF_CARRIES = 0.05
VMS_PER_HYPERVISOR = 4
CLUSTER_SIZE = 12
SERVERS_PER_ACCESS_SWITCH = 40
NODES_PER_DISTRIBUTION_SWITCH = 2000


@dataclasses.dataclass(frozen=True)
class EnterpriseMap:
    """A generated map as the engine's five sequences, with the landmarks the benchmarks use."""

    seed: int
    kinds: array
    src: array
    dst: array
    kind: array
    group: array
    services: range
    core_switches: tuple[int, ...]
    # Per core switch, the switches cabled below it (itself first).
    behind_core: tuple[tuple[int, ...], ...]
    vms: range
    devices: range

    @property
    def args(self) -> tuple[array, array, array, array, array]:
        return self.kinds, self.src, self.dst, self.kind, self.group

    @property
    def node_count(self) -> int:
        return len(self.kinds)

    @property
    def edge_count(self) -> int:
        return len(self.src)


class _Edges:
    def __init__(self) -> None:
        self.src, self.dst, self.kind, self.group = array('q'), array('q'), array('q'), array('q')

    def add(self, s: int, d: int, k: int, g: int = -1) -> None:
        self.src.append(s)
        self.dst.append(d)
        self.kind.append(k)
        self.group.append(g)


def _zipf_cum_weights(count: int) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank + 1) ** ZIPF_EXPONENT for rank in range(count)))


def generate(n: int, seed: int = 1) -> EnterpriseMap:
    """The map of ``n`` nodes (at least 1,000) for ``seed``."""
    if n < 1000:
        raise ValueError(f'n must be at least 1000, got {n}')
    rng = random.Random(seed)
    edges = _Edges()

    service_count = int(n * 0.15)
    services = range(service_count)
    layers = _layers(service_count)
    _service_dependencies(rng, edges, layers)

    # Devices and VMs: switches, then servers (plain and hypervisors), then clusters, then VMs.
    rest = n - service_count
    distribution = max(2, n // NODES_PER_DISTRIBUTION_SWITCH)
    vm_count = int(rest * 0.55)
    server_count_guess = rest - vm_count
    access = max(1, server_count_guess // SERVERS_PER_ACCESS_SWITCH)
    hypervisors = vm_count // VMS_PER_HYPERVISOR
    clusters = max(1, hypervisors // CLUSTER_SIZE)
    switches = 2 + distribution + access
    servers = rest - vm_count - switches - clusters
    if servers < hypervisors + 1:
        raise ValueError(f'n={n} is too small for the layout')

    first = service_count
    core = range(first, first + 2)
    dist = range(core.stop, core.stop + distribution)
    acc = range(dist.stop, dist.stop + access)
    server_ids = range(acc.stop, acc.stop + servers)
    hyper_ids = range(server_ids.start, server_ids.start + hypervisors)
    cluster_ids = range(server_ids.stop, server_ids.stop + clusters)
    vm_ids = range(cluster_ids.stop, cluster_ids.stop + vm_count)
    assert vm_ids.stop == n

    kinds = array('q', [SERVICE]) * service_count
    kinds.extend(array('q', [DEVICE]) * (cluster_ids.start - first))
    kinds.extend(array('q', [CLUSTER]) * clusters)
    kinds.extend(array('q', [VM]) * vm_count)

    _cabling(rng, edges, core, dist, acc, server_ids)
    # Neighbouring ids share a rack: hypervisors fill one cluster after another, VMs one hypervisor after another.
    for i, h in enumerate(hyper_ids):
        edges.add(h, cluster_ids[min(clusters - 1, i // CLUSTER_SIZE)], CLUSTER_MEMBER)
    for i, v in enumerate(vm_ids):
        edges.add(hyper_ids[i * hypervisors // vm_count], v, HOSTS)

    carriers = [*range(hyper_ids.stop, server_ids.stop), *vm_ids]
    _carriers(rng, edges, carriers, service_count)

    behind = tuple(_behind(core_switch, core, dist, acc) for core_switch in core)
    return EnterpriseMap(
        seed=seed,
        kinds=kinds,
        src=edges.src,
        dst=edges.dst,
        kind=edges.kind,
        group=edges.group,
        services=services,
        core_switches=tuple(core),
        behind_core=behind,
        vms=vm_ids,
        devices=range(first, cluster_ids.start),
    )


def _layers(service_count: int) -> list[range]:
    bounds = [0]
    for share in LAYERS[:-1]:
        bounds.append(bounds[-1] + max(1, int(service_count * share)))
    bounds.append(service_count)
    return [range(a, b) for a, b in itertools.pairwise(bounds)]


def _service_dependencies(rng: random.Random, edges: _Edges, layers: list[range]) -> None:
    """Each service above the platform depends on 1-2 draws of lower services, Zipf-preferred."""
    lower: list[int] = []
    group = 0
    for layer_index, layer in enumerate(layers):
        if layer_index:
            popularity = lower[:]
            rng.shuffle(popularity)
            cum = _zipf_cum_weights(len(popularity))
            for s in layer:
                deps = set(rng.choices(popularity, cum_weights=cum, k=rng.randint(1, DEPENDENCY_DRAWS)))
                if rng.random() < REDUNDANT_SHARE and len(deps) >= 2:
                    a, b = deps.pop(), deps.pop()
                    edges.add(a, s, REDUNDANT, group)
                    edges.add(b, s, REDUNDANT, group)
                    group += 1
                for d in deps:
                    edges.add(d, s, DEPENDS)
        lower.extend(layer)


def _cabling(rng: random.Random, edges: _Edges, core: range, dist: range, acc: range, servers: range) -> None:
    """Distribution switches alternate between the cores; access switches spread over the distribution ones."""
    for i, d in enumerate(dist):
        edges.add(core[i % len(core)], d, CABLE)
    for i, a in enumerate(acc):
        edges.add(dist[i % len(dist)], a, CABLE)
    for i, s in enumerate(servers):
        # Racks of neighbouring servers; most are dual-homed, to two access switches of one distribution switch.
        first = i * len(acc) // len(servers)
        edges.add(acc[first], s, CABLE)
        if rng.random() < DUAL_HOMED and len(acc) > len(dist):
            edges.add(acc[(first + len(dist)) % len(acc)], s, CABLE)


def _carriers(rng: random.Random, edges: _Edges, carriers: list[int], service_count: int) -> None:
    """Neighbouring carriers (one rack, one hypervisor) run the same application: the carriers are cut
    into blocks of ``CARRIER_BLOCK``, each block gets a share of the services (every service exactly one
    block, with a carrier in it), and each carrier carries 1-3 services of its block's share; with
    probability ``ZIPF_CARRIES`` one of them is a popular shared service instead (Zipf)."""
    order = list(range(service_count))
    rng.shuffle(order)
    cum = _zipf_cum_weights(service_count)
    blocks = max(1, len(carriers) // CARRIER_BLOCK)
    for b in range(blocks):
        block = carriers[b * len(carriers) // blocks : (b + 1) * len(carriers) // blocks]
        pool = order[b * service_count // blocks : (b + 1) * service_count // blocks]
        carried: list[set[int]] = [set() for _ in block]
        for i, s in enumerate(pool):
            carried[i % len(block)].add(s)
        for mine in carried:
            want = rng.choices((1, 2, 3), weights=CARRIES_WEIGHTS)[0]
            while len(mine) < want:
                if pool and rng.random() >= ZIPF_CARRIES:
                    mine.add(pool[rng.randrange(len(pool))])
                    if len(mine) >= len(pool):
                        break
                else:
                    mine.update(rng.choices(order, cum_weights=cum, k=1))
        for c, mine in zip(block, carried, strict=True):
            for s in sorted(mine):
                edges.add(c, s, CARRIES)


def _behind(core_switch: int, core: range, dist: range, acc: range) -> tuple[int, ...]:
    """``core_switch`` and the distribution and access switches cabled below it (see ``_cabling``)."""
    c = core.index(core_switch)
    dists = [d for i, d in enumerate(dist) if i % len(core) == c]
    mine = set(dists)
    return (core_switch, *dists, *(a for i, a in enumerate(acc) if dist[i % len(dist)] in mine))


def events(
    graph_map: EnterpriseMap,
    count: int,
    seed: int = 2,
    storm_share: float = 0.3,
    start: float = 0.0,
    rate: float = 1000.0,
) -> list[tuple[int, int, float]]:
    """``count`` events ``(node, severity, time)``: background events at ``rate`` per second, and a
    storm (``storm_share`` of them, in one burst in the middle) on the switches behind the first
    core switch, the servers cabled to them and those servers' services."""
    rng = random.Random(seed)
    n = graph_map.node_count
    targets = storm_nodes(graph_map)
    storm = int(count * storm_share)
    background = count - storm
    out: list[tuple[int, int, float]] = []
    t = start
    for i in range(background):
        if i == background // 2:
            for _ in range(storm):
                t += 1.0 / (rate * 10)
                out.append((targets[rng.randrange(len(targets))], rng.choice((2, 3)), t))
        t += 1.0 / rate
        out.append((rng.randrange(n), rng.randint(0, 3), t))
    if background == 0:
        out.extend((targets[rng.randrange(len(targets))], 3, start + i * 1e-4) for i in range(storm))
    return out


def storm_nodes(graph_map: EnterpriseMap) -> list[int]:
    """The first core switch, the switches below it, the servers they cable and the services on those."""
    switches = set(graph_map.behind_core[0])
    nodes = set(switches)
    for s, d, k in zip(graph_map.src, graph_map.dst, graph_map.kind, strict=True):
        if k == CABLE and s in switches:
            nodes.add(d)
    servers = nodes - switches
    for s, d, k in zip(graph_map.src, graph_map.dst, graph_map.kind, strict=True):
        if k in (CARRIES, HOSTS) and s in servers:
            nodes.add(d)
    return sorted(nodes)


def walk_stats(
    graph_map: EnterpriseMap, samples: int = 2000, depth: int = 5, seed: int = 3, footprint: bool = True
) -> dict[str, float]:
    """Edges per node, and the edges touched by the depth-5 mixed walks down and up from the footprint of
    ``samples`` random nodes (no work cap): median, mean, p99 and the first core switch's. An edge is
    touched when a walk scans it from the node it expands (``edges_*``); ``nodes_*`` counts the nodes
    the walks discover, the edges of their breadth-first trees; TARGETS.md's reference maps touch a median
    60 and a mean 490 edges, over 100,000 from hubs, with about 3.5 edges per node."""
    n = graph_map.node_count
    out: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    inc: list[list[tuple[int, int]]] = [[] for _ in range(n)]
    for s, d, k in set(zip(graph_map.src, graph_map.dst, graph_map.kind, strict=True)):
        if s != d:
            out[s].append((d, k))
            inc[d].append((s, k))
    edge_count = sum(map(len, out))
    kinds = graph_map.kinds

    def touched(x: int) -> tuple[int, int]:
        sources = [x, *(v for v, k in out[x] if footprint and k == CARRIES and kinds[v] == SERVICE)]
        total = found = 0
        for adjacency, down in ((out, True), (inc, False)):
            dist = dict.fromkeys(sources, 0)
            queue = list(sources)
            unexpanded: set[int] = set()
            for u in queue:
                du = dist[u]
                if du >= depth:
                    continue
                total += len(adjacency[u])
                for v, k in adjacency[u]:
                    terminal = k in (REDUNDANT, CLUSTER_MEMBER)
                    if not down and terminal and du:
                        continue
                    if v not in dist:
                        dist[v] = du + 1
                        if terminal and down:
                            unexpanded.add(v)
                        else:
                            queue.append(v)
                    elif not terminal and v in unexpanded:
                        unexpanded.discard(v)
                        dist[v] = du + 1
                        queue.append(v)
            found += len(dist) - len(set(sources))
        return total, found

    rng = random.Random(seed)
    walks = [touched(rng.randrange(n)) for _ in range(samples)]
    stats = {'edges_per_node': edge_count / n}
    for i, name in enumerate(('edges', 'nodes')):
        counts = sorted(w[i] for w in walks)
        stats[f'{name}_median'] = counts[len(counts) // 2]
        stats[f'{name}_mean'] = sum(counts) / len(counts)
        stats[f'{name}_p99'] = counts[min(len(counts) - 1, len(counts) * 99 // 100)]
        stats[f'{name}_core_switch'] = touched(graph_map.core_switches[0])[i]
    return stats


if __name__ == '__main__':
    import sys

    for size in map(int, sys.argv[1:] or ['10000', '100000']):
        stats = walk_stats(generate(size))
        print(size, {k: round(v, 2) for k, v in stats.items()})
