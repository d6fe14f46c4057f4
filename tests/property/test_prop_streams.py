"""Whole alert streams through the lifecycle: the compiled core and the fallback end in the same incidents.

Hypothesis builds random maps (services with dependencies, redundancy groups, cycles and
self-dependencies; devices, switches and cables; clusters, hosts and VMs) and random streams
(repeats, clears, flaps, late and out-of-order notifications, maintenance, unmapped objects), then
replays each stream on both backends and compares every decision the report shows.
"""

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from business_application.correlation.lifecycle import MERGED, RESOLVED
from business_application.correlation.replay import replay, run_scenario
from business_application.correlation.scenario import Scenario, ScenarioEvent
from business_application.correlation.settings import Settings

SEVERITIES = ('info', 'warning', 'high', 'critical')
STATUSES = ('triggered', 'triggered', 'triggered', 'ok', 'suppressed')


@st.composite
def scenarios(draw):
    n_services = draw(st.integers(1, 8))
    services = [{'name': f's{i}', 'type': 'technical'} for i in range(n_services)]
    dependencies = []
    for _ in range(draw(st.integers(0, 12))):
        down, up = draw(st.integers(0, n_services - 1)), draw(st.integers(0, n_services - 1))
        redundant = draw(st.booleans())
        dependencies.append(
            {
                'service': f's{down}',
                'depends_on': f's{up}',
                'type': 'redundancy' if redundant else 'normal',
                'name': f'g{draw(st.integers(0, 1))}' if redundant else '',
            }
        )
    service_names = st.lists(st.sampled_from([s['name'] for s in services]), max_size=2, unique=True)
    clusters = [{'name': f'c{i}', 'services': draw(service_names)} for i in range(draw(st.integers(0, 2)))]
    n_devices = draw(st.integers(1, 8))
    devices = []
    for i in range(n_devices):
        devices.append(
            {
                'name': f'd{i}',
                'role': draw(st.sampled_from(['server', 'server', 'switch'])),
                'services': draw(service_names),
                'primary_ip': '',
                'cluster': draw(st.sampled_from(['', *[c['name'] for c in clusters]])),
                'links': draw(st.lists(st.sampled_from([f'd{j}' for j in range(n_devices)]), max_size=2, unique=True)),
            }
        )
    vms = [
        {
            'name': f'v{i}',
            'services': draw(service_names),
            'primary_ip': '',
            'cluster': draw(st.sampled_from(['', *[c['name'] for c in clusters]])),
            'host': draw(st.sampled_from(['', *[d['name'] for d in devices]])),
        }
        for i in range(draw(st.integers(0, 6)))
    ]
    objects = (
        [f'service:{s["name"]}' for s in services]
        + [f'device:{d["name"]}' for d in devices]
        + [f'vm:{v["name"]}' for v in vms]
        + [f'cluster:{c["name"]}' for c in clusters]
        + ['device:ghost']
    )
    maintenance = [
        {'object': tuple(draw(st.sampled_from(objects)).split(':')), 'start': 100.0, 'end': 400.0}
        for _ in range(draw(st.integers(0, 1)))
    ]
    events = []
    t = 0.0
    for i in range(draw(st.integers(1, 25))):
        t += draw(st.sampled_from([0.0, 5.0, 30.0, 200.0, 1200.0]))
        kind, name = draw(st.sampled_from(objects)).split(':')
        late = draw(st.sampled_from([0.0, 0.0, 0.0, 60.0]))
        events.append(
            ScenarioEvent(
                ref=f'n{i}',
                t=t,
                object_kind=kind,
                object_name=name,
                severity=draw(st.sampled_from(SEVERITIES)),
                status=draw(st.sampled_from(STATUSES)),
                dedup_id=f'a{draw(st.integers(0, 6))}',
                message='',
                source='prop',
                event_time=t - late,
            )
        )
    settings_ = Settings(
        correlation_threshold=draw(st.sampled_from([0.2, 0.3, 0.45])),
        max_dependency_depth=draw(st.integers(1, 4)),
        auto_resolve_incidents=draw(st.booleans()),
        work_cap=draw(st.sampled_from([3, 1000])),
        max_incident_age_hours=draw(st.sampled_from([0.0, 24.0])),
    )
    return Scenario(
        name='prop',
        description='',
        settings=settings_,
        services=services,
        applications=[],
        dependencies=dependencies,
        clusters=clusters,
        devices=devices,
        vms=vms,
        maintenance=maintenance,
        events=events,
        expected=None,
    )


def decisions(report):
    report = dict(report)
    report.pop('backend')
    return report


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_prop_backends_make_the_same_decisions_on_streams(scenario):
    assert decisions(run_scenario(scenario, backend='rust')) == decisions(run_scenario(scenario, backend='python'))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_prop_no_occurrence_in_two_incidents_and_resolved_means_all_cleared(scenario):
    run = replay(scenario, backend='rust')
    seen = set()
    for incident in run.store.incidents.values():
        if incident.status == MERGED:
            assert incident.members == []
            continue
        for member in incident.members:
            key = (member.alert, member.occurrence)
            assert key not in seen, f'{key} is in two incidents'
            seen.add(key)
        if incident.status == RESOLVED and scenario.settings.auto_resolve_incidents:
            assert all(member.status == 'ok' for member in incident.members)
    for alert in run.store.alerts.values():
        if alert.incident is not None:
            assert run.store.incidents[alert.incident].member(alert.key, alert.occurrence) is not None


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.sampled_from(['rust', 'python']))
def test_prop_an_incidents_services_are_its_members_services(scenario, backend):
    """A join adds only what it brings (its member, the incidents it merges); every open or resolved incident still
    names exactly its members' services, as adding up all its members again would."""
    run = replay(scenario, backend=backend)
    view = run.service_map
    for incident in run.store.incidents.values():
        if incident.status == MERGED:
            continue
        expected = {service for member in incident.members for service in view.services_of(member.node)}
        assert incident.services == expected, incident.key


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_prop_an_unrelated_part_of_the_map_changes_no_decision(scenario):
    """Adding a disconnected island (its own services, devices, VMs and a cluster) leaves every incident as it was."""
    island = copy.deepcopy(scenario)
    island.services += [{'name': 'island-svc', 'type': 'technical'}, {'name': 'island-db', 'type': 'technical'}]
    island.dependencies.append({'service': 'island-svc', 'depends_on': 'island-db', 'type': 'normal', 'name': ''})
    island.clusters.append({'name': 'island-cl', 'services': ['island-db']})
    island.devices += [
        {
            'name': 'island-sw',
            'role': 'switch',
            'services': [],
            'cluster': '',
            'links': ['island-hv'],
            'primary_ip': '',
        },
        {'name': 'island-hv', 'role': 'server', 'services': [], 'cluster': 'island-cl', 'links': [], 'primary_ip': ''},
    ]
    island.vms.append(
        {'name': 'island-vm', 'services': ['island-svc'], 'cluster': 'island-cl', 'host': 'island-hv', 'primary_ip': ''}
    )
    assert decisions(run_scenario(island, backend='rust')) == decisions(run_scenario(scenario, backend='rust'))
