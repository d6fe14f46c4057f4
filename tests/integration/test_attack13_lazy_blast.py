"""Attack round 13: a StoredIncident's blast radius is the one read with its row, and a store dies with its decision.

Found on 3388c84, where ``DjangoStore`` queried the blast radius when a blast field was first read: a write made
after the read was mixed into a state otherwise as read, an incident deleted meanwhile silently had none, and each
incident held a bound method of its store, so every decision's store (all live incidents) was cyclic garbage. The
blast radius now comes with the row, as text parsed on first read, through a function that holds only the map.
"""

import pytest

from business_application.choices import IncidentStatusChoices
from business_application.models import Incident
from business_application.services.batch import decide_events
from business_application.services.graph_loader import current_map
from business_application.services.incident_service import DjangoStore, blast_nodes
from business_application.settings import get_settings

from .test_member_cache import storm_items


def decided_incident_with_blast(storm_map):
    items = storm_items(storm_map, 0, 40)
    for first in range(0, 40, 10):
        for event_id, outcome in decide_events(items[first : first + 10]):
            assert not isinstance(outcome, Exception), (event_id, outcome)
    for incident in Incident.objects.filter(status__in=IncidentStatusChoices.OPEN).order_by('pk'):
        if (incident.blast_radius or {}).get('down'):
            return incident
    pytest.skip('the storm left no incident with a blast radius')


def read(key):
    store = DjangoStore(current_map(), get_settings())
    state = store.get_incident(key)
    return store, state


@pytest.mark.django_db
def test_the_blast_radius_is_the_one_read_with_the_incident(storm_map):
    incident = decided_incident_with_blast(storm_map)
    store, state = read(incident.pk)
    as_read = blast_nodes(store.map, incident.blast_radius, 'down')
    assert as_read
    # Another writer (a later decision, the move action) rewrites the row after this store read it.
    Incident.objects.filter(pk=incident.pk).update(blast_radius={'down': [], 'degraded': [], 'capped': True})
    assert (state.blast_down, state.blast_capped) == (as_read, bool(incident.blast_radius.get('capped')))


@pytest.mark.django_db
def test_an_incident_deleted_after_the_read_keeps_the_blast_radius_it_was_read_with(storm_map):
    incident = decided_incident_with_blast(storm_map)
    store, state = read(incident.pk)
    as_read = blast_nodes(store.map, incident.blast_radius, 'down')
    Incident.objects.filter(pk=incident.pk).delete()
    assert state.blast_down == as_read


@pytest.mark.django_db
def test_a_decisions_store_is_freed_when_the_decision_ends(storm_map):
    """A decision's store (all live incidents, their built members, the order of their rows) is freed by reference
    counting when the decision drops it, not left to the cyclic collector."""
    import gc
    import weakref

    decided_incident_with_blast(storm_map)
    settings = get_settings()
    store = DjangoStore(current_map(), settings)
    live = store.live_incidents(
        Incident.objects.order_by('-last_activity_at').first().last_activity_at.timestamp(), settings
    )
    assert store.cache
    gone = weakref.ref(store)
    gc.disable()
    try:
        del store, live
        assert gone() is None, 'the store outlives its decision until the cyclic collector runs'
    finally:
        gc.enable()
