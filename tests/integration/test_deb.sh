#!/usr/bin/env bash
# test_deb.sh: the Debian package (debian/, `make deb`; docs/OPERATIONS.md "The Debian
# package") built from this tree, checked by lintian, then installed with its dependencies
# into a clean Debian 12 root (mmdebstrap: minbase, plus systemd and procps so that
# systemd-analyze can load the units against it; nothing runs systemd):
#
#   - lintian: no error, no warning
#   - the root: the system user, /etc/herenow/*.env conffiles readable by it alone, the man
#     pages, the dashboard's files
#   - the units pass `systemd-analyze verify` against that root
#   - the binaries run from it: herenowctl migrate against this test's PostgreSQL, then the
#     collector and the api as user herenow with the package's env files (servers swapped
#     for the test's), /readyz 200, the dashboard served from /usr/share/herenow/www, a
#     beacon through the packaged collector into the api's live list
#   - the data key of encryption at rest made at install (root:herenow 640), kept on reinstall
#   - purge: the conffiles and the state directory go, the data key stays
#
# Needs the network (deb.debian.org) for the root's packages, as scripts/setup.sh does.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
if hn_cluster_skip "a package test"; then hn_done; fi
for t in dpkg-buildpackage lintian mmdebstrap systemd-analyze; do hn_need "$t" "$t"; done

# ---- a clean Debian 12 root, made while the package builds --------------------------------------
# minbase, systemd and procps (for systemd-analyze), adduser and uap-core, and the Debian
# packages of the libraries the binaries built here link; the package then goes in with dpkg -i,
# which refuses it unless every one of its Depends is met
R=$HN_TMP/root
libs=$(for p in $(ldd "$HN_BIN/herenow-collector" "$HN_BIN/herenow-api" "$HN_BIN/herenowctl" | awk '/=>/ { print $3 }' | sort -u); do
           dpkg -S "*/$(basename "$p")" 2>/dev/null | cut -d: -f1; done | grep -v -- '-i386$' | sort -u | paste -sd, -)
hn_spawn root mmdebstrap --quiet --variant=minbase --include="systemd,procps,adduser,uap-core,$libs" bookworm "$R"

# ---- make deb, lintian ------------------------------------------------------------------------
hn_assert_cmd "make deb builds the package" make -C "$HN_ROOT" --no-print-directory -s deb
VERSION=$(awk -F'[()]' 'NR == 1 { print $2 }' "$HN_ROOT/debian/changelog")
DEB=$HN_ROOT/build/deb/herenow_${VERSION}_$(dpkg --print-architecture).deb
[ -f "$DEB" ] || { hn_fail "no $DEB"; hn_done; }
# lintian runs while the package is installed and run below (its result is checked at the end)
hn_spawn lintian timeout 300 lintian --fail-on error,warning "$DEB"
hn_assert_eq "the conffiles" "/etc/herenow/api.env /etc/herenow/collector.env" \
    "$(dpkg-deb --ctrl-tarfile "$DEB" | tar -xO ./conffiles | sort | tr '\n' ' ' | sed 's/ $//')"

# ---- the package in the root ----------------------------------------------------------------------
rc=0; wait "$HN_PID_root" || rc=$?
hn_assert_eq "mmdebstrap: a bookworm minbase root (with: $libs)" 0 "$rc"
in_root() { chroot "$R" "$@"; }
cp "$DEB" "$R/tmp/"
hn_assert_cmd "dpkg -i: the package installs into the clean root, every dependency met" \
    in_root dpkg -i "/tmp/$(basename "$DEB")"
[ -x "$R/usr/sbin/herenow-collector" ] || { hn_fail "the package is not in the root"; hn_done; }
hn_assert_eq "the binaries run: --version" "herenow-collector $VERSION|herenow-api $VERSION|herenowctl $VERSION" \
    "$(in_root herenow-collector --version)|$(in_root herenow-api --version)|$(in_root herenowctl --version)"
hn_assert_cmd "the system user herenow" bash -c "chroot '$R' getent passwd herenow | grep -q ':/var/lib/herenow:/usr/sbin/nologin\$'"
hn_assert_eq "the env files: root:herenow 640" "640 root herenow|640 root herenow" \
    "$(in_root stat -c '%a %U %G' /etc/herenow/api.env)|$(in_root stat -c '%a %U %G' /etc/herenow/collector.env)"
hn_assert_eq "the data key made at install: root:herenow 640, an index line and a key line" "640 root herenow 2" \
    "$(in_root stat -c '%a %U %G' /etc/herenow/data.key) $(grep -cE '^(index|k1) [0-9a-f]{64}$' "$R/etc/herenow/data.key")"
KEYLINE=$(cat "$R/etc/herenow/data.key")
for m in man8/herenow-collector.8 man8/herenow-api.8 man1/herenowctl.1; do
    hn_assert_cmd "man page $m, from --help (its settings)" bash -c "zcat '$R/usr/share/man/$m.gz' | grep -q 'HERENOW_REDIS_URL'"
done
hn_assert_cmd "the dashboard in /usr/share/herenow/www" test -s "$R/usr/share/herenow/www/index.html"
hn_assert_cmd "the examples: alerts, Grafana, nginx" test -s "$R/usr/share/doc/herenow/examples/herenow.conf"

# ---- upgrade and removal: the maintainer scripts debhelper made ----------------------------------
dpkg-deb -e "$DEB" "$HN_TMP/ctrl"
hn_assert_cmd "postinst: an upgrade restarts both units (deb-systemd-invoke restart; it skips disabled ones)" \
    bash -c "grep -q '_dh_action=restart' '$HN_TMP/ctrl/postinst' && grep -q \"deb-systemd-invoke \\\$_dh_action 'herenow-api.service'\" '$HN_TMP/ctrl/postinst' && grep -q \"deb-systemd-invoke \\\$_dh_action 'herenow-collector.service'\" '$HN_TMP/ctrl/postinst'"
hn_assert_eq "postinst: enables a unit again only when it was enabled (a first install enables nothing)" \
    "$(grep -c 'was-enabled' "$HN_TMP/ctrl/postinst")" "$(grep -c 'deb-systemd-helper enable' "$HN_TMP/ctrl/postinst")"
hn_assert_cmd "prerm: a removal stops both units" bash -c "grep -q 'deb-systemd-invoke stop .*herenow-collector.service' '$HN_TMP/ctrl/prerm' && grep -q 'deb-systemd-invoke stop .*herenow-api.service' '$HN_TMP/ctrl/prerm'"
# an operator's edit survives an upgrade (here: the same version again)
echo 'HERENOW_LOG_LEVEL=debug' >>"$R/etc/herenow/api.env"
hn_assert_cmd "the package installed again over itself (an upgrade's path)" \
    in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall -o Dpkg::Options::=--force-confold "/tmp/$(basename "$DEB")"
hn_assert_cmd "… keeps the operator's edit of a conffile" grep -qx 'HERENOW_LOG_LEVEL=debug' "$R/etc/herenow/api.env"
hn_assert_eq "… keeps the data key" "$KEYLINE" "$(cat "$R/etc/herenow/data.key")"

# ---- the units ---------------------------------------------------------------------------------
for u in herenow-collector herenow-api; do
    rc=0; systemd-analyze verify --root="$R" --man=no "/lib/systemd/system/$u.service" >"$HN_TMP/verify.out" 2>&1 || rc=$?
    sed 's/^/# verify: /' "$HN_TMP/verify.out"
    hn_assert_eq "$u.service: systemd-analyze verify against the root" "0 " "$rc $(cat "$HN_TMP/verify.out")"
    hn_assert_cmd "$u.service: Type=notify, user herenow, ProtectSystem=strict, NoNewPrivileges" bash -c \
        "grep -qx Type=notify '$R/lib/systemd/system/$u.service' && grep -qx User=herenow '$R/lib/systemd/system/$u.service' && grep -qx ProtectSystem=strict '$R/lib/systemd/system/$u.service' && grep -qx NoNewPrivileges=yes '$R/lib/systemd/system/$u.service'"
done
hn_assert_cmd "herenow-collector.service keeps its spool in StateDirectory=herenow" \
    grep -qx StateDirectory=herenow "$R/lib/systemd/system/herenow-collector.service"
hn_assert_eq "installed, not enabled or started (the operator fills /etc/herenow first)" "" \
    "$(find "$R/etc/systemd/system" -name 'herenow-*' 2>/dev/null)"

# ---- the binaries at work: this test's Redis and PostgreSQL (loopback, shared with the root) ----
hn_start_redis
hn_start_pg
hn_assert_cmd "herenowctl migrate (the migrations inside it) against a test PostgreSQL" \
    in_root env HERENOW_DATABASE_URL="$HERENOW_DATABASE_URL" herenowctl migrate
hn_assert_eq "… the schema at its version" "$(ls "$HN_ROOT"/sql/*.sql | wc -l)" "$(hn_psql 'SELECT count(*) FROM schema_migrations')"
read -r WID KEY <<<"$(in_root env HERENOW_DATABASE_URL="$HERENOW_DATABASE_URL" HERENOW_REDIS_URL="$HERENOW_REDIS_URL" \
    herenowctl widget add --name Packaged --domain example.com | awk '/^(id|key):/ { printf "%s ", $2 }')"
TOK=$(in_root env HERENOW_DATABASE_URL="$HERENOW_DATABASE_URL" herenowctl token create --all --name deb 2>/dev/null)
HTTP=$(hn_free_port); ADMIN=$(hn_free_port); API=$(hn_free_port)
# what systemd's StateDirectory=herenow makes for the collector's unit (no systemd here)
mkdir -p "$R/var/lib/herenow"
in_root chown herenow:herenow /var/lib/herenow
# daemon NAME ENVFILE BIN VARS...: BIN in the root as user herenow with the package's env file,
# then VARS (the test's servers and ports) over it
daemon() {
    local name=$1
    shift
    hn_spawn "$name" chroot --userspec=herenow:herenow "$R" /bin/sh -c \
        'set -a; . "$1"; set +a; b=$2; shift 2; for kv in "$@"; do export "$kv"; done; exec "$b"' sh "$@"
}
daemon collector /etc/herenow/collector.env /usr/sbin/herenow-collector \
    HERENOW_REDIS_URL="$HERENOW_REDIS_URL" HERENOW_UDP_LISTEN= HERENOW_HTTP_LISTEN="127.0.0.1:$HTTP" \
    HERENOW_ADMIN_LISTEN="127.0.0.1:$ADMIN" HERENOW_THREADS=1
daemon api /etc/herenow/api.env /usr/sbin/herenow-api \
    HERENOW_REDIS_URL="$HERENOW_REDIS_URL" HERENOW_DATABASE_URL="$HERENOW_DATABASE_URL" HERENOW_API_LISTEN="127.0.0.1:$API"
hn_wait_for 10 "the packaged collector, as user herenow: /readyz 200" curl -fsS "http://127.0.0.1:$ADMIN/readyz"
hn_wait_for 10 "the packaged api, as user herenow: /readyz 200" curl -fsS "http://127.0.0.1:$API/readyz"
U=$(in_root id -u herenow)
hn_assert_eq "… running as herenow (uid $U)" "$U $U" "$(ps -o uid= -p "$HN_PID_collector" | tr -d ' ') $(ps -o uid= -p "$HN_PID_api" | tr -d ' ')"
hn_assert_cmd "the api serves the dashboard from /usr/share/herenow/www" \
    bash -c "curl -fsS http://127.0.0.1:$API/ | grep -q '<title>'"
hn_assert_cmd "the packaged collector serves the widget script" \
    bash -c "curl -fsS http://127.0.0.1:$HTTP/h.js | grep -q herenow"
UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
hex=$(in_root herenowctl send --dry-run --key "$KEY" --session debpackage0001 --url https://example.com/ | sed -n 2p)
printf '%b' "$(sed 's/../\\x&/g' <<<"$hex")" >"$HN_TMP/pv"
hn_assert_eq "a beacon to the packaged collector: 204" 204 \
    "$(curl -s -o /dev/null -w '%{http_code}' -A "$UA" --data-binary "@$HN_TMP/pv" "http://127.0.0.1:$HTTP/b")"
live() { [[ "$(curl -fsS -H "Authorization: Bearer $TOK" "http://127.0.0.1:$API/api/visitor-tracking/widgets/$WID/active-visitors")" == *debpackage0001* ]]; }
hn_wait_for 5 "… in the packaged api's live list" live
hn_stop "$HN_PID_collector"; hn_stop "$HN_PID_api"

# ---- purge -----------------------------------------------------------------------------------
hn_assert_cmd "apt-get purge herenow" in_root apt-get purge -y -q herenow
hn_assert_eq "purge: the binaries, the conffiles and the state directory are gone" "" \
    "$(ls -d "$R/usr/sbin/herenow-collector" "$R/etc/herenow/api.env" "$R/var/lib/herenow" 2>/dev/null || true)"
hn_assert_eq "purge keeps the data key (the database it opens is not purged either)" "$KEYLINE" "$(cat "$R/etc/herenow/data.key")"
rc=0; wait "$HN_PID_lintian" || rc=$?
sed 's/^/# lintian: /' "$HN_TMP/lintian.log"
hn_assert_eq "lintian: no error, no warning" 0 "$rc"
hn_assert_eq "lintian: no E: or W: tag" "" "$(grep -E '^[EW]: ' "$HN_TMP/lintian.log" || true)"
hn_done
