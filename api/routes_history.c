/*
 * routes_history.c: the routes that read PostgreSQL's history — stats,
 * timeseries and breakdowns from the rollups (hundreds of rows for a month,
 * whatever the traffic), past sessions, and the streamed CSV export.
 *
 * Rollups have whole UTC hours (widget_rollup_hourly) and days
 * (widget_rollup_dims), so a range is widened to whole units before it is
 * read, and the answer says which range it covers ("from", "to").
 *
 * The rollup routes take ranges up to 100 years (from=all: since 1970):
 * their queries are index range scans over at most the rows retention
 * keeps (two years: 17,520 hour rows, 730 day rows per breakdown value),
 * whatever the span. Past sessions and the export read raw rows and keep
 * the 400-day cap (docs/API.md, "Time ranges").
 */
#include "api/routes.h"

#include "common/datakey.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timefmt.h"
#include "proto/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void k_time_us(hn_buf *b, bool *first, const char *key, int64_t us) {
    hn_json_ktime(b, first, key, us / 1000);
}

static double ratio(int64_t a, int64_t b) { return b > 0 ? (double)a / (double)b : 0.0; }

/* ---- visitor stats ------------------------------------------------------------------ */

static const char stats_sql[] =
    "SELECT coalesce(sum(visitors_day), 0), coalesce(sum(sessions), 0),"
    " coalesce(sum(page_views), 0), coalesce(sum(events), 0), coalesce(sum(session_pages), 0),"
    " coalesce(sum(engaged_ms), 0), coalesce(sum(bounces), 0), coalesce(sum(chat_sessions), 0)"
    " FROM widget_rollup_hourly WHERE widget_id = $1 AND hour >= $2 AND hour < $3";

static const char chat_stats_sql[] =
    "SELECT count(*) FILTER (WHERE started_by = 'agent'),"
    " count(*) FILTER (WHERE started_by = 'agent' AND accepted_at IS NOT NULL),"
    " count(*) FILTER (WHERE started_by = 'visitor')"
    " FROM widget_conversations WHERE widget_id = $1 AND created_at >= $2 AND created_at < $3";

/* Sessions seen within the live window, or -1 when Redis does not answer:
 * the stats are still worth having without it. */
static int64_t active_now(hn_api_worker *w, int64_t wid, const hn_config *cfg) {
    hn_rcl *c = hn_api_redis(w);
    if (c == NULL) return -1;
    char key[HN_KEY_CAP], lo[32];
    hn_key_live(key, wid);
    snprintf(lo, sizeof(lo), "(%lld", (long long)((int64_t)hn_now_ms() - cfg->live_window_s * 1000));
    const char *argv[] = {"ZCOUNT", key, lo, "+inf"};
    size_t len[] = {6, strlen(key), strlen(lo), 4};
    redisReply *r = hn_rcl_command_argv(c, 4, argv, len);
    if (r == NULL) {
        hn_api_redis_broken(w);
        return -1;
    }
    int64_t n = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    freeReplyObject(r);
    return n;
}

void hn_route_stats(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    static const char *const allowed[] = {"from", "to"};
    int64_t from, to;
    char wbuf[24], f[HN_TIME_CAP], t[HN_TIME_CAP];
    hn_buf out = {0};

    if (!hn_rt_check_keys(rq, rs, allowed, 2) || !hn_rt_range_rollup(rq, rs, &from, &to, NULL))
        return;
    int64_t wid = hn_rt_widget_id(rq);
    from = hn_floor_us(from, HN_US_PER_HOUR);
    to = hn_ceil_us(to, HN_US_PER_HOUR);
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)wid);
    hn_fmt_time_us(from, f);
    hn_fmt_time_us(to, t);
    const char *p[] = {wbuf, f, t};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, stats_sql, 3, p);
    if (res == NULL) return;
    int64_t visitors = hn_rt_pg_int(res, 0, 0), sessions = hn_rt_pg_int(res, 0, 1),
            pvs = hn_rt_pg_int(res, 0, 2), events = hn_rt_pg_int(res, 0, 3),
            spages = hn_rt_pg_int(res, 0, 4), engaged = hn_rt_pg_int(res, 0, 5),
            bounces = hn_rt_pg_int(res, 0, 6), chats = hn_rt_pg_int(res, 0, 7);
    PQclear(res);
    int64_t now_live = active_now(w, wid, rq->cfg);
    /* Start Chat: invitations sent (and accepted), chats by who started them */
    res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, chat_stats_sql, 3, p);
    if (res == NULL) return;
    int64_t invites = hn_rt_pg_int(res, 0, 0), accepted = hn_rt_pg_int(res, 0, 1),
            by_visitor = hn_rt_pg_int(res, 0, 2);
    PQclear(res);

    hn_buf_append(&out, "{", 1);
    bool first = true;
    hn_json_kint(&out, &first, "widget_id", wid);
    k_time_us(&out, &first, "from", from);
    k_time_us(&out, &first, "to", to);
    hn_json_kint(&out, &first, "visitors", visitors);
    hn_json_kint(&out, &first, "sessions", sessions);
    hn_json_kint(&out, &first, "page_views", pvs);
    hn_json_kint(&out, &first, "events", events);
    hn_json_kfixed(&out, &first, "avg_time_on_site_s", ratio(engaged, sessions) / 1000.0, 1);
    hn_json_kfixed(&out, &first, "avg_pages", ratio(spages, sessions), 2);
    hn_json_kfixed(&out, &first, "bounce_rate", ratio(bounces, sessions), 4);
    hn_json_kfixed(&out, &first, "chat_engagement_rate", ratio(chats, sessions), 4);
    hn_json_kint(&out, &first, "invitations_sent", invites);
    hn_json_kfixed(&out, &first, "invitation_acceptance_rate", ratio(accepted, invites), 4);
    hn_json_kint(&out, &first, "chats_by_agents", invites);
    hn_json_kint(&out, &first, "chats_by_visitors", by_visitor);
    if (now_live >= 0)
        hn_json_kint(&out, &first, "active_now", now_live);
    else
        hn_json_knull(&out, &first, "active_now");
    hn_buf_append(&out, "}", 1);
    hn_rt_answer(rs, &out);
    hn_buf_free(&out);
}

/* ---- timeseries ------------------------------------------------------------------------ */

/* Buckets come back sparse (hours without traffic have no row) and are
 * zero-filled here, in UTC arithmetic, so no session time zone or DST can
 * shift a day. */
static const char series_sql[] =
    "SELECT floor(extract(epoch FROM hour) / $4::integer)::bigint AS b,"
    " sum(visitors_hour), sum(visitors_day), sum(sessions), sum(page_views), sum(events),"
    " sum(bounces), sum(engaged_ms), sum(session_pages)"
    " FROM widget_rollup_hourly WHERE widget_id = $1 AND hour >= $2 AND hour < $3"
    " GROUP BY b ORDER BY b";

#define MAX_BUCKETS 2000

/* The widget's first rollup hour (µs), or -1 when it has none: from=all
 * starts the series there rather than with 20,000 empty days since 1970. */
static const char first_hour_sql[] =
    "SELECT (extract(epoch FROM min(hour)) * 1000000)::bigint FROM widget_rollup_hourly"
    " WHERE widget_id = $1";

void hn_route_timeseries(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    static const char *const allowed[] = {"from", "to", "interval"};
    static const char *const intervals[] = {"hour", "day"};
    char err[HN_PARAM_ERR_CAP], wbuf[24], f[HN_TIME_CAP], t[HN_TIME_CAP], ubuf[16];
    int64_t from, to;
    int iv = -1;
    bool all = false;
    hn_buf out = {0};

    if (!hn_rt_check_keys(rq, rs, allowed, 3) || !hn_rt_range_rollup(rq, rs, &from, &to, &all))
        return;
    const char *is = hn_api_query(rq, "interval");
    if (is && hn_param_enum("interval", is, intervals, 2, -1, &iv, err, sizeof(err)) != HN_OK) {
        hn_api_error(rs, 400, "%s", err);
        return;
    }
    int64_t wid = hn_rt_widget_id(rq);
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)wid);
    if (all) {
        const char *p1[] = {wbuf};
        PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, first_hour_sql, 1, p1);
        if (res == NULL) return;
        int64_t first = PQgetisnull(res, 0, 0) ? -1 : hn_rt_pg_int(res, 0, 0);
        PQclear(res);
        from = first >= 0 && first < to ? first : to - HN_US_PER_HOUR;
    }
    if (iv < 0) iv = to - from <= 7 * HN_US_PER_DAY ? 0 : 1;   /* hours up to a week */
    int64_t unit = iv == 0 ? HN_US_PER_HOUR : HN_US_PER_DAY;
    from = hn_floor_us(from, unit);
    to = hn_ceil_us(to, unit);
    int64_t nb = (to - from) / unit;
    if (nb > MAX_BUCKETS) {
        hn_api_error(rs, 400, "interval: %lld buckets, at most %d (use %sa shorter range)",
                     (long long)nb, MAX_BUCKETS, iv == 0 ? "interval=day or " : "");
        return;
    }
    snprintf(ubuf, sizeof(ubuf), "%lld", (long long)(unit / HN_US_PER_S));
    hn_fmt_time_us(from, f);
    hn_fmt_time_us(to, t);
    const char *p[] = {wbuf, f, t, ubuf};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, series_sql, 4, p);
    if (res == NULL) return;

    hn_buf_append(&out, "{", 1);
    bool first = true;
    hn_json_kint(&out, &first, "widget_id", wid);
    hn_json_kstr(&out, &first, "interval", intervals[iv]);
    k_time_us(&out, &first, "from", from);
    k_time_us(&out, &first, "to", to);
    hn_json_kraw(&out, &first, "buckets", "[", 1);
    int row = 0, nrows = PQntuples(res);
    int64_t usec = unit / HN_US_PER_S;
    for (int64_t i = 0; i < nb; i++) {
        int64_t start = from + i * unit, b = start / HN_US_PER_S / usec;
        int64_t v[8] = {0};
        while (row < nrows && hn_rt_pg_int(res, row, 0) < b) row++;
        if (row < nrows && hn_rt_pg_int(res, row, 0) == b)
            for (int k = 0; k < 8; k++) v[k] = hn_rt_pg_int(res, row, k + 1);
        /* v: visitors_hour, visitors_day, sessions, page_views, events, bounces, engaged_ms, session_pages */
        hn_buf_append(&out, i ? ",{" : "{", i ? 2 : 1);
        bool bf = true;
        k_time_us(&out, &bf, "time", start);
        hn_json_kint(&out, &bf, "visitors", iv == 0 ? v[0] : v[1]);
        hn_json_kint(&out, &bf, "sessions", v[2]);
        hn_json_kint(&out, &bf, "page_views", v[3]);
        hn_json_kint(&out, &bf, "events", v[4]);
        hn_json_kfixed(&out, &bf, "bounce_rate", ratio(v[5], v[2]), 4);
        hn_json_kfixed(&out, &bf, "avg_time_on_site_s", ratio(v[6], v[2]) / 1000.0, 1);
        hn_json_kfixed(&out, &bf, "avg_pages", ratio(v[7], v[2]), 2);
        hn_buf_append(&out, "}", 1);
    }
    hn_buf_append(&out, "]}", 2);
    PQclear(res);
    hn_rt_answer(rs, &out);
    hn_buf_free(&out);
}

/* ---- breakdown ------------------------------------------------------------------------------- */

/* The window sums run before LIMIT: total and distinct values cover all.
 * A value can sum to 0 (a session the drain moved to another referrer when
 * its first page view came late): it is not there. */
static const char breakdown_sql[] =
    "SELECT value, sum(n)::bigint AS cnt, (sum(sum(n)) OVER ())::bigint, count(*) OVER ()"
    " FROM widget_rollup_dims"
    " WHERE widget_id = $1 AND dim = $2 AND day >= $3::date AND day < $4::date"
    " GROUP BY value HAVING sum(n) <> 0 ORDER BY cnt DESC, value LIMIT $5::integer";

void hn_route_breakdown(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    static const char *const allowed[] = {"by", "from", "to", "limit"};
    static const char *const dims[] = {"page", "referrer", "country", "browser", "os", "device", "event"};
    char err[HN_PARAM_ERR_CAP], wbuf[24], f[HN_TIME_CAP], t[HN_TIME_CAP], lbuf[24];
    int64_t from, to, limit;
    int by;
    hn_buf out = {0};

    if (!hn_rt_check_keys(rq, rs, allowed, 4)) return;
    if (hn_param_enum("by", hn_api_query(rq, "by"), dims, 7, -1, &by, err, sizeof(err)) ||
        hn_param_int("limit", hn_api_query(rq, "limit"), 1, 1000, 100, &limit, err, sizeof(err))) {
        hn_api_error(rs, 400, "%s", err);
        return;
    }
    if (!hn_rt_range_rollup(rq, rs, &from, &to, NULL)) return;
    from = hn_floor_us(from, HN_US_PER_DAY);
    to = hn_ceil_us(to, HN_US_PER_DAY);
    int64_t wid = hn_rt_widget_id(rq);
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)wid);
    snprintf(lbuf, sizeof(lbuf), "%lld", (long long)limit);
    hn_fmt_date_us(from, f);
    hn_fmt_date_us(to, t);
    const char *p[] = {wbuf, dims[by], f, t, lbuf};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, breakdown_sql, 5, p);
    if (res == NULL) return;
    int n = PQntuples(res);
    int64_t total = n ? hn_rt_pg_int(res, 0, 2) : 0;

    hn_buf_append(&out, "{", 1);
    bool first = true;
    hn_json_kint(&out, &first, "widget_id", wid);
    hn_json_kstr(&out, &first, "by", dims[by]);
    hn_json_kstr(&out, &first, "counts", by == 0 ? "page_views" : by == 6 ? "events" : "sessions");
    k_time_us(&out, &first, "from", from);
    k_time_us(&out, &first, "to", to);
    hn_json_kint(&out, &first, "total", total);
    hn_json_kint(&out, &first, "distinct_values", n ? hn_rt_pg_int(res, 0, 3) : 0);
    hn_json_kraw(&out, &first, "results", "[", 1);
    for (int i = 0; i < n; i++) {
        int64_t cnt = hn_rt_pg_int(res, i, 1);
        hn_buf_append(&out, i ? ",{" : "{", i ? 2 : 1);
        bool bf = true;
        hn_json_kstrn(&out, &bf, "value", PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
        hn_json_kint(&out, &bf, "count", cnt);
        hn_json_kfixed(&out, &bf, "share", ratio(cnt, total), 4);
        hn_buf_append(&out, "}", 1);
    }
    hn_buf_append(&out, "]}", 2);
    PQclear(res);
    hn_rt_answer(rs, &out);
    hn_buf_free(&out);
}

/* ---- past sessions --------------------------------------------------------------------------- */

/* Keyset pagination on (session_started_at, id), the order of the index
 * widget_visitor_sessions_started. The optional filters are "$n IS NULL
 * OR …": an unnamed statement is planned with its parameter values, so a
 * NULL folds the condition away and the index still drives the scan. The
 * start time goes out in µs (column 1) so the cursor is exact. */
static const char sessions_sql[] =
    "SELECT id, (extract(epoch FROM session_started_at) * 1000000)::bigint,"
    " session_id, visitor_id, visitor_name, visitor_email, ip_address, country, region, city,"
    " browser, os, device_type, landing_page, referrer, current_page_url, current_page_title,"
    " page_views, events_count, total_time_seconds, " HN_SQL_MS("session_started_at") ","
    " " HN_SQL_MS("last_active_at") ", " HN_SQL_MS("session_ended_at") ","
    " is_active, has_chatted, messages_sent"
    " FROM widget_visitor_sessions"
    " WHERE widget_id = $1 AND session_started_at >= $2 AND session_started_at < $3"
    " AND ($4::boolean IS NULL OR is_active = $4::boolean)"
    " AND ($5::timestamptz IS NULL OR (session_started_at, id) < ($5::timestamptz, $6::bigint))"
    " ORDER BY session_started_at DESC, id DESC LIMIT $7::integer";
static const hn_col sessions_cols[] = {
    {"session_id", HN_COL_STR},     {"visitor_id", HN_COL_STR},
    {"visitor_name", HN_COL_SEALED}, {"visitor_email", HN_COL_SEALED},
    {"ip", HN_COL_STR},             {"country", HN_COL_STR},
    {"region", HN_COL_STR},         {"city", HN_COL_STR},
    {"browser", HN_COL_STR},        {"os", HN_COL_STR},
    {"device", HN_COL_STR},         {"landing_page", HN_COL_STR},
    {"referrer", HN_COL_STR},       {"current_page_url", HN_COL_STR},
    {"current_page_title", HN_COL_STR},
    {"page_views", HN_COL_INT},     {"events_count", HN_COL_INT},
    {"engaged_s", HN_COL_INT},      {"started", HN_COL_TIME},
    {"last_active", HN_COL_TIME},   {"ended", HN_COL_TIME},
    {"is_active", HN_COL_BOOL},     {"has_chatted", HN_COL_BOOL},
    {"messages_sent", HN_COL_INT},
};

void hn_route_sessions(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    static const char *const allowed[] = {"from", "to", "limit", "cursor", "active"};
    char err[HN_PARAM_ERR_CAP], wbuf[24], f[HN_TIME_CAP], t[HN_TIME_CAP], cbuf[HN_TIME_CAP],
        ibuf[24], lbuf[24];
    int64_t from, to, limit;
    int active;
    hn_cursor cur;
    bool has_cur = false;
    hn_buf out = {0};

    if (!hn_rt_check_keys(rq, rs, allowed, 5)) return;
    if (hn_param_int("limit", hn_api_query(rq, "limit"), 1, 1000, 100, &limit, err, sizeof(err)) ||
        hn_param_bool("active", hn_api_query(rq, "active"), &active, err, sizeof(err))) {
        hn_api_error(rs, 400, "%s", err);
        return;
    }
    const char *cs = hn_api_query(rq, "cursor");
    if (cs) {
        if (hn_cursor_decode(cs, 'S', false, &cur) != HN_OK) {
            hn_api_error(rs, 400, "cursor: not a cursor of this route (pass next_cursor as given)");
            return;
        }
        has_cur = true;
        hn_fmt_time_us(cur.t, cbuf);
        snprintf(ibuf, sizeof(ibuf), "%lld", (long long)cur.id);
    }
    if (!hn_rt_range(rq, rs, &from, &to)) return;
    int64_t wid = hn_rt_widget_id(rq);
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)wid);
    snprintf(lbuf, sizeof(lbuf), "%lld", (long long)limit + 1);
    hn_fmt_time_us(from, f);
    hn_fmt_time_us(to, t);
    const char *p[] = {wbuf, f, t, active < 0 ? NULL : active ? "true" : "false",
                       has_cur ? cbuf : NULL, has_cur ? ibuf : NULL, lbuf};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, sessions_sql, 7, p);
    if (res == NULL) return;
    int n = PQntuples(res);
    bool more = n > limit;
    if (more) n = (int)limit;

    hn_buf_append(&out, "{", 1);
    bool first = true;
    hn_json_kint(&out, &first, "widget_id", wid);
    k_time_us(&out, &first, "from", from);
    k_time_us(&out, &first, "to", to);
    hn_json_kraw(&out, &first, "sessions", "[", 1);
    for (int i = 0; i < n; i++) {
        hn_buf_append(&out, i ? ",{" : "{", i ? 2 : 1);
        bool bf = true;
        hn_rt_pg_row(&out, &bf, res, i, 2, sessions_cols, (int)HN_ARRAY_LEN(sessions_cols));
        hn_buf_append(&out, "}", 1);
    }
    hn_buf_append(&out, "]", 1);
    hn_cursor next = {.kind = 'S'};
    if (more) next.t = hn_rt_pg_int(res, n - 1, 1), next.id = hn_rt_pg_int(res, n - 1, 0);
    hn_rt_next_cursor(&out, &first, more ? &next : NULL);
    hn_buf_append(&out, "}", 1);
    PQclear(res);
    hn_rt_answer(rs, &out);
    hn_buf_free(&out);
}

/* ---- CSV export --------------------------------------------------------------------------------
 *
 * COPY … TO STDOUT cannot take bind parameters, so this is the one place
 * where values go into SQL text. Only values this file made itself do: the
 * widget id as an integer (%lld of an int64 the server validated) and the
 * range as timestamps hn_fmt_time_us printed from parsed integers
 * ("2026-11-01T00:00:00.000000Z": digits, '-', ':', '.', 'T', 'Z').
 * No byte of the client's text reaches the statement.
 *
 * Cells that a spreadsheet would run as a formula (starting with = + - @
 * tab or CR) get a leading ' — every text column, since nearly all of them
 * come from visitors (OWASP "CSV injection").
 */
#define CSV_SAFE(col) \
    "CASE WHEN " col " ~ '^[-=+@\\t\\r]' THEN '''' || " col " ELSE " col " END AS " col
#define CSV_TIME(col, as) \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"') AS " as

#define EXPORT_SESSIONS \
    "COPY (SELECT " CSV_SAFE("session_id") ", " CSV_SAFE("visitor_id") "," \
    " " CSV_TIME("session_started_at", "started") ", " CSV_TIME("last_active_at", "last_active") "," \
    " " CSV_TIME("session_ended_at", "ended") ", is_active, page_views, events_count," \
    " total_time_seconds AS engaged_s, " CSV_SAFE("landing_page") ", " CSV_SAFE("referrer") "," \
    " " CSV_SAFE("current_page_url") ", " CSV_SAFE("current_page_title") "," \
    " " CSV_SAFE("ip_address") ", " CSV_SAFE("country") ", " CSV_SAFE("region") "," \
    " " CSV_SAFE("city") ", " CSV_SAFE("user_agent") ", " CSV_SAFE("browser") "," \
    " " CSV_SAFE("browser_version") ", " CSV_SAFE("os") ", " CSV_SAFE("os_version") "," \
    " " CSV_SAFE("device_type") ", " CSV_SAFE("language") ", screen_width, screen_height," \
    " " CSV_SAFE("visitor_name") ", " CSV_SAFE("visitor_email") ", " CSV_SAFE("visitor_phone") "," \
    " has_chatted, messages_sent" \
    " FROM widget_visitor_sessions" \
    " WHERE widget_id = %lld AND session_started_at >= '%s' AND session_started_at < '%s'" \
    " ORDER BY session_started_at, id) TO STDOUT WITH (FORMAT csv, HEADER)"

#define EXPORT_PAGEVIEWS \
    "COPY (SELECT " CSV_TIME("recv_at", "time") ", " CSV_SAFE("session_id") "," \
    " " CSV_SAFE("visitor_id") ", " CSV_SAFE("url") ", " CSV_SAFE("path") "," \
    " " CSV_SAFE("title") ", " CSV_SAFE("referrer") ", engaged_ms" \
    " FROM widget_page_views" \
    " WHERE widget_id = %lld AND recv_at >= '%s' AND recv_at < '%s'" \
    " ORDER BY recv_at, seq) TO STDOUT WITH (FORMAT csv, HEADER)"

#define EXPORT_EVENTS \
    "COPY (SELECT " CSV_TIME("recv_at", "time") ", " CSV_SAFE("session_id") "," \
    " " CSV_SAFE("visitor_id") ", event_type AS type, " CSV_SAFE("event_name") "," \
    " " CSV_SAFE("url") ", CASE WHEN event_data::text ~ '^[-=+@\\t\\r]' THEN '''' ||" \
    " event_data::text ELSE " HN_SQL_EVENT_DATA " END AS event_data, engaged_ms" \
    " FROM widget_visitor_events" \
    " WHERE widget_id = %lld AND recv_at >= '%s' AND recv_at < '%s'%s" \
    " ORDER BY recv_at, seq) TO STDOUT WITH (FORMAT csv, HEADER)"

/* Leaves the connection usable after a COPY that is cut short: the rest of
 * the data is read and dropped, then the results until NULL. */
static void copy_finish(hn_api_worker *w, PGconn *conn, bool cancel) {
    if (cancel) {
        char err[256];
        PGcancel *pc = PQgetCancel(conn);
        if (pc) {
            if (!PQcancel(pc, err, sizeof(err))) hn_warn("event=export_cancel_failed err='%s'", err);
            PQfreeCancel(pc);
        }
        char *row;
        int n;
        while ((n = PQgetCopyData(conn, &row, 0)) > 0) PQfreemem(row);
        if (n == -2) {
            hn_api_pg_broken(w);
            return;
        }
    }
    PGresult *r;
    while ((r = PQgetResult(conn)) != NULL) PQclear(r);
    if (PQstatus(conn) != CONNECTION_OK) hn_api_pg_broken(w);
}

/* The columns of each export that may hold sealed values (common/datakey.h;
 * bit i: column i): sessions' visitor_name, visitor_email, visitor_phone;
 * events' event_data (identify events' only: HN_SQL_EVENT_DATA). What a
 * visitor sent in any other column is never opened, whatever it looks like. */
static const uint64_t sealed_cols[] = {
    1ull << 26 | 1ull << 27 | 1ull << 28,      /* sessions */
    0,                                         /* pageviews */
    1ull << 6,                                 /* events */
};

void hn_route_export(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    static const char *const allowed[] = {"what", "from", "to", "include"};
    static const char *const whats[] = {"sessions", "pageviews", "events"};
    static const char *const includes[] = {"heartbeats"};
    char err[HN_PARAM_ERR_CAP], f[HN_TIME_CAP], t[HN_TIME_CAP], day[HN_TIME_CAP], fname[96];
    int64_t from, to;
    int what, inc = -1;
    hn_buf sql = {0}, chunk = {0};

    if (!hn_rt_check_keys(rq, rs, allowed, 4)) return;
    if (hn_param_enum("what", hn_api_query(rq, "what"), whats, 3, -1, &what, err, sizeof(err))) {
        hn_api_error(rs, 400, "%s", err);
        return;
    }
    const char *is = hn_api_query(rq, "include");
    if (is && (what != 2 || hn_param_enum("include", is, includes, 1, -1, &inc, err, sizeof(err)))) {
        hn_api_error(rs, 400, "include: only include=heartbeats, with what=events");
        return;
    }
    if (!hn_rt_range(rq, rs, &from, &to)) return;
    int64_t wid = hn_rt_widget_id(rq);
    hn_fmt_time_us(from, f);
    hn_fmt_time_us(to, t);
    hn_fmt_date_us(from, day);
    if (what == 0)
        hn_buf_printf(&sql, EXPORT_SESSIONS, (long long)wid, f, t);
    else if (what == 1)
        hn_buf_printf(&sql, EXPORT_PAGEVIEWS, (long long)wid, f, t);
    else
        hn_buf_printf(&sql, EXPORT_EVENTS, (long long)wid, f, t,
                      inc == 0 ? "" : " AND event_type <> 'hb'");
    hn_buf_append(&sql, "", 1);        /* NUL */
    snprintf(fname, sizeof(fname), "herenow-%lld-%s-%s.csv", (long long)wid, whats[what], day);

    /* The worker's statement_timeout (HERENOW_API_TIMEOUT_MS) would cut a
     * long export, or one to a slow reader, mid-stream: the export runs in
     * its own transaction without it. The transaction is ended below (or by
     * the pool, which rolls back whatever a handler leaves open). */
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, "BEGIN", 0, NULL);
    if (res) {
        PQclear(res);
        res = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, "SET LOCAL statement_timeout = 0", 0, NULL);
    }
    if (res == NULL) {
        hn_buf_free(&sql);
        return;
    }
    PQclear(res);
    res = hn_api_pg_exec(w, rs, PGRES_COPY_OUT, sql.p, 0, NULL);
    hn_buf_free(&sql);
    if (res == NULL) return;
    PQclear(res);
    PGconn *conn = w->pg;

    if (hn_api_stream_begin(rs, 200, "text/csv; charset=utf-8", fname) != HN_OK) {
        copy_finish(w, conn, true);
        return;
    }
    /* rows are batched into chunks: one hand-over per ~64 KiB, not per row */
    hn_buf_init(&chunk, 64 * 1024);
    bool gone = false;
    int n;
    char *row;
    while ((n = PQgetCopyData(conn, &row, 0)) > 0) {
        /* what is sealed at rest (common/datakey.h) is exported opened; a
         * value that does not open is left sealed (and counted) */
        if (sealed_cols[what] && memmem(row, (size_t)n, HN_DK_PREFIX, HN_DK_PREFIX_LEN) != NULL)
            hn_dk_open_csv(&chunk, row, (size_t)n, sealed_cols[what]);
        else
            hn_buf_append(&chunk, row, (size_t)n);
        PQfreemem(row);
        if (chunk.len >= 60 * 1024) {
            if (hn_api_stream_write(rs, chunk.p, chunk.len) != HN_OK) {
                gone = true;
                break;
            }
            hn_buf_reset(&chunk);
        }
    }
    if (gone) {
        copy_finish(w, conn, true);
    } else if (n == -2) {
        hn_error("event=export_failed err='%s'", PQerrorMessage(conn));
        hn_api_error(rs, 500, "export failed");           /* after begin: cuts the stream */
        hn_api_pg_broken(w);
    } else {
        if (chunk.len && hn_api_stream_write(rs, chunk.p, chunk.len) != HN_OK) gone = true;
        /* the COPY's own result says whether it ended well */
        PGresult *r;
        bool failed = false;
        while ((r = PQgetResult(conn)) != NULL) {
            if (PQresultStatus(r) != PGRES_COMMAND_OK && !failed) {
                failed = true;
                hn_error("event=export_failed err='%s'", PQresultErrorMessage(r));
            }
            PQclear(r);
        }
        if (failed && !gone) hn_api_error(rs, 500, "export failed");
    }
    hn_buf_free(&chunk);
    if (w->pg && PQtransactionStatus(w->pg) != PQTRANS_IDLE) {
        PGresult *end = PQexec(w->pg, "COMMIT");   /* read only: ends it either way */
        PQclear(end);
    }
}
