"""Asynchronous decisions of alerts that fired and cleared behind a busy queue make the incidents that
deciding each notification as it came makes, when other alerts' notifications came in between.

Each test stores one notification sequence twice: in the request (synchronous processing) on one
rack, and with asynchronous processing on an identical rack, then runs the queued decision jobs as
a worker would (in the order they were queued) and compares the two racks' incidents. The arrival
times are set with the replay clock, so the minutes between notifications are real to the
correlator (reopen window, correlation window).
"""

from datetime import UTC, datetime, timedelta

from business_application.models import Incident
from business_application.services import clock

from .test_pending_firing import ASYNC, URL, AsyncSenderTestCase, queued_jobs, run

RACKS = 2
MAP = 'name: racks\ngraph:\n  services: [web-0, web-1]\n  devices:\n' + ''.join(
    f'    - {{name: tor-{r}, role: switch}}\n'
    + ''.join(f'    - {{name: srv-{i}-{r}, role: server, services: [web-{r}], links: [tor-{r}]}}\n' for i in (0, 1))
    for r in range(RACKS)
)
START = datetime(2026, 1, 1, tzinfo=UTC)


def stamp(minute):
    return (START + timedelta(minutes=minute)).isoformat().replace('+00:00', 'Z')


def notification(hosts, status, minute, severity='critical'):
    """An Alertmanager notification of ``hosts`` (space-separated), firing since or resolved at ``minute`` past
    START."""
    return {
        'version': '4',
        'status': status,
        'alerts': [
            {
                'status': status,
                'labels': {'alertname': 'HostDown', 'instance': f'{host}:9100', 'severity': severity},
                'startsAt': stamp(minute if status == 'firing' else minute - 1),
                'endsAt': '0001-01-01T00:00:00Z' if status == 'firing' else stamp(minute),
                'fingerprint': f'HostDown-{host}',
            }
            for host in hosts.split()
        ],
    }


def rest_payload(rack, source, **fields):
    """A REST event that srv-0 of the rack is down, from ``source``, with ``fields`` on top."""
    from dcim.models import Device

    return {
        'message': 'srv-0 down',
        'status': 'triggered',
        'criticallity': 'critical',
        'content_type': 'dcim.device',
        'object_id': Device.objects.get(name=f'srv-0-{rack}').pk,
        'dedup_id': f'rest-{rack}',
        'event_source': source.pk,
        **fields,
    }


def incidents_of(rack):
    """What is compared between the racks: each incident's status, times (minutes from START), root and members."""

    def generic(dedup_id):
        return dedup_id.rsplit('-', 1)[0] + '-R'

    def minutes(moment):
        return None if moment is None else round((moment - START).total_seconds() / 60, 3)

    shapes = []
    for incident in Incident.objects.filter(memberships__event__dedup_id__endswith=f'-{rack}').distinct():
        shapes.append(
            {
                'status': incident.status,
                'detected': minutes(incident.detected_at),
                'resolved': minutes(incident.resolved_at),
                'root': generic(incident.root_cause_event.dedup_id) if incident.root_cause_event_id else None,
                'members': sorted(
                    (generic(m.event.dedup_id), m.occurrence, m.status) for m in incident.memberships.all()
                ),
            }
        )
    return sorted(shapes, key=lambda shape: shape['detected'])


class PendingFiringOrderTest(AsyncSenderTestCase):
    map_text = MAP

    def post(self, payload, minute):
        with clock.replay_clock(START + timedelta(minutes=minute)), self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(URL, payload, format='json')
        self.assertEqual(response.status_code, 200, response.content[:300])

    def replay(self, sequence):
        """Rack 0 decides each notification in the request, rack 1 by the queued jobs afterwards (as a worker
        that fell behind would, in queue order, each as of the arrival it was queued with); returns both racks'
        incidents. ``sequence``: (host with R for the rack, status, its own minute, its arrival minute)."""
        for host, status, own, arrival in sequence:
            self.post(notification(host.replace('R', '0'), status, own), arrival)
        with ASYNC:
            for host, status, own, arrival in sequence:
                self.post(notification(host.replace('R', '1'), status, own), arrival)
        jobs = queued_jobs(self.queue)
        self.assertEqual(len(jobs), len(sequence))
        with clock.replay_clock(START + timedelta(minutes=sequence[-1][3] + 1)):
            for job in jobs:
                run(job)
        return incidents_of(0), incidents_of(1)

    def test_a_neighbour_fires_between_a_firing_and_its_clear(self):
        # srv-0 fires, srv-1 fires (joins srv-0's incident), srv-0 clears: the incident stays open.
        in_request, by_workers = self.replay(
            [('srv-0-R', 'firing', 0, 0), ('srv-1-R', 'firing', 1, 1), ('srv-0-R', 'resolved', 2, 2)]
        )
        self.assertEqual([(shape['status'], len(shape['members'])) for shape in in_request], [('new', 2)])
        self.assertEqual(by_workers, in_request)

    def test_a_stale_repeat_after_the_clear_does_not_move_the_resolution(self):
        # A repeat of the firing (its own time minute 0) arrives after the clear, at minute 7: it changes
        # nothing, so the incident resolved when the clear came (minute 2), not when the stale repeat came.
        in_request, by_workers = self.replay(
            [('srv-0-R', 'firing', 0, 0), ('srv-0-R', 'resolved', 2, 2), ('srv-0-R', 'firing', 0, 7)]
        )
        self.assertEqual([(shape['status'], shape['resolved']) for shape in in_request], [('resolved', 2)])
        self.assertEqual(by_workers, in_request)

    def test_a_flap_inside_the_reopen_window(self):
        # Fires, clears, fires again 3 minutes later (reopens the incident), clears: one incident resolved at 4.
        in_request, by_workers = self.replay(
            [
                ('srv-0-R', 'firing', 0, 0),
                ('srv-0-R', 'resolved', 1, 1),
                ('srv-0-R', 'firing', 3, 3),
                ('srv-0-R', 'resolved', 4, 4),
            ]
        )
        self.assertEqual([(shape['detected'], shape['resolved']) for shape in in_request], [(0, 4)])
        self.assertEqual(by_workers, in_request)

    def test_a_flap_longer_than_the_reopen_window(self):
        # Fires, clears, fires again 30 minutes later (past the 10-minute reopen window), clears: two incidents.
        in_request, by_workers = self.replay(
            [
                ('srv-0-R', 'firing', 0, 0),
                ('srv-0-R', 'resolved', 1, 1),
                ('srv-0-R', 'firing', 31, 31),
                ('srv-0-R', 'resolved', 32, 32),
            ]
        )
        self.assertEqual([(shape['detected'], shape['resolved']) for shape in in_request], [(0, 1), (31, 32)])
        self.assertEqual(by_workers, in_request)

    def test_a_neighbour_fires_between_the_firing_and_the_clear_of_a_group(self):
        # As above with two alerts a notification, decided by batch jobs.
        in_request, by_workers = self.replay(
            [('srv-0-R tor-R', 'firing', 0, 0), ('srv-1-R', 'firing', 1, 1), ('srv-0-R tor-R', 'resolved', 2, 2)]
        )
        self.assertEqual([(shape['status'], len(shape['members'])) for shape in in_request], [('new', 3)])
        self.assertEqual(by_workers, in_request)

    def rest_sequence(self, rack):
        """An event on srv-0 fires (REST create), then is moved to the switch and cleared in one change."""
        from dcim.models import Device

        url = '/api/plugins/business-application/events/'
        with self.captureOnCommitCallbacks(execute=True):
            created = self.client.post(url, rest_payload(rack, self.source), format='json')
        self.assertEqual(created.status_code, 201, created.content[:300])
        change = {'status': 'ok', 'object_id': Device.objects.get(name=f'tor-{rack}').pk}
        with self.captureOnCommitCallbacks(execute=True):
            cleared = self.client.patch(f'{url}{created.json()["id"]}/', change, format='json')
        self.assertEqual(cleared.status_code, 200, cleared.content[:300])

    def test_an_event_moved_to_another_object_with_its_clear(self):
        from business_application.models import EventSource

        self.source = EventSource.objects.create(name='rest')
        self.rest_sequence(0)
        with ASYNC:
            self.rest_sequence(1)
        for job in queued_jobs(self.queue):
            run(job)
        in_request, by_workers = (
            [
                (i.status, i.title.removesuffix(f'-{rack}'), i.root_cause.removesuffix(f'-{rack}'))
                for i in Incident.objects.filter(memberships__event__dedup_id=f'rest-{rack}')
            ]
            for rack in (0, 1)
        )
        self.assertEqual(len(in_request), 1)
        self.assertEqual(by_workers, in_request)
