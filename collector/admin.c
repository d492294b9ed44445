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
#include "common/sdnotify.h"
#include "common/tls.h"

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
        {.name = "herenow_records_written_total", .type = C,
         .help = "Records whose stream entry Redis acknowledged.", .u = (uint64_t)s.records_written},
        {.name = "herenow_udp_datagrams_total", .type = C, .help = "UDP datagrams read.", .u = (uint64_t)s.datagrams},
        {.name = "herenow_udp_bytes_total", .type = C, .help = "UDP payload bytes read.", .u = (uint64_t)s.bytes},
        {.name = "herenow_udp_kernel_drops_total", .type = C,
         .help = "Datagrams the kernel dropped (receive buffer full).", .u = (uint64_t)s.kernel_drops},
        {.name = "herenow_redis_commands_total", .type = C, .help = "Redis commands acknowledged.", .u = (uint64_t)s.redis_commands},
        {.name = "herenow_redis_errors_total", .type = C, .help = "Redis error replies.", .u = (uint64_t)s.redis_errors},
        {.name = "herenow_redis_disconnects_total", .type = C, .help = "Worker Redis connections lost.",
         .u = (uint64_t)s.redis_disconnects},
        {.name = "herenow_redis_timeouts_total", .type = C,
         .help = "Worker Redis connections dropped because no reply came in time.", .u = (uint64_t)s.redis_timeouts},
        {.name = "herenow_redis_retryable_errors_total", .type = C,
         .help = "Worker Redis connections dropped on an error reply that means not now (LOADING, OOM, MISCONF, READONLY, BUSY, ...): the pipelines are sent again after a backoff, never counted as written.",
         .u = (uint64_t)s.redis_retryable},
        {.name = "herenow_redis_buffered_bytes", .type = G,
         .help = "Command bytes not yet acknowledged by Redis.", .u = (uint64_t)s.redis_buffered},
        {.name = "herenow_redis_connections_up", .type = G, .help = "Worker Redis connections that are up.", .u = (uint64_t)s.redis_up},
        {.name = "herenow_ingress_paused_total", .type = C,
         .help = "Times a worker stopped reading on Redis backpressure.", .u = (uint64_t)s.paused},
        {.name = "herenow_http_connections_total", .type = C, .help = "HTTP connections accepted.",
         .u = (uint64_t)s.http_connections},
        {.name = "herenow_http_incomplete_requests_total", .type = C,
         .help = "HTTP connections closed with a request begun but never completed (timeout, client gone).",
         .u = (uint64_t)s.http_incomplete},
        {.name = "herenow_http_accept_errors_total", .type = C,
         .help = "Times accepting an HTTP connection failed (out of file descriptors): the listener pauses 100 ms.",
         .u = (uint64_t)s.http_accept_errors},
        {.name = "herenow_http_request_timeouts_total", .type = C,
         .help = "HTTP connections closed because a request took longer than HERENOW_HTTP_REQUEST_TIMEOUT_MS to arrive.",
         .u = (uint64_t)s.http_request_timeouts},
        {.name = "herenow_ua_cache_hits_total", .type = C,
         .help = "User agents found in a worker's cache of parsed user agents.", .u = (uint64_t)s.ua_cache_hits},
        {.name = "herenow_ua_cache_misses_total", .type = C,
         .help = "User agents parsed with the uap-core regexes (not in the cache).", .u = (uint64_t)s.ua_cache_misses},
        {.name = "herenow_ua_match_errors_total", .type = C,
         .help = "User-agent regex matches stopped at PCRE2's match limit (the user agent parsed as if that regex did not match).",
         .u = (uint64_t)s.ua_match_errors},
        {.name = "herenow_records_without_visitor_total", .type = C,
         .help = "Records stored without a visitor hash: no salt for their day (Redis unreachable).",
         .u = (uint64_t)s.no_salt},
        {.name = "herenow_spool_bytes", .type = G,
         .help = "Spool bytes not yet acknowledged by Redis (all workers).", .u = (uint64_t)s.spool_bytes},
        {.name = "herenow_spool_records", .type = G,
         .help = "Records in the spool not yet acknowledged by Redis.", .u = (uint64_t)s.spool_records},
        {.name = "herenow_spool_active", .type = G,
         .help = "Workers whose spool holds entries (every flush of theirs goes through it).", .u = (uint64_t)s.spool_active},
        {.name = "herenow_spool_full", .type = G,
         .help = "Workers whose spool reached HERENOW_SPOOL_MAX_BYTES (they drop beacons: spool_full).",
         .u = (uint64_t)s.spool_full},
        {.name = "herenow_spool_written_records_total", .type = C,
         .help = "Records appended to the spool (Redis unreachable or behind).", .u = (uint64_t)s.spool_written},
        {.name = "herenow_spool_replayed_records_total", .type = C,
         .help = "Records replayed from the spool and acknowledged by Redis.", .u = (uint64_t)s.spool_replayed},
        {.name = "herenow_spool_corrupt_bytes_total", .type = C,
         .help = "Damaged spool bytes found (a crash mid-write, a bad disk): skipped or moved aside.",
         .u = (uint64_t)s.spool_corrupt_bytes},
        {.name = "herenow_spool_write_errors_total", .type = C,
         .help = "Spool appends that failed (the pipeline stayed in memory).", .u = (uint64_t)s.spool_write_errors},
        {.name = "herenow_salt_refresh_errors_total", .type = C,
         .help = "Failed reads or writes of the daily salt (hn:salt:<day>).",
         .u = (uint64_t)HN_STAT_GET(c->salt_refresh_errors)},
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
    for (int b = 0; b < HN_BATCH_BUCKETS - 1; b++) le[b] = (uint64_t)(1u << b);
    hn_prom_family(out, "herenow_batch_records", HN_PROM_HISTOGRAM, "Records per flushed pipeline.");
    hn_prom_histogram(out, "herenow_batch_records", HN_PROM_L0, le, s.batch_hist,
                      HN_BATCH_BUCKETS - 1, (uint64_t)s.batch_sum);

    const hn_prom_scalar chat[] = {
        {.name = "herenow_chat_downlinks_open", .type = G,
         .help = "Chat downlinks (GET /v, Server-Sent Events) open.", .u = (uint64_t)s.chat_open},
        {.name = "herenow_chat_downlinks_opened_total", .type = C,
         .help = "Chat downlinks accepted.", .u = (uint64_t)s.chat_opened},
        {.name = "herenow_chat_events_sent_total", .type = C,
         .help = "Chat events (invite, message, close) written to downlinks.", .u = (uint64_t)s.chat_events},
        {.name = "herenow_chat_downlinks_cut_total", .type = C,
         .help = "Chat downlinks closed by the collector because the client did not read (it resumes with Last-Event-ID).",
         .u = (uint64_t)s.chat_closed_slow},
        {.name = "herenow_chat_tail_errors_total", .type = C,
         .help = "Chat tail Redis trouble: failed connects, lost connections, timeouts, error replies.",
         .u = (uint64_t)s.chat_tail_errors},
        {.name = "herenow_chat_tail_reconnects_total", .type = C,
         .help = "Chat tail Redis connections made again after a loss.", .u = (uint64_t)s.chat_tail_reconnects},
        {.name = "herenow_chat_tail_connections_up", .type = G,
         .help = "Chat tail Redis connections up (two per worker that has had a downlink).",
         .u = (uint64_t)s.chat_tail_up},
    };
    hn_prom_scalars(out, chat, HN_ARRAY_LEN(chat));
    hn_prom_family(out, "herenow_chat_downlinks_refused_total", C, "Chat downlinks refused, by reason.");
    for (int i = 0; i < HN_CHAT_REFUSED__COUNT; i++)
        hn_prom_u64(out, "herenow_chat_downlinks_refused_total", HN_PROM_L1("reason", hn_chat_refused_names[i]),
                    s.chat_refused[i]);

    /* before t: ready() acquires the widget table through the same ref,
     * which lets go of an older table it held */
    char why[128];
    int is_ready = ready(c, why, sizeof(why));
    const hn_widgets *t = hn_widgets_acquire(c->widgets, &c->wref);
    const hn_prom_scalar tail[] = {
        {.name = "herenow_ready", .type = G,
         .help = "1 when /readyz answers 200 (ready, or spooling), 0 when it answers 503.",
         .u = (uint64_t)is_ready},
        {.name = "herenow_widgets", .type = G, .help = "Widgets known to this collector.", .u = (uint64_t)hn_widgets_count(t)},
        {.name = "herenow_widget_refresh_errors_total", .type = C, .help = "Failed reads of hn:widgets.",
         .u = (uint64_t)HN_STAT_GET(c->widget_refresh_errors)},
        {.name = "herenow_bans_refresh_errors_total", .type = C, .help = "Failed reads of the bans (hn:bans:*).",
         .u = (uint64_t)HN_STAT_GET(c->bans_refresh_errors)},
        {.name = "herenow_live_trims_total", .type = C, .help = "Trim passes over the live sets run by this node.",
         .u = (uint64_t)HN_STAT_GET(c->trims)},
        {.name = "herenow_sessions_trimmed_total", .type = C, .help = "Sessions removed from live sets by this node's trims.",
         .u = (uint64_t)HN_STAT_GET(c->trimmed)},
        {.name = "herenow_workers", .type = G, .help = "Worker threads.", .u = (uint64_t)c->nworkers},
        {.name = "herenow_up_seconds", .type = G, .help = "Seconds since start.", .u = (uint64_t)((hn_now_ms() - c->start_ms) / 1000)},
    };
    hn_prom_scalars(out, tail, HN_ARRAY_LEN(tail));
#undef C
#undef G
    hn_rcl_metrics(out);            /* Redis Cluster counters (housekeeping); nothing on one server */
    hn_tls_metrics(c->tls, out);    /* HERENOW_HTTPS_LISTEN only */
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

/* systemd (common/sdnotify.h): READY=1 the first time /readyz would say 200. */
static void on_sd_check(evutil_socket_t fd, short what, void *arg) {
    hn_collector *c = arg;
    char why[128];
    (void)fd;
    (void)what;
    if (ready(c, why, sizeof(why)) && hn_sd_ready(why) == HN_OK) event_del(c->sd_timer);
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
    if (hn_sd_enabled()) {
        c->sd_timer = event_new(c->base, -1, EV_PERSIST, on_sd_check, c);
        event_add(c->sd_timer, &(struct timeval){0, 100000});
    }
    return HN_OK;
}
