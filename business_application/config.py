"""Configuration and health of incident automation, as the guide calls it:

from business_application.config import check_incident_automation_health
print(check_incident_automation_health())
"""

import logging
from collections import defaultdict

from django.core.exceptions import ImproperlyConfigured

from .choices import IncidentStatusChoices
from .services import clock

__all__ = (
    'IncidentAutomationConfig',
    'check_incident_automation_health',
    'dependency_cycles',
    'engine_status',
    'job_failures',
    'last_sweep',
    'queue_status',
)

logger = logging.getLogger('business_application.config')

QUEUES = ('high', 'default', 'low')


class IncidentAutomationConfig:
    """The validated settings, read fresh on each access (``IncidentAutomationConfig().correlation_threshold``)."""

    def __getattr__(self, name):
        from .settings import get_settings

        return getattr(get_settings(), name)


def engine_status(requested=None):
    """Which backend decides: the one requested by the settings (or ``requested``), and whether it loads."""
    from .correlation.backend import backend_name, load_graph_class
    from .settings import get_settings

    requested = requested or get_settings().engine_backend
    try:
        backend = backend_name(load_graph_class(requested))
    except Exception as error:  # a forced backend that cannot load
        return {'requested': requested, 'backend': None, 'error': str(error)}
    return {'requested': requested, 'backend': backend, 'compiled': backend == 'rust'}


def queue_status():
    """Depth of NetBox's RQ queues and the number of workers; errors are reported, not raised."""
    try:
        import django_rq
        from rq import Worker

        depth = {name: django_rq.get_queue(name).count for name in QUEUES}
        failed = {name: django_rq.get_queue(name).failed_job_registry.count for name in QUEUES}
        workers = Worker.count(connection=django_rq.get_connection('default'))
        return {'depth': depth, 'failed': failed, 'workers': workers}
    except Exception as error:
        return {'error': f'{type(error).__name__}: {error}'}


#: A sweep that found unprocessed events is an issue of the health check for this long.
SWEEP_REPORTED_SECONDS = 3600
#: Failed or retrying jobs looked at per registry when the health check sorts them by kind.
JOB_SAMPLE = 2000


def job_failures():
    """Decision and notification jobs that failed for good, or failed and wait for a retry, in every
    queue; with the latest error of each kind. Errors reaching Redis are reported, not raised."""
    try:
        import django_rq
        from rq.job import Job

        kinds = {
            'decisions': (
                'business_application.jobs.process_event_job',
                'business_application.jobs.process_events_job',
            ),
            'notifications': ('business_application.notifications.send_notification',),
        }
        found = {kind: {'failed': 0, 'retrying': 0, 'last_error': ''} for kind in kinds}
        connection = django_rq.get_connection('default')
        for name in QUEUES:
            queue = django_rq.get_queue(name)
            for state, registry in (('failed', queue.failed_job_registry), ('retrying', queue.scheduled_job_registry)):
                ids = registry.get_job_ids(0, JOB_SAMPLE - 1)
                for job in Job.fetch_many(ids, connection=connection):
                    if job is None:
                        continue
                    for kind, functions in kinds.items():
                        if job.func_name in functions:
                            found[kind][state] += 1
                            if state == 'failed' or job.retries_left is not None:
                                error = (job.latest_result().exc_string if job.latest_result() else '') or ''
                                if error:
                                    found[kind]['last_error'] = error.strip().splitlines()[-1][:300]
        for kind in found.values():
            kind['failing'] = kind['failed'] + kind['retrying']
        return found
    except Exception as error:
        return {'error': f'{type(error).__name__}: {error}'}


def last_sweep():
    """When the periodic sweep of unprocessed events last ran, and what it found."""
    from core.models import Job

    from .jobs import SweepUnprocessedEventsJob

    job = (
        Job.objects.filter(name=SweepUnprocessedEventsJob.name, completed__isnull=False)
        .order_by('-completed')
        .values('completed', 'status', 'data')
        .first()
    )
    if job is None:
        return None
    data = job['data'] if isinstance(job['data'], dict) else {}
    return {
        'completed': job['completed'].isoformat(),
        'age_seconds': round((clock.now() - job['completed']).total_seconds(), 1),
        'status': job['status'],
        'swept': data.get('total', 0),
    }


def dependency_cycles(limit=20):
    """Cycles among service dependencies (strongly connected groups of two or more services), by name."""
    from .models import ServiceDependency, TechnicalService

    edges = defaultdict(list)
    for upstream, downstream in ServiceDependency.objects.values_list('upstream_service_id', 'downstream_service_id'):
        edges[upstream].append(downstream)
    groups = [group for group in _strongly_connected(edges) if len(group) > 1]
    names = dict(TechnicalService.objects.filter(pk__in={pk for g in groups for pk in g}).values_list('pk', 'name'))
    return [sorted(names[pk] for pk in group) for group in groups[:limit]]


def _strongly_connected(edges):
    """Tarjan's algorithm, iterative so that long chains do not hit the recursion limit."""
    index, low, on_stack, stack, groups = {}, {}, set(), [], []
    counter = 0
    for root in list(edges):
        if root in index:
            continue
        work = [(root, iter(edges.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges.get(child, ()))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                groups.append(group)
    return groups


def check_incident_automation_health():
    """Configuration problems, backend in use, queue depth, unprocessed events and dependency cycles, as a dict.

    ``healthy`` is False when something needs a person's attention; ``issues`` says what.
    """
    from .models import Event, Incident
    from .settings import validate

    issues = []
    try:
        settings = validate()
        configuration_valid = True
    except ImproperlyConfigured as error:
        issues.append(str(error))
        configuration_valid = False
        settings = None

    engine = engine_status(None if settings else 'auto')
    if engine.get('error'):
        issues.append(f'engine backend {engine["requested"]!r} cannot be used: {engine["error"]}')
    elif engine['requested'] == 'auto' and not engine['compiled']:
        issues.append('the compiled engine is not installed; the slower Python fallback is in use')

    queue = queue_status()
    if 'error' in queue:
        issues.append(f'the task queue cannot be reached: {queue["error"]}')
    elif not queue['workers'] and (sum(queue['depth'].values()) or (settings and settings.async_processing)):
        issues.append(
            f'{sum(queue["depth"].values())} jobs wait in the queue but no RQ worker is running '
            '(start `netbox rqworker`)'
        )

    backlog = Event.objects.filter(Event.UNDECIDED)
    if settings is not None:  # an excluded source's events are stored, never decided: no backlog (as the sweep)
        backlog = backlog.exclude(event_source__name__in=settings.exclude_event_sources)
    unprocessed = backlog.count()
    oldest = backlog.order_by('last_seen_at').values_list('last_seen_at', flat=True).first() if unprocessed else None
    oldest_seconds = round((clock.now() - oldest).total_seconds(), 1) if oldest else None
    if unprocessed:
        issues.append(f'{unprocessed} events are waiting to be processed')
    failures = job_failures()
    if 'error' not in failures:
        for kind, found in failures.items():
            if found['failing']:
                issues.append(
                    f'{found["failed"]} {kind} jobs failed and {found["retrying"]} wait for a retry'
                    + (f': {found["last_error"]}' if found['last_error'] else '')
                )
    sweep = last_sweep()
    if sweep and sweep['swept'] and sweep['age_seconds'] < SWEEP_REPORTED_SECONDS:
        issues.append(f'the sweep of {sweep["completed"]} found {sweep["swept"]} events a worker had not processed')
    cycles = dependency_cycles()
    for cycle in cycles:
        issues.append(f'dependency cycle: {" -> ".join(cycle)}')
    if settings is not None and settings.incident_notifications_enabled and not settings.notification_webhooks:
        logger.debug('notifications are enabled but no webhook is configured')

    return {
        'healthy': configuration_valid and not issues,
        'enabled': settings.auto_incidents_enabled if settings else None,
        'auto_resolve_enabled': settings.auto_resolve_incidents if settings else None,
        'notifications_enabled': settings.incident_notifications_enabled if settings else None,
        'webhook_count': len(settings.notification_webhooks) if settings else 0,
        'correlation_window_minutes': settings.correlation_window_minutes if settings else None,
        'correlation_threshold': settings.correlation_threshold if settings else None,
        'max_dependency_depth': settings.max_dependency_depth if settings else None,
        'configuration_valid': configuration_valid,
        'engine': engine,
        'queue': queue,
        'unprocessed_events': unprocessed,
        'oldest_unprocessed_seconds': oldest_seconds,
        'decisions': failures.get('decisions', failures),
        'notifications': failures.get('notifications', failures),
        'last_sweep': sweep,
        'open_incidents': Incident.objects.filter(status__in=IncidentStatusChoices.OPEN).count(),
        'dependency_cycles': cycles,
        'issues': issues,
    }
