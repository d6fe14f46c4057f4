"""REST serializers, NetBox-style: brief mode, nested objects, tags and custom fields."""

import json
import re

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied

from dcim.api.serializers import DeviceSerializer
from netbox.api.fields import ChoiceField, ContentTypeField, SerializedPKRelatedField
from netbox.api.gfk_fields import GFKSerializerField
from netbox.api.serializers import NetBoxModelSerializer
from virtualization.api.serializers import ClusterSerializer, VirtualMachineSerializer

from ..choices import DependencyTypeChoices, EventCrit, EventStatus, IncidentStatusChoices, MaintenanceStatusChoices
from ..models import (
    EVENT_OBJECT_TYPES,
    BusinessApplication,
    Event,
    EventSource,
    Incident,
    IncidentEvent,
    IncidentTimelineEntry,
    Maintenance,
    ServiceDependency,
    TechnicalService,
)
from ..services import incident_service, intake

__all__ = (
    'BusinessApplicationSerializer',
    'EventSerializer',
    'EventSourceSerializer',
    'IncidentSerializer',
    'MaintenanceSerializer',
    'ServiceDependencySerializer',
    'TechnicalServiceSerializer',
)

#: A character of a text PostgreSQL cannot store (``json.dumps`` writes NUL as an escape instead).
UNSTORABLE = re.compile('[\ud800-\udfff]')


class ObjectTypeField(ContentTypeField):
    """A content type given as ``app_label.model`` (as NetBox does) or by its numeric id (as the guide does)."""

    def to_internal_value(self, data):
        # isdigit() is true for '³' or '٣' too, which int() refuses: only ASCII digits are an id.
        if (
            isinstance(data, int)
            and not isinstance(data, bool)
            or isinstance(data, str)
            and re.fullmatch(r'[0-9]+', data)
        ):
            if not 0 < int(data) < 2**31:
                self.fail('does_not_exist', content_type=data)
            try:
                return self.get_queryset().get(pk=int(data))
            except ContentType.DoesNotExist:
                self.fail('does_not_exist', content_type=data)
        return super().to_internal_value(data)


class BusinessApplicationSerializer(NetBoxModelSerializer):
    url = serializers.HyperlinkedIdentityField(
        view_name='plugins-api:business_application-api:businessapplication-detail'
    )
    devices = SerializedPKRelatedField(
        queryset=DeviceSerializer.Meta.model.objects.all(),
        serializer=DeviceSerializer,
        nested=True,
        many=True,
        required=False,
    )
    virtual_machines = SerializedPKRelatedField(
        queryset=VirtualMachineSerializer.Meta.model.objects.all(),
        serializer=VirtualMachineSerializer,
        nested=True,
        many=True,
        required=False,
    )

    class Meta:
        model = BusinessApplication
        fields = (
            'id',
            'url',
            'display_url',
            'display',
            'appcode',
            'name',
            'description',
            'owner',
            'delegate',
            'link',
            'devices',
            'virtual_machines',
            'tags',
            'custom_fields',
            'created',
            'last_updated',
        )
        brief_fields = ('id', 'url', 'display', 'appcode', 'name', 'description')


class TechnicalServiceSerializer(NetBoxModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name='plugins-api:business_application-api:technicalservice-detail')
    business_apps = SerializedPKRelatedField(
        queryset=BusinessApplication.objects.all(),
        serializer=BusinessApplicationSerializer,
        nested=True,
        many=True,
        required=False,
    )
    devices = SerializedPKRelatedField(
        queryset=DeviceSerializer.Meta.model.objects.all(),
        serializer=DeviceSerializer,
        nested=True,
        many=True,
        required=False,
    )
    vms = SerializedPKRelatedField(
        queryset=VirtualMachineSerializer.Meta.model.objects.all(),
        serializer=VirtualMachineSerializer,
        nested=True,
        many=True,
        required=False,
    )
    clusters = SerializedPKRelatedField(
        queryset=ClusterSerializer.Meta.model.objects.all(),
        serializer=ClusterSerializer,
        nested=True,
        many=True,
        required=False,
    )

    class Meta:
        model = TechnicalService
        fields = (
            'id',
            'url',
            'display_url',
            'display',
            'name',
            'service_type',
            'description',
            'business_apps',
            'devices',
            'vms',
            'clusters',
            'tags',
            'custom_fields',
            'created',
            'last_updated',
        )
        brief_fields = ('id', 'url', 'display', 'name', 'service_type', 'description')


class ServiceDependencySerializer(NetBoxModelSerializer):
    url = serializers.HyperlinkedIdentityField(
        view_name='plugins-api:business_application-api:servicedependency-detail'
    )
    upstream_service = TechnicalServiceSerializer(nested=True)
    downstream_service = TechnicalServiceSerializer(nested=True)
    dependency_type = ChoiceField(choices=DependencyTypeChoices, required=False)

    class Meta:
        model = ServiceDependency
        fields = (
            'id',
            'url',
            'display_url',
            'display',
            'name',
            'description',
            'upstream_service',
            'downstream_service',
            'dependency_type',
            'tags',
            'custom_fields',
            'created',
            'last_updated',
        )
        brief_fields = ('id', 'url', 'display', 'name', 'dependency_type')

    def validate(self, data):
        upstream = data.get('upstream_service', getattr(self.instance, 'upstream_service', None))
        downstream = data.get('downstream_service', getattr(self.instance, 'downstream_service', None))
        if upstream is not None and upstream == downstream:
            raise serializers.ValidationError({'downstream_service': _('A service cannot depend on itself.')})
        return super().validate(data)


class EventSourceSerializer(NetBoxModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name='plugins-api:business_application-api:eventsource-detail')

    class Meta:
        model = EventSource
        fields = (
            'id',
            'url',
            'display_url',
            'display',
            'name',
            'description',
            'tags',
            'custom_fields',
            'created',
            'last_updated',
        )
        brief_fields = ('id', 'url', 'display', 'name', 'description')


class EventSourceRefField(serializers.PrimaryKeyRelatedField):
    """An event source by id, by name, or as ``{"id": ...}`` / ``{"name": ...}``; never created implicitly."""

    default_error_messages = {
        'unknown_name': _('No event source is named {name!r}; create it first under event-sources/.'),
        'bad_form': _('Give an event source id, a name, or an object with "id" or "name".'),
    }

    def to_internal_value(self, data):
        if isinstance(data, dict):
            if 'id' in data:
                data = data['id']
            elif 'name' in data:
                data = str(data['name'])
            else:
                self.fail('bad_form')
        if isinstance(data, str) and not data.isdigit():
            source = self.get_queryset().filter(name=data).first()
            if source is None:
                self.fail('unknown_name', name=data)
            return source
        return super().to_internal_value(data)

    def to_representation(self, value):
        return value.pk

    def use_pk_only_optimization(self):
        return False


class EventSerializer(NetBoxModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name='plugins-api:business_application-api:event-detail')
    status = ChoiceField(choices=EventStatus, required=False)
    criticallity = ChoiceField(choices=EventCrit, required=False)
    content_type = ObjectTypeField(
        queryset=ContentType.objects.filter(EVENT_OBJECT_TYPES), required=False, allow_null=True
    )
    obj = GFKSerializerField(read_only=True, allow_missing_serializer=True)
    event_source = EventSourceRefField(queryset=EventSource.objects.all(), required=False, allow_null=True)
    event_source_name = serializers.CharField(source='event_source.name', read_only=True, default=None)
    incidents = serializers.SerializerMethodField(read_only=True)
    is_mapped = serializers.BooleanField(read_only=True)

    class Meta:
        model = Event
        fields = (
            'id',
            'url',
            'display_url',
            'display',
            'message',
            'status',
            'criticallity',
            'content_type',
            'object_id',
            'obj',
            'is_mapped',
            'unmapped_label',
            'dedup_id',
            'event_source',
            'event_source_name',
            'raw',
            'last_seen_at',
            'starts_at',
            'ends_at',
            'event_time',
            'occurrence',
            'incidents',
            'tags',
            'custom_fields',
            'created',
            'last_updated',
        )
        read_only_fields = ('occurrence',)
        brief_fields = ('id', 'url', 'display', 'message', 'status', 'criticallity')

    def validate_raw(self, value):
        # PostgreSQL's jsonb cannot store NUL characters or lone surrogates (high or low, in a key or
        # a value): refuse them with a reason. A Python string holds a surrogate only when it is lone.
        text = json.dumps(value, ensure_ascii=False)
        if '\\u0000' in text or UNSTORABLE.search(text):
            raise serializers.ValidationError(_('The payload holds a NUL character or a broken Unicode surrogate.'))
        return value

    def get_incidents(self, event) -> list[int]:
        return sorted({m.incident_id for m in event.memberships.all()})

    def validate(self, data):
        content_type = data.get('content_type', getattr(self.instance, 'content_type', None))
        object_id = data.get('object_id', getattr(self.instance, 'object_id', None))
        if (content_type is None) != (object_id is None):
            raise serializers.ValidationError({'object_id': _('Give both content_type and object_id, or neither.')})
        if content_type is not None and not content_type.model_class().objects.filter(pk=object_id).exists():
            raise serializers.ValidationError(
                {'object_id': _('No {model} with id {id} exists.').format(model=content_type.model, id=object_id)}
            )
        if self.instance is not None or self.nested:
            return super().validate(data)
        # A new event: its identity constraint is left to create(), where a repeat of a known alert (even one
        # stored by a concurrent request a moment ago) becomes an update of it instead of an error.
        m2m = {f.name for f in (*Event._meta.local_many_to_many, *Event._meta.related_objects)}
        instance = Event(**{k: v for k, v in data.items() if k not in m2m})
        instance.full_clean(validate_unique=False, validate_constraints=False)
        if 'custom_field_data' in data:
            data['custom_field_data'] = instance.custom_field_data
        return data

    @staticmethod
    def lock_rows(validated_data, existing=None):
        """What the decisions about this alert lock: the alert as sent, and as stored (``existing``)."""
        content_type = validated_data.get('content_type')
        rows = [
            {
                'content_type_id': content_type.pk if content_type is not None else None,
                'object_id': validated_data.get('object_id'),
                'unmapped_label': validated_data.get('unmapped_label', ''),
            }
        ]
        if existing is not None:
            rows.append(existing)
        return rows

    @classmethod
    def _lock_for(cls, validated_data, existing=None):
        """The decision locks of the alert as sent and as stored, taken before its row is locked."""
        incident_service.lock_decisions(cls.lock_rows(validated_data, existing))

    @classmethod
    def lock_batch(cls, items):
        """The decision locks of every alert of a bulk create at once, ascending, before any row is locked:
        two batches holding the same alerts in different orders then queue instead of deadlocking."""
        rows = []
        for validated_data in items:
            stored = intake.find_event(validated_data.get('event_source'), validated_data.get('dedup_id'))
            rows.extend(cls.lock_rows(validated_data, stored))
        incident_service.lock_decisions(rows)

    def create(self, validated_data):
        """Create the event, or update the stored alert with the same event_source and dedup_id."""
        self.upserted = False
        stored = intake.find_event(validated_data.get('event_source'), validated_data.get('dedup_id'))
        self._lock_for(validated_data, stored)
        existing = intake.find_event(validated_data.get('event_source'), validated_data.get('dedup_id'), lock=True)
        if existing is None:
            validated_data.setdefault('event_time', intake.event_time_of(validated_data))
            try:
                with transaction.atomic():
                    return super().create(validated_data)
            except IntegrityError:
                existing = intake.find_event(
                    validated_data.get('event_source'), validated_data.get('dedup_id'), lock=True
                )
                if existing is None:
                    raise
        request = self.context.get('request')
        if request is not None and not Event.objects.restrict(request.user, 'change').filter(pk=existing.pk).exists():
            raise PermissionDenied(_('This alert exists already and you may not change it.'))
        self.upserted = True
        event = super().update(existing, intake.repeat_changes(existing, validated_data))
        if request is not None and not Event.objects.restrict(request.user, 'change').filter(pk=event.pk).exists():
            # Checked after the change too, as NetBox does for updates: the result must still be changeable.
            raise PermissionDenied(_('You may not change this alert to what was sent.'))
        return event

    def update(self, instance, validated_data):
        self._lock_for(validated_data, instance)
        self._read_again(instance, validated_data)
        return super().update(instance, validated_data)

    @staticmethod
    def _read_again(instance, validated_data):
        """Under the decision locks, every field this request does not set as it is stored now: what a delivery
        stored while the request waited for the locks is not undone by saving what was read before. The locks of
        wherever the alert moved meanwhile are taken as well."""
        stored = Event.objects.filter(pk=instance.pk).first()
        if stored is None:
            return
        incident_service.lock_decisions([stored])
        for field in Event._meta.concrete_fields:
            if not field.primary_key and field.name not in validated_data:
                setattr(instance, field.attname, getattr(stored, field.attname))


class IncidentMemberSerializer(serializers.ModelSerializer):
    """Why an event is in an incident: when it joined, its score, each factor and the graph path."""

    event = EventSerializer(nested=True, read_only=True)

    class Meta:
        model = IncidentEvent
        fields = (
            'event',
            'occurrence',
            'joined_at',
            'opened_incident',
            'score',
            'link',
            'factors',
            'path',
            'status',
            'severity',
        )


class TimelineEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = IncidentTimelineEntry
        fields = ('time', 'kind', 'message', 'event', 'data')


def members_queryset():
    """Memberships as the incident API lists them: oldest first, each with its event."""
    return IncidentEvent.objects.select_related('event').order_by('joined_at', 'pk')


def paths_of(memberships):
    """The labels on these memberships' paths, for a Redactor."""
    return [
        label
        for membership in memberships
        for label in (membership.path if isinstance(membership.path, list) else ())
        if isinstance(label, str)
    ]


def redact_paths(redactor, members):
    """Replace, in serialized members, the path labels of objects the redactor's user may not view."""
    for member in members or ():
        if isinstance(member.get('path'), list):
            member['path'] = [redactor.label_text(label) for label in member['path']]


def member_paths(incidents):
    """The labels on the paths of these incidents' members (their memberships prefetched), for a Redactor."""
    return [label for incident in incidents for label in paths_of(incident.memberships.all())]


class IncidentMemberPageSerializer(serializers.Serializer):
    """A page of an incident's members, as NetBox pages its lists."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = IncidentMemberSerializer(many=True)


#: The incident fields that may name objects a user may not view (``?fields=`` and ``?omit=`` pick any of them).
REDACTED_FIELDS = frozenset({'title', 'display', 'root_cause', 'affected_services', 'blast_radius', 'members'})


class IncidentSerializer(NetBoxModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name='plugins-api:business_application-api:incident-detail')
    status = ChoiceField(choices=IncidentStatusChoices, required=False)
    severity = ChoiceField(choices=EventCrit, required=False)
    affected_services = SerializedPKRelatedField(
        queryset=TechnicalService.objects.all(),
        serializer=TechnicalServiceSerializer,
        nested=True,
        many=True,
        required=False,
    )
    members = IncidentMemberSerializer(source='memberships', many=True, read_only=True)
    event_count = serializers.IntegerField(read_only=True, required=False)

    class Meta:
        model = Incident
        fields = (
            'id',
            'url',
            'display_url',
            'display',
            'title',
            'description',
            'status',
            'severity',
            'commander',
            'reporter',
            'detected_at',
            'resolved_at',
            'resolved_event_time',
            'affected_services',
            'root_cause',
            'root_cause_event',
            'blast_radius',
            'merged_into',
            'auto_created',
            'event_count',
            'members',
            'tags',
            'custom_fields',
            'created',
            'last_updated',
        )
        read_only_fields = ('root_cause_event', 'blast_radius', 'merged_into', 'auto_created', 'resolved_event_time')
        brief_fields = ('id', 'url', 'display', 'title', 'status', 'severity')

    def to_representation(self, instance):
        """The incident's own texts without the names of objects the requesting user may not view."""
        data = super().to_representation(instance)
        request = self.context.get('request')
        if request is None:  # an event rule's payload: the stored texts, as every admin-set consumer expects
            if 'display' in data:
                data['display'] = instance.title
            return data
        if not (REDACTED_FIELDS & set(data)):
            return data
        redactor = self.context.get('incident_redactor')
        if redactor is None or instance.pk not in self.context.get('incident_redacted', ()):
            from ..ui.redact import Redactor

            paths = member_paths([instance]) if 'members' in data else ()
            redactor = Redactor(request.user).prepare([instance], texts=paths)
            redactor.prepare_services([instance])
        if redactor.hidden_services and isinstance(data.get('affected_services'), list):
            data['affected_services'] = [
                service
                for service in data['affected_services']
                if not (isinstance(service, dict) and service.get('id') in redactor.hidden_services)
            ]
        if 'title' in data:
            data['title'] = redactor.title(instance)
        if 'display' in data:
            data['display'] = redactor.title(instance)
        if 'root_cause' in data:
            data['root_cause'] = redactor.root_cause(instance)
        if 'blast_radius' in data:
            data['blast_radius'] = redactor.blast_radius(data['blast_radius'])
        redact_paths(redactor, data.get('members'))
        return data

    def validate(self, data):
        """A user who sees the title or root cause redacted may write back what they read (it keeps the stored text)
        but nothing else, the stored text included (accepting it would confirm a guess): a new text would replace
        names they cannot see."""
        request = self.context.get('request')
        if self.instance is not None and request is not None and {'title', 'root_cause'} & set(data):
            from ..ui.redact import Redactor

            redactor = Redactor(request.user).prepare([self.instance])
            shown = {'title': redactor.title(self.instance), 'root_cause': redactor.root_cause(self.instance)}
            redacted = {name for name, text in shown.items() if text != getattr(self.instance, name)}
            if 'title' in redacted:
                redacted.add('root_cause')  # a new root cause would unveil the names the title hides through it
            for name in sorted(redacted & set(data)):
                if data[name] != shown[name]:
                    raise serializers.ValidationError(
                        {name: _('It names objects you may not view, so you cannot change it.')}
                    )
                data.pop(name)
        return super().validate(data)

    def create(self, validated_data):
        validated_data['title_objects'] = []  # a person's title names no object the correlator recorded
        return super().create(validated_data)

    def update(self, instance, validated_data):
        # NetBox's validation has set the new values on the instance already: compare with the stored title
        if 'title' in validated_data and validated_data['title'] == (
            Incident.objects.filter(pk=instance.pk).values_list('title', flat=True).first()
        ):
            del validated_data['title']  # written back unchanged: still the correlator's, naming what it recorded
        request = self.context.get('request')
        if request is not None and 'affected_services' in validated_data:
            from ..ui.redact import hidden_services

            if kept := hidden_services(request.user, instance):
                written = list(validated_data['affected_services'])
                validated_data['affected_services'] = written + [s for s in kept if s not in written]
        instance._edited_fields = {
            name for name in validated_data if name not in ('tags', 'affected_services', 'custom_fields')
        }
        return super().update(instance, validated_data)


class IncidentTimelineSerializer(serializers.Serializer):
    timeline = TimelineEntrySerializer(many=True, read_only=True)


class MaintenanceSerializer(NetBoxModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name='plugins-api:business_application-api:maintenance-detail')
    content_type = ObjectTypeField(queryset=ContentType.objects.filter(EVENT_OBJECT_TYPES))
    obj = GFKSerializerField(read_only=True, allow_missing_serializer=True)
    status = ChoiceField(choices=MaintenanceStatusChoices, required=False)

    class Meta:
        model = Maintenance
        fields = (
            'id',
            'url',
            'display_url',
            'display',
            'content_type',
            'object_id',
            'obj',
            'start',
            'end',
            'status',
            'description',
            'contact',
            'tags',
            'custom_fields',
            'created',
            'last_updated',
        )
        brief_fields = ('id', 'url', 'display', 'status', 'start', 'end')

    def validate(self, data):
        content_type = data.get('content_type', getattr(self.instance, 'content_type', None))
        object_id = data.get('object_id', getattr(self.instance, 'object_id', None))
        if content_type is not None and not content_type.model_class().objects.filter(pk=object_id).exists():
            raise serializers.ValidationError(
                {'object_id': _('No {model} with id {id} exists.').format(model=content_type.model, id=object_id)}
            )
        start = data.get('start', getattr(self.instance, 'start', None))
        end = data.get('end', getattr(self.instance, 'end', None))
        if start and end and end < start:
            raise serializers.ValidationError(
                {'end': _('The end of a maintenance window cannot come before its start.')}
            )
        return super().validate(data)
