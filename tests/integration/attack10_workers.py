"""Worker classes and jobs of attack 10's worker tests (tests/integration/test_attack10_workers.py).

Each worker class does something between SnapshotWorker's warm-up (in ``work()``, before RQ's) and its first job:
RQ's ``Worker.work()`` calls ``bootstrap()`` first, after the warm-up and before any job is taken.
"""

import os
import socket

from django.db import connections

from business_application.workers import SnapshotWorker


def _closed_port():
    """A port of 127.0.0.1 nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class PostgresDownAtStartWorker(SnapshotWorker):
    """PostgreSQL does not answer during the warm-up (the worker started first, as at a machine's boot), and answers
    from the moment the worker registers."""

    def work(self, *args, **kwargs):
        connection = connections['default']
        connection.close()
        self._real_port = connection.settings_dict['PORT']
        connection.settings_dict['PORT'] = str(_closed_port())
        return super().work(*args, **kwargs)

    def bootstrap(self, *args, **kwargs):
        connection = connections['default']
        connection.close()
        connection.settings_dict['PORT'] = self._real_port
        return super().bootstrap(*args, **kwargs)


class MembersChangeAfterWarmUpWorker(SnapshotWorker):
    """Another process changes the live incidents' members between the warm-up and the first job: every member of
    the incident named by ATTACK10_INCIDENT is resolved, and the one of ATTACK10_DROP_EVENT is removed."""

    def bootstrap(self, *args, **kwargs):
        from business_application.models import IncidentEvent

        incident = int(os.environ['ATTACK10_INCIDENT'])
        IncidentEvent.objects.filter(incident_id=incident).update(status='resolved')
        IncidentEvent.objects.filter(event_id=int(os.environ['ATTACK10_DROP_EVENT'])).delete()
        return super().bootstrap(*args, **kwargs)


class MapChangesAfterWarmUpWorker(SnapshotWorker):
    """The map changes between the warm-up and the first job: the device named by ATTACK10_DEVICE stops carrying
    its services (as NetBox's UI would do it, so the change is announced)."""

    def bootstrap(self, *args, **kwargs):
        from dcim.models import Device

        from business_application.models import TechnicalService

        device = Device.objects.get(name=os.environ['ATTACK10_DEVICE'])
        for service in TechnicalService.objects.filter(devices=device):
            service.devices.remove(device)
        return super().bootstrap(*args, **kwargs)


def live_members():
    """The live incidents as this process's store reads them (its member cache included) and as the database holds
    them: ``{incident: sorted [(event, status, node)]}`` twice."""
    from business_application.models import IncidentEvent
    from business_application.services import clock
    from business_application.services.graph_loader import current_map, node_of
    from business_application.services.incident_service import DjangoStore, to_epoch
    from business_application.settings import get_settings

    settings = get_settings()
    service_map = current_map()
    store = DjangoStore(service_map, settings)
    incidents = store.live_incidents(to_epoch(clock.now()), settings)
    read = {i.key: sorted((m.alert, m.status, m.node) for m in i.members) for i in incidents}
    services = {i.key: sorted(i.services) for i in incidents}
    held = {}
    for row in IncidentEvent.objects.filter(incident_id__in=read).values(
        'incident_id', 'event_id', 'status', 'event__content_type_id', 'event__object_id'
    ):
        node = node_of(service_map, row['event__content_type_id'], row['event__object_id'])
        held.setdefault(row['incident_id'], []).append((row['event_id'], row['status'], node))
    held = {key: sorted(held.get(key, [])) for key in read}
    held_services = {
        key: sorted({s for _, _, node in members if node is not None for s in service_map.services_of(node)})
        for key, members in held.items()
    }
    return {'read': read, 'held': held, 'services': services, 'held_services': held_services}
