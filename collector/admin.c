/*
 * admin.c: the collector's small HTTP port — /metrics (Prometheus text),
 * /livez, /readyz. Runs on the main thread's event base; counters are read
 * from the workers with relaxed loads and summed here, so reading metrics
 * never slows the hot path.
 */
#include "collector/collector.h"
#include "collector/rconn.h"
#include "common/log.h"
#include "common/prom.h"

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

void hn_admin_metrics(hn_collector *c, hn_buf *out) {
    hn_wstats s;
    sum_stats(c, &s);
    s.kernel_drops = 0;
    for (int i = 0; i < c->nworkers; i++) s.kernel_drops += hn_worker_kernel_drops(c->workers[i]);
    hn_prom_family(out, "herenow_beacons_received_total", HN_PROM_COUNTER,
                   "Beacons received (a rejected whole input counts one).");
    for (int t = 0; t < 3; t++) hn_prom_u64(out, "herenow_beacons_received_total", HN_PROM_L1("transport", tr_names[t]), s.received[t]);
    hn_prom_family(out, "herenow_beacons_accepted_total", HN_PROM_COUNTER,
                   "Beacons accepted: validated and queued for Redis.");
    for (int t = 0; t < 3; t++) hn_prom_u64(out, "herenow_beacons_accepted_total", HN_PROM_L1("transport", tr_names[t]), s.accepted[t]);
    hn_prom_family(out, "herenow_beacons_dropped_total", HN_PROM_COUNTER, "Beacons dropped, by reason.");
    for (int t = 0; t < 3; t++)
        for (int r = 1; r < HN_R__COUNT; r++)
            hn_prom_u64(out, "herenow_beacons_dropped_total",
                        HN_PROM_L2("transport", tr_names[t], "reason", hn_reason_name((hn_reason)r)),
                        s.dropped[t][r]);
#define C HN_PROM_COUNTER
#define G HN_PROM_GAUGE
    const hn_prom_scalar scalars[] = {
        {"herenow_records_written_total", C,
         "Records whose stream entry Redis acknowledged.", (double)s.records_written},
        {"herenow_udp_datagrams_total", C, "UDP datagrams read.", (double)s.datagrams},
        {"herenow_udp_bytes_total", C, "UDP payload bytes read.", (double)s.bytes},
        {"herenow_udp_kernel_drops_total", C,
         "Datagrams the kernel dropped (receive buffer full).", (double)s.kernel_drops},
        {"herenow_redis_commands_total", C, "Redis commands acknowledged.", (double)s.redis_commands},
        {"herenow_redis_errors_total", C, "Redis error replies.", (double)s.redis_errors},
        {"herenow_redis_disconnects_total", C, "Worker Redis connections lost.",
         (double)s.redis_disconnects},
        {"herenow_redis_timeouts_total", C,
         "Worker Redis connections dropped because no reply came in time.", (double)s.redis_timeouts},
        {"herenow_redis_retryable_errors_total", C,
         "Worker Redis connections dropped on an error reply that means not now (LOADING, OOM, MISCONF, READONLY, BUSY, ...): the pipelines are sent again after a backoff, never counted as written.",
         (double)s.redis_retryable},
        {"herenow_redis_buffered_bytes", G,
         "Command bytes not yet acknowledged by Redis.", (double)s.redis_buffered},
        {"herenow_redis_connections_up", G, "Worker Redis connections that are up.", (double)s.redis_up},
        {"herenow_ingress_paused_total", C,
         "Times a worker stopped reading on Redis backpressure.", (double)s.paused},
        {"herenow_http_connections_total", C, "HTTP connections accepted.",
         (double)s.http_connections},
        {"herenow_http_incomplete_requests_total", C,
         "HTTP connections closed with a request begun but never completed (timeout, client gone).",
         (double)s.http_incomplete},
        {"herenow_http_accept_errors_total", C,
         "Times accepting an HTTP connection failed (out of file descriptors): the listener pauses 100 ms.",
         (double)s.http_accept_errors},
        {"herenow_http_request_timeouts_total", C,
         "HTTP connections closed because a request took longer than HERENOW_HTTP_REQUEST_TIMEOUT_MS to arrive.",
         (double)s.http_request_timeouts},
        {"herenow_ua_cache_hits_total", C,
         "User agents found in a worker's cache of parsed user agents.", (double)s.ua_cache_hits},
        {"herenow_ua_cache_misses_total", C,
         "User agents parsed with the uap-core regexes (not in the cache).", (double)s.ua_cache_misses},
        {"herenow_ua_match_errors_total", C,
         "User-agent regex matches stopped at PCRE2's match limit (the user agent parsed as if that regex did not match).",
         (double)s.ua_match_errors},
        {"herenow_records_without_visitor_total", C,
         "Records stored without a visitor hash: no salt for their day (Redis unreachable).",
         (double)s.no_salt},
        {"herenow_spool_bytes", G,
         "Spool bytes not yet acknowledged by Redis (all workers).", (double)s.spool_bytes},
        {"herenow_spool_records", G,
         "Records in the spool not yet acknowledged by Redis.", (double)s.spool_records},
        {"herenow_spool_active", G,
         "Workers whose spool holds entries (every flush of theirs goes through it).", (double)s.spool_active},
        {"herenow_spool_full", G,
         "Workers whose spool reached HERENOW_SPOOL_MAX_BYTES (they drop beacons: spool_full).",
         (double)s.spool_full},
        {"herenow_spool_written_records_total", C,
         "Records appended to the spool (Redis unreachable or behind).", (double)s.spool_written},
        {"herenow_spool_replayed_records_total", C,
         "Records replayed from the spool and acknowledged by Redis.", (double)s.spool_replayed},
        {"herenow_spool_corrupt_bytes_total", C,
         "Damaged spool bytes found (a crash mid-write, a bad disk): skipped or moved aside.",
         (double)s.spool_corrupt_bytes},
        {"herenow_spool_write_errors_total", C,
         "Spool appends that failed (the pipeline stayed in memory).", (double)s.spool_write_errors},
        {"herenow_salt_refresh_errors_total", C,
         "Failed reads or writes of the daily salt (hn:salt:<day>).",
         (double)HN_STAT_GET(c->salt_refresh_errors)},
    };
    hn_prom_scalars(out, scalars, HN_ARRAY_LEN(scalars));

    hn_prom_family(out, "herenow_http_responses_total", C, "HTTP answers of the beacon port, by status.");
    for (int i = 0; i < HN_HTTP_CODES; i++) {
        char code[16];
        snprintf(code, sizeof(code), "%d", hn_http_codes[i]);
        hn_prom_u64(out, "herenow_http_responses_total",
                    HN_PROM_L1("code", hn_http_codes[i] ? code : "other"), s.http_responses[i]);
    }

    double le[HN_BATCH_BUCKETS - 1];
    for (int b = 0; b < HN_BATCH_BUCKETS - 1; b++) le[b] = (double)(1u << b);
    hn_prom_family(out, "herenow_batch_records", HN_PROM_HISTOGRAM, "Records per flushed pipeline.");
    hn_prom_histogram(out, "herenow_batch_records", HN_PROM_L0, le, s.batch_hist,
                      HN_BATCH_BUCKETS - 1, (double)s.batch_sum);

    const hn_widgets *t = hn_widgets_acquire(c->widgets, &c->wref);
    const hn_prom_scalar tail[] = {
        {"herenow_widgets", G, "Widgets known to this collector.", (double)hn_widgets_count(t)},
        {"herenow_widget_refresh_errors_total", C, "Failed reads of hn:widgets.",
         (double)HN_STAT_GET(c->widget_refresh_errors)},
        {"herenow_live_trims_total", C, "Trim passes over the live sets run by this node.",
         (double)HN_STAT_GET(c->trims)},
        {"herenow_sessions_trimmed_total", C, "Sessions removed from live sets by this node's trims.",
         (double)HN_STAT_GET(c->trimmed)},
        {"herenow_workers", G, "Worker threads.", (double)c->nworkers},
        {"herenow_up_seconds", G, "Seconds since start.", (double)((hn_now_ms() - c->start_ms) / 1000)},
    };
    hn_prom_scalars(out, tail, HN_ARRAY_LEN(tail));
#undef C
#undef G
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
        hn_buf m;
        hn_buf_init(&m, 16384);
        hn_admin_metrics(c, &m);
        struct evbuffer *b = evbuffer_new();
        evbuffer_add(b, m.p, m.len);
        hn_buf_free(&m);
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
