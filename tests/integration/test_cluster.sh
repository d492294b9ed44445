#!/usr/bin/env bash
# test_cluster.sh: the whole system on a real Redis Cluster of 3 masters and
# 3 replicas on loopback (issue 17): collector, api with the drain, and an
# SSE stream, under a steady load over UDP and HTTP (hn-steady), with two
# widgets whose keys live on different masters and HERENOW_STREAM_SHARDS=3
# (one shard per master):
#
#   1. the load alone: every accepted beacon one row in PostgreSQL, once;
#      the live list of both widgets; from a second api reading replicas
#      (HERENOW_REDIS_READ_REPLICAS=on), the same lists, read on the replicas
#   2. 1,000 slots around widget A's moved to another master while beacons
#      flow (hn-rcltest move: SETSLOT MIGRATING/IMPORTING, MIGRATE, SETSLOT
#      NODE, slot by slot): ASK and MOVED seen by the collector, nothing lost
#      or doubled, the live list answered throughout
#   3. CLUSTER FAILOVER of widget A's master under load: 0 lost
#   4. kill -9 of widget B's master under load: service back once its
#      replica is promoted; what was lost against what was accepted, stated
#   5. the SSE stream opened before all this is still open and still fed
#   6. chat downlinks of both widgets (their hn:chat:{w} on two masters,
#      polled by the collector's chat tail): entries delivered, and still
#      delivered after a failover of a widget's master
#   7. the slot of widget A's stream shard without a master (CLUSTER DELSLOTS
#      on every node) under load: the collector counts Redis as down and
#      spools what it accepts meanwhile, and once the slot has its master again every
#      accepted beacon is one row
#   8. TRYAGAIN: a session's end (a script of three keys) on widget A's slot
#      half moved to another master: sent again alone until the move ends,
#      no connection dropped, the session gone
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

CTL="$HN_BIN/herenowctl"
T="$HN_BIN/hn-rcltest"
RATE=300                   # beacons/s per widget, over UDP + HTTP

hn_start_redis_cluster
hn_start_pg
"$CTL" migrate >/dev/null
URL=$HERENOW_REDIS_URL
export HERENOW_STREAM_SHARDS=3

# ---- two widgets on two masters ------------------------------------------------
read -r WA KA <<<"$(hn_widget_add --name "A" --domain a.example)"
read -r WB KB <<<"$(hn_widget_add --name "B" --domain b.example)"
for _ in 1 2 3 4 5 6; do
    [ "$(hn_cluster_master_of "hn:live:{$WA}")" != "$(hn_cluster_master_of "hn:live:{$WB}")" ] && break
    read -r WB KB <<<"$(hn_widget_add --name "B" --domain b.example)"
done
MA=$(hn_cluster_master_of "hn:live:{$WA}")
MB=$(hn_cluster_master_of "hn:live:{$WB}")
[ "$MA" != "$MB" ] && hn_ok "widget $WA lives on master $MA, widget $WB on master $MB" ||
    hn_fail "no two widgets on different masters"
shard_masters=$(for s in 0 1 2; do hn_cluster_master_of "$("$CTL" stream key --shard "$s")"; done | sort -u | wc -l)
hn_assert_eq "the three stream shards live on three masters" 3 "$shard_masters"
TOK=$("$CTL" token create --all 2>/dev/null)

# ---- daemons -------------------------------------------------------------------------
PORT=$(hn_free_port)
ADMIN=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$PORT HERENOW_HTTP_LISTEN=127.0.0.1:$PORT HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_THREADS=2 HERENOW_WIDGET_REFRESH_MS=300 HERENOW_RATE_LIMIT=0
export HERENOW_REDIS_TIMEOUT_MS=1000 HERENOW_REDIS_CONNECT_TIMEOUT_MS=300 HERENOW_REDIS_RETRY_MS=8000
export HERENOW_SPOOL_DIR=$HN_TMP/spool HERENOW_SPOOL_FSYNC=always
mkdir -p "$HERENOW_SPOOL_DIR"
export HERENOW_DRAIN_CLAIM_IDLE_MS=300 HERENOW_DRAIN_RETRY_MAX_MS=300 HERENOW_DRAIN_BLOCK_MS=100
export HERENOW_STREAM_KEEP_MS=0 HERENOW_DRAIN_THREADS=2 HERENOW_SSE_PING_S=1 HERENOW_API_WWW=$HN_ROOT/api/www
hn_spawn collector env HERENOW_LOG_LEVEL=${HN_COLLECTOR_LOG_LEVEL:-info} "$HN_BIN/herenow-collector"
hn_wait_for 15 "the collector is ready on the cluster" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_start_api
hn_wait_for 15 "the api is ready on the cluster" curl -fsS "$HN_API_URL/readyz"
A=$HN_API_URL/api/visitor-tracking

now_ms() { echo $(($(date +%s%N) / 1000000)); }
cmetrics() { curl -fsS --max-time 5 "http://127.0.0.1:$ADMIN/metrics"; }
msum() { awk -v m="$1" '{ n = $1; sub(/\{.*/, "", n) } n == m { s += $2 } END { printf "%.0f\n", s }'; }
mval() { awk -v m="$1" '$1 == m { printf "%.0f\n", $2; f = 1 } END { if (!f) print 0 }'; }
accepted() { cmetrics | msum herenow_beacons_accepted_total; }

# ---- the SSE stream of widget A, open from here to the end -----------------------
ticket=$(curl -fsS -X POST -H "Authorization: Bearer $TOK" "$A/widgets/$WA/active-visitors/stream/ticket" |
    sed -n 's/.*"ticket":"\([^"]*\)".*/\1/p')
SSE=$HN_TMP/sse.txt
hn_spawn sse curl -sSN --max-time 600 "$A/widgets/$WA/active-visitors/stream?ticket=$ticket" -o "$SSE"
hn_wait_for 10 "the SSE stream of widget $WA sends its snapshot" grep -q '^event: snapshot' "$SSE"

# ---- the load -------------------------------------------------------------------------
# load_start P: hn-steady for both widgets, session ids P<a|b>-NNNNNNNN
load_start() {
    local w
    for w in a b; do
        local key=$KA
        [ "$w" = b ] && key=$KB
        hn_spawn "steady_$1$w" "$HN_BIN/hn-steady" --key "$key" --udp "127.0.0.1:$PORT" --http "127.0.0.1:$PORT" \
            --rate "$RATE" --duration 0 --udp-share 0.5 --prefix "$1$w" --out "$HN_TMP/steady_$1$w.out"
    done
}
load_stop() {
    local w rc pid
    for w in a b; do
        local -n p="HN_PID_steady_$1$w"
        pid=$p
        kill -TERM "$pid"
        rc=0
        wait "$pid" || rc=$?
        hn_assert_eq "hn-steady $1$w ended cleanly" 0 "$rc"
    done
}
sv() { awk -v k="$2" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$HN_TMP/steady_$1.out"; }
sent_now() { [ -s "$HN_TMP/steady_$1.out" ] && echo $(($(sv "$1" udp_sent) + $(sv "$1" http_sent))) || echo 0; }
sent_reached() { [ "$(sent_now "$1a")" -ge "$2" ] && [ "$(sent_now "$1b")" -ge "$2" ]; }
rows() { hn_psql "SELECT count(*) FROM widget_page_views WHERE session_id LIKE '$1a-%' OR session_id LIKE '$1b-%'"; }
rows_are() { [ "$(rows "$1")" = "$2" ]; }
dups() {
    hn_psql "SELECT count(*) FROM (SELECT 1 FROM widget_page_views WHERE session_id LIKE '$1a-%' OR session_id LIKE '$1b-%'
             GROUP BY widget_id, session_id, seq HAVING count(*) > 1) x"
}
# settle P ACC0: after the load: every accepted beacon of section P one row, once
settle() {
    local acc
    acc=$(($(accepted) - $2))
    hn_wait_for 60 "section $1: every accepted beacon ($acc) is one row in PostgreSQL" rows_are "$1" "$acc" &&
        hn_ok "section $1: $acc accepted, $acc rows"
    hn_assert_eq "section $1: no record twice" 0 "$(dups "$1")"
}
live_total() {
    curl -fsS -H "Authorization: Bearer $TOK" "$A/widgets/$1/active-visitors?limit=1" |
        sed -n 's/.*"total":\([0-9]*\).*/\1/p'
}

# ---- 1. the load alone --------------------------------------------------------------
acc0=$(accepted)
load_start s1
hn_wait_for 20 "section 1: 600 beacons sent per widget" sent_reached s1 600
load_stop s1
settle s1 "$acc0"
ta=$(live_total "$WA")
tb=$(live_total "$WB")
[ "${ta:-0}" -gt 0 ] && [ "${tb:-0}" -gt 0 ] && hn_ok "the live list of both widgets ($ta and $tb sessions)" ||
    hn_fail "live lists: '$ta' '$tb'"

# ---- 1b. replica reads (HERENOW_REDIS_READ_REPLICAS=on): the live list from replicas --------
API2=$(hn_free_port)
hn_spawn api2 env HERENOW_API_LISTEN="127.0.0.1:$API2" HERENOW_DRAIN=off HERENOW_RULES=off \
    HERENOW_REDIS_READ_REPLICAS=on "$HN_BIN/herenow-api"
hn_wait_for 15 "a second api, reading replicas, is ready" curl -fsS "http://127.0.0.1:$API2/readyz"
live_total2() {
    curl -fsS -H "Authorization: Bearer $TOK" "http://127.0.0.1:$API2/api/visitor-tracking/widgets/$1/active-visitors?limit=5" |
        sed -n 's/.*"total":\([0-9]*\).*/\1/p'
}
same_total() { [ "$(live_total2 "$1")" = "$(live_total "$1")" ]; }
hn_wait_for 10 "replica reads: widget $WA's live list as from its master" same_total "$WA"
hn_wait_for 10 "replica reads: widget $WB's live list as from its master" same_total "$WB"
rep_cmds() {
    local p n=0 r
    for p in "$(hn_cluster_replica_of "$MA")" "$(hn_cluster_replica_of "$MB")"; do
        r=$(curl -fsS "http://127.0.0.1:$API2/metrics" | mval "herenow_redis_node_commands_total{node=\"127.0.0.1:$p\"}")
        n=$((n + r))
    done
    echo "$n"
}
reads=$(rep_cmds)
[ "$reads" -gt 0 ] && hn_ok "replica reads: $reads commands went to the replicas of the widgets' masters" ||
    hn_fail "replica reads: no command reached a replica"
kill -TERM "$HN_PID_api2"
wait "$HN_PID_api2" || true

# ---- 2. 1,000 slots moved under load ------------------------------------------------
read -r SA LO HI FROM <<<"$("$T" range "$URL" "hn:live:{$WA}")"
first=$((SA - 500))
[ "$first" -ge "$LO" ] || first=$LO
[ $((first + 999)) -le "$HI" ] || first=$((HI - 999))
# to the third master: A and B stay on different masters
NB=$("$T" node-of "$URL" "hn:live:{$WB}")
TO=""
for s in 0 1 2; do
    m=$("$T" node-of "$URL" "$("$CTL" stream key --shard "$s")")
    [ "$m" != "$FROM" ] && [ "$m" != "$NB" ] && { TO=$m; break; }
done
ask0=$(cmetrics | mval 'herenow_redis_redirects_total{kind="ask"}')
moved0=$(cmetrics | mval 'herenow_redis_redirects_total{kind="moved"}')
conn0=$(cmetrics | mval 'herenow_redis_retries_total{reason="connection"}')
try0=$(cmetrics | mval 'herenow_redis_retries_total{reason="tryagain"}')
acc0=$(accepted)
load_start s2
hn_wait_for 20 "section 2: the load runs" sent_reached s2 300
# the live list, asked every 200 ms while the slots move
(while :; do
    c=$(curl -s -o "$HN_TMP/live.json" -w '%{http_code}' -H "Authorization: Bearer $TOK" "$A/widgets/$WA/active-visitors?limit=5")
    t=$(sed -n 's/.*"total":\([0-9]*\).*/\1/p' "$HN_TMP/live.json")
    echo "$c ${t:-0}"
    sleep 0.2
done) >"$HN_TMP/live_samples.txt" 2>/dev/null &
LIVE_PID=$!
move_out=$("$T" move "$URL" "$FROM" "$TO" "$first" 1000 "$SA" 1500 2>&1) || true
grep '^# ' <<<"$move_out" || true
grep -q '^ok slots moved' <<<"$move_out" && hn_ok "slots $first..$((first + 999)) (widget $WA's slot $SA) moved from $FROM to $TO under load" ||
    hn_fail "the move failed: $(tail -n 3 <<<"$move_out")"
kill "$LIVE_PID" 2>/dev/null || true
wait "$LIVE_PID" 2>/dev/null || true
sent_before_stop=$(sent_now s2a)
hn_wait_for 20 "section 2: the load runs on after the move" sent_reached s2 $((sent_before_stop + 300))
load_stop s2
settle s2 "$acc0"
ask=$(($(cmetrics | mval 'herenow_redis_redirects_total{kind="ask"}') - ask0))
moved=$(($(cmetrics | mval 'herenow_redis_redirects_total{kind="moved"}') - moved0))
# TRYAGAIN (the session-end script, three keys, on a slot half moved) sends
# that command again alone: no node connection is dropped for it (that sent
# the node's whole backlog again: doubled stream entries, MOVED storms).
# hn-steady ends no session, so here the TRYAGAINs counted are mostly the
# trimmer's (common/rcl.c); the guard bites when a worker meets one. `make
# bench-cluster`'s reshard, whose load ends sessions, shows the effect:
# 687–1,312 retried per command, 0 connections dropped, 0 doubled entries.
echo "# section 2: TRYAGAIN retried per command: $(($(cmetrics | mval 'herenow_redis_retries_total{reason="tryagain"}') - try0))"
hn_assert_eq "section 2: no node connection dropped for a TRYAGAIN" 0 \
    "$(grep -c 'event=redis_disconnected.*TRYAGAIN' "$HN_TMP/collector.log" || true)"
echo "# section 2: node connections lost during the move: $(($(cmetrics | mval 'herenow_redis_retries_total{reason="connection"}') - conn0))"
echo "# the collector followed $ask ASK and $moved MOVED redirects"
[ "$ask" -gt 0 ] && hn_ok "ASK seen by the collector ($ask)" || hn_fail "no ASK seen"
[ "$moved" -gt 0 ] && hn_ok "MOVED seen by the collector ($moved)" || hn_fail "no MOVED seen"
nsamples=$(wc -l <"$HN_TMP/live_samples.txt")
bad=$(awk '$1 != 200 || $2 == 0' "$HN_TMP/live_samples.txt" | wc -l)
[ "$nsamples" -gt 0 ] && [ "$bad" = 0 ] && hn_ok "the live list answered with sessions throughout the move ($nsamples samples)" ||
    hn_fail "the live list during the move: $bad of $nsamples samples bad: $(awk '$1 != 200 || $2 == 0' "$HN_TMP/live_samples.txt" | head -3 | tr '\n' ' ')"
hn_assert_eq "widget $WA's slot now on $TO" "${TO##*:}" "$(hn_cluster_master_of "hn:live:{$WA}")"

# ---- 3. a manual failover under load ----------------------------------------------------
MA=$(hn_cluster_master_of "hn:live:{$WA}")
RA=$(hn_cluster_replica_of "$MA")
is_master() { redis-cli -p "$1" role | head -n1 | grep -qx master; }
acc0=$(accepted)
load_start s3
hn_wait_for 20 "section 3: the load runs" sent_reached s3 300
hn_assert_eq "CLUSTER FAILOVER asked of $RA (the replica of widget $WA's master $MA)" OK "$(redis-cli -p "$RA" cluster failover)"
hn_wait_for 15 "the replica $RA is a master" is_master "$RA"
sent_before_stop=$(sent_now s3a)
hn_wait_for 20 "section 3: the load runs on after the failover" sent_reached s3 $((sent_before_stop + 300))
load_stop s3
settle s3 "$acc0"

# ---- 4. a master killed under load --------------------------------------------------------
MB=$(hn_cluster_master_of "hn:live:{$WB}")
RB=$(hn_cluster_replica_of "$MB")
pid=$(head -n1 "$HN_CLUSTER_DIR/node-$MB/redis.pid")
acc0=$(accepted)
load_start s4
hn_wait_for 20 "section 4: the load runs" sent_reached s4 300
grep -q redis "/proc/$pid/comm" && kill -9 "$pid"
t0=$(now_ms)
hn_wait_for 20 "the replica $RB of the killed master $MB is promoted" is_master "$RB"
echo "# replica promoted $(($(now_ms) - t0)) ms after the kill"
hn_wait_for 30 "the collector is ready again" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
sent_before_stop=$(sent_now s4b)
hn_wait_for 30 "section 4: the load runs on after the promotion" sent_reached s4 $((sent_before_stop + 300))
load_stop s4
acc=$(($(accepted) - acc0))
# what survived reaches PostgreSQL; what the dead master had not replicated
# does not (asynchronous replication): counted, not asserted to be 0
deadline=$(($(now_ms) + 30000))
while [ "$(rows s4)" != "$acc" ] && [ "$(now_ms)" -lt "$deadline" ]; do sleep 0.2; done
got=$(rows s4)
lost=$((acc - got))
echo "# section 4: $acc accepted, $got rows: $lost lost to the kill -9 of a master (asynchronous replication)"
[ "$lost" -ge 0 ] && hn_ok "section 4: no row that was not accepted" || hn_fail "more rows than accepted"
# the bound: what the dead master had not replicated. On loopback its replica
# lags by well under a millisecond (a tick or two of 600 beacons/s: a few
# records); far more lost would be herenow losing what it had not yet written
[ "$lost" -le 20 ] && hn_ok "section 4: at most what replication can lag by ($lost lost of $acc)" ||
    hn_fail "section 4: $lost of $acc lost: more than a replica's lag explains"
hn_assert_eq "section 4: no record twice" 0 "$(dups s4)"

# ---- 5. the SSE stream -------------------------------------------------------------------------
hn_alive "$HN_PID_sse" && hn_ok "the SSE stream opened before the move, failover and kill is still open" ||
    hn_fail "the SSE stream closed"
n0=$(grep -c '^event: ' "$SSE")
acc0=$(accepted)
load_start s5
hn_wait_for 20 "section 5: the load runs" sent_reached s5 100
load_stop s5
more() { [ "$(grep -c '^event: ' "$SSE")" -gt "$n0" ]; }
hn_wait_for 10 "the SSE stream still gets events" more

# ---- 6. chat downlinks -------------------------------------------------------------------------
"$CTL" widget set --widget "$WA" --chat on >/dev/null
"$CTL" widget set --widget "$WB" --chat on >/dev/null
dl_status() { curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$PORT/v?k=$1&s=probesession01"; }
chat_ready() { [ "$(dl_status "$KA")" = 200 ] && [ "$(dl_status "$KB")" = 200 ]; }
hn_wait_for 10 "the collector sees chat on for both widgets" chat_ready
hn_spawn dla curl -sN "http://127.0.0.1:$PORT/v?k=$KA&s=clusterchata01" -o "$HN_TMP/dla.log"
hn_spawn dlb curl -sN "http://127.0.0.1:$PORT/v?k=$KB&s=clusterchatb01" -o "$HN_TMP/dlb.log"
dl_ready() { grep -q '^: ready' "$HN_TMP/$1.log"; }
hn_wait_for 10 "widget $WA's downlink started" dl_ready dla
hn_wait_for 10 "widget $WB's downlink started" dl_ready dlb
# an entry as the api writes it, on the stream's master (-c: after a
# failover a node may still name the old one for a moment; follow MOVED)
xadd() {
    redis-cli -c -p "$(hn_cluster_master_of "hn:chat:{$1}")" XADD "hn:chat:{$1}" '*' s "$2" e message c 0b8e2d6c-5a39-4f55-9d2b-9e0f3c1f7a11 \
        m "$(cat /proc/sys/kernel/random/uuid)" a Ana x "$3" t "$(now_ms)" | grep -q -- '-'
}
got() { grep -c "\"text\":\"$2\"" "$HN_TMP/$1.log" | grep -qx 1; }
xadd "$WA" clusterchata01 hello-a
xadd "$WB" clusterchatb01 hello-b
hn_wait_for 5 "a chat entry of widget $WA (master $(hn_cluster_master_of "hn:chat:{$WA}")) reaches its visitor" got dla hello-a
hn_wait_for 5 "a chat entry of widget $WB (master $(hn_cluster_master_of "hn:chat:{$WB}")) reaches its visitor" got dlb hello-b
# widget A's master has a replica (its old master, since section 3; B's died in section 4)
MA=$(hn_cluster_master_of "hn:chat:{$WA}")
RA=$(hn_cluster_replica_of "$MA")
hn_assert_eq "CLUSTER FAILOVER of widget $WA's master ($MA → $RA) under open downlinks" OK "$(redis-cli -p "$RA" cluster failover)"
hn_wait_for 15 "the replica $RA is a master" is_master "$RA"
xadd "$WA" clusterchata01 after-failover
hn_wait_for 10 "after the failover the next entry reaches widget $WA's visitor, once" got dla after-failover
hn_assert_eq "widget $WA's downlink got its two entries and nothing else" 2 "$(grep -c '^id: ' "$HN_TMP/dla.log")"

# ---- 7. a slot without a master ------------------------------------------------------------
# The slot of widget A's stream shard (widget id mod 3) deleted on every node still alive (its master first,
# so that no gossip of its claim comes after), with cluster-require-full-coverage
# off: the other slots are served, maps name no master for this one, and a
# command for it gets "CLUSTERDOWN Hash slot not served". Widget A's records
# must wait, in the spool, not count as failed commands and go: after
# CLUSTER ADDSLOTS on the same master (the keys never left it) every accepted
# beacon is one row. (With full coverage on, the default, every node answers
# CLUSTERDOWN and the collector spools for that reason alone.)
SKEY=$("$CTL" stream key --shard $((WA % 3)))
MS=$(hn_cluster_master_of "$SKEY")
SLOT=$(redis-cli -p "$MS" cluster keyslot "$SKEY")
alive_nodes() { local p; for p in $HN_CLUSTER_PORTS; do [ "$(redis-cli -p "$p" ping 2>/dev/null)" = PONG ] && echo "$p"; done; }
spooling() { [ "$(cmetrics | mval herenow_spool_active)" -gt 0 ]; }
unassigned_everywhere() {
    local p
    for p in $(alive_nodes); do
        redis-cli -p "$p" cluster nodes | awk -v s="$SLOT" '
            { for (i = 9; i <= NF; i++) { n = split($i, r, "-"); if (r[1] !~ /^[0-9]+$/) continue
                                          if (s >= r[1] + 0 && s <= r[n] + 0) f = 1 } }
            END { exit !f }' && return 1
    done
    return 0
}
coverage() {
    local p
    for p in $(alive_nodes); do
        [ "$(redis-cli -p "$p" config set cluster-require-full-coverage "$1")" = OK ] || return 1
    done
}
hn_assert_eq "cluster-require-full-coverage off on every node" 0 "$(coverage no; echo $?)"
acc0=$(accepted)
load_start s7
hn_wait_for 20 "section 7: the load runs" sent_reached s7 300
hn_assert_eq "CLUSTER DELSLOTS $SLOT (widget $WA's stream shard $SKEY) on its master $MS" OK "$(redis-cli -p "$MS" cluster delslots "$SLOT")"
for p in $(alive_nodes); do
    [ "$p" = "$MS" ] || redis-cli -p "$p" cluster delslots "$SLOT" >/dev/null
done
hn_wait_for 10 "slot $SLOT has no master on any node" unassigned_everywhere
hn_wait_for 20 "the collector spools while slot $SLOT has no master" spooling
conns_down() { [ "$(cmetrics | mval herenow_redis_connections_up)" = 0 ]; }
# each worker meets the new map on its own next poll (50 ms): the first may spool before the other
hn_wait_for 10 "… and every worker counts Redis as down" conns_down
sent_before_stop=$(sent_now s7a)
hn_wait_for 20 "section 7: the load runs on while the slot has no master" sent_reached s7 $((sent_before_stop + 300))
hn_assert_eq "CLUSTER ADDSLOTS $SLOT on $MS again" OK "$(redis-cli -p "$MS" cluster addslots "$SLOT")"
hn_wait_for 30 "the collector is ready again" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
not_spooling() { ! spooling; }
hn_wait_for 30 "the collector's spool is replayed" not_spooling
load_stop s7
settle s7 "$acc0"
hn_assert_eq "cluster-require-full-coverage on again" 0 "$(coverage yes; echo $?)"

# ---- 8. TRYAGAIN on a session's end --------------------------------------------------------
# Widget A's slot MIGRATING to another master with only its live set moved:
# the end script (hn:live, hn:ended, the session hash) finds some of its keys
# and not others on the source and gets TRYAGAIN until the move ends. The
# collector sends that command again alone (with backoff) and drops no
# connection (it used to drop the node's connection and send its whole
# backlog again, for as long as the move lasted).
hn_wait_for 30 "the collector is ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
SRC=$(hn_cluster_master_of "hn:live:{$WA}")
SLOT_A=$(redis-cli -p "$SRC" cluster keyslot "hn:live:{$WA}")
DST=""
for p in $(alive_nodes); do
    [ "$p" != "$SRC" ] && redis-cli -p "$p" role | head -n1 | grep -qx master && { DST=$p; break; }
done
SESS="hn:sess:{$WA}:tryagain0001"
"$CTL" send --key "$KA" --to "127.0.0.1:$PORT" --session tryagain0001 --seq 1 --url https://a.example/t >/dev/null
sess_there() { [ "$(redis-cli -p "$SRC" exists "$SESS")" = 1 ]; }
hn_wait_for 10 "session tryagain0001 of widget $WA is live on $SRC" sess_there
SRC_ID=$(redis-cli -p "$SRC" cluster myid)
DST_ID=$(redis-cli -p "$DST" cluster myid)
hn_assert_eq "slot $SLOT_A IMPORTING on $DST" OK "$(redis-cli -p "$DST" cluster setslot "$SLOT_A" importing "$SRC_ID")"
hn_assert_eq "slot $SLOT_A MIGRATING on $SRC" OK "$(redis-cli -p "$SRC" cluster setslot "$SLOT_A" migrating "$DST_ID")"
hn_assert_eq "hn:live:{$WA} alone moved to $DST" OK "$(redis-cli -p "$SRC" migrate 127.0.0.1 "$DST" "hn:live:{$WA}" 0 5000)"
tryagain() { cmetrics | mval 'herenow_redis_retries_total{reason="tryagain"}'; }
try0=$(tryagain)
"$CTL" send --key "$KA" --to "127.0.0.1:$PORT" --session tryagain0001 --seq 2 --type end >/dev/null
grew() { [ "$(tryagain)" -ge $((try0 + 3)) ]; }
hn_wait_for 10 "TRYAGAIN met on the half-moved slot (the end; the counter is the process's, the trimmer's too)" grew
# the rest of the slot, then its new owner
while :; do
    keys=$(redis-cli -p "$SRC" cluster getkeysinslot "$SLOT_A" 100)
    [ -n "$keys" ] || break
    # shellcheck disable=SC2086
    redis-cli -p "$SRC" migrate 127.0.0.1 "$DST" "" 0 5000 keys $keys >/dev/null
done
for p in $(alive_nodes); do
    redis-cli -p "$p" role | head -n1 | grep -qx master && redis-cli -p "$p" cluster setslot "$SLOT_A" node "$DST_ID" >/dev/null
done
gone() { [ "$(redis-cli -p "$DST" hget "$SESS" status)" = gone ]; }
hn_wait_for 10 "once the slot moved, the end reached $DST: session tryagain0001 is gone" gone
echo "# section 8: the end was sent again $(($(tryagain) - try0)) times"
hn_assert_eq "no node connection dropped for a TRYAGAIN" 0 \
    "$(grep -c 'event=redis_disconnected.*TRYAGAIN' "$HN_TMP/collector.log" || true)"

hn_done
