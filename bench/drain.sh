#!/usr/bin/env bash
# drain.sh: `make bench-drain` — the drain worker's throughput against a raw
# COPY of the same rows into the same tables, measured in the same run.
#
# Per run: fresh Redis and PostgreSQL (fsync on, as in production), a
# collector; hn-loadgen fills the stream with RECORDS records of SESSIONS
# sessions while no drain runs; then herenow-api starts and we time, from
# its start to the last row, the drain moving the whole stream into
# PostgreSQL (records/s persisted, sessions updated/s). Reference: the rows
# it wrote are exported (COPY TO), the tables truncated, and the same rows
# COPYed back into the same partitioned tables with the same indexes, in one
# COPY per table: records/s of a raw COPY. Ratio = drain / raw COPY.
#
# Environment: RECORDS=300000 SESSIONS=20000 RUNS=3 DRAIN_BATCH (entries per
# read; default the api's) BENCH_DOC=docs/BENCHMARKS.md ("" : don't write)
# BENCH_LOG_LEVEL (the api's; debug logs each batch's steps, kept with HN_KEEP_TMP=1).
set -euo pipefail
cd "$(dirname "$0")/.."
CMDLINE="make bench-drain"
for v in RUNS SESSIONS RECORDS; do
    if [ -n "${!v+x}" ]; then CMDLINE="$v=\"${!v}\" $CMDLINE"; fi
done
RECORDS=${RECORDS:-300000}
SESSIONS=${SESSIONS:-20000}
RUNS=${RUNS:-3}
BENCH_DOC=${BENCH_DOC-docs/BENCHMARKS.md}
source bench/lib/doc-section.sh
export HN_BIN=${HN_BIN:-build/release}
source tests/lib.sh
START_DATE=$(date -u +%Y-%m-%dT%H:%MZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RES="$HN_TMP/results"
: >"$RES"

run() {
    local i=$1 dir="$HN_TMP/run$i" port rport udp admin api
    mkdir -p "$dir"
    chmod 0755 "$dir"
    port=$(hn_free_port); rport=$(hn_free_port); udp=$(hn_free_port); admin=$(hn_free_port); api=$(hn_free_port)
    "$HN_ROOT/scripts/redis.sh" start --fast "$dir/redis" "$rport" >/dev/null
    "$HN_ROOT/scripts/pg.sh" start "$dir/pg" "$port" >/dev/null
    _hn_register HN_REDIS_DIRS "$dir/redis"
    _hn_register HN_PG_DIRS "$dir/pg"
    export HERENOW_REDIS_URL="redis://127.0.0.1:$rport/0"
    export HERENOW_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/herenow"
    export HERENOW_UDP_LISTEN=127.0.0.1:$udp HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN=127.0.0.1:$admin
    export HERENOW_API_LISTEN=127.0.0.1:$api HERENOW_THREADS=2 HERENOW_LOG_LEVEL=${BENCH_LOG_LEVEL:-warn}
    psql_() { "${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql" -X -At -v ON_ERROR_STOP=1 "$HERENOW_DATABASE_URL" -c "$1"; }
    "$HN_BIN/herenowctl" migrate >/dev/null
    local key
    key=$("$HN_BIN/herenowctl" widget add --name bench --domain bench.example | awk '/^key:/ { print $2 }')
    hn_spawn "collector$i" "$HN_BIN/herenow-collector"
    hn_wait_for 10 "collector ready" curl -fsS "http://127.0.0.1:$admin/readyz"
    "$HN_BIN/hn-loadgen" --to "127.0.0.1:$udp" --widgets "$key" --count "$RECORDS" --rate 50000 \
        --sessions "$SESSIONS" --beacons-per-datagram 8 --seed "$i" >/dev/null
    # every accepted beacon written to the stream (a datagram the kernel
    # dropped is not in either count)
    written_all() {
        local m
        m=$(curl -fsS "http://127.0.0.1:$admin/metrics") || return 1
        local acc wr
        acc=$(awk '$1 == "herenow_beacons_accepted_total{transport=\"udp\"}" { print $2 }' <<<"$m")
        wr=$(awk '$1 == "herenow_records_written_total" { print $2 }' <<<"$m")
        [ -n "$acc" ] && [ "$acc" -gt 0 ] && [ "$wr" = "$acc" ]
    }
    hn_wait_for 60 "collector wrote every accepted record" written_all
    local n
    n=$(curl -fsS "http://127.0.0.1:$admin/metrics" | awk '$1 == "herenow_records_written_total" { print $2 }')
    local pid_var="HN_PID_collector$i"
    hn_stop "${!pid_var}"
    # --- the drain
    local t0 t1 ms sessions
    t0=$(date +%s%N)
    hn_spawn "api$i" "$HN_BIN/herenow-api"
    # polled from the drain's own counter: a count(*) every 50 ms would
    # load PostgreSQL while it is being measured
    hn_wait_for 600 "drain wrote $n records" bash -c "[ \"\$(curl -fsS http://127.0.0.1:$api/metrics 2>/dev/null | awk '\$1 == \"herenow_drain_records_total\" { print \$2 }')\" -ge $n ] 2>/dev/null"
    t1=$(date +%s%N)
    sessions=$(curl -fsS "http://127.0.0.1:$api/metrics" | awk '$1 == "herenow_drain_sessions_updated_total" { print $2 }')
    pid_var="HN_PID_api$i"
    hn_stop "${!pid_var}"
    ms=$(( (t1 - t0) / 1000000 ))
    local rows
    rows=$(psql_ "SELECT (SELECT count(*) FROM widget_page_views) + (SELECT count(*) FROM widget_visitor_events)")
    [ "$rows" = "$n" ] || hn_fail "run $i: $rows rows in PostgreSQL, $n records written by the collector"
    # --- the reference: the same rows, raw COPY into the same tables
    local pv ev c0 c1 cms
    chmod 0777 "$dir"
    psql_ "COPY (SELECT * FROM widget_page_views) TO '$dir/pv.copy'" >/dev/null
    psql_ "COPY (SELECT * FROM widget_visitor_events) TO '$dir/ev.copy'" >/dev/null
    psql_ "TRUNCATE widget_page_views, widget_visitor_events" >/dev/null
    psql_ "CHECKPOINT" >/dev/null
    c0=$(date +%s%N)
    psql_ "COPY widget_page_views FROM '$dir/pv.copy'" >/dev/null
    psql_ "COPY widget_visitor_events FROM '$dir/ev.copy'" >/dev/null
    c1=$(date +%s%N)
    cms=$(( (c1 - c0) / 1000000 ))
    pv=$(psql_ "SELECT count(*) FROM widget_page_views")
    ev=$(psql_ "SELECT count(*) FROM widget_visitor_events")
    echo "$i $n $ms $sessions $cms $pv $ev" >>"$RES"
    printf 'run %d: %d records (%d pv, %d other) drained in %d ms = %d rec/s, %d session updates; raw COPY %d ms = %d rec/s; ratio %.2f\n' \
        "$i" "$n" "$pv" "$ev" "$ms" $((n * 1000 / (ms > 0 ? ms : 1))) "$sessions" "$cms" $((n * 1000 / (cms > 0 ? cms : 1))) \
        "$(awk -v a="$ms" -v b="$cms" 'BEGIN { print b / a }')"
    "$HN_ROOT/scripts/pg.sh" stop "$dir/pg" >/dev/null
    "$HN_ROOT/scripts/redis.sh" stop "$dir/redis" >/dev/null
    rm -f "$dir/pv.copy" "$dir/ev.copy"
}

for i in $(seq 1 "$RUNS"); do run "$i"; done

med() { awk -v c="$1" '{ print $c }' "$RES" | bench_median; }
drain_rps=$(awk '{ printf "%d\n", $2 * 1000 / $3 }' "$RES" | bench_median)
copy_rps=$(awk '{ printf "%d\n", $2 * 1000 / $5 }' "$RES" | bench_median)
sess_ps=$(awk '{ printf "%d\n", $4 * 1000 / $3 }' "$RES" | bench_median)
ratio=$(awk '{ printf "%.3f\n", ($3 > 0 ? $5 / $3 : 0) }' "$RES" | bench_median)
echo "bench-drain: median drain $drain_rps rec/s, raw COPY $copy_rps rec/s, ratio $ratio, sessions updated $sess_ps/s"

if [ -n "$BENCH_DOC" ]; then
    SECTION="## Drain into PostgreSQL (make bench-drain)"
    {
        echo "$SECTION"
        echo
        bench_pg_run_line "$START_DATE" "$LOAD_BEFORE"
        echo "Command: \`$CMDLINE\` — $RUNS run(s) of $RECORDS records over $SESSIONS sessions (hn-loadgen's mix: page views,"
        echo "heartbeats, events, hide/show/end), stream filled first, then the drain started and timed to the last row."
        echo "Reference: the same rows exported and COPYed back into the same tables (same partitions and indexes), in the same run."
        echo
        echo "| | median | runs |"
        echo "|---|---|---|"
        echo "| drain, records/s persisted | $drain_rps | $(awk '{ printf "%d ", $2 * 1000 / $3 }' "$RES") |"
        echo "| drain, session rows updated/s | $sess_ps | $(awk '{ printf "%d ", $4 * 1000 / $3 }' "$RES") |"
        echo "| raw COPY, records/s | $copy_rps | $(awk '{ printf "%d ", $2 * 1000 / $5 }' "$RES") |"
        echo "| drain / raw COPY | $ratio | $(awk '{ printf "%.2f ", $5 / $3 }' "$RES") |"
        echo
        echo "Targets: ≥ 0.5 × raw COPY and ≥ 100,000 records/s."
        if [ -f bench/lib/drain-notes.md ]; then echo; cat bench/lib/drain-notes.md; fi
    } >"$HN_TMP/section.md"
    bench_write_section "$SECTION" "$HN_TMP/section.md" "$BENCH_DOC"
    echo "bench-drain: wrote \"$SECTION\" in $BENCH_DOC"
fi
hn_done
