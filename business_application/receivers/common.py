"""What every receiver shares: reading a JSON body safely, typed field readers that say where a
payload is wrong, severities and statuses as monitoring tools spell them, and dedup hashes.

Pure Python: no Django, so the parsers can be tested without a database.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..correlation.scenario import SEVERITY_ALIASES
from ..correlation.timeparse import ahead_reason, parse_timestamp

__all__ = (
    'MAX_BODY_BYTES',
    'MAX_DEPTH',
    'MAX_SOURCE_LENGTH',
    'OBJECT_KINDS',
    'SEVERITIES',
    'Draft',
    'PayloadError',
    'dedup_text',
    'group_context',
    'items',
    'label_hash',
    'load_json',
    'message_of',
    'optional_text',
    'read_labels',
    'read_object',
    'severity_of',
    'source_name',
    'status_of',
    'timestamp',
)

#: The largest body a receiver reads (checked on Content-Length and on the bytes actually read).
MAX_BODY_BYTES = 1024 * 1024
#: How deeply JSON may nest: deeper documents are refused before anything walks them recursively.
MAX_DEPTH = 64
#: EventSource.name's length in the database.
MAX_SOURCE_LENGTH = 100
#: Event.dedup_id's length in the database.
MAX_DEDUP_LENGTH = 255

#: Severities as monitoring tools spell them (labels, PagerDuty, Checkmk, Zabbix, syslog), beyond the
#: scenario format's aliases. Unknown spellings in labels count as warning.
EXTRA_SEVERITIES = {
    'page': 'critical',
    'crit': 'critical',
    'fatal': 'critical',
    'emergency': 'critical',
    'emerg': 'critical',
    'alert': 'critical',
    'p1': 'critical',
    'sev1': 'critical',
    'err': 'high',
    'p2': 'high',
    'sev2': 'high',
    'warn': 'warning',
    'p3': 'warning',
    'sev3': 'warning',
    'informational': 'info',
    'notice': 'info',
    'debug': 'info',
    'p4': 'info',
    'p5': 'info',
    'sev4': 'info',
    'ok': 'info',
    'not classified': 'info',
}
SEVERITIES = {**EXTRA_SEVERITIES, **SEVERITY_ALIASES}
DEFAULT_SEVERITY = 'warning'

#: The object kinds an explicit reference (the generic receiver's ``object``) may use.
OBJECT_KINDS = {
    'device': 'device',
    'dcim.device': 'device',
    'vm': 'vm',
    'virtual_machine': 'vm',
    'virtualmachine': 'vm',
    'virtualization.virtualmachine': 'vm',
    'cluster': 'cluster',
    'virtualization.cluster': 'cluster',
    'service': 'service',
    'technical_service': 'service',
    'technicalservice': 'service',
    'business_application.technicalservice': 'service',
    'app': 'app',
    'business_application': 'app',
    'businessapplication': 'app',
    'business_application.businessapplication': 'app',
}
#: Alert statuses of the Alertmanager family: what ``firing`` and ``resolved`` become.
ALERT_STATUSES = {'firing': 'triggered', 'resolved': 'ok'}


class PayloadError(ValueError):
    """A payload the receiver cannot read: ``path`` says where (``alerts[1].startsAt``), ``reason`` why."""

    def __init__(self, path: str, reason: str):
        super().__init__(f'{path}: {reason}')
        self.path = path
        self.reason = reason


@dataclasses.dataclass
class Draft:
    """One alert as a parser read it, before its labels are mapped to a NetBox object.

    ``labels`` are what the mapper looks at (in the configured label order); ``target`` is an
    explicit object reference ``(kind, name_or_id)`` that wins over the labels; ``fallback_label``
    names the alert when nothing identifies its object (``alertname:DiskFull``).
    """

    source: str
    dedup_id: str
    message: str
    status: str
    criticallity: str
    raw: dict
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    target: tuple[str, Any] | None = None
    fallback_label: str = ''
    #: An already known target ``(content_type, object_id, unmapped_label)``: no mapping is done.
    preset: tuple | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    event_time: datetime | None = None


# Reading the body


def _no_constant(name: str) -> Any:
    raise ValueError(f'{name} is not a JSON number')


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f'the number {text[:40]} is too large')
    return value


def load_json(body: bytes) -> Any:
    """Parse a request body; raise PayloadError('$', why) for anything that is not storable JSON.

    NaN, Infinity and numbers that overflow are refused (PostgreSQL's jsonb cannot hold them),
    and so are documents nested deeper than MAX_DEPTH. NUL characters and lone surrogates, which
    PostgreSQL cannot store either, are escaped (``_clean_text``) so the payload is still kept.
    """
    if not body or not body.strip():
        raise PayloadError('$', 'the body is empty; send a JSON document')
    try:
        document = json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except RecursionError:
        raise PayloadError('$', f'JSON nested deeper than {MAX_DEPTH} levels') from None
    except UnicodeDecodeError as error:
        raise PayloadError('$', f'the body is not UTF-8 text ({error.reason} at byte {error.start})') from None
    except json.JSONDecodeError as error:
        raise PayloadError('$', f'not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})') from None
    except ValueError as error:
        raise PayloadError('$', f'not storable JSON: {error}') from None
    return _clean(document, 0)


#: What PostgreSQL cannot store (NUL, lone surrogates), and U+FFFD where it would read as one of our escapes.
UNSTORABLE = re.compile('[\x00\ud800-\udfff]|\ufffd(?=[0-9a-f]{4})')


def _escape(match: re.Match) -> str:
    return f'\ufffd{ord(match.group()):04x}'


def _clean_text(text: str) -> str:
    """Make text storable without ever making two texts one (fingerprints and dedup ids come from it).

    A NUL or a lone surrogate becomes U+FFFD followed by its code in four lower-case hex digits
    (``\\x00`` -> ``\\ufffd0000``, ``\\udc80`` -> ``\\ufffddc80``); a U+FFFD that the text itself already
    follows with four such digits is escaped the same way (``\\ufffdfffd``), so every escape reads back one way
    and distinct texts stay distinct. Text without these characters is returned unchanged.
    """
    if '\x00' not in text and '\ufffd' not in text:
        try:
            text.encode('utf-8')
        except UnicodeEncodeError:
            pass
        else:
            return text
    return UNSTORABLE.sub(_escape, text)


def _clean(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, list | dict):
        if depth >= MAX_DEPTH:
            raise PayloadError('$', f'JSON nested deeper than {MAX_DEPTH} levels')
        if isinstance(value, list):
            return [_clean(item, depth + 1) for item in value]
        return {_clean_text(key): _clean(item, depth + 1) for key, item in value.items()}
    return value


# Field readers: each names the path of what it reads in its error


def read_object(value: Any, path: str, *, required: bool = True) -> dict:
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(path, f'must be a JSON object, not {_kind(value)}')
    return value


def optional_text(value: Any, path: str, *, max_length: int | None = None) -> str:
    """A string (numbers are accepted and written out); '' when absent or null."""
    if value is None:
        return ''
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PayloadError(path, f'must be a string, not {_kind(value)}')
    text = value if isinstance(value, str) else _number_text(value)
    if max_length is not None and len(text) > max_length:
        raise PayloadError(path, f'is {len(text)} characters long; at most {max_length} are stored')
    return text.strip()


def read_labels(value: Any, path: str) -> dict[str, str]:
    """A label set: an object of scalar values (numbers and booleans written out, nulls dropped)."""
    labels = read_object(value, path, required=False)
    clean = {}
    for key, item in labels.items():
        if item is None:
            continue
        if isinstance(item, bool):
            clean[key] = 'true' if item else 'false'
        elif isinstance(item, str | int | float):
            clean[key] = item if isinstance(item, str) else _number_text(item)
        else:
            raise PayloadError(f'{path}.{key}', f'a label value must be a string, not {_kind(item)}')
    return clean


def timestamp(value: Any, path: str) -> datetime | None:
    """An ISO 8601 timestamp (any fraction, Z or offset), epoch seconds, '' or Go's zero time (None); one
    more than a day ahead of the clock is refused."""
    try:
        moment = parse_timestamp(value)
    except (ValueError, OverflowError, OSError) as error:
        raise PayloadError(
            path, str(error) if isinstance(error, ValueError) else f'{value!r} is out of range'
        ) from None
    reason = ahead_reason(moment, datetime.now(UTC))
    if reason is not None:
        raise PayloadError(path, reason)
    return moment


def severity_of(value: str | None, default: str = DEFAULT_SEVERITY) -> str:
    """critical/high/warning/info from a severity as monitoring tools spell it; unknown -> default."""
    if not value:
        return default
    return SEVERITIES.get(value.strip().lower(), default)


def status_of(value: Any, path: str, *, default: str | None = None) -> str:
    """``firing`` -> triggered, ``resolved`` -> ok (any case); absent -> default, else PayloadError."""
    if value is None or value == '':
        if default is None:
            raise PayloadError(path, 'is missing: give firing or resolved')
        return default
    if not isinstance(value, str) or value.strip().lower() not in ALERT_STATUSES:
        raise PayloadError(path, f'must be firing or resolved, not {_show(value)}')
    return ALERT_STATUSES[value.strip().lower()]


def message_of(labels: Mapping[str, str], annotations: Mapping[str, Any], default: str = '') -> str:
    """A one-line message: the alert's name and its summary (or title, description...)."""
    name = labels.get('alertname', '')
    text = ''
    for container, key in (
        (annotations, 'summary'),
        (annotations, 'title'),
        (labels, 'summary'),
        (annotations, 'description'),
        (annotations, 'message'),
        (labels, 'description'),
    ):
        candidate = container.get(key)
        if isinstance(candidate, str) and candidate.strip():
            text = candidate.strip()
            break
    if name and text and name not in text:
        return f'{name}: {text}'
    return text or name or default


def label_hash(labels: Mapping[str, str], *extra: str) -> str:
    """A stable id for an alert without one: a hash of its sorted labels (and any extra parts)."""
    material = json.dumps([sorted(labels.items()), list(extra)], ensure_ascii=False, separators=(',', ':'))
    return 'labels-' + hashlib.sha256(material.encode('utf-8')).hexdigest()[:32]


def source_name(value: Any, path: str) -> str:
    """An event source's name as given in a payload or query: non-empty, at most MAX_SOURCE_LENGTH."""
    name = optional_text(value, path)
    if not name:
        raise PayloadError(path, 'names no event source (empty)')
    if len(name) > MAX_SOURCE_LENGTH:
        raise PayloadError(path, f'an event source name has at most {MAX_SOURCE_LENGTH} characters, not {len(name)}')
    if any(ord(c) < 32 or ord(c) == 127 or c == '\ufffd' for c in name):
        raise PayloadError(path, 'an event source name cannot contain control characters')
    return name


def dedup_text(value: Any, path: str) -> str:
    text = optional_text(value, path)
    if len(text) > MAX_DEDUP_LENGTH:
        raise PayloadError(path, f'a dedup id has at most {MAX_DEDUP_LENGTH} characters, not {len(text)}')
    return text


def group_context(payload: Mapping[str, Any], keys: Iterable[str], limit: int = 8192) -> dict:
    """The notification's group fields worth keeping beside each alert's raw payload, bounded in size
    (a group of a thousand alerts must not store a thousand copies of something large)."""
    context = {key: payload[key] for key in keys if key in payload}
    if len(json.dumps(context, ensure_ascii=False)) > limit:
        context = {
            key: value
            for key, value in context.items()
            if not isinstance(value, dict | list) and len(str(value)) <= 1024
        }
    return context


def items(value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise PayloadError(path, f'must be a JSON array, not {_kind(value)}')
    return value


def _number_text(value: int | float) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def _kind(value: Any) -> str:
    if value is None:
        return 'null'
    if isinstance(value, bool):
        return 'a boolean'
    if isinstance(value, int | float):
        return 'a number'
    if isinstance(value, str):
        return 'a string'
    if isinstance(value, list):
        return 'an array'
    return 'an object'


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else _kind(value)
    return text if len(text) <= 60 else text[:57] + '...'


Resolver = Callable[[list[Draft]], list[Any]]
