"""Writes a large synthetic dependency map into NetBox's database with COPY, fast enough for 1M objects.

Used by the query-count test (a 1k and a 20k map) and by bench/test_product_mapload.py (10k to
1M). Rows are written with PostgreSQL's COPY from a template instance of each model, so every
column NetBox requires gets the value an ordinary save would have given the template; only the
columns that differ per row (id, name, foreign keys) are set per row. Cable terminations carry
the cached ``_device`` the map loader reads; they point at interface ids that are not created
(the loader never reads interfaces), so these maps are for measuring, not for NetBox's UI.

The shape, seeded: 10% services (each depending on one to three earlier services, preferring a
few hubs), 1% business applications, 30% devices (3% of them switches, 10% hypervisors in
clusters, the rest servers carrying a service and cabled to a switch), 0.5% clusters and the rest
VMs (on a hypervisor or a cluster, each carrying a service).
"""

import random

from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.utils.text import slugify

from dcim.models import Cable, CableTermination, Device, DeviceRole, DeviceType, Interface, Manufacturer, Site
from virtualization.models import Cluster, ClusterType, VirtualMachine

from business_application.models import BusinessApplication, ServiceDependency, TechnicalService

__all__ = ('write_map',)

#: Cable terminations point at interface ids from here on, which no real interface will have.
FAKE_INTERFACE_IDS = 1 << 40


def _reserve(model, count):
    """``count`` fresh primary keys of the model's table."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [model._meta.db_table])
        sequence = cursor.fetchone()[0]
        cursor.execute('SELECT setval(%s, nextval(%s) + %s - 1)', [sequence, sequence, count])
        last = cursor.fetchone()[0]
    return list(range(last - count + 1, last + 1))


def _copy(model, template, rows):
    """COPY rows (dicts of attname -> value) into the model's table, other columns as the template's."""
    fields = [field for field in model._meta.concrete_fields]
    for field in fields:
        field.pre_save(template, True)
    base = {field.attname: field.get_db_prep_save(getattr(template, field.attname), connection) for field in fields}
    columns = ', '.join(connection.ops.quote_name(field.column) for field in fields)
    names = [field.attname for field in fields]
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f'COPY {model._meta.db_table} ({columns}) FROM STDIN') as copy:
            for row in rows:
                values = base | row
                copy.write_row([values[name] for name in names])


def _named(model, name, **fields):
    obj = model.objects.filter(slug=slugify(name)).first()
    return obj or model.objects.create(name=name, slug=slugify(name), **fields)


def write_map(objects, prefix='m', seed=1):
    """Write a map of about ``objects`` nodes; returns a dict of counts and some object ids to aim at."""
    rng = random.Random(seed)
    site = _named(Site, f'{prefix}-site')
    manufacturer = _named(Manufacturer, f'{prefix}-maker')
    device_type = DeviceType.objects.filter(slug=f'{prefix}-type').first() or DeviceType.objects.create(
        manufacturer=manufacturer, model=f'{prefix}-type', slug=f'{prefix}-type'
    )
    roles = {name: _named(DeviceRole, name, color='9e9e9e') for name in ('server', 'switch', 'hypervisor')}
    cluster_type = _named(ClusterType, f'{prefix}-cluster-type')

    n_services = max(3, objects // 10)
    n_apps = max(1, objects // 100)
    n_devices = max(3, objects * 3 // 10)
    n_clusters = max(1, objects // 200)
    n_vms = max(1, objects - n_services - n_apps - n_devices - n_clusters)

    services = _reserve(TechnicalService, n_services)
    _copy(
        TechnicalService,
        TechnicalService(name='x'),
        ({'id': pk, 'name': f'{prefix}-svc-{i}'} for i, pk in enumerate(services)),
    )
    apps = _reserve(BusinessApplication, n_apps)
    _copy(
        BusinessApplication,
        BusinessApplication(appcode='x', name='x'),
        ({'id': pk, 'appcode': f'{prefix}-app-{i}', 'name': f'{prefix} app {i}'} for i, pk in enumerate(apps)),
    )
    clusters = _reserve(Cluster, n_clusters)
    _copy(
        Cluster,
        Cluster(name='x', type=cluster_type),
        ({'id': pk, 'name': f'{prefix}-cl-{i}'} for i, pk in enumerate(clusters)),
    )

    # Dependencies: each service after the first few depends on 1-3 earlier ones, hubs preferred.
    dependencies = []
    for i in range(3, n_services):
        for _ in range(rng.choice((1, 1, 2, 3))):
            j = int(i * rng.random() ** 3)  # skewed towards the first services: power-law-ish hubs
            dependencies.append((services[i], services[j]))
    dependencies = list(dict.fromkeys(dependencies))
    dep_ids = _reserve(ServiceDependency, len(dependencies))
    _copy(
        ServiceDependency,
        ServiceDependency(name='x', upstream_service_id=services[0], downstream_service_id=services[1]),
        (
            {'id': pk, 'name': f'{prefix}-dep-{pk}', 'downstream_service_id': d, 'upstream_service_id': u}
            for pk, (d, u) in zip(dep_ids, dependencies, strict=True)
        ),
    )

    devices = _reserve(Device, n_devices)
    n_switches = max(1, n_devices * 3 // 100)
    n_hypervisors = max(1, n_devices // 10)
    kinds = ['switch'] * n_switches + ['hypervisor'] * n_hypervisors
    kinds += ['server'] * (n_devices - len(kinds))
    device_rows = []
    for i, (pk, kind) in enumerate(zip(devices, kinds, strict=True)):
        name = f'{prefix}-{kind}-{i}'
        cluster = clusters[i % n_clusters] if kind == 'hypervisor' else None
        device_rows.append({'id': pk, 'name': name, '_name': name, 'role_id': roles[kind].pk, 'cluster_id': cluster})
    _copy(Device, Device(name='x', device_type=device_type, role=roles['server'], site=site), device_rows)
    switches = devices[:n_switches]
    hypervisors = devices[n_switches : n_switches + n_hypervisors]
    servers = devices[n_switches + n_hypervisors :]

    vms = _reserve(VirtualMachine, n_vms)
    vm_rows = []
    for i, pk in enumerate(vms):
        if i % 2 == 0:  # on a hypervisor, in that hypervisor's cluster
            host_row = device_rows[n_switches + i % len(hypervisors)]
            host, cluster = host_row['id'], host_row['cluster_id']
        else:  # in a cluster, no host known
            host, cluster = None, clusters[(i // 2) % n_clusters]
        name = f'{prefix}-vm-{i}'
        vm_rows.append({'id': pk, 'name': name, '_name': name, 'device_id': host, 'cluster_id': cluster})
    _copy(VirtualMachine, VirtualMachine(name='x', site=site), vm_rows)

    def through(relation, left, right, pairs):
        model = relation.through
        ids = _reserve(model, len(pairs))
        _copy(model, model(), ({'id': pk, left: a, right: b} for pk, (a, b) in zip(ids, pairs, strict=True)))

    through(
        TechnicalService.devices,
        'technicalservice_id',
        'device_id',
        [(services[rng.randrange(n_services)], pk) for pk in servers],
    )
    through(
        TechnicalService.vms,
        'technicalservice_id',
        'virtualmachine_id',
        [(services[rng.randrange(n_services)], pk) for pk in vms],
    )
    through(
        TechnicalService.business_apps,
        'technicalservice_id',
        'businessapplication_id',
        list(dict.fromkeys((services[rng.randrange(n_services)], pk) for pk in apps for _ in range(3))),
    )

    # Cables: every server to a switch.
    cables = _reserve(Cable, len(servers))
    _copy(Cable, Cable(), ({'id': pk} for pk in cables))
    interface_type = ContentType.objects.get_for_model(Interface)
    terminations = _reserve(CableTermination, 2 * len(servers))
    template = CableTermination(cable_id=cables[0], cable_end='A', termination_type=interface_type, termination_id=0)

    def termination_rows():
        for i, (cable, server) in enumerate(zip(cables, servers, strict=True)):
            switch = switches[i % n_switches]
            yield {
                'id': terminations[2 * i],
                'cable_id': cable,
                'cable_end': 'A',
                'termination_id': FAKE_INTERFACE_IDS + terminations[2 * i],
                '_device_id': switch,
                '_site_id': site.pk,
            }
            yield {
                'id': terminations[2 * i + 1],
                'cable_id': cable,
                'cable_end': 'B',
                'termination_id': FAKE_INTERFACE_IDS + terminations[2 * i + 1],
                '_device_id': server,
                '_site_id': site.pk,
            }

    _copy(CableTermination, template, termination_rows())
    return {
        'services': services,
        'devices': devices,
        'servers': servers,
        'switches': switches,
        'vms': vms,
        'dependencies': len(dependencies),
        'nodes': n_services + n_apps + n_devices + n_clusters + n_vms,
    }
