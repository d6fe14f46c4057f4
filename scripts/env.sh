# shellcheck shell=bash disable=SC2034
# (SC2034: the variables below are read by the scripts that source this file.)
# Shared settings and helpers for the development scripts; source it, do not run it.
#
# Everything the scripts create lives in the project-local state dir .work/ (gitignored), except
# the machine-wide migration cache ($NBA_CACHE_DIR), which only ever saves time. Every setting
# below can be overridden from the environment, so a second checkout can run beside this one on
# other ports. Safe to source under `set -euo pipefail`.

NBA_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NBA_WORK=$NBA_REPO/.work
NBA_VENV=$NBA_WORK/venv
NBA_REDIS_DIR=$NBA_WORK/redis
NBA_LOG_DIR=$NBA_WORK/logs
NBA_RUNSERVER_PID=$NBA_WORK/runserver.pid
NETBOX_ROOT=$NBA_WORK/netbox
export NETBOX_ROOT

# The PostgreSQL cluster and its unix socket live in .work/pg. When the postgres user cannot reach
# the checkout (a clone under /root, say), services.sh puts them in a directory it can reach and
# leaves .work/pg as a symlink to it; the real path is what PostgreSQL and psql are given.
NBA_PG_DIR=$NBA_WORK/pg
if [[ -L $NBA_PG_DIR ]]; then
    NBA_PG_DIR=$(readlink -f "$NBA_PG_DIR")
fi

NBA_NETBOX_VERSION=${NBA_NETBOX_VERSION:-4.7.3}
NBA_PG_MAJOR=15
NBA_PGBIN=/usr/lib/postgresql/$NBA_PG_MAJOR/bin
# Ports not given in the environment are those this checkout's services last started on (.work/ports, written
# by services.sh start), else the defaults: a shell that forgot the exports of a checkout running on other ports
# still reaches that checkout's own servers, never another checkout's on the default ports.
if [[ -f $NBA_WORK/ports ]]; then
    # A last line without a newline is read too; CR of CRLF endings and an `export ` prefix are ignored. A port
    # that is not a number stops here (the default in its place could be another checkout's server).
    while IFS='=' read -r _name _value || [[ -n $_name ]]; do
        _name=${_name#export }
        _value=${_value%$'\r'}
        case $_name in
        NBA_PG_PORT | NBA_REDIS_PORT | NBA_WEB_PORT)
            if [[ ! $_value =~ ^[0-9]{1,5}$ ]]; then
                printf '[env.sh] error: %s in %s is not a port: %q (export it, or fix or delete the file)\n' \
                    "$_name" "$NBA_WORK/ports" "$_value" >&2
                unset _name _value
                return 1
            elif [[ -z ${!_name:-} ]]; then
                printf -v "$_name" '%s' "$_value"
            fi
            ;;
        esac
    done <"$NBA_WORK/ports"
    unset _name _value
fi
NBA_PG_PORT=${NBA_PG_PORT:-55432}
NBA_REDIS_PORT=${NBA_REDIS_PORT:-56379}
NBA_WEB_PORT=${NBA_WEB_PORT:-8000}
NBA_CACHE_DIR=${NBA_CACHE_DIR:-/var/cache/netbox-business-application}
export NBA_PG_PORT NBA_REDIS_PORT NBA_WEB_PORT NBA_CACHE_DIR

# Database names: `netbox` is the dev/demo database, `netbox_template` a pristine migrated copy
# that nobody connects to, and `test_netbox` (Django's default test name for `netbox`) is cloned
# from the template for every `make test`.
NBA_DB=netbox
NBA_DB_TEMPLATE=netbox_template
NBA_DB_TEST=test_netbox

# The venv's interpreter and console scripts; PyO3 builds against the same interpreter.
NBA_PY=$NBA_VENV/bin/python
export PYO3_PYTHON=$NBA_PY

nba_log() {
    printf '[%s] %s\n' "$(basename "$0")" "$*" >&2
}

nba_die() {
    printf '[%s] error: %s\n' "$(basename "$0")" "$*" >&2
    exit 1
}

# Prints the path of a Python 3.12 interpreter: $NBA_PYTHON, pyenv's 3.12.1, any pyenv 3.12, then
# python3.12 on PATH. The default python3 (3.11) cannot run NetBox 4.7.
nba_find_python312() {
    local candidate
    local -a candidates=()
    [[ -n ${NBA_PYTHON:-} ]] && candidates+=("$NBA_PYTHON")
    if command -v pyenv >/dev/null 2>&1; then
        candidate=$(PYENV_VERSION=3.12.1 pyenv which python3.12 2>/dev/null || true)
        [[ -n $candidate ]] && candidates+=("$candidate")
        candidate=$(pyenv root 2>/dev/null || true)
        if [[ -n $candidate ]]; then
            for candidate in "$candidate"/versions/3.12*/bin/python3.12; do
                [[ -x $candidate ]] && candidates+=("$candidate")
            done
        fi
    fi
    candidate=$(command -v python3.12 2>/dev/null || true)
    [[ -n $candidate ]] && candidates+=("$candidate")
    for candidate in "${candidates[@]}"; do
        if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

# psql as the cluster's superuser over the unix socket; extra arguments are passed on.
nba_psql() {
    psql -h "$NBA_PG_DIR" -p "$NBA_PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qAtX "$@"
}

nba_pg_running() {
    [[ -f $NBA_PG_DIR/data/PG_VERSION ]] &&
        (cd / && runuser -u postgres -- "$NBA_PGBIN/pg_ctl" -D "$NBA_PG_DIR/data" status >/dev/null 2>&1)
}

nba_redis_running() {
    local pid
    [[ -f $NBA_REDIS_DIR/redis.pid ]] || return 1
    pid=$(<"$NBA_REDIS_DIR/redis.pid")
    [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == redis-server* ]]
}

nba_db_exists() {
    [[ $(nba_psql -c "SELECT 1 FROM pg_database WHERE datname = '$1'") == 1 ]]
}

# Runs a `netbox` management command from the venv against this checkout's NetBox.
# Remembers the ports the services start on, for shells that do not export them (see the ports above).
nba_save_ports() {
    mkdir -p "$NBA_WORK"
    printf 'NBA_PG_PORT=%s\nNBA_REDIS_PORT=%s\nNBA_WEB_PORT=%s\n' "$NBA_PG_PORT" "$NBA_REDIS_PORT" "$NBA_WEB_PORT" \
        >"$NBA_WORK/ports"
}

nba_netbox() {
    "$NBA_VENV/bin/netbox" "$@"
}

# Starts `netbox runserver` on 127.0.0.1:$NBA_WEB_PORT in the background (pid in
# $NBA_RUNSERVER_PID, log in .work/logs/runserver.log) and waits until /login/ answers.
nba_runserver_start() {
    if nba_runserver_running; then
        return 0
    fi
    mkdir -p "$NBA_LOG_DIR"
    # runserver serves each request in a new thread with its own connection: keep none open after
    # it (NB_CONN_MAX_AGE=0), or a burst of requests exhausts PostgreSQL's connections.
    NB_CONN_MAX_AGE=0 nohup "$NBA_VENV/bin/netbox" runserver "127.0.0.1:$NBA_WEB_PORT" --noreload --insecure \
        >"$NBA_LOG_DIR/runserver.log" 2>&1 &
    echo $! >"$NBA_RUNSERVER_PID"
    local _
    for _ in $(seq 1 240); do
        if curl -sf -o /dev/null "http://127.0.0.1:$NBA_WEB_PORT/login/"; then
            return 0
        fi
        nba_runserver_running || break
        sleep 0.5
    done
    tail -n 30 "$NBA_LOG_DIR/runserver.log" >&2 || true
    nba_die "runserver did not answer on 127.0.0.1:$NBA_WEB_PORT (log: $NBA_LOG_DIR/runserver.log)"
}

# Starts one `netbox rqworker` for NetBox's queues in the background (pid in .work/rqworker.pid, log
# in .work/logs/rqworker.log): background jobs, notifications and asynchronous decisions need it.
# Waits until it listens on its queues (it loads the map first), so that what comes next is decided.
nba_rqworker_start() {
    nba_rqworker_running && return 0
    mkdir -p "$NBA_LOG_DIR"
    nohup "$NBA_VENV/bin/netbox" rqworker high default low --worker-class business_application.workers.SnapshotWorker \
        >"$NBA_LOG_DIR/rqworker.log" 2>&1 &
    echo $! >"$NBA_WORK/rqworker.pid"
    local _
    for _ in $(seq 1 240); do
        grep -q '\*\*\* Listening on' "$NBA_LOG_DIR/rqworker.log" 2>/dev/null && return 0
        nba_rqworker_running || break
        sleep 0.5
    done
    tail -n 30 "$NBA_LOG_DIR/rqworker.log" >&2 || true
    nba_die "the RQ worker is not listening on its queues (log: $NBA_LOG_DIR/rqworker.log)"
}

nba_rqworker_running() {
    local pid
    [[ -f $NBA_WORK/rqworker.pid ]] || return 1
    pid=$(<"$NBA_WORK/rqworker.pid")
    [[ $pid =~ ^[0-9]+$ ]] && grep -qa rqworker "/proc/$pid/cmdline" 2>/dev/null
}

# A warm shutdown: the worker finishes the job it runs (a few seconds at most), then exits; this waits for it
# (up to 30 s), so that PostgreSQL and Redis stop after it.
nba_rqworker_stop() {
    if nba_rqworker_running; then
        nba_stop_pid "$(<"$NBA_WORK/rqworker.pid")" 300
    fi
    rm -f "$NBA_WORK/rqworker.pid"
}

# SIGTERM to a process, then wait until it is gone, for at most $2 tenths of a second.
nba_stop_pid() {
    local _
    kill "$1" 2>/dev/null || true
    for _ in $(seq 1 "$2"); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
}

nba_runserver_running() {
    local pid
    [[ -f $NBA_RUNSERVER_PID ]] || return 1
    pid=$(<"$NBA_RUNSERVER_PID")
    [[ $pid =~ ^[0-9]+$ ]] && grep -qa runserver "/proc/$pid/cmdline" 2>/dev/null
}

nba_runserver_stop() {
    if nba_runserver_running; then
        nba_stop_pid "$(<"$NBA_RUNSERVER_PID")" 50
    fi
    rm -f "$NBA_RUNSERVER_PID"
}
