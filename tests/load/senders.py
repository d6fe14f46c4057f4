"""Concurrent senders that deliver the storm like Alertmanager: retries on 5xx answers and broken
connections, and when each alert was first accepted."""

from __future__ import annotations

import collections
import dataclasses
import json
import threading
import time

import requests

from .generator import RECEIVER_PATH


@dataclasses.dataclass
class Senders:
    url: str
    header: dict
    concurrency: int = 8
    retry_deadline: float = 300.0

    def __post_init__(self):
        self.lock = threading.Lock()
        self.sent_items = 0
        self.deliveries = 0
        self.attempts = 0
        self.retries = 0
        self.accepted_items = 0
        self.rejected = collections.Counter()  # status code -> count of deliveries refused for good
        self.errors = []
        self.accepted_at: dict[tuple[str, str], float] = {}
        self.answers = collections.Counter()

    def send(self, deliveries, during=None):
        """Post every delivery, ``concurrency`` at a time; ``during(progress)`` runs after each one."""
        queue = collections.deque(deliveries)
        total = len(deliveries)
        done = [0]

        def worker():
            session = requests.Session()
            while True:
                with self.lock:
                    if not queue:
                        return
                    delivery = queue.popleft()
                self._post(session, delivery)
                with self.lock:
                    done[0] += 1
                    progress = done[0] / total
                if during is not None:
                    during(progress)

        threads = [threading.Thread(target=worker) for _ in range(self.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _post(self, session, delivery):
        """Post like Alertmanager: retry 5xx and broken connections with backoff until a deadline."""
        body = json.dumps(delivery.payload)
        deadline = time.monotonic() + self.retry_deadline
        pause = 0.2
        with self.lock:
            self.deliveries += 1
            self.sent_items += len(delivery.identities)
        while True:
            with self.lock:
                self.attempts += 1
            try:
                response = session.post(
                    self.url + RECEIVER_PATH,
                    data=body,
                    headers={**self.header, 'Content-Type': 'application/json'},
                    timeout=60,
                )
                code = response.status_code
            except requests.RequestException as error:
                code, response = type(error).__name__, None
            with self.lock:
                self.answers[code] += 1
            if isinstance(code, int) and code < 300:
                now = time.monotonic()
                with self.lock:
                    self.accepted_items += len(delivery.identities)
                    for alert in delivery.payload['alerts']:
                        self.accepted_at.setdefault((alert['fingerprint'], alert['status']), now)
                return
            if isinstance(code, int) and code < 500:
                with self.lock:
                    self.rejected[code] += 1
                    self.errors.append(f'{code}: {response.text[:300]}')
                return
            if time.monotonic() > deadline:
                with self.lock:
                    self.errors.append(f'gave up after {self.retry_deadline} s: last answer {code}')
                return
            with self.lock:
                self.retries += 1
            time.sleep(pause)
            pause = min(pause * 2, 3.0)
