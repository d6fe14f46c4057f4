"""Mutation fuzz of the receivers: real payloads, broken by hypothesis, through NetBox's REST stack.

Each example takes a real payload (tests/receivers/payloads and the shared alert samples), applies a few
mutations (drop a key, swap a value for another type, huge or non-ASCII or NUL text, deep nesting,
empty/zero/far-future timestamps, contradictory group and alert status, an Alertmanager version 3 body)
and posts it to the receiver it belongs to. The answer is never a server error; a refusal is a 4xx
whose JSON says where and why, and leaves every table as it was.

``make test`` runs a bounded number of examples; ``make fuzz`` (NBA_FUZZ=long) many more.
"""

import json
import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from business_application.models import Event, EventSource, Incident, IncidentEvent, IncidentTimelineEntry

from .base import PAYLOADS, ReceiverTestCase

LONG = os.environ.get('NBA_FUZZ') == 'long'
EXAMPLES = int(os.environ.get('NBA_FUZZ_EXAMPLES') or (1000 if LONG else 60))
SHARED_ALERTS = Path('/work/shared/data/alerts')


def receiver_of(name):
    for receiver in ('alertmanager', 'grafana', 'pagerduty'):
        if name.startswith(receiver):
            return receiver
    return 'pagerduty' if 'pagerduty' in name else 'generic'


def seeds():
    """(receiver, payload) of every real sample there is here."""
    files = sorted(PAYLOADS.glob('*.json'))
    if SHARED_ALERTS.is_dir():
        files += sorted(SHARED_ALERTS.glob('*.json'))
    found = []
    for path in files:
        name = path.name
        receiver = 'pagerduty' if name.startswith('checkmk-pagerduty') else receiver_of(name)
        found.append((receiver, json.loads(path.read_text(encoding='utf-8'))))
    return found


SEEDS = seeds()

ODD_TIMES = [
    '',
    '0',
    0,
    -1,
    '0001-01-01T00:00:00Z',
    '9999-12-31T23:59:59Z',
    '2999-01-01T00:00:00Z',
    '2026-13-45T25:61:61Z',
    1e300,
    'yesterday',
    '1970-01-01T00:00:00Z',
    '2026-03-01T09:00:00.123456789+05:30',
]
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec='utf-8'), min_size=1, max_size=40),
    st.just('\x00nul'),
    st.just('é' * 5000),
    st.just('x' * 300_000),
    st.sampled_from(ODD_TIMES),
    st.recursive(
        st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=20,
    ),
)


def paths(value, prefix=()):
    """Every path (tuple of keys and indexes) into a JSON value, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def parent_of(document, path):
    node = document
    for step in path[:-1]:
        node = node[step]
    return node


@st.composite
def mutated(draw):
    receiver, original = draw(st.sampled_from(SEEDS))
    document = json.loads(json.dumps(original))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(['drop', 'replace', 'replace', 'time', 'status', 'version', 'nest', 'duplicate']))
        candidates = [p for p in paths(document) if p]
        if not candidates:
            document = draw(JUNK)
            break
        path = draw(st.sampled_from(candidates))
        parent = parent_of(document, path)
        if kind == 'drop':
            del parent[path[-1]]
        elif kind == 'replace':
            parent[path[-1]] = draw(JUNK)
        elif kind == 'time':
            keys = [
                p
                for p in candidates
                if str(p[-1]).lower() in ('startsat', 'endsat', 'timestamp', 'starts_at', 'ends_at', 'event_time')
            ]
            if keys:
                target = draw(st.sampled_from(keys))
                parent_of(document, target)[target[-1]] = draw(st.sampled_from(ODD_TIMES))
        elif kind == 'status' and isinstance(document, dict):
            document['status'] = draw(st.sampled_from(['firing', 'resolved', 'FIRING', 'unknown', '', None, 7]))
            for alert in document.get('alerts', []) if isinstance(document.get('alerts'), list) else []:
                if isinstance(alert, dict):
                    alert['status'] = draw(st.sampled_from(['firing', 'resolved', 'pending', None]))
        elif kind == 'version' and isinstance(document, dict):
            document['version'] = draw(st.sampled_from(['3', '4', 3, '', None, '99']))
        elif kind == 'nest':
            deep = 'x'
            for _ in range(draw(st.integers(min_value=1, max_value=80))):
                deep = {'k': deep}
            parent[path[-1]] = deep
        elif kind == 'duplicate' and isinstance(parent, list):
            parent.extend([parent[path[-1]]] * draw(st.integers(min_value=1, max_value=30)))
    return receiver, document


def counts():
    return tuple(
        model.objects.count() for model in (Event, EventSource, Incident, IncidentEvent, IncidentTimelineEntry)
    )


class ReceiverMutationFuzzTest(ReceiverTestCase):
    def test_mutated_real_payloads_never_get_a_server_error_nor_half_apply(self):
        outcomes = {}

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=not LONG,
            suppress_health_check=list(HealthCheck),
        )
        @given(mutated())
        def run(example):
            receiver, document = example
            try:
                body = json.dumps(document, allow_nan=False)
            except ValueError:
                body = json.dumps(document)  # NaN/Infinity tokens: a receiver must refuse them too
            before = counts()
            response = self.post(receiver, body)
            status = response.status_code
            outcomes[status] = outcomes.get(status, 0) + 1
            self.assertLess(status, 500, f'{receiver}: {body[:2000]}')
            self.assertIn(status, (200, 202, 400, 413), response.content[:500])
            if status >= 400:
                answer = response.json()
                self.assertTrue(answer.get('reason') and answer.get('path') and answer.get('detail'), answer)
                self.assertEqual(counts(), before, f'a refused {receiver} delivery changed rows: {answer}')

        run()
        print(f'\nreceiver mutation fuzz: {sum(outcomes.values())} deliveries, statuses {sorted(outcomes.items())}')
        self.assertGreater(outcomes.get(400, 0), 0)
