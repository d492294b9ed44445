# run.sh: sourced by bench/sse.sh, bench/chat.sh and bench/rules.sh after
# tests/lib.sh: the start of a run and the helpers its rounds share.

# bench_start DAEMON "DIR…" BINARY…: private copies of the binaries from
# $HN_BIN in $HN_TMP/bin (others rebuild in this tree, and one table must
# come from one set of binaries). Sets BIN; BUILD_ID (DAEMON's build time
# and sha256); GIT_ID (HEAD, and a note when the DIRs have local changes);
# START_DATE, LOAD_BEFORE, T_START, CLK_TCK; RES, an empty results file.
bench_start() {
    local daemon=$1 dirs=$2 b
    shift 2
    BIN=$HN_TMP/bin
    mkdir -p "$BIN"
    for b in "$@"; do cp "$HN_BIN/$b" "$BIN/"; done
    BUILD_ID="$(date -u -r "$HN_BIN/$daemon" '+%Y-%m-%d %H:%M UTC'), sha256 $(sha256sum "$BIN/$daemon" | cut -c1-12)"
    GIT_ID=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
    # shellcheck disable=SC2086  # DIRs: one word each
    git diff --quiet HEAD -- $dirs 2>/dev/null ||
        GIT_ID+=", $(sed -E 's#([^ ]+)#\1/#g; s# #, #g' <<<"$dirs") with local changes"
    START_DATE=$(date -u +%Y-%m-%dT%H:%MZ)
    LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
    T_START=$(date +%s)
    CLK_TCK=$(getconf CLK_TCK)
    RES=$HN_TMP/results
    : >"$RES"
}

# utime + stime of a process, in clock ticks
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# a /proc/PID/status field, kB: status_kb PID VmRSS
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
now_s() { date +%s.%N; }
# pct TICKS SECONDS: % of one core (PCT_DECIMALS decimals, 1 unless set)
pct() { awk -v t="$1" -v s="$2" -v k="$CLK_TCK" -v d="${PCT_DECIMALS:-1}" 'BEGIN { printf "%.*f", d, (s > 0 ? t / k / s * 100 : 0) }'; }
# kv KEY LINE: one field of a key=value line
kv() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print substr($0, length(k) + 2); exit }'; }

# bench_finish NAME: prints $OUT (the section), each round's api log lines
# above info ($HN_TMP/api-warn.N), writes $OUT as $SECTION of $BENCH_DOC
# (unless it is empty) and ends the run (hn_done).
bench_finish() {
    local r
    cat "$OUT"
    for r in $(seq 1 "$RUNS"); do
        if [ -s "$HN_TMP/api-warn.$r" ]; then
            echo "$1: round $r, api log lines above info:"
            sed 's/^/  /' "$HN_TMP/api-warn.$r"
        fi
    done
    if [ -n "$BENCH_DOC" ]; then
        bench_write_section "$SECTION" "$OUT" "$BENCH_DOC"
        echo "$1: wrote \"$SECTION\" in $BENCH_DOC"
    fi
    hn_done
}
