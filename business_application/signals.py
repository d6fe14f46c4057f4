"""Signal handlers: correlate every saved event, and tell the map snapshots when the map changes."""

import logging

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from dcim.models import Cable, CableTermination, Device, DeviceRole
from virtualization.models import Cluster, VirtualMachine

from .correlation.kinds import APPLICATION, CLUSTER, DEVICE, SERVICE, VM
from .models import BusinessApplication, Event, ServiceDependency, TechnicalService
from .queues import get_queue
from .services.graph_loader import record_change
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
        request = job_request()
        transaction.on_commit(lambda: _enqueue(batch, request))
        return
    if len(wanted) == 1:
        from .services.incident_service import process_event

        process_event(wanted[0].pk, settings=settings, instance=wanted[0])
        return
    from .services.batch import decide_events

    decide_events(
        [(event.pk, None) for event in wanted],
        settings=settings,
        instances=_by_pk(wanted),
        raise_errors=True,
    )


def _by_pk(events):
    grouped = {}
    for event in events:
        grouped.setdefault(event.pk, []).append(event)
    return grouped


@receiver(pre_delete, sender=Event, dispatch_uid='business_application_event_deleting')
def note_incidents_of_deleted_event(sender, instance, **kwargs):
    """Before an event goes (its memberships go with it): take its decision lock, so no correlation of the same
    part of the map runs meanwhile, and note the open incidents in which it was still alerting."""
    from .choices import IncidentStatusChoices
    from .models import IncidentEvent
    from .services.incident_service import lock_decisions

    incidents = set(
        IncidentEvent.objects.filter(
            event=instance, status='triggered', incident__status__in=IncidentStatusChoices.OPEN
        ).values_list('incident_id', flat=True)
    )
    if incidents:
        lock_decisions([instance])
    instance._ba_alerting_in = incidents


@receiver(post_delete, sender=Event, dispatch_uid='business_application_event_deleted')
def resolve_incidents_left_silent(sender, instance, **kwargs):
    """An open incident whose last alerting event was deleted resolves, as if that event had cleared."""
    incidents = getattr(instance, '_ba_alerting_in', None)
    if not incidents or not get_settings().auto_resolve_incidents:
        return
    from django.utils import timezone

    from .choices import IncidentStatusChoices
    from .models import Incident, IncidentTimelineEntry
    from .notifications import notify

    now = timezone.now()
    silent = (
        Incident.objects.select_for_update()
        .filter(pk__in=incidents, status__in=IncidentStatusChoices.OPEN)
        .exclude(memberships__status='triggered')
    )
    for incident in silent:
        incident.snapshot()
        incident.status = IncidentStatusChoices.RESOLVED
        incident.resolved_at = now
        incident.save(update_fields=['status', 'resolved_at', 'last_updated'])
        IncidentTimelineEntry.objects.create(
            incident=incident,
            time=now,
            kind='resolved',
            message=f'Resolved: its last alerting event (#{instance.pk}) was deleted',
        )
        notify(incident.pk, 'resolved')
        logger.info('incident %s resolved: its last alerting event %s was deleted', incident.pk, instance.pk)


#: Events of one batch decided by one RQ job: fewer jobs (each costs a fork and a map check).
JOB_BATCH = 50


#: Seconds RQ keeps a finished decision job.
RESULT_TTL = 60


def job_request():
    """What a decision job needs of the current request to run under NetBox's event tracking (``jobs.as_request``):
    NetBox's picklable copy, as it passes to a script job, without the caller's cookies; None outside a request."""
    from netbox.context import current_request
    from utilities.request import copy_safe_request

    request = current_request.get()
    if request is None:
        return None
    copy = copy_safe_request(request, include_files=False)
    copy.COOKIES = {}
    return copy


def _enqueue(batch, request=None):
    from .jobs import process_event_job, process_events_job

    # A result kept for a minute, not discarded at once: RQ 2.12's immediate delete (result_ttl=0) reads the job's
    # status first and fails a job that did its work when the hash is already gone. It is gone when the job ran
    # twice: redis-py retries an enqueue whose reply took over its 5 s socket timeout, so an overloaded web
    # process can push one job id twice, and the first run deletes what the second one finishes with.
    try:
        queue = get_queue('default')
        if len(batch) == 1:
            queue.enqueue(process_event_job, *batch[0], request=request, result_ttl=RESULT_TTL, failure_ttl=86400)
            return
        for start in range(0, len(batch), JOB_BATCH):
            queue.enqueue(
                process_events_job,
                batch[start : start + JOB_BATCH],
                request=request,
                result_ttl=RESULT_TTL,
                failure_ttl=86400,
            )
    except Exception:
        logger.exception('could not queue %s events; the periodic sweep will process them', len(batch))


# What each map model's change is to a snapshot: re-read that object (and its own relations), or
# the dependency, or the cable.
_OBJECT_KINDS = {
    TechnicalService: SERVICE,
    BusinessApplication: APPLICATION,
    Cluster: CLUSTER,
    Device: DEVICE,
    VirtualMachine: VM,
}
_RELATION_NAMES = dict(
    zip(
        MAP_RELATIONS,
        ('service_apps', 'service_devices', 'service_vms', 'service_clusters', 'app_devices', 'app_vms'),
        strict=True,
    )
)


def _map_changed(sender, instance, **kwargs):
    """A map object was saved or deleted: every snapshot re-reads it (this process at once, the others
    after commit)."""
    if kwargs.get('raw'):
        return
    if sender is ServiceDependency:
        record = ['dep', instance.pk]
    elif sender is Cable:
        record = ['cable', instance.pk]
    elif sender is CableTermination:
        if instance.cable_id is None:
            return
        record = ['cable', instance.cable_id]
    else:
        record = ['obj', _OBJECT_KINDS[sender], instance.pk]
    record_change([record])


def _membership_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """A membership (service to device, application to VM, ...) changed: the pairs it touched are re-read."""
    name = _RELATION_NAMES[sender]
    if action == 'pre_clear':
        # NetBox does not say which pairs a clear removes: read them while they still exist.
        left, right = _THROUGH_COLUMNS[name]
        column, other = (right, left) if reverse else (left, right)
        pk_set = set(sender.objects.filter(**{column: instance.pk}).values_list(other, flat=True))
    elif action not in ('post_add', 'post_remove'):
        return
    if not pk_set:
        return
    pairs = [[other, instance.pk] if reverse else [instance.pk, other] for other in sorted(pk_set)]
    record_change([['pairs', name, pairs]])


_THROUGH_COLUMNS = {
    'service_apps': ('technicalservice_id', 'businessapplication_id'),
    'service_devices': ('technicalservice_id', 'device_id'),
    'service_vms': ('technicalservice_id', 'virtualmachine_id'),
    'service_clusters': ('technicalservice_id', 'cluster_id'),
    'app_devices': ('businessapplication_id', 'device_id'),
    'app_vms': ('businessapplication_id', 'virtualmachine_id'),
}


@receiver(pre_save, sender=DeviceRole, dispatch_uid='business_application_role_saving')
def note_role_slug(sender, instance, raw=False, **kwargs):
    """Before a device role is saved: note its slug as stored, to tell whether the save changes it."""
    if raw or instance.pk is None:
        return
    instance._ba_stored_slug = DeviceRole.objects.filter(pk=instance.pk).values_list('slug', flat=True).first()


@receiver(post_save, sender=DeviceRole, dispatch_uid='business_application_role_saved')
def role_slug_changed(sender, instance, created=False, raw=False, **kwargs):
    """A role's slug decides whether its devices are network devices (``BUSINESS_APP_NETWORK_ROLES`` and
    ``_TIERS`` name slugs), so a changed slug has every snapshot re-read the devices of that role and their cables.
    No Device row changes, so nothing else would tell them."""
    if raw or created or getattr(instance, '_ba_stored_slug', instance.slug) == instance.slug:
        return
    record_change([['role', instance.pk]])


for model in MAP_MODELS:
    post_save.connect(_map_changed, sender=model, dispatch_uid=f'business_application_map_save_{model.__name__}')
    post_delete.connect(_map_changed, sender=model, dispatch_uid=f'business_application_map_delete_{model.__name__}')
for relation in MAP_RELATIONS:
    m2m_changed.connect(
        _membership_changed, sender=relation, dispatch_uid=f'business_application_map_m2m_{relation.__name__}'
    )
