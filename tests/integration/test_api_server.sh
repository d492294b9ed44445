#!/usr/bin/env bash
# test_api_server.sh: herenow-api's server core against a real Redis and
# PostgreSQL: /livez /readyz /metrics, the token check (the matrix of every
# route × none, malformed, revoked, wrong widget, right token; 401 reasons, 403
# scope, revocation within the refresh interval, 503 while tokens were never
# loaded), path and query validation, 404/405, requests reaching their
# handlers, SIGTERM, and no token in the log.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

CTL="$HN_BIN/herenowctl"
API="$HN_BIN/herenow-api"
hn_start_stores
W1=$("$CTL" widget add --name "Site one" --domain one.example | awk '/^id:/ { print $2 }')
W2=$("$CTL" widget add --name "Site two" --domain two.example | awk '/^id:/ { print $2 }')
hn_assert_cmd "two widgets added ($W1, $W2)" test -n "$W1" -a -n "$W2" -a "$W1" != "$W2"

# Tokens: one for every widget and one for W1 from herenowctl, and one
# written straight into api_tokens the way herenowctl stores them (the
# SHA-256 of the token text), to pin the digest format.
ALL=$("$CTL" token create --all --name test-all)
ONE=$("$CTL" token create --widget "$W1" --name test-one)
SECRET=$(printf 'S%.0s' $(seq 1 32))
MANUAL="hn_Manual000001_$SECRET"
hn_psql "INSERT INTO api_tokens (id, token_sha256, widget_id, name)
         VALUES ('Manual000001', sha256(convert_to('$MANUAL', 'UTF8')), $W2, 'manual')" >/dev/null
hn_assert_cmd "herenowctl made tokens of the documented shape" \
    bash -c "[[ '$ALL' =~ ^hn_[A-Za-z0-9]{12}_[A-Za-z0-9]{32}$ && '$ONE' =~ ^hn_[A-Za-z0-9]{12}_[A-Za-z0-9]{32}$ ]]"
ALL_ID=${ALL:3:12}
ONE_ID=${ONE:3:12}

export HERENOW_API_THREADS=2 HERENOW_TOKEN_REFRESH_MS=200 HERENOW_LOG_LEVEL=debug
export HERENOW_SHUTDOWN_TIMEOUT_MS=5000 HERENOW_DRAIN=off

# --- bad settings stop the start with a message naming them
for bad in "--api-threads 0" "--api-listen nonsense" "--api-timeout-ms 5" "--redis-url http://x"; do
    rc=0
    msg=$("$API" $bad 2>&1) || rc=$?
    hn_assert_eq "herenow-api $bad: exit 2" 2 "$rc"
    case "$msg" in
        *"herenow-api: "*) hn_ok "herenow-api $bad: says why ($(printf '%s' "$msg" | head -1))" ;;
        *) hn_fail "herenow-api $bad: no clear message: $msg" ;;
    esac
done
hn_assert_cmd "--help lists HERENOW_API_LISTEN with its default" \
    bash -c "'$API' --help | grep -q \"HERENOW_API_LISTEN.*default '127.0.0.1:7480'\""

hn_start_api
U=$HN_API_URL
WB="$U/api/visitor-tracking/widgets"

# status URL [CURL ARGS...]: the HTTP status code (the answer is checked against
# docs/openapi.yaml at the end: hn_oa_curl)
status() { hn_oa_curl "$HN_TMP/status.body" "$@"; }
# status_as TOKEN URL [CURL ARGS...]
status_as() { local t=$1; shift; status -H "Authorization: Bearer $t" "$@"; }
# headers URL [CURL ARGS...]: the answer's headers (lower-cased names), then the body
fetch() { curl -s -D - "$@" | tr -d '\r'; }
# metric NAME{labels}: its value in /metrics (0 when absent)
metric() { curl -fsS "$U/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'; }

# --- health endpoints
hn_assert_eq "/livez is 200" 200 "$(status "$U/livez")"
hn_assert_eq "/livez says ok" '{"status":"ok"}' "$(curl -s "$U/livez")"
hn_wait_for 10 "/readyz turns 200 once the tokens are loaded" curl -fsS "$U/readyz"
hn_assert_eq "HEAD /livez is 200" 200 "$(status -I "$U/livez")"
hn_assert_eq "POST /livez is 405" 405 "$(status -X POST "$U/livez")"
tokens_loaded() { [ "$(metric herenow_api_tokens)" = 3 ]; }
hn_wait_for 5 "the token cache holds the 3 tokens" tokens_loaded && hn_ok "herenow_api_tokens is 3"
m=$(curl -fsS "$U/metrics")
for name in herenow_api_requests_total herenow_api_request_duration_seconds_bucket herenow_api_queue_depth \
    herenow_api_workers_busy herenow_api_auth_failures_total herenow_api_token_cache_age_seconds \
    herenow_api_connects_total herenow_up_seconds; do
    case "$m" in *"$name"*) hn_ok "/metrics has $name" ;; *) hn_fail "/metrics lacks $name" ;; esac
done
hn_promtool "promtool check metrics accepts the api's /metrics" "$U/metrics"
hn_assert_cmd "/metrics is Prometheus text" bash -c "curl -sI '$U/metrics' | grep -qi '^content-type: text/plain; version=0.0.4'"

# --- the token check comes first under /api/
URL="$WB/$W1/visitor-stats"
hn_assert_eq "no Authorization: 401" 401 "$(status "$URL")"
hn_assert_eq "Basic credentials: 401" 401 "$(status -H 'Authorization: Basic eDp5' "$URL")"
hn_assert_eq "Bearer junk: 401" 401 "$(status_as junk "$URL")"
hn_assert_eq "Bearer with nothing after it: 401" 401 "$(status -H 'Authorization: Bearer ' "$URL")"
UNKNOWN="hn_Unknown00001_$SECRET"
WRONG="hn_${ALL_ID}_$SECRET"
hn_assert_eq "well-formed token, unknown id: 401" 401 "$(status_as "$UNKNOWN" "$URL")"
hn_assert_eq "known id, wrong secret: 401" 401 "$(status_as "$WRONG" "$URL")"
hn_assert_eq "unknown id and wrong secret get the same answer" \
    "$(curl -s -H "Authorization: Bearer $UNKNOWN" "$URL")" "$(curl -s -H "Authorization: Bearer $WRONG" "$URL")"
a=$(fetch "$URL")
hn_assert_cmd "401 carries WWW-Authenticate: Bearer" bash -c "grep -qi '^www-authenticate: Bearer' <<<'$a'"
hn_assert_cmd "401 is JSON {\"error\": ...}" bash -c "grep -qi '^content-type: application/json' <<<'$a' && grep -q '^{\"error\":\"' <<<'$a'"
hn_assert_eq "no token on an unknown /api/ path: 401 (not 404)" 401 "$(status "$U/api/nope")"
hn_assert_eq "no token on a bad widgetId: 401 (before 400)" 401 "$(status "$WB/abc/visitor-stats")"
hn_assert_eq "no token, wrong method: 401 (before 405)" 401 "$(status -X POST "$URL")"

# --- a good token reaches the handler (the route stubs answer 501 until they land)
# through DESC CURL-ARGS...: the request got past the server's own checks
# to its handler, whatever the handler answered (a stub's 501, a 404 for an
# unknown session, a 400 for a parameter the route does not take)
SERVER_ERRORS='^\{"error":"(not found|no such route|method not allowed|widgetId must|path parameter longer|bad percent-encoding|empty query parameter|too many query|query parameter .* more than once|this token may not|missing bearer|invalid or revoked|malformed token)'
through() {
    local desc=$1 out st body
    shift
    st=$(hn_oa_curl "$HN_TMP/through.body" "$@")
    body=$(cat "$HN_TMP/through.body")
    if [ "$st" = 401 ] || [ "$st" = 403 ] || [ "$st" = 405 ] || [ "$st" = 503 ] ||
        grep -Eq "$SERVER_ERRORS" <<<"$body"; then
        hn_fail "$desc (status $st: ${body:0:120})"
    else
        hn_ok "$desc (status $st)"
    fi
}
through "token for every widget reaches visitor-stats" -H "Authorization: Bearer $ALL" "$URL"
through "the scheme is case-insensitive (bearer)" -H "Authorization: bearer $ALL" "$URL"
through "a token written by SQL (sha256 of its text) works" -H "Authorization: Bearer $MANUAL" "$WB/$W2/visitor-stats"
a=$(fetch -H "Authorization: Bearer $ALL" "$URL")
if grep -q '^HTTP/1.1 501' <<<"$a"; then
    hn_assert_cmd "a stub's 501 is JSON {\"error\": ...}" bash -c "grep -q '^{\"error\":\"not implemented yet\"}' <<<'$a'"
fi
hn_assert_cmd "API answers carry Cache-Control: no-store" bash -c "grep -qi '^cache-control: no-store' <<<'$a'"
hn_assert_cmd "API answers carry X-Content-Type-Options: nosniff" bash -c "grep -qi '^x-content-type-options: nosniff' <<<'$a'"
for r in "GET $WB" "GET $WB/$W1/active-visitors" "GET $U/api/visitor-tracking/sessions/sessA0001" \
    "POST $U/api/visitor-tracking/sessions/sessA0001/deactivate" "GET $WB/$W1/visitor-stats" \
    "GET $WB/$W1/timeseries" "GET $WB/$W1/breakdown" "GET $WB/$W1/sessions" "GET $WB/$W1/export.csv" \
    "DELETE $WB/$W1/visitors/v123"; do
    through "$r reaches its handler" -H "Authorization: Bearer $ALL" -X "${r%% *}" "${r#* }"
done

# --- scope: a widget token sees its widget only
hn_assert_eq "W1 token on W2: 403" 403 "$(status_as "$ONE" "$WB/$W2/visitor-stats")"
hn_assert_eq "W1 token on W2's export: 403" 403 "$(status_as "$ONE" "$WB/$W2/export.csv")"
hn_assert_eq "W1 token erasing on W2: 403" 403 "$(status_as "$ONE" -X DELETE "$WB/$W2/visitors/v1")"
hn_assert_cmd "403 is JSON" bash -c "curl -s -H 'Authorization: Bearer $ONE' '$WB/$W2/sessions' | grep -q '^{\"error\":\"'"
through "W1 token on W1" -H "Authorization: Bearer $ONE" "$WB/$W1/visitor-stats"
hn_assert_eq "W1 token on widget 2147483647: 403" 403 "$(status_as "$ONE" "$WB/2147483647/visitor-stats")"
through "token for every widget on widget 2147483647" -H "Authorization: Bearer $ALL" "$WB/2147483647/visitor-stats"

# --- :widgetId must be canonical: 400 (before the scope check)
for bad in 0 -1 +1 1e3 01 0x10 %201 99999999999 2147483648 %00 abc 1%20 %2B1; do
    hn_assert_eq "widgetId '$bad': 400" 400 "$(status_as "$ALL" "$WB/$bad/visitor-stats")"
done
through "widgetId %31 is widget 1 once decoded" -H "Authorization: Bearer $ONE" "$WB/%31/visitor-stats"
hn_assert_eq "widgetId 'abc' with a W1 token: 400, not 403" 400 "$(status_as "$ONE" "$WB/abc/visitor-stats")"
hn_assert_eq "empty widgetId: 404" 404 "$(status_as "$ALL" "$WB//visitor-stats")"

# --- other path parameters: decoded; NUL, bad escapes and > 256 bytes are 400
S="$U/api/visitor-tracking/sessions"
hn_assert_eq "sessionId with %00: 400" 400 "$(status_as "$ALL" "$S/ab%00cd")"
hn_assert_eq "sessionId with %zz: 400" 400 "$(status_as "$ALL" "$S/ab%zzcd")"
hn_assert_eq "sessionId with a cut escape: 400" 400 "$(status_as "$ALL" "$S/abcd%4")"
long=$(printf 'x%.0s' $(seq 1 257))
hn_assert_eq "sessionId of 257 bytes: 400" 400 "$(status_as "$ALL" "$S/$long")"
through "sessionId of 256 bytes" -H "Authorization: Bearer $ALL" "$S/${long:1}"
through "sessionId with an escaped slash" -H "Authorization: Bearer $ALL" "$S/a%2Fb"
through "a visitor of 256 bytes sent as %XX (768 raw)" -H "Authorization: Bearer $ALL" -X DELETE \
    "$WB/$W1/visitors/$(printf '%%41%.0s' $(seq 1 256))"

# --- 404 and 405
hn_assert_eq "unknown path: 404" 404 "$(status "$U/nope")"
hn_assert_cmd "404 is JSON" bash -c "curl -s '$U/nope' | grep -q '^{\"error\":\"'"
hn_assert_eq "unknown /api/ path with a token: 404" 404 "$(status_as "$ALL" "$U/api/visitor-tracking/nope")"
hn_assert_eq "trailing slash: 404" 404 "$(status_as "$ALL" "$WB/$W1/visitor-stats/")"
a=$(fetch -H "Authorization: Bearer $ALL" -X POST "$URL")
hn_assert_cmd "POST on visitor-stats: 405 with Allow: GET" bash -c "grep -q '^HTTP/1.1 405' <<<'$a' && grep -qi '^allow: GET$' <<<'$a'"
a=$(fetch -H "Authorization: Bearer $ALL" "$S/sessA0001/deactivate")
hn_assert_cmd "GET on deactivate: 405 with Allow: POST" bash -c "grep -q '^HTTP/1.1 405' <<<'$a' && grep -qi '^allow: POST$' <<<'$a'"
hn_assert_eq "PUT on a widget route: 405" 405 "$(status_as "$ALL" -X PUT "$URL")"
hn_assert_eq "PATCH on a widget route: 405" 405 "$(status_as "$ALL" -X PATCH "$URL")"
hn_assert_eq "HEAD on an API route: 405" 405 "$(status_as "$ALL" -I "$URL")"

# --- query strings
hn_assert_eq "a key given twice: 400" 400 "$(status_as "$ALL" "$URL?from=1&from=2")"
hn_assert_eq "the same key, once encoded: 400" 400 "$(status_as "$ALL" "$URL?from=1&%66rom=2")"
hn_assert_eq "bad percent-encoding: 400" 400 "$(status_as "$ALL" "$URL?from=%zz")"
hn_assert_eq "encoded NUL: 400" 400 "$(status_as "$ALL" "$URL?from=a%00b")"
hn_assert_eq "empty key: 400" 400 "$(status_as "$ALL" "$URL?=1")"
q16=$(for i in $(seq 1 16); do printf 'k%d=v&' "$i"; done)
through "16 query parameters" -H "Authorization: Bearer $ALL" "$URL?${q16%&}"
hn_assert_eq "17 query parameters: 400" 400 "$(status_as "$ALL" "$URL?${q16}k17=v")"
through "empty segments and a key without value" -H "Authorization: Bearer $ALL" "$URL?&a&&b=1&"
hn_assert_cmd "the 400 says which key" bash -c "curl -s -H 'Authorization: Bearer $ALL' '$URL?to=1&to=2' | grep -q \"'to'\""

# --- a token created while the api runs works within the refresh interval;
# a revoked one stops working within it
NEW=$("$CTL" token create --widget "$W2" --name late)
works() { [ "$(status_as "$NEW" "$WB/$W2/visitor-stats")" != 401 ]; }
hn_wait_for 5 "a new token is accepted after a refresh" works && hn_ok "a token created while running is accepted"
t0=$(($(date +%s%N) / 1000000))
"$CTL" token revoke "$ONE_ID" >/dev/null
refused() { [ "$(status_as "$ONE" "$WB/$W1/visitor-stats")" = 401 ]; }
hn_wait_for 5 "a revoked token is refused" refused && hn_ok "a revoked token is refused"
t1=$(($(date +%s%N) / 1000000))
hn_assert_cmd "refused within the refresh interval + 1 s ($((t1 - t0)) ms)" test $((t1 - t0)) -le 1200

# --- the matrix: every route × (none, malformed, revoked, wrong widget, right token).
# Wrong widget: W2's token on W1. Routes without a widget in the path
# (/sessions/…) answer 404 to it: the session exists only in a widget the
# token may not see, and the answer must not tell (docs/API.md).
hn_psql "INSERT INTO widget_visitor_sessions (widget_id, session_id, visitor_id, last_active_at, session_started_at, rollup_hour)
         VALUES ($W1, 'matrix0001', 'v123', now(), now(), date_trunc('hour', now()))" >/dev/null
W2TOK=$("$CTL" token create --widget "$W2" --name matrix-w2)
w2_works() { [ "$(status_as "$W2TOK" "$WB/$W2/visitor-stats")" = 200 ]; }
hn_wait_for 5 "W2's new token is loaded" w2_works
ROUTES=("GET $WB" "GET $WB/$W1/active-visitors" "GET $U/api/visitor-tracking/sessions/matrix0001"
    "POST $U/api/visitor-tracking/sessions/matrix0001/deactivate" "GET $WB/$W1/visitor-stats"
    "GET $WB/$W1/timeseries" "GET $WB/$W1/breakdown?by=page" "GET $WB/$W1/sessions"
    "GET $WB/$W1/export.csv?what=sessions" "DELETE $WB/$W1/visitors/nobody")
for r in "${ROUTES[@]}"; do
    m=${r%% *} url=${r#* }
    got="$(status -X "$m" "$url") $(status -X "$m" -H 'Authorization: Bearer hn_short' "$url")"
    got="$got $(status_as "$ONE" -X "$m" "$url") $(status_as "$W2TOK" -X "$m" "$url")"
    right=$(status_as "$ALL" -X "$m" "$url")
    case "$url" in
        "$WB") want_wrong=200 ;;                 # lists only the token's own widgets
        */sessions/matrix0001*) want_wrong=404 ;;
        *) want_wrong=403 ;;
    esac
    case "$r" in
        "DELETE "*) want_right=404 ;;            # no such visitor, but allowed to ask
        *) want_right=200 ;;
    esac
    hn_assert_eq "matrix $m ${url#$U}: none, malformed, revoked, wrong widget, right" \
        "401 401 401 $want_wrong $want_right" "$got $right"
done
hn_assert_eq "the widget list of W2's token holds W2 only" "$W2" \
    "$(curl -s -H "Authorization: Bearer $W2TOK" "$WB" | grep -o '"id":[0-9]*' | cut -d: -f2 | tr '\n' ' ' | sed 's/ $//')"

# --- counted
hn_assert_cmd "auth failures counted (missing)" test "$(metric 'herenow_api_auth_failures_total{reason="missing"}')" -ge 3
hn_assert_cmd "auth failures counted (invalid)" test "$(metric 'herenow_api_auth_failures_total{reason="invalid"}')" -ge 2
hn_assert_cmd "auth failures counted (scheme)" test "$(metric 'herenow_api_auth_failures_total{reason="scheme"}')" -ge 1
hn_assert_cmd "auth failures counted (malformed)" test "$(metric 'herenow_api_auth_failures_total{reason="malformed"}')" -ge 1
hn_assert_cmd "requests counted by route and class" \
    test "$(metric 'herenow_api_requests_total{route="stats",code="4xx"}')" -ge 1
hn_assert_cmd "latency histogram counts them too" \
    test "$(metric 'herenow_api_request_duration_seconds_count{route="stats"}')" -ge 5
hn_assert_eq "nothing queued now" 0 "$(metric herenow_api_queue_depth)"

# --- the log: request lines with the token id, never a token
hn_assert_cmd "the access log names the token id" grep -q "event=request .*token=$ALL_ID" "$HN_TMP/api.log"
hn_assert_cmd "the access log shows the query" grep -q "query='from=1&from=2'" "$HN_TMP/api.log"
curl -s -o /dev/null -H "Authorization: Bearer $ALL" "$URL?oops=$ALL" || true
leaked=0
for t in "$ALL" "$ONE" "$MANUAL" "$NEW" "$SECRET" "${ALL:16}" "${ONE:16}" "${NEW:16}"; do
    if grep -qF -- "$t" "$HN_TMP/api.log"; then leaked=$((leaked + 1)); fi
done
hn_assert_eq "no token (or secret) in the api log, even one put in a query string" 0 "$leaked"

# --- SIGTERM: exit 0, quickly
t0=$(($(date +%s%N) / 1000000))
rc=0; hn_stop "$HN_PID_api" 10 || rc=$?
t1=$(($(date +%s%N) / 1000000))
hn_assert_eq "SIGTERM exits 0" 0 "$rc"
hn_assert_cmd "and within the 5 s deadline ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 5000
hn_assert_cmd "the api logged a clean stop" grep -q 'event=stopped clean=1' "$HN_TMP/api.log"

# --- PostgreSQL unreachable since the start: tokens never loaded → 503, not 401
mv "$HN_TMP/api.log" "$HN_TMP/api-1.log"
DEAD=$(hn_free_port)
HERENOW_DATABASE_URL="postgresql://postgres@127.0.0.1:$DEAD/herenow" hn_start_api
U=$HN_API_URL
hn_assert_eq "readyz 503 while the tokens were never loaded" 503 "$(status "$U/readyz")"
hn_assert_cmd "readyz says why" bash -c "curl -s '$U/readyz' | grep -q 'tokens not loaded'"
hn_assert_eq "a good token gets 503 (tokens unknown), not 401" 503 \
    "$(status_as "$ALL" "$U/api/visitor-tracking/widgets/$W1/visitor-stats")"
hn_assert_eq "no token is still 401" 401 "$(status "$U/api/visitor-tracking/widgets/$W1/visitor-stats")"
rc=0; hn_stop "$HN_PID_api" 10 || rc=$?
hn_assert_eq "SIGTERM exits 0 with PostgreSQL down" 0 "$rc"

hn_done
