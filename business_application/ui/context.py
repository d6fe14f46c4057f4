"""What the incident and service pages compute beyond their fields; each helper costs at most one query."""

from django.http import HttpResponse

from ..choices import IncidentStatusChoices
from ..models import Incident, TechnicalService
from ..services.graph_loader import current_map
from .maps import MAX_DEPTH, blast_nodes

__all__ = ('DEFAULT_MAP_DEPTH', 'affected_application_ids', 'move_targets', 'open_incident_states', 'parse_depth')

#: How many steps up and down the service page's map walks unless ?depth= says otherwise.
DEFAULT_MAP_DEPTH = 2


def parse_depth(request):
    """The ?depth= of the service page: (depth, None), or (None, the 400 response naming the field and why)."""
    raw = request.GET.get('depth')
    if raw is None or raw == '':
        return DEFAULT_MAP_DEPTH, None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 2) or not 1 <= int(raw) <= MAX_DEPTH:
        message = f'depth: must be a whole number from 1 to {MAX_DEPTH}\n'
        return None, HttpResponse(message, status=400, content_type='text/plain; charset=utf-8')
    return int(raw), None


def open_incident_states(service):
    """Which map nodes the open incidents affecting ``service`` have down or degraded (one query)."""
    service_map = current_map()
    states = {}
    blasts = service.incidents.filter(status__in=IncidentStatusChoices.OPEN).values_list('blast_radius', flat=True)
    for blast in blasts:
        down, degraded = blast_nodes(service_map, blast)
        states.update(dict.fromkeys(degraded, 'degraded'))
        states.update(dict.fromkeys(down, 'down'))
    return states


#: How many other open incidents the move form offers.
MOVE_TARGETS = 50


def move_targets(request, instance):
    """Other open incidents this user may change, newest first (one query, at most ``MOVE_TARGETS``), with what a
    ``Redactor`` reads of them."""
    return list(
        Incident.objects.restrict(request.user, 'change')
        .filter(status__in=IncidentStatusChoices.OPEN)
        .exclude(pk=instance.pk)
        .order_by('-detected_at', '-pk')
        .only('pk', 'title', 'root_cause', 'blast_radius', 'title_objects')[:MOVE_TARGETS]
    )


def affected_application_ids(instance, blast_radius):
    """Applications in the blast radius and those the affected services support (one query)."""
    ids = {
        item['id']
        for side in ('down', 'degraded')
        for item in blast_radius.get(side) or ()
        if isinstance(item, dict) and item.get('type') in ('app', 'application') and type(item.get('id')) is int
    }
    through = TechnicalService.business_apps.through.objects.filter(technicalservice__incidents=instance)
    ids.update(through.values_list('businessapplication_id', flat=True))
    return sorted(ids) or [0]  # no id would mean no filter at all
