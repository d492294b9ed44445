#!/usr/bin/env bash
# udp.sh: `make bench-udp` — UDP ingress, end to end, against its ceiling.
#
# For every (threads, rate) and every run: a fresh redis-server (no
# persistence) and collector on free loopback ports, hn-loadgen sends for
# DURATION seconds, then we poll /metrics until every accepted beacon's
# Redis writes are acknowledged. The collector tees every RESP byte it sends
# (HERENOW_REDIS_TEE); after it stops, the same Redis is flushed and fed
# that exact command mix with `redis-cli --pipe`: the ceiling for this mix
# on this machine, measured in the same run.
#
#   loadgen ──UDP──► collector ──RESP──► redis        end to end
#                        └─tee─► file ──redis-cli --pipe──► redis (flushed)   ceiling
#   loadgen --emit-* (the same beacons) ─► files ──redis-cli --pipe──► redis (flushed)   references
#
# The two references are the beacons the load generator sent (same seed,
# sessions, widgets, mix and count: hn-loadgen --emit-naive/--emit-xadd
# regenerates them once the collector has stopped), replayed the same way
# into the same Redis: "naive", XADD + HSET of every field + EXPIRE + ZADD
# per beacon, and "xadd only", one XADD per beacon. Redis CPU per beacon is
# reported for all three, and the collector's as a ratio to the naive one:
# the absolute µs move from day to day on this shared machine, a ratio
# measured in the same run much less.
#
# Reported per row (medians of RUNS runs): offered and accepted beacons/s,
# loss = sent - accepted - counted drops (kernel drops are counted drops, but
# mean saturation), collector and Redis CPU µs per beacon, the ceiling and
# the ratio to it, the references. Results go to docs/BENCHMARKS.md, section
# "## UDP ingress (make bench-udp)", replaced on every run.
#
# Environment (the defaults take about 15 minutes on 2 cores, most of it
# replaying the references of the saturated rows, ~4 million beacons each):
#   RATES="10000 25000 50000 100000 200000 max"  beacons/s offered; max: as fast as possible
#   RUNS=3  DURATION=5 (s)                  runs per row, seconds of sending per run
#   THREADS="1 2"  THREADS2_RATES="max"     thread counts; rates tried with more than 1
#   SESSIONS=auto                           concurrent sessions: auto = rate × 20 s (the
#                                           mean beacon interval of a tab), max: 4000000
#   BATCH=32  BEACONS_PER_DATAGRAM=1        hn-loadgen's --batch / --beacons-per-datagram
#   BENCH_DOC=docs/BENCHMARKS.md            where the section goes ("" : don't write)
#   BENCH_NOTES=bench/lib/udp-notes.md      analysis appended to the section (kept in git,
#                                           so a rerun does not lose it)
# HN_BIN: the binaries' directory (make sets it).
set -euo pipefail

cd "$(dirname "$0")/.."
source bench/lib/doc-section.sh
source bench/lib/proc.sh
# The command as given, for the report: the overrides from the environment.
CMDLINE="make bench-udp"
for v in BEACONS_PER_DATAGRAM BATCH SESSIONS THREADS2_RATES THREADS DURATION RUNS RATES; do
    if [ -n "${!v+x}" ]; then CMDLINE="$v=\"${!v}\" $CMDLINE"; fi
done
HN_BIN=${HN_BIN:-build/release}
RATES=${RATES:-"10000 25000 50000 100000 200000 max"}
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
THREADS=${THREADS:-"1 2"}
THREADS2_RATES=${THREADS2_RATES:-max}
SESSIONS=${SESSIONS:-auto}
SESSION_INTERVAL_S=20
SESSIONS_MAX=4000000
BATCH=${BATCH:-32}
BPD=${BEACONS_PER_DATAGRAM:-1}
BENCH_DOC=${BENCH_DOC-docs/BENCHMARKS.md}
BENCH_NOTES=${BENCH_NOTES-bench/lib/udp-notes.md}
SECTION="## UDP ingress (make bench-udp)"
WIDGETS=(bench-shop bench-blog bench-docs bench-saas bench-news)
DRAIN_TIMEOUT_S=120
POLL_S=0.02

die() { echo "bench-udp: $*" >&2; exit 1; }
for b in herenow-collector hn-loadgen; do
    [ -x "$HN_BIN/$b" ] || die "$HN_BIN/$b missing (make $HN_BIN/$b)"
done
for t in redis-server redis-cli redis-benchmark; do
    command -v "$t" >/dev/null || die "$t not found (scripts/setup.sh)"
done
[ -x scripts/redis.sh ] || die "scripts/redis.sh missing"
case "$RUNS$DURATION" in *[!0-9.]*) die "RUNS and DURATION must be numbers" ;; esac
[ "$RUNS" -ge 1 ] || die "RUNS must be >= 1"

CLK_TCK=$(getconf CLK_TCK)
# Tee files and Redis in RAM: a disk's writeback would be CPU noise.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then base=/dev/shm; else base=${TMPDIR:-/tmp}; fi
WORK=$(mktemp -d "$base/hn-bench-udp.XXXXXX")
export HERENOW_SPOOL_DIR="$WORK/spool"     # never the repo's var/spool

COL_PID= LG_PID= REDIS_DIR=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$LG_PID" ] && kill -TERM "$LG_PID" 2>/dev/null
    if [ -n "$COL_PID" ]; then stop_pid "$COL_PID" || true; fi
    if [ -n "$REDIS_DIR" ]; then scripts/redis.sh stop "$REDIS_DIR" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Private copies: a rebuild during the bench (others work in this tree)
# must not mix two collectors in one table.
mkdir -p "$WORK/bin"
cp "$HN_BIN/herenow-collector" "$HN_BIN/hn-loadgen" "$WORK/bin/"
COLLECTOR=$WORK/bin/herenow-collector LOADGEN=$WORK/bin/hn-loadgen
COLLECTOR_ID="$(date -u -r "$HN_BIN/herenow-collector" '+%Y-%m-%d %H:%M UTC'), sha256 $(sha256sum "$COLLECTOR" | cut -c1-12)"

# --- helpers ------------------------------------------------------------------



# A port free on 127.0.0.1 for TCP and UDP. hn-freeport binds port 0 and
# reads it back; without it, pick one that /proc lists nowhere (a start that
# still fails on it is retried by the caller).
used_ports() { cat /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6 2>/dev/null |
               awk 'NR > 1 { split($2, a, ":"); print a[2] }'; }
free_port() {
    if [ -x "$HN_BIN/hn-freeport" ]; then "$HN_BIN/hn-freeport"; return; fi
    local used p
    used=$(used_ports | sort -u)
    while :; do
        p=$((20000 + RANDOM % 30000))
        grep -qx "$(printf '%04X' "$p")" <<<"$used" || { echo "$p"; return; }
    done
}

# Sets M_written M_accepted M_dropped M_kdrops M_paused M_commands M_bsum M_bcount.
read_metrics() {
    local port=$1 line
    M_written= M_accepted= M_dropped=0 M_kdrops= M_paused= M_commands= M_bsum=0 M_bcount=0
    local fd
    { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
    printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&"$fd"
    while IFS= read -r line <&"$fd"; do
        case $line in
            'herenow_records_written_total '*) M_written=${line##* } ;;
            'herenow_beacons_accepted_total{transport="udp"} '*) M_accepted=${line##* } ;;
            'herenow_beacons_dropped_total{transport="udp",'*) M_dropped=$((M_dropped + ${line##* })) ;;
            'herenow_udp_kernel_drops_total '*) M_kdrops=${line##* } ;;
            'herenow_ingress_paused_total '*) M_paused=${line##* } ;;
            'herenow_redis_commands_total '*) M_commands=${line##* } ;;
            'herenow_batch_records_sum '*) M_bsum=${line##* } ;;
            'herenow_batch_records_count '*) M_bcount=${line##* } ;;
        esac
    done
    exec {fd}<&-
    [ -n "$M_written" ] && [ -n "$M_accepted" ]
}



start_redis() {
    local dir=$1 port
    for _ in 1 2 3 4 5; do
        port=$(free_port)
        if scripts/redis.sh start --fast "$dir" "$port" >"$dir.start.log" 2>&1; then
            REDIS_DIR=$dir REDIS_PORT=$port REDIS_PID=$(cat "$dir/redis.pid")
            return 0
        fi
    done
    cat "$dir.start.log" >&2
    return 1
}

stop_redis() {
    scripts/redis.sh stop "$REDIS_DIR" >/dev/null
    REDIS_DIR=
}

# Replays RESP files into the flushed Redis with `redis-cli --pipe`, all at
# once (one per worker for the collector's tee). Sets RP_ticks (Redis CPU,
# clock ticks) and RP_s (wall seconds).
replay() {
    local port=$1 pid=$2 dir=$3 f n=0 perr=0 c0 c1 t0 t1 i
    shift 3
    local pids=()
    redis-cli -p "$port" FLUSHALL >/dev/null
    rm -f "$dir"/pipe.*.log
    c0=$(cpu_ticks "$pid")
    t0=$EPOCHREALTIME
    for f in "$@"; do
        redis-cli -p "$port" --pipe <"$f" >"$dir/pipe.$n.log" 2>&1 &
        pids+=($!)
        n=$((n + 1))
    done
    for i in "${pids[@]}"; do wait "$i" || perr=1; done
    t1=$EPOCHREALTIME
    c1=$(cpu_ticks "$pid")
    if [ "$perr" = 1 ] || grep -q 'errors: [1-9]' "$dir"/pipe.*.log; then
        cat "$dir"/pipe.*.log >&2
        die "redis-cli --pipe replay of $* failed"
    fi
    RP_ticks=$((c1 - c0))
    RP_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')
}

# --- one run -----------------------------------------------------------------

# Appends one tab-separated row to $WORK/rows.
run_one() {
    local threads=$1 rate=$2 run=$3 dir="$WORK/run"
    rm -rf "$dir"
    mkdir -p "$dir"
    start_redis "$dir/redis" || die "redis did not start"
    local rport=$REDIS_PORT rpid=$REDIS_PID
    local -a hset=()
    local i
    for i in "${!WIDGETS[@]}"; do hset+=("${WIDGETS[$i]}" "$((i + 1))"); done
    # Machine noise, per run: the same short SET benchmark on the fresh Redis.
    local ref_set
    ref_set=$(set_benchmark "$rport" 200000)
    redis-cli -p "$rport" FLUSHALL >/dev/null
    redis-cli -p "$rport" HSET hn:widgets "${hset[@]}" >/dev/null

    local uport aport
    uport=$(free_port)
    aport=$(free_port)
    [ "$aport" != "$uport" ] || aport=$(free_port)
    HERENOW_REDIS_URL="redis://127.0.0.1:$rport/0" HERENOW_UDP_LISTEN="127.0.0.1:$uport" \
        HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN="127.0.0.1:$aport" HERENOW_THREADS="$threads" \
        HERENOW_REDIS_TEE="$dir/tee" HERENOW_LOG_LEVEL=warn \
        "$COLLECTOR" </dev/null >"$dir/collector.log" 2>&1 &
    COL_PID=$!
    if ! wait_ready "$aport" "$COL_PID"; then
        cat "$dir/collector.log" >&2
        die "collector not ready on 127.0.0.1:$aport"
    fi

    local sessions=$SESSIONS lrate=$rate
    [ "$rate" = max ] && lrate=0
    if [ "$sessions" = auto ]; then
        if [ "$lrate" = 0 ]; then sessions=$SESSIONS_MAX
        else sessions=$((rate * SESSION_INTERVAL_S)); [ "$sessions" -le "$SESSIONS_MAX" ] || sessions=$SESSIONS_MAX; fi
    fi
    # What decides the beacons; the references are generated from the same.
    local gen_args=(--widgets "$(IFS=,; echo "${WIDGETS[*]}")" --sessions "$sessions"
                    --beacons-per-datagram "$BPD" --seed "$run")
    local lg_args=(--to "127.0.0.1:$uport" "${gen_args[@]}" --rate "$lrate" --duration "$DURATION"
                   --batch "$BATCH")

    # CPU is sampled right before sending: the loadgen's pre-generation
    # (seconds at high rates) happens while collector and Redis idle.
    local c0 r0 c1 r1 out
    c0=$(cpu_split "$COL_PID")
    r0=$(cpu_ticks "$rpid")
    "$LOADGEN" "${lg_args[@]}" >"$dir/loadgen.out" 2>"$dir/loadgen.err" &
    LG_PID=$!
    wait "$LG_PID" || { cat "$dir/loadgen.err" >&2; die "hn-loadgen failed"; }
    LG_PID=
    out=$(tail -n1 "$dir/loadgen.out")
    local LG_sent_beacons= LG_start_us= LG_seconds= LG_send_errors= LG_cpu_s= LG_ts_base=
    kv LG_ "$out"
    [ -n "$LG_sent_beacons" ] && [ -n "$LG_start_us" ] && [ -n "$LG_ts_base" ] ||
        die "hn-loadgen printed '$out'"

    # Drained: nothing left in the kernel queue, every accepted beacon
    # acknowledged, and no counter moving for 200 ms. t_ack: when the
    # written counter was first seen at its final value (within one poll).
    local deadline=$((SECONDS + DRAIN_TIMEOUT_S)) last_w=-1 last_a=-1 t_ack= t_stable= now k rq
    while :; do
        now=$EPOCHREALTIME
        read_metrics "$aport" || die "cannot read /metrics on 127.0.0.1:$aport"
        read -r k rq < <(udp_sock_stats "$uport")
        if [ "$M_written" != "$last_w" ] || [ "$M_accepted" != "$last_a" ]; then
            t_ack=$now t_stable=$now last_w=$M_written last_a=$M_accepted
        elif [ "$M_written" = "$M_accepted" ] && [ "$rq" = 0 ] &&
             awk -v a="$now" -v b="$t_stable" 'BEGIN { exit !(a - b >= 0.2) }'; then
            break
        fi
        [ "$SECONDS" -lt "$deadline" ] ||
            die "not drained in ${DRAIN_TIMEOUT_S}s: written=$M_written accepted=$M_accepted"
        sleep "$POLL_S"
    done
    c1=$(cpu_split "$COL_PID")
    r1=$(cpu_ticks "$rpid")
    local kdrops_proc
    read -r kdrops_proc rq < <(udp_sock_stats "$uport")
    local written=$M_written accepted=$M_accepted dropped=$M_dropped kdrops=$M_kdrops
    local paused=$M_paused cmds=$M_commands bsum=$M_bsum bcount=$M_bcount

    stop_pid "$COL_PID"
    COL_PID=

    # The references' command files: the beacons just sent, generated again
    # (same arguments, same ts) while nothing is being measured.
    local EM_emitted_beacons= EM_naive_bytes= EM_xadd_bytes=
    out=$("$LOADGEN" "${gen_args[@]}" --ts-base "$LG_ts_base" --count "$LG_sent_beacons" \
              --emit-naive "$dir/naive.resp" --emit-xadd "$dir/xadd.resp" 2>"$dir/emit.err") ||
        { cat "$dir/emit.err" >&2; die "hn-loadgen --emit-naive/--emit-xadd failed"; }
    kv EM_ "$out"
    [ "$EM_emitted_beacons" = "$LG_sent_beacons" ] ||
        die "hn-loadgen emitted '$EM_emitted_beacons' beacons, the run sent $LG_sent_beacons"
    # A datagram that sendmmsg refused for good is skipped by the sender,
    # not by --emit: then a few beacons of the references differ.
    [ "${LG_send_errors:-0}" = 0 ] ||
        echo "bench-udp: $LG_send_errors send errors: the references may differ from the beacons sent by as many datagrams" >&2

    # The ceiling: the same bytes, straight from redis-cli, into the same
    # (flushed) Redis. Several workers: their files are replayed at once,
    # as the workers' connections wrote them.
    replay "$rport" "$rpid" "$dir" "$dir"/tee.*
    local pipe_ticks=$RP_ticks pipe_s=$RP_s
    local tee_bytes
    tee_bytes=$(cat "$dir"/tee.* | wc -c)
    rm -f "$dir"/tee.*
    # The references, one after the other, each into the flushed Redis.
    replay "$rport" "$rpid" "$dir" "$dir/naive.resp"
    local naive_ticks=$RP_ticks naive_s=$RP_s
    rm -f "$dir/naive.resp"
    replay "$rport" "$rpid" "$dir" "$dir/xadd.resp"
    local xadd_ticks=$RP_ticks xadd_s=$RP_s
    rm -f "$dir/xadd.resp"
    stop_redis

    awk -v hz="$CLK_TCK" -v th="$threads" -v rate="$rate" -v run="$run" -v sessions="$sessions" \
        -v sent="$LG_sent_beacons" -v s0="$LG_start_us" -v lsec="$LG_seconds" \
        -v serr="$LG_send_errors" -v lcpu="$LG_cpu_s" -v tack="$t_ack" \
        -v written="$written" -v accepted="$accepted" -v dropped="$dropped" \
        -v kdrops="$kdrops" -v kproc="$kdrops_proc" -v bpd="$BPD" -v paused="$paused" \
        -v cmds="$cmds" -v bsum="$bsum" -v bcount="$bcount" -v c0="$c0" -v c1="$c1" \
        -v r0="$r0" -v r1="$r1" -v pticks="$pipe_ticks" -v pipe_s="$pipe_s" \
        -v tee="$tee_bytes" -v ref="$ref_set" -v nticks="$naive_ticks" -v naive_s="$naive_s" \
        -v xticks="$xadd_ticks" -v xadd_s="$xadd_s" -v nbytes="$EM_naive_bytes" 'BEGIN {
            split(c0, a, " "); split(c1, b, " ")
            us = 1e6 / hz
            e2e_s = tack - s0 / 1e6
            w = written > 0 ? written : 1
            printf "threads=%s rate=%s run=%s sessions=%s offered=%.0f sent=%s accepted=%s written=%s",
                th, rate, run, sessions, sent / lsec, sent, accepted, written
            printf " dropped=%s kdrops=%s kdrops_proc=%s loss=%d", dropped, kdrops, kproc,
                sent - accepted - dropped - kdrops * bpd
            printf " e2e=%.0f e2e_s=%.3f ceiling=%.0f pipe_s=%.3f ratio=%.3f", written / e2e_s, e2e_s,
                written / pipe_s, pipe_s, (written / e2e_s) / (written / pipe_s)
            printf " col_us=%.3f col_user_us=%.3f col_sys_us=%.3f", (b[1] + b[2] - a[1] - a[2]) * us / w,
                (b[1] - a[1]) * us / w, (b[2] - a[2]) * us / w
            printf " redis_us=%.3f redis_busy=%.3f pipe_redis_us=%.3f pipe_busy=%.3f",
                (r1 - r0) * us / w, (r1 - r0) / hz / e2e_s, pticks * us / w, pticks / hz / pipe_s
            printf " cmds_b=%.3f resp_b=%.0f batch=%.1f paused=%s loadgen_us=%.3f send_errors=%s ref_set=%s",
                cmds / w, tee / w, (bcount > 0 ? bsum / bcount : 0), paused, lcpu * 1e6 / (sent > 0 ? sent : 1),
                serr, ref
            # The references replay every beacon sent, accepted or not.
            s = sent > 0 ? sent : 1
            pipe_us = pticks * us / w
            naive_us = nticks * us / s; xadd_us = xticks * us / s
            printf " naive_us=%.3f naive_bps=%.0f naive_s=%.3f naive_busy=%.3f naive_resp_b=%.0f",
                naive_us, sent / naive_s, naive_s, nticks / hz / naive_s, nbytes / s
            printf " xadd_us=%.3f xadd_bps=%.0f xadd_s=%.3f", xadd_us, sent / xadd_s, xadd_s
            printf " col_naive=%.3f e2e_naive=%.3f\n", (naive_us > 0 ? pipe_us / naive_us : 0),
                (naive_us > 0 ? (r1 - r0) * us / w / naive_us : 0)
        }' >>"$WORK/rows"
    rm -rf "$dir"
}

# --- the machine-noise reference ---------------------------------------------

# SET requests/s of redis-benchmark, pipelined by 16, against a port.
set_benchmark() {
    redis-benchmark -p "$1" -q -P 16 -n "$2" -t set 2>/dev/null |
        tr '\r' '\n' | awk '/^SET: [0-9.]+ requests/ { v = $2 } END { printf "%.0f", v }'
}

reference() {
    local dir="$WORK/ref"
    mkdir -p "$dir"
    start_redis "$dir/redis" || die "redis did not start"
    REF_SET=$(set_benchmark "$REDIS_PORT" 1000000)
    stop_redis
    rm -rf "$dir"
}

# --- main --------------------------------------------------------------------

START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "bench-udp: work dir $WORK"
reference
echo "bench-udp: machine-noise reference: redis-benchmark -q -P 16 -n 1000000 -t set: $REF_SET SET/s"
: >"$WORK/rows"

REPORT=bench/lib/udp-report.awk
for threads in $THREADS; do
    rates=$RATES
    [ "$threads" = 1 ] || rates=$THREADS2_RATES
    for rate in $rates; do
        for run in $(seq 1 "$RUNS"); do
            run_one "$threads" "$rate" "$run"
            tail -n1 "$WORK/rows" | tr ' ' '\n' |
                grep -E '^(threads|rate|run|offered|e2e|ceiling|ratio|kdrops_proc|loss|col_us|redis_us|pipe_redis_us|naive_us|xadd_us|col_naive|cmds_b|batch|ref_set)=' |
                tr '\n' ' '
            echo
        done
    done
done

echo
echo "Medians of $RUNS run(s) per row:"
awk -v mode=console -f "$REPORT" "$WORK/rows"

# --- docs/BENCHMARKS.md ------------------------------------------------------

write_section() {
    local cpu redisv
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    redisv=$(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/')
    cat <<EOF2
$SECTION

Run $START_DATE on $(nproc) cores ($cpu), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM,
Linux $(uname -r), Redis $redisv, load average before $LOAD_BEFORE. Load generator, collector
and Redis share the cores; traffic on loopback only. Collector built $COLLECTOR_ID.

Command: \`$CMDLINE\` ($RUNS run(s) of ${DURATION} s per row; $BPD beacon(s) per
datagram, $BATCH datagrams per sendmmsg; sessions: ${SESSIONS} — auto is offered rate × ${SESSION_INTERVAL_S} s, the
concurrency at which real tabs would send that rate, capped at $SESSIONS_MAX).

Machine-noise reference: \`redis-benchmark -q -P 16 -n 1000000 -t set\` = $REF_SET SET/s at the
start; the *ref SET/s* column is the same with 200,000 requests before each run.

Columns (medians over the runs of a row): *offered*: beacons/s hn-loadgen sent; *e2e*: beacons
whose Redis writes were all acknowledged, per second from the first send to the last
acknowledgement; *ceiling*: the collector's exact command stream (HERENOW_REDIS_TEE) replayed into
the same, flushed Redis with \`redis-cli --pipe\` right after, in beacons/s; *kernel drops*:
datagrams the kernel dropped at the collector's sockets (from /proc/net/udp; they are counted
drops but mean saturation); *loss*: sent − accepted − drops counted in /metrics (worst run);
*µs/b*: CPU time (user+sys, all threads, from /proc in 10 ms ticks; the user/sys split is the
kernel's tick sampling, so approximate) per beacon; *Redis busy*: Redis CPU time / wall time;
*cmds/b*, *RESP B/b*: Redis commands and bytes per beacon; *records/flush*: beacons per pipeline
the collector sent. A row is *saturated* when a run had kernel drops or accepted < 97% of what
was sent.

Same-run references for Redis's cost: after the ceiling, the beacons hn-loadgen sent in that run
(\`hn-loadgen --emit-naive/--emit-xadd\`: the same seed, sessions, widgets, mix and count, written
as RESP once the collector has stopped) are replayed with \`redis-cli --pipe\` into the same
Redis, flushed before each: *naive* is, per beacon, \`XADD hn:stream:0 * r <beacon msgpack>\`,
\`HSET hn:sess:{w}:<sid>\` with every field of the beacon under the collector's names
(last_seen, status, url, title, referrer, lang, screen, engaged_ms, name, email, phone,
has_chatted: those the beacon has), \`EXPIRE <that key> 360\` and \`ZADD hn:live:{w} <ms> <sid>\`;
*xadd-only* is the XADD alone. Their *Redis µs/b* is Redis CPU per beacon replayed, *replay b/s*
the beacons replayed per second; *collector / naive* is the collector's Redis µs/b via pipe over
the naive one, per run, then the median. In saturated rows the references replay every beacon
sent, the collector's tee only those the kernel let in: more sessions touched, so a larger
keyspace for the references.

EOF2
    awk -v mode=markdown -f "$REPORT" "$WORK/rows"
    echo
    echo "Targets: e2e ≥ 0.8 × ceiling; collector ≤ 2 µs/beacon; Redis ≤ 4 µs/beacon (the issue's"
    echo "figure; it put a naive XADD + HSET + EXPIRE + ZADD pipeline at 7.5 µs on its day, so"
    echo "equivalently ≤ 0.53 × naive measured in the same run); no loss below saturation."
    echo
    echo "<details><summary>Every run (key=value)</summary>"
    echo
    echo '```'
    cat "$WORK/rows"
    echo '```'
    echo
    echo "</details>"
    if [ -n "$BENCH_NOTES" ] && [ -f "$BENCH_NOTES" ]; then
        echo
        cat "$BENCH_NOTES"
    fi
}

if [ -n "$BENCH_DOC" ]; then
    write_section >"$WORK/section.md"
    bench_write_section "$SECTION" "$WORK/section.md" "$BENCH_DOC"
    echo "bench-udp: wrote \"$SECTION\" in $BENCH_DOC"
fi
