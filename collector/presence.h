/*
 * presence.h: turns records into the Redis writes that keep "who is on the
 * site right now" (DESIGN §3), formatted as RESP into the worker's pipeline.
 *
 *   hn:sess:{w}:<sid>  HASH  snapshot of the session, TTL = window + grace
 *   hn:live:{w}        ZSET  sid → last-seen ms
 *
 * Redis' single thread is the system's ceiling, so the number of commands
 * per beacon is kept small:
 *   - one HSET per beacon with only the fields that beacon changes;
 *   - HINCRBY only for counters that move (page views, engaged ms, messages);
 *   - EXPIRE only when the TTL this thread last set has less than the live
 *     window left (a per-thread cache of recently refreshed sessions), so a
 *     session heartbeating every 30 s costs one EXPIRE per `grace` seconds;
 *   - one ZADD (and at most one ZREM) per widget per flush, however many
 *     sessions of that widget the flush holds.
 * The cache only ever saves commands; a stale or missing entry costs an
 * extra EXPIRE, never a missing one, because every thread refreshes by its
 * own clock and sets the full TTL when it does.
 */
#ifndef HN_PRESENCE_H
#define HN_PRESENCE_H

#include "common/buf.h"
#include "proto/record.h"

typedef struct hn_presence hn_presence;

typedef struct hn_presence_cfg {
    uint32_t live_window_s;
    uint32_t grace_s;          /* TTL = live_window_s + grace_s */
} hn_presence_cfg;

hn_presence *hn_presence_create(const hn_presence_cfg *cfg);
void         hn_presence_destroy(hn_presence *p);

/* Appends the per-session commands of one record to cmds (adding their
 * number to *ncmds) and remembers its ZSET change for hn_presence_flush.
 * r's strings must stay valid until hn_presence_flush. now_s: monotonic s. */
void hn_presence_add(hn_presence *p, const hn_record *r, uint64_t now_s,
                     hn_buf *cmds, uint32_t *ncmds);

/* Appends the ZADD/ZREM commands of everything added since the last flush. */
void hn_presence_flush(hn_presence *p, hn_buf *cmds, uint32_t *ncmds);

/* Names of the session hash fields (docs/PROTOCOL.md, "Presence"). */
#define HN_SESS_PREFIX "hn:sess:{"
#define HN_LIVE_PREFIX "hn:live:{"

#endif
