"""The guide's automation endpoints and the process_incidents command, as the guide types them."""

import io
from datetime import timedelta

from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import TestCase, override_settings
from django.urls import reverse
from django.utils import timezone

from core.models import Job
from dcim.models import Device
from utilities.testing import APITestCase

from business_application.models import Event, Incident, IncidentEvent

from .maps import DATABASE_OUTAGE, build

API = 'plugins-api:business_application-api:'


def store_events(objects, *names, **fields):
    """Events stored while automation is off, so they wait unprocessed."""
    events = []
    with override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False):
        for number, name in enumerate(names):
            events.append(
                Event.objects.create(
                    **{
                        'message': f'{name} failing',
                        'status': 'triggered',
                        'criticallity': 'critical',
                        'dedup_id': f'{name}-{number}',
                        'content_type': ContentType.objects.get_for_model(Device),
                        'object_id': objects[f'device:{name}'].pk,
                        **fields,
                    }
                )
            )
    return events


def run(*args):
    out = io.StringIO()
    call_command('process_incidents', *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


class ProcessIncidentsCommandTest(TestCase):
    def setUp(self):
        self.objects = build(DATABASE_OUTAGE)

    def test_process_correlates_what_waited(self):
        store_events(self.objects, 'DB-PROD-01', 'WEB-APP-01')
        output = run('--mode=process', '--hours=24')
        self.assertIn('2 unprocessed events in the last 24 hours.', output)
        self.assertIn('Processed 2 of 2 events: 1 joined, 1 opened.', output)
        self.assertEqual(Incident.objects.get().memberships.count(), 2)
        self.assertIn('0 unprocessed events', run('--mode=process'))
        again = run('--mode=reprocess', '--hours=1', '--force-correlate', '--dry-run')
        self.assertIn('triggered events from the last 1 hour (including', again)

    def test_the_report_says_what_a_decision_that_changes_nothing_did(self):
        store_events(self.objects, 'MAIL-01', status='ok')  # a clear of an alert that never fired: nothing to do
        self.assertIn('Processed 1 of 1 events: 1 unchanged (nothing new to decide).', run('--mode=process'))

    def test_dry_run_says_what_would_happen_and_changes_nothing(self):
        store_events(self.objects, 'DB-PROD-01', 'WEB-APP-01')
        output = run('--mode=process', '--dry-run')
        self.assertIn('Would process 2 of 2 events: 1 joined, 1 opened.', output)
        self.assertIn('Dry run: nothing was changed.', output)
        self.assertEqual(Incident.objects.count(), 0)
        self.assertEqual(Event.objects.filter(processed_status='').count(), 2)

    def test_one_event_by_id(self):
        event = store_events(self.objects, 'DB-PROD-01')[0]
        output = run(f'--event-id={event.pk}')
        incident = Incident.objects.get()
        self.assertIn(f'Event {event.pk} is in incident #{incident.pk} "{incident.title}" (new)', output)
        with self.assertRaisesMessage(CommandError, 'no event with id 999999'):
            run('--event-id=999999')

    def test_bad_hours_and_misplaced_flags_fail_with_one_line(self):
        with self.assertRaisesMessage(CommandError, '--hours must be between'):
            run('--hours=0')
        with self.assertRaisesMessage(CommandError, '--force-correlate only applies'):
            run('--mode=process', '--force-correlate')
        with self.assertRaisesMessage(CommandError, 'cannot be combined with --mode=cleanup'):
            run('--mode=cleanup', '--event-id=1')

    def test_force_correlate_redecides_without_leaving_empty_open_incidents(self):
        store_events(self.objects, 'DB-PROD-01', 'WEB-APP-01')
        run('--mode=process')
        first = Incident.objects.get()
        with override_settings(BUSINESS_APP_CORRELATION_THRESHOLD=0.9):
            output = run('--mode=reprocess', '--hours=24', '--force-correlate')
        self.assertIn('Re-correlating 2 triggered events', output)
        first.refresh_from_db()
        self.assertEqual(first.status, 'closed')
        self.assertEqual(first.memberships.count(), 0)
        successor = Incident.objects.filter(status='new').order_by('pk').first()
        self.assertEqual(first.merged_into_id, successor.pk, 'the closed incident says where its events went')
        self.assertTrue(first.timeline.filter(kind='merged', data__into=successor.pk).exists())
        self.assertEqual(Incident.objects.filter(status='new').count(), 2)
        self.assertFalse(
            Incident.objects.filter(status__in=('new', 'investigating'), memberships__isnull=True).exists()
        )

    def test_reprocess_without_force_leaves_correlated_events_alone(self):
        store_events(self.objects, 'DB-PROD-01')
        run('--mode=process')
        output = run('--mode=reprocess')
        self.assertIn('Re-correlating 0 triggered events', output)
        self.assertEqual(IncidentEvent.objects.count(), 1)

    def test_cleanup_archives_old_resolved_automatic_incidents_only(self):
        old = timezone.now() - timedelta(days=10)
        auto = Incident.objects.create(title='auto', status='resolved', auto_created=True, resolved_at=old)
        manual = Incident.objects.create(title='by hand', status='resolved', auto_created=False, resolved_at=old)
        recent = Incident.objects.create(
            title='recent', status='resolved', auto_created=True, resolved_at=timezone.now()
        )
        still_open = Incident.objects.create(title='open', status='new', auto_created=True)
        self.assertIn(
            f'Would archive 1 automatic incidents resolved more than 168 hours ago: #{auto.pk}',
            run('--mode=cleanup', '--dry-run'),
        )
        self.assertIn('Archived 1', run('--mode=cleanup', '--hours=168'))
        statuses = dict(Incident.objects.values_list('title', 'status'))
        self.assertEqual(statuses, {'auto': 'closed', 'by hand': 'resolved', 'recent': 'resolved', 'open': 'new'})
        self.assertTrue(auto.timeline.filter(kind='archived').exists())
        del manual, recent, still_open


class AutomationAPITest(APITestCase):
    model = Event

    def setUp(self):
        super().setUp()
        self.objects = build(DATABASE_OUTAGE)

    def test_endpoints_refuse_anonymous_and_unpermitted_callers(self):
        for name, method in (
            ('automation-process-event', 'post'),
            ('automation-process-unprocessed', 'post'),
            ('automation-status', 'get'),
        ):
            url = reverse(API + name)
            self.assertEqual(getattr(self.client, method)(url, {}, format='json').status_code, 403, name)
            self.assertEqual(getattr(self.client, method)(url, {}, format='json', **self.header).status_code, 403, name)

    def test_process_event_as_the_guide_posts_it(self):
        self.add_permissions('business_application.change_event')
        event = store_events(self.objects, 'DB-PROD-01')[0]
        response = self.client.post(
            reverse(API + 'automation-process-event'), {'event_id': event.pk}, format='json', **self.header
        )
        self.assertEqual(response.status_code, 200, response.data)
        self.assertEqual(response.data['action'], 'opened')
        self.assertIsNone(response.data['incident_title'])  # the token may not view incidents
        database = self.objects['service:Database Service']
        self.assertEqual(Incident.objects.get().title_objects, [['service', database.pk, 'Database Service']])
        self.assertEqual(response.data['incident_id'], Incident.objects.get().pk)
        self.add_permissions('business_application.view_incident', 'business_application.view_technicalservice')
        again = self.client.post(
            reverse(API + 'automation-process-event'), {'event_id': event.pk}, format='json', **self.header
        )
        self.assertEqual(again.data['action'], 'updated')
        self.assertEqual(again.data['incident_title'], 'Service disruption affecting Database Service')
        self.assertEqual(Incident.objects.count(), 1)

    def test_process_event_rejects_bad_ids_with_the_field(self):
        self.add_permissions('business_application.change_event')
        url = reverse(API + 'automation-process-event')
        for body in ({}, {'event_id': 'abc'}, {'event_id': 0}, {'event_id': 999999}):
            response = self.client.post(url, body, format='json', **self.header)
            self.assertEqual(response.status_code, 400, body)
            self.assertIn('event_id', response.data)

    def test_process_unprocessed_hands_the_work_to_a_job(self):
        self.add_permissions('business_application.change_event')
        store_events(self.objects, 'DB-PROD-01', 'WEB-APP-01')
        url = reverse(API + 'automation-process-unprocessed')
        self.assertEqual(self.client.post(url, {'hours': 500}, format='json', **self.header).status_code, 400)
        response = self.client.post(url, {'hours': 24}, format='json', **self.header)
        self.assertEqual(response.status_code, 202, response.data)
        self.assertEqual(response.data['unprocessed_events_found'], 2)
        self.assertEqual(Incident.objects.count(), 0)
        job = Job.objects.get(pk=response.data['job_id'])
        from business_application.jobs import ProcessUnprocessedEventsJob

        ProcessUnprocessedEventsJob.handle(job, hours=24)
        job.refresh_from_db()
        self.assertEqual(job.status, 'completed', job.data)
        self.assertEqual(job.data['actions'], {'opened': 1, 'joined': 1})
        self.assertEqual(Incident.objects.count(), 1)

    def test_status_reports_configuration_and_counts(self):
        self.add_permissions('business_application.view_event', 'business_application.view_incident')
        store_events(self.objects, 'DB-PROD-01')
        response = self.client.get(reverse(API + 'automation-status'), **self.header)
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.data['automation_enabled'])
        self.assertEqual(response.data['unprocessed_events'], 1)
        self.assertEqual(response.data['engine']['backend'], 'rust')
        self.assertIn('depth', response.data['queue'])


class HealthCheckTest(TestCase):
    def test_the_guides_shell_snippet_reports_backend_queue_unprocessed_and_cycles(self):
        from business_application.config import check_incident_automation_health
        from business_application.models import ServiceDependency, TechnicalService

        objects = build(DATABASE_OUTAGE)
        store_events(objects, 'DB-PROD-01')
        db, web = (
            TechnicalService.objects.get(name='Database Service'),
            TechnicalService.objects.get(name='Web Service'),
        )
        ServiceDependency.objects.create(name='loop', upstream_service=web, downstream_service=db)
        health = check_incident_automation_health()
        self.assertFalse(health['healthy'])
        self.assertTrue(health['configuration_valid'])
        self.assertEqual(health['engine']['backend'], 'rust')
        self.assertEqual(health['unprocessed_events'], 1)
        self.assertEqual(health['dependency_cycles'], [['Database Service', 'Web Service']])
        self.assertIn('1 events are waiting to be processed', health['issues'])

    @override_settings(BUSINESS_APP_CORRELATION_THRESHOLD=3)
    def test_a_bad_setting_is_reported_not_raised(self):
        from business_application.config import check_incident_automation_health

        health = check_incident_automation_health()
        self.assertFalse(health['configuration_valid'])
        self.assertIn('BUSINESS_APP_CORRELATION_THRESHOLD must be between 0 and 1', health['issues'][0])
