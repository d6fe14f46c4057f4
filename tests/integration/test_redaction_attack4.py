"""A fourth attack on the redaction of hidden names, after round 3's fixes (each test here failed on commit 4edf76f):
the other lists' name filters, which told a hidden object's name from a name of nothing; a label no longer on the
map, or cut at the timeline's 500 characters, read as the visible object whose name starts its name; a title written
back unchanged, which unveiled it for everyone; and the filters reading an earlier version's title without its
blast radius."""

from django.test import override_settings
from django.urls import reverse

from utilities.testing import APITestCase, TestCase

from business_application.models import (
    BusinessApplication,
    Incident,
    IncidentTimelineEntry,
    TechnicalService,
)
from business_application.services.graph_loader import forget_map
from tests.integration.test_redaction import API, T0, RedactionFixture
from tests.integration.test_redaction_attack3 import joined_entry, lines_with, page_after_rename

BASE = '/api/plugins/business-application/'


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class Attack4NameFilterAPITest(RedactionFixture, APITestCase):
    def test_other_lists_name_filters_tell_hidden_names_from_missing_ones(self):
        """The incident list's filters answer on a hidden service or device as on one that does not exist (round 1);
        the other lists' name filters do not: ``/technical-services/?device=web-01`` (a hidden device) answers 200
        while ``?device=web-02`` (no such device) is a 400 "not one of the available choices", and the same on the
        business applications' ``technical_service=`` and ``device=``, and the dependencies' ``upstream_service=`` and
        ``downstream_service=``. Guessing names and reading the status confirms every hidden one."""
        self.make()
        # The fixture's user may view the service payments-db only (a constrained permission), so checkout-api stays
        # hidden on every list
        self.add_permissions(
            'business_application.view_businessapplication',
            'business_application.view_servicedependency',
        )
        BusinessApplication.objects.create(appcode='SECRETAPP', name='secret app')
        differ = []
        for endpoint, name, hidden, missing in (
            ('technical-services', 'device', 'web-01', 'web-02'),
            ('business-applications', 'device', 'web-01', 'web-02'),
            ('business-applications', 'technical_service', 'checkout-api', 'checkout-xyz'),
            ('service-dependencies', 'upstream_service', 'checkout-api', 'checkout-xyz'),
            ('service-dependencies', 'downstream_service', 'checkout-api', 'checkout-xyz'),
        ):
            one = self.client.get(f'{BASE}{endpoint}/', {name: hidden}, **self.header)
            other = self.client.get(f'{BASE}{endpoint}/', {name: missing}, **self.header)
            if one.status_code != other.status_code:
                differ.append((endpoint, name, one.status_code, other.status_code))
        assert not differ, differ


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class Attack4NameFilterPageTest(RedactionFixture, TestCase):
    def test_services_list_page_filtered_on_a_hidden_device_name(self):
        """The same on the list page: ``?device=web-01`` (hidden) filters the list (here to nothing), ``?device=web-02``
        (no such device) is ignored and lists every service the user may view."""
        self.make()
        self.add_permissions('business_application.view_technicalservice')
        url = reverse('plugins:business_application:technicalservice_list')
        one = self.client.get(url, {'device': 'web-01'}).content.decode()
        other = self.client.get(url, {'device': 'web-02'}).content.decode()
        assert ('payments-db' in one) == ('payments-db' in other), 'the hidden device name filtered the list'


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class Attack4LabelPagesTest(RedactionFixture, TestCase):
    def test_renamed_hidden_service_whose_name_extends_a_visible_ones(self):
        """A label no longer on the map (an object renamed or deleted since) is redacted for a user who may not view
        every object of its kind (round 3), unless its name starts with a visible object's name and a space: the
        redactor reads the visible label "service:payments-db" and shows the rest as written, so the hidden service
        "payments-db replica", renamed since, reads "service:payments-db replica joined ..." in the timeline and in
        the member path (and "payments-db replica" in the path in words)."""
        self.make()
        self.add_permissions('business_application.view_event')
        secret = TechnicalService.objects.create(name='payments-db replica')
        incident = Incident.objects.get()
        joined_entry(incident, 'service:payments-db replica')
        incident.memberships.update(path=['device:web-01', 'service:payments-db replica'])
        forget_map()
        content = self.client.get(incident.get_absolute_url()).content.decode()
        assert 'replica' not in content, lines_with(content, 'replica')  # hidden and on the map: redacted
        content = page_after_rename(self.client, incident, secret)
        assert 'replica' not in content, lines_with(content, 'replica')


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class Attack4LabelAPITest(RedactionFixture, APITestCase):
    def test_rest_paths_of_a_deleted_hidden_service_whose_name_extends_a_visible_ones(self):
        """The same through the REST API's member paths, for a hidden service deleted since."""
        self.make()
        self.add_permissions('business_application.view_event')
        secret = TechnicalService.objects.create(name='payments-db replica')
        incident = Incident.objects.get()
        incident.memberships.update(path=['device:web-01', 'service:payments-db replica'])
        secret.delete()
        forget_map()
        leaks = []
        for url in (f'{API}{incident.pk}/members/', f'{API}{incident.pk}/'):
            text = self.client.get(url, **self.header).content.decode()
            leaks += [url] if 'replica' in text else []
        assert not leaks, leaks


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class Attack4RoundTripTest(RedactionFixture, APITestCase):
    def test_writing_back_the_stored_title_unveils_it_for_everyone(self):
        """A user who may view everything (an admin, an automation token) reads an incident and writes it back with
        its title unchanged (a PUT of what was read, or a PATCH carrying the title with another field): the stored
        title is the same, but the incident now reads as a person's title (``title_objects`` emptied), so every user
        who may not view checkout-api sees "Service disruption affecting checkout-api" in clear."""
        self.make()
        self.add_permissions('business_application.change_incident')
        incident = Incident.objects.get()
        assert 'checkout-api' not in self.client.get(f'{API}{incident.pk}/', **self.header).data['title']
        self.user.is_superuser = True
        self.user.save()
        stored = self.client.get(f'{API}{incident.pk}/', **self.header).data['title']
        response = self.client.patch(
            f'{API}{incident.pk}/', {'title': stored, 'status': 'investigating'}, format='json', **self.header
        )
        self.assertHttpStatus(response, 200)
        self.user.is_superuser = False
        self.user.save()
        assert Incident.objects.get().title == stored  # nothing changed in the text
        shown = self.client.get(f'{API}{incident.pk}/', **self.header).data['title']
        assert 'checkout-api' not in shown, shown


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class Attack4LegacyFilterTest(RedactionFixture, APITestCase):
    def test_filters_read_an_earlier_versions_title_without_its_blast_radius(self):
        """An earlier version's correlator title (``title_objects`` NULL) with a root cause shows a name the blast
        radius names as a visible object ("Service disruption affecting payments-db"), but the filters judge it
        without the blast radius (RedactedTexts keys it on title, root cause and objects only) and read
        "Service disruption affecting (hidden service)": ``title__ic=payments-db`` and ``q=payments-db`` miss the
        incident the page shows that name on, and ``q=hidden`` finds it though nothing on it reads "hidden"."""
        self.make()
        payments = TechnicalService.objects.get(name='payments-db')
        incident = Incident.objects.get()
        Incident.objects.filter(pk=incident.pk).update(
            title='Service disruption affecting payments-db',
            root_cause='device:other-01',
            title_objects=None,
            blast_radius={'down': [{'type': 'service', 'id': payments.pk, 'name': 'payments-db'}], 'degraded': []},
        )
        forget_map()
        shown = self.client.get(f'{API}{incident.pk}/', **self.header).data['title']
        assert shown == 'Service disruption affecting payments-db', shown
        found = {}
        for query in ('title__ic=payments-db', 'q=payments-db', 'title__ic=hidden'):
            found[query] = self.client.get(f'{API}?{query}', **self.header).data['count']
        assert found == {'title__ic=payments-db': 1, 'q=payments-db': 1, 'title__ic=hidden': 0}, found


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class Attack4CutTimelineTest(RedactionFixture, TestCase):
    def test_a_timeline_entry_cut_inside_a_hidden_name_that_extends_a_visible_one(self):
        """The correlator cuts a timeline message at 500 characters (``add_timeline``). A "joined" message whose path
        ends in the hidden service "payments-db replica" (on the map, not renamed) cut inside that name reads
        "service:payments-db rep": the redactor finds the visible label "service:payments-db" there and shows the
        rest as written, so the start of the hidden name's rest shows."""
        self.make()
        TechnicalService.objects.create(name='payments-db replica')
        incident = Incident.objects.get()
        TechnicalService.objects.create(name='queue-' + 'x' * 200)
        for size in range(100, 240):
            hops = f'service:queue-{"x" * 200} -> service:store-{"x" * size}'  # services with long names on the path
            full = (
                f'device:web-01 joined (score 0.72, dependency link via device:web-01 -> service:checkout-api -> {hops}'
                ' -> service:payments-db replica)'
            )
            message = full[:500]  # as IncidentService.add_timeline stores it
            if message.endswith('service:payments-db rep'):
                TechnicalService.objects.create(name='store-' + 'x' * size)
                break
        else:
            raise AssertionError('no cut found')
        IncidentTimelineEntry.objects.create(incident=incident, time=T0, kind='joined', message=message)
        forget_map()
        content = self.client.get(incident.get_absolute_url()).content.decode()
        assert 'payments-db rep' not in content, lines_with(content, 'payments-db rep')
