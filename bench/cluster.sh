#!/usr/bin/env bash
# cluster.sh: `make bench-cluster` — the UDP ingress of `make bench-udp` on a
# standalone redis-server and on a Redis Cluster, in the same run (issue 17).
#
#   loadgen ──UDP──► collector ──RESP──► redis-server                     (standalone)
#   loadgen ──UDP──► collector ──RESP──► 3 masters (+ 3 replicas)         (cluster)
#
# Both Redis setups are started once and flushed before every run; the two
# modes alternate run by run, so a burst of noise from the shared machine
# hits both. Both run HERENOW_STREAM_SHARDS=3 (one hash-tagged shard per
# master on the cluster), so the XADDs per beacon are the same. The cluster
# has its replicas on, as deployed: the masters' CPU includes feeding them.
#
# Per run: a fresh collector, hn-loadgen with bench-udp's mix (the same
# widgets, seed = run, sessions = rate × 20 s), then /metrics is polled until
# every accepted beacon's writes are acknowledged. CPU per beacon: the
# collector from /proc/<pid>/stat (10 ms ticks), each Redis from INFO cpu
# (used_cpu_user + used_cpu_sys, µs), commands from INFO commandstats (INFO
# itself left out). Redis per beacon on the cluster is the sum over the three
# masters; the replicas are reported apart (other hosts' work).
#
# Then a reshard under load: the collector on the cluster at RESHARD_RATE
# for RESHARD_S seconds; after RESHARD_DELAY_S, `hn-rcltest move` moves
# RESHARD_SLOTS slots around a widget's slot ({w}: its sessions and live
# set) to another master. herenow_redis_redirects_total{kind} before and
# after the move: MOVED and ASK per second of the move; accepted vs written
# and `herenowctl stream count`: was a beacon lost.
#
# Environment (the defaults take about 8 minutes on 2 cores):
#   RATES="25000 50000 max"  THREADS="1 2"  THREADS2_RATES="50000 max"
#   RUNS=3  DURATION=5 (s)   SESSIONS_MAX=1000000 (sessions at "max")
#   RESHARD=1  RESHARD_RATE=25000  RESHARD_S=15  RESHARD_DELAY_S=3  RESHARD_SLOTS=1000
#   RESHARD_HOLD_MS=0 (the widget's slot held MIGRATING this long before its keys move)
#   MODES="standalone replicated cluster"  (replicated: a standalone server with one replica)
#   PERF=0      1: perf stat counts the system calls and context switches of the collector and
#               the masters during each run (scripts/setup.sh --bench; they cost CPU themselves)
#   BENCH_DOC=docs/BENCHMARKS.md ("" : don't write)  BENCH_NOTES=bench/lib/cluster-notes.md
# HN_BIN: the binaries' directory (make sets it).
set -euo pipefail

cd "$(dirname "$0")/.."
source bench/lib/doc-section.sh
source bench/lib/proc.sh
CMDLINE="make bench-cluster"
for v in PERF MODES RESHARD_HOLD_MS RESHARD_SLOTS RESHARD_S RESHARD_RATE RESHARD SESSIONS_MAX THREADS2_RATES THREADS DURATION RUNS RATES; do
    if [ -n "${!v+x}" ]; then CMDLINE="$v=\"${!v}\" $CMDLINE"; fi
done
HN_BIN=${HN_BIN:-build/release}
RATES=${RATES:-"25000 50000 max"}
RUNS=${RUNS:-3}
DURATION=${DURATION:-5}
THREADS=${THREADS:-"1 2"}
THREADS2_RATES=${THREADS2_RATES:-"50000 max"}
SESSIONS_MAX=${SESSIONS_MAX:-1000000}
SESSION_INTERVAL_S=20
BATCH=32
RESHARD=${RESHARD:-1}
RESHARD_RATE=${RESHARD_RATE:-25000}
RESHARD_S=${RESHARD_S:-15}
RESHARD_DELAY_S=${RESHARD_DELAY_S:-3}
RESHARD_SLOTS=${RESHARD_SLOTS:-1000}
RESHARD_HOLD_MS=${RESHARD_HOLD_MS:-0}
BENCH_DOC=${BENCH_DOC-docs/BENCHMARKS.md}
BENCH_NOTES=${BENCH_NOTES-bench/lib/cluster-notes.md}
SECTION="## Redis Cluster (make bench-cluster)"
WIDGETS=(bench-shop bench-blog bench-docs bench-saas bench-news)
SHARDS=3
MODES=${MODES:-"standalone replicated cluster"}
PERF=${PERF:-0}
DRAIN_TIMEOUT_S=120
POLL_S=0.02

die() { echo "bench-cluster: $*" >&2; exit 1; }
for b in herenow-collector hn-loadgen hn-rcltest hn-freeport herenowctl; do
    [ -x "$HN_BIN/$b" ] || die "$HN_BIN/$b missing (make $HN_BIN/$b)"
done
for t in redis-server redis-cli; do command -v "$t" >/dev/null || die "$t not found (scripts/setup.sh)"; done
case "$RUNS$DURATION" in *[!0-9.]*) die "RUNS and DURATION must be numbers" ;; esac

CLK_TCK=$(getconf CLK_TCK)
if [ -d /dev/shm ] && [ -w /dev/shm ]; then base=/dev/shm; else base=${TMPDIR:-/tmp}; fi
WORK=$(mktemp -d "$base/hn-bench-cluster.XXXXXX")
export HERENOW_SPOOL_DIR="$WORK/spool"
export HERENOW_STREAM_SHARDS=$SHARDS

COL_PID= LG_PID= MV_PID= SA_DIR= CL_DIR= RP_DIR= RP2_DIR=
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ -n "$LG_PID" ] && kill -TERM "$LG_PID" 2>/dev/null
    [ -n "$MV_PID" ] && kill -TERM "$MV_PID" 2>/dev/null
    if [ -n "$COL_PID" ]; then stop_pid "$COL_PID" || true; fi
    if [ -n "$RP_DIR" ]; then scripts/redis.sh stop "$RP_DIR" >/dev/null 2>&1 || true; fi
    if [ -n "$RP2_DIR" ]; then scripts/redis.sh stop "$RP2_DIR" >/dev/null 2>&1 || true; fi
    if [ -n "$SA_DIR" ]; then scripts/redis.sh stop "$SA_DIR" >/dev/null 2>&1 || true; fi
    if [ -n "$CL_DIR" ]; then scripts/redis-cluster.sh stop "$CL_DIR" >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$WORK/bin"
for b in herenow-collector hn-loadgen hn-rcltest hn-freeport herenowctl; do cp "$HN_BIN/$b" "$WORK/bin/"; done
COLLECTOR=$WORK/bin/herenow-collector LOADGEN=$WORK/bin/hn-loadgen RCLTEST=$WORK/bin/hn-rcltest CTL=$WORK/bin/herenowctl
COLLECTOR_ID="$(date -u -r "$HN_BIN/herenow-collector" '+%Y-%m-%d %H:%M UTC'), sha256 $(sha256sum "$COLLECTOR" | cut -c1-12)"
GIT_ID=$(git rev-parse --short HEAD 2>/dev/null || echo '?')

# --- helpers (bench/udp.sh's) ----------------------------------------------------

# Sets M_written M_accepted M_dropped M_kdrops M_bcount M_moved M_ask M_retries.
read_metrics() {
    local port=$1 line fd
    M_written= M_accepted= M_dropped=0 M_kdrops= M_bcount=0 M_moved=0 M_ask=0 M_retries=0 M_rdetail=
    { exec {fd}<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null || return 1
    printf 'GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&"$fd"
    while IFS= read -r line <&"$fd"; do
        case $line in
            'herenow_records_written_total '*) M_written=${line##* } ;;
            'herenow_beacons_accepted_total{transport="udp"} '*) M_accepted=${line##* } ;;
            'herenow_beacons_dropped_total{transport="udp",'*) M_dropped=$((M_dropped + ${line##* })) ;;
            'herenow_udp_kernel_drops_total '*) M_kdrops=${line##* } ;;
            'herenow_batch_records_count '*) M_bcount=${line##* } ;;
            'herenow_redis_redirects_total{kind="moved"} '*) M_moved=${line##* } ;;
            'herenow_redis_redirects_total{kind="ask"} '*) M_ask=${line##* } ;;
            'herenow_redis_retries_total{'*) M_retries=$((M_retries + ${line##* }))
                M_rdetail+="$(sed 's/.*reason="\([a-z]*\)".*/\1/' <<<"$line")=${line##* }," ;;
        esac
    done
    exec {fd}<&-
    [ -n "$M_written" ] && [ -n "$M_accepted" ]
}

# "cpu_µs commands cmd_µs" of a Redis node: INFO cpu (user + sys), and the
# calls and their execution time (usec) of INFO commandstats, INFO's own left out.
redis_sample() {
    redis-cli -p "$1" INFO all 2>/dev/null | tr -d '\r' | awk -F'[:,=]' '
        $1 == "used_cpu_user" || $1 == "used_cpu_sys" { cpu += $2 }
        $1 ~ /^cmdstat_/ && $1 != "cmdstat_info" { calls += $3; usec += $5 }
        END { printf "%.0f %d %d\n", cpu * 1e6, calls, usec }'
}
# samples of a list of ports, one "port cpu_µs commands" line each
sample_all() { local p; for p in "$@"; do echo "$p $(redis_sample "$p")"; done; }

# --- the two Redis setups ----------------------------------------------------------

# start_server NAME: a redis-server (scripts/redis.sh --fast) in $WORK/NAME; sets SRV_PORT
start_server() {
    local port
    for _ in 1 2 3 4 5; do
        port=$("$WORK/bin/hn-freeport")
        if scripts/redis.sh start --fast "$WORK/$1" "$port" >"$WORK/$1.start.log" 2>&1; then SRV_PORT=$port; return 0; fi
    done
    cat "$WORK/$1.start.log" >&2
    die "redis-server $1 did not start"
}
start_standalone() { SA_DIR=$WORK/sa; start_server sa; SA_PORT=$SRV_PORT; }
# a second standalone server with a replica (mode "replicated": what replication alone costs)
start_replicated() {
    RP2_DIR=$WORK/rs
    start_server rs
    RS_PORT=$SRV_PORT
    RP_DIR=$WORK/rp
    start_server rp
    RP_PORT=$SRV_PORT
    redis-cli -p "$RP_PORT" REPLICAOF 127.0.0.1 "$RS_PORT" >/dev/null
    local deadline=$((SECONDS + 30))
    until redis-cli -p "$RP_PORT" INFO replication | tr -d '\r' | grep -qx 'master_link_status:up'; do
        [ "$SECONDS" -lt "$deadline" ] || die "the replica did not sync"
        sleep 0.1
    done
}
start_cluster() {
    local port
    CL_DIR=$WORK/cl
    for _ in 1 2 3; do
        port=$("$WORK/bin/hn-freeport" --cluster) || continue
        if scripts/redis-cluster.sh start "$CL_DIR" "$port" >"$WORK/cl.start.log" 2>&1; then
            CL_MASTERS=("$port" "$((port + 1))" "$((port + 2))")
            CL_URL="redis+cluster://127.0.0.1:$port,127.0.0.1:$((port + 1)),127.0.0.1:$((port + 2))"
            return 0
        fi
        scripts/redis-cluster.sh stop "$CL_DIR" >/dev/null 2>&1 || true
    done
    cat "$WORK/cl.start.log" >&2
    die "redis cluster did not start"
}
# masters and replicas now (a reshard or a failover may change them): sets CL_M, CL_R
cluster_roles() {
    local p role
    CL_M=() CL_R=()
    for p in $(cat "$CL_DIR/ports"); do
        role=$(redis-cli -p "$p" ROLE 2>/dev/null | head -n1)
        if [ "$role" = master ]; then CL_M+=("$p"); else CL_R+=("$p"); fi
    done
}
flush_mode() {
    local mode=$1 p
    local -a hset=()
    local i
    for i in "${!WIDGETS[@]}"; do hset+=("${WIDGETS[$i]}" "$((i + 1))"); done
    if [ "$mode" = standalone ]; then
        redis-cli -p "$SA_PORT" FLUSHALL >/dev/null
        redis-cli -p "$SA_PORT" HSET hn:widgets "${hset[@]}" >/dev/null
    elif [ "$mode" = replicated ]; then
        redis-cli -p "$RS_PORT" FLUSHALL >/dev/null
        redis-cli -p "$RS_PORT" HSET hn:widgets "${hset[@]}" >/dev/null
        redis-cli -p "$RS_PORT" WAIT 1 5000 >/dev/null
    else
        cluster_roles
        for p in "${CL_M[@]}"; do redis-cli -p "$p" FLUSHALL >/dev/null; done
        redis-cli -c -p "${CL_M[0]}" HSET hn:widgets "${hset[@]}" >/dev/null
        # the replicas have caught up with the flush (WAIT: every replica acknowledged)
        for p in "${CL_M[@]}"; do redis-cli -p "$p" WAIT 1 5000 >/dev/null; done
    fi
}

# --- one run ------------------------------------------------------------------------

start_collector() {   # start_collector URL THREADS DIR: sets COL_PID, UPORT, APORT
    local url=$1 threads=$2 dir=$3
    UPORT=$("$WORK/bin/hn-freeport")
    APORT=$("$WORK/bin/hn-freeport")
    [ "$APORT" != "$UPORT" ] || APORT=$("$WORK/bin/hn-freeport")
    HERENOW_REDIS_URL=$url HERENOW_UDP_LISTEN="127.0.0.1:$UPORT" \
        HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN="127.0.0.1:$APORT" HERENOW_THREADS="$threads" \
        HERENOW_LOG_LEVEL=warn "$COLLECTOR" </dev/null >"$dir/collector.log" 2>&1 &
    COL_PID=$!
    if ! wait_ready "$APORT" "$COL_PID"; then
        cat "$dir/collector.log" >&2
        die "collector not ready on 127.0.0.1:$APORT ($url)"
    fi
}
sessions_for() { if [ "$1" = max ]; then echo "$SESSIONS_MAX"; else local s=$(($1 * SESSION_INTERVAL_S)); [ "$s" -le "$SESSIONS_MAX" ] || s=$SESSIONS_MAX; echo "$s"; fi; }
# wait_drained: every accepted beacon acknowledged, the kernel queue empty,
# nothing moving for 200 ms. Sets T_ACK.
wait_drained() {
    local deadline=$((SECONDS + DRAIN_TIMEOUT_S)) last_w=-1 last_a=-1 t_stable= now k rq
    while :; do
        now=$EPOCHREALTIME
        read_metrics "$APORT" || die "cannot read /metrics on 127.0.0.1:$APORT"
        read -r k rq < <(udp_sock_stats "$UPORT")
        if [ "$M_written" != "$last_w" ] || [ "$M_accepted" != "$last_a" ]; then
            T_ACK=$now t_stable=$now last_w=$M_written last_a=$M_accepted
        elif [ "$M_written" = "$M_accepted" ] && [ "$rq" = 0 ] &&
             awk -v a="$now" -v b="$t_stable" 'BEGIN { exit !(a - b >= 0.2) }'; then
            return 0
        fi
        [ "$SECONDS" -lt "$deadline" ] ||
            die "not drained in ${DRAIN_TIMEOUT_S}s: written=$M_written accepted=$M_accepted"
        sleep "$POLL_S"
    done
}

# run_one MODE THREADS RATE RUN: one tab-separated key=value row to $WORK/rows
run_one() {
    local mode=$1 threads=$2 rate=$3 run=$4 dir="$WORK/run" url ports
    rm -rf "$dir"
    mkdir -p "$dir"
    flush_mode "$mode"
    case $mode in
        standalone) url="redis://127.0.0.1:$SA_PORT/0" ports=("$SA_PORT") ;;
        replicated) url="redis://127.0.0.1:$RS_PORT/0" ports=("$RS_PORT" "$RP_PORT") ;;
        *) url=$CL_URL ports=("${CL_M[@]}" "${CL_R[@]}") ;;
    esac
    start_collector "$url" "$threads" "$dir"
    local sessions lrate=$rate
    sessions=$(sessions_for "$rate")
    [ "$rate" = max ] && lrate=0
    local c0 c1 out
    read_metrics "$APORT" || die "cannot read /metrics"
    local b0=$M_bcount
    sample_all "${ports[@]}" >"$dir/r0"
    c0=$(cpu_split "$COL_PID")
    local pf_c= pf_r=
    if [ "$PERF" = 1 ]; then
        # system calls and context switches of the collector and of the masters, while it runs
        local mpids=() p
        for p in "${ports[@]:0:$([ "$mode" = cluster ] && echo 3 || echo 1)}"; do mpids+=("$(redis-cli -p "$p" INFO server | tr -d '\r' | awk -F: '$1 == "process_id" { print $2 }')"); done
        perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$COL_PID" -o "$dir/perf.col" &
        pf_c=$!
        perf stat -x, -e raw_syscalls:sys_enter,context-switches -p "$(IFS=,; echo "${mpids[*]}")" -o "$dir/perf.redis" &
        pf_r=$!
    fi
    "$LOADGEN" --to "127.0.0.1:$UPORT" --widgets "$(IFS=,; echo "${WIDGETS[*]}")" --sessions "$sessions" \
        --beacons-per-datagram 1 --seed "$run" --rate "$lrate" --duration "$DURATION" --batch "$BATCH" \
        >"$dir/loadgen.out" 2>"$dir/loadgen.err" &
    LG_PID=$!
    wait "$LG_PID" || { cat "$dir/loadgen.err" >&2; die "hn-loadgen failed"; }
    LG_PID=
    out=$(tail -n1 "$dir/loadgen.out")
    local LG_sent_beacons= LG_start_us= LG_seconds=
    kv LG_ "$out"
    [ -n "$LG_sent_beacons" ] && [ -n "$LG_start_us" ] || die "hn-loadgen printed '$out'"
    wait_drained
    c1=$(cpu_split "$COL_PID")
    local perf_c="0,0" perf_r="0,0"
    if [ -n "$pf_c" ]; then
        kill -INT "$pf_c" "$pf_r" 2>/dev/null || true
        wait "$pf_c" "$pf_r" 2>/dev/null || true
        perf_c=$(awk -F, '$3 ~ /sys_enter/ { s = $1 } $3 ~ /context-switches/ { c = $1 } END { printf "%d,%d", s, c }' "$dir/perf.col")
        perf_r=$(awk -F, '$3 ~ /sys_enter/ { s = $1 } $3 ~ /context-switches/ { c = $1 } END { printf "%d,%d", s, c }' "$dir/perf.redis")
    fi
    sample_all "${ports[@]}" >"$dir/r1"
    local kproc rq
    read -r kproc rq < <(udp_sock_stats "$UPORT")
    local written=$M_written accepted=$M_accepted dropped=$M_dropped b1=$M_bcount retries=$M_retries
    stop_pid "$COL_PID"
    COL_PID=
    # per node: "role port cpu_µs commands" deltas
    local nodes
    local masters=" ${ports[0]} "
    [ "$mode" != cluster ] || masters=" ${CL_M[*]} "
    nodes=$(join <(sort "$dir/r0") <(sort "$dir/r1") | awk -v m="$masters" '
        { role = index(m, " " $1 " ") ? "m" : "r"; printf "%s%s:%d:%d:%d,", role, $1, $5 - $2, $6 - $3, $7 - $4 }')
    awk -v hz="$CLK_TCK" -v mode="$mode" -v th="$threads" -v rate="$rate" -v run="$run" -v sessions="$sessions" \
        -v sent="$LG_sent_beacons" -v s0="$LG_start_us" -v lsec="$LG_seconds" -v tack="$T_ACK" \
        -v written="$written" -v accepted="$accepted" -v dropped="$dropped" -v kproc="$kproc" \
        -v c0="$c0" -v c1="$c1" -v nodes="$nodes" -v perf_c="$perf_c" -v perf_r="$perf_r" -v flushes="$((b1 - b0))" -v retries="$retries" 'BEGIN {
            split(c0, a, " "); split(c1, b, " ")
            w = written > 0 ? written : 1
            e2e_s = tack - s0 / 1e6
            n = split(nodes, nd, ",")
            for (i = 1; i < n; i++) {
                split(nd[i], f, ":")
                if (substr(f[1], 1, 1) == "m") { mcpu += f[2]; mcmd += f[3]; mexec += f[4]; nm++; per = per sprintf("%s%.3f", (nm > 1 ? "/" : ""), f[2] / w)
                    depth = depth sprintf("%s%.1f", (nm > 1 ? "/" : ""), (flushes > 0 ? f[3] / flushes : 0))
                    if (f[2] / w > mx) mx = f[2] / w }
                else { rcpu += f[2]; nr++ }
            }
            printf "mode=%s threads=%s rate=%s run=%s sessions=%s offered=%.0f sent=%s accepted=%s written=%s dropped=%s kdrops=%s",
                mode, th, rate, run, sessions, sent / lsec, sent, accepted, written, dropped, kproc
            printf " loss=%d e2e=%.0f", sent - accepted - dropped - kproc, written / e2e_s
            printf " col_us=%.3f redis_us=%.3f master_us=%s max_master_us=%.3f replica_us=%.3f",
                (b[1] + b[2] - a[1] - a[2]) * 1e6 / hz / w, mcpu / w, per, mx, (nr ? rcpu / w : 0)
            split(perf_c, pc, ","); split(perf_r, pr, ",")
            if (pc[1] > 0) printf " col_syscalls_b=%.3f col_cs_b=%.4f redis_syscalls_b=%.3f redis_cs_b=%.4f",
                pc[1] / w, pc[2] / w, pr[1] / w, pr[2] / w
            printf " exec_us=%.3f cmds_b=%.3f flushes=%d batch=%.1f depth=%s retries=%s nodes=%s\n", mexec / w, mcmd / w, flushes,
                (flushes > 0 ? written / flushes : 0), depth, retries, nodes
        }' >>"$WORK/rows"
    rm -rf "$dir"
}

# --- the reshard under load ----------------------------------------------------------

reshard() {
    local dir="$WORK/reshard" w key r slot lo hi from to first count
    mkdir -p "$dir"
    flush_mode cluster
    start_collector "$CL_URL" 1 "$dir"
    # the widget whose run of slots around its own is the longest: room for the move
    local best=0
    for w in "${WIDGETS[@]}"; do
        r=$("$RCLTEST" range "$CL_URL" "hn:live:{$w}")
        read -r slot lo hi from <<<"$r"
        if [ $((hi - lo)) -gt "$best" ]; then best=$((hi - lo)); RS_W=$w RS_SLOT=$slot RS_LO=$lo RS_HI=$hi RS_FROM=$from; fi
    done
    count=$RESHARD_SLOTS
    [ "$count" -le $((RS_HI - RS_LO + 1)) ] || count=$((RS_HI - RS_LO + 1))
    first=$((RS_SLOT - count / 2))
    [ "$first" -ge "$RS_LO" ] || first=$RS_LO
    [ $((first + count - 1)) -le "$RS_HI" ] || first=$((RS_HI - count + 1))
    for p in "${CL_M[@]}"; do [ "127.0.0.1:$p" = "$RS_FROM" ] || { to="127.0.0.1:$p"; break; }; done
    RS_TO=$to RS_FIRST=$first RS_COUNT=$count
    # the stream shards in the moved range, if any
    RS_SHARDS=
    local s k
    for s in $(seq 0 $((SHARDS - 1))); do
        k=$(HERENOW_STREAM_SHARDS=$SHARDS "$CTL" stream key --shard "$s")
        r=$("$RCLTEST" range "$CL_URL" "$k")
        read -r slot _ _ _ <<<"$r"
        [ "$slot" -lt "$first" ] || [ "$slot" -ge $((first + count)) ] || RS_SHARDS+="$k "
    done
    local sessions
    sessions=$(sessions_for "$RESHARD_RATE")
    "$LOADGEN" --to "127.0.0.1:$UPORT" --widgets "$(IFS=,; echo "${WIDGETS[*]}")" --sessions "$sessions" \
        --beacons-per-datagram 1 --seed 1 --rate "$RESHARD_RATE" --duration "$RESHARD_S" --batch "$BATCH" \
        >"$dir/loadgen.out" 2>"$dir/loadgen.err" &
    LG_PID=$!
    # the move starts RESHARD_DELAY_S after the first send (loadgen pre-generates first)
    local t_send=
    while [ -z "$t_send" ]; do
        read_metrics "$APORT" || die "cannot read /metrics"
        [ "$M_accepted" = 0 ] || t_send=$EPOCHREALTIME
        alive "$LG_PID" || die "hn-loadgen ended before sending"
        sleep "$POLL_S"
    done
    sleep "$RESHARD_DELAY_S"
    read_metrics "$APORT"
    local m0=$M_moved a0=$M_ask t0=$EPOCHREALTIME acc0=$M_accepted
    if [ "$RESHARD_HOLD_MS" -gt 0 ]; then
        "$RCLTEST" move "$CL_URL" "$RS_FROM" "$RS_TO" "$first" "$count" "$RS_SLOT" "$RESHARD_HOLD_MS" >"$dir/move.out" 2>&1 ||
            { cat "$dir/move.out" >&2; die "hn-rcltest move failed"; }
    else
        "$RCLTEST" move "$CL_URL" "$RS_FROM" "$RS_TO" "$first" "$count" >"$dir/move.out" 2>&1 ||
            { cat "$dir/move.out" >&2; die "hn-rcltest move failed"; }
    fi
    local t1=$EPOCHREALTIME
    read_metrics "$APORT"
    local m1=$M_moved a1=$M_ask acc1=$M_accepted
    # the redirects that trail the move: the collector's workers meet the new map on their next tick
    sleep 1
    read_metrics "$APORT"
    local m2=$M_moved a2=$M_ask
    wait "$LG_PID" || { cat "$dir/loadgen.err" >&2; die "hn-loadgen failed"; }
    LG_PID=
    local LG_sent_beacons= LG_seconds=
    kv LG_ "$(tail -n1 "$dir/loadgen.out")"
    wait_drained
    local written=$M_written accepted=$M_accepted dropped=$M_dropped retries=$M_retries moved_all=$M_moved ask_all=$M_ask
    local rdetail=${M_rdetail%,}
    http_get "$APORT" /metrics >"$dir/metrics.txt" 2>/dev/null || true
    local kproc rq
    read -r kproc rq < <(udp_sock_stats "$UPORT")
    stop_pid "$COL_PID"
    COL_PID=
    local stored
    stored=$(HERENOW_REDIS_URL=$CL_URL HERENOW_STREAM_SHARDS=$SHARDS "$CTL" stream count 2>"$dir/count.err") ||
        { cat "$dir/count.err" >&2; stored=error; }
    RS_LINE=$(awk -v t0="$t0" -v t1="$t1" -v m0="$m0" -v m1="$m1" -v m2="$m2" -v a0="$a0" -v a1="$a1" -v a2="$a2" \
        -v acc0="$acc0" -v acc1="$acc1" -v sent="$LG_sent_beacons" -v accepted="$accepted" -v written="$written" \
        -v dropped="$dropped" -v kproc="$kproc" -v stored="$stored" -v retries="$retries" \
        -v mall="$moved_all" -v aall="$ask_all" -v lsec="$LG_seconds" -v rdetail="$rdetail" 'BEGIN {
            d = t1 - t0
            printf "move_s=%.2f moved=%d ask=%d moved_per_s=%.0f ask_per_s=%.0f trailing_moved=%d trailing_ask=%d",
                d, m1 - m0, a1 - a0, (m1 - m0) / d, (a1 - a0) / d, m2 - m1, a2 - a1
            printf " total_moved=%d total_ask=%d retries=%d accepted_during=%.0f/s offered=%.0f sent=%d accepted=%d",
                mall, aall, retries, (acc1 - acc0) / d, sent / lsec, sent, accepted
            printf " retry_reasons=%s dropped=%d kdrops=%d written=%d stored=%s lost=%s\n", rdetail, dropped, kproc, written, stored,
                (stored ~ /^[0-9]+$/ ? accepted - stored : "?")
        }')
    RS_MOVE=$(grep '^# moved' "$dir/move.out" | sed 's/^# //')
    # more (or fewer) records in the streams than accepted: keep what tells why
    case $RS_LINE in *" lost=0") ;; *) if [ -n "${RESHARD_KEEP:-}" ]; then mkdir -p "$RESHARD_KEEP"; cp -r "$dir"/. "$RESHARD_KEEP/"; fi ;; esac
    echo "bench-cluster: reshard: $RS_MOVE; $RS_LINE"
}

# --- main ------------------------------------------------------------------------------

START_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
T0=$SECONDS
echo "bench-cluster: work dir $WORK"
start_standalone
case " $MODES " in *" replicated "*) start_replicated ;; esac
start_cluster
cluster_roles
echo "bench-cluster: standalone on $SA_PORT; cluster masters ${CL_M[*]}, replicas ${CL_R[*]} (${SECONDS}s)"
# the idle cluster's own CPU (gossip on the cluster bus, replication pings), per node and second
sample_all "${CL_M[@]}" "${CL_R[@]}" "$SA_PORT" >"$WORK/idle0"
sleep 3
sample_all "${CL_M[@]}" "${CL_R[@]}" "$SA_PORT" >"$WORK/idle1"
IDLE=$(join <(sort "$WORK/idle0") <(sort "$WORK/idle1") | awk -v sa="$SA_PORT" -v m=" ${CL_M[*]} " '
    { v = ($5 - $2) / 3; if ($1 == sa) s = v; else if (index(m, " " $1 " ")) { ms += v; nm++ } else { rs += v; nr++ } }
    END { printf "standalone %.0f µs/s; cluster master %.0f µs/s, replica %.0f µs/s (mean per node)", s, ms / nm, rs / nr }')
echo "bench-cluster: idle CPU: $IDLE"
# where the traffic goes: each widget's {w} slot (its sessions, live set) and each shard's master
PLACEMENT=
for w in "${WIDGETS[@]}"; do PLACEMENT+="$w → $("$RCLTEST" node-of "$CL_URL" "hn:live:{$w}" | sed 's/^127.0.0.1://'), "; done
for s in $(seq 0 $((SHARDS - 1))); do
    k=$(HERENOW_STREAM_SHARDS=$SHARDS "$CTL" stream key --shard "$s")
    PLACEMENT+="$k → $("$RCLTEST" node-of "$CL_URL" "$k" | sed 's/^127.0.0.1://'), "
done
PLACEMENT+="hn:widgets → $("$RCLTEST" node-of "$CL_URL" hn:widgets | sed 's/^127.0.0.1://')"
echo "bench-cluster: placement: $PLACEMENT"
: >"$WORK/rows"

for threads in $THREADS; do
    rates=$RATES
    [ "$threads" = 1 ] || rates=$THREADS2_RATES
    for rate in $rates; do
        for run in $(seq 1 "$RUNS"); do
            for mode in $MODES; do
                run_one "$mode" "$threads" "$rate" "$run"
                tail -n1 "$WORK/rows" | tr ' ' '\n' |
                    grep -E '^(mode|threads|rate|run|offered|e2e|loss|kdrops|col_us|redis_us|exec_us|master_us|replica_us|cmds_b|batch|depth|col_syscalls_b|redis_syscalls_b)=' |
                    tr '\n' ' '
                echo
            done
        done
    done
done
RS_LINE= RS_MOVE=
if [ "$RESHARD" = 1 ]; then reshard; fi
echo "bench-cluster: done in $((SECONDS - T0)) s"

REPORT=bench/lib/cluster-report.awk
echo
awk -v mode=console -f "$REPORT" "$WORK/rows"

write_section() {
    local cpu redisv
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    redisv=$(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/')
    cat <<EOF2
$SECTION

Run $START_DATE on $(nproc) cores ($cpu), Linux $(uname -r), Redis $redisv, load average before
$LOAD_BEFORE; commit $GIT_ID, collector built $COLLECTOR_ID. Load generator, collector, the
standalone redis-server and the cluster's six nodes share the cores; loopback only.
**Three masters on two shared cores cannot show three machines' throughput**: read the
per-master CPU per beacon instead. On separate hosts, the cluster saturates when its busiest
master does, at about 1 / (max per-master µs per beacon) beacons/s (the per-master figures are
per beacon of the whole load), which is N / (sum over the masters) when the load is spread evenly
— provided the collectors are not the limit.

Command: \`$CMDLINE\` ($RUNS run(s) of ${DURATION} s per row and mode; bench-udp's beacon mix:
widgets ${WIDGETS[*]}, seed = run, sessions = offered rate × ${SESSION_INTERVAL_S} s, capped at
$SESSIONS_MAX — also at *max*, where bench-udp allows 4,000,000).

The modes in the same run, alternating run by run: *standalone*, one redis-server; *replicated*,
another redis-server with one replica (what replication alone costs; the replica's CPU in
*replicas µs/b*); *cluster*,
\`scripts/redis-cluster.sh\`: 3 masters and 3 replicas (replicas on, as deployed), URL
\`redis+cluster://\` with the three masters as seeds. HERENOW_STREAM_SHARDS=$SHARDS in every mode (one
hash-tagged shard per master on the cluster), so all write the same XADDs. Each Redis is flushed
(and hn:widgets written) before each run; the cluster's masters wait for their replicas' ack of
the flush. Idle CPU of the Redis processes (measured for 3 s before the runs): $IDLE. Where the
cluster's traffic goes (master ports: ${CL_M[*]}): $PLACEMENT.

Columns (medians over the runs): *accepted b/s*: beacons whose Redis writes were all acknowledged,
per second from the first send to the last acknowledgement; *collector µs/b*: collector CPU
(/proc, all threads, 10 ms ticks) per beacon written; *Redis µs/b*: INFO cpu (used_cpu_user +
used_cpu_sys) delta per beacon — the one server, or the three masters summed; *of it, commands*:
the commands' own execution time (INFO commandstats usec; the rest is reading, parsing, writing
replies, feeding replicas, the cluster bus); *per master*: each
master's (in port order); *replicas µs/b*: the three replicas summed (other hosts' work, not in
Redis µs/b); *cmds/b*: INFO commandstats calls per beacon on the masters (INFO left out);
*cmds/master/tick*: each master's commands per collector pipeline flush (herenow_batch_records_count):
the per-master pipeline depth; *records/flush*: beacons per flush. *collector ×*, *Redis ×*: the
mode's median over the standalone one's; *Redis × replicated*: the cluster's over the replicated
server's. A row with kernel drops or accepted < 97 % of sent is marked *sat.*: on this machine a
run starved of CPU by other work falls behind too (see the notes).

EOF2
    awk -v mode=markdown -f "$REPORT" "$WORK/rows"
    echo
    echo "Targets (issue 17): Redis CPU per beacon on the cluster ≤ 1.15 × standalone; collector CPU"
    echo "per beacon ≤ 1.2 × standalone."
    echo
    if [ -n "$RS_LINE" ]; then
        echo "Reshard under load: the collector on the cluster (1 thread) at $RESHARD_RATE b/s offered for"
        echo "${RESHARD_S} s; ${RESHARD_DELAY_S} s after the first beacon, \`hn-rcltest move\` moved $RS_COUNT slots"
        echo "$RS_FIRST..$((RS_FIRST + RS_COUNT - 1)) (around widget $RS_W's slot $RS_SLOT: its sessions and live set; stream"
        echo "shards in the range: ${RS_SHARDS:-none}) from $RS_FROM to $RS_TO, slot by slot (SETSLOT IMPORTING/MIGRATING,"
        echo "MIGRATE in batches of 100 keys, SETSLOT NODE on every master); hold of the widget's slot: ${RESHARD_HOLD_MS} ms."
        echo
        echo "| move | MOVED | ASK | MOVED/s | ASK/s | after the move (1 s): MOVED, ASK | accepted b/s during the move | sent | accepted | written | in the streams | lost |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
        kv RSV_ "$RS_LINE"
        echo "| $RS_MOVE | $RSV_moved | $RSV_ask | $RSV_moved_per_s | $RSV_ask_per_s | $RSV_trailing_moved, $RSV_trailing_ask | $RSV_accepted_during | $RSV_sent | $RSV_accepted | $RSV_written | $RSV_stored | $RSV_lost |"
        echo
        echo "(*in the streams*: \`herenowctl stream count\` over the three shards after the run; *lost*:"
        echo "accepted − in the streams, negative: records written twice. Retries over the whole run: $RSV_retries ($RSV_retry_reasons);"
        echo "kernel drops: $RSV_kdrops, counted drops: $RSV_dropped.)"
        echo
    fi
    echo "<details><summary>Every run (key=value)</summary>"
    echo
    echo '```'
    cat "$WORK/rows"
    [ -z "$RS_LINE" ] || echo "reshard $RS_LINE"
    echo '```'
    echo
    echo "</details>"
    if [ -n "$BENCH_NOTES" ] && [ -f "$BENCH_NOTES" ]; then
        echo
        cat "$BENCH_NOTES"
    fi
}

write_section >"$WORK/section.md"
cp "$WORK/section.md" "${BENCH_SAVE:-/dev/null}" 2>/dev/null || true
if [ -n "$BENCH_DOC" ]; then
    bench_write_section "$SECTION" "$WORK/section.md" "$BENCH_DOC"
    echo "bench-cluster: wrote \"$SECTION\" in $BENCH_DOC"
fi
