#!/usr/bin/env bash
# test_pages_time.sh: pages now and time travel (docs/API.md) against real
# Redis, PostgreSQL, collector and api.
#   1. pages/live follows the live list (active-visitors) through a scripted
#      visit set — enter, navigate, hide, end, deactivate — and equals the
#      list grouped by url at every step; order, pagination; the stream's
#      opt-in `pages` event.
#   2. active-visitors?at= and concurrency over a hand-made history written
#      straight into PostgreSQL (psql variables, no beacons): the edges
#      (started exactly at T, ended exactly at T, gone by timeout exactly at
#      T, hidden, quiet, still live), the peaks and averages worked out by hand.
#   3. the token matrix and bad parameters of every new route.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_need jq jq

CTL="$HN_BIN/herenowctl"
hn_start_stores
widget() { hn_widget_add --name "$1" --domain "$2"; }
read -r W1 K1 <<<"$(widget "Live site" example.com)"
read -r W2 K2 <<<"$(widget "History site" example.org)"
TOK=$("$CTL" token create --all 2>/dev/null)
TOK1=$("$CTL" token create --widget "$W1" 2>/dev/null)

UDP=$(hn_free_port)
ADMIN=$(hn_free_port)
API=$(hn_free_port)
# live window 60 s, active 20 s: the history below is worked out with these
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_API_LISTEN=127.0.0.1:$API HERENOW_THREADS=1 HERENOW_DRAIN_BLOCK_MS=100
export HERENOW_LIVE_WINDOW_S=60 HERENOW_ACTIVE_S=20 HERENOW_SSE_RECONCILE_MS=500
hn_spawn collector "$HN_BIN/herenow-collector"
hn_spawn api "$HN_BIN/herenow-api"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_wait_for 10 "api ready" curl -fsS "http://127.0.0.1:$API/readyz"

BASE="http://127.0.0.1:$API/api/visitor-tracking"
BODY="$HN_TMP/body"
req() {   # req PATH [TOKEN]: status in ST, body in $BODY
    ST=$(hn_oa_curl "$BODY" -H "Authorization: Bearer ${2:-$TOK}" "$BASE$1")
}
j() { jq -r "$1" "$BODY"; }
send() { "$CTL" send --to "127.0.0.1:$UDP" "$@" >/dev/null; }

# ---- 1. pages now ------------------------------------------------------------------------
L="/widgets/$W1"
# "url live active" per page, from the live list and from pages/live
from_list() {
    curl -s -H "Authorization: Bearer $TOK" "$BASE$L/active-visitors?limit=1000" |
        jq -r '[.visitors | group_by(.url)[] | "\(.[0].url) \(length) \(map(select(.status == "active")) | length)"] | sort | join(",")'
}
from_pages() {
    curl -s -H "Authorization: Bearer $TOK" "$BASE$L/pages/live?limit=1000" |
        jq -r '[.pages[] | "\(.url) \(.live) \(.active)"] | sort | join(",")'
}
# step NAME WANT: pages/live reaches WANT (the hub rebuilds within ~1 s) and
# then equals the live list grouped by url
step() {
    local name=$1 want=$2
    same() { [ "$(from_pages)" = "$want" ] && [ "$(from_list)" = "$want" ]; }
    hn_wait_for 5 "$name: pages/live and the live list both say '$want'" same &&
        hn_ok "$name: pages now = the live list by page ($want)"
}

# the first ask starts the widget's load and waits at most 250 ms for it
# (503 "loading" meanwhile, on a busy machine): ask until it is there
loaded() { req "$L/pages/live"; [ "$ST" = 200 ]; }
hn_wait_for 5 "the first asks load the widget (503 loading until then)" loaded
hn_assert_eq "no visitors: 200, no pages" "200 0 0 false null" \
    "$ST $(j .total_pages) $(j .live) $(j .capped) $(j .next_cursor)"
U=https://example.com
send --key "$K1" --session pageAAAA0001 --url "$U/a" --title "Page A"
send --key "$K1" --session pageBBBB0001 --url "$U/a" --title "Page A"
send --key "$K1" --session pageCCCC0001 --url "$U/b" --title "Page B"
step "enter ×3" "$U/a 2 2,$U/b 1 1"
send --key "$K1" --session pageBBBB0001 --seq 2 --url "$U/c" --title "Page C"
step "B navigates to /c" "$U/a 1 1,$U/b 1 1,$U/c 1 1"
send --key "$K1" --session pageCCCC0001 --seq 2 --url "$U/a" --title "Page A (new title)"
step "C navigates to /a" "$U/a 2 2,$U/c 1 1"
req "$L/pages/live"
hn_assert_eq "order: live desc; title of the newest session on the page; idle = live − active" \
    "$U/a|Page A (new title)|2|0 $U/c|1" \
    "$(j '.pages[0] | "\(.url)|\(.title)|\(.live)|\(.idle)"') $(j '.pages[1] | "\(.url)|\(.live)"')"
hn_assert_eq "totals: live 3, active 3, 2 pages" "3 3 2" "$(j .live) $(j .active) $(j .total_pages)"
send --key "$K1" --session pageAAAA0001 --seq 2 --type hide --engaged 100
step "A hides (idle)" "$U/a 2 1,$U/c 1 1"
req "$L/pages/live?limit=1"
c1=$(j .next_cursor)
hn_assert_eq "limit=1: one page and a cursor" "1 $U/a" "$(j .count) $(j '.pages[0].url')"
req "$L/pages/live?limit=1&cursor=$c1"
hn_assert_eq "…the next page: /c, the last (next_cursor null)" "$U/c null" "$(j '.pages[0].url') $(j .next_cursor)"

# the stream's pages event: only with pages=true
stream() {   # stream NAME URL: curl -N in the background, output in $HN_TMP/NAME.sse
    curl -sN -H "Authorization: Bearer $TOK" "$2" >"$HN_TMP/$1.sse" 2>/dev/null &
    hn_oa_sse "$HN_TMP/$1.sse" "$2"
    eval "PID_$1=$!"
}
stream sp "$BASE$L/active-visitors/stream?pages=true"
stream sn "$BASE$L/active-visitors/stream"
hn_wait_for 5 "the pages stream starts with a snapshot then a pages event" \
    bash -c "grep -A2 '^event: pages' '$HN_TMP/sp.sse' | grep -q '\"live\":3'"
# the plain stream must be open (its snapshot there) before A leaves, or it
# would start without A and never see the leave
hn_wait_for 5 "the stream without pages=true has its snapshot" grep -q '^event: snapshot' "$HN_TMP/sn.sse"
send --key "$K1" --session pageAAAA0001 --seq 3 --type end
hn_wait_for 5 "A's end: a pages event with live 2" bash -c "grep -q '^data: {\"widget_id\":$W1,.*\"live\":2,' '$HN_TMP/sp.sse'"
step "A ends" "$U/a 1 1,$U/c 1 1"
hn_wait_for 5 "the stream without pages=true has A's leave" grep -q '^data: {"session_id":"pageAAAA0001","reason"' "$HN_TMP/sn.sse"
hn_assert_cmd "…and no pages event" bash -c "! grep -q '^event: pages' '$HN_TMP/sn.sse'"
hn_assert_cmd "pages events carry no id (state, never replayed)" \
    bash -c "! grep -B1 '^event: pages' '$HN_TMP/sp.sse' | grep -q '^id:'"
kill "$PID_sp" "$PID_sn" 2>/dev/null || true
curl -s -X POST -H "Authorization: Bearer $TOK" "$BASE/sessions/pageCCCC0001/deactivate?widget=$W1" >/dev/null
step "C deactivated" "$U/c 1 1"

# ---- 2. time travel over a hand-made history ------------------------------------------------
# T0 is 12:00:00Z two days ago; every beacon below is (session, offset from
# T0 in s, type, url). Live window 60 s, active 20 s.
T0=$(date -u -d "2 days ago" +%Y-%m-%dT12:00:00Z)
"${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql" -X -q -v ON_ERROR_STOP=1 -v w="$W2" -v t0="$T0" \
    "$HERENOW_DATABASE_URL" >/dev/null <<'SQL'
SELECT hn_ensure_partitions((:'t0'::timestamptz - interval '1 day')::date, (now() + interval '1 day')::date);
CREATE TEMP TABLE h (sid text, off_s numeric, t text, url text);
INSERT INTO h VALUES
 ('histS1aaaa', -100, 'pv', '/one'), ('histS1aaaa', -50, 'hb', NULL), ('histS1aaaa', -10, 'hb', NULL),
 ('histS2bbbb', 0, 'pv', '/two'),                                   -- started exactly at T0
 ('histS3cccc', -30, 'pv', '/three'), ('histS3cccc', 0, 'end', NULL), -- ended exactly at T0
 ('histS4dddd', -60, 'pv', '/four'),                                -- gone by timeout exactly at T0
 ('histS5eeee', -40, 'pv', '/five'), ('histS5eeee', -35, 'hide', NULL), -- hidden
 ('histS6ffff', -45, 'pv', '/six'),                                 -- quiet 45 s: idle
 ('histS7gggg', 1, 'pv', '/seven');                                 -- came after T0
INSERT INTO widget_page_views (event_id, recv_at, widget_id, session_id, visitor_id, seq, url, path, title, transport)
 SELECT gen_random_uuid(), :'t0'::timestamptz + make_interval(secs => off_s), :w, sid, 'v-' || sid,
        row_number() OVER (PARTITION BY sid ORDER BY off_s), 'https://example.org' || url, url, 'T' || url, 1
   FROM h WHERE t = 'pv';
INSERT INTO widget_visitor_events (event_id, recv_at, widget_id, session_id, visitor_id, seq, event_type, transport)
 SELECT gen_random_uuid(), :'t0'::timestamptz + make_interval(secs => off_s), :w, sid, 'v-' || sid, 10, t, 1
   FROM h WHERE t <> 'pv';
-- still live: a page view 5 s ago
INSERT INTO widget_page_views (event_id, recv_at, widget_id, session_id, visitor_id, seq, url, path, transport)
 VALUES (gen_random_uuid(), now() - interval '5 s', :w, 'histS8hhhh', 'v8', 1, 'https://example.org/eight', '/eight', 1);
INSERT INTO widget_visitor_sessions (widget_id, session_id, visitor_id, landing_page, country, browser,
        screen_width, screen_height, last_active_at, session_started_at, session_ended_at, is_active,
        page_views, rollup_hour)
 SELECT :w, sid, 'v-' || sid, 'https://example.org' || min(url), 'DE', 'Firefox', 1280, 800,
        max(:'t0'::timestamptz + make_interval(secs => off_s)), min(:'t0'::timestamptz + make_interval(secs => off_s)),
        max(:'t0'::timestamptz + make_interval(secs => off_s)), false, count(url), date_trunc('hour', :'t0'::timestamptz)
   FROM h GROUP BY sid;
INSERT INTO widget_visitor_sessions (widget_id, session_id, visitor_id, last_active_at, session_started_at, rollup_hour)
 VALUES (:w, 'histS8hhhh', 'v8', now() - interval '5 s', now() - interval '5 s', date_trunc('hour', now()));
-- beacons written into minutes the drain's concurrency fill has already
-- settled (its first fill found no beacons): the documented remedy, the
-- widget's mark deleted, makes the next fills recompute from the first beacon
DELETE FROM widget_concurrency_marks WHERE widget_id = :w;
SQL
H="/widgets/$W2"
at() { date -u -d "$T0 $1 seconds" +%Y-%m-%dT%H:%M:%S.%3NZ; }
who() { jq -r '[.visitors[] | "\(.session_id | .[4:6]):\(.status)"] | join(",")' "$BODY"; }

req "$H/active-visitors?at=$T0"
hn_assert_eq "at=T0: S1 S2 active, S5 (hidden) S6 (quiet) idle; not S3 (ended at T0), S4 (timeout at T0), S7 (later)" \
    "200 postgresql 4 2 2 S1:active,S2:active,S5:idle,S6:idle" \
    "$ST $(j .source) $(j .total) $(j .active_count) $(j .idle_count) $(jq -r '[.visitors[] | "\(.session_id | .[4:6]):\(.status)"] | sort | join(",")' "$BODY")"
hn_assert_eq "at=T0: newest first (last seen S2 T0, S1 T0−10 s, S5 T0−35 s, S6 T0−45 s)" \
    "S2:active,S1:active,S5:idle,S6:idle" "$(who)"
hn_assert_eq "at=T0: S1's item as of T0 — url of its last page view, started, time on site, last seen, row fields" \
    "https://example.org/one|T/one|$(at -100)|100|$(at -10)|1|DE|Firefox|1280x800|null" \
    "$(jq -r '.visitors[] | select(.session_id == "histS1aaaa") | "\(.url)|\(.title)|\(.started)|\(.time_on_site_s)|\(.last_seen)|\(.page_views)|\(.country)|\(.browser)|\(.screen)|\(.chat_state)"' "$BODY")"
req "$H/active-visitors?at=$(at -1)"
hn_assert_eq "at=T0−1 s: S1 (heartbeat 9 s before: active) S3 S4 S5 S6 (idle); S2 not yet" "5 1 S1:active,S3:idle,S4:idle,S5:idle,S6:idle" \
    "$(j .total) $(j .active_count) $(jq -r '[.visitors[] | "\(.session_id | .[4:6]):\(.status)"] | sort | join(",")' "$BODY")"
req "$H/active-visitors?at=$(at -30)"
hn_assert_eq "at=T0−30 s (S3 started then): S1 S3 S4 S5 S6; S3 active" "5 S1:active,S3:active,S4:idle,S5:idle,S6:active" \
    "$(j .total) $(jq -r '[.visitors[] | "\(.session_id | .[4:6]):\(.status)"] | sort | join(",")' "$BODY")"
req "$H/active-visitors?at=$(at 60)"
hn_assert_eq "at=T0+60 s: S7 only, idle (59 s quiet); S2 timed out exactly then, S1 at T0+50" "1 S7:idle" "$(j .total) $(who)"
req "$H/active-visitors?at=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)"
hn_assert_eq "at=now: the still-live S8" "1 S8:active" "$(j .total) $(who)"
req "$H/active-visitors?at=$T0&status=idle"
hn_assert_eq "status=idle at T0: S5, S6 (totals unfiltered)" "S5:idle,S6:idle 4" "$(who) $(j .total)"
req "$H/active-visitors?at=$T0&limit=3"
c=$(j .next_cursor)
hn_assert_eq "limit=3 at T0: three and a cursor" "S2:active,S1:active,S5:idle" "$(who)"
req "$H/active-visitors?at=$T0&limit=3&cursor=$c"
hn_assert_eq "…then S6, the end" "S6:idle null" "$(who) $(j .next_cursor)"

# the pinned concurrency answers; run twice: computed from the beacons (or
# partly from the rollup if the drain's first fill came already), then once
# the fill has covered the history, from the per-minute rollup (sql/006)
from=$(at -120); to=$(at 120)
conc_checks() {
    local how=$1
    req "$H/concurrency?from=$from&to=$to&interval=1m"
    hn_assert_eq "$how: concurrency 1m over T0±2 min: peaks 1 5 5 1 (worked out by hand)" "200 1m 1,5,5,1" \
        "$ST $(j .interval) $(j '[.buckets[].peak] | map(tostring) | join(",")')"
    hn_assert_eq "$how: …averages: 40/60, 235/60, 209/60, 1/60 session-seconds per second" "0.67,3.92,3.48,0.02" \
        "$(j '[.buckets[].avg] | map(tostring) | join(",")')"
    hn_assert_eq "$how: …overall peak 5, first reached at T0−30 s (S3 came)" "5 $(at -30)" "$(j .peak) $(j .peak_at)"
    req "$H/active-visitors?at=$(at -30)"
    hn_assert_eq "$how: the peak matches at= at peak_at" 5 "$(j .total)"
    req "$H/concurrency?from=$(at -3600)&to=$(at 3600)&interval=1h"
    hn_assert_eq "$how: concurrency 1h: the hour before T0 peaks at 5, the hour after at 5" "5,5" \
        "$(j '[.buckets[].peak] | map(tostring) | join(",")')"
    req "$H/concurrency?from=$(at -600)&to=$(at 600)&interval=5m"
    hn_assert_eq "$how: concurrency 5m: 4 buckets, the ones around T0 peak at 5" "0,5,5,0" \
        "$(j '[.buckets[].peak] | map(tostring) | join(",")')"
}
conc_checks "from the beacons"

# the drain's fill (worker 0, every few seconds) covers the history: the
# widget's mark passes T0 + 1 h and the minutes around T0 have rows
PSQL=("${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql" -X -qAt -v ON_ERROR_STOP=1 "$HERENOW_DATABASE_URL")
filled() {
    [ "$("${PSQL[@]}" -c "SELECT settled_to >= '$T0'::timestamptz + interval '1 hour' AND window_s = 60
        FROM widget_concurrency_marks WHERE widget_id = $W2")" = t ]
}
hn_wait_for 60 "the concurrency rollup covers T0 + 1 h" filled &&
    hn_ok "the drain filled the concurrency rollup past T0 + 1 h"
hn_assert_eq "rollup rows: the 4 minutes around T0 with someone present (peak, first reached — T0+1 s: S7 came after S3 and S4 left at T0 —, present-ms)" \
    "1|$(at -100)|40000 5|$(at -30)|235000 5|$(at 1)|209000 1|$(at 60)|1000" \
    "$("${PSQL[@]}" -c "SELECT string_agg(peak || '|' || to_char(to_timestamp(peak_at_ms / 1000.0) AT TIME ZONE 'UTC',
        'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') || '|' || present_ms, ' ' ORDER BY minute)
        FROM widget_concurrency_minutes WHERE widget_id = $W2 AND minute < '$T0'::timestamptz + interval '1 hour'")"
hn_assert_eq "rollup hours: the two around T0, made from their minutes" \
    "5|$(at -30)|275000 5|$(at 1)|210000" \
    "$("${PSQL[@]}" -c "SELECT string_agg(peak || '|' || to_char(to_timestamp(peak_at_ms / 1000.0) AT TIME ZONE 'UTC',
        'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') || '|' || present_ms, ' ' ORDER BY hour)
        FROM widget_concurrency_hours WHERE widget_id = $W2 AND hour < '$T0'::timestamptz + interval '1 hour'")"
conc_checks "from the rollup"
# the route reads the rollup: a changed row shows (then it is put back)
"${PSQL[@]}" -c "UPDATE widget_concurrency_minutes SET peak = peak + 40 WHERE widget_id = $W2 AND minute = '$(at -60)'"
req "$H/concurrency?from=$from&to=$to&interval=1m"
hn_assert_eq "a settled minute is answered from the rollup (its row changed by hand: 45)" "1,45,5,1" \
    "$(j '[.buckets[].peak] | map(tostring) | join(",")')"
"${PSQL[@]}" -c "UPDATE widget_concurrency_minutes SET peak = peak - 40 WHERE widget_id = $W2 AND minute = '$(at -60)'"
# from the rollup = computed live (hn_concurrency over the whole range, the
# way the route computed every answer before the rollup), for each interval
# over the history and up to now (the unsettled tail computed live)
live_conc() {   # FROM TO BUCKET_S: "peak:avg,..." from the beacons
    "${PSQL[@]}" -c "SELECT string_agg(peak || ':' || to_char(present_ms::numeric / ($3 * 1000), 'FM9999990.00'), ','
        ORDER BY k) FROM hn_concurrency($W2, '$1', '$2', 60, $3)"
}
route_conc() {  # FROM TO INTERVAL
    req "$H/concurrency?from=$1&to=$2&interval=$3"
    jq -r '[.buckets[] | "\(.peak):\(.avg | tostring | if test("\\.") then . else . + ".0" end)"] | join(",")' "$BODY" |
        awk -F, '{ for (i = 1; i <= NF; i++) { split($i, a, ":"); printf "%s%s:%.2f", (i > 1 ? "," : ""), a[1], a[2] } }'
}
for cc in "$(at -7200) $(at 7200) 1m 60" "$(date -u -d "$T0 -1 hour" +%Y-%m-%dT%H:00:00Z) $(date -u -d "$T0 +2 hours" +%Y-%m-%dT%H:00:00Z) 5m 300" \
         "$(date -u -d "$T0 -1 day" +%Y-%m-%dT%H:00:00Z) $(date -u -d "now +1 hour" +%Y-%m-%dT%H:00:00Z) 1h 3600"; do
    read -r cf ct ci cs <<<"$cc"
    hn_assert_eq "interval $ci from $cf: the route (rollup + live tail) = hn_concurrency computed live" \
        "$(live_conc "$cf" "$ct" "$cs")" "$(route_conc "$cf" "$ct" "$ci")"
done
# retention drops rollup minutes with the widget's retention_days
"${PSQL[@]}" -c "UPDATE widget_configs SET retention_days = 1 WHERE id = $W2"
"${PSQL[@]}" -c "SELECT hn_apply_concurrency_retention()" >/dev/null
hn_assert_eq "retention 1 day: the rollup minutes and hours of T0 (2 days ago) are gone" 0 \
    "$("${PSQL[@]}" -c "SELECT (SELECT count(*) FROM widget_concurrency_minutes WHERE widget_id = $W2 AND minute < now() - interval '1 day')
        + (SELECT count(*) FROM widget_concurrency_hours WHERE widget_id = $W2 AND hour < now() - interval '1 day')")"
"${PSQL[@]}" -c "UPDATE widget_configs SET retention_days = 395 WHERE id = $W2"

# ---- 3. tokens and bad parameters ------------------------------------------------------------
for r in "$L/pages/live" "$L/active-visitors?at=$T0" "$L/concurrency"; do
    hn_assert_eq "$r: no token 401, bad token 401, another widget's token 403, its own 200" "401 401 403 200" \
        "$(hn_oa_curl "$HN_TMP/discard" "$BASE$r") \
$(hn_oa_curl "$HN_TMP/discard" -H 'Authorization: Bearer hn_bogus' "$BASE$r") \
$(hn_oa_curl "$HN_TMP/discard" -H "Authorization: Bearer $TOK1" "$BASE${r/$W1/$W2}") \
$(hn_oa_curl "$HN_TMP/discard" -H "Authorization: Bearer $TOK1" "$BASE$r")"
done
bad() {   # bad PATH WORD: 400 with an error naming WORD
    req "$1"
    hn_assert_eq "$1: 400 naming $2" "400 true" "$ST $(jq -r --arg w "$2" '.error | contains($w)' "$BODY")"
}
bad "$L/pages/live?limit=0" limit
bad "$L/pages/live?limit=x" limit
bad "$L/pages/live?cursor=zzz" cursor
bad "$L/pages/live?cursor=$c" cursor
bad "$L/pages/live?at=$T0" "unknown parameter"
bad "$H/active-visitors?at=yesterday" at
bad "$H/active-visitors?at=2026-01-01T10:00:00" at
bad "$H/active-visitors?at=2999-01-01T00:00:00Z" future
bad "$H/active-visitors?at=2001-01-01" "400 days"
bad "$H/active-visitors?at=$T0&status=gone" status
bad "$H/active-visitors?at=$T0&limit=1001" limit
bad "$H/active-visitors?at=$T0&cursor=$c1" cursor
bad "$H/active-visitors?at=$T0&from=1h" "unknown parameter"
bad "$H/concurrency?interval=2m" interval
bad "$H/concurrency?from=2d&interval=1m" buckets
bad "$H/concurrency?from=$to&to=$from" from
bad "$H/concurrency?limit=5" "unknown parameter"
bad "$L/active-visitors/stream?pages=yes" pages
hn_assert_cmd "the api is alive after all of it" curl -fsS "http://127.0.0.1:$API/livez"
hn_done
