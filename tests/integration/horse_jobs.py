"""Jobs the worker tests queue: they report what a forked horse inherited from its worker, or misbehave."""

import time

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import get_resolver


def inherited_caches():
    """Whether this process's URL resolver is filled already (reading it otherwise reads NetBox's whole URL
    configuration), how many queries naming the plugin's and the map's content types takes, and whether the
    notifications' URL opener is built."""
    from business_application import notifications
    from business_application.models import Event, Incident, IncidentEvent, TechnicalService

    filled = get_resolver()._populated  # noqa: SLF001 - Django's own flag; no public way to ask
    with CaptureQueriesContext(connection) as queries:
        ContentType.objects.get_for_models(Event, Incident, IncidentEvent, TechnicalService)
        ContentType.objects.get_by_natural_key('dcim', 'device')
    return {
        'urls_filled': filled,
        'content_type_queries': len(queries),
        'url_opener_built': notifications._opener is not None,  # noqa: SLF001 - the cache under test
    }


def kept_state():
    """How many full loads of the map this process has made, and the incidents and members its member cache
    keeps."""
    from business_application.services import graph_loader, member_cache

    kept = member_cache.stats()
    return {
        'full_loads': graph_loader.stats()['full_loads'],
        'kept_incidents': kept['incidents'],
        'kept_members': kept['members'],
    }


def stubborn(seconds):
    """A job that ignores its timeout: it swallows RQ's alarm and runs on for this many seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(0.5)
        except Exception:  # noqa: BLE001, S110 - the misbehaviour under test
            pass
    return 'ran to its end'


def _stubborn_worker():
    from business_application.workers import SnapshotWorker

    class StubbornWorker(SnapshotWorker):
        """SnapshotWorker that also runs ``stubborn`` in its own process."""

        in_process_jobs = SnapshotWorker.in_process_jobs | {f'{__name__}.stubborn'}

    return StubbornWorker


def __getattr__(name):  # the worker class, made when the worker imports it (after Django is set up)
    if name == 'StubbornWorker':
        return _stubborn_worker()
    raise AttributeError(name)
