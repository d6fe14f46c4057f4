"""End-to-end intake through the Alertmanager receiver into PostgreSQL, decided by RQ workers.

- ``test_receiver_queries_per_alert``: one Alertmanager group of 20 alerts through the receiver in
  this process (asynchronous processing on), the SQL it costs per alert when new and when repeated,
  and the SQL one decision costs; the benchmark times the repeated group.
- ``test_sustained_intake``: the storm of ``tests/load/storm.py`` (gunicorn, RQ workers, eight
  senders, duplicate deliveries) as fast as it goes: alerts per second from the first delivery to the
  last decision, and alert-to-incident latency (target: at least 1,000 alerts/s).
- ``test_large_group_storm``: distinct new alerts in Alertmanager groups of up to 100 alerts (an alert name over
  many hosts, as ``group_by: [alertname]`` sends them in a storm), each group delivered twice (an HA pair) by
  four senders: distinct alerts per second from the first delivery to the last decision, every alert stored
  once and decided.
- ``test_latency_at_100_alerts_per_second``: new alerts paced at 100 per second (groups of ten, ten
  groups a second) and their alert-to-incident latency p50 / p99 (target: p99 at most 1 s).

The two storms run twice, side by side: with ``SnapshotWorker`` (the plugin's jobs run in the worker
process) and with RQ's default ``Worker`` (a forked process per job, what a plain ``netbox rqworker``
runs). ``QUICK=1`` makes the storms smaller. Figures go to ``.work/bench-intake.json`` as well as
pytest-benchmark's ``extra_info``; ``python -m bench.report_intake`` prints them with their ratios, and
``bench/RESULTS.md`` ("Whole product") records a run.
"""

import os
import threading
import time

import pytest
from django.db import transaction
from django.test import override_settings
from rest_framework.test import APIClient

from bench.intake_support import alertmanager_group, count_queries, post_group, record
from business_application.demo.load import load_demo_map
from business_application.models import Event
from business_application.services.batch import decide_events
from business_application.services.incident_service import process_event
from tests.conftest import django_db_setup  # noqa: F401 - the migrated test database, as the tests use it
from tests.load import storm
from tests.senders import sender_authorization

QUICK = os.environ.get('QUICK', '') not in ('', '0')
os.environ.setdefault('NBA_STORM_ALERTS', '300' if QUICK else '2000')

# The running product and the session's storm map, as the storm tests have them (imported after the
# size is set). The receiver test below runs first: its database flush must come before the servers
# start, as they cache content type ids.
from tests.load.conftest import (  # noqa: E402, F401, I001
    cluster,
    storm_db,
    storm_plan,
    storm_state,
    webhook,
    webhook_port,
)


@pytest.mark.django_db(transaction=True)
def test_receiver_queries_per_alert(benchmark):
    plan = storm.plan(120, seed=11)
    load_demo_map(plan.demo_map(11))
    hosts = [device['name'] for device in plan.devices if device['role'] == 'server'][:20]
    header = {'HTTP_AUTHORIZATION': sender_authorization('alertmanager')}
    client = APIClient()
    payload = alertmanager_group(hosts)
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
        _, new_queries, new_kinds = count_queries(post_group, client, header, payload)
        _, repeat_queries, _ = count_queries(post_group, client, header, payload)
        benchmark.pedantic(post_group, args=(client, header, payload), rounds=5 if QUICK else 20, iterations=1)
    ids = list(Event.objects.order_by('pk').values_list('pk', flat=True))
    with transaction.atomic():  # one at a time (process_event), rolled back, then the same events as one batch
        decisions = [count_queries(process_event, pk)[1] for pk in ids]
        transaction.set_rollback(True)
    _, batch_queries, _ = count_queries(decide_events, [(pk, None) for pk in ids])
    figures = {
        'alerts_per_group': len(hosts),
        'queries_per_group_new': new_queries,
        'queries_per_group_repeat': repeat_queries,
        'queries_per_alert_new': round(new_queries / len(hosts), 2),
        'queries_per_alert_repeat': round(repeat_queries / len(hosts), 2),
        'queries_per_decision_first': decisions[0],
        'queries_per_decision_median': sorted(decisions)[len(decisions) // 2],
        'queries_per_decision_max': max(decisions),
        'decisions_per_batch': len(ids),
        'queries_per_batch': batch_queries,
        'queries_per_decision_in_batch': round(batch_queries / len(ids), 2),
        'group_seconds_median': round(benchmark.stats.stats.median, 4),
    }
    benchmark.extra_info.update(figures)
    record('receiver_queries', figures)


#: The worker classes the storms run with, side by side: the plugin's, and RQ's default (a plain ``netbox rqworker``).
WORKER_CLASSES = {'SnapshotWorker': 'business_application.workers.SnapshotWorker', 'rq-Worker': 'rq'}


@pytest.fixture(params=list(WORKER_CLASSES))
def workers(request, cluster):  # noqa: F811 - fixture imported above
    cluster.use_worker_class(WORKER_CLASSES[request.param])
    return request.param


def test_sustained_intake(benchmark, cluster, webhook, storm_state, workers):  # noqa: F811 - fixtures imported above
    plan = storm_state
    header = {'Authorization': sender_authorization('alertmanager')}

    def run():
        return storm.run_storm('bench sustained', cluster, plan, header)

    report = benchmark.pedantic(run, rounds=1, iterations=1)
    figures = {
        key: getattr(report, key)
        for key in (
            'notifications',
            'deliveries',
            'sent',
            'accepted_alerts',
            'decided',
            'lost',
            'seconds',
            'alerts_per_second',
            'latency_p50_ms',
            'latency_p99_ms',
            'matches_replay',
        )
    }
    figures['alert_items_per_second'] = round(report.sent / report.seconds, 1) if report.seconds else 0
    benchmark.extra_info.update(figures)
    record(f'sustained/{workers}', figures)
    assert report.lost == 0, report.problems()
    assert report.matches_replay, report.problems()


#: Alerts per Alertmanager group in ``test_large_group_storm``.
LARGE_GROUP = 100


def large_group_deliveries(hosts, alertnames):
    """Every (alert name, host) alert once, in groups of up to ``LARGE_GROUP`` hosts of one alert name, each group
    delivered ``storm.REPLICAS`` times; shuffled with a fixed seed."""
    import random

    deliveries = []
    for number in range(alertnames):
        alertname = f'Storm{number}'
        for start in range(0, len(hosts), LARGE_GROUP):
            pod = f'large-{number}-{start // LARGE_GROUP}'
            payload = alertmanager_group(hosts[start : start + LARGE_GROUP], alertname=alertname, pod=pod)
            identities = [alert['fingerprint'] for alert in payload['alerts']]
            deliveries += [storm.Delivery('firing', payload, identities) for _ in range(storm.REPLICAS)]
    random.Random(5).shuffle(deliveries)
    return deliveries


def test_large_group_storm(benchmark, cluster, webhook, storm_state, workers):  # noqa: F811 - fixtures imported above
    hosts = [device['name'] for device in storm_state.devices if device['role'] == 'server']
    alertnames = max(1, (2000 if QUICK else 10000) // len(hosts))
    deliveries = large_group_deliveries(hosts, alertnames)
    alerts = {identity for delivery in deliveries for identity in delivery.identities}
    header = {'Authorization': sender_authorization('alertmanager-large')}
    senders = storm.Senders(cluster.url, header, concurrency=4)

    def run():
        with storm.DecisionWatch() as watch:
            start = time.monotonic()
            senders.send(deliveries)
            sent = time.monotonic() - start
            storm.wait_until_decided(list(senders.accepted_at), timeout=900)
            elapsed = time.monotonic() - start
            time.sleep(watch.interval * 2)
        latencies = [watch.first_decided[key] - accepted for key, accepted in senders.accepted_at.items()]
        return sent, elapsed, latencies

    sent, elapsed, latencies = benchmark.pedantic(run, rounds=1, iterations=1)
    stored = Event.objects.filter(dedup_id__in=alerts).values_list('dedup_id', flat=True)
    undecided = Event.objects.filter(dedup_id__in=alerts).exclude(processed_status='triggered').count()
    figures = {
        'alerts': len(alerts),
        'alerts_per_group': LARGE_GROUP,
        'deliveries': len(deliveries),
        'alert_items': senders.sent_items,
        'sent_seconds': round(sent, 1),
        'seconds': round(elapsed, 1),
        'alerts_per_second': round(len(alerts) / elapsed, 1),
        'alert_items_per_second': round(senders.sent_items / elapsed, 1),
        'latency_p50_ms': round(storm.percentile(latencies, 0.5) * 1000),
        'latency_p99_ms': round(storm.percentile(latencies, 0.99) * 1000),
    }
    benchmark.extra_info.update(figures)
    record(f'large_groups/{workers}', figures)
    assert len(stored) == len(set(stored)) == len(alerts), 'every alert stored once'
    assert undecided == 0
    assert len(latencies) == len(senders.accepted_at) == len(alerts)


def test_latency_at_100_alerts_per_second(benchmark, cluster, webhook, storm_state, workers):  # noqa: F811
    seconds = 5 if QUICK else 20
    hosts = [device['name'] for device in storm_state.devices if device['role'] == 'server']
    header = {'Authorization': sender_authorization('alertmanager-paced')}
    senders = storm.Senders(cluster.url, header, concurrency=4)
    groups = []
    for second in range(seconds):
        for tick in range(10):
            names = [hosts[(second * 100 + tick * 10 + i) % len(hosts)] for i in range(10)]
            payload = alertmanager_group(names, alertname=f'Paced{second}x{tick}', pod=f'paced-{second}-{tick}')
            groups.append(storm.Delivery('firing', payload, [a['fingerprint'] for a in payload['alerts']]))

    def run():
        watch = storm.DecisionWatch(interval=0.1)
        with watch:
            start = time.monotonic()
            threads = []
            for number, delivery in enumerate(groups):
                delay = start + number / 10 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                thread = threading.Thread(target=senders._post, args=(_session(), delivery))
                thread.start()
                threads.append(thread)
            for thread in threads:
                thread.join()
            storm.wait_until_decided(list(senders.accepted_at), timeout=600)
            time.sleep(0.3)
        latencies = [
            watch.first_decided[(fingerprint, 'firing')] - accepted
            for (fingerprint, _), accepted in senders.accepted_at.items()
            if (fingerprint, 'firing') in watch.first_decided
        ]
        return latencies, time.monotonic() - start

    latencies, elapsed = benchmark.pedantic(run, rounds=1, iterations=1)
    figures = {
        'offered_alerts_per_second': 100,
        'alerts': len(senders.accepted_at),
        'seconds': round(elapsed, 1),
        'latency_p50_ms': round(storm.percentile(latencies, 0.5) * 1000),
        'latency_p99_ms': round(storm.percentile(latencies, 0.99) * 1000),
    }
    benchmark.extra_info.update(figures)
    record(f'paced_100/{workers}', figures)
    assert len(latencies) == len(senders.accepted_at)


def _session():
    import requests

    return requests.Session()
