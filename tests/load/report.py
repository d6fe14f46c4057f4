"""Writes RELIABILITY.md from the figures the storm tests appended (one JSON line per test).

    python -m tests.load.report FIGURES.jsonl RELIABILITY.md

The section "## Bad input and permissions" of an existing RELIABILITY.md is kept as it is: the
fuzzing and permission tests write that part.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

KEPT_SECTION = '## Bad input and permissions'

WHAT = {
    'storm': 'No fault: the storm alone, with duplicate deliveries (two Alertmanagers, groups re-sent as '
    'alerts join them) and retries.',
    'worker SIGKILL': 'One RQ worker (and the job it was running) killed with SIGKILL at 30% of the firing '
    'deliveries; a supervisor starts another, as systemd would.',
    'PostgreSQL restart': "This checkout's PostgreSQL restarted (fast shutdown: every connection cut) at 30% of "
    'the firing deliveries.',
    'Redis restart': "This checkout's Redis stopped for 2 s and started again at 30% of the firing deliveries. "
    'It keeps nothing on disk, so every queued decision job is lost with it.',
    'webhook fail': 'The notification webhook (a server the test runs on 127.0.0.1) answers 500 from 30% of the '
    'firing deliveries on.',
    'webhook hang': 'The notification webhook holds every request for 10 s (longer than the 5 s timeout) from 30% '
    'of the firing deliveries on.',
}

COLUMNS = (
    ('test', 'name'),
    ('alerts', 'accepted_alerts'),
    ('notifications', 'notifications'),
    ('deliveries', 'deliveries'),
    ('retries', 'retries'),
    ('sent', 'sent'),
    ('accepted', 'accepted'),
    ('stored', 'stored'),
    ('decided', 'decided'),
    ('duplicates', None),
    ('lost', 'lost'),
    ('errors', 'errors'),
    ('swept', 'swept'),
    ('incidents', 'incidents'),
    ('= replay', None),
    ('seconds', 'seconds'),
    ('alerts/s', 'alerts_per_second'),
    ('latency p50 / p99', None),
)


def commit():
    """The commit the storms ran on: ``NBA_STORM_COMMIT``, or this checkout's HEAD."""
    if os.environ.get('NBA_STORM_COMMIT'):
        return os.environ['NBA_STORM_COMMIT']
    try:
        head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return 'unknown'
    return head.stdout.strip()


def cell(report, key, column):
    if column == 'duplicates':
        return str(report['duplicate_events'] + report['duplicate_decisions'] + report['duplicate_incidents'])
    if column == '= replay':
        return 'yes' if report['matches_replay'] else 'NO'
    if column == 'latency p50 / p99':
        p50, p99 = report['latency_p50_ms'], report['latency_p99_ms']
        return '-' if p50 is None else f'{p50 / 1000:.1f} s / {p99 / 1000:.1f} s'
    return str(report[key])


def health_line(report):
    health = report['health']
    parts = []
    for kind in ('decisions', 'notifications'):
        found = health.get(kind) or {}
        if 'error' in found:
            parts.append(f'{kind}: {found["error"]}')
        elif found.get('failing'):
            parts.append(f'{kind}: {found["failed"]} failed, {found["retrying"]} retrying ({found["last_error"]})')
    sweep = health.get('last_sweep')
    if sweep and sweep.get('swept'):
        parts.append(f'last sweep picked up {sweep["swept"]} events')
    parts.append(f'{health.get("unprocessed_events", "?")} events unprocessed')
    return '; '.join(parts)


def render(reports, kept):
    latest = {}
    for report in reports:
        latest[report['name']] = report  # a re-run of a test replaces its figures
    reports = list(latest.values())
    lines = [
        '# Reliability',
        '',
        'What the product did under alert storms and faults, measured by the tests in `tests/load/` and',
        'written here by `make reliability` (the figures below are from its last run). `make test` runs',
        'the same tests with a small storm (`NBA_STORM_ALERTS`, 300 by default).',
        '',
        '## How the storms run',
        '',
        '`tests/load/storm.py` loads a map into the test database: pods of 20 servers cabled to a switch,',
        'one pod of a quarter of the servers behind a core switch, and servers on their own. Every server',
        'raises four alerts (HostDown, ServiceErrors, HighLatency, DiskPressure), every switch one; the',
        'alerts of half the pods resolve afterwards. Alertmanager groups them by pod and alert name and',
        'sends a group again as alerts join it (three waves), and two Alertmanagers deliver every',
        'notification: each alert arrives about six times. Eight concurrent senders post the groups to',
        "the Alertmanager receiver of a NetBox running under gunicorn, with this checkout's PostgreSQL and",
        'Redis, and asynchronous processing by `netbox rqworker` processes. Senders retry 5xx answers and',
        'broken connections with backoff, as Alertmanager does. The test then waits until every accepted',
        'alert is decided; when the queue is empty but alerts stay undecided (jobs lost), it runs the',
        'periodic sweep (`SweepUnprocessedEventsJob`) at once instead of waiting for its five-minute tick.',
        '',
        'Checks, after recovery: every accepted alert is stored once (no second event row for one source',
        'and fingerprint) and decided once (its latest state processed, one membership per occurrence, no',
        'second occurrence), nothing accepted is lost, no two incidents hold the same alerts, and the',
        'incidents (member sets and status) are those of a one-by-one replay of the same notifications',
        'through the correlator in memory (`correlation/replay.py`). The health check',
        '(`check_incident_automation_health`) must report the fault where one leaves a trace.',
        '',
        'Columns: *alerts* distinct alerts accepted; *notifications* distinct (alert, state) notifications;',
        '*deliveries* group POSTs (duplicates included); *sent* / *accepted* alert items in all / in accepted',
        'deliveries; *stored* / *decided* distinct accepted alerts with an event row / whose latest state was',
        'decided; *duplicates* duplicate event rows + duplicate decisions + duplicate incidents; *lost*',
        'accepted but not stored or not decided; *errors* deliveries refused for good; *swept* events the',
        'sweep decided; *= replay* incidents equal to the replay; *alerts/s* notifications per second from',
        'the first delivery to the last decision; *latency* from the accepting answer to the decision,',
        'polled every 0.2 s.',
        '',
        '## Figures',
        '',
    ]
    if reports:
        first = reports[0]
        lines += [
            f'Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node() or "this machine"} '
            f'({platform.machine()}, Python {platform.python_version()}, commit `{commit()}`): '
            f'NetBox under {first["server"]} with '
            f'{first["web_workers"]} processes, {first["rq_workers"]} RQ workers, {first["senders"]} senders.',
            '',
            f'Storm size: {max(r["notifications"] for r in reports)} notifications of '
            f'{max(r["accepted_alerts"] for r in reports)} alerts per test (`STORM_ALERTS`; TARGETS.md asks for '
            '10,000).',
            '',
            '| ' + ' | '.join(name for name, _ in COLUMNS) + ' |',
            '|' + '---|' * len(COLUMNS),
        ]
        for report in reports:
            lines.append('| ' + ' | '.join(cell(report, key, name) for name, key in COLUMNS) + ' |')
        lines += ['', '## Each test', '']
        for report in reports:
            lines += [
                f'### {report["name"]}',
                '',
                WHAT.get(report['name'], report.get('fault') or ''),
                '',
                f'- Fault as run: {report["fault"] or "none"}.',
                f'- Sent {report["sent"]} alert items in {report["deliveries"]} deliveries '
                f'({report["attempts"]} attempts, {report["retries"]} retries; answers {report["answers"]}); '
                f'{report["accepted_alerts"]} alerts accepted, {report["stored"]} stored, {report["decided"]} decided, '
                f'{report["lost"]} lost, {report["errors"]} errors.',
                f'- Duplicates: {report["duplicate_events"]} event rows, {report["duplicate_decisions"]} decisions, '
                f'{report["duplicate_incidents"]} incidents. Incidents: {report["incidents"]} '
                f'(replay {report["replay_incidents"]}), equal to the replay: '
                f'{"yes" if report["matches_replay"] else "no " + json.dumps(report["replay_differences"])[:400]}.',
                f'- Worker restarts: {report["worker_restarts"]}; events swept: {report["swept"]}.',
                f'- Health check afterwards: {health_line(report)}.',
                *(f'- Note: {note}' for note in report.get('notes') or ()),
                '',
            ]
    else:
        lines += ['No figures yet: run `make reliability`.', '']
    lines += [kept.rstrip() if kept else f'{KEPT_SECTION}\n\nWritten by the fuzzing and permission tests.', '']
    return '\n'.join(lines)


def kept_section(path):
    if not path.exists():
        return ''
    text = path.read_text()
    start = text.find(KEPT_SECTION)
    if start < 0:
        return ''
    return text[start:]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    figures, target = Path(argv[0]), Path(argv[1])
    lines = figures.read_text().splitlines() if figures.exists() else []
    reports = [json.loads(line) for line in lines if line.strip()]
    target.write_text(render(reports, kept_section(target)))
    print(f'wrote {target} from {len(reports)} storm reports')
    return 0 if reports else 1


if __name__ == '__main__':
    sys.exit(main())
