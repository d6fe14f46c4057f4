"""Bulk edit forms: the fields an operator changes on many objects at once."""

from django import forms
from django.utils.translation import gettext_lazy as _

from netbox.forms import NetBoxModelBulkEditForm
from utilities.forms import add_blank_choice
from utilities.forms.fields import DynamicModelChoiceField
from utilities.forms.rendering import FieldSet
from utilities.forms.widgets import DateTimePicker

from ..choices import (
    DependencyTypeChoices,
    EventCrit,
    EventStatus,
    IncidentStatusChoices,
    MaintenanceStatusChoices,
    ServiceTypeChoices,
)
from ..models import (
    BusinessApplication,
    Event,
    EventSource,
    Incident,
    Maintenance,
    ServiceDependency,
    TechnicalService,
)
from .times import OffsetCheckedMixin

__all__ = (
    'BusinessApplicationBulkEditForm',
    'EventBulkEditForm',
    'EventSourceBulkEditForm',
    'IncidentBulkEditForm',
    'MaintenanceBulkEditForm',
    'ServiceDependencyBulkEditForm',
    'TechnicalServiceBulkEditForm',
)


def _choice(choices, label):
    return forms.ChoiceField(choices=add_blank_choice(choices), required=False, label=label)


def _text(label, max_length=None):
    return forms.CharField(required=False, label=label, max_length=max_length)


class BusinessApplicationBulkEditForm(OffsetCheckedMixin, NetBoxModelBulkEditForm):
    owner = _text(_('Owner'), 100)
    delegate = _text(_('Delegate'), 100)
    link = forms.URLField(required=False, label=_('Link'), assume_scheme='https')
    description = _text(_('Description'))

    model = BusinessApplication
    fieldsets = (FieldSet('owner', 'delegate', 'link', 'description'),)
    nullable_fields = ('owner', 'delegate', 'link', 'description')


class TechnicalServiceBulkEditForm(OffsetCheckedMixin, NetBoxModelBulkEditForm):
    service_type = _choice(ServiceTypeChoices, _('Service type'))
    description = _text(_('Description'))

    model = TechnicalService
    fieldsets = (FieldSet('service_type', 'description'),)
    nullable_fields = ('description',)


class ServiceDependencyBulkEditForm(OffsetCheckedMixin, NetBoxModelBulkEditForm):
    dependency_type = _choice(DependencyTypeChoices, _('Dependency type'))
    name = _text(_('Name'), 240)
    description = _text(_('Description'))

    model = ServiceDependency
    fieldsets = (FieldSet('dependency_type', 'name', 'description'),)
    nullable_fields = ('description',)


class EventSourceBulkEditForm(OffsetCheckedMixin, NetBoxModelBulkEditForm):
    description = _text(_('Description'))

    model = EventSource
    fieldsets = (FieldSet('description'),)
    nullable_fields = ('description',)


class EventBulkEditForm(OffsetCheckedMixin, NetBoxModelBulkEditForm):
    status = _choice(EventStatus, _('Status'))
    criticallity = _choice(EventCrit, _('Criticality'))
    event_source = DynamicModelChoiceField(queryset=EventSource.objects.all(), required=False, label=_('Event source'))

    model = Event
    fieldsets = (FieldSet('status', 'criticallity', 'event_source'),)
    nullable_fields = ('event_source',)


class MaintenanceBulkEditForm(OffsetCheckedMixin, NetBoxModelBulkEditForm):
    status = _choice(MaintenanceStatusChoices, _('Status'))
    start = forms.DateTimeField(required=False, label=_('Start'), widget=DateTimePicker())
    end = forms.DateTimeField(required=False, label=_('End'), widget=DateTimePicker())
    contact = _text(_('Contact'), 120)
    description = _text(_('Description'))

    model = Maintenance
    fieldsets = (FieldSet('status', 'start', 'end', 'contact', 'description'),)
    nullable_fields = ('contact', 'description')


class IncidentBulkEditForm(OffsetCheckedMixin, NetBoxModelBulkEditForm):
    status = _choice(IncidentStatusChoices, _('Status'))
    severity = _choice(EventCrit, _('Severity'))
    commander = _text(_('Commander'), 120)
    reporter = _text(_('Reporter'), 120)

    model = Incident
    fieldsets = (FieldSet('status', 'severity', 'commander', 'reporter'),)
    nullable_fields = ('commander', 'reporter')
