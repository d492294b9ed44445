/*
 * chat_priv.h: what downlink.c and chattail.c share (see chat.h).
 *
 * A downlink (dl) starts "not live": its starting point is asked of Redis on
 * the cmd connection (XREVRANGE + - COUNT 1 for a new stream, XRANGE (last +
 * for a resume, page by page, sending the session's entries). Meanwhile the
 * tail may already read entries of its widget: they are kept in the
 * downlink's pending list. When the start is known the pending entries after
 * it are sent, and the downlink is live: the tail writes to it directly.
 * Entry ids only grow, so "id > pos" (pos: the last id sent or looked at) is
 * both the order and the de-duplication.
 *
 * A widget (cw) is tailed from a cursor taken (XREVRANGE on the cmd
 * connection) before any of its downlinks' own start requests, on the same
 * connection: the tail's cursor is never after a downlink's start, so
 * nothing falls between the two.
 */
#ifndef HN_CHAT_PRIV_H
#define HN_CHAT_PRIV_H

#include "collector/chat.h"
#include "collector/worker.h"
#include "common/rmap.h"

#include <hiredis/async.h>

#define CHAT_SID_MAX 64

typedef struct pend {
    struct pend *next;
    hn_xid       id;
    size_t       len;
    char         text[];
} pend;

typedef struct cwidget cwidget;

typedef struct dl {
    struct dl *prev, *next;      /* the widget's downlinks */
    struct dl *todo_next;        /* queued for a start request */
    cwidget   *cw;               /* NULL once ended */
    hn_chat   *ch;
    struct evhttp_request *req;
    hn_xid     pos;
    bool       resume;           /* start after pos (Last-Event-ID / last) */
    bool       live, queued, inflight, dead;
    uint8_t    sidlen;
    char       sid[CHAT_SID_MAX + 1];
    pend      *ph, *pt;
    uint32_t   npend;
    size_t     pend_bytes;
} dl;

struct cwidget {
    cwidget  *next;
    uint32_t  id;
    uint32_t  n;                 /* downlinks */
    bool      started, start_inflight;
    hn_xid    cursor;            /* the tail's position once started */
    struct rctx *start_on;       /* the connection its start was asked on */
    dl       *head;
    char      key[48];
};

/* One async Redis connection with its own reconnects and timeouts. */
typedef struct rctx {
    hn_chat           *ch;
    const char        *name;     /* "cmd", "tail" (logs) */
    redisAsyncContext *ac;
    bool               up, broken, ever_up;
    int                backoff_ms;
    struct event      *retry;
    uint64_t           since_ms;     /* connecting since */
    uint32_t           due;          /* replies due */
    uint64_t           progress_ms;  /* last reply, or the first request while none was due */
    int                grace_ms;     /* how long a reply may take beyond the Redis timeout */
    char               host[256];    /* a cluster's node ("": the one server) */
    int                port;
    uint32_t           xreads;       /* a cluster's node: its polls in flight */
    bool               skip;         /* … still in flight at this poll: skipped */
} rctx;

struct hn_chat {
    hn_worker         *w;
    struct event_base *base;
    cwidget           *widgets;
    dl                *todo_head, *todo_tail;
    rctx               cmd, tail;
    bool               xread_inflight, stopping;
    struct event      *kick, *ping, *watch;
    hn_buf             scratch;
    uint64_t           open;         /* downlinks of this worker */
    /* a Redis Cluster: one connection per master that holds a widget's
     * hn:chat:{w}, which the tail polls (an XREAD per widget: one BLOCK
     * cannot span slots) every POLL_MS */
    bool               cluster;
    hn_rmap           *map;
    uint64_t           mapver;
    rctx              *node[HN_RMAP_NODES_MAX];
    struct event      *poll;
};

/* chattail.c */
void     chat_tail_init(hn_chat *ch);
void     chat_tail_close(hn_chat *ch);   /* frees the connections (callbacks run with NULL) */
cwidget *chat_widget(hn_chat *ch, uint32_t id);   /* found or made */
void     chat_queue(hn_chat *ch, dl *d);          /* asks for d's start */
void     chat_kick(hn_chat *ch);                  /* pump soon, outside any callback */

/* downlink.c */
void dl_write(dl *d, hn_xid id, const char *text, size_t n);    /* pos = id */
void dl_buffer(dl *d, hn_xid id, const char *text, size_t n);   /* before live */
void dl_go_live(dl *d);
void dl_maybe_free(dl *d);     /* a dead one no request or queue refers to */

#endif
