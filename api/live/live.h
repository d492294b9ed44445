/*
 * live.h: the live hub — one thread that turns Redis into the live stream's
 * events (docs/API.md, "active-visitors/stream") for every watched widget.
 *
 *   hub thread (its own blocking hn_rcl), every HERENOW_SSE_TICK_MS:
 *     XREAD the stream shards of the watched widgets from where it left off
 *       → the sessions a record touched are dirty
 *     every HERENOW_SSE_RECONCILE_MS per widget: ZRANGEBYSCORE hn:live
 *       → sessions it lacks are dirty, sessions no longer there leave
 *     HGETALL + ZSCORE of each dirty session (one pipeline)
 *       → enter / update (the fields that changed) / leave
 *     local clock: a session not seen within the live window leaves, one
 *       quiet longer than HERENOW_ACTIVE_S turns idle
 *     → one message per widget per tick: the SSE text of its events, made
 *       once and shared (refcounted) by every stream of the widget
 *
 * One list and one reader per widget serve all its watchers: 500 open
 * dashboards cost Redis what one does. Event ids are "<epoch>-<seq>" (epoch:
 * random per widget list, seq: per event); the last HERENOW_SSE_REPLAY
 * messages are kept, so a reconnect with Last-Event-ID gets the events it
 * missed instead of a snapshot.
 *
 * The main thread (sse.h) subscribes a stream and gets back, in order with
 * the widget's messages, a START: the snapshot or the replay to send first;
 * messages with a seq up to the START's are already in it. A subscription
 * runs a tick at once (not at the next one), so a snapshot holds every
 * record Redis had when the stream subscribed.
 *
 * The live room, api/live/: the hub (hub.c, this header), the streams
 * (sse.c), a session's snapshot as a JSON item (snapshot.c, shared with the
 * HTTP route "active visitors"). It uses common/ and proto/ only (key names:
 * proto/keys.h); what it needs of the HTTP server comes in through
 * hn_sse_host.
 */
#ifndef HN_LIVE_H
#define HN_LIVE_H

#include "common/buf.h"
#include "common/config.h"
#include "common/rcl.h"

#include <stdatomic.h>

struct event_base;

/* SSE text shared by the streams that send it. */
typedef struct hn_live_msg {
    atomic_int refs;
    uint32_t   epoch;
    uint64_t   first_seq, last_seq;   /* its events' seqs (a snapshot: both its own) */
    size_t     len;
    char       data[];
} hn_live_msg;

void hn_live_msg_ref(hn_live_msg *m);
void hn_live_msg_unref(hn_live_msg *m);

typedef enum hn_live_kind {
    HN_LIVE_EVENTS = 1,   /* a tick's events of widget_id, for every stream of it */
    HN_LIVE_START,        /* what stream `sub` sends first (msg NULL: Redis unreachable) */
    HN_LIVE_PAGES,        /* widget_id's `pages` event (no id), for its streams that asked */
    HN_LIVE_ALERT,        /* a rule's `alert` event (no id), for every stream of widget_id */
} hn_live_kind;

typedef enum hn_live_start_kind { HN_START_SNAPSHOT = 1, HN_START_REPLAY } hn_live_start_kind;

typedef struct hn_live_out {
    struct hn_live_out *next;
    hn_live_kind        kind;
    hn_live_start_kind  start;
    int64_t             widget_id;
    uint64_t            sub;
    hn_live_msg        *msg;      /* one reference, owned by this item */
} hn_live_out;

/* Called on the main thread with what the hub produced, oldest first; the
 * callee frees the list with hn_live_out_free. */
typedef void (*hn_live_deliver_fn)(void *arg, hn_live_out *list);
void hn_live_out_free(hn_live_out *list);

typedef struct hn_live hn_live;

hn_live *hn_live_create(const hn_config *cfg, const hn_redis_cfg *rcfg, struct event_base *base,
                        hn_live_deliver_fn deliver, void *arg);
int      hn_live_start(hn_live *l, char *err, size_t cap);
/* Main thread. last_epoch 0: no Last-Event-ID (a snapshot). */
void     hn_live_subscribe(hn_live *l, int64_t widget_id, uint64_t sub, uint32_t last_epoch,
                           uint64_t last_seq);
void     hn_live_unsubscribe(hn_live *l, int64_t widget_id, uint64_t sub);
/* Stops and joins the thread (idempotent); then frees. */
void     hn_live_destroy(hn_live *l);
/* Prometheus text; thread-safe. */
void     hn_live_metrics(hn_live *l, hn_buf *out);

/* ---- pages now -----------------------------------------------------------------
 * The hub aggregates each loaded widget's list by current URL: a table it
 * rebuilds at most once a second when the list changed (an event was made),
 * published for any thread (refcounted, immutable) and sent as the
 * streams' `pages` event (HN_LIVE_PAGES, the top HN_LIVE_PAGES_TOP). */
#define HN_LIVE_PAGES_TOP 50

typedef struct hn_live_page {
    const char *url;          /* NULL: sessions without a URL yet */
    const char *title;        /* of the session seen most recently on it */
    uint32_t    live, active;
} hn_live_page;

typedef struct hn_live_pages {
    atomic_int    refs;
    int64_t       widget_id;
    int64_t       as_of_ms;   /* wall clock */
    uint32_t      live, active;
    bool          capped;
    size_t        n;
    hn_live_page *v;          /* live desc, active desc, url asc (NULL first) */
    char         *strings;    /* owns every url and title */
} hn_live_pages;

void hn_live_pages_unref(hn_live_pages *p);
/* Any thread: the widget's current table (a reference, the caller unrefs)
 * and the hub asked to keep the widget's list. A widget the hub does not
 * list yet is loaded; this waits for it up to wait_ms: HN_AGAIN when it is
 * not there in time. */
int hn_live_pages_get(hn_live *l, int64_t widget_id, int64_t wait_ms, hn_live_pages **out);
/* The `pages` members of a table (the event's data, the route's head). */
void hn_live_pages_json_head(hn_buf *b, bool *first, const hn_live_pages *p);
void hn_live_page_json(hn_buf *b, const hn_live_page *pg);

/* A rule's alert (docs/RULES.md §3): any thread. json[0..len) (one line, no
 * newline) is copied into an `event: alert` message without an id, handed
 * to the main thread at once (the hub's outbox, under its mutex) and
 * written to every started stream of widget_id; not kept for replays. */
void hn_live_alert(hn_live *l, int64_t widget_id, const char *json, size_t len);

/* "5f1c09ad-42" → epoch, seq; HN_ERR on anything else. Pure. */
int hn_live_parse_id(const char *s, uint32_t *epoch, uint64_t *seq);

#endif
