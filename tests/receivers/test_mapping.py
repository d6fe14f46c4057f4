"""Label -> object resolution on a real map: names, short names, FQDNs, ports, URLs, primary IPs,
ambiguity, the label order, and a number of queries that does not grow with the request."""

from django.db import connection
from django.test import TestCase
from django.test.utils import CaptureQueriesContext

from dcim.models import Device, Site
from virtualization.models import VirtualMachine

from business_application.receivers.common import Draft
from business_application.receivers.mapping import Resolver, host_part

from ..integration.maps import build
from .base import PRIMARY_IPS, RECEIVER_MAP, give_primary_ip

DEFAULT_ORDER = (
    'device',
    'vm',
    'virtual_machine',
    'cluster',
    'service',
    'technical_service',
    'host',
    'hostname',
    'nodename',
    'instance',
)


def draft(labels=None, target=None, fallback=''):
    return Draft(
        source='s',
        dedup_id='d',
        message='m',
        status='triggered',
        criticallity='warning',
        raw={},
        labels=labels or {},
        target=target,
        fallback_label=fallback,
    )


class MappingTest(TestCase):
    @classmethod
    def setUpTestData(cls):
        cls.objects = build(RECEIVER_MAP)
        for label, address in PRIMARY_IPS.items():
            give_primary_ip(cls.objects[label], address)
        give_primary_ip(cls.objects['device:site1'], '2001:db8::5/64')
        # The same name in two sites: a name that names two devices names none.
        web_01 = cls.objects['device:WEB-01']
        other_site = Site.objects.create(name='other-site', slug='other-site')
        for site in (web_01.site, other_site):
            Device.objects.create(name='twin', site=site, role=web_01.role, device_type=web_01.device_type)
        # A device and a VM share a name: a host label means the device.
        VirtualMachine.objects.create(name='site1', cluster=cls.objects['vm:ping-50'].cluster)

    def resolve(self, *drafts, order=DEFAULT_ORDER):
        return [self.describe(t) for t in Resolver(order)(list(drafts))]

    @staticmethod
    def describe(target):
        if not target.mapped:
            return target.unmapped_label
        obj = target.content_type.get_object_for_this_type(pk=target.object_id)
        return f'{target.content_type.model}:{obj}'

    def test_names_short_names_fqdns_ports_and_urls(self):
        cases = {
            'web-01': 'device:WEB-01',  # any case
            'web-01.example.net': 'device:WEB-01',  # FQDN of a device NetBox holds by short name
            'web-01.example.net.': 'device:WEB-01',  # trailing dot
            'web-01:9100': 'device:WEB-01',  # instance with port
            'https://web-01.example.net:8443/health': 'device:WEB-01',  # a blackbox target
            'db-01': 'device:db-01.example.net',  # short name of a device NetBox holds by FQDN
            'DB-01.EXAMPLE.NET': 'device:db-01.example.net',
            'db-01.other.org': 'host:db-01.other.org',  # another domain is another host
            'otherhost': 'virtualmachine:otherhost.example.com',  # VMs too
            '203.0.113.30:9100': 'device:ping-30',  # primary IPv4
            '203.0.113.50': 'virtualmachine:ping-50',
            '[2001:db8::5]:9100': 'device:site1',  # primary IPv6, written in full below
            '2001:0db8:0000::0005': 'device:site1',
            '203.0.113.99': 'host:203.0.113.99',
            'twin': 'host:twin',  # ambiguous
            'site1': 'device:site1',  # a device and a VM of that name: the device
            'http://:9093': 'alertname:x',  # no host at all: nothing identifies it
        }
        for value, expected in cases.items():
            with self.subTest(value=value):
                self.assertEqual(self.resolve(draft({'instance': value}, fallback='alertname:x')), [expected])

    def test_labels_name_their_own_kind_of_object(self):
        self.assertEqual(self.resolve(draft({'device': 'ping-50'})), ['device:ping-50'])  # a VM, not a device
        self.assertEqual(self.resolve(draft({'vm': 'PING-50'})), ['virtualmachine:ping-50'])
        self.assertEqual(self.resolve(draft({'vm': 'site1'})), ['virtualmachine:site1'])
        self.assertEqual(self.resolve(draft({'cluster': 'Prod-Cluster'})), ['cluster:prod-cluster'])
        self.assertEqual(self.resolve(draft({'service': 'queue service'})), ['technicalservice:Queue Service'])
        self.assertEqual(self.resolve(draft({'technical_service': 'nope'})), ['service:nope'])

    def test_the_first_label_that_names_something_wins(self):
        labels = {'instance': '203.0.113.30:9100', 'nodename': 'web-01', 'host': 'ghost', 'job': 'node'}
        self.assertEqual(self.resolve(draft(labels)), ['device:WEB-01'])  # host names nothing, nodename does
        self.assertEqual(self.resolve(draft(labels), order=('instance', 'nodename')), ['device:ping-30'])
        self.assertEqual(self.resolve(draft(labels), order=('host', 'instance')), ['device:ping-30'])
        # Nothing maps: the first identifying label is kept; labels outside the order are not read.
        self.assertEqual(self.resolve(draft(labels), order=('host', 'job')), ['host:ghost'])
        self.assertEqual(self.resolve(draft(labels, fallback='alertname:A'), order=('device',)), ['alertname:A'])
        self.assertEqual(self.resolve(draft(labels), order=()), ['alert:d'])

    def test_explicit_targets(self):
        db = self.objects['device:db-01.example.net']
        self.assertEqual(self.resolve(draft(target=('device', db.pk))), ['device:db-01.example.net'])
        self.assertEqual(self.resolve(draft(target=('device', 10**12))), [f'device:{10**12}'])
        self.assertEqual(self.resolve(draft({'host': 'web-01'}, target=('vm', 'ghost'))), ['device:WEB-01'])
        self.assertEqual(self.resolve(draft(target=('app', 'NOPE'))), ['app:NOPE'])

    def test_queries_are_bounded_whatever_the_group_size(self):
        def group(size):
            return [
                draft({'instance': f'{host}:9100', 'nodename': f'node-{i}'})
                for i in range(size)
                for host in ('web-01', 'db-01', '203.0.113.30', 'ghost-%d' % i)
            ]

        counts = []
        for size in (2, 40):
            resolver = Resolver(DEFAULT_ORDER)
            with CaptureQueriesContext(connection) as queries:
                targets = resolver(group(size))
            counts.append(len(queries))
            self.assertEqual(len(targets), 4 * size)
        self.assertEqual(counts[0], counts[1])
        self.assertLessEqual(counts[1], 8)
        # Names that all resolve exactly need no short-name look-up.
        with CaptureQueriesContext(connection) as queries:
            Resolver(DEFAULT_ORDER)([draft({'instance': 'web-01:9100'}) for _ in range(50)])
        self.assertLessEqual(len(queries), 2)


def test_host_part():
    assert host_part('web-01:9100') == 'web-01'
    assert host_part('[2001:db8::1]:9100') == '2001:db8::1'
    assert host_part('2001:db8::1') == '2001:db8::1'
    assert host_part('https://Shop.Example.net/health') == 'shop.example.net'
    assert host_part('web-01.example.net.') == 'web-01.example.net'
    assert host_part('http://[::1') == ''
    assert host_part('a:b:c') == 'a:b:c'
