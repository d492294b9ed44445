#!/usr/bin/env bash
# api.sh: `make bench-api` — latency of herenow-api's read routes on a large
# data set, against the HTTP floor of the same process, measured in the same
# run (issue 3).
#
#   live:     LIVE_SESSIONS (100,000) sessions on one widget in Redis — the
#             hn:live:{w} ZSET and one hn:sess:{w}:<sid> hash per session with
#             the fields of docs/PROTOCOL.md §9 — written by a Lua script
#             inside Redis (EVALSHA, 10,000 sessions per call). Scores are
#             now − random(0..250 s), and the whole set is written again
#             right before each round, so every session is inside the
#             default live window (HERENOW_LIVE_WINDOW_S=300) while it is
#             measured. No collector or trimmer runs.
#   history:  PAGE_VIEWS (10,000,000) page views over DAYS (30) days,
#             generated in SQL (≈ 2 M sessions, 200 paths), plus the custom
#             and chat events, the session rows and the rollups the drain
#             would have written for them (api/drain/sql.c: sessions,
#             rollup, dims, aggregated over the generated rows), then
#             VACUUM ANALYZE. Each generation step is timed.
#   two years: a second widget with YEARS_DAYS (730) days of rollups only —
#             one widget_rollup_hourly row per hour, and per day 200 page
#             paths, 20 referrers, 12 countries, 8 browsers, 5 OSes and 3
#             devices in widget_rollup_dims — for the ranges beyond 400 days
#             that the rollup routes take (docs/API.md, "Time ranges").
#
# Then herenow-api (HERENOW_DRAIN=off, every other setting at its default)
# and, per round (RUNS rounds, rows interleaved so that the machine's noise
# spreads over all of them): refill Redis, then one `wrk --latency` of
# DURATION seconds per row. Reported: medians over the rounds of p50, p99
# and requests/s; /livez (no auth, no Redis, no PostgreSQL) at the same
# concurrencies is the HTTP floor of the same process. The api's access log
# gives the server-side time of every request (its `ms=` field), reported
# next to what wrk saw. One EXPLAIN (ANALYZE, BUFFERS) per PostgreSQL query
# after the runs (warm cache, as measured). A CHECKPOINT and a sync come
# between the generation and the runs, so that the load's dirty pages are not
# flushed while latency is measured.
#
# Environment: RUNS=3 DURATION=10 (s) LIVE_SESSIONS=100000 PAGE_VIEWS=10000000
# DAYS=30 YEARS_DAYS=730 GEN_JOBS=2 (parallel psql sessions for the page views)
# BENCH_DOC=docs/BENCHMARKS.md ("" : don't write) BENCH_NOTES=bench/lib/api-notes.md
# ONLY (experiments): an extended regex; only the rows whose name matches run (the
# /livez rows always run: they are the floor). HN_KEEP_TMP=1 keeps the servers' directories, logs and wrk outputs.
# API_PREFIX (experiments): a command herenow-api runs under; named in the report.
set -euo pipefail
cd "$(dirname "$0")/.."
CMDLINE="make bench-api"
for v in RUNS DURATION LIVE_SESSIONS PAGE_VIEWS DAYS YEARS_DAYS GEN_JOBS API_PREFIX ONLY; do
    if [ -n "${!v+x}" ]; then CMDLINE="$v=\"${!v}\" $CMDLINE"; fi
done
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
LIVE_SESSIONS=${LIVE_SESSIONS:-100000}
PAGE_VIEWS=${PAGE_VIEWS:-10000000}
DAYS=${DAYS:-30}
YEARS_DAYS=${YEARS_DAYS:-730}
GEN_JOBS=${GEN_JOBS:-2}
BENCH_DOC=${BENCH_DOC-docs/BENCHMARKS.md}
BENCH_NOTES=${BENCH_NOTES-bench/lib/api-notes.md}
source bench/lib/doc-section.sh
export HN_BIN=${HN_BIN:-build/release}
source tests/lib.sh

command -v wrk >/dev/null || { echo "bench-api: wrk not found (apt-get install wrk)" >&2; exit 1; }
command -v redis-cli >/dev/null || { echo "bench-api: redis-cli not found" >&2; exit 1; }

T_START=$(date +%s)
START_DATE=$(date -u +%Y-%m-%dT%H:%MZ)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
RES="$HN_TMP/results"      # row run p50_ms p99_ms rps non2xx errors
: >"$RES"
say() { echo "bench-api: $*"; }
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now_s)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- servers, schema, widget, token ---------------------------------------------------------------
hn_start_redis
hn_start_pg
PSQL="${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/psql"
psql_q() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$HERENOW_DATABASE_URL" "$@"; }
"$HN_BIN/herenowctl" migrate >/dev/null
WID=$("$HN_BIN/herenowctl" widget add --name bench --domain bench.example | awk '/^id:/ { print $2 }')
WID2=$("$HN_BIN/herenowctl" widget add --name bench-2y --domain two.bench.example | awk '/^id:/ { print $2 }')
TOKEN=$("$HN_BIN/herenowctl" token create --all --name bench 2>/dev/null)
[ -n "$WID" ] && [ -n "$TOKEN" ] || { hn_fail "widget and token created"; exit 1; }

# ---- history in PostgreSQL ----------------------------------------------------------------------------
# Step timings go to $HN_TMP/gen (name seconds).
: >"$HN_TMP/gen"
step() {   # step NAME CMD...: runs CMD, records its wall time
    local name=$1 t0
    shift
    t0=$(now_s)
    "$@"
    echo "$name $(elapsed "$t0")" >>"$HN_TMP/gen"
    say "  $name: $(elapsed "$t0") s"
}

sql_sessions_plan() {
    psql_q -v days="$DAYS" -v pv="$PAGE_VIEWS" <<'SQL'
SET TIME ZONE 'UTC';
SET jit = off;
SET work_mem = '256MB';
SELECT setseed(0.4242);
SELECT hn_ensure_partitions(current_date - :days - 1, current_date + 1);
-- 200 paths (index 0 the most visited) and their titles
CREATE UNLOGGED TABLE bench_paths AS
SELECT i, CASE WHEN i = 0 THEN '/'
               WHEN i < 10 THEN '/' || (ARRAY['pricing','features','blog','docs','about','contact','careers','support','integrations'])[i]
               ELSE '/' || (ARRAY['blog','docs','products','help','integrations','customers','changelog','compare'])[i % 8 + 1]
                    || '/' || (ARRAY['getting-started','how-we-cut-response-time-in-half','live-chat-best-practices','billing',
                                     'api-reference','widget-installation','zendesk','slack','case-study','release'])[i % 10 + 1]
                    || '-' || i END AS path,
       (ARRAY['Bench Example - live chat for your website','Pricing plans','Features overview','Blog','Documentation',
              'About us - our team','Contact sales','Careers at Bench Example','Help center','Integrations'])[i % 10 + 1]
         || CASE WHEN i >= 10 THEN ': article ' || i ELSE '' END || ' | Bench Example' AS title
  FROM generate_series(0, 199) i;
ANALYZE bench_paths;
CREATE UNLOGGED TABLE bench_geo (i int, country text, region text, city text, lang text);
INSERT INTO bench_geo VALUES (0,'US','CA','San Francisco','en-US'),(1,'GB','ENG','London','en-GB'),
  (2,'DE','BE','Berlin','de-DE'),(3,'IN','KA','Bengaluru','en-IN'),(4,'FR','IDF','Paris','fr-FR'),
  (5,'BR','SP','Sao Paulo','pt-BR'),(6,'CA','ON','Toronto','en-CA'),(7,'NL','NH','Amsterdam','nl-NL'),
  (8,'ES','MD','Madrid','es-ES'),(9,'AU','NSW','Sydney','en-AU'),(10,'JP','13','Tokyo','ja-JP'),
  (11,'PL','14','Warsaw','pl-PL');
CREATE UNLOGGED TABLE bench_dev (i int, browser text, bv text, os text, ov text, device text, ua text);
INSERT INTO bench_dev VALUES
  (0,'Chrome','120.0.6099.129','Windows','10','desktop','Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'),
  (1,'Chrome','120.0.6099.129','macOS','10.15.7','desktop','Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'),
  (2,'Chrome Mobile','120.0.6099.144','Android','10','mobile','Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36'),
  (3,'Mobile Safari','17.1','iOS','17.1.2','mobile','Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1'),
  (4,'Safari','17.1','macOS','10.15.7','desktop','Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15'),
  (5,'Firefox','121.0','Windows','10','desktop','Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0'),
  (6,'Edge','120.0.2210.91','Windows','10','desktop','Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91'),
  (7,'Mobile Safari','17.1','iOS','17.1.2','tablet','Mozilla/5.0 (iPad; CPU OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1');

-- Sessions: start times over :days days ending 5 min ago (diurnal and
-- weekly shape by rejection), page views per session (40 % bounces, mean
-- ≈ 5, at most 200), cut where the running total reaches :pv. 35 % of the
-- sessions reuse an earlier visitor id. Physically in start order, so the
-- page views come out in (roughly) time order, as the drain inserts them.
CREATE UNLOGGED TABLE bench_sess AS
WITH c AS (
  SELECT g AS n, now() - (random() * (:days * 86400 - 600)) * interval '1 second' - interval '300 seconds' AS started,
         random() AS u
    FROM generate_series(1, (:pv / 5 * 1.75)::bigint) g),
f AS (
  SELECT n, started,
         CASE WHEN random() < 0.4 THEN 1 ELSE least(200, 2 + floor(-ln(1 - random()) * 6.2)::int) END AS npv
    FROM c
   WHERE u < (0.3 + 0.7 * (0.5 - 0.5 * cos(2 * pi() * (extract(hour FROM started) - 4) / 24)))
             * CASE WHEN extract(isodow FROM started) >= 6 THEN 0.7 ELSE 1 END),
k AS (
  SELECT *, sum(npv) OVER (ORDER BY n) AS cum FROM f),
r AS (
  SELECT n, started, least(npv, :pv - (cum - npv))::int AS npv,
         10 + floor(random() * 110)::int AS gap0, floor(200 * random() ^ 3)::int AS landing_i,
         floor(200 * random() ^ 3)::int AS exit0
    FROM k WHERE cum - npv < :pv)
SELECT row_number() OVER (ORDER BY started) AS sn, started, npv,
       translate(left(encode(decode(md5('s' || n), 'hex'), 'base64'), 22), '+/', '-_') AS session_id,
       left(md5('v' || CASE WHEN random() < 0.35 THEN floor(random() * n)::bigint ELSE n END), 16) AS visitor_id,
       -- seconds between page views; the last one lands before now
       least(gap0, greatest(0, floor(extract(epoch FROM now() - started) / (npv + 1))::int - 1)) AS gap_s,
       floor(random() * 45000)::int AS e_ms,
       landing_i,
       CASE WHEN npv = 1 THEN landing_i ELSE exit0 END AS exit_i,
       CASE WHEN random() < 0.45 THEN NULL ELSE (ARRAY['https://www.google.com/','https://www.google.com/','https://www.google.com/',
            'https://www.bing.com/search?q=live+chat+software','https://duckduckgo.com/','https://t.co/Ab3dEf9Xyz',
            'https://www.linkedin.com/feed/','https://news.ycombinator.com/item?id=38712345','https://github.com/bench-example/widget',
            'https://www.reddit.com/r/smallbusiness/comments/18abcde/','https://newsletter.example.org/issue/42',
            'https://www.facebook.com/'])[1 + floor(random() * 12)::int] END AS referrer,
       random() < 0.25 AS utm,
       floor(12 * random() ^ 2)::int AS geo_i,
       floor(random() * 8)::int AS dev_i,
       floor(random() * 8)::int AS scr_i,
       (1 + floor(random() * 223)::int) || '.' || floor(random() * 256)::int || '.' || floor(random() * 256)::int || '.0' AS ip,
       -- 4 %: chat_opened and 0..5 chat_message_sent; 8 %: one custom event
       CASE WHEN random() < 0.04 THEN floor(random() ^ 2 * 6)::int ELSE -1 END AS chat_msgs,
       CASE WHEN random() < 0.08 THEN (ARRAY['signup_click','video_play','pricing_toggle','newsletter_subscribe'])[1 + floor(random() * 4)::int] END AS custom_ev
  FROM r
 ORDER BY started;
ALTER TABLE bench_sess ADD PRIMARY KEY (sn);
ANALYZE bench_sess;
SQL
}

# Secondary indexes of the tables loaded in bulk: dropped before the load and
# built again after it from their own definitions (pg_get_indexdef), so the
# schema ends exactly as migrated. Primary keys and unique constraints stay.
save_and_drop_indexes() {
    psql_q >"$HN_TMP/indexes.sql" <<'SQL'
SELECT pg_get_indexdef(i.indexrelid) || ';'
  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
 WHERE i.indrelid IN ('widget_page_views'::regclass, 'widget_visitor_events'::regclass,
                      'widget_visitor_sessions'::regclass)
   AND NOT i.indisprimary AND NOT i.indisunique
 ORDER BY i.indrelid::regclass::text, c.relname;
SQL
    psql_q <<'SQL'
DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
              WHERE i.indrelid IN ('widget_page_views'::regclass, 'widget_visitor_events'::regclass,
                                   'widget_visitor_sessions'::regclass)
                AND NOT i.indisprimary AND NOT i.indisunique LOOP
        EXECUTE format('DROP INDEX %I', r.relname);
    END LOOP;
END $$;
SQL
}

# Page views of sessions lo..hi. Page view k of a session comes k-1 gaps
# after its start; event ids in the collector's UUIDv7 layout (48 bits of
# ms, version 7), unique by (session number, k).
sql_page_views() {
    psql_q -v w="$WID" -v lo="$1" -v hi="$2" <<'SQL'
SET TIME ZONE 'UTC';
SET jit = off;
INSERT INTO widget_page_views (event_id, recv_at, widget_id, session_id, visitor_id, seq, url, path,
                               title, referrer, engaged_ms, transport)
SELECT (left(h, 8) || '-' || substr(h, 9, 4) || '-7' || lpad(to_hex(k), 3, '0') || '-8'
          || lpad(to_hex(s.sn), 15, '0'))::uuid,
       t, :w, s.session_id, s.visitor_id, (k - 1) * 4 + 1,
       'https://bench.example' || p.path
         || CASE WHEN k = 1 AND s.utm THEN '?utm_source=newsletter&utm_medium=email&utm_campaign=spring' ELSE '' END,
       p.path, p.title,
       CASE WHEN k = 1 THEN s.referrer ELSE 'https://bench.example/' END,
       CASE WHEN k = 1 THEN 0 ELSE s.e_ms END, 2
  FROM bench_sess s
 CROSS JOIN LATERAL generate_series(1, s.npv) k
 CROSS JOIN LATERAL (SELECT s.started + (k - 1) * (s.gap_s + 0.137) * interval '1 second' AS t,
                            CASE WHEN k = 1 THEN s.landing_i WHEN k = s.npv THEN s.exit_i
                                 ELSE floor(200 * random() ^ 3)::int END AS pi) x
 CROSS JOIN LATERAL (SELECT lpad(to_hex((extract(epoch FROM x.t) * 1000)::bigint), 12, '0') AS h) y
  JOIN bench_paths p ON p.i = x.pi
 WHERE s.sn BETWEEN :lo AND :hi;
SQL
}

# Custom and chat events, and the session rows as the drain leaves them:
# over ones swept (inactive, ended at their last record), the last 5
# minutes' still active. Every column as sql_sessions computes it from the
# session's records.
sql_events_sessions() {
    psql_q -v w="$WID" <<'SQL'
SET TIME ZONE 'UTC';
SET jit = off;
SET work_mem = '256MB';
INSERT INTO widget_visitor_events (event_id, recv_at, widget_id, session_id, visitor_id, seq,
                                   event_type, event_name, url, event_data, engaged_ms, transport)
SELECT (left(h, 8) || '-' || substr(h, 9, 4) || '-7' || lpad(to_hex(200 + e.j), 3, '0') || '-8'
          || lpad(to_hex(s.sn), 15, '0'))::uuid,
       t, :w, s.session_id, s.visitor_id, 2 + 4 * e.j, 'ev', e.name,
       'https://bench.example' || p.path, e.data, 0, 2
  FROM bench_sess s
  JOIN bench_paths p ON p.i = s.landing_i
 CROSS JOIN LATERAL (
       SELECT 0 AS j, 'chat_opened' AS name, NULL::jsonb AS data WHERE s.chat_msgs >= 0
       UNION ALL SELECT m, 'chat_message_sent', NULL FROM generate_series(1, s.chat_msgs) m
       UNION ALL SELECT 10, s.custom_ev, '{"plan": "pro", "source": "hero"}'::jsonb
                  WHERE s.custom_ev IS NOT NULL) e
 CROSS JOIN LATERAL (SELECT s.started + (1 + e.j) * interval '1 second' AS t) x
 CROSS JOIN LATERAL (SELECT lpad(to_hex((extract(epoch FROM x.t) * 1000)::bigint), 12, '0') AS h) y
 ORDER BY s.sn, e.j;

INSERT INTO widget_visitor_sessions (widget_id, session_id, visitor_id, visitor_hash, ip_address,
    country, region, city, user_agent, browser, browser_version, os, os_version, device_type,
    language, screen_width, screen_height, landing_page, referrer, current_page_url,
    current_page_title, is_active, page_views, events_count, engaged_ms, total_time_seconds,
    last_active_at, session_started_at, session_ended_at, messages_sent, chat_events, has_chatted,
    first_pv_at, last_pv_at, rollup_hour)
SELECT :w, s.session_id, s.visitor_id, s.visitor_id, s.ip, g.country, g.region, g.city, d.ua,
       d.browser, d.bv, d.os, d.ov, d.device, g.lang,
       (ARRAY[1920,1366,1536,390,412,1440,2560,768])[s.scr_i + 1],
       (ARRAY[1080,768,864,844,915,900,1440,1024])[s.scr_i + 1],
       'https://bench.example' || lp.path
         || CASE WHEN s.utm THEN '?utm_source=newsletter&utm_medium=email&utm_campaign=spring' ELSE '' END,
       s.referrer,
       'https://bench.example' || xp.path
         || CASE WHEN s.utm AND s.npv = 1 THEN '?utm_source=newsletter&utm_medium=email&utm_campaign=spring' ELSE '' END,
       xp.title, v.last_active > now() - interval '300 seconds', s.npv, v.events,
       v.engaged, (v.engaged / 1000)::integer, v.last_active, s.started,
       CASE WHEN v.last_active > now() - interval '300 seconds' THEN NULL ELSE v.last_active END,
       greatest(s.chat_msgs, 0), v.chat, v.chat > 0, s.started, v.last_pv, date_trunc('hour', s.started)
  FROM bench_sess s
  JOIN bench_paths lp ON lp.i = s.landing_i
  JOIN bench_paths xp ON xp.i = s.exit_i
  JOIN bench_geo g ON g.i = s.geo_i
  JOIN bench_dev d ON d.i = s.dev_i
 CROSS JOIN LATERAL (
       SELECT s.started + (s.npv - 1) * (s.gap_s + 0.137) * interval '1 second' AS last_pv,
              greatest(s.started + (s.npv - 1) * (s.gap_s + 0.137) * interval '1 second',
                       CASE WHEN s.custom_ev IS NOT NULL THEN s.started + interval '11 seconds'
                            WHEN s.chat_msgs >= 0 THEN s.started + (1 + s.chat_msgs) * interval '1 second' END) AS last_active,
              CASE WHEN s.chat_msgs >= 0 THEN 1 + s.chat_msgs ELSE 0 END
                + CASE WHEN s.custom_ev IS NOT NULL THEN 1 ELSE 0 END AS events,
              CASE WHEN s.chat_msgs >= 0 THEN 1 + s.chat_msgs ELSE 0 END AS chat,
              (s.npv - 1)::bigint * s.e_ms AS engaged) v
 ORDER BY s.sn;
SQL
}

# Rebuilds the dropped indexes: page views' in one session, the others' in
# another (GEN_JOBS > 1: at the same time).
build_indexes() {
    local pids=() f
    # an index of a partitioned table reads "ON ONLY parent": built that way
    # it would not cascade to the partitions
    sed -i 's/ ON ONLY / ON /' "$HN_TMP/indexes.sql"
    grep -F ' ON public.widget_page_views ' "$HN_TMP/indexes.sql" >"$HN_TMP/idx_pv.sql" || true
    grep -vF ' ON public.widget_page_views ' "$HN_TMP/indexes.sql" >"$HN_TMP/idx_other.sql" || true
    for f in "$HN_TMP/idx_pv.sql" "$HN_TMP/idx_other.sql"; do
        { echo "SET maintenance_work_mem = '512MB';"; cat "$f"; } | psql_q -f - &
        pids+=($!)
        [ "$GEN_JOBS" -gt 1 ] || wait "${pids[-1]}"
    done
    for f in "${pids[@]}"; do wait "$f"; done
}

# The rollups: what the drain's sql_rollup and sql_dims add up to once every
# record is in — page views and events in their own hour / UTC day; session
# metrics, the visitor sets and the session dimensions in the session's
# rollup hour / its day; visitors_day in the hour of the visitor's first
# session of that day.
sql_rollups() {
    psql_q -v w="$WID" <<'SQL'
SET TIME ZONE 'UTC';
SET jit = off;
SET work_mem = '512MB';
INSERT INTO widget_visitor_days (widget_id, day, visitor_id)
SELECT DISTINCT widget_id, (rollup_hour AT TIME ZONE 'UTC')::date, visitor_id
  FROM widget_visitor_sessions WHERE widget_id = :w ORDER BY 1, 2, 3;
INSERT INTO widget_visitor_hours (widget_id, hour, visitor_id)
SELECT DISTINCT widget_id, rollup_hour, visitor_id
  FROM widget_visitor_sessions WHERE widget_id = :w ORDER BY 1, 2, 3;
CREATE TEMP TABLE bench_pv_agg AS
SELECT date_trunc('hour', recv_at) AS hour, path, count(*) AS n
  FROM widget_page_views WHERE widget_id = :w GROUP BY 1, 2;
CREATE TEMP TABLE bench_ev_agg AS
SELECT date_trunc('hour', recv_at) AS hour, event_name, count(*) AS n
  FROM widget_visitor_events WHERE widget_id = :w AND event_type = 'ev' GROUP BY 1, 2;
INSERT INTO widget_rollup_hourly (widget_id, hour, page_views, events, sessions, visitors_day,
    visitors_hour, session_pages, engaged_ms, bounces, chat_sessions)
SELECT :w, hour, sum(pv), sum(ev), sum(sess), sum(vd), sum(vh), sum(sp), sum(eng), sum(b), sum(ch) FROM (
  SELECT hour, n AS pv, 0 AS ev, 0 AS sess, 0 AS vd, 0 AS vh, 0 AS sp, 0 AS eng, 0 AS b, 0 AS ch FROM bench_pv_agg
  UNION ALL SELECT hour, 0, n, 0, 0, 0, 0, 0, 0, 0 FROM bench_ev_agg
  UNION ALL SELECT rollup_hour, 0, 0, count(*), 0, 0, sum(page_views), sum(engaged_ms),
                   count(*) FILTER (WHERE page_views < 2), count(*) FILTER (WHERE chat_events > 0)
              FROM widget_visitor_sessions WHERE widget_id = :w GROUP BY rollup_hour
  UNION ALL SELECT first_hour, 0, 0, 0, count(*), 0, 0, 0, 0, 0 FROM (
              SELECT min(rollup_hour) AS first_hour FROM widget_visitor_sessions WHERE widget_id = :w
               GROUP BY (rollup_hour AT TIME ZONE 'UTC')::date, visitor_id) f GROUP BY first_hour
  UNION ALL SELECT hour, 0, 0, 0, 0, count(*), 0, 0, 0, 0
              FROM widget_visitor_hours WHERE widget_id = :w GROUP BY hour
) x GROUP BY hour ORDER BY hour;
INSERT INTO widget_rollup_dims (widget_id, dim, day, value, n)
SELECT :w, dim, day, value, sum(n) FROM (
  SELECT 'page' AS dim, (hour AT TIME ZONE 'UTC')::date AS day, path AS value, n FROM bench_pv_agg
  UNION ALL SELECT 'event', (hour AT TIME ZONE 'UTC')::date, event_name, n
              FROM bench_ev_agg WHERE event_name IS NOT NULL
  UNION ALL SELECT d.dim, (rollup_hour AT TIME ZONE 'UTC')::date, d.value, 1
    FROM widget_visitor_sessions
   CROSS JOIN LATERAL (VALUES
     ('referrer', coalesce(lower(substring(referrer FROM '^[A-Za-z][A-Za-z0-9+.-]*://([^/?#:@]+)')), '(direct)')),
     ('country', coalesce(country, '(unknown)')), ('browser', coalesce(browser, '(unknown)')),
     ('os', coalesce(os, '(unknown)')), ('device', coalesce(device_type, '(unknown)'))) d (dim, value)
   WHERE widget_id = :w
) x GROUP BY dim, day, value ORDER BY dim, day, value;
DROP TABLE bench_sess, bench_paths, bench_geo, bench_dev;
SQL
}

# The two-year widget: rollups only, with the shapes of a busy site (about
# 14,000 page views and 2,800 sessions a day, diurnal), kept past the default
# retention so the drain would leave them.
sql_two_years() {
    psql_q -v w="$WID2" -v days="$YEARS_DAYS" <<'SQL'
SET TIME ZONE 'UTC';
SELECT setseed(0.2424);
UPDATE widget_configs SET retention_days = :days + 30 WHERE id = :w;
INSERT INTO widget_rollup_hourly (widget_id, hour, page_views, events, sessions, visitors_day,
    visitors_hour, session_pages, engaged_ms, bounces, chat_sessions)
SELECT :w, h, s * 5, s / 8, s, s * 3 / 4, s * 9 / 10, s * 5, s * 95000, s * 2 / 5, s / 30
  FROM generate_series(date_trunc('hour', now()) - make_interval(days => :days), date_trunc('hour', now()),
                       interval '1 hour') h,
       LATERAL (SELECT (60 + 50 * sin(extract(hour FROM h) / 24 * 2 * pi()) + random() * 30)::bigint + 1 AS s) x;
INSERT INTO widget_rollup_dims (widget_id, dim, day, value, n)
SELECT :w, v.dim, d::date, v.value, 1 + (random() * v.weight)::bigint
  FROM generate_series(current_date - :days, current_date, interval '1 day') d,
       (SELECT 'page' AS dim, '/' || (ARRAY['blog','docs','products','help','pricing','compare'])[i % 6 + 1] || '/item-' || i AS value,
               4000 / (i + 1) AS weight FROM generate_series(0, 199) i
        UNION ALL SELECT 'referrer', 'ref' || i || '.example', 400 / (i + 1) FROM generate_series(0, 19) i
        UNION ALL SELECT 'country', c, 300 FROM unnest(ARRAY['US','GB','DE','IN','FR','BR','CA','NL','ES','AU','JP','PL']) c
        UNION ALL SELECT 'browser', b, 500 FROM unnest(ARRAY['Chrome','Chrome Mobile','Mobile Safari','Safari','Firefox','Edge','Opera','Samsung Internet']) b
        UNION ALL SELECT 'os', o, 600 FROM unnest(ARRAY['Windows','macOS','Android','iOS','Linux']) o
        UNION ALL SELECT 'device', dv, 1000 FROM unnest(ARRAY['desktop','mobile','tablet']) dv) v
 ORDER BY 1, 2, 3, 4;
SQL
}

page_views_parallel() {
    local n pids=() j lo hi
    n=$(psql_q -c "SELECT max(sn) FROM bench_sess")
    for j in $(seq 0 $((GEN_JOBS - 1))); do
        lo=$((n * j / GEN_JOBS + 1))
        hi=$((n * (j + 1) / GEN_JOBS))
        sql_page_views "$lo" "$hi" &
        pids+=($!)
    done
    # the events and sessions need bench_sess only: alongside
    sql_events_sessions &
    pids+=($!)
    for j in "${pids[@]}"; do wait "$j"; done
}

vacuum_analyze() {
    "${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/vacuumdb" -q -z -j "$GEN_JOBS" -d "$HERENOW_DATABASE_URL"
}

say "generating $PAGE_VIEWS page views over $DAYS days in PostgreSQL ($GEN_JOBS jobs)"
T_GEN=$(now_s)
step "sessions_plan" eval "sql_sessions_plan >/dev/null"
step "drop_indexes" save_and_drop_indexes
step "page_views+events+sessions" page_views_parallel
step "indexes" build_indexes
step "rollups" sql_rollups
step "two_years" eval "sql_two_years >/dev/null"
step "vacuum_analyze" vacuum_analyze
# the load leaves gigabytes of dirty pages: flushed now, not during the runs
step "checkpoint_sync" eval 'psql_q -c CHECKPOINT && sync -f "$HN_TMP"'
GEN_S=$(elapsed "$T_GEN")
say "generation: $GEN_S s"

IFS='|' read -r N_PV N_SESS N_VIS N_EV N_HOURLY N_DIMS DB_SIZE PV_SIZE < <(psql_q -c "
    SELECT (SELECT count(*) FROM widget_page_views), (SELECT count(*) FROM widget_visitor_sessions),
           (SELECT count(DISTINCT visitor_id) FROM widget_visitor_sessions),
           (SELECT count(*) FROM widget_visitor_events), (SELECT count(*) FROM widget_rollup_hourly WHERE widget_id = $WID),
           (SELECT count(*) FROM widget_rollup_dims WHERE widget_id = $WID), pg_size_pretty(pg_database_size(current_database())),
           (SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits
             WHERE inhparent = 'widget_page_views'::regclass)")
# the rollups must agree with the rows (the same totals the drain would give)
CHECK=$(psql_q -c "SELECT (SELECT sum(page_views) FROM widget_rollup_hourly WHERE widget_id = $WID) = $N_PV
                      AND (SELECT sum(sessions) FROM widget_rollup_hourly WHERE widget_id = $WID) = $N_SESS
                      AND (SELECT sum(n) FROM widget_rollup_dims WHERE widget_id = $WID AND dim = 'page') = $N_PV
                      AND (SELECT sum(n) FROM widget_rollup_dims WHERE widget_id = $WID AND dim = 'country') = $N_SESS")
hn_assert_eq "rollups add up to the generated rows" t "$CHECK"
IFS='|' read -r Y_HOURLY Y_DIMS Y_PAGES < <(psql_q -c "
    SELECT (SELECT count(*) FROM widget_rollup_hourly WHERE widget_id = $WID2),
           (SELECT count(*) FROM widget_rollup_dims WHERE widget_id = $WID2),
           (SELECT count(*) FROM widget_rollup_dims WHERE widget_id = $WID2 AND dim = 'page')")
hn_assert_eq "two years of rollups: one row per hour" $((YEARS_DAYS * 24 + 1)) "$Y_HOURLY"
say "data: $N_PV page views, $N_SESS sessions, $N_VIS visitors, $N_EV events; database $DB_SIZE"

# ---- live sessions in Redis ---------------------------------------------------------------------------
# ARGV: widget, first, last, now_ms, seed. Session i's id and fields depend
# on (seed, its chunk) only, so a refill rewrites the same keys.
FILL_LUA=$(cat <<'LUA'
local w, first, last, now, seed = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
math.randomseed(seed + first)
local R = math.random
local B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
local sec = {'products', 'pricing', 'blog', 'docs', 'about', 'contact', 'careers', 'support', 'features', 'integrations'}
local ttl = {'Products', 'Pricing plans and features', 'How we cut our response time in half', 'Getting started guide',
    'About us - our team', 'Contact sales', 'Careers at Bench Example', 'Help center: billing questions',
    'Product tour: live chat', 'Integrations: Slack, Zendesk and more'}
local refs = {'https://www.google.com/', 'https://www.bing.com/search?q=live+chat+software', 'https://duckduckgo.com/',
    'https://t.co/Ab3dEf9Xyz', 'https://www.linkedin.com/feed/', 'https://news.ycombinator.com/item?id=38712345',
    'https://www.facebook.com/', 'https://github.com/bench-example/widget'}
local cc = {'US', 'GB', 'DE', 'FR', 'IN', 'BR', 'CA', 'NL', 'ES', 'AU', 'JP', 'PL'}
local city = {'San Francisco', 'London', 'Berlin', 'Paris', 'Bengaluru', 'Sao Paulo', 'Toronto', 'Amsterdam', 'Madrid',
    'Sydney', 'Tokyo', 'Warsaw'}
local region = {'CA', 'ENG', 'BE', 'IDF', 'KA', 'SP', 'ON', 'NH', 'MD', 'NSW', '13', '14'}
local lang = {'en-US', 'en-GB', 'de-DE', 'fr-FR', 'en-IN', 'pt-BR', 'en-CA', 'nl-NL', 'es-ES', 'en-AU', 'ja-JP', 'pl-PL'}
local br = {'Chrome', 'Chrome', 'Chrome Mobile', 'Mobile Safari', 'Safari', 'Firefox', 'Edge', 'Mobile Safari'}
local bv = {'120.0.6099.129', '120.0.6099.129', '120.0.6099.144', '17.1', '17.1', '121.0', '120.0.2210.91', '17.1'}
local os = {'Windows', 'macOS', 'Android', 'iOS', 'macOS', 'Windows', 'Windows', 'iOS'}
local ov = {'10', '10.15.7', '10', '17.1.2', '10.15.7', '10', '10', '17.1.2'}
local dev = {'desktop', 'desktop', 'mobile', 'mobile', 'desktop', 'desktop', 'desktop', 'tablet'}
local scr = {'1920x1080', '1366x768', '1536x864', '390x844', '412x915', '1440x900', '2560x1440', '768x1024'}
local live = 'hn:live:{' .. w .. '}'
local z = {}
for i = first, last do
    local t = {}
    for j = 1, 22 do local k = R(64); t[j] = B64:sub(k, k) end
    local sid = table.concat(t)
    local score = now - R(0, 250000)
    local idle = R() < 0.15
    local si, c, b = R(10), R(12), R(8)
    local url = 'https://bench.example/' .. sec[si] .. '/item-' .. R(5000)
    if R() < 0.3 then url = url .. '?utm_source=newsletter&utm_medium=email&utm_campaign=spring' end
    local h = {'last_seen', string.format('%d', idle and score or score - R(0, 30000)),
        'status', idle and 'idle' or 'active',
        'started', string.format('%d', score - R(0, 1800000)),
        'landing', 'https://bench.example/' .. sec[R(10)] .. '/item-' .. R(5000),
        'url', url, 'title', ttl[si] .. ' | Bench Example',
        'pageviews', tostring(R(1, 12)), 'engaged_ms', tostring(R(0, 600000)),
        'ip', R(1, 223) .. '.' .. R(0, 255) .. '.' .. R(0, 255) .. '.0',
        'lang', lang[c], 'screen', scr[R(8)], 'country', cc[c], 'region', region[c], 'city', city[c],
        'browser', br[b], 'browser_version', bv[b], 'os', os[b], 'os_version', ov[b], 'device', dev[b],
        'visitor', string.format('%08x%08x', R(0, 2147483646), R(0, 2147483646))}
    if R() < 0.6 then h[#h + 1] = 'referrer'; h[#h + 1] = refs[R(8)] end
    if R() < 0.03 then
        h[#h + 1] = 'has_chatted'; h[#h + 1] = '1'
        h[#h + 1] = 'messages_sent'; h[#h + 1] = tostring(R(0, 5))
    end
    local key = 'hn:sess:{' .. w .. '}:' .. sid
    redis.call('DEL', key)
    redis.call('HSET', key, unpack(h))
    z[#z + 1] = score; z[#z + 1] = sid
    if #z >= 2000 then redis.call('ZADD', live, unpack(z)); z = {} end
end
if #z > 0 then redis.call('ZADD', live, unpack(z)) end
return last - first + 1
LUA
)
FILL_SHA=$(hn_redis SCRIPT LOAD "$FILL_LUA")
fill_redis() {
    local now i last
    now=$(($(date +%s%N) / 1000000))
    for ((i = 1; i <= LIVE_SESSIONS; i += 10000)); do
        last=$((i + 9999 < LIVE_SESSIONS ? i + 9999 : LIVE_SESSIONS))
        hn_redis EVALSHA "$FILL_SHA" 0 "$WID" "$i" "$last" "$now" 1 >/dev/null
    done
}
T_FILL=$(now_s)
fill_redis
FILL_S=$(elapsed "$T_FILL")
N_LIVE=$(hn_redis ZCARD "hn:live:{$WID}")
REDIS_MEM=$(hn_redis INFO memory | tr -d '\r' | awk -F: '$1 == "used_memory_human" { print $2 }')
hn_assert_eq "$LIVE_SESSIONS live sessions in Redis" "$LIVE_SESSIONS" "$N_LIVE"
say "redis: $N_LIVE live sessions written in $FILL_S s, $REDIS_MEM"

# ---- the concurrency rollup -------------------------------------------------------------------------------
# What the drain's worker 0 does every few seconds (HERENOW_DRAIN is off here):
# settled minutes into widget_concurrency_minutes, a day per call (the drain
# uses 180 minutes per call), timed — the one-off backfill after the upgrade.
# (only the 30-day widget: the two-year one, not measured here, is marked filled)
psql_q -c "INSERT INTO widget_concurrency_marks (widget_id, settled_to, window_s)
    VALUES ($WID2, date_trunc('minute', now() - interval '300 s'), 300)"
T_CONC=$(now_s)
while [ "$(psql_q -Atc "SELECT hn_fill_concurrency(300, 1440, 60000)")" != 0 ]; do :; done
CONC_S=$(elapsed "$T_CONC")
N_CONC=$(psql_q -Atc "SELECT count(*) FROM widget_concurrency_minutes")
say "concurrency rollup: $N_CONC minute rows filled in $CONC_S s"

# ---- the api ---------------------------------------------------------------------------------------------
API_PORT=$(hn_free_port)
export HERENOW_API_LISTEN="127.0.0.1:$API_PORT" HERENOW_DRAIN=off
# pages/live counts what the live hub lists: room for all LIVE_SESSIONS (default cap 50,000)
export HERENOW_SSE_MAX_SESSIONS=$((LIVE_SESSIONS > 50000 ? LIVE_SESSIONS : 50000))
# API_PREFIX (experiments only): a command the api runs under, e.g.
# "perf record -g -o /tmp/api.perf" or "env LD_PRELOAD=…"; named in the report.
# shellcheck disable=SC2086
hn_spawn api ${API_PREFIX:-} "$HN_BIN/herenow-api"
U="http://127.0.0.1:$API_PORT"
hn_wait_for 10 "herenow-api answers /livez" curl -fsS "$U/livez"
hn_wait_for 10 "herenow-api has loaded the tokens" \
    bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer $TOKEN' '$U/api/visitor-tracking/widgets/$WID/active-visitors?limit=1') != 503 ]"

FROM=$(date -u -d "$DAYS days ago" +%Y-%m-%dT%H:%M:%SZ)
# time travel: an instant in the middle of the history (14:32 UTC, a busy hour), and the
# 6 h / 1 d before it for concurrency
AT=$(date -u -d "$((DAYS / 2)) days ago" +%Y-%m-%dT14:32:00Z)
AT6=$(date -u -d "$AT 6 hours ago" +%Y-%m-%dT%H:%M:%SZ)
AT24=$(date -u -d "$AT 24 hours ago" +%Y-%m-%dT%H:%M:%SZ)
AT7=$(date -u -d "$AT 7 days ago" +%Y-%m-%dT%H:%M:%SZ)
# pages/live: the hub loads the widget's LIVE_SESSIONS at the first ask (a few seconds,
# more on a loaded machine); that one is not what is measured
pages_loaded() { [ "$(curl -s -o /dev/null -w '%{http_code}' -m 30 -H "Authorization: Bearer $TOKEN" \
    "$U/api/visitor-tracking/widgets/$WID/pages/live?limit=1")" = 200 ]; }
T_PAGES=$(now_s)
hn_wait_for 180 "the live hub has loaded the widget for pages/live" pages_loaded
say "pages/live: the hub's first load of $LIVE_SESSIONS sessions took $(elapsed "$T_PAGES") s (load average $(cut -d' ' -f1 /proc/loadavg))"
TO=$(date -u +%Y-%m-%dT%H:%M:%SZ)
FROM2=$(date -u -d "$YEARS_DAYS days ago" +%Y-%m-%dT%H:%M:%SZ)
# name|connections|target p99 ms|url (relative to $U; "livez" rows need no token)
ROWS=(
    "livez c1|1||/livez"
    "livez c4|4||/livez"
    "livez c16|16||/livez"
    "active-visitors limit=100 c1|1|5|/api/visitor-tracking/widgets/$WID/active-visitors?limit=100"
    "active-visitors limit=100 c16|16|5|/api/visitor-tracking/widgets/$WID/active-visitors?limit=100"
    "active-visitors limit=20 c1|1|5|/api/visitor-tracking/widgets/$WID/active-visitors?limit=20"
    "visitor-stats 30 d c4|4|50|/api/visitor-tracking/widgets/$WID/visitor-stats?from=$FROM&to=$TO"
    "timeseries 30 d interval=day c4|4|50|/api/visitor-tracking/widgets/$WID/timeseries?from=$FROM&to=$TO&interval=day"
    "timeseries 30 d interval=hour c4|4|50|/api/visitor-tracking/widgets/$WID/timeseries?from=$FROM&to=$TO&interval=hour"
    "breakdown by=page 30 d c4|4|50|/api/visitor-tracking/widgets/$WID/breakdown?by=page&from=$FROM&to=$TO"
    "sessions limit=100 30 d c4|4|50|/api/visitor-tracking/widgets/$WID/sessions?from=$FROM&to=$TO&limit=100"
    "pages-live limit=100 c1|1|5|/api/visitor-tracking/widgets/$WID/pages/live?limit=100"
    "pages-live limit=100 c16|16|5|/api/visitor-tracking/widgets/$WID/pages/live?limit=100"
    "active-visitors at= limit=100 c4|4|50|/api/visitor-tracking/widgets/$WID/active-visitors?at=$AT&limit=100"
    "concurrency 6 h interval=1m c4|4|50|/api/visitor-tracking/widgets/$WID/concurrency?from=$AT6&to=$AT&interval=1m"
    "concurrency 1 d interval=5m c1|1|50|/api/visitor-tracking/widgets/$WID/concurrency?from=$AT24&to=$AT&interval=5m"
    "concurrency 7 d interval=1h c1|1|50|/api/visitor-tracking/widgets/$WID/concurrency?from=$AT7&to=$AT&interval=1h"
    "concurrency 30 d interval=1h c1|1|50|/api/visitor-tracking/widgets/$WID/concurrency?from=$FROM&to=$TO&interval=1h"
    "concurrency 30 d interval=1h c4|4|50|/api/visitor-tracking/widgets/$WID/concurrency?from=$FROM&to=$TO&interval=1h"
    "visitor-stats 2 y c4|4|50|/api/visitor-tracking/widgets/$WID2/visitor-stats?from=$FROM2&to=$TO"
    "timeseries 2 y interval=day c4|4|50|/api/visitor-tracking/widgets/$WID2/timeseries?from=$FROM2&to=$TO&interval=day"
    "breakdown by=page 2 y c4|4|50|/api/visitor-tracking/widgets/$WID2/breakdown?by=page&from=$FROM2&to=$TO"
    "breakdown by=country 2 y c4|4|50|/api/visitor-tracking/widgets/$WID2/breakdown?by=country&from=$FROM2&to=$TO"
    "visitor-stats from=all c4|4|50|/api/visitor-tracking/widgets/$WID2/visitor-stats?from=all"
)

if [ -n "${ONLY:-}" ]; then
    KEEP=()
    for r in "${ROWS[@]}"; do
        case ${r%%|*} in livez*) KEEP+=("$r") ;; *) if [[ ${r%%|*} =~ $ONLY ]]; then KEEP+=("$r"); fi ;; esac
    done
    ROWS=("${KEEP[@]}")
fi

# Every route must answer 200 before it is measured (501: not implemented
# yet); its answer size goes into the table.
declare -A STATUS SIZE
for r in "${ROWS[@]}"; do
    IFS='|' read -r name conns target path <<<"$r"
    read -r code size < <(curl -s -o /dev/null -w '%{http_code} %{size_download}\n' \
        -H "Authorization: Bearer $TOKEN" "$U$path")
    STATUS[$name]=$code
    SIZE[$name]=$size
    if [ "$code" != 200 ]; then
        hn_fail "$name: HTTP $code ($(curl -s -H "Authorization: Bearer $TOKEN" "$U$path" | head -c 200))"
    fi
done

# wrk output → "p50_ms p99_ms rps non2xx errors"
wrk_parse() {
    awk '
        function ms(v) { if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
                         if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
                         if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
                         return v + 0 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        $1 == "Requests/sec:" { rps = $2 }
        /Non-2xx or 3xx responses:/ { bad = $NF }
        /Socket errors:/ { gsub(/,/, ""); err = $4 + $6 + $8 + $10 }
        END { printf "%.3f %.3f %.1f %d %d\n", p50, p99, rps, bad, err }'
}

say "measuring: $RUNS round(s), ${DURATION} s per row, ${#ROWS[@]} rows"
mkdir -p "$HN_TMP/wrk"
for run in $(seq 1 "$RUNS"); do
    fill_redis   # scores relative to now: every session inside the live window
    for r in "${ROWS[@]}"; do
        IFS='|' read -r name conns target path <<<"$r"
        [ "${STATUS[$name]}" = 200 ] || continue
        # the hub drops a widget a minute after the last ask (docs/API.md): the
        # refill and the rows before may take longer, and a reload is not what is measured
        case $name in pages-live*) hn_wait_for 180 "pages/live loaded again" pages_loaded ;; esac
        threads=$((conns < 2 ? 1 : 2))
        l0=$(wc -l <"$HN_TMP/api.log")
        out=$(wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency \
            -H "Authorization: Bearer $TOKEN" "$U$path")
        sleep 0.2   # the answers still in flight when wrk stopped get their log line
        l1=$(wc -l <"$HN_TMP/api.log")
        printf '%s\n' "$out" >"$HN_TMP/wrk/${name// /_}.$run.txt"
        read -r p50 p99 rps bad err < <(wrk_parse <<<"$out")
        echo "$name|$run|$p50|$p99|$rps|$bad|$err|$l0|$l1" >>"$RES"
        printf 'bench-api: round %d %-38s p50 %8.2f ms  p99 %8.2f ms  %9.1f req/s%s\n' \
            "$run" "$name" "$p50" "$p99" "$rps" \
            "$([ "$bad$err" = 00 ] || echo "  non-2xx $bad, socket errors $err")"
    done
done
# shellcheck disable=SC2154  # HN_PID_api: set by hn_spawn
hn_assert_cmd "herenow-api still running after the runs" hn_alive "$HN_PID_api"
hn_assert_eq "no non-2xx answers and no socket errors" 0 "$(awk -F'|' '{ s += $6 + $7 } END { print s + 0 }' "$RES")"

# ---- EXPLAIN (ANALYZE, BUFFERS) of the PostgreSQL queries, warm -----------------------------------------
# The routes' statements (api/routes_history.c) with the parameters the
# routes computed for the range: whole hours (stats, timeseries), whole days
# (breakdown), as given (sessions).
F_H=$(psql_q -c "SELECT date_trunc('hour', '$FROM'::timestamptz)")
T_H=$(psql_q -c "SELECT date_trunc('hour', '$TO'::timestamptz) + CASE WHEN date_trunc('hour', '$TO'::timestamptz) = '$TO'::timestamptz THEN interval '0' ELSE interval '1 hour' END")
F_D=$(psql_q -c "SELECT ('$FROM'::timestamptz AT TIME ZONE 'UTC')::date")
T_D=$(psql_q -c "SELECT ('$TO'::timestamptz AT TIME ZONE 'UTC')::date + 1")
explain() { psql_q -c "SET TIME ZONE 'UTC'" -c "EXPLAIN (ANALYZE, BUFFERS) $1"; }
STATS_SQL="SELECT coalesce(sum(visitors_day), 0), coalesce(sum(sessions), 0), coalesce(sum(page_views), 0), coalesce(sum(events), 0), coalesce(sum(session_pages), 0), coalesce(sum(engaged_ms), 0), coalesce(sum(bounces), 0), coalesce(sum(chat_sessions), 0) FROM widget_rollup_hourly WHERE widget_id = $WID AND hour >= '$F_H' AND hour < '$T_H'"
explain "$STATS_SQL" >"$HN_TMP/explain_stats.txt"
explain "SELECT floor(extract(epoch FROM hour) / 3600)::bigint AS b, sum(visitors_hour), sum(visitors_day), sum(sessions), sum(page_views), sum(events), sum(bounces), sum(engaged_ms), sum(session_pages) FROM widget_rollup_hourly WHERE widget_id = $WID AND hour >= '$F_H' AND hour < '$T_H' GROUP BY b ORDER BY b" >"$HN_TMP/explain_series.txt"
explain "SELECT value, sum(n)::bigint AS cnt, (sum(sum(n)) OVER ())::bigint, count(*) OVER () FROM widget_rollup_dims WHERE widget_id = $WID AND dim = 'page' AND day >= '$F_D'::date AND day < '$T_D'::date GROUP BY value ORDER BY cnt DESC, value LIMIT 100" >"$HN_TMP/explain_breakdown.txt"
explain "SELECT id, session_id, visitor_id, landing_page, current_page_url, page_views FROM widget_visitor_sessions WHERE widget_id = $WID AND session_started_at >= '$FROM' AND session_started_at < '$TO' ORDER BY session_started_at DESC, id DESC LIMIT 101" >"$HN_TMP/explain_sessions.txt"
F2_H=$(psql_q -c "SELECT date_trunc('hour', '$FROM2'::timestamptz)")
F2_D=$(psql_q -c "SELECT ('$FROM2'::timestamptz AT TIME ZONE 'UTC')::date")
STATS2_SQL=${STATS_SQL%% WHERE *}" WHERE widget_id = $WID2 AND hour >= '$F2_H' AND hour < '$T_H'"
explain "$STATS2_SQL" >"$HN_TMP/explain_stats2.txt"
explain "SELECT value, sum(n)::bigint AS cnt, (sum(sum(n)) OVER ())::bigint, count(*) OVER () FROM widget_rollup_dims WHERE widget_id = $WID2 AND dim = 'page' AND day >= '$F2_D'::date AND day < '$T_D'::date GROUP BY value HAVING sum(n) <> 0 ORDER BY cnt DESC, value LIMIT 100" >"$HN_TMP/explain_breakdown2.txt"
exec_ms() { awk '/Execution Time:/ { print $3 }' "$1"; }
top_buffers() { awk '/Buffers:/ { sub(/^ */, ""); print; exit }' "$1"; }

# ---- server-side times from the access log ----------------------------------------------------------------
# The "ms=" of the request lines the api logged during a row's runs (every
# round together): from the request's arrival to its answer handed to
# evhttp, the job queue included; neither the network nor wrk.
server_ms() {   # server_ms ROW_NAME → "p50 p99" or "n/a n/a"
    local ranges
    ranges=$(awk -F'|' -v n="$1" '$1 == n { printf "%s%d-%d", sep, $8 + 1, $9; sep = "," }' "$RES")
    awk -v ranges="$ranges" '
        BEGIN { nr = split(ranges, rr, ","); for (i = 1; i <= nr; i++) { split(rr[i], ab, "-"); lo[i] = ab[1]; hi[i] = ab[2] } }
        {
            inr = 0
            for (i = 1; i <= nr; i++) if (NR >= lo[i] && NR <= hi[i]) { inr = 1; break }
            if (!inr || !index($0, "event=request")) next
            for (i = 1; i <= NF; i++) if ($i ~ /^ms=/) { v[++n] = substr($i, 4) + 0 }
        }
        END { if (n == 0) { print "n/a n/a"; exit }
              for (gap = int(n / 2); gap > 0; gap = int(gap / 2))   # shell sort
                  for (i = gap + 1; i <= n; i++) { t = v[i]; for (j = i; j > gap && v[j - gap] > t; j -= gap) v[j] = v[j - gap]; v[j] = t }
              i50 = int((n + 1) / 2); i99 = int(n * 0.99 + 0.5); if (i99 < 1) i99 = 1
              printf "%.1f %.1f\n", v[i50], v[i99] }' "$HN_TMP/api.log"
}

# ---- report ------------------------------------------------------------------------------------------------
med() {   # med NAME FIELD
    awk -F'|' -v n="$1" -v f="$2" '$1 == n { print $f }' "$RES" | bench_median
}
runs_of() {
    awk -F'|' -v n="$1" -v f="$2" '$1 == n { printf "%s%.2f", sep, $f; sep = " / " }' "$RES"
}
TABLE="$HN_TMP/table.md"
{
    echo "| route | conns | answer bytes | p50 ms | p99 ms | req/s | /livez p50 / p99 ms, same conns | server-side p50 / p99 ms | target p99 | met? | p99 of each round |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    for r in "${ROWS[@]}"; do
        IFS='|' read -r name conns target path <<<"$r"
        if [ "${STATUS[$name]}" != 200 ]; then
            echo "| $name | $conns | | HTTP ${STATUS[$name]} | | | | | ${target:+≤ $target ms} | no | |"
            continue
        fi
        p50=$(med "$name" 3); p99=$(med "$name" 4); rps=$(med "$name" 5)
        floor="livez c$conns"
        fl="$(printf '%.2f / %.2f' "$(med "$floor" 3)" "$(med "$floor" 4)")"
        if [ -z "$target" ]; then
            met=""; srv="—"; fl="—"
        else
            met=$(awk -v a="$p99" -v t="$target" 'BEGIN { print (a <= t ? "yes" : "**no**") }')
            read -r s50 s99 < <(server_ms "$name")
            srv="$s50 / $s99"
        fi
        printf '| %s | %s | %s | %.2f | %.2f | %.0f | %s | %s | %s | %s | %s |\n' \
            "${name% c*}" "$conns" "${SIZE[$name]}" "$p50" "$p99" "$rps" "$fl" "$srv" \
            "${target:+≤ $target ms}" "$met" "$(runs_of "$name" 4)"
    done
} >"$TABLE"
cat "$TABLE"

T_TOTAL=$(( $(date +%s) - T_START ))
thou() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }   # 10000000 → 10,000,000
if [ -n "$BENCH_DOC" ]; then
    SECTION="## API latency (make bench-api)"
    CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    {
        echo "$SECTION"
        echo
        echo "Run $START_DATE on $(nproc) cores ($CPU), $(awk '/MemTotal/ { printf "%d GB", $2 / 1048576 + 0.5 }' /proc/meminfo) RAM,"
        echo "Linux $(uname -r), PostgreSQL $("${HN_PG_BINDIR:-/usr/lib/postgresql/15/bin}/postgres" --version | awk '{ print $3 }') (default settings but fsync off: scripts/pg.sh --fast;"
        echo "reads don't care), Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), wrk $(wrk -v 2>&1 | awk 'NR == 1 { print $2 }'); load average before $LOAD_BEFORE."
        echo "wrk, herenow-api, Redis and PostgreSQL share the cores; loopback only. The whole \`make bench-api\` took $T_TOTAL s."
        echo
        echo "Command: \`$CMDLINE\` — $RUNS round(s) of one \`wrk -d${DURATION}s --latency\` per row (-t1 for 1 connection, -t2"
        echo "otherwise), rows interleaved within a round; figures are medians over the rounds. herenow-api with"
        echo "HERENOW_DRAIN=off and every other setting at its default (HERENOW_API_THREADS=4, HERENOW_LIVE_WINDOW_S=300,"
        echo "HERENOW_ACTIVE_S=60, log level info: one access-log line per API request, none for /livez)."
        [ -z "${API_PREFIX:-}" ] || echo "**herenow-api ran under \`$API_PREFIX\` (an experiment, not the shipped binary as is).**"
        echo
        echo "Data set:"
        echo "- Redis: $(thou "$N_LIVE") live sessions on one widget ($REDIS_MEM used): \`hn:live:{w}\` scores now − random(0..250 s) and one"
        echo "  \`hn:sess:{w}:<sid>\` hash of 20–23 fields (PROTOCOL.md §9: URLs of up to ~100 bytes, title, landing, referrer,"
        echo "  IP, geo, device, visitor hash, counters) per session, written by a Lua script in ${FILL_S} s and written again before"
        echo "  every round, so all of them are inside the default live window while measured. \`status\` is active in 85 %, idle"
        echo "  in 15 %; with scores spread over 250 s about a quarter count as active (seen within HERENOW_ACTIVE_S)."
        echo "  No collector or trimmer runs."
        echo "- PostgreSQL: $(thou "$N_PV") page views over $DAYS days on the same widget, $(thou "$N_SESS") sessions ($(thou "$N_VIS") visitors), $(thou "$N_EV")"
        echo "  custom/chat events; $N_HOURLY rows in widget_rollup_hourly, $N_DIMS in widget_rollup_dims; database $DB_SIZE (page"
        echo "  views with indexes $PV_SIZE). Generated in SQL (200 paths, diurnal and weekly shape, 40 % bounces); sessions and"
        echo "  rollups computed from those rows as the drain's statements would have left them; secondary indexes dropped"
        echo "  during the load and built again from their own definitions; then VACUUM ANALYZE. Generation: $GEN_S s"
        echo "  ($(awk '{ printf "%s%s %s s", sep, $1, $2; sep = ", " }' "$HN_TMP/gen"))."
        echo
        echo "- Two years (a second widget, rollups only): $(thou "$Y_HOURLY") rows in widget_rollup_hourly (one per hour of $YEARS_DAYS days),"
        echo "  $(thou "$Y_DIMS") in widget_rollup_dims ($(thou "$Y_PAGES") of them pages: 200 paths a day; 20 referrers, 12 countries,"
        echo "  8 browsers, 5 OSes, 3 devices a day)."
        echo
        echo "Ranges: 30-day rows use from=now − $DAYS days, to=now; 2-year rows from=now − $YEARS_DAYS days, to=now (beyond the"
        echo "400 days the raw-row routes take); from=all: since 1970. The routes widen them to whole hours / days."
        echo "*answer bytes*: size of one answer; */livez*: the same process's trivial route (no auth, no Redis, no PostgreSQL)"
        echo "at the same concurrency, in the same rounds — the HTTP floor; *server-side*: the \`ms=\` of the api's access-log lines"
        echo "for that route, every round together (queueing inside the api included, the network and wrk not)."
        echo
        cat "$TABLE"
        echo
        echo "EXPLAIN (ANALYZE, BUFFERS) after the runs (warm), statements as in api/routes_history.c:"
        echo "visitor-stats $(exec_ms "$HN_TMP/explain_stats.txt") ms ($(top_buffers "$HN_TMP/explain_stats.txt")),"
        echo "timeseries $(exec_ms "$HN_TMP/explain_series.txt") ms, breakdown by=page $(exec_ms "$HN_TMP/explain_breakdown.txt") ms ($(top_buffers "$HN_TMP/explain_breakdown.txt")),"
        echo "sessions list $(exec_ms "$HN_TMP/explain_sessions.txt") ms; two years: visitor-stats $(exec_ms "$HN_TMP/explain_stats2.txt") ms"
        echo "($(top_buffers "$HN_TMP/explain_stats2.txt")), breakdown by=page $(exec_ms "$HN_TMP/explain_breakdown2.txt") ms ($(top_buffers "$HN_TMP/explain_breakdown2.txt"))."
        echo "The visitor-stats plan (30 days), then the two-year breakdown's:"
        echo
        echo '```'
        cat "$HN_TMP/explain_stats.txt"
        echo '```'
        echo
        echo '```'
        cat "$HN_TMP/explain_breakdown2.txt"
        echo '```'
        if [ -n "$BENCH_NOTES" ] && [ -f "$BENCH_NOTES" ]; then echo; cat "$BENCH_NOTES"; fi
    } >"$HN_TMP/section.md"
    bench_write_section "$SECTION" "$HN_TMP/section.md" "$BENCH_DOC"
    say "wrote \"$SECTION\" in $BENCH_DOC"
fi
say "total $T_TOTAL s"
hn_done
