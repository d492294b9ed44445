/*
 * worker.h: one drain consumer — a thread with its own PostgreSQL and Redis
 * connections and its own batch (drain.h says how they move records).
 * worker.c runs it; stream.c and pg.c are its Redis and PostgreSQL sides;
 * drain.c starts, stops and sums the workers. Only the worker's thread
 * touches its state, but for the flags (atomics) and the metrics (under mu),
 * which drain.c reads.
 */
#ifndef HN_DRAIN_WORKER_H
#define HN_DRAIN_WORKER_H

#include "api/drain/batch.h"
#include "common/config.h"
#include "common/rcl.h"
#include "proto/keys.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>

#define HN_DRAIN_TRIM_EVERY_MS  1000
#define HN_DRAIN_SWEEP_EVERY_MS 30000
#define HN_DRAIN_MAINT_EVERY_MS 3600000
#define HN_DRAIN_BATCH_BUCKETS  8

/* Upper bounds of herenow_drain_batch_records' buckets; the last is +Inf. */
extern const uint64_t hn_drain_batch_bounds[HN_DRAIN_BATCH_BUCKETS];

typedef struct hn_drain_worker {
    const hn_config *cfg;
    int              index;           /* 0 also trims, measures, sweeps, expires, fills */
    pthread_t        thread;
    atomic_bool      stop;
    atomic_bool      healthy;
    atomic_bool      stopped;

    char             consumer[160];
    hn_redis_cfg     addr;
    int              nshards;
    PGconn          *pg;
    hn_rcl          *rc;
    bool             pg_ready;        /* temp tables made on this connection */

    /* this batch */
    redisReply     **replies;         /* kept until the batch is written */
    size_t           nreplies, cap_replies;
    hn_drain_batch   batch;
    hn_erased        erased;          /* tombstones read so far (pg.c, every transaction) */
    bool             data_error;      /* the latest PostgreSQL error will repeat (see pg.c) */
    char             last_err[200];
    bool             own_pending;     /* read `0` before `>` */
    bool             claim_more;      /* XAUTOCLAIM's cursor did not come back to 0-0 */
    uint64_t         read_us, build_us; /* of the latest batch, for the debug log */
    uint64_t         last_claim_ms, last_trim_ms, last_sweep_ms, last_maint_ms, last_expire_ms;
    uint64_t         last_conc_ms, conc_every_ms; /* concur.c: the next fill after this */
    int64_t          part_lo, part_hi; /* days (since epoch) with partitions made */
    uint64_t         backoff_ms;
    /* legacy.c (worker 0): stream keys of another N, drained until empty;
     * index nshards + i in the batch's entries */
    char           (*legacy)[HN_KEY_CAP];
    int              nlegacy;
    char             legacy_cursor[24]; /* SCAN's, "0": a pass starts */
    int              legacy_master;   /* a cluster: the master SCAN walks now */
    bool             legacy_turn;     /* the next read is a legacy one */
    long             fail_batch;      /* failpoint: at this batch number */
    int              fail_where;      /* 0 none, 1 before commit, 2 after commit */
    long             batches;

    /* metrics (under mu) */
    pthread_mutex_t  mu;
    uint64_t         m_records, m_dups, m_entries, m_batches, m_sessions, m_claimed;
    uint64_t         m_retry_pg, m_retry_redis, m_rejects, m_trimmed, m_swept, m_conflicts;
    uint64_t         m_deleted, m_expired, m_expire_failed, m_erased;
    uint64_t         m_hist[HN_DRAIN_BATCH_BUCKETS];
    uint64_t         m_hist_sum;
    int64_t          g_pending, g_lag_entries, g_legacy;
    double           g_lag_s, g_rate, g_last_batch_ms;
    uint64_t         rate_t0_ms, rate_n0;
} hn_drain_worker;

/* A worker's thread started as consumer "<host>-<pid>-<tag>-<index>"; NULL
 * when the thread could not be made. */
hn_drain_worker *hn_drain_worker_start(const hn_config *cfg, int index,
                                       const hn_redis_cfg *addr, const char *host,
                                       uint64_t tag);
/* After its thread has stopped (stopped set) and been joined. */
void             hn_drain_worker_free(hn_drain_worker *d);
/* HERENOW_DRAIN_FAILPOINT (tests): SIGKILLs the process when the batch
 * number and where (1 before commit, 2 after) are the armed ones. */
void             hn_drain_worker_failpoint(hn_drain_worker *d, int where);

#endif
