/*
 * server_priv.h: the api server's state, shared by the files of the main
 * thread only (server.c: listener, requests, jobs, stop; server_health.c:
 * /livez /readyz /metrics; server_stream.c: the live stream and its
 * tickets). Nothing outside those three includes it.
 */
#ifndef HN_SERVER_PRIV_H
#define HN_SERVER_PRIV_H

#include "api/internal.h"
#include "api/drain/drain.h"
#include "api/router.h"
#include "api/live/sse.h"
#include "api/rules/engine.h"
#include "api/static.h"
#include "api/ticket.h"
#include "common/httpguard.h"
#include "common/ids.h"
#include "common/net.h"

#include <event2/http.h>
#include <uthash.h>

/* A ticket already used, kept until it expires (single use). */
typedef struct used_ticket {
    UT_hash_handle hh;
    uint64_t       nonce;
    int64_t        expires_ms;
} used_ticket;

#define MAX_USED_TICKETS 100000

enum { TK_MINTED, TK_OK, TK_MALFORMED, TK_FORGED, TK_EXPIRED, TK_REUSED, TK_WRONG_WIDGET,
       TK_REVOKED, TK__COUNT };

/* Latency buckets (µs; exported in seconds). */
extern const uint64_t hn_srv_bucket_us[];
#define N_BUCKETS 11

typedef struct route_stats {
    uint64_t by_class[5];            /* 1xx..5xx */
    uint64_t hist[N_BUCKETS + 1];    /* not cumulative; last: above every bound */
    uint64_t sum_us, count;
} route_stats;

enum { REJ_QUEUE_FULL, REJ_QUEUE_TIMEOUT, REJ_DEADLINE, REJ_STOPPING, REJ__COUNT };

struct hn_api_server {
    const hn_config            *cfg;
    hn_addr                     addr;
    hn_redis_cfg                rcfg;
    int                         port;
    struct event_base          *base;
    struct evhttp              *http;
    struct evhttp_bound_socket *bound;
    struct evhttp              *https;      /* HERENOW_API_HTTPS_LISTEN (NULL: off) */
    struct evhttp_bound_socket *bound_tls;
    hn_httpguard               *guard_tls;
    struct hn_tls              *tls;        /* its certificate, reloaded on SIGHUP */
    int                         tls_port;
    struct event               *sig_term, *sig_int, *sig_hup, *stop_timer;
    struct event               *sd_timer;   /* NOTIFY_SOCKET: readiness checks until READY=1 */
    hn_api_pool                *pool;
    hn_api_auth                *auth;
    hn_drain                   *drain;
    hn_rules                   *rules;      /* NULL: HERENOW_RULES=off */
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
    route_stats                 stats[HN_RT__COUNT];
    uint64_t                    auth_failures[HN_AUTH__COUNT];
    uint64_t                    rejected[REJ__COUNT];
};

/* A request answered at once on the main thread. */
typedef struct hn_srv_rctx {
    hn_api_server         *s;
    struct evhttp_request *req;
    uint64_t               t0;
    const char            *method, *path, *query, *token;
    int                    route;
} hn_srv_rctx;

uint64_t hn_srv_mono_us(void);
/* Metrics and the access log line of one answered request. */
void hn_srv_record(hn_api_server *s, int route, int status, uint64_t start_us, const char *method,
                   const char *path, const char *query, const char *token, const char *note);
/* Records and answers {"error": msg}. */
void hn_srv_fail(hn_srv_rctx *c, int status, const char *msg);
void hn_srv_failf(hn_srv_rctx *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* server_health.c: the route of /livez, /readyz, /metrics (-1: none) and its answer;
 * readiness as /readyz sees it (why: its text). */
bool hn_srv_ready(hn_api_server *s, char *why, size_t cap);
int  hn_srv_health_route(const char *path);
void hn_srv_serve_health(hn_srv_rctx *c, enum evhttp_cmd_type cmd);

/* server_stream.c: the live stream (GET …/active-visitors/stream) and its tickets. */
bool hn_srv_query_has(const char *q, const char *key);
/* A ticket given as ?ticket=: checked, used up, who it stands for; else answered 401. */
int  hn_srv_check_ticket(hn_srv_rctx *c, const char *t, int64_t wid, hn_principal *who);
void hn_srv_serve_ticket(hn_srv_rctx *c, const hn_api_req *rq, int64_t wid);
/* Last-Event-ID (header or ?last_event_id=): 400 when malformed. */
int  hn_srv_stream_params(hn_srv_rctx *c, const hn_api_req *rq, uint32_t *epoch, uint64_t *seq);
void hn_srv_stream_full(hn_srv_rctx *c);
void hn_srv_serve_stream(hn_srv_rctx *c, const hn_api_req *rq, int64_t wid, uint32_t epoch, uint64_t seq);
/* What the SSE connections (api/live/) may ask of the server. */
hn_sse_host hn_srv_sse_host(hn_api_server *s);

#endif
