#!/usr/bin/env bash
# test_browser.sh: the widget in a real browser, end to end. Debian's headless
# Chromium (/usr/bin/chromium, driven by playwright-core from npm; no browser
# is ever downloaded) visits a small test site whose pages embed the real
# collector's /h.js; real Redis, PostgreSQL, herenow-collector (HTTP ingress,
# enrichment with a test MMDB) and herenow-api (drain on). Traffic goes to
# 127.0.0.1 only.
#
#   1. tests/browser/node_modules from package-lock.json (npm ci when missing
#      or stale); widget/herenow.min.js is widget/build.sh's output of
#      widget/herenow.js, within 2048 bytes gzipped.
#   2. tests/browser/widget.mjs: the widget against a fake collector in node
#      (every beacon decoded and checked against docs/PROTOCOL.md).
#   3. GET /h.js from the collector: gzip, ETag, Cache-Control, ≤ 2048 bytes,
#      304 on If-None-Match, the body is herenow.min.js with the paths in.
#   4. tests/browser/e2e.mjs: a real visitor through the API within 1 s
#      (enrichment, SPA navigation, events, identify, chat, idle, leave), the
#      fetch and pixel fallbacks, and visits the collector drops (headless UA,
#      navigator.webdriver in a beacon and in the pixel, Sec-GPC).
#   5. after the drain: PostgreSQL holds the page views, the event with its
#      props, the session; the visitor's unmasked IP is nowhere (Redis,
#      pg_dump, the daemons' logs).
#
# The node scripts print "ok - …" / "not ok - …" lines, counted here.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_browser_prereqs

# ---- 1. tooling, and the minified widget up to date -------------------------------
hn_assert_cmd "tests/browser: npm ci from package-lock.json (when needed)" bash "$BROWSER_DIR/deps.sh"
if git -C "$HN_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    hn_assert_cmd "tests/browser/node_modules is ignored by git" git -C "$HN_ROOT" check-ignore -q tests/browser/node_modules
fi
hn_assert_cmd "widget/build.sh rebuilds herenow.min.js within 2048 bytes gzipped" \
    bash "$HN_ROOT/widget/build.sh" core "$HN_TMP/rebuilt.min.js"
hn_assert_cmd "widget/herenow.min.js is up to date with widget/herenow.js (run widget/build.sh)" \
    cmp "$HN_TMP/rebuilt.min.js" "$HN_ROOT/widget/herenow.min.js"
hn_assert_cmd "widget/build.sh rebuilds herenow-chat.min.js within 6144 bytes gzipped" \
    bash "$HN_ROOT/widget/build.sh" chat "$HN_TMP/rebuilt-chat.min.js"
hn_assert_cmd "widget/herenow-chat.min.js is up to date with widget/herenow-chat.js (run widget/build.sh)" \
    cmp "$HN_TMP/rebuilt-chat.min.js" "$HN_ROOT/widget/herenow-chat.min.js"

# ---- 2. the widget against a fake collector ---------------------------------------
echo "# tests/browser/widget.mjs (fake collector)"
hn_node widget widget.mjs

# ---- the real daemons ---------------------------------------------------------------
CTL="$HN_BIN/herenowctl"
hn_start_stores
read -r WID KEY <<<"$(hn_widget_add --name "Browser test" --domain 127.0.0.1)"
TOK=$("$CTL" token create --all 2>/dev/null)
perl "$HN_ROOT/tests/tools/mkmmdb.pl" "$HN_TMP/geo.mmdb"

HTTP=$(hn_free_port)
ADMIN=$(hn_free_port)
SITE=$(hn_free_port)
OTHER=$(hn_free_port)
export HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP HERENOW_UDP_LISTEN= HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_TRUSTED_PROXIES=127.0.0.1/32 HERENOW_GEOIP_DB=$HN_TMP/geo.mmdb
export HERENOW_THREADS=2 HERENOW_DRAIN=on HERENOW_DRAIN_BLOCK_MS=100
hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_start_api
COLLECTOR=http://127.0.0.1:$HTTP

# ---- 3. the script as the collector serves it -------------------------------------
H=$HN_TMP/hjs.headers
B=$HN_TMP/hjs.body
header() { grep -i "^$1:" "$H" | head -1 | cut -d: -f2- | sed 's/^ *//' | tr -d '\r'; }
st=$(curl -s -o "$B" -D "$H" -w '%{http_code}' -H 'Accept-Encoding: gzip' "$COLLECTOR/h.js")
hn_assert_eq "GET /h.js: 200" 200 "$st"
hn_assert_eq "GET /h.js: Content-Encoding gzip" gzip "$(header content-encoding)"
hn_assert_cmd "GET /h.js: a JavaScript Content-Type ($(header content-type))" \
    bash -c "[[ '$(header content-type)' =~ ^(text|application)/javascript ]]"
etag=$(header etag)
hn_assert_cmd "GET /h.js: an ETag ($etag)" test -n "$etag"
hn_assert_cmd "GET /h.js: Cache-Control with a max-age ($(header cache-control))" \
    bash -c "[[ '$(header cache-control)' =~ max-age=[0-9]+ ]]"
hn_assert_cmd "GET /h.js: Vary: Accept-Encoding" bash -c "[[ '$(header vary)' =~ [Aa]ccept-[Ee]ncoding ]]"
size=$(wc -c <"$B")
hn_assert_cmd "GET /h.js: $size bytes gzipped, at most 2048" test "$size" -le 2048
sed 's#@HN_B@#/b#;s#@HN_C@#/hc.js#' "$HN_ROOT/widget/herenow.min.js" >"$HN_TMP/expected.js"
hn_assert_cmd "GET /h.js: the body is widget/herenow.min.js with /b and /hc.js in place of the tokens" \
    bash -c "gzip -dc '$B' | cmp - '$HN_TMP/expected.js'"
st=$(curl -s -o "$HN_TMP/hjs.plain" -w '%{http_code}' "$COLLECTOR/h.js")
hn_assert_cmd "GET /h.js without Accept-Encoding: 200, the plain script" cmp "$HN_TMP/hjs.plain" "$HN_TMP/expected.js"
st=$(curl -s -o /dev/null -w '%{http_code}' -H 'Accept-Encoding: gzip' -H "If-None-Match: $etag" "$COLLECTOR/h.js")
hn_assert_eq "GET /h.js with If-None-Match: 304" 304 "$st"

# ---- 4. the browser end to end --------------------------------------------------------
echo "# tests/browser/e2e.mjs (real collector and api)"
HN_COLLECTOR=$COLLECTOR HN_ADMIN=http://127.0.0.1:$ADMIN HN_TOKEN=$TOK HN_WIDGET_ID=$WID HN_WIDGET_KEY=$KEY \
    HN_SITE_PORT=$SITE HN_OTHER_PORT=$OTHER hn_node e2e e2e.mjs
[ -s "$HN_TMP/e2e.json" ] || { hn_fail "e2e.mjs wrote no $HN_TMP/e2e.json"; hn_done; }
SID=$(jq -r .session "$HN_TMP/e2e.json")
S=http://127.0.0.1:$SITE

# ---- 5. after the drain ------------------------------------------------------------------
q() { hn_psql "$1"; }
pv_count() { [ "$(q "SELECT count(*) FROM widget_page_views WHERE session_id = '$SID'")" = 7 ]; }
ended() { [ "$(q "SELECT is_active FROM widget_visitor_sessions WHERE session_id = '$SID'")" = f ]; }
hn_wait_for 15 "the 7 page views drained into PostgreSQL" pv_count
hn_wait_for 15 "the session row ended (is_active false)" ended
hn_assert_eq "widget_page_views: urls, titles and referrers in order" \
"$S/|Home — Test shop|
$S/about.html|About us — Test shop|$S/
$S/app/|App home — Test app|
$S/app/pricing|Pricing — Test app|$S/app/
$S/app/|App home — Test app|$S/app/pricing
$S/app/#faq|App home — Test app|$S/app/
$S/contact.html|Contact — Test shop|" \
    "$(q "SELECT url || '|' || coalesce(title, '') || '|' || coalesce(referrer, '') FROM widget_page_views WHERE session_id = '$SID' ORDER BY seq")"
hn_assert_eq "widget_visitor_events: the custom event with its props as JSONB" \
    '{"plan": "pro", "seats": 3, "trial": true}' \
    "$(q "SELECT event_data FROM widget_visitor_events WHERE session_id = '$SID' AND event_type = 'ev' AND event_name = 'signup'")"
hn_assert_eq "widget_visitor_events: chat events, identify, hide/show, end" \
    "end: ev:chat_message_sent ev:chat_opened ev:signup hide: id: show:" \
    "$(q "SELECT string_agg(DISTINCT (event_type || ':' || coalesce(event_name, '')) COLLATE \"C\", ' ' ORDER BY (event_type || ':' || coalesce(event_name, '')) COLLATE \"C\") FROM widget_visitor_events WHERE session_id = '$SID' AND event_type <> 'hb'")"
hn_assert_eq "session row: pages, chat, identity, location, device" \
    "7|t|1|Ada Lovelace|ada@example.org|203.0.113.0|DE|Berlin|Linux|desktop|$S/|en-US" \
    "$(q "SELECT format('%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s', page_views, has_chatted, messages_sent, visitor_name, visitor_email, ip_address, country, city, os, device_type, landing_page, language) FROM widget_visitor_sessions WHERE session_id = '$SID'")"
hn_assert_eq "session row: engaged time > 0, a visitor hash of 32 hex chars, ended" "t|t|t" \
    "$(q "SELECT format('%s|%s|%s', engaged_ms > 0, visitor_hash ~ '^[0-9a-f]{32}\$', session_ended_at IS NOT NULL) FROM widget_visitor_sessions WHERE session_id = '$SID'")"
dropped_ids=$(jq -r '.dropped | map("'"'"'" + . + "'"'"'") | join(",")' "$HN_TMP/e2e.json")
hn_assert_eq "the dropped visits (bot, webdriver, GPC) left no row anywhere" "0 0 0" \
    "$(q "SELECT concat_ws(' ', (SELECT count(*) FROM widget_visitor_sessions WHERE session_id IN ($dropped_ids)), (SELECT count(*) FROM widget_page_views WHERE session_id IN ($dropped_ids)), (SELECT count(*) FROM widget_visitor_events WHERE session_id IN ($dropped_ids)))")"

# The unmasked client IPs (203.0.113.77 the visitor, .78-.80 the dropped
# visits) must be nowhere. Each dump must hold the masked 203.0.113.0, so that
# an empty or failed dump cannot pass.
LEAK='203\.0\.113\.(77|78|79|80)'
redis_dump() {
    local k
    hn_redis --scan | while IFS= read -r k; do
        echo "== $k ($(hn_redis TYPE "$k"))"
        case $(hn_redis TYPE "$k") in
            string) hn_redis GET "$k" ;;
            hash) hn_redis HGETALL "$k" ;;
            zset) hn_redis ZRANGE "$k" 0 -1 WITHSCORES ;;
            set) hn_redis SMEMBERS "$k" ;;
            list) hn_redis LRANGE "$k" 0 -1 ;;
            stream) hn_redis XRANGE "$k" - + ;;
        esac
    done
}
redis_dump >"$HN_TMP/redis.dump"
hn_assert_cmd "Redis dump holds the session and its masked IP" \
    bash -c "grep -q 'hn:sess:{$WID}:$SID' '$HN_TMP/redis.dump' && grep -aq '203\.0\.113\.0' '$HN_TMP/redis.dump' && grep -q '(stream)' '$HN_TMP/redis.dump'"
hn_assert_eq "Redis: no unmasked client IP in any key (hashes, strings, sets, the stream)" "" \
    "$(grep -aoE "$LEAK" "$HN_TMP/redis.dump" | sort -u | tr '\n' ' ')"
"${HN_PG_BINDIR}/pg_dump" --data-only "$HERENOW_DATABASE_URL" >"$HN_TMP/pg.dump"
hn_assert_cmd "pg_dump holds the session and its masked IP" \
    bash -c "grep -q '$SID' '$HN_TMP/pg.dump' && grep -q '203\.0\.113\.0' '$HN_TMP/pg.dump'"
hn_assert_eq "PostgreSQL (pg_dump --data-only): no unmasked client IP" "" \
    "$(grep -aoE "$LEAK" "$HN_TMP/pg.dump" | sort -u | tr '\n' ' ')"
hn_assert_cmd "the collector's and api's logs are there" test -s "$HN_TMP/collector.log" -a -s "$HN_TMP/api.log"
hn_assert_eq "logs of the collector and the api: no unmasked client IP" "" \
    "$(cat "$HN_TMP/collector.log" "$HN_TMP/api.log" | grep -aoE "$LEAK" | sort -u | tr '\n' ' ')"

hn_done
