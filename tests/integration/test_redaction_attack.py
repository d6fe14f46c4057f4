"""Attacks on the redaction of hidden names: places where a user who may view an incident but not a device or service
it names could learn that name, or where the redaction could break something. The strict xfails are the known gaps
the README lists."""

from django.contrib.contenttypes.models import ContentType
from django.test import override_settings
from django.urls import reverse

from dcim.models import Device
from utilities.testing import APITestCase, TestCase

from business_application.models import Event, Incident, TechnicalService
from business_application.services.graph_loader import forget_map
from tests.integration.test_redaction import API, SECRET_NAMES, RedactionFixture

AUTOMATION = '/api/plugins/business-application/incident-automation/process-event/'


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class AttackAPITest(RedactionFixture, APITestCase):
    def test_process_event_answer_names_hidden_objects(self):
        """The automation endpoint answers with the incident's stored title, to a user who may change the event but
        may not view the service the title names (nor, here, even the incident)."""
        self.make()
        self.add_permissions('business_application.view_event', 'business_application.change_event')
        event = Event.objects.get()
        response = self.client.post(AUTOMATION, {'event_id': event.pk}, format='json', **self.header)
        text = str(response.data)
        for name in SECRET_NAMES:
            assert name not in text, (name, text)

    def test_bookmarks_and_subscriptions_api_name_hidden_objects(self):
        """NetBox's bookmarks and subscriptions endpoints nest the incident as ``{'display': str(incident)}``, which
        is the stored title outside a page (``page_redactor`` is None for API requests)."""
        from extras.models import Bookmark, Subscription

        self.make()
        self.add_permissions('extras.view_bookmark', 'extras.view_subscription')
        incident = Incident.objects.get()
        Bookmark.objects.create(object=incident, user=self.user)
        Subscription.objects.create(object=incident, user=self.user)
        for url in ('/api/extras/bookmarks/', '/api/extras/subscriptions/'):
            response = self.client.get(url, **self.header)
            self.assertHttpStatus(response, 200)
            text = response.content.decode()
            for name in SECRET_NAMES:
                assert name not in text, (url, name, text[:400])

    def test_rest_round_trip_overwrites_the_hidden_texts(self):
        """A REST client that reads an incident and writes back what it read (changing only the commander) stores
        the placeholders over the real title and root cause; the edit form refuses exactly this, the API does not."""
        self.make()
        self.add_permissions('business_application.change_incident')
        incident = Incident.objects.get()
        shown = self.client.get(f'{API}{incident.pk}/', **self.header).data
        assert shown['root_cause'] == '(hidden device)'
        body = {'title': shown['title'], 'root_cause': shown['root_cause'], 'commander': 'alice'}
        response = self.client.patch(f'{API}{incident.pk}/', body, format='json', **self.header)
        self.assertHttpStatus(response, 200)
        incident.refresh_from_db()
        assert (incident.title, incident.root_cause) == (
            'Service disruption affecting checkout-api',
            'device:web-01',
        ), (incident.title, incident.root_cause)

    def test_ordering_on_the_blast_radius_compares_hidden_names(self):
        """``?ordering=blast_radius`` sorts on the stored JSON, where PostgreSQL compares two items' ``name`` when
        their ``id`` is equal (items of different kinds share ids): the order then tells whether a hidden service's
        name sorts before a visible device's. The same rows come back in another order when only the hidden name
        changes, so the sort is a yes/no oracle on it (title and root cause are dropped from the ordering, the blast
        radius is not)."""
        self.make()
        shared = 10_000_000 + Device.objects.get(name='other-01').pk  # an id no service has yet
        Device.objects.filter(name='other-01').update(id=shared)
        other = Device.objects.get(name='other-01')
        TechnicalService.objects.create(pk=shared, name='secret-svc')  # a hidden service sharing the device's id
        forget_map()
        visible = Incident.objects.create(
            title='Infrastructure alert affecting other-01',
            root_cause='device:other-01',
            blast_radius={'down': [{'type': 'device', 'id': other.pk, 'name': 'other-01'}], 'degraded': []},
        )
        hidden = Incident.objects.create(
            title='Service disruption affecting secret-svc',
            root_cause='device:other-01',
            blast_radius={'down': [{'type': 'service', 'id': other.pk, 'name': 'secret-svc'}], 'degraded': []},
        )

        def order():
            rows = self.client.get(f'{API}?ordering=blast_radius&id={visible.pk}&id={hidden.pk}', **self.header)
            self.assertHttpStatus(rows, 200)
            names = [row['blast_radius']['down'][0]['name'] for row in rows.data['results']]
            assert 'secret-svc' not in names, names
            assert 'aaa-svc' not in names, names
            return [row['id'] for row in rows.data['results']]

        with_real_name = order()
        blast = dict(hidden.blast_radius, down=[{'type': 'service', 'id': other.pk, 'name': 'aaa-svc'}])
        Incident.objects.filter(pk=hidden.pk).update(blast_radius=blast)
        TechnicalService.objects.filter(pk=other.pk).update(name='aaa-svc')
        forget_map()
        assert order() == with_real_name

    def test_ordering_on_affected_services_sorts_by_hidden_names(self):
        """``?ordering=affected_services`` makes Django sort by the services' Meta ordering, their ``name``, hidden
        ones included: whether an incident affected only by a hidden service comes before one affected by a
        visible service tells how the hidden name sorts against it (a made-up name gives another order)."""
        self.make()
        checkout, payments = (
            TechnicalService.objects.get(name='checkout-api'),
            TechnicalService.objects.get(name='payments-db'),
        )
        hidden = Incident.objects.create(title='a', root_cause='')
        hidden.affected_services.add(checkout)
        visible = Incident.objects.create(title='b', root_cause='')
        visible.affected_services.add(payments)

        def order():
            rows = self.client.get(f'{API}?ordering=affected_services&id={hidden.pk}&id={visible.pk}', **self.header)
            self.assertHttpStatus(rows, 200)
            return [row['id'] for row in rows.data['results']]

        with_real_name = order()
        TechnicalService.objects.filter(pk=checkout.pk).update(name='zzz-made-up')
        assert order() == with_real_name


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class AttackPagesTest(RedactionFixture, TestCase):
    def test_title_after_every_event_left(self):
        """An operator who may see everything moves the only event of an incident into another incident: the
        correlator's recompute clears the root cause but keeps the title (``recompute`` saves only 'root'), and the
        redactor, which finds the title's names only through the root cause, shows the hidden service's name."""
        from django.contrib.auth import get_user_model

        self.make(incidents=2)
        first, second = Incident.objects.order_by('pk')
        event = first.memberships.get().event
        Incident.objects.filter(pk=first.pk).update(root_cause_event=event)
        admin = get_user_model().objects.create_user(username='admin', is_superuser=True)
        self.client.force_login(admin)
        move = reverse('plugins:business_application:incident_move_event', args=[first.pk])
        self.assertEqual(self.client.post(move, {'event': event.pk, 'target': second.pk}).status_code, 302)
        first.refresh_from_db()
        assert (first.title, first.root_cause) == ('Service disruption affecting checkout-api', '')
        self.client.force_login(self.user)
        content = self.client.get(first.get_absolute_url()).content.decode()
        assert 'checkout-api' not in content
        listing = self.client.get(reverse('plugins:business_application:incident_list')).content.decode()
        assert 'checkout-api' not in listing

    def test_title_after_the_map_changed(self):
        """The title names the services the root cause ran when the incident opened; once a service no longer
        runs on the root device (a map change), the redactor no longer finds that name in the title."""
        self.make()
        incident = Incident.objects.get()
        TechnicalService.objects.get(name='checkout-api').devices.clear()
        forget_map()
        content = self.client.get(incident.get_absolute_url()).content.decode()
        assert 'checkout-api' not in content

    def test_root_cause_after_the_device_was_renamed(self):
        """A hidden device renamed after the incident opened: its former label, stored in the root cause and the
        title's timeline, is no longer found on the map and is shown as is."""
        self.make()
        incident = Incident.objects.get()
        Device.objects.filter(name='web-01').update(name='web-99')
        forget_map()
        content = self.client.get(incident.get_absolute_url()).content.decode()
        assert 'web-01' not in content


def browser_post_data(html, form_action_marker='<form'):
    """What a browser submits for the first POST form of a page, left as it was shown: enabled inputs (hidden and
    visible), textareas and the selected options of selects; disabled fields are not submitted."""
    from html.parser import HTMLParser

    class Parser(HTMLParser):
        def __init__(self):
            super().__init__()
            self.data, self.select, self.textarea, self.in_form, self.done = [], None, None, False, False

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if self.done:
                return
            if tag == 'form' and (attrs.get('method') or '').lower() == 'post' and not self.in_form:
                self.in_form = True
            if not self.in_form:
                return
            disabled = 'disabled' in attrs
            if tag == 'input' and attrs.get('name') and not disabled:
                kind = (attrs.get('type') or 'text').lower()
                if kind in ('checkbox', 'radio') and 'checked' not in attrs:
                    return
                if kind in ('submit', 'button'):
                    return
                self.data.append((attrs['name'], attrs.get('value') or ''))
            elif tag == 'select' and attrs.get('name'):
                self.select = None if disabled else attrs['name']
            elif tag == 'option' and self.select and 'selected' in attrs:
                self.data.append((self.select, attrs.get('value') or ''))
            elif tag == 'textarea' and attrs.get('name') and not disabled:
                self.textarea = [attrs['name'], '']

        def handle_endtag(self, tag):
            if tag == 'select':
                self.select = None
            elif tag == 'textarea' and self.textarea:
                self.data.append(tuple(self.textarea))
                self.textarea = None
            elif tag == 'form' and self.in_form:
                self.done, self.in_form = True, False

        def handle_data(self, data):
            if self.textarea:
                self.textarea[1] += data

    parser = Parser()
    parser.feed(html)
    data = {}
    for name, value in parser.data:
        data.setdefault(name, []).append(value)
    return data


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class AttackEditTest(RedactionFixture, TestCase):
    def test_saving_the_edit_form_unchanged_keeps_hidden_services_and_root_cause_event(self):
        """A constrained user opens the edit page and saves it as shown (or after changing only the commander):
        the hidden affected service and the root-cause event they may not view must stay; the form drops them."""
        self.make()
        self.add_permissions('business_application.change_incident')
        incident = Incident.objects.get()
        event = Event.objects.get()
        Incident.objects.filter(pk=incident.pk).update(root_cause_event=event)
        url = reverse('plugins:business_application:incident_edit', args=[incident.pk])
        page = self.client.get(url)
        self.assertHttpStatus(page, 200)
        data = browser_post_data(page.content.decode())
        data['commander'] = ['alice']
        response = self.client.post(url, data)
        self.assertEqual(response.status_code, 302, response.content.decode()[:500])
        incident.refresh_from_db()
        assert incident.commander == 'alice'
        assert incident.title == 'Service disruption affecting checkout-api'
        assert incident.root_cause == 'device:web-01'
        kept = (sorted(incident.affected_services.values_list('name', flat=True)), incident.root_cause_event_id)
        assert kept == (['checkout-api', 'payments-db'], event.pk), kept

    def test_change_log_of_a_constrained_users_edit_records_the_stored_title(self):
        """NetBox records ``object_repr = str(incident)`` in the change log; when a constrained user edits, that
        is computed in their page request, so the change log (read by others, who may see everything) stores
        "(hidden service)" instead of the incident's title."""
        from core.models import ObjectChange

        self.make()
        self.add_permissions('business_application.change_incident')
        incident = Incident.objects.get()
        url = reverse('plugins:business_application:incident_edit', args=[incident.pk])
        data = browser_post_data(self.client.get(url).content.decode())
        data['commander'] = ['alice']
        self.assertEqual(self.client.post(url, data).status_code, 302)
        change = ObjectChange.objects.filter(changed_object_id=incident.pk).latest('time')
        assert change.object_repr == 'Service disruption affecting checkout-api', change.object_repr

    def test_change_log_of_a_constrained_users_acknowledge_records_the_stored_title(self):
        """The same through the incident page's Acknowledge button, the most common action on shift."""
        from core.models import ObjectChange

        self.make()
        self.add_permissions('business_application.change_incident')
        incident = Incident.objects.get()
        url = reverse('plugins:business_application:incident_acknowledge', args=[incident.pk])
        self.assertEqual(self.client.post(url).status_code, 302)
        change = ObjectChange.objects.filter(changed_object_id=incident.pk).latest('time')
        assert change.object_repr == 'Service disruption affecting checkout-api', change.object_repr


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class AttackTruncationTest(RedactionFixture, TestCase):
    def test_a_long_service_name_cut_by_the_titles_length(self):
        """The correlator cuts titles at 255 characters (``incident.title[:255]``); a hidden service name cut there
        no longer matches the name the redactor looks for, and its first characters are shown."""
        self.make()
        long_name = 'inventory-' + 'x' * 200 + '-eu'
        service = TechnicalService.objects.create(name=long_name)
        service.devices.add(self.web)
        forget_map()
        title = f'Service disruption affecting checkout-api, {long_name}'[:255]
        incident = Incident.objects.get()
        checkout = TechnicalService.objects.get(name='checkout-api')
        named = [['service', checkout.pk, 'checkout-api'], ['service', service.pk, long_name]]  # as the correlator
        Incident.objects.filter(pk=incident.pk).update(title=title, title_objects=named)
        content = self.client.get(incident.get_absolute_url()).content.decode()
        assert 'inventory-xxxx' not in content


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class AttackEventTargetTest(RedactionFixture, APITestCase):
    def test_the_incident_pages_member_table_names_an_events_hidden_target(self):
        """On the incident page itself, the members table draws each member event's target: an event the user may
        view, on a device they may not, shows the device's name (and a link to it) next to the redacted paths."""
        self.make()
        self.add_permissions('business_application.view_event')
        Event.objects.update(content_type=ContentType.objects.get_for_model(Device), object_id=self.web.pk)
        self.client.force_login(self.user)
        content = self.client.get(Incident.objects.get().get_absolute_url()).content.decode()
        assert 'web-01' not in content
