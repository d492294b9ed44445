#!/usr/bin/env bash
# test_dashboard_rules.sh: the dashboard's Rules view, alert toasts, and the
# notes, tags and bans of visitors (api/www/rules.js, alerts.js, notes.js;
# docs/RULES.md, docs/DASHBOARD.md) in Debian's headless Chromium against real
# Redis, PostgreSQL, herenow-collector (UDP) and herenow-api (drain on, rules
# engine on, the live stream, the static files).
#
# tests/browser/rules.mjs: a rule made in the editor (the API's copy read
# back), a bad regex refused with the API's own reason next to the form, the
# secret shown once, enable / disable, a scripted visit on /pricing that the
# rule matches → the alert toast (rule name, text, Show visitor), tags and a
# note put on a live visitor from the details → the chips on the row and the
# Tag filter, ban / unban (also block tracking), a rule whose webhook
# receiver (on loopback) answers 500 → "failing: <reason>" and its delivery
# log, delete with a confirmation,
# 1280 px and 375 px, RTL and long text, text never markup, no console error
# or CSP violation. Screenshots go to $HN_ARTIFACTS (default
# build/artifacts/dashboard-rules/).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

hn_browser_prereqs
export HN_ARTIFACTS=${HN_ARTIFACTS:-$HN_ROOT/build/artifacts/dashboard-rules}
mkdir -p "$HN_ARTIFACTS"
hn_assert_cmd "tests/browser: npm ci from package-lock.json (when needed)" bash "$BROWSER_DIR/deps.sh"

CTL="$HN_BIN/herenowctl"
hn_start_stores
read -r WID KEY <<<"$(hn_widget_add --name "Rules shop" --domain shop.example)"
TOK=$("$CTL" token create --all --name "Ana" 2>/dev/null)

UDP=$(hn_free_port)
ADMIN=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_THREADS=1 HERENOW_DRAIN=on HERENOW_DRAIN_BLOCK_MS=100 HERENOW_API_WWW=$HN_ROOT/api/www
export HERENOW_LIVE_WINDOW_S=300 HERENOW_ACTIVE_S=60 HERENOW_RULES=on HERENOW_RULES_RELOAD_MS=200
export HERENOW_BANS_REFRESH_MS=200 HERENOW_WEBHOOK_ATTEMPTS=1 HERENOW_WEBHOOK_DISABLE_AFTER=1
hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_start_api

echo "# tests/browser/rules.mjs (real collector and api)"
HN_CTL=$CTL HN_UDP=127.0.0.1:$UDP HN_TOKEN=$TOK HN_WIDGET_ID=$WID HN_WIDGET_KEY=$KEY \
    hn_node rules rules.mjs

hn_done
