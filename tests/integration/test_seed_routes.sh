#!/usr/bin/env bash
# test_seed_routes.sh: the seed's public tracking routes on the collector's
# HTTP port (DESIGN §12, docs/API.md "Public tracking routes") against real
# Redis, PostgreSQL, herenow-collector and herenow-api (drain on): each route
# with the seed widget's JSON in both spellings → the session live in the
# API's list, page views and events in PostgreSQL exactly once, chat_opened
# sets has_chatted; an ip, user_agent or browser in the body is ignored;
# bots, Do-Not-Track and the rate limit as for POST /b; bad JSON, wrong
# types, missing fields, oversize bodies and unknown keys → the documented
# 4xx with {"error": …} and a counted drop; CORS preflight. (The browser's
# cross-origin fetch is in tests/browser/widget.mjs.)
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

CTL="$HN_BIN/herenowctl"
hn_start_stores
widget() { hn_widget_add --name "$1" --domain example.com "${@:2}"; }
read -r W1 K1 <<<"$(widget "Seed site")"
TOK=$("$CTL" token create --all 2>/dev/null)
perl "$HN_ROOT/tests/tools/mkmmdb.pl" "$HN_TMP/geo.mmdb"

HTTP=$(hn_free_port)
ADMIN=$(hn_free_port)
export HERENOW_UDP_LISTEN= HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_THREADS=2 HERENOW_TRUSTED_PROXIES=127.0.0.1/32 HERENOW_GEOIP_DB=$HN_TMP/geo.mmdb
export HERENOW_RATE_LIMIT=5 HERENOW_RATE_BURST=10 HERENOW_HTTP_CORS_ORIGINS=https://shop.example
export HERENOW_DRAIN=on HERENOW_DRAIN_BLOCK_MS=100
hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_start_api

B="http://127.0.0.1:$HTTP/api/visitor-tracking/public/widget"
UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
BODY=$HN_TMP/body
HDRS=$HN_TMP/headers

metric() {
    curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
dropped() { metric "herenow_beacons_dropped_total{transport=\"http\",reason=\"$1\"}"; }
# Each request comes from its own client address (X-Forwarded-For from the
# trusted 127.0.0.1), so that only the rate-limit check meets the limit.
N=0
# seed ROUTE JSON [CURL ARGS...]: POST to widget K1 (KEY= to change it); status
# in ST, the answer in $BODY, headers in $HDRS
seed() {
    local route=$1 json=$2
    shift 2
    N=$((N + 1))
    ST=$(hn_oa_curl "$BODY" -D "$HDRS" -A "$UA" -H 'Content-Type: application/json' \
        -H "X-Forwarded-For: 10.$((N / 250)).$((N % 250)).7" --data-binary "$json" "$@" \
        "$B/${KEY:-$K1}/$route") || true
}
header() { awk -v h="$1" 'BEGIN { IGNORECASE = 1 } tolower($1) == tolower(h) ":" { sub(/^[^:]*: */, ""); sub(/\r$/, ""); print }' "$HDRS"; }
answer() { jq -r "$1" "$BODY"; }
sess() { hn_redis HGET "hn:sess:{$W1}:$1" "$2"; }
has_field() { [ -n "$(sess "$1" "$2")" ]; }
live_ids() {
    curl -fsS -H "Authorization: Bearer $TOK" "$HN_API_URL/api/visitor-tracking/widgets/$W1/active-visitors" |
        jq -r '[.visitors[].session_id] | sort | join(" ")'
}
in_live() { live_ids | grep -qw "$1"; }
pg() { hn_psql "$1"; }
pg_is() { [ "$(pg "$1")" = "$2" ]; }

# --- track-session, the seed's names; from the request, never the body: IP, UA ---------------
seed track-session '{"session_id":"seedsnake01","visitor_fingerprint":"fp-123","current_page_url":"https://example.com/pricing",
  "current_page_title":"Pricing","referrer_url":"https://www.google.com/","screen_width":1920,"screen_height":1080,
  "language":"de-DE","heartbeat":false,"ip":"6.6.6.6","user_agent":"Googlebot/2.1","browser":"Netscape","country":"XX"}' \
  -H 'X-Forwarded-For: 203.0.113.77'
hn_assert_eq "track-session (snake_case): 204" 204 "$ST"
hn_assert_eq "track-session: an empty answer" 0 "$(stat -c %s "$BODY")"
hn_wait_for 3 "the session is in the API's live list" in_live seedsnake01
hn_assert_eq "presence: current page" https://example.com/pricing "$(sess seedsnake01 url)"
hn_assert_eq "presence: title" Pricing "$(sess seedsnake01 title)"
hn_assert_eq "presence: landing page" https://example.com/pricing "$(sess seedsnake01 landing)"
hn_assert_eq "presence: referrer" https://www.google.com/ "$(sess seedsnake01 referrer)"
hn_assert_eq "presence: one page view" 1 "$(sess seedsnake01 pageviews)"
hn_assert_eq "presence: screen" 1920x1080 "$(sess seedsnake01 screen)"
hn_assert_eq "presence: language" de-DE "$(sess seedsnake01 lang)"
hn_assert_eq "body's ip ignored: the request's, masked" 203.0.113.0 "$(sess seedsnake01 ip)"
hn_assert_eq "body's country ignored: the MMDB's" DE "$(sess seedsnake01 country)"
hn_assert_eq "body's user_agent/browser ignored: the header's" Chrome "$(sess seedsnake01 browser)"
hn_assert_eq "device from the header" desktop "$(sess seedsnake01 device)"
hn_assert_cmd "started is set" has_field seedsnake01 started
VH=$(sess seedsnake01 visitor)
if [[ $VH =~ ^[0-9a-f]{32}$ ]]; then hn_ok "visitor hash from IP and UA (visitor_fingerprint not used)"; else hn_fail "visitor '$VH'"; fi

# heartbeat: true → hb: seen again, no page view
ls0=$(sess seedsnake01 last_seen)
seen_later() { [ "$(sess seedsnake01 last_seen)" -gt "$ls0" ]; }
hb() {
    seed track-session '{"session_id":"seedsnake01","current_page_url":"https://example.com/pricing","heartbeat":true}'
    seen_later
}
hn_wait_for 3 "a heartbeat moves last_seen" hb
hn_assert_eq "heartbeat: 204" 204 "$ST"
hn_assert_eq "heartbeat: still one page view" 1 "$(sess seedsnake01 pageviews)"

seed track-pageview '{"session_id":"seedsnake01","page_url":"https://example.com/signup","page_title":"Sign up",
  "referrer_url":"https://example.com/pricing","time_on_previous_page":42.5}'
hn_assert_eq "track-pageview (snake_case): 204" 204 "$ST"
pv2() { [ "$(sess seedsnake01 pageviews)" = 2 ]; }
hn_wait_for 3 "presence: two page views" pv2
hn_assert_eq "presence: the new current page" https://example.com/signup "$(sess seedsnake01 url)"
hn_assert_eq "presence: landing unchanged" https://example.com/pricing "$(sess seedsnake01 landing)"
hn_assert_eq "presence: referrer unchanged" https://www.google.com/ "$(sess seedsnake01 referrer)"
hn_assert_eq "presence: engaged time from time_on_previous_page (s → ms)" 42500 "$(sess seedsnake01 engaged_ms)"

seed track-event '{"session_id":"seedsnake01","event_type":"form_submit","page_url":"https://example.com/signup",
  "event_data":{"form":"signup","step":2,"price":9.5,"newsletter":true,"coupon":null}}'
hn_assert_eq "track-event (snake_case): 204" 204 "$ST"

# --- the same in camelCase, and chat_opened -------------------------------------------------
seed track-session '{"sessionId":"seedcamel01","currentPageUrl":"https://example.com/","currentPageTitle":"Home",
  "referrerUrl":"https://duckduckgo.com/","screenWidth":390,"screenHeight":844,"visitorFingerprint":"x"}'
hn_assert_eq "track-session (camelCase): 204" 204 "$ST"
seed track-pageview '{"sessionId":"seedcamel01","pageUrl":"https://example.com/help","pageTitle":"Help","timeOnPreviousPage":3}'
hn_assert_eq "track-pageview (camelCase): 204" 204 "$ST"
seed track-event '{"sessionId":"seedcamel01","eventType":"chat_opened","eventData":{"source":"bubble"}}'
hn_assert_eq "track-event (camelCase) chat_opened: 204" 204 "$ST"
chatted() { [ "$(sess seedcamel01 has_chatted)" = 1 ]; }
hn_wait_for 3 "chat_opened: has_chatted in the live snapshot" chatted
hn_assert_eq "camelCase: title" Help "$(sess seedcamel01 title)"
hn_assert_eq "camelCase: landing" https://example.com/ "$(sess seedcamel01 landing)"
hn_assert_eq "camelCase: screen" 390x844 "$(sess seedcamel01 screen)"
hn_assert_eq "camelCase: page views" 2 "$(sess seedcamel01 pageviews)"
hn_assert_eq "no chat event: has_chatted unset for the other session" "" "$(sess seedsnake01 has_chatted)"

# A short session id (the seed's may be): prefixed, deterministically.
seed track-session '{"session_id":"ab12","current_page_url":"https://example.com/short"}'
hn_assert_eq "session_id of 4 characters: 204" 204 "$ST"
hn_wait_for 3 "…live as seed-sid-ab12" in_live seed-sid-ab12

# --- PostgreSQL: each page view and event once --------------------------------------------------
q_pv() { echo "SELECT count(*), count(DISTINCT event_id) FROM widget_page_views WHERE widget_id = $W1 AND session_id = '$1'"; }
q_ev() { echo "SELECT count(*), count(DISTINCT event_id) FROM widget_visitor_events WHERE widget_id = $W1 AND session_id = '$1' AND event_type = 'ev'"; }
hn_wait_for 10 "the drain wrote the snake session's events" pg_is "$(q_ev seedsnake01)" "1|1"
hn_wait_for 10 "the drain wrote the camel session's chat_opened" pg_is "$(q_ev seedcamel01)" "1|1"
hn_wait_for 10 "the drain wrote the short session's page view" pg_is "$(q_pv seed-sid-ab12)" "1|1"
hn_assert_eq "snake: 2 page views in PostgreSQL, each once" "2|2" "$(pg "$(q_pv seedsnake01)")"
hn_assert_eq "camel: 2 page views in PostgreSQL, each once" "2|2" "$(pg "$(q_pv seedcamel01)")"
hn_assert_eq "page views: urls, titles, engaged time in order" \
    "https://example.com/pricing|Pricing|0,https://example.com/signup|Sign up|42500" \
    "$(pg "SELECT string_agg(url || '|' || title || '|' || engaged_ms, ',' ORDER BY recv_at) FROM widget_page_views WHERE session_id = 'seedsnake01'")"
hn_assert_eq "event: name, page and event_data as JSON (null left out)" \
    'form_submit|https://example.com/signup|{"form": "signup", "step": 2, "price": 9.5, "newsletter": true}' \
    "$(pg "SELECT event_name, url, event_data FROM widget_visitor_events WHERE session_id = 'seedsnake01' AND event_type = 'ev'")"
sess_row() {
    pg "SELECT has_chatted, page_views, ip_address, country, browser, landing_page, referrer
          FROM widget_visitor_sessions WHERE widget_id = $W1 AND session_id = '$1'" 2>/dev/null
}
pg_chatted() { [ "$(sess_row seedcamel01 | cut -d'|' -f1)" = t ]; }
hn_wait_for 10 "sessions: chat_opened set has_chatted in PostgreSQL" pg_chatted
# (the session's latest request came from 10.0.N.7: seed() gives each its own address)
row=$(sess_row seedsnake01)
if [[ $row =~ ^f\|2\|10\.0\.[0-9]+\.0\|[A-Z]*\|Chrome\|https://example.com/pricing\|https://www.google.com/$ ]]; then
    hn_ok "sessions: snake — not chatted, 2 pages, masked IP of the request, browser from the header, landing, referrer"
else
    hn_fail "sessions: snake row: $row"
fi
hn_assert_eq "sessions: nothing from the body's ip or user_agent anywhere" 0 \
    "$(pg "SELECT count(*) FROM widget_visitor_sessions WHERE ip_address LIKE '6.6.6%' OR user_agent LIKE '%Googlebot%'")"
hn_assert_eq "the heartbeats wrote no page view" 2 "$(pg "SELECT count(*) FROM widget_page_views WHERE session_id = 'seedsnake01'")"

# --- bots, Do-Not-Track: the same rules as POST /b ------------------------------------------------
b0=$(dropped bot)
seed track-session '{"session_id":"seedbot0001","current_page_url":"https://example.com/"}' \
    -A 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'
hn_assert_eq "a bot's request: 204 (told nothing)" 204 "$ST"
hn_assert_eq "…counted as dropped, reason bot" $((b0 + 1)) "$(dropped bot)"
o0=$(dropped opted_out)
seed track-session '{"session_id":"seeddnt0001","current_page_url":"https://example.com/"}' -H 'DNT: 1'
hn_assert_eq "DNT: 1: 204" 204 "$ST"
hn_assert_eq "…counted as dropped, reason opted_out" $((o0 + 1)) "$(dropped opted_out)"
hn_assert_eq "neither is live" "" "$(hn_redis EXISTS "hn:sess:{$W1}:seedbot0001" "hn:sess:{$W1}:seeddnt0001" | grep -v '^0$' || true)"

# --- bad input: the documented status, error, field and counter ----------------------------------
# bad ROUTE JSON STATUS ERROR FIELD REASON-LABEL NAME
bad() {
    local before after
    before=$(dropped "$6")
    seed "$1" "$2"
    after=$(dropped "$6")
    hn_assert_eq "$7: $3 $4${5:+ ($5)}, counted $6" "$3 $4 ${5:-null} $((before + 1))" \
        "$ST $(answer .error) $(answer .field) $after"
}
bad track-session '{"session_id":' 400 bad_json "" malformed "truncated JSON"
bad track-session '{"session_id":"seedbad00001",}' 400 bad_json "" malformed "a trailing comma"
bad track-session "{'session_id':'x'}" 400 bad_json "" malformed "single quotes"
bad track-session '["seedbad00001"]' 400 bad_json "" not_map "an array, not an object"
bad track-session '' 400 bad_json "" malformed "an empty body"
bad track-session '{"session_id":12345678,"current_page_url":"https://example.com/"}' 400 bad_field session_id bad_type "session_id a number"
bad track-session '{"session_id":"seed bad 01","current_page_url":"https://example.com/"}' 400 bad_field session_id bad_value "session_id with spaces"
bad track-session '{"current_page_url":"https://example.com/"}' 400 bad_field session_id missing_field "no session_id"
bad track-session '{"session_id":"seedbad00001"}' 400 bad_field current_page_url missing_field "track-session without current_page_url"
bad track-session '{"session_id":"seedbad00001","current_page_url":"https://example.com/","heartbeat":"yes"}' 400 bad_field heartbeat bad_type "heartbeat a string"
bad track-session '{"session_id":"seedbad00001","current_page_url":"https://example.com/","screen_width":-5}' 400 bad_field screen_width bad_type "screen_width negative"
bad track-session '{"session_id":"seedbad00001","current_page_url":"https://example.com/","screenWidth":99999}' 400 bad_field screen_width bad_value "screenWidth over 65535"
bad track-pageview '{"session_id":"seedbad00001","page_url":["https://example.com/"]}' 400 bad_field page_url bad_type "page_url an array"
bad track-pageview "{\"session_id\":\"seedbad00001\",\"page_url\":\"https://example.com/$(head -c 3000 /dev/zero | tr '\0' a)\"}" 400 bad_field page_url too_long "page_url over 2048 bytes"
bad track-pageview '{"session_id":"seedbad00001","page_url":"https://example.com/","time_on_previous_page":-1}' 400 bad_field time_on_previous_page bad_value "time_on_previous_page negative"
bad track-pageview '{"session_id":"seedbad00001","page_url":"https://example.com/","time_on_previous_page":"12"}' 400 bad_field time_on_previous_page bad_type "time_on_previous_page a string"
bad track-pageview '{"session_id":"seedbad00001","page_url":"https://example.com/\udc00"}' 400 bad_field page_url bad_utf8 "page_url with a lone surrogate"
bad track-event '{"session_id":"seedbad00001"}' 400 bad_field event_type missing_field "track-event without event_type"
bad track-event '{"session_id":"seedbad00001","event_type":"click","event_data":"clicked"}' 400 bad_field event_data bad_type "event_data a string"
bad track-event '{"session_id":"seedbad00001","event_type":"click","event_data":{"pos":{"x":1}}}' 400 bad_field event_data bad_type "event_data with a nested object"
props=$(for i in $(seq 1 33); do printf '"k%d":%d,' "$i" "$i"; done)
bad track-event "{\"session_id\":\"seedbad00001\",\"event_type\":\"click\",\"event_data\":{${props%,}}}" 400 bad_field event_data too_long "event_data of 33 entries"
bad track-event "{\"session_id\":\"seedbad00001\",\"event_type\":\"click\",\"event_data\":{\"v\":\"$(head -c 300 /dev/zero | tr '\0' a)\"}}" 400 bad_field event_data too_long "an event_data value over 256 bytes"
hn_assert_eq "a bad_field answer says why in the seed's names" \
    "event_data entry 0: value: too long (300 > 256 bytes)" "$(answer .reason)"
hn_assert_eq "a 400 is JSON" application/json "$(header Content-Type)"

u0=$(dropped unknown_widget)
KEY=nosuchkey seed track-session '{"session_id":"seedbad00001","current_page_url":"https://example.com/"}'
hn_assert_eq "an unknown widget key: 400 unknown_widget (as POST /b)" "400 unknown_widget" "$ST $(answer .error)"
hn_assert_eq "…counted unknown_widget" $((u0 + 1)) "$(dropped unknown_widget)"

t0=$(dropped too_large)
head -c 70000 /dev/zero | tr '\0' ' ' >"$HN_TMP/big"
printf '{"session_id":"seedbad00001","current_page_url":"https://example.com/"}' >>"$HN_TMP/big"
seed track-session "@$HN_TMP/big"
hn_assert_eq "a body over 64 KiB: 413 too_large" "413 too_large" "$ST $(answer .error)"
hn_assert_eq "…counted too_large" $((t0 + 1)) "$(dropped too_large)"

for m in GET PUT; do
    ST=$(hn_oa_curl "$BODY" -D "$HDRS" -X "$m" "$B/$K1/track-session") || true
    hn_assert_eq "$m on a seed route: 405, Allow: POST, OPTIONS" "405 POST, OPTIONS" "$ST $(header Allow)"
done
ST=$(hn_oa_curl "$HN_TMP/discard" -d '{}' "$B/$K1/track-nothing") || true
hn_assert_eq "an unknown track- route: 404" 404 "$ST"
ST=$(hn_oa_curl "$HN_TMP/discard" -d '{}' "$B/$K1/track-session/more") || true
hn_assert_eq "a longer path: 404" 404 "$ST"
hn_assert_cmd "the collector is alive after all that" hn_alive "$HN_PID_collector"

# --- the rate limit: the same buckets as POST /b (5/s, burst 10, per client and worker) ----------
# 40 requests on one keep-alive connection (one worker), as test_http.sh does for /b.
r0=$(dropped rate_limited)
urls=()
for i in $(seq 1 40); do urls+=(-o "$HN_TMP/rl$i" "$B/$K1/track-session"); done
codes=" $(curl -s -w '%{http_code} ' -A "$UA" -H 'X-Forwarded-For: 192.0.2.9' \
    --data-binary '{"session_id":"seedrate0001","current_page_url":"https://example.com/"}' "${urls[@]}" || true)"
n204=$(tr ' ' '\n' <<<"$codes" | grep -c '^204$' || true)
n429=$(tr ' ' '\n' <<<"$codes" | grep -c '^429$' || true)
if [ "$n204" -ge 10 ] && [ "$n429" -ge 1 ] && [ $((n204 + n429)) -eq 40 ]; then
    hn_ok "rate limit: $n204 × 204 then $n429 × 429"
else
    hn_fail "rate limit: codes$codes"
fi
hn_assert_eq "…each counted rate_limited" $((r0 + n429)) "$(dropped rate_limited)"
hn_assert_eq "a 429's answer" '{"error":"rate_limited","reason":"rate limited: retry later"}' "$(cat "$HN_TMP/rl40")"

# --- CORS: preflight and the answer's header ---------------------------------------------------------
ST=$(hn_oa_curl "$HN_TMP/discard" -D "$HDRS" -X OPTIONS -H 'Origin: https://shop.example' \
    -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: content-type' "$B/$K1/track-event") || true
hn_assert_eq "preflight: 204" 204 "$ST"
hn_assert_eq "preflight: the allowed origin echoed" https://shop.example "$(header Access-Control-Allow-Origin)"
hn_assert_eq "preflight: Content-Type allowed" Content-Type "$(header Access-Control-Allow-Headers)"
hn_assert_cmd "preflight: POST allowed" bash -c "grep -qi '^Access-Control-Allow-Methods:.*POST' '$HDRS'"
seed track-event '{"session_id":"seedsnake01","event_type":"click"}' -H 'Origin: https://shop.example'
hn_assert_eq "cross-origin POST: 204 with Access-Control-Allow-Origin" "204 https://shop.example" \
    "$ST $(header Access-Control-Allow-Origin)"
seed track-event '{"session_id":"seedsnake01","event_type":"click"}' -H 'Origin: https://evil.example'
hn_assert_eq "another origin: accepted, but no Access-Control-Allow-Origin for it" "204 " \
    "$ST $(header Access-Control-Allow-Origin)"

hn_done
