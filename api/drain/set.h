/*
 * set.h: the batch's hash sets, open addressing, grown by doubling; they
 * allocate on first use, so a zeroed set is an empty one.
 *
 *   hn_seen_set  16-byte event ids: the records of a batch (twice in a
 *                batch: left out), and those of a redelivered batch that
 *                PostgreSQL has already
 *   hn_kmap      (k, s) → a dense index 0, 1, …: the keys of the batch's
 *                aggregates (sessions, hours, breakdown values)
 */
#ifndef HN_DRAIN_SET_H
#define HN_DRAIN_SET_H

#include "common/hn.h"

typedef struct hn_seen_set {
    uint8_t (*slot)[16];
    bool     *used;
    size_t    cap, n;
} hn_seen_set;

void hn_seen_clear(hn_seen_set *s);
void hn_seen_free(hn_seen_set *s);
bool hn_seen_has(const hn_seen_set *s, const uint8_t id[16]);
/* true when id was new (and is now in the set) */
bool hn_seen_add(hn_seen_set *s, const uint8_t id[16]);

typedef struct hn_kmap_item {
    uint64_t k;
    hn_str   s;
} hn_kmap_item;

/* items[0 .. n) in the order they were added. s is not copied: it must
 * outlive the map's use (the batch's strings point into its Redis replies,
 * which live as long as the batch). */
typedef struct hn_kmap {
    uint32_t     *slot;   /* index + 1; 0: empty */
    size_t        cap;
    hn_kmap_item *items;
    size_t        n, cap_items;
} hn_kmap;

void   hn_kmap_clear(hn_kmap *m);
void   hn_kmap_free(hn_kmap *m);
/* The index of (k, s), added when new (*fresh set). */
size_t hn_kmap_get(hn_kmap *m, uint64_t k, hn_str s, bool *fresh);

#endif
