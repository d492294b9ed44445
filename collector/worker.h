/*
 * worker.h: a collector worker's state, shared by the files that run on the
 * worker's thread: worker.c (UDP, flushing, lifecycle), http.c (HTTP
 * ingress) and the admission of decoded beacons (admit.c). Nothing here is
 * touched by another thread, except the counters (relaxed atomics, read by
 * the main thread's /metrics) and udp_fd_pub.
 */
#ifndef HN_WORKER_H
#define HN_WORKER_H

#include "collector/collector.h"
#include "collector/enrich.h"
#include "collector/presence.h"
#include "collector/ratelimit.h"
#include "collector/rconn.h"
#include "common/httpguard.h"
#include "common/ids.h"
#include "common/spool.h"
#include "proto/record.h"


struct hn_worker {
    int            id;
    hn_collector  *col;
    pthread_t      thread;
    bool           started;
    _Atomic bool   done;
    struct event_base *base;
    int            udp_fd, tee_fd;
    struct event  *udp_ev, *tick, *stop_ev, *resume_timer, *stop_timer;
    struct timeval tick_tv;
    _Atomic int    udp_fd_pub;    /* the UDP fd for the main thread's SO_MEMINFO, -1 when closed */
    hn_rconn      *rc;

    /* spool (worker.c): while it holds entries, every flush goes through it */
    bool           spool_on;      /* HERENOW_SPOOL_DIR set */
    bool           spool_failing; /* the last append failed (disk full, I/O error) */
    hn_spool       sp;
    uint64_t       sp_roff;       /* next entry to replay */
    uint64_t       sp_aoff;       /* everything before it acknowledged by Redis */
    uint64_t       sp_records;    /* records in the file not yet acknowledged */
    hn_buf         taken;         /* pipelines taken back from a lost connection */
    struct event  *spool_timer;
    struct event  *pump_ev;       /* the replay goes on after the loop looked at the sockets */
    const char    *spool_why;     /* why the last spooling began (log) */
    hn_presence   *pres;
    hn_decoder    *dec;
    hn_batch      *batch;
    hn_rng         rng;
    hn_widgets_ref wref;
    hn_bans_ref    bref;          /* the bans (admit.c) */

    unsigned          nmsg;
    struct mmsghdr   *msgs;
    struct iovec     *iov;
    char             *bufs;
    struct sockaddr_storage *addrs;

    hn_buf    cmds;
    uint32_t  ncmds;
    uint32_t  nshards;
    hn_buf   *shard;            /* packed records per stream shard */
    uint32_t *shard_n;
    uint32_t  flush_records;
    msgpack_packer pk;

    /* HTTP ingress (http.c) */
    struct evhttp *http;
    hn_rl         *rl;
    char          *qscratch;      /* the pixel's percent-decoded query string, a seed body's strings */
    hn_httpguard  *guard;         /* slow requests, accept errors (common/httpguard.h) */
    struct evhttp *https;         /* HERENOW_HTTPS_LISTEN: the same routes over TLS */
    hn_httpguard  *guard_tls;
    hn_enricher    enr;
    hn_rl         *msg_rl;        /* t=msg per session (admit.c), every transport */
    struct hn_chat *chat;         /* chat downlinks, GET /v (chat.h) */

    bool      paused, stopping, udp_open;
    uint64_t  stop_deadline_ms;
    uint64_t  unflushed;
    uint64_t  last_err_log_ms;
    hn_wstats st;
};

/* Counts n beacons of transport tr (hn_transport - 1) as received and
 * dropped for reason r. */
void hn_worker_drop(hn_worker *w, int tr, hn_reason r, unsigned n);
/* Queues one record: stream shard buffer and presence commands. */
void hn_worker_take(hn_worker *w, hn_record *r);
/* Makes sure what was taken is flushed within one tick (HERENOW_BATCH_WAIT_US),
 * or at once when HN_FLUSH_RECORDS are pending. */
void hn_worker_kick(hn_worker *w);
/* Why the worker must refuse beacons now, or HN_R_OK: the spool is full
 * (HN_R_SPOOL_FULL), or there is no spool and Redis is down with
 * HERENOW_REDIS_MAX_PENDING bytes waiting for it (HN_R_REDIS_UNAVAILABLE). */
hn_reason hn_worker_backlogged(const hn_worker *w);

/* The client a batch of beacons came from. */
typedef struct hn_client {
    hn_ip  ip;
    bool   have_ip;
    bool   trusted_relay;     /* UDP from HERENOW_TRUSTED_RELAYS: beacons may carry ua/ip */
    bool   opted_out;         /* HTTP: DNT: 1 or Sec-GPC: 1 */
    hn_str ua;                /* HTTP: the User-Agent header */
} hn_client;

/* What hn_worker_admit did with a batch. */
typedef struct hn_admitted {
    unsigned  accepted;
    unsigned  refused;        /* protocol faults and unknown widgets: the sender's error */
    unsigned  dropped;        /* bots, opted out, Redis unavailable: not the sender's error */
    hn_reason first;          /* the first refusal's reason */
    bool      backlog;        /* refused because Redis is unavailable or the spool full */
    hn_reason backlog_why;    /* HN_R_REDIS_UNAVAILABLE or HN_R_SPOOL_FULL */
    unsigned  msg_limited;    /* chat messages over the session's rate (counted in dropped too) */
    bool      chat;           /* an accepted beacon's widget has chat on (docs/CHAT.md §2) */
    unsigned  msg_banned;     /* chat messages of a banned visitor (counted in dropped too) */
} hn_admitted;

/* Validates, resolves, enriches and queues every beacon of a decoded batch;
 * counts each drop by reason under transport tr. */
hn_admitted hn_worker_admit(hn_worker *w, const hn_widgets *wt, const hn_batch *bt,
                            hn_transport tr, const hn_client *cl, uint64_t now_us);

/* HTTP ingress (http.c). */
int  hn_http_worker_start(hn_worker *w, char *err, size_t cap);
void hn_http_worker_stop(hn_worker *w);

#endif
