#!/usr/bin/env bash
# test_sse.sh: the live stream (GET …/active-visitors/stream) and its
# tickets, and the dashboard's files, against real Redis, PostgreSQL,
# herenow-collector (UDP) and herenow-api. Streams are read with curl -N into
# files; everything is polled with a deadline.
#
#   1. the dashboard's files: /, gzip, ETag/304, CSP and the other headers,
#      404 for what is not there (traversal too), 405
#   2. tickets: minted with a token, single use, bound to the widget and to
#      the token's scope; forged, expired, misplaced → 401; the ticket is
#      masked in the access log
#   3. events within 1 s of the beacon: snapshot, enter, update (page),
#      idle, leave (end), leave (timeout), leave (deactivated: reconcile)
#   4. Last-Event-ID: replay without a snapshot; a foreign id: snapshot;
#      a malformed last_event_id: 400
#   5. one reader per widget: Redis sees the same XREAD rate with 1 stream
#      as with 6
#   6. pings, the lifetime cap, a revoked token, a client that does not
#      read (slow), the stop (bye, exit 0)
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

CTL="$HN_BIN/herenowctl"
hn_start_stores
read -r WID KEY <<<"$(hn_widget_add --name "Live" --domain example.com)"
hn_widget_id_apart "$WID"   # on a cluster: the two widgets' keys on two masters
read -r WID2 KEY2 <<<"$(hn_widget_add --name "Other" --domain other.example)"
hn_cluster_two_masters "widgets $WID and $WID2" "hn:live:{$WID}" "hn:live:{$WID2}"
TOK=$("$CTL" token create --all 2>/dev/null)
TOK2=$("$CTL" token create --widget "$WID2" 2>/dev/null)
TOKR=$("$CTL" token create --widget "$WID" 2>/dev/null)      # revoked in §6

UDP=$(hn_free_port)
ADMIN=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_LIVE_WINDOW_S=6 HERENOW_ACTIVE_S=5 HERENOW_TRIM_INTERVAL_MS=500
hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
export HERENOW_DRAIN=off HERENOW_API_WWW=$HN_ROOT/api/www HERENOW_SSE_PING_S=1 \
    HERENOW_SSE_RECONCILE_MS=500 HERENOW_SSE_TICKET_TTL_S=5 HERENOW_SSE_MAX_LIFETIME_S=3600 \
    HERENOW_SSE_MAX_BUFFER_KB=1024 HERENOW_TOKEN_REFRESH_MS=200 HERENOW_LOG_LEVEL=info \
    HERENOW_API_CORS_ORIGINS="https://admin.example, https://ops.example"
# hn_start_api waits for /livez; until the token thread has read PostgreSQL
# every authenticated request (a stream too) is answered 503: wait for /readyz
start_api() {
    hn_start_api "$@"
    hn_wait_for 10 "herenow-api ready (tokens loaded)" curl -fsS "$HN_API_URL/readyz"
}
start_api
A=$HN_API_URL/api/visitor-tracking
W=$A/widgets/$WID

send() { "$CTL" send --key "$KEY" --to "127.0.0.1:$UDP" "$@" >/dev/null; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# events FILE: "type json" per event of an SSE capture
events() { awk '/^event: /{t=$2} /^data: /{print t, substr($0, 7)}' "$1"; }
has_event() { events "$1" | grep -q -- "$2"; }
started() { grep -q '^event: snapshot$' "$1"; }
# within SECS DESC FILE PATTERN: an event line matching PATTERN shows up in
# FILE within SECS (the time it took is printed)
within() {
    local secs=$1 desc=$2 file=$3 pat=$4 t0
    t0=$(now_ms)
    if hn_wait_for "$secs" "$desc" has_event "$file" "$pat"; then hn_ok "$desc ($(($(now_ms) - t0)) ms)"; fi
}
ticket() { curl -s -X POST -H "Authorization: Bearer ${2:-$TOK}" "$A/widgets/${1:-$WID}/active-visitors/stream/ticket"; }
metric() { curl -s "$HN_API_URL/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
CURLS=()
# stream NAME URL [CURL ARGS...]: curl -N in the background into $HN_TMP/NAME.sse
stream() {
    local name=$1 url=$2
    shift 2
    curl -sN "$@" "$url" >"$HN_TMP/$name.sse" 2>/dev/null &
    CURLS+=($!)
    hn_oa_sse "$HN_TMP/$name.sse" "$url"
    printf -v "PID_$name" '%s' "$!"
}

# ---- 1. the dashboard's files ----------------------------------------------------------
H=$HN_TMP/h
header() { grep -i "^$1:" "$H" | head -1 | cut -d: -f2- | sed 's/^ *//' | tr -d '\r'; }
st=$(curl -s -o "$HN_TMP/index.html" -D "$H" -w '%{http_code}' "$HN_API_URL/")
hn_assert_eq "GET /: 200" 200 "$st"
hn_assert_cmd "GET /: the dashboard's index.html" cmp "$HN_TMP/index.html" "$HN_ROOT/api/www/index.html"
hn_assert_cmd "GET /: text/html ($(header content-type))" bash -c "[[ '$(header content-type)' == text/html* ]]"
csp=$(header content-security-policy)
hn_assert_cmd "GET /: a CSP with default-src 'none', script-src 'self', no 'unsafe-inline' ($csp)" \
    bash -c "[[ \"$csp\" == *\"default-src 'none'\"* && \"$csp\" == *\"script-src 'self'\"* && \"$csp\" != *unsafe* && \"$csp\" == *\"frame-ancestors 'none'\"* ]]"
hn_assert_eq "GET /: X-Frame-Options DENY" DENY "$(header x-frame-options)"
hn_assert_eq "GET /: Referrer-Policy no-referrer" no-referrer "$(header referrer-policy)"
hn_assert_eq "GET /: X-Content-Type-Options nosniff" nosniff "$(header x-content-type-options)"
hn_assert_eq "GET /: Cross-Origin-Opener-Policy same-origin" same-origin "$(header cross-origin-opener-policy)"
etag=$(header etag)
st=$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$HN_API_URL/")
hn_assert_eq "GET / with If-None-Match: 304" 304 "$st"
st=$(curl -s -o "$HN_TMP/index.gz" -D "$H" -w '%{http_code}' -H 'Accept-Encoding: gzip' "$HN_API_URL/")
hn_assert_eq "GET / gzip: Content-Encoding gzip" gzip "$(header content-encoding)"
hn_assert_cmd "GET / gzip: inflates to index.html" bash -c "gzip -dc '$HN_TMP/index.gz' | cmp - '$HN_ROOT/api/www/index.html'"
hn_assert_cmd "GET / gzip: its own ETag ($(header etag) vs $etag)" test "$(header etag)" != "$etag"
for p in /nothing.js /../etc/passwd /%2e%2e/etc/passwd /index.html/ /app.js/x; do
    hn_assert_eq "GET $p: 404" 404 "$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "$HN_API_URL$p")"
done
hn_assert_eq "POST /: 405" 405 "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$HN_API_URL/")"
hn_assert_cmd "JSON answers carry X-Frame-Options and Referrer-Policy too" \
    bash -c "curl -sD - -o /dev/null '$HN_API_URL/api/visitor-tracking/widgets' | grep -qi '^x-frame-options: DENY' && curl -sD - -o /dev/null '$HN_API_URL/api/visitor-tracking/widgets' | grep -qi '^referrer-policy: no-referrer'"

# CORS: listed origins may call the API from their pages, others get nothing
acao() { curl -s -o /dev/null -D - "$@" | tr -d '\r' | awk -F': ' 'tolower($1) == "access-control-allow-origin" { print $2 }'; }
hn_assert_eq "CORS: a listed origin gets Access-Control-Allow-Origin" https://ops.example \
    "$(acao -H 'Origin: https://ops.example' -H "Authorization: Bearer $TOK" "$A/widgets")"
hn_assert_eq "CORS: another origin gets none" "" \
    "$(acao -H 'Origin: https://evil.example' -H "Authorization: Bearer $TOK" "$A/widgets")"
hn_assert_eq "CORS: a preflight of a listed origin: 204, methods and the Authorization header allowed" \
    "204 GET, POST, PUT, DELETE Authorization, Last-Event-ID" \
    "$(curl -s -o /dev/null -D - -X OPTIONS -H 'Origin: https://admin.example' -H 'Access-Control-Request-Method: GET' "$W/active-visitors" | tr -d '\r' |
        awk -F': ' 'NR == 1 { split($0, a, " "); st = a[2] } tolower($1) == "access-control-allow-methods" { m = $2 } tolower($1) == "access-control-allow-headers" { h = $2 } END { print st, m, h }')"
hn_assert_eq "CORS: a preflight of another origin: 403" 403 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: https://admin.example.evil' "$W/active-visitors")"

# ---- 2. tickets ---------------------------------------------------------------------------
T=$(ticket)
TK=$(jq -r .ticket <<<"$T")
hn_assert_cmd "POST …/stream/ticket: a ticket (hnt_ + 64 base64url chars)" bash -c "[[ '$TK' =~ ^hnt_[A-Za-z0-9_-]{64}\$ ]]"
hn_assert_eq "POST …/stream/ticket: expires_in_s and the stream URL" \
    "5 /api/visitor-tracking/widgets/$WID/active-visitors/stream?ticket=$TK" "$(jq -r '"\(.expires_in_s) \(.stream)"' <<<"$T")"
hn_assert_eq "POST …/stream/ticket without a token: 401" 401 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$W/active-visitors/stream/ticket")"
hn_assert_eq "POST …/stream/ticket with another widget's token: 403" 403 \
    "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $TOK2" "$W/active-visitors/stream/ticket")"
hn_assert_eq "GET …/stream without a token or ticket: 401" 401 \
    "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$W/active-visitors/stream")"
hn_assert_eq "GET …/stream of another widget with a widget token: 403" 403 \
    "$(curl -s -m 5 -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOK2" "$W/active-visitors/stream")"
T2=$(ticket "$WID2" "$TOK2" | jq -r .ticket)
hn_assert_eq "a ticket of widget $WID2 on widget $WID's stream: 401" \
    '401 the ticket is for another widget' \
    "$(curl -s -m 5 -w ' %{http_code}' "$W/active-visitors/stream?ticket=$T2" | jq -rR 'split(" ") | "\(.[-1]) \(.[:-1] | join(" ") | fromjson | .error)"')"
FORGED="${TK:0:20}$( [ "${TK:20:1}" = A ] && echo B || echo A )${TK:21}"
hn_assert_eq "a forged ticket: 401" 401 "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$W/active-visitors/stream?ticket=$FORGED")"
hn_assert_eq "a ticket on another route (active-visitors): 401" 401 \
    "$(curl -s -o /dev/null -w '%{http_code}' "$W/active-visitors?ticket=$TK")"
stream t1 "$W/active-visitors/stream?ticket=$TK" -D "$HN_TMP/t1.h"
hn_wait_for 5 "the ticket opens the stream (snapshot)" started "$HN_TMP/t1.sse"
H=$HN_TMP/t1.h
hn_assert_cmd "the stream: 200 text/event-stream, no-store" \
    bash -c "grep -q '^HTTP/1.1 200' '$H' && [[ '$(header content-type)' == text/event-stream* ]] && [ '$(header cache-control)' = no-store ]"
hn_assert_cmd "the stream starts with retry:" bash -c "head -1 '$HN_TMP/t1.sse' | grep -q '^retry: [0-9]'"
hn_assert_eq "the same ticket again: 401 (single use)" \
    '401 ticket already used (ask for a new one)' \
    "$(curl -s -m 5 -w ' %{http_code}' "$W/active-visitors/stream?ticket=$TK" | jq -rR 'split(" ") | "\(.[-1]) \(.[:-1] | join(" ") | fromjson | .error)"')"
kill "$PID_t1"
TE=$(ticket | jq -r .ticket)
t0=$(now_ms)
expired() { [ "$(hn_oa_curl "$HN_TMP/discard" -m 5 "$W/active-visitors/stream?ticket=$TE")" = 401 ]; }
# (a probe that came too early would open the stream and use the ticket up:
# wait out the TTL first, then probe once)
hn_wait_for 8 "5 s passed" bash -c "[ \$((\$(date +%s%N) / 1000000 - $t0)) -ge 5100 ]"
hn_assert_cmd "a ticket after its 5 s: 401" expired
hn_assert_cmd "the access log masks tickets (hnt_***), never prints one" \
    bash -c "grep -q 'ticket=hnt_\*\*\*' '$HN_TMP/api.log' && ! grep -q '$TK' '$HN_TMP/api.log' && ! grep -q '${TE:4:20}' '$HN_TMP/api.log'"
hn_assert_eq "tickets counted: minted, accepted, reused, forged, expired, wrong widget" "3 1 1 1 1 1" \
    "$(for r in minted accepted reused forged expired wrong_widget; do metric "herenow_api_stream_tickets_total{result=\"$r\"}"; done | tr '\n' ' ' | sed 's/ $//')"

# ---- 3. events within 1 s ------------------------------------------------------------------
send --session liveAAAA0001 --url https://example.com/a --title "Page A"
hn_wait_for 5 "the first visitor is live (API)" bash -c "curl -s -H 'Authorization: Bearer $TOK' '$W/active-visitors' | jq -e '.total == 1'"
# The REST list reads Redis; a stream's snapshot is the hub's list, which
# still holds widget $WID from §2 (kept a minute unwatched). A subscription
# runs a tick (an XREAD) before its snapshot, so once the record is in the
# stream the snapshot has the visitor (it used to be served from the last
# tick's list: a visitor up to 100 ms old came as an enter after it).
# (grep -c reads to the end: with pipefail, grep -q would fail the loop's later reads)
in_stream() { [ "$(for k in $(hn_stream_keys); do hn_redis XREVRANGE "$k" + - COUNT 50; done | grep -ac liveAAAA0001)" -gt 0 ]; }
hn_wait_for 5 "the first visitor's record is in the stream" in_stream
stream s1 "$W/active-visitors/stream" -H "Authorization: Bearer $TOK"
within 5 "stream 1: a snapshot with the visitor already there" "$HN_TMP/s1.sse" '^snapshot .*"session_id":"liveAAAA0001"'
send --session liveBBBB0001 --url https://example.com/b --title "Page B" --lang de-DE
within 1 "enter within 1 s of the first beacon" "$HN_TMP/s1.sse" '^enter .*"session_id":"liveBBBB0001".*"url":"https://example.com/b"'
send --session liveBBBB0001 --seq 2 --url https://example.com/b2 --title "Page B2"
within 1 "update within 1 s of a page view: url, title, page_views 2" "$HN_TMP/s1.sse" \
    '^update {"session_id":"liveBBBB0001","status":"active",.*"url":"https://example.com/b2","title":"Page B2","page_views":2'
send --session liveBBBB0001 --seq 3 --type hide --engaged 1500
within 1 "update within 1 s of hide: status idle" "$HN_TMP/s1.sse" '^update {"session_id":"liveBBBB0001","status":"idle"'
send --session liveBBBB0001 --seq 4 --type show
within 1 "update within 1 s of show: active again" "$HN_TMP/s1.sse" \
    '^update {"session_id":"liveBBBB0001","status":"active".*'
send --session liveBBBB0001 --seq 5 --type id --visitor-name "Ada Lovelace" --email ada@example.org
within 1 "update within 1 s of identify: name and email" "$HN_TMP/s1.sse" \
    '^update {"session_id":"liveBBBB0001".*"name":"Ada Lovelace","email":"ada@example.org"'
n0=$(events "$HN_TMP/s1.sse" | wc -l)
send --session liveAAAA0001 --seq 2 --type hb --engaged 500
send --session liveBBBB0001 --seq 6 --type end --engaged 100
hn_wait_for 2 "the end's leave" has_event "$HN_TMP/s1.sse" '^leave {"session_id":"liveBBBB0001"'
hn_assert_eq "a heartbeat that changes nothing visible makes no event (only the end's leave came)" \
    "leave" "$(events "$HN_TMP/s1.sse" | tail -n +$((n0 + 1)) | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//')"
hn_assert_cmd "leave with reason end after the end beacon" has_event "$HN_TMP/s1.sse" \
    '^leave {"session_id":"liveBBBB0001","reason":"end"}'
send --session liveCCCC0001 --url https://example.com/c
within 1 "enter of a third visitor" "$HN_TMP/s1.sse" '^enter .*"session_id":"liveCCCC0001"'
curl -s -X POST -H "Authorization: Bearer $TOK" "$A/sessions/liveCCCC0001/deactivate?widget=$WID" >/dev/null
within 2 "deactivate: leave (gone) within the 0.5 s reconcile" "$HN_TMP/s1.sse" '^leave {"session_id":"liveCCCC0001","reason":"gone"}'
# On a cluster the end script (the widget's node) can run before the end
# record reaches its stream shard (another node): the hub meets the session
# gone from hn:live first. What the end script leaves in Redis (here for an
# end with q 1), with no record at all, must still read as an end.
send --session liveCCCC0002 --url https://example.com/c2
within 1 "enter of a fourth visitor" "$HN_TMP/s1.sse" '^enter .*"session_id":"liveCCCC0002"'
hn_redis_at "hn:live:{$WID}" EVAL "redis.call('HSET',KEYS[3],'status','gone','last_seen',ARGV[2],'ended','1')
redis.call('ZREM',KEYS[1],ARGV[1]) redis.call('ZADD',KEYS[2],ARGV[2],ARGV[1]) return 1" \
    3 "hn:live:{$WID}" "hn:ended:{$WID}" "hn:sess:{$WID}:liveCCCC0002" liveCCCC0002 "$(now_ms)" >/dev/null
within 2 "the end script's work without its record: leave (end) within the 0.5 s reconcile" "$HN_TMP/s1.sse" \
    '^leave {"session_id":"liveCCCC0002","reason":"end"}'
# A session back after its end keeps the end script's mark (no beacon deletes
# it), but a later way out of hn:live is not that end: here a ZREM alone.
send --session liveCCCC0003 --url https://example.com/c3
within 1 "enter of a visitor who will come back" "$HN_TMP/s1.sse" '^enter .*"session_id":"liveCCCC0003"'
send --session liveCCCC0003 --seq 2 --type end
within 2 "… its end: leave (end)" "$HN_TMP/s1.sse" '^leave {"session_id":"liveCCCC0003","reason":"end"}'
send --session liveCCCC0003 --seq 3 --url https://example.com/c3b
within 1 "… back on another page: enter again" "$HN_TMP/s1.sse" '^enter .*"session_id":"liveCCCC0003".*"url":"https://example.com/c3b"'
hn_redis_at "hn:live:{$WID}" ZREM "hn:live:{$WID}" liveCCCC0003 >/dev/null
within 2 "… then out of hn:live with its hash kept: leave (gone), not the old end" "$HN_TMP/s1.sse" \
    '^leave {"session_id":"liveCCCC0003","reason":"gone"}'
# … while a beacon sent before the end but flushed after it (another thread)
# does not hide the end: it writes a lower q than the end's.
send --session liveCCCC0004 --url https://example.com/c4
within 1 "enter of a visitor whose hide comes late" "$HN_TMP/s1.sse" '^enter .*"session_id":"liveCCCC0004"'
send --session liveCCCC0004 --seq 3 --type end
within 2 "… its end (q 3): leave (end)" "$HN_TMP/s1.sse" '^leave {"session_id":"liveCCCC0004","reason":"end"}'
send --session liveCCCC0004 --seq 2 --type hide
within 1 "… the hide sent before it (q 2) arrives after it" "$HN_TMP/s1.sse" '^enter .*"session_id":"liveCCCC0004"'
hn_redis_at "hn:live:{$WID}" ZREM "hn:live:{$WID}" liveCCCC0004 >/dev/null
within 2 "… then out of hn:live with its hash kept: leave (end), the end is still its way out" "$HN_TMP/s1.sse" \
    '^leave {"session_id":"liveCCCC0004","reason":"end"}'
# liveAAAA0001's last beacon was the heartbeat above: the 6 s live window
within 9 "a visitor quiet for the live window leaves" "$HN_TMP/s1.sse" '^leave {"session_id":"liveAAAA0001"'
hn_assert_cmd "…with reason timeout (the hub's clock) or gone (the trimmer was first)" \
    bash -c "grep -qE '^data: \\{\"session_id\":\"liveAAAA0001\",\"reason\":\"(timeout|gone)\"' '$HN_TMP/s1.sse'"
hn_assert_cmd "…after turning idle (quiet longer than HERENOW_ACTIVE_S=5)" has_event "$HN_TMP/s1.sse" \
    '^update {"session_id":"liveAAAA0001","status":"idle"'
ids=$(grep '^id: ' "$HN_TMP/s1.sse" | sed 's/^id: //')
hn_assert_cmd "event ids are <epoch>-<seq>, one epoch, seqs increasing" bash -c "
    printf '%s\n' $(echo $ids) | awk -F- 'NR == 1 { e = \$1; s = \$2; next } \$1 != e || \$2 + 0 < s + 0 { exit 1 } { s = \$2 }'"

# ---- 4. Last-Event-ID ------------------------------------------------------------------------
send --session liveDDDD0001 --url https://example.com/d
within 1 "enter of a fifth visitor" "$HN_TMP/s1.sse" '^enter .*"session_id":"liveDDDD0001"'
LAST=$(grep '^id: ' "$HN_TMP/s1.sse" | tail -1 | sed 's/^id: //')
send --session liveDDDD0001 --seq 2 --url https://example.com/d2
within 1 "update of the fourth visitor" "$HN_TMP/s1.sse" '^update {"session_id":"liveDDDD0001".*"url":"https://example.com/d2"'
stream r1 "$W/active-visitors/stream" -H "Authorization: Bearer $TOK" -H "Last-Event-ID: $LAST"
within 5 "reconnect with Last-Event-ID: the missed update is replayed" "$HN_TMP/r1.sse" '^update {"session_id":"liveDDDD0001".*"url":"https://example.com/d2"'
hn_assert_cmd "reconnect with Last-Event-ID: no snapshot" bash -c "! grep -q '^event: snapshot' '$HN_TMP/r1.sse'"
TR=$(ticket | jq -r .ticket)
stream r2 "$W/active-visitors/stream?ticket=$TR&last_event_id=0badc0de-5"
within 5 "last_event_id of another epoch: a snapshot" "$HN_TMP/r2.sse" '^snapshot .*"session_id":"liveDDDD0001"'
hn_assert_eq "last_event_id malformed: 400" 400 \
    "$(hn_oa_curl "$HN_TMP/discard" -m 5 -H "Authorization: Bearer $TOK" "$W/active-visitors/stream?last_event_id=zzz")"
TB=$(ticket | jq -r .ticket)
hn_assert_eq "a ticket with a malformed last_event_id: 400" 400 \
    "$(hn_oa_curl "$HN_TMP/discard" -m 5 "$W/active-visitors/stream?ticket=$TB&last_event_id=zzz")"
stream tb "$W/active-visitors/stream?ticket=$TB"
hn_wait_for 5 "…and the refusal did not use the ticket up: it opens the stream" started "$HN_TMP/tb.sse" &&
    hn_ok "a ticket refused for a bad parameter is not used up (it opens the stream after)"
kill "$PID_tb"
hn_assert_eq "an unknown parameter on the stream: 400" 400 \
    "$(hn_oa_curl "$HN_TMP/discard" -m 5 -H "Authorization: Bearer $TOK" "$W/active-visitors/stream?limit=5")"

# ---- 5. one reader per widget ------------------------------------------------------------------
# (the calls on every master)
xreads() { hn_redis_all INFO commandstats | tr -d '\r' | awk -F'[=,:]' '/^cmdstat_xread:/ { n += $3 } END { print n + 0 }'; }
rate() {   # XREAD calls over 2 s
    local a b t0
    a=$(xreads); t0=$(now_ms)
    hn_wait_for 3 "2 s passed" bash -c "[ \$((\$(date +%s%N) / 1000000 - $t0)) -ge 2000 ]"
    b=$(xreads)
    echo $((b - a))
}
kill "$PID_r1" "$PID_r2"
one=$(rate)
for i in 1 2 3 4 5; do stream "m$i" "$W/active-visitors/stream" -H "Authorization: Bearer $TOK"; done
for i in 1 2 3 4 5; do hn_wait_for 5 "stream m$i started" has_event "$HN_TMP/m$i.sse" '^snapshot '; done
six=$(rate)
if hn_cluster_mode; then
    # a cluster splits an XREAD into one per key (the hub's: each shard and hn:chat:{w}) and
    # polls for a BLOCK (the rules engine's: every 10-50 ms; common/rcl_xread.c): no
    # absolute bound, but 5 more readers would add 5 x 40 calls in 2 s
    hn_assert_cmd "6 streams of one widget: Redis sees the XREAD rate of 1 ($one vs $six calls in 2 s, at most 1.25 x + 25)" \
        test "$six" -le $((one * 5 / 4 + 25)) -a "$six" -gt 0
else
    hn_assert_cmd "6 streams of one widget: Redis sees the XREAD rate of 1 ($one vs $six calls in 2 s, at most 25)" \
        test "$six" -le 25 -a "$one" -le 25 -a "$six" -gt 0
fi
hn_assert_eq "6 streams: the hub keeps one widget list" 1 "$(metric herenow_live_widgets)"
send --session liveEEEE0001 --url https://example.com/e
for i in 1 2 3 4 5; do within 1 "stream m$i: the enter" "$HN_TMP/m$i.sse" '^enter .*"session_id":"liveEEEE0001"'; done
for i in 1 2 3 4 5; do kill "$(eval echo "\$PID_m$i")"; done

# on a cluster: the live list of the other widget, whose keys live on another master
if hn_cluster_mode; then
    stream o1 "$A/widgets/$WID2/active-visitors/stream" -H "Authorization: Bearer $TOK2"
    hn_wait_for 5 "widget $WID2's stream started" started "$HN_TMP/o1.sse"
    "$CTL" send --key "$KEY2" --to "127.0.0.1:$UDP" --session otherAAA0001 --url https://other.example/a >/dev/null
    within 1 "widget $WID2 (master $(hn_cluster_master_of "hn:live:{$WID2}")): the enter" "$HN_TMP/o1.sse" \
        '^enter .*"session_id":"otherAAA0001".*"url":"https://other.example/a"'
    send --session liveFFFF0001 --url https://example.com/f
    within 1 "widget $WID (master $(hn_cluster_master_of "hn:live:{$WID}")): the enter on stream 1" "$HN_TMP/s1.sse" \
        '^enter .*"session_id":"liveFFFF0001"'
    hn_assert_cmd "neither widget's stream got the other's visitor" \
        bash -c "! grep -q otherAAA0001 '$HN_TMP/s1.sse' && ! grep -q liveFFFF0001 '$HN_TMP/o1.sse'"
    kill "$PID_o1"
fi

# ---- 6. pings, lifetime, revoked, slow, stop ----------------------------------------------------
t0=$(now_ms)
hn_wait_for 3 "a ': ping' comment on a quiet stream within 2 s (HERENOW_SSE_PING_S=1)" grep -q '^: ping$' "$HN_TMP/s1.sse" &&
    hn_ok "a ': ping' comment on a quiet stream ($(($(now_ms) - t0)) ms)"
stream rv "$W/active-visitors/stream" -H "Authorization: Bearer $TOKR"
hn_wait_for 5 "the soon-revoked token's stream starts" started "$HN_TMP/rv.sse"
"$CTL" token revoke "$(cut -d_ -f2 <<<"$TOKR")" >/dev/null
within 3 "token revoked: bye (revoked) within the refresh + 1 s" "$HN_TMP/rv.sse" '^bye {"reason":"revoked"}'
hn_wait_for 3 "…and the stream ends" bash -c "! kill -0 $PID_rv 2>/dev/null"

# a client that never reads, with a 2 KiB receive buffer, and a snapshot of
# 6 MB (3000 sessions with 2 KB URLs, written into Redis as the collector
# would): more than the kernel's buffers (tcp_wmem ≤ 4 MB) can take, so over
# 1 MiB stays waiting and does not go down → ended as slow
long=$(head -c 2000 /dev/zero | tr '\0' x)
awk -v n=3000 -v now="$(now_ms)" -v w="$WID" -v long="$long" 'BEGIN {
    for (i = 0; i < n; i++) {
        sid = sprintf("bulk%06dx", i)
        printf "HSET hn:sess:{%s}:%s url https://example.com/%s started %.0f status active last_seen %.0f\r\n", w, sid, long, now, now
        printf "ZADD hn:live:{%s} %.0f %s\r\n", w, now, sid
    } }' >"$HN_TMP/bulk.txt"
hn_redis_at "hn:live:{$WID}" --pipe <"$HN_TMP/bulk.txt" >/dev/null
hn_wait_for 15 "3000 more visitors in the stream (the reconcile)" bash -c "[ \$(grep -c '^data: {\"session_id\":\"bulk' '$HN_TMP/s1.sse') -ge 3000 ]"
python3 - "$HN_API_URL" "$WID" "$TOK" >"$HN_TMP/slow.out" 2>&1 <<'PY' &
import socket, sys, time
from urllib.parse import urlparse
u = urlparse(sys.argv[1])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
s.connect((u.hostname, u.port))
s.sendall(f"GET /api/visitor-tracking/widgets/{sys.argv[2]}/active-visitors/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {sys.argv[3]}\r\n\r\n".encode())
time.sleep(20)   # holds the connection open without reading; killed by the test
PY
CURLS+=($!)
slow() { [ "$(metric 'herenow_sse_streams_closed_total{reason="slow"}')" = 1 ]; }
hn_wait_for 5 "a client that does not read is ended as slow" slow && hn_ok "a client that does not read is ended as slow"
hn_redis DEL "hn:live:{$WID}" >/dev/null     # the 3000 leave; later snapshots are small again

if hn_cluster_skip "the one Redis stopped and started again (test_cluster.sh kills and fails over masters with a stream open)"; then :; else
    # Redis gone: a new stream gets 503 (not a hang, not a crash); back: streams work again
    "$HN_ROOT/scripts/redis.sh" stop "$HN_TMP/redis" >/dev/null
    refused() { [ "$(hn_oa_curl "$HN_TMP/discard" -m 5 -H "Authorization: Bearer $TOK" "$W/active-visitors/stream")" = 503 ]; }
    hn_wait_for 8 "Redis stopped: a new stream is answered 503" refused && hn_ok "Redis stopped: a new stream is answered 503 (redis unavailable)"
    hn_assert_cmd "Redis stopped: the api still answers /livez" curl -fsS "$HN_API_URL/livez"
    hn_assert_cmd "the hub's Redis failures are counted" test "$(metric herenow_live_redis_errors_total)" -gt 0
    "$HN_ROOT/scripts/redis.sh" start --fast "$HN_TMP/redis" "$HN_REDIS_PORT" >/dev/null
    # (the hub connects again within a second: until then a new stream is still 503)
    opens() { { curl -sN -m 2 -H "Authorization: Bearer $TOK" "$W/active-visitors/stream" || true; } | grep -q '^event: snapshot$'; }
    hn_wait_for 8 "Redis back: a new stream starts (snapshot)" opens &&
        hn_ok "Redis back: a new stream starts (snapshot)"
fi

# the drain on: its XTRIM must not delete entries before the hub read them
# (HERENOW_STREAM_KEEP_MS, 10 s by default). The reconcile is off (60 s),
# so a record the hub missed would stay missed: it must read all 300.
hn_stop "$HN_PID_api" >/dev/null || true
HERENOW_DRAIN=on HERENOW_DRAIN_BLOCK_MS=100 HERENOW_SSE_RECONCILE_MS=60000 start_api
A=$HN_API_URL/api/visitor-tracking
W=$A/widgets/$WID
stream dr "$W/active-visitors/stream" -H "Authorization: Bearer $TOK"
hn_wait_for 5 "stream dr started" started "$HN_TMP/dr.sse"
send --session drainAAAA01 --url https://example.com/x --count 300 --interval 10
records() { [ "$(metric herenow_live_records_total)" -ge 300 ]; }
hn_wait_for 10 "the hub read the 300 records" records
trimmed() { [ "$(metric herenow_drain_trimmed_total)" -gt 0 ]; }
hn_wait_for 15 "the drain trimmed meanwhile" trimmed
hn_assert_eq "drain on: the hub read every record, none trimmed away before it (300)" 300 "$(metric herenow_live_records_total)"
hn_assert_cmd "drain on: the stream saw page_views reach 300" has_event "$HN_TMP/dr.sse" '"session_id":"drainAAAA01".*"page_views":300'
kill "$PID_dr"

# lifetime: its own api, HERENOW_SSE_MAX_LIFETIME_S=5
hn_stop "$HN_PID_api" >/dev/null || true
HERENOW_SSE_MAX_LIFETIME_S=5 start_api
A=$HN_API_URL/api/visitor-tracking
W=$A/widgets/$WID
stream lt "$W/active-visitors/stream" -H "Authorization: Bearer $TOK"
hn_wait_for 5 "stream lt started" started "$HN_TMP/lt.sse"
t0=$(now_ms)
hn_wait_for 8 "bye (lifetime) after 5 s" has_event "$HN_TMP/lt.sse" '^bye {"reason":"lifetime"}'
el=$(($(now_ms) - t0))
hn_assert_cmd "bye (lifetime) came at the 5 s cap (${el} ms after the start was seen)" test "$el" -ge 3500 -a "$el" -le 7000
hn_wait_for 3 "…and the stream ends" bash -c "! kill -0 $PID_lt 2>/dev/null"

# a widget with more live sessions than HERENOW_SSE_MAX_SESSIONS (a flood of made-up session ids):
# the hub lists the newest 100, its snapshot says so, the rest is counted, not kept
hn_stop "$HN_PID_api" >/dev/null || true
HERENOW_SSE_MAX_SESSIONS=100 start_api
A=$HN_API_URL/api/visitor-tracking
W=$A/widgets/$WID
nowms=$(now_ms)
for i in $(seq 1 150); do
    printf 'HSET hn:sess:{%s}:capS%06d status active last_seen %s\nZADD hn:live:{%s} %s capS%06d\n' \
        "$WID" "$i" "$((nowms + i))" "$WID" "$((nowms + i))" "$i"
done | hn_redis_at "hn:live:{$WID}" --pipe >/dev/null
stream cp "$W/active-visitors/stream" -H "Authorization: Bearer $TOK"
hn_wait_for 5 "stream cp started" started "$HN_TMP/cp.sse"
snap=$(events "$HN_TMP/cp.sse" | awk '$1 == "snapshot"' | head -1)
hn_assert_cmd "capped: the snapshot lists 100 sessions and says it is capped" \
    bash -c "echo '${snap#snapshot }' | jq -e '.total == 100 and .capped == true and (.visitors | length) == 100'"
hn_assert_cmd "capped: the newest are listed (capS000150 in, capS000001 out)" \
    bash -c "echo '${snap#snapshot }' | jq -e '([.visitors[].session_id] | index(\"capS000150\")) != null and ([.visitors[].session_id] | index(\"capS000001\")) == null'"
hn_assert_cmd "capped: counted (herenow_live_capped_total $(metric herenow_live_capped_total))" test "$(metric herenow_live_capped_total)" -ge 1
kill "$PID_cp"
for i in $(seq 1 150); do printf 'ZREM hn:live:{%s} capS%06d\nDEL hn:sess:{%s}:capS%06d\n' "$WID" "$i" "$WID" "$i"; done | hn_redis_at "hn:live:{$WID}" --pipe >/dev/null

# the stop: open streams get bye (stopping), the api exits 0
stream st "$W/active-visitors/stream" -H "Authorization: Bearer $TOK"
hn_wait_for 5 "stream st started" started "$HN_TMP/st.sse"
rc=0
hn_stop "$HN_PID_api" 10 || rc=$?
hn_assert_eq "SIGTERM with a stream open: the api exits 0" 0 "$rc"
hn_assert_cmd "the open stream got bye (stopping)" has_event "$HN_TMP/st.sse" '^bye {"reason":"stopping"}'
hn_assert_cmd "no sanitizer or libevent warning in the api's log" bash -c "! grep -E 'ERROR: |runtime error|\\[warn\\] ' '$HN_TMP/api.log'"

for p in "${CURLS[@]}"; do kill "$p" 2>/dev/null || true; done
hn_done
