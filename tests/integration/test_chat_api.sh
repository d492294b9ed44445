#!/usr/bin/env bash
# test_chat_api.sh: Start Chat's backend (docs/CHAT.md) against real Redis,
# PostgreSQL, collector and api: an agent invites a live visitor (201, the
# downlink entry in hn:chat:{w}, the rows in PostgreSQL), the 409s, messages
# both ways persisted in order (visitor ones through `herenowctl send
# --type msg` → collector → drain), hostile text stored verbatim and
# answered JSON-escaped, bad text (400 bad_text with a reason), a Redis
# failure inside the transaction (503, no row), the auth matrix of every
# route, pagination, the live list's chat fields, the rate limit. The visitor's
# downlink is held on a second collector (B, HTTP only): the api's invite
# reaches it there.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_need jq jq

CTL="$HN_BIN/herenowctl"
hn_start_stores
widget() { hn_widget_add --name "$1" --domain "$2" "${@:3}"; }
read -r W1 K1 <<<"$(widget "Chat one" example.com --chat on)"
read -r W2 K2 <<<"$(widget "Chat two" example.org)"
TOK=$("$CTL" token create --all --name "Ann Agent" 2>/dev/null)
TOK1=$("$CTL" token create --widget "$W1" 2>/dev/null)
TOK2=$("$CTL" token create --widget "$W2" 2>/dev/null)
TOKR=$("$CTL" token create --widget "$W1" 2>/dev/null)
"$CTL" token revoke "$(echo "$TOKR" | cut -d_ -f2)" >/dev/null

hn_assert_eq "hn:widgets carries chat=on" "$W1 chat=on" "$(hn_redis HGET hn:widgets "$K1")"
hn_assert_eq "hn:widgets: no chat word without chat" "$W2" "$(hn_redis HGET hn:widgets "$K2")"

UDP=$(hn_free_port)
ADMIN=$(hn_free_port)
API=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_API_LISTEN=127.0.0.1:$API HERENOW_THREADS=2 HERENOW_DRAIN_BLOCK_MS=100
export HERENOW_TOKEN_REFRESH_MS=200 HERENOW_CHAT_RATE_PER_MIN=60
export HERENOW_STREAM_KEEP_MS=3600000   # the whole stream stays: every record is delivered again below
hn_spawn collector "$HN_BIN/herenow-collector"
hn_spawn api "$HN_BIN/herenow-api"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_wait_for 10 "api ready" curl -fsS "http://127.0.0.1:$API/readyz"
# collector B: only HTTP, where the visitor's page holds its downlink (GET /v),
# while its beacons go to the first collector over UDP
HTTPB=$(hn_free_port) ADMINB=$(hn_free_port)
hn_spawn colB env HERENOW_UDP_LISTEN= HERENOW_HTTP_LISTEN=127.0.0.1:$HTTPB HERENOW_SPOOL_DIR= \
    HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMINB "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector B ready" curl -fsS "http://127.0.0.1:$ADMINB/readyz"

BASE="http://127.0.0.1:$API/api/visitor-tracking"
BODY="$HN_TMP/body"
# req METHOD PATH [TOKEN] [JSON BODY]: status in ST, body in $BODY (checked against
# docs/openapi.yaml at the end: hn_oa_curl)
req() {
    local data=()
    [ $# -ge 4 ] && data=(--data-binary "$4" -H "Content-Type: application/json")
    hn_oa_req "$BODY" -X "$1" -H "Authorization: Bearer ${3:-$TOK}" \
        "${data[@]}" "$BASE$2"
    ST=$HN_ST
}
j() { jq -r "$1" "$BODY"; }
send() { "$CTL" send --to "127.0.0.1:$UDP" --key "$K1" "$@" >/dev/null; }
S=/sessions
SID=sessCHAT0001

# --- a live visitor; a session that left -----------------------------------------------
send --type pv --session "$SID" --seq 1
send --type pv --session sessGONE0001 --seq 1
send --type end --session sessGONE0001 --seq 2
hn_wait_for 10 "visitor live" bash -c "[ -n \"\$(redis-cli -p $HN_REDIS_PORT ZSCORE 'hn:live:{$W1}' $SID)\" ]"
hn_wait_for 10 "the gone session left" bash -c "[ -z \"\$(redis-cli -p $HN_REDIS_PORT ZSCORE 'hn:live:{$W1}' sessGONE0001)\" ]"

# --- the live list before any chat --------------------------------------------------------
req GET "/widgets/$W1/active-visitors"
hn_assert_eq "live list: no chat state yet" "null 0 0" \
    "$(j ".visitors[] | select(.session_id == \"$SID\") | \"\(.chat_state) \(.messages_sent // 0) \(.agent_messages // 0)\"")"

# --- invite --------------------------------------------------------------------------------
hn_spawn down curl -sN "http://127.0.0.1:$HTTPB/v?k=$K1&s=$SID"
hn_oa_sse "$HN_TMP/down.log" "http://127.0.0.1:$HTTPB/v?k=$K1&s=$SID"
hn_wait_for 10 "the visitor's downlink on collector B is live" grep -q '^: ready' "$HN_TMP/down.log"
HOSTILE='<img src=x onerror=alert(1)> ‮RTL‬ 😀 "q" \\ \n'
req POST "$S/$SID/chat" "$TOK" "$(jq -cn --arg t "$HOSTILE" '{text: $t}')"
hn_assert_eq "invite: 201" 201 "$ST"
CID=$(j .id)
hn_assert_eq "invite: state" invited "$(j .state)"
hn_assert_eq "invite: agent is the token's name" "Ann Agent" "$(j .agent)"
hn_assert_eq "invite: text returned verbatim" "$HOSTILE" "$(j .message.text)"
hn_assert_eq "invite: message belongs to the conversation" "$CID" "$(j .message.conversation_id)"
MID=$(j .message.id)
hn_wait_for 5 "the invitation reaches the visitor's downlink on collector B" grep -q "^id: " "$HN_TMP/down.log"
hn_assert_eq "... as an invite event with the message's id and the conversation" "invite $MID $CID" \
    "$(grep -A1 '^event: invite' "$HN_TMP/down.log" | sed -n 's/^data: //p' | jq -r '"invite \(.id) \(.conversation)"')"
entry=$(hn_redis --raw XRANGE "hn:chat:{$W1}" - + | tr '\n' '|')
hn_assert_eq "hn:chat entry: fields" "s|$SID|e|invite|c|$CID|m|$MID|a|Ann Agent|x|" \
    "$(echo "$entry" | cut -d'|' -f2-12)|"
hn_assert_eq "hn:chat entry: text verbatim" "$HOSTILE" "$(hn_redis --raw XRANGE "hn:chat:{$W1}" - + | sed -n '13,$p' | head -n -2)"
hn_assert_eq "PG: conversation invited" "invited agent Ann Agent" \
    "$(hn_psql "SELECT state || ' ' || started_by || ' ' || agent_name FROM widget_conversations WHERE id = '$CID'")"
hn_assert_eq "PG: the invitation's text stored verbatim" "$HOSTILE" \
    "$(hn_psql "SELECT body FROM widget_conversation_messages WHERE id = '$MID'")"
hn_assert_eq "session hash: chat, chat_state, agent_messages" "$CID invited 1" \
    "$(hn_redis HMGET "hn:sess:{$W1}:$SID" chat chat_state agent_messages | tr '\n' ' ' | sed 's/ $//')"

# --- 409s ---------------------------------------------------------------------------------
req POST "$S/$SID/chat" "$TOK" '{"text":"again"}'
hn_assert_eq "second invite: 409 already_chatting" "409 already_chatting" "$ST $(j .error)"
req POST "$S/sessGONE0001/chat" "$TOK" '{"text":"hi"}'
hn_assert_eq "invite of a gone session: 409 session_gone" "409 session_gone" "$ST $(j .error)"
req POST "$S/sessGONE0001/messages" "$TOK" '{"text":"hi"}'
hn_assert_eq "message to a gone session: 409 session_gone" "409 session_gone" "$ST $(j .error)"
send --type pv --session sessNOCHAT01 --seq 1
hn_wait_for 10 "second visitor live" bash -c "[ -n \"\$(redis-cli -p $HN_REDIS_PORT ZSCORE 'hn:live:{$W1}' sessNOCHAT01)\" ]"
req POST "$S/sessNOCHAT01/messages?widget=$W1" "$TOK" '{"text":"hi"}'
hn_assert_eq "message without a chat: 409 no_chat" "409 no_chat" "$ST $(j .error)"

# --- bad text -----------------------------------------------------------------------------
long=$(printf 'é%.0s' $(seq 2001))
ok2000=$(printf 'é%.0s' $(seq 2000))
for c in "empty|{\"text\":\"\"}" "too long|{\"text\":\"$long\"}" "control character|{\"text\":\"a\\u0001b\"}" \
         "not valid UTF-8|{\"text\":\"a\\ud800b\"}" "missing|{\"agent\":\"x\"}"; do
    req POST "$S/$SID/messages" "$TOK" "${c#*|}"
    hn_assert_eq "bad text (${c%%|*}): 400 bad_text" "400 bad_text ${c%%|*}" "$ST $(j .error) $(j .reason)"
done
req POST "$S/$SID/messages" "$TOK" "$(printf '{"text":"a\xc3b"}')"
hn_assert_eq "raw invalid UTF-8: 400" "400 bad_text" "$ST $(j .error)"
req POST "$S/$SID/messages" "$TOK" 'not json'
hn_assert_eq "a body that is not JSON: 400 bad_body" "400 bad_body" "$ST $(j .error)"

# --- messages both ways ----------------------------------------------------------------
req POST "$S/$SID/messages" "$TOK" "{\"text\":\"$ok2000\",\"agent\":\"Bob\"}"
hn_assert_eq "agent message of 2000 characters: 201" "201 Bob agent" "$ST $(j .agent) $(j .sender)"
A1=$(j .id)
send --type ev --session "$SID" --seq 2 --event invite_accepted --conversation "$CID"
send --type msg --session "$SID" --seq 3 --conversation "$CID" --text 'visitor: مرحبا 😀 <b>hi</b>'
hn_wait_for 10 "visitor message drained" bash -c "[ \"\$($HN_PG_BINDIR/psql -X -At '$HERENOW_DATABASE_URL' -c \"SELECT count(*) FROM widget_conversation_messages WHERE sender = 'visitor'\")\" = 1 ]"
req POST "$S/$SID/messages" "$TOK" '{"text":"third\nline two\ttab"}'
hn_assert_eq "agent message after the visitor's: 201" 201 "$ST"
A2=$(j .id)
hn_assert_eq "PG: conversation chatting, 4 messages" "chatting 4" \
    "$(hn_psql "SELECT state || ' ' || messages FROM widget_conversations WHERE id = '$CID'")"
hn_assert_eq "PG: accepted_at set by the invite_accepted event" t \
    "$(hn_psql "SELECT accepted_at IS NOT NULL FROM widget_conversations WHERE id = '$CID'")"
hn_assert_eq "PG: session's conversation and counts" "$CID 1 true" \
    "$(hn_psql "SELECT conversation_id || ' ' || messages_sent || ' ' || has_chatted FROM widget_visitor_sessions WHERE widget_id = $W1 AND session_id = '$SID'")"
req GET "$S/$SID/messages"
hn_assert_eq "thread: 4 messages in order" "agent agent visitor agent" "$(j '[.messages[].sender] | join(" ")')"
hn_assert_eq "thread: ids in order" "$MID $A1 $A2" "$(j '[.messages[] | select(.sender == "agent") | .id] | join(" ")')"
hn_assert_eq "thread: visitor text verbatim" 'visitor: مرحبا 😀 <b>hi</b>' "$(j '.messages[2].text')"
hn_assert_eq "thread: newline and tab kept" "$(printf 'third\nline two\ttab')" "$(j '.messages[3].text')"
hn_assert_eq "thread: no more pages" null "$(j .next_before)"
req GET "$S/$SID/messages?limit=3"
hn_assert_eq "page 1 of 2: the 3 latest" "$A1 visitor $A2" "$(j '[.messages[] | if .sender == "agent" then .id else .sender end] | join(" ")')"
before=$(j .next_before)
req GET "$S/$SID/messages?limit=3&before=$before"
hn_assert_eq "page 2 of 2: the first" "$MID null" "$(j '[.messages[].id] | join(" ")') $(j .next_before)"
req GET "$S/$SID/messages?before=nope"
hn_assert_eq "bad before: 400" 400 "$ST"
hn_assert_eq "session hash after the messages" "chatting 1 3" \
    "$(hn_redis HMGET "hn:sess:{$W1}:$SID" chat_state messages_sent agent_messages | tr '\n' ' ' | sed 's/ $//')"
req GET "/widgets/$W1/active-visitors"
hn_assert_eq "live list: chat fields" "$CID chatting 1 3" \
    "$(j ".visitors[] | select(.session_id == \"$SID\") | \"\(.chat_conversation) \(.chat_state) \(.messages_sent) \(.agent_messages)\"")"

# --- the visitor's message is stored once (a redelivered chat record is not forced here) ---
hn_assert_eq "visitor message stored once" 1 "$(hn_psql "SELECT count(*) FROM widget_conversation_messages WHERE sender = 'visitor'")"

# --- a Redis failure inside the transaction: 503, nothing written ---------------------------
n0=$(hn_psql "SELECT count(*) FROM widget_conversation_messages")
hn_redis RENAME "hn:chat:{$W1}" "hn:chat:saved" >/dev/null
hn_redis SET "hn:chat:{$W1}" not-a-stream >/dev/null
req POST "$S/$SID/messages" "$TOK" '{"text":"lost"}'
hn_assert_eq "XADD fails: 503" 503 "$ST"
hn_assert_eq "XADD fails: no row" "$n0" "$(hn_psql "SELECT count(*) FROM widget_conversation_messages")"
hn_assert_eq "XADD fails: the conversation's count unchanged" 4 "$(hn_psql "SELECT messages FROM widget_conversations WHERE id = '$CID'")"
hn_redis DEL "hn:chat:{$W1}" >/dev/null
hn_redis RENAME "hn:chat:saved" "hn:chat:{$W1}" >/dev/null

# --- close, chat list ---------------------------------------------------------------------
req POST "$S/$SID/chat/close" "$TOK"
hn_assert_eq "close: 200 closed" "200 closed $CID" "$ST $(j .state) $(j .id)"
hn_assert_eq "close: downlink entry" "close" "$(hn_redis --raw XREVRANGE "hn:chat:{$W1}" + - COUNT 1 | sed -n 5p)"
hn_assert_eq "close: session hash" closed "$(hn_redis HGET "hn:sess:{$W1}:$SID" chat_state)"
req POST "$S/$SID/chat/close" "$TOK"
hn_assert_eq "close again: 409 no_chat" "409 no_chat" "$ST $(j .error)"
req POST "$S/$SID/messages" "$TOK" '{"text":"after close"}'
hn_assert_eq "message after close: 409 no_chat" "409 no_chat" "$ST $(j .error)"
# the visitor's late message (the old conversation) sets "chatting" again in
# the hash; PostgreSQL knows the conversation is closed, so a new invitation
# goes ahead (it once answered 409 already_chatting for good: found in review)
send --type msg --session "$SID" --seq 9 --conversation "$CID" --text 'one more thing'
late_chatting() { [ "$(hn_redis HGET "hn:sess:{$W1}:$SID" chat_state)" = chatting ]; }
hn_wait_for 10 "the late message made the hash say chatting" late_chatting
late_drained() { [ "$(hn_psql "SELECT count(*) FROM widget_conversation_messages WHERE conversation_id = '$CID' AND body = 'one more thing'")" = 1 ]; }
hn_wait_for 10 "the late message drained" late_drained
hn_assert_eq "… into the closed conversation, which stays closed" closed \
    "$(hn_psql "SELECT state FROM widget_conversations WHERE id = '$CID'")"
# a visitor-started chat (no ci): the drain opens the conversation
send --type msg --session sessNOCHAT01 --seq 2 --text 'I have a question'
hn_wait_for 10 "visitor-started conversation" bash -c "[ \"\$($HN_PG_BINDIR/psql -X -At '$HERENOW_DATABASE_URL' -c \"SELECT count(*) FROM widget_conversations WHERE started_by = 'visitor' AND session_id = 'sessNOCHAT01'\")\" = 1 ]"
req POST "$S/$SID/chat" "$TOK" '{"text":"new chat"}'
hn_assert_eq "invite after close: 201" 201 "$ST"
req GET "/widgets/$W1/chats"
hn_assert_eq "chats: 3, newest first" "invited chatting closed" "$(j '[.chats[].state] | join(" ")')"
req GET "/widgets/$W1/chats?state=open&limit=1"
hn_assert_eq "open chats, page 1" "invited" "$(j '[.chats[].state] | join(" ")')"
req GET "/widgets/$W1/chats?state=open&limit=1&cursor=$(j .next_cursor)"
hn_assert_eq "open chats, page 2" "chatting visitor null" "$(j '.chats[0].state') $(j '.chats[0].started_by') $(j .next_cursor)"
req GET "/widgets/$W1/chats?state=closed"
hn_assert_eq "closed chats" "$CID" "$(j '[.chats[].id] | join(" ")')"
req GET "/widgets/$W1/chats?state=bogus"
hn_assert_eq "chats: bad state 400" 400 "$ST"
req GET "/widgets"
hn_assert_eq "widget list: chat flags" "true false" "$(j '[.widgets[].chat | tostring] | join(" ")')"

# --- auth matrix: no token, bad token, revoked token, other widget's token ----------------------
for r in "POST $S/$SID/chat" "POST $S/$SID/messages" "GET $S/$SID/messages" "POST $S/$SID/chat/close" "GET /widgets/$W1/chats"; do
    m=${r%% *} p=${r#* }
    ST=$(curl -s -o /dev/null -w '%{http_code}' -X "$m" --data-binary '{"text":"x"}' "$BASE$p")
    hn_assert_eq "$r: no token 401" 401 "$ST"
    req "$m" "$p" "hn_bogus_token" '{"text":"x"}'
    hn_assert_eq "$r: bad token 401" 401 "$ST"
    req "$m" "$p" "$TOKR" '{"text":"x"}'
    hn_assert_eq "$r: revoked token 401" 401 "$ST"
    req "$m" "$p" "$TOK2" '{"text":"x"}'
    # a token of widget 2 sees the session under widget 2: nothing there
    case $ST in 403|404|409) hn_ok "$r: other widget's token refused ($ST)";;
                200) hn_assert_eq "$r: other widget's token sees no message" 0 "$(j '.messages | length')";;
                *) hn_fail "$r: other widget's token got $ST";; esac
    req "$m" "${p}?widget=$W1" "$TOK2" '{"text":"x"}'
    [[ $p == /widgets/* ]] || hn_assert_eq "$r?widget=$W1 with widget 2's token: 403" 403 "$ST"
done
req GET "$S/$SID/messages" "$TOK1"
hn_assert_eq "the widget's own token reads the thread (5 + the late message)" "200 6" "$ST $(j '.messages | length')"

# --- rate limit ---------------------------------------------------------------------------------
# 60 at once, then 1/s. Whatever the machine's speed, a 429 must come, and
# before it at most 60 + (seconds elapsed, rounded up) writes got through.
got429=0 ok=0 t0=$(date +%s%N)
for i in $(seq 300); do
    req POST "$S/sessNOCHAT01/messages" "$TOK1" '{"text":"spam"}'
    [ "$ST" = 429 ] && { got429=1; break; }
    ok=$((ok + 1))      # every write the limiter let through (this session has no chat: 409)
done
el=$((($(date +%s%N) - t0 + 999999999) / 1000000000))
hn_assert_eq "rate limit: a 429 comes (at write $i, after $el s)" 1 "$got429"
hn_assert_cmd "rate limit: at most 60 + 1/s let through before it ($ok in $el s)" test "$ok" -le $((60 + el))
hn_assert_eq "rate limit: 429 counted" 1 "$([ "$(curl -fsS "http://127.0.0.1:$API/metrics" | awk '$1 == "herenow_api_chat_rate_limited_total" { print $2 }')" -ge 1 ] && echo 1)"


# --- a widget without chat: its pages have no chat script, so no invitation ------------------
"$CTL" send --to "127.0.0.1:$UDP" --key "$K2" --type pv --session sessOFFCHAT1 --url https://example.org/ >/dev/null
off_live() { [ -n "$(hn_redis ZSCORE "hn:live:{$W2}" sessOFFCHAT1)" ]; }
hn_wait_for 10 "a visitor of the chat-off widget is live" off_live
req POST "$S/sessOFFCHAT1/chat?widget=$W2" "$TOK2" '{"text":"hello"}'
hn_assert_eq "invite on a chat-off widget: 409 chat_disabled, nothing stored" "409 chat_disabled 0" \
    "$ST $(j .error) $(hn_psql "SELECT count(*) FROM widget_conversations WHERE widget_id = $W2")"
req GET "/widgets/$W1/chats?cursor=12345678901234567890123_0b8e2d6c-5a39-4f55-9d2b-9e0f3c1f7a11"
hn_assert_eq "a cursor too big for a bigint: 400" 400 "$ST"

# --- statistics: invitations sent, their acceptance, chats by who started them ---------------
F=$(date -u -d '-1 hour' +%Y-%m-%dT%H:00:00Z) T=$(date -u -d '+1 hour' +%Y-%m-%dT%H:00:00Z)
req GET "/widgets/$W1/visitor-stats?from=$F&to=$T"
want=$(hn_psql "SELECT concat_ws(' ', count(*) FILTER (WHERE started_by = 'agent'), count(*) FILTER (WHERE started_by = 'agent' AND accepted_at IS NOT NULL), count(*) FILTER (WHERE started_by = 'visitor')) FROM widget_conversations WHERE widget_id = $W1")
hn_assert_eq "visitor-stats: invitations sent, accepted (as a rate), chats by visitors = the conversations" \
    "$want" "$(j '"\(.invitations_sent) \((.invitation_acceptance_rate * .invitations_sent + 0.5) | floor) \(.chats_by_visitors)"')"
hn_assert_cmd "visitor-stats: some of each (the test made them)" test "$(j '.invitations_sent * .chats_by_visitors * .invitation_acceptance_rate > 0')" = true

# --- every record delivered again: the chat rows and counts do not move ----------------------
# A Lua script appends a copy of each entry of the stream (binary-safe), as a
# replay after a crash would; the drain reads them as new entries.
drained() {
    local lag pend
    lag=$(hn_redis XINFO GROUPS hn:stream:0 | awk 'p { print; exit } $1 == "lag" { p = 1 }')
    pend=$(hn_redis XPENDING hn:stream:0 drain | head -1)
    [ "$lag" = 0 ] && [ "$pend" = 0 ]
}
hn_wait_for 10 "the drain has taken everything" drained
snap() {
    hn_psql "SELECT concat_ws(' ', (SELECT count(*) FROM widget_conversations),
        (SELECT count(*) FROM widget_conversation_messages),
        (SELECT string_agg(state, ',' ORDER BY id) FROM widget_conversations),
        (SELECT sum(messages_sent) FROM widget_visitor_sessions),
        (SELECT count(*) FILTER (WHERE has_chatted) FROM widget_visitor_sessions))"
}
before=$(snap)
copies=$(hn_redis EVAL "local n = 0
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  redis.call('XADD', KEYS[1], '*', unpack(e[2])); n = n + 1
end
return n" 1 hn:stream:0)
hn_assert_eq "every record delivered again (the entries hold the visitor's messages twice now)" 2 \
    "$(hn_redis --raw XRANGE hn:stream:0 - + | grep -c 'one more thing')"
hn_wait_for 10 "the drain has taken the copies" drained
hn_assert_eq "redelivery: conversations, messages, states, messages_sent, has_chatted unchanged" "$before" "$(snap)"

# --- Redis down: 503, nothing in PostgreSQL -----------------------------------------------------
n0=$(hn_psql "SELECT count(*) FROM widget_conversations")
hn_redis SHUTDOWN NOSAVE >/dev/null 2>&1 || true
req POST "$S/sessNOCHAT01/chat?widget=$W1" "$TOK" '{"text":"hello?"}'
hn_assert_eq "Redis down: 503" 503 "$ST"
hn_assert_eq "Redis down: refused before anything was written (no conversation row)" "$n0" "$(hn_psql "SELECT count(*) FROM widget_conversations")"

hn_done
