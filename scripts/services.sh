#!/usr/bin/env bash
# Runs this checkout's private PostgreSQL 15 cluster and Redis server, both on 127.0.0.1 only.
#
# PostgreSQL: data in .work/pg/data, unix socket in .work/pg, trust authentication, fsync off (the
# data is disposable), role `netbox` with CREATEDB owning database `netbox`. Redis: daemonized, no
# persistence, pid file in .work/redis. Every command is idempotent; stale pid files left by a
# killed server or a restarted machine are removed before starting.
#
# Usage: scripts/services.sh start|stop|restart|status    (stop and restart also stop runserver)
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

# PostgreSQL's tools run as the postgres user from /, since the checkout may be closed to it.
pg_ctl() {
    (cd / && runuser -u postgres -- "$NBA_PGBIN/pg_ctl" -D "$NBA_PG_DIR/data" "$@")
}

# True when the postgres user can create files in $1 (it needs every parent to be searchable).
postgres_can_write() {
    (cd / && runuser -u postgres -- test -w "$1" -a -x "$1") 2>/dev/null
}

# Chooses where the cluster lives. The postgres user must reach it; a checkout under a private
# directory (/root, say) gets a directory under /var/tmp instead, keyed by the checkout's path,
# with .work/pg left as a symlink to it so that env.sh finds it again.
prepare_pg_dir() {
    if [[ -d $NBA_PG_DIR ]] && postgres_can_write "$NBA_PG_DIR"; then
        return 0
    fi
    mkdir -p "$NBA_PG_DIR"
    chown postgres:postgres "$NBA_PG_DIR"
    chmod 700 "$NBA_PG_DIR"
    if postgres_can_write "$NBA_PG_DIR"; then
        return 0
    fi
    local key fallback
    key=$(printf '%s' "$NBA_REPO" | sha256sum | cut -c1-12)
    fallback=/var/tmp/netbox-business-application/pg-$key
    nba_log "the postgres user cannot reach $NBA_PG_DIR; using $fallback"
    mkdir -p "$fallback"
    chmod 755 /var/tmp/netbox-business-application
    chown postgres:postgres "$fallback"
    chmod 700 "$fallback"
    rm -rf "$NBA_WORK/pg"
    ln -s "$fallback" "$NBA_WORK/pg"
    NBA_PG_DIR=$fallback
}

# A postmaster.pid whose process is gone (or is no longer a postgres of this cluster) makes the
# next start fail or wait; remove it together with the socket lock files.
clear_stale_pg_pid() {
    local pidfile=$NBA_PG_DIR/data/postmaster.pid pid
    [[ -f $pidfile ]] || return 0
    pid=$(head -n1 "$pidfile")
    if [[ $pid =~ ^[0-9]+$ ]] && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == postgres* ]] &&
        [[ $(readlink -f "/proc/$pid/cwd" 2>/dev/null) == "$(readlink -f "$NBA_PG_DIR/data")" ]]; then
        return 0
    fi
    nba_log "removing the stale PostgreSQL pid file (pid $pid is gone)"
    rm -f "$pidfile" "$NBA_PG_DIR"/.s.PGSQL.*
}

start_pg() {
    prepare_pg_dir
    if [[ ! -f $NBA_PG_DIR/data/PG_VERSION ]]; then
        nba_log "initdb in $NBA_PG_DIR/data"
        (cd / && runuser -u postgres -- "$NBA_PGBIN/initdb" -D "$NBA_PG_DIR/data" -U postgres --auth=trust \
            -E UTF8 --locale=C.UTF-8) >"$NBA_LOG_DIR/initdb.log" 2>&1 ||
            nba_die "initdb failed, see $NBA_LOG_DIR/initdb.log"
    fi
    clear_stale_pg_pid
    if nba_pg_running; then
        return 0
    fi
    # The server's log stays in the cluster directory, which only the postgres user can write to.
    if ! pg_ctl -l "$NBA_PG_DIR/server.log" -w -t 60 -o "-c listen_addresses=127.0.0.1 -p $NBA_PG_PORT \
        -k $NBA_PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
        -c max_connections=100" start >/dev/null; then
        tail -n 20 "$NBA_PG_DIR/server.log" >&2 || true
        nba_die "PostgreSQL did not start on 127.0.0.1:$NBA_PG_PORT (log: $NBA_PG_DIR/server.log)"
    fi
    if [[ $(nba_psql -c "SELECT 1 FROM pg_roles WHERE rolname = 'netbox'") != 1 ]]; then
        nba_psql -c "CREATE ROLE netbox LOGIN PASSWORD 'netbox' CREATEDB"
    fi
    if ! nba_db_exists "$NBA_DB"; then
        nba_psql -c "CREATE DATABASE $NBA_DB OWNER netbox"
    fi
}

stop_pg() {
    [[ -f $NBA_PG_DIR/data/PG_VERSION ]] || return 0
    clear_stale_pg_pid
    if nba_pg_running; then
        pg_ctl -w -t 60 -m fast stop >/dev/null
    fi
}

clear_stale_redis_pid() {
    if [[ -f $NBA_REDIS_DIR/redis.pid ]] && ! nba_redis_running; then
        rm -f "$NBA_REDIS_DIR/redis.pid"
    fi
}

start_redis() {
    mkdir -p "$NBA_REDIS_DIR"
    clear_stale_redis_pid
    if nba_redis_running; then
        return 0
    fi
    redis-server --bind 127.0.0.1 --port "$NBA_REDIS_PORT" --daemonize yes --dir "$NBA_REDIS_DIR" \
        --pidfile "$NBA_REDIS_DIR/redis.pid" --logfile "$NBA_REDIS_DIR/redis.log" \
        --save '' --appendonly no
    local _
    for _ in $(seq 1 50); do
        if nba_redis_running && redis-cli -h 127.0.0.1 -p "$NBA_REDIS_PORT" ping >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$NBA_REDIS_DIR/redis.log" >&2 || true
    nba_die "Redis did not start on 127.0.0.1:$NBA_REDIS_PORT (log: $NBA_REDIS_DIR/redis.log)"
}

stop_redis() {
    clear_stale_redis_pid
    nba_redis_running || return 0
    local pid _
    pid=$(<"$NBA_REDIS_DIR/redis.pid")
    kill "$pid"
    for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    rm -f "$NBA_REDIS_DIR/redis.pid"
}

status() {
    local rc=0
    if nba_pg_running; then
        echo "postgresql: running on 127.0.0.1:$NBA_PG_PORT, socket dir $NBA_PG_DIR"
    else
        echo 'postgresql: stopped'
        rc=3
    fi
    if nba_redis_running; then
        echo "redis: running on 127.0.0.1:$NBA_REDIS_PORT (pid $(<"$NBA_REDIS_DIR/redis.pid"))"
    else
        echo 'redis: stopped'
        rc=3
    fi
    if nba_runserver_running; then
        echo "runserver: running on http://127.0.0.1:$NBA_WEB_PORT/ (pid $(<"$NBA_RUNSERVER_PID"))"
    else
        echo 'runserver: stopped'
    fi
    if nba_rqworker_running; then
        local pid class
        pid=$(<"$NBA_WORK/rqworker.pid")
        # The --worker-class it was started with (the README recommends SnapshotWorker), else netbox rqworker's own.
        class=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | sed -n '/^--worker-class$/{n;p;q}')
        echo "rqworker: running (pid $pid, worker class ${class:-netbox rqworker default}, log $NBA_LOG_DIR/rqworker.log)"
    else
        echo 'rqworker: stopped'
    fi
    return $rc
}

command -v redis-server >/dev/null && [[ -x $NBA_PGBIN/pg_ctl ]] ||
    [[ ${1:-} == status || ${1:-} == stop ]] ||
    nba_die 'PostgreSQL 15 or Redis is not installed: run scripts/setup.sh first'
mkdir -p "$NBA_LOG_DIR"

case ${1:-} in
    start)
        nba_save_ports
        start_pg
        start_redis
        ;;
    stop)
        nba_rqworker_stop
        nba_runserver_stop
        stop_redis
        stop_pg
        nba_log "stopped: the RQ worker, NetBox, Redis ($NBA_REDIS_PORT) and PostgreSQL ($NBA_PG_PORT), whichever ran"
        ;;
    restart)
        nba_rqworker_stop
        nba_runserver_stop
        stop_redis
        stop_pg
        nba_save_ports
        start_pg
        start_redis
        ;;
    status) status ;;
    *) nba_die 'usage: services.sh start|stop|restart|status' ;;
esac
