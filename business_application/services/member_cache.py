"""The members of incidents this process has read, kept until the database says they changed.

Every decision reads the live incidents; an incident behind a failed core switch may hold thousands of members,
and reading them all again for each batch made a storm's cost grow with its incident. The cache keeps, per
incident, the members as ``DjangoStore._load`` builds them from their rows (with their graph nodes and labels
on one map), under the incident's members revision (``IncidentMembersRevision``): PostgreSQL's triggers give
that a new number from one sequence whenever any statement writes a member of the incident or changes the
object of an event that is one, in the transaction that does it. A number is never given twice, so members
kept under the number the database shows now are the members the database holds now, whichever process
wrote them; a number from a transaction that rolled back is simply never seen again.

Entries are dropped when the map changes (nodes and labels are the map's) and when the cache holds more than
``MAX_MEMBERS`` members in all. A decision batch puts the members it wrote back in after it commits
(``BatchStore.remember_members``), so the next batch of a storm reads only the incidents' rows.
"""

import logging
import threading
from types import MappingProxyType

from ..correlation.lifecycle import TRIGGERED, MemberState

__all__ = ('MAX_MEMBERS', 'READ_FACTS', 'Kept', 'clear', 'entry', 'get', 'keep', 'put', 'stats')

logger = logging.getLogger('business_application.services.member_cache')

#: At most this many members are kept in all (about 520 bytes each with their factors: about 100 MB); past it the
#: cache starts again.
MAX_MEMBERS = 200_000

_lock = threading.Lock()
_state = {'map': None, 'entries': {}, 'members': 0}
_stats = {'hits': 0, 'misses': 0, 'puts': 0, 'resets': 0}


def _read_facts():
    member = MemberState(None, 0, None, '', '', 0, 0.0, 0.0)
    return (member.opener, member.score, member.link, MappingProxyType(member.factors))


#: The join facts (``opener``, ``score``, ``link``, ``factors``) of a member as a read leaves them, in a kept row:
#: ``MemberState``'s defaults (``factors`` read-only, as every row read shares it).
READ_FACTS = _read_facts()


def _fields(member, row_id):
    """A member as kept: ``MemberState``'s fields in their order up to ``factors`` (``path`` is not kept: a read
    leaves it empty), then its row id."""
    return (
        member.alert,
        member.occurrence,
        member.node,
        member.label,
        member.status,
        member.severity,
        member.joined_at,
        member.last_activity,
        member.opener,
        member.score,
        member.link,
        member.factors,
        row_id,
    )


class Kept:
    """An incident's members as kept: their rows (``MemberState``'s fields up to ``factors``, then the row id), the
    services in their footprints, and what a decision asks of every live incident without building its members
    (``StoredIncident``): the members' nodes (-1 for none), whether one is failing, the latest activity, the node of
    each alert's first member and the first member naming each unmapped label."""

    __slots__ = ('first_nodes', 'last_activity', 'nodes', 'rows', 'services', 'triggered', 'unmapped')

    def __init__(self, rows, services):
        self.rows = rows
        self.services = frozenset(services)
        self.nodes = [-1 if row[2] is None else row[2] for row in rows]
        self.triggered = any(row[4] == TRIGGERED for row in rows)
        self.last_activity = max((row[7] for row in rows), default=None)
        self.first_nodes, self.unmapped = {}, {}
        for index, row in enumerate(rows):
            self.first_nodes.setdefault(row[0], row[2])
            if row[2] is None:
                self.unmapped.setdefault(row[3], index)

    def members(self, order=None):
        """New ``MemberState`` objects (a decision changes its members in place) with their row ids; ``order``, if
        given, gets each member's row id under (event, occurrence)."""
        members = []
        for row in self.rows:
            member = MemberState(*row[:11], factors=dict(row[11]) if row[11] else {})
            if order is not None:
                order[(row[0], row[1])] = row[12]
            members.append((member, row[12]))
        return members


def entry(service_map, key, created, revision):
    """The ``Kept`` members of the incident under this revision and map, or None."""
    if revision is None:
        return None
    with _lock:
        found = _state['entries'].get(key) if _state['map'] is service_map else None
        if found is None or found[0] != (created, revision):
            _stats['misses'] += 1
            return None
        _stats['hits'] += 1
        return found[1]


def get(service_map, key, created, revision):
    """``([(MemberState, row id)], services)`` of the incident as last kept under this revision and map (its
    members in their order and the services in their footprints), or None."""
    kept = entry(service_map, key, created, revision)
    if kept is None:
        return None
    return kept.members(), set(kept.services)


def put(service_map, key, created, revision, members, services):
    """Keep ``[(MemberState, row id)]`` of an incident and the services of their footprints, as read (or written)
    at this revision on this map."""
    if revision is None:
        return
    rows = tuple(_fields(member, row_id) for member, row_id in members)
    keep(service_map, key, created, revision, Kept(rows, services))


def keep(service_map, key, created, revision, kept):
    """Keep an incident's ``Kept`` members, as read (or written) at this revision on this map."""
    if revision is None:
        return
    rows = kept.rows
    with _lock:
        if _state['map'] is not service_map:
            _reset(service_map)
        entries = _state['entries']
        old = entries.pop(key, None)
        if old is not None:
            _state['members'] -= len(old[1].rows)
        if _state['members'] + len(rows) > MAX_MEMBERS:
            _reset(service_map)
            if len(rows) > MAX_MEMBERS:
                return
        entries[key] = ((created, revision), kept)
        _state['members'] += len(rows)
        _stats['puts'] += 1


def _reset(service_map):
    _state.update(map=service_map, entries={}, members=0)
    _stats['resets'] += 1


def clear():
    """Forget everything (the next reads go to the database)."""
    with _lock:
        _state.update(map=None, entries={}, members=0)


def stats():
    """Counters of this process's cache: hits, misses, puts and resets, and the members it keeps."""
    with _lock:
        return {**_stats, 'members': _state['members'], 'incidents': len(_state['entries'])}
