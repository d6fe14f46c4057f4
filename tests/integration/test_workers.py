"""Asynchronous processing with real `netbox rqworker` processes and concurrent senders.

Eight threads post a storm (with duplicate deliveries) through the REST API while asynchronous
processing is on; the decisions wait in NetBox's RQ queue until three worker processes drain it
at once. Every alert is one event, decided once, and the incidents are exactly those a single
worker makes: one per web farm.
"""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import F
from django.test import override_settings
from django.urls import reverse
from rest_framework.test import APIClient

from users.constants import TOKEN_PREFIX
from users.models import ObjectPermission, Token, User

from business_application.models import Event, EventSource, Incident, IncidentEvent

from .maps import build

FARMS, SERVERS, SENDERS, WORKERS = 4, 6, 8, 3
MAP = (
    'name: farms\ngraph:\n  services: ['
    + ', '.join(f'web-{f}' for f in range(FARMS))
    + ']\n  devices:\n'
    + ''.join(
        f'    - {{name: f{f}-s{s}, role: server, services: [web-{f}]}}\n' for f in range(FARMS) for s in range(SERVERS)
    )
)


def sender_header():
    user = User.objects.create_user(username='alertmanager')
    permission = ObjectPermission.objects.create(name='send', actions=['view', 'add', 'change'])
    permission.object_types.add(ContentType.objects.get_by_natural_key('business_application', 'event'))
    permission.users.add(user)
    token = Token.objects.create(user=user)
    return {'HTTP_AUTHORIZATION': f'Bearer {TOKEN_PREFIX}{token.key}.{token.token}'}


def down_alert(objects, source, name):
    """The events API's payload of a critical alert on the device of this name."""
    return {
        'message': f'{name} down',
        'status': 'triggered',
        'criticallity': 'critical',
        'content_type': 'dcim.device',
        'object_id': objects[f'device:{name}'].pk,
        'dedup_id': f'{name}-down',
        'event_source': source.pk,
    }


def post_storm(objects, source, header):
    """Every server alerts; each alert is delivered twice, by different senders."""
    alerts = [
        down_alert(objects, source, name) for name in (f'f{f}-s{s}' for f in range(FARMS) for s in range(SERVERS))
    ]
    deliveries = alerts + alerts[::-1]
    codes, errors = [], []
    barrier = threading.Barrier(SENDERS)

    def send(chunk):
        client = APIClient()
        try:
            barrier.wait(timeout=30)
            for payload in chunk:
                response = client.post(
                    reverse('plugins-api:business_application-api:event-list'), payload, format='json', **header
                )
                codes.append(response.status_code)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(deliveries[i::SENDERS],)) for i in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    return codes


def run_workers(worker_class=None):
    """Start WORKERS `netbox rqworker --burst` processes on the test database and wait for them."""
    netbox = Path(sys.executable).with_name('netbox')
    env = {**os.environ, 'NB_DB_NAME': django_settings.DATABASES['default']['NAME'], 'NBA_TESTING': '1'}
    options = ['--worker-class', worker_class] if worker_class else []
    workers = [
        subprocess.Popen(
            [str(netbox), 'rqworker', '--burst', *options, 'default'],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(WORKERS)
    ]
    outputs = [worker.communicate(timeout=300)[0] for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    return outputs


def queue_storm():
    """The map, and the storm posted with asynchronous processing on: its decision jobs wait in the default
    queue (emptied first). Returns the queue and the answers' status codes."""
    import django_rq

    queue = django_rq.get_queue('default')
    queue.empty()
    objects = build(MAP)
    source = EventSource.objects.create(name='prometheus')
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
        codes = post_storm(objects, source, sender_header())
    return queue, codes


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('worker_class', [None, 'business_application.workers.SnapshotWorker'])
def test_three_workers_and_eight_senders_make_a_single_workers_decisions(worker_class):
    queue, codes = queue_storm()
    assert sorted(set(codes)) == [200, 201]
    assert codes.count(201) == FARMS * SERVERS
    assert Incident.objects.count() == 0, 'decisions wait for a worker'
    assert queue.count >= FARMS * SERVERS

    run_workers(worker_class)

    assert Event.objects.count() == FARMS * SERVERS
    assert not Event.objects.exclude(processed_status=F('status')).exists()
    assert IncidentEvent.objects.count() == FARMS * SERVERS
    groups = sorted(
        sorted(IncidentEvent.objects.filter(incident=incident).values_list('event__dedup_id', flat=True))
        for incident in Incident.objects.all()
    )
    assert groups == [sorted(f'f{f}-s{s}-down' for s in range(SERVERS)) for f in range(FARMS)]
    assert queue.count == 0


def worker_env(importable_tests=False):
    """A worker's environment on the test database; ``importable_tests``: with this checkout on its path, so it
    can run jobs (and worker classes) defined in ``tests``."""
    env = {**os.environ, 'NB_DB_NAME': django_settings.DATABASES['default']['NAME'], 'NBA_TESTING': '1'}
    if importable_tests:
        root = str(Path(__file__).resolve().parents[2])
        env['PYTHONPATH'] = os.pathsep.join(filter(None, [root, os.environ.get('PYTHONPATH')]))
    return env


def run_burst(worker_class, importable_tests=False):
    """One `netbox rqworker --burst` of this class on the default queue of the test database, to its end.
    ``importable_tests``: with this checkout on its path, so it can run jobs defined in ``tests``."""
    netbox = Path(sys.executable).with_name('netbox')
    result = subprocess.run(
        [str(netbox), 'rqworker', '--burst', '--worker-class', worker_class, 'default'],
        env=worker_env(importable_tests),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db(transaction=True)
def test_snapshot_worker_loads_the_map_once_in_the_parent_for_every_job():
    """Each horse forked by SnapshotWorker starts with the parent's snapshot: the map is read once,
    not once per job (``stats`` run as a job reports the counters the horse inherited)."""
    import django_rq

    from business_application.services.graph_loader import stats

    queue = django_rq.get_queue('default')
    queue.empty()
    build(MAP)
    jobs = [queue.enqueue(stats) for _ in range(3)]
    run_burst('business_application.workers.SnapshotWorker')
    loads = [job.latest_result().return_value['full_loads'] for job in jobs]
    assert loads == [1, 1, 1], 'each horse inherited the one snapshot its parent loaded'


@pytest.mark.django_db(transaction=True)
def test_snapshot_worker_horses_inherit_the_url_and_content_type_caches():
    """A horse forked by SnapshotWorker finds Django's URL resolver, the content types and the notifications' URL
    opener filled by its parent, where RQ's Worker leaves each horse to make them again (and lose them when it
    exits)."""
    import django_rq

    queue = django_rq.get_queue('default')
    results = {}
    for worker_class in ('rq.worker.Worker', 'business_application.workers.SnapshotWorker'):
        queue.empty()
        jobs = [queue.enqueue('tests.integration.horse_jobs.inherited_caches') for _ in range(2)]
        run_burst(worker_class, importable_tests=True)
        results[worker_class] = [job.latest_result().return_value for job in jobs]
    assert (
        results['rq.worker.Worker']
        == [{'urls_filled': False, 'content_type_queries': 2, 'url_opener_built': False}] * 2
    )
    assert (
        results['business_application.workers.SnapshotWorker']
        == [{'urls_filled': True, 'content_type_queries': 0, 'url_opener_built': True}] * 2
    )


@pytest.mark.django_db(transaction=True)
def test_snapshot_worker_loads_the_map_and_the_live_incidents_before_its_first_job():
    """SnapshotWorker warms up before it takes a job: the horse of its first job inherits the map and the members
    of every live incident, which the first decision job would otherwise read while its alerts wait."""
    import django_rq

    queue = django_rq.get_queue('default')
    objects = build(MAP)
    source = EventSource.objects.create(name='prometheus')
    client, header = APIClient(), sender_header()
    for farm in range(FARMS):  # decided in the request: one live incident of two members per farm
        for server in range(2):
            payload = down_alert(objects, source, f'f{farm}-s{server}')
            response = client.post(reverse('plugins-api:business_application-api:event-list'), payload, **header)
            assert response.status_code == 201, response.content
    assert Incident.objects.count() == FARMS
    queue.empty()  # NetBox's own jobs the decisions queued (search cache updates)
    job = queue.enqueue('tests.integration.horse_jobs.kept_state')
    run_burst('business_application.workers.SnapshotWorker', importable_tests=True)
    assert job.latest_result().return_value == {'full_loads': 1, 'kept_incidents': FARMS, 'kept_members': 2 * FARMS}


@pytest.mark.django_db(transaction=True)
def test_snapshot_worker_runs_decision_jobs_itself_and_keeps_no_request_of_theirs():
    """SnapshotWorker decides in its own process (and forks NetBox's own jobs), a failed job does not stop the
    next ones, and the request a decision job ran under (NetBox's event tracking) is gone once it is done."""
    import signal

    from netbox.context import current_request, events_queue

    from business_application.workers import IN_PROCESS_JOBS, SnapshotWorker

    queue, _ = queue_storm()
    for job in queue.get_jobs():
        if job.func_name not in IN_PROCESS_JOBS:  # NetBox's own (a device's config context): forked, not here
            job.delete()
    jobs = queue.get_jobs()
    assert jobs
    assert all(job.kwargs.get('request') is not None for job in jobs), 'decision jobs carry their request'
    # A job that fails first (an arrival that is no time): the worker closes its connections, the next jobs run.
    failing = queue.enqueue('business_application.jobs.process_event_job', 1, 'not a time', at_front=True)
    ran = []

    class Recording(SnapshotWorker):
        def perform_job(self, job, queue):
            ran.append((job.func_name, os.getpid()))
            return super().perform_job(job, queue)

    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        worker = Recording([queue], connection=queue.connection)
        assert worker.work(burst=True)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)

    # The decision jobs ran here; NetBox's own jobs they queued (search cache updates of the new incidents) ran
    # in forked horses, whose record of them died with them.
    assert sorted(ran) == sorted((job.func_name, os.getpid()) for job in [failing, *jobs])
    assert failing.get_status(refresh=True) == 'failed'
    assert [job.get_status(refresh=True) for job in jobs] == ['finished'] * len(jobs)
    assert not Event.objects.exclude(processed_status=F('status')).exists()
    assert Incident.objects.count() == FARMS
    assert current_request.get() is None
    assert not events_queue.get()


@pytest.mark.django_db(transaction=True)
def test_snapshot_worker_ends_itself_when_a_job_runs_on_past_its_timeout():
    """A job run in the worker that ignores RQ's alarm (here: swallows it) is ended as Worker ends such a horse,
    60 s after its timeout (checked every 30 s): the worker kills itself, its supervisor would start another, and
    the job never finishes."""
    import time

    import django_rq

    queue = django_rq.get_queue('default')
    queue.empty()
    job = queue.enqueue('tests.integration.horse_jobs.stubborn', 600, job_timeout=1)
    netbox = Path(sys.executable).with_name('netbox')
    worker_class = 'tests.integration.horse_jobs.StubbornWorker'
    started = time.monotonic()
    worker = subprocess.Popen(
        [str(netbox), 'rqworker', '--burst', '--worker-class', worker_class, 'default'],
        env=worker_env(importable_tests=True),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = worker.communicate(timeout=1 + 60 + 30 + 60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == -9, output
    assert time.monotonic() - started >= 60, 'not before 60 s past the timeout'
    assert job.get_status(refresh=True) != 'finished'


def test_snapshot_worker_registers_again_when_redis_lost_its_registration():
    """SnapshotWorker is NetBox's worker: after Redis lost the list of workers (a flushed or rebuilt Redis), its
    next heartbeat puts it back, so NetBox's status page and the health check find it."""
    import django_rq
    from rq.worker_registration import REDIS_WORKER_KEYS

    from business_application.workers import SnapshotWorker

    queue = django_rq.get_queue('default')
    worker = SnapshotWorker([queue], connection=queue.connection)
    worker.register_birth()
    try:
        queue.connection.srem(REDIS_WORKER_KEYS, worker.key)
        assert not queue.connection.sismember(REDIS_WORKER_KEYS, worker.key)
        worker.heartbeat()
        assert queue.connection.sismember(REDIS_WORKER_KEYS, worker.key)
    finally:
        worker.register_death()
