"""Timestamps as monitoring tools really send them.

Alertmanager sends Go's zero time for "no end", Grafana and others send any number of fraction
digits, some send ``Z`` and some a numeric offset, and some send an empty string. All of them
parse here, to an aware UTC datetime or ``None`` for "unknown".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

__all__ = ('MAX_AHEAD', 'ahead_reason', 'parse_timestamp')

#: How far past the server's clock a notification's own timestamp may lie. A later one would freeze its
#: alert (every real notification after it counts as older), so intake refuses it with a 400.
MAX_AHEAD = timedelta(days=1)


def ahead_reason(moment: datetime | None, now: datetime) -> str | None:
    """Why ``moment`` cannot be taken (more than MAX_AHEAD after ``now``), or None when it can."""
    if moment is None or moment <= now + MAX_AHEAD:
        return None
    return f"{moment.isoformat()} is more than {MAX_AHEAD.days} day ahead of this server's clock ({now.isoformat()})"


_PATTERN = re.compile(
    r'^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?:\.(?P<fraction>\d+))?'
    r'\s*(?P<zone>Z|z|[+-]\d{2}(?::?\d{2})?)?$'
)


def parse_timestamp(value: object) -> datetime | None:
    """Parse an ISO 8601 timestamp or epoch seconds; raise ValueError with the value when it cannot."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f'{value!r} is not a timestamp')
    if isinstance(value, int | float):
        if value <= 0:
            return None
        return datetime.fromtimestamp(float(value), tz=UTC)
    if not isinstance(value, str):
        raise ValueError(f'{value!r} is not a timestamp')
    text = value.strip()
    if not text:
        return None
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f'{value!r} is not an ISO 8601 timestamp')
    clock = match['time'] if match['time'].count(':') == 2 else match['time'] + ':00'
    fraction = (match['fraction'] or '0')[:6].ljust(6, '0')
    try:
        moment = datetime.fromisoformat(f'{match["date"]}T{clock}.{fraction}')
    except ValueError as error:
        raise ValueError(f'{value!r} is not a valid timestamp: {error}') from None
    moment = moment.replace(tzinfo=_zone(match['zone'], value))
    if moment.year <= 1:
        return None  # Go's zero time: the sender does not know
    return moment.astimezone(UTC)


def _zone(zone: str | None, value: str) -> timezone:
    if zone is None or zone in ('Z', 'z'):
        return UTC
    sign = -1 if zone[0] == '-' else 1
    digits = zone[1:].replace(':', '')
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f'{value!r} has an impossible UTC offset')
    return timezone(sign * timedelta(hours=hours, minutes=minutes))
