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
# on any failure. HN_TEST_TIMEOUT_S (default 600) caps each script. The
# tests' PostgreSQL clusters are copies of one initdb made for the run
# (HN_PG_TEMPLATE, scripts/pg.sh).
#
# --cluster: the named scripts (default: those of HN_CLUSTER_SUITES below) run
# with HN_REDIS_MODE=cluster, on a Redis Cluster of 3 masters and 3 replicas
# (tests/lib.sh hn_start_redis), reported as NAME@cluster. Without arguments
# (`make test`), those suites also run a second time that way, after the rest.
set -uo pipefail

# the suites that also run on a Redis Cluster (issue 17)
HN_CLUSTER_SUITES=${HN_CLUSTER_SUITES-test_collector test_drain test_api test_sse test_dashboard test_doctor}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HN_BIN=${HN_BIN:-build/release}
case "$HN_BIN" in /*) ;; *) HN_BIN="$root/$HN_BIN" ;; esac
export HN_BIN
timeout_s=${HN_TEST_TIMEOUT_S:-600}

# a script as NAME (test_ctl, test_ctl.sh or a path), with @cluster to run on a cluster
resolve() {
    local a=$1 mode=
    case "$a" in *@cluster) a=${a%@cluster}; mode=@cluster ;; esac
    if [ -f "$a" ]; then echo "$a$mode"
    elif [ -f "$root/tests/integration/${a%.sh}.sh" ]; then echo "$root/tests/integration/${a%.sh}.sh$mode"
    else echo "run-integration: no test '$a'" >&2; return 2
    fi
}

cluster=0
[ "${1:-}" != --cluster ] || { cluster=1; shift; }
scripts=()
if [ $# -eq 0 ] && [ "$cluster" -eq 0 ]; then
    for t in "$root"/tests/integration/test_*.sh; do
        [ -e "$t" ] && scripts+=("$t")
    done
    for a in $HN_CLUSTER_SUITES; do scripts+=("$(resolve "$a@cluster")") || exit 2; done
else
    [ $# -gt 0 ] || set -- $HN_CLUSTER_SUITES
    for a in "$@"; do
        [ "$cluster" -eq 0 ] || a=${a%@cluster}@cluster
        scripts+=("$(resolve "$a")") || exit 2
    done
fi

tmp=$(mktemp)
# one initdb for the whole run, copied by each test's PostgreSQL (scripts/pg.sh
# start --fast; made by the first, removed at the end)
pg_tpl=
if [ -z "${HN_PG_TEMPLATE:-}" ]; then
    pg_tpl=$(mktemp -d)
    chmod 0755 "$pg_tpl"
    export HN_PG_TEMPLATE=$pg_tpl
fi
trap 'rm -f "$tmp"; [ -z "$pg_tpl" ] || rm -rf "$pg_tpl"' EXIT

total_ok=0 total_fail=0
failed_names=()

cd "$root" || exit 1
for t in "${scripts[@]}"; do
    mode=single
    case "$t" in *@cluster) t=${t%@cluster}; mode=cluster ;; esac
    name=$(basename "$t" .sh)
    [ "$mode" = single ] || name=$name@cluster
    echo "=== $name"
    t0=$SECONDS
    HN_REDIS_MODE=$mode timeout -k 10 "$timeout_s" bash "$t" 2>&1 | tee "$tmp"
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
        echo "FAIL $name ($p passed, $f failed, $((SECONDS - t0)) s)"
        failed_names+=("$name")
    else
        echo "PASS $name ($p passed, $((SECONDS - t0)) s)"
    fi
done

[ ${#failed_names[@]} -eq 0 ] || echo "failed scripts: ${failed_names[*]}"
echo "$total_ok passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
