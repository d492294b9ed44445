/*
 * drain.c: the drain's public side (drain.h) — the consumers started and
 * stopped together, their health, and their metrics summed.
 */
#include "api/drain/drain.h"

#include "api/drain/worker.h"
#include "common/ids.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct hn_drain {
    int               n;
    hn_drain_worker **w;
};

hn_drain *hn_drain_start(const hn_config *cfg) {
    if (strcmp(cfg->drain, "on") != 0) return NULL;
    hn_redis_addr addr;
    char err[256];
    if (hn_redis_addr_parse(cfg->redis_url, &addr, err, sizeof(err)) != HN_OK) {
        hn_error("event=drain_bad_redis_url err='%s'", err);
        return NULL;
    }
    char host[64] = "";
    if (cfg->node_id && cfg->node_id[0]) snprintf(host, sizeof(host), "%s", cfg->node_id);
    else if (gethostname(host, sizeof(host) - 1) != 0) snprintf(host, sizeof(host), "api");
    hn_rng rng;
    hn_rng_seed(&rng);
    uint64_t tag = hn_rng_next(&rng) & 0xffffffffu;

    hn_drain *dr = hn_xcalloc(1, sizeof(*dr));
    dr->w = hn_xcalloc((size_t)cfg->drain_threads, sizeof(*dr->w));
    for (int i = 0; i < (int)cfg->drain_threads; i++) {
        hn_drain_worker *d = hn_drain_worker_start(cfg, i, &addr, host, tag);
        if (d == NULL) break;
        dr->w[dr->n++] = d;
    }
    if (dr->n == 0) {
        free(dr->w);
        free(dr);
        return NULL;
    }
    hn_info("event=drain_started consumers=%d consumer=%s shards=%lld batch=%lld", dr->n,
            dr->w[0]->consumer, (long long)cfg->stream_shards, (long long)cfg->drain_batch);
    return dr;
}

void hn_drain_request_stop(hn_drain *dr) {
    if (dr == NULL) return;
    for (int i = 0; i < dr->n; i++) atomic_store(&dr->w[i]->stop, true);
}

int hn_drain_stop(hn_drain *dr, int timeout_ms) {
    if (dr == NULL) return HN_OK;
    hn_drain_request_stop(dr);
    int64_t wait = timeout_ms;
    if (wait < dr->w[0]->cfg->drain_block_ms + 500) wait = dr->w[0]->cfg->drain_block_ms + 500;
    uint64_t deadline = hn_mono_ms() + (uint64_t)wait;
    int rc = HN_OK;
    for (int i = 0; i < dr->n; i++) {
        hn_drain_worker *d = dr->w[i];
        while (!atomic_load(&d->stopped) && hn_mono_ms() < deadline) usleep(5000);
        if (!atomic_load(&d->stopped)) {
            hn_warn("event=drain_stop_timeout consumer=%s", d->consumer);
            rc = HN_ERR;   /* the thread still runs: leave its memory alone */
            continue;
        }
        pthread_join(d->thread, NULL);
        hn_drain_worker_free(d);
        dr->w[i] = NULL;
    }
    if (rc == HN_OK) {
        free(dr->w);
        free(dr);
    }
    return rc;
}

bool hn_drain_healthy(hn_drain *dr) {
    if (dr == NULL) return true;
    for (int i = 0; i < dr->n; i++)
        if (dr->w[i] && !atomic_load(&dr->w[i]->healthy)) return false;
    return true;
}

void hn_drain_metrics(hn_drain *dr, hn_buf *out) {
    if (dr == NULL) return;
    /* counters summed over the consumers; gauges of the stream from the
     * first, which measures them */
    hn_drain_worker t = {0};
    for (int i = 0; i < dr->n; i++) {
        hn_drain_worker *d = dr->w[i];
        if (d == NULL) continue;
        pthread_mutex_lock(&d->mu);
        t.m_records += d->m_records;
        t.m_dups += d->m_dups;
        t.m_entries += d->m_entries;
        t.m_batches += d->m_batches;
        t.m_sessions += d->m_sessions;
        t.m_claimed += d->m_claimed;
        t.m_retry_pg += d->m_retry_pg;
        t.m_retry_redis += d->m_retry_redis;
        t.m_rejects += d->m_rejects;
        t.m_trimmed += d->m_trimmed;
        t.m_swept += d->m_swept;
        t.m_conflicts += d->m_conflicts;
        t.m_deleted += d->m_deleted;
        for (int k = 0; k < HN_DRAIN_BATCH_BUCKETS; k++) t.m_hist[k] += d->m_hist[k];
        t.m_hist_sum += d->m_hist_sum;
        t.g_rate += d->g_rate;
        if (d->g_last_batch_ms > t.g_last_batch_ms) t.g_last_batch_ms = d->g_last_batch_ms;
        if (i == 0) {
            t.g_pending = d->g_pending;
            t.g_lag_entries = d->g_lag_entries;
            t.g_lag_s = d->g_lag_s;
        }
        pthread_mutex_unlock(&d->mu);
    }
    hn_drain_worker *d = &t;
    hn_buf_printf(out,
        "# HELP herenow_drain_records_total Records written to PostgreSQL (inserted rows).\n"
        "# TYPE herenow_drain_records_total counter\n"
        "herenow_drain_records_total %llu\n"
        "# HELP herenow_drain_duplicates_total Records read again that were already in PostgreSQL (redelivery).\n"
        "# TYPE herenow_drain_duplicates_total counter\n"
        "herenow_drain_duplicates_total %llu\n"
        "# TYPE herenow_drain_entries_total counter\n"
        "herenow_drain_entries_total %llu\n"
        "# TYPE herenow_drain_batches_total counter\n"
        "herenow_drain_batches_total %llu\n"
        "# HELP herenow_drain_consumers Drain consumers (threads) in this process.\n"
        "# TYPE herenow_drain_consumers gauge\n"
        "herenow_drain_consumers %d\n"
        "# HELP herenow_drain_sessions_updated_total Session rows inserted or updated.\n"
        "# TYPE herenow_drain_sessions_updated_total counter\n"
        "herenow_drain_sessions_updated_total %llu\n"
        "# HELP herenow_drain_claimed_total Entries claimed from consumers that stopped (XAUTOCLAIM).\n"
        "# TYPE herenow_drain_claimed_total counter\n"
        "herenow_drain_claimed_total %llu\n"
        "# HELP herenow_drain_retries_total Failed cycles retried, by the server that failed.\n"
        "# TYPE herenow_drain_retries_total counter\n"
        "herenow_drain_retries_total{server=\"postgresql\"} %llu\n"
        "herenow_drain_retries_total{server=\"redis\"} %llu\n"
        "# HELP herenow_drain_rejects_total Stream entries that did not decode (kept in drain_rejects).\n"
        "# TYPE herenow_drain_rejects_total counter\n"
        "herenow_drain_rejects_total %llu\n"
        "# HELP herenow_drain_conflicts_total Batches that met a record written meanwhile and were rebuilt without it.\n"
        "# TYPE herenow_drain_conflicts_total counter\n"
        "herenow_drain_conflicts_total %llu\n"
        "# HELP herenow_drain_entries_deleted_total Pending entries found deleted from the stream (their records are lost: alarm).\n"
        "# TYPE herenow_drain_entries_deleted_total counter\n"
        "herenow_drain_entries_deleted_total %llu\n"
        "# TYPE herenow_drain_trimmed_total counter\n"
        "herenow_drain_trimmed_total %llu\n"
        "# HELP herenow_drain_sessions_swept_total Sessions marked inactive after the live window without an end.\n"
        "# TYPE herenow_drain_sessions_swept_total counter\n"
        "herenow_drain_sessions_swept_total %llu\n"
        "# HELP herenow_drain_pending Entries delivered to the group but not yet acknowledged.\n"
        "# TYPE herenow_drain_pending gauge\n"
        "herenow_drain_pending %lld\n"
        "# HELP herenow_drain_lag_entries Entries not yet in PostgreSQL (undelivered + pending).\n"
        "# TYPE herenow_drain_lag_entries gauge\n"
        "herenow_drain_lag_entries %lld\n"
        "# HELP herenow_drain_lag_seconds Age of the oldest entry not yet in PostgreSQL.\n"
        "# TYPE herenow_drain_lag_seconds gauge\n"
        "herenow_drain_lag_seconds %.3f\n"
        "# HELP herenow_drain_records_per_second Records written per second, over the last 5 s or more.\n"
        "# TYPE herenow_drain_records_per_second gauge\n"
        "herenow_drain_records_per_second %.1f\n"
        "# TYPE herenow_drain_last_batch_ms gauge\n"
        "herenow_drain_last_batch_ms %.1f\n"
        "# HELP herenow_drain_batch_records Records per batch.\n"
        "# TYPE herenow_drain_batch_records histogram\n",
        (unsigned long long)d->m_records, (unsigned long long)d->m_dups,
        (unsigned long long)d->m_entries, (unsigned long long)d->m_batches, dr->n,
        (unsigned long long)d->m_sessions, (unsigned long long)d->m_claimed,
        (unsigned long long)d->m_retry_pg, (unsigned long long)d->m_retry_redis,
        (unsigned long long)d->m_rejects, (unsigned long long)d->m_conflicts,
        (unsigned long long)d->m_deleted, (unsigned long long)d->m_trimmed,
        (unsigned long long)d->m_swept, (long long)d->g_pending, (long long)d->g_lag_entries,
        d->g_lag_s, d->g_rate, d->g_last_batch_ms);
    uint64_t cum = 0;
    for (int i = 0; i < HN_DRAIN_BATCH_BUCKETS; i++) {
        cum += d->m_hist[i];
        if (hn_drain_batch_bounds[i] == UINT64_MAX)
            hn_buf_printf(out, "herenow_drain_batch_records_bucket{le=\"+Inf\"} %llu\n",
                          (unsigned long long)cum);
        else
            hn_buf_printf(out, "herenow_drain_batch_records_bucket{le=\"%llu\"} %llu\n",
                          (unsigned long long)hn_drain_batch_bounds[i], (unsigned long long)cum);
    }
    hn_buf_printf(out, "herenow_drain_batch_records_sum %llu\nherenow_drain_batch_records_count %llu\n",
                  (unsigned long long)d->m_hist_sum, (unsigned long long)cum);
}
