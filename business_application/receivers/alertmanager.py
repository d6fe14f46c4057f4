"""Prometheus Alertmanager's webhook (``webhook_config``, payload version 4, ``send_resolved`` too).

One request is one notification of an alert group: ``alerts`` holds each alert with its own
``status`` (which wins over the group's), ``labels``, ``annotations``, ``startsAt``, ``endsAt``
(Go's zero time while firing) and ``fingerprint``. Grafana's webhook has the same shape plus a few
fields, so ``grafana.py`` reads it with ``read_group`` too.
"""

from __future__ import annotations

from typing import Any

from .common import (
    Draft,
    PayloadError,
    dedup_text,
    group_context,
    items,
    label_hash,
    message_of,
    read_labels,
    read_object,
    severity_of,
    source_name,
    status_of,
    timestamp,
)

__all__ = ('DEFAULT_SOURCE', 'SOURCE_LABEL', 'drafts', 'parse', 'read_group')

#: The event source of alerts that name none: Alertmanager forwards what Prometheus raised.
DEFAULT_SOURCE = 'prometheus'
#: A label that names an alert's event source (an alerting rule may set it).
SOURCE_LABEL = 'event_source'
#: Group fields kept beside each alert's raw payload.
GROUP_KEYS = (
    'receiver',
    'status',
    'groupKey',
    'groupLabels',
    'commonLabels',
    'commonAnnotations',
    'externalURL',
    'version',
    'truncatedAlerts',
)


def drafts(payload: Any, source: str | None = None, notes: list | None = None) -> list[Draft]:
    """Read an Alertmanager notification; ``source`` (the ``?source=`` of the URL) overrides the
    alerts' own event source."""
    payload = read_object(payload, '$')
    version = payload.get('version')
    if version is not None and str(version) != '4':
        hint = ' (Grafana sends version 1: post it to alerts/grafana/)' if 'orgId' in payload else ''
        raise PayloadError('version', f'this receiver reads Alertmanager webhook version 4, not {version!r}{hint}')
    return read_group(payload, source=source, default_source=DEFAULT_SOURCE, group_keys=GROUP_KEYS, notes=notes)


def parse(payload: Any, source: str | None = None, resolver=None, notes: list | None = None):
    """The alerts of an Alertmanager notification as ``IncomingAlert``s, mapped to NetBox objects."""
    from .mapping import to_incoming

    return to_incoming(drafts(payload, source, notes), resolver)


def read_group(
    payload: dict, *, source: str | None, default_source: str, group_keys: tuple[str, ...], notes: list | None = None
) -> list[Draft]:
    """The alerts of an Alertmanager-shaped notification (Alertmanager, Grafana)."""
    if 'alerts' not in payload:
        raise PayloadError('alerts', 'is missing: an alert notification carries its alerts in "alerts"')
    alerts = items(payload['alerts'], 'alerts')
    group_status = payload.get('status')
    default_status = None
    if group_status not in (None, ''):
        default_status = status_of(group_status, 'status')
    context = group_context(payload, group_keys)
    truncated = payload.get('truncatedAlerts')
    if notes is not None and isinstance(truncated, int) and not isinstance(truncated, bool) and truncated > 0:
        notes.append(f'the sender left out {truncated} alerts of this group (truncatedAlerts)')
    found = []
    for position, alert in enumerate(alerts):
        found.append(
            _alert(
                read_object(alert, f'alerts[{position}]'),
                f'alerts[{position}]',
                source=source,
                default_source=default_source,
                default_status=default_status,
                context=context,
            )
        )
    return found


def _alert(
    alert: dict, path: str, *, source: str | None, default_source: str, default_status: str | None, context: dict
) -> Draft:
    labels = read_labels(alert.get('labels'), f'{path}.labels')
    annotations = read_object(alert.get('annotations'), f'{path}.annotations', required=False)
    status = status_of(alert.get('status'), f'{path}.status', default=default_status)
    starts_at = timestamp(alert.get('startsAt'), f'{path}.startsAt')
    ends_at = timestamp(alert.get('endsAt'), f'{path}.endsAt')
    dedup_id = dedup_text(alert.get('fingerprint'), f'{path}.fingerprint')
    if not dedup_id:
        if not labels:
            raise PayloadError(path, 'has neither a fingerprint nor labels: nothing identifies the alert')
        dedup_id = label_hash(labels)
    if source is None:
        source = (
            source_name(labels[SOURCE_LABEL], f'{path}.labels.{SOURCE_LABEL}')
            if labels.get(SOURCE_LABEL)
            else default_source
        )
    raw = dict(alert)
    if context and '_group' not in raw:
        raw['_group'] = context
    name = labels.get('alertname', '')
    return Draft(
        source=source,
        dedup_id=dedup_id,
        status=status,
        message=message_of(labels, annotations, default=f'Alert {dedup_id}'),
        criticallity=severity_of(labels.get('severity')),
        raw=raw,
        labels=labels,
        fallback_label=f'alertname:{name}' if name else '',
        starts_at=starts_at,
        # A firing alert's endsAt is only the sender's guess of when it will time out.
        ends_at=ends_at if status == 'ok' else None,
    )
