#!/usr/bin/env bash
# shellcheck disable=SC2154,SC2015,SC2317  # HN_PID_<name>: set by hn_spawn; A && B || C on purpose
# soak.sh: `make soak` — SOAK_SECONDS (default 600) at a steady load that
# keeps 10,000 visitors live, with the drain and the live stream on (issue 6):
# both daemons' RSS must stay flat, nothing may go wrong, and every beacon
# sent must end up in PostgreSQL, exactly once.
#
#   hn-ssefeed  ──UDP──┐ widget "soak-live": VISITORS sessions, round-robin
#   hn-loadgen  ──UDP──┤ widget "soak-mix": the tracker's whole mix
#   curl pixel  ──HTTP─┤ (keep-alive, and Connection: close)    (same widget)
#                      ▼
#            herenow-collector ──► Redis ──► herenow-api ── drain ──► PostgreSQL
#                                               └── SSE ──► hn-sseclient × SSE_CLIENTS
#                                               └── JSON ◄── the sampler (as a dashboard polls)
#
# The live population is exact: hn-ssefeed first sends one page view per
# session of "soak-live", then RATE beacons/s round-robin over the same
# sessions (PV_SHARE page views, the rest heartbeats), so every session is
# seen every VISITORS / RATE s (20 s), well inside the live window (300 s)
# and the active threshold (60 s); no session ever ends. hn:live:{soak-live}
# must hold exactly VISITORS members at every sample. The second widget gets
# hn-loadgen's realistic traffic (page views, heartbeats, events with
# properties, hide/show, end: sessions end and new ones start all the time)
# and two curl streams of pixel requests, so that the paths a fixed population
# does not take (ZREM of ended sessions, their hashes expiring, events' JSON,
# HTTP connections opened and closed) run for the whole soak too.
#
# Every SAMPLE_S seconds one CSV row (build/artifacts/soak/samples.csv): RSS
# (VmRSS) and CPU of both daemons, the live counts (ZCARD, and the api's
# `total` from GET …/active-visitors), stream length, drain lag, the
# collector's counters, Redis memory and keys. The sampler also asks for
# visitor-stats (PostgreSQL rollups), as an open dashboard would.
#
# Checks (each an "ok"/"not ok" line; the exit status is non-zero on any):
#   1. all data in PostgreSQL: beacons sent = accepted = records the
#      collector wrote = rows (widget_page_views + widget_visitor_events),
#      exactly, after the drain caught up (polled with a deadline);
#   2. no errors: no level=error line in either daemon's log, no dropped
#      beacon of any reason, no kernel drop, no error counter above 0, every
#      pixel answered 200, every SSE client still connected, both daemons
#      alive throughout and exiting 0 on SIGTERM;
#   3. RSS flat: over the samples after WARMUP_S, the median of the last
#      third may exceed the median of the first third by at most RSS_MAX_PCT
#      percent OR RSS_MAX_MB MB (failing takes both), per daemon;
#   4. live visitors: hn:live of soak-live and the api's total = VISITORS at
#      every sample; no member of either widget's hn:live older than the
#      live window (+5 s for the trimmer's interval) at any sample.
#
# Environment: SOAK_SECONDS=600 SAMPLE_S=10 WARMUP_S=60 VISITORS=10000
# RATE=500 (beacons/s to soak-live) PV_SHARE=0.2 MIX_SESSIONS=2000
# MIX_RATE=100 (beacons/s to soak-mix) PIXEL_KA_RATE=10 PIXEL_CLOSE_RATE=5
# (requests/s) SSE_CLIENTS=5 RSS_MAX_PCT=10 RSS_MAX_MB=8 DRAIN_TIMEOUT_S=300
# SOAK_DOC=docs/SOAK.md ("": don't write) SOAK_ARTIFACTS=build/artifacts/soak
# HN_KEEP_TMP=1 keeps the temp dir (the logs are copied to the artifacts anyway).
set -euo pipefail
cd "$(dirname "$0")/.."
CMDLINE="make soak"
for v in RSS_MAX_MB RSS_MAX_PCT SSE_CLIENTS PIXEL_CLOSE_RATE PIXEL_KA_RATE MIX_RATE MIX_SESSIONS \
         PV_SHARE RATE VISITORS WARMUP_S SAMPLE_S SOAK_SECONDS; do
    if [ -n "${!v+x}" ]; then CMDLINE="$v=$(printf '%q' "${!v}") $CMDLINE"; fi
done
case "${HN_BIN:-build/release}" in build/release) ;; *) CMDLINE="$CMDLINE OUT=$HN_BIN" ;; esac
SOAK_SECONDS=${SOAK_SECONDS:-600}
SAMPLE_S=${SAMPLE_S:-10}
WARMUP_S=${WARMUP_S:-60}
VISITORS=${VISITORS:-10000}
RATE=${RATE:-500}
PV_SHARE=${PV_SHARE:-0.2}
MIX_SESSIONS=${MIX_SESSIONS:-2000}
MIX_RATE=${MIX_RATE:-100}
PIXEL_KA_RATE=${PIXEL_KA_RATE:-10}
PIXEL_CLOSE_RATE=${PIXEL_CLOSE_RATE:-5}
SSE_CLIENTS=${SSE_CLIENTS:-5}
RSS_MAX_PCT=${RSS_MAX_PCT:-10}
RSS_MAX_MB=${RSS_MAX_MB:-8}
DRAIN_TIMEOUT_S=${DRAIN_TIMEOUT_S:-300}
SOAK_DOC=${SOAK_DOC-docs/SOAK.md}
SOAK_ARTIFACTS=${SOAK_ARTIFACTS:-build/artifacts/soak}
LIVE_WINDOW_S=${HERENOW_LIVE_WINDOW_S:-300}
ACTIVE_S=${HERENOW_ACTIVE_S:-60}
PIXEL_KA_SESSIONS=20
PIXEL_CLOSE_SESSIONS=10

die() { echo "soak: $*" >&2; exit 1; }
say() { echo "soak: $*"; }
for v in SOAK_SECONDS SAMPLE_S WARMUP_S VISITORS RATE MIX_SESSIONS MIX_RATE PIXEL_KA_RATE \
         PIXEL_CLOSE_RATE SSE_CLIENTS RSS_MAX_PCT RSS_MAX_MB DRAIN_TIMEOUT_S; do
    case "${!v}" in '' | *[!0-9]*) die "$v must be a whole number (got '${!v}')" ;; esac
done
[ "$RATE" -gt 0 ] && [ "$SAMPLE_S" -gt 0 ] || die "RATE and SAMPLE_S must be > 0"
[ "$SOAK_SECONDS" -ge $((3 * SAMPLE_S + WARMUP_S)) ] ||
    die "SOAK_SECONDS=$SOAK_SECONDS leaves fewer than 3 samples after WARMUP_S=$WARMUP_S"
# Each session of soak-live is seen every VISITORS / RATE s: it must stay live
# (and active) between two of its beacons, with room for a late sender.
[ $((VISITORS * 2)) -le $((RATE * ACTIVE_S)) ] ||
    die "VISITORS / RATE = $((VISITORS / RATE)) s: must be at most half of HERENOW_ACTIVE_S ($ACTIVE_S s)"

export HN_BIN=${HN_BIN:-build/release}
source tests/lib.sh
source bench/lib/doc-section.sh    # bench_median
# Every assertion also goes to checks.out, for the doc's table.
eval "$(declare -f hn_ok | sed '1s/^hn_ok/_soak_lib_ok/')"
eval "$(declare -f hn_fail | sed '1s/^hn_fail/_soak_lib_fail/')"
hn_ok() { _soak_lib_ok "$1"; printf 'ok|%s\n' "$1" >>"$HN_TMP/checks.out"; }
hn_fail() { _soak_lib_fail "$1"; printf 'FAILED|%s\n' "$1" >>"$HN_TMP/checks.out"; }

for b in herenow-api herenow-collector herenowctl hn-loadgen hn-sseclient hn-ssefeed hn-freeport; do
    [ -x "$HN_BIN/$b" ] || die "$HN_BIN/$b missing (make HN_BIN's binaries first)"
done
command -v redis-cli >/dev/null || die "redis-cli not found"
# Private copies: others rebuild in this tree while we run.
BIN=$HN_TMP/bin
mkdir -p "$BIN"
for b in herenow-api herenow-collector herenowctl hn-loadgen hn-sseclient hn-ssefeed; do cp "$HN_BIN/$b" "$BIN/"; done
BUILD_ID="built $(date -u -r "$HN_BIN/herenow-api" '+%Y-%m-%d %H:%M UTC'); collector sha256 $(sha256sum "$BIN/herenow-collector" | cut -c1-12), api sha256 $(sha256sum "$BIN/herenow-api" | cut -c1-12)"
GIT_ID="$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- api collector common proto 2>/dev/null || echo ' with local changes in api/ collector/ common/ proto/')"
mkdir -p "$SOAK_ARTIFACTS"
CSV=$SOAK_ARTIFACTS/samples.csv
START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
CLK_TCK=$(getconf CLK_TCK)

# ---- servers: production settings (PostgreSQL fsync on, Redis RDB snapshots on) --------------
start_server() {   # start_server redis|pg DIR: sets PORT
    local kind=$1 dir=$2
    for _ in 1 2 3; do
        PORT=$(hn_free_port)
        if [ "$kind" = redis ]; then
            _hn_register HN_REDIS_DIRS "$dir"
            scripts/redis.sh start "$dir" "$PORT" >/dev/null && return 0
        else
            _hn_register HN_PG_DIRS "$dir"
            scripts/pg.sh start "$dir" "$PORT" >/dev/null && return 0
        fi
    done
    die "could not start $kind"
}
start_server redis "$HN_TMP/redis"
export HN_REDIS_PORT=$PORT HERENOW_REDIS_URL="redis://127.0.0.1:$PORT/0"
start_server pg "$HN_TMP/pg"
export HN_PG_PORT=$PORT HERENOW_DATABASE_URL="postgresql://postgres@127.0.0.1:$PORT/herenow"
HN_PG_BINDIR=$(scripts/pg.sh bindir)
REDIS_PID=$(cat "$HN_TMP/redis/redis.pid")

"$BIN/herenowctl" migrate >/dev/null
new_widget() {   # new_widget NAME: prints "id key"
    "$BIN/herenowctl" widget add --name "$1" --domain "$1.example" |
        awk '/^id:/ { id = $2 } /^key:/ { key = $2 } END { print id, key }'
}
read -r WID KEY < <(new_widget soak-live)
read -r WID_MIX KEY_MIX < <(new_widget soak-mix)
TOKEN=$("$BIN/herenowctl" token create --widget "$WID" --name soak 2>/dev/null)
[ -n "$WID" ] && [ -n "$KEY" ] && [ -n "$WID_MIX" ] && [ -n "$KEY_MIX" ] && [ -n "$TOKEN" ] ||
    die "widgets and token not created"
SHARDS=${HERENOW_STREAM_SHARDS:-1}

# ---- the daemons, every setting at its default but the addresses -----------------------------
UDP=$(hn_free_port)
HTTP=$(hn_free_port)
ADMIN=$(hn_free_port)
API_PORT=$(hn_free_port)
C_URL="http://127.0.0.1:$ADMIN"
A_URL="http://127.0.0.1:$API_PORT"
hn_spawn collector env HERENOW_UDP_LISTEN="127.0.0.1:$UDP" HERENOW_HTTP_LISTEN="127.0.0.1:$HTTP" \
    HERENOW_ADMIN_LISTEN="127.0.0.1:$ADMIN" "$BIN/herenow-collector"
COL_PID=$HN_PID_collector
hn_spawn api env HERENOW_API_LISTEN="127.0.0.1:$API_PORT" HERENOW_DRAIN=on "$BIN/herenow-api"
API_PID=$HN_PID_api
hn_wait_for 15 "collector ready" curl -fsS "$C_URL/readyz"
hn_wait_for 15 "herenow-api ready" curl -fsS "$A_URL/readyz"
LIVE_PATH="/api/visitor-tracking/widgets/$WID/active-visitors"
api_get() {   # api_get PATH: the body; fails unless 200
    curl -fsS --max-time 10 -H "Authorization: Bearer $TOKEN" "$A_URL$1"
}
hn_wait_for 15 "herenow-api has loaded the token" api_get "$LIVE_PATH?limit=1"

# ---- metrics and samples ---------------------------------------------------------------------
# m_get TEXT NAME: the value of the series NAME (exact, labels included), 0 when absent
m_get() { awk -v m="$2" '$1 == m { v = $2 } END { printf "%.0f\n", v + 0 }' <<<"$1"; }
# m_sum TEXT PREFIX: the sum of the series whose name starts with PREFIX
m_sum() { awk -v p="$2" 'index($1, p) == 1 { v += $2 } END { printf "%.0f\n", v + 0 }' <<<"$1"; }
m_float() { awk -v m="$2" '$1 == m { v = $2 } END { printf "%.3f\n", v + 0 }' <<<"$1"; }
# nonzero drop series, as reason:transport=n;...
m_drops() {
    awk 'index($1, "herenow_beacons_dropped_total{") == 1 && $2 + 0 > 0 {
             t = $1; sub(/.*transport="/, "", t); sub(/".*/, "", t)
             r = $1; sub(/.*reason="/, "", r); sub(/".*/, "", r)
             s = s (s == "" ? "" : ";") r ":" t "=" $2 }
         END { print (s == "" ? "-" : s) }' <<<"$1"
}
rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
cpu_s() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk -v k="$CLK_TCK" '{ printf "%.2f\n", ($12 + $13) / k }' || echo 0; }
rcli() { redis-cli -h 127.0.0.1 -p "$HN_REDIS_PORT" "$@"; }
stream_len() {
    local n=0 s
    for s in $(seq 0 $((SHARDS - 1))); do
        n=$((n + $(rcli XLEN "$("$BIN/herenowctl" stream key --shard "$s")")))
    done
    echo "$n"
}
live_of() { rcli ZCARD "hn:live:{$1}"; }
# members of both widgets' live sets not seen within the live window (+5 s:
# the trimmer runs every HERENOW_TRIM_INTERVAL_MS, one node at a time)
stale_of() {
    local cut=$(( $(date +%s%3N) - (LIVE_WINDOW_S + 5) * 1000 ))
    echo $(( $(rcli ZCOUNT "hn:live:{$WID}" -inf "($cut") + $(rcli ZCOUNT "hn:live:{$WID_MIX}" -inf "($cut") ))
}
api_total() { api_get "$LIVE_PATH?limit=1" | grep -o '"total":[0-9]*' | head -1 | cut -d: -f2; }
rows() { hn_psql "SELECT (SELECT count(*) FROM widget_page_views) + (SELECT count(*) FROM widget_visitor_events)"; }

DASH_ERRORS=0
echo "t_s,unix_ms,collector_rss_kb,api_rss_kb,collector_cpu_s,api_cpu_s,live,live_api_total,live_mix,stale_live,stream_len,drain_lag_entries,drain_lag_s,accepted,written,drain_records,dropped,kernel_drops,redis_used_kb,redis_rss_kb,redis_keys,drops" >"$CSV"
# sample T: one CSV row (T: the scheduled seconds since the load started, or "end")
sample() {
    local t=$1 cm am total st
    cm=$(curl -fsS --max-time 10 "$C_URL/metrics" || true)
    am=$(curl -fsS --max-time 10 "$A_URL/metrics" || true)
    total=$(api_total || true)
    [ -n "$total" ] || { total=-1; DASH_ERRORS=$((DASH_ERRORS + 1)); }
    # what an open dashboard asks besides the stream (PostgreSQL rollups)
    st=$(api_get "/api/visitor-tracking/widgets/$WID/visitor-stats" >/dev/null && echo ok || echo failed)
    [ "$st" = ok ] || DASH_ERRORS=$((DASH_ERRORS + 1))
    printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$t" "$(date +%s%3N)" \
        "$(rss_kb "$COL_PID")" "$(rss_kb "$API_PID")" "$(cpu_s "$COL_PID")" "$(cpu_s "$API_PID")" \
        "$(live_of "$WID")" "$total" "$(live_of "$WID_MIX")" "$(stale_of)" "$(stream_len)" \
        "$(m_get "$am" herenow_drain_lag_entries)" "$(m_float "$am" herenow_drain_lag_seconds)" \
        "$(m_sum "$cm" herenow_beacons_accepted_total)" "$(m_get "$cm" herenow_records_written_total)" \
        "$(m_get "$am" herenow_drain_records_total)" "$(m_sum "$cm" herenow_beacons_dropped_total)" \
        "$(m_get "$cm" herenow_udp_kernel_drops_total)" \
        "$(rcli INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory" { printf "%d", $2 / 1024 }')" \
        "$(rss_kb "$REDIS_PID")" "$(rcli DBSIZE)" "$(m_drops "$cm")" >>"$CSV"
}
col() { awk -F, -v c="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next } { print $k }' "$CSV"; }

# ---- 1. the live population, the watchers ----------------------------------------------------
say "widget soak-live ($WID): $VISITORS sessions at $RATE beacons/s; soak-mix ($WID_MIX): $MIX_SESSIONS sessions at $MIX_RATE/s + pixels $PIXEL_KA_RATE/s keep-alive, $PIXEL_CLOSE_RATE/s Connection: close; $SSE_CLIENTS SSE clients; ${SOAK_SECONDS} s"
SEED_OUT=$("$BIN/hn-ssefeed" --to "127.0.0.1:$UDP" --key "$KEY" --mode seed --sessions "$VISITORS" \
    --rate 5000 --q-start 1 --seed 1)
live_full() { [ "$(live_of "$WID")" = "$VISITORS" ]; }
hn_wait_for 60 "$VISITORS sessions of soak-live live after the seed" live_full
hn_spawn sse env HN_SSE_TOKEN="$TOKEN" "$BIN/hn-sseclient" --to "127.0.0.1:$API_PORT" \
    --path "$LIVE_PATH/stream" --clients "$SSE_CLIENTS" --duration $((SOAK_SECONDS + DRAIN_TIMEOUT_S + 600)) \
    --ready-timeout 60
SSE_PID=$HN_PID_sse
hn_wait_for 90 "hn-sseclient: every stream has its snapshot" grep -q '^ready' "$HN_TMP/sse.log"
READY=$(grep '^ready' "$HN_TMP/sse.log")
say "$READY"

# ---- 2. the load -----------------------------------------------------------------------------
UA='Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
ka_q=$(( (PIXEL_KA_RATE * SOAK_SECONDS + PIXEL_KA_SESSIONS - 1) / PIXEL_KA_SESSIONS ))
cl_q=$(( (PIXEL_CLOSE_RATE * SOAK_SECONDS + PIXEL_CLOSE_SESSIONS - 1) / PIXEL_CLOSE_SESSIONS ))
PX="http://127.0.0.1:$HTTP/p.gif"
T0=$(date +%s%N)
hn_spawn feed "$BIN/hn-ssefeed" --to "127.0.0.1:$UDP" --key "$KEY" --mode feed --sessions "$VISITORS" \
    --rate "$RATE" --duration "$SOAK_SECONDS" --pv-share "$PV_SHARE" --q-start 2 --seed 1
FEED_PID=$HN_PID_feed
hn_spawn mix "$BIN/hn-loadgen" --to "127.0.0.1:$UDP" --widgets "$KEY_MIX" --sessions "$MIX_SESSIONS" \
    --rate "$MIX_RATE" --duration "$SOAK_SECONDS" --batch 1 --seed 7 \
    --pool $((MIX_RATE * SOAK_SECONDS + 1000))
MIX_PID=$HN_PID_mix
# curl's URL globs: q is the outer loop, the session the inner one, so every
# session's sequence numbers rise; one transfer per URL, paced by --rate.
hn_spawn pxka curl -sS -o /dev/null -A "$UA" --rate "$PIXEL_KA_RATE/s" -w '%{http_code}\n' \
    "$PX?q=[1-$ka_q]&k=$KEY_MIX&s=soakpixelka[01-$PIXEL_KA_SESSIONS]&t=pv&u=https%3A%2F%2Fsoak-mix.example%2Fpixel&ti=Pixel+page"
PXKA_PID=$HN_PID_pxka
hn_spawn pxcl curl -sS -o /dev/null -A "$UA" -H 'Connection: close' --rate "$PIXEL_CLOSE_RATE/s" -w '%{http_code}\n' \
    "$PX?q=[1-$cl_q]&k=$KEY_MIX&s=soakpixelcl[01-$PIXEL_CLOSE_SESSIONS]&t=ev&n=soak_click&d.el=button%23buy&d.where=pixel"
PXCL_PID=$HN_PID_pxcl

# ---- 3. samples every SAMPLE_S s, on absolute deadlines --------------------------------------
ALIVE=1
k=0
while [ $((k * SAMPLE_S)) -le "$SOAK_SECONDS" ]; do
    due=$((T0 + k * SAMPLE_S * 1000000000))
    now=$(date +%s%N)
    [ "$now" -ge "$due" ] || sleep "$(awk -v d=$((due - now)) 'BEGIN { printf "%.3f", d / 1e9 }')"
    if ! hn_alive "$COL_PID" || ! hn_alive "$API_PID"; then ALIVE=0; break; fi
    sample $((k * SAMPLE_S))
    if [ $((k * SAMPLE_S % 60)) = 0 ]; then
        tail -n1 "$CSV" | awk -F, '{ printf "soak: t=%4ss collector %.1f MB, api %.1f MB, live %s (api %s), mix %s, stream %s, lag %s, written %s, dropped %s\n",
            $1, $3 / 1024, $4 / 1024, $7, $8, $9, $11, $12, $15, $17 }'
    fi
    k=$((k + 1))
done
hn_assert_eq "both daemons ran through the soak" 1 "$ALIVE"

# ---- 4. the load stops; the drain catches up -------------------------------------------------
wait_exit() {   # wait_exit PID NAME TIMEOUT_S: a sender that should be done
    hn_wait_for "$3" "$2 finished" bash -c "! kill -0 $1 2>/dev/null" || true
    hn_alive "$1" && hn_stop "$1" 10 || true
    wait "$1" 2>/dev/null || true
}
wait_exit "$FEED_PID" hn-ssefeed 30
wait_exit "$MIX_PID" hn-loadgen 30
# curl's pacing may trail by a few requests: what it sent is counted either way
wait_exit "$PXKA_PID" "curl (pixel, keep-alive)" 30
wait_exit "$PXCL_PID" "curl (pixel, Connection: close)" 30
T_LOAD_END=$(date +%s%N)
FEED_OUT=$(grep '^mode=' "$HN_TMP/feed.log" | tail -1 || true)
MIX_OUT=$(grep 'sent_beacons=' "$HN_TMP/mix.log" | tail -1 || true)
kv() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print substr($0, length(k) + 2); exit }'; }
SENT_SEED=$(kv sent "$SEED_OUT")
SENT_FEED=$(kv sent "$FEED_OUT")
SENT_MIX=$(kv sent_beacons "$MIX_OUT")
PX_200=$(cat "$HN_TMP/pxka.log" "$HN_TMP/pxcl.log" | grep -cx 200 || true)
PX_OTHER=$(cat "$HN_TMP/pxka.log" "$HN_TMP/pxcl.log" | grep -cvx 200 || true)
SENT_UDP=$(( ${SENT_SEED:-0} + ${SENT_FEED:-0} + ${SENT_MIX:-0} ))
say "sent: seed $SENT_SEED, feed $SENT_FEED (late max $(kv late_max_ms "$FEED_OUT") ms), mix $SENT_MIX (UDP $SENT_UDP); pixels answered 200: $PX_200, other: $PX_OTHER"

# Caught up: the collector has every accepted record acknowledged by Redis,
# and PostgreSQL holds as many rows as the collector wrote (count(*) once a
# second: the drain is not to be measured against a poll storm).
DRAINED=0
deadline=$((SECONDS + DRAIN_TIMEOUT_S))
while [ "$SECONDS" -lt "$deadline" ]; do
    cm=$(curl -fsS --max-time 10 "$C_URL/metrics" || true)
    acc=$(m_sum "$cm" herenow_beacons_accepted_total)
    wr=$(m_get "$cm" herenow_records_written_total)
    if [ "$acc" -gt 0 ] && [ "$acc" = "$wr" ] && [ "$(rows)" = "$wr" ]; then DRAINED=1; break; fi
    sleep 1
done
T_DRAINED=$(date +%s%N)
DRAIN_S=$(awk -v a="$T_LOAD_END" -v b="$T_DRAINED" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
hn_assert_eq "the drain caught up within ${DRAIN_TIMEOUT_S} s of the load's end (took $DRAIN_S s)" 1 "$DRAINED"
sample end
CM=$(curl -fsS "$C_URL/metrics")
AM=$(curl -fsS "$A_URL/metrics")
ROWS=$(rows)
ACC=$(m_sum "$CM" herenow_beacons_accepted_total)
ACC_UDP=$(m_get "$CM" 'herenow_beacons_accepted_total{transport="udp"}')
ACC_PX=$(m_get "$CM" 'herenow_beacons_accepted_total{transport="pixel"}')
WRITTEN=$(m_get "$CM" herenow_records_written_total)
PV_ROWS=$(hn_psql "SELECT count(*) FROM widget_page_views")
EV_ROWS=$(hn_psql "SELECT count(*) FROM widget_visitor_events")
DUP_IDS=$(hn_psql "SELECT (SELECT count(*) - count(DISTINCT event_id) FROM widget_page_views) + (SELECT count(*) - count(DISTINCT event_id) FROM widget_visitor_events)")
COL_HWM=$(hwm_kb "$COL_PID")
API_HWM=$(hwm_kb "$API_PID")

# ---- 5. the checks ---------------------------------------------------------------------------
echo "# 1. all data in PostgreSQL"
hn_assert_eq "UDP beacons sent (seed + feed + loadgen) = accepted over UDP" "$SENT_UDP" "$ACC_UDP"
hn_assert_eq "pixels answered 200 = accepted over HTTP (pixel)" "$PX_200" "$ACC_PX"
hn_assert_eq "accepted = records written by the collector" "$ACC" "$WRITTEN"
hn_assert_eq "records written = rows in PostgreSQL (page views + events)" "$WRITTEN" "$ROWS"
hn_assert_eq "no event id twice" 0 "$DUP_IDS"
pending=0
for s in $(seq 0 $((SHARDS - 1))); do
    pending=$((pending + $(rcli XPENDING "$("$BIN/herenowctl" stream key --shard "$s")" drain | head -1)))
done
hn_assert_eq "nothing pending in the drain's group" 0 "$pending"

echo "# 2. no errors"
LOG_ERR=$(grep -h 'level=error' "$HN_TMP/collector.log" "$HN_TMP/api.log" || true)
hn_assert_eq "no level=error line in the collector's or the api's log" "" "$LOG_ERR"
WARNS=$(grep -h 'level=warn' "$HN_TMP/collector.log" "$HN_TMP/api.log" || true)
N_WARN=$(grep -c . <<<"$WARNS" || true)
hn_assert_eq "no beacon dropped (any reason, any transport)" "-" "$(m_drops "$CM")"
zero_counters() {   # zero_counters TEXT NAME...: "name=v" for each that is not 0
    local t=$1 n v out=
    shift
    for n in "$@"; do
        v=$(m_sum "$t" "$n")
        [ "$v" = 0 ] || out+="$n=$v "
    done
    echo "${out% }"
}
hn_assert_eq "collector error counters all 0" "" "$(zero_counters "$CM" herenow_udp_kernel_drops_total \
    herenow_redis_errors_total herenow_redis_disconnects_total herenow_redis_timeouts_total \
    herenow_widget_refresh_errors_total herenow_salt_refresh_errors_total herenow_ua_match_errors_total \
    herenow_http_incomplete_requests_total herenow_http_request_timeouts_total \
    herenow_records_without_visitor_total herenow_spool_written_records_total herenow_spool_corrupt_bytes_total)"
hn_assert_eq "api error counters all 0" "" "$(zero_counters "$AM" herenow_drain_rejects_total \
    herenow_drain_retries_total herenow_drain_duplicates_total herenow_drain_claimed_total \
    herenow_api_rejected_total herenow_api_jobs_expired_total herenow_api_token_refresh_errors_total \
    herenow_api_streams_cut_total herenow_api_auth_failures_total)"
hn_assert_eq "every pixel request answered 200" 0 "$PX_OTHER"
hn_assert_eq "every dashboard request of the sampler answered (active-visitors, visitor-stats)" 0 "$DASH_ERRORS"
hn_stop "$SSE_PID" 30 || true
OVERALL=$(grep '^overall' "$HN_TMP/sse.log" || true)
hn_assert_eq "SSE clients: all $SSE_CLIENTS ok, none disconnected, no bye" "ok=$SSE_CLIENTS failed=0 disconnected=0 byes=0" \
    "ok=$(kv ok "$OVERALL") failed=$(kv failed "$OVERALL") disconnected=$(kv disconnected "$OVERALL") byes=$(kv byes "$OVERALL")"

echo "# 3. RSS flat"
# the samples of the steady load after the warm-up
steady() { awk -F, -v w="$WARMUP_S" -v e="$SOAK_SECONDS" -v c="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
    $1 != "end" && $1 >= w && $1 <= e { print $k }' "$CSV"; }
N_STEADY=$(steady t_s | grep -c . || true)
THIRD=$((N_STEADY / 3))
[ "$THIRD" -ge 1 ] || THIRD=1
RSS_RESULT=()
rss_check() {   # rss_check NAME COLUMN
    local name=$1 c=$2 first last
    first=$(steady "$c" | head -n "$THIRD" | bench_median)
    last=$(steady "$c" | tail -n "$THIRD" | bench_median)
    local line
    line=$(awk -v f="$first" -v l="$last" -v p="$RSS_MAX_PCT" -v mb="$RSS_MAX_MB" -v n="$name" 'BEGIN {
        g = l - f; pct = f > 0 ? g * 100 / f : 0
        bad = g > f * p / 100 && g > mb * 1024
        printf "%s %.1f %.1f %+.1f %+.1f %d\n", n, f / 1024, l / 1024, g / 1024, pct, bad }')
    RSS_RESULT+=("$line")
    read -r _ f_mb l_mb g_mb g_pct bad <<<"$line"
    if [ "$bad" = 0 ]; then
        hn_ok "$name RSS flat: median of the first third $f_mb MB, of the last third $l_mb MB ($g_mb MB, $g_pct %; limit +$RSS_MAX_PCT % or +$RSS_MAX_MB MB)"
    else
        hn_fail "$name RSS grew: median of the first third $f_mb MB, of the last third $l_mb MB ($g_mb MB, $g_pct %; limit +$RSS_MAX_PCT % or +$RSS_MAX_MB MB)"
    fi
}
rss_check collector collector_rss_kb
rss_check api api_rss_kb
# least-squares slope over the steady samples, KB per minute (reported, not checked)
slope() { awk -F, -v w="$WARMUP_S" -v e="$SOAK_SECONDS" -v c="$1" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
    $1 != "end" && $1 >= w && $1 <= e { n++; x = $1 / 60; sx += x; sy += $k; sxx += x * x; sxy += x * $k }
    END { d = n * sxx - sx * sx; printf "%+.0f", (d > 0 ? (n * sxy - sx * sy) / d : 0) }' "$CSV"; }
COL_SLOPE=$(slope collector_rss_kb)
API_SLOPE=$(slope api_rss_kb)
say "RSS slope after the warm-up: collector $COL_SLOPE KB/min, api $API_SLOPE KB/min"

echo "# 4. live visitors"
LIVE_BAD=$(awk -F, -v v="$VISITORS" 'NR > 1 && ($7 != v || $8 != v) { printf "t=%s:%s/%s ", $1, $7, $8 }' "$CSV")
hn_assert_eq "hn:live:{soak-live} and the api's total = $VISITORS at every sample" "" "${LIVE_BAD% }"
MIX_MAX=$(col live_mix | sort -n | tail -1)
MIX_CAP=$((MIX_SESSIONS + PIXEL_KA_SESSIONS + PIXEL_CLOSE_SESSIONS))
STALE_BAD=$(awk -F, 'NR > 1 && $10 != 0 { printf "t=%s:%s ", $1, $10 }' "$CSV")
hn_assert_eq "no hn:live member older than the live window at any sample (soak-mix up to $MIX_MAX live)" "" "${STALE_BAD% }"
# an ended session leaves hn:live at once: soak-mix never holds more than its slots
hn_assert_cmd "soak-mix's live count ($MIX_MAX at most) never above its $MIX_CAP session slots" test "$MIX_MAX" -le "$MIX_CAP"

# ---- 6. SIGTERM ------------------------------------------------------------------------------
rc=0; hn_stop "$API_PID" 30 || rc=$?
hn_assert_eq "herenow-api exits 0 on SIGTERM" 0 "$rc"
rc=0; hn_stop "$COL_PID" 30 || rc=$?
hn_assert_eq "herenow-collector exits 0 on SIGTERM" 0 "$rc"

# ---- 7. report -------------------------------------------------------------------------------
VERDICT=PASS
[ "$HN_FAILED" = 0 ] || VERDICT=FAIL
for f in collector api sse feed mix pxka pxcl; do cp "$HN_TMP/$f.log" "$SOAK_ARTIFACTS/$f.log" 2>/dev/null || true; done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
TOTAL_RATE=$(awk -v a="$RATE" -v b="$MIX_RATE" -v c="$PIXEL_KA_RATE" -v d="$PIXEL_CLOSE_RATE" 'BEGIN { print a + b + c + d }')
say "verdict: $VERDICT — $ROWS rows ($PV_ROWS page views, $EV_ROWS events) = $WRITTEN written = $ACC accepted; RSS collector ${RSS_RESULT[0]#collector }, api ${RSS_RESULT[1]#api } (first-third MB, last-third MB, growth MB, %, failed); $N_WARN warning line(s); samples in $CSV"

MIX_NOTE=
WARN_NOTE=
if [ "$N_WARN" != 0 ]; then
    # shellcheck disable=SC2016  # backticks for Markdown
    WARN_NOTE=$(printf ' (the first ten):\n\n```\n%s\n```' "$(head -n 10 <<<"$WARNS")")
fi
write_doc() {
    local cpu mem redisv pgv
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    mem=$(awk '/MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo)
    redisv=$(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/')
    pgv=$("$HN_PG_BINDIR/postgres" --version | awk '{ print $3 }')
    cat <<EOF
# Soak test (make soak)

**Verdict: $VERDICT** ($HN_PASSED checks passed, $HN_FAILED failed). What is tested: $SOAK_SECONDS s at a
steady load with $VISITORS live visitors, the drain and the live stream on; both daemons' RSS must
stay flat, nothing may go wrong, and every beacon sent must be a row in PostgreSQL, exactly once.

Command: \`$CMDLINE\` (scripts/soak.sh; \`make soak OUT=build/x\` builds into and runs from
build/x). Run $START_DATE on $(nproc) cores ($cpu), $mem RAM, Linux $(uname -r), Redis $redisv
(RDB snapshots on), PostgreSQL $pgv (fsync on: scripts/pg.sh without --fast); load average before
$LOAD_BEFORE, after $LOAD_AFTER. Commit $GIT_ID; binaries $BUILD_ID. Load generators, both
daemons, Redis and PostgreSQL share the cores; loopback only. Every herenow setting at its
default but the listen addresses (collector: $(
        awk '/^ts=/ && /event=started/ { sub(/.*event=started /, ""); print; exit }' "$HN_TMP/collector.log" | cut -c1-200
    )).

## The load

| | |
|---|---|
| widget soak-live | $VISITORS sessions: one page view each (\`hn-ssefeed --mode seed\`), then $RATE beacons/s over UDP round-robin over them (\`hn-ssefeed --mode feed\`: $(awk -v p="$PV_SHARE" 'BEGIN { printf "%d", p * 100 }') % page views, the rest heartbeats), so every session is seen every $((VISITORS / RATE)) s: all $VISITORS live and active the whole time (live window $LIVE_WINDOW_S s, active $ACTIVE_S s) |
| widget soak-mix | \`hn-loadgen\` over UDP, $MIX_SESSIONS session slots, $MIX_RATE beacons/s, the tracker's mix (page views, heartbeats, events with properties, hide/show, \`end\`: sessions end and new ones start), every beacon distinct (pool ≥ beacons sent); pixels over HTTP with curl: $PIXEL_KA_RATE/s page views on one keep-alive connection ($PIXEL_KA_SESSIONS sessions), $PIXEL_CLOSE_RATE/s events with properties on a new connection each (\`Connection: close\`, $PIXEL_CLOSE_SESSIONS sessions) |
| dashboard | $SSE_CLIENTS live streams (\`hn-sseclient\`, GET …/active-visitors/stream of soak-live, Bearer token) open from before the load to after the drain caught up; every ${SAMPLE_S} s GET …/active-visitors and …/visitor-stats |
| drain | on, in herenow-api (HERENOW_DRAIN=on, one consumer), writing to PostgreSQL as the beacons come |
| total | $TOTAL_RATE beacons/s for $SOAK_SECONDS s; sent: $SENT_SEED (seed) + $SENT_FEED (feed) + $SENT_MIX (loadgen) over UDP, $PX_200 pixels |

## The curve

One row per minute of the ${SAMPLE_S}-s samples (all of them: \`$CSV\`, and below). RSS is VmRSS
from /proc/PID/status; *live* is ZCARD hn:live:{soak-live} / the api's \`total\`; *lag* is the
api's herenow_drain_lag_entries (stream entries not yet in PostgreSQL) and herenow_drain_lag_seconds.

| t (s) | collector RSS (MB) | api RSS (MB) | live (ZCARD / api) | live soak-mix | stream length | drain lag (entries / s) | records written | Redis used (MB) / keys |
|---|---|---|---|---|---|---|---|---|
EOF
    awk -F, 'NR > 1 && ($1 == "end" || $1 % 60 == 0) {
        printf "| %s | %.1f | %.1f | %s / %s | %s | %s | %s / %s | %s | %.1f / %s |\n",
            ($1 == "end" ? "drained" : $1), $3 / 1024, $4 / 1024, $7, $8, $9, $11, $12, $13, $15, $19 / 1024, $21 }' "$CSV"
    cat <<EOF

Peak RSS (VmHWM): collector $(awk -v k="$COL_HWM" 'BEGIN { printf "%.1f", k / 1024 }') MB, api $(awk -v k="$API_HWM" 'BEGIN { printf "%.1f", k / 1024 }') MB.
CPU over the whole run: collector $(col collector_cpu_s | tail -1) s, api $(col api_cpu_s | tail -1) s.
Least-squares slope of RSS after the warm-up: collector $COL_SLOPE KB/min, api $API_SLOPE KB/min.

## Checks

| check | result |
|---|---|
EOF
    awk '{ r = substr($0, 1, index($0, "|") - 1); d = substr($0, index($0, "|") + 1); gsub(/\|/, "\\|", d)
           printf "| %s | %s |\n", d, (r == "ok" ? "ok" : "**FAILED**") }' "$HN_TMP/checks.out"
    cat <<EOF

Totals: $ROWS rows ($PV_ROWS page views, $EV_ROWS events) = $WRITTEN records written = $ACC beacons
accepted ($ACC_UDP UDP, $ACC_PX pixel); the drain caught up $DRAIN_S s after the load ended.
${MIX_NOTE}Log lines at level=warn: $N_WARN$WARN_NOTE

**RSS rule.** Over the samples after a ${WARMUP_S}-s warm-up (the UA cache, the live hub's list of
$VISITORS sessions, the live stream's replay ring and the drivers' buffers fill up there), the
median of the last third may not exceed the median of the first third by more than
$RSS_MAX_PCT % **and** $RSS_MAX_MB MB (both must be exceeded to fail). With a fixed population,
bounded queues and bounded caches, nothing should grow once they are full; the
$RSS_MAX_PCT % absorbs malloc's arenas and trim thresholds (glibc returns freed memory late and
per thread), the $RSS_MAX_MB MB keeps a small daemon from failing on one arena's worth. Between
the two thirds' medians lie $(( (N_STEADY - THIRD) * SAMPLE_S )) s ($N_STEADY samples after the warm-up, $THIRD per third), that is about
$(( (N_STEADY - THIRD) * SAMPLE_S * TOTAL_RATE )) beacons: the rule catches a leak of about
$(awk -v b=$(( (N_STEADY - THIRD) * SAMPLE_S * TOTAL_RATE )) -v mb="$RSS_MAX_MB" 'BEGIN { printf "%d", (b > 0 ? mb * 1048576 / b : 0) }') bytes per beacon or more; the slope above shows what is below that.

<details><summary>Every sample ($CSV)</summary>

\`\`\`
$(cat "$CSV")
\`\`\`

</details>
EOF
}
if [ -n "$SOAK_DOC" ]; then
    write_doc >"$HN_TMP/soak.md"
    cp "$HN_TMP/soak.md" "$SOAK_DOC"
    say "wrote $SOAK_DOC"
fi
hn_done
