"""Schemathesis fuzz of the plugin's REST API, from NetBox's own OpenAPI schema.

A NetBox serves the test database on 127.0.0.1 from a thread of this process (pytest-django's live
server, on a free port). Its ``/api/schema/`` is filtered to the plugin's paths, and schemathesis
generates valid and invalid requests for every operation there (REST models, receivers,
automation endpoints), sent with a token of a superuser. Every answer must be below 500, match the
schema where the schema describes it, and a refusal must be a 4xx whose JSON body says why.

``make test`` runs a bounded number of examples; ``make fuzz`` sets ``NBA_FUZZ=long`` for many more.
"""

import json
import logging
import os
import traceback
from collections import Counter

import pytest
import requests
import schemathesis
from django.contrib.contenttypes.models import ContentType
from django.core.management.color import no_style
from django.db import connection
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from dcim.models import Device
from users.constants import TOKEN_PREFIX
from users.models import Token, User

from business_application.models import (
    BusinessApplication,
    Event,
    EventSource,
    Incident,
    Maintenance,
    ServiceDependency,
    TechnicalService,
)

from ..integration.maps import build

# The live server binds the loopback address only (pytest-django reads this when it starts it).
os.environ.setdefault('DJANGO_LIVE_TEST_SERVER_ADDRESS', '127.0.0.1')

PLUGIN_PATHS = '^/api/plugins/business-application/'
#: A narrower path pattern (inside the plugin's) to aim a long run at one endpoint, e.g. 'events/$'.
FOCUS = os.environ.get('NBA_FUZZ_PATHS')
LONG = os.environ.get('NBA_FUZZ') == 'long'
#: Examples per generation mode (valid and invalid requests), over all operations together.
EXAMPLES = int(os.environ.get('NBA_FUZZ_EXAMPLES') or (500 if LONG else 25))
#: Every model gets one object with this id, so generated requests also reach existing objects. It lies far
#: above what the id sequences reach in a test run, so no automatic id collides with it.
SEED_ID = 1_000_007
#: Always checked. The response schema is checked on single-object successes only: NetBox's own schema
#: describes a bulk (list) answer as one object, and its 400 answer as a ``oneOf`` that a plain
#: ``{"detail": ...}`` matches twice; refusals are checked by readable_refusal() instead.
SEEDED = (BusinessApplication, TechnicalService, ServiceDependency, EventSource, Event, Incident, Maintenance)
CHECKS = [not_a_server_error, content_type_conformance]
#: Query parameters of NetBox's core that change the answer's shape outside the schema (``brief`` is
#: true for any value, even "false"; ``fields`` and ``omit`` drop fields the schema requires).
NETBOX_QUERY = ('brief', 'fields', 'omit')

MAP = """
name: fuzz
graph:
  services: [web, db]
  dependencies:
    - {service: web, depends_on: db}
  devices:
    - {name: fuzz-01, role: server, services: [web]}
"""


def seed():
    """One object of each model at id SEED_ID, and a map for the events to correlate over."""
    objects = build(MAP)
    device = objects['device:fuzz-01']
    BusinessApplication.objects.create(pk=SEED_ID, appcode='FUZZ', name='Fuzz app')
    service = TechnicalService.objects.create(pk=SEED_ID, name='fuzz service')
    ServiceDependency.objects.create(
        pk=SEED_ID,
        name='fuzz dep',
        upstream_service=TechnicalService.objects.get(name='db'),
        downstream_service=service,
    )
    source = EventSource.objects.create(pk=SEED_ID, name='fuzz')
    device_type = ContentType.objects.get_for_model(Device)
    Event.objects.create(
        pk=SEED_ID,
        message='fuzz down',
        event_source=source,
        dedup_id='fuzz-1',
        content_type=device_type,
        object_id=device.pk,
    )
    Incident.objects.create(pk=SEED_ID, title='fuzz incident')
    Maintenance.objects.create(
        pk=SEED_ID,
        content_type=device_type,
        object_id=device.pk,
        start='2026-01-01T00:00:00Z',
        end='2026-01-02T00:00:00Z',
        description='fuzz window',
    )
    # The ids were given by hand: move the sequences past them, or the next generated create collides.
    with connection.cursor() as cursor:
        for statement in connection.ops.sequence_reset_sql(no_style(), SEEDED):
            cursor.execute(statement)


def admin_header():
    user = User.objects.create_user(username='fuzzer', is_superuser=True)
    token = Token.objects.create(user=user, write_enabled=True)
    return {'Authorization': f'Bearer {TOKEN_PREFIX}{token.key}.{token.token}'}


def readable_refusal(response):
    """A 4xx must carry a JSON body that names what was wrong (a detail, or field errors)."""
    if not 400 <= response.status_code < 500 or response.status_code in (404, 405):
        return None
    try:
        body = json.loads(response.content or b'null')
    except ValueError:
        return f'{response.status_code} without a JSON body: {response.content[:200]!r}'
    if isinstance(body, dict) and body:
        return None
    if isinstance(body, list) and body and all(isinstance(item, dict | str) for item in body):
        return None
    return f'{response.status_code} whose body says nothing: {response.content[:200]!r}'


@pytest.fixture
def api(live_server):
    """The filtered schema, the server's base URL and an admin token header."""
    seed()
    header = admin_header()
    raw = requests.get(f'{live_server.url}/api/schema/?format=json', headers=header, timeout=300)
    assert raw.status_code == 200, raw.content[:500]
    paths = f'{PLUGIN_PATHS}.*{FOCUS}' if FOCUS else PLUGIN_PATHS
    schema = schemathesis.openapi.from_dict(raw.json()).include(path_regex=paths)
    return schema, live_server.url, header


class ServerErrors(logging.Handler):
    """The last lines of the traceback of every server error the live server logs."""

    def __init__(self):
        super().__init__(level=logging.ERROR)
        self.seen = []

    def emit(self, record):
        if record.exc_info:
            lines = ''.join(traceback.format_exception(*record.exc_info)).strip().splitlines()
            self.seen.append(' | '.join(lines[-3:]))


@pytest.fixture
def server_errors():
    handler = ServerErrors()
    logger = logging.getLogger('django.request')
    logger.addHandler(handler)
    yield handler.seen
    logger.removeHandler(handler)


def fuzz(schema, base_url, header, mode, examples, **fixed):
    """Run ``examples`` generated requests of ``mode``; return what was sent and every distinct failure."""
    stats = {'requests': 0, 'statuses': Counter(), 'failures': {}}
    session = requests.Session()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=not LONG,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=schema.as_strategy(generation_mode=mode, media_type='application/json', **fixed))
    def run(case):
        for name in NETBOX_QUERY:
            (case.query or {}).pop(name, None)
        response = case.call(base_url=base_url, headers=header, session=session, timeout=120)
        stats['requests'] += 1
        stats['statuses'][response.status_code] += 1
        problems = []
        checks = list(CHECKS)
        if 200 <= response.status_code < 300 and not isinstance(case.body, list):
            checks.append(response_schema_conformance)
        try:
            case.validate_response(response, checks=checks, headers=header)
        except (FailureGroup, AssertionError) as error:
            problems.extend(failure.title for failure in getattr(error, 'exceptions', [error]))
        if response.status_code >= 500:
            problems.append(response.text[:300])  # NetBox's API answers a server error with the exception
        refusal = readable_refusal(response)
        if refusal:
            problems.append(refusal)
        for problem in problems:
            key = f'{case.operation.label} -> {response.status_code}: {str(problem)[:300]}'
            stats['failures'].setdefault(key, case.as_curl_command(headers=header)[:1000])

    run()
    return stats


def test_the_api_answers_every_generated_request_without_a_server_error(api, server_errors):
    schema, base_url, header = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert FOCUS or len(operations) >= 70, 'the filtered schema lost plugin operations'
    failures, sent, statuses = {}, 0, Counter()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        for fixed in ({}, {'path_parameters': {'id': SEED_ID}}):
            stats = fuzz(schema, base_url, header, mode, EXAMPLES, **fixed)
            failures |= stats['failures']
            sent += stats['requests']
            statuses += stats['statuses']
    print(
        f'\nschema fuzz: {sent} requests over {len(operations)} operations, '
        f'statuses {sorted(statuses.items())}, {len(failures)} distinct failures'
    )
    report = [f'{key}\n    {curl}' for key, curl in sorted(failures.items())]
    assert not failures, '\n'.join(report + [f'server error: {error}' for error in sorted(set(server_errors))])
