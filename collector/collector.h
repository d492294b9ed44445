/*
 * collector.h: the collector process: configuration shared read-only by the
 * workers, the workers themselves, the main thread's jobs (admin HTTP,
 * signals) and the housekeeping thread's (widget refresh, salts, trimming).
 *
 *   main thread: admin /metrics /livez /readyz, signals, the stop
 *   housekeeping thread: hn:widgets refresh, daily salts, ZSET trim
 *   worker 0..N-1: own UDP socket (SO_REUSEPORT), own event base, own Redis
 *                  connection; decode → validate → resolve → record → Redis
 */
#ifndef HN_COLLECTOR_H
#define HN_COLLECTOR_H

#include "collector/bans.h"
#include "collector/enrich.h"
#include "collector/widgets.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/httpcache.h"
#include "common/ip.h"
#include "common/net.h"
#include "common/rcl.h"
#include "proto/beacon.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>

#define HN_BATCH_BUCKETS 12      /* records per flush: <=1,2,4,...,1024,+Inf */
#define HN_HTTP_CODES    12      /* the HTTP statuses counted, see hn_http_codes */
#define HN_CHAT_DOWNLINK_PATH "/v"   /* GET /v?k=&s=[&last=]: the chat downlink (docs/CHAT.md §2) */

/* Why a chat downlink was refused (herenow_chat_downlinks_refused_total). */
enum { HN_CHAT_REF_DISABLED, HN_CHAT_REF_BAD_REQUEST, HN_CHAT_REF_FULL, HN_CHAT_REF_RATE,
       HN_CHAT_REF_STOPPING, HN_CHAT_REFUSED__COUNT };
extern const char *const hn_chat_refused_names[HN_CHAT_REFUSED__COUNT];

/* One worker's counters. Written only by the worker (relaxed stores, no
 * locked instructions on the hot path), summed by the main thread. */
typedef struct hn_wstats {
    uint64_t received[3];              /* beacons, by transport (udp, http, pixel) */
    uint64_t accepted[3];
    uint64_t dropped[3][HN_R__COUNT];
    uint64_t datagrams, bytes;
    uint64_t records_written;          /* acknowledged by Redis (stream entry written) */
    uint64_t redis_commands, redis_errors;
    uint64_t redis_disconnects, redis_timeouts;
    uint64_t redis_retryable;          /* connections dropped on LOADING, OOM, ... (groups resent) */
    uint64_t flushes, batch_hist[HN_BATCH_BUCKETS], batch_sum;
    uint64_t kernel_drops;             /* dropped by the kernel before we read (at close) */
    uint64_t paused;                   /* times reading paused on Redis backpressure */
    uint64_t redis_buffered;           /* gauge: bytes not yet acknowledged */
    uint64_t redis_up;                 /* gauge */
    uint64_t http_responses[HN_HTTP_CODES];   /* by hn_http_code_index */
    uint64_t http_connections;         /* accepted */
    uint64_t http_incomplete;          /* closed with a request begun but not answered */
    uint64_t http_request_timeouts;    /* closed by us: the request took too long to arrive */
    uint64_t http_accept_errors;       /* accept failed (out of descriptors): listener paused */
    uint64_t ua_cache_hits, ua_cache_misses;
    uint64_t ua_match_errors;          /* regex matches stopped at PCRE2's match limit */
    uint64_t no_salt;                  /* records without a visitor hash: no salt for the day */
    uint64_t spool_bytes;              /* gauge: spool bytes not yet acknowledged by Redis */
    uint64_t spool_records;            /* gauge: records in the spool not yet acknowledged */
    uint64_t spool_active;             /* gauge: 1 while the worker's spool holds entries */
    uint64_t spool_written;            /* records appended to the spool */
    uint64_t spool_replayed;           /* records replayed from the spool and acknowledged */
    uint64_t spool_corrupt_bytes;      /* damaged spool bytes skipped or cut off */
    uint64_t spool_write_errors;       /* appends that failed (disk full, I/O error) */
    uint64_t spool_full;               /* gauge: 1 while the spool is at HERENOW_SPOOL_MAX_BYTES */
    uint64_t chat_open;                /* gauge: chat downlinks (GET /v) open */
    uint64_t chat_opened;              /* downlinks accepted */
    uint64_t chat_events;              /* SSE events written to downlinks */
    uint64_t chat_refused[HN_CHAT_REFUSED__COUNT];   /* by hn_chat_refused_names */
    uint64_t chat_closed_slow;         /* closed by us: the client did not read */
    uint64_t chat_tail_errors;         /* chat tail: error replies, timeouts, lost connections */
    uint64_t chat_tail_reconnects;     /* chat tail: connections made again after a loss */
    uint64_t chat_tail_up;             /* gauge: chat tail connections up (2 per worker) */
} hn_wstats;

/* The HTTP statuses the collector answers, for herenow_http_responses_total. */
extern const int hn_http_codes[HN_HTTP_CODES];      /* 200, 204, 304, 400, ..., 0 = other */
int hn_http_code_index(int code);

/* The widget script as served: the paths substituted, gzipped once. */
typedef struct hn_script {
    char   *js, *gz;
    size_t  js_len, gz_len;
    char    etag[HN_ETAG_CAP], etag_gz[HN_ETAG_CAP];   /* hn_http_etags */
} hn_script;

#define HN_STAT_ADD(x, n) \
    __atomic_store_n(&(x), __atomic_load_n(&(x), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)
#define HN_STAT_SET(x, v) __atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define HN_STAT_GET(x) __atomic_load_n(&(x), __ATOMIC_RELAXED)

typedef struct hn_worker hn_worker;
struct evbuffer;
struct evhttp;

typedef struct hn_collector {
    hn_config          cfg;
    hn_redis_cfg       rcfg;           /* HERENOW_REDIS_URL: one server or a cluster's seeds */
    hn_redis_addr      raddr;          /* rcfg.seed[0] */
    hn_cidrs           relays;
    hn_cidrs           proxies;        /* HERENOW_TRUSTED_PROXIES */
    hn_ipmode          ipmode;
    hn_addr            udp_addr;
    bool               udp_on;
    hn_addr            admin_addr;
    hn_addr            http_addr;
    bool               http_on;
    hn_addr            https_addr;
    bool               https_on;      /* HERENOW_HTTPS_LISTEN: the same routes over TLS */
    struct hn_tls     *tls;           /* its certificate, reloaded on SIGHUP (common/tls.h) */
    hn_script          script;
    hn_script          chat_script;    /* HERENOW_CHAT_SCRIPT_PATH */
    _Atomic int64_t    chat_open;      /* chat downlinks open, all workers (HERENOW_CHAT_MAX_CONNS) */
    hn_uap            *uap;
    hn_geo            *geo;
    hn_salt_holder    *salts;
    hn_enrich_cfg      enrich;
    uint64_t           salt_refresh_errors;    /* HN_STAT_*: written by housekeeping */
    hn_widgets_pub    *widgets;
    hn_bans_pub       *bans;           /* docs/RULES.md §5 (bans.h) */
    hn_bans_loader    *bans_loader;    /* housekeeping thread's */
    struct event      *bans_timer;
    uint64_t           bans_refresh_errors;   /* HN_STAT_* */
    int                nworkers;
    hn_worker        **workers;
    struct event_base *base;
    struct evhttp     *admin;
    struct event      *sd_timer;       /* NOTIFY_SOCKET: checks readiness until READY=1 is sent */
    struct event      *sig_term, *sig_int, *sig_hup, *refresh_timer, *trim_timer;
    struct event_base *hk_base;        /* housekeeping thread: widget refresh, salts, trims */
    pthread_t          hk_thread;
    hn_rcl            *redis;          /* the housekeeping thread's blocking connection */
    hn_widgets_ref     wref;           /* main thread's (admin) */
    hn_widgets_ref     hk_wref;        /* housekeeping thread's */
    _Atomic bool       stopping;
    bool               widgets_empty_warned;
    int                workers_running;
    uint64_t           widget_refreshes, widget_refresh_errors, trims, trimmed;   /* HN_STAT_* */
    uint64_t           unflushed_at_exit;
    uint64_t           start_ms;
    char               node_id[128];
} hn_collector;

/* Creates sockets, threads, timers; HN_ERR with a reason on a bad setting or
 * a socket that cannot be bound. */
int  hn_collector_init(hn_collector *c, hn_config *cfg, char *err, size_t cap);
/* Runs the main loop until SIGTERM/SIGINT; returns the exit code. */
int  hn_collector_run(hn_collector *c);
void hn_collector_free(hn_collector *c);

/* Workers (collector/worker.c). */
hn_worker *hn_worker_create(hn_collector *c, int id, char *err, size_t cap);
int        hn_worker_start(hn_worker *w);
void       hn_worker_stop(hn_worker *w);        /* from the main thread: drain and flush */
void       hn_worker_join(hn_worker *w);
bool       hn_worker_done(const hn_worker *w);  /* its thread has finished */
void       hn_worker_destroy(hn_worker *w);
const hn_wstats *hn_worker_stats(const hn_worker *w);
uint64_t   hn_worker_unflushed(const hn_worker *w);
/* Appends the valid entries of another spool file (a worker id this
 * process does not have: the thread count went down) to the worker's own,
 * then removes it. Before the workers start. */
int        hn_worker_adopt_spool(hn_worker *w, const char *path, char *err, size_t cap);
/* Datagrams the kernel dropped at the worker's socket (SO_MEMINFO), read
 * from the main thread at scrape time. */
uint64_t   hn_worker_kernel_drops(hn_worker *w);

/* The widget script (collector/script.c): embedded at build time. */
int  hn_script_build(hn_script *s, const char *beacon_path, const char *pixel_path,
                     const char *script_path, const char *chat_path, char *err, size_t cap);
/* The chat script (docs/CHAT.md), likewise. */
int  hn_script_build_chat(hn_script *s, const char *beacon_path, const char *pixel_path,
                          const char *chat_script_path, char *err, size_t cap);
void hn_script_free(hn_script *s);

/* Admin HTTP (collector/admin.c). */
int  hn_admin_start(hn_collector *c, char *err, size_t cap);
void hn_admin_metrics(hn_collector *c, hn_buf *out);

#endif
