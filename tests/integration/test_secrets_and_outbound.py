"""Secrets stay secret and the server calls out only where an admin pointed it.

- Tokens (the real one and a wrong guess) never appear in a log record or a response body when
  authentication or authorisation fails, on REST, receiver and automation endpoints.
- A webhook URL carrying a secret (userinfo or a query parameter) never appears in a log record or in the
  job's error when the webhook fails or cannot be reached.
- No field a non-admin can write names a URL the server requests: a user with every plugin permission
  writes a loopback listener's URL into every URL-like field and alert payload, the events are correlated and
  every notification job runs, and the listener hears nothing, while the admin-configured webhook does.
"""

import json
import logging
import socket

from django.contrib.contenttypes.models import ContentType
from django.db import models as db_models
from django.test import TestCase, override_settings
from rest_framework.test import APIClient

from users.constants import TOKEN_PREFIX
from users.models import ObjectPermission, Token, User

from business_application import notifications
from business_application.models import BusinessApplication, Event, EventSource, Incident, TechnicalService

from .maps import build
from .webhook_server import WebhookServer

API = '/api/plugins/business-application/'
MODELS = (BusinessApplication, TechnicalService, Event, EventSource, Incident)


class CapturedLogs(logging.Handler):
    """Every record of every logger, formatted with its arguments and traceback, while active.

    It turns the root logger and the loggers below to DEBUG while active and gives each its own level back on
    leaving: a level left at DEBUG would outlive the test, and every later test of the process would then format
    records nothing asked for (``django.template`` logs each variable a NetBox template fails to resolve, with a
    repr of the whole context whose incidents' titles are redacted per request, one query each: the incident
    page's query-count test then counted one query more on one of its two pages)."""

    LOGGERS = ('', 'business_application', 'django', 'django.request', 'netbox', 'rq')

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.lines = []
        self.setFormatter(logging.Formatter('%(name)s %(levelname)s %(message)s'))

    def emit(self, record):
        self.lines.append(self.format(record))

    def __enter__(self):
        self._levels = {name: logging.getLogger(name).level for name in self.LOGGERS}
        logging.getLogger().addHandler(self)
        for name in self.LOGGERS:
            logging.getLogger(name).setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc):
        logging.getLogger().removeHandler(self)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)

    @property
    def text(self):
        return '\n'.join(self.lines)


def test_captured_logs_give_every_level_back():
    before = {name: logging.getLogger(name).level for name in (*CapturedLogs.LOGGERS, 'django.template')}
    with CapturedLogs() as logs:
        logging.getLogger('django.template').debug('seen')
    assert logs.lines == ['django.template DEBUG seen']
    assert {name: logging.getLogger(name).level for name in before} == before
    assert not any(isinstance(handler, CapturedLogs) for handler in logging.getLogger().handlers)


def grant(user, actions):
    permission = ObjectPermission.objects.create(name=f'{user.username} {actions}', actions=actions)
    permission.object_types.set(
        [ContentType.objects.get_by_natural_key('business_application', m._meta.model_name) for m in MODELS]
    )
    permission.users.add(user)


@override_settings(BUSINESS_APP_AUTO_INCIDENTS_ENABLED=False)
class TokensNeverLeakTest(TestCase):
    def test_failed_authentication_and_authorisation_leak_no_token(self):
        user = User.objects.create_user(username='holder')
        token = Token.objects.create(user=user, write_enabled=False)
        real = f'{TOKEN_PREFIX}{token.key}.{token.token}'
        guessed = f'{TOKEN_PREFIX}{token.key}.{"f" * len(token.token)}'
        made_up = f'{TOKEN_PREFIX}{"a" * 12}.{"b" * 40}'
        secrets = (token.token, guessed.split('.')[1], made_up.split('.')[1])
        requests = [
            ('get', 'incidents/', None),
            ('post', 'events/', {'message': 'x'}),
            ('post', 'alerts/alertmanager/', {'version': '4', 'alerts': []}),
            ('post', 'alerts/generic/', {'message': 'x'}),
            ('post', 'incident-automation/process-event/', {'event_id': 1}),
            ('get', 'incident-automation/status/', None),
        ]
        bodies = []
        with CapturedLogs() as logs:
            for header in (f'Bearer {real}', f'Bearer {guessed}', f'Bearer {made_up}', f'Token {token.token}', real):
                for method, path, body in requests:
                    response = getattr(APIClient(), method)(API + path, body, format='json', HTTP_AUTHORIZATION=header)
                    with self.subTest(header=header[:10], path=path):
                        self.assertIn(response.status_code, (401, 403))
                    bodies.append(response.content.decode('utf-8', 'replace'))
        self.assertTrue(logs.lines, 'nothing was logged: the capture is not working')
        for secret in secrets:
            self.assertNotIn(secret, logs.text)
            for body in bodies:
                self.assertNotIn(secret, body)


class WebhookSecretsNeverLeakTest(TestCase):
    SECRET = 'hunter2-webhook-secret'

    def setUp(self):
        self.incident = Incident.objects.create(title='disk full')

    def attempt(self, url):
        with CapturedLogs() as logs, override_settings(BUSINESS_APP_NOTIFICATION_WEBHOOKS=[url]):
            with self.assertRaises(notifications.NotificationError) as raised:
                notifications.send_notification(self.incident.pk, 'created', url)
            try:
                raise raised.exception
            except notifications.NotificationError:
                logging.getLogger('business_application.notifications').exception('as RQ would log it')
        self.assertNotIn(self.SECRET, str(raised.exception))
        self.assertNotIn(self.SECRET, logs.text)
        return logs

    def test_a_failing_webhook_names_no_secret(self):
        with WebhookServer('fail') as server:
            port = server.server.server_port
            self.attempt(f'http://user:{self.SECRET}@127.0.0.1:{port}/hook')
            self.attempt(f'http://127.0.0.1:{port}/hook?token={self.SECRET}')
        # urllib takes no credentials from a URL: the first never got there, and says so without the secret.
        self.assertEqual(len(server.received), 1)

    def test_an_unreachable_webhook_names_no_secret(self):
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            port = probe.getsockname()[1]  # closed again below: nothing listens there
        self.attempt(f'http://user:{self.SECRET}@127.0.0.1:{port}/hook?token={self.SECRET}')


MAP = """
name: outbound
graph:
  services: [web]
  devices:
    - {name: out-01, role: server, services: [web]}
"""


class NoOutboundToUserSetUrlsTest(TestCase):
    def url_fields(self):
        """Every URL-typed field of the plugin's models that the REST API lets a user write."""
        found = []
        for model in MODELS:
            for field in model._meta.get_fields():
                if isinstance(field, db_models.URLField):
                    found.append((model, field.name))
        return found

    def test_nothing_a_user_writes_makes_the_server_call_it(self):
        objects = build(MAP)
        user = User.objects.create_user(username='operator')  # every plugin permission, not a superuser
        grant(user, ['view', 'add', 'change', 'delete'])
        # ...and may view the devices an incident's root cause names (else it may not change the root cause)
        devices = ObjectPermission.objects.create(name='operator devices', actions=['view'])
        devices.object_types.set([ContentType.objects.get_by_natural_key('dcim', 'device')])
        devices.users.add(user)
        token = Token.objects.create(user=user, write_enabled=True)
        header = {'HTTP_AUTHORIZATION': f'Bearer {TOKEN_PREFIX}{token.key}.{token.token}'}
        client = APIClient()
        with WebhookServer() as trap, WebhookServer() as admin_hook:
            bait = trap.url
            with override_settings(
                BUSINESS_APP_NOTIFICATION_WEBHOOKS=[admin_hook.url],
                BUSINESS_APP_INCIDENT_NOTIFICATIONS_ENABLED=True,
                BUSINESS_APP_PUBLIC_URL=bait,  # an admin setting: only text in the payload, never called
            ):
                self.assertEqual(self.url_fields(), [(BusinessApplication, 'link')])
                response = client.post(
                    API + 'business-applications/',
                    {'appcode': 'OUT', 'name': 'Out', 'link': bait, 'description': bait},
                    format='json',
                    **header,
                )
                self.assertEqual(response.status_code, 201, response.content)
                response = client.post(
                    API + 'event-sources/', {'name': 'prometheus', 'description': bait}, format='json', **header
                )
                self.assertEqual(response.status_code, 201, response.content)
                alert = {
                    'version': '4',
                    'status': 'firing',
                    'externalURL': bait,
                    'alerts': [
                        {
                            'status': 'firing',
                            'labels': {'alertname': 'Down', 'instance': 'out-01', 'runbook_url': bait},
                            'annotations': {'runbook_url': bait, 'dashboard': bait},
                            'startsAt': '2026-12-01T10:00:00Z',
                            'generatorURL': bait,
                            'fingerprint': 'out-1',
                        }
                    ],
                }
                with self.captureOnCommitCallbacks(execute=True) as callbacks:
                    response = client.post(API + 'alerts/alertmanager/', alert, format='json', **header)
                self.assertEqual(response.status_code, 200, response.content)
                pagerduty = {
                    'routing_key': 'k',
                    'event_action': 'trigger',
                    'dedup_key': 'out-2',
                    'client_url': bait,
                    'links': [{'href': bait, 'text': 'runbook'}],
                    'images': [{'src': bait}],
                    'payload': {'summary': 'down', 'source': 'out-01', 'severity': 'critical'},
                }
                response = client.post(API + 'alerts/pagerduty/?source=prometheus', pagerduty, format='json', **header)
                self.assertEqual(response.status_code, 202, response.content)
                incident = Incident.objects.get()
                response = client.patch(
                    API + f'incidents/{incident.pk}/',
                    {'description': bait, 'root_cause': bait},
                    format='json',
                    **header,
                )
                self.assertEqual(response.status_code, 200, response.content)
                self.assertTrue(callbacks, 'the decision scheduled no notification')
                # What the queued jobs would do, run here: each configured webhook, and only those.
                for action in notifications.ACTIONS:
                    for url in notifications.get_settings().notification_webhooks:
                        notifications.send_notification(incident.pk, action, url)
                    self.assertEqual(notifications.send_notification(incident.pk, action, bait), 'skipped')
        self.assertEqual(trap.received, [], 'the server requested a URL a user wrote')
        self.assertGreaterEqual(len(admin_hook.received), 2)
        self.assertIn(bait, json.dumps(admin_hook.received))  # it travelled as text, as the admin set it
        self.assertTrue(objects)
