"""Correlating saved events into incidents, in the database, one event at a time under a lock.

``process_event`` is the single entry point: the post_save signal, the REST automation endpoints,
the management command and the scenario replay all call it. It runs the shared lifecycle
(``correlation.lifecycle``) against ``DjangoStore``, which reads live incidents with a fixed
number of queries and writes decisions with queryset updates, so a person's concurrent edit of an
incident's commander or description is never overwritten.
"""

import functools
import json
import logging
import zlib
from datetime import UTC, datetime

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import BigIntegerField, Exists, Func, Max, OuterRef, Q, Subquery, TextField
from django.db.models.functions import Cast

from ..choices import IncidentStatusChoices
from ..correlation.kinds import SEVERITIES, severity_rank
from ..correlation.lifecycle import (
    MERGED,
    OPEN,
    RESOLVED,
    AlertState,
    Correlator,
    IncidentState,
    PendingState,
)
from ..correlation.mapbuilder import KIND_PREFIX
from ..models import Event, Incident, IncidentEvent, IncidentMembersRevision, IncidentTimelineEntry, Maintenance
from ..notifications import OUTCOME_ACTIONS, notify
from ..settings import get_settings
from . import clock, member_cache
from .graph_loader import MODEL_KINDS, current_map, node_finder, node_of
from .incident_events import IncidentEvents
from .stored_incident import StoredIncident

__all__ = (
    'LOCK_NAMESPACE',
    'DjangoStore',
    'IncidentAutoCreationService',
    'lock_decisions',
    'lock_key',
    'process_event',
)

logger = logging.getLogger('business_application.services.incident_service')

#: First half of the PostgreSQL advisory locks that serialise decisions within one map component.
LOCK_NAMESPACE = 0x4E42
KIND_MODELS = {kind: model for model, kind in MODEL_KINDS.items()}
PREFIX_KINDS = {prefix: kind for kind, prefix in KIND_PREFIX.items()}


def to_epoch(moment):
    return None if moment is None else moment.timestamp()


def from_epoch(seconds):
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=UTC)


class EpochMicros(Func):
    """A timestamp column as whole microseconds since the epoch. Read as an integer it costs a C conversion, where
    Django's loader of a timestamp costs microseconds a value: reading an incident's thousands of members again
    (another worker wrote them) was mostly that."""

    template = '(EXTRACT(EPOCH FROM %(expressions)s) * 1000000)::bigint'
    output_field = BigIntegerField()


def from_micros(micros):
    """What ``to_epoch`` gives for the timestamp ``EpochMicros`` read, to the bit: both divide whole microseconds by
    a million."""
    return None if micros is None else micros / 1_000_000


def blast_nodes(service_map, blast, side):
    """The nodes of one side (``down``, ``degraded``) of a stored blast radius that the map still holds."""
    nodes = []
    for item in (blast or {}).get(side, ()):
        kind = PREFIX_KINDS.get(item.get('type'))
        if kind is not None and item.get('id') is not None:
            node = service_map.node(kind, item['id'])
        else:  # written before ids were recorded
            node = service_map.by_label.get(f'{item.get("type")}:{item.get("name")}')
        if node is not None:
            nodes.append(node)
    return nodes


def blast_fields(service_map, text):
    """A stored blast radius (its JSON text, read with the incident's row) as ``IncidentState``'s blast fields."""
    blast = None if text is None else json.loads(text)
    return {
        'blast_down': blast_nodes(service_map, blast, 'down'),
        'blast_degraded': blast_nodes(service_map, blast, 'degraded'),
        'blast_capped': bool((blast or {}).get('capped')),
    }


class DjangoStore:
    """The lifecycle's ``Store`` on NetBox's database; incidents read once per decision are cached.

    A member read from the database carries what decisions use: its alert, occurrence, node, label, status,
    severity and times. Why it joined (``lifecycle.JOIN_FACTS``) is written once, when it joins, and never read back
    by a decision: a read leaves those at their defaults (``MemberState``), which spares decoding every member's
    factors when a large incident is read again."""

    #: Whether members come from, and go to, this process's ``member_cache`` (else always from the database).
    kept = True

    def __init__(self, service_map, settings):
        self.map = service_map
        self.settings = settings
        self.cache: dict[int, IncidentState] = {}
        self.db_status: dict[int, str] = {}
        self.timeline: list[IncidentTimelineEntry] = []
        self.resolved_from: dict[int, str] = {}  # the status each incident resolved here had, for its timeline
        #: Each loaded member's row id by (event, occurrence): the tie-break of the members' order.
        self.order: dict[tuple, int] = {}
        #: The incidents this decision opens and changes, for NetBox's event rules (queued after it is written).
        self.events = IncidentEvents()
        #: Each loaded incident's (created, members revision), the key its members are kept under (``member_cache``).
        self.revisions: dict[int, tuple] = {}
        self.opened_here: set[int] = set()
        #: Turns a stored blast radius into fields; it holds the map, not the store (a store is freed by reference
        #: counting when its decision ends, no cycle through its incidents).
        self.parse_blast = functools.partial(blast_fields, service_map)

    # Reads

    def live_incidents(self, now, settings):
        window_start = from_epoch(now - settings.window_seconds)
        triggered = IncidentEvent.objects.filter(incident=OuterRef('pk'), status='triggered')
        queryset = Incident.objects.filter(status__in=IncidentStatusChoices.OPEN).filter(
            Q(Exists(triggered)) | Q(last_activity_at__gte=window_start)
        )
        if settings.max_incident_age_hours:
            queryset = queryset.filter(detected_at__gte=from_epoch(now - settings.max_age_seconds))
        incidents = self._load(queryset.order_by('detected_at', 'pk'))
        return [incident for incident in incidents if incident.is_live(now, settings)]  # the SQL narrowed them

    def get_incident(self, key):
        if key not in self.cache:
            loaded = self._load(Incident.objects.filter(pk=key))
            if not loaded:
                return None
        return self.cache[key]

    def _load(self, queryset):
        """The incidents of ``queryset`` (rows read now), each with its members: kept by ``member_cache`` under the
        members revision the rows show, else read for all of them with one query (and then kept). Members are built
        from their rows when a decision first asks for them (``StoredIncident``)."""
        rows = list(
            queryset.annotate(
                members_revision=Subquery(self._revisions),
                # As text, parsed only if a decision asks (``StoredIncident``): it recomputes it before writing it.
                blast_text=Cast('blast_radius', output_field=TextField()),
                detected=EpochMicros('detected_at'),
                resolved=EpochMicros('resolved_at'),
                resolved_event=EpochMicros('resolved_event_time'),
                updated=EpochMicros('last_updated'),
            ).values(
                'pk',
                'created',
                'members_revision',
                'detected',
                'status',
                'severity',
                'title',
                'root_cause_event_id',
                'root_cause',
                'resolved',
                'resolved_event',
                'updated',
                'merged_into_id',
                'blast_text',
            )
        )
        fresh = [row for row in rows if row['pk'] not in self.cache]
        kept = {}
        for row in fresh:
            key = row['pk']
            self.revisions[key] = (row['created'], row['members_revision'])
            found = self.kept and member_cache.entry(self.map, key, *self.revisions[key])
            kept[key] = found or None
        unread = [key for key, found in kept.items() if found is None]
        if unread:
            kept.update(self._read_members(unread))
        for row in fresh:
            key, status = row['pk'], row['status']
            state = StoredIncident.read(
                {
                    'key': key,
                    'opened_at': from_micros(row['detected']),
                    'status': MERGED
                    if row['merged_into_id']
                    else (OPEN if status in IncidentStatusChoices.OPEN else RESOLVED),
                    'severity': severity_rank(row['severity']),
                    'title': row['title'],
                    'root_alert': row['root_cause_event_id'],
                    'root_label': row['root_cause'],
                    'resolved_at': from_micros(self._resolution_time(row)),
                    'resolved_event_time': from_micros(row['resolved_event']),
                    'merged_into': row['merged_into_id'],
                },
                kept[key],
                self.order,
                self.parse_blast,
                row['blast_text'],
            )
            state.root_node = self._root_node(state)
            self.db_status[key] = status
            self.cache[key] = state
        return [self.cache[row['pk']] for row in rows]

    def _read_members(self, keys):
        """``{incident: member_cache.Kept}`` of these incidents, read with one query, kept for the next decisions.

        The rows become ``Kept`` rows directly, their times read as whole microseconds (``EpochMicros``); a
        ``MemberState`` is made of each only when a decision asks for the incident's members."""
        read = {key: [] for key in keys}
        members = (
            IncidentEvent.objects.filter(incident_id__in=keys)
            .order_by('joined_at', 'pk')
            .values_list(
                'pk',
                'incident_id',
                'event_id',
                'occurrence',
                'status',
                'severity',
                EpochMicros('joined_at'),
                EpochMicros('last_activity_at'),
                'event__content_type_id',
                'event__object_id',
                'event__unmapped_label',
            )
        )
        # Rows as the driver gives them: the ORM would pass every row through its integer converters.
        sql, params = members.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
        find, defaults = node_finder(self.map), member_cache.READ_FACTS
        for row_id, key, alert, occurrence, status, severity, joined, active, type_id, object_id, label in fetched:
            node = find(type_id, object_id)
            read[key].append(
                (
                    alert,
                    occurrence,
                    node,
                    self._label(node, type_id, object_id, label, alert),
                    status,
                    severity_rank(severity),
                    joined / 1_000_000,
                    active / 1_000_000,
                    *defaults,
                    row_id,
                )
            )
        found = {}
        for key, rows in read.items():
            nodes = {row[2] for row in rows}
            services = set()
            for node in nodes:
                services.update(self.map.services_of(node))
            found[key] = member_cache.Kept(tuple(rows), frozenset(services))
            if self.kept:
                member_cache.keep(self.map, key, *self.revisions[key], found[key])
        return found

    @staticmethod
    def _root_node(state):
        """The node of the incident's root cause: its root event's first member (read from the start)."""
        return state.node_of_alert(state.root_alert)

    #: The members revision of the incident a query reads (``IncidentMembersRevision``; NULL before its first member).
    _revisions = IncidentMembersRevision.objects.filter(incident_id=OuterRef('pk')).values('revision')[:1]

    @staticmethod
    def _resolution_time(row):
        """When the incident was resolved: ``resolved_at``, or for one resolved by hand without a time (the edit
        form and the API leave it empty) its last change, so the reopen window applies to it too."""
        if row['resolved'] is None and row['status'] not in IncidentStatusChoices.OPEN and not row['merged_into_id']:
            return row['updated']
        return row['resolved']

    def _label(self, node, content_type_id, object_id, unmapped_label, event_id):
        if node is not None:
            return self.map.labels[node]
        if content_type_id is not None:
            return f'{ContentType.objects.get_for_id(content_type_id).model}:{object_id}'
        return unmapped_label or f'event:{event_id}'  # as alert_state names it

    def in_maintenance(self, nodes, at):
        query = Q()
        for node in nodes:
            kind, pk = self.map.keys[node]
            app_label, model = KIND_MODELS[kind]
            content_type = ContentType.objects.get_by_natural_key(app_label, model)
            query |= Q(content_type=content_type, object_id=pk)
        moment = from_epoch(at)
        return Maintenance.objects.filter(
            query, status__in=('planned', 'in-progress'), start__lte=moment, end__gte=moment
        ).exists()

    # Writes

    def create_incident(self, incident):
        settings = self.settings
        row = Incident.objects.create(
            title='(correlating)',
            status=IncidentStatusChoices.NEW,
            severity=SEVERITIES[incident.severity],
            commander=settings.default_incident_commander,
            reporter='business_application',
            detected_at=from_epoch(incident.opened_at),
            auto_created=True,
            last_activity_at=from_epoch(incident.opened_at),
        )
        self.cache[row.pk] = incident
        self.db_status[row.pk] = row.status
        self.opened_here.add(row.pk)
        self.revisions[row.pk] = (row.created, None)
        self.events.opened(row.pk)
        return row.pk

    def save_incident(self, incident, fields):
        changes = {}
        fields = set(fields)
        if 'status' in fields:
            if incident.status == MERGED:
                changes['status'] = IncidentStatusChoices.CLOSED
            elif incident.status == RESOLVED:
                changes['status'] = IncidentStatusChoices.RESOLVED
            elif self.db_status.get(incident.key) not in IncidentStatusChoices.OPEN:
                changes['status'], incident.resolved_by = last_resolution(incident.key)
            if changes.get('status') == IncidentStatusChoices.RESOLVED:
                self.resolved_from[incident.key] = self.db_status.get(incident.key)
            if 'status' in changes:
                self.db_status[incident.key] = changes['status']
        for name in ('resolved_at', 'resolved_event_time'):
            if name in fields or 'status' in fields:
                changes[name] = from_epoch(getattr(incident, name))
        if 'merged_into' in fields:
            changes['merged_into_id'] = incident.merged_into
        if 'severity' in fields:
            changes['severity'] = SEVERITIES[incident.severity]
        if 'title' in fields:
            changes['title'] = incident.title[:255]
            changes['title_objects'] = [
                [KIND_PREFIX[self.map.keys[node][0]], self.map.keys[node][1], self.map.names[node]]
                for node in self.map.title_nodes(incident.root_node)
            ]
        if 'root' in fields:
            changes['root_cause_event_id'] = incident.root_alert
            changes['root_cause'] = incident.root_label[:300]
        if 'blast' in fields:
            changes['blast_radius'] = self._blast(incident)
        services = 'services' in fields and incident.services
        if changes or services:
            self._changing(incident.key)
        if changes:
            self._update_incident(incident.key, changes)
        if services:
            self._add_services(incident.key, [self.map.keys[node][1] for node in incident.services])

    def _changing(self, *keys):
        """Before writing these incidents: note them for the event rules, with their state before this decision."""
        self.events.note(*keys)
        self.events.snapshot()

    def _update_incident(self, key, changes):
        self._incident_update(key, changes)

    @staticmethod
    def _incident_update(key, changes):
        Incident.objects.filter(pk=key).update(**changes)

    @staticmethod
    def _services_model():
        return Incident.affected_services.through

    def _add_services(self, key, service_keys):
        through = self._services_model()
        through.objects.bulk_create(
            [through(incident_id=key, technicalservice_id=pk) for pk in service_keys], ignore_conflicts=True
        )

    def _blast(self, incident):
        def describe(nodes):
            return [
                {'type': self.map.labels[n].split(':', 1)[0], 'id': self.map.keys[n][1], 'name': self.map.names[n]}
                for n in nodes
            ]

        return {
            'down': describe(incident.blast_down),
            'degraded': describe(incident.blast_degraded),
            'capped': incident.blast_capped,
        }

    def add_member(self, incident, member):
        self._changing(incident.key)
        self._member_row(incident, member).save(force_insert=True)
        self._touch(incident.key, member.last_activity)

    def _member_row(self, incident, member):
        status, severity, last_activity = self._member_values(member.status, member.severity, member.last_activity)
        return IncidentEvent(
            incident_id=incident.key,
            event_id=member.alert,
            occurrence=member.occurrence,
            joined_at=from_epoch(member.joined_at),
            opened_incident=member.opener,
            score=member.score,
            link=member.link,
            factors=member.factors,
            path=[self.map.labels[n] for n in member.path],
            status=status,
            severity=severity,
            last_activity_at=last_activity,
        )

    @staticmethod
    def _member_values(status, severity, last_activity):
        return status, SEVERITIES[severity], from_epoch(last_activity)

    def save_member(self, incident, member):
        status, severity, last_activity = self._member_values(member.status, member.severity, member.last_activity)
        self._changing(incident.key)
        IncidentEvent.objects.filter(event_id=member.alert, occurrence=member.occurrence).update(
            status=status, severity=severity, last_activity_at=last_activity
        )
        self._touch(incident.key, member.last_activity)

    def _touch(self, key, activity):
        Incident.objects.filter(pk=key).filter(
            Q(last_activity_at__isnull=True) | Q(last_activity_at__lt=from_epoch(activity))
        ).update(last_activity_at=from_epoch(activity))

    def move_members(self, source, target):
        self._changing(source.key, target.key)
        IncidentEvent.objects.filter(incident_id=source.key).update(incident_id=target.key)
        latest = IncidentEvent.objects.filter(incident_id=target.key).aggregate(latest=Max('last_activity_at'))
        Incident.objects.filter(pk=target.key).update(last_activity_at=latest['latest'])

    def add_timeline(self, incident, time, kind, message, alert=None, data=None):
        if kind == 'resolved' and incident.key in self.resolved_from:
            data = {**(data or {}), 'previous_status': self.resolved_from[incident.key]}
        self.timeline.append(
            IncidentTimelineEntry(
                incident_id=incident.key,
                time=from_epoch(time),
                kind=kind,
                message=message[:500],
                event_id=alert,
                data=data or {},
            )
        )

    def flush(self):
        if self.timeline:
            IncidentTimelineEntry.objects.bulk_create(self.timeline)
            self.timeline = []


def last_resolution(incident_id):
    """The status a reopened incident returns to, and who had resolved it by hand ('' if its members cleared).

    An incident returns to the status it had when it was resolved (an acknowledged one stays acknowledged), read
    from its latest resolution: the timeline entry the correlator or the Resolve action wrote, or the change-log
    record of an edit that set it resolved, whichever is later. Two small queries, only when an incident reopens.
    """
    from core.models import ObjectChange

    entry = (
        IncidentTimelineEntry.objects.filter(incident_id=incident_id, kind='resolved')
        .order_by('-time', '-pk')
        .values('time', 'data')
        .first()
    )
    change = (
        ObjectChange.objects.filter(
            changed_object_type=ContentType.objects.get_for_model(Incident),
            changed_object_id=incident_id,
            action='update',
            postchange_data__status=IncidentStatusChoices.RESOLVED,
        )
        .exclude(prechange_data__status=IncidentStatusChoices.RESOLVED)
        .order_by('-time', '-pk')
        .values('time', 'user_name', 'prechange_data')
        .first()
    )
    if change is not None and (entry is None or change['time'] > entry['time']):
        previous, by = (change['prechange_data'] or {}).get('status'), change['user_name'] or ''
    elif entry is not None:
        previous, by = (entry['data'] or {}).get('previous_status'), (entry['data'] or {}).get('by', '')
    else:
        previous, by = None, ''
    return (previous if previous in IncidentStatusChoices.OPEN else IncidentStatusChoices.NEW), by


def alert_state(event, service_map, incident=None):
    """The lifecycle's view of a stored event; ``incident(event_id, occurrence)``, if given, says which
    incident holds the occurrence instead of a query (a batch keeps that mapping itself)."""
    where = [event.content_type_id, event.object_id, event.unmapped_label]
    node, label = node_and_label(service_map, where, event.pk)
    held = None
    if event.occurrence and incident is not None:
        held = incident(event.pk, event.occurrence)
    elif event.occurrence:
        held = (
            IncidentEvent.objects.filter(event=event, occurrence=event.occurrence)
            .values_list('incident_id', flat=True)
            .first()
        )
    return AlertState(
        key=event.pk,
        node=node,
        label=label,
        severity=severity_rank(event.criticallity),
        status=event.status,
        event_time=to_epoch(event.event_time or event.last_seen_at),
        last_seen=to_epoch(event.last_seen_at),
        message=event.message,
        processed_status=event.processed_status,
        occurrence=event.occurrence,
        occurrence_started_at=to_epoch(event.occurrence_started_at),
        incident=held,
        cleared_at=to_epoch(event.cleared_at),
        pending=[pending_state(service_map, entry, event.pk) for entry in event.pending_states],
        where=where,
        origin=event.occurrence_object,
    )


def node_and_label(service_map, where, event_id):
    """The graph node of an object named as [content type, object ID, unmapped label], and its label."""
    content_type_id, object_id, unmapped_label = where
    node = node_of(service_map, content_type_id, object_id)
    if node is not None:
        return node, service_map.labels[node]
    if content_type_id is not None:
        return None, f'{ContentType.objects.get_for_id(content_type_id).model}:{object_id}'
    # An event naming no object at all is its own object: it never links to another such event.
    return None, unmapped_label or f'event:{event_id}'


def pending_state(service_map, entry, event_id):
    """A stored, undecided state (``Event.pending_states``) as the correlator takes it."""
    node, label = node_and_label(service_map, entry['object'], event_id)
    return PendingState(
        status=entry['status'],
        arrival=datetime.fromisoformat(entry['at']).timestamp(),
        event_time=datetime.fromisoformat(entry['time']).timestamp(),
        severity=severity_rank(entry['severity']),
        node=node,
        label=label,
        where=entry['object'],
        source=entry,
    )


def decision_fields(alert):
    """The event columns a decision writes, from the correlator's alert (``Event.BOOKKEEPING_FIELDS``
    and the status, which maintenance may have turned to suppressed)."""
    return {
        'status': alert.status,
        'processed_status': alert.processed_status,
        'occurrence': alert.occurrence,
        'occurrence_started_at': from_epoch(alert.occurrence_started_at),
        'cleared_at': from_epoch(alert.cleared_at),
        'pending_states': [state.source for state in alert.pending],
        'occurrence_object': alert.origin,
    }


def lock_key(service_map, event_row):
    """The advisory lock an event's decision takes: its map component, or its unmapped object's name.

    Events in different components can never link, so their decisions run in parallel; events in
    one component are decided one at a time, in any process on any machine sharing the database.
    """
    node = node_of(service_map, event_row['content_type_id'], event_row['object_id'])
    if node is not None:
        return service_map.component(node)
    label = event_row['unmapped_label'] or f'{event_row["content_type_id"]}:{event_row["object_id"]}'
    return -1 - (zlib.crc32(label.encode()) & 0x7FFFFFFF)


def decision_keys(service_map, row):
    """Every lock an event's decision takes: that of the object it names, of the objects its undecided states
    named, and of the object its current occurrence started on (where the incident it changes is).

    ``row`` is a dict (or an ``Event``) with ``LOCK_FIELDS``; the last two may be missing.
    """

    def get(name):
        return row.get(name) if isinstance(row, dict) else getattr(row, name)

    objects = [(get('content_type_id'), get('object_id'), get('unmapped_label'))]
    objects += [entry['object'] for entry in get('pending_states') or ()]
    if get('occurrence_object'):
        objects.append(get('occurrence_object'))
    return {lock_key(service_map, dict(zip(OBJECT_FIELDS, where, strict=True))) for where in objects}


def take_locks(keys):
    """Take decision locks, ascending, in one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            'SELECT count(pg_advisory_xact_lock(%s, key)) FROM (SELECT unnest(%s::integer[]) AS key ORDER BY 1) AS k',
            [LOCK_NAMESPACE, sorted(keys)],
        )


def lock_decisions(rows):
    """Take the decision locks of several events at once, ascending, before any event row is locked.

    ``rows`` are dicts with ``content_type_id``, ``object_id`` and ``unmapped_label`` (the alerts as
    sent), and stored ``Event`` objects or dicts with all of ``LOCK_FIELDS`` (``decision_keys``), so
    that the decision taken in the same transaction needs no other lock. Every path that locks event rows (the REST
    upsert, the receivers) calls this first, so locks are always taken advisory-then-row, all at
    once, and two requests with overlapping alerts cannot deadlock. The locks are transaction-level
    and re-entrant: ``process_event`` takes them again at no cost.
    """
    service_map = current_map()
    take_locks(set().union(*(decision_keys(service_map, row) for row in rows)))


def process_event(event_id, now=None, settings=None, instance=None, queued=None):
    """Correlate one saved event by what changed since it was last processed; returns the lifecycle's Outcome.

    ``now``: the moment to decide at, by default the current time. ``queued`` (by default: whether ``now`` is
    given) says the decision was queued for the notification that came at ``now``, which leaves what came later
    to its own decision (``Correlator.decide``). ``instance``, the caller's ``Event`` object, gets the status
    and bookkeeping just written.
    """
    settings = settings or get_settings()
    queued = now is not None if queued is None else queued
    now = now or clock.now()
    service_map = current_map()
    # Nested in the caller's transaction (which took the locks and holds the row), a retry would not
    # release the lock already taken; the decision then takes the second lock as well.
    nested = connection.in_atomic_block
    for attempt in range(MOVED_RETRIES + 1):
        row = Event.objects.values(*LOCK_FIELDS).get(pk=event_id)
        try:
            return _decide_one(
                event_id, row, now, queued, settings, instance, service_map, not nested and attempt < MOVED_RETRIES
            )
        except LockMoved:
            logger.info('event %s changed object before its decision locked it; deciding it again', event_id)
    raise AssertionError('unreachable: the last attempt takes the second lock instead of retrying')


#: The columns naming an object, in an event's row and in its lock's key.
OBJECT_FIELDS = ('content_type_id', 'object_id', 'unmapped_label')

#: The event columns that choose its decision locks (``decision_keys``).
LOCK_FIELDS = (*OBJECT_FIELDS, 'pending_states', 'occurrence_object')

#: Times a decision starts again when its event's object changed before its row was locked.
MOVED_RETRIES = 3


class LockMoved(Exception):
    """An event's object changed between reading its decision lock and locking its row."""


def check_lock(service_map, event, held, retry):
    """After the row lock: the event's locks are among those taken, or (``retry``) ``LockMoved``, or the
    missing ones are taken now."""
    missing = decision_keys(service_map, event) - held
    if not missing:
        return
    if retry:
        raise LockMoved(event.pk)
    take_locks(missing)
    held.update(missing)


def _decide_one(event_id, row, now, queued, settings, instance, service_map, retry):
    with transaction.atomic():
        keys = decision_keys(service_map, row)
        take_locks(keys)
        event = (
            Event.objects.select_for_update(of=('self',))
            .select_related('content_type', 'event_source')
            .get(pk=event_id)
        )
        check_lock(service_map, event, keys, retry)
        alert = alert_state(event, service_map)
        store = DjangoStore(service_map, settings)
        correlator = Correlator(service_map, settings, store)
        outcome = correlator.decide(alert, to_epoch(now), queued)
        store.flush()
        written = decision_fields(alert)
        Event.objects.filter(pk=event.pk).update(**written)
        for name, value in written.items() if instance is not None else ():
            setattr(instance, name, value)  # the caller's object stays in step without reading it back
        for step in outcome.steps():
            action = OUTCOME_ACTIONS.get(step.action)
            if action is not None:
                notify(step.incident, action)
    store.events.queue()  # once the decision is written: a decision that failed queues nothing
    return outcome


class IncidentAutoCreationService:
    """The guide's service object: correlate one event, or every unprocessed event of the last hours."""

    def __init__(self, settings=None):
        self.settings = settings or get_settings()

    def process_incoming_event(self, event):
        return process_event(event.pk if isinstance(event, Event) else event, settings=self.settings)
