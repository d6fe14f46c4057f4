"""Attack round 9: the REST bulk writes of events taking every decision lock of the batch first (ef0a11f)."""

import psycopg
import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from rest_framework.test import APIClient

from core.models import ObjectChange
from utilities.testing import APITestCase

from business_application.models import Event
from business_application.services.incident_service import LOCK_NAMESPACE

from ..senders import sender_authorization
from .test_attack8 import group, poster, rest_authorization, waits_for_a_row
from .test_events_api import EventsAPIMixin
from .test_lock_moved import MAP, decide_in_thread, key_of, until, waiting_for
from .test_lock_moved import build as build_map


class BulkEventsAPITest(EventsAPIMixin, APITestCase):
    def setUp(self):
        super().setUp()
        self.event_type = ContentType.objects.get_by_natural_key('business_application', 'event')

    def stored(self, *dedup_ids):
        self.allow('add', 'change', 'delete', 'view')
        pks = []
        for dedup_id in dedup_ids:
            response = self.client.post(
                self.url, self.payload(dedup_id=dedup_id, message=f'{dedup_id} old'), format='json', **self.header
            )
            self.assertEqual(response.status_code, 201, response.data)
            pks.append(response.data['id'])
        return pks

    def update_changes(self, pk):
        return ObjectChange.objects.filter(
            changed_object_type=self.event_type, changed_object_id=pk, action='update'
        ).order_by('time', 'pk')

    def test_single_patch_records_the_message_before_and_after(self):
        """The control: NetBox's single-object PATCH snapshots the event before validating the change."""
        (pk,) = self.stored('a')
        response = self.client.patch(f'{self.url}{pk}/', {'message': 'a new'}, format='json', **self.header)
        self.assertEqual(response.status_code, 200, response.data)
        change = self.update_changes(pk).last()
        self.assertIsNotNone(change)
        self.assertEqual((change.prechange_data['message'], change.postchange_data['message']), ('a old', 'a new'))

    def test_bulk_patch_records_the_message_before_and_after(self):
        """A bulk PATCH must log what each event was before the change, as NetBox's bulk update does (it snapshots
        each object before validating its data). EventViewSet.perform_bulk_update validates every object first,
        and NetBox's ValidatedModelSerializer.validate() sets the new values on the object itself: the snapshot
        NetBox then takes holds the new values, so the change log shows no change (or none at all)."""
        pks = self.stored('a', 'b')
        items = [{'id': pk, 'message': f'{dedup} new'} for pk, dedup in zip(pks, 'ab', strict=True)]
        response = self.client.patch(self.url, items, format='json', **self.header)
        self.assertEqual(response.status_code, 200, response.data)
        self.assertEqual(set(Event.objects.values_list('message', flat=True)), {'a new', 'b new'})
        for pk, dedup in zip(pks, 'ab', strict=True):
            change = self.update_changes(pk).last()
            self.assertIsNotNone(change, f'no update logged for event {pk}')
            self.assertEqual(
                (change.prechange_data['message'], change.postchange_data['message']), (f'{dedup} old', f'{dedup} new')
            )

    def test_bulk_put_records_the_message_before_and_after(self):
        """The same for a bulk PUT (partial=False)."""
        (pk,) = self.stored('a')
        items = [{'id': pk, **self.payload(dedup_id='a', message='a new')}]
        response = self.client.put(self.url, items, format='json', **self.header)
        self.assertEqual(response.status_code, 200, response.data)
        change = self.update_changes(pk).last()
        self.assertIsNotNone(change, f'no update logged for event {pk}')
        self.assertEqual((change.prechange_data['message'], change.postchange_data['message']), ('a old', 'a new'))


# --- Concurrency: the batch's locks are chosen from rows read before they are taken ---------------------------------


EVENTS_URL_PATH = '/api/plugins/business-application/events/'


def no_object_key():
    """The decision lock a PATCH naming no object takes for the alert "as sent" (content type and object None)."""
    from business_application.services.graph_loader import current_map
    from business_application.services.incident_service import lock_key

    return lock_key(current_map(), {'content_type_id': None, 'object_id': None, 'unmapped_label': ''})


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize('bulk', [True, False], ids=['bulk', 'single'])
def test_bulk_patch_waiting_for_its_locks_does_not_undo_a_resolve_stored_meanwhile(bulk):
    """A bulk PATCH of a firing alert's message reads the event, then waits for the decision locks of the batch
    (here: the lock every PATCH naming no object takes, held by another session as any writer may hold it). Meanwhile
    Alertmanager resolves the alert: the delivery stores (and decides) "resolved" and commits. When the PATCH gets
    its locks it saves the object it read before the wait: every column but the bookkeeping, the stale "triggered"
    status included. The resolve is lost (the alert fires again) though the PATCH sent only a message.

    perform_bulk_update (ef0a11f) takes "every decision lock of the batch first" but from objects read before the
    wait, and never reads them again once it holds the locks; only the message should change. The single-object
    PATCH (EventSerializer.update: ``_lock_for`` then ``save`` of the instance NetBox read first) does the same."""
    objects = build_map(MAP)
    post = poster(sender_authorization('alertmanager'))
    assert post(group(('a', 'web-01'))) == 200
    event = Event.objects.get(dedup_id='a')
    assert event.status == 'triggered'
    rest = rest_authorization()

    def bulk_patch(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=rest)
        if bulk:
            response = client.patch(EVENTS_URL_PATH, [{'id': event.pk, 'message': 'seen by REST'}], format='json')
        else:  # the single-object PATCH has the same window
            response = client.patch(f'{EVENTS_URL_PATH}{event.pk}/', {'message': 'seen by REST'}, format='json')
        return response.status_code, response.content[:300]

    key = no_object_key()
    assert key != key_of(objects['device:web-01'])
    holder = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    try:
        holder.execute('SELECT pg_advisory_lock(%s, %s)', [LOCK_NAMESPACE, key])
        rest_thread, rest_state = decide_in_thread(bulk_patch, None)
        until(lambda: waiting_for(key, rest_state['pid']), 'the bulk PATCH to wait for its locks')
        assert post(group(('a', 'web-01'), status='resolved', ends='2026-12-05T10:05:00Z')) == 200
        assert Event.objects.get(pk=event.pk).status == 'ok'
        holder.execute('SELECT pg_advisory_unlock_all()')
        rest_thread.join(timeout=60)
    finally:
        holder.close()
    assert not rest_thread.is_alive(), 'hung'
    assert 'error' not in rest_state, rest_state
    assert rest_state['result'][0] == 200, rest_state
    stored = Event.objects.get(pk=event.pk)
    assert (stored.message, stored.status) == ('seen by REST', 'ok'), (stored.message, stored.status)


@pytest.mark.django_db(transaction=True)
def test_bulk_patch_does_not_deadlock_with_a_delivery_when_its_alert_moved_while_it_waited():
    """A bulk PATCH of a firing alert's message (decided on a host of part X) reads the event, then waits for its
    decision locks. Meanwhile an asynchronous Alertmanager delivery resolves the alert on a host of part Y: the event
    now names Y and remembers an undecided state on Y. When the PATCH gets its locks (X's, chosen from what it read)
    it saves the event and its decision then needs Y's lock as well (the undecided state's), taken only now, after
    the row lock. A synchronous delivery of the alert on Y, holding Y's lock and waiting for X's, closes the cycle:
    PostgreSQL aborts one of the two.

    The third session only orders the writers (it holds the row a moment, as any writer may)."""
    import django_rq
    from django.test import override_settings

    objects = build_map(MAP)
    new_host, old_host = sorted(('web-01', 'db-01'), key=lambda host: key_of(objects[f'device:{host}']))
    old_key, new_key = key_of(objects[f'device:{old_host}']), key_of(objects[f'device:{new_host}'])
    assert new_key < old_key
    post = poster(sender_authorization('alertmanager'))
    assert post(group(('a', old_host))) == 200
    event = Event.objects.get(dedup_id='a')
    rest = rest_authorization()

    def bulk_patch(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=rest)
        response = client.patch(EVENTS_URL_PATH, [{'id': event.pk, 'message': 'seen by REST'}], format='json')
        return response.status_code, response.content[:300]

    key = no_object_key()
    holder = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    rows = psycopg.connect(**connection.get_connection_params(), autocommit=True)
    try:
        holder.execute('SELECT pg_advisory_lock(%s, %s)', [LOCK_NAMESPACE, key])
        rest_thread, rest_state = decide_in_thread(bulk_patch, None)
        until(lambda: waiting_for(key, rest_state['pid']), 'the bulk PATCH to wait for its locks')
        with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
            assert post(group(('a', new_host), status='resolved', ends='2026-12-05T10:05:00Z')) == 200
        django_rq.get_queue('default').empty()
        rows.execute('BEGIN')
        rows.execute('SELECT id FROM business_application_event WHERE id = %s FOR UPDATE', [event.pk])
        holder.execute('SELECT pg_advisory_unlock_all()')
        until(lambda: waits_for_a_row(rest_state['pid']), 'the bulk PATCH to wait for the row')
        receiver_thread, receiver_state = decide_in_thread(lambda _: post(group(('a', new_host))), None)
        # Before the fix it held Y's lock and waited for X's; the PATCH now takes Y's lock before the row's as well.
        until(
            lambda: waiting_for(old_key, receiver_state['pid']) or waiting_for(new_key, receiver_state['pid']),
            'the delivery to wait for a part',
        )
        rows.execute('COMMIT')
        rest_thread.join(timeout=60)
        receiver_thread.join(timeout=60)
    finally:
        holder.close()
        rows.close()
    assert not rest_thread.is_alive(), 'hung'
    assert not receiver_thread.is_alive(), 'hung'
    assert 'error' not in rest_state, (rest_state, receiver_state)
    assert 'error' not in receiver_state, (rest_state, receiver_state)
    assert (rest_state['result'][0], receiver_state['result']) == (200, 200), (rest_state, receiver_state)
