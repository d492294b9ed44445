/*
 * chattail.c: a worker's two Redis connections for chat (see chat.h,
 * chat_priv.h) — hiredis async on the worker's event base.
 *
 *   cmd:  XREVRANGE hn:chat:{w} + - COUNT 1   a widget's first cursor; a new
 *                                             downlink's start
 *         XRANGE hn:chat:{w} (<pos> + COUNT n a resume's backfill, page by page
 *   tail: XREAD COUNT n BLOCK 1000 STREAMS <every widget with downlinks> <cursors>
 *
 * On a Redis Cluster one XREAD cannot name streams of several slots, and
 * a blocked connection serves nothing else: each master holding a
 * widget's stream gets one connection (cmd and tail at once), and the tail
 * polls it every POLL_MS with one XREAD per widget, pipelined. A MOVED
 * answer updates the map (the process's, common/rshared.h, also asked
 * again) and drops the connection; what was asked on it is asked again,
 * routed by the new map. Chat messages then reach the visitor up to
 * POLL_MS later than on one server.
 *
 * hiredis 0.14 has no timeouts for async contexts: a watchdog (4× a second)
 * drops a connection whose connect, or a reply, takes too long
 * (HERENOW_REDIS_CONNECT_TIMEOUT_MS, HERENOW_REDIS_TIMEOUT_MS + the BLOCK).
 * A lost connection is made again with backoff; the widgets keep their
 * cursors and the downlinks their positions, so the tail goes on where it
 * was: nothing lost, nothing twice. Requests of a lost cmd connection are
 * asked again. Never freed inside a hiredis callback: a callback marks the
 * connection broken and the pump (an event of its own) drops it.
 */
#include "collector/chat_priv.h"
#include "common/log.h"
#include "common/rcl.h"
#include "common/rshared.h"
#include "proto/keys.h"

#include <hiredis/adapters/libevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK_MS        1000
#define XREAD_COUNT     256
#define PAGE            200      /* XRANGE entries per backfill request */
#define BACKOFF_MIN_MS  50
#define BACKOFF_MAX_MS  2000
#define WATCH_MS        250
#define POLL_MS         100      /* a cluster's tail */

static void pump(hn_chat *ch);

void chat_kick(hn_chat *ch) {
    if (!ch->stopping) event_active(ch->kick, 0, 0);
}

static void on_kick(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    pump(arg);
}

static void tail_gauge(hn_chat *ch) {
    uint64_t up = (uint64_t)ch->cmd.up + (uint64_t)ch->tail.up;
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++)
        if (ch->node[i]) up += ch->node[i]->up;
    HN_STAT_SET(ch->w->st.chat_tail_up, up);
}

/* ---- connections ------------------------------------------------------------------- */

static void backoff(rctx *r) {
    struct timeval tv = {r->backoff_ms / 1000, (r->backoff_ms % 1000) * 1000};
    evtimer_add(r->retry, &tv);
    r->backoff_ms = r->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : r->backoff_ms * 2;
}

/* Drops the connection (never from a hiredis callback); its pending
 * callbacks run with a NULL reply. */
static void drop(rctx *r, const char *why) {
    redisAsyncContext *ac = r->ac;
    if (ac == NULL) return;
    hn_warn("event=chat_redis_lost conn=%s worker=%d reason='%s'", r->name, r->ch->w->id, why);
    HN_STAT_ADD(r->ch->w->st.chat_tail_errors, 1);
    r->ac = NULL;
    r->up = r->broken = false;
    r->due = 0;
    tail_gauge(r->ch);
    redisAsyncFree(ac);
    backoff(r);
}

static void on_connect(const redisAsyncContext *ac, int status) {
    rctx *r = ac->data;
    if (r == NULL || r->ac != ac) return;
    if (status != REDIS_OK) {   /* hiredis frees it after this call */
        hn_warn("event=chat_redis_connect_failed conn=%s worker=%d err='%s'", r->name,
                r->ch->w->id, ac->errstr);
        HN_STAT_ADD(r->ch->w->st.chat_tail_errors, 1);
        r->ac = NULL;
        backoff(r);
        return;
    }
    r->up = true;
    if (r->ever_up) HN_STAT_ADD(r->ch->w->st.chat_tail_reconnects, 1);
    r->ever_up = true;
    tail_gauge(r->ch);
    chat_kick(r->ch);
}

static void on_disconnect(const redisAsyncContext *ac, int status) {
    rctx *r = ac->data;
    if (r == NULL || r->ac != ac) return;      /* our own drop() */
    hn_warn("event=chat_redis_lost conn=%s worker=%d reason='%s'", r->name, r->ch->w->id,
            status == REDIS_OK ? "closed" : ac->errstr);
    HN_STAT_ADD(r->ch->w->st.chat_tail_errors, 1);
    r->ac = NULL;
    r->up = r->broken = false;
    r->due = 0;
    tail_gauge(r->ch);
    backoff(r);
}

/* AUTH / SELECT: sent first, so everything after runs on the right db. */
static void on_hello(redisAsyncContext *ac, void *reply, void *priv) {
    redisReply *rep = reply;
    rctx *r = priv;
    (void)ac;
    if (rep && rep->type == REDIS_REPLY_ERROR) {
        hn_warn("event=chat_redis_hello_failed conn=%s err='%.*s'", r->name, (int)rep->len, rep->str);
        r->broken = true;
        chat_kick(r->ch);
    }
}

static void connect_now(rctx *r) {
    hn_redis_addr node, *a = &r->ch->w->col->raddr;
    if (r->host[0]) {                          /* a cluster's master */
        node = *a;
        snprintf(node.host, sizeof(node.host), "%s", r->host);
        node.port = r->port;
        node.path[0] = '\0';
        node.db = 0;
        a = &node;
    }
    redisAsyncContext *ac = a->path[0] ? redisAsyncConnectUnix(a->path)
                                       : redisAsyncConnect(a->host, a->port);
    if (ac == NULL || ac->err) {
        hn_warn("event=chat_redis_connect_failed conn=%s worker=%d err='%s'", r->name,
                r->ch->w->id, ac ? ac->errstr : "out of memory");
        HN_STAT_ADD(r->ch->w->st.chat_tail_errors, 1);
        if (ac) redisAsyncFree(ac);
        backoff(r);
        return;
    }
    ac->data = r;
    redisLibeventAttach(ac, r->ch->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->since_ms = hn_mono_ms();
    r->due = 0;
    if (a->password[0]) redisAsyncCommand(ac, on_hello, r, "AUTH %s", a->password);
    if (a->db) redisAsyncCommand(ac, on_hello, r, "SELECT %d", a->db);
}

static void on_retry(evutil_socket_t fd, short what, void *arg) {
    rctx *r = arg;
    (void)fd; (void)what;
    pump(r->ch);
}

static void sent(rctx *r) {
    if (r->due++ == 0) r->progress_ms = hn_mono_ms();
}

static void replied(rctx *r, const redisReply *rep) {
    if (r->due) r->due--;
    r->progress_ms = hn_mono_ms();
    if (rep->type != REDIS_REPLY_ERROR) r->backoff_ms = BACKOFF_MIN_MS;   /* it works */
}

static void watch_one(rctx *r, uint64_t now) {
    const hn_config *cfg = &r->ch->w->col->cfg;
    if (r->ac && !r->up && now - r->since_ms > (uint64_t)cfg->redis_connect_timeout_ms)
        drop(r, "connect timeout");
    else if (r->up && r->due && now - r->progress_ms > (uint64_t)(cfg->redis_timeout_ms + r->grace_ms))
        drop(r, "reply timeout");
}

static void on_watch(evutil_socket_t fd, short what, void *arg) {
    hn_chat *ch = arg;
    (void)fd; (void)what;
    uint64_t now = hn_mono_ms();
    watch_one(&ch->cmd, now);
    watch_one(&ch->tail, now);
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++)
        if (ch->node[i]) watch_one(ch->node[i], now);
}

/* ---- widgets and requests -------------------------------------------------------- */

cwidget *chat_widget(hn_chat *ch, uint32_t id) {
    for (cwidget *cw = ch->widgets; cw; cw = cw->next)
        if (cw->id == id) return cw;
    cwidget *cw = hn_xcalloc(1, sizeof(*cw));
    cw->id = id;
    hn_key_chat(cw->key, id);
    cw->next = ch->widgets;
    ch->widgets = cw;
    return cw;
}

void chat_queue(hn_chat *ch, dl *d) {
    d->queued = true;
    d->todo_next = NULL;
    if (ch->todo_tail) ch->todo_tail->todo_next = d;
    else ch->todo_head = d;
    ch->todo_tail = d;
    chat_kick(ch);
}

static bool is_error(rctx *r, const redisReply *rep, const char *what) {
    if (rep->type != REDIS_REPLY_ERROR) return false;
    hn_chat *ch = r->ch;
    if (ch->cluster && ch->map && (strncmp(rep->str, "MOVED ", 6) == 0 || strncmp(rep->str, "ASK ", 4) == 0)) {
        /* "MOVED 3999 host:port": the map learns it now, and asks for the rest */
        bool moved = rep->str[0] == 'M';
        hn_rcl_note(moved ? HN_RCL_MOVED : HN_RCL_ASK);
        const char *sp = strchr(rep->str, ' '), *colon = strrchr(rep->str, ':');
        long slot = sp ? strtol(sp + 1, NULL, 10) : -1;
        const char *hp = sp ? strchr(sp + 1, ' ') : NULL;
        if (moved && hp && colon && colon > hp + 1 && slot >= 0 && slot < HN_SLOTS && colon - hp - 1 < 256) {
            char host[256];
            snprintf(host, sizeof(host), "%.*s", (int)(colon - hp - 1), hp + 1);
            hn_rmap_moved(ch->map, (uint16_t)slot, host, atoi(colon + 1));
        }
        hn_rshared_want();
    }
    hn_warn("event=chat_redis_error conn=%s op=%s err='%.*s'", r->name, what, (int)rep->len, rep->str);
    r->broken = true;     /* dropped and made again with backoff */
    chat_kick(r->ch);
    return true;
}

/* An entry [id, [field, value, ...]]: its id, false if it is not one. */
static bool entry_id(const redisReply *e, hn_xid *id) {
    return e->type == REDIS_REPLY_ARRAY && e->elements == 2 &&
           e->element[0]->type == REDIS_REPLY_STRING &&
           hn_xid_parse(e->element[0]->str, e->element[0]->len, id);
}

static void on_widget_start(redisAsyncContext *ac, void *reply, void *priv) {
    cwidget *cw = priv;
    rctx *r = ac->data;
    redisReply *rep = reply;
    cw->start_inflight = false;
    if (rep == NULL || r == NULL) return;     /* lost: asked again on the next connection */
    replied(r, rep);
    if (is_error(r, rep, "xrevrange")) return;
    hn_xid id = {0, 0};
    if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 && !entry_id(rep->element[0], &id))
        id = (hn_xid){0, 0};
    cw->cursor = id;
    cw->started = true;
    chat_kick(r->ch);
}

static void on_dl_reply(redisAsyncContext *ac, void *reply, void *priv) {
    dl *d = priv;
    rctx *r = ac->data;
    redisReply *rep = reply;
    if (rep == NULL || r == NULL) {            /* lost: asked again on the next connection */
        d->inflight = false;
        if (!d->dead) chat_queue(d->ch, d);
        dl_maybe_free(d);
        return;
    }
    replied(r, rep);
    if (d->dead || is_error(r, rep, d->resume ? "xrange" : "xrevrange")) {
        d->inflight = false;
        if (!d->dead) chat_queue(d->ch, d);
        dl_maybe_free(d);
        return;
    }
    bool more = false;
    if (rep->type == REDIS_REPLY_ARRAY && !d->resume) {
        hn_xid id = {0, 0};
        if (rep->elements == 1 && entry_id(rep->element[0], &id)) d->pos = id;
    } else if (rep->type == REDIS_REPLY_ARRAY) {
        hn_buf *b = &d->ch->scratch;
        for (size_t i = 0; i < rep->elements && !d->dead; i++) {
            const redisReply *e = rep->element[i];
            hn_xid id;
            if (!entry_id(e, &id) || hn_xid_cmp(id, d->pos) <= 0) continue;
            const char *sid;
            size_t sidlen;
            hn_buf_reset(b);
            if (hn_chat_event(b, e->element[0]->str, e->element[0]->len, e->element[1], &sid, &sidlen) &&
                sidlen == d->sidlen && memcmp(sid, d->sid, sidlen) == 0)
                dl_write(d, id, b->p, b->len);
            d->pos = id;
        }
        more = rep->elements >= PAGE;
    }
    d->inflight = false;
    if (d->dead) {
        dl_maybe_free(d);
    } else if (more) {
        chat_queue(d->ch, d);
    } else {
        dl_go_live(d);
        dl_maybe_free(d);
    }
}

/* One stream of an XREAD reply: [key, [entry, ...]]. */
static void tail_stream(hn_chat *ch, const redisReply *s) {
    if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 || s->element[0]->type != REDIS_REPLY_STRING ||
        s->element[1]->type != REDIS_REPLY_ARRAY)
        return;
    cwidget *cw = NULL;
    for (cwidget *x = ch->widgets; x; x = x->next)
        if (strlen(x->key) == s->element[0]->len && memcmp(x->key, s->element[0]->str, s->element[0]->len) == 0)
            cw = x;
    if (cw == NULL || !cw->started) return;    /* gone, or made again since the XREAD was sent */
    const redisReply *es = s->element[1];
    hn_buf *b = &ch->scratch;
    for (size_t i = 0; i < es->elements; i++) {
        const redisReply *e = es->element[i];
        hn_xid id;
        if (!entry_id(e, &id) || hn_xid_cmp(id, cw->cursor) <= 0) continue;
        cw->cursor = id;
        const char *sid;
        size_t sidlen;
        hn_buf_reset(b);
        if (!hn_chat_event(b, e->element[0]->str, e->element[0]->len, e->element[1], &sid, &sidlen))
            continue;
        for (dl *d = cw->head, *nx; d; d = nx) {
            nx = d->next;
            if (d->sidlen != sidlen || memcmp(d->sid, sid, sidlen) != 0) continue;
            if (!d->live) dl_buffer(d, id, b->p, b->len);
            else if (hn_xid_cmp(id, d->pos) > 0) dl_write(d, id, b->p, b->len);
            dl_maybe_free(d);
        }
    }
}

static void on_xread(redisAsyncContext *ac, void *reply, void *priv) {
    hn_chat *ch = priv;
    rctx *r = ac->data;
    redisReply *rep = reply;
    ch->xread_inflight = false;
    if (rep == NULL || r == NULL) return;
    replied(r, rep);
    if (is_error(r, rep, "xread")) return;
    if (rep->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < rep->elements; i++) tail_stream(ch, rep->element[i]);
    chat_kick(ch);
}

static void send_xread(hn_chat *ch) {
    size_t n = 0;
    for (cwidget *cw = ch->widgets; cw; cw = cw->next) n += cw->started;
    if (n == 0) return;
    size_t argc = 6 + 2 * n;
    const char **argv = hn_xcalloc(argc, sizeof(char *));
    size_t *lens = hn_xcalloc(argc, sizeof(size_t));
    char *ids = hn_xmalloc(n * 44);
    char block[16];
    snprintf(block, sizeof(block), "%d", BLOCK_MS);
    const char *head[6] = {"XREAD", "COUNT", "256", "BLOCK", block, "STREAMS"};
    for (size_t i = 0; i < 6; i++) argv[i] = head[i], lens[i] = strlen(head[i]);
    size_t i = 0;
    for (cwidget *cw = ch->widgets; cw; cw = cw->next) {
        if (!cw->started) continue;
        argv[6 + i] = cw->key, lens[6 + i] = strlen(cw->key);
        char *id = ids + i * 44;
        lens[6 + n + i] = (size_t)snprintf(id, 44, "%llu-%llu", (unsigned long long)cw->cursor.ms,
                                           (unsigned long long)cw->cursor.seq);
        argv[6 + n + i] = id;
        i++;
    }
    redisAsyncCommandArgv(ch->tail.ac, on_xread, ch, (int)argc, argv, lens);
    ch->xread_inflight = true;
    sent(&ch->tail);
    free(argv);
    free(lens);
    free(ids);
}

/* ---- a cluster's connections -------------------------------------------------------- */

static rctx *node_rctx(hn_chat *ch, const char *host, int port) {
    int freei = -1;
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++) {
        rctx *r = ch->node[i];
        if (!r) {
            if (freei < 0) freei = i;
        } else if (r->port == port && strcmp(r->host, host) == 0) {
            return r;
        }
    }
    if (freei < 0) return NULL;
    rctx *r = hn_xcalloc(1, sizeof(*r));
    r->ch = ch;
    r->name = "node";
    r->backoff_ms = BACKOFF_MIN_MS;
    r->retry = evtimer_new(ch->base, on_retry, r);
    snprintf(r->host, sizeof(r->host), "%s", host);
    r->port = port;
    ch->node[freei] = r;
    return r;
}

/* The connection a widget's requests go on: cmd (or tail) on one server;
 * its master's on a cluster (NULL while no map says). */
static rctx *route(hn_chat *ch, const cwidget *cw, bool tail) {
    if (!ch->cluster) return tail ? &ch->tail : &ch->cmd;
    if (!ch->map) return NULL;
    int m = hn_rmap_master(ch->map, hn_slot(cw->key, strlen(cw->key)));
    return m < 0 ? NULL : node_rctx(ch, ch->map->nodes[m].host, ch->map->nodes[m].port);
}

static void on_xread_node(redisAsyncContext *ac, void *reply, void *priv) {
    rctx *r = priv;
    redisReply *rep = reply;
    if (r->xreads) r->xreads--;
    if (rep == NULL || ac->data == NULL) return;
    replied(r, rep);
    if (is_error(r, rep, "xread")) return;
    if (rep->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < rep->elements; i++) tail_stream(r->ch, rep->element[i]);
}

/* Every POLL_MS: an XREAD per started widget, on its master's connection. */
static void on_poll(evutil_socket_t fd, short what, void *arg) {
    hn_chat *ch = arg;
    (void)fd; (void)what;
    if (ch->stopping) return;
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++)
        if (ch->node[i]) ch->node[i]->skip = ch->node[i]->xreads > 0;
    for (cwidget *cw = ch->widgets; cw; cw = cw->next) {
        rctx *r = cw->started ? route(ch, cw, true) : NULL;
        if (!r || !r->up || r->skip) continue;
        char id[48];
        snprintf(id, sizeof(id), "%llu-%llu", (unsigned long long)cw->cursor.ms, (unsigned long long)cw->cursor.seq);
        redisAsyncCommand(r->ac, on_xread_node, r, "XREAD COUNT %d STREAMS %s %s", XREAD_COUNT, cw->key, id);
        r->xreads++;
        sent(r);
    }
    chat_kick(ch);
}

static void send_start(hn_chat *ch, dl *d) {
    rctx *r = route(ch, d->cw, false);
    const char *key = d->cw->key;
    if (d->resume) {
        char from[48];
        snprintf(from, sizeof(from), "(%llu-%llu", (unsigned long long)d->pos.ms,
                 (unsigned long long)d->pos.seq);
        redisAsyncCommand(r->ac, on_dl_reply, d, "XRANGE %s %s + COUNT %d", key, from, PAGE);
    } else {
        redisAsyncCommand(r->ac, on_dl_reply, d, "XREVRANGE %s + - COUNT 1", key);
    }
    d->inflight = true;
    sent(r);
}

/* Connects what is needed, drops what is broken, sends what is due. Runs
 * from events only (never inside a hiredis callback). */
static void pump(hn_chat *ch) {
    if (ch->stopping) return;
    /* widgets without downlinks leave (the XREAD in flight may still name them: ignored) */
    for (cwidget **pp = &ch->widgets; *pp;) {
        cwidget *cw = *pp;
        if (cw->n == 0 && !cw->start_inflight) {
            *pp = cw->next;
            free(cw);
        } else {
            pp = &cw->next;
        }
    }
    if (ch->cluster && hn_rshared_version() != ch->mapver) {
        if (!ch->map) ch->map = hn_xmalloc(sizeof(hn_rmap));
        ch->mapver = hn_rshared_copy(ch->map);
    }
    bool need = ch->widgets != NULL || ch->todo_head != NULL;
    if (!ch->cluster) {
        rctx *rs[2] = {&ch->cmd, &ch->tail};
        for (int i = 0; i < 2; i++) {
            rctx *r = rs[i];
            if (r->broken) drop(r, "error reply");
            if (need && r->ac == NULL && !evtimer_pending(r->retry, NULL)) connect_now(r);
        }
    } else {
        /* the masters of the widgets' streams, and of the downlinks waiting */
        for (int i = 0; i < HN_RMAP_NODES_MAX; i++)
            if (ch->node[i] && ch->node[i]->broken) drop(ch->node[i], "error reply");
        for (cwidget *cw = ch->widgets; cw; cw = cw->next) {
            rctx *r = route(ch, cw, false);
            if (r && r->ac == NULL && !evtimer_pending(r->retry, NULL)) connect_now(r);
        }
    }
    for (cwidget *cw = ch->widgets; cw; cw = cw->next) {
        rctx *r = route(ch, cw, false);
        if (r && r->up && !cw->started && !cw->start_inflight) {
            redisAsyncCommand(r->ac, on_widget_start, cw, "XREVRANGE %s + - COUNT 1", cw->key);
            cw->start_inflight = true;
            cw->start_on = r;
            sent(r);
        }
    }
    /* downlinks' starts, in order; those whose connection is not up wait,
     * and so does one whose widget's cursor is not known yet nor asked on
     * that same connection (asked before it there, it is taken before it:
     * after a map change it may be in flight on the old master) */
    dl *wait_head = NULL, *wait_tail = NULL;
    while (ch->todo_head) {
        dl *d = ch->todo_head;
        ch->todo_head = d->todo_next;
        if (ch->todo_head == NULL) ch->todo_tail = NULL;
        rctx *r = d->dead ? NULL : route(ch, d->cw, false);
        bool after_cursor = !d->dead && r &&
                            (d->cw->started || (d->cw->start_inflight && d->cw->start_on == r));
        if (!d->dead && !(r && r->up && after_cursor)) {
            d->todo_next = NULL;
            if (wait_tail) wait_tail->todo_next = d;
            else wait_head = d;
            wait_tail = d;
            continue;
        }
        d->queued = false;
        if (d->dead) dl_maybe_free(d);
        else send_start(ch, d);
    }
    ch->todo_head = wait_head;
    ch->todo_tail = wait_tail;
    if (!ch->cluster && ch->tail.up && !ch->xread_inflight) send_xread(ch);
}

/* ---- lifecycle ----------------------------------------------------------------------- */

void chat_tail_init(hn_chat *ch) {
    ch->kick = event_new(ch->base, -1, 0, on_kick, ch);
    ch->watch = event_new(ch->base, -1, EV_PERSIST, on_watch, ch);
    struct timeval tv = {0, WATCH_MS * 1000};
    evtimer_add(ch->watch, &tv);
    rctx *rs[2] = {&ch->cmd, &ch->tail};
    const char *names[2] = {"cmd", "tail"};
    for (int i = 0; i < 2; i++) {
        rs[i]->ch = ch;
        rs[i]->name = names[i];
        rs[i]->backoff_ms = BACKOFF_MIN_MS;
        rs[i]->retry = evtimer_new(ch->base, on_retry, rs[i]);
    }
    ch->tail.grace_ms = BLOCK_MS;
    ch->cluster = ch->w->col->rcfg.cluster;
    if (ch->cluster) {
        ch->poll = event_new(ch->base, -1, EV_PERSIST, on_poll, ch);
        struct timeval ptv = {0, POLL_MS * 1000};
        evtimer_add(ch->poll, &ptv);
    }
}

void chat_tail_close(hn_chat *ch) {
    rctx *rs[2 + HN_RMAP_NODES_MAX] = {&ch->cmd, &ch->tail};
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++) rs[2 + i] = ch->node[i];
    for (int i = 0; i < 2 + HN_RMAP_NODES_MAX; i++) {
        rctx *r = rs[i];
        if (!r) continue;
        redisAsyncContext *ac = r->ac;
        r->ac = NULL;
        r->up = false;
        if (ac) redisAsyncFree(ac);
        if (r->retry) event_free(r->retry);
        r->retry = NULL;
    }
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++) {
        free(ch->node[i]);
        ch->node[i] = NULL;
    }
    free(ch->map);
    ch->map = NULL;
    if (ch->poll) event_free(ch->poll);
    ch->poll = NULL;
    tail_gauge(ch);
    if (ch->kick) event_free(ch->kick);
    if (ch->watch) event_free(ch->watch);
    ch->kick = ch->watch = NULL;
}
