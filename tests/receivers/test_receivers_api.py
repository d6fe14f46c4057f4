"""The four receivers through NetBox's REST stack, with real payloads against a real map."""

import copy
from datetime import UTC, datetime

from django.contrib.contenttypes.models import ContentType
from django.test import override_settings

from users.models import ObjectPermission

from business_application.models import Event, EventSource, Incident
from business_application.receivers import MAX_BODY_BYTES

from .base import RECEIVE, URL, ReceiverTestCase, object_of, payload


def events_by_dedup():
    return {event.dedup_id: event for event in Event.objects.select_related('event_source')}


class AccessTest(ReceiverTestCase):
    receive = False

    def constrain(self, action, constraints):
        """Let the user ``action`` events only within ``constraints``."""
        permission = ObjectPermission.objects.create(
            name=f'{action} within {constraints}', actions=[action], constraints=constraints
        )
        permission.object_types.add(ContentType.objects.get_by_natural_key('business_application', 'event'))
        permission.users.add(self.user)

    def test_anonymous_requests_are_refused(self):
        for receiver in ('alertmanager', 'grafana', 'pagerduty', 'generic'):
            with self.subTest(receiver=receiver):
                response = self.client.post(
                    URL.format(receiver), payload('alertmanager-grouped-firing.json'), format='json'
                )
                self.assertEqual(response.status_code, 403)
        self.assertEqual(Event.objects.count(), 0)

    def test_a_token_without_both_event_permissions_is_refused(self):
        for permissions in ((), ('business_application.add_event',), ('business_application.change_event',)):
            ObjectPermission.objects.filter(users=self.user).delete()
            self.add_permissions(*permissions)
            with self.subTest(permissions=permissions):
                response = self.post_file('alertmanager', 'alertmanager-grouped-firing.json')
                self.assertEqual(response.status_code, 403)
        self.assertEqual(Event.objects.count(), 0)

    def test_a_read_only_token_is_refused(self):
        self.add_permissions(*RECEIVE, 'business_application.add_eventsource')
        self.token.write_enabled = False
        self.token.save()
        response = self.post_file('alertmanager', 'alertmanager-grouped-firing.json')
        self.assertEqual(response.status_code, 403)
        self.assertEqual(Event.objects.count(), 0)

    def test_an_unknown_source_is_created_only_with_permission_to_add_sources(self):
        self.add_permissions(*RECEIVE)
        response = self.post_file('alertmanager', 'alertmanager-grouped-firing.json')
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.data['path'], 'source')
        self.assertIn("'prometheus'", response.data['detail'])
        self.assertEqual(Event.objects.count(), 0)
        EventSource.objects.create(name='prometheus')
        response = self.post_file('alertmanager', 'alertmanager-grouped-firing.json')
        self.assertEqual(response.status_code, 200, response.data)
        self.assertEqual(Event.objects.count(), 3)

    def test_a_repeat_of_an_alert_the_user_may_not_change_is_refused(self):
        self.add_permissions('business_application.add_event', 'business_application.add_eventsource')
        self.constrain('change', {'criticallity': 'warning'})
        first = self.post_file('alertmanager', 'alertmanager-grouped-firing.json')
        self.assertEqual(first.status_code, 200, first.data)  # three new critical alerts: nothing to change
        changed = payload('alertmanager-grouped-firing.json')
        changed['alerts'][0]['annotations']['title'] = 'still down'
        response = self.post('alertmanager', changed)
        self.assertEqual(response.status_code, 403)
        self.assertEqual(
            Event.objects.get(dedup_id='f404ecabc8dd5cd7').message, 'InstanceDown: Instance localhost:8081 down'
        )

    def test_a_repeat_may_not_bring_an_alert_into_the_users_constraints(self):
        """The stored alert is checked as it was before the repeat (as well as after it)."""
        self.add_permissions('business_application.add_event', 'business_application.add_eventsource')
        self.constrain('change', {'criticallity': 'warning'})
        group = payload('alertmanager-grouped-firing.json')
        group['alerts'] = group['alerts'][:1]
        self.assertEqual(self.post('alertmanager', group).status_code, 200)  # a new critical alert
        group['alerts'][0]['labels']['severity'] = 'warning'  # now one the user may change
        response = self.post('alertmanager', group)
        self.assertEqual(response.status_code, 403, response.data)
        self.assertEqual(Event.objects.get(dedup_id=group['alerts'][0]['fingerprint']).criticallity, 'critical')

    def test_a_group_is_all_or_nothing_under_object_permission_constraints(self):
        self.add_permissions('business_application.change_event', 'business_application.add_eventsource')
        self.constrain('add', {'criticallity': 'critical'})
        group = payload('alertmanager-grouped-firing.json')
        group['alerts'][1]['labels']['severity'] = 'warning'
        response = self.post('alertmanager', group)
        self.assertEqual(response.status_code, 403)
        self.assertEqual(Event.objects.count(), 0)
        self.assertEqual(Incident.objects.count(), 0)
        self.assertFalse(EventSource.objects.filter(name='prometheus').exists())


class AlertmanagerTest(ReceiverTestCase):
    def test_grouped_firing_payload_becomes_events_and_one_incident(self):
        response = self.post_file('alertmanager', 'alertmanager-grouped-firing.json')
        self.assertEqual(response.status_code, 200, response.data)
        self.assertEqual((response.data['received'], response.data['created'], response.data['updated']), (3, 3, 0))
        events = events_by_dedup()
        self.assertEqual(set(events), {'f404ecabc8dd5cd7', 'f8f08d4e32c61a9d', '39f38c0611ee7abd'})
        for event in events.values():
            self.assertEqual(event.event_source.name, 'prometheus')
            self.assertEqual((event.status, event.criticallity), ('triggered', 'critical'))
            self.assertEqual(object_of(event), 'device:localhost')  # instance localhost:808x, port stripped
            self.assertIsNone(event.ends_at)  # Go's zero time
            self.assertEqual(event.starts_at, datetime(2023, 6, 12, 8, 24, 38, 326000, tzinfo=UTC))
        incident = Incident.objects.get()
        self.assertEqual(response.data['incidents'], [incident.pk])
        self.assertEqual({e['id'] for e in response.data['events']}, {e.pk for e in events.values()})
        self.assertTrue(all(e['incidents'] == [incident.pk] for e in response.data['events']))
        self.assertEqual(set(incident.events.values_list('dedup_id', flat=True)), set(events))

    def test_raw_payload_of_each_alert_is_kept_whole_with_its_group(self):
        data = payload('alertmanager-grouped-firing.json')
        self.post('alertmanager', data)
        event = Event.objects.get(dedup_id='f8f08d4e32c61a9d')
        group = event.raw.pop('_group')
        self.assertEqual(event.raw, data['alerts'][1])
        self.assertEqual(group['groupKey'], data['groupKey'])
        self.assertEqual(group['commonLabels'], data['commonLabels'])
        self.assertNotIn('alerts', group)

    def test_icmp_hosts_map_by_primary_ip_and_the_unknown_one_is_kept_unmapped(self):
        response = self.post_file('alertmanager', 'alertmanager-icmp-hosts-firing.json')
        self.assertEqual(response.status_code, 200, response.data)
        targets = sorted(object_of(event) for event in Event.objects.all())
        self.assertEqual(targets, ['device:ping-30', 'host:203.0.113.66', 'vm:ping-50'])
        self.assertEqual(response.data['unmapped'], 1)
        unmapped = Event.objects.get(unmapped_label='host:203.0.113.66')
        self.assertIsNone(unmapped.content_type)
        self.assertEqual(unmapped.criticallity, 'high')  # severity "major"
        self.assertEqual(unmapped.message, 'ICMP ping failed: No physical connection to 203.0.113.66')
        self.assertTrue(unmapped.incidents.exists())  # an unmapped alert opens its own incident
        # Without fingerprints the dedup id is a hash of the labels: the same on every delivery.
        again = self.post_file('alertmanager', 'alertmanager-icmp-hosts-firing.json')
        self.assertEqual((again.data['created'], again.data['updated']), (0, 3))
        self.assertEqual(Event.objects.count(), 3)

    def test_repeats_update_the_stored_alerts_and_open_nothing_new(self):
        self.post_file('alertmanager', 'alertmanager-grouped-firing.json')
        incidents = set(Incident.objects.values_list('pk', flat=True))
        repeat = payload('alertmanager-grouped-firing.json')
        for alert in repeat['alerts']:
            alert['labels']['severity'] = 'warning'
            alert['annotations']['title'] += ' (still)'
        response = self.post('alertmanager', repeat)
        self.assertEqual((response.data['created'], response.data['updated']), (0, 3))
        self.assertEqual(Event.objects.count(), 3)
        self.assertEqual(set(Incident.objects.values_list('pk', flat=True)), incidents)
        event = Event.objects.get(dedup_id='f404ecabc8dd5cd7')
        self.assertEqual(
            (event.criticallity, event.message), ('warning', 'InstanceDown: Instance localhost:8081 down (still)')
        )

    def test_per_alert_status_wins_and_send_resolved_clears(self):
        response = self.post_file('alertmanager', 'alertmanager-v4-firing-and-resolved.json')
        self.assertEqual(response.status_code, 200, response.data)
        firing = Event.objects.get(dedup_id='a1b2c3d4e5f60718')
        resolved = Event.objects.get(dedup_id='0f1e2d3c4b5a6978')
        self.assertEqual((firing.status, firing.criticallity), ('triggered', 'critical'))  # severity "page"
        self.assertEqual(object_of(firing), 'device:WEB-01')  # web-01.example.net:9100 -> WEB-01
        # Nine fraction digits and an offset; a firing alert's endsAt is only a guess and is not kept.
        self.assertEqual(firing.starts_at, datetime(2026, 12, 4, 10, 0, 0, 123456, tzinfo=UTC))
        self.assertIsNone(firing.ends_at)
        # The resolved alert under a firing group is a clear for an alert NetBox never saw.
        self.assertEqual(resolved.status, 'ok')
        self.assertEqual(resolved.ends_at, datetime(2026, 12, 4, 9, 58, 30, 500000, tzinfo=UTC))
        self.assertEqual(resolved.unmapped_label, 'host:shop.example.net')  # a URL's host
        self.assertFalse(resolved.incidents.exists())
        incident = Incident.objects.get()
        self.assertTrue(incident.is_open)
        # Alertmanager's send_resolved: the same group, now resolved.
        clear = payload('alertmanager-v4-firing-and-resolved.json')
        clear['status'] = 'resolved'
        clear['alerts'][0].update(status='resolved', endsAt='2026-12-04T10:07:00Z')
        response = self.post('alertmanager', clear)
        self.assertEqual((response.data['created'], response.data['updated']), (0, 2))
        firing.refresh_from_db()
        incident.refresh_from_db()
        self.assertEqual(firing.status, 'ok')
        self.assertEqual(incident.status, 'resolved')

    def test_group_status_applies_to_alerts_without_their_own(self):
        data = payload('alertmanager-grouped-firing.json')
        for alert in data['alerts']:
            del alert['status']
        data['status'] = 'resolved'
        data['alerts'][0]['status'] = 'firing'
        self.post('alertmanager', data)
        self.assertEqual(Event.objects.get(dedup_id='f404ecabc8dd5cd7').status, 'triggered')
        self.assertEqual(Event.objects.get(dedup_id='f8f08d4e32c61a9d').status, 'ok')

    def test_empty_and_zero_timestamps_are_unknown(self):
        data = payload('alertmanager-grouped-firing.json')
        data['alerts'][0]['startsAt'] = ''
        data['alerts'][1]['startsAt'] = '0001-01-01T00:00:00Z'
        del data['alerts'][2]['startsAt']
        response = self.post('alertmanager', data)
        self.assertEqual(response.status_code, 200, response.data)
        self.assertEqual(set(Event.objects.values_list('starts_at', flat=True)), {None})
        self.assertTrue(all(event.event_time is not None for event in Event.objects.all()))

    def test_source_comes_from_the_url_then_the_alert_then_the_default(self):
        data = payload('alertmanager-grouped-firing.json')
        data['alerts'][0]['labels']['event_source'] = 'thanos-ruler'
        self.post('alertmanager', data)
        sources = dict(Event.objects.values_list('dedup_id', 'event_source__name'))
        self.assertEqual(sources['f404ecabc8dd5cd7'], 'thanos-ruler')
        self.assertEqual(sources['f8f08d4e32c61a9d'], 'prometheus')
        response = self.post_file('alertmanager', 'alertmanager-grouped-firing.json', query='?source=loki')
        self.assertEqual(response.data['created'], 3)  # another source: other alerts
        self.assertEqual(Event.objects.filter(event_source__name='loki').count(), 3)

    def test_label_order_setting_changes_the_mapping(self):
        data = payload('alertmanager-grouped-firing.json')
        data['alerts'] = data['alerts'][:1]
        data['alerts'][0]['labels']['nodename'] = 'web-01'
        self.post('alertmanager', data)
        self.assertEqual(object_of(Event.objects.get()), 'device:WEB-01')  # nodename before instance
        with override_settings(BUSINESS_APP_ALERT_LABEL_ORDER=['instance', 'nodename']):
            self.post('alertmanager', data)
        self.assertEqual(object_of(Event.objects.get()), 'device:localhost')
        with override_settings(BUSINESS_APP_ALERT_LABEL_ORDER=['job']):
            self.post('alertmanager', data)
        self.assertEqual(object_of(Event.objects.get()), 'host:node')

    def test_a_group_with_a_malformed_alert_stores_nothing(self):
        data = payload('alertmanager-grouped-firing.json')
        data['alerts'][1]['startsAt'] = 'yesterday at noon'
        response = self.post('alertmanager', data)
        self.assertEqual(response.status_code, 400)
        self.assertEqual(response.data['path'], 'alerts[1].startsAt')
        self.assertIn('yesterday at noon', response.data['reason'])
        self.assertEqual(Event.objects.count(), 0)
        self.assertFalse(EventSource.objects.filter(name='prometheus').exists())

    def test_malformed_payloads_get_400_with_the_path_and_reason(self):
        good = payload('alertmanager-grouped-firing.json')

        def changed(edit):
            data = copy.deepcopy(good)
            edit(data)
            return data

        cases = {
            '$': [
                b'{"alerts": [',
                b'',
                b'[1, 2]',
                b'{"alerts": [], "x": NaN}',
                b'\xff\xfe{}',
                b'[' * 5000 + b']' * 5000,
                b'{"a": 1e999}',
            ],
            'alerts': [changed(lambda d: d.pop('alerts')), changed(lambda d: d.update(alerts={'a': 1}))],
            'alerts[0]': [
                changed(lambda d: d['alerts'].__setitem__(0, 'InstanceDown')),
                changed(lambda d: d['alerts'][0].update(fingerprint='', labels={})),
            ],
            'alerts[0].status': [changed(lambda d: d['alerts'][0].update(status='exploded'))],
            'alerts[2].labels': [changed(lambda d: d['alerts'][2].update(labels=['job', 'node']))],
            'alerts[0].labels.instance': [changed(lambda d: d['alerts'][0]['labels'].update(instance={'h': 1}))],
            'alerts[0].endsAt': [
                changed(lambda d: d['alerts'][0].update(endsAt='2023-02-30T00:00:00Z')),
                changed(lambda d: d['alerts'][0].update(endsAt='9999-12-31T23:59:59-23:00')),
            ],
            'alerts[0].fingerprint': [changed(lambda d: d['alerts'][0].update(fingerprint='f' * 300))],
            'status': [changed(lambda d: d.update(status='pending'))],
            'version': [changed(lambda d: d.update(version='3'))],
        }
        for path, bodies in cases.items():
            for body in bodies:
                with self.subTest(path=path, body=str(body)[:60]):
                    response = self.post('alertmanager', body)
                    self.assertEqual(response.status_code, 400, response.content[:300])
                    self.assertEqual(response.data['path'], path)
                    self.assertTrue(response.data['reason'])
        self.assertEqual(Event.objects.count(), 0)

    def test_bad_source_query_parameter_is_400(self):
        for query in ('?source=', '?source=' + 'x' * 101):
            with self.subTest(query=query[:20]):
                response = self.post_file('alertmanager', 'alertmanager-grouped-firing.json', query=query)
                self.assertEqual(response.status_code, 400)
                self.assertEqual(response.data['path'], 'source (query parameter)')

    def test_oversized_bodies_get_413_before_parsing(self):
        body = b'{"alerts": []' + b' ' * MAX_BODY_BYTES + b'}'
        response = self.post('alertmanager', body)
        self.assertEqual(response.status_code, 413)
        self.assertIn(str(MAX_BODY_BYTES), response.data['detail'])
        # Past Django's own DATA_UPLOAD_MAX_MEMORY_SIZE too, and with a declared length only.
        self.assertEqual(self.post('alertmanager', b' ' * (3 * MAX_BODY_BYTES)).status_code, 413)
        self.assertEqual(self.post('alertmanager', b'{}', CONTENT_LENGTH=str(MAX_BODY_BYTES + 1)).status_code, 413)
        self.assertEqual(Event.objects.count(), 0)

    def test_a_body_at_the_limit_is_read(self):
        body = b'{"alerts": []}'
        body += b' ' * (MAX_BODY_BYTES - len(body))
        response = self.post('alertmanager', body)
        self.assertEqual(response.status_code, 200, response.data)
        self.assertEqual(response.data['received'], 0)

    def test_nul_characters_and_lone_surrogates_are_stored_not_fatal(self):
        body = (
            b'{"version": "4", "status": "firing", "alerts": [{"status": "firing", "labels": '
            b'{"alertname": "Odd\\u0000name", "instance": "web-01\\ud800"}, "annotations": {"summary": '
            b'"x\\u0000y"}, "fingerprint": "odd"}]}'
        )
        response = self.post('alertmanager', body)
        self.assertEqual(response.status_code, 200, response.data)
        # Each is escaped as U+FFFD and its code, so two alerts differing only there stay two alerts
        self.assertEqual(Event.objects.get().message, 'Odd\ufffd0000name: x\ufffd0000y')
        self.assertIn('web-01\ufffdd800', str(Event.objects.get().raw))


class GrafanaTest(ReceiverTestCase):
    def test_mixed_notification_keeps_each_alerts_status(self):
        response = self.post_file('grafana', 'grafana-unified-mixed.json')
        self.assertEqual(response.status_code, 200, response.data)
        events = events_by_dedup()
        self.assertEqual({e.event_source.name for e in events.values()}, {'grafana'})
        bad, other, second = events['aaafafe0953f0962'], events['fb31814ac93dbe7d'], events['6f9cd313db421ef1']
        self.assertEqual((bad.status, object_of(bad)), ('ok', 'device:BADHOST'))  # FQDN label, short device name
        self.assertEqual((other.status, object_of(other)), ('ok', 'vm:otherhost.example.com'))
        self.assertEqual(bad.ends_at, datetime(2022, 6, 17, 1, 8, 28, 652747, tzinfo=UTC))
        # Clears of alerts NetBox never saw are stored and open nothing.
        self.assertFalse(bad.incidents.exists() or other.incidents.exists())
        # No label names an object: kept unmapped under its alert name, in an incident of its own.
        self.assertEqual((second.status, second.unmapped_label), ('triggered', 'alertname:Second webhook test'))
        self.assertEqual(Incident.objects.get().title, 'Alert on unmapped alertname:Second webhook test')
        self.assertNotIn('message', second.raw['_group'])  # the group's rendered text is not copied per alert
        self.assertEqual(second.raw['_group']['orgId'], 1)

    def test_firing_alert_with_values_maps_its_service_label(self):
        response = self.post_file('grafana', 'grafana-firing-with-values.json')
        self.assertEqual(response.status_code, 200, response.data)
        event = Event.objects.get()
        self.assertEqual(object_of(event), 'technicalservice:checkout')
        self.assertEqual((event.status, event.criticallity), ('triggered', 'high'))  # severity "error"
        self.assertEqual(event.starts_at, datetime(2026, 12, 4, 8, 15, 0, 500000, tzinfo=UTC))
        self.assertEqual(event.raw['values'], {'B': 0.12, 'C': 1})
        self.assertEqual(Incident.objects.get().title, 'Service disruption affecting checkout')

    def test_put_is_accepted_as_grafana_may_use_it(self):
        response = self.client.put(
            URL.format('grafana'), payload('grafana-firing-with-values.json'), format='json', **self.header
        )
        self.assertEqual(response.status_code, 200, response.data)
        self.assertEqual(Event.objects.count(), 1)

    def test_legacy_grafana_alerting_is_refused_with_a_reason(self):
        legacy = {'title': '[Alerting] CPU', 'ruleId': 1, 'ruleName': 'CPU', 'state': 'alerting', 'evalMatches': []}
        response = self.post('grafana', legacy)
        self.assertEqual(response.status_code, 400)
        self.assertIn('legacy Grafana alerting', response.data['reason'])

    def test_a_grafana_payload_sent_to_alertmanager_says_where_it_belongs(self):
        response = self.post_file('alertmanager', 'grafana-unified-mixed.json')
        self.assertEqual(response.status_code, 400)
        self.assertIn('alerts/grafana/', response.data['reason'])


class PagerDutyTest(ReceiverTestCase):
    def test_checkmk_trigger_with_context_becomes_an_event_on_its_host(self):
        data = payload('pagerduty-v2-checkmk-trigger.json')
        response = self.post('pagerduty', data)
        self.assertEqual(response.status_code, 202, response.data)
        self.assertEqual((response.data['status'], response.data['dedup_key']), ('success', 'first/site1:192.0.2.1'))
        event = Event.objects.get()
        self.assertEqual(event.event_source.name, 'Check_MK')  # the client that raised it
        self.assertEqual(
            (event.status, event.criticallity, event.message), ('triggered', 'critical', 'CRITICAL: first on site1')
        )
        self.assertEqual(object_of(event), 'device:site1')  # custom_details.host
        self.assertEqual(event.raw, data)  # the monitoring context is kept with it
        self.assertEqual(response.data['incidents'], list(event.incidents.values_list('pk', flat=True)))
        self.assertEqual(len(response.data['incidents']), 1)

    def test_label_order_can_prefer_the_address(self):
        with override_settings(BUSINESS_APP_ALERT_LABEL_ORDER=['instance', 'host']):
            self.post_file('pagerduty', 'pagerduty-v2-checkmk-trigger.json')
        self.assertEqual(object_of(Event.objects.get()), 'device:cmk-ip')  # payload.source 192.0.2.1

    def test_trigger_acknowledge_resolve(self):
        response = self.post_file('pagerduty', 'pagerduty-v2-trigger.json')
        self.assertEqual(response.status_code, 202, response.data)
        event = Event.objects.get()
        self.assertEqual(event.event_source.name, 'Zabbix')
        self.assertEqual(object_of(event), 'device:db-01.example.net')  # payload.source
        self.assertEqual((event.status, event.criticallity), ('triggered', 'high'))  # "error"
        self.assertEqual(event.starts_at, datetime(2026, 12, 4, 10, 20, 30, tzinfo=UTC))
        incident = Incident.objects.get()
        acknowledged = self.post_file('pagerduty', 'pagerduty-v2-acknowledge.json')
        self.assertEqual((acknowledged.status_code, acknowledged.data['updated']), (202, 1))
        event.refresh_from_db()
        self.assertEqual(
            (event.status, event.message, event.criticallity),
            ('triggered', 'Disk /var on db-01.example.net is 95% full', 'high'),
        )
        self.assertEqual(object_of(event), 'device:db-01.example.net')
        resolved = self.post_file('pagerduty', 'pagerduty-v2-resolve.json')
        self.assertEqual(resolved.status_code, 202)
        event.refresh_from_db()
        incident.refresh_from_db()
        self.assertEqual((event.status, event.message), ('ok', 'Disk /var on db-01.example.net is 95% full'))
        self.assertEqual(object_of(event), 'device:db-01.example.net')
        self.assertEqual(incident.status, 'resolved')
        self.assertEqual(Event.objects.count(), 1)

    def test_acknowledge_of_an_unknown_alert_stores_nothing_and_says_so(self):
        response = self.post_file('pagerduty', 'pagerduty-v2-acknowledge.json')
        self.assertEqual(response.status_code, 202, response.data)
        self.assertEqual((response.data['received'], response.data['dedup_key']), (0, 'db-01/disk-var'))
        self.assertIn('ignored', response.data['notes'][0])
        self.assertEqual(Event.objects.count(), 0)

    def test_resolve_of_an_unknown_alert_is_stored_and_opens_nothing(self):
        response = self.post_file('pagerduty', 'pagerduty-v2-resolve.json')
        self.assertEqual(response.status_code, 202, response.data)
        event = Event.objects.get()
        self.assertEqual((event.status, event.unmapped_label), ('ok', 'alert:db-01/disk-var'))
        self.assertEqual(Incident.objects.count(), 0)

    def test_checkmk_problem_and_recovery(self):
        self.post_file('pagerduty', 'checkmk-pagerduty-problem.json')
        incident = Incident.objects.get()
        response = self.post_file('pagerduty', 'checkmk-pagerduty-recovery.json')
        self.assertEqual((response.status_code, response.data['updated']), (202, 1))
        event = Event.objects.get()
        self.assertEqual(
            (event.status, event.message, object_of(event)), ('ok', 'OK: HTTP shop on site1', 'device:site1')
        )
        incident.refresh_from_db()
        self.assertEqual(incident.status, 'resolved')

    def test_alertmanagers_own_pagerduty_integration(self):
        response = self.post_file('pagerduty', 'alertmanager-pagerduty-config-trigger.json')
        self.assertEqual(response.status_code, 202, response.data)
        event = Event.objects.get()
        self.assertEqual((event.event_source.name, object_of(event)), ('Alertmanager', 'device:WEB-01'))

    def test_malformed_events_get_400(self):
        cases = {
            'event_action': {'event_action': 'snooze', 'dedup_key': 'x'},
            'payload': {'event_action': 'trigger', 'dedup_key': 'x'},
            'payload.summary': {'event_action': 'trigger', 'payload': {'source': 'h', 'severity': 'info'}},
            'dedup_key': {'event_action': 'resolve'},
            'event.event_action': {'event': {'event_action': 7}},
            'payload.timestamp': {'event_action': 'trigger', 'payload': {'summary': 's', 'timestamp': 'noon'}},
            'client': {'event_action': 'trigger', 'payload': {'summary': 's'}, 'client': 'c' * 101},
        }
        for path, body in cases.items():
            with self.subTest(path=path):
                response = self.post('pagerduty', body)
                self.assertEqual(response.status_code, 400, response.data)
                self.assertEqual(response.data['path'], path)
        self.assertEqual(Event.objects.count(), 0)


class GenericTest(ReceiverTestCase):
    def test_one_alert_with_an_explicit_object(self):
        alert = {
            'source': 'zabbix',
            'dedup_id': 'problem-4711',
            'status': 'triggered',
            'severity': 'disaster',
            'message': 'Disk /var is 95% full',
            'object': 'device:web-01',
            'starts_at': '2026-12-04T10:00:00+01:00',
        }
        response = self.post('generic', alert)
        self.assertEqual(response.status_code, 200, response.data)
        event = Event.objects.get()
        self.assertEqual(
            (event.event_source.name, event.dedup_id, event.criticallity), ('zabbix', 'problem-4711', 'critical')
        )
        self.assertEqual(object_of(event), 'device:WEB-01')
        self.assertEqual(event.starts_at, datetime(2026, 12, 4, 9, 0, tzinfo=UTC))
        self.assertEqual(event.raw, alert)
        self.assertEqual(response.data['events'][0]['object_type'], 'dcim.device')

    def test_a_batch_with_labels_ids_and_unknown_objects(self):
        db = self.objects['device:db-01.example.net']
        batch = {
            'source': 'scripts',
            'alerts': [
                {'dedup_id': 'a', 'labels': {'hostname': 'DB-01'}, 'message': 'short name of an FQDN device'},
                {'dedup_id': 'b', 'object': {'kind': 'device', 'id': db.pk}, 'severity': 'info'},
                {'dedup_id': 'c', 'object': {'type': 'virtualization.cluster', 'name': 'prod-cluster'}},
                {'dedup_id': 'd', 'object': 'service:Queue Service', 'source': 'other'},
                {'dedup_id': 'e', 'object': 'device:ghost-07', 'labels': {'host': 'ghost-07.example.net'}},
                {
                    'dedup_id': 'f',
                    'labels': {'host': 'ghost-08'},
                    'status': 'resolved',
                    'ends_at': '0001-01-01T00:00:00Z',
                },
            ],
        }
        response = self.post('generic', batch)
        self.assertEqual(response.status_code, 200, response.data)
        events = events_by_dedup()
        self.assertEqual(
            {k: object_of(e) for k, e in events.items()},
            {
                'a': 'device:db-01.example.net',
                'b': 'device:db-01.example.net',
                'c': 'cluster:prod-cluster',
                'd': 'technicalservice:Queue Service',
                'e': 'device:ghost-07',
                'f': 'host:ghost-08',
            },
        )
        self.assertEqual(
            {k: e.event_source.name for k, e in events.items()},
            {'a': 'scripts', 'b': 'scripts', 'c': 'scripts', 'd': 'other', 'e': 'scripts', 'f': 'scripts'},
        )
        self.assertEqual((events['f'].status, events['f'].ends_at), ('ok', None))
        self.assertEqual(response.data['unmapped'], 2)

    def test_a_bare_array_and_defaults(self):
        response = self.post('generic', [{'labels': {'device': 'site1', 'alertname': 'Reboot'}}])
        self.assertEqual(response.status_code, 200, response.data)
        event = Event.objects.get()
        self.assertEqual(
            (event.event_source.name, event.status, event.criticallity, event.message),
            ('generic', 'triggered', 'warning', 'Reboot'),
        )
        self.assertTrue(event.dedup_id.startswith('labels-'))

    def test_event_time_orders_notifications(self):
        base = {'dedup_id': 'x', 'object': 'device:site1'}
        self.post('generic', {**base, 'status': 'ok', 'event_time': '2026-12-04T10:05:00Z'})
        self.post('generic', {**base, 'status': 'triggered', 'event_time': '2026-12-04T10:00:00Z'})
        self.assertEqual(Event.objects.get().status, 'ok')  # the older notification does not roll it back

    def test_malformed_generic_alerts(self):
        cases = {
            'severity': {'dedup_id': 'x', 'severity': 'apocalyptic'},
            'status': {'dedup_id': 'x', 'status': 'burning'},
            'dedup_id': {'message': 'nothing identifies me'},
            'object': {'dedup_id': 'x', 'object': 'WEB-01'},
            'object.kind': {'dedup_id': 'x', 'object': {'kind': 'rack', 'name': 'r1'}},
            'object.id': {'dedup_id': 'x', 'object': {'kind': 'device', 'id': 2**70}},
            'alerts[1].starts_at': {'alerts': [{'dedup_id': 'a'}, {'dedup_id': 'b', 'starts_at': 'soon'}]},
            'source': {'dedup_id': 'x', 'source': ''},
        }
        for path, body in cases.items():
            with self.subTest(path=path):
                response = self.post('generic', body)
                self.assertEqual(response.status_code, 400, response.data)
                self.assertEqual(response.data['path'], path)
        self.assertEqual(Event.objects.count(), 0)


class NeverServerErrorTest(ReceiverTestCase):
    """Mangled payloads through the whole stack (parse, map, store, correlate): 2xx or 4xx, never 5xx.
    The parsers alone meet many more manglings in test_parsers.py."""

    WEIRD = (None, '', 'x' * 3000, {}, '[::1]:80', '9999-12-31T23:59:59Z')

    def mangle(self, receiver, document, paths):
        statuses = set()
        for path in paths:
            for value in (*self.WEIRD, KeyError):
                data = copy.deepcopy(document)
                parent = data
                for key in path[:-1]:
                    parent = parent[key]
                if value is KeyError:
                    parent.pop(path[-1], None)
                else:
                    parent[path[-1]] = value
                response = self.post(receiver, data)
                with self.subTest(receiver=receiver, path=path, value=str(value)[:20]):
                    self.assertLess(response.status_code, 500)
                    if response.status_code == 400:
                        self.assertTrue(response.data['path'])
                statuses.add(response.status_code)
        return statuses

    def test_alertmanager(self):
        group = payload('alertmanager-icmp-hosts-firing.json')
        group['alerts'] = group['alerts'][:1]
        paths = [
            ('status',),
            ('alerts', 0, 'status'),
            ('alerts', 0, 'startsAt'),
            ('alerts', 0, 'endsAt'),
            ('alerts', 0, 'annotations'),
            ('alerts', 0, 'labels', 'instance'),
            ('alerts', 0, 'labels', 'severity'),
            ('alerts', 0, 'labels', 'alertname'),
            ('alerts', 0, 'fingerprint'),
        ]
        self.assertEqual(self.mangle('alertmanager', group, paths) - {200, 400}, set())

    def test_pagerduty(self):
        event = payload('pagerduty-v2-trigger.json')
        paths = [
            ('event_action',),
            ('dedup_key',),
            ('client',),
            ('payload', 'source'),
            ('payload', 'summary'),
            ('payload', 'timestamp'),
            ('payload', 'custom_details'),
        ]
        self.assertEqual(self.mangle('pagerduty', event, paths) - {202, 400}, set())

    def test_generic(self):
        alert = {
            'source': 'zabbix',
            'dedup_id': 'p-1',
            'status': 'triggered',
            'severity': 'high',
            'message': 'm',
            'labels': {'host': 'web-01:9100'},
            'object': 'device:WEB-01',
            'starts_at': '2026-12-04T10:00:00Z',
            'ends_at': '',
            'event_time': '2026-12-04T10:00:01Z',
        }
        paths = [('source',), ('dedup_id',), ('message',), ('labels', 'host'), ('object',), ('event_time',)]
        self.assertEqual(self.mangle('generic', alert, paths) - {200, 400}, set())
