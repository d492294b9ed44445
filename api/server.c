/*
 * server.c: herenow-api's main thread — evhttp on HERENOW_API_LISTEN,
 * routing, the token check, jobs for the workers and their answers,
 * /livez /readyz /metrics, signals and the orderly stop.
 *
 * A request under /api/ passes, in this order:
 *
 *   token (401, or 503 while the tokens were never loaded)
 *   → route (404 unknown path, 405 + Allow for a known path)
 *   → path parameters (400: bad %-escape, NUL, > 256 bytes, :widgetId not
 *     a canonical 1..2147483647)
 *   → query string (400: bad %-escape, a key twice, > HN_API_MAX_QUERY keys)
 *   → scope (403: a widget token on another widget)
 *   → job queue (503 at once when API_MAX_QUEUE jobs wait)
 *   → a worker runs the handler; pool.c brings the job back here
 *
 * Every request gets an answer by API_TIMEOUT_MS after it arrived: a job
 * still queued then is taken out and answered 503, a running one is
 * answered 503 and its worker's answer dropped (streams, whose headers are
 * out, are exempt: they run as long as the client reads).
 *
 * Answers that are written out are counted until evhttp reports them
 * complete (or their connection gone), so that a stop waits for them to
 * reach the client, not just for the handlers to return.
 */
#include "api/server_priv.h"
#include "api/annot.h"
#include "api/chat_invite.h"
#include "api/params.h"
#include "api/reply.h"
#include "api/request.h"
#include "common/json.h"
#include "common/log.h"
#include "common/pct.h"
#include "common/sdnotify.h"
#include "common/tls.h"
#include "common/timefmt.h"
#include "common/token.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <unistd.h>
#include <uthash.h>

#define LISTEN_BACKLOG 1024
#define MAX_HEADERS    (8 * 1024)
#define MAX_BODY       (64 * 1024)
#define STOP_GRACE_MS  1000       /* after the deadline: interrupted jobs get this long */

const uint64_t hn_srv_bucket_us[N_BUCKETS] = {1000, 2000, 5000, 10000, 25000, 50000,
                                              100000, 250000, 500000, 1000000, 5000000};

uint64_t hn_srv_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- pure helpers ---------------------------------------------------------------- */

static hn_api_method api_method(enum evhttp_cmd_type c) {
    switch (c) {
    case EVHTTP_REQ_GET: return HN_GET;
    case EVHTTP_REQ_POST: return HN_POST;
    case EVHTTP_REQ_DELETE: return HN_DELETE;
    case EVHTTP_REQ_PUT: return HN_PUT;
    default: return 0;
    }
}

static const char *method_name(enum evhttp_cmd_type c) {
    switch (c) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_HEAD: return "HEAD";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    case EVHTTP_REQ_OPTIONS: return "OPTIONS";
    case EVHTTP_REQ_PATCH: return "PATCH";
    default: return "OTHER";
    }
}

/* ---- answers --------------------------------------------------------------------- */

/* Metrics and the access log line of one answered request. */
void hn_srv_record(hn_api_server *s, int route, int status, uint64_t start_us, const char *method,
                   const char *path, const char *query, const char *token, const char *note) {
    uint64_t us = hn_srv_mono_us() - start_us;
    route_stats *st = &s->stats[route];
    int cls = status / 100 - 1;
    st->by_class[cls < 0 ? 0 : cls > 4 ? 4 : cls]++;
    st->count++;
    st->sum_us += us;
    size_t b = 0;
    while (b < N_BUCKETS && us > hn_srv_bucket_us[b]) b++;
    st->hist[b]++;
    int level = route >= HN_RT_LIVEZ && route <= HN_RT_METRICS ? HN_LOG_DEBUG : HN_LOG_INFO;
    if (level < hn_log_min) return;
    char p[512], q[512];
    hn_api_log_safe(p, sizeof(p), path);
    hn_api_log_safe(q, sizeof(q), query);
    hn_log(level, "event=request method=%s path='%s' query='%s' route=%s status=%d ms=%.1f token=%s%s",
           method, p, q, hn_api_route_name(route), status, (double)us / 1000.0,
           token && *token ? token : "-", note ? note : "");
}

void hn_srv_fail(hn_srv_rctx *c, int status, const char *msg) {
    hn_srv_record(c->s, c->route, status, c->t0, c->method, c->path, c->query, c->token, NULL);
    hn_reply_error(&c->s->writing, c->s->stopping, c->req, status, msg);
}

void hn_srv_failf(hn_srv_rctx *c, int status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    hn_srv_fail(c, status, msg);
}

/* ---- jobs ---------------------------------------------------------------------------- */

static void link_job(hn_api_server *s, hn_api_job *job) {
    job->sprev = NULL;
    job->snext = s->jobs;
    if (s->jobs) s->jobs->sprev = job;
    s->jobs = job;
    s->outstanding++;
}

static void unlink_job(hn_api_server *s, hn_api_job *job) {
    if (job->sprev) job->sprev->snext = job->snext;
    else s->jobs = job->snext;
    if (job->snext) job->snext->sprev = job->sprev;
    s->outstanding--;
}

static void record_job(hn_api_server *s, const hn_api_job *job, int status, const char *note) {
    hn_srv_record(s, job->route, status, job->start_us, hn_api_method_name(job->rq.method), job->path,
           job->query, job->rq.who.token_id, note);
}

/* The timer every job gets: API_TIMEOUT_MS after the request arrived. */
static void on_deadline(evutil_socket_t fd, short what, void *arg) {
    hn_api_job *job = arg;
    hn_api_server *s = job->owner;
    (void)fd; (void)what;
    if (hn_pool_cancel(s->pool, job)) {
        /* never reached a worker: nobody else holds it. (libevent allows
         * freeing a timer from its own callback in the loop's thread.) */
        s->rejected[REJ_QUEUE_TIMEOUT]++;
        record_job(s, job, 503, " timeout=queued");
        hn_reply_error(&s->writing, s->stopping, job->req, 503, "timed out waiting for a worker");
        job->req = NULL;
        unlink_job(s, job);
        hn_job_free(job);
        return;
    }
    if (!hn_pool_give_up(s->pool, job)) return;     /* streaming, or its answer is ready */
    s->rejected[REJ_DEADLINE]++;
    record_job(s, job, 503, " timeout=running");
    hn_reply_error(&s->writing, s->stopping, job->req, 503, "request timed out");
    job->req = NULL;                                 /* the worker's answer is dropped */
}

static void on_job_done(void *arg, hn_api_job *job) {
    hn_api_server *s = arg;
    unlink_job(s, job);
    if (job->stream != HN_STREAM_NONE) {
        record_job(s, job, job->stream_status, job->gone || job->stream_failed ? " cut=1" : NULL);
    } else if (job->req && job->expired) {
        s->rejected[REJ_QUEUE_TIMEOUT]++;
        record_job(s, job, 503, " timeout=queued");
        hn_reply_error(&s->writing, s->stopping, job->req, 503, "timed out waiting for a worker");
    } else if (job->req) {
        int status = job->rs.status ? job->rs.status : 200;
        record_job(s, job, status, NULL);
        hn_reply_send(&s->writing, s->stopping, job->req, status, job->rs.content_type, job->rs.body.p, job->rs.body.len);
    }
    job->req = NULL;
    hn_job_free(job);
}

static void unauthorized(hn_srv_rctx *c, hn_auth_result r) {
    c->s->auth_failures[r]++;
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
    if (r == HN_AUTH_UNAVAILABLE) {
        evhttp_add_header(h, "Retry-After", "1");
        hn_srv_fail(c, 503, "API tokens not loaded yet, try again");
        return;
    }
    evhttp_add_header(h, "WWW-Authenticate", r == HN_AUTH_MISSING
                                                 ? "Bearer realm=\"herenow\""
                                                 : "Bearer realm=\"herenow\", error=\"invalid_token\"");
    hn_srv_fail(c, 401, r == HN_AUTH_MISSING   ? "missing bearer token"
                 : r == HN_AUTH_SCHEME  ? "the Authorization header must be 'Bearer <token>'"
                 : r == HN_AUTH_MALFORMED ? "malformed token"
                                          : "invalid or revoked token");
}

/* ---- the dashboard's files ---------------------------------------------------------- */

/* The dashboard's policy: its own scripts, styles and API only; no inline
 * code, no frames, no plugins; nothing of it leaves in a Referer. */
static const char dashboard_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

static void serve_static(hn_srv_rctx *c, enum evhttp_cmd_type cmd) {
    hn_api_server *s = c->s;
    c->route = HN_RT_DASHBOARD;
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(c->req), "Allow", "GET, HEAD");
        hn_srv_fail(c, 405, "method not allowed");
        return;
    }
    const hn_static_file *f = hn_static_find(s->www, c->path);
    if (f == NULL) {
        hn_srv_fail(c, 404, "not found");
        return;
    }
    struct evkeyvalq *in = evhttp_request_get_input_headers(c->req);
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
    bool gz = f->gz && hn_http_accepts_gzip(evhttp_find_header(in, "Accept-Encoding"));
    const char *etag = gz ? f->etag_gz : f->etag;
    evhttp_add_header(h, "Content-Type", f->ctype);
    evhttp_add_header(h, "Cache-Control", "no-cache");       /* revalidate: names are not versioned */
    evhttp_add_header(h, "ETag", etag);
    if (f->gz) evhttp_add_header(h, "Vary", "Accept-Encoding");
    evhttp_add_header(h, "Content-Security-Policy", dashboard_csp);
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
    evhttp_add_header(h, "Cross-Origin-Opener-Policy", "same-origin");
    evhttp_add_header(h, "Cross-Origin-Resource-Policy", "same-origin");
    evhttp_add_header(h, "Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()");
    if (s->stopping) evhttp_add_header(h, "Connection", "close");
    if (hn_http_etag_match(evhttp_find_header(in, "If-None-Match"), etag)) {
        hn_srv_record(s, c->route, 304, c->t0, c->method, c->path, c->query, NULL, NULL);
        hn_reply_track(&s->writing, c->req);
        evhttp_send_reply(c->req, 304, "Not Modified", NULL);
        return;
    }
    if (gz) evhttp_add_header(h, "Content-Encoding", "gzip");
    struct evbuffer *b = evbuffer_new();
    /* copied, not referenced: a SIGHUP may swap the files while this is queued */
    if (cmd != EVHTTP_REQ_HEAD) evbuffer_add(b, gz ? f->gz : f->data, gz ? f->gzlen : f->len);
    hn_srv_record(s, c->route, 200, c->t0, c->method, c->path, c->query, NULL, NULL);
    hn_reply_track(&s->writing, c->req);
    evhttp_send_reply(c->req, 200, "OK", b);
    evbuffer_free(b);
}

static void load_www(hn_api_server *s) {
    if (s->cfg->api_www[0] == '\0') return;
    char err[256];
    hn_static *st = hn_static_load(s->cfg->api_www, err, sizeof(err));
    if (st == NULL) {
        hn_warn("event=dashboard_not_loaded dir='%s' error='%s' (GET / answers 404)", s->cfg->api_www, err);
        return;
    }
    size_t files, bytes;
    hn_static_stats(st, &files, &bytes);
    hn_info("event=dashboard_loaded dir='%s' files=%zu bytes=%zu", s->cfg->api_www, files, bytes);
    hn_static_free(s->www);
    s->www = st;
}

/* ---- CORS (HERENOW_API_CORS_ORIGINS) ------------------------------------------------- */

/* A listed Origin gets Access-Control-Allow-Origin on every /api answer
 * (the browser then lets its page read it); any other gets nothing, so a
 * page elsewhere cannot read the API even with a token it got hold of. */
static bool cors(hn_api_server *s, struct evhttp_request *req) {
    const char *origin = evhttp_find_header(evhttp_request_get_input_headers(req), "Origin");
    if (origin == NULL || !hn_origin_allowed(s->cfg->api_cors_origins, origin)) return false;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Access-Control-Allow-Origin", origin);
    evhttp_add_header(h, "Vary", "Origin");
    evhttp_add_header(h, "Access-Control-Expose-Headers", "Content-Disposition, Retry-After");
    return true;
}

/* OPTIONS /api/…: a preflight (it carries no token). 204 with what the API
 * accepts for a listed origin; 403 for any other. */
static void preflight(hn_srv_rctx *c) {
    if (!cors(c->s, c->req)) {
        hn_srv_fail(c, 403, "origin not allowed (HERENOW_API_CORS_ORIGINS)");
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
    evhttp_add_header(h, "Access-Control-Allow-Methods", "GET, POST, PUT, DELETE");
    evhttp_add_header(h, "Access-Control-Allow-Headers", "Authorization, Last-Event-ID");
    evhttp_add_header(h, "Access-Control-Max-Age", "600");
    hn_srv_record(c->s, c->route, 204, c->t0, c->method, c->path, c->query, NULL, NULL);
    hn_reply_track(&c->s->writing, c->req);
    evhttp_send_reply(c->req, 204, "No Content", NULL);
}

static void on_request(struct evhttp_request *req, void *arg) {
    hn_api_server *s = arg;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    hn_srv_rctx c = {s, req, hn_srv_mono_us(), method_name(cmd), path && *path ? path : "/",
              u ? evhttp_uri_get_query(u) : NULL, NULL, HN_RT_OTHER};
    hn_httpguard_arrived(req);
    if (s->cfg->api_hsts_s > 0 &&
        hn_tls_is_tls(evhttp_connection_get_bufferevent(evhttp_request_get_connection(req)))) {
        char v[48];
        snprintf(v, sizeof(v), "max-age=%lld", (long long)s->cfg->api_hsts_s);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Strict-Transport-Security", v);
    }
    if (hn_http_ambiguous_length(req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        hn_srv_fail(&c, 400, "ambiguous body length (Content-Length twice, or with Transfer-Encoding)");
        return;
    }

    int h = hn_srv_health_route(c.path);
    if (h >= 0) {
        c.route = h;
        hn_srv_serve_health(&c, cmd);
        return;
    }
    if (strncmp(c.path, "/api/", 5) != 0 && strcmp(c.path, "/api") != 0) {
        serve_static(&c, cmd);
        return;
    }
    if (cmd == EVHTTP_REQ_OPTIONS) {
        preflight(&c);
        return;
    }
    cors(s, req);
    if (s->stopping) {
        s->rejected[REJ_STOPPING]++;
        hn_srv_fail(&c, 503, "shutting down");
        return;
    }
    /* the live stream may come with a ticket instead of a header (an
     * EventSource cannot send one): checked once the widget is known */
    hn_principal who = {0};
    bool ticketed = cmd == EVHTTP_REQ_GET && hn_srv_query_has(c.query, "ticket");
    if (!ticketed) {
        hn_auth_result ar = hn_auth_check(
            s->auth, evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization"), &who);
        if (ar != HN_AUTH_OK) {
            unauthorized(&c, ar);
            return;
        }
        c.token = who.token_id;
    }

    hn_str raw[HN_API_MAX_PATH_PARAMS];
    int nraw = 0;
    char allow[64];
    int r = hn_api_route_find(c.path, api_method(cmd), raw, &nraw, allow, sizeof(allow));
    if (r == -2) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
        hn_srv_fail(&c, 405, "method not allowed");
        return;
    }
    if (r < 0) {
        hn_srv_fail(&c, 404, "no such route");
        return;
    }
    c.route = r;
    if (ticketed && r != HN_RT_STREAM) {
        s->tickets[TK_MALFORMED]++;
        hn_srv_fail(&c, 401, "a ticket opens the live stream only; other routes take Authorization: Bearer");
        return;
    }

    hn_api_job *job = hn_job_new();
    hn_api_req *rq = &job->rq;
    for (int i = 0; i < nraw; i++) {
        char *v = hn_xmalloc((size_t)raw[i].len + 1);
        long n = hn_pct_decode(raw[i].p, raw[i].len, v, (size_t)raw[i].len + 1, HN_PCT_NO_NUL);
        rq->params[rq->nparams++] = v;
        if (n < 0) {
            hn_srv_fail(&c, 400, "bad percent-encoding in the path");
            goto reject;
        }
        if (n > HN_API_MAX_PARAM) {
            hn_srv_failf(&c, 400, "path parameter longer than %d bytes", HN_API_MAX_PARAM);
            goto reject;
        }
    }
    int64_t wid = -1;
    if (hn_route_get(r)->widget && !hn_api_widget_id(rq->params[0], &wid)) {
        hn_srv_fail(&c, 400, "widgetId must be a whole number from 1 to 2147483647");
        goto reject;
    }
    char why[160];
    if (hn_api_parse_query(c.query, rq, why, sizeof(why)) != HN_OK) {
        hn_srv_fail(&c, 400, why);
        goto reject;
    }
    /* the stream's own checks first: a ticket is not used up by a refusal */
    uint32_t lei_epoch = 0;
    uint64_t lei_seq = 0;
    if (r == HN_RT_STREAM) {
        if (hn_srv_stream_params(&c, rq, &lei_epoch, &lei_seq) != HN_OK) goto reject;
        if (!hn_sse_has_room(s->sse)) {
            hn_srv_stream_full(&c);
            goto reject;
        }
    }
    if (ticketed) {
        if (hn_srv_check_ticket(&c, hn_api_query(rq, "ticket"), wid, &who) != HN_OK) goto reject;
        c.token = who.token_id;
    }
    rq->who = who;
    if (hn_route_get(r)->widget && !hn_api_may_see(rq, wid)) {
        hn_srv_failf(&c, 403, "this token may not see widget %lld", (long long)wid);
        goto reject;
    }
    if (r == HN_RT_STREAM || r == HN_RT_STREAM_TICKET) {      /* main thread: no worker, no job */
        if (r == HN_RT_STREAM) hn_srv_serve_stream(&c, rq, wid, lei_epoch, lei_seq);
        else hn_srv_serve_ticket(&c, rq, wid);
        goto reject;
    }
    rq->method = hn_route_get(r)->method;
    rq->cfg = s->cfg;
    rq->live = hn_sse_live(s->sse);
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t blen = in ? evbuffer_get_length(in) : 0;
    if ((rq->method == HN_POST || rq->method == HN_PUT) && blen > 0) {
        rq->body = hn_xmalloc(blen + 1);
        evbuffer_copyout(in, rq->body, blen);
        rq->body[blen] = '\0';
        rq->body_len = blen;
    }
    job->path = hn_xstrdup(c.path);
    job->query = c.query ? hn_xstrdup(c.query) : NULL;
    rq->path = job->path;
    job->handler = hn_route_get(r)->handler;
    job->route = r;
    job->start_us = c.t0;
    job->start_ms = hn_mono_ms();
    job->owner = s;
    job->req = req;
    job->deadline = evtimer_new(s->base, on_deadline, job);
    if (hn_pool_submit(s->pool, job) != HN_OK) {
        s->rejected[REJ_QUEUE_FULL]++;
        job->req = NULL;
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        hn_srv_fail(&c, 503, "too many requests waiting, try again");
        goto reject;
    }
    link_job(s, job);
    struct timeval tv = {s->cfg->api_timeout_ms / 1000, (s->cfg->api_timeout_ms % 1000) * 1000};
    evtimer_add(job->deadline, &tv);
    return;
reject:
    hn_job_free(job);
}

/* ---- signals and the stop --------------------------------------------------------------- */

/* systemd (common/sdnotify.h): READY=1 the first time /readyz would say 200. */
static void on_sd_check(evutil_socket_t fd, short what, void *arg) {
    hn_api_server *s = arg;
    char why[128];
    (void)fd;
    (void)what;
    if (hn_srv_ready(s, why, sizeof(why)) && hn_sd_ready(why) == HN_OK) event_del(s->sd_timer);
}

static void on_stop_check(evutil_socket_t fd, short what, void *arg) {
    hn_api_server *s = arg;
    (void)fd; (void)what;
    uint64_t now = hn_mono_ms();
    if (s->outstanding == 0 && s->writing == 0) {
        event_base_loopbreak(s->base);
        return;
    }
    if (now >= s->deadline && !s->interrupted) {
        s->interrupted = true;
        hn_warn("event=stop_deadline requests_in_flight=%llu answers_unsent=%llu",
                (unsigned long long)s->outstanding, (unsigned long long)s->writing);
        hn_pool_interrupt(s->pool);
    }
    if (now >= s->deadline + STOP_GRACE_MS) {
        event_base_loopbreak(s->base);
        return;
    }
    struct timeval tv = {0, 10 * 1000};
    evtimer_add(s->stop_timer, &tv);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    hn_api_server *s = arg;
    (void)what;
    if (sig == SIGHUP) {
        hn_log_reopen();
        hn_info("event=log_reopened");
        load_www(s);
        hn_tls_reload_logged(s->tls);
        return;
    }
    if (s->stopping) return;
    s->stopping = true;
    s->stop_at = hn_mono_ms();
    s->deadline = s->stop_at + (uint64_t)s->cfg->shutdown_timeout_ms;
    hn_info("event=stopping signal=%d requests_in_flight=%llu", (int)sig,
            (unsigned long long)s->outstanding);
    hn_sd_notify("STOPPING=1\nSTATUS=stopping");
    /* the drain finishes its batch while the HTTP side winds down */
    hn_drain_request_stop(s->drain);
    hn_sse_stop(s->sse);              /* every stream: bye (stopping), end */
    /* /readyz answers 503 from now on; no new connections; requests on open
     * connections get 503 with Connection: close. */
    if (s->bound) {
        hn_httpguard_unlisten(s->guard);
        evhttp_del_accept_socket(s->http, s->bound);
        s->bound = NULL;
    }
    if (s->bound_tls) {
        hn_httpguard_unlisten(s->guard_tls);
        evhttp_del_accept_socket(s->https, s->bound_tls);
        s->bound_tls = NULL;
    }
    on_stop_check(-1, 0, s);
}

/* ---- the rules engine's host (api/rules/engine.h) --------------------------------------- */

static void rules_alert(void *arg, int64_t widget_id, const char *json, size_t len) {
    hn_api_server *s = arg;
    hn_live_alert(hn_sse_live(s->sse), widget_id, json, len);
}

/* An auto invitation: the Start Chat path (chat_invite.h), started_by 'rule'. */
static int rules_invite(void *arg, PGconn *pg, hn_rcl *rc, const hn_rules_invite *in, char *err,
                        size_t cap) {
    hn_api_server *s = arg;
    hn_chat_invite_in ci = {in->widget_id, in->session_id, in->text, in->agent, NULL, "rule", in->visitor_id};
    hn_chat_invite_out o;
    int rc_ = hn_chat_invite(pg, rc, s->cfg, &ci, &o);
    if (o.res) PQclear(o.res);
    snprintf(err, cap, "%s", o.err);
    switch (rc_) {
    case HN_CINV_SENT: return HN_RINV_SENT;
    case HN_CINV_GONE: return HN_RINV_GONE;
    case HN_CINV_CHAT_OFF: return HN_RINV_CHAT_OFF;
    case HN_CINV_CHATTING: return HN_RINV_CHATTING;
    case HN_CINV_BANNED: return HN_RINV_BANNED;
    default: return HN_RINV_ERROR;
    }
}

static int rules_bans_check(void *arg, PGconn *pg, hn_rcl *rc, char *err, size_t cap) {
    (void)arg;
    return hn_bans_resync(pg, rc, err, cap);
}

/* ---- life cycle ------------------------------------------------------------------------ */

/* An evhttp serving every route on addr, with its guard; tls non-NULL:
 * HTTPS. *port: the port bound (addr may ask for 0). */
static struct evhttp *listen_on(hn_api_server *s, const hn_addr *addr, hn_tls *tls,
                                struct evhttp_bound_socket **bound, hn_httpguard **guard, int *port,
                                const char *what, char *err, size_t cap) {
    int fd = hn_tcp_listen(addr, false, LISTEN_BACKLOG, err, cap);
    if (fd < 0) return NULL;
    *port = hn_sock_port(fd);
    struct evhttp *http = evhttp_new(s->base);
    *bound = http ? evhttp_accept_socket_with_handle(http, fd) : NULL;
    if (*bound == NULL) {
        snprintf(err, cap, "%s: evhttp could not take the socket", what);
        close(fd);
        if (http) evhttp_free(http);
        return NULL;
    }
    evhttp_set_gencb(http, on_request, s);
    hn_httpguard_counters gc = {&s->http_connections, &s->http_incomplete,
                                &s->http_request_timeouts, &s->http_accept_errors};
    *guard = hn_httpguard_new(s->base, http, *bound, (int)s->cfg->api_request_timeout_ms,
                              tls ? "api-https" : "api", &gc, tls);
    evhttp_set_max_headers_size(http, MAX_HEADERS);
    evhttp_set_max_body_size(http, MAX_BODY);
    /* Reading a request and writing to a client that does not read: at
     * most this long without progress. */
    int64_t io_ms = s->cfg->api_timeout_ms < 5000 ? 5000 : s->cfg->api_timeout_ms;
    struct timeval io = {io_ms / 1000, (io_ms % 1000) * 1000};
    evhttp_set_timeout_tv(http, &io);
    /* Every method reaches on_request, so that a wrong one is a JSON 405. */
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    return http;
}

int hn_server_create(hn_api_server **out, const hn_config *cfg, char *err, size_t cap) {
    hn_api_server *s = hn_xcalloc(1, sizeof(*s));
    *out = s;
    s->cfg = cfg;
    s->start_ms = hn_now_ms();
    if (hn_addr_parse(cfg->api_listen, &s->addr, err, cap) != HN_OK) return HN_ERR;
    if (hn_redis_cfg_parse(cfg->redis_url, &s->rcfg, err, cap) != HN_OK) return HN_ERR;
    s->rcfg.retry_ms = (int)cfg->redis_retry_ms;

    hn_info("event=fd_limit nofile=%llu", (unsigned long long)hn_raise_nofile());
    evthread_use_pthreads();
    s->base = event_base_new();
    if (s->base == NULL) {
        snprintf(err, cap, "event_base_new failed");
        return HN_ERR;
    }
    if ((s->http = listen_on(s, &s->addr, NULL, &s->bound, &s->guard, &s->port, "HERENOW_API_LISTEN",
                             err, cap)) == NULL)
        return HN_ERR;
    if (cfg->api_https_listen[0]) {
        hn_addr a;
        if (hn_addr_parse(cfg->api_https_listen, &a, err, cap) != HN_OK) return HN_ERR;
        if (hn_addr_overlap(&a, &s->addr)) {
            snprintf(err, cap, "HERENOW_API_HTTPS_LISTEN: port %d is HERENOW_API_LISTEN's too; give HTTPS a port of its own",
                     hn_addr_port(&a));
            return HN_ERR;
        }
        s->tls = hn_tls_create(cfg->tls_cert, cfg->tls_key, (int)cfg->tls_ticket_rotate_s, err, cap);
        if (s->tls == NULL) return HN_ERR;
        if ((s->https = listen_on(s, &a, s->tls, &s->bound_tls, &s->guard_tls, &s->tls_port,
                                  "HERENOW_API_HTTPS_LISTEN", err, cap)) == NULL)
            return HN_ERR;
    } else if (cfg->tls_cert[0] || cfg->tls_key[0]) {
        snprintf(err, cap, "HERENOW_TLS_CERT and HERENOW_TLS_KEY are set but HERENOW_API_HTTPS_LISTEN is not");
        return HN_ERR;
    }

    s->auth = hn_auth_create(cfg);
    if (hn_auth_start(s->auth, err, cap) != HN_OK) return HN_ERR;
    s->pool = hn_pool_create(cfg, &s->rcfg, &s->writing, s->base, on_job_done, s);
    if (hn_pool_start(s->pool, err, cap) != HN_OK) return HN_ERR;

    if (cfg->api_ticket_secret[0]) {
        if (hn_ticket_key_parse(cfg->api_ticket_secret, s->ticket_key) != HN_OK) {
            snprintf(err, cap, "HERENOW_API_TICKET_SECRET: want 64 hex digits");
            return HN_ERR;
        }
    } else if (getrandom(s->ticket_key, sizeof(s->ticket_key), 0) != (ssize_t)sizeof(s->ticket_key)) {
        snprintf(err, cap, "getrandom for the ticket key: %s", strerror(errno));
        return HN_ERR;
    }
    hn_rng_seed(&s->rng);
    hn_sse_host host = hn_srv_sse_host(s);
    s->sse = hn_sse_create(cfg, &s->rcfg, s->base, &host);
    if (hn_sse_start(s->sse, err, cap) != HN_OK) return HN_ERR;
    hn_rules_host rh = {s, rules_alert, rules_invite, rules_bans_check};
    s->rules = hn_rules_start(cfg, &s->rcfg, &rh);
    load_www(s);

    s->sig_term = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->sig_int = evsignal_new(s->base, SIGINT, on_signal, s);
    s->sig_hup = evsignal_new(s->base, SIGHUP, on_signal, s);
    event_add(s->sig_term, NULL);
    event_add(s->sig_int, NULL);
    event_add(s->sig_hup, NULL);
    signal(SIGPIPE, SIG_IGN);
    s->stop_timer = evtimer_new(s->base, on_stop_check, s);
    if (hn_sd_enabled()) {
        s->sd_timer = event_new(s->base, -1, EV_PERSIST, on_sd_check, s);
        event_add(s->sd_timer, &(struct timeval){0, 100000});
    }
    return HN_OK;
}

void hn_server_set_drain(hn_api_server *s, hn_drain *d) {
    s->drain = d;
}

int hn_server_run(hn_api_server *s) {
    hn_info("event=started listen='%s' port=%d https='%s' workers=%lld max_queue=%lld timeout_ms=%lld drain=%s",
            s->cfg->api_listen, s->port, s->https ? s->cfg->api_https_listen : "off",
            (long long)s->cfg->api_threads,
            (long long)s->cfg->api_max_queue, (long long)s->cfg->api_timeout_ms,
            s->drain ? "on" : "off");
    event_base_dispatch(s->base);
    uint64_t left = s->outstanding;
    hn_pool_stop(s->pool);          /* workers joined; what they left is answered */
    while (s->jobs) hn_pool_abandon(s->pool, s->jobs);
    hn_info("event=http_stopped requests_cut=%llu ms=%llu", (unsigned long long)left,
            (unsigned long long)(hn_mono_ms() - s->stop_at));
    return 0;
}

int hn_server_remaining_ms(const hn_api_server *s) {
    if (!s->stopping) return (int)s->cfg->shutdown_timeout_ms;
    uint64_t now = hn_mono_ms();
    return now >= s->deadline ? 0 : (int)(s->deadline - now);
}

void hn_server_destroy(hn_api_server *s) {
    if (s == NULL) return;
    hn_pool_destroy(s->pool);       /* stops the workers if still running */
    hn_httpguard_free(s->guard);
    hn_httpguard_free(s->guard_tls);
    hn_rules_stop(s->rules);        /* before the hub its alerts go to */
    if (s->http) evhttp_free(s->http);   /* closes the open connections (streams too) */
    if (s->https) evhttp_free(s->https);
    hn_tls_free(s->tls);
    hn_sse_destroy(s->sse);
    hn_static_free(s->www);
    used_ticket *u, *tmp;
    HASH_ITER(hh, s->used, u, tmp) {
        HASH_DEL(s->used, u);
        free(u);
    }
    hn_auth_destroy(s->auth);
    if (s->sig_term) event_free(s->sig_term);
    if (s->sig_int) event_free(s->sig_int);
    if (s->sig_hup) event_free(s->sig_hup);
    if (s->stop_timer) event_free(s->stop_timer);
    if (s->sd_timer) event_free(s->sd_timer);
    if (s->base) event_base_free(s->base);
    free(s);
}
