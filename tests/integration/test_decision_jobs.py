"""Decision jobs on the real Redis and RQ: a job that did its work is never marked failed.

RQ 2.12 deletes a finished job at once when it was enqueued with ``result_ttl=0``, and that delete
first reads the job's status from Redis (``Job._remove_from_registries``): if the job's hash is
already gone, ``get_status`` raises ``InvalidJobOperation`` inside the worker's success handler,
and the worker moves a job that decided its events to the FailedJobRegistry. The alert storms of
RELIABILITY.md reported exactly that (``decisions: 3 failed ... InvalidJobOperation: Failed to
retrieve status for job``). The hash was gone because the job ran twice: redis-py 8 retries a
transaction whose reply took longer than its 5 s socket timeout, so an overloaded web process
pushed the same job id twice, and the first run's delete left the second without a hash. Here
the hash disappears while the job runs (an ``Incident`` save inside the job deletes it), and the
job must still end finished, its event decided.
"""

import django_rq
import pytest
from django.contrib.contenttypes.models import ContentType
from django.db.models.signals import post_save
from django.test import override_settings
from rq import SimpleWorker, get_current_job

from dcim.models import Device

from business_application.models import Event, EventSource, Incident

from .maps import DATABASE_OUTAGE, build


def empty(queue):
    queue.empty()
    for registry in (queue.failed_job_registry, queue.finished_job_registry):
        for job_id in registry.get_job_ids():
            registry.remove(job_id)


@pytest.mark.django_db(transaction=True)
def test_a_decision_job_whose_hash_vanishes_while_it_runs_ends_finished():
    queue = django_rq.get_queue('default')
    empty(queue)
    objects = build(DATABASE_OUTAGE)
    source = EventSource.objects.create(name='prometheus')
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
        event = Event.objects.create(
            message='DB-PROD-01 down',
            status='triggered',
            criticallity='critical',
            dedup_id='db-down',
            event_source=source,
            content_type=ContentType.objects.get_for_model(Device),
            object_id=objects['device:DB-PROD-01'].pk,
        )
    [job_id] = [job.id for job in queue.jobs if job.func_name.startswith('business_application.jobs.process_event')]
    assert Incident.objects.count() == 0, 'the decision waits for a worker'

    vanished = []

    def lose_the_job_hash(sender, instance, **kwargs):
        job = get_current_job()
        if job is not None and job.connection.delete(job.key):
            vanished.append(job.id)

    post_save.connect(lose_the_job_hash, sender=Incident, dispatch_uid='test_lose_the_job_hash')
    try:
        SimpleWorker([queue], connection=queue.connection).work(burst=True)
    finally:
        post_save.disconnect(sender=Incident, dispatch_uid='test_lose_the_job_hash')

    assert vanished == [job_id], 'the fault was injected into the decision job'
    event.refresh_from_db()
    assert event.processed_status == event.status
    assert Incident.objects.get().memberships.get().event_id == event.pk
    assert queue.failed_job_registry.get_job_ids() == []
    assert queue.fetch_job(job_id).get_status() == 'finished'
