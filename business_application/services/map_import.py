"""Creates a dependency map in NetBox from the ``graph:`` schema of scenario files.

Used by the ``replay_scenario`` command and the demo loader. Devices, VMs, clusters and cables
are real NetBox objects (with the site, manufacturer, device type, roles and cluster type they
need), so the map is read back by the same loader as any production map.
"""

import logging

from django.utils.text import slugify

from dcim.models import Cable, Device, DeviceRole, DeviceType, Interface, Manufacturer, Site
from virtualization.models import Cluster, ClusterType, VirtualMachine

from ..models import BusinessApplication, ServiceDependency, TechnicalService

__all__ = ('MapImportError', 'import_map')

logger = logging.getLogger('business_application.services.map_import')


class MapImportError(ValueError):
    """The map cannot be created as given (for example, a name that NetBox already holds)."""


def _named(model, name, **fields):
    """The object of this name (or of its slug, as NetBox keeps slugs unique), created when missing."""
    slug = slugify(name)[:100] or 'x'
    existing = model.objects.filter(slug=slug).first() or model.objects.filter(name__iexact=name).first()
    return existing or model.objects.create(name=name, slug=slug, **fields)


def import_map(scenario, site_name='business-application-scenarios', strict=True):
    """Create the scenario's services, applications, dependencies, clusters, devices, VMs and cables.

    With ``strict``, a service, device, VM or cluster name that already exists is an error: a
    scenario must not be merged into an unrelated map. Returns a dict of created objects by label.
    """
    if strict:
        _check_free(scenario)
    site = _named(Site, site_name)
    manufacturer = _named(Manufacturer, 'Generic')
    device_type, _ = DeviceType.objects.get_or_create(
        manufacturer=manufacturer, model='Generic server', defaults={'slug': 'generic-server'}
    )
    cluster_type = _named(ClusterType, 'Scenario cluster')
    objects = {}

    services = {}
    for item in scenario.services:
        services[item['name']] = TechnicalService.objects.create(name=item['name'], service_type=item['type'])
        objects[f'service:{item["name"]}'] = services[item['name']]
    for item in scenario.applications:
        app = BusinessApplication.objects.create(appcode=item['appcode'], name=item['name'])
        app.technical_services.set([services[name] for name in item['services']])
        objects[f'app:{item["appcode"]}'] = app
    for item in scenario.dependencies:
        if item['service'] == item['depends_on']:
            logger.warning('scenario %s: %s depends on itself; skipped', scenario.name, item['service'])
            continue
        ServiceDependency.objects.create(
            name=item['name'] or f'{item["service"]} needs {item["depends_on"]}',
            upstream_service=services[item['depends_on']],
            downstream_service=services[item['service']],
            dependency_type=item['type'],
        )
    clusters = {}
    for item in scenario.clusters:
        clusters[item['name']] = Cluster.objects.create(name=item['name'], type=cluster_type, scope=site)
        clusters[item['name']].technical_services.set([services[name] for name in item['services']])
        objects[f'cluster:{item["name"]}'] = clusters[item['name']]
    devices = {}
    for item in scenario.devices:
        role = _named(DeviceRole, item['role'], color='9e9e9e')
        device = Device.objects.create(
            name=item['name'],
            role=role,
            device_type=device_type,
            site=site,
            cluster=clusters.get(item['cluster']),
        )
        device.technical_services.set([services[name] for name in item['services']])
        devices[item['name']] = device
        objects[f'device:{item["name"]}'] = device
    _cable_links(scenario, devices)
    for item in scenario.vms:
        host = devices.get(item['host'])
        cluster = clusters.get(item['cluster']) or (host.cluster if host else None)
        vm = VirtualMachine.objects.create(name=item['name'], cluster=cluster, device=host, site=site)
        vm.technical_services.set([services[name] for name in item['services']])
        objects[f'vm:{item["name"]}'] = vm
    return objects


def _cable_links(scenario, devices):
    seen = set()
    ports = {}

    def port(device):
        count = ports.get(device.pk, 0) + 1
        ports[device.pk] = count
        return Interface.objects.create(device=device, name=f'eth{count}', type='1000base-t')

    for item in scenario.devices:
        for other in item['links']:
            pair = tuple(sorted((item['name'], other)))
            if pair in seen or item['name'] == other:
                continue
            seen.add(pair)
            a, b = devices[item['name']], devices[other]
            Cable(a_terminations=[port(a)], b_terminations=[port(b)]).save()


def _check_free(scenario):
    clashes = []
    checks = (
        (TechnicalService, [s['name'] for s in scenario.services], 'service'),
        (Device, [d['name'] for d in scenario.devices], 'device'),
        (VirtualMachine, [v['name'] for v in scenario.vms], 'vm'),
        (Cluster, [c['name'] for c in scenario.clusters], 'cluster'),
    )
    for model, names, label in checks:
        clashes += [f'{label}:{name}' for name in model.objects.filter(name__in=names).values_list('name', flat=True)]
    clashes += [
        f'app:{code}'
        for code in BusinessApplication.objects.filter(
            appcode__in=[a['appcode'] for a in scenario.applications]
        ).values_list('appcode', flat=True)
    ]
    if clashes:
        raise MapImportError(
            f'NetBox already holds {", ".join(sorted(clashes)[:5])}{" and more" if len(clashes) > 5 else ""}; '
            'replay scenarios into a database without these objects'
        )
