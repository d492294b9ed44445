/*
 * pg.h: the drain's PostgreSQL side — the worker's connection (session
 * settings, temp tables, partitions), the batch's transaction, and the
 * maintenance worker 0 runs (sweep, partitions ahead, retention).
 *
 * Every failed call logs the error and keeps it in d->last_err; d->data_error
 * says whether it will repeat (a data exception, a constraint other than the
 * unique key, a limit). A broken connection is closed: the next
 * hn_drain_pg_connect makes it again.
 */
#ifndef HN_DRAIN_PG_H
#define HN_DRAIN_PG_H

#include "api/drain/worker.h"

#define HN_DRAIN_BAD (-3)   /* write_batch: PostgreSQL refused the data itself */

/* Connects when not connected (or not set up); HN_OK when ready. */
int  hn_drain_pg_connect(hn_drain_worker *d);
void hn_drain_pg_close(hn_drain_worker *d);

/* Builds entries [lo, hi) of d->batch (batch.h) and writes them in one
 * transaction: HN_OK after COMMIT (*sessions: session rows inserted or
 * updated), HN_AGAIN when a record turned out to be written already (retry
 * as a redelivered batch), HN_DRAIN_BAD when PostgreSQL refused the data
 * (it would again), HN_ERR when PostgreSQL failed; nothing is written but
 * on HN_OK. */
int  hn_drain_pg_write_batch(hn_drain_worker *d, int64_t *sessions);

/* The sweep every HN_DRAIN_SWEEP_EVERY_MS, partitions and retention every
 * HN_DRAIN_MAINT_EVERY_MS; failures are logged and wait for the next time. */
void hn_drain_pg_maintenance(hn_drain_worker *d);

#endif
