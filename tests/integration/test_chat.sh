#!/usr/bin/env bash
# test_chat.sh: Start Chat end to end in real browsers (docs/CHAT.md) — real
# Redis, PostgreSQL, herenow-collector (HTTP ingress and the /v downlink),
# herenow-api (drain on, the chat routes, the dashboard), Debian's headless
# Chromium through playwright-core for the visitor's page and the dashboard.
# Traffic goes to 127.0.0.1 only.
#
#   tests/browser/chat.mjs: invitation → bubble within 1 s, Reply, five
#   messages each way in order within 1 s, reload keeps the thread, a hidden
#   tab gets what was sent meanwhile once and in order, the agent ends the
#   chat, hostile text stays text, the stub tawk.to / Crisp pages take over
#   with preventDefault, an `expire` entry takes the bubble away (one of
#   another conversation does not), a chat-off widget never loads the chat script, and
#   on a busy site (8,000 live visitors, 1,000 beacons/s from hn-ssefeed)
#   Start chat invites the row the agent picked, ten times out of ten.
#   Then, here: the conversation and its messages in PostgreSQL.
#
# Screenshots go to $HN_ARTIFACTS (default build/artifacts/chat/).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_browser_prereqs
export HN_ARTIFACTS=${HN_ARTIFACTS:-$HN_ROOT/build/artifacts/chat}
mkdir -p "$HN_ARTIFACTS"
hn_assert_cmd "tests/browser: npm ci from package-lock.json (when needed)" bash "$BROWSER_DIR/deps.sh"

CTL="$HN_BIN/herenowctl"
hn_start_stores
widget() { hn_widget_add "$@"; }
read -r WID KEY <<<"$(widget --name "Chat shop" --domain 127.0.0.1 --chat on)"
read -r OFF_WID OFF_KEY <<<"$(widget --name "No chat" --domain 127.0.0.1)"
read -r BUSY_WID BUSY_KEY <<<"$(widget --name "Busy shop" --domain busy.example --chat on)"
TOK=$("$CTL" token create --all --name chat-test 2>/dev/null)

HTTP=$(hn_free_port)
UDP=$(hn_free_port)
ADMIN=$(hn_free_port)
export HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_THREADS=2 HERENOW_DRAIN=on HERENOW_DRAIN_BLOCK_MS=100
export HERENOW_API_WWW=$HN_ROOT/api/www
hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_start_api
COLLECTOR=http://127.0.0.1:$HTTP

# The busy site: 8,000 sessions seen at once, then 1,000 beacons/s while the
# browser test runs (hn-ssefeed, stopped by PID at the end, bounded by --duration anyway).
"$HN_BIN/hn-ssefeed" --to "127.0.0.1:$UDP" --key "$BUSY_KEY" --mode seed --sessions 8000 --seed 7 \
    >"$HN_TMP/feed-seed.out"
busy_live() { [ "$(hn_redis ZCARD "hn:live:{$BUSY_WID}")" -ge 8000 ]; }
hn_wait_for 20 "the busy widget has 8,000 live sessions" busy_live
hn_spawn feed "$HN_BIN/hn-ssefeed" --to "127.0.0.1:$UDP" --key "$BUSY_KEY" --mode feed --sessions 8000 --seed 7 \
    --q-start 2 --rate 1000 --duration 600

echo "# tests/browser/chat.mjs"
HN_API=$HN_API_URL HN_COLLECTOR=$COLLECTOR HN_TOKEN=$TOK HN_WIDGET_ID=$WID HN_WIDGET_KEY=$KEY \
    HN_OFF_KEY=$OFF_KEY HN_OFF_WIDGET_ID=$OFF_WID HN_BUSY_WIDGET_ID=$BUSY_WID hn_node chat chat.mjs
hn_stop "$HN_PID_feed" 10 || true

# ---- what PostgreSQL kept --------------------------------------------------------------
q() { hn_psql "$1"; }
msgs_written() { [ "$(q "SELECT count(*) FROM widget_conversation_messages m JOIN widget_conversations c ON c.id = m.conversation_id WHERE c.widget_id = $WID AND m.body LIKE 'Visitor message %'")" = 5 ]; }
hn_wait_for 15 "the visitor's five messages drained into PostgreSQL" msgs_written
hn_assert_eq "the first conversation: started by the agent, closed, both senders in order" \
    "agent|closed|agent:Hi! Can I help you with anything?,agent:Agent message 1,visitor:Visitor message 1,agent:Agent message 2,visitor:Visitor message 2,agent:Agent message 3,visitor:Visitor message 3,agent:Agent message 4,visitor:Visitor message 4,agent:Agent message 5,visitor:Visitor message 5,agent:Agent two here,visitor:Thanks both,agent:While away 1,agent:While away 2,agent:While away 3" \
    "$(q "SELECT c.started_by || '|' || c.state || '|' || string_agg(m.sender || ':' || m.body, ',' ORDER BY m.sent_at, m.seq) FROM widget_conversations c JOIN widget_conversation_messages m ON m.conversation_id = c.id WHERE c.widget_id = $WID AND EXISTS (SELECT 1 FROM widget_conversation_messages x WHERE x.conversation_id = c.id AND x.body = 'Agent message 1') GROUP BY c.id")"
hn_assert_eq "no message stored twice (the same text from the same sender in one conversation)" 0 \
    "$(q "SELECT count(*) FROM (SELECT conversation_id, sender, body FROM widget_conversation_messages GROUP BY 1, 2, 3 HAVING count(*) > 1) d")"

hn_done
