#!/usr/bin/env bash
# setup.sh: installs the Debian 12 packages herenow builds, tests and runs with.
#
#   scripts/setup.sh           install what is missing (apt-get update once, then install)
#   scripts/setup.sh --check   exit 0 when nothing is missing, 1 (and the list) otherwise
#   scripts/setup.sh --bench / --check-bench   the same for what `make bench-http` also
#                              needs (nginx, perf); nginx's service is not started
#
# The browser tests need node and npm (for playwright-core, from npm):
# node >= 18 on the PATH. When there is no node at all, Debian's nodejs (18)
# and npm (9) are installed, and they are enough: tests/browser holds
# playwright-core at 1.61.1, the newest release for node 18. A newer node (such
# as nodesource's 20) works as well.
#
# Idempotent: with everything installed it does nothing and touches no network.
#
# Debian's redis-server and postgresql packages start system services on the
# default ports when installed (where the machine runs services at all). herenow
# never uses them: scripts/redis.sh and scripts/pg.sh run private servers in a
# data directory of their own, on a port of their own, so whether those
# services run, fail or are absent changes nothing for the build, the tests or
# `make run`.
set -euo pipefail

PACKAGES=(
    # build
    build-essential pkg-config
    libevent-dev libhiredis-dev libpq-dev libmsgpack-dev libcmocka-dev libssl-dev
    uthash-dev
    # fuzzing: libFuzzer targets (clang, its runtime)
    clang libclang-rt-14-dev
    # `make valgrind` (the unit tests under valgrind)
    valgrind
    # servers and clients for tests and `make run`
    redis-server redis-tools postgresql-15 postgresql-client-15
    curl ca-certificates wrk jq
    # enrichment (UA parsing, geo) and its tests
    libmaxminddb-dev libpcre2-dev uap-core libyaml-dev libmaxmind-db-writer-perl zlib1g-dev
    # the widget and dashboard tests: headless Chromium driven by playwright-core
    chromium
    # the HTTPS proxy recipe's test (scripts/nginx/herenow.conf; test_tls), and `make bench-http`'s
    # reference server; its service is never started (see policy-rc.d below)
    nginx-light
    # `make deb` and its test (debhelper, man pages from --help, lintian, a clean Debian 12 root)
    dpkg-dev debhelper help2man lintian mmdebstrap
    # promtool (`promtool check metrics` on both daemons' /metrics); its
    # Prometheus server is never started (see policy-rc.d below)
    prometheus
)

# Only for `make bench-http`: the reference server and the profiler.
PACKAGES_BENCH=(nginx-light linux-perf)   # nginx-light: in PACKAGES too (test_tls)

usage() {
    echo "usage: $0 [--check | --bench | --check-bench]" >&2
    exit 2
}

check_only=0
bench=0
case "${1:-}" in
    "") ;;
    --check) check_only=1 ;;
    --bench) bench=1 ;;
    --check-bench) bench=1; check_only=1 ;;
    -h|--help) echo "usage: $0 [--check | --bench | --check-bench]"; exit 0 ;;
    *) usage ;;
esac
[ $# -le 1 ] || usage
if [ "$bench" -eq 1 ]; then PACKAGES=("${PACKAGES_BENCH[@]}"); fi

# A package counts as present only when fully installed ("install ok installed");
# half-configured or removed-but-not-purged ones are missing.
missing=()
for p in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || missing+=("$p")
done

# node and npm: whatever provides the commands (nodesource's nodejs ships npm
# and conflicts with Debian's npm package).
if [ "$bench" -eq 0 ] && ! { command -v node && command -v npm; } >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
    [ "$check_only" -eq 1 ] || echo "setup: all ${#PACKAGES[@]} packages present"
    exit 0
fi

if [ "$check_only" -eq 1 ]; then
    echo "missing packages: ${missing[*]}"
    exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "setup: missing packages: ${missing[*]}" >&2
        echo "setup: run this script as root (or install sudo) to install them" >&2
        exit 1
    fi
else
    SUDO=()
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Installing must not start system services (nginx on port 80, prometheus on
# 9090, ...): herenow runs its own servers. A policy-rc.d that says "no" for
# the time of the install, unless the machine has one.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod +x "$policy"
    made_policy=1
fi
"${SUDO[@]}" apt-get update
rc=0
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}" || rc=$?
[ "$made_policy" -eq 0 ] || "${SUDO[@]}" rm -f "$policy"
[ "$rc" -eq 0 ] || exit "$rc"

# Verify: a package apt could not install is an error here, not later in make.
still=()
for p in "${missing[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$status" = "install ok installed" ] || still+=("$p")
done
if [ ${#still[@]} -ne 0 ]; then
    echo "setup: still missing after apt-get install: ${still[*]}" >&2
    exit 1
fi
echo "setup: done"
