#!/usr/bin/env bash
# run.sh: `make run` — a whole local herenow in var/: Redis and PostgreSQL,
# migrations, a demo widget, the collector. Ctrl-C stops everything it
# started. Ports can be moved with the variables below.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${HN_BIN:-build/release}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
VAR=${HN_VAR:-$ROOT/var}
REDIS_PORT=${HN_RUN_REDIS_PORT:-6479}
PG_PORT=${HN_RUN_PG_PORT:-5479}

export HERENOW_REDIS_URL=${HERENOW_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}
export HERENOW_DATABASE_URL=${HERENOW_DATABASE_URL:-postgresql://postgres@127.0.0.1:$PG_PORT/herenow}
export HERENOW_UDP_LISTEN=${HERENOW_UDP_LISTEN:-127.0.0.1:7470}
export HERENOW_HTTP_LISTEN=${HERENOW_HTTP_LISTEN:-127.0.0.1:7470}
export HERENOW_ADMIN_LISTEN=${HERENOW_ADMIN_LISTEN:-127.0.0.1:7471}
export HERENOW_PUBLIC_URL=${HERENOW_PUBLIC_URL:-http://127.0.0.1:7470}
ADMIN=${HERENOW_ADMIN_LISTEN}

mkdir -p "$VAR"
chmod 0755 "$VAR"
started_redis=0 started_pg=0 collector_pid=

stop_all() {
    trap - EXIT INT TERM
    set +e
    echo
    echo "stopping..."
    if [ -n "$collector_pid" ] && kill -0 "$collector_pid" 2>/dev/null; then
        kill -TERM "$collector_pid"
        wait "$collector_pid"
    fi
    [ "$started_pg" = 1 ] && "$ROOT/scripts/pg.sh" stop "$VAR/pg" >/dev/null
    [ "$started_redis" = 1 ] && "$ROOT/scripts/redis.sh" stop "$VAR/redis" >/dev/null
    echo "stopped (data kept in $VAR)"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "starting Redis on 127.0.0.1:$REDIS_PORT and PostgreSQL on 127.0.0.1:$PG_PORT (data in $VAR)"
"$ROOT/scripts/redis.sh" start "$VAR/redis" "$REDIS_PORT" >/dev/null
started_redis=1
"$ROOT/scripts/pg.sh" start "$VAR/pg" "$PG_PORT" >/dev/null
started_pg=1

"$BIN/herenowctl" migrate
"$BIN/herenowctl" widget sync >/dev/null
if [ -z "$("$BIN/herenowctl" widget list --json | grep -o '"key"' | head -1)" ]; then
    "$BIN/herenowctl" widget add --name "Demo site" --domain localhost >/dev/null
fi
first=$("$BIN/herenowctl" widget list --json | grep -m1 '"key"')
KEY=$(printf '%s' "$first" | grep -o '"key":"[^"]*"' | cut -d'"' -f4)
WID=$(printf '%s' "$first" | grep -o '"id":[0-9]*' | cut -d: -f2)

"$BIN/herenow-collector" &
collector_pid=$!
deadline=$((SECONDS + 15))
until curl -fsS "http://$ADMIN/readyz" >/dev/null 2>&1; do
    kill -0 "$collector_pid" 2>/dev/null || { echo "the collector did not start (see above)"; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "the collector is not ready after 15 s"; exit 1; }
    sleep 0.1
done

cat <<TXT

herenow is running.
  collector    UDP beacons on $HERENOW_UDP_LISTEN
  metrics      http://$ADMIN/metrics   (also /livez, /readyz)
  demo widget  key $KEY
  embed        <script src="$HERENOW_PUBLIC_URL/h.js" data-widget="$KEY" async></script>
               (the browser script and its HTTP ingress arrive with the next release;
                the dashboard and API with herenow-api)

Try it:
  $BIN/herenowctl send --key $KEY --script        # one whole visit over UDP
  redis-cli -p $REDIS_PORT ZRANGE 'hn:live:{$WID}' 0 -1 WITHSCORES     # who is live now
  HERENOW_REDIS_URL=$HERENOW_REDIS_URL $BIN/herenowctl stream dump

Ctrl-C stops everything.
TXT
wait "$collector_pid" || true
collector_pid=
