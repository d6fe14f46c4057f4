"""A processed event costs the same small number of SQL queries on a 1k-object and a 20k-object map.

The map is loaded once before measuring (as a worker's snapshot would be); then the same events
go through the whole path (``Event.objects.create`` / ``save`` and the post_save decision): one
opens an incident, one joins it, and two clears resolve it. Each step's query count must be the
same on both maps and within ``MAX_QUERIES``.
"""

import collections

from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.test import TestCase
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dcim.models import Device

from business_application.models import Event, EventCrit, EventSource, EventStatus, Incident
from business_application.services import graph_loader
from business_application.services.batch import decide_events
from business_application.services.graph_loader import current_map, forget_map, stats

from .bulkmap import write_map
from .maps import DATABASE_OUTAGE, build

#: The most queries one processed event may take on any map (intake insert included).
MAX_QUERIES = 25


def create_event(device, dedup_id, criticallity=EventCrit.CRITICAL):
    return Event.objects.create(
        message='x',
        status=EventStatus.TRIGGERED,
        criticallity=criticallity,
        content_type=ContentType.objects.get_for_model(Device),
        object_id=device.id,
        dedup_id=dedup_id,
        last_seen_at=timezone.now(),
    )


def clear(event):
    event.status = EventStatus.OK
    event.last_seen_at = timezone.now()
    event.save()


class QueriesPerEventTest(TestCase):
    def measure(self, filler):
        """Query counts of each step on the guide's map beside ``filler`` other objects (rolled back after)."""
        counts = {}
        with transaction.atomic():
            objects = build(DATABASE_OUTAGE)
            nodes = write_map(filler, prefix=f'q{filler}')['nodes']
            forget_map()
            service_map = current_map()
            self.assertGreaterEqual(len(service_map), nodes)
            graph_loader._local.clear()  # the map is committed and loaded, as in a running worker
            for app_label, model in graph_loader.MODEL_KINDS:  # a running worker has these cached too
                ContentType.objects.get_for_id(ContentType.objects.get_by_natural_key(app_label, model).pk)
            for model in (Incident, Event):
                ContentType.objects.get_for_model(model)
            loads = stats()['full_loads']
            db, web = objects['device:DB-PROD-01'], objects['device:WEB-APP-01']
            steps = (
                ('open', lambda: create_event(db, 'db')),
                ('join', lambda: create_event(web, 'web', EventCrit.WARNING)),
                ('clear one member', lambda: clear(Event.objects.get(dedup_id='db'))),
                ('clear the last and resolve', lambda: clear(Event.objects.get(dedup_id='web'))),
            )
            for name, step in steps:
                if name.startswith('clear'):
                    event = Event.objects.get(dedup_id='db' if name == 'clear one member' else 'web')
                    step = lambda event=event: clear(event)  # noqa: E731 - the read is not the event's cost
                with CaptureQueriesContext(connection) as queries:
                    step()
                counts[name] = len(queries)
            incident = Incident.objects.get()
            self.assertEqual(incident.memberships.count(), 2)
            self.assertEqual(incident.status, 'resolved')
            self.assertEqual(stats()['full_loads'], loads)
            transaction.set_rollback(True)
        forget_map()
        return counts

    def test_queries_per_event_do_not_grow_with_the_map(self):
        small = self.measure(1_000)
        large = self.measure(20_000)
        print(f'queries per event: 1k map {small}, 20k map {large}')
        self.assertEqual(small, large)
        for name, count in large.items():
            self.assertLessEqual(count, MAX_QUERIES, name)


def rack(servers):
    """A switch with ``servers`` servers behind it, each carrying a service: one component of the map."""
    devices = '\n'.join(f'    - {{name: R-{i}, role: server, services: [S-{i}], links: [TOR]}}' for i in range(servers))
    services = ', '.join(f'S-{i}' for i in range(servers))
    return build(
        f'name: rack\ngraph:\n  services: [{services}]\n  devices:\n    - {{name: TOR, role: switch}}\n{devices}\n'
    )


class QueriesPerBatchTest(TestCase):
    """A batch decided by ``decide_events`` (the RQ job, the synchronous receivers, the sweep): its
    queries do not grow with the map, and hardly with the batch (only opened incidents cost one each)."""

    def measure(self, filler, servers):
        with transaction.atomic():
            objects = rack(servers)
            write_map(filler, prefix=f'b{filler}')
            forget_map()
            current_map()
            graph_loader._local.clear()
            for app_label, model in graph_loader.MODEL_KINDS:
                ContentType.objects.get_for_id(ContentType.objects.get_by_natural_key(app_label, model).pk)
            source = EventSource.objects.create(name=f'batch-{filler}-{servers}')
            now = timezone.now()
            targets = [objects['device:TOR']] + [objects[f'device:R-{i}'] for i in range(servers)]
            events = Event.objects.bulk_create(  # stored without a decision, as the receivers' bulk insert
                [
                    Event(
                        event_source=source,
                        dedup_id=f'{target.pk}',
                        message='x',
                        status=EventStatus.TRIGGERED,
                        criticallity=EventCrit.CRITICAL,
                        content_type=ContentType.objects.get_for_model(Device),
                        object_id=target.pk,
                        last_seen_at=now,
                        event_time=now,
                    )
                    for target in targets
                ]
            )
            with CaptureQueriesContext(connection) as queries:
                results = decide_events([(event.pk, now) for event in events])
            actions = collections.Counter(outcome.action for _, outcome in results)
            self.assertEqual(actions, {'opened': 1, 'joined': servers})
            transaction.set_rollback(True)
        forget_map()
        return len(queries)

    def test_queries_per_batch_do_not_grow_with_the_map_or_the_batch(self):
        counts = {(filler, servers): self.measure(filler, servers) for filler in (1_000, 20_000) for servers in (5, 45)}
        print(f'queries per batch (map size, events): {counts}')
        self.assertEqual(counts[(1_000, 5)], counts[(20_000, 5)])
        self.assertEqual(counts[(1_000, 45)], counts[(20_000, 45)])
        self.assertLessEqual(counts[(1_000, 45)], counts[(1_000, 5)] + 2)
        self.assertLessEqual(counts[(1_000, 45)], MAX_QUERIES)
