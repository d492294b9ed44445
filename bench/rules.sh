#!/usr/bin/env bash
# rules.sh: `make bench-rules` — the rules engine under load (issue 16):
# RULES rules on one widget with VISITORS live sessions while RATE beacons/s
# arrive. What evaluating a record against the rules costs, and how long a
# page view takes to become a webhook at a receiver, against the live hub's
# own delay (the SSE `update` of the same page view) in the same run.
#
#   hn-ssefeed ──UDP──► collector ──► Redis ──XREAD──► herenow-api ─┬─ hub ──SSE──► hn-sseclient × CLIENTS
#      url ?t=<µs send time>&n=<seq>                                 └─ rules engine ──claim, outbox──► PostgreSQL
#                                                                        webhook sender ──POST──► receiver (node)
#
# Once: private Redis and PostgreSQL, migrate, the collector on a UDP port, a
# webhook receiver on loopback (tests/lib/webhook-receiver.mjs: it checks
# every signature and logs the arrival time of each POST).
# Per round (RUNS rounds, each on a widget of its own, so that its sessions
# are new to the rules and nothing of the last round is live for them):
#   1. the widget, a token, and RULES rules by `herenowctl rule add` (the mix
#      below); a fresh herenow-api (every setting at its default, the drain
#      on), waited for until its engine has loaded them;
#   2. hn-ssefeed --mode seed: one page view for each of VISITORS sessions,
#      waited for in hn:live and in the engine (herenow_rules_sessions);
#   3. hn-sseclient opens CLIENTS streams of the widget (the dashboards) and
#      two threads of it tail the Redis stream and PING Redis (references);
#   4. hn-ssefeed --mode feed: RATE beacons/s for DURATION s, round-robin over
#      the sessions, PV_SHARE page views (URL with send time and number);
#   5. until every webhook the engine decided has been delivered (deadline
#      60 s), then the metrics and the receiver's log are read.
#
# The rules (RULES, default 100; ≤ 200, the per-widget limit): three fire,
# the others are a mix of every condition type that does not match this
# traffic, as a site's list of triggers mostly does not:
#   r0  webhook  url glob "*&n=*3"                            (a page view whose number ends in 3)
#   r1  webhook  url regex "[?&]n=[0-9]*7$" and page_views ≥ 2 (… ends in 7)
#   r2  alert    url glob "*&n=*5"                            (an `alert` SSE event to the clients)
#   the rest, by index mod 12: url glob, url regex, title contains, referrer
#   contains, utm_source equals, country in + url, device in + page views,
#   page_views ≥ 1000, time_on_page ≥ 600+ s on one page (a timer for the
#   sessions on it), time_on_site ≥ 1800+ s (a timer for every session),
#   event equals, returning visitor + url contains; with webhook or alert
#   actions. A rule fires once per session: each of r0..r2 fires for a
#   session on its first matching page view.
#
# Figures: evaluation cost per record = Δherenow_rule_eval_record_seconds_sum
# / Δ…_count over the feed (and the histogram's p50, p90) (records that changed a
# field some rule reads: page views; heartbeats change none and cost
# nothing); beacon → webhook = the receiver's arrival time (ms) − the send
# time in the fired page view's URL (the body's session.url), over every
# rule.fired POST; the live hub's delay = hn-sseclient's beacon → `update`.
#
# Environment: RUNS=3 DURATION=30 VISITORS=10000 RATE=2000 PV_SHARE=0.8
# RULES=100 CLIENTS=10 BENCH_DOC=docs/BENCHMARKS.md ("" : don't write)
# HN_KEEP_TMP=1 keeps the logs.
set -euo pipefail
cd "$(dirname "$0")/.."
CMDLINE="make bench-rules"
for v in CLIENTS RULES PV_SHARE RATE VISITORS DURATION RUNS; do
    if [ -n "${!v+x}" ]; then CMDLINE="$v=\"${!v}\" $CMDLINE"; fi
done
RUNS=${RUNS:-3}
DURATION=${DURATION:-30}
VISITORS=${VISITORS:-10000}
RATE=${RATE:-2000}
PV_SHARE=${PV_SHARE:-0.8}
RULES=${RULES:-100}
CLIENTS=${CLIENTS:-10}
TARGET_P99_MS=1000
TARGET_EVAL_US=2
BENCH_DOC=${BENCH_DOC-docs/BENCHMARKS.md}
SECTION="## Rules engine (make bench-rules)"
source bench/lib/doc-section.sh
source bench/lib/run.sh
export HN_BIN=${HN_BIN:-build/release}
source tests/lib.sh

say() { echo "bench-rules: $*"; }
die() { echo "bench-rules: $*" >&2; exit 1; }
for b in herenow-api herenow-collector herenowctl hn-sseclient hn-ssefeed hn-rulebench hn-freeport; do
    [ -x "$HN_BIN/$b" ] || die "$HN_BIN/$b missing (make HN_BIN's binaries first)"
done
command -v node >/dev/null || die "node not found (scripts/setup.sh installs it)"
case "$RUNS$DURATION$VISITORS$RATE$RULES$CLIENTS" in *[!0-9]*) die "RUNS DURATION VISITORS RATE RULES CLIENTS: integers" ;; esac
case "$PV_SHARE" in '' | *[!0-9.]*) die "PV_SHARE: a number 0..1" ;; esac
[ "$RULES" -ge 3 ] && [ "$RULES" -le 200 ] || die "RULES: 3..200"

bench_start herenow-api "api collector common proto" herenow-api herenow-collector herenowctl hn-sseclient hn-ssefeed hn-rulebench
# mval FILE NAME: a metric's value in a /metrics dump (0 when absent)
mval() { awk -v m="$2" '$1 == m { v = $2 } END { printf "%.9g\n", v + 0 }' "$1"; }
delta() { awk -v a="$(mval "$1" "$3")" -v b="$(mval "$2" "$3")" 'BEGIN { printf "%.9g\n", b - a }'; }

# ---- servers, schema, receiver, collector ----------------------------------------------------
hn_start_redis
hn_start_pg
REDIS_PID=$(cat "$HN_TMP/redis/redis.pid")
"$BIN/herenowctl" migrate >/dev/null
SHARDS=${HERENOW_STREAM_SHARDS:-1}

RLOG=$HN_TMP/receiver.log
SECRETS=$HN_TMP/secrets
: >"$RLOG"
: >"$SECRETS"
hn_spawn receiver node tests/lib/webhook-receiver.mjs "$HN_TMP/rport" "$RLOG" "$SECRETS"
hn_wait_for 10 "the webhook receiver listens" test -s "$HN_TMP/rport"
HOOK="http://127.0.0.1:$(cat "$HN_TMP/rport")/ok"
# shellcheck disable=SC2154  # HN_PID_receiver: set by hn_spawn
RECV_PID=$HN_PID_receiver

UDP=$(hn_free_port)
ADMIN=$(hn_free_port)
hn_spawn collector env HERENOW_UDP_LISTEN="127.0.0.1:$UDP" HERENOW_HTTP_LISTEN= \
    HERENOW_ADMIN_LISTEN="127.0.0.1:$ADMIN" HERENOW_LOG_LEVEL=warn "$BIN/herenow-collector"
hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
# shellcheck disable=SC2154
COL_PID=$HN_PID_collector

API_PORT=$(hn_free_port)
U="http://127.0.0.1:$API_PORT"
QSPAN=1000000

# rule_json K: the definition of rule K of the mix (see the head of this file)
rule_json() {
    local k=$1 p=$(($1 % 100)) act
    if ((k % 2)); then act="{\"type\":\"alert\",\"text\":\"rule $k\"}"; else act="{\"type\":\"webhook\",\"url\":\"$HOOK\"}"; fi
    case $k in
    0) echo "{\"name\":\"r0 page view …3\",\"conditions\":[{\"field\":\"url\",\"op\":\"glob\",\"value\":\"*&n=*3\"}],\"actions\":[{\"type\":\"webhook\",\"url\":\"$HOOK\"}]}"; return ;;
    1) echo "{\"name\":\"r1 page view …7, 2nd page\",\"conditions\":[{\"field\":\"url\",\"op\":\"regex\",\"value\":\"[?&]n=[0-9]*7\$\"},{\"field\":\"page_views\",\"op\":\"gte\",\"value\":2}],\"actions\":[{\"type\":\"webhook\",\"url\":\"$HOOK\"}]}"; return ;;
    2) echo "{\"name\":\"r2 page view …5\",\"conditions\":[{\"field\":\"url\",\"op\":\"glob\",\"value\":\"*&n=*5\"}],\"actions\":[{\"type\":\"alert\",\"text\":\"page view …5\"}]}"; return ;;
    esac
    local c
    case $((k % 12)) in
    0) c="{\"field\":\"url\",\"op\":\"glob\",\"value\":\"*/checkout/step-$k*\"}" ;;
    1) c="{\"field\":\"url\",\"op\":\"regex\",\"value\":\"^https://shop\\\\.example/(cart|checkout)/$k\$\"}" ;;
    2) c="{\"field\":\"title\",\"op\":\"contains\",\"value\":\"Order $k confirmed\"}" ;;
    3) c="{\"field\":\"referrer\",\"op\":\"contains\",\"value\":\"news-$k.example\"}" ;;
    4) c="{\"field\":\"utm_source\",\"op\":\"equals\",\"value\":\"campaign-$k\"}" ;;
    5) c="{\"field\":\"country\",\"op\":\"in\",\"value\":[\"NZ\",\"IS\"]},{\"field\":\"url\",\"op\":\"contains\",\"value\":\"/p/$p\"}" ;;
    6) c="{\"field\":\"device\",\"op\":\"in\",\"value\":[\"tablet\"]},{\"field\":\"page_views\",\"op\":\"gte\",\"value\":3}" ;;
    7) c="{\"field\":\"page_views\",\"op\":\"gte\",\"value\":$((1000 + k))}" ;;
    8) c="{\"field\":\"url\",\"op\":\"glob\",\"value\":\"*/p/$p?*\"},{\"field\":\"time_on_page\",\"op\":\"gte\",\"value\":$((600 + k))}" ;;
    9) c="{\"field\":\"time_on_site\",\"op\":\"gte\",\"value\":$((1800 + k))}" ;;
    10) c="{\"field\":\"event\",\"op\":\"equals\",\"value\":\"signup-$k\"}" ;;
    11) c="{\"field\":\"visitor\",\"op\":\"is\",\"value\":\"returning\"},{\"field\":\"url\",\"op\":\"contains\",\"value\":\"/pricing-$k\"}" ;;
    esac
    echo "{\"name\":\"rule $k\",\"conditions\":[$c],\"actions\":[$act]}"
}

metrics() { curl -fsS "$U/metrics" >"$1"; }
live_count() { hn_redis ZCOUNT "hn:live:{$WID}" "($(($(date +%s%3N) - 300000))" +inf; }
live_all() { [ "$(live_count)" -gt "$VISITORS" ]; }   # and the probe's session
engine_has() {   # engine_has N: the engine keeps state of ≥ N sessions
    metrics "$HN_TMP/m.poll"
    awk -v n="$1" '$1 == "herenow_rules_sessions" && $2 >= n { ok = 1 } END { exit !ok }' "$HN_TMP/m.poll"
}
rules_loaded() {
    metrics "$HN_TMP/m.poll"
    awk -v n="$RULES" '$1 == "herenow_rules_loaded" && $2 >= n { ok = 1 } END { exit !ok }' "$HN_TMP/m.poll"
}
# every webhook decided is delivered or failed, none pending
hooks_settled() {
    metrics "$HN_TMP/m.poll"
    local fired ended
    fired=$(mval "$HN_TMP/m.poll" 'herenow_rule_firings_total{action="webhook"}')
    ended=$(awk '$1 ~ /^herenow_webhook_deliveries_total\{event="rule.fired",outcome="(delivered|failed)"\}$/ { s += $2 } END { print s + 0 }' "$HN_TMP/m.poll")
    [ "${fired%.*}" -le "${ended%.*}" ] && [ "$(mval "$HN_TMP/m.poll" herenow_webhook_inflight)" = 0 ]
}

say "$RULES rules, $VISITORS sessions, $RATE beacons/s for $DURATION s, $CLIENTS dashboards, $RUNS round(s)"
for run in $(seq 1 "$RUNS"); do
    # -- 1. widget, rules, api
    read -r WID KEY <<<"$(hn_widget_add --name "bench-rules-$run" --domain bench.example)"
    TOKEN=$("$BIN/herenowctl" token create --widget "$WID" --name "bench-rules-$run" 2>/dev/null)
    [ -n "$WID" ] && [ -n "$KEY" ] && [ -n "$TOKEN" ] || die "widget and token"
    : >"$HN_TMP/rules.jsonl"
    # this round's secrets only: the receiver tries each one at every POST
    # (it read all the rounds' before: three times as many by the third round,
    # half a core, and the webhooks' p90 past a second)
    : >"$SECRETS"
    for ((k = 0; k < RULES; k++)); do
        rule_json "$k" | tee -a "$HN_TMP/rules.jsonl" | "$BIN/herenowctl" rule add "$WID" |
            awk '/^webhook_secret:/ { print $2 }' >>"$SECRETS"
    done
    hn_spawn "api$run" env HERENOW_API_LISTEN="127.0.0.1:$API_PORT" "$BIN/herenow-api"
    pid_var="HN_PID_api$run"
    API_PID=${!pid_var}
    hn_wait_for 10 "herenow-api answers /livez" curl -fsS "$U/livez"
    hn_wait_for 30 "the engine loaded $RULES rules" rules_loaded
    hn_wait_for 10 "herenow-api has loaded the tokens" \
        bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $TOKEN' '$U/api/visitor-tracking/widgets/$WID/active-visitors?limit=1') = 200 ]"

    # -- 2. the sessions
    qbase=$(((run - 1) * QSPAN + 1))
    hn_wait_for 30 "the collector knows widget $WID" bash -c \
        "'$BIN/hn-ssefeed' --to 127.0.0.1:$UDP --key $KEY --mode seed --sessions 1 --seed 999$run --q-start $qbase >/dev/null &&
         [ \$(redis-cli -p $HN_REDIS_PORT ZCARD 'hn:live:{$WID}') -ge 1 ]"
    "$BIN/hn-ssefeed" --to "127.0.0.1:$UDP" --key "$KEY" --mode seed --sessions "$VISITORS" --seed "$run" --q-start "$qbase" >/dev/null
    hn_wait_for 60 "$VISITORS sessions live" live_all
    hn_wait_for 60 "the engine knows the $VISITORS sessions" engine_has $((VISITORS + 1))

    # -- 3. the dashboards
    STREAM=$("$BIN/herenowctl" stream key --shard $((WID % SHARDS)))
    hn_spawn "sse$run" env HN_SSE_TOKEN="$TOKEN" "$BIN/hn-sseclient" --to "127.0.0.1:$API_PORT" \
        --path "/api/visitor-tracking/widgets/$WID/active-visitors/stream" --clients "$CLIENTS" \
        --duration $((DURATION + 900)) --ready-timeout 120 \
        --redis "127.0.0.1:$HN_REDIS_PORT" --tail "$STREAM" --ping-ms 10
    pid_var="HN_PID_sse$run"
    SSE_PID=${!pid_var}
    hn_wait_for 150 "hn-sseclient: every stream has its snapshot" grep -q '^ready' "$HN_TMP/sse$run.log"

    # -- 4. the feed (measured window); the reference: the evaluation alone,
    # in a tight loop on the same rules, before the feed (a quiet machine)
    # and in the middle of it (the same load as the engine)
    ref_idle=$("$BIN/hn-rulebench" --rules "$HN_TMP/rules.jsonl" --records 200000 --seed "$run")
    (sleep "$((DURATION / 2))"; "$BIN/hn-rulebench" --rules "$HN_TMP/rules.jsonl" --records 200000 --seed "$run") \
        >"$HN_TMP/ref_busy.$run" &
    ref_pid=$!
    : >"$RLOG"
    metrics "$HN_TMP/m0.$run"
    load_start=$(cut -d' ' -f1 /proc/loadavg)
    a2=$(cpu_ticks "$API_PID"); r2=$(cpu_ticks "$REDIS_PID"); c2=$(cpu_ticks "$COL_PID"); n2=$(cpu_ticks "$RECV_PID"); t2=$(now_s)
    feed_out=$("$BIN/hn-ssefeed" --to "127.0.0.1:$UDP" --key "$KEY" --mode feed --sessions "$VISITORS" \
        --rate "$RATE" --duration "$DURATION" --pv-share "$PV_SHARE" --q-start $((qbase + 1)) --seed "$run")
    a3=$(cpu_ticks "$API_PID"); r3=$(cpu_ticks "$REDIS_PID"); c3=$(cpu_ticks "$COL_PID"); n3=$(cpu_ticks "$RECV_PID"); t3=$(now_s)
    load_end=$(cut -d' ' -f1 /proc/loadavg)
    wait "$ref_pid" || true
    ref_busy=$(cat "$HN_TMP/ref_busy.$run")

    # -- 5. the last deliveries, then the report
    settled=1
    hn_wait_for 60 "every webhook decided is delivered" hooks_settled || settled=0
    metrics "$HN_TMP/m1.$run"
    hn_stop "$SSE_PID" 30 || true
    overall=$(grep '^overall' "$HN_TMP/sse$run.log" || true)
    [ -n "$overall" ] || { hn_fail "round $run: hn-sseclient reported"; tail -5 "$HN_TMP/sse$run.log"; }
    api_alive=1
    hn_alive "$API_PID" || api_alive=0
    hn_stop "$API_PID" 20 || true
    grep -vE 'level=(info|debug)' "$HN_TMP/api$run.log" | head -20 >"$HN_TMP/api-warn.$run" || true
    # the next round's api must not load this widget's rules
    hn_psql "DELETE FROM widget_rules WHERE widget_id = $WID" >/dev/null

    # the receiver's log: beacon → webhook of every rule.fired POST
    hooks=$(node -e '
        const fs = require("fs");
        const lines = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean);
        const d = [], seen = new Set();
        let n = 0, bad = 0, dup = 0, untimed = 0;
        for (const l of lines) {
            const r = JSON.parse(l);
            if (r.event !== "rule.fired") continue;
            n++;
            if (!r.sig_ok || !r.ts_ok) bad++;
            if (seen.has(r.delivery)) { dup++; continue; }
            seen.add(r.delivery);
            const m = /[?&]t=([0-9]+)/.exec(JSON.parse(r.body).session.url || "");
            if (!m) { untimed++; continue; }
            d.push(r.at_ms - Number(m[1]) / 1000);
        }
        d.sort((a, b) => a - b);
        const q = (p) => d.length ? d[Math.min(d.length - 1, Math.floor(p * d.length))].toFixed(1) : "nan";
        console.log(`hooks=${n} hooks_distinct=${seen.size} hooks_bad_sig=${bad} hooks_dup=${dup} hooks_untimed=${untimed}` +
            ` hook_p50_ms=${q(0.5)} hook_p90_ms=${q(0.9)} hook_p99_ms=${q(0.99)} hook_max_ms=${d.length ? d[d.length - 1].toFixed(1) : "nan"}`);
    ' "$RLOG")

    m0=$HN_TMP/m0.$run m1=$HN_TMP/m1.$run
    recs=$(delta "$m0" "$m1" herenow_rule_eval_record_seconds_count)
    rsec=$(delta "$m0" "$m1" herenow_rule_eval_record_seconds_sum)
    # the histogram's buckets over the feed: p50 and p90 (linear inside a
    # bucket), the share of records evaluated in 2 µs or less, and of those
    # over 64 µs (a thread the machine took away mid-evaluation) with the
    # most the others can average (the sum less each one's bucket floor)
    evq=$(awk -v sum="$rsec" '
        FNR == 1 { f++ }
        $1 ~ /^herenow_rule_eval_record_seconds_bucket/ {
            le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le)
            if (f == 1) b0[le] = $2; else { n++; les[n] = le; c[n] = $2 - b0[le] }
        }
        END {
            total = c[n]; lo = 0; p50 = p90 = -1
            for (i = 1; i <= n; i++) {
                hi = les[i] == "+Inf" ? lo * 4 : les[i] + 0; prev = i > 1 ? c[i - 1] : 0
                if (p50 < 0 && c[i] >= total * 0.5 && c[i] > prev) p50 = lo + (hi - lo) * (total * 0.5 - prev) / (c[i] - prev)
                if (p90 < 0 && c[i] >= total * 0.9 && c[i] > prev) p90 = lo + (hi - lo) * (total * 0.9 - prev) / (c[i] - prev)
                if (les[i] == "2e-06") le2 = c[i]
                if (les[i] == "6.4e-05") le64 = c[i]
                if (lo >= 64e-6) floor_sum += (c[i] - prev) * lo
                lo = hi
            }
            printf "eval_p50_us=%.2f eval_p90_us=%.2f eval_le2us_pct=%.1f", p50 * 1e6, p90 * 1e6, total ? le2 / total * 100 : 0
            over = total ? (total - le64) / total * 100 : 0
            fl = sum > 0 ? floor_sum / sum * 100 : 0
            rest = le64 > 0 ? (sum - floor_sum) / le64 * 1e6 : 0
            printf " eval_over64us_pct=%.2f eval_over64us_floor_pct=%.1f eval_le64us_mean_max_us=%.3f", over, fl, rest
        }' "$m0" "$m1")
    evals=$(delta "$m0" "$m1" herenow_rule_evaluations_total)
    feed_s=$(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.3f", b - a }')
    sent=$(kv sent "$feed_out")
    line="run=$run load=$load_start,$load_end feed_s=$feed_s sent=$sent pv=$(kv pv_n "$feed_out") feed_rate=$(kv rate "$feed_out")"
    line+=" eval_records=${recs%.*} eval_us_per_record=$(awk -v s="$rsec" -v n="$recs" 'BEGIN { printf "%.3f", (n > 0 ? s * 1e6 / n : -1) }')"
    line+=" $evq rules_per_record=$(awk -v e="$evals" -v n="$recs" 'BEGIN { printf "%.1f", (n > 0 ? e / n : 0) }')"
    line+=" eval_us_per_beacon=$(awk -v s="$rsec" -v n="$sent" 'BEGIN { printf "%.3f", (n > 0 ? s * 1e6 / n : -1) }')"
    line+=" fired_webhook=$(delta "$m0" "$m1" 'herenow_rule_firings_total{action="webhook"}')"
    line+=" fired_alert=$(delta "$m0" "$m1" 'herenow_rule_firings_total{action="alert"}')"
    line+=" delivered=$(delta "$m0" "$m1" 'herenow_webhook_deliveries_total{event="rule.fired",outcome="delivered"}')"
    line+=" retried=$(delta "$m0" "$m1" 'herenow_webhook_deliveries_total{event="rule.fired",outcome="retried"}')"
    line+=" failed=$(delta "$m0" "$m1" 'herenow_webhook_deliveries_total{event="rule.fired",outcome="failed"}')"
    line+=" claims_lost=$(delta "$m0" "$m1" herenow_rule_claims_lost_total)"
    line+=" engine_sessions=$(mval "$m1" herenow_rules_sessions) engine_timers=$(mval "$m1" herenow_rules_timers) settled=$settled api_alive=$api_alive"
    line+=" api_cpu_pct=$(pct $((a3 - a2)) "$feed_s") redis_cpu_pct=$(pct $((r3 - r2)) "$feed_s")"
    line+=" collector_cpu_pct=$(pct $((c3 - c2)) "$feed_s") receiver_cpu_pct=$(pct $((n3 - n2)) "$feed_s")"
    line+=" ref_rules=$(kv evaluated "$ref_idle") ref_idle_cpu_ns=$(kv cpu_ns "$ref_idle") ref_busy_cpu_ns=$(kv cpu_ns "$ref_busy") ref_busy_wall_ns=$(kv wall_ns "$ref_busy")"
    line+=" $hooks $overall"
    echo "$line" >>"$RES"
    say "round $run: eval $(kv eval_us_per_record "$line") µs per record ($(kv rules_per_record "$line") rules each);" \
        "webhooks $(kv hooks_distinct "$line"), p50 $(kv hook_p50_ms "$line") / p99 $(kv hook_p99_ms "$line") ms;" \
        "hub p99 $(kv p99_ms "$overall") ms, tail p99 $(kv tail_p99_ms "$overall") ms"
done

# ---- report ------------------------------------------------------------------------------------
med() { while read -r l; do kv "$1" "$l"; done <"$RES" | bench_median; }
runs_of() { while read -r l; do kv "$1" "$l"; done <"$RES" | paste -sd/ | sed 's#/# / #g'; }
sum_of() { while read -r l; do kv "$1" "$l"; done <"$RES" | awk '{ s += $1 } END { print s + 0 }'; }
HP99=$(med hook_p99_ms)
EV=$(med eval_us_per_record)
EV100=$(awk -v e="$EV" -v r="$RULES" 'BEGIN { printf "%.3f", e * 100 / r }')
MET_HOOK=$(awk -v a="$HP99" -v t="$TARGET_P99_MS" 'BEGIN { print (a >= 0 && a <= t) ? "met" : "**missed**" }')
MET_EVAL=$(awk -v a="$EV100" -v t="$TARGET_EVAL_US" 'BEGIN { print (a >= 0 && a <= t) ? "met" : "**missed**" }')
T_TOTAL=$(($(date +%s) - T_START))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
OUT=$HN_TMP/section.md
{
    echo "$SECTION"
    echo
    echo "Run $START_DATE on $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), Linux $(uname -r),"
    echo "Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), node $(node --version); load average before $LOAD_BEFORE, after"
    echo "$LOAD_AFTER; commit $GIT_ID; herenow-api built $BUILD_ID. The feeder, collector, Redis, PostgreSQL (the"
    echo "drain's writes, the rules' claims and outbox), herenow-api, the receiver and the clients share the cores;"
    echo "loopback only. The whole run took $T_TOTAL s."
    echo
    echo "Command: \`$CMDLINE\` — $RUNS round(s), each on a new widget with $RULES rules (bench/rules.sh: 3 that"
    echo "fire — two webhooks, one alert — and $((RULES - 3)) of every condition type that this traffic does not match,"
    echo "time conditions among them, so that every session holds timers) and a fresh herenow-api (every setting at"
    echo "its default, the drain on; HERENOW_RULES_READ_MS 50): $VISITORS live sessions (one page view each), $CLIENTS dashboards on the widget's live"
    echo "stream, then $RATE beacons/s over UDP for $DURATION s, round-robin over the sessions, $(awk -v p="$PV_SHARE" 'BEGIN { printf "%d", p * 100 }') % page views whose URL"
    echo "carries the send time (\`?t=<µs>&n=<seq>\`), the rest heartbeats. A webhook rule fires once per session, on"
    echo "its first page view whose number ends in 3 (r0) or 7 (r1): about 10 % of the page views of sessions that"
    echo "have not fired yet. Medians over the rounds."
    echo
    echo "| | median | rounds |"
    echo "|---|---|---|"
    echo "| **evaluation per record, µs** ($RULES rules; target ≤ $TARGET_EVAL_US per 100 rules) | **$EV** | $(runs_of eval_us_per_record) |"
    echo "| evaluation per record p50 / p90 (from the histogram), µs; records in ≤ 2 µs | $(med eval_p50_us) / $(med eval_p90_us); $(med eval_le2us_pct) % | $(runs_of eval_p50_us) (p50) |"
    echo "| records over 64 µs (the thread descheduled mid-evaluation), % of records; their share of the sum, at least | $(med eval_over64us_pct) %; $(med eval_over64us_floor_pct) % | $(runs_of eval_over64us_pct) |"
    echo "| … the mean of the others (records in ≤ 64 µs), µs, at most | $(med eval_le64us_mean_max_us) | $(runs_of eval_le64us_mean_max_us) |"
    echo "| rules evaluated per record (reading a field the record changed; not fired; not failed on a field that did not change) | $(med rules_per_record) | |"
    echo "| same-run reference, hn-rulebench (the evaluation alone, $(med ref_rules) rules a record): CPU per record before the feed / during it, µs | $(awk -v a="$(med ref_idle_cpu_ns)" -v b="$(med ref_busy_cpu_ns)" 'BEGIN { printf "%.3f / %.3f", a / 1000, b / 1000 }') | $(runs_of ref_idle_cpu_ns) (before, ns) |"
    echo "| … its wall clock per record during the feed, µs; the engine's mean ÷ it | $(awk -v b="$(med ref_busy_wall_ns)" -v e="$EV" 'BEGIN { printf "%.3f; %.2f", b / 1000, (b > 0 ? e * 1000 / b : 0) }') | |"
    echo "| records evaluated (page views) / beacons sent | $(med eval_records) / $(med sent) | |"
    echo "| evaluation per beacon sent (heartbeats change no field: no evaluation), µs | $(med eval_us_per_beacon) | |"
    echo "| **beacon → webhook received p99, ms** (target ≤ $TARGET_P99_MS) | **$HP99** | $(runs_of hook_p99_ms) |"
    echo "| beacon → webhook p50 / p90 / max, ms | $(med hook_p50_ms) / $(med hook_p90_ms) / $(med hook_max_ms) | $(runs_of hook_max_ms) (max) |"
    echo "| reference: beacon → live hub \`update\` at a dashboard p50 / p99, ms | $(med p50_ms) / $(med p99_ms) | $(runs_of p99_ms) (p99) |"
    echo "| reference: beacon → Redis stream (XREAD tail) p50 / p99, ms | $(med tail_p50_ms) / $(med tail_p99_ms) | $(runs_of tail_p99_ms) (p99) |"
    echo "| webhook p99 / hub p99 | $(awk -v a="$HP99" -v b="$(med p99_ms)" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }') | |"
    echo "| reference: Redis PING round trip p99, ms | $(med ping_p99_ms) | |"
    echo "| webhooks decided / delivered / received (distinct) per round | $(med fired_webhook) / $(med delivered) / $(med hooks_distinct) | $(runs_of hooks_distinct) (received) |"
    echo "| retried / failed / bad signatures / duplicates / claims lost (all rounds) | $(sum_of retried) / $(sum_of failed) / $(sum_of hooks_bad_sig) / $(sum_of hooks_dup) / $(sum_of claims_lost) | |"
    echo "| alerts fired per round | $(med fired_alert) | |"
    echo "| herenow-api CPU during the feed, % of one core | $(med api_cpu_pct) | $(runs_of api_cpu_pct) |"
    echo "| Redis / collector / receiver CPU during the feed, % of one core | $(med redis_cpu_pct) / $(med collector_cpu_pct) / $(med receiver_cpu_pct) | |"
    echo "| feeder: beacons/s achieved | $(med feed_rate) | |"
    echo "| load average (1 min) at the start, end of the feed | | $(runs_of load) |"
    echo
    echo "Against the targets: evaluation in the engine $EV100 µs per record per 100 rules ≤ $TARGET_EVAL_US: $MET_EVAL (the"
    echo "evaluation alone, hn-rulebench, $(awk -v a="$(med ref_idle_cpu_ns)" -v r="$(med ref_rules)" 'BEGIN { printf "%.3f", a / 1000 }') µs of CPU per record on the quiet machine:"
    echo "$(awk -v a="$(med ref_idle_cpu_ns)" -v t="$TARGET_EVAL_US" 'BEGIN { print (a / 1000 <= t) ? "met" : "**missed**" }')); beacon → webhook p99 $HP99 ms ≤ $TARGET_P99_MS ms: $MET_HOOK."
    echo
    echo "The webhook's way before 2026-12-07 (the claim as BEGIN, four statements, NOTIFY and COMMIT, each"
    echo "parsed and planned at every match; 4 senders): the same bench gave rounds of 91 / 2,680 / 3,816 ms p99,"
    echo "the engine up to 1.8 s behind the stream at the feed's start (about 480 claims/s) and the senders 3 s"
    echo "behind the outbox. The claim is now one prepared statement (docs/RULES.md §1) and 16 POSTs go out at"
    echo "once by default."
    echo
    echo "*Evaluation* is Δ\`herenow_rule_eval_record_seconds_sum\` / Δ\`…_count\` (the histogram of api/rules/engine.c) over"
    echo "the feed: the engine's time deciding a record against every rule that reads a field the record changed"
    echo "(one clock pair per record; the firing's PostgreSQL round trips come after and are not in it). *Beacon →"
    echo "webhook*: the receiver's arrival time (ms) − the send time in the fired page view's URL (the body's"
    echo "\`session.url\`), over every \`rule.fired\` POST: the collector, the stream, the engine's claim and outbox"
    echo "rows in PostgreSQL, the sender's NOTIFY wake-up and the POST. The hub's delay is the same page views' way"
    echo "to a dashboard's \`update\` (it batches every 100 ms by design), measured by hn-sseclient in the same rounds."
    echo
    echo "The engine's figure is a wall clock inside a busy process on a machine the bench fills (the feeder, the"
    echo "collector, Redis, PostgreSQL, the api, the receiver and the clients on 2 cores): the same loop of"
    echo "evaluations, run alone by hn-rulebench in the middle of the feed, takes several times its quiet-machine"
    echo "time too. hn-rulebench evaluates every rule that reads a field a page view changes ($(med ref_rules) of"
    echo "$RULES); the engine also skips the rules that last failed on a field the record did not change."
    echo
    echo "Where the engine's time goes (measured 2026-12-06 and 2026-12-07 with instrumentation since removed,"
    echo "single rounds): the two clock reads cost 0.07 µs a record. A page view changes the URL, so about 57 of"
    echo "the 100 rules are candidates at each one; the prefilters (a rule's page views, its literal's trigrams)"
    echo "rule out about 52 of them, and about 5 are evaluated in full (r0..r2 until they fire, the page-view"
    echo "rules once their minimum is reached). The figure was 3.74 µs (p50 2.05) on 2026-12-07 before five"
    echo "changes, each measured with \`RUNS=3\`:"
    echo
    echo "1. A record's matches are claimed after the records of its read, not between two evaluations (the"
    echo "   thread slept in each claim's round trip while PostgreSQL ran on its core): 3.25 µs (p50 1.72)."
    echo "2. \`in\` lists packed into their condition and compared with an inline ASCII fold (perf put"
    echo "   strcasecmp and the list's separate strings at a sixth of the evaluation's samples); the trigram"
    echo "   set 1,024 bits (a 128-byte clear): 2.86 µs (p50 1.64)."
    echo "3. Each record's time logged with its place in its XREAD reply: the engine read every 4–5 ms, about"
    echo "   8 records a read, and the first record of a read cost 7.5 µs (mean; median 5.4), the second 4.3,"
    echo "   the later ones 1.4–1.7 (median): the rules' data and code, and the sessions', were cold after"
    echo "   the thread's sleep. The first records were 28 % of the sum. A widget's rules are now prefetched"
    echo "   at its first record of a read, a session's memo and timers at its record (single rounds 2.74 and"
    echo "   2.96), and the engine waits \`HERENOW_RULES_READ_MS\` after a read before the next (20 ms then,"
    echo "   about 40 records a read at this rate): 1.91–2.08 µs over four runs (p50 1.2–1.3). A rule's"
    echo "   action comes up to that much later: the webhooks' p50 grew from 7.9 to about 20 ms."
    echo "4. The rules a session has fired, a bitset beside its memo that the candidates leave out at once;"
    echo "   each candidate used to scan the session's fired ids, in an allocation of their own: the figure"
    echo "   above (a first run: 1.623 µs, p50 0.77); with the receiver below fixed, runs of 1.775 and"
    echo "   2.081 µs, at the target, not under it."
    echo "5. \`HERENOW_RULES_READ_MS\` 50 by default (was 20): about 100 records a read at this rate, each"
    echo "   read's cold start shared by two and a half times as many: the figure above (a first run: 1.372"
    echo "   µs, p50 0.70). The webhooks' p50 is about 45 ms (p99 under 150 ms), against the 1 s target;"
    echo "   \`0\` gives the old behaviour, a read at each record, for an operator who wants the least delay."
    echo
    echo "Until 2026-12-07 the third round of a run was the slowest (2.0–2.5 µs, webhooks' p99 up to 1.2 s):"
    echo "the receiver tried every round's webhook secrets at each POST (three times as many by the third round, half a core"
    echo "of HMACs on the 2 cores). Each round now gives it its own rules' secrets only."
    echo
    echo "Records that set a timer cost about 0.9 µs more (median) than the others: the session's timer"
    echo "slot and the far list's append (a timer's push into a binary heap of 88,000 timers with 96-byte"
    echo "entries took 4.4 µs before the far list: docs/RULES.md §1). Tried and not kept: packing the"
    echo "prefilters into one pass over a compact array (no change). Past the median, the machine's share:"
    echo "the records over 64 µs above (a thread descheduled in the middle of an evaluation) are a fraction"
    echo "of a percent of the records and a tenth or more of the sum. perf of the \`hn-rules\` thread"
    echo "(2026-12-07, before these changes) put it at about 34 µs of CPU a record read, the evaluation"
    echo "included: the claims' round trips, free and malloc of hiredis's reply objects (one allocation per"
    echo "string of each record read) about a fifth, \`read\` an eighth."
    echo
    echo "<details><summary>Every round (key=value)</summary>"
    echo
    echo '```'
    cat "$RES"
    echo '```'
    echo
    echo "</details>"
} >"$OUT"
bench_finish bench-rules
