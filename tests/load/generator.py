"""The storm's map and notifications: pods of servers behind switches, and the Alertmanager groups
that fire and resolve on them, each delivered several times (waves of a group, an HA pair)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from datetime import UTC, datetime, timedelta

SOURCE = 'prometheus'
RECEIVER_PATH = '/api/plugins/business-application/alerts/alertmanager/'
ALERTNAMES = (
    ('HostDown', 'critical'),
    ('ServiceErrors', 'high'),
    ('HighLatency', 'warning'),
    ('DiskPressure', 'warning'),
)
POD_SIZE = 20
#: Alertmanager sends a group again as alerts join it: each group's alerts arrive in this many waves.
WAVES = 3
#: How many Alertmanagers (an HA pair) deliver every notification.
REPLICAS = 2


@dataclasses.dataclass
class Delivery:
    """One POST of an Alertmanager group notification."""

    phase: str
    payload: dict
    identities: list[str]  # the fingerprints of its alerts


@dataclasses.dataclass
class Plan:
    map_yaml: str
    devices: list[dict]  # name, role, services, links
    services: list[str]
    phases: dict[str, list[Delivery]]
    #: fingerprint -> (object, severity, final status)
    alerts: dict[str, tuple[str, str, str]]
    notifications: int  # distinct (alert, status) notifications

    def demo_map(self, seed):
        """The map in the demo loader's shape, so that it is written with bulk queries."""
        site = f'storm-dc-{seed}'
        racks = [f'storm-{seed}-r{number}' for number in range(-(-len(self.devices) // 40))]
        devices = [
            {
                **device,
                'device_type': 'storm-server',
                'site': site,
                'rack': racks[position // 40],
                'position': position % 40 + 1,
                'cluster': None,
                'primary_ip': None,
            }
            for position, device in enumerate(self.devices)
        ]
        return {
            'demo': {
                'seed': seed,
                'sites': [{'name': site, 'region': 'eu', 'description': 'alert storm test'}],
                'racks': [{'name': name, 'site': site, 'kind': 'storm'} for name in racks],
                'device_types': {'storm-server': {'model': 'Storm server', 'u_height': 1}},
            },
            'graph': {
                'services': [{'name': name, 'type': 'technical'} for name in self.services],
                'business_applications': [],
                'dependencies': [],
                'clusters': [],
                'devices': devices,
                'vms': [],
            },
        }

    def scenario_yaml(self):
        """The same notifications, one by one in phase order, as a scenario for the in-memory replay."""
        lines = [self.map_yaml.rstrip(), 'events:']
        t = 0.0
        seen = set()
        for phase in ('firing', 'resolved'):
            for delivery in self.phases[phase]:
                for alert in delivery.payload['alerts']:
                    key = (alert['fingerprint'], alert['status'])
                    if key in seen:
                        continue
                    seen.add(key)
                    t += 0.01
                    obj, severity, _ = self.alerts[alert['fingerprint']]
                    status = 'triggered' if alert['status'] == 'firing' else 'ok'
                    ref = alert['fingerprint'] if status == 'triggered' else f'{alert["fingerprint"]}-ok'
                    lines.append(
                        f'  - {{t: {t:.2f}, ref: {ref}, object: "{obj}", severity: {severity}, '
                        f'status: {status}, dedup_id: {alert["fingerprint"]}, source: {SOURCE}, message: m}}'
                    )
            t += 10.0
        return '\n'.join(lines) + '\n'


def _fingerprint(labels):
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


def plan(notifications=1000, seed=7):
    """A storm of about ``notifications`` distinct alert notifications (firing, then resolved)."""
    rng = random.Random(seed)
    # Every alert fires; the alerts of half the pods resolve: 1.5 notifications per alert.
    alerts_wanted = max(40, round(notifications / 1.5))
    servers = max(8, alerts_wanted // len(ALERTNAMES))
    core = max(4, servers // 4)
    solos = max(2, servers // 20)
    pods = [('core-sw', [f'core-s{i}' for i in range(core)])]
    rest = servers - core - solos
    for number in range(max(1, -(-rest // POD_SIZE))):
        size = min(POD_SIZE, rest - number * POD_SIZE)
        if size > 0:
            pods.append((f'sw-{number}', [f'p{number}-s{i}' for i in range(size)]))
    services, devices = [], []
    for switch, members in pods:
        services += [f'{switch}-svc-{k}' for k in range(3)]
        devices.append({'name': switch, 'role': 'switch', 'services': [], 'links': []})
        devices += [
            {'name': name, 'role': 'server', 'services': [f'{switch}-svc-{i % 3}'], 'links': [switch]}
            for i, name in enumerate(members)
        ]
    services += [f'solo-svc-{i}' for i in range(solos)]
    devices += [
        {'name': f'solo-{i}', 'role': 'server', 'services': [f'solo-svc-{i}'], 'links': []} for i in range(solos)
    ]
    lines = ['name: storm', 'graph:', '  services:', *(f'    - {name}' for name in services), '  devices:']
    lines += [
        f'    - {{name: {d["name"]}, role: {d["role"]}, services: [{", ".join(d["services"])}], '
        f'links: [{", ".join(d["links"])}]}}'
        for d in devices
    ]
    map_yaml = '\n'.join(lines) + '\n'

    started = datetime.now(UTC) - timedelta(minutes=1)
    alerts = {}
    firing, resolved = [], []
    groups = []  # (pod name, alertname, [alerts]), solos are groups of one
    for switch, members in pods:
        groups.append((switch, 'SwitchDown', [(switch, 'critical')]))
        for alertname, severity in ALERTNAMES:
            groups.append((switch, alertname, [(name, severity) for name in members]))
    for i in range(solos):
        groups.append((f'solo-{i}', 'HostDown', [(f'solo-{i}', 'critical')]))
    resolving = {switch for number, (switch, _) in enumerate(pods) if number % 2 == 1}
    resolving |= {f'solo-{i}' for i in range(0, solos, 2)}
    for pod, alertname, members in groups:
        items = []
        for name, severity in members:
            labels = {'alertname': alertname, 'instance': f'{name}:9100', 'severity': severity, 'pod': pod}
            fingerprint = _fingerprint(labels)
            final = 'resolved' if pod in resolving else 'firing'
            alerts[fingerprint] = (f'device:{name}', severity, final)
            items.append(
                {
                    'status': 'firing',
                    'labels': labels,
                    'annotations': {'summary': f'{alertname} on {name}'},
                    'startsAt': started.isoformat().replace('+00:00', 'Z'),
                    'endsAt': '0001-01-01T00:00:00Z',
                    'fingerprint': fingerprint,
                }
            )
        rng.shuffle(items)
        waves = min(WAVES, len(items))
        for wave in range(1, waves + 1):
            part = items[: round(len(items) * wave / waves)]
            firing += [_delivery('firing', pod, alertname, part) for _ in range(REPLICAS)]
        if pod in resolving:
            ended = (started + timedelta(seconds=30)).isoformat()
            done = [{**item, 'status': 'resolved', 'endsAt': ended} for item in items]
            resolved += [_delivery('resolved', pod, alertname, done) for _ in range(REPLICAS)]
    rng.shuffle(firing)
    rng.shuffle(resolved)
    count = len(alerts) + sum(1 for *_, final in alerts.values() if final == 'resolved')
    return Plan(map_yaml, devices, services, {'firing': firing, 'resolved': resolved}, alerts, count)


def reshuffle(plan_, seed):
    """The same storm with its deliveries in another order."""
    rng = random.Random(seed)
    phases = {name: rng.sample(deliveries, len(deliveries)) for name, deliveries in plan_.phases.items()}
    return dataclasses.replace(plan_, phases=phases)


def _delivery(phase, pod, alertname, items):
    status = 'resolved' if all(item['status'] == 'resolved' for item in items) else 'firing'
    payload = {
        'version': '4',
        'receiver': 'netbox',
        'status': status,
        'groupKey': f'{{}}:{{alertname="{alertname}", pod="{pod}"}}',
        'groupLabels': {'alertname': alertname, 'pod': pod},
        'commonLabels': {'alertname': alertname, 'pod': pod},
        'externalURL': 'http://127.0.0.1:9093',
        'truncatedAlerts': 0,
        'alerts': items,
    }
    return Delivery(phase, payload, [item['fingerprint'] for item in items])
