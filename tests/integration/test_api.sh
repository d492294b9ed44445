#!/usr/bin/env bash
# test_api.sh: the JSON API's routes (docs/API.md) against real Redis,
# PostgreSQL, collector and drain: beacons go in through UDP, answers are
# compared with numbers worked out by hand from what was sent (counts,
# averages, bounce and chat rates), keyset pagination, the live status
# rule, session details, deactivate, erase, the CSV export (formula
# neutralisation), every route's bad parameters (400 naming the parameter,
# tables intact afterwards) and Redis down. The token matrix (401/403) is
# test_api_server.sh's.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_need jq jq

CTL="$HN_BIN/herenowctl"
hn_start_stores
widget() { hn_widget_add --name "$1" --domain "$2"; }
read -r W1 K1 <<<"$(widget "Site one" example.com)"
hn_widget_id_apart "$W1"   # on a cluster: the two widgets' keys on two masters
read -r W2 K2 <<<"$(widget "Site two" example.org)"
hn_cluster_two_masters "widgets $W1 and $W2" "hn:live:{$W1}" "hn:live:{$W2}"
TOK=$("$CTL" token create --all 2>/dev/null)
TOK1=$("$CTL" token create --widget "$W1" 2>/dev/null)
TOK2=$("$CTL" token create --widget "$W2" 2>/dev/null)

UDP=$(hn_free_port)
ADMIN=$(hn_free_port)
API=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_API_LISTEN=127.0.0.1:$API HERENOW_THREADS=2 HERENOW_DRAIN_BLOCK_MS=100
hn_spawn collector "$HN_BIN/herenow-collector"
hn_spawn api "$HN_BIN/herenow-api"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_wait_for 10 "api ready" curl -fsS "http://127.0.0.1:$API/readyz"

BASE="http://127.0.0.1:$API/api/visitor-tracking"
BODY="$HN_TMP/body"
# req METHOD PATH [TOKEN]: the answer's status in ST, its body in $BODY (checked against
# docs/openapi.yaml at the end: hn_oa_curl)
req() {
    hn_oa_req "$BODY" -D "$HN_TMP/headers" -X "$1" \
        -H "Authorization: Bearer ${3:-$TOK}" "$BASE$2"
    ST=$HN_ST
}
get() { req GET "$@"; }
j() { jq -r "$1" "$BODY"; }
send() { "$CTL" send --to "127.0.0.1:$UDP" "$@" >/dev/null; }
rows() { hn_psql "SELECT (SELECT count(*) FROM widget_page_views) + (SELECT count(*) FROM widget_visitor_events)"; }
rows_are() { [ "$(rows)" = "$1" ]; }

# --- the visits ----------------------------------------------------------------------
# widget 1:
#   sessA00001  pv /a (from google), hb e=10000, pv /b e=5000, ev chat_opened, end e=3000
#               → 2 pages, engaged 18 s, chatted, ended
#   sessB00001  pv /a, hb e=4000              → 1 page (bounce), engaged 4 s, live
#   sessC00001  pv /c (vid user-42), id (name = a formula), hide → 1 page (bounce), idle
#   sessD00001  pv /a, pv /c (vid user-42)    → 2 pages, live, the most recent
# widget 2:
#   sessE00001  pv
# Widget 1: 4 sessions, 6 page views, 1 custom event, bounce 2/4, chat 1/4,
# avg time on site 22 s / 4 = 5.5 s, avg pages 6/4 = 1.5.
U=https://example.com
EVIL='=HYPERLINK("http://evil.example/","x")'
send --key "$K1" --session sessA00001 --type pv --seq 1 --url "$U/a?utm=1" --title "Page A" --referrer https://www.google.com/search
send --key "$K1" --session sessA00001 --type hb --seq 2 --engaged 10000
send --key "$K1" --session sessA00001 --type pv --seq 3 --url "$U/b" --title "Page B" --engaged 5000
send --key "$K1" --session sessA00001 --type ev --seq 4 --event chat_opened --prop source=button
send --key "$K1" --session sessA00001 --type end --seq 5 --engaged 3000
send --key "$K1" --session sessB00001 --type pv --seq 1 --url "$U/a"
send --key "$K1" --session sessB00001 --type hb --seq 2 --engaged 4000
send --key "$K1" --session sessC00001 --type pv --seq 1 --url "$U/c" --vid user-42
send --key "$K1" --session sessC00001 --type id --seq 2 --visitor-name "$EVIL" --email c@example.net --vid user-42
send --key "$K1" --session sessC00001 --type hide --seq 3 --vid user-42
send --key "$K1" --session sessD00001 --type pv --seq 1 --url "$U/a" --vid user-42
send --key "$K1" --session sessD00001 --type pv --seq 2 --url "$U/c" --title "Page C" --vid user-42
send --key "$K2" --session sessE00001 --type pv --seq 1 --url https://example.org/
hn_wait_for 20 "13 records drained into PostgreSQL" rows_are 13

# --- GET /widgets ----------------------------------------------------------------------
get /widgets
hn_assert_eq "widgets: all-widget token sees both" "200 $W1,$W2" "$ST $(j '[.widgets[].id] | join(",")')"
get /widgets "$TOK1"
hn_assert_eq "widgets: widget token sees its own, with key and retention" "200 $W1 $K1 example.com 395" \
    "$ST $(j '.widgets[] | "\(.id) \(.key) \(.domain) \(.retention_days)"')"

# --- active visitors -------------------------------------------------------------------
get "/widgets/$W1/active-visitors"
hn_assert_eq "active-visitors: 200, 3 live (A ended), newest first" "200 3 3 sessD00001,sessC00001,sessB00001" \
    "$ST $(j .total) $(j .count) $(j '[.visitors[].session_id] | join(",")')"
hn_assert_eq "active-visitors: statuses by the reader rule (C hid its tab)" "active,idle,active 2" \
    "$(j '[.visitors[].status] | join(",")') $(j .active)"
hn_assert_eq "active-visitors: widget-wide split adds up" 3 "$(j '.active_count + .idle_count')"
hn_assert_eq "active-visitors: D's snapshot" "$U/c|Page C|$U/a|2|null" \
    "$(j '.visitors[0] | "\(.url)|\(.title)|\(.landing)|\(.page_views)|\(.referrer)"')"
hn_assert_eq "active-visitors: B's engaged time and C's identity" "4|$EVIL|c@example.net" \
    "$(j '"\(.visitors[2].engaged_s)|\(.visitors[1].name)|\(.visitors[1].email)"')"
hn_assert_eq "active-visitors: times are ISO 8601 UTC with ms" 3 \
    "$(j '[.visitors[] | select(.last_seen | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"))] | length')"
hn_assert_eq "active-visitors: last page has no next_cursor" null "$(j .next_cursor)"
get "/widgets/$W1/active-visitors?status=idle"
hn_assert_eq "active-visitors: status=idle" "sessC00001" "$(j '[.visitors[].session_id] | join(",")')"
get "/widgets/$W1/active-visitors?status=active"
hn_assert_eq "active-visitors: status=active" "sessD00001,sessB00001" "$(j '[.visitors[].session_id] | join(",")')"
get "/widgets/$W2/active-visitors" "$TOK2"
hn_assert_eq "active-visitors: widget 2 with its own token" "200 sessE00001" "$ST $(j '[.visitors[].session_id] | join(",")')"

# keyset pages: limit=1 walks D, C, B; B sending a beacon between pages moves it
# to the head, and it is then not shown twice
ids=() cur=""
for _ in 1 2 3 4; do
    get "/widgets/$W1/active-visitors?limit=1${cur:+&cursor=$cur}"
    ids+=("$(j '.visitors[0].session_id // "-"')")
    cur=$(j '.next_cursor // ""')
    [ -n "$cur" ] || break
done
hn_assert_eq "active-visitors: limit=1 pages" "sessD00001 sessC00001 sessB00001" "${ids[*]}"
get "/widgets/$W1/active-visitors?limit=1"
cur=$(j .next_cursor)
send --key "$K1" --session sessB00001 --type hb --seq 3
b_first() { [ "$(hn_redis ZREVRANGE "hn:live:{$W1}" 0 0)" = sessB00001 ]; }
hn_wait_for 5 "B's heartbeat reached Redis" b_first
get "/widgets/$W1/active-visitors?limit=1&cursor=$cur"
p2=$(j '.visitors[0].session_id')
cur=$(j '.next_cursor // ""')
p3=none
if [ -n "$cur" ]; then get "/widgets/$W1/active-visitors?limit=1&cursor=$cur"; p3=$(j '.visitors[0].session_id // "none"'); fi
hn_assert_eq "active-visitors: a session that moved is not repeated" "sessC00001 none" "$p2 $p3"
rows_are 14 || hn_wait_for 10 "B's heartbeat drained" rows_are 14

# --- GET /sessions/:sessionId ----------------------------------------------------------
get /sessions/sessA00001
hn_assert_eq "session A: 200 from PostgreSQL, gone, 2 pages, 18 s, chatted" \
    "200 postgresql gone $W1 2 18 true false" \
    "$ST $(j '"\(.source) \(.status) \(.widget_id) \(.page_views) \(.engaged_s) \(.has_chatted) \(.is_active)"')"
hn_assert_eq "session A: pages in order, time on page until the next, null for the last" \
    "$U/a?utm=1,$U/b number,null" \
    "$(j '[.pages[].url] | join(",")') $(j '[.pages[].time_on_page_s | type] | join(",")')"
hn_assert_eq "session A: events without heartbeats" "ev:chat_opened,end:" \
    "$(j '[.events[] | "\(.type):\(.name // "")"] | join(",")')"
hn_assert_eq "session A: event data as JSON" '{"source":"button"}' "$(jq -c '.events[0].data' "$BODY")"
hn_assert_eq "session A: referrer and landing page" "https://www.google.com/search $U/a?utm=1" "$(j '"\(.referrer) \(.landing_page)"')"
get "/sessions/sessA00001?include=heartbeats"
hn_assert_eq "session A: include=heartbeats" "hb,ev,end" "$(j '[.events[].type] | join(",")')"
get /sessions/sessD00001
hn_assert_eq "session D: live snapshot, earlier session of the same visitor" "active active sessC00001" \
    "$(j '"\(.status) \(.live.status)"') $(j '[.earlier_sessions[].session_id] | join(",")')"
get /sessions/sessC00001 "$TOK1"
hn_assert_eq "session C: idle, widget token of its widget" "200 idle" "$ST $(j .status)"
get /sessions/sessA00001 "$TOK2"
hn_assert_eq "session of widget 1 with widget 2's token: 404 (tells nothing)" "404 session not found" "$ST $(j .error)"
get "/sessions/sessA00001?widget=$W1" "$TOK2"
hn_assert_eq "session: ?widget= outside the token's scope: 403" 403 "$ST"
get /sessions/sessZ00001
hn_assert_eq "session: unknown: 404 JSON" "404 session not found" "$ST $(j .error)"

# --- stats, timeseries, breakdown --------------------------------------------------------
visitors=$(hn_psql "SELECT count(DISTINCT visitor_id) FROM widget_visitor_sessions WHERE widget_id = $W1")
get "/widgets/$W1/visitor-stats"
hn_assert_eq "stats: sessions, page views, custom events, active now" "200 4 6 1 3" \
    "$ST $(j '"\(.sessions) \(.page_views) \(.events) \(.active_now)"')"
hn_assert_eq "stats: visitors = distinct visitor ids of the day" "$visitors" "$(j .visitors)"
# the raw text (jq would print 1.50 as 1.5): 22 s / 4, 6 / 4, 2 / 4, 1 / 4
hn_assert_eq "stats: avg time, avg pages, bounce rate, chat rate" \
    '"avg_time_on_site_s":5.5,"avg_pages":1.50,"bounce_rate":0.5000,"chat_engagement_rate":0.2500' \
    "$(grep -o '"avg_time_on_site_s":.*"chat_engagement_rate":[0-9.]*' "$BODY")"
hn_assert_cmd "stats: range widened to whole hours" bash -c "jq -r '.from, .to' '$BODY' | grep -c ':00:00.000Z$' | grep -qx 2"
get "/widgets/$W1/visitor-stats?from=2020-01-01T10:20:00Z&to=2020-01-02T10:20:00%2B01:00"
hn_assert_eq "stats: explicit range rounded (from down, to up), empty: rates 0" \
    "2020-01-01T10:00:00.000Z 2020-01-02T10:00:00.000Z 0 0" "$(j '"\(.from) \(.to) \(.sessions) \(.visitors)"')"
hn_assert_cmd "stats: no sessions → rates 0.0000" grep -q '"bounce_rate":0.0000' "$BODY"
get "/widgets/$W2/visitor-stats" "$TOK2"
hn_assert_eq "stats: widget 2 apart" "1 1 1.0000" "$(j '"\(.sessions) \(.page_views)"') $(grep -o '"bounce_rate":[0-9.]*' "$BODY" | cut -d: -f2)"

get "/widgets/$W1/timeseries"
hn_assert_eq "timeseries: default hourly over 24 h, sums = totals" "hour 4 6 1" \
    "$(j '"\(.interval) \([.buckets[].sessions] | add) \([.buckets[].page_views] | add) \([.buckets[].events] | add)"')"
hn_assert_cmd "timeseries: 24 or 25 hourly buckets" bash -c "n=\$(jq '.buckets | length' '$BODY'); [ \$n -ge 24 ] && [ \$n -le 25 ]"
get "/widgets/$W1/timeseries?from=3d&interval=day"
hn_assert_eq "timeseries: daily, zero-filled, midnight buckets" "4 4 0" \
    "$(j '"\(.buckets | length) \([.buckets[].sessions] | add) \([.buckets[] | select(.time | endswith("T00:00:00.000Z") | not)] | length)"')"

get "/widgets/$W1/breakdown?by=page"
hn_assert_eq "breakdown by page: page views per path (no query), most first" \
    "page_views 6 3 $U/a=3 $U/c=2 $U/b=1" \
    "$(j .counts) $(j .total) $(j .distinct_values) $(j '[.results[] | "\(.value)=\(.count)"] | join(" ")')"
hn_assert_eq "breakdown by page: shares" "0.5000 0.3333 0.1667" \
    "$(grep -o '"share":[0-9.]*' "$BODY" | cut -d: -f2 | paste -sd' ')"
get "/widgets/$W1/breakdown?by=referrer"
hn_assert_eq "breakdown by referrer: sessions per host, (direct)" "sessions (direct)=3 www.google.com=1" \
    "$(j .counts) $(j '[.results[] | "\(.value)=\(.count)"] | join(" ")')"
get "/widgets/$W1/breakdown?by=event&limit=1"
hn_assert_eq "breakdown by event" "events chat_opened=1" "$(j .counts) $(j '[.results[] | "\(.value)=\(.count)"] | join(" ")')"
get "/widgets/$W1/breakdown?by=page&limit=1"
hn_assert_eq "breakdown limit=1: one value, totals of all" "1 3 6" "$(j '"\(.results | length) \(.distinct_values) \(.total)"')"

# --- two years and all time from the rollups ----------------------------------------------
# A widget whose rollups cover 2024 and 2025, written as the drain would have:
# every hour 1 session and 2 page views (1 visitor a day, at midnight), every
# day /x 3 and /y 1 page views; and 1000 of each in the hours and days just
# outside [2024-01-01, 2026-01-01), which a range that leaks would count.
# Retention longer than that, so the drain's purge leaves them.
read -r W3 _ <<<"$(widget "Two years" two.example)"
hn_psql "UPDATE widget_configs SET retention_days = 36600 WHERE id = $W3;
INSERT INTO widget_rollup_hourly (widget_id, hour, page_views, sessions, visitors_day, visitors_hour, session_pages)
SELECT $W3, h, v * 2, v, CASE WHEN extract(hour FROM h AT TIME ZONE 'UTC') = 0 THEN v ELSE 0 END, v, v * 2
FROM generate_series('2023-12-31T00:00:00Z'::timestamptz, '2026-01-01T23:00:00Z', '1 hour') AS h,
     LATERAL (SELECT CASE WHEN h < '2024-01-01T00:00:00Z' OR h >= '2026-01-01T00:00:00Z' THEN 1000 ELSE 1 END) AS x(v);
INSERT INTO widget_rollup_dims (widget_id, dim, day, value, n)
SELECT $W3, 'page', d::date, p, CASE WHEN d < '2024-01-01' OR d >= '2026-01-01' THEN 1000 ELSE n END
FROM generate_series('2023-12-31'::date, '2026-01-01'::date, '1 day') AS d, (VALUES ('/x', 3), ('/y', 1)) AS v(p, n);" >/dev/null
Y2="from=2024-01-01&to=2026-01-01"       # 731 days: 17,544 hours
hn_wait_for 10 "the api knows the new widget" bash -c \
    "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $TOK' '$BASE/widgets/$W3/visitor-stats?$Y2')\" = 200 ]"
get "/widgets/$W3/visitor-stats?$Y2"
hn_assert_eq "2 years: visitor-stats 200 over the exact range, totals of 17,544 hours" \
    "200 2024-01-01T00:00:00.000Z 2026-01-01T00:00:00.000Z 17544 35088 731" \
    "$ST $(j '"\(.from) \(.to) \(.sessions) \(.page_views) \(.visitors)"')"
get "/widgets/$W3/timeseries?$Y2"
hn_assert_eq "2 years: timeseries picks days, 731 buckets that add up to the totals" \
    "200 day 731 17544 35088 2024-01-01T00:00:00.000Z 2025-12-31T00:00:00.000Z 24" \
    "$ST $(j '"\(.interval) \(.buckets | length) \([.buckets[].sessions] | add) \([.buckets[].page_views] | add) \(.buckets[0].time) \(.buckets[-1].time) \(.buckets[100].sessions)"')"
get "/widgets/$W3/breakdown?by=page&$Y2"
hn_assert_eq "2 years: breakdown by page over 731 days" "200 2924 /x=2193 /y=731" \
    "$ST $(j .total) $(j '[.results[] | "\(.value)=\(.count)"] | join(" ")')"
get "/widgets/$W3/breakdown?by=page&from=104w&to=2026-01-01"
hn_assert_eq "2 years as a duration (104w): 728 days" "200 2024-01-04T00:00:00.000Z 2912" "$ST $(j .from) $(j .total)"
get "/widgets/$W3/visitor-stats?from=all&to=2026-01-02"
hn_assert_eq "from=all: since 1970, every hour counted" "200 1970-01-01T00:00:00.000Z 65544 131088" \
    "$ST $(j '"\(.from) \(.sessions) \(.page_views)"')"
get "/widgets/$W3/timeseries?from=all&to=2026-01-02"
hn_assert_eq "from=all: the timeseries starts at the widget's first rollup day" "200 day 2023-12-31T00:00:00.000Z 733" \
    "$ST $(j .interval) $(j .from) $(j '.buckets | length')"
get "/widgets/$W1/timeseries?from=all"
hn_assert_eq "from=all on a younger widget: hours since its first one" "200 hour true" \
    "$ST $(j .interval) $(j '(.buckets | length) <= 2')"
for r in "sessions?$Y2" "export.csv?what=sessions&$Y2" "sessions?from=401d" "export.csv?what=pageviews&from=all"; do
    get "/widgets/$W3/$r"
    hn_assert_eq "raw rows keep the 400-day cap: $r → 400" "400 true" \
        "$ST $(j '.error | test("at most 400 days on this route")')"
done
get "/widgets/$W3/sessions?from=400d"
hn_assert_eq "sessions: 400 days is still allowed" 200 "$ST"

# --- past sessions -------------------------------------------------------------------------
ids=() cur="" pages=0
while :; do
    get "/widgets/$W1/sessions?limit=3${cur:+&cursor=$cur}"
    pages=$((pages + 1))
    ids+=($(j '.sessions[].session_id'))
    cur=$(j '.next_cursor // ""')
    [ -n "$cur" ] && [ $pages -lt 5 ] || break
done
hn_assert_eq "sessions: 2 pages of limit 3, newest first, each once" "2 sessD00001 sessC00001 sessB00001 sessA00001" "$pages ${ids[*]}"
get "/widgets/$W1/sessions?active=false"
hn_assert_eq "sessions: active=false → the ended one" "sessA00001 false" "$(j '[.sessions[].session_id] | join(",")') $(j '.sessions[0].is_active')"
get "/widgets/$W1/sessions?from=2020-01-01&to=2020-01-02"
hn_assert_eq "sessions: empty range" "0 null" "$(j '.sessions | length') $(j .next_cursor)"

# --- the CSV export ----------------------------------------------------------------------------
get "/widgets/$W1/export.csv?what=sessions"
hn_assert_eq "export sessions: 200 text/csv, header + 4 rows" "200 5" "$ST $(wc -l <"$BODY")"
hn_assert_cmd "export: attachment filename" grep -qi "content-disposition: attachment; filename=\"herenow-$W1-sessions-" "$HN_TMP/headers"
hn_assert_cmd "export: header row" bash -c "head -1 '$BODY' | grep -q '^session_id,visitor_id,started,last_active,ended,is_active,page_views'"
hn_assert_cmd "export: a formula in a visitor's name is neutralised with a quote" grep -qF "\"'=HYPERLINK(\"\"http://evil.example/\"\",\"\"x\"\")\"" "$BODY"
hn_assert_eq "export: no cell starts with =" 0 "$(grep -c '^=\|,=' "$BODY" || true)"
get "/widgets/$W1/export.csv?what=pageviews"
hn_assert_eq "export pageviews: header + 6 rows" 7 "$(wc -l <"$BODY")"
get "/widgets/$W1/export.csv?what=events"
hn_assert_eq "export events: header + 4 rows (no heartbeats)" 5 "$(wc -l <"$BODY")"
get "/widgets/$W1/export.csv?what=events&include=heartbeats"
hn_assert_eq "export events with heartbeats: header + 7 rows" 8 "$(wc -l <"$BODY")"

# --- a session only in Redis (not drained yet) --------------------------------------------------
now=$(($(date +%s%N) / 1000000))
hn_redis ZADD "hn:live:{$W1}" "$now" sessF00001 >/dev/null
hn_redis HSET "hn:sess:{$W1}:sessF00001" status active started "$now" last_seen "$now" url "$U/f" pageviews 1 >/dev/null
get /sessions/sessF00001
hn_assert_eq "session only in Redis: from Redis, empty history" "200 redis active $U/f 0 0" \
    "$ST $(j '"\(.source) \(.status) \(.current_page_url) \(.pages | length) \(.events | length)"')"
get /sessions/sessF00001 "$TOK2"
hn_assert_eq "session only in Redis: another widget's token: 404" 404 "$ST"

# --- bad parameters: 400 naming the parameter; nothing changes ------------------------------------
counts() { hn_psql "SELECT concat_ws(' ', (SELECT count(*) FROM widget_visitor_sessions), (SELECT count(*) FROM widget_page_views), (SELECT count(*) FROM widget_visitor_events), (SELECT count(*) FROM widget_configs), (SELECT count(*) FROM api_tokens), (SELECT sum(sessions) FROM widget_rollup_hourly))"; }
before=$(counts)
live_before=$(hn_redis ZCARD "hn:live:{$W1}")
LONG=$(head -c 3000 /dev/zero | tr '\0' 9)
INJ="%27%20OR%201%3D1--"
bad() {   # bad METHOD PATH WORD: 400 and the reason names WORD
    req "$1" "$2"
    local err
    err=$(jq -r '.error // empty' "$BODY" 2>/dev/null || true)
    if [ "$ST" = 400 ] && [[ $err == *"$3"* ]]; then
        hn_ok "400 for $1 ${2:0:70} ($err)"
    else
        hn_fail "$1 $2: expected 400 naming '$3', got $ST $(head -c 200 "$BODY")"
    fi
}
A="/widgets/$W1"
bad GET "/widgets?widget=1" "unknown parameter"
for q in "limit=0" "limit=1001" "limit=abc" "limit=$INJ" "limit=$LONG" "limit=%2B5" "limit=5%20"; do bad GET "$A/active-visitors?$q" limit; done
for q in "cursor=abc" "cursor=$INJ" "cursor=$LONG" "cursor=%E2%82%AC%E2%82%AC%E2%82%AC%E2%82%AC"; do bad GET "$A/active-visitors?$q" cursor; done
bad GET "$A/active-visitors?status=gone" status
bad GET "$A/active-visitors?limt=5" "unknown parameter 'limt'"
for sid in short "$INJ" "s%C3%A9ssion0001" "$(head -c 65 /dev/zero | tr '\0' a)" "sess.00001"; do
    bad GET "/sessions/$sid" sessionId
    bad POST "/sessions/$sid/deactivate" sessionId
done
bad GET "/sessions/sessA00001?widget=0" widget
bad GET "/sessions/sessA00001?widget=$INJ" widget
bad GET "/sessions/sessA00001?widget=99999999999" widget
bad GET "/sessions/sessA00001?include=everything" include
bad GET "/sessions/sessA00001?from=1d" "unknown parameter"
bad POST "/sessions/sessA00001/deactivate?widget=-1" widget
bad DELETE "$A/visitors/a%01b" visitor
bad DELETE "$A/visitors/%FF%FE" visitor
bad DELETE "$A/visitors/$(head -c 129 /dev/zero | tr '\0' v)" visitor
bad DELETE "$A/visitors/user-42?force=1" "unknown parameter"
for r in visitor-stats timeseries sessions export.csv; do
    sep="?"; [ "$r" = export.csv ] && sep="?what=sessions&"
    bad GET "$A/$r${sep}from=yesterday" from
    bad GET "$A/$r${sep}from=$INJ" from
    bad GET "$A/$r${sep}from=2026-11-01T10:00:00" from
    bad GET "$A/$r${sep}from=2026-02-30" from
    bad GET "$A/$r${sep}to=soon" to
    bad GET "$A/$r${sep}from=2026-11-02&to=2026-11-01" "before"
    case $r in
    sessions|export.csv) bad GET "$A/$r${sep}from=2020-01-01&to=2026-01-01" "400 days" ;;
    *) bad GET "$A/$r${sep}from=1970-01-01&to=2071-01-01" "36525 days" ;;
    esac
    bad GET "$A/$r${sep}from=$LONG" from
done
bad GET "$A/timeseries?interval=minute" interval
bad GET "$A/timeseries?from=100d&interval=hour" interval
bad GET "$A/breakdown" by
bad GET "$A/breakdown?by=city" by
bad GET "$A/breakdown?by=$INJ" by
bad GET "$A/breakdown?by=page&limit=0" limit
bad GET "$A/breakdown?by=page&from=36526d" "36525 days"
bad GET "$A/timeseries?from=2020-01-01&to=2026-01-01&interval=day" "buckets"
bad GET "$A/breakdown?by=page&cursor=x" "unknown parameter"
bad GET "$A/sessions?active=1" active
bad GET "$A/sessions?limit=-1" limit
bad GET "$A/sessions?cursor=x" cursor
get "$A/active-visitors?limit=1"
bad GET "$A/sessions?cursor=$(j .next_cursor)" cursor      # another route's cursor
bad GET "$A/export.csv" what
bad GET "$A/export.csv?what=users" what
bad GET "$A/export.csv?what=pageviews&include=heartbeats" include
hn_assert_eq "bad parameters changed no table" "$before" "$(counts)"
hn_assert_eq "bad parameters changed no live set" "$live_before" "$(hn_redis ZCARD "hn:live:{$W1}")"

# --- deactivate -------------------------------------------------------------------------------------
req POST /sessions/sessB00001/deactivate
hn_assert_eq "deactivate: 200, was live" "200 true true $W1" "$ST $(j '"\(.deactivated) \(.was_live) \(.widget_id)"')"
hn_assert_eq "deactivate: out of the live set, snapshot gone, queued for the trimmer" "0 gone 1" \
    "$(hn_redis ZSCORE "hn:live:{$W1}" sessB00001 | wc -w) $(hn_redis HGET "hn:sess:{$W1}:sessB00001" status) $(hn_redis ZSCORE "hn:ended:{$W1}" sessB00001 | wc -w)"
hn_assert_eq "deactivate: PostgreSQL row inactive with an end" "f t" \
    "$(hn_psql "SELECT concat_ws(' ', is_active, session_ended_at IS NOT NULL) FROM widget_visitor_sessions WHERE session_id = 'sessB00001'")"
get "$A/active-visitors"
hn_assert_eq "deactivate: not listed any more" "sessF00001,sessD00001,sessC00001" "$(j '[.visitors[].session_id] | join(",")')"
get /sessions/sessB00001
hn_assert_eq "deactivate: session details say gone" "gone false" "$(j '"\(.status) \(.is_active)"')"
req POST /sessions/sessB00001/deactivate
hn_assert_eq "deactivate again: 200, no longer live" "200 false" "$ST $(j .was_live)"
req POST /sessions/sessA00001/deactivate "$TOK2"
hn_assert_eq "deactivate with another widget's token: 404" 404 "$ST"
req POST /sessions/sessZ00001/deactivate
hn_assert_eq "deactivate unknown: 404" 404 "$ST"

# --- erase a visitor ----------------------------------------------------------------------------------
stats_before=$(curl -s -H "Authorization: Bearer $TOK" "$BASE$A/visitor-stats" | jq -c 'del(.active_now, .from, .to)')
req DELETE "$A/visitors/user-42" "$TOK2"
hn_assert_eq "erase with another widget's token: 403" 403 "$ST"
req DELETE "$A/visitors/user-42"
hn_assert_eq "erase user-42: 2 sessions, 3 page views, 2 events, presence cleared" "200 2 3 2 true" \
    "$ST $(j '"\(.sessions) \(.page_views) \(.events) \(.presence_cleared)"')"
hn_assert_eq "erase: nothing of user-42 left in PostgreSQL" "0 0 0 0" \
    "$(hn_psql "SELECT concat_ws(' ', (SELECT count(*) FROM widget_visitor_sessions WHERE visitor_id = 'user-42'), (SELECT count(*) FROM widget_page_views WHERE session_id IN ('sessC00001', 'sessD00001')), (SELECT count(*) FROM widget_visitor_events WHERE session_id IN ('sessC00001', 'sessD00001')), (SELECT count(*) FROM widget_visitor_days WHERE visitor_id = 'user-42'))")"
hn_assert_eq "erase: nor in Redis" "0 0 0" \
    "$(hn_redis ZSCORE "hn:live:{$W1}" sessC00001 | wc -w) $(hn_redis ZSCORE "hn:live:{$W1}" sessD00001 | wc -w) $(hn_redis EXISTS "hn:sess:{$W1}:sessC00001" "hn:sess:{$W1}:sessD00001")"
hn_assert_eq "erase: other visitors untouched" "sessA00001 sessB00001" \
    "$(hn_psql "SELECT string_agg(session_id, ' ' ORDER BY session_id) FROM widget_visitor_sessions WHERE widget_id = $W1")"
get /sessions/sessD00001
hn_assert_eq "erase: the session is 404 now" 404 "$ST"
hn_assert_eq "erase: rollups keep their counts" "$stats_before" \
    "$(curl -s -H "Authorization: Bearer $TOK" "$BASE$A/visitor-stats" | jq -c 'del(.active_now, .from, .to)')"
req DELETE "$A/visitors/user-42"
hn_assert_eq "erase again: 404" "404 visitor not found" "$ST $(j .error)"

# --- Redis down -------------------------------------------------------------------------------------------
hn_redis_stop   # (on a cluster: every node)
get "$A/active-visitors"
hn_assert_eq "Redis down: active-visitors 503 JSON" "503 redis unavailable" "$ST $(j .error)"
get "$A/visitor-stats"
hn_assert_eq "Redis down: stats still answer, active_now null" "200 null 4" "$ST $(j .active_now) $(j .sessions)"
get /sessions/sessZ00001
hn_assert_eq "Redis down: a session not in PostgreSQL: 503" 503 "$ST"

hn_done
