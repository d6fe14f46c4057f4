"""A flap within the reopen window reopens the same incident as it was: acknowledged stays acknowledged, the
commander is kept, and the timeline says who had resolved it and what fired again (docs/correlation.md)."""

from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from django.utils import timezone

from dcim.models import Device
from utilities.testing import TestCase

from business_application.models import Event, EventCrit, EventStatus, Incident

from .maps import DATABASE_OUTAGE, build


def url(name, pk):
    return reverse(f'plugins:business_application:{name}', kwargs={'pk': pk})


class FlapAfterResolveTest(TestCase):
    def setUp(self):
        super().setUp()
        self.objects = build(DATABASE_OUTAGE)
        self.add_permissions('business_application.view_incident', 'business_application.change_incident')
        self.event = Event.objects.create(
            message='db down',
            status=EventStatus.TRIGGERED,
            criticallity=EventCrit.CRITICAL,
            content_type=ContentType.objects.get_for_model(Device),
            object_id=self.objects['device:DB-PROD-01'].pk,
            dedup_id='db-1',
            last_seen_at=timezone.now(),
        )
        self.incident = self.event.incidents.get()
        Incident.objects.filter(pk=self.incident.pk).update(commander='')

    def flap(self):
        for status in (EventStatus.OK, EventStatus.TRIGGERED):
            self.event.status = status
            self.event.last_seen_at = timezone.now()
            self.event.save()
        self.incident.refresh_from_db()

    def test_a_flap_reopens_a_hand_resolved_incident_as_it_was(self):
        self.assertHttpStatus(self.client.post(url('incident_acknowledge', self.incident.pk)), 302)
        self.assertHttpStatus(self.client.post(url('incident_resolve', self.incident.pk)), 302)
        self.incident.refresh_from_db()
        assert self.incident.status == 'resolved'

        self.flap()
        assert self.incident.status == 'investigating'
        assert self.incident.commander == self.user.username
        assert self.incident.resolved_at is None
        assert Incident.objects.count() == 1
        reopened = self.incident.timeline.filter(kind='reopened').get()
        assert reopened.message == f'Reopened: device:DB-PROD-01 fired again after {self.user.username} resolved it'
        assert reopened.event_id == self.event.pk

    def test_a_flap_reopens_an_incident_resolved_by_an_edit_as_it_was(self):
        Incident.objects.filter(pk=self.incident.pk).update(status='identified')
        self.add_permissions('business_application.add_incident')
        self.incident.refresh_from_db()
        data = {
            'title': self.incident.title,
            'status': 'resolved',
            'severity': self.incident.severity,
            'commander': 'alice',
            'resolved_at': timezone.now().strftime('%Y-%m-%d %H:%M:%S'),
        }
        self.assertHttpStatus(self.client.post(url('incident_edit', self.incident.pk), data), 302)
        self.incident.refresh_from_db()
        assert self.incident.status == 'resolved'

        self.flap()
        assert self.incident.status == 'identified'
        assert self.incident.commander == 'alice'
        reopened = self.incident.timeline.filter(kind='reopened').get()
        assert reopened.message.endswith(f'after {self.user.username} resolved it')

    def test_an_edit_that_resolves_without_a_time_still_opens_the_reopen_window(self):
        """The form leaves ``resolved_at`` empty: the incident counts as resolved when it was last changed."""
        Incident.objects.filter(pk=self.incident.pk).update(status='identified')
        data = {'title': self.incident.title, 'status': 'resolved', 'severity': self.incident.severity}
        self.assertHttpStatus(self.client.post(url('incident_edit', self.incident.pk), data), 302)
        self.incident.refresh_from_db()
        assert (self.incident.status, self.incident.resolved_at) == ('resolved', None)

        self.flap()
        assert Incident.objects.count() == 1
        assert self.incident.status == 'identified'
        assert self.incident.timeline.filter(kind='reopened').count() == 1

    def test_a_flap_after_every_member_cleared_keeps_the_acknowledgement(self):
        self.assertHttpStatus(self.client.post(url('incident_acknowledge', self.incident.pk)), 302)
        self.event.status = EventStatus.OK
        self.event.save()
        self.incident.refresh_from_db()
        assert self.incident.status == 'resolved'
        assert self.incident.timeline.get(kind='resolved').data == {'previous_status': 'investigating'}

        self.event.status = EventStatus.TRIGGERED
        self.event.save()
        self.incident.refresh_from_db()
        assert self.incident.status == 'investigating'
        assert self.incident.timeline.get(kind='reopened').message == 'Reopened: device:DB-PROD-01 fired again'
