#!/usr/bin/env bash
# test_webhooks.sh: signed webhook delivery (docs/RULES.md §4) against real
# PostgreSQL, Redis, collector and two api processes, with a receiver on
# loopback (tests/lib/webhook-receiver.mjs) that checks every signature and
# timestamp: a delivery arrives signed, once; a receiver answering 500 gets
# HERENOW_WEBHOOK_ATTEMPTS attempts with growing gaps, the row is failed and
# after HERENOW_WEBHOOK_DISABLE_AFTER failed deliveries the rule is disabled
# with its reason; a 302 is a failure (not followed); HTTPS verifies the
# receiver's certificate (HERENOW_WEBHOOK_CA_FILE trusted, a self-signed one not); a receiver that never
# answers costs one slot until the timeout while other deliveries, beacons
# and the live stream go on; rows are delivered once with two api processes;
# the lifecycle chat events (chat.started, chat.message both ways,
# chat.closed) of a chat; the webhook routes' auth matrix, bad input and
# delivery logs.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_need jq jq
hn_need node nodejs

CTL="$HN_BIN/herenowctl"
hn_start_stores
read -r W1 K1 <<<"$(hn_widget_add --name "Hooks one" --domain example.com --chat on)"
read -r W2 K2 <<<"$(hn_widget_add --name "Hooks two" --domain example.org)"
TOK=$("$CTL" token create --all --name "Ann Agent" 2>/dev/null)
TOK1=$("$CTL" token create --widget "$W1" 2>/dev/null)
TOK2=$("$CTL" token create --widget "$W2" 2>/dev/null)

# --- the receiver ---------------------------------------------------------------------------
RLOG=$HN_TMP/received.jsonl SECRETS=$HN_TMP/secrets
: >"$RLOG"
echo "rule-secret-1" >"$SECRETS"
hn_spawn receiver node "$HN_ROOT/tests/lib/webhook-receiver.mjs" "$HN_TMP/rport" "$RLOG" "$SECRETS"
hn_wait_for 10 "receiver listening" test -s "$HN_TMP/rport"
RURL="http://127.0.0.1:$(cat "$HN_TMP/rport")"
# two HTTPS receivers: one with a certificate of a CA the senders trust
# (HERENOW_WEBHOOK_CA_FILE), one self-signed that nobody trusts
cert() {
    openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=$1" -addext "subjectAltName=IP:127.0.0.1" \
        -keyout "$HN_TMP/$1.key" -out "$HN_TMP/$1.pem" 2>/dev/null
}
cert trusted
cert untrusted
hn_spawn receiver_tls node "$HN_ROOT/tests/lib/webhook-receiver.mjs" "$HN_TMP/tport" "$RLOG" "$SECRETS" \
    "$HN_TMP/trusted.pem" "$HN_TMP/trusted.key"
hn_spawn receiver_bad node "$HN_ROOT/tests/lib/webhook-receiver.mjs" "$HN_TMP/bport" "$RLOG" "$SECRETS" \
    "$HN_TMP/untrusted.pem" "$HN_TMP/untrusted.key"
hn_wait_for 10 "TLS receivers listening" test -s "$HN_TMP/tport" -a -s "$HN_TMP/bport"
TURL="https://127.0.0.1:$(cat "$HN_TMP/tport")" BURL="https://127.0.0.1:$(cat "$HN_TMP/bport")"
export HERENOW_WEBHOOK_CA_FILE=$HN_TMP/trusted.pem

# received ID: the lines the receiver logged for delivery ID
received() { jq -c --arg id "$1" 'select(.delivery == $id)' "$RLOG"; }
nreceived() { received "$1" | wc -l; }
row() { hn_psql "SELECT $2 FROM webhook_deliveries WHERE id = $1"; }
state_is() { [ "$(row "$1" state)" = "$2" ]; }

# --- the processes ------------------------------------------------------------------------
UDP=$(hn_free_port) HTTP=$(hn_free_port) ADMIN=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP
export HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN HERENOW_THREADS=2 HERENOW_DRAIN_BLOCK_MS=100
export HERENOW_TOKEN_REFRESH_MS=200 HERENOW_CHAT_RATE_PER_MIN=600
export HERENOW_WEBHOOK_BACKOFF_MS=200 HERENOW_WEBHOOK_ATTEMPTS=3 HERENOW_WEBHOOK_DISABLE_AFTER=2
export HERENOW_WEBHOOK_TIMEOUT_MS=3000 HERENOW_WEBHOOK_SENDERS=2
hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_start_api
API1=$HN_API_URL PID1=$HN_PID_api
BASE="$API1/api/visitor-tracking"

# a rule with a webhook action; its secret is ours (the routes' are another engineer's)
RULE=$(hn_psql "INSERT INTO widget_rules (widget_id, name, definition, webhook_secret)
    VALUES ($W1, 'hook', '{\"conditions\": [], \"actions\": [{\"type\": \"webhook\", \"url\": \"$RURL/ok\"}]}',
    'rule-secret-1') RETURNING id" | sed -n 1p)
# enqueue EVENT PATH [RULE [BASE URL]]: an outbox row as the rules engine writes it, and the NOTIFY
enqueue() {
    hn_psql "WITH d AS (INSERT INTO webhook_deliveries (widget_id, rule_id, event, subject, url, body)
        VALUES ($W1, ${3:-$RULE}, '$1', 'sess$RANDOM', '${4:-$RURL}$2',
        '{\"event\": \"$1\", \"text\": \"caf\u00e9 <b>\"}') RETURNING id), n AS (SELECT pg_notify('herenow_webhooks', ''))
        SELECT id FROM d, n" | sed -n 1p
}

# ---- 1. a delivery arrives signed, once ----------------------------------------------------------
D1=$(enqueue rule.fired /ok)
hn_wait_for 10 "delivery $D1 delivered" state_is "$D1" delivered
hn_assert_eq "the receiver got it once" 1 "$(nreceived "$D1")"
hn_assert_eq "signed (v1 HMAC-SHA256 of timestamp.body), fresh timestamp" "true true" \
    "$(received "$D1" | jq -r '"\(.sig_ok) \(.ts_ok)"')"
hn_assert_eq "headers: event, user agent, content type" "rule.fired herenow-webhook/1 application/json" \
    "$(received "$D1" | jq -r '"\(.event) \(.ua) \(.type)"')"
hn_assert_eq "the body as stored, byte for byte" "$(row "$D1" body)" "$(received "$D1" | jq -r .body)"
hn_assert_eq "row: attempts 1, status 200, delivered_at set, no error" "1|200|t|t" \
    "$(row "$D1" "attempts, last_status, delivered_at IS NOT NULL, last_error IS NULL")"
hn_wait_for 5 "metrics: one rule.fired delivered" bash -c \
    "curl -fsS '$API1/metrics' | grep -qx 'herenow_webhook_deliveries_total{event=\"rule.fired\",outcome=\"delivered\"} 1'"
hn_assert_cmd "metrics: the latency histogram counted it" bash -c \
    "curl -fsS '$API1/metrics' | grep -qx 'herenow_webhook_latency_seconds_count 1'"
hn_promtool "the api's /metrics with the webhook families pass promtool" "$API1/metrics"

# HTTPS: the certificate is verified (against the system's store and HERENOW_WEBHOOK_CA_FILE)
T1=$(enqueue rule.fired /ok "$RULE" "$TURL")
hn_wait_for 10 "an https delivery to a trusted certificate: delivered" state_is "$T1" delivered
hn_assert_eq "... signed, once" "1 true" "$(nreceived "$T1") $(received "$T1" | jq -r .sig_ok)"
T2=$(enqueue rule.fired /ok "$RULE" "$BURL")
hn_wait_for 10 "an https delivery to an untrusted certificate: failed" state_is "$T2" failed
hn_assert_cmd "... the error names the certificate ($(row "$T2" last_error)), nothing reached the receiver" \
    test "$(nreceived "$T2")" = 0 -a -n "$(row "$T2" last_error | grep -i certificate)"
hn_psql "UPDATE widget_rules SET consecutive_failures = 0 WHERE id = $RULE" >/dev/null

# ---- 2. a receiver answering 500: attempts with growing gaps, failed, the rule disabled ------------
hn_psql "UPDATE widget_rules SET consecutive_failures = 0 WHERE id = $RULE" >/dev/null
F1=$(enqueue rule.fired /fail)
hn_wait_for 15 "delivery $F1 failed" state_is "$F1" failed
hn_assert_eq "HERENOW_WEBHOOK_ATTEMPTS (3) attempts reached the receiver" 3 "$(nreceived "$F1")"
hn_assert_eq "row: attempts 3, last_status 500, last_error HTTP 500" "3 500 HTTP 500" \
    "$(row "$F1" "attempts || ' ' || last_status || ' ' || last_error")"
gaps=$(received "$F1" | jq -s -r '[.[].at_ms] | "\(.[1] - .[0]) \(.[2] - .[1])"')
read -r g1 g2 <<<"$gaps"
# backoff 200 ms × 2^(n−1) ± 20 %: the first gap ≥ 160 ms, the second ≥ 320 ms (more
# than the first can be, 240 ms, but for the time a loaded machine adds: only the lower
# bounds are checked, which no load can break)
hn_assert_cmd "gaps grow: ${g1} ms then ${g2} ms (backoff 200 ms, doubled, ±20 %)" \
    test "$g1" -ge 160 -a "$g2" -ge 320
hn_assert_eq "one failed delivery: the rule still enabled, 1 failure counted" "t|1" \
    "$(hn_psql "SELECT enabled, consecutive_failures FROM widget_rules WHERE id = $RULE")"
V0=$(hn_psql "SELECT version FROM widget_rules WHERE id = $RULE")
F2=$(enqueue rule.fired /redirect)
hn_wait_for 15 "delivery $F2 (302) failed" state_is "$F2" failed
hn_assert_eq "a 302 is a failure, never followed (3 attempts at /redirect, none at /ok)" "3 0" \
    "$(received "$F2" | jq -s -r '"\([.[] | select(.path == "/redirect")] | length) \([.[] | select(.path == "/ok")] | length)"')"
hn_assert_eq "HERENOW_WEBHOOK_DISABLE_AFTER (2) failed deliveries in a row: the rule is disabled, with its reason" \
    "f|2|webhook failed 2 deliveries in a row (last: HTTP 302)|$((V0 + 1))" \
    "$(hn_psql "SELECT enabled, consecutive_failures, failing_reason, version FROM widget_rules WHERE id = $RULE")"
hn_assert_cmd "metrics: failed counted (the untrusted https one, the 500, the 302)" bash -c \
    "curl -fsS '$API1/metrics' | grep -qx 'herenow_webhook_deliveries_total{event=\"rule.fired\",outcome=\"failed\"} 3'"
D2=$(enqueue rule.fired /ok)
hn_wait_for 10 "a delivered one after the failures" state_is "$D2" delivered
hn_assert_eq "a delivered one resets the count" 0 \
    "$(hn_psql "SELECT consecutive_failures FROM widget_rules WHERE id = $RULE")"

# ---- 2b. host names: resolved by the sender, which refuses one that resolves to this api ------------
# (the check at creation reads no DNS: docs/RULES.md §2). localhost at the
# receiver's port is resolved and delivered; localhost at the api's port
# (a row written straight into the outbox, past the creation check) and
# this machine's own name, when /etc/hosts maps it to a loopback address
# (Debian's 127.0.1.1), at the api's port are refused at delivery.
hn_psql "UPDATE widget_rules SET enabled = true, consecutive_failures = 0 WHERE id = $RULE" >/dev/null
N1=$(enqueue rule.fired /ok "$RULE" "http://localhost:$(cat "$HN_TMP/rport")")
hn_wait_for 10 "a URL by name (localhost, the receiver's port): resolved, delivered" state_is "$N1" delivered
hn_assert_eq "... once, signed" "1 true" "$(nreceived "$N1") $(received "$N1" | jq -r .sig_ok)"
L1=$(enqueue rule.fired /x "$RULE" "http://localhost:${API1##*:}")
hn_wait_for 15 "a URL by name that resolves to this api (localhost at its port; the row written past the creation check): failed" \
    state_is "$L1" failed
err=$(row "$L1" last_error)
hn_assert_cmd "... the error says why ($err), nothing reached the api" grep -q 'resolves to this api' <<<"$err"
hn_psql "UPDATE widget_rules SET enabled = true, consecutive_failures = 0 WHERE id = $RULE" >/dev/null
SELF=$(hostname)
if getent hosts "$SELF" | awk '{ print $1 }' | grep -qE '^(127\.|::1$)'; then
    S1=$(enqueue rule.fired /x "$RULE" "http://$SELF:${API1##*:}")
    hn_wait_for 15 "a URL whose host ($SELF) resolves to this api: failed" state_is "$S1" failed
    err=$(row "$S1" last_error)
    hn_assert_cmd "... the error says why ($err)" grep -q 'resolves to this api' <<<"$err"
else
    echo "# skip: $SELF does not resolve to a loopback address here (getent hosts)"
fi
hn_psql "UPDATE widget_rules SET enabled = true, consecutive_failures = 0 WHERE id = $RULE" >/dev/null

# ---- 3. a receiver that never answers: one slot until the timeout, the rest goes on ---------------
H1=$(enqueue rule.fired /hang)
hn_wait_for 10 "the hanging receiver got $H1" bash -c "[ \"\$(jq -c 'select(.delivery == \"$H1\")' '$RLOG' | wc -l)\" -ge 1 ]"
t_hang=$(date +%s%3N)
D3=$(enqueue rule.fired /ok)
hn_wait_for 10 "another delivery goes through the other slot meanwhile" state_is "$D3" delivered
hn_assert_eq "... while the hanging one is still sending" sending "$(row "$H1" state)"
# beacons are taken, quickly, and the live stream keeps delivering
curl -sN -H "Authorization: Bearer $TOK" "$BASE/widgets/$W2/active-visitors/stream" >"$HN_TMP/live.sse" 2>/dev/null &
LIVE_PID=$!
HN_PIDS+=("$LIVE_PID")
hn_wait_for 10 "the live stream is open" grep -q '^event: snapshot' "$HN_TMP/live.sse"
hex=$("$CTL" send --dry-run --key "$K2" --session hooksLIVE001 --url https://example.org/live | sed -n 2p)
printf '%b' "$(sed 's/../\\x&/g' <<<"$hex")" >"$HN_TMP/pv.mp"
UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
bst=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -A "$UA" -H 'Origin: https://example.org' --data-binary "@$HN_TMP/pv.mp" "http://127.0.0.1:$HTTP/b")
hn_assert_cmd "POST /b during the hang: 204 within 1 s ($bst)" awk -v s="$bst" 'BEGIN { split(s, a, " "); exit !(a[1] == 204 && a[2] < 1) }'
hn_wait_for 10 "the live stream shows the new visitor during the hang" grep -q hooksLIVE001 "$HN_TMP/live.sse"
hn_assert_eq "... and the hanging delivery is still in flight" sending "$(row "$H1" state)"
hang_over() { [ "$(row "$H1" state)" != sending ] || [ "$(row "$H1" attempts)" -gt 1 ]; }
hn_wait_for 10 "the hanging attempt times out" hang_over
t_out=$(date +%s%3N)
hn_assert_eq "the attempt's error: the timeout" "timeout after 3000 ms" "$(row "$H1" last_error)"
hn_assert_cmd "it took about HERENOW_WEBHOOK_TIMEOUT_MS ($((t_out - t_hang)) ms from the hang, last_ms $(row "$H1" last_ms))" \
    test "$(row "$H1" last_ms)" -ge 2900 -a "$(row "$H1" last_ms)" -lt 6000
hn_psql "DELETE FROM webhook_deliveries WHERE id = $H1" >/dev/null
kill "$LIVE_PID" 2>/dev/null || true

# ---- 4. two api processes deliver each row once -------------------------------------------------
P2=$(hn_free_port)
hn_spawn api2 env HERENOW_API_LISTEN=127.0.0.1:$P2 HERENOW_DRAIN=off "$HN_BIN/herenow-api"
API2=http://127.0.0.1:$P2
hn_wait_for 10 "the second api answers" curl -fsS "$API2/livez"
hn_psql "UPDATE widget_rules SET enabled = true, consecutive_failures = 0 WHERE id = $RULE" >/dev/null
: >"$RLOG"
hn_psql "WITH d AS (INSERT INTO webhook_deliveries (widget_id, rule_id, event, subject, url, body)
    SELECT $W1, $RULE, 'rule.fired', 'two' || i, '$RURL/slow-ok', '{\"n\": ' || i || '}'
    FROM generate_series(1, 24) i RETURNING id) SELECT count(*), pg_notify('herenow_webhooks', '') FROM d" >/dev/null
all_done() { [ "$(hn_psql "SELECT count(*) FROM webhook_deliveries WHERE subject LIKE 'two%' AND state = 'delivered'")" = 24 ]; }
hn_wait_for 30 "24 deliveries delivered by two processes" all_done
hn_assert_eq "the receiver got 24 requests for 24 distinct deliveries" "24 24" \
    "$(jq -s -r '"\(length) \([.[].delivery] | unique | length)"' "$RLOG")"
hn_assert_eq "each at its first attempt" 24 \
    "$(hn_psql "SELECT count(*) FROM webhook_deliveries WHERE subject LIKE 'two%' AND attempts = 1")"
delivered_by() { curl -fsS "$1/metrics" | awk '$1 == "herenow_webhook_deliveries_total{event=\"rule.fired\",outcome=\"delivered\"}" { print $2 }'; }
n1=$(delivered_by "$API1") n2=$(delivered_by "$API2")
hn_assert_cmd "both processes delivered some (api1 $n1, api2 $n2 of 24 + 5 earlier)" test "$n2" -gt 0 -a "$n1" -gt 5
hn_assert_eq "... and together each once" 29 "$((n1 + n2))"

# ---- 5. the webhook routes: auth matrix, bad input, the delivery logs -------------------------------
BODY=$HN_TMP/body
# req METHOD PATH [TOKEN] [BODY]: status in ST, answer in $BODY (checked against docs/openapi.yaml)
req() {
    local data=()
    [ $# -ge 4 ] && data=(--data-binary "$4" -H "Content-Type: application/json")
    hn_oa_req "$BODY" -X "$1" -H "Authorization: Bearer ${3:-$TOK}" "${data[@]}" "$BASE$2"
    ST=$HN_ST
}
j() { jq -r "$1" "$BODY"; }
HOOK="/widgets/$W1/webhooks"
req GET "$HOOK"
hn_assert_eq "GET before any PUT: 404" 404 "$ST"
for c in "no token|GET|$HOOK|" "no token|PUT|$HOOK|" "no token|GET|$HOOK/deliveries|" \
         "no token|GET|/widgets/$W1/rules/$RULE/deliveries|"; do
    IFS='|' read -r what m path _ <<<"$c"
    hn_oa_req "$BODY" -X "$m" "$BASE$path"
    hn_assert_eq "$m $path without a token: 401" 401 "$HN_ST"
done
for m in GET PUT DELETE; do
    req "$m" "$HOOK" "$TOK2" '{"url": "https://x.example/", "events": []}'
    hn_assert_eq "$m $HOOK with another widget's token: 403" 403 "$ST"
done
req GET "$HOOK/deliveries" "$TOK2"
hn_assert_eq "deliveries with another widget's token: 403" 403 "$ST"
req GET "/widgets/$W1/rules/$RULE/deliveries" "$TOK2"
hn_assert_eq "rule deliveries with another widget's token: 403" 403 "$ST"
req GET "/widgets/0/webhooks"
hn_assert_eq "widget 0: 400" 400 "$ST"
req PUT "/widgets/999/webhooks" "$TOK" "{\"url\": \"$RURL/ok\", \"events\": []}"
hn_assert_eq "PUT for a widget that does not exist: 404" 404 "$ST"
bad_put() {
    req PUT "$HOOK" "$TOK1" "$2"
    hn_assert_eq "PUT $1: 400 with a reason" "400 $3" "$ST $(j .error | cut -c1-${#3})"
}
bad_put "not JSON" '{"url": ' "body: want a JSON object"
bad_put "an array" '[1]' "body: want a JSON object"
bad_put "without url" '{"events": []}' "url: required"
bad_put "without events" "{\"url\": \"$RURL/ok\"}" "events: required"
bad_put "an unknown event" "{\"url\": \"$RURL/ok\", \"events\": [\"chat.started\", \"rule.fired\"]}" "events: each one of"
bad_put "events not an array" "{\"url\": \"$RURL/ok\", \"events\": \"chat.started\"}" "events: want an array"
bad_put "enabled not a boolean" "{\"url\": \"$RURL/ok\", \"events\": [], \"enabled\": 1}" "enabled: want true or false"
bad_put "an unknown member" "{\"url\": \"$RURL/ok\", \"events\": [], \"secret\": \"x\"}" "unknown member"
bad_put "an ftp url" '{"url": "ftp://x.example/", "events": []}' "webhook url: only http:// and https://"
bad_put "user info" '{"url": "https://a:b@x.example/", "events": []}' "webhook url: user info"
bad_put "a fragment" '{"url": "https://x.example/#f", "events": []}' "webhook url: a fragment"
bad_put "no host" '{"url": "https:///path", "events": []}' "webhook url: no host"
bad_put "the api itself" "{\"url\": \"$API1/hook\", \"events\": []}" "webhook url: points at this api itself"
long=$(printf 'a%.0s' $(seq 2100))
bad_put "a url over 2048 bytes" "{\"url\": \"https://x.example/$long\", \"events\": []}" "webhook url: longer than 2048"
req PUT "$HOOK" "$TOK1" "{\"url\": \"$RURL/ok\", \"events\": [\"chat.started\", \"chat.message\", \"chat.closed\", \"chat.message\"]}"
hn_assert_eq "first PUT: 201, the secret shown, events as a set, enabled by default" \
    "201 40 chat.started,chat.message,chat.closed true" "$ST $(j '.secret | length') $(j '.events | join(",")') $(j .enabled)"
j .secret >>"$SECRETS"
SECRET=$(j .secret)
hn_assert_eq "the secret is stored for the senders" "$SECRET" "$(hn_psql "SELECT secret FROM widget_webhooks WHERE widget_id = $W1")"
req PUT "$HOOK" "$TOK1" "{\"url\": \"$RURL/ok?x=1\", \"events\": [\"chat.started\", \"chat.message\", \"chat.closed\"], \"enabled\": false}"
hn_assert_eq "second PUT: 200, no secret, the url and enabled changed" "200 null $RURL/ok?x=1 false" \
    "$ST $(j .secret) $(j .url) $(j .enabled)"
hn_assert_eq "... the secret kept" "$SECRET" "$(hn_psql "SELECT secret FROM widget_webhooks WHERE widget_id = $W1")"
req PUT "$HOOK" "$TOK1" "{\"url\": \"$RURL/ok\", \"events\": [\"chat.started\", \"chat.message\", \"chat.closed\"], \"enabled\": true}"
req GET "$HOOK" "$TOK1"
hn_assert_eq "GET: the webhook, no secret" "200 $RURL/ok true null" "$ST $(j .url) $(j .enabled) $(j .secret)"
req DELETE "/widgets/$W2/webhooks" "$TOK2"
hn_assert_eq "DELETE of none: 404" 404 "$ST"
req PUT "/widgets/$W2/webhooks" "$TOK2" "{\"url\": \"$RURL/ok\", \"events\": []}"
req DELETE "/widgets/$W2/webhooks" "$TOK2"
hn_assert_eq "DELETE: 204" 204 "$ST"
req GET "/widgets/$W2/webhooks" "$TOK2"
hn_assert_eq "... then GET: 404" 404 "$ST"

# the delivery logs
req GET "/widgets/$W1/rules/$RULE/deliveries?limit=200" "$TOK1"
hn_assert_eq "the untrusted https delivery in the log: failed, no status, the tls error" \
    "failed null tls: certificate verify failed" \
    "$(jq -r --argjson id "$T2" '.deliveries[] | select(.id == $id) | "\(.state) \(.last_status) \(.last_error)"' "$BODY")"
ALL=$(hn_psql "SELECT count(*) FROM webhook_deliveries WHERE widget_id = $W1")
req GET "$HOOK/deliveries?limit=10" "$TOK1"
hn_assert_eq "widget deliveries: a page of 10, newest first, a cursor" "200 10 true string" \
    "$ST $(j '.deliveries | length') $(j '[.deliveries[].id] == ([.deliveries[].id] | sort | reverse)') $(j '.next_cursor | type')"
seen=$(j '[.deliveries[].id] | join(" ")')
pages=1
while [ "$(j .next_cursor)" != null ] && [ $pages -lt 20 ]; do
    req GET "$HOOK/deliveries?limit=10&cursor=$(j .next_cursor)" "$TOK1"
    seen="$seen $(j '[.deliveries[].id] | join(" ")')"
    pages=$((pages + 1))
done
hn_assert_eq "the pages hold every delivery once" "$ALL $ALL" \
    "$(wc -w <<<"$seen") $(tr ' ' '\n' <<<"$seen" | sort -u | grep -c .)"
req GET "$HOOK/deliveries?limit=1" "$TOK1"
hn_assert_eq "a delivery: its fields" "$(hn_psql "SELECT id, event, rule_id, state FROM webhook_deliveries WHERE widget_id = $W1 ORDER BY id DESC LIMIT 1")" \
    "$(j '.deliveries[0] | "\(.id)|\(.event)|\(.rule_id)|\(.state)"')"
req GET "/widgets/$W1/rules/$RULE/deliveries?limit=200" "$TOK1"
hn_assert_eq "rule deliveries: only the rule's" \
    "$(hn_psql "SELECT count(*) FROM webhook_deliveries WHERE rule_id = $RULE") $RULE" \
    "$(j '.deliveries | length') $(j '[.deliveries[].rule_id] | unique | join(",")')"
req GET "/widgets/$W1/rules/$RULE/deliveries?limit=200" "$TOK1"
hn_assert_eq "failed delivery fields: state, attempts, status, error" "failed 3 500 HTTP 500 null" \
    "$(jq -r --argjson id "$F1" '.deliveries[] | select(.id == $id) | "\(.state) \(.attempts) \(.last_status) \(.last_error) \(.delivered_at)"' "$BODY" 2>/dev/null || echo "(404: $ST)")"
req GET "/widgets/$W1/rules/99999/deliveries" "$TOK1"
hn_assert_eq "deliveries of an unknown rule: 404" 404 "$ST"
req GET "/widgets/$W1/rules/x1/deliveries" "$TOK1"
hn_assert_eq "a ruleId not a number: 400" 400 "$ST"
req GET "$HOOK/deliveries?limit=0" "$TOK1"
hn_assert_eq "limit 0: 400" 400 "$ST"
req GET "$HOOK/deliveries?cursor=zzz" "$TOK1"
hn_assert_eq "a made-up cursor: 400" 400 "$ST"
req GET "$HOOK/deliveries?state=failed" "$TOK1"
hn_assert_eq "an unknown parameter: 400" 400 "$ST"

# ---- 6. lifecycle chat events: invite, a visitor's message (drain), an agent's, close ------------------
SID=sessHOOKCHAT1
send() { "$CTL" send --to "127.0.0.1:$UDP" --key "$K1" "$@" >/dev/null; }
send --type pv --session "$SID" --seq 1
hn_wait_for 10 "the chat visitor is live" bash -c "[ -n \"\$(redis-cli -p $HN_REDIS_PORT ZSCORE 'hn:live:{$W1}' $SID)\" ]"
: >"$RLOG"
hooks() { jq -c --arg e "$1" 'select(.event == $e)' "$RLOG"; }
nhooks() { hooks "$1" | wc -l; }
req POST "/sessions/$SID/chat" "$TOK1" '{"text": "Can I help?"}'
hn_assert_eq "invite: 201" 201 "$ST"
CID=$(j .id)
send --type msg --session "$SID" --seq 2 --conversation "$CID" --text 'visitor: <b>yes</b> 😀'
hn_wait_for 15 "chat.started arrives (the visitor answered: chatting)" bash -c "[ \"\$(jq -c 'select(.event == \"chat.started\")' '$RLOG' | wc -l)\" -ge 1 ]"
hn_wait_for 15 "chat.message of the visitor's message arrives" bash -c "[ \"\$(jq -c 'select(.event == \"chat.message\")' '$RLOG' | wc -l)\" -ge 1 ]"
VMID=$(hn_psql "SELECT id FROM widget_conversation_messages WHERE conversation_id = '$CID' AND sender = 'visitor'")
hn_assert_eq "chat.started: signed with the widget's secret, its conversation, chatting, the session" \
    "true true $CID chatting $SID" \
    "$(hooks chat.started | jq -r '.sig_ok as $s | .ts_ok as $t | .body | fromjson | "\($s) \($t) \(.conversation.id) \(.conversation.state) \(.session.session_id)"')"
hn_assert_eq "chat.message: the visitor's message, verbatim" \
    "true $VMID visitor visitor: <b>yes</b> 😀 $CID $W1" \
    "$(hooks chat.message | jq -r '.sig_ok as $s | .body | fromjson | "\($s) \(.message.id) \(.message.sender) \(.message.body) \(.conversation.id) \(.widget_id)"')"
hn_assert_eq "the body's id is the Herenow-Delivery header" "$(hooks chat.message | jq -r .delivery)" \
    "$(hooks chat.message | jq -r '.body | fromjson | .id')"
hn_assert_eq "an enqueue of the same message again (a redelivered drain batch) adds nothing" "t" \
    "$(hn_psql "SELECT hn_webhook_enqueue($W1, 'chat.message', '$VMID', '$SID', '$CID', '$VMID') IS NULL")"
req POST "/sessions/$SID/messages" "$TOK1" '{"text": "agent: hello"}'
hn_assert_eq "agent message: 201" 201 "$ST"
AMID=$(j .id)
hn_wait_for 10 "chat.message of the agent's message arrives" bash -c "[ \"\$(jq -c 'select(.event == \"chat.message\")' '$RLOG' | wc -l)\" -ge 2 ]"
hn_assert_eq "... the agent's, signed" "true agent agent: hello" \
    "$(hooks chat.message | jq -r --arg m "$AMID" '.sig_ok as $s | .body | fromjson | select(.message.id == $m) | "\($s) \(.message.sender) \(.message.body)"')"
req POST "/sessions/$SID/chat/close" "$TOK1"
hn_assert_eq "close: 200" 200 "$ST"
hn_wait_for 10 "chat.closed arrives" bash -c "[ \"\$(jq -c 'select(.event == \"chat.closed\")' '$RLOG' | wc -l)\" -ge 1 ]"
hn_assert_eq "chat.closed: signed, its conversation closed" "true $CID closed" \
    "$(hooks chat.closed | jq -r '.sig_ok as $s | .body | fromjson | "\($s) \(.conversation.id) \(.conversation.state)"')"
hn_assert_eq "each event once: started, 2 messages, closed" "1 2 1" \
    "$(nhooks chat.started) $(nhooks chat.message) $(nhooks chat.closed)"
hn_assert_eq "the outbox: one row per event, all delivered" "chat.closed:1:delivered chat.message:2:delivered chat.started:1:delivered" \
    "$(hn_psql "SELECT string_agg(event || ':' || n || ':' || s, ' ' ORDER BY event) FROM (SELECT event, count(*) n, string_agg(DISTINCT state, ',') s FROM webhook_deliveries WHERE rule_id IS NULL AND widget_id = $W1 GROUP BY event) x")"
# a widget whose webhook does not take chat events: nothing enqueued
req PUT "$HOOK" "$TOK1" "{\"url\": \"$RURL/ok\", \"events\": [\"session.started\"]}"
SID2=sessHOOKCHAT2
send --type pv --session "$SID2" --seq 1
hn_wait_for 10 "a second chat visitor is live" bash -c "[ -n \"\$(redis-cli -p $HN_REDIS_PORT ZSCORE 'hn:live:{$W1}' $SID2)\" ]"
req POST "/sessions/$SID2/chat" "$TOK1" '{"text": "Hi?"}'
req POST "/sessions/$SID2/messages" "$TOK1" '{"text": "still there?"}'
req POST "/sessions/$SID2/chat/close" "$TOK1"
# the event it takes comes (the rules engine enqueues session.started), once; the chat
# events it does not take never do (checked after it: they are written before it)
started2() { [ "$(hn_psql "SELECT count(*) FROM webhook_deliveries WHERE event = 'session.started' AND subject = '$SID2'")" = 1 ]; }
hn_wait_for 10 "the event asked for (session.started) is enqueued for the second visitor, once" started2
hn_assert_eq "events not asked for: no outbox row (chat.* of the second visitor)" 0 \
    "$(hn_psql "SELECT count(*) FROM webhook_deliveries WHERE event LIKE 'chat.%' AND body::jsonb->'session'->>'session_id' = '$SID2'")"

hn_done
