"""Print the intake figures of ``.work/bench-intake.json`` (``bench/test_product_intake.py``) as a table, with the
ratio of SnapshotWorker to RQ's default Worker measured in the same run.

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


def main(argv):
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT
    if not path.exists():
        print(f'report_intake: {path} does not exist; run bench/test_product_intake.py first', file=sys.stderr)
        return 1
    print(table(json.loads(path.read_text())))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
