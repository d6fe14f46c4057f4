"""Attack 10 on b967699: SnapshotWorker warms up (caches, map, live incidents' members) before it registers.

Real ``netbox rqworker --burst`` processes on the test database, with worker classes of
``tests/integration/attack10_workers.py`` that act between the warm-up and the first job.
"""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from business_application.models import EventSource, Incident, IncidentEvent

from .maps import build
from .test_workers import FARMS, MAP, down_alert, run_burst, sender_header

WORKERS = 'tests.integration.attack10_workers'


def live_incidents():
    """One live incident of two members per farm, decided in the request."""
    objects = build(MAP)
    source = EventSource.objects.create(name='prometheus')
    client, header = APIClient(), sender_header()
    for farm in range(FARMS):
        for server in range(2):
            payload = down_alert(objects, source, f'f{farm}-s{server}')
            response = client.post(reverse('plugins-api:business_application-api:event-list'), payload, **header)
            assert response.status_code == 201, response.content
    assert Incident.objects.count() == FARMS
    return objects


def run_worker(worker_class, monkeypatch, **env):
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    run_burst(f'{WORKERS}.{worker_class}', importable_tests=True)


@pytest.mark.django_db(transaction=True)
def test_a_worker_started_before_postgresql_still_gives_its_horses_the_caches(monkeypatch):
    """Found by attack 10: PostgreSQL does not answer during the warm-up (a worker started with, or before, the
    database), then does. The warm-up's failure was logged, but ``_warm_caches`` marked the caches warm all the
    same, so no later fork filled them again: every horse of the worker's life read the content types itself (and
    lost them), the very cost the warm-up exists to remove. The caches are now marked warm only when filled."""
    import django_rq

    queue = django_rq.get_queue('default')
    queue.empty()
    jobs = [queue.enqueue('tests.integration.horse_jobs.inherited_caches') for _ in range(2)]
    run_worker('PostgresDownAtStartWorker', monkeypatch)
    results = [job.latest_result().return_value for job in jobs]
    assert results == [{'urls_filled': True, 'content_type_queries': 0, 'url_opener_built': True}] * 2


@pytest.mark.django_db(transaction=True)
def test_a_worker_started_before_postgresql_decides_with_what_the_database_holds(monkeypatch):
    """Guard: the same start, then a job reads the live incidents as a decision would: every member, as held."""
    import django_rq

    live_incidents()
    queue = django_rq.get_queue('default')
    queue.empty()
    job = queue.enqueue(f'{WORKERS}.live_members')
    run_worker('PostgresDownAtStartWorker', monkeypatch)
    result = job.latest_result().return_value
    assert len(result['read']) == FARMS
    assert result['read'] == result['held']
    assert result['services'] == result['held_services']


@pytest.mark.django_db(transaction=True)
def test_members_changed_between_the_warm_up_and_the_first_job_are_read_again(monkeypatch):
    """Guard: the warm-up keeps the members of the 4 live incidents; before the first job another writer resolves
    those of one incident and removes a member of another. The first job's read must see the database's members,
    not the warm-up's."""
    import django_rq

    live_incidents()
    first, second = Incident.objects.order_by('pk')[:2]
    dropped = IncidentEvent.objects.filter(incident=second).order_by('pk').first().event_id
    queue = django_rq.get_queue('default')
    queue.empty()
    jobs = [queue.enqueue(f'{WORKERS}.live_members'), queue.enqueue('tests.integration.horse_jobs.kept_state')]
    run_worker('MembersChangeAfterWarmUpWorker', monkeypatch, ATTACK10_INCIDENT=first.pk, ATTACK10_DROP_EVENT=dropped)
    result = jobs[0].latest_result().return_value
    assert result['read'] == result['held']
    assert all(status == 'resolved' for _, status, _ in result['read'][first.pk])
    assert dropped not in [alert for alert, _, _ in result['read'][second.pk]]


@pytest.mark.django_db(transaction=True)
def test_a_map_changed_between_the_warm_up_and_the_first_job_is_followed(monkeypatch):
    """Guard: the warm-up loads the map and keeps the members' services on it; before the first job a member's
    device stops carrying its service. The first job's read must follow the map as it now is."""
    import django_rq

    live_incidents()
    queue = django_rq.get_queue('default')
    queue.empty()
    job = queue.enqueue(f'{WORKERS}.live_members')
    run_worker('MapChangesAfterWarmUpWorker', monkeypatch, ATTACK10_DEVICE='f0-s0')
    result = job.latest_result().return_value
    assert result['read'] == result['held']
    assert result['services'] == result['held_services']
    assert len({tuple(s) for s in result['services'].values()}) == FARMS
