"""An incident read with kept members answers the scoring's questions as its built members would.

``DjangoStore`` reads every live incident at each decision as a ``StoredIncident`` whose members stay unbuilt
until a decision reads them; meanwhile its answers (failing or not, latest activity, the members' nodes, the first
member naming an unmapped label, each alert's first node, liveness) come from ``member_cache.Kept``'s summary.
Here, for any members, those answers equal the ones an ``IncidentState`` holding the same members gives, before
and after the members are built, and building gives the very members that were kept, in their order, with
their row ids. No Django is needed: the store's reads are replaced by what they would return.
"""

from hypothesis import given, settings
from hypothesis import strategies as st

from business_application.correlation.lifecycle import IncidentState, MemberState
from business_application.correlation.settings import Settings
from business_application.services.member_cache import Kept, _fields
from business_application.services.stored_incident import StoredIncident

LABELS = ('server:a', 'server:b', 'event:9', 'device:3')


@st.composite
def member_lists(draw: st.DrawFn) -> list[MemberState]:
    members = []
    for _ in range(draw(st.integers(0, 12))):
        members.append(
            MemberState(
                alert=draw(st.integers(1, 5)),
                occurrence=draw(st.integers(1, 3)),
                node=draw(st.one_of(st.none(), st.integers(0, 40))),
                label=draw(st.sampled_from(LABELS)),
                status=draw(st.sampled_from(('triggered', 'ok', 'suppressed'))),
                severity=draw(st.integers(0, 4)),
                joined_at=draw(st.floats(0, 5_000)),
                last_activity=draw(st.floats(0, 5_000)),
                opener=draw(st.booleans()),
                score=draw(st.one_of(st.none(), st.floats(0, 1))),
                link=draw(st.sampled_from(('', 'service', 'dependency'))),
                factors=draw(st.sampled_from(({}, {'link': 'service', 'weight': 0.8}))),
            )
        )
    return members


def answers(incident: IncidentState, now: float, window: float) -> tuple:
    return (
        incident.triggered(),
        incident.last_activity(),
        list(incident.member_nodes()),
        [incident.first_unmapped(label) for label in LABELS],
        [incident.node_of_alert(alert) for alert in range(7)],
        incident.is_live(now, Settings(correlation_window_minutes=window)),
    )


@settings(max_examples=300, deadline=None)
@given(
    members=member_lists(),
    opened_at=st.floats(0, 5_000),
    now=st.floats(0, 12_000),
    window=st.sampled_from((1.0, 15.0, 90.0)),
)
def test_a_stored_incident_answers_as_its_members_would(members, opened_at, now, window):
    row_ids = [100 + position for position in range(len(members))]
    kept = Kept(tuple(_fields(member, row_id) for member, row_id in zip(members, row_ids, strict=True)), frozenset({7}))
    fields = {'key': 1, 'opened_at': opened_at, 'status': 'open', 'severity': 2}
    plain = IncidentState(**fields, members=list(members))
    blast_reads = []

    def blast(text):
        blast_reads.append(text)
        return {'blast_down': [3], 'blast_degraded': [4, 5], 'blast_capped': True}

    order = {}
    stored = StoredIncident.read(fields, kept, order, blast, '{"down": "as stored"}')
    assert answers(stored, now, window) == answers(plain, now, window)
    assert order == {}, 'answering from the summary builds no member'

    assert stored.members == members
    assert stored.services == {7}
    assert order == dict(((m.alert, m.occurrence), row_id) for m, row_id in zip(members, row_ids, strict=True))
    assert answers(stored, now, window) == answers(plain, now, window)
    assert blast_reads == []
    assert (stored.blast_down, stored.blast_degraded, stored.blast_capped) == ([3], [4, 5], True)
    assert stored.blast_degraded == [4, 5]
    assert blast_reads == ['{"down": "as stored"}'], 'the blast radius read with the row is parsed once, when asked'


@settings(max_examples=100, deadline=None)
@given(members=member_lists(), extra=member_lists())
def test_a_stored_incident_follows_its_members_once_built(members, extra):
    """After the members are built, changing them in place (a join, a clear) changes the answers too."""
    kept = Kept(tuple(_fields(member, 1) for member in members), frozenset())
    fields = {'key': 2, 'opened_at': 10.0, 'status': 'open', 'severity': 1}
    stored = StoredIncident.read(fields, kept, {}, lambda text: {})
    stored.members.extend(extra)
    for member in stored.members:
        member.status = 'ok'
    plain = IncidentState(**fields, members=[*members, *extra])
    for member in plain.members:
        member.status = 'ok'
    assert answers(stored, 5_000.0, 15.0) == answers(plain, 5_000.0, 15.0)
    replaced = StoredIncident.read(fields, kept, {}, lambda text: {})
    replaced.members = list(extra)
    assert answers(replaced, 5_000.0, 15.0) == answers(IncidentState(**fields, members=list(extra)), 5_000.0, 15.0)
    assert replaced.services == set(), 'assigning the members leaves the services as a read left them'
