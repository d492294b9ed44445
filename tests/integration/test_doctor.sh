#!/usr/bin/env bash
# test_doctor.sh: herenowctl doctor against real Redis and PostgreSQL — a sound deployment
# passes (exit 0, no FAIL line), and each thing an operator gets wrong is named with its fix
# and exit 1: Redis unreachable, the schema behind, widgets out of sync between PostgreSQL
# and Redis, a setting a daemon would refuse, a spool path that is a file, a GeoIP file that
# is not a database. On a cluster (--cluster) the cluster's state is checked too.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"

CTL="$HN_BIN/herenowctl"
hn_start_stores
"$CTL" widget add --name "Doctor" --domain doctor.example >/dev/null
# a small spool limit: the free-space check must not depend on the machine's disk
export HERENOW_SPOOL_DIR=$HN_TMP/spool HERENOW_SPOOL_MAX_BYTES=65536 HERENOW_THREADS=2 HERENOW_GEOIP_DB=
mkdir -p "$HERENOW_SPOOL_DIR"
# encryption at rest on, as the package and make run set it up; the database knows the key
"$CTL" key new --id k1 >"$HN_TMP/data.key"
chmod 600 "$HN_TMP/data.key"
export HERENOW_DATA_KEY_FILE=$HN_TMP/data.key

doctor() { "$CTL" doctor >"$HN_TMP/doctor.out" 2>&1; }
line() { grep -E "^(ok|warn|FAIL) +$1:" "$HN_TMP/doctor.out" | head -1; }
fails() { grep -c '^FAIL ' "$HN_TMP/doctor.out" || true; }

# --- 1. sound -----------------------------------------------------------------------------
rc=0; doctor || rc=$?
cat "$HN_TMP/doctor.out" | sed 's/^/# /'
hn_assert_eq "sound: exit 0" 0 "$rc"
hn_assert_eq "sound: no FAIL line" 0 "$(fails)"
hn_assert_cmd "the spool: room for every worker's file" bash -c "grep -qE '^ok +spool: .* for 0 MiB of spools \\(2 workers\\)' '$HN_TMP/doctor.out'"
for what in config redis schema "data keys" "clock redis" "clock postgresql" widgets spool geoip; do
    hn_assert_cmd "sound: '$what' ok" bash -c "grep -qE '^ok +$what:' '$HN_TMP/doctor.out'"
done
if hn_cluster_mode; then
    hn_assert_cmd "sound: the cluster's state checked on every master" bash -c "grep -qE '^ok +redis cluster: 3 masters, cluster_state ok' '$HN_TMP/doctor.out'"
fi
# --flags given to herenowctl name the servers checked, as for every other command
rc=0; "$CTL" --redis-url "redis://127.0.0.1:$(hn_free_port)/0" doctor >"$HN_TMP/doctor.flags" 2>&1 || rc=$?
hn_assert_eq "a --redis-url flag is the Redis checked" "1 1" "$rc $(grep -cE '^FAIL +redis: cannot connect' "$HN_TMP/doctor.flags")"
hn_assert_cmd "no api yet: the drain's group is missing, a warning with its fix" \
    bash -c "grep -qE '^warn +drain: .*no consumer group .* fix: start an api with HERENOW_DRAIN=on' '$HN_TMP/doctor.out'"
hn_assert_cmd "the last line sums it up" bash -c "tail -1 '$HN_TMP/doctor.out' | grep -qx 'ok: 0 failed, 1 to look at'"

rc=0; HERENOW_DATA_KEY_FILE= "$CTL" doctor >"$HN_TMP/doctor.clear" 2>&1 || rc=$?
hn_assert_cmd "no data key file: a warning (stored in clear) with the fix" \
    grep -qE '^warn +data keys: HERENOW_DATA_KEY_FILE is not set: .* in clear — fix: herenowctl key new' "$HN_TMP/doctor.clear"

# --- 2. each fault, named with its fix ------------------------------------------------------
fault() {   # fault DESC WHAT PATTERN ENV...: doctor with ENV exits 1, WHAT's line FAIL matching PATTERN
    local desc=$1 what=$2 pat=$3 rc=0
    shift 3
    env "$@" "$CTL" doctor >"$HN_TMP/doctor.out" 2>&1 || rc=$?
    hn_assert_eq "$desc: exit 1" 1 "$rc"
    hn_assert_cmd "$desc: '$what' FAIL with the fix" bash -c "line() { grep -E \"^(ok|warn|FAIL) +\$1:\" '$HN_TMP/doctor.out' | head -1; }; line '$what' | grep -qE '^FAIL .*$pat'"
}
dead=$(hn_free_port)
fault "Redis unreachable" redis "cannot connect.*fix: start Redis or correct HERENOW_REDIS_URL" \
    HERENOW_REDIS_URL="redis://127.0.0.1:$dead/0"
fault "a setting a daemon refuses" config "HERENOW_LIVE_WINDOW_S.*fix: correct that setting" HERENOW_LIVE_WINDOW_S=abc
fault "a CIDR list a collector refuses at start" config "HERENOW_TRUSTED_PROXIES.*fix: correct that setting" \
    HERENOW_TRUSTED_PROXIES=10.0.0.0/99
fault "a ticket secret an api refuses at start" config "HERENOW_API_TICKET_SECRET: want 64 hex digits" \
    HERENOW_API_TICKET_SECRET=abc
fault "a listen address a collector refuses" config "HERENOW_UDP_LISTEN" HERENOW_UDP_LISTEN=nohost:notaport
fault "a script path a collector refuses" config "HERENOW_HTTP_PIXEL_PATH: want a path" "HERENOW_HTTP_PIXEL_PATH=/p x.gif"
fault "user-agent regexes it cannot read" config "HERENOW_UA_REGEXES: .*No such file" HERENOW_UA_REGEXES="$HN_TMP/none.yaml"
echo "not a directory" >"$HN_TMP/spoolfile"
fault "the spool path is a file" spool "not a directory.*fix: point HERENOW_SPOOL_DIR at a directory" \
    HERENOW_SPOOL_DIR="$HN_TMP/spoolfile"
head -c 4096 /dev/urandom >"$HN_TMP/bad.mmdb"
fault "a GeoIP file that is not a database" geoip "bad.mmdb: not a MaxMind database.*fix: a GeoLite2-City" HERENOW_GEOIP_DB="$HN_TMP/bad.mmdb"
fault "a GeoIP file that is not there" geoip "missing.mmdb: No such file.*fix: a GeoLite2-City" HERENOW_GEOIP_DB="$HN_TMP/missing.mmdb"
# the test database the enrichment tests build (tests/tools/mkmmdb.pl): a real one passes
perl "$HN_ROOT/tests/tools/mkmmdb.pl" "$HN_TMP/good.mmdb"
HERENOW_GEOIP_DB="$HN_TMP/good.mmdb" "$CTL" doctor >"$HN_TMP/doctor.out" 2>&1 || true
hn_assert_cmd "a real MaxMind database: geoip ok" bash -c "grep -qE '^ok +geoip: .*good.mmdb: a MaxMind database' '$HN_TMP/doctor.out'"
# the HTTPS certificate: as the daemons load it, and its expiry
cert() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$2" -subj "/CN=$1" \
    -keyout "$HN_TMP/$1.key" -out "$HN_TMP/$1.pem" 2>/dev/null; }
cert month 30; cert fortnight 10; cert soon 2
tlsenv() { echo HERENOW_HTTPS_LISTEN=127.0.0.1:8443 HERENOW_TLS_CERT="$HN_TMP/$1.pem" HERENOW_TLS_KEY="$HN_TMP/${2:-$1}.key"; }
# shellcheck disable=SC2046
env $(tlsenv month) "$CTL" doctor >"$HN_TMP/doctor.out" 2>&1 || true
hn_assert_cmd "a certificate good for a month: tls ok, with its subject and days left" \
    bash -c "grep -qE '^ok +tls: .*month.pem: /CN=month, issued by /CN=month, expires in (29|30) days\$' '$HN_TMP/doctor.out'"
# shellcheck disable=SC2046
env $(tlsenv fortnight) "$CTL" doctor >"$HN_TMP/doctor.out" 2>&1 || true
hn_assert_cmd "ten days left: a warning with the fix" \
    bash -c "grep -qE '^warn +tls: .*expires in (9|10) days — fix: renew the certificate, then SIGHUP' '$HN_TMP/doctor.out'"
# shellcheck disable=SC2046
fault "two days left" tls "expires in (1 day|2 days) — fix: renew" $(tlsenv soon)
# shellcheck disable=SC2046
fault "a key that is not the certificate's" tls "key values mismatch.*fix: a PEM chain" $(tlsenv month soon)
fault "a certificate without an HTTPS port" tls "no HTTPS port is.*fix: set HERENOW_HTTPS_LISTEN" \
    HERENOW_TLS_CERT="$HN_TMP/month.pem" HERENOW_TLS_KEY="$HN_TMP/month.key"
hn_psql "INSERT INTO hn_data_keys (id, check_value) VALUES ('k9', 'hnenc:v1:k9:AAAA')" >/dev/null
fault "the database holds values under a key the file lacks" "data keys" \
    "sealed under key .k9., which HERENOW_DATA_KEY_FILE does not have.*fix: HERENOW_DATA_KEY_FILE as the api has it"
hn_psql "DELETE FROM hn_data_keys WHERE id = 'k9'" >/dev/null
hn_redis HDEL hn:widgets "$(hn_psql "SELECT key FROM widget_configs LIMIT 1")" >/dev/null
fault "widgets out of sync" widgets "1 of 1 in PostgreSQL missing from Redis.*fix: herenowctl widget sync"
"$CTL" widget sync >/dev/null
# the latest migration's row set aside (its tables stay): the schema looks one version behind
hn_psql "CREATE TABLE doctor_sm AS SELECT * FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations)" >/dev/null
hn_psql "DELETE FROM schema_migrations WHERE version = (SELECT version FROM doctor_sm)" >/dev/null
fault "the schema behind these binaries" schema "at version [0-9]+, these binaries need [0-9]+.*fix: herenowctl migrate"
hn_psql "INSERT INTO schema_migrations SELECT * FROM doctor_sm" >/dev/null
rc=0; doctor || rc=$?
hn_assert_eq "fixed: exit 0 again" "0 0" "$rc $(fails)"
hn_done
