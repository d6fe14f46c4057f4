"""Attack 12: a newer notification of an alert that names another object moves the alert (intake, the pure replay
tool's ``merge_notification``), but ``replay_scenario`` through NetBox applies only its state (``event_fields`` has no
object, and ``_deliver`` sets one only on a new event) and keeps the alert where it was.

The alert db-check fired on MAIL-01 and cleared; it fires again, now naming DB-01 (its labels were corrected). The
replay tool decides the new occurrence on DB-01, whose Web Service outage is already open, and joins that incident;
NetBox's replay decides it on MAIL-01 and opens a separate incident.
"""

import pytest

from .test_attack12_role_names import both_replays

SCENARIO = """
name: attack12-newer-repeat-moves
graph:
  services: [Database Service, Web Service, Mail Service]
  dependencies:
    - {service: Web Service, depends_on: Database Service}
  devices:
    - {name: DB-01, role: server, services: [Database Service]}
    - {name: WEB-01, role: server, services: [Web Service]}
    - {name: MAIL-01, role: server, services: [Mail Service]}
events:
  - {t: 0, ref: m1, object: device:MAIL-01, severity: critical, status: firing, dedup_id: db-check}
  - {t: 5, ref: m2, object: device:MAIL-01, severity: critical, status: ok, dedup_id: db-check}
  - {t: 1990, ref: w1, object: device:WEB-01, severity: critical, status: firing, dedup_id: web-down}
  - {t: 2000, ref: d1, object: device:DB-01, severity: critical, status: firing, dedup_id: db-check}
"""


@pytest.mark.django_db
@pytest.mark.parametrize('backend', ['rust', 'python'])
def test_replay_through_netbox_moves_an_alert_as_the_replay_tool_does(tmp_path, backend):
    in_netbox, in_memory = both_replays(tmp_path, SCENARIO, backend)
    assert in_netbox == in_memory, 'replay_scenario kept the alert on the object it first named'
