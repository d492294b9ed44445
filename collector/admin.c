/*
 * admin.c: the collector's small HTTP port — /metrics (Prometheus text),
 * /livez, /readyz. Runs on the main thread's event base; counters are read
 * from the workers with relaxed loads and summed here, so reading metrics
 * never slows the hot path.
 */
#include "collector/collector.h"
#include "collector/rconn.h"
#include "common/log.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *tr_names[3] = {"udp", "http", "pixel"};

static void sum_stats(hn_collector *c, hn_wstats *s) {
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < c->nworkers; i++) {
        const hn_wstats *w = hn_worker_stats(c->workers[i]);
        const uint64_t *src = (const uint64_t *)w;
        uint64_t *dst = (uint64_t *)s;
        for (size_t k = 0; k < sizeof(*s) / sizeof(uint64_t); k++)
            dst[k] += __atomic_load_n(&src[k], __ATOMIC_RELAXED);
    }
}

static int ready(hn_collector *c, char *why, size_t cap) {
    if (atomic_load(&c->stopping)) {
        snprintf(why, cap, "stopping");
        return 0;
    }
    hn_wstats s;
    sum_stats(c, &s);
    if (s.redis_up < (uint64_t)c->nworkers) {
        /* With a spool, beacons are still taken (and kept) while Redis is away. */
        if (!c->cfg.spool_dir[0] || s.spool_full) {
            snprintf(why, cap, "redis: %llu of %d worker connections up%s",
                     (unsigned long long)s.redis_up, c->nworkers,
                     s.spool_full ? ", spool full" : "");
            return 0;
        }
    }
    const hn_widgets *t = hn_widgets_acquire(c->widgets, &c->wref);
    if (t == NULL) {
        snprintf(why, cap, "widgets not loaded yet");
        return 0;
    }
    if (s.redis_up < (uint64_t)c->nworkers)
        snprintf(why, cap, "ready (spooling: %llu of %d worker Redis connections up)",
                 (unsigned long long)s.redis_up, c->nworkers);
    else
        snprintf(why, cap, "ready");
    return 1;
}

#define COUNTER(name, help) \
    evbuffer_add_printf(out, "# HELP " name " " help "\n# TYPE " name " counter\n")
#define GAUGE(name, help) \
    evbuffer_add_printf(out, "# HELP " name " " help "\n# TYPE " name " gauge\n")

void hn_admin_metrics(hn_collector *c, struct evbuffer *out) {
    hn_wstats s;
    sum_stats(c, &s);
    s.kernel_drops = 0;
    for (int i = 0; i < c->nworkers; i++) s.kernel_drops += hn_worker_kernel_drops(c->workers[i]);
    COUNTER("herenow_beacons_received_total", "Beacons received (a rejected whole input counts one).");
    for (int t = 0; t < 3; t++)
        evbuffer_add_printf(out, "herenow_beacons_received_total{transport=\"%s\"} %llu\n",
                            tr_names[t], (unsigned long long)s.received[t]);
    COUNTER("herenow_beacons_accepted_total", "Beacons accepted: validated and queued for Redis.");
    for (int t = 0; t < 3; t++)
        evbuffer_add_printf(out, "herenow_beacons_accepted_total{transport=\"%s\"} %llu\n",
                            tr_names[t], (unsigned long long)s.accepted[t]);
    COUNTER("herenow_beacons_dropped_total", "Beacons dropped, by reason.");
    for (int t = 0; t < 3; t++)
        for (int r = 1; r < HN_R__COUNT; r++)
            evbuffer_add_printf(out, "herenow_beacons_dropped_total{transport=\"%s\",reason=\"%s\"} %llu\n",
                                tr_names[t], hn_reason_name((hn_reason)r),
                                (unsigned long long)s.dropped[t][r]);
    const struct { const char *name, *type, *help; uint64_t v; } scalars[] = {
        {"herenow_records_written_total", "counter",
         "Records whose stream entry Redis acknowledged.", s.records_written},
        {"herenow_udp_datagrams_total", "counter", "UDP datagrams read.", s.datagrams},
        {"herenow_udp_bytes_total", "counter", "UDP payload bytes read.", s.bytes},
        {"herenow_udp_kernel_drops_total", "counter",
         "Datagrams the kernel dropped (receive buffer full).", s.kernel_drops},
        {"herenow_redis_commands_total", "counter", "Redis commands acknowledged.", s.redis_commands},
        {"herenow_redis_errors_total", "counter", "Redis error replies.", s.redis_errors},
        {"herenow_redis_disconnects_total", "counter", "Worker Redis connections lost.",
         s.redis_disconnects},
        {"herenow_redis_timeouts_total", "counter",
         "Worker Redis connections dropped because no reply came in time.", s.redis_timeouts},
        {"herenow_redis_retryable_errors_total", "counter",
         "Worker Redis connections dropped on an error reply that means not now (LOADING, OOM, MISCONF, READONLY, BUSY, ...): the pipelines are sent again after a backoff, never counted as written.",
         s.redis_retryable},
        {"herenow_redis_buffered_bytes", "gauge",
         "Command bytes not yet acknowledged by Redis.", s.redis_buffered},
        {"herenow_redis_connections_up", "gauge", "Worker Redis connections that are up.", s.redis_up},
        {"herenow_ingress_paused_total", "counter",
         "Times a worker stopped reading on Redis backpressure.", s.paused},
        {"herenow_http_connections_total", "counter", "HTTP connections accepted.",
         s.http_connections},
        {"herenow_http_incomplete_requests_total", "counter",
         "HTTP connections closed with a request begun but never completed (timeout, client gone).",
         s.http_incomplete},
        {"herenow_http_accept_errors_total", "counter",
         "Times accepting an HTTP connection failed (out of file descriptors): the listener pauses 100 ms.",
         s.http_accept_errors},
        {"herenow_http_request_timeouts_total", "counter",
         "HTTP connections closed because a request took longer than HERENOW_HTTP_REQUEST_TIMEOUT_MS to arrive.",
         s.http_request_timeouts},
        {"herenow_ua_cache_hits_total", "counter",
         "User agents found in a worker's cache of parsed user agents.", s.ua_cache_hits},
        {"herenow_ua_cache_misses_total", "counter",
         "User agents parsed with the uap-core regexes (not in the cache).", s.ua_cache_misses},
        {"herenow_ua_match_errors_total", "counter",
         "User-agent regex matches stopped at PCRE2's match limit (the user agent parsed as if that regex did not match).",
         s.ua_match_errors},
        {"herenow_records_without_visitor_total", "counter",
         "Records stored without a visitor hash: no salt for their day (Redis unreachable).",
         s.no_salt},
        {"herenow_spool_bytes", "gauge",
         "Spool bytes not yet acknowledged by Redis (all workers).", s.spool_bytes},
        {"herenow_spool_records", "gauge",
         "Records in the spool not yet acknowledged by Redis.", s.spool_records},
        {"herenow_spool_active", "gauge",
         "Workers whose spool holds entries (every flush of theirs goes through it).", s.spool_active},
        {"herenow_spool_full", "gauge",
         "Workers whose spool reached HERENOW_SPOOL_MAX_BYTES (they drop beacons: spool_full).",
         s.spool_full},
        {"herenow_spool_written_records_total", "counter",
         "Records appended to the spool (Redis unreachable or behind).", s.spool_written},
        {"herenow_spool_replayed_records_total", "counter",
         "Records replayed from the spool and acknowledged by Redis.", s.spool_replayed},
        {"herenow_spool_corrupt_bytes_total", "counter",
         "Damaged spool bytes found (a crash mid-write, a bad disk): skipped or moved aside.",
         s.spool_corrupt_bytes},
        {"herenow_spool_write_errors_total", "counter",
         "Spool appends that failed (the pipeline stayed in memory).", s.spool_write_errors},
        {"herenow_salt_refresh_errors_total", "counter",
         "Failed reads or writes of the daily salt (hn:salt:<day>).",
         HN_STAT_GET(c->salt_refresh_errors)},
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(scalars); i++)
        evbuffer_add_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", scalars[i].name,
                            scalars[i].help, scalars[i].name, scalars[i].type, scalars[i].name,
                            (unsigned long long)scalars[i].v);

    COUNTER("herenow_http_responses_total", "HTTP answers of the beacon port, by status.");
    for (int i = 0; i < HN_HTTP_CODES; i++)
        if (hn_http_codes[i]) evbuffer_add_printf(out, "herenow_http_responses_total{code=\"%d\"} %llu\n",
                                                  hn_http_codes[i], (unsigned long long)s.http_responses[i]);
        else evbuffer_add_printf(out, "herenow_http_responses_total{code=\"other\"} %llu\n",
                                 (unsigned long long)s.http_responses[i]);

    evbuffer_add_printf(out, "# HELP herenow_batch_records Records per flushed pipeline.\n"
                             "# TYPE herenow_batch_records histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b < HN_BATCH_BUCKETS; b++) {
        cum += s.batch_hist[b];
        if (b == HN_BATCH_BUCKETS - 1)
            evbuffer_add_printf(out, "herenow_batch_records_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        else
            evbuffer_add_printf(out, "herenow_batch_records_bucket{le=\"%u\"} %llu\n", 1u << b,
                                (unsigned long long)cum);
    }
    evbuffer_add_printf(out, "herenow_batch_records_sum %llu\nherenow_batch_records_count %llu\n",
                        (unsigned long long)s.batch_sum, (unsigned long long)s.flushes);

    const hn_widgets *t = hn_widgets_acquire(c->widgets, &c->wref);
    GAUGE("herenow_widgets", "Widgets known to this collector.");
    evbuffer_add_printf(out, "herenow_widgets %zu\n", hn_widgets_count(t));
    COUNTER("herenow_widget_refresh_errors_total", "Failed reads of hn:widgets.");
    evbuffer_add_printf(out, "herenow_widget_refresh_errors_total %llu\n",
                        (unsigned long long)HN_STAT_GET(c->widget_refresh_errors));
    COUNTER("herenow_live_trims_total", "Trim passes over the live sets run by this node.");
    evbuffer_add_printf(out, "herenow_live_trims_total %llu\n", (unsigned long long)HN_STAT_GET(c->trims));
    COUNTER("herenow_sessions_trimmed_total", "Sessions removed from live sets by this node's trims.");
    evbuffer_add_printf(out, "herenow_sessions_trimmed_total %llu\n", (unsigned long long)HN_STAT_GET(c->trimmed));
    GAUGE("herenow_workers", "Worker threads.");
    evbuffer_add_printf(out, "herenow_workers %d\n", c->nworkers);
    GAUGE("herenow_up_seconds", "Seconds since start.");
    evbuffer_add_printf(out, "herenow_up_seconds %llu\n",
                        (unsigned long long)((hn_now_ms() - c->start_ms) / 1000));
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *body) {
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "%s\n", body);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; charset=utf-8");
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static void on_request(struct evhttp_request *req, void *arg) {
    hn_collector *c = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    if (path == NULL) path = "/";
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET &&
        evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) {
        reply_text(req, 405, "Method Not Allowed", "only GET");
        return;
    }
    if (strcmp(path, "/livez") == 0) {
        reply_text(req, 200, "OK", "ok");
    } else if (strcmp(path, "/readyz") == 0) {
        char why[128];
        int ok = ready(c, why, sizeof(why));
        reply_text(req, ok ? 200 : 503, ok ? "OK" : "Service Unavailable", why);
    } else if (strcmp(path, "/metrics") == 0) {
        struct evbuffer *b = evbuffer_new();
        hn_admin_metrics(c, b);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/plain; version=0.0.4; charset=utf-8");
        evhttp_send_reply(req, 200, "OK", b);
        evbuffer_free(b);
    } else {
        reply_text(req, 404, "Not Found", "not found: try /metrics, /livez, /readyz");
    }
}

int hn_admin_start(hn_collector *c, char *err, size_t cap) {
    int fd = hn_tcp_listen(&c->admin_addr, false, 128, err, cap);
    if (fd < 0) return HN_ERR;
    c->admin = evhttp_new(c->base);
    evhttp_set_gencb(c->admin, on_request, c);
    evhttp_set_timeout(c->admin, 10);
    evhttp_set_max_headers_size(c->admin, 8192);
    evhttp_set_max_body_size(c->admin, 0);
    if (evhttp_accept_socket(c->admin, fd) != 0) {
        snprintf(err, cap, "evhttp_accept_socket failed");
        close(fd);
        return HN_ERR;
    }
    return HN_OK;
}
