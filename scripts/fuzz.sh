#!/usr/bin/env bash
# fuzz.sh: runs libFuzzer targets (build/fuzz/fuzz_<t>, `make fuzz-build`)
# for FUZZ_TIME seconds each, starting from fuzz/corpus/<t>.
#
#   FUZZ_TIME=600 scripts/fuzz.sh beacon query record http
#
# New inputs go to a scratch corpus (build/fuzz/work/<t>), never into the
# repo; crashes, leaks and timeouts to build/artifacts/fuzz/ (with the
# command that reproduces them). Prints one line per target,
# "fuzz_<t>: <runs> runs in <s> s, <n> crashes", and exits 1 when any target
# found something.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TIME=${FUZZ_TIME:-60}
ART=$ROOT/build/artifacts/fuzz
mkdir -p "$ART"
rc=0
for t in "$@"; do
    bin=$ROOT/build/fuzz/fuzz_$t
    [ -x "$bin" ] || { echo "fuzz_$t: not built (make fuzz-build)"; rc=1; continue; }
    work=$ROOT/build/fuzz/work/$t
    mkdir -p "$work"
    log=$ROOT/build/fuzz/fuzz_$t.log
    before=$(find "$ART" -name "fuzz_$t-*" | wc -l)
    # -timeout: one input slower than 10 s is a finding (a regex gone wild)
    "$bin" -max_total_time="$TIME" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$ART/fuzz_$t-" "$work" "$ROOT/fuzz/corpus/$t" >"$log" 2>&1
    st=$?
    after=$(find "$ART" -name "fuzz_$t-*" | wc -l)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    echo "fuzz_$t: ${runs:-0} runs in ${secs:-?} s, $((after - before)) crashes"
    if [ "$st" -ne 0 ] || [ "$after" -gt "$before" ]; then
        rc=1
        echo "fuzz_$t: exit $st; see $log; reproduce with: $bin $ART/fuzz_$t-<file>"
        grep -E "ERROR|SUMMARY|==[0-9]+==" "$log" | head -5
    fi
done
exit "$rc"
