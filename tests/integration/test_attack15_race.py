"""Attack round 15 on 5b4e2e5: the "before" check of a repeat runs in ``ingest`` "once the decision locks are taken",
but the ids it checks were read before the locks. An alert another request is storing meanwhile is then changed by a
user who may not change it as it is stored (the check "before" never sees it). This fails on c15bc14 as well (its
look-up ran before ``ingest``, without locks): not a regression, but the guarantee 5b4e2e5 states does
not hold.
Also: concurrent deliveries of the same alerts by users of different permissions."""

import threading
import time

import pytest
from django.db import connection
from rest_framework.test import APIClient

from business_application.models import Event, EventSource
from business_application.services import intake

from ..senders import event_sender_header

URL = '/api/plugins/business-application/alerts/alertmanager/'


def group(fingerprint, severity, summary):
    return {
        'version': '4',
        'status': 'firing',
        'alerts': [
            {
                'status': 'firing',
                'labels': {'alertname': 'Race', 'instance': 'ghost-race:9100', 'severity': severity},
                'annotations': {'summary': summary},
                'startsAt': '2026-12-04T10:00:00Z',
                'endsAt': '0001-01-01T00:00:00Z',
                'fingerprint': fingerprint,
            }
        ],
    }


def waiting_on_locks():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND locktype = 'advisory'")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_repeat_racing_the_alerts_creation_is_checked_before(settings):
    """Admin's delivery creates the critical alert and is still in its transaction when the constrained user's
    repeat arrives: that repeat reads "nothing stored" before waiting on the decision lock, and once the admin
    commits, changes the critical alert into a warning although the user may only change warnings."""
    settings.BUSINESS_APP_ASYNC_PROCESSING = True
    EventSource.objects.create(name='prometheus')
    admin = event_sender_header('race-admin', [], superuser=True)
    user = event_sender_header('race-user', [(['view', 'add'], None), (['change'], {'criticallity': 'warning'})])

    hold = threading.Event()
    inserted = threading.Event()
    original = intake._log_changes

    def slow_log_changes(created, changed, before, *rest):
        original(created, changed, before, *rest)
        if threading.current_thread().name == 'admin':
            inserted.set()
            hold.wait(timeout=30)

    answers = {}

    def send(name, head, payload):
        try:
            answers[name] = APIClient().post(URL, payload, format='json', **head).status_code
        finally:
            connection.close()

    intake._log_changes = slow_log_changes
    try:
        first = threading.Thread(target=send, name='admin', args=('admin', admin, group('race-1', 'critical', 'a')))
        first.start()
        assert inserted.wait(timeout=30)
        second = threading.Thread(target=send, name='user', args=('user', user, group('race-1', 'warning', 'b')))
        second.start()
        deadline = time.monotonic() + 20
        while waiting_on_locks() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert waiting_on_locks() > 0, 'the second delivery never waited on the decision lock'
        hold.set()
        first.join(timeout=60)
        second.join(timeout=60)
    finally:
        intake._log_changes = original
        hold.set()
    event = Event.objects.get(dedup_id='race-1')
    assert answers['admin'] == 200
    # The user may not change a critical alert: its repeat must be refused and leave it critical.
    assert (answers['user'], event.criticallity) == (403, 'critical'), (answers, event.criticallity, event.message)


@pytest.mark.django_db(transaction=True)
def test_same_alerts_at_once_by_two_senders(settings):
    """Two senders (one constrained to warnings, one unconstrained) deliver the same new alerts at once, many
    times: no deadlock, no 500, one event per alert."""
    EventSource.objects.create(name='prometheus')
    free = event_sender_header('race-free', [(['view', 'add', 'change'], None)])
    boxed = event_sender_header('race-boxed', [(['view', 'add', 'change'], {'criticallity': 'warning'})])
    codes = []
    for round_ in range(12):
        payload = {
            'version': '4',
            'status': 'firing',
            'alerts': [group(f'same-{round_}-{i}', 'warning', f's{i}')['alerts'][0] for i in range(4)],
        }
        barrier = threading.Barrier(2)
        results = []

        def send(head, payload=payload, barrier=barrier, results=results):
            try:
                barrier.wait(timeout=30)
                results.append(APIClient().post(URL, payload, format='json', **head).status_code)
            finally:
                connection.close()

        threads = [threading.Thread(target=send, args=(h,)) for h in (free, boxed)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        codes.append(sorted(results))
        assert Event.objects.filter(dedup_id__startswith=f'same-{round_}-').count() == 4
    assert all(c == [200, 200] for c in codes), codes
