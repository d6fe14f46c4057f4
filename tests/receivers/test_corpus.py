"""Regression corpus: odd real payloads (tests/receivers/corpus/*.json) and what each must get.

Each file holds ``provenance`` (where the payload comes from and what is odd about it), ``receiver``,
``expect`` (``status``, for a refusal the ``path`` the answer must name, for a delivery optionally the number of
events ``created``), and ``body`` (JSON) or
``raw_body`` (text that is not valid JSON). ``expand`` makes a huge value at test time instead of storing
it: ``{"at": [keys...], "text": "...", "times": N}``. A refusal must leave every table as it was; an
accepted delivery must store one event per alert it was answered for.
"""

import json
from pathlib import Path

from business_application.models import Event, EventSource, Incident, IncidentEvent, IncidentTimelineEntry

from .base import ReceiverTestCase

CORPUS = Path(__file__).resolve().parent / 'corpus'


def load(path):
    entry = json.loads(path.read_text(encoding='utf-8'))
    if 'raw_body' in entry:
        return entry, entry['raw_body']
    body = entry['body']
    if 'expand' in entry:
        *parents, last = entry['expand']['at']
        node = body
        for step in parents:
            node = node[step]
        node[last] = entry['expand']['text'] * entry['expand']['times']
    return entry, json.dumps(body, ensure_ascii=False)


def counts():
    return tuple(
        model.objects.count() for model in (Event, EventSource, Incident, IncidentEvent, IncidentTimelineEntry)
    )


class CorpusTest(ReceiverTestCase):
    def test_the_corpus_is_there(self):
        files = sorted(CORPUS.glob('*.json'))
        self.assertGreaterEqual(len(files), 15)
        for path in files:
            entry = json.loads(path.read_text(encoding='utf-8'))
            with self.subTest(file=path.name):
                self.assertTrue(entry.get('provenance'))
                self.assertIn(entry['receiver'], ('alertmanager', 'grafana', 'pagerduty', 'generic'))
                self.assertIn('status', entry['expect'])

    def test_every_corpus_payload_gets_its_expected_answer(self):
        for path in sorted(CORPUS.glob('*.json')):
            entry, body = load(path)
            with self.subTest(file=path.name):
                before = counts()
                events_before = Event.objects.count()
                response = self.post(entry['receiver'], body.encode('utf-8'))
                expect = entry['expect']
                self.assertEqual(response.status_code, expect['status'], response.content[:500])
                answer = response.json()
                if response.status_code >= 400:
                    self.assertEqual(counts(), before, 'a refused payload changed rows')
                    self.assertTrue(answer['detail'] and answer['reason'], answer)
                    if 'path' in expect:
                        self.assertEqual(answer['path'], expect['path'], answer)
                else:
                    self.assertEqual(Event.objects.count() - events_before, answer['created'], answer)
                    self.assertEqual(len(answer['events']), answer['received'])
                    if 'created' in expect:  # distinct alerts stay distinct events, however odd their ids
                        self.assertEqual(answer['created'], expect['created'], answer)
