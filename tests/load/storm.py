"""An alert storm through the real product, and the checks that it lost and duplicated nothing.

``plan(alerts)`` makes a map (pods of servers cabled to a switch, one big pod behind a core switch,
and servers on their own) and the Alertmanager notifications of a storm on it: every alert fires
and half the pods resolve afterwards. Alertmanager sends a group again whenever alerts join it,
and a pair of Alertmanagers sends every notification twice, so each alert arrives several times.

``Cluster`` runs the product as it runs in production, on 127.0.0.1 only: NetBox under gunicorn
(several processes) and ``netbox rqworker`` processes with asynchronous processing on, all on the
test database of this checkout. A worker that dies is started again, as a supervisor would.

``run_storm`` sends the notifications with concurrent senders that retry 5xx answers and broken
connections like Alertmanager, waits until every accepted alert is decided (running the periodic
sweep if the queue lost jobs), and returns a ``StormReport``: sent, accepted, stored, decided,
duplicates, lost, errors, throughput, alert-to-incident latency, and how the incidents compare
with a one-by-one replay of the same notifications in memory.

The parts live beside this module, by concern: ``generator`` (the map and the notifications),
``processes`` (the running product, the faults, the webhook), ``senders`` and ``checks``; this
module runs a storm with them and re-exports what the tests use.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import threading
import time
from pathlib import Path

from .checks import DecisionWatch, StormReport, check, percentile, wait_until_decided
from .generator import ALERTNAMES, POD_SIZE, RECEIVER_PATH, REPLICAS, SOURCE, WAVES, Delivery, Plan, plan, reshuffle
from .processes import (
    REPO,
    WORKER_CLASS,
    Cluster,
    Webhook,
    free_port,
    restart_postgresql,
    restart_redis,
)
from .senders import Senders

__all__ = (
    'ALERTNAMES',
    'POD_SIZE',
    'RECEIVER_PATH',
    'REPLICAS',
    'SOURCE',
    'WAVES',
    'WORKER_CLASS',
    'Cluster',
    'DecisionWatch',
    'Delivery',
    'Plan',
    'Senders',
    'StormReport',
    'Webhook',
    'check',
    'free_port',
    'percentile',
    'plan',
    'reshuffle',
    'restart_postgresql',
    'restart_redis',
    'run_storm',
    'wait_until_decided',
    'write_figures',
)


def run_storm(name, cluster, plan_, header, fault=None, fault_at=0.3, senders=8, timeout=None):
    """Send the plan's storm through ``cluster``; ``fault()`` runs once when ``fault_at`` of the
    firing deliveries have been answered. Returns the ``StormReport``. ``timeout`` bounds each wait
    for the decisions (by default 15 minutes, or 0.2 s per notification for large storms)."""
    timeout = timeout or max(900.0, 0.2 * plan_.notifications)
    from django.db import connection

    from business_application.config import check_incident_automation_health

    report = StormReport(
        name=name,
        server=cluster.server_kind,
        senders=senders,
        web_workers=cluster.web_workers,
        rq_workers=cluster.rq_workers,
        notifications=plan_.notifications,
    )
    sender = Senders(cluster.url, header, concurrency=senders)
    fired = threading.Event()
    fault_thread = []

    def during(progress):
        if fault is not None and progress >= fault_at and not fired.is_set():
            fired.set()
            thread = threading.Thread(target=fault)
            thread.start()
            fault_thread.append(thread)

    restarts_before = cluster.restarts
    started = time.monotonic()
    with DecisionWatch() as watch:
        sender.send(plan_.phases['firing'], during=during)
        _log(name, f'firing sent in {time.monotonic() - started:.1f} s: {dict(sender.answers)}')
        for thread in fault_thread:
            thread.join()
        connection.close()
        report.swept += wait_until_decided([key for key in sender.accepted_at if key[1] == 'firing'], timeout=timeout)
        _log(name, f'firing decided after {time.monotonic() - started:.1f} s')
        sender.send(plan_.phases['resolved'])
        _log(name, f'resolved sent after {time.monotonic() - started:.1f} s')
        report.swept += wait_until_decided(list(sender.accepted_at), timeout=timeout)
        elapsed = time.monotonic() - started
        time.sleep(watch.interval * 2)
    connection.close()
    report.seconds = round(elapsed, 2)
    report.deliveries = sender.deliveries
    report.attempts = sender.attempts
    report.retries = sender.retries
    report.sent = sender.sent_items
    report.accepted = sender.accepted_items
    report.errors = len(sender.errors)
    report.answers = {str(code): count for code, count in sorted(sender.answers.items(), key=str)}
    report.worker_restarts = cluster.restarts - restarts_before
    report.alerts_per_second = round(plan_.notifications / elapsed, 1) if elapsed else 0.0
    latencies = [
        watch.first_decided[key] - accepted
        for key, accepted in sender.accepted_at.items()
        if key in watch.first_decided
    ]
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    report.latency_p50_ms = None if p50 is None else round(p50 * 1000)
    report.latency_p99_ms = None if p99 is None else round(p99 * 1000)
    check(report, plan_, sender)
    report.health = check_incident_automation_health()
    if sender.errors:
        report.notes += sender.errors[:5]
    return report


def _log(name, message):
    print(f'[storm {name}] {message}', file=sys.stderr, flush=True)


def write_figures(report, path=None):
    """Append the report as one JSON line to the figures file that RELIABILITY.md is made from."""
    path = Path(path or os.environ.get('NBA_STORM_FIGURES', REPO / '.work' / 'storm-figures.jsonl'))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open('a') as out:
        out.write(json.dumps(dataclasses.asdict(report), default=str) + '\n')
    return path
