#!/usr/bin/env bash
# fuzz.sh: runs libFuzzer targets (fuzz_<t> in FUZZ_BIN, `make fuzz-build`)
# for FUZZ_TIME seconds each, starting from fuzz/corpus/<t>.
#
#   FUZZ_TIME=600 scripts/fuzz.sh beacon query record http ingress
#
# Environment (defaults in brackets), so that several runs need not share
# anything:
#   FUZZ_BIN        the directory of fuzz_<t> [build/release/fuzz]
#   FUZZ_WORK       scratch corpora, one directory per target [$FUZZ_BIN/work]
#   FUZZ_ARTIFACTS  crashes, leaks, timeouts [build/artifacts/fuzz]
#   FUZZ_TIMEOUT    seconds one input may take before it is a finding [10]
#   FUZZ_JOBS       targets fuzzed at the same time, each on one core [1]
#   HERENOW_GEOIP_DB  fuzz_ingress's GeoIP database [the tests' own, made by
#                     tests/tools/mkmmdb.pl into $FUZZ_WORK]
#
# New inputs go to the scratch corpus ($FUZZ_WORK/<t>), never into the repo;
# crashes, leaks and timeouts to $FUZZ_ARTIFACTS (with the command that
# reproduces them); libFuzzer's output to $FUZZ_BIN/fuzz_<t>.log. Prints one
# line per target, "fuzz_<t>: <runs> runs in <s> s, <n> crashes", and exits
# 1 when any target found something.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
abs() { case "$1" in /*) echo "$1" ;; *) echo "$ROOT/$1" ;; esac; }
TIME=${FUZZ_TIME:-60}
BIN=$(abs "${FUZZ_BIN:-build/release/fuzz}")
WORK=$(abs "${FUZZ_WORK:-$BIN/work}")
ART=$(abs "${FUZZ_ARTIFACTS:-build/artifacts/fuzz}")
TIMEOUT=${FUZZ_TIMEOUT:-10}
JOBS=${FUZZ_JOBS:-1}
[[ $JOBS =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: FUZZ_JOBS must be a number >= 1 (got '$JOBS')" >&2; exit 2; }
mkdir -p "$ART" "$WORK"
if [ -z "${HERENOW_GEOIP_DB:-}" ] && perl "$ROOT/tests/tools/mkmmdb.pl" "$WORK/geo.mmdb" 2>/dev/null; then
    export HERENOW_GEOIP_DB=$WORK/geo.mmdb     # fuzz_ingress: enrichment with geo
fi
# one_target T: fuzzes T, prints its line; status 1 when it found something
one_target() {
    local t=$1 bin=$BIN/fuzz_$1 work=$WORK/$1 log=$BIN/fuzz_$1.log before after st runs secs
    [ -x "$bin" ] || { echo "fuzz_$t: not built ($bin; make fuzz-build)"; return 1; }
    mkdir -p "$work"
    before=$(find "$ART" -name "fuzz_$t-*" | wc -l)
    # -timeout: one input slower than that is a finding (a regex gone wild, a stuck connection)
    "$bin" -max_total_time="$TIME" -timeout="$TIMEOUT" -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$ART/fuzz_$t-" "$work" "$ROOT/fuzz/corpus/$t" >"$log" 2>&1
    st=$?
    after=$(find "$ART" -name "fuzz_$t-*" | wc -l)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    echo "fuzz_$t: ${runs:-0} runs in ${secs:-?} s, $((after - before)) crashes"
    if [ "$st" -ne 0 ] || [ "$after" -gt "$before" ]; then
        echo "fuzz_$t: exit $st; see $log; reproduce with: $bin $ART/fuzz_$t-<file>"
        grep -E "ERROR|SUMMARY|==[0-9]+==|fuzz_$t: " "$log" | head -5
        return 1
    fi
}

# FUZZ_JOBS targets at a time (each is one process on one core), their
# lines printed in the order given
rc=0
if [ "$JOBS" -eq 1 ]; then              # one at a time: each line as its target ends
    for t in "$@"; do one_target "$t" || rc=1; done
    exit "$rc"
fi
for t in "$@"; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
    (one_target "$t" >"$WORK/$t.out" 2>&1; echo $? >"$WORK/$t.rc") &
done
wait
for t in "$@"; do
    cat "$WORK/$t.out"
    [ "$(cat "$WORK/$t.rc" 2>/dev/null)" = 0 ] || rc=1
    rm -f "$WORK/$t.out" "$WORK/$t.rc"
done
exit "$rc"
