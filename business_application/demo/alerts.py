"""The demo's alert burst: a few hundred notifications that tell stories a NOC engineer recognises.

    python -m business_application.demo.alerts [--seed 7] [--scenario]

Built from the names of the generated map (``generate.py``) and the same seed, in three regions
chosen by the seed:

- **top-of-rack switch**: a switch of a bare-metal rack dies. Every server behind it goes
  unreachable (Checkmk, a blackbox probe and node_exporter all say so), the Redis pair that lives
  in that rack takes the cart service down and the storefront with it, replicated datastores lose
  a member; the switch's own alerts arrive last, because switches are polled less often.
- **database**: Sock Shop's orders database of one region fills its disk and loses its primary;
  the storefront reports errors first, the database last.
- **hypervisor**: a hypervisor stops responding with its VMs; vSphere HA restarts some of them
  elsewhere, so their alerts clear.
- **noise**: warnings and info alerts on healthy parts that nothing links to the outages, a link
  that flaps and clears twice, memory pressure that clears, and a host NetBox does not know.

Monitoring systems repeat themselves: most alerts arrive several times with the same dedup id.
``--scenario`` prints map, burst and the expected incidents as one scenario file, so the replay
tool checks the grouping without NetBox. Pure Python: no Django.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import random
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import yaml

from ..correlation.settings import DEFAULT_NETWORK_ROLES, Settings
from .generate import DEFAULT_SEED, REGIONS, generate, instance_service

__all__ = ('HORIZON', 'UNMAPPED_HOST', 'Alert', 'Check', 'Topology', 'build_burst', 'expected_incidents', 'scenario')

UNMAPPED_HOST = 'device:ghost-17'
#: The burst covers this many seconds of monitoring time; repeats stop there.
HORIZON = 600.0


class Check(NamedTuple):
    """What raises an alert: its severity, the monitoring system, the check's name and how often it re-notifies."""

    severity: str
    source: str
    name: str
    every: float = 240.0


PING = Check('critical', 'checkmk', 'PING', 180)
ICMP = Check('high', 'prometheus', 'ICMP ping failed')
NODE_DOWN = Check('critical', 'prometheus', 'InstanceDown')


@dataclasses.dataclass(frozen=True)
class Alert:
    """One notification: ``target`` is ``kind:name`` (or a label NetBox does not know when not ``mapped``)."""

    ref: str
    t: float
    story: str
    target: str
    mapped: bool
    severity: str
    status: str
    source: str
    dedup_id: str
    check: str
    message: str


class Topology:
    """Which objects an alert could be linked to: a walk up and a walk down from its footprint, to the depth.

    It follows the edges the correlation engine builds (docs/correlation.md) but ignores where the
    engine stops at redundancy and cluster edges, so it may find a link the engine would not: it is
    used only to keep the stories apart, where erring that way is safe.
    """

    def __init__(self, graph: dict[str, Any], depth: int | None = None, network_roles=DEFAULT_NETWORK_ROLES):
        self.depth = depth or Settings().max_dependency_depth
        self.down: dict[str, set[str]] = defaultdict(set)
        self.up: dict[str, set[str]] = defaultdict(set)
        self.carried: dict[str, set[str]] = defaultdict(set)
        self._reach: dict[str, frozenset[str]] = {}
        for dependency in graph['dependencies']:
            self._edge(f'service:{dependency["depends_on"]}', f'service:{dependency["service"]}')
        for app in graph['business_applications']:
            for service in app['services']:
                self._edge(f'service:{service}', f'app:{app["appcode"]}')
        for kind, items in (('cluster', graph['clusters']), ('device', graph['devices']), ('vm', graph['vms'])):
            for item in items:
                for service in item['services']:
                    self._edge(f'{kind}:{item["name"]}', f'service:{service}')
                    self.carried[f'{kind}:{item["name"]}'].add(f'service:{service}')
        roles = {device['name']: device['role'] for device in graph['devices']}
        for device in graph['devices']:
            if device['cluster']:
                self._edge(f'device:{device["name"]}', f'cluster:{device["cluster"]}')
            for other in device['links']:
                near, far = roles[device['name']] in network_roles, roles[other] in network_roles
                if near != far:
                    switch, server = (device['name'], other) if near else (other, device['name'])
                    self._edge(f'device:{switch}', f'device:{server}')
        for vm in graph['vms']:
            self._edge(f'device:{vm["host"]}' if vm['host'] else f'cluster:{vm["cluster"]}', f'vm:{vm["name"]}')

    def _edge(self, upstream: str, downstream: str) -> None:
        self.down[upstream].add(downstream)
        self.up[downstream].add(upstream)

    def footprint(self, node: str) -> set[str]:
        return {node} | self.carried.get(node, set())

    def reach(self, node: str) -> frozenset[str]:
        """Every node a walk in one direction from the footprint meets within the depth."""
        if node not in self._reach:
            reached = set(self.footprint(node))
            for adjacency in (self.down, self.up):
                layer = seen = set(self.footprint(node))
                for _ in range(self.depth):
                    layer = {n for m in layer for n in adjacency.get(m, ()) if n not in seen}
                    seen = seen | layer
                reached |= seen
            self._reach[node] = frozenset(reached)
        return self._reach[node]

    def linked(self, a: str, b: str) -> bool:
        return bool(self.reach(a) & self.footprint(b)) or bool(self.reach(b) & self.footprint(a))


class _Burst:
    """Collects the notifications of every story; refs are given once they are in arrival order."""

    def __init__(self, demo_map: dict[str, Any], seed: int):
        self.rng = random.Random(seed * 7919 + 1)
        self.graph = demo_map['graph']
        self.racks = demo_map['demo']['racks']
        self.topology = Topology(self.graph)
        self.notes: list[dict[str, Any]] = []
        self.members: dict[str, set[str]] = defaultdict(set)
        self.carriers: dict[str, list[str]] = defaultdict(list)
        for kind, items in (('device', self.graph['devices']), ('vm', self.graph['vms'])):
            for item in items:
                for service in item['services']:
                    self.carriers[service].append(f'{kind}:{item["name"]}')

    def fire(
        self,
        story: str,
        t: float,
        target: str,
        check: Check,
        message: str,
        repeats: int | None = None,
        clear_at: float | None = None,
        mapped: bool = True,
    ) -> None:
        """A firing alert, its repeats (same dedup id, later) and, optionally, its clear.

        Without ``repeats`` the source re-notifies every ``check.every`` seconds until the alert
        clears or the burst ends, as monitoring systems do.
        """
        base = {
            'story': story,
            'target': target,
            'mapped': mapped,
            'severity': check.severity,
            'source': check.source,
            'dedup_id': _dedup_id(check, target),
            'check': check.name,
            'message': message,
        }
        end = HORIZON if clear_at is None else clear_at
        count = int((end - t) // check.every) + 1 if repeats is None else repeats + 1
        for n in range(max(count, 1)):
            if n == 0 or t + n * check.every < end:
                self.notes.append({**base, 't': round(t + n * check.every, 1), 'status': 'triggered'})
        if clear_at is not None:
            self.notes.append({**base, 't': round(clear_at, 1), 'status': 'ok', 'message': f'RECOVERED: {message}'})
        if mapped:
            self.members[story].add(target)

    def unlinked(self, candidate: str) -> bool:
        """True when nothing already in the burst could link to ``candidate``."""
        return not any(self.topology.linked(candidate, m) for members in self.members.values() for m in members)

    def pick(self, candidates: list[str]) -> str:
        """A seeded choice among the candidates nothing in the burst could link to."""
        candidates = sorted(candidates)
        self.rng.shuffle(candidates)
        for candidate in candidates:
            if self.unlinked(candidate):
                return candidate
        raise RuntimeError('demo burst: no healthy object is left for a noise alert')

    def alerts(self) -> list[Alert]:
        ordered = sorted(enumerate(self.notes), key=lambda item: (item[1]['t'], item[0]))
        return [Alert(ref=f'n{n}', **note) for n, (_, note) in enumerate(ordered, start=1)]


def _dedup_id(check: Check, target: str) -> str:
    """Dedup ids in each source's own style."""
    name = target.partition(':')[2]
    if check.source == 'checkmk':
        return f'{check.name}/{name}'
    if check.source == 'vcenter':
        return f'alarm-{check.name}-{name}'
    return hashlib.sha256(f'{check.source}|{target}|{check.name}'.encode()).hexdigest()[:16]


def build_burst(demo_map: dict[str, Any] | None = None, seed: int = DEFAULT_SEED) -> list[Alert]:
    """The whole burst in arrival order (``t`` seconds from its start); the map defaults to ``generate(seed)``."""
    demo_map = demo_map or generate(seed)
    burst = _Burst(demo_map, seed)
    regions = list(REGIONS)
    burst.rng.shuffle(regions)
    _switch_story(burst, regions[0])
    _database_story(burst, regions[1])
    _hypervisor_story(burst, regions[2])
    stories = sorted(burst.members)
    for i, first in enumerate(stories):
        for second in stories[i + 1 :]:
            if any(burst.topology.linked(a, b) for a in burst.members[first] for b in burst.members[second]):
                raise RuntimeError(f'demo burst: the {first} and {second} stories are linked; did the map change?')
    _noise(burst)
    burst.fire(
        'unmapped host',
        120,
        UNMAPPED_HOST,
        Check('critical', 'prometheus', 'InstanceDown', 150),
        'InstanceDown: ghost-17:9100 of job node down for more than 1 minute',
        mapped=False,
    )
    return burst.alerts()


def _host_down(
    burst: _Burst, story: str, t: float, target: str, clear_at: float | None = None, node_exporter: bool = True
) -> None:
    """An unreachable host as three checks see it: Checkmk's ping, a blackbox probe and node_exporter."""
    rng, name = burst.rng, target.partition(':')[2]
    burst.fire(
        story,
        t + rng.uniform(0, 50),
        target,
        PING,
        f'Host DOWN: {name} PING CRITICAL - 100% packet loss',
        clear_at=clear_at,
    )
    burst.fire(
        story, t + 10 + rng.uniform(0, 50), target, ICMP, f'{name} does not reply to ICMP pings', clear_at=clear_at
    )
    if node_exporter:
        burst.fire(
            story,
            t + 25 + rng.uniform(0, 60),
            target,
            NODE_DOWN,
            f'InstanceDown: {name}:9100 of job node down for more than 1 minute',
            clear_at=None if clear_at is None else clear_at + 20,
        )


def _switch_story(burst: _Burst, region: str) -> None:
    story, devices = 'top-of-rack switch', burst.graph['devices']
    racks = {d['name']: d['rack'] for d in devices}
    # The rack that holds a whole service (the Redis pair) hurts most when its switch dies.
    rack = next(
        r['name']
        for r in burst.racks
        if r['kind'] == 'baremetal'
        and r['site'] == REGIONS[region][0]
        and any(
            all(racks.get(c.partition(':')[2]) == r['name'] for c in carriers) for carriers in burst.carriers.values()
        )
    )
    servers = [d for d in devices if d['rack'] == rack and d['role'] == 'server']
    switch = next(d['name'] for d in devices if d['rack'] == rack and d['role'] == 'switch')
    for server in servers:
        _host_down(burst, story, 20, f'device:{server["name"]}')

    def service(name: str) -> str:
        return f'service:{instance_service("online-boutique", region, name)}'

    appcode = f'BTQ-{region.upper()}'
    for t, target, check, message in (
        (
            40,
            service('redis-cart'),
            Check('critical', 'prometheus', 'RedisDown'),
            f'RedisDown: redis_up == 0 on every {instance_service("online-boutique", region, "redis-cart")} node',
        ),
        (
            55,
            service('cartservice'),
            Check('high', 'grafana', 'CartErrors', 300),
            'cartservice: GetCart error ratio 41% (RedisConnectionException)',
        ),
        (
            70,
            service('frontend'),
            Check('high', 'grafana', 'Frontend5xx', 300),
            'frontend: HTTP 5xx ratio 18% on /cart and /checkout',
        ),
        (
            85,
            service('checkoutservice'),
            Check('high', 'grafana', 'CheckoutErrors', 300),
            'checkoutservice: PlaceOrder failing, 33% of requests',
        ),
        (
            110,
            f'app:{appcode}',
            Check('critical', 'grafana', 'AvailabilitySLO', 300),
            f'{appcode}: checkout availability 71% over 5 minutes (objective 99.5%)',
        ),
    ):
        burst.fire(story, t, target, check, message)
    # Replicated datastores behind the switch lose a member: their peers report it, degraded, not down.
    for server in servers:
        for name in server['services']:
            if '-db' in name or 'rabbitmq' in name:
                burst.fire(
                    story,
                    60 + burst.rng.uniform(0, 80),
                    f'device:{server["name"]}',
                    Check('warning', 'prometheus', 'ReplicaMemberDown'),
                    f'{name}: member {server["name"]} unreachable from its peers',
                )
    # Switches are polled every few minutes, servers every minute: the switch's own alerts come last.
    burst.fire(
        story,
        200,
        f'device:{switch}',
        Check('critical', 'checkmk', 'SNMP', 300),
        f'Host DOWN: {switch} SNMP timeout, {len(servers)} server ports and both uplinks unreachable',
    )
    burst.fire(story, 215, f'device:{switch}', ICMP, f'{switch} does not reply to ICMP pings')


def _database_story(burst: _Burst, region: str) -> None:
    story, rng = 'database', burst.rng
    database = instance_service('sock-shop', region, 'orders-db')
    nodes = sorted(burst.carriers[database])
    primary = rng.choice(nodes)
    name = primary.partition(':')[2]
    appcode = f'SOCK-{region.upper()}'

    def service(name: str) -> str:
        return f'service:{instance_service("sock-shop", region, name)}'

    # The storefront notices first; the database's own checks come last.
    burst.fire(
        story,
        150,
        service('front-end'),
        Check('high', 'grafana', 'FrontEnd5xx', 300),
        'front-end: HTTP 5xx ratio 12% on POST /orders',
    )
    for vm in sorted(burst.carriers[instance_service('sock-shop', region, 'orders')]):
        burst.fire(
            story,
            158 + rng.uniform(0, 20),
            vm,
            Check('high', 'prometheus', 'OrdersErrors'),
            f'{vm.partition(":")[2]}: MongoTimeoutException on POST /orders',
        )
    burst.fire(
        story,
        175,
        service('orders'),
        Check('critical', 'grafana', 'OrdersErrorRatio', 300),
        'orders: error ratio 64% over 5 minutes',
    )
    burst.fire(
        story,
        185,
        primary,
        Check('critical', 'checkmk', 'Filesystem_/var/lib/mongodb', 180),
        f'Filesystem /var/lib/mongodb on {name} CRITICAL - 100% used (1.8 TiB of 1.8 TiB)',
    )
    burst.fire(
        story,
        190,
        primary,
        Check('critical', 'checkmk', 'Process_mongod', 180),
        f'Process mongod on {name} CRITICAL - 0 processes',
    )
    for node in nodes:
        if node != primary:
            burst.fire(
                story,
                195 + rng.uniform(0, 10),
                node,
                Check('high', 'prometheus', 'MongodbNoPrimary'),
                f'{node.partition(":")[2]}: replica set {database} has no PRIMARY',
            )
    burst.fire(
        story,
        205,
        f'service:{database}',
        Check('critical', 'prometheus', 'MongodbReplicaSetDown'),
        f'{database}: replica set has no PRIMARY, writes failing',
    )
    burst.fire(
        story,
        215,
        service('edge-router'),
        Check('high', 'grafana', 'EdgeRouter5xx', 300),
        'edge-router: HTTP 5xx ratio 9%',
        clear_at=420,
    )
    burst.fire(
        story,
        230,
        f'app:{appcode}',
        Check('critical', 'grafana', 'OrderSuccessSLO', 300),
        f'{appcode}: order success rate 35% over 5 minutes (objective 99%)',
    )


def _hypervisor_story(burst: _Burst, region: str) -> None:
    story, rng = 'hypervisor', burst.rng
    hosts = [d for d in burst.graph['devices'] if d['role'] == 'hypervisor' and d['site'] == REGIONS[region][0]]
    guests = defaultdict(list)
    for vm in burst.graph['vms']:
        guests[vm['host']].append(vm)
    # The host carrying the most services (then the most VMs) has the most to tell.
    host = max(
        hosts, key=lambda d: (sum(bool(v['services']) for v in guests[d['name']]), len(guests[d['name']]), rng.random())
    )
    name = host['name']
    burst.fire(
        story,
        300,
        f'device:{name}',
        Check('critical', 'vcenter', 'HostConnectionState', 300),
        f'Host {name} is not responding (connection lost)',
    )
    burst.fire(story, 312, f'device:{name}', PING, f'Host DOWN: {name} PING CRITICAL - 100% packet loss')
    for vm in sorted(guests[name], key=lambda v: v['name']):
        # vSphere HA restarts some guests on other hosts after a few minutes: their alerts clear.
        clear = 470 + rng.uniform(0, 90) if rng.random() < 0.4 else None
        _host_down(burst, story, 305, f'vm:{vm["name"]}', clear_at=clear, node_exporter=bool(vm['services']))
    burst.fire(
        story,
        335,
        f'cluster:{host["cluster"]}',
        Check('high', 'vcenter', 'HAFailoverResources', 300),
        f'Cluster {host["cluster"]}: insufficient vSphere HA failover resources',
    )


def _noise(burst: _Burst) -> None:
    """Alerts on healthy parts: each one unrelated to the outages and to the other noise."""
    rng = burst.rng
    servers = [f'device:{d["name"]}' for d in burst.graph['devices'] if d['role'] == 'server']
    service_vms = [f'vm:{v["name"]}' for v in burst.graph['vms'] if v['services']]
    tenant_vms = [f'vm:{v["name"]}' for v in burst.graph['vms'] if not v['services']]
    for n, (pool, check, text) in enumerate(
        (
            (
                servers,
                Check('warning', 'prometheus', 'FilesystemAlmostFull', 300),
                '{name}: filesystem / 87% used, full in about 3 days',
            ),
            (service_vms, Check('warning', 'prometheus', 'ClockSkew', 300), '{name}: NTP offset 180 ms'),
            (
                servers,
                Check('warning', 'checkmk', 'HTTPS_Certificate', 300),
                'HTTPS certificate on {name} WARNING - expires in 12 days',
            ),
        ),
        start=1,
    ):
        target = burst.pick(pool)
        burst.fire(f'noise {n}', rng.uniform(0, 300), target, check, text.format(name=target.partition(':')[2]))
    for pool, check, text in (
        (tenant_vms, Check('info', 'checkmk', 'APT_Updates'), '{name}: 14 pending package updates (3 security)'),
        (servers, Check('info', 'checkmk', 'NTP_Time'), '{name}: NTP stratum changed from 2 to 3'),
        (servers, Check('info', 'checkmk', 'Backup_Job'), '{name}: nightly backup finished with 3 skipped files'),
        (tenant_vms, Check('info', 'prometheus', 'HighLoad'), '{name}: load average 6.2 for 15 minutes'),
        (service_vms, Check('info', 'prometheus', 'GCPauses'), '{name}: JVM GC pauses 180 ms at p99'),
        (tenant_vms, Check('info', 'checkmk', 'Uptime'), '{name}: rebooted 12 minutes ago'),
        (servers, Check('info', 'checkmk', 'IPMI_Sensors'), '{name}: PSU 2 input voltage at the lower limit'),
        (tenant_vms, Check('info', 'prometheus', 'ConntrackHigh'), '{name}: conntrack table 72% full'),
    ):
        target = burst.pick(pool)
        burst.fire(
            'info',
            rng.uniform(0, 560),
            target,
            check,
            text.format(name=target.partition(':')[2]),
            repeats=rng.choice((0, 1)),
        )
    flapping = burst.pick(servers)
    name = flapping.partition(':')[2]
    for start, end in ((250, 310), (380, 430)):
        burst.fire(
            'link flap',
            start,
            flapping,
            Check('high', 'checkmk', 'Interface_eth0', 180),
            f'Interface eth0 on {name} CRITICAL - link down',
            clear_at=end,
        )
    pressure = burst.pick(tenant_vms)
    burst.fire(
        'memory pressure',
        150,
        pressure,
        Check('warning', 'prometheus', 'MemoryPressure', 60),
        f'{pressure.partition(":")[2]}: memory usage 96%',
        clear_at=330,
    )


def expected_incidents(alerts: list[Alert]) -> dict[str, Any]:
    """The incidents a correct engine makes of the burst, as a scenario file's ``expected``.

    One incident per story; info alerts open nothing. Members are the refs that opened each
    alert's event occurrence (its first notification: the flapping link continues its occurrence).
    """
    first: dict[tuple[str, str], Alert] = {}
    for alert in alerts:
        first.setdefault((alert.source, alert.dedup_id), alert)
    stories: dict[str, list[str]] = defaultdict(list)
    for alert in first.values():
        stories[alert.story].append(alert.ref)
    incidents = []
    for story, refs in stories.items():
        if story == 'info':
            continue
        incident: dict[str, Any] = {'members': refs}
        if story in ('link flap', 'memory pressure'):
            incident['status'] = 'resolved'
        roots = [a.target for a in alerts if a.story == story and a.check in ('SNMP', 'HostConnectionState')]
        if roots:
            incident['root_cause'] = roots[0]
        incidents.append(incident)
    return {'incidents': incidents, 'no_incident': stories.get('info', [])}


def scenario(seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The map, the burst and the expected incidents as one scenario document for the replay tool."""
    demo_map = generate(seed)
    alerts = build_burst(demo_map, seed)
    events = [
        {
            'ref': a.ref,
            't': a.t,
            'object': a.target,
            'severity': a.severity,
            'status': a.status,
            'dedup_id': a.dedup_id,
            'source': a.source,
            'message': a.message,
        }
        for a in alerts
    ]
    return {
        'name': f'demo-burst-seed-{seed}',
        'description': f'make demo: the alert burst of seed {seed}',
        'graph': demo_map['graph'],
        'events': events,
        'expected': expected_incidents(alerts),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m business_application.demo.alerts', description='Print the demo alert burst.'
    )
    parser.add_argument('--seed', type=int, default=DEFAULT_SEED, help=f'random seed (default {DEFAULT_SEED})')
    parser.add_argument(
        '--scenario',
        action='store_true',
        help='print map, burst and expected incidents as a scenario file for the replay tool',
    )
    parser.add_argument('--json', action='store_true', help='print the burst as JSON lines')
    args = parser.parse_args(argv)
    if args.scenario:
        yaml.safe_dump(scenario(args.seed), sys.stdout, sort_keys=False, width=120)
        return 0
    start = datetime.now(UTC).replace(microsecond=0)
    for alert in build_burst(seed=args.seed):
        if args.json:
            print(json.dumps(dataclasses.asdict(alert)))
            continue
        at = (start + timedelta(seconds=alert.t)).strftime('%H:%M:%S')
        print(
            f'{alert.ref:>5} {at} {alert.story:<18} {alert.source:<10} {alert.severity:<8} {alert.status:<9} '
            f'{alert.target:<34} {alert.message}'
        )
    return 0


if __name__ == '__main__':
    sys.exit(main())
