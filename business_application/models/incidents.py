"""Incidents: the groups of events the correlation service builds, with why each event joined."""

from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from netbox.models import NetBoxModel

from ..choices import EventCrit, IncidentStatusChoices
from .snapshots import FastSnapshots

__all__ = ('Incident', 'IncidentEvent', 'IncidentMembersRevision', 'IncidentTimelineEntry')


class Incident(FastSnapshots, NetBoxModel):
    """An outage as a NOC engineer handles it: its events, probable root cause and blast radius."""

    title = models.CharField(verbose_name=_('title'), max_length=255)
    description = models.TextField(verbose_name=_('description'), blank=True)
    status = models.CharField(
        verbose_name=_('status'), max_length=16, choices=IncidentStatusChoices, default=IncidentStatusChoices.NEW
    )
    severity = models.CharField(verbose_name=_('severity'), max_length=16, choices=EventCrit, default=EventCrit.WARNING)
    commander = models.CharField(verbose_name=_('commander'), max_length=120, blank=True)
    reporter = models.CharField(verbose_name=_('reporter'), max_length=120, blank=True)
    detected_at = models.DateTimeField(verbose_name=_('detected at'), null=True, blank=True)
    resolved_at = models.DateTimeField(verbose_name=_('resolved at'), null=True, blank=True)
    resolved_event_time = models.DateTimeField(
        verbose_name=_('resolved (event time)'),
        null=True,
        blank=True,
        help_text=_('The own timestamp of the clear that resolved the incident'),
    )
    affected_services = models.ManyToManyField(
        to='business_application.TechnicalService',
        related_name='incidents',
        blank=True,
        verbose_name=_('affected services'),
    )
    events = models.ManyToManyField(
        to='business_application.Event',
        through='business_application.IncidentEvent',
        related_name='incidents',
        blank=True,
    )
    root_cause_event = models.ForeignKey(
        to='business_application.Event',
        on_delete=models.SET_NULL,
        related_name='+',
        null=True,
        blank=True,
        verbose_name=_('root cause event'),
    )
    root_cause = models.CharField(
        verbose_name=_('probable root cause'),
        max_length=300,
        blank=True,
        help_text=_('The most upstream alerting component, such as device:SWITCH-01'),
    )
    blast_radius = models.JSONField(verbose_name=_('blast radius'), default=dict, blank=True, editable=False)
    #: The map objects the correlator named in the title, ``[kind prefix, id, name]`` each, as it wrote them: what
    #: the title hides from a user who may not view them, even once they are renamed, moved or deleted. Empty for a
    #: title a person wrote (REST API, forms, import); NULL where nobody recorded them (an earlier version, a script).
    title_objects = models.JSONField(
        verbose_name=_('objects named in the title'), default=None, blank=True, null=True, editable=False
    )
    merged_into = models.ForeignKey(
        to='self',
        on_delete=models.SET_NULL,
        related_name='merged_incidents',
        null=True,
        blank=True,
        editable=False,
        verbose_name=_('merged into'),
    )
    auto_created = models.BooleanField(verbose_name=_('auto-created'), default=False, editable=False)
    last_activity_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ('-detected_at', '-pk')
        verbose_name = _('incident')
        verbose_name_plural = _('incidents')
        indexes = (
            models.Index(fields=('status', 'last_activity_at'), name='ba_incident_status_activity'),
            # The incident list's default order and the live-incident read's age limit.
            models.Index(fields=('status', 'detected_at'), name='ba_incident_status_detected'),
            models.Index(fields=('detected_at',), name='ba_incident_detected'),
        )

    def __str__(self):
        from ..ui.redact import shown_title

        return shown_title(self)

    def to_objectchange(self, action):
        """The change record names the incident by its stored title, whoever made the change (``str`` gives the
        title as the user of the page sees it)."""
        change = super().to_objectchange(action)
        change.object_repr = self.title[:200]
        return change

    def get_absolute_url(self):
        return reverse('plugins:business_application:incident', args=[self.pk])

    def get_status_color(self):
        return IncidentStatusChoices.colors.get(self.status)

    def get_severity_color(self):
        return EventCrit.colors.get(self.severity)

    def save(self, *args, **kwargs):
        # An edit through the REST API writes only the fields it changed (see IncidentSerializer.update), so a
        # person's PATCH of the description never rolls back the severity, title or root cause that the
        # correlation service set a moment earlier with its own queryset updates.
        edited = getattr(self, '_edited_fields', None)
        if edited is not None and 'title' in edited:
            self.title_objects, edited = [], {*edited, 'title_objects'}  # a person's title names no recorded object
        if edited is not None and not self._state.adding and kwargs.get('update_fields') is None:
            concrete = {f.name for f in self._meta.concrete_fields if not f.primary_key}
            kwargs['update_fields'] = sorted((set(edited) & concrete) | {'last_updated', 'custom_field_data'})
        super().save(*args, **kwargs)

    @property
    def is_open(self):
        return self.status in IncidentStatusChoices.OPEN


class IncidentEvent(models.Model):
    """One event occurrence in an incident: when and why it joined (score, factors and graph path)."""

    incident = models.ForeignKey(to=Incident, on_delete=models.CASCADE, related_name='memberships')
    event = models.ForeignKey(to='business_application.Event', on_delete=models.CASCADE, related_name='memberships')
    occurrence = models.PositiveIntegerField(default=1)
    joined_at = models.DateTimeField()
    opened_incident = models.BooleanField(default=False)
    score = models.FloatField(null=True, blank=True)
    link = models.CharField(max_length=20, blank=True)
    factors = models.JSONField(default=dict, blank=True)
    path = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, default='triggered')
    severity = models.CharField(max_length=16, default=EventCrit.WARNING)
    last_activity_at = models.DateTimeField()

    class Meta:
        ordering = ('joined_at', 'pk')
        constraints = (
            models.UniqueConstraint(
                fields=('event', 'occurrence'), name='business_application_incidentevent_one_incident_per_occurrence'
            ),
        )
        indexes = (
            models.Index(fields=('incident', 'status'), name='ba_incidentevent_status'),
            # Members of the live incidents, read in join order at every decision.
            models.Index(fields=('incident', 'joined_at'), name='ba_incidentevent_joined'),
        )

    def __str__(self):
        return f'{self.event_id} in {self.incident_id}'


class IncidentMembersRevision(models.Model):
    """Which version of an incident's members the database holds: a new number from one sequence each time any
    statement inserts, updates or deletes a member of the incident, or changes the object of an event that is one.

    PostgreSQL triggers (migration 0009) keep it, whatever writes the members (a decision, an operator's action,
    an event's deletion, raw SQL), so a worker may keep the members it read until the number moves
    (``services.member_cache``). No foreign key: a deleted incident's row is left behind, and its number is
    never reused."""

    incident_id = models.BigIntegerField(primary_key=True)
    revision = models.BigIntegerField()

    class Meta:
        default_permissions = ()

    def __str__(self):
        return f'members of incident {self.incident_id} at revision {self.revision}'


class IncidentTimelineEntry(models.Model):
    """What happened to an incident and when: opened, joined, severity raised, merged, resolved, reopened."""

    incident = models.ForeignKey(to=Incident, on_delete=models.CASCADE, related_name='timeline')
    time = models.DateTimeField()
    kind = models.CharField(max_length=32)
    event = models.ForeignKey(
        to='business_application.Event', on_delete=models.SET_NULL, related_name='+', null=True, blank=True
    )
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ('time', 'pk')
        indexes = (models.Index(fields=('incident', 'time'), name='ba_timeline_incident_time'),)
        verbose_name = _('timeline entry')
        verbose_name_plural = _('timeline entries')

    def __str__(self):
        from ..ui.redact import shown_text

        return shown_text(self.message)
