"""Attack 12: a transaction that deletes more map objects than LOCAL_RECORDS_LIMIT, reads the map, then rolls back.

The snapshot follows such a transaction with a full load that sees its uncommitted deletions (``tainted``), and
relies on the next decision *outside* a transaction to reload. But decisions in a web process always run inside a
transaction (``intake.ingest``, the events API's upsert, the post_save correlation): a later transaction keeps
deciding on the map without the objects whose deletion was rolled back. A TestCase's own transaction plays the part
of that later request's transaction here.
"""

from django.db import transaction
from django.test import TestCase

from business_application.correlation.kinds import SERVICE
from business_application.models import TechnicalService
from business_application.services import graph_loader
from business_application.services.graph_loader import current_map, forget_map


class ManyDeletionsRolledBackTest(TestCase):
    def setUp(self):
        count = graph_loader.LOCAL_RECORDS_LIMIT + 10
        TechnicalService.objects.bulk_create(
            TechnicalService(name=f'attack12-svc-{i:04}', service_type='technical') for i in range(count)
        )
        self.pks = list(TechnicalService.objects.filter(name__startswith='attack12-svc-').values_list('pk', flat=True))
        forget_map()
        current_map()

    def tearDown(self):
        forget_map()

    def test_a_rolled_back_bulk_deletion_leaves_the_map_without_the_objects_in_the_next_transaction(self):
        service_map = current_map()
        self.assertIsNotNone(service_map.node(SERVICE, self.pks[0]))
        try:
            with transaction.atomic():
                for service in TechnicalService.objects.filter(pk__in=self.pks):
                    service.delete()  # one 'obj' record each: more than LOCAL_RECORDS_LIMIT
                self.assertIsNone(current_map().node(SERVICE, self.pks[0]))  # a decision in that transaction
                raise RuntimeError('roll back')
        except RuntimeError:
            pass
        self.assertTrue(TechnicalService.objects.filter(pk=self.pks[0]).exists())
        # The next request's transaction (ingest, the API's upsert) decides on this map.
        with transaction.atomic():
            followed = current_map().node(SERVICE, self.pks[0])
        forget_map()
        fresh = current_map().node(SERVICE, self.pks[0])
        self.assertIsNotNone(fresh)
        self.assertIsNotNone(
            followed, 'the snapshot keeps the rolled-back deletion of every service while decisions run in transactions'
        )
