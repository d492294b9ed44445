/*
 * snap.h: an immutable table that one thread publishes and many read (the
 * widget table, the bans). Publishing swaps the current table under a
 * lock and bumps a generation; a reader's handle keeps its reference
 * between uses and takes the lock only when the generation moved, so a
 * reader pays one atomic load per batch while nothing changes. A table is
 * freed, by the function given at creation, when the publisher and the
 * last handle have let go of it.
 */
#ifndef HN_SNAP_H
#define HN_SNAP_H

#include <stdint.h>

typedef struct hn_snap_pub  hn_snap_pub;
typedef struct hn_snap_node hn_snap_node;

/* A reader's handle; zero-initialised before its first acquire. */
typedef struct hn_snap_ref {
    hn_snap_node *n;
    uint64_t      gen;
} hn_snap_ref;

hn_snap_pub *hn_snap_pub_create(void (*free_table)(void *));
void         hn_snap_pub_destroy(hn_snap_pub *p);     /* handles must be released first */
void         hn_snap_publish(hn_snap_pub *p, void *table);    /* takes table */
/* The current table (NULL before the first publish, or when p is NULL). */
void        *hn_snap_acquire(hn_snap_pub *p, hn_snap_ref *ref);
void         hn_snap_release(hn_snap_pub *p, hn_snap_ref *ref);

#endif
