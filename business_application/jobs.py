"""Background work on NetBox's own RQ queues, run by `netbox rqworker`.

Job runners log with ready-made messages: NetBox's job log stores a record's message without
formatting its arguments.
"""

import contextlib
import logging
from datetime import datetime

from core.exceptions import JobFailed
from netbox.jobs import JobRunner, system_job

from .models import Event
from .services.automation import process_events, unprocessed_events

__all__ = ('ProcessUnprocessedEventsJob', 'SweepUnprocessedEventsJob', 'process_event_job', 'process_events_job')

logger = logging.getLogger('business_application.jobs')


class ProcessUnprocessedEventsJob(JobRunner):
    """Correlate every event of the last hours whose latest state was not processed yet."""

    class Meta:
        name = 'Process unprocessed events'

    def run(self, hours=24, *args, **kwargs):
        ids = list(unprocessed_events(hours).values_list('pk', flat=True))
        self.logger.info(f'{len(ids)} unprocessed events in the last {hours} hours')  # noqa: G004 - see the module note
        summary = process_events(ids, at_arrival=True)
        self.job.data = summary.as_dict()
        done = summary.total - len(summary.errors)
        self.logger.info(f'processed {done} events: {dict(summary.actions)}')  # noqa: G004
        if summary.errors:
            raise JobFailed(f'{len(summary.errors)} of {summary.total} events failed')


@system_job(interval=5)
class SweepUnprocessedEventsJob(JobRunner):
    """Every five minutes, process events that stayed unprocessed (for example after a worker was killed)."""

    class Meta:
        name = 'Sweep unprocessed events'

    def run(self, *args, **kwargs):
        ids = list(unprocessed_events(hours=48).values_list('pk', flat=True)[:10_000])
        if ids:
            summary = process_events(ids, at_arrival=True)
            self.job.data = summary.as_dict()
            self.logger.warning(f'swept {len(ids)} unprocessed events: {dict(summary.actions)}')  # noqa: G004


def as_request(request):
    """Run a decision job as NetBox runs a script job: under the request processors (its event tracking among
    them) with the copy of the request that stored the events, so NetBox's event rules run for the incidents the
    job opens and changes once it is done, attributed to that request's user. Jobs queued without a request (by
    an older version, or outside a request) run as before: NetBox queues no event rule outside a request."""
    if request is None:
        return contextlib.nullcontext()
    from utilities.request import apply_request_processors

    return apply_request_processors(request)


def process_event_job(event_id, arrival, request=None):
    """RQ entry point of asynchronous processing: decide one event as of its arrival."""
    from .services.incident_service import process_event

    moment = datetime.fromisoformat(arrival) if arrival else None
    try:
        with as_request(request):
            outcome = process_event(event_id, now=moment)
    except Event.DoesNotExist:  # nothing left to decide: not a failure (as ``process_events_job`` says)
        logger.info('event %s was deleted before a worker decided it', event_id)
        return 'deleted'
    logger.debug('event %s processed by a worker: %s', event_id, outcome.action)
    return outcome.action


def process_events_job(batch, request=None):
    """RQ entry point for a batch stored by one receiver request: ``[(event_id, arrival)]``, decided
    together (``services.batch``), each as of its arrival. One failure does not stop the others; the
    job fails at the end (and the health check reports it) with the failed events left for the sweep,
    after the event rules of the decisions that were taken have run."""
    from .services.batch import decide_events

    failed = []
    items = [(event_id, datetime.fromisoformat(arrival) if arrival else None) for event_id, arrival in batch]
    with as_request(request):
        results = decide_events(items)
    for event_id, result in results:
        if isinstance(result, Event.DoesNotExist):
            logger.info('event %s was deleted before a worker decided it', event_id)
        elif isinstance(result, Exception):
            logger.error('processing event %s failed; the sweep will retry it', event_id, exc_info=result)
            failed.append(event_id)
    if failed:
        raise JobFailed(f'{len(failed)} of {len(batch)} events failed: {failed[:20]}')
    return len(batch)
