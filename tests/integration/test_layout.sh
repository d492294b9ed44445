#!/usr/bin/env bash
# test_layout.sh: the tree keeps the architecture docs/ARCHITECTURE.md draws —
# each room includes only the rooms it may call (no arrow runs back up, no
# circle between rooms), no source file of the daemons grows past 900 lines,
# and only herenow-collector links the enrichment libraries (libyaml,
# libmaxminddb); PCRE2 is linked by every daemon (rules' regex conditions,
# proto/rule.c, in the api and herenowctl). Needs no servers.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
cd "$HN_ROOT"

# room (files) | the folders its includes may name
RULES=(
    "common/*.c common/*.h|common"
    "proto/*.c proto/*.h|proto common"
    "collector/*.c collector/*.h|collector proto common"
    "api/live/*.c api/live/*.h|api/live proto common"
    "api/drain/*.c api/drain/*.h|api/drain proto common"
    "api/rules/*.c api/rules/*.h|api/rules proto common"
    "api/*.c api/*.h|api api/live api/drain api/rules proto common"
    "ctl/*.c ctl/*.h|ctl proto common"
)
for rule in "${RULES[@]}"; do
    files=${rule%%|*} allowed=${rule#*|} bad=""
    for f in $files; do
        [ -e "$f" ] || continue
        while read -r inc; do
            dir=${inc%/*}
            ok=0
            for a in $allowed; do [ "$dir" = "$a" ] && ok=1; done
            [ $ok = 1 ] || bad+=" $f→$inc"
        done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
    done
    if [ -z "$bad" ]; then hn_ok "${files%% *}: includes only from $allowed"
    else hn_fail "${files%% *}: includes outside $allowed:$bad"; fi
done

long=$(git ls-files -- '*.c' '*.h' | grep -E '^(common|proto|collector|api|ctl)/' | xargs wc -l |
       awk '$2 != "total" && $1 > 900 { printf "%s (%d) ", $2, $1 }')
hn_assert_eq "no source file of the daemons or herenowctl over 900 lines" "" "$long"

for b in herenow-api herenowctl; do
    libs=$(ldd "$HN_BIN/$b" | grep -oE 'lib(yaml-0|maxminddb)\.so' | sort -u | tr '\n' ' ' || true)
    hn_assert_eq "$b links neither libyaml nor libmaxminddb" "" "$libs"
    libs=$(ldd "$HN_BIN/$b" | grep -oE 'libpcre2-8\.so' | sort -u || true)
    hn_assert_eq "$b links PCRE2 (rules' regex conditions)" "libpcre2-8.so" "$libs"
done
libs=$(ldd "$HN_BIN/herenow-collector" | grep -oE 'lib(pcre2-8|yaml-0|maxminddb)\.so' | sort -u | wc -l)
hn_assert_eq "herenow-collector links all three (enrichment)" 3 "$libs"

hn_done
