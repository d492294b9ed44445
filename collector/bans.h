/*
 * bans.h: the collector's view of the bans (docs/RULES.md §5): per widget,
 * the members of hn:bans:{w} — "v:<visitor>" and "e:<email>" block
 * tracking, "c:v:…" and "c:e:…" block chat only.
 *
 * The housekeeping thread polls hn:bans:version every
 * HERENOW_BANS_REFRESH_MS; when it moved it reads hn:bans:widgets (widget →
 * version of its bans) and re-reads the sets of the widgets whose version
 * changed, builds a new immutable table and publishes it. Workers pick it
 * up like the widget table: an atomic generation check per batch, the lock
 * only when it changed. A widget without bans costs one hash probe per
 * beacon, and a collector without any bans none.
 */
#ifndef HN_BANS_H
#define HN_BANS_H

#include "collector/snap.h"
#include "common/hn.h"
#include "common/rcl.h"

#define HN_BAN_TRACK 1u      /* drop every beacon */
#define HN_BAN_CHAT  2u      /* refuse chat messages (t=msg) */

typedef struct hn_bans hn_bans;

/* true when the widget has bans of any kind */
bool     hn_bans_widget(const hn_bans *t, uint32_t widget);
/* HN_BAN_* of a subject (kind 'v' visitor id, 'e' email as given: compared
 * lower-cased), 0 when none; TRACK wins over CHAT. */
unsigned hn_bans_check(const hn_bans *t, uint32_t widget, char kind, hn_str subject);
size_t   hn_bans_count(const hn_bans *t);

/* Built from (widget, SMEMBERS reply) pairs; members that are not one of
 * the four forms are skipped. For the tests and the loader. */
hn_bans *hn_bans_build(const uint32_t *widgets, redisReply *const *members, size_t n);
void     hn_bans_build_free(hn_bans *t);

/* Publication (snap.h), like the widget table's. */
typedef hn_snap_pub hn_bans_pub;
typedef hn_snap_ref hn_bans_ref;

hn_bans_pub *hn_bans_pub_create(void);
static inline void hn_bans_pub_destroy(hn_bans_pub *p) { hn_snap_pub_destroy(p); }
static inline void hn_bans_publish(hn_bans_pub *p, hn_bans *t) { hn_snap_publish(p, t); }   /* takes t */
static inline const hn_bans *hn_bans_acquire(hn_bans_pub *p, hn_bans_ref *ref) {   /* NULL: none yet */
    return hn_snap_acquire(p, ref);
}
static inline void hn_bans_release(hn_bans_pub *p, hn_bans_ref *ref) { hn_snap_release(p, ref); }

/* The loader's state (housekeeping thread only). */
typedef struct hn_bans_loader hn_bans_loader;
hn_bans_loader *hn_bans_loader_create(void);
void            hn_bans_loader_destroy(hn_bans_loader *l);
/* Polls hn:bans:version on c and, when it moved, reloads the changed
 * widgets and publishes. HN_OK (nothing to do, or published), HN_ERR on a
 * Redis error (the next poll tries again; *err says what). */
int hn_bans_refresh(hn_bans_loader *l, hn_rcl *c, hn_bans_pub *pub, char *err, size_t cap);

#endif
