/*
 * server_health.c: the api's /livez, /readyz and /metrics, answered on the
 * main thread (server_priv.h). /metrics is the Prometheus text of the
 * server, its workers, the token cache, the live streams and the drain.
 */
#include "api/server_priv.h"
#include "api/reply.h"
#include "api/rules/webhook.h"
#include "common/datakey.h"
#include "common/prom.h"
#include "common/tls.h"

#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <string.h>

bool hn_srv_ready(hn_api_server *s, char *why, size_t cap) {
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
    char why[128];
    hn_prom_family(out, "herenow_ready", HN_PROM_GAUGE,
                   "1 when /readyz answers 200, 0 when it answers 503 (stopping, tokens not loaded, drain unhealthy).");
    hn_prom_u64(out, "herenow_ready", NULL, hn_srv_ready(s, why, sizeof(why)) ? 1 : 0);
    hn_tls_metrics(s->tls, out);    /* HERENOW_API_HTTPS_LISTEN only */
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
    hn_prom_counter(out, "herenow_data_open_failures_total",
                    "Values sealed at rest that did not open (a key missing from HERENOW_DATA_KEY_FILE, or "
                    "an altered value): answered as null, exported and sent sealed.", hn_dk_failures());
    hn_prom_gauge(out, "herenow_data_keys", "Keys in HERENOW_DATA_KEY_FILE (0: values stored in clear).",
                  (double)hn_dk_count());

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
#define RELAXED(x) ((uint64_t)__atomic_load_n(&(x), __ATOMIC_RELAXED))
    const hn_prom_scalar scalars[] = {
        {.name = "herenow_api_queue_depth", .type = G, .help = "Jobs waiting for a worker.", .u = (uint64_t)ps.queued},
        {.name = "herenow_api_queue_capacity", .type = G, .help = "Jobs that may wait (HERENOW_API_MAX_QUEUE).", .u = (uint64_t)ps.capacity},
        {.name = "herenow_api_workers", .type = G, .help = "Worker threads.", .u = (uint64_t)ps.workers},
        {.name = "herenow_api_workers_busy", .type = G, .help = "Workers running a handler now.", .u = (uint64_t)ps.busy},
        {.name = "herenow_api_requests_in_flight", .type = G, .help = "Requests queued or running.", .u = (uint64_t)s->outstanding},
        {.name = "herenow_api_jobs_expired_total", .type = C,
         .help = "Jobs that waited longer than HERENOW_API_TIMEOUT_MS and never ran.", .u = (uint64_t)ps.expired},
        {.name = "herenow_api_stream_chunks_total", .type = C, .help = "Chunks of streamed answers written.", .u = (uint64_t)ps.stream_chunks},
        {.name = "herenow_api_stream_bytes_total", .type = C, .help = "Bytes of streamed answers written.", .u = (uint64_t)ps.stream_bytes},
        {.name = "herenow_api_streams_cut_total", .type = C,
         .help = "Streamed answers cut short (client gone, handler error, stop).", .u = (uint64_t)ps.streams_cut},
        {.name = "herenow_api_tokens", .type = G, .help = "Active API tokens in the cache.", .u = (uint64_t)as.tokens},
        {.name = "herenow_api_token_cache_age_seconds", .type = G,
         .help = "Seconds since the token cache was last loaded (-1: never).",
         .f = as.loaded ? (uint64_t)as.age_ms / 1000.0 : -1.0, .real = true},
        {.name = "herenow_api_token_refreshes_total", .type = C, .help = "Successful loads of api_tokens.", .u = (uint64_t)as.refreshes},
        {.name = "herenow_api_token_refresh_errors_total", .type = C, .help = "Failed loads of api_tokens.", .u = (uint64_t)as.refresh_errors},
        {.name = "herenow_api_http_connections_total", .type = C, .help = "HTTP connections accepted.", .u = RELAXED(s->http_connections)},
        {.name = "herenow_api_http_incomplete_requests_total", .type = C,
         .help = "Connections closed with a request begun and never complete (timeout, client gone).",
         .u = RELAXED(s->http_incomplete)},
        {.name = "herenow_api_http_request_timeouts_total", .type = C,
         .help = "Connections closed because a request took longer than HERENOW_API_REQUEST_TIMEOUT_MS to arrive.",
         .u = RELAXED(s->http_request_timeouts)},
        {.name = "herenow_api_http_accept_errors_total", .type = C,
         .help = "Times accepting a connection failed (out of file descriptors): the listener pauses 100 ms.",
         .u = RELAXED(s->http_accept_errors)},
        {.name = "herenow_up_seconds", .type = G, .help = "Seconds since start.", .u = (uint64_t)((hn_now_ms() - s->start_ms) / 1000)},
        {.name = "herenow_api_dashboard_files", .type = G, .help = "Files of the dashboard in memory (HERENOW_API_WWW).",
         .u = (uint64_t)files},
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
    hn_chat_metrics(out);
    hn_rules_metrics(s->rules, out);
    hn_webhooks_metrics(out);
    hn_rcl_metrics(out);            /* Redis Cluster counters; nothing on one server */
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
        if (!hn_srv_ready(s, why, sizeof(why))) {
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

