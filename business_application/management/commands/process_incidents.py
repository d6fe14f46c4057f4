"""The guide's batch command: process unprocessed events, re-correlate, or archive old incidents.

    netbox process_incidents --mode=process --hours=24
    netbox process_incidents --event-id=123
    netbox process_incidents --mode=process --dry-run
    netbox process_incidents --mode=reprocess --hours=24 --force-correlate
    netbox process_incidents --mode=cleanup --hours=168

``--dry-run`` runs the very same work inside a transaction that is rolled back, so what it prints
is exactly what would happen. Exit status is non-zero when any event failed.
"""

import sys
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Exists, OuterRef

from business_application.choices import EventStatus
from business_application.models import Event, IncidentEvent
from business_application.services import clock
from business_application.services.automation import (
    archive_resolved,
    detach_for_recorrelation,
    point_to_successors,
    process_events,
    unprocessed_events,
)


class _DryRun(Exception):
    """Leaves the dry-run transaction without keeping anything."""


#: How the report names a decision's action where its own name says too little.
ACTION_WORDS = {'none': 'unchanged (nothing new to decide)'}


def _hours(hours):
    return '1 hour' if hours == 1 else f'{hours} hours'


class Command(BaseCommand):
    help = 'Correlate unprocessed events into incidents, re-correlate a time window, or archive resolved incidents.'

    def add_arguments(self, parser):
        parser.add_argument(
            '--mode',
            choices=('process', 'reprocess', 'cleanup'),
            default='process',
            help='process unprocessed events (default), reprocess a window, or archive (cleanup)',
        )
        parser.add_argument(
            '--hours',
            type=int,
            default=None,
            help='time window in hours (default 24; for cleanup, the age of resolution, default 168)',
        )
        parser.add_argument('--event-id', type=int, help='process this one event')
        parser.add_argument('--dry-run', action='store_true', help='show what would happen and change nothing')
        parser.add_argument(
            '--force-correlate',
            action='store_true',
            help='with reprocess: also re-decide events already in an incident',
        )

    def handle(self, *args, **options):
        hours = options['hours']
        if hours is not None and not 1 <= hours <= 24 * 365:
            raise CommandError(f'--hours must be between 1 and {24 * 365}, not {hours}')
        if options['force_correlate'] and options['mode'] != 'reprocess':
            raise CommandError('--force-correlate only applies to --mode=reprocess')
        if options['event_id'] is not None and options['mode'] == 'cleanup':
            raise CommandError('--event-id processes one event; it cannot be combined with --mode=cleanup')
        self.dry_run = options['dry_run']
        if options['event_id'] is not None:
            return self._run(self._one_event, options['event_id'])
        if options['mode'] == 'cleanup':
            return self._cleanup(hours or 168)
        if options['mode'] == 'reprocess':
            return self._run(self._reprocess, hours or 24, options['force_correlate'])
        return self._run(self._process, hours or 24)

    def _run(self, work, *args):
        summary = None
        try:
            with transaction.atomic():
                summary = work(*args)
                if self.dry_run:
                    raise _DryRun
        except _DryRun:
            self.stdout.write('Dry run: nothing was changed.')
        if summary is not None and summary.errors:
            raise CommandError(
                f'{len(summary.errors)} of {summary.total} events failed: '
                + '; '.join(f'event {e["event_id"]}: {e["error"]}' for e in summary.errors[:5])
            )

    def _one_event(self, event_id):
        if not Event.objects.filter(pk=event_id).exists():
            raise CommandError(f'no event with id {event_id}')
        summary = process_events([event_id])
        rows = IncidentEvent.objects.filter(event_id=event_id).select_related('incident').order_by('occurrence')
        verb = 'would be' if self.dry_run else 'is'
        for row in rows:
            self.stdout.write(
                f'Event {event_id} {verb} in incident #{row.incident_id} "{row.incident.title}" ({row.incident.status})'
            )
        if not rows:
            self.stdout.write(f'Event {event_id} {verb} in no incident.')
        self._report(summary)
        return summary

    def _process(self, hours):
        ids = list(unprocessed_events(hours).values_list('pk', flat=True))
        self.stdout.write(f'{len(ids)} unprocessed events in the last {_hours(hours)}.')
        summary = process_events(ids, progress=self._progress, at_arrival=True)
        self._report(summary)
        return summary

    def _reprocess(self, hours, force):
        since = clock.now() - timedelta(hours=hours)
        events = Event.objects.filter(status=EventStatus.TRIGGERED, last_seen_at__gte=since)
        if not force:
            in_incident = IncidentEvent.objects.filter(event=OuterRef('pk'), occurrence=OuterRef('occurrence'))
            events = events.exclude(Exists(in_incident))
        ids = list(events.order_by('occurrence_started_at', 'event_time', 'pk').values_list('pk', flat=True))
        closed = detach_for_recorrelation(ids)
        verb = 'would be' if self.dry_run else 'were'
        self.stdout.write(
            f'Re-correlating {len(ids)} triggered events from the last {_hours(hours)}'
            f'{" (including those already in incidents)" if force else ""}; '
            f'{len(closed)} automatic incidents left empty {verb} closed.'
        )
        summary = process_events(ids, progress=self._progress, at_arrival=True)
        point_to_successors(closed)
        self._report(summary)
        return summary

    def _cleanup(self, hours):
        ids = archive_resolved(hours, dry_run=self.dry_run)
        verb = 'Would archive' if self.dry_run else 'Archived'
        self.stdout.write(
            f'{verb} {len(ids)} automatic incidents resolved more than {_hours(hours)} ago'
            + (f': {", ".join(f"#{pk}" for pk in ids[:20])}{" ..." if len(ids) > 20 else ""}' if ids else '.')
        )

    def _progress(self, done, total):
        if not sys.stderr.isatty():
            return
        if total >= 50 and (done % max(1, total // 50) == 0 or done == total):
            width = 30
            filled = width * done // total
            sys.stderr.write(f'\r[{"#" * filled}{"." * (width - filled)}] {done}/{total}')
            if done == total:
                sys.stderr.write('\n')
            sys.stderr.flush()

    def _report(self, summary):
        actions = (
            ', '.join(
                f'{count} {ACTION_WORDS.get(action, action)}' for action, count in sorted(summary.actions.items())
            )
            or 'nothing'
        )
        prefix = 'Would process' if self.dry_run else 'Processed'
        self.stdout.write(f'{prefix} {summary.total - len(summary.errors)} of {summary.total} events: {actions}.')
