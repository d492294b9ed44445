#!/usr/bin/env bash
# sse.sh: `make bench-sse` — the live stream (GET …/active-visitors/stream,
# Server-Sent Events) under load: CLIENTS watchers of one widget with
# VISITORS live sessions while RATE beacons/s arrive (issue 5). Delay from
# the beacon sent to the event received, and what it costs herenow-api.
#
#   hn-ssefeed ──UDP──► herenow-collector ──► Redis ──XREAD──► herenow-api ──SSE──► hn-sseclient × CLIENTS
#      url ?t=<µs send time>&n=<seq>              └───────── XREAD (tail) ─────────► hn-sseclient (floor)
#
# Once: private Redis and PostgreSQL (the api reads its tokens there),
# migrate, a widget, a token of that widget, the collector on a UDP port.
# Per round (RUNS rounds; a fresh herenow-api each, so that its memory and
# its snapshot work are measured from a cold start):
#   1. herenow-api (HERENOW_DRAIN=$DRAIN, every SSE setting at its default);
#   2. hn-ssefeed --mode seed: one page view for each of VISITORS sessions
#      (the same sessions every round), waited for in hn:live;
#   3. hn-sseclient opens CLIENTS streams (CONNECT_RATE per second,
#      `Authorization: Bearer`), and prints `ready` once every one has its
#      snapshot; two threads of it tail the collector's Redis stream and
#      PING Redis every 10 ms (the references below);
#   4. hn-ssefeed --mode feed: RATE beacons/s for DURATION s, round-robin over
#      the sessions, PV_SHARE page views (each with its send time and number
#      in its URL, so each makes one timed `update`) and heartbeats;
#   5. GRACE s for the last events, then the client is stopped and reports.
# CPU (utime+stime from /proc/<pid>/stat) of the api, Redis, the collector
# and the client over the feed; the api's VmRSS before the clients, after
# their snapshots and at the end, and its VmHWM.
#
# References, measured in the same rounds on the same 2 cores, by threads of
# hn-sseclient with blocking connections of their own (not its event loop,
# whose own lateness is measured apart):
#   tail   beacon sent → the record read from the Redis stream by a plain
#          XREAD BLOCK: the delay before the api can know; the api's own share
#          is the SSE delay minus this. The api batches by design every
#          HERENOW_SSE_TICK_MS (100 ms), so its floor is about tail + half a
#          tick at the median and tail + a tick at p99.
#   ping   a Redis PING round trip every 10 ms: the machine's noise.
#
# Environment: RUNS=3 DURATION=30 (s of feed per round) CLIENTS=500
# VISITORS=10000 RATE=2000 (beacons/s) PV_SHARE=0.8 CONNECT_RATE=100 (new
# streams/s; 0: all at once) DRAIN=off (on: the api's drain also writes the
# beacons to PostgreSQL, in the same process) GRACE=2 (s)
# BENCH_DOC=docs/BENCHMARKS.md ("" : don't write) HN_KEEP_TMP=1 keeps logs.
set -euo pipefail
cd "$(dirname "$0")/.."
CMDLINE="make bench-sse"
for v in GRACE DRAIN CONNECT_RATE PV_SHARE RATE VISITORS CLIENTS DURATION RUNS; do
    if [ -n "${!v+x}" ]; then CMDLINE="$v=\"${!v}\" $CMDLINE"; fi
done
RUNS=${RUNS:-3}
DURATION=${DURATION:-30}
CLIENTS=${CLIENTS:-500}
VISITORS=${VISITORS:-10000}
RATE=${RATE:-2000}
PV_SHARE=${PV_SHARE:-0.8}
CONNECT_RATE=${CONNECT_RATE:-100}
DRAIN=${DRAIN:-off}
GRACE=${GRACE:-2}
TARGET_P99_MS=1000
BENCH_DOC=${BENCH_DOC-docs/BENCHMARKS.md}
if [ "${DRAIN:-off}" = on ]; then
    SECTION="## Live stream, SSE, with the drain on (make bench-sse DRAIN=on)"
else
    SECTION="## Live stream, SSE (make bench-sse)"
fi
source bench/lib/doc-section.sh
source bench/lib/run.sh
export HN_BIN=${HN_BIN:-build/release}
source tests/lib.sh

say() { echo "bench-sse: $*"; }
die() { echo "bench-sse: $*" >&2; exit 1; }
for b in herenow-api herenow-collector herenowctl hn-sseclient hn-ssefeed hn-freeport; do
    [ -x "$HN_BIN/$b" ] || die "$HN_BIN/$b missing (make HN_BIN's binaries first)"
done
command -v redis-cli >/dev/null || die "redis-cli not found"
case "$RUNS$DURATION$CLIENTS$VISITORS$RATE$CONNECT_RATE$GRACE" in *[!0-9.]*) die "RUNS DURATION CLIENTS VISITORS RATE CONNECT_RATE GRACE: numbers" ;; esac
case "$DRAIN" in on | off) ;; *) die "DRAIN is on or off" ;; esac

bench_start herenow-api "api common" herenow-api herenow-collector herenowctl hn-sseclient hn-ssefeed

# ---- servers, schema, widget, token, collector ----------------------------------------------
hn_start_redis
hn_start_pg
REDIS_PID=$(cat "$HN_TMP/redis/redis.pid")
"$BIN/herenowctl" migrate >/dev/null
WIDGET=$("$BIN/herenowctl" widget add --name bench-sse --domain bench.example)
WID=$(awk '/^id:/ { print $2 }' <<<"$WIDGET")
KEY=$(awk '/^key:/ { print $2 }' <<<"$WIDGET")
TOKEN=$("$BIN/herenowctl" token create --widget "$WID" --name bench-sse 2>/dev/null)
[ -n "$WID" ] && [ -n "$KEY" ] && [ -n "$TOKEN" ] || { hn_fail "widget and token created"; exit 1; }
SHARDS=${HERENOW_STREAM_SHARDS:-1}
STREAM=$("$BIN/herenowctl" stream key --shard $((WID % SHARDS)))

UDP=$(hn_free_port)
ADMIN=$(hn_free_port)
hn_spawn collector env HERENOW_UDP_LISTEN="127.0.0.1:$UDP" HERENOW_HTTP_LISTEN= \
    HERENOW_ADMIN_LISTEN="127.0.0.1:$ADMIN" HERENOW_LOG_LEVEL=warn "$BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
# shellcheck disable=SC2154  # HN_PID_collector: set by hn_spawn
COL_PID=$HN_PID_collector
metric() {   # metric URL NAME
    curl -fsS "$1/metrics" | awk -v m="$2" '$1 == m { v = $2 } END { printf "%d\n", v + 0 }'
}
all_written() {
    local acc wr
    acc=$(metric "http://127.0.0.1:$ADMIN" 'herenow_beacons_accepted_total{transport="udp"}')
    wr=$(metric "http://127.0.0.1:$ADMIN" herenow_records_written_total)
    [ "$acc" -gt 0 ] && [ "$wr" -ge "$acc" ]
}
live_count() {   # sessions inside the default live window
    hn_redis ZCOUNT "hn:live:{$WID}" "($(( $(date +%s%3N) - 300000 ))" +inf
}
live_all() { [ "$(live_count)" -ge "$VISITORS" ]; }

API_PORT=$(hn_free_port)
U="http://127.0.0.1:$API_PORT"
STREAM_PATH="/api/visitor-tracking/widgets/$WID/active-visitors/stream"
QSPAN=1000000     # sequence numbers per round: each hn-ssefeed call gets its own range

say "widget $WID, $VISITORS sessions, $CLIENTS clients, $RATE beacons/s for ${DURATION} s, $RUNS round(s), drain $DRAIN"
for run in $(seq 1 "$RUNS"); do
    # -- 1. the api
    hn_spawn "api$run" env HERENOW_API_LISTEN="127.0.0.1:$API_PORT" HERENOW_DRAIN="$DRAIN" "$BIN/herenow-api"
    pid_var="HN_PID_api$run"
    API_PID=${!pid_var}
    hn_wait_for 10 "herenow-api answers /livez" curl -fsS "$U/livez"
    hn_wait_for 10 "herenow-api has loaded the tokens" \
        bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $TOKEN' '$U/api/visitor-tracking/widgets/$WID/active-visitors?limit=1') = 200 ]"

    # -- 2. the sessions
    qbase=$(( (run - 1) * QSPAN + 1 ))
    seed_out=$("$BIN/hn-ssefeed" --to "127.0.0.1:$UDP" --key "$KEY" --mode seed --sessions "$VISITORS" --q-start "$qbase")
    hn_wait_for 30 "$VISITORS sessions live" live_all
    hn_wait_for 30 "collector wrote every beacon" all_written
    LIVE=$(live_count)

    # -- 3. the watchers
    rss_before=$(status_kb "$API_PID" VmRSS)
    a0=$(cpu_ticks "$API_PID"); r0=$(cpu_ticks "$REDIS_PID"); tc0=$(now_s)
    hn_spawn "sse$run" env HN_SSE_TOKEN="$TOKEN" "$BIN/hn-sseclient" --to "127.0.0.1:$API_PORT" \
        --path "$STREAM_PATH" --clients "$CLIENTS" --connect-rate "$CONNECT_RATE" \
        --duration $((DURATION + 900)) --ready-timeout 300 --per-client "$HN_TMP/clients.$run" \
        --redis "127.0.0.1:$HN_REDIS_PORT" --tail "$STREAM" --ping-ms 10
    pid_var="HN_PID_sse$run"
    SSE_PID=${!pid_var}
    hn_wait_for 330 "hn-sseclient: every stream has its snapshot (or failed)" grep -q '^ready' "$HN_TMP/sse$run.log"
    a1=$(cpu_ticks "$API_PID"); r1=$(cpu_ticks "$REDIS_PID"); tc1=$(now_s)
    ready=$(grep '^ready' "$HN_TMP/sse$run.log")
    rss_ready=$(status_kb "$API_PID" VmRSS)
    say "round $run: $(kv snapshots "$ready")/$CLIENTS snapshots in $(kv t_ms "$ready") ms, api RSS $((rss_before / 1024)) → $((rss_ready / 1024)) MB"

    # -- 4. the feed (measured window)
    load_start=$(cut -d' ' -f1 /proc/loadavg)
    a2=$(cpu_ticks "$API_PID"); r2=$(cpu_ticks "$REDIS_PID"); c2=$(cpu_ticks "$COL_PID"); s2=$(cpu_ticks "$SSE_PID"); t2=$(now_s)
    feed_out=$("$BIN/hn-ssefeed" --to "127.0.0.1:$UDP" --key "$KEY" --mode feed --sessions "$VISITORS" \
        --rate "$RATE" --duration "$DURATION" --pv-share "$PV_SHARE" --q-start $((qbase + 1)) --seed 1)
    a3=$(cpu_ticks "$API_PID"); r3=$(cpu_ticks "$REDIS_PID"); c3=$(cpu_ticks "$COL_PID"); s3=$(cpu_ticks "$SSE_PID"); t3=$(now_s)
    load_end=$(cut -d' ' -f1 /proc/loadavg)

    # -- 5. the last events, then the report
    sleep "$GRACE"
    rss_end=$(status_kb "$API_PID" VmRSS)
    hwm=$(status_kb "$API_PID" VmHWM)
    curl -fsS "$U/metrics" | grep -E '^herenow_(sse|live|api_stream)' >"$HN_TMP/api-metrics.$run" || true
    hn_stop "$SSE_PID" 30 || true
    overall=$(grep '^overall' "$HN_TMP/sse$run.log" || true)
    [ -n "$overall" ] || { hn_fail "round $run: hn-sseclient reported"; tail -5 "$HN_TMP/sse$run.log"; }
    api_alive=1
    hn_alive "$API_PID" || api_alive=0
    hn_assert_eq "round $run: herenow-api still running after the feed" 1 "$api_alive"
    hn_stop "$API_PID" 20 || true
    # the api's log lines about streams other than the usual (warnings, errors)
    grep -vE 'level=(info|debug)' "$HN_TMP/api$run.log" | head -20 >"$HN_TMP/api-warn.$run" || true

    feed_s=$(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.3f", b - a }')
    conn_s=$(awk -v a="$tc0" -v b="$tc1" 'BEGIN { printf "%.3f", b - a }')
    hub_records=$(awk '$1 == "herenow_live_records_total" { print $2 }' "$HN_TMP/api-metrics.$run")
    pv_n=$(kv pv_n "$feed_out")
    dmin=$(kv distinct_min "$overall")
    case "$pv_n" in '' | *[!0-9]*) pv_n=0 ;; esac
    case "${dmin%.*}" in '' | *[!0-9]*) dmin=0 ;; esac
    line="run=$run load=$load_start,$load_end live=$LIVE feed_s=$feed_s api_cpu_pct=$(pct $((a3 - a2)) "$feed_s") redis_cpu_pct=$(pct $((r3 - r2)) "$feed_s")"
    line+=" collector_cpu_pct=$(pct $((c3 - c2)) "$feed_s") client_cpu_pct=$(pct $((s3 - s2)) "$feed_s")"
    line+=" connect_s=$conn_s api_connect_cpu_s=$(awk -v t=$((a1 - a0)) -v k="$CLK_TCK" 'BEGIN { printf "%.2f", t / k }')"
    line+=" redis_connect_cpu_s=$(awk -v t=$((r1 - r0)) -v k="$CLK_TCK" 'BEGIN { printf "%.2f", t / k }')"
    line+=" rss_before_mb=$((rss_before / 1024)) rss_ready_mb=$((rss_ready / 1024)) rss_end_mb=$((rss_end / 1024)) hwm_mb=$((hwm / 1024))"
    line+=" api_alive=$api_alive missing_max=$(( pv_n - ${dmin%.*} )) hub_unread=$(( $(kv sent "$feed_out") - ${hub_records:-0} )) feed_$(sed 's/ / feed_/g' <<<"$feed_out") $overall"
    echo "$line" >>"$RES"
    say "round $run: p50 $(kv p50_ms "$overall") ms, p99 $(kv p99_ms "$overall") ms, max $(kv max_ms "$overall") ms;" \
        "tail p50 $(kv tail_p50_ms "$overall") / p99 $(kv tail_p99_ms "$overall") ms; api $(kv api_cpu_pct "$line") % of a core," \
        "RSS $((hwm / 1024)) MB peak; disconnects $(kv disconnected "$overall"), byes $(kv byes "$overall"), missing ≤ $(kv missing_max "$line")"
done

# ---- report -----------------------------------------------------------------------------------------
med() { while read -r l; do kv "$1" "$l"; done <"$RES" | bench_median; }
runs_of() { while read -r l; do kv "$1" "$l"; done <"$RES" | paste -sd/ | sed 's#/# / #g'; }
sum_of() { while read -r l; do kv "$1" "$l"; done <"$RES" | awk '{ s += $1 } END { print s + 0 }'; }
P99=$(med p99_ms)
MET=$(awk -v a="$P99" -v t="$TARGET_P99_MS" 'BEGIN { print (a >= 0 && a <= t) ? "met" : "**missed**" }')
TICK_MS=${HERENOW_SSE_TICK_MS:-100}
T_TOTAL=$(( $(date +%s) - T_START ))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
OUT=$HN_TMP/section.md
{
    echo "$SECTION"
    echo
    echo "Run $START_DATE on $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r),"
    echo "Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'); load average before $LOAD_BEFORE, after $LOAD_AFTER; commit $GIT_ID;"
    echo "herenow-api built $BUILD_ID. The feeder, collector, Redis, PostgreSQL ($([ "$DRAIN" = on ] && echo "the drain's" || echo idle)), herenow-api and the"
    echo "clients share the cores; loopback only. The whole run took $T_TOTAL s."
    echo
    echo "Command: \`$CMDLINE\` — $RUNS round(s), each with a fresh herenow-api (HERENOW_DRAIN=$DRAIN, SSE settings at"
    echo "their defaults: tick ${TICK_MS} ms, ping 15 s): $VISITORS live sessions on one widget (one page view each, sent"
    echo "before the clients connect), $CLIENTS streams opened at $CONNECT_RATE/s (0: all at once) with \`Authorization:"
    echo "Bearer\`, then $RATE beacons/s over UDP for $DURATION s, round-robin over the sessions (each session every"
    echo "$(awk -v v="$VISITORS" -v r="$RATE" 'BEGIN { printf "%.1f", v / r }') s), $(awk -v p="$PV_SHARE" 'BEGIN { printf "%d", p * 100 }') % page views whose URL carries the send time"
    echo "(\`?t=<µs>&n=<seq>\`) and the rest heartbeats (no event). *delay*: CLOCK_REALTIME when the client read the"
    echo "event − the send time in its URL, over every timed \`update\` of every client; medians over the rounds."
    echo
    echo "| | median | rounds |"
    echo "|---|---|---|"
    echo "| delay p50, ms | $(med p50_ms) | $(runs_of p50_ms) |"
    echo "| delay p90, ms | $(med p90_ms) | $(runs_of p90_ms) |"
    echo "| **delay p99, ms** (target ≤ $TARGET_P99_MS) | **$P99** | $(runs_of p99_ms) |"
    echo "| delay p99.9 / max, ms | $(med p999_ms) / $(med max_ms) | $(runs_of max_ms) (max) |"
    echo "| p99 of the single clients, min / median / max, ms | $(med client_p99_min) / $(med client_p99_med) / $(med client_p99_max) | |"
    echo "| reference: beacon → Redis stream (XREAD tail) p50 / p99, ms | $(med tail_p50_ms) / $(med tail_p99_ms) | $(runs_of tail_p99_ms) (p99) |"
    echo "| the api's share of p50 (delay − tail) / design floor (tick/2), ms | $(awk -v a="$(med p50_ms)" -v b="$(med tail_p50_ms)" 'BEGIN { printf "%.1f", a - b }') / $((TICK_MS / 2)) | |"
    echo "| p99 / (tail p99 + one tick) | $(awk -v a="$P99" -v b="$(med tail_p99_ms)" -v t="$TICK_MS" 'BEGIN { printf "%.2f", a / (b + t) }') | |"
    echo "| reference: Redis PING round trip p50 / p99, ms | $(med ping_p50_ms) / $(med ping_p99_ms) | $(runs_of ping_p99_ms) (p99) |"
    echo "| client's own loop lag p99, ms (10 ms timer) | $(med lag_p99_ms) | $(runs_of lag_p99_ms) |"
    echo "| timed events per client (page views sent) | $(med distinct_med) ($(med feed_pv_n)) | |"
    echo "| events missing in the worst client / duplicates (all rounds) | $(med missing_max) / $(sum_of dups) | $(runs_of missing_max) |"
    echo "| beacons the api's hub never read (sent − herenow_live_records_total) | $(med hub_unread) | $(runs_of hub_unread) |"
    echo "| disconnects / \`bye\` events / failed streams (all rounds) | $(sum_of disconnected) / $(sum_of byes) / $(sum_of failed) | |"
    echo "| load average (1 min) at the start, end of the feed | | $(runs_of load) |"
    echo "| herenow-api CPU during the feed, % of one core | $(med api_cpu_pct) | $(runs_of api_cpu_pct) |"
    echo "| Redis / collector / hn-sseclient CPU during the feed, % of one core | $(med redis_cpu_pct) / $(med collector_cpu_pct) / $(med client_cpu_pct) | |"
    echo "| herenow-api RSS: before the clients / after their snapshots / at the end / VmHWM, MB | $(med rss_before_mb) / $(med rss_ready_mb) / $(med rss_end_mb) / $(med hwm_mb) | $(runs_of hwm_mb) (VmHWM) |"
    echo "| snapshot: bytes / visitors in it (min) | $(med snapshot_bytes_med) / $(med snapshot_total_min) | |"
    echo "| time to the snapshot per stream p50 / max, ms | $(med snapshot_ms_p50) / $(med snapshot_ms_max) | |"
    echo "| all $CLIENTS snapshots: wall s / herenow-api CPU s / Redis CPU s | $(med connect_s) / $(med api_connect_cpu_s) / $(med redis_connect_cpu_s) | |"
    echo "| bytes received per client per s (snapshot included, over the client's whole run) | $(while read -r l; do awk -v b="$(kv bytes "$l")" -v c="$CLIENTS" -v w="$(kv wall_s "$l")" 'BEGIN { printf "%.0f\n", b / c / w }'; done <"$RES" | bench_median) | |"
    echo "| feeder: beacons/s achieved / latest send behind schedule, ms | $(med feed_rate) / $(med feed_late_max_ms) | |"
    echo
    echo "Against the target: p99 $P99 ms ≤ $TARGET_P99_MS ms: $MET."
    if [ "$(sum_of missing_max)" != 0 ]; then
        echo
        echo "**Events missing:** $(sum_of missing_max) page view(s) over the rounds never reached the worst client as an"
        echo "\`update\`, and the api's hub did not read $(sum_of hub_unread) of the beacons sent. The per-client lists"
        echo "(\`hole_ranges\` of hn-sseclient --per-client) show whether every client lost the same ones (the hub) or not"
        echo "(the fan-out). Round 1, client 0: \`$(grep -o 'holes=[0-9]* hole_ranges=[^ ]*' "$HN_TMP/clients.1" | head -1)\`."
    fi
    echo
    if [ "$DRAIN" = off ]; then
        echo "HERENOW_DRAIN=off (its default is on): the drain runs inside herenow-api and writes every beacon to"
        echo "PostgreSQL, so with it on the api's CPU figure would mix the stream's cost with the drain's (measured on its"
        echo "own by \`make bench-drain\`), and PostgreSQL would take a share of the same 2 cores. \`make bench-sse DRAIN=on\`"
        echo "measures the default configuration into a section of its own."
    else
        echo "HERENOW_DRAIN=on, the default: the api's CPU and memory include the drain writing every beacon to"
        echo "PostgreSQL (fsync off: scripts/pg.sh --fast), and PostgreSQL shares the cores."
    fi
    echo "The references run in threads of their own inside hn-sseclient (blocking Redis connections),"
    echo "so they show Redis and the machine, not the client's event loop; that loop's own lateness is the *loop lag*"
    echo "row, and it is part of every delay above. *load* in the rounds' lines is the 1-minute load average at the"
    echo "start and at the end of the feed: other jobs on the machine show there."
    echo
    echo "<details><summary>Every round (key=value)</summary>"
    echo
    echo '```'
    cat "$RES"
    echo '```'
    echo
    echo "The api's SSE metrics at the end of each round:"
    echo
    echo '```'
    for r in $(seq 1 "$RUNS"); do
        echo "# round $r"
        cat "$HN_TMP/api-metrics.$r" 2>/dev/null || true
    done
    echo '```'
    echo
    echo "</details>"
} >"$OUT"
bench_finish bench-sse
