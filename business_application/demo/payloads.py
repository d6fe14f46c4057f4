"""The demo burst as the REST ``events/`` endpoint receives it: the guide's webhook payload.

Each notification carries what its monitoring system itself sent under ``raw``, shaped like the
samples in ``data/alerts/`` (Alertmanager, Grafana, Checkmk through its PagerDuty plugin), and is
stamped ``start + t``. Pure Python: no Django.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from .alerts import Alert
from .generate import DATA

__all__ = ('CONTENT_TYPES', 'SOURCES', 'raw_payload', 'to_payload')

#: The monitoring systems the burst comes from (created as event sources before it is posted).
SOURCES = {
    'checkmk': 'Checkmk: host and service checks, notified through its PagerDuty plugin',
    'prometheus': 'Prometheus Alertmanager (node, blackbox, redis and mongodb exporters)',
    'grafana': 'Grafana alerting on service-level objectives',
    'vcenter': 'vCenter alarms forwarded by a small script',
}
#: The REST ``content_type`` of each kind of object an alert may name.
CONTENT_TYPES = {
    'device': 'dcim.device',
    'vm': 'virtualization.virtualmachine',
    'cluster': 'virtualization.cluster',
    'service': 'business_application.technicalservice',
    'app': 'business_application.businessapplication',
}
ZERO_TIME = '0001-01-01T00:00:00Z'


@cache
def _template(name: str) -> dict[str, Any]:
    return json.loads((DATA / 'alerts' / name).read_text(encoding='utf-8'))


def _stamp(moment: datetime) -> str:
    return moment.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3] + 'Z'


def raw_payload(alert: Alert, at: datetime, started: datetime, address: str = '') -> dict[str, Any]:
    """What the monitoring system sent for this notification, in that tool's own shape."""
    name = alert.target.partition(':')[2]
    resolved = alert.status == 'ok'
    ends = _stamp(at) if resolved else ZERO_TIME
    if alert.source == 'prometheus':
        sample = (
            'alertmanager-icmp-hosts-firing.json'
            if alert.check == 'ICMP ping failed'
            else ('alertmanager-grouped-firing.json')
        )
        raw = copy.deepcopy(_template(sample)['alerts'][0])
        job = 'blackbox-icmp' if alert.check == 'ICMP ping failed' else 'node'
        instance = address if job == 'blackbox-icmp' else f'{address or name}:9100'
        raw.update(status='resolved' if resolved else 'firing', startsAt=_stamp(started), endsAt=ends)
        raw['labels'] = {
            'alertname': alert.check,
            'instance': instance,
            'job': job,
            'severity': alert.severity,
            'nodename': name,
        }
        raw['annotations'] = {'description': alert.message}
        if 'fingerprint' in raw:
            raw['fingerprint'] = alert.dedup_id
        return raw
    if alert.source == 'grafana':
        raw = copy.deepcopy(_template('grafana-unified-mixed.json')['alerts'][2])
        raw.update(
            status='resolved' if resolved else 'firing',
            startsAt=_stamp(started),
            endsAt=ends,
            fingerprint=alert.dedup_id,
            generatorURL='',
            silenceURL='',
            dashboardURL='',
            panelURL='',
            valueString='',
        )
        raw['labels'] = {'alertname': alert.check, 'service': name, 'severity': alert.severity}
        raw['annotations'] = {'summary': alert.message}
        return raw
    if alert.source == 'checkmk':
        raw = copy.deepcopy(_template('pagerduty-v2-checkmk-trigger.json'))
        state = 'OK' if resolved else ('WARNING' if alert.severity in ('warning', 'info') else 'CRITICAL')
        raw['_checkmk_notification_context'].update(
            HOSTNAME=name,
            HOSTADDRESS=address,
            SERVICEDESC=alert.check,
            SERVICESTATE=state,
            SERVICEOUTPUT=alert.message,
            NOTIFICATIONTYPE='RECOVERY' if resolved else 'PROBLEM',
            LONGDATETIME=at.strftime('%a %b %d %H:%M:%S UTC %Y'),
            OMD_SITE='noc',
            MONITORING_HOST='cmk-noc',
            HOSTURL='',
            SERVICEURL='',
            CONTACTNAME='NOC',
            PARAMETER_ROUTING_KEY='',
            SERVICEPERFDATA='',
        )
        raw['event'].update(
            dedup_key=alert.dedup_id, event_action='resolve' if resolved else 'trigger', routing_key='', client_url=''
        )
        raw['event']['payload'] = {
            'summary': f'{state}: {alert.check} on {name}',
            'source': address or name,
            'severity': {'high': 'error'}.get(alert.severity, alert.severity),
            'custom_details': {'host': name, 'host_address': address, 'info': alert.message},
        }
        return raw
    return {
        'alarm': alert.check,
        'entity': name,
        'status': 'green' if resolved else 'red',
        'time': _stamp(at),
        'key': alert.dedup_id,
        'message': alert.message,
    }


def to_payload(
    alert: Alert,
    ids: dict[str, int],
    start: datetime,
    *,
    started: datetime | None = None,
    addresses: dict[str, str] | None = None,
    numeric: dict[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """The REST body for ``events/``, with the guide's webhook keys.

    ``ids`` maps ``kind:name`` to NetBox object ids and ``start`` is when the burst begins;
    ``started`` is when the alert first fired (for the raw payload) and ``addresses`` gives hosts'
    IP addresses. With ``numeric`` (``{'content_types': {...}, 'sources': {...}}``) the vCenter
    forwarder sends the content type and the event source as numeric ids, as the guide's example
    does; everything else names them.
    """
    at = start + timedelta(seconds=alert.t)
    payload: dict[str, Any] = {
        'message': alert.message,
        'status': alert.status,
        'criticallity': alert.severity,
        'dedup_id': alert.dedup_id,
        'event_source': alert.source,
        'raw': raw_payload(alert, at, started or at, (addresses or {}).get(alert.target, '')),
        'last_seen_at': at.isoformat(),
    }
    if not alert.mapped:
        payload['unmapped_label'] = alert.target
        return payload
    content_type = CONTENT_TYPES[alert.target.partition(':')[0]]
    payload['content_type'] = content_type
    payload['object_id'] = ids[alert.target]
    if numeric and alert.source == 'vcenter':
        payload['content_type'] = numeric['content_types'][content_type]
        payload['event_source'] = numeric['sources'][alert.source]
    return payload
