#!/usr/bin/env bash
# test_fuzz.sh: the decoders under fuzzing (fuzz/, `make fuzz` for long runs).
#
#   1. the seed corpus fuzz/corpus/<t> through each target's replay driver,
#      built with gcc + ASan + UBSan (build/fuzz-replay/replay_<t>): nothing
#      may crash, leak or trip a sanitizer; the beacon seeds must all be
#      accepted (so the round-trip property is exercised)
#   2. each libFuzzer target (clang) for HN_FUZZ_SECONDS (30) from that
#      corpus: no crash, leak or timeout (scripts/fuzz.sh)
#
# Both kinds of binaries are built by `make test` (fuzz-replay-build,
# fuzz-build).
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

TARGETS=(beacon query record http)
FR=$HN_ROOT/build/fuzz-replay
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

if ! command -v clang >/dev/null; then
    hn_fail "clang is needed for the libFuzzer targets (apt-get install clang libclang-rt-14-dev)"
    hn_done
fi
secs=${HN_FUZZ_SECONDS:-30}
out=$(FUZZ_TIME=$secs "$HN_ROOT/scripts/fuzz.sh" "${TARGETS[@]}" 2>&1) && rc=0 || rc=$?
echo "$out" | sed 's/^/# /'
for t in "${TARGETS[@]}"; do
    line=$(grep "^fuzz_$t: " <<<"$out" | head -1)
    runs=$(sed -n 's/^fuzz_[a-z]*: \([0-9]*\) runs.*/\1/p' <<<"$line")
    hn_assert_cmd "fuzz_$t ${secs} s: ${line#fuzz_$t: }" \
        bash -c "[[ '$line' == *', 0 crashes' ]] && [ '${runs:-0}' -gt 1000 ]"
done
hn_assert_eq "scripts/fuzz.sh found nothing (exit 0)" 0 "$rc"
hn_done
