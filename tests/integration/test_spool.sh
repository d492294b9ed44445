#!/usr/bin/env bash
# test_spool.sh: the collector's spool against a real Redis — beacons taken
# while Redis is down go to worker-N.spool and reach Redis in order once it is
# back; a stop while Redis is down keeps the spool for the next start; a
# damaged tail (crash mid-write) is cut off, reported and the rest replayed;
# files of worker ids that no longer exist are adopted; herenowctl spool
# inspect|replay; a full spool drops with reason spool_full (HTTP 503).
#
# The load-level guarantees (Redis killed for 20 s under load, collector
# kill -9 while spooling) are in test_outage.sh.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

CTL="$HN_BIN/herenowctl"
hn_start_stores
out=$("$CTL" widget add --name "Spool test" --domain example.com)
KEY=$(printf '%s\n' "$out" | awk '/^key:/ { print $2 }')

UDP=$(hn_free_port)
HTTP=$(hn_free_port)
ADMIN=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_WIDGET_REFRESH_MS=300 HERENOW_THREADS=2 HERENOW_RATE_LIMIT=0
export HERENOW_SPOOL_FSYNC=always
SPOOL=$HERENOW_SPOOL_DIR
UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'

metric() {
    curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { printf "%.0f\n", v + 0 }'
}
metric_is() { [ "$(metric "$1")" = "$2" ]; }
metric_ge() { [ "$(metric "$1")" -ge "$2" ]; }
send() { "$CTL" send --to "127.0.0.1:$UDP" --key "$KEY" "$@" >/dev/null; }
# pixels SID N: page views q=1..N of session SID, over one keep-alive
# connection (one worker: the order the spool keeps is a worker's order);
# prints the statuses.
pixels() {
    local args=() q
    for q in $(seq 1 "$2"); do
        args+=(-o /dev/null "http://127.0.0.1:$HTTP/p.gif?v=1&k=$KEY&s=$1&t=pv&q=$q&u=https%3A%2F%2Fexample.com%2F$q")
    done
    curl -s -w '%{http_code} ' -A "$UA" "${args[@]}"
}
redis_down() { "$HN_ROOT/scripts/redis.sh" stop "$HN_TMP/redis" >/dev/null; }
redis_up() {
    "$HN_ROOT/scripts/redis.sh" start --fast "$HN_TMP/redis" "$HN_REDIS_PORT" >/dev/null
    "$CTL" widget sync >/dev/null      # the restarted Redis is empty (no persistence in tests)
}
start_collector() {
    hn_spawn collector "$HN_BIN/herenow-collector" "$@"
    local -n pid=HN_PID_collector
    CPID=$pid
    hn_wait_for 10 "collector /livez answers" curl -fsS "http://127.0.0.1:$ADMIN/livez"
}
stop_collector() {
    local rc=0
    hn_stop "$CPID" 20 || rc=$?
    hn_assert_eq "the collector stopped cleanly (exit 0)" 0 "$rc"
}
stream_count() { "$CTL" stream count; }
# q values of session $1 in stream order, one per line
stream_qs() { "$CTL" stream dump | grep "\"s\":\"$1\"" | grep -o '"q":[0-9]*' | cut -d: -f2; }
spool_bytes_on_disk() { cat "$SPOOL"/worker-*.spool 2>/dev/null | wc -c; }

start_collector
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"

# --- 1. Redis down: beacons are accepted and spooled, in order -------------------------------
redis_down
hn_wait_for 10 "the workers see Redis gone" metric_is herenow_redis_connections_up 0
send --session spoolA0001 --type pv --count 400
codes=$(pixels spoolP0001 30)
hn_assert_eq "30 pixels while Redis is down: all answered (200, the GIF)" "$(printf '200 %.0s' $(seq 1 30))" "$codes"
hn_wait_for 10 "430 records spooled" metric_ge herenow_spool_written_records_total 430 &&
    hn_ok "430 records spooled while Redis is down"
hn_assert_eq "nothing dropped" 0 "$(metric 'herenow_beacons_dropped_total{transport="udp",reason="redis_unavailable"}')"
hn_assert_eq "spool_records gauge is 430" 430 "$(metric herenow_spool_records)"
hn_assert_cmd "readyz stays 200 and says it is spooling" bash -c \
    "curl -fsS http://127.0.0.1:$ADMIN/readyz | grep -q spooling"
ins=$("$CTL" spool inspect)
echo "$ins" | sed 's/^/# /'
hn_assert_cmd "spool inspect counts 430 records" bash -c "echo '$ins' | grep -q '^total .* records=430 '"
hn_assert_cmd "spool inspect sees the files held by the collector" bash -c "echo '$ins' | grep -q 'in_use=yes'"
rc=0; "$CTL" spool replay >"$HN_TMP/replay.out" 2>&1 || rc=$?
hn_assert_eq "spool replay is refused while a collector holds the files" 1 "$rc"
hn_assert_cmd "and says why" grep -q "in use" "$HN_TMP/replay.out"

redis_up
hn_wait_for 15 "the spool is replayed" metric_ge herenow_spool_replayed_records_total 430 &&
    hn_ok "430 records replayed from the spool once Redis is back"
hn_wait_for 5 "the spool files are emptied" bash -c "[ \$(cat $SPOOL/worker-*.spool | wc -c) = 0 ]" &&
    hn_ok "the spool files are empty once Redis acknowledged everything"
hn_assert_eq "spool_records gauge back to 0" 0 "$(metric herenow_spool_records)"
hn_assert_eq "430 records in the stream" 430 "$(stream_count)"
hn_assert_eq "UDP session: q 1..400 in order in the stream" "$(seq 1 400 | tr '\n' ' ')" "$(stream_qs spoolA0001 | tr '\n' ' ')"
hn_assert_eq "pixel session: q 1..30 in order in the stream" "$(seq 1 30 | tr '\n' ' ')" "$(stream_qs spoolP0001 | tr '\n' ' ')"
# the files are empty a moment before every worker has left spool mode
hn_wait_for 5 "every worker has left spool mode" metric_is herenow_spool_active 0
send --session spoolB0001 --type pv --count 10
hn_wait_for 10 "new traffic goes straight to Redis again" bash -c "[ \$($CTL stream count) = 440 ]" &&
    hn_ok "after the replay new beacons go straight to Redis"
hn_assert_eq "and not through the spool" 430 "$(metric herenow_spool_written_records_total)"

# --- 2. stopped while Redis is down: the spool is kept and replayed at the next start ---------
redis_down
hn_wait_for 10 "the workers see Redis gone" metric_is herenow_redis_connections_up 0
send --session spoolC0001 --type pv --count 200
hn_wait_for 10 "200 spooled" metric_ge herenow_spool_written_records_total 630
stop_collector
hn_assert_cmd "the stop says the spool is kept" grep -q "event=spool_kept" "$HN_TMP/collector.log"
hn_assert_cmd "the spool files hold the 200" bash -c "$CTL spool inspect | grep -q '^total .* records=200 '"
hn_assert_cmd "inspect: no longer in use" bash -c "! $CTL spool inspect | grep -q in_use=yes"
redis_up
start_collector
hn_wait_for 15 "the kept spool is replayed at start" bash -c "[ \$($CTL stream count) = 200 ]" &&
    hn_ok "the 200 kept records were replayed by the next collector"
hn_assert_eq "in order" "$(seq 1 200 | tr '\n' ' ')" "$(stream_qs spoolC0001 | tr '\n' ' ')"
hn_assert_cmd "the start logged what it found" grep -q "event=spool_found" "$HN_TMP/collector.log"

# --- 3. a damaged tail (a crash mid-write) is cut off and reported; the rest replayed --------
redis_down
hn_wait_for 10 "the workers see Redis gone" metric_is herenow_redis_connections_up 0
for i in 1 2 3 4 5; do send --session "spoolD000$i" --type pv --count 20; done
hn_wait_for 10 "100 spooled" metric_ge herenow_spool_written_records_total 100
stop_collector
biggest=$(ls -S "$SPOOL"/worker-*.spool | head -1)
size=$(stat -c %s "$biggest")
before=$("$CTL" spool inspect --file "$biggest" | awk '/^file=/ { for (i = 1; i <= NF; i++) if ($i ~ /^records=/) print substr($i, 9) }')
truncate -s $((size - 5)) "$biggest"
ins=$("$CTL" spool inspect --file "$biggest")
echo "# $ins"
hn_assert_cmd "inspect reports the damaged tail" bash -c "echo '$ins' | grep -Eq 'tail_bytes=[1-9]'"
# what the whole entries hold, in every file: what must come back (the cut
# entry holds one tick's records, however many sessions that tick had)
whole=$("$CTL" spool inspect | awk '/^total/ { for (i = 1; i <= NF; i++) if ($i ~ /^records=/) print substr($i, 9) }')
redis_up
start_collector
hn_assert_cmd "the start reported the damaged tail" grep -q "event=spool_tail_damaged" "$HN_TMP/collector.log"
hn_assert_cmd "and moved it aside" bash -c "ls $SPOOL/*.bad-* >/dev/null"
hn_assert_cmd "herenow_spool_corrupt_bytes_total counts it" metric_ge herenow_spool_corrupt_bytes_total 1
# (each redis_up starts an empty Redis: the stream holds only what the spool replays)
hn_wait_for 15 "the whole entries are replayed" bash -c "[ \$($CTL stream count) -ge $whole ]"
got=$(stream_count)
echo "# the damaged file held $before records; the whole entries of all files $whole; $got of the 100 reached Redis"
hn_assert_cmd "exactly the whole entries were replayed ($got = $whole of 100; the cut file held $before)" \
    bash -c "[ $got -lt 100 ] && [ $got = $whole ] && [ $got -ge $((100 - before)) ]"

# --- 4. files of worker ids this process does not have are adopted -------------------------
redis_down
hn_wait_for 10 "the workers see Redis gone" metric_is herenow_redis_connections_up 0
send --session spoolE0001 --type pv --count 100
send --session spoolE0002 --type pv --count 100
hn_wait_for 10 "200 spooled" metric_ge herenow_spool_records 200
stop_collector
# as if they were left by a collector that ran with 8 threads
mv "$SPOOL/worker-0.spool" "$SPOOL/worker-5.spool"
mv "$SPOOL/worker-1.spool" "$SPOOL/worker-7.spool"
redis_up
HERENOW_THREADS=1 start_collector
hn_assert_cmd "the single worker adopted worker-5.spool" grep -q "event=spool_adopted worker=0 from='$SPOOL/worker-5.spool'" "$HN_TMP/collector.log"
hn_assert_cmd "and worker-7.spool" grep -q "event=spool_adopted worker=0 from='$SPOOL/worker-7.spool'" "$HN_TMP/collector.log"
hn_wait_for 15 "all 200 replayed" bash -c "[ \$($CTL stream count) = 200 ]" &&
    hn_ok "a collector with fewer threads replayed the spools of worker ids it does not have"
hn_assert_cmd "the adopted files are gone" bash -c "! ls $SPOOL/worker-5.spool $SPOOL/worker-7.spool 2>/dev/null"
hn_assert_eq "each session in order" "$(seq 1 100 | tr '\n' ' ')$(seq 1 100 | tr '\n' ' ')" \
    "$(stream_qs spoolE0001 | tr '\n' ' ')$(stream_qs spoolE0002 | tr '\n' ' ')"
stop_collector

# --- 5. herenowctl spool replay: what a node left behind, sent by hand ----------------------
start_collector              # with Redis up: it needs the widget table from there
redis_down
hn_wait_for 10 "the workers see Redis gone" metric_is herenow_redis_connections_up 0
send --session spoolF0001 --type pv --count 150
hn_wait_for 10 "150 spooled" metric_ge herenow_spool_written_records_total 150
stop_collector
redis_up
out=$("$CTL" spool replay)
echo "$out" | sed 's/^/# /'
hn_assert_cmd "spool replay sent 150 records" bash -c "echo '$out' | grep -q '^total records=150 error_replies=0'"
hn_assert_eq "they are in the stream, in order" "$(seq 1 150 | tr '\n' ' ')" "$(stream_qs spoolF0001 | tr '\n' ' ')"
hn_assert_eq "the files are removed" "" "$(ls "$SPOOL" | grep -v '\.bad-' || true)"
hn_assert_cmd "spool replay with nothing left says so" bash -c "$CTL spool replay | grep -q 'nothing to replay'"

# --- 6. Redis behind but connected (stopped for less than the reply timeout): past
# HERENOW_REDIS_MAX_PENDING bytes in flight the pipelines go to the spool, in order --------------
# (then the same, but Redis stays stopped past the reply timeout: the pipelines in flight are
# taken back and put before the ones already spooled; Redis may still run the ones it had read,
# so a record may be in the stream twice, never out of order after its first appearance)
in_order() {   # stream_qs of $1 are 1..$2, allowing repeats of what came before
    stream_qs "$1" | awk -v n="$2" 'BEGIN { want = 1 } $1 == want { want++; next } $1 < want { next } { bad = 1 } END { exit !(want == n + 1 && !bad) }'
}
HERENOW_REDIS_MAX_PENDING=65536 HERENOW_REDIS_TIMEOUT_MS=3000 start_collector
RPID=$(cat "$HN_TMP/redis/redis.pid")
t0=$(date +%s%N)
kill -STOP "$RPID"
send --session spoolS0001 --type pv --count 2000
hn_wait_for 10 "the excess goes to the spool while the connections stay up" metric_ge herenow_spool_written_records_total 1 &&
    hn_ok "Redis behind: $(metric herenow_spool_written_records_total) records spooled with the connections up"
t1=$(date +%s%N)
if [ $(( (t1 - t0) / 1000000 )) -lt 2500 ]; then
    hn_assert_eq "no reply timeout meanwhile (the connections stayed up)" 0 "$(metric herenow_redis_timeouts_total)"
fi
kill -CONT "$RPID"
hn_wait_for 15 "all 2000 in the stream" bash -c "[ \$($CTL stream dump | grep -c spoolS0001) -ge 2000 ]" &&
    hn_ok "all 2000 reached Redis once it answered again"
hn_assert_eq "in order, each once" "$(seq 1 2000 | md5sum)" "$(stream_qs spoolS0001 | md5sum)"
hn_wait_for 5 "the spool is emptied" metric_is herenow_spool_active 0
kill -STOP "$RPID"
send --session spoolS0002 --type pv --count 2000
hn_wait_for 10 "a reply timeout while Redis stays stopped" metric_ge herenow_redis_timeouts_total 1 &&
    hn_ok "Redis stopped past the reply timeout: the connections are dropped"
hn_wait_for 10 "everything is in the spool" metric_ge herenow_spool_records 2000
kill -CONT "$RPID"
hn_wait_for 15 "all 2000 in the stream" bash -c "[ \$($CTL stream dump | grep -c spoolS0002) -ge 2000 ]" &&
    hn_ok "all 2000 reached Redis once it answered again"
hn_assert_cmd "in order (repeats of earlier ones allowed: $(stream_qs spoolS0002 | wc -l) entries)" in_order spoolS0002 2000
hn_wait_for 5 "the spool is emptied" metric_is herenow_spool_active 0
stop_collector

# --- 7. Redis refusing writes (OOM: maxmemory reached): nothing is counted as written, everything
# waits in the spool, and reaches Redis once it takes writes again ------------------------------------
start_collector
hn_redis CONFIG SET maxmemory 1 >/dev/null
hn_redis CONFIG SET maxmemory-policy noeviction >/dev/null
wr0=$(metric herenow_records_written_total)
send --session spoolO0001 --type pv --count 300
hn_wait_for 10 "the OOM replies drop the connections (retryable)" metric_ge herenow_redis_retryable_errors_total 1 &&
    hn_ok "OOM error replies: the connection is dropped, not the pipelines ($(metric herenow_redis_retryable_errors_total) so far)"
hn_wait_for 10 "all 300 wait in the spool" metric_ge herenow_spool_records 300 &&
    hn_ok "all 300 wait in the spool while Redis refuses writes"
hn_assert_eq "none counted as written" "$wr0" "$(metric herenow_records_written_total)"
hn_redis CONFIG SET maxmemory 0 >/dev/null
hn_wait_for 15 "all 300 in the stream once Redis takes writes" bash -c "[ \$($CTL stream dump | grep -c spoolO0001) -ge 300 ]" &&
    hn_ok "all 300 reached Redis once it took writes again"
hn_assert_cmd "in order (repeats of earlier ones allowed)" in_order spoolO0001 300
hn_wait_for 5 "the spool is emptied" metric_is herenow_spool_active 0
stop_collector

# --- 8. a full spool drops with reason spool_full; HTTP answers 503 ----------------------------
# (one worker: the pixel must meet the full spool, not another worker's)
HERENOW_THREADS=1 HERENOW_SPOOL_MAX_BYTES=65536 start_collector
redis_down
hn_wait_for 10 "the workers see Redis gone" metric_is herenow_redis_connections_up 0
send --session spoolG0001 --type pv --count 3000
hn_wait_for 10 "spool_full drops counted" metric_ge 'herenow_beacons_dropped_total{transport="udp",reason="spool_full"}' 1 &&
    hn_ok "beyond HERENOW_SPOOL_MAX_BYTES beacons are dropped with reason spool_full"
hn_wait_for 10 "a full spool shows in /metrics" metric_ge herenow_spool_full 1
st=$(curl -s -o "$HN_TMP/body" -w '%{http_code}' -A "$UA" "http://127.0.0.1:$HTTP/p.gif?v=1&k=$KEY&s=spoolH0001&t=pv&q=1&u=x")
hn_assert_eq "a pixel while the spool is full gets 503" 503 "$st"
st=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN/readyz")
hn_assert_eq "readyz is 503 while a spool is full" 503 "$st"
acc=$(metric 'herenow_beacons_accepted_total{transport="udp"}')
dropped=$(metric 'herenow_beacons_dropped_total{transport="udp",reason="spool_full"}')
hn_assert_eq "accepted + spool_full = 3000" 3000 $((acc + dropped))
hn_assert_cmd "the file stays near the bound (64 KiB + one flush)" \
    test "$(spool_bytes_on_disk)" -lt $((65536 + 262144))
redis_up
hn_wait_for 15 "the accepted ones are replayed" bash -c "[ \$($CTL stream dump | grep -c spoolG0001) -ge $acc ]" &&
    hn_ok "every accepted beacon ($acc) reached Redis"
stop_collector

hn_done
