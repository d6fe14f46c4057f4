"""An event deleted before the worker job queued for it runs: the job ends, as a batch job does, and fails nothing.

A failed decision job stays in RQ's failed registry for a day and makes the health check unhealthy; a deleted
event leaves nothing to decide, so its job is not a failure (``process_events_job`` already says so).
"""

from business_application.models import Event, Incident

from .test_pending_firing import ASYNC, URL, AsyncSenderTestCase, group, queued_jobs, run


class DeletedBeforeJobTest(AsyncSenderTestCase):
    def post(self, hosts, status='firing'):
        with ASYNC, self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(URL, group(hosts, status), format='json')
        self.assertEqual(response.status_code, 200, response.content[:300])

    def test_the_job_of_one_deleted_event_ends_without_failing(self):
        self.post(['srv-0'])
        self.post(['srv-0'], 'resolved')
        Event.objects.get().delete()
        for job in queued_jobs(self.queue):
            self.assertEqual(job.func_name, 'business_application.jobs.process_event_job')
            self.assertEqual(run(job), 'deleted')
        self.assertFalse(Incident.objects.exists())

    def test_the_job_of_a_batch_whose_events_were_deleted_ends_without_failing(self):
        self.post(['srv-0', 'srv-1'])
        Event.objects.filter(dedup_id='HostDown-srv-0').delete()
        (job,) = queued_jobs(self.queue)
        self.assertEqual(run(job), 2)
        self.assertEqual(Incident.objects.get().memberships.get().event.dedup_id, 'HostDown-srv-1')
