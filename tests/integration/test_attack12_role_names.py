"""Attack 12: a scenario device's ``role`` is a role name to ``replay_scenario`` (``import_map`` slugifies it, and the
map loader matches BUSINESS_APP_NETWORK_ROLES / _TIERS against the slug), but the replay tool (``build_map``) matches
the name itself, lower-cased. A role written as NetBox shows it ("Core Switch") is a tiered network role in NetBox and
not even a network role in the replay tool, so the two paths decide the same scenario differently."""

import io
import json

import pytest
from django.core.management import call_command

from business_application.correlation.replay import run_scenario
from business_application.correlation.scenario import load_scenario

SCENARIO = """
name: attack12-role-names
settings:
  network_tiers: [core-switch, access-switch]
graph:
  services: [shop, cart]
  devices:
    - {name: core-a, role: Core Switch}
    - {name: tor-a, role: Access Switch, links: [core-a]}
    - {name: srv-1, role: server, services: [shop], links: [tor-a]}
    - {name: srv-2, role: server, services: [cart], links: [tor-a]}
events:
  - {t: 0, ref: s1, object: device:srv-1, severity: critical, status: firing}
  - {t: 5, ref: s2, object: device:srv-2, severity: critical, status: firing}
  - {t: 60, ref: ta, object: device:tor-a, severity: critical, status: firing}
  - {t: 120, ref: co, object: device:core-a, severity: critical, status: firing}
"""


def both_replays(tmp_path, text, backend):
    """The incidents of a scenario replayed through NetBox (``replay_scenario``) and in memory, summarised alike."""
    path = tmp_path / 'scenario.yaml'
    path.write_text(text)
    out = io.StringIO()
    call_command('replay_scenario', str(path), '--json', backend=backend, stdout=out)
    in_memory = run_scenario(load_scenario(path), backend=backend)
    return [
        sorted((tuple(i['members']), i['status'], i['root_cause'], i['title']) for i in report['incidents'])
        for report in (json.loads(out.getvalue()), in_memory)
    ]


@pytest.mark.django_db
@pytest.mark.parametrize('backend', ['rust', 'python'])
def test_a_role_written_as_its_name_is_matched_alike_in_both_replays(tmp_path, backend):
    in_netbox, in_memory = both_replays(tmp_path, SCENARIO, backend)
    assert in_netbox == in_memory
