"""Webhook notifications of incidents (created, updated, resolved), in the guide's payload.

Decisions enqueue a job per webhook after their transaction commits; the job builds the payload
from the database when it runs and posts it with a short timeout, retried with backoff by RQ. A
slow or failing webhook therefore never blocks or fails event intake. Only the URLs an admin put
in ``BUSINESS_APP_NOTIFICATION_WEBHOOKS`` are ever called.
"""

import hashlib
import json
import logging
import urllib.error
import urllib.request
import uuid

from django.db import transaction

from .choices import IncidentStatusChoices
from .queues import get_queue
from .settings import get_settings

__all__ = ('ACTIONS', 'QUEUE', 'NotificationError', 'build_payload', 'notify', 'send_notification')

logger = logging.getLogger('business_application.notifications')

ACTIONS = ('created', 'updated', 'resolved')
#: NetBox's RQ queue of the notification jobs: the low one, so that a worker takes them only when no
#: decision waits, and a webhook that hangs holds up no decision queued behind it.
QUEUE = 'low'
TIMEOUT_SECONDS = 5
RETRY_INTERVALS = (10, 60, 300)
#: Repeated "updated" notifications of one incident within this many seconds are sent once.
UPDATE_DEBOUNCE_SECONDS = 10
#: How long a run's claim on sending a notification lasts: longer than building and posting it takes.
SENDING_SECONDS = 60
#: How long a sent notification is remembered: longer than a job can stay queued (``failure_ttl``).
SENT_SECONDS = 2 * 86400

#: Which lifecycle outcome becomes which notification.
OUTCOME_ACTIONS = {
    'opened': 'created',
    'joined': 'updated',
    'merged': 'updated',
    'reopened': 'updated',
    'resolved': 'resolved',
}


class NotificationError(Exception):
    """A webhook did not accept a notification; RQ retries the job."""


def notify(incident_id, action):
    """Schedule the notification of every configured webhook once the current transaction commits."""
    settings = get_settings()
    if not settings.incident_notifications_enabled or not settings.notification_webhooks or incident_id is None:
        return
    connection = transaction.get_connection()
    for url in settings.notification_webhooks:
        key = (incident_id, action, url)
        # Once per transaction: a batch of decisions notifies each incident it changed once, not per decision.
        if connection.in_atomic_block and any(getattr(e[1], 'key', None) == key for e in connection.run_on_commit):
            continue
        transaction.on_commit(_Enqueue(key))


class _Enqueue:
    """The on-commit callback that enqueues one notification (``key``: incident, action, webhook)."""

    def __init__(self, key):
        self.key = key

    def __call__(self):
        _enqueue(*self.key)


def _enqueue(incident_id, action, url):
    try:
        from rq import Retry

        queue = get_queue(QUEUE)
        digest = hashlib.sha256(url.encode()).hexdigest()[:12]
        retry = Retry(max=len(RETRY_INTERVALS), interval=list(RETRY_INTERVALS))
        # Written with the job: an enqueue that redis-py retries queues the same job again with the same nonce.
        meta = {'nonce': uuid.uuid4().hex}
        if action == 'updated':
            job_id = f'business-application-notify-{incident_id}-updated-{digest}'
            existing = queue.fetch_job(job_id)
            if existing is not None and existing.get_status(refresh=False) in ('queued', 'scheduled', 'deferred'):
                return
            queue.enqueue_in(
                _seconds(UPDATE_DEBOUNCE_SECONDS),
                send_notification,
                incident_id,
                action,
                url,
                job_id=job_id,
                retry=retry,
                result_ttl=600,
                failure_ttl=86400,
                meta=meta,
            )
        else:
            queue.enqueue(
                send_notification, incident_id, action, url, retry=retry, result_ttl=600, failure_ttl=86400, meta=meta
            )
    except Exception:  # the queue being down must not fail the decision that was already committed
        logger.exception('could not enqueue the %s notification of incident %s', action, incident_id)


def _seconds(value):
    from datetime import timedelta

    return timedelta(seconds=value)


def build_payload(incident, action):
    """The guide's payload: action, incident (with its URL), affected services and event count."""
    from .settings import get_settings

    base = get_settings().public_url.rstrip('/')
    return {
        'action': action,
        'incident': {
            'id': incident.pk,
            'title': incident.title,
            'severity': incident.severity,
            'status': incident.status,
            'url': f'{base}{incident.get_absolute_url()}',
            'root_cause': incident.root_cause,
            'commander': incident.commander,
            'detected_at': incident.detected_at.isoformat() if incident.detected_at else None,
            'resolved_at': incident.resolved_at.isoformat() if incident.resolved_at else None,
        },
        'affected_services': [
            {'id': service.pk, 'name': service.name, 'service_type': service.service_type}
            for service in incident.affected_services.order_by('name')
        ],
        'blast_radius': incident.blast_radius,
        'event_count': incident.memberships.count(),
    }


def send_notification(incident_id, action, url):
    """RQ job: post one notification to one webhook; raising makes RQ retry it later."""
    from .models import Incident

    if url not in get_settings().notification_webhooks:
        logger.warning('not sending to a webhook that is no longer configured')
        return 'skipped'
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None:
        return 'incident deleted'
    if action == 'updated' and incident.status in IncidentStatusChoices.DONE:
        # A debounced update that ran after the incident resolved: its "resolved" notification says it all.
        return 'superseded'
    claim = _claim()
    if claim is False:
        logger.info('the %s notification of incident %s was already sent', action, incident_id)
        return 'duplicate'
    try:
        status = _post(incident, action, url)
    except Exception:
        if claim is not None:
            claim.release()  # not sent: RQ's retry of this job sends it
        raise
    if claim is not None:
        claim.sent()
    return status


class _Claim:
    """A run's claim on sending one enqueued notification, in Redis: ``sending`` for a short while (a worker killed
    meanwhile leaves it to expire, and the retry RQ makes of the abandoned job then sends), ``sent`` for long."""

    def __init__(self, connection, key):
        self.connection, self.key = connection, key

    def sent(self):
        try:
            self.connection.set(self.key, 'sent', ex=SENT_SECONDS)
        except Exception:  # the claim expires: a second run would then send again
            logger.warning('could not record a sent notification', exc_info=True)

    def release(self):
        try:
            self.connection.delete(self.key)
        except Exception:  # the claim expires, and a retry after that sends
            logger.warning('could not release the claim of a notification that was not sent', exc_info=True)


def _claim():
    """Claim the sending of this run's notification. False when it was sent already (a job queued twice because
    redis-py retried the enqueue); ``NotificationError`` (RQ retries the job) while another run is sending it;
    None outside a worker or for a job an older version queued; else the claim."""
    from rq import get_current_job

    job = get_current_job()
    nonce = (job.meta or {}).get('nonce') if job is not None else None
    if nonce is None:
        return None
    key = f'business-application:notification-sent:{job.id}:{nonce}'
    if job.connection.set(key, 'sending', nx=True, ex=SENDING_SECONDS):
        return _Claim(job.connection, key)
    if job.connection.get(key) == b'sent':
        return False
    raise NotificationError('another run of this notification is sending it; this one is retried later')


_opener = None


def opener():
    """The process's URL opener, as ``urllib.request.urlopen`` builds it, built once: building one (its TLS
    context reads the system's CA certificates) was 10% of the workers' time in a storm, once in every job.
    ``SnapshotWorker`` builds it before forking, so each job inherits it."""
    global _opener  # noqa: PLW0603 - one per process, as urllib keeps its own
    if _opener is None:
        _opener = urllib.request.build_opener()
    return _opener


def _post(incident, action, url):
    incident_id = incident.pk
    body = json.dumps(build_payload(incident, action)).encode()
    request = urllib.request.Request(
        url,
        data=body,
        method='POST',
        headers={
            'Content-Type': 'application/json',
            'User-Agent': 'netbox-business-application',
        },
    )
    try:
        with opener().open(request, timeout=TIMEOUT_SECONDS) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        raise NotificationError(
            f'webhook answered {error.code} to the {action} notification of incident {incident_id}'
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, 'reason', error)
        raise NotificationError(
            f'webhook unreachable for the {action} notification of incident {incident_id}: {reason}'
        ) from None
    logger.info('sent the %s notification of incident %s (HTTP %s)', action, incident_id, status)
    return status
