#!/usr/bin/env bash
# test_chat_expire.sh: unanswered invitations expire (docs/CHAT.md §5)
# against real Redis, PostgreSQL, a collector and two api processes, both
# with HERENOW_CHAT_INVITE_TTL_S=2: an invitation nobody answers becomes
# `expired` in PostgreSQL (not before the ttl), the session hash says so, one
# `expire` entry goes on hn:chat:{w} and reaches the page's downlink (/v) and
# the dashboards' live stream; a new invitation is then allowed (201). An
# accepted invitation never expires; a late `shown` leaves it expired, a
# late `accepted` wins and a message reopens it as chatting. A session hash
# that is gone is not made again. Two api processes expire each invitation
# once — also when both find it at once (held by a lock, then let go). The
# statement's partial index serves it.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_need jq jq

CTL="$HN_BIN/herenowctl"
hn_start_stores
read -r W K <<<"$(hn_widget_add --name "Expire" --domain example.com --chat on)"
TOK=$("$CTL" token create --all --name "Ann Agent" 2>/dev/null)

UDP=$(hn_free_port) HTTP=$(hn_free_port) ADMIN=$(hn_free_port) APIA=$(hn_free_port) APIB=$(hn_free_port)
export HERENOW_THREADS=2 HERENOW_DRAIN_BLOCK_MS=100 HERENOW_TOKEN_REFRESH_MS=200
export HERENOW_CHAT_INVITE_TTL_S=2 HERENOW_CHAT_RATE_PER_MIN=1000 HERENOW_SPOOL_DIR=
hn_spawn collector env HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP \
    HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN HERENOW_RATE_LIMIT=0 "$HN_BIN/herenow-collector"
hn_spawn apiA env HERENOW_API_LISTEN=127.0.0.1:$APIA "$HN_BIN/herenow-api"
hn_spawn apiB env HERENOW_API_LISTEN=127.0.0.1:$APIB "$HN_BIN/herenow-api"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_wait_for 10 "api A ready" curl -fsS "http://127.0.0.1:$APIA/readyz"
hn_wait_for 10 "api B ready" curl -fsS "http://127.0.0.1:$APIB/readyz"

BASE="http://127.0.0.1:$APIA/api/visitor-tracking"
BODY="$HN_TMP/body"
req() {   # req METHOD PATH [JSON BODY]: status in ST, body in $BODY
    local data=()
    [ $# -ge 3 ] && data=(--data-binary "$3" -H "Content-Type: application/json")
    ST=$(curl -s -o "$BODY" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $TOK" "${data[@]}" "$BASE$2")
}
j() { jq -r "$1" "$BODY"; }
send() { "$CTL" send --to "127.0.0.1:$UDP" --key "$K" "$@" >/dev/null; }
live() { [ -n "$(hn_redis ZSCORE "hn:live:{$W}" "$1")" ]; }
state() { hn_psql "SELECT state FROM widget_conversations WHERE id = '$1'"; }
is_state() { [ "$(state "$1")" = "$2" ]; }
# the `expire` entries of conversation $1 on hn:chat:{w}
expires() { hn_redis --raw XRANGE "hn:chat:{$W}" - + | paste -sd' ' | grep -o "e expire c $1" | wc -l; }
invite() {   # invite SID: 201 and the conversation id in CID
    req POST "/sessions/$1/chat?widget=$W" '{"text":"Can I help?"}'
    CID=$(j .id)
}
metric() { curl -fsS "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { v = $2 } END { print v + 0 }'; }

S1=sessEXPIRE01 S2=sessEXPIRE02 S3=sessEXPIRE03 S4=sessEXPIRE04 S5=sessEXPIRE05
for s in $S1 $S2 $S3 $S4 $S5; do send --type pv --session "$s" --seq 1; done
for s in $S1 $S2 $S3 $S4 $S5; do hn_wait_for 10 "$s live" live "$s"; done

# the page's downlink and a dashboard's live stream
hn_spawn page curl -sN "http://127.0.0.1:$HTTP/v?k=$K&s=$S1"
hn_oa_sse "$HN_TMP/page.log" "http://127.0.0.1:$HTTP/v?k=$K&s=$S1"
hn_wait_for 10 "the page's downlink is ready" grep -q '^: ready' "$HN_TMP/page.log"
TK=$(curl -fsS -X POST -H "Authorization: Bearer $TOK" "$BASE/widgets/$W/active-visitors/stream/ticket" | jq -r .ticket)
hn_spawn dash curl -sN "$BASE/widgets/$W/active-visitors/stream?ticket=$TK"
hn_oa_sse "$HN_TMP/dash.log" "$BASE/widgets/$W/active-visitors/stream?ticket=$TK"
hn_wait_for 10 "the dashboard's stream has its snapshot" grep -q "$S1" "$HN_TMP/dash.log"

# --- an invitation nobody answers --------------------------------------------------------------
invite "$S1"
C1=$CID
hn_assert_eq "invite: 201" 201 "$ST"
hn_assert_eq "just invited: not expired yet" invited "$(state "$C1")"
hn_wait_for 15 "PostgreSQL: the invitation expires" is_state "$C1" expired
hn_assert_eq "… not before the ttl (2 s), with expired_at" t \
    "$(hn_psql "SELECT expired_at - invited_at >= interval '2 s' FROM widget_conversations WHERE id = '$C1'")"
hn_assert_eq "session hash: chat_state expired, same conversation" "$C1 expired" \
    "$(hn_redis HMGET "hn:sess:{$W}:$S1" chat chat_state | paste -sd' ')"
hn_assert_eq "one expire entry on hn:chat:{w}" 1 "$(expires "$C1")"
hn_assert_eq "the entry: s, e, c, a fresh m, no agent, no text, a time" "s $S1 e expire c $C1 m uuid a  x  t ms" \
    "$(hn_redis --raw XREVRANGE "hn:chat:{$W}" + - COUNT 1 | sed -n '2,$p' | paste -sd' ' |
       sed -E 's/ m [0-9a-f-]{36} / m uuid /; s/ t [0-9]{13}$/ t ms/')"
page_got() { grep -q '^event: expire$' "$HN_TMP/page.log"; }
hn_wait_for 5 "the page's downlink gets the expire event" page_got
hn_assert_eq "… with its conversation" 1 "$(grep -c "^data: {\"id\":\"[0-9a-f-]*\",\"conversation\":\"$C1\",\"agent\":\"\",\"text\":\"\"" "$HN_TMP/page.log")"
dash_got() { grep -q "\"session_id\":\"$S1\".*\"chat_state\":\"expired\"\|\"chat_state\":\"expired\".*\"session_id\":\"$S1\"" "$HN_TMP/dash.log"; }
hn_wait_for 5 "the dashboards' live stream shows it expired" dash_got
req GET "/widgets/$W/active-visitors"
hn_assert_eq "live list: chat_state expired" "$C1 expired" \
    "$(j ".visitors[] | select(.session_id == \"$S1\") | \"\(.chat_conversation) \(.chat_state)\"")"
req GET "/widgets/$W/chats?state=closed"
hn_assert_eq "chats: an expired one is not open" "$C1 expired" "$(j "[.chats[] | select(.id == \"$C1\") | .id, .state] | join(\" \")")"
req POST "/sessions/$S1/messages?widget=$W" '{"text":"still there?"}'
hn_assert_eq "a message to an expired invitation: 409 no_chat" "409 no_chat" "$ST $(j .error)"

# a late invite_shown (a page back after the ttl) leaves it expired
send --type ev --session "$S1" --seq 2 --event invite_shown --conversation "$C1"
shown_drained() { [ "$(hn_psql "SELECT shown_at IS NOT NULL FROM widget_conversations WHERE id = '$C1'")" = t ]; }
hn_wait_for 10 "the late invite_shown drained" shown_drained
hn_assert_eq "… and the conversation stays expired" expired "$(state "$C1")"

# --- a new invitation after expiry ---------------------------------------------------------------
invite "$S1"
C1B=$CID
hn_assert_eq "a new invitation after the expiry: 201 (no already_chatting)" "201 invited" "$ST $(j .state)"

# --- an accepted invitation never expires --------------------------------------------------------
# S2 is invited and accepted; S3 is invited after that and left alone: the
# look that expires S3 would have taken the older S2 too if it could.
invite "$S2"
C2=$CID
send --type ev --session "$S2" --seq 2 --event invite_accepted --conversation "$C2"
hn_wait_for 10 "S2's acceptance drained" is_state "$C2" accepted
invite "$S3"
C3=$CID
hn_wait_for 15 "S3's invitation expires" is_state "$C3" expired
hn_assert_eq "the accepted one (older) stays accepted" accepted "$(state "$C2")"
hn_assert_eq "… no expire entry for it" 0 "$(expires "$C2")"
hn_assert_eq "… its hash says accepted" accepted "$(hn_redis HGET "hn:sess:{$W}:$S2" chat_state)"

# --- the visitor answers after expiry --------------------------------------------------------
# S3: accepted late (the page had not heard of the expiry) → accepted; a
# message then makes it chatting. The statistics count it accepted.
send --type ev --session "$S3" --seq 2 --event invite_accepted --conversation "$C3"
hn_wait_for 10 "a late acceptance wins over the expiry" is_state "$C3" accepted
hn_assert_eq "… expired_at and accepted_at both kept" "true true" \
    "$(hn_psql "SELECT (expired_at IS NOT NULL)::text || ' ' || (accepted_at IS NOT NULL)::text FROM widget_conversations WHERE id = '$C3'")"
send --type msg --session "$S3" --seq 3 --conversation "$C3" --text 'sorry, I was away'
hn_wait_for 10 "the visitor's message makes it chatting" is_state "$C3" chatting
# S4: no acceptance, straight a message with the expired conversation's id
invite "$S4"
C4=$CID
hn_wait_for 15 "S4's invitation expires" is_state "$C4" expired
send --type msg --session "$S4" --seq 2 --conversation "$C4" --text 'hello?'
hn_wait_for 10 "a message to an expired invitation reopens it as chatting" is_state "$C4" chatting
hn_assert_eq "… in the same conversation (2 messages)" 2 "$(hn_psql "SELECT messages FROM widget_conversations WHERE id = '$C4'")"

# --- an answer that raced the expiry ----------------------------------------------------------------
# S7 declined just before the ttl: the collector has set the hash, but the
# drain has not written the answer yet (here: the beacon comes after). The
# expiry must not tell the page its invitation expired, and the answer,
# once drained, wins over `expired`.
S7=sessEXPIRE07
send --type pv --session "$S7" --seq 1
hn_wait_for 10 "S7 live" live "$S7"
invite "$S7"
C7=$CID
hn_redis HSET "hn:sess:{$W}:$S7" chat_state declined >/dev/null
hn_wait_for 15 "S7's invitation is past the ttl and looked at" is_state "$C7" expired
hn_assert_eq "… no expire entry for an invitation the visitor had answered" 0 "$(expires "$C7")"
hn_assert_eq "… the hash keeps the answer" declined "$(hn_redis HGET "hn:sess:{$W}:$S7" chat_state)"
send --type ev --session "$S7" --seq 2 --event invite_declined --conversation "$C7"
hn_wait_for 10 "the decline, once drained, wins over the expiry" is_state "$C7" declined

# --- a session hash that is gone is not made again -----------------------------------------------
invite "$S5"
C5=$CID
hn_redis DEL "hn:sess:{$W}:$S5" >/dev/null
hn_wait_for 15 "S5's invitation expires" is_state "$C5" expired
hn_assert_eq "… its hash stays gone" 0 "$(hn_redis EXISTS "hn:sess:{$W}:$S5")"
hn_assert_eq "… the page still gets its expire entry (a resume replays it)" 1 "$(expires "$C5")"

# --- two api processes: each invitation expires once -------------------------------------------
# Ten at once, then one both processes find together: a transaction holds
# its row until both have looked at least once past the ttl, then lets go.
SIDS=()
for i in $(seq 10 19); do SIDS+=("sessEXPIRE$i"); send --type pv --session "sessEXPIRE$i" --seq 1; done
for s in "${SIDS[@]}"; do hn_wait_for 10 "$s live" live "$s"; done
CIDS=()
for s in "${SIDS[@]}"; do invite "$s"; CIDS+=("$CID"); done
all_expired() { [ "$(hn_psql "SELECT count(*) FROM widget_conversations WHERE state = 'expired' AND id IN ($(printf "'%s'," "${CIDS[@]}" | sed 's/,$//'))")" = 10 ]; }
hn_wait_for 20 "ten invitations expire" all_expired
once=0
for c in "${CIDS[@]}"; do [ "$(expires "$c")" = 1 ] && once=$((once + 1)); done
hn_assert_eq "… each with exactly one expire entry" 10 "$once"

send --type pv --session sessEXPIRE20 --seq 1
hn_wait_for 10 "sessEXPIRE20 live" live sessEXPIRE20
invite sessEXPIRE20
C6=$CID
mkfifo "$HN_TMP/locker.in"
hn_spawn locker "$HN_PG_BINDIR/psql" -X -At -v ON_ERROR_STOP=1 "$HERENOW_DATABASE_URL" -f "$HN_TMP/locker.in"
exec 7>"$HN_TMP/locker.in"
echo "BEGIN; SELECT id FROM widget_conversations WHERE id = '$C6' FOR UPDATE;" >&7
held() { [ "$(hn_psql "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND query LIKE '%FOR UPDATE%'")" = 1 ]; }
hn_wait_for 10 "the conversation is held" held
# both processes look every 0.5 s: 2 s past the ttl, each has looked 4 times
old_enough() { [ "$(hn_psql "SELECT now() - invited_at > interval '4 s' FROM widget_conversations WHERE id = '$C6'")" = t ]; }
hn_wait_for 15 "the held invitation is past the ttl" old_enough
hn_assert_eq "held: still invited (the looks skip a locked row, they do not wait)" invited "$(state "$C6")"
echo "COMMIT;" >&7
exec 7>&-
hn_wait_for 10 "let go: it expires" is_state "$C6" expired
hn_assert_eq "… with exactly one expire entry" 1 "$(expires "$C6")"
na=$(metric "$APIA" herenow_drain_chat_invitations_expired_total)
nb=$(metric "$APIB" herenow_drain_chat_invitations_expired_total)
hn_assert_eq "herenow_drain_chat_invitations_expired_total of both processes = the expired rows" \
    "$(hn_psql "SELECT count(*) FROM widget_conversations WHERE expired_at IS NOT NULL")" "$((na + nb))"
hn_assert_eq "… nothing refused" 0 "$(( $(metric "$APIA" herenow_drain_chat_expire_refused_total) + $(metric "$APIB" herenow_drain_chat_expire_refused_total) ))"

# --- the statistics: expired invitations are not accepted -------------------------------------
F=$(date -u -d '-1 hour' +%Y-%m-%dT%H:00:00Z) T=$(date -u -d '+1 hour' +%Y-%m-%dT%H:00:00Z)
req GET "/widgets/$W/visitor-stats?from=$F&to=$T"
# accepted: S2 and S3 (late) of 18 invitations (S1 twice, S2–S5, S7, ten, one more)
hn_assert_eq "visitor-stats: 18 invitations, 2 accepted" "18 0.1111" "$(j .invitations_sent) $(j .invitation_acceptance_rate)"

# --- the index ---------------------------------------------------------------------------------
plan=$(hn_psql "SET enable_seqscan = off; EXPLAIN SELECT id FROM widget_conversations WHERE state IN ('invited', 'shown') AND coalesce(invited_at, created_at) < now() - make_interval(secs => 2) ORDER BY coalesce(invited_at, created_at) LIMIT 200 FOR UPDATE SKIP LOCKED")
hn_assert_cmd "the look is served by the partial index widget_conversations_unanswered" \
    grep -q widget_conversations_unanswered <<<"$plan"
echo "$plan" | sed 's/^/#   /'

hn_done
