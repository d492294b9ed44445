/*
 * presence.h: turns records into the Redis writes that keep "who is on the
 * site right now" (DESIGN §3, docs/PROTOCOL.md §9), formatted as RESP into
 * the worker's pipeline.
 *
 *   hn:sess:{w}:<sid>  HASH  snapshot of the session (fields: proto/keys.h)
 *   hn:live:{w}        ZSET  sid → last-seen ms
 *   hn:ended:{w}       ZSET  sid → ms of its `end` (for the trimmer)
 *
 * Redis' single thread is the system's ceiling, so the number of commands
 * per beacon is kept small, and nothing here depends on what a thread has
 * seen before (any thread of any node may get any beacon of a session):
 *   - one HSET per beacon with only the fields that beacon changes, and
 *     none for a heartbeat: it changes only the last-seen time, which is
 *     the live set's score (readers take last-seen from there);
 *   - HINCRBY only for counters that move (page views, engaged ms, messages);
 *   - no EXPIRE on the hot path: the trimmer deletes a session's hash when
 *     it leaves the live set (collector.c). Only every HN_CHECKPOINT-th
 *     beacon of a session (q = 1, 17, 33, ...) sets a long safety TTL, for
 *     hashes the trimmer can no longer reach (a deleted widget), and writes
 *     the fields that never change (IP, language, screen, enrichment);
 *   - one ZADD per widget per flush, however many sessions of that widget
 *     the flush holds, and one small script per session that ended: it
 *     leaves the live set only if no later beacon of the session reached
 *     Redis first (beacons of one session can be flushed by different
 *     threads or nodes in either order; the hash keeps the highest beacon
 *     number written, field HN_SESS_SEQ).
 */
#ifndef HN_PRESENCE_H
#define HN_PRESENCE_H

#include "common/buf.h"
#include "proto/keys.h"
#include "proto/record.h"

#define HN_CHECKPOINT 16u

typedef struct hn_presence hn_presence;

typedef struct hn_presence_cfg {
    uint32_t safety_ttl_s;     /* TTL set at checkpoints; see hn_presence_safety_ttl */
} hn_presence_cfg;

/* A live session sends a beacon at least once per live window, so between
 * two checkpoints at most HN_CHECKPOINT windows pass; twice that (a lost
 * checkpoint beacon) plus two windows of margin. */
static inline uint32_t hn_presence_safety_ttl(uint32_t live_window_s) {
    return live_window_s * (2 * HN_CHECKPOINT + 2);
}

hn_presence *hn_presence_create(const hn_presence_cfg *cfg);
void         hn_presence_destroy(hn_presence *p);

/* Appends the per-session commands of one record to cmds (adding their
 * number to *ncmds) and remembers its ZSET change for hn_presence_flush.
 * The record's strings are copied: r may go once this returns. */
void hn_presence_add(hn_presence *p, const hn_record *r, hn_buf *cmds, uint32_t *ncmds);

/* Appends the ZADD/ZREM commands of everything added since the last flush. */
void hn_presence_flush(hn_presence *p, hn_buf *cmds, uint32_t *ncmds);

#endif
