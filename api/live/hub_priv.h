/*
 * hub_priv.h: the live hub's state, shared by hub.c (the thread: requests,
 * Redis reads, reconciles, the clock, output) and list.c (a widget's list:
 * its sessions, the events they make, the replay ring, snapshots). Hub
 * thread only, but for the atomics read by /metrics. Nothing outside
 * api/live/ includes it.
 */
#ifndef HN_HUB_PRIV_H
#define HN_HUB_PRIV_H

#include "api/live/live.h"
#include "common/ids.h"
#include "proto/keys.h"
#include "proto/record.h"

#include <event2/event.h>
#include <pthread.h>
#include <uthash.h>

#define SID_CAP          65
#define XREAD_COUNT      "1000"
#define XREAD_ROUNDS     50        /* per tick: then the rest waits for the next one */
#define KEEP_UNWATCHED_MS 60000    /* a widget nobody watches keeps its list (replay) this long */
#define RETRY_MS         1000      /* Redis down: connect again at most this often */

/* ---- the hub's state (hub thread only) ------------------------------------------------ */

typedef struct lsess {
    UT_hash_handle hh;
    char        sid[SID_CAP];
    int64_t     score;              /* hn:live score (ms); -1 unknown */
    char       *f[HN_SF__COUNT];    /* the snapshot as last read (NULL: absent) */
    const char *status;             /* as last sent */
    bool        known;              /* its enter was sent (else only a candidate) */
    bool        dirty;              /* read it at the next flush */
    bool        end_seen;           /* an `end` record came since the last read */
    bool        seen;               /* reconcile mark */
} lsess;

typedef struct pend {
    uint64_t sub;
    uint32_t epoch;
    uint64_t seq;
} pend;

typedef struct lwidget {
    UT_hash_handle hh;
    int64_t      id;
    uint32_t     epoch;
    uint64_t     seq;               /* of the last event made */
    int          watchers;
    uint64_t     unwatched_at;      /* mono ms when watchers dropped to 0 */
    bool         loaded;            /* the first full read is done */
    bool         capped;            /* hn:live holds more than HERENOW_SSE_MAX_SESSIONS */
    char         chat_id[48];       /* hn:chat:{w} read up to here (set at the first read) */
    lsess       *sessions;
    size_t       nknown;
    hn_buf       tick;              /* this tick's events */
    uint64_t     tick_first;
    hn_live_msg **ring;             /* the last cfg->sse_replay messages */
    size_t       ring_head, ring_n;
    uint64_t     next_reconcile;    /* mono ms */
    pend        *pending;
    size_t       npending, cpending;
    bool         want_load;         /* pages/live asked for it (REQ_PEEK) */
    bool         pages_dirty;       /* an event since the last pages table */
    uint64_t     pages_at;          /* mono ms of the last table */
} lwidget;

/* The published pages tables, by widget (guarded by hn_live.pmu). */
typedef struct lpub {
    UT_hash_handle hh;
    int64_t        id;
    hn_live_pages *p;
    int64_t        peek_ms;   /* the last REQ_PEEK sent for it (hn_mono_ms) */
} lpub;

enum { REQ_SUB = 1, REQ_UNSUB, REQ_PEEK };

typedef struct req {
    struct req *next;
    int         op;
    int64_t     widget_id;
    uint64_t    sub;
    uint32_t    epoch;
    uint64_t    seq;
} req;

enum { EV_ENTER, EV_UPDATE, EV_LEAVE, EV__COUNT };

struct hn_live {
    const hn_config   *cfg;
    hn_redis_cfg       rcfg;
    struct event_base *base;
    struct event      *notify;
    hn_live_deliver_fn deliver;
    void              *arg;

    pthread_t          thread;
    bool               started;
    pthread_mutex_t    mu;          /* guards inbox, outbox, stop */
    pthread_cond_t     cv;
    req               *inbox, **inbox_tail;
    hn_live_out       *outbox, **outbox_tail;
    bool               stop;
    pthread_mutex_t    pmu;         /* guards pubs */
    pthread_cond_t     pcv;         /* a table was published */
    lpub              *pubs;

    /* hub thread only */
    hn_rcl            *rc;
    uint64_t           retry_at;
    lwidget           *widgets;
    int                nshards;
    char             (*shard_id)[48];   /* last entry id read, per shard */
    int               *shard_watch;     /* widgets watched per shard (0: not tailed) */
    hn_decoder        *dec;
    hn_rng             rng;
    hn_live_out       *out, **out_tail; /* this round's output, posted at once */

    /* metrics (written by the hub, read by /metrics) */
    _Atomic uint64_t   ticks, tick_us, records, decode_errors, redis_errors, reconciles;
    _Atomic uint64_t   events[EV__COUNT], snapshots, replays, failed_starts;
    _Atomic uint64_t   g_widgets, g_sessions;
    _Atomic uint64_t   capped;          /* a list met HERENOW_SSE_MAX_SESSIONS (reconciles, new sessions) */
};

/* hub.c: queues one output for the main thread (posted at the end of the round). */
void hn_hub_out_push(hn_live *l, hn_live_kind k, int64_t wid, uint64_t sub, hn_live_msg *m,
                     hn_live_start_kind sk);

/* list.c */
extern const char *const hn_hub_ev_names[EV__COUNT];
hn_live_msg *hn_hub_msg_new(const char *p, size_t n, uint32_t epoch, uint64_t first, uint64_t last);
void   hn_hub_sess_free_fields(lsess *s);
/* The session's entry, made if new — NULL when the list is at
 * HERENOW_SSE_MAX_SESSIONS (counted, the list marked capped). */
lsess *hn_hub_sess_get(hn_live *l, lwidget *w, const char *sid, size_t n);
void   hn_hub_sess_drop(lwidget *w, lsess *s);
void   hn_hub_emit_enter(hn_live *l, lwidget *w, lsess *s, int64_t now);
void   hn_hub_emit_leave(hn_live *l, lwidget *w, lsess *s, const char *reason);
/* Only when the status or a member other than engaged time changed. */
void   hn_hub_emit_update(hn_live *l, lwidget *w, lsess *s, char *const *old, const char *status);
/* update of the status alone (the hub's clock); sets s->status. */
void   hn_hub_emit_status(hn_live *l, lwidget *w, lsess *s, const char *status);
/* The tick's events become one message: kept for replay, sent to every stream. */
void   hn_hub_finish(hn_live *l, lwidget *w);
/* The waiting streams of w get their replay or the snapshot. */
void   hn_hub_serve_starts(hn_live *l, lwidget *w, int64_t now);
/* Redis unreachable: every waiting stream is told so (503). */
void   hn_hub_fail_starts(hn_live *l);

/* pages.c: builds and publishes w's pages table and queues its event. */
void   hn_hub_pages_build(hn_live *l, lwidget *w, int64_t now);
/* Takes w's table out of the published ones (the widget is dropped). */
void   hn_hub_pages_unpublish(hn_live *l, int64_t widget_id);

#endif
