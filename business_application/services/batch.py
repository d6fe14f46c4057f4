"""Deciding a batch of saved events in one transaction, with the same decisions as one at a time.

``decide_events`` is what the RQ job, the synchronous receiver path and the sweep call. It takes
every decision lock of the batch at once (ascending, as ``lock_decisions`` does), locks the event
rows with one query, reads the live incidents once for the whole batch into one ``BatchStore``
shared by its events, decides each event in arrival order with the same ``Correlator`` as
``process_event``, and writes what can wait (new members, member and incident updates, affected
services, timeline entries, event bookkeeping) with a few bulk queries at the end.

Identical decisions (PRODUCT rule 14) rest on three facts: the batch holds the locks of every
component its events touch, so no other decision changes those incidents meanwhile; every write
goes through the store, which keeps its cached incidents exactly as a fresh read would return them
(members in ``joined_at, pk`` order, the event-to-incident memberships); and the one live query
uses the batch's earliest moment, a superset of what each event's own query would return, which
``IncidentState.is_live`` then narrows per event as ``DjangoStore.live_incidents`` does.

If any event of the batch fails, the whole batch rolls back and its events are decided one at a
time by ``process_event``, so one bad event never loses the others.
"""

import bisect
import dataclasses
import heapq
import itertools
import logging

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import DateTimeField, F, Subquery, Value
from django.db.models.functions import Greatest
from rq.timeouts import BaseTimeoutException

from ..correlation.lifecycle import JOIN_FACTS, MemberState
from ..models import Event, Incident, IncidentEvent, IncidentMembersRevision, Maintenance
from ..notifications import OUTCOME_ACTIONS, notify
from ..settings import get_settings
from . import clock, member_cache
from .bulk import update_rows
from .graph_loader import current_map
from .incident_service import (
    KIND_MODELS,
    LOCK_FIELDS,
    DjangoStore,
    LockMoved,
    alert_state,
    check_lock,
    decision_fields,
    decision_keys,
    from_epoch,
    process_event,
    take_locks,
    to_epoch,
)

__all__ = ('BatchStore', 'decide_events')

logger = logging.getLogger('business_application.services.batch')


def read_defaults():
    """A member's join facts as a read leaves them (``DjangoStore``): ``MemberState``'s defaults, new each time."""
    return {
        field.name: field.default if field.default_factory is dataclasses.MISSING else field.default_factory()
        for field in dataclasses.fields(MemberState)
        if field.name in JOIN_FACTS
    }


#: Order key of members inserted by this batch: after every stored member (their ids come later).
NEW_MEMBER_BASE = 1 << 62


class BatchStore(DjangoStore):
    """A ``DjangoStore`` shared by the events of one batch: reads once, writes at ``flush``.

    Incident updates are merged per incident (the last value of each field wins, as the queryset
    updates one at a time would leave it); ``last_activity_at`` keeps the latest activity, as
    ``_touch`` does. A merge flushes first, because it moves member rows in the database.
    """

    def __init__(self, service_map, settings, earliest, event_times):
        super().__init__(service_map, settings)
        self.earliest = earliest
        self.event_times = event_times
        self.windows: dict | None = None
        self.live_keys: list | None = None
        self.memberships: dict[tuple, int] = {}
        self.order: dict[tuple, int] = {}
        #: Incidents whose members a merge extended (sorted whole at ``settle``), and how many members each
        #: incident had appended since the last ``settle`` (put in place one by one).
        self.touched: set = set()
        self.appended: dict = {}
        self.new_members: dict[tuple, IncidentEvent] = {}
        self.member_changes: dict[tuple, tuple] = {}
        self.incident_changes: dict[int, dict] = {}
        self.activity: dict[int, float] = {}
        self.services: set[tuple[int, int]] = set()
        self.sequence = itertools.count(NEW_MEMBER_BASE)
        #: Incidents whose members the batch writes, and which of them it knows the members of for sure (their
        #: revision did not move between its read and its first write); the row ids of the members it inserted.
        self.claimed: set = set()
        self.member_incidents: dict = {}  # the incidents of ``member_changes``
        self.clean: set = set()
        self.row_ids: dict[tuple, int] = {}
        self.written: set = set()

    # Reads

    def in_maintenance(self, nodes, at):
        """As ``DjangoStore.in_maintenance``, from the windows covering the batch's event times, read once."""
        if self.windows is None:
            self.windows = {}
            rows = Maintenance.objects.filter(
                status__in=('planned', 'in-progress'),
                start__lte=from_epoch(self.event_times[1]),
                end__gte=from_epoch(self.event_times[0]),
            ).values_list('content_type_id', 'object_id', 'start', 'end')
            for content_type_id, object_id, start, end in rows:
                self.windows.setdefault((content_type_id, object_id), []).append((start, end))
        moment = from_epoch(at)
        for node in nodes:
            kind, pk = self.map.keys[node]
            app_label, model = KIND_MODELS[kind]
            content_type = ContentType.objects.get_by_natural_key(app_label, model)
            for start, end in self.windows.get((content_type.pk, pk), ()):
                if start <= moment <= end:
                    return True
        return False

    def live_incidents(self, now, settings):
        if self.live_keys is None:
            self.live_keys = [state.key for state in super().live_incidents(self.earliest, settings)]
        candidates = {key: self.cache[key] for key in self.live_keys}
        candidates.update(self.cache)
        live = [state for state in candidates.values() if state.is_live(now, settings)]
        return sorted(live, key=lambda state: (state.opened_at, state.key))

    def incident_of(self, event_id, occurrence):
        """The incident holding this occurrence of the event, as ``alert_state`` would read it now."""
        return self.memberships.get((event_id, occurrence))

    # Writes

    def _changing(self, *keys):
        """Only noted: nothing is written before ``flush``, which takes the snapshots of all of them at once."""
        self.events.note(*keys)

    def _update_incident(self, key, changes):
        self.incident_changes.setdefault(key, {}).update(changes)

    def _add_services(self, key, service_keys):
        self.services.update((key, pk) for pk in service_keys)

    def add_member(self, incident, member):
        identity = (member.alert, member.occurrence)
        self._changing(incident.key)
        self.new_members[identity] = self._member_row(incident, member)
        self.memberships[identity] = incident.key
        self.order[identity] = next(self.sequence)
        self.appended[incident.key] = self.appended.get(incident.key, 0) + 1
        self._touch(incident.key, member.last_activity)

    def save_member(self, incident, member):
        identity = (member.alert, member.occurrence)
        values = (member.status, member.severity, member.last_activity)
        self._changing(incident.key)
        if identity in self.new_members:
            row = self.new_members[identity]
            row.status, row.severity, row.last_activity_at = self._member_values(*values)
        else:
            self.member_changes[identity] = values
            self.member_incidents[incident.key] = True
        self._touch(incident.key, member.last_activity)

    def _touch(self, key, activity):
        self.activity[key] = max(activity, self.activity.get(key, activity))

    def move_members(self, source, target):
        self._changing(source.key, target.key)
        self.flush()
        self._claim({source.key, target.key})
        if source.key not in self.clean:  # the target gets the source's members as the database holds them
            self.clean.discard(target.key)
        super().move_members(source, target)
        for member in source.members:
            self.memberships[(member.alert, member.occurrence)] = target.key
        self.touched.add(target.key)

    def settle(self):
        """After each event: members back in the order a fresh read returns them (``joined_at``, then row id).

        The members of an incident are in that order after each ``settle``, and a decision only appends to them
        (a join, an opening) or extends them (a merge, which sorts the whole list). Appended members are put in
        place one by one, so a join costs a search, not a sort of thousands of members."""
        for key in self.touched:
            state = self.cache.get(key)
            if state is not None:
                state.members.sort(key=self._member_order)
        for key, count in self.appended.items():
            state = self.cache.get(key)
            if state is None or key in self.touched:
                continue
            tail = state.members[-count:]
            del state.members[-count:]
            for member in tail:
                bisect.insort(state.members, member, key=self._member_order)
        self.touched.clear()
        self.appended.clear()

    def _member_order(self, member):
        return member.joined_at, self.order.get((member.alert, member.occurrence), 0)

    def flush(self):
        """Write everything pending, in the order the one-at-a-time writes would have reached the same rows."""
        self.events.snapshot(loud=self.incident_changes.keys() | {key for key, _ in self.services})
        self._claim({row.incident_id for row in self.new_members.values()} | set(self.member_incidents))
        if self.new_members:
            IncidentEvent.objects.bulk_create(list(self.new_members.values()))
            for identity, row in self.new_members.items():
                self.row_ids[identity] = row.pk
            self.written.update(self.new_members)
            self.new_members = {}
        if self.member_changes:
            self.written.update(self.member_changes)
            self._write_member_changes()
            self.member_incidents = {}
        for key in sorted(self.incident_changes.keys() | self.activity.keys()):
            changes = self.incident_changes.get(key, {})
            if key in self.activity:  # _touch's "if later", in the same statement (GREATEST skips a NULL)
                moment = Value(from_epoch(self.activity[key]), output_field=DateTimeField())
                changes['last_activity_at'] = Greatest(F('last_activity_at'), moment)
            self._incident_update(key, changes)
        self.incident_changes, self.activity = {}, {}
        if self.services:
            through = self._services_model()
            through.objects.bulk_create(
                [through(incident_id=key, technicalservice_id=pk) for key, pk in sorted(self.services)],
                ignore_conflicts=True,
            )
            self.services = set()
        super().flush()

    def _claim(self, keys):
        """Before the batch first writes members of these incidents: lock their members revisions, and note those
        still at the revision they were read at, or opened by this batch. For those, the members the batch holds
        at its end are what the database holds at the revision it ends with (``remember_members``); another
        writer's change, in between, makes the batch forget them instead."""
        keys = set(keys) - self.claimed
        if not keys:
            return
        self.claimed |= keys
        locked = dict(
            IncidentMembersRevision.objects.select_for_update()
            .filter(incident_id__in=keys)
            .values_list('incident_id', 'revision')
        )
        for key in keys:
            read = self.revisions.get(key)
            if key in self.opened_here or (read is not None and read[1] is not None and locked.get(key) == read[1]):
                self.clean.add(key)

    def remember_members(self):
        """Once the batch is written: keep the members of the incidents it wrote them to (``member_cache``), under
        the revision they now have, for the next decisions of this process, after the batch commits."""
        keys = self.clean & set(self.cache)
        if not keys:
            return
        rows = Incident.objects.filter(pk__in=keys).annotate(revision=Subquery(self._revisions))
        entries = []
        for key, created, revision in rows.values_list('pk', 'created', 'revision'):
            state = self.cache[key]
            members = []
            for member in state.members:
                identity = (member.alert, member.occurrence)
                if identity in self.written:  # as a read would return it: times to the microsecond, no join facts
                    member = dataclasses.replace(
                        member,
                        joined_at=to_epoch(from_epoch(member.joined_at)),
                        last_activity=to_epoch(from_epoch(member.last_activity)),
                        **read_defaults(),
                    )
                members.append((member, self.row_ids.get(identity) or self.order[identity]))
            services = state.services if state.members else set()
            entries.append((key, created, revision, members, services))

        def keep():
            for entry in entries:
                member_cache.put(self.map, *entry)

        transaction.on_commit(keep)

    def _write_member_changes(self):
        identities = sorted(self.member_changes)
        values = [self._member_values(*self.member_changes[identity]) for identity in identities]
        table = IncidentEvent._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE {table} AS m SET status = c.status, severity = c.severity, '  # noqa: S608 - our table
                'last_activity_at = c.activity FROM (SELECT unnest(%s::bigint[]) AS event_id, '
                'unnest(%s::integer[]) AS occurrence, unnest(%s::varchar[]) AS status, '
                'unnest(%s::varchar[]) AS severity, unnest(%s::timestamptz[]) AS activity) AS c '
                'WHERE m.event_id = c.event_id AND m.occurrence = c.occurrence',
                [
                    [identity[0] for identity in identities],
                    [identity[1] for identity in identities],
                    [value[0] for value in values],
                    [value[1] for value in values],
                    [value[2] for value in values],
                ],
            )
        self.member_changes = {}


def decide_events(items, settings=None, instances=None, raise_errors=False, queued=None):
    """Decide saved events in one go; returns ``[(event_id, Outcome or the exception it raised)]`` in order.

    ``items`` are ``(event_id, now)`` pairs in arrival order (``now`` a datetime, or None for the
    current time); an event may appear more than once. ``queued`` (by default: whether an item's ``now`` is
    given) says each decision was queued for the notification that came at its ``now``
    (``Correlator.decide``). ``instances`` maps event ids to lists of the caller's ``Event`` objects, which
    get the bookkeeping written. With ``raise_errors`` the one-at-a-time retry after a failed batch raises
    the first error (the synchronous receiver path, whose request then fails as a whole) instead of
    returning it.
    """
    settings = settings or get_settings()
    items = [(event_id, now or clock.now(), now is not None if queued is None else queued) for event_id, now in items]
    if not items:
        return []
    try:
        with transaction.atomic():
            results, notices, events = _decide_together(items, settings, instances or {})
            for incident, action in notices:
                notify(incident, action)
        events.queue()  # once the batch is written: a batch rolled back queues nothing
        return results
    except LockMoved as moved:
        logger.info('event %s changed object before the batch locked it; deciding the batch one at a time', moved)
    except BaseTimeoutException:  # the job's time is up (RQ's alarm): it ends, and the sweep decides its events
        raise
    except Exception:
        logger.warning('deciding a batch of %s events together failed; deciding them one at a time', len(items))
        logger.debug('the batch failure', exc_info=True)
    results = []
    for event_id, now, one_queued in items:
        targets = (instances or {}).get(event_id) or [None]
        try:
            outcome = process_event(event_id, now=now, settings=settings, instance=targets[0], queued=one_queued)
            results.append((event_id, outcome))
        except BaseTimeoutException:
            raise
        except Exception as error:
            if raise_errors:
                raise
            results.append((event_id, error))
            continue
        for other in targets[1:]:
            for name in EVENT_FIELDS:
                setattr(other, name, getattr(targets[0], name))
    return results


def _decide_together(items, settings, instances):
    service_map = current_map()
    ids = sorted({event_id for event_id, _, _ in items})
    rows = {row['pk']: row for row in Event.objects.filter(pk__in=ids).values('pk', *LOCK_FIELDS)}
    held = set().union(*(decision_keys(service_map, row) for row in rows.values()))
    take_locks(held)
    events = {
        event.pk: event
        for event in Event.objects.select_for_update(of=('self',))
        .select_related('content_type', 'event_source')
        .filter(pk__in=ids)
        .order_by('pk')
    }
    # An event whose object changed before its row was locked: the batch is decided one at a time.
    for event in events.values():
        check_lock(service_map, event, held, retry=True)
    # The incident of each one's occurrence is read from the store before each decision (``refresh_incident``).
    alerts = {event_id: alert_state(event, service_map, incident=no_incident) for event_id, event in events.items()}
    states = [state for alert in alerts.values() for state in alert.pending]
    # The times maintenance is looked up at, and the earliest moment a decision is taken at (a stored state is
    # decided as of its arrival).
    times = [alert.event_time for alert in alerts.values()] + [state.event_time for state in states] or [0.0]
    moments = [to_epoch(now) for _, now, _ in items] + [state.arrival for state in states]
    store = BatchStore(service_map, settings, min(moments), (min(times), max(times)))
    for event_id, occurrence, incident_id in IncidentEvent.objects.filter(event_id__in=events).values_list(
        'event_id', 'occurrence', 'incident_id'
    ):
        store.memberships[(event_id, occurrence)] = incident_id

    from ..correlation.lifecycle import Correlator

    correlator = Correlator(service_map, settings, store)
    # How far each event's stored states are decided in this batch: up to its latest queued item, or all.
    until = {}
    for event_id, now, queued in items:
        until[event_id] = max(until.get(event_id, 0.0), to_epoch(now) if queued else float('inf'))
    # States that came at the same moment (one request's alerts) are decided in the order of the batch's items.
    position = {}
    for index, (event_id, _, _) in enumerate(items):
        position.setdefault(event_id, index)
    waiting = [(alert.pending[0].arrival, position[key], key) for key, alert in alerts.items() if alert.pending]
    heapq.heapify(waiting)
    decided = {}  # each event's steps decided since its previous item
    written, results, notices = {}, [], []
    for event_id, now, queued in items:
        moment = to_epoch(now)
        # Every event's stored states that came by this moment first, as they came, before any later one.
        while waiting and (not queued or waiting[0][0] <= moment):
            arrival, _, key = heapq.heappop(waiting)
            alert = alerts[key]
            if not alert.pending or alert.pending[0].arrival != arrival:
                continue  # already decided, with its event's own decision
            if arrival > until[key]:
                continue  # its own decision is queued, after this batch; so are its later states
            refresh_incident(alert, store)
            decided.setdefault(key, []).append(correlator.decide_next(alert))
            store.settle()
            if alert.pending:
                heapq.heappush(waiting, (alert.pending[0].arrival, position[key], key))
        alert = alerts.get(event_id)
        if alert is None:
            results.append((event_id, Event.DoesNotExist(f'event {event_id} was deleted before it was decided')))
            continue
        # As read now: an earlier decision of the batch may have moved its occurrence (a merge).
        refresh_incident(alert, store)
        outcome = correlator.decide(alert, moment, queued, decided=decided.pop(event_id, ()))
        store.settle()
        written[event_id] = decision_fields(alert)
        results.append((event_id, outcome))
        for step in outcome.steps():
            action = OUTCOME_ACTIONS.get(step.action)
            if action is not None:
                notices.append((step.incident, action))
    store.flush()
    store.remember_members()
    _write_events(events, written, instances)
    return results, notices, store.events


def no_incident(event_id, occurrence):
    return None


def refresh_incident(alert, store):
    alert.incident = store.incident_of(alert.key, alert.occurrence) if alert.occurrence else None


#: The event columns a decision writes (``process_event`` writes the same).
EVENT_FIELDS = ('status', *Event.BOOKKEEPING_FIELDS)


def _write_events(events, written, instances):
    """The events' bookkeeping in one query, as ``process_event`` writes it (``last_updated`` untouched)."""
    changed = []
    for event_id, values in written.items():
        event = events[event_id]
        for name, value in values.items():
            setattr(event, name, value)
        changed.append(event)
        for instance in instances.get(event_id, ()):
            for name, value in values.items():
                setattr(instance, name, value)
    if changed:
        update_rows(Event, changed, EVENT_FIELDS)
