/*
 * erased.h: the tombstones of erased visitors and sessions (visitor_erasures,
 * sql/009_erasures.sql) as a drain worker holds them, and the test a record
 * passes through before it is written.
 *
 *   tombstone  SHA-256("<widget id>:v:<visitor id>") or ("…:s:<session id>")
 *              → when it was erased (µs)
 *   a record   is left out when its widget has tombstones and its session,
 *              or its visitor id (the one its session row takes: the site's
 *              vid, else the visitor hash, else the session), has one with
 *              an erasure time at or after the record's receive time
 *
 * Pure (memory and libcrypto's SHA256). A zeroed hn_erased is an empty one;
 * a record of a widget without tombstones costs one scan of a short array.
 */
#ifndef HN_DRAIN_ERASED_H
#define HN_DRAIN_ERASED_H

#include "common/hn.h"

#define HN_ERASED_DIGEST 32

typedef struct hn_erased_item {
    uint8_t  digest[HN_ERASED_DIGEST];
    uint64_t at_us;
} hn_erased_item;

typedef struct hn_erased {
    hn_erased_item *v;          /* sorted by digest */
    size_t          n, cap;
    uint32_t       *widgets;    /* widgets with a tombstone, unsorted, each once */
    size_t          nwidgets, cap_widgets;
    int64_t         last_seq;   /* visitor_erasures.seq read up to (the worker's) */
} hn_erased;

void hn_erased_free(hn_erased *e);
/* The digest of (widget, kind 'v' or 's', id), as hn_erasure_digest() in SQL. */
void hn_erased_digest(uint32_t widget_id, char kind, hn_str id, uint8_t out[HN_ERASED_DIGEST]);
/* Adds a tombstone (the later time wins for a digest given twice). */
void hn_erased_add(hn_erased *e, uint32_t widget_id, const uint8_t digest[HN_ERASED_DIGEST],
                   uint64_t at_us);
/* Whether a record of widget_id, session sid and visitor id vid received
 * at recv_us is erased. */
bool hn_erased_match(const hn_erased *e, uint32_t widget_id, hn_str sid, hn_str vid,
                     uint64_t recv_us);

#endif
