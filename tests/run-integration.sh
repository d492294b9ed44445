#!/usr/bin/env bash
# run-integration.sh: runs every tests/integration/test_*.sh in order, each in
# its own bash, and totals their assertions.
#
#   HN_BIN=build/release tests/run-integration.sh [NAME_OR_PATH ...]
#
# With arguments, only those scripts (test_ctl, test_ctl.sh or a path). Each
# script's last line must be "N passed, M failed" (tests/lib.sh prints it); a
# script that ends without it (killed, crashed, timed out) counts as one
# failure, and so does one whose exit status is not 0 although its line says
# 0 failed. The last line is the overall "N passed, M failed"; exit status 1
# on any failure. HN_TEST_TIMEOUT_S (default 600) caps each script.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HN_BIN=${HN_BIN:-build/release}
case "$HN_BIN" in /*) ;; *) HN_BIN="$root/$HN_BIN" ;; esac
export HN_BIN
timeout_s=${HN_TEST_TIMEOUT_S:-600}

scripts=()
if [ $# -eq 0 ]; then
    for t in "$root"/tests/integration/test_*.sh; do
        [ -e "$t" ] && scripts+=("$t")
    done
else
    for a in "$@"; do
        if [ -f "$a" ]; then scripts+=("$a")
        elif [ -f "$root/tests/integration/${a%.sh}.sh" ]; then scripts+=("$root/tests/integration/${a%.sh}.sh")
        else echo "run-integration: no test '$a'" >&2; exit 2
        fi
    done
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT

total_ok=0 total_fail=0
failed_names=()

cd "$root" || exit 1
for t in "${scripts[@]}"; do
    name=$(basename "$t" .sh)
    echo "=== $name"
    timeout -k 10 "$timeout_s" bash "$t" 2>&1 | tee "$tmp"
    rc=${PIPESTATUS[0]}
    last=$(tail -n 1 "$tmp" | tr -d '\r')
    if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        p=${BASH_REMATCH[1]}
        f=${BASH_REMATCH[2]}
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            echo "not ok - $name exited with status $rc although it reports no failure"
            f=1
        fi
    else
        p=0
        f=1
        why="exit status $rc"
        if [ "$rc" -eq 124 ]; then why="timed out after ${timeout_s}s"
        elif [ "$rc" -gt 128 ]; then why="killed by signal $((rc - 128))"
        fi
        echo "not ok - $name died without its final line ($why)"
    fi
    total_ok=$((total_ok + p)); total_fail=$((total_fail + f))
    if [ "$f" -gt 0 ]; then
        echo "FAIL $name ($p passed, $f failed)"
        failed_names+=("$name")
    else
        echo "PASS $name ($p passed)"
    fi
done

[ ${#failed_names[@]} -eq 0 ] || echo "failed scripts: ${failed_names[*]}"
echo "$total_ok passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
