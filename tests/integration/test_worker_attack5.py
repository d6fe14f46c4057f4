"""Attack 5: SnapshotWorker running the plugin's jobs in its own process, update_rows, and quiet incidents.

Each test states what a deployment expects; a failing one is a finding (see the report of attack 5).

Finding 1 (fails on HEAD): test_a_decision_job_over_its_timeout_is_ended_as_a_forked_horse_would_be[SnapshotWorker]
- a decision job stuck on a lock past its timeout is never ended in the worker's own process (decide_events
swallows the JobTimeoutException; nothing kills the job as RQ kills a horse at timeout + 60 s; the heartbeat thread
keeps it looking alive). The rq.worker.Worker case is the control and passes.
Everything else here passes on HEAD: what held up.
"""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import django_rq
import pytest
from django.conf import settings as django_settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test import override_settings

from dcim.models import Device

from business_application.models import Event, EventSource

from .maps import DATABASE_OUTAGE, build

ROOT = str(Path(__file__).resolve().parents[2])
SNAPSHOT_WORKER = 'business_application.workers.SnapshotWorker'


def worker_env():
    return {
        **os.environ,
        'NB_DB_NAME': django_settings.DATABASES['default']['NAME'],
        'NBA_TESTING': '1',
        'PYTHONPATH': os.pathsep.join(filter(None, [ROOT, os.environ.get('PYTHONPATH')])),
    }


def start_worker(worker_class, *queues, burst=True):
    netbox = Path(sys.executable).with_name('netbox')
    return subprocess.Popen(
        [str(netbox), 'rqworker', *(['--burst'] if burst else []), '--worker-class', worker_class, *queues],
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def empty(queue):
    queue.empty()
    for registry in (
        queue.failed_job_registry,
        queue.finished_job_registry,
        queue.scheduled_job_registry,
    ):
        for job_id in registry.get_job_ids():
            registry.remove(job_id)
    queue.connection.delete(queue.started_job_registry.key)  # a killed worker's job (no remove() for these)


def outage(queue_name, event=True):
    """The database-outage map, an event source and (``event``) one alert on DB-PROD-01, with the queue emptied
    of what they queued. Returns the queue, the map's objects, the source and the event (or None)."""
    queue = django_rq.get_queue(queue_name)
    empty(queue)
    objects = build(DATABASE_OUTAGE)
    source = EventSource.objects.create(name='prometheus')
    made = make_event(objects, source) if event else None
    empty(queue)
    return queue, objects, source, made


def make_event(objects, source, name='DB-PROD-01', dedup='db-down'):
    return Event.objects.create(
        message=f'{name} down',
        status='triggered',
        criticallity='critical',
        dedup_id=dedup,
        event_source=source,
        content_type=ContentType.objects.get_for_model(Device),
        object_id=objects[f'device:{name}'].pk,
    )


class RowLock:
    """Hold a row lock on an event from another connection, as a stuck transaction (an admin's psql session, a
    web request stuck in a slow query) would."""

    def __init__(self, event_id):
        self.event_id = event_id
        self.taken = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self):
        try:
            with transaction.atomic():
                Event.objects.select_for_update().get(pk=self.event_id)
                self.taken.set()
                self.release.wait(300)
        except Exception:  # noqa: BLE001 - PostgreSQL restarted under the lock: it is gone
            pass
        finally:
            connection.close()

    def __enter__(self):
        self.thread.start()
        assert self.taken.wait(30)
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(30)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('worker_class', ['rq.worker.Worker', SNAPSHOT_WORKER])
def test_a_decision_job_over_its_timeout_is_ended_as_a_forked_horse_would_be(worker_class):
    """RQ's Worker kills a horse that outlives its job timeout by 60 s, whatever the job does with the
    JobTimeoutException. A decision job swallows that exception (``decide_events`` catches Exception around the
    batch and around each one-at-a-time retry), so in the worker's own process nothing ends the job: the worker
    waits on the lock forever while its heartbeat thread tells RQ it is alive."""
    queue, objects, source, event = outage('default')
    timeout = 2
    job = queue.enqueue(
        'business_application.jobs.process_events_job', [(event.pk, None)], job_timeout=timeout, result_ttl=600
    )
    with RowLock(event.pk):
        worker = start_worker(worker_class, 'default')
        try:
            # RQ checks its horse every job_monitoring_interval (30 s): it kills it within timeout + 60 + 30 s
            output, _ = worker.communicate(timeout=timeout + 60 + 30 + 25)
            ended = True
        except subprocess.TimeoutExpired:
            worker.kill()
            output, _ = worker.communicate()
            ended = False
    assert ended, f'the worker was still running the job {timeout + 115} s after its {timeout} s timeout:\n{output}'
    assert job.get_status(refresh=True) == 'failed'


@pytest.mark.django_db(transaction=True)
def test_a_second_sigterm_ends_a_worker_waiting_in_an_in_process_job():
    """Cold shutdown during a decision job that waits on a lock: the worker exits at once, the job is failed (not
    left started), and the event stays undecided for the sweep."""
    import signal

    queue, objects, source, event = outage('default')
    job = queue.enqueue('business_application.jobs.process_events_job', [(event.pk, None)], job_timeout=600)
    with RowLock(event.pk):
        worker = start_worker(SNAPSHOT_WORKER, 'default', burst=False)
        try:
            deadline = time.monotonic() + 60
            while job.get_status(refresh=True) != 'started' and time.monotonic() < deadline:
                time.sleep(0.2)
            assert job.get_status() == 'started'
            time.sleep(1)
            worker.send_signal(signal.SIGTERM)
            time.sleep(1.5)
            worker.send_signal(signal.SIGTERM)
            output, _ = worker.communicate(timeout=15)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    assert worker.returncode is not None
    assert job.get_status(refresh=True) == 'failed', output


@pytest.mark.django_db(transaction=True)
def test_update_rows_writes_a_value_too_long_for_its_column_as_bulk_update_does():
    """``update_rows`` casts each value to its column's type (PostgreSQL's explicit cast to varchar(n) truncates);
    bulk_update casts its CASE the same way on PostgreSQL, so both store the same truncated text (no error)."""
    from business_application.services.bulk import update_rows

    objects = build(DATABASE_OUTAGE)
    source = EventSource.objects.create(name='prometheus')
    first, second = make_event(objects, source), make_event(objects, source, 'WEB-APP-01', 'web-down')
    first.message = second.message = 'é' * 2100
    Event.objects.bulk_update([first], ['message'])
    update_rows(Event, [second], ['message'])
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.message == second.message == 'é' * 2000


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('value', [None, {'ü': '雪' * 5000, 'n': None}, [], 'text', 0])
def test_update_rows_stores_json_as_save_does(value):
    """Odd JSON (SQL NULL, unicode, long, scalars) reads back as ``save`` stores it."""
    from business_application.services.bulk import update_rows

    objects = build(DATABASE_OUTAGE)
    source = EventSource.objects.create(name='prometheus')
    first, second = make_event(objects, source), make_event(objects, source, 'WEB-APP-01', 'web-down')
    first.occurrence_object = second.occurrence_object = value
    Event.objects.filter(pk=first.pk).update(occurrence_object=value)
    update_rows(Event, [second], ['occurrence_object'])
    rows = dict(Event.objects.filter(occurrence_object__isnull=True).values_list('pk', 'occurrence_object'))
    assert (first.pk in rows) == (second.pk in rows)
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.occurrence_object == second.occurrence_object == value


@pytest.mark.django_db(transaction=True)
def test_update_rows_moves_an_event_to_another_object_and_to_none():
    """content_type (a foreign key) and object_id changed together, and cleared (an unmapped alert)."""
    from business_application.services.bulk import update_rows

    objects = build(DATABASE_OUTAGE)
    source = EventSource.objects.create(name='prometheus')
    first, second = make_event(objects, source), make_event(objects, source, 'WEB-APP-01', 'web-down')
    first.content_type, first.object_id, first.unmapped_label = None, None, 'device:ghost'
    second.content_type = ContentType.objects.get_for_model(EventSource)
    second.object_id = source.pk
    update_rows(Event, [first, second], ['content_type', 'object_id', 'unmapped_label'])
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.content_type_id, first.object_id, first.unmapped_label) == (None, None, 'device:ghost')
    assert (second.content_type.model, second.object_id) == ('eventsource', source.pk)


def wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.3)
    return condition()


def decided(event):
    event.refresh_from_db()
    return event.processed_status == event.status


@pytest.mark.django_db(transaction=True)
def test_in_process_jobs_after_a_postgresql_restart_open_a_new_connection():
    """The worker kept its connection from the first decision (CONN_MAX_AGE); PostgreSQL restarts (every
    connection cut); the next decision job checks the kept connection, opens a new one and decides its event."""
    from tests.load.processes import restart_postgresql

    queue, objects, source, _ = outage('default', event=False)
    worker = start_worker(SNAPSHOT_WORKER, 'default', burst=False)
    try:
        with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
            first = make_event(objects, source)
        assert wait_for(lambda: decided(first), 60)
        # NetBox's own jobs the decision queued (search cache) done too: none runs while PostgreSQL is down
        assert wait_for(lambda: queue.count == 0 and not queue.started_job_registry.get_job_ids(), 60)
        connection.close()
        restart_postgresql()
        connection.close()
        with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
            second = make_event(objects, source, 'WEB-APP-01', 'web-down')
        assert wait_for(lambda: decided(second), 60), 'the job after the restart decided its event'
        failed = [queue.fetch_job(job_id) for job_id in queue.failed_job_registry.get_job_ids()]
        assert [(job.func_name, job.latest_result().exc_string[-4000:]) for job in failed] == []
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=60)
    assert 'Traceback' not in output, output


@pytest.mark.django_db(transaction=True)
def test_a_postgresql_restart_during_an_in_process_job_leaves_the_worker_deciding():
    """PostgreSQL restarts while a decision job waits on a lock in the worker's own process: that job ends (its
    events left for the sweep, or decided once the database is back), and the worker decides the next job on a
    new connection."""
    from tests.load.processes import restart_postgresql

    queue, objects, source, first = outage('default')
    stuck = queue.enqueue('business_application.jobs.process_events_job', [(first.pk, None)], job_timeout=600)
    worker = start_worker(SNAPSHOT_WORKER, 'default', burst=False)
    try:
        with RowLock(first.pk):
            assert wait_for(lambda: stuck.get_status(refresh=True) == 'started', 60)
            time.sleep(1)
            connection.close()
            restart_postgresql()
        connection.close()
        assert wait_for(lambda: stuck.get_status(refresh=True) in ('finished', 'failed'), 60), 'the stuck job ended'
        with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
            second = make_event(objects, source, 'WEB-APP-01', 'web-down')
        assert wait_for(lambda: decided(second), 60), 'the next job decided its event'
        assert worker.poll() is None, 'the worker is still running'
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=60)


@pytest.mark.django_db(transaction=True)
def test_a_batch_failing_mid_way_in_the_worker_leaves_the_next_job_a_clean_connection_and_context(monkeypatch):
    """A decision job whose batch fails after writing incidents (the events' bookkeeping write raises) falls back
    to one at a time; the next job in the same process finds no transaction, no request and no queued events of
    it, and each incident gets exactly one creation record."""
    import signal

    from rq import get_current_job

    from core.models import ObjectChange
    from netbox.context import current_request, events_queue

    from business_application.models import Incident
    from business_application.services import batch
    from business_application.workers import IN_PROCESS_JOBS, SnapshotWorker

    from .test_workers import down_alert, sender_header

    queue, objects, source, _ = outage('default', event=False)
    header = sender_header()
    from django.urls import reverse
    from rest_framework.test import APIClient

    for name in ('DB-PROD-01', 'MAIL-01'):
        with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
            response = APIClient().post(
                reverse('plugins-api:business_application-api:event-list'),
                down_alert(objects, source, name),
                format='json',
                **header,
            )
        assert response.status_code == 201
    for job in queue.get_jobs():
        if job.func_name not in IN_PROCESS_JOBS:
            job.delete()
    singles = queue.get_jobs()
    assert len(singles) == 2
    jobs = []
    for job in singles:  # as batches (the receivers queue these)
        if job.func_name.endswith('process_event_job'):
            job.delete()
            job = queue.enqueue(
                'business_application.jobs.process_events_job', [tuple(job.args[:2])], request=job.kwargs['request']
            )
        jobs.append(job)
    real = batch.update_rows
    failures, seen = [], []

    def failing(*args, **kwargs):
        if get_current_job().id == jobs[0].id:
            failures.append(1)
            raise RuntimeError('injected: the bookkeeping write failed')
        return real(*args, **kwargs)

    class Checking(SnapshotWorker):
        def perform_job(self, job, queue):
            seen.append(
                (connection.in_atomic_block, current_request.get(), dict(events_queue.get()), connection.needs_rollback)
            )
            return super().perform_job(job, queue)

    monkeypatch.setattr(batch, 'update_rows', failing)
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        assert Checking([queue], connection=queue.connection).work(burst=True)
    finally:
        for number, handler in handlers.items():
            signal.signal(number, handler)
    assert failures == [1]
    assert seen == [(False, None, {}, False)] * 2
    assert [job.get_status(refresh=True) for job in jobs] == ['finished', 'finished']
    assert not Event.objects.exclude(processed_status=models_F('status')).exists()
    incident_type = ContentType.objects.get_for_model(Incident)
    created = ObjectChange.objects.filter(changed_object_type=incident_type, action='create')
    assert sorted(created.values_list('changed_object_id', flat=True)) == sorted(
        Incident.objects.values_list('pk', flat=True)
    )
    assert not connection.in_atomic_block
    assert current_request.get() is None
    assert not events_queue.get()


def models_F(name):  # noqa: N802 - django.db.models.F, imported late
    from django.db.models import F

    return F(name)


@pytest.mark.django_db(transaction=True)
def test_a_webhook_trickling_its_answer_is_ended_by_the_job_timeout_in_the_worker():
    """A webhook that sends its answer one byte a second never trips the 5 s socket timeout: only the job timeout
    ends the notification job run in the worker's own process, which then goes on (RQ retries the job)."""
    import http.server
    import signal

    from business_application.models import Incident
    from business_application.workers import SnapshotWorker

    stop = threading.Event()

    class Trickle(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - the http.server API
            self.rfile.read(int(self.headers.get('Content-Length', 0)))
            self.wfile.write(b'HTTP/1.1 200 OK\r\n')
            while not stop.is_set():
                try:
                    self.wfile.write(b'X')
                    self.wfile.flush()
                except OSError:
                    return
                stop.wait(1)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f'http://127.0.0.1:{server.server_port}/hook'
    queue = django_rq.get_queue('low')
    empty(queue)
    objects = build(DATABASE_OUTAGE)
    source = EventSource.objects.create(name='prometheus')
    make_event(objects, source)
    incident = Incident.objects.get()
    empty(queue)
    job = queue.enqueue(
        'business_application.notifications.send_notification', incident.pk, 'created', url, job_timeout=3
    )
    handlers = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    started = time.monotonic()
    try:
        with override_settings(BUSINESS_APP_NOTIFICATION_WEBHOOKS=[url]):
            SnapshotWorker([queue], connection=queue.connection).work(burst=True)
    finally:
        stop.set()
        server.shutdown()
        for number, handler in handlers.items():
            signal.signal(number, handler)
    assert time.monotonic() - started < 30
    assert job.get_status(refresh=True) == 'failed'
    assert 'JobTimeoutException' in job.latest_result().exc_string


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('path', ['process_event', 'decide_events'])
def test_a_repeat_gets_the_same_change_record_whichever_path_decides_it(path):
    """The same repeat (an alert re-sent later, which moves only its incident's latest activity) decided one at a
    time (the REST event endpoint, a failed batch's retry) or in a batch (the receivers, decision jobs): the change
    log of the incident should not depend on the path. The batch's quiet incidents get no update record; the
    one-at-a-time path still writes one."""
    import uuid
    from datetime import timedelta

    from django.test import RequestFactory

    from core.models import ObjectChange
    from netbox.context_managers import event_tracking
    from users.models import User

    from business_application.models import Incident
    from business_application.services import clock
    from business_application.services.batch import decide_events
    from business_application.services.incident_service import process_event

    objects = build(DATABASE_OUTAGE)
    source = EventSource.objects.create(name='prometheus')
    user = User.objects.create_user(username='attack5')

    def request():
        made = RequestFactory().post('/')
        made.id, made.user = uuid.uuid4(), user
        return made

    with event_tracking(request()):
        event = make_event(objects, source)
    incident = Incident.objects.get()
    incident_type = ContentType.objects.get_for_model(Incident)
    updates = ObjectChange.objects.filter(changed_object_type=incident_type, action='update')
    before = updates.count()
    later = clock.now() + timedelta(minutes=5)
    Event.objects.filter(pk=event.pk).update(event_time=later, last_seen_at=later)
    activity = Incident.objects.get().last_activity_at
    with event_tracking(request()):
        if path == 'process_event':
            process_event(event.pk, now=later)
        else:
            [(_, outcome)] = decide_events([(event.pk, later)])
            assert not isinstance(outcome, Exception), outcome
    incident.refresh_from_db()
    assert incident.last_activity_at != activity, 'the repeat moved the incident latest activity'
    assert updates.count() - before == 0, f'{path} wrote an update record for a repeat'


@pytest.mark.django_db(transaction=True)
def test_one_sigterm_lets_the_in_process_job_finish_then_the_worker_exits():
    """Warm shutdown during a decision job waiting on a lock: once the lock is released the job finishes and the
    worker exits cleanly."""
    import signal

    queue, objects, source, event = outage('default')
    job = queue.enqueue('business_application.jobs.process_events_job', [(event.pk, None)], job_timeout=600)
    worker = start_worker(SNAPSHOT_WORKER, 'default', burst=False)
    try:
        with RowLock(event.pk):
            assert wait_for(lambda: job.get_status(refresh=True) == 'started', 60)
            time.sleep(1)
            worker.send_signal(signal.SIGTERM)
            time.sleep(3)
            assert worker.poll() is None, 'the worker waits for its job'
        output, _ = worker.communicate(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.communicate()
    assert worker.returncode == 0, output
    assert job.get_status(refresh=True) == 'finished', output


@pytest.mark.django_db(transaction=True)
def test_a_single_decision_job_timing_out_mid_query_leaves_the_worker_a_usable_connection():
    """``process_event_job`` times out while its query waits on a lock (the timeout is raised inside psycopg's
    wait, leaving the connection mid-query): the job fails, and the next job in the same process decides its
    event on a working connection."""
    queue, objects, source, first = outage('default')
    stuck = queue.enqueue('business_application.jobs.process_event_job', first.pk, None, job_timeout=2)
    with RowLock(first.pk):
        worker = start_worker(SNAPSHOT_WORKER, 'default', burst=False)
        try:
            assert wait_for(lambda: stuck.get_status(refresh=True) == 'failed', 60), 'the timed-out job failed'
        except AssertionError:
            worker.kill()
            worker.communicate()
            raise
    try:
        with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
            second = make_event(objects, source, 'WEB-APP-01', 'web-down')
        assert wait_for(lambda: decided(second), 60), 'the next job decided its event'
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=60)
    assert 'JobTimeoutException' in stuck.latest_result().exc_string


@pytest.mark.django_db(transaction=True)
def test_update_rows_writes_every_chunk():
    """1001 events (three chunks of at most 500), each with its own unicode message and bookkeeping."""
    from business_application.services.bulk import update_rows

    source = EventSource.objects.create(name='prometheus')
    Event.objects.bulk_create(
        [
            Event(message=f'm{i}', status='triggered', criticallity='critical', dedup_id=f'd{i}', event_source=source)
            for i in range(1001)
        ]
    )
    events = list(Event.objects.order_by('pk'))
    for i, event in enumerate(events):
        event.message = f'☃ {i} ' + 'x' * (i % 7)
        event.processed_status, event.occurrence, event.pending_states = 'triggered', i, [{'n': i}]
    update_rows(Event, events, ['message', 'processed_status', 'occurrence', 'pending_states'])
    stored = list(Event.objects.order_by('pk').values_list('message', 'occurrence', 'pending_states'))
    assert stored == [(f'☃ {i} ' + 'x' * (i % 7), i, [{'n': i}]) for i in range(1001)]
