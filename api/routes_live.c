/*
 * routes_live.c: the routes about sessions now and one at a time — active
 * visitors (Redis only), one session's details (PostgreSQL + Redis) and
 * deactivate (erasure and the widget list: routes_admin.c).
 *
 * Active visitors, per page (docs/API.md):
 *
 *   round trip 1   ZCOUNT live (now−window, +inf)      total
 *                  ZCOUNT live [now−active_s, +inf)    active_count (approx.)
 *                  ZREVRANGEBYSCORE live <pos> (min WITHSCORES LIMIT 0 n+1
 *   round trip 2   HGETALL hn:sess:{w}:<sid> × n
 *
 * The page position is a keyset (score, sid) in the live set's own order
 * (score descending, then member descending), so a session that moves
 * (a new beacon raises its score) never makes another one appear twice or
 * vanish between pages; it just shows up at the head again.
 */
#include "api/annot.h"
#include "api/routes.h"

#include "api/live/snapshot.h"
#include "common/datakey.h"
#include "common/json.h"
#include "common/timefmt.h"
#include "proto/keys.h"

#include <stdio.h>
#include <stdlib.h>

#define SID_CAP 65

/* ---- active visitors --------------------------------------------------------- */

typedef struct scan_pos {
    bool    set;
    int64_t score;
    char    sid[SID_CAP];
} scan_pos;

static int64_t score_of(const redisReply *e) {
    if (e->type != REDIS_REPLY_STRING) return -1;
    return (int64_t)strtod(e->str, NULL);
}

/* Appends ZREVRANGEBYSCORE for up to `want` members after pos with score
 * > min_excl, reads `npre` replies of commands appended before it into
 * pre[] and its own into *out. Members at pos's score that come before or
 * at pos in the order (member >= pos.sid) are skipped: *skip is how many
 * leading pairs of *out to ignore. When a whole reply is such ties it asks
 * again further on. *exhausted: the reply held fewer members than asked. */
static int fetch_after(hn_api_worker *w, hn_api_resp *rs, hn_rcl *c, const char *key,
                       const scan_pos *pos, int64_t min_excl, int want, redisReply **pre,
                       int npre, redisReply **out, size_t *skip, bool *exhausted) {
    long long off = 0;
    /* max is inclusive, so pos's own member usually comes back first: ask
     * for one more, to still tell "more after this page" from "the end" */
    int ask = want + (pos->set ? 1 : 0);
    for (;;) {
        char max[32], min[32], soff[32], scount[32];
        snprintf(max, sizeof(max), pos->set ? "%lld" : "+inf", (long long)pos->score);
        snprintf(min, sizeof(min), "(%lld", (long long)min_excl);
        snprintf(soff, sizeof(soff), "%lld", off);
        snprintf(scount, sizeof(scount), "%d", ask);
        const char *argv[] = {"ZREVRANGEBYSCORE", key, max, min, "WITHSCORES", "LIMIT", soff, scount};
        size_t len[8];
        for (int i = 0; i < 8; i++) len[i] = strlen(argv[i]);
        hn_rcl_append_argv(c, 8, argv, len);
        redisReply *r[3] = {NULL, NULL, NULL};
        if (hn_rt_redis_replies(w, rs, npre + 1, r) != HN_OK) return HN_ERR;
        for (int i = 0; i < npre; i++) pre[i] = r[i];
        redisReply *z = r[npre];
        npre = 0;
        if (!hn_rt_redis_ok(rs, z, REDIS_REPLY_ARRAY, "ZREVRANGEBYSCORE") || z->elements % 2) {
            if (z->type == REDIS_REPLY_ARRAY) hn_api_error(rs, 500, "redis: odd WITHSCORES reply");
            freeReplyObject(z);
            return HN_ERR;
        }
        size_t members = z->elements / 2, k = 0;
        if (pos->set)
            while (k < members && score_of(z->element[2 * k + 1]) == pos->score &&
                   z->element[2 * k]->type == REDIS_REPLY_STRING &&
                   strcmp(z->element[2 * k]->str, pos->sid) >= 0)
                k++;
        *exhausted = members < (size_t)ask;
        if (k == members && !*exhausted) {         /* all ties at pos: look further */
            off += ask;
            freeReplyObject(z);
            continue;
        }
        *out = z;
        *skip = k;
        return HN_OK;
    }
}

enum { ST_ALL, ST_ACTIVE, ST_IDLE };

/* How many live-set members one filtered page may look at before it
 * answers with what it found (and a cursor). */
#define SCAN_BUDGET 5000

void hn_route_active_visitors(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    static const char *const allowed[] = {"limit", "cursor", "status", "tag"};
    static const char *const statuses[] = {"all", "active", "idle"};
    char err[HN_PARAM_ERR_CAP], key[HN_KEY_CAP];
    int64_t limit;
    int status;
    scan_pos pos = {0};
    hn_buf items = {0}, out = {0};
    redisReply *pre[2] = {NULL, NULL}, *chunk = NULL, **snaps = NULL;
    size_t nsnaps = 0;
    hn_annot *an = NULL;

    if (hn_api_query(rq, "at")) {                 /* time travel: PostgreSQL */
        hn_route_active_at(w, rq, rs);
        return;
    }
    if (!hn_rt_check_keys(rq, rs, allowed, 4)) return;
    const char *tag = hn_api_query(rq, "tag");
    if (tag && !hn_tag_ok(tag, strlen(tag))) {
        hn_api_error(rs, 400, "tag: want [a-z0-9][a-z0-9_-]{0,31}");
        return;
    }
    if (hn_param_int("limit", hn_api_query(rq, "limit"), 1, 1000, 100, &limit, err, sizeof(err)) ||
        hn_param_enum("status", hn_api_query(rq, "status"), statuses, 3, ST_ALL, &status, err,
                      sizeof(err))) {
        hn_api_error(rs, 400, "%s", err);
        return;
    }
    const char *cs = hn_api_query(rq, "cursor");
    if (cs) {
        hn_cursor cur;
        if (hn_cursor_decode(cs, 'L', true, &cur) != HN_OK) {
            hn_api_error(rs, 400, "cursor: not a cursor of this route (pass next_cursor as given)");
            return;
        }
        pos.set = true;
        pos.score = cur.t;
        memcpy(pos.sid, cur.sid, sizeof(pos.sid));
    }
    int64_t wid = hn_rt_widget_id(rq);
    hn_rcl *c = hn_rt_redis(w, rs);
    if (c == NULL) return;
    /* notes, tags, bans (docs/RULES.md §5): a widget without them costs one
     * constant append per row */
    an = hn_annot_get(w, wid);
    bool annotated = !hn_annot_empty(an);
    bool none = tag && !hn_annot_any_tag(an, tag);     /* nobody has that tag */
    c = hn_rt_redis(w, rs);
    if (c == NULL) goto out;
    /* HERENOW_REDIS_READ_REPLICAS: this list may be as stale as a replica */
    hn_rcl_read_replicas(c, strcmp(rq->cfg->redis_read_replicas, "on") == 0);

    int64_t now = (int64_t)hn_now_ms();
    int64_t live_min_excl = now - rq->cfg->live_window_s * 1000;
    int64_t active_min = now - rq->cfg->active_s * 1000;
    /* active needs a score within ACTIVE_S, so that filter narrows the range */
    int64_t min_excl = status == ST_ACTIVE ? active_min - 1 : live_min_excl;
    hn_key_live(key, wid);
    {
        char lo[32], alo[32];
        snprintf(lo, sizeof(lo), "(%lld", (long long)live_min_excl);
        snprintf(alo, sizeof(alo), "%lld", (long long)active_min);
        const char *a1[] = {"ZCOUNT", key, lo, "+inf"}, *a2[] = {"ZCOUNT", key, alo, "+inf"};
        size_t l1[] = {6, strlen(key), strlen(lo), 4}, l2[] = {6, strlen(key), strlen(alo), 4};
        hn_rcl_append_argv(c, 4, a1, l1);
        hn_rcl_append_argv(c, 4, a2, l2);
    }

    int64_t count = 0, n_active = 0, scanned = 0;
    bool more = false, first_round = true;
    if (none) {
        if (hn_rt_redis_replies(w, rs, 2, pre) != HN_OK ||
            !hn_rt_redis_ok(rs, pre[0], REDIS_REPLY_INTEGER, "ZCOUNT") ||
            !hn_rt_redis_ok(rs, pre[1], REDIS_REPLY_INTEGER, "ZCOUNT"))
            goto out;
    }
    while (!none) {
        int64_t need = limit - count;
        int64_t want = status == ST_ALL && !tag ? need : (need * 2 < 100 ? 100 : need * 2 > 1000 ? 1000 : need * 2);
        size_t skip;
        bool exhausted;
        if (fetch_after(w, rs, c, key, &pos, min_excl, (int)want + 1, pre, first_round ? 2 : 0,
                        &chunk, &skip, &exhausted) != HN_OK)
            goto out;
        if (first_round) {
            first_round = false;
            if (!hn_rt_redis_ok(rs, pre[0], REDIS_REPLY_INTEGER, "ZCOUNT") ||
                !hn_rt_redis_ok(rs, pre[1], REDIS_REPLY_INTEGER, "ZCOUNT"))
                goto out;
        }
        size_t avail = chunk->elements / 2 - skip;
        size_t take = avail < (size_t)want ? avail : (size_t)want;
        bool more_after = avail > take || !exhausted;

        for (size_t i = 0; i < take; i++) {
            const redisReply *m = chunk->element[2 * (skip + i)];
            hn_snap_append(c, wid, m->type == REDIS_REPLY_STRING ? m->str : "");
        }
        /* sized once for the page's rows (~800 bytes each): growing it by
         * doubling cost a realloc, and with it a pass over malloc's free
         * lists, per step */
        if (items.cap == 0) hn_buf_init(&items, (take < (size_t)need ? take : (size_t)need) * 1024 + 64);
        snaps = hn_xcalloc(take ? take : 1, sizeof(*snaps));
        nsnaps = take;
        if (take && hn_rt_redis_replies(w, rs, (int)take, snaps) != HN_OK) {
            nsnaps = 0;
            goto out;
        }
        size_t i = 0;
        for (; i < take && count < limit; i++) {
            const redisReply *m = chunk->element[2 * (skip + i)];
            if (m->type != REDIS_REPLY_STRING) continue;
            int64_t score = score_of(chunk->element[2 * (skip + i) + 1]);
            pos.set = true;
            pos.score = score;
            snprintf(pos.sid, sizeof(pos.sid), "%s", m->str);
            scanned++;
            const char *sf[HN_SF__COUNT];
            hn_snap_fields(snaps[i], sf);
            const char *st = hn_snap_status(sf[HN_SF_STATUS], sf[HN_SF_LAST_SEEN], score, now, rq->cfg);
            bool is_active = strcmp(st, "active") == 0;
            if ((status == ST_ACTIVE && !is_active) || (status == ST_IDLE && is_active)) continue;
            hn_annot_view av = {NULL, NULL};
            if (annotated) av = hn_annot_find(an, sf[HN_SF_VISITOR], sf[HN_SF_EMAIL]);
            if (tag && !hn_annot_has_tag(av, tag)) continue;
            hn_buf_append(&items, count ? ",{" : "{", count ? 2 : 1);
            bool f = true;
            hn_snap_item(&items, &f, m->str, sf, score, now, rq->cfg);
            if (annotated) {
                hn_annot_put(&items, &f, av);
                hn_buf_append(&items, "}", 1);
            } else {
                hn_buf_append(&items, ",\"tags\":[],\"notes\":0,\"banned\":false}", 36);
            }
            count++;
            n_active += is_active;
        }
        hn_rt_redis_free(snaps, (int)nsnaps);
        free(snaps);
        snaps = NULL;
        nsnaps = 0;
        freeReplyObject(chunk);
        chunk = NULL;
        if (count == limit) {
            more = i < take || more_after;
            break;
        }
        if (!more_after) break;
        if (scanned >= SCAN_BUDGET) {
            more = true;
            break;
        }
    }

    int64_t total = pre[0]->integer, active_count = pre[1]->integer;
    if (active_count > total) active_count = total;
    hn_buf_init(&out, items.len + 512);     /* one allocation: a live list page is ~80 KB */
    hn_buf_append(&out, "{", 1);
    bool f = true;
    hn_json_kint(&out, &f, "widget_id", wid);
    hn_json_ktime(&out, &f, "now", now);
    hn_json_kint(&out, &f, "total", total);
    hn_json_kint(&out, &f, "active_count", active_count);
    hn_json_kint(&out, &f, "idle_count", total - active_count);
    hn_json_kint(&out, &f, "active", n_active);
    hn_json_kint(&out, &f, "count", count);
    hn_json_kraw(&out, &f, "visitors", "[", 1);
    if (items.len) hn_buf_append(&out, items.p, items.len);
    hn_buf_append(&out, "]", 1);
    hn_cursor cur = {.kind = 'L', .t = pos.score, .tie_is_sid = true};
    memcpy(cur.sid, pos.sid, sizeof(cur.sid));
    hn_rt_next_cursor(&out, &f, more && pos.set ? &cur : NULL);
    hn_buf_append(&out, "}", 1);
    hn_rt_answer(rs, &out);
out:
    if (w->redis) hn_rcl_read_replicas(w->redis, false);   /* c may be gone: a broken client is freed */
    hn_annot_release(an);
    hn_rt_redis_free(pre, 2);
    if (chunk) freeReplyObject(chunk);
    if (snaps) {
        hn_rt_redis_free(snaps, (int)nsnaps);
        free(snaps);
    }
    hn_buf_free(&items);
    hn_buf_free(&out);
}

/* ---- finding one session (details, deactivate) ------------------------------- */

/* A session id is made by the client, so several widgets may hold the same
 * one: the lookup is restricted to the widget asked for (?widget=) or the
 * token's widget, and otherwise takes the most recent. A session that
 * exists only in widgets the token may not see is "not found" (404), not
 * 403: that tells nothing about other widgets. */
typedef struct found {
    int64_t     widget_id;    /* 0: not found */
    PGresult   *row;          /* the session's row (in_pg) */
    redisReply *snap;         /* HGETALL of its snapshot (in Redis) */
    int64_t     score;        /* hn:live score when live, else -1 */
    bool        has_hash;
} found;

static void found_free(found *f) {
    if (f->row) PQclear(f->row);
    if (f->snap) freeReplyObject(f->snap);
    memset(f, 0, sizeof(*f));
}

/* The widget ids in hn:widgets (key → "id[ settings]"), at most cap. */
static int64_t *redis_widget_ids(const redisReply *r, size_t *n) {
    int64_t *ids = hn_xcalloc(r->elements / 2 + 1, sizeof(*ids));
    *n = 0;
    for (size_t i = 1; i < r->elements; i += 2) {
        const redisReply *v = r->element[i];
        if (v->type != REDIS_REPLY_STRING) continue;
        char *end;
        long long id = strtoll(v->str, &end, 10);
        if (id > 0 && id <= INT32_MAX && (*end == '\0' || *end == ' ')) ids[(*n)++] = id;
    }
    return ids;
}

/* sql: "SELECT widget_id, … FROM widget_visitor_sessions WHERE session_id =
 * $1 AND ($2::integer IS NULL OR widget_id = $2::integer) ORDER BY
 * session_started_at DESC LIMIT 1". HN_OK with f->widget_id 0 when not
 * found; HN_ERR once rs holds an error answer. */
static int find_session(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs,
                        const char *sid, const char *sql, found *f) {
    char err[HN_PARAM_ERR_CAP], wbuf[24];
    int64_t want = 0, restrict_to;
    redisReply *wr = NULL, **rr = NULL;
    int64_t *ids = NULL;
    size_t nids = 0;
    int rc = HN_ERR;
    memset(f, 0, sizeof(*f));
    f->score = -1;

    if (hn_param_int("widget", hn_api_query(rq, "widget"), 1, INT32_MAX, 0, &want, err,
                     sizeof(err))) {
        hn_api_error(rs, 400, "%s", err);
        return HN_ERR;
    }
    if (want && !hn_api_may_see(rq, want)) {
        hn_api_error(rs, 403, "widget: not in this token's scope");
        return HN_ERR;
    }
    restrict_to = want ? want : rq->who.widget_id > 0 ? rq->who.widget_id : 0;
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)restrict_to);
    const char *params[] = {sid, restrict_to ? wbuf : NULL};
    f->row = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, sql, 2, params);
    if (f->row == NULL) return HN_ERR;
    if (PQntuples(f->row) == 1) {
        f->widget_id = hn_rt_pg_int(f->row, 0, 0);
    } else {
        PQclear(f->row);
        f->row = NULL;
    }

    hn_rcl *c = hn_rt_redis(w, rs);
    if (c == NULL) goto out;
    if (f->widget_id) {
        ids = hn_xcalloc(1, sizeof(*ids));
        ids[nids++] = f->widget_id;
    } else if (restrict_to) {
        ids = hn_xcalloc(1, sizeof(*ids));
        ids[nids++] = restrict_to;
    } else {
        /* a token for every widget and a session not drained yet: ask each widget */
        const char *argv[] = {"HGETALL", HN_KEY_WIDGETS};
        size_t len[] = {7, sizeof(HN_KEY_WIDGETS) - 1};
        hn_rcl_append_argv(c, 2, argv, len);
        if (hn_rt_redis_replies(w, rs, 1, &wr) != HN_OK) goto out;
        if (!hn_rt_redis_ok(rs, wr, REDIS_REPLY_ARRAY, "HGETALL " HN_KEY_WIDGETS)) goto out;
        ids = redis_widget_ids(wr, &nids);
    }
    if (nids == 0) {
        rc = HN_OK;
        goto out;
    }
    for (size_t i = 0; i < nids; i++) {
        char lk[HN_KEY_CAP], sk[HN_KEY_CAP];
        hn_key_live(lk, ids[i]);
        hn_key_sess(sk, ids[i], sid, strlen(sid));
        const char *a1[] = {"ZSCORE", lk, sid}, *a2[] = {"EXISTS", sk};
        size_t l1[] = {6, strlen(lk), strlen(sid)}, l2[] = {6, strlen(sk)};
        hn_rcl_append_argv(c, 3, a1, l1);
        hn_rcl_append_argv(c, 2, a2, l2);
    }
    rr = hn_xcalloc(2 * nids, sizeof(*rr));
    if (hn_rt_redis_replies(w, rs, (int)(2 * nids), rr) != HN_OK) {
        free(rr);
        rr = NULL;
        goto out;
    }
    int64_t live_min_excl = (int64_t)hn_now_ms() - rq->cfg->live_window_s * 1000;
    int64_t best = 0, best_score = -1;
    bool best_hash = false;
    for (size_t i = 0; i < nids; i++) {
        int64_t score = rr[2 * i]->type == REDIS_REPLY_STRING ? score_of(rr[2 * i]) : -1;
        bool hash = rr[2 * i + 1]->type == REDIS_REPLY_INTEGER && rr[2 * i + 1]->integer > 0;
        if (score <= live_min_excl) score = -1;        /* trimming lags: filter by score */
        if (score < 0 && !hash) continue;
        if (best == 0 || score > best_score) {
            best = ids[i];
            best_score = score;
            best_hash = hash;
        }
    }
    hn_rt_redis_free(rr, (int)(2 * nids));
    free(rr);
    rr = NULL;
    if (best) {
        f->widget_id = f->widget_id ? f->widget_id : best;
        f->score = best_score;
        f->has_hash = best_hash;
        if (best_hash) {
            hn_snap_append(c, best, sid);
            if (hn_rt_redis_replies(w, rs, 1, &f->snap) != HN_OK) goto out;
            if (!hn_rt_redis_ok(rs, f->snap, REDIS_REPLY_ARRAY, "HGETALL")) goto out;
        }
    }
    rc = HN_OK;
out:
    if (wr) freeReplyObject(wr);
    free(ids);
    if (rc != HN_OK) found_free(f);
    return rc;
}

/* ---- session details ---------------------------------------------------------------- */

static const char session_sql[] =
    "SELECT widget_id, session_id, visitor_id, visitor_name, visitor_email, visitor_phone,"
    " ip_address, country, region, city, user_agent, browser, browser_version, os, os_version,"
    " device_type, language, screen_width, screen_height, landing_page, referrer,"
    " current_page_url, current_page_title, is_active, page_views, events_count,"
    " total_time_seconds, " HN_SQL_MS("session_started_at") ", " HN_SQL_MS("last_active_at") ","
    " " HN_SQL_MS("session_ended_at") ", messages_sent, has_chatted"
    " FROM widget_visitor_sessions"
    " WHERE session_id = $1 AND ($2::integer IS NULL OR widget_id = $2::integer)"
    " ORDER BY session_started_at DESC LIMIT 1";

/* session_sql's columns from 1 on (0 is widget_id, written apart). */
static const hn_col session_cols[] = {
    {"session_id", HN_COL_STR},        {"visitor_id", HN_COL_STR},
    {"visitor_name", HN_COL_SEALED},   {"visitor_email", HN_COL_SEALED},
    {"visitor_phone", HN_COL_SEALED},   {"ip", HN_COL_STR},
    {"country", HN_COL_STR},           {"region", HN_COL_STR},
    {"city", HN_COL_STR},              {"user_agent", HN_COL_STR},
    {"browser", HN_COL_STR},           {"browser_version", HN_COL_STR},
    {"os", HN_COL_STR},                {"os_version", HN_COL_STR},
    {"device", HN_COL_STR},            {"language", HN_COL_STR},
    {"screen_width", HN_COL_INT},      {"screen_height", HN_COL_INT},
    {"landing_page", HN_COL_STR},      {"referrer", HN_COL_STR},
    {"current_page_url", HN_COL_STR},  {"current_page_title", HN_COL_STR},
    {"is_active", HN_COL_BOOL},        {"page_views", HN_COL_INT},
    {"events_count", HN_COL_INT},      {"engaged_s", HN_COL_INT},
    {"started", HN_COL_TIME},          {"last_active", HN_COL_TIME},
    {"ended", HN_COL_TIME},            {"messages_sent", HN_COL_INT},
    {"has_chatted", HN_COL_BOOL},
};
enum { SC_STARTED = 27, SC_LAST_ACTIVE = 28 };   /* column numbers in session_sql */

/* The same members as session_cols, for a session known only to Redis. */
static void session_from_snapshot(hn_buf *b, bool *first, const char *sid, const redisReply *s,
                                  int64_t score) {
    static const struct { const char *key; int field; } str_map[] = {
        {"visitor_id", HN_SF_VISITOR}, {"visitor_name", HN_SF_NAME},
        {"visitor_email", HN_SF_EMAIL}, {"visitor_phone", HN_SF_PHONE},
        {"ip", HN_SF_IP}, {"country", HN_SF_COUNTRY}, {"region", HN_SF_REGION},
        {"city", HN_SF_CITY}, {"user_agent", -1}, {"browser", HN_SF_BROWSER},
        {"browser_version", HN_SF_BROWSER_VERSION}, {"os", HN_SF_OS},
        {"os_version", HN_SF_OS_VERSION}, {"device", HN_SF_DEVICE}, {"language", HN_SF_LANG},
    };
    hn_json_kstr(b, first, "session_id", sid);
    for (size_t i = 0; i < HN_ARRAY_LEN(str_map); i++)
        hn_json_kstr(b, first, str_map[i].key,
                     str_map[i].field < 0 ? NULL : hn_snap_field(s, str_map[i].field));
    unsigned sw = 0, sh = 0;
    const char *scr = hn_snap_field(s, HN_SF_SCREEN);
    if (scr && sscanf(scr, "%ux%u", &sw, &sh) == 2) {
        hn_json_kint(b, first, "screen_width", sw);
        hn_json_kint(b, first, "screen_height", sh);
    } else {
        hn_json_knull(b, first, "screen_width");
        hn_json_knull(b, first, "screen_height");
    }
    hn_json_kstr(b, first, "landing_page", hn_snap_field(s, HN_SF_LANDING));
    hn_json_kstr(b, first, "referrer", hn_snap_field(s, HN_SF_REFERRER));
    hn_json_kstr(b, first, "current_page_url", hn_snap_field(s, HN_SF_URL));
    hn_json_kstr(b, first, "current_page_title", hn_snap_field(s, HN_SF_TITLE));
    hn_json_kbool(b, first, "is_active", score >= 0);
    const char *pv = hn_snap_field(s, HN_SF_PAGEVIEWS), *em = hn_snap_field(s, HN_SF_ENGAGED_MS),
               *st = hn_snap_field(s, HN_SF_STARTED), *ms = hn_snap_field(s, HN_SF_MESSAGES_SENT),
               *hc = hn_snap_field(s, HN_SF_HAS_CHATTED);
    hn_json_kint(b, first, "page_views", pv ? strtoll(pv, NULL, 10) : 0);
    hn_json_knull(b, first, "events_count");
    hn_json_kint(b, first, "engaged_s", em ? strtoll(em, NULL, 10) / 1000 : 0);
    if (st)
        hn_json_ktime(b, first, "started", strtoll(st, NULL, 10));
    else
        hn_json_knull(b, first, "started");
    if (score >= 0)
        hn_json_ktime(b, first, "last_active", score);
    else
        hn_json_knull(b, first, "last_active");
    hn_json_knull(b, first, "ended");
    hn_json_kint(b, first, "messages_sent", ms ? strtoll(ms, NULL, 10) : 0);
    hn_json_kbool(b, first, "has_chatted", hc && strcmp(hc, "0") != 0);
}

/* Page views get time_on_page_s from the next one (null for the last). */
static const char pages_sql[] =
    "SELECT " HN_SQL_MS("recv_at") ", url, title, referrer,"
    " floor(extract(epoch FROM lead(recv_at) OVER (ORDER BY recv_at, seq) - recv_at))::bigint"
    " FROM widget_page_views"
    " WHERE widget_id = $1 AND session_id = $2 AND recv_at BETWEEN $3 AND $4"
    " ORDER BY recv_at, seq LIMIT 1001";
static const hn_col pages_cols[] = {
    {"time", HN_COL_TIME}, {"url", HN_COL_STR}, {"title", HN_COL_STR},
    {"referrer", HN_COL_STR}, {"time_on_page_s", HN_COL_INT},
};

static const char events_sql[] =
    "SELECT " HN_SQL_MS("recv_at") ", event_type, event_name, url, " HN_SQL_EVENT_DATA
    " FROM widget_visitor_events"
    " WHERE widget_id = $1 AND session_id = $2 AND recv_at BETWEEN $3 AND $4"
    " AND (event_type <> 'hb' OR $5::boolean)"
    " ORDER BY recv_at, seq LIMIT 1001";
static const hn_col events_cols[] = {
    {"time", HN_COL_TIME}, {"type", HN_COL_STR}, {"name", HN_COL_STR},
    {"url", HN_COL_STR}, {"data", HN_COL_JSON_SEALED},
};

static const char earlier_sql[] =
    "SELECT session_id, " HN_SQL_MS("session_started_at") ", " HN_SQL_MS("last_active_at") ","
    " page_views, total_time_seconds, landing_page, referrer, has_chatted"
    " FROM widget_visitor_sessions"
    " WHERE widget_id = $1 AND visitor_id = $2 AND session_id <> $3"
    " AND session_started_at <= $4"
    " ORDER BY session_started_at DESC, id DESC LIMIT 20";
static const hn_col earlier_cols[] = {
    {"session_id", HN_COL_STR}, {"started", HN_COL_TIME}, {"last_active", HN_COL_TIME},
    {"page_views", HN_COL_INT}, {"engaged_s", HN_COL_INT}, {"landing_page", HN_COL_STR},
    {"referrer", HN_COL_STR}, {"has_chatted", HN_COL_BOOL},
};

#define HISTORY_CAP 1000

void hn_route_session(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    static const char *const allowed[] = {"widget", "include"};
    static const char *const includes[] = {"heartbeats"};
    char err[HN_PARAM_ERR_CAP], wbuf[24], lo[HN_TIME_CAP], hi[HN_TIME_CAP], st[HN_TIME_CAP];
    const char *sid = rq->nparams > 0 ? rq->params[0] : "";
    found f = {0};
    PGresult *pages = NULL, *events = NULL, *earlier = NULL;
    hn_buf out = {0};
    int inc = -1;

    if (!hn_rt_check_keys(rq, rs, allowed, 2)) return;
    if (!hn_param_session_id_ok(sid)) {
        hn_api_error(rs, 400, "sessionId: want 8..64 of A-Z a-z 0-9 _ -");
        return;
    }
    if (hn_api_query(rq, "include") &&
        hn_param_enum("include", hn_api_query(rq, "include"), includes, 1, -1, &inc, err,
                      sizeof(err)) != HN_OK) {
        hn_api_error(rs, 400, "%s", err);
        return;
    }
    if (find_session(w, rq, rs, sid, session_sql, &f) != HN_OK) return;
    if (f.widget_id == 0) {
        hn_api_error(rs, 404, "session not found");
        return;
    }
    int64_t now = (int64_t)hn_now_ms();
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)f.widget_id);

    /* The history lies between the session's start and its last activity;
     * bounding recv_at lets PostgreSQL skip every other day's partition. */
    const char *visitor = NULL;
    int64_t started_ms = -1;
    if (f.row) {
        started_ms = hn_rt_pg_int(f.row, 0, SC_STARTED);
        int64_t last_ms = hn_rt_pg_int(f.row, 0, SC_LAST_ACTIVE);
        if (f.score >= 0 && now > last_ms) last_ms = now;
        hn_fmt_time_us((started_ms - 3600 * 1000) * 1000, lo);
        hn_fmt_time_us((last_ms + 3600 * 1000) * 1000, hi);
        const char *p[] = {wbuf, sid, lo, hi, inc == 0 ? "true" : "false"};
        pages = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, pages_sql, 4, p);
        if (pages == NULL) goto out;
        events = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, events_sql, 5, p);
        if (events == NULL) goto out;
        visitor = PQgetisnull(f.row, 0, 2) ? NULL : PQgetvalue(f.row, 0, 2);
    } else {
        visitor = hn_snap_field(f.snap, HN_SF_VISITOR);
        const char *s = hn_snap_field(f.snap, HN_SF_STARTED);
        started_ms = s ? strtoll(s, NULL, 10) : now;
    }
    if (visitor) {
        hn_fmt_time_us(started_ms * 1000, st);
        const char *p[] = {wbuf, visitor, sid, st};
        earlier = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, earlier_sql, 4, p);
        if (earlier == NULL) goto out;
    }

    hn_buf_append(&out, "{", 1);
    bool first = true;
    hn_json_kint(&out, &first, "widget_id", f.widget_id);
    hn_json_kstr(&out, &first, "source", f.row ? "postgresql" : "redis");
    hn_json_kstr(&out, &first, "status", hn_snap_status_reply(f.snap, f.score, now, rq->cfg));
    if (f.row)
        hn_rt_pg_row(&out, &first, f.row, 0, 1, session_cols, (int)HN_ARRAY_LEN(session_cols));
    else
        session_from_snapshot(&out, &first, sid, f.snap, f.score);
    {   /* notes, tags, ban of its visitor id or email (docs/RULES.md §5) */
        hn_annot *an = hn_annot_get(w, f.widget_id);
        const char *em = f.row ? (PQgetisnull(f.row, 0, 4) ? NULL : PQgetvalue(f.row, 0, 4))
                               : hn_snap_field(f.snap, HN_SF_EMAIL);
        hn_buf eo = {0};                /* the row's email is sealed at rest (common/datakey.h) */
        if (f.row && em) {
            bool ok = hn_dk_open(&eo, em, strlen(em)) == HN_OK;
            hn_buf_append(&eo, "", 1);
            em = ok ? eo.p : NULL;
        }
        hn_annot_view av = hn_annot_find(an, visitor, em);
        hn_dk_buf_wipe(&eo);
        if (av.v == NULL && f.row && f.snap) av.v = hn_annot_find(an, hn_snap_field(f.snap, HN_SF_VISITOR), NULL).v;
        hn_annot_put(&out, &first, av);
        hn_annot_release(an);
    }
    if (f.snap) {
        hn_json_kraw(&out, &first, "live", "{", 1);
        bool lf = true;
        hn_snap_item_reply(&out, &lf, sid, f.snap, f.score, now, rq->cfg);
        hn_buf_append(&out, "}", 1);
    } else {
        hn_json_knull(&out, &first, "live");
    }
    hn_json_kraw(&out, &first, "pages", "", 0);
    bool cut_p = pages ? hn_rt_rows_array(&out, pages, pages_cols, 5, HISTORY_CAP)
                       : (hn_buf_append(&out, "[]", 2), false);
    hn_json_kraw(&out, &first, "events", "", 0);
    bool cut_e = events ? hn_rt_rows_array(&out, events, events_cols, 5, HISTORY_CAP)
                        : (hn_buf_append(&out, "[]", 2), false);
    hn_json_kbool(&out, &first, "truncated", cut_p || cut_e);
    hn_json_kraw(&out, &first, "earlier_sessions", "", 0);
    if (earlier)
        hn_rt_rows_array(&out, earlier, earlier_cols, (int)HN_ARRAY_LEN(earlier_cols), 20);
    else
        hn_buf_append(&out, "[]", 2);
    hn_buf_append(&out, "}", 1);
    hn_rt_answer(rs, &out);
out:
    if (pages) PQclear(pages);
    if (events) PQclear(events);
    if (earlier) PQclear(earlier);
    found_free(&f);
    hn_buf_free(&out);
}

/* ---- deactivate ----------------------------------------------------------------------- */

static const char locate_sql[] =
    "SELECT widget_id FROM widget_visitor_sessions"
    " WHERE session_id = $1 AND ($2::integer IS NULL OR widget_id = $2::integer)"
    " ORDER BY session_started_at DESC LIMIT 1";

static const char deactivate_sql[] =
    "UPDATE widget_visitor_sessions"
    " SET is_active = false, session_ended_at = coalesce(session_ended_at, now()),"
    " updated_at = now()"
    " WHERE widget_id = $1 AND session_id = $2";

void hn_route_deactivate(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    static const char *const allowed[] = {"widget"};
    const char *sid = rq->nparams > 0 ? rq->params[0] : "";
    found f = {0};
    redisReply *r[4] = {NULL, NULL, NULL, NULL};
    PGresult *res = NULL;
    hn_buf out = {0};

    if (!hn_rt_check_keys(rq, rs, allowed, 1)) return;
    if (!hn_param_session_id_ok(sid)) {
        hn_api_error(rs, 400, "sessionId: want 8..64 of A-Z a-z 0-9 _ -");
        return;
    }
    if (find_session(w, rq, rs, sid, locate_sql, &f) != HN_OK) return;
    if (f.widget_id == 0) {
        hn_api_error(rs, 404, "session not found");
        return;
    }
    bool in_redis = f.score >= 0 || f.has_hash;
    if (in_redis) {
        /* Out of the live set now; hn:ended lets the trimmer delete the hash
         * after its grace period, unless a beacon brings the session back. */
        hn_rcl *c = hn_rt_redis(w, rs);
        if (c == NULL) goto out;
        char lk[HN_KEY_CAP], sk[HN_KEY_CAP], ek[HN_KEY_CAP], now[24];
        hn_key_live(lk, f.widget_id);
        hn_key_sess(sk, f.widget_id, sid, strlen(sid));
        hn_key_ended(ek, f.widget_id);
        snprintf(now, sizeof(now), "%llu", (unsigned long long)hn_now_ms());
        /* The end script's mark goes first: the hub, meeting the session
         * out of hn:live, must not take a deactivation for its `end`. */
        const char *a0[] = {"HDEL", sk, HN_SESS_ENDED}, *a1[] = {"ZREM", lk, sid},
                   *a2[] = {"HSET", sk, hn_sf_name[HN_SF_STATUS], "gone"},
                   *a3[] = {"ZADD", ek, now, sid};
        size_t l0[] = {4, strlen(sk), strlen(HN_SESS_ENDED)}, l1[] = {4, strlen(lk), strlen(sid)},
               l2[] = {4, strlen(sk), 6, 4}, l3[] = {4, strlen(ek), strlen(now), strlen(sid)};
        int n = 0;
        if (f.has_hash) hn_rcl_append_argv(c, 3, a0, l0), n++;
        hn_rcl_append_argv(c, 3, a1, l1), n++;
        if (f.has_hash) hn_rcl_append_argv(c, 4, a2, l2), n++;
        hn_rcl_append_argv(c, 4, a3, l3), n++;
        if (hn_rt_redis_replies(w, rs, n, r) != HN_OK) goto out;
        for (int i = 0; i < n; i++)
            if (!hn_rt_redis_ok(rs, r[i], REDIS_REPLY_INTEGER, "deactivate")) goto out;
    }
    if (f.row) {
        char wbuf[24];
        snprintf(wbuf, sizeof(wbuf), "%lld", (long long)f.widget_id);
        const char *p[] = {wbuf, sid};
        res = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, deactivate_sql, 2, p);
        if (res == NULL) goto out;
    }
    hn_buf_append(&out, "{", 1);
    bool first = true;
    hn_json_kstr(&out, &first, "session_id", sid);
    hn_json_kint(&out, &first, "widget_id", f.widget_id);
    hn_json_kbool(&out, &first, "deactivated", true);
    hn_json_kbool(&out, &first, "was_live", f.score >= 0);
    hn_buf_append(&out, "}", 1);
    hn_rt_answer(rs, &out);
out:
    hn_rt_redis_free(r, 4);
    if (res) PQclear(res);
    found_free(&f);
    hn_buf_free(&out);
}
