"""REST viewsets: NetBox's own classes, so token auth, object permissions, brief mode and filters all apply."""

import copy

from django.db import transaction
from django.db.models import Count, Prefetch
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.decorators import action
from rest_framework.filters import OrderingFilter

from netbox.api.viewsets import NetBoxModelViewSet

from .. import filtersets
from ..models import (
    BusinessApplication,
    Event,
    EventSource,
    Incident,
    IncidentEvent,
    Maintenance,
    ServiceDependency,
    TechnicalService,
)
from ..services.incident_service import lock_decisions
from . import serializers

__all__ = (
    'BusinessApplicationViewSet',
    'EventSourceViewSet',
    'EventViewSet',
    'IncidentViewSet',
    'MaintenanceViewSet',
    'ServiceDependencyViewSet',
    'TechnicalServiceViewSet',
)


class BusinessApplicationViewSet(NetBoxModelViewSet):
    queryset = BusinessApplication.objects.prefetch_related('devices', 'virtual_machines', 'tags')
    serializer_class = serializers.BusinessApplicationSerializer
    filterset_class = filtersets.BusinessApplicationFilterSet


class TechnicalServiceViewSet(NetBoxModelViewSet):
    queryset = TechnicalService.objects.prefetch_related('business_apps', 'devices', 'vms', 'clusters', 'tags')
    serializer_class = serializers.TechnicalServiceSerializer
    filterset_class = filtersets.TechnicalServiceFilterSet


class ServiceDependencyViewSet(NetBoxModelViewSet):
    queryset = ServiceDependency.objects.select_related('upstream_service', 'downstream_service')
    serializer_class = serializers.ServiceDependencySerializer
    filterset_class = filtersets.ServiceDependencyFilterSet


class EventSourceViewSet(NetBoxModelViewSet):
    queryset = EventSource.objects.all()
    serializer_class = serializers.EventSourceSerializer
    filterset_class = filtersets.EventSourceFilterSet


class EventViewSet(NetBoxModelViewSet):
    """Events; a POST naming an existing (event_source, dedup_id) updates that alert and answers 200."""

    queryset = Event.objects.select_related('content_type', 'event_source').prefetch_related(
        Prefetch('memberships', queryset=IncidentEvent.objects.only('pk', 'event_id', 'incident_id')), 'tags'
    )
    serializer_class = serializers.EventSerializer
    filterset_class = filtersets.EventFilterSet

    def create(self, request, *args, **kwargs):
        response = super().create(request, *args, **kwargs)
        if response.status_code == 201 and not isinstance(request.data, list) and getattr(self, '_upserted', False):
            response.status_code = 200
        return response

    def perform_create(self, serializer):
        with transaction.atomic():
            super().perform_create(serializer)
        self._upserted = getattr(serializer, 'upserted', False)

    # NetBox writes a bulk request object by object, each save taking its decision locks after the rows of the
    # objects before it were locked: against a receiver (or another bulk request) that took the same locks in
    # ascending order first, that deadlocked. Every decision lock of the batch is taken first, ascending.

    def perform_bulk_create(self, data):
        with transaction.atomic():
            items = []
            for item in data if isinstance(data, list) else ():
                serializer = self.get_serializer(data=item) if isinstance(item, dict) else None
                if serializer is not None and serializer.is_valid():
                    items.append(serializer.validated_data)
            if items:
                serializers.EventSerializer.lock_batch(items)
            return super().perform_bulk_create(data)

    def perform_bulk_update(self, objects, update_data, partial):
        objects = list(objects)
        with transaction.atomic():
            rows = list(objects)  # as stored (decision_keys reads an event's LOCK_FIELDS)
            for obj in objects:
                # On a copy: NetBox's validation writes the new values onto the object it validates, and the change
                # log's "before" is the snapshot NetBox takes of the object afterwards.
                serializer = self.get_serializer(copy.copy(obj), data=update_data.get(obj.id), partial=partial)
                if serializer.is_valid():
                    rows += serializers.EventSerializer.lock_rows(serializer.validated_data)
            if rows:
                lock_decisions(rows)
            # Read again under the locks: what a delivery stored while this request waited for them is not undone
            # by saving the objects read before, and the locks of wherever an alert moved meanwhile are taken too.
            fresh = Event.objects.in_bulk([obj.pk for obj in objects])
            if fresh:
                lock_decisions(fresh.values())
            objects = [fresh[obj.pk] for obj in objects if obj.pk in fresh]
            return super().perform_bulk_update(objects, update_data, partial)

    def perform_bulk_destroy(self, objects, changelog_messages=None):
        objects = list(objects)
        with transaction.atomic():
            if objects:
                lock_decisions(objects)
            return super().perform_bulk_destroy(objects, changelog_messages)


#: What a user who may not view every object an incident may name cannot sort incidents on: the correlator's texts,
#: and the names inside the affected services and the blast radius.
UNSORTABLE = frozenset({*filtersets.REDACTED_FIELDS, 'affected_services', 'blast_radius'})


class IncidentOrdering(OrderingFilter):
    """``?ordering=`` without the title or root cause for a user who may not view every object they may name: where
    a redacted row landed would hint at the names it hides (the terms are dropped, as DRF drops unknown ones)."""

    def remove_invalid_fields(self, queryset, fields, view, request):
        from ..ui.redact import Redactor

        valid = super().remove_invalid_fields(queryset, fields, view, request)
        if Redactor.sees_everything(request.user):
            return valid
        return [term for term in valid if term.lstrip('-') not in UNSORTABLE]


class IncidentViewSet(NetBoxModelViewSet):
    """Incidents, each with its members unless the request omits them (``?omit=members``, ``?fields=``, brief
    mode); ``members/`` pages one incident's members, for incidents too large to embed them all."""

    queryset = Incident.objects.prefetch_related('affected_services', 'tags').annotate(
        event_count=Count('memberships', distinct=True)
    )
    serializer_class = serializers.IncidentSerializer
    filterset_class = filtersets.IncidentFilterSet
    filter_backends = (DjangoFilterBackend, IncidentOrdering)
    field_prefetches = {('members',): (Prefetch('memberships', queryset=serializers.members_queryset()),)}

    def get_queryset(self):
        if self.action == 'members':  # the incident alone, without NetBox's prefetches: members come a page at a time
            return self.queryset.all()
        return super().get_queryset()

    def get_field_prefetches(self, fields=None):
        """The members prefetch as this user may see it: only members whose event they may view."""
        return [
            Prefetch('memberships', queryset=self.visible_members())
            if isinstance(lookup, Prefetch) and lookup.prefetch_to == 'memberships'
            else lookup
            for lookup in super().get_field_prefetches(fields)
        ]

    def visible_members(self):
        """An incident's members whose event the requesting user may view (the incident page shows no others)."""
        return serializers.members_queryset().filter(event__in=Event.objects.restrict(self.request.user, 'view'))

    def paginate_queryset(self, queryset):
        """Learn, once per page, which objects named in its incidents' texts the user may not view."""
        from ..ui.redact import Redactor, page_redactor

        page = super().paginate_queryset(queryset)
        if page is not None and self.action != 'members':
            paths = serializers.member_paths(page) if 'members' in self.response_fields else ()
            # The request's own redactor, so that what NetBox draws with str(incident) costs no query either
            redactor = (page_redactor() or Redactor(self.request.user)).prepare(page, texts=paths)
            self.incident_redactor = redactor.prepare_services(page)
            self.incident_redacted = {incident.pk for incident in page}
        return page

    @extend_schema(
        parameters=[
            OpenApiParameter('limit', OpenApiTypes.INT, description='Members per page.'),
            OpenApiParameter('offset', OpenApiTypes.INT, description='Members to skip.'),
        ],
        responses=serializers.IncidentMemberPageSerializer,
        description="One incident's members (why each joined: score, factors, path), oldest first, paged with "
        '`limit` and `offset`: only those whose event the user may view, their paths naming no object the user '
        'may not view.',
    )
    @action(detail=True, methods=['get'], url_path='members')
    def members(self, request, pk=None):
        """One incident's members, oldest first, paged like any NetBox list (``limit``, ``offset``), their paths
        without the names of objects the user may not view; the incident must be one the user may view, and only the
        members whose event they may view are listed."""
        from ..ui.redact import Redactor

        incident = self.get_object()
        page = super().paginate_queryset(self.visible_members().filter(incident=incident))
        data = serializers.IncidentMemberSerializer(page, many=True, context=self.get_serializer_context()).data
        serializers.redact_paths(Redactor(request.user).prepare(texts=serializers.paths_of(page)), data)
        return self.get_paginated_response(data)

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if hasattr(self, 'incident_redactor'):
            context['incident_redactor'] = self.incident_redactor
            context['incident_redacted'] = self.incident_redacted
        return context


class MaintenanceViewSet(NetBoxModelViewSet):
    queryset = Maintenance.objects.select_related('content_type')
    serializer_class = serializers.MaintenanceSerializer
    filterset_class = filtersets.MaintenanceFilterSet
