"""Alert storms through the Alertmanager receiver, gunicorn and RQ workers, with and without faults.

Each test starts from no alerts on the session's map, sends the storm of ``storm.plan`` (its
deliveries in an order of its own) with eight concurrent senders that
retry like Alertmanager, waits until every accepted alert is decided, and checks: every accepted
alert stored once and decided once, nothing lost, no duplicate incident, and the same incidents
(member sets and status) as a one-by-one replay of the same notifications in memory. The faults
are a worker killed with SIGKILL, PostgreSQL restarted, Redis restarted and a webhook that hangs
or answers 500; the health check must report what happened. Figures go to ``NBA_STORM_FIGURES``.
"""

import time

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from users.constants import TOKEN_PREFIX
from users.models import ObjectPermission, Token, User

from business_application.config import check_incident_automation_health

from . import storm


def sender_header():
    """An Alertmanager's token: it may add and change events (and add its event source)."""
    user = User.objects.create_user(username='alertmanager')
    permission = ObjectPermission.objects.create(name='alertmanager', actions=['view', 'add', 'change'])
    permission.object_types.add(
        ContentType.objects.get_by_natural_key('business_application', 'event'),
        ContentType.objects.get_by_natural_key('business_application', 'eventsource'),
    )
    permission.users.add(user)
    token = Token.objects.create(user=user, write_enabled=True)
    return {'Authorization': f'Bearer {TOKEN_PREFIX}{token.key}.{token.token}'}


def prepare(storm_state, seed):
    """The session's storm with the deliveries in another order, and a sender's token."""
    return storm.reshuffle(storm_state, seed), sender_header()


def finish(report, plan, record=True):
    if record:
        storm.write_figures(report)
    problems = report.problems()
    assert report.accepted_alerts == report.stored == report.decided == len(plan.alerts), problems
    assert not problems, problems


def test_storm_with_duplicates_and_retries(cluster, webhook, storm_state):
    webhook.behaviour = 'ok'
    plan, header = prepare(storm_state, seed=1)
    report = storm.run_storm('storm', cluster, plan, header)
    finish(report, plan)


def test_rq_worker_killed_mid_storm(cluster, webhook, storm_state):
    webhook.behaviour = 'ok'
    plan, header = prepare(storm_state, seed=2)
    killed = []

    def fault():
        killed.append(cluster.kill_worker(0))

    report = storm.run_storm('worker SIGKILL', cluster, plan, header, fault=fault)
    report.fault = f'RQ worker {killed} killed with SIGKILL at 30% of the firing deliveries, then restarted'
    finish(report, plan)
    assert report.worker_restarts >= 1


def test_postgresql_restarted_mid_storm(cluster, webhook, storm_state):
    webhook.behaviour = 'ok'
    plan, header = prepare(storm_state, seed=3)

    def fault():
        storm.restart_postgresql()

    report = storm.run_storm('PostgreSQL restart', cluster, plan, header, fault=fault)
    report.fault = 'PostgreSQL restarted (fast shutdown, every connection cut) at 30% of the firing deliveries'
    finish(report, plan)


def test_redis_restarted_mid_storm(cluster, webhook, storm_state):
    webhook.behaviour = 'ok'
    plan, header = prepare(storm_state, seed=4)

    def fault():
        storm.restart_redis()

    report = storm.run_storm('Redis restart', cluster, plan, header, fault=fault)
    report.fault = (
        'Redis stopped for 2 s (without persistence: the queued jobs are lost) at 30% of the firing deliveries'
    )
    finish(report, plan)


@pytest.mark.parametrize('behaviour', ['fail', 'hang'])
def test_webhook_failing_mid_storm(cluster, webhook, storm_state, behaviour):
    webhook.behaviour = 'ok'
    plan, header = prepare(storm_state, seed=5 if behaviour == 'fail' else 6)

    def fault():
        webhook.behaviour = behaviour

    before = dict(webhook.received)
    report = storm.run_storm(f'webhook {behaviour}', cluster, plan, header, fault=fault)
    received = {key: count - before.get(key, 0) for key, count in webhook.received.items()}
    report.fault = (
        f'the notification webhook answers 500 from 30% of the firing deliveries on ({received})'
        if behaviour == 'fail'
        else f'the notification webhook holds every request 10 s from 30% of the firing deliveries on ({received})'
    )
    finish(report, plan, record=False)
    assert received.get(behaviour), received
    # The last notifications were queued as the storm ended: their first attempts fail a few
    # seconds later (a 500 at once, a hang at the 5 s timeout), then wait for a retry.
    health = report.health
    deadline = time.monotonic() + 60
    while not health['notifications'].get('failing') and time.monotonic() < deadline:
        time.sleep(2)
        health = check_incident_automation_health()
    report.health = health
    storm.write_figures(report)
    webhook.behaviour = 'ok'
    webhook.release.set()
    time.sleep(0.1)
    webhook.release.clear()
    connection.close()
    assert health['notifications']['failing'] > 0, health
    assert any('notifications jobs failed' in issue for issue in health['issues']), health['issues']
