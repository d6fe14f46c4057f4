#!/usr/bin/env bash
# Brings the databases up to date with NetBox's and the plugin's migrations, paying the slow part
# (NetBox core's ~340 migrations: 5.5 minutes on 2 idle cores, 9 to 14 under load) once per
# machine rather than once per checkout or per run.
#
# Databases (all owned by role netbox):
#   netbox_template  pristine: core + plugin migrations, no data; nobody connects to it. Rebuilt
#                    only when the plugin's migration files or the core cache key change.
#   netbox           the dev/demo database; cloned from the template when missing or empty,
#                    otherwise migrated in place so that demo data survives.
#   test_netbox      Django's test database, a clone of the template (0.2 s); --test-db always
#                    makes a fresh one, otherwise it is recreated only when stale.
# Each database carries the migration hash it matches as its COMMENT, so stale ones are spotted
# without starting NetBox.
#
# Core cache: $NBA_CACHE_DIR/netbox-core-<key>.dump is a `pg_dump -Fc` of a database migrated with
# NetBox core only (NB_PLUGINS=''); the key names the NetBox, Python, Django and PostgreSQL versions
# and a hash of every installed migration file outside the plugin. With the dump, a template
# costs a restore (about 1.3 s) plus the plugin's migrations. Without it (a new machine) the core
# is migrated and the dump written; a dump that fails to restore or that turns out incomplete is
# deleted and the slow path taken, so the cache is only ever an optimisation.
#
# Usage: scripts/migrate.sh [--test-db] [--reset]
#   --test-db  always recreate test_netbox from the template (make test does this)
#   --reset    drop the dev database netbox and clone it afresh from the template (loses its data)
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

PLUGIN=business_application
CACHE_SCHEME=v1
fresh_test_db=0
reset_dev_db=0
for arg in "$@"; do
    case $arg in
        --test-db) fresh_test_db=1 ;;
        --reset) reset_dev_db=1 ;;
        *) nba_die "unknown argument: $arg (usage: migrate.sh [--test-db] [--reset])" ;;
    esac
done

[[ -x $NBA_VENV/bin/netbox ]] || nba_die 'NetBox is not installed: run scripts/setup.sh first'
nba_pg_running || nba_die 'PostgreSQL is not running: run scripts/services.sh start first'
nba_redis_running || nba_die 'Redis is not running: run scripts/services.sh start first'
mkdir -p "$NBA_LOG_DIR"
# One migrate.sh at a time per checkout: two would drop each other's databases.
exec 9>"$NBA_WORK/migrate.lock"
flock 9

# The cache key: what decides the contents of a core-only migrated database.
core_cache_key() {
    "$NBA_PY" - "$PLUGIN" <<'PY'
import hashlib
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import django

digest = hashlib.sha256()
site = Path(sysconfig.get_path('purelib'))
for path in sorted(site.glob('*/**/migrations/*.py')):
    relative = path.relative_to(site)
    if relative.parts[0] == sys.argv[1]:
        continue
    digest.update(str(relative).encode() + b'\0' + path.read_bytes())
python = '.'.join(map(str, sys.version_info[:3]))
print(f"nb{metadata.version('netbox')}-py{python}-dj{django.__version__}-{digest.hexdigest()[:12]}")
PY
}

# Hash of the plugin's migration files: a template or clone carrying another hash is stale.
plugin_migrations_hash() {
    (
        cd "$NBA_REPO"
        find "$PLUGIN" -path '*/migrations/*.py' -not -path '*/__pycache__/*' -print0 |
            LC_ALL=C sort -z | xargs -0 -r sha256sum
    ) | sha256sum | cut -c1-16
}

db_comment() {
    nba_psql -c "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '$1'"
}

set_db_comment() {
    nba_psql -c "COMMENT ON DATABASE $1 IS '$2'"
}

drop_db() {
    if nba_db_exists "$1"; then
        nba_psql -c "ALTER DATABASE $1 IS_TEMPLATE false" -c "DROP DATABASE $1 WITH (FORCE)"
    fi
}

# CREATE DATABASE ... TEMPLATE copies the template's files (about 0.2 s for a migrated NetBox).
clone_template() {
    drop_db "$1"
    nba_psql -c "CREATE DATABASE $1 TEMPLATE $NBA_DB_TEMPLATE OWNER netbox STRATEGY FILE_COPY"
    set_db_comment "$1" "$stamp"
}

# Runs the migration driver against database $1 in mode $2 (core, template or dev), logging to
# .work/logs/migrate-$1.log. Exit status: 0 done, 3 the database lacked migrations outside the
# plugin in mode template (an incomplete core dump), 4 models without migrations, else failure.
run_driver() {
    local db=$1 mode=$2 log=$NBA_LOG_DIR/migrate-$1.log rc=0
    local plugins=$PLUGIN
    [[ $mode == core ]] && plugins=''
    NB_DB_NAME=$db NB_PLUGINS=$plugins NBA_MIGRATE_MODE=$mode \
        "$NBA_PY" - >"$log" 2>&1 <<'PY' || rc=$?
import os
import sys
import time

import django

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'netbox.settings')
django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.migrations.executor import MigrationExecutor  # noqa: E402

PLUGIN = 'business_application'
mode = os.environ['NBA_MIGRATE_MODE']


def pending():
    executor = MigrationExecutor(connection)
    return [migration for migration, _ in executor.migration_plan(executor.loader.graph.leaf_nodes())]


plan = pending()
outside = [f'{m.app_label}.{m.name}' for m in plan if m.app_label != PLUGIN]
print(f'{connection.settings_dict["NAME"]}: {len(plan)} migrations to apply, {len(outside)} outside the plugin')
if mode == 'template' and outside:
    print(f'the restored core dump lacks {len(outside)} migrations, e.g. {outside[:5]}')
    sys.exit(3)
started = time.monotonic()
call_command('migrate', interactive=False, verbosity=1)
print(f'migrate took {time.monotonic() - started:.1f} s')
left = pending()
if left:
    sys.exit(f'migrations still unapplied after migrate: {[f"{m.app_label}.{m.name}" for m in left]}')
if mode == 'template' and PLUGIN in settings.PLUGINS:
    try:
        call_command('makemigrations', PLUGIN, check=True, dry_run=True, verbosity=1)
    except SystemExit as exc:
        if exc.code:
            print(f'{PLUGIN} has model changes without a migration: run `netbox makemigrations {PLUGIN}`')
            sys.exit(4)
PY
    if ((rc != 0 && rc != 3)); then
        tail -n 40 "$log" >&2
        nba_log "migrating $db failed (exit $rc); full log: $log"
    fi
    return $rc
}

core_dump_valid() {
    [[ -s $1 ]] && pg_restore -l "$1" >/dev/null 2>&1
}

# Gives netbox_template NetBox core's migrations: from the machine cache when it holds a usable
# dump, else by migrating (and then filling the cache). Sets core_from_cache to 1 or 0. Never
# called in a condition, so that `set -e` stays in force inside.
load_core_into_template() {
    local dump=$1
    drop_db "$NBA_DB_TEMPLATE"
    nba_psql -c "CREATE DATABASE $NBA_DB_TEMPLATE OWNER netbox"
    if core_dump_valid "$dump"; then
        local t0=$SECONDS
        if pg_restore -h "$NBA_PG_DIR" -p "$NBA_PG_PORT" -U netbox -d "$NBA_DB_TEMPLATE" --no-owner \
            --exit-on-error "$dump" 2>"$NBA_LOG_DIR/pg_restore.log"; then
            nba_log "restored NetBox core from $dump in $((SECONDS - t0)) s"
            core_from_cache=1
            return 0
        fi
        nba_log "restoring $dump failed (see $NBA_LOG_DIR/pg_restore.log); deleting it and migrating from scratch"
        rm -f "$dump"
        drop_db "$NBA_DB_TEMPLATE"
        nba_psql -c "CREATE DATABASE $NBA_DB_TEMPLATE OWNER netbox"
    fi
    nba_log 'migrating NetBox core from scratch: 5.5 min on 2 idle cores, more under load; once per machine'
    local t0=$SECONDS
    run_driver "$NBA_DB_TEMPLATE" core
    nba_log "NetBox core migrated in $((SECONDS - t0)) s"
    if mkdir -p "$NBA_CACHE_DIR" 2>/dev/null && [[ -w $NBA_CACHE_DIR ]]; then
        local tmp=$dump.tmp.$$
        if pg_dump -h "$NBA_PG_DIR" -p "$NBA_PG_PORT" -U netbox -Fc -f "$tmp" "$NBA_DB_TEMPLATE" &&
            core_dump_valid "$tmp"; then
            mv -f "$tmp" "$dump"
            nba_log "cached NetBox core migrations in $dump"
        else
            rm -f "$tmp"
            nba_log "warning: could not write $dump; the next new checkout will migrate from scratch again"
        fi
    else
        nba_log "warning: cache dir $NBA_CACHE_DIR is not writable; not caching"
    fi
    core_from_cache=0
}

build_template() {
    local dump=$NBA_CACHE_DIR/netbox-core-$core_key-pg$NBA_PG_MAJOR-$CACHE_SCHEME.dump rc=0
    load_core_into_template "$dump"
    if ((core_from_cache)); then
        run_driver "$NBA_DB_TEMPLATE" template || rc=$?
        if ((rc == 3)); then
            nba_log "the cached dump $dump is incomplete; deleting it and migrating from scratch"
            rm -f "$dump"
            load_core_into_template "$dump"
            run_driver "$NBA_DB_TEMPLATE" template
        elif ((rc != 0)); then
            nba_log "if the cached core dump is at fault rather than the plugin, delete $dump and rerun"
            exit "$rc"
        fi
    else
        run_driver "$NBA_DB_TEMPLATE" template
    fi
    # No connections to the template from now on: CREATE DATABASE ... TEMPLATE needs none.
    nba_psql -c "ALTER DATABASE $NBA_DB_TEMPLATE WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"
    set_db_comment "$NBA_DB_TEMPLATE" "$stamp"
}

# True when database $1 has no tables (created by services.sh and never migrated).
db_is_empty() {
    [[ $(psql -h "$NBA_PG_DIR" -p "$NBA_PG_PORT" -U netbox -d "$1" -qAtX -c \
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'") == 0 ]]
}

main() {
    local t0=$SECONDS
    core_key=$(core_cache_key)
    stamp="nba-migrations $core_key $(plugin_migrations_hash)"
    local template_rebuilt=0
    if [[ $(db_comment "$NBA_DB_TEMPLATE") != "$stamp" ]]; then
        nba_log "building $NBA_DB_TEMPLATE (migrations changed or first run)"
        build_template
        template_rebuilt=1
    fi

    if ((reset_dev_db)) && { nba_runserver_running || nba_rqworker_running; }; then
        # They hold the old database's state (its scheduled jobs, the worker's map): stopped, not left stale.
        nba_runserver_stop
        nba_rqworker_stop
        nba_log 'stopped NetBox and its worker, which ran on the old database: make start (or make demo) starts them again'
    fi
    if ((reset_dev_db)) || ! nba_db_exists "$NBA_DB" || db_is_empty "$NBA_DB"; then
        nba_log "cloning $NBA_DB from $NBA_DB_TEMPLATE"
        clone_template "$NBA_DB"
    elif [[ $(db_comment "$NBA_DB") != "$stamp" ]]; then
        nba_log "migrating $NBA_DB in place (it keeps its data)"
        run_driver "$NBA_DB" dev ||
            nba_die "could not migrate $NBA_DB; scripts/migrate.sh --reset recreates it empty"
        set_db_comment "$NBA_DB" "$stamp"
    fi

    if ((fresh_test_db || template_rebuilt)) || [[ $(db_comment "$NBA_DB_TEST") != "$stamp" ]]; then
        clone_template "$NBA_DB_TEST"
    fi
    nba_log "databases up to date in $((SECONDS - t0)) s"
}

main
