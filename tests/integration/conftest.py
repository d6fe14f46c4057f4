"""Fixtures shared by the integration tests."""

import pytest

from business_application.correlation.scenario import parse_scenario
from business_application.management.commands.replay_scenario import replay_start
from business_application.services import member_cache
from business_application.services.graph_loader import forget_map
from business_application.services.map_import import import_map

from .test_batch_decisions import storm_text


@pytest.fixture
def storm_map():
    """The generated storm behind two core switches (repeats, flaps, clears, a late switch alert that merges)."""
    scenario = parse_scenario(storm_text(servers=40, seed=3))
    forget_map()
    member_cache.clear()
    objects = import_map(scenario)
    yield scenario, objects, replay_start(scenario)
    forget_map()
    member_cache.clear()
