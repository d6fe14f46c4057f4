"""The demo map generator and its alert burst: deterministic, the promised shape, stories that group as told.

Pure Python (no Django, no database): runs under ``-p no:django`` as well as in ``make test``.
"""

import json
from collections import Counter, defaultdict

import pytest

from business_application.correlation.replay import run_scenario
from business_application.correlation.scenario import parse_scenario
from business_application.correlation.settings import DEFAULT_NETWORK_ROLES
from business_application.demo.alerts import UNMAPPED_HOST, build_burst, scenario
from business_application.demo.generate import GRAPHS, HUBS, REGIONS, generate, instance_service, load_graph

SEED = 7


@pytest.fixture(scope='module')
def demo_map():
    return generate(SEED)


@pytest.fixture(scope='module')
def burst(demo_map):
    return build_burst(demo_map, SEED)


def test_same_seed_same_map_and_burst(demo_map, burst):
    assert generate(SEED) == demo_map
    assert build_burst(generate(SEED), SEED) == burst


def test_another_seed_another_map():
    assert generate(SEED + 1)['graph'] != generate(SEED)['graph']
    assert build_burst(seed=SEED + 1) != build_burst(seed=SEED)


def _parse(document, source):
    # JSON is YAML, and much faster to write than YAML for a document of this size.
    return parse_scenario(json.dumps(document), source)


@pytest.fixture(scope='module')
def replayed():
    return {seed: run_scenario(_parse(scenario(seed), f'demo-burst-{seed}')) for seed in (SEED, 42)}


def test_the_map_is_a_valid_scenario_graph(demo_map):
    parsed = _parse(demo_map, 'demo-map')
    assert len(parsed.devices) == len(demo_map['graph']['devices'])
    assert len(parsed.vms) == len(demo_map['graph']['vms'])


def test_a_few_thousand_objects(demo_map):
    graph = demo_map['graph']
    roles = Counter(d['role'] for d in graph['devices'])
    assert roles['switch'] == len(demo_map['demo']['racks'])
    assert roles['server'] >= 150
    assert roles['hypervisor'] >= 50
    assert len(graph['vms']) >= 500
    cables = sum(len(d['links']) for d in graph['devices'])
    # Devices, VMs, cables with an interface at each end, services, dependencies and applications.
    total = (
        len(graph['devices'])
        + len(graph['vms'])
        + 3 * cables
        + len(graph['services'])
        + len(graph['dependencies'])
        + len(graph['business_applications'])
    )
    assert 2000 <= total <= 10_000


def test_names_are_unique(demo_map):
    graph = demo_map['graph']
    for kind in ('services', 'devices', 'vms', 'clusters'):
        names = [item['name'] for item in graph[kind]]
        assert len(names) == len(set(names)), kind
    codes = [app['appcode'] for app in graph['business_applications']]
    assert len(codes) == len(set(codes))


def test_every_real_service_is_deployed_in_every_region(demo_map):
    services = {s['name'] for s in demo_map['graph']['services']}
    dependencies = {(d['service'], d['depends_on']) for d in demo_map['graph']['dependencies']}
    apps = {app['appcode']: set(app['services']) for app in demo_map['graph']['business_applications']}
    for graph_name, (_, appcode, _) in GRAPHS.items():
        graph = load_graph(graph_name)['graph']
        for region in REGIONS:
            names = {instance_service(graph_name, region, s) for s in graph['services']}
            assert names <= services
            assert apps[f'{appcode}-{region.upper()}'] == names
            for edge in graph['dependencies']:
                assert (
                    instance_service(graph_name, region, edge['service']),
                    instance_service(graph_name, region, edge['depends_on']),
                ) in dependencies


def test_hub_services_are_shared_by_many(demo_map):
    dependents = Counter(d['depends_on'] for d in demo_map['graph']['dependencies'])
    assert dependents['dns'] >= 80
    assert dependents['ntp'] >= 20
    assert dependents['auth-sso'] >= len(REGIONS) * 2
    carriers = Counter(s for d in demo_map['graph']['devices'] for s in d['services'])
    for hub in HUBS:
        assert carriers[hub] >= len(REGIONS), hub


def test_every_server_is_cabled_to_the_switch_of_its_rack(demo_map):
    devices = demo_map['graph']['devices']
    switches = {d['rack']: d['name'] for d in devices if d['role'] == 'switch'}
    assert 'switch' in DEFAULT_NETWORK_ROLES
    for device in devices:
        if device['role'] in ('server', 'hypervisor'):
            assert device['links'] == [switches[device['rack']]], device['name']
        if device['role'] == 'switch':
            assert all(other.endswith(('core-01', 'core-02')) for other in device['links'])


def test_vms_run_on_hypervisors_of_their_cluster(demo_map):
    graph = demo_map['graph']
    devices = {d['name']: d for d in graph['devices']}
    clusters = {c['name'] for c in graph['clusters']}
    hosts_per_cluster = defaultdict(set)
    for device in graph['devices']:
        if device['role'] == 'hypervisor':
            assert device['cluster'] in clusters
            hosts_per_cluster[device['cluster']].add(device['name'])
    assert all(len(hosts) >= 4 for hosts in hosts_per_cluster.values())
    for vm in graph['vms']:
        host = devices[vm['host']]
        assert host['role'] == 'hypervisor'
        assert vm['cluster'] == host['cluster']
        assert vm['site'] == host['site']


def test_replicas_of_a_service_never_share_a_host(demo_map):
    hosts = defaultdict(list)
    for vm in demo_map['graph']['vms']:
        for service in vm['services']:
            hosts[service].append(vm['host'])
    assert hosts
    for service, placed in hosts.items():
        assert len(placed) == len(set(placed)), service


def test_the_burst_names_only_objects_of_the_map(demo_map, burst):
    graph = demo_map['graph']
    known = {f'service:{s["name"]}' for s in graph['services']}
    known |= {f'device:{d["name"]}' for d in graph['devices']}
    known |= {f'vm:{v["name"]}' for v in graph['vms']}
    known |= {f'cluster:{c["name"]}' for c in graph['clusters']}
    known |= {f'app:{a["appcode"]}' for a in graph['business_applications']}
    unmapped = {alert.target for alert in burst if not alert.mapped}
    assert unmapped == {UNMAPPED_HOST}
    assert UNMAPPED_HOST not in known
    assert {alert.target for alert in burst if alert.mapped} <= known


def test_the_burst_has_a_few_hundred_alerts_with_repeats_and_clears(burst):
    assert 200 <= len(burst) <= 600
    assert [alert.t for alert in burst] == sorted(alert.t for alert in burst)
    identities = Counter((alert.source, alert.dedup_id) for alert in burst)
    assert sum(1 for count in identities.values() if count > 1) >= 50
    assert sum(1 for alert in burst if alert.status == 'ok') >= 3
    assert {alert.severity for alert in burst} == {'critical', 'high', 'warning', 'info'}
    assert {alert.source for alert in burst} == {'checkmk', 'prometheus', 'grafana', 'vcenter'}
    stories = {alert.story for alert in burst}
    assert {'top-of-rack switch', 'database', 'hypervisor', 'link flap', 'unmapped host', 'info'} <= stories


def test_the_switch_alert_arrives_after_its_servers(demo_map, burst):
    switch_alerts = [a for a in burst if a.story == 'top-of-rack switch' and a.check == 'SNMP']
    switch = switch_alerts[0].target.partition(':')[2]
    assert next(d for d in demo_map['graph']['devices'] if d['name'] == switch)['role'] == 'switch'
    servers = {a.target for a in burst if a.story == 'top-of-rack switch' and a.target.startswith('device:')}
    first = {}
    for alert in burst:
        first.setdefault(alert.target, alert.t)
    assert len(servers - {f'device:{switch}'}) >= 10
    assert all(first[s] < switch_alerts[0].t for s in servers if s != f'device:{switch}')


@pytest.mark.parametrize('seed', [SEED, 42])
def test_the_burst_becomes_a_handful_of_incidents(replayed, seed):
    """The replay tool (same engine as NetBox) groups each story into one incident, as expected."""
    report = replayed[seed]
    assert report['comparison']['matched'], report['comparison']['differences']
    assert 5 <= len(report['incidents']) <= 12
    assert len(report['events']) >= 20 * len(report['incidents'])


def test_the_outages_have_their_root_causes(replayed):
    incidents = {i['root_cause']: i for i in replayed[SEED]['incidents']}
    switch = next(i for root, i in incidents.items() if root.endswith('-tor'))
    assert switch['title'].startswith('Infrastructure alert affecting')
    assert any('redis-cart' in name for name in switch['blast_radius']['down'])
    database = next(i for i in replayed[SEED]['incidents'] if 'orders-db' in i['title'])
    assert database['title'].startswith('Service disruption affecting')
    assert UNMAPPED_HOST in incidents
