#!/usr/bin/env bash
# http.sh: `make bench-http` — the collector's HTTP ingress against nginx
# serving empty_gif, with the same wrk settings, measured in the same run
# (issue 4).
#
#   wrk ──HTTP──► herenow-collector ──RESP──► redis-server     (all its work: decode,
#                                                               UA cache, geo, hash, presence, XADD)
#   wrk ──HTTP──► nginx (bench/nginx.conf: empty_gif, return 204)
#
# Three rows, each against both servers, rows interleaved per round so the
# machine's noise spreads over all of them:
#   post-keepalive   POST /b, a 1-beacon msgpack body (a page view of a random
#                    one of SESSIONS sessions), keep-alive connections
#   post-close       the same with "Connection: close": a new connection per request
#   pixel            GET /p.gif?… (the same page view as a query string), keep-alive
# nginx answers POST /b with `return 204` (it reads and drops the body) and
# GET /p.gif with empty_gif. Both servers get the same number of worker
# threads/processes (WORKERS) and the same client addresses; the
# collector's rate limit is off (HERENOW_RATE_LIMIT=0: wrk is one client),
# its user-agent parsing and geo (the test MMDB) are on.
#
# Reported (medians of RUNS rounds): requests/s and p99 for both, the ratio,
# and the CPU seconds the collector, its Redis and nginx used per request.
# One extra round of post-keepalive runs under `perf record -e cpu-clock`
# (software clock: this machine has no hardware counters) for where the
# collector's CPU goes. Every 204 the collector answered must be a record
# Redis acknowledged: checked after each collector run.
#
# TLS=1: HTTPS instead (the collector's HERENOW_HTTPS_LISTEN, nginx's `listen … ssl` with
# the same ECDSA P-256 certificate, protocols and ciphers): the keep-alive and the
# new-connection rows (a full TLS handshake per request: wrk resumes no session).
# Written to a section of its own.
#
# PIN=1: Redis alone on CPU 1; wrk and the server (collector or nginx) share
# CPU 0 — what the issue asks about: the ratio with Redis on its own core.
# Written to a section of its own.
#
# Environment: RUNS=3 DURATION=10 (s) CONNECTIONS=64 WRK_THREADS=1 WORKERS=1
# SESSIONS=10000 PIN=0 BENCH_DOC=docs/BENCHMARKS.md ("" : don't write)
# BENCH_NOTES=bench/lib/http-notes.md PERF=1 (0: skip the profile)
set -euo pipefail
cd "$(dirname "$0")/.."
CMDLINE="make bench-http"
for v in RUNS DURATION CONNECTIONS WRK_THREADS WORKERS SESSIONS PIN TLS; do
    if [ -n "${!v+x}" ]; then CMDLINE="$v=\"${!v}\" $CMDLINE"; fi
done
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-1}
WORKERS=${WORKERS:-1}
SESSIONS=${SESSIONS:-10000}
PERF=${PERF:-1}
PIN=${PIN:-0}
TLS=${TLS:-0}
KINDS="post close pixel"
if [ "$PIN" = 1 ]; then
    [ "$(nproc)" -ge 2 ] || { echo "bench-http: PIN=1 needs 2 cores" >&2; exit 1; }
    SECTION="## HTTP ingress against nginx, Redis on its own core (make bench-http PIN=1)"
    RUNON=(taskset -c 0)
    PERF=0
else
    SECTION="## HTTP ingress against nginx (make bench-http)"
    RUNON=()
fi
if [ "$TLS" = 1 ]; then
    SECTION="## HTTPS ingress against nginx (make bench-http TLS=1)"
    [ "$PIN" = 1 ] && SECTION="## HTTPS ingress against nginx, Redis on its own core (make bench-http TLS=1 PIN=1)"
    KINDS="post close"
fi
# the profiled row: TLS=1, the new-connection one (the handshakes)
PERF_KIND=post
[ "$TLS" = 1 ] && PERF_KIND=close
BENCH_DOC=${BENCH_DOC-docs/BENCHMARKS.md}
BENCH_NOTES=${BENCH_NOTES:-bench/lib/http-notes.md}
NGINX=${NGINX:-/usr/sbin/nginx}

source bench/lib/doc-section.sh
source tests/lib.sh
HN_QUIET_LOGS=1

for tool in wrk "$NGINX" redis-server perl; do
    command -v "$tool" >/dev/null || { echo "bench-http: $tool is missing (scripts/setup.sh --bench)" >&2; exit 1; }
done

CTL="$HN_BIN/herenowctl"
hn_start_redis
hn_redis HSET hn:widgets benchkey00000001 1 >/dev/null
perl tests/tools/mkmmdb.pl "$HN_TMP/geo.mmdb"
REDIS_PID=$(cat "$HN_TMP/redis/redis.pid")
[ "$PIN" = 1 ] && taskset -a -p -c 1 "$REDIS_PID" >/dev/null

HTTP=$(hn_free_port)
ADMIN=$(hn_free_port)
NGX=$(hn_free_port)
SCHEME=http
COL_PORT=$HTTP NGX_PORT=$NGX
TLS_ENV=()
mkdir -p "$HN_TMP/nginx/logs"
: >"$HN_TMP/nginx/tls.conf"
if [ "$TLS" = 1 ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench \
        -addext subjectAltName=IP:127.0.0.1 -keyout "$HN_TMP/tls.key" -out "$HN_TMP/tls.pem" 2>/dev/null
    SCHEME=https COL_PORT=$(hn_free_port) NGX_PORT=$(hn_free_port)
    TLS_ENV=(HERENOW_HTTPS_LISTEN="127.0.0.1:$COL_PORT" HERENOW_TLS_CERT="$HN_TMP/tls.pem" HERENOW_TLS_KEY="$HN_TMP/tls.key")
    # what the collector speaks (common/tls.c): TLS 1.2/1.3, the same ciphers, tickets, no cache
    cat >"$HN_TMP/nginx/tls.conf" <<EOF
    server {
        listen 127.0.0.1:$NGX_PORT ssl reuseport;
        ssl_certificate $HN_TMP/tls.pem;
        ssl_certificate_key $HN_TMP/tls.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305;
        ssl_session_tickets on;
        location = /p.gif { empty_gif; add_header Cache-Control no-store; }
        location = /b { return 204; }
    }
EOF
fi

# --- nginx ------------------------------------------------------------------------------------
sed -e "s/@PORT@/$NGX/" -e "s/@WORKERS@/$WORKERS/" -e "s#@DIR@#$HN_TMP/nginx#" bench/nginx.conf \
    >"$HN_TMP/nginx/nginx.conf"
"$NGINX" -p "$HN_TMP/nginx" -c "$HN_TMP/nginx/nginx.conf"
hn_wait_for 5 "nginx answers" curl -fsS -o /dev/null "http://127.0.0.1:$NGX/p.gif"
[ "$TLS" = 0 ] || hn_wait_for 5 "nginx answers over HTTPS" curl -fsSk -o /dev/null "https://127.0.0.1:$NGX_PORT/p.gif"
NGX_MASTER=$(cat "$HN_TMP/nginx/nginx.pid")
if [ "$PIN" = 1 ]; then
    for p in "$NGX_MASTER" $(pgrep -P "$NGX_MASTER"); do taskset -a -p -c 0 "$p" >/dev/null; done
fi
stop_nginx() { [ -z "${NGX_MASTER:-}" ] || kill -QUIT "$NGX_MASTER" 2>/dev/null || true; }
on_exit() {
    local rc=$?
    stop_nginx
    (exit "$rc")
    hn_cleanup
}
trap on_exit EXIT

# --- the collector ---------------------------------------------------------------------------
start_collector() {
    hn_spawn collector env HERENOW_HTTP_LISTEN="127.0.0.1:$HTTP" HERENOW_UDP_LISTEN= \
        HERENOW_ADMIN_LISTEN="127.0.0.1:$ADMIN" HERENOW_THREADS="$WORKERS" HERENOW_RATE_LIMIT=0 \
        HERENOW_GEOIP_DB="$HN_TMP/geo.mmdb" HERENOW_LOG_LEVEL=warn "${TLS_ENV[@]}" "$HN_BIN/herenow-collector"
    hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
    [ "$PIN" = 1 ] && taskset -a -p -c 0 "$HN_PID_collector" >/dev/null
    return 0
}
metric() {
    curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { printf "%d\n", v + 0 }'
}

# --- the requests ------------------------------------------------------------------------------
# One page view packed by herenowctl; its 12-char session id is replaced per
# request by the wrk script (the same length keeps the msgpack valid).
HEX=$("$CTL" send --dry-run --key benchkey00000001 --session SESSIONXXXXX --url https://example.com/pricing \
      --title Pricing --referrer https://www.google.com/ | sed -n 2p)
LUABODY=$(sed 's/../\\x&/g' <<<"$HEX")
UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
for kind in post close pixel; do
    cat >"$HN_TMP/$kind.lua" <<EOF
local body = "$LUABODY"
local kind = "$kind"
local ua = "$UA"
math.randomseed(os.time() + math.floor(os.clock() * 1000000))
request = function()
    local sid = string.format("s%011d", math.random(0, $SESSIONS - 1))
    local h = { ["User-Agent"] = ua, ["Content-Type"] = "text/plain;charset=UTF-8",
                ["X-Forwarded-For"] = "203.0.113." .. math.random(1, 250) }
    if kind == "close" then h["Connection"] = "close" end
    if kind == "pixel" then
        return wrk.format("GET", "/p.gif?v=1&k=benchkey00000001&s=" .. sid ..
            "&t=pv&q=1&u=https%3A%2F%2Fexample.com%2Fpricing&ti=Pricing&r=https%3A%2F%2Fwww.google.com%2F", h)
    end
    return wrk.format("POST", "/b", h, (body:gsub("SESSIONXXXXX", sid)))
end
EOF
done

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
cpu_tree() {   # nginx: master + workers
    local t=0 p
    for p in "$NGX_MASTER" $(pgrep -P "$NGX_MASTER"); do t=$((t + $(cpu_ticks "$p"))); done
    echo "$t"
}
TCK=$(getconf CLK_TCK)

# run_wrk KIND PORT OUT: one wrk run; prints "req/s p99_ms"
run_wrk() {
    "${RUNON[@]}" wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --latency -s "$HN_TMP/$1.lua" \
        "$SCHEME://127.0.0.1:$2" >"$3" 2>&1
    awk '/^Requests\/sec:/ { rps = $2 }
         /^ +99%/ { v = $2; if (v ~ /us$/) { sub(/us$/, "", v); v /= 1000 }
                    else if (v ~ /ms$/) { sub(/ms$/, "", v) } else if (v ~ /s$/) { sub(/s$/, "", v); v *= 1000 }
                    p99 = v }
         /Non-2xx/ { bad = $NF }
         END { printf "%s %s %s\n", rps, p99, bad + 0 }' "$3"
}

RES=$HN_TMP/results
: >"$RES"
start_collector
for round in $(seq 1 "$RUNS"); do
    for kind in $KINDS; do
        # the collector
        c0=$(cpu_ticks "$HN_PID_collector"); r0=$(cpu_ticks "$REDIS_PID")
        read -r rps p99 bad <<<"$(run_wrk "$kind" "$COL_PORT" "$HN_TMP/wrk-col-$kind-$round")"
        c1=$(cpu_ticks "$HN_PID_collector"); r1=$(cpu_ticks "$REDIS_PID")
        reqs=$(awk '/requests in/ { print $1 }' "$HN_TMP/wrk-col-$kind-$round")
        echo "collector $kind $round $rps $p99 $bad $reqs $(((c1 - c0))) $(((r1 - r0)))" >>"$RES"
        # nginx
        n0=$(cpu_tree)
        read -r rps p99 bad <<<"$(run_wrk "$kind" "$NGX_PORT" "$HN_TMP/wrk-ngx-$kind-$round")"
        n1=$(cpu_tree)
        reqs=$(awk '/requests in/ { print $1 }' "$HN_TMP/wrk-ngx-$kind-$round")
        echo "nginx $kind $round $rps $p99 $bad $reqs $((n1 - n0)) 0" >>"$RES"
        echo "round $round $kind: collector $(tail -2 "$RES" | head -1 | cut -d' ' -f4) req/s, nginx $rps req/s" >&2
    done
done

# Every 204 a record: wait until Redis has acknowledged all accepted beacons.
acked() { [ "$(metric herenow_records_written_total)" -ge "$(metric 'herenow_beacons_accepted_total{transport="http"}')" ]; }
hn_wait_for 30 "every accepted beacon written to Redis" acked
ACCEPTED=$(( $(metric 'herenow_beacons_accepted_total{transport="http"}') + $(metric 'herenow_beacons_accepted_total{transport="pixel"}') ))
WRITTEN=$(metric herenow_records_written_total)
DROPPED=$(curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk '/^herenow_beacons_dropped_total/ { s += $2 } END { print s + 0 }')

# --- where the collector's CPU goes -------------------------------------------------------------
PROFILE=""
if [ "$PERF" = 1 ] && command -v perf >/dev/null; then
    wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${DURATION}s" -s "$HN_TMP/$PERF_KIND.lua" "$SCHEME://127.0.0.1:$COL_PORT" \
        >/dev/null 2>&1 &
    WRK_PID=$!
    perf record -q -e cpu-clock -F 2000 -g -p "$HN_PID_collector" -o "$HN_TMP/perf.data" -- sleep $((DURATION - 2)) \
        >/dev/null 2>&1 || true
    wait "$WRK_PID" || true
    # (awk reads everything: perf report must not die of SIGPIPE under pipefail)
    PROFILE=$(perf report -i "$HN_TMP/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
        awk '/^ +[0-9.]+%/ && n < 25 { sub(/^ +/, ""); print; n++ }') || true
    SELF_DSO=$(perf report -i "$HN_TMP/perf.data" --no-children --sort dso --stdio 2>/dev/null |
        awk '/^ +[0-9.]+%/ && n < 12 { sub(/^ +/, ""); print; n++ }') || true
fi
hn_stop "$HN_PID_collector" 20 || true

# --- report -----------------------------------------------------------------------------------
med() { awk -v s="$1" -v k="$2" -v f="$3" '$1 == s && $2 == k { print $f }' "$RES" | bench_median; }
per_req_us() {   # server kind field(cpu ticks): µs of CPU per request, median over rounds
    awk -v s="$1" -v k="$2" -v f="$3" -v tck="$TCK" '$1 == s && $2 == k && $7 > 0 { print $f / tck * 1e6 / $7 }' "$RES" | bench_median
}
OUT=$HN_TMP/section.md
{
    echo "$SECTION"
    echo
    echo "Command: \`$CMDLINE\` ($(date -u +%Y-%m-%d), $(nproc) cores, $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ', with local changes')). "
    echo "wrk $WRK_THREADS thread(s), $CONNECTIONS connections, ${DURATION} s per run, $RUNS rounds, medians;"
    if [ "$PIN" = 1 ]; then
        echo "$WORKERS collector worker thread(s) and $WORKERS nginx worker process(es); Redis alone on CPU 1, wrk and the server share CPU 0 (taskset)."
    else
        echo "$WORKERS collector worker thread(s) and $WORKERS nginx worker process(es); wrk, the server and Redis share the 2 cores."
    fi
    echo
    echo "| row | collector req/s | collector p99 | nginx req/s | nginx p99 | ratio (req/s) | collector CPU µs/req | its Redis CPU µs/req | nginx CPU µs/req |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    for kind in $KINDS; do
        case $kind in post) name="POST /b keep-alive" ;; close) name="POST /b new connection each" ;; pixel) name="GET /p.gif keep-alive" ;; esac
        c=$(med collector "$kind" 4); n=$(med nginx "$kind" 4)
        printf '| %s | %.0f | %.2f ms | %.0f | %.2f ms | **%.2f** | %.1f | %.1f | %.1f |\n' "$name" "$c" \
            "$(med collector "$kind" 5)" "$n" "$(med nginx "$kind" 5)" "$(awk -v a="$c" -v b="$n" 'BEGIN { print a / b }')" \
            "$(per_req_us collector "$kind" 8)" "$(per_req_us collector "$kind" 9)" "$(per_req_us nginx "$kind" 8)"
    done
    echo
    echo "Non-2xx answers seen by wrk (all runs): collector $(awk '$1 == "collector" { s += $6 } END { print s + 0 }' "$RES"), nginx $(awk '$1 == "nginx" { s += $6 } END { print s + 0 }' "$RES"). "
    echo "Beacons the collector accepted: $ACCEPTED; records Redis acknowledged: $WRITTEN; dropped: $DROPPED."
    echo
    echo "Per run (server, row, round, req/s, p99 ms, non-2xx, requests, server CPU ticks, Redis CPU ticks; $TCK ticks/s):"
    echo
    echo '```'
    cat "$RES"
    echo '```'
    if [ -n "$PROFILE" ]; then
        echo
        echo "Where the collector's CPU goes (\`perf record -e cpu-clock -g\`, the $PERF_KIND row, self time by library):"
        echo
        echo '```'
        printf '%s\n' "$SELF_DSO"
        echo '```'
        echo
        echo "Top symbols (self time):"
        echo
        echo '```'
        printf '%s\n' "$PROFILE"
        echo '```'
    fi
    if [ "$TLS" = 1 ]; then
        echo
        echo "Both servers: one ECDSA P-256 certificate; wrk's OpenSSL negotiates TLS 1.3. The keep-alive row pays one handshake per connection; the new-connection row a full handshake (ECDHE + ECDSA signature) per request, on both servers."
    fi
    if [ "$PIN" = 0 ] && [ "$TLS" = 0 ] && [ -f "$BENCH_NOTES" ]; then echo; cat "$BENCH_NOTES"; fi
    if [ "$TLS" = 1 ] && [ -f bench/lib/https-notes.md ]; then echo; cat bench/lib/https-notes.md; fi
} >"$OUT"
cat "$OUT"
if [ -n "$BENCH_DOC" ]; then bench_write_section "$SECTION" "$OUT" "$BENCH_DOC"; fi
hn_done
