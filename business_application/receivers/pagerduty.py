"""PagerDuty's Events API v2, as monitoring tools send it to PagerDuty (Checkmk, Zabbix, Icinga...).

One request is one event: ``event_action`` ``trigger``, ``acknowledge`` or ``resolve`` for the
alert named by ``dedup_key``; a trigger carries ``payload`` (``summary``, ``source`` - the
affected host -, ``severity`` critical/error/warning/info, ``timestamp``, ``component``,
``group``, ``class``, ``custom_details``) and the sending tool as ``client``. A body that wraps
the event as ``{"event": {...}, ...}`` beside other context (Checkmk's notification context) is
read the same way, and kept whole.

- **trigger** stores or repeats the alert (``triggered``);
- **resolve** clears it (``ok``); without a payload the stored alert's message, severity and
  object are kept; a resolve for an unknown alert is stored and opens nothing;
- **acknowledge** is not a state change here: it refreshes the stored alert (last seen, raw
  payload) and is ignored, with a note, for an alert NetBox has not stored.
"""

from __future__ import annotations

from typing import Any

from .common import (
    Draft,
    PayloadError,
    dedup_text,
    label_hash,
    optional_text,
    read_object,
    severity_of,
    source_name,
    timestamp,
)

__all__ = ('ACTIONS', 'DEFAULT_SOURCE', 'drafts', 'parse')

#: The event source when neither the URL nor the event's ``client`` names one.
DEFAULT_SOURCE = 'pagerduty'
ACTIONS = ('trigger', 'acknowledge', 'resolve')


def drafts(payload: Any, source: str | None = None, notes: list | None = None, stored=None) -> list[Draft]:
    """Read one Events API v2 event. ``stored(source, dedup_id)`` returns the stored alert (or None),
    for acknowledge and resolve events that carry no payload of their own."""
    payload = read_object(payload, '$')
    if 'event_action' not in payload and isinstance(payload.get('event'), dict):
        event, prefix = payload['event'], 'event.'
    else:
        event, prefix = payload, ''
    action = optional_text(event.get('event_action'), f'{prefix}event_action').lower()
    if action not in ACTIONS:
        shown = f'{event.get("event_action")!r}' if action else 'missing'
        raise PayloadError(f'{prefix}event_action', f'must be trigger, acknowledge or resolve, not {shown}')
    details = read_object(event.get('payload'), f'{prefix}payload', required=action == 'trigger')
    summary = optional_text(details.get('summary'), f'{prefix}payload.summary')
    host = optional_text(details.get('source'), f'{prefix}payload.source')
    if action == 'trigger':
        if not summary:
            raise PayloadError(f'{prefix}payload.summary', 'is required to trigger an alert')
    severity_text = optional_text(details.get('severity'), f'{prefix}payload.severity')
    moment = timestamp(details.get('timestamp'), f'{prefix}payload.timestamp')
    labels = _labels(details, host, prefix)
    dedup_id = dedup_text(event.get('dedup_key'), f'{prefix}dedup_key')
    if not dedup_id:
        if action != 'trigger':
            raise PayloadError(f'{prefix}dedup_key', f'is required to {action} an alert')
        routing = optional_text(event.get('routing_key'), f'{prefix}routing_key')
        dedup_id = label_hash(
            {k: v for k, v in labels.items() if k in ('instance', 'component', 'group', 'class')}, summary, routing
        )
    client = optional_text(event.get('client'), f'{prefix}client')
    if source is None:
        source = source_name(client, f'{prefix}client') if client else DEFAULT_SOURCE
    known = stored(source, dedup_id) if stored is not None and action != 'trigger' else None
    if action == 'acknowledge' and known is None:
        if notes is not None:
            notes.append(
                f'acknowledge for dedup_key {dedup_id!r} ignored: NetBox has stored no such alert from {source!r}'
            )
        return []
    draft = Draft(
        source=source,
        dedup_id=dedup_id,
        raw=dict(payload),
        labels=labels,
        status='triggered' if action == 'trigger' else 'ok',
        message=summary,
        criticallity=severity_of(severity_text),
        starts_at=moment if action == 'trigger' else None,
        ends_at=moment if action == 'resolve' else None,
    )
    if known is not None:
        if action == 'acknowledge':
            draft.status = known.status
            draft.starts_at, draft.ends_at = known.starts_at, known.ends_at
        draft.message = summary or known.message
        if not severity_text:
            draft.criticallity = known.criticallity
        if not details:
            draft.preset = (known.content_type, known.object_id, known.unmapped_label)
    if not draft.message:
        draft.message = f'{action.capitalize()} of {dedup_id}'
    return [draft]


def parse(payload: Any, source: str | None = None, resolver=None, notes: list | None = None, stored=None):
    """The event as ``IncomingAlert``s (none for an acknowledge of an unknown alert)."""
    from .mapping import to_incoming

    return to_incoming(drafts(payload, source, notes, stored if stored is not None else _stored), resolver)


def _labels(details: dict, host: str, prefix: str) -> dict[str, str]:
    """What the mapper reads: ``custom_details``' scalar entries, then the affected host
    (``payload.source``) as ``instance`` and ``component``, ``group``, ``class`` as themselves."""
    labels = {}
    custom = details.get('custom_details')
    if isinstance(custom, dict):
        for key, value in custom.items():
            if isinstance(value, str):
                labels[key] = value
            elif isinstance(value, int | float) and not isinstance(value, bool):
                labels[key] = str(value)
    if host:
        labels.setdefault('instance', host)
    for key in ('component', 'group', 'class'):
        value = optional_text(details.get(key), f'{prefix}payload.{key}')
        if value:
            labels.setdefault(key, value)
    return labels


def _stored(source: str, dedup_id: str):
    from ..models import Event

    return Event.objects.filter(event_source__name=source, dedup_id=dedup_id).select_related('content_type').first()
