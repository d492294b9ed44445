#!/usr/bin/env bash
# pg.sh: a private PostgreSQL 15 in a directory of its own, on 127.0.0.1.
#
#   scripts/pg.sh start [--fast] DIR PORT   initdb when DIR/data is missing, start, create
#                                           database "herenow" when missing
#   scripts/pg.sh stop DIR                  pg_ctl -m fast stop of DIR/data
#   scripts/pg.sh status DIR                exit 0 when it runs
#   scripts/pg.sh bindir                    print the PostgreSQL bin directory used
#
# Layout: DIR/data (the cluster), DIR/pg.log (server log), DIR/.s.PGSQL.PORT
# (the unix socket). Authentication is trust, and only loopback is listened
# on and allowed (initdb's default pg_hba.conf). --fast (tests only) turns
# fsync, synchronous_commit and full_page_writes off: a crash may lose the
# cluster, which a test's cluster does not mind. With --fast and
# HN_PG_TEMPLATE set (tests/run-integration.sh), a missing cluster is a copy
# of one made there once (initdb costs three times the copy).
#
# PostgreSQL refuses to run as root: as root everything runs as the user
# postgres (runuser), and DIR is chowned to it; as any other user it runs as
# that user. The binaries come from /usr/lib/postgresql/15/bin (HN_PG_BIN
# overrides), never from PATH, whose psql/pg_ctl may be Debian's wrappers or
# another version.
set -euo pipefail

START_TIMEOUT_S=${HN_PG_START_TIMEOUT_S:-60}
STOP_TIMEOUT_S=${HN_PG_STOP_TIMEOUT_S:-60}
DBNAME=herenow

die() { echo "pg.sh: $*" >&2; exit 1; }
usage() {
    echo "usage: $0 start [--fast] DIR PORT | stop DIR | status DIR | bindir" >&2
    exit 2
}

find_bindir() {
    if [ -n "${HN_PG_BIN:-}" ]; then
        [ -x "$HN_PG_BIN/pg_ctl" ] || die "HN_PG_BIN=$HN_PG_BIN has no pg_ctl"
        echo "$HN_PG_BIN"
        return
    fi
    if [ -x /usr/lib/postgresql/15/bin/pg_ctl ]; then
        echo /usr/lib/postgresql/15/bin
        return
    fi
    die "PostgreSQL 15 not found in /usr/lib/postgresql/15/bin (run scripts/setup.sh)"
}

abspath() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

# Runs a command as the cluster's owner, from / (the caller's working
# directory may be unreadable for postgres, which initdb and pg_ctl dislike).
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

# initdb_to BIN DATA LOG [ARGS...]: a new cluster in DATA that includes
# herenow.conf (written at each start)
initdb_to() {
    local bin=$1 data=$2 log=$3
    shift 3
    as_owner "$bin/initdb" -D "$data" -U postgres -A trust -E UTF8 --locale=C "$@" >"$log" 2>&1 ||
        { tail -n 20 "$log" >&2; die "initdb failed (see $log)"; }
    echo "include_if_exists = 'herenow.conf'" >>"$data/postgresql.conf"
}

# template BIN: the path of $HN_PG_TEMPLATE's pristine cluster for this
# PostgreSQL and these initdb options, made on first use (in a directory of
# its own, then renamed: two starts at once both end with one whole template)
template() {
    local bin=$1 ver tpl tmp
    ver=$("$bin/postgres" --version | awk '{ print $3 }')
    tpl=$HN_PG_TEMPLATE/data-$ver-utf8-c-trust
    if [ ! -s "$tpl/PG_VERSION" ]; then
        # (in the caller's $(...), where set -e is off: every step checked)
        mkdir -p "$HN_PG_TEMPLATE" || die "cannot make $HN_PG_TEMPLATE"
        tmp=$(mktemp -d "$HN_PG_TEMPLATE/.new.XXXXXX") || die "cannot make a directory in $HN_PG_TEMPLATE"
        chmod 0755 "$tmp" || die "cannot chmod $tmp"
        if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$tmp" || die "cannot chown $tmp"; fi
        initdb_to "$bin" "$tmp/data" "$tmp/initdb.log" --no-sync
        mv -T "$tmp/data" "$tpl" 2>/dev/null || true      # another start was first: keep its
        rm -rf "$tmp"
    fi
    echo "$tpl"
}

cmd_start() {
    local fast=0 args=()
    for a in "$@"; do
        case "$a" in
            --fast) fast=1 ;;
            -*) usage ;;
            *) args+=("$a") ;;
        esac
    done
    [ ${#args[@]} -eq 2 ] || usage
    local dir port bin
    dir=$(abspath "${args[0]}")
    port=${args[1]}
    case "$port" in ''|*[!0-9]*) die "bad port '$port'" ;; esac
    if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then die "bad port '$port'"; fi
    bin=$(find_bindir)

    # The socket path must fit sun_path (107 bytes).
    local sock="$dir/.s.PGSQL.$port"
    [ ${#sock} -le 100 ] || die "DIR too long for a unix socket path: $sock"

    mkdir -p "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || die "user postgres missing (install postgresql-15)"
        chown postgres:postgres "$dir"
        chmod 0700 "$dir"
        as_owner test -w "$dir" ||
            die "user postgres cannot reach $dir: make its parent directories traversable (chmod o+x)"
    fi

    if [ ! -s "$dir/data/PG_VERSION" ]; then
        rm -rf "$dir/data"
        if [ "$fast" -eq 1 ] && [ -n "${HN_PG_TEMPLATE:-}" ]; then
            # tests: a copy of one initdb made once per run (a third of initdb's time)
            local tpl
            tpl=$(template "$bin")
            cp -a "$tpl" "$dir/data" || die "cannot copy the template cluster $tpl"
        else
            local nosync=()
            [ "$fast" -eq 1 ] && nosync=(--no-sync)
            initdb_to "$bin" "$dir/data" "$dir/initdb.log" "${nosync[@]}"
        fi
    fi

    if as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        if as_owner "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
            echo "postgresql already running on 127.0.0.1:$port, dir $dir"
            create_db "$bin" "$port"
            return 0
        fi
        die "the cluster in $dir/data runs already, but not on port $port; stop it first"
    fi

    # Rewritten on every start: the port may change between runs, and --fast
    # must not stick to a cluster started later without it.
    {
        echo "# generated by scripts/pg.sh; rewritten on every start"
        echo "listen_addresses = '127.0.0.1'"
        echo "port = $port"
        echo "unix_socket_directories = '$dir'"
        echo "max_connections = 100"
        echo "timezone = 'UTC'"
        echo "log_timezone = 'UTC'"
        if [ "$fast" -eq 1 ]; then
            echo "fsync = off"
            echo "synchronous_commit = off"
            echo "full_page_writes = off"
        fi
    } >"$dir/data/herenow.conf"
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir/data/herenow.conf"; fi

    # pg_ctl -w itself polls until the server accepts connections (or
    # gives up after -t seconds); pg_isready below confirms it on TCP.
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/pg.log" -w -t "$START_TIMEOUT_S" \
        start >/dev/null 2>&1 ||
        { tail -n 20 "$dir/pg.log" >&2 || true; die "pg_ctl start failed (see $dir/pg.log)"; }

    local deadline=$((SECONDS + START_TIMEOUT_S))
    until as_owner "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            die "postgresql not ready on 127.0.0.1:$port within ${START_TIMEOUT_S}s (see $dir/pg.log)"
        fi
        sleep 0.05
    done
    create_db "$bin" "$port"
    echo "postgresql started (pid $(head -n1 "$dir/data/postmaster.pid")) on 127.0.0.1:$port, dir $dir"
}

create_db() {
    local bin=$1 port=$2 have
    have=$(as_owner "$bin/psql" -X -At -h 127.0.0.1 -p "$port" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 \
        -c "SELECT count(*) FROM pg_database WHERE datname = '$DBNAME'") ||
        die "cannot query pg_database on 127.0.0.1:$port"
    if [ "$have" = 0 ]; then
        as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DBNAME" ||
            die "createdb $DBNAME failed"
    fi
}

cmd_stop() {
    [ $# -eq 1 ] || usage
    local dir bin
    dir=$(abspath "$1")
    bin=$(find_bindir)
    if [ ! -f "$dir/data/postmaster.pid" ]; then
        echo "postgresql not running (dir $dir)"
        return 0
    fi
    if ! as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        echo "postgresql not running (dir $dir)"
        return 0
    fi
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t "$STOP_TIMEOUT_S" stop >/dev/null ||
        die "pg_ctl stop failed for $dir/data (see $dir/pg.log)"
    echo "postgresql stopped (dir $dir)"
}

cmd_status() {
    [ $# -eq 1 ] || usage
    local dir bin
    dir=$(abspath "$1")
    bin=$(find_bindir)
    if [ -f "$dir/data/postmaster.pid" ] &&
        as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        echo "postgresql running (pid $(head -n1 "$dir/data/postmaster.pid"))"
    else
        echo "postgresql not running"
        return 1
    fi
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    bindir) [ $# -eq 0 ] || usage; find_bindir ;;
    -h|--help) echo "usage: $0 start [--fast] DIR PORT | stop DIR | status DIR | bindir" ;;
    *) usage ;;
esac
