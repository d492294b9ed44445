/* routes.c: see routes.h. */
#include "api/routes.h"

#include "common/datakey.h"
#include "common/json.h"
#include "common/log.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- PostgreSQL rows -------------------------------------------------------- */

int64_t hn_rt_pg_int(const PGresult *res, int row, int col) {
    int64_t v = 0;
    if (!PQgetisnull(res, row, col)) hn_parse_i64(PQgetvalue(res, row, col), &v);
    return v;
}

/* A value that does not open (a key missing from the ring, an altered
 * value) is null, logged at most once a minute; counted by datakey.c. */
static void sealed_member(hn_buf *b, bool *first, const char *key, const char *v, size_t n,
                          hn_col_kind kind) {
    if (!hn_dk_is_sealed(v, n) && (kind == HN_COL_SEALED || memmem(v, n, HN_DK_PREFIX, HN_DK_PREFIX_LEN) == NULL)) {
        if (kind == HN_COL_JSON_SEALED) hn_json_kraw(b, first, key, v, n);
        else hn_json_kstrn(b, first, key, v, n);
        return;
    }
    hn_buf t = {0};
    int rc = kind == HN_COL_SEALED ? hn_dk_open(&t, v, n) : hn_dk_open_json(&t, v, n);
    if (rc != HN_OK) {
        static _Atomic int64_t logged;
        int64_t now = (int64_t)time(NULL), last = atomic_load(&logged);
        if (now - last >= 60 && atomic_compare_exchange_strong(&logged, &last, now)) {
            char id[HN_DK_ID_MAX + 1];
            hn_dk_id_of(v, n, id);
            hn_warn("event=data_open_failed column=%s key_id='%s' reason='%s'", key, id,
                    hn_dk_has(id, strlen(id)) ? "altered or damaged" : "key not in HERENOW_DATA_KEY_FILE");
        }
    }
    if (kind == HN_COL_SEALED) {
        if (rc == HN_OK) hn_json_kstrn(b, first, key, t.p ? t.p : "", t.len);
        else hn_json_knull(b, first, key);
    } else if (kind == HN_COL_JSON_SEALED) {
        hn_json_kraw(b, first, key, t.p, t.len);        /* what did not open stays sealed */
    } else {
        hn_json_kstrn(b, first, key, t.p ? t.p : "", t.len);
    }
    hn_dk_buf_wipe(&t);
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
            if (hn_parse_i64(v, &x))
                hn_json_kint(b, first, key, x);
            else
                hn_json_knull(b, first, key);
            break;
        case HN_COL_BOOL: hn_json_kbool(b, first, key, v[0] == 't'); break;
        case HN_COL_JSON: hn_json_kraw(b, first, key, v, (size_t)n); break;
        case HN_COL_TIME:
            if (hn_parse_i64(v, &x))
                hn_json_ktime(b, first, key, x);
            else
                hn_json_knull(b, first, key);
            break;
        case HN_COL_SEALED:
        case HN_COL_JSON_SEALED:
        case HN_COL_JSON_SEALED_STR: sealed_member(b, first, key, v, (size_t)n, cols[i].kind); break;
        }
    }
}

/* ---- Redis --------------------------------------------------------------------- */

hn_rcl *hn_rt_redis(hn_api_worker *w, hn_api_resp *rs) {
    hn_rcl *c = hn_api_redis(w);
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
    hn_rcl *c = w->redis;
    for (int i = 0; i < n; i++) out[i] = NULL;
    for (int i = 0; i < n; i++) {
        void *r = NULL;
        if (c == NULL || hn_rcl_get_reply(c, &r) != REDIS_OK || r == NULL) {
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
    if (rq->nparams > 0 && rq->params[0]) hn_parse_i64(rq->params[0], &v);
    return v;
}

static bool rt_range(const hn_api_req *rq, hn_api_resp *rs, int64_t max_us, int64_t *from_us,
                     int64_t *to_us, bool *all) {
    char err[HN_PARAM_ERR_CAP];
    if (hn_param_range_max(hn_api_query(rq, "from"), hn_api_query(rq, "to"), (int64_t)hn_now_us(),
                           max_us, from_us, to_us, all, err, sizeof(err)) == HN_OK)
        return true;
    hn_api_error(rs, 400, "%s", err);
    return false;
}

bool hn_rt_range(const hn_api_req *rq, hn_api_resp *rs, int64_t *from_us, int64_t *to_us) {
    return rt_range(rq, rs, HN_RANGE_MAX_US, from_us, to_us, NULL);
}

bool hn_rt_range_rollup(const hn_api_req *rq, hn_api_resp *rs, int64_t *from_us, int64_t *to_us,
                        bool *all) {
    return rt_range(rq, rs, HN_RANGE_ROLLUP_MAX_US, from_us, to_us, all);
}

void hn_rt_next_cursor(hn_buf *out, bool *first, const hn_cursor *cur) {
    if (cur == NULL) {
        hn_json_knull(out, first, "next_cursor");
        return;
    }
    char enc[HN_CURSOR_CAP];
    size_t len = hn_cursor_encode(cur, enc);
    hn_json_kstrn(out, first, "next_cursor", enc, len);
}

void hn_rt_answer(hn_api_resp *rs, hn_buf *b) {
    hn_buf_free(&rs->body);
    rs->body = *b;
    memset(b, 0, sizeof(*b));
    rs->status = 200;
}

/* rows of res as a JSON array of objects (at most cap); true when cut. */
bool hn_rt_rows_array(hn_buf *b, const PGresult *res, const hn_col *cols, int ncols, int cap) {
    int n = PQntuples(res);
    hn_buf_append(b, "[", 1);
    for (int i = 0; i < n && i < cap; i++) {
        hn_buf_append(b, i ? ",{" : "{", i ? 2 : 1);
        bool f = true;
        hn_rt_pg_row(b, &f, res, i, 0, cols, ncols);
        hn_buf_append(b, "}", 1);
    }
    hn_buf_append(b, "]", 1);
    return n > cap;
}
