"""Storing notifications: one alert per (event source, dedup_id), repeats update it, stale ones never roll it back."""

import dataclasses
from datetime import datetime

from django.db import IntegrityError, transaction

from ..models import Event, EventSource
from . import clock

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
STATE_FIELDS = ('status', 'criticallity', 'message', 'raw', 'starts_at', 'ends_at', 'event_time')


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


def ingest(alerts, create_sources=False):
    """Store a batch of alerts (one receiver request) in ONE transaction: each becomes a new event or
    updates the stored alert with its identity, and is correlated by the post_save signal.

    Event sources are looked up by name; an unknown one is created only with ``create_sources``
    (the caller checks that the user may add event sources), else ``UnknownSourceError``.
    Returns ``[(event, created)]`` in the order given.
    """
    results = []
    with transaction.atomic():
        sources = {}
        for alert in alerts:
            if alert.source not in sources:
                source = EventSource.objects.filter(name=alert.source).first()
                if source is None:
                    if not create_sources:
                        raise UnknownSourceError(alert.source)
                    source, _ = EventSource.objects.get_or_create(name=alert.source)
                sources[alert.source] = source
        from .incident_service import lock_decisions

        lock_decisions(
            {
                'content_type_id': getattr(a.content_type, 'pk', None),
                'object_id': a.object_id,
                'unmapped_label': a.unmapped_label,
            }
            for a in alerts
        )
        for alert in alerts:
            results.append(_store(alert, sources[alert.source]))
    return results


class UnknownSourceError(LookupError):
    """An alert names an event source that does not exist (and may not be created by this caller)."""

    def __init__(self, name):
        super().__init__(f'no event source is named {name!r}')
        self.name = name


def _store(alert, source):
    arrival = clock.now()
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
    changes = repeat_changes(existing, fields)
    changes.update(
        content_type=alert.content_type, object_id=alert.object_id, unmapped_label=alert.unmapped_label[:300]
    )
    for name, value in changes.items():
        setattr(existing, name, value)
    existing.save()
    return existing, False
