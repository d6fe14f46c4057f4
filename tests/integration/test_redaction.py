"""An incident's own texts (title, probable root cause, timeline) name devices and services; a user who may view
the incident but not those objects sees placeholders instead, on every surface, at a cost that does not grow with
the number of incidents shown."""

import datetime

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dcim.models import Device
from users.models import ObjectPermission
from utilities.testing import APITestCase, TestCase
from utilities.testing.utils import create_test_device

from business_application.models import (
    Event,
    Incident,
    IncidentEvent,
    IncidentTimelineEntry,
    ServiceDependency,
    TechnicalService,
)
from business_application.services.graph_loader import forget_map

T0 = datetime.datetime(2026, 3, 1, 9, 0, tzinfo=datetime.UTC)
API = '/api/plugins/business-application/incidents/'
SECRET_NAMES = ('web-01', 'checkout-api')
JOINED = 'service:payments-db joined (score 0.72, dependency link via device:web-01 -> service:checkout-api)'


class RedactionFixture:
    """web-01 runs checkout-api, which depends on payments-db. The user may view incidents, the device named
    other-01 only, and the service payments-db only."""

    def make(self, incidents=1):
        self.web = create_test_device('web-01')
        create_test_device('other-01')
        checkout = TechnicalService.objects.create(name='checkout-api')
        payments = TechnicalService.objects.create(name='payments-db')
        checkout.devices.add(self.web)
        ServiceDependency.objects.create(name='pay', upstream_service=payments, downstream_service=checkout)
        for i in range(incidents):
            incident = Incident.objects.create(
                title='Service disruption affecting checkout-api',
                status='new',
                severity='critical',
                detected_at=T0,
                root_cause='device:web-01',
                title_objects=[['service', checkout.pk, 'checkout-api']],  # as the correlator writes it
                description=f'incident {i}',
                blast_radius={
                    'down': [
                        {'type': 'service', 'id': checkout.pk, 'name': 'checkout-api'},
                        {'type': 'service', 'id': payments.pk, 'name': 'payments-db'},
                    ],
                    'degraded': [],
                    'capped': False,
                },
            )
            incident.affected_services.add(checkout, payments)
            event = Event.objects.create(message='slow', dedup_id=f'slow-{i}', unmapped_label='host:x', last_seen_at=T0)
            IncidentEvent.objects.create(
                incident=incident,
                event=event,
                joined_at=T0,
                last_activity_at=T0,
                path=['device:web-01', 'service:checkout-api', 'service:payments-db'],
            )
            IncidentTimelineEntry.objects.create(
                incident=incident, time=T0, kind='opened', message='Opened by device:web-01'
            )
            IncidentTimelineEntry.objects.create(incident=incident, time=T0, kind='joined', message=JOINED)
        forget_map()
        self.add_permissions('business_application.view_incident')
        for model, name in ((Device, 'other-01'), (TechnicalService, 'payments-db')):
            permission = ObjectPermission.objects.create(
                name=f'view {name}', actions=['view'], constraints={'name': name}
            )
            permission.object_types.add(ContentType.objects.get_for_model(model))
            permission.users.add(self.user)

    def assert_redacted(self, text):
        for name in SECRET_NAMES:
            assert name not in text, name
        assert '(hidden device)' in text or '(hidden service)' in text


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class RedactedPagesTest(RedactionFixture, TestCase):
    def test_incident_page_list_and_export(self):
        self.make()
        self.add_permissions('business_application.view_event')  # the member table shows the events' paths
        incident = Incident.objects.get()
        page = self.client.get(incident.get_absolute_url())
        self.assertHttpStatus(page, 200)
        content = page.content.decode()
        self.assert_redacted(content)
        assert 'Service disruption affecting (hidden service)' in content
        assert 'Opened by (hidden device)' in content
        assert 'service:payments-db joined' in content
        assert 'via (hidden device) -&gt; (hidden service))' in content
        # The member's path:
        assert '(hidden device) → runs → (hidden service) → depends on → payments-db' in content

        listing = self.client.get(reverse('plugins:business_application:incident_list'))
        self.assertHttpStatus(listing, 200)
        self.assert_redacted(listing.content.decode())

        export = self.client.get(reverse('plugins:business_application:incident_list'), {'export': 'table'})
        self.assertHttpStatus(export, 200)
        self.assert_redacted(export.content.decode())

        # Stored data is untouched, and a user who may view everything sees the names
        incident.refresh_from_db()
        assert incident.title == 'Service disruption affecting checkout-api'
        self.add_permissions('dcim.view_device', 'business_application.view_technicalservice')
        content = self.client.get(incident.get_absolute_url()).content.decode()
        assert 'Service disruption affecting checkout-api' in content
        assert 'Opened by device:web-01' in content

    def test_the_list_costs_the_same_queries_for_one_or_many_incidents(self):
        self.make(incidents=1)
        url = reverse('plugins:business_application:incident_list')
        self.client.get(url)
        with CaptureQueriesContext(connection) as one:
            self.client.get(url)
        for _ in range(5):
            Incident.objects.create(title='Service disruption affecting checkout-api', root_cause='device:web-01')
        with CaptureQueriesContext(connection) as six:
            response = self.client.get(url)
        self.assert_redacted(response.content.decode())
        assert len(one) == len(six)


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class RedactedAPITest(RedactionFixture, APITestCase):
    def make(self, incidents=1):
        super().make(incidents)
        self.add_permissions('business_application.view_event')  # members are listed only with their events

    def test_list_and_detail(self):
        self.make(incidents=3)
        with CaptureQueriesContext(connection) as three:
            response = self.client.get(API, **self.header)
        self.assertHttpStatus(response, 200)
        for row in response.data['results']:
            assert row['title'] == 'Service disruption affecting (hidden service)'
            assert row['display'] == row['title']
            assert row['root_cause'] == '(hidden device)'
            assert [item['name'] for item in row['blast_radius']['down']] == ['(hidden service)', 'payments-db']
            assert row['members'][0]['path'] == ['(hidden device)', '(hidden service)', 'service:payments-db']
            assert [service['name'] for service in row['affected_services']] == ['payments-db']
            self.assert_redacted(str(row))
        pk = response.data['results'][0]['id']
        detail = self.client.get(f'{API}{pk}/', **self.header)
        assert detail.data['root_cause'] == '(hidden device)'
        assert [service['name'] for service in detail.data['affected_services']] == ['payments-db']
        self.assert_redacted(str(detail.data))
        assert Incident.objects.get(pk=pk).root_cause == 'device:web-01'

        Incident.objects.create(title='Service disruption affecting checkout-api', root_cause='device:web-01')
        Incident.objects.create(title='Service disruption affecting checkout-api', root_cause='device:web-01')
        with CaptureQueriesContext(connection) as five:
            response = self.client.get(API, **self.header)
        self.assertEqual(len(response.data['results']), 5)
        self.assertEqual(len(three), len(five))

    def test_members_paged_and_omitted(self):
        """``members/`` pages one incident's members, oldest first, with the same placeholders; ``?omit=members``
        leaves them out of the incident, at a cost that does not grow with their number."""
        self.make(incidents=2)
        first, second = Incident.objects.order_by('pk')
        for i in range(1, 5):
            event = Event.objects.create(message='slow', dedup_id=f'more-{i}', unmapped_label='host:x', last_seen_at=T0)
            IncidentEvent.objects.create(
                incident=first,
                event=event,
                joined_at=T0 + datetime.timedelta(minutes=i),
                last_activity_at=T0,
                path=['service:payments-db', 'service:checkout-api', 'device:web-01'][: 1 + i % 3],
            )
        expected = list(first.memberships.order_by('joined_at', 'pk').values_list('event_id', flat=True))

        with CaptureQueriesContext(connection) as captured:
            self.client.get(f'{API}{first.pk}/members/?limit=2', **self.header)
        unpaged = [
            q['sql']
            for q in captured
            if 'FROM "business_application_incidentevent"' in q['sql']
            and 'LIMIT' not in q['sql']
            and 'COUNT(' not in q['sql']
        ]
        assert not unpaged, unpaged

        seen, labels, url = [], set(), f'{API}{first.pk}/members/?limit=2'
        while url:
            page = self.client.get(url, **self.header)
            self.assertHttpStatus(page, 200)
            assert page.data['count'] == 5
            assert len(page.data['results']) <= 2
            for member in page.data['results']:
                seen.append(member['event']['id'])
                assert set(member) >= {'event', 'joined_at', 'score', 'link', 'factors', 'path'}
                shown = ('(hidden device)', '(hidden service)', 'service:payments-db')
                assert all(label in shown for label in member['path'])
                labels.update(member['path'])
            for name in SECRET_NAMES:
                assert name not in str(page.data), name
            url = page.data['next']
        assert seen == expected
        assert labels == {'(hidden device)', '(hidden service)', 'service:payments-db'}, labels

        detail = self.client.get(f'{API}{first.pk}/?omit=members', **self.header)
        assert 'members' not in detail.data
        assert detail.data['event_count'] == 5
        assert detail.data['root_cause'] == '(hidden device)'
        with CaptureQueriesContext(connection) as captured:
            self.client.get(f'{API}{first.pk}/?omit=members', **self.header)
        members_read = [q['sql'] for q in captured if 'FROM "business_application_incidentevent"' in q['sql']]
        assert not members_read, members_read
        listed = self.client.get(f'{API}?omit=members', **self.header)
        assert all('members' not in row for row in listed.data['results'])
        assert self.client.get(f'{API}{second.pk}/members/', **self.header).data['count'] == 1

    def test_members_only_with_events_the_user_may_view(self):
        """As on the incident page, a member is listed only to a user who may view its event."""
        RedactionFixture.make(self)  # no permission on events
        incident = Incident.objects.get()
        assert self.client.get(f'{API}{incident.pk}/', **self.header).data['members'] == []
        assert self.client.get(f'{API}{incident.pk}/members/', **self.header).data['count'] == 0
        shown = Event.objects.create(message='shown', dedup_id='shown', unmapped_label='host:y', last_seen_at=T0)
        IncidentEvent.objects.create(incident=incident, event=shown, joined_at=T0, last_activity_at=T0, path=[])
        permission = ObjectPermission.objects.create(
            name='view shown', actions=['view'], constraints={'dedup_id': 'shown'}
        )
        permission.object_types.add(ContentType.objects.get_for_model(Event))
        permission.users.add(self.user)
        members = self.client.get(f'{API}{incident.pk}/', **self.header).data['members']
        assert [member['event']['id'] for member in members] == [shown.pk]
        listed = self.client.get(API, **self.header).data['results'][0]['members']
        assert [member['event']['id'] for member in listed] == [shown.pk]
        page = self.client.get(f'{API}{incident.pk}/members/', **self.header).data
        assert [member['event']['id'] for member in page['results']] == [shown.pk]
        assert 'slow' not in str(page)

    def test_fields_and_omit_cannot_skip_redaction(self):
        """Whatever fields a request picks or leaves out, no field it gets names a hidden object."""
        self.make(incidents=1)
        pk = Incident.objects.get().pk
        for query in (
            'fields=id,members',
            'fields=id,blast_radius',
            'omit=title,display,root_cause,affected_services',
            'brief=1',
        ):
            for path in (f'{API}{pk}/?{query}', f'{API}?{query}'):
                response = self.client.get(path, **self.header)
                self.assertHttpStatus(response, 200)
                text = str(response.data)
                for name in SECRET_NAMES:
                    assert name not in text, (path, name, text[:300])


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class RedactedSurroundingsTest(RedactionFixture, TestCase):
    """What NetBox renders around an incident (its tabs' and forms' headings, links to it, the global search), the
    list's other columns and the move form show no hidden name either."""

    def test_tabs_and_forms(self):
        self.make()
        self.add_permissions(
            'business_application.change_incident',
            'business_application.delete_incident',
            'core.view_objectchange',
            'extras.view_journalentry',
        )
        incident = Incident.objects.get()
        for tab in ('changelog', 'journal', 'edit', 'delete'):
            response = self.client.get(reverse(f'plugins:business_application:incident_{tab}', args=[incident.pk]))
            self.assertHttpStatus(response, 200)
            self.assert_redacted(response.content.decode())
        # A link to the incident from another object's page
        merged = Incident.objects.create(title='db down', status='merged', merged_into=incident)
        content = self.client.get(merged.get_absolute_url()).content.decode()
        assert 'Service disruption affecting (hidden service)' in content
        self.assert_redacted(content)

    def test_editing_keeps_the_texts_the_user_cannot_see(self):
        """The title and root cause are shown redacted and cannot be changed; the rest saves as usual."""
        self.make()
        self.add_permissions('business_application.change_incident')
        incident = Incident.objects.get()
        url = reverse('plugins:business_application:incident_edit', args=[incident.pk])
        html = self.client.get(url).content.decode()
        self.assert_redacted(html)
        shown = {
            'title': 'Service disruption affecting (hidden service)',
            'status': 'new',
            'severity': 'critical',
            'description': 'incident 0',
            'root_cause': '(hidden device)',
            'commander': '',
            'reporter': '',
            'detected_at': '2026-03-01 09:00:00',
        }
        data = {**shown, **{f'initial-{name}': value for name, value in shown.items()}}
        data.update(title='renamed', root_cause='guess', commander='alice')
        response = self.client.post(url, data)
        self.assertEqual(response.status_code, 302, response.content[:2000])
        incident.refresh_from_db()
        assert (incident.title, incident.root_cause, incident.commander) == (
            'Service disruption affecting checkout-api',
            'device:web-01',
            'alice',
        )
        # Who may view every object named edits both as usual
        self.add_permissions('dcim.view_device', 'business_application.view_technicalservice')
        html = self.client.get(url).content.decode()
        assert 'value="Service disruption affecting checkout-api"' in html
        data.update({'title': 'renamed', 'initial-title': 'Service disruption affecting checkout-api'})
        self.assertEqual(self.client.post(url, data).status_code, 302)
        incident.refresh_from_db()
        assert incident.title == 'renamed'

    def test_other_columns_and_the_full_export(self):
        """The affected services column leaves out the hidden ones; a root-cause event the user may not view is
        named ``(hidden event)``; the full-data export too."""
        self.make()
        incident = Incident.objects.get()
        incident.root_cause_event = Event.objects.get()
        incident.save()
        url = reverse('plugins:business_application:incident_list')
        response = self.client.get(url, {'export': ''})
        self.assertHttpStatus(response, 200)
        export = response.content.decode()
        for name in SECRET_NAMES:
            assert name not in export, (name, export)
        assert 'payments-db' in export, export
        assert '(hidden event)' in export, export
        assert 'slow' not in export, export
        self.add_permissions('business_application.view_event')
        export = self.client.get(url, {'export': ''}).content.decode()
        assert 'slow' in export, export
        assert '(hidden event)' not in export, export

    def test_move_form_targets(self):
        self.make(incidents=2)
        self.add_permissions('business_application.change_incident', 'business_application.view_event')
        first, second = Incident.objects.order_by('pk')
        content = self.client.get(first.get_absolute_url()).content.decode()
        assert f'#{second.pk} Service disruption affecting (hidden service)' in content
        self.assert_redacted(content)

    def test_global_search_does_not_answer_on_hidden_names(self):
        """The correlator's texts are not in the search index: a search on a hidden name finds no incident, for
        anyone; what people wrote (description, commander) is found."""
        from extras.models import CachedValue
        from netbox.search.backends import search_backend

        self.make()
        incident = Incident.objects.get()
        incident.commander = 'alice'
        search_backend.cache(incident)
        incident_type = ContentType.objects.get_for_model(Incident)
        fields = set(CachedValue.objects.filter(object_type=incident_type).values_list('field', flat=True))
        assert fields == {'description', 'commander'}, fields
        for query, found in (('web-01', False), ('checkout-api', False), ('incident 0', True), ('alice', True)):
            content = self.client.get(reverse('search'), {'q': query}).content.decode()
            assert (incident.get_absolute_url() in content) is found, (query, found)
            for name in SECRET_NAMES:
                assert name not in content.replace(f'q={query}', '').replace(f'value="{query}"', ''), (query, name)

    def test_upgrade_forgets_indexed_titles(self):
        """Migration 0005 removes the titles and root causes an earlier version put in the search index."""
        import importlib

        from django.apps import apps

        from extras.models import CachedValue

        self.make()
        incident = Incident.objects.get()
        incident_type = ContentType.objects.get_for_model(Incident)
        for field, value in (('title', incident.title), ('root_cause', incident.root_cause), ('description', 'x')):
            CachedValue.objects.create(
                object_type=incident_type, object_id=incident.pk, field=field, type='str', value=value, weight=100
            )
        migration = importlib.import_module('business_application.migrations.0005_forget_incident_title_search')
        migration.forget(apps, None)
        fields = set(CachedValue.objects.filter(object_type=incident_type).values_list('field', flat=True))
        assert fields == {'description'}, fields


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class LegacyTitlesTest(RedactionFixture, TestCase):
    def test_upgrade_records_what_legacy_titles_name(self):
        """Migration 0008 records the objects the titles of earlier versions name, where the stored data tells them
        for sure, so they stay hidden once the root cause and blast radius are gone; other titles keep NULL."""
        import importlib

        from django.apps import apps

        self.make()
        checkout = TechnicalService.objects.get(name='checkout-api')
        other = Device.objects.get(name='other-01')
        Incident.objects.update(title_objects=None)  # the fixture's incident, as an earlier version left it
        legacy = {
            'checkout': Incident.objects.get().pk,
            'other': Incident.objects.create(
                title='Infrastructure alert affecting other-01', root_cause='device:other-01'
            ).pk,
            'two': Incident.objects.create(
                title='Service disruption affecting checkout-api, payments-db and 2 more', root_cause=''
            ).pk,
            'unknown': Incident.objects.create(title='Service disruption affecting no-such-service').pk,
            'person': Incident.objects.create(title='db down').pk,
        }
        migration = importlib.import_module('business_application.migrations.0008_legacy_title_objects')
        migration.backfill(apps, None)
        payments = TechnicalService.objects.get(name='payments-db')
        found = dict(Incident.objects.filter(pk__in=legacy.values()).values_list('pk', 'title_objects'))
        assert found[legacy['checkout']] == [['service', checkout.pk, 'checkout-api']]
        assert found[legacy['other']] == [['device', other.pk, 'other-01']]
        assert found[legacy['two']] == [
            ['service', checkout.pk, 'checkout-api'],
            ['service', payments.pk, 'payments-db'],
        ]
        assert found[legacy['unknown']] is None
        assert found[legacy['person']] is None
        # Its root cause and blast radius gone, the title still hides the service
        Incident.objects.filter(pk=legacy['checkout']).update(root_cause='', blast_radius={})
        content = self.client.get(Incident.objects.get(pk=legacy['checkout']).get_absolute_url()).content.decode()
        assert 'checkout-api' not in content

    def test_legacy_titles_the_upgrade_could_not_tell(self):
        """Titles from an earlier version that migration 0008 leaves NULL (a service renamed or deleted since, a
        device name two sites share) show those names only to users who may view every object of the kinds the title
        lists, once root cause and blast radius no longer name them; a name still known to be a visible object's
        stays."""
        import importlib

        from django.apps import apps

        from dcim.models import Site

        self.make()
        create_test_device('web-01', site=Site.objects.create(name='Site 2', slug='site-2'))
        payments = TechnicalService.objects.get(name='payments-db')
        services = Incident.objects.create(
            title='Service disruption affecting legacy-api, payments-db and 1 more',
            root_cause='',
            blast_radius={'down': [{'type': 'service', 'id': payments.pk, 'name': 'payments-db'}]},
        )
        device = Incident.objects.create(title='Infrastructure alert affecting web-01', root_cause='')
        importlib.import_module('business_application.migrations.0008_legacy_title_objects').backfill(apps, None)
        services.refresh_from_db()
        device.refresh_from_db()
        assert services.title_objects is None
        assert device.title_objects is None
        forget_map()
        page = self.client.get(services.get_absolute_url()).content.decode()
        assert 'Service disruption affecting (hidden service), payments-db and 1 more' in page
        assert 'legacy-api' not in page
        page = self.client.get(device.get_absolute_url()).content.decode()
        assert 'Infrastructure alert affecting (hidden device)' in page
        assert 'web-01' not in page
        # and the list's filters answer on the shown titles
        listed = self.client.get(reverse('plugins:business_application:incident_list') + '?q=legacy-api')
        assert services.get_absolute_url() not in listed.content.decode()
        # A user who may view every object of those kinds reads the titles as written
        self.add_permissions(
            'business_application.view_technicalservice',
            'business_application.view_businessapplication',
            'dcim.view_device',
            'virtualization.view_virtualmachine',
            'virtualization.view_cluster',
        )
        forget_map()
        page = self.client.get(services.get_absolute_url()).content.decode()
        assert 'Service disruption affecting legacy-api, payments-db and 1 more' in page
        assert 'Infrastructure alert affecting web-01' in self.client.get(device.get_absolute_url()).content.decode()
        listed = self.client.get(reverse('plugins:business_application:incident_list') + '?q=legacy-api')
        assert services.get_absolute_url() in listed.content.decode()
