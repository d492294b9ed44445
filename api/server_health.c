/*
 * server_health.c: the api's /livez, /readyz and /metrics, answered on the
 * main thread (server_priv.h). /metrics is the Prometheus text of the
 * server, its workers, the token cache, the live streams and the drain.
 */
#include "api/server_priv.h"
#include "api/reply.h"
#include "common/prom.h"

#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <string.h>

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

static const char *const tk_names[TK__COUNT] = {"minted", "accepted", "malformed", "forged",
                                                "expired", "reused", "wrong_widget", "revoked"};
static const char *const rej_names[REJ__COUNT] = {"queue_full", "queue_timeout", "deadline",
                                                  "stopping"};

static void metrics(hn_api_server *s, hn_buf *out) {
    static const char *const cls[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
    hn_prom_family(out, "herenow_api_requests_total", HN_PROM_COUNTER,
                   "Requests answered, by route and status class.");
    for (int r = 0; r < HN_RT__COUNT; r++)
        for (int c = 0; c < 5; c++)
            if (s->stats[r].by_class[c] || c == 1)
                hn_prom_u64(out, "herenow_api_requests_total",
                            HN_PROM_L2("route", hn_api_route_name(r), "code", cls[c]),
                            s->stats[r].by_class[c]);
    hn_prom_family(out, "herenow_api_request_duration_seconds", HN_PROM_HISTOGRAM,
                   "Time from request to answer (streams: to their end), by route.");
    double le[N_BUCKETS];
    for (size_t b = 0; b < N_BUCKETS; b++) le[b] = (double)hn_srv_bucket_us[b] / 1e6;
    for (int r = 0; r < HN_RT__COUNT; r++)
        hn_prom_histogram(out, "herenow_api_request_duration_seconds",
                          HN_PROM_L1("route", hn_api_route_name(r)), le, s->stats[r].hist, N_BUCKETS,
                          (double)s->stats[r].sum_us / 1e6);
    hn_prom_family(out, "herenow_api_rejected_total", HN_PROM_COUNTER,
                   "Requests answered 503 without a handler's answer, by reason.");
    for (int i = 0; i < REJ__COUNT; i++)
        hn_prom_u64(out, "herenow_api_rejected_total", HN_PROM_L1("reason", rej_names[i]), s->rejected[i]);
    hn_prom_family(out, "herenow_api_auth_failures_total", HN_PROM_COUNTER,
                   "Requests refused by the token check, by reason.");
    for (int i = 1; i < HN_AUTH__COUNT; i++)
        hn_prom_u64(out, "herenow_api_auth_failures_total",
                    HN_PROM_L1("reason", hn_auth_reason((hn_auth_result)i)), s->auth_failures[i]);

    hn_pool_stats ps;
    hn_pool_stats_get(s->pool, &ps);
    hn_prom_family(out, "herenow_api_connects_total", HN_PROM_COUNTER,
                   "Worker connections made, by backend (the first ones too).");
    hn_prom_u64(out, "herenow_api_connects_total", HN_PROM_L1("backend", "postgresql"), ps.pg_connects);
    hn_prom_u64(out, "herenow_api_connects_total", HN_PROM_L1("backend", "redis"), ps.redis_connects);
    hn_prom_family(out, "herenow_api_connect_failures_total", HN_PROM_COUNTER,
                   "Worker connection attempts that failed, by backend.");
    hn_prom_u64(out, "herenow_api_connect_failures_total", HN_PROM_L1("backend", "postgresql"),
                ps.pg_connect_failures);
    hn_prom_u64(out, "herenow_api_connect_failures_total", HN_PROM_L1("backend", "redis"),
                ps.redis_connect_failures);

    hn_auth_stats as;
    hn_auth_stats_get(s->auth, &as);
    size_t files = 0, bytes = 0;
    hn_static_stats(s->www, &files, &bytes);
#define C HN_PROM_COUNTER
#define G HN_PROM_GAUGE
#define RELAXED(x) ((double)__atomic_load_n(&(x), __ATOMIC_RELAXED))
    const hn_prom_scalar scalars[] = {
        {"herenow_api_queue_depth", G, "Jobs waiting for a worker.", (double)ps.queued},
        {"herenow_api_queue_capacity", G, "Jobs that may wait (HERENOW_API_MAX_QUEUE).", (double)ps.capacity},
        {"herenow_api_workers", G, "Worker threads.", (double)ps.workers},
        {"herenow_api_workers_busy", G, "Workers running a handler now.", (double)ps.busy},
        {"herenow_api_requests_in_flight", G, "Requests queued or running.", (double)s->outstanding},
        {"herenow_api_jobs_expired_total", C,
         "Jobs that waited longer than HERENOW_API_TIMEOUT_MS and never ran.", (double)ps.expired},
        {"herenow_api_stream_chunks_total", C, "Chunks of streamed answers written.", (double)ps.stream_chunks},
        {"herenow_api_stream_bytes_total", C, "Bytes of streamed answers written.", (double)ps.stream_bytes},
        {"herenow_api_streams_cut_total", C,
         "Streamed answers cut short (client gone, handler error, stop).", (double)ps.streams_cut},
        {"herenow_api_tokens", G, "Active API tokens in the cache.", (double)as.tokens},
        {"herenow_api_token_cache_age_seconds", G,
         "Seconds since the token cache was last loaded (-1: never).",
         as.loaded ? (double)as.age_ms / 1000.0 : -1.0},
        {"herenow_api_token_refreshes_total", C, "Successful loads of api_tokens.", (double)as.refreshes},
        {"herenow_api_token_refresh_errors_total", C, "Failed loads of api_tokens.", (double)as.refresh_errors},
        {"herenow_api_http_connections_total", C, "HTTP connections accepted.", RELAXED(s->http_connections)},
        {"herenow_api_http_incomplete_requests_total", C,
         "Connections closed with a request begun and never complete (timeout, client gone).",
         RELAXED(s->http_incomplete)},
        {"herenow_api_http_request_timeouts_total", C,
         "Connections closed because a request took longer than HERENOW_API_REQUEST_TIMEOUT_MS to arrive.",
         RELAXED(s->http_request_timeouts)},
        {"herenow_api_http_accept_errors_total", C,
         "Times accepting a connection failed (out of file descriptors): the listener pauses 100 ms.",
         RELAXED(s->http_accept_errors)},
        {"herenow_up_seconds", G, "Seconds since start.", (double)((hn_now_ms() - s->start_ms) / 1000)},
        {"herenow_api_dashboard_files", G, "Files of the dashboard in memory (HERENOW_API_WWW).",
         (double)files},
    };
#undef RELAXED
#undef C
#undef G
    hn_prom_scalars(out, scalars, HN_ARRAY_LEN(scalars));
    hn_prom_family(out, "herenow_api_stream_tickets_total", HN_PROM_COUNTER,
                   "Live-stream tickets made (minted) and checked, by result.");
    for (int i = 0; i < TK__COUNT; i++)
        hn_prom_u64(out, "herenow_api_stream_tickets_total", HN_PROM_L1("result", tk_names[i]),
                    s->tickets[i]);
    if (s->sse) hn_sse_metrics(s->sse, out);
    if (s->drain) hn_drain_metrics(s->drain, out);
}

int hn_srv_health_route(const char *path) {
    if (strcmp(path, "/livez") == 0) return HN_RT_LIVEZ;
    if (strcmp(path, "/readyz") == 0) return HN_RT_READYZ;
    if (strcmp(path, "/metrics") == 0) return HN_RT_METRICS;
    return -1;
}

void hn_srv_serve_health(hn_srv_rctx *c, enum evhttp_cmd_type cmd) {
    hn_api_server *s = c->s;
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(c->req), "Allow", "GET, HEAD");
        hn_srv_fail(c, 405, "method not allowed");
        return;
    }
    if (c->route == HN_RT_LIVEZ) {
        static const char ok[] = "{\"status\":\"ok\"}";
        hn_srv_record(s, c->route, 200, c->t0, c->method, c->path, c->query, NULL, NULL);
        hn_reply_send(&s->writing, s->stopping, c->req, 200, NULL, ok, sizeof(ok) - 1);
    } else if (c->route == HN_RT_READYZ) {
        char why[128];
        if (!ready(s, why, sizeof(why))) {
            evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", "1");
            hn_srv_failf(c, 503, "not ready: %s", why);
            return;
        }
        static const char ok[] = "{\"status\":\"ready\"}";
        hn_srv_record(s, c->route, 200, c->t0, c->method, c->path, c->query, NULL, NULL);
        hn_reply_send(&s->writing, s->stopping, c->req, 200, NULL, ok, sizeof(ok) - 1);
    } else {
        hn_buf b;
        hn_buf_init(&b, 32768);
        metrics(s, &b);
        hn_srv_record(s, c->route, 200, c->t0, c->method, c->path, c->query, NULL, NULL);
        hn_reply_send(&s->writing, s->stopping, c->req, 200, "text/plain; version=0.0.4; charset=utf-8",
                      b.p, b.len);
        hn_buf_free(&b);
    }
}

