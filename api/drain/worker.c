/*
 * worker.c: one drain consumer's thread (worker.h) — its cycle (read, write,
 * ack), the retries with backoff, the isolation of a batch PostgreSQL
 * refuses, the failpoints of the tests, and its share of the metrics.
 */
#include "api/drain/worker.h"

#include "api/drain/concur.h"
#include "api/drain/expire.h"
#include "api/drain/legacy.h"
#include "api/drain/pg.h"
#include "api/drain/stream.h"
#include "common/log.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

const uint64_t hn_drain_batch_bounds[HN_DRAIN_BATCH_BUCKETS] = {1, 10, 100, 1000, 5000, 20000,
                                                                100000, UINT64_MAX};

static void batch_reset(hn_drain_worker *d) {
    hn_drain_stream_release(d);
    hn_drain_batch_reset(&d->batch);
}

static void account(hn_drain_worker *d, int64_t inserted, int64_t sessions, double ms) {
    const hn_drain_batch *b = &d->batch;
    pthread_mutex_lock(&d->mu);
    d->m_batches++;
    d->m_entries += b->nentries;
    d->m_records += (uint64_t)inserted;
    d->m_dups += b->nrepeats;
    d->m_erased += b->nerased;
    d->m_sessions += (uint64_t)sessions;
    d->m_rejects += b->nrejects;
    for (int i = 0; i < HN_DRAIN_BATCH_BUCKETS; i++)
        if (b->nrecords <= hn_drain_batch_bounds[i]) { d->m_hist[i]++; break; }
    d->m_hist_sum += b->nrecords;
    d->g_last_batch_ms = ms;
    uint64_t now = hn_mono_ms();
    if (d->rate_t0_ms == 0) { d->rate_t0_ms = now; d->rate_n0 = d->m_records; }
    if (now - d->rate_t0_ms >= 5000) {
        d->g_rate = (double)(d->m_records - d->rate_n0) * 1000.0 / (double)(now - d->rate_t0_ms);
        d->rate_t0_ms = now;
        d->rate_n0 = d->m_records;
    }
    pthread_mutex_unlock(&d->mu);
}

static void backoff(hn_drain_worker *d, bool pg) {
    pthread_mutex_lock(&d->mu);
    if (pg) d->m_retry_pg++;
    else d->m_retry_redis++;
    pthread_mutex_unlock(&d->mu);
    atomic_store(&d->healthy, false);
    d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : 50;
    if (d->backoff_ms > (uint64_t)d->cfg->drain_retry_max_ms)
        d->backoff_ms = (uint64_t)d->cfg->drain_retry_max_ms;
    for (uint64_t waited = 0; waited < d->backoff_ms && !atomic_load(&d->stop); waited += 10)
        usleep(10000);
}

/* A batch that PostgreSQL refuses whole, again and again (write_batch
 * returned HN_DRAIN_BAD): written one entry per transaction, so that only the
 * entries it refuses go to drain_rejects (with the error) and everything
 * else is written. Slow, and only ever for such a batch. HN_OK when every
 * entry was written or rejected and acknowledged. */
static int isolate(hn_drain_worker *d, int64_t *sessions) {
    hn_drain_batch *b = &d->batch;
    size_t n = b->nentries, records = 0, repeats = 0, erased = 0;
    int rc = HN_OK;
    hn_warn("event=drain_isolating entries=%zu err='%s'", n, d->last_err);
    for (size_t i = 0; i < n; i++) {
        b->lo = i;
        b->hi = i + 1;
        b->redelivered = true;
        int w = hn_drain_pg_write_batch(d, sessions);
        if (w == HN_DRAIN_BAD) {
            hn_drain_batch_reject(b, &b->entries[i], d->last_err);
            w = hn_drain_pg_write_batch(d, sessions);
        }
        /* an erased visitor's sessions leave Redis before the ack, as in a
         * whole batch (each entry's write finds its own) */
        if (w == HN_OK) hn_drain_stream_forget(d);
        if (w != HN_OK || hn_drain_stream_ack(d) != HN_OK) {
            rc = HN_ERR;
            break;
        }
        records += b->nrecords;
        repeats += b->nrepeats;
        erased += b->nerased;
    }
    b->lo = 0;
    b->hi = n;
    b->nrecords = records;
    b->nrepeats = repeats;
    b->nerased = erased;
    return rc;
}

/* One cycle. */
static void cycle(hn_drain_worker *d) {
    hn_drain_batch *b = &d->batch;
    if (hn_drain_stream_connect(d) != HN_OK) { backoff(d, false); return; }
    /* measured (and trimmed) while PostgreSQL is down too: that is when the
     * lag matters */
    uint64_t now = hn_mono_ms();
    if (d->index == 0 && now - d->last_trim_ms >= HN_DRAIN_TRIM_EVERY_MS) {
        d->last_trim_ms = now;
        hn_drain_stream_trim(d);
        hn_drain_legacy_tick(d);
        if (d->rc == NULL) { backoff(d, false); return; }
    }
    if (hn_drain_pg_connect(d) != HN_OK) { backoff(d, true); return; }
    if (d->index == 0 && (now - d->last_sweep_ms >= HN_DRAIN_SWEEP_EVERY_MS ||
                          now - d->last_maint_ms >= HN_DRAIN_MAINT_EVERY_MS))
        hn_drain_pg_maintenance(d);
    if (d->index == 0 && hn_drain_expire(d) < 0 && (d->pg == NULL || d->rc == NULL)) {
        /* a server went away in the middle: wait as for any other failure */
        backoff(d, d->pg == NULL);
        return;
    }
    if (d->index == 0 && hn_drain_concurrency(d) < 0 && d->pg == NULL) {
        backoff(d, true);
        return;
    }

    batch_reset(d);
    now = hn_mono_ms();
    int got;
    if (d->own_pending) {
        got = hn_drain_stream_read(d, "0", false);
        b->redelivered = true;
        if (got == HN_OK && b->nentries == 0) d->own_pending = false;
    } else if (d->legacy_turn) {
        /* legacy stream keys (worker 0, legacy.h): their records may be in
         * PostgreSQL already (a spool replayed, a drain of the old N) */
        got = hn_drain_legacy_read(d);
        b->redelivered = true;
    } else if (d->claim_more || now - d->last_claim_ms >= (uint64_t)d->cfg->drain_claim_idle_ms / 2) {
        d->last_claim_ms = now;
        d->claim_more = false;
        got = hn_drain_stream_claim(d);
        b->redelivered = true;
    } else {
        /* new entries: more reads while they come full, up to the byte
         * budget, so that a batch is large however small the collector's
         * entries are (a session in the batch costs one upsert whatever
         * number of its records the batch holds) */
        b->redelivered = false;
        size_t before = 0;
        got = hn_drain_stream_read(d, ">", true);
        while (got == HN_OK && b->nentries - before >= (size_t)d->cfg->drain_batch &&
               b->bytes < (size_t)d->cfg->drain_batch_bytes) {
            before = b->nentries;
            got = hn_drain_stream_read(d, ">", false);
        }
    }
    if (got != HN_OK) { d->own_pending = true; backoff(d, false); return; }

    if (b->nentries > 0) {
        uint64_t t0 = hn_mono_ms();
        int64_t sessions = 0;
        d->batches++;
        b->lo = 0;
        b->hi = b->nentries;
        bool acked = false;
        int wrc = hn_drain_pg_write_batch(d, &sessions);
        if (wrc == HN_AGAIN) {
            /* another consumer wrote some of these meanwhile: once more,
             * leaving out what is there */
            pthread_mutex_lock(&d->mu);
            d->m_conflicts++;
            pthread_mutex_unlock(&d->mu);
            b->redelivered = true;
            wrc = hn_drain_pg_write_batch(d, &sessions);
        }
        if (wrc == HN_DRAIN_BAD) {
            wrc = isolate(d, &sessions);
            acked = wrc == HN_OK;
        }
        if (wrc != HN_OK) {
            /* nothing committed: the entries stay pending for us */
            d->own_pending = true;
            backoff(d, true);
            return;
        }
        /* before the ack: a stop in between redelivers the batch, and the
         * removal is made again */
        if (!acked) hn_drain_stream_forget(d);
        if (!acked && hn_drain_stream_ack(d) != HN_OK) {
            /* committed but not acked: redelivery inserts nothing */
            d->own_pending = true;
            backoff(d, false);
            return;
        }
        account(d, (int64_t)b->nrecords, sessions, (double)(hn_mono_ms() - t0));
        /* after a claim or own-pending read there may be more of them */
        if (b->nentries >= (size_t)d->cfg->drain_batch) d->own_pending = true;
    }
    d->backoff_ms = 0;
    atomic_store(&d->healthy, true);
}

static void *worker_main(void *arg) {
    hn_drain_worker *d = arg;
    while (!atomic_load(&d->stop)) cycle(d);
    batch_reset(d);
    atomic_store(&d->stopped, true);
    return NULL;
}

/* HERENOW_DRAIN_FAILPOINT: before_commit[:N] or after_commit[:N] (N: the
 * batch number, 1 by default). */
static void parse_failpoint(hn_drain_worker *d, const char *fp) {
    d->fail_where = 0;
    if (fp == NULL || *fp == '\0') return;
    const char *colon = strchr(fp, ':');
    size_t n = colon ? (size_t)(colon - fp) : strlen(fp);
    if (n == 13 && strncmp(fp, "before_commit", n) == 0) d->fail_where = 1;
    else if (n == 12 && strncmp(fp, "after_commit", n) == 0) d->fail_where = 2;
    d->fail_batch = colon ? atol(colon + 1) : 1;
    if (d->fail_batch < 1) d->fail_batch = 1;
    if (d->fail_where)
        hn_warn("event=drain_failpoint_armed where=%.*s batch=%ld", (int)n, fp, d->fail_batch);
}

void hn_drain_worker_failpoint(hn_drain_worker *d, int where) {
    if (d->fail_where == where && d->batches == d->fail_batch) {
        hn_warn("event=drain_failpoint where=%s batch=%ld",
                where == 1 ? "before_commit" : "after_commit", d->batches);
        kill(getpid(), SIGKILL);
    }
}

void hn_drain_worker_free(hn_drain_worker *d) {
    hn_drain_pg_close(d);
    hn_drain_stream_close(d);
    hn_drain_legacy_free(d);
    hn_drain_batch_free(&d->batch);
    hn_erased_free(&d->erased);
    free(d->replies);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

hn_drain_worker *hn_drain_worker_start(const hn_config *cfg, int index,
                                       const hn_redis_cfg *addr, const char *host,
                                       uint64_t tag) {
    hn_drain_worker *d = hn_xcalloc(1, sizeof(*d));
    d->cfg = cfg;
    d->index = index;
    d->nshards = (int)cfg->stream_shards;
    d->addr = *addr;
    snprintf(d->consumer, sizeof(d->consumer), "%s-%d-%08llx-%d", host, (int)getpid(),
             (unsigned long long)tag, index);
    parse_failpoint(d, cfg->drain_failpoint);
    hn_drain_batch_init(&d->batch);
    d->batch.erased = &d->erased;
    pthread_mutex_init(&d->mu, NULL);
    /* last_claim_ms = 0: claim on the first cycle, so that a restarted
     * process picks up the work of the one that died */
    if (pthread_create(&d->thread, NULL, worker_main, d) != 0) {
        hn_error("event=drain_thread_failed");
        hn_drain_worker_free(d);
        return NULL;
    }
    return d;
}

