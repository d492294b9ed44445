/*
 * routes.h: what the route handlers (routes_live.c, routes_history.c)
 * share: JSON members from PostgreSQL rows, pipelined Redis replies with
 * the error handling every route needs, and the 400 answers for bad
 * parameters. The JSON member writers are common/json.h's; a session's
 * snapshot as JSON is the live room's (api/live/snapshot.h), key names are
 * proto/keys.h's.
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
    HN_COL_SEALED, /* text maybe sealed (common/datakey.h) → JSON string opened; null when it does not open */
    HN_COL_JSON_SEALED, /* json text whose strings may be sealed → embedded, those opened */
    HN_COL_JSON_SEALED_STR, /* the same → a JSON string of that text */
} hn_col_kind;

typedef struct hn_col {
    const char *key;
    hn_col_kind kind;
} hn_col;

/* event_data as text, opened only for `id` events (common/datakey.h): in any
 * other event (what a visitor's page sent) a string that looks sealed gets
 * its ':' escaped — the same JSON value, which the opener leaves alone. */
#define HN_SQL_EVENT_DATA \
    "CASE WHEN event_type = 'id' THEN event_data::text" \
    " ELSE replace(event_data::text, '\"hnenc:', E'\"hnenc\\\\u003a') END"

/* SQL that turns a timestamptz column into ms since the epoch (bigint). */
#define HN_SQL_MS(col) "floor(extract(epoch FROM " col ") * 1000)::bigint"

/* Columns col0 .. col0+ncols of row as members, named and typed by cols. */
void hn_rt_pg_row(hn_buf *b, bool *first, const PGresult *res, int row, int col0,
                  const hn_col *cols, int ncols);

/* The rows of res as a JSON array of objects (at most cap); true when cut. */
bool hn_rt_rows_array(hn_buf *b, const PGresult *res, const hn_col *cols, int ncols, int cap);

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
hn_rcl *hn_rt_redis(hn_api_worker *w, hn_api_resp *rs);

/* ---- parameters ------------------------------------------------------------------ */

/* 400 unless every query key is in allowed. */
bool hn_rt_check_keys(const hn_api_req *rq, hn_api_resp *rs, const char *const *allowed, int n);
/* :widgetId (params[0]), already validated by the server. */
int64_t hn_rt_widget_id(const hn_api_req *rq);
/* from/to of the query; 400 and false on a bad value. hn_rt_range: at most
 * HN_RANGE_MAX_US (routes that read raw rows); hn_rt_range_rollup: at most
 * HN_RANGE_ROLLUP_MAX_US (routes that read the rollups), *all (may be
 * NULL) when from was "all". */
bool hn_rt_range(const hn_api_req *rq, hn_api_resp *rs, int64_t *from_us, int64_t *to_us);
bool hn_rt_range_rollup(const hn_api_req *rq, hn_api_resp *rs, int64_t *from_us, int64_t *to_us,
                        bool *all);

/* "next_cursor": cur encoded, or null when cur is NULL (the last page). */
void hn_rt_next_cursor(hn_buf *out, bool *first, const hn_cursor *cur);

/* Moves b into rs->body as the answer (status 200). */
void hn_rt_answer(hn_api_resp *rs, hn_buf *b);

#endif
