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
#include "api/internal.h"
#include "api/params.h"
#include "api/live/sse.h"
#include "api/static.h"
#include "api/ticket.h"
#include "api/live/live.h"
#include "common/httpguard.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/net.h"
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

typedef struct api_route {
    const char    *name;          /* metric label */
    hn_api_method  method;
    const char    *pattern;       /* ":name" segments are parameters */
    hn_api_handler handler;
    bool           widget;        /* the first parameter is :widgetId */
} api_route;

#define WIDGETS "/api/visitor-tracking/widgets"
#define SESSIONS "/api/visitor-tracking/sessions"

static const api_route routes[] = {
    {"widgets",         HN_GET,    WIDGETS,                                hn_route_widgets,         false},
    {"active_visitors", HN_GET,    WIDGETS "/:widgetId/active-visitors",   hn_route_active_visitors, true},
    /* answered on the main thread (no handler): the live stream and its tickets */
    {"stream",          HN_GET,    WIDGETS "/:widgetId/active-visitors/stream", NULL,            true},
    {"stream_ticket",   HN_POST,   WIDGETS "/:widgetId/active-visitors/stream/ticket", NULL,     true},
    {"session",         HN_GET,    SESSIONS "/:sessionId",                 hn_route_session,         false},
    {"deactivate",      HN_POST,   SESSIONS "/:sessionId/deactivate",      hn_route_deactivate,      false},
    {"stats",           HN_GET,    WIDGETS "/:widgetId/visitor-stats",     hn_route_stats,           true},
    {"timeseries",      HN_GET,    WIDGETS "/:widgetId/timeseries",        hn_route_timeseries,      true},
    {"breakdown",       HN_GET,    WIDGETS "/:widgetId/breakdown",         hn_route_breakdown,       true},
    {"sessions",        HN_GET,    WIDGETS "/:widgetId/sessions",          hn_route_sessions,        true},
    {"export",          HN_GET,    WIDGETS "/:widgetId/export.csv",        hn_route_export,          true},
    {"erase_visitor",   HN_DELETE, WIDGETS "/:widgetId/visitors/:visitor", hn_route_erase_visitor,   true},
};

#define R_STREAM  2
#define R_TICKET  3
#define N_API     ((int)HN_ARRAY_LEN(routes))
#define R_LIVEZ   (N_API)
#define R_READYZ  (N_API + 1)
#define R_METRICS (N_API + 2)
#define R_STATIC  (N_API + 3)
#define R_OTHER   (N_API + 4)
#define N_ROUTES  (N_API + 5)

static const char *route_name(int r) {
    if (r < N_API) return routes[r].name;
    static const char *extra[] = {"livez", "readyz", "metrics", "dashboard", "other"};
    return extra[r - N_API];
}

/* A ticket already used, kept until it expires (single use). */
typedef struct used_ticket {
    UT_hash_handle hh;
    uint64_t       nonce;
    int64_t        expires_ms;
} used_ticket;

#define MAX_USED_TICKETS 100000

enum { TK_MINTED, TK_OK, TK_MALFORMED, TK_FORGED, TK_EXPIRED, TK_REUSED, TK_WRONG_WIDGET,
       TK_REVOKED, TK__COUNT };
static const char *tk_names[TK__COUNT] = {"minted", "accepted", "malformed", "forged", "expired",
                                          "reused", "wrong_widget", "revoked"};

/* Latency buckets (µs; exported in seconds). */
static const uint64_t bucket_us[] = {1000, 2000, 5000, 10000, 25000, 50000,
                                     100000, 250000, 500000, 1000000, 5000000};
#define N_BUCKETS HN_ARRAY_LEN(bucket_us)

typedef struct route_stats {
    uint64_t by_class[5];            /* 1xx..5xx */
    uint64_t hist[N_BUCKETS + 1];    /* not cumulative; last: above every bound */
    uint64_t sum_us, count;
} route_stats;

enum { REJ_QUEUE_FULL, REJ_QUEUE_TIMEOUT, REJ_DEADLINE, REJ_STOPPING, REJ__COUNT };
static const char *rej_names[REJ__COUNT] = {"queue_full", "queue_timeout", "deadline", "stopping"};

struct hn_api_server {
    const hn_config            *cfg;
    hn_addr                     addr;
    hn_redis_addr               raddr;
    int                         port;
    struct event_base          *base;
    struct evhttp              *http;
    struct evhttp_bound_socket *bound;
    struct event               *sig_term, *sig_int, *sig_hup, *stop_timer;
    hn_api_pool                *pool;
    hn_api_auth                *auth;
    hn_drain                   *drain;
    hn_sse                     *sse;
    hn_static                  *www;
    uint8_t                     ticket_key[HN_TICKET_KEY_LEN];
    used_ticket                *used;
    size_t                      nused;
    hn_rng                      rng;
    uint64_t                    tickets[TK__COUNT];
    bool                        stopping, interrupted;
    uint64_t                    stop_at, deadline;     /* hn_mono_ms() */
    uint64_t                    start_ms;
    uint64_t                    outstanding;           /* jobs not yet freed */
    hn_httpguard               *guard;                 /* slow requests, accept errors */
    uint64_t                    http_connections, http_incomplete, http_request_timeouts,
                                http_accept_errors;    /* the guard's counters (relaxed atomics) */
    hn_api_job                 *jobs;                  /* ... and their list */
    uint64_t                    writing;               /* answers not yet complete */
    route_stats                 stats[N_ROUTES];
    uint64_t                    auth_failures[HN_AUTH__COUNT];
    uint64_t                    rejected[REJ__COUNT];
};

static uint64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- pure helpers ---------------------------------------------------------------- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

long hn_api_pct_decode(const char *src, size_t n, char *dst, bool plus) {
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        if (c == '%') {
            if (n - i < 3) return -1;
            int hi = hexval(src[i + 1]), lo = hexval(src[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            c = (char)(hi << 4 | lo);
            if (c == '\0') return -1;
            i += 2;
        } else if (c == '+' && plus) {
            c = ' ';
        } else if (c == '\0') {
            return -1;
        }
        dst[j++] = c;
    }
    dst[j] = '\0';
    return (long)j;
}

bool hn_api_widget_id(const char *s, int64_t *out) {
    size_t n = strlen(s);
    if (n == 0 || n > 10 || s[0] == '0') return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v > 2147483647) return false;
    *out = v;
    return true;
}

const char *hn_api_query(const hn_api_req *rq, const char *key) {
    for (int i = 0; i < rq->nquery; i++)
        if (strcmp(rq->qkey[i], key) == 0) return rq->qval[i];
    return NULL;
}

/* Matches path against pattern; the raw (still encoded) parameter
 * segments go to params. */
static bool match(const char *pattern, const char *path, hn_str *params, int *nparams) {
    int n = 0;
    const char *p = pattern, *s = path;
    while (*p == '/' && *s == '/') {
        p++;
        s++;
        const char *pe = p + strcspn(p, "/"), *se = s + strcspn(s, "/");
        if (*p == ':') {
            if (se == s || n == HN_API_MAX_PATH_PARAMS) return false;
            params[n++] = (hn_str){s, (uint32_t)(se - s)};
        } else if (pe - p != se - s || memcmp(p, s, (size_t)(pe - p)) != 0) {
            return false;
        }
        p = pe;
        s = se;
    }
    if (*p || *s) return false;
    *nparams = n;
    return true;
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

static hn_api_method api_method(enum evhttp_cmd_type c) {
    switch (c) {
    case EVHTTP_REQ_GET: return HN_GET;
    case EVHTTP_REQ_POST: return HN_POST;
    case EVHTTP_REQ_DELETE: return HN_DELETE;
    default: return 0;
    }
}

static const char *api_method_name(hn_api_method m) {
    return m == HN_GET ? "GET" : m == HN_POST ? "POST" : m == HN_DELETE ? "DELETE" : "OTHER";
}

int hn_api_route_find(const char *path, hn_api_method m, hn_str *params, int *nparams,
                      char *allow, size_t cap) {
    size_t l = 0;
    allow[0] = '\0';
    for (int i = 0; i < N_API; i++) {
        int n;
        if (!match(routes[i].pattern, path, params, &n)) continue;
        if (routes[i].method == m) {
            *nparams = n;
            return i;
        }
        int w = snprintf(allow + l, cap - l, "%s%s", l ? ", " : "", api_method_name(routes[i].method));
        if (w > 0 && (size_t)w < cap - l) l += (size_t)w;
    }
    return l ? -2 : -1;
}

const char *hn_api_route_name(int route) {
    return route >= 0 && route < N_ROUTES ? route_name(route) : "?";
}

static bool is_base62(char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* For the log: bytes outside printable ASCII, quotes and backslashes as
 * %XX, anything shaped like a token's secret masked, cut at cap. */
void hn_api_log_safe(char *out, size_t cap, const char *s) {
    size_t j = 0;
    for (size_t i = 0; s && s[i] && j + 4 < cap;) {
        if (strncmp(s + i, HN_TICKET_PREFIX, 4) == 0) {       /* a stream ticket */
            if (j + 8 >= cap) break;
            memcpy(out + j, "hnt_***", 7);
            j += 7;
            i += 4;
            while (is_base62(s[i]) || s[i] == '-' || s[i] == '_') i++;
            continue;
        }
        if (strncmp(s + i, HN_TOKEN_PREFIX, 3) == 0) {
            size_t k = 3;
            while (k < 3 + HN_TOKEN_ID_LEN && is_base62(s[i + k])) k++;
            if (k == 3 + HN_TOKEN_ID_LEN && s[i + k] == '_') {
                int w = snprintf(out + j, cap - j, "%.*s***", (int)k + 1, s + i);
                if (w < 0 || (size_t)w >= cap - j) break;
                j += (size_t)w;
                i += k + 1;
                while (is_base62(s[i])) i++;
                continue;
            }
        }
        unsigned char c = (unsigned char)s[i++];
        if (c > 0x20 && c < 0x7f && c != '\'' && c != '\\') {
            out[j++] = (char)c;
        } else {
            snprintf(out + j, cap - j, "%%%02X", c);
            j += 3;
        }
    }
    out[j] = '\0';
}

/* ---- answers --------------------------------------------------------------------- */

void hn_server_headers(struct evhttp_request *req, const char *content_type) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", content_type ? content_type : "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
}

/* An answer on its way out: counted in s->writing until evhttp completes
 * it (on_complete) or its connection goes away (closecb), whichever comes
 * first; the other callback is then cleared. */
typedef struct tracker {
    hn_api_server *s;
} tracker;

static void track_close(struct evhttp_connection *evcon, void *arg) {
    tracker *t = arg;
    (void)evcon;
    t->s->writing--;
    free(t);
}

static void track_complete(struct evhttp_request *req, void *arg) {
    tracker *t = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon) evhttp_connection_set_closecb(evcon, NULL, NULL);
    t->s->writing--;
    free(t);
}

void hn_server_track(void *server, struct evhttp_request *req) {
    hn_api_server *s = server;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon == NULL) return;
    tracker *t = hn_xmalloc(sizeof(*t));
    t->s = s;
    s->writing++;
    evhttp_request_set_on_complete_cb(req, track_complete, t);
    evhttp_connection_set_closecb(evcon, track_close, t);
}

/* Sends a whole answer; req is evhttp's again afterwards. */
static void reply(hn_api_server *s, struct evhttp_request *req, int status, const char *ctype,
                  const char *body, size_t len) {
    if (evhttp_request_get_connection(req) == NULL) {
        evhttp_request_free(req);      /* detached: the client left; ours to free */
        return;
    }
    hn_server_headers(req, ctype);
    if (s->stopping)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    struct evbuffer *b = evbuffer_new();
    if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) evbuffer_add(b, body, len);
    hn_server_track(s, req);
    evhttp_send_reply(req, status, NULL, b);
    evbuffer_free(b);
}

static void reply_error(hn_api_server *s, struct evhttp_request *req, int status, const char *msg) {
    hn_buf b;
    hn_buf_init(&b, 32 + strlen(msg));
    hn_buf_append(&b, "{\"error\":", 9);
    hn_json_str(&b, msg, strlen(msg));
    hn_buf_append(&b, "}", 1);
    reply(s, req, status, NULL, b.p, b.len);
    hn_buf_free(&b);
}

/* Metrics and the access log line of one answered request. */
static void record(hn_api_server *s, int route, int status, uint64_t start_us, const char *method,
                   const char *path, const char *query, const char *token, const char *note) {
    uint64_t us = mono_us() - start_us;
    route_stats *st = &s->stats[route];
    int cls = status / 100 - 1;
    st->by_class[cls < 0 ? 0 : cls > 4 ? 4 : cls]++;
    st->count++;
    st->sum_us += us;
    size_t b = 0;
    while (b < N_BUCKETS && us > bucket_us[b]) b++;
    st->hist[b]++;
    int level = route >= R_LIVEZ && route <= R_METRICS ? HN_LOG_DEBUG : HN_LOG_INFO;
    if (level < hn_log_min) return;
    char p[512], q[512];
    hn_api_log_safe(p, sizeof(p), path);
    hn_api_log_safe(q, sizeof(q), query);
    hn_log(level, "event=request method=%s path='%s' query='%s' route=%s status=%d ms=%.1f token=%s%s",
           method, p, q, route_name(route), status, (double)us / 1000.0,
           token && *token ? token : "-", note ? note : "");
}

/* A request answered at once on the main thread. */
typedef struct rctx {
    hn_api_server         *s;
    struct evhttp_request *req;
    uint64_t               t0;
    const char            *method, *path, *query, *token;
    int                    route;
} rctx;

static void fail(rctx *c, int status, const char *msg) {
    record(c->s, c->route, status, c->t0, c->method, c->path, c->query, c->token, NULL);
    reply_error(c->s, c->req, status, msg);
}

static void failf(rctx *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void failf(rctx *c, int status, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fail(c, status, msg);
}

/* ---- /livez /readyz /metrics ---------------------------------------------------------- */

static bool ready(hn_api_server *s, char *why, size_t cap) {
    hn_auth_stats as;
    hn_auth_stats_get(s->auth, &as);
    if (s->stopping) snprintf(why, cap, "stopping");
    else if (!as.loaded) snprintf(why, cap, "api tokens not loaded yet (PostgreSQL unreachable?)");
    else if (s->drain && !hn_drain_healthy(s->drain)) snprintf(why, cap, "drain unhealthy");
    else {
        snprintf(why, cap, "ready");
        return true;
    }
    return false;
}

#define HELP(name, type, help) \
    evbuffer_add_printf(out, "# HELP " name " " help "\n# TYPE " name " " type "\n")

static void metrics(hn_api_server *s, struct evbuffer *out) {
    static const char *cls[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    HELP("herenow_api_requests_total", "counter", "Requests answered, by route and status class.");
    for (int r = 0; r < N_ROUTES; r++)
        for (int c = 0; c < 5; c++)
            if (s->stats[r].by_class[c] || c == 1)
                evbuffer_add_printf(out, "herenow_api_requests_total{route=\"%s\",code=\"%s\"} %llu\n",
                                    route_name(r), cls[c], (unsigned long long)s->stats[r].by_class[c]);
    HELP("herenow_api_request_duration_seconds", "histogram",
         "Time from request to answer (streams: to their end), by route.");
    for (int r = 0; r < N_ROUTES; r++) {
        const route_stats *st = &s->stats[r];
        uint64_t cum = 0;
        for (size_t b = 0; b <= N_BUCKETS; b++) {
            cum += st->hist[b];
            if (b == N_BUCKETS)
                evbuffer_add_printf(out, "herenow_api_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                                    route_name(r), (unsigned long long)cum);
            else
                evbuffer_add_printf(out, "herenow_api_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                                    route_name(r), (double)bucket_us[b] / 1e6, (unsigned long long)cum);
        }
        evbuffer_add_printf(out, "herenow_api_request_duration_seconds_sum{route=\"%s\"} %.6f\n"
                                 "herenow_api_request_duration_seconds_count{route=\"%s\"} %llu\n",
                            route_name(r), (double)st->sum_us / 1e6, route_name(r),
                            (unsigned long long)st->count);
    }
    HELP("herenow_api_rejected_total", "counter",
         "Requests answered 503 without a handler's answer, by reason.");
    for (int i = 0; i < REJ__COUNT; i++)
        evbuffer_add_printf(out, "herenow_api_rejected_total{reason=\"%s\"} %llu\n", rej_names[i],
                            (unsigned long long)s->rejected[i]);
    HELP("herenow_api_auth_failures_total", "counter", "Requests refused by the token check, by reason.");
    for (int i = 1; i < HN_AUTH__COUNT; i++)
        evbuffer_add_printf(out, "herenow_api_auth_failures_total{reason=\"%s\"} %llu\n",
                            hn_auth_reason((hn_auth_result)i), (unsigned long long)s->auth_failures[i]);

    hn_pool_stats ps;
    hn_pool_stats_get(s->pool, &ps);
    HELP("herenow_api_connects_total", "counter", "Worker connections made, by backend (the first ones too).");
    evbuffer_add_printf(out, "herenow_api_connects_total{backend=\"postgresql\"} %llu\n"
                             "herenow_api_connects_total{backend=\"redis\"} %llu\n",
                        (unsigned long long)ps.pg_connects, (unsigned long long)ps.redis_connects);
    HELP("herenow_api_connect_failures_total", "counter", "Worker connection attempts that failed, by backend.");
    evbuffer_add_printf(out, "herenow_api_connect_failures_total{backend=\"postgresql\"} %llu\n"
                             "herenow_api_connect_failures_total{backend=\"redis\"} %llu\n",
                        (unsigned long long)ps.pg_connect_failures,
                        (unsigned long long)ps.redis_connect_failures);

    hn_auth_stats as;
    hn_auth_stats_get(s->auth, &as);
    const struct { const char *name, *type, *help; double v; } scalars[] = {
        {"herenow_api_queue_depth", "gauge", "Jobs waiting for a worker.", (double)ps.queued},
        {"herenow_api_queue_capacity", "gauge", "Jobs that may wait (HERENOW_API_MAX_QUEUE).", (double)ps.capacity},
        {"herenow_api_workers", "gauge", "Worker threads.", (double)ps.workers},
        {"herenow_api_workers_busy", "gauge", "Workers running a handler now.", (double)ps.busy},
        {"herenow_api_requests_in_flight", "gauge", "Requests queued or running.", (double)s->outstanding},
        {"herenow_api_jobs_expired_total", "counter",
         "Jobs that waited longer than HERENOW_API_TIMEOUT_MS and never ran.", (double)ps.expired},
        {"herenow_api_stream_chunks_total", "counter", "Chunks of streamed answers written.", (double)ps.stream_chunks},
        {"herenow_api_stream_bytes_total", "counter", "Bytes of streamed answers written.", (double)ps.stream_bytes},
        {"herenow_api_streams_cut_total", "counter",
         "Streamed answers cut short (client gone, handler error, stop).", (double)ps.streams_cut},
        {"herenow_api_tokens", "gauge", "Active API tokens in the cache.", (double)as.tokens},
        {"herenow_api_token_cache_age_seconds", "gauge",
         "Seconds since the token cache was last loaded (-1: never).",
         as.loaded ? (double)as.age_ms / 1000.0 : -1.0},
        {"herenow_api_token_refreshes_total", "counter", "Successful loads of api_tokens.", (double)as.refreshes},
        {"herenow_api_token_refresh_errors_total", "counter", "Failed loads of api_tokens.", (double)as.refresh_errors},
        {"herenow_api_http_connections_total", "counter", "HTTP connections accepted.",
         (double)__atomic_load_n(&s->http_connections, __ATOMIC_RELAXED)},
        {"herenow_api_http_incomplete_requests_total", "counter",
         "Connections closed with a request begun and never complete (timeout, client gone).",
         (double)__atomic_load_n(&s->http_incomplete, __ATOMIC_RELAXED)},
        {"herenow_api_http_request_timeouts_total", "counter",
         "Connections closed because a request took longer than HERENOW_API_REQUEST_TIMEOUT_MS to arrive.",
         (double)__atomic_load_n(&s->http_request_timeouts, __ATOMIC_RELAXED)},
        {"herenow_api_http_accept_errors_total", "counter",
         "Times accepting a connection failed (out of file descriptors): the listener pauses 100 ms.",
         (double)__atomic_load_n(&s->http_accept_errors, __ATOMIC_RELAXED)},
        {"herenow_up_seconds", "gauge", "Seconds since start.", (double)((hn_now_ms() - s->start_ms) / 1000)},
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(scalars); i++)
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", scalars[i].name,
                            scalars[i].help, scalars[i].name, scalars[i].type, scalars[i].name,
                            scalars[i].v);
    HELP("herenow_api_stream_tickets_total", "counter",
         "Live-stream tickets made (minted) and checked, by result.");
    for (int i = 0; i < TK__COUNT; i++)
        evbuffer_add_printf(out, "herenow_api_stream_tickets_total{result=\"%s\"} %llu\n", tk_names[i],
                            (unsigned long long)s->tickets[i]);
    size_t files = 0, bytes = 0;
    hn_static_stats(s->www, &files, &bytes);
    HELP("herenow_api_dashboard_files", "gauge", "Files of the dashboard in memory (HERENOW_API_WWW).");
    evbuffer_add_printf(out, "herenow_api_dashboard_files %zu\n", files);
    if (s->sse) {
        hn_buf b;
        hn_buf_init(&b, 4096);
        hn_sse_metrics(s->sse, &b);
        evbuffer_add(out, b.p, b.len);
        hn_buf_free(&b);
    }
    if (s->drain) {
        hn_buf b;
        hn_buf_init(&b, 4096);
        hn_drain_metrics(s->drain, &b);
        evbuffer_add(out, b.p, b.len);
        hn_buf_free(&b);
    }
}

static int health_route(const char *path) {
    if (strcmp(path, "/livez") == 0) return R_LIVEZ;
    if (strcmp(path, "/readyz") == 0) return R_READYZ;
    if (strcmp(path, "/metrics") == 0) return R_METRICS;
    return -1;
}

static void serve_health(rctx *c, enum evhttp_cmd_type cmd) {
    hn_api_server *s = c->s;
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(c->req), "Allow", "GET, HEAD");
        fail(c, 405, "method not allowed");
        return;
    }
    if (c->route == R_LIVEZ) {
        static const char ok[] = "{\"status\":\"ok\"}";
        record(s, c->route, 200, c->t0, c->method, c->path, c->query, NULL, NULL);
        reply(s, c->req, 200, NULL, ok, sizeof(ok) - 1);
    } else if (c->route == R_READYZ) {
        char why[128];
        if (!ready(s, why, sizeof(why))) {
            evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", "1");
            failf(c, 503, "not ready: %s", why);
            return;
        }
        static const char ok[] = "{\"status\":\"ready\"}";
        record(s, c->route, 200, c->t0, c->method, c->path, c->query, NULL, NULL);
        reply(s, c->req, 200, NULL, ok, sizeof(ok) - 1);
    } else {
        struct evbuffer *b = evbuffer_new();
        metrics(s, b);
        size_t len = evbuffer_get_length(b);
        record(s, c->route, 200, c->t0, c->method, c->path, c->query, NULL, NULL);
        reply(s, c->req, 200, "text/plain; version=0.0.4; charset=utf-8",
              (const char *)evbuffer_pullup(b, -1), len);
        evbuffer_free(b);
    }
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
    record(s, job->route, status, job->start_us, api_method_name(job->rq.method), job->path,
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
        reply_error(s, job->req, 503, "timed out waiting for a worker");
        job->req = NULL;
        unlink_job(s, job);
        hn_job_free(job);
        return;
    }
    if (!hn_pool_give_up(s->pool, job)) return;     /* streaming, or its answer is ready */
    s->rejected[REJ_DEADLINE]++;
    record_job(s, job, 503, " timeout=running");
    reply_error(s, job->req, 503, "request timed out");
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
        reply_error(s, job->req, 503, "timed out waiting for a worker");
    } else if (job->req) {
        int status = job->rs.status ? job->rs.status : 200;
        record_job(s, job, status, NULL);
        reply(s, job->req, status, job->rs.content_type, job->rs.body.p, job->rs.body.len);
    }
    job->req = NULL;
    hn_job_free(job);
}

int hn_api_parse_query(const char *q, hn_api_req *rq, char *why, size_t cap) {
    if (q == NULL) return HN_OK;
    while (*q) {
        size_t seg = strcspn(q, "&");
        if (seg == 0) {
            q++;
            continue;
        }
        const char *eq = memchr(q, '=', seg);
        size_t klen = eq ? (size_t)(eq - q) : seg;
        const char *v = eq ? eq + 1 : q + seg;
        size_t vlen = (size_t)(q + seg - v);
        if (klen == 0) {
            snprintf(why, cap, "empty query parameter name");
            return HN_ERR;
        }
        if (rq->nquery == HN_API_MAX_QUERY) {
            snprintf(why, cap, "too many query parameters (at most %d)", HN_API_MAX_QUERY);
            return HN_ERR;
        }
        char *k = hn_xmalloc(klen + 1), *val = hn_xmalloc(vlen + 1);
        if (hn_api_pct_decode(q, klen, k, true) < 0 || hn_api_pct_decode(v, vlen, val, true) < 0) {
            free(k);
            free(val);
            snprintf(why, cap, "bad percent-encoding in the query string");
            return HN_ERR;
        }
        for (int i = 0; i < rq->nquery; i++)
            if (strcmp(rq->qkey[i], k) == 0) {
                snprintf(why, cap, "query parameter '%.64s' given more than once", k);
                free(k);
                free(val);
                return HN_ERR;
            }
        rq->qkey[rq->nquery] = k;
        rq->qval[rq->nquery] = val;
        rq->nquery++;
        q += seg;
    }
    return HN_OK;
}

static void unauthorized(rctx *c, hn_auth_result r) {
    c->s->auth_failures[r]++;
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
    if (r == HN_AUTH_UNAVAILABLE) {
        evhttp_add_header(h, "Retry-After", "1");
        fail(c, 503, "API tokens not loaded yet, try again");
        return;
    }
    evhttp_add_header(h, "WWW-Authenticate", r == HN_AUTH_MISSING
                                                 ? "Bearer realm=\"herenow\""
                                                 : "Bearer realm=\"herenow\", error=\"invalid_token\"");
    fail(c, 401, r == HN_AUTH_MISSING   ? "missing bearer token"
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

static void serve_static(rctx *c, enum evhttp_cmd_type cmd) {
    hn_api_server *s = c->s;
    c->route = R_STATIC;
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(c->req), "Allow", "GET, HEAD");
        fail(c, 405, "method not allowed");
        return;
    }
    const hn_static_file *f = hn_static_find(s->www, c->path);
    if (f == NULL) {
        fail(c, 404, "not found");
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
        record(s, c->route, 304, c->t0, c->method, c->path, c->query, NULL, NULL);
        hn_server_track(s, c->req);
        evhttp_send_reply(c->req, 304, "Not Modified", NULL);
        return;
    }
    if (gz) evhttp_add_header(h, "Content-Encoding", "gzip");
    struct evbuffer *b = evbuffer_new();
    /* copied, not referenced: a SIGHUP may swap the files while this is queued */
    if (cmd != EVHTTP_REQ_HEAD) evbuffer_add(b, gz ? f->gz : f->data, gz ? f->gzlen : f->len);
    record(s, c->route, 200, c->t0, c->method, c->path, c->query, NULL, NULL);
    hn_server_track(s, c->req);
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

/* ---- the live stream and its tickets --------------------------------------------------- */

/* true when the raw query has a parameter named key (not decoded: a
 * ticket's name is never %-escaped by a client that means it). */
static bool query_has(const char *q, const char *key) {
    size_t n = strlen(key);
    while (q && *q) {
        if (strncmp(q, key, n) == 0 && (q[n] == '=' || q[n] == '&' || q[n] == '\0')) return true;
        q = strchr(q, '&');
        if (q) q++;
    }
    return false;
}

static void purge_used(hn_api_server *s, int64_t now) {
    used_ticket *u, *tmp;
    HASH_ITER(hh, s->used, u, tmp) {
        if (u->expires_ms > now) continue;
        HASH_DEL(s->used, u);
        free(u);
        s->nused--;
    }
}

/* The stream's ticket (docs/API.md): the right widget, not used before, its
 * token still valid. Answers 401 (or 503) itself and returns HN_ERR. */
static int check_ticket(rctx *c, const char *t, int64_t wid, hn_principal *who) {
    hn_api_server *s = c->s;
    int64_t now = (int64_t)hn_now_ms();
    hn_ticket tk;
    int why;
    switch (hn_ticket_verify(s->ticket_key, t, now, &tk)) {
    case HN_TICKET_OK: why = TK_OK; break;
    case HN_TICKET_FORGED: why = TK_FORGED; break;
    case HN_TICKET_EXPIRED: why = TK_EXPIRED; break;
    default: why = TK_MALFORMED; break;
    }
    used_ticket *u = NULL;
    if (why == TK_OK && tk.widget_id != wid) why = TK_WRONG_WIDGET;
    if (why == TK_OK) {
        HASH_FIND(hh, s->used, &tk.nonce, sizeof(tk.nonce), u);
        if (u) why = TK_REUSED;
    }
    if (why == TK_OK) {
        hn_auth_result ar = hn_auth_by_id(s->auth, tk.token_id, who);
        if (ar == HN_AUTH_UNAVAILABLE) {
            evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", "1");
            fail(c, 503, "API tokens not loaded yet, try again");
            return HN_ERR;
        }
        if (ar != HN_AUTH_OK) why = TK_REVOKED;
    }
    if (why == TK_OK) {
        if (s->nused >= MAX_USED_TICKETS || (s->nused & 255) == 255) purge_used(s, now);
        if (s->nused >= MAX_USED_TICKETS) {
            evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", "1");
            fail(c, 503, "too many live-stream tickets in use, try again");
            return HN_ERR;
        }
        u = hn_xmalloc(sizeof(*u));
        u->nonce = tk.nonce;
        u->expires_ms = tk.expires_ms;
        HASH_ADD(hh, s->used, nonce, sizeof(u->nonce), u);
        s->nused++;
    }
    s->tickets[why]++;
    if (why == TK_OK) return HN_OK;
    evhttp_add_header(evhttp_request_get_output_headers(c->req), "WWW-Authenticate",
                      "Bearer realm=\"herenow\", error=\"invalid_token\"");
    fail(c, 401, why == TK_EXPIRED        ? "ticket expired (ask for a new one)"
                 : why == TK_REUSED       ? "ticket already used (ask for a new one)"
                 : why == TK_WRONG_WIDGET ? "the ticket is for another widget"
                 : why == TK_REVOKED      ? "the ticket's token is revoked"
                                          : "invalid ticket");
    return HN_ERR;
}

static void serve_ticket(rctx *c, const hn_api_req *rq, int64_t wid) {
    hn_api_server *s = c->s;
    char err[HN_PARAM_ERR_CAP];
    if (hn_param_check_keys(rq->qkey, rq->nquery, NULL, 0, err, sizeof(err)) != HN_OK) {
        fail(c, 400, err);
        return;
    }
    hn_ticket tk = {.widget_id = wid,
                    .expires_ms = (int64_t)hn_now_ms() + s->cfg->sse_ticket_ttl_s * 1000,
                    .nonce = hn_rng_next(&s->rng)};
    snprintf(tk.token_id, sizeof(tk.token_id), "%.12s", rq->who.token_id);
    char t[HN_TICKET_LEN + 1];
    hn_ticket_mint(s->ticket_key, &tk, t);
    s->tickets[TK_MINTED]++;
    hn_buf b;
    hn_buf_init(&b, 512);
    bool first = true;
    hn_buf_append(&b, "{", 1);
    hn_json_key(&b, &first, "ticket");
    hn_json_str(&b, t, strlen(t));
    char when[HN_TIME_CAP];
    size_t n = hn_fmt_time_ms(tk.expires_ms, when);
    hn_json_key(&b, &first, "expires_at");
    hn_json_str(&b, when, n);
    hn_json_key(&b, &first, "expires_in_s");
    hn_buf_printf(&b, "%lld", (long long)s->cfg->sse_ticket_ttl_s);
    hn_json_key(&b, &first, "stream");
    hn_buf_printf(&b, "\"" WIDGETS "/%lld/active-visitors/stream?ticket=%s\"}", (long long)wid, t);
    record(s, c->route, 200, c->t0, c->method, c->path, c->query, c->token, NULL);
    reply(s, c->req, 200, NULL, b.p, b.len);
    hn_buf_free(&b);
}

/* The stream's parameters, checked before a ticket is used up: 400 and
 * HN_ERR on anything wrong. */
static int stream_params(rctx *c, const hn_api_req *rq, uint32_t *epoch, uint64_t *seq) {
    static const char *const allowed[] = {"ticket", "last_event_id"};
    char err[HN_PARAM_ERR_CAP];
    if (hn_param_check_keys(rq->qkey, rq->nquery, allowed, 2, err, sizeof(err)) != HN_OK) {
        fail(c, 400, err);
        return HN_ERR;
    }
    *epoch = 0;
    *seq = 0;
    const char *lei = hn_api_query(rq, "last_event_id");
    if (lei) {
        if (*lei && hn_live_parse_id(lei, epoch, seq) != HN_OK) {
            fail(c, 400, "last_event_id: not an event id of this stream (pass the last id: field as received)");
            return HN_ERR;
        }
    } else {
        /* EventSource's own reconnect: a stale or foreign id just means a snapshot */
        const char *h = evhttp_find_header(evhttp_request_get_input_headers(c->req), "Last-Event-ID");
        if (h && hn_live_parse_id(h, epoch, seq) != HN_OK) *epoch = 0;
    }
    return HN_OK;
}

static void stream_full(rctx *c) {
    evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", "5");
    fail(c, 503, c->s->stopping ? "shutting down" : "too many live streams open, try again");
}

/* hn_sse_host.token_ok: the token cache's view of an open stream's token. */
static bool sse_token_ok(void *arg, const char *token_id, int64_t widget_id) {
    hn_api_server *s = arg;
    hn_principal who;
    hn_auth_result r = hn_auth_by_id(s->auth, token_id, &who);
    if (r == HN_AUTH_INVALID) return false;
    return r != HN_AUTH_OK || who.widget_id < 0 || who.widget_id == widget_id;
}

static void serve_stream(rctx *c, const hn_api_req *rq, int64_t wid, uint32_t epoch, uint64_t seq) {
    hn_api_server *s = c->s;
    if (hn_sse_open(s->sse, c->req, wid, rq->who.token_id, epoch, seq) != HN_OK) {
        stream_full(c);
        return;
    }
    record(s, c->route, 200, c->t0, c->method, c->path, c->query, c->token, " stream=opened");
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
static void preflight(rctx *c) {
    if (!cors(c->s, c->req)) {
        fail(c, 403, "origin not allowed (HERENOW_API_CORS_ORIGINS)");
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(c->req);
    evhttp_add_header(h, "Access-Control-Allow-Methods", "GET, POST, DELETE");
    evhttp_add_header(h, "Access-Control-Allow-Headers", "Authorization, Last-Event-ID");
    evhttp_add_header(h, "Access-Control-Max-Age", "600");
    record(c->s, c->route, 204, c->t0, c->method, c->path, c->query, NULL, NULL);
    hn_server_track(c->s, c->req);
    evhttp_send_reply(c->req, 204, "No Content", NULL);
}

static void on_request(struct evhttp_request *req, void *arg) {
    hn_api_server *s = arg;
    const struct evhttp_uri *u = evhttp_request_get_evhttp_uri(req);
    const char *path = u ? evhttp_uri_get_path(u) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    rctx c = {s, req, mono_us(), method_name(cmd), path && *path ? path : "/",
              u ? evhttp_uri_get_query(u) : NULL, NULL, R_OTHER};
    hn_httpguard_arrived(req);
    if (hn_http_ambiguous_length(req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        fail(&c, 400, "ambiguous body length (Content-Length twice, or with Transfer-Encoding)");
        return;
    }

    int h = health_route(c.path);
    if (h >= 0) {
        c.route = h;
        serve_health(&c, cmd);
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
        fail(&c, 503, "shutting down");
        return;
    }
    /* the live stream may come with a ticket instead of a header (an
     * EventSource cannot send one): checked once the widget is known */
    hn_principal who = {0};
    bool ticketed = cmd == EVHTTP_REQ_GET && query_has(c.query, "ticket");
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
        fail(&c, 405, "method not allowed");
        return;
    }
    if (r < 0) {
        fail(&c, 404, "no such route");
        return;
    }
    c.route = r;
    if (ticketed && r != R_STREAM) {
        s->tickets[TK_MALFORMED]++;
        fail(&c, 401, "a ticket opens the live stream only; other routes take Authorization: Bearer");
        return;
    }

    hn_api_job *job = hn_job_new();
    hn_api_req *rq = &job->rq;
    for (int i = 0; i < nraw; i++) {
        char *v = hn_xmalloc((size_t)raw[i].len + 1);
        long n = hn_api_pct_decode(raw[i].p, raw[i].len, v, false);
        rq->params[rq->nparams++] = v;
        if (n < 0) {
            fail(&c, 400, "bad percent-encoding in the path");
            goto reject;
        }
        if (n > HN_API_MAX_PARAM) {
            failf(&c, 400, "path parameter longer than %d bytes", HN_API_MAX_PARAM);
            goto reject;
        }
    }
    int64_t wid = -1;
    if (routes[r].widget && !hn_api_widget_id(rq->params[0], &wid)) {
        fail(&c, 400, "widgetId must be a whole number from 1 to 2147483647");
        goto reject;
    }
    char why[160];
    if (hn_api_parse_query(c.query, rq, why, sizeof(why)) != HN_OK) {
        fail(&c, 400, why);
        goto reject;
    }
    /* the stream's own checks first: a ticket is not used up by a refusal */
    uint32_t lei_epoch = 0;
    uint64_t lei_seq = 0;
    if (r == R_STREAM) {
        if (stream_params(&c, rq, &lei_epoch, &lei_seq) != HN_OK) goto reject;
        if (!hn_sse_has_room(s->sse)) {
            stream_full(&c);
            goto reject;
        }
    }
    if (ticketed) {
        if (check_ticket(&c, hn_api_query(rq, "ticket"), wid, &who) != HN_OK) goto reject;
        c.token = who.token_id;
    }
    rq->who = who;
    if (routes[r].widget && !hn_api_may_see(rq, wid)) {
        failf(&c, 403, "this token may not see widget %lld", (long long)wid);
        goto reject;
    }
    if (r == R_STREAM || r == R_TICKET) {      /* main thread: no worker, no job */
        if (r == R_STREAM) serve_stream(&c, rq, wid, lei_epoch, lei_seq);
        else serve_ticket(&c, rq, wid);
        goto reject;
    }
    rq->method = routes[r].method;
    job->path = hn_xstrdup(c.path);
    job->query = c.query ? hn_xstrdup(c.query) : NULL;
    rq->path = job->path;
    rq->cfg = s->cfg;
    job->handler = routes[r].handler;
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
        fail(&c, 503, "too many requests waiting, try again");
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
        return;
    }
    if (s->stopping) return;
    s->stopping = true;
    s->stop_at = hn_mono_ms();
    s->deadline = s->stop_at + (uint64_t)s->cfg->shutdown_timeout_ms;
    hn_info("event=stopping signal=%d requests_in_flight=%llu", (int)sig,
            (unsigned long long)s->outstanding);
    /* the drain finishes its batch while the HTTP side winds down */
    hn_drain_request_stop(s->drain);
    hn_sse_stop(s->sse);              /* every stream: bye (stopping), end */
    /* /readyz answers 503 from now on; no new connections; requests on open
     * connections get 503 with Connection: close. */
    if (s->bound) {
        evhttp_del_accept_socket(s->http, s->bound);
        s->bound = NULL;
    }
    on_stop_check(-1, 0, s);
}

/* ---- life cycle ------------------------------------------------------------------------ */

int hn_server_create(hn_api_server **out, const hn_config *cfg, char *err, size_t cap) {
    hn_api_server *s = hn_xcalloc(1, sizeof(*s));
    *out = s;
    s->cfg = cfg;
    s->start_ms = hn_now_ms();
    if (hn_addr_parse(cfg->api_listen, &s->addr, err, cap) != HN_OK) return HN_ERR;
    if (hn_redis_addr_parse(cfg->redis_url, &s->raddr, err, cap) != HN_OK) return HN_ERR;

    hn_info("event=fd_limit nofile=%llu", (unsigned long long)hn_raise_nofile());
    evthread_use_pthreads();
    s->base = event_base_new();
    if (s->base == NULL) {
        snprintf(err, cap, "event_base_new failed");
        return HN_ERR;
    }
    int fd = hn_tcp_listen(&s->addr, false, LISTEN_BACKLOG, err, cap);
    if (fd < 0) return HN_ERR;
    s->port = hn_sock_port(fd);
    s->http = evhttp_new(s->base);
    s->bound = evhttp_accept_socket_with_handle(s->http, fd);
    if (s->bound == NULL) {
        snprintf(err, cap, "evhttp_accept_socket failed");
        close(fd);
        return HN_ERR;
    }
    evhttp_set_gencb(s->http, on_request, s);
    hn_httpguard_counters gc = {&s->http_connections, &s->http_incomplete,
                                &s->http_request_timeouts, &s->http_accept_errors};
    s->guard = hn_httpguard_new(s->base, s->http, s->bound, (int)cfg->api_request_timeout_ms,
                                "api", &gc);
    evhttp_set_max_headers_size(s->http, MAX_HEADERS);
    evhttp_set_max_body_size(s->http, MAX_BODY);
    /* Reading a request and writing to a client that does not read: at
     * most this long without progress. */
    int64_t io_ms = cfg->api_timeout_ms < 5000 ? 5000 : cfg->api_timeout_ms;
    struct timeval io = {io_ms / 1000, (io_ms % 1000) * 1000};
    evhttp_set_timeout_tv(s->http, &io);
    /* Every method reaches on_request, so that a wrong one is a JSON 405. */
    evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);

    s->auth = hn_auth_create(cfg);
    if (hn_auth_start(s->auth, err, cap) != HN_OK) return HN_ERR;
    s->pool = hn_pool_create(cfg, &s->raddr, s->base, on_job_done, s);
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
    s->sse = hn_sse_create(cfg, &s->raddr, s->base,
                           &(hn_sse_host){.arg = s, .track = hn_server_track,
                                          .headers = hn_server_headers, .token_ok = sse_token_ok});
    if (hn_sse_start(s->sse, err, cap) != HN_OK) return HN_ERR;
    load_www(s);

    s->sig_term = evsignal_new(s->base, SIGTERM, on_signal, s);
    s->sig_int = evsignal_new(s->base, SIGINT, on_signal, s);
    s->sig_hup = evsignal_new(s->base, SIGHUP, on_signal, s);
    event_add(s->sig_term, NULL);
    event_add(s->sig_int, NULL);
    event_add(s->sig_hup, NULL);
    signal(SIGPIPE, SIG_IGN);
    s->stop_timer = evtimer_new(s->base, on_stop_check, s);
    return HN_OK;
}

void hn_server_set_drain(hn_api_server *s, hn_drain *d) {
    s->drain = d;
}

int hn_server_run(hn_api_server *s) {
    hn_info("event=started listen='%s' port=%d workers=%lld max_queue=%lld timeout_ms=%lld drain=%s",
            s->cfg->api_listen, s->port, (long long)s->cfg->api_threads,
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
    if (s->http) evhttp_free(s->http);   /* closes the open connections (streams too) */
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
    if (s->base) event_base_free(s->base);
    free(s);
}
