"""What one more alert group costs as the incident it joins grows: a storm behind a core switch.

One device carries an incident grown to ``members`` members (groups of 100 alerts through the
Alertmanager receiver, decided in the request); the benchmark then times 20-alert groups of new
alerts joining it, with the members kept between decisions (``services.member_cache``, the product)
and with every decision reading them again (``DjangoStore.kept = False``, as before the cache), in the
same run. ``python -m bench.report_intake`` prints the ratios.

``test_read_a_large_incident`` times what a decision reads of such an incident when another worker wrote it last
(its kept members are stale): the product's read against a plain ORM read of the same member rows, in the same run.
"""

import itertools
import os

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from bench.intake_support import alertmanager_group, post_group, record
from business_application.demo.load import load_demo_map
from business_application.models import Incident, IncidentEvent
from business_application.services import member_cache
from business_application.services.graph_loader import current_map, forget_map, node_of
from business_application.services.incident_service import DjangoStore, to_epoch
from business_application.settings import get_settings
from tests.conftest import django_db_setup  # noqa: F401 - the migrated test database, as the tests use it
from tests.load import storm
from tests.senders import sender_authorization

QUICK = os.environ.get('QUICK', '') not in ('', '0')
SIZES = (100, 2_000) if QUICK else (100, 4_000)
_names = itertools.count()


def group_on(host, size):
    """``size`` new alerts on one host, each its own alert (its own name)."""
    payload = alertmanager_group([host] * size)
    for alert in payload['alerts']:
        number = next(_names)
        alert['labels']['alertname'] = f'Check{number}'
        alert['fingerprint'] = f'check-{number}'
    return payload


def grow_incident(members):
    """The storm's demo map, fresh, and one incident of ``members`` members on one server (groups of 100 through the
    Alertmanager receiver, decided in the request): ``(client, header, host)`` to post more."""
    forget_map()
    member_cache.clear()
    plan = storm.plan(120, seed=11)
    load_demo_map(plan.demo_map(11))
    host = next(device['name'] for device in plan.devices if device['role'] == 'server')
    header = {'HTTP_AUTHORIZATION': sender_authorization('alertmanager')}
    client = APIClient()
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=False):
        for _ in range(members // 100):
            post_group(client, header, group_on(host, 100))
    return client, header, host


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('kept', [True, False], ids=['kept', 'reread'])
@pytest.mark.parametrize('members', SIZES)
def test_join_a_large_incident(benchmark, members, kept, monkeypatch):
    client, header, host = grow_incident(members)
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=False):
        monkeypatch.setattr(DjangoStore, 'kept', kept)
        post_group(client, header, group_on(host, 20))  # the first read of the incident after the switch
        benchmark.pedantic(
            post_group, setup=lambda: ((client, header, group_on(host, 20)), {}), rounds=5 if QUICK else 15
        )
    incident = Incident.objects.get()  # every alert is on one device: one incident holds them all
    assert IncidentEvent.objects.filter(incident=incident).count() >= members
    figures = {'members': members, 'group_seconds_median': round(benchmark.stats.stats.median, 4)}
    benchmark.extra_info.update(figures)
    record(f'large_incident/{members}/{"kept" if kept else "reread"}', figures)
    forget_map()
    member_cache.clear()


def orm_read(service_map, key):
    """An incident's members as a plain ORM read gives them (Django's loaders, a datetime per time): the reference
    for ``DjangoStore``'s read of members another worker wrote last."""
    rows = IncidentEvent.objects.filter(incident_id=key).order_by('joined_at', 'pk')
    return [
        (
            row['event_id'],
            row['occurrence'],
            node_of(service_map, row['event__content_type_id'], row['event__object_id']),
            row['status'],
            to_epoch(row['joined_at']),
            to_epoch(row['last_activity_at']),
        )
        for row in rows.values(
            'event_id',
            'occurrence',
            'status',
            'joined_at',
            'last_activity_at',
            'event__content_type_id',
            'event__object_id',
        )
    ]


def product_read(service_map, key):
    """What a decision reads of an incident whose members another worker wrote last: its row and members' rows."""
    member_cache.clear()
    incident = DjangoStore(service_map, get_settings()).get_incident(key)
    incident.member_nodes()
    return incident


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('read', ['product', 'orm'])
@pytest.mark.parametrize('members', SIZES)
def test_read_a_large_incident(benchmark, members, read):
    """Reading again the members of an incident that another worker wrote last (its kept members are stale): the
    product's read against a plain ORM read of the same rows, in the same run."""
    grow_incident(members)
    key = Incident.objects.get().pk
    service_map = current_map()
    reference = orm_read(service_map, key)
    incident = product_read(service_map, key)
    assert len(reference) == members
    assert [
        (m.alert, m.occurrence, m.node, m.status, m.joined_at, m.last_activity) for m in incident.members
    ] == reference
    reader = product_read if read == 'product' else orm_read
    benchmark.pedantic(reader, args=(service_map, key), rounds=10 if QUICK else 30, warmup_rounds=1)
    figures = {'members': members, 'read_ms_median': round(benchmark.stats.stats.median * 1000, 2)}
    benchmark.extra_info.update(figures)
    record(f'incident_read/{members}/{read}', figures)
    forget_map()
    member_cache.clear()
