#!/usr/bin/env bash
# test_drain_legacy.sh: the drain's legacy sweep (api/drain/legacy.c) on a
# real Redis and PostgreSQL. A deployment moves to HERENOW_STREAM_SHARDS=2
# with records left under names it no longer writes: hn:stream:0 (N = 1),
# hn:stream:1 (an untagged N = 2, with an entry pending for a consumer that
# is gone), the tags of N = 3, and a copy of hn:stream:0 (a spool replayed:
# records already there). Every record lands in PostgreSQL exactly once
# with the ones on the current names, the legacy keys are deleted, the
# current ones stay, herenow_drain_legacy_streams goes back to 0, and a key
# of another type under hn:stream:* is left alone.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

CTL="$HN_BIN/herenowctl"
hn_start_stores
read -r WA KA <<<"$(hn_widget_add --name "Legacy A" --domain a.example.com)"
read -r WB KB <<<"$(hn_widget_add --name "Legacy B" --domain b.example.com)"

UDP=$(hn_free_port)
ADMIN=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_WIDGET_REFRESH_MS=300 HERENOW_THREADS=2
export HERENOW_DRAIN_CLAIM_IDLE_MS=300 HERENOW_DRAIN_RETRY_MAX_MS=300 HERENOW_DRAIN_BLOCK_MS=100
export HERENOW_STREAM_KEEP_MS=0 HERENOW_DRAIN_THREADS=2

cmetric() {
    curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
written() { cmetric herenow_records_written_total; }
rows() { hn_psql "SELECT (SELECT count(*) FROM widget_page_views) + (SELECT count(*) FROM widget_visitor_events)"; }
rows_are() { [ "$(rows)" = "$1" ]; }
send() {   # send KEY SESSION: a page view and an event
    "$CTL" send --to "127.0.0.1:$UDP" --key "$1" --session "$2" --type pv --url "https://x.example.com/$2" >/dev/null
    "$CTL" send --to "127.0.0.1:$UDP" --key "$1" --session "$2" --type ev --event clicked --seq 2 >/dev/null
}
# collector SHARDS SESSION-PREFIX: a collector of that N writes 4 records
# (two per widget) and stops; prints how many it wrote.
col_n=0
collector() {
    col_n=$((col_n + 1))
    hn_spawn "col$col_n" env HERENOW_STREAM_SHARDS="$1" "$HN_BIN/herenow-collector"
    local -n pid="HN_PID_col$col_n"
    hn_wait_for 10 "collector N=$1 ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
    send "$KA" "${2}A0001"
    send "$KB" "${2}B0001"
    hn_wait_for 20 "collector N=$1: 4 records in Redis" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMIN/metrics | awk '\$1 == \"herenow_records_written_total\" { print \$2 }') -ge 4 ]"
    COL_WRITTEN=$(written)
    hn_stop "$pid"
}
keys() { hn_redis --scan --pattern 'hn:stream:*' | sort | tr '\n' ' '; }

# --- 1. the old names -----------------------------------------------------------------
collector 1 one
hn_assert_eq "N=1 writes hn:stream:0" "hn:stream:0 " "$(keys)"
total=$COL_WRITTEN
collector 3 three
total=$((total + COL_WRITTEN))
three_keys=$(keys)
hn_assert_cmd "N=3 writes tagged names" grep -q 'hn:stream:{' <<<"$three_keys"
# the widgets' shards under N = 3 (ids mod 3); one of them becomes the
# untagged hn:stream:1 an old N = 2 wrote
legacy_tagged=""
for k in $three_keys; do
    [ "$k" = hn:stream:0 ] && continue
    if [ -z "${renamed:-}" ]; then renamed=$k; hn_redis RENAME "$k" hn:stream:1 >/dev/null
    else legacy_tagged="$legacy_tagged $k"; fi
done
hn_assert_eq "hn:stream:1 made from $renamed" 1 "$(hn_redis EXISTS hn:stream:1)"
# an old drain of N = 2 read one entry of hn:stream:1 and died
hn_redis XGROUP CREATE hn:stream:1 drain 0 >/dev/null
hn_redis XREADGROUP GROUP drain gone-consumer COUNT 1 STREAMS hn:stream:1 '>' >/dev/null
hn_assert_eq "one entry pending for a consumer that is gone" 1 "$(hn_redis XPENDING hn:stream:1 drain | head -1)"
# a spool replayed: the same records again under a name of N = 5
hn_redis COPY hn:stream:0 'hn:stream:{4.7}' >/dev/null
# an entry that does not decode, on a legacy key: a reject like any other
hn_redis XADD hn:stream:1 '*' r 'not msgpack' >/dev/null
# not a stream: never touched
hn_redis SET hn:stream:junk keep >/dev/null
hn_assert_eq "nothing in PostgreSQL yet" 0 "$(rows)"

# --- 2. N = 2: collector and drain ------------------------------------------------------
export HERENOW_STREAM_SHARDS=2
old_keys=$(keys)
hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector N=2 ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
send "$KA" twoA0001
send "$KB" twoB0001
hn_wait_for 20 "collector N=2: 4 records in Redis" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMIN/metrics | awk '\$1 == \"herenow_records_written_total\" { print \$2 }') -ge 4 ]"
total=$((total + $(written)))
current=$(comm -13 <(tr ' ' '\n' <<<"$old_keys" | grep .) <(keys | tr ' ' '\n' | grep .) | tr '\n' ' ')
hn_assert_eq "N=2 writes two tagged names" 2 "$(wc -w <<<"$current")"

hn_start_api
ametric() { curl -fsS "$HN_API_URL/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'; }
hn_wait_for 30 "all $total records in PostgreSQL" rows_are "$total"
want_keys=$(printf '%s\n' $current hn:stream:junk | sort | tr '\n' ' ')
keys_are() { [ "$(keys)" = "$1" ]; }
hn_wait_for 15 "every legacy key drained and deleted" keys_are "$want_keys"
hn_wait_for 10 "herenow_drain_legacy_streams back to 0" bash -c "[ \"\$(curl -fsS $HN_API_URL/metrics | awk '\$1 == \"herenow_drain_legacy_streams\" { print \$2 }')\" = 0 ]"
hn_assert_eq "exactly once: no event id twice" 0 \
    "$(hn_psql "SELECT (SELECT count(*) - count(DISTINCT event_id) FROM widget_page_views) + (SELECT count(*) - count(DISTINCT event_id) FROM widget_visitor_events)")"
hn_assert_eq "every session of every name" "oneA0001 oneB0001 threeA0001 threeB0001 twoA0001 twoB0001" \
    "$(hn_psql "SELECT string_agg(session_id, ' ' ORDER BY session_id) FROM widget_visitor_sessions")"
hn_assert_eq "each session: one page view, one event" 6 \
    "$(hn_psql "SELECT count(*) FROM widget_visitor_sessions WHERE page_views = 1 AND events_count = 1")"
hn_assert_eq "the bad entry rejected under its legacy key" "hn:stream:1" \
    "$(hn_psql "SELECT string_agg(stream, ' ') FROM drain_rejects")"
hn_assert_cmd "the pending entry of the gone consumer was claimed" grep -q "event=drain_legacy_claimed key='hn:stream:1'" "$HN_TMP/api.log"
hn_assert_eq "found 4 legacy keys, deleted 4" "4 4" \
    "$(grep -c 'event=drain_legacy_stream ' "$HN_TMP/api.log") $(grep -c 'event=drain_legacy_deleted ' "$HN_TMP/api.log")"
hn_assert_eq "the key of another type is left alone" keep "$(hn_redis GET hn:stream:junk)"
hn_assert_eq "the current names keep their group" "drain drain" \
    "$(for k in $current; do hn_redis XINFO GROUPS "$k" | sed -n 2p; done | tr '\n' ' ' | sed 's/ $//')"

# --- 3. a legacy name written while the drain runs (a spool replayed later) --------------
before=$(rows)
# a copy of a current key's entries (drained already), without the group
hn_redis COPY "$(set -- $current; echo "$1")" hn:stream:7 >/dev/null
hn_redis XGROUP DESTROY hn:stream:7 drain >/dev/null
hn_assert_cmd "hn:stream:7 holds entries" test "$(hn_redis XLEN hn:stream:7)" -ge 1
hn_wait_for 15 "the late legacy key is found and deleted" bash -c "[ \"\$(redis-cli -p $HN_REDIS_PORT EXISTS hn:stream:7)\" = 0 ]"
hn_assert_eq "its records were there already: no row added" "$before" "$(rows)"
send "$KA" lateA0001
hn_wait_for 10 "the current names still drain" rows_are $((before + 2))
hn_assert_eq "herenow_drain_legacy_streams 0" 0 "$(ametric herenow_drain_legacy_streams)"
rc=0
hn_stop "$HN_PID_api" || rc=$?
hn_assert_eq "api exits 0 on SIGTERM" 0 "$rc"
hn_done
