"""List tables of the plugin's models, plus the two incident tables that are not NetBox models.

Counts come from annotations the views add (see ``views.py``) and relations are prefetched by NetBox's
table machinery, so no column runs a query per row.
"""

import django_tables2 as tables
from django.contrib.contenttypes.models import ContentType
from django.utils.html import format_html
from django.utils.text import Truncator
from django.utils.translation import gettext_lazy as _

from netbox.tables import BaseTable, NetBoxTable, columns

from .filtersets import REDACTED_FIELDS
from .models import (
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

__all__ = (
    'BusinessApplicationTable',
    'EventSourceTable',
    'EventTable',
    'IncidentMemberTable',
    'IncidentTable',
    'IncidentTimelineTable',
    'MaintenanceTable',
    'ServiceDependencyTable',
    'TechnicalServiceTable',
)

#: How many characters of an event message a list shows; the event page shows all of it.
MESSAGE_PREVIEW = 120


def render_object(record):
    """Link the object an event or a maintenance window points at, or say why there is none.

    The object itself comes from the GFK prefetch; the content type from Django's cache, never a query per row.
    """
    if record.content_type_id is None or record.object_id is None:
        label = getattr(record, 'unmapped_label', '')
        if not label:
            return format_html('<span class="text-muted">{}</span>', _('unmapped'))
        return format_html(
            '<span class="text-muted" title="{}">{} ({})</span>', _('Not known to NetBox'), label, _('unmapped')
        )
    target = record.obj
    if target is None:
        model = ContentType.objects.get_for_id(record.content_type_id).model
        return format_html('<span class="text-muted">{} #{} ({})</span>', model, record.object_id, _('deleted'))
    if hasattr(target, 'get_absolute_url'):
        return format_html('<a href="{}">{}</a>', target.get_absolute_url(), target)
    return str(target)


class ObjectColumn(tables.Column):
    """The generic object of an event or maintenance window; rendered even when empty (unmapped)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault('accessor', tables.A('obj'))
        kwargs.setdefault('order_by', ('content_type', 'object_id'))
        kwargs.setdefault('empty_values', ())
        super().__init__(*args, **kwargs)

    def render(self, record):
        return render_object(record)

    def value(self, record):
        if record.content_type_id is None or record.object_id is None:
            return getattr(record, 'unmapped_label', '')
        return str(record.obj) if record.obj is not None else ''


class BusinessApplicationTable(NetBoxTable):
    appcode = tables.Column(verbose_name=_('Appcode'), linkify=True)
    name = tables.Column(verbose_name=_('Name'), linkify=True)
    link = tables.URLColumn(verbose_name=_('Link'))
    service_count = columns.LinkedCountColumn(
        viewname='plugins:business_application:technicalservice_list',
        url_params={'business_application_id': 'pk'},
        verbose_name=_('Services'),
    )
    devices = columns.ManyToManyColumn(verbose_name=_('Devices'), linkify_item=True)
    virtual_machines = columns.ManyToManyColumn(verbose_name=_('Virtual machines'), linkify_item=True)
    tags = columns.TagColumn(url_name='plugins:business_application:businessapplication_list')

    class Meta(NetBoxTable.Meta):
        model = BusinessApplication
        fields = (
            'pk',
            'id',
            'appcode',
            'name',
            'owner',
            'delegate',
            'link',
            'service_count',
            'devices',
            'virtual_machines',
            'description',
            'tags',
            'created',
            'last_updated',
        )
        default_columns = ('pk', 'appcode', 'name', 'owner', 'delegate', 'service_count', 'description')


class TechnicalServiceTable(NetBoxTable):
    name = tables.Column(verbose_name=_('Name'), linkify=True)
    service_type = columns.ChoiceFieldColumn(verbose_name=_('Type'))
    business_apps = columns.ManyToManyColumn(verbose_name=_('Business applications'), linkify_item=True)
    devices = columns.ManyToManyColumn(verbose_name=_('Devices'), linkify_item=True)
    vms = columns.ManyToManyColumn(verbose_name=_('Virtual machines'), linkify_item=True)
    clusters = columns.ManyToManyColumn(verbose_name=_('Clusters'), linkify_item=True)
    upstream_count = columns.LinkedCountColumn(
        viewname='plugins:business_application:servicedependency_list',
        url_params={'downstream_service_id': 'pk'},
        verbose_name=_('Depends on'),
    )
    downstream_count = columns.LinkedCountColumn(
        viewname='plugins:business_application:servicedependency_list',
        url_params={'upstream_service_id': 'pk'},
        verbose_name=_('Depended on by'),
    )
    tags = columns.TagColumn(url_name='plugins:business_application:technicalservice_list')

    class Meta(NetBoxTable.Meta):
        model = TechnicalService
        fields = (
            'pk',
            'id',
            'name',
            'service_type',
            'business_apps',
            'devices',
            'vms',
            'clusters',
            'upstream_count',
            'downstream_count',
            'description',
            'tags',
            'created',
            'last_updated',
        )
        default_columns = (
            'pk',
            'name',
            'service_type',
            'business_apps',
            'upstream_count',
            'downstream_count',
            'description',
        )


class ServiceDependencyTable(NetBoxTable):
    name = tables.Column(verbose_name=_('Name'), linkify=True)
    upstream_service = tables.Column(verbose_name=_('Upstream service'), linkify=True)
    downstream_service = tables.Column(verbose_name=_('Downstream service'), linkify=True)
    dependency_type = columns.ChoiceFieldColumn(verbose_name=_('Type'))
    tags = columns.TagColumn(url_name='plugins:business_application:servicedependency_list')

    class Meta(NetBoxTable.Meta):
        model = ServiceDependency
        fields = (
            'pk',
            'id',
            'name',
            'downstream_service',
            'upstream_service',
            'dependency_type',
            'description',
            'tags',
            'created',
            'last_updated',
        )
        default_columns = ('pk', 'name', 'downstream_service', 'upstream_service', 'dependency_type', 'description')


class EventSourceTable(NetBoxTable):
    name = tables.Column(verbose_name=_('Name'), linkify=True)
    event_count = columns.LinkedCountColumn(
        viewname='plugins:business_application:event_list',
        url_params={'event_source_id': 'pk'},
        verbose_name=_('Events'),
    )
    tags = columns.TagColumn(url_name='plugins:business_application:eventsource_list')

    class Meta(NetBoxTable.Meta):
        model = EventSource
        fields = ('pk', 'id', 'name', 'event_count', 'description', 'tags', 'created', 'last_updated')
        default_columns = ('pk', 'name', 'event_count', 'description')


class EventTable(NetBoxTable):
    message = tables.Column(verbose_name=_('Message'), linkify=True)
    status = columns.ChoiceFieldColumn(verbose_name=_('Status'))
    criticallity = columns.ChoiceFieldColumn(verbose_name=_('Criticality'))
    target = ObjectColumn(verbose_name=_('Object'))
    content_type = columns.ContentTypeColumn(verbose_name=_('Object type'))
    event_source = tables.Column(verbose_name=_('Source'), linkify=True)
    dedup_id = tables.Column(verbose_name=_('Dedup ID'))
    last_seen_at = columns.DateTimeColumn(verbose_name=_('Last seen'))
    starts_at = columns.DateTimeColumn(verbose_name=_('Starts'))
    ends_at = columns.DateTimeColumn(verbose_name=_('Ends'))
    incidents = columns.ManyToManyColumn(verbose_name=_('Incidents'), linkify_item=True)
    tags = columns.TagColumn(url_name='plugins:business_application:event_list')

    class Meta(NetBoxTable.Meta):
        model = Event
        fields = (
            'pk',
            'id',
            'message',
            'status',
            'criticallity',
            'target',
            'content_type',
            'object_id',
            'unmapped_label',
            'event_source',
            'dedup_id',
            'last_seen_at',
            'starts_at',
            'ends_at',
            'event_time',
            'incidents',
            'tags',
            'created',
            'last_updated',
        )
        default_columns = (
            'pk',
            'message',
            'status',
            'criticallity',
            'target',
            'event_source',
            'dedup_id',
            'last_seen_at',
            'incidents',
        )

    def render_message(self, value):
        return Truncator(value).chars(MESSAGE_PREVIEW)


class MaintenanceTable(NetBoxTable):
    start = columns.DateTimeColumn(verbose_name=_('Start'), timespec='minutes', linkify=True)
    end = columns.DateTimeColumn(verbose_name=_('End'), timespec='minutes')
    target = ObjectColumn(verbose_name=_('Object'))
    content_type = columns.ContentTypeColumn(verbose_name=_('Object type'))
    status = columns.ChoiceFieldColumn(verbose_name=_('Status'))
    tags = columns.TagColumn(url_name='plugins:business_application:maintenance_list')

    class Meta(NetBoxTable.Meta):
        model = Maintenance
        fields = (
            'pk',
            'id',
            'start',
            'end',
            'target',
            'content_type',
            'object_id',
            'status',
            'contact',
            'description',
            'tags',
            'created',
            'last_updated',
        )
        default_columns = ('pk', 'start', 'end', 'target', 'status', 'contact', 'description')


class ViewableColumn(columns.ManyToManyColumn):
    """Related objects, leaving out those whose pks are in ``hidden`` (set by the table for the row rendered)."""

    hidden = frozenset()

    def filter(self, qs):
        return [item for item in qs.all() if item.pk not in self.hidden]


class IncidentTable(NetBoxTable):
    title = tables.Column(verbose_name=_('Title'), linkify=True)
    status = columns.ChoiceFieldColumn(verbose_name=_('Status'))
    severity = columns.ChoiceFieldColumn(verbose_name=_('Severity'))
    root_cause = tables.Column(verbose_name=_('Probable root cause'))
    root_cause_event = tables.Column(verbose_name=_('Root cause event'), linkify=True)
    event_count = columns.LinkedCountColumn(
        viewname='plugins:business_application:event_list',
        url_params={'incident_id': 'pk'},
        verbose_name=_('Events'),
    )
    affected_services = ViewableColumn(verbose_name=_('Affected services'), linkify_item=True)
    detected_at = columns.DateTimeColumn(verbose_name=_('Detected'))
    resolved_at = columns.DateTimeColumn(verbose_name=_('Resolved'))
    tags = columns.TagColumn(url_name='plugins:business_application:incident_list')

    class Meta(NetBoxTable.Meta):
        model = Incident
        fields = (
            'pk',
            'id',
            'title',
            'status',
            'severity',
            'root_cause',
            'root_cause_event',
            'event_count',
            'affected_services',
            'detected_at',
            'resolved_at',
            'commander',
            'reporter',
            'description',
            'tags',
            'created',
            'last_updated',
        )
        default_columns = (
            'pk',
            'title',
            'status',
            'severity',
            'root_cause',
            'event_count',
            'detected_at',
            'commander',
        )

    def configure(self, request):
        from .ui.redact import Redactor

        self.viewer = request.user
        if not Redactor.sees_everything(request.user):
            # Sorting on the stored texts would place a redacted row by the names it hides
            for name in REDACTED_FIELDS:
                self.columns[name].column.orderable = False
        super().configure(request)

    def redactor(self, record):
        """One redactor for the rows shown (the page, or every row of an export), prepared on first use."""
        from .ui.redact import Redactor

        prepared = getattr(self, '_redactor', None)
        if prepared is None or record.pk not in self._redacted:
            page = getattr(self, 'page', None)
            rows = list(page.object_list) if page is not None and prepared is None else list(self.data)
            records = [getattr(row, 'record', row) for row in rows]
            prepared = Redactor(getattr(self, 'viewer', None)).prepare(records)
            self._redactor, self._redacted = prepared, {r.pk for r in records} | {record.pk}
        return prepared

    def hidden_related(self, record, kind):
        """The affected services' (``kind`` 'services') or root-cause events' ('events') pks the viewer may not
        view, learnt with one query for the rows shown, and only when such a column is shown."""
        from .ui.redact import Redactor

        known = self.__dict__.setdefault('_hidden_related', {}).get(kind)
        if known is None or record.pk not in known[0]:
            page = getattr(self, 'page', None)
            rows = list(page.object_list) if page is not None and known is None else list(self.data)
            records = [getattr(row, 'record', row) for row in rows] + [record]
            redactor = Redactor(getattr(self, 'viewer', None))
            if kind == 'services':
                hidden = redactor.prepare_services(records).hidden_services
            else:
                hidden = redactor.prepare_events(records).hidden_events
            known = self._hidden_related[kind] = ({r.pk for r in records}, hidden)
        return known[1]

    def render_affected_services(self, record, value, column):
        column.hidden = self.hidden_related(record, 'services')
        return column.render(value)

    def value_affected_services(self, record, value, column):
        column.hidden = self.hidden_related(record, 'services')
        return column.value(value)

    def render_root_cause_event(self, record, value):
        return _('(hidden event)') if record.root_cause_event_id in self.hidden_related(record, 'events') else value

    def value_root_cause_event(self, record, value):
        return '' if value is None else str(self.render_root_cause_event(record, value))

    def render_title(self, record, value):
        return self.redactor(record).title(record)

    def value_title(self, record, value):
        return self.redactor(record).title(record)

    def render_root_cause(self, record, value):
        return self.redactor(record).root_cause(record)

    def value_root_cause(self, record, value):
        return self.redactor(record).root_cause(record)


class IncidentMemberTable(BaseTable):
    """An incident's events with why each joined: the correlation score, the kind of link and the graph path."""

    event = tables.Column(verbose_name=_('Event'), linkify=True)
    target = tables.Column(verbose_name=_('Object'), accessor=tables.A('event'), empty_values=(), orderable=False)
    status = tables.Column(verbose_name=_('Status'))
    joined_at = columns.DateTimeColumn(verbose_name=_('Joined'))
    score = tables.Column(verbose_name=_('Score'), empty_values=())
    link = tables.Column(verbose_name=_('Link'))
    factors = tables.Column(verbose_name=_('Why'), orderable=False, empty_values=())
    path = tables.Column(verbose_name=_('Path'), orderable=False)

    class Meta(BaseTable.Meta):
        model = IncidentEvent
        fields = ('event', 'target', 'status', 'joined_at', 'score', 'link', 'factors', 'path')
        empty_text = _('No events')

    def render_event(self, value):
        return Truncator(value.message).chars(MESSAGE_PREVIEW)

    def render_target(self, record, value):
        hidden = getattr(record, 'hidden_target', None)  # set by the incident page for objects the user may not view
        return format_html('<span class="text-muted">{}</span>', hidden) if hidden else render_object(value)

    def render_score(self, record):
        if record.opened_incident:
            return format_html('<span class="badge text-bg-primary">{}</span>', _('opened'))
        if record.score is None:
            return '—'
        return f'{record.score:.2f}'

    def render_factors(self, record):
        """The score's factors in words, e.g. "dependency link (weight 0.80), time decay 0.97, severity match
        1.00, upstream"; a plain string, escaped by django-tables2."""
        if record.opened_incident:
            return _('first event: opened the incident')
        factors = record.factors if isinstance(record.factors, dict) else {}
        if not factors:
            return '—'
        parts = []
        if 'link' in factors:
            parts.append(
                f'{factors["link"]} link'
                + (f' (weight {_number(factors.get("weight"))})' if 'weight' in factors else '')
            )
        if 'time_decay' in factors:
            parts.append(f'time decay {_number(factors["time_decay"])}')
        if 'severity_match' in factors:
            parts.append(f'severity match {_number(factors["severity_match"])}')
        if factors.get('direction') and factors['direction'] != 'same':
            parts.append(str(factors['direction']))
        return ', '.join(parts) or '—'

    def render_path(self, record, value):
        # Plain strings: django-tables2 escapes them, whatever the names in the path contain. The view puts the
        # path in words (``path_words``) on each record; without it, the stored labels joined by arrows.
        words = getattr(record, 'path_words', None)
        if words:
            return words
        return ' → '.join(str(step) for step in value) if isinstance(value, list) else str(value)


def _number(value):
    return f'{value:.2f}' if isinstance(value, int | float) else str(value)


class IncidentTimelineTable(BaseTable):
    """What happened to an incident, oldest first."""

    time = columns.DateTimeColumn(verbose_name=_('Time'))
    kind = tables.Column(verbose_name=_('Kind'))
    message = tables.Column(verbose_name=_('Message'))
    event = tables.Column(verbose_name=_('Event'), linkify=True)

    class Meta(BaseTable.Meta):
        model = IncidentTimelineEntry
        fields = ('time', 'kind', 'message', 'event')
        empty_text = _('Nothing recorded yet')

    def render_event(self, value):
        return Truncator(value.message).chars(60)
