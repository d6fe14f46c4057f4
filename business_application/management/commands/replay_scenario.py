"""Load a scenario file into NetBox and feed its notifications through the real models.

    netbox replay_scenario FILE [--json] [--commit] [--backend auto|rust|python]

Every notification is saved as an ``Event`` (a repeat updates the stored alert), so the
post_save signal correlates it exactly as a REST call would, on a replay clock that follows the
file's timings. Prints the same report as ``python -m business_application.replay``. By default
everything happens in one transaction that is rolled back at the end; ``--commit`` keeps it.
Exit status 0 on a match (or without expectations), 1 on a mismatch; bad input exits non-zero
with one line.
"""

import json
import math
from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, transaction
from django.test.utils import override_settings
from django.utils import timezone

from business_application.correlation.errors import CorrelationError
from business_application.correlation.replay import build_report, compare
from business_application.correlation.scenario import load_scenario
from business_application.models import Event, EventSource, Incident, Maintenance
from business_application.replay import render_table
from business_application.services import clock
from business_application.services.graph_loader import current_map, forget_map
from business_application.services.incident_service import DjangoStore, to_epoch
from business_application.services.intake import repeat_changes
from business_application.services.map_import import MapImportError, import_map

#: How far (seconds) a scenario's times may lie from its start: the replay clock is a datetime.
MAX_SCENARIO_SECONDS = 100 * 365 * 86400


def replay_start(scenario):
    """The moment a scenario's time 0 stands for: its last event ends an hour before now."""
    last = max((max(e.t, e.event_time) for e in scenario.events), default=0.0)
    return timezone.now().replace(microsecond=0) - timedelta(seconds=last + 3600)


def create_maintenance(scenario, objects, start):
    """The scenario's maintenance windows on the imported ``objects``, as planned windows from ``start``."""
    for window in scenario.maintenance:
        target = objects.get(f'{window["object"][0]}:{window["object"][1]}')
        if target is not None:
            Maintenance.objects.create(
                content_type=ContentType.objects.get_for_model(target),
                object_id=target.pk,
                status='planned',
                start=start + timedelta(seconds=window['start']),
                end=start + timedelta(seconds=window['end']),
                description=f'scenario {scenario.name}',
            )


def event_fields(item, arrival, event_time):
    """The stored fields of a scenario notification, as a receiver would write them (``raw`` names its ref)."""
    return {
        'message': item.message or item.ref,
        'status': item.status,
        'criticallity': item.severity,
        'last_seen_at': arrival,
        'event_time': event_time,
        'starts_at': item.starts_at,
        'ends_at': item.ends_at,
        'raw': {'scenario_ref': item.ref},
    }


def _unreplayable(scenario):
    """Why the scenario's alerts cannot be replayed through NetBox's models, or ''."""
    limits = (
        ('source', Event._meta.get_field('event_source').related_model._meta.get_field('name').max_length),
        ('dedup_id', Event._meta.get_field('dedup_id').max_length),
        ('message', Event._meta.get_field('message').max_length),
    )
    for item in scenario.events:
        for name in ('t', 'event_time'):
            value = getattr(item, name)
            if not math.isfinite(value) or abs(value) > MAX_SCENARIO_SECONDS:
                return f'alert {item.ref}: {name} {value!r} is not a time NetBox can store'
        for name, limit in limits:
            text = getattr(item, name) or ''
            if len(text) > limit:
                return f'alert {item.ref}: {name} has {len(text)} characters, NetBox stores at most {limit}'
    return ''


def _one_line(error):
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


class _Rollback(Exception):
    """Raised to leave the replay transaction without keeping anything."""


class Command(BaseCommand):
    help = 'Replay a scenario file through NetBox: its map as real objects, its alerts as real events.'

    def add_arguments(self, parser):
        parser.add_argument('file', help='scenario YAML file')
        parser.add_argument('--json', action='store_true', help='print the full report as JSON')
        parser.add_argument('--commit', action='store_true', help='keep the created objects, events and incidents')
        parser.add_argument('--backend', choices=('auto', 'rust', 'python'), help='engine backend')

    def handle(self, *args, **options):
        try:
            scenario = load_scenario(options['file'])
        except CorrelationError as error:
            raise CommandError(str(error)) from None
        problem = _unreplayable(scenario)
        if problem:
            raise CommandError(f'{options["file"]}: {problem}')
        overrides = {
            f'BUSINESS_APP_{name.upper()}': getattr(scenario.settings, name)
            for name in scenario.settings.names()
            if name not in ('engine_backend', 'notification_webhooks', 'incident_notifications_enabled')
        }
        if options['backend']:
            overrides['BUSINESS_APP_ENGINE_BACKEND'] = options['backend']
        report = None
        try:
            with override_settings(**overrides), transaction.atomic():
                report = self._replay(scenario)
                if not options['commit']:
                    raise _Rollback
        except _Rollback:
            pass
        except MapImportError as error:
            raise CommandError(str(error)) from None
        except (DatabaseError, ValidationError, OverflowError, ValueError) as error:
            # Values the scenario format allows but NetBox cannot hold (names longer than its columns, say).
            raise CommandError(f'{options["file"]}: NetBox refused the scenario: {_one_line(error)}') from None
        finally:
            forget_map()
        self.stdout.write(json.dumps(report, indent=2, default=str) if options['json'] else render_table(report))
        comparison = report.get('comparison')
        if comparison is not None and not comparison['matched']:
            raise SystemExit(1)

    def _replay(self, scenario):
        objects = import_map(scenario)
        start = replay_start(scenario)
        create_maintenance(scenario, objects, start)
        forget_map()
        first_incident = (Incident.objects.order_by('-pk').values_list('pk', flat=True).first() or 0) + 1
        refs, event_refs = {}, {}
        for item in scenario.events:
            arrival = start + timedelta(seconds=item.t)
            with clock.replay_clock(arrival):
                event = self._deliver(item, objects, arrival, start + timedelta(seconds=item.event_time))
            event.refresh_from_db(fields=['occurrence'])
            key = (event.pk, event.occurrence)
            if event.occurrence and key not in refs:
                refs[key] = item.ref  # the notification that started this occurrence
            event_refs[item.ref] = key

        service_map = current_map()
        store = DjangoStore(service_map, scenario.settings)
        incidents = store._load(Incident.objects.filter(pk__gte=first_incident).order_by('pk'))
        report = build_report(service_map, incidents, refs, event_refs, offset=to_epoch(start))
        report['scenario'] = scenario.name
        report['backend'] = service_map.graph.backend
        report['path'] = 'netbox'
        if scenario.expected is not None:
            report['comparison'] = compare(report, scenario.expected)
        return report

    def _deliver(self, item, objects, arrival, event_time):
        source, _ = EventSource.objects.get_or_create(name=item.source)
        target = objects.get(item.object)
        fields = event_fields(item, arrival, event_time)
        # The object is part of the notification, as a receiver stores it: a newer one naming another object moves
        # the alert there (an older one does not, ``repeat_changes``).
        if target is not None:
            fields.update(
                content_type=ContentType.objects.get_for_model(target), object_id=target.pk, unmapped_label=''
            )
        else:
            fields.update(content_type=None, object_id=None, unmapped_label=item.object)
        existing = Event.objects.filter(event_source=source, dedup_id=item.dedup_id).first()
        if existing is not None:
            for name, value in repeat_changes(existing, fields).items():
                setattr(existing, name, value)
            existing.save()
            return existing
        return Event.objects.create(event_source=source, dedup_id=item.dedup_id, **fields)
