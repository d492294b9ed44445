#!/usr/bin/env bash
# run.sh: `make run` — a whole local herenow in var/: Redis and PostgreSQL,
# migrations, a demo widget, the collector, the api (with its drain) and an
# API token for trying it. Ctrl-C stops everything it started. Ports can be
# moved with the variables below.
#
# HN_RUN_CLUSTER=1 (`make run CLUSTER=1`): a Redis Cluster of 3 masters and 3
# replicas in var/redis-cluster (scripts/redis-cluster.sh, ports
# HN_RUN_REDIS_PORT .. +5 and their bus ports +10000) instead of one Redis,
# with HERENOW_STREAM_SHARDS=3: one stream shard per master.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${HN_BIN:-build/release}
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
VAR=${HN_VAR:-$ROOT/var}
REDIS_PORT=${HN_RUN_REDIS_PORT:-6479}
PG_PORT=${HN_RUN_PG_PORT:-5479}

CLUSTER=${HN_RUN_CLUSTER:-0}
case "$CLUSTER" in 1 | yes | on | true) CLUSTER=1 ;; *) CLUSTER=0 ;; esac
if [ "$CLUSTER" = 1 ]; then
    export HERENOW_REDIS_URL=${HERENOW_REDIS_URL:-redis+cluster://127.0.0.1:$REDIS_PORT,127.0.0.1:$((REDIS_PORT + 1)),127.0.0.1:$((REDIS_PORT + 2))}
    export HERENOW_STREAM_SHARDS=${HERENOW_STREAM_SHARDS:-3}
else
    export HERENOW_REDIS_URL=${HERENOW_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}
fi
export HERENOW_DATABASE_URL=${HERENOW_DATABASE_URL:-postgresql://postgres@127.0.0.1:$PG_PORT/herenow}
export HERENOW_UDP_LISTEN=${HERENOW_UDP_LISTEN:-127.0.0.1:7470}
export HERENOW_HTTP_LISTEN=${HERENOW_HTTP_LISTEN:-127.0.0.1:7470}
export HERENOW_ADMIN_LISTEN=${HERENOW_ADMIN_LISTEN:-127.0.0.1:7471}
export HERENOW_PUBLIC_URL=${HERENOW_PUBLIC_URL:-http://127.0.0.1:7470}
export HERENOW_API_LISTEN=${HERENOW_API_LISTEN:-127.0.0.1:7480}
export HERENOW_API_WWW=${HERENOW_API_WWW:-$ROOT/api/www}
export HERENOW_SPOOL_DIR=${HERENOW_SPOOL_DIR:-$ROOT/var/spool}
ADMIN=${HERENOW_ADMIN_LISTEN}
API=${HERENOW_API_LISTEN}

mkdir -p "$VAR"
chmod 0755 "$VAR"
# Encryption at rest (docs/OPERATIONS.md, Data at rest): a key made at the
# first run, kept with the data; the api and herenowctl read it.
if [ -z "${HERENOW_DATA_KEY_FILE+x}" ]; then
    export HERENOW_DATA_KEY_FILE=$VAR/data.key
    if [ ! -s "$HERENOW_DATA_KEY_FILE" ]; then
        (umask 077 && "$BIN/herenowctl" key new --id k1 --with-index >"$HERENOW_DATA_KEY_FILE.new") &&
            mv "$HERENOW_DATA_KEY_FILE.new" "$HERENOW_DATA_KEY_FILE"
    fi
fi
started_redis=0 started_pg=0 collector_pid= api_pid=

stop_all() {
    trap - EXIT INT TERM
    set +e
    echo
    echo "stopping..."
    # the collector first (no new records), then the api (its drain ends
    # its cycle), then the servers
    local pid
    for pid in "$collector_pid" "$api_pid"; do
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid"
            wait "$pid"
        fi
    done
    [ "$started_pg" = 1 ] && "$ROOT/scripts/pg.sh" stop "$VAR/pg" >/dev/null
    if [ "$started_redis" = 1 ] && [ "$CLUSTER" = 1 ]; then
        "$ROOT/scripts/redis-cluster.sh" stop "$VAR/redis-cluster" >/dev/null
    elif [ "$started_redis" = 1 ]; then
        "$ROOT/scripts/redis.sh" stop "$VAR/redis" >/dev/null
    fi
    echo "stopped (data kept in $VAR)"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$CLUSTER" = 1 ]; then
    echo "starting a Redis Cluster on 127.0.0.1:$REDIS_PORT..$((REDIS_PORT + 5)) (3 masters, 3 replicas) and PostgreSQL on 127.0.0.1:$PG_PORT (data in $VAR)"
    started_redis=1
    "$ROOT/scripts/redis-cluster.sh" start "$VAR/redis-cluster" "$REDIS_PORT"
else
    echo "starting Redis on 127.0.0.1:$REDIS_PORT and PostgreSQL on 127.0.0.1:$PG_PORT (data in $VAR)"
    started_redis=1
    "$ROOT/scripts/redis.sh" start "$VAR/redis" "$REDIS_PORT" >/dev/null
fi
"$ROOT/scripts/pg.sh" start "$VAR/pg" "$PG_PORT" >/dev/null
started_pg=1

"$BIN/herenowctl" migrate
"$BIN/herenowctl" widget sync >/dev/null
if [ -z "$("$BIN/herenowctl" widget list --json | grep -o '"key"' | head -1)" ]; then
    # chat on: the demo page gets the chat script, the dashboard's Start chat reaches it
    "$BIN/herenowctl" widget add --name "Demo site" --domain localhost --chat on >/dev/null
fi
first=$("$BIN/herenowctl" widget list --json | grep -m1 '"key"')
KEY=$(printf '%s' "$first" | grep -o '"key":"[^"]*"' | cut -d'"' -f4)
WID=$(printf '%s' "$first" | grep -o '"id":[0-9]*' | cut -d: -f2)

# wait_ready NAME PID URL: polls URL until it answers 2xx (15 s at most)
wait_ready() {
    local name=$1 pid=$2 url=$3 deadline=$((SECONDS + 15))
    until curl -fsS "$url" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || { echo "the $name did not start (see $VAR/$name.log)"; tail -n 5 "$VAR/$name.log" 2>/dev/null; exit 1; }
        [ $SECONDS -lt $deadline ] || { echo "the $name is not ready after 15 s: $(curl -s "$url")"; exit 1; }
        sleep 0.1
    done
}

HERENOW_LOG_FILE="$VAR/collector.log" "$BIN/herenow-collector" &
collector_pid=$!
wait_ready collector "$collector_pid" "http://$ADMIN/readyz"

HERENOW_LOG_FILE="$VAR/api.log" "$BIN/herenow-api" &
api_pid=$!
wait_ready api "$api_pid" "http://$API/readyz"
# A new token each run: a token is shown once and only its digest is kept.
TOKEN=$("$BIN/herenowctl" token create --all --name make-run)
# the api reads new tokens every HERENOW_TOKEN_REFRESH_MS (2 s by default)
deadline=$((SECONDS + 10))
while [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" \
    "http://$API/api/visitor-tracking/widgets")" = 401 ] && [ $SECONDS -lt $deadline ]; do
    sleep 0.1
done

# A page with the snippet, to see a real browser arrive in the live list.
cat >"$VAR/demo.html" <<HTML
<!doctype html>
<meta charset="utf-8">
<title>herenow demo page</title>
<script src="$HERENOW_PUBLIC_URL/h.js" data-widget="$KEY" async></script>
<h1>herenow demo</h1>
<p>This page embeds the demo widget. While it is open you are a live visitor:
<a href="#second">a hash change</a> is a page view,
<button onclick="herenow('event', 'demo_click', {button: 'hello'})">this button</button> sends an event.</p>
<p>Chat: press <b>Start chat</b> on your row in the dashboard and the invitation appears here,
bottom right; or <button onclick="herenow('chat', 'open')">start one yourself</button>.</p>
HTML

cat <<TXT

herenow is running.
  dashboard    http://$API/   (sign in with the api token below)
  collector    UDP beacons on $HERENOW_UDP_LISTEN, HTTP beacons and the widget on http://$HERENOW_HTTP_LISTEN
  metrics      http://$ADMIN/metrics   (also /livez, /readyz)
  api          http://$API/api/visitor-tracking/...   (its /metrics, /livez, /readyz too)
  api token    $TOKEN
               (for every widget; \`herenowctl token revoke ${TOKEN:3:12}\` ends it)
  demo widget  id $WID, key $KEY
  data key     ${HERENOW_DATA_KEY_FILE:-(none: names, emails, phones, messages stored in clear)}
               (seals visitors' names, emails, phones and chat messages in PostgreSQL;
               keep it with the data: docs/OPERATIONS.md, Data at rest)
  embed        <script src="$HERENOW_PUBLIC_URL/h.js" data-widget="$KEY" async></script>
               (docs/WIDGET.md; a page with it: $VAR/demo.html — open it in a browser,
               then press Start chat on your row in the dashboard: docs/CHAT.md)

Try it:
  $BIN/herenowctl send --key $KEY --script        # one whole visit over UDP
  curl -H "Authorization: Bearer $TOKEN" http://$API/api/visitor-tracking/widgets/$WID/active-visitors
  redis-cli -c -p $REDIS_PORT ZRANGE 'hn:live:{$WID}' 0 -1 WITHSCORES     # who is live now
  HERENOW_REDIS_URL=$HERENOW_REDIS_URL${HERENOW_STREAM_SHARDS:+ HERENOW_STREAM_SHARDS=$HERENOW_STREAM_SHARDS} $BIN/herenowctl stream dump
TXT
[ "$CLUSTER" = 1 ] && cat <<TXT
  redis-cli -p $REDIS_PORT cluster shards                              # the cluster (CLUSTER=1)
TXT
cat <<TXT

Logs: $VAR/collector.log, $VAR/api.log. Ctrl-C stops everything.
TXT
# Until Ctrl-C, or until either daemon ends on its own.
wait -n "$collector_pid" "$api_pid" || true
