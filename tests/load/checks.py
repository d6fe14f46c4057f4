"""Waiting until every accepted alert is decided (sweeping if the queue lost jobs), and the checks of
a storm's report: nothing lost or duplicated, the same incidents as a one-by-one replay."""

from __future__ import annotations

import collections
import dataclasses
import threading
import time

from .generator import SOURCE


@dataclasses.dataclass
class StormReport:
    name: str
    server: str = ''
    senders: int = 0
    web_workers: int = 0
    rq_workers: int = 0
    notifications: int = 0  # distinct (alert, status) notifications in the plan
    deliveries: int = 0  # POSTs of group notifications (duplicates included)
    attempts: int = 0  # POST attempts (retries included)
    retries: int = 0
    sent: int = 0  # alert items in all deliveries
    accepted: int = 0  # alert items in accepted deliveries
    accepted_alerts: int = 0  # distinct alerts accepted
    stored: int = 0  # distinct alerts with an event row
    decided: int = 0  # stored alerts whose latest state was decided
    duplicate_events: int = 0
    duplicate_decisions: int = 0
    duplicate_incidents: int = 0
    lost: int = 0
    errors: int = 0
    swept: int = 0
    worker_restarts: int = 0
    answers: dict = dataclasses.field(default_factory=dict)
    incidents: int = 0
    replay_incidents: int = 0
    matches_replay: bool = False
    replay_differences: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    alerts_per_second: float = 0.0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    health: dict = dataclasses.field(default_factory=dict)
    fault: str = ''
    notes: list = dataclasses.field(default_factory=list)

    def problems(self):
        found = []
        if self.lost:
            found.append(f'{self.lost} accepted alerts lost (not stored, or not decided)')
        for name in ('duplicate_events', 'duplicate_decisions', 'duplicate_incidents', 'errors'):
            if getattr(self, name):
                found.append(f'{name}: {getattr(self, name)}')
        if not self.matches_replay:
            found.append(f'incidents differ from the one-by-one replay: {self.replay_differences[:5]}')
        return found


class DecisionWatch:
    """Polls the database for alerts whose latest state was decided, to time alert-to-incident latency."""

    def __init__(self, interval=0.2):
        self.interval = interval
        self.first_decided: dict[tuple[str, str], float] = {}
        self._running = False
        self._thread = None

    def __enter__(self):
        self._running = True
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._running = False
        self._thread.join(timeout=10)

    def _loop(self):
        from django.db import connection
        from django.db.models import F

        from business_application.models import Event

        try:
            while self._running:
                try:
                    rows = Event.objects.filter(processed_status=F('status')).values_list('dedup_id', 'status')
                    now = time.monotonic()
                    for dedup_id, status in rows:
                        key = (dedup_id, 'firing' if status == 'triggered' else 'resolved')
                        self.first_decided.setdefault(key, now)
                except Exception:  # noqa: BLE001 - a restarted database; try again
                    connection.close()
                time.sleep(self.interval)
        finally:
            connection.close()


def wait_until_decided(expected, timeout=600, sweep_after=20.0):
    """Wait until every expected (fingerprint, status) is stored and decided and the queue is empty.

    When the queue is empty but alerts stay undecided (a job lost with Redis, or a worker killed
    mid-job), run the periodic sweep as its schedule would: returns how many events it swept.
    """
    import django_rq
    from django.db import connection

    swept = 0
    deadline = time.monotonic() + timeout
    idle_since = None
    while time.monotonic() < deadline:
        try:
            missing = _undecided(expected)
            queue = django_rq.get_queue('default')
            busy = queue.count + queue.started_job_registry.count
        except Exception:  # noqa: BLE001 - a service restarting
            connection.close()
            time.sleep(1)
            continue
        if not missing and not busy:
            return swept
        if missing and not busy:
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since > sweep_after:
                swept += _sweep()
                idle_since = None
        else:
            idle_since = None
        time.sleep(0.5)
    return swept


def _undecided(expected):
    from django.db.models import F

    from business_application.models import Event

    decided = set(
        Event.objects.filter(event_source__name=SOURCE, processed_status=F('status')).values_list('dedup_id', 'status')
    )
    final = {}
    for fingerprint, status in expected:
        if final.get(fingerprint) != 'ok':
            final[fingerprint] = 'triggered' if status == 'firing' else 'ok'
    return set(final.items()) - decided


def _sweep():
    """SweepUnprocessedEventsJob run now, as a NetBox job, instead of at its next five-minute tick."""
    from business_application.jobs import SweepUnprocessedEventsJob
    from business_application.services.automation import unprocessed_events

    count = unprocessed_events(hours=48).count()
    if count:
        SweepUnprocessedEventsJob.enqueue(immediate=True)
    return count


def check(report, plan_, senders):
    """Fill the report's counts from the database and compare with the in-memory replay."""
    from django.db.models import Count

    from business_application.correlation.replay import replay
    from business_application.correlation.scenario import parse_scenario
    from business_application.models import Event, Incident, IncidentEvent

    accepted = {fingerprint for fingerprint, _ in senders.accepted_at}
    final = {}
    for (fingerprint, status), _ in sorted(senders.accepted_at.items(), key=lambda item: item[0][1] == 'resolved'):
        final[fingerprint] = 'ok' if status == 'resolved' else 'triggered'
    events = list(
        Event.objects.filter(event_source__name=SOURCE).values(
            'pk', 'dedup_id', 'status', 'processed_status', 'occurrence'
        )
    )
    by_identity = collections.Counter(row['dedup_id'] for row in events)
    report.duplicate_events = sum(count - 1 for count in by_identity.values() if count > 1)
    stored = {row['dedup_id']: row for row in events}
    report.accepted_alerts = len(accepted)
    report.stored = len(accepted & set(stored))
    decided = {
        pk
        for pk, row in stored.items()
        if row['processed_status'] == row['status'] and row['status'] == final.get(pk, row['status'])
    }
    report.decided = len(accepted & decided)
    report.lost = len(accepted - decided)
    memberships = IncidentEvent.objects.values('event_id', 'occurrence').annotate(n=Count('pk')).filter(n__gt=1)
    report.duplicate_decisions = sum(row['n'] - 1 for row in memberships)
    # Every alert fired once in this storm: a second occurrence would be a second decision to open.
    report.duplicate_decisions += sum(1 for row in events if row['occurrence'] > 1)

    got = []
    names = {row['pk']: row['dedup_id'] for row in events}
    members = collections.defaultdict(set)
    for incident_id, event_id in IncidentEvent.objects.filter(incident__merged_into__isnull=True).values_list(
        'incident_id', 'event_id'
    ):
        members[incident_id].add(names.get(event_id, event_id))
    statuses = dict(Incident.objects.filter(pk__in=members).values_list('pk', 'status'))
    for incident_id, group in members.items():
        got.append((tuple(sorted(group)), 'resolved' if statuses[incident_id] in ('resolved', 'closed') else 'open'))
    report.incidents = len(got)
    report.duplicate_incidents = len(got) - len(set(got))

    run = replay(parse_scenario(plan_.scenario_yaml(), source='<storm>'))
    want = []
    for incident in run.store.incidents.values():
        if incident.status == 'merged':
            continue
        group = tuple(sorted(run.refs[(m.alert, m.occurrence)] for m in incident.members))
        want.append((group, 'open' if incident.status == 'open' else 'resolved'))
    report.replay_incidents = len(want)
    only_here = sorted(set(got) - set(want))
    only_replay = sorted(set(want) - set(got))
    report.matches_replay = not only_here and not only_replay
    report.replay_differences = [
        *({'netbox_only': list(g), 'status': s} for g, s in only_here[:3]),
        *({'replay_only': list(g), 'status': s} for g, s in only_replay[:3]),
    ]


def percentile(values, fraction):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]
