/*
 * pool.c: the api's worker threads, the job queue between them and the main
 * thread, their PostgreSQL and Redis connections, and streamed answers.
 *
 *   main: hn_pool_submit ──► queue (bounded, API_MAX_QUEUE) ──► worker runs
 *         the handler with its own blocking PGconn and hn_rcl
 *   worker ──► outbox (a list of jobs the main thread has to look at) and
 *              event_active(notify) ──► main: on_notify delivers each job:
 *              stream headers, stream chunks, and at last the answer
 *
 * Streams: the worker fills job->cur; every ~64 KiB it hands the buffer
 * over as one chunk and waits while more than HN_API_MAX_INFLIGHT chunks are
 * handed over and not yet written to the socket. The main thread passes the
 * chunks to evhttp (by reference, no copy) with a write callback; the
 * callback fires when the connection's output buffer is empty, which lets
 * the worker go on. A client that leaves shows as the connection's close
 * callback (libevent 2.1: a request whose reply has not ended is detached
 * from its connection, evhttp_request_get_connection() turns NULL, and the
 * request is ours to free — evhttp_send_reply_end does that); from then on
 * hn_api_stream_write returns HN_ERR.
 */
#include "api/internal.h"
#include "api/reply.h"
#include "common/httpguard.h"
#include "common/json.h"
#include "common/log.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define RETRY_MS 1000      /* a failed connect is not tried again sooner */

typedef struct slot {
    hn_api_worker   w;           /* what handlers see; first member */
    hn_api_pool    *pool;
    pthread_t       thread;
    bool            started;
    /* guards job, cancel and redis_fd against hn_pool_interrupt */
    pthread_mutex_t mu;
    hn_api_job     *job;
    PGcancel       *cancel;
    int             redis_fd;
    /* worker only */
    uint64_t        pg_retry_at, redis_retry_at;
    bool            pg_down_logged, redis_down_logged;
    _Atomic uint64_t pg_connects, pg_failures, redis_connects, redis_failures;
} slot;

struct hn_api_pool {
    const hn_config   *cfg;
    hn_redis_cfg       rcfg;
    struct event_base *base;
    struct event      *notify;
    hn_pool_done_fn    done;
    void              *done_arg;
    uint64_t          *writing;     /* the server's count of answers going out */
    int                nslots;
    slot              *slots;

    pthread_mutex_t    qmu;          /* the queue */
    pthread_cond_t     qcv;
    hn_api_job        *qhead, *qtail;
    size_t             qlen, qcap;
    bool               stopping;
    bool               stopping_main;  /* main thread: no event loop any more */

    pthread_mutex_t    omu;          /* the outbox and the jobs' shared fields */
    hn_api_job        *ohead, **otail;
    hn_api_job       **batch;        /* main thread: on_notify's snapshot */
    size_t             batch_cap;

    _Atomic uint64_t   busy, expired, chunks, bytes, cut;
};

static slot *slot_of(hn_api_worker *w) { return (slot *)w; }

/* ---- connections ---------------------------------------------------------------- */

PGconn *hn_api_pg(hn_api_worker *w) {
    slot *s = slot_of(w);
    if (w->pg && PQstatus(w->pg) == CONNECTION_OK) return w->pg;
    if (w->pg) hn_api_pg_broken(w);
    uint64_t now = hn_mono_ms();
    if (now < s->pg_retry_at) return NULL;
    char err[256];
    PGconn *pg = hn_pg_connect(w->cfg->database_url, &hn_api_pg_opts(w->cfg, "herenow-api"), err, sizeof(err));
    if (pg == NULL) {
        s->pg_retry_at = now + RETRY_MS;
        atomic_fetch_add(&s->pg_failures, 1);
        if (!s->pg_down_logged)
            hn_warn("event=pg_connect_failed worker=%d err='%s'", w->index, err);
        s->pg_down_logged = true;
        return NULL;
    }
    if (s->pg_down_logged) hn_info("event=pg_connected worker=%d", w->index);
    s->pg_down_logged = false;
    atomic_fetch_add(&s->pg_connects, 1);
    PGcancel *c = PQgetCancel(pg);
    pthread_mutex_lock(&s->mu);
    w->pg = pg;
    s->cancel = c;
    pthread_mutex_unlock(&s->mu);
    return pg;
}

void hn_api_pg_broken(hn_api_worker *w) {
    slot *s = slot_of(w);
    pthread_mutex_lock(&s->mu);
    PGconn *pg = w->pg;
    PGcancel *c = s->cancel;
    w->pg = NULL;
    s->cancel = NULL;
    pthread_mutex_unlock(&s->mu);
    if (c) PQfreeCancel(c);
    if (pg) PQfinish(pg);
}

hn_rcl *hn_api_redis(hn_api_worker *w) {
    slot *s = slot_of(w);
    if (w->redis && hn_rcl_err(w->redis) == 0) return w->redis;
    if (w->redis) hn_api_redis_broken(w);
    uint64_t now = hn_mono_ms();
    if (now < s->redis_retry_at) return NULL;
    char err[256];
    hn_rcl *c = hn_rcl_connect(&s->pool->rcfg, (int)w->cfg->api_timeout_ms, err, sizeof(err));
    if (c == NULL) {
        s->redis_retry_at = now + RETRY_MS;
        atomic_fetch_add(&s->redis_failures, 1);
        if (!s->redis_down_logged)
            hn_warn("event=redis_connect_failed worker=%d err='%s'", w->index, err);
        s->redis_down_logged = true;
        return NULL;
    }
    if (s->redis_down_logged) hn_info("event=redis_connected worker=%d", w->index);
    s->redis_down_logged = false;
    atomic_fetch_add(&s->redis_connects, 1);
    pthread_mutex_lock(&s->mu);
    w->redis = c;
    s->redis_fd = hn_rcl_fd(c);     /* -1 on a cluster: a stuck call ends at its reply timeout */
    pthread_mutex_unlock(&s->mu);
    return c;
}

void hn_api_redis_broken(hn_api_worker *w) {
    slot *s = slot_of(w);
    pthread_mutex_lock(&s->mu);
    hn_rcl *c = w->redis;
    w->redis = NULL;
    s->redis_fd = -1;
    if (c) hn_rcl_free(c);     /* under the lock: interrupt may shutdown() its fd */
    pthread_mutex_unlock(&s->mu);
}

PGresult *hn_api_pg_exec(hn_api_worker *w, hn_api_resp *rs, ExecStatusType want,
                         const char *sql, int nparams, const char *const *params) {
    PGconn *pg = hn_api_pg(w);
    if (pg == NULL) {
        hn_api_error(rs, 503, "database unavailable");
        return NULL;
    }
    PGresult *r = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);
    if (r && PQresultStatus(r) == want) return r;
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : PQerrorMessage(pg);
    int len = (int)strcspn(msg, "\n");
    if (PQstatus(pg) != CONNECTION_OK) {
        hn_warn("event=pg_connection_lost worker=%d err='%.*s'", w->index, len, msg);
        hn_api_pg_broken(w);
        hn_api_error(rs, 503, "database unavailable");
    } else if (state && strcmp(state, "57014") == 0) {
        hn_warn("event=pg_timeout worker=%d err='%.*s'", w->index, len, msg);
        hn_api_error(rs, 503, "database timeout");
    } else if (state && strcmp(state, "55P03") == 0) {
        hn_warn("event=pg_lock_timeout worker=%d err='%.*s'", w->index, len, msg);
        hn_api_error(rs, 503, "database busy (a lock was not granted in time): nothing was done, try again");
    } else {
        hn_error("event=pg_error worker=%d sqlstate=%s status=%s err='%.*s'", w->index,
                 state ? state : "-", r ? PQresStatus(PQresultStatus(r)) : "none", len, msg);
        hn_api_error(rs, 500, "database error");
    }
    PQclear(r);
    return NULL;
}

/* ---- the outbox ---------------------------------------------------------------- */

/* Under omu: puts the job on the outbox once; the caller then notifies. */
static void post_locked(hn_api_pool *p, hn_api_job *job) {
    if (job->in_outbox) return;
    job->in_outbox = true;
    job->onext = NULL;
    *p->otail = job;
    p->otail = &job->onext;
}

static void notify(hn_api_pool *p) {
    event_active(p->notify, EV_READ, 0);
}

static void chunk_free(hn_api_chunk *c) {
    hn_buf_free(&c->data);
    free(c);
}

/* evbuffer cleanup of a chunk given by reference: runs when evhttp wrote it
 * out or dropped the connection. Touches only the chunk. */
static void chunk_cleanup(const void *data, size_t len, void *arg) {
    (void)data; (void)len;
    chunk_free(arg);
}

/* Under omu: n chunks are gone from the worker's account. */
static void release_locked(hn_api_job *job, int n) {
    job->inflight -= n;
    if (job->inflight < 0) job->inflight = 0;
    pthread_cond_broadcast(&job->cv);
}

static void mark_gone(hn_api_pool *p, hn_api_job *job) {
    pthread_mutex_lock(&p->omu);
    job->gone = true;
    release_locked(job, job->wire);
    job->wire = 0;
    pthread_mutex_unlock(&p->omu);
}

/* The connection's output buffer is empty: every chunk given to evhttp so
 * far is on the wire. */
static void on_written(struct evhttp_connection *evcon, void *arg) {
    hn_api_job *job = arg;
    hn_api_pool *p = job->pool;
    (void)evcon;
    pthread_mutex_lock(&p->omu);
    release_locked(job, job->wire);
    job->wire = 0;
    bool cut = job->cut_pending;
    if (cut) post_locked(p, job);     /* cut it from on_notify, not from here */
    pthread_mutex_unlock(&p->omu);
    if (cut) notify(p);
}

/* The connection of a streamed answer is going away. */
static void on_close(struct evhttp_connection *evcon, void *arg) {
    hn_api_job *job = arg;
    (void)evcon;
    /* Detached (the client left): the request is ours to free (end_stream).
     * Still attached: the connection frees it along with itself. */
    if (job->req && evhttp_request_get_connection(job->req) != NULL) job->req = NULL;
    hn_api_pool *p = job->pool;
    pthread_mutex_lock(&p->omu);
    if (!job->gone) atomic_fetch_add(&p->cut, 1);
    job->gone = true;
    release_locked(job, job->wire);
    job->wire = 0;
    bool cut = job->cut_pending;
    if (cut) post_locked(p, job);     /* waiting to be cut: finish it now */
    pthread_mutex_unlock(&p->omu);
    if (cut) notify(p);
}

static bool connected(const hn_api_job *job) {
    return job->req && evhttp_request_get_connection(job->req) != NULL;
}

static void send_begin(hn_api_pool *p, hn_api_job *job) {
    if (!connected(job)) {
        mark_gone(p, job);
        return;
    }
    struct evhttp_request *req = job->req;
    hn_reply_headers(req, job->stream_ctype);
    if (job->stream_disposition)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Disposition",
                          job->stream_disposition);
    evhttp_send_reply_start(req, job->stream_status, NULL);
    hn_httpguard_closecb(evhttp_request_get_connection(req), on_close, job);
}

static void send_chunks(hn_api_pool *p, hn_api_job *job, hn_api_chunk *c) {
    while (c) {
        hn_api_chunk *next = c->next;
        bool gone;
        pthread_mutex_lock(&p->omu);
        gone = job->gone;
        pthread_mutex_unlock(&p->omu);
        bool sent = false;
        if (!gone && connected(job)) {
            struct evbuffer *b = evbuffer_new();
            size_t len = c->data.len;
            evbuffer_add_reference(b, c->data.p, len, chunk_cleanup, c);
            evhttp_send_reply_chunk_with_cb(job->req, b, on_written, job);
            sent = evbuffer_get_length(b) == 0;
            evbuffer_free(b);                  /* not sent: frees the chunk */
            if (sent) {
                atomic_fetch_add(&p->chunks, 1);
                atomic_fetch_add(&p->bytes, len);
            }
        } else {
            chunk_free(c);
        }
        pthread_mutex_lock(&p->omu);
        if (sent) job->wire++;
        else release_locked(job, 1);
        pthread_mutex_unlock(&p->omu);
        c = next;
    }
}

/* The worker returned from a streaming handler: end the chunked answer, or
 * cut the connection so that the client sees a truncated body. */
static void end_stream(hn_api_pool *p, hn_api_job *job) {
    struct evhttp_request *req = job->req;
    job->req = NULL;
    if (req == NULL) return;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon == NULL) {
        evhttp_request_free(req);         /* detached: ours */
        return;
    }
    hn_httpguard_closecb(evcon, NULL, NULL);
    if (job->gone || job->stream_failed) {
        atomic_fetch_add(&p->cut, 1);
        evhttp_connection_free(evcon);    /* frees req with it */
        return;
    }
    hn_reply_track(p->writing, req);
    evhttp_send_reply_end(req);
}

static void deliver(hn_api_pool *p, hn_api_job *job) {
    pthread_mutex_lock(&p->omu);
    if (job->in_outbox) {
        /* posted again since on_notify took its snapshot: the pass that
         * this new post triggers will deliver it */
        pthread_mutex_unlock(&p->omu);
        return;
    }
    bool begin = job->stream == HN_STREAM_BEGUN;
    if (begin) job->stream = HN_STREAM_SENT;
    hn_api_chunk *chunks = job->chunks;
    job->chunks = NULL;
    job->chunks_tail = &job->chunks;
    bool done = job->worker_done;
    pthread_mutex_unlock(&p->omu);
    if (begin) send_begin(p, job);
    if (chunks) send_chunks(p, job, chunks);
    if (!done) return;
    if (job->stream != HN_STREAM_NONE) {
        /* A stream the handler failed: what it wrote goes out first, then
         * the connection is cut (on_written posts the job again). */
        pthread_mutex_lock(&p->omu);
        bool flush = job->stream_failed && job->wire > 0 && !p->stopping_main;
        job->cut_pending = flush;
        pthread_mutex_unlock(&p->omu);
        if (flush && connected(job)) return;
        end_stream(p, job);
    }
    p->done(p->done_arg, job);
}

static void on_notify(evutil_socket_t fd, short what, void *arg) {
    hn_api_pool *p = arg;
    (void)fd; (void)what;
    /* A snapshot into an array: a job may be posted again (and its onext
     * rewritten) while an earlier one is delivered. */
    size_t n = 0;
    pthread_mutex_lock(&p->omu);
    for (hn_api_job *j = p->ohead; j; j = j->onext) {
        if (n == p->batch_cap) {
            p->batch_cap = p->batch_cap ? p->batch_cap * 2 : 64;
            p->batch = hn_xreallocarray(p->batch, p->batch_cap, sizeof(*p->batch));
        }
        p->batch[n++] = j;
        j->in_outbox = false;
    }
    p->ohead = NULL;
    p->otail = &p->ohead;
    pthread_mutex_unlock(&p->omu);
    for (size_t i = 0; i < n; i++) deliver(p, p->batch[i]);
}

/* ---- streaming, worker side ----------------------------------------------------- */

static char *disposition(const char *filename) {
    char name[129];
    size_t n = 0;
    while (*filename == '.') filename++;        /* no hidden or relative names */
    for (const char *c = filename; *c && n < sizeof(name) - 1; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '.' || *c == '-' || *c == '_';
        name[n++] = ok ? *c : '_';
    }
    name[n] = '\0';
    if (n == 0) snprintf(name, sizeof(name), "download");
    hn_buf b;
    hn_buf_init(&b, 64 + n);
    hn_buf_printf(&b, "attachment; filename=\"%s\"", name);
    hn_buf_append(&b, "", 1);
    return b.p;
}

int hn_api_stream_begin(hn_api_resp *rs, int status, const char *content_type,
                        const char *filename) {
    hn_api_job *job = rs->job;
    if (job == NULL || rs->streaming) return HN_ERR;
    hn_api_pool *p = job->pool;
    char *ctype = hn_xstrdup(content_type ? content_type : "application/octet-stream");
    char *disp = filename ? disposition(filename) : NULL;
    pthread_mutex_lock(&p->omu);
    if (job->answered || job->gone) {
        pthread_mutex_unlock(&p->omu);
        free(ctype);
        free(disp);
        return HN_ERR;
    }
    job->stream = HN_STREAM_BEGUN;
    job->stream_status = status ? status : 200;
    job->stream_ctype = ctype;
    job->stream_disposition = disp;
    rs->streaming = true;
    rs->status = job->stream_status;
    post_locked(p, job);
    pthread_mutex_unlock(&p->omu);
    notify(p);
    return HN_OK;
}

/* Hands job->cur over as one chunk; waits while too many are in flight. */
static int hand_over(hn_api_job *job) {
    hn_api_pool *p = job->pool;
    pthread_mutex_lock(&p->omu);
    while (job->inflight >= HN_API_MAX_INFLIGHT && !job->gone)
        pthread_cond_wait(&job->cv, &p->omu);
    if (job->gone) {
        pthread_mutex_unlock(&p->omu);
        hn_buf_reset(&job->cur);
        return HN_ERR;
    }
    hn_api_chunk *c = hn_xcalloc(1, sizeof(*c));
    c->data = job->cur;
    memset(&job->cur, 0, sizeof(job->cur));
    *job->chunks_tail = c;
    job->chunks_tail = &c->next;
    job->inflight++;
    post_locked(p, job);
    pthread_mutex_unlock(&p->omu);
    notify(p);
    return HN_OK;
}

int hn_api_stream_write(hn_api_resp *rs, const void *data, size_t n) {
    hn_api_job *job = rs->job;
    if (job == NULL || !rs->streaming) return HN_ERR;
    pthread_mutex_lock(&job->pool->omu);
    bool stop = job->gone || job->stream_failed;
    pthread_mutex_unlock(&job->pool->omu);
    if (stop) return HN_ERR;
    if (job->cur.cap == 0) hn_buf_init(&job->cur, HN_API_CHUNK + 4096);
    hn_buf_append(&job->cur, data, n);
    job->stream_bytes += n;
    if (job->cur.len >= HN_API_CHUNK) return hand_over(job);
    return HN_OK;
}

void hn_api_error(hn_api_resp *rs, int status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (rs->streaming) {
        /* Headers are out: all we can do is cut the stream short. */
        hn_api_job *job = rs->job;
        hn_warn("event=stream_failed status=%d err='%s'", status, msg);
        pthread_mutex_lock(&job->pool->omu);
        job->stream_failed = true;       /* what was written still goes out */
        pthread_mutex_unlock(&job->pool->omu);
        return;
    }
    rs->status = status;
    rs->content_type = NULL;
    hn_buf_reset(&rs->body);
    hn_buf_append(&rs->body, "{\"error\":", 9);
    hn_json_str(&rs->body, msg, strlen(msg));
    hn_buf_append(&rs->body, "}", 1);
}

/* ---- workers ---------------------------------------------------------------------- */

/* A handler that left a transaction open must not leave it to the next job. */
static void tidy_pg(hn_api_worker *w) {
    if (w->pg == NULL) return;
    PGTransactionStatusType ts = PQtransactionStatus(w->pg);
    if (ts == PQTRANS_IDLE) return;
    if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
        hn_warn("event=pg_transaction_left_open worker=%d", w->index);
        PGresult *r = PQexec(w->pg, "ROLLBACK");
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (ok) return;
    }
    hn_api_pg_broken(w);
}

static void run_job(slot *s, hn_api_job *job) {
    hn_api_pool *p = s->pool;
    if (hn_mono_ms() - job->start_ms > (uint64_t)p->cfg->api_timeout_ms) {
        atomic_fetch_add(&p->expired, 1);
        pthread_mutex_lock(&p->omu);
        job->expired = true;
        job->worker_done = true;
        post_locked(p, job);
        pthread_mutex_unlock(&p->omu);
        notify(p);
        return;
    }
    atomic_fetch_add(&p->busy, 1);
    pthread_mutex_lock(&s->mu);
    s->job = job;
    pthread_mutex_unlock(&s->mu);

    job->handler(&s->w, &job->rq, &job->rs);
    if (job->rs.streaming && job->cur.len > 0) hand_over(job);
    tidy_pg(&s->w);

    pthread_mutex_lock(&s->mu);
    s->job = NULL;
    pthread_mutex_unlock(&s->mu);
    atomic_fetch_sub(&p->busy, 1);
    pthread_mutex_lock(&p->omu);
    job->worker_done = true;            /* the last touch of the job */
    post_locked(p, job);
    pthread_mutex_unlock(&p->omu);
    notify(p);
}

static void *worker_main(void *arg) {
    slot *s = arg;
    hn_api_pool *p = s->pool;
    for (;;) {
        pthread_mutex_lock(&p->qmu);
        while (p->qhead == NULL && !p->stopping) pthread_cond_wait(&p->qcv, &p->qmu);
        if (p->stopping) {
            pthread_mutex_unlock(&p->qmu);
            break;
        }
        hn_api_job *job = p->qhead;
        p->qhead = job->qnext;
        if (p->qhead) p->qhead->qprev = NULL;
        else p->qtail = NULL;
        job->in_queue = false;
        p->qlen--;
        pthread_mutex_unlock(&p->qmu);
        run_job(s, job);
    }
    hn_api_pg_broken(&s->w);
    hn_api_redis_broken(&s->w);
    return NULL;
}

/* ---- the pool ------------------------------------------------------------------------ */

hn_api_pool *hn_pool_create(const hn_config *cfg, const hn_redis_cfg *rcfg, uint64_t *writing,
                            struct event_base *base, hn_pool_done_fn done, void *arg) {
    hn_api_pool *p = hn_xcalloc(1, sizeof(*p));
    p->cfg = cfg;
    p->rcfg = *rcfg;
    p->base = base;
    p->done = done;
    p->done_arg = arg;
    p->writing = writing;
    p->qcap = (size_t)cfg->api_max_queue;
    p->otail = &p->ohead;
    pthread_mutex_init(&p->qmu, NULL);
    pthread_cond_init(&p->qcv, NULL);
    pthread_mutex_init(&p->omu, NULL);
    p->notify = event_new(base, -1, 0, on_notify, p);
    p->nslots = (int)cfg->api_threads;
    p->slots = hn_xcalloc((size_t)p->nslots, sizeof(slot));
    for (int i = 0; i < p->nslots; i++) {
        slot *s = &p->slots[i];
        s->w.index = i;
        s->w.cfg = cfg;
        s->pool = p;
        s->redis_fd = -1;
        pthread_mutex_init(&s->mu, NULL);
    }
    return p;
}

int hn_pool_start(hn_api_pool *p, char *err, size_t cap) {
    /* Signals are the main thread's business (libevent's evsignal). */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int rc = HN_OK;
    for (int i = 0; i < p->nslots; i++) {
        int e = pthread_create(&p->slots[i].thread, NULL, worker_main, &p->slots[i]);
        if (e != 0) {
            snprintf(err, cap, "cannot start worker thread %d: %s", i, strerror(e));
            rc = HN_ERR;
            break;
        }
        p->slots[i].started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}

int hn_pool_submit(hn_api_pool *p, hn_api_job *job) {
    job->pool = p;
    job->rs.job = job;
    pthread_mutex_lock(&p->qmu);
    if (p->stopping || p->qlen >= p->qcap) {
        pthread_mutex_unlock(&p->qmu);
        return HN_AGAIN;
    }
    job->qnext = NULL;
    job->qprev = p->qtail;
    if (p->qtail) p->qtail->qnext = job;
    else p->qhead = job;
    p->qtail = job;
    job->in_queue = true;
    p->qlen++;
    pthread_cond_signal(&p->qcv);
    pthread_mutex_unlock(&p->qmu);
    return HN_OK;
}

bool hn_pool_cancel(hn_api_pool *p, hn_api_job *job) {
    pthread_mutex_lock(&p->qmu);
    bool was = job->in_queue;
    if (was) {
        if (job->qprev) job->qprev->qnext = job->qnext;
        else p->qhead = job->qnext;
        if (job->qnext) job->qnext->qprev = job->qprev;
        else p->qtail = job->qprev;
        job->in_queue = false;
        p->qlen--;
    }
    pthread_mutex_unlock(&p->qmu);
    return was;
}

bool hn_pool_give_up(hn_api_pool *p, hn_api_job *job) {
    pthread_mutex_lock(&p->omu);
    bool ok = job->stream == HN_STREAM_NONE && !job->worker_done && !job->answered;
    if (ok) job->answered = true;
    pthread_mutex_unlock(&p->omu);
    return ok;
}

/* Every running job: streams end, blocking calls return soon. */
static void interrupt_all(hn_api_pool *p, bool cancel_calls) {
    for (int i = 0; i < p->nslots; i++) {
        slot *s = &p->slots[i];
        pthread_mutex_lock(&s->mu);
        if (s->job) {
            pthread_mutex_lock(&p->omu);
            s->job->gone = true;
            pthread_cond_broadcast(&s->job->cv);
            pthread_mutex_unlock(&p->omu);
            if (cancel_calls) {
                char e[256];
                if (s->cancel) PQcancel(s->cancel, e, sizeof(e));
                if (s->redis_fd >= 0) shutdown(s->redis_fd, SHUT_RDWR);
            }
        }
        pthread_mutex_unlock(&s->mu);
    }
}

void hn_pool_interrupt(hn_api_pool *p) {
    interrupt_all(p, true);
}

void hn_pool_stop(hn_api_pool *p) {
    pthread_mutex_lock(&p->omu);
    p->stopping_main = true;
    pthread_mutex_unlock(&p->omu);
    pthread_mutex_lock(&p->qmu);
    p->stopping = true;
    hn_api_job *left = p->qhead;
    p->qhead = p->qtail = NULL;
    p->qlen = 0;
    for (hn_api_job *j = left; j; j = j->qnext) j->in_queue = false;
    pthread_cond_broadcast(&p->qcv);
    pthread_mutex_unlock(&p->qmu);
    /* The event loop has ended: nothing will write chunks out any more. */
    interrupt_all(p, false);
    for (int i = 0; i < p->nslots; i++)
        if (p->slots[i].started) {
            pthread_join(p->slots[i].thread, NULL);
            p->slots[i].started = false;
        }
    while (left) {
        hn_api_job *next = left->qnext;
        left->expired = true;
        left->worker_done = true;
        p->done(p->done_arg, left);
        left = next;
    }
    on_notify(-1, 0, p);
}

void hn_pool_abandon(hn_api_pool *p, hn_api_job *job) {
    pthread_mutex_lock(&p->omu);
    job->gone = true;
    job->cut_pending = false;
    pthread_mutex_unlock(&p->omu);
    if (job->stream != HN_STREAM_NONE) end_stream(p, job);
    p->done(p->done_arg, job);
}

void hn_pool_destroy(hn_api_pool *p) {
    if (p == NULL) return;
    if (!p->stopping) hn_pool_stop(p);
    for (int i = 0; i < p->nslots; i++) pthread_mutex_destroy(&p->slots[i].mu);
    free(p->slots);
    free(p->batch);
    if (p->notify) event_free(p->notify);
    pthread_mutex_destroy(&p->qmu);
    pthread_cond_destroy(&p->qcv);
    pthread_mutex_destroy(&p->omu);
    free(p);
}

void hn_pool_stats_get(hn_api_pool *p, hn_pool_stats *st) {
    memset(st, 0, sizeof(*st));
    pthread_mutex_lock(&p->qmu);
    st->queued = p->qlen;
    pthread_mutex_unlock(&p->qmu);
    st->capacity = p->qcap;
    st->workers = (uint64_t)p->nslots;
    st->busy = atomic_load(&p->busy);
    for (int i = 0; i < p->nslots; i++) {
        slot *s = &p->slots[i];
        st->pg_connects += atomic_load(&s->pg_connects);
        st->pg_connect_failures += atomic_load(&s->pg_failures);
        st->redis_connects += atomic_load(&s->redis_connects);
        st->redis_connect_failures += atomic_load(&s->redis_failures);
    }
    st->expired = atomic_load(&p->expired);
    st->stream_chunks = atomic_load(&p->chunks);
    st->stream_bytes = atomic_load(&p->bytes);
    st->streams_cut = atomic_load(&p->cut);
}

/* ---- jobs ---------------------------------------------------------------------------- */

hn_api_job *hn_job_new(void) {
    hn_api_job *job = hn_xcalloc(1, sizeof(*job));
    job->rs.status = 200;
    job->rs.job = job;
    hn_buf_init(&job->rs.body, 512);
    job->chunks_tail = &job->chunks;
    pthread_cond_init(&job->cv, NULL);
    return job;
}

void hn_job_free(hn_api_job *job) {
    if (job == NULL) return;
    for (int i = 0; i < job->rq.nparams; i++) free(job->rq.params[i]);
    free(job->rq.body);
    for (int i = 0; i < job->rq.nquery; i++) {
        free(job->rq.qkey[i]);
        free(job->rq.qval[i]);
    }
    free(job->path);
    free(job->query);
    hn_buf_free(&job->rs.body);
    hn_buf_free(&job->cur);
    while (job->chunks) {
        hn_api_chunk *next = job->chunks->next;
        chunk_free(job->chunks);
        job->chunks = next;
    }
    free(job->stream_ctype);
    free(job->stream_disposition);
    if (job->deadline) event_free(job->deadline);
    pthread_cond_destroy(&job->cv);
    free(job);
}
