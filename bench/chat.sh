#!/usr/bin/env bash
# chat.sh: `make bench-chat` — Start Chat's downlink under load (issue 14):
# VISITORS visitor downlinks (GET /v, Server-Sent Events) held by one
# herenow-collector, what an idle one costs, how fast an agent's message
# reaches its visitor, and how fast a visitor's answer reaches the dashboard.
#
#   hn-chatdrive ──POST …/messages──► herenow-api ──XADD hn:chat:{w}──► Redis ──XREAD──► herenow-collector ──SSE /v──► hn-chatclient × VISITORS
#     text "t=<µs> n=<k>"                 (PostgreSQL transaction)                                                  delay = now − t
#   hn-chatclient's reference thread: PUBLISH ──► SUBSCRIBE, XADD ──► XREAD BLOCK on the same Redis
#
#   hn-chatdash ──POST /b, t=msg ci=<conversation>──► herenow-collector ──HINCRBY messages_sent, XADD hn:stream──► Redis
#        ▲ (its visitors)                                                                                          │ XREAD, every tick
#        └── update {"session_id","messages_sent":c} ◄──SSE …/active-visitors/stream── herenow-api's live hub ◄────┘
#   hn-chatdash's reference thread: XREAD BLOCK hn:stream:<shard> (the beacon's record, when the api could know)
#
# Once: private Redis and PostgreSQL, migrate, a widget with chat on, a
# token of it, herenow-api (HERENOW_DRAIN=off, HERENOW_CHAT_RATE_PER_MIN
# raised: one token sends every message here).
# Per round (RUNS rounds; a fresh collector each, so that its memory is
# measured from the same start):
#   1. herenow-collector (UDP and HTTP on loopback, HERENOW_CHAT_PING_S=$PING_S,
#      HERENOW_CHAT_MAX_CONNS above VISITORS, HERENOW_RATE_LIMIT=0: every
#      downlink comes from 127.0.0.1); hn-chatdash opens the widget's live
#      stream (the dashboard, open for the whole round) and waits for its
#      snapshot;
#   2. hn-ssefeed --mode seed: one page view for each of VISITORS new sessions
#      (their ids into a file), waited for in hn:live;
#   3. hn-chatclient opens one downlink per session (CONNECT_RATE/s) and prints
#      `ready` once each has its `: ready`; the collector's VmRSS and the
#      kernel's TCP memory (/proc/net/sockstat) before and after;
#   4. IDLE s with nothing but pings: the collector's CPU (utime+stime) and its
#      VmRSS again;
#   5. hn-chatdrive opens a conversation on TARGETS of the sessions, then sends
#      RATE agent messages/s for DURATION s to random ones of them;
#   6. GRACE s;
#   7. the visitors answer (SIGUSR1 to hn-chatdash): VISITOR_RATE messages/s for
#      DURATION s, each a beacon t=msg in one of the conversations opened in 5,
#      over HTTP POST /b as the chat script sends it (UDP is for relays); each
#      message's delay ends when the dashboard's stream shows the session's
#      messages_sent reach its number; it stops once all have shown, or GRACE
#      s after the last was sent (the rest: lost);
#   8. the client reports: delays, lost (sent − received) and duplicated
#      messages (by n per session).
#
# Environment: RUNS=3 VISITORS=10000 IDLE=20 (s) PING_S=5 TARGETS=1000
# RATE=100 (agent messages/s) VISITOR_RATE=100 (visitor messages/s)
# DURATION=30 (s, each) THREADS=4 (connections of the driver, and of the
# visitors' sender) CONNECT_RATE=2000 GRACE=2 (s) BENCH_DOC=docs/BENCHMARKS.md
# ("": don't write) HN_KEEP_TMP=1 keeps logs.
set -euo pipefail
cd "$(dirname "$0")/.."
CMDLINE="make bench-chat"
for v in GRACE CONNECT_RATE THREADS DURATION VISITOR_RATE RATE TARGETS PING_S IDLE VISITORS RUNS; do
    if [ -n "${!v+x}" ]; then CMDLINE="$v=\"${!v}\" $CMDLINE"; fi
done
RUNS=${RUNS:-3}
VISITORS=${VISITORS:-10000}
IDLE=${IDLE:-20}
PING_S=${PING_S:-5}
TARGETS=${TARGETS:-1000}
RATE=${RATE:-100}
VISITOR_RATE=${VISITOR_RATE:-100}
DURATION=${DURATION:-30}
THREADS=${THREADS:-4}
CONNECT_RATE=${CONNECT_RATE:-2000}
GRACE=${GRACE:-2}
TARGET_P99_MS=250
TARGET_VIS_P99_MS=1000
TARGET_IDLE_B=4096
BENCH_DOC=${BENCH_DOC-docs/BENCHMARKS.md}
SECTION="## Chat downlink (make bench-chat)"
source bench/lib/doc-section.sh
source bench/lib/run.sh
export HN_BIN=${HN_BIN:-build/release}
source tests/lib.sh

say() { echo "bench-chat: $*"; }
die() { echo "bench-chat: $*" >&2; exit 1; }
for b in herenow-api herenow-collector herenowctl hn-chatclient hn-chatdrive hn-chatdash hn-ssefeed hn-freeport; do
    [ -x "$HN_BIN/$b" ] || die "$HN_BIN/$b missing (make HN_BIN's binaries first)"
done
case "$RUNS$VISITORS$IDLE$PING_S$TARGETS$RATE$VISITOR_RATE$DURATION$THREADS$CONNECT_RATE$GRACE" in *[!0-9.]*) die "RUNS … GRACE: numbers" ;; esac
[ "$TARGETS" -le "$VISITORS" ] || die "TARGETS ≤ VISITORS"
# one fd per downlink in the client and in the collector
[ "$(ulimit -Hn)" -gt $((VISITORS + 200)) ] || die "ulimit -Hn $(ulimit -Hn): fewer than VISITORS + 200 descriptors"

bench_start herenow-collector "collector api common" herenow-api herenow-collector herenowctl hn-chatclient hn-chatdrive hn-chatdash hn-ssefeed
PCT_DECIMALS=2
PAGE_KB=$(( $(getconf PAGESIZE) / 1024 ))
# /proc/net/sockstat: TCP sockets in use and the TCP memory (pages → KiB)
tcp_inuse() { awk '$1 == "TCP:" { print $3 }' /proc/net/sockstat; }
tcp_mem_kb() { awk -v p="$PAGE_KB" '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "mem") print $(i + 1) * p }' /proc/net/sockstat; }

# ---- servers, schema, widget, token, api -------------------------------------------------
hn_start_redis
hn_start_pg
REDIS_PID=$(cat "$HN_TMP/redis/redis.pid")
"$BIN/herenowctl" migrate >/dev/null
WIDGET=$("$BIN/herenowctl" widget add --name bench-chat --domain bench.example --chat on)
WID=$(awk '/^id:/ { print $2 }' <<<"$WIDGET")
KEY=$(awk '/^key:/ { print $2 }' <<<"$WIDGET")
TOKEN=$("$BIN/herenowctl" token create --widget "$WID" --name bench-chat 2>/dev/null)
[ -n "$WID" ] && [ -n "$KEY" ] && [ -n "$TOKEN" ] || { hn_fail "widget and token created"; exit 1; }
STREAM_PATH="/api/visitor-tracking/widgets/$WID/active-visitors/stream"
STREAM=$("$BIN/herenowctl" stream key --shard $((WID % ${HERENOW_STREAM_SHARDS:-1})))
TICK_MS=${HERENOW_SSE_TICK_MS:-100}

API_PORT=$(hn_free_port)
U="http://127.0.0.1:$API_PORT"
hn_spawn api env HERENOW_API_LISTEN="127.0.0.1:$API_PORT" HERENOW_DRAIN=off \
    HERENOW_CHAT_RATE_PER_MIN=1000000 HERENOW_LOG_LEVEL=warn "$BIN/herenow-api"
# shellcheck disable=SC2154  # HN_PID_api: set by hn_spawn
API_PID=$HN_PID_api
hn_wait_for 10 "herenow-api answers /livez" curl -fsS "$U/livez"
hn_wait_for 10 "herenow-api has loaded the tokens" \
    bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $TOKEN' '$U/api/visitor-tracking/widgets/$WID/active-visitors?limit=1') = 200 ]"

metric() {   # metric URL NAME
    curl -fsS "$1/metrics" | awk -v m="$2" '$1 == m { v = $2 } END { printf "%d\n", v + 0 }'
}
live_count() { hn_redis ZCOUNT "hn:live:{$WID}" "($(( $(date +%s%3N) - 300000 ))" +inf; }

say "widget $WID, $VISITORS downlinks, idle ${IDLE} s (pings every ${PING_S} s), then $RATE messages/s for ${DURATION} s to $TARGETS sessions, then $VISITOR_RATE answers/s for ${DURATION} s, $RUNS round(s)"
for run in $(seq 1 "$RUNS"); do
    # -- 1. a fresh collector
    UDP=$(hn_free_port)
    HTTP=$(hn_free_port)
    ADMIN=$(hn_free_port)
    A="http://127.0.0.1:$ADMIN"
    hn_spawn "collector$run" env HERENOW_UDP_LISTEN="127.0.0.1:$UDP" HERENOW_HTTP_LISTEN="127.0.0.1:$HTTP" \
        HERENOW_ADMIN_LISTEN="127.0.0.1:$ADMIN" HERENOW_CHAT_PING_S="$PING_S" \
        HERENOW_CHAT_MAX_CONNS=$((VISITORS + 1000)) HERENOW_RATE_LIMIT=0 HERENOW_LOG_LEVEL=warn \
        "$BIN/herenow-collector"
    pid_var="HN_PID_collector$run"
    COL_PID=${!pid_var}
    hn_wait_for 10 "collector ready" curl -fsS "$A/readyz"
    # the dashboard, open for the whole round
    CONVS=$HN_TMP/convs.$run
    hn_spawn "dash$run" env HN_CHAT_TOKEN="$TOKEN" "$BIN/hn-chatdash" --api "127.0.0.1:$API_PORT" \
        --path "$STREAM_PATH" --collector "127.0.0.1:$HTTP" --key "$KEY" --convs "$CONVS" \
        --rate "$VISITOR_RATE" --duration "$DURATION" --grace "$GRACE" --threads "$THREADS" --seed "$run" \
        --redis "127.0.0.1:$HN_REDIS_PORT" --tail "$STREAM"
    pid_var="HN_PID_dash$run"
    DASH_PID=${!pid_var}
    hn_wait_for 60 "hn-chatdash: the dashboard's stream has its snapshot" grep -q '^ready' "$HN_TMP/dash$run.log"

    # -- 2. the sessions (new ones each round: no conversation open on them yet)
    SIDS=$HN_TMP/sids.$run
    live0=$(live_count)
    seed_out=$("$BIN/hn-ssefeed" --to "127.0.0.1:$UDP" --key "$KEY" --mode seed --sessions "$VISITORS" \
        --seed "$((run * 7919))" --sids-out "$SIDS")
    hn_wait_for 30 "$VISITORS new sessions live" bash -c "[ \$(redis-cli -p $HN_REDIS_PORT ZCOUNT 'hn:live:{$WID}' '($(( $(date +%s%3N) - 300000 ))' +inf) -ge $((live0 + VISITORS)) ]"
    hn_wait_for 30 "collector wrote every beacon" bash -c \
        "[ \$(curl -fsS $A/metrics | awk '\$1 == \"herenow_records_written_total\" { print \$2 }') -ge $VISITORS ]"

    # -- 3. the downlinks
    sleep 1     # the collector settles after the seed (its buffers), so the baseline is its resting state
    rss0=$(status_kb "$COL_PID" VmRSS); inuse0=$(tcp_inuse); tmem0=$(tcp_mem_kb); fds0=$(ls "/proc/$COL_PID/fd" | wc -l)
    tc0=$(now_s); k0=$(cpu_ticks "$COL_PID")
    hn_spawn "client$run" "$BIN/hn-chatclient" --to "127.0.0.1:$HTTP" --key "$KEY" --sids "$SIDS" \
        --connect-rate "$CONNECT_RATE" --duration 3600 --ready-timeout 120 \
        --redis "127.0.0.1:$HN_REDIS_PORT" --ref-rate 100
    pid_var="HN_PID_client$run"
    CL_PID=${!pid_var}
    hn_wait_for 150 "hn-chatclient: every downlink live (or failed)" grep -q '^ready' "$HN_TMP/client$run.log"
    tc1=$(now_s); k1=$(cpu_ticks "$COL_PID")
    ready=$(grep '^ready' "$HN_TMP/client$run.log")
    sleep 1
    rss1=$(status_kb "$COL_PID" VmRSS); inuse1=$(tcp_inuse); tmem1=$(tcp_mem_kb); fds1=$(ls "/proc/$COL_PID/fd" | wc -l)
    open_metric=$(metric "$A" herenow_chat_downlinks_open)
    say "round $run: $(kv live "$ready")/$VISITORS downlinks live in $(kv t_ms "$ready") ms; collector RSS $((rss0 / 1024)) → $((rss1 / 1024)) MB"

    # -- 4. idle, pings only
    kill -USR1 "$CL_PID"
    i0=$(cpu_ticks "$COL_PID"); ti0=$(now_s)
    sleep "$IDLE"
    i1=$(cpu_ticks "$COL_PID"); ti1=$(now_s)
    kill -USR1 "$CL_PID"
    rss2=$(status_kb "$COL_PID" VmRSS)
    hn_wait_for 5 "hn-chatclient marks" bash -c "[ \$(grep -c '^mark' '$HN_TMP/client$run.log') -ge 2 ]"
    mark0=$(grep '^mark' "$HN_TMP/client$run.log" | sed -n 1p)
    mark1=$(grep '^mark' "$HN_TMP/client$run.log" | sed -n 2p)

    # -- 5. the agents
    d0=$(cpu_ticks "$COL_PID"); a0=$(cpu_ticks "$API_PID"); r0=$(cpu_ticks "$REDIS_PID"); td0=$(now_s)
    drive_out=$(HN_CHAT_TOKEN="$TOKEN" "$BIN/hn-chatdrive" --to "127.0.0.1:$API_PORT" --sids "$SIDS" \
        --targets "$TARGETS" --rate "$RATE" --duration "$DURATION" --threads "$THREADS" --seed "$run" \
        --convs-out "$CONVS" 2>"$HN_TMP/drive$run.err") || { hn_fail "round $run: hn-chatdrive"; cat "$HN_TMP/drive$run.err"; }
    d1=$(cpu_ticks "$COL_PID"); a1=$(cpu_ticks "$API_PID"); r1=$(cpu_ticks "$REDIS_PID"); td1=$(now_s)
    sed 's/^/  /' "$HN_TMP/drive$run.err" | head -5

    # -- 6. the last messages, then the report
    sleep "$GRACE"
    rss3=$(status_kb "$COL_PID" VmRSS)
    curl -fsS "$A/metrics" | grep -E '^herenow_chat' >"$HN_TMP/col-metrics.$run" || true

    # -- 7. the visitors answer; the dashboard measures
    v0=$(cpu_ticks "$COL_PID"); va0=$(cpu_ticks "$API_PID"); vr0=$(cpu_ticks "$REDIS_PID"); tv0=$(now_s)
    kill -USR1 "$DASH_PID"
    hn_wait_for $((${DURATION%.*} + ${GRACE%.*} + 60)) "hn-chatdash: the visitors' messages sent and shown" \
        grep -q '^overall' "$HN_TMP/dash$run.log"
    v1=$(cpu_ticks "$COL_PID"); va1=$(cpu_ticks "$API_PID"); vr1=$(cpu_ticks "$REDIS_PID"); tv1=$(now_s)
    hn_stop "$DASH_PID" 10 || true
    vis=$(grep '^overall' "$HN_TMP/dash$run.log" | sed 's/^overall //' || true)
    [ -n "$vis" ] || { hn_fail "round $run: hn-chatdash reported"; tail -5 "$HN_TMP/dash$run.log"; }
    { grep -v -e '^ready' -e '^overall' "$HN_TMP/dash$run.log" || true; } | sed 's/^/  /' | head -5

    # -- 8. the client's report
    hn_stop "$CL_PID" 30 || true
    overall=$(grep '^overall' "$HN_TMP/client$run.log" || true)
    [ -n "$overall" ] || { hn_fail "round $run: hn-chatclient reported"; tail -5 "$HN_TMP/client$run.log"; }
    col_alive=1
    hn_alive "$COL_PID" || col_alive=0
    hn_assert_eq "round $run: herenow-collector still running" 1 "$col_alive"
    hn_stop "$COL_PID" 20 || true

    live_n=$(kv live "$overall")
    case "$live_n" in '' | *[!0-9]*) live_n=0 ;; esac
    idle_s=$(awk -v a="$ti0" -v b="$ti1" 'BEGIN { printf "%.3f", b - a }')
    drive_s=$(awk -v a="$td0" -v b="$td1" 'BEGIN { printf "%.3f", b - a }')
    per() { awk -v d="$1" -v n="$live_n" 'BEGIN { printf "%.0f", (n > 0 ? d * 1024 / n : 0) }'; }
    distinct=$(( $(kv timed "$overall") - $(kv dups "$overall") ))
    line="run=$run live=$live_n connect_s=$(awk -v a="$tc0" -v b="$tc1" 'BEGIN { printf "%.2f", b - a }')"
    line+=" connect_cpu_s=$(awk -v t=$((k1 - k0)) -v k="$CLK_TCK" 'BEGIN { printf "%.2f", t / k }')"
    line+=" rss0_kb=$rss0 rss1_kb=$rss1 rss2_kb=$rss2 rss3_kb=$rss3 b_per_dl=$(per $((rss1 - rss0))) b_per_dl_idle=$(per $((rss2 - rss0)))"
    line+=" fds=$((fds1 - fds0)) open_metric=$open_metric tcp_inuse=$((inuse1 - inuse0)) tcp_mem_kb=$((tmem1 - tmem0))"
    line+=" idle_s=$idle_s idle_cpu_pct=$(pct $((i1 - i0)) "$idle_s") idle_pings=$(( $(kv pings "$mark1") - $(kv pings "$mark0") ))"
    line+=" idle_pings_min=$(kv pings_min "$mark1") drive_s=$drive_s col_cpu_pct=$(pct $((d1 - d0)) "$drive_s")"
    line+=" api_cpu_pct=$(pct $((a1 - a0)) "$drive_s") redis_cpu_pct=$(pct $((r1 - r0)) "$drive_s")"
    line+=" distinct=$distinct lost=$(( $(kv ok "$drive_out") - distinct )) col_alive=$col_alive"
    vis_s=$(awk -v a="$tv0" -v b="$tv1" 'BEGIN { printf "%.3f", b - a }')
    line+=" vis_col_cpu_pct=$(pct $((v1 - v0)) "$vis_s") vis_api_cpu_pct=$(pct $((va1 - va0)) "$vis_s") vis_redis_cpu_pct=$(pct $((vr1 - vr0)) "$vis_s")"
    line+=" vis_$(sed 's/ / vis_/g' <<<"$vis") drive_$(sed 's/ / drive_/g' <<<"$drive_out") $overall"
    echo "$line" >>"$RES"
    say "round $run: idle $(kv b_per_dl_idle "$line") B/downlink, idle CPU $(kv idle_cpu_pct "$line") %;" \
        "p50 $(kv p50_ms "$overall") ms, p99 $(kv p99_ms "$overall") ms (PUBLISH p99 $(kv pub_p99_ms "$overall") ms);" \
        "sent $(kv sent "$drive_out"), 201 $(kv ok "$drive_out"), received $distinct, dups $(kv dups "$overall");" \
        "visitor → dashboard p50 $(kv vis_p50_ms "$line") ms, p99 $(kv vis_p99_ms "$line") ms (stream tail p99 $(kv vis_tail_p99_ms "$line") ms);" \
        "answers sent $(kv vis_sent "$line"), accepted $(kv vis_ok "$line"), shown $(kv vis_shown "$line"), lost $(kv vis_lost "$line")"
done
hn_stop "$API_PID" 20 || true

# ---- report -----------------------------------------------------------------------------------------
med() { while read -r l; do kv "$1" "$l"; done <"$RES" | bench_median; }
runs_of() { while read -r l; do kv "$1" "$l"; done <"$RES" | paste -sd/ | sed 's#/# / #g'; }
sum_of() { while read -r l; do kv "$1" "$l"; done <"$RES" | awk '{ s += $1 } END { print s + 0 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.0f", a / b; else print "nan" }'; }
P99=$(med p99_ms)
VP99=$(med vis_p99_ms)
IDLE_B=$(med b_per_dl_idle)
MET=$(awk -v a="$P99" -v t="$TARGET_P99_MS" 'BEGIN { print (a >= 0 && a <= t) ? "met" : "**missed**" }')
MET_V=$(awk -v a="$VP99" -v t="$TARGET_VIS_P99_MS" -v l="$(sum_of vis_lost)" 'BEGIN { print (a >= 0 && a <= t && l == 0) ? "met" : "**missed**" }')
MET_B=$(awk -v a="$IDLE_B" -v t="$TARGET_IDLE_B" 'BEGIN { print (a <= t) ? "met" : "**missed**" }')
T_TOTAL=$(( $(date +%s) - T_START ))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
OUT=$HN_TMP/section.md
{
    echo "$SECTION"
    echo
    echo "Run $START_DATE on $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r),"
    echo "Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'); load average before $LOAD_BEFORE, after $LOAD_AFTER; commit $GIT_ID;"
    echo "herenow-collector built $BUILD_ID. The client, the driver, the collector, herenow-api, Redis and"
    echo "PostgreSQL share the cores; loopback only. The whole run took $T_TOTAL s."
    echo
    echo "Command: \`$CMDLINE\` — $RUNS round(s), each with a fresh herenow-collector (HERENOW_CHAT_PING_S=$PING_S,"
    echo "HERENOW_CHAT_MAX_CONNS=$((VISITORS + 1000)), HERENOW_RATE_LIMIT=0) and $VISITORS new live sessions (one page view"
    echo "each over UDP); hn-chatclient opens one \`GET /v?k=…&s=…\` per session ($CONNECT_RATE/s) and holds them: $IDLE s"
    echo "idle (pings only), then hn-chatdrive opens a conversation on $TARGETS of the sessions and sends $RATE agent"
    echo "messages/s for $DURATION s (\`POST …/sessions/:sid/messages\`, $THREADS keep-alive connections, each message to a"
    echo "random one of them, text \`t=<µs> n=<k>\`). *delay*: CLOCK_REALTIME when the client read the \`message\` event"
    echo "− t, taken right before the driver wrote the request (so the api's whole call is in it). Then the visitors"
    echo "answer: hn-chatdash sends $VISITOR_RATE visitor messages/s for $DURATION s, each to a random one of the conversations, as"
    echo "beacons \`t=msg\` with \`ci\` = the conversation (HTTP \`POST /b\`, the chat script's path; $THREADS keep-alive"
    echo "connections, a session's messages one at a time), while it holds the widget's live stream (\`GET …/active-visitors/stream\`,"
    echo "Bearer token, open from before the seed to the end of the round, so the hub also watches during the agents'"
    echo "messages). *visitor → dashboard*: CLOCK_REALTIME when the stream's \`update\` showed the session's"
    echo "\`messages_sent\` reach the message's number − the time taken right before the beacon's request was written"
    echo "(one process, one clock). Medians over the rounds."
    echo
    echo "| | median | rounds |"
    echo "|---|---|---|"
    echo "| downlinks live (of $VISITORS) / time to open them all, s | $(med live) / $(med connect_s) | $(runs_of live) |"
    echo "| **collector memory per idle downlink, bytes** (VmRSS after $IDLE s idle − before, / downlinks; target ≤ $TARGET_IDLE_B) | **$IDLE_B** | $(runs_of b_per_dl_idle) |"
    echo "| … right after they opened, bytes | $(med b_per_dl) | $(runs_of b_per_dl) |"
    echo "| collector VmRSS: before / all open / after idle / at the end, MB | $(awk -v a="$(med rss0_kb)" -v b="$(med rss1_kb)" -v c="$(med rss2_kb)" -v d="$(med rss3_kb)" 'BEGIN { printf "%.1f / %.1f / %.1f / %.1f", a / 1024, b / 1024, c / 1024, d / 1024 }') | |"
    echo "| kernel TCP memory (/proc/net/sockstat \`mem\`, both ends), KiB more / TCP sockets more | $(med tcp_mem_kb) / $(med tcp_inuse) | $(runs_of tcp_mem_kb) (KiB) |"
    echo "| collector file descriptors more / herenow_chat_downlinks_open | $(med fds) / $(med open_metric) | |"
    echo "| **collector CPU while idle, % of one core** ($IDLE s, a ping every $PING_S s on every downlink) | **$(med idle_cpu_pct)** | $(runs_of idle_cpu_pct) |"
    echo "| pings received over the idle time (all downlinks) / fewest on one downlink by its end | $(med idle_pings) / $(med idle_pings_min) | |"
    echo "| collector CPU, s, to open all downlinks | $(med connect_cpu_s) | $(runs_of connect_cpu_s) |"
    echo "| conversations opened (of $TARGETS) / open failures (all rounds) | $(med drive_opened) / $(sum_of drive_open_failed) | |"
    echo "| messages sent / answered 201 / received (distinct) | $(med drive_sent) / $(med drive_ok) / $(med distinct) | |"
    echo "| **messages lost** (201 − received) / **duplicated** / gaps in n, all rounds | **$(sum_of lost)** / **$(sum_of dups)** / $(sum_of gaps) | $(runs_of lost) (lost) |"
    echo "| **delay agent → visitor p50 / p99, ms** (target p99 ≤ $TARGET_P99_MS) | $(med p50_ms) / **$P99** | $(runs_of p99_ms) (p99) |"
    echo "| delay p90 / p99.9 / max, ms | $(med p90_ms) / $(med p999_ms) / $(med max_ms) | $(runs_of max_ms) (max) |"
    echo "| the api call (POST …/messages) p50 / p99, ms | $(med drive_call_p50_ms) / $(med drive_call_p99_ms) | $(runs_of drive_call_p99_ms) (p99) |"
    echo "| reference: Redis PUBLISH → SUBSCRIBE p50 / p99, ms | $(med pub_p50_ms) / $(med pub_p99_ms) | $(runs_of pub_p99_ms) (p99) |"
    echo "| reference: Redis XADD → a waiting XREAD BLOCK p50 / p99, ms | $(med xadd_p50_ms) / $(med xadd_p99_ms) | $(runs_of xadd_p99_ms) (p99) |"
    echo "| delay / PUBLISH → SUBSCRIBE, p50 and p99 | $(ratio "$(med p50_ms)" "$(med pub_p50_ms)") × / $(ratio "$P99" "$(med pub_p99_ms)") × | |"
    echo "| client's own loop lag p99, ms (10 ms timer) | $(med lag_p99_ms) | $(runs_of lag_p99_ms) |"
    echo "| CPU while the agents send, % of one core: collector / herenow-api / Redis | $(med col_cpu_pct) / $(med api_cpu_pct) / $(med redis_cpu_pct) | |"
    echo "| driver: messages/s achieved / latest send behind schedule, ms | $(med drive_rate) / $(med drive_late_max_ms) | |"
    echo "| disconnects / failed downlinks (all rounds) | $(sum_of disconnected) / $(sum_of failed) | |"
    echo "| **delay visitor → dashboard p50 / p99, ms** (target p99 ≤ $TARGET_VIS_P99_MS) | $(med vis_p50_ms) / **$VP99** | $(runs_of vis_p99_ms) (p99) |"
    echo "| delay p90 / p99.9 / max, ms | $(med vis_p90_ms) / $(med vis_p999_ms) / $(med vis_max_ms) | $(runs_of vis_max_ms) (max) |"
    echo "| visitor messages sent / accepted (200) / shown on the dashboard | $(med vis_sent) / $(med vis_ok) / $(med vis_shown) | |"
    echo "| **visitor messages lost** (accepted, count not shown within $GRACE s of the last) / counts above those sent, all rounds | **$(sum_of vis_lost)** / $(sum_of vis_unmatched) | $(runs_of vis_lost) (lost) |"
    echo "| counts shown / of them a jump by more than one (messages of one session in one tick) | $(med vis_counted) / $(med vis_jumps) | |"
    echo "| the beacon's call (POST /b, answered once taken, before Redis) p50 / p99, ms | $(med vis_call_p50_ms) / $(med vis_call_p99_ms) | $(runs_of vis_call_p99_ms) (p99) |"
    echo "| reference: beacon sent → its record read from $STREAM by a waiting XREAD BLOCK p50 / p99, ms | $(med vis_tail_p50_ms) / $(med vis_tail_p99_ms) | $(runs_of vis_tail_p99_ms) (p99) |"
    echo "| the api's share of p50 (delay − tail) / its design floor (tick/2), ms; p99 / (tail p99 + one tick) | $(awk -v a="$(med vis_p50_ms)" -v b="$(med vis_tail_p50_ms)" 'BEGIN { printf "%.1f", a - b }') / $((TICK_MS / 2)); $(awk -v a="$VP99" -v b="$(med vis_tail_p99_ms)" -v t="$TICK_MS" 'BEGIN { printf "%.2f", a / (b + t) }') | |"
    echo "| reference: Redis PUBLISH → SUBSCRIBE p99 over the round, ms; visitor → dashboard p99 / it | $(med pub_p99_ms); $(ratio "$VP99" "$(med pub_p99_ms)") × | |"
    echo "| CPU while the visitors send, % of one core: collector / herenow-api / Redis | $(med vis_col_cpu_pct) / $(med vis_api_cpu_pct) / $(med vis_redis_cpu_pct) | |"
    echo "| visitors: messages/s achieved / latest send behind schedule, ms; dashboard stream: events read / disconnects (all rounds) | $(med vis_rate) / $(med vis_late_max_ms); $(med vis_events) / $(sum_of vis_disconnects) | |"
    echo
    echo "Against the targets: memory per idle downlink $IDLE_B B ≤ $TARGET_IDLE_B B: $MET_B; agent → visitor p99 $P99 ms ≤"
    echo "$TARGET_P99_MS ms: $MET; lost $(sum_of lost), duplicated $(sum_of dups) over all rounds; visitor → dashboard p99 $VP99 ms"
    echo "≤ $TARGET_VIS_P99_MS ms and none lost: $MET_V (lost $(sum_of vis_lost) over all rounds)."
    echo
    echo "A ping round (\`: ping\` written to all $VISITORS downlinks at once, every $PING_S s) costs the collector about"
    echo "$(awk -v c="$(med idle_cpu_pct)" -v p="$PING_S" 'BEGIN { printf "%.0f", c / 100 * p * 1000 }') ms of CPU (idle CPU × $PING_S s); a message that comes while its worker writes a round waits"
    echo "for it, which is where the delay's tail most likely comes from (p99 − p50 = $(awk -v a="$P99" -v b="$(med p50_ms)" 'BEGIN { printf "%.0f", a - b }') ms, while the api call's p99 is"
    echo "$(med drive_call_p99_ms) ms). HERENOW_CHAT_PING_S defaults to 25 s: a fifth as many rounds."
    echo
    echo "The collector's memory per downlink is its VmRSS (/proc/<pid>/status) difference over the downlinks"
    echo "live, user space only: the libevent connection, its buffers and the downlink's own state. The kernel's"
    echo "socket memory is apart: sockstat's \`mem\` counts pages of TCP buffers in use on the whole machine (both"
    echo "ends of each loopback connection; idle sockets hold next to none), the socket structures themselves are"
    echo "slab memory not counted there. The references run in a thread of hn-chatclient with blocking connections"
    echo "of their own (100 a second each, during the whole round): PUBLISH → SUBSCRIBE is the plain Redis"
    echo "push, XADD → XREAD BLOCK the same hop herenow uses (the api's XADD hn:chat:{w}, the collector's XREAD);"
    echo "the rest of the delay is the api's call (its PostgreSQL transaction first) and the collector's SSE"
    echo "write. HERENOW_DRAIN=off: the chat's writes do not need the drain, and the drain's own cost is"
    echo "\`make bench-drain\`'s; the live hub reads Redis (the stream and the session hashes), not PostgreSQL."
    echo
    echo "Visitor → dashboard: the collector answers the beacon once it has taken it and writes the session's"
    echo "\`HINCRBY messages_sent\` and the stream record in one pipeline at its next flush; the api's live hub reads"
    echo "the stream every HERENOW_SSE_TICK_MS ($TICK_MS ms), re-reads the sessions it marked and sends what changed, one"
    echo "\`update\` per session per tick: a count that grew by two in one tick shows two messages at once, and each"
    echo "gets its own delay. The reference is a thread of hn-chatdash with a blocking connection of its own, reading"
    echo "the widget's stream shard (its \`?t=\` in the message text): the delay before the api could know. The design"
    echo "floor of the hub is about that plus half a tick at the median and a tick at p99 (docs/BENCHMARKS.md's live"
    echo "stream section). The target (≤ 1 s, issue 14) is for a message to reach the agent's dashboard."
    echo
    echo "<details><summary>Every round (key=value)</summary>"
    echo
    echo '```'
    cat "$RES"
    echo '```'
    echo
    echo "The collector's chat metrics at the end of each round:"
    echo
    echo '```'
    for r in $(seq 1 "$RUNS"); do
        echo "# round $r"
        cat "$HN_TMP/col-metrics.$r" 2>/dev/null || true
    done
    echo '```'
    echo
    echo "</details>"
} >"$OUT"
cat "$OUT"
if [ -n "$BENCH_DOC" ]; then
    bench_write_section "$SECTION" "$OUT" "$BENCH_DOC"
    say "wrote \"$SECTION\" in $BENCH_DOC"
fi
hn_done
