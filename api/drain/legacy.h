/*
 * legacy.h: the drain's legacy stream keys — records under stream names
 * this process's N no longer writes (docs/PROTOCOL.md §9): hn:stream:<n>
 * after N went from 1 to N >= 2, the tags of another N, and whatever an old
 * collector spool replayed. Worker 0 finds them (SCAN), reads them like
 * shards into its batches (exactly once like any entry: written to
 * PostgreSQL, then acknowledged) and deletes each once it is empty with
 * nothing pending. The live hub and the rules engine never read them.
 *
 * Indexes: the batch's entries name their key by an index; 0..nshards-1 are
 * the shards (hn_key_stream), nshards + i the i-th legacy key of d->legacy.
 * The list changes only in hn_drain_legacy_tick, between batches.
 */
#ifndef HN_DRAIN_LEGACY_H
#define HN_DRAIN_LEGACY_H

#include "api/drain/worker.h"

/* Legacy keys drained at a time; more wait for a later SCAN pass. */
#define HN_DRAIN_LEGACY_MAX 64

/* The number of key indexes (shards + legacy keys). */
int    hn_drain_nkeys(const hn_drain_worker *d);
/* The key of an index into out (HN_KEY_CAP). */
size_t hn_drain_key(const hn_drain_worker *d, int idx, char *out);
/* The index of a key name: a current shard's, a known legacy key's; -1. */
int    hn_drain_key_index(const hn_drain_worker *d, const char *key, size_t len);

/* Worker 0, every HN_DRAIN_TRIM_EVERY_MS: trims what the group acknowledged
 * in each legacy key and deletes the empty ones (one Lua check-and-delete
 * per key), then goes on with the SCAN of hn:stream:* (up to 10 steps of
 * COUNT 1000) and takes the streams it finds that are not current shards
 * (XGROUP CREATE … 0, BUSYGROUP fine). Sets the herenow_drain_legacy_streams
 * gauge, and legacy_turn when there are legacy keys. A connection failure
 * closes d->rc (the caller backs off). */
void   hn_drain_legacy_tick(hn_drain_worker *d);
/* Reads the legacy keys into the batch: own pending ("0"), else entries of
 * consumers gone (XAUTOCLAIM), else new ones (">"), not blocking. Sets
 * legacy_turn again when it read a full batch. HN_ERR: the connection
 * failed (closed). */
int    hn_drain_legacy_read(hn_drain_worker *d);
void   hn_drain_legacy_free(hn_drain_worker *d);

#endif
