"""The plugin's pages: NetBox's generic list, detail, edit, delete and bulk views for each model.

Every view takes its queryset through NetBox's generic views, which restrict it to what the user may see or
change; related tables on a detail page go through the related model's own list view (ObjectsTablePanel) or
are restricted here, so object permissions hold on every page.
"""

from django.db.models import Count, IntegerField, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from dcim.models import Device
from extras.ui.panels import CustomFieldsPanel, TagsPanel
from netbox.ui import attrs, layout, panels
from netbox.views import generic
from utilities.query import count_related
from utilities.views import register_model_view
from virtualization.models import Cluster, VirtualMachine

from . import filtersets, forms, tables
from .choices import IncidentStatusChoices
from .correlation.kinds import SERVICE
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
from .services.graph_loader import current_map, node_of
from .ui import actions  # noqa: F401  (importing the action views registers them)
from .ui.context import (
    DEFAULT_MAP_DEPTH,
    affected_application_ids,
    move_targets,
    open_incident_states,
    parse_depth,
)
from .ui.maps import MAX_DEPTH, blast_picture, neighbourhood_picture, path_in_words
from .ui.redact import Redactor, placeholder

#
# Panels
#


class ObjectAttr(attrs.ObjectAttribute):
    """The generic object of an event or a maintenance window, or the label an unmapped alert came with."""

    def render(self, obj, context):
        return tables.render_object(obj)


class LinkAttr(attrs.ObjectAttribute):
    """A web link, made clickable only when it is http(s) so a stored ``javascript:`` URL stays inert text."""

    template_name = 'business_application/attrs/link.html'

    def get_context(self, obj, attr, value, context):
        return {'clickable': str(value).lower().startswith(('http://', 'https://'))}


class AssignedObjectsPanel(panels.ObjectsTablePanel):
    """A table of the core objects (devices, VMs, clusters) assigned to this object through a many-to-many field.

    Core filtersets know nothing of the plugin, so the table is filtered by primary key through the core model's
    own list view, which also applies the user's object permissions.
    """

    def __init__(self, model, relation, **kwargs):
        super().__init__(model, filters={'id': self.assigned_ids}, **kwargs)
        self.relation = relation

    def assigned_ids(self, context):
        ids = list(getattr(context['object'], self.relation).values_list('pk', flat=True))
        return ids or [0]  # no id would mean no filter at all


class BusinessApplicationPanel(panels.ObjectAttributesPanel):
    appcode = attrs.TextAttr('appcode', style='font-monospace', copy_button=True)
    name = attrs.TextAttr('name')
    owner = attrs.TextAttr('owner')
    delegate = attrs.TextAttr('delegate')
    link = LinkAttr('link')
    description = attrs.TextAttr('description')


class TechnicalServicePanel(panels.ObjectAttributesPanel):
    name = attrs.TextAttr('name')
    service_type = attrs.ChoiceAttr('service_type')
    description = attrs.TextAttr('description')
    business_apps = attrs.RelatedObjectListAttr('business_apps', linkify=True, label=_('Business applications'))


class ServiceDependencyPanel(panels.ObjectAttributesPanel):
    name = attrs.TextAttr('name')
    downstream_service = attrs.RelatedObjectAttr('downstream_service', linkify=True, label=_('Downstream service'))
    upstream_service = attrs.RelatedObjectAttr('upstream_service', linkify=True, label=_('Depends on (upstream)'))
    dependency_type = attrs.ChoiceAttr('dependency_type')
    description = attrs.TextAttr('description')


class EventSourcePanel(panels.ObjectAttributesPanel):
    name = attrs.TextAttr('name')
    description = attrs.TextAttr('description')


class EventPanel(panels.ObjectAttributesPanel):
    message = attrs.TextAttr('message')
    status = attrs.ChoiceAttr('status')
    criticallity = attrs.ChoiceAttr('criticallity', label=_('Criticality'))
    target = ObjectAttr('obj', label=_('Object'))
    event_source = attrs.RelatedObjectAttr('event_source', linkify=True)
    dedup_id = attrs.TextAttr('dedup_id', label=_('Dedup ID'), style='font-monospace', copy_button=True)


class EventTimesPanel(panels.ObjectAttributesPanel):
    last_seen_at = attrs.DateTimeAttr('last_seen_at', label=_('Last seen'))
    starts_at = attrs.DateTimeAttr('starts_at', label=_('Starts'))
    ends_at = attrs.DateTimeAttr('ends_at', label=_('Ends'))
    event_time = attrs.DateTimeAttr('event_time', label=_('Event time'))
    occurrence = attrs.NumericAttr('occurrence', label=_('Occurrence'))
    occurrence_started_at = attrs.DateTimeAttr('occurrence_started_at', label=_('Occurrence started'))
    cleared_at = attrs.DateTimeAttr('cleared_at', label=_('Cleared'))
    processed_status = attrs.TextAttr('processed_status', label=_('Correlation'))


class MaintenancePanel(panels.ObjectAttributesPanel):
    target = ObjectAttr('obj', label=_('Object'))
    status = attrs.ChoiceAttr('status')
    start = attrs.DateTimeAttr('start', spec='minutes')
    end = attrs.DateTimeAttr('end', spec='minutes')
    contact = attrs.TextAttr('contact')
    description = attrs.TextAttr('description')


class IncidentPanel(panels.ObjectAttributesPanel):
    title = attrs.TextAttr('title')
    status = attrs.ChoiceAttr('status')
    severity = attrs.ChoiceAttr('severity')
    commander = attrs.TextAttr('commander')
    reporter = attrs.TextAttr('reporter')
    detected_at = attrs.DateTimeAttr('detected_at', label=_('Detected'))
    resolved_at = attrs.DateTimeAttr('resolved_at', label=_('Resolved'))
    resolved_event_time = attrs.DateTimeAttr('resolved_event_time', label=_('Resolved (event time)'))
    merged_into = attrs.RelatedObjectAttr('merged_into', linkify=True, label=_('Merged into'))
    auto_created = attrs.BooleanAttr('auto_created', label=_('Opened by correlation'))
    description = attrs.TextAttr('description')


class RootCausePanel(panels.ObjectAttributesPanel):
    title = _('Root cause')
    root_cause = attrs.TextAttr('root_cause', label=_('Probable root cause'), style='font-monospace')
    root_cause_event = attrs.RelatedObjectAttr('root_cause_event', linkify=True, label=_('Event'))

    def get_context(self, context):
        """The root-cause event's message and link only for a user who may view that event."""
        ctx = super().get_context(context)
        incident, request = ctx['object'], ctx.get('request')
        event_id = getattr(incident, 'root_cause_event_id', None)
        if event_id is not None and request is not None:
            if not Event.objects.restrict(request.user, 'view').filter(pk=event_id).exists():
                label = str(self._attrs['root_cause_event'].label)
                for attr in ctx['attrs']:
                    if str(attr['label']) == label:
                        attr['value'] = _('(hidden event)')
        return ctx


def _pk(context):
    return context['object'].pk


#
# Business applications
#


@register_model_view(BusinessApplication, 'list', path='', detail=False)
class BusinessApplicationListView(generic.ObjectListView):
    queryset = BusinessApplication.objects.annotate(
        service_count=count_related(TechnicalService, 'business_apps'),
    )
    filterset = filtersets.BusinessApplicationFilterSet
    filterset_form = forms.BusinessApplicationFilterForm
    table = tables.BusinessApplicationTable


@register_model_view(BusinessApplication)
class BusinessApplicationView(generic.ObjectView):
    template_name = 'generic/object.html'
    queryset = BusinessApplication.objects.all()
    layout = layout.SimpleLayout(
        left_panels=[BusinessApplicationPanel(), CustomFieldsPanel(), TagsPanel()],
        right_panels=[
            AssignedObjectsPanel('dcim.device', 'devices', title=_('Devices')),
            AssignedObjectsPanel('virtualization.virtualmachine', 'virtual_machines', title=_('Virtual machines')),
        ],
        bottom_panels=[
            panels.ObjectsTablePanel(
                'business_application.technicalservice',
                title=_('Technical services'),
                filters={'business_application_id': _pk},
                exclude_columns=['business_apps'],
            ),
            panels.ObjectsTablePanel(
                'business_application.event',
                title=_('Events on this application'),
                filters={'business_application_id': _pk},
                exclude_columns=['target'],
            ),
        ],
    )


@register_model_view(BusinessApplication, 'add', detail=False)
@register_model_view(BusinessApplication, 'edit')
class BusinessApplicationEditView(generic.ObjectEditView):
    queryset = BusinessApplication.objects.all()
    form = forms.BusinessApplicationForm


@register_model_view(BusinessApplication, 'delete')
class BusinessApplicationDeleteView(generic.ObjectDeleteView):
    queryset = BusinessApplication.objects.all()


@register_model_view(BusinessApplication, 'bulk_import', path='import', detail=False)
class BusinessApplicationBulkImportView(generic.BulkImportView):
    queryset = BusinessApplication.objects.all()
    model_form = forms.BusinessApplicationImportForm


@register_model_view(BusinessApplication, 'bulk_edit', path='edit', detail=False)
class BusinessApplicationBulkEditView(generic.BulkEditView):
    queryset = BusinessApplication.objects.all()
    filterset = filtersets.BusinessApplicationFilterSet
    table = tables.BusinessApplicationTable
    form = forms.BusinessApplicationBulkEditForm


@register_model_view(BusinessApplication, 'bulk_delete', path='delete', detail=False)
class BusinessApplicationBulkDeleteView(generic.BulkDeleteView):
    queryset = BusinessApplication.objects.all()
    filterset = filtersets.BusinessApplicationFilterSet
    table = tables.BusinessApplicationTable


#
# Technical services
#


def _with_dependency_counts(queryset):
    return queryset.annotate(
        upstream_count=count_related(ServiceDependency, 'downstream_service'),
        downstream_count=count_related(ServiceDependency, 'upstream_service'),
    )


@register_model_view(TechnicalService, 'list', path='', detail=False)
class TechnicalServiceListView(generic.ObjectListView):
    queryset = _with_dependency_counts(TechnicalService.objects.all())
    filterset = filtersets.TechnicalServiceFilterSet
    filterset_form = forms.TechnicalServiceFilterForm
    table = tables.TechnicalServiceTable


@register_model_view(TechnicalService)
class TechnicalServiceView(generic.ObjectView):
    """A service with its dependency map around it (``?depth=`` steps each way), open incidents and recent events."""

    template_name = 'generic/object.html'
    queryset = TechnicalService.objects.all()
    layout = layout.SimpleLayout(
        left_panels=[
            TechnicalServicePanel(),
            CustomFieldsPanel(),
            TagsPanel(),
        ],
        right_panels=[
            AssignedObjectsPanel('dcim.device', 'devices', title=_('Devices')),
            AssignedObjectsPanel('virtualization.virtualmachine', 'vms', title=_('Virtual machines')),
            AssignedObjectsPanel('virtualization.cluster', 'clusters', title=_('Clusters')),
        ],
        bottom_panels=[
            panels.TemplatePanel('business_application/panels/service_map.html', title=_('Dependency map')),
            panels.ObjectsTablePanel(
                'business_application.incident',
                title=_('Open incidents affecting this service'),
                filters={'affected_service_id': _pk, 'is_open': 'true'},
            ),
            panels.ObjectsTablePanel(
                'business_application.event',
                title=_('Recent events on this service'),
                filters={'technical_service_id': _pk, 'ordering': '-last_seen_at'},
                exclude_columns=['target'],
            ),
            panels.ObjectsTablePanel(
                'business_application.servicedependency',
                title=_('Depends on (upstream)'),
                filters={'downstream_service_id': _pk},
                exclude_columns=['downstream_service'],
            ),
            panels.ObjectsTablePanel(
                'business_application.servicedependency',
                title=_('Depended on by (downstream)'),
                filters={'upstream_service_id': _pk},
                exclude_columns=['upstream_service'],
            ),
        ],
    )

    def get(self, request, **kwargs):
        depth, error = parse_depth(request)
        if error is not None:
            return error
        request.ba_map_depth = depth
        return super().get(request, **kwargs)

    def get_extra_context(self, request, instance):
        depth = getattr(request, 'ba_map_depth', DEFAULT_MAP_DEPTH)
        service_map = current_map()
        focus = service_map.node(SERVICE, instance.pk)
        picture = None
        if focus is not None:
            picture = neighbourhood_picture(
                service_map, request.user, focus, depth, affected=open_incident_states(instance)
            )
        return {
            'map_picture': picture,
            'map_depth': depth,
            'map_depths': range(1, MAX_DEPTH + 1),
        }


@register_model_view(TechnicalService, 'add', detail=False)
@register_model_view(TechnicalService, 'edit')
class TechnicalServiceEditView(generic.ObjectEditView):
    queryset = TechnicalService.objects.all()
    form = forms.TechnicalServiceForm


@register_model_view(TechnicalService, 'delete')
class TechnicalServiceDeleteView(generic.ObjectDeleteView):
    queryset = TechnicalService.objects.all()


@register_model_view(TechnicalService, 'bulk_import', path='import', detail=False)
class TechnicalServiceBulkImportView(generic.BulkImportView):
    queryset = TechnicalService.objects.all()
    model_form = forms.TechnicalServiceImportForm


@register_model_view(TechnicalService, 'bulk_edit', path='edit', detail=False)
class TechnicalServiceBulkEditView(generic.BulkEditView):
    queryset = _with_dependency_counts(TechnicalService.objects.all())
    filterset = filtersets.TechnicalServiceFilterSet
    table = tables.TechnicalServiceTable
    form = forms.TechnicalServiceBulkEditForm


@register_model_view(TechnicalService, 'bulk_delete', path='delete', detail=False)
class TechnicalServiceBulkDeleteView(generic.BulkDeleteView):
    queryset = _with_dependency_counts(TechnicalService.objects.all())
    filterset = filtersets.TechnicalServiceFilterSet
    table = tables.TechnicalServiceTable


#
# Service dependencies
#


@register_model_view(ServiceDependency, 'list', path='', detail=False)
class ServiceDependencyListView(generic.ObjectListView):
    queryset = ServiceDependency.objects.all()
    filterset = filtersets.ServiceDependencyFilterSet
    filterset_form = forms.ServiceDependencyFilterForm
    table = tables.ServiceDependencyTable


@register_model_view(ServiceDependency)
class ServiceDependencyView(generic.ObjectView):
    template_name = 'generic/object.html'
    queryset = ServiceDependency.objects.all()
    layout = layout.SimpleLayout(
        left_panels=[ServiceDependencyPanel(), CustomFieldsPanel(), TagsPanel()],
        bottom_panels=[
            # A redundancy group is every provider of the same downstream service: show them side by side.
            panels.ObjectsTablePanel(
                'business_application.servicedependency',
                title=_('All dependencies of the downstream service'),
                filters={'downstream_service_id': lambda ctx: ctx['object'].downstream_service_id},
                exclude_columns=['downstream_service'],
            ),
        ],
    )


@register_model_view(ServiceDependency, 'add', detail=False)
@register_model_view(ServiceDependency, 'edit')
class ServiceDependencyEditView(generic.ObjectEditView):
    queryset = ServiceDependency.objects.all()
    form = forms.ServiceDependencyForm


@register_model_view(ServiceDependency, 'delete')
class ServiceDependencyDeleteView(generic.ObjectDeleteView):
    queryset = ServiceDependency.objects.all()


@register_model_view(ServiceDependency, 'bulk_import', path='import', detail=False)
class ServiceDependencyBulkImportView(generic.BulkImportView):
    queryset = ServiceDependency.objects.all()
    model_form = forms.ServiceDependencyImportForm


@register_model_view(ServiceDependency, 'bulk_edit', path='edit', detail=False)
class ServiceDependencyBulkEditView(generic.BulkEditView):
    queryset = ServiceDependency.objects.all()
    filterset = filtersets.ServiceDependencyFilterSet
    table = tables.ServiceDependencyTable
    form = forms.ServiceDependencyBulkEditForm


@register_model_view(ServiceDependency, 'bulk_delete', path='delete', detail=False)
class ServiceDependencyBulkDeleteView(generic.BulkDeleteView):
    queryset = ServiceDependency.objects.all()
    filterset = filtersets.ServiceDependencyFilterSet
    table = tables.ServiceDependencyTable


#
# Event sources
#


@register_model_view(EventSource, 'list', path='', detail=False)
class EventSourceListView(generic.ObjectListView):
    queryset = EventSource.objects.annotate(event_count=count_related(Event, 'event_source'))
    filterset = filtersets.EventSourceFilterSet
    filterset_form = forms.EventSourceFilterForm
    table = tables.EventSourceTable


@register_model_view(EventSource)
class EventSourceView(generic.ObjectView):
    template_name = 'generic/object.html'
    queryset = EventSource.objects.all()
    layout = layout.SimpleLayout(
        left_panels=[EventSourcePanel(), CustomFieldsPanel()],
        right_panels=[TagsPanel()],
        bottom_panels=[
            panels.ObjectsTablePanel(
                'business_application.event',
                title=_('Events'),
                filters={'event_source_id': _pk},
                exclude_columns=['event_source'],
            ),
        ],
    )


@register_model_view(EventSource, 'add', detail=False)
@register_model_view(EventSource, 'edit')
class EventSourceEditView(generic.ObjectEditView):
    queryset = EventSource.objects.all()
    form = forms.EventSourceForm


@register_model_view(EventSource, 'delete')
class EventSourceDeleteView(generic.ObjectDeleteView):
    queryset = EventSource.objects.all()


@register_model_view(EventSource, 'bulk_import', path='import', detail=False)
class EventSourceBulkImportView(generic.BulkImportView):
    queryset = EventSource.objects.all()
    model_form = forms.EventSourceImportForm


@register_model_view(EventSource, 'bulk_edit', path='edit', detail=False)
class EventSourceBulkEditView(generic.BulkEditView):
    queryset = EventSource.objects.annotate(event_count=count_related(Event, 'event_source'))
    filterset = filtersets.EventSourceFilterSet
    table = tables.EventSourceTable
    form = forms.EventSourceBulkEditForm


@register_model_view(EventSource, 'bulk_delete', path='delete', detail=False)
class EventSourceBulkDeleteView(generic.BulkDeleteView):
    queryset = EventSource.objects.annotate(event_count=count_related(Event, 'event_source'))
    filterset = filtersets.EventSourceFilterSet
    table = tables.EventSourceTable


#
# Events
#


@register_model_view(Event, 'list', path='', detail=False)
class EventListView(generic.ObjectListView):
    queryset = Event.objects.all()
    filterset = filtersets.EventFilterSet
    filterset_form = forms.EventFilterForm
    table = tables.EventTable


@register_model_view(Event)
class EventView(generic.ObjectView):
    template_name = 'generic/object.html'
    queryset = Event.objects.all()
    layout = layout.SimpleLayout(
        left_panels=[EventPanel(), CustomFieldsPanel(), TagsPanel()],
        right_panels=[EventTimesPanel(title=_('Times and correlation'))],
        bottom_panels=[
            panels.ObjectsTablePanel(
                'business_application.incident',
                title=_('Incidents'),
                filters={'event_id': _pk},
            ),
            panels.JSONPanel('raw', title=_('Raw payload')),
        ],
    )


@register_model_view(Event, 'add', detail=False)
@register_model_view(Event, 'edit')
class EventEditView(generic.ObjectEditView):
    queryset = Event.objects.all()
    form = forms.EventForm


@register_model_view(Event, 'delete')
class EventDeleteView(generic.ObjectDeleteView):
    queryset = Event.objects.all()


@register_model_view(Event, 'bulk_import', path='import', detail=False)
class EventBulkImportView(generic.BulkImportView):
    queryset = Event.objects.all()
    model_form = forms.EventImportForm


@register_model_view(Event, 'bulk_edit', path='edit', detail=False)
class EventBulkEditView(generic.BulkEditView):
    queryset = Event.objects.all()
    filterset = filtersets.EventFilterSet
    table = tables.EventTable
    form = forms.EventBulkEditForm


@register_model_view(Event, 'bulk_delete', path='delete', detail=False)
class EventBulkDeleteView(generic.BulkDeleteView):
    queryset = Event.objects.all()
    filterset = filtersets.EventFilterSet
    table = tables.EventTable


#
# Maintenance
#


@register_model_view(Maintenance, 'list', path='', detail=False)
class MaintenanceListView(generic.ObjectListView):
    queryset = Maintenance.objects.all()
    filterset = filtersets.MaintenanceFilterSet
    filterset_form = forms.MaintenanceFilterForm
    table = tables.MaintenanceTable


@register_model_view(Maintenance)
class MaintenanceView(generic.ObjectView):
    template_name = 'generic/object.html'
    queryset = Maintenance.objects.all()
    layout = layout.SimpleLayout(
        left_panels=[MaintenancePanel(title=_('Maintenance window')), CustomFieldsPanel()],
        right_panels=[TagsPanel()],
    )


@register_model_view(Maintenance, 'add', detail=False)
@register_model_view(Maintenance, 'edit')
class MaintenanceEditView(generic.ObjectEditView):
    queryset = Maintenance.objects.all()
    form = forms.MaintenanceForm


@register_model_view(Maintenance, 'delete')
class MaintenanceDeleteView(generic.ObjectDeleteView):
    queryset = Maintenance.objects.all()


@register_model_view(Maintenance, 'bulk_import', path='import', detail=False)
class MaintenanceBulkImportView(generic.BulkImportView):
    queryset = Maintenance.objects.all()
    model_form = forms.MaintenanceImportForm


@register_model_view(Maintenance, 'bulk_edit', path='edit', detail=False)
class MaintenanceBulkEditView(generic.BulkEditView):
    queryset = Maintenance.objects.all()
    filterset = filtersets.MaintenanceFilterSet
    table = tables.MaintenanceTable
    form = forms.MaintenanceBulkEditForm


@register_model_view(Maintenance, 'bulk_delete', path='delete', detail=False)
class MaintenanceBulkDeleteView(generic.BulkDeleteView):
    queryset = Maintenance.objects.all()
    filterset = filtersets.MaintenanceFilterSet
    table = tables.MaintenanceTable


#
# Incidents
#

#: Models a blast-radius item may name, by the ``type`` the correlation service writes.
BLAST_RADIUS_MODELS = {
    'service': TechnicalService,
    'technicalservice': TechnicalService,
    'app': BusinessApplication,
    'application': BusinessApplication,
    'businessapplication': BusinessApplication,
    'device': Device,
    'vm': VirtualMachine,
    'virtualmachine': VirtualMachine,
    'cluster': Cluster,
}


def blast_radius_items(items):
    """Turn the stored blast-radius list into names and links; anything malformed is shown, never trusted."""
    result = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            result.append({'name': str(item), 'type': '', 'url': None})
            continue
        kind = str(item.get('type', ''))
        model = BLAST_RADIUS_MODELS.get(kind.lower())
        pk = item.get('id')
        url = model(pk=pk).get_absolute_url() if model is not None and type(pk) is int else None
        result.append({'name': str(item.get('name') or f'{kind} #{pk}'), 'type': kind, 'url': url})
    return result


def _incident_event_count():
    """Distinct events per incident (an event can hold more than one membership row over its occurrences)."""
    return Coalesce(
        Subquery(
            IncidentEvent.objects.filter(incident=OuterRef('pk'))
            .order_by()
            .values('incident')
            .annotate(c=Count('event', distinct=True))
            .values('c'),
            output_field=IntegerField(),
        ),
        0,
    )


@register_model_view(Incident, 'list', path='', detail=False)
class IncidentListView(generic.ObjectListView):
    queryset = Incident.objects.annotate(event_count=_incident_event_count())
    filterset = filtersets.IncidentFilterSet
    filterset_form = forms.IncidentFilterForm
    table = tables.IncidentTable


#: How many down and how many degraded objects the blast-radius list names before it only counts the rest.
BLAST_LIST_LIMIT = 15


@register_model_view(Incident)
class IncidentView(generic.ObjectView):
    template_name = 'generic/object.html'
    queryset = Incident.objects.all()
    layout = layout.SimpleLayout(
        left_panels=[IncidentPanel(), CustomFieldsPanel(), TagsPanel()],
        right_panels=[
            RootCausePanel(),
            panels.TemplatePanel('business_application/panels/incident_actions.html', title=_('Actions')),
            panels.TemplatePanel('business_application/panels/blast_radius.html', title=_('Blast radius')),
        ],
        bottom_panels=[
            panels.TemplatePanel('business_application/panels/blast_picture.html', title=_('Blast radius picture')),
            panels.ContextTablePanel('member_table', title=_('Events and why they joined')),
            panels.ContextTablePanel('timeline_table', title=_('Timeline')),
            panels.ObjectsTablePanel(
                'business_application.technicalservice',
                title=_('Affected services'),
                filters={'incident_id': _pk},
            ),
            panels.ObjectsTablePanel(
                'business_application.businessapplication',
                title=_('Affected business applications'),
                filters={'id': lambda ctx: ctx['affected_app_ids']},
            ),
        ],
    )

    def get_extra_context(self, request, instance):
        visible_events = Event.objects.restrict(request.user, 'view')
        memberships = list(
            instance.memberships.filter(event__in=visible_events).select_related('event').prefetch_related('event__obj')
        )
        service_map = current_map()
        timeline = list(instance.timeline.prefetch_related(Prefetch('event', queryset=visible_events)))
        # The incident's own texts, without the names of objects this user may not view (shown only, never saved)
        paths = [label for m in memberships if isinstance(m.path, list) for label in m.path if isinstance(label, str)]
        nodes = {m.pk: node_of(service_map, m.event.content_type_id, m.event.object_id) for m in memberships}
        on_map = [service_map.labels[node] for node in set(nodes.values()) if node is not None]
        can_change = Incident.objects.restrict(request.user, 'change').filter(pk=instance.pk).exists()
        targets = move_targets(request, instance) if can_change else []
        redactor = Redactor(request.user, service_map).prepare(
            [instance, *targets], texts=[e.message for e in timeline] + paths + on_map
        )
        for target in targets:
            target.title = redactor.title(target)  # shown only, never saved
        redactor.apply(instance)
        for entry in timeline:
            entry.message = redactor.label_text(entry.message)
        failing = set()
        for membership in memberships:
            membership.path_words = path_in_words(service_map, membership.path, redactor.hidden, redactor.label_text)
            node = nodes[membership.pk]
            if node is not None:
                failing.add(node)
            if node in redactor.hidden:  # the event's object, which this user may not view
                membership.hidden_target = placeholder(service_map.kinds[node])
        blast_radius = instance.blast_radius if isinstance(instance.blast_radius, dict) else {}
        down = blast_radius_items(blast_radius.get('down'))
        degraded = blast_radius_items(blast_radius.get('degraded'))
        return {
            'member_table': tables.IncidentMemberTable(memberships, orderable=False),
            'timeline_table': tables.IncidentTimelineTable(timeline, orderable=False),
            'blast_down': down[:BLAST_LIST_LIMIT],
            'blast_down_count': len(down),
            'blast_down_more': max(0, len(down) - BLAST_LIST_LIMIT),
            'blast_degraded': degraded[:BLAST_LIST_LIMIT],
            'blast_degraded_count': len(degraded),
            'blast_degraded_more': max(0, len(degraded) - BLAST_LIST_LIMIT),
            'blast_capped': bool(blast_radius.get('capped')),
            'blast_picture': blast_picture(service_map, request.user, failing, blast_radius),
            'affected_app_ids': affected_application_ids(instance, blast_radius),
            'can_change': can_change,
            'is_open': instance.status in IncidentStatusChoices.OPEN,
            'move_events': [m.event for m in memberships] if can_change else [],
            'move_targets': targets,
        }


@register_model_view(Incident, 'add', detail=False)
@register_model_view(Incident, 'edit')
class IncidentEditView(generic.ObjectEditView):
    queryset = Incident.objects.all()
    form = forms.IncidentForm


@register_model_view(Incident, 'delete')
class IncidentDeleteView(generic.ObjectDeleteView):
    queryset = Incident.objects.all()


@register_model_view(Incident, 'bulk_import', path='import', detail=False)
class IncidentBulkImportView(generic.BulkImportView):
    queryset = Incident.objects.all()
    model_form = forms.IncidentImportForm


@register_model_view(Incident, 'bulk_edit', path='edit', detail=False)
class IncidentBulkEditView(generic.BulkEditView):
    queryset = Incident.objects.annotate(event_count=_incident_event_count())
    filterset = filtersets.IncidentFilterSet
    table = tables.IncidentTable
    form = forms.IncidentBulkEditForm


@register_model_view(Incident, 'bulk_delete', path='delete', detail=False)
class IncidentBulkDeleteView(generic.BulkDeleteView):
    queryset = Incident.objects.annotate(event_count=_incident_event_count())
    filterset = filtersets.IncidentFilterSet
    table = tables.IncidentTable
