#!/usr/bin/env bash
# test_dashboard_pages.sh: the dashboard's Pages now panel, its page filter,
# the time picker (the past view) and the statistics' concurrency chart
# (api/www/pages.js, timetravel.js, concurrency.js; docs/DASHBOARD.md) in
# Debian's headless Chromium against real Redis, PostgreSQL, herenow-collector
# (UDP) and herenow-api (drain on, the live stream, the static files).
#
#   1. a history written straight into PostgreSQL (as the drain would have
#      written it): sessions around T0 = three hours ago (who was there at
#      T0 is worked out by hand below) and one long session around an hour ago.
#   2. tests/browser/pages.mjs: scripted UDP visitors; the panel's counts
#      against the API's pages/live as visitors come, navigate, hide and
#      leave; a click filters the list (live rows follow); the past at T0 and
#      "1 hour ago" (banner, rows, no Start chat, live updates not applied),
#      back to now; the concurrency chart against GET …/concurrency; phone
#      width; no console error or CSP violation. Screenshots go to
#      $HN_ARTIFACTS (default build/artifacts/dashboard-pages/).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_browser_prereqs
export HN_ARTIFACTS=${HN_ARTIFACTS:-$HN_ROOT/build/artifacts/dashboard-pages}
mkdir -p "$HN_ARTIFACTS"
hn_assert_cmd "tests/browser: npm ci from package-lock.json (when needed)" bash "$BROWSER_DIR/deps.sh"

CTL="$HN_BIN/herenowctl"
hn_start_stores
read -r WID KEY <<<"$(hn_widget_add --name "Pages shop" --domain shop.example)"
TOK=$("$CTL" token create --all --name pages-test 2>/dev/null)

# ---- 1. history ------------------------------------------------------------------------------
# Written before the api starts: its drain's first concurrency fill sets the
# widget's mark (sql/006), and minutes before the mark are only read from the
# rollup, so history written after that fill would be a late import, not in
# the chart (docs/API.md) — a race the test lost once on a clean clone.
# T0: three hours ago, on a whole minute. Beacons (session, offset from T0 in
# s, type, path); at T0 (window 300 s, active 60 s):
#   pastAAAA0001  /pricing  pv −100, hb −10          → there, active
#   pastBBBB0001  /blog     pv −200, hide −150       → there, idle (hidden)
#   pastCCCC0001  /         pv −50, end −5           → gone (ended)
#   pastDDDD0001  /pricing  pv +30                   → not yet
#   pastEEEE0001  /old      pv −400                  → gone (window passed)
# and pastLONG0001 on /docs from 75 to 45 minutes ago (a heartbeat a minute):
# there at "1 hour ago" whenever the browser asks within a quarter of an hour.
T0=$(date -u -d "@$(( $(date +%s) / 60 * 60 - 3 * 3600 ))" +%Y-%m-%dT%H:%M:%SZ)
"${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql" -X -q -v ON_ERROR_STOP=1 -v w="$WID" -v t0="$T0" \
    "$HERENOW_DATABASE_URL" >/dev/null <<'SQL'
SELECT hn_ensure_partitions((now() - interval '2 days')::date, (now() + interval '1 day')::date);
CREATE TEMP TABLE h (sid text, t timestamptz, typ text, url text);
INSERT INTO h SELECT sid, :'t0'::timestamptz + make_interval(secs => off_s), typ, url FROM (VALUES
 ('pastAAAA0001', -100, 'pv', '/pricing'), ('pastAAAA0001', -10, 'hb', NULL),
 ('pastBBBB0001', -200, 'pv', '/blog'), ('pastBBBB0001', -150, 'hide', NULL),
 ('pastCCCC0001', -50, 'pv', '/'), ('pastCCCC0001', -5, 'end', NULL),
 ('pastDDDD0001', 30, 'pv', '/pricing'),
 ('pastEEEE0001', -400, 'pv', '/old')) AS v(sid, off_s, typ, url);
INSERT INTO h SELECT 'pastLONG0001', now() - make_interval(mins => m), CASE WHEN m = 75 THEN 'pv' ELSE 'hb' END,
                     CASE WHEN m = 75 THEN '/docs' END
  FROM generate_series(45, 75) AS m;
INSERT INTO widget_page_views (event_id, recv_at, widget_id, session_id, visitor_id, seq, url, path, title, transport)
 SELECT gen_random_uuid(), t, :w, sid, 'v-' || sid, row_number() OVER (PARTITION BY sid ORDER BY t),
        'https://shop.example' || url, url, 'Then: ' || url, 1
   FROM h WHERE typ = 'pv';
INSERT INTO widget_visitor_events (event_id, recv_at, widget_id, session_id, visitor_id, seq, event_type, transport)
 SELECT gen_random_uuid(), t, :w, sid, 'v-' || sid, 100 + row_number() OVER (PARTITION BY sid ORDER BY t), typ, 1
   FROM h WHERE typ <> 'pv';
INSERT INTO widget_visitor_sessions (widget_id, session_id, visitor_id, landing_page, country, browser,
        screen_width, screen_height, last_active_at, session_started_at, session_ended_at, is_active,
        page_views, rollup_hour)
 SELECT :w, sid, 'v-' || sid, 'https://shop.example' || min(url), 'JP', 'Firefox', 1280, 800,
        max(t), min(t), max(t), false, count(url), date_trunc('hour', min(t))
   FROM h GROUP BY sid;
SQL
hn_ok "history seeded around T0=$T0 and an hour ago"
UDP=$(hn_free_port)
ADMIN=$(hn_free_port)
# the defaults that matter here: live window 300 s, active 60 s
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_THREADS=1 HERENOW_DRAIN=on HERENOW_DRAIN_BLOCK_MS=100 HERENOW_API_WWW=$HN_ROOT/api/www
export HERENOW_LIVE_WINDOW_S=300 HERENOW_ACTIVE_S=60
hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_start_api

ST=$(curl -s -o "$HN_TMP/at.json" -w '%{http_code}' -H "Authorization: Bearer $TOK" \
    "$HN_API_URL/api/visitor-tracking/widgets/$WID/active-visitors?at=$T0")
hn_assert_eq "the API's answer at T0 (what the browser must show): A active, B idle" \
    "200 pastAAAA0001:active,pastBBBB0001:idle" \
    "$ST $(jq -r '[.visitors[] | "\(.session_id):\(.status)"] | sort | join(",")' "$HN_TMP/at.json")"

# ---- 2. the browser ------------------------------------------------------------------------------
echo "# tests/browser/pages.mjs (real collector and api)"
HN_CTL=$CTL HN_UDP=127.0.0.1:$UDP HN_TOKEN=$TOK HN_WIDGET_ID=$WID HN_WIDGET_KEY=$KEY HN_T0=$T0 \
    hn_node pages pages.mjs

hn_done
