"""Filter sets of the plugin's models, shared by the list pages and the REST API."""

import json
from datetime import datetime, timedelta

import django_filters
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import DataError, connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext as _
from django_filters.constants import EMPTY_VALUES
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from dcim.models import Device
from netbox.filtersets import NetBoxModelFilterSet
from utilities.filters import MultiValueContentTypeFilter
from utilities.filtersets import register_filterset
from virtualization.models import Cluster, VirtualMachine

from .choices import (
    DependencyTypeChoices,
    EventCrit,
    EventStatus,
    IncidentStatusChoices,
    MaintenanceStatusChoices,
    ServiceTypeChoices,
)
from .models import (
    BusinessApplication,
    Event,
    EventSource,
    Incident,
    IncidentEvent,
    Maintenance,
    ServiceDependency,
    TechnicalService,
)

__all__ = (
    'BusinessApplicationFilterSet',
    'EventFilterSet',
    'EventSourceFilterSet',
    'IncidentFilterSet',
    'MaintenanceFilterSet',
    'ServiceDependencyFilterSet',
    'TechnicalServiceFilterSet',
)


def _id_filter(queryset, field_name, label):
    # null_label makes ``<name>=null`` mean "none" (IS NULL), as on NetBox's own id filters, not a 500.
    return django_filters.ModelMultipleChoiceFilter(
        queryset=queryset, field_name=field_name, label=label, null_label=_('None')
    )


def _name_filter(queryset, field_name, to_field_name, label):
    return django_filters.ModelMultipleChoiceFilter(
        queryset=queryset,
        field_name=f'{field_name}__{to_field_name}',
        to_field_name=to_field_name,
        label=label,
    )


def postgres_regex(value):
    """Refuse a pattern PostgreSQL cannot compile (its syntax is not Python's), so ``<field>__regex=(`` is a
    400 naming the filter instead of a database error."""
    for pattern in value if isinstance(value, list | tuple) else [value]:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT '' ~ %s", [pattern])
        except DataError as error:
            reason = str(error).splitlines()[0]
            raise ValidationError(
                _('%(pattern)r is not a valid regular expression: %(reason)s'),
                params={
                    'pattern': pattern[:100],
                    'reason': reason,
                },
            ) from None


#: PostgreSQL's largest time zone offset is 15:59; Python parses offsets up to 23:59.
MAX_OFFSET = timedelta(hours=15, minutes=59)


def postgres_offset(value):
    """Refuse a time whose zone offset PostgreSQL cannot take (``-17:34``), instead of a database error."""
    for moment in value if isinstance(value, list | tuple) else [value]:
        offset = moment.utcoffset() if isinstance(moment, datetime) else None
        if offset is not None and abs(offset) > MAX_OFFSET:
            raise ValidationError(
                _('%(time)s has a time zone offset beyond +/-15:59'), params={'time': moment.isoformat()}
            )


#: The models whose objects a filter offers only as far as the request's user may view them: those an incident's
#: texts and the map name.
VIEWED_MODELS = (Device, VirtualMachine, Cluster, TechnicalService, BusinessApplication, Event)


class CheckedFilterSet(NetBoxModelFilterSet):
    """NetBox's filter set, with the regular-expression lookups and the time zone offsets of time filters
    checked before they reach the database (found by the schemathesis run: both were 500s), and the related
    objects the request's user may not view left out of the filters' choices, so that choosing one (by id or by
    name) answers as choosing one that does not exist does: a 400 in the REST API, no filter on the list page."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        user = getattr(self.request, 'user', None)
        for filter_ in self.filters.values():
            if filter_.lookup_expr in ('regex', 'iregex'):
                filter_.field.validators.append(postgres_regex)
            elif 'DateTime' in type(filter_).__name__:
                filter_.field.validators.append(postgres_offset)
            queryset = getattr(filter_, 'queryset', None)
            if user is not None and getattr(queryset, 'model', None) in VIEWED_MODELS:
                filter_.queryset = queryset.restrict(user, 'view')


@extend_schema_field(OpenApiTypes.INT)
class ObjectIdFilter(django_filters.ModelMultipleChoiceFilter):
    """Object ids matched by a filter method (the schema otherwise guesses strings); ``null`` is passed on to
    the method as the string ``'null'``."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault('null_label', _('None'))
        super().__init__(*args, **kwargs)


@register_filterset
class BusinessApplicationFilterSet(CheckedFilterSet):
    device_id = _id_filter(Device.objects.all(), 'devices', _('Device (ID)'))
    device = _name_filter(Device.objects.all(), 'devices', 'name', _('Device (name)'))
    virtual_machine_id = _id_filter(VirtualMachine.objects.all(), 'virtual_machines', _('Virtual machine (ID)'))
    virtual_machine = _name_filter(
        VirtualMachine.objects.all(), 'virtual_machines', 'name', _('Virtual machine (name)')
    )
    technical_service_id = _id_filter(TechnicalService.objects.all(), 'technical_services', _('Technical service (ID)'))
    technical_service = _name_filter(
        TechnicalService.objects.all(), 'technical_services', 'name', _('Technical service (name)')
    )

    class Meta:
        model = BusinessApplication
        fields = ('id', 'appcode', 'name', 'description', 'owner', 'delegate', 'link')

    def search(self, queryset, name, value):
        if not value.strip():
            return queryset
        return queryset.filter(
            Q(appcode__icontains=value)
            | Q(name__icontains=value)
            | Q(owner__icontains=value)
            | Q(delegate__icontains=value)
            | Q(description__icontains=value)
        )


@register_filterset
class TechnicalServiceFilterSet(CheckedFilterSet):
    service_type = django_filters.MultipleChoiceFilter(choices=ServiceTypeChoices, distinct=False)
    device_id = _id_filter(Device.objects.all(), 'devices', _('Device (ID)'))
    device = _name_filter(Device.objects.all(), 'devices', 'name', _('Device (name)'))
    virtual_machine_id = _id_filter(VirtualMachine.objects.all(), 'vms', _('Virtual machine (ID)'))
    virtual_machine = _name_filter(VirtualMachine.objects.all(), 'vms', 'name', _('Virtual machine (name)'))
    cluster_id = _id_filter(Cluster.objects.all(), 'clusters', _('Cluster (ID)'))
    cluster = _name_filter(Cluster.objects.all(), 'clusters', 'name', _('Cluster (name)'))
    business_application_id = _id_filter(
        BusinessApplication.objects.all(), 'business_apps', _('Business application (ID)')
    )
    business_application = _name_filter(
        BusinessApplication.objects.all(), 'business_apps', 'appcode', _('Business application (appcode)')
    )
    incident_id = _id_filter(Incident.objects.all(), 'incidents', _('Affected by incident (ID)'))
    depends_on_id = django_filters.ModelMultipleChoiceFilter(
        queryset=TechnicalService.objects.all(),
        null_label=_('None'),
        field_name='upstream_dependencies__upstream_service',
        label=_('Depends directly on service (ID)'),
    )
    dependency_of_id = django_filters.ModelMultipleChoiceFilter(
        queryset=TechnicalService.objects.all(),
        null_label=_('None'),
        field_name='downstream_dependencies__downstream_service',
        label=_('Directly depended on by service (ID)'),
    )

    class Meta:
        model = TechnicalService
        fields = ('id', 'name', 'description')

    def search(self, queryset, name, value):
        if not value.strip():
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


@register_filterset
class ServiceDependencyFilterSet(CheckedFilterSet):
    upstream_service_id = _id_filter(TechnicalService.objects.all(), 'upstream_service', _('Upstream service (ID)'))
    upstream_service = _name_filter(
        TechnicalService.objects.all(), 'upstream_service', 'name', _('Upstream service (name)')
    )
    downstream_service_id = _id_filter(
        TechnicalService.objects.all(), 'downstream_service', _('Downstream service (ID)')
    )
    downstream_service = _name_filter(
        TechnicalService.objects.all(), 'downstream_service', 'name', _('Downstream service (name)')
    )
    service_id = ObjectIdFilter(
        queryset=TechnicalService.objects.all(),
        method='filter_service',
        label=_('Either service (ID)'),
    )
    dependency_type = django_filters.MultipleChoiceFilter(choices=DependencyTypeChoices, distinct=False)

    class Meta:
        model = ServiceDependency
        fields = ('id', 'name', 'description')

    def search(self, queryset, name, value):
        if not value.strip():
            return queryset
        return queryset.filter(
            Q(name__icontains=value)
            | Q(description__icontains=value)
            | Q(upstream_service__name__icontains=value)
            | Q(downstream_service__name__icontains=value)
        )

    def filter_service(self, queryset, name, value):
        services = [item for item in value if isinstance(item, TechnicalService)]
        if not value:
            return queryset
        # Both ends of a dependency are always set, so ``null`` matches nothing.
        return queryset.filter(Q(upstream_service__in=services) | Q(downstream_service__in=services))


@register_filterset
class EventSourceFilterSet(CheckedFilterSet):
    class Meta:
        model = EventSource
        fields = ('id', 'name', 'description')

    def search(self, queryset, name, value):
        if not value.strip():
            return queryset
        return queryset.filter(Q(name__icontains=value) | Q(description__icontains=value))


class GenericObjectFilterMixin(django_filters.FilterSet):
    """Filters on the object an event or a maintenance window points at (``content_type`` plus ``object_id``)."""

    content_type = MultiValueContentTypeFilter(label=_('Object type (app.model)'))
    content_type_id = django_filters.ModelMultipleChoiceFilter(
        queryset=ContentType.objects.all(),
        null_label=_('None'),
        field_name='content_type',
        distinct=False,
        label=_('Object type (ID)'),
    )
    device_id = ObjectIdFilter(
        queryset=Device.objects.all(),
        method='filter_object',
        label=_('Device (ID)'),
    )
    virtual_machine_id = ObjectIdFilter(
        queryset=VirtualMachine.objects.all(),
        method='filter_object',
        label=_('Virtual machine (ID)'),
    )
    cluster_id = ObjectIdFilter(
        queryset=Cluster.objects.all(),
        method='filter_object',
        label=_('Cluster (ID)'),
    )
    technical_service_id = ObjectIdFilter(
        queryset=TechnicalService.objects.all(),
        method='filter_object',
        label=_('Technical service (ID)'),
    )
    business_application_id = ObjectIdFilter(
        queryset=BusinessApplication.objects.all(),
        method='filter_object',
        label=_('Business application (ID)'),
    )

    def filter_object(self, queryset, name, value):
        """Rows pointing at one of the given objects; ``null`` among the values also matches rows that point at
        no object of this type (as ``<field>_id=null`` does on NetBox's own foreign-key filters)."""
        if not value:
            return queryset
        model = self.filters[name].queryset.model
        content_type = ContentType.objects.get_for_model(model)
        objects = [item.pk for item in value if isinstance(item, model)]
        matches = Q(content_type=content_type, object_id__in=objects) if objects else Q(pk__in=[])
        if len(objects) != len(value):
            matches |= ~Q(content_type=content_type) | Q(object_id__isnull=True)
        return queryset.filter(matches)


@register_filterset
class EventFilterSet(GenericObjectFilterMixin, CheckedFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=EventStatus, distinct=False)
    criticallity = django_filters.MultipleChoiceFilter(choices=EventCrit, distinct=False)
    event_source_id = _id_filter(EventSource.objects.all(), 'event_source', _('Event source (ID)'))
    event_source = _name_filter(EventSource.objects.all(), 'event_source', 'name', _('Event source (name)'))
    mapped = django_filters.BooleanFilter(method='filter_mapped', label=_('Mapped to a NetBox object'))
    last_seen_after = django_filters.DateTimeFilter(field_name='last_seen_at', lookup_expr='gte')
    last_seen_before = django_filters.DateTimeFilter(field_name='last_seen_at', lookup_expr='lte')
    incident_id = _id_filter(Incident.objects.all(), 'incidents', _('Incident (ID)'))

    class Meta:
        model = Event
        fields = (
            'id',
            'message',
            'object_id',
            'dedup_id',
            'unmapped_label',
            'last_seen_at',
            'starts_at',
            'ends_at',
            'event_time',
        )

    def search(self, queryset, name, value):
        if not value.strip():
            return queryset
        return queryset.filter(
            Q(message__icontains=value) | Q(dedup_id__icontains=value) | Q(unmapped_label__icontains=value)
        )

    def filter_mapped(self, queryset, name, value):
        if value is None:
            return queryset
        mapped = Q(content_type__isnull=False, object_id__isnull=False)
        return queryset.filter(mapped) if value else queryset.exclude(mapped)


@register_filterset
class MaintenanceFilterSet(GenericObjectFilterMixin, CheckedFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=MaintenanceStatusChoices, distinct=False)
    active_at = django_filters.IsoDateTimeFilter(
        method='filter_active_at',
        label=_('Suppressing events at this time'),
    )

    class Meta:
        model = Maintenance
        fields = ('id', 'object_id', 'start', 'end', 'description', 'contact')

    def search(self, queryset, name, value):
        if not value.strip():
            return queryset
        return queryset.filter(Q(description__icontains=value) | Q(contact__icontains=value))

    def filter_active_at(self, queryset, name, value):
        if value is None:
            return queryset
        return queryset.filter(status__in=MaintenanceStatusChoices.ACTIVE, start__lte=value, end__gte=value)


#: The incident texts the correlator writes with the names of map objects in them, which a user who may not view
#: those objects sees redacted.
REDACTED_FIELDS = ('title', 'root_cause')

#: How a lookup NetBox generates for these texts reads in Python; ``empty`` needs none (a redacted text is empty
#: exactly when the stored one is) and the regular expressions are run by PostgreSQL itself.
TEXT_LOOKUPS = {
    'exact': lambda text, value: text == value,
    'iexact': lambda text, value: text.upper() == value.upper(),
    'icontains': lambda text, value: value.upper() in text.upper(),
    'istartswith': lambda text, value: text.upper().startswith(value.upper()),
    'iendswith': lambda text, value: text.upper().endswith(value.upper()),
}
REGEX_OPERATORS = {'regex': '~', 'iregex': '~*'}


def regex_matches(texts, patterns, operator):
    """The indexes of the texts matching any of the patterns, as PostgreSQL reads them (one query)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT i FROM unnest(%s::text[]) WITH ORDINALITY AS r(t, i) WHERE t {operator} ANY(%s::text[])',
            [texts, patterns],
        )
        return {i - 1 for (i,) in cursor.fetchall()}


def pairs_q(keys):
    """Incidents of these keys: (title, root cause, objects named in the title), or ('pk', id) for a correlator's
    title an earlier version wrote without recording its objects; none for no key."""
    titles, pks = {}, []
    for key in keys:
        if key[0] == 'pk' and len(key) == 2:
            pks.append(key[1])
        else:
            title, root_cause, objects = key
            titles.setdefault((root_cause, objects), []).append(title)
    matches = Q(pk__in=pks)
    for (root_cause, objects), names in titles.items():
        stored = json.loads(objects)
        same_objects = Q(title_objects__isnull=True) if stored is None else Q(title_objects=stored)
        matches |= Q(root_cause=root_cause, title__in=names) & same_objects
    return matches


class RedactedTexts:
    """The incidents of a set that a user sees redacted, by what decides what the user sees: the distinct (title,
    root cause, objects named in the title), and each incident apart whose correlator's title an earlier version wrote
    without recording its objects (its root cause and blast radius then decide). Incidents whose texts can name
    nothing (no root cause, no label in the title, no object recorded, nor an earlier correlator's title) are not
    read. The correlator writes few distinct keys, so their number follows that of the objects named, not that of
    the incidents."""

    def __init__(self, user, queryset):
        from .ui.redact import TITLE_KINDS, Redactor

        scope = Incident.objects.filter(pk__in=queryset.values('pk')).order_by()
        correlators = Q()
        for what in TITLE_KINDS:  # the titles the correlator writes (``MapView.title_for``)
            correlators |= Q(title__startswith=f'{what} affecting ')
        legacy = Q(title_objects__isnull=True) & correlators
        # A label needs a colon; NULL objects with a correlator's title are the legacy ones above
        unnamed = (
            Q(root_cause='')
            & ~Q(title__contains=':')
            & (Q(title_objects=[]) | (Q(title_objects__isnull=True) & ~correlators))
        )
        keyed = [
            (
                (title, root_cause, json.dumps(objects, sort_keys=True)),
                Incident(title=title, root_cause=root_cause, title_objects=objects),
            )
            for title, root_cause, objects in scope.exclude(legacy)
            .exclude(unnamed)
            .values_list('title', 'root_cause', 'title_objects')
            .distinct()
        ]
        keyed += [
            (('pk', pk), Incident(title=title, root_cause=root_cause, title_objects=None, blast_radius=blast))
            for pk, title, root_cause, blast in scope.filter(legacy).values_list(
                'pk', 'title', 'root_cause', 'blast_radius'
            )
        ]
        redactor = Redactor(user).prepare([incident for _, incident in keyed])
        self.seen = {}
        for key, incident in keyed:
            seen = {'title': redactor.title(incident), 'root_cause': redactor.root_cause(incident)}
            if seen['title'] != incident.title or seen['root_cause'] != incident.root_cause:
                self.seen[key] = seen
        self.affected = pairs_q(self.seen)

    def matching(self, field, lookup, values):
        """The redacted pairs whose text ``field`` matches one of the values under ``lookup``."""
        values = [value for value in values if value is not None]  # ``null`` matches no stored text either
        pairs = list(self.seen)
        if lookup in REGEX_OPERATORS:
            texts = [self.seen[pair][field] for pair in pairs]
            return {pairs[i] for i in regex_matches(texts, values, REGEX_OPERATORS[lookup])} if values else set()
        matches = TEXT_LOOKUPS[lookup]
        return {pair for pair in pairs if any(matches(self.seen[pair][field], value) for value in values)}

    def searching(self, value):
        """The redacted pairs whose title or root cause contains ``value``, as ``q`` reads them."""
        return self.matching('title', 'icontains', [value]) | self.matching('root_cause', 'icontains', [value])


@register_filterset
class IncidentFilterSet(CheckedFilterSet):
    status = django_filters.MultipleChoiceFilter(choices=IncidentStatusChoices, distinct=False)
    severity = django_filters.MultipleChoiceFilter(choices=EventCrit, distinct=False)
    is_open = django_filters.BooleanFilter(method='filter_is_open', label=_('Open'))
    affected_service_id = _id_filter(TechnicalService.objects.all(), 'affected_services', _('Affected service (ID)'))
    affected_service = _name_filter(
        TechnicalService.objects.all(), 'affected_services', 'name', _('Affected service (name)')
    )
    event_id = _id_filter(Event.objects.all(), 'events', _('Event (ID)'))
    root_cause_event_id = _id_filter(Event.objects.all(), 'root_cause_event', _('Root cause event (ID)'))
    device_id = django_filters.ModelMultipleChoiceFilter(
        queryset=Device.objects.all(), method='filter_event_object', label=_('Device of an event (ID)')
    )
    virtual_machine_id = django_filters.ModelMultipleChoiceFilter(
        queryset=VirtualMachine.objects.all(), method='filter_event_object', label=_('Virtual machine of an event (ID)')
    )
    cluster_id = django_filters.ModelMultipleChoiceFilter(
        queryset=Cluster.objects.all(), method='filter_event_object', label=_('Cluster of an event (ID)')
    )
    detected_after = django_filters.DateTimeFilter(field_name='detected_at', lookup_expr='gte')
    detected_before = django_filters.DateTimeFilter(field_name='detected_at', lookup_expr='lte')

    class Meta:
        model = Incident
        fields = (
            'id',
            'title',
            'description',
            'commander',
            'reporter',
            'root_cause',
            'detected_at',
            'resolved_at',
        )

    def search(self, queryset, name, value):
        if not value.strip():
            return queryset
        return queryset.filter(
            Q(title__icontains=value)
            | Q(description__icontains=value)
            | Q(root_cause__icontains=value)
            | Q(commander__icontains=value)
        )

    def filter_queryset(self, queryset):
        """Apply the filters; for a user who may not view every object an incident's title or root cause names,
        the text filters on them (``q`` included) answer on what the user sees of these texts, so that filtering
        on a hidden name tells nothing about it.

        Incidents whose texts the user sees unredacted are filtered in SQL as usual; those with a redacted text
        are judged on it, once per distinct (title, root cause) pair: a positive lookup keeps the pairs whose
        redacted text matches, a negated one (``n``, ``nic``, ``nisw``...) the pairs whose redacted text does not.
        Regular expressions are run by PostgreSQL; the other lookups by Python, whose upper-casing of a few
        non-ASCII letters (``ß``) differs from PostgreSQL's. A user who sees everything costs no extra query.
        """
        cleaned = self.form.cleaned_data
        deferred = {
            name: cleaned.pop(name)
            for name in list(cleaned)
            if cleaned[name] not in EMPTY_VALUES and self._is_redacted_filter(name)
        }
        try:
            queryset = super().filter_queryset(queryset)
        finally:
            cleaned.update(deferred)
        if not deferred:
            return queryset

        texts = RedactedTexts(self.request.user, queryset)
        if not texts.seen:
            for name, value in deferred.items():
                queryset = self.filters[name].filter(queryset, value)
            return queryset
        for name, value in deferred.items():
            queryset = self._filter_redacted(queryset, self.filters[name], value, texts)
        return queryset

    def _is_redacted_filter(self, name):
        """Whether a filter reads a redacted text, for a request whose user may not view everything."""
        from .ui.redact import Redactor

        filter_ = self.filters[name]
        if name != 'q' and (filter_.field_name not in REDACTED_FIELDS or filter_.lookup_expr == 'empty'):
            return False
        user = getattr(self.request, 'user', None)
        return user is not None and not Redactor.sees_everything(user)

    def _filter_redacted(self, queryset, filter_, value, texts):
        if filter_.field_name == 'q':
            if not value.strip():
                return queryset
            unredacted = Q(title__icontains=value) | Q(root_cause__icontains=value)
            return queryset.filter(
                Q(description__icontains=value)
                | Q(commander__icontains=value)
                | (unredacted & ~texts.affected)
                | pairs_q(texts.searching(value))
            )
        values = [None if item == filter_.null_value else item for item in set(value)]
        stored = Q(pk__in=[])
        for item in values:
            stored |= Q(**filter_.get_filter_predicate(item))
        matching = texts.matching(filter_.field_name, filter_.lookup_expr, values)
        if filter_.exclude:
            return queryset.filter((~stored & ~texts.affected) | pairs_q(set(texts.seen) - matching))
        return queryset.filter((stored & ~texts.affected) | pairs_q(matching))

    def filter_event_object(self, queryset, name, value):
        """Incidents with at least one event on one of these objects."""
        if not value:
            return queryset
        members = IncidentEvent.objects.filter(
            incident=OuterRef('pk'),
            event__content_type=ContentType.objects.get_for_model(value[0]),
            event__object_id__in=[obj.pk for obj in value],
        )
        return queryset.filter(Exists(members))

    def filter_is_open(self, queryset, name, value):
        if value is None:
            return queryset
        is_open = Q(status__in=IncidentStatusChoices.OPEN)
        return queryset.filter(is_open) if value else queryset.exclude(is_open)
