"""Print the intake figures of ``.work/bench-intake.json`` as tables: ``bench/test_product_intake.py`` with the ratio
of SnapshotWorker to RQ's default Worker measured in the same run, ``bench/test_large_incident.py`` with the ratios
of members kept between decisions to members read again and of the product's read of a stale incident to a plain ORM
read, and ``bench/test_live_incidents.py`` with the ratio of an alert decided against 1,000 live incidents to one
against 10.

    .work/venv/bin/python -m bench.report_intake [FILE]
"""

import json
import sys
from pathlib import Path

DEFAULT = Path(__file__).resolve().parents[1] / '.work' / 'bench-intake.json'
CLASSES = ('SnapshotWorker', 'rq-Worker')
ROWS = (
    ('sustained', 'alerts_per_second', 'sustained storm: notifications/s', True),
    ('sustained', 'alert_items_per_second', 'sustained storm: alert items/s', True),
    ('sustained', 'latency_p50_ms', 'sustained storm: latency p50 (ms)', False),
    ('sustained', 'latency_p99_ms', 'sustained storm: latency p99 (ms)', False),
    ('large_groups', 'alerts_per_second', 'storm in groups of 100: distinct alerts/s', True),
    ('large_groups', 'alert_items_per_second', 'storm in groups of 100: alert items/s', True),
    ('large_groups', 'latency_p50_ms', 'storm in groups of 100: latency p50 (ms)', False),
    ('large_groups', 'latency_p99_ms', 'storm in groups of 100: latency p99 (ms)', False),
    ('paced_100', 'seconds', '100 alerts/s: sent and decided in (s)', False),
    ('paced_100', 'latency_p50_ms', '100 alerts/s: latency p50 (ms)', False),
    ('paced_100', 'latency_p99_ms', '100 alerts/s: latency p99 (ms)', False),
)


def table(figures):
    lines = [
        '| measure | SnapshotWorker | RQ Worker | SnapshotWorker better by |',
        '|---|---|---|---|',
    ]
    for test, key, label, higher_is_better in ROWS:
        values = [figures.get(f'{test}/{name}', {}).get(key) for name in CLASSES]
        if None in values:
            continue
        ours, theirs = values
        better = (ours / theirs if higher_is_better else theirs / ours) if ours and theirs else float('nan')
        lines.append(f'| {label} | {ours} | {theirs} | {better:.1f}x |')
    return '\n'.join(lines)


def incident_read_table(figures):
    """An incident that another worker wrote last, read again: the product's read against a plain ORM read."""
    return _pair_table(
        figures,
        'incident_read',
        'read_ms_median',
        ('product', 'orm'),
        '| members of the incident | product read (ms) | plain ORM read (ms) | product faster by |',
    )


def _pair_table(figures, prefix, field, pair, header):
    """A table of ``prefix/<size>/<each of pair>`` figures by size, with the second over the first."""
    sizes = sorted({int(key.split('/')[1]) for key in figures if key.startswith(f'{prefix}/')})
    lines = [header, '|---|---|---|---|'] if sizes else []
    for size in sizes:
        first, second = (figures.get(f'{prefix}/{size}/{name}', {}).get(field) for name in pair)
        ratio = f'{second / first:.1f}x' if first and second else 'n/a'
        lines.append(f'| {size:,} | {first} | {second} | {ratio} |')
    return '\n'.join(lines)


def large_incident_table(figures):
    """A 20-alert group joining an incident of each size: members kept between decisions, or read again."""
    table = _pair_table(
        figures,
        'large_incident',
        'group_seconds_median',
        ('kept', 'reread'),
        '| members of the incident | group of 20, members kept (s) | members read again (s) | kept faster by |',
    )
    if not table:
        return ''
    lines = [table]
    sizes = sorted({int(key.split('/')[1]) for key in figures if key.startswith('large_incident/')})
    first, last = sizes[0], sizes[-1]
    grown = [figures.get(f'large_incident/{size}/kept', {}).get('group_seconds_median') for size in (first, last)]
    if all(grown):
        lines.append(
            f'\nWith members kept, a group at {last:,} members costs {grown[1] / grown[0]:.1f}x one at {first:,}.'
        )
    return '\n'.join(lines)


def live_incidents_table(figures):
    """One new alert decided in the request against 10 and against 1,000 live incidents."""
    sizes = sorted({int(key.split('/')[1]) for key in figures if key.startswith('live_incidents/')})
    if not sizes:
        return ''
    lines = ['| live incidents | one new alert, decided in the request (s) |', '|---|---|']
    medians = {size: figures[f'live_incidents/{size}'].get('alert_seconds_median') for size in sizes}
    lines += [f'| {size:,} | {medians[size]} |' for size in sizes]
    first, last = sizes[0], sizes[-1]
    if len(sizes) > 1 and medians[first] and medians[last]:
        lines.append(
            f'\nAgainst {last:,} live incidents an alert costs {medians[last] / medians[first]:.2f}x'
            f' one against {first:,}.'
        )
    return '\n'.join(lines)


def main(argv):
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT
    if not path.exists():
        print(f'report_intake: {path} does not exist; run bench/test_product_intake.py first', file=sys.stderr)
        return 1
    figures = json.loads(path.read_text())
    print(table(figures))
    for extra in (large_incident_table(figures), incident_read_table(figures), live_incidents_table(figures)):
        if extra:
            print()
            print(extra)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
