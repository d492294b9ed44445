#!/usr/bin/env bash
# test_notes.sh: notes, tags and bans on visitors (docs/RULES.md §5) against
# real Redis, PostgreSQL, collector and api: the routes' CRUD, bad input
# and auth matrix; a tagged, noted visitor's live row and ?tag=; a chat-only
# ban (invitation 403, the visitor's message refused 403 and counted
# `banned`, their page views still tracked); a tracking ban (beacons
# dropped as `banned` within HERENOW_BANS_REFRESH_MS, tracked again once
# lifted); a ban by email catching the visitor who identified with it;
# erasure removing a visitor's notes, tags and bans.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_need jq jq

CTL="$HN_BIN/herenowctl"
hn_start_stores
read -r W1 K1 <<<"$(hn_widget_add --name "Notes one" --domain example.com --chat on)"
read -r W2 K2 <<<"$(hn_widget_add --name "Notes two" --domain example.org)"
TOK=$("$CTL" token create --all --name "Ann Agent" 2>/dev/null)
TOK2=$("$CTL" token create --widget "$W2" 2>/dev/null)
TOKR=$("$CTL" token create --widget "$W1" 2>/dev/null)
"$CTL" token revoke "$(echo "$TOKR" | cut -d_ -f2)" >/dev/null

UDP=$(hn_free_port) HTTP=$(hn_free_port) ADMIN=$(hn_free_port) API=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP
export HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN HERENOW_API_LISTEN=127.0.0.1:$API HERENOW_THREADS=2
export HERENOW_DRAIN_BLOCK_MS=100 HERENOW_TOKEN_REFRESH_MS=200 HERENOW_RATE_LIMIT=0 HERENOW_SPOOL_DIR=
hn_spawn collector "$HN_BIN/herenow-collector"
hn_spawn api "$HN_BIN/herenow-api"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_wait_for 10 "api ready" curl -fsS "http://127.0.0.1:$API/readyz"

BASE="http://127.0.0.1:$API/api/visitor-tracking"
BODY="$HN_TMP/body"
# req METHOD PATH [TOKEN] [JSON BODY]: status in ST, body in $BODY (checked
# against docs/openapi.yaml: hn_oa_req)
req() {
    local data=()
    [ $# -ge 4 ] && data=(--data-binary "$4" -H "Content-Type: application/json")
    if [ "${3-x}" = "" ]; then
        hn_oa_req "$BODY" -X "$1" "${data[@]}" "$BASE$2"
    else
        hn_oa_req "$BODY" -X "$1" -H "Authorization: Bearer ${3:-$TOK}" "${data[@]}" "$BASE$2"
    fi
    ST=$HN_ST
}
j() { jq -r "$1" "$BODY"; }
send() { "$CTL" send --to "127.0.0.1:$UDP" --key "$K1" "$@" >/dev/null; }
metric() {
    curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
BANNED_UDP='herenow_beacons_dropped_total{transport="udp",reason="banned"}'
BANNED_HTTP='herenow_beacons_dropped_total{transport="http",reason="banned"}'
live() { [ -n "$(hn_redis ZSCORE "hn:live:{$W1}" "$1")" ]; }
WP="/widgets/$W1"

# ---- auth matrix: every route ------------------------------------------------------------------
routes=("GET $WP/visitor-notes?visitor=v1" "POST $WP/visitor-notes" "DELETE $WP/visitor-notes/1"
        "GET $WP/visitor-tags" "POST $WP/visitor-tags" "GET $WP/bans" "POST $WP/bans"
        "DELETE $WP/bans/1" "GET $WP/annotations")
for r in "${routes[@]}"; do
    set -- $r
    req "$1" "$2" "" '{}'
    hn_assert_eq "$r: no token 401" 401 "$ST"
    req "$1" "$2" "$TOKR" '{}'
    hn_assert_eq "$r: revoked token 401" 401 "$ST"
    req "$1" "$2" "$TOK2" '{}'
    hn_assert_eq "$r: another widget's token 403" 403 "$ST"
    req "$1" "${2/\/widgets\/$W1/\/widgets\/0}" "$TOK" '{}'
    hn_assert_eq "$r: widget 0: 400" 400 "$ST"
done

# ---- notes -------------------------------------------------------------------------------------
req POST "$WP/visitor-notes" "$TOK" '{"email":"Vip@Example.COM","body":"Asked about <b>pricing</b> & \"plans\""}'
hn_assert_eq "note: 201" 201 "$ST"
hn_assert_eq "note: email lower-cased, body verbatim, author the token's name" \
    'vip@example.com|null|Asked about <b>pricing</b> & "plans"|Ann Agent' "$(j '"\(.email)|\(.visitor)|\(.body)|\(.author)"')"
N1=$(j .id)
req POST "$WP/visitor-notes" "$TOK" '{"email":"vip@example.com","body":"second"}'
N2=$(j .id)
req GET "$WP/visitor-notes?email=VIP@example.com"
hn_assert_eq "notes: newest first" "$N2 $N1" "$(j '[.notes[].id] | join(" ")')"
req GET "$WP/visitor-notes?email=other@example.com"
hn_assert_eq "notes: another subject has none" "0" "$(j '.notes | length')"
long=$(printf 'é%.0s' $(seq 2000))
req POST "$WP/visitor-notes" "$TOK" "{\"visitor\":\"vnotes01\",\"body\":\"$long\"}"
hn_assert_eq "note of 2000 characters (4000 bytes): 201" 201 "$ST"
for bad in "{\"visitor\":\"vnotes01\",\"body\":\"${long}x\"}" \
           '{"visitor":"vnotes01","email":"a@b.c","body":"x"}' '{"body":"x"}' \
           '{"visitor":"vnotes01"}' '{"visitor":"vnotes01","body":""}' \
           '{"visitor":"vnotes01","body":"bad \udc00 surrogate"}' '{"visitor":"vnotes01","body":7}' \
           '{"email":"no-at-sign","body":"x"}' '{"visitor":"","body":"x"}' '[1]' 'not json'; do
    req POST "$WP/visitor-notes" "$TOK" "$bad"
    hn_assert_eq "note ${bad:0:40}…: 400" 400 "$ST"
    hn_assert_cmd "note ${bad:0:40}…: says why" jq -e '.error | length > 3' "$BODY"
done
req GET "$WP/visitor-notes"
hn_assert_eq "notes without a subject: 400" 400 "$ST"
req GET "$WP/visitor-notes?visitor=a&email=a@b.c"
hn_assert_eq "notes with two subjects: 400" 400 "$ST"
req DELETE "$WP/visitor-notes/abc"
hn_assert_eq "note id not a number: 400" 400 "$ST"
req DELETE "$WP/visitor-notes/999999"
hn_assert_eq "unknown note: 404" 404 "$ST"
req DELETE "/widgets/$W2/visitor-notes/$N2"
hn_assert_eq "another widget's note: 404" 404 "$ST"
req DELETE "$WP/visitor-notes/$N2"
hn_assert_eq "delete note: 204" 204 "$ST"

# ---- tags --------------------------------------------------------------------------------------
req POST "$WP/visitor-tags" "$TOK" '{"email":"vip@example.com","tags":["VIP","beta","vip"]}'
hn_assert_eq "tags set: 200" 200 "$ST"
hn_assert_eq "tags: lower-cased, deduplicated, sorted" '["beta","vip"]' "$(jq -c .tags "$BODY")"
req POST "$WP/visitor-tags" "$TOK" '{"email":"vip@example.com","tags":["vip","lead"]}'
hn_assert_eq "tags replaced" '["lead","vip"]' "$(jq -c .tags "$BODY")"
req POST "$WP/visitor-tags" "$TOK" '{"visitor":"vtags01","tags":["lead"]}'
req GET "$WP/visitor-tags?tag=lead"
hn_assert_eq "tag list by tag" "2" "$(j '.subjects | length')"
req GET "$WP/visitor-tags?tag=vip"
hn_assert_eq "tag list by tag: vip" "vip@example.com" "$(j '.subjects[].email')"
req POST "$WP/visitor-tags" "$TOK" '{"visitor":"vtags01","tags":["NULL","lead"]}'
hn_assert_eq "a tag spelled null is a tag (the array literal quotes it)" '200 ["lead","null"]' "$ST $(jq -c .tags "$BODY")"
req POST "$WP/visitor-tags" "$TOK" '{"visitor":"vtags01","tags":[]}'
req GET "$WP/visitor-tags"
hn_assert_eq "[] removes a subject's tags" "vip@example.com" "$(j '[.subjects[] | .email // .visitor] | join(" ")')"
many=$(printf '"t%d",' $(seq 21)); many="[${many%,}]"
for bad in '{"visitor":"x1","tags":["-bad"]}' '{"visitor":"x1","tags":["has space"]}' \
           "{\"visitor\":\"x1\",\"tags\":$many}" '{"visitor":"x1","tags":"vip"}' '{"visitor":"x1","tags":[1]}' \
           '{"visitor":"x1"}' "{\"visitor\":\"x1\",\"tags\":[\"$(printf 'a%.0s' $(seq 33))\"]}"; do
    req POST "$WP/visitor-tags" "$TOK" "$bad"
    hn_assert_eq "tags ${bad:0:40}…: 400" 400 "$ST"
done
req GET "$WP/visitor-tags?tag=No!"
hn_assert_eq "bad tag filter: 400" 400 "$ST"

# ---- the live row of a tagged, noted visitor; ?tag= -----------------------------------------------
send --type pv --session sessVIP00001 --seq 1
send --type id --session sessVIP00001 --seq 2 --email VIP@example.com
send --type pv --session sessPLAIN001 --seq 1
hn_wait_for 10 "visitors live" bash -c "[ -n \"\$(redis-cli -p $HN_REDIS_PORT HGET 'hn:sess:{$W1}:sessVIP00001' email)\" ] && [ -n \"\$(redis-cli -p $HN_REDIS_PORT ZSCORE 'hn:live:{$W1}' sessPLAIN001)\" ]"
req GET "$WP/active-visitors"
hn_assert_eq "live row: tags, notes, banned" '["lead","vip"] 1 false' \
    "$(j '.visitors[] | select(.session_id == "sessVIP00001") | "\(.tags | tojson) \(.notes) \(.banned)"')"
hn_assert_eq "live row without annotations" '[] 0 false' \
    "$(j '.visitors[] | select(.session_id == "sessPLAIN001") | "\(.tags | tojson) \(.notes) \(.banned)"')"
req GET "$WP/active-visitors?tag=vip"
hn_assert_eq "?tag=vip: only the tagged visitor" "sessVIP00001" "$(j '[.visitors[].session_id] | join(" ")')"
req GET "$WP/active-visitors?tag=nobody"
hn_assert_eq "?tag= nobody has: empty" "200 0" "$ST $(j '.visitors | length')"
req GET "$WP/active-visitors?tag=Bad!"
hn_assert_eq "?tag= bad: 400" 400 "$ST"
req GET "/sessions/sessVIP00001?widget=$W1"
hn_assert_eq "session details: tags, notes, banned" '["lead","vip"] 1 false' "$(j '"\(.tags | tojson) \(.notes) \(.banned)"')"
req GET "$WP/annotations"
hn_assert_eq "annotations: the email subject" '["lead","vip"] 1 false' \
    "$(j '.subjects[] | select(.email == "vip@example.com") | "\(.tags | tojson) \(.notes) \(.banned)"')"

# ---- a chat-only ban: invitation 403, messages refused, page views tracked -------------------------
UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36'
mp() { local hex; hex=$("$CTL" send --dry-run "$@" | sed -n 2p); printf '%b' "$(sed 's/../\\x&/g' <<<"$hex")"; }
CV=0b8e2d6c-5a39-4f55-9d2b-9e0f3c1f7a11 SC=sessCHATBAN1
mp --key "$K1" --session "$SC" --seq 1 >"$HN_TMP/pv1"
mp --key "$K1" --session "$SC" --seq 2 --url https://example.com/two >"$HN_TMP/pv2"
mp --key "$K1" --type msg --session "$SC" --text 'hello' --conversation "$CV" >"$HN_TMP/msg"
B="http://127.0.0.1:$HTTP/b"
curl -fsS -o /dev/null -A "$UA" --data-binary "@$HN_TMP/pv1" "$B"
hn_wait_for 10 "chat visitor live" live "$SC"
VC=$(hn_redis HGET "hn:sess:{$W1}:$SC" visitor)
hn_assert_cmd "the chat visitor has a visitor id" test -n "$VC"
req POST "$WP/bans" "$TOK" "{\"visitor\":\"$VC\",\"reason\":\"spam <script>\"}"
hn_assert_eq "ban: 201" 201 "$ST"
hn_assert_eq "ban: chat only, reason verbatim, author" "false|spam <script>|Ann Agent" "$(j '"\(.block_tracking)|\(.reason)|\(.author)"')"
BC=$(j .id)
hn_assert_eq "hn:bans: the chat-only member" "c:v:$VC" "$(hn_redis SMEMBERS "hn:bans:{$W1}")"
req POST "/sessions/$SC/chat?widget=$W1" "$TOK" '{"text":"Can I help?"}'
hn_assert_eq "invitation of a banned visitor: 403" "403 banned" "$ST $(j .error)"
b0=$(metric "$BANNED_HTTP")
code() { curl -s -o "$HN_TMP/cb" -w '%{http_code}' -A "$UA" --data-binary "@$1" "$B"; }
msg_refused() { [ "$(code "$HN_TMP/msg")" = 403 ]; }
hn_wait_for 5 "the banned visitor's message is refused (within HERENOW_BANS_REFRESH_MS)" msg_refused
hn_assert_eq "refused: {\"error\":\"banned\"}" '{"error":"banned"}' "$(cat "$HN_TMP/cb")"
hn_assert_eq "refused message counted as banned" 1 "$([ "$(metric "$BANNED_HTTP")" -gt "$b0" ] && echo 1)"
# (before the ban reached the collector, the poll's messages went through)
m0=$(hn_redis HGET "hn:sess:{$W1}:$SC" messages_sent)
hn_assert_eq "another message: refused again" 403 "$(code "$HN_TMP/msg")"
hn_assert_cmd "refused messages never reach the session" test "$(hn_redis HGET "hn:sess:{$W1}:$SC" messages_sent)" = "$m0"
hn_assert_cmd "their page views are still tracked" test "$(code "$HN_TMP/pv2")" -lt 300
hn_wait_for 5 "the page view reached the session" bash -c "[ \"\$(redis-cli -p $HN_REDIS_PORT HGET 'hn:sess:{$W1}:$SC' url)\" = https://example.com/two ]"
req GET "$WP/active-visitors"
hn_assert_eq "live row: banned" true "$(j ".visitors[] | select(.session_id == \"$SC\") | .banned")"
req POST "$WP/bans" "$TOK" "{\"visitor\":\"$VC\",\"reason\":\"again\"}"
hn_assert_eq "the same ban again: 200, same id" "200 $BC" "$ST $(j .id)"
req DELETE "$WP/bans/$BC"
hn_assert_eq "lift: 204" 204 "$ST"
hn_assert_eq "hn:bans: empty" "" "$(hn_redis SMEMBERS "hn:bans:{$W1}")"
msg_taken() { [ "$(code "$HN_TMP/msg")" = 200 ]; }
hn_wait_for 5 "lifted: the message passes again" msg_taken
req DELETE "$WP/bans/$BC"
hn_assert_eq "lift again: 404" 404 "$ST"

# ---- a tracking ban: beacons dropped as banned; lifted: tracked again --------------------------------
send --type pv --session sessTRK00001 --seq 1 --vid trkvisitor1
hn_wait_for 10 "tracked visitor live" live sessTRK00001
drained() { [ "$(hn_psql "SELECT count(*) FROM widget_visitor_sessions WHERE widget_id = $W1 AND visitor_id = '$1'$2")" -ge 1 ]; }
hn_wait_for 10 "its session drained" drained trkvisitor1 ""
req POST "$WP/visitor-notes" "$TOK" '{"visitor":"trkvisitor1","body":"to be erased"}'
req POST "$WP/visitor-tags" "$TOK" '{"visitor":"trkvisitor1","tags":["gone"]}'
req POST "$WP/bans" "$TOK" '{"visitor":"trkvisitor1","block_tracking":true}'
hn_assert_eq "tracking ban: 201" "201 true" "$ST $(j .block_tracking)"
BT=$(j .id)
n=1
# poll_counted VID PREFIX: a new session of visitor VID; true once the
# banned count moved within a second (the beacon was dropped, not lost)
poll_counted() {
    local before i; before=$(metric "$BANNED_UDP")
    n=$((n + 1)); send --type pv --session "$2$n" --seq 1 --vid "$1"
    for i in $(seq 50); do
        [ "$(metric "$BANNED_UDP")" -gt "$before" ] && return 0
        live "$2$n" && return 1
        sleep 0.02
    done
    return 1
}
dropped() { poll_counted trkvisitor1 sessTRKnew; }
hn_wait_for 5 "a tracking-banned visitor's beacons are dropped as banned" dropped
hn_assert_cmd "the dropped session is not live" bash -c "! redis-cli -p $HN_REDIS_PORT ZSCORE 'hn:live:{$W1}' sessTRKnew$n | grep -q ."
send --type pv --session sessOTHER001 --seq 1 --vid othervisitor
hn_wait_for 5 "another visitor is still tracked" live sessOTHER001
req DELETE "$WP/bans/$BT"
hn_assert_eq "lift the tracking ban: 204" 204 "$ST"
tracked() {
    local i; n=$((n + 1)); send --type pv --session "sessTRKback$n" --seq 1 --vid trkvisitor1
    for i in $(seq 50); do live "sessTRKback$n" && return 0; sleep 0.02; done
    return 1
}
hn_wait_for 5 "lifted: the visitor is tracked again" tracked

# ---- a ban by email catches the visitor who identified with it --------------------------------------
send --type pv --session sessEMAIL001 --seq 1 --vid emailvisitor
send --type id --session sessEMAIL001 --seq 2 --vid emailvisitor --email Banned@Example.com
hn_wait_for 10 "the identified session drained" drained emailvisitor " AND visitor_email IS NOT NULL"
req POST "$WP/bans" "$TOK" '{"email":"BANNED@example.com","block_tracking":true,"reason":null}'
hn_assert_eq "ban by email: 201, lower-cased" "201 banned@example.com" "$ST $(j .email)"
hn_assert_cmd "hn:bans: the email and the visitor id that identified with it" \
    bash -c "redis-cli -p $HN_REDIS_PORT SMEMBERS 'hn:bans:{$W1}' | sort | tr '\n' ' ' | grep -q 'e:banned@example.com .*v:emailvisitor '"
email_dropped() { poll_counted emailvisitor sessEMnew; }   # without any email: dropped
hn_wait_for 5 "the visitor who identified with the banned email is dropped" email_dropped
before=$(metric "$BANNED_UDP")
send --type id --session sessEMother1 --seq 1 --vid someoneelse --email banned@EXAMPLE.com
counted_since() { [ "$(metric "$BANNED_UDP")" -gt "$1" ]; }
hn_wait_for 5 "an identify beacon with the banned email is dropped" counted_since "$before"
hn_assert_cmd "... and its session is not live" bash -c "! redis-cli -p $HN_REDIS_PORT ZSCORE 'hn:live:{$W1}' sessEMother1 | grep -q ."
req GET "$WP/bans"
hn_assert_eq "ban list" "banned@example.com" "$(j '[.bans[] | .email // .visitor] | join(" ")')"

# ---- Redis loses the bans (a restart without persistence): the api writes them again -----------------
# A collector started then has no bans; the api's rules engine sees
# hn:bans:version gone while PostgreSQL has bans, and writes every
# widget's set again within HN_RULES_BANS_CHECK_MS (5 s).
hn_redis DEL hn:bans:version hn:bans:widgets "hn:bans:{$W1}" >/dev/null
UDP2=$(hn_free_port) ADMIN2=$(hn_free_port)
hn_spawn collector2 env HERENOW_UDP_LISTEN="127.0.0.1:$UDP2" HERENOW_HTTP_LISTEN= \
    HERENOW_ADMIN_LISTEN="127.0.0.1:$ADMIN2" "$HN_BIN/herenow-collector"
hn_wait_for 10 "a second collector ready" curl -fsS "http://127.0.0.1:$ADMIN2/readyz"
resynced() { [ "$(hn_redis SISMEMBER "hn:bans:{$W1}" v:emailvisitor)" = 1 ] && [ "$(hn_redis EXISTS hn:bans:version)" = 1 ]; }
hn_wait_for 15 "the api wrote the lost ban sets again (hn:bans:{w}, hn:bans:version)" resynced
banned2() { curl -fsS "http://127.0.0.1:$ADMIN2/metrics" | awk -v m="$BANNED_UDP" '$1 == m { v = $2 } END { print v + 0 }'; }
dropped2() {
    local before i; before=$(banned2)
    n=$((n + 1)); "$CTL" send --to "127.0.0.1:$UDP2" --key "$K1" --type pv --session "sessEM2nd$n" --seq 1 --vid emailvisitor >/dev/null
    for i in $(seq 50); do [ "$(banned2)" -gt "$before" ] && return 0; sleep 0.02; done
    return 1
}
hn_wait_for 10 "the collector started after the loss drops the banned visitor" dropped2
hn_assert_eq "bans written again after the loss, and enforced by the new collector" "1 1" \
    "$(hn_redis EXISTS hn:bans:version) $(hn_redis SISMEMBER "hn:bans:{$W1}" e:banned@example.com)"

# ---- erasure removes the visitor's notes, tags and bans -----------------------------------------------
req POST "$WP/bans" "$TOK" '{"visitor":"trkvisitor1"}'
req DELETE "$WP/visitors/trkvisitor1"
hn_assert_eq "erase: 200, three annotations" "200 3" "$ST $(j .annotations)"
req GET "$WP/visitor-notes?visitor=trkvisitor1"
hn_assert_eq "erased: no notes" 0 "$(j '.notes | length')"
req GET "$WP/annotations"
hn_assert_eq "erased: not annotated any more" "" "$(j '.subjects[] | select(.visitor == "trkvisitor1") | .visitor')"
hn_assert_cmd "erased: the ban left hn:bans" bash -c "! redis-cli -p $HN_REDIS_PORT SMEMBERS 'hn:bans:{$W1}' | grep -qx 'c:v:trkvisitor1'"
req DELETE "$WP/visitors/nosuchvisitor"
hn_assert_eq "erase a visitor with nothing: 404" 404 "$ST"

# ---- Redis loses its data: collectors keep their bans; the next ban change writes them all ------------
req POST "/widgets/$W2/bans" "$TOK" '{"visitor":"w2visitor","block_tracking":true}'
hn_assert_eq "a ban on the second widget" 201 "$ST"
req POST "$WP/bans" "$TOK" '{"visitor":"lossvisitor","block_tracking":true}'
lost() { poll_counted lossvisitor sessLOSS; }
hn_wait_for 5 "banned before the loss" lost
hn_redis FLUSHALL >/dev/null
hn_wait_for 5 "the collector sees the bans' version gone, keeps its bans and says so" \
    grep -q 'event=bans_version_missing_kept' "$HN_TMP/collector.log"
hn_wait_for 5 "after Redis lost its data, the banned visitor is still dropped" lost
req POST "$WP/bans" "$TOK" '{"visitor":"anothervisitor"}'
hn_assert_eq "the next ban change: 201" 201 "$ST"
hn_assert_eq "... writes every widget's bans again" "v:w2visitor" "$(hn_redis SMEMBERS "hn:bans:{$W2}")"
hn_assert_cmd "... this widget's too" bash -c "redis-cli -p $HN_REDIS_PORT SMEMBERS 'hn:bans:{$W1}' | grep -qx 'v:lossvisitor'"

hn_done
