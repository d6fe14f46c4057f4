"""Concurrent deliveries of overlapping alert groups, committed by real threads and connections.

The replicas of an Alertmanager cluster deliver the same group at about the same time, and groups
overlap. Each request is one transaction that locks event rows and map components; taken in
different orders by two requests, those locks would deadlock. Every delivery must be answered 200,
and the alerts stored once, with one incident per outage.
"""

import random
import threading

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from rest_framework.test import APIClient

from users.constants import TOKEN_PREFIX
from users.models import ObjectPermission, Token, User

from business_application.models import Event, EventSource, Incident, IncidentEvent

from ..integration.maps import build
from .base import URL

SENDERS = 8
HOSTS = 6
#: Six hosts in six map components (no shared service), so one group takes several component locks.
ISLANDS = (
    """
name: islands
graph:
  services: [%s]
  devices:
"""
    % ', '.join(f'svc-{i}' for i in range(HOSTS))
    + ''.join(f'    - {{name: host-{i}, role: server, services: [svc-{i}]}}\n' for i in range(HOSTS))
)


def token_header():
    user = User.objects.create_user(username='alertmanager')
    permission = ObjectPermission.objects.create(name='receive alerts', actions=['add', 'change'])
    permission.object_types.add(ContentType.objects.get_by_natural_key('business_application', 'event'))
    permission.users.add(user)
    token = Token.objects.create(user=user)
    return {'HTTP_AUTHORIZATION': f'Bearer {TOKEN_PREFIX}{token.key}.{token.token}'}


def alert(host, check):
    return {
        'status': 'firing',
        'labels': {'alertname': check, 'instance': f'host-{host}:9100', 'severity': 'critical'},
        'annotations': {'summary': f'{check} on host-{host}'},
        'startsAt': '2026-12-04T10:00:00Z',
        'endsAt': '0001-01-01T00:00:00Z',
        'fingerprint': f'{check}-{host}',
    }


def deliver_all(groups, header):
    barrier = threading.Barrier(len(groups))
    answers = [None] * len(groups)
    errors = []

    def send(index, group):
        try:
            client = APIClient()
            barrier.wait(timeout=30)
            response = client.post(URL.format('alertmanager'), group, format='json', **header)
            answers[index] = (response.status_code, response.content[:300])
        except Exception as error:  # noqa: BLE001 - reported by the test
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=item) for item in enumerate(groups)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    assert not errors, errors
    return answers


@pytest.mark.django_db(transaction=True)
def test_overlapping_groups_from_concurrent_senders(settings):
    settings.ROOT_URLCONF = 'tests.receivers.urls'
    build(ISLANDS)
    EventSource.objects.create(name='prometheus')
    header = token_header()
    alerts = [alert(host, check) for host in range(HOSTS) for check in ('InstanceDown', 'HighLoad')]
    alerts.append({**alert('x', 'InstanceDown'), 'labels': {'alertname': 'InstanceDown', 'instance': 'ghost:9100'}})
    shuffle = random.Random(7)
    groups = []
    for _ in range(SENDERS):
        mine = shuffle.sample(alerts, k=len(alerts))  # every replica, its own order
        groups.append({'version': '4', 'status': 'firing', 'receiver': 'netbox', 'alerts': mine})
    answers = deliver_all(groups, header)
    assert [code for code, _ in answers] == [200] * SENDERS, answers
    assert Event.objects.count() == len(alerts)
    # One incident per host (its two alerts share the host) and one for the unknown host.
    assert Incident.objects.count() == HOSTS + 1
    assert IncidentEvent.objects.count() == len(alerts)
