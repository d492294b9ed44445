/*
 * drain.c: the drain's public side (drain.h) — the consumers started and
 * stopped together, their health, and their metrics summed.
 */
#include "api/drain/drain.h"

#include "api/drain/worker.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/prom.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct hn_drain {
    int               n;
    hn_drain_worker **w;
};

hn_drain *hn_drain_start(const hn_config *cfg) {
    if (strcmp(cfg->drain, "on") != 0) return NULL;
    hn_redis_cfg addr;
    char err[256];
    if (hn_redis_cfg_parse(cfg->redis_url, &addr, err, sizeof(err)) != HN_OK) {
        hn_error("event=drain_bad_redis_url err='%s'", err);
        return NULL;
    }
    addr.retry_ms = (int)cfg->redis_retry_ms;
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
        t.m_erased += d->m_erased;
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
        t.m_expired += d->m_expired;
        t.m_expire_failed += d->m_expire_failed;
        for (int k = 0; k < HN_DRAIN_BATCH_BUCKETS; k++) t.m_hist[k] += d->m_hist[k];
        t.m_hist_sum += d->m_hist_sum;
        t.g_rate += d->g_rate;
        if (d->g_last_batch_ms > t.g_last_batch_ms) t.g_last_batch_ms = d->g_last_batch_ms;
        if (i == 0) {
            t.g_pending = d->g_pending;
            t.g_lag_entries = d->g_lag_entries;
            t.g_lag_s = d->g_lag_s;
            t.g_legacy = d->g_legacy;
        }
        pthread_mutex_unlock(&d->mu);
    }
    hn_drain_worker *d = &t;
#define C HN_PROM_COUNTER
#define G HN_PROM_GAUGE
    const hn_prom_scalar scalars[] = {
        {.name = "herenow_drain_records_total", .type = C, .help = "Records written to PostgreSQL (inserted rows).",
         .u = d->m_records},
        {.name = "herenow_drain_duplicates_total", .type = C,
         .help = "Records read again that were already in PostgreSQL (redelivery).", .u = d->m_dups},
        {.name = "herenow_drain_erased_total", .type = C,
         .help = "Records not written because their visitor or session was erased after they were received.",
         .u = d->m_erased},
        {.name = "herenow_drain_entries_total", .type = C, .help = "Stream entries written to PostgreSQL and acknowledged.",
         .u = d->m_entries},
        {.name = "herenow_drain_batches_total", .type = C, .help = "Batches committed.", .u = d->m_batches},
        {.name = "herenow_drain_consumers", .type = G, .help = "Drain consumers (threads) in this process.", .u = (uint64_t)dr->n},
        {.name = "herenow_drain_sessions_updated_total", .type = C, .help = "Session rows inserted or updated.",
         .u = d->m_sessions},
        {.name = "herenow_drain_claimed_total", .type = C,
         .help = "Entries claimed from consumers that stopped (XAUTOCLAIM).", .u = d->m_claimed},
    };
    hn_prom_scalars(out, scalars, HN_ARRAY_LEN(scalars));
    hn_prom_family(out, "herenow_drain_retries_total", C,
                   "Failed cycles retried, by the server that failed.");
    hn_prom_u64(out, "herenow_drain_retries_total", HN_PROM_L1("server", "postgresql"), d->m_retry_pg);
    hn_prom_u64(out, "herenow_drain_retries_total", HN_PROM_L1("server", "redis"), d->m_retry_redis);
    const hn_prom_scalar more[] = {
        {.name = "herenow_drain_rejects_total", .type = C,
         .help = "Stream entries that did not decode (kept in drain_rejects).", .u = d->m_rejects},
        {.name = "herenow_drain_conflicts_total", .type = C,
         .help = "Batches that met a record written meanwhile and were rebuilt without it.",
         .u = d->m_conflicts},
        {.name = "herenow_drain_entries_deleted_total", .type = C,
         .help = "Pending entries found deleted from the stream (their records are lost: alarm).",
         .u = d->m_deleted},
        {.name = "herenow_drain_trimmed_total", .type = C,
         .help = "Stream entries removed by XTRIM MINID behind the group's progress.", .u = d->m_trimmed},
        {.name = "herenow_drain_sessions_swept_total", .type = C,
         .help = "Sessions marked inactive after the live window without an end.", .u = d->m_swept},
        {.name = "herenow_drain_chat_invitations_expired_total", .type = C,
         .help = "Chat invitations expired unanswered (HERENOW_CHAT_INVITE_TTL_S).", .u = d->m_expired},
        {.name = "herenow_drain_chat_expire_refused_total", .type = C,
         .help = "Expired invitations whose Redis update was refused (a key of another type; logged).",
         .u = d->m_expire_failed},
        {.name = "herenow_drain_pending", .type = G, .help = "Entries delivered to the group but not yet acknowledged.",
         .f = (double)d->g_pending, .real = true},
        {.name = "herenow_drain_lag_entries", .type = G, .help = "Entries not yet in PostgreSQL (undelivered + pending).",
         .f = (double)d->g_lag_entries, .real = true},
        {.name = "herenow_drain_lag_seconds", .type = G, .help = "Age of the oldest entry not yet in PostgreSQL.",
         .f = d->g_lag_s, .real = true},
        {.name = "herenow_drain_legacy_streams", .type = G,
         .help = "Legacy stream keys (names of another HERENOW_STREAM_SHARDS) still being drained.",
         .f = (double)d->g_legacy, .real = true},
        {.name = "herenow_drain_records_per_second", .type = G,
         .help = "Records written per second, over the last 5 s or more.", .f = d->g_rate, .real = true},
        {.name = "herenow_drain_last_batch_seconds", .type = G,
         .help = "Time the latest batch took, from its read to its acknowledgement.",
         .f = d->g_last_batch_ms / 1000.0, .real = true},
    };
    hn_prom_scalars(out, more, HN_ARRAY_LEN(more));
#undef C
#undef G
    double le[HN_DRAIN_BATCH_BUCKETS - 1];
    for (int i = 0; i < HN_DRAIN_BATCH_BUCKETS - 1; i++) le[i] = (double)hn_drain_batch_bounds[i];
    hn_prom_family(out, "herenow_drain_batch_records", HN_PROM_HISTOGRAM, "Records per batch.");
    hn_prom_histogram(out, "herenow_drain_batch_records", HN_PROM_L0, le, d->m_hist,
                      HN_DRAIN_BATCH_BUCKETS - 1, d->m_hist_sum);
}
