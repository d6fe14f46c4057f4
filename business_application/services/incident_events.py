"""NetBox's event rules and change log on the incidents a decision opens and changes.

The correlator writes incidents with queryset updates (``DjangoStore``), which send no signal, so NetBox's change
signal sees at most the placeholder an incident is created with. ``IncidentEvents`` queues for NetBox's event rules
what that signal would have queued had each incident been saved through the model once per decision batch: an
object-created event for each incident the batch opened, with its state at the end of the batch, and an
object-updated event for each incident it changed, with the snapshots before and after the batch. They go into the
request's event queue with NetBox's ``enqueue_event``, which folds them into what NetBox already queued for the same
incidents, and NetBox runs the rules once the request (or the job run under its event tracking) is done. The change
log's record of an opened incident's creation gets the same end-of-batch state, in place of the placeholder, and
each incident the batch changed gets an update record with both snapshots (unless only its latest activity moved).

Cost: nothing outside a request (NetBox queues no events and logs no changes there either); otherwise, for a batch
that opened or changed an incident, one query reads the event types of the enabled rules on incidents, a few read
the changed incidents before their first write and all of them after the batch for their snapshots, and one writes
the change records (a few more for an opened one). An incident the batch writes only in its latest activity (a
repeat) gets no change record: unless a rule wants updates of incidents, one query reads that activity instead of
its snapshots. Only when a rule applies are the incidents' members read for the REST serialization of the rule's
data.
"""

from django.contrib.contenttypes.models import ContentType
from django.db.models import prefetch_related_objects

__all__ = ('IncidentEvents',)

#: What NetBox's snapshot of an incident (change log, event rules' snapshots) reads: its tags and services.
SNAPSHOT_PREFETCH = ('tags', 'affected_services')
#: What the REST serialization of a rule's data reads besides: the incident's members with their events.
RULE_DATA_PREFETCH = (*SNAPSHOT_PREFETCH, 'memberships__event')


class IncidentEvents:
    """The incidents one decision batch opened and changed, and their snapshots before its writes."""

    def __init__(self):
        from netbox.context import current_request

        self.request = current_request.get()
        self.created: set[int] = set()
        self.changed: set[int] = set()
        self.before: dict[int, dict | None] = {}
        #: Incidents the batch has written only in their latest activity so far, with that activity as their
        #: snapshot would show it before: unless a later write changes more, neither the change log nor a rule
        #: needs their snapshots (a repeat's decision: most of a storm's).
        self.quiet: dict[int, str | None] = {}
        self._rule_types: set | None = None

    def opened(self, key):
        self.created.add(key)

    def note(self, *keys):
        """Incidents about to be written by the batch (those it opened are queued as created instead)."""
        if self.request is None:
            return
        self.changed.update(key for key in keys if key is not None and key not in self.created)

    def snapshot(self, loud=None):
        """Before the noted incidents are first written: their state, read in one go, for the change log and the
        update rules. ``loud``, if given, holds the incidents about to be written in more than their latest
        activity; unless a rule wants updates of incidents, the others only have that activity read (``quiet``),
        and their snapshot waits until a write changes more of them, if one does."""
        waiting = self.changed - self.before.keys()
        if not waiting:
            return
        if loud is not None and not self._wants_updates():
            quiet = waiting - loud
            if fresh := quiet - self.quiet.keys():
                self.quiet.update(self._activity(fresh))
            waiting -= quiet
        if not waiting:
            return
        for incident in self._read(waiting):
            incident.snapshot()
            before = incident._prechange_snapshot
            if incident.pk in self.quiet:  # only its latest activity was written since: as it was before that
                before = {**before, 'last_activity_at': self.quiet[incident.pk]}
            self.before[incident.pk] = before
        for key in waiting - self.before.keys():  # deleted meanwhile
            self.before[key] = None

    def queue(self):
        """After the batch is written: queue each opened and changed incident for the rules that may apply, and
        complete the change log's record of each incident the batch opened."""
        if self.request is None or not (self.created or self.changed):
            return
        from core.events import OBJECT_CREATED, OBJECT_UPDATED
        from extras.events import enqueue_event
        from netbox.context import events_queue

        types = self.rule_types()
        wanted = {}
        if OBJECT_CREATED in types:
            wanted.update(dict.fromkeys(self.created, OBJECT_CREATED))
        # An incident the batch wrote only in its latest activity gets no change record, and no rule wants it.
        updated = self.changed - self.created - (self.quiet.keys() - self.before.keys())
        if OBJECT_UPDATED in types:
            wanted.update(dict.fromkeys(updated, OBJECT_UPDATED))
        exclude = _exclude()
        queue = events_queue.get()
        opened, changed = {}, []
        for incident in self._read(self.created | updated, rule_data=bool(wanted)):
            incident._postchange_snapshot = incident.serialize_object(exclude=exclude)
            if incident.pk in self.created:
                opened[incident.pk] = incident
            else:
                incident._prechange_snapshot = self.before.get(incident.pk)
                changed.append(incident)
            if incident.pk in wanted:
                enqueue_event(queue, incident, self.request, wanted[incident.pk])
        if wanted:
            events_queue.set(queue)
        self._complete_creations(opened)
        self._log_updates(changed)

    def _log_updates(self, incidents):
        """NetBox's change-log record of each incident the batch changed, as a save of it would write, with its
        snapshots before and after the batch (one insert). A change of its latest activity alone (a repeat) is
        not logged, as NetBox logs no change that leaves an object as it was."""
        from django.contrib.contenttypes.models import ContentType

        from core.choices import ObjectChangeActionChoices
        from core.models import ObjectChange

        from ..models import Incident

        user = self.request.user if getattr(self.request.user, 'is_authenticated', False) else None
        records = [
            ObjectChange(
                changed_object_type=ContentType.objects.get_for_model(Incident),
                changed_object_id=incident.pk,
                object_repr=incident.title[:200],  # the stored title, whoever made the change
                action=ObjectChangeActionChoices.ACTION_UPDATE,
                prechange_data=incident._prechange_snapshot,
                postchange_data=incident._postchange_snapshot,
                user=user,
                user_name=user.username if user is not None else '',
                request_id=self.request.id,
            )
            for incident in incidents
            if _without(incident._prechange_snapshot, QUIET_FIELDS)
            != _without(incident._postchange_snapshot, QUIET_FIELDS)
        ]
        if records:
            ObjectChange.objects.bulk_create(records)

    def _complete_creations(self, opened):
        """NetBox's change log recorded each opened incident as created with its placeholder title; record the
        state the batch left it in instead, as if it had been created that way (two queries for the batch)."""
        if not opened:
            return
        from core.choices import ObjectChangeActionChoices
        from core.models import ObjectChange

        from ..models import Incident

        records = list(
            ObjectChange.objects.filter(
                changed_object_type=ContentType.objects.get_for_model(Incident),
                changed_object_id__in=opened.keys(),
                action=ObjectChangeActionChoices.ACTION_CREATE,
                request_id=self.request.id,
            )
        )
        for record in records:
            incident = opened[record.changed_object_id]
            record.object_repr = incident.title[:200]
            record.postchange_data = incident._postchange_snapshot
        ObjectChange.objects.bulk_update(records, ['object_repr', 'postchange_data'])

    def rule_types(self):
        """The event types of the enabled event rules on incidents: one query per batch, and only when needed."""
        if self._rule_types is None:
            from extras.models import EventRule

            from ..models import Incident

            rows = EventRule.objects.filter(
                enabled=True, object_types=ContentType.objects.get_for_model(Incident).pk
            ).values_list('event_types', flat=True)
            self._rule_types = {event_type for event_types in rows for event_type in event_types or ()}
        return self._rule_types

    def _wants_updates(self):
        from core.events import OBJECT_UPDATED

        return OBJECT_UPDATED in self.rule_types()

    @staticmethod
    def _activity(keys):
        """These incidents' latest activity, as NetBox's snapshot of them writes it."""
        from django.core.serializers.json import DjangoJSONEncoder

        from ..models import Incident

        encode = DjangoJSONEncoder().default
        rows = Incident.objects.filter(pk__in=keys).values_list('pk', 'last_activity_at')
        return {pk: None if moment is None else encode(moment) for pk, moment in rows}

    @staticmethod
    def _read(keys, rule_data=False):
        """These incidents, read for their snapshots, and (``rule_data``) for the REST serialization of rule data."""
        from ..models import Incident

        incidents = list(Incident.objects.filter(pk__in=keys).select_related('root_cause_event', 'merged_into'))
        prefetch_related_objects(incidents, *(RULE_DATA_PREFETCH if rule_data else SNAPSHOT_PREFETCH))
        return incidents


#: What a decision changes on every repeat of a firing member, logged only with another change.
QUIET_FIELDS = ('last_activity_at', 'last_updated')


def _without(data, names):
    return None if data is None else {key: value for key, value in data.items() if key not in names}


def _exclude():
    from netbox.config import get_config

    return ['last_updated'] if get_config().CHANGELOG_SKIP_EMPTY_CHANGES else []
