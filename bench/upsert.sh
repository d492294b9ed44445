#!/usr/bin/env bash
# upsert.sh: `make bench-upsert` — the drain's session upsert (api/drain/sql.c,
# printed by hn-drainsql) alone, as a session table lives: SESSIONS sessions
# updated ROUNDS times (one batch each), timed per round in psql, with the
# table's fillfactor at 100 (PostgreSQL's default) and at 70
# (the schema's own, sql/002_history.sql), on a fresh PostgreSQL (fsync on) with
# autovacuum as configured by default. Reports the time per round, the
# share of HOT updates and the table's size with its indexes after the
# rounds.
#
# Environment: SESSIONS=20000 ROUNDS=8 BENCH_DOC=docs/BENCHMARKS.md ("": don't write).
set -euo pipefail
cd "$(dirname "$0")/.."
SESSIONS=${SESSIONS:-20000}
ROUNDS=${ROUNDS:-8}
BENCH_DOC=${BENCH_DOC-docs/BENCHMARKS.md}
source bench/lib/doc-section.sh
export HN_BIN=${HN_BIN:-build/release}
source tests/lib.sh
START_DATE=$(date -u +%Y-%m-%dT%H:%MZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

port=$(hn_free_port)
mkdir -p "$HN_TMP/pg"
chmod 0755 "$HN_TMP"
"$HN_ROOT/scripts/pg.sh" start "$HN_TMP/pg" "$port" >/dev/null
_hn_register HN_PG_DIRS "$HN_TMP/pg"
export HERENOW_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/herenow"
P() { "${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql" -X -At -v ON_ERROR_STOP=1 "$HERENOW_DATABASE_URL" "$@"; }
"$HN_BIN/herenowctl" migrate >/dev/null
W=$(P -c "INSERT INTO widget_configs (key, name, domain) VALUES ('wk_upsertbench', 'bench', 'bench.example') RETURNING id" | head -1)
"$HN_BIN/hn-drainsql" setup >"$HN_TMP/setup.sql"
"$HN_BIN/hn-drainsql" sessions >"$HN_TMP/sessions.sql"

: >"$HN_TMP/results"
for ff in 100 70; do
    P -c "TRUNCATE widget_visitor_sessions" -c "ALTER TABLE widget_visitor_sessions SET (fillfactor = $ff)" \
      -c "VACUUM FULL widget_visitor_sessions" -c "SELECT pg_stat_reset()" >/dev/null
    for round in $(seq 1 "$ROUNDS"); do
        # one batch: every session with a page view now and then, engaged time, a new current page
        {
            echo '\i '"$HN_TMP/setup.sql"
            echo 'BEGIN;'
            echo "INSERT INTO hn_agg SELECT $W, 'sess' || lpad(i::text, 8, '0'), 'vis' || i, 'vh' || i, NULL, NULL, NULL, NULL,"
            echo " '10.0.0.0', 'DE', 'Berlin', 'Berlin',"
            echo " 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36',"
            echo " 'Chrome', '120', 'Linux', NULL, 'desktop', 'de-DE', 1920, 1080,"
            echo " 'https://shop.example.com/landing/' || i, 'https://www.google.com/',"
            echo " 'https://shop.example.com/products/item-' || (i * $round) % 997, 'Product ' || i,"
            echo " CASE WHEN $round = 1 THEN now() END, now(), CASE WHEN $round % 3 = 1 THEN 1 ELSE 0 END, 0, 15000, 0, 0,"
            echo " now() - interval '10 min', now(), NULL FROM generate_series(1, $SESSIONS) i;"
            echo '\timing on'
            cat "$HN_TMP/sessions.sql"
            echo '\timing off'
            echo 'COMMIT;'
        } >"$HN_TMP/round.sql"
        ms=$(P -f "$HN_TMP/round.sql" | awk '/^Time:/ { t = $2 } END { print t }')
        echo "$ff $round $ms" >>"$HN_TMP/results"
        printf 'fillfactor %d, round %d: %s ms\n' "$ff" "$round" "$ms"
    done
    P -c "SELECT $ff, n_tup_hot_upd, n_tup_upd, pg_total_relation_size('widget_visitor_sessions')
          FROM pg_stat_user_tables WHERE relname = 'widget_visitor_sessions'" | tr '|' ' ' >>"$HN_TMP/sizes"
done

row() {   # row FILLFACTOR
    local ff=$1 times last hot upd bytes
    times=$(awk -v f="$ff" '$1 == f { printf "%.0f ", $3 }' "$HN_TMP/results")
    last=$(awk -v f="$ff" -v r="$ROUNDS" '$1 == f && $2 == r { printf "%.0f", $3 }' "$HN_TMP/results")
    read -r _ hot upd bytes < <(awk -v f="$ff" '$1 == f' "$HN_TMP/sizes")
    printf '| %d | %s | %s | %.1f | %d %% | %.0f MB |\n' "$ff" "$times" "$last" \
        "$(awk -v t="$last" -v n="$SESSIONS" 'BEGIN { print t * 1000 / n }')" \
        $((upd > 0 ? hot * 100 / upd : 0)) "$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')"
}
{
    echo "| fillfactor | ms per round (rounds 1…$ROUNDS) | last round, ms | µs per session | HOT updates | table + indexes |"
    echo "|---|---|---|---|---|---|"
    row 100
    row 70
} >"$HN_TMP/table.md"
cat "$HN_TMP/table.md"

if [ -n "$BENCH_DOC" ]; then
    SECTION="## Drain: the session upsert and the table's fillfactor (make bench-upsert)"
    {
        echo "$SECTION"
        echo
        bench_pg_run_line "$START_DATE" "$LOAD_BEFORE"
        echo "Command: \`make bench-upsert\` — the drain's session upsert (api/drain/sql.c) alone in psql: $SESSIONS sessions,"
        echo "$ROUNDS batches that each update all of them (a new current page, engaged time, a page view every third), once"
        echo "with widget_visitor_sessions at PostgreSQL's default fillfactor (100), once at 70 (the schema's setting, sql/002_history.sql)."
        echo
        cat "$HN_TMP/table.md"
        echo
        echo "None of the columns the upsert changes is indexed, so each new row version can stay on its page as a"
        echo "heap-only tuple (no entry in any of the table's five indexes), when the page has room: at fillfactor 100"
        echo "it never has, every update adds five index entries, and the table and its indexes grow with every"
        echo "batch until vacuum catches up; at 70 most updates are HOT and old versions are pruned in place."
    } >"$HN_TMP/section.md"
    bench_write_section "$SECTION" "$HN_TMP/section.md" "$BENCH_DOC"
    echo "bench-upsert: wrote \"$SECTION\" in $BENCH_DOC"
fi
hn_done
