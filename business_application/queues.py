"""NetBox's RQ queues, with one Redis client per process.

``django_rq.get_queue`` builds a new Redis client, with its own connection pool, on every call: each enqueue (a
receiver's decision job, a decision's notification) then opened a new connection to Redis. A worker spent a third
of its time connecting in an alert storm. The queues here are made once per process (a forked child makes its own)
and reconnect by themselves after Redis restarts, as redis-py's clients do.
"""

import os
import threading

__all__ = ('get_queue',)

_lock = threading.Lock()
_queues = {}


def get_queue(name):
    """NetBox's RQ queue ``name`` (``default``, ``high``, ``low``), made once in this process."""
    key = (os.getpid(), name)
    queue = _queues.get(key)
    if queue is None:
        import django_rq

        with _lock:
            queue = _queues.get(key)
            if queue is None:
                queue = _queues[key] = django_rq.get_queue(name)
    return queue
