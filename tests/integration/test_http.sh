#!/usr/bin/env bash
# test_http.sh: the collector's HTTP ingress (docs/PROTOCOL.md §HTTP) against
# a real Redis: POST /b and the pixel through to presence and the stream,
# the widget script (gzip, ETag, 304), CORS, enrichment (uap-core, a test
# MMDB, masking, visitor hash and its salt), X-Forwarded-For only from
# trusted proxies, bots and opt-outs, the rate limit, and bad input —
# garbage, wrong methods, oversized bodies and headers, slowloris — each
# with its status and counter while the collector keeps serving.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

CTL="$HN_BIN/herenowctl"
hn_start_stores
widget() { hn_widget_add --name "$1" --domain example.com "${@:2}"; }
read -r W1 K1 <<<"$(widget "Honours DNT")"
read -r W2 K2 <<<"$(widget "Ignores DNT" --honor-dnt no)"
hn_assert_eq "widget add --honor-dnt no: hn:widgets says dnt=off" "$W2 dnt=off" "$(hn_redis HGET hn:widgets "$K2")"
hn_assert_eq "widget add (default): hn:widgets holds the id alone" "$W1" "$(hn_redis HGET hn:widgets "$K1")"
rc=0; "$CTL" widget add --name x --domain y --honor-dnt maybe >/dev/null 2>&1 || rc=$?
hn_assert_eq "widget add --honor-dnt maybe: usage error" 2 "$rc"

perl "$HN_ROOT/tests/tools/mkmmdb.pl" "$HN_TMP/geo.mmdb"

HTTP=$(hn_free_port)
ADMIN=$(hn_free_port)
export HERENOW_UDP_LISTEN= HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_THREADS=2 HERENOW_TRUSTED_PROXIES=127.0.0.1/32 HERENOW_GEOIP_DB=$HN_TMP/geo.mmdb
export HERENOW_HTTP_TIMEOUT_MS=1000 HERENOW_HTTP_REQUEST_TIMEOUT_MS=2500 HERENOW_RATE_LIMIT=5 HERENOW_RATE_BURST=10
hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"

B="http://127.0.0.1:$HTTP"
UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
IPHONE='Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1'
BODY=$HN_TMP/body
HDRS=$HN_TMP/headers

metric() {
    curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
dropped() { metric "herenow_beacons_dropped_total{transport=\"${2:-http}\",reason=\"$1\"}"; }
answered() { metric "herenow_http_responses_total{code=\"$1\"}"; }
# mp ARGS...: one beacon packed by herenowctl (msgpack bytes on stdout)
mp() { local hex; hex=$("$CTL" send --dry-run "$@" | sed -n 2p); printf '%b' "$(sed 's/../\\x&/g' <<<"$hex")"; }
# post FILE [CURL ARGS...]: POST /b; status in ST, body in $BODY, headers in $HDRS
post() {
    local f=$1
    shift
    ST=$(hn_oa_curl "$BODY" -D "$HDRS" --data-binary "@$f" "$@" "$B/b") || true
}
header() { awk -v h="$1" 'BEGIN { IGNORECASE = 1 } tolower($1) == tolower(h) ":" { sub(/^[^:]*: */, ""); sub(/\r$/, ""); print }' "$HDRS"; }
sess() { hn_redis HGET "hn:sess:{$1}:$2" "$3"; }
has_field() { [ -n "$(sess "$1" "$2" "$3")" ]; }
alive() { hn_alive "$HN_PID_collector"; }

# --- a plain page view, through a trusted proxy ------------------------------------------
mp --key "$K1" --session httpsess0001 --url https://example.com/a --title "Page A" \
   --referrer https://www.google.com/ >"$HN_TMP/pv1"
post "$HN_TMP/pv1" -A "$UA" -H 'Content-Type: text/plain;charset=UTF-8' -H 'X-Forwarded-For: 203.0.113.77'
hn_assert_eq "POST /b (text/plain, as sendBeacon sends): 204" 204 "$ST"
hn_assert_eq "POST /b: CORS header" "*" "$(header Access-Control-Allow-Origin)"
hn_wait_for 2 "the session is live in Redis" has_field "$W1" httpsess0001 url
hn_assert_eq "presence: current page" https://example.com/a "$(sess "$W1" httpsess0001 url)"
hn_assert_eq "presence: IP masked to /24 (from X-Forwarded-For)" 203.0.113.0 "$(sess "$W1" httpsess0001 ip)"
hn_assert_eq "presence: country from the MMDB" DE "$(sess "$W1" httpsess0001 country)"
hn_assert_eq "presence: region" Berlin "$(sess "$W1" httpsess0001 region)"
hn_assert_eq "presence: city" Berlin "$(sess "$W1" httpsess0001 city)"
hn_assert_eq "presence: browser" Chrome "$(sess "$W1" httpsess0001 browser)"
hn_assert_eq "presence: browser version" 120.0 "$(sess "$W1" httpsess0001 browser_version)"
hn_assert_eq "presence: os" Linux "$(sess "$W1" httpsess0001 os)"
hn_assert_eq "presence: device" desktop "$(sess "$W1" httpsess0001 device)"
VH=$(sess "$W1" httpsess0001 visitor)
if [[ $VH =~ ^[0-9a-f]{32}$ ]]; then hn_ok "presence: visitor hash is 32 hex chars"; else hn_fail "presence: visitor hash '$VH'"; fi
DAY=$(date -u +%Y%m%d)
hn_assert_cmd "the day's salt is in Redis" test -n "$(hn_redis GET "hn:salt:$DAY")"
TTL=$(hn_redis TTL "hn:salt:$DAY")
if [ "$TTL" -gt 0 ] && [ "$TTL" -le 172800 ]; then hn_ok "salt TTL $TTL s (<= 48 h)"; else hn_fail "salt TTL $TTL"; fi
hn_redis XRANGE hn:stream:0 - + >"$HN_TMP/stream"
hn_assert_cmd "stream: the record carries the masked IP" grep -q 203.0.113.0 "$HN_TMP/stream"
if grep -q 203.0.113.77 "$HN_TMP/stream"; then hn_fail "stream: the full IP is in the stream"; else hn_ok "stream: no full IP"; fi

# The same visitor later the same day: the same hash; another UA: another.
mp --key "$K1" --session httpsess0002 --url https://example.com/b >"$HN_TMP/pv2"
post "$HN_TMP/pv2" -A "$UA" -H 'X-Forwarded-For: 203.0.113.77'
hn_wait_for 2 "second session live" has_field "$W1" httpsess0002 visitor
hn_assert_eq "visitor hash: same IP and UA, same day → same visitor" "$VH" "$(sess "$W1" httpsess0002 visitor)"
mp --key "$K1" --session httpsess0003 --url https://example.com/b >"$HN_TMP/pv3"
post "$HN_TMP/pv3" -A "$IPHONE" -H 'X-Forwarded-For: 203.0.113.77'
hn_wait_for 2 "third session live" has_field "$W1" httpsess0003 visitor
VH3=$(sess "$W1" httpsess0003 visitor)
if [ "$VH3" != "$VH" ]; then hn_ok "visitor hash: another UA → another visitor"; else hn_fail "visitor hash did not change with the UA"; fi
hn_assert_eq "iPhone: os iOS" iOS "$(sess "$W1" httpsess0003 os)"
hn_assert_eq "iPhone: device mobile" mobile "$(sess "$W1" httpsess0003 device)"

# X-Forwarded-For walks right to left past trusted proxies.
mp --key "$K1" --session httpsess0004 --url https://example.com/c >"$HN_TMP/pv4"
post "$HN_TMP/pv4" -A "$UA" -H 'X-Forwarded-For: 198.51.100.20, 127.0.0.1'
hn_wait_for 2 "fourth session live" has_field "$W1" httpsess0004 ip
hn_assert_eq "XFF 'client, trusted proxy': the client's address" 198.51.100.0 "$(sess "$W1" httpsess0004 ip)"
hn_assert_eq "XFF: geo of the client (198.51.100.0/24 → US)" US "$(sess "$W1" httpsess0004 country)"

# A proxy that adds its own X-Forwarded-For line (HAProxy) after the client's forged one.
mp --key "$K1" --session httpsess0005 --url https://example.com/d >"$HN_TMP/pv5"
post "$HN_TMP/pv5" -A "$UA" -H 'X-Forwarded-For: 6.6.6.6' -H 'X-Forwarded-For: 198.51.100.30'
hn_wait_for 2 "fifth session live" has_field "$W1" httpsess0005 ip
hn_assert_eq "two X-Forwarded-For lines: the proxy's (last) entry, not the forged one" 198.51.100.0 \
    "$(sess "$W1" httpsess0005 ip)"

# --- a batch, and the pixel ------------------------------------------------------------------
{
    printf '\x93'
    mp --key "$K1" --session httpbatch001 --url https://example.com/1
    mp --key "$K1" --session httpbatch001 --seq 2 --type ev --event click --prop id=buy
    mp --key "$K1" --session httpbatch001 --seq 3 --type hb --engaged 1500
} >"$HN_TMP/batch"
before=$(metric 'herenow_beacons_accepted_total{transport="http"}')
post "$HN_TMP/batch" -A "$UA" -H 'X-Forwarded-For: 203.0.113.5'
hn_assert_eq "POST /b with an array of 3: 204" 204 "$ST"
hn_assert_eq "array of 3: 3 accepted" $((before + 3)) "$(metric 'herenow_beacons_accepted_total{transport="http"}')"

ST=$(hn_oa_curl "$BODY" -D "$HDRS" -A "$UA" -H 'X-Forwarded-For: 203.0.113.6' \
    "$B/p.gif?v=1&k=$K1&s=pixelsess01&t=pv&q=1&u=https%3A%2F%2Fexample.com%2Fpixel&ti=Pixel+page")
hn_assert_eq "pixel: 200" 200 "$ST"
hn_assert_eq "pixel: 43-byte GIF" 43 "$(stat -c %s "$BODY")"
hn_assert_eq "pixel: image/gif" image/gif "$(header Content-Type)"
hn_assert_eq "pixel: no-store" no-store "$(header Cache-Control)"
hn_wait_for 2 "pixel session live" has_field "$W1" pixelsess01 title
hn_assert_eq "pixel: title decoded" "Pixel page" "$(sess "$W1" pixelsess01 title)"
ST=$(hn_oa_curl "$BODY" -D "$HDRS" -A "$UA" "$B/p.gif?v=1&k=$K1&t=pv&q=1&u=x")
hn_assert_eq "pixel without s: 400" 400 "$ST"
hn_assert_eq "pixel without s: still the GIF" 43 "$(stat -c %s "$BODY")"
hn_assert_eq "pixel without s: counted missing_field" 1 "$(dropped missing_field pixel)"

# --- the widget script -----------------------------------------------------------------------------
ST=$(hn_oa_curl "$BODY" -D "$HDRS" -H 'Accept-Encoding: gzip' "$B/h.js")
hn_assert_eq "GET /h.js: 200" 200 "$ST"
hn_assert_eq "GET /h.js: gzip" gzip "$(header Content-Encoding)"
SIZE=$(stat -c %s "$BODY")
if [ "$SIZE" -le 2048 ]; then hn_ok "GET /h.js: $SIZE bytes gzipped (<= 2048)"; else hn_fail "GET /h.js: $SIZE bytes gzipped"; fi
ETAG=$(header ETag)
hn_assert_cmd "GET /h.js: ETag" test -n "$ETAG"
hn_assert_eq "GET /h.js: Cache-Control" "public, max-age=3600" "$(header Cache-Control)"
gzip -dc "$BODY" >"$HN_TMP/h.js"
hn_assert_cmd "GET /h.js: the beacon path is filled in" grep -q '"/b"' "$HN_TMP/h.js"
if grep -q '@HN_' "$HN_TMP/h.js"; then hn_fail "GET /h.js: a token left"; else hn_ok "GET /h.js: no token left"; fi
ST=$(hn_oa_curl "$HN_TMP/discard" -H 'Accept-Encoding: gzip' -H "If-None-Match: $ETAG" "$B/h.js")
hn_assert_eq "GET /h.js with If-None-Match: 304" 304 "$ST"
ST=$(hn_oa_curl "$BODY" -D "$HDRS" -H "If-None-Match: $ETAG" "$B/h.js")
hn_assert_eq "GET /h.js without gzip, the gzip ETag: 200 (another representation)" 200 "$ST"
hn_assert_cmd "GET /h.js without gzip: the plain script" cmp -s "$BODY" "$HN_TMP/h.js"
if [ "$(header ETag)" != "$ETAG" ]; then hn_ok "plain and gzip have their own ETags"; else hn_fail "one ETag for both encodings"; fi
ST=$(hn_oa_curl "$HN_TMP/discard" -D "$HDRS" -H 'Accept-Encoding: gzip;q=0, identity' "$B/h.js")
hn_assert_eq "Accept-Encoding gzip;q=0: not gzip" "" "$(header Content-Encoding)"
ST=$(hn_oa_curl "$HN_TMP/discard" -D "$HDRS" -X OPTIONS -H 'Origin: https://example.com' \
    -H 'Access-Control-Request-Method: POST' "$B/b")
hn_assert_eq "OPTIONS /b: 204" 204 "$ST"
hn_assert_cmd "OPTIONS /b: allows POST" grep -qi '^Access-Control-Allow-Methods: .*POST' "$HDRS"

# --- bots and opt-outs -------------------------------------------------------------------------------
mp --key "$K1" --session botsession1 --url https://example.com/ >"$HN_TMP/bot"
post "$HN_TMP/bot" -A 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)'
hn_assert_eq "Googlebot: 204 (told nothing)" 204 "$ST"
post "$HN_TMP/bot" -A 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36'
hn_assert_eq "HeadlessChrome: 204" 204 "$ST"
ST=$(hn_oa_curl "$HN_TMP/discard" -A "$UA" "$B/p.gif?v=1&k=$K1&s=botsession1&t=pv&q=1&u=x&wd=1")
hn_assert_eq "pixel with wd=1 (navigator.webdriver): 200" 200 "$ST"
hn_assert_eq "bots: 2 dropped as bot (http)" 2 "$(dropped bot)"
hn_assert_eq "bots: 1 dropped as bot (pixel)" 1 "$(dropped bot pixel)"
hn_assert_eq "bots: no session" 0 "$(hn_redis EXISTS "hn:sess:{$W1}:botsession1")"

mp --key "$K1" --session gpcsession1 --url https://example.com/ >"$HN_TMP/gpc"
post "$HN_TMP/gpc" -A "$UA" -H 'Sec-GPC: 1'
hn_assert_eq "Sec-GPC: 1: 204" 204 "$ST"
post "$HN_TMP/gpc" -A "$UA" -H 'DNT: 1'
hn_assert_eq "opt-outs: 2 dropped as opted_out" 2 "$(dropped opted_out)"
hn_assert_eq "opt-outs: no session" 0 "$(hn_redis EXISTS "hn:sess:{$W1}:gpcsession1")"
mp --key "$K2" --session gpcsession2 --url https://example.com/ >"$HN_TMP/gpc2"
post "$HN_TMP/gpc2" -A "$UA" -H 'Sec-GPC: 1'
hn_wait_for 2 "a widget with --honor-dnt no keeps a GPC visit" has_field "$W2" gpcsession2 url
hn_assert_eq "opt-outs: still 2" 2 "$(dropped opted_out)"

# --- bad input: status and counter each, and the collector goes on --------------------------------
printf 'this is not msgpack' >"$HN_TMP/garbage"
post "$HN_TMP/garbage" -A "$UA"
hn_assert_eq "garbage body: 400" 400 "$ST"
hn_assert_cmd "garbage body: a one-line reason" test "$(wc -l <"$BODY")" -eq 1
hn_assert_eq "garbage body: counted malformed" 1 "$(dropped malformed)"
: >"$HN_TMP/empty"
post "$HN_TMP/empty" -A "$UA"
hn_assert_eq "empty body: 400" 400 "$ST"
hn_assert_eq "empty body: counted malformed" 2 "$(dropped malformed)"
mp --key nosuchwidgetkey --session unknownw001 --url https://example.com/ >"$HN_TMP/unknown"
post "$HN_TMP/unknown" -A "$UA"
hn_assert_eq "unknown widget key: 400" 400 "$ST"
hn_assert_cmd "unknown widget key: says so" grep -q 'unknown widget' "$BODY"
hn_assert_eq "unknown widget key: counted" 1 "$(dropped unknown_widget)"

ST=$(hn_oa_curl "$BODY" -D "$HDRS" -X PUT -A "$UA" "$B/b")
hn_assert_eq "PUT /b: 405" 405 "$ST"
hn_assert_eq "PUT /b: Allow" "POST, OPTIONS" "$(header Allow)"
ST=$(hn_oa_curl "$HN_TMP/discard" -A "$UA" "$B/b")
hn_assert_eq "GET /b: 405" 405 "$ST"
ST=$(hn_oa_curl "$HN_TMP/discard" -X DELETE "$B/h.js")
hn_assert_eq "DELETE /h.js: 405" 405 "$ST"
hn_assert_eq "405s counted" 3 "$(answered 405)"
ST=$(hn_oa_curl "$HN_TMP/discard" "$B/wp-login.php")
hn_assert_eq "unknown path: 404" 404 "$ST"

head -c 70000 /dev/zero >"$HN_TMP/big"
post "$HN_TMP/big" -A "$UA"
hn_assert_eq "70,000-byte body: 413" 413 "$ST"
hn_assert_eq "70,000-byte body: counted too_large" 1 "$(dropped too_large)"
head -c 300000 /dev/zero >"$HN_TMP/huge"
post "$HN_TMP/huge" -A "$UA"
# libevent answers 413 as soon as it sees Content-Length and closes; curl, still
# sending, may see the answer or only the reset
case $ST in 413|000) hn_ok "300,000-byte body (past libevent's own bound): refused ($ST)" ;;
            *) hn_fail "300,000-byte body: $ST" ;; esac
PAD=$(head -c 10000 /dev/zero | tr '\0' a)
post "$HN_TMP/pv1" -A "$UA" -H "X-Pad: $PAD"
hn_assert_eq "10 KB of headers: 431" 431 "$ST"
hn_assert_eq "10 KB of headers: counted too_large" 2 "$(dropped too_large)"
hn_assert_cmd "after the bad input: still alive" alive

# --- the rate limit (5/s, burst 10, per client address and worker) ------------------------------------
# 40 requests on one keep-alive connection (one worker, whose buckets are its
# own), as fast as curl sends them: well over the burst even on a loaded
# machine (one curl process per request let the bucket refill between them).
mp --key "$K1" --session ratesess001 --url https://example.com/ >"$HN_TMP/rate"
urls=()
for _ in $(seq 1 40); do urls+=(-o /dev/null "$B/b"); done
codes=" $(curl -s -w '%{http_code} ' -A "$UA" -H 'X-Forwarded-For: 192.0.2.50' \
    --data-binary "@$HN_TMP/rate" "${urls[@]}" || true)"
codes=${codes% }
n204=$(tr ' ' '\n' <<<"$codes" | grep -c '^204$' || true)
n429=$(tr ' ' '\n' <<<"$codes" | grep -c '^429$' || true)
# 10 at once per worker, plus what refilled while curl ran (5/s)
if [ "$n204" -ge 10 ] && [ "$n429" -ge 1 ] && [ $((n204 + n429)) -eq 40 ]; then
    hn_ok "rate limit: $n204 × 204 then $n429 × 429"
else
    hn_fail "rate limit: codes$codes"
fi
hn_assert_eq "rate limit: counted rate_limited" "$n429" "$(dropped rate_limited)"
post "$HN_TMP/rate" -A "$UA" -H 'X-Forwarded-For: 192.0.2.51'
hn_assert_eq "rate limit: another client is not limited" 204 "$ST"
# the limited client is still limited: its next answers reach a 429 with a
# Retry-After (tokens come back at 5/s, so on a loaded machine one or two may
# have refilled since the burst and are taken first; 20 tries drain them)
for _ in $(seq 1 20); do
    post "$HN_TMP/rate" -A "$UA" -H 'X-Forwarded-For: 192.0.2.50'
    [ "$ST" = 429 ] && break
done
hn_assert_eq "429 again for the limited client" 429 "$ST"
hn_assert_cmd "429: Retry-After" test -n "$(header Retry-After)"

# --- slowloris: connections that never finish their request --------------------------------------------
SLOW=40
fds=()
for _ in $(seq 1 $SLOW); do
    exec {fd}<>"/dev/tcp/127.0.0.1/$HTTP"
    printf 'POST /b HTTP/1.1\r\nHost: x\r\nUser-Agent: slow' >&"$fd"
    fds+=("$fd")
done
post "$HN_TMP/pv2" -A "$UA" -H 'X-Forwarded-For: 203.0.113.8' --max-time 2
hn_assert_eq "during $SLOW slow requests: a beacon is answered 204" 204 "$ST"
closed=0
for fd in "${fds[@]}"; do
    # the server closes each one after HERENOW_HTTP_TIMEOUT_MS (1 s): EOF, not our timeout
    if timeout 5 cat <&"$fd" >/dev/null 2>&1; then closed=$((closed + 1)); fi
    exec {fd}>&-
done
hn_assert_eq "slowloris: the server closed all $SLOW slow connections" "$SLOW" "$closed"
hn_assert_eq "slowloris: counted as incomplete requests" "$SLOW" "$(metric herenow_http_incomplete_requests_total)"
post "$HN_TMP/pv2" -A "$UA" -H 'X-Forwarded-For: 203.0.113.8'
hn_assert_eq "after the slowloris: 204" 204 "$ST"

# A request dripping a byte every 0.4 s never lets the idle timeout (1 s) fire;
# HERENOW_HTTP_REQUEST_TIMEOUT_MS (2.5 s) cuts it off.
exec {drip}<>"/dev/tcp/127.0.0.1/$HTTP"
printf 'POST /b HTTP/1.1\r\nHost: x\r\nX-Drip: ' >&"$drip"
( for _ in $(seq 1 25); do printf a >&"$drip" 2>/dev/null || exit 0; sleep 0.4; done ) &
dripper=$!
t0=$(date +%s%N)
if timeout 8 cat <&"$drip" >/dev/null 2>&1; then
    ms=$((($(date +%s%N) - t0) / 1000000))
    if [ "$ms" -ge 2000 ]; then hn_ok "drip-fed request cut off after $ms ms (limit 2500 ms)"
    else hn_fail "drip-fed request closed after only $ms ms"; fi
else
    hn_fail "drip-fed request still open after 8 s"
fi
exec {drip}>&-
wait "$dripper" 2>/dev/null || true
hn_assert_eq "drip-fed request: counted as a request timeout" 1 "$(metric herenow_http_request_timeouts_total)"
hn_assert_eq "drip-fed request: counted as incomplete" $((SLOW + 1)) "$(metric herenow_http_incomplete_requests_total)"

# --- X-Forwarded-For from an untrusted peer is ignored -------------------------------------------------
HTTP2=$(hn_free_port)
ADMIN2=$(hn_free_port)
# (a spool directory of its own: a collector locks its spool files)
hn_spawn collector2 env HERENOW_TRUSTED_PROXIES= HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP2 \
    HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN2 HERENOW_SPOOL_DIR="$HN_TMP/spool2" "$HN_BIN/herenow-collector"
hn_wait_for 10 "second collector ready" curl -fsS "http://127.0.0.1:$ADMIN2/readyz"
mp --key "$K1" --session untrusted01 --url https://example.com/ >"$HN_TMP/untrusted"
ST=$(hn_oa_curl "$HN_TMP/discard" -A "$UA" -H 'X-Forwarded-For: 203.0.113.99' \
    --data-binary "@$HN_TMP/untrusted" "http://127.0.0.1:$HTTP2/b")
hn_assert_eq "untrusted peer: 204" 204 "$ST"
hn_wait_for 2 "untrusted peer: session live" has_field "$W1" untrusted01 ip
hn_assert_eq "untrusted peer: X-Forwarded-For ignored (the socket's address, masked)" 127.0.0.0 \
    "$(sess "$W1" untrusted01 ip)"
rc=0; hn_stop "$HN_PID_collector2" || rc=$?
hn_assert_eq "second collector stops cleanly (exit 0)" 0 "$rc"

# --- nothing full anywhere, and a clean stop ------------------------------------------------------------
for k in $(hn_redis --scan --pattern 'hn:sess:*'); do hn_redis HGETALL "$k"; done >"$HN_TMP/redis-dump"
hn_redis XRANGE hn:stream:0 - + >>"$HN_TMP/redis-dump"
for ip in 203.0.113.77 198.51.100.20 203.0.113.5 203.0.113.6; do
    if grep -q "$ip" "$HN_TMP/redis-dump" "$HN_TMP/collector.log"; then
        hn_fail "full IP $ip found in Redis or the log"
    else
        hn_ok "full IP $ip in neither Redis nor the log"
    fi
done
rc=0; hn_stop "$HN_PID_collector" || rc=$?
hn_assert_eq "collector stops cleanly (exit 0)" 0 "$rc"

hn_done
