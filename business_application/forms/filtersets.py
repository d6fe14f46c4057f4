"""Filter forms shown beside the list pages; each field name is a filter of the model's FilterSet."""

from django import forms
from django.contrib.contenttypes.models import ContentType
from django.utils.translation import gettext_lazy as _

from dcim.models import Device
from netbox.context import current_request
from netbox.forms import NetBoxModelFilterSetForm
from utilities.forms import BOOLEAN_WITH_BLANK_CHOICES, restrict_form_fields
from utilities.forms.fields import ContentTypeMultipleChoiceField, DynamicModelMultipleChoiceField, TagFilterField
from utilities.forms.rendering import FieldSet
from utilities.forms.widgets import DateTimePicker
from virtualization.models import Cluster, VirtualMachine

from ..choices import (
    DependencyTypeChoices,
    EventCrit,
    EventStatus,
    IncidentStatusChoices,
    MaintenanceStatusChoices,
    ServiceTypeChoices,
)
from ..models import (
    EVENT_OBJECT_TYPES,
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
    'BusinessApplicationFilterForm',
    'EventFilterForm',
    'EventSourceFilterForm',
    'IncidentFilterForm',
    'MaintenanceFilterForm',
    'ServiceDependencyFilterForm',
    'TechnicalServiceFilterForm',
)


class ViewableChoicesMixin:
    """Only the objects the user may view can be chosen, nor named in the list's filter badges (a hidden one given
    in the URL answers as one that does not exist)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = current_request.get()
        if getattr(request, 'user', None) is not None:
            restrict_form_fields(self, request.user)
            for field in self.fields.values():
                # NetBox's lookup modifier wraps the select, which would still draw its choices from the unrestricted
                # queryset
                if hasattr(field, 'queryset') and hasattr(field.widget, 'original_widget'):
                    field.widget.original_widget.choices = field.choices


def _services(label):
    return DynamicModelMultipleChoiceField(queryset=TechnicalService.objects.all(), required=False, label=label)


def _datetime(label):
    return forms.DateTimeField(required=False, label=label, widget=DateTimePicker())


def _object_types():
    return ContentTypeMultipleChoiceField(
        queryset=ContentType.objects.filter(EVENT_OBJECT_TYPES),
        required=False,
        label=_('Object type'),
    )


class BusinessApplicationFilterForm(ViewableChoicesMixin, OffsetCheckedMixin, NetBoxModelFilterSetForm):
    model = BusinessApplication
    fieldsets = (
        FieldSet('q', 'filter_id', 'tag'),
        FieldSet('appcode', 'name', 'owner', 'delegate', name=_('Business application')),
        FieldSet('technical_service_id', 'device_id', 'virtual_machine_id', name=_('Assignments')),
    )
    appcode = forms.CharField(required=False, label=_('Appcode'))
    name = forms.CharField(required=False, label=_('Name'))
    owner = forms.CharField(required=False, label=_('Owner'))
    delegate = forms.CharField(required=False, label=_('Delegate'))
    technical_service_id = _services(_('Technical service'))
    device_id = DynamicModelMultipleChoiceField(queryset=Device.objects.all(), required=False, label=_('Device'))
    virtual_machine_id = DynamicModelMultipleChoiceField(
        queryset=VirtualMachine.objects.all(),
        required=False,
        label=_('Virtual machine'),
    )
    tag = TagFilterField(model)


class TechnicalServiceFilterForm(ViewableChoicesMixin, OffsetCheckedMixin, NetBoxModelFilterSetForm):
    model = TechnicalService
    fieldsets = (
        FieldSet('q', 'filter_id', 'tag'),
        FieldSet('service_type', 'business_application_id', name=_('Technical service')),
        FieldSet('device_id', 'virtual_machine_id', 'cluster_id', name=_('Carried by')),
        FieldSet('depends_on_id', 'dependency_of_id', name=_('Dependencies')),
    )
    service_type = forms.MultipleChoiceField(choices=ServiceTypeChoices, required=False, label=_('Service type'))
    business_application_id = DynamicModelMultipleChoiceField(
        queryset=BusinessApplication.objects.all(),
        required=False,
        label=_('Business application'),
    )
    device_id = DynamicModelMultipleChoiceField(queryset=Device.objects.all(), required=False, label=_('Device'))
    virtual_machine_id = DynamicModelMultipleChoiceField(
        queryset=VirtualMachine.objects.all(),
        required=False,
        label=_('Virtual machine'),
    )
    cluster_id = DynamicModelMultipleChoiceField(queryset=Cluster.objects.all(), required=False, label=_('Cluster'))
    depends_on_id = _services(_('Depends on'))
    dependency_of_id = _services(_('Depended on by'))
    tag = TagFilterField(model)


class ServiceDependencyFilterForm(ViewableChoicesMixin, OffsetCheckedMixin, NetBoxModelFilterSetForm):
    model = ServiceDependency
    fieldsets = (
        FieldSet('q', 'filter_id', 'tag'),
        FieldSet('upstream_service_id', 'downstream_service_id', 'service_id', 'dependency_type', name=_('Dependency')),
    )
    upstream_service_id = _services(_('Upstream service'))
    downstream_service_id = _services(_('Downstream service'))
    service_id = _services(_('Either service'))
    dependency_type = forms.MultipleChoiceField(
        choices=DependencyTypeChoices,
        required=False,
        label=_('Dependency type'),
    )
    tag = TagFilterField(model)


class EventSourceFilterForm(ViewableChoicesMixin, OffsetCheckedMixin, NetBoxModelFilterSetForm):
    model = EventSource
    fieldsets = (FieldSet('q', 'filter_id', 'tag'),)
    tag = TagFilterField(model)


class EventFilterForm(ViewableChoicesMixin, OffsetCheckedMixin, NetBoxModelFilterSetForm):
    model = Event
    fieldsets = (
        FieldSet('q', 'filter_id', 'tag'),
        FieldSet('status', 'criticallity', 'event_source_id', 'dedup_id', name=_('Event')),
        FieldSet('mapped', 'content_type_id', 'object_id', 'incident_id', name=_('Object')),
        FieldSet('last_seen_after', 'last_seen_before', name=_('Last seen')),
    )
    status = forms.MultipleChoiceField(choices=EventStatus, required=False, label=_('Status'))
    criticallity = forms.MultipleChoiceField(choices=EventCrit, required=False, label=_('Criticality'))
    event_source_id = DynamicModelMultipleChoiceField(
        queryset=EventSource.objects.all(),
        required=False,
        label=_('Event source'),
    )
    dedup_id = forms.CharField(required=False, label=_('Dedup ID'))
    mapped = forms.NullBooleanField(
        required=False,
        label=_('Mapped to a NetBox object'),
        widget=forms.Select(choices=BOOLEAN_WITH_BLANK_CHOICES),
    )
    content_type_id = _object_types()
    object_id = forms.IntegerField(required=False, min_value=0, label=_('Object ID'))
    incident_id = DynamicModelMultipleChoiceField(
        queryset=Incident.objects.all(),
        required=False,
        label=_('Incident'),
    )
    last_seen_after = _datetime(_('After'))
    last_seen_before = _datetime(_('Before'))
    tag = TagFilterField(model)


class MaintenanceFilterForm(ViewableChoicesMixin, OffsetCheckedMixin, NetBoxModelFilterSetForm):
    model = Maintenance
    fieldsets = (
        FieldSet('q', 'filter_id', 'tag'),
        FieldSet('status', 'active_at', name=_('Maintenance window')),
        FieldSet('content_type_id', 'object_id', name=_('Object')),
    )
    status = forms.MultipleChoiceField(choices=MaintenanceStatusChoices, required=False, label=_('Status'))
    active_at = _datetime(_('Suppressing at'))
    content_type_id = _object_types()
    object_id = forms.IntegerField(required=False, min_value=0, label=_('Object ID'))
    tag = TagFilterField(model)


class IncidentFilterForm(ViewableChoicesMixin, OffsetCheckedMixin, NetBoxModelFilterSetForm):
    model = Incident
    fieldsets = (
        FieldSet('q', 'filter_id', 'tag'),
        FieldSet('is_open', 'status', 'severity', 'commander', 'reporter', name=_('Incident')),
        FieldSet('affected_service_id', 'event_id', name=_('Scope')),
        FieldSet('detected_after', 'detected_before', name=_('Detected')),
    )
    is_open = forms.NullBooleanField(
        required=False,
        label=_('Open'),
        widget=forms.Select(choices=BOOLEAN_WITH_BLANK_CHOICES),
    )
    status = forms.MultipleChoiceField(choices=IncidentStatusChoices, required=False, label=_('Status'))
    severity = forms.MultipleChoiceField(choices=EventCrit, required=False, label=_('Severity'))
    commander = forms.CharField(required=False, label=_('Commander'))
    reporter = forms.CharField(required=False, label=_('Reporter'))
    affected_service_id = _services(_('Affected service'))
    event_id = DynamicModelMultipleChoiceField(queryset=Event.objects.all(), required=False, label=_('Event'))
    detected_after = _datetime(_('After'))
    detected_before = _datetime(_('Before'))
    tag = TagFilterField(model)
