#!/usr/bin/env bash
# run-unit.sh: runs each unit-test binary given as an argument, shows its
# output, and counts.
#
#   tests/run-unit.sh build/release/tests/test_beacon build/release/tests/test_config ...
#
# Per binary one line "PASS name (N tests)" or "FAIL name (...)". The tests
# inside a binary are counted from cmocka's summary lines
# "[  PASSED  ] N test(s)." and "[  FAILED  ] N test(s), ..."; a binary that
# fails without such a line (crash, sanitizer report, timeout) counts as one
# failed test, one that passes without them (not cmocka) as one passed test.
# The last two lines are
#   unit tests: T passed, U failed        (tests, read by tests/run-all.sh)
#   B passed, F failed                    (binaries)
# Exit status 1 when any binary failed. HN_UNIT_TIMEOUT_S (default 300) caps
# each binary.
set -uo pipefail

# cmocka's plain format is what gets parsed, whatever the caller's environment.
export CMOCKA_MESSAGE_OUTPUT=stdout
timeout_s=${HN_UNIT_TIMEOUT_S:-300}

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

bins_ok=0 bins_fail=0 tests_ok=0 tests_fail=0
failed_names=()

for bin in "$@"; do
    name=${bin##*/}
    echo "=== $name"
    if [ ! -x "$bin" ]; then
        echo "FAIL $name (not found or not executable: $bin)"
        bins_fail=$((bins_fail + 1)); tests_fail=$((tests_fail + 1)); failed_names+=("$name")
        continue
    fi
    timeout -k 10 "$timeout_s" "$bin" 2>&1 | tee "$tmp"
    rc=${PIPESTATUS[0]}
    p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' "$tmp" | awk '{ s += $1 } END { print s + 0 }')
    f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$tmp" | awk '{ s += $1 } END { print s + 0 }')
    if [ "$rc" -eq 0 ] && [ "$f" -eq 0 ]; then
        [ "$p" -gt 0 ] || p=1
        echo "PASS $name ($p test$([ "$p" -eq 1 ] || echo s))"
        bins_ok=$((bins_ok + 1))
    else
        [ "$f" -gt 0 ] || f=1
        why="exit status $rc"
        if [ "$rc" -eq 124 ]; then why="timed out after ${timeout_s}s"
        elif [ "$rc" -gt 128 ]; then why="killed by signal $((rc - 128))"
        fi
        echo "FAIL $name ($why; $p passed, $f failed)"
        bins_fail=$((bins_fail + 1)); failed_names+=("$name")
    fi
    tests_ok=$((tests_ok + p)); tests_fail=$((tests_fail + f))
done

[ ${#failed_names[@]} -eq 0 ] || echo "failed binaries: ${failed_names[*]}"
echo "unit tests: $tests_ok passed, $tests_fail failed"
echo "$bins_ok passed, $bins_fail failed"
[ "$bins_fail" -eq 0 ]
