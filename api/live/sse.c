/* sse.c: the live stream's connections, see sse.h. */
#include "api/live/sse.h"

#include "common/httpguard.h"
#include "common/log.h"
#include "common/prom.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#define RETRY_LINE "retry: 2000\n\n"   /* EventSource's reconnect delay */

enum { BYE_CLIENT, BYE_LIFETIME, BYE_SLOW, BYE_REVOKED, BYE_STOPPING, BYE_UNAVAILABLE, BYE__COUNT };
static const char *bye_names[BYE__COUNT] = {"client", "lifetime", "slow", "revoked", "stopping",
                                            "unavailable"};

typedef struct group group;

typedef struct sub {
    UT_hash_handle         hh;
    group                 *g;                /* its widget's streams */
    struct sub            *gnext, *gprev;
    uint64_t               id;
    int64_t                widget_id;
    hn_sse                *s;
    struct evhttp_request *req;
    char                   token_id[16];
    bool                   started;          /* headers are out */
    bool                   pages;            /* asked for `pages` events */
    uint32_t               epoch;
    uint64_t               seq;              /* the last event it has */
    uint64_t               opened_ms, last_write_ms;
    size_t                 last_pending;     /* bytes waiting at the last timer check */
} sub;

/* The streams of one widget: a hub message goes to these only. */
struct group {
    UT_hash_handle hh;
    int64_t        widget_id;
    sub           *head;
    hn_live_msg   *pages;                    /* the latest `pages` event */
};

struct hn_sse {
    const hn_config   *cfg;
    struct event_base *base;
    hn_sse_host        host;
    hn_live           *live;
    struct event      *timer;
    sub               *subs;                 /* by id */
    group             *groups;               /* by widget */
    size_t             nsubs;
    uint64_t           next_id;
    bool               stopping;
    uint64_t           opened, started, closed[BYE__COUNT], bytes, messages;
};

static void on_close(struct evhttp_connection *evcon, void *arg);

/* ---- writing ------------------------------------------------------------------ */

static void msg_cleanup(const void *data, size_t len, void *arg) {
    (void)data; (void)len;
    hn_live_msg_unref(arg);
}

static size_t pending_bytes(struct evhttp_request *req) {
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

/* Sends a hub message by reference (the text stays shared). */
static void write_msg(sub *u, hn_live_msg *m) {
    if (m->len == 0) return;
    struct evbuffer *b = evbuffer_new();
    hn_live_msg_ref(m);
    evbuffer_add_reference(b, m->data, m->len, msg_cleanup, m);
    evhttp_send_reply_chunk(u->req, b);
    evbuffer_free(b);
    u->s->bytes += m->len;
    u->s->messages++;
    u->last_write_ms = hn_mono_ms();
}

static void write_text(sub *u, const char *p, size_t n) {
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, p, n);
    evhttp_send_reply_chunk(u->req, b);
    evbuffer_free(b);
    u->s->bytes += n;
    u->last_write_ms = hn_mono_ms();
}

/* ---- ending -------------------------------------------------------------------- */

static void sub_free(sub *u) {
    hn_sse *s = u->s;
    group *g = u->g;
    if (u->gprev) u->gprev->gnext = u->gnext;
    else g->head = u->gnext;
    if (u->gnext) u->gnext->gprev = u->gprev;
    if (g->head == NULL) {
        HASH_DEL(s->groups, g);
        hn_live_msg_unref(g->pages);
        free(g);
    }
    HASH_DEL(s->subs, u);
    s->nsubs--;
    hn_live_unsubscribe(s->live, u->widget_id, u->id);
    free(u);
}

/* Ends the stream: `bye` with the reason, the chunked answer's end. */
static void sub_end(sub *u, int reason) {
    hn_sse *s = u->s;
    struct evhttp_request *req = u->req;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    s->closed[reason]++;
    if (evcon) hn_httpguard_closecb(evcon, NULL, NULL);
    if (evcon == NULL) {
        evhttp_request_free(req);                 /* detached: ours */
    } else if (reason == BYE_SLOW) {
        /* a bye would only queue behind what it does not read: cut it */
        evhttp_connection_free(evcon);            /* frees req with it */
    } else if (u->started) {
        char bye[96];
        int n = snprintf(bye, sizeof(bye), "event: bye\ndata: {\"reason\":\"%s\"}\n\n", bye_names[reason]);
        write_text(u, bye, (size_t)n);
        s->host.track(s->host.arg, req);
        evhttp_send_reply_end(req);
    } else {
        /* never started: a JSON error, like any route */
        s->host.headers(req, NULL);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
        struct evbuffer *b = evbuffer_new();
        evbuffer_add_printf(b, "{\"error\":\"%s\"}",
                            reason == BYE_UNAVAILABLE ? "redis unavailable" : "shutting down");
        s->host.track(s->host.arg, req);
        evhttp_send_reply(req, 503, NULL, b);
        evbuffer_free(b);
    }
    hn_info("event=sse_end widget=%lld token=%s reason=%s seconds=%llu", (long long)u->widget_id,
            u->token_id, bye_names[reason], (unsigned long long)((hn_mono_ms() - u->opened_ms) / 1000));
    sub_free(u);
}

/* The client left (a write failed, or evhttp freed the connection). */
static void on_close(struct evhttp_connection *evcon, void *arg) {
    sub *u = arg;
    (void)evcon;
    u->s->closed[BYE_CLIENT]++;
    /* libevent 2.1: a request whose answer has not ended is detached from
     * its failing connection and ours to free; one still attached goes with
     * the connection */
    if (evhttp_request_get_connection(u->req) == NULL) evhttp_request_free(u->req);
    sub_free(u);
}

/* ---- the hub's output ------------------------------------------------------------ */

static void start(hn_sse *s, sub *u, hn_live_out *o) {
    if (o->msg == NULL) {
        sub_end(u, BYE_UNAVAILABLE);
        return;
    }
    struct evhttp_request *req = u->req;
    if (evhttp_request_get_connection(req) == NULL) {   /* left while waiting */
        on_close(NULL, u);
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/event-stream; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Accel-Buffering", "no");     /* nginx in front: do not buffer */
    evhttp_send_reply_start(req, 200, "OK");
    u->started = true;
    s->started++;
    write_text(u, RETRY_LINE, sizeof(RETRY_LINE) - 1);
    write_msg(u, o->msg);
    if (u->pages && u->g->pages) write_msg(u, u->g->pages);
    hn_info("event=sse_start widget=%lld token=%s start=%s bytes=%zu", (long long)u->widget_id,
            u->token_id, o->start == HN_START_REPLAY ? "replay" : "snapshot", o->msg->len);
    u->epoch = o->msg->epoch;
    u->seq = o->msg->last_seq;
    u->last_pending = SIZE_MAX;          /* the first check only looks */
}

static void deliver(void *arg, hn_live_out *list) {
    hn_sse *s = arg;
    size_t cap = (size_t)s->cfg->sse_max_buffer_kb * 1024;
    for (hn_live_out *o = list; o; o = o->next) {
        sub *u, *next;
        if (o->kind == HN_LIVE_START) {
            HASH_FIND(hh, s->subs, &o->sub, sizeof(o->sub), u);
            if (u && !u->started) start(s, u, o);
            continue;
        }
        group *g;
        HASH_FIND(hh, s->groups, &o->widget_id, sizeof(o->widget_id), g);
        if (g && o->kind == HN_LIVE_PAGES) {
            hn_live_msg_unref(g->pages);
            hn_live_msg_ref(o->msg);
            g->pages = o->msg;
        }
        for (u = g ? g->head : NULL; u; u = next) {
            next = u->gnext;                      /* u may end (slow) below */
            if (!u->started) continue;
            if (o->kind == HN_LIVE_PAGES) {
                if (u->pages) write_msg(u, o->msg);
                continue;
            }
            if (o->kind == HN_LIVE_ALERT) {
                write_msg(u, o->msg);
                continue;
            }
            if (o->msg->epoch != u->epoch || o->msg->last_seq <= u->seq) continue;
            write_msg(u, o->msg);
            u->seq = o->msg->last_seq;
            /* a hard bound on what one client may hold besides this
             * message (the timer's rule catches the slow ones sooner) */
            if (pending_bytes(u->req) > 4 * cap + o->msg->len) sub_end(u, BYE_SLOW);
        }
    }
    hn_live_out_free(list);
}

/* ---- once a second ------------------------------------------------------------------ */

static void on_timer(evutil_socket_t fd, short what, void *arg) {
    hn_sse *s = arg;
    (void)fd; (void)what;
    uint64_t now = hn_mono_ms();
    uint64_t ping = (uint64_t)s->cfg->sse_ping_s * 1000, life = (uint64_t)s->cfg->sse_max_lifetime_s * 1000;
    sub *u, *tmp;
    HASH_ITER(hh, s->subs, u, tmp) {
        if (!u->started) {
            /* the hub answers within a tick or a load; this is a hub stuck on Redis */
            if (now - u->opened_ms > (uint64_t)s->cfg->api_timeout_ms) sub_end(u, BYE_UNAVAILABLE);
            continue;
        }
        if (now - u->opened_ms >= life) {
            sub_end(u, BYE_LIFETIME);
            continue;
        }
        if (!s->host.token_ok(s->host.arg, u->token_id, u->widget_id)) {
            sub_end(u, BYE_REVOKED);
            continue;
        }
        /* slow: more than the cap waits, and it did not go down in a second
         * (a big snapshot on its way to a client that reads is not slow) */
        size_t p = pending_bytes(u->req);
        if (p > (size_t)s->cfg->sse_max_buffer_kb * 1024 && p >= u->last_pending) {
            sub_end(u, BYE_SLOW);
            continue;
        }
        u->last_pending = p;
        if (now - u->last_write_ms >= ping) write_text(u, ": ping\n\n", 8);
    }
}

/* ---- life cycle ------------------------------------------------------------------------ */

hn_sse *hn_sse_create(const hn_config *cfg, const hn_redis_cfg *rcfg, struct event_base *base,
                      const hn_sse_host *host) {
    hn_sse *s = hn_xcalloc(1, sizeof(*s));
    s->cfg = cfg;
    s->base = base;
    s->host = *host;
    s->live = hn_live_create(cfg, rcfg, base, deliver, s);
    s->timer = event_new(base, -1, EV_PERSIST, on_timer, s);
    return s;
}

int hn_sse_start(hn_sse *s, char *err, size_t cap) {
    if (hn_live_start(s->live, err, cap) != HN_OK) return HN_ERR;
    struct timeval tv = {1, 0};
    event_add(s->timer, &tv);
    return HN_OK;
}

int hn_sse_open(hn_sse *s, struct evhttp_request *req, int64_t widget_id, const char *token_id,
                uint32_t last_epoch, uint64_t last_seq, bool pages) {
    if (s->stopping || s->nsubs >= (size_t)s->cfg->sse_max_clients) return HN_AGAIN;
    sub *u = hn_xcalloc(1, sizeof(*u));
    u->id = ++s->next_id;
    u->widget_id = widget_id;
    u->s = s;
    u->req = req;
    u->pages = pages;
    snprintf(u->token_id, sizeof(u->token_id), "%s", token_id);
    u->opened_ms = u->last_write_ms = hn_mono_ms();
    HASH_ADD(hh, s->subs, id, sizeof(u->id), u);
    s->nsubs++;
    group *g;
    HASH_FIND(hh, s->groups, &widget_id, sizeof(widget_id), g);
    if (g == NULL) {
        g = hn_xcalloc(1, sizeof(*g));
        g->widget_id = widget_id;
        HASH_ADD(hh, s->groups, widget_id, sizeof(g->widget_id), g);
    }
    u->g = g;
    u->gnext = g->head;
    if (g->head) g->head->gprev = u;
    g->head = u;
    s->opened++;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    hn_httpguard_closecb(evcon, on_close, u);
    /* a stream is quiet between pings: evhttp's idle timeout must not cut it */
    evhttp_connection_set_timeout(evcon, (int)s->cfg->sse_ping_s * 4 + 10);
    hn_live_subscribe(s->live, widget_id, u->id, last_epoch, last_seq);
    return HN_OK;
}

hn_live *hn_sse_live(hn_sse *s) {
    return s->live;
}

void hn_sse_stop(hn_sse *s) {
    s->stopping = true;
    sub *u, *tmp;
    HASH_ITER(hh, s->subs, u, tmp) sub_end(u, BYE_STOPPING);
}

bool hn_sse_has_room(const hn_sse *s) {
    return !s->stopping && s->nsubs < (size_t)s->cfg->sse_max_clients;
}

void hn_sse_metrics(hn_sse *s, hn_buf *out) {
    const hn_prom_scalar scalars[] = {
        {.name = "herenow_sse_streams", .type = HN_PROM_GAUGE, .help = "Live streams open now.", .u = (uint64_t)s->nsubs},
        {.name = "herenow_sse_streams_opened_total", .type = HN_PROM_COUNTER, .help = "Live streams accepted.", .u = (uint64_t)s->opened},
        {.name = "herenow_sse_streams_started_total", .type = HN_PROM_COUNTER,
         .help = "Live streams that got their snapshot or replay.", .u = (uint64_t)s->started},
        {.name = "herenow_sse_bytes_total", .type = HN_PROM_COUNTER, .help = "Bytes written to live streams.", .u = (uint64_t)s->bytes},
        {.name = "herenow_sse_messages_total", .type = HN_PROM_COUNTER, .help = "Hub messages written to live streams.",
         .u = (uint64_t)s->messages},
    };
    hn_prom_scalars(out, scalars, HN_ARRAY_LEN(scalars));
    hn_prom_family(out, "herenow_sse_streams_closed_total", HN_PROM_COUNTER,
                   "Live streams ended, by reason.");
    for (int i = 0; i < BYE__COUNT; i++)
        hn_prom_u64(out, "herenow_sse_streams_closed_total", HN_PROM_L1("reason", bye_names[i]),
                    s->closed[i]);
    hn_live_metrics(s->live, out);
}

void hn_sse_destroy(hn_sse *s) {
    if (s == NULL) return;
    hn_live_destroy(s->live);     /* joins the hub first: no more output */
    sub *u, *tmp;
    HASH_ITER(hh, s->subs, u, tmp) {
        HASH_DEL(s->subs, u);
        free(u);
    }
    group *g, *gt;
    HASH_ITER(hh, s->groups, g, gt) {
        HASH_DEL(s->groups, g);
        hn_live_msg_unref(g->pages);
        free(g);
    }
    if (s->timer) event_free(s->timer);
    free(s);
}
