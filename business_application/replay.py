"""Replay a scenario file through the correlation engine, without NetBox or a database.

    python -m business_application.replay FILE [--backend auto|rust|python] [--json] [--set NAME=VALUE ...]

Prints the incidents (a table, or JSON with --json) and, when the file has expectations, whether
the grouping matched and its pairwise precision and recall. Exit status: 0 on a match (or when
there is nothing to compare), 1 on a mismatch, 2 on bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

import yaml

from .correlation.errors import CorrelationError
from .correlation.replay import run_scenario
from .correlation.scenario import load_scenario


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs; values are read as YAML scalars, so 0.5, true and [a, b] all work."""
    overrides = {}
    for pair in pairs:
        name, sep, value = pair.partition('=')
        if not sep or not name.strip():
            raise ValueError(f'--set expects NAME=VALUE, got {pair!r}')
        name = name.strip().lower().removeprefix('business_app_')
        overrides[name] = yaml.safe_load(value)
    return overrides


def render_table(report: dict[str, Any]) -> str:
    lines = [f'scenario {report["scenario"]} (backend {report["backend"]})']
    for incident in report['incidents']:
        lines.append(
            f'  #{incident["id"]} [{incident["status"]}, {incident["severity"]}] {incident["title"]}'
            f'  root={incident["root_cause"]}'
        )
        for member in incident['details']:
            why = 'opened it' if member['opened'] else f'score {member["score"]} ({member["link"]})'
            path = f' via {" -> ".join(member["path"])}' if len(member['path']) > 1 else ''
            lines.append(f'      {member["ref"] or "-"}: {member["object"]} {why}{path}')
        blast = incident['blast_radius']
        if blast['down'] or blast['degraded']:
            lines.append(f'      blast radius: down {blast["down"]}, degraded {blast["degraded"]}')
    alone = [e['ref'] for e in report['events'] if e['incident'] is None]
    if alone:
        lines.append(f'  in no incident: {", ".join(alone)}')
    comparison = report.get('comparison')
    if comparison is not None:
        verdict = 'MATCH' if comparison['matched'] else 'MISMATCH'
        lines.append(
            f'  {verdict}: pair precision {comparison["pair_precision"]}, pair recall {comparison["pair_recall"]}'
        )
        for difference in comparison['differences']:
            lines.append(f'    - {difference}')
    return '\n'.join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m business_application.replay', description=__doc__.split('\n')[1])
    parser.add_argument('file', help='scenario YAML file')
    parser.add_argument(
        '--backend',
        choices=('auto', 'rust', 'python'),
        default=None,
        help='engine backend (default: BUSINESS_APP_ENGINE_BACKEND, else auto)',
    )
    parser.add_argument('--json', action='store_true', help='print the full report as JSON')
    parser.add_argument(
        '--set',
        dest='overrides',
        action='append',
        default=[],
        metavar='NAME=VALUE',
        help='override a setting, e.g. --set correlation_threshold=0.5 (repeatable)',
    )
    args = parser.parse_args(argv)
    try:
        scenario = load_scenario(args.file)
        settings = scenario.settings
        if args.overrides:
            settings = settings.replace(**parse_overrides(args.overrides))
        report = run_scenario(scenario, backend=args.backend, settings=settings)
    except (CorrelationError, ValueError, TypeError) as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    report['settings'] = dataclasses.asdict(settings)
    print(json.dumps(report, indent=2, default=str) if args.json else render_table(report))
    comparison = report.get('comparison')
    return 0 if comparison is None or comparison['matched'] else 1


if __name__ == '__main__':
    sys.exit(main())
