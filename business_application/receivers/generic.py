"""A simple JSON shape for any tool or script: one alert, or a batch of them.

    {"source": "zabbix", "dedup_id": "problem-4711", "status": "triggered", "severity": "high",
     "message": "Disk /var is 95% full", "labels": {"host": "db-01.example.com"},
     "object": "device:DB-01", "starts_at": "2026-12-04T10:00:00.123+01:00"}

A batch is ``{"alerts": [...], "source": "..."}`` (the top-level ``source`` applies to alerts that
give none) or a bare JSON array; it is stored in one transaction like an Alertmanager group.
``docs/receivers.md`` describes every field.
"""

from __future__ import annotations

from typing import Any

from ..correlation.scenario import STATUS_ALIASES
from .common import (
    OBJECT_KINDS,
    SEVERITIES,
    Draft,
    PayloadError,
    dedup_text,
    items,
    label_hash,
    optional_text,
    read_labels,
    read_object,
    source_name,
    timestamp,
)

__all__ = ('DEFAULT_SOURCE', 'drafts', 'parse')

DEFAULT_SOURCE = 'generic'
FIELDS = (
    'source',
    'dedup_id',
    'status',
    'severity',
    'message',
    'labels',
    'object',
    'starts_at',
    'ends_at',
    'event_time',
)


def drafts(payload: Any, source: str | None = None, notes: list | None = None) -> list[Draft]:
    if isinstance(payload, list):
        alerts, prefix, default = payload, '', None
    else:
        payload = read_object(payload, '$')
        if 'alerts' in payload:
            alerts, prefix = items(payload['alerts'], 'alerts'), 'alerts'
            default = source_name(payload['source'], 'source') if payload.get('source') is not None else None
        else:
            return [_alert(payload, '$', source, None)]
    found = []
    for position, alert in enumerate(alerts):
        path = f'{prefix}[{position}]'
        found.append(_alert(read_object(alert, path), path, source, default))
    return found


def parse(payload: Any, source: str | None = None, resolver=None, notes: list | None = None):
    """The alert(s) as ``IncomingAlert``s, mapped to NetBox objects."""
    from .mapping import to_incoming

    return to_incoming(drafts(payload, source, notes), resolver)


def _alert(alert: dict, path: str, source: str | None, default: str | None) -> Draft:
    def at(name):
        return name if path == '$' else f'{path}.{name}'

    labels = read_labels(alert.get('labels'), at('labels'))
    target = _object(alert.get('object'), at('object'))
    status_text = optional_text(alert.get('status'), at('status')).lower() or 'triggered'
    if status_text not in STATUS_ALIASES:
        raise PayloadError(at('status'), f'must be one of {", ".join(STATUS_ALIASES)}, not {status_text!r}')
    severity_text = optional_text(alert.get('severity'), at('severity')).lower() or 'warning'
    if severity_text not in SEVERITIES:
        raise PayloadError(
            at('severity'),
            f'must be critical, high, warning or info (or an alias such as error, '
            f'major, minor, page, disaster), not {severity_text!r}',
        )
    dedup_id = dedup_text(alert.get('dedup_id'), at('dedup_id'))
    if not dedup_id:
        if not labels and target is None:
            raise PayloadError(at('dedup_id'), 'is required (or labels or an object to derive it from)')
        dedup_id = label_hash(labels, *(str(part) for part in (target or ())))
    if source is None:
        given = alert.get('source')
        source = source_name(given, at('source')) if given is not None else (default or DEFAULT_SOURCE)
    message = optional_text(alert.get('message'), at('message'))
    status = STATUS_ALIASES[status_text]
    ends_at = timestamp(alert.get('ends_at'), at('ends_at'))
    name = labels.get('alertname', '')
    return Draft(
        source=source,
        dedup_id=dedup_id,
        status=status,
        criticallity=SEVERITIES[severity_text],
        message=message or name or f'Alert {dedup_id}',
        raw=dict(alert),
        labels=labels,
        target=target,
        fallback_label=f'alertname:{name}' if name else '',
        starts_at=timestamp(alert.get('starts_at'), at('starts_at')),
        ends_at=ends_at,
        event_time=timestamp(alert.get('event_time'), at('event_time')),
    )


def _object(value: Any, path: str) -> tuple[str, Any] | None:
    """``"device:WEB-01"``, ``{"kind": "device", "name": "WEB-01"}`` or ``{"type": "dcim.device", "id": 7}``."""
    if value is None or value == '':
        return None
    if isinstance(value, str):
        kind, sep, name = value.partition(':')
        if not sep or not name.strip():
            raise PayloadError(path, f'must look like "device:NAME" (kind, colon, name), not {value[:60]!r}')
        ref: Any = name.strip()
        kind_path = path
    else:
        value = read_object(value, path)
        kind = value.get('kind', value.get('type'))
        kind_path = f'{path}.kind'
        if not isinstance(kind, str):
            raise PayloadError(kind_path, 'is required: device, vm, cluster, service or app')
        if 'id' in value:
            ref = value['id']
            if isinstance(ref, bool) or not isinstance(ref, int) or not 1 <= ref < 2**63:
                raise PayloadError(f'{path}.id', 'must be a positive whole number')
        else:
            ref = optional_text(value.get('name'), f'{path}.name')
            if not ref:
                raise PayloadError(path, 'needs a "name" or an "id"')
    canonical = OBJECT_KINDS.get(kind.strip().lower())
    if canonical is None:
        raise PayloadError(
            kind_path,
            f'names no kind of object an alert can be about ({kind.strip()[:40]!r}); use '
            'device, vm, cluster, service or app',
        )
    return canonical, ref
