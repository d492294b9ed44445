#!/usr/bin/env bash
# test_ops_kit.sh: the operations kit (docs/OPERATIONS.md, "Alerts and dashboard") —
# scripts/prometheus/herenow-alerts.yml passes `promtool check rules` and its unit tests
# (`promtool test rules`: each alert fires on what should wake someone and not on its
# look-alikes); scripts/grafana/herenow-dashboard.json is a dashboard whose every query
# parses; every herenow_* metric the rules and the dashboard name is one the daemons
# export (a collector and an api with the drain on, scraped here); herenow_ready follows
# /readyz (1 while ready, 0 once Redis is gone and no spool takes the beacons).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
hn_need promtool prometheus
hn_need jq jq

KIT=$HN_ROOT/scripts
RULES=$KIT/prometheus/herenow-alerts.yml
DASH=$KIT/grafana/herenow-dashboard.json

# --- 1. the rules: valid, and their unit tests pass --------------------------------------
hn_assert_cmd "promtool check rules" promtool check rules "$RULES"
hn_assert_cmd "promtool test rules (every alert, firing and quiet)" \
    bash -c "cd '$KIT/prometheus' && promtool test rules herenow-alerts.test.yml"
nalerts=$(grep -c '^      - alert: ' "$RULES")
ntested=$(grep -o 'alertname: [A-Za-z]*' "$KIT/prometheus/herenow-alerts.test.yml" | sort -u | wc -l)
hn_assert_eq "every alert has a unit test" "$nalerts" "$ntested"
hn_assert_eq "every alert has a severity, a summary and a fix" "$nalerts $nalerts $nalerts" \
    "$(grep -c 'labels: {severity: \(critical\|warning\)}' "$RULES") $(grep -c '          summary: ' "$RULES") $(grep -c '          fix: ' "$RULES")"

# --- 2. the dashboard: JSON, unique panel ids, every query parses as PromQL --------------
hn_assert_cmd "the dashboard is JSON with panels" jq -e '.panels | length > 10' "$DASH"
hn_assert_eq "panel ids unique" "$(jq '[.panels[].id] | length' "$DASH")" "$(jq '[.panels[].id] | unique | length' "$DASH")"
hn_assert_eq "every graph has a query" 0 "$(jq '[.panels[] | select(.type == "timeseries" and ((.targets // []) | length) == 0)] | length' "$DASH")"
# each query, with Grafana's $__rate_interval made a duration, as a recording rule for promtool
{
    echo "groups:"
    echo "  - name: dashboard"
    echo "    rules:"
    jq -r '.panels[] | select(.targets) | .targets[] | .expr' "$DASH" | sed 's/\$__rate_interval/5m/g' |
        awk '{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); printf "      - record: dashboard:q%d\n        expr: \"%s\"\n", NR, $0 }'
} >"$HN_TMP/dash-rules.yml"
hn_assert_cmd "every dashboard query parses (promtool check rules)" promtool check rules "$HN_TMP/dash-rules.yml"

# --- 3. the metrics they name exist ------------------------------------------------------
hn_start_stores
UDP=$(hn_free_port); ADMIN=$(hn_free_port); API=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_API_LISTEN=127.0.0.1:$API HERENOW_THREADS=1 HERENOW_SPOOL_DIR= HERENOW_DRAIN=on
# HTTPS ports on both, for the certificate's metrics
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=ops-kit \
    -keyout "$HN_TMP/tls.key" -out "$HN_TMP/tls.pem" 2>/dev/null
export HERENOW_TLS_CERT=$HN_TMP/tls.pem HERENOW_TLS_KEY=$HN_TMP/tls.key
export HERENOW_HTTPS_LISTEN=127.0.0.1:$(hn_free_port) HERENOW_API_HTTPS_LISTEN=127.0.0.1:$(hn_free_port)
hn_spawn collector "$HN_BIN/herenow-collector"
hn_spawn api "$HN_BIN/herenow-api"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_wait_for 10 "api ready" curl -fsS "http://127.0.0.1:$API/readyz"
curl -fsS "http://127.0.0.1:$ADMIN/metrics" >"$HN_TMP/col.metrics"
curl -fsS "http://127.0.0.1:$API/metrics" >"$HN_TMP/api.metrics"
awk '/^# TYPE / { print $3 }' "$HN_TMP/col.metrics" "$HN_TMP/api.metrics" | sort -u >"$HN_TMP/families"
missing=""
for m in $(grep -ohE 'herenow_[a-z0-9_]+' "$RULES" "$DASH" | sort -u); do
    base=$m
    [[ $m =~ _(bucket|sum|count)$ ]] && grep -qx "${m%_*}" "$HN_TMP/families" && base=${m%_*}
    grep -qx "$base" "$HN_TMP/families" || missing="$missing $m"
done
hn_assert_eq "every herenow_* metric the rules and the dashboard name is exported" "" "${missing# }"
hn_assert_eq "herenow_ready: 1 on both while ready" "1 1" \
    "$(awk '$1 == "herenow_ready" { print $2 }' "$HN_TMP/col.metrics") $(awk '$1 == "herenow_ready" { print $2 }' "$HN_TMP/api.metrics")"

# --- 4. herenow_ready follows /readyz ----------------------------------------------------
ready_is() {   # ready_is PORT VALUE
    [ "$(curl -fsS "http://127.0.0.1:$1/metrics" | awk '$1 == "herenow_ready" { print $2 }')" = "$2" ]
}
hn_redis_stop
hn_wait_for 15 "collector: herenow_ready 0 once Redis is gone (no spool)" ready_is "$ADMIN" 0
hn_assert_eq "and /readyz says 503 with it" 503 "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ADMIN/readyz")"
hn_done
