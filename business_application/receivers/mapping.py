"""From alert labels to the NetBox object an alert is about, for a whole request at once.

Each alert's labels are read in the order of the ``alert_label_order`` setting; the first label
whose value names exactly one known object wins. What a label may name depends on its name:

- ``device`` a device; ``vm``, ``virtual_machine`` a virtual machine; ``cluster`` a cluster;
  ``service``, ``technical_service`` a technical service; ``business_application``, ``appcode``
  a business application (by appcode);
- any other label (``host``, ``hostname``, ``nodename``, ``instance``...) a host: a device, else a
  virtual machine.

Names compare without regard to case. A device or VM value may be the object's name, its FQDN
when NetBox holds the short name, or its short name when NetBox holds the FQDN; a URL or a
``host:port`` counts by its host part; an IP address names the device or VM whose primary IPv4 or
IPv6 address it is. A value that names two objects of the same tier (two devices called ``web-01``
in different sites) names none, and the next label is tried.

An alert whose labels name nothing known is kept unmapped, with the first identifying label it
carries (``host:ghost-07``, ``device:ghost-07``), or the parser's fallback (``alertname:...``).

The look-ups are bulk queries for the whole request: at most one per kind of object, one for
IP addresses and, only when a short name was not found as a name, one more per host kind.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, F, Func, Q, Value
from django.db.models.functions import Lower

from dcim.models import Device
from ipam.models import IPAddress
from virtualization.models import Cluster, VirtualMachine

from ..models import BusinessApplication, TechnicalService
from ..services.intake import IncomingAlert
from ..settings import get_settings
from .common import OBJECT_KINDS, Draft

__all__ = ('LABEL_KINDS', 'OBJECT_KINDS', 'Resolver', 'Target', 'host_part', 'label_kind', 'to_incoming')

logger = logging.getLogger('business_application.receivers')

#: What a label names, by the label's name (any other label names a host: a device, else a VM).
LABEL_KINDS = {
    'device': 'device',
    'vm': 'vm',
    'virtual_machine': 'vm',
    'virtualmachine': 'vm',
    'cluster': 'cluster',
    'service': 'service',
    'technical_service': 'service',
    'technicalservice': 'service',
    'business_application': 'app',
    'businessapplication': 'app',
    'appcode': 'app',
}
MODELS = {
    'device': Device,
    'vm': VirtualMachine,
    'cluster': Cluster,
    'service': TechnicalService,
    'app': BusinessApplication,
}
HOST_KINDS = ('device', 'vm', 'host')


@dataclasses.dataclass(frozen=True)
class Target:
    """Where an alert points: a NetBox object, or the label of an object NetBox does not know."""

    content_type: Any = None
    object_id: int | None = None
    unmapped_label: str = ''

    @property
    def mapped(self) -> bool:
        return self.object_id is not None


@dataclasses.dataclass(frozen=True)
class _Candidate:
    kind: str  # device, vm, host, cluster, service, app
    value: str  # as given (stripped), used in the unmapped label
    key: str = ''  # lower-case name or host part
    ip: str = ''  # normalised IP address, for host kinds
    pk: int | None = None  # explicit id

    @property
    def label(self) -> str:
        if self.pk is not None:
            return f'{self.kind}:{self.pk}'
        return f'{self.kind}:{self.value}'


def label_kind(label: str) -> str:
    return LABEL_KINDS.get(label.strip().lower(), 'host')


def host_part(value: str) -> str:
    """The host a label value names: a URL's host, ``host:port`` without the port, ``[v6]:port``'s
    address, an FQDN without its trailing dot."""
    text = value.strip()
    if '://' in text:
        try:
            host = urlsplit(text).hostname
        except ValueError:
            host = None
        return (host or '').rstrip('.')
    if text.startswith('['):
        end = text.find(']')
        return text[1:end] if end > 0 else text
    if text.count(':') == 1:
        host, _, port = text.partition(':')
        if port.isdigit() or not port:
            text = host
    return text.rstrip('.')


def _ip(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host.split('%', 1)[0]))
    except ValueError:
        return ''


def _short(name: str) -> str:
    return name.split('.', 1)[0]


class Resolver:
    """Maps the drafts of one request to targets with a bounded number of queries.

    ``order`` is the label order (the ``alert_label_order`` setting by default).
    """

    def __init__(self, order: Sequence[str] | None = None):
        self.order = tuple(get_settings().alert_label_order if order is None else order)
        self.queries = 0

    # Candidates

    def candidates(self, draft: Draft) -> list[_Candidate]:
        found = []
        if draft.target is not None:
            found.append(self._explicit(*draft.target))
        for label in self.order:
            value = draft.labels.get(label)
            if not isinstance(value, str) or not value.strip():
                continue
            candidate = self._candidate(label_kind(label), value.strip())
            if candidate is not None:
                found.append(candidate)
        return found

    @staticmethod
    def _explicit(kind: str, ref: Any) -> _Candidate:
        if isinstance(ref, int):
            return _Candidate(kind=kind, value=str(ref), pk=ref)
        return Resolver._candidate(kind, str(ref).strip()) or _Candidate(kind=kind, value=str(ref))

    @staticmethod
    def _candidate(kind: str, value: str) -> _Candidate | None:
        if kind in HOST_KINDS:
            host = host_part(value)
            if not host:
                return None
            ip = _ip(host)
            return _Candidate(kind=kind, value=host, key='' if ip else host.lower(), ip=ip)
        return _Candidate(kind=kind, value=value, key=value.lower())

    # Resolution

    def __call__(self, drafts: Sequence[Draft]) -> list[Target]:
        per_draft = [None if d.preset is not None else self.candidates(d) for d in drafts]
        index = _Index()
        self._exact(index, [c for found in per_draft if found for c in found])
        wanted = {
            c.key
            for found in per_draft
            if found
            for c in self._unresolved_prefix(found, index, short=False)
            if c.kind in HOST_KINDS and c.key and '.' not in c.key
        }
        if wanted:
            self._short_names(index, wanted)
        targets = []
        for draft, found in zip(drafts, per_draft, strict=True):
            if found is None:
                targets.append(Target(*draft.preset))
                continue
            targets.append(self._resolve(draft, found, index))
        return targets

    def _resolve(self, draft: Draft, found: list[_Candidate], index: _Index) -> Target:
        for candidate in found:
            match = index.match(candidate, short=True)
            if match is not None:
                kind, pk = match
                return Target(content_type=ContentType.objects.get_for_model(MODELS[kind]), object_id=pk)
        label = found[0].label if found else (draft.fallback_label or f'alert:{draft.dedup_id}')
        return Target(unmapped_label=label)

    @staticmethod
    def _unresolved_prefix(found: list[_Candidate], index: _Index, short: bool) -> Iterable[_Candidate]:
        """The candidates tried before the first one that resolves without short-name data."""
        for candidate in found:
            if index.match(candidate, short=short) is not None:
                return
            yield candidate

    def _exact(self, index: _Index, candidates: list[_Candidate]) -> None:
        names = defaultdict(set)
        ids = defaultdict(set)
        ips = set()
        for c in candidates:
            kinds = ('device', 'vm') if c.kind == 'host' else (c.kind,)
            for kind in kinds:
                if c.pk is not None:
                    ids[kind].add(c.pk)
                elif c.key:
                    names[kind].add(c.key)
                    if kind in ('device', 'vm') and '.' in c.key:
                        names[kind].add(_short(c.key))
            if c.ip and c.kind in HOST_KINDS:
                ips.add(c.ip)
        addresses = {}
        if ips:
            self.queries += 1
            for pk, address in IPAddress.objects.filter(address__net_in=sorted(ips)).values_list('pk', 'address'):
                addresses[pk] = _ip(str(address).split('/', 1)[0])
        for kind, model in (('device', Device), ('vm', VirtualMachine)):
            query = Q()
            if names[kind]:
                query |= Q(lname__in=sorted(names[kind]))
            if ids[kind]:
                query |= Q(pk__in=sorted(ids[kind]))
            if addresses and any(c.ip and c.kind in (kind, 'host') for c in candidates):
                query |= Q(primary_ip4_id__in=sorted(addresses)) | Q(primary_ip6_id__in=sorted(addresses))
            if not query:
                continue
            self.queries += 1
            rows = (
                model.objects.annotate(lname=Lower('name'))
                .filter(query)
                .values_list('pk', 'lname', 'primary_ip4_id', 'primary_ip6_id')
            )
            for pk, lname, ip4, ip6 in rows:
                index.ids[kind].add(pk)
                if lname in names[kind]:
                    index.names[kind][lname].add(pk)
                for address in (ip4, ip6):
                    if address in addresses:
                        index.ips[kind][addresses[address]].add(pk)
        for kind in ('cluster', 'service', 'app'):
            if not names[kind] and not ids[kind]:
                continue
            field = 'appcode' if kind == 'app' else 'name'
            query = Q()
            if names[kind]:
                query |= Q(lname__in=sorted(names[kind]))
            if ids[kind]:
                query |= Q(pk__in=sorted(ids[kind]))
            self.queries += 1
            for pk, lname in MODELS[kind].objects.annotate(lname=Lower(field)).filter(query).values_list('pk', 'lname'):
                index.ids[kind].add(pk)
                if lname in names[kind]:
                    index.names[kind][lname].add(pk)

    def _short_names(self, index: _Index, wanted: set[str]) -> None:
        """Devices and VMs whose name is an FQDN whose first label is one of ``wanted``."""
        for kind, model in (('device', Device), ('vm', VirtualMachine)):
            self.queries += 1
            short = Lower(Func(F('name'), Value('.'), Value(1), function='SPLIT_PART', output_field=CharField()))
            rows = model.objects.annotate(short=short).filter(short__in=sorted(wanted), name__contains='.')
            for pk, key in rows.values_list('pk', 'short'):
                index.shorts[kind][key].add(pk)
        index.short_loaded = True


class _Index:
    """What the look-ups found, by kind: names, short names, primary IPs and ids."""

    def __init__(self):
        self.names = defaultdict(lambda: defaultdict(set))
        self.shorts = defaultdict(lambda: defaultdict(set))
        self.ips = defaultdict(lambda: defaultdict(set))
        self.ids = defaultdict(set)
        self.short_loaded = False

    def match(self, c: _Candidate, short: bool) -> tuple[str, int] | None:
        """The one object a candidate names, tier by tier; None when it names none, or several."""
        if c.pk is not None:
            return (c.kind, c.pk) if c.pk in self.ids[c.kind] else None
        if c.kind not in HOST_KINDS:
            found = self.names[c.kind].get(c.key, ())
            return (c.kind, next(iter(found))) if len(found) == 1 else None
        kinds = ('device', 'vm') if c.kind == 'host' else (c.kind,)
        if c.ip:
            tiers = [lambda kind: self.ips[kind].get(c.ip, ())]
        else:
            tiers = [lambda kind: self.names[kind].get(c.key, ())]
            if '.' in c.key:
                tiers.append(lambda kind: self.names[kind].get(_short(c.key), ()))
            elif short:
                tiers.append(lambda kind: self.shorts[kind].get(c.key, ()))
        for tier in tiers:
            for kind in kinds:
                found = tier(kind)
                if len(found) == 1:
                    return kind, next(iter(found))
                if len(found) > 1:
                    logger.debug('%s names %d %ss; trying the next label', c.label, len(found), kind)
                    return None
        return None


def to_incoming(drafts: Sequence[Draft], resolver: Resolver | None = None) -> list[IncomingAlert]:
    """The drafts of one request, mapped, as the intake stores them."""
    resolver = resolver if resolver is not None else Resolver()
    targets = resolver(drafts)
    return [
        IncomingAlert(
            source=d.source,
            dedup_id=d.dedup_id,
            message=d.message[:2000],
            status=d.status,
            criticallity=d.criticallity,
            raw=d.raw,
            content_type=t.content_type,
            object_id=t.object_id,
            unmapped_label='' if t.mapped else t.unmapped_label[:300],
            starts_at=d.starts_at,
            ends_at=d.ends_at,
            event_time=d.event_time,
        )
        for d, t in zip(drafts, targets, strict=True)
    ]
