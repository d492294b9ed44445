#!/usr/bin/env bash
# test_openapi.sh: docs/openapi.yaml is a valid OpenAPI 3.1 document (swagger-parser, from
# tests/browser's npm tooling), every response schema compiles (ajv, strict), and its operations
# are exactly the daemons' routes: the api's router table (api/router.c), the health routes of
# both daemons, and the collector's public routes (collector/http.c's route kinds, at their
# default paths, and the seed's routes). A route added without a description, or a description of a route that does
# not exist, fails here. Whether the answers fit the schemas is checked by the API tests
# themselves (hn_oa_curl, tests/lib.sh). Needs no servers.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$HN_ROOT"

command -v node >/dev/null || { hn_fail "node is needed (apt-get install nodejs npm)"; hn_done; }
hn_assert_cmd "tests/browser: npm ci from package-lock.json (when needed)" bash tests/browser/deps.sh

ROUTES=$HN_TMP/routes

# The api: every entry of the route table, "HN_<METHOD>, WIDGETS|SESSIONS "/rest"".
perl -0777 -ne 'while (/HN_(GET|POST|PUT|DELETE),\s*(WIDGETS|SESSIONS)\s*(?:"([^"]*)")?/g) {
    print "$1 /api/visitor-tracking/", lc $2, ($3 // ""), "\n" }' api/router.c >"$ROUTES"
entries=$(grep -cE '^\s*\[HN_RT_[A-Z_]+\]\s*=\s*\{' api/router.c)
hn_assert_eq "api/router.c: every entry of the route table read ($entries)" "$entries" "$(wc -l <"$ROUTES")"

# Health routes of both daemons (GET; HEAD is answered as GET).
perl -ne 'print "GET $1\n" while /strcmp\(path, "(\/[a-z]+)"\) == 0/g' api/server_health.c collector/admin.c |
    sort -u >>"$ROUTES"
hn_assert_eq "both daemons: /livez, /readyz, /metrics" 3 "$(grep -cE '^GET /(livez|readyz|metrics)$' "$ROUTES")"

# The collector: its route kinds (enum route in collector/http.c), each at its default path
# (common/config.c, collector/collector.h) with the methods it answers. A kind missing here fails.
default_path() { sed -n "s/.*{\"$1\", T_STR, OFF([a-z_]*), \"\([^\"]*\)\".*/\1/p" common/config.c; }
downlink=$(sed -n 's/^#define HN_CHAT_DOWNLINK_PATH "\([^"]*\)".*/\1/p' collector/collector.h)
seed_prefix=$(sed -n 's/^#define HN_SEED_PATH_PREFIX "\([^"]*\)".*/\1/p' collector/httpmap.h)
seed_names=$(sed -n 's/^ *{"\(track-[a-z]*\)", HN_SEED_[A-Z]*},.*/\1/p' proto/seed.c)
hn_assert_eq "collector: the seed's routes read (proto/seed.c, collector/httpmap.h)" \
    "3 /api/visitor-tracking/public/widget/" "$(echo $seed_names | wc -w) $seed_prefix"
kinds=$(perl -ne 'print join("\n", map { s/^\s+|\s+$//gr } split /,/, $1), "\n" if /^enum route \{(.*)\}/' collector/http.c)
unknown=""
for k in $kinds; do
    case $k in
    R_NONE) ;;
    R_BEACON) printf 'POST %s\nOPTIONS %s\n' "$(default_path HTTP_BEACON_PATH)" "$(default_path HTTP_BEACON_PATH)" ;;
    R_PIXEL) printf 'GET %s\nOPTIONS %s\n' "$(default_path HTTP_PIXEL_PATH)" "$(default_path HTTP_PIXEL_PATH)" ;;
    R_SCRIPT) echo "GET $(default_path HTTP_SCRIPT_PATH)" ;;
    R_CHAT_SCRIPT) echo "GET $(default_path CHAT_SCRIPT_PATH)" ;;
    R_CHAT) printf 'GET %s\nOPTIONS %s\n' "$downlink" "$downlink" ;;
    R_SEED) for n in $seed_names; do printf 'POST %s:widgetKey/%s\nOPTIONS %s:widgetKey/%s\n' "$seed_prefix" "$n" "$seed_prefix" "$n"; done ;;
    *) unknown+=" $k" ;;
    esac
done >>"$ROUTES"
hn_assert_eq "collector/http.c: every route kind has its paths and methods here" "" "$unknown"
hn_assert_eq "collector: default paths read" 0 "$(grep -cE '^[A-Z]+ $' "$ROUTES" || true)"

out=$HN_TMP/lint.out
rc=0
node tests/browser/openapi.mjs lint docs/openapi.yaml "$ROUTES" >"$out" 2>&1 || rc=$?
cat "$out"
p=$(grep -c '^ok - ' "$out" || true)
f=$(grep -c '^not ok - ' "$out" || true)
HN_PASSED=$((HN_PASSED + p))
HN_FAILED=$((HN_FAILED + f))
[ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || hn_fail "openapi.mjs lint exited with status $rc"
[ $((p + f)) -ge 4 ] || hn_fail "openapi.mjs lint ran fewer checks than it has ($((p + f)))"

hn_done
