/*
 * routes.h: what the route handlers (routes_live.c, routes_history.c)
 * share: JSON members from PostgreSQL rows and Redis session snapshots,
 * pipelined Redis replies with the error handling every route needs, and
 * the 400 answers for bad parameters. The JSON member writers are
 * common/json.h's.
 *
 * JSON is built into a caller's hn_buf as members ("key":value, comma
 * handled by *first); braces are the caller's. Handlers build their answer
 * in a local buffer and move it into rs->body only once everything worked,
 * so an error answer never carries half a result.
 */
#ifndef HN_ROUTES_H
#define HN_ROUTES_H

#include "api/api.h"
#include "api/params.h"

/* ---- PostgreSQL rows -------------------------------------------------------- */

/* How one column of a result becomes a JSON value; SQL NULL is null. */
typedef enum hn_col_kind {
    HN_COL_STR,    /* text → JSON string */
    HN_COL_INT,    /* integer text → number */
    HN_COL_BOOL,   /* 't'/'f' → true/false */
    HN_COL_JSON,   /* json/jsonb text → embedded as is */
    HN_COL_TIME,   /* bigint ms since the epoch (HN_SQL_MS) → ISO 8601 string */
} hn_col_kind;

typedef struct hn_col {
    const char *key;
    hn_col_kind kind;
} hn_col;

/* SQL that turns a timestamptz column into ms since the epoch (bigint). */
#define HN_SQL_MS(col) "floor(extract(epoch FROM " col ") * 1000)::bigint"

/* Columns col0 .. col0+ncols of row as members, named and typed by cols. */
void hn_rt_pg_row(hn_buf *b, bool *first, const PGresult *res, int row, int col0,
                  const hn_col *cols, int ncols);

/* The integer in a result cell (0 when NULL or not a number). */
int64_t hn_rt_pg_int(const PGresult *res, int row, int col);

/* ---- Redis --------------------------------------------------------------------- */

/* Reads n pipelined replies into out[]. On a lost connection: marks it
 * broken, answers 503, frees what it read, returns HN_ERR. An error reply
 * (e.g. WRONGTYPE) is returned like any other: check with hn_rt_redis_ok. */
int  hn_rt_redis_replies(hn_api_worker *w, hn_api_resp *rs, int n, redisReply **out);
void hn_rt_redis_free(redisReply **r, int n);
/* true when r has the type wanted; else answers 500 naming the command. */
bool hn_rt_redis_ok(hn_api_resp *rs, const redisReply *r, int type, const char *what);
/* The Redis connection, or NULL after answering 503. */
redisContext *hn_rt_redis(hn_api_worker *w, hn_api_resp *rs);

/* A session's snapshot (hn:sess:{w}:<sid>, docs/PROTOCOL.md §9) as read
 * with one HMGET of these fields, in this order. */
enum {
    HN_SF_LAST_SEEN, HN_SF_STATUS, HN_SF_STARTED, HN_SF_LANDING, HN_SF_REFERRER, HN_SF_URL,
    HN_SF_TITLE, HN_SF_PAGEVIEWS, HN_SF_ENGAGED_MS, HN_SF_IP, HN_SF_LANG, HN_SF_SCREEN,
    HN_SF_COUNTRY, HN_SF_REGION, HN_SF_CITY, HN_SF_BROWSER, HN_SF_BROWSER_VERSION, HN_SF_OS,
    HN_SF_OS_VERSION, HN_SF_DEVICE, HN_SF_VISITOR, HN_SF_NAME, HN_SF_EMAIL, HN_SF_PHONE,
    HN_SF_HAS_CHATTED, HN_SF_MESSAGES_SENT,
    HN_SF__COUNT
};
/* Appends "HMGET hn:sess:{w}:<sid> <the fields>" to the pipeline. */
void hn_rt_append_snapshot(redisContext *c, int64_t widget_id, const char *sid);
/* A field of an HMGET reply, NULL when absent. */
const char *hn_rt_sf(const redisReply *r, int field);
/* The snapshot as members: session_id, status, last_seen, started,
 * time_on_site_s, url, title, ... (docs/API.md, active visitors).
 * score_ms: the session's hn:live score (-1: not live). */
void hn_rt_snapshot(hn_buf *b, bool *first, const char *sid, const redisReply *r,
                    int64_t score_ms, int64_t now_ms, const hn_config *cfg);
/* The status by PROTOCOL §9's reader rule. */
const char *hn_rt_status(const redisReply *r, int64_t score_ms, int64_t now_ms,
                         const hn_config *cfg);
/* The same from the snapshot's status and last_seen fields (NULL: absent). */
const char *hn_rt_status_of(const char *status, const char *last_seen, int64_t score_ms,
                            int64_t now_ms, const hn_config *cfg);
/* The same item from the fields as strings (f[HN_SF_*], NULL: absent):
 * what the live hub keeps per session. */
void hn_rt_item(hn_buf *b, bool *first, const char *sid, const char *const *f, int64_t score_ms,
                int64_t now_ms, const hn_config *cfg);

/* The item's members that come from one snapshot field each (url, title,
 * …, screen; not the times and the status), in the item's order: the live
 * stream's updates send the ones that changed. */
typedef enum { HN_RTM_STR, HN_RTM_COUNT, HN_RTM_MS_AS_S, HN_RTM_FLAG } hn_rtm_kind;
typedef struct hn_rt_member {
    int         field;      /* HN_SF_* */
    const char *key;
    hn_rtm_kind kind;
} hn_rt_member;
extern const hn_rt_member hn_rt_members[];
extern const int          hn_rt_nmembers;
/* The member m with the field's value v (NULL: absent → null, or 0/false). */
void hn_rt_member_put(hn_buf *b, bool *first, const hn_rt_member *m, const char *v);

/* Key names, from a widget id and a validated session id. */
#define HN_KEY_CAP 112
void hn_rt_live_key(char *out, int64_t widget_id);
void hn_rt_ended_key(char *out, int64_t widget_id);
void hn_rt_sess_key(char *out, int64_t widget_id, const char *sid);

/* ---- parameters ------------------------------------------------------------------ */

/* 400 unless every query key is in allowed. */
bool hn_rt_check_keys(const hn_api_req *rq, hn_api_resp *rs, const char *const *allowed, int n);
/* :widgetId (params[0]), already validated by the server. */
int64_t hn_rt_widget_id(const hn_api_req *rq);
/* from/to of the query; 400 and false on a bad value. */
bool hn_rt_range(const hn_api_req *rq, hn_api_resp *rs, int64_t *from_us, int64_t *to_us);

/* Moves b into rs->body as the answer (status 200). */
void hn_rt_answer(hn_api_resp *rs, hn_buf *b);

#endif
