"""What a decision costs as the number of live incidents grows.

A map of unlinked servers; the first ``live`` of them each carry a live incident of 3 members (groups of 100
alerts through the Alertmanager receiver, decided in the request). The benchmark then times one new alert on
another server, through the receiver and decided in the request: it is scored against every live incident and
opens one of its own. ``python -m bench.report_intake`` prints the ratio of 1,000 live incidents to 10.
"""

import gc
import itertools
import os

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from bench.intake_support import alertmanager_group, post_group, record
from business_application.choices import IncidentStatusChoices
from business_application.demo.load import load_demo_map
from business_application.models import Incident
from business_application.services import member_cache
from business_application.services.graph_loader import forget_map
from tests.conftest import django_db_setup  # noqa: F401 - the migrated test database, as the tests use it
from tests.load.generator import Plan
from tests.senders import sender_authorization

QUICK = os.environ.get('QUICK', '') not in ('', '0')
LIVE = (10, 1_000)
SPARE = 80 if QUICK else 200  # servers without an incident, one per timed alert
MEMBERS = ('HostDown', 'DiskFull', 'LoadHigh')
_names = itertools.count()


def solo_servers(count, seed):
    """The demo loader's map of ``count`` servers, each with a service of its own and no cable."""
    devices = [
        {'name': f'live-{seed}-s{number}', 'role': 'server', 'services': [f'live-{seed}-svc-{number}'], 'links': []}
        for number in range(count)
    ]
    services = [device['services'][0] for device in devices]
    return Plan(map_yaml='', devices=devices, services=services, phases={}, alerts={}, notifications=0).demo_map(seed)


def new_alert(host):
    """One alert no other shares, on ``host``."""
    number = next(_names)
    payload = alertmanager_group([host], alertname=f'Probe{number}')
    payload['groupKey'] = payload['groupKey'] + f'-{number}'
    return payload


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('live', LIVE)
def test_decide_against_live_incidents(benchmark, live):
    forget_map()
    member_cache.clear()
    Incident.objects.all().delete()  # another bench's storm may have left some: only this test's may be live
    seed = 30 + live % 97
    load_demo_map(solo_servers(live + SPARE, seed))
    hosts = [f'live-{seed}-s{number}' for number in range(live + SPARE)]
    header = {'HTTP_AUTHORIZATION': sender_authorization('alertmanager')}
    client = APIClient()
    spare = iter(hosts[live:])
    with override_settings(BUSINESS_APP_ASYNC_PROCESSING=False):
        for start in range(0, live, 100):
            for alertname in MEMBERS:
                post_group(client, header, alertmanager_group(hosts[start : start + 100][: live - start], alertname))
        assert Incident.objects.filter(status__in=IncidentStatusChoices.OPEN).count() == live
        post_group(client, header, new_alert(next(spare)))  # the first decision after the set-up
        gc.collect()  # the set-up's garbage is not the timed alerts' to collect
        benchmark.pedantic(post_group, setup=lambda: ((client, header, new_alert(next(spare))), {}), rounds=SPARE - 10)
    # Every timed alert opened an incident of its own, after scoring against the live ones.
    assert Incident.objects.filter(status__in=IncidentStatusChoices.OPEN).count() == live + SPARE - 9
    figures = {'live': live, 'alert_seconds_median': round(benchmark.stats.stats.median, 5)}
    benchmark.extra_info.update(figures)
    record(f'live_incidents/{live}', figures)
    forget_map()
    member_cache.clear()
