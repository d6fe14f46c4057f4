"""CSV, JSON and YAML import forms; related objects are named the way an operator writes them."""

from django import forms
from django.contrib.contenttypes.models import ContentType
from django.utils.translation import gettext_lazy as _

from dcim.models import Device
from netbox.forms import NetBoxModelImportForm
from utilities.forms.fields import (
    CSVChoiceField,
    CSVContentTypeField,
    CSVModelChoiceField,
    CSVModelMultipleChoiceField,
    JSONField,
)
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
from .model_forms import KeepsHidden, NoSelfDependencyMixin
from .times import OffsetCheckedMixin

__all__ = (
    'BusinessApplicationImportForm',
    'EventImportForm',
    'EventSourceImportForm',
    'IncidentImportForm',
    'MaintenanceImportForm',
    'ServiceDependencyImportForm',
    'TechnicalServiceImportForm',
)

_NAMES_HELP = _('Names separated by commas, encased with double quotes (e.g. "one,two")')


def _by_name(queryset, label, help_text=_NAMES_HELP, to_field_name='name'):
    return CSVModelMultipleChoiceField(
        queryset=queryset,
        required=False,
        to_field_name=to_field_name,
        label=label,
        help_text=help_text,
    )


def _service(label, help_text):
    return CSVModelChoiceField(
        queryset=TechnicalService.objects.all(),
        to_field_name='name',
        label=label,
        help_text=help_text,
    )


def _object_type(required):
    return CSVContentTypeField(
        queryset=ContentType.objects.filter(EVENT_OBJECT_TYPES),
        required=required,
        label=_('Object type'),
        help_text=_(
            'dcim.device, virtualization.virtualmachine, virtualization.cluster, '
            'business_application.technicalservice or business_application.businessapplication'
        ),
    )


class BusinessApplicationImportForm(OffsetCheckedMixin, NetBoxModelImportForm):
    devices = _by_name(Device.objects.all(), _('Devices'))
    virtual_machines = _by_name(VirtualMachine.objects.all(), _('Virtual machines'))

    class Meta:
        model = BusinessApplication
        fields = (
            'appcode',
            'name',
            'description',
            'owner',
            'delegate',
            'link',
            'devices',
            'virtual_machines',
            'tags',
        )


class TechnicalServiceImportForm(OffsetCheckedMixin, NetBoxModelImportForm):
    service_type = CSVChoiceField(choices=ServiceTypeChoices, required=False, label=_('Service type'))
    business_apps = _by_name(
        BusinessApplication.objects.all(),
        _('Business applications'),
        to_field_name='appcode',
        help_text=_('Appcodes separated by commas, encased with double quotes (e.g. "APP1,APP2")'),
    )
    devices = _by_name(Device.objects.all(), _('Devices'))
    vms = _by_name(VirtualMachine.objects.all(), _('Virtual machines'))
    clusters = _by_name(Cluster.objects.all(), _('Clusters'))

    class Meta:
        model = TechnicalService
        fields = ('name', 'service_type', 'description', 'business_apps', 'devices', 'vms', 'clusters', 'tags')

    def clean_service_type(self):
        # An omitted column means the model's default, not an empty (invalid) choice.
        return self.cleaned_data.get('service_type') or ServiceTypeChoices.TECHNICAL


class ServiceDependencyImportForm(NoSelfDependencyMixin, OffsetCheckedMixin, NetBoxModelImportForm):
    upstream_service = _service(_('Upstream service'), _('Name of the service that is depended on'))
    downstream_service = _service(_('Downstream service'), _('Name of the service that depends on the upstream one'))
    dependency_type = CSVChoiceField(choices=DependencyTypeChoices, required=False, label=_('Dependency type'))

    class Meta:
        model = ServiceDependency
        fields = ('name', 'upstream_service', 'downstream_service', 'dependency_type', 'description', 'tags')

    def clean_dependency_type(self):
        return self.cleaned_data.get('dependency_type') or DependencyTypeChoices.NORMAL


class EventSourceImportForm(OffsetCheckedMixin, NetBoxModelImportForm):
    class Meta:
        model = EventSource
        fields = ('name', 'description', 'tags')


class EventImportForm(OffsetCheckedMixin, NetBoxModelImportForm):
    status = CSVChoiceField(choices=EventStatus, label=_('Status'))
    criticallity = CSVChoiceField(choices=EventCrit, label=_('Criticality'))
    content_type = _object_type(required=False)
    event_source = CSVModelChoiceField(
        queryset=EventSource.objects.all(),
        to_field_name='name',
        required=False,
        label=_('Event source'),
        help_text=_('Name of the monitoring system that raised the alert'),
    )
    raw = JSONField(required=False, label=_('Raw payload'))

    class Meta:
        model = Event
        fields = (
            'message',
            'status',
            'criticallity',
            'content_type',
            'object_id',
            'unmapped_label',
            'dedup_id',
            'event_source',
            'last_seen_at',
            'starts_at',
            'ends_at',
            'raw',
            'tags',
        )

    def clean_raw(self):
        return self.cleaned_data.get('raw') or {}


class MaintenanceImportForm(OffsetCheckedMixin, NetBoxModelImportForm):
    content_type = _object_type(required=True)
    status = CSVChoiceField(choices=MaintenanceStatusChoices, label=_('Status'))

    class Meta:
        model = Maintenance
        fields = ('content_type', 'object_id', 'start', 'end', 'status', 'contact', 'description', 'tags')


class IncidentImportForm(KeepsHidden, OffsetCheckedMixin, NetBoxModelImportForm):
    status = CSVChoiceField(choices=IncidentStatusChoices, label=_('Status'))
    severity = CSVChoiceField(choices=EventCrit, label=_('Severity'))
    affected_services = _by_name(TechnicalService.objects.all(), _('Affected services'))
    description = forms.CharField(required=False, label=_('Description'))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.learn_hidden()

    class Meta:
        model = Incident
        fields = (
            'title',
            'description',
            'status',
            'severity',
            'commander',
            'reporter',
            'detected_at',
            'resolved_at',
            'root_cause',
            'affected_services',
            'tags',
        )
