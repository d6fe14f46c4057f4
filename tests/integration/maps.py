"""Small dependency maps for the integration tests, created as real NetBox objects."""

from django.test import TestCase

from business_application.correlation.scenario import parse_scenario
from business_application.services import graph_loader
from business_application.services.graph_loader import current_map, forget_map
from business_application.services.map_import import import_map

DATABASE_OUTAGE = """
name: db-outage
graph:
  services: [Database Service, Web Service]
  dependencies:
    - {service: Web Service, depends_on: Database Service}
  devices:
    - {name: DB-PROD-01, role: server, services: [Database Service]}
    - {name: WEB-APP-01, role: server, services: [Web Service]}
    - {name: MAIL-01, role: server}
"""

SWITCH_FAILURE = """
name: switch-failure
graph:
  services: [Web Service, App Service]
  devices:
    - {name: SWITCH-01, role: switch}
    - {name: WEB-01, role: server, services: [Web Service], links: [SWITCH-01]}
    - {name: APP-02, role: server, services: [App Service], links: [SWITCH-01]}
"""


def build(text):
    """Create the map of a scenario-format snippet; returns the created objects by label (``device:NAME``)."""
    return import_map(parse_scenario(text))


def snapshot_edges():
    """This process's map snapshot's live edges as (upstream label, downstream label, kind)."""
    builder = graph_loader._snapshot['builder']
    labels, dead = builder.labels, builder.dead
    return {
        (labels[s], labels[d], k)
        for s, d, k in zip(builder.src, builder.dst, builder.edge_kind, strict=True)
        if s != d and s not in dead and d not in dead
    }


def fresh_edges():
    """The live edges of a map loaded afresh (what a worker started now decides on)."""
    forget_map()
    current_map()
    return snapshot_edges()


class FollowedMapTest(TestCase):
    """``MAP`` created and this process's snapshot loaded before each test, dropped after it."""

    MAP = ''

    def setUp(self):
        self.objects = build(self.MAP)
        forget_map()
        current_map()

    def tearDown(self):
        forget_map()

    def other_worker_follows(self, change):
        """Commit ``change`` as another process would, then catch up with it through Redis; the live edges then."""
        graph_loader._local.clear()
        with self.captureOnCommitCallbacks(execute=True):
            change()
        graph_loader._local.clear()
        current_map()
        return snapshot_edges()
