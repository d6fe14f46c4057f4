"""Loads NetBox's dependency map into the engine with a fixed handful of bulk queries, and keeps it fresh.

Each process keeps one snapshot (``services.snapshot.SnapshotBuilder`` plus the engine graph built
from it). Every change to the map (services, dependencies, memberships, VM placement, devices,
clusters, cables) is published after commit as a *delta*: a refresh record naming the changed
rows, stored in Redis under the next map version (``MapDeltas``). Before each decision the
snapshot compares its version with Redis's; when they differ it fetches the deltas in between,
re-reads only the rows they name and rebuilds the engine graph from its in-memory arrays. A full
reload from the database happens only when deltas are missing (trimmed, Redis flushed, a gap),
when there are more than ``DELTA_RELOAD_THRESHOLD`` of them, or when a bulk change asked for one.
So a decision never uses a map older than the last committed change (docs/correlation.md,
"Keeping the map fresh").
"""

import json
import logging
import threading
import time
import uuid
from collections import defaultdict

from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection
from django.db.models import Q
from django.utils import timezone

from dcim.models import CableTermination, Device
from virtualization.models import Cluster, VirtualMachine

from ..correlation.kinds import APPLICATION, CLUSTER, CLUSTER_MEMBER, DEVICE, HOSTS, SERVICE, VM
from ..correlation.mapbuilder import ServiceMap
from ..models import BusinessApplication, ServiceDependency, TechnicalService, UnannouncedMapChange
from ..settings import get_settings
from .snapshot import M2M_INDEX, M2M_RELATIONS, SnapshotBuilder

__all__ = (
    'DELTA_RELOAD_THRESHOLD',
    'DELTA_WINDOW',
    'MODEL_KINDS',
    'MapDeltas',
    'bump_map_version',
    'current_map',
    'forget_map',
    'load_map',
    'node_of',
    'publish_change',
    'record_change',
    'stats',
)

logger = logging.getLogger('business_application.services.graph_loader')

#: Which node kind each model an event may point at becomes.
MODEL_KINDS = {
    ('dcim', 'device'): DEVICE,
    ('virtualization', 'virtualmachine'): VM,
    ('virtualization', 'cluster'): CLUSTER,
    ('business_application', 'technicalservice'): SERVICE,
    ('business_application', 'businessapplication'): APPLICATION,
}
#: How many deltas Redis keeps; a snapshot further behind than that reloads in full.
DELTA_WINDOW = 10_000
#: More pending deltas than this are cheaper to read as one full reload.
DELTA_RELOAD_THRESHOLD = 2_000
#: A delta record naming more rows than this (a bulk change) asks every snapshot for a full reload.
RECORD_ROWS_LIMIT = 5_000

RELOAD = 'reload'
#: Rows fetched at a time by a full load, so it never holds a whole table's rows at once.
_CHUNK = 20_000


def _through(relation):
    return {
        'service_apps': (TechnicalService.business_apps.through, 'technicalservice_id', 'businessapplication_id'),
        'service_devices': (TechnicalService.devices.through, 'technicalservice_id', 'device_id'),
        'service_vms': (TechnicalService.vms.through, 'technicalservice_id', 'virtualmachine_id'),
        'service_clusters': (TechnicalService.clusters.through, 'technicalservice_id', 'cluster_id'),
        'app_devices': (BusinessApplication.devices.through, 'businessapplication_id', 'device_id'),
        'app_vms': (BusinessApplication.virtual_machines.through, 'businessapplication_id', 'virtualmachine_id'),
    }[relation]


# Full load


def _rows(queryset):
    return queryset.iterator(chunk_size=_CHUNK)


def load_map(backend=None, network_roles=None) -> ServiceMap:
    """Build the engine graph from the database: one query per kind of object or relation, whatever the map size."""
    return _load_builder(network_roles).build(backend or get_settings().engine_backend)


def _load_builder(network_roles=None) -> SnapshotBuilder:
    started = time.perf_counter()
    settings = get_settings()
    builder = SnapshotBuilder(
        settings.network_roles if network_roles is None else network_roles, settings.network_tiers
    )
    builder.defer_components()

    for pk, name in _rows(TechnicalService.objects.values_list('pk', 'name').order_by('pk')):
        builder.add(SERVICE, pk, name)
    for pk, appcode in _rows(BusinessApplication.objects.values_list('pk', 'appcode').order_by('pk')):
        builder.add(APPLICATION, pk, appcode)
    for pk, name in _rows(Cluster.objects.values_list('pk', 'name').order_by('pk')):
        builder.add(CLUSTER, pk, name)
    device_clusters = []
    device_rows = Device.objects.values_list('pk', 'name', 'role__slug', 'cluster_id').order_by('pk')
    for pk, name, role, cluster in _rows(device_rows):
        node = builder.add(DEVICE, pk, name or f'device-{pk}')
        builder.roles[node] = role
        if cluster is not None:
            device_clusters.append((pk, node, cluster))
    vm_rows = _rows(VirtualMachine.objects.values_list('pk', 'name', 'device_id', 'cluster_id').order_by('pk'))
    vm_places = []
    for pk, name, device, cluster in vm_rows:
        vm_places.append((pk, builder.add(VM, pk, name), device, cluster))

    node = builder.node
    dependencies = ServiceDependency.objects.values_list(
        'pk', 'downstream_service_id', 'upstream_service_id', 'dependency_type', 'name'
    ).order_by('pk')
    for pk, downstream, upstream, kind, name in _rows(dependencies):
        builder.set_dependency(pk, node(SERVICE, downstream), node(SERVICE, upstream), kind, name)
    for relation, (name, *_) in enumerate(M2M_RELATIONS):
        through, left, right = _through(name)
        builder.bulk_pairs(relation, _rows(through.objects.values_list(left, right).order_by('pk')))
    memberships = ((device_node, node(CLUSTER, cluster)) for _, device_node, cluster in device_clusters)
    builder.bulk_own_edges(memberships, CLUSTER_MEMBER, towards_owner=False)
    placements = ((vm_node, _host(builder, device, cluster)) for _, vm_node, device, cluster in vm_places)
    builder.bulk_own_edges(placements, HOSTS, towards_owner=True)
    ends = defaultdict(lambda: ([], []))
    rows = CableTermination.objects.filter(_device__isnull=False).values_list('cable_id', 'cable_end', '_device_id')
    for cable, end, device in _rows(rows.order_by('cable_id', 'pk')):
        device_node = node(DEVICE, device)
        if device_node is not None:
            ends[cable][0 if end == 'A' else 1].append(device_node)
    for cable, (a_side, b_side) in ends.items():
        builder.set_cable(cable, a_side, b_side)

    _stats['full_loads'] += 1
    logger.debug(
        'loaded the dependency map from the database: %s nodes, %s edges in %.3f s',
        len(builder.kinds),
        len(builder.src),
        time.perf_counter() - started,
    )
    for message in builder.skipped:
        logger.warning('dependency map: %s', message)
    return builder


def _host(builder, device, cluster):
    if device is not None:
        return builder.node(DEVICE, device)
    if cluster is not None:
        return builder.node(CLUSTER, cluster)
    return None


# Applying refresh records


def apply_records(builder: SnapshotBuilder, records) -> None:
    """Re-read the rows the records name and change the builder to match (a few queries per kind)."""
    objects = defaultdict(set)  # kind -> pks
    dependencies, cables, roles = set(), set(), set()
    pairs = defaultdict(set)  # relation index -> {(left, right)}
    for record in records:
        op = record[0]
        if op == 'obj':
            objects[record[1]].add(record[2])
        elif op == 'dep':
            dependencies.add(record[1])
        elif op == 'cable':
            cables.add(record[1])
        elif op == 'role':
            roles.add(record[1])
        elif op == 'pairs':
            pairs[M2M_INDEX[record[1]]].update(tuple(pair) for pair in record[2])
        else:
            raise ValueError(f'unknown map delta {record!r}')

    if roles:  # a role's slug changed: its devices' cables may turn
        objects[DEVICE].update(Device.objects.filter(role_id__in=roles).values_list('pk', flat=True))
    dead = set()
    node = builder.node
    back = defaultdict(set)  # kind -> pks of objects removed earlier and found again (a deletion rolled back)

    def add(kind, pk, name):
        if node(kind, pk) is None and (kind, pk) in builder.removed:
            back[kind].add(pk)
        objects[kind].discard(pk)
        return builder.add(kind, pk, name)

    for pk, name in TechnicalService.objects.filter(pk__in=objects[SERVICE]).values_list('pk', 'name'):
        builder.rename(add(SERVICE, pk, name), name)
    for pk, name in BusinessApplication.objects.filter(pk__in=objects[APPLICATION]).values_list('pk', 'appcode'):
        builder.rename(add(APPLICATION, pk, name), name)
    for pk, name in Cluster.objects.filter(pk__in=objects[CLUSTER]).values_list('pk', 'name'):
        builder.rename(add(CLUSTER, pk, name), name)
    device_rows = Device.objects.filter(pk__in=objects[DEVICE]).values_list('pk', 'name', 'role__slug', 'cluster_id')
    for pk, name, role, cluster in device_rows:
        name = name or f'device-{pk}'
        device = add(DEVICE, pk, name)
        builder.rename(device, name)
        old_role = builder.roles.get(device)
        builder.roles[device] = role
        if old_role != role:
            builder.recable(device)
        builder.set_cluster(pk, device, node(CLUSTER, cluster) if cluster is not None else None)
    for pk, name, device, cluster in VirtualMachine.objects.filter(pk__in=objects[VM]).values_list(
        'pk', 'name', 'device_id', 'cluster_id'
    ):
        vm = add(VM, pk, name)
        builder.rename(vm, name)
        builder.set_placement(pk, vm, _host(builder, device, cluster))
    for kind, gone in objects.items():  # what is left was not found: deleted
        for pk in gone:
            removed = builder.remove_node(kind, pk)
            if removed is not None:
                dead.add(removed)
    builder.sweep_dead(dead)
    if back:
        _relations_of_returned(builder, back, dependencies, pairs, cables)

    found = set()
    rows = ServiceDependency.objects.filter(pk__in=dependencies).values_list(
        'pk', 'downstream_service_id', 'upstream_service_id', 'dependency_type', 'name'
    )
    for pk, downstream, upstream, kind, name in rows:
        builder.set_dependency(pk, node(SERVICE, downstream), node(SERVICE, upstream), kind, name)
        found.add(pk)
    for pk in dependencies - found:
        builder.set_dependency(pk, None, None, '', '')

    for relation, wanted in pairs.items():
        through, left, right = _through(M2M_RELATIONS[relation][0])
        lefts, rights = {pair[0] for pair in wanted}, {pair[1] for pair in wanted}
        present = set(through.objects.filter(**{f'{left}__in': lefts, f'{right}__in': rights}).values_list(left, right))
        for left_pk, right_pk in wanted:
            builder.set_pair(relation, left_pk, right_pk, (left_pk, right_pk) in present)

    if cables:
        ends = {pk: ([], []) for pk in cables}
        rows = CableTermination.objects.filter(cable_id__in=cables, _device__isnull=False).values_list(
            'cable_id', 'cable_end', '_device_id'
        )
        for cable, end, device in rows.order_by('cable_id', 'pk'):
            device_node = node(DEVICE, device)
            if device_node is not None:
                ends[cable][0 if end == 'A' else 1].append(device_node)
        for cable, (a_side, b_side) in ends.items():
            builder.set_cable(cable, a_side, b_side)
    _stats['records_applied'] += len(records)


def _relations_of_returned(builder: SnapshotBuilder, back, dependencies, pairs, cables) -> None:
    """Objects found again after their removal (this process followed its own deletion, then the transaction rolled
    back) got new nodes, and their edges went with the old ones, while the rows of their relations never changed, so
    no record names them: add the relations to what is re-read (their dependencies, memberships and cables), and place
    again the VMs and devices that hang off them."""
    node = builder.node
    if back[SERVICE]:
        services = back[SERVICE]
        either = Q(upstream_service_id__in=services) | Q(downstream_service_id__in=services)
        dependencies.update(ServiceDependency.objects.filter(either).values_list('pk', flat=True))
    for relation, (name, left_kind, right_kind, _) in enumerate(M2M_RELATIONS):
        if not back[left_kind] and not back[right_kind]:
            continue
        through, left, right = _through(name)
        for side, kind in ((left, left_kind), (right, right_kind)):
            if back[kind]:
                for left_pk, right_pk in through.objects.filter(**{f'{side}__in': back[kind]}).values_list(left, right):
                    builder.drop_pair(relation, left_pk, right_pk)  # its edges went with the old node
                    pairs[relation].add((left_pk, right_pk))
    if back[DEVICE]:
        cables.update(CableTermination.objects.filter(_device_id__in=back[DEVICE]).values_list('cable_id', flat=True))
    if back[DEVICE] or back[CLUSTER]:
        placed = Q(device_id__in=back[DEVICE]) | Q(cluster_id__in=back[CLUSTER])
        for pk, device, cluster in VirtualMachine.objects.filter(placed).values_list('pk', 'device_id', 'cluster_id'):
            vm = node(VM, pk)
            if vm is not None:
                builder.set_placement(pk, vm, _host(builder, device, cluster))
    if back[CLUSTER]:
        for pk, cluster in Device.objects.filter(cluster_id__in=back[CLUSTER]).values_list('pk', 'cluster_id'):
            device = node(DEVICE, pk)
            if device is not None:
                builder.set_cluster(pk, device, node(CLUSTER, cluster))


# Publishing changes


class MapDeltas:
    """The map's version counter and its recent deltas in Redis (NetBox's caching database).

    ``business_application:map:version`` counts committed map changes; ``...:epoch`` names the
    counter's life (a flushed Redis starts a new one); ``...:deltas`` is a sorted set of the last
    ``DELTA_WINDOW`` deltas scored by version. One Lua script bumps, stores and trims atomically,
    so versions are gap-free in the set unless trimmed.
    """

    VERSION = 'business_application:map:version'
    EPOCH = 'business_application:map:epoch'
    DELTAS = 'business_application:map:deltas'
    _PUBLISH = """
local v = redis.call('INCR', KEYS[1])
if v == 1 or redis.call('EXISTS', KEYS[2]) == 0 then redis.call('SET', KEYS[2], ARGV[3]) end
redis.call('ZADD', KEYS[3], v, v .. ' ' .. ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', v - tonumber(ARGV[2]))
return v
"""

    @staticmethod
    def client():
        from django_redis import get_redis_connection

        return get_redis_connection('default')

    @classmethod
    def publish(cls, records) -> int:
        payload = json.dumps(records, separators=(',', ':'))
        client = cls.client()
        keys = (cls.VERSION, cls.EPOCH, cls.DELTAS)
        return int(client.eval(cls._PUBLISH, 3, *keys, payload, DELTA_WINDOW, uuid.uuid4().hex))

    @classmethod
    def head(cls):
        """(epoch, version) now; (None, 0) when nothing was ever published."""
        epoch, version = cls.client().mget(cls.EPOCH, cls.VERSION)
        return (epoch.decode() if epoch else None), int(version or 0)

    @classmethod
    def since(cls, version: int, upto: int):
        """The deltas after ``version`` up to ``upto``, in order; None when any is missing."""
        if upto <= version:
            return []
        rows = cls.client().zrangebyscore(cls.DELTAS, version + 1, upto)
        deltas = []
        for expected, row in enumerate(rows, start=version + 1):
            number, _, payload = row.decode().partition(' ')
            if int(number) != expected:
                return None
            deltas.append(json.loads(payload))
        return deltas if len(deltas) == upto - version else None


#: Whether this process committed a map change it could not announce (Redis did not answer); the database keeps it
#: too (``UnannouncedMapChange``), for any process to announce should this one stop first.
_unannounced = False


def publish_change(records) -> None:
    """Announce committed map changes to every process (call after commit).

    When Redis does not answer, the change is remembered, in this process and in the database, and announced as a
    full reload by this process's next announcement or decision that reaches Redis (``announce_missed``), or by any
    process's next full load of the map (``announce_recorded``): the other snapshots cannot follow a delta that was
    never published, so they reload.
    """
    global _unannounced
    if len(records) > RECORD_ROWS_LIMIT or _unannounced:
        records = [[RELOAD]]
    try:
        MapDeltas.publish(records)
    except Exception:
        if _unannounced:
            logger.warning('Redis still does not answer: the map changes of this process are not announced yet')
        else:
            logger.exception('could not announce a map change; announcing a full reload once Redis answers again')
        _unannounced = True
        _record_unannounced()
        return
    if _unannounced:
        _unannounced = False
        _forget_unannounced(before=timezone.now())


def _record_unannounced() -> None:
    try:
        UnannouncedMapChange.objects.update_or_create(pk=1, defaults={'since': timezone.now()})
    except DatabaseError:
        logger.exception('could not record the unannounced map change in the database either')


def _forget_unannounced(before) -> None:
    """Drop the database's record of an unannounced change made before ``before``: a reload published since then
    covers it (a failure recorded later stays, to be announced in turn)."""
    try:
        UnannouncedMapChange.objects.filter(since__lte=before).delete()
    except DatabaseError:
        logger.exception('could not clear the record of an announced map change')


def announce_missed() -> None:
    """Announce the map changes this process could not (``publish_change``), once Redis answers; no query."""
    if _unannounced:
        publish_change([])


def announce_recorded() -> bool:
    """Announce a map change that a process (perhaps one that has stopped since) could not announce; whether there
    was one. One query, made at each full load of the map."""
    recorded = UnannouncedMapChange.objects.filter(pk=1).values_list('since', flat=True).first()
    if recorded is None:
        return False
    MapDeltas.publish([[RELOAD]])
    logger.info('announced a map change left unannounced since %s', recorded.isoformat())
    _forget_unannounced(before=recorded)
    return True


def bump_map_version() -> None:
    """Tell every process that the map changed in bulk: each snapshot reloads in full."""
    publish_change([[RELOAD]])


def record_change(records) -> None:
    """A map change inside the current transaction: this process sees it at its next decision (even
    before commit); the others see it after commit."""
    with _lock:
        _local.extend(records)
    from django.db import transaction

    transaction.on_commit(lambda: publish_change(records))


# The process's snapshot

_lock = threading.Lock()
_snapshot: dict = {'epoch': None, 'version': None, 'builder': None, 'map': None, 'shape': None, 'tainted': False}
_local: list = []  # records of this process's own changes, re-applied until its transaction ends
#: More own changes than this in one transaction are read with a full load instead.
LOCAL_RECORDS_LIMIT = 500
_stats = {'full_loads': 0, 'delta_batches': 0, 'records_applied': 0}


def stats() -> dict:
    """Counters of this process's snapshot work (full loads, delta batches applied, records applied)."""
    return dict(_stats)


def current_map() -> ServiceMap:
    """This process's snapshot of the map, brought up to date with every committed change first."""
    announce_missed()
    epoch, version = MapDeltas.head()
    settings = get_settings()
    # The settings that change the graph itself.
    shape = (settings.engine_backend, settings.network_roles, settings.network_tiers)
    with _lock:
        snap = _snapshot
        builder = snap['builder']
        records = None
        # A snapshot loaded before anything was ever published can follow the first epoch from its start.
        same_epoch = snap['epoch'] == epoch or (snap['epoch'] is None and snap['version'] == 0)
        if builder is not None and snap['shape'] == shape and same_epoch:
            if snap['version'] == version:
                records = []
            elif snap['version'] < version and version - snap['version'] <= DELTA_RELOAD_THRESHOLD:
                deltas = MapDeltas.since(snap['version'], version)
                if deltas is not None and all(record[0] != RELOAD for delta in deltas for record in delta):
                    records = [record for delta in deltas for record in delta]
        in_transaction = connection.in_atomic_block
        # A snapshot loaded with a transaction's many own changes is reloaded once that transaction (or savepoint)
        # has ended, committed or rolled back, whether or not the next decision runs in a transaction of its own.
        ended = snap['tainted'] and (not in_transaction or not _still_in(snap['tainted']))
        if len(_local) > LOCAL_RECORDS_LIMIT or ended:
            records = None  # our own changes are many: read them all at once
        if records is None:
            if announce_recorded():
                epoch, version = MapDeltas.head()  # the load below is the reload just announced
            builder = _load_builder()  # a full load sees this process's own uncommitted changes too
            # Own changes of a transaction still open are kept, to be re-read after it ends; when
            # there are too many, the snapshot is marked with the transaction instead, and reloaded in
            # full by the first decision once that transaction (or savepoint) has ended.
            tainted = _transaction_mark() if in_transaction and len(_local) > LOCAL_RECORDS_LIMIT else None
            if tainted or not in_transaction:
                _local.clear()
            snap.update(builder=builder, map=None, epoch=epoch, version=version, shape=shape, tainted=tainted)
        else:
            # This process's own changes are re-read at every decision until its transaction has
            # ended, so the snapshot follows them before commit and forgets them after a rollback.
            records = records + _local
            if not in_transaction:
                _local.clear()
            if records:
                apply_records(builder, records)
                _stats['delta_batches'] += 1
                snap['map'] = None
            snap.update(epoch=epoch, version=version)
        if snap['map'] is None:
            snap['map'] = builder.build(settings.engine_backend)
        return snap['map']


def _transaction_mark() -> tuple:
    """Where this connection is: PostgreSQL's id of its transaction (once it has written) and Django's savepoints."""
    with connection.cursor() as cursor:
        cursor.execute('SELECT pg_current_xact_id_if_assigned()::text')
        xid = cursor.fetchone()[0]
    return xid, tuple(connection.savepoint_ids)


def _still_in(mark: tuple) -> bool:
    """Whether the connection is still inside the transaction and savepoint of ``mark`` (one query)."""
    xid, savepoints = _transaction_mark()
    return mark[0] is not None and xid == mark[0] and savepoints[: len(mark[1])] == mark[1]


def forget_map() -> None:
    """Drop this process's snapshot: the next decision loads the map in full."""
    with _lock:
        _snapshot.update(epoch=None, version=None, builder=None, map=None, shape=None, tainted=False)
        _local.clear()


def node_finder(service_map: ServiceMap):
    """``node_of`` on this map for many objects: each content type is looked up once."""
    kinds = {}

    def find(content_type_id, object_id):
        if content_type_id is None or object_id is None:
            return None
        kind = kinds.get(content_type_id, False)
        if kind is False:
            content_type = ContentType.objects.get_for_id(content_type_id)
            kind = kinds[content_type_id] = MODEL_KINDS.get((content_type.app_label, content_type.model))
        return None if kind is None else service_map.node(kind, object_id)

    return find


def node_of(service_map: ServiceMap, content_type_id, object_id):
    """The graph node of a NetBox object (None when unmapped or unknown to the map)."""
    if content_type_id is None or object_id is None:
        return None
    content_type = ContentType.objects.get_for_id(content_type_id)
    kind = MODEL_KINDS.get((content_type.app_label, content_type.model))
    if kind is None:
        return None
    return service_map.node(kind, object_id)
