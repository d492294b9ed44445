#!/usr/bin/env bash
# test_collector.sh: the UDP collector against a real Redis (and PostgreSQL
# for herenowctl): widget pick-up, presence contents, stream records, live
# window expiry, counted drops, SIGTERM.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

CTL="$HN_BIN/herenowctl"
hn_start_stores

UDP=$(hn_free_port)
ADMIN=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_WIDGET_REFRESH_MS=300 HERENOW_TRIM_INTERVAL_MS=200 HERENOW_THREADS=2

# metric NAME{labels}: its value in /metrics (0 when absent).
metric() {
    curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
metric_ge() { [ "$(metric "$1")" -ge "$2" ]; }
send() { "$CTL" send --to "127.0.0.1:$UDP" "$@" >/dev/null; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

start_collector() {
    hn_spawn collector "$HN_BIN/herenow-collector" "$@"
    hn_wait_for 10 "collector /livez answers" curl -fsS "http://127.0.0.1:$ADMIN/livez"
}

# --- a bad setting stops the start with a message naming it
for bad in "--threads 999" "--udp-listen nonsense" "--redis-url http://x" "--ip-mode partial" "--live-window-s 10 --active-s 20"; do
    rc=0
    msg=$("$HN_BIN/herenow-collector" $bad 2>&1) || rc=$?
    hn_assert_eq "collector $bad: exit 2" 2 "$rc"
    case "$msg" in
        *"herenow-collector: "*) hn_ok "collector $bad: says why ($(printf '%s' "$msg" | head -1))" ;;
        *) hn_fail "collector $bad: no clear message: $msg" ;;
    esac
done
hn_assert_cmd "--help lists HERENOW_UDP_LISTEN with its default" \
    bash -c "'$HN_BIN/herenow-collector' --help | grep -q \"HERENOW_UDP_LISTEN.*default '0.0.0.0:7470'\""

# --- a widget added while the collector runs is picked up within the refresh interval
start_collector
hn_wait_for 10 "collector /readyz turns 200" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
out=$("$CTL" widget add --name "Test site" --domain example.com)
KEY=$(printf '%s\n' "$out" | awk '/^key:/ { print $2 }')
WID=$(printf '%s\n' "$out" | awk '/^id:/ { print $2 }')
hn_assert_cmd "widget add printed a key and an id" test -n "$KEY" -a -n "$WID"
t0=$(now_ms)
accepted_after_send() { send --key "$KEY" --type hb --session probe0001 --seq 1; metric_ge 'herenow_beacons_accepted_total{transport="udp"}' 1; }
hn_wait_for 5 "a beacon of the new widget is accepted" accepted_after_send && hn_ok "a beacon of the new widget is accepted"
t1=$(now_ms)
hn_assert_cmd "accepted within refresh interval + 1 s ($((t1 - t0)) ms)" test $((t1 - t0)) -le 1300
hn_redis DEL "hn:sess:{$WID}:probe0001" >/dev/null
hn_redis ZREM "hn:live:{$WID}" probe0001 >/dev/null
base_acc=$(metric 'herenow_beacons_accepted_total{transport="udp"}')
base_rec=$("$CTL" stream count)

# --- many sessions: exact presence contents
# A: 10 whole scripted visits (7 beacons each, ending with `end`)
# B: 15 sessions with 3 page views each; C: 10 sessions with 2 heartbeats of 1500 ms
for i in $(seq -w 1 10); do send --key "$KEY" --session "sessionA$i" --script; done
for i in $(seq -w 1 15); do
    send --key "$KEY" --session "sessionB$i" --type pv --url "https://example.com/b/$i" --title "Page $i" \
        --referrer "https://ref.example/" --count 3
done
for i in $(seq -w 1 10); do send --key "$KEY" --session "sessionC$i" --type hb --engaged 1500 --count 2; done
N=$((10 * 7 + 15 * 3 + 10 * 2))
hn_wait_for 10 "all $N beacons acknowledged by Redis" metric_ge herenow_records_written_total $((base_acc + N))
hn_assert_eq "accepted counter" $((base_acc + N)) "$(metric 'herenow_beacons_accepted_total{transport="udp"}')"
hn_assert_eq "records in the stream" $((base_rec + N)) "$("$CTL" stream count)"
hn_assert_eq "event ids unique" $((base_rec + N)) "$("$CTL" stream dump | grep -o '"event_id":"[^"]*"' | sort -u | wc -l)"
hn_assert_eq "every record carries the widget id" $((base_rec + N)) "$("$CTL" stream dump | grep -c "\"widget\":$WID,")"

members=$(hn_redis ZRANGE "hn:live:{$WID}" 0 -1 | sort | tr '\n' ' ')
want=$( (for i in $(seq -w 1 15); do echo "sessionB$i"; done; for i in $(seq -w 1 10); do echo "sessionC$i"; done) | sort | tr '\n' ' ')
hn_assert_eq "live set = sessions B and C (A ended)" "$want" "$members"

bad=0
for i in $(seq -w 1 15); do
    k="hn:sess:{$WID}:sessionB$i"
    got="$(hn_redis HMGET "$k" pageviews url landing title referrer status | tr '\n' '|')"
    exp="3|https://example.com/b/$i|https://example.com/b/$i|Page $i|https://ref.example/|active|"
    [ "$got" == "$exp" ] || { bad=$((bad + 1)); echo "# $k: $got"; }
    ttl=$(hn_redis TTL "$k")
    { [ "$ttl" -gt 10000 ] && [ "$ttl" -le 10200 ]; } || { bad=$((bad + 1)); echo "# $k: ttl $ttl"; }
    [ -n "$(hn_redis HGET "$k" started)" ] || bad=$((bad + 1))
    [ "$(hn_redis HGET "$k" ip)" == "127.0.0.0" ] || { bad=$((bad + 1)); echo "# $k: ip not masked"; }
done
hn_assert_eq "B sessions: fields, safety TTL in (10000, 10200], masked ip" 0 "$bad"
bad=0
for i in $(seq -w 1 10); do
    got="$(hn_redis HMGET "hn:sess:{$WID}:sessionC$i" engaged_ms status pageviews | tr '\n' '|')"
    [ "$got" == "3000|active||" ] || { bad=$((bad + 1)); echo "# sessionC$i: $got"; }
    got="$(hn_redis HMGET "hn:sess:{$WID}:sessionA$i" status pageviews has_chatted | tr '\n' '|')"
    [ "$got" == "gone|2|1|" ] || { bad=$((bad + 1)); echo "# sessionA$i: $got"; }
    [ -n "$(hn_redis ZSCORE "hn:ended:{$WID}" "sessionA$i")" ] || { bad=$((bad + 1)); echo "# sessionA$i: not in hn:ended"; }
done
hn_assert_eq "C sessions sum engaged time; A sessions ended (in hn:ended), chatted, 2 page views" 0 "$bad"

# --- on a cluster: a second widget whose keys live on another master than the first's
if hn_cluster_mode; then
    MW=$(hn_cluster_master_of "hn:live:{$WID}")
    for _ in 1 2 3 4 5 6 7 8; do
        read -r W2 K2 <<<"$(hn_widget_add --name "Second site" --domain second.example)"
        [ "$(hn_cluster_master_of "hn:live:{$W2}")" = "$MW" ] || break
    done
    hn_cluster_two_masters "widgets $WID and $W2" "hn:live:{$WID}" "hn:live:{$W2}"
    w2_known() { send --key "$K2" --session second00 --type pv --url https://second.example/; [ -n "$(hn_redis ZSCORE "hn:live:{$W2}" second00)" ]; }
    hn_wait_for 5 "widget $W2 is picked up" w2_known
    for i in 1 2 3 4 5; do send --key "$K2" --session "second0$i" --type pv --url "https://second.example/$i" --count 2; done
    w2_live() { [ "$(hn_redis ZCARD "hn:live:{$W2}")" = 6 ]; }
    hn_wait_for 5 "widget $W2: 6 live sessions" w2_live && hn_ok "widget $W2 (master $(hn_cluster_master_of "hn:live:{$W2}")): its 6 sessions live"
    hn_assert_eq "widget $W2: its 10 page views in the stream, each once" 10 \
        "$("$CTL" stream dump | grep "\"widget\":$W2," | grep '"s":"second0[1-5]"' | grep -o '"event_id":"[^"]*"' | sort | uniq | wc -l)"
    hn_assert_eq "widget $W2: the page views of its sessions" "2|https://second.example/3" \
        "$(hn_redis HMGET "hn:sess:{$W2}:second03" pageviews url | tr '\n' '|' | sed 's/|$//')"
    hn_assert_eq "widget $WID's live set untouched by $W2's" 25 "$(hn_redis ZCARD "hn:live:{$WID}")"
fi

# --- an end that reaches Redis after a later beacon of its session (another
# thread or node flushed that one first) leaves the session live
w0=$(metric herenow_records_written_total)
send --key "$KEY" --session sessionO01 --type pv --url https://example.com/next --seq 3
hn_wait_for 5 "the page view is written" metric_ge herenow_records_written_total $((w0 + 1))
send --key "$KEY" --session sessionO01 --type end --seq 2
hn_wait_for 5 "the late end is written" metric_ge herenow_records_written_total $((w0 + 2))
got="$(hn_redis ZSCORE "hn:live:{$WID}" sessionO01 | grep -c .)|$(hn_redis HMGET "hn:sess:{$WID}:sessionO01" status url q | tr '\n' '|')"
hn_assert_eq "a late end (q=2 after q=3) leaves the session live and active" "1|active|https://example.com/next|3|" "$got"
hn_assert_eq "... and out of hn:ended" "" "$(hn_redis ZSCORE "hn:ended:{$WID}" sessionO01)"
send --key "$KEY" --session sessionO01 --type end --seq 4
o01_gone() { [ "$(hn_redis HGET "hn:sess:{$WID}:sessionO01" status)" == gone ] && [ -z "$(hn_redis ZSCORE "hn:live:{$WID}" sessionO01)" ]; }
hn_wait_for 5 "its own end (q=4) ends it" o01_gone && hn_ok "the session's own end (q=4) ends it: gone, out of the live set"

# --- bad input is counted under its reason and the collector keeps serving
printf '\xc1\xc1garbage' | "$HN_BIN/hn-udpsend" 127.0.0.1 "$UDP"
head -c 9000 /dev/zero | "$HN_BIN/hn-udpsend" 127.0.0.1 "$UDP"
printf '\x81\xa1v\x01' | "$HN_BIN/hn-udpsend" 127.0.0.1 "$UDP"        # {v:1}: no k
send --key nosuchwidget --session sessX0001
hn_wait_for 5 "malformed counted" metric_ge 'herenow_beacons_dropped_total{transport="udp",reason="malformed"}' 1 && hn_ok "malformed datagram counted under reason=malformed"
hn_wait_for 5 "too_large counted" metric_ge 'herenow_beacons_dropped_total{transport="udp",reason="too_large"}' 1 && hn_ok "too_large datagram counted under reason=too_large"
hn_wait_for 5 "missing_field counted" metric_ge 'herenow_beacons_dropped_total{transport="udp",reason="missing_field"}' 1 && hn_ok "missing_field datagram counted under reason=missing_field"
hn_wait_for 5 "unknown_widget counted" metric_ge 'herenow_beacons_dropped_total{transport="udp",reason="unknown_widget"}' 1 && hn_ok "unknown_widget datagram counted under reason=unknown_widget"
acc=$(metric 'herenow_beacons_accepted_total{transport="udp"}')
send --key "$KEY" --session sessY0001
hn_wait_for 5 "still accepting after bad input" metric_ge 'herenow_beacons_accepted_total{transport="udp"}' $((acc + 1)) && hn_ok "a good beacon after the bad ones is accepted"
hn_assert_cmd "collector still alive" hn_alive "$HN_PID_collector"
rc=0; hn_stop "$HN_PID_collector" 10 || rc=$?
hn_assert_eq "SIGTERM exits 0" 0 "$rc"

# --- a session whose beacons stop leaves the live set after the live window
export HERENOW_LIVE_WINDOW_S=3 HERENOW_ACTIVE_S=1 HERENOW_REDIS_TIMEOUT_MS=500
start_collector
hn_wait_for 10 "collector ready again" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
t0=$(now_ms)
send --key "$KEY" --session sessW0001 --type pv --url https://example.com/w
in_live() { [ -n "$(hn_redis ZSCORE "hn:live:{$WID}" sessW0001)" ]; }
not_in_live() { ! in_live; }
hn_wait_for 5 "short-window session is live" in_live
ttl=$(hn_redis TTL "hn:sess:{$WID}:sessW0001")
hn_assert_cmd "its hash has the safety TTL (95 < $ttl <= 102)" test "$ttl" -gt 95 -a "$ttl" -le 102
hn_wait_for 10 "it leaves the live set" not_in_live && hn_ok "the quiet session left the live set"
t1=$(now_ms)
hn_assert_cmd "not before the 3 s window ($((t1 - t0)) ms)" test $((t1 - t0)) -ge 3000
hn_assert_eq "its hash was deleted with it" 0 "$(hn_redis EXISTS "hn:sess:{$WID}:sessW0001")"
hn_assert_eq "B and C sessions were trimmed too" 0 "$(hn_redis ZCARD "hn:live:{$WID}")"
ended_gone() { [ "$(hn_redis ZCARD "hn:ended:{$WID}")" = 0 ]; }
hn_wait_for 10 "ended sessions are cleaned after the grace period" ended_gone && hn_ok "hn:ended emptied after the grace period"
hn_assert_eq "no session hash left behind" "" "$(hn_redis_at "hn:live:{$WID}" --scan --pattern "hn:sess:{$WID}:*" | grep -v sessZ || true)"

# more stale sessions than one trim round takes (1000): all go, hashes too
trimmed0=$(metric herenow_sessions_trimmed_total)
# hash first, then the live-set member: a trim round that runs while the
# pipe is fed must never see a member whose hash is still to come
for i in $(seq 1 2500); do
    printf 'HSET hn:sess:{%s}:stale%06d status active\nZADD hn:live:{%s} 1 stale%06d\n' "$WID" "$i" "$WID" "$i"
done | hn_redis_at "hn:live:{$WID}" --pipe >/dev/null
all_trimmed() { [ "$(hn_redis ZCARD "hn:live:{$WID}")" = 0 ]; }
hn_wait_for 10 "2500 stale sessions trimmed" all_trimmed && hn_ok "2500 stale sessions left the live set (several trim rounds)"
hn_assert_eq "their hashes were deleted" 0 "$(hn_redis_at "hn:live:{$WID}" --scan --pattern "hn:sess:{$WID}:stale*" | wc -l)"
hn_assert_cmd "herenow_sessions_trimmed_total grew by at least 2500" \
    test "$(metric herenow_sessions_trimmed_total)" -ge $((trimmed0 + 2500))

if hn_cluster_skip "Redis restart and SIGSTOP of the one Redis (test_cluster.sh kills and fails over masters)"; then :; else
    # --- Redis restarts: the collector stays ready (its spool takes the beacons), keeps what it
    # accepted, and writes it once Redis is back (the restarted Redis is empty: no persistence in tests)
    "$HN_ROOT/scripts/redis.sh" stop "$HN_TMP/redis" >/dev/null
    spooling() { curl -fsS "http://127.0.0.1:$ADMIN/readyz" 2>/dev/null | grep -q spooling; }
    hn_wait_for 10 "readyz says it is spooling while Redis is down" spooling &&
        hn_ok "readyz stays 200 while Redis is down, and says it is spooling"
    acc0=$(metric 'herenow_beacons_accepted_total{transport="udp"}')
    wr0=$(metric herenow_records_written_total)
    sp0=$(metric herenow_spool_written_records_total)
    send --key "$KEY" --session sessR0001 --type hb --count 50
    hn_wait_for 5 "beacons accepted while Redis is down" metric_ge 'herenow_beacons_accepted_total{transport="udp"}' $((acc0 + 50)) &&
        hn_ok "50 beacons accepted while Redis is down"
    hn_wait_for 5 "the 50 go to the spool" metric_ge herenow_spool_written_records_total $((sp0 + 50)) &&
        hn_ok "the 50 beacons were spooled"
    hn_assert_eq "none written yet" "$wr0" "$(metric herenow_records_written_total)"
    "$HN_ROOT/scripts/redis.sh" start --fast "$HN_TMP/redis" "$HN_REDIS_PORT" >/dev/null
    hn_wait_for 10 "readyz 200 again" curl -fsS "http://127.0.0.1:$ADMIN/readyz" && hn_ok "readyz is 200 once Redis is back"
    refreshed_empty() { grep -q 'event=widgets_empty_kept' "$HN_TMP/collector.log"; }
    hn_wait_for 5 "the collector read the empty hn:widgets" refreshed_empty &&
        hn_ok "an emptied hn:widgets does not make known widgets unknown (widgets_empty_kept)"
    "$CTL" widget sync >/dev/null
    hn_wait_for 10 "the buffered beacons are written after the reconnect" metric_ge herenow_records_written_total $((wr0 + 50)) &&
        hn_ok "the 50 buffered beacons were written after the reconnect"
    hn_assert_eq "exactly those 50 records are in the new Redis's stream" 50 "$("$CTL" stream count)"

    # --- Redis hangs (SIGSTOP): the reply timeout drops the connection; nothing accepted is lost
    RPID=$(cat "$HN_TMP/redis/redis.pid")
    acc0=$(metric 'herenow_beacons_accepted_total{transport="udp"}')
    kill -STOP "$RPID"
    send --key "$KEY" --session sessH0001 --type hb --count 40
    timed_out() { metric_ge herenow_redis_timeouts_total 1; }
    hn_wait_for 10 "a reply timeout while Redis hangs" timed_out && hn_ok "Redis hanging: reply timeout counted"
    hn_assert_eq "the 40 beacons were accepted meanwhile" $((acc0 + 40)) "$(metric 'herenow_beacons_accepted_total{transport="udp"}')"
    kill -CONT "$RPID"
    written_all() { metric_ge herenow_records_written_total "$(metric 'herenow_beacons_accepted_total{transport="udp"}')"; }
    hn_wait_for 10 "everything accepted is written once Redis answers again" written_all &&
        hn_ok "Redis answering again: everything accepted was written"
    hn_assert_eq "each of the 40 is in the stream (by event id; resent pipelines may repeat one)" 40 \
        "$("$CTL" stream dump | grep '"s":"sessH0001"' | grep -o '"event_id":"[^"]*"' | sort -u | wc -l)"
fi

hn_promtool "promtool check metrics accepts the collector's /metrics" "http://127.0.0.1:$ADMIN/metrics"

# --- SIGTERM right after a burst: nothing accepted is left unwritten
before=$("$CTL" stream count)
M=4000
"$CTL" send --to "127.0.0.1:$UDP" --key "$KEY" --session sessZ0001 --type hb --count $M >/dev/null
rc=0; hn_stop "$HN_PID_collector" 20 || rc=$?
hn_assert_eq "SIGTERM after a burst exits 0" 0 "$rc"
hn_assert_eq "all $M beacons of the burst are in the stream" $((before + M)) "$("$CTL" stream count)"
hn_assert_cmd "the collector logged a clean stop" grep -q 'event=stopped clean=1' "$HN_TMP/collector.log"

hn_done
