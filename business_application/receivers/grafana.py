"""Grafana alerting's webhook contact point (unified alerting, payload version 1).

The shape is Alertmanager's (Grafana runs an Alertmanager inside) plus ``orgId``, ``title``,
``state``, ``message`` and, per alert, ``silenceURL``, ``dashboardURL``, ``panelURL``,
``values``/``valueString``. A notification may hold firing and resolved alerts under a firing
group status: each alert's own status counts.
"""

from __future__ import annotations

from typing import Any

from .alertmanager import read_group
from .common import Draft, PayloadError, read_object

__all__ = ('DEFAULT_SOURCE', 'drafts', 'parse')

DEFAULT_SOURCE = 'grafana'
#: Group fields kept beside each alert's raw payload; ``message`` (the rendered text of every
#: alert of the group) is not copied into each one.
GROUP_KEYS = (
    'receiver',
    'status',
    'orgId',
    'title',
    'state',
    'groupKey',
    'groupLabels',
    'commonLabels',
    'commonAnnotations',
    'externalURL',
    'version',
    'truncatedAlerts',
)


def drafts(payload: Any, source: str | None = None, notes: list | None = None) -> list[Draft]:
    payload = read_object(payload, '$')
    if 'alerts' not in payload and ('ruleName' in payload or 'evalMatches' in payload):
        raise PayloadError(
            'alerts',
            'is missing: this looks like legacy Grafana alerting, which this receiver does '
            'not read; use a unified alerting webhook contact point',
        )
    return read_group(payload, source=source, default_source=DEFAULT_SOURCE, group_keys=GROUP_KEYS, notes=notes)


def parse(payload: Any, source: str | None = None, resolver=None, notes: list | None = None):
    """The alerts of a Grafana notification as ``IncomingAlert``s, mapped to NetBox objects."""
    from .mapping import to_incoming

    return to_incoming(drafts(payload, source, notes), resolver)
