#!/usr/bin/env bash
# test_hostile.sh: a table of hostile inputs against running daemons — real
# Redis and PostgreSQL, a collector (UDP + HTTP, 2 worker threads) and
# herenow-api (a widget, a token, the dashboard). Every row is sent, then
# three things are checked:
#   (a) its answer: the HTTP status, or exactly the counters it must move
#       (herenow_beacons_{received,dropped,accepted}_total by transport and
#       reason, herenow_http_responses_total by code) and no other;
#   (b) both daemons still answer /livez (and the collector's workers its
#       beacon port);
#   (c) both daemons' RSS (/proc/PID/status VmRSS) within bounds: printed
#       per row; the bounds and why they are what they are: see below.
#
#   1. beacon shapes over UDP, HTTP POST and the pixel: fuzz crashers'
#      shapes (truncation, lengths beyond the buffer, ext types, nil keys,
#      wrong types, negative fixints where a uint belongs), 0/1-byte and
#      65507-byte datagrams, deep nesting, huge maps, invalid UTF-8
#   2. HTTP floods on the collector's and the api's ports: thousands of
#      headers, a 1 MB header, 100 MB Content-Length, chunked bodies past
#      the limit, a 64 KB request line, smuggling shapes, pipelining
#   3. slow clients (a request dripped 1 byte/s) on both ports
#   4. 10,000 idle connections on the collector, 2,000 on the api: service
#      goes on, the servers close them after their timeouts, memory holds
#   5. the API's parameters: absurd numbers, ranges, cursors, ids, NUL,
#      traversal on the dashboard's route: 400/404 with a reason, never 5xx
#   6. a collector out of file descriptors (RLIMIT_NOFILE 256) under idle
#      connections: it stays up, does not spin, and serves again after
#
# Traffic goes to 127.0.0.1 only; every phase is bounded in time. The
# client side of the raw shapes is tests/tools/hostile.mjs (node, built-in
# modules only).
set -euo pipefail
export LC_ALL=C
source "$(dirname "$0")/../lib.sh"

CTL="$HN_BIN/herenowctl"
HOSTILE="$HN_ROOT/tests/tools/hostile.mjs"
command -v node >/dev/null || { hn_fail "node is needed (apt-get install nodejs)"; hn_done; }
hn_need jq jq

# 10,000 idle connections need as many descriptors on both sides (the
# client, node, and the collector inherit this limit).
NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=65536
[ "$NOFILE" -ge 12500 ] || { hn_fail "the hard RLIMIT_NOFILE ($NOFILE) is below 12500: 10,000 idle connections cannot be tested"; hn_done; }
ulimit -n "$NOFILE"

hn_start_stores
read -r WID KEY <<<"$(hn_widget_add --name "Hostile" --domain example.com)"
TOK=$("$CTL" token create --all 2>/dev/null)
export HN_KEY=$KEY

UDP=$(hn_free_port)
HTTP=$(hn_free_port)
ADMIN=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_THREADS=2 HERENOW_WIDGET_REFRESH_MS=300 HERENOW_RATE_LIMIT=0
# a request must have arrived within 1.5 s; a silent connection is closed
# after 8 s (longer than opening 10,000 connections takes here, ~3-5 s)
export HERENOW_HTTP_REQUEST_TIMEOUT_MS=1500 HERENOW_HTTP_TIMEOUT_MS=8000
hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
# the api's evhttp timeout is max(API_TIMEOUT_MS, 5 s): 5 s
export HERENOW_API_WWW=$HN_ROOT/api/www HERENOW_API_THREADS=2 HERENOW_TOKEN_REFRESH_MS=500 \
    HERENOW_API_TIMEOUT_MS=5000 HERENOW_API_REQUEST_TIMEOUT_MS=2000
hn_start_api
API=${HN_API_URL##*:}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
rss_mb() { awk '/^VmRSS:/ { printf "%d", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo -1; }
# cm NAME: a collector metric without labels
cm() { curl -fsS --max-time 3 "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
am() { curl -fsS --max-time 3 "http://127.0.0.1:$API/metrics" | awk -v m="$1" '$1 == m { printf "%.0f\n", $2 }'; }

# ---- memory bounds ------------------------------------------------------------------------
# Measured (2 cores, Debian 12, release build): both daemons start at 10-11
# MB; the largest any row of this test leaves them at is the collector with
# 10,000 connections open, 32 MB (evhttp keeps ~2 KB per connection), and
# the api with 2,000, 16 MB. The bounds leave 3-4 times that: a daemon that
# allocates in proportion to what a client claims or sends (a 4 G-entry map
# header, a 100 MB Content-Length, 100,000 nesting levels) or that keeps a
# buffer per hostile request crosses them. Sanitizer builds (make
# SANITIZER=address) carry shadow memory and a quarantine: measured 42 and
# 20 MB at start, 185 and 62 MB at most, so their bounds are 4 times larger.
RSS0_C=$(rss_mb "$HN_PID_collector")
RSS0_A=$(rss_mb "$HN_PID_api")
MAX_C=96
MAX_A=64
# (not `grep -q`: it stops reading, ldd dies of SIGPIPE and pipefail makes the test false)
if ldd "$HN_BIN/herenow-collector" | grep -E 'lib(asan|ubsan|tsan)' >/dev/null; then
    MAX_C=$((MAX_C * 4))
    MAX_A=$((MAX_A * 4))
fi
echo "# baseline RSS: collector $RSS0_C MB, api $RSS0_A MB; bounds: collector < $MAX_C MB, api < $MAX_A MB"
export HN_UDP=$UDP HN_HTTP=$HTTP HN_ADMIN=$ADMIN HN_APIPORT=$API HN_PIDC=$HN_PID_collector \
    HN_PIDA=$HN_PID_api HN_MAXC=$MAX_C HN_MAXA=$MAX_A HN_TOK=$TOK HN_WID=$WID

# run_node NAME ARGS...: hostile.mjs ARGS (stdin passed on), its "ok"/"not
# ok" lines added to this test's counts; a crash or no assertion is a failure.
run_node() {
    local name=$1 rc=0 p f
    shift
    node "$HOSTILE" "$@" 2>&1 | tee "$HN_TMP/$name.out" || rc=$?
    p=$(grep -c '^ok - ' "$HN_TMP/$name.out" || true)
    f=$(grep -c '^not ok - ' "$HN_TMP/$name.out" || true)
    HN_PASSED=$((HN_PASSED + p))
    HN_FAILED=$((HN_FAILED + f))
    if [ "$rc" -ne 0 ]; then hn_fail "$name: hostile.mjs exited with status $rc"; fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then hn_fail "$name ran no assertion"; fi
}

SHAPES=$HN_TMP/shapes
node "$HOSTILE" gen "$SHAPES" >"$HN_TMP/shapes.json"

# ---- 1 + 2. the table ----------------------------------------------------------------------
# KIND  TARGET  STATUS  COUNTERS
#   udp SHAPE          the datagram SHAPE (hostile.mjs gen: shapes())
#   post SHAPE         SHAPE as the body of POST /b (collector)
#   pixel QUERY        GET /p.gif?QUERY
#   raw PORT:CASE:PATH a hostile HTTP exchange (hostile.mjs httpCase) on
#                      the collector's beacon port or the api's
#   api METHOD:PATH    an API request with a valid token
#   In QUERY and PATH: {KEY} and {WID} the widget's, {rep:TEXT:N} TEXT N
#   times, {b64:TEXT} TEXT in base64url.
# STATUS: the answer's status, '|'-separated choices: a code, "4xx" any
#   4xx, "ev4xx" a 4xx page of libevent's own (no handler of ours saw the
#   request), "closed" closed without an answer; "-" none (UDP). No answer
#   on the connection may be a 5xx unless STATUS names one.
# COUNTERS: drop:TRANSPORT:REASON[:CODE] / acc:TRANSPORT[:CODE] — exactly
#   these collector series move by one (received, dropped or accepted,
#   the response code or the datagram count), nothing else; "-" nothing
#   moves; "*" not checked (answered by libevent before our handler).
echo "# 1. beacon shapes (sizes: $(jq -c . "$HN_TMP/shapes.json"))"
run_node shapes table "$SHAPES" <<'TABLE'
udp   valid                 -    acc:udp
post  valid                 204  acc:http:204
# sizes: 0, 1 and 65507 bytes (the largest UDP payload), > 8 KiB, > 64 KiB
udp   empty                 -    drop:udp:malformed
post  empty                 400  drop:http:malformed:400
udp   byte_c1               -    drop:udp:malformed
post  byte_c1               400  drop:http:malformed:400
udp   byte_81               -    drop:udp:malformed
post  byte_81               400  drop:http:malformed:400
udp   byte_01               -    drop:udp:not_map
post  byte_01               400  drop:http:not_map:400
udp   max_valid             -    drop:udp:too_large
post  max_valid             400  drop:http:too_long:400
udp   max_garbage           -    drop:udp:too_large
post  max_garbage           400  drop:http:malformed:400
udp   udp_over              -    drop:udp:too_large
post  udp_over              400  drop:http:too_long:400
post  body_over             413  drop:http:too_large:413
# fuzz crashers' shapes: truncation, trailing bytes, lengths beyond the buffer
udp   trunc_half            -    drop:udp:malformed
post  trunc_half            400  drop:http:malformed:400
udp   trunc_last            -    drop:udp:malformed
post  trunc_last            400  drop:http:malformed:400
udp   trailing              -    drop:udp:malformed
post  trailing              400  drop:http:malformed:400
udp   two_objects           -    drop:udp:malformed
post  two_objects           400  drop:http:malformed:400
udp   str8_beyond           -    drop:udp:malformed
post  str8_beyond           400  drop:http:malformed:400
udp   str16_beyond          -    drop:udp:malformed
post  str16_beyond          400  drop:http:malformed:400
udp   str32_beyond          -    drop:udp:malformed
post  str32_beyond          400  drop:http:malformed:400
udp   bin32_beyond          -    drop:udp:malformed
post  bin32_beyond          400  drop:http:malformed:400
udp   ext32_beyond          -    drop:udp:malformed
post  ext32_beyond          400  drop:http:malformed:400
# containers claiming more elements than there are bytes (4 G in 5 bytes)
udp   array32_claim         -    drop:udp:malformed
post  array32_claim         400  drop:http:malformed:400
udp   map32_claim           -    drop:udp:malformed
post  map32_claim           400  drop:http:malformed:400
udp   map32_claim_d         -    drop:udp:malformed
post  map32_claim_d         400  drop:http:malformed:400
udp   map16_claim           -    drop:udp:malformed
post  map16_claim           400  drop:http:malformed:400
# wrong types: negative fixints where a uint belongs, ext, nil, bin, float
udp   v_str                 -    drop:udp:bad_type
post  v_str                 400  drop:http:bad_type:400
udp   v_neg                 -    drop:udp:bad_type
post  v_neg                 400  drop:http:bad_type:400
udp   q_neg                 -    drop:udp:bad_type
post  q_neg                 400  drop:http:bad_type:400
udp   sw_neg                -    drop:udp:bad_type
post  sw_neg                400  drop:http:bad_type:400
udp   k_int                 -    drop:udp:bad_type
post  k_int                 400  drop:http:bad_type:400
udp   s_bin                 -    drop:udp:bad_type
post  s_bin                 400  drop:http:bad_type:400
udp   u_nil                 -    drop:udp:bad_type
post  u_nil                 400  drop:http:bad_type:400
udp   d_array               -    drop:udp:bad_type
post  d_array               400  drop:http:bad_type:400
udp   d_nested              -    drop:udp:bad_type
post  d_nested              400  drop:http:bad_type:400
udp   top_ext               -    drop:udp:not_map
post  top_ext               400  drop:http:not_map:400
udp   u_fixext              -    drop:udp:bad_type
post  u_fixext              400  drop:http:bad_type:400
udp   d_ext                 -    drop:udp:bad_type
post  d_ext                 400  drop:http:bad_type:400
udp   q_float               -    drop:udp:bad_type
post  q_float               400  drop:http:bad_type:400
udp   v_big                 -    drop:udp:bad_version
post  v_big                 400  drop:http:bad_version:400
# nil and int keys: unknown keys at the top (ignored), refused in d
udp   nil_keys              -    acc:udp
post  nil_keys              204  acc:http:204
udp   d_nil_key             -    drop:udp:bad_type
post  d_nil_key             400  drop:http:bad_type:400
udp   top_array_empty       -    drop:udp:batch_too_large
post  top_array_empty       400  drop:http:batch_too_large:400
udp   top_batch_33          -    drop:udp:batch_too_large
post  top_batch_33          400  drop:http:batch_too_large:400
udp   top_str               -    drop:udp:not_map
post  top_str               400  drop:http:not_map:400
udp   top_nil               -    drop:udp:not_map
post  top_nil               400  drop:http:not_map:400
# deep nesting: as deep as the size limits allow (8000 and 60000 levels), and 100,000
udp   deep_arrays_udp       -    drop:udp:malformed
post  deep_arrays_udp       400  drop:http:malformed:400
udp   deep_maps_udp         -    drop:udp:malformed
post  deep_maps_udp         400  drop:http:malformed:400
post  deep_arrays_http      400  drop:http:malformed:400
post  deep_100k             413  drop:http:too_large:413
udp   deep_top_9            -    drop:udp:malformed
post  deep_top_9            400  drop:http:malformed:400
# huge maps that are really there: 1000 and 8000 props, 1000 unknown keys
udp   d_keys_1000           -    drop:udp:too_long
post  d_keys_1000           400  drop:http:too_long:400
post  d_keys_8000           400  drop:http:too_long:400
udp   unknown_keys_1000     -    acc:udp
post  unknown_keys_1000     204  acc:http:204
# invalid UTF-8 (strict, RFC 3629) and NUL
udp   utf8_overlong         -    drop:udp:bad_utf8
post  utf8_overlong         400  drop:http:bad_utf8:400
udp   utf8_overlong3        -    drop:udp:bad_utf8
post  utf8_overlong3        400  drop:http:bad_utf8:400
udp   utf8_surrogate        -    drop:udp:bad_utf8
post  utf8_surrogate        400  drop:http:bad_utf8:400
udp   utf8_truncated        -    drop:udp:bad_utf8
post  utf8_truncated        400  drop:http:bad_utf8:400
udp   utf8_above_max        -    drop:udp:bad_utf8
post  utf8_above_max        400  drop:http:bad_utf8:400
udp   utf8_f5               -    drop:udp:bad_utf8
post  utf8_f5               400  drop:http:bad_utf8:400
udp   utf8_lone_cont        -    drop:udp:bad_utf8
post  utf8_lone_cont        400  drop:http:bad_utf8:400
udp   utf8_in_d_key         -    drop:udp:bad_utf8
post  utf8_in_d_key         400  drop:http:bad_utf8:400
udp   utf8_in_d_val         -    drop:udp:bad_utf8
post  utf8_in_d_val         400  drop:http:bad_utf8:400
udp   nul_in_u              -    drop:udp:bad_value
post  nul_in_u              400  drop:http:bad_value:400
# the pixel: the same checks on a query string
pixel k={KEY}&s=hostile0001&t=pv&q=1&u=x                 200  acc:pixel:200
pixel k={KEY}&s=hostile0001&t=pv&q=1&u=%C0%AF            400  drop:pixel:bad_utf8:400
pixel k={KEY}&s=hostile0001&t=pv&q=1&u=%ED%A0%80         400  drop:pixel:bad_utf8:400
pixel k={KEY}&s=hostile0001&t=pv&q=1&u=%E2%82            400  drop:pixel:bad_utf8:400
pixel k={KEY}&s=hostile0001&t=pv&q=1&u=a%00b             400  drop:pixel:bad_value:400
pixel k={KEY}&s=hostile0001&t=pv&q=1&u=%zz               400  drop:pixel:malformed:400
pixel k={KEY}&s=hostile0001&t=pv&q=1&u=%                 400  drop:pixel:malformed:400
pixel k={KEY}&s=hostile0001&t=pv&q=-1&u=x                400  drop:pixel:bad_value:400
pixel k={KEY}&s=hostile0001&t=pv&q=99999999999999999999999&u=x 400 drop:pixel:bad_value:400
pixel k={KEY}&s=hostile0001&t=pv&q=1&u=x&ti={rep:a:15000} 400 drop:pixel:too_long:400
pixel k={KEY}&s=hostile0001&t=pv&q=1&u=x{rep:&x=1:1500}  200  acc:pixel:200
pixel k={KEY}&s=hostile0001&t=pv&q=1&u=x&d.{rep:a:100}=1  400  drop:pixel:too_long:400
pixel {rep:&:12000}                                      400  drop:pixel:missing_field:400
TABLE

echo "# 2. HTTP floods on the collector's beacon port and the api's port"
run_node floods table "$SHAPES" <<'TABLE'
raw  collector:headers_5000:/b                    4xx|closed       *
raw  collector:headers_12k:/b                     431              drop:http:too_large:431
raw  collector:header_1mb:/b                      4xx|closed       *
raw  collector:header_1mb_noend:/b                4xx|closed       *
raw  collector:cl_100mb:/b                        4xx|closed       *
raw  collector:cl_negative:/b                     4xx|closed       *
raw  collector:cl_huge_number:/b                  4xx|closed       *
raw  collector:cl_two_values:/b                   4xx|closed       *
raw  collector:cl_and_chunked:/b                  4xx|closed       *
raw  collector:chunked_200k:/b                    4xx|closed       *
raw  collector:chunked_size_overflow:/b           4xx|closed       *
raw  collector:chunked_size_garbage:/b            4xx|closed       *
raw  collector:request_line_64k:/p.gif            4xx|closed       *
raw  collector:request_line_64k_noend:/p.gif      4xx|closed       *
raw  collector:garbage_line:/b                    4xx|closed       *
raw  collector:bad_version:/h.js                  4xx|closed       *
raw  collector:header_no_colon:/h.js              4xx|closed       *
raw  collector:header_nul:/h.js                   4xx|200|closed   *
raw  collector:folded_flood:/h.js                 4xx|closed       *
raw  collector:unknown_method:/b                  501|4xx|closed   *
raw  collector:pipelined_1000:/h.js               200              *
raw  api:headers_5000:/livez                      4xx|closed       *
raw  api:header_1mb:/api/visitor-tracking/widgets 4xx|closed       *
raw  api:header_1mb_noend:/livez                  4xx|closed       *
raw  api:cl_100mb:/api/visitor-tracking/widgets   4xx|closed       *
raw  api:cl_negative:/livez                       4xx|closed       *
raw  api:cl_huge_number:/livez                    4xx|closed       *
raw  api:cl_two_values:/livez                     4xx|closed       *
raw  api:cl_and_chunked:/livez                    4xx|closed       *
raw  api:chunked_200k:/api/visitor-tracking/widgets 4xx|closed       *
raw  api:chunked_size_overflow:/livez             4xx|closed       *
raw  api:chunked_size_garbage:/livez              4xx|closed       *
raw  api:request_line_64k:/livez                  4xx|closed       *
raw  api:request_line_64k_noend:/livez            4xx|closed       *
raw  api:garbage_line:/livez                      4xx|closed       *
raw  api:bad_version:/livez                       4xx|closed       *
raw  api:header_no_colon:/livez                   4xx|closed       *
raw  api:header_nul:/livez                        4xx|200|closed   *
raw  api:folded_flood:/livez                      4xx|closed       *
raw  api:unknown_method:/livez                    501|4xx|closed   *
raw  api:pipelined_1000:/livez                    200              *
TABLE


# ---- 3. slow clients --------------------------------------------------------------------------
# One byte a second: the whole request, or a complete head and then the
# body. The collector cuts a request still arriving after
# HERENOW_HTTP_REQUEST_TIMEOUT_MS (its sweep runs every 250 ms) and counts
# it; the api does the same after HERENOW_API_REQUEST_TIMEOUT_MS (2 s here).
echo "# 3. slow clients (1 byte/s)"
t0=$(cm herenow_http_request_timeouts_total)
i0=$(cm herenow_http_incomplete_requests_total)
at0=$(am herenow_api_http_request_timeouts_total)
ai0=$(am herenow_api_http_incomplete_requests_total)
node "$HOSTILE" slow "$HTTP" /b 1000 6000 line >"$HN_TMP/slow_c_line.json" &
s1=$!
node "$HOSTILE" slow "$HTTP" /b 1000 6000 body >"$HN_TMP/slow_c_body.json" &
s2=$!
node "$HOSTILE" slow "$API" /api/visitor-tracking/widgets 1000 9000 line >"$HN_TMP/slow_a_line.json" &
s3=$!
node "$HOSTILE" slow "$API" /api/visitor-tracking/widgets 1000 9000 body >"$HN_TMP/slow_a_body.json" &
s4=$!
wait "$s1" "$s2" "$s3" "$s4" || true
slow_check() {   # slow_check FILE DESC MIN_MS MAX_MS
    local r
    r=$(cat "$1")
    hn_assert_cmd "$2: closed by the server within $3..$4 ms of the first byte ($r)" \
        jq -e --argjson lo "$3" --argjson hi "$4" '.closed and .ms >= $lo and .ms <= $hi and (.status == null or .status >= 400)' "$1"
}
RT=$HERENOW_HTTP_REQUEST_TIMEOUT_MS
slow_check "$HN_TMP/slow_c_line.json" "collector, request line and head dripped" $((RT - 100)) $((RT + 1250))
slow_check "$HN_TMP/slow_c_body.json" "collector, head at once, body dripped" $((RT - 100)) $((RT + 1250))
hn_assert_eq "collector: both cut requests counted (herenow_http_request_timeouts_total, herenow_http_incomplete_requests_total)" \
    "+2 +2" "+$(($(cm herenow_http_request_timeouts_total) - t0)) +$(($(cm herenow_http_incomplete_requests_total) - i0))"
AT=$HERENOW_API_REQUEST_TIMEOUT_MS
slow_check "$HN_TMP/slow_a_line.json" "api, request line and head dripped" $((AT - 100)) $((AT + 1250))
slow_check "$HN_TMP/slow_a_body.json" "api, head at once, body dripped" $((AT - 100)) $((AT + 1250))
hn_assert_eq "api: both cut requests counted (herenow_api_http_request_timeouts_total, herenow_api_http_incomplete_requests_total)" \
    "+2 +2" "+$(($(am herenow_api_http_request_timeouts_total) - at0)) +$(($(am herenow_api_http_incomplete_requests_total) - ai0))"
run_node slow_health table "$SHAPES" <<'TABLE'
post  valid   204  acc:http:204
TABLE

# ---- 4. idle connections -------------------------------------------------------------------------
# 10,000 connections to the collector's beacon port and then 2,000 to the
# api that never send a byte. While all are open: a beacon still gets 204
# and the api's /livez 200, each within 2 s, and memory holds; then each
# server closes them after its timeout (HERENOW_HTTP_TIMEOUT_MS, the api's
# 5 s), not before. The lifetimes are measured by the client from its
# connect event to the close, with 1 s of slack below the timeout (node
# sees connects late while it makes 10,000 of them, and libevent's timers
# start from the loop's cached clock) and 3 s above (accept and timer lag).
echo "# 4. idle connections: 10,000 on the collector, 2,000 on the api"
NC=10000
NA=2000
c0=$(cm herenow_http_connections_total)
export HN_IDLE="[{\"name\":\"collector\",\"port\":$HTTP,\"n\":$NC,\"pid\":$HN_PID_collector,\"probe\":\"beacon\"},
                 {\"name\":\"api\",\"port\":$API,\"n\":$NA,\"pid\":$HN_PID_api,\"probe\":\"/livez\"}]"
HN_IDLE_CONC=200 node "$HOSTILE" idle 15000 >"$HN_TMP/idle.json" || true
jq -c . "$HN_TMP/idle.json" | sed 's/^/# /'
idle_check() {   # idle_check GROUP N TIMEOUT_MS MAX_RSS DESC
    local g=$1 n=$2 to=$3 max=$4 j
    j=$(jq -c --arg g "$g" '.[$g]' "$HN_TMP/idle.json")
    hn_assert_cmd "$5: all $n connections opened, all open while probed ($j)" \
        jq -e --arg g "$g" --argjson n "$n" '.[$g] | .opened == $n and .failed == 0 and .openAtProbe == $n' "$HN_TMP/idle.json"
    hn_assert_cmd "$5: the probe answered within 2 s while they were open" \
        jq -e --arg g "$g" '.[$g].probe as $p | ($p.status == 204 or $p.status == 200) and $p.ms <= 2000' "$HN_TMP/idle.json"
    hn_assert_cmd "$5: RSS $(jq --arg g "$g" '.[$g].rssMB' "$HN_TMP/idle.json") MB with them open < $max MB" \
        jq -e --arg g "$g" --argjson m "$max" '.[$g].rssMB > 0 and .[$g].rssMB < $m' "$HN_TMP/idle.json"
    hn_assert_cmd "$5: every one closed by the server, none before $((to - 1000)) ms, all within $((to + 3000)) ms of opening" \
        jq -e --arg g "$g" --argjson to "$to" '.[$g] | .leftOpen == 0 and .minLifeMs >= $to - 1000 and .maxLifeMs <= $to + 3000' "$HN_TMP/idle.json"
}
idle_check collector "$NC" "$HERENOW_HTTP_TIMEOUT_MS" "$MAX_C" "collector, $NC idle connections"
idle_check api "$NA" 5000 "$MAX_A" "api, $NA idle connections"
hn_assert_cmd "collector accepted them all (herenow_http_connections_total +$(($(cm herenow_http_connections_total) - c0)) >= $NC)" \
    test "$(($(cm herenow_http_connections_total) - c0))" -ge "$NC"
run_node idle_health table "$SHAPES" <<'TABLE'
post  valid   204  acc:http:204
api   GET:/api/visitor-tracking/widgets  200  -
TABLE

# ---- 5. the API's parameters --------------------------------------------------------------------
# Absurd values get 400 (404 for what does not exist) with a JSON reason,
# never 5xx. ev4xx: a 4xx of libevent's own (its HTML page), for request
# lines over the api's 8 KiB limit, which no handler of ours sees.
echo "# 5. API parameters"
run_node api_params table "$SHAPES" <<'TABLE'
api  GET:/api/visitor-tracking/widgets                                         200  -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?limit=1e30         400  -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?limit=-1           400  -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?limit=0            400  -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?limit=1001         400  -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?limit=99999999999999999999999999999 400 -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?limit=%00          400  -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?limit=1&limit=2    400  -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?limit=%201         400  -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?cursor=!!!!        400  -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?cursor={rep:A:7000} 400 -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?cursor={b64:L99999999999999999999.abcdefgh} 400 -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?cursor={b64:L-1.abcdefgh} 400 -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?cursor={b64:L999999999999999999.abcdefgh} 200 -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?cursor={b64:L1.../../x} 400 -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?status=%FF         400  -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?{rep:a=1&:20}      400  -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors?cursor={rep:A:100000} ev4xx -
api  GET:/api/visitor-tracking/widgets/{WID}/sessions?cursor={b64:S999999999999999999.999999999999999999} 200 -
api  GET:/api/visitor-tracking/widgets/{WID}/sessions?cursor={b64:S0.0}          200  -
api  GET:/api/visitor-tracking/widgets/{WID}/sessions?cursor={b64:S00.0}         400  -
api  GET:/api/visitor-tracking/widgets/{WID}/sessions?limit=1e30                 400  -
api  GET:/api/visitor-tracking/widgets/{WID}/sessions?active=maybe               400  -
api  GET:/api/visitor-tracking/widgets/{WID}/sessions?unknown=1                  400  -
api  GET:/api/visitor-tracking/widgets/{WID}/sessions?=1                         400  -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=1e30             400  -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=-1               400  -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=-7d              400  -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=99999999w        400  -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=1000000m         400  -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=0000-01-01       400  -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=1969-12-31       400  -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=2026-02-30       400  -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=2026-01-01T25:00:00Z 400 -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=2026-01-01T00:00:00.1234567891Z 400 -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=2026-01-01T00:00:00 400 -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=1970-01-01&to=2026-01-01 200 -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=1970-01-01&to=2071-01-01 400 -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=all              200  -
api  GET:/api/visitor-tracking/widgets/{WID}/breakdown?by=page&from=all&to=9999-12-31 400 -
api  GET:/api/visitor-tracking/widgets/{WID}/sessions?from=1970-01-01&to=2026-01-01 400 -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=9999-12-31&to=9999-12-31 400 -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?from=9999-12-01&to=9999-12-31T23:59:59Z 200 -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?to=1970-01-01         200|400 -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?to=1970-01-01T00:00:00%2B23:59 400 -
api  GET:/api/visitor-tracking/widgets/{WID}/visitor-stats?to={rep:9:5000}       400  -
api  GET:/api/visitor-tracking/widgets/{WID}/timeseries?from=9999-12-01&to=9999-12-31T23:59:59Z&interval=hour 200 -
api  GET:/api/visitor-tracking/widgets/{WID}/timeseries?from=400d&interval=hour  400  -
api  GET:/api/visitor-tracking/widgets/{WID}/timeseries?from=400d&interval=day   200  -
api  GET:/api/visitor-tracking/widgets/{WID}/timeseries?interval=minute          400  -
api  GET:/api/visitor-tracking/widgets/{WID}/breakdown?by=../../etc/passwd       400  -
api  GET:/api/visitor-tracking/widgets/{WID}/breakdown?by=page&limit=1e30        400  -
api  GET:/api/visitor-tracking/widgets/{WID}/export.csv?what=everything          400  -
api  GET:/api/visitor-tracking/widgets/{WID}/export.csv?what=events&from=1e30    400  -
api  GET:/api/visitor-tracking/widgets/{WID}/export.csv?what=sessions&from=400d  200  -
api  GET:/api/visitor-tracking/widgets/99999999999999999999999/sessions          400  -
api  GET:/api/visitor-tracking/widgets/-1/sessions                              400  -
api  GET:/api/visitor-tracking/widgets/0/sessions                               400  -
api  GET:/api/visitor-tracking/widgets/1e3/sessions                             400  -
api  GET:/api/visitor-tracking/widgets/0x10/sessions                            400  -
api  GET:/api/visitor-tracking/widgets/007/sessions                             400  -
api  GET:/api/visitor-tracking/widgets/2147483648/sessions                      400  -
api  GET:/api/visitor-tracking/widgets/2147483647/sessions                      200|404 -
api  GET:/api/visitor-tracking/widgets/{rep:9:7000}/sessions                    400  -
api  GET:/api/visitor-tracking/widgets/{rep:9:10240}/sessions                   ev4xx -
api  GET:/api/visitor-tracking/widgets/1%00/sessions                            400  -
api  GET:/api/visitor-tracking/widgets/%00/sessions                             400  -
api  GET:/api/visitor-tracking/widgets/%zz/sessions                             400  -
api  GET:/api/visitor-tracking/widgets/%/sessions                               400  -
api  GET:/api/visitor-tracking/sessions/%00                                     400|404 -
api  GET:/api/visitor-tracking/sessions/..%2F..%2Fetc%2Fpasswd                  400|404 -
api  GET:/api/visitor-tracking/sessions/{rep:a:300}                             400  -
api  GET:/api/visitor-tracking/sessions/short                                   400|404 -
api  GET:/api/visitor-tracking/sessions/hostile0001?{rep:x:7000}=1              400  -
api  POST:/api/visitor-tracking/sessions/%00/deactivate                         400|404 -
api  POST:/api/visitor-tracking/sessions/{rep:a:300}/deactivate                 400  -
api  DELETE:/api/visitor-tracking/widgets/{WID}/visitors/%00                     400  -
api  DELETE:/api/visitor-tracking/widgets/{WID}/visitors/{rep:v:300}             400  -
api  DELETE:/api/visitor-tracking/widgets/{WID}/visitors/%C0%AF                  400  -
api  DELETE:/api/visitor-tracking/widgets/{WID}/visitors/%0A                     400  -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors/stream?ticket={rep:A:5000} 401 -
api  GET:/api/visitor-tracking/widgets/{WID}/active-visitors/stream?ticket=x&last_event_id=99999999999999999999999 400|401 -
api  POST:/api/visitor-tracking/widgets/{WID}/active-visitors/stream/ticket?x=1  400  -
api  GET:/api/visitor-tracking/../../etc/passwd                                 400|404 -
api  GET:/api/%2e%2e/%2e%2e/etc/passwd                                          404  -
api  GET:/api                                                                   404  -
api  PUT:/api/visitor-tracking/widgets                                          405  -
api  PATCH:/api/visitor-tracking/widgets/{WID}/sessions                         405  -
# the dashboard's static route: traversal, encodings, NUL
api  GET:/../../etc/passwd                                                      400|404 -
api  GET:/%2e%2e%2f%2e%2e%2fetc%2fpasswd                                        404  -
api  GET:/..%2f..%2fetc%2fpasswd                                                404  -
api  GET:/%2e%2e/%2e%2e/etc/passwd                                              404  -
api  GET:/.%2e/.%2e/etc/passwd                                                  404  -
api  GET:/%252e%252e%252fetc%252fpasswd                                         404  -
api  GET:/%5c..%5c..%5cetc%5cpasswd                                             404  -
api  GET:/index.html%00.js                                                      404  -
api  GET://etc/passwd                                                           400|404 -
api  GET:/index.html/..                                                         404  -
api  GET:/app.js/                                                               404  -
api  GET:/{rep:a:7000}                                                          404  -
api  GET:/index.html?{rep:x:7000}                                               200  -
api  POST:/index.html                                                           405  -
TABLE

# ---- 6. out of file descriptors -----------------------------------------------------------------
# A second collector (one worker, HTTP only) limited to 256 descriptors,
# and 400 idle connections: ~240 are accepted, then accept() fails with
# EMFILE until their timeout (3 s) frees descriptors; the rest and the
# probe queued behind them are accepted then. It must stay up, must not spin on the listening
# socket (libevent retries a failed accept at once and logs every failure:
# the log may grow by at most 100 lines here), and must serve again.
echo "# 6. a collector out of file descriptors (RLIMIT_NOFILE 256, 400 idle connections)"
HTTP2=$(hn_free_port)
ADMIN2=$(hn_free_port)
HERENOW_UDP_LISTEN= HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP2 HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN2 \
    HERENOW_THREADS=1 HERENOW_HTTP_TIMEOUT_MS=3000 HERENOW_SPOOL_DIR=$HN_TMP/spool_fd \
    hn_spawn collector_fd bash -c "ulimit -n 256 && exec '$HN_BIN/herenow-collector'"
hn_wait_for 20 "fd-limited collector ready" curl -fsS "http://127.0.0.1:$ADMIN2/readyz"
P2=$HN_PID_collector_fd
hn_assert_eq "fd-limited collector: RLIMIT_NOFILE 256" 256 "$(awk '/^Max open files/ { print $4 }' "/proc/$P2/limits")"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
lines0=$(wc -l <"$HN_TMP/collector_fd.log")
cpu0=$(cpu_ticks "$P2")
ms0=$(now_ms)
HN_IDLE="[{\"name\":\"c\",\"port\":$HTTP2,\"n\":400,\"pid\":$P2,\"probe\":\"beacon\"}]" \
    node "$HOSTILE" idle 8000 >"$HN_TMP/idle_fd.json" || true
cpu=$(($(cpu_ticks "$P2") - cpu0))
ms=$(($(now_ms) - ms0))
lines=$(($(wc -l <"$HN_TMP/collector_fd.log") - lines0))
echo "# $(jq -c . "$HN_TMP/idle_fd.json"); CPU $((cpu * 10)) ms in $ms ms; log +$lines lines"
echo "# log: $(tail -n +"$((lines0 + 1))" "$HN_TMP/collector_fd.log" | sed 's/^ts=[^ ]* //' | sort | uniq -c | sort -rn | head -3 | tr -s ' ' | tr '\n' ';')"
hn_assert_cmd "fd-limited collector: still alive" hn_alive "$P2"
hn_assert_cmd "fd-limited collector: the beacon probe got 204 once descriptors were free, within 3 s + 2 s" \
    jq -e '.c.probe.status == 204 and .c.probe.ms <= 5000 and .c.leftOpen == 0' "$HN_TMP/idle_fd.json"
hn_assert_cmd "fd-limited collector: /livez answers afterwards" curl -fsS --max-time 3 "http://127.0.0.1:$ADMIN2/livez"
ae=$(curl -fsS --max-time 3 "http://127.0.0.1:$ADMIN2/metrics" | awk '$1 == "herenow_http_accept_errors_total" { print $2 }')
hn_assert_cmd "fd-limited collector: failed accepts counted (herenow_http_accept_errors_total $ae)" test "${ae:-0}" -ge 1
hn_assert_cmd "fd-limited collector: no busy loop on accept (log +$lines lines, CPU $((cpu * 10)) ms in $ms ms; at most 100 lines)" \
    test "$lines" -le 100
hn_stop "$P2" 10 || true

# ---- the whole run ----------------------------------------------------------------------------
echo "# the whole run"
ct=$(curl -fsS --max-time 3 "http://127.0.0.1:$ADMIN/metrics")
hn_assert_eq "collector: no 5xx answered over the whole run" "0 0 0" \
    "$(awk '$1 ~ /^herenow_http_responses_total\{code="(500|503|other)"\}$/ { printf "%s%s", s, $2; s = " " }' <<<"$ct")"
hn_assert_eq "collector: every beacon received was accepted or dropped with a reason" \
    "$(awk '$1 ~ /^herenow_beacons_received_total/ { s += $2 } END { print s }' <<<"$ct")" \
    "$(awk '$1 ~ /^herenow_beacons_(accepted|dropped)_total/ { s += $2 } END { print s }' <<<"$ct")"
at=$(curl -fsS --max-time 3 "$HN_API_URL/metrics")
hn_assert_eq "api: no 5xx answered over the whole run" 0 \
    "$(awk '$1 ~ /^herenow_api_requests_total\{.*code="5xx"\}$/ { s += $2 } END { print s + 0 }' <<<"$at")"
for d in collector api; do
    hn_assert_cmd "$d log: no sanitizer report, assertion or crash" \
        bash -c "! grep -Eq 'AddressSanitizer|runtime error|Assertion|SIGSEGV|level=fatal' '$HN_TMP/$d.log'"
done
echo "# final RSS: collector $(rss_mb "$HN_PID_collector") MB, api $(rss_mb "$HN_PID_api") MB (baseline $RSS0_C, $RSS0_A)"
hn_done
