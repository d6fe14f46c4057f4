"""The operator pages beyond NetBox's generic views: the incident page's story and picture, its actions, the service
page's map, the device/VM/cluster tab, and query counts that do not grow with the size of an incident or a map."""

import datetime

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from users.models import ObjectPermission
from utilities.testing import TestCase
from utilities.testing.utils import create_test_device, create_test_virtualmachine, disable_warnings
from virtualization.models import Cluster, ClusterType

from business_application.models import (
    BusinessApplication,
    Event,
    Incident,
    IncidentEvent,
    IncidentTimelineEntry,
    ServiceDependency,
    TechnicalService,
)
from business_application.services.graph_loader import forget_map
from business_application.ui import svg

UTC = datetime.UTC
T0 = datetime.datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
NO_CORRELATION = override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
XSS = '<script>alert("pwned")</script>'
XSS_ESCAPED = '&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt;'


def url(name, **kwargs):
    return reverse(f'plugins:business_application:{name}', kwargs=kwargs)


class SvgTestCase(TestCase):
    """The picture itself: text escaped, columns summarised beyond the limit, edges to hidden nodes kept."""

    def test_text_is_escaped_and_nothing_external(self):
        nodes = [
            svg.Node(key=1, name=XSS, kind='device', layer=0, state='failing', url='/x/?a=1&b="2"'),
            svg.Node(key=2, name='checkout', kind='service', layer=1, state='down'),
        ]
        picture = svg.render(nodes, [svg.Edge(1, 2)], title=XSS)
        assert XSS not in picture.svg
        assert '&lt;script&gt;' in picture.svg
        assert 'href="/x/?a=1&amp;b=&quot;2&quot;"' in picture.svg
        assert '<script' not in picture.svg
        assert 'http://' not in picture.svg.replace('xmlns="http://www.w3.org/2000/svg"', '')
        assert picture.svg.count('marker-end=') == 1

    def test_columns_are_summarised(self):
        nodes = [svg.Node(key=0, name='core-switch', kind='device', layer=0, state='failing')]
        nodes += [svg.Node(key=i, name=f'svc-{i}', kind='service', layer=1, state='down') for i in range(1, 426)]
        edges = [svg.Edge(0, i) for i in range(1, 426)]
        picture = svg.render(nodes, edges, title='big', per_layer=12)
        assert picture.shown == 12
        assert picture.hidden == 414
        assert '+ 414 more services' in picture.svg
        assert picture.svg.count('class="ba-node') == 13  # 12 boxes and the summary
        # 11 edges to shown services and one to the summary box, however many services it stands for
        assert picture.svg.count('marker-end=') == 12


class MapFixture:
    """web-01 runs checkout-api, which depends on payments-db; checkout-api supports the SHOP application."""

    @classmethod
    def make_map(cls):
        cls.web = create_test_device('web-01')
        cls.checkout = TechnicalService.objects.create(name='checkout-api')
        cls.payments = TechnicalService.objects.create(name='payments-db')
        cls.shop = BusinessApplication.objects.create(appcode='SHOP', name='Shop')
        cls.checkout.devices.add(cls.web)
        cls.checkout.business_apps.add(cls.shop)
        ServiceDependency.objects.create(name='pay', upstream_service=cls.payments, downstream_service=cls.checkout)

    @staticmethod
    def event(obj, message, dedup):
        return Event.objects.create(
            message=message,
            content_type=ContentType.objects.get_for_model(obj),
            object_id=obj.pk,
            dedup_id=dedup,
            criticallity='critical',
            last_seen_at=T0,
        )

    @staticmethod
    def member(incident, event, **fields):
        fields.setdefault('joined_at', T0)
        fields.setdefault('last_activity_at', T0)
        return IncidentEvent.objects.create(incident=incident, event=event, **fields)


@NO_CORRELATION
class IncidentPageTestCase(MapFixture, TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.make_map()
        cls.root = cls.event(cls.web, 'web-01 unreachable', 'root')
        cls.db_event = cls.event(cls.payments, XSS, 'db')
        cls.incident = Incident.objects.create(
            title='Checkout down',
            status='new',
            severity='critical',
            detected_at=T0,
            root_cause='device:web-01',
            root_cause_event=cls.root,
            blast_radius={
                'down': [{'type': 'service', 'id': cls.checkout.pk, 'name': 'checkout-api'}],
                'degraded': [{'type': 'app', 'id': cls.shop.pk, 'name': 'SHOP'}],
                'capped': False,
            },
        )
        cls.incident.affected_services.add(cls.checkout)
        cls.member(cls.incident, cls.root, opened_incident=True)
        cls.member(
            cls.incident,
            cls.db_event,
            score=0.72,
            link='dependency',
            factors={
                'link': 'dependency',
                'weight': 0.8,
                'time_decay': 0.9,
                'severity_match': 1.0,
                'direction': 'upstream',
            },
            path=['device:web-01', 'service:checkout-api', 'service:payments-db'],
        )
        IncidentTimelineEntry.objects.create(incident=cls.incident, time=T0, kind='opened', message='Opened by root')
        cls.other = Incident.objects.create(title='Other', status='investigating', detected_at=T0)

    def setUp(self):
        super().setUp()
        forget_map()

    def test_story_and_picture(self):
        self.add_permissions(
            'business_application.view_incident',
            'business_application.view_event',
            'dcim.view_device',
            'business_application.view_technicalservice',
            'business_application.view_businessapplication',
        )
        response = self.client.get(self.incident.get_absolute_url())
        self.assertHttpStatus(response, 200)
        content = response.content.decode()
        assert 'web-01 → runs → checkout-api → depends on → payments-db' in content
        assert 'dependency link (weight 0.80), time decay 0.90, severity match 1.00, upstream' in content
        assert 'first event: opened the incident' in content
        assert 'Opened by root' in content
        # The picture: the failing device and service, what they take down, the application degraded
        assert '<svg' in content
        assert 'id="ba-blast-radius"' in content
        picture = content[
            content.index('id="ba-blast-radius"') : content.index('</svg>', content.index('id="ba-blast-radius"'))
        ]
        for name in ('web-01', 'checkout-api', 'payments-db', 'SHOP'):
            assert f'>{name}</text>' in picture, name
        assert 'ba-failing' in picture
        assert 'ba-down' in picture
        assert 'ba-degraded' in picture
        assert f'href="{self.checkout.get_absolute_url()}"' in picture
        # Nothing the user typed is rendered raw
        assert XSS not in content
        assert XSS_ESCAPED in content
        # Affected applications are listed through the application list view
        assert f'id={self.shop.pk}' in content

    def test_picture_hides_names_the_user_may_not_view(self):
        self.add_permissions('business_application.view_incident', 'business_application.view_event')
        response = self.client.get(self.incident.get_absolute_url())
        content = response.content.decode()
        picture = content[content.index('id="ba-blast-radius"') :]
        picture = picture[: picture.index('</svg>')]
        assert '(hidden device)' in picture
        assert '(hidden service)' in picture
        assert '>checkout-api<' not in picture
        assert self.checkout.get_absolute_url() not in picture

    def test_root_cause_event_hidden_without_event_permission(self):
        self.add_permissions('business_application.view_incident')
        response = self.client.get(self.incident.get_absolute_url())
        self.assertContains(response, '(hidden event)')
        self.assertNotContains(response, self.root.message)
        self.assertNotContains(response, self.root.get_absolute_url())
        self.add_permissions('business_application.view_event')
        response = self.client.get(self.incident.get_absolute_url())
        self.assertNotContains(response, '(hidden event)')
        self.assertContains(response, self.root.get_absolute_url())

    def test_actions_hidden_without_change_permission(self):
        self.add_permissions('business_application.view_incident')
        response = self.client.get(self.incident.get_absolute_url())
        self.assertContains(response, 'You may not change this incident')
        self.assertNotContains(response, url('incident_resolve', pk=self.incident.pk))


@NO_CORRELATION
class IncidentActionTestCase(MapFixture, TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.make_map()
        cls.root = cls.event(cls.web, 'web-01 unreachable', 'root')
        cls.db_event = cls.event(cls.payments, 'payments-db slow', 'db')
        cls.incident = Incident.objects.create(title='Checkout down', status='new', detected_at=T0)
        cls.member(cls.incident, cls.root, opened_incident=True)
        cls.member(cls.incident, cls.db_event, score=0.7, link='dependency')
        cls.target = Incident.objects.create(title='Database trouble', status='investigating', detected_at=T0)

    def setUp(self):
        super().setUp()
        forget_map()

    def timeline(self, incident):
        return list(incident.timeline.values_list('kind', flat=True))

    def test_acknowledge(self):
        self.add_permissions('business_application.change_incident', 'business_application.view_incident')
        response = self.client.post(url('incident_acknowledge', pk=self.incident.pk))
        self.assertHttpStatus(response, 302)
        self.incident.refresh_from_db()
        assert self.incident.status == 'investigating'
        assert self.incident.commander == self.user.username
        assert self.timeline(self.incident) == ['acknowledged']
        assert self.incident.timeline.get().message == f'Acknowledged by {self.user.username}'

    def test_actions_notify_webhooks(self):
        self.add_permissions('business_application.change_incident', 'business_application.view_incident')
        hook = override_settings(BUSINESS_APP_NOTIFICATION_WEBHOOKS=['http://127.0.0.1:9/never-called'])
        with hook, self.captureOnCommitCallbacks(execute=False) as callbacks:
            self.client.post(url('incident_resolve', pk=self.incident.pk))
        notifications = [c for c in callbacks if getattr(c, '__module__', '') == 'business_application.notifications']
        assert len(notifications) == 1

    def test_escaped_in_the_move_form(self):
        self.add_permissions(
            'business_application.change_incident',
            'business_application.view_incident',
            'business_application.view_event',
        )
        self.db_event.message = XSS
        self.db_event.save()
        Incident.objects.filter(pk=self.target.pk).update(title=XSS)
        response = self.client.get(self.incident.get_absolute_url())
        self.assertContains(response, 'id="ba-move-event"')
        self.assertNotContains(response, XSS)
        self.assertContains(response, '&lt;script&gt;')

    def test_resolve(self):
        self.add_permissions('business_application.change_incident', 'business_application.view_incident')
        self.assertHttpStatus(self.client.post(url('incident_resolve', pk=self.incident.pk)), 302)
        self.incident.refresh_from_db()
        assert self.incident.status == 'resolved'
        assert self.incident.resolved_at is not None
        assert self.timeline(self.incident) == ['resolved']
        # Resolving twice is refused, naming the field
        response = self.client.post(url('incident_resolve', pk=self.incident.pk))
        self.assertHttpStatus(response, 400)
        assert response.content.decode().startswith('status:')

    def test_move_event(self):
        self.add_permissions(
            'business_application.change_incident',
            'business_application.view_incident',
            'business_application.view_event',
        )
        response = self.client.post(
            url('incident_move_event', pk=self.incident.pk), {'event': self.db_event.pk, 'target': self.target.pk}
        )
        self.assertHttpStatus(response, 302)
        assert list(self.target.memberships.values_list('event_id', flat=True)) == [self.db_event.pk]
        assert list(self.incident.memberships.values_list('event_id', flat=True)) == [self.root.pk]
        # Neither incident had a decided root cause: the recompute names one for each
        assert self.timeline(self.incident) == ['moved-out', 'root_cause']
        assert self.timeline(self.target) == ['moved-in', 'root_cause']

    def test_move_recomputes_both_incidents(self):
        """Root cause, title, severity, affected services and blast radius follow the event at once, as a decision
        would write them, with timeline entries and change-log records."""
        from core.models import ObjectChange

        self.add_permissions(
            'business_application.change_incident',
            'business_application.view_incident',
            'business_application.view_event',
        )
        Incident.objects.filter(pk=self.incident.pk).update(
            severity='critical', root_cause_event=self.db_event, root_cause='service:payments-db', title='Old title'
        )
        self.incident.affected_services.add(self.checkout, self.payments)
        IncidentEvent.objects.filter(event=self.db_event).update(severity='critical')
        response = self.client.post(
            url('incident_move_event', pk=self.incident.pk), {'event': self.db_event.pk, 'target': self.target.pk}
        )
        self.assertHttpStatus(response, 302)

        source = Incident.objects.get(pk=self.incident.pk)
        assert source.root_cause_event_id == self.root.pk
        assert source.root_cause == 'device:web-01'
        assert source.title == 'Service disruption affecting checkout-api'
        assert source.severity == 'warning'
        assert set(source.affected_services.all()) == {self.checkout}
        assert 'payments-db' not in [item['name'] for item in source.blast_radius['down']]
        assert self.timeline(self.incident) == ['moved-out', 'root_cause', 'severity']
        assert source.timeline.get(kind='severity').message == 'Severity lowered from critical to warning'

        target = Incident.objects.get(pk=self.target.pk)
        assert target.root_cause_event_id == self.db_event.pk
        assert target.root_cause == 'service:payments-db'
        assert target.title == 'Service disruption affecting payments-db'
        assert target.severity == 'critical'
        assert set(target.affected_services.all()) == {self.payments}
        assert 'checkout-api' in [item['name'] for item in target.blast_radius['down']]
        assert self.timeline(self.target) == ['moved-in', 'root_cause', 'severity']

        changes = {c.changed_object_id: c for c in ObjectChange.objects.filter(action='update')}
        assert changes[source.pk].prechange_data['title'] == 'Old title'
        assert changes[source.pk].postchange_data['title'] == source.title
        assert changes[target.pk].postchange_data['severity'] == 'critical'

    def test_moving_every_event_out_clears_the_root_cause_and_resolves(self):
        self.add_permissions(
            'business_application.change_incident',
            'business_application.view_incident',
            'business_application.view_event',
        )
        for event in (self.db_event, self.root):
            response = self.client.post(
                url('incident_move_event', pk=self.incident.pk), {'event': event.pk, 'target': self.target.pk}
            )
            self.assertHttpStatus(response, 302)
        source = Incident.objects.get(pk=self.incident.pk)
        assert not source.memberships.exists()
        assert source.status == 'resolved'
        assert (source.root_cause_event_id, source.root_cause) == (None, '')
        assert self.target.memberships.count() == 2

    def test_move_refuses_bad_input_whole(self):
        self.add_permissions(
            'business_application.change_incident',
            'business_application.view_incident',
            'business_application.view_event',
        )
        move = url('incident_move_event', pk=self.incident.pk)
        cases = (
            ({'event': 'x', 'target': self.target.pk}, 'event:'),
            ({'event': self.db_event.pk, 'target': ''}, 'target:'),
            ({'event': self.db_event.pk, 'target': self.incident.pk}, 'target:'),
            ({'event': self.db_event.pk, 'target': 999999}, 'target:'),
            ({'event': 999999, 'target': self.target.pk}, 'event:'),
            ({'event': '\u00b2', 'target': self.target.pk}, 'event:'),  # a digit to str.isdigit, not to int()
            ({'event': self.db_event.pk, 'target': '9' * 5000}, 'target:'),
        )
        for data, field in cases:
            with self.subTest(data=data):
                response = self.client.post(move, data)
                self.assertHttpStatus(response, 400)
                assert response.content.decode().startswith(field)
        # A member of another incident is not this incident's to move
        other_event = self.event(self.checkout, 'checkout errors', 'other')
        self.member(self.target, other_event, score=0.5, link='service')
        response = self.client.post(
            url('incident_move_event', pk=self.incident.pk), {'event': other_event.pk, 'target': self.target.pk}
        )
        self.assertHttpStatus(response, 400)
        assert IncidentEvent.objects.get(event=other_event).incident_id == self.target.pk
        assert not IncidentTimelineEntry.objects.exists()

    def test_actions_are_in_the_change_log(self):
        from core.models import ObjectChange

        self.add_permissions('business_application.change_incident', 'business_application.view_incident')
        self.client.post(url('incident_acknowledge', pk=self.incident.pk))
        change = ObjectChange.objects.get(changed_object_id=self.incident.pk, action='update')
        assert change.prechange_data['status'] == 'new'
        assert change.postchange_data['status'] == 'investigating'

    def test_an_action_may_not_move_an_incident_out_of_the_users_scope(self):
        self.add_permissions('business_application.view_incident')
        permission = ObjectPermission.objects.create(
            name='change new incidents', actions=['change'], constraints={'status': 'new'}
        )
        permission.object_types.add(ContentType.objects.get_for_model(Incident))
        permission.users.add(self.user)
        with disable_warnings('django.request'):
            for action in ('incident_resolve', 'incident_acknowledge'):
                with self.subTest(action=action):
                    self.assertHttpStatus(self.client.post(url(action, pk=self.incident.pk)), 403)
        self.incident.refresh_from_db()
        assert self.incident.status == 'new'
        assert self.timeline(self.incident) == []

    def test_moving_the_last_event_out_resolves_the_emptied_incident(self):
        self.add_permissions(
            'business_application.change_incident',
            'business_application.view_incident',
            'business_application.view_event',
        )
        move = url('incident_move_event', pk=self.incident.pk)
        for event in (self.db_event, self.root):
            self.assertHttpStatus(self.client.post(move, {'event': event.pk, 'target': self.target.pk}), 302)
        self.incident.refresh_from_db()
        assert self.incident.status == 'resolved'
        assert self.timeline(self.incident) == ['moved-out', 'root_cause', 'moved-out', 'resolved']

    def test_permissions(self):
        resolve = url('incident_resolve', pk=self.incident.pk)
        # Without the change permission: forbidden
        self.add_permissions('business_application.view_incident')
        with disable_warnings('django.request'):
            self.assertHttpStatus(self.client.post(resolve), 403)
        # With it, but constrained to another incident: not found, and nothing changed
        permission = ObjectPermission.objects.create(
            name='change the other', actions=['change'], constraints={'pk': self.target.pk}
        )
        permission.object_types.add(ContentType.objects.get_for_model(Incident))
        permission.users.add(self.user)
        with disable_warnings('django.request'):
            self.assertHttpStatus(self.client.post(resolve), 404)
            # Moving into an incident one may change, out of one one may not: refused too
            response = self.client.post(
                url('incident_move_event', pk=self.incident.pk), {'event': self.db_event.pk, 'target': self.target.pk}
            )
            self.assertHttpStatus(response, 404)
        self.incident.refresh_from_db()
        assert self.incident.status == 'new'
        # GET does nothing
        self.add_permissions('business_application.change_incident')
        with disable_warnings('django.request'):
            self.assertHttpStatus(self.client.get(resolve), 405)
        # Anonymous users are sent to log in
        self.client.logout()
        response = self.client.post(resolve)
        self.assertHttpStatus(response, 302)
        assert '/login/' in response['Location']

    def test_actions_take_the_correlators_locks(self):
        """The locks of the incidents' map components, the same (namespace, key) pairs a decision takes."""
        from django.db import transaction

        from business_application.services.graph_loader import current_map
        from business_application.services.incident_service import LOCK_NAMESPACE, lock_key
        from business_application.ui.actions import lock_incidents

        service_map = current_map()
        rows = Event.objects.filter(pk__in=[self.root.pk, self.db_event.pk]).values(
            'content_type_id', 'object_id', 'unmapped_label'
        )
        expected = {lock_key(service_map, row) for row in rows}
        with transaction.atomic():
            locked = lock_incidents([self.incident.pk])
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT objid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s"
                    ' AND pid = pg_backend_pid()',
                    [LOCK_NAMESPACE],
                )
                held = {row[0] for row in cursor.fetchall()}
        assert set(locked) == {self.incident.pk}
        assert {key & 0xFFFFFFFF for key in expected} <= held

    def test_csrf_is_required(self):
        self.add_permissions('business_application.change_incident', 'business_application.view_incident')
        client = Client(enforce_csrf_checks=True)
        client.force_login(self.user)
        with disable_warnings('django.security.csrf'):
            self.assertHttpStatus(client.post(url('incident_resolve', pk=self.incident.pk)), 403)
        self.incident.refresh_from_db()
        assert self.incident.status == 'new'


@NO_CORRELATION
class ServicePageTestCase(MapFixture, TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.make_map()
        cls.evil = TechnicalService.objects.create(name=XSS)
        ServiceDependency.objects.create(name='evil', upstream_service=cls.checkout, downstream_service=cls.evil)
        cls.incident = Incident.objects.create(
            title='Payments down',
            status='investigating',
            detected_at=T0,
            blast_radius={'down': [{'type': 'service', 'id': cls.evil.pk, 'name': 'evil'}]},
        )
        cls.incident.affected_services.add(cls.checkout)

    def setUp(self):
        super().setUp()
        forget_map()

    def view_all(self):
        self.add_permissions(
            'business_application.view_technicalservice',
            'dcim.view_device',
            'business_application.view_businessapplication',
            'business_application.view_incident',
            'business_application.view_event',
        )

    def test_map_around_the_service(self):
        self.view_all()
        response = self.client.get(self.checkout.get_absolute_url())
        self.assertHttpStatus(response, 200)
        content = response.content.decode()
        picture = content[content.index('id="ba-service-map"') :]
        picture = picture[: picture.index('</svg>')]
        for name in ('web-01', 'payments-db', 'checkout-api', 'SHOP'):
            assert f'>{name}</text>' in picture, name
        assert 'Upstream (depends on)' in picture
        assert 'Downstream (depended on by)' in picture
        assert XSS not in content
        assert '&lt;script&gt;' in picture
        assert 'ba-down' in picture  # the open incident has it down
        # Open incidents and recent events load through their list views, filtered by this service
        assert f'affected_service_id={self.checkout.pk}' in content
        assert f'technical_service_id={self.checkout.pk}' in content

    def test_depth(self):
        self.view_all()
        response = self.client.get(self.payments.get_absolute_url() + '?depth=1')
        self.assertHttpStatus(response, 200)
        content = response.content.decode()
        picture = content[
            content.index('id="ba-service-map"') : content.index('</svg>', content.index('ba-service-map'))
        ]
        assert '>checkout-api</text>' in picture
        assert 'SHOP' not in picture  # two steps away
        for bad in ('0', '6', 'abc', '-1', '2.5', '\u00b2', '9' * 5000):
            with self.subTest(depth=bad):
                response = self.client.get(self.payments.get_absolute_url() + f'?depth={bad}')
                self.assertHttpStatus(response, 400)
                assert response.content.decode().startswith('depth: must be a whole number from 1 to 5')

    def test_permissions(self):
        with disable_warnings('django.request'):
            self.assertHttpStatus(self.client.get(self.checkout.get_absolute_url()), 403)
        self.add_permissions('business_application.view_technicalservice')
        response = self.client.get(self.checkout.get_absolute_url())
        self.assertContains(response, '(hidden device)')
        self.assertNotContains(response, '>web-01<')


@NO_CORRELATION
class ObjectTabTestCase(MapFixture, TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.make_map()
        cls.vm = create_test_virtualmachine('vm-01')
        cls.cluster = Cluster.objects.create(name='cl-01', type=ClusterType.objects.create(name='t', slug='t'))
        cls.incident = Incident.objects.create(title=XSS, status='new', detected_at=T0)
        for obj, dedup in ((cls.web, 'd'), (cls.vm, 'v'), (cls.cluster, 'c')):
            cls.member(cls.incident, cls.event(obj, f'{dedup} down', dedup), opened_incident=dedup == 'd')

    def test_tabs(self):
        self.add_permissions(
            'dcim.view_device',
            'virtualization.view_virtualmachine',
            'virtualization.view_cluster',
            'business_application.view_event',
            'business_application.view_incident',
        )
        for obj, name, filter_name in (
            (self.web, 'dcim:device_business_events', 'device_id'),
            (self.vm, 'virtualization:virtualmachine_business_events', 'virtual_machine_id'),
            (self.cluster, 'virtualization:cluster_business_events', 'cluster_id'),
        ):
            with self.subTest(tab=name):
                # The object's own page shows the tab; the tab loads both tables filtered by the object
                self.assertContains(self.client.get(obj.get_absolute_url()), reverse(name, kwargs={'pk': obj.pk}))
                response = self.client.get(reverse(name, kwargs={'pk': obj.pk}))
                self.assertHttpStatus(response, 200)
                self.assertContains(response, f'{filter_name}={obj.pk}')
                listed = self.client.get(
                    f'{url("incident_list")}?{filter_name}={obj.pk}', headers={'HX-Request': 'true'}
                )
                self.assertContains(listed, self.incident.get_absolute_url())
                self.assertNotContains(listed, XSS)

    def test_tab_needs_event_permission(self):
        self.add_permissions('dcim.view_device')
        tab = reverse('dcim:device_business_events', kwargs={'pk': self.web.pk})
        self.assertNotContains(self.client.get(self.web.get_absolute_url()), tab)
        other = create_test_device('web-02')
        self.add_permissions('business_application.view_event')
        permission = ObjectPermission.objects.create(name='one device', actions=['view'], constraints={'pk': other.pk})
        permission.object_types.add(ContentType.objects.get_for_model(other))
        permission.users.add(self.user)
        listed = self.client.get(f'{url("incident_list")}?device_id={self.web.pk}', headers={'HX-Request': 'true'})
        self.assertHttpStatus(listed, 403)  # incidents need their own permission


@NO_CORRELATION
class QueryCountTestCase(MapFixture, TestCase):
    """A page costs the same number of queries for 5 members as for 200, and for a small or a big map."""

    @classmethod
    def setUpTestData(cls):
        cls.make_map()
        cls.switch = create_test_device('core-switch')
        cls.payments.devices.add(cls.switch)  # both pages then show a device, services and an application
        services = TechnicalService.objects.bulk_create(TechnicalService(name=f'svc-{i:03d}') for i in range(200))
        service_type = ContentType.objects.get_for_model(TechnicalService)
        ServiceDependency.objects.bulk_create(
            ServiceDependency(name=f'dep-{i}', upstream_service=cls.payments, downstream_service=service)
            for i, service in enumerate(services)
        )
        events = Event.objects.bulk_create(
            Event(
                message=f'svc-{i:03d} failing',
                content_type=service_type,
                object_id=service.pk,
                dedup_id=f'e{i}',
                last_seen_at=T0,
            )
            for i, service in enumerate(services)
        )
        blast = {'down': [{'type': 'service', 'id': s.pk, 'name': s.name} for s in services], 'degraded': []}
        cls.small = Incident.objects.create(
            title='small', status='new', detected_at=T0, blast_radius={'down': blast['down'][:5], 'degraded': []}
        )
        cls.big = Incident.objects.create(title='big', status='new', detected_at=T0, blast_radius=blast)
        for incident, members in ((cls.small, events[:5]), (cls.big, events)):
            IncidentEvent.objects.bulk_create(
                IncidentEvent(
                    incident=incident,
                    event=event,
                    occurrence=1 if incident is cls.big else 2,
                    joined_at=T0,
                    last_activity_at=T0,
                    score=0.6,
                    link='dependency',
                    factors={'link': 'dependency', 'weight': 0.8},
                    path=['service:payments-db', f'service:{event.message.split()[0]}'],
                )
                for event in members
            )
            incident.affected_services.set(services[: len(members)])
            IncidentTimelineEntry.objects.bulk_create(
                IncidentTimelineEntry(incident=incident, time=T0, kind='joined', message='joined', event=event)
                for event in members
            )

    def setUp(self):
        super().setUp()
        forget_map()
        self.add_permissions(
            'business_application.view_incident',
            'business_application.view_event',
            'business_application.view_technicalservice',
            'dcim.view_device',
            'business_application.change_incident',
        )

    def queries(self, path):
        self.client.get(path)  # warm: the map snapshot and per-process caches
        with CaptureQueriesContext(connection) as captured:
            response = self.client.get(path)
        self.assertHttpStatus(response, 200)
        return len(captured), response.content.decode()

    def test_incident_page(self):
        self.client.get(self.big.get_absolute_url())  # both pages warm before either is counted
        small, _ = self.queries(self.small.get_absolute_url())
        big, content = self.queries(self.big.get_absolute_url())
        assert big == small
        assert '+ 189 more services' in content  # 200 down, 11 drawn with the summary in the twelfth row
        assert '+ 185 more' in content  # the list names 15

    def test_service_page(self):
        small, _ = self.queries(self.checkout.get_absolute_url())
        big, content = self.queries(self.payments.get_absolute_url() + '?depth=2')
        assert big == small
        assert 'more services' in content
