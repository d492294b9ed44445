/* routes.c: see routes.h. */
#include "api/routes.h"

#include "common/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* ---- PostgreSQL rows -------------------------------------------------------- */

/* A signed decimal integer, nothing else. */
static bool parse_i64(const char *s, int64_t *out) {
    if (s == NULL || *s == '\0') return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0') return false;
    *out = v;
    return true;
}

int64_t hn_rt_pg_int(const PGresult *res, int row, int col) {
    int64_t v = 0;
    if (!PQgetisnull(res, row, col)) parse_i64(PQgetvalue(res, row, col), &v);
    return v;
}

void hn_rt_pg_row(hn_buf *b, bool *first, const PGresult *res, int row, int col0,
                  const hn_col *cols, int ncols) {
    for (int i = 0; i < ncols; i++) {
        int c = col0 + i;
        const char *key = cols[i].key;
        if (PQgetisnull(res, row, c)) {
            hn_json_knull(b, first, key);
            continue;
        }
        const char *v = PQgetvalue(res, row, c);
        int n = PQgetlength(res, row, c);
        int64_t x;
        switch (cols[i].kind) {
        case HN_COL_STR: hn_json_kstrn(b, first, key, v, (size_t)n); break;
        case HN_COL_INT:
            if (parse_i64(v, &x))
                hn_json_kint(b, first, key, x);
            else
                hn_json_knull(b, first, key);
            break;
        case HN_COL_BOOL: hn_json_kbool(b, first, key, v[0] == 't'); break;
        case HN_COL_JSON: hn_json_kraw(b, first, key, v, (size_t)n); break;
        case HN_COL_TIME:
            if (parse_i64(v, &x))
                hn_json_ktime(b, first, key, x);
            else
                hn_json_knull(b, first, key);
            break;
        }
    }
}

/* ---- Redis --------------------------------------------------------------------- */

redisContext *hn_rt_redis(hn_api_worker *w, hn_api_resp *rs) {
    redisContext *c = hn_api_redis(w);
    if (c == NULL) hn_api_error(rs, 503, "redis unavailable");
    return c;
}

void hn_rt_redis_free(redisReply **r, int n) {
    for (int i = 0; i < n; i++) {
        if (r[i]) freeReplyObject(r[i]);
        r[i] = NULL;
    }
}

int hn_rt_redis_replies(hn_api_worker *w, hn_api_resp *rs, int n, redisReply **out) {
    redisContext *c = w->redis;
    for (int i = 0; i < n; i++) out[i] = NULL;
    for (int i = 0; i < n; i++) {
        void *r = NULL;
        if (c == NULL || redisGetReply(c, &r) != REDIS_OK || r == NULL) {
            /* the replies still owed would answer the next request: drop the connection */
            hn_api_redis_broken(w);
            hn_rt_redis_free(out, i);
            hn_api_error(rs, 503, "redis unavailable");
            return HN_ERR;
        }
        out[i] = r;
    }
    return HN_OK;
}

bool hn_rt_redis_ok(hn_api_resp *rs, const redisReply *r, int type, const char *what) {
    if (r->type == type) return true;
    hn_api_error(rs, 500, "redis %s: %s", what,
                 r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    return false;
}

void hn_rt_live_key(char *out, int64_t widget_id) {
    snprintf(out, HN_KEY_CAP, "hn:live:{%lld}", (long long)widget_id);
}

void hn_rt_ended_key(char *out, int64_t widget_id) {
    snprintf(out, HN_KEY_CAP, "hn:ended:{%lld}", (long long)widget_id);
}

void hn_rt_sess_key(char *out, int64_t widget_id, const char *sid) {
    snprintf(out, HN_KEY_CAP, "hn:sess:{%lld}:%.64s", (long long)widget_id, sid);
}

static const char *const snapshot_fields[HN_SF__COUNT] = {
    [HN_SF_LAST_SEEN] = "last_seen",       [HN_SF_STATUS] = "status",
    [HN_SF_STARTED] = "started",           [HN_SF_LANDING] = "landing",
    [HN_SF_REFERRER] = "referrer",         [HN_SF_URL] = "url",
    [HN_SF_TITLE] = "title",               [HN_SF_PAGEVIEWS] = "pageviews",
    [HN_SF_ENGAGED_MS] = "engaged_ms",     [HN_SF_IP] = "ip",
    [HN_SF_LANG] = "lang",                 [HN_SF_SCREEN] = "screen",
    [HN_SF_COUNTRY] = "country",           [HN_SF_REGION] = "region",
    [HN_SF_CITY] = "city",                 [HN_SF_BROWSER] = "browser",
    [HN_SF_BROWSER_VERSION] = "browser_version", [HN_SF_OS] = "os",
    [HN_SF_OS_VERSION] = "os_version",     [HN_SF_DEVICE] = "device",
    [HN_SF_VISITOR] = "visitor",           [HN_SF_NAME] = "name",
    [HN_SF_EMAIL] = "email",               [HN_SF_PHONE] = "phone",
    [HN_SF_HAS_CHATTED] = "has_chatted",   [HN_SF_MESSAGES_SENT] = "messages_sent",
};

void hn_rt_append_snapshot(redisContext *c, int64_t widget_id, const char *sid) {
    char key[HN_KEY_CAP];
    const char *argv[2 + HN_SF__COUNT];
    size_t len[2 + HN_SF__COUNT];
    hn_rt_sess_key(key, widget_id, sid);
    argv[0] = "HMGET";
    argv[1] = key;
    for (int i = 0; i < HN_SF__COUNT; i++) argv[2 + i] = snapshot_fields[i];
    for (int i = 0; i < 2 + HN_SF__COUNT; i++) len[i] = strlen(argv[i]);
    redisAppendCommandArgv(c, 2 + HN_SF__COUNT, argv, len);
}

const char *hn_rt_sf(const redisReply *r, int field) {
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || (size_t)field >= r->elements) return NULL;
    const redisReply *e = r->element[field];
    return e->type == REDIS_REPLY_STRING ? e->str : NULL;
}

const char *hn_rt_status_of(const char *status, const char *last_seen, int64_t score_ms,
                            int64_t now_ms, const hn_config *cfg) {
    int64_t ls;
    if (score_ms < 0) return "gone";
    /* hidden, and no heartbeat since (heartbeats come only from visible tabs) */
    if (status && strcmp(status, "idle") == 0 && parse_i64(last_seen, &ls) && ls >= score_ms)
        return "idle";
    if (score_ms < now_ms - cfg->active_s * 1000) return "idle";
    return "active";
}

const char *hn_rt_status(const redisReply *r, int64_t score_ms, int64_t now_ms,
                         const hn_config *cfg) {
    return hn_rt_status_of(hn_rt_sf(r, HN_SF_STATUS), hn_rt_sf(r, HN_SF_LAST_SEEN), score_ms,
                           now_ms, cfg);
}

/* The item's members after the times, in their order, each from one field. */
const hn_rt_member hn_rt_members[] = {
    {HN_SF_URL, "url", HN_RTM_STR},
    {HN_SF_TITLE, "title", HN_RTM_STR},
    {HN_SF_LANDING, "landing", HN_RTM_STR},
    {HN_SF_REFERRER, "referrer", HN_RTM_STR},
    {HN_SF_PAGEVIEWS, "page_views", HN_RTM_COUNT},
    {HN_SF_ENGAGED_MS, "engaged_s", HN_RTM_MS_AS_S},
    {HN_SF_IP, "ip", HN_RTM_STR},
    {HN_SF_COUNTRY, "country", HN_RTM_STR},
    {HN_SF_REGION, "region", HN_RTM_STR},
    {HN_SF_CITY, "city", HN_RTM_STR},
    {HN_SF_BROWSER, "browser", HN_RTM_STR},
    {HN_SF_BROWSER_VERSION, "browser_version", HN_RTM_STR},
    {HN_SF_OS, "os", HN_RTM_STR},
    {HN_SF_OS_VERSION, "os_version", HN_RTM_STR},
    {HN_SF_DEVICE, "device", HN_RTM_STR},
    {HN_SF_VISITOR, "visitor", HN_RTM_STR},
    {HN_SF_NAME, "name", HN_RTM_STR},
    {HN_SF_EMAIL, "email", HN_RTM_STR},
    {HN_SF_PHONE, "phone", HN_RTM_STR},
    {HN_SF_HAS_CHATTED, "has_chatted", HN_RTM_FLAG},
    {HN_SF_MESSAGES_SENT, "messages_sent", HN_RTM_COUNT},
    {HN_SF_LANG, "language", HN_RTM_STR},
    {HN_SF_SCREEN, "screen", HN_RTM_STR},
};
const int hn_rt_nmembers = (int)HN_ARRAY_LEN(hn_rt_members);

/* A snapshot counter or time: a non-negative decimal, else -1. */
static int64_t f_int(const char *s) {
    int64_t v;
    return parse_i64(s, &v) && v >= 0 ? v : -1;
}

void hn_rt_member_put(hn_buf *b, bool *first, const hn_rt_member *m, const char *v) {
    int64_t x;
    switch (m->kind) {
    case HN_RTM_STR: hn_json_kstr(b, first, m->key, v); break;
    case HN_RTM_COUNT: x = f_int(v); hn_json_kint(b, first, m->key, x < 0 ? 0 : x); break;
    case HN_RTM_MS_AS_S: x = f_int(v); hn_json_kint(b, first, m->key, x < 0 ? 0 : x / 1000); break;
    case HN_RTM_FLAG: hn_json_kbool(b, first, m->key, v && strcmp(v, "0") != 0); break;
    }
}

void hn_rt_item(hn_buf *b, bool *first, const char *sid, const char *const *f, int64_t score_ms,
                int64_t now_ms, const hn_config *cfg) {
    int64_t started = f_int(f[HN_SF_STARTED]);
    hn_json_kstr(b, first, "session_id", sid);
    hn_json_kstr(b, first, "status",
               hn_rt_status_of(f[HN_SF_STATUS], f[HN_SF_LAST_SEEN], score_ms, now_ms, cfg));
    if (score_ms >= 0)
        hn_json_ktime(b, first, "last_seen", score_ms);
    else if (f_int(f[HN_SF_LAST_SEEN]) >= 0)
        hn_json_ktime(b, first, "last_seen", f_int(f[HN_SF_LAST_SEEN]));
    else
        hn_json_knull(b, first, "last_seen");
    if (started >= 0) {
        hn_json_ktime(b, first, "started", started);
        hn_json_kint(b, first, "time_on_site_s", now_ms > started ? (now_ms - started) / 1000 : 0);
    } else {
        hn_json_knull(b, first, "started");
        hn_json_knull(b, first, "time_on_site_s");
    }
    for (int i = 0; i < hn_rt_nmembers; i++)
        hn_rt_member_put(b, first, &hn_rt_members[i], f[hn_rt_members[i].field]);
}

void hn_rt_snapshot(hn_buf *b, bool *first, const char *sid, const redisReply *r,
                    int64_t score_ms, int64_t now_ms, const hn_config *cfg) {
    const char *f[HN_SF__COUNT];
    for (int i = 0; i < HN_SF__COUNT; i++) f[i] = hn_rt_sf(r, i);
    hn_rt_item(b, first, sid, f, score_ms, now_ms, cfg);
}

/* ---- parameters ------------------------------------------------------------------ */

bool hn_rt_check_keys(const hn_api_req *rq, hn_api_resp *rs, const char *const *allowed, int n) {
    char err[HN_PARAM_ERR_CAP];
    if (hn_param_check_keys(rq->qkey, rq->nquery, allowed, n, err, sizeof(err)) == HN_OK)
        return true;
    hn_api_error(rs, 400, "%s", err);
    return false;
}

int64_t hn_rt_widget_id(const hn_api_req *rq) {
    int64_t v = 0;
    if (rq->nparams > 0 && rq->params[0]) parse_i64(rq->params[0], &v);
    return v;
}

bool hn_rt_range(const hn_api_req *rq, hn_api_resp *rs, int64_t *from_us, int64_t *to_us) {
    char err[HN_PARAM_ERR_CAP];
    if (hn_param_range(hn_api_query(rq, "from"), hn_api_query(rq, "to"), (int64_t)hn_now_us(),
                       from_us, to_us, err, sizeof(err)) == HN_OK)
        return true;
    hn_api_error(rs, 400, "%s", err);
    return false;
}

void hn_rt_answer(hn_api_resp *rs, hn_buf *b) {
    hn_buf_free(&rs->body);
    rs->body = *b;
    memset(b, 0, sizeof(*b));
    rs->status = 200;
}
