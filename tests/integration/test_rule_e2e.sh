#!/usr/bin/env bash
# test_rule_e2e.sh: issue 16's first test end to end — a visitor on /pricing
# for 30 s: the rule (url glob */pricing*, time_on_page ≥ 30; webhook, alert,
# invitation) fires once, with no beacon at that instant, though two
# herenow-api processes run the engine: the signed webhook at a receiver on
# loopback, the alert toast on the dashboard, the invitation on the visitor's
# page (tests/browser/rule_e2e.mjs, Debian's headless Chromium); the rows
# behind it (one firing, one delivery, one conversation started_by rule).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_browser_prereqs
hn_need jq jq
export HN_ARTIFACTS=${HN_ARTIFACTS:-$HN_ROOT/build/artifacts/rule-e2e}
mkdir -p "$HN_ARTIFACTS"
hn_assert_cmd "tests/browser: npm ci from package-lock.json (when needed)" bash "$BROWSER_DIR/deps.sh"

CTL="$HN_BIN/herenowctl"
hn_start_stores
read -r WID KEY <<<"$(hn_widget_add --name "Rule shop" --domain 127.0.0.1 --chat on)"
TOK=$("$CTL" token create --all --name "Ana" 2>/dev/null)

RLOG=$HN_TMP/received.jsonl SECRETS=$HN_TMP/secrets
: >"$RLOG"
: >"$SECRETS"
hn_spawn receiver node "$HN_ROOT/tests/lib/webhook-receiver.mjs" "$HN_TMP/rport" "$RLOG" "$SECRETS"
hn_wait_for 10 "receiver listening" test -s "$HN_TMP/rport"

RULE="Pricing, 30 s" INVITE="Questions about our <b>plans</b>?" ALERT="Someone reads pricing"
SECONDS_ON_PAGE=30
DEF=$(jq -cn --arg n "$RULE" --arg i "$INVITE" --arg a "$ALERT" --arg u "http://127.0.0.1:$(cat "$HN_TMP/rport")/ok" \
    --argjson s "$SECONDS_ON_PAGE" '{name: $n, conditions: [{field: "url", op: "glob", value: "*/pricing*"},
      {field: "time_on_page", op: "gte", value: $s}],
     actions: [{type: "webhook", url: $u}, {type: "alert", text: $a}, {type: "invite", text: $i, agent_name: "Ana"}]}')
RID=$("$CTL" rule add "$WID" <<<"$DEF" | tee "$HN_TMP/rule.out" | awk '/^id:/ { print $2 }')
awk '/^webhook_secret:/ { print $2 }' "$HN_TMP/rule.out" >"$SECRETS"
hn_assert_cmd "herenowctl rule add: the rule ($RID) and its secret" test -n "$RID" -a -s "$SECRETS"

HTTP=$(hn_free_port) UDP=$(hn_free_port) ADMIN=$(hn_free_port)
export HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_THREADS=2 HERENOW_DRAIN=on HERENOW_DRAIN_BLOCK_MS=100 HERENOW_API_WWW=$HN_ROOT/api/www
export HERENOW_RULES_RELOAD_MS=200
hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_start_api
PB=$(hn_free_port)
hn_spawn apib env HERENOW_API_LISTEN="127.0.0.1:$PB" HERENOW_DRAIN=off "$HN_BIN/herenow-api"
hn_wait_for 10 "the second api answers" curl -fsS "http://127.0.0.1:$PB/livez"
loaded() { curl -fsS "$1/metrics" | grep -qx 'herenow_rules_loaded 1'; }
hn_wait_for 10 "api A's engine loaded the rule" loaded "$HN_API_URL"
hn_wait_for 10 "api B's engine loaded the rule" loaded "http://127.0.0.1:$PB"

echo "# tests/browser/rule_e2e.mjs"
HN_API=$HN_API_URL HN_COLLECTOR=http://127.0.0.1:$HTTP HN_TOKEN=$TOK HN_WIDGET_ID=$WID HN_WIDGET_KEY=$KEY \
    HN_RECEIVER_LOG=$RLOG HN_RULE_NAME=$RULE HN_INVITE_TEXT=$INVITE HN_ALERT_TEXT=$ALERT \
    HN_RULE_SECONDS=$SECONDS_ON_PAGE hn_node rule_e2e rule_e2e.mjs

hn_assert_eq "rows: one firing, one delivered webhook, one conversation started by the rule" "1 1 1" \
    "$(hn_psql "SELECT (SELECT count(*) FROM rule_firings WHERE rule_id = $RID) || ' ' ||
        (SELECT count(*) FROM webhook_deliveries WHERE rule_id = $RID AND state = 'delivered') || ' ' ||
        (SELECT count(*) FROM widget_conversations WHERE widget_id = $WID AND started_by = 'rule')")"
hn_done
