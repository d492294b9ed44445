#!/usr/bin/env bash
# notes_live.sh: what notes, tags and bans (docs/RULES.md §5) cost the live
# list: GET …/active-visitors?limit=100 at LIVE_SESSIONS (100,000) live
# sessions on one widget, server-side time from the api's access log (its
# `ms=` field, N requests one after another), in three states:
#   none:   the widget has no annotations (every row gets the constant members)
#   tagged: TAGGED (10,000) of the live visitors tagged "vip", with a note
#           each (the rows are looked up in the widget's annotations cache)
#   ?tag=vip: the live list filtered to them
# BASE_API=path/to/another/herenow-api runs that binary too, on the same
# data, its requests interleaved with ours (an A/B on a noisy machine).
# Not part of `make bench-api`; run by hand: bench/notes_live.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
HN_BIN=${HN_BIN:-build/release}
LIVE_SESSIONS=${LIVE_SESSIONS:-100000} TAGGED=${TAGGED:-10000} N=${N:-300}
source tests/lib.sh
CTL="$HN_BIN/herenowctl"
hn_start_redis
hn_start_pg
"$CTL" migrate >/dev/null
read -r W _ <<<"$(hn_widget_add --name bench --domain bench.example)"
TOK=$("$CTL" token create --all --name bench 2>/dev/null)
FILL='local w, first, last, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local z = {}
for i = first, last do
  local sid = string.format("benchsess%08d", i)
  redis.call("HSET", "hn:sess:{" .. w .. "}:" .. sid, "last_seen", now, "status", "active", "started", now - 60000,
    "url", "https://bench.example/pricing/item-" .. i, "title", "Pricing plans | Bench", "pageviews", "3",
    "country", "DE", "browser", "Chrome", "os", "Linux", "device", "desktop", "visitor", string.format("v%08d", i))
  z[#z + 1] = now - (i % 250000); z[#z + 1] = sid
  if #z >= 2000 then redis.call("ZADD", "hn:live:{" .. w .. "}", unpack(z)); z = {} end
end
if #z > 0 then redis.call("ZADD", "hn:live:{" .. w .. "}", unpack(z)) end
return last - first + 1'
SHA=$(hn_redis SCRIPT LOAD "$FILL")
now=$(($(date +%s%N) / 1000000))
for ((i = 1; i <= LIVE_SESSIONS; i += 10000)); do
    hn_redis EVALSHA "$SHA" 0 "$W" "$i" "$((i + 9999 < LIVE_SESSIONS ? i + 9999 : LIVE_SESSIONS))" "$now" >/dev/null
done
hn_start_api
BASE="$HN_API_URL/api/visitor-tracking/widgets/$W/active-visitors"
APIS=(api)
if [ -n "${BASE_API:-}" ]; then      # another herenow-api binary on the same data, requests interleaved
    port=$(hn_free_port)
    hn_spawn base env HERENOW_API_LISTEN="127.0.0.1:$port" HERENOW_DRAIN=off "$BASE_API"
    hn_wait_for 10 "the other api answers" curl -fsS "http://127.0.0.1:$port/livez"
    OTHER="http://127.0.0.1:$port/api/visitor-tracking/widgets/$W/active-visitors"
    APIS=(api base)
fi
# run LABEL QUERY: N requests; median and p99 of the server's ms, bytes of one answer
run() {
    local a before=() bytes
    for a in "${APIS[@]}"; do before+=("$(grep -c 'route=active_visitors' "$HN_TMP/$a.log" || true)"); done
    for ((k = 0; k < N; k++)); do
        curl -fsS -o /dev/null -H "Authorization: Bearer $TOK" "$BASE?$2"
        [ -z "${OTHER:-}" ] || curl -sS -o /dev/null -H "Authorization: Bearer $TOK" "$OTHER?$2"
    done
    bytes=$(curl -fsS -H "Authorization: Bearer $TOK" "$BASE?$2" | wc -c)
    for i in "${!APIS[@]}"; do
        a=${APIS[$i]}
        grep 'route=active_visitors' "$HN_TMP/$a.log" | tail -n +$((before[i] + 1)) | head -n "$N" | grep ' status=200 ' |
            sed -E 's/.* ms=([0-9.]+).*/\1/' | sort -n |
            awk -v l="$1 ($a)" -v b="$bytes" '{ v[NR] = $1 } END { if (NR) printf "| %s | %d | %.2f | %.2f | %d |\n", l, NR, v[int(NR * 0.5) + 1], v[int(NR * 0.99)], b }'
    done
}
echo "| active-visitors limit=100, $LIVE_SESSIONS live | requests | p50 ms | p99 ms | bytes |"
echo "|---|---|---|---|---|"
run "no annotations" "limit=100"
hn_psql "INSERT INTO visitor_tags (widget_id, subject_kind, subject, tag)
         SELECT $W, 'visitor', format('v%s', lpad(i::text, 8, '0')), 'vip'
         FROM generate_series(1, $LIVE_SESSIONS, $LIVE_SESSIONS / $TAGGED) i;
         INSERT INTO visitor_notes (widget_id, subject_kind, subject, body)
         SELECT $W, 'visitor', format('v%s', lpad(i::text, 8, '0')), 'a note'
         FROM generate_series(1, $LIVE_SESSIONS, $LIVE_SESSIONS / $TAGGED) i" >/dev/null
hn_redis INCR hn:annot:version >/dev/null
run "$TAGGED visitors tagged and noted" "limit=100"
run "?tag=vip ($TAGGED tagged)" "limit=100&tag=vip"
hn_done >/dev/null 2>&1 || true
