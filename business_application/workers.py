"""An RQ worker class that keeps the map snapshot loaded across jobs.

``netbox rqworker`` forks a work horse per job, and a horse's memory dies with it: with RQ's
default ``Worker`` every job of this plugin starts without a snapshot and reads the whole map from
the database (or applies every delta since the parent started). ``SnapshotWorker`` brings the
parent's snapshot up to date (one Redis read, then the deltas, or a full load the first time)
just before each fork, so every horse inherits a current map and checks only the version.
It also fills, once, the process-wide caches every job would otherwise rebuild in its horse and lose
with it: Django's URL resolver (a notification's incident URL made each horse read NetBox's whole URL
configuration, 7% of the workers' time in a storm), the content types of the map's models and the
notifications' URL opener (its TLS context, 10%).
Everything else is RQ's ``Worker``: one horse per job, job timeouts, a horse killed by SIGKILL or
a timeout fails its job and the sweep decides its events.

Use it with ``netbox rqworker --worker-class business_application.workers.SnapshotWorker`` (or
``RQ = {'WORKER_CLASS': 'business_application.workers.SnapshotWorker'}`` in NetBox's
configuration.py, which leaves the command unchanged).
"""

import logging

from django.db import connections
from rq.worker import Worker

__all__ = ('SnapshotWorker',)

logger = logging.getLogger('business_application.workers')


class SnapshotWorker(Worker):
    """RQ's forking ``Worker``, with the map snapshot refreshed in the parent before each fork."""

    _caches_warm = False

    def fork_work_horse(self, job, queue):
        if not self._caches_warm:
            warm_caches()
            self._caches_warm = True
        warm_snapshot()
        super().fork_work_horse(job, queue)


def warm_caches():
    """Fill Django's URL resolver, the content type cache and the notifications' URL opener in this process,
    so that forked horses inherit them. A failure only costs each horse the work it would have done anyway."""
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


def warm_snapshot():
    """Bring this process's snapshot up to date, then close its database connections (a forked child
    must open its own). A failure only costs the child the load it would have done anyway."""
    from .services.graph_loader import current_map
    from .settings import get_settings

    try:
        if get_settings().auto_incidents_enabled:
            current_map()
    except Exception:
        logger.exception('could not refresh the map snapshot before a job; the job will load it')
    finally:
        connections.close_all()
