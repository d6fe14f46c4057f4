"""The demo storm in a real browser: headless Chromium (Debian's package) drives NetBox served by Django's live
server on 127.0.0.1 against the test database.

The test loads the demo map, replays the demo alert burst through the receivers' intake, in arrival order,
logs in through the login page, opens the incident list and the storm's biggest incident, and checks that the
blast-radius picture and the members' reasons are on the page. Screenshots go to .work/artifacts/browser/.
Chromium may reach nothing but the live server: every other host name resolves to nothing.

Skipped, saying why, only when Chromium or its driver is not installed and CI is not set; ``make setup``
installs both.
"""

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

settings = pytest.importorskip('django.conf').settings
if not settings.configured:
    pytest.skip('needs NetBox: run under pytest-django (make test)', allow_module_level=True)

from django.contrib.staticfiles.handlers import StaticFilesHandler  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import override_settings  # noqa: E402
from django.test.testcases import LiveServerThread  # noqa: E402

REPO = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = REPO / '.work' / 'artifacts' / 'browser'
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser')
CHROMEDRIVER = shutil.which('chromedriver')
#: Alerts per delivery when the burst is replayed.
BATCH = 20
PASSWORD = 'demo-operator-password-1'  # noqa: S105 - a throwaway user of the test database


def _need_browser():
    missing = [
        name for name, path in (('chromium', CHROMIUM), ('chromedriver (chromium-driver)', CHROMEDRIVER)) if not path
    ]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append('selenium (pip)')
    if missing:
        reason = f'browser tests need {", ".join(missing)}: run make setup (installs them)'
        if os.environ.get('CI'):
            pytest.fail(reason + ' -- CI must run them', pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def live_url(transactional_db):
    """NetBox served on 127.0.0.1 (an ephemeral port) by Django's live-server thread, static files included."""
    thread = LiveServerThread('127.0.0.1', StaticFilesHandler, connections_override={}, port=0)
    thread.daemon = True
    thread.start()
    thread.is_ready.wait()
    if thread.error:
        raise thread.error
    try:
        with override_settings(ALLOWED_HOSTS=['127.0.0.1', 'testserver']):
            yield f'http://127.0.0.1:{thread.port}'
    finally:
        thread.terminate()
        for connection in connections.all():
            connection.close()


@pytest.fixture
def browser():
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        '--headless=new',
        # Chromium refuses to start as root with its sandbox on; these tests run as root in the container and
        # load only the pages of the local live server.
        '--no-sandbox',
        '--disable-dev-shm-usage',
        '--window-size=1440,1000',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-default-apps',
        # Nothing but the live server: every other host name resolves to nothing.
        '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
    ):
        options.add_argument(argument)
    # The driver is given, so Selenium never runs its driver manager (which would download one).
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)  # pages load before get() and click() return; this only covers slow renders
    try:
        yield driver
    finally:
        driver.quit()


def load_demo_storm():
    """The demo map and its alert burst, in arrival order with the payloads scripts/demo_alerts.py sends, stored
    through the receivers' intake (``services.intake.ingest``); returns the incident holding the most events."""
    from django.contrib.contenttypes.models import ContentType
    from django.db.models import Count

    from dcim.models import Device
    from virtualization.models import Cluster, VirtualMachine

    from business_application.demo.alerts import HORIZON, build_burst
    from business_application.demo.generate import generate
    from business_application.demo.load import load_demo_map
    from business_application.demo.payloads import CONTENT_TYPES, SOURCES, to_payload
    from business_application.models import BusinessApplication, EventSource, Incident, TechnicalService
    from business_application.services.graph_loader import bump_map_version, forget_map
    from business_application.services.intake import IncomingAlert, ingest

    demo_map = generate(7)
    load_demo_map(demo_map)
    forget_map()
    bump_map_version()
    for name, description in SOURCES.items():
        EventSource.objects.get_or_create(name=name, defaults={'description': description})
    ids = {}
    for kind, model, key in (
        ('device', Device, 'name'),
        ('vm', VirtualMachine, 'name'),
        ('cluster', Cluster, 'name'),
        ('service', TechnicalService, 'name'),
        ('app', BusinessApplication, 'appcode'),
    ):
        ids.update({f'{kind}:{name}': pk for pk, name in model.objects.values_list('pk', key)})

    content_types = {name: ContentType.objects.get_by_natural_key(*name.split('.')) for name in CONTENT_TYPES.values()}
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=HORIZON)
    first_seen = {}
    incoming = []
    for alert in build_burst(demo_map, 7):
        fired = first_seen.setdefault((alert.source, alert.dedup_id), start + timedelta(seconds=alert.t))
        payload = to_payload(alert, ids, start, started=fired)
        incoming.append(
            IncomingAlert(
                source=payload['event_source'],
                dedup_id=payload['dedup_id'],
                message=payload['message'],
                status=payload['status'],
                criticallity=payload['criticallity'],
                raw=payload['raw'],
                content_type=content_types.get(payload.get('content_type')),
                object_id=payload.get('object_id'),
                unmapped_label=payload.get('unmapped_label', ''),
                event_time=start + timedelta(seconds=alert.t),
            )
        )
    # In arrival order, a few alerts per delivery as a grouping sender (Alertmanager) posts them; each delivery
    # is one transaction and every alert in it is correlated on its save, one after the other.
    for first in range(0, len(incoming), BATCH):
        ingest(incoming[first : first + BATCH])

    return Incident.objects.annotate(members=Count('memberships')).order_by('-members', 'pk').first()


def screenshot(driver, name, height=None):
    """Save the window as .work/artifacts/browser/NAME.png; with ``height``, resized first (the whole page when
    the height is 'page')."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if height == 'page':
        height = min(max(driver.execute_script('return document.documentElement.scrollHeight'), 1000), 8000)
    if height:
        driver.set_window_size(1440, height)
    path = ARTIFACTS / f'{name}.png'
    driver.save_screenshot(str(path))
    return path


@pytest.mark.django_db(transaction=True)
def test_demo_storm_in_the_browser(browser, live_url):
    from selenium.webdriver.common.by import By

    from users.models import User

    incident = load_demo_storm()
    assert incident is not None
    assert incident.memberships.count() > 50
    User.objects.create_superuser('operator', 'operator@example.invalid', PASSWORD)

    # Log in through the login page
    browser.get(f'{live_url}/login/?next=/plugins/business-application/incidents/')
    browser.find_element(By.NAME, 'username').send_keys('operator')
    browser.find_element(By.NAME, 'password').send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()

    # The incident list, with the storm's incident in it
    link = browser.find_element(By.CSS_SELECTOR, f'a[href="{incident.get_absolute_url()}"]')
    screenshot(browser, 'incident-list')
    link.click()

    # The incident page: the picture, summarised, and why each event joined
    picture = browser.find_element(By.ID, 'ba-blast-radius')
    assert picture.tag_name == 'svg'
    boxes = picture.find_elements(By.CSS_SELECTOR, 'g.ba-node')
    assert len(boxes) > 3
    assert picture.find_elements(By.CSS_SELECTOR, 'g.ba-failing')
    assert picture.find_elements(By.CSS_SELECTOR, 'g.ba-down, g.ba-degraded')
    assert 'more' in ' '.join(s.text for s in picture.find_elements(By.CSS_SELECTOR, 'g.ba-summary text'))
    page = browser.find_element(By.TAG_NAME, 'body').text
    assert 'first event: opened the incident' in page
    assert 'time decay' in page
    assert ' → ' in page  # paths in words
    assert incident.root_cause in page
    # No script came from anywhere but the live server
    for source in browser.execute_script('return Array.from(document.scripts).map(s => s.src).filter(Boolean)'):
        assert source.startswith(live_url), source
    # The top of the page (fields, root cause, actions, the picture) is the README's screenshot (docs/images/)
    screenshot(browser, 'incident-page', height=2150)
    screenshot(browser, 'incident-page-full', height='page')

    # A service the storm took down: its dependency map around it
    browser.set_window_size(1440, 1000)
    down = next(item for item in incident.blast_radius['down'] if item['type'] == 'service')
    browser.get(f'{live_url}/plugins/business-application/technical-services/{down["id"]}/?depth=2')
    service_map = browser.find_element(By.ID, 'ba-service-map')
    assert service_map.find_elements(By.CSS_SELECTOR, 'g.ba-focus')
    assert service_map.find_elements(By.CSS_SELECTOR, 'g.ba-down')
    screenshot(browser, 'service-page', height='page')
