"""The storm tests share one running product (gunicorn and RQ workers) and one map per session:
starting NetBox costs about ten seconds of CPU per process on this 2-core machine.

They do not use pytest-django's per-test database: its flush between transactional tests
recreates Django's content types under new ids, which the running servers have cached. Instead
the map is loaded once, each test starts from no alerts and no incidents (``storm_state``), and
these tests run after every other test of the session, whose database is cloned afresh by
``make test``.

``NBA_STORM_ALERTS`` sets the storm size in notifications (300 in ``make test``; 15,600, that is 10,102 distinct
alerts, under ``make reliability``)
and ``NBA_STORM_FIGURES`` the JSON-lines file each test appends its figures to.
"""

import os
import time
from pathlib import Path

import pytest

from .storm import Cluster, Webhook, _log, free_port, plan

STORM_ALERTS = int(os.environ.get('NBA_STORM_ALERTS', '300'))
WEB_WORKERS = int(os.environ.get('NBA_STORM_WEB_WORKERS', '3'))
RQ_WORKERS = int(os.environ.get('NBA_STORM_RQ_WORKERS', '3'))
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(session, config, items):
    """Storms last: they leave their map in the test database."""
    items.sort(key=lambda item: Path(str(item.fspath)).resolve().parent == HERE)


@pytest.fixture(scope='session')
def webhook_port():
    return free_port()


@pytest.fixture(scope='session')
def webhook(webhook_port):
    with Webhook(webhook_port) as server:
        yield server


@pytest.fixture(scope='session')
def storm_db(django_db_setup, django_db_blocker):
    """Database access for the whole session, without pytest-django's per-test flush."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope='session')
def storm_plan(storm_db):
    """The storm's map, loaded once with bulk queries; tests vary the order of the deliveries."""
    from business_application.demo.load import load_demo_map

    started = time.monotonic()
    storm_map = plan(STORM_ALERTS, seed=1)
    load_demo_map(storm_map.demo_map(9001))
    _log('map', f'{storm_map.notifications} notifications, map loaded in {time.monotonic() - started:.1f} s')
    return storm_map


@pytest.fixture
def storm_state(storm_plan):
    """No alert, incident, sender or queued job left from an earlier storm."""
    import django_rq
    from django.db import connection

    from users.models import ObjectPermission, User

    from business_application.models import Event, EventSource, Incident, IncidentEvent, IncidentTimelineEntry

    connection.close()
    IncidentTimelineEntry.objects.all().delete()
    IncidentEvent.objects.all().delete()
    Incident.objects.update(merged_into=None, root_cause_event=None)
    Incident.objects.all().delete()
    Event.objects.all().delete()
    EventSource.objects.all().delete()
    User.objects.filter(username__startswith='alertmanager').delete()
    ObjectPermission.objects.filter(name__startswith='alertmanager').delete()
    for name in ('high', 'default', 'low'):
        queue = django_rq.get_queue(name)
        queue.empty()
        for registry in (queue.failed_job_registry, queue.scheduled_job_registry):
            for job_id in registry.get_job_ids():
                try:
                    registry.remove(job_id, delete_job=True)
                except Exception:  # noqa: BLE001 - a job half gone with a restarted Redis
                    registry.remove(job_id)
    return storm_plan


@pytest.fixture(scope='session')
def cluster(storm_db, webhook, webhook_port):
    """NetBox and its workers on the test database, notifications to a local webhook the tests run."""
    from django.conf import settings

    product = Cluster(
        settings.DATABASES['default']['NAME'],
        web_workers=WEB_WORKERS,
        rq_workers=RQ_WORKERS,
        settings={
            'BUSINESS_APP_INCIDENT_NOTIFICATIONS_ENABLED': True,
            'BUSINESS_APP_NOTIFICATION_WEBHOOKS': [f'http://127.0.0.1:{webhook_port}/hook'],
        },
    )
    started = time.monotonic()
    product.start()
    _log('cluster', f'{product.server_kind} and {RQ_WORKERS} RQ workers answered in {time.monotonic() - started:.1f} s')
    yield product
    product.stop()
