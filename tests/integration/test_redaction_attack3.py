"""A third attack on the redaction of hidden names, after the fixes of the first two (each test failed before its
fix): labels the redactor never looked for (in a title a person wrote), labels of objects renamed or deleted since
(in member paths, in names with spaces, in the blast radius), a filter that still read an earlier version's title
as stored, other lists' filter badges, and a receiver's answer telling hidden names from unknown ones."""

from django.test import override_settings
from django.urls import reverse

from dcim.models import Device
from utilities.testing import APITestCase, TestCase

from business_application.models import Incident, IncidentTimelineEntry, TechnicalService
from business_application.services.graph_loader import forget_map
from tests.integration.test_redaction import API, T0, RedactionFixture

LIST = 'plugins:business_application:incident_list'
PERSON_TITLE = 'Switch device:web-01 is down'


def lines_with(text, name):
    return [line.strip() for line in text.splitlines() if name in line][:5]


def joined_entry(incident, label):
    """A timeline entry of the incident, as the correlator writes one when the object of ``label`` joins."""
    IncidentTimelineEntry.objects.create(
        incident=incident, time=T0, kind='joined', message=f'{label} joined (score 0.50, dependency link)'
    )


def page_after_rename(client, incident, service):
    """The incident's page once the service is renamed and the map read again."""
    TechnicalService.objects.filter(pk=service.pk).update(name='renamed')
    forget_map()
    return client.get(incident.get_absolute_url()).content.decode()


def add_to_blast_radius(incident, name):
    """A new service of this name, listed in the incident's stored blast radius (down)."""
    service = TechnicalService.objects.create(name=name)
    item = {'type': 'service', 'id': service.pk, 'name': name}
    Incident.objects.filter(pk=incident.pk).update(
        blast_radius=dict(incident.blast_radius, down=[*incident.blast_radius['down'], item])
    )
    return service


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class Attack3PagesTest(RedactionFixture, TestCase):
    def test_member_path_names_a_renamed_hidden_device(self):
        """The incident page's member table puts each path in words (``path_in_words``), which leaves a label the map
        no longer knows "as it is": once the hidden device web-01 is renamed, a user who may view the member event
        reads ``device:web-01`` in the path (the REST members endpoint redacts the same label)."""
        self.make()
        self.add_permissions('business_application.view_event')
        incident = Incident.objects.get()
        Device.objects.filter(name='web-01').update(name='web-99')
        forget_map()
        content = self.client.get(incident.get_absolute_url()).content.decode()
        assert 'web-01' not in content, lines_with(content, 'web-01')

    def test_a_persons_title_keeps_the_label_of_a_hidden_device(self):
        """A title a person wrote (``title_objects`` empty) must have its ``kind:name`` labels redacted, but the
        redactor never looks for labels in a title: with no root cause or blast radius it does not even load the map,
        and otherwise it only checks the labels of the root cause, the blast radius and the recorded objects. The
        page, the list, its export and the edit form all show the hidden device's label."""
        self.make()
        self.add_permissions('business_application.change_incident')
        Incident.objects.update(title=PERSON_TITLE, title_objects=[], root_cause='', blast_radius={})
        IncidentTimelineEntry.objects.all().delete()  # the page would otherwise learn web-01 from the timeline
        incident = Incident.objects.get()
        leaks = []
        for url in (
            incident.get_absolute_url(),
            reverse(LIST),
            reverse(LIST) + '?export=table',
            reverse('plugins:business_application:incident_edit', args=[incident.pk]),
        ):
            content = self.client.get(url).content.decode()
            leaks += [(url, line) for line in lines_with(content, 'web-01')]
        assert not leaks, leaks

    def test_the_blast_radius_names_a_deleted_hidden_service(self):
        """A blast-radius item whose object was deleted since is no longer on the map, so the redactor leaves its
        stored name as it is: the page lists the hidden service's name (titles and labels of deleted objects are
        redacted for a user who may not view every object of the kind, this list is not)."""
        self.make()
        incident = Incident.objects.get()
        secret = add_to_blast_radius(incident, 'secret-gone')
        forget_map()
        assert 'secret-gone' not in self.client.get(incident.get_absolute_url()).content.decode()  # hidden: redacted
        secret.delete()
        forget_map()
        content = self.client.get(incident.get_absolute_url()).content.decode()
        assert 'secret-gone' not in content, lines_with(content, 'secret-gone')

    def test_timeline_names_the_rest_of_a_renamed_hidden_services_name(self):
        """A label no longer on the map is replaced only up to its first space: a timeline entry naming the hidden
        service "Secret Ledger Prod", renamed since, reads "(hidden service) Ledger Prod joined ..."."""
        self.make()
        secret = TechnicalService.objects.create(name='Secret Ledger Prod')
        incident = Incident.objects.get()
        joined_entry(incident, 'service:Secret Ledger Prod')
        content = page_after_rename(self.client, incident, secret)
        assert 'Ledger' not in content, lines_with(content, 'Ledger')


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class Attack3APITest(RedactionFixture, APITestCase):
    def test_rest_title_of_a_persons_title_keeps_the_label_of_a_hidden_device(self):
        """The same through the REST API, with or without a (visible) root cause: ``title`` and ``display`` show the
        hidden device's label, and ``?title__ic=web-01`` finds the incident."""
        self.make()
        Incident.objects.update(title=PERSON_TITLE, title_objects=[], root_cause='device:other-01', blast_radius={})
        leaks = []
        for query in ('', '?brief=1', '?title__ic=web-01'):
            rows = self.client.get(f'{API}{query}', **self.header).data['results']
            leaks += [(query, row['display']) for row in rows if 'web-01' in row['display']]
        assert not leaks, leaks

    def test_filters_read_a_persons_title_without_root_cause_as_stored(self):
        """RedactedTexts leaves out every incident without a root cause whose title a person wrote (``title_objects``
        empty), so once such a title's labels are redacted, ``?title__ic=`` still answers on the stored label."""
        self.make()
        Incident.objects.update(title=PERSON_TITLE, title_objects=[], root_cause='', blast_radius={})
        incident = Incident.objects.get()
        assert 'web-01' not in self.client.get(f'{API}{incident.pk}/', **self.header).data['title']
        counts = [
            self.client.get(f'{API}?title__ic={guess}', **self.header).data['count'] for guess in ('web-01', 'web-02')
        ]
        assert counts[0] == counts[1], counts

    def test_a_written_title_tells_whether_a_hidden_object_exists(self):
        """A user who may add incidents writes a title naming a guessed label and reads it back: a label of a hidden
        service that exists is shown as written (the redactor does not look for it), a label that names nothing is
        replaced ("(hidden service)"), and for a name with spaces the right guess and a wrong one read back apart
        even once labels in titles are looked for (an unknown label loses only its first word). Either way guessing
        names and reading the answer confirms hidden ones."""
        self.make()
        self.add_permissions('business_application.add_incident')
        TechnicalService.objects.create(name='secret-ledger')
        TechnicalService.objects.create(name='Secret Ledger')
        forget_map()

        def read_back(guess):
            body = {
                'title': f'probe {guess} end',
                'root_cause': 'device:other-01',
                'status': 'new',
                'severity': 'critical',
            }
            response = self.client.post(API, body, format='json', **self.header)
            self.assertHttpStatus(response, 201)
            return self.client.get(f'{API}{response.data["id"]}/', **self.header).data['title']

        right, wrong = read_back('service:secret-ledger'), read_back('service:secret-wrong')
        assert right.replace('ledger', 'wrong') == wrong, (right, wrong)
        right, wrong = read_back('service:Secret Ledger'), read_back('service:Secret Wrong')
        assert right.replace('Ledger', 'Wrong') == wrong, (right, wrong)

    def test_members_path_names_the_rest_of_a_renamed_hidden_services_name(self):
        """The members endpoint's paths: the label of a hidden service with spaces in its name, renamed since, reads
        "(hidden service) Ledger Prod"."""
        self.make()
        self.add_permissions('business_application.view_event')
        secret = TechnicalService.objects.create(name='Secret Ledger Prod')
        secret.devices.add(self.web)
        incident = Incident.objects.get()
        incident.memberships.update(path=['device:web-01', 'service:Secret Ledger Prod'])
        TechnicalService.objects.filter(pk=secret.pk).update(name='renamed')
        forget_map()
        leaks = []
        for url in (f'{API}{incident.pk}/members/', f'{API}{incident.pk}/'):
            text = self.client.get(url, **self.header).content.decode()
            leaks += [url] if 'Ledger' in text else []
        assert not leaks, leaks

    def test_rest_blast_radius_names_a_deleted_hidden_service(self):
        self.make()
        incident = Incident.objects.get()
        secret = add_to_blast_radius(incident, 'secret-gone')
        secret.delete()
        forget_map()
        text = self.client.get(f'{API}{incident.pk}/', **self.header).content.decode()
        assert 'secret-gone' not in text

    def test_filters_match_an_earlier_versions_title_without_root_cause_or_blast_radius(self):
        """An incident from before ``title_objects`` (NULL) with neither root cause nor blast radius: its title reads
        "Service disruption affecting (hidden service)" (the name cannot be told visible), but RedactedTexts leaves
        such an incident out (it only keeps legacy incidents whose blast radius is not empty), so ``title__ic=`` and
        ``q=`` match the stored name: a yes/no oracle on it."""
        self.make()
        Incident.objects.update(root_cause='', title_objects=None, blast_radius={})
        incident = Incident.objects.get()
        shown = self.client.get(f'{API}{incident.pk}/', **self.header).data['title']
        assert 'checkout-api' not in shown, shown
        counts = {}
        for query in ('title__ic=checkout-api', 'q=checkout-api', 'title__ic=checkout-xyz', 'q=checkout-xyz'):
            counts[query] = self.client.get(f'{API}?{query}', **self.header).data['count']
        assert counts['title__ic=checkout-api'] == counts['title__ic=checkout-xyz'], counts
        assert counts['q=checkout-api'] == counts['q=checkout-xyz'], counts


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class Attack3FilterFormTest(RedactionFixture, TestCase):
    def test_list_filter_badges_name_hidden_devices_and_services(self):
        """The incident list's filter form leaves the objects the user may not view out of its choices, the other list
        pages' filter forms do not: ``?device_id=<id>`` on the technical services list (or ``?service_id=`` on the
        dependencies list) draws the filter badge and the selected option with the hidden object's name, so walking
        the ids lists every hidden device and service by name. (NetBox's own list pages draw their filter badges the
        same way, e.g. ``/dcim/interfaces/?device_id=``.)"""
        self.make()
        self.add_permissions(
            'business_application.view_servicedependency',
            'business_application.view_businessapplication',
        )
        web, checkout = Device.objects.get(name='web-01').pk, TechnicalService.objects.get(name='checkout-api').pk
        leaks = []
        for url in (
            f'{reverse("plugins:business_application:technicalservice_list")}?device_id={web}',
            f'{reverse("plugins:business_application:technicalservice_list")}?depends_on_id={checkout}',
            f'{reverse("plugins:business_application:businessapplication_list")}?device_id={web}',
            f'{reverse("plugins:business_application:businessapplication_list")}?technical_service_id={checkout}',
            f'{reverse("plugins:business_application:servicedependency_list")}?upstream_service_id={checkout}',
        ):
            content = self.client.get(url).content.decode()
            # A dependency the user may view names its services in its table row, as NetBox names related objects
            leaks += [
                (url, line)
                for name in ('web-01', 'checkout-api')
                for line in lines_with(content, name)
                if not line.startswith('<td')
            ]
        assert not leaks, leaks


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class Attack3ReceiverTest(RedactionFixture, APITestCase):
    def test_receiver_answer_tells_whether_a_guessed_name_is_a_hidden_device(self):
        """A receiver token (add and change event only, no view of events or of web-01) posts alerts naming guessed
        objects: the answer must read the same for a hidden device's name and for a name of nothing (it told them
        apart by the ``unmapped`` count and ``unmapped_label``, confirming hidden names one guess at a time)."""
        from business_application.models import EventSource

        self.make()
        self.add_permissions('business_application.add_event', 'business_application.change_event')
        EventSource.objects.create(name='generic')

        def answer(i, guess):
            body = {'source': 'generic', 'dedup_id': f'g{i}', 'severity': 'high', 'message': 'x', 'object': guess}
            response = self.client.post(
                '/api/plugins/business-application/alerts/generic/', body, format='json', **self.header
            )
            self.assertHttpStatus(response, 200)
            event = response.data['events'][0]
            return response.data['unmapped'], bool(event['unmapped_label'])

        assert answer(0, 'device:web-01') == answer(1, 'device:web-02')
