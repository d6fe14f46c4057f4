"""A batch keeps each cached incident's members in the order a fresh read returns them.

``BatchStore.settle`` puts the members a decision appended in place one by one instead of sorting
every member of the incident again; these tests drive it as the lifecycle does (append, then
``add_member``; a merge extends the target after ``move_members`` marked it) and compare with a full
sort by ``joined_at`` and row id. No database: ``add_member`` only records what ``flush`` writes.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from business_application.correlation.lifecycle import OPEN, IncidentState, MemberState
from business_application.services.batch import BatchStore


def triggered(alert, joined_at):
    """A member of an unmapped alert still triggered, joined at ``joined_at``."""
    return MemberState(
        alert=alert,
        occurrence=1,
        node=None,
        label='x',
        status='triggered',
        severity=1,
        joined_at=joined_at,
        last_activity=joined_at,
    )


def stored_incident(key, joined, store):
    """An incident as ``_load`` leaves it: members in (joined_at, row id) order, their row ids noted."""
    incident = IncidentState(key=key, opened_at=0.0, status=OPEN, severity=1)
    for row_id, joined_at in sorted(((key * 1000 + n, t) for n, t in enumerate(joined)), key=lambda p: (p[1], p[0])):
        member = triggered(row_id, joined_at)
        store.order[(member.alert, member.occurrence)] = row_id
        incident.members.append(member)
    store.cache[key] = incident
    return incident


def fresh_read_order(store, incident):
    return sorted(incident.members, key=lambda m: (m.joined_at, store.order[(m.alert, m.occurrence)]))


times = st.integers(0, 20).map(float)
steps = st.lists(
    st.one_of(
        st.tuples(st.just('join'), st.integers(0, 2), times),
        st.tuples(st.just('merge'), st.integers(0, 2), st.integers(0, 2)),
        st.just(('settle',)),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(times, max_size=8), min_size=3, max_size=3), steps)
def test_members_stay_in_the_order_a_fresh_read_returns(joined, script):
    store = BatchStore(service_map=None, settings=None, earliest=0.0, event_times=(0.0, 0.0))
    incidents = [stored_incident(key + 1, joined[key], store) for key in range(3)]
    alerts = iter(range(10_000, 20_000))
    for step in script:
        if step[0] == 'join':  # as Correlator._join: the member goes last, then the store hears of it
            incident, at = incidents[step[1]], step[2]
            member = triggered(next(alerts), at)
            incident.members.append(member)
            store.add_member(incident, member)
        elif step[0] == 'merge' and step[1] != step[2]:  # as Correlator._merge after BatchStore.move_members
            source, target = incidents[step[1]], incidents[step[2]]
            store.touched.add(target.key)
            target.members.extend(source.members)
            source.members = []
        elif step[0] == 'settle':
            store.settle()
            for incident in incidents:
                assert incident.members == fresh_read_order(store, incident)
    store.settle()
    for incident in incidents:
        assert incident.members == fresh_read_order(store, incident)
