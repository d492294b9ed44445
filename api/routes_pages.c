/*
 * routes_pages.c: pages now and the past's "who was here" —
 *
 *   pages/live                the live hub's pages table (api/live/pages.c):
 *                             no Redis or PostgreSQL work per request
 *   active-visitors?at=T      PostgreSQL: the live rule replayed on the stored
 *                             beacons in (T − live window, T]
 *   concurrency               PostgreSQL: the same rule over a range, swept into
 *                             per-bucket peak and time-weighted average
 *
 * The rule (docs/API.md, time travel): a session is on the site at T when
 * its latest beacon at or before T came within the live window before T and
 * is not an `end`. Each beacon therefore keeps its session present from its
 * receive time until the session's next beacon or one live window later,
 * whichever is first; an `end` keeps it present not at all. Both routes read
 * page views and the other beacons by (widget_id, recv_at), so PostgreSQL
 * reads only the days (partitions) of the instant or range.
 */
#include "api/routes.h"

#include "api/live/live.h"
#include "api/live/snapshot.h"
#include "common/datakey.h"
#include "common/json.h"
#include "common/timefmt.h"
#include "proto/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGES_WAIT_MS 250    /* a worker waits this long at most for a widget's first load */

/* ---- pages now ------------------------------------------------------------------ */

void hn_route_pages_live(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    static const char *const allowed[] = {"limit", "cursor"};
    char err[HN_PARAM_ERR_CAP];
    int64_t limit, off = 0;
    hn_live_pages *p = NULL;
    hn_buf out = {0};
    (void)w;

    if (!hn_rt_check_keys(rq, rs, allowed, 2)) return;
    if (hn_param_int("limit", hn_api_query(rq, "limit"), 1, 1000, 100, &limit, err, sizeof(err))) {
        hn_api_error(rs, 400, "%s", err);
        return;
    }
    const char *cs = hn_api_query(rq, "cursor");
    if (cs) {
        hn_cursor cur;
        if (hn_cursor_decode(cs, 'P', false, &cur) != HN_OK || cur.t < 0 || cur.id != 0) {
            hn_api_error(rs, 400, "cursor: not a cursor of this route (pass next_cursor as given)");
            return;
        }
        off = cur.t;
    }
    if (rq->live == NULL) {
        hn_api_error(rs, 503, "live hub not running");
        return;
    }
    /* a widget no one watches: the ask starts its load; a worker thread waits
     * for it only briefly (a big list takes seconds), then the caller retries */
    int64_t wait = rq->cfg->api_timeout_ms < PAGES_WAIT_MS ? rq->cfg->api_timeout_ms : PAGES_WAIT_MS;
    if (hn_live_pages_get(rq->live, hn_rt_widget_id(rq), wait, &p) != HN_OK) {
        hn_api_error(rs, 503, "live list loading, retry");
        return;
    }
    hn_buf_append(&out, "{", 1);
    bool f = true;
    hn_live_pages_json_head(&out, &f, p);              /* widget_id, as_of, counts */
    hn_json_ktime(&out, &f, "now", (int64_t)hn_now_ms());
    size_t from = (size_t)off < p->n ? (size_t)off : p->n;
    size_t n = p->n - from < (size_t)limit ? p->n - from : (size_t)limit;
    hn_json_kint(&out, &f, "count", (int64_t)n);
    hn_json_kraw(&out, &f, "pages", "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i) hn_buf_append(&out, ",", 1);
        hn_live_page_json(&out, &p->v[from + i]);
    }
    hn_buf_append(&out, "]", 1);
    hn_cursor cur = {.kind = 'P', .t = (int64_t)(from + n), .id = 0};
    hn_rt_next_cursor(&out, &f, from + n < p->n ? &cur : NULL);
    hn_buf_append(&out, "}", 1);
    hn_rt_answer(rs, &out);
    hn_live_pages_unref(p);
    hn_buf_free(&out);
}

/* ---- who was here at T ---------------------------------------------------------------- */

/* The beacons of (T − window, T] of a widget, page views and the rest. */
#define BEACONS_AROUND(lo, hi)                                                                  \
    "SELECT session_id, recv_at, 'pv'::text AS t FROM widget_page_views"                       \
    " WHERE widget_id = $1 AND recv_at > " lo " AND recv_at <= " hi                            \
    " UNION ALL SELECT session_id, recv_at, event_type FROM widget_visitor_events"             \
    " WHERE widget_id = $1 AND recv_at > " lo " AND recv_at <= " hi

/* Sessions on the site at $2: their latest beacon in ($3, $2] ($3 = $2 −
 * the live window, computed here so that PostgreSQL prunes the daily
 * partitions while planning: ~0.3 ms of planning instead of ~2 ms over 17
 * days of partitions, docs/BENCHMARKS.md), an `end` winning a tie, unless
 * it is an `end`; newest first. */
static const char here_sql[] =
    "SELECT session_id, " HN_SQL_MS("recv_at") ", t = 'hide' FROM ("
    " SELECT DISTINCT ON (session_id) session_id, recv_at, t FROM ("
    BEACONS_AROUND("$3::timestamptz", "$2::timestamptz")
    " ) b ORDER BY session_id, recv_at DESC, (t = 'end') DESC) l"
    " WHERE t <> 'end' ORDER BY 2 DESC, 1 DESC";

/* The earliest start of the page's sessions: the lower bound ($4) of the
 * page views and events read below, for the same pruning at plan time. */
static const char here_start_sql[] =
    "SELECT " HN_SQL_MS("min(session_started_at)") " FROM widget_visitor_sessions"
    " WHERE widget_id = $1 AND session_id = ANY ($2::text[])";

/* The page's sessions as of $2: the row, and their page views in [$4, $2]. */
static const char here_items_sql[] =
    "SELECT s.session_id, " HN_SQL_MS("s.session_started_at") ", pv.url, pv.title,"
    " coalesce(pv.n, 0), coalesce(pv.eng, 0) + coalesce(ev.eng, 0), s.landing_page, s.referrer,"
    " s.ip_address, s.country, s.region, s.city, s.browser, s.browser_version, s.os, s.os_version,"
    " s.device_type, s.visitor_id, s.visitor_name, s.visitor_email, s.visitor_phone,"
    " CASE WHEN s.has_chatted THEN '1' ELSE '0' END, s.messages_sent, s.language,"
    " CASE WHEN s.screen_width IS NOT NULL AND s.screen_height IS NOT NULL"
    "  THEN s.screen_width || 'x' || s.screen_height END"
    " FROM widget_visitor_sessions s"
    " LEFT JOIN LATERAL (SELECT count(*) AS n, sum(engaged_ms) AS eng,"
    "  (array_agg(url ORDER BY recv_at DESC, seq DESC))[1] AS url,"
    "  (array_agg(title ORDER BY recv_at DESC, seq DESC))[1] AS title"
    "  FROM widget_page_views p WHERE p.widget_id = s.widget_id AND p.session_id = s.session_id"
    "  AND p.recv_at >= s.session_started_at AND p.recv_at >= $4::timestamptz"
    "  AND p.recv_at <= $2::timestamptz) pv ON true"
    " LEFT JOIN LATERAL (SELECT sum(engaged_ms) AS eng FROM widget_visitor_events e"
    "  WHERE e.widget_id = s.widget_id AND e.session_id = s.session_id"
    "  AND e.recv_at >= s.session_started_at AND e.recv_at >= $4::timestamptz"
    "  AND e.recv_at <= $2::timestamptz) ev ON true"
    " WHERE s.widget_id = $1 AND s.session_id = ANY ($3::text[])";

/* here_items_sql's columns 2.. as snapshot fields (HN_SF_*). */
static const int item_fields[] = {
    HN_SF_URL, HN_SF_TITLE, HN_SF_PAGEVIEWS, HN_SF_ENGAGED_MS, HN_SF_LANDING, HN_SF_REFERRER,
    HN_SF_IP, HN_SF_COUNTRY, HN_SF_REGION, HN_SF_CITY, HN_SF_BROWSER, HN_SF_BROWSER_VERSION,
    HN_SF_OS, HN_SF_OS_VERSION, HN_SF_DEVICE, HN_SF_VISITOR, HN_SF_NAME, HN_SF_EMAIL,
    HN_SF_PHONE, HN_SF_HAS_CHATTED, HN_SF_MESSAGES_SENT, HN_SF_LANG, HN_SF_SCREEN,
};

enum { ST_ALL, ST_ACTIVE, ST_IDLE };

static const char *status_at(const PGresult *r, int i, int64_t at_ms, const hn_config *cfg) {
    return hn_snap_status(PQgetvalue(r, i, 2)[0] == 't' ? "idle" : "active", PQgetvalue(r, i, 1),
                          hn_rt_pg_int(r, i, 1), at_ms, cfg);
}

void hn_route_active_at(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    static const char *const allowed[] = {"at", "limit", "cursor", "status"};
    static const char *const statuses[] = {"all", "active", "idle"};
    char err[HN_PARAM_ERR_CAP], wbuf[24], atbuf[HN_TIME_CAP], lobuf[HN_TIME_CAP], startbuf[HN_TIME_CAP];
    int64_t limit, at_us, cur_t = 0;
    int status;
    char cur_sid[65] = "";
    bool has_cur = false;
    PGresult *here = NULL, *items = NULL;
    hn_buf out = {0}, ids = {0}, opened[3] = {{0}, {0}, {0}};
    int *page = NULL;

    if (!hn_rt_check_keys(rq, rs, allowed, 4)) return;
    if (hn_param_int("limit", hn_api_query(rq, "limit"), 1, 1000, 100, &limit, err, sizeof(err)) ||
        hn_param_enum("status", hn_api_query(rq, "status"), statuses, 3, ST_ALL, &status, err,
                      sizeof(err))) {
        hn_api_error(rs, 400, "%s", err);
        return;
    }
    int64_t now_us = (int64_t)hn_now_us();
    if (hn_param_parse_time(hn_api_query(rq, "at"), &at_us) != HN_OK) {
        char ex[40];
        hn_api_error(rs, 400, "at: want an ISO 8601 date (2026-11-01) or date-time with zone "
                     "(2026-11-01T14:32:00Z), got '%s'", hn_param_excerpt(hn_api_query(rq, "at"), ex));
        return;
    }
    if (at_us > now_us) {
        hn_api_error(rs, 400, "at: in the future (the live list is active-visitors without at)");
        return;
    }
    if (at_us < now_us - HN_RANGE_MAX_US) {
        hn_api_error(rs, 400, "at: more than 400 days ago");
        return;
    }
    const char *cs = hn_api_query(rq, "cursor");
    if (cs) {
        hn_cursor cur;
        if (hn_cursor_decode(cs, 'A', true, &cur) != HN_OK) {
            hn_api_error(rs, 400, "cursor: not a cursor of this route (pass next_cursor as given)");
            return;
        }
        has_cur = true;
        cur_t = cur.t;
        memcpy(cur_sid, cur.sid, sizeof(cur_sid));
    }
    int64_t wid = hn_rt_widget_id(rq), at_ms = at_us / 1000;
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)wid);
    hn_fmt_time_us(at_us, atbuf);
    hn_fmt_time_us(at_us - rq->cfg->live_window_s * 1000000, lobuf);
    {
        const char *p[] = {wbuf, atbuf, lobuf};
        here = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, here_sql, 3, p);
        if (here == NULL) goto out;
    }
    /* totals over everyone there; the page: after the cursor, by status */
    int n = PQntuples(here), npage = 0;
    int64_t n_active = 0, page_active = 0;
    bool more = false;
    page = hn_xcalloc((size_t)limit, sizeof(*page));
    for (int i = 0; i < n; i++) {
        bool act = strcmp(status_at(here, i, at_ms, rq->cfg), "active") == 0;
        n_active += act;
        if (has_cur) {
            int64_t t = hn_rt_pg_int(here, i, 1);
            if (t > cur_t || (t == cur_t && strcmp(PQgetvalue(here, i, 0), cur_sid) >= 0)) continue;
        }
        if ((status == ST_ACTIVE && !act) || (status == ST_IDLE && act)) continue;
        if (npage == limit) {
            more = true;
            continue;
        }
        page[npage++] = i;
        page_active += act;
    }
    if (npage) {
        /* the page's ids as a text[] literal: ids are [A-Za-z0-9_-], no quoting needed */
        hn_buf_append(&ids, "{", 1);
        for (int k = 0; k < npage; k++) {
            if (k) hn_buf_append(&ids, ",", 1);
            hn_buf_printf(&ids, "%s", PQgetvalue(here, page[k], 0));
        }
        hn_buf_append(&ids, "}", 2);
        const char *sp[] = {wbuf, ids.p};
        PGresult *st = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, here_start_sql, 2, sp);
        if (st == NULL) goto out;
        /* no row for them (erased since): any bound will do, none is read */
        int64_t start_ms = PQgetisnull(st, 0, 0) ? at_ms : hn_rt_pg_int(st, 0, 0);
        PQclear(st);
        hn_fmt_time_us(start_ms * 1000, startbuf);
        const char *p[] = {wbuf, atbuf, ids.p, startbuf};
        items = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, here_items_sql, 4, p);
        if (items == NULL) goto out;
    }

    hn_buf_append(&out, "{", 1);
    bool f = true;
    hn_json_kint(&out, &f, "widget_id", wid);
    hn_json_ktime(&out, &f, "at", at_ms);
    hn_json_ktime(&out, &f, "now", at_ms);
    hn_json_kstr(&out, &f, "source", "postgresql");
    hn_json_kint(&out, &f, "total", n);
    hn_json_kint(&out, &f, "active_count", n_active);
    hn_json_kint(&out, &f, "idle_count", n - n_active);
    hn_json_kint(&out, &f, "active", page_active);
    hn_json_kint(&out, &f, "count", npage);
    hn_json_kraw(&out, &f, "visitors", "[", 1);
    int nitems = items ? PQntuples(items) : 0;
    for (int k = 0; k < npage; k++) {
        int i = page[k];
        const char *sid = PQgetvalue(here, i, 0);
        const char *fv[HN_SF__COUNT] = {0};
        fv[HN_SF_STATUS] = PQgetvalue(here, i, 2)[0] == 't' ? "idle" : "active";
        fv[HN_SF_LAST_SEEN] = PQgetvalue(here, i, 1);
        for (int r = 0; r < nitems; r++) {
            if (strcmp(PQgetvalue(items, r, 0), sid) != 0) continue;
            fv[HN_SF_STARTED] = PQgetvalue(items, r, 1);
            for (size_t c = 0; c < HN_ARRAY_LEN(item_fields); c++) {
                int col = (int)c + 2, sf = item_fields[c];
                if (PQgetisnull(items, r, col)) continue;
                fv[sf] = PQgetvalue(items, r, col);
                if (sf != HN_SF_NAME && sf != HN_SF_EMAIL && sf != HN_SF_PHONE) continue;
                /* sealed at rest (common/datakey.h): opened, or absent when it does not open */
                hn_buf *o = &opened[sf == HN_SF_NAME ? 0 : sf == HN_SF_EMAIL ? 1 : 2];
                hn_buf_reset(o);
                bool ok = hn_dk_open(o, fv[sf], (size_t)PQgetlength(items, r, col)) == HN_OK;
                hn_buf_append(o, "", 1);
                fv[sf] = ok ? o->p : NULL;
            }
            break;
        }
        hn_buf_append(&out, k ? ",{" : "{", k ? 2 : 1);
        bool fi = true;
        hn_snap_item(&out, &fi, sid, fv, hn_rt_pg_int(here, i, 1), at_ms, rq->cfg);
        hn_buf_append(&out, "}", 1);
    }
    hn_buf_append(&out, "]", 1);
    hn_cursor cur = {.kind = 'A', .tie_is_sid = true};
    if (more && npage) {
        cur.t = hn_rt_pg_int(here, page[npage - 1], 1);
        snprintf(cur.sid, sizeof(cur.sid), "%s", PQgetvalue(here, page[npage - 1], 0));
    }
    hn_rt_next_cursor(&out, &f, more && npage ? &cur : NULL);
    hn_buf_append(&out, "}", 1);
    hn_rt_answer(rs, &out);
out:
    if (here) PQclear(here);
    if (items) PQclear(items);
    free(page);
    hn_buf_free(&ids);
    hn_buf_free(&out);
    for (int i = 0; i < 3; i++) hn_dk_buf_wipe(&opened[i]);
}

/* ---- concurrency ----------------------------------------------------------------------------- */

/* The definition is hn_concurrency() (sql/006): per minute from the rollup
 * before the widget's mark, computed from the beacons after it. A bucket's
 * peak is the max of its minutes' peaks (first reached in the first minute
 * that reaches it), its present-ms their sum: what hn_concurrency() gives
 * for the bucket computed whole. */

/* $1 widget, $2 live window: the mark, when filled with this window. */
static const char conc_mark_sql[] =
    "SELECT " HN_SQL_MS("settled_to") " FROM widget_concurrency_marks"
    " WHERE widget_id = $1 AND window_s = $2::integer AND settled_to IS NOT NULL";

/* $1 widget, $2 from, $3 to, $4 bucket (s): per bucket with a row, its
 * start (ms), peak, present-ms and when the peak was first reached. */
static const char conc_rollup_sql[] =
    "SELECT " HN_SQL_MS("$2::timestamptz") " + floor(extract(epoch FROM minute - $2::timestamptz)"
    "  / $4::integer)::bigint * $4::integer * 1000, max(peak), sum(present_ms)::bigint,"
    " (array_agg(peak_at_ms ORDER BY peak DESC, minute))[1]"
    " FROM widget_concurrency_minutes WHERE widget_id = $1"
    " AND minute >= $2::timestamptz AND minute < $3::timestamptz GROUP BY 1 ORDER BY 1";

/* $1 widget, $2 from, $3 to (whole hours): per hour with a row, as above. */
static const char conc_hours_sql[] =
    "SELECT " HN_SQL_MS("hour") ", peak, present_ms, peak_at_ms FROM widget_concurrency_hours"
    " WHERE widget_id = $1 AND hour >= $2::timestamptz AND hour < $3::timestamptz ORDER BY hour";

/* $1 widget, $2 from, $3 to, $4 live window (s): per minute, as above. */
static const char conc_live_sql[] =
    "SELECT " HN_SQL_MS("$2::timestamptz") " + k * 60000, peak, present_ms, peak_at_ms"
    " FROM hn_concurrency($1::integer, $2::timestamptz, $3::timestamptz, $4::integer, 60) ORDER BY k";

typedef struct {
    int64_t peak, occ, peak_at;
} conc_bucket;

/* rows of (start ms, peak, present-ms, peak at ms), in time order, into
 * the buckets of `unit` µs from `from` */
static void conc_merge(const PGresult *r, conc_bucket *bk, int64_t nb, int64_t from, int64_t unit) {
    for (int i = 0; i < PQntuples(r); i++) {
        int64_t k = (hn_rt_pg_int(r, i, 0) * 1000 - from) / unit, pk = hn_rt_pg_int(r, i, 1);
        if (k < 0 || k >= nb) continue;
        if (pk > bk[k].peak) {
            bk[k].peak = pk;
            bk[k].peak_at = hn_rt_pg_int(r, i, 3);
        }
        bk[k].occ += hn_rt_pg_int(r, i, 2);
    }
}

#define CONC_MAX_BUCKETS 1440

void hn_route_concurrency(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    static const char *const allowed[] = {"from", "to", "interval"};
    static const char *const intervals[] = {"1m", "5m", "1h"};
    static const int64_t unit_s[] = {60, 300, 3600};
    char err[HN_PARAM_ERR_CAP], wbuf[24], fb[HN_TIME_CAP], tb[HN_TIME_CAP], winbuf[24], ub[24];
    int64_t from, to;
    int iv = -1;
    hn_buf out = {0};

    if (!hn_rt_check_keys(rq, rs, allowed, 3) || !hn_rt_range(rq, rs, &from, &to)) return;
    const char *is = hn_api_query(rq, "interval");
    if (is && hn_param_enum("interval", is, intervals, 3, -1, &iv, err, sizeof(err)) != HN_OK) {
        hn_api_error(rs, 400, "%s", err);
        return;
    }
    if (iv < 0) iv = to - from <= 6 * HN_US_PER_HOUR ? 0 : to - from <= 5 * HN_US_PER_DAY ? 1 : 2;
    int64_t unit = unit_s[iv] * HN_US_PER_S;
    from = hn_floor_us(from, unit);
    to = hn_ceil_us(to, unit);
    int64_t nb = (to - from) / unit;
    if (nb > CONC_MAX_BUCKETS) {
        hn_api_error(rs, 400, "interval: %lld buckets of %s, at most %d (use a larger interval or a "
                     "shorter range)", (long long)nb, intervals[iv], CONC_MAX_BUCKETS);
        return;
    }
    int64_t wid = hn_rt_widget_id(rq);
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)wid);
    snprintf(winbuf, sizeof(winbuf), "%lld", (long long)rq->cfg->live_window_s);
    snprintf(ub, sizeof(ub), "%lld", (long long)unit_s[iv]);
    hn_fmt_time_us(from, fb);
    hn_fmt_time_us(to, tb);
    conc_bucket *bk = hn_xcalloc((size_t)nb, sizeof(*bk));
    int64_t settled = from;
    {
        const char *p[] = {wbuf, winbuf};
        PGresult *m = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, conc_mark_sql, 2, p);
        if (m == NULL) goto out;
        if (PQntuples(m) == 1) settled = hn_rt_pg_int(m, 0, 0) * 1000;
        PQclear(m);
    }
    settled = settled < from ? from : settled > to ? to : settled;
    /* hourly buckets: whole settled hours from the hours' rollup */
    int64_t mfrom = iv == 2 ? hn_floor_us(settled, unit) : from;
    if (mfrom > from) {
        char hb[HN_TIME_CAP];
        hn_fmt_time_us(mfrom, hb);
        const char *p[] = {wbuf, fb, hb};
        PGresult *r = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, conc_hours_sql, 3, p);
        if (r == NULL) goto out;
        conc_merge(r, bk, nb, from, unit);
        PQclear(r);
    }
    if (settled > mfrom) {  /* settled minutes: the rollup */
        char sb[HN_TIME_CAP], mb[HN_TIME_CAP];
        hn_fmt_time_us(settled, sb);
        hn_fmt_time_us(mfrom, mb);
        const char *p[] = {wbuf, mb, sb, ub};
        PGresult *r = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, conc_rollup_sql, 4, p);
        if (r == NULL) goto out;
        conc_merge(r, bk, nb, from, unit);
        PQclear(r);
    }
    if (settled < to) {     /* the rest: from the beacons */
        char sb[HN_TIME_CAP];
        hn_fmt_time_us(settled, sb);
        const char *p[] = {wbuf, sb, tb, winbuf};
        PGresult *r = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, conc_live_sql, 4, p);
        if (r == NULL) goto out;
        conc_merge(r, bk, nb, from, unit);
        PQclear(r);
    }

    int64_t best = 0, best_at = -1;
    for (int64_t i = 0; i < nb; i++) {
        if (bk[i].peak > best) {
            best = bk[i].peak;
            best_at = bk[i].peak_at;
        }
    }
    hn_buf_append(&out, "{", 1);
    bool f = true;
    hn_json_kint(&out, &f, "widget_id", wid);
    hn_json_kstr(&out, &f, "interval", intervals[iv]);
    hn_json_ktime(&out, &f, "from", from / 1000);
    hn_json_ktime(&out, &f, "to", to / 1000);
    hn_json_kint(&out, &f, "peak", best);
    if (best_at >= 0)
        hn_json_ktime(&out, &f, "peak_at", best_at);
    else
        hn_json_knull(&out, &f, "peak_at");
    hn_json_kraw(&out, &f, "buckets", "[", 1);
    for (int64_t i = 0; i < nb; i++) {
        int64_t pk = bk[i].peak, occ = bk[i].occ;
        hn_buf_append(&out, i ? ",{" : "{", i ? 2 : 1);
        bool bf = true;
        hn_json_ktime(&out, &bf, "time", (from + i * unit) / 1000);
        hn_json_kint(&out, &bf, "peak", pk);
        hn_json_kfixed(&out, &bf, "avg", (double)occ / (double)(unit / 1000), 2);
        hn_buf_append(&out, "}", 1);
    }
    hn_buf_append(&out, "]}", 2);
    hn_rt_answer(rs, &out);
out:
    free(bk);
    hn_buf_free(&out);
}
