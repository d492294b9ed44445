#!/usr/bin/env bash
# widget/build.sh: the browser scripts, minified with terser, then prints
# each one's size as the collector serves it (the path tokens replaced by
# the default paths, gzip -9: the collector uses zlib level 9).
#
#   widget/build.sh                 both: herenow.min.js and herenow-chat.min.js
#   widget/build.sh core [OUTPUT]   widget/herenow.js → OUTPUT (default widget/herenow.min.js)
#   widget/build.sh chat [OUTPUT]   widget/herenow-chat.js → OUTPUT (default widget/herenow-chat.min.js)
#
# terser is a devDependency of tests/browser (pinned in its package-lock.json);
# tests/browser/deps.sh runs `npm ci` there when node_modules is missing or stale.
# Nothing of npm is needed at run time: the collector embeds the .min.js files
# when it is built. Budgets, gzipped as served: the core 2048 bytes (DESIGN.md
# §6), the chat script 6144 (docs/CHAT.md); over them, this script fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
browser=$root/tests/browser
terser=$browser/node_modules/terser/bin/terser

if [ $# -eq 0 ]; then
    "$0" core
    exec "$0" chat
fi
case "$1" in
core) src=herenow.js; def=herenow.min.js; budget=2048; tokens="@HN_B@ @HN_C@" ;;
chat) src=herenow-chat.js; def=herenow-chat.min.js; budget=6144; tokens="@HN_V@" ;;
*) echo "usage: widget/build.sh [core|chat [OUTPUT]]" >&2; exit 2 ;;
esac
out=${2:-$root/widget/$def}

bash "$browser/deps.sh"

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
node "$terser" "$root/widget/$src" \
    --ecma 2018 \
    --compress passes=3,pure_getters=true \
    --mangle \
    --format comments=false,ascii_only=true \
    --output "$tmp"
echo >>"$tmp"

# The collector replaces these tokens; each must be there exactly once.
for t in $tokens; do
    n=$(grep -o "$t" "$tmp" | wc -l)
    [ "$n" -eq 1 ] || { echo "build.sh: $t appears $n times in the minified $src (want 1)" >&2; exit 1; }
done

cat "$tmp" >"$out"
rm -f "$tmp"
trap - EXIT

size=$(sed "s#@HN_B@#/b#;s#@HN_C@#/hc.js#;s#@HN_V@#/v#" "$out" | gzip -9n | wc -c)
echo "$(basename "$out"): $(wc -c <"$out") bytes, $size bytes gzipped as served (budget $budget)"
[ "$size" -le "$budget" ] || { echo "build.sh: over the budget of $budget bytes gzipped" >&2; exit 1; }
