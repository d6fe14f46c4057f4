"""Writes the generated demo map into NetBox with bulk queries, in one transaction.

``services/map_import.py`` creates a map object by object, which is right for scenario files but
takes minutes for thousands of devices, interfaces and cables. This loader creates the few
shared objects (regions, sites, racks, roles, types, clusters) with ordinary saves and everything
else with ``bulk_create``, then fills in by hand what the skipped ``save()`` methods and signals
would have done: cable terminations with their cached device, rack and site (the correlation
reads cables from those), cable paths (NetBox's "connection" column and trace view), primary IP
addresses, counter caches, the search index and the map version the correlation caches against.
Every object gets the tag ``demo``; the tag's description records the seed, which is how a second
load knows the map is already there.
"""

import logging
import re
import time
from collections import defaultdict
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils.text import slugify

from core.models import ObjectType
from dcim.models import (
    Cable,
    CablePath,
    CableTermination,
    Device,
    DeviceRole,
    DeviceType,
    Interface,
    Manufacturer,
    Rack,
    Region,
    Site,
)
from extras.models import CachedValue, CustomField, Tag, TaggedItem
from ipam.models import IPAddress
from netbox.registry import registry
from netbox.search import get_indexer
from utilities.counters import update_counts
from virtualization.models import Cluster, ClusterType, VirtualMachine, VMInterface

from ..models import BusinessApplication, ServiceDependency, TechnicalService
from ..services.graph_loader import bump_map_version, forget_map
from .generate import REGIONS

__all__ = ('DEMO_TAG', 'DemoLoadError', 'load_demo_map', 'loaded_seed')

logger = logging.getLogger('business_application.demo.load')

DEMO_TAG = 'demo'
ROLE_COLORS = {'server': '2196f3', 'hypervisor': '9c27b0', 'switch': '4caf50', 'core-switch': '009688'}
SERVER_PORT_TYPE = '25gbase-x-sfp28'
UPLINK_TYPE = '100gbase-x-qsfp28'


class DemoLoadError(RuntimeError):
    """The demo map cannot be loaded into this NetBox (another seed is loaded, or its names are taken)."""


def loaded_seed():
    """The seed of the demo map in NetBox, or None when none is loaded."""
    tag = Tag.objects.filter(slug=DEMO_TAG).first()
    match = re.search(r'seed (\d+)', tag.description) if tag else None
    return int(match.group(1)) if match and TaggedItem.objects.filter(tag=tag).exists() else None


def load_demo_map(demo_map):
    """Create the map in NetBox; returns a dict of counts by kind of object and the seconds it took."""
    started = time.monotonic()
    seed = demo_map['demo']['seed']
    with transaction.atomic():
        _check_free(demo_map)
        loader = _Loader(demo_map)
        loader.run()
        Tag.objects.filter(slug=DEMO_TAG).update(description=f'make demo map, seed {seed}')
        # The bulk writes sent no signal: tell every process's map snapshot that the map changed.
        forget_map()
        transaction.on_commit(bump_map_version)
    loader.counts['seconds'] = round(time.monotonic() - started, 1)
    logger.info('loaded the demo map of seed %s: %s', seed, loader.counts)
    return loader.counts


def _check_free(demo_map):
    graph = demo_map['graph']
    checks = (
        (TechnicalService, 'name', [s['name'] for s in graph['services']]),
        (BusinessApplication, 'appcode', [a['appcode'] for a in graph['business_applications']]),
        (Device, 'name', [d['name'] for d in graph['devices']]),
        (VirtualMachine, 'name', [v['name'] for v in graph['vms']]),
        (Cluster, 'name', [c['name'] for c in graph['clusters']]),
        (Site, 'name', [s['name'] for s in demo_map['demo']['sites']]),
    )
    taken = []
    for model, field, names in checks:
        taken += model.objects.filter(**{f'{field}__in': names}).values_list(field, flat=True)[:5]
    if taken:
        raise DemoLoadError(
            f'NetBox already holds objects the demo map would create ({", ".join(sorted(taken)[:5])}); '
            'load it into a database without them (scripts/migrate.sh --reset empties the dev database)'
        )


class _Loader:
    """One load: keeps the created objects by name so that later steps can point at them."""

    def __init__(self, demo_map):
        self.demo = demo_map['demo']
        self.graph = demo_map['graph']
        self.counts = {}
        self.tagged = defaultdict(list)
        self.ct_interface = ContentType.objects.get_for_model(Interface)
        self.ct_vminterface = ContentType.objects.get_for_model(VMInterface)

    def run(self):
        self.tag, _ = Tag.objects.get_or_create(slug=DEMO_TAG, defaults={'name': DEMO_TAG, 'color': 'ff9800'})
        self._places()
        self._services()
        self._clusters()
        self._devices()
        self._cables()
        self._vms()
        self._addresses()
        self._tags()
        self._counters()
        self._search_index()

    def _created(self, model, objects, count_as=None):
        """bulk_create, counting what was created."""
        created = model.objects.bulk_create(objects, batch_size=1000)
        name = count_as or str(model._meta.verbose_name_plural)
        self.counts[name] = self.counts.get(name, 0) + len(created)
        return created

    def _places(self):
        self.sites, self.racks = {}, {}
        for site in self.demo['sites']:
            code = site['region']
            region, _ = Region.objects.get_or_create(
                slug=f'demo-{code}', defaults={'name': f'{REGIONS[code][1]} (demo)'}
            )
            self.sites[site['name']] = Site.objects.create(
                name=site['name'],
                slug=slugify(site['name']),
                region=region,
                status='active',
                description=site['description'],
            )
        for rack in self.demo['racks']:
            self.racks[rack['name']] = Rack.objects.create(
                name=rack['name'],
                site=self.sites[rack['site']],
                status='active',
                u_height=42,
                description=f'{rack["kind"]} rack',
            )
        self.tagged[Site] += self.sites.values()
        self.tagged[Rack] += self.racks.values()
        self.counts.update(sites=len(self.sites), racks=len(self.racks))

    def _services(self):
        graph = self.graph
        services = self._created(
            TechnicalService,
            [
                TechnicalService(name=s['name'], service_type=s['type'], description=s.get('description', ''))
                for s in graph['services']
            ],
        )
        self.services = {s.name: s for s in services}
        apps = self._created(
            BusinessApplication,
            [
                BusinessApplication(appcode=a['appcode'], name=a['name'], owner='NOC demo')
                for a in graph['business_applications']
            ],
        )
        self.apps = {a.appcode: a for a in apps}
        through = TechnicalService.business_apps.through
        through.objects.bulk_create(
            [
                through(technicalservice_id=self.services[name].pk, businessapplication_id=self.apps[a['appcode']].pk)
                for a in graph['business_applications']
                for name in a['services']
            ]
        )
        kept = [d for d in graph['dependencies'] if d['service'] != d['depends_on']]
        self._created(
            ServiceDependency,
            [
                ServiceDependency(
                    name=d['name'] or f'{d["service"]} needs {d["depends_on"]}',
                    dependency_type=d['type'],
                    upstream_service=self.services[d['depends_on']],
                    downstream_service=self.services[d['service']],
                )
                for d in kept
            ],
        )
        self.tagged[TechnicalService] += services
        self.tagged[BusinessApplication] += apps

    def _clusters(self):
        self.clusters = {}
        types = {}
        for item in self.graph['clusters']:
            kind = item.get('type', 'Virtualization')
            if kind not in types:
                types[kind], _ = ClusterType.objects.get_or_create(slug=slugify(kind), defaults={'name': kind})
            site = self.sites.get(item.get('site'))
            self.clusters[item['name']] = Cluster.objects.create(
                name=item['name'], type=types[kind], scope=site, status='active'
            )
        self._carried(TechnicalService.clusters.through, 'cluster_id', self.graph['clusters'], self.clusters)
        self.tagged[Cluster] += self.clusters.values()
        self.counts['clusters'] = len(self.clusters)

    def _carried(self, through, column, items, objects):
        through.objects.bulk_create(
            [
                through(technicalservice_id=self.services[name].pk, **{column: objects[item['name']].pk})
                for item in items
                for name in item['services']
            ]
        )

    def _devices(self):
        manufacturer, _ = Manufacturer.objects.get_or_create(slug='generic', defaults={'name': 'Generic'})
        types = {}
        for key, spec in self.demo['device_types'].items():
            types[key], _ = DeviceType.objects.get_or_create(
                manufacturer=manufacturer,
                slug=key,
                defaults={'model': spec['model'], 'u_height': spec['u_height']},
            )
        roles = {}
        for slug in dict.fromkeys(d['role'] for d in self.graph['devices']):
            roles[slug], _ = DeviceRole.objects.get_or_create(
                slug=slug,
                defaults={'name': slug.replace('-', ' ').capitalize(), 'color': ROLE_COLORS.get(slug, '9e9e9e')},
            )
        devices = self._created(
            Device,
            [
                Device(
                    name=d['name'],
                    role=roles[d['role']],
                    device_type=types[d['device_type']],
                    site=self.sites[d['site']],
                    rack=self.racks[d['rack']],
                    position=Decimal(d['position']),
                    face='front',
                    status='active',
                    cluster=self.clusters.get(d['cluster']),
                )
                for d in self.graph['devices']
            ],
        )
        self.devices = {d.name: d for d in devices}
        self._carried(TechnicalService.devices.through, 'device_id', self.graph['devices'], self.devices)
        self.tagged[Device] += devices

    def _cables(self):
        """One interface at each end, the cable, its two terminations and the path each end traces."""
        items = {d['name']: d for d in self.graph['devices']}
        ports = defaultdict(int)
        interfaces, pairs = [], []

        def port(device_name, uplink):
            item = items[device_name]
            ports[device_name, uplink] += 1
            number = ports[device_name, uplink]
            if item['role'] in ('server', 'hypervisor'):
                name = f'eth{number - 1}'
            elif uplink and item['role'] == 'switch':
                name = f'Ethernet1/{48 + number}'  # a 48-port top-of-rack switch's uplinks come after its ports
            else:
                name = f'Ethernet1/{number}'
            interface = Interface(
                device=self.devices[device_name], name=name, type=UPLINK_TYPE if uplink else SERVER_PORT_TYPE
            )
            interfaces.append(interface)
            return interface

        for item in self.graph['devices']:
            for other in item['links']:
                # A link between two network devices is an uplink; every other one serves a server.
                uplink = items[other]['role'] not in ('server', 'hypervisor') and item['role'] not in (
                    'server',
                    'hypervisor',
                )
                pairs.append((port(item['name'], uplink), port(other, uplink), 'smf' if uplink else 'dac-passive'))
        for item in self.graph['devices']:
            if item['role'] not in ('server', 'hypervisor'):
                interfaces.append(
                    Interface(device=self.devices[item['name']], name='mgmt0', type='1000base-t', mgmt_only=True)
                )
        cables = self._created(
            Cable, [Cable(type=kind, status='connected', label=f'{a.device.name}:{a.name}') for a, _, kind in pairs]
        )
        for cable, (a, b, _) in zip(cables, pairs, strict=True):
            a.cable, a.cable_end, b.cable, b.cable_end = cable, 'A', cable, 'B'
        self._created(Interface, interfaces, 'device interfaces')
        # What CableTermination.save() caches: the terminating device, its rack, location and site.
        self._created(
            CableTermination,
            [
                CableTermination(
                    cable=interface.cable,
                    cable_end=interface.cable_end,
                    termination_type=self.ct_interface,
                    termination_id=interface.pk,
                    _device=interface.device,
                    _rack=interface.device.rack,
                    _location=interface.device.location,
                    _site=interface.device.site,
                )
                for pair in pairs
                for interface in pair[:2]
            ],
            'cable terminations',
        )
        self._paths(cables, pairs)
        Interface.objects.bulk_update([i for pair in pairs for i in pair[:2]], ['_path'], batch_size=1000)
        self.tagged[Cable] += cables

    def _paths(self, cables, pairs):
        ct_cable = ContentType.objects.get_for_model(Cable).pk
        paths, origins = [], []
        for cable, (a, b, _) in zip(cables, pairs, strict=True):
            for origin, far in ((a, b), (b, a)):
                path = [
                    [f'{self.ct_interface.pk}:{origin.pk}'],
                    [f'{ct_cable}:{cable.pk}'],
                    [f'{self.ct_interface.pk}:{far.pk}'],
                ]
                paths.append(
                    CablePath(
                        path=path,
                        is_active=True,
                        is_complete=True,
                        is_split=False,
                        _nodes=[node for step in path for node in step],
                    )
                )
                origins.append(origin)
        for path, origin in zip(self._created(CablePath, paths, 'cable paths'), origins, strict=True):
            origin._path = path

    def _vms(self):
        vms = self._created(
            VirtualMachine,
            [
                VirtualMachine(
                    name=v['name'],
                    site=self.sites[v['site']],
                    cluster=self.clusters[v['cluster']],
                    device=self.devices.get(v['host']),
                    status='active',
                    vcpus=v.get('vcpus'),
                    memory=v.get('memory'),
                )
                for v in self.graph['vms']
            ],
        )
        self.vms = {v.name: v for v in vms}
        self._carried(TechnicalService.vms.through, 'virtualmachine_id', self.graph['vms'], self.vms)
        self.vm_interfaces = {
            i.virtual_machine_id: i
            for i in self._created(
                VMInterface, [VMInterface(virtual_machine=v, name='eth0') for v in vms], 'VM interfaces'
            )
        }
        self.tagged[VirtualMachine] += vms

    def _addresses(self):
        """Each device's and VM's primary IPv4 address, on its first interface (a switch's on mgmt0)."""
        first = {}
        for interface in Interface.objects.filter(device__in=self.devices.values()).order_by('pk'):
            if interface.device_id not in first or interface.name == 'mgmt0':
                first[interface.device_id] = interface
        addresses, owners = [], []
        for item, owner in ((d, self.devices[d['name']]) for d in self.graph['devices']):
            if item['primary_ip']:
                addresses.append(
                    IPAddress(
                        address=item['primary_ip'],
                        status='active',
                        dns_name='',
                        assigned_object_type=self.ct_interface,
                        assigned_object_id=first[owner.pk].pk,
                    )
                )
                owners.append(owner)
        for item, owner in ((v, self.vms[v['name']]) for v in self.graph['vms']):
            if item['primary_ip']:
                addresses.append(
                    IPAddress(
                        address=item['primary_ip'],
                        status='active',
                        dns_name='',
                        assigned_object_type=self.ct_vminterface,
                        assigned_object_id=self.vm_interfaces[owner.pk].pk,
                    )
                )
                owners.append(owner)
        for address, owner in zip(self._created(IPAddress, addresses), owners, strict=True):
            owner.primary_ip4 = address
        Device.objects.bulk_update([o for o in owners if isinstance(o, Device)], ['primary_ip4'], batch_size=1000)
        VirtualMachine.objects.bulk_update(
            [o for o in owners if isinstance(o, VirtualMachine)], ['primary_ip4'], batch_size=1000
        )
        self.tagged[IPAddress] += addresses

    def _tags(self):
        rows = []
        for model, objects in self.tagged.items():
            content_type = ContentType.objects.get_for_model(model)
            rows += [TaggedItem(tag=self.tag, content_type=content_type, object_id=obj.pk) for obj in objects]
        TaggedItem.objects.bulk_create(rows, batch_size=2000)

    def _counters(self):
        """The counter caches (a device's interface count, a device type's device count, ...) that signals keep."""
        for child in (Device, Interface, VirtualMachine, VMInterface):
            for field_name, counter in registry['counter_fields'].get(child, {}).items():
                field = child._meta.get_field(field_name)
                update_counts(field.related_model, counter, field.related_query_name())

    def _search_index(self):
        """NetBox's global search reads a cache that post_save signals fill; bulk_create sent none.

        The values are what the model's search indexer gives (``search_backend.cache`` would write
        the same rows, but looks the object type up again for every object).
        """
        rows = []
        models = {**self.tagged, Interface: Interface.objects.filter(device__in=self.devices.values())}
        for model, objects in models.items():
            try:
                indexer = get_indexer(model)
            except KeyError:
                continue
            object_type = ObjectType.objects.get_for_model(model)
            custom_fields = [cf for cf in CustomField.objects.get_for_model(model) if cf.search_weight > 0]
            for instance in model.objects.filter(pk__in=[o.pk for o in objects]):
                rows += [
                    CachedValue(
                        object_type=object_type,
                        object_id=instance.pk,
                        field=field.name,
                        type=field.type,
                        weight=field.weight,
                        value=field.value,
                    )
                    for field in indexer.to_cache(instance, custom_fields=custom_fields)
                ]
        CachedValue.objects.bulk_create(rows, batch_size=2000)
