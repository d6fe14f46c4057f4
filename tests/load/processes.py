"""The product running on 127.0.0.1 (gunicorn and RQ workers on the test database, restarted as a
supervisor would), the faults on this checkout's own PostgreSQL and Redis, and the notification webhook."""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]
#: The RQ worker class the storms run (``SnapshotWorker``, as the README recommends); NBA_STORM_WORKER_CLASS=rq
#: runs RQ's default ``Worker``, what a plain ``netbox rqworker`` uses.
WORKER_CLASS = os.environ.get('NBA_STORM_WORKER_CLASS', 'business_application.workers.SnapshotWorker')


def worker_class_args(worker_class):
    return [] if worker_class == 'rq' else ['--worker-class', worker_class]


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
        self.worker_class = WORKER_CLASS
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
        self.wait_for_workers(timeout)
        return self

    def _worker(self):
        log = open(self.log_dir / 'rqworker.log', 'ab')  # noqa: SIM115 - lives as long as the worker
        netbox = Path(sys.executable).with_name('netbox')
        command = [str(netbox), 'rqworker', 'high', 'default', 'low', '--with-scheduler']
        return subprocess.Popen(
            [*command, *worker_class_args(self.worker_class)],
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

    def use_worker_class(self, worker_class):
        """Replace the RQ workers by as many of this class ('rq': RQ's default ``Worker``), each stopped warm."""
        if worker_class == self.worker_class:
            return
        with self._lock:
            for worker in self.workers:
                worker.send_signal(signal.SIGTERM)
            for worker in self.workers:
                worker.wait(timeout=60)
            self.worker_class = worker_class
            self.workers = [self._worker() for _ in range(self.rq_workers)]
        self.wait_for_workers()

    def wait_for_workers(self, timeout=180):
        """Until each RQ worker process started has registered with Redis (about ten seconds of CPU each)."""
        import django_rq
        from rq import Worker

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                pids = {worker.pid for worker in self.workers}
            registered = {worker.pid for worker in Worker.all(connection=django_rq.get_connection('default'))}
            if pids <= registered:
                return
            time.sleep(0.5)
        raise RuntimeError(f'the RQ workers did not start within {timeout} s; see {self.log_dir}/rqworker.log')

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
