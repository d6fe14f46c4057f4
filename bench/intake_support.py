"""Helpers of the intake bench: an Alertmanager group through the receiver in-process, with the
queries it costs counted, and the decisions of the stored events one by one.

The end-to-end figures (gunicorn, RQ workers, concurrent senders) come from ``tests/load/storm.py``.
"""

from __future__ import annotations

import collections
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.db import connection
from django.test.utils import CaptureQueriesContext

__all__ = ('FIGURES', 'alertmanager_group', 'count_queries', 'post_group', 'record')

TABLE_PREFIXES = ('business_application', 'core_', 'extras_', 'users_', 'dcim_', 'django_')
RECEIVER_PATH = '/api/plugins/business-application/alerts/alertmanager/'
#: Where the intake benches leave their figures (``python -m bench.report_intake`` prints them).
FIGURES = Path(__file__).resolve().parents[1] / '.work' / 'bench-intake.json'


def alertmanager_group(hosts, alertname='HostDown', status='firing', pod='bench'):
    """One Alertmanager (version 4) notification with an alert per host name."""
    started = datetime.now(UTC) - timedelta(minutes=1)
    alerts = []
    for host in hosts:
        labels = {'alertname': alertname, 'instance': f'{host}:9100', 'severity': 'critical', 'pod': pod}
        alerts.append(
            {
                'status': status,
                'labels': labels,
                'annotations': {'summary': f'{alertname} on {host}'},
                'startsAt': started.isoformat().replace('+00:00', 'Z'),
                'endsAt': '0001-01-01T00:00:00Z' if status == 'firing' else datetime.now(UTC).isoformat(),
                'fingerprint': f'{alertname}-{host}',
            }
        )
    return {
        'version': '4',
        'status': status,
        'receiver': 'netbox',
        'groupKey': f'{{}}:{{pod="{pod}"}}',
        'groupLabels': {'pod': pod},
        'commonLabels': {'pod': pod},
        'alerts': alerts,
    }


def count_queries(function, *args, **kwargs):
    """``(result, queries)``: what ``function`` returned and the SQL it ran, grouped by the statement's first word
    and table."""
    with CaptureQueriesContext(connection) as captured:
        result = function(*args, **kwargs)
    kinds = collections.Counter()
    for query in captured.captured_queries:
        sql = query['sql']
        words = sql.split()
        tables = (w.strip('"') for w in words if w.strip('"').startswith(TABLE_PREFIXES))
        table = next(tables, '').split('"')[0]
        kinds[f'{words[0]} {table}'] += 1
    return result, len(captured.captured_queries), kinds


def post_group(client, header, payload):
    response = client.post(RECEIVER_PATH, payload, format='json', **header)
    assert response.status_code == 200, response.content[:500]
    return response


def record(name, figures):
    """Keep one bench's figures under ``name`` in ``FIGURES``."""
    found = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    found[name] = figures
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(found, indent=2, default=str))
