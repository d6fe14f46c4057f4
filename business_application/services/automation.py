"""Batch work for the guide's automation endpoints, the process_incidents command and background jobs."""

import collections
import contextlib
import dataclasses
import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q

from ..choices import IncidentStatusChoices
from ..models import Event, Incident, IncidentEvent, IncidentTimelineEntry
from . import clock
from .batch import decide_events

__all__ = (
    'Summary',
    'archive_resolved',
    'detach_for_recorrelation',
    'point_to_successors',
    'process_events',
    'unprocessed_events',
)

logger = logging.getLogger('business_application.services.automation')


@dataclasses.dataclass
class Summary:
    """What a batch did, by outcome, with the ids of events that failed."""

    total: int = 0
    actions: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    errors: list = dataclasses.field(default_factory=list)

    def as_dict(self):
        return {
            'total': self.total,
            'processed': self.total - len(self.errors),
            'actions': dict(self.actions),
            'errors': self.errors,
        }


def unprocessed_events(hours=None):
    """Events whose latest state the correlator has not acted on yet (oldest first)."""
    from ..settings import get_settings

    queryset = Event.objects.filter(Event.UNDECIDED).exclude(
        event_source__name__in=get_settings().exclude_event_sources
    )
    if hours:
        queryset = queryset.filter(last_seen_at__gte=clock.now() - timedelta(hours=hours))
    return queryset.order_by('event_time', 'last_seen_at', 'pk')


#: Events decided together by ``process_events`` (one transaction holding their decision locks).
BATCH = 100


def process_events(event_ids, progress=None, at_arrival=False):
    """Correlate each event in turn, in batches; one failure is recorded and does not stop the others.

    Every state an event stored since its last decision is decided, each as of its arrival, then its
    current state: with ``at_arrival`` as of the time its occurrence started (else its last arrival),
    as it would have been when it came in; otherwise as of now. An event with undecided states is
    decided as of its last arrival, after them.
    """
    summary = Summary(total=len(event_ids))
    arrivals = {}
    if at_arrival:
        rows = Event.objects.filter(pk__in=event_ids).values_list(
            'pk', 'occurrence_started_at', 'last_seen_at', 'pending_states'
        )
        arrivals = {pk: seen if pending else started or seen for pk, started, seen, pending in rows}
    done = 0
    for start in range(0, len(event_ids), BATCH):
        chunk = event_ids[start : start + BATCH]
        with storing_request(chunk):
            results = decide_events([(event_id, arrivals.get(event_id)) for event_id in chunk], queued=False)
        for event_id, result in results:
            done += 1
            _count(summary, event_id, result)
            if progress is not None:
                progress(done, summary.total)
    return summary


def _count(summary, event_id, result):
    if isinstance(result, Event.DoesNotExist):
        summary.errors.append({'event_id': event_id, 'error': 'deleted meanwhile'})
    elif isinstance(result, Exception):
        logger.error('processing event %s failed', event_id, exc_info=result)
        summary.errors.append({'event_id': event_id, 'error': f'{type(result).__name__}: {result}'})
    else:
        summary.actions[result.action] += 1


def storing_request(event_ids):
    """Where a batch of these events is decided: in the current request, if any; otherwise (the sweep, the jobs,
    the commands) under a copy of the request that last stored one of them, as NetBox's change log recorded it
    (its ID and user), as the decision job that request queued would have been, so that NetBox's event rules and
    change log see what the decisions do. The batch stays whole, decided in the order its events came. Events no
    request stored (or whose user was deleted since) are decided outside any request. Two queries a batch.
    """
    from django.contrib.contenttypes.models import ContentType

    from core.models import ObjectChange
    from netbox.context import current_request
    from users.models import User

    if current_request.get() is not None or not event_ids:
        return contextlib.nullcontext()
    latest = (
        ObjectChange.objects.filter(
            changed_object_type=ContentType.objects.get_for_model(Event),
            changed_object_id__in=event_ids,
            user__isnull=False,
        )
        .order_by('-time', '-pk')
        .values_list('request_id', 'user_id')
        .first()
    )
    user = User.objects.filter(pk=latest[1]).first() if latest else None
    return _as_stored((latest[0], user) if user is not None else None)


def _as_stored(key):
    if key is None:
        return contextlib.nullcontext()
    from utilities.request import NetBoxFakeRequest, apply_request_processors

    request_id, user = key
    request = NetBoxFakeRequest(
        {
            'META': {},
            'COOKIES': {},
            'POST': {},
            'GET': {},
            'FILES': {},
            'user': user,
            'method': 'POST',
            'path': '',
            'path_info': '',
            'id': request_id,
        }
    )
    return apply_request_processors(request)


def detach_for_recorrelation(event_ids):
    """Take the given events out of the incidents the correlator made, so they can be decided afresh.

    Incidents made by hand keep their events. An automatic incident left with no member is closed
    (never left open and empty). Returns the closed incidents and, for each, the events it held, so
    that ``point_to_successors`` can say where they went once they are decided again.
    """
    now = clock.now()
    with transaction.atomic():
        memberships = IncidentEvent.objects.filter(event_id__in=event_ids, incident__auto_created=True)
        former = collections.defaultdict(list)
        for incident_id, event_id in memberships.values_list('incident_id', 'event_id'):
            former[incident_id].append(event_id)
        memberships.delete()
        Event.objects.filter(pk__in=event_ids).update(processed_status='', cleared_at=None, pending_states=[])
        emptied = list(
            Incident.objects.filter(pk__in=former, memberships__isnull=True)
            .exclude(status=IncidentStatusChoices.CLOSED)
            .values_list('pk', flat=True)
        )
        Incident.objects.filter(pk__in=emptied).update(status=IncidentStatusChoices.CLOSED, blast_radius={})
        IncidentTimelineEntry.objects.bulk_create(
            [
                IncidentTimelineEntry(
                    incident_id=pk,
                    time=now,
                    kind='closed',
                    message='Closed: its events were taken out for re-correlation',
                )
                for pk in emptied
            ]
        )
    return {pk: former[pk] for pk in emptied}


def point_to_successors(closed):
    """Point each incident closed by re-correlation at the incident that now holds most of its events."""
    now = clock.now()
    for pk, event_ids in closed.items():
        latest = {}
        for event_id, occurrence, incident_id in IncidentEvent.objects.filter(event_id__in=event_ids).values_list(
            'event_id', 'occurrence', 'incident_id'
        ):
            if occurrence >= latest.get(event_id, (0, None))[0]:
                latest[event_id] = (occurrence, incident_id)
        counts = collections.Counter(incident for _, incident in latest.values() if incident != pk)
        if not counts:
            continue
        successor = min(counts, key=lambda incident: (-counts[incident], incident))
        Incident.objects.filter(pk=pk).update(merged_into_id=successor)
        IncidentTimelineEntry.objects.create(
            incident_id=pk,
            time=now,
            kind='merged',
            data={'into': successor},
            message=f'Re-correlated: {counts[successor]} of its events are now in incident {successor}',
        )


def archive_resolved(hours, dry_run=False):
    """Close automatic incidents resolved more than ``hours`` ago; open and hand-made incidents are never touched."""
    cutoff = clock.now() - timedelta(hours=hours)
    queryset = Incident.objects.filter(
        Q(status=IncidentStatusChoices.RESOLVED) & Q(auto_created=True) & Q(resolved_at__lt=cutoff)
    )
    ids = list(queryset.values_list('pk', flat=True))
    if not dry_run and ids:
        now = clock.now()
        with transaction.atomic():
            Incident.objects.filter(pk__in=ids).update(status=IncidentStatusChoices.CLOSED)
            IncidentTimelineEntry.objects.bulk_create(
                [
                    IncidentTimelineEntry(
                        incident_id=pk,
                        time=now,
                        kind='archived',
                        message=f'Archived: resolved more than {hours} hours ago',
                    )
                    for pk in ids
                ]
            )
    return ids
