#!/usr/bin/env bash
# test_fuzz.sh: the decoders and the collector's HTTP ingress under fuzzing
# (fuzz/, `make fuzz` for long runs).
#
#   1. the seed corpus fuzz/corpus/<t> through each target's replay driver,
#      built with gcc + ASan + UBSan ($HN_BIN/fuzz-replay/replay_<t>): nothing
#      may crash, leak or trip a sanitizer; the beacon seeds must all be
#      accepted (so the round-trip property is exercised), and the ingress
#      seeds must get the answers they were written for (so the fuzzer starts
#      from requests that reach the handlers, the widget table and Redis)
#   2. each libFuzzer target (clang, $HN_BIN/fuzz/fuzz_<t>) for HN_FUZZ_SECONDS
#      (15) from that corpus, as many targets at a time as there are cores: no crash, leak or timeout (scripts/fuzz.sh; the
#      scratch corpora live in the test's temp dir, so every run starts from
#      the committed seeds; libFuzzer's logs stay in $HN_BIN/fuzz/fuzz_<t>.log,
#      findings go to HN_FUZZ_ARTIFACTS, default build/artifacts/fuzz)
#
# Both kinds of binaries are built by `make test` (fuzz-replay-build,
# fuzz-build) under $(OUT), the HN_BIN of the test run. The ingress target
# gets the tests' GeoIP database (tests/tools/mkmmdb.pl), so that
# enrichment runs whole.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

TARGETS=(beacon query record http ingress)
FR=$HN_BIN/fuzz-replay
FZ=$HN_BIN/fuzz
perl "$HN_ROOT/tests/tools/mkmmdb.pl" "$HN_TMP/geo.mmdb"
export HERENOW_GEOIP_DB=$HN_TMP/geo.mmdb      # read by fuzz_ingress only

for t in "${TARGETS[@]}"; do
    n=$(find "$HN_ROOT/fuzz/corpus/$t" -type f | wc -l)
    hn_assert_cmd "replay of fuzz/corpus/$t ($n inputs, gcc + ASan + UBSan): no finding" \
        "$FR/replay_$t" "$HN_ROOT/fuzz/corpus/$t"
done
bad=0
for f in "$HN_ROOT"/fuzz/corpus/beacon/*; do
    HN_FUZZ_EXPECT_ACCEPT=1 "$FR/replay_beacon" "$f" >/dev/null 2>&1 || { bad=$((bad + 1)); echo "# not accepted: $f"; }
done
hn_assert_eq "every beacon seed is accepted by the decoder" 0 "$bad"

# What a few ingress seeds must get: "<statuses> | <beacons accepted>"
# (fuzz_ingress with HN_FUZZ_VERBOSE=1 prints both for each input).
declare -A want=(
    [post-one]="204 | 1"
    [post-batch-xff]="204 | 7"
    [post-chunked]="204 | 7"
    [post-dnt]="204 | 0"
    [post-dnt-off-widget]="204 | 1"
    [post-no-ua]="204 | 0"
    [post-413]="413 | 0"
    [post-two-lengths]="400 | 0"
    [headers-431]="431 | 0"
    [pixel-get]="200 | 1"
    [pixel-head-10]="200 | 1"
    [options-b]="204 | 0"
    [script-gzip]="200 | 0"
    [script-304]="304 | 0"
    [script-304-gz]="304 | 0"
    [pipelined]="204 200 204 200 404 405 405 204 | 9"
    [seed-routes]="204 204 204 204 400 400 | 3"
)
for s in $(printf '%s\n' "${!want[@]}" | sort); do
    line=$(HN_FUZZ_VERBOSE=1 "$FR/replay_ingress" "$HN_ROOT/fuzz/corpus/ingress/$s" 2>&1 |
        sed -n 's/^fuzz_ingress: [0-9]* bytes: answers \(.*\) ([0-9]* bytes), \([0-9]*\) beacons accepted.*/\1 | \2/p')
    hn_assert_eq "ingress seed $s: answers | beacons accepted" "${want[$s]}" "$line"
done

if ! command -v clang >/dev/null; then
    hn_fail "clang is needed for the libFuzzer targets (apt-get install clang libclang-rt-14-dev)"
    hn_done
fi
secs=${HN_FUZZ_SECONDS:-15}
out=$(FUZZ_TIME=$secs FUZZ_JOBS=$(nproc) FUZZ_BIN=$FZ FUZZ_WORK=$HN_TMP/work FUZZ_ARTIFACTS=${HN_FUZZ_ARTIFACTS:-$HN_ROOT/build/artifacts/fuzz} \
      "$HN_ROOT/scripts/fuzz.sh" "${TARGETS[@]}" 2>&1) && rc=0 || rc=$?
echo "$out" | sed 's/^/# /'
for t in "${TARGETS[@]}"; do
    line=$(grep "^fuzz_$t: " <<<"$out" | head -1)
    runs=$(sed -n 's/^fuzz_[a-z]*: \([0-9]*\) runs.*/\1/p' <<<"$line")
    hn_assert_cmd "fuzz_$t ${secs} s: ${line#fuzz_$t: }" \
        bash -c "[[ '$line' == *', 0 crashes' ]] && [ '${runs:-0}' -gt 1000 ]"
done
hn_assert_eq "scripts/fuzz.sh found nothing (exit 0)" 0 "$rc"
hn_done
