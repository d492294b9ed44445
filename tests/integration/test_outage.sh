#!/usr/bin/env bash
# test_outage.sh: nothing accepted is lost through outages and crashes, under
# a steady UDP + HTTP load (hn-steady, tests/tools/steady.c), against real
# Redis, PostgreSQL, collector and herenow-api (drain on):
#
#   a. Redis SIGKILLed for 20 s, restarted from its AOF: rows = sent - drops,
#      exactly once; the collector answered every request (204) and /livez
#   c. PostgreSQL stopped for 60 s: rows = accepted; the drain catches up (timed)
#   d. the drain (herenow-api) kill -9'd ten times at random moments:
#      rows = accepted, no duplicate, every session's counter = its rows
#   b. the collector kill -9'd while spooling (HERENOW_SPOOL_FSYNC=always),
#      restarted on the same spool: what it spooled arrives; under running
#      load the loss is bounded by one scrape interval (see section b)
#
# Each section sends its own beacons (session ids "<section>-NNNNNNNN", q =
# 1..100: one page view row each) and takes its figures from hn-steady's
# counts and the collector's /metrics (deltas over the section), so the
# sections do not depend on each other's numbers.
#
# Redis runs with appendonly yes / appendfsync always from the start (CONFIG
# SET) and is restarted with it: a Redis without persistence that is killed
# comes back empty and loses every stream entry the drain had not read yet —
# no collector or drain can bring those back (docs/OPERATIONS.md: the
# guarantee needs Redis persistence). With the AOF written before each reply,
# whatever Redis acknowledged survives a kill of the process.
#
# A restarted Redis takes a while to load its data, and meanwhile accepts
# connections and answers -LOADING to commands: a production-size dataset
# takes seconds. Section a gives its Redis that load time without the
# memory: 2500 small keys in the AOF's base and Redis's own test setting
# key-load-delay (1 ms per key or command loaded) make it load for ~3-5 s.
# (Section b restarts Redis while the collector is down: no delay there.)
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

CTL="$HN_BIN/herenowctl"
RATE=400                  # beacons/s over UDP + HTTP, half each

hn_start_stores
out=$("$CTL" widget add --name "Outage test" --domain example.com)
KEY=$(printf '%s\n' "$out" | awk '/^key:/ { print $2 }')
REDIS_DIR=$HN_TMP/redis

PORT=$(hn_free_port)
ADMIN=$(hn_free_port)
API=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$PORT HERENOW_HTTP_LISTEN=127.0.0.1:$PORT
export HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN HERENOW_API_LISTEN=127.0.0.1:$API
export HERENOW_THREADS=2 HERENOW_WIDGET_REFRESH_MS=300
# one client address sends everything: no per-client rate limit
export HERENOW_RATE_LIMIT=0
# a dead Redis is noticed within a second, and a connect attempt gives up fast
export HERENOW_REDIS_TIMEOUT_MS=1000 HERENOW_REDIS_CONNECT_TIMEOUT_MS=300
export HERENOW_SPOOL_FSYNC=always
mkdir -p "$HERENOW_SPOOL_DIR"
# drain: a dead consumer's entries are claimed after 300 ms; short backoff;
# the stream trimmed to the group's progress at once
export HERENOW_DRAIN_CLAIM_IDLE_MS=300 HERENOW_DRAIN_RETRY_MAX_MS=300 HERENOW_DRAIN_BLOCK_MS=100
export HERENOW_STREAM_KEEP_MS=0 HERENOW_DRAIN_THREADS=2

now_ms() { echo $(($(date +%s%N) / 1000000)); }
# sleep_until MS: the outages below last a given time; this is that time,
# not a wait for something to happen
sleep_until() { while [ "$(now_ms)" -lt "$1" ]; do sleep 0.1; done; }

# ---- Redis with its AOF ---------------------------------------------------------------

aof_ready() {
    local i
    i=$(hn_redis INFO persistence | tr -d '\r')
    grep -qx 'aof_enabled:1' <<<"$i" && grep -qx 'aof_rewrite_in_progress:0' <<<"$i" &&
        grep -qx 'aof_rewrite_scheduled:0' <<<"$i" && grep -qx 'loading:0' <<<"$i"
}
redis_pid() { head -n1 "$REDIS_DIR/redis.pid"; }
# redis_restart [ARGS...]: the same dir and port, the config scripts/redis.sh
# wrote, plus the AOF (and ARGS); the pidfile is redis.sh's, so its stop (and
# the cleanup) finds this server.
redis_restart() {
    redis-server "$REDIS_DIR/redis.conf" --appendonly yes --appendfsync always "$@" \
        </dev/null >>"$REDIS_DIR/redis.log" 2>&1 &
    echo $! >"$REDIS_DIR/redis.pid"
    hn_wait_for 30 "Redis back on port $HN_REDIS_PORT with its AOF loaded" aof_ready
}
redis_kill9() {
    local pid
    pid=$(redis_pid)
    kill -KILL "$pid"
    while hn_alive "$pid"; do sleep 0.02; done
    wait "$pid" 2>/dev/null || true
}
redis_stop() {
    local pid
    pid=$(redis_pid)
    "$HN_ROOT/scripts/redis.sh" stop "$REDIS_DIR" >/dev/null
    wait "$pid" 2>/dev/null || true
}

for i in $(seq 1 2500); do printf 'SET hn:test:ballast:%d x\n' "$i"; done | hn_redis >/dev/null
hn_redis CONFIG SET appendonly yes >/dev/null
hn_redis CONFIG SET appendfsync always >/dev/null
hn_wait_for 20 "Redis AOF on" aof_ready

# ---- daemons ----------------------------------------------------------------------------

col_n=0
start_collector() {
    col_n=$((col_n + 1))
    hn_spawn "collector$col_n" "$HN_BIN/herenow-collector"
    local -n pid="HN_PID_collector$col_n"
    COL_PID=$pid
    hn_wait_for 15 "collector $col_n answers /livez" curl -fsS --max-time 2 "http://127.0.0.1:$ADMIN/livez"
}
api_n=0
start_api() {
    api_n=$((api_n + 1))
    hn_spawn "api$api_n" "$HN_BIN/herenow-api"
    local -n pid="HN_PID_api$api_n"
    API_PID=$pid
    hn_wait_for 15 "api $api_n answers /livez" curl -fsS --max-time 2 "http://127.0.0.1:$API/livez"
}
kill9() {
    kill -KILL "$1"
    wait "$1" 2>/dev/null || true
}

# ---- metrics ------------------------------------------------------------------------------

cmetrics() { curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN/metrics"; }
ametrics() { curl -fsS --max-time 5 "http://127.0.0.1:$API/metrics"; }
# msum NAME: sum of every sample of NAME (all labels) in the metrics on stdin
msum() { awk -v m="$1" '{ n = $1; sub(/\{.*/, "", n) } n == m { s += $2 } END { printf "%.0f\n", s }'; }
cm() { cmetrics | msum "$1"; }
am() { ametrics | msum "$1"; }

# csnap: one scrape of the collector as "received accepted dropped kernel_drops
# written spool_written" (drops: all reasons; kernel_drops: UDP datagrams
# the kernel dropped at a full socket buffer)
csnap() {
    cmetrics | awk '{ n = $1; sub(/\{.*/, "", n) }
        n == "herenow_beacons_received_total"      { r += $2 }
        n == "herenow_beacons_accepted_total"      { a += $2 }
        n == "herenow_beacons_dropped_total"       { d += $2 }
        n == "herenow_udp_kernel_drops_total"      { k += $2 }
        n == "herenow_records_written_total"       { w += $2 }
        n == "herenow_spool_written_records_total" { sw += $2 }
        END { printf "%.0f %.0f %.0f %.0f %.0f %.0f\n", r, a, d, k, w, sw }'
}
# delta FIELD SNAP0 SNAP1 (FIELD: 1 received, 2 accepted, 3 dropped, 4 kernel, 5 written, 6 spooled)
delta() { echo $(($(echo "$3" | cut -d' ' -f"$1") - $(echo "$2" | cut -d' ' -f"$1"))); }

# ---- the load -----------------------------------------------------------------------------

# steady_start PREFIX [ARGS...]: hn-steady until stopped, UDP + HTTP
steady_start() {
    local p=$1
    shift
    hn_spawn "steady_$p" "$HN_BIN/hn-steady" --key "$KEY" --udp "127.0.0.1:$PORT" --http "127.0.0.1:$PORT" \
        --rate "$RATE" --duration 0 --udp-share 0.5 --prefix "$p" --out "$HN_TMP/steady_$p.out" "$@"
    local -n pid="HN_PID_steady_$p"
    STEADY_PID=$pid
    STEADY_T0=$(now_ms)
}
# since_load: seconds since the load started (to read hn-steady's max_http_latency_at_s)
since_load() { awk -v t="$(($(now_ms) - STEADY_T0))" 'BEGIN { printf "%.1f", t / 1000 }'; }
# steady_stop PREFIX: SIGTERM; it waits for its requests in flight and prints
# its counts. steady_wait PREFIX: the same at the end of its --duration.
steady_stop() {
    kill -TERM "$STEADY_PID"
    steady_wait "$1"
}
steady_wait() {
    local rc=0
    wait "$STEADY_PID" || rc=$?
    hn_assert_eq "hn-steady $1 ended cleanly" 0 "$rc"
}
# sv PREFIX KEY: one of hn-steady's counts
sv() { awk -v k="$2" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$HN_TMP/steady_$1.out"; }
steady_line() { cat "$HN_TMP/steady_$1.out"; }
sent_of() { echo $(($(sv "$1" udp_sent) + $(sv "$1" http_sent))); }
# its progress while it runs (the file is rewritten every second)
steady_sent_now() { [ -s "$HN_TMP/steady_$1.out" ] && sent_of "$1" || echo 0; }
sent_reached() { [ "$(steady_sent_now "$1")" -ge "$2" ]; }

rows() { hn_psql "SELECT count(*) FROM widget_page_views WHERE session_id LIKE '$1-%'"; }
rows_are() { [ "$(rows "$1")" = "$2" ]; }
rows_at_least() { [ "$(rows "$1")" -ge "$2" ]; }
dup_keys() {
    hn_psql "SELECT count(*) FROM (SELECT 1 FROM widget_page_views WHERE session_id LIKE '$1-%'
             GROUP BY session_id, seq HAVING count(*) > 1) x"
}
dup_ids() {
    hn_psql "SELECT count(*) FROM (SELECT 1 FROM widget_page_views WHERE session_id LIKE '$1-%'
             GROUP BY event_id HAVING count(*) > 1) x"
}
# sessions whose page_views counter is not their number of rows (a redelivered
# record counted twice, or a lost update)
bad_sessions() {
    hn_psql "SELECT count(*) FROM widget_visitor_sessions s
               JOIN (SELECT widget_id, session_id, count(*) n FROM widget_page_views
                      WHERE session_id LIKE '$1-%' GROUP BY 1, 2) p USING (widget_id, session_id)
              WHERE s.page_views <> p.n"
}

# received_all SNAP0 N: the collector has taken in N beacons since SNAP0
# (accepted or dropped, the kernel's drops included)
received_all() {
    local s
    s=$(csnap) || return 1
    [ $(($(delta 1 "$1" "$s") + $(delta 4 "$1" "$s"))) -ge "$2" ]
}

# account SECTION PREFIX SNAP0: after the load stopped, figures and checks
# common to the sections where the collector lived throughout: every beacon
# sent is accepted or dropped with a counted reason, and PostgreSQL ends up
# with each accepted one exactly once. Sets ACCEPTED, SENT, DROPPED.
account() {
    local sec=$1 p=$2 s0=$3 s1 timeout=${4:-30}
    SENT=$(sent_of "$p")
    local expect=$((SENT - $(sv "$p" http_errors)))
    hn_wait_for 20 "$sec: the collector took in all $expect beacons sent" received_all "$s0" "$expect" || return 1
    s1=$(csnap)
    ACCEPTED=$(delta 2 "$s0" "$s1")
    DROPPED=$(($(delta 3 "$s0" "$s1") + $(delta 4 "$s0" "$s1")))
    echo "# $sec: sent=$SENT (udp $(sv "$p" udp_sent), http $(sv "$p" http_sent)) accepted=$ACCEPTED dropped=$DROPPED (kernel $(delta 4 "$s0" "$s1"))"
    hn_assert_eq "$sec: sent - dropped = accepted" "$ACCEPTED" "$((SENT - DROPPED))"
    hn_wait_for "$timeout" "$sec: rows = sent - dropped = $((SENT - DROPPED))" rows_are "$p" "$((SENT - DROPPED))" || true
    ROWS_AT_MS=$(now_ms)
    local r
    r=$(rows "$p")
    echo "# $sec: rows=$r"
    hn_assert_eq "$sec: every accepted beacon in PostgreSQL ($ACCEPTED)" "$ACCEPTED" "$r"
    hn_assert_eq "$sec: no (session, q) twice" 0 "$(dup_keys "$p")"
    hn_assert_eq "$sec: no event id twice" 0 "$(dup_ids "$p")"
    hn_assert_eq "$sec: every session's page_views = its rows" 0 "$(bad_sessions "$p")"
}

# http_all_204 SECTION PREFIX: the collector answered every request, 204
http_all_204() {
    hn_assert_eq "$1: no HTTP request failed or timed out" 0 "$(sv "$2" http_errors)"
    hn_assert_eq "$1: every HTTP answer 204 ($(sv "$2" http_sent) requests)" \
        "$(sv "$2" http_sent) 0 0 0" "$(sv "$2" http_204) $(sv "$2" http_503) $(sv "$2" http_4xx) $(sv "$2" http_other)"
    hn_assert_eq "$1: no UDP send refused" 0 "$(sv "$2" udp_errors)"
}

start_collector
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
start_api
hn_wait_for 10 "api ready" curl -fsS "http://127.0.0.1:$API/readyz"
# (read whole first: grep -q ending the pipe early would fail curl under pipefail)
m=$(cmetrics)
SPOOL=0
if grep -q '^herenow_spool_active ' <<<"$m"; then SPOOL=1; fi

echo "# setup done at ${SECONDS} s"
# --- a. Redis killed for 20 s under load ------------------------------------------------------
s0=$(csnap)
disc0=$(cm herenow_redis_disconnects_total)
rerr0=$(cm herenow_redis_errors_total)
rretry0=$(cm herenow_redis_retryable_errors_total)
steady_start a1
hn_wait_for 10 "a: the load reaches PostgreSQL" rows_at_least a1 200
# /livez of the admin port, polled through the outage; each answer in 2 s or a failure
hn_spawn livez bash -c "while :; do curl -s -o /dev/null -w '%{http_code}\n' --max-time 2 http://127.0.0.1:$ADMIN/livez; sleep 0.1; done"
t_kill=$(now_ms)
redis_kill9
echo "# a: Redis SIGKILLed at +$(since_load) s of the load"
hn_wait_for 10 "a: the collector notices Redis gone" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMIN/metrics | awk '\$1 == \"herenow_redis_connections_up\" { print \$2 }') = 0 ]"
sent_down=$(steady_sent_now a1)
sleep_until $((t_kill + 20000))
sent_up=$(steady_sent_now a1)
hn_assert_cmd "a: the load went on while Redis was down ($((sent_up - sent_down)) beacons)" \
    test $((sent_up - sent_down)) -ge $((RATE * 10))
if [ "$SPOOL" = 1 ]; then
    hn_assert_cmd "a: the collector spooled while Redis was down" test "$(cm herenow_spool_written_records_total)" -gt 0
fi
echo "# a: Redis down for $(( $(now_ms) - t_kill )) ms; restarting it at +$(since_load) s"
redis_restart --key-load-delay 1000
echo "# a: Redis up with its AOF at +$(since_load) s"
hn_wait_for 15 "a: the collector reconnects" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMIN/metrics | awk '\$1 == \"herenow_redis_connections_up\" { print \$2 }') = $HERENOW_THREADS ]"
sent_back=$(steady_sent_now a1)
hn_wait_for 15 "a: load after the restart" sent_reached a1 $((sent_back + RATE * 2))
steady_stop a1
hn_stop "$HN_PID_livez" 5 || true
echo "# a: $(steady_line a1)"
http_all_204 a a1
n_livez=$(wc -l <"$HN_TMP/livez.log")
bad_livez=$(grep -vcx 200 "$HN_TMP/livez.log" || true)
echo "# a: /livez polled $n_livez times, $bad_livez without a 200 within 2 s"
hn_assert_cmd "a: /livez polled through the outage (at least 40 times)" test "$n_livez" -ge 40
hn_assert_eq "a: /livez answered 200 every time" 0 "$bad_livez"
hn_assert_cmd "a: the collector's Redis connections were lost" test "$(cm herenow_redis_disconnects_total)" -gt "$disc0"
echo "# a: error replies from Redis to the collector: $(($(cm herenow_redis_errors_total) - rerr0)), and $(($(cm herenow_redis_retryable_errors_total) - rretry0)) retryable ones (LOADING: sent again)"
account a a1 "$s0"
if [ "$SPOOL" = 1 ]; then
    hn_wait_for 10 "a: the spool emptied" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMIN/metrics | awk '\$1 == \"herenow_spool_records\" { print \$2 }') = 0 ]"
fi
hn_wait_for 10 "a: api /readyz 200 again" curl -fsS "http://127.0.0.1:$API/readyz"

echo "# a done at ${SECONDS} s"
# --- c. PostgreSQL stopped for 60 s under load ------------------------------------------------
s0=$(csnap)
retries0=$(ametrics | awk '$1 == "herenow_drain_retries_total{server=\"postgresql\"}" { print $2 }')
steady_start c1
hn_wait_for 10 "c: the load reaches PostgreSQL" rows_at_least c1 200
t_stop=$(now_ms)
"$HN_ROOT/scripts/pg.sh" stop "$HN_TMP/pg" >/dev/null
hn_wait_for 10 "c: api /readyz turns 503 while PostgreSQL is down" bash -c "! curl -fsS --max-time 2 http://127.0.0.1:$API/readyz"
hn_wait_for 10 "c: the drain retries" bash -c "[ \$(curl -fsS http://127.0.0.1:$API/metrics | awk '\$1 == \"herenow_drain_retries_total{server=\\\"postgresql\\\"}\" { print \$2 }') -gt ${retries0:-0} ]"
sleep_until $((t_stop + 60000))
steady_stop c1
lag=$(am herenow_drain_lag_entries)
"$HN_ROOT/scripts/pg.sh" start --fast "$HN_TMP/pg" "$HN_PG_PORT" >/dev/null
t_start=$(now_ms)
behind=$(rows c1)
echo "# c: PostgreSQL was down $((t_start - t_stop)) ms; stream lag $lag entries when it came back"
echo "# c: $(steady_line c1)"
http_all_204 c c1
account c c1 "$s0" 90
behind=$((ACCEPTED - behind))
echo "# c: catch-up: $behind records written in $((ROWS_AT_MS - t_start)) ms after PostgreSQL came back"
hn_assert_cmd "c: the stream backlog grew while PostgreSQL was down" test "$lag" -gt 0
hn_wait_for 10 "c: api /readyz 200 again" curl -fsS "http://127.0.0.1:$API/readyz"
hn_wait_for 10 "c: drain lag back to 0" bash -c "[ \$(curl -fsS http://127.0.0.1:$API/metrics | awk '\$1 == \"herenow_drain_lag_entries\" { print \$2 }') = 0 ]"

echo "# c done at ${SECONDS} s"
# --- d. the drain kill -9'd ten times under load ---------------------------------------------
s0=$(csnap)
steady_start d1
hn_wait_for 10 "d: the load reaches PostgreSQL" rows_at_least d1 200
delays=()
for k in $(seq 1 10); do
    ms=$((200 + RANDOM % 1801))
    delays+=("$ms")
    sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
    kill9 "$API_PID"
    start_api
done
echo "# d: kill -9 after ${delays[*]} ms"
steady_stop d1
echo "# d: $(steady_line d1)"
http_all_204 d d1
account d d1 "$s0"
echo "# d: the last api claimed $(am herenow_drain_claimed_total) entries, found $(am herenow_drain_duplicates_total) records already written"
hn_wait_for 10 "d: nothing left pending" bash -c "[ \"\$(redis-cli -p $HN_REDIS_PORT XPENDING hn:stream:0 drain | head -1)\" = 0 ]"

echo "# d done at ${SECONDS} s"
# --- b. the collector kill -9'd while spooling ---------------------------------------------
# Redis is stopped, so every flush of the collector goes to its spool
# (HERENOW_SPOOL_FSYNC=always: fdatasync before the flush returns).
spool_settled() {   # spool_settled SNAP0 ACCEPTED: all of it in the spool (or in Redis)
    local s
    s=$(csnap) || return 1
    [ $(($(delta 5 "$1" "$s") + $(delta 6 "$1" "$s"))) -ge "$2" ]
}
collector_drained() {   # the spool replayed, the drain caught up
    local m
    m=$(cmetrics) || return 1
    [ "$(msum herenow_spool_records <<<"$m")" = 0 ] && [ "$(msum herenow_spool_active <<<"$m")" = 0 ] &&
        [ "$(am herenow_drain_lag_entries)" = 0 ] &&
        [ "$(redis-cli -p "$HN_REDIS_PORT" XPENDING hn:stream:0 drain | head -1)" = 0 ]
}
if [ "$SPOOL" = 0 ]; then
    echo "# b: skipped - this collector has no spool yet (no herenow_spool_active in its /metrics)"
else
    # b1. load stopped, everything accepted in the spool, then kill -9: all of it arrives
    redis_stop
    hn_wait_for 10 "b1: the collector notices Redis gone" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMIN/metrics | awk '\$1 == \"herenow_redis_connections_up\" { print \$2 }') = 0 ]"
    s0=$(csnap)
    steady_start b1 --duration 4
    hn_wait_for 10 "b1: spooling" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMIN/metrics | awk '\$1 == \"herenow_spool_written_records_total\" { s += \$2 } END { print s + 0 }') -gt $(echo "$s0" | cut -d' ' -f6) ]"
    steady_wait b1
    echo "# b1: $(steady_line b1)"
    http_all_204 b1 b1
    sent=$(sent_of b1)
    hn_wait_for 20 "b1: the collector took in all $sent beacons" received_all "$s0" "$sent"
    acc=$(delta 2 "$s0" "$(csnap)")
    hn_wait_for 10 "b1: all $acc accepted beacons in the spool" spool_settled "$s0" "$acc"
    s1=$(csnap)
    echo "# b1: sent=$sent accepted=$acc spooled=$(delta 6 "$s0" "$s1") written=$(delta 5 "$s0" "$s1") spool files: $(find "$HERENOW_SPOOL_DIR" -type f -printf '%f=%s ')"
    hn_assert_eq "b1: accepted = spooled (Redis was down throughout)" "$acc" "$(delta 6 "$s0" "$s1")"
    kill9 "$COL_PID"
    redis_restart
    start_collector
    hn_wait_for 30 "b1: after the restart, rows = accepted = $acc" rows_are b1 "$acc"
    hn_wait_for 10 "b1: spool replayed and emptied" collector_drained
    hn_assert_eq "b1: records replayed from the spool = spooled" "$acc" "$(cm herenow_spool_replayed_records_total)"
    hn_assert_eq "b1: no damaged spool bytes (killed between writes)" 0 "$(cm herenow_spool_corrupt_bytes_total)"
    hn_assert_eq "b1: spool files emptied" 0 "$(cat "$HERENOW_SPOOL_DIR"/worker-*.spool | wc -c)"
    hn_assert_eq "b1: rows = accepted" "$acc" "$(rows b1)"
    hn_assert_eq "b1: no (session, q) twice" 0 "$(dup_keys b1)"
    echo "# b1: rows=$(rows b1)"

    # b2. kill -9 under running load. Scrapes every 500 ms; the kill follows
    # the last one (S) at once; P is the one before it. The bound:
    #   - rows >= spooled(S): what the spool held by S was fdatasync'ed
    #     (always), so it survives the kill;
    #   - spooled(S) >= accepted(P): the collector flushes within a batch
    #     window (HERENOW_BATCH_WAIT_US, 4 ms), far inside a scrape interval;
    # so rows >= accepted(P), and the loss, accepted(kill) - rows, is at most
    # accepted(kill) - accepted(P): the records accepted within the last
    # scrape interval (in fact only the unflushed batch at the kill).
    redis_stop
    hn_wait_for 10 "b2: the collector notices Redis gone" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMIN/metrics | awk '\$1 == \"herenow_redis_connections_up\" { print \$2 }') = 0 ]"
    s0=$(csnap)
    steady_start b2
    hn_wait_for 10 "b2: spooling" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMIN/metrics | awk '\$1 == \"herenow_spool_written_records_total\" { s += \$2 } END { print s + 0 }') -gt $(echo "$s0" | cut -d' ' -f6) ]"
    ss=$(csnap)
    for k in $(seq 1 $((2 + RANDOM % 6))); do
        sleep 0.5           # the scrape interval
        sp=$ss
        ss=$(csnap)
    done
    kill9 "$COL_PID"
    echo "# b2: collector killed at +$(since_load) s of the load"
    steady_stop b2
    echo "# b2: $(steady_line b2)"
    acc_p=$(delta 2 "$s0" "$sp")
    acc_s=$(delta 2 "$s0" "$ss")
    sw_s=$(delta 6 "$s0" "$ss")
    redis_restart
    start_collector
    hn_wait_for 30 "b2: after the restart, at least the $sw_s spooled records in PostgreSQL" rows_at_least b2 "$sw_s"
    hn_wait_for 20 "b2: spool replayed and emptied" collector_drained
    r=$(rows b2)
    echo "# b2: accepted(P)=$acc_p accepted(S)=$acc_s spooled(S)=$sw_s rows=$r; loss <= accepted(kill) - $acc_p"
    hn_assert_cmd "b2: spooled(S) >= accepted(P): flushed within a scrape interval" test "$sw_s" -ge "$acc_p"
    hn_assert_cmd "b2: rows >= spooled(S)" test "$r" -ge "$sw_s"
    hn_assert_cmd "b2: rows <= beacons the collector could have accepted (udp sent + http 204)" \
        test "$r" -le $(($(sv b2 udp_sent) + $(sv b2 http_204)))
    hn_assert_eq "b2: no (session, q) twice" 0 "$(dup_keys b2)"
    echo "# b2: damaged spool bytes found at the restart: $(cm herenow_spool_corrupt_bytes_total)"
fi

echo "# b done at ${SECONDS} s"
hn_done
