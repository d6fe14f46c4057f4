"""Concurrent deliveries through the REST API, committed to PostgreSQL by real threads and connections.

One alert delivered by eight senders at once is one event and one incident; eight related alerts
arriving at once become one incident, because decisions are serialised per correlation lock.
"""

import threading

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.urls import reverse
from rest_framework.test import APIClient

from users.constants import TOKEN_PREFIX
from users.models import ObjectPermission, Token, User

from business_application.models import Event, EventSource, Incident, IncidentEvent

from .maps import build

SENDERS = 8
FARM = """
name: web-farm
graph:
  services: [Web]
  devices:
""" + ''.join(f'    - {{name: web-{i:02d}, role: server, services: [Web]}}\n' for i in range(SENDERS))


def token_header():
    user = User.objects.create_user(username='sender')
    permission = ObjectPermission.objects.create(name='send events', actions=['view', 'add', 'change'])
    permission.object_types.add(ContentType.objects.get_by_natural_key('business_application', 'event'))
    permission.users.add(user)
    token = Token.objects.create(user=user)
    return {'HTTP_AUTHORIZATION': f'Bearer {TOKEN_PREFIX}{token.key}.{token.token}'}


def deliver_all(payloads, header):
    """Post every payload from its own thread, all released at once; returns the status codes."""
    barrier = threading.Barrier(len(payloads))
    codes = [None] * len(payloads)
    errors = []

    def send(index, payload):
        try:
            client = APIClient()
            barrier.wait(timeout=30)
            response = client.post(
                reverse('plugins-api:business_application-api:event-list'), payload, format='json', **header
            )
            codes[index] = response.status_code
        except Exception as error:  # noqa: BLE001 - reported to the test below
            errors.append(repr(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i, p)) for i, p in enumerate(payloads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return codes


def payload(device, dedup_id, source):
    return {
        'message': f'{device.name} unreachable',
        'status': 'triggered',
        'criticallity': 'critical',
        'content_type': 'dcim.device',
        'object_id': device.pk,
        'dedup_id': dedup_id,
        'event_source': source.pk,
    }


@pytest.mark.django_db(transaction=True)
def test_the_same_alert_from_eight_senders_is_one_event_and_one_incident():
    objects = build(FARM)
    source = EventSource.objects.create(name='prometheus')
    header = token_header()
    device = objects['device:web-00']
    codes = deliver_all([payload(device, 'same-alert', source) for _ in range(SENDERS)], header)
    assert sorted(codes) == [200] * (SENDERS - 1) + [201]
    assert Event.objects.count() == 1
    assert Incident.objects.count() == 1
    assert IncidentEvent.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_related_alerts_arriving_together_share_one_incident():
    objects = build(FARM)
    source = EventSource.objects.create(name='prometheus')
    header = token_header()
    payloads = [payload(objects[f'device:web-{i:02d}'], f'web-{i:02d}-down', source) for i in range(SENDERS)]
    codes = deliver_all(payloads, header)
    assert codes == [201] * SENDERS
    assert Event.objects.count() == SENDERS
    assert Incident.objects.count() == 1
    assert Incident.objects.get().memberships.count() == SENDERS
