#!/usr/bin/env bash
# Installs everything the plugin needs to run and be tested, idempotently and quickly when nothing
# changed: Debian packages (only when one is missing), a Python 3.12 venv in .work/venv with
# NetBox and the test tools, the plugin itself with its compiled Rust core (release build), and
# NetBox's configuration in .work/netbox/conf/. Starts no service.
#
# Usage: scripts/setup.sh [--build]    --build rebuilds the Rust extension even if no source changed
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

force_build=0
for arg in "$@"; do
    case $arg in
        --build) force_build=1 ;;
        *) nba_die "unknown argument: $arg (usage: setup.sh [--build])" ;;
    esac
done

# NetBox pins psycopg[c], which builds against libpq-dev with gcc; chromium and its driver run the browser tests.
APT_PACKAGES=(postgresql redis-server libpq-dev gcc chromium chromium-driver curl)
# The venv's Python tools. netbox is pinned: the migration cache and the plugin's min/max versions
# are tied to it.
PIP_PACKAGES=(
    "netbox==$NBA_NETBOX_VERSION"
    pytest pytest-django pytest-benchmark hypothesis pyyaml requests selenium 'schemathesis==4.32.5'
    'maturin>=1.7,<2' ruff networkx
)

install_os_packages() {
    local pkg
    local -a missing=()
    for pkg in "${APT_PACKAGES[@]}"; do
        if [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) != 'install ok installed' ]]; then
            missing+=("$pkg")
        fi
    done
    if [[ ! -x $NBA_PGBIN/initdb ]]; then
        missing+=("postgresql-$NBA_PG_MAJOR")
    fi
    ((${#missing[@]} == 0)) && return 0
    command -v apt-get >/dev/null || nba_die "missing packages (${missing[*]}) and no apt-get to install them"
    nba_log "installing Debian packages: ${missing[*]}"
    # An upgrade of the PostgreSQL packages under a running server breaks it (plpgsql.so symbol
    # errors), so a server of ours that is up is restarted afterwards.
    local pg_was_running=0
    nba_pg_running && pg_was_running=1
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    [[ -x $NBA_PGBIN/initdb ]] || nba_die "PostgreSQL $NBA_PG_MAJOR not found in $NBA_PGBIN after apt-get install"
    if ((pg_was_running)); then
        nba_log 'restarting PostgreSQL after the package upgrade'
        "$NBA_REPO/scripts/services.sh" restart
    fi
}

create_venv() {
    if [[ -x $NBA_PY ]] && "$NBA_PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' 2>/dev/null; then
        return 0
    fi
    local python
    python=$(nba_find_python312) || nba_die "no Python 3.12 found (tried \$NBA_PYTHON, pyenv 3.12.x, python3.12 on PATH)"
    nba_log "creating the venv with $python"
    rm -rf "$NBA_VENV"
    "$python" -m venv "$NBA_VENV"
    "$NBA_PY" -m pip install -q --disable-pip-version-check -U pip
}

# Hash of what decides an install step; the step is skipped while its stamp file holds the same.
stamp_matches() { [[ -f $1 && $(<"$1") == "$2" ]]; }

install_python_packages() {
    local want stamp=$NBA_VENV/.nba-packages
    want=$(printf '%s\n' "${PIP_PACKAGES[@]}" | sha256sum | cut -d' ' -f1)
    if stamp_matches "$stamp" "$want" && [[ -x $NBA_VENV/bin/netbox ]]; then
        return 0
    fi
    nba_log "pip install ${PIP_PACKAGES[*]}"
    "$NBA_PY" -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}"
    echo "$want" >"$stamp"
}

# NetBox reads its configuration from $NETBOX_ROOT/conf/configuration.py and NETBOX_ROOT defaults
# to /opt/netbox. A .pth file gives every process of this venv (netbox, pytest, python) this
# checkout's NETBOX_ROOT unless the environment already sets one.
write_netbox_root_pth() {
    local site pth
    site=$("$NBA_PY" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
    pth=$site/nba_netbox_root.pth
    local want="import os; os.environ.setdefault('NETBOX_ROOT', '$NETBOX_ROOT')"
    stamp_matches "$pth" "$want" || echo "$want" >"$pth"
}

rust_sources_hash() {
    (
        cd "$NBA_REPO"
        {
            sha256sum pyproject.toml
            find core_rs -path core_rs/target -prune -o -type f -print | LC_ALL=C sort | xargs -r sha256sum
        } | sha256sum | cut -d' ' -f1
    )
}

# The plugin is installed editable (Python sources used in place) with the maturin backend, which
# builds the Rust extension in release mode and puts business_application/_core*.so beside the
# Python sources. No build isolation: maturin is already in the venv and pip stays offline.
install_plugin() {
    local want stamp=$NBA_VENV/.nba-plugin
    [[ -f $NBA_REPO/core_rs/pybind/Cargo.toml ]] ||
        nba_die 'core_rs/pybind/Cargo.toml is missing: the Rust extension cannot be built'
    # The stamp also records the built module's size and mtime: a module rebuilt some other way
    # (a debug `maturin develop`, say) is replaced by a release build.
    want="$(rust_sources_hash) $(built_module_stat)"
    if ((!force_build)) && stamp_matches "$stamp" "$want" &&
        (cd / && "$NBA_PY" -c 'import business_application._core' 2>/dev/null); then
        return 0
    fi
    nba_log 'building the Rust extension (release) and installing the plugin editable'
    rm -f "$stamp"
    (cd "$NBA_REPO" && "$NBA_PY" -m pip install -q --disable-pip-version-check --no-build-isolation -e .)
    (cd / && "$NBA_PY" -c 'import business_application._core') ||
        nba_die 'the plugin installed but business_application._core does not import from the venv'
    echo "$(rust_sources_hash) $(built_module_stat)" >"$stamp"
}

built_module_stat() {
    stat -c '%s %Y' "$NBA_REPO"/business_application/_core*.so 2>/dev/null || echo none
}

# A value generated once per checkout and kept in .work/netbox/conf/ (mode 600), so sessions and
# existing API tokens survive re-running setup.
kept_secret() {
    local file=$NETBOX_ROOT/conf/$1
    if [[ ! -s $file ]]; then
        (umask 077 && "$NBA_PY" -c 'import secrets; print(secrets.token_urlsafe(48))' >"$file")
    fi
    cat "$file"
}

write_configuration() {
    mkdir -p "$NETBOX_ROOT/conf" "$NBA_LOG_DIR"
    local secret_key pepper conf=$NETBOX_ROOT/conf/configuration.py
    secret_key=$(kept_secret secret_key)
    pepper=$(kept_secret api_token_pepper)
    cat >"$conf.tmp" <<CONF
# NetBox configuration for netbox-business-application development and tests.
# Written by scripts/setup.sh on every run: edit local_settings.py beside it instead.
import importlib.util
import os
import sys
from pathlib import Path

ALLOWED_HOSTS = ['127.0.0.1', 'localhost', 'testserver']

# NB_DB_NAME lets the scripts migrate the template database; Django's test database is test_netbox.
DATABASES = {
    'default': {
        'NAME': os.environ.get('NB_DB_NAME', '$NBA_DB'),
        'USER': 'netbox',
        'PASSWORD': 'netbox',
        'HOST': '127.0.0.1',
        'PORT': os.environ.get('NBA_PG_PORT', '$NBA_PG_PORT'),
        # A process keeps its connection between requests, and checks it before reuse so that a
        # restarted PostgreSQL costs no failed request. runserver opens a thread (and so a
        # connection) per request, which a lifetime would leave open until PostgreSQL runs out:
        # nba_runserver_start sets NB_CONN_MAX_AGE=0.
        'CONN_MAX_AGE': int(os.environ.get('NB_CONN_MAX_AGE', '300')),
        'CONN_HEALTH_CHECKS': True,
        'TEST': {'NAME': '$NBA_DB_TEST'},
    },
}

_REDIS = {
    'HOST': '127.0.0.1',
    'PORT': int(os.environ.get('NBA_REDIS_PORT', '$NBA_REDIS_PORT')),
    'PASSWORD': '',
    'SSL': False,
}
# Test runs get Redis databases of their own, so a job a test enqueues never reaches a worker of
# the dev instance and the two never share NetBox's cached configuration.
# NBA_TESTING=1 puts a process a test starts (an RQ worker, say) in the same test configuration.
_TESTING = 'pytest' in sys.modules or sys.argv[1:2] == ['test'] or os.environ.get('NBA_TESTING') == '1'
REDIS = {
    'tasks': {**_REDIS, 'DATABASE': 2 if _TESTING else 0},
    'caching': {**_REDIS, 'DATABASE': 3 if _TESTING else 1},
}

SECRET_KEY = '$secret_key'
API_TOKEN_PEPPERS = {1: '$pepper'}

# NB_PLUGINS='' runs NetBox without the plugin (the core-only migration the cache holds).
PLUGINS = [name for name in os.environ.get('NB_PLUGINS', 'business_application').split(',') if name]
PLUGINS_CONFIG = {name: {} for name in PLUGINS}

DEVELOPER = True  # makemigrations refuses to run otherwise
CENSUS_REPORTING_ENABLED = False
# Under test, enqueue jobs at once as NetBox's own test configuration does (TestCase transactions
# never commit). Elsewhere keep django-rq's default, enqueue on commit, so a worker never picks up
# a job before the rows it refers to are visible.
RQ = {'COMMIT_MODE': 'auto'} if _TESTING else {}
DEFAULT_PERMISSIONS = {}

LOGGING = {
    'version': 1,
    'disable_existing_loggers': False,
    'formatters': {
        'plain': {'format': '%(asctime)s %(levelname)s %(name)s %(process)d %(message)s'},
    },
    'handlers': {
        'business_application_file': {
            'class': 'logging.handlers.WatchedFileHandler',
            # Test runs log beside the dev instance's log, not into it.
            'filename': '$NBA_LOG_DIR/business_application-test.log' if _TESTING
            else '$NBA_LOG_DIR/business_application.log',
            'formatter': 'plain',
            'level': 'INFO',
        },
    },
    'loggers': {
        'business_application': {
            'handlers': ['business_application_file'],
            'level': 'INFO',
            'propagate': True,
        },
    },
}

# Tests and developers add or override settings in local_settings.py beside this file; its
# upper-case names replace the ones above.
_LOCAL_SETTINGS = Path('$NETBOX_ROOT/conf/local_settings.py')
if _LOCAL_SETTINGS.is_file():
    _spec = importlib.util.spec_from_file_location('nba_local_settings', _LOCAL_SETTINGS)
    _local = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_local)
    globals().update({name: value for name, value in vars(_local).items() if name.isupper()})
CONF
    if cmp -s "$conf.tmp" "$conf"; then
        rm -f "$conf.tmp"
    else
        mv "$conf.tmp" "$conf"
    fi
}

main() {
    local start=$SECONDS
    mkdir -p "$NBA_WORK" "$NBA_LOG_DIR"
    install_os_packages
    create_venv
    install_python_packages
    write_netbox_root_pth
    write_configuration
    install_plugin
    nba_log "ready in $((SECONDS - start)) s: venv $NBA_VENV, NETBOX_ROOT $NETBOX_ROOT"
}

main
