/*
 * internal.h: what server.c, pool.c and auth.c share inside herenow-api.
 * Handlers see only api.h.
 *
 *        main thread (event base, evhttp)               worker threads
 *   request ─► parse, route, auth ─► job ─► queue ─────► handler(w, rq, rs)
 *                                                            │
 *   answer  ◄── done callback ◄── outbox ◄─ event_active ◄───┘ (done, or stream
 *                                                             begin / chunks)
 *
 * A job is allocated and freed by the main thread. A worker reads the
 * request part and writes the answer part while it runs the job; after it
 * has set worker_done (under the outbox lock) it never touches the job
 * again. Only the main thread touches the evhttp request.
 */
#ifndef HN_API_INTERNAL_H
#define HN_API_INTERNAL_H

#include "api/api.h"
#include "api/drain/drain.h"
#include "common/rcl.h"

struct event;
struct event_base;
struct evhttp_request;

#define HN_API_CHUNK        (64 * 1024)  /* streamed answers go out in chunks of ~this */
#define HN_API_MAX_INFLIGHT 4            /* a streaming worker waits beyond this many */
#define HN_API_MAX_PARAM    256          /* bytes of a decoded path parameter */

/* One chunk of a streamed answer on its way to the main thread. */
typedef struct hn_api_chunk {
    struct hn_api_chunk *next;
    hn_buf               data;
} hn_api_chunk;

typedef enum {
    HN_STREAM_NONE = 0,
    HN_STREAM_BEGUN,     /* the worker called begin; headers not sent yet */
    HN_STREAM_SENT,      /* the main thread sent the headers */
} hn_stream_state;

typedef struct hn_api_pool hn_api_pool;

struct hn_api_job {
    /* --- set by the main thread before the job is queued; read-only after */
    hn_api_req      rq;
    hn_api_handler  handler;
    int             route;           /* server's route index (metrics, log) */
    uint64_t        start_ms;        /* hn_mono_ms() when the request arrived */
    uint64_t        start_us;        /* the same in µs (latency metrics) */
    char           *path;            /* owned: rq.path points here */

    /* --- written by the worker while it runs the job */
    hn_api_resp     rs;
    hn_buf          cur;             /* stream bytes not yet handed over */
    uint64_t        stream_bytes;

    /* --- main thread only */
    struct evhttp_request *req;      /* NULL once answered (or given up) */
    struct event   *deadline;
    hn_api_job     *snext, *sprev;   /* the server's list of outstanding jobs */

    /* --- shared, guarded by the pool's outbox lock */
    hn_api_pool    *pool;
    void           *owner;           /* the server */
    char           *query;           /* owned: the raw query string (log) */
    hn_api_job     *qnext, *qprev;   /* queue links (queue lock) */
    hn_api_job     *onext;           /* outbox link */
    bool            in_outbox;
    bool            in_queue;        /* queue lock */
    bool            worker_done;     /* the worker let go of the job */
    bool            expired;         /* too old when a worker took it: never ran */
    bool            answered;        /* the main thread answered it already (deadline) */
    bool            gone;            /* the client left, or the stream was given up */
    bool            stream_failed;   /* hn_api_error after begin: cut the stream */
    bool            cut_pending;     /* failed stream: cut once its data is out */
    hn_stream_state stream;
    int             stream_status;
    char           *stream_ctype;
    char           *stream_disposition;
    hn_api_chunk   *chunks, **chunks_tail;  /* handed over, not yet given to evhttp */
    int             inflight;        /* chunks handed over and not yet written out */
    int             wire;            /* of those, given to evhttp (main thread) */
    pthread_cond_t  cv;              /* the worker waits here for inflight to drop */
};

/* ---- pool.c: workers, the job queue, streaming -------------------------------- */

/* Called on the main thread once per job, after its worker let go of it
 * (or right away for a job that expired in the queue). For a streamed job
 * the stream has been ended (or cut) already; otherwise the callee sends
 * the answer. The callee frees the job with hn_job_free. */
typedef void (*hn_pool_done_fn)(void *arg, hn_api_job *job);

typedef struct hn_pool_stats {
    uint64_t queued, capacity, workers, busy;
    uint64_t pg_connects, pg_connect_failures, redis_connects, redis_connect_failures;
    uint64_t expired, stream_chunks, stream_bytes, streams_cut;
} hn_pool_stats;

/* writing: the server's count of answers going out (reply.h), main thread only */
hn_api_pool *hn_pool_create(const hn_config *cfg, const hn_redis_cfg *rcfg, uint64_t *writing,
                            struct event_base *base, hn_pool_done_fn done, void *arg);
int  hn_pool_start(hn_api_pool *p, char *err, size_t cap);
/* HN_OK, or HN_AGAIN when the queue holds API_MAX_QUEUE jobs already. */
int  hn_pool_submit(hn_api_pool *p, hn_api_job *job);
/* Takes a job out of the queue before any worker took it: true when it was
 * still there (it will never run; the caller answers and frees it). */
bool hn_pool_cancel(hn_api_pool *p, hn_api_job *job);
/* The main thread gives up on a running job (deadline): true when the job
 * has not begun a stream, so the caller may answer it now; the worker's
 * later output is then discarded. */
bool hn_pool_give_up(hn_api_pool *p, hn_api_job *job);
/* Shutdown deadline: cancels running statements, breaks Redis calls, ends
 * streams, so that workers return soon. */
void hn_pool_interrupt(hn_api_pool *p);
/* Workers finish their current job and exit; joined. Jobs still queued are
 * handed to the done callback as expired. Then delivers whatever the
 * workers left in the outbox. */
void hn_pool_stop(hn_api_pool *p);
/* After hn_pool_stop: finishes a job that still waits for its client (a
 * failed stream being flushed): cuts it and hands it to the done callback. */
void hn_pool_abandon(hn_api_pool *p, hn_api_job *job);
void hn_pool_destroy(hn_api_pool *p);
void hn_pool_stats_get(hn_api_pool *p, hn_pool_stats *s);

hn_api_job *hn_job_new(void);
void        hn_job_free(hn_api_job *job);

/* ---- auth.c: the token cache --------------------------------------------------- */

typedef enum hn_auth_result {
    HN_AUTH_OK = 0,
    HN_AUTH_MISSING,       /* no Authorization header */
    HN_AUTH_SCHEME,        /* not "Bearer <token>" */
    HN_AUTH_MALFORMED,     /* not a token's shape */
    HN_AUTH_INVALID,       /* unknown id, wrong secret or revoked: not told apart */
    HN_AUTH_UNAVAILABLE,   /* the tokens were never loaded (PostgreSQL down since start) */
    HN_AUTH__COUNT
} hn_auth_result;

typedef struct hn_api_auth hn_api_auth;

typedef struct hn_auth_stats {
    bool     loaded;
    uint64_t tokens;
    uint64_t age_ms;           /* since the last successful load */
    uint64_t refreshes, refresh_errors;
} hn_auth_stats;

hn_api_auth   *hn_auth_create(const hn_config *cfg);
int            hn_auth_start(hn_api_auth *a, char *err, size_t cap);
void           hn_auth_destroy(hn_api_auth *a);           /* stops and joins the thread */
/* header: the Authorization header or NULL. Fills who on HN_AUTH_OK.
 * Thread-safe; never logs or keeps the token. */
hn_auth_result hn_auth_check(hn_api_auth *a, const char *header, hn_principal *who);
/* The token with this public id, as the cache has it now (a live-stream
 * ticket names its token by id): HN_AUTH_OK with who filled,
 * HN_AUTH_INVALID when unknown or revoked, HN_AUTH_UNAVAILABLE. */
hn_auth_result hn_auth_by_id(hn_api_auth *a, const char *id, hn_principal *who);
/* Finds the token in an Authorization header value: HN_OK with tok/n
 * pointing into header, HN_AUTH_SCHEME/HN_AUTH_MISSING otherwise. Pure. */
hn_auth_result hn_auth_bearer(const char *header, const char **tok, size_t *n);
const char    *hn_auth_reason(hn_auth_result r);          /* metric label */
void           hn_auth_stats_get(hn_api_auth *a, hn_auth_stats *s);

/* ---- server.c ------------------------------------------------------------------- */

typedef struct hn_api_server hn_api_server;

/* Binds the listener and starts the token cache and the workers; HN_ERR with
 * a reason on a bad setting or a port that cannot be bound. */
int  hn_server_create(hn_api_server **out, const hn_config *cfg, char *err, size_t cap);
void hn_server_set_drain(hn_api_server *s, hn_drain *d);
/* Runs until SIGTERM/SIGINT and the in-flight requests are done (or the
 * shutdown deadline passed). */
int  hn_server_run(hn_api_server *s);
/* Milliseconds left of HERENOW_SHUTDOWN_TIMEOUT_MS since the stop signal. */
int  hn_server_remaining_ms(const hn_api_server *s);
void hn_server_destroy(hn_api_server *s);

#endif
