"""Filtering incidents tells a user nothing about the devices and services they may not view: the text filters
answer on the titles and root causes as the user sees them, and a related object they may not view answers like
one that does not exist. A user who sees everything filters on the stored texts, at no extra query."""

from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from dcim.models import Device
from utilities.testing import APITestCase, TestCase

from business_application.filtersets import REDACTED_FIELDS, REGEX_OPERATORS, TEXT_LOOKUPS, IncidentFilterSet
from business_application.models import Event, Incident, TechnicalService
from tests.integration.test_redaction import API, T0, RedactionFixture

#: The stored texts, and the same with each hidden name replaced by one that names nothing.
TITLE = 'Service disruption affecting checkout-api'
FAKES = (('checkout', 'nowhere'), ('web', 'zzz'))

#: A value probing a hidden name for each lookup; the negated lookups (``n``, ``nic``...) take the same values.
PROBES = {
    'title': {
        'exact': TITLE,
        'iexact': TITLE.upper(),
        'icontains': 'checkout',
        'istartswith': 'Service disruption affecting checkout',
        'iendswith': 'checkout-api',
        'regex': 'hidden|checkout',
        'iregex': '(HIDDEN|CHECKOUT)',
    },
    'root_cause': {
        'exact': 'device:web-01',
        'iexact': 'DEVICE:WEB-01',
        'icontains': 'web-0',
        'istartswith': 'device:web',
        'iendswith': 'web-01',
        'regex': 'hidden|web-01$',
        'iregex': '^DEVICE:(WEB|HIDDEN)',
    },
}


def fake(value):
    for name, other in FAKES:
        value = value.replace(name, other).replace(name.upper(), other.upper())
    return value


def text_filters():
    """Every filter NetBox generates on the redacted texts, but ``empty`` (a redacted text is empty only when the
    stored one is)."""
    return {
        name: filter_
        for name, filter_ in IncidentFilterSet.base_filters.items()
        if filter_.field_name in REDACTED_FIELDS and filter_.lookup_expr != 'empty'
    }


class FilterFixture(RedactionFixture):
    """The redaction fixture (one incident whose title and root cause name a hidden service and device), plus an
    incident whose root cause is the device the user may view."""

    def make(self, incidents=1):
        super().make(incidents)
        self.hidden = set(Incident.objects.values_list('pk', flat=True))
        self.visible = Incident.objects.create(
            title='Infrastructure alert affecting other-01',
            status='new',
            severity='major',
            detected_at=T0,
            root_cause='device:other-01',
        ).pk

    def become_superuser(self):
        self.user.is_superuser = True
        self.user.save()


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class FilteredAPITest(FilterFixture, APITestCase):
    def found(self, params):
        response = self.client.get(API, {'limit': 0, **params}, **self.header)
        self.assertHttpStatus(response, 200)
        return {row['id'] for row in response.data['results']}

    def test_hidden_names_cannot_be_probed(self):
        """Each lookup with a value naming a hidden object answers as with a value naming nothing; the superuser's
        answers differ, so every probe would find the name on the stored texts."""
        lookups = {filter_.lookup_expr for filter_ in text_filters().values()}
        assert lookups <= set(TEXT_LOOKUPS) | set(REGEX_OPERATORS), lookups  # a lookup NetBox adds needs handling
        assert {'title__ic', 'title__nic', 'root_cause', 'root_cause__n', 'root_cause__iregex'} <= set(text_filters())
        self.make()
        constrained, everything = {}, {}
        for name, filter_ in text_filters().items():
            probe = PROBES[filter_.field_name][filter_.lookup_expr]
            constrained[name] = (self.found({name: probe}), self.found({name: fake(probe)}))
        for probe in ('web-01', 'checkout', 'WEB-0'):
            constrained[f'q={probe}'] = (self.found({'q': probe}), self.found({'q': fake(probe)}))
        self.become_superuser()
        for name, filter_ in text_filters().items():
            probe = PROBES[filter_.field_name][filter_.lookup_expr]
            everything[name] = (self.found({name: probe}), self.found({name: fake(probe)}))

        for name, (hidden, made_up) in constrained.items():
            assert hidden == made_up, name
        for name, (hidden, made_up) in everything.items():
            assert hidden != made_up, name

    def test_hidden_names_are_not_found(self):
        self.make(incidents=2)
        for params in (
            {'q': 'web-01'},
            {'q': 'checkout'},
            {'title__ic': 'checkout'},
            {'root_cause__ic': 'web-01'},
            {'root_cause': 'device:web-01'},
            {'title': TITLE},
            {'title__ic': ['zzz', 'checkout']},
        ):
            assert self.found(params) == set(), params
        for params in (
            {'title__nic': 'checkout'},
            {'root_cause__nic': 'web-01'},
            {'root_cause__n': 'device:web-01'},
            {'title__n': TITLE},
        ):
            assert self.found(params) >= self.hidden, params

        # What the user sees is what filters
        assert self.found({'q': '(hidden device)'}) == self.hidden
        assert self.found({'title__iew': 'affecting (hidden service)'}) == self.hidden
        assert self.found({'root_cause': '(hidden device)'}) == self.hidden
        assert self.found({'root_cause__n': '(hidden device)'}) == {self.visible}
        assert self.found({'title__ic': ['hidden', 'checkout']}) == self.hidden

        # The same filters by a user who sees everything read the stored names
        self.become_superuser()
        assert self.found({'q': 'web-01'}) == self.hidden
        assert self.found({'title__ic': 'checkout'}) == self.hidden
        assert self.found({'root_cause__ic': 'web-01'}) == self.hidden
        assert self.found({'root_cause': 'device:web-01'}) == self.hidden
        assert self.found({'root_cause__nic': 'web-01'}) == {self.visible}
        assert self.found({'q': '(hidden device)'}) == set()

    def test_visible_names_and_placeholders_are_found(self):
        self.make()
        assert self.found({'q': 'hidden service'}) == self.hidden
        assert self.found({'q': 'other-01'}) == {self.visible}
        assert self.found({'root_cause': 'device:other-01'}) == {self.visible}
        assert self.found({'root_cause__nic': 'other-01'}) == self.hidden
        assert self.found({'q': 'disruption'}) == self.hidden
        assert self.found({'title__isw': 'service disruption'}) == self.hidden
        assert self.found({'q': 'incident 0'}) == self.hidden  # the description is never redacted
        assert self.found({'title__ic': 'affecting', 'q': 'other'}) == {self.visible}

    def test_hidden_objects_answer_like_missing_ones(self):
        self.make()
        checkout = TechnicalService.objects.get(name='checkout-api')
        payments = TechnicalService.objects.get(name='payments-db')
        missing = max(TechnicalService.objects.values_list('pk', flat=True)) + 1000
        web, event = Device.objects.get(name='web-01'), Event.objects.first()
        for name, hidden, absent in (
            ('affected_service_id', checkout.pk, missing),
            ('affected_service_id__n', checkout.pk, missing),
            ('affected_service', 'checkout-api', 'no-such-service'),
            ('affected_service__n', 'checkout-api', 'no-such-service'),
            ('device_id', web.pk, missing),
            ('event_id', event.pk, missing),
            ('root_cause_event_id', event.pk, missing),
        ):
            one = self.client.get(API, {name: hidden}, **self.header)
            other = self.client.get(API, {name: absent}, **self.header)
            assert one.status_code == other.status_code == 400, (name, one.status_code)
            assert str(one.data).replace(str(hidden), 'X') == str(other.data).replace(str(absent), 'X'), name

        assert self.found({'affected_service_id': payments.pk}) == self.hidden
        assert self.found({'affected_service': 'payments-db'}) == self.hidden
        self.become_superuser()
        assert self.found({'affected_service_id': checkout.pk}) == self.hidden
        assert self.found({'device_id': web.pk}) == set()  # the fixture's events point at no device

    def test_filtering_costs_no_query_for_a_superuser(self):
        self.make(incidents=2)
        self.become_superuser()
        unfiltered, filtered = {'limit': 0}, {'limit': 0, 'q': 'affecting', 'title__ic': 'affect', 'root_cause__n': 'x'}
        self.client.get(API, unfiltered, **self.header)
        with CaptureQueriesContext(connection) as plain:
            all_rows = self.client.get(API, unfiltered, **self.header)
        with CaptureQueriesContext(connection) as narrowed:
            same_rows = self.client.get(API, filtered, **self.header)
        assert all_rows.data['count'] == same_rows.data['count'] == 3
        assert len(narrowed) == len(plain), [q['sql'][:120] for q in narrowed]

    def test_redacted_filters_cost_the_same_for_one_or_many_incidents(self):
        self.make(incidents=1)
        params = {'title__ic': 'disruption', 'root_cause__nic': 'web', 'q': 'hidden'}
        self.client.get(API, params, **self.header)
        with CaptureQueriesContext(connection) as one:
            self.client.get(API, params, **self.header)
        for i in range(5):
            Incident.objects.create(title=TITLE, root_cause='device:web-01', description=f'more {i}')
        with CaptureQueriesContext(connection) as six:
            response = self.client.get(API, params, **self.header)
        assert response.data['count'] == 6
        assert len(one) == len(six)


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class FilteredListPageTest(FilterFixture, TestCase):
    def listed(self, params):
        response = self.client.get(reverse('plugins:business_application:incident_list'), params)
        self.assertHttpStatus(response, 200)
        content = response.content.decode()
        shown = {pk for pk in (*self.hidden, self.visible) if f'/incidents/{pk}/"' in content}
        return shown, content

    def test_search_on_a_hidden_name(self):
        self.make()
        assert self.listed({'q': 'web-01'})[0] == set()
        assert self.listed({'q': 'checkout'})[0] == set()
        assert self.listed({'root_cause__n': 'device:web-01'})[0] == {*self.hidden, self.visible}
        assert self.listed({'q': 'other-01'})[0] == {self.visible}
        assert self.listed({'q': 'hidden device'})[0] == self.hidden
        self.become_superuser()
        assert self.listed({'q': 'web-01'})[0] == self.hidden

    def test_hidden_service_answers_like_a_missing_one(self):
        self.make()
        checkout = TechnicalService.objects.get(name='checkout-api')
        missing = checkout.pk + 1000
        # NetBox ignores an invalid choice on list pages: the hidden service, like a missing one, filters nothing
        assert self.listed({'affected_service_id': checkout.pk})[0] == {*self.hidden, self.visible}
        assert self.listed({'affected_service_id': missing})[0] == {*self.hidden, self.visible}
        assert self.listed({'affected_service': 'checkout-api'})[0] == {*self.hidden, self.visible}
        for params in ({'affected_service_id': checkout.pk}, {'event_id': Event.objects.order_by('pk').first().pk}):
            content = self.listed(params)[1]
            for name in ('checkout-api', 'slow'):
                assert name not in content, (params, name)  # the filter badges do not name the hidden object
        self.become_superuser()
        assert self.listed({'affected_service_id': checkout.pk})[0] == self.hidden


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class RedactedOrderingTest(FilterFixture, APITestCase):
    """Sorting on the title or root cause would place a redacted row by the names it hides: for a user who may not
    view every object they may name, those sorts are ignored (REST API and list page); other sorts still apply."""

    def ordered(self, params):
        api = self.client.get(API, params, **self.header)
        self.assertHttpStatus(api, 200)
        sort = {'sort': params['ordering']} if 'ordering' in params else {}
        page = self.client.get(reverse('plugins:business_application:incident_list'), sort).content.decode()
        listed = sorted((page.index(f'/incidents/{pk}/"'), pk) for pk in (*self.hidden, self.visible))
        return [row['id'] for row in api.data['results']], [pk for _, pk in listed]

    def test_sorting_on_redacted_texts_is_ignored(self):
        self.make()
        self.client.force_login(self.user)
        (hidden,) = self.hidden
        default = [self.visible, hidden]  # newest first
        for ordering in ('-title', 'root_cause'):
            api, page = self.ordered({'ordering': ordering})
            assert api == default, ordering
            assert page == default, ordering
        assert self.ordered({'ordering': 'id'}) == ([hidden, self.visible], [hidden, self.visible])
        assert self.ordered({'ordering': '-root_cause,id'})[0] == [hidden, self.visible]  # only the text term dropped
        self.become_superuser()
        assert self.ordered({'ordering': '-title'}) == ([hidden, self.visible], [hidden, self.visible])
