#!/usr/bin/env bash
# test_rcl.sh: common/rcl.c, the Redis client of every slow path, on a real
# Redis Cluster of 3 masters and 3 replicas on loopback (hn-rcltest,
# tests/tools/rcltest.c, prints one "ok"/"FAIL" line per check):
#
#   1. pipelines over the three masters with replies in command order,
#      MULTI … EXEC as one unit, CROSSSLOT handed back and counted, a script
#      loaded per node on NOSCRIPT, XREAD/XREADGROUP over three masters
#   2. a slot moved by hand with a key in it: ASK while it moves, TRYAGAIN
#      retried then handed back, MOVED after
#   3. CLUSTER FAILOVER of a key's master: the old master answers MOVED (it
#      is a replica now) and the client finds the new one
#   4. kill -9 of a key's master: the client retries (connection refused,
#      CLUSTERDOWN) until the replica is promoted, within its 15 s budget
#   5. a standalone URL with commas is refused with the cluster hint
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

T="$HN_BIN/hn-rcltest"

# hn-rcltest's "ok"/"FAIL" lines as checks of this script
run_checks() {
    local line rc=0 out
    out=$("$T" "$@" 2>"$HN_TMP/rcltest.err") || rc=$?
    while IFS= read -r line; do
        case "$line" in
            "ok "*) hn_ok "${line#ok }" ;;
            "FAIL "*) hn_fail "${line#FAIL }" ;;
            "# "*) echo "$line" ;;
        esac
    done <<<"$out"
    [ "$rc" -le 1 ] || { cat "$HN_TMP/rcltest.err" >&2; hn_fail "hn-rcltest $1 exited $rc"; }
}

hn_start_redis_cluster
URL=$HERENOW_REDIS_URL

# ---- 1, 2 -------------------------------------------------------------------
run_checks basic "$URL"
run_checks reshard "$URL"

# ---- 3. a manual failover ----------------------------------------------------
run_checks set "$URL" "rcl:{fo}" one
m=$(hn_cluster_master_of "rcl:{fo}")
r=$(hn_cluster_replica_of "$m")
[ -n "$r" ] && hn_ok "the master of rcl:{fo} ($m) has a replica ($r)" || hn_fail "no replica of $m"
run_checks failover "$URL" "rcl:{fo}" "$r"
is_master() { redis-cli -p "$1" role | head -n1 | grep -qx master; }
hn_wait_for 10 "the replica $r is a master" is_master "$r"

# ---- 4. a master killed --------------------------------------------------------
run_checks set "$URL" "rcl:{kill}" two
m=$(hn_cluster_master_of "rcl:{kill}")
pid=$(head -n1 "$HN_CLUSTER_DIR/node-$m/redis.pid")
grep -q redis "/proc/$pid/comm" && hn_ok "the master of rcl:{kill}: port $m, pid $pid" || hn_fail "no pid for $m"
run_checks kill "$URL" "rcl:{kill}" "$pid"
grep '^# ' <<<"$("$T" get "$URL" "rcl:{kill}" 2>/dev/null)" || true

# ---- 5. the URL's grammar ----------------------------------------------------
out=$("$T" get "redis://127.0.0.1:1,127.0.0.1:2" k 2>&1 || true)
case "$out" in
    *"redis+cluster://"*) hn_ok "a redis:// URL with several nodes: refused with the redis+cluster:// hint" ;;
    *) hn_fail "a redis:// URL with commas: '$out'" ;;
esac

hn_done
