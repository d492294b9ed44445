#!/usr/bin/env bash
# test_drain.sh: the drain worker of herenow-api against real Redis and
# PostgreSQL — every accepted beacon in PostgreSQL exactly once, with every
# session and rollup counter right, through failpoints (kill before COMMIT,
# kill between COMMIT and XACK), kill -9 under load, and PostgreSQL stopped
# under load.
#
# The invariants (check_consistent) tie every derived number to the rows:
# sessions and rollups are recomputed from page views and events in SQL and
# compared with what the drain maintained incrementally.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

CTL="$HN_BIN/herenowctl"
hn_start_stores
out=$("$CTL" widget add --name "Drain test" --domain example.com)
KEY=$(printf '%s\n' "$out" | awk '/^key:/ { print $2 }')
WID=$(printf '%s\n' "$out" | awk '/^id:/ { print $2 }')
# the load of section 4 and 5: on a cluster, a second widget whose keys live on another master
LOADKEYS=$KEY
if hn_cluster_mode; then
    hn_widget_id_apart "$WID"
    read -r WL KL <<<"$(hn_widget_add --name "Drain load" --domain load.example)"
    hn_cluster_two_masters "widgets $WID and $WL" "hn:live:{$WID}" "hn:live:{$WL}"
    LOADKEYS=$KEY,$KL
fi

UDP=$(hn_free_port)
ADMIN=$(hn_free_port)
API=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_WIDGET_REFRESH_MS=300 HERENOW_THREADS=2
# The visits below come from two browsers behind a relay (--ip, --ua): two
# visitors. Beacons without them are the relay's own address and no user
# agent, one visitor hash for all.
export HERENOW_TRUSTED_RELAYS=127.0.0.1/32
export HERENOW_API_LISTEN=127.0.0.1:$API
# a dead consumer's entries are claimed after 300 ms; short backoff
export HERENOW_DRAIN_CLAIM_IDLE_MS=300 HERENOW_DRAIN_RETRY_MAX_MS=300 HERENOW_DRAIN_BLOCK_MS=100
# trims to the group's progress at once (the default keeps 10 s for live readers)
export HERENOW_STREAM_KEEP_MS=0
# two consumers in each api process: they race for entries, sessions and rollup rows
export HERENOW_DRAIN_THREADS=2

hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"

cmetric() {
    curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
ametric() {
    curl -fsS "http://127.0.0.1:$API/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
send() { "$CTL" send --to "127.0.0.1:$UDP" --key "$KEY" "$@" >/dev/null; }
written() { cmetric herenow_records_written_total; }
rows() { hn_psql "SELECT (SELECT count(*) FROM widget_page_views) + (SELECT count(*) FROM widget_visitor_events)"; }
rows_are() { [ "$(rows)" = "$1" ]; }
wait_written() { hn_wait_for 20 "collector: $1 records acknowledged by Redis" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMIN/metrics | awk '\$1 == \"herenow_records_written_total\" { print \$2 }') -ge $1 ]"; }

api_n=0
start_api() {
    api_n=$((api_n + 1))
    hn_spawn "api$api_n" env "$@" "$HN_BIN/herenow-api"
    local -n pid="HN_PID_api$api_n"
    API_PID=$pid
}

# the stream shards (one, hn:stream:0, by default): nothing pending; trimmed
pending() { hn_stream_sum XPENDING drain; }
none_pending() { [ "$(pending)" = 0 ]; }
trimmed() {
    local k
    for k in $(hn_stream_keys); do [ "$(hn_redis XLEN "$k")" -le 1 ] || return 1; done
}

# Every derived number equals what the rows say.
check_consistent() {
    local what=$1 q
    hn_assert_eq "$what: event ids unique" 0 "$(hn_psql "SELECT (SELECT count(*) - count(DISTINCT event_id) FROM widget_page_views) + (SELECT count(*) - count(DISTINCT event_id) FROM widget_visitor_events)")"
    q="WITH pv AS (SELECT widget_id, session_id, count(*) n, sum(engaged_ms) e FROM widget_page_views GROUP BY 1, 2),
        ev AS (SELECT widget_id, session_id, count(*) FILTER (WHERE event_type = 'ev') n,
                      count(*) FILTER (WHERE event_name = 'chat_message_sent' OR event_type = 'msg') msgs,
                      count(*) FILTER (WHERE event_name IN ('chat_opened', 'chat_message_sent', 'invite_accepted')
                                       OR event_type = 'msg') chat,
                      sum(engaged_ms) e FROM widget_visitor_events GROUP BY 1, 2)
        SELECT count(*) FROM widget_visitor_sessions s
          LEFT JOIN pv USING (widget_id, session_id) LEFT JOIN ev USING (widget_id, session_id)
         WHERE s.page_views <> coalesce(pv.n, 0) OR s.events_count <> coalesce(ev.n, 0)
            OR s.engaged_ms <> coalesce(pv.e, 0) + coalesce(ev.e, 0)
            OR s.messages_sent <> coalesce(ev.msgs, 0) OR s.chat_events <> coalesce(ev.chat, 0)
            OR s.has_chatted <> (coalesce(ev.chat, 0) > 0)
            OR s.total_time_seconds <> s.engaged_ms / 1000"
    hn_assert_eq "$what: every session's counters = its rows" 0 "$(hn_psql "$q")"
    hn_assert_eq "$what: one session row per session with rows" \
        "$(hn_psql "SELECT count(*) FROM (SELECT widget_id, session_id FROM widget_page_views UNION SELECT widget_id, session_id FROM widget_visitor_events) x")" \
        "$(hn_psql "SELECT count(*) FROM widget_visitor_sessions")"
    q="SELECT concat_ws(' ', sum(page_views), sum(events), sum(sessions), sum(session_pages), sum(engaged_ms), sum(bounces), sum(chat_sessions), sum(visitors_day)) FROM widget_rollup_hourly"
    local want="$(hn_psql "SELECT concat_ws(' ', (SELECT count(*) FROM widget_page_views), (SELECT count(*) FROM widget_visitor_events WHERE event_type = 'ev'), count(*), sum(page_views), sum(engaged_ms), count(*) FILTER (WHERE page_views < 2), count(*) FILTER (WHERE has_chatted), (SELECT count(*) FROM (SELECT DISTINCT widget_id, (rollup_hour AT TIME ZONE 'UTC')::date, visitor_id FROM widget_visitor_sessions) v)) FROM widget_visitor_sessions")"
    hn_assert_eq "$what: rollup sums (pv ev sessions pages engaged bounces chat visitors) = rows" "$want" "$(hn_psql "$q")"
    hn_assert_eq "$what: page breakdown = page views" "$(hn_psql "SELECT count(*) FROM widget_page_views")" \
        "$(hn_psql "SELECT coalesce(sum(n), 0) FROM widget_rollup_dims WHERE dim = 'page'")"
    hn_assert_eq "$what: referrer breakdown = each session under its landing page's referrer" \
        "$(hn_psql "SELECT string_agg(v || '=' || n, ' ' ORDER BY v) FROM (SELECT hn_referrer_source(referrer) v, count(*) n FROM widget_visitor_sessions GROUP BY 1) x")" \
        "$(hn_psql "SELECT string_agg(value || '=' || n, ' ' ORDER BY value) FROM (SELECT value, sum(n) n FROM widget_rollup_dims WHERE dim = 'referrer' GROUP BY 1 HAVING sum(n) <> 0) x")"
    hn_assert_eq "$what: a session's referrer is its first page view's" 0 \
        "$(hn_psql "SELECT count(*) FROM widget_visitor_sessions s WHERE referrer IS DISTINCT FROM (SELECT referrer FROM widget_page_views p WHERE p.widget_id = s.widget_id AND p.session_id = s.session_id ORDER BY recv_at, seq LIMIT 1) AND page_views > 0")"
    hn_assert_eq "$what: country breakdown = sessions" "$(hn_psql "SELECT count(*) FROM widget_visitor_sessions")" \
        "$(hn_psql "SELECT coalesce(sum(n), 0) FROM widget_rollup_dims WHERE dim = 'country'")"
}

# --- 1. a visit lands whole: rows, session, rollups ---------------------------------
start_api
hn_wait_for 10 "api /livez" curl -fsS "http://127.0.0.1:$API/livez"
hn_wait_for 10 "api /readyz" curl -fsS "http://127.0.0.1:$API/readyz"
base=$(written)
send --session visitA0001 --script --ip 203.0.113.10
send --session visitB0001 --type pv --url "https://example.com/b?x=1#top" --title "B" --count 1 --ip 203.0.113.20
send --session visitB0001 --type ev --event chat_message_sent --seq 2 --prop topic=pricing --ip 203.0.113.20
send --session visitB0001 --type id --visitor-name "Ada Lovelace" --email ada@example.com --seq 3 --ip 203.0.113.20
wait_written $((base + 10))
hn_wait_for 10 "10 rows in PostgreSQL" rows_are 10
hn_assert_eq "session A: pages, events, engaged, active, chat, ended" "2|1|51000|51|f|t|1|https://example.com/|https://example.com/pricing|https://www.google.com/" \
    "$(hn_psql "SELECT page_views, events_count, engaged_ms, total_time_seconds, is_active, has_chatted, chat_events, landing_page, current_page_url, referrer FROM widget_visitor_sessions WHERE session_id = 'visitA0001'")"
hn_assert_eq "session A: ended at its end beacon" t \
    "$(hn_psql "SELECT session_ended_at = (SELECT recv_at FROM widget_visitor_events WHERE session_id = 'visitA0001' AND event_type = 'end') FROM widget_visitor_sessions WHERE session_id = 'visitA0001'")"
hn_assert_eq "session B: identified, one message, still active" "Ada Lovelace|ada@example.com|1|t|t" \
    "$(hn_psql "SELECT visitor_name, visitor_email, messages_sent, has_chatted, is_active FROM widget_visitor_sessions WHERE session_id = 'visitB0001'")"
hn_assert_eq "event props kept as JSON" '{"topic": "pricing"}' \
    "$(hn_psql "SELECT event_data FROM widget_visitor_events WHERE session_id = 'visitB0001' AND event_type = 'ev'")"
hn_assert_eq "page path without query and fragment" "https://example.com/b" \
    "$(hn_psql "SELECT path FROM widget_page_views WHERE session_id = 'visitB0001'")"
hn_assert_eq "rollup: 3 pv, 2 sessions, 2 visitors, 1 bounce, 2 chat sessions" "3|2|2|1|2" \
    "$(hn_psql "SELECT sum(page_views), sum(sessions), sum(visitors_day), sum(bounces), sum(chat_sessions) FROM widget_rollup_hourly WHERE widget_id = $WID")"
hn_assert_eq "breakdown by referrer" "(direct)=1 www.google.com=1" \
    "$(hn_psql "SELECT string_agg(value || '=' || n, ' ' ORDER BY value) FROM widget_rollup_dims WHERE dim = 'referrer' AND n <> 0")"
check_consistent "after one visit"
hn_wait_for 10 "stream trimmed to the group's progress" trimmed
hn_assert_eq "nothing pending" 0 "$(pending)"
hn_promtool "promtool check metrics accepts the api's /metrics with the drain on" "http://127.0.0.1:$API/metrics"
hn_stop "$API_PID"

# --- 2. killed before COMMIT: nothing written; the next process claims and writes ----
base_rows=$(rows)
start_api HERENOW_DRAIN_FAILPOINT=before_commit:1
for i in $(seq -w 1 20); do send --session "failA00$i" --script; done
n=$((20 * 7))
hn_wait_for 10 "drain killed itself before COMMIT" bash -c "! kill -0 $API_PID 2>/dev/null"
wait "$API_PID" 2>/dev/null || true
hn_assert_eq "before_commit: no row of the batch written" "$base_rows" "$(rows)"
hn_assert_cmd "before_commit: the entries are pending" test "$(pending)" -ge 1
start_api
hn_wait_for 15 "after restart: all $n records written" rows_are $((base_rows + n))
check_consistent "killed before commit"
hn_stop "$API_PID"

# --- 3. killed between COMMIT and XACK: redelivery inserts nothing -------------------
base_rows=$(rows)
start_api HERENOW_DRAIN_FAILPOINT=after_commit:1
for i in $(seq -w 1 20); do send --session "failB00$i" --script; done
hn_wait_for 10 "drain killed itself after COMMIT" bash -c "! kill -0 $API_PID 2>/dev/null"
wait "$API_PID" 2>/dev/null || true
committed=$(rows)
hn_assert_cmd "after_commit: the batch is in PostgreSQL ($((committed - base_rows)) rows)" test "$committed" -gt "$base_rows"
hn_assert_cmd "after_commit: and still pending in Redis" test "$(pending)" -ge 1
start_api
hn_wait_for 15 "after restart: all $n records written" rows_are $((base_rows + n))
hn_wait_for 10 "redelivered records counted as duplicates" bash -c "[ \$(curl -fsS http://127.0.0.1:$API/metrics | awk '\$1 == \"herenow_drain_duplicates_total\" { print \$2 }') -ge $((committed - base_rows)) ]"
hn_wait_for 10 "pending drained to 0" none_pending
check_consistent "killed after commit"

# --- 4. kill -9 under load, twice --------------------------------------------------
# "Done" is counted, never guessed: the collector has read every datagram the
# loadgens sent (or the kernel dropped it, counted), written every beacon it
# accepted, and PostgreSQL holds every record written. (Waiting only for rows
# = written once passed mid-stream, on a loaded machine, while the collector
# was still reading its socket's backlog.)
read_or_dropped() { echo $(( $(cmetric herenow_udp_datagrams_total) + $(cmetric herenow_udp_kernel_drops_total) )); }
dgrams0=$(read_or_dropped)
for round in 1 2; do
    hn_spawn "load$round" "$HN_BIN/hn-loadgen" --to "127.0.0.1:$UDP" --widgets "$LOADKEYS" --rate 4000 \
        --duration 3 --sessions 2000 --seed "$round" --beacons-per-datagram 4
    hn_wait_for 10 "load $round: the drain is writing" bash -c "[ \$(curl -fsS http://127.0.0.1:$API/metrics | awk '\$1 == \"herenow_drain_batches_total\" { print \$2 }') -ge 3 ]"
    kill -KILL "$API_PID"
    wait "$API_PID" 2>/dev/null || true
    start_api
    # (the pid expanded here: the variable is not exported, and an empty
    # `kill -0` fails, which once made this wait pass at once)
    load_pid=HN_PID_load$round
    hn_wait_for 15 "load $round: loadgen done" bash -c "! kill -0 ${!load_pid} 2>/dev/null"
done
sent=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^sent_datagrams=/) { split($i, kv, "="); s += kv[2] } } END { print s + 0 }' "$HN_TMP/load1.log" "$HN_TMP/load2.log")
hn_assert_cmd "the two loadgens reported what they sent ($sent datagrams)" test "$sent" -gt 0
all_read() { [ "$(read_or_dropped)" -ge $((dgrams0 + sent)) ]; }
hn_wait_for 30 "the collector read (or counted as dropped) all $sent datagrams" all_read
all_written() { [ "$(written)" -ge "$(cmetric 'herenow_beacons_accepted_total{transport="udp"}')" ]; }
hn_wait_for 30 "the collector wrote every beacon it accepted" all_written
total=$(written)
hn_wait_for 30 "after two kill -9 under load: every record written once ($total)" bash -c "[ \$(${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql -XAt '$HERENOW_DATABASE_URL' -c 'SELECT (SELECT count(*) FROM widget_page_views) + (SELECT count(*) FROM widget_visitor_events)') -eq \$(curl -fsS http://127.0.0.1:$ADMIN/metrics | awk '\$1 == \"herenow_records_written_total\" { print \$2 }') ]"
hn_assert_eq "rows = records the collector wrote" "$(written)" "$(rows)"
check_consistent "kill -9 under load"
if hn_cluster_mode; then
    hn_assert_cmd "both widgets' load is in PostgreSQL (widget $WID: $(hn_psql "SELECT count(*) FROM widget_page_views WHERE widget_id = $WID") page views, $WL: $(hn_psql "SELECT count(*) FROM widget_page_views WHERE widget_id = $WL"))" \
        test "$(hn_psql "SELECT count(DISTINCT widget_id) FROM widget_page_views WHERE widget_id IN ($WID, $WL)")" = 2
fi

# --- 5. PostgreSQL stopped under load: the stream holds, the drain catches up ---------
hn_spawn load3 "$HN_BIN/hn-loadgen" --to "127.0.0.1:$UDP" --widgets "$LOADKEYS" --rate 3000 \
    --duration 4 --sessions 2000 --seed 3 --beacons-per-datagram 4
hn_wait_for 5 "load 3 is flowing" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMIN/metrics | awk '\$1 == \"herenow_records_written_total\" { print \$2 }') -gt $total ]"
"$HN_ROOT/scripts/pg.sh" stop "$HN_TMP/pg" >/dev/null
retries0=$(ametric 'herenow_drain_retries_total{server="postgresql"}')
hn_wait_for 10 "the drain retries while PostgreSQL is down" bash -c "[ \$(curl -fsS http://127.0.0.1:$API/metrics | awk '\$1 == \"herenow_drain_retries_total{server=\\\"postgresql\\\"}\" { print \$2 }') -gt $retries0 ]"
hn_wait_for 5 "api /readyz turns 503 while PostgreSQL is down" bash -c "! curl -fsS http://127.0.0.1:$API/readyz"
hn_wait_for 15 "load 3: loadgen done" bash -c "! kill -0 $HN_PID_load3 2>/dev/null"
hn_assert_cmd "lag grew while PostgreSQL was down" test "$(ametric herenow_drain_lag_entries)" -gt 0
"$HN_ROOT/scripts/pg.sh" start --fast "$HN_TMP/pg" "$HN_PG_PORT" >/dev/null
total=$(written)
hn_wait_for 30 "PostgreSQL back: every record written once ($total)" rows_are "$total"
hn_wait_for 10 "lag drains to 0" bash -c "[ \$(curl -fsS http://127.0.0.1:$API/metrics | awk '\$1 == \"herenow_drain_lag_entries\" { print \$2 }') = 0 ]"
hn_wait_for 10 "api /readyz 200 again" curl -fsS "http://127.0.0.1:$API/readyz"
check_consistent "PostgreSQL outage"
hn_assert_eq "no entry rejected" 0 "$(hn_psql "SELECT count(*) FROM drain_rejects")"

# --- 6. an entry that does not decode is kept in drain_rejects and acked ----------------
hn_redis XADD "$("$CTL" stream key)" '*' r 'not msgpack' >/dev/null
hn_wait_for 10 "bad entry recorded in drain_rejects" bash -c "[ \$(${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql -XAt '$HERENOW_DATABASE_URL' -c 'SELECT count(*) FROM drain_rejects') = 1 ]"
hn_assert_eq "its bytes kept" "not msgpack" "$(hn_psql "SELECT convert_from(raw, 'UTF8') FROM drain_rejects")"
hn_wait_for 10 "and acknowledged" none_pending

# --- 7. retention: partitions older than the longest retention dropped, shorter ones purged ---
out=$("$CTL" widget add --name "Short memory" --domain short.example)
WID2=$(printf '%s\n' "$out" | awk '/^id:/ { print $2 }')
hn_psql "UPDATE widget_configs SET retention_days = 30 WHERE id = $WID2" >/dev/null
hn_psql "UPDATE widget_configs SET retention_days = 60 WHERE id = $WID" >/dev/null
# (on a cluster, the load's second widget too: 60 days stays the longest retention)
! hn_cluster_mode || hn_psql "UPDATE widget_configs SET retention_days = 60 WHERE id = $WL" >/dev/null
hn_psql "SELECT hn_ensure_partitions(current_date - 90, current_date - 1)" >/dev/null
for ago in 80 45 10; do
    for w in "$WID" "$WID2"; do
        hn_psql "INSERT INTO widget_page_views (event_id, recv_at, widget_id, session_id, visitor_id, seq, url, path, transport)
                 VALUES (gen_random_uuid(), now() - interval '$ago days', $w, 'old$ago', 'v', 1, 'https://x/', 'https://x/', 1)" >/dev/null
        hn_psql "INSERT INTO widget_visitor_events (event_id, recv_at, widget_id, session_id, visitor_id, seq, event_type, transport)
                 VALUES (gen_random_uuid(), now() - interval '$ago days', $w, 'old$ago', 'v', 2, 'hb', 1)" >/dev/null
        hn_psql "INSERT INTO widget_visitor_sessions (widget_id, session_id, visitor_id, is_active, last_active_at, session_started_at, rollup_hour)
                 VALUES ($w, 'old$ago', 'v', false, now() - interval '$ago days', now() - interval '$ago days', date_trunc('hour', now() - interval '$ago days'))" >/dev/null
        hn_psql "INSERT INTO widget_rollup_hourly (widget_id, hour, page_views) VALUES ($w, date_trunc('hour', now() - interval '$ago days'), 1)" >/dev/null
    done
done
old_day=$(hn_psql "SELECT to_char(current_date - 80, 'YYYYMMDD')")
hn_assert_cmd "a partition of 80 days ago exists" test -n "$(hn_psql "SELECT to_regclass('widget_page_views_p$old_day')")"
hn_psql "SELECT hn_apply_retention()" >/dev/null
hn_assert_eq "partitions older than the longest retention (60 d) dropped" "" "$(hn_psql "SELECT to_regclass('widget_page_views_p$old_day')")"
hn_assert_eq "and of the events too" "" "$(hn_psql "SELECT to_regclass('widget_visitor_events_p$old_day')")"
hn_assert_eq "30-day widget: its 45-day-old page views purged, 10-day-old kept" "old10" \
    "$(hn_psql "SELECT string_agg(session_id, ' ' ORDER BY session_id) FROM widget_page_views WHERE widget_id = $WID2 AND session_id LIKE 'old%'")"
hn_assert_eq "30-day widget: events likewise" "old10" \
    "$(hn_psql "SELECT string_agg(session_id, ' ' ORDER BY session_id) FROM widget_visitor_events WHERE widget_id = $WID2 AND session_id LIKE 'old%'")"
hn_assert_eq "60-day widget: 45-day-old rows kept" "old10 old45" \
    "$(hn_psql "SELECT string_agg(session_id, ' ' ORDER BY session_id) FROM widget_page_views WHERE widget_id = $WID AND session_id LIKE 'old%'")"
hn_assert_eq "sessions follow each widget's retention" "$WID:old10 $WID:old45 $WID2:old10" \
    "$(hn_psql "SELECT string_agg(widget_id || ':' || session_id, ' ' ORDER BY widget_id, session_id) FROM widget_visitor_sessions WHERE session_id LIKE 'old%'")"
hn_assert_eq "rollups too" "$WID:10 $WID:45 $WID2:10" \
    "$(hn_psql "SELECT string_agg(widget_id || ':' || round(extract(epoch FROM now() - hour) / 86400), ' ' ORDER BY widget_id, hour DESC) FROM widget_rollup_hourly WHERE hour < now() - interval '5 days'")"
hn_assert_eq "today's rows untouched by retention" "$(written)" "$(hn_psql "SELECT (SELECT count(*) FROM widget_page_views WHERE session_id NOT LIKE 'old%') + (SELECT count(*) FROM widget_visitor_events WHERE session_id NOT LIKE 'old%')")"

# --- 8. values no column can hold are clamped, not fatal ------------------------------------
base_rows=$(rows)
send --session hugeE0001 --type hb --engaged 3000000000000 --seq 9223372036854775807
hn_wait_for 10 "a heartbeat with 3e12 ms engaged time and q = 2^63 - 1 is written" rows_are $((base_rows + 1))
hn_assert_eq "its engaged time clamped to a day, its q kept" "86400000 9223372036854775807" \
    "$(hn_psql "SELECT engaged_ms || ' ' || seq FROM widget_visitor_events WHERE session_id = 'hugeE0001'")"

# --- 9. a record PostgreSQL refuses (invalid UTF-8 from a foreign writer) is isolated:
# its entry goes to drain_rejects with the error, the entries around it are written
hexb() { printf '%0*x' "$2" "$1" | sed 's/../\\x&/g'; }
rec() {   # rec SID URL-BYTES(printf escapes) [AGE_S]: one record as a msgpack array of one map
    local now_us=$(($(date +%s%N) / 1000 - ${3:-0} * 1000000))
    printf '\x91\x8a\xa2rv\x01\xa2id\xc4\x10'
    head -c 16 /dev/urandom
    printf "\\xa2rt\\xcf$(hexb "$now_us" 16)\\xa1w\\xce$(hexb "$WID" 8)"
    printf '\xa2tr\x01\xa1t\xa2pv\xa1k\xb0%s\xa1s\xab%s\xa1q\x01\xa1u' "$KEY" "$1"
    printf "$2"
}
rej0=$(hn_psql "SELECT count(*) FROM drain_rejects")
base_rows=$(rows)
rec goodUTF0001 '\xa3abc' >"$HN_TMP/good1.mp"
rec badUTF80001 '\xa3\xff\xfeA' >"$HN_TMP/bad.mp"
rec goodUTF0002 '\xa3abc' >"$HN_TMP/good2.mp"
for f in good1 bad good2; do hn_redis -x XADD "$("$CTL" stream key)" '*' r <"$HN_TMP/$f.mp" >/dev/null; done
hn_wait_for 15 "the refused entry is in drain_rejects" bash -c "[ \$(${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql -XAt '$HERENOW_DATABASE_URL' -c 'SELECT count(*) FROM drain_rejects') -gt $rej0 ]"
hn_assert_cmd "with PostgreSQL's reason" bash -c "${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql -XAt '$HERENOW_DATABASE_URL' -c 'SELECT reason FROM drain_rejects ORDER BY id DESC LIMIT 1' | grep -qi 'utf8\\|encoding\\|byte sequence'"
hn_wait_for 10 "the good records around it are written" rows_are $((base_rows + 2))
hn_wait_for 10 "nothing left pending" none_pending
send --session afterBad001 --type pv --url https://example.com/after
hn_wait_for 10 "the drain goes on after it" rows_are $((base_rows + 3))

# --- 10. a record of a day the drain has made no partition for (a spool replayed long after):
# the batch is rolled back before anything is written, the partition made, the batch written
old_day=$(date -u -d '@'$(($(date +%s) - 70 * 86400)) +%Y%m%d)
hn_assert_eq "no partition for 70 days ago (dropped by retention above)" "" "$(hn_psql "SELECT to_regclass('widget_page_views_p$old_day')")"
base_rows=$(rows)
rec oldDay00001 '\xa3old' $((70 * 86400)) >"$HN_TMP/old.mp"
rec nowDay00001 '\xa3now' >"$HN_TMP/now.mp"
hn_redis -x XADD "$("$CTL" stream key)" '*' r <"$HN_TMP/now.mp" >/dev/null
hn_redis -x XADD "$("$CTL" stream key)" '*' r <"$HN_TMP/old.mp" >/dev/null
hn_wait_for 15 "both records written" rows_are $((base_rows + 2))
hn_assert_eq "the old one in its day's partition, made by the drain" "t" \
    "$(hn_psql "SELECT tableoid::regclass::text = 'widget_page_views_p' || to_char(recv_at AT TIME ZONE 'UTC', 'YYYYMMDD')
                AND recv_at < now() - interval '69 days' FROM widget_page_views WHERE session_id = 'oldDay00001'")"
hn_assert_cmd "the drain said it made the partitions first" grep -q 'event=drain_partitions_first' "$HN_TMP/api$api_n.log"
hn_assert_eq "no reject for it" 0 "$(hn_psql "SELECT count(*) FROM drain_rejects WHERE reason ILIKE '%partition%'")"
hn_wait_for 10 "nothing left pending" none_pending

hn_assert_cmd "metrics: records, batches, lag, pending" bash -c "curl -fsS http://127.0.0.1:$API/metrics | grep -q '^herenow_drain_lag_seconds ' && curl -fsS http://127.0.0.1:$API/metrics | grep -q '^herenow_drain_batch_records_bucket'"
rc=0
hn_stop "$API_PID" || rc=$?
hn_assert_eq "api exits 0 on SIGTERM" 0 "$rc"

# --- 11. erasure is final: records of an erased visitor still in the stream when the erasure
# runs (the drain stopped) are not written after it, nor counted in the rollups; their later
# visit is written
TOK=$("$CTL" token create --widget "$WID" 2>/dev/null)
rollup() { hn_psql "SELECT coalesce(sum(sessions), 0) || ' ' || coalesce(sum(page_views), 0) FROM widget_rollup_hourly WHERE widget_id = $WID"; }
erased_metric() { ametric herenow_drain_erased_total; }
start_api
hn_wait_for 10 "api /readyz" curl -fsS "http://127.0.0.1:$API/readyz"
base=$(written)
send --session eraseS0001 --vid erase-me --type pv --url https://example.com/e1
wait_written $((base + 1))
hn_wait_for 10 "their first page view written" bash -c "[ \"\$(${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql -XAt '$HERENOW_DATABASE_URL' -c \"SELECT count(*) FROM widget_visitor_sessions WHERE visitor_id = 'erase-me'\")\" = 1 ]"
hn_wait_for 10 "nothing pending" none_pending
hn_stop "$API_PID"
read -r rs0 rp0 <<<"$(rollup)"
base=$(written)
# the drain stopped: their next beacons, a second session, and someone else's visit wait in the stream
send --session eraseS0001 --vid erase-me --type pv --url https://example.com/e2 --seq 2
send --session eraseS0001 --vid erase-me --type hb --seq 3
send --session eraseS0002 --vid erase-me --type pv --url https://example.com/e3
send --session eraseS0002 --vid erase-me --type ev --event form_submit --seq 2
send --session keepS00001 --vid keep-me --type pv --url https://example.com/k1
wait_written $((base + 5))
start_api HERENOW_DRAIN=off
hn_wait_for 10 "api /readyz (no drain)" curl -fsS "http://127.0.0.1:$API/readyz"
body=$(curl -sS -X DELETE -H "Authorization: Bearer $TOK" -w ' %{http_code}' "http://127.0.0.1:$API/api/visitor-tracking/widgets/$WID/visitors/erase-me")
hn_assert_eq "erase: 200, the one session in PostgreSQL, tombstones for the visitor and that session" "200 1 2" \
    "$(jq -r '"\(.sessions) \(.tombstones)"' <<<"${body% *}" | sed "s/^/${body##* } /")"
hn_assert_eq "two tombstones, naming no one in clear" "2 0" \
    "$(hn_psql "SELECT count(*) || ' ' || count(*) FILTER (WHERE position(convert_to('erase-me', 'UTF8') IN digest) > 0) FROM visitor_erasures WHERE widget_id = $WID")"
hn_stop "$API_PID"
# one consumer, no claims: a claimed batch is counted by both its writers (the metric counts
# deliveries, as herenow_drain_duplicates_total does), and this section counts exactly
start_api HERENOW_DRAIN_THREADS=1 HERENOW_DRAIN_CLAIM_IDLE_MS=600000
hn_wait_for 10 "api /readyz (drain on)" curl -fsS "http://127.0.0.1:$API/readyz"
hn_wait_for 15 "the other visitor's page view written" bash -c "[ \"\$(${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql -XAt '$HERENOW_DATABASE_URL' -c \"SELECT count(*) FROM widget_page_views WHERE session_id = 'keepS00001'\")\" = 1 ]"
hn_wait_for 10 "nothing pending" none_pending
# (counted after the XACK: waited for, not read once)
hn_wait_for 10 "the erased visitor's 4 records in the stream: left out, counted" bash -c "[ \"\$(curl -fsS http://127.0.0.1:$API/metrics | awk '\$1 == \"herenow_drain_erased_total\" { print \$2 }')\" = 4 ]"
hn_assert_eq "no row, no session of them came back" "0 0 0" \
    "$(hn_psql "SELECT (SELECT count(*) FROM widget_page_views WHERE session_id LIKE 'eraseS%') || ' ' || (SELECT count(*) FROM widget_visitor_events WHERE session_id LIKE 'eraseS%') || ' ' || (SELECT count(*) FROM widget_visitor_sessions WHERE visitor_id = 'erase-me' OR session_id LIKE 'eraseS%')")"
hn_assert_eq "rollups: the other visit counted, the erased ones not again" "$((rs0 + 1)) $((rp0 + 1))" "$(rollup)"
base=$(written)
send --session eraseS0003 --vid erase-me --type pv --url https://example.com/back
wait_written $((base + 1))
hn_wait_for 10 "their visit after the erasure is a new one: written" bash -c "[ \"\$(${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql -XAt '$HERENOW_DATABASE_URL' -c \"SELECT count(*) FROM widget_visitor_sessions WHERE visitor_id = 'erase-me'\")\" = 1 ]"
hn_assert_eq "and nothing more left out" 4 "$(erased_metric)"
hn_stop "$API_PID"
# --- 12. erasure under load: a visitor erased while their beacons flow — some already in
# PostgreSQL, some pending in the stream (the drain stopped a while), a session that only ever
# reached Redis, one ended — with a loadgen's traffic around them: once the drain has caught up,
# no row, no rollup count of what was pending and no Redis key of theirs is left, and every
# other record is in PostgreSQL once
start_api HERENOW_DRAIN_THREADS=1 HERENOW_DRAIN_CLAIM_IDLE_MS=600000
hn_wait_for 10 "api /readyz" curl -fsS "http://127.0.0.1:$API/readyz"
hn_wait_for 10 "nothing pending" none_pending
rows0=$(rows); written0=$(written); dgrams0=$(read_or_dropped)
pv0=$(hn_psql 'SELECT count(*) FROM widget_page_views'); se0=$(hn_psql 'SELECT count(*) FROM widget_visitor_sessions')
read -r rpv0 rse0 <<<"$(hn_psql "SELECT coalesce(sum(page_views), 0) || ' ' || coalesce(sum(sessions), 0) FROM widget_rollup_hourly")"
hn_spawn load4 "$HN_BIN/hn-loadgen" --to "127.0.0.1:$UDP" --widgets "$LOADKEYS" --rate 2000 \
    --duration 6 --sessions 2000 --seed 4 --beacons-per-datagram 4
# the visitor: page views, heartbeats and events, about 30 a second, one datagram each (counted
# in flow.sent), until flow.stop exists; `flow_stop` waits for the last send to be made
: >"$HN_TMP/flow.sent"
flow() {   # flow FIRST_SESSION LAST_SESSION
    local i=0 n s
    rm -f "$HN_TMP/flow.stop"
    while [ ! -e "$HN_TMP/flow.stop" ]; do
        i=$((i + 1)); n=$(( $1 + i % ($2 - $1 + 1) ))
        s=flowS000$n
        case $((i % 3)) in
            0) send --session "$s" --vid flow-me --type pv --url "https://example.com/f$i" --seq "$i" ;;
            1) send --session "$s" --vid flow-me --type hb --seq "$i" ;;
            2) send --session "$s" --vid flow-me --type ev --event step --seq "$i" ;;
        esac
        echo "$s $i" >>"$HN_TMP/flow.sent"
        sleep 0.03
    done
}
flow_stop() { touch "$HN_TMP/flow.stop"; wait "$FLOW" 2>/dev/null || true; }
flow_rows() { hn_psql "SELECT (SELECT count(*) FROM widget_page_views WHERE session_id LIKE 'flowS%') + (SELECT count(*) FROM widget_visitor_events WHERE session_id LIKE 'flowS%')"; }
flow 1 2 & FLOW=$!
HN_PIDS+=("$FLOW")
hn_wait_for 15 "their first records are in PostgreSQL" bash -c "[ \$(${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql -XAt '$HERENOW_DATABASE_URL' -c \"SELECT count(*) FROM widget_page_views WHERE session_id LIKE 'flowS%'\") -ge 3 ]"
hn_stop "$API_PID"
# the drain stopped: their records (and a third session's, which never reaches PostgreSQL
# before the erasure) pile up in the stream with the load's
flow_stop
flow 1 3 & FLOW=$!
HN_PIDS+=("$FLOW")
third_live() { [ -n "$(hn_redis ZSCORE "hn:live:{$WID}" flowS0003)" ]; }
hn_wait_for 10 "the third session is live in Redis" third_live
hn_wait_for 15 "load 4: loadgen done" bash -c "! kill -0 $HN_PID_load4 2>/dev/null"
# they leave: the second session ends, and the sender stops; their first-visit mark as the
# rules engine would have set it
flow_stop
send --session flowS0002 --vid flow-me --type end --seq 100000
echo "flowS0002 end" >>"$HN_TMP/flow.sent"
hn_redis SET "hn:vfirst:{$WID}:flow-me" flowS0001 >/dev/null
# every datagram read (theirs and the load's): nothing of theirs can reach Redis after the erasure
sent4=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^sent_datagrams=/) { split($i, kv, "="); s += kv[2] } } END { print s + 0 }' "$HN_TMP/load4.log")
vsent=$(wc -l <"$HN_TMP/flow.sent")
read_all4() { [ "$(read_or_dropped)" -ge $((dgrams0 + sent4 + vsent)) ]; }
hn_wait_for 30 "the collector read all $((sent4 + vsent)) datagrams (the load's, $vsent of theirs)" read_all4
hn_wait_for 30 "the collector wrote every beacon it accepted" all_written
ended2() { [ -n "$(hn_redis ZSCORE "hn:ended:{$WID}" flowS0002)" ]; }
hn_wait_for 10 "their ended session is in hn:ended" ended2
start_api HERENOW_DRAIN=off
hn_wait_for 10 "api /readyz (no drain)" curl -fsS "http://127.0.0.1:$API/readyz"
# erased while most of what they sent waits in the stream, and more load arrives meanwhile
hn_spawn load5 "$HN_BIN/hn-loadgen" --to "127.0.0.1:$UDP" --widgets "$LOADKEYS" --rate 2000 \
    --duration 4 --sessions 2000 --seed 5 --beacons-per-datagram 4
body=$(curl -sS -X DELETE -H "Authorization: Bearer $TOK" -w ' %{http_code}' "http://127.0.0.1:$API/api/visitor-tracking/widgets/$WID/visitors/flow-me")
hn_assert_eq "erase under load: 200" 200 "${body##* }"
read -r gone_pv gone_ev gone_se <<<"$(jq -r '"\(.page_views) \(.events) \(.sessions)"' <<<"${body% *}")"
hn_assert_eq "… the first-visit mark and the ended session's place went at once" "0 " \
    "$(hn_redis EXISTS "hn:vfirst:{$WID}:flow-me") $(hn_redis ZSCORE "hn:ended:{$WID}" flowS0002)"
hn_stop "$API_PID"
start_api HERENOW_DRAIN_THREADS=1 HERENOW_DRAIN_CLAIM_IDLE_MS=600000
hn_wait_for 15 "load 5: loadgen done" bash -c "! kill -0 $HN_PID_load5 2>/dev/null"
sent5=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^sent_datagrams=/) { split($i, kv, "="); s += kv[2] } } END { print s + 0 }' "$HN_TMP/load5.log")
read_all5() { [ "$(read_or_dropped)" -ge $((dgrams0 + sent4 + vsent + sent5)) ]; }
hn_wait_for 30 "the collector read load 5's datagrams" read_all5
hn_wait_for 30 "the collector wrote every beacon it accepted" all_written
# caught up: the group has been given every entry of every shard, and none is pending
field_after() { awk -v f="$1" 'prev == f { print; exit } { prev = $0 }'; }
caught_up() {
    local k
    for k in $(hn_stream_keys); do
        [ "$(hn_redis XINFO STREAM "$k" | field_after last-generated-id)" = \
          "$(hn_redis XINFO GROUPS "$k" | field_after last-delivered-id)" ] || return 1
    done
    none_pending
}
hn_wait_for 30 "the drain caught up: every entry delivered, none pending" caught_up
er=$(erased_metric)
hn_assert_cmd "their pending records were left out by the drain ($er)" test "$er" -gt 0
hn_assert_eq "rows: every other record once (rows gained = records written - theirs left out - theirs erased)" \
    "$(( $(written) - written0 - er - gone_pv - gone_ev ))" "$(( $(rows) - rows0 ))"
hn_assert_eq "no row, no session of theirs" "0 0" \
    "$(flow_rows) $(hn_psql "SELECT count(*) FROM widget_visitor_sessions WHERE visitor_id = 'flow-me' OR session_id LIKE 'flowS%'")"
# rollups are anonymous: what they counted of the visitor before the erasure stays (the erased
# rows' share); what was still pending counts nowhere
read -r rpv1 rse1 <<<"$(hn_psql "SELECT coalesce(sum(page_views), 0) || ' ' || coalesce(sum(sessions), 0) FROM widget_rollup_hourly")"
hn_assert_eq "rollups: page views gained = page view rows gained + theirs erased from PostgreSQL (none of the pending ones)" \
    "$(( $(hn_psql 'SELECT count(*) FROM widget_page_views') - pv0 + gone_pv ))" "$((rpv1 - rpv0))"
hn_assert_eq "rollups: sessions gained = session rows gained + theirs erased from PostgreSQL" \
    "$(( $(hn_psql 'SELECT count(*) FROM widget_visitor_sessions') - se0 + gone_se ))" "$((rse1 - rse0))"
# (the drain removes their presence before it acks; waited for all the same)
gone_from_redis() {
    local s
    for s in flowS0001 flowS0002 flowS0003; do
        [ -z "$(hn_redis ZSCORE "hn:live:{$WID}" "$s")" ] && [ -z "$(hn_redis ZSCORE "hn:ended:{$WID}" "$s")" ] &&
            [ "$(hn_redis EXISTS "hn:sess:{$WID}:$s")" = 0 ] || return 1
    done
    [ "$(hn_redis EXISTS "hn:vfirst:{$WID}:flow-me")" = 0 ]
}
hn_wait_for 10 "Redis: none of their sessions in the live or ended set, no snapshot, no first-visit mark" gone_from_redis
hn_stop "$API_PID"
hn_done
