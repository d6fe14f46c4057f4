"""Generates the demo's dependency map from a seed: real service graphs with made-up infrastructure under them.

    python -m business_application.demo.generate [--seed 7] [--summary]

The two bundled service graphs (Online Boutique and Sock Shop, ``data/graphs/``) are deployed once
per region as business applications. Under them: shared hub services that nearly every service
depends on (DNS, NTP, single sign-on, secrets, mail), regional LDAP, monitoring, CI, backup and
analytics pools, racks of servers behind top-of-rack switches (role ``switch``) uplinked to core
switches, and hypervisors in clusters running the stateless services and many tenant VMs. The
output is a scenario file's ``graph`` (docs/scenario-format.md), so the replay tool reads the map
as NetBox does; keys the format does not know (site, rack, position, device_type, ...) are for the
NetBox loader. The same seed always gives the same map. Pure Python: no Django.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

__all__ = ('DEFAULT_SEED', 'GRAPHS', 'REGIONS', 'generate', 'instance_service', 'load_graph', 'summary')

DEFAULT_SEED = 7
DATA = Path(__file__).resolve().parent / 'data'

#: region code -> (site name, display name, second octet of its addresses)
REGIONS = {'eu': ('dc-eu1', 'Europe', 10), 'us': ('dc-us1', 'North America', 20), 'ap': ('dc-ap1', 'Asia Pacific', 30)}
#: bundled graph -> (instance prefix, appcode prefix, display name)
GRAPHS = {'online-boutique': ('btq', 'BTQ', 'Online Boutique'), 'sock-shop': ('sock', 'SOCK', 'Sock Shop')}

RACK_KINDS = ('infra', 'baremetal', 'baremetal', 'baremetal', 'compute', 'compute')
BAREMETAL_SLOTS = 16
HYPERVISORS_PER_RACK = 12
CLUSTERS_PER_REGION = 2
TENANT_VMS_PER_REGION = 150

#: Replicas of the stateless services (VMs); the rest run 2.
REPLICAS = {'frontend': 3, 'front-end': 3, 'orders': 3, 'loadgenerator': 1, 'queue-master': 1}
#: Bare-metal nodes of the datastores and queues; the rest run 3, one per rack.
STATEFUL_NODES = {'redis-cart': 2, 'session-db': 2}
#: Hubs a service needs besides DNS (every service) and NTP (every stateful one).
HUB_NEEDS = {
    'frontend': ('auth-sso',),
    'checkoutservice': ('vault',),
    'paymentservice': ('vault',),
    'emailservice': ('smtp-relay',),
    'shoppingassistantservice': ('vault',),
    'front-end': ('auth-sso',),
    'user': ('vault',),
    'payment': ('vault',),
    'queue-master': ('smtp-relay',),
}
#: Shared hub services: name -> (description, device name stems of its carriers in every region).
HUBS = {
    'dns': ('Recursive DNS for every workload', ('dns-01', 'dns-02')),
    'ntp': ('Time service', ('ntp-01',)),
    'auth-sso': ('Single sign-on (OIDC) for staff and customers', ('sso-01', 'sso-02')),
    'vault': ('Secrets and certificates', ('vault-01', 'vault-02')),
    'smtp-relay': ('Outbound mail relay', ('smtp-01',)),
}
DEVICE_TYPES = {
    'server-1u': {'model': 'Server 1U', 'u_height': 1},
    'hypervisor-2u': {'model': 'Hypervisor host 2U', 'u_height': 2},
    'tor-48p': {'model': 'Switch 48x25G', 'u_height': 1},
    'core-32p': {'model': 'Core switch 32x100G', 'u_height': 2},
}
TENANT_TEAMS = ('web', 'data', 'qa', 'sre', 'fin', 'hr', 'mkt', 'sec')
TENANT_PURPOSES = ('test', 'build', 'etl', 'sandbox', 'jump', 'batch', 'report', 'proxy')
FLAVOURS = ((2, 4096), (2, 8192), (4, 8192), (4, 16384), (8, 32768))


def load_graph(name: str) -> dict[str, Any]:
    """One bundled service graph (``data/graphs/<name>.yaml``) as parsed YAML."""
    return yaml.safe_load((DATA / 'graphs' / f'{name}.yaml').read_text(encoding='utf-8'))


def instance_service(graph: str, region: str, service: str) -> str:
    """The name of a real service as deployed in one region, e.g. ``sock-us-orders-db``."""
    return f'{GRAPHS[graph][0]}-{region}-{service}'


class _Builder:
    """Accumulates the map; every list keeps insertion order, so the output depends only on the seed."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.services: list[dict[str, Any]] = []
        self.applications: list[dict[str, Any]] = []
        self.dependencies: list[dict[str, Any]] = []
        self.clusters: list[dict[str, Any]] = []
        self.devices: list[dict[str, Any]] = []
        self.vms: list[dict[str, Any]] = []
        self.sites: list[dict[str, Any]] = []
        self.racks: list[dict[str, Any]] = []
        self.carriers: dict[str, list[str]] = {}

    def service(self, name: str, description: str) -> str:
        self.services.append({'name': name, 'type': 'technical', 'description': description})
        return name

    def depends(self, service: str, depends_on: str, kind: str = 'normal', name: str = '') -> None:
        self.dependencies.append(
            {
                'service': service,
                'depends_on': depends_on,
                'type': kind,
                'name': name or f'{service} needs {depends_on}',
            }
        )

    def device(
        self,
        name: str,
        role: str,
        rack: dict[str, Any],
        position: int,
        device_type: str,
        services: tuple[str, ...] = (),
        cluster: str = '',
        links: tuple[str, ...] = (),
        primary_ip: str = '',
    ) -> dict[str, Any]:
        device = {
            'name': name,
            'role': role,
            'services': list(services),
            'cluster': cluster,
            'links': list(links),
            'primary_ip': primary_ip,
            'site': rack['site'],
            'rack': rack['name'],
            'position': position,
            'device_type': device_type,
        }
        self.devices.append(device)
        for service in services:
            self.carriers.setdefault(service, []).append(f'device:{name}')
        return device

    def vm(self, name: str, host: dict[str, Any], services: tuple[str, ...], primary_ip: str) -> None:
        vcpus, memory = self.rng.choice(FLAVOURS)
        self.vms.append(
            {
                'name': name,
                'cluster': host['cluster'],
                'host': host['name'],
                'services': list(services),
                'primary_ip': primary_ip,
                'site': host['site'],
                'vcpus': vcpus,
                'memory': memory,
            }
        )
        for service in services:
            self.carriers.setdefault(service, []).append(f'vm:{name}')


def generate(seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The demo map for ``seed`` as a scenario document (``name``, ``description``, ``graph``, ``demo``)."""
    builder = _Builder(seed)
    graphs = {name: load_graph(name) for name in GRAPHS}
    _hub_services(builder)
    for region in REGIONS:
        _application_services(builder, graphs, region)
    for region in REGIONS:
        _region_infrastructure(builder, graphs, region)
    return {
        'name': f'demo-seed-{seed}',
        'description': f'netbox-business-application demo map (seed {seed}): Online Boutique and Sock Shop '
        f'in {len(REGIONS)} regions on generated infrastructure',
        'demo': {'seed': seed, 'sites': builder.sites, 'racks': builder.racks, 'device_types': DEVICE_TYPES},
        'graph': {
            'services': builder.services,
            'business_applications': builder.applications,
            'dependencies': builder.dependencies,
            'clusters': builder.clusters,
            'devices': builder.devices,
            'vms': builder.vms,
        },
    }


def _hub_services(builder: _Builder) -> None:
    for name, (description, _) in HUBS.items():
        builder.service(name, description)
    for region, (_, display, _) in REGIONS.items():
        builder.service(f'ldap-{region}', f'Directory replica, {display}')
    builder.depends('dns', 'ntp')
    for name in ('auth-sso', 'vault', 'smtp-relay'):
        builder.depends(name, 'dns')
    for name in ('auth-sso', 'vault'):
        builder.depends(name, 'ntp')
    for region in REGIONS:
        builder.depends(f'ldap-{region}', 'ntp')
        # Single sign-on works while any directory replica answers.
        builder.depends('auth-sso', f'ldap-{region}', 'redundancy', 'auth-sso directory')
    builder.applications.append(
        {'name': 'Identity and access', 'appcode': 'IAM', 'services': ['auth-sso', *(f'ldap-{r}' for r in REGIONS)]}
    )
    builder.applications.append(
        {'name': 'Core infrastructure', 'appcode': 'CORE-INFRA', 'services': ['dns', 'ntp', 'vault', 'smtp-relay']}
    )


def _stateful(graph: dict[str, Any]) -> set[str]:
    """Datastores and queues: what a dependency of kind datastore or queue points at."""
    return {d['depends_on'] for d in graph['graph']['dependencies'] if d.get('kind') in ('datastore', 'queue')}


def _application_services(builder: _Builder, graphs: dict[str, dict[str, Any]], region: str) -> None:
    display = REGIONS[region][1]
    for graph_name, graph in graphs.items():
        prefix, appcode, title = GRAPHS[graph_name]
        stateful = _stateful(graph)
        names = []
        for service in graph['graph']['services']:
            name = builder.service(instance_service(graph_name, region, service), f'{title} {service}, {display}')
            names.append(name)
            builder.depends(name, 'dns')
            if service in stateful:
                builder.depends(name, 'ntp')
            for hub in HUB_NEEDS.get(service, ()):
                builder.depends(name, hub)
        for dependency in graph['graph']['dependencies']:
            builder.depends(
                instance_service(graph_name, region, dependency['service']),
                instance_service(graph_name, region, dependency['depends_on']),
            )
        builder.applications.append(
            {'name': f'{title} ({display})', 'appcode': f'{appcode}-{region.upper()}', 'services': names}
        )
    for pool, description in (
        ('ci', 'CI runners'),
        ('monitoring', 'Monitoring stack'),
        ('backup', 'Backup storage'),
        ('analytics', 'Analytics cluster'),
    ):
        name = builder.service(f'{pool}-{region}', f'{description}, {display}')
        builder.depends(name, 'dns')
        if pool == 'ci':
            builder.depends(name, 'vault')
    if region == next(iter(REGIONS)):
        builder.applications.append({'name': 'Engineering operations', 'appcode': 'OPS', 'services': []})
        builder.applications.append({'name': 'Analytics', 'appcode': 'ANALYTICS', 'services': []})
    apps = {app['appcode']: app for app in builder.applications}
    apps['OPS']['services'] += [f'ci-{region}', f'monitoring-{region}', f'backup-{region}']
    apps['ANALYTICS']['services'].append(f'analytics-{region}')


def _region_infrastructure(builder: _Builder, graphs: dict[str, dict[str, Any]], region: str) -> None:
    site, display, octet = REGIONS[region]
    builder.sites.append({'name': site, 'region': region, 'description': f'Data centre, {display}'})
    racks = []
    for number, kind in enumerate(RACK_KINDS, start=1):
        rack = {'name': f'{region}-r{number:02}', 'site': site, 'kind': kind, 'number': number}
        builder.racks.append(rack)
        racks.append(rack)
    infra = racks[0]
    cores = [
        builder.device(
            f'{region}-core-{n:02}', 'core-switch', infra, 36 + 2 * n, 'core-32p', primary_ip=f'10.{octet}.0.{n}/24'
        )
        for n in (1, 2)
    ]
    tors = {}
    for rack in racks:
        tors[rack['name']] = builder.device(
            f'{rack["name"]}-tor',
            'switch',
            rack,
            42,
            'tor-48p',
            links=tuple(c['name'] for c in cores),
            primary_ip=f'10.{octet}.0.{10 + rack["number"]}/24',
        )

    def server(
        rack: dict[str, Any],
        slot: int,
        name: str,
        role: str = 'server',
        services: tuple[str, ...] = (),
        device_type: str = 'server-1u',
        position: int | None = None,
        cluster: str = '',
    ) -> dict[str, Any]:
        return builder.device(
            name,
            role,
            rack,
            slot if position is None else position,
            device_type,
            services=services,
            cluster=cluster,
            links=(tors[rack['name']]['name'],),
            primary_ip=f'10.{octet}.{rack["number"]}.{10 + slot}/24',
        )

    slot = 0
    for hub, (_, stems) in HUBS.items():
        for stem in stems:
            slot += 1
            server(infra, slot, f'{region}-{stem}', services=(hub,))
    for stem, service in (
        ('ldap-01', f'ldap-{region}'),
        ('ldap-02', f'ldap-{region}'),
        ('mon-01', f'monitoring-{region}'),
        ('mon-02', f'monitoring-{region}'),
    ):
        slot += 1
        server(infra, slot, f'{region}-{stem}', services=(service,))

    _baremetal(builder, graphs, region, [r for r in racks if r['kind'] == 'baremetal'], server)
    hosts = _compute(builder, region, [r for r in racks if r['kind'] == 'compute'], server)
    _virtual_machines(builder, graphs, region, hosts, octet)


def _baremetal(
    builder: _Builder, graphs: dict[str, dict[str, Any]], region: str, racks: list[dict[str, Any]], server: Any
) -> None:
    """Datastores and queues on bare metal, one node per rack, except the redis pair, which shares a rack."""
    rng = builder.rng
    placed: dict[str, list[tuple[str, str]]] = {rack['name']: [] for rack in racks}
    for graph_name, graph in graphs.items():
        for stateful in sorted(_stateful(graph)):
            service = instance_service(graph_name, region, stateful)
            count = STATEFUL_NODES.get(stateful, 3)
            if stateful == 'redis-cart':
                # A gap real inventories have: both replicas in one rack, so one switch takes the service down.
                chosen = [rng.choice(racks)] * count
            else:
                chosen = rng.sample(racks, count)
            for number, rack in enumerate(chosen, start=1):
                placed[rack['name']].append((f'{service}-{number:02}', service))
    counters: Counter[str] = Counter()
    for rack in racks:
        nodes = placed[rack['name']]
        counters['backup'] += 1
        nodes.append((f'{region}-bkp-{counters["backup"]:02}', f'backup-{region}'))
        while len(nodes) < BAREMETAL_SLOTS:
            pool = rng.choice(('ci', 'analytics'))
            counters[pool] += 1
            stem = 'ci-bm' if pool == 'ci' else 'spark'
            nodes.append((f'{region}-{stem}-{counters[pool]:02}', f'{pool}-{region}'))
        rng.shuffle(nodes)
        for slot, (name, service) in enumerate(nodes, start=1):
            server(rack, slot, name, services=(service,))


def _compute(builder: _Builder, region: str, racks: list[dict[str, Any]], server: Any) -> list[dict[str, Any]]:
    """Hypervisors in both compute racks; each cluster takes hosts from every rack."""
    site = REGIONS[region][0]
    clusters = [f'{region}-vc-{n:02}' for n in range(1, CLUSTERS_PER_REGION + 1)]
    for name in clusters:
        builder.clusters.append({'name': name, 'services': [], 'site': site, 'type': 'Virtualization'})
    hosts = []
    number = 0
    for rack in racks:
        for slot in range(1, HYPERVISORS_PER_RACK + 1):
            number += 1
            hosts.append(
                server(
                    rack,
                    slot,
                    f'{region}-hv-{number:02}',
                    role='hypervisor',
                    device_type='hypervisor-2u',
                    position=2 * slot - 1,
                    cluster=clusters[(slot - 1) % len(clusters)],
                )
            )
    return hosts


def _virtual_machines(
    builder: _Builder, graphs: dict[str, dict[str, Any]], region: str, hosts: list[dict[str, Any]], octet: int
) -> None:
    rng = builder.rng
    addresses = iter(range(10_000))

    def address() -> str:
        n = next(addresses)
        return f'10.{octet}.{100 + n // 200}.{10 + n % 200}/24'

    def place(names: list[str], services: tuple[str, ...]) -> None:
        # Replicas of one service never share a host (an anti-affinity rule).
        for name, host in zip(names, rng.sample(hosts, len(names)), strict=True):
            builder.vm(name, host, services, address())

    for graph_name, graph in graphs.items():
        stateful = _stateful(graph)
        for service in graph['graph']['services']:
            if service in stateful:
                continue
            name = instance_service(graph_name, region, service)
            place([f'{name}-{n:02}' for n in range(1, REPLICAS.get(service, 2) + 1)], (name,))
    place([f'{region}-ci-vm-{n:02}' for n in range(1, 9)], (f'ci-{region}',))
    place(
        [f'{region}-{stem}' for stem in ('prom-01', 'prom-02', 'grafana-01', 'alertmanager-01')],
        (f'monitoring-{region}',),
    )
    seen: Counter[str] = Counter()
    for _ in range(TENANT_VMS_PER_REGION):
        stem = f'{region}-{rng.choice(TENANT_TEAMS)}-{rng.choice(TENANT_PURPOSES)}'
        seen[stem] += 1
        builder.vm(f'{stem}-{seen[stem]:02}', rng.choice(hosts), (), address())


def summary(demo_map: dict[str, Any]) -> dict[str, int]:
    """Counts of what the map holds (cables are the device links, each pair once)."""
    graph = demo_map['graph']
    roles = Counter(device['role'] for device in graph['devices'])
    return {
        'sites': len(demo_map['demo']['sites']),
        'racks': len(demo_map['demo']['racks']),
        'business_applications': len(graph['business_applications']),
        'services': len(graph['services']),
        'dependencies': len(graph['dependencies']),
        'clusters': len(graph['clusters']),
        'devices': len(graph['devices']),
        'switches': roles['switch'] + roles['core-switch'],
        'servers': roles['server'],
        'hypervisors': roles['hypervisor'],
        'vms': len(graph['vms']),
        'cables': sum(len(device['links']) for device in graph['devices']),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m business_application.demo.generate', description=__doc__.split('\n')[0]
    )
    parser.add_argument('--seed', type=int, default=DEFAULT_SEED, help=f'random seed (default {DEFAULT_SEED})')
    parser.add_argument('--summary', action='store_true', help='print counts instead of the map')
    args = parser.parse_args(argv)
    demo_map = generate(args.seed)
    if args.summary:
        for key, value in summary(demo_map).items():
            print(f'{key:>22}: {value}')
    else:
        yaml.safe_dump(demo_map, sys.stdout, sort_keys=False, width=120)
    return 0


if __name__ == '__main__':
    sys.exit(main())
