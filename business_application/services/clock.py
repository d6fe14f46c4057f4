"""The time the correlation service calls "now": the real clock, or a scenario's replay clock."""

import contextlib
import contextvars
from datetime import datetime

from django.utils import timezone

__all__ = ('now', 'replay_clock')

_override: contextvars.ContextVar[datetime | None] = contextvars.ContextVar('business_application_now', default=None)


def now() -> datetime:
    return _override.get() or timezone.now()


@contextlib.contextmanager
def replay_clock(moment: datetime):
    """Make ``now()`` return ``moment`` inside the block (used to replay recorded streams through NetBox)."""
    token = _override.set(moment)
    try:
        yield
    finally:
        _override.reset(token)
