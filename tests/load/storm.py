"""An alert storm through the real product, and the checks that it lost and duplicated nothing.

``plan(alerts)`` makes a map (pods of servers cabled to a switch, one big pod behind a core switch,
and servers on their own) and the Alertmanager notifications of a storm on it: every alert fires
and half the pods resolve afterwards. Alertmanager sends a group again whenever alerts join it,
and a pair of Alertmanagers sends every notification twice, so each alert arrives several times.

``Cluster`` runs the product as it runs in production, on 127.0.0.1 only: NetBox under gunicorn
(several processes) and ``netbox rqworker`` processes with asynchronous processing on, all on the
test database of this checkout. A worker that dies is started again, as a supervisor would.

``run_storm`` sends the notifications with concurrent senders that retry 5xx answers and broken
connections like Alertmanager, waits until every accepted alert is decided (running the periodic
sweep if the queue lost jobs), and returns a ``StormReport``: sent, accepted, stored, decided,
duplicates, lost, errors, throughput, alert-to-incident latency, and how the incidents compare
with a one-by-one replay of the same notifications in memory.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
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


# The storm


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


# The product, running


def free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


CONFIGURATION_MODULE = '''\
"""Written by tests/load/storm.py: this checkout's NetBox configuration plus the storm's settings."""
import importlib.util as _util
import json as _json
import os as _os

_spec = _util.spec_from_file_location('nba_base_configuration', _os.environ['NBA_STORM_BASE_CONFIGURATION'])
_base = _util.module_from_spec(_spec)
_spec.loader.exec_module(_base)
globals().update({_k: _v for _k, _v in vars(_base).items() if _k.isupper()})
globals().update(_json.loads(_os.environ['NBA_STORM_SETTINGS']))
'''


class Cluster:
    """NetBox under gunicorn and RQ workers on the test database; ``stop()`` ends what it started."""

    def __init__(self, database, web_workers=3, rq_workers=3, settings=None, log_dir=None):
        self.database = database
        self.web_workers = web_workers
        self.rq_workers = rq_workers
        self.port = free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.settings = {'BUSINESS_APP_ASYNC_PROCESSING': True, **(settings or {})}
        self.log_dir = Path(log_dir or REPO / '.work' / 'logs' / 'storm')
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.web = None
        self.workers = []
        self.restarts = 0
        self._tmp = tempfile.TemporaryDirectory(prefix='nba-storm-')
        Path(self._tmp.name, 'nba_storm_configuration.py').write_text(CONFIGURATION_MODULE)
        self._supervising = False
        self._supervisor = None
        self._lock = threading.Lock()

    def env(self):
        base = Path(os.environ.get('NETBOX_ROOT', REPO / '.work' / 'netbox')) / 'conf' / 'configuration.py'
        return {
            **os.environ,
            'NB_DB_NAME': self.database,
            'NBA_TESTING': '1',
            'NETBOX_CONFIGURATION': 'nba_storm_configuration',
            'NBA_STORM_BASE_CONFIGURATION': str(base),
            'NBA_STORM_SETTINGS': json.dumps(self.settings),
            'PYTHONPATH': os.pathsep.join(filter(None, [self._tmp.name, os.environ.get('PYTHONPATH')])),
            'DJANGO_SETTINGS_MODULE': 'netbox.settings',
        }

    def start(self, timeout=180):
        bin_dir = Path(sys.executable).parent
        gunicorn = bin_dir / 'gunicorn'
        log = open(self.log_dir / 'web.log', 'ab')  # noqa: SIM115 - lives as long as the server
        if gunicorn.exists():
            command = [
                str(gunicorn),
                '--bind',
                f'127.0.0.1:{self.port}',
                '--workers',
                str(self.web_workers),
                '--preload',
                '--timeout',
                '120',
                '--graceful-timeout',
                '5',
                '--no-control-socket',
                'netbox.wsgi:application',
            ]
        else:
            command = [str(bin_dir / 'netbox'), 'runserver', f'127.0.0.1:{self.port}', '--noreload', '--insecure']
        self.server_kind = 'gunicorn' if gunicorn.exists() else 'runserver'
        self.web = subprocess.Popen(command, env=self.env(), stdout=log, stderr=subprocess.STDOUT)
        for _ in range(self.rq_workers):
            self.workers.append(self._worker())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise RuntimeError(f'the web server exited with {self.web.returncode}; see {self.log_dir}/web.log')
            try:
                if requests.get(f'{self.url}/login/', timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.5)
        else:
            raise RuntimeError(f'NetBox did not answer on {self.url} within {timeout} s')
        self._supervising = True
        self._supervisor = threading.Thread(target=self._supervise, daemon=True)
        self._supervisor.start()
        return self

    def _worker(self):
        log = open(self.log_dir / 'rqworker.log', 'ab')  # noqa: SIM115 - lives as long as the worker
        netbox = Path(sys.executable).with_name('netbox')
        return subprocess.Popen(
            [str(netbox), 'rqworker', 'high', 'default', 'low', '--with-scheduler'],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def _supervise(self):
        while self._supervising:
            with self._lock:
                for position, worker in enumerate(self.workers):
                    if worker.poll() is not None:
                        self.workers[position] = self._worker()
                        self.restarts += 1
            time.sleep(0.5)

    def kill_worker(self, position=0):
        """SIGKILL one RQ worker (and the job it runs); the supervisor starts another."""
        with self._lock:
            worker = self.workers[position]
            # The work horse (a forked child running the job) dies with it, as with kill -9 on its group.
            for child in _children(worker.pid):
                _kill(child)
            _kill(worker.pid)
            worker.wait()
        return worker.pid

    def stop(self):
        self._supervising = False
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        processes = [*self.workers, self.web]
        for process in processes:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            if process is None:
                continue
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                for child in _children(process.pid):
                    _kill(child)
                process.kill()
                process.wait()
        self._tmp.cleanup()


def _children(pid):
    try:
        text = Path(f'/proc/{pid}/task/{pid}/children').read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# Faults on this checkout's own services


def _services_env():
    """scripts/services.sh on THIS checkout's PostgreSQL and Redis: the ports the tests use."""
    from django.conf import settings

    return {
        **os.environ,
        'NBA_PG_PORT': str(settings.DATABASES['default']['PORT']),
        'NBA_REDIS_PORT': str(settings.REDIS['tasks']['PORT']),
    }


def restart_postgresql():
    """Restart this checkout's PostgreSQL cluster (fast shutdown: every connection is cut)."""
    env = _services_env()
    script = (
        'source scripts/env.sh; '
        'grep -qx "$NBA_PG_PORT" <(sed -n 4p "$NBA_PG_DIR/data/postmaster.pid") || '
        '{ echo "the cluster in $NBA_PG_DIR does not listen on $NBA_PG_PORT" >&2; exit 1; }; '
        'cd / && runuser -u postgres -- "$NBA_PGBIN/pg_ctl" -D "$NBA_PG_DIR/data" -m fast -w -t 60 restart '
        '>/dev/null'
    )
    subprocess.run(['bash', '-c', script], cwd=REPO, env=env, check=True, timeout=120)


def restart_redis(down_seconds=2.0):
    """Stop this checkout's Redis (it keeps nothing on disk: queued jobs are lost) and start it again."""
    env = _services_env()
    stop = (
        'source scripts/env.sh; nba_redis_running || exit 0; '
        'redis-cli -h 127.0.0.1 -p "$NBA_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true; '
        'for _ in $(seq 1 50); do nba_redis_running || exit 0; sleep 0.1; done; exit 1'
    )
    subprocess.run(['bash', '-c', stop], cwd=REPO, env=env, check=True, timeout=30)
    time.sleep(down_seconds)
    subprocess.run(['scripts/services.sh', 'start'], cwd=REPO, env=env, check=True, timeout=120)


# Sending


@dataclasses.dataclass
class Senders:
    url: str
    header: dict
    concurrency: int = 8
    retry_deadline: float = 300.0

    def __post_init__(self):
        self.lock = threading.Lock()
        self.sent_items = 0
        self.deliveries = 0
        self.attempts = 0
        self.retries = 0
        self.accepted_items = 0
        self.rejected = collections.Counter()  # status code -> count of deliveries refused for good
        self.errors = []
        self.accepted_at: dict[tuple[str, str], float] = {}
        self.answers = collections.Counter()

    def send(self, deliveries, during=None):
        """Post every delivery, ``concurrency`` at a time; ``during(progress)`` runs after each one."""
        queue = collections.deque(deliveries)
        total = len(deliveries)
        done = [0]

        def worker():
            session = requests.Session()
            while True:
                with self.lock:
                    if not queue:
                        return
                    delivery = queue.popleft()
                self._post(session, delivery)
                with self.lock:
                    done[0] += 1
                    progress = done[0] / total
                if during is not None:
                    during(progress)

        threads = [threading.Thread(target=worker) for _ in range(self.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _post(self, session, delivery):
        """Post like Alertmanager: retry 5xx and broken connections with backoff until a deadline."""
        body = json.dumps(delivery.payload)
        deadline = time.monotonic() + self.retry_deadline
        pause = 0.2
        with self.lock:
            self.deliveries += 1
            self.sent_items += len(delivery.identities)
        while True:
            with self.lock:
                self.attempts += 1
            try:
                response = session.post(
                    self.url + RECEIVER_PATH,
                    data=body,
                    headers={**self.header, 'Content-Type': 'application/json'},
                    timeout=60,
                )
                code = response.status_code
            except requests.RequestException as error:
                code, response = type(error).__name__, None
            with self.lock:
                self.answers[code] += 1
            if isinstance(code, int) and code < 300:
                now = time.monotonic()
                with self.lock:
                    self.accepted_items += len(delivery.identities)
                    for alert in delivery.payload['alerts']:
                        self.accepted_at.setdefault((alert['fingerprint'], alert['status']), now)
                return
            if isinstance(code, int) and code < 500:
                with self.lock:
                    self.rejected[code] += 1
                    self.errors.append(f'{code}: {response.text[:300]}')
                return
            if time.monotonic() > deadline:
                with self.lock:
                    self.errors.append(f'gave up after {self.retry_deadline} s: last answer {code}')
                return
            with self.lock:
                self.retries += 1
            time.sleep(pause)
            pause = min(pause * 2, 3.0)


# Waiting and checking


@dataclasses.dataclass
class StormReport:
    name: str
    server: str = ''
    senders: int = 0
    web_workers: int = 0
    rq_workers: int = 0
    notifications: int = 0  # distinct (alert, status) notifications in the plan
    deliveries: int = 0  # POSTs of group notifications (duplicates included)
    attempts: int = 0  # POST attempts (retries included)
    retries: int = 0
    sent: int = 0  # alert items in all deliveries
    accepted: int = 0  # alert items in accepted deliveries
    accepted_alerts: int = 0  # distinct alerts accepted
    stored: int = 0  # distinct alerts with an event row
    decided: int = 0  # stored alerts whose latest state was decided
    duplicate_events: int = 0
    duplicate_decisions: int = 0
    duplicate_incidents: int = 0
    lost: int = 0
    errors: int = 0
    swept: int = 0
    worker_restarts: int = 0
    answers: dict = dataclasses.field(default_factory=dict)
    incidents: int = 0
    replay_incidents: int = 0
    matches_replay: bool = False
    replay_differences: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    alerts_per_second: float = 0.0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    health: dict = dataclasses.field(default_factory=dict)
    fault: str = ''
    notes: list = dataclasses.field(default_factory=list)

    def problems(self):
        found = []
        if self.lost:
            found.append(f'{self.lost} accepted alerts lost (not stored, or not decided)')
        for name in ('duplicate_events', 'duplicate_decisions', 'duplicate_incidents', 'errors'):
            if getattr(self, name):
                found.append(f'{name}: {getattr(self, name)}')
        if not self.matches_replay:
            found.append(f'incidents differ from the one-by-one replay: {self.replay_differences[:5]}')
        return found


class DecisionWatch:
    """Polls the database for alerts whose latest state was decided, to time alert-to-incident latency."""

    def __init__(self, interval=0.2):
        self.interval = interval
        self.first_decided: dict[tuple[str, str], float] = {}
        self._running = False
        self._thread = None

    def __enter__(self):
        self._running = True
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._running = False
        self._thread.join(timeout=10)

    def _loop(self):
        from django.db import connection
        from django.db.models import F

        from business_application.models import Event

        try:
            while self._running:
                try:
                    rows = Event.objects.filter(processed_status=F('status')).values_list('dedup_id', 'status')
                    now = time.monotonic()
                    for dedup_id, status in rows:
                        key = (dedup_id, 'firing' if status == 'triggered' else 'resolved')
                        self.first_decided.setdefault(key, now)
                except Exception:  # noqa: BLE001 - a restarted database; try again
                    connection.close()
                time.sleep(self.interval)
        finally:
            connection.close()


def wait_until_decided(expected, timeout=600, sweep_after=20.0):
    """Wait until every expected (fingerprint, status) is stored and decided and the queue is empty.

    When the queue is empty but alerts stay undecided (a job lost with Redis, or a worker killed
    mid-job), run the periodic sweep as its schedule would: returns how many events it swept.
    """
    import django_rq
    from django.db import connection

    swept = 0
    deadline = time.monotonic() + timeout
    idle_since = None
    while time.monotonic() < deadline:
        try:
            missing = _undecided(expected)
            queue = django_rq.get_queue('default')
            busy = queue.count + queue.started_job_registry.count
        except Exception:  # noqa: BLE001 - a service restarting
            connection.close()
            time.sleep(1)
            continue
        if not missing and not busy:
            return swept
        if missing and not busy:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > sweep_after:
                swept += _sweep()
                idle_since = None
        else:
            idle_since = None
        time.sleep(0.5)
    return swept


def _undecided(expected):
    from django.db.models import F

    from business_application.models import Event

    decided = set(
        Event.objects.filter(event_source__name=SOURCE, processed_status=F('status')).values_list('dedup_id', 'status')
    )
    final = {}
    for fingerprint, status in expected:
        if final.get(fingerprint) != 'ok':
            final[fingerprint] = 'triggered' if status == 'firing' else 'ok'
    return set(final.items()) - decided


def _sweep():
    """SweepUnprocessedEventsJob run now, as a NetBox job, instead of at its next five-minute tick."""
    from business_application.jobs import SweepUnprocessedEventsJob
    from business_application.services.automation import unprocessed_events

    count = unprocessed_events(hours=48).count()
    if count:
        SweepUnprocessedEventsJob.enqueue(immediate=True)
    return count


def check(report, plan_, senders):
    """Fill the report's counts from the database and compare with the in-memory replay."""
    from django.db.models import Count

    from business_application.correlation.replay import replay
    from business_application.correlation.scenario import parse_scenario
    from business_application.models import Event, Incident, IncidentEvent

    accepted = {fingerprint for fingerprint, _ in senders.accepted_at}
    final = {}
    for (fingerprint, status), _ in sorted(senders.accepted_at.items(), key=lambda item: item[0][1] == 'resolved'):
        final[fingerprint] = 'ok' if status == 'resolved' else 'triggered'
    events = list(
        Event.objects.filter(event_source__name=SOURCE).values(
            'pk', 'dedup_id', 'status', 'processed_status', 'occurrence'
        )
    )
    by_identity = collections.Counter(row['dedup_id'] for row in events)
    report.duplicate_events = sum(count - 1 for count in by_identity.values() if count > 1)
    stored = {row['dedup_id']: row for row in events}
    report.accepted_alerts = len(accepted)
    report.stored = len(accepted & set(stored))
    decided = {
        pk
        for pk, row in stored.items()
        if row['processed_status'] == row['status'] and row['status'] == final.get(pk, row['status'])
    }
    report.decided = len(accepted & decided)
    report.lost = len(accepted - decided)
    memberships = IncidentEvent.objects.values('event_id', 'occurrence').annotate(n=Count('pk')).filter(n__gt=1)
    report.duplicate_decisions = sum(row['n'] - 1 for row in memberships)
    # Every alert fired once in this storm: a second occurrence would be a second decision to open.
    report.duplicate_decisions += sum(1 for row in events if row['occurrence'] > 1)

    got = []
    names = {row['pk']: row['dedup_id'] for row in events}
    members = collections.defaultdict(set)
    for incident_id, event_id in IncidentEvent.objects.filter(incident__merged_into__isnull=True).values_list(
        'incident_id', 'event_id'
    ):
        members[incident_id].add(names.get(event_id, event_id))
    statuses = dict(Incident.objects.filter(pk__in=members).values_list('pk', 'status'))
    for incident_id, group in members.items():
        got.append((tuple(sorted(group)), 'resolved' if statuses[incident_id] in ('resolved', 'closed') else 'open'))
    report.incidents = len(got)
    report.duplicate_incidents = len(got) - len(set(got))

    run = replay(parse_scenario(plan_.scenario_yaml(), source='<storm>'))
    want = []
    for incident in run.store.incidents.values():
        if incident.status == 'merged':
            continue
        group = tuple(sorted(run.refs[(m.alert, m.occurrence)] for m in incident.members))
        want.append((group, 'open' if incident.status == 'open' else 'resolved'))
    report.replay_incidents = len(want)
    only_here = sorted(set(got) - set(want))
    only_replay = sorted(set(want) - set(got))
    report.matches_replay = not only_here and not only_replay
    report.replay_differences = [
        *({'netbox_only': list(g), 'status': s} for g, s in only_here[:3]),
        *({'replay_only': list(g), 'status': s} for g, s in only_replay[:3]),
    ]


def percentile(values, fraction):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def run_storm(name, cluster, plan_, header, fault=None, fault_at=0.3, senders=8, timeout=900):
    """Send the plan's storm through ``cluster``; ``fault()`` runs once when ``fault_at`` of the
    firing deliveries have been answered. Returns the ``StormReport``."""
    from django.db import connection

    from business_application.config import check_incident_automation_health

    report = StormReport(
        name=name,
        server=cluster.server_kind,
        senders=senders,
        web_workers=cluster.web_workers,
        rq_workers=cluster.rq_workers,
        notifications=plan_.notifications,
    )
    sender = Senders(cluster.url, header, concurrency=senders)
    fired = threading.Event()
    fault_thread = []

    def during(progress):
        if fault is not None and progress >= fault_at and not fired.is_set():
            fired.set()
            thread = threading.Thread(target=fault)
            thread.start()
            fault_thread.append(thread)

    restarts_before = cluster.restarts
    started = time.monotonic()
    with DecisionWatch() as watch:
        sender.send(plan_.phases['firing'], during=during)
        _log(name, f'firing sent in {time.monotonic() - started:.1f} s: {dict(sender.answers)}')
        for thread in fault_thread:
            thread.join()
        connection.close()
        report.swept += wait_until_decided([key for key in sender.accepted_at if key[1] == 'firing'], timeout=timeout)
        _log(name, f'firing decided after {time.monotonic() - started:.1f} s')
        sender.send(plan_.phases['resolved'])
        _log(name, f'resolved sent after {time.monotonic() - started:.1f} s')
        report.swept += wait_until_decided(list(sender.accepted_at), timeout=timeout)
        elapsed = time.monotonic() - started
        time.sleep(watch.interval * 2)
    connection.close()
    report.seconds = round(elapsed, 2)
    report.deliveries = sender.deliveries
    report.attempts = sender.attempts
    report.retries = sender.retries
    report.sent = sender.sent_items
    report.accepted = sender.accepted_items
    report.errors = len(sender.errors)
    report.answers = {str(code): count for code, count in sorted(sender.answers.items(), key=str)}
    report.worker_restarts = cluster.restarts - restarts_before
    report.alerts_per_second = round(plan_.notifications / elapsed, 1) if elapsed else 0.0
    latencies = [
        watch.first_decided[key] - accepted
        for key, accepted in sender.accepted_at.items()
        if key in watch.first_decided
    ]
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    report.latency_p50_ms = None if p50 is None else round(p50 * 1000)
    report.latency_p99_ms = None if p99 is None else round(p99 * 1000)
    check(report, plan_, sender)
    report.health = check_incident_automation_health()
    if sender.errors:
        report.notes += sender.errors[:5]
    return report


def _log(name, message):
    print(f'[storm {name}] {message}', file=sys.stderr, flush=True)


def write_figures(report, path=None):
    """Append the report as one JSON line to the figures file that RELIABILITY.md is made from."""
    path = Path(path or os.environ.get('NBA_STORM_FIGURES', REPO / '.work' / 'storm-figures.jsonl'))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open('a') as out:
        out.write(json.dumps(dataclasses.asdict(report), default=str) + '\n')
    return path


class Webhook:
    """The notification webhook on 127.0.0.1:``port``: answers ``ok``, ``fail`` (500) or ``hang``
    (holds each request ``hang_seconds``), switchable while it runs; counts what it got."""

    def __init__(self, port, behaviour='ok', hang_seconds=10.0):
        import http.server

        self.behaviour = behaviour
        self.received = collections.Counter()
        self.release = threading.Event()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                length = int(self.headers.get('Content-Length', 0))
                self.rfile.read(length)
                behaviour = owner.behaviour
                owner.received[behaviour] += 1
                if behaviour == 'hang':
                    owner.release.wait(hang_seconds)
                self.send_response(500 if behaviour == 'fail' else 200)
                self.end_headers()
                self.wfile.write(b'{}')

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
