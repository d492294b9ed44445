#!/usr/bin/env bash
# test_chat_downlink.sh: the chat downlink (docs/CHAT.md §2) against a real
# Redis and two collectors sharing hn:widgets: GET /v as Server-Sent Events
# from hn:chat:{w} — only the session's entries, in order, on the collector
# the page is connected to; resume with Last-Event-ID and last= (exactly the
# missed entries, once); refusals (chat off, bad sid, bad id, the cap) with
# their JSON errors; a closed client freed; Redis restarted under open
# streams (later entries arrive, none twice); the beacon answer naming the
# chat script; the chat script served with ETag and gzip; /metrics.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_start_redis
REDIS_DIR=$HN_TMP/redis
W=42 K=chatkey0042 WOFF=43 KOFF=offkey0043
hn_redis HSET hn:widgets "$K" "$W chat=on" "$KOFF" "$WOFF" >/dev/null

HTTPA=$(hn_free_port) ADMINA=$(hn_free_port) HTTPB=$(hn_free_port) ADMINB=$(hn_free_port)
export HERENOW_UDP_LISTEN= HERENOW_THREADS=2 HERENOW_RATE_LIMIT=0 HERENOW_WIDGET_REFRESH_MS=200
export HERENOW_REDIS_TIMEOUT_MS=1000 HERENOW_REDIS_CONNECT_TIMEOUT_MS=300 HERENOW_CHAT_PING_S=1
export HERENOW_SPOOL_DIR= HERENOW_CHAT_MSG_PER_MIN=1   # burst 10, then one a minute: the flood below
hn_spawn colA env HERENOW_HTTP_LISTEN=127.0.0.1:$HTTPA HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMINA \
    HERENOW_CHAT_MAX_CONNS=3 "$HN_BIN/herenow-collector"
hn_spawn colB env HERENOW_HTTP_LISTEN=127.0.0.1:$HTTPB HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMINB \
    "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector A ready" curl -fsS "http://127.0.0.1:$ADMINA/readyz"
hn_wait_for 10 "collector B ready" curl -fsS "http://127.0.0.1:$ADMINB/readyz"
A="http://127.0.0.1:$HTTPA" B="http://127.0.0.1:$HTTPB"

metric() {
    curl -fsS "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { v = $2 } END { print v + 0 }'
}
# sse NAME URL [CURL ARGS...]: a downlink read by curl into $HN_TMP/NAME.log
sse() { hn_spawn "$1" curl -sN "${@:3}" "$2" && hn_oa_sse "$HN_TMP/$1.log" "$2"; }
ready() { grep -q '^: ready' "$HN_TMP/$1.log"; }
ids() { grep '^id: ' "$HN_TMP/$1.log" | cut -c5- || true; }
texts() { grep '^data: ' "$HN_TMP/$1.log" | grep -v '^data: {"last"' | sed 's/.*"text":"\([^"]*\)".*/\1/' || true; }
nevents() { grep -c '^id: ' "$HN_TMP/$1.log" || true; }
has_n() { [ "$(nevents "$1")" -ge "$2" ]; }
stop_sse() { local v="HN_PID_$1"; kill -TERM "${!v}" 2>/dev/null || true; wait "${!v}" 2>/dev/null || true; }
# xadd SID EVENT TEXT: an entry as the api writes it; prints its id
xadd() {
    hn_redis XADD "hn:chat:{$W}" '*' s "$1" e "$2" c 0b8e2d6c-5a39-4f55-9d2b-9e0f3c1f7a11 \
        m "$(cat /proc/sys/kernel/random/uuid)" a "Ana" x "$3" t "$(($(date +%s%N) / 1000000))"
}
status() { hn_oa_curl "$HN_TMP/body" "$@"; }  # (checked against docs/openapi.yaml: hn_oa_curl)

# ---- refusals --------------------------------------------------------------------------------
SID1=sessionone01 SID2=sessiontwo02
hn_assert_eq "chat-off widget: 404" 404 "$(status "$B/v?k=$KOFF&s=$SID1")"
hn_assert_eq "chat-off widget: chat_disabled" '{"error":"chat_disabled"}' "$(cat "$HN_TMP/body")"
hn_assert_eq "unknown widget: 404" 404 "$(status "$B/v?k=nosuchkey&s=$SID1")"
hn_assert_eq "no key: 404" 404 "$(status "$B/v?s=$SID1")"
hn_assert_eq "bad session id (too short): 400" 400 "$(status "$B/v?k=$K&s=short")"
hn_assert_eq "bad session id: bad_session" '{"error":"bad_session"}' "$(cat "$HN_TMP/body")"
hn_assert_eq "bad session id (characters): 400" 400 "$(status "$B/v?k=$K&s=sess%20ion%3Cx%3E")"
hn_assert_eq "bad last id: 400" 400 "$(status "$B/v?k=$K&s=$SID1&last=12x-1")"
hn_assert_eq "bad Last-Event-ID: 400" 400 "$(status -H 'Last-Event-ID: 1-2-3' "$B/v?k=$K&s=$SID1")"
hn_assert_eq "POST /v: 405" 405 "$(status -X POST "$B/v?k=$K&s=$SID1")"
hn_assert_eq "refusals counted" 2 "$(metric "$ADMINB" 'herenow_chat_downlinks_refused_total{reason="chat_disabled"}' | awk '{ print ($1 >= 2) ? 2 : $1 }')"

# the answer's headers (curl's own time limit ends the stream)
curl -s -D "$HN_TMP/hdrs" -o /dev/null --max-time 1 "$B/v?k=$K&s=$SID1" || true
hdr() { awk -v h="$1" 'BEGIN { IGNORECASE = 1 } tolower($1) == tolower(h) ":" { sub(/^[^:]*: */, ""); sub(/\r$/, ""); print }' "$HN_TMP/hdrs"; }
hn_assert_eq "downlink: 200" "HTTP/1.1 200 OK" "$(head -1 "$HN_TMP/hdrs" | tr -d '\r')"
hn_assert_eq "downlink: text/event-stream" "text/event-stream; charset=utf-8" "$(hdr Content-Type)"
hn_assert_eq "downlink: no-store" "no-store" "$(hdr Cache-Control)"
hn_assert_eq "downlink: CORS *" "*" "$(hdr Access-Control-Allow-Origin)"

# ---- delivery: the session's entries on the collector it is connected to --------------------
sse b1 "$B/v?k=$K&s=$SID1"
sse b2 "$B/v?k=$K&s=$SID2"
sse a1 "$A/v?k=$K&s=$SID1"
for s in b1 b2 a1; do hn_wait_for 10 "$s: downlink started" ready "$s"; done
E1=$(xadd "$SID1" invite 'Hello "there" \ back
second line <b>é</b>')
E2=$(xadd "$SID2" message "for two")
hn_wait_for 5 "B: the entry reaches session one's downlink" has_n b1 1
hn_wait_for 5 "A: the entry reaches session one's downlink on the other collector" has_n a1 1
hn_wait_for 5 "B: session two gets its own entry" has_n b2 1
hn_assert_eq "session one got its entry only" "$E1" "$(ids b1)"
hn_assert_eq "session one on A: the same entry" "$E1" "$(ids a1)"
hn_assert_eq "session two got its entry only" "$E2" "$(ids b2)"
hn_assert_eq "event: invite" "event: invite" "$(grep '^event: ' "$HN_TMP/b1.log" | grep -v '^event: ready$')"
data=$(grep '^data: ' "$HN_TMP/b1.log" | grep -v '^data: {"last"')
want_data='data: {"id":"<uuid>","conversation":"0b8e2d6c-5a39-4f55-9d2b-9e0f3c1f7a11","agent":"Ana","text":"Hello \"there\" \\ back\u000asecond line <b>é</b>","time":<ms>}'
hn_assert_eq "data: JSON with the fields of docs/CHAT.md, the text escaped" "$want_data" \
    "$(sed -E 's/"id":"[0-9a-f-]{36}"/"id":"<uuid>"/; s/"time":[0-9]{13}}/"time":<ms>}/' <<<"$data")"

# five in a row keep their order
want=""
for i in 1 2 3 4 5; do
    xadd "$SID1" message "m$i" >/dev/null
    [ "$i" = 3 ] && xadd "$SID2" message "other" >/dev/null
    want+="m$i "
done
hn_wait_for 5 "B: five more entries" has_n b1 6
hn_assert_eq "B: the five in order" "$want" "$(texts b1 | tail -5 | tr '\n' ' ')"
hn_wait_for 5 "A: five more entries" has_n a1 6
hn_assert_eq "A: the five in order" "$want" "$(texts a1 | tail -5 | tr '\n' ' ')"
hn_assert_eq "B: session two: its two entries" 2 "$(nevents b2)"

# ---- resume ---------------------------------------------------------------------------------
LAST=$(ids b1 | tail -1)
stop_sse b1
hn_wait_for 5 "B: the closed downlink is freed" \
    bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMINB/metrics | awk '\$1 == \"herenow_chat_downlinks_open\" { print \$2 }') = 1 ]"
R1=$(xadd "$SID1" message r1)
xadd "$SID2" message "not yours" >/dev/null
R2=$(xadd "$SID1" message r2)
R3=$(xadd "$SID1" close "")
sse b1h "$B/v?k=$K&s=$SID1" -H "Last-Event-ID: $LAST"
sse b1q "$B/v?k=$K&s=$SID1&last=$LAST"
sse b1n "$B/v?k=$K&s=$SID1"
sse b1s "$B/v?k=$K&s=$SID1&since=${R1%%-*}"
hn_wait_for 5 "Last-Event-ID: the three missed entries" has_n b1h 3
hn_wait_for 5 "last=: the three missed entries" has_n b1q 3
hn_wait_for 5 "no id: started" ready b1n
hn_assert_eq "Last-Event-ID: exactly the three, in order" "$R1 $R2 $R3" "$(ids b1h | tr '\n' ' ' | sed 's/ $//')"
hn_assert_eq "last=: exactly the three, in order" "$R1 $R2 $R3" "$(ids b1q | tr '\n' ' ' | sed 's/ $//')"
hn_assert_eq "the close event" "event: close" "$(grep '^event: ' "$HN_TMP/b1h.log" | grep -v '^event: ready$' | tail -1)"
hn_assert_eq "without an id: nothing from before" 0 "$(nevents b1n)"
hn_wait_for 5 "since=: the session's three since the page began" has_n b1s 3
hn_assert_eq "since= (the ms of the first of them): exactly the three, in order" "$R1 $R2 $R3" "$(ids b1s | tr '\n' ' ' | sed 's/ $//')"
hn_assert_eq "since=x: 400 bad_since" 400 "$(hn_oa_curl "$HN_TMP/discard" "$B/v?k=$K&s=$SID1&since=x")"
stop_sse b1s
L1=$(xadd "$SID1" message live1)
for s in b1h b1q b1n; do hn_wait_for 5 "$s: the live entry after the backfill" has_n "$s" 1; done
hn_wait_for 5 "b1h: four" has_n b1h 4
hn_assert_eq "Last-Event-ID: the live one once, after the three" "$R1 $R2 $R3 $L1" "$(ids b1h | tr '\n' ' ' | sed 's/ $//')"
hn_assert_eq "without an id: the live one only" "$L1" "$(ids b1n)"
# a resume from before a long backfill (more than one XRANGE page: 200)
FIRST=$(hn_redis XRANGE "hn:chat:{$W}" - + COUNT 1 | head -1)
for i in $(seq 1 450); do echo "XADD hn:chat:{$W} * s $SID2 e message c x m y a Ana x bulk$i t 1"; done | hn_redis >/dev/null
sse b2r "$B/v?k=$K&s=$SID2&last=$FIRST"
hn_wait_for 10 "a resume over 450 entries of the session: all of them" has_n b2r 453
hn_assert_eq "... each once" "$(ids b2r | wc -l)" "$(ids b2r | sort -u | wc -l)"
hn_assert_eq "... in stream order" "$(ids b2r | tr '\n' ' ')" "$(ids b2r | sort -t- -k1,1n -k2,2n | tr '\n' ' ')"
stop_sse b2r

# ---- the cap and closed clients (A: HERENOW_CHAT_MAX_CONNS=3) ----------------------------------
sse a2 "$A/v?k=$K&s=$SID2"
sse a3 "$A/v?k=$K&s=sessionthree3"
hn_wait_for 5 "A: three open" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMINA/metrics | awk '\$1 == \"herenow_chat_downlinks_open\" { print \$2 }') = 3 ]"
hn_assert_eq "A: a fourth downlink: 503" 503 "$(status "$A/v?k=$K&s=sessionfour4")"
hn_assert_eq "A: too_many_downlinks" '{"error":"too_many_downlinks"}' "$(cat "$HN_TMP/body")"
stop_sse a3
hn_wait_for 5 "A: a closed client is freed" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMINA/metrics | awk '\$1 == \"herenow_chat_downlinks_open\" { print \$2 }') = 2 ]"
sse a4 "$A/v?k=$K&s=sessionfour4"
hn_wait_for 5 "A: room again for a new downlink" ready a4
hn_wait_for 5 "pings on idle downlinks" grep -q '^: ping' "$HN_TMP/a4.log"

# ---- Redis restarted under open downlinks ------------------------------------------------------
rec_b=$(metric "$ADMINB" herenow_chat_tail_reconnects_total)
n_b2=$(nevents b2) n_a1=$(nevents a1)
"$HN_ROOT/scripts/redis.sh" stop "$REDIS_DIR" >/dev/null
hn_wait_for 10 "B: the chat tail notices Redis gone" \
    bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMINB/metrics | awk '\$1 == \"herenow_chat_tail_connections_up\" { print \$2 }') = 0 ]"
"$HN_ROOT/scripts/redis.sh" start --fast "$REDIS_DIR" "$HN_REDIS_PORT" >/dev/null
hn_redis HSET hn:widgets "$K" "$W chat=on" "$KOFF" "$WOFF" >/dev/null
# A worker holds its two connections only while it has downlinks: one that
# has none left (b1's, stopped above) does not connect again, so the gauge
# comes back to at least 2 (b2's worker), not to the count before (which may
# include an idle worker's old connections).
hn_wait_for 10 "B: the chat tail is back" \
    bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMINB/metrics | awk '\$1 == \"herenow_chat_tail_connections_up\" { print \$2 }') -ge 2 ]"
hn_assert_cmd "B: reconnects counted" test "$(metric "$ADMINB" herenow_chat_tail_reconnects_total)" -gt "$rec_b"
P1=$(xadd "$SID2" message after1)
P2=$(xadd "$SID1" message after2)
hn_wait_for 10 "B: an entry added after the restart arrives" has_n b2 $((n_b2 + 1))
hn_wait_for 10 "A: an entry added after the restart arrives" has_n a1 $((n_a1 + 1))
hn_assert_eq "B: the open downlink got it once" "$P1" "$(ids b2 | tail -1)"
hn_assert_eq "A: the open downlink got it once" "$P2" "$(ids a1 | tail -1)"
for s in b2 a1 b1h b1q b1n; do
    hn_assert_eq "$s: no event twice" "$(ids "$s" | wc -l)" "$(ids "$s" | sort -u | wc -l)"
done

# ---- beacons name the chat script; the chat script -----------------------------------------
UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
mp() { local hex; hex=$("$HN_BIN/herenowctl" send --dry-run "$@" | sed -n 2p); printf '%b' "$(sed 's/../\\x&/g' <<<"$hex")"; }
mp --key "$K" --session "$SID1" --url https://example.com/a >"$HN_TMP/pv_on"
mp --key "$KOFF" --session "$SID1" --url https://example.com/a >"$HN_TMP/pv_off"
hn_assert_eq "beacon of a chat widget: 200" 200 "$(status -A "$UA" --data-binary "@$HN_TMP/pv_on" "$B/b")"
hn_assert_eq "... with the chat script's path" '{"chat":"/hc.js"}' "$(cat "$HN_TMP/body")"
curl -s -o /dev/null -D "$HN_TMP/hdrs" -A "$UA" -H 'Origin: https://example.com' --data-binary "@$HN_TMP/pv_on" "$B/b"
hn_assert_eq "... readable by the page (CORS)" "*" "$(hdr Access-Control-Allow-Origin)"
hn_assert_eq "beacon of a widget without chat: 204" 204 "$(status -A "$UA" --data-binary "@$HN_TMP/pv_off" "$B/b")"

# ---- a visitor flooding chat messages --------------------------------------------------------
# One session sends 30 messages on one connection (one worker thread): the
# first HERENOW_CHAT_MSG_BURST (10) pass, the rest are refused 429 and
# counted as chat_rate_limited; the session's other beacons and another
# session behind the same address still pass.
CV=0b8e2d6c-5a39-4f55-9d2b-9e0f3c1f7a11 FLOOD=sessFLOOD0001
mp --key "$K" --type msg --session "$FLOOD" --text 'buy now' --conversation "$CV" >"$HN_TMP/msg_flood"
mp --key "$K" --type msg --session sessQUIET0001 --text 'hello' --conversation "$CV" >"$HN_TMP/msg_quiet"
mp --key "$K" --session "$FLOOD" --seq 2 --url https://example.com/b >"$HN_TMP/pv_flood"
lim0=$(metric "$ADMINB" 'herenow_beacons_dropped_total{transport="http",reason="chat_rate_limited"}')
urls=()
for _ in $(seq 29); do urls+=(-o /dev/null "$B/b"); done
urls+=(-o "$HN_TMP/flood_last" "$B/b")
curl -s -A "$UA" --data-binary "@$HN_TMP/msg_flood" -w '%{http_code}\n' "${urls[@]}" >"$HN_TMP/flood"
hn_assert_eq "flood: the first 10 messages pass (200)" 10 "$(grep -c '^200$' "$HN_TMP/flood")"
hn_assert_eq "flood: the other 20 are refused 429" 20 "$(grep -c '^429$' "$HN_TMP/flood")"
hn_assert_eq "flood: refused in order (10 × 200, then 429s)" "$(printf '200\n%.0s' $(seq 10); printf '429\n%.0s' $(seq 20))" "$(cat "$HN_TMP/flood")"
hn_assert_eq "flood: counted as chat_rate_limited" $((lim0 + 20)) \
    "$(metric "$ADMINB" 'herenow_beacons_dropped_total{transport="http",reason="chat_rate_limited"}')"
hn_assert_eq "flood: 10 messages reached the session" 10 "$(hn_redis HGET "hn:sess:{$W}:$FLOOD" messages_sent)"
hn_assert_cmd "flood: a 429 says why" grep -q 'chat messages too fast' "$HN_TMP/flood_last"
hn_assert_eq "flood: the session's page views still pass" 200 "$(status -A "$UA" --data-binary "@$HN_TMP/pv_flood" "$B/b")"
hn_assert_eq "flood: another session on the same address still chats" 200 "$(status -A "$UA" --data-binary "@$HN_TMP/msg_quiet" "$B/b")"

curl -s -D "$HN_TMP/hdrs" -o "$HN_TMP/hc.gz" -H 'Accept-Encoding: gzip' "$B/hc.js"
hn_assert_eq "/hc.js: gzip" gzip "$(hdr Content-Encoding)"
ETAG=$(hdr ETag)
hn_assert_cmd "/hc.js: an ETag" test -n "$ETAG"
sed 's#@HN_B@#/b#g;s#@HN_P@#/p.gif#g;s#@HN_V@#/v#g' "$HN_ROOT/widget/herenow-chat.min.js" >"$HN_TMP/hc.want"
hn_assert_cmd "/hc.js: widget/herenow-chat.min.js with the paths in" \
    bash -c "gzip -dc '$HN_TMP/hc.gz' | cmp - '$HN_TMP/hc.want'"
hn_assert_eq "/hc.js: 304 on If-None-Match" 304 "$(status -H 'Accept-Encoding: gzip' -H "If-None-Match: $ETAG" "$B/hc.js")"
curl -s -o "$HN_TMP/hc.plain" "$B/hc.js"
hn_assert_cmd "/hc.js without gzip: the same script" cmp "$HN_TMP/hc.plain" "$HN_TMP/hc.want"

# ---- metrics ---------------------------------------------------------------------------------
hn_promtool "A: /metrics passes promtool" "http://127.0.0.1:$ADMINA/metrics"
hn_promtool "B: /metrics passes promtool" "http://127.0.0.1:$ADMINB/metrics"
hn_assert_cmd "B: events counted" test "$(metric "$ADMINB" herenow_chat_events_sent_total)" -ge 10
hn_assert_eq "A: the refusal over the cap counted" 1 "$(metric "$ADMINA" 'herenow_chat_downlinks_refused_total{reason="full"}')"

for s in b2 b1h b1q b1n; do stop_sse "$s"; done
hn_wait_for 5 "B: every downlink freed" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMINB/metrics | awk '\$1 == \"herenow_chat_downlinks_open\" { print \$2 }') = 0 ]"
hn_assert_cmd "A alive" hn_alive "$HN_PID_colA"
hn_assert_cmd "B alive" hn_alive "$HN_PID_colB"
rc=0; hn_stop "$HN_PID_colA" || rc=$?
hn_assert_eq "A: stops cleanly with downlinks open" 0 "$rc"

# ---- a resume starts no further back than the resume window ---------------------------------
# An entry from 1970 on a fresh widget's stream: `last=0-1` must not reach it
# (a made-up last id once made the worker read a widget's whole stream).
hn_redis HSET hn:widgets chatkey0044 "44 chat=on" >/dev/null
hn_redis XADD "hn:chat:{44}" 1000-0 s sessold00001 e message c 0b8e2d6c-5a39-4f55-9d2b-9e0f3c1f7a11 \
    m 1b8e2d6c-5a39-4f55-9d2b-9e0f3c1f7a11 a Old x ancient t 1000 >/dev/null
w44_known() { [ "$(hn_oa_curl "$HN_TMP/discard" -m 1 "$B/v?k=chatkey0044&s=sessold00001" || true)" = 200 ]; }
hn_wait_for 15 "B knows the new widget" w44_known
sse old "$B/v?k=chatkey0044&s=sessold00001&last=0-1"
hn_wait_for 5 "the resumed downlink is live" ready old
hn_assert_eq "… and did not reach back to 1970" 0 "$(grep -c ancient "$HN_TMP/old.log" || true)"
stop_sse old

# ---- a downlink's connection and the HTTP guard -------------------------------------------
# A client that sends a byte after ': ready' and then closes once left the
# guard's record of the connection pointing at freed memory, and the guard's
# sweep freed it a second time (found in review; ASan: use after free). C has
# a 200 ms request timeout; after that client, a second one sends half a
# request: the sweep must time out exactly that one, and C must live on.
HTTPC=$(hn_free_port) ADMINC=$(hn_free_port)
hn_spawn colC env HERENOW_HTTP_LISTEN=127.0.0.1:$HTTPC HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMINC \
    HERENOW_HTTP_REQUEST_TIMEOUT_MS=200 "$HN_BIN/herenow-collector"
hn_wait_for 10 "C ready" curl -fsS "http://127.0.0.1:$ADMINC/readyz"
python3 - "$HTTPC" "$K" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /v?k=" + sys.argv[2].encode() + b"&s=guardsession01 HTTP/1.1\r\nHost: x\r\n\r\n")
buf = b""
while b": ready" not in buf:
    buf += s.recv(4096)
s.sendall(b"X")
s.close()
PY
hn_wait_for 5 "C: the downlink is freed" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMINC/metrics | awk '\$1 == \"herenow_chat_downlinks_open\" { print \$2 }') = 0 ]"
t0=$(metric "$ADMINC" herenow_http_request_timeouts_total)
exec 7<>/dev/tcp/127.0.0.1/"$HTTPC"
printf 'GET /h.js HTTP/1.1\r\nHost: x\r\n' >&7
hn_wait_for 5 "C: the half request timed out" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMINC/metrics | awk '\$1 == \"herenow_http_request_timeouts_total\" { print \$2 }') -ge $((t0 + 1)) ]"
exec 7>&-
hn_assert_eq "C: the sweep timed out only the half request (not the closed downlink again)" $((t0 + 1)) \
    "$(metric "$ADMINC" herenow_http_request_timeouts_total)"
hn_assert_cmd "C alive" hn_alive "$HN_PID_colC"
hn_assert_cmd "C still answers" curl -fsS "http://127.0.0.1:$ADMINC/livez"
hn_done
