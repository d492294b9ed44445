/*
 * concur.h: the concurrency route's per-minute rollup is filled
 * (sql/006_concurrency_minutes.sql, docs/API.md concurrency). Worker 0 of
 * each api process's drain runs it between batches, over the worker's own
 * PostgreSQL connection.
 */
#ifndef HN_DRAIN_CONCUR_H
#define HN_DRAIN_CONCUR_H

#include "api/drain/worker.h"

/* How often the drain fills settled minutes; sooner (HN_DRAIN_CONC_MORE_MS)
 * while a backlog is left, later (HN_DRAIN_CONC_FAIL_MS) after an error. */
#define HN_DRAIN_CONC_EVERY_MS 5000
#define HN_DRAIN_CONC_MORE_MS  500
#define HN_DRAIN_CONC_FAIL_MS  60000
/* Per call: minutes per widget at most (a backfill of a day of a busy
 * widget goes in several calls, the drain's batches in between), and the
 * time after which no further widget is started. */
#define HN_DRAIN_CONC_MINUTES   180
#define HN_DRAIN_CONC_BUDGET_MS 250

/* When the time has come (d->last_conc_ms): one hn_fill_concurrency call.
 * Returns the minutes filled, or -1 when PostgreSQL failed (logged; the
 * next call does it again, nothing half done is kept). Needs d->pg. */
int64_t hn_drain_concurrency(hn_drain_worker *d);

#endif
