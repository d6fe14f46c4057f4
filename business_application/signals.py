"""Signal handlers: correlate every saved event, and tell the map snapshots when the map changes."""

import logging

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from dcim.models import Cable, CableTermination, Device
from virtualization.models import Cluster, VirtualMachine

from .models import BusinessApplication, Event, ServiceDependency, TechnicalService
from .services.graph_loader import bump_map_version, forget_map
from .settings import get_settings

logger = logging.getLogger('business_application.signals')

MAP_MODELS = (
    TechnicalService,
    ServiceDependency,
    BusinessApplication,
    Device,
    VirtualMachine,
    Cluster,
    Cable,
    CableTermination,
)
MAP_RELATIONS = (
    TechnicalService.business_apps.through,
    TechnicalService.devices.through,
    TechnicalService.vms.through,
    TechnicalService.clusters.through,
    BusinessApplication.devices.through,
    BusinessApplication.virtual_machines.through,
)


@receiver(post_save, sender=Event, dispatch_uid='business_application_correlate_event')
def correlate_saved_event(sender, instance, raw=False, **kwargs):
    """Every save of an event (REST, receivers, the ORM) is correlated once, by what changed."""
    if raw:
        return
    correlate_events([instance])


def correlate_events(events):
    """Correlate stored events: at once, in this transaction, or (with asynchronous processing) by an
    RQ worker after commit, as of each one's arrival. The receivers call this for a batch they
    wrote with bulk queries, which send no post_save signal."""
    settings = get_settings()
    if not settings.auto_incidents_enabled:
        return
    wanted = []
    for event in events:
        source = event.event_source.name if event.event_source_id else None
        if source is not None and source in settings.exclude_event_sources:
            logger.debug('event %s from excluded source %s is stored, not correlated', event.pk, source)
            continue
        wanted.append(event)
    if not wanted:
        return
    if settings.async_processing:
        # Decided by an RQ worker after commit; a lost job is swept up later.
        batch = [(event.pk, event.last_seen_at.isoformat() if event.last_seen_at else None) for event in wanted]
        transaction.on_commit(lambda: _enqueue(batch))
        return
    from .services.incident_service import process_event

    for event in wanted:
        process_event(event.pk, settings=settings, instance=event)


#: Events of one batch decided by one RQ job: fewer jobs (each costs a fork and a map check).
JOB_BATCH = 50


def _enqueue(batch):
    import django_rq

    from .jobs import process_event_job, process_events_job

    try:
        queue = django_rq.get_queue('default')
        if len(batch) == 1:
            queue.enqueue(process_event_job, *batch[0], result_ttl=0, failure_ttl=86400)
            return
        for start in range(0, len(batch), JOB_BATCH):
            queue.enqueue(process_events_job, batch[start : start + JOB_BATCH], result_ttl=0, failure_ttl=86400)
    except Exception:
        logger.exception('could not queue %s events; the periodic sweep will process them', len(batch))


def _map_changed(**kwargs):
    # This process sees its own change at once (even inside the transaction); the others after commit.
    forget_map()
    transaction.on_commit(bump_map_version)


for model in MAP_MODELS:
    post_save.connect(_map_changed, sender=model, dispatch_uid=f'business_application_map_save_{model.__name__}')
    post_delete.connect(_map_changed, sender=model, dispatch_uid=f'business_application_map_delete_{model.__name__}')
for relation in MAP_RELATIONS:
    m2m_changed.connect(_map_changed, sender=relation, dispatch_uid=f'business_application_map_m2m_{relation.__name__}')
