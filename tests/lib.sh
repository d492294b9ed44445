# tests/lib.sh: sourced by every integration test (bash; `set -euo pipefail` safe).
#
#   source "$(dirname "$0")/../lib.sh"
#   hn_start_redis; hn_start_pg
#   hn_spawn collector "$HN_BIN/herenow-collector"
#   hn_wait_for 5 "collector answers /livez" curl -fsS "http://127.0.0.1:$port/livez"
#   hn_start_api; curl -H "Authorization: Bearer $tok" "$HN_API_URL/api/..."
#   hn_assert_eq "one widget" 1 "$(hn_psql 'SELECT count(*) FROM widget_configs')"
#   hn_done
#
# On source: a private temp dir HN_TMP, and an EXIT trap (hn_cleanup) that
# stops everything started here (spawned processes by pid, servers through
# their pidfiles), prints the logs of a failed test, removes HN_TMP (kept when
# HN_KEEP_TMP=1) and prints the final line "N passed, M failed". A script that
# exits without hn_done (set -e, a timeout of hn_wait_for) gets one more
# failure for that, so a test can never end looking green by accident.
#
# Assertions print one line each, "ok - ..." or "not ok - ...", and always
# return 0 (set -e does not end the test on a failed assertion: the rest still
# runs and counts). hn_wait_for returns 1 on timeout, after counting the
# failure: under set -e the test ends there, as nothing after it would mean
# anything.
#
# Call hn_spawn and hn_start_* in the test's own shell, not in $(...) or a
# pipeline: what they register lives in shell variables.

HN_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HN_BIN=${HN_BIN:-build/release}
case "$HN_BIN" in /*) ;; *) HN_BIN="$PWD/$HN_BIN" ;; esac
[ -d "$HN_BIN" ] || HN_BIN="$HN_ROOT/${HN_BIN#"$PWD"/}"
export HN_ROOT HN_BIN

HN_TMP=$(mktemp -d "${TMPDIR:-/tmp}/herenow-test.XXXXXX")
# postgres (scripts/pg.sh runs it as that user) must reach $HN_TMP/pg.
chmod 0755 "$HN_TMP"
export HN_TMP
# The collector's spool (issue 6) goes to the test's own dir, never the repo's var/.
export HERENOW_SPOOL_DIR=${HERENOW_SPOOL_DIR:-$HN_TMP/spool}

HN_PASSED=0
HN_FAILED=0
HN_DONE=0
HN_PIDS=()           # spawned with hn_spawn
HN_REDIS_DIRS=()     # started with hn_start_redis
HN_CLUSTER_DIRS=()   # started with hn_start_redis_cluster
HN_PG_DIRS=()        # started with hn_start_pg
HN_LOGS=()           # $HN_TMP/NAME.log of spawned processes

# ---- results --------------------------------------------------------------

hn_ok() {
    HN_PASSED=$((HN_PASSED + 1))
    echo "ok - $1"
}

hn_fail() {
    HN_FAILED=$((HN_FAILED + 1))
    echo "not ok - $1"
}

# One line even when a value spans several.
_hn_oneline() {
    local s=$1
    s=${s//$'\r'/\\r}
    printf '%s' "${s//$'\n'/\\n}"
}

# hn_promtool DESC URL: the /metrics at URL passes Prometheus's own linter
# (`promtool check metrics`: HELP and TYPE for every family, base units,
# counters ending in _total, well-formed histograms).
hn_promtool() {
    local desc=$1 url=$2 f=$HN_TMP/promtool.$RANDOM
    if ! curl -fsS "$url" >"$f"; then
        hn_fail "$desc (could not read $url)"
        return
    fi
    hn_assert_cmd "$desc" bash -c "promtool check metrics < '$f'"
}

hn_assert_eq() {
    local desc=$1 want=$2 got=$3
    if [ "$want" == "$got" ]; then
        hn_ok "$desc"
    else
        hn_fail "$desc (expected $(_hn_oneline "$want"), got $(_hn_oneline "$got"))"
    fi
}

# hn_assert_cmd DESC CMD...: ok when CMD exits 0; else its status and the
# last lines of its output as "#" comments.
hn_assert_cmd() {
    local desc=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    if [ "$rc" -eq 0 ]; then
        hn_ok "$desc"
    else
        hn_fail "$desc (command failed with status $rc: $*)"
        printf '%s\n' "$out" | tail -n 10 | sed 's/^/#   /'
    fi
}

# Ends the test: the EXIT trap prints the final line and cleans up. The
# answers recorded with hn_oa_curl are checked against docs/openapi.yaml first.
hn_done() {
    hn_oa_sse_collect
    [ -s "$HN_TMP/oa/answers.tsv" ] && hn_oa_check
    HN_DONE=1
    if [ "$HN_FAILED" -gt 0 ]; then exit 1; fi
    exit 0
}

# ---- the OpenAPI description (docs/openapi.yaml) --------------------------

# hn_oa_req BODYFILE CURL_ARGS...: curl -s with the body in BODYFILE, the status in HN_ST.
# The answer (curl's own method and URL, status, content type, body) is recorded in
# $HN_TMP/oa, and hn_done checks every recorded answer against the description
# (tests/browser/openapi.mjs check, one node per script): an answer whose route, status or
# body the description does not have fails. Only builtins besides curl (the API tests send
# many requests, some against a rate limit). hn_oa_curl: the same, printing the status.
hn_oa_req() {
    local body=$1 w v="" id
    shift
    [ -d "$HN_TMP/oa" ] || mkdir "$HN_TMP/oa"
    : >"$body"   # curl leaves the file alone when the answer has no body (204, 304)
    HN_OA_N=$((${HN_OA_N:-0} + 1))
    id=$BASHPID.$HN_OA_N
    curl -s -o "$body" -w '%{http_code}\t%{content_type}\t%{method}\t%{url_effective}\n' "$@" \
        >"$HN_TMP/oa/$id.w" || true
    IFS= read -r w <"$HN_TMP/oa/$id.w" || w=000
    HN_ST=${w%%$'\t'*}
    [ "$HN_ST" != 000 ] || return 0
    IFS= read -r -d '' v <"$body" || true # (a NUL ends it: only JSON bodies are checked)
    printf '%s' "$v" >"$HN_TMP/oa/$id"
    printf '%s\t%s\n' "$id" "$w" >>"$HN_TMP/oa/answers.tsv"
}
hn_oa_curl() {
    hn_oa_req "$@"
    printf '%s\n' "$HN_ST"
}

# hn_oa_sse FILE URL: FILE is (or will be) what a 200 event stream from URL sent (curl -N
# output, without headers). At hn_done its complete events are checked against the route's
# `x-events` in the description: an event name the description lacks, or data that does not
# fit its schema, fails.
hn_oa_sse() {
    [ -d "$HN_TMP/oa" ] || mkdir "$HN_TMP/oa"
    printf '%s\t%s\n' "$1" "$2" >>"$HN_TMP/oa/sse.tsv"
}
hn_oa_sse_collect() {
    local file url id
    [ -s "$HN_TMP/oa/sse.tsv" ] || return 0
    while IFS=$'\t' read -r file url; do
        [ -s "$file" ] || continue
        HN_OA_N=$((${HN_OA_N:-0} + 1))
        id=$BASHPID.$HN_OA_N
        cp "$file" "$HN_TMP/oa/$id"
        printf '%s\t200\ttext/event-stream\tGET\t%s\n' "$id" "$url" >>"$HN_TMP/oa/answers.tsv"
    done <"$HN_TMP/oa/sse.tsv"
    : >"$HN_TMP/oa/sse.tsv"
}

# hn_oa_check: tests/browser/openapi.mjs check on the recorded answers: one check per
# operation and status seen, one failure per answer that does not fit.
hn_oa_check() {
    local out=$HN_TMP/oa/check.out rc=0 p f
    if ! command -v node >/dev/null || ! bash "$HN_ROOT/tests/browser/deps.sh"; then
        hn_fail "openapi: node and tests/browser's npm tooling are needed to check the answers"
        return 0
    fi
    node "$HN_ROOT/tests/browser/openapi.mjs" check "$HN_ROOT/docs/openapi.yaml" "$HN_TMP/oa" >"$out" 2>&1 || rc=$?
    cat "$out"
    p=$(grep -c '^ok - ' "$out" || true)
    f=$(grep -c '^not ok - ' "$out" || true)
    HN_PASSED=$((HN_PASSED + p))
    HN_FAILED=$((HN_FAILED + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then hn_fail "openapi: check.mjs exited with status $rc"; fi
    return 0
}

# ---- processes ------------------------------------------------------------

hn_free_port() {
    local p tries=0
    [ -x "$HN_BIN/hn-freeport" ] || { echo "lib.sh: $HN_BIN/hn-freeport missing (make $HN_BIN/hn-freeport)" >&2; return 1; }
    # Never the same port twice in one test: the kernel may reuse a port
    # that was free a moment ago but that this test is about to use.
    touch "$HN_TMP/.ports"
    while :; do
        p=$("$HN_BIN/hn-freeport") || return 1
        if ! grep -qx "$p" "$HN_TMP/.ports"; then
            echo "$p" >>"$HN_TMP/.ports"
            echo "$p"
            return 0
        fi
        tries=$((tries + 1))
        [ "$tries" -lt 50 ] || { echo "lib.sh: no unused free port" >&2; return 1; }
    done
}

# hn_spawn NAME CMD...: CMD in the background, output in $HN_TMP/NAME.log,
# pid in HN_PID_<NAME>, stopped by the cleanup.
hn_spawn() {
    local name=$1
    shift
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || { echo "lib.sh: hn_spawn: bad name '$name'" >&2; return 1; }
    "$@" </dev/null >"$HN_TMP/$name.log" 2>&1 &
    local pid=$!
    HN_PIDS+=("$pid")
    HN_LOGS+=("$HN_TMP/$name.log")
    printf -v "HN_PID_$name" '%s' "$pid"
}

# True while pid exists and is not a zombie.
hn_alive() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# hn_stop PID [TIMEOUT_S]: SIGTERM, wait, SIGKILL after the timeout (default
# 10). Returns the process's exit status when it is our child.
hn_stop() {
    local pid=$1 timeout=${2:-10} deadline rc=0
    deadline=$(($(date +%s%N) / 1000000 + timeout * 1000))
    kill -TERM "$pid" 2>/dev/null || true
    while hn_alive "$pid"; do
        if [ $(($(date +%s%N) / 1000000)) -ge "$deadline" ]; then
            echo "lib.sh: pid $pid ignored SIGTERM for ${timeout}s, sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.05
    done
    wait "$pid" 2>/dev/null || rc=$?
    return "$rc"
}

# hn_wait_for TIMEOUT_S DESC CMD...: polls CMD every 50 ms until it succeeds
# (return 0, nothing printed) or TIMEOUT_S pass (a failure "DESC (timed out
# after TIMEOUT_S s)" is counted and 1 returned).
hn_wait_for() {
    local timeout=$1 desc=$2 deadline
    shift 2
    deadline=$(($(date +%s%N) / 1000000 + $(awk -v t="$timeout" 'BEGIN { printf "%d", t * 1000 }')))
    while :; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        if [ $(($(date +%s%N) / 1000000)) -ge "$deadline" ]; then
            hn_fail "$desc (timed out after ${timeout}s)"
            return 1
        fi
        sleep 0.05
    done
}

# ---- servers --------------------------------------------------------------

# _hn_register ARRAY DIR: appends DIR to ARRAY unless it is there already.
_hn_register() {
    local -n _arr=$1
    local d
    for d in "${_arr[@]}"; do [ "$d" != "$2" ] || return 0; done
    _arr+=("$2")
}

# hn_start_stores: a private Redis and PostgreSQL (hn_start_redis,
# hn_start_pg), the schema migrated by HN_BIN's herenowctl.
hn_start_stores() {
    hn_start_redis
    hn_start_pg
    "$HN_BIN/herenowctl" migrate >/dev/null
}

# hn_need CMD PACKAGE: fails the script (and ends it) when CMD is missing.
hn_need() {
    command -v "$1" >/dev/null || { hn_fail "$1 is needed (apt-get install $2)"; hn_done; }
}

# hn_start_redis [NAME]: a private Redis in $HN_TMP/NAME (default redis);
# exports HN_REDIS_PORT and HERENOW_REDIS_URL. With HN_REDIS_MODE=cluster
# (tests/run-integration.sh --cluster) a Redis Cluster instead
# (hn_start_redis_cluster), HN_REDIS_PORT its first master (hn_redis follows
# redirects there) and HERENOW_STREAM_SHARDS 3 unless set.
hn_start_redis() {
    local name=${1:-redis} port
    if hn_cluster_mode; then
        hn_start_redis_cluster "$name" || return 1
        export HN_REDIS_PORT=${HN_CLUSTER_PORTS%% *}
        export HERENOW_STREAM_SHARDS=${HERENOW_STREAM_SHARDS:-3}
        return 0
    fi
    for _ in 1 2 3; do
        port=$(hn_free_port) || return 1
        # Registered before the start: a signal that ends the test in the
        # middle of it must still stop the server.
        _hn_register HN_REDIS_DIRS "$HN_TMP/$name"
        # The port may be taken between hn-freeport and the bind: retry.
        if "$HN_ROOT/scripts/redis.sh" start --fast "$HN_TMP/$name" "$port" >/dev/null; then
            export HN_REDIS_PORT=$port
            export HERENOW_REDIS_URL="redis://127.0.0.1:$port/0"
            return 0
        fi
    done
    echo "lib.sh: could not start redis" >&2
    return 1
}

# hn_start_redis_cluster [NAME]: a private Redis Cluster of 3 masters and 3
# replicas in $HN_TMP/NAME (default cluster; scripts/redis-cluster.sh), its
# node timeout HN_CLUSTER_NODE_TIMEOUT_MS (2000); exports HN_CLUSTER_DIR,
# HN_CLUSTER_PORTS (the six ports, masters first) and HERENOW_REDIS_URL
# (redis+cluster://, the three masters as seeds).
hn_start_redis_cluster() {
    local name=${1:-cluster} port
    for _ in 1 2 3; do
        port=$("$HN_BIN/hn-freeport" --cluster) || return 1
        _hn_register HN_CLUSTER_DIRS "$HN_TMP/$name"
        if "$HN_ROOT/scripts/redis-cluster.sh" start "$HN_TMP/$name" "$port" >/dev/null; then
            export HN_CLUSTER_DIR=$HN_TMP/$name
            HN_CLUSTER_PORTS=$(cat "$HN_CLUSTER_DIR/ports")
            export HN_CLUSTER_PORTS
            export HERENOW_REDIS_URL="redis+cluster://127.0.0.1:$port,127.0.0.1:$((port + 1)),127.0.0.1:$((port + 2))"
            return 0
        fi
        "$HN_ROOT/scripts/redis-cluster.sh" stop "$HN_TMP/$name" >/dev/null 2>&1
        rm -rf "${HN_TMP:?}/$name"
    done
    echo "lib.sh: could not start a redis cluster" >&2
    return 1
}

# hn_cluster_master_of KEY: the port of the master that holds KEY's slot now.
hn_cluster_master_of() {
    local n
    n=$("$HN_BIN/hn-rcltest" node-of "$HERENOW_REDIS_URL" "$1") || return 1
    echo "${n##*:}"
}

# hn_cluster_replica_of PORT: the port of a replica of the master on PORT.
hn_cluster_replica_of() {
    redis-cli -p "$1" info replication | tr -d '\r' | sed -n 's/^slave0:.*port=\([0-9]*\),.*/\1/p'
}



# hn_start_pg [NAME]: a private PostgreSQL in $HN_TMP/NAME (default pg), with
# database herenow; exports HN_PG_PORT and HERENOW_DATABASE_URL.
# hn_widget_add ARGS...: `herenowctl widget add ARGS` (needs PostgreSQL, migrated);
# prints "<id> <key> " for `read -r W K <<<"$(hn_widget_add ...)"`.
hn_widget_add() {
    "$HN_BIN/herenowctl" widget add "$@" | awk '/^(id|key):/ { printf "%s ", $2 }'
}

hn_start_pg() {
    local name=${1:-pg} port
    for _ in 1 2 3; do
        port=$(hn_free_port) || return 1
        _hn_register HN_PG_DIRS "$HN_TMP/$name"
        if "$HN_ROOT/scripts/pg.sh" start --fast "$HN_TMP/$name" "$port" >/dev/null; then
            HN_PG_BINDIR=$("$HN_ROOT/scripts/pg.sh" bindir)
            export HN_PG_PORT=$port
            export HERENOW_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/herenow"
            return 0
        fi
    done
    echo "lib.sh: could not start postgresql" >&2
    return 1
}

# hn_redis ARGS...: redis-cli on the test's Redis (on a cluster: -c, following
# MOVED and ASK from its first master; one key, or keys of one slot, per command).
hn_redis() {
    if hn_cluster_mode; then
        redis-cli -c -h 127.0.0.1 -p "$HN_REDIS_PORT" "$@"
    else
        redis-cli -h 127.0.0.1 -p "$HN_REDIS_PORT" "$@"
    fi
}

# hn_cluster_mode: true when the suite runs on a Redis Cluster (HN_REDIS_MODE=cluster).
hn_cluster_mode() {
    [ "${HN_REDIS_MODE:-single}" = cluster ]
}

# hn_cluster_skip WHY: prints "# skipped on a cluster: WHY" and returns 0 in
# cluster mode (1 otherwise): `if hn_cluster_skip "…"; then :; else …; fi`.
hn_cluster_skip() {
    hn_cluster_mode || return 1
    echo "# skipped on a cluster: $1"
}

# hn_redis_at KEY ARGS...: redis-cli on the node that holds KEY's slot (no
# redirects: --pipe and --scan of keys of that one slot, e.g. {w}'s). On one
# Redis, hn_redis.
hn_redis_at() {
    local key=$1 port
    shift
    if hn_cluster_mode; then
        port=$(hn_cluster_master_of "$key") || return 1
        redis-cli -h 127.0.0.1 -p "$port" "$@"
    else
        hn_redis "$@"
    fi
}

# hn_redis_all ARGS...: redis-cli ARGS on every master (on one Redis: once).
hn_redis_all() {
    local p
    if hn_cluster_mode; then
        for p in $(hn_cluster_masters); do redis-cli -h 127.0.0.1 -p "$p" "$@"; done
    else
        hn_redis "$@"
    fi
}

# hn_cluster_masters: the ports of the cluster's masters now, one a line.
hn_cluster_masters() {
    redis-cli -h 127.0.0.1 -p "$HN_REDIS_PORT" cluster nodes |
        awk '$3 ~ /master/ && $3 !~ /fail/ { split($2, a, "[:@]"); print a[2] }'
}

# hn_stream_keys: the stream shards' keys (HERENOW_STREAM_SHARDS; hn:stream:0 alone by default).
hn_stream_keys() {
    local n=${HERENOW_STREAM_SHARDS:-1} s
    [ "$n" -ge 1 ] || n=1
    for s in $(seq 0 $((n - 1))); do "$HN_BIN/herenowctl" stream key --shard "$s"; done
}

# hn_stream_sum CMD...: the sum over the stream shards of `hn_redis CMD KEY REST`'s
# first line, CMD's first word the command: hn_stream_sum XLEN; hn_stream_sum XPENDING drain.
hn_stream_sum() {
    local cmd=$1 k n sum=0
    shift
    for k in $(hn_stream_keys); do
        n=$(hn_redis "$cmd" "$k" "$@" 2>&1 | head -1)
        # a shard nobody wrote yet: no key, no group
        case "$n" in *"no such key"* | *NOGROUP*) n=0 ;; esac
        [[ $n =~ ^[0-9]+$ ]] || { echo "lib.sh: hn_stream_sum: $cmd $k: $n" >&2; return 1; }
        sum=$((sum + n))
    done
    echo "$sum"
}

# hn_widget_id_apart WID...: on a cluster, the next widget id (herenowctl widget
# add) is made the first after the WIDs (and every id taken) whose {id} slot lives on
# none of the WIDs' masters (the id identity restarted there); nothing on one Redis.
hn_widget_id_apart() {
    local w ms="" next
    hn_cluster_mode || return 0
    next=$(hn_psql "SELECT coalesce(max(id), 0) FROM widget_configs")
    for w in "$@"; do
        ms+=" $(hn_cluster_master_of "hn:live:{$w}") "
        [ "$w" -le "$next" ] || next=$w
    done
    next=$((next + 1))
    while [[ $ms == *" $(hn_cluster_master_of "hn:live:{$next}") "* ]]; do next=$((next + 1)); done
    hn_psql "ALTER TABLE widget_configs ALTER COLUMN id RESTART WITH $next" >/dev/null
}

# hn_redis_stop: stops the test's Redis (on a cluster: every node).
hn_redis_stop() {
    if hn_cluster_mode; then
        "$HN_ROOT/scripts/redis-cluster.sh" stop "$HN_CLUSTER_DIR" >/dev/null
    else
        "$HN_ROOT/scripts/redis.sh" stop "$HN_TMP/redis" >/dev/null
    fi
}

# hn_cluster_two_masters DESC KEY...: in cluster mode, an assertion that the
# keys (hn:live:{w} of the suite's widgets) live on at least two masters, each
# key's master printed; nothing on one Redis.
hn_cluster_two_masters() {
    local desc=$1 k m list="" n
    shift
    hn_cluster_mode || return 0
    for k in "$@"; do
        m=$(hn_cluster_master_of "$k")
        list+="$k@$m "
    done
    n=$(for k in $list; do echo "${k##*@}"; done | sort -u | wc -l)
    hn_assert_cmd "$desc: on $n masters (${list% })" test "$n" -ge 2
}

# hn_psql SQL [PSQL ARGS...]: one statement, unaligned tuples only.
hn_psql() {
    local sql=$1
    shift
    "${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql" -X -At -v ON_ERROR_STOP=1 \
        "$HERENOW_DATABASE_URL" "$@" -c "$sql"
}

# hn_start_api [ARGS...]: herenow-api on a free port of 127.0.0.1 with the
# current HERENOW_* environment (and ARGS as flags), output in
# $HN_TMP/api.log; waits until /livez answers. Exports HN_API_URL; the pid
# is in HN_PID_api.
hn_start_api() {
    local port
    port=$(hn_free_port) || return 1
    hn_spawn api env HERENOW_API_LISTEN="127.0.0.1:$port" "$HN_BIN/herenow-api" "$@"
    export HN_API_URL="http://127.0.0.1:$port"
    hn_wait_for 10 "herenow-api answers /livez" _hn_api_livez
}

_hn_api_livez() {
    hn_alive "$HN_PID_api" && curl -fsS "$HN_API_URL/livez"
}

# ---- cleanup --------------------------------------------------------------

hn_cleanup() {
    local rc=$? pid d log
    trap - EXIT INT TERM
    set +e
    if [ "$HN_DONE" -ne 1 ]; then
        hn_fail "test script ended before hn_done (exit status $rc)"
        [ "$rc" -ne 0 ] || rc=1
    fi
    # jobs -p as well: a signal may land between an `&` and its registration.
    for pid in "${HN_PIDS[@]}" $(jobs -p); do
        hn_alive "$pid" && hn_stop "$pid" 10 >/dev/null 2>&1
    done
    if [ "$HN_FAILED" -gt 0 ] && [ "${HN_QUIET_LOGS:-0}" != 1 ]; then
        for log in "${HN_LOGS[@]}"; do
            [ -s "$log" ] || continue
            echo "# --- last lines of ${log##*/} ---"
            tail -n 30 "$log" | sed 's/^/#   /'
        done
    fi
    for d in "${HN_PG_DIRS[@]}"; do "$HN_ROOT/scripts/pg.sh" stop "$d" >/dev/null 2>&1; done
    for d in "${HN_REDIS_DIRS[@]}"; do "$HN_ROOT/scripts/redis.sh" stop "$d" >/dev/null 2>&1; done
    for d in "${HN_CLUSTER_DIRS[@]}"; do "$HN_ROOT/scripts/redis-cluster.sh" stop "$d" >/dev/null 2>&1; done
    if [ "${HN_KEEP_TMP:-0}" = 1 ]; then
        echo "# kept $HN_TMP"
    else
        rm -rf "$HN_TMP"
    fi
    echo "$HN_PASSED passed, $HN_FAILED failed"
    exit "$rc"
}

trap hn_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- browser tests (tests/browser, node scripts driving headless Chromium) ----

# hn_browser_prereqs: Debian's chromium, node >= 18 (Debian 12's nodejs; the
# playwright-core of tests/browser is held at 1.61.1, the newest for node 18) and jq,
# or the test ends here with one failure naming what is missing. Sets
# BROWSER_DIR and exports HN_CHROMIUM.
hn_browser_prereqs() {
    BROWSER_DIR=$HN_ROOT/tests/browser
    export HN_CHROMIUM=${HN_CHROMIUM:-/usr/bin/chromium}
    [ -x "$HN_CHROMIUM" ] || { hn_fail "Debian's chromium is needed at $HN_CHROMIUM (apt-get install chromium)"; hn_done; }
    command -v node >/dev/null || { hn_fail "node is needed (apt-get install nodejs npm)"; hn_done; }
    command -v jq >/dev/null || { hn_fail "jq is needed (apt-get install jq)"; hn_done; }
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    [ "$major" -ge 18 ] || { hn_fail "node >= 18 is needed by playwright-core (this is $(node --version))"; hn_done; }
}

# hn_node NAME SCRIPT: runs a node test script of tests/browser (output also
# in $HN_TMP/NAME.out) and adds its "ok"/"not ok" lines to this test's
# counts; a script that fails without a "not ok" line (a crash) is one more
# failure, and so is one that ran no assertion.
hn_node() {
    local name=$1 script=$2 rc=0 p f
    (cd "$BROWSER_DIR" && node "$script") 2>&1 | tee "$HN_TMP/$name.out" || rc=$?
    p=$(grep -c '^ok - ' "$HN_TMP/$name.out" || true)
    f=$(grep -c '^not ok - ' "$HN_TMP/$name.out" || true)
    HN_PASSED=$((HN_PASSED + p))
    HN_FAILED=$((HN_FAILED + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then hn_fail "$name exited with status $rc"; fi
    if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then hn_fail "$name ran no assertion"; fi
}
