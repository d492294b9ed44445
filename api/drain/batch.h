/*
 * batch.h: one batch of the drain, built in C — pure: no I/O, no libpq or
 * hiredis call, nothing but memory (and a warning in the log per reject).
 *
 *   entries (stream.c fills them: shard, id, the "r" field's bytes)
 *      │ decode, all or nothing per entry (one that does not → rejects)
 *      ▼
 *   records ── twice in the batch, or in `existing` (redelivered) ──► left out
 *      │   ── of a visitor or session erased since (`erased`, erased.h) ──► left out
 *      │
 *      ├─► rows:        pv (widget_page_views), ev (widget_visitor_events)
 *      └─► aggregates:  agg (hn_agg: one line per session), hourly (hn_hourly:
 *                       page views and events per hour), dims (hn_dimsb:
 *                       pages and events per day)
 *
 * The texts are COPY text (copy.h) in the columns of sql.c's COPY
 * statements; pg.c sends them. For a redelivered batch, pg.c first sends
 * hn_drain_batch_ids' text, fills `existing` with what PostgreSQL has, then
 * builds.
 *
 * Ownership: an entry's data is not copied — it stays the caller's (a Redis
 * reply kept until the batch is written), and every string of the texts'
 * aggregates points into it until the next build. Rejects copy what they
 * keep.
 */
#ifndef HN_DRAIN_BATCH_H
#define HN_DRAIN_BATCH_H

#include "api/drain/erased.h"
#include "api/drain/set.h"
#include "common/buf.h"
#include "proto/record.h"

/* One stream entry of the batch. */
typedef struct hn_drain_entry {
    int         shard;
    char        id[48];
    const char *data;     /* the "r" field, in the batch's replies; NULL: none (deleted) */
    size_t      len;
    bool        bad;      /* did not decode: goes to drain_rejects */
} hn_drain_entry;

/* An entry that did not decode. Rejects wait for the transaction; kept as
 * a small list. */
typedef struct hn_drain_reject {
    int    shard;
    char   id[48];
    char   why[160];
    char  *raw;           /* a copy of the entry's data; NULL: it had none */
    size_t rawlen;
} hn_drain_reject;

struct hn_drain_sess_agg;
struct hn_drain_hour_agg;

/* A session whose records an erasure left out: its live presence in Redis
 * goes too, unless it has been seen since (hn_drain_stream_forget). */
#define HN_DRAIN_GONE_MAX 4096
#define HN_DRAIN_SID_MAX  64          /* proto/beacon.h: a session id is 8..64 bytes */
typedef struct hn_drain_gone {
    uint32_t widget_id;
    uint8_t  len;
    char     sid[HN_DRAIN_SID_MAX + 1];
    uint64_t last_ms;                 /* its latest record left out, ms */
} hn_drain_gone;

typedef struct hn_drain_batch {
    /* input: set by the caller */
    hn_drain_entry  *entries;         /* hn_drain_batch_add */
    size_t           nentries, cap_entries;
    size_t           bytes;           /* of the entries' records */
    size_t           lo, hi;          /* the entries a build takes: all, or one (isolating) */
    bool             redelivered;     /* own pending / claimed: leave out `existing` */
    hn_seen_set      existing;        /* of a redelivered batch: in PostgreSQL already */
    uint64_t         now_us;          /* the clock recv_ts is checked against; 0: the wall clock */
    const hn_erased *erased;          /* tombstones: their records are left out; NULL: none */

    /* output */
    hn_buf           pv, ev;                 /* rows */
    hn_buf           agg, hourly, dims;      /* aggregates */
    hn_buf           ids;                    /* hn_drain_batch_ids */
    hn_buf           chat;                   /* chat records (docs/CHAT.md §5) */
    size_t           nrecords;        /* rows built */
    size_t           nrepeats;        /* records left out: twice in the batch or already written */
    size_t           nerased;         /* records left out: their visitor or session was erased */
    hn_drain_gone   *gone;            /* ... their sessions (each once), for their presence */
    size_t           ngone, cap_gone;
    size_t           nsessions;       /* lines in agg */
    hn_drain_reject *rejects;         /* entries that did not decode */
    size_t           nrejects, cap_rejects;
    uint64_t         min_ts, max_ts;  /* recv_ts range of what was decoded, µs; 0: none */

    /* the build's own */
    hn_decoder      *dec;
    hn_record       *scratch;         /* one entry's records */
    size_t           nscratch, cap_scratch;
    hn_buf           json;
    hn_seen_set      seen;            /* event ids in the batch */
    hn_kmap          sess_map, hour_map, dim_map;
    struct hn_drain_sess_agg *sess;
    size_t           cap_sess;
    struct hn_drain_hour_agg *hours;
    size_t           cap_hours;
    uint64_t        *dim_n;
    size_t           cap_dims;
} hn_drain_batch;

void hn_drain_batch_init(hn_drain_batch *b);
void hn_drain_batch_free(hn_drain_batch *b);

/* A new entry at the end of entries, zeroed. */
hn_drain_entry *hn_drain_batch_add(hn_drain_batch *b);
/* Marks e bad and keeps it (shard, id, why, a copy of its data) in rejects. */
void hn_drain_batch_reject(hn_drain_batch *b, hn_drain_entry *e, const char *why);
/* Forgets the entries, the rejects, the counts and the recv_ts range. */
void hn_drain_batch_reset(hn_drain_batch *b);

/* Builds every COPY text of entries [lo, hi): pv, ev, agg, hourly, dims.
 * Entries that do not decode are rejected (once: they stay bad). */
void hn_drain_batch_build(hn_drain_batch *b);
/* The same in steps, for a writer that sends the rows while the rest is
 * built (pg.c): begin (every text emptied, the recv_ts range reset), one
 * entry at a time (its rows appended to pv / ev, which the caller may send
 * and empty between entries; its aggregates kept), end (the aggregates'
 * texts). */
void hn_drain_batch_build_begin(hn_drain_batch *b);
void hn_drain_batch_build_entry(hn_drain_batch *b, size_t i);
void hn_drain_batch_build_end(hn_drain_batch *b);
/* The (event_id, recv_at) of every record of entries [lo, hi) into ids,
 * the text of hn_ids (sql.c: existing). */
void hn_drain_batch_ids(hn_drain_batch *b);

#endif
