"""Reads scenario files (docs in ../shared/spec/scenario-format.md) into plain, validated objects.

Anything malformed raises ScenarioError naming the file, the path inside it and the reason;
unknown keys are ignored, as the format allows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from .errors import ScenarioError
from .kinds import severity_rank
from .settings import Settings
from .timeparse import parse_timestamp

__all__ = ('SEVERITY_ALIASES', 'STATUS_ALIASES', 'Scenario', 'ScenarioEvent', 'load_scenario', 'parse_scenario')

SEVERITY_ALIASES = {
    'critical': 'critical',
    'disaster': 'critical',
    'high': 'high',
    'error': 'high',
    'major': 'high',
    'warning': 'warning',
    'medium': 'warning',
    'average': 'warning',
    'minor': 'warning',
    'info': 'info',
    'low': 'info',
    'none': 'info',
    'information': 'info',
}
STATUS_ALIASES = {
    'triggered': 'triggered',
    'firing': 'triggered',
    'ok': 'ok',
    'resolved': 'ok',
    'suppressed': 'suppressed',
}
OBJECT_KINDS = ('device', 'vm', 'cluster', 'service', 'app')


@dataclasses.dataclass
class ScenarioEvent:
    ref: str
    t: float
    object_kind: str
    object_name: str
    severity: str
    status: str
    dedup_id: str
    message: str
    source: str
    event_time: float
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    @property
    def object(self) -> str:
        return f'{self.object_kind}:{self.object_name}'

    @property
    def severity_rank(self) -> int:
        return severity_rank(self.severity)


@dataclasses.dataclass
class Scenario:
    name: str
    description: str
    settings: Settings
    services: list[dict[str, str]]
    applications: list[dict[str, Any]]
    dependencies: list[dict[str, Any]]
    clusters: list[dict[str, Any]]
    devices: list[dict[str, Any]]
    vms: list[dict[str, Any]]
    maintenance: list[dict[str, Any]]
    events: list[ScenarioEvent]
    expected: dict[str, Any] | None
    path: str = '<scenario>'


class _Reader:
    """Walks the parsed YAML, keeping the path for error messages."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, reason: str) -> ScenarioError:
        return ScenarioError(f'{self.source}: {where}: {reason}')

    def mapping(self, value: Any, where: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(where, f'expected a mapping, got {type(value).__name__}')
        return value

    def seq(self, value: Any, where: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(where, f'expected a list, got {type(value).__name__}')
        return value

    def text(self, value: Any, where: str, required: bool = True) -> str:
        if value is None and not required:
            return ''
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(where, 'expected text')
        text = str(value).strip()
        if required and not text:
            raise self.fail(where, 'must not be empty')
        return text

    def number(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(where, f'expected a number of seconds, got {value!r}')
        return float(value)

    def names(self, value: Any, where: str) -> list[str]:
        return [self.text(item, f'{where}[{i}]') for i, item in enumerate(self.seq(value, where))]


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario file."""
    path = Path(path)
    try:
        text = path.read_text(encoding='utf-8')
    except OSError as error:
        raise ScenarioError(f'{path}: cannot be read: {error.strerror}') from None
    return parse_scenario(text, str(path))


def parse_scenario(text: str, source: str = '<scenario>') -> Scenario:
    reader = _Reader(source)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ScenarioError(f'{source}: not valid YAML: {error}') from None
    top = reader.mapping(data, 'top level')
    graph = reader.mapping(top.get('graph') or {}, 'graph')
    scenario = Scenario(
        name=reader.text(top.get('name', Path(source).stem), 'name'),
        description=reader.text(top.get('description'), 'description', required=False),
        settings=_settings(reader, top),
        services=_services(reader, graph),
        applications=[],
        dependencies=[],
        clusters=[],
        devices=[],
        vms=[],
        maintenance=[],
        events=[],
        expected=None,
        path=source,
    )
    _graph(reader, graph, scenario)
    scenario.events = _events(reader, top.get('events'))
    scenario.expected = _expected(reader, top.get('expected'), {e.ref for e in scenario.events})
    return scenario


def _settings(reader: _Reader, top: Mapping[str, Any]) -> Settings:
    values = dict(reader.mapping(top.get('settings') or {}, 'settings'))
    assumes = reader.mapping(top.get('assumes') or {}, 'assumes')
    if 'reopen_window_s' in assumes and 'reopen_window_minutes' not in values:
        values['reopen_window_minutes'] = reader.number(assumes['reopen_window_s'], 'assumes.reopen_window_s') / 60
    try:
        return Settings.from_mapping(values, label=lambda name: f'settings.{name}')
    except ValueError as error:
        raise ScenarioError(f'{reader.source}: {error}') from None


def _services(reader: _Reader, graph: Mapping[str, Any]) -> list[dict[str, str]]:
    services = []
    for i, item in enumerate(reader.seq(graph.get('services'), 'graph.services')):
        where = f'graph.services[{i}]'
        if isinstance(item, Mapping):
            kind = reader.text(item.get('type', 'technical'), f'{where}.type')
            if kind not in ('technical', 'logical'):
                raise reader.fail(f'{where}.type', f'must be technical or logical, not {kind!r}')
            services.append({'name': reader.text(item.get('name'), f'{where}.name'), 'type': kind})
        else:
            services.append({'name': reader.text(item, where), 'type': 'technical'})
    seen = set()
    for i, service in enumerate(services):
        if service['name'] in seen:
            raise reader.fail(f'graph.services[{i}]', f'service {service["name"]!r} is listed twice')
        seen.add(service['name'])
    return services


def _graph(reader: _Reader, graph: Mapping[str, Any], scenario: Scenario) -> None:
    services = {s['name'] for s in scenario.services}

    def known(names: list[str], where: str) -> list[str]:
        for i, name in enumerate(names):
            if name not in services:
                raise reader.fail(f'{where}[{i}]', f'unknown service {name!r}')
        return names

    for i, item in enumerate(reader.seq(graph.get('business_applications'), 'graph.business_applications')):
        where = f'graph.business_applications[{i}]'
        item = reader.mapping(item, where)
        appcode = reader.text(item.get('appcode', item.get('name')), f'{where}.appcode')
        scenario.applications.append(
            {
                'appcode': appcode,
                'name': reader.text(item.get('name', appcode), f'{where}.name'),
                'services': known(reader.names(item.get('services'), f'{where}.services'), f'{where}.services'),
            }
        )
    for i, item in enumerate(reader.seq(graph.get('dependencies'), 'graph.dependencies')):
        where = f'graph.dependencies[{i}]'
        item = reader.mapping(item, where)
        kind = reader.text(item.get('type', 'normal'), f'{where}.type')
        if kind not in ('normal', 'redundancy'):
            raise reader.fail(f'{where}.type', f'must be normal or redundancy, not {kind!r}')
        dependency = {
            'service': reader.text(item.get('service'), f'{where}.service'),
            'depends_on': reader.text(item.get('depends_on'), f'{where}.depends_on'),
            'type': kind,
            'name': reader.text(item.get('name'), f'{where}.name', required=False),
        }
        known([dependency['service']], f'{where}.service')
        known([dependency['depends_on']], f'{where}.depends_on')
        scenario.dependencies.append(dependency)
    for i, item in enumerate(reader.seq(graph.get('clusters'), 'graph.clusters')):
        where = f'graph.clusters[{i}]'
        item = reader.mapping(item, where)
        scenario.clusters.append(
            {
                'name': reader.text(item.get('name'), f'{where}.name'),
                'services': known(reader.names(item.get('services'), f'{where}.services'), f'{where}.services'),
            }
        )
    clusters = {c['name'] for c in scenario.clusters}
    for i, item in enumerate(reader.seq(graph.get('devices'), 'graph.devices')):
        where = f'graph.devices[{i}]'
        item = reader.mapping(item, where)
        device = {
            'name': reader.text(item.get('name'), f'{where}.name'),
            'role': reader.text(item.get('role', 'server'), f'{where}.role'),
            'services': known(reader.names(item.get('services'), f'{where}.services'), f'{where}.services'),
            'cluster': reader.text(item.get('cluster'), f'{where}.cluster', required=False),
            'links': reader.names(item.get('links'), f'{where}.links'),
            'primary_ip': reader.text(item.get('primary_ip'), f'{where}.primary_ip', required=False),
        }
        if device['cluster'] and device['cluster'] not in clusters:
            raise reader.fail(f'{where}.cluster', f'unknown cluster {device["cluster"]!r}')
        scenario.devices.append(device)
    devices = {d['name'] for d in scenario.devices}
    for device_index, device in enumerate(scenario.devices):
        for i, link in enumerate(device['links']):
            if link not in devices:
                raise reader.fail(f'graph.devices[{device_index}].links[{i}]', f'unknown device {link!r}')
    for i, item in enumerate(reader.seq(graph.get('vms'), 'graph.vms')):
        where = f'graph.vms[{i}]'
        item = reader.mapping(item, where)
        vm = {
            'name': reader.text(item.get('name'), f'{where}.name'),
            'cluster': reader.text(item.get('cluster'), f'{where}.cluster', required=False),
            'host': reader.text(item.get('host'), f'{where}.host', required=False),
            'services': known(reader.names(item.get('services'), f'{where}.services'), f'{where}.services'),
            'primary_ip': reader.text(item.get('primary_ip'), f'{where}.primary_ip', required=False),
        }
        if vm['cluster'] and vm['cluster'] not in clusters:
            raise reader.fail(f'{where}.cluster', f'unknown cluster {vm["cluster"]!r}')
        if vm['host'] and vm['host'] not in devices:
            raise reader.fail(f'{where}.host', f'unknown device {vm["host"]!r}')
        scenario.vms.append(vm)
    for i, item in enumerate(reader.seq(graph.get('maintenance'), 'graph.maintenance')):
        where = f'graph.maintenance[{i}]'
        item = reader.mapping(item, where)
        window = {
            'object': _object(reader, item.get('object'), f'{where}.object'),
            'start': reader.number(item.get('start'), f'{where}.start'),
            'end': reader.number(item.get('end'), f'{where}.end'),
        }
        if window['end'] < window['start']:
            raise reader.fail(f'{where}.end', 'ends before it starts')
        scenario.maintenance.append(window)


def _object(reader: _Reader, value: Any, where: str) -> tuple[str, str]:
    text = reader.text(value, where)
    kind, sep, name = text.partition(':')
    if not sep or kind not in OBJECT_KINDS or not name.strip():
        raise reader.fail(where, f'expected KIND:NAME with KIND one of {", ".join(OBJECT_KINDS)}, got {text!r}')
    return kind, name.strip()


def _events(reader: _Reader, value: Any) -> list[ScenarioEvent]:
    events = []
    refs = set()
    for i, item in enumerate(reader.seq(value, 'events')):
        where = f'events[{i}]'
        item = reader.mapping(item, where)
        ref = reader.text(item.get('ref', f'n{i + 1}'), f'{where}.ref')
        if ref in refs:
            raise reader.fail(f'{where}.ref', f'ref {ref!r} is used twice')
        refs.add(ref)
        severity = reader.text(item.get('severity'), f'{where}.severity').lower()
        if severity not in SEVERITY_ALIASES:
            raise reader.fail(f'{where}.severity', f'unknown severity {severity!r}')
        status = reader.text(item.get('status'), f'{where}.status').lower()
        if status not in STATUS_ALIASES:
            raise reader.fail(f'{where}.status', f'unknown status {status!r}')
        t = reader.number(item.get('t'), f'{where}.t')
        offset = item.get('event_time_offset')
        kind, name = _object(reader, item.get('object'), f'{where}.object')
        stamps = {}
        for key in ('starts_at', 'ends_at'):
            try:
                stamps[key] = parse_timestamp(item.get(key))
            except ValueError as error:
                raise reader.fail(f'{where}.{key}', str(error)) from None
        events.append(
            ScenarioEvent(
                ref=ref,
                t=t,
                object_kind=kind,
                object_name=name,
                severity=SEVERITY_ALIASES[severity],
                status=STATUS_ALIASES[status],
                dedup_id=reader.text(item.get('dedup_id', ref), f'{where}.dedup_id'),
                message=reader.text(item.get('message', ''), f'{where}.message', required=False),
                source=reader.text(item.get('source', 'scenario'), f'{where}.source'),
                event_time=t if offset is None else reader.number(offset, f'{where}.event_time_offset'),
                **stamps,
            )
        )
    return events


def _expected(reader: _Reader, value: Any, refs: set[str]) -> dict[str, Any] | None:
    if value is None:
        return None
    expected = reader.mapping(value, 'expected')
    incidents = []
    for i, item in enumerate(reader.seq(expected.get('incidents'), 'expected.incidents')):
        where = f'expected.incidents[{i}]'
        item = dict(reader.mapping(item, where))
        members = reader.names(item.get('members'), f'{where}.members')
        for j, ref in enumerate(members):
            if ref not in refs:
                raise reader.fail(f'{where}.members[{j}]', f'no event has ref {ref!r}')
        item['members'] = members
        if 'status' in item and item['status'] not in ('open', 'resolved'):
            raise reader.fail(f'{where}.status', 'must be open or resolved')
        incidents.append(item)
    no_incident = reader.names(expected.get('no_incident'), 'expected.no_incident')
    for j, ref in enumerate(no_incident):
        if ref not in refs:
            raise reader.fail(f'expected.no_incident[{j}]', f'no event has ref {ref!r}')
    return {'incidents': incidents, 'no_incident': no_incident}
