#!/usr/bin/env bash
# test_sd_notify.sh: systemd's readiness protocol (common/sdnotify.h) — with NOTIFY_SOCKET
# set, each daemon sends READY=1 once its /readyz would answer 200, not before (a collector
# started while Redis is down, no spool: nothing until Redis is back), and STOPPING=1 when
# SIGTERM starts its stop. The socket is a datagram listener of the test's (perl), as
# systemd's would be.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
# one Redis stopped and started again in its place (scripts/redis.sh)
if hn_cluster_skip "restarts a standalone Redis"; then hn_done; fi
hn_start_stores

listen() {   # listen NAME: a datagram socket $HN_TMP/NAME.sock, each message one line of $HN_TMP/NAME.msgs
    : >"$HN_TMP/$1.msgs"
    hn_spawn "listen_$1" perl -e '
        use IO::Socket::UNIX; use Socket;
        my ($path, $out) = @ARGV;
        unlink $path;
        my $s = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $path) or die "listen: $!";
        open(my $fh, ">>", $out) or die "open: $!";
        $fh->autoflush(1);
        while (1) { my $buf = ""; defined($s->recv($buf, 4096)) or next; $buf =~ s/\n/ /g; print $fh "$buf\n"; }
    ' "$HN_TMP/$1.sock" "$HN_TMP/$1.msgs"
    hn_wait_for 5 "$1: the notification socket listens" test -S "$HN_TMP/$1.sock"
}
said() { grep -q "$2" "$HN_TMP/$1.msgs"; }
status_of() { curl -s -o /dev/null -w '%{http_code}' "$1"; }
# ready_then_stop DAEMON MSGS READYZ WHAT: once WHAT is back, DAEMON (hn_spawn's name) says
# READY=1 with its status, its /readyz says 200 by then; SIGTERM: STOPPING=1, exit 0; READY=1
# was sent once over its whole life
ready_then_stop() {
    local name=$1 msgs=$2 readyz=$3 what=$4 rc=0
    local -n pid="HN_PID_$name"
    hn_wait_for 20 "$name: READY=1 once $what is back" said "$msgs" 'READY=1'
    hn_assert_eq "$name: /readyz says 200 by then" 200 "$(status_of "$readyz")"
    hn_assert_cmd "$name: with STATUS=ready" said "$msgs" 'READY=1 STATUS=ready'
    kill -TERM "$pid"
    hn_wait_for 10 "$name: STOPPING=1 on SIGTERM" said "$msgs" 'STOPPING=1'
    hn_stop "$pid" || rc=$?
    hn_assert_eq "$name: exits 0" 0 "$rc"
    hn_assert_eq "$name: READY=1 sent once over its whole life" 1 "$(grep -c 'READY=1' "$HN_TMP/$msgs.msgs")"
}

UDP=$(hn_free_port); ADMIN=$(hn_free_port); API=$(hn_free_port)
export HERENOW_UDP_LISTEN=127.0.0.1:$UDP HERENOW_HTTP_LISTEN= HERENOW_ADMIN_LISTEN=127.0.0.1:$ADMIN
export HERENOW_API_LISTEN=127.0.0.1:$API HERENOW_THREADS=1 HERENOW_SPOOL_DIR= HERENOW_REDIS_RETRY_MS=100

# --- the collector: not ready while Redis is down, READY=1 once it is back -----------------
listen col
hn_redis_stop
NOTIFY_SOCKET=$HN_TMP/col.sock hn_spawn collector "$HN_BIN/herenow-collector"
hn_wait_for 10 "collector answers /readyz: 503 (Redis down, no spool)" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$ADMIN/readyz)\" = 503 ]"
# its widget refresh failed once: its loop has run for seconds (tens of readiness ticks)
metric_at_least() { [ "$(curl -fsS "$1" | awk -v m="$2" '$1 == m { print $2 }')" -ge "$3" ] 2>/dev/null; }
hn_wait_for 15 "collector: a widget refresh failed (Redis down)" \
    metric_at_least "http://127.0.0.1:$ADMIN/metrics" herenow_widget_refresh_errors_total 1
hn_assert_eq "no READY=1 while /readyz says 503" "" "$(grep 'READY=1' "$HN_TMP/col.msgs" || true)"
"$HN_ROOT/scripts/redis.sh" start --fast "$HN_TMP/redis" "$HN_REDIS_PORT" >/dev/null
ready_then_stop collector col "http://127.0.0.1:$ADMIN/readyz" "Redis"

# --- the api: not ready while PostgreSQL is down (no tokens), READY=1 once it is back ---------
listen api
"$HN_ROOT/scripts/pg.sh" stop "$HN_TMP/pg" >/dev/null
export HERENOW_TOKEN_REFRESH_MS=200
NOTIFY_SOCKET=$HN_TMP/api.sock hn_spawn api "$HN_BIN/herenow-api"
hn_wait_for 10 "api answers /readyz: 503 (PostgreSQL down)" bash -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$API/readyz)\" = 503 ]"
hn_wait_for 15 "api: a token refresh failed (PostgreSQL down)" \
    metric_at_least "http://127.0.0.1:$API/metrics" herenow_api_token_refresh_errors_total 2
hn_assert_eq "api: no READY=1 while /readyz says 503" "" "$(grep 'READY=1' "$HN_TMP/api.msgs" || true)"
"$HN_ROOT/scripts/pg.sh" start "$HN_TMP/pg" "$HN_PG_PORT" >/dev/null
ready_then_stop api api "http://127.0.0.1:$API/readyz" "PostgreSQL"

hn_done
