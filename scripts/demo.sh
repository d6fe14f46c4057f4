#!/usr/bin/env bash
# The demo, after `make setup`: loads the demo dependency map into NetBox (once), starts NetBox on
# 127.0.0.1:$NBA_WEB_PORT (or reuses the one running), makes sure the admin user exists with the
# demo password and gives it a fresh API token, posts the alert burst through the REST API and
# prints the incidents it produced. Leaves NetBox running and writes .demo/env:
#
#   NETBOX_URL, NETBOX_USER, NETBOX_PASSWORD, NETBOX_TOKEN (the whole Authorization header value)
#
# so scripts can drive the demo: `source .demo/env; curl -H "Authorization: $NETBOX_TOKEN" ...`.
# Running it again is safe: the map is loaded once, the same alerts update the same events.
#
# Usage: scripts/demo.sh            DEMO_SEED=N picks another map (on an empty database); unset, the seed of
#                                    the map loaded already, else 7
#        scripts/demo.sh --no-alerts   the same without posting the burst: NetBox and its worker back up
#                                      after `make stop` or a reboot, with what the database holds (make start)
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

post_alerts=1
case ${1:-} in
'') ;;
--no-alerts) post_alerts=0 ;;
*) nba_die "unknown argument: $1 (scripts/demo.sh [--no-alerts])" ;;
esac

DEMO_SEED=${DEMO_SEED:-}
[[ -z $DEMO_SEED || $DEMO_SEED =~ ^[0-9]{1,9}$ ]] || nba_die "DEMO_SEED must be a whole number, not '$DEMO_SEED'"
DEMO_USER=${DEMO_USER:-admin}
DEMO_DIR=$NBA_REPO/.demo
DEMO_ENV=$DEMO_DIR/env
NETBOX_URL=http://127.0.0.1:$NBA_WEB_PORT

[[ -x $NBA_VENV/bin/netbox ]] || nba_die 'NetBox is not installed: run make setup first'
nba_pg_running || nba_die 'PostgreSQL is not running: run make setup first'
nba_redis_running || nba_die 'Redis is not running: run make setup first'

started=$SECONDS
mkdir -p "$DEMO_DIR" "$NBA_LOG_DIR"

# The password survives re-runs (it is in .demo/env); the token is new each time.
password=''
if [[ -f $DEMO_ENV ]]; then
    # shellcheck source=/dev/null
    password=$(source "$DEMO_ENV" && printf '%s' "${NETBOX_PASSWORD:-}")
fi
[[ -n $password ]] || password=$("$NBA_PY" -c 'import secrets; print(secrets.token_urlsafe(12))')

# One Django process for the map, the user and the token (each `netbox` command costs ~10 s to start).
# The command's report goes to stderr; the seed, then the Authorization header value, to stdout.
nba_log "loading the demo map (seed ${DEMO_SEED:-of the map loaded already, else 7}) and preparing user $DEMO_USER"
answer=$(NB_DEMO_SEED=$DEMO_SEED NB_DEMO_USER=$DEMO_USER NB_DEMO_PASSWORD=$password "$NBA_PY" - <<'PY'
import os
import sys

import django

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'netbox.settings')
django.setup()

from django.core.management import CommandError, call_command  # noqa: E402
from django.db import transaction  # noqa: E402

from business_application.demo.generate import DEFAULT_SEED  # noqa: E402
from business_application.demo.load import loaded_seed  # noqa: E402
from users.models import Token, User  # noqa: E402

wanted = os.environ['NB_DEMO_SEED']
present = loaded_seed()
seed = int(wanted) if wanted else DEFAULT_SEED if present is None else present
try:
    call_command('load_demo', seed=seed, stdout=sys.stderr)
except CommandError as error:
    sys.exit(f'[demo.sh] {error}')
with transaction.atomic():
    user = User.objects.filter(username=os.environ['NB_DEMO_USER']).first()
    if user is None:
        user = User.objects.create_superuser(os.environ['NB_DEMO_USER'], 'admin@example.invalid', None)
    user.is_superuser = user.is_active = True
    user.set_password(os.environ['NB_DEMO_PASSWORD'])
    user.save()
    Token.objects.filter(user=user, description='make demo').delete()
    token = Token.objects.create(user=user, description='make demo', write_enabled=True)
print(seed)
print(token.get_auth_header_prefix() + token.token)
PY
)
DEMO_SEED=${answer%%$'\n'*}
token=${answer#*$'\n'}
[[ $token == Bearer\ nbt_* ]] || nba_die "could not create the API token (got: ${token:0:40})"

# Single-quoted values, so that shells and env-file readers alike take them verbatim.
quoted() {
    local value=${1//\'/\'\\\'\'}
    printf "'%s'" "$value"
}
(
    umask 077
    {
        echo '# Written by scripts/demo.sh: the running demo NetBox and how to reach it.'
        echo "NETBOX_URL=$(quoted "$NETBOX_URL")"
        echo "NETBOX_USER=$(quoted "$DEMO_USER")"
        echo "NETBOX_PASSWORD=$(quoted "$password")"
        echo "NETBOX_TOKEN=$(quoted "$token")"
    } >"$DEMO_ENV.tmp"
    mv "$DEMO_ENV.tmp" "$DEMO_ENV"
)

# NetBox draws rack elevations with a stylesheet it reads from STATIC_ROOT, so collect once.
if [[ ! -f $NETBOX_ROOT/static/rack_elevation.css ]]; then
    nba_log 'collecting static files (once)'
    "$NBA_VENV/bin/netbox" collectstatic --no-input >"$NBA_LOG_DIR/collectstatic.log" 2>&1
fi

if nba_runserver_running; then
    nba_log "reusing NetBox on $NETBOX_URL (pid $(<"$NBA_RUNSERVER_PID"))"
else
    nba_log "starting NetBox on $NETBOX_URL (log: $NBA_LOG_DIR/runserver.log)"
    nba_runserver_start
fi

# Background jobs (process-unprocessed), notifications and asynchronous decisions run in a worker.
if nba_rqworker_running; then
    nba_log "reusing the RQ worker (pid $(<"$NBA_WORK/rqworker.pid"))"
else
    nba_log "starting an RQ worker (log: $NBA_LOG_DIR/rqworker.log)"
    nba_rqworker_start
fi

if ((post_alerts)); then
    nba_log 'posting the alert burst'
    "$NBA_PY" "$NBA_REPO/scripts/demo_alerts.py" --env "$DEMO_ENV" --seed "$DEMO_SEED"
else
    nba_log 'not posting the alert burst (--no-alerts): the incidents page shows what the database holds'
fi

cat <<EOF

NetBox is running at $NETBOX_URL/ (pid $(<"$NBA_RUNSERVER_PID"); stop it with make stop)
  login:     $DEMO_USER / $password
  incidents: $NETBOX_URL/plugins/business-application/incidents/
  API token: Authorization: $token
  shell:     source .demo/env   (NETBOX_URL, NETBOX_USER, NETBOX_PASSWORD, NETBOX_TOKEN)
$( ((post_alerts)) && echo 'the demo' || echo 'starting') took $((SECONDS - started)) s (set-up and migrations before it not counted)
EOF
