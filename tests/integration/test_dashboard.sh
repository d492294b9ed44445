#!/usr/bin/env bash
# test_dashboard.sh: the dashboard (api/www, docs/DASHBOARD.md) in a real
# browser against real servers. Debian's headless Chromium (/usr/bin/chromium
# through playwright-core; no browser is ever downloaded) opens the page the
# api serves at / and signs in; visitors come from UDP beacons (herenowctl
# send) and from a second Chromium visiting the test site with the
# collector's /h.js. Real Redis, PostgreSQL, herenow-collector (UDP and HTTP
# ingress, enrichment with the test MMDB) and herenow-api (drain on, the live
# stream, the static files). Traffic goes to 127.0.0.1 only.
#
#   1. the dashboard's responses: the CSP and the other security headers on
#      /, /app.js, /app.css; the files are the ones in api/www.
#   2. history seeded into the rollups (hours and days before now), so the
#      statistics have something beyond what the test sends.
#   3. tests/browser/dashboard.mjs: sign-in, the live list over SSE (appear,
#      navigate, idle, leave within 1 s; the count in the title), details
#      with the timeline, deactivate, statistics against the API, the chart,
#      statistics at a glance with six- and seven-digit values, long and
#      right-to-left values and at 375 px, CSV export, the 500-row cap,
#      polling when SSE is blocked, wrong and other-widget tokens, keyboard,
#      phone width, and no console error, CSP
#      violation or token in any URL. Screenshots go to $HN_ARTIFACTS
#      (default build/artifacts/dashboard/).
#
# The node script prints "ok - …" / "not ok - …" lines, counted here.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_browser_prereqs
export HN_ARTIFACTS=${HN_ARTIFACTS:-$HN_ROOT/build/artifacts/dashboard}
mkdir -p "$HN_ARTIFACTS"


hn_assert_cmd "tests/browser: npm ci from package-lock.json (when needed)" bash "$BROWSER_DIR/deps.sh"

# ---- the real daemons ---------------------------------------------------------------
CTL="$HN_BIN/herenowctl"
hn_start_stores
widget() { hn_widget_add --name "$1" --domain "$2"; }
# Every widget before the collector starts (it reads the widget list at start
# and then only every HERENOW_WIDGET_REFRESH_MS).
read -r WID KEY <<<"$(widget "Dashboard shop" 127.0.0.1)"
read -r OWID OKEY <<<"$(widget "Other site" other.example)"
read -r CWID CKEY <<<"$(widget "Crowd" crowd.example)"
read -r BWID _ <<<"$(widget "Big numbers" big.example)"
# on a cluster: the two widgets with live visitors (the shop's, the crowd's) on two masters
hn_cluster_two_masters "widgets $WID and $CWID" "hn:live:{$WID}" "hn:live:{$CWID}"
TOK=$("$CTL" token create --all --name dashboard-test 2>/dev/null)
OTOK=$("$CTL" token create --widget "$OWID" --name other-widget 2>/dev/null)
# revoked by the test while a dashboard is signed in with it
read -r RTOK_ID RTOK <<<"$("$CTL" token create --all --name revoke-me --json | jq -r '"\(.id) \(.token)"')"
perl "$HN_ROOT/tests/tools/mkmmdb.pl" "$HN_TMP/geo.mmdb"

HTTP=$(hn_free_port)
UDP=$(hn_free_port)
ADMIN=$(hn_free_port)
SITE=$(hn_free_port)
OTHER=$(hn_free_port)
# UDP beacons from 127.0.0.1 may carry a visitor's ip and ua (trusted relay),
# HTTP ones an X-Forwarded-For (trusted proxy): both get a country and a city.
export HERENOW_HTTP_LISTEN=127.0.0.1:$HTTP HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_TRUSTED_PROXIES=127.0.0.1/32 HERENOW_TRUSTED_RELAYS=127.0.0.1/32 HERENOW_GEOIP_DB=$HN_TMP/geo.mmdb
export HERENOW_THREADS=2 HERENOW_DRAIN=on HERENOW_DRAIN_BLOCK_MS=100
export HERENOW_API_WWW=$HN_ROOT/api/www
# Streams end (event bye) every few seconds, so the whole run also goes through
# the dashboard's renewals: a new ticket and last_event_id each time.
# A revoked token's stream ends within the token refresh and one ping.
export HERENOW_SSE_MAX_LIFETIME_S=6 HERENOW_SSE_PING_S=2 HERENOW_TOKEN_REFRESH_MS=500
hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_start_api

# ---- 1. the dashboard's files and headers -----------------------------------------
H=$HN_TMP/www.headers
header() { grep -i "^$1:" "$H" | head -1 | cut -d: -f2- | sed 's/^ *//' | tr -d '\r'; }
CSP="default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
for f in / /app.js /app.css /favicon.svg; do
    st=$(curl -s -o "$HN_TMP/www.body" -D "$H" -w '%{http_code}' "$HN_API_URL$f")
    src=$HN_ROOT/api/www/${f#/}
    [ "$f" != / ] || src=$HN_ROOT/api/www/index.html
    hn_assert_eq "GET $f: 200 with the file of api/www" "200 same" \
        "$st $(cmp -s "$HN_TMP/www.body" "$src" && echo same || echo different)"
    hn_assert_eq "GET $f: the dashboard's Content-Security-Policy" "$CSP" "$(header content-security-policy)"
    hn_assert_eq "GET $f: nosniff, no referrer, no framing, same-origin opener" \
        "nosniff|no-referrer|DENY|same-origin" \
        "$(header x-content-type-options)|$(header referrer-policy)|$(header x-frame-options)|$(header cross-origin-opener-policy)"
done
st=$(curl -s -o /dev/null -D "$H" -w '%{http_code}' "$HN_API_URL/app.js")
hn_assert_cmd "GET /app.js: a JavaScript Content-Type ($(header content-type))" \
    bash -c "[[ '$(header content-type)' =~ ^(text|application)/javascript ]]"

# ---- 2. seeded history --------------------------------------------------------------
# Rollup rows in earlier hours and days: what the drain would have written for
# visits before the test. The statistics panel must show what the API
# computes from them plus the test's own traffic.
hn_psql "
INSERT INTO widget_rollup_hourly (widget_id, hour, page_views, events, sessions, visitors_day, visitors_hour,
                                  session_pages, engaged_ms, bounces, chat_sessions)
SELECT $WID, date_trunc('hour', now()) - make_interval(hours => h), pv, ev, se, se, se, pv, se * 41000, se / 3, se / 4
FROM (VALUES (2, 14, 1, 6), (5, 30, 3, 11), (9, 8, 0, 4), (30, 44, 2, 17),
             (80, 61, 5, 23), (200, 25, 1, 9), (500, 52, 4, 20)) AS s(h, pv, ev, se);
INSERT INTO widget_rollup_dims (widget_id, dim, day, value, n)
SELECT $WID, d, (now() AT TIME ZONE 'UTC')::date - days, v, n
FROM (VALUES ('page', 0, 'https://shop.example/', 9), ('page', 0, 'https://shop.example/pricing', 5),
             ('page', 3, 'https://shop.example/', 40), ('referrer', 0, 'www.google.com', 4),
             ('referrer', 3, 'news.ycombinator.com', 12), ('country', 0, 'FR', 3), ('country', 3, 'JP', 8),
             ('browser', 0, 'Firefox', 3), ('device', 0, 'mobile', 3), ('device', 3, 'tablet', 2)) AS s(d, days, v, n);" >/dev/null
hn_ok "history seeded into widget_rollup_hourly and widget_rollup_dims"
# "Big numbers": rollups only, a busy site — six-digit hourly page views
# (seven-digit days), pages on one host with a long path and a right-to-left
# one (as browsers send it: %-escaped), a long referrer host. The statistics
# at a glance must fit them (issue 15, item 4).
hn_psql "
INSERT INTO widget_rollup_hourly (widget_id, hour, page_views, events, sessions, visitors_day, visitors_hour,
                                  session_pages, engaged_ms, bounces, chat_sessions)
SELECT $BWID, date_trunc('hour', now()) - make_interval(hours => h), 250000 - h * 9973, h * 17,
       12500 - h * 37, 11000 - h * 31, 11900 - h * 35, 250000 - h * 9973, (12500 - h * 37) * 93000::bigint,
       (12500 - h * 37) / 3, (12500 - h * 37) / 40
FROM generate_series(1, 20) AS h;
INSERT INTO widget_rollup_dims (widget_id, dim, day, value, n)
SELECT $BWID, d, (now() AT TIME ZONE 'UTC')::date, v, n
FROM (VALUES ('page', 'https://big.example/', 1823456), ('page', 'https://big.example/pricing', 987654),
             ('page', 'https://big.example/blog/' || repeat('a-very-long-article-slug-', 12) || 'end', 543210),
             ('page', 'https://big.example/%D9%85%D8%AA%D8%AC%D8%B1/%D8%B9%D8%B1%D9%88%D8%B6', 432109),
             ('referrer', 'a-very-long-subdomain-name-of-a-referrer.news.aggregator.example.com', 123456),
             ('referrer', '(direct)', 98765), ('country', 'SA', 234567), ('country', 'IL', 123456),
             ('browser', 'Chrome', 345678), ('device', 'desktop', 345678)) AS s(d, v, n);" >/dev/null
hn_ok "big numbers seeded for widget $BWID"

# ---- 3. the browser ------------------------------------------------------------------
echo "# tests/browser/dashboard.mjs (real collector and api)"
HN_CTL=$CTL HN_UDP=127.0.0.1:$UDP HN_COLLECTOR=http://127.0.0.1:$HTTP HN_TOKEN=$TOK HN_OTHER_TOKEN=$OTOK \
    HN_REVOKE_TOKEN=$RTOK HN_REVOKE_TOKEN_ID=$RTOK_ID \
    HN_WIDGET_ID=$WID HN_WIDGET_KEY=$KEY HN_OTHER_WIDGET_ID=$OWID HN_CROWD_WIDGET_ID=$CWID HN_CROWD_KEY=$CKEY HN_BIG_WIDGET_ID=$BWID \
    HN_LOADGEN=$HN_BIN/hn-loadgen HN_SITE_PORT=$SITE HN_OTHER_PORT=$OTHER hn_node dashboard dashboard.mjs

# The token never reached a log line of the api (access log with masked tokens).
for t in "$TOK" "$OTOK" "$RTOK"; do
    hn_assert_eq "api log: the token ${t:0:6}… appears nowhere" 0 "$(grep -c -F "$t" "$HN_TMP/api.log" || true)"
done

hn_done
