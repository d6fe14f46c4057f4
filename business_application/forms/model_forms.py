"""Add and edit forms of the plugin's models."""

from django import forms
from django.contrib.contenttypes.models import ContentType
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

from dcim.models import Device
from netbox.forms import NetBoxModelForm
from utilities.forms.fields import (
    DynamicModelChoiceField,
    DynamicModelMultipleChoiceField,
    GenericObjectChoiceField,
    JSONField,
)
from utilities.forms.mixins import GenericObjectFormMixin
from utilities.forms.rendering import FieldSet, M2MAddRemoveFields
from utilities.forms.widgets import DateTimePicker
from virtualization.models import Cluster, VirtualMachine

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
    'BusinessApplicationForm',
    'EventForm',
    'EventSourceForm',
    'IncidentForm',
    'MaintenanceForm',
    'NoSelfDependencyMixin',
    'ServiceDependencyForm',
    'TechnicalServiceForm',
)


def _m2m_fields(queryset, label):
    """The three fields M2MAddRemoveFields expects: the whole set, and the add and remove deltas."""
    return (
        DynamicModelMultipleChoiceField(queryset=queryset, label=label, required=False),
        DynamicModelMultipleChoiceField(queryset=queryset, label=_('Add {}').format(label), required=False),
        DynamicModelMultipleChoiceField(queryset=queryset, label=_('Remove {}').format(label), required=False),
    )


class M2MAddRemoveMixin:
    """Offers a plain multi-select per relation, or add and remove fields once the relation is large.

    A service carried by a cluster can hold hundreds of VMs; pre-selecting all of them would make the page
    unusable, so past NetBox's threshold the form switches to deltas (NetBoxModelForm applies them).
    """

    m2m_add_remove = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.m2m_add_remove:
            count = getattr(self.instance, name).count() if self.instance.pk else 0
            if count >= M2MAddRemoveFields.THRESHOLD:
                self.fields.pop(name)
                self.fields[f'remove_{name}'].help_text = _('{count} currently assigned').format(count=count)
            else:
                self.fields.pop(f'add_{name}')
                self.fields.pop(f'remove_{name}')
                if self.instance.pk and name not in self.initial:
                    self.initial[name] = list(getattr(self.instance, name).values_list('pk', flat=True))


class BusinessApplicationForm(M2MAddRemoveMixin, OffsetCheckedMixin, NetBoxModelForm):
    devices, add_devices, remove_devices = _m2m_fields(Device.objects.all(), _('devices'))
    virtual_machines, add_virtual_machines, remove_virtual_machines = _m2m_fields(
        VirtualMachine.objects.all(), _('virtual machines')
    )
    link = forms.URLField(label=_('Link'), assume_scheme='https', required=False)

    m2m_add_remove = ('devices', 'virtual_machines')
    fieldsets = (
        FieldSet('appcode', 'name', 'description', 'owner', 'delegate', 'link', 'tags', name=_('Business application')),
        FieldSet(M2MAddRemoveFields('devices'), M2MAddRemoveFields('virtual_machines'), name=_('Runs on')),
    )

    class Meta:
        model = BusinessApplication
        fields = ('appcode', 'name', 'description', 'owner', 'delegate', 'link', 'tags')


class TechnicalServiceForm(M2MAddRemoveMixin, OffsetCheckedMixin, NetBoxModelForm):
    business_apps = DynamicModelMultipleChoiceField(
        queryset=BusinessApplication.objects.all(),
        label=_('Business applications'),
        required=False,
    )
    devices, add_devices, remove_devices = _m2m_fields(Device.objects.all(), _('devices'))
    vms, add_vms, remove_vms = _m2m_fields(VirtualMachine.objects.all(), _('virtual machines'))
    clusters, add_clusters, remove_clusters = _m2m_fields(Cluster.objects.all(), _('clusters'))

    m2m_add_remove = ('devices', 'vms', 'clusters')
    fieldsets = (
        FieldSet('name', 'service_type', 'description', 'business_apps', 'tags', name=_('Technical service')),
        FieldSet(
            M2MAddRemoveFields('devices'),
            M2MAddRemoveFields('vms'),
            M2MAddRemoveFields('clusters'),
            name=_('Carried by'),
        ),
    )

    class Meta:
        model = TechnicalService
        fields = ('name', 'service_type', 'description', 'business_apps', 'tags')


class NoSelfDependencyMixin:
    """Rejects a service depending on itself with a message on the downstream field, before the database is asked.

    The model's clean() and check constraint reject it too; this names the mistake in the operator's words.
    """

    def clean(self):
        cleaned_data = super().clean() or self.cleaned_data  # some of NetBox's form mixins return None
        upstream = cleaned_data.get('upstream_service')
        if upstream is not None and upstream == cleaned_data.get('downstream_service'):
            raise forms.ValidationError(
                {
                    'downstream_service': _(
                        'A service cannot depend on itself: choose a different downstream service.'
                    ),
                }
            )
        return cleaned_data


class ServiceDependencyForm(NoSelfDependencyMixin, OffsetCheckedMixin, NetBoxModelForm):
    upstream_service = DynamicModelChoiceField(
        queryset=TechnicalService.objects.all(),
        label=_('Upstream service'),
        selector=True,
        help_text=_('The service that is depended on'),
    )
    downstream_service = DynamicModelChoiceField(
        queryset=TechnicalService.objects.all(),
        label=_('Downstream service'),
        selector=True,
        help_text=_('The service that depends on the upstream one'),
    )

    fieldsets = (
        FieldSet(
            'name',
            'upstream_service',
            'downstream_service',
            'dependency_type',
            'description',
            'tags',
            name=_('Service dependency'),
        ),
    )

    class Meta:
        model = ServiceDependency
        fields = ('name', 'upstream_service', 'downstream_service', 'dependency_type', 'description', 'tags')


class EventSourceForm(OffsetCheckedMixin, NetBoxModelForm):
    fieldsets = (FieldSet('name', 'description', 'tags', name=_('Event source')),)

    class Meta:
        model = EventSource
        fields = ('name', 'description', 'tags')


def _object_field(html_id, required):
    return GenericObjectChoiceField(
        label=_('Object'),
        content_type_queryset=ContentType.objects.filter(EVENT_OBJECT_TYPES),
        required=required,
        selector=True,
        hx_target_id=html_id,
    )


class EventForm(GenericObjectFormMixin, OffsetCheckedMixin, NetBoxModelForm):
    """An alert entered or corrected by hand; the correlation bookkeeping stays out of reach."""

    obj = _object_field('event-object', required=False)
    event_source = DynamicModelChoiceField(
        queryset=EventSource.objects.all(),
        label=_('Event source'),
        required=False,
        quick_add=True,
    )
    raw = JSONField(label=_('Raw payload'), required=False, help_text=_('The original alert payload, as JSON'))

    fieldsets = (
        FieldSet('message', 'status', 'criticallity', 'event_source', 'dedup_id', 'tags', name=_('Event')),
        FieldSet('obj', 'unmapped_label', name=_('Affected object'), html_id='event-object'),
        FieldSet('last_seen_at', 'starts_at', 'ends_at', 'event_time', name=_('Times')),
        FieldSet('raw', name=_('Payload')),
    )

    class Meta:
        model = Event
        fields = (
            'message',
            'status',
            'criticallity',
            'event_source',
            'dedup_id',
            'unmapped_label',
            'last_seen_at',
            'starts_at',
            'ends_at',
            'event_time',
            'raw',
            'tags',
        )
        widgets = {
            'message': forms.Textarea(attrs={'rows': 3}),
            'last_seen_at': DateTimePicker(),
            'starts_at': DateTimePicker(),
            'ends_at': DateTimePicker(),
            'event_time': DateTimePicker(),
        }

    def clean_raw(self):
        return self.cleaned_data.get('raw') or {}


class MaintenanceForm(GenericObjectFormMixin, OffsetCheckedMixin, NetBoxModelForm):
    obj = _object_field('maintenance-object', required=True)

    fieldsets = (
        FieldSet('obj', name=_('Object under maintenance'), html_id='maintenance-object'),
        FieldSet('status', 'start', 'end', 'contact', 'description', 'tags', name=_('Maintenance window')),
    )

    class Meta:
        model = Maintenance
        fields = ('status', 'start', 'end', 'contact', 'description', 'tags')
        widgets = {
            'start': DateTimePicker(),
            'end': DateTimePicker(),
        }


class KeepsHidden:
    """What an edit of an existing incident (the edit form, a CSV import with ``id``) keeps for a user who may not
    view every object it names: the stored title and root cause where the user sees them redacted (the user may
    submit what they were shown, nothing else), and the affected services and root-cause event NetBox leaves out of
    the user's choices. Two queries, for a user who may not view every service and event; none otherwise."""

    def learn_hidden(self):
        """Learn what to keep; the fields (title, root cause) the user sees redacted, with what they see."""
        from ..ui.redact import hidden_services, page_redactor

        self.kept, self.hidden_services, self.hidden_event, self.shown = {}, [], None, {}
        redactor = page_redactor()
        if redactor is None or self.instance.pk is None:
            return {}
        self.hidden_services = hidden_services(redactor.user, self.instance)
        events, event_id = Event.objects.all(), self.instance.root_cause_event_id
        if event_id is not None and (visible := events.restrict(redactor.user, 'view')) is not events:
            if not visible.filter(pk=event_id).exists():
                self.hidden_event = self.instance.root_cause_event
        redactor.prepare([self.instance])
        shown = {'title': redactor.title(self.instance), 'root_cause': redactor.root_cause(self.instance)}
        redacted = {name for name, text in shown.items() if text != getattr(self.instance, name)}
        if 'title' in redacted:
            redacted.add('root_cause')  # a new root cause would unveil the names the title hides through it
        for name in redacted & set(self.fields):
            self.kept[name], self.shown[name] = getattr(self.instance, name), shown[name]
        return dict(self.shown)

    def clean(self):
        super().clean()
        for name, stored in self.kept.items():
            field = self.fields.get(name)  # a CSV import leaves out the fields its rows do not set
            if field is None or name not in self.cleaned_data:
                continue
            if field.disabled or self.cleaned_data[name] == self.shown[name]:
                self.cleaned_data[name] = stored  # the stored text, never the redacted one the user was shown
            else:
                self.add_error(name, _('It names objects you may not view, so you cannot change it.'))
        if self.hidden_services and 'affected_services' in self.cleaned_data:
            written = list(self.cleaned_data['affected_services'] or ())
            self.cleaned_data['affected_services'] = written + [s for s in self.hidden_services if s not in written]
        if self.hidden_event is not None and 'root_cause_event' in self.fields:
            if self.cleaned_data.get('root_cause_event') is None:
                self.cleaned_data['root_cause_event'] = self.hidden_event
        return self.cleaned_data

    def save(self, *args, **kwargs):
        if self.instance.pk is None or 'title' in self.changed_data:
            self.instance.title_objects = []  # a person's title names no object the correlator recorded
        return super().save(*args, **kwargs)


class IncidentForm(KeepsHidden, OffsetCheckedMixin, NetBoxModelForm):
    affected_services = DynamicModelMultipleChoiceField(
        queryset=TechnicalService.objects.all(),
        label=_('Affected services'),
        required=False,
    )
    root_cause_event = DynamicModelChoiceField(
        queryset=Event.objects.all(),
        label=_('Root cause event'),
        required=False,
        selector=True,
    )

    fieldsets = (
        FieldSet('title', 'status', 'severity', 'description', 'tags', name=_('Incident')),
        FieldSet('commander', 'reporter', name=_('People')),
        FieldSet('detected_at', 'resolved_at', name=_('Times')),
        FieldSet('root_cause', 'root_cause_event', 'affected_services', name=_('Analysis')),
    )

    class Meta:
        model = Incident
        fields = (
            'title',
            'status',
            'severity',
            'description',
            'commander',
            'reporter',
            'detected_at',
            'resolved_at',
            'root_cause',
            'root_cause_event',
            'affected_services',
            'tags',
        )
        widgets = {
            'detected_at': DateTimePicker(),
            'resolved_at': DateTimePicker(),
        }

    #: Fields the correlation service also writes. On an edit, each carries the value the page showed in a
    #: hidden initial input, so only what the person changed from that is saved: a severity, root cause or
    #: member service the service changed while the form was open is not written back.
    CORRELATOR_FIELDS = (
        'title',
        'status',
        'severity',
        'description',
        'resolved_at',
        'root_cause',
        'root_cause_event',
        'affected_services',
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            for name in self.CORRELATOR_FIELDS:
                if name in self.fields:
                    self.fields[name].show_hidden_initial = True
        for name, text in self.learn_hidden().items():
            # Shown as the user sees it, and not editable: saving a redacted text would overwrite the stored one
            self.fields[name].disabled = True
            self.fields[name].help_text = _('It names objects you may not view, so you cannot change it.')
            self.initial[name] = text

    def hidden_fields(self):
        # NetBox renders visible fields through its own tags, which leave out the hidden initial inputs; the
        # hidden fields are rendered as they are, so the initial inputs travel with them.
        fields = super().hidden_fields()
        if self.instance.pk:
            fields += [
                mark_safe(self[name].as_hidden(only_initial=True))  # noqa: S308 - Django's own escaped widget HTML
                for name in self.CORRELATOR_FIELDS
                if name in self.fields
            ]
        return fields

    def save(self, commit=True):
        if self.instance.pk:
            self.instance._edited_fields = set(self.changed_data)
            if 'affected_services' not in self.changed_data:
                self.cleaned_data.pop('affected_services', None)
        return super().save(commit=commit)
