"""Scenario files replayed through NetBox (real objects, real events, the post_save signal) with both backends.

Each run must agree with the database-free replay tool, incident for incident.
"""

import io
import json

import pytest
from django.core.management import call_command

from business_application.correlation.replay import run_scenario
from business_application.correlation.scenario import load_scenario

from ..scenarios import GUIDE, SCENARIOS


def replay_in_netbox(path, backend):
    out = io.StringIO()
    try:
        call_command('replay_scenario', str(path), '--json', backend=backend, stdout=out)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    assert code in (0, 1)
    return json.loads(out.getvalue())


def summary(report):
    return sorted(
        (tuple(i['members']), i['status'], i['severity'], i['root_cause'], i['title'], i['resolved_at'])
        for i in report['incidents']
    )


@pytest.mark.django_db
@pytest.mark.parametrize('backend', ['rust', 'python'])
@pytest.mark.parametrize('path', GUIDE, ids=lambda p: p.stem)
def test_guide_scenarios_match_through_netbox(path, backend):
    report = replay_in_netbox(path, backend)
    assert report['backend'] == backend
    assert report['comparison']['matched'], report['comparison']['differences']


@pytest.mark.django_db
@pytest.mark.parametrize('backend', ['rust', 'python'])
@pytest.mark.parametrize('path', SCENARIOS, ids=lambda p: p.stem)
def test_netbox_and_replay_tool_decide_alike(path, backend):
    in_netbox = replay_in_netbox(path, backend)
    in_memory = run_scenario(load_scenario(path), backend=backend)
    assert in_netbox['comparison']['matched'], in_netbox['comparison']['differences']
    assert summary(in_netbox) == summary(in_memory)
    assert {e['ref']: e['incident'] is None for e in in_netbox['events']} == {
        e['ref']: e['incident'] is None for e in in_memory['events']
    }


@pytest.mark.django_db
def test_replay_scenario_reuses_roles_netbox_already_has_by_slug():
    from dcim.models import DeviceRole

    DeviceRole.objects.create(name='Server', slug='server', color='9e9e9e')
    report = replay_in_netbox(GUIDE[0], 'rust')
    assert report['comparison']['matched']


@pytest.mark.django_db
def test_replay_scenario_refuses_a_database_holding_the_same_names_with_one_line():
    from django.core.management.base import CommandError

    from business_application.models import TechnicalService

    TechnicalService.objects.create(name='Database Service')
    with pytest.raises(CommandError, match='NetBox already holds service:Database Service'):
        call_command('replay_scenario', str(GUIDE[0]), stdout=io.StringIO())
