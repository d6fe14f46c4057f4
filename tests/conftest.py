"""Set-up shared by every test tier.

The Django tier runs against ``test_netbox``, a clone of the pristine migrated ``netbox_template``
that ``make test`` (``scripts/migrate.sh --test-db``) makes before each run. pytest-django is told
to use that database as it is: no test run creates a database or applies a migration, which would
cost minutes. The engine and property tiers never ask for the database, so they need neither
PostgreSQL nor Redis.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# NetBox's settings refuse to load without a configuration. pytest-django loads them before any
# conftest is imported, so the venv's nba_netbox_root.pth (written by scripts/setup.sh) is what
# sets this for plain `pytest`; the line below covers Django being set up later, by a test.
os.environ.setdefault('NETBOX_ROOT', str(REPO / '.work' / 'netbox'))

# The Redis databases that the configuration written by scripts/setup.sh gives to test runs; the
# dev instance uses 0 and 1, which are never flushed here.
TEST_REDIS_DATABASES = {'tasks': 2, 'caching': 3}


def _flush_test_redis(settings):
    """Empties the test Redis databases, so no cached NetBox configuration or queued job of an earlier
    run leaks into this one (the test database itself is new each run)."""
    import redis

    for role, number in TEST_REDIS_DATABASES.items():
        params = settings.REDIS[role]
        if params.get('DATABASE') != number:
            continue  # a local_settings.py pointed the tests elsewhere: leave that data alone
        redis.Redis(host=params['HOST'], port=params['PORT'], db=number, socket_timeout=5).flushdb()


@pytest.fixture(scope='session')
def django_db_setup(django_db_blocker):
    """Points Django at the existing, already migrated test database instead of creating one."""
    from django.conf import settings
    from django.db import DatabaseError, connections
    from django.db.migrations.executor import MigrationExecutor

    database = settings.DATABASES['default']
    name = database.get('TEST', {}).get('NAME') or f'test_{database["NAME"]}'
    connection = connections['default']
    connection.close()
    database['NAME'] = name
    connection.settings_dict['NAME'] = name
    hint = 'run `make test`, or `scripts/migrate.sh --test-db` after `make setup`'
    with django_db_blocker.unblock():
        try:
            executor = MigrationExecutor(connection)
            unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
        except DatabaseError as exc:
            pytest.exit(f'cannot use the test database {name}: {exc}\n{hint}', returncode=3)
        if unapplied:
            missing = ', '.join(f'{migration.app_label}.{migration.name}' for migration, _ in unapplied[:5])
            pytest.exit(f'the test database {name} lacks {len(unapplied)} migrations ({missing}): {hint}', returncode=3)
        connection.close()
    _flush_test_redis(settings)
