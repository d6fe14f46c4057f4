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
    settings = get_settings()
    if not settings.auto_incidents_enabled:
        return
    source = instance.event_source.name if instance.event_source_id else None
    if source is not None and source in settings.exclude_event_sources:
        logger.debug('event %s from excluded source %s is stored, not correlated', instance.pk, source)
        return
    if settings.async_processing:
        # Decided by an RQ worker after commit, as of this arrival; a lost job is swept up later.
        arrival = instance.last_seen_at.isoformat() if instance.last_seen_at else None
        transaction.on_commit(lambda: _enqueue(instance.pk, arrival))
        return
    from .services.incident_service import process_event

    process_event(instance.pk, settings=settings, instance=instance)


def _enqueue(event_id, arrival):
    import django_rq

    from .jobs import process_event_job

    try:
        django_rq.get_queue('default').enqueue(process_event_job, event_id, arrival, result_ttl=0, failure_ttl=86400)
    except Exception:
        logger.exception('could not queue event %s; the periodic sweep will process it', event_id)


def _map_changed(**kwargs):
    # This process sees its own change at once (even inside the transaction); the others after commit.
    forget_map()
    transaction.on_commit(bump_map_version)


for model in MAP_MODELS:
    post_save.connect(_map_changed, sender=model, dispatch_uid=f'business_application_map_save_{model.__name__}')
    post_delete.connect(_map_changed, sender=model, dispatch_uid=f'business_application_map_delete_{model.__name__}')
for relation in MAP_RELATIONS:
    m2m_changed.connect(_map_changed, sender=relation, dispatch_uid=f'business_application_map_m2m_{relation.__name__}')
