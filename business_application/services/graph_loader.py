"""Loads NetBox's dependency map into the engine with a fixed handful of bulk queries, and keeps it fresh.

Each process keeps one snapshot. Every change to the map (services, dependencies, memberships,
VM placement, devices, cables) bumps a version number in NetBox's cache (Redis) after commit;
before each decision the snapshot compares its version with the cache's and rebuilds when they
differ, so a decision never uses a map older than the last committed change.
"""

import logging
import threading
import time
from collections import defaultdict

from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache

from dcim.models import CableTermination, Device
from virtualization.models import Cluster, VirtualMachine

from ..correlation.kinds import APPLICATION, CLUSTER, DEVICE, SERVICE, VM
from ..correlation.mapbuilder import MapBuilder, ServiceMap
from ..models import BusinessApplication, ServiceDependency, TechnicalService
from ..settings import get_settings

__all__ = ('MODEL_KINDS', 'bump_map_version', 'current_map', 'load_map', 'node_of')

logger = logging.getLogger('business_application.services.graph_loader')

#: Which node kind each model an event may point at becomes.
MODEL_KINDS = {
    ('dcim', 'device'): DEVICE,
    ('virtualization', 'virtualmachine'): VM,
    ('virtualization', 'cluster'): CLUSTER,
    ('business_application', 'technicalservice'): SERVICE,
    ('business_application', 'businessapplication'): APPLICATION,
}
VERSION_KEY = 'business_application:map_version'

_lock = threading.Lock()
_snapshot: dict = {'version': None, 'map': None, 'shape': None}


def load_map(backend=None, network_roles=None) -> ServiceMap:
    """Build the engine graph from the database: one query per kind of object or relation, whatever the map size."""
    started = time.perf_counter()
    settings = get_settings()
    builder = MapBuilder(settings.network_roles if network_roles is None else network_roles)

    for pk, name in TechnicalService.objects.values_list('pk', 'name').order_by('pk'):
        builder.add(SERVICE, pk, name)
    for pk, appcode in BusinessApplication.objects.values_list('pk', 'appcode').order_by('pk'):
        builder.add(APPLICATION, pk, appcode)
    for pk, name in Cluster.objects.values_list('pk', 'name').order_by('pk'):
        builder.add(CLUSTER, pk, name)
    roles = {}
    device_clusters = []
    for pk, name, role, cluster in Device.objects.values_list('pk', 'name', 'role__slug', 'cluster_id').order_by('pk'):
        node = builder.add(DEVICE, pk, name or f'device-{pk}')
        roles[node] = role
        if cluster is not None:
            device_clusters.append((node, cluster))
    vm_rows = VirtualMachine.objects.values_list('pk', 'name', 'device_id', 'cluster_id').order_by('pk')
    vm_places = []
    for pk, name, device, cluster in vm_rows:
        vm_places.append((builder.add(VM, pk, name), device, cluster))

    _relations(builder)
    for node, cluster in device_clusters:
        builder.cluster_member(node, builder.node(CLUSTER, cluster))
    for node, device, cluster in vm_places:
        if device is not None:
            builder.hosts(builder.node(DEVICE, device), node)
        elif cluster is not None:
            builder.hosts(builder.node(CLUSTER, cluster), node)
    _cables(builder, roles)

    service_map = builder.build(backend or settings.engine_backend)
    logger.debug(
        'loaded the dependency map: %s nodes, %s edges in %.3f s (%s backend)',
        len(service_map),
        service_map.graph.edge_count,
        time.perf_counter() - started,
        service_map.graph.backend,
    )
    for message in service_map.skipped:
        logger.warning('dependency map: %s', message)
    return service_map


def _relations(builder: MapBuilder) -> None:
    node = builder.node
    dependencies = ServiceDependency.objects.values_list(
        'downstream_service_id', 'upstream_service_id', 'dependency_type', 'name'
    ).order_by('pk')
    for downstream, upstream, kind, name in dependencies:
        group = (name or 'redundancy') if kind == 'redundancy' else None
        builder.depends(node(SERVICE, downstream), node(SERVICE, upstream), group)
    through = TechnicalService.business_apps.through.objects.values_list(
        'technicalservice_id', 'businessapplication_id'
    )
    for service, app in through.order_by('pk'):
        builder.supports(node(SERVICE, service), node(APPLICATION, app))
    for service, device in TechnicalService.devices.through.objects.values_list('technicalservice_id', 'device_id'):
        builder.carries(node(DEVICE, device), node(SERVICE, service))
    for service, vm in TechnicalService.vms.through.objects.values_list('technicalservice_id', 'virtualmachine_id'):
        builder.carries(node(VM, vm), node(SERVICE, service))
    for service, cluster in TechnicalService.clusters.through.objects.values_list('technicalservice_id', 'cluster_id'):
        builder.carries(node(CLUSTER, cluster), node(SERVICE, service))
    for app, device in BusinessApplication.devices.through.objects.values_list('businessapplication_id', 'device_id'):
        builder.carries(node(DEVICE, device), node(APPLICATION, app))
    app_vms = BusinessApplication.virtual_machines.through.objects.values_list(
        'businessapplication_id', 'virtualmachine_id'
    )
    for app, vm in app_vms:
        builder.carries(node(VM, vm), node(APPLICATION, app))


def _cables(builder: MapBuilder, roles: dict) -> None:
    """Cables between devices, from the cached device of each termination (one query)."""
    ends = defaultdict(lambda: ([], []))
    rows = CableTermination.objects.filter(_device__isnull=False).values_list('cable_id', 'cable_end', '_device_id')
    for cable, end, device in rows.order_by('cable_id', 'pk'):
        ends[cable][0 if end == 'A' else 1].append(builder.node(DEVICE, device))
    for a_side, b_side in ends.values():
        for a in dict.fromkeys(a_side):
            for b in dict.fromkeys(b_side):
                builder.cable(a, roles.get(a), b, roles.get(b))


def bump_map_version() -> None:
    """Tell every process that the map changed (called after the change commits)."""
    try:
        cache.incr(VERSION_KEY)
    except ValueError:
        cache.set(VERSION_KEY, 1, timeout=None)


def _version():
    return cache.get(VERSION_KEY, 0)


def current_map() -> ServiceMap:
    """This process's snapshot of the map, rebuilt when the map changed since it was loaded."""
    version = _version()
    settings = get_settings()
    shape = (settings.engine_backend, settings.network_roles)  # settings that change the graph itself
    with _lock:
        if _snapshot['map'] is None or _snapshot['version'] != version or _snapshot['shape'] != shape:
            _snapshot.update(map=load_map(settings.engine_backend), version=version, shape=shape)
        return _snapshot['map']


def forget_map() -> None:
    with _lock:
        _snapshot.update(map=None, version=None, shape=None)


def node_of(service_map: ServiceMap, content_type_id, object_id):
    """The graph node of a NetBox object (None when unmapped or unknown to the map)."""
    if content_type_id is None or object_id is None:
        return None
    content_type = ContentType.objects.get_for_id(content_type_id)
    kind = MODEL_KINDS.get((content_type.app_label, content_type.model))
    if kind is None:
        return None
    return service_map.node(kind, object_id)
