"""Shared set-up of the receiver tests: the payload files, a map whose names match their labels,
and helpers to post to a receiver."""

import json
from pathlib import Path

from django.contrib.contenttypes.models import ContentType
from django.test import override_settings

from dcim.models import Device, Interface
from ipam.models import IPAddress
from utilities.testing import APITestCase
from virtualization.models import VirtualMachine, VMInterface

from ..integration.maps import build

PAYLOADS = Path(__file__).resolve().parent / 'payloads'
URL = '/api/plugins/business-application/alerts/{}/'
RECEIVE = ('business_application.add_event', 'business_application.change_event')
#: What lets a receiving user see the ids of the events and incidents in the answer (without, it gets counts).
SEE = ('business_application.view_event', 'business_application.view_incident')

#: Devices and VMs named as the payloads' labels name them (in their own spelling: case, short
#: names and FQDNs differ on purpose).
RECEIVER_MAP = """
name: receivers
graph:
  services: [Web Service, Database Service, checkout, Queue Service]
  dependencies:
    - {service: Web Service, depends_on: Database Service}
    - {service: checkout, depends_on: Web Service}
  clusters:
    - {name: prod-cluster, services: []}
  devices:
    - {name: localhost, role: server, services: [Web Service]}
    - {name: WEB-01, role: server, services: [Web Service]}
    - {name: BADHOST, role: server, services: [Queue Service]}
    - {name: site1, role: server}
    - {name: db-01.example.net, role: server, services: [Database Service]}
    - {name: ping-30, role: server}
    - {name: cmk-ip, role: server}
  vms:
    - {name: otherhost.example.com, cluster: prod-cluster, services: [Queue Service]}
    - {name: ping-50, cluster: prod-cluster}
"""
#: Primary IP addresses of some of them (the ICMP and Checkmk payloads name hosts by address).
PRIMARY_IPS = {'device:ping-30': '203.0.113.30/24', 'vm:ping-50': '203.0.113.50/24', 'device:cmk-ip': '192.0.2.1/24'}


def payload(name):
    return json.loads((PAYLOADS / name).read_text(encoding='utf-8'))


def give_primary_ip(obj, address):
    """Make ``address`` the primary IP of a device or VM, on an interface of its own."""
    if isinstance(obj, Device):
        interface = Interface.objects.create(device=obj, name='eth0', type='1000base-t')
    else:
        interface = VMInterface.objects.create(virtual_machine=obj, name='eth0')
    ip = IPAddress.objects.create(
        address=address,
        assigned_object_type=ContentType.objects.get_for_model(interface),
        assigned_object_id=interface.pk,
    )
    if ':' in address:
        obj.primary_ip6 = ip
    else:
        obj.primary_ip4 = ip
    obj.save()
    return ip


def object_of(event):
    """``kind:name`` of the object an event was mapped to, or its unmapped label."""
    if event.object_id is None:
        return event.unmapped_label
    kind = {Device: 'device', VirtualMachine: 'vm'}.get(type(event.obj), event.content_type.model)
    return f'{kind}:{event.obj.name}'


@override_settings(ROOT_URLCONF='tests.receivers.urls')
class ReceiverTestCase(APITestCase):
    """A map matching the payloads, and a user who may receive alerts and see what they became, unless a test
    says otherwise."""

    receive = True

    def setUp(self):
        super().setUp()
        self.objects = build(RECEIVER_MAP)
        for label, address in PRIMARY_IPS.items():
            give_primary_ip(self.objects[label], address)
        if self.receive:
            self.add_permissions(*RECEIVE, *SEE, 'business_application.add_eventsource')

    def post(self, receiver, data, query='', **extra):
        body = data if isinstance(data, bytes | str) else json.dumps(data)
        return self.client.post(
            URL.format(receiver) + query, body, content_type='application/json', **{**self.header, **extra}
        )

    def post_file(self, receiver, name, query=''):
        return self.post(receiver, payload(name), query)
