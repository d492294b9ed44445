#!/usr/bin/env bash
# widget/build.sh: widget/herenow.js → widget/herenow.min.js (terser), then
# prints the size as the collector serves it: the tokens @HN_B@ / @HN_C@
# replaced by the default paths, gzip -9 (the collector uses zlib level 9).
#
#   widget/build.sh [OUTPUT]      default OUTPUT: widget/herenow.min.js
#
# terser is a devDependency of tests/browser (pinned in its package-lock.json);
# tests/browser/deps.sh runs `npm ci` there when node_modules is missing or stale.
# Nothing of npm is needed at run time: the collector embeds herenow.min.js
# when it is built. Budget: 2048 bytes gzipped (DESIGN.md §6); over it, this
# script fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/widget/herenow.min.js}
browser=$root/tests/browser
terser=$browser/node_modules/terser/bin/terser
budget=2048

bash "$browser/deps.sh"

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
node "$terser" "$root/widget/herenow.js" \
    --ecma 2018 \
    --compress passes=3,pure_getters=true \
    --mangle \
    --format comments=false,ascii_only=true \
    --output "$tmp"
echo >>"$tmp"

# The collector replaces these tokens; each must be there exactly once.
for t in @HN_B@ @HN_C@; do
    n=$(grep -o "$t" "$tmp" | wc -l)
    [ "$n" -eq 1 ] || { echo "build.sh: $t appears $n times in the minified script (want 1)" >&2; exit 1; }
done

cat "$tmp" >"$out"
rm -f "$tmp"
trap - EXIT

size=$(sed "s#@HN_B@#/b#;s#@HN_C@#/hc.js#" "$out" | gzip -9n | wc -c)
echo "$(basename "$out"): $(wc -c <"$out") bytes, $size bytes gzipped as served (budget $budget)"
[ "$size" -le "$budget" ] || { echo "build.sh: over the budget of $budget bytes gzipped" >&2; exit 1; }
