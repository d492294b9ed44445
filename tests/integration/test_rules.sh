#!/usr/bin/env bash
# test_rules.sh: the rules engine (docs/RULES.md §1–3) against real Redis,
# PostgreSQL, a collector and two herenow-api processes sharing them. Rules
# go in with SQL (INSERT INTO widget_rules); visits are UDP beacons
# (herenowctl send, from a trusted relay so that ip and ua are believed).
#
#   every condition type alone, and combined with all / any, against
#   scripted visits (a returning visitor, a UTM campaign visitor); a 3 s
#   time_on_page rule fires when the time is reached with no further
#   beacon, once; both apis evaluate every session and fire once (one
#   rule_firings row, one outbox row, one conversation); the alert reaches
#   a live stream of each api; the auto invitation reaches the visitor's
#   downlink and is skipped (counted) for a visitor already chatting, a
#   banned one, and past the per-session and per-visitor caps; lifecycle
#   webhooks session.started / session.ended once per session; /metrics.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

CTL="$HN_BIN/herenowctl"
hn_start_stores
read -r W K <<<"$(hn_widget_add --name "Rules shop" --domain shop.example --chat on)"
read -r W2 K2 <<<"$(hn_widget_add --name "Later shop" --domain later.example)"
TOK=$("$CTL" token create --all --name rules-test 2>/dev/null)
perl "$HN_ROOT/tests/tools/mkmmdb.pl" "$HN_TMP/geo.mmdb"

HTTP=$(hn_free_port) UDP=$(hn_free_port) ADMIN=$(hn_free_port)
export HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_TRUSTED_RELAYS=127.0.0.1/32 HERENOW_GEOIP_DB=$HN_TMP/geo.mmdb HERENOW_THREADS=1
# one shard: records reach the engines in the order they were sent (the
# marker below is the last one each engine evaluates)
export HERENOW_STREAM_SHARDS=1 HERENOW_WIDGET_REFRESH_MS=200 HERENOW_RULES_RELOAD_MS=200
export HERENOW_RULE_INVITES_PER_VISITOR=1
# the engines wait 100 ms after a read before the next (50 by default): a
# visit sent right after another beacon that woke them is one read (below)
export HERENOW_RULES_READ_MS=100
# the engines' far timer list from 1 s ahead (60 s by default): the 3 s
# time_on_page timer below waits there, then in the heap (test_rule_e2e's
# 30 s one goes to the heap straight away)
export HN_RULES_FAR_MS=1000
hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
COLLECTOR=http://127.0.0.1:$HTTP

q() { hn_psql "$1"; }
# rule NAME DEFINITION_JSON: inserts an enabled rule, prints its id
rule() {
    q "WITH r AS (INSERT INTO widget_rules (widget_id, name, definition, webhook_secret) VALUES ($W, '$1', '$2'::jsonb, 'secret') RETURNING id) SELECT id FROM r"
}
ALERT='{"type": "alert", "text": "seen", "sound": true, "notify": false}'
cond() { printf '{"match": "%s", "conditions": [%s], "actions": [%s]}' "$1" "$2" "${3:-$ALERT}"; }
R_URL=$(rule url "$(cond all '{"field": "url", "op": "glob", "value": "*/pricing*"}')")
R_TITLE=$(rule title "$(cond all '{"field": "title", "op": "contains", "value": "Checkout"}')")
R_REF=$(rule referrer "$(cond all '{"field": "referrer", "op": "starts_with", "value": "https://www.google."}')")
R_LAND=$(rule landing "$(cond all '{"field": "landing_page", "op": "equals", "value": "https://shop.example/welcome"}')")
R_UTM=$(rule utm "$(cond all '{"field": "utm_campaign", "op": "equals", "value": "spring sale"}, {"field": "utm_source", "op": "equals", "value": "news"}')")
R_COUNTRY=$(rule country "$(cond all '{"field": "country", "op": "in", "value": ["JP"]}')")
R_LANG=$(rule language "$(cond all '{"field": "language", "op": "equals", "value": "pt-BR"}')")
R_RET=$(rule returning "$(cond all '{"field": "visitor", "op": "is", "value": "returning"}')")
R_PV=$(rule pageviews "$(cond all '{"field": "page_views", "op": "gte", "value": 3}')")
R_EVENT=$(rule event "$(cond all '{"field": "event", "op": "in", "value": ["signup", "trial"]}')")
R_SLOW=$(rule slow "$(cond all '{"field": "url", "op": "contains", "value": "/slow"}, {"field": "time_on_page", "op": "gte", "value": 3}')")
R_ALL=$(rule combined "$(cond all '{"field": "url", "op": "contains", "value": "/docs"}, {"field": "country", "op": "in", "value": ["US"]}, {"field": "page_views", "op": "gte", "value": 2}')")
R_ANY=$(rule either "$(cond any '{"field": "event", "op": "equals", "value": "wave"}, {"field": "url", "op": "regex", "value": "(?i)/HELLO$"}')")
R_UA=$(rule ua "$(cond all '{"field": "browser", "op": "contains", "value": "Firefox"}, {"field": "os", "op": "in", "value": ["Windows"]}')")
R_DEV=$(rule device "$(cond all '{"field": "device", "op": "in", "value": ["mobile"]}, {"field": "url", "op": "contains", "value": "/m/"}')")
R_HOOK=$(rule hook "$(cond all '{"field": "url", "op": "contains", "value": "/hook"}' '{"type": "webhook", "url": "http://127.0.0.1:9/hook"}, {"type": "alert", "text": "hooked"}')")
R_INV=$(rule invite "$(cond all '{"field": "url", "op": "contains", "value": "/chat-me"}' '{"type": "invite", "text": "Questions about <b>plans</b>?", "agent_name": "Ana"}')")
R_INV2=$(rule invite2 "$(cond all '{"field": "url", "op": "contains", "value": "/chat-again"}' '{"type": "invite", "text": "Still there?"}')")
R_MARK=$(rule marker "$(cond all '{"field": "event", "op": "equals", "value": "marker"}' '{"type": "alert", "text": "marker"}')")
NRULES=19
q "INSERT INTO widget_webhooks (widget_id, url, secret, events) VALUES ($W, 'http://127.0.0.1:9/life', 'secret', '{session.started,session.ended}')" >/dev/null

# ---- two apis on the same Redis and PostgreSQL ---------------------------------------------
hn_start_api --drain on --drain-block-ms 100
A=$HN_API_URL
PB=$(hn_free_port)
hn_spawn apib env HERENOW_API_LISTEN="127.0.0.1:$PB" HERENOW_DRAIN=off "$HN_BIN/herenow-api"
B=http://127.0.0.1:$PB
hn_wait_for 10 "second api answers /livez" curl -fsS "$B/livez"
metric() { curl -fsS "$1/metrics" | awk -v m="$2" '$1 == m { v = $2 } END { print v + 0 }'; }
loaded_n() { [ "$(metric "$1" herenow_rules_loaded)" = "$2" ]; }
loaded() { loaded_n "$1" "$NRULES"; }
hn_wait_for 10 "api A's engine loaded the $NRULES rules" loaded "$A"
hn_wait_for 10 "api B's engine loaded the $NRULES rules" loaded "$B"

# a live stream of each api (alerts are not replayed: opened before any visit)
hn_spawn streamA curl -sN -H "Authorization: Bearer $TOK" "$A/api/visitor-tracking/widgets/$W/active-visitors/stream"
hn_spawn streamB curl -sN -H "Authorization: Bearer $TOK" "$B/api/visitor-tracking/widgets/$W/active-visitors/stream"
snap() { grep -q '^event: snapshot' "$HN_TMP/$1.log"; }
hn_wait_for 10 "api A's stream is open" snap streamA
hn_wait_for 10 "api B's stream is open" snap streamB

# the visitor's chat downlink of the session the invite rule fires for
hn_spawn down curl -sN "$COLLECTOR/v?k=$K&s=sessINVITE1"
hn_wait_for 10 "the invited visitor's downlink is ready" grep -q '^: ready' "$HN_TMP/down.log"

# ---- the visits --------------------------------------------------------------------------------
send() { "$CTL" send --to "127.0.0.1:$UDP" --key "$K" "$@" >/dev/null; }
S=https://shop.example
MOBILE_UA='Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36'
DESKTOP_UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
SLOW_AT=$(($(date +%s%N) / 1000000))
send --session sessSLOW001 --url "$S/slow/page" --vid vSLOW001
send --session sessURL0001 --url "$S/pricing/team" --vid vURL
send --session sessNOURL01 --url "$S/about" --title "About us" --vid vNOURL
send --session sessTITLE01 --url "$S/cart" --title "Checkout - Shop" --vid vTITLE01
send --session sessREF0001 --url "$S/x" --referrer "https://www.google.com/search?q=shop" --vid vREF0001
send --session sessREF0002 --url "$S/x" --referrer "https://duckduckgo.com/" --vid vREF0002
send --session sessLAND001 --url "$S/welcome" --vid vLAND001
send --session sessLAND001 --seq 2 --url "$S/next" --vid vLAND001
send --session sessUTM0001 --url "$S/promo?utm_source=news&utm_medium=email&utm_campaign=spring+sale" --vid vUTM0001
send --session sessUTM0002 --url "$S/promo?utm_source=news&utm_campaign=winter" --vid vUTM0002
send --session sessJP00001 --url "$S/jp" --ip 2001:db8::7 --ua "$DESKTOP_UA" --vid vJP00001
send --session sessDE00001 --url "$S/de" --ip 203.0.113.9 --ua "$DESKTOP_UA" --vid vDE00001
send --session sessLANG001 --url "$S/l" --lang pt-BR --vid vLANG001
send --session sessRET0001 --url "$S/r" --vid vRETURN
send --session sessRET0002 --url "$S/r" --vid vRETURN
send --session sessPV00001 --url "$S/p1" --vid vPV00001
send --session sessPV00001 --seq 2 --url "$S/p2" --vid vPV00001
send --session sessPV00001 --seq 3 --url "$S/p3" --vid vPV00001
send --session sessPV00002 --url "$S/p1" --vid vPV00002
send --session sessPV00002 --seq 2 --url "$S/p2" --vid vPV00002
send --session sessEV00001 --url "$S/e" --vid vEV00001
send --session sessEV00001 --seq 2 --type ev --event trial --vid vEV00001
send --session sessEV00002 --url "$S/e" --vid vEV00002
send --session sessEV00002 --seq 2 --type ev --event newsletter --vid vEV00002
send --session sessALL0001 --url "$S/docs/a" --ip 198.51.100.4 --ua "$DESKTOP_UA" --vid vALL0001
send --session sessALL0001 --seq 2 --url "$S/docs/b" --ip 198.51.100.4 --ua "$DESKTOP_UA" --vid vALL0001
send --session sessALL0002 --url "$S/docs/a" --ip 203.0.113.4 --ua "$DESKTOP_UA" --vid vALL0002
send --session sessALL0002 --seq 2 --url "$S/docs/b" --ip 203.0.113.4 --ua "$DESKTOP_UA" --vid vALL0002
send --session sessANY0001 --url "$S/say/hello" --vid vANY0001
send --session sessANY0002 --url "$S/z" --vid vANY0002
send --session sessANY0002 --seq 2 --type ev --event wave --vid vANY0002
send --session sessANY0003 --url "$S/hello/there" --vid vANY0003
FIREFOX_UA='Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0'
send --session sessUA00001 --url "$S/u" --ua "$FIREFOX_UA"
send --session sessUA00002 --url "$S/u" --ua "$DESKTOP_UA"
send --session sessDEV0001 --url "$S/m/shop" --ua "$MOBILE_UA" --vid vDEV0001
send --session sessDEV0002 --url "$S/m/shop" --ua "$DESKTOP_UA" --vid vDEV0002
send --session sessHOOK001 --url "$S/hook/me" --vid vHOOK
send --session sessHOOK001 --seq 2 --type end --vid vHOOK001
# invitations: sent; already chatting; banned; per-session cap; per-visitor cap
send --session sessINVITE1 --url "$S/chat-me" --vid vINVITE
send --session sessINVITE1 --seq 2 --url "$S/chat-again" --vid vINVITE
hn_wait_for 10 "the chatting session is live" bash -c "[ -n \"\$(redis-cli -p $HN_REDIS_PORT ZSCORE 'hn:live:{$W}' sessINVITE1)\" ]"
send --session sessCHAT001 --url "$S/start" --vid vCHAT
hn_wait_for 10 "the chatting session is live" bash -c "[ -n \"\$(redis-cli -p $HN_REDIS_PORT ZSCORE 'hn:live:{$W}' sessCHAT001)\" ]"
hn_assert_eq "an agent invites sessCHAT001 (201)" 201 "$(hn_oa_curl "$HN_TMP/inv.json" -X POST -H "Authorization: Bearer $TOK" \
    -H 'Content-Type: application/json' -d '{"text": "Hi from an agent"}' "$A/api/visitor-tracking/sessions/sessCHAT001/chat?widget=$W")"
send --session sessCHAT001 --seq 2 --url "$S/chat-me" --vid vCHAT
q "INSERT INTO visitor_bans (widget_id, subject_kind, subject) VALUES ($W, 'visitor', 'vBANNED')" >/dev/null
send --session sessBAN0001 --url "$S/chat-me" --vid vBANNED
send --session sessCAP0001 --url "$S/chat-me" --vid vINVITE
send --session sessMARK001 --url "$S/end" --type ev --event marker --vid vMARK001
MARK_TEXT='"text":"marker"'
marked() { grep -q "$MARK_TEXT" "$HN_TMP/$1.log"; }
hn_wait_for 20 "the marker's alert reached api A's stream (both engines evaluated every visit)" marked streamA
hn_wait_for 20 "the marker's alert reached api B's stream" marked streamB

# ---- which rule fired for which session --------------------------------------------------------
fired() { q "SELECT coalesce(string_agg(session_id, ' ' ORDER BY session_id), '') FROM rule_firings WHERE rule_id = $1"; }
hn_assert_eq "url glob */pricing*: the pricing visit only" sessURL0001 "$(fired "$R_URL")"
hn_assert_eq "title contains Checkout" sessTITLE01 "$(fired "$R_TITLE")"
hn_assert_eq "referrer starts_with https://www.google." sessREF0001 "$(fired "$R_REF")"
hn_assert_eq "landing_page equals …/welcome (the landing stays after a second page)" sessLAND001 "$(fired "$R_LAND")"
hn_assert_eq "utm_campaign (percent-decoded) and utm_source from the landing page's query" sessUTM0001 "$(fired "$R_UTM")"
hn_assert_eq "country in [JP] (GeoIP of the relayed ip)" sessJP00001 "$(fired "$R_COUNTRY")"
hn_assert_eq "language equals pt-BR" sessLANG001 "$(fired "$R_LANG")"
hn_assert_eq "visitor is returning: the visitors' second sessions only" "sessCAP0001 sessRET0002" "$(fired "$R_RET")"
hn_assert_eq "page_views gte 3" sessPV00001 "$(fired "$R_PV")"
hn_assert_eq "event in [signup, trial]" sessEV00001 "$(fired "$R_EVENT")"
hn_assert_eq "all of url, country and page_views" sessALL0001 "$(fired "$R_ALL")"
hn_assert_eq "any of event wave, url regex (?i)/HELLO\$" "sessANY0001 sessANY0002" "$(fired "$R_ANY")"
hn_assert_eq "browser contains Firefox, os in [Windows] (the collector's user-agent parse)" sessUA00001 "$(fired "$R_UA")"
hn_assert_eq "device in [mobile] (with a url)" sessDEV0001 "$(fired "$R_DEV")"
hn_assert_eq "hn:vfirst keeps the visitor's first session (30 days)" "sessRET0001" "$(hn_redis GET "hn:vfirst:{$W}:vRETURN")"
ttl=$(hn_redis TTL "hn:vfirst:{$W}:vRETURN")
hn_assert_cmd "hn:vfirst's TTL is HERENOW_RETURNING_DAYS (30 d)" test "$ttl" -gt 2591000
# no further beacon of the slow session: its timer fires it
slow_fired() { [ "$(q "SELECT count(*) FROM rule_firings WHERE rule_id = $R_SLOW")" = 1 ]; }
hn_wait_for 10 "time_on_page gte 3 fires with no further beacon" slow_fired
slow_ms=$(q "SELECT floor(extract(epoch FROM fired_at) * 1000)::bigint FROM rule_firings WHERE rule_id = $R_SLOW")
hn_assert_cmd "… when the 3 s were reached, not before ($((slow_ms - SLOW_AT)) ms after the page view was sent)" test $((slow_ms - SLOW_AT)) -ge 2900
hn_assert_cmd "… and soon after (under 3 s + 3 s)" test $((slow_ms - SLOW_AT)) -lt 6000
alerts() { grep -c "\"rule_id\":$2,.*\"session_id\":\"$3\"" "$HN_TMP/$1.log" || true; }
slow_alerted() { [ "$(alerts streamA "$R_SLOW" sessSLOW001)" -ge 1 ] && [ "$(alerts streamB "$R_SLOW" sessSLOW001)" -ge 1 ]; }
hn_wait_for 5 "the slow rule's alert reached both streams" slow_alerted
lost=$(($(metric "$A" herenow_rule_claims_lost_total) + $(metric "$B" herenow_rule_claims_lost_total)))
hn_assert_eq "both engines matched every firing: one claimed it, the other lost the claim" \
    "$(q "SELECT count(*) FROM rule_firings")" "$lost"

# ---- once across two engines; the alert on every api -----------------------------------------
hn_assert_eq "two engines: one firing per (rule, session) (pricing)" 1 "$(q "SELECT count(*) FROM rule_firings WHERE rule_id = $R_URL")"
hn_assert_eq "widget_rules.fired counts it once" 1 "$(q "SELECT fired FROM widget_rules WHERE id = $R_URL")"
hn_assert_eq "api A's stream: the pricing alert once" 1 "$(alerts streamA "$R_URL" sessURL0001)"
hn_assert_eq "api B's stream: the pricing alert once" 1 "$(alerts streamB "$R_URL" sessURL0001)"
hn_assert_eq "the slow alert once per stream" "1 1" "$(alerts streamA "$R_SLOW" sessSLOW001) $(alerts streamB "$R_SLOW" sessSLOW001)"
line=$(grep "\"rule_id\":$R_URL," "$HN_TMP/streamA.log")
hn_assert_eq "the alert's JSON (docs/RULES.md §3)" \
    "$R_URL|url|seen|sessURL0001|vURL|https://shop.example/pricing/team|true|false" \
    "$(sed 's/^data: //' <<<"$line" | jq -r '[.rule_id, .rule, .text, .session_id, .visitor_id, .url, .sound, .notify] | map(tostring) | join("|")')"
hn_assert_cmd "the alert's at is an ISO time" bash -c "sed 's/^data: //' <<<'$line' | jq -e '.at | test(\"^[0-9-]+T[0-9:.]+Z$\")'"
hn_assert_eq "the alert event has no id (not replayed)" "event: alert" "$(grep -B1 "\"rule_id\":$R_URL," "$HN_TMP/streamA.log" | head -1)"

# ---- the webhook action: one outbox row, its body ---------------------------------------------
hn_assert_eq "webhook: one outbox row of the rule" "1 rule.fired sessHOOK001 vHOOK http://127.0.0.1:9/hook" \
    "$(q "SELECT count(*) || ' ' || min(event) || ' ' || min(subject) || ' ' || min(visitor_id) || ' ' || min(url) FROM webhook_deliveries WHERE rule_id = $R_HOOK")"
body=$(q "SELECT body FROM webhook_deliveries WHERE rule_id = $R_HOOK")
hn_assert_eq "webhook body (docs/RULES.md §3): its own id, rule, session" \
    "$(q "SELECT id FROM webhook_deliveries WHERE rule_id = $R_HOOK")|rule.fired|$W|$R_HOOK|hook|sessHOOK001|vHOOK|https://shop.example/hook/me|1" \
    "$(jq -r '[.id, .event, .widget_id, .rule.id, .rule.name, .session.session_id, .session.visitor_id, .session.url, .session.page_views] | map(tostring) | join("|")' <<<"$body")"

# ---- lifecycle webhooks: once per session across both engines ---------------------------------
life() { q "SELECT count(*) FROM webhook_deliveries WHERE widget_id = $W AND rule_id IS NULL AND event = '$1' AND subject = '$2'"; }
hn_assert_eq "session.started once for a session (two engines)" 1 "$(life session.started sessURL0001)"
hn_assert_eq "session.started of the ended session" 1 "$(life session.started sessHOOK001)"
hn_assert_eq "session.ended once at its end" 1 "$(life session.ended sessHOOK001)"
hn_assert_eq "no session.ended for a session still live" 0 "$(life session.ended sessURL0001)"
hn_assert_eq "a lifecycle body names its event and session" "session.ended sessHOOK001" \
    "$(q "SELECT body FROM webhook_deliveries WHERE event = 'session.ended' AND subject = 'sessHOOK001'" | jq -r '"\(.event) \(.session.session_id)"')"

# ---- the auto invitation -------------------------------------------------------------------------
hn_wait_for 10 "the rule's invitation reached the visitor's downlink" grep -q '^event: invite' "$HN_TMP/down.log"
# sessINVITE1 matches two invite rules; the first one to reach the visitor's lock is sent (the
# two engines may claim one each), the other is skipped by the per-session cap
hn_assert_cmd "… with one rule's text and agent name (the rule's, else the widget's default)" grep -qxE \
    'Questions about <b>plans</b>\?\|Ana|Still there\?\|Agent' <(grep -A1 '^event: invite' "$HN_TMP/down.log" | sed -n 's/^data: //p' | jq -r '"\(.text)|\(.agent)"')
hn_assert_eq "… one invitation on the downlink" 1 "$(grep -c '^event: invite' "$HN_TMP/down.log")"
hn_assert_eq "one conversation, started_by rule, invited" "1 rule invited" \
    "$(q "SELECT count(*) || ' ' || min(started_by) || ' ' || min(state) FROM widget_conversations WHERE session_id = 'sessINVITE1'")"
hn_assert_eq "already chatting: no rule conversation for sessCHAT001" "agent" \
    "$(q "SELECT string_agg(started_by, ' ') FROM widget_conversations WHERE session_id = 'sessCHAT001'")"
hn_assert_eq "banned visitor: no conversation" 0 "$(q "SELECT count(*) FROM widget_conversations WHERE session_id = 'sessBAN0001'")"
hn_assert_eq "per-session cap: the second invite rule fired but sent nothing" "1 1" \
    "$(q "SELECT (SELECT count(*) FROM rule_firings WHERE rule_id = $R_INV2 AND session_id = 'sessINVITE1') || ' ' || count(*) FROM widget_conversations WHERE session_id = 'sessINVITE1'")"
hn_assert_eq "per-visitor cap (1 in 24 h): the visitor's next session gets none" 0 \
    "$(q "SELECT count(*) FROM widget_conversations WHERE session_id = 'sessCAP0001'")"
skipped() { echo $(($(metric "$A" "herenow_rule_invites_skipped_total{reason=\"$1\"}") + $(metric "$B" "herenow_rule_invites_skipped_total{reason=\"$1\"}"))); }
hn_assert_eq "skips counted by reason: chatting banned session_cap visitor_cap" "1 1 1 1" \
    "$(skipped chatting) $(skipped banned) $(skipped session_cap) $(skipped visitor_cap)"
hn_assert_eq "one invite sent by the two engines" 1 \
    "$(($(metric "$A" 'herenow_rule_firings_total{action="invite"}') + $(metric "$B" 'herenow_rule_firings_total{action="invite"}')))"

# ---- metrics -----------------------------------------------------------------------------------
hn_assert_cmd "evaluations counted" test "$(metric "$A" herenow_rule_evaluations_total)" -gt 20
hn_assert_cmd "sessions kept" test "$(metric "$B" herenow_rules_sessions)" -gt 20
hn_assert_cmd "alerts counted on both" test "$(metric "$A" 'herenow_rule_firings_total{action="alert"}')" -ge 15 -a \
    "$(metric "$B" 'herenow_rule_firings_total{action="alert"}')" -ge 15
hn_assert_eq "one webhook firing between the two" 1 \
    "$(($(metric "$A" 'herenow_rule_firings_total{action="webhook"}') + $(metric "$B" 'herenow_rule_firings_total{action="webhook"}')))"

# ---- a rule disabled is dropped; a rule added applies to live sessions --------------------------
q "UPDATE widget_rules SET enabled = false, version = version + 1 WHERE id = $R_MARK" >/dev/null
hn_wait_for 10 "a disabled rule is dropped" loaded_n "$A" $((NRULES - 1))
# (this one through the API: POST …/rules)
hn_assert_eq "POST …/rules: 201" 201 "$(hn_oa_curl "$HN_TMP/late.json" -X POST -H "Authorization: Bearer $TOK" \
    -H 'Content-Type: application/json' -d '{"name": "late", "conditions": [{"field": "url", "op": "equals", "value": "https://shop.example/about"}], "actions": [{"type": "alert", "text": "late"}]}' \
    "$A/api/visitor-tracking/widgets/$W/rules")"
R_LATE=$(jq -r .id "$HN_TMP/late.json")
late() { [ "$(fired "$R_LATE")" = sessNOURL01 ]; }
hn_wait_for 10 "a rule added later fires for a session already live" late

# ---- a widget's first rule: its sessions already live are read back --------------------------
"$CTL" send --to "127.0.0.1:$UDP" --key "$K2" --session sessLATER01 --vid vLATER1 --url https://later.example/a >/dev/null
"$CTL" send --to "127.0.0.1:$UDP" --key "$K2" --session sessLATER01 --vid vLATER1 --seq 2 --url https://later.example/b >/dev/null
"$CTL" send --to "127.0.0.1:$UDP" --key "$K2" --session sessLATER02 --vid vLATER2 --url https://later.example/a >/dev/null
live2() { [ "$(hn_redis ZCARD "hn:live:{$W2}")" = 2 ]; }
hn_wait_for 10 "the later widget's two sessions are live" live2
R_W2=$(q "WITH r AS (INSERT INTO widget_rules (widget_id, name, definition, webhook_secret) VALUES ($W2, 'second page', '$(cond all '{"field": "page_views", "op": "gte", "value": 2}, {"field": "time_on_site", "op": "gte", "value": 1}')'::jsonb, 's') RETURNING id) SELECT id FROM r")
w2_fired() { [ "$(fired "$R_W2")" = sessLATER01 ]; }
hn_wait_for 10 "page_views gte 2 and time_on_site gte 1 of a session seen before its widget had rules" w2_fired

# ---- the engines' PostgreSQL connections cut ---------------------------------------------------
# Each engine prepares its claim statement once per connection: cut, it
# reconnects and prepares it again. The match's outbox row (a webhook
# action: its body goes as an element of a text[]) keeps a quote and a
# backslash of the visitor's URL.
q "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'herenow-rules'" >/dev/null
CUT_URL="$S/hook/after-cut?q=a\"b\\c"
send --session sessPGCUT01 --url "$CUT_URL" --vid vPGCUT01
cut_fired() { [ "$(q "SELECT count(*) FROM rule_firings WHERE rule_id = $R_HOOK AND session_id = 'sessPGCUT01'")" = 1 ]; }
hn_wait_for 15 "a match after the engines' PostgreSQL connections were cut is claimed" cut_fired
hn_assert_eq "… its outbox row's body has the URL as sent (a quote, a backslash)" "$CUT_URL" \
    "$(q "SELECT body::jsonb #>> '{session,url}' FROM webhook_deliveries WHERE rule_id = $R_HOOK AND subject = 'sessPGCUT01'")"

# ---- a match's body shows the session as it matched ---------------------------------------------
# The engine claims a read's matches after its records: a whole visit sent
# at once must still give the /hook page in the body, not the page after
# it. The /wake beacon ends the engines' blocking read; the visit's records
# (its /hook page view, then /pricing and the end) come within the 100 ms
# that follow, so the next read brings them together.
send --session sessBATCH00 --url "$S/wake" --vid vBATCH00
send --session sessBATCH01 --url "$S/hook/batched" --vid vBATCH01 --script
batch_fired() { [ "$(q "SELECT count(*) FROM webhook_deliveries WHERE rule_id = $R_HOOK AND subject = 'sessBATCH01'")" = 1 ]; }
hn_wait_for 15 "a visit sent at once fires the /hook rule" batch_fired
hn_assert_eq "… its body has the page that matched and its page views" "$S/hook/batched 1" \
    "$(q "SELECT (body::jsonb #>> '{session,url}') || ' ' || (body::jsonb #>> '{session,page_views}') FROM webhook_deliveries WHERE rule_id = $R_HOOK AND subject = 'sessBATCH01'")"

# ---- the timers of sessions gone are compacted away --------------------------------------------
# A day-long time_on_site rule holds one timer per session; when 5,000
# sessions end, their timers are stale: the engine's sweep compacts them
# (above HEAP_COMPACT_MIN 4096 entries, when they are most of the heap)
# instead of keeping them until tomorrow.
read -r W3 K3 <<<"$(hn_widget_add --name "Timer shop" --domain timers.example)"
q "INSERT INTO widget_rules (widget_id, name, definition, webhook_secret) VALUES ($W3, 'a day on site', '$(cond all '{"field": "time_on_site", "op": "gte", "value": 86400}')'::jsonb, 's')" >/dev/null
loaded3() { loaded_n "$A" $((NRULES + 2)); }    # 19 - 1 disabled + late + W2's + W3's
hn_wait_for 10 "the timer widget's rule is loaded" loaded3
# the collector knows the new widget once a beacon of it lands
probe3() { "$HN_BIN/hn-ssefeed" --to "127.0.0.1:$UDP" --key "$K3" --mode seed --sessions 1 --seed 77 >/dev/null; [ "$(hn_redis ZCARD "hn:live:{$W3}")" -ge 1 ]; }
hn_wait_for 10 "the collector knows the timer widget" probe3
"$HN_BIN/hn-ssefeed" --to "127.0.0.1:$UDP" --key "$K3" --mode seed --sessions 5000 --seed 78 --rate 2000 >/dev/null
timers_at_least() { [ "$(metric "$A" herenow_rules_timers)" -ge "$1" ]; }
hn_wait_for 30 "5,000 sessions, a timer each (4,900 at least: UDP)" timers_at_least 4900
T_FULL=$(metric "$A" herenow_rules_timers)
"$HN_BIN/hn-ssefeed" --to "127.0.0.1:$UDP" --key "$K3" --mode end --sessions 5000 --seed 78 --rate 2000 --q-start 2 >/dev/null
timers_below() { [ "$(metric "$A" herenow_rules_timers)" -lt "$1" ]; }
# without compaction the heap would hold ≥ 4,900 entries until tomorrow;
# with it, at most max(HEAP_COMPACT_MIN, 2 × the live sessions' timers)
hn_wait_for 30 "their sessions ended: the heap is compacted (4,096 entries at most)" timers_below 4097
hn_assert_cmd "the timer heap: $T_FULL entries with 5,000 sessions, $(metric "$A" herenow_rules_timers) once they ended" \
    test "$(metric "$A" herenow_rules_timers)" -lt 4097 -a "$T_FULL" -ge 4900

hn_done
