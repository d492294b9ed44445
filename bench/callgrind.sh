#!/usr/bin/env bash
# callgrind.sh: the collector's instructions per beacon, by function.
#
#   hn-loadgen --count N ──UDP──► herenow-collector under valgrind --tool=callgrind ──► redis
#
# Instruction counts repeat from run to run where CPU times on this shared
# machine do not; bench/lib/udp-notes.md quotes this script's output. One
# worker thread, a fresh Redis, a fixed count of beacons at a rate the
# collector keeps up with under valgrind (no kernel drops), the bench's
# widgets and session count. Prints the top functions by inclusive cost per
# accepted beacon. Under valgrind the collector runs ~50 × slower, so its
# ticks gather fewer records per flush than at full speed: the per-flush
# costs (ZADD grouping, XADD, the send) weigh more here than in bench-udp.
#
# Environment: COUNT=30000 RATE=5000 SESSIONS=600000 TOP=30
#   HN_BIN (make sets it; default build/release)  KEEP=1: keep the work dir
set -euo pipefail

cd "$(dirname "$0")/.."
HN_BIN=${HN_BIN:-build/release}
COUNT=${COUNT:-30000}
RATE=${RATE:-5000}
SESSIONS=${SESSIONS:-600000}
TOP=${TOP:-30}
WIDGETS=(bench-shop bench-blog bench-docs bench-saas bench-news)

die() { echo "callgrind: $*" >&2; exit 1; }
for t in valgrind callgrind_annotate redis-cli; do command -v "$t" >/dev/null || die "$t not found"; done
for b in herenow-collector hn-loadgen hn-freeport; do
    [ -x "$HN_BIN/$b" ] || die "$HN_BIN/$b missing"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hn-callgrind.XXXXXX")
export HERENOW_SPOOL_DIR="$WORK/spool"     # never the repo's var/spool
COL_PID=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$COL_PID" ]; then kill -TERM "$COL_PID" 2>/dev/null || true; wait "$COL_PID" 2>/dev/null || true; fi
    scripts/redis.sh stop "$WORK/redis" >/dev/null 2>&1 || true
    if [ "${KEEP:-0}" = 1 ]; then echo "callgrind: kept $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

metric() {   # metric PORT NAME: the value of an unlabelled or exactly-labelled series
    local fd line
    exec {fd}<>"/dev/tcp/127.0.0.1/$1"
    printf 'GET /metrics HTTP/1.0\r\n\r\n' >&"$fd"
    while IFS= read -r line <&"$fd"; do
        case $line in "$2 "*) echo "${line##* }" ;; esac
    done
    exec {fd}<&-
}

ready() {   # ready PORT: /readyz answers 200
    local fd line
    { exec {fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'GET /readyz HTTP/1.0\r\n\r\n' >&"$fd"
    IFS= read -r line <&"$fd" || line=
    exec {fd}<&-
    case $line in 'HTTP/1.'?' 200 '*) return 0 ;; *) return 1 ;; esac
}

rport=$("$HN_BIN/hn-freeport")
scripts/redis.sh start --fast "$WORK/redis" "$rport" >/dev/null
hset=()
for i in "${!WIDGETS[@]}"; do hset+=("${WIDGETS[$i]}" "$((i + 1))"); done
redis-cli -p "$rport" HSET hn:widgets "${hset[@]}" >/dev/null

uport=$("$HN_BIN/hn-freeport")
aport=$("$HN_BIN/hn-freeport")
HERENOW_REDIS_URL="redis://127.0.0.1:$rport/0" HERENOW_UDP_LISTEN="127.0.0.1:$uport" \
    HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN="127.0.0.1:$aport" HERENOW_THREADS=1 \
    HERENOW_LOG_LEVEL=warn \
    valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
    "$HN_BIN/herenow-collector" </dev/null >"$WORK/collector.log" 2>&1 &
COL_PID=$!
deadline=$((SECONDS + 120))
until ready "$aport"; do
    kill -0 "$COL_PID" 2>/dev/null || { cat "$WORK/collector.log" >&2; die "collector exited"; }
    [ "$SECONDS" -lt "$deadline" ] || die "collector not up under valgrind in 120 s"
    sleep 0.2
done

"$HN_BIN/hn-loadgen" --to "127.0.0.1:$uport" --widgets "$(IFS=,; echo "${WIDGETS[*]}")" \
    --sessions "$SESSIONS" --rate "$RATE" --count "$COUNT" --seed 1 >"$WORK/loadgen.out"
deadline=$((SECONDS + 300))
while :; do
    w=$(metric "$aport" herenow_records_written_total)
    a=$(metric "$aport" 'herenow_beacons_accepted_total{transport="udp"}')
    [ "$w" = "$a" ] && [ "$((w + 0))" -gt 0 ] && break
    [ "$SECONDS" -lt "$deadline" ] || die "not drained: written=$w accepted=$a"
    sleep 0.5
done
flushes=$(metric "$aport" herenow_batch_records_count)
kill -TERM "$COL_PID"
wait "$COL_PID" || true
COL_PID=

echo "callgrind: $a beacons accepted of $COUNT sent, $flushes flushes ($(awk -v a="$a" -v f="$flushes" 'BEGIN { printf "%.1f", a / f }') records per flush)"
callgrind_annotate --inclusive=yes "$WORK/callgrind.out" 2>/dev/null |
    awk -v n="$a" -v top="$TOP" '
        /^-+$/ { sep++; next }
        /PROGRAM TOTALS/ { gsub(",", "", $1); total = $1; printf "total: %.0f instructions per beacon\n", total / n; next }
        # Lines without an object ([...]) repeat a function under the
        # absolute path of its source (inlined code); keep one of each.
        sep >= 3 && $1 ~ /^[0-9,]+$/ && / \[/ && shown < top {
            v = $1; gsub(",", "", v)
            fn = $0; sub(/^ *[0-9,]+ +(\([^)]*\) +)?/, "", fn)
            obj = fn; sub(/^.* \[/, "", obj); sub(/\]$/, "", obj); sub(/^.*\//, "", obj)
            sub(/ \[.*$/, "", fn); sub(/^.*:/, "", fn)
            printf "%8.0f  %5.1f%%  %s (%s)\n", v / n, 100 * v / total, fn, obj
            shown++
        }'
