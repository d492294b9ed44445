#!/usr/bin/env bash
# run-all.sh: unit tests, then integration tests, one overall count.
#
#   HN_BIN=build/release tests/run-all.sh UNIT_BINARY...      (what `make test` runs)
#
# Counts individual tests: the cmocka tests of each unit binary (from
# tests/run-unit.sh's "unit tests: N passed, M failed") plus the assertions of
# each integration script (tests/run-integration.sh's final line). The last
# line is the overall "N passed, M failed"; exit status 1 on any failure.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

# count LINE_REGEX_PREFIX: prints "P F" from the last matching line of $tmp.
count() {
    sed -n "s/^$1\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1 \2/p" "$tmp" | tail -n 1
}

echo "##### unit tests"
bash "$here/run-unit.sh" "$@" | tee "$tmp"
unit_rc=${PIPESTATUS[0]}
read -r unit_ok unit_fail <<<"$(count 'unit tests: ')" || true
unit_ok=${unit_ok:-0}; unit_fail=${unit_fail:-1}
[ "$unit_rc" -eq 0 ] || [ "$unit_fail" -gt 0 ] || unit_fail=1

echo
echo "##### integration tests"
bash "$here/run-integration.sh" | tee "$tmp"
int_rc=${PIPESTATUS[0]}
read -r int_ok int_fail <<<"$(count '')" || true
int_ok=${int_ok:-0}; int_fail=${int_fail:-1}
[ "$int_rc" -eq 0 ] || [ "$int_fail" -gt 0 ] || int_fail=1

echo
echo "unit: $unit_ok passed, $unit_fail failed; integration: $int_ok passed, $int_fail failed"
echo "$((unit_ok + int_ok)) passed, $((unit_fail + int_fail)) failed"
[ $((unit_fail + int_fail)) -eq 0 ]
