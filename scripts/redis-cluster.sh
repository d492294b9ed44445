#!/usr/bin/env bash
# redis-cluster.sh: a private Redis Cluster of 3 masters and 3 replicas on
# 127.0.0.1, in a directory of its own (issue 17's tests and `make run
# CLUSTER=1`).
#
#   scripts/redis-cluster.sh start DIR PORT   nodes on PORT .. PORT+5 (and their cluster bus
#                                             ports, PORT+10000 ..), made a cluster, waited for
#   scripts/redis-cluster.sh stop DIR         stops the six nodes (only ours: scripts/redis.sh)
#   scripts/redis-cluster.sh status DIR       exit 0 when every node runs and the cluster is ok
#
# Each node is a scripts/redis.sh server in DIR/node-PORT without persistence,
# with cluster-enabled, a node timeout of HN_CLUSTER_NODE_TIMEOUT_MS (2000: a
# failover within seconds) and its nodes.conf in its directory. start joins
# them with `redis-cli --cluster create … --cluster-replicas 1` (the first
# three ports masters, slots split in three), then waits until every node says
# cluster_state:ok and CLUSTER SLOTS shows a replica for each master. A start
# on a DIR whose nodes run already only waits.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
TIMEOUT_S=${HN_CLUSTER_START_TIMEOUT_S:-60}
NODE_TIMEOUT_MS=${HN_CLUSTER_NODE_TIMEOUT_MS:-2000}

die() { echo "redis-cluster.sh: $*" >&2; exit 1; }
usage() {
    echo "usage: $0 start DIR PORT | stop DIR | status DIR" >&2
    exit 2
}
abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
ports_of() { cat "$1/ports" 2>/dev/null || die "$1: no cluster here (no ports file)"; }

# every node says cluster_state:ok, and each of the 3 masters has a replica
ready() {
    local p n
    for p in "$@"; do
        redis-cli -h 127.0.0.1 -p "$p" cluster info 2>/dev/null | tr -d '\r' | grep -qx 'cluster_state:ok' || return 1
    done
    # CLUSTER SLOTS: 3 ranges, each with its master and one replica (port lines: 6)
    n=$(redis-cli -h 127.0.0.1 -p "$1" cluster slots 2>/dev/null | grep -cx '127.0.0.1' || true)
    [ "$n" -ge 6 ]
}

cmd_start() {
    [ $# -eq 2 ] || usage
    local dir port p i
    dir=$(abspath "$1")
    port=$2
    case "$port" in '' | *[!0-9]*) die "bad port '$port'" ;; esac
    if [ "$port" -lt 1 ] || [ "$port" -gt 55530 ]; then die "PORT from 1 to 55530 (bus ports are PORT+10000..)"; fi
    mkdir -p "$dir"
    local ports=()
    for i in 0 1 2 3 4 5; do ports+=($((port + i))); done
    echo "${ports[*]}" >"$dir/ports"
    for p in "${ports[@]}"; do
        HN_REDIS_CONF_EXTRA="cluster-enabled yes
cluster-config-file $dir/node-$p/nodes.conf
cluster-node-timeout $NODE_TIMEOUT_MS
cluster-require-full-coverage yes" "$HERE/redis.sh" start --fast "$dir/node-$p" "$p" >/dev/null
    done
    if ready "${ports[@]}"; then
        echo "redis cluster already running on 127.0.0.1:${ports[0]}..${ports[5]}"
        return 0
    fi
    # a new cluster (the nodes know no other node yet): create it
    local known
    known=$(redis-cli -h 127.0.0.1 -p "${ports[0]}" cluster info | tr -d '\r' | awk -F: '$1 == "cluster_known_nodes" { print $2 }')
    if [ "$known" = 1 ]; then
        local addrs=()
        for p in "${ports[@]}"; do addrs+=("127.0.0.1:$p"); done
        redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 ||
            { tail -n 20 "$dir/create.log" >&2; die "redis-cli --cluster create failed"; }
    fi
    local deadline=$((SECONDS + TIMEOUT_S))
    until ready "${ports[@]}"; do
        [ "$SECONDS" -lt "$deadline" ] || die "the cluster is not ok after ${TIMEOUT_S} s (see $dir/node-*/redis.log)"
        sleep 0.1
    done
    echo "redis cluster started on 127.0.0.1:${ports[0]}..${ports[5]} (3 masters, 3 replicas), dir $dir"
}

cmd_stop() {
    [ $# -eq 1 ] || usage
    local dir p rc=0
    dir=$(abspath "$1")
    for p in $(ports_of "$dir"); do
        [ -d "$dir/node-$p" ] || continue
        "$HERE/redis.sh" stop "$dir/node-$p" >/dev/null || rc=1
    done
    return "$rc"
}

cmd_status() {
    [ $# -eq 1 ] || usage
    local dir p
    dir=$(abspath "$1")
    for p in $(ports_of "$dir"); do "$HERE/redis.sh" status "$dir/node-$p" >/dev/null || return 1; done
    # shellcheck disable=SC2046
    ready $(ports_of "$dir")
}

[ $# -ge 1 ] || usage
command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found (run scripts/setup.sh)"
cmd=$1
shift
case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    *) usage ;;
esac
