"""Storing notifications: one alert per (event source, dedup_id), repeats update it, stale ones never roll it back."""

from . import clock

from ..models import Event

__all__ = ('STATE_FIELDS', 'event_time_of', 'find_event', 'repeat_changes')

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
