"""What an operator does to an incident from its page: acknowledge it, resolve it, move an event to another incident.

Each action is a POST (CSRF-protected by Django's middleware), needs the change permission on every incident it
touches, object constraints included, and is written under the same locks as the correlator's decisions: the
advisory lock of every map component the incidents' events live in, then the incident rows. So a correlation
running at the same moment sees the incident before or after the action, never half of it. Every action leaves a
timeline entry and a change-log record, and notifies the configured webhooks as the correlator's changes do.
"""

import logging

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.generic import View

from utilities.views import register_model_view

from ..choices import IncidentStatusChoices
from ..correlation.lifecycle import Correlator
from ..models import Event, Incident, IncidentEvent, IncidentTimelineEntry
from ..notifications import notify
from ..services import clock
from ..services.graph_loader import current_map
from ..services.incident_service import LOCK_FIELDS, DjangoStore, lock_decisions
from ..settings import get_settings

__all__ = ('IncidentAcknowledgeView', 'IncidentMoveEventView', 'IncidentResolveView')

logger = logging.getLogger('business_application.ui.actions')

CHANGE = 'business_application.change_incident'
#: The incident fields a correlation decision (or the recompute after a move) writes.
DECIDED_FIELDS = ('title', 'severity', 'root_cause', 'root_cause_event', 'blast_radius', 'last_activity_at')


def bad_request(field, reason):
    """A 400 naming the field and why, as plain text so nothing in it is ever read as markup."""
    return HttpResponse(f'{field}: {reason}\n', status=400, content_type='text/plain; charset=utf-8')


def lock_incidents(pks, extra_events=()):
    """Take the correlator's decision locks for every event of these incidents (and ``extra_events``), then lock
    the incident rows; returns the incidents by primary key. Must run inside a transaction."""
    members = IncidentEvent.objects.filter(incident_id__in=pks).values('event_id')
    rows = list(Event.objects.filter(Q(pk__in=members) | Q(pk__in=list(extra_events))).values(*LOCK_FIELDS).distinct())
    if rows:
        lock_decisions(rows)
    incidents = {incident.pk: incident for incident in Incident.objects.select_for_update().filter(pk__in=pks)}
    for incident in incidents.values():
        incident.snapshot()  # the state before the action, for NetBox's change log
    return incidents


def decision_states(pks):
    """The correlator's view of these incidents (members, services, root cause), read as a decision reads them."""
    store = DjangoStore(current_map(), get_settings())
    for pk in pks:
        store.get_incident(pk)
    return store


def recompute_after_move(source_pk, target_pk, event_id, store):
    """Rebuild both incidents' root cause, title, severity, affected services and blast radius with the
    correlator's own recompute, so they read as a correlation decision would have written them.

    ``store`` holds both incidents as they were before the move (``decision_states``); the moved members change
    sides in memory here, as the rows did. The source keeps its root cause unless it was the moved event; the
    target weighs its root cause against the newcomer, as a join does. Services only the moved event brought are
    taken off the source (services a person added by hand stay)."""
    source, target = store.get_incident(source_pk), store.get_incident(target_pk)
    moving = [m for m in source.members if m.alert == event_id]
    source.members = [m for m in source.members if m.alert != event_id]
    target.members.extend(moving)
    before = set(source.services)

    correlator = Correlator(store.map, store.settings, store)
    now = clock.now().timestamp()
    correlator.recompute(source, now, event_id, roots=[source.root_alert])
    correlator.recompute(target, now, event_id, roots=[target.root_alert, event_id])
    store.flush()

    dropped = [store.map.keys[node][1] for node in before - source.services]
    if dropped:
        Incident.affected_services.through.objects.filter(
            incident_id=source_pk, technicalservice_id__in=dropped
        ).delete()


def parse_id(raw):
    """A primary key given as ASCII digits (at most 18 of them), else None."""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


class Refused(Exception):
    """Raised inside an action's transaction to roll it back and answer ``response``."""

    def __init__(self, response):
        super().__init__()
        self.response = response


class IncidentActionView(View):
    """Common checks: POST only, the change permission (403 without it), the incident within its constraints (404
    outside them)."""

    http_method_names = ['post']

    def changeable(self, request):
        return Incident.objects.restrict(request.user, 'change')

    def post(self, request, pk):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.has_perm(CHANGE):
            return HttpResponseForbidden(_('You may not change incidents.'))
        incident = get_object_or_404(self.changeable(request), pk=pk)
        self.request = request
        try:
            return self.act(request, incident)
        except Refused as refused:
            return refused.response

    def record(self, incident, kind, message, event=None, data=None):
        IncidentTimelineEntry.objects.create(
            incident=incident, time=timezone.now(), kind=kind, message=message[:500], event=event, data=data or {}
        )

    def save(self, incident, fields):
        """Save only ``fields`` (NetBox records the change against the snapshot ``lock_incidents`` took), then check
        the incident is still within the user's change constraints, as NetBox's edit view does: an action may not
        move an incident out of the user's scope (the whole action is rolled back)."""
        incident.save(update_fields=[*fields, 'last_updated'])
        if not self.changeable(self.request).filter(pk=incident.pk).exists():
            raise Refused(HttpResponseForbidden(_('This would move the incident outside what you may change.')))


@register_model_view(Incident, 'acknowledge', path='acknowledge')
class IncidentAcknowledgeView(IncidentActionView):
    """A person has taken the incident: it moves from new to investigating, with them as commander if it had none."""

    def act(self, request, incident):
        with transaction.atomic():
            incident = lock_incidents([incident.pk])[incident.pk]
            if incident.status not in IncidentStatusChoices.OPEN:
                return bad_request('status', f'incident {incident.pk} is {incident.status}, not open')
            fields = []
            if incident.status == IncidentStatusChoices.NEW:
                incident.status = IncidentStatusChoices.INVESTIGATING
                fields.append('status')
            if not incident.commander:
                incident.commander = request.user.username[:120]
                fields.append('commander')
            self.save(incident, fields)
            self.record(incident, 'acknowledged', f'Acknowledged by {request.user.username}')
            notify(incident.pk, 'updated')
        logger.info('incident %s acknowledged by %s', incident.pk, request.user.username)
        messages.success(request, _('Incident acknowledged.'))
        return redirect(incident.get_absolute_url())


@register_model_view(Incident, 'resolve', path='resolve')
class IncidentResolveView(IncidentActionView):
    """A person declares the outage over: the incident takes no more events, even if some are still firing."""

    def act(self, request, incident):
        with transaction.atomic():
            incident = lock_incidents([incident.pk])[incident.pk]
            if incident.status not in IncidentStatusChoices.OPEN:
                return bad_request('status', f'incident {incident.pk} is already {incident.status}')
            previous = incident.status
            incident.status = IncidentStatusChoices.RESOLVED
            incident.resolved_at = timezone.now()
            self.save(incident, ['status', 'resolved_at'])
            firing = incident.memberships.filter(status='triggered').count()
            note = f' ({firing} events still firing)' if firing else ''
            # What a flap within the reopen window returns the incident to, and whom its timeline names.
            data = {'by': request.user.username, 'previous_status': previous}
            self.record(incident, 'resolved', f'Resolved by {request.user.username}{note}', data=data)
            notify(incident.pk, 'resolved')
        logger.info('incident %s resolved by %s', incident.pk, request.user.username)
        messages.success(request, _('Incident resolved.'))
        return redirect(incident.get_absolute_url())


@register_model_view(Incident, 'move_event', path='move-event')
class IncidentMoveEventView(IncidentActionView):
    """Move an event (all its memberships in this incident) to another open incident the user may change."""

    def act(self, request, incident):
        event_id, target_id = parse_id(request.POST.get('event', '')), parse_id(request.POST.get('target', ''))
        if event_id is None:
            return bad_request('event', 'must be the id of an event of this incident')
        if target_id is None:
            return bad_request('target', 'must be the id of an open incident')
        if target_id == incident.pk:
            return bad_request('target', 'is this incident already')
        if not Event.objects.restrict(request.user, 'view').filter(pk=event_id).exists():
            return bad_request('event', f'event {event_id} not found')
        if not self.changeable(request).filter(pk=target_id).exists():
            return bad_request('target', f'incident {target_id} not found or not yours to change')

        with transaction.atomic():
            locked = lock_incidents([incident.pk, target_id], extra_events=[event_id])
            source, target = locked.get(incident.pk), locked.get(target_id)
            if source is None or target is None:
                return bad_request('target', f'incident {target_id} was deleted')
            states = decision_states([source.pk, target.pk])  # before the move, to know what the event brought
            if target.status not in IncidentStatusChoices.OPEN:
                return bad_request('target', f'incident {target_id} is {target.status}, not open')
            moved = IncidentEvent.objects.filter(incident=source, event_id=event_id).update(incident=target)
            if not moved:
                return bad_request('event', f'event {event_id} is not in incident {source.pk}')
            event = Event.objects.get(pk=event_id)
            who = request.user.username
            self.record(source, 'moved-out', f'Event {event_id} moved to incident {target.pk} by {who}', event)
            self.record(target, 'moved-in', f'Event {event_id} moved here from incident {source.pk} by {who}', event)
            recompute_after_move(source.pk, target.pk, event_id, states)
            for changed in (source, target):  # the change log records what the recompute wrote
                changed.refresh_from_db(fields=DECIDED_FIELDS)
            fields = []
            if source.status in IncidentStatusChoices.OPEN and not source.memberships.exists():
                # Nothing is left to clear it: the emptied incident resolves rather than stay open for ever.
                source.status = IncidentStatusChoices.RESOLVED
                source.resolved_at = timezone.now()
                fields = ['status', 'resolved_at']
                self.record(source, 'resolved', f'Resolved: its last event moved to incident {target.pk}')
            self.save(source, fields)
            self.save(target, [])
            for changed in (source, target):
                notify(changed.pk, 'resolved' if changed is source and fields else 'updated')
        logger.info('event %s moved from incident %s to %s by %s', event_id, source.pk, target.pk, who)
        messages.success(request, _('Event moved.'))
        return redirect(source.get_absolute_url())
