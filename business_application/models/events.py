"""Alerts as NetBox sees them: where they come from, the events themselves and maintenance windows."""

import json

from django.contrib.contenttypes.fields import GenericForeignKey
from django.core.exceptions import ValidationError
from django.db import connection, models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from netbox.models import NetBoxModel

from ..choices import EventCrit, EventStatus, MaintenanceStatusChoices
from ..correlation.timeparse import ahead_reason
from ..services import clock
from .snapshots import FastSnapshots

__all__ = ('EVENT_OBJECT_TYPES', 'Event', 'EventSource', 'Maintenance')

#: The kinds of NetBox object an event or a maintenance window may point at.
EVENT_OBJECT_TYPES = (
    Q(app_label='dcim', model='device')
    | Q(app_label='virtualization', model__in=('virtualmachine', 'cluster'))
    | Q(app_label='business_application', model__in=('technicalservice', 'businessapplication'))
)


class EventSource(NetBoxModel):
    """The monitoring system that raised an alert (not the channel it arrived through)."""

    name = models.CharField(verbose_name=_('name'), max_length=100, unique=True)
    description = models.TextField(verbose_name=_('description'), blank=True)

    class Meta:
        ordering = ('name',)
        verbose_name = _('event source')
        verbose_name_plural = _('event sources')

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse('plugins:business_application:eventsource', args=[self.pk])


class Event(FastSnapshots, NetBoxModel):
    """One alert, named by its source and dedup_id; repeats of the alert update this row.

    The fields under "bookkeeping" belong to the correlation service: they record what it has
    already decided for this alert, so that any save (REST, receiver, plain ORM) is processed once.
    """

    message = models.CharField(verbose_name=_('message'), max_length=2000)
    status = models.CharField(
        verbose_name=_('status'), max_length=16, choices=EventStatus, default=EventStatus.TRIGGERED
    )
    criticallity = models.CharField(
        verbose_name=_('criticality'), max_length=16, choices=EventCrit, default=EventCrit.WARNING
    )
    content_type = models.ForeignKey(
        to='contenttypes.ContentType',
        on_delete=models.PROTECT,
        related_name='+',
        null=True,
        blank=True,
        limit_choices_to=EVENT_OBJECT_TYPES,
        verbose_name=_('object type'),
    )
    object_id = models.PositiveBigIntegerField(verbose_name=_('object ID'), null=True, blank=True)
    obj = GenericForeignKey('content_type', 'object_id')
    dedup_id = models.CharField(verbose_name=_('dedup ID'), max_length=255, blank=True)
    event_source = models.ForeignKey(
        to=EventSource,
        on_delete=models.PROTECT,
        related_name='events',
        null=True,
        blank=True,
        verbose_name=_('event source'),
    )
    raw = models.JSONField(verbose_name=_('raw payload'), default=dict, blank=True)
    last_seen_at = models.DateTimeField(verbose_name=_('last seen'), default=timezone.now)
    starts_at = models.DateTimeField(verbose_name=_('starts at'), null=True, blank=True)
    ends_at = models.DateTimeField(verbose_name=_('ends at'), null=True, blank=True)
    event_time = models.DateTimeField(
        verbose_name=_('event time'),
        null=True,
        blank=True,
        help_text=_('When the latest applied notification happened, by its own timestamp'),
    )
    unmapped_label = models.CharField(
        verbose_name=_('unmapped object'),
        max_length=300,
        blank=True,
        help_text=_('The object the alert named when NetBox does not know it, such as device:host-07'),
    )

    # Bookkeeping of the correlation service
    processed_status = models.CharField(max_length=16, blank=True, editable=False)
    occurrence = models.PositiveIntegerField(default=0, editable=False)
    occurrence_started_at = models.DateTimeField(null=True, blank=True, editable=False)
    cleared_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The states stored since the last decision, oldest first: one per change of status, with its
    # arrival, its own time, its severity and the object it named. Decisions take them in order, each
    # as of its arrival, so an alert that fires, clears and fires again before a worker gets to it is
    # decided as each notification would have been when it came (see ``note_state``).
    pending_states = models.JSONField(default=list, blank=True, editable=False)
    # The object the current occurrence started on, as [content type, object ID, unmapped label]: after the
    # event moves, its decisions also take the lock of that part of the map, where its incident is.
    occurrence_object = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ('-last_seen_at', '-pk')
        verbose_name = _('event')
        verbose_name_plural = _('events')
        constraints = (
            models.UniqueConstraint(
                fields=('event_source', 'dedup_id'),
                condition=~Q(dedup_id=''),
                nulls_distinct=False,
                name='business_application_event_unique_identity',
                violation_error_message=_('An event with this source and dedup ID already exists.'),
            ),
        )
        indexes = (
            models.Index(fields=('status', 'created'), name='ba_event_status_created'),
            models.Index(fields=('content_type', 'object_id'), name='ba_event_object'),
            # The event list's default order and the sweep's time window.
            models.Index(fields=('last_seen_at',), name='ba_event_last_seen'),
            # The sweep's "not yet decided" events: few among many once the correlation keeps up.
            models.Index(
                fields=('event_time', 'last_seen_at'),
                condition=~Q(processed_status=F('status')) | ~Q(pending_states=[]),
                name='ba_event_undecided',
            ),
        )

    #: Written only by the correlation service, with queryset updates (and the pending states by
    #: ``note_state`` or ``save`` when a save stores a new status).
    BOOKKEEPING_FIELDS = (
        'processed_status',
        'occurrence',
        'occurrence_started_at',
        'cleared_at',
        'pending_states',
        'occurrence_object',
    )

    #: Events with something no decision has seen yet: a state, or states stored since.
    UNDECIDED = ~Q(processed_status=F('status')) | ~Q(pending_states=[])

    #: The most states an event remembers while no decision runs (correlation turned off, a stopped
    #: queue): the oldest are forgotten beyond it.
    MAX_PENDING_STATES = 32

    def __str__(self):
        return self.message[:80]

    def pending_state(self):
        """This event's state as a pending entry (see ``pending_states``)."""
        seen = self._meta.get_field('last_seen_at').to_python(self.last_seen_at)
        own = self._meta.get_field('event_time').to_python(self.event_time) or seen
        return {
            'status': self.status,
            'at': seen.isoformat(),
            'time': own.isoformat(),
            'severity': self.criticallity,
            'object': [self.content_type_id, self.object_id, self.unmapped_label],
        }

    def note_state(self):
        """Remember the state about to be stored if its status differs from the last one remembered (or
        decided); returns whether it did. Only for a new row, or one this transaction holds locked."""
        last = self.pending_states[-1]['status'] if self.pending_states else self.processed_status
        if self.status == last:
            return False
        self.pending_states = [*self.pending_states, self.pending_state()][-self.MAX_PENDING_STATES :]
        return True

    def _append_state(self):
        """``note_state`` for a row that may have changed since this instance was read: in one statement, against
        the row as stored (a decision may just have taken states off it, another save added one)."""
        table = self._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f'UPDATE {table} SET pending_states = CASE '  # noqa: S608 - our own table
                "WHEN COALESCE(pending_states -> -1 ->> 'status', processed_status) = %s THEN pending_states "
                'WHEN jsonb_array_length(pending_states) >= %s THEN (pending_states - 0) || %s::jsonb '
                'ELSE pending_states || %s::jsonb END WHERE id = %s RETURNING pending_states, processed_status',
                [self.status, self.MAX_PENDING_STATES, *[json.dumps([self.pending_state()])] * 2, self.pk],
            )
            row = cursor.fetchone()
        if row is not None:
            states, self.processed_status = row
            self.pending_states = json.loads(states) if isinstance(states, str) else states

    def save(self, *args, **kwargs):
        if self._state.adding:
            self.note_state()
        else:
            # An instance loaded before the correlation service ran must not write back stale bookkeeping.
            if kwargs.get('update_fields') is None:
                kwargs['update_fields'] = [
                    f.name
                    for f in self._meta.concrete_fields
                    if not f.primary_key and f.name not in self.BOOKKEEPING_FIELDS
                ]
            if 'status' in kwargs['update_fields']:
                self._append_state()
        super().save(*args, **kwargs)

    def get_absolute_url(self):
        return reverse('plugins:business_application:event', args=[self.pk])

    def get_status_color(self):
        return EventStatus.colors.get(self.status)

    def get_criticallity_color(self):
        return EventCrit.colors.get(self.criticallity)

    @property
    def is_mapped(self):
        return self.content_type_id is not None and self.object_id is not None

    @property
    def target_display(self):
        if self.is_mapped:
            target = self.obj
            return str(target) if target is not None else f'{self.content_type.model} #{self.object_id} (deleted)'
        return self.unmapped_label or _('unmapped')

    #: The notification's own times, none of which may lie far ahead of the clock (see timeparse.MAX_AHEAD).
    TIME_FIELDS = ('last_seen_at', 'starts_at', 'ends_at', 'event_time')

    def clean(self):
        super().clean()
        if (self.content_type_id is None) != (self.object_id is None):
            raise ValidationError({'object_id': _('Give both the object type and the object ID, or neither.')})
        now = clock.now()
        ahead = {name: ahead_reason(getattr(self, name), now) for name in self.TIME_FIELDS}
        if any(ahead.values()):
            raise ValidationError({name: reason for name, reason in ahead.items() if reason})
        if self.is_mapped and self.obj is None:
            raise ValidationError(
                {
                    'object_id': _('No {model} with ID {id} exists.').format(
                        model=self.content_type.model, id=self.object_id
                    )
                }
            )


class Maintenance(NetBoxModel):
    """A window during which alerts on an object (or what it hosts or carries) are kept as suppressed."""

    content_type = models.ForeignKey(
        to='contenttypes.ContentType',
        on_delete=models.PROTECT,
        related_name='+',
        limit_choices_to=EVENT_OBJECT_TYPES,
        verbose_name=_('object type'),
    )
    object_id = models.PositiveBigIntegerField(verbose_name=_('object ID'))
    obj = GenericForeignKey('content_type', 'object_id')
    start = models.DateTimeField(verbose_name=_('start'))
    end = models.DateTimeField(verbose_name=_('end'))
    status = models.CharField(
        verbose_name=_('status'),
        max_length=16,
        choices=MaintenanceStatusChoices,
        default=MaintenanceStatusChoices.PLANNED,
    )
    description = models.TextField(verbose_name=_('description'), blank=True)
    contact = models.CharField(verbose_name=_('contact'), max_length=120, blank=True)

    class Meta:
        ordering = ('-start', 'pk')
        verbose_name = _('maintenance')
        verbose_name_plural = _('maintenance windows')
        constraints = (
            models.CheckConstraint(
                condition=Q(end__gte=models.F('start')),
                name='business_application_maintenance_end_after_start',
                violation_error_message=_('The end of a maintenance window cannot come before its start.'),
            ),
        )
        indexes = (models.Index(fields=('content_type', 'object_id'), name='ba_maintenance_object'),)

    def __str__(self):
        return f'{self.obj or self.object_id}: {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M}'

    def get_absolute_url(self):
        return reverse('plugins:business_application:maintenance', args=[self.pk])

    def get_status_color(self):
        return MaintenanceStatusChoices.colors.get(self.status)

    def clean(self):
        super().clean()
        if self.start and self.end and self.end < self.start:
            raise ValidationError({'end': _('The end of a maintenance window cannot come before its start.')})
        if self.content_type_id and self.object_id and self.obj is None:
            raise ValidationError(
                {
                    'object_id': _('No {model} with ID {id} exists.').format(
                        model=self.content_type.model, id=self.object_id
                    )
                }
            )
