"""The bulk loader: NetBox then holds the very map the generator describes, and a second load changes nothing.

Needs NetBox's test database (``make test``); skipped when run without pytest-django.
"""

import io
import json

import pytest

settings = pytest.importorskip('django.conf').settings
if not settings.configured:
    pytest.skip('needs NetBox: run under pytest-django (make test)', allow_module_level=True)

from django.core.management import CommandError, call_command  # noqa: E402

from business_application.correlation.mapbuilder import MapBuilder  # noqa: E402
from business_application.correlation.replay import build_map  # noqa: E402
from business_application.correlation.scenario import parse_scenario  # noqa: E402
from business_application.demo.generate import generate, summary  # noqa: E402

SEED = 7


def edges_of(build_the_map, monkeypatch):
    """The map's edges as (upstream label, downstream label, kind), captured from the builder."""
    captured = {}
    original = MapBuilder.build

    def build(self, backend=None):
        captured['builder'] = self
        return original(self, backend)

    monkeypatch.setattr(MapBuilder, 'build', build)
    build_the_map()
    monkeypatch.setattr(MapBuilder, 'build', original)
    builder = captured['builder']
    labels = builder.labels
    return set(labels), {
        (labels[s], labels[d], k) for s, d, k in zip(builder.src, builder.dst, builder.edge_kind, strict=True)
    }


@pytest.fixture(scope='module')
def demo_map():
    return generate(SEED)


@pytest.mark.django_db
def test_netbox_holds_the_generated_map(demo_map, monkeypatch):
    from dcim.models import Cable, CableTermination, Device, Interface
    from virtualization.models import VirtualMachine

    from business_application.demo.load import load_demo_map, loaded_seed
    from business_application.services.graph_loader import load_map

    assert loaded_seed() is None
    counts = load_demo_map(demo_map)
    assert loaded_seed() == SEED
    shape = summary(demo_map)
    assert counts['devices'] == Device.objects.count() == shape['devices']
    assert counts['virtual machines'] == VirtualMachine.objects.count() == shape['vms']
    assert Cable.objects.count() == shape['cables']

    # What the correlation reads from NetBox is what the replay tool reads from the scenario.
    in_netbox = edges_of(lambda: load_map(backend='python'), monkeypatch)
    in_file = edges_of(lambda: build_map(parse_scenario(json.dumps(demo_map)), 'python'), monkeypatch)
    assert in_netbox == in_file

    # The cached fields that CableTermination.save() and the cable signals would have set.
    assert not CableTermination.objects.filter(_device__isnull=True).exists()
    assert not CableTermination.objects.filter(_site__isnull=True).exists()
    cabled = Interface.objects.filter(cable__isnull=False)
    assert cabled.count() == 2 * shape['cables']
    assert not cabled.filter(_path__isnull=True).exists()
    server = cabled.filter(device__role__slug='server').first()
    assert server.link_peers[0].device.role.slug == 'switch'
    assert server.path.destinations == server.link_peers
    device = Device.objects.get(pk=server.device_id)
    assert device.interface_count == device.interfaces.count()
    assert device.primary_ip4 is not None


@pytest.mark.django_db
def test_load_demo_runs_once_per_seed():
    from dcim.models import Device

    out = io.StringIO()
    call_command('load_demo', seed=SEED, stdout=out)
    assert 'Loaded the demo map of seed 7' in out.getvalue()
    devices = Device.objects.count()

    out = io.StringIO()
    call_command('load_demo', seed=SEED, stdout=out)
    assert 'already loaded' in out.getvalue()
    assert Device.objects.count() == devices
    with pytest.raises(CommandError, match='seed 7 is loaded'):
        call_command('load_demo', seed=SEED + 1, stdout=io.StringIO())
