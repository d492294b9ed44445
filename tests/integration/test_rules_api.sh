#!/usr/bin/env bash
# test_rules_api.sh: a widget's rules over the API (docs/RULES.md §2, §6) against
# real PostgreSQL and Redis: the CRUD round trip (the webhook secret answered once,
# the definition stored as given, PUT bumps version and updated_at, enabling clears
# failing_reason), the auth matrix of every route (401, 403, 404, widget-scoped),
# hostile definitions refused with the reason that names their path (catastrophic
# regex, 10,000 conditions, a 1 MB body, webhook URLs that are not HTTP, too long,
# or at the api itself), the 200-rule cap, the export (rules, notes, tags, bans of
# one widget only), and `herenowctl rule` round trip.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_need jq jq

CTL="$HN_BIN/herenowctl"
hn_start_stores
read -r W1 _ <<<"$(hn_widget_add --name "Rules one" --domain example.com)"
read -r W2 _ <<<"$(hn_widget_add --name "Rules two" --domain example.org)"
TOK=$("$CTL" token create --all --name "Ann Admin" 2>/dev/null)
TOK1=$("$CTL" token create --widget "$W1" 2>/dev/null)
TOK2=$("$CTL" token create --widget "$W2" 2>/dev/null)

export HERENOW_PUBLIC_URL=https://track.example.test HERENOW_TOKEN_REFRESH_MS=200
hn_start_api
API_PORT=${HN_API_URL##*:}
BASE="$HN_API_URL/api/visitor-tracking"
BODY="$HN_TMP/body"
# req METHOD PATH [TOKEN] [BODY or @FILE]: status in ST, answer in $BODY (checked
# against docs/openapi.yaml at the end)
req() {
    local data=()
    [ $# -ge 4 ] && data=(--data-binary "$4" -H "Content-Type: application/json")
    hn_oa_req "$BODY" -X "$1" -H "Authorization: Bearer ${3:-$TOK}" "${data[@]}" "$BASE$2"
    ST=$HN_ST
}
j() { jq -r "$1" "$BODY"; }
R=/widgets/$W1/rules

DEF='{"name": "Pricing, 30 s", "enabled": true, "match": "all",
 "conditions": [{"field": "url", "op": "glob", "value": "*/pricing*"},
                {"field": "time_on_page", "op": "gte", "value": 30},
                {"field": "country", "op": "in", "value": ["de", "AT"]}],
 "actions": [{"type": "webhook", "url": "https://hooks.example.com/herenow"},
             {"type": "alert", "text": "A visitor is reading <b>pricing</b>", "sound": true, "notify": true},
             {"type": "invite", "text": "Questions about our plans?", "agent_name": "Ana"}]}'

# --- create, read, list ------------------------------------------------------------------
req GET "$R"
hn_assert_eq "no rules yet" "200 0" "$ST $(j '.rules | length')"
req POST "$R" "$TOK1" "$DEF"
hn_assert_eq "create: 201" 201 "$ST"
ID=$(j .id)
SECRET=$(j .webhook_secret)
hn_assert_eq "create: a 64-hex-digit webhook secret" 1 "$([[ $SECRET =~ ^[0-9a-f]{64}$ ]] && echo 1 || echo 0)"
hn_assert_eq "create: the secret is the stored one" "$SECRET" \
    "$(hn_psql "SELECT webhook_secret FROM widget_rules WHERE id = $ID")"
hn_assert_eq "create: the answer's fields" \
    "$W1|Pricing, 30 s|true|all|3|3|null|0|0|null" \
    "$(j '[.widget_id, .name, .enabled, .match, (.conditions | length), (.actions | length), .failing_reason, .consecutive_failures, .fired, .last_fired_at] | map(tostring) | join("|")')"
hn_assert_eq "create: text stays data (no HTML escaping, no rewriting)" "A visitor is reading <b>pricing</b>" \
    "$(j '.actions[1].text')"
hn_assert_eq "create: country values as given in the definition" '["de","AT"]' "$(jq -c '.conditions[2].value' "$BODY")"
hn_assert_eq "stored: match, conditions, actions in definition; name and enabled in columns" \
    "all|3|3|Pricing, 30 s|t|1" \
    "$(hn_psql "SELECT definition->>'match', jsonb_array_length(definition->'conditions'), jsonb_array_length(definition->'actions'), name, enabled, version FROM widget_rules WHERE id = $ID")"
hn_assert_eq "stored: no name in definition" "f" \
    "$(hn_psql "SELECT definition ? 'name' FROM widget_rules WHERE id = $ID")"
SECOND_SECRET=$(curl -s -H "Authorization: Bearer $TOK" "$BASE$R" | jq -r '.rules[0].webhook_secret')
hn_assert_eq "list: never the secret" null "$SECOND_SECRET"
req GET "$R"
hn_assert_eq "list: one rule" "200 1 $ID" "$ST $(j '.rules | length') $(j '.rules[0].id')"
req GET "$R/$ID" "$TOK1"
hn_assert_eq "get: the rule, no secret" "200 $ID null Pricing, 30 s" "$ST $(j .id) $(j .webhook_secret) $(j .name)"
CREATED=$(j .created_at)

# --- match defaults to all; a minimal rule -----------------------------------------------------
req POST "$R" "$TOK1" '{"name":"m","conditions":[{"field":"visitor","op":"is","value":"returning"}],"actions":[{"type":"alert","text":"back"}]}'
hn_assert_eq "minimal rule: 201, match all, enabled" "201 all true" "$ST $(j .match) $(j .enabled)"
ID2=$(j .id)

# --- replace ---------------------------------------------------------------------------------
PUT_DEF='{"name":"Pricing, any","enabled":false,"match":"any","conditions":[{"field":"page_views","op":"gte","value":3}],"actions":[{"type":"alert","text":"3 pages"}]}'
req PUT "$R/$ID" "$TOK1" "$PUT_DEF"
hn_assert_eq "put: 200, the new definition" "200 Pricing, any false any 1 alert null" \
    "$ST $(j .name) $(j .enabled) $(j .match) $(j '.conditions | length') $(j '.actions[0].type') $(j .webhook_secret)"
hn_assert_eq "put: version bumped, updated_at moved, created_at kept, secret kept" "2|t|t|$SECRET" \
    "$(hn_psql "SELECT version, updated_at > created_at, created_at = (SELECT created_at FROM widget_rules WHERE id = $ID), webhook_secret FROM widget_rules WHERE id = $ID")"
hn_assert_eq "put: the answer's created_at is the creation's" "$CREATED" "$(j .created_at)"
hn_psql "UPDATE widget_rules SET failing_reason = 'webhook failed 5 times in a row', consecutive_failures = 5 WHERE id = $ID" >/dev/null
req PUT "$R/$ID" "$TOK1" "$PUT_DEF"
hn_assert_eq "put, still disabled: failing_reason kept" "200 false webhook failed 5 times in a row 5" \
    "$ST $(j .enabled) $(j .failing_reason) $(j .consecutive_failures)"
req PUT "$R/$ID" "$TOK1" "${PUT_DEF/\"enabled\":false/\"enabled\":true}"
hn_assert_eq "put, enabled: failing_reason and the count cleared" "200 true null 0 4" \
    "$ST $(j .enabled) $(j .failing_reason) $(j .consecutive_failures) $(hn_psql "SELECT version FROM widget_rules WHERE id = $ID")"

# --- auth matrix: every route ------------------------------------------------------------------
ROUTES=("GET $R" "POST $R" "GET $R/$ID" "PUT $R/$ID" "DELETE $R/$ID" "GET /widgets/$W1/rules-export")
for r in "${ROUTES[@]}"; do
    m=${r%% *} p=${r#* }
    hn_oa_req "$BODY" -X "$m" --data-binary "$PUT_DEF" "$BASE$p"
    hn_assert_eq "$r: no token 401" 401 "$HN_ST"
    req "$m" "$p" "hn_bogus_token" "$PUT_DEF"
    hn_assert_eq "$r: bad token 401" 401 "$ST"
    req "$m" "$p" "$TOK2" "$PUT_DEF"
    hn_assert_eq "$r: other widget's token 403" 403 "$ST"
done
for m in GET PUT DELETE; do
    req "$m" "$R/999999" "$TOK1" "$PUT_DEF"
    hn_assert_eq "$m unknown rule: 404" "404 rule not found" "$ST $(j .error)"
    # widget-scoped: rule $ID is widget 1's; under widget 2 it does not exist
    req "$m" "/widgets/$W2/rules/$ID" "$TOK2" "$PUT_DEF"
    hn_assert_eq "$m another widget's rule under its own widget: 404" 404 "$ST"
    req "$m" "$R/abc" "$TOK1" "$PUT_DEF"
    hn_assert_eq "$m ruleId abc: 400" "400 ruleId must be a whole number from 1 to 9223372036854775807" "$ST $(j .error)"
    req "$m" "$R/0" "$TOK1" "$PUT_DEF"
    hn_assert_eq "$m ruleId 0: 400" 400 "$ST"
done
hn_assert_eq "the rule is untouched by widget 2" "Pricing, any" "$(hn_psql "SELECT name FROM widget_rules WHERE id = $ID")"
req GET "/widgets/$W2/rules" "$TOK2"
hn_assert_eq "widget 2 sees none of widget 1's rules" "200 0" "$ST $(j '.rules | length')"
req POST "/widgets/424242/rules" "$TOK" "$PUT_DEF"
hn_assert_eq "create for a widget that does not exist: 404" "404 widget not found" "$ST $(j .error)"
req GET "$R?x=1" "$TOK1"
hn_assert_eq "a query parameter the route does not take: 400" 400 "$ST"
req PATCH "$R/$ID" "$TOK1" "$PUT_DEF"
hn_assert_eq "PATCH: 405" 405 "$ST"

# --- hostile and bad definitions: 400 with the reason ----------------------------------------------
rule_with() {   # rule_with CONDITIONS ACTIONS
    printf '{"name":"h","conditions":[%s],"actions":[%s]}' "$1" "${2:-{\"type\":\"alert\",\"text\":\"x\"\}}"
}
bad() {         # bad DESC BODY REASON-PREFIX
    req POST "$R" "$TOK1" "$2"
    local e
    e=$(jq -r .error "$BODY" 2>/dev/null || echo "?")
    hn_assert_eq "$1: 400 with the reason" "400 $3" "$ST ${e:0:${#3}}"
}
bad "catastrophic regex (a+)+\$" "$(rule_with '{"field":"url","op":"regex","value":"(a+)+$"}')" \
    "conditions[0].value: regex: too costly"
bad "catastrophic regex (x+x+)+y" "$(rule_with '{"field":"title","op":"regex","value":"^(x+x+)+y$"}')" \
    "conditions[0].value: regex: too costly"
bad "a regex that does not compile" "$(rule_with '{"field":"url","op":"regex","value":"(["}')" \
    "conditions[0].value: regex:"
MANY=$(printf '{},%.0s' $(seq 1 9999))
bad "10,000 conditions" "$(rule_with "$MANY{}")" "conditions: at most 20"
bad "21 conditions" "$(rule_with "$(printf '{"field":"url","op":"contains","value":"x"},%.0s' $(seq 1 20)){\"field\":\"url\",\"op\":\"contains\",\"value\":\"x\"}")" \
    "conditions: at most 20"
bad "non-HTTP webhook URL" "$(rule_with '{"field":"url","op":"contains","value":"x"}' '{"type":"webhook","url":"file:///etc/passwd"}')" \
    "actions[0]: webhook url: only http:// and https:// URLs"
HUGE=$(printf 'a%.0s' $(seq 1 2100))
bad "huge webhook URL" "$(rule_with '{"field":"url","op":"contains","value":"x"}' "{\"type\":\"webhook\",\"url\":\"https://h.example/$HUGE\"}")" \
    "actions[0].url: longer than 2048 bytes"
for u in "http://127.0.0.1:$API_PORT/x" "http://localhost:$API_PORT/api" "http://[::1]:$API_PORT/" "http://127.9.9.9:$API_PORT/"; do
    bad "webhook at the api itself ($u)" "$(rule_with '{"field":"url","op":"contains","value":"x"}' "{\"type\":\"webhook\",\"url\":\"$u\"}")" \
        "actions[0]: webhook url: points at this api itself"
done
bad "webhook at HERENOW_PUBLIC_URL" "$(rule_with '{"field":"url","op":"contains","value":"x"}' '{"type":"webhook","url":"https://TRACK.example.test/hook"}')" \
    "actions[0]: webhook url: points at this installation"
bad "webhook with user info" "$(rule_with '{"field":"url","op":"contains","value":"x"}' '{"type":"webhook","url":"https://u:p@h.example/"}')" \
    "actions[0]: webhook url: user info is not allowed"
bad "bad JSON" '{"name": "x", "conditions": [' "body: not well-formed JSON"
bad "an empty body" '' "body: not well-formed JSON"
bad "nested junk" "$(printf '[%.0s' $(seq 1 50))$(printf ']%.0s' $(seq 1 50))" "body: not well-formed JSON"
bad "an array" '[1,2]' "body: must be a JSON object"
bad "name a number" '{"name":5,"conditions":[],"actions":[]}' "name: must be a string"
bad "enabled a string" '{"name":"x","enabled":"yes","conditions":[],"actions":[]}' "enabled: must be true or false"
bad "conditions an object" '{"name":"x","conditions":{},"actions":[]}' "conditions: must be an array"
bad "page_views a string" "$(rule_with '{"field":"page_views","op":"gte","value":"3"}')" \
    "conditions[0].value: an integer 0..100000"
bad "an unknown field" "$(rule_with '{"field":"ip","op":"equals","value":"x"}')" "conditions[0].field: unknown field"
bad "an op the field lacks" "$(rule_with '{"field":"country","op":"regex","value":"x"}')" \
    "conditions[0].op: not an op of the field country"
bad "an unknown member" '{"name":"x","id":3,"conditions":[],"actions":[]}' 'unknown member "id"'
bad "two alert actions" "$(rule_with '{"field":"url","op":"contains","value":"x"}' '{"type":"alert","text":"a"},{"type":"alert","text":"b"}')" \
    "actions[1].type: at most one alert action"
req PUT "$R/$ID" "$TOK1" "$(rule_with '{"field":"url","op":"regex","value":"(a+)+$"}')"
hn_assert_eq "put: a hostile definition refused too" "400 conditions[0].value: regex: too costly" "$ST $(j .error | cut -c1-38)"
hn_assert_eq "put refused: the rule is unchanged" "Pricing, any|4" "$(hn_psql "SELECT name, version FROM widget_rules WHERE id = $ID")"
# a 1 MB body: refused before any handler (libevent: 413, or the connection closed)
head -c 1048576 /dev/zero | tr '\0' 'a' | sed 's/^/{"name":"/; s/$/"}/' >"$HN_TMP/big.json"
req POST "$R" "$TOK1" "@$HN_TMP/big.json"
case $ST in 413|000) hn_ok "a 1 MB body: refused ($ST)" ;; *) hn_fail "a 1 MB body: refused (got $ST)" ;; esac
hn_assert_eq "none of the bad definitions was stored" 2 "$(hn_psql "SELECT count(*) FROM widget_rules")"
hn_assert_eq "the api is still up" ok "$(curl -fsS "$HN_API_URL/livez" >/dev/null && echo ok)"

# --- delete -------------------------------------------------------------------------------------
req DELETE "$R/$ID2" "$TOK1"
hn_assert_eq "delete: 204" 204 "$ST"
req GET "$R/$ID2" "$TOK1"
hn_assert_eq "deleted: 404" 404 "$ST"
req DELETE "$R/$ID2" "$TOK1"
hn_assert_eq "delete again: 404" 404 "$ST"

# --- the 200-rule cap ------------------------------------------------------------------------------
# 198 more rows (199 in all) straight into the table; the API makes the 200th and refuses the 201st
hn_psql "INSERT INTO widget_rules (widget_id, name, definition, webhook_secret)
         SELECT $W1, 'bulk ' || i, '{\"match\":\"all\",\"conditions\":[],\"actions\":[]}', 'x' FROM generate_series(1, 198) i" >/dev/null
req POST "$R" "$TOK1" "$PUT_DEF"
hn_assert_eq "the 200th rule: 201" 201 "$ST"
req POST "$R" "$TOK1" "$PUT_DEF"
hn_assert_eq "the 201st rule: 409 with the reason" "409 rules: this widget has 200 already, the most it may have" "$ST $(j .error)"
hn_assert_eq "still 200 rules" 200 "$(hn_psql "SELECT count(*) FROM widget_rules WHERE widget_id = $W1")"
req POST "/widgets/$W2/rules" "$TOK2" "$PUT_DEF"
hn_assert_eq "the cap is per widget: widget 2 still may" 201 "$ST"
W2RULE=$(j .id)
# parallel creates at the cap: never more than 200
hn_psql "DELETE FROM widget_rules WHERE widget_id = $W1 AND name LIKE 'bulk 1%'" >/dev/null
LEFT=$((200 - $(hn_psql "SELECT count(*) FROM widget_rules WHERE widget_id = $W1")))
PIDS=()
for i in $(seq 1 $((LEFT + 10))); do
    curl -s -o /dev/null -X POST -H "Authorization: Bearer $TOK1" --data-binary "$PUT_DEF" "$BASE$R" &
    PIDS+=($!)
done
wait "${PIDS[@]}"     # (a bare wait would wait for the api too)
hn_assert_eq "$((LEFT + 10)) creates at once for $LEFT places: exactly 200 rules" 200 \
    "$(hn_psql "SELECT count(*) FROM widget_rules WHERE widget_id = $W1")"

# --- export --------------------------------------------------------------------------------------
hn_psql "DELETE FROM widget_rules WHERE widget_id = $W1 AND id <> $ID" >/dev/null
hn_psql "INSERT INTO visitor_notes (widget_id, subject_kind, subject, body, author) VALUES
         ($W1, 'visitor', 'v-1', 'Asked about <script>pricing</script>', 'Ann'),
         ($W1, 'email', 'bob@example.com', 'VIP', NULL),
         ($W2, 'visitor', 'v-2', 'not widget 1', 'Zed')" >/dev/null
hn_psql "INSERT INTO visitor_tags (widget_id, subject_kind, subject, tag) VALUES
         ($W1, 'visitor', 'v-1', 'vip'), ($W1, 'visitor', 'v-1', 'lead'), ($W1, 'email', 'bob@example.com', 'vip'),
         ($W2, 'visitor', 'v-2', 'other')" >/dev/null
hn_psql "INSERT INTO visitor_bans (widget_id, subject_kind, subject, block_tracking, reason, author) VALUES
         ($W1, 'visitor', 'v-9', true, 'spam', 'Ann'), ($W2, 'visitor', 'v-8', false, NULL, NULL)" >/dev/null
req GET "/widgets/$W1/rules-export" "$TOK1"
hn_assert_eq "export: 200, one rule, two notes, two tagged subjects, one ban" "200 1 2 2 1" \
    "$ST $(j '.rules | length') $(j '.notes | length') $(j '.tags | length') $(j '.bans | length')"
hn_assert_eq "export: the rule, no secret" "$ID Pricing, any null" "$(j '.rules[0].id') $(j '.rules[0].name') $(j '.rules[0].webhook_secret')"
hn_assert_eq "export: notes as data, with their subjects" "v-1|null|Asked about <script>pricing</script>|Ann;null|bob@example.com|VIP|null" \
    "$(j '[.notes[] | [.visitor, .email, .body, .author] | map(tostring) | join("|")] | join(";")')"
hn_assert_eq "export: tags grouped by subject (emails first)" 'bob@example.com:vip;v-1:lead,vip' \
    "$(j '[.tags[] | "\(.visitor // .email):\(.tags | join(","))"] | join(";")')"
hn_assert_eq "export: the ban" "v-9 true spam Ann" "$(j '.bans[0] | "\(.visitor) \(.block_tracking) \(.reason) \(.author)"')"
req GET "/widgets/$W2/rules-export" "$TOK2"
hn_assert_eq "export of widget 2: only its own" "200 1 1 1 1 not widget 1" \
    "$ST $(j '.rules | length') $(j '.notes | length') $(j '.tags | length') $(j '.bans | length') $(j '.notes[0].body')"

# --- herenowctl rule ----------------------------------------------------------------------------------
out=$(echo "$DEF" | "$CTL" rule add "$W2" 2>&1)
CID=$(echo "$out" | awk '/^id:/ { print $2 }')
hn_assert_eq "rule add (stdin): an id and the secret once" 1 \
    "$([[ $CID =~ ^[0-9]+$ ]] && echo "$out" | grep -qE '^webhook_secret: [0-9a-f]{64}$' && echo 1 || echo 0)"
req GET "/widgets/$W2/rules/$CID" "$TOK2"
hn_assert_eq "the API sees the rule herenowctl added" "200 Pricing, 30 s 3" "$ST $(j .name) $(j '.conditions | length')"
echo "$PUT_DEF" >"$HN_TMP/rule.json"
CID2=$("$CTL" rule add "$W2" --file "$HN_TMP/rule.json" | awk '/^id:/ { print $2 }')
hn_assert_eq "rule add --file" "Pricing, any" "$(hn_psql "SELECT name FROM widget_rules WHERE id = ${CID2:-0}")"
hn_assert_eq "rule list: the widget's three rules" "$W2RULE $CID $CID2" \
    "$("$CTL" rule list "$W2" | awk 'NR > 1 { printf "%s ", $1 }' | sed 's/ $//')"
hn_assert_eq "rule show: the definition" "Pricing, 30 s" "$("$CTL" rule show "$W2" "$CID" | jq -r .name)"
hn_psql "UPDATE widget_rules SET failing_reason = 'x', consecutive_failures = 5, enabled = false WHERE id = $CID" >/dev/null
"$CTL" rule enable "$W2" "$CID" >/dev/null
hn_assert_eq "rule enable: enabled, failing_reason cleared, version bumped" "t||0|2" \
    "$(hn_psql "SELECT enabled, failing_reason, consecutive_failures, version FROM widget_rules WHERE id = $CID")"
"$CTL" rule disable "$W2" "$CID" >/dev/null
hn_assert_eq "rule disable" "f|3" "$(hn_psql "SELECT enabled, version FROM widget_rules WHERE id = $CID")"
set +e
err=$(echo '{"name":"x","conditions":[{"field":"url","op":"regex","value":"(a+)+$"}],"actions":[{"type":"alert","text":"x"}]}' |
      "$CTL" rule add "$W2" 2>&1)
rc=$?
set -e
hn_assert_eq "rule add: a hostile definition refused with the same reason, exit 1" "1 conditions[0].value: regex: too costly" \
    "$rc $(echo "$err" | grep -o 'conditions\[0\].value: regex: too costly')"
set +e
"$CTL" rule show "$W1" "$CID" >/dev/null 2>&1
rc=$?
set -e
hn_assert_eq "rule show under another widget: not found (exit 1)" 1 "$rc"
"$CTL" rule rm "$W2" "$CID" >/dev/null
hn_assert_eq "rule rm" 0 "$(hn_psql "SELECT count(*) FROM widget_rules WHERE id = $CID")"
set +e
"$CTL" rule rm "$W2" "$CID" >/dev/null 2>&1
rc=$?
set -e
hn_assert_eq "rule rm again: exit 1" 1 "$rc"

# --- herenowctl webhook (the lifecycle webhook) ------------------------------------------------------
out=$("$CTL" webhook set "$W2" --url https://hooks.example.com/life --event session.started --event chat.message)
hn_assert_cmd "webhook set: the secret printed once, enabled" \
    bash -c "grep -qE '^webhook_secret: [0-9A-Za-z]{40}$' <<<'$out' && grep -q '(enabled)' <<<'$out'"
out=$("$CTL" webhook set "$W2" --url https://hooks.example.com/life2 --event chat.closed --disabled)
hn_assert_cmd "webhook set again: no secret, disabled" bash -c "! grep -q secret <<<'$out' && grep -q '(disabled)' <<<'$out'"
hn_assert_eq "webhook show" "url: https://hooks.example.com/life2|events: chat.closed|enabled: false" \
    "$("$CTL" webhook show "$W2" | paste -sd'|')"
req GET "/widgets/$W2/webhooks"
hn_assert_eq "… the API reads what herenowctl set" '200 https://hooks.example.com/life2 ["chat.closed"] false' \
    "$ST $(j .url) $(jq -c .events "$BODY") $(j .enabled)"
set +e
err=$("$CTL" webhook set "$W2" --url https://TRACK.example.test/hook --event chat.closed 2>&1)
rc=$?
err2=$("$CTL" webhook set "$W2" --url https://hooks.example.com/x --event chat.opened 2>&1)
rc2=$?
set -e
hn_assert_eq "webhook set: HERENOW_PUBLIC_URL refused (exit 2, the API's reason)" \
    "2 webhook url: points at this installation (HERENOW_PUBLIC_URL)" \
    "$rc $(grep -o 'webhook url: points at this installation (HERENOW_PUBLIC_URL)' <<<"$err")"
hn_assert_eq "webhook set: an unknown event refused (exit 2)" "2 1" "$rc2 $(grep -c -- '--event chat.opened' <<<"$err2")"
"$CTL" webhook rm "$W2" >/dev/null
set +e
"$CTL" webhook show "$W2" >/dev/null 2>&1
rc=$?
set -e
hn_assert_eq "webhook rm: gone (show exits 1)" 1 "$rc"

hn_done
