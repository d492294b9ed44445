#!/usr/bin/env bash
# test_cluster_api.sh: herenow-api and herenowctl on a real Redis Cluster of
# 3 masters + 3 replicas (common/rcl.c under every slow path), with
# HERENOW_STREAM_SHARDS=3 and widgets whose {w} live on different masters:
#
#   1. herenowctl widget add / list / set / sync (WATCH … MULTI … EXEC on
#      hn:widgets) on the cluster
#   2. records XADDed into the stream shards reach PostgreSQL exactly once
#      (the drain's XREADGROUP over shards on several masters); records under
#      legacy names (untagged hn:stream:<n>) on every master too: the drain's
#      SCAN walks each master, and the keys are deleted once drained
#   3. the live list API and the SSE live stream (snapshot, and an enter that
#      can only come from the hub's XREAD over the shards) for each widget
#   4. a ban through the API: hn:bans:{w} holds it, and hn:bans:widgets and
#      hn:bans:version are bumped only after the set's EXEC ran (MONITOR on
#      the masters, one clock)
#   5. herenowctl spool replay of a collector's spool into the cluster: the
#      sessions are live and the drain writes its records
#   6. a collector on the cluster: its housekeeping (widgets, bans, the trim
#      script loaded on each master that answers NOSCRIPT) through hn_rcl
#   7. /metrics: herenow_redis_node_commands_total for the three masters
#
# §2–§4 write records and presence the way the collector does
# (docs/PROTOCOL.md §9) with redis-cli -c, so that they test the api alone;
# the spool of §5 comes from a collector on a standalone Redis.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

CTL="$HN_BIN/herenowctl"
hn_start_stores                       # the standalone Redis serves the collector of §5
SA_URL=$HERENOW_REDIS_URL
SA_PORT=$HN_REDIS_PORT
hn_start_redis_cluster
URL=$HERENOW_REDIS_URL
read -r -a PORTS <<<"$HN_CLUSTER_PORTS"
MASTERS=("${PORTS[@]:0:3}")
export HERENOW_STREAM_SHARDS=3
NSH=3
P0=${MASTERS[0]}
rc_() { redis-cli -c -p "$P0" "$@"; }            # follows MOVED
# the stream shard of a widget and its key (proto/keys.h hn_key_stream)
shard_of() { echo $(($1 % NSH)); }
SKEYS=()
for s in $(seq 0 $((NSH - 1))); do SKEYS+=("$("$CTL" stream key --shard "$s")"); done
skey() { echo "${SKEYS[$1]}"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- 1. widgets on the cluster ----------------------------------------------------------------
declare -A BY_MASTER=()
W=() K=()
for i in $(seq 1 20); do
    read -r id key <<<"$(hn_widget_add --name "Cluster $i" --domain "c$i.example.com")"
    m=$(hn_cluster_master_of "hn:live:{$id}")
    if [ -z "${BY_MASTER[$m]:-}" ]; then
        BY_MASTER[$m]=$id
        W+=("$id") K+=("$key")
    fi
    [ "${#W[@]}" -lt 3 ] || break
done
hn_assert_eq "three widgets, one per master" 3 "${#W[@]}"
W1=${W[0]} W2=${W[1]} W3=${W[2]} K1=${K[0]} K2=${K[1]} K3=${K[2]}
echo "# widgets $W1 $W2 $W3 on masters $(for w in "${W[@]}"; do hn_cluster_master_of "hn:live:{$w}"; done | tr '\n' ' ')shards $(shard_of "$W1") $(shard_of "$W2") $(shard_of "$W3")"
hn_assert_cmd "the widgets' records go to more than one shard" \
    test "$(printf '%s\n' "$(shard_of "$W1")" "$(shard_of "$W2")" "$(shard_of "$W3")" | sort -u | wc -l)" -ge 2
for s in $(seq 0 $((NSH - 1))); do echo "# $(skey "$s") on $(hn_cluster_master_of "$(skey "$s")")"; done
hn_assert_eq "widget add wrote hn:widgets on the cluster" "$K1 $K2 $K3" \
    "$(for k in "$K1" "$K2" "$K3"; do rc_ HEXISTS hn:widgets "$k" | grep -q 1 && printf '%s ' "$k"; done | sed 's/ $//')"
hn_assert_cmd "widget list shows them" bash -c "'$CTL' widget list | grep -q '$K1' && '$CTL' widget list | grep -q '$K3'"
"$CTL" widget set --widget "$W2" --chat on >/dev/null
hn_assert_cmd "widget set rewrote the widget's entry in hn:widgets" bash -c "redis-cli -c -p $P0 HGET hn:widgets '$K2' | grep -q ."
rc_ HDEL hn:widgets "$K3" >/dev/null
rc_ HSET hn:widgets stale0000000000x junk >/dev/null
out=$("$CTL" widget sync)
echo "# $out"
hn_assert_eq "widget sync (WATCH … EXEC on the cluster) put back the missing one" 1 "$(rc_ HEXISTS hn:widgets "$K3")"
hn_assert_eq "… and removed the stray one" 0 "$(rc_ HEXISTS hn:widgets stale0000000000x)"
out2=$("$CTL" widget sync)
hn_assert_cmd "a second sync has nothing to do ($out2)" grep -q '(0 added, 0 updated, 0 removed)' <<<"$out2"

# ---- the api, with the drain ------------------------------------------------------------------
TOK=$("$CTL" token create --all 2>/dev/null)
export HERENOW_DRAIN=on HERENOW_DRAIN_BLOCK_MS=100 HERENOW_DRAIN_THREADS=2 HERENOW_STREAM_KEEP_MS=0 \
    HERENOW_SSE_RECONCILE_MS=600000 HERENOW_LIVE_WINDOW_S=600 HERENOW_TOKEN_REFRESH_MS=200
hn_start_api
hn_wait_for 10 "api ready" curl -fsS "$HN_API_URL/readyz"
A=$HN_API_URL/api/visitor-tracking
get() { ST=$(curl -s -o "$HN_TMP/body" -w '%{http_code}' -H "Authorization: Bearer $TOK" "$A$1"); }
j() { jq -r "$1" "$HN_TMP/body"; }

# ---- 2. records into the shards: PostgreSQL has each once ------------------------------------
fs() { printf "\\x$(printf %02x $((0xa0 + ${#1})))%s" "$1"; }          # msgpack fixstr (< 32 bytes)
hexb() { printf '%0*x' "$2" "$1" | sed 's/../\\x&/g'; }
rec() {   # rec WID KEY SID URL: one page-view record, as the collector writes it (a batch of one)
    printf '\x91\x8a\xa2rv\x01\xa2id\xc4\x10'
    head -c 16 /dev/urandom
    printf "\\xa2rt\\xcf$(hexb "$(($(date +%s%N) / 1000))" 16)\\xa1w\\xce$(hexb "$1" 8)"
    printf '\xa2tr\x01\xa1t\xa2pv\xa1k'; fs "$2"
    printf '\xa1s'; fs "$3"
    printf '\xa1q\x01\xa1u'; fs "$4"
}
xadd() { rec "$@" >"$HN_TMP/r.mp"; redis-cli -c -p "$P0" -x XADD "$(skey "$(shard_of "$1")")" '*' r <"$HN_TMP/r.mp" >/dev/null; }
rows() { hn_psql "SELECT count(*) FROM widget_page_views"; }
rows_are() { [ "$(rows)" = "$1" ]; }
none_pending() {
    local s
    for s in $(seq 0 $((NSH - 1))); do [ "$(rc_ XPENDING "$(skey "$s")" drain | head -1)" = 0 ] || return 1; done
}
groups_made() {
    local s
    for s in $(seq 0 $((NSH - 1))); do rc_ XINFO GROUPS "$(skey "$s")" | grep -qx drain || return 1; done
}
hn_wait_for 10 "the drain made its group on every shard" groups_made
for i in $(seq -w 1 10); do
    xadd "$W1" "$K1" "drA$i" "https://c.example/a$i"
    xadd "$W2" "$K2" "drB$i" "https://c.example/b$i"
    xadd "$W3" "$K3" "drC$i" "https://c.example/c$i"
done
hn_wait_for 20 "30 page views in PostgreSQL" rows_are 30
hn_wait_for 10 "nothing pending on any shard" none_pending
hn_assert_eq "each record once: 30 rows, 30 event ids" "30 30" "$(hn_psql "SELECT count(*) || ' ' || count(DISTINCT event_id) FROM widget_page_views")"
hn_assert_eq "10 per widget" "$W1:10 $W2:10 $W3:10" \
    "$(hn_psql "SELECT string_agg(widget_id || ':' || n, ' ' ORDER BY widget_id) FROM (SELECT widget_id, count(*) n FROM widget_page_views GROUP BY 1) x")"
hn_assert_eq "one session per visit" 30 "$(hn_psql "SELECT count(*) FROM widget_visitor_sessions")"

# legacy names: hn:stream:0 … 5 (no hash tag) as an older N wrote them, spread over the masters
LEG=()
for n in 0 1 2 3 4 5; do LEG+=("hn:stream:$n"); done
hn_assert_eq "the legacy keys live on the three masters" 3 \
    "$(for k in "${LEG[@]}"; do hn_cluster_master_of "$k"; done | sort -u | wc -l)"
for n in 0 1 2 3 4 5; do
    for i in 1 2; do
        rec "$W1" "$K1" "lg${n}x$i" "https://c.example/legacy$n" >"$HN_TMP/r.mp"
        redis-cli -c -p "$P0" -x XADD "hn:stream:$n" '*' r <"$HN_TMP/r.mp" >/dev/null
    done
done
hn_wait_for 20 "the 12 records under legacy names in PostgreSQL" rows_are 42
legacy_gone() { local k; for k in "${LEG[@]}"; do [ "$(rc_ EXISTS "$k")" = 0 ] || return 1; done; }
hn_wait_for 15 "every legacy key deleted once drained, on every master" legacy_gone
hn_assert_eq "each once: 42 rows, 42 event ids" "42 42" "$(hn_psql "SELECT count(*) || ' ' || count(DISTINCT event_id) FROM widget_page_views")"
hn_assert_eq "the current shards are kept" "$NSH" "$(for k in "${SKEYS[@]}"; do rc_ EXISTS "$k"; done | grep -c 1)"

# ---- 3. the live list and the live stream ------------------------------------------------------
live_add() {   # live_add WID SID URL: the session hash and the live set, as the collector keeps them
    local t
    t=$(now_ms)
    rc_ HSET "hn:sess:{$1}:$2" status active started "$t" last_seen "$t" q 1 url "$3" landing "$3" pageviews 1 >/dev/null
    rc_ ZADD "hn:live:{$1}" "$t" "$2" >/dev/null
}
live_add "$W1" liveA000001 https://c.example/la
live_add "$W2" liveB000001 https://c.example/lb
live_add "$W3" liveC000001 https://c.example/lc
for w in "$W1" "$W2" "$W3"; do
    get "/widgets/$w/active-visitors"
    case $w in "$W1") s=liveA000001 ;; "$W2") s=liveB000001 ;; *) s=liveC000001 ;; esac
    hn_assert_eq "active-visitors of widget $w (on $(hn_cluster_master_of "hn:live:{$w}")): its session" "200 1 $s" \
        "$ST $(j .total) $(j '[.visitors[].session_id] | join(",")')"
done
PIDS=()
for n in 1 2; do
    w=${W[$((n - 1))]}
    curl -sN -H "Authorization: Bearer $TOK" "$A/widgets/$w/active-visitors/stream" >"$HN_TMP/s$n.sse" 2>/dev/null &
    PIDS+=($!)
done
has() { grep -q -- "$2" "$1"; }
hn_wait_for 5 "stream of widget $W1: a snapshot with its session" has "$HN_TMP/s1.sse" '"session_id":"liveA000001"'
hn_wait_for 5 "stream of widget $W2: a snapshot with its session" has "$HN_TMP/s2.sse" '"session_id":"liveB000001"'
# A new session with a record in the shard: only the hub's XREAD of the shards
# sees it (reconcile runs every 10 minutes here).
live_add "$W1" liveA000002 https://c.example/la2
live_add "$W2" liveB000002 https://c.example/lb2
xadd "$W1" "$K1" liveA000002 https://c.example/la2
xadd "$W2" "$K2" liveB000002 https://c.example/lb2
hn_wait_for 5 "stream of widget $W1: enter of the new session" has "$HN_TMP/s1.sse" 'liveA000002'
hn_wait_for 5 "stream of widget $W2: enter of the new session" has "$HN_TMP/s2.sse" 'liveB000002'
hn_assert_cmd "… as an enter event" bash -c "grep -B2 liveB000002 '$HN_TMP/s2.sse' | grep -q '^event: enter'"
hn_assert_cmd "no widget's stream shows the other's sessions" bash -c "! grep -q liveB '$HN_TMP/s1.sse' && ! grep -q liveA '$HN_TMP/s2.sse'"
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
hn_wait_for 20 "the two new records in PostgreSQL too" rows_are 44

# ---- 4. a ban: the set, then the counters -------------------------------------------------------
BK=hn:bans:{$W1}
MB=$(hn_cluster_master_of "$BK")
MV=$(hn_cluster_master_of hn:bans:version)
MW=$(hn_cluster_master_of hn:bans:widgets)
echo "# $BK on $MB, hn:bans:version on $MV, hn:bans:widgets on $MW"
MON=()
for p in $(printf '%s\n' "$MB" "$MV" "$MW" | sort -u); do
    redis-cli -p "$p" MONITOR >"$HN_TMP/mon.$p" 2>/dev/null &
    MON+=($!)
    hn_wait_for 5 "MONITOR on $p" bash -c "redis-cli -p $p PING >/dev/null; [ -s '$HN_TMP/mon.$p' ]"
done
v0=$(rc_ GET hn:bans:version)
code=$(curl -s -o "$HN_TMP/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOK" \
    -H 'Content-Type: application/json' -d '{"email":"spam@example.com","block_tracking":true,"reason":"cluster"}' "$A/widgets/$W1/bans")
hn_assert_eq "POST …/bans: 201" 201 "$code"
hn_assert_cmd "hn:bans:{$W1} holds the ban" bash -c "redis-cli -c -p $P0 SMEMBERS '$BK' | grep -q 'spam@example.com'"
hn_assert_eq "hn:bans:version bumped once" $((${v0:-0} + 1)) "$(rc_ GET hn:bans:version)"
hn_assert_cmd "hn:bans:widgets counts the widget" bash -c "[ \"\$(redis-cli -c -p $P0 HGET hn:bans:widgets $W1)\" -ge 1 ]"
hn_wait_for 5 "MONITOR saw the INCR" grep -q '"INCR" "hn:bans:version"' "$HN_TMP/mon.$MV"
for p in "${MON[@]}"; do kill "$p" 2>/dev/null || true; done
ts() { grep -F -- "$2" "$HN_TMP/mon.$1" | tail -1 | awk '{ print $1 }'; }
t_set=$(ts "$MB" "\"SADD\" \"$BK\"") t_w=$(ts "$MW" '"HINCRBY" "hn:bans:widgets"') t_v=$(ts "$MV" '"INCR" "hn:bans:version"')
echo "# SADD at $t_set, HINCRBY at $t_w, INCR at $t_v"
hn_assert_cmd "the set was written before hn:bans:widgets was bumped" \
    awk -v a="$t_set" -v b="$t_w" 'BEGIN { exit !(a != "" && b != "" && a < b) }'
hn_assert_cmd "… and before hn:bans:version was" \
    awk -v a="$t_set" -v b="$t_v" 'BEGIN { exit !(a != "" && b != "" && a < b) }'

# ---- 5. herenowctl spool replay into the cluster ------------------------------------------------
UDP=$(hn_free_port)
ADMIN=$(hn_free_port)
SPOOL=$HN_TMP/spool5
mkdir -p "$SPOOL"
HERENOW_REDIS_URL=$SA_URL "$CTL" widget sync >/dev/null
cmetric() { curl -fsS "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" '$1 == m { v = $2 } END { printf "%.0f\n", v + 0 }'; }
hn_spawn collector env HERENOW_REDIS_URL="$SA_URL" HERENOW_SPOOL_DIR="$SPOOL" HERENOW_UDP_LISTEN="127.0.0.1:$UDP" \
    HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN="127.0.0.1:$ADMIN" HERENOW_THREADS=1 "$HN_BIN/herenow-collector"
CPID=$HN_PID_collector
hn_wait_for 10 "collector (standalone Redis) ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
"$HN_ROOT/scripts/redis.sh" stop "$HN_TMP/redis" >/dev/null
hn_wait_for 10 "the collector sees its Redis gone" bash -c "[ \"\$(curl -fsS http://127.0.0.1:$ADMIN/metrics | awk '\$1 == \"herenow_redis_connections_up\" { print \$2 }')\" = 0 ]"
"$CTL" send --to "127.0.0.1:$UDP" --key "$K1" --session spoolW1s001 --type pv --count 5 >/dev/null
"$CTL" send --to "127.0.0.1:$UDP" --key "$K2" --session spoolW2s001 --type pv --count 5 >/dev/null
hn_wait_for 10 "10 records spooled" bash -c "[ \$(curl -fsS http://127.0.0.1:$ADMIN/metrics | awk '\$1 == \"herenow_spool_written_records_total\" { print \$2 }') -ge 10 ]"
hn_stop "$CPID" 20 || true
rc=0
HERENOW_SPOOL_DIR=$SPOOL "$CTL" spool replay >"$HN_TMP/replay.out" 2>&1 || rc=$?
sed 's/^/# /' "$HN_TMP/replay.out"
hn_assert_eq "spool replay into the cluster: exit 0" 0 "$rc"
hn_assert_cmd "… every entry taken, no error reply" bash -c "grep -q 'error_replies=0' '$HN_TMP/replay.out' && ! grep -q 'error reply' '$HN_TMP/replay.out'"
hn_assert_cmd "the spooled sessions are live on their masters" bash -c \
    "[ -n \"\$(redis-cli -c -p $P0 ZSCORE 'hn:live:{$W1}' spoolW1s001)\" ] && [ -n \"\$(redis-cli -c -p $P0 ZSCORE 'hn:live:{$W2}' spoolW2s001)\" ]"
hn_assert_eq "… with their page views counted" "5 5" \
    "$(rc_ HGET "hn:sess:{$W1}:spoolW1s001" pageviews) $(rc_ HGET "hn:sess:{$W2}:spoolW2s001" pageviews)"
hn_wait_for 20 "the drain wrote the replayed records" rows_are 54
hn_assert_eq "each once" "54 54" "$(hn_psql "SELECT count(*) || ' ' || count(DISTINCT event_id) FROM widget_page_views")"

# ---- 6. a collector on the cluster: widgets, bans, the trim ------------------------------------
UDP=$(hn_free_port)
ADMIN=$(hn_free_port)
hn_spawn collector2 env HERENOW_SPOOL_DIR="$HN_TMP/spool6" HERENOW_UDP_LISTEN="127.0.0.1:$UDP" HERENOW_HTTP_LISTEN= \
    HERENOW_ADMIN_LISTEN="127.0.0.1:$ADMIN" HERENOW_THREADS=1 HERENOW_LIVE_WINDOW_S=3 HERENOW_ACTIVE_S=2 HERENOW_TRIM_INTERVAL_MS=300 \
    HERENOW_WIDGET_REFRESH_MS=300 "$HN_BIN/herenow-collector"
hn_wait_for 15 "collector on the cluster ready" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_assert_eq "it read hn:widgets from the cluster" "$(rc_ HLEN hn:widgets)" "$(cmetric herenow_widgets)"
"$CTL" send --to "127.0.0.1:$UDP" --key "$K1" --session colW1s00001 --type pv >/dev/null
"$CTL" send --to "127.0.0.1:$UDP" --key "$K2" --session colW2s00001 --type pv >/dev/null
"$CTL" send --to "127.0.0.1:$UDP" --key "$K3" --session colW3s00001 --type pv >/dev/null
SESS=("$W1 colW1s00001" "$W2 colW2s00001" "$W3 colW3s00001")
all_live() { local x; for x in "${SESS[@]}"; do set -- $x; [ -n "$(rc_ ZSCORE "hn:live:{$1}" "$2")" ] || return 1; done; }
all_gone() {
    local x
    for x in "${SESS[@]}"; do
        set -- $x
        [ -z "$(rc_ ZSCORE "hn:live:{$1}" "$2")" ] && [ "$(rc_ EXISTS "hn:sess:{$1}:$2")" = 0 ] || return 1
    done
}
hn_wait_for 10 "its sessions are live, one widget per master" all_live
hn_wait_for 20 "and drained" rows_are 57
banned() { [ "$(cmetric 'herenow_beacons_dropped_total{transport="udp",reason="banned"}')" -ge 1 ]; }
"$CTL" send --to "127.0.0.1:$UDP" --key "$K1" --session colBAN00001 --type id --email SPAM@example.com >/dev/null
hn_wait_for 10 "the ban of §4 (read from the cluster) drops a beacon identifying with its email" banned
hn_assert_eq "… and its session is not live" "" "$(rc_ ZSCORE "hn:live:{$W1}" colBAN00001)"
hn_assert_eq "no bans refresh failed" 0 "$(cmetric herenow_bans_refresh_errors_total)"
hn_wait_for 15 "the trim removed the quiet sessions (hash and live entry) on every master" all_gone
hn_assert_cmd "the trim script was loaded on the masters that lacked it (NOSCRIPT ≥ 2)" \
    test "$(cmetric herenow_redis_noscript_total)" -ge 2
hn_assert_eq "no trim failed" 0 "$(grep -c 'event=trim_failed' "$HN_TMP/collector2.log" || true)"
hn_assert_cmd "collector /metrics: the cluster's per-node counters" bash -c \
    "curl -fsS http://127.0.0.1:$ADMIN/metrics | grep -q '^herenow_redis_node_commands_total{node='"
rc=0
hn_stop "$HN_PID_collector2" 20 || rc=$?
hn_assert_eq "collector exits 0 on SIGTERM" 0 "$rc"

# ---- 7. /metrics ------------------------------------------------------------------------------------
M=$(curl -fsS "$HN_API_URL/metrics")
for p in "${MASTERS[@]}"; do
    hn_assert_cmd "api /metrics: herenow_redis_node_commands_total for master $p" \
        awk -v want="herenow_redis_node_commands_total{node=\"127.0.0.1:$p\"}" '$1 == want && $2 > 0 { f = 1 } END { exit !f }' <<<"$M"
done
hn_assert_cmd "api /metrics: the redirect counters" grep -q '^herenow_redis_redirects_total{kind="moved"}' <<<"$M"
hn_promtool "promtool check metrics accepts the api's /metrics on a cluster" "$HN_API_URL/metrics"
rc=0
hn_stop "$HN_PID_api" || rc=$?
hn_assert_eq "api exits 0 on SIGTERM" 0 "$rc"
hn_done
