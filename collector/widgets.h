/*
 * widgets.h: the collector's view of hn:widgets (widget key → widget id).
 *
 * A table is immutable once built. The housekeeping thread re-reads hn:widgets every
 * HERENOW_WIDGET_REFRESH_MS and publishes a new table when it changed;
 * workers pick it up at their next batch (hn_widgets_acquire compares a
 * generation number and only takes the lock when it changed). A table is
 * freed when the last worker has let go of it.
 */
#ifndef HN_WIDGETS_H
#define HN_WIDGETS_H

#include "collector/snap.h"
#include "common/hn.h"

#include <hiredis/hiredis.h>

typedef struct hn_widgets hn_widgets;

/* Builds a table from an HGETALL reply (field: key, value: "<id>[ settings]",
 * settings being space-separated words: "dnt=off", "chat=on"). Entries whose value does
 * not start with a positive id are skipped and counted in *bad. */
hn_widgets *hn_widgets_build(const redisReply *hgetall, size_t *bad);
void        hn_widgets_build_free(hn_widgets *t);   /* an unpublished table */
/* The widget of a key: its id and its settings (HN_WIDGET_*). */
#define HN_WIDGET_IGNORE_DNT 1u    /* "dnt=off": DNT and Sec-GPC do not drop its beacons */
#define HN_WIDGET_CHAT       2u    /* "chat=on": chat downlink /v, beacon answers name the chat script */
bool        hn_widgets_lookup(const hn_widgets *t, hn_str key, uint32_t *id, uint32_t *flags);
size_t      hn_widgets_count(const hn_widgets *t);
uint64_t    hn_widgets_digest(const hn_widgets *t);   /* changes when the content does */
/* The distinct widget ids, for trimming; valid while the table is. */
const uint32_t *hn_widgets_ids(const hn_widgets *t, size_t *n);

/* Publication between the main thread and the workers (snap.h). A worker
 * acquires at the start of a batch; its handle keeps the reference between
 * batches and swaps it only when a newer table was published. Acquire may
 * return NULL before the first table arrives. */
typedef hn_snap_pub hn_widgets_pub;
typedef hn_snap_ref hn_widgets_ref;

hn_widgets_pub *hn_widgets_pub_create(void);
static inline void hn_widgets_pub_destroy(hn_widgets_pub *p) { hn_snap_pub_destroy(p); }
static inline void hn_widgets_publish(hn_widgets_pub *p, hn_widgets *t) { hn_snap_publish(p, t); }   /* takes t */
static inline const hn_widgets *hn_widgets_acquire(hn_widgets_pub *p, hn_widgets_ref *ref) {
    return hn_snap_acquire(p, ref);
}
static inline void hn_widgets_release(hn_widgets_pub *p, hn_widgets_ref *ref) { hn_snap_release(p, ref); }

#endif
