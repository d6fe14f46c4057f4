"""Storing notifications: one alert per (event source, dedup_id), repeats update it, stale ones never roll it back."""

import dataclasses
import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q

from ..models import Event, EventSource
from ..models.snapshots import snapshot_of, tag_names
from . import clock
from .bulk import update_rows

logger = logging.getLogger('business_application.services.intake')

__all__ = (
    'STATE_FIELDS',
    'IncomingAlert',
    'UnknownSourceError',
    'event_time_of',
    'find_event',
    'ingest',
    'repeat_changes',
)

#: Fields that carry the alert's state; a notification older than the stored one leaves them alone.
#: What a notification says of its alert's state, which an older notification never rolls back: the object it names
#: included (a delayed notification sent before the alert's labels were corrected keeps it where it is now).
STATE_FIELDS = (
    'status',
    'criticallity',
    'message',
    'raw',
    'starts_at',
    'ends_at',
    'event_time',
    'content_type',
    'object_id',
    'unmapped_label',
)


def find_event(source, dedup_id, lock=False):
    """The stored alert with this identity, or None; events without a dedup_id are never repeats."""
    if not dedup_id:
        return None
    queryset = Event.objects.filter(event_source=source, dedup_id=dedup_id)
    if lock:
        queryset = queryset.select_for_update()
    return queryset.first()


def event_time_of(data, default=None):
    """When a notification happened by its own clock: event_time, else the end of a clear, the start of a firing
    alert, else last_seen_at, else its arrival."""
    if data.get('event_time'):
        return data['event_time']
    if data.get('status') == 'ok' and data.get('ends_at'):
        return data['ends_at']
    if data.get('status') == 'triggered' and data.get('starts_at') and not data.get('last_seen_at'):
        return data['starts_at']
    return data.get('last_seen_at') or default or clock.now()


def repeat_changes(existing, data):
    """The changes a repeated notification makes to its stored alert (dedup and out-of-order rules)."""
    changes = dict(data)
    changes.pop('event_source', None)
    changes.pop('dedup_id', None)
    incoming = event_time_of(data)
    stored = existing.event_time or existing.last_seen_at
    changes['last_seen_at'] = max(existing.last_seen_at, data.get('last_seen_at') or clock.now())
    if stored is not None and incoming < stored:
        for name in STATE_FIELDS:
            changes.pop(name, None)
    else:
        changes['event_time'] = incoming
    return changes


@dataclasses.dataclass
class IncomingAlert:
    """One alert as a receiver understood it, before it is stored."""

    source: str
    dedup_id: str
    message: str
    status: str
    criticallity: str
    raw: dict
    content_type: object = None
    object_id: int | None = None
    unmapped_label: str = ''
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    event_time: datetime | None = None


def decision_rows(alerts, sources):
    """What the decisions about these alerts lock (``incident_service.lock_decisions``): each alert as sent, and
    each stored alert with its identity as stored (the object it names, those its undecided states named, the
    one its occurrence started on), read with one query."""
    from .incident_service import LOCK_FIELDS

    rows = [
        {
            'content_type_id': getattr(alert.content_type, 'pk', None),
            'object_id': alert.object_id,
            'unmapped_label': alert.unmapped_label,
        }
        for alert in alerts
    ]
    stored = stored_identities(alerts, sources)
    if stored is not None:
        rows.extend(Event.objects.filter(stored).values(*LOCK_FIELDS))
    return rows


def stored_identities(alerts, sources):
    """The filter on the stored events with these alerts' identities (``sources`` maps their source names to
    ``EventSource`` rows; a source not there has no stored event); None when no alert can have one."""
    wanted = {}
    for alert in alerts:
        if alert.dedup_id and alert.source in sources:
            wanted.setdefault(sources[alert.source].pk, set()).add(alert.dedup_id[:255])
    query = Q()
    for source_id, dedup_ids in wanted.items():
        query |= Q(event_source_id=source_id, dedup_id__in=dedup_ids)
    return query if wanted else None


def ingest(alerts, create_sources=False, check_stored=None):
    """Store a batch of alerts (one receiver request) in ONE transaction: each becomes a new event or
    updates the stored alert with its identity, and is correlated once stored.

    Event sources are looked up by name; an unknown one is created only with ``create_sources``
    (the caller checks that the user may add event sources), else ``UnknownSourceError``.
    ``check_stored``, when given, is called with the ids of the stored events that the alerts repeat, read once their
    decision locks are taken (so that an alert another request was storing meanwhile is among them) and before
    anything changes: the receivers check there that the user may change them. It refuses by raising.
    Returns ``[(event, created)]`` in the order given.

    The batch is written with a few queries whatever its size (``_store_batch``); a batch that
    names one alert twice is stored alert by alert, so that each notification is applied in turn.
    """
    with transaction.atomic():
        names = {alert.source for alert in alerts}
        sources = {source.name: source for source in EventSource.objects.filter(name__in=names)}
        for name in sorted(names - set(sources)):
            if not create_sources:
                raise UnknownSourceError(name)
            sources[name], _ = EventSource.objects.get_or_create(name=name)
        from .incident_service import lock_decisions

        lock_decisions(decision_rows(alerts, sources))
        identities = [(alert.source, alert.dedup_id[:255]) for alert in alerts if alert.dedup_id]
        if len(identities) != len(set(identities)):
            return _store_each(alerts, sources, check_stored)
        return _store_batch(alerts, sources, check_stored)


def _store_each(alerts, sources, check_stored):
    """Store the alerts one by one (a batch naming one alert twice, or whose insert met a concurrent one), once
    ``check_stored`` has seen the stored ones (one query)."""
    stored = stored_identities(alerts, sources)
    if stored is not None and check_stored is not None:
        if found := sorted(Event.objects.filter(stored).values_list('pk', flat=True)):
            check_stored(found)
    return [_store(alert, sources[alert.source]) for alert in alerts]


def _fields(alert, arrival):
    fields = {
        'message': alert.message[:2000],
        'status': alert.status,
        'criticallity': alert.criticallity,
        'raw': alert.raw,
        'starts_at': alert.starts_at,
        'ends_at': alert.ends_at,
        'last_seen_at': arrival,
    }
    fields['event_time'] = alert.event_time or event_time_of({**fields, 'last_seen_at': None}, default=arrival)
    return fields


def _object_fields(alert):
    return {
        'content_type': alert.content_type,
        'object_id': alert.object_id,
        'unmapped_label': alert.unmapped_label[:300],
    }


def _store_batch(alerts, sources, check_stored=None):
    """Store alerts with distinct identities: one query locks the stored ones, one inserts the new
    ones, one updates the repeats; then they are indexed for search and correlated.

    A concurrent request that inserted one of the new alerts first (only possible for alerts whose
    decisions do not share a lock) makes the insert fail; the batch then falls back to storing
    alert by alert, which finds and updates the row that request made.
    """
    from ..signals import correlate_events

    arrival = clock.now()
    stored = stored_identities(alerts, sources)
    existing = {}
    if stored is not None:
        for event in Event.objects.select_for_update(of=('self',)).filter(stored):
            existing[(event.event_source_id, event.dedup_id)] = event
    if existing and check_stored is not None:
        check_stored(sorted(event.pk for event in existing.values()))
    before, tags = _snapshots(existing.values())
    results, new, changed, fields_changed = [], [], [], set()
    for alert in alerts:
        source = sources[alert.source]
        fields = _fields(alert, arrival)
        event = existing.get((source.pk, alert.dedup_id[:255])) if alert.dedup_id else None
        if event is None:
            event = Event(
                event_source=source,
                dedup_id=alert.dedup_id[:255],
                content_type=alert.content_type,
                object_id=alert.object_id,
                unmapped_label=alert.unmapped_label[:300],
                **fields,
            )
            event.note_state()
            new.append(event)
            results.append((event, True))
            continue
        changes = repeat_changes(event, {**fields, **_object_fields(alert)})
        for name, value in changes.items():
            setattr(event, name, value)
        event.event_source = source
        fields_changed.update('content_type' if name == 'content_type' else name for name in changes)
        if event.note_state():
            fields_changed.add('pending_states')
        changed.append(event)
        results.append((event, False))
    if new:
        try:
            with transaction.atomic():
                Event.objects.bulk_create(new)
        except IntegrityError:
            return _store_each(alerts, sources, check_stored)
    if changed:
        for event in changed:
            event.last_updated = arrival
        update_rows(Event, changed, sorted(fields_changed | {'last_updated'}))
    _index(new, changed)
    _log_changes(new, changed, before, tags)
    correlate_events([event for event, _ in results])
    _queue_events(new, changed)
    return results


def _exclude():
    from netbox.config import get_config

    return ['last_updated'] if get_config().CHANGELOG_SKIP_EMPTY_CHANGES else []


def _snapshots(events):
    """The stored alerts' state before the batch changes them, for the change log, and their tag names (read with
    one query; a delivery changes no tags, so they serve the snapshots after it too); nothing outside a request,
    where NetBox keeps no change log either."""
    from netbox.context import current_request

    events = list(events)
    if current_request.get() is None or not events:
        return {}, {}
    tags = tag_names(Event, [event.pk for event in events])
    exclude = _exclude()
    before = {
        event.pk: snapshot_of(event, resolve_tags=False, extra={'tags': tags[event.pk]}, exclude=exclude)
        for event in events
    }
    return before, tags


def _log_changes(created, changed, before, tags):
    """Write NetBox's change-log records for a batch, as its own views would for each object (one per event
    created or changed, the request's user and id), with one insert whatever the batch size.

    Like NetBox's ``to_objectchange``, it leaves each event's snapshots on it (``_prechange_snapshot``,
    ``_postchange_snapshot``), where NetBox's event queue reads them."""
    from django.contrib.contenttypes.models import ContentType

    from core.choices import ObjectChangeActionChoices
    from core.models import ObjectChange
    from netbox.context import current_request

    request = current_request.get()
    if request is None or not (created or changed):
        return
    user = request.user if getattr(request.user, 'is_authenticated', False) else None
    common = {
        'changed_object_type': ContentType.objects.get_for_model(Event),
        'user': user,
        'user_name': user.username if user is not None else '',
        'request_id': request.id,
    }
    exclude = _exclude()
    records = []
    for event in created:  # a new event has no tags yet: no query to read them
        event._postchange_snapshot = snapshot_of(event, resolve_tags=False, extra={'tags': []}, exclude=exclude)
        records.append(
            ObjectChange(
                changed_object_id=event.pk,
                object_repr=str(event)[:200],
                action=ObjectChangeActionChoices.ACTION_CREATE,
                postchange_data=event._postchange_snapshot,
                **common,
            )
        )
    for event in changed:  # their tags were read for the snapshots before
        event._prechange_snapshot = before.get(event.pk)
        event._postchange_snapshot = snapshot_of(
            event, resolve_tags=False, extra={'tags': tags[event.pk]}, exclude=exclude
        )
        record = ObjectChange(
            changed_object_id=event.pk,
            object_repr=str(event)[:200],
            action=ObjectChangeActionChoices.ACTION_UPDATE,
            prechange_data=event._prechange_snapshot,
            postchange_data=event._postchange_snapshot,
            **common,
        )
        if record.has_changes:
            records.append(record)
    ObjectChange.objects.bulk_create(records)


def _queue_events(created, changed):
    """Queue the batch's events for NetBox's event rules, as its own change signal does for each saved object: an
    object-created event for each new event, an object-updated one for each changed event, with the snapshots the
    change log took. NetBox processes the request's queue once the request is done; nothing outside a request,
    where NetBox queues no events either.

    NetBox serializes each queued object for the rules that apply to it; when a rule applies to events, what that
    reads (the alerting object, the incidents, the tags) is read here for the whole batch, after correlation,
    rather than event by event."""
    from django.db.models import prefetch_related_objects

    from core.events import OBJECT_CREATED, OBJECT_UPDATED
    from core.models import ObjectType
    from extras.events import enqueue_event
    from extras.models import EventRule
    from netbox.context import current_request, events_queue

    request = current_request.get()
    if request is None or not (created or changed):
        return
    queue = events_queue.get()
    for event in created:
        enqueue_event(queue, event, request, OBJECT_CREATED)
    for event in changed:
        enqueue_event(queue, event, request, OBJECT_UPDATED)
    events_queue.set(queue)

    event_types = [OBJECT_CREATED] * bool(created) + [OBJECT_UPDATED] * bool(changed)
    rules = EventRule.objects.filter(
        enabled=True, object_types=ObjectType.objects.get_for_model(Event), event_types__overlap=event_types
    )
    if rules.exists():
        prefetch_related_objects([*created, *changed], 'tags', 'obj', 'memberships')


def _index(created, changed):
    """Keep NetBox's global search in step with the stored alerts: one insert for the new ones, and for the
    changed ones whose entries are not what NetBox would write for them now (read with one query), one delete
    and their part of the insert. A repeat whose entries are right (most of a storm) costs no write; entries
    that went wrong (an earlier failure, a searchable custom field added since) are put right by the next
    repeat."""
    try:
        from django.contrib.contenttypes.models import ContentType

        from extras.models import CachedValue, CustomField
        from netbox.search.backends import search_backend

        from ..search import EventIndex

        stale = []
        if changed:
            object_type = ContentType.objects.get_for_model(Event)
            stored = {}
            rows = CachedValue.objects.filter(object_type=object_type, object_id__in=[event.pk for event in changed])
            for object_id, *entry in rows.values_list('object_id', 'field', 'type', 'weight', 'value'):
                stored.setdefault(object_id, set()).add(tuple(entry))
            fields = [cf for cf in CustomField.objects.get_for_model(Event) if cf.search_weight > 0]
            for event in changed:
                wanted = {
                    (value.name, value.type, value.weight, str(value.value))
                    for value in EventIndex.to_cache(event, custom_fields=fields)
                }
                if stored.get(event.pk, set()) != wanted:
                    stale.append(event)
            if stale:
                CachedValue.objects.filter(
                    object_type=object_type, object_id__in=[event.pk for event in stale]
                ).delete()
        search_backend.cache([*created, *stale], remove_existing=False)
    except Exception:  # search is a convenience; never fail intake over it
        logger.exception('could not index %s stored events for search', len(created) + len(changed))


class UnknownSourceError(LookupError):
    """An alert names an event source that does not exist (and may not be created by this caller)."""

    def __init__(self, name):
        super().__init__(f'no event source is named {name!r}')
        self.name = name


def _store(alert, source):
    arrival = clock.now()
    fields = _fields(alert, arrival)
    existing = find_event(source, alert.dedup_id, lock=True)
    if existing is None:
        try:
            with transaction.atomic():
                event = Event.objects.create(
                    event_source=source,
                    dedup_id=alert.dedup_id[:255],
                    content_type=alert.content_type,
                    object_id=alert.object_id,
                    unmapped_label=alert.unmapped_label[:300],
                    **fields,
                )
                return event, True
        except IntegrityError:
            existing = find_event(source, alert.dedup_id, lock=True)
    changes = repeat_changes(existing, {**fields, **_object_fields(alert)})
    for name, value in changes.items():
        setattr(existing, name, value)
    existing.save()
    return existing, False
