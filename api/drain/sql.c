/*
 * sql.c: the text of every statement the drain runs (sql.h). No statement
 * takes text from outside: records arrive through COPY (rows, and the
 * batch's aggregates made in C, batch.c), the rest reads the temp tables or
 * binds its parameters.
 */
#include "api/drain/sql.h"

#include "common/pg.h"

const char hn_drain_sql_setup[] =
    "SET application_name = 'herenow-drain';"
    "SET TIME ZONE 'UTC';"
    "SET work_mem = '64MB';"
    "SET temp_buffers = '256MB';"
    /* the batch's sessions, aggregated in C (hn_drain_batch_build) */
    "CREATE TEMP TABLE IF NOT EXISTS hn_agg ("
    " widget_id integer, session_id text, visitor_id text, vh text, nm text, em text, ek text, ph text,"
    " ip text, country text, region text, city text, ua text, browser text, bv text, os text,"
    " ov text, device text, lang text, sw integer, sh integer, landing text, referrer text,"
    " cur_url text, cur_title text, first_pv timestamptz, last_pv timestamptz, pages integer,"
    " events integer, engaged bigint, msgs integer, chat integer, started timestamptz,"
    " last_active timestamptz, ended timestamptz) ON COMMIT DELETE ROWS;"
    /* page views and events per hour; page and event breakdowns per day */
    "CREATE TEMP TABLE IF NOT EXISTS hn_hourly (widget_id integer, hour timestamptz,"
    " page_views bigint, events bigint) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS hn_dimsb (widget_id integer, dim text, day date,"
    " value text, n bigint) ON COMMIT DELETE ROWS;"
    /* the ids of a redelivered batch, to find those already written */
    "CREATE TEMP TABLE IF NOT EXISTS hn_ids (event_id uuid, recv_at timestamptz)"
    " ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS hn_sess ("
    " widget_id integer, session_id text, fresh boolean, visitor_id text,"
    " rollup_hour timestamptz, page_views integer, chat_events integer, referrer text,"
    " referrer_source text,"
    " country text, browser text, os text, device_type text,"
    " d_pages integer, d_engaged bigint, d_chat integer) ON COMMIT DELETE ROWS;"
    /* the batch's chat records (batch.c, sql_chat.c) */
    "CREATE TEMP TABLE IF NOT EXISTS hn_chat (event_id uuid, recv_at timestamptz,"
    " widget_id integer, session_id text COLLATE \"C\", visitor_id text, vh text, kind text,"
    " ci uuid, body text) ON COMMIT DELETE ROWS";

const char hn_drain_sql_copy_pv[] =
    "COPY widget_page_views (event_id, recv_at, widget_id, session_id, visitor_id, seq, url,"
    " path, title, referrer, engaged_ms, transport) FROM STDIN";
const char hn_drain_sql_copy_ev[] =
    "COPY widget_visitor_events (event_id, recv_at, widget_id, session_id, visitor_id, seq,"
    " event_type, event_name, url, event_data, engaged_ms, transport) FROM STDIN";
const char hn_drain_sql_copy_agg[] = "COPY hn_agg FROM STDIN";
const char hn_drain_sql_copy_hourly[] = "COPY hn_hourly FROM STDIN";
const char hn_drain_sql_copy_dims[] = "COPY hn_dimsb FROM STDIN";
const char hn_drain_sql_copy_ids[] = "COPY hn_ids FROM STDIN";

/* Which of a redelivered batch's records are in PostgreSQL already. */
const char hn_drain_sql_existing[] =
    "SELECT i.event_id FROM hn_ids i"
    " WHERE EXISTS (SELECT 1 FROM widget_page_views p"
    "  WHERE p.event_id = i.event_id AND p.recv_at = i.recv_at)"
    " OR EXISTS (SELECT 1 FROM widget_visitor_events e"
    "  WHERE e.event_id = i.event_id AND e.recv_at = i.recv_at)";

/* Sessions from the batch's aggregates. Counters add; "first"/"latest"
 * fields compare the receive times already stored, so batches may arrive in
 * any order. RETURNING + the batch's own deltas give every rollup delta
 * exactly (old value = new value − delta, the row being locked by the
 * update). xmax = 0 on a RETURNING row means it was inserted, not updated. */
const char hn_drain_sql_sessions[] =
    "WITH up AS ("
    " INSERT INTO widget_visitor_sessions AS s (widget_id, session_id, visitor_id, visitor_hash,"
    "  visitor_name, visitor_email, visitor_email_key, visitor_phone, ip_address, country, region, city,"
    "  user_agent, browser, browser_version, os, os_version, device_type, language,"
    "  screen_width, screen_height, landing_page, referrer, referrer_source, current_page_url,"
    "  current_page_title, is_active, page_views, events_count, engaged_ms,"
    "  total_time_seconds, last_active_at, session_started_at, session_ended_at,"
    "  messages_sent, chat_events, has_chatted, first_pv_at, last_pv_at, rollup_hour)"
    " SELECT widget_id, session_id, visitor_id, vh, nm, em, ek, ph, ip, country, region, city,"
    "  ua, browser, bv, os, ov, device, lang, sw, sh, landing, referrer,"
    "  hn_referrer_source(referrer), cur_url, cur_title,"
    "  ended IS NULL OR ended < last_active, pages, events, engaged,"
    "  least(engaged / 1000, 2147483647)::integer,"
    "  last_active, started, ended, msgs, chat, chat > 0, first_pv, last_pv,"
    "  date_trunc('hour', started)"
    " FROM hn_agg ORDER BY widget_id, session_id"
    " ON CONFLICT (widget_id, session_id) DO UPDATE SET"
    "  visitor_hash = coalesce(s.visitor_hash, excluded.visitor_hash),"
    "  visitor_name = coalesce(excluded.visitor_name, s.visitor_name),"
    "  visitor_email = coalesce(excluded.visitor_email, s.visitor_email),"
    "  visitor_email_key = CASE WHEN excluded.visitor_email IS NULL THEN s.visitor_email_key"
    "   ELSE excluded.visitor_email_key END,"
    "  visitor_phone = coalesce(excluded.visitor_phone, s.visitor_phone),"
    "  ip_address = coalesce(excluded.ip_address, s.ip_address),"
    "  country = coalesce(excluded.country, s.country),"
    "  region = coalesce(excluded.region, s.region),"
    "  city = coalesce(excluded.city, s.city),"
    "  user_agent = coalesce(excluded.user_agent, s.user_agent),"
    "  browser = coalesce(excluded.browser, s.browser),"
    "  browser_version = coalesce(excluded.browser_version, s.browser_version),"
    "  os = coalesce(excluded.os, s.os),"
    "  os_version = coalesce(excluded.os_version, s.os_version),"
    "  device_type = coalesce(excluded.device_type, s.device_type),"
    "  language = coalesce(excluded.language, s.language),"
    "  screen_width = coalesce(excluded.screen_width, s.screen_width),"
    "  screen_height = coalesce(excluded.screen_height, s.screen_height),"
    "  landing_page = CASE WHEN s.first_pv_at IS NULL OR excluded.first_pv_at < s.first_pv_at"
    "   THEN coalesce(excluded.landing_page, s.landing_page) ELSE s.landing_page END,"
    "  first_pv_at = least(s.first_pv_at, excluded.first_pv_at),"
    "  current_page_url = CASE WHEN s.last_pv_at IS NULL OR excluded.last_pv_at >= s.last_pv_at"
    "   THEN coalesce(excluded.current_page_url, s.current_page_url) ELSE s.current_page_url END,"
    "  current_page_title = CASE WHEN s.last_pv_at IS NULL OR excluded.last_pv_at >= s.last_pv_at"
    "   THEN CASE WHEN excluded.last_pv_at IS NULL THEN s.current_page_title"
    "   ELSE excluded.current_page_title END ELSE s.current_page_title END,"
    "  last_pv_at = greatest(s.last_pv_at, excluded.last_pv_at),"
    /* the landing page's referrer: moves with the first page view */
    "  referrer = CASE WHEN excluded.first_pv_at IS NOT NULL AND (s.first_pv_at IS NULL"
    "   OR excluded.first_pv_at < s.first_pv_at) THEN excluded.referrer ELSE s.referrer END,"
    "  page_views = s.page_views + excluded.page_views,"
    "  events_count = s.events_count + excluded.events_count,"
    "  engaged_ms = s.engaged_ms + excluded.engaged_ms,"
    "  total_time_seconds = least((s.engaged_ms + excluded.engaged_ms) / 1000, 2147483647)::integer,"
    "  messages_sent = s.messages_sent + excluded.messages_sent,"
    "  chat_events = s.chat_events + excluded.chat_events,"
    "  has_chatted = s.chat_events + excluded.chat_events > 0,"
    "  session_started_at = least(s.session_started_at, excluded.session_started_at),"
    "  last_active_at = greatest(s.last_active_at, excluded.last_active_at),"
    "  session_ended_at = greatest(s.session_ended_at, excluded.session_ended_at),"
    "  is_active = coalesce(greatest(s.session_ended_at, excluded.session_ended_at)"
    "   < greatest(s.last_active_at, excluded.last_active_at), true),"
    "  updated_at = now()"
    " RETURNING s.widget_id, s.session_id, (s.xmax = 0) AS fresh, s.visitor_id, s.rollup_hour,"
    "  s.page_views, s.chat_events, s.referrer, s.referrer_source, s.country, s.browser, s.os,"
    "  s.device_type)"
    " INSERT INTO hn_sess SELECT up.*, agg.pages, agg.engaged, agg.chat"
    "  FROM up JOIN hn_agg agg USING (widget_id, session_id)";

/* Hourly rollup: page views and events in their own hour; session metrics
 * in the session's rollup hour (page views and events come counted per
 * hour in hn_hourly); visitors through the day/hour sets (a
 * visitor counts in visitors_day the first time it is seen that UTC day). */
const char hn_drain_sql_rollup[] =
    "WITH vd AS ("
    " INSERT INTO widget_visitor_days (widget_id, day, visitor_id)"
    " SELECT DISTINCT widget_id, (rollup_hour AT TIME ZONE 'UTC')::date, visitor_id"
    "  FROM hn_sess WHERE fresh ORDER BY 1, 2, 3"
    " ON CONFLICT DO NOTHING RETURNING widget_id, day, visitor_id),"
    " vh AS ("
    " INSERT INTO widget_visitor_hours (widget_id, hour, visitor_id)"
    " SELECT DISTINCT widget_id, rollup_hour, visitor_id FROM hn_sess WHERE fresh ORDER BY 1, 2, 3"
    " ON CONFLICT DO NOTHING RETURNING widget_id, hour),"
    " d (widget_id, hour, page_views, events, sessions, visitors_day, visitors_hour,"
    "  session_pages, engaged_ms, bounces, chat_sessions) AS ("
    " SELECT widget_id, hour, page_views, events, 0, 0, 0, 0, 0, 0, 0 FROM hn_hourly"
    " UNION ALL"
    " SELECT widget_id, rollup_hour, 0, 0, count(*) FILTER (WHERE fresh), 0, 0, sum(d_pages),"
    "  sum(d_engaged),"
    "  sum((page_views < 2)::int - CASE WHEN fresh THEN 0 ELSE (page_views - d_pages < 2)::int END),"
    "  sum((chat_events > 0)::int - CASE WHEN fresh THEN 0 ELSE (chat_events - d_chat > 0)::int END)"
    "  FROM hn_sess GROUP BY 1, 2"
    " UNION ALL"
    " SELECT vd.widget_id, min(s.rollup_hour), 0, 0, 0, 1, 0, 0, 0, 0, 0"
    "  FROM vd JOIN hn_sess s ON s.fresh AND s.widget_id = vd.widget_id"
    "   AND s.visitor_id = vd.visitor_id AND (s.rollup_hour AT TIME ZONE 'UTC')::date = vd.day"
    "  GROUP BY vd.widget_id, vd.day, vd.visitor_id"
    " UNION ALL"
    " SELECT widget_id, hour, 0, 0, 0, 0, count(*), 0, 0, 0, 0 FROM vh GROUP BY 1, 2)"
    " INSERT INTO widget_rollup_hourly AS r (widget_id, hour, page_views, events, sessions,"
    "  visitors_day, visitors_hour, session_pages, engaged_ms, bounces, chat_sessions)"
    " SELECT widget_id, hour, sum(page_views), sum(events), sum(sessions), sum(visitors_day),"
    "  sum(visitors_hour), sum(session_pages), sum(engaged_ms), sum(bounces), sum(chat_sessions)"
    "  FROM d GROUP BY 1, 2 ORDER BY 1, 2"
    " ON CONFLICT (widget_id, hour) DO UPDATE SET"
    "  page_views = r.page_views + excluded.page_views,"
    "  events = r.events + excluded.events,"
    "  sessions = r.sessions + excluded.sessions,"
    "  visitors_day = r.visitors_day + excluded.visitors_day,"
    "  visitors_hour = r.visitors_hour + excluded.visitors_hour,"
    "  session_pages = r.session_pages + excluded.session_pages,"
    "  engaged_ms = r.engaged_ms + excluded.engaged_ms,"
    "  bounces = r.bounces + excluded.bounces,"
    "  chat_sessions = r.chat_sessions + excluded.chat_sessions";

/* Breakdowns per UTC day: pages (page views) and events from hn_dimsb,
 * session dimensions (sessions) once, when the session is first seen. */
const char hn_drain_sql_dims[] =
    "INSERT INTO widget_rollup_dims AS r (widget_id, dim, day, value, n)"
    " SELECT widget_id, dim, day, value, sum(n) FROM ("
    "  SELECT widget_id, dim, day, value, n FROM hn_dimsb"
    "  UNION ALL SELECT widget_id, 'referrer', (rollup_hour AT TIME ZONE 'UTC')::date,"
    "   hn_referrer_source(referrer), 1 FROM hn_sess WHERE fresh"
    /* an earlier first page view arrived late with another referrer: the
     * session moves from the source it was counted under to the new one */
    "  UNION ALL SELECT widget_id, 'referrer', (rollup_hour AT TIME ZONE 'UTC')::date,"
    "   referrer_source, -1 FROM hn_sess"
    "   WHERE NOT fresh AND referrer_source IS DISTINCT FROM hn_referrer_source(referrer)"
    "  UNION ALL SELECT widget_id, 'referrer', (rollup_hour AT TIME ZONE 'UTC')::date,"
    "   hn_referrer_source(referrer), 1 FROM hn_sess"
    "   WHERE NOT fresh AND referrer_source IS DISTINCT FROM hn_referrer_source(referrer)"
    "  UNION ALL SELECT widget_id, 'country', (rollup_hour AT TIME ZONE 'UTC')::date,"
    "   coalesce(country, '(unknown)'), 1 FROM hn_sess WHERE fresh"
    "  UNION ALL SELECT widget_id, 'browser', (rollup_hour AT TIME ZONE 'UTC')::date,"
    "   coalesce(browser, '(unknown)'), 1 FROM hn_sess WHERE fresh"
    "  UNION ALL SELECT widget_id, 'os', (rollup_hour AT TIME ZONE 'UTC')::date,"
    "   coalesce(os, '(unknown)'), 1 FROM hn_sess WHERE fresh"
    "  UNION ALL SELECT widget_id, 'device', (rollup_hour AT TIME ZONE 'UTC')::date,"
    "   coalesce(device_type, '(unknown)'), 1 FROM hn_sess WHERE fresh"
    " ) x GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    " ON CONFLICT (widget_id, dim, day, value) DO UPDATE SET n = r.n + excluded.n";

/* The sessions whose referrer moved now count under the new source. */
const char hn_drain_sql_referrer_moved[] =
    "UPDATE widget_visitor_sessions s SET referrer_source = hn_referrer_source(h.referrer)"
    " FROM hn_sess h WHERE NOT h.fresh AND s.widget_id = h.widget_id"
    " AND s.session_id = h.session_id"
    " AND h.referrer_source IS DISTINCT FROM hn_referrer_source(h.referrer)";

/* The tombstones written since seq $1 (sql/009_erasures.sql), read after
 * the transaction took HN_PG_LOCK_ERASE shared (pg.c). */
const char hn_drain_sql_erasures[] =
    "SELECT seq, widget_id, encode(digest, 'hex'),"
    " (extract(epoch FROM erased_at) * 1000000)::bigint"
    " FROM visitor_erasures WHERE seq > $1 ORDER BY seq";
const char hn_drain_sql_erase_lock[] = "SELECT pg_advisory_xact_lock_shared(" HN_PG_LOCK_ERASE ")";

const char hn_drain_sql_reject[] =
    "INSERT INTO drain_rejects (stream, entry_id, reason, raw) VALUES ($1, $2, $3, $4::bytea)"
    " ON CONFLICT DO NOTHING";

/* Sessions that left without an `end` (tab closed, network gone): inactive
 * once the live window has passed, ended at their last beacon. */
const char hn_drain_sql_sweep[] =
    "UPDATE widget_visitor_sessions SET is_active = false, session_ended_at = last_active_at,"
    " updated_at = now()"
    " WHERE (widget_id, session_id) IN (SELECT widget_id, session_id FROM widget_visitor_sessions"
    "  WHERE is_active AND last_active_at < now() - make_interval(secs => $1::integer)"
    "  LIMIT 10000)";

/* The partitions of the days [$1, $2] (days since 1970-01-01). */
const char hn_drain_sql_partitions[] =
    "SELECT hn_ensure_partitions(date '1970-01-01' + $1::integer,"
    " date '1970-01-01' + $2::integer)";

const char hn_drain_sql_retention[] = "SELECT hn_apply_retention() + hn_apply_chat_retention()"
    " + hn_apply_concurrency_retention() + hn_apply_erasure_retention()";
