"""The parsers alone (no database): what each payload becomes, and that any mangled payload gives
either drafts that can be stored or a PayloadError with a path - never another exception."""

import copy
import json
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from business_application.correlation.kinds import SEVERITIES
from business_application.receivers import alertmanager, generic, grafana, pagerduty
from business_application.receivers.common import MAX_DEPTH, PayloadError, label_hash, load_json, severity_of

from .base import PAYLOADS, payload

PARSERS = {
    'alertmanager-grouped-firing.json': alertmanager,
    'alertmanager-icmp-hosts-firing.json': alertmanager,
    'alertmanager-v4-firing-and-resolved.json': alertmanager,
    'grafana-unified-mixed.json': grafana,
    'grafana-firing-with-values.json': grafana,
    'pagerduty-v2-checkmk-trigger.json': pagerduty,
    'pagerduty-v2-trigger.json': pagerduty,
    'pagerduty-v2-resolve.json': pagerduty,
    'pagerduty-v2-acknowledge.json': pagerduty,
    'checkmk-pagerduty-problem.json': pagerduty,
    'checkmk-pagerduty-recovery.json': pagerduty,
    'alertmanager-pagerduty-config-trigger.json': pagerduty,
}
GENERIC = {
    'source': 'zabbix',
    'dedup_id': 'p-1',
    'status': 'triggered',
    'severity': 'high',
    'message': 'm',
    'labels': {'host': 'web-01:9100', 'alertname': 'A'},
    'object': {'kind': 'device', 'name': 'WEB-01'},
    'starts_at': '2026-12-04T10:00:00.5+01:00',
    'ends_at': '',
    'event_time': '0001-01-01T00:00:00Z',
}
WEIRD = (
    None,
    True,
    0,
    -1,
    1.5,
    2**70,
    1e308,
    '',
    ' ',
    'x' * 3000,
    '\ufffd',
    'firing',
    'resolved',
    'trigger',
    '0001-01-01T00:00:00Z',
    '9999-12-31T23:59:59-23:00',
    '2026-02-30T00:00:00Z',
    '[::1]:80',
    'http://[::1',
    'a:b:c',
    {},
    [],
    {'a': {'b': [1, None]}},
    [{'x': 1}],
)


def test_every_payload_file_has_a_parser():
    shared = {path.name for path in PAYLOADS.glob('*.json')}
    assert shared == set(PARSERS)


@pytest.mark.parametrize('name', sorted(PARSERS))
def test_payload_files_parse(name):
    notes = []
    drafts = PARSERS[name].drafts(load_json((PAYLOADS / name).read_bytes()), None, notes)
    assert drafts or (name == 'pagerduty-v2-acknowledge.json' and 'ignored' in notes[0])
    for draft in drafts:
        check_storable(draft)


def test_grouped_firing_reads_every_alert():
    drafts = alertmanager.drafts(payload('alertmanager-grouped-firing.json'))
    assert [d.dedup_id for d in drafts] == ['f404ecabc8dd5cd7', 'f8f08d4e32c61a9d', '39f38c0611ee7abd']
    assert {(d.source, d.status, d.criticallity, d.ends_at) for d in drafts} == {
        ('prometheus', 'triggered', 'critical', None)
    }
    assert drafts[0].labels['instance'] == 'localhost:8081'
    assert drafts[0].message == 'InstanceDown: Instance localhost:8081 down'


def test_icmp_alerts_without_fingerprints_get_stable_label_hashes():
    data = payload('alertmanager-icmp-hosts-firing.json')
    first = alertmanager.drafts(data)
    reordered = copy.deepcopy(data)
    for alert in reordered['alerts']:
        alert['labels'] = dict(reversed(list(alert['labels'].items())))
    again = alertmanager.drafts(reordered)
    assert [d.dedup_id for d in first] == [d.dedup_id for d in again]
    assert len({d.dedup_id for d in first}) == 3
    assert first[0].dedup_id == label_hash(data['alerts'][0]['labels'])
    assert first[0].message == 'ICMP ping failed: No physical connection to 203.0.113.30'  # summary label
    assert first[0].criticallity == 'high'  # major


def test_grafana_per_alert_status_wins_over_the_group():
    drafts = grafana.drafts(payload('grafana-unified-mixed.json'))
    assert [d.status for d in drafts] == ['ok', 'ok', 'triggered']
    assert drafts[0].ends_at is not None
    assert drafts[2].ends_at is None
    assert drafts[2].fallback_label == 'alertname:Second webhook test'


def test_pagerduty_envelope_and_client_source():
    (draft,) = pagerduty.drafts(payload('pagerduty-v2-checkmk-trigger.json'))
    assert (draft.source, draft.dedup_id, draft.status) == ('Check_MK', 'first/site1:192.0.2.1', 'triggered')
    assert draft.labels == {
        'host': 'site1',
        'host_address': '192.0.2.1',
        'info': 'Service Down',
        'instance': '192.0.2.1',
    }
    assert pagerduty.drafts(payload('pagerduty-v2-checkmk-trigger.json'), source='checkmk')[0].source == 'checkmk'


def test_pagerduty_trigger_without_dedup_key_gets_a_stable_one():
    data = payload('pagerduty-v2-trigger.json')
    del data['dedup_key']
    first, second = pagerduty.drafts(data)[0], pagerduty.drafts(copy.deepcopy(data))[0]
    assert first.dedup_id == second.dedup_id
    data['payload']['summary'] = 'something else'
    assert pagerduty.drafts(data)[0].dedup_id != first.dedup_id


@pytest.mark.parametrize(
    ('text', 'expected'),
    [
        ('critical', 'critical'),
        ('disaster', 'critical'),
        ('page', 'critical'),
        ('P1', 'critical'),
        ('error', 'high'),
        ('major', 'high'),
        ('minor', 'warning'),
        ('Warning', 'warning'),
        ('info', 'info'),
        ('informational', 'info'),
        ('', 'warning'),
        (None, 'warning'),
        ('unheard-of', 'warning'),
    ],
)
def test_severity_aliases(text, expected):
    assert severity_of(text) == expected


def test_load_json_refuses_what_postgresql_cannot_store():
    for body, reason in (
        (b'{"a": NaN}', 'NaN'),
        (b'{"a": -Infinity}', 'Infinity'),
        (b'[1e999]', 'too large'),
        (b'[' * (MAX_DEPTH + 1) + b']' * (MAX_DEPTH + 1), 'nested'),
        (b'{"a": ', 'not valid JSON'),
        (b'\xc3\x28', 'UTF-8'),
        (b'   ', 'empty'),
    ):
        with pytest.raises(PayloadError) as error:
            load_json(body)
        assert reason in str(error.value)
    assert load_json(b'[' * MAX_DEPTH + b']' * MAX_DEPTH)
    assert load_json(b'{"a\\u0000": "\\ud83d x \\u0000"}') == {'a\ufffd0000': '\ufffdd83d x \ufffd0000'}
    assert load_json('{"ü": "ü"}'.encode()) == {'ü': 'ü'}


def paths(value, prefix=()):
    """Every path to a node of a JSON document."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def mangled(document):
    """The document with each node in turn replaced by each weird value, or removed."""
    for path in paths(document):
        if not path:
            continue
        for value in (*WEIRD, KeyError):
            copy_ = copy.deepcopy(document)
            parent = copy_
            for key in path[:-1]:
                parent = parent[key]
            if value is KeyError:
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(value)
            yield path, copy_


@pytest.mark.parametrize('name', sorted(PARSERS))
def test_mangled_payloads_give_drafts_or_a_payload_error(name):
    document = payload(name)
    if name.startswith('grafana'):
        document['alerts'] = document['alerts'][:2]
    outcomes = {'drafts': 0, 'errors': 0}
    for path, mangled_document in mangled(document):
        drafts, error = attempt(PARSERS[name], mangled_document, path)
        if error is not None:
            outcomes['errors'] += 1
            continue
        for draft in drafts:
            check_storable(draft)
        outcomes['drafts'] += 1
    assert outcomes['drafts']
    assert outcomes['errors']


def test_mangled_generic_alerts_give_drafts_or_a_payload_error():
    for document in (GENERIC, {'alerts': [GENERIC], 'source': 'batch'}):
        for path, mangled_document in mangled(document):
            drafts, _ = attempt(generic, mangled_document, path)
            for draft in drafts:
                check_storable(draft)


def attempt(parser, document, mangled_path):
    """``(drafts, None)``, or ``([], error)`` for a PayloadError that says where and why."""
    try:
        return parser.drafts(roundtrip(document), None, []), None
    except PayloadError as error:
        failure = error
    assert failure.path, mangled_path
    assert failure.reason, mangled_path
    return [], failure


def roundtrip(document):
    """As the receiver would see it: through the body and load_json."""
    return load_json(json.dumps(document).encode())


def check_storable(draft):
    assert draft.status in ('triggered', 'ok', 'suppressed')
    assert draft.criticallity in SEVERITIES
    assert isinstance(draft.dedup_id, str)
    assert 0 < len(draft.dedup_id) <= 255
    assert isinstance(draft.source, str)
    assert 0 < len(draft.source) <= 100
    assert isinstance(draft.message, str)
    assert draft.message
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in draft.labels.items())
    assert isinstance(draft.raw, dict)
    json.dumps(draft.raw, allow_nan=False)
    for moment in (draft.starts_at, draft.ends_at, draft.event_time):
        assert moment is None or (isinstance(moment, datetime) and moment.tzinfo is not None)
    assert draft.target is None or (isinstance(draft.target, tuple) and len(draft.target) == 2)


def test_read_body_counts_the_bytes_it_actually_reads():
    """Without a Content-Length (chunked, or a lying proxy) the limit still holds."""
    import io

    from business_application.api.receivers import _TooLarge, read_body

    class Request:
        META = {}

        def __init__(self, body):
            self.stream = io.BytesIO(body)

        def read(self, size):
            return self.stream.read(size)

    assert read_body(Request(b'x' * 10), limit=10) == b'x' * 10
    with pytest.raises(_TooLarge):
        read_body(Request(b'x' * 11), limit=10)
    with pytest.raises(PayloadError):
        read_body(type('Bad', (Request,), {'META': {'CONTENT_LENGTH': 'lots'}})(b'{}'))
    with pytest.raises(PayloadError, match='Content-Length'):
        read_body(type('Chunked', (Request,), {'META': {'HTTP_TRANSFER_ENCODING': 'chunked'}})(b''))


ODD_TEXT = st.text(alphabet=st.sampled_from(['a', '0', 'f', 'd', '\x00', '\ufffd', '\ud800', '\udc80', '\udfff']))


@given(ODD_TEXT, ODD_TEXT)
def test_cleaning_text_never_makes_two_texts_one(first, second):
    """Fingerprints come from cleaned text: distinct ones must stay distinct, and storable."""
    from business_application.receivers.common import _clean_text

    cleaned = _clean_text(first)
    assert '\x00' not in cleaned
    cleaned.encode('utf-8')
    if first != second:
        assert cleaned != _clean_text(second)
    if '\x00' not in first and '\ufffd' not in first and not any(0xD800 <= ord(c) <= 0xDFFF for c in first):
        assert cleaned == first
