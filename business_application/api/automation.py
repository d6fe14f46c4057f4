"""The guide's automation endpoints: process one event, process the unprocessed ones (as a job), status."""

from datetime import timedelta

from django.urls import reverse
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from users.models import Token

from ..choices import IncidentStatusChoices
from ..jobs import ProcessUnprocessedEventsJob
from ..models import Event, Incident
from ..services import clock
from ..services.automation import process_events, unprocessed_events
from ..settings import get_settings

__all__ = ('ProcessEventView', 'ProcessUnprocessedView', 'StatusView')


class ModelPermissionsRequired(BasePermission):
    """An authenticated user holding every permission the view names for the method; tokens must allow writes."""

    def has_permission(self, request, view):
        user = request.user
        if not user or not user.is_authenticated:
            return False
        if isinstance(request.auth, Token) and request.method not in SAFE_METHODS and not request.auth.write_enabled:
            return False
        return all(user.has_perm(name) for name in view.required_permissions.get(request.method, ()))


class ProcessEventInput(serializers.Serializer):
    event_id = serializers.IntegerField(min_value=1)


class ProcessUnprocessedInput(serializers.Serializer):
    hours = serializers.IntegerField(min_value=1, max_value=168, default=24)


_ANSWER = OpenApiResponse(OpenApiTypes.OBJECT)
_REFUSED = OpenApiResponse(OpenApiTypes.OBJECT, description='`detail` or field errors say why')


@extend_schema(tags=['incident automation'])
class ProcessEventView(APIView):
    """Correlate one event now (idempotent: an event already processed is left as it is)."""

    permission_classes = [ModelPermissionsRequired]
    required_permissions = {'POST': ('business_application.change_event',)}

    @extend_schema(
        operation_id='plugins_business_application_incident_automation_process_event',
        request=ProcessEventInput,
        responses={200: _ANSWER, 400: _REFUSED, 403: _REFUSED, 409: _ANSWER},
    )
    def post(self, request):
        data = ProcessEventInput(data=request.data)
        data.is_valid(raise_exception=True)
        event_id = data.validated_data['event_id']
        if not Event.objects.restrict(request.user, 'change').filter(pk=event_id).exists():
            raise serializers.ValidationError(
                {'event_id': [_('No event {id} that you may change.').format(id=event_id)]}
            )
        summary = process_events([event_id])
        if summary.errors:
            return Response(
                {'success': False, 'event_id': event_id, 'error': summary.errors[0]['error']},
                status=status.HTTP_409_CONFLICT,
            )
        membership = (
            Event.objects.get(pk=event_id).memberships.select_related('incident').order_by('-occurrence').first()
        )
        incident = membership.incident if membership else None
        return Response(
            {
                'success': True,
                'event_id': event_id,
                'action': next(iter(summary.actions)),
                'incident_id': incident.pk if incident else None,
                'incident_title': shown_title(request.user, incident) if incident else None,
                'incident_url': request.build_absolute_uri(incident.get_absolute_url()) if incident else None,
            }
        )


def shown_title(user, incident):
    """The incident's title as ``user`` may see it: none when they may not view the incident, placeholders for the
    objects they may not view."""
    from ..ui.redact import Redactor

    if not Incident.objects.restrict(user, 'view').filter(pk=incident.pk).exists():
        return None
    return Redactor(user).prepare([incident]).title(incident)


@extend_schema(tags=['incident automation'])
class ProcessUnprocessedView(APIView):
    """Hand every unprocessed event of the last hours to a background job on NetBox's queue."""

    permission_classes = [ModelPermissionsRequired]
    required_permissions = {'POST': ('business_application.change_event',)}

    @extend_schema(
        operation_id='plugins_business_application_incident_automation_process_unprocessed',
        request=ProcessUnprocessedInput,
        responses={202: _ANSWER, 400: _REFUSED, 403: _REFUSED},
    )
    def post(self, request):
        data = ProcessUnprocessedInput(data=request.data)
        data.is_valid(raise_exception=True)
        hours = data.validated_data['hours']
        found = unprocessed_events(hours).count()
        job = ProcessUnprocessedEventsJob.enqueue(user=request.user, hours=hours)
        return Response(
            {
                'success': True,
                'message': _('{count} unprocessed events are being processed in the background.').format(count=found),
                'unprocessed_events_found': found,
                'time_window_hours': hours,
                'job_id': job.pk,
                'job_url': request.build_absolute_uri(reverse('core-api:job-detail', args=[job.pk])),
                'job_status': job.status,
            },
            status=status.HTTP_202_ACCEPTED,
        )


@extend_schema(tags=['incident automation'])
class StatusView(APIView):
    """Whether automation is on, how it is configured, and what it has done lately."""

    permission_classes = [ModelPermissionsRequired]
    required_permissions = {'GET': ('business_application.view_event', 'business_application.view_incident')}

    @extend_schema(
        operation_id='plugins_business_application_incident_automation_status',
        responses={200: _ANSWER, 403: _REFUSED},
    )
    def get(self, request):
        from ..config import engine_status, queue_status

        settings = get_settings()
        now = clock.now()
        day, two_days = now - timedelta(hours=24), now - timedelta(hours=48)
        events = Event.objects.restrict(request.user, 'view')
        incidents = Incident.objects.restrict(request.user, 'view')
        return Response(
            {
                'automation_enabled': settings.auto_incidents_enabled,
                'auto_resolve_enabled': settings.auto_resolve_incidents,
                'async_processing': settings.async_processing,
                'correlation_window_minutes': settings.correlation_window_minutes,
                'correlation_threshold': settings.correlation_threshold,
                'max_dependency_depth': settings.max_dependency_depth,
                'minimum_severity': settings.require_minimum_severity,
                'engine': engine_status(),
                'queue': queue_status(),
                'events_last_24h': events.filter(created__gte=day).count(),
                'incidents_last_24h': incidents.filter(detected_at__gte=day).count(),
                'unprocessed_events': events.filter(Event.UNDECIDED)
                .exclude(event_source__name__in=settings.exclude_event_sources)
                .count(),
                'open_incidents': incidents.filter(status__in=IncidentStatusChoices.OPEN).count(),
                'recent_incident_trend': {
                    'last_24h': incidents.filter(detected_at__gte=day).count(),
                    'previous_24h': incidents.filter(detected_at__gte=two_days, detected_at__lt=day).count(),
                },
            }
        )
