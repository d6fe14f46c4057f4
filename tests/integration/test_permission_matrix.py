"""Who may do what: every REST endpoint, receiver, automation endpoint, page and page action of the plugin,
asked by every kind of caller, answers what NetBox's permission model says.

The matrix is generated from the URL conf: each of the plugin's routes is classified by its view (a NetBox
model viewset, a receiver, an automation endpoint, a NetBox generic page, a feature tab). A route that no
rule classifies fails the test, so a new endpoint or page cannot be left out; a new page built on NetBox's
generic views (say an incident action needing ``change_incident``) is classified by the permission it
requires and checked without any edit here.

Callers: anonymous; a user with no permission; a user who may view every plugin model; a read-only
token of a user who may do everything; a user whose permissions are constrained to incidents of one
status and events of one source. Refused writes must change nothing.
"""

import re
from collections import Counter

from django.contrib.contenttypes.models import ContentType
from django.test import Client, TestCase, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from netbox.api.viewsets import NetBoxModelViewSet
from netbox.views.generic import ObjectEditView
from netbox.views.generic.feature_views import ObjectChangeLogView, ObjectJournalView
from users.constants import TOKEN_PREFIX
from users.models import ObjectPermission, Token, User
from utilities.views import ObjectPermissionRequiredMixin

from business_application.api.automation import ModelPermissionsRequired
from business_application.api.receivers import AlertReceiverView
from business_application.models import (
    BusinessApplication,
    Event,
    EventSource,
    Incident,
    IncidentEvent,
    Maintenance,
    ServiceDependency,
    TechnicalService,
)
from business_application.ui.actions import IncidentActionView

API_PREFIX = 'api/plugins/business-application/'
UI_PREFIX = 'plugins/business-application/'
MODELS = (BusinessApplication, TechnicalService, ServiceDependency, EventSource, Event, Incident, Maintenance)
ALL_ACTIONS = ['view', 'add', 'change', 'delete']

#: The constrained caller sees incidents of this status and events of this source only.
SCOPE_STATUS = 'new'
SCOPE_SOURCE = 'alpha'


def plugin_routes():
    """(route, name, view class, router actions) of every plugin URL, format-suffix variants left out."""

    def walk(patterns, prefix=''):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                route = prefix + str(pattern.pattern)
                callback = pattern.callback
                view = getattr(callback, 'cls', None) or getattr(callback, 'view_class', None)
                yield route, pattern.name, view, getattr(callback, 'actions', None) or {}, pattern.default_args

    for route, name, view, actions, defaults in walk(get_resolver().url_patterns):
        if not (route.startswith(API_PREFIX) or route.startswith(UI_PREFIX)):
            continue
        if '(?P<format>' in route or '<drf_format_suffix:format>' in route:
            continue
        yield route, name, view, actions, defaults


def ui_action(view, route, defaults):
    """The permission action a NetBox page requires (view/add/change/delete), from the view itself."""
    if issubclass(view, ObjectEditView):
        return 'change' if '<int:pk>' in route else 'add'
    instance = view()
    instance.kwargs = dict(defaults)
    permission = instance.get_required_permission()
    return permission.rsplit('.', 1)[1].split('_', 1)[0]


def classify(route, name, view, actions, defaults):
    """(kind, model, detail?, extra) of a route, or None when no rule knows it."""
    if view is None:
        return None
    if route.startswith(API_PREFIX):
        if issubclass(view, NetBoxModelViewSet):
            # A route about one object (the detail route, or an action on it such as incidents/<pk>/members/).
            detail = 'retrieve' in actions.values() or '(?P<pk>' in route
            return ('api-detail' if detail else 'api-list', view.queryset.model, None)
        if issubclass(view, AlertReceiverView):
            return ('receiver', Event, None)
        if ModelPermissionsRequired in getattr(view, 'permission_classes', ()):
            return ('automation', None, view.required_permissions)
        if name == 'api-root':
            return ('api-root', None, None)
        return None
    if issubclass(view, IncidentActionView):
        return ('ui-action', Incident, 'change')
    if issubclass(view, ObjectChangeLogView | ObjectJournalView):
        return ('ui-tab', defaults['model'], 'view')
    if issubclass(view, ObjectPermissionRequiredMixin):
        model = view.queryset.model if getattr(view, 'queryset', None) is not None else None
        return ('ui-page', model, ui_action(view, route, defaults))
    return None


def to_path(route, pk):
    path = re.sub(r'<int:pk>|\(\?P<pk>[^)]*\)', str(pk), route)
    return '/' + path.replace('^', '').replace('$', '')


def grant(user, models, actions, constraints=None, name=None):
    permission = ObjectPermission.objects.create(
        name=name or f'{user.username} {actions} {len(models)}', actions=actions, constraints=constraints
    )
    permission.object_types.set([ContentType.objects.get_for_model(model) for model in models])
    permission.users.add(user)


def token_of(user, write_enabled=True):
    token = Token.objects.create(user=user, write_enabled=write_enabled)
    return f'Bearer {TOKEN_PREFIX}{token.key}.{token.token}'


def row_counts():
    return {model.__name__: model.objects.count() for model in (*MODELS, IncidentEvent)}


ALERTMANAGER_BODY = {
    'version': '4',
    'status': 'firing',
    'receiver': 'netbox',
    'groupLabels': {},
    'commonLabels': {},
    'commonAnnotations': {},
    'externalURL': '',
    'alerts': [
        {
            'status': 'firing',
            'labels': {'alertname': 'Down', 'instance': 'matrix-host'},
            'annotations': {},
            'startsAt': '2026-03-01T09:00:00Z',
            'endsAt': '0001-01-01T00:00:00Z',
            'fingerprint': 'matrix',
        }
    ],
}


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False, LOGIN_REQUIRED=True)
class PermissionMatrixTest(TestCase):
    @classmethod
    def setUpTestData(cls):
        alpha, beta = EventSource.objects.create(name=SCOPE_SOURCE), EventSource.objects.create(name='beta')
        app = BusinessApplication.objects.create(appcode='MTX', name='Matrix app')
        up, down = TechnicalService.objects.create(name='up'), TechnicalService.objects.create(name='down')
        dependency = ServiceDependency.objects.create(name='dep', upstream_service=up, downstream_service=down)
        event_in = Event.objects.create(message='in scope', event_source=alpha, dedup_id='a', unmapped_label='x:1')
        event_out = Event.objects.create(message='out of scope', event_source=beta, dedup_id='b', unmapped_label='x:2')
        incident_in = Incident.objects.create(title='in scope', status=SCOPE_STATUS)
        incident_out = Incident.objects.create(title='out of scope', status='investigating')
        maintenance = Maintenance.objects.create(
            content_type=ContentType.objects.get_for_model(TechnicalService),
            object_id=up.pk,
            start='2026-03-01T00:00:00Z',
            end='2026-03-02T00:00:00Z',
        )
        # The object each model's detail routes are asked about, and the one the constrained caller may not see.
        cls.objects = {
            BusinessApplication: (app, None),
            TechnicalService: (up, None),
            ServiceDependency: (dependency, None),
            EventSource: (alpha, None),
            Event: (event_in, event_out),
            Incident: (incident_in, incident_out),
            Maintenance: (maintenance, None),
        }

        cls.nobody = User.objects.create_user(username='nobody')
        cls.viewer = User.objects.create_user(username='viewer')
        grant(cls.viewer, MODELS, ['view'])
        cls.admin = User.objects.create_user(username='admin-readonly-token')
        grant(cls.admin, MODELS, ALL_ACTIONS)
        cls.scoped = User.objects.create_user(username='scoped')
        grant(cls.scoped, [Incident], ['view'], {'status': SCOPE_STATUS}, name='incidents of one status')
        grant(cls.scoped, [Event], ['view'], {'event_source__name': SCOPE_SOURCE}, name='events of one source')
        cls.tokens = {
            'nobody': token_of(cls.nobody),
            'viewer': token_of(cls.viewer),
            'readonly-token': token_of(cls.admin, write_enabled=False),
            'scoped': token_of(cls.scoped),
        }

    # The routes

    def routes(self):
        classified, unknown = [], []
        for route, name, view, actions, defaults in plugin_routes():
            kind = classify(route, name, view, actions, defaults)
            (classified if kind else unknown).append((route, name, view, actions, kind))
        return classified, unknown

    def test_every_route_of_the_plugin_is_classified(self):
        classified, unknown = self.routes()
        self.assertFalse(
            unknown,
            'routes no rule of the permission matrix classifies (add a rule in classify()): '
            + ', '.join(f'{route} ({view.__name__ if view else None})' for route, _, view, _, _ in unknown),
        )
        kinds = Counter(kind[0] for *_, kind in classified)
        # Every model has its list and detail route (incidents also members/) and its pages; the four receivers;
        # three automation endpoints.
        self.assertEqual(kinds['api-list'], len(MODELS))
        self.assertEqual(kinds['api-detail'], len(MODELS) + 1)
        self.assertEqual(kinds['receiver'], 4)
        self.assertEqual(kinds['automation'], 3)
        self.assertGreaterEqual(kinds['ui-page'], 8 * len(MODELS))
        self.assertEqual(kinds['ui-tab'], 2 * len(MODELS))
        self.assertEqual(kinds['ui-action'], 3)  # acknowledge, resolve, move an event

    # REST

    def api(self, subject, method, path, body=None):
        client = APIClient()
        header = {'HTTP_AUTHORIZATION': self.tokens[subject]} if subject != 'anonymous' else {}
        return getattr(client, method)(path, body, format='json', **header)

    def expected_api(self, kind, model, extra, method, subject, scope):
        """The status NetBox's permission model gives (a set when the body decides between allowed answers)."""
        write = method != 'get'
        if subject == 'anonymous':
            return 403
        if kind == 'api-root':
            return 200  # NetBox's API roots list the endpoint names to any authenticated caller (they hold no data)
        if subject == 'nobody':
            return 403
        if kind == 'receiver':
            return 403  # needs add_event and change_event, and a write-enabled token
        if kind == 'automation':
            needed = extra.get(method.upper(), ())
            if write and subject == 'readonly-token':
                return 403
            grants = {
                'viewer': {f'business_application.view_{m._meta.model_name}' for m in MODELS},
                'readonly-token': {
                    f'business_application.{a}_{m._meta.model_name}' for m in MODELS for a in ALL_ACTIONS
                },
                'scoped': {'business_application.view_incident', 'business_application.view_event'},
            }[subject]
            return 200 if set(needed) <= grants else 403
        if write:
            return 403  # viewer and scoped hold no write permission; the admin's token is read-only
        if subject == 'scoped' and model not in (Incident, Event):
            return 403
        if kind == 'api-detail' and scope == 'out' and subject == 'scoped':
            return 404
        return 200

    def test_rest_endpoints(self):
        classified, _ = self.routes()
        checked = 0
        before = row_counts()
        for route, name, view, actions, (kind, model, extra) in classified:
            if not kind.startswith(('api', 'receiver', 'automation')):
                continue
            methods = self.api_methods(kind, view, actions, extra)
            scopes = ['in', 'out'] if kind == 'api-detail' and self.objects[model][1] is not None else ['in']
            for scope in scopes:
                path = self.api_path(route, kind, model, scope)
                for method in methods:
                    for subject in ('anonymous', 'nobody', 'viewer', 'readonly-token', 'scoped'):
                        expected = self.expected_api(kind, model, extra, method, subject, scope)
                        with self.subTest(route=route, method=method, subject=subject, scope=scope):
                            response = self.api(subject, method, path, self.api_body(kind, name, method))
                            self.assertEqual(response.status_code, expected, response.content[:300])
                            if response.status_code == 200 and kind == 'api-list' and method == 'get':
                                self.assert_listed(model, subject, response.json())
                        checked += 1
        self.assertEqual(row_counts(), before, 'a refused request changed something')
        print(f'\npermission matrix, REST: {checked} cells')
        self.assertGreater(checked, 300)

    @staticmethod
    def api_methods(kind, view, actions, extra):
        if kind in ('api-list', 'api-detail'):
            return [method for method in actions if method in ('get', 'post', 'put', 'patch', 'delete')]
        if kind == 'receiver':
            return ['post', 'put']
        if kind == 'automation':
            return [method.lower() for method in extra]
        return ['get']

    def api_path(self, route, kind, model, scope):
        if kind != 'api-detail':
            return to_path(route, 0)
        inside, outside = self.objects[model]
        return to_path(route, (outside if scope == 'out' else inside).pk)

    def api_body(self, kind, name, method):
        if method in ('get', 'delete'):
            return None
        if kind == 'receiver':
            return ALERTMANAGER_BODY
        if name.endswith('process-event'):
            return {'event_id': self.objects[Event][0].pk}
        if name.endswith('process-unprocessed'):
            return {'hours': 1}
        return {'description': 'changed by the matrix'}

    def assert_listed(self, model, subject, data):
        listed = {row['id'] for row in data['results']}
        visible = model.objects.all()
        if subject == 'scoped':
            visible = visible.filter(
                **({'status': SCOPE_STATUS} if model is Incident else {'event_source__name': SCOPE_SOURCE})
            )
        self.assertEqual(listed, set(visible.values_list('pk', flat=True)), f'{model.__name__} list for {subject}')

    # Pages

    def page(self, subject, method, path):
        client = Client()
        if subject != 'anonymous':
            client.force_login(getattr(self, subject))
        return getattr(client, method)(path)

    def expected_page(self, kind, model, action, method, subject, scope):
        if kind == 'ui-action' and method == 'get':
            return 405  # the incident actions are POST only, for everyone; a POST needs a login first
        if subject == 'anonymous':
            return 'login'
        may_view = subject == 'viewer' or (subject == 'scoped' and model in (Incident, Event))
        if kind == 'ui-tab':
            # NetBox's changelog and journal tabs look the object up among what the user may view: 404 otherwise.
            return 200 if may_view and not (scope == 'out' and subject == 'scoped') else 404
        if action != 'view' or not may_view:
            return 403
        return 404 if scope == 'out' and subject == 'scoped' else 200

    def test_pages_and_page_actions(self):
        classified, _ = self.routes()
        checked = 0
        before = row_counts()
        for route, name, _view, _actions, (kind, model, action) in classified:
            if not kind.startswith('ui'):
                continue
            detail = '<int:pk>' in route
            scopes = ['in', 'out'] if detail and self.objects[model][1] is not None else ['in']
            methods = ['get'] if action == 'view' else ['get', 'post']
            for scope in scopes:
                inside, outside = self.objects[model]
                path = to_path(route, (outside if scope == 'out' else inside).pk)
                for method in methods:
                    for subject in ('anonymous', 'nobody', 'viewer', 'scoped'):
                        expected = self.expected_page(kind, model, action, method, subject, scope)
                        with self.subTest(route=route, method=method, subject=subject, scope=scope):
                            response = self.page(subject, method, path)
                            if expected == 'login':
                                self.assertEqual(response.status_code, 302)
                                self.assertIn('/login/', response['Location'])
                            else:
                                self.assertEqual(response.status_code, expected)
                            if expected == 200 and name.endswith('_list') and subject == 'scoped':
                                self.assert_page_lists(model, response.content.decode())
                        checked += 1
        self.assertEqual(row_counts(), before, 'a refused page action changed something')
        print(f'\npermission matrix, pages: {checked} cells')
        self.assertGreater(checked, 300)

    def assert_page_lists(self, model, html):
        inside, outside = self.objects[model]
        self.assertIn(inside.get_absolute_url(), html)
        self.assertNotIn(outside.get_absolute_url(), html)


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class ConstrainedWriterTest(TestCase):
    """A token that may change only incidents of one status: in scope it edits, out of scope it finds nothing,
    and it cannot move an incident out of its scope."""

    @classmethod
    def setUpTestData(cls):
        cls.inside = Incident.objects.create(title='in', status=SCOPE_STATUS)
        cls.outside = Incident.objects.create(title='out', status='investigating')
        user = User.objects.create_user(username='scoped-writer')
        grant(user, [Incident], ['view', 'change'], {'status': SCOPE_STATUS}, name='edit new incidents')
        cls.header = {'HTTP_AUTHORIZATION': token_of(user)}

    def patch(self, incident, body):
        return APIClient().patch(f'/{API_PREFIX}incidents/{incident.pk}/', body, format='json', **self.header)

    def test_edits_in_scope_only(self):
        self.assertEqual(self.patch(self.inside, {'description': 'looking'}).status_code, 200)
        self.assertEqual(self.patch(self.outside, {'description': 'looking'}).status_code, 404)
        self.assertEqual(self.patch(self.inside, {'status': 'investigating'}).status_code, 403)
        self.inside.refresh_from_db()
        self.outside.refresh_from_db()
        self.assertEqual((self.inside.status, self.inside.description), (SCOPE_STATUS, 'looking'))
        self.assertEqual(self.outside.description, '')
        self.assertEqual(
            APIClient().delete(f'/{API_PREFIX}incidents/{self.inside.pk}/', **self.header).status_code, 403
        )
