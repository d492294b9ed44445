/*
 * drain.h: the drain — moves records from the Redis streams into
 * PostgreSQL, each exactly once (DESIGN.md §4). The only header of
 * api/drain/ that the rest of herenow-api includes.
 *
 * HERENOW_DRAIN_THREADS threads per api process, each one consumer of group
 * "drain" on every shard hn:stream:<n>, named "<node>-<pid>-<random>-<i>"
 * so that no two share a consumer. A cycle:
 *
 *   1. entries: own pending ones first (after a failed cycle, `0`), else
 *      stale ones of dead consumers (XAUTOCLAIM, every claim interval), else
 *      new ones (`>`, COUNT, BLOCK);
 *   2. decode them and build, in C, the COPY text of the rows (page views,
 *      other beacons) and of the batch's aggregates: one line per session
 *      (counts, first/latest page, latest enrichment…), page views and
 *      events per hour, pages and events per day (undecodable entries go
 *      to drain_rejects);
 *   3. one transaction: COPY the rows into widget_page_views and
 *      widget_visitor_events, COPY the aggregates into temp tables, upsert
 *      sessions from them (RETURNING old-and-new, which gives exact rollup
 *      deltas), hourly rollups, visitor sets, breakdowns → COMMIT;
 *   4. XACK; every second XTRIM MINID from the group's progress.
 *
 * Steps 2 and 3 overlap for a batch read the first time: the transaction
 * and the events' COPY open first, and the events' rows go out in parts
 * while the rest is decoded (PostgreSQL indexes one part while the drain
 * builds the next); a record of a day without partitions rolls that back
 * and the batch is written in order, after its partitions are made.
 *
 * Exactly once: the rows' unique key is (event_id, recv_at). A batch read
 * for the first time (`>`) is written with plain COPY; a batch that may have
 * been written before (own pending after a failure, claimed from a dead
 * consumer) first looks up which of its records PostgreSQL has (hn_ids →
 * sql.c's existing) and leaves those out of the rows *and* of the aggregates.
 * If a plain COPY still hits the unique key (a record the collector wrote
 * into two entries read by two consumers), the transaction rolls back and
 * the batch is built again the redelivered way. Before COMMIT a crash
 * writes nothing; after it, redelivery finds everything present and
 * changes nothing. Sessions and rollups therefore move exactly once.
 * PostgreSQL or Redis down: the cycle fails, the entries stay pending, the
 * drain retries with backoff and reads its own pending entries again.
 *
 * The drain thread uses blocking libpq and hiredis: it is its own thread and
 * never touches the api's event loop.
 *
 * The room, by job (it depends on common/ and proto/ only):
 *
 *   drain.c   this API: the consumers started and stopped together, health,
 *             metrics summed
 *   worker.c  one consumer's thread: the cycle above, backoff, isolation of
 *             a batch PostgreSQL refuses, failpoints (worker.h: its state)
 *   stream.c  the Redis side: XGROUP, XREADGROUP, XAUTOCLAIM, XACK,
 *             XTRIM MINID, pending and lag
 *   legacy.c  stream keys of another N (legacy.h): found by SCAN, read
 *             like shards by worker 0, deleted once empty
 *   pg.c      the PostgreSQL side: connection, the batch's transaction,
 *             sweep, partitions, retention
 *   sql.c     the statements' text
 *   batch.c   step 2, pure: entries → records → COPY text of the rows and
 *             aggregates, rejects (tests/unit/test_drain_batch.c)
 *   erased.c  the tombstones of erased visitors and sessions (sql/009): a
 *             record they name, received before its erasure, is left out
 *   copy.c    PostgreSQL's COPY text format
 *   set.c     the batch's hash sets: event ids, keyed counters
 */
#ifndef HN_DRAIN_H
#define HN_DRAIN_H

#include "common/buf.h"
#include "common/config.h"
#include "common/hn.h"

typedef struct hn_drain hn_drain;

hn_drain *hn_drain_start(const hn_config *cfg);        /* NULL when disabled */
/* Asks the drain to finish its current cycle (commit + ack, or nothing) and
 * stop, without waiting (from the event loop, at SIGTERM). NULL: no-op. */
void      hn_drain_request_stop(hn_drain *d);
/* The same, then waits for it at least a drain read's BLOCK time (so that a
 * stop asked early can end its read) or timeout_ms, whichever is longer.
 * HN_OK when it stopped cleanly. */
int       hn_drain_stop(hn_drain *d, int timeout_ms);
/* Appends the drain's metrics (Prometheus text format) to out. Thread-safe. */
void      hn_drain_metrics(hn_drain *d, hn_buf *out);
/* true when the drain's last PostgreSQL and Redis calls worked (readyz). */
bool      hn_drain_healthy(hn_drain *d);

#endif
