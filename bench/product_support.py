"""Helpers for bench/test_product_mapload.py: the bench database, growing the map, and measuring RSS.

The bench runs against ``test_netbox``, which ``make bench`` clones afresh from the migrated
template (``scripts/migrate.sh --test-db``), the same way tests/conftest.py points pytest-django at
it. Unlike the tests, the bench commits what it writes: a worker in another process (the RSS
measurement) must see the map. The map grows between sizes (10k, then 90k more, ...), so each size
measures one map of that many objects.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIGURES = REPO / '.work' / 'bench-product-snapshot.json'

_written = {'nodes': 0, 'maps': 0}


def use_test_database():
    """Point Django at the migrated test database (as tests/conftest.py does); returns its name."""
    from django.conf import settings
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    database = settings.DATABASES['default']
    name = database.get('TEST', {}).get('NAME') or f'test_{database["NAME"]}'
    connection = connections['default']
    connection.close()
    database['NAME'] = name
    connection.settings_dict['NAME'] = name
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise RuntimeError(f'{name} is not migrated: run `make bench` (it runs scripts/migrate.sh --test-db)')
    return name


def grow_map_to(objects):
    """Write objects until the bench map holds about ``objects`` nodes; returns (nodes, seconds)."""
    from django.db import transaction

    from tests.integration.bulkmap import write_map

    missing = objects - _written['nodes']
    started = time.perf_counter()
    if missing > 0:
        with transaction.atomic():
            _written['maps'] += 1
            _written['nodes'] += write_map(missing, prefix=f'bench{_written["maps"]}', seed=_written['maps'])['nodes']
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute('ANALYZE')
    return _written['nodes'], time.perf_counter() - started


_RSS_SCRIPT = r"""
import gc, json, os, sys, time
import django
django.setup()
from django.db import connections
connections['default'].settings_dict['NAME'] = sys.argv[1]

def status(field):
    with open('/proc/self/status') as handle:
        for line in handle:
            if line.startswith(field + ':'):
                return int(line.split()[1]) * 1024

from business_application.services.graph_loader import current_map
gc.collect()
before = status('VmRSS')
started = time.perf_counter()
service_map = current_map()
service_map.component(0)
seconds = time.perf_counter() - started
gc.collect()
print(json.dumps({'rss_before': before, 'rss_after': status('VmRSS'), 'rss_peak': status('VmHWM'),
                  'nodes': len(service_map), 'edges': service_map.graph.edge_count, 'seconds': seconds}))
"""


def snapshot_rss(database):
    """Load the snapshot in a fresh worker-like process; returns its memory figures (bytes)."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE='netbox.settings')
    result = subprocess.run(
        [sys.executable, '-c', _RSS_SCRIPT, database], capture_output=True, text=True, env=env, check=True, cwd=REPO
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def record(size, **figures):
    """Keep the figures of one size for bench/RESULTS.md ("Whole product")."""
    data = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    data.setdefault(str(size), {}).update(figures)
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(data, indent=2, sort_keys=True))
