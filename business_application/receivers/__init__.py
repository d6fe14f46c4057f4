"""Native alert receivers: parsers from monitoring tools' webhook payloads to ``IncomingAlert``s.

Each module reads one tool's payload and raises ``PayloadError(path, reason)`` for one it cannot
read; ``mapping`` resolves alert labels to NetBox objects for a whole request at once. The REST
views are in ``business_application.api.receivers``; ``docs/receivers.md`` documents the payloads.
"""

from .common import MAX_BODY_BYTES, PayloadError

__all__ = ('MAX_BODY_BYTES', 'RECEIVERS', 'PayloadError')

#: The receivers by the name in their URL (``alerts/<name>/``).
RECEIVERS = ('alertmanager', 'grafana', 'pagerduty', 'generic')
