"""Members kept between decisions (``services.member_cache``) are always what a fresh read returns.

The cache trusts one number per incident, kept by PostgreSQL triggers (migration 0009): these tests
check that every kind of write to members moves it, that members kept after a committed batch equal a
fresh read of the database, and that a batch which finds another writer's change between its read
and its first write does not keep what it holds.
"""

import dataclasses
from datetime import timedelta

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Subquery
from django.test.utils import override_settings

from business_application.correlation.lifecycle import Correlator
from business_application.models import Event, Incident, IncidentEvent, IncidentMembersRevision
from business_application.services import member_cache
from business_application.services.batch import BatchStore, decide_events
from business_application.services.graph_loader import current_map
from business_application.services.incident_service import DjangoStore, alert_state
from business_application.settings import get_settings

from .test_batch_decisions import store as store_notification


def storm_items(storm_map, first=0, count=30):
    """The storm's notifications ``first`` to ``first + count``, stored: ``[(event id, arrival)]`` to decide."""
    scenario, objects, start = storm_map
    items = []
    for item in scenario.events[first : first + count]:
        arrival = start + timedelta(seconds=item.t)
        items.append((store_notification(item, objects, arrival, start + timedelta(seconds=item.event_time)), arrival))
    return items


def revision(incident_id):
    return IncidentMembersRevision.objects.filter(incident_id=incident_id).values_list('revision', flat=True).first()


def fresh_read(keys):
    """The incidents as a store reads them from the database alone."""
    reader = DjangoStore(current_map(), get_settings())
    reader.kept = False
    states = {state.key: state for state in reader._load(Incident.objects.filter(pk__in=keys))}
    return states, reader.order


def kept(keys):
    """The incidents as the cache gives them now (None where it has nothing for their current revision)."""
    reader = DjangoStore(current_map(), get_settings())
    rows = (
        Incident.objects.filter(pk__in=keys)
        .annotate(revision=Subquery(reader._revisions))
        .values_list('pk', 'created', 'revision')
    )
    return {pk: member_cache.get(reader.map, pk, created, number) for pk, created, number in rows}


def comparable(member):
    return dataclasses.astuple(member)


@pytest.mark.django_db(transaction=True)
def test_members_kept_after_each_committed_batch_equal_a_fresh_read(storm_map):
    scenario, objects, start = storm_map
    hits = 0
    with override_settings(BUSINESS_APP_AUTO_RESOLVE_INCIDENTS=True):
        for first in range(0, len(scenario.events), 7):
            items = storm_items(storm_map, first, 7)
            before = member_cache.stats()['hits']
            for event_id, outcome in decide_events(items):  # commits: the batch keeps what it wrote
                assert not isinstance(outcome, Exception), (event_id, outcome)
            hits += member_cache.stats()['hits'] - before
            keys = list(Incident.objects.values_list('pk', flat=True))
            cached = kept(keys)
            fresh, order = fresh_read(keys)
            for key, entry in cached.items():
                if entry is None:
                    continue
                members, services = entry
                assert [comparable(m) for m, _ in members] == [comparable(m) for m in fresh[key].members], key
                assert [row_id for _, row_id in members] == [order[(m.alert, m.occurrence)] for m in fresh[key].members]
                assert services == fresh[key].services, key
    assert Incident.objects.filter(merged_into__isnull=False).exists(), 'the late switch alert merged nothing'
    assert hits > 20, 'the batches never used the members they kept'


@pytest.mark.django_db(transaction=True)
def test_every_write_to_members_moves_their_revision(storm_map):
    scenario, objects, start = storm_map
    decide_events(storm_items(storm_map))
    member = IncidentEvent.objects.order_by('pk').first()
    incident = member.incident_id
    seen = [revision(incident)]
    assert seen[0] is not None

    def moved():
        now = revision(incident)
        assert now not in seen, 'the members revision did not move'
        seen.append(now)

    IncidentEvent.objects.filter(pk=member.pk).update(status='ok')  # an update through the ORM
    moved()
    with connection.cursor() as cursor:  # raw SQL
        cursor.execute('UPDATE business_application_incidentevent SET score = 0.5 WHERE id = %s', [member.pk])
    moved()
    event = Event.objects.get(pk=member.event_id)
    event.object_id = objects['device:core-2'].pk  # the event now names another object: its node changes
    event.content_type = ContentType.objects.get_for_model(objects['device:core-2'])
    event.save()
    moved()
    Event.objects.filter(pk=member.event_id).update(unmapped_label='renamed')
    moved()
    Event.objects.filter(pk=member.event_id).update(message='a repeat changes no member')  # not a member change
    assert revision(incident) == seen[-1]
    other = Incident.objects.exclude(pk=incident).order_by('pk').first()
    before_other = revision(other.pk)
    IncidentEvent.objects.filter(pk=member.pk).update(incident_id=other.pk)  # an operator moves the event
    moved()
    assert revision(other.pk) != before_other
    IncidentEvent.objects.filter(pk=member.pk).update(incident_id=incident)
    moved()
    Event.objects.get(pk=member.event_id).delete()  # the membership goes with its event
    moved()
    with transaction.atomic():  # a rolled-back change leaves the number as it was
        IncidentEvent.objects.filter(incident_id=incident).update(status='triggered')
        transaction.set_rollback(True)
    assert revision(incident) == seen[-1]


@pytest.mark.django_db(transaction=True)
def test_a_batch_keeps_nothing_another_writer_changed_after_its_read(storm_map):
    scenario, objects, start = storm_map
    decide_events(storm_items(storm_map))
    incident = IncidentEvent.objects.order_by('pk').first().incident_id
    for foreign_write in (False, True):
        with transaction.atomic():
            batch = BatchStore(current_map(), get_settings(), 0.0, (0.0, 0.0))
            batch.get_incident(incident)
            if foreign_write:  # as another process would, between the batch's read and its first member write
                IncidentEvent.objects.filter(incident_id=incident).update(score=0.1)
            batch._claim({incident})
            assert (incident in batch.clean) is not foreign_write


@pytest.mark.django_db(transaction=True)
def test_a_decision_builds_the_members_of_the_incidents_it_changes_only(storm_map):
    """Kept members stay unbuilt until a decision changes their incident; meanwhile the scoring's answers are the
    ones a fresh read gives (``StoredIncident``)."""
    scenario, objects, start = storm_map
    items = storm_items(storm_map, 0, 60)
    for first in range(0, 42, 7):  # decided and kept
        for event_id, outcome in decide_events(items[first : first + 7]):
            assert not isinstance(outcome, Exception), (event_id, outcome)
    settings = get_settings()
    service_map = current_map()
    keys = list(Incident.objects.values_list('pk', flat=True))
    fresh, _ = fresh_read(keys)
    actions = set()
    for event_id, arrival in items[42:]:
        with transaction.atomic():
            now = arrival.timestamp()
            DjangoStore(service_map, settings).live_incidents(now, settings)  # keeps any member it had to read
            store = DjangoStore(service_map, settings)
            live = store.live_incidents(now, settings)
            assert len(live) >= 2
            for state in live:
                assert 'members' in state.__dict__['_unbuilt'], f'incident {state.key} was built by the read'
                expected = fresh[state.key]
                assert (state.triggered(), state.last_activity(), state.member_nodes(), state.root_node) == (
                    expected.triggered(),
                    expected.last_activity(),
                    expected.member_nodes(),
                    expected.root_node,
                )
            event = Event.objects.select_for_update().get(pk=event_id)
            outcome = Correlator(service_map, settings, store).decide(alert_state(event, service_map), now, True)
            actions.add(outcome.action)
            built = {key for key, state in store.cache.items() if 'members' not in state.__dict__.get('_unbuilt', ())}
            assert built <= {outcome.incident, *outcome.merged}, (outcome, built)
            transaction.set_rollback(True)  # each decision against the same kept state
    assert {'joined', 'opened'} & actions, actions
