"""REST endpoints of the native alert receivers: ``alerts/alertmanager/``, ``alerts/grafana/``,
``alerts/pagerduty/`` and ``alerts/generic/``.

They authenticate like the rest of NetBox's API (session or token, write-enabled tokens for
writes) and need ``business_application.add_event`` and ``business_application.change_event`` (a
repeat of an alert updates it); object permission constraints on events and event sources are
enforced on what a request creates and changes. A request is stored and correlated in one
transaction: a malformed payload (400), a refused permission (403) or an unknown event source
the user may not create (400) leaves nothing behind. Bodies over ``MAX_BODY_BYTES`` get 413
before they are parsed.
"""

from __future__ import annotations

import functools
import logging

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.http.request import RawPostDataException, UnreadablePostError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from netbox.api.authentication import TokenPermissions

from ..models import Event, EventSource, Incident, IncidentEvent
from ..receivers import alertmanager, generic, grafana, pagerduty
from ..receivers.common import MAX_BODY_BYTES, PayloadError, load_json, source_name
from ..services import intake

__all__ = (
    'AlertmanagerReceiverView',
    'AlertReceiverView',
    'GenericReceiverView',
    'GrafanaReceiverView',
    'PagerDutyReceiverView',
    'ReceiverPermissions',
    'read_body',
)

logger = logging.getLogger('business_application.receivers')


class ReceiverPermissions(TokenPermissions):
    """A delivery may create events and update stored ones, so it needs both permissions."""

    perms_map = {
        **TokenPermissions.perms_map,
        'POST': ['%(app_label)s.add_%(model_name)s', '%(app_label)s.change_%(model_name)s'],
        'PUT': ['%(app_label)s.add_%(model_name)s', '%(app_label)s.change_%(model_name)s'],
    }


class _TooLarge(Exception):
    pass


def read_body(request, limit=MAX_BODY_BYTES):
    """The request body, refused (``_TooLarge``) past ``limit`` bytes by its Content-Length or, when
    that is absent or wrong, by the bytes actually read; never reads more than ``limit + 1``."""
    declared = request.META.get('CONTENT_LENGTH') or request.META.get('HTTP_CONTENT_LENGTH')
    try:
        if declared and int(declared) > limit:
            raise _TooLarge(int(declared))
    except ValueError:
        raise PayloadError('Content-Length', f'{str(declared)[:40]!r} is not a number') from None
    django_request = getattr(request, '_request', request)
    try:
        body = django_request.read(limit + 1)
    except RawPostDataException:
        body = django_request.body
    except (UnreadablePostError, OSError):
        raise PayloadError('$', 'the body could not be read to its end') from None
    if len(body) > limit:
        raise _TooLarge(len(body))
    if not body and 'chunked' in request.META.get('HTTP_TRANSFER_ENCODING', '').lower():
        raise PayloadError(
            '$',
            'the body arrived empty: this server does not pass chunked request bodies on; '
            'send the body with a Content-Length',
        )
    return body


_SOURCE_PARAMETER = OpenApiParameter(
    'source',
    str,
    OpenApiParameter.QUERY,
    required=False,
    description='The event source (the monitoring system that raised the alerts), overriding what the payload '
    'says; created when unknown if the user may add event sources.',
)
_RESPONSES = {
    200: OpenApiResponse(OpenApiTypes.OBJECT, description='Stored and correlated: events and incidents'),
    400: OpenApiResponse(OpenApiTypes.OBJECT, description='Malformed payload: `path` and `reason` say what'),
    403: OpenApiResponse(OpenApiTypes.OBJECT, description='Not authenticated, or lacking a permission'),
    413: OpenApiResponse(OpenApiTypes.OBJECT, description=f'Body larger than {MAX_BODY_BYTES} bytes'),
}


def allowed_of(model, user, action, pks):
    """The ids among ``pks`` (stored rows of ``model``) on which ``user`` may ``action``: read with one query, or
    none when no permission constraint narrows them (a superuser, a permission without constraints)."""
    everything = model.objects.all()
    allowed = everything.restrict(user, action)
    if allowed is everything:
        return set(pks)
    return set(allowed.filter(pk__in=pks).values_list('pk', flat=True))


def may_all(user, action, pks):
    """Whether ``user`` may ``action`` ('add', 'change') each stored event of ``pks``."""
    return allowed_of(Event, user, action, pks) == set(pks)


class AlertReceiverView(APIView):
    """Base of the receivers: read, parse, map, store in one transaction, answer with a summary."""

    queryset = Event.objects.all()
    permission_classes = [ReceiverPermissions]
    # The body is read and parsed by the receiver itself (size limit first); this only tells clients
    # and the OpenAPI schema that it is JSON.
    parser_classes = [JSONParser]
    http_method_names = ['post', 'put', 'options']
    #: The receiver's name and its parser module (``parse(payload, source, notes=...)``).
    name = ''
    parser = None
    success_status = status.HTTP_200_OK

    def get_view_name(self):
        return f'{self.name.capitalize()} alert receiver'

    def post(self, request):
        try:
            body = read_body(request)
        except _TooLarge as error:
            return Response(
                {
                    'detail': f'The body has {error.args[0]} bytes; a receiver reads at most {MAX_BODY_BYTES}.',
                    'path': '$',
                    'reason': 'too large',
                },
                status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
            )
        except PayloadError as error:
            return self._bad(error)
        notes = []
        try:
            payload = load_json(body)
            source = self._source(request)
            alerts = self.parse(payload, source, notes)
            results = self.store_and_queue(request, alerts)
        except PayloadError as error:
            return self._bad(error)
        except intake.UnknownSourceError as error:
            return self._bad(
                PayloadError(
                    'source',
                    f'no event source is named {error.name!r}, and this user may not add event sources; '
                    'create it under event-sources/ or give a known one with ?source=',
                )
            )
        return Response(self.summary(alerts, results, notes), status=self.success_status)

    def parse(self, payload, source, notes):
        return self.parser.parse(payload, source, notes=notes)

    @staticmethod
    def _source(request):
        if 'source' not in request.query_params:
            return None
        return source_name(request.query_params.get('source'), 'source (query parameter)')

    @staticmethod
    def _bad(error):
        return Response(
            {'detail': str(error), 'path': error.path, 'reason': error.reason}, status=status.HTTP_400_BAD_REQUEST
        )

    # Storing, with NetBox's permission rules

    def store_and_queue(self, request, alerts):
        """Store the alerts in one transaction, then queue NetBox's event rules for them.

        A request that stores nothing (refused, bad) clears the events its saves queued, as NetBox's own API
        does, so that no rule ever sees an alert that was rolled back. Once the alerts are committed, the rules'
        actions are queued here rather than after the view: a failure there (Redis down) is logged, and the
        sender is still told that its alerts are stored, so it does not send them again.
        """
        from core.signals import clear_events
        from extras.events import flush_events
        from netbox.context import events_queue

        try:
            with transaction.atomic():
                results = self.store(request, alerts)
        except Exception:
            clear_events.send(sender=self)
            raise
        events = list(events_queue.get().values())
        events_queue.set({})
        try:
            flush_events(events)
        except Exception:
            logger.exception('%s alerts are stored, but the event rules for them could not be queued', len(results))
        return results

    def store(self, request, alerts):
        """Store the alerts (inside the caller's transaction) and check object permissions on
        what was created and changed; a refusal raises and so rolls everything back."""
        user = request.user
        if not alerts:
            return []
        names = {alert.source for alert in alerts}
        known = set(EventSource.objects.filter(name__in=names).values_list('name', flat=True))
        missing = names - known
        may_add_sources = bool(missing) and user.has_perm('business_application.add_eventsource')
        if missing and not may_add_sources:
            raise intake.UnknownSourceError(sorted(missing)[0])
        results = intake.ingest(
            alerts, create_sources=may_add_sources, check_stored=functools.partial(self._check_stored, user)
        )
        created = {event.pk for event, was_created in results if was_created}
        changed = {event.pk for event, was_created in results if not was_created} - created
        if created and not may_all(user, 'add', created):
            raise PermissionDenied('A permission constraint forbids adding one of these alerts.')
        if changed and not may_all(user, 'change', changed):
            raise PermissionDenied('A permission constraint forbids changing one of these alerts.')
        if missing and EventSource.objects.restrict(user, 'add').filter(name__in=missing).count() != len(missing):
            raise PermissionDenied(
                f'A permission constraint forbids adding the event source {", ".join(sorted(missing))}.'
            )
        return results

    @staticmethod
    def _check_stored(user, pks):
        """Stored alerts a request repeats must be ones the user may change, before (here, called by ``ingest`` once
        their decision locks are taken) and after (``store``)."""
        if not may_all(user, 'change', pks):
            raise PermissionDenied('One of these alerts exists already and you may not change it.')

    # The answer

    def summary(self, alerts, results, notes):
        """What was stored and decided. Ids of events and incidents, and whether an event was mapped to an object,
        appear only where the user may view them: a token that may only deliver alerts learns no object ids, and
        cannot tell by its answer whether a name it sends is that of an object it may not view (``unmapped`` is then
        null, ``unmapped_label`` too for each event it may not view)."""
        user = self.request.user
        ids = [event.pk for event, _ in results]
        visible_events = allowed_of(Event, user, 'view', ids)
        incidents = {}
        for event_id, incident_id in (
            IncidentEvent.objects.filter(event_id__in=ids)
            .values_list('event_id', 'incident_id')
            .order_by('incident_id')
        ):
            incidents.setdefault(event_id, set()).add(incident_id)
        visible_incidents = allowed_of(Incident, user, 'view', {i for found in incidents.values() for i in found})
        incidents = {event_id: found & visible_incidents for event_id, found in incidents.items()}
        events = []
        for alert, (event, created) in zip(alerts, results, strict=True):
            visible = event.pk in visible_events
            mapped = visible and event.content_type_id is not None and event.object_id is not None
            content_type = ContentType.objects.get_for_id(event.content_type_id) if mapped else None
            events.append(
                {
                    'id': event.pk if visible else None,
                    'created': created,
                    'source': alert.source,
                    'dedup_id': event.dedup_id,
                    'status': event.status,
                    'severity': event.criticallity,
                    'object_type': f'{content_type.app_label}.{content_type.model}' if mapped else None,
                    'object_id': event.object_id if mapped else None,
                    'unmapped_label': (event.unmapped_label if not event.is_mapped else '') if visible else None,
                    'incidents': sorted(incidents.get(event.pk, ())),
                }
            )
        answer = {
            'receiver': self.name,
            'received': len(alerts),
            'created': sum(1 for _, created in results if created),
            'updated': sum(1 for _, created in results if not created),
            'unmapped': sum(1 for event, _ in results if not event.is_mapped)
            if len(visible_events) == len(set(ids))
            else None,
            'events': events,
            'incidents': sorted({i for found in incidents.values() for i in found}),
        }
        if notes:
            answer['notes'] = notes
        return answer


@extend_schema(tags=['alert receivers'])
class AlertmanagerReceiverView(AlertReceiverView):
    """Prometheus Alertmanager's webhook (version 4): one alert group per request."""

    name = 'alertmanager'
    parser = alertmanager

    @extend_schema(
        operation_id='plugins_business_application_alerts_alertmanager',
        request=OpenApiTypes.OBJECT,
        parameters=[_SOURCE_PARAMETER],
        responses=_RESPONSES,
    )
    def post(self, request):
        return super().post(request)

    @extend_schema(exclude=True)
    def put(self, request):
        return super().post(request)


@extend_schema(tags=['alert receivers'])
class GrafanaReceiverView(AlertReceiverView):
    """Grafana alerting's webhook contact point (POST or PUT)."""

    name = 'grafana'
    parser = grafana

    @extend_schema(
        operation_id='plugins_business_application_alerts_grafana',
        request=OpenApiTypes.OBJECT,
        parameters=[_SOURCE_PARAMETER],
        responses=_RESPONSES,
    )
    def post(self, request):
        return super().post(request)

    @extend_schema(exclude=True)
    def put(self, request):
        return super().post(request)


@extend_schema(tags=['alert receivers'])
class PagerDutyReceiverView(AlertReceiverView):
    """PagerDuty Events API v2 (trigger, acknowledge, resolve); answers 202 like PagerDuty."""

    name = 'pagerduty'
    parser = pagerduty
    success_status = status.HTTP_202_ACCEPTED

    @extend_schema(
        operation_id='plugins_business_application_alerts_pagerduty',
        request=OpenApiTypes.OBJECT,
        parameters=[_SOURCE_PARAMETER],
        responses={202: _RESPONSES[200], **{k: v for k, v in _RESPONSES.items() if k != 200}},
    )
    def post(self, request):
        return super().post(request)

    @extend_schema(exclude=True)
    def put(self, request):
        return super().post(request)

    def parse(self, payload, source, notes):
        alerts = super().parse(payload, source, notes)
        event = payload.get('event') if 'event_action' not in payload else payload
        self._dedup_key = alerts[0].dedup_id if alerts else event.get('dedup_key')
        return alerts

    def summary(self, alerts, results, notes):
        answer = super().summary(alerts, results, notes)
        # What PagerDuty itself answers, for senders that read it.
        return {'status': 'success', 'message': 'Event processed', 'dedup_key': self._dedup_key, **answer}


@extend_schema(tags=['alert receivers'])
class GenericReceiverView(AlertReceiverView):
    """One alert or a batch in the plugin's own simple JSON shape (docs/receivers.md)."""

    name = 'generic'
    parser = generic

    @extend_schema(
        operation_id='plugins_business_application_alerts_generic',
        request=OpenApiTypes.OBJECT,
        parameters=[_SOURCE_PARAMETER],
        responses=_RESPONSES,
    )
    def post(self, request):
        return super().post(request)

    @extend_schema(exclude=True)
    def put(self, request):
        return super().post(request)
