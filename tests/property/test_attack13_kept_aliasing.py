"""Attack round 13: a StoredIncident's summary answers must not hand out the process-wide ``member_cache.Kept`` state.

``IncidentState.member_nodes()`` builds a new list at each call, so a caller may treat it as its own. A
``StoredIncident`` whose members were not built returned ``Kept.nodes`` on 3388c84: the very list the member cache
keeps for every later decision of the process (and every thread of it), so changing the answer of one decision
changed the scoring of all the next ones. It now returns a copy. No Django is needed.
"""

from business_application.correlation.lifecycle import MemberState
from business_application.services import member_cache
from business_application.services.stored_incident import StoredIncident

FIELDS = {'key': 7, 'opened_at': 0.0, 'status': 'open', 'severity': 2}


def member(alert, node):
    return MemberState(
        alert=alert,
        occurrence=1,
        node=node,
        label=f'server:{alert}',
        status='triggered',
        severity=2,
        joined_at=1.0,
        last_activity=2.0,
    )


def read(the_map):
    """The incident as the next decision's ``DjangoStore._load`` reads it (kept, members not built)."""
    return StoredIncident.read(dict(FIELDS), member_cache.entry(the_map, 7, 'created', 42), {}, lambda key: {})


def test_member_nodes_of_one_decision_do_not_leak_into_the_next():
    the_map = object()
    member_cache.clear()
    try:
        member_cache.put(the_map, 7, 'created', 42, [(member(1, 5), 10), (member(2, None), 11)], {5})
        first = read(the_map)
        answer = first.member_nodes()
        assert answer == [5, -1]
        answer.append(99)  # the caller's own list, as IncidentState.member_nodes() gives it
        answer[0] = 0

        second = read(the_map)  # the next decision, same revision
        assert second.member_nodes() is not answer, 'two decisions share the cache-wide list'
        assert second.member_nodes() == [5, -1]
        assert second.member_nodes() == [m.node if m.node is not None else -1 for m in second.members]
    finally:
        member_cache.clear()


def test_a_stored_incident_is_still_an_incident_state_for_dataclasses_replace():
    """``StoredIncident`` is an ``IncidentState`` (a dataclass); ``dataclasses.replace`` goes through the dataclass's
    ``__init__``, which assigns the deferred fields before ``_unbuilt`` exists."""
    import dataclasses

    the_map = object()
    member_cache.clear()
    try:
        member_cache.put(the_map, 7, 'created', 42, [(member(1, 5), 10)], {5})
        stored = read(the_map)
        copy = dataclasses.replace(stored, status='resolved')
        assert copy.status == 'resolved'
        assert copy.member_nodes() == [5]
        assert stored.status == 'open'
    finally:
        member_cache.clear()
