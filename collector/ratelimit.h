/*
 * ratelimit.h: a token bucket per client address prefix, one table per
 * worker thread (STYLE: per-thread state instead of locks).
 *
 * A client is its address masked to a prefix (the collector's defaults: /32
 * for IPv4, /64 for IPv6, where one subscriber usually gets a whole /64).
 * Its bucket holds up to `burst` tokens and refills at `rate_per_s`; a
 * request costing c tokens passes when c tokens are there.
 *
 * Memory is fixed at create: a set-associative table of `slots` buckets (8
 * ways per set, 32 bytes each, so 65536 slots = 2 MB), nothing allocated
 * afterwards. A bucket that has refilled to full is the same as no bucket,
 * so a new client takes such a way first, otherwise the least recently
 * used one. The table can therefore forget a client that is being limited
 * only when its set has seen 8 other clients more recently, and forgetting
 * only ever lets a client through, never refuses a new one: a client the
 * table has not seen always gets a full bucket.
 */
#ifndef HN_RATELIMIT_H
#define HN_RATELIMIT_H

#include "common/hn.h"
#include "common/ip.h"

typedef struct hn_rl hn_rl;

/* rate_per_s <= 0: unlimited (hn_rl_take always says yes, nothing is
 * stored). burst should be at least the largest cost taken. Prefixes are
 * clamped to 32 and 128. slots is rounded up to a power of two (at least
 * 8; 0 means 4096). Never NULL. */
hn_rl *hn_rl_create(double rate_per_s, double burst, unsigned v4_prefix, unsigned v6_prefix,
                    size_t slots);
void   hn_rl_destroy(hn_rl *r);          /* NULL is fine */

/* Takes cost tokens from ip's bucket at now_ms (a monotonic clock; a time
 * before the bucket's last one counts as no time passed). false: not
 * enough tokens, nothing taken (rate limited). r may be NULL (unlimited).
 * Single-threaded: one hn_rl per thread. */
bool   hn_rl_take(hn_rl *r, const hn_ip *ip, uint64_t now_ms, double cost);

/* For /metrics and tests: buckets in the table, and how many of them are
 * not full at now_ms (clients the table is limiting or about to). */
size_t hn_rl_capacity(const hn_rl *r);
size_t hn_rl_tracked(const hn_rl *r, uint64_t now_ms);

#endif
