#!/usr/bin/env bash
# test_data_at_rest.sh: encryption at rest (docs/OPERATIONS.md, "Data at
# rest"; common/datakey.h) against real Redis, PostgreSQL, collector and api:
# a database from before the keys (values in clear); key files refused with
# one line (mode, missing, malformed); with a key, names, emails, phones,
# identify events, messages both ways and webhook bodies sealed in
# PostgreSQL — nothing of them in a pg_dump — and opened for the API, the
# CSV export, the delivery log and the webhook receiver (signature checked);
# a ban by email matching sealed sessions; `herenowctl key rotate` to a new
# key while identify beacons keep coming, values in clear included, then the
# old key removed from the file; a start refused when the file lacks a key
# the database holds values under, has another key under the same id, or is
# missing; a value altered in PostgreSQL answered null and counted.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_need jq jq

CTL="$HN_BIN/herenowctl"
hn_start_stores
read -r W1 K1 <<<"$(hn_widget_add --name "Sealed" --domain example.com --chat on)"
TOK=$("$CTL" token create --all --name "Ann Agent" 2>/dev/null)

UDP=$(hn_free_port) HTTP=$(hn_free_port) ADMIN=$(hn_free_port) API=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP
export HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN HERENOW_API_LISTEN=127.0.0.1:$API HERENOW_THREADS=2
export HERENOW_DRAIN_BLOCK_MS=100 HERENOW_TOKEN_REFRESH_MS=200 HERENOW_RATE_LIMIT=0 HERENOW_SPOOL_DIR=
export HERENOW_BANS_REFRESH_MS=200
hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"

BASE="http://127.0.0.1:$API/api/visitor-tracking"
BODY="$HN_TMP/body"
req() {
    local data=()
    [ $# -ge 3 ] && data=(--data-binary "$3" -H "Content-Type: application/json")
    ST=$(curl -s -o "$BODY" -w '%{http_code}' -m 10 -X "$1" -H "Authorization: Bearer $TOK" "${data[@]}" "$BASE$2")
}
j() { jq -r "$1" "$BODY"; }
send() { "$CTL" send --to "127.0.0.1:$UDP" --key "$K1" "$@" >/dev/null; }
api_metric() {
    curl -fsS "http://127.0.0.1:$API/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
n_api=0
start_api() {          # start_api [KEYFILE]
    n_api=$((n_api + 1))
    hn_spawn "api$n_api" env HERENOW_DATA_KEY_FILE="${1-}" "$HN_BIN/herenow-api"
    API_PID=$(eval echo "\$HN_PID_api$n_api")
    hn_wait_for 10 "api ready (${1:+keys $(basename "$1")}${1:-no keys})" curl -fsS "http://127.0.0.1:$API/readyz"
}
# refused KEYFILE: the api's exit status and its one line
refused() {
    local rc=0
    HERENOW_DATA_KEY_FILE="$1" timeout 20 "$HN_BIN/herenow-api" >"$HN_TMP/refused.out" 2>&1 || rc=$?
    echo "$rc $(wc -l <"$HN_TMP/refused.out") $(cat "$HN_TMP/refused.out")"
}
starts() { [[ $1 == "$2"* ]]; }
ends() { [[ $1 == *"$2" ]]; }
drained() { [ "$(hn_psql "$1")" = "${2:-1}" ]; }

# ---- 1. a database from before the keys -----------------------------------------------------
start_api ""
send --type pv --session sessCLEAR001 --seq 1 --url https://example.com/ --vid visitor-clara
send --type id --session sessCLEAR001 --seq 2 --vid visitor-clara --visitor-name "Clara Clear" --email Clara@Example.org --phone "+1 555 0100"
hn_wait_for 10 "the identify drained" drained \
    "SELECT count(*) FROM widget_visitor_sessions WHERE session_id = 'sessCLEAR001' AND visitor_email IS NOT NULL"
hn_assert_eq "without keys: stored in clear, the email key lower-cased" "Clara Clear|Clara@Example.org|clara@example.org" \
    "$(hn_psql "SELECT visitor_name || '|' || visitor_email || '|' || visitor_email_key FROM widget_visitor_sessions WHERE session_id = 'sessCLEAR001'")"
# 1,000 more identified sessions, real beacons (a page view, then identify)
cat >"$HN_TMP/beacons.py" <<'PY'
# beacons.py PORT KEY first|again STOPFILE: UDP beacons (docs/PROTOCOL.md),
# msgpack by hand (fixmap, str, uint). first: sessBULK0001..1000, a page
# view then identify "Bulk i"; again: identify "Again i" + a phone,
# sessBULK1000 down, until STOPFILE exists. Prints the count sent.
import os, socket, sys, time
def s(x):
    b = x.encode()
    return (bytes([0xa0 | len(b)]) if len(b) < 32 else bytes([0xd9, len(b)])) + b
def u(n):
    return bytes([n]) if n < 128 else b'\xcd' + n.to_bytes(2, 'big')
def beacon(d):
    out = bytes([0x80 | len(d)])
    for k, v in d.items():
        out += s(k) + (u(v) if isinstance(v, int) else s(v))
    return out
port, key, mode, stop = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sent = 0
for i in (range(1, 1001) if mode == 'first' else range(1000, 0, -1)):
    sid = 'sessBULK%04d' % i
    if mode == 'first':
        sock.sendto(beacon({'v': 1, 'k': key, 's': sid, 't': 'pv', 'q': 1, 'u': 'https://example.com/b'}), ('127.0.0.1', port))
        sock.sendto(beacon({'v': 1, 'k': key, 's': sid, 't': 'id', 'q': 2, 'nm': 'Bulk %d' % i, 'em': 'Bulk%d@example.net' % i}), ('127.0.0.1', port))
    else:
        if os.path.exists(stop):
            break
        sock.sendto(beacon({'v': 1, 'k': key, 's': sid, 't': 'id', 'q': 3, 'nm': 'Again %d' % i, 'ph': '+1 555 %d' % i}), ('127.0.0.1', port))
    sent += 1
    print(sent, flush=True)
    time.sleep(0.002)      # pacing: the collector's socket buffer, not a synchronization
PY
python3 "$HN_TMP/beacons.py" "$UDP" "$K1" first /nonexistent >/dev/null
hn_wait_for 20 "the 1,000 sessions drained" drained \
    "SELECT count(*) FROM widget_visitor_sessions WHERE session_id LIKE 'sessBULK%' AND visitor_email IS NOT NULL" 1000
hn_assert_eq "herenow_data_keys 0" 0 "$(api_metric herenow_data_keys)"
hn_stop "$API_PID"

# ---- 2. key files refused with one line -------------------------------------------------------
KF=$HN_TMP/data.keys
"$CTL" key new --id k1 --with-index >"$KF"
hn_assert_eq "key new --with-index: an index line, then the key's, 64 hex digits each" "index k1" \
    "$(grep -E '^[a-z0-9]+ [0-9a-f]{64}$' "$KF" | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//')"
hn_assert_cmd "key new needs no key file, even one named and not made yet (its first line)" \
    env HERENOW_DATA_KEY_FILE="$HN_TMP/not-yet.keys" "$CTL" key new --id k1
chmod 644 "$KF"
out=$(refused "$KF")
hn_assert_cmd "a key file others can read: exit 2, one line ($out)" ends "$out" "lets others read it (chmod 640)"
hn_assert_cmd "…naming the setting" starts "$out" "2 1 herenow-api: HERENOW_DATA_KEY_FILE "
chmod 640 "$KF"
out=$(refused "$HN_TMP/no-such.keys")
hn_assert_cmd "a missing key file: exit 2, one line ($out)" ends "$out" "no-such.keys: No such file or directory"
hn_assert_cmd "…exit 2, one line" starts "$out" "2 1 "
printf 'k1 00ff\n' >"$HN_TMP/bad.keys"
chmod 600 "$HN_TMP/bad.keys"
out=$(refused "$HN_TMP/bad.keys")
hn_assert_cmd "a malformed key line: exit 2, the line named ($out)" starts "$out" "2 1 herenow-api: HERENOW_DATA_KEY_FILE $HN_TMP/bad.keys line 1: want"
hn_assert_eq "herenowctl refuses it too (exit 2)" 2 \
    "$(HERENOW_DATA_KEY_FILE=$HN_TMP/bad.keys "$CTL" key status >/dev/null 2>&1; echo $?)"

# ---- 3. sealed at rest, opened for readers ---------------------------------------------------
start_api "$KF"
hn_assert_eq "the key and the index key's fingerprint enrolled in hn_data_keys" "index:idx: k1" \
    "$(hn_psql "SELECT string_agg(id || CASE WHEN id = 'index' THEN ':' || left(check_value, 4) ELSE '' END, ' ' ORDER BY id) FROM hn_data_keys")"
# the webhook receiver: chat.message bodies carry the message
RLOG=$HN_TMP/received.jsonl SECRETS=$HN_TMP/secrets
: >"$RLOG"
: >"$SECRETS"
hn_spawn receiver node "$HN_ROOT/tests/lib/webhook-receiver.mjs" "$HN_TMP/rport" "$RLOG" "$SECRETS"
hn_wait_for 10 "receiver listening" test -s "$HN_TMP/rport"
req PUT "/widgets/$W1/webhooks" "{\"url\": \"http://127.0.0.1:$(cat "$HN_TMP/rport")/ok\", \"events\": [\"chat.message\"]}"
hn_assert_eq "the lifecycle webhook set" 201 "$ST"
j .secret >>"$SECRETS"

SID=sessSEAL0001
send --type pv --session $SID --seq 1 --url https://example.com/pricing --vid visitor-ada
send --type id --session $SID --seq 2 --vid visitor-ada --visitor-name "Ada Lovelace" --email Ada@Example.ORG --phone "+44 20 7946 0000"
live() { [ -n "$(hn_redis ZSCORE "hn:live:{$W1}" "$1")" ]; }
hn_wait_for 10 "the visitor is live" live $SID
req POST "/sessions/$SID/chat?widget=$W1" '{"text":"invitation 5K"}'
hn_assert_eq "an invitation: 201, its text opened in the answer" "201 invitation 5K" "$ST $(j .message.text)"
CID=$(j .id)
send --type ev --session $SID --seq 3 --event invite_accepted --conversation "$CID"
send --type msg --session $SID --seq 4 --conversation "$CID" --text 'visitor secret 7Q: <b>hi</b>'
hn_wait_for 10 "the visitor's message drained" drained \
    "SELECT count(*) FROM widget_conversation_messages m JOIN widget_conversations c ON c.id = m.conversation_id WHERE c.session_id = '$SID'" 2
req POST "/sessions/$SID/messages?widget=$W1" '{"text":"agent secret 9Z, \"quoted\"\nline two"}'
hn_assert_eq "an agent message: 201, its text opened in the answer" "201 agent secret 9Z, \"quoted\"
line two" "$ST $(j .text)"
hn_wait_for 10 "the identify drained" drained \
    "SELECT count(*) FROM widget_visitor_sessions WHERE session_id = '$SID' AND visitor_phone IS NOT NULL"

sealed='^hnenc:v1:k1:[A-Za-z0-9+/]+=*$'
row=$(hn_psql "SELECT visitor_name, visitor_email, visitor_phone FROM widget_visitor_sessions WHERE session_id = '$SID'" -F ' ')
hn_assert_cmd "PG: name, email, phone sealed under k1" \
    bash -c "for v in $row; do [[ \$v =~ $sealed ]] || exit 1; done"
email_key() { hn_psql "SELECT visitor_email_key FROM widget_visitor_sessions WHERE session_id = '$1'"; }
hmac_key() { [[ $(email_key "$1") =~ ^hmac:[0-9a-f]{64}$ ]]; }
hn_assert_cmd "PG: the email key is an HMAC, not the address" hmac_key $SID
hn_assert_eq "PG: the identify event's name, email, phone sealed" 3 \
    "$(hn_psql "SELECT (event_data->>'name' LIKE 'hnenc:v1:k1:%')::int + (event_data->>'email' LIKE 'hnenc:v1:k1:%')::int + (event_data->>'phone' LIKE 'hnenc:v1:k1:%')::int FROM widget_visitor_events WHERE session_id = '$SID' AND event_type = 'id'")"
hn_assert_eq "PG: the three messages sealed" "3 3" \
    "$(hn_psql "SELECT count(*), count(*) FILTER (WHERE body ~ '$sealed') FROM widget_conversation_messages m JOIN widget_conversations c ON c.id = m.conversation_id WHERE c.session_id = '$SID'" -F ' ')"
hn_wait_for 10 "both chat.message webhooks received" bash -c "[ \$(grep -c '\"event\":\"chat.message\"' '$RLOG') -ge 2 ]"
hn_assert_eq "PG: the webhook bodies hold the messages sealed" "2 0" \
    "$(hn_psql "SELECT count(*) FILTER (WHERE body LIKE '%hnenc:v1:k1:%'), count(*) FILTER (WHERE body LIKE '%secret%') FROM webhook_deliveries WHERE event = 'chat.message'" -F ' ')"
"$HN_PG_BINDIR/pg_dump" "$HERENOW_DATABASE_URL" >"$HN_TMP/dump.sql"
hn_assert_cmd "pg_dump: the dump is whole (the clear visitor of §1 is in it)" grep -q "Clara Clear" "$HN_TMP/dump.sql"
for s in "Ada Lovelace" "Ada@Example.ORG" "ada@example.org" "7946 0000" "invitation 5K" "visitor secret 7Q" "agent secret 9Z"; do
    hn_assert_cmd "pg_dump: nothing of '$s'" bash -c "! grep -qi '$s' '$HN_TMP/dump.sql'"
done

# the files themselves: PostgreSQL's heap and WAL never held these in clear
hn_psql "CHECKPOINT" >/dev/null
hn_assert_cmd "PostgreSQL's data directory: the grep sees what was stored in clear (§1's visitor)" \
    grep -rqa "Clara Clear" "$HN_TMP/pg/data/base"
# (a row inserted, not updated: its WAL record holds the whole row)
hn_assert_cmd "…and the WAL what was written last (the agent's sealed message, as stored)" \
    grep -rqaF "$(hn_psql "SELECT body FROM widget_conversation_messages ORDER BY seq DESC LIMIT 1")" "$HN_TMP/pg/data/pg_wal"
for s in "Ada Lovelace" "7946 0000" "visitor secret 7Q" "agent secret 9Z"; do
    hn_assert_cmd "PostgreSQL's data directory (heap, WAL): no '$s'" \
        bash -c "! grep -rqa '$s' '$HN_TMP/pg/data/base' '$HN_TMP/pg/data/pg_wal'"
done

# readers
hn_assert_eq "the receiver: both messages opened, signatures valid" \
    "true true|agent secret 9Z, \"quoted\"
line two|visitor secret 7Q: <b>hi</b>" \
    "$(jq -rs '[.[] | select(.event == "chat.message")] | "\(all(.sig_ok)) \(all(.ts_ok))|" + ([.[].body | fromjson | .message.body] | sort | join("|"))' "$RLOG")"
req GET "/sessions/$SID?widget=$W1"
hn_assert_eq "session details (from PostgreSQL): name, email, phone opened" \
    "postgresql|Ada Lovelace|Ada@Example.ORG|+44 20 7946 0000" \
    "$(j '"\(.source)|\(.visitor_name)|\(.visitor_email)|\(.visitor_phone)"')"
hn_assert_eq "session details: the identify event's data opened" '{"name":"Ada Lovelace","email":"Ada@Example.ORG","phone":"+44 20 7946 0000"}' \
    "$(j '[.events[] | select(.type == "id")][0].data | tojson')"
# a sealed value pasted into a custom event's property (a visitor who saw a
# leaked dump) is not opened for the readers: only identify events are
CT=$(hn_psql "SELECT visitor_name FROM widget_visitor_sessions WHERE session_id = '$SID'")
send --type ev --session $SID --seq 9 --event pasted --prop "x=$CT"
hn_wait_for 10 "the pasted event drained" drained \
    "SELECT count(*) FROM widget_visitor_events WHERE session_id = '$SID' AND event_name = 'pasted'"
req GET "/sessions/$SID?widget=$W1"
hn_assert_eq "a sealed value in a custom event: not opened (the same JSON string)" "$CT" \
    "$(j '[.events[] | select(.name == "pasted")][0].data.x')"
# …nor in a webhook body: a page title that looks sealed stays the title
hn_assert_cmd "the pasted value is a sealed one ($CT)" starts "$CT" "hnenc:v1:k1:"
send --type pv --session $SID --seq 10 --url https://example.com/pasted --title "$CT"
hn_wait_for 10 "the page view drained" drained \
    "SELECT count(*) FROM widget_visitor_sessions WHERE session_id = '$SID' AND current_page_url = 'https://example.com/pasted'"
req POST "/sessions/$SID/messages?widget=$W1" '{"text":"after the pasted title"}'
hn_wait_for 10 "its chat.message webhook received" grep -q 'after the pasted title' "$RLOG"
hn_assert_eq "the webhook: the title as sent (not opened), the message opened, signed" "$CT|after the pasted title|true" \
    "$(jq -rs '[.[] | select(.body | contains("after the pasted title"))][0] | (.body | fromjson | "\(.session.title)|\(.message.body)|") + (.sig_ok | tostring)' "$RLOG")"
req GET "/widgets/$W1/sessions?from=1d"
hn_assert_eq "past sessions: opened" "Ada Lovelace Ada@Example.ORG" \
    "$(j ".sessions[] | select(.session_id == \"$SID\") | \"\(.visitor_name) \(.visitor_email)\"")"
req GET "/sessions/$SID/messages?widget=$W1"
hn_assert_eq "the thread: the messages opened, in order" 'invitation 5K|visitor secret 7Q: <b>hi</b>|agent secret 9Z, "quoted"
line two|after the pasted title' "$(j '[.messages[].text] | join("|")')"
req GET "/widgets/$W1/webhooks/deliveries"
hn_assert_eq "the delivery log: bodies opened" 2 \
    "$(j '[.deliveries[] | select(.event == "chat.message") | .body | fromjson | .message.body | select(test("secret"))] | length')"
curl -fsS -H "Authorization: Bearer $TOK" "$BASE/widgets/$W1/export.csv?what=sessions&from=1d" >"$HN_TMP/s.csv"
hn_assert_cmd "CSV export of sessions: name, email, phone opened (quoted; the phone's + guarded as the SQL guards it)" \
    grep -q '"Ada Lovelace","Ada@Example.ORG","'"'"'+44 20 7946 0000"' "$HN_TMP/s.csv"
hn_assert_cmd "…and the clear visitor as it was" grep -q 'Clara Clear,Clara@Example.org' "$HN_TMP/s.csv"
hn_assert_cmd "…and the page title that looks sealed (under k1, in the file) as it was, not opened" \
    grep -qF ",$CT," "$HN_TMP/s.csv"
hn_assert_eq "…as CSV: every row has the header's column count" 1 \
    "$(python3 -c 'import csv,sys; print(len({len(r) for r in csv.reader(open(sys.argv[1]))}))' "$HN_TMP/s.csv")"
curl -fsS -H "Authorization: Bearer $TOK" "$BASE/widgets/$W1/export.csv?what=events&from=1d" >"$HN_TMP/e.csv"
hn_assert_eq "CSV export of events: the identify's data opened (JSON in CSV)" \
    '{"name": "Ada Lovelace", "email": "Ada@Example.ORG", "phone": "+44 20 7946 0000"}' \
    "$(python3 -c 'import csv,sys; print([r["event_data"] for r in csv.DictReader(open(sys.argv[1])) if r["session_id"] == "sessSEAL0001" and r["type"] == "id"][0])' "$HN_TMP/e.csv")"
hn_assert_eq "CSV export of events: the pasted sealed value not opened (the same JSON string)" "$CT" \
    "$(python3 -c 'import csv,json,sys; print([json.loads(r["event_data"])["x"] for r in csv.DictReader(open(sys.argv[1])) if r["event_name"] == "pasted"][0])' "$HN_TMP/e.csv")"

# a ban by email finds the sealed sessions by their email key
VID=$(hn_psql "SELECT visitor_id FROM widget_visitor_sessions WHERE session_id = '$SID'")
req POST "/widgets/$W1/bans" '{"email": "ADA@example.org"}'
hn_assert_eq "a ban by email: 201" 201 "$ST"
banned() { hn_redis SMEMBERS "hn:bans:{$W1}" | grep -qx "c:v:$1"; }
hn_assert_cmd "hn:bans: the visitor id that identified with the (sealed) email" banned "$VID"
hn_assert_eq "no value failed to open" 0 "$(api_metric herenow_data_open_failures_total)"
HERENOW_DATA_KEY_FILE=$KF "$CTL" key status >"$HN_TMP/status" 2>&1 || true
hn_assert_cmd "key status: the clear and the sealed counted ($(tr '\n' ';' <"$HN_TMP/status"))" \
    grep -qE '^widget_visitor_sessions \(visitor_name, visitor_email, visitor_phone\): clear=2003 k1=3$' "$HN_TMP/status"

# ---- 4. rotation to k2 while identify beacons keep coming --------------------------------------
"$CTL" key new --id k2 >>"$KF"
hn_stop "$API_PID"
start_api "$KF"
# the 1,000 sessions of §1 are identified again (seq 3) while the rotation
# runs, newest first, until it ends: rows the drain rewrites under the
# rotation's feet
: >"$HN_TMP/load-sent"
python3 "$HN_TMP/beacons.py" "$UDP" "$K1" again "$HN_TMP/stop-load" >"$HN_TMP/load-sent" &
LOAD=$!
hn_wait_for 10 "the load started" test -s "$HN_TMP/load-sent"
rc=0
HERENOW_DATA_KEY_FILE=$KF "$CTL" key rotate --batch 20 >"$HN_TMP/rotate" 2>&1 || rc=$?
: >"$HN_TMP/stop-load"
wait "$LOAD"
n=$(tail -1 "$HN_TMP/load-sent")
hn_wait_for 15 "the $n identify beacons sent during the rotation drained" drained \
    "SELECT count(*) FROM widget_visitor_sessions WHERE session_id LIKE 'sessBULK%' AND visitor_phone IS NOT NULL" "$n"
# the pass leaves only the rows it reports as changed meanwhile (it walked them all)
skipped=$(sed -n 's/^widget_visitor_sessions .* \([0-9]*\) changed meanwhile.*/\1/p' "$HN_TMP/rotate")
left=$(hn_psql "SELECT count(*) FROM widget_visitor_sessions WHERE visitor_email NOT LIKE 'hnenc:v1:k2:%' OR visitor_name NOT LIKE 'hnenc:v1:k2:%'")
hn_assert_cmd "after the first rotate: $left session rows not under k2, at most the $skipped reported changed" \
    test "$left" -le "${skipped:-0}"
# a row the drain wrote between the rotation's read and its write is left
# to the drain's value (already under k2) and reported: exit 1, run again
hn_assert_cmd "key rotate during the load ($n beacons): exit 0, or 1 for rows changed meanwhile (rc $rc: $(tr '\n' ';' <"$HN_TMP/rotate"))" \
    bash -c "[ $rc = 0 ] || { [ $rc = 1 ] && grep -q 'changed meanwhile and 0 did not open: run it again' '$HN_TMP/rotate'; }"
if [ "$rc" != 0 ]; then
    rc=0
    HERENOW_DATA_KEY_FILE=$KF "$CTL" key rotate >"$HN_TMP/rotate" 2>&1 || rc=$?
    hn_assert_eq "key rotate again: exit 0 ($(tr '\n' ';' <"$HN_TMP/rotate"))" 0 "$rc"
fi
hn_assert_cmd "key rotate: k1 released" grep -q '^key k1: no value left under it' "$HN_TMP/rotate"
hn_assert_eq "a session identified again during the rotation: the beacon's name and phone" "Again 1000|+1 555 1000" \
    "$(curl -fsS -H "Authorization: Bearer $TOK" "$BASE/sessions/sessBULK1000?widget=$W1" | jq -r '"\(.visitor_name)|\(.visitor_phone)"')"
hn_assert_eq "a session not identified again: its first name, rotated" "Bulk 1" \
    "$(curl -fsS -H "Authorization: Bearer $TOK" "$BASE/sessions/sessBULK0001?widget=$W1" | jq -r .visitor_name)"
hn_assert_eq "after rotate: every name, email, phone, message sealed under k2, none in clear or under k1" \
    "0 0" "$(hn_psql "SELECT count(*) FILTER (WHERE v NOT LIKE 'hnenc:v1:k2:%'), count(*) FILTER (WHERE v LIKE '%Clara%') FROM (
        SELECT unnest(ARRAY[visitor_name, visitor_email, visitor_phone]) AS v FROM widget_visitor_sessions
        UNION ALL SELECT unnest(ARRAY[event_data->>'name', event_data->>'email', event_data->>'phone']) FROM widget_visitor_events WHERE event_type = 'id'
        UNION ALL SELECT body FROM widget_conversation_messages
        UNION ALL SELECT body::jsonb #>> '{message,body}' FROM webhook_deliveries WHERE event = 'chat.message') x WHERE v IS NOT NULL" -F ' ')"
hn_assert_eq "hn_data_keys: only k2 (and the index)" "index k2" "$(hn_psql "SELECT string_agg(id, ' ' ORDER BY id) FROM hn_data_keys")"
hn_assert_cmd "the clear visitor's email key is an HMAC now" hmac_key sessCLEAR001

# k1 leaves the file
grep -v '^k1 ' "$KF" >"$KF.new"
cat "$KF.new" >"$KF"
hn_stop "$API_PID"
start_api "$KF"
req GET "/sessions/sessCLEAR001?widget=$W1"
hn_assert_eq "without k1: the once-clear visitor opened" "Clara Clear|Clara@Example.org|+1 555 0100" \
    "$(j '"\(.visitor_name)|\(.visitor_email)|\(.visitor_phone)"')"
req GET "/sessions/$SID/messages?widget=$W1"
hn_assert_eq "without k1: the thread opened" 2 "$(j '[.messages[].text | select(test("secret"))] | length')"
hn_assert_eq "…and the page title that only looks sealed, as it was (the export)" 1 \
    "$(curl -fsS -H "Authorization: Bearer $TOK" "$BASE/widgets/$W1/export.csv?what=sessions&from=1d" | grep -c -- "$CT")"
curl -fsS -H "Authorization: Bearer $TOK" "$BASE/widgets/$W1/export.csv?what=sessions&from=1d" >"$HN_TMP/s2.csv"
hn_assert_eq "without k1: every identified session of the export opened, none lost" \
    "$(hn_psql "SELECT count(*) FROM widget_visitor_sessions WHERE visitor_name IS NOT NULL") 0" \
    "$(python3 -c 'import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); print(sum(1 for x in r if x["visitor_name"]), sum(1 for x in r for k in ("visitor_name", "visitor_email", "visitor_phone") if x[k].startswith("hnenc:")))' "$HN_TMP/s2.csv")"
hn_assert_eq "…and the sessions identified again during the rotation have their new name" "$n" \
    "$(python3 -c 'import csv,sys; print(sum(1 for x in csv.DictReader(open(sys.argv[1])) if x["visitor_name"].startswith("Again ")))' "$HN_TMP/s2.csv")"
hn_assert_eq "…nothing failed to open" 0 "$(api_metric herenow_data_open_failures_total)"
VC=$(hn_psql "SELECT visitor_id FROM widget_visitor_sessions WHERE session_id = 'sessCLEAR001'")
hn_assert_eq "two visitors: Clara's id is not Ada's, and not banned yet" "visitor-clara visitor-ada 1" \
    "$VC $VID $(banned "$VC" && echo 0 || echo 1)"
req POST "/widgets/$W1/bans" '{"email": "clara@example.org"}'
hn_assert_cmd "a ban by the once-clear email finds its visitor (the email key rotated)" banned "$VC"
hn_stop "$API_PID"

# ---- 5. starts refused against the database's keys -----------------------------------------------
"$CTL" key new --id k3 --with-index >"$HN_TMP/k3.keys"
chmod 600 "$HN_TMP/k3.keys"
out=$(refused "$HN_TMP/k3.keys")
hn_assert_cmd "a file without k2: exit 2, one line ($out)" \
    starts "$out" "2 1 herenow-api: the database holds values sealed under key 'k2', which HERENOW_DATA_KEY_FILE does not have"
grep '^k2 ' "$KF" >"$HN_TMP/k2only.keys"
chmod 600 "$HN_TMP/k2only.keys"
out=$(refused "$HN_TMP/k2only.keys")
hn_assert_cmd "k2 without the file's index line (its email keys would change): exit 2 ($out)" \
    starts "$out" "2 1 herenow-api: the email index key of HERENOW_DATA_KEY_FILE is not the database's"
"$CTL" key new --id k2 >"$HN_TMP/k2other.keys"
chmod 600 "$HN_TMP/k2other.keys"
out=$(refused "$HN_TMP/k2other.keys")
hn_assert_cmd "another key under the id k2: exit 2 ($out)" \
    starts "$out" "2 1 herenow-api: key 'k2' of HERENOW_DATA_KEY_FILE is not the key"
out=$(refused "")
hn_assert_cmd "no key file at all: exit 2 ($out)" \
    starts "$out" "2 1 herenow-api: the database holds values sealed under key 'k2': set HERENOW_DATA_KEY_FILE"

# ---- 6. an altered value -------------------------------------------------------------------------
start_api "$KF"
hn_psql "UPDATE widget_visitor_sessions SET visitor_phone = overlay(visitor_phone placing 'AAAA' from 20 for 4) WHERE session_id = '$SID'" >/dev/null
req GET "/sessions/$SID?widget=$W1"
hn_assert_eq "an altered phone: null, the rest opened" "null|Ada Lovelace" "$(j '"\(.visitor_phone)|\(.visitor_name)"')"
hn_assert_eq "…counted in herenow_data_open_failures_total" 1 "$(api_metric herenow_data_open_failures_total)"
hn_assert_cmd "…logged with its key id" grep -q "event=data_open_failed column=visitor_phone key_id='k2' reason='altered or damaged'" \
    "$HN_TMP/api$n_api.log"

hn_done
