"""An RQ worker class that runs this plugin's jobs in its own process and keeps their state.

``netbox rqworker`` forks a work horse per job, and a horse's memory dies with it. With RQ's
default ``Worker`` every decision job starts without the map snapshot, opens its own database
connection and rebuilds every process-wide cache it needs: in a storm, forking and rebuilding
cost more than the decisions themselves. ``SnapshotWorker`` runs the plugin's own jobs (decision
and notification jobs, ``IN_PROCESS_JOBS``) in the worker process, as RQ's ``SimpleWorker`` does:

- the map snapshot, the live incidents' members, Django's URL resolver, the content types and the
  notifications' URL opener are loaded when the worker starts, before it registers and takes a
  job, and stay loaded from one job to the next; the database connection is kept (NetBox's
  ``CONN_MAX_AGE``), checked before each job, and replaced if it broke (a PostgreSQL restart);
- each job runs in a context of its own (``contextvars``), so NetBox's request and event queue of
  one job never reach the next;
- job timeouts apply (RQ's SIGALRM ends the job, and the decisions let it through), heartbeats are
  renewed while a job runs, a job stuck 60 s past its timeout ends the worker as ``Worker`` kills
  such a horse, and a worker killed mid-job (SIGKILL) loses that job as a killed horse would: RQ
  fails it as abandoned, and the sweep decides its events.

Every other job (NetBox's own, scripts, reports) is forked as RQ's ``Worker`` does, after the
snapshot and the caches are brought up to date in the worker, so the horse inherits them.

It is built on NetBox's ``NetBoxRQWorker``, so a worker whose registration Redis lost registers again at its
next heartbeat, as NetBox's own workers do. Use it with ``netbox rqworker --worker-class
business_application.workers.SnapshotWorker`` (or ``RQ = {'WORKER_CLASS': ...}`` in NetBox's configuration.py,
which leaves the command unchanged; NetBox then warns at start that its self-healing heartbeat will not apply,
which for this class is not so).
"""

import contextlib
import contextvars
import logging
import os
import signal
import threading
import time

from django.db import connections
from rq.worker import WorkerStatus

from utilities.rqworker import NetBoxRQWorker

__all__ = ('IN_PROCESS_JOBS', 'SnapshotWorker')

logger = logging.getLogger('business_application.workers')

#: The jobs SnapshotWorker runs in its own process: this plugin's, which keep no state of their own.
IN_PROCESS_JOBS = frozenset(
    {
        'business_application.jobs.process_event_job',
        'business_application.jobs.process_events_job',
        'business_application.notifications.send_notification',
    }
)


class SnapshotWorker(NetBoxRQWorker):
    """NetBox's worker (RQ's ``Worker`` with a registration that heals itself after Redis lost it) that runs
    ``IN_PROCESS_JOBS`` itself and forks for the others, with the map snapshot and the caches loaded in the
    worker."""

    _caches_warm = False
    in_process_jobs = IN_PROCESS_JOBS

    def work(self, *args, **kwargs):
        """Warm up before registering and taking the first job: fill the caches, load the map snapshot and keep
        the live incidents' members, which the first decision job would otherwise do while its alerts wait
        (0.4 s of caches alone, measured in the paced storm of ``bench/test_product_intake.py``)."""
        self._warm_caches()
        warm_decisions()
        return super().work(*args, **kwargs)

    def execute_job(self, job, queue):
        if job.func_name not in self.in_process_jobs:
            super().execute_job(job, queue)
            return
        self._warm_caches()
        self.prepare_execution(job)
        usable_connections()
        with self._heartbeats(job):
            succeeded = contextvars.copy_context().run(self.perform_job, job, queue)
        if not succeeded:  # it may have stopped anywhere (a timeout mid-query): the next job starts afresh
            connections.close_all()
        self.set_state(WorkerStatus.IDLE)

    @contextlib.contextmanager
    def _heartbeats(self, job):
        """While a job runs here, what ``Worker`` does while it waits for a horse: renew the worker's and the job's
        heartbeats every ``job_monitoring_interval``. A worker killed mid-job stops renewing them, and its job is
        failed as abandoned as soon as a killed horse's would be. A job still running 60 s after its timeout
        (stuck where RQ's alarm cannot reach it) ends the worker with SIGKILL, as ``Worker`` kills such a horse:
        its supervisor starts another, RQ fails the job as abandoned and the sweep decides its events."""
        done = threading.Event()
        started = time.monotonic()
        limit = job.timeout + 60 if job.timeout and job.timeout > 0 else None

        def beat():
            while not done.wait(self.job_monitoring_interval):
                if limit is not None and time.monotonic() - started > limit:
                    logger.error(
                        'job %s is still running %s s after its timeout of %s s; ending this worker with SIGKILL',
                        job.id,
                        round(time.monotonic() - started - job.timeout),
                        job.timeout,
                    )
                    os.kill(os.getpid(), signal.SIGKILL)
                    return
                try:
                    self.maintain_heartbeats(job)
                except Exception:  # the job ended meanwhile, or Redis did not answer: the next beat tries again
                    logger.debug('could not renew the heartbeat of job %s', job.id, exc_info=True)

        thread = threading.Thread(target=beat, name=f'heartbeat-{job.id}', daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def fork_work_horse(self, job, queue):
        self._warm_caches()
        warm_snapshot()
        super().fork_work_horse(job, queue)

    def _warm_caches(self):
        if not self._caches_warm:
            self._caches_warm = warm_caches()  # a failed warm-up (PostgreSQL not up yet) is tried again later


def usable_connections():
    """Before a job run in the worker, as Django before a request: close each database connection that is too
    old or broke in an earlier job, and have the job check that the others still answer (``CONN_HEALTH_CHECKS``,
    on in NetBox's usual configuration; without it, a ``SELECT 1`` here), so that a job after a PostgreSQL
    restart opens a new connection instead of failing on the old one."""
    for connection in connections.all(initialized_only=True):
        connection.close_if_unusable_or_obsolete()  # also makes the next query run the health check
        if connection.connection is not None and not connection.health_check_enabled and not connection.is_usable():
            connection.close()


def warm_caches():
    """Fill Django's URL resolver, the content type cache and the notifications' URL opener in this process,
    so that forked horses inherit them; whether it succeeded. A failure only costs each horse the work it would
    have done anyway."""
    from django.apps import apps
    from django.contrib.contenttypes.models import ContentType
    from django.urls import reverse

    from .notifications import opener
    from .services.graph_loader import MODEL_KINDS

    try:
        opener()
        reverse('plugins:business_application:incident', args=[1])
        for app_label, model in MODEL_KINDS:
            ContentType.objects.get_by_natural_key(app_label, model)
        ContentType.objects.get_for_models(*apps.get_app_config('business_application').get_models())
    except Exception:
        logger.exception('could not fill the URL and content type caches before a job')
        return False
    return True


def warm_decisions(live_incidents=True):
    """Load this process's map snapshot and, with ``live_incidents``, keep the members of the live incidents
    (``member_cache``), as a decision would. A failure (PostgreSQL not up yet, say) only leaves that to the job."""
    from .services import clock
    from .services.graph_loader import current_map
    from .services.incident_service import DjangoStore, to_epoch
    from .settings import get_settings

    try:
        settings = get_settings()
        if settings.auto_incidents_enabled:
            service_map = current_map()
            if live_incidents:
                DjangoStore(service_map, settings).live_incidents(to_epoch(clock.now()), settings)
    except Exception:
        what = 'the map and the live incidents' if live_incidents else 'the map'
        logger.exception('could not load %s before a job; the job will', what)


def warm_snapshot():
    """Bring this process's snapshot up to date, then close its database connections (a forked child
    must open its own)."""
    try:
        warm_decisions(live_incidents=False)
    finally:
        connections.close_all()
