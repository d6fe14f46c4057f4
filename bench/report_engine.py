"""Prints the engine tables of bench/RESULTS.md from a pytest-benchmark JSON file.

Usage: python -m bench.report_engine .work/bench-engine.json

Each group's rows are shown with their median (and p50/p99 or decisions per second when the suite
recorded them) and the ratio to the compiled core's row of the same group, so the figures that
bench/RESULTS.md quotes can be checked against a new run.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def _impl(name: str) -> str:
    return name.split('[', 1)[1].rstrip(']') if '[' in name else name


def _reference(rows: list[dict]) -> dict:
    for row in rows:
        if _impl(row['name']).startswith('rust'):
            return row
    return rows[0]


def _format_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f'{seconds:.2f} s'
    if seconds >= 1e-3:
        return f'{seconds * 1e3:.2f} ms'
    return f'{seconds * 1e6:.1f} us'


def main(path: str) -> None:
    with open(path) as f:
        data = json.load(f)
    groups: dict[str, list[dict]] = defaultdict(list)
    for bench in data['benchmarks']:
        if bench['group']:  # the engine's groups; the whole-product benches have their own report (report_intake)
            groups[bench['group']].append(bench)

    print(f'machine: {data["machine_info"].get("cpu", {}).get("brand_raw", "?")}, {data["datetime"]}')
    for group in sorted(groups):
        rows = groups[group]
        reference = _reference(rows)
        print(f'\n### {group}\n')
        print('| run | median | ratio to compiled | details |')
        print('|---|---|---|---|')
        for row in rows:
            median = row['stats']['median']
            ratio = median / reference['stats']['median']
            extra = ', '.join(f'{k} {v}' for k, v in sorted(row.get('extra_info', {}).items()))
            print(f'| {_impl(row["name"])} | {_format_seconds(median)} | {ratio:.1f}x | {extra} |')


if __name__ == '__main__':
    main(sys.argv[1])
