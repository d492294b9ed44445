/*
 * api.h: herenow-api's HTTP API room — what a route handler sees: the
 * request, the answer it builds, the worker's connections. The other rooms
 * of the process are api/live/ (the live hub and its SSE streams) and
 * api/drain/ (the stream into PostgreSQL); docs/ARCHITECTURE.md draws them.
 *
 * Threads (libevent 2.1's evhttp is not thread-safe, so only one thread
 * touches it):
 *
 *   main thread   evhttp on HERENOW_API_LISTEN: parses the request, checks
 *                 the token against the in-memory token cache, matches the
 *                 route, and queues a job. When the job is done it sends the
 *                 answer. It never blocks on PostgreSQL or Redis. It also
 *                 holds the live streams (api/live/sse.c).
 *   N workers     (HERENOW_API_THREADS) each own one blocking PGconn and one
 *                 blocking hn_rcl (with timeouts) and run handlers.
 *   token cache   auth.c: reloads api_tokens.
 *   live hub      api/live/hub.c: tails the stream for watched widgets.
 *   drain         api/drain/: its own PGconn and hn_rcl per consumer,
 *                 moves the stream into PostgreSQL (DESIGN.md §4).
 *
 *   server.c          the listener, a request's way to a job, the stop
 *   server_health.c   /livez /readyz /metrics
 *   server_stream.c   the live stream's tickets and its hand-over to api/live/
 *   router.c          the route table, by name
 *   request.c         query strings, widget ids, log-safe text
 *   reply.c           standard headers, answers counted until written
 *   auth.c            the token cache
 *   pool.c            worker threads, the job queue, streamed answers
 *   routes_live.c     active visitors, session details, deactivate
 *   routes_admin.c    erase a visitor, the widget list
 *   routes_chat.c     Start Chat: invite, messages, close, chat list
 *   routes_notes.c    notes, tags and bans on visitors; annotations
 *   annot.c           the annotations cache of the live rows
 *   routes_webhooks.c the lifecycle webhook, the webhook delivery logs
 *   routes_history.c  stats, timeseries, breakdown, sessions, export.csv
 *   routes_rules.c    rules (list, create, read, replace, delete), rules-export
 *   routes_pages.c    pages now (the live hub's table), active-visitors?at=, concurrency
 *   routes.c          what the handlers share (rows → JSON, Redis replies)
 *   params.c          query and path parameter parsing shared by the routes
 *   static.c          the dashboard's files (api/www/)
 *   ticket.c          live-stream tickets (mint, verify)
 */
#ifndef HN_API_H
#define HN_API_H

#include "common/buf.h"
#include "common/config.h"
#include "common/hn.h"
#include "common/pg.h"
#include "common/rcl.h"

#include <libpq-fe.h>
#include <pthread.h>

/* ---- a request, as a handler sees it --------------------------------------- */

#define HN_API_MAX_PATH_PARAMS 3
#define HN_API_MAX_QUERY       16

typedef enum hn_api_method { HN_GET = 1, HN_POST, HN_DELETE, HN_PUT } hn_api_method;

typedef struct hn_principal {
    char    token_id[16];   /* the public id of the token (never the secret) */
    int64_t widget_id;      /* the one widget it may see, or -1: every widget */
} hn_principal;

typedef struct hn_api_req {
    hn_api_method method;
    const char   *path;                          /* as sent, without the query */
    /* path parameters in route order (:widgetId, :sessionId, :visitor),
     * percent-decoded, NUL-terminated, owned by the request */
    char         *params[HN_API_MAX_PATH_PARAMS];
    int           nparams;
    /* query string, percent-decoded; a key given twice is a 400 before the
     * handler runs */
    char         *qkey[HN_API_MAX_QUERY];
    char         *qval[HN_API_MAX_QUERY];
    int           nquery;
    hn_principal  who;
    const hn_config *cfg;
    /* the live hub (pages now reads its tables; NULL in unit tests) */
    struct hn_live *live;
    /* a POST's or PUT's body (NUL-terminated copy, owned by the request; NULL when empty) */
    char         *body;
    size_t        body_len;
} hn_api_req;

/* The value of query parameter `key`, or NULL when absent. */
const char *hn_api_query(const hn_api_req *rq, const char *key);

/* true when the request's token may see widget_id. */
static inline bool hn_api_may_see(const hn_api_req *rq, int64_t widget_id) {
    return rq->who.widget_id < 0 || rq->who.widget_id == widget_id;
}

/* ---- the answer a handler builds ---------------------------------------------
 * A plain answer: set status (default 200) and write JSON into body. For
 * errors use hn_api_error, which writes {"error": "..."}.
 *
 * A streamed answer (CSV export): call hn_api_stream_begin once, then
 * hn_api_stream_write any number of times; the worker blocks while more than
 * a few chunks wait to be written to a slow client (backpressure), and
 * hn_api_stream_write returns HN_ERR once the client has gone — then stop
 * and return. Headers are sent at begin, so an error after it can only cut
 * the stream short (the client sees a truncated chunked body).
 */
typedef struct hn_api_job hn_api_job;

typedef struct hn_api_resp {
    int         status;        /* HTTP status, 200 by default */
    hn_buf      body;          /* JSON (plain answers) */
    const char *content_type;  /* NULL: application/json */
    hn_api_job *job;           /* for streaming; handlers don't touch it */
    bool        streaming;
} hn_api_resp;

void hn_api_error(hn_api_resp *rs, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* filename: for Content-Disposition: attachment (NULL: none). */
int  hn_api_stream_begin(hn_api_resp *rs, int status, const char *content_type,
                         const char *filename);
int  hn_api_stream_write(hn_api_resp *rs, const void *p, size_t n);

/* ---- what a worker thread owns ---------------------------------------------- */

typedef struct hn_api_worker {
    int              index;
    const hn_config *cfg;
    PGconn          *pg;      /* NULL while disconnected: hn_api_pg() reconnects */
    hn_rcl          *redis;   /* same: hn_api_redis() */
} hn_api_worker;

/* Connected handles, (re)connecting when needed; NULL when the server is
 * unreachable (the handler then answers 503 with hn_api_error). After a
 * failed call on a handle whose connection broke, call hn_api_*_broken so
 * that the next use reconnects. */
PGconn       *hn_api_pg(hn_api_worker *w);
hn_rcl *hn_api_redis(hn_api_worker *w);
void          hn_api_pg_broken(hn_api_worker *w);
void          hn_api_redis_broken(hn_api_worker *w);

/* How the api's PostgreSQL sessions are set up (common/pg.h): connect_timeout
 * and statement_timeout from HERENOW_API_TIMEOUT_MS. */
#define hn_api_pg_opts(cfg, app)                                                          \
    ((hn_pg_opts){.appname = (app),                                                       \
                  .connect_timeout_s = (cfg)->api_timeout_ms < 2000 ? 2 : ((cfg)->api_timeout_ms + 999) / 1000, \
                  .statement_timeout_ms = (cfg)->api_timeout_ms})

/* Runs one statement with every parameter bound (text format). Returns the
 * result when its status is want; else logs the error, answers 503 (lost
 * connection) or 500 into rs, clears it and returns NULL. */
PGresult *hn_api_pg_exec(hn_api_worker *w, hn_api_resp *rs, ExecStatusType want,
                         const char *sql, int nparams, const char *const *params);

/* ---- routes -------------------------------------------------------------------- */

typedef void (*hn_api_handler)(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);

/* The handlers (routes_*.c). Each validates its own parameters and answers
 * 400 with a reason on anything malformed; the server has already checked
 * the token (401) and, for routes with :widgetId, the token's scope (403)
 * and that :widgetId is a positive 31-bit integer (400). */
void hn_route_active_visitors(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_session(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_deactivate(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_erase_visitor(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_stats(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_timeseries(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_breakdown(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_sessions(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_export(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_widgets(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
/* routes_pages.c: pages now (the live hub), time travel and concurrency (PostgreSQL) */
void hn_route_pages_live(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_active_at(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_concurrency(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
/* routes_chat.c: Start Chat (docs/CHAT.md §6) */
void hn_route_chat_invite(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_chat_message(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_chat_messages(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_chat_close(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_chats(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
/* routes_notes.c: notes, tags and bans on visitors (docs/RULES.md §5) */
void hn_route_notes(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_note_add(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_note_delete(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_tags(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_tags_set(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_bans(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_ban_add(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_ban_delete(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_annotations(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
/* routes_webhooks.c: the lifecycle webhook and the delivery logs (docs/RULES.md §6) */
void hn_route_webhook_get(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_webhook_put(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_webhook_delete(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_webhook_deliveries(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_rule_deliveries(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
/* routes_rules.c: a widget's rules and their export (docs/RULES.md §6) */
void hn_route_rules(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_rule_create(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_rule(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_rule_put(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_rule_delete(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
void hn_route_rules_export(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs);
/* The chat routes' metrics (Prometheus text), summed over the workers. */
void hn_chat_metrics(hn_buf *out);

#endif
