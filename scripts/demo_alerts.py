"""Posts the demo alert burst to a running NetBox, as a monitoring webhook would, and prints the incidents.

    .work/venv/bin/python scripts/demo_alerts.py [--env .demo/env] [--seed 7]

Reads NETBOX_URL and NETBOX_TOKEN from the env file that scripts/demo.sh writes, creates the
event sources the burst names (``event-sources/``), looks up the ids of the demo map's objects,
then POSTs every notification of ``business_application.demo.alerts`` to ``events/``, one after
the other and in arrival order, with the guide's webhook payload. Prints the alerts per second of
the burst and the incidents it produced (``incidents/``). Re-running posts the same dedup ids, so
the same events are updated, not duplicated.
"""

import argparse
import json
import shlex
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from business_application.demo.alerts import HORIZON, build_burst
from business_application.demo.generate import DEFAULT_SEED, generate
from business_application.demo.payloads import CONTENT_TYPES, SOURCES, to_payload

PLUGIN_API = '/api/plugins/business-application/'
PAGE = 1000


def read_env(path):
    """The KEY='value' lines of a shell env file."""
    values = {}
    for line in Path(path).read_text(encoding='utf-8').splitlines():
        words = shlex.split(line, comments=True)
        if words and '=' in words[0]:
            key, _, value = words[0].partition('=')
            values[key] = value
    return values


class Client:
    """A small REST client for NetBox: token auth, JSON, paging, errors that name the request."""

    def __init__(self, url, token):
        self.url = url.rstrip('/')
        self.session = requests.Session()
        self.session.headers.update({'Authorization': token, 'Accept': 'application/json'})

    def get(self, path, **params):
        response = self.session.get(self.url + path, params=params, timeout=60)
        self._check(response, 'GET', path)
        return response.json()

    def get_all(self, path, **params):
        """Every object of a list endpoint, page by page."""
        results, offset = [], 0
        while True:
            page = self.get(path, limit=PAGE, offset=offset, **params)
            results += page['results']
            offset += PAGE
            if not page.get('next'):
                return results

    def post(self, path, body, check=True):
        response = self.session.post(self.url + path, json=body, timeout=60)
        if check:
            self._check(response, 'POST', path)
        return response

    @staticmethod
    def _check(response, method, path):
        if response.status_code >= 400:
            raise SystemExit(f'demo_alerts: {method} {path} answered {response.status_code}: {response.text[:500]}')


def ensure_sources(client):
    """The burst's event sources, created when missing; returns name -> id."""
    existing = {s['name']: s['id'] for s in client.get_all(PLUGIN_API + 'event-sources/', brief=1)}
    for name, description in SOURCES.items():
        if name not in existing:
            created = client.post(PLUGIN_API + 'event-sources/', {'name': name, 'description': description})
            existing[name] = created.json()['id']
    return existing


def object_ids(client):
    """``kind:name`` -> id for every object an alert may name, and ``kind:name`` -> IP address for hosts."""
    ids, addresses = {}, {}
    for kind, path, key in (
        ('device', '/api/dcim/devices/', 'name'),
        ('vm', '/api/virtualization/virtual-machines/', 'name'),
        ('cluster', '/api/virtualization/clusters/', 'name'),
        ('service', PLUGIN_API + 'technical-services/', 'name'),
        ('app', PLUGIN_API + 'business-applications/', 'appcode'),
    ):
        fields = f'id,{key}' + (',primary_ip4' if kind in ('device', 'vm') else '')
        for item in client.get_all(path, fields=fields):
            ids[f'{kind}:{item[key]}'] = item['id']
            if item.get('primary_ip4'):
                addresses[f'{kind}:{item[key]}'] = item['primary_ip4']['address'].split('/')[0]
    return ids, addresses


def content_type_ids(client):
    types = client.get_all('/api/core/object-types/', fields='id,app_label,model')
    by_name = {f'{t["app_label"]}.{t["model"]}': t['id'] for t in types}
    return {name: by_name[name] for name in CONTENT_TYPES.values()}


def post_burst(client, alerts, ids, addresses, numeric):
    """POST every notification in order; returns the event ids, the status codes and the seconds it took."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=HORIZON)
    first_seen = {}
    codes, events, failures = Counter(), set(), []
    started = time.perf_counter()
    for alert in alerts:
        fired = first_seen.setdefault((alert.source, alert.dedup_id), start + timedelta(seconds=alert.t))
        payload = to_payload(alert, ids, start, started=fired, addresses=addresses, numeric=numeric)
        response = client.post(PLUGIN_API + 'events/', payload, check=False)
        codes[response.status_code] += 1
        if response.status_code in (200, 201):
            events.add(response.json()['id'])
        else:
            failures.append(f'{alert.ref} {alert.target}: {response.status_code} {response.text[:300]}')
    elapsed = time.perf_counter() - started
    for failure in failures[:5]:
        print(f'  failed: {failure}', file=sys.stderr)
    return events, codes, elapsed, start


def burst_incidents(client, events):
    """The incidents holding the burst's events, open or resolved (not those merged into others), and how many
    other incidents were merged into them."""
    incidents = client.get_all(PLUGIN_API + 'incidents/')
    chosen = [
        incident
        for incident in incidents
        if not incident['merged_into'] and {m['event']['id'] for m in incident['members']} & events
    ]
    ids = {incident['id'] for incident in chosen}
    return chosen, sum(1 for incident in incidents if incident['merged_into'] in ids)


def blast_summary(blast, shown=4):
    parts = []
    for side in ('down', 'degraded'):
        names = sorted(item['name'] for item in (blast or {}).get(side, []))
        if names:
            more = f' +{len(names) - shown}' if len(names) > shown else ''
            parts.append(f'{side} {len(names)}: {", ".join(names[:shown])}{more}')
    return '; '.join(parts) or 'nothing down or degraded'


def print_incidents(incidents, url):
    order = {'critical': 0, 'high': 1, 'warning': 2, 'info': 3}
    incidents.sort(
        key=lambda i: (
            i['status']['value'] in ('resolved', 'closed'),
            order.get(i['severity']['value'], 9),
            -len(i['members']),
        )
    )
    print(f'{"id":>5}  {"severity":<9}{"status":<10}{"alerts":>6}  title / root cause / blast radius')
    for incident in incidents:
        print(
            f'{incident["id"]:>5}  {incident["severity"]["value"]:<9}{incident["status"]["value"]:<10}'
            f'{len(incident["members"]):>6}  {incident["title"]}'
        )
        print(f'{"":>32}root cause {incident["root_cause"] or "-"}')
        print(f'{"":>32}{blast_summary(incident["blast_radius"])}')
        print(f'{"":>32}{url}/plugins/business-application/incidents/{incident["id"]}/')


# Posted exactly as docs/receivers.md's curl calls post them, so trying those by hand afterwards
# updates these events instead of adding new ones.
RECEIVER_SAMPLES = (
    ('alertmanager-grouped-firing.json', 'alerts/alertmanager/', ''),
    ('alertmanager-icmp-hosts-firing.json', 'alerts/alertmanager/', ''),
    ('grafana-unified-mixed.json', 'alerts/grafana/', ''),
    ('pagerduty-v2-checkmk-trigger.json', 'alerts/pagerduty/', 'checkmk'),
)


def alertmanager_group(demo_map):
    """A webhook (version 4) group as Alertmanager sends it, about the VMs of one demo service: the
    receiver maps each `instance` label (host:port) to its VM."""
    carriers = {}
    for vm in demo_map['graph']['vms']:
        for service in vm['services']:
            carriers.setdefault(service, []).append(vm['name'])
    shared = [name for name, vms in sorted(carriers.items()) if len(vms) >= 2]
    service = next((name for name in shared if '-ap-' in name), shared[0])
    starts = (datetime.now(UTC) - timedelta(minutes=2)).isoformat(timespec='microseconds').replace('+00:00', 'Z')
    alerts = [
        {
            'status': 'firing',
            'labels': {'alertname': 'HighErrorRate', 'instance': f'{vm}:9100', 'job': service, 'severity': 'critical'},
            'annotations': {'summary': f'{vm}: more than 5% of requests fail'},
            'startsAt': starts,
            'endsAt': '0001-01-01T00:00:00Z',
            'generatorURL': '',
            'fingerprint': f'demo-{vm}',
        }
        for vm in carriers[service][:3]
    ]
    return {
        'version': '4',
        'status': 'firing',
        'receiver': 'netbox',
        'groupKey': f'{{}}:{{job="{service}"}}',
        'truncatedAlerts': 0,
        'groupLabels': {'job': service},
        'commonLabels': {'job': service},
        'commonAnnotations': {},
        'externalURL': '',
        'alerts': alerts,
    }


def post_to_receivers(client, demo_map):
    """The native receiver path: a live Alertmanager group about demo VMs, then the bundled real payloads."""
    data = Path(__file__).resolve().parent.parent / 'business_application' / 'demo' / 'data' / 'alerts'
    deliveries = [('generated Alertmanager group', 'alerts/alertmanager/', 'prometheus', alertmanager_group(demo_map))]
    for name, path, source in RECEIVER_SAMPLES:
        deliveries.append((name, path, source, json.loads((data / name).read_text(encoding='utf-8'))))
    print('Posting to the native receivers:')
    events = set()
    for name, path, source, body in deliveries:
        query = f'?source={source}' if source else ''
        response = client.post(f'{PLUGIN_API}{path}{query}', body, check=False)
        if response.status_code >= 400:
            print(f'  {name} -> {path}: {response.status_code} {response.text[:300]}', file=sys.stderr)
            continue
        answer = response.json()
        events.update(event['id'] for event in answer.get('events', []))
        print(
            f'  {name} -> {path}: {response.status_code}, {answer.get("received", 0)} alerts, '
            f'{answer.get("created", 0)} new and {answer.get("updated", 0)} updated events '
            f'({answer.get("unmapped") or 0} unmapped), incidents {answer.get("incidents", [])}'
        )
    print()
    return events


def wait_for_decisions(client, patience=180.0):
    """With asynchronous processing on, the alerts are decided by the RQ worker after they are posted: wait until
    it has decided them all (or ``patience`` seconds passed), so that the incidents printed are complete."""
    status = client.get(f'{PLUGIN_API}incident-automation/status/')
    if not status.get('async_processing'):
        return
    deadline = time.monotonic() + patience
    while status['unprocessed_events'] and time.monotonic() < deadline:
        print(f'  waiting for the RQ worker to decide {status["unprocessed_events"]} events ...')
        time.sleep(2)
        status = client.get(f'{PLUGIN_API}incident-automation/status/')
    if status['unprocessed_events']:
        print(f'  {status["unprocessed_events"]} events are still undecided: is the RQ worker running?')


def main(argv=None):
    parser = argparse.ArgumentParser(description='Post the demo alert burst and print the incidents.')
    parser.add_argument(
        '--env',
        default=str(Path(__file__).resolve().parent.parent / '.demo' / 'env'),
        help='env file with NETBOX_URL and NETBOX_TOKEN (default .demo/env)',
    )
    parser.add_argument(
        '--seed', type=int, default=DEFAULT_SEED, help=f'seed of the loaded map (default {DEFAULT_SEED})'
    )
    args = parser.parse_args(argv)
    env = read_env(args.env)
    client = Client(env['NETBOX_URL'], env['NETBOX_TOKEN'])

    sources = ensure_sources(client)
    ids, addresses = object_ids(client)
    numeric = {'content_types': content_type_ids(client), 'sources': sources}
    alerts = build_burst(generate(args.seed), args.seed)
    missing = sorted({a.target for a in alerts if a.mapped and a.target not in ids})
    if missing:
        raise SystemExit(
            f'demo_alerts: NetBox lacks {len(missing)} objects of the demo map of seed {args.seed}, '
            f'e.g. {missing[:3]}: run `netbox load_demo --seed {args.seed}` first'
        )

    print(f'Posting {len(alerts)} alert notifications to {env["NETBOX_URL"]}{PLUGIN_API}events/ ...')
    events, codes, elapsed, _ = post_burst(client, alerts, ids, addresses, numeric)
    rate = len(alerts) / elapsed if elapsed else float('inf')
    print(
        f'  {len(alerts)} notifications in {elapsed:.1f} s: {rate:.1f} notifications/s '
        f'({codes[201]} new events, {codes[200]} updates of known ones'
        + (f', {sum(n for c, n in codes.items() if c not in (200, 201))} failed' if len(codes) > 2 else '')
        + ')'
    )

    events |= post_to_receivers(client, generate(args.seed))
    wait_for_decisions(client)
    incidents, merged = burst_incidents(client, events)
    resolved = sum(1 for incident in incidents if incident['status']['value'] in ('resolved', 'closed'))
    print(
        f'  {len(alerts)} notifications -> {len(events)} distinct alerts -> {len(incidents)} incidents'
        f' ({len(incidents) - resolved} open, {resolved} resolved; {merged} more were merged into these as late'
        ' alerts linked them)\n'
    )
    print_incidents(incidents, env['NETBOX_URL'])
    return 0 if codes[200] + codes[201] == len(alerts) else 1


if __name__ == '__main__':
    sys.exit(main())
