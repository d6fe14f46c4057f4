"""Webhook notifications: the guide's payload, after commit, off the request path, retried, admin URLs only."""

import time

import django_rq
from django.contrib.contenttypes.models import ContentType
from django.test import TestCase, override_settings
from django.utils import timezone
from rq import SimpleWorker

from dcim.models import Device

from business_application import notifications
from business_application.models import Event, Incident

from .maps import DATABASE_OUTAGE, build
from .webhook_server import WebhookServer


def fire(objects, name, status='triggered', dedup=None):
    return Event.objects.create(
        message=f'{name} down',
        status=status,
        criticallity='critical',
        dedup_id=dedup or name,
        content_type=ContentType.objects.get_for_model(Device),
        object_id=objects[f'device:{name}'].pk,
        last_seen_at=timezone.now(),
    )


class NotificationPayloadTest(TestCase):
    def setUp(self):
        self.objects = build(DATABASE_OUTAGE)

    def test_the_guides_payload_reaches_the_webhook(self):
        with (
            WebhookServer() as server,
            override_settings(
                BUSINESS_APP_NOTIFICATION_WEBHOOKS=[server.url], BUSINESS_APP_PUBLIC_URL='https://netbox.example.com'
            ),
        ):
            fire(self.objects, 'DB-PROD-01')
            incident = Incident.objects.get()
            self.assertEqual(notifications.send_notification(incident.pk, 'created', server.url), 200)
        payload = server.received[0]
        self.assertEqual(payload['action'], 'created')
        self.assertEqual(payload['incident']['title'], 'Service disruption affecting Database Service')
        self.assertEqual(payload['incident']['severity'], 'critical')
        self.assertEqual(payload['incident']['status'], 'new')
        self.assertEqual(
            payload['incident']['url'],
            f'https://netbox.example.com/plugins/business-application/incidents/{incident.pk}/',
        )
        self.assertEqual(payload['affected_services'][0]['name'], 'Database Service')
        self.assertEqual(payload['affected_services'][0]['service_type'], 'technical')
        self.assertEqual(payload['event_count'], 1)

    def test_a_failing_webhook_raises_so_the_job_is_retried(self):
        with WebhookServer('fail') as server, override_settings(BUSINESS_APP_NOTIFICATION_WEBHOOKS=[server.url]):
            fire(self.objects, 'DB-PROD-01')
            with self.assertRaisesMessage(notifications.NotificationError, 'webhook answered 500'):
                notifications.send_notification(Incident.objects.get().pk, 'created', server.url)

    def test_a_hanging_webhook_times_out(self):
        with (
            WebhookServer('hang', hang_seconds=notifications.TIMEOUT_SECONDS + 5) as server,
            override_settings(BUSINESS_APP_NOTIFICATION_WEBHOOKS=[server.url]),
        ):
            fire(self.objects, 'DB-PROD-01')
            started = time.monotonic()
            with self.assertRaises(notifications.NotificationError):
                notifications.send_notification(Incident.objects.get().pk, 'created', server.url)
            self.assertLess(time.monotonic() - started, notifications.TIMEOUT_SECONDS + 2)

    def test_a_url_that_is_not_configured_is_never_called(self):
        with WebhookServer() as server:
            fire(self.objects, 'DB-PROD-01')
            self.assertEqual(
                notifications.send_notification(Incident.objects.get().pk, 'created', server.url), 'skipped'
            )
        self.assertEqual(server.received, [])


class NotificationQueueTest(TestCase):
    """Decisions enqueue notification jobs after commit; intake never waits for the webhook."""

    def setUp(self):
        self.objects = build(DATABASE_OUTAGE)
        self.queue = django_rq.get_queue(notifications.QUEUE)
        self.queue.empty()
        self.scheduled = self.queue.scheduled_job_registry

    def tearDown(self):
        self.queue.empty()
        for job_id in self.scheduled.get_job_ids():
            self.scheduled.remove(job_id, delete_job=True)

    def test_created_updated_and_resolved_are_queued_once_each_per_webhook(self):
        url = 'http://127.0.0.1:9/never-called'
        with override_settings(BUSINESS_APP_NOTIFICATION_WEBHOOKS=[url]):
            with self.captureOnCommitCallbacks(execute=True):
                db = fire(self.objects, 'DB-PROD-01')
            with self.captureOnCommitCallbacks(execute=True):
                fire(self.objects, 'WEB-APP-01')
            with self.captureOnCommitCallbacks(execute=True):
                fire(self.objects, 'WEB-APP-01', dedup='web-2')
            with self.captureOnCommitCallbacks(execute=True):
                for event in Event.objects.all():
                    event.status = 'ok'
                    event.save()
        immediate = [(job.args[1], job.args[2]) for job in self.queue.get_jobs()]
        self.assertEqual(sorted(immediate), [('created', url), ('resolved', url)])
        updated = self.scheduled.get_job_ids()
        self.assertEqual(len(updated), 1, 'two joins within the debounce window make one "updated" job')
        self.assertTrue(updated[0].startswith('business-application-notify-'))
        del db

    def test_a_batch_notifies_each_incident_once_with_one_redis_connection(self):
        """Twelve alerts decided in one batch open one incident and join it eleven times: one "created" and one
        "updated" job, found with one look-up in Redis and at most one new connection, not one per decision. NetBox
        connects to Redis for itself as well (its search index job): the same batch without webhooks is the
        reference."""
        from business_application.services.batch import decide_events

        url = 'http://127.0.0.1:9/never-called'
        redis = self.queue.connection

        def decide(name, webhooks):
            with override_settings(BUSINESS_APP_ASYNC_PROCESSING=True):
                events = [fire(self.objects, name, dedup=f'{name}-{n}') for n in range(12)]
            before = redis.info('stats')['total_connections_received'], _calls(redis, 'hgetall')
            with override_settings(BUSINESS_APP_NOTIFICATION_WEBHOOKS=webhooks):
                with self.captureOnCommitCallbacks(execute=True):
                    decide_events([(event.pk, None) for event in events])
            after = redis.info('stats')['total_connections_received'], _calls(redis, 'hgetall')
            return after[0] - before[0], after[1] - before[1]

        reference, _ = decide('DB-PROD-01', [])
        connections, lookups = decide('MAIL-01', [url])  # a server of its own: a second incident
        self.assertEqual([incident.memberships.count() for incident in Incident.objects.all()], [12, 12])
        self.assertEqual([(job.args[1], job.args[2]) for job in self.queue.get_jobs()], [('created', url)])
        self.assertEqual(len(self.scheduled.get_job_ids()), 1)
        self.assertLessEqual(connections - reference, 1, 'connections to Redis for the notifications')
        self.assertEqual(lookups, 1, 'look-ups of a queued "updated" job')

    def test_without_webhooks_nothing_is_queued(self):
        with self.captureOnCommitCallbacks(execute=True):
            fire(self.objects, 'DB-PROD-01')
        self.assertEqual(self.queue.count, 0)


def _calls(redis, command):
    return redis.info('commandstats').get(f'cmdstat_{command}', {}).get('calls', 0)


class StaleUpdateTest(TestCase):
    def test_an_update_that_runs_after_resolution_is_not_sent(self):
        objects = build(DATABASE_OUTAGE)
        with WebhookServer() as server, override_settings(BUSINESS_APP_NOTIFICATION_WEBHOOKS=[server.url]):
            event = fire(objects, 'DB-PROD-01')
            event.status = 'ok'
            event.save()
            incident = Incident.objects.get()
            self.assertEqual(incident.status, 'resolved')
            self.assertEqual(notifications.send_notification(incident.pk, 'updated', server.url), 'superseded')
            self.assertEqual(notifications.send_notification(incident.pk, 'resolved', server.url), 200)
        self.assertEqual([payload['action'] for payload in server.received], ['resolved'])


class DuplicateJobTest(TestCase):
    """A notification job in the queue twice (redis-py retried the enqueue after a slow answer) is sent once; one
    the webhook did not take is sent by its retry."""

    def setUp(self):
        self.objects = build(DATABASE_OUTAGE)
        self.queue = django_rq.get_queue(notifications.QUEUE)
        self.queue.empty()
        self.addCleanup(self.queue.empty)

    def queued(self, url):
        with override_settings(BUSINESS_APP_NOTIFICATION_WEBHOOKS=[url]), self.captureOnCommitCallbacks(execute=True):
            fire(self.objects, 'DB-PROD-01')
        (job,) = self.queue.get_jobs()
        return job

    def test_a_job_queued_twice_is_sent_once(self):
        with WebhookServer() as server, override_settings(BUSINESS_APP_NOTIFICATION_WEBHOOKS=[server.url]):
            job = self.queued(server.url)
            self.queue.connection.rpush(self.queue.key, job.id)  # what the retried enqueue leaves behind
            self.assertEqual(self.queue.job_ids, [job.id, job.id])
            SimpleWorker([self.queue], connection=self.queue.connection).work(burst=True)
        self.assertEqual([payload['action'] for payload in server.received], ['created'])
        self.assertEqual(self.queue.job_ids, [])

    def test_a_notification_the_webhook_refused_is_sent_by_the_retry(self):
        with WebhookServer('fail') as server, override_settings(BUSINESS_APP_NOTIFICATION_WEBHOOKS=[server.url]):
            job = self.queued(server.url)
            with self.assertRaises(notifications.NotificationError):
                job.perform()
            server.behaviour = 'ok'
            self.assertEqual(job.perform(), 200)
            self.assertEqual(job.perform(), 'duplicate')
        self.assertEqual([payload['action'] for payload in server.received], ['created', 'created'])

    def test_a_run_that_died_while_sending_leaves_the_notification_to_a_later_retry(self):
        with WebhookServer() as server, override_settings(BUSINESS_APP_NOTIFICATION_WEBHOOKS=[server.url]):
            job = self.queued(server.url)
            # What a run killed while it waited for the webhook leaves behind: its claim, for a short while.
            key = f'business-application:notification-sent:{job.id}:{job.meta["nonce"]}'
            self.queue.connection.set(key, 'sending', ex=1)
            with self.assertRaisesMessage(notifications.NotificationError, 'another run'):
                job.perform()  # RQ retries it later
            self.assertEqual(server.received, [])
            time.sleep(1.2)
            self.assertEqual(job.perform(), 200)
            self.assertEqual(self.queue.connection.get(key), b'sent')
        self.assertEqual([payload['action'] for payload in server.received], ['created'])
