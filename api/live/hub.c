/* hub.c: the live hub, see live.h. */
#include "api/live/hub_priv.h"
#include "common/prom.h"

#include "api/live/snapshot.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "proto/keys.h"
#include "proto/mpcheck.h"
#include "proto/record.h"

#include <event2/event.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uthash.h>

static int64_t now_wall_ms(void) {
    return (int64_t)hn_now_ms();
}

/* ---- output -------------------------------------------------------------------------- */

void hn_hub_out_push(hn_live *l, hn_live_kind k, int64_t wid, uint64_t sub, hn_live_msg *m,
                     hn_live_start_kind sk) {
    hn_live_out *o = hn_xcalloc(1, sizeof(*o));
    o->kind = k;
    o->start = sk;
    o->widget_id = wid;
    o->sub = sub;
    o->msg = m;
    *l->out_tail = o;
    l->out_tail = &o->next;
}

static void post(hn_live *l) {
    if (l->out == NULL) return;
    pthread_mutex_lock(&l->mu);
    *l->outbox_tail = l->out;
    l->outbox_tail = l->out_tail;
    pthread_mutex_unlock(&l->mu);
    l->out = NULL;
    l->out_tail = &l->out;
    event_active(l->notify, EV_READ, 0);
}

/* Main thread: hands what the hub posted to the deliver callback. */
static void on_notify(evutil_socket_t fd, short what, void *arg) {
    hn_live *l = arg;
    (void)fd; (void)what;
    pthread_mutex_lock(&l->mu);
    hn_live_out *o = l->outbox;
    l->outbox = NULL;
    l->outbox_tail = &l->outbox;
    pthread_mutex_unlock(&l->mu);
    if (o) l->deliver(l->arg, o);
}

void hn_live_alert(hn_live *l, int64_t widget_id, const char *json, size_t len) {
    hn_buf b = {0};
    hn_buf_printf(&b, "event: alert\ndata: ");
    hn_buf_append(&b, json, len);
    hn_buf_append(&b, "\n\n", 2);
    hn_live_out *o = hn_xcalloc(1, sizeof(*o));
    o->kind = HN_LIVE_ALERT;
    o->widget_id = widget_id;
    o->msg = hn_hub_msg_new(b.p, b.len, 0, 0, 0);
    hn_buf_free(&b);
    pthread_mutex_lock(&l->mu);
    *l->outbox_tail = o;
    l->outbox_tail = &o->next;
    pthread_mutex_unlock(&l->mu);
    event_active(l->notify, EV_READ, 0);
}

/* ---- widgets -------------------------------------------------------------------------------- */

static int shard_of(const hn_live *l, int64_t wid) {
    return (int)(wid % l->nshards);
}

static lwidget *widget_find(hn_live *l, int64_t wid) {
    lwidget *w;
    HASH_FIND(hh, l->widgets, &wid, sizeof(wid), w);
    return w;
}

static lwidget *widget_get(hn_live *l, int64_t wid) {
    lwidget *w = widget_find(l, wid);
    if (w) return w;
    w = hn_xcalloc(1, sizeof(*w));
    w->id = wid;
    do w->epoch = (uint32_t)hn_rng_next(&l->rng); while (w->epoch == 0);
    HASH_ADD(hh, l->widgets, id, sizeof(w->id), w);
    l->shard_watch[shard_of(l, wid)]++;
    return w;
}

static void widget_free(hn_live *l, lwidget *w) {
    lsess *s, *tmp;
    HASH_ITER(hh, w->sessions, s, tmp) hn_hub_sess_drop(w, s);
    for (size_t i = 0; i < w->ring_n; i++)
        hn_live_msg_unref(w->ring[(w->ring_head + i) % (size_t)l->cfg->sse_replay]);
    free(w->ring);
    hn_buf_free(&w->tick);
    free(w->pending);
    int sh = shard_of(l, w->id);
    if (--l->shard_watch[sh] == 0) l->shard_id[sh][0] = '\0';
    hn_hub_pages_unpublish(l, w->id);
    HASH_DEL(l->widgets, w);
    free(w);
}

/* ---- Redis ------------------------------------------------------------------------------------ */

static void redis_lost(hn_live *l, const char *what) {
    const char *why = l->rc && hn_rcl_err(l->rc) ? hn_rcl_errstr(l->rc) : "error reply";
    hn_warn("event=live_redis_error op=%s error='%s'", what, why);
    atomic_fetch_add_explicit(&l->redis_errors, 1, memory_order_relaxed);
    if (l->rc) hn_rcl_free(l->rc);
    l->rc = NULL;
    l->retry_at = hn_mono_ms() + RETRY_MS;
    /* what came meanwhile is found by a reconcile as soon as Redis is back */
    lwidget *w, *tmp;
    HASH_ITER(hh, l->widgets, w, tmp) w->next_reconcile = 0;
}

static bool connected(hn_live *l) {
    if (l->rc) return true;
    if (hn_mono_ms() < l->retry_at) return false;
    char err[256];
    int64_t t = l->cfg->api_timeout_ms < 2000 ? l->cfg->api_timeout_ms : 2000;
    l->rc = hn_rcl_connect(&l->rcfg, (int)t, err, sizeof(err));
    if (l->rc == NULL) {
        hn_warn("event=live_redis_connect_failed error='%s'", err);
        atomic_fetch_add_explicit(&l->redis_errors, 1, memory_order_relaxed);
        l->retry_at = hn_mono_ms() + RETRY_MS;
        return false;
    }
    return true;
}

static redisReply *cmd(hn_live *l, int argc, const char **argv) {
    size_t len[16];
    for (int i = 0; i < argc; i++) len[i] = strlen(argv[i]);
    redisReply *r = hn_rcl_command_argv(l->rc, argc, argv, len);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        if (r) {
            hn_warn("event=live_redis_reply_error cmd=%s error='%s'", argv[0], r->str);
            freeReplyObject(r);
        }
        redis_lost(l, argv[0]);
        return NULL;
    }
    return r;
}

/* The newest entry id of a stream key into out ("0-0" when it is empty). */
static int newest_id(hn_live *l, const char *key, char *out, size_t cap) {
    const char *argv[] = {"XREVRANGE", key, "+", "-", "COUNT", "1"};
    redisReply *r = cmd(l, 6, argv);
    if (r == NULL) return HN_ERR;
    snprintf(out, cap, "0-0");
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->type == REDIS_REPLY_ARRAY &&
        r->element[0]->elements >= 1 && r->element[0]->element[0]->type == REDIS_REPLY_STRING)
        snprintf(out, cap, "%s", r->element[0]->element[0]->str);
    freeReplyObject(r);
    return HN_OK;
}

/* The shard's newest entry id (where tailing starts): before the first full
 * read of a widget, so that nothing between the two is missed. */
static int tail_from_now(hn_live *l, int sh) {
    char key[HN_KEY_CAP];
    hn_key_stream(key, (unsigned)sh, (unsigned)l->nshards);
    return newest_id(l, key, l->shard_id[sh], sizeof(l->shard_id[sh]));
}

typedef struct rec_ctx {
    hn_live *l;
} rec_ctx;

static int on_record(const hn_record *r, void *arg) {
    rec_ctx *c = arg;
    atomic_fetch_add_explicit(&c->l->records, 1, memory_order_relaxed);
    lwidget *w = widget_find(c->l, r->widget_id);
    if (w == NULL || !w->loaded) return HN_OK;
    lsess *s = hn_hub_sess_get(c->l, w, r->b.s.p, r->b.s.len);
    if (s == NULL) return HN_OK;
    s->dirty = true;
    if (r->b.type == HN_T_END) s->end_seen = true;
    return HN_OK;
}

/* One XREAD reads the stream shards the watched widgets live on and those
 * widgets' hn:chat:{w} keys (docs/CHAT.md: the api writes a session's chat
 * fields with an entry there and no beacon), 64 keys at a time, again while
 * replies come back full. Records and chat entries mark their sessions dirty. */
typedef struct src {
    char     key[HN_KEY_CAP];
    char    *id;                /* the cursor: l->shard_id[sh] or w->chat_id */
    size_t   idcap;
    lwidget *w;                 /* NULL: a stream shard */
} src;

static void chat_entry(hn_live *l, lwidget *w, const redisReply *fv) {
    for (size_t k = 0; fv->type == REDIS_REPLY_ARRAY && k + 1 < fv->elements; k += 2) {
        if (fv->element[k]->type != REDIS_REPLY_STRING || strcmp(fv->element[k]->str, "s") != 0 ||
            fv->element[k + 1]->type != REDIS_REPLY_STRING)
            continue;
        lsess *ss = hn_hub_sess_get(l, w, fv->element[k + 1]->str, fv->element[k + 1]->len);
        if (ss) ss->dirty = true;
    }
}

static void stream_entry(hn_live *l, const redisReply *fv) {
    for (size_t k = 0; fv->type == REDIS_REPLY_ARRAY && k + 1 < fv->elements; k += 2) {
        if (fv->element[k]->type != REDIS_REPLY_STRING || strcmp(fv->element[k]->str, HN_STREAM_FIELD) != 0 ||
            fv->element[k + 1]->type != REDIS_REPLY_STRING)
            continue;
        rec_ctx c = {l};
        char err[160];
        if (hn_record_decode_batch(l->dec, fv->element[k + 1]->str, fv->element[k + 1]->len, on_record, &c,
                                   err, sizeof(err)) != HN_OK)
            atomic_fetch_add_explicit(&l->decode_errors, 1, memory_order_relaxed);
    }
}

static int read_batch(hn_live *l, src *v, int n) {
    for (int round = 0; round < XREAD_ROUNDS; round++) {
        const char *argv[4 + 2 * 64];
        int argc = 0;
        argv[argc++] = "XREAD";
        argv[argc++] = "COUNT";
        argv[argc++] = XREAD_COUNT;
        argv[argc++] = "STREAMS";
        for (int i = 0; i < n; i++) argv[argc++] = v[i].key;
        for (int i = 0; i < n; i++) argv[argc++] = v[i].id;
        redisReply *r = hn_rcl_xread(l->rc, argc, argv);      /* a cluster: one XREAD per stream */
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            if (r) freeReplyObject(r);
            redis_lost(l, "XREAD");
            return HN_ERR;
        }
        bool full = false;
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            redisReply *kv = r->element[i];
            if (kv->type != REDIS_REPLY_ARRAY || kv->elements != 2 ||
                kv->element[0]->type != REDIS_REPLY_STRING || kv->element[1]->type != REDIS_REPLY_ARRAY)
                continue;
            src *from = NULL;
            for (int k = 0; k < n && from == NULL; k++)
                if (strcmp(kv->element[0]->str, v[k].key) == 0) from = &v[k];
            if (from == NULL) continue;
            redisReply *entries = kv->element[1];
            if (entries->elements >= (size_t)atoi(XREAD_COUNT)) full = true;
            for (size_t j = 0; j < entries->elements; j++) {
                redisReply *e = entries->element[j];
                if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
                    e->element[0]->type != REDIS_REPLY_STRING)
                    continue;
                snprintf(from->id, from->idcap, "%s", e->element[0]->str);
                if (from->w) chat_entry(l, from->w, e->element[1]);
                else stream_entry(l, e->element[1]);
            }
        }
        freeReplyObject(r);
        if (!full) return HN_OK;
    }
    return HN_OK;
}

static int read_streams(hn_live *l) {
    src v[64];
    int n = 0;
    lwidget *w, *tmp;
    for (int sh = 0; sh < l->nshards; sh++) {
        if (l->shard_watch[sh] == 0 || l->shard_id[sh][0] == '\0') continue;
        v[n] = (src){.id = l->shard_id[sh], .idcap = sizeof(l->shard_id[sh]), .w = NULL, .key = {0}};
        hn_key_stream(v[n++].key, (unsigned)sh, (unsigned)l->nshards);
        if (n == 64) {
            if (read_batch(l, v, n) != HN_OK) return HN_ERR;
            n = 0;
        }
    }
    HASH_ITER(hh, l->widgets, w, tmp) {
        if (!w->loaded || w->chat_id[0] == '\0') continue;
        v[n] = (src){.id = w->chat_id, .idcap = sizeof(w->chat_id), .w = w, .key = {0}};
        hn_key_chat(v[n++].key, w->id);
        if (n == 64) {
            if (read_batch(l, v, n) != HN_OK) return HN_ERR;
            n = 0;
        }
    }
    return n ? read_batch(l, v, n) : HN_OK;
}

/* Compares the widget's list with hn:live: sessions it lacks are read at
 * the flush, sessions no longer there leave. */
static int reconcile(hn_live *l, lwidget *w, int64_t now) {
    char key[HN_KEY_CAP], min[32];
    hn_key_live(key, w->id);
    snprintf(min, sizeof(min), "(%lld", (long long)(now - l->cfg->live_window_s * 1000));
    /* The newest HERENOW_SSE_MAX_SESSIONS, as the list holds at most that. */
    char lim[32];
    snprintf(lim, sizeof(lim), "%lld", (long long)l->cfg->sse_max_sessions);
    const char *argv[] = {"ZREVRANGEBYSCORE", key, "+inf", min, "WITHSCORES", "LIMIT", "0", lim};
    redisReply *r = cmd(l, 8, argv);
    if (r == NULL) return HN_ERR;
    atomic_fetch_add_explicit(&l->reconciles, 1, memory_order_relaxed);
    lsess *s, *tmp;
    HASH_ITER(hh, w->sessions, s, tmp) s->seen = false;
    int64_t lowest = INT64_MAX;          /* the oldest score the answer holds */
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
        redisReply *m = r->element[i], *sc = r->element[i + 1];
        if (m->type != REDIS_REPLY_STRING || sc->type != REDIS_REPLY_STRING) continue;
        int64_t score = (int64_t)strtod(sc->str, NULL);
        if (score < lowest) lowest = score;
        s = hn_hub_sess_get(l, w, m->str, m->len);
        if (s == NULL) continue;
        s->seen = true;
        if (!s->known || score != s->score) s->dirty = true;
    }
    w->capped = r->type == REDIS_REPLY_ARRAY && r->elements / 2 >= (size_t)l->cfg->sse_max_sessions;
    if (w->capped) atomic_fetch_add_explicit(&l->capped, 1, memory_order_relaxed);
    freeReplyObject(r);
    HASH_ITER(hh, w->sessions, s, tmp) {
        if (s->seen || s->dirty) continue;      /* a dirty one is read now anyway */
        /* A known one is read at the flush, which finds why it left (its
         * end record may not be read yet: another shard, another node) —
         * unless the list is capped and it is not newer than the oldest of
         * the newest HERENOW_SSE_MAX_SESSIONS (a tie at the cut included):
         * then it leaves the list, still live. */
        if (s->known && !(w->capped && s->score <= lowest)) {
            s->dirty = true;
            continue;
        }
        if (s->known) hn_hub_emit_leave(l, w, s, "gone");
        hn_hub_sess_drop(w, s);
    }
    w->next_reconcile = hn_mono_ms() + (uint64_t)l->cfg->sse_reconcile_ms;
    return HN_OK;
}

/* The end script's mark in an HGETALL reply (proto/keys.h, HN_SESS_ENDED):
 * the q of the session's last applied end, which names the way out while no
 * beacon numbered above it has written the hash since (a session back after
 * its end keeps the mark; a beacon sent before the end but flushed after it
 * writes a lower q). */
static bool ended_mark(const redisReply *h) {
    const char *ended = NULL, *q = NULL;
    for (size_t i = 0; h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        const redisReply *k = h->element[i], *v = h->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        if (strcmp(k->str, HN_SESS_ENDED) == 0) ended = v->str;
        else if (strcmp(k->str, HN_SESS_SEQ) == 0) q = v->str;
    }
    return ended && (q == NULL || strtoull(q, NULL, 10) <= strtoull(ended, NULL, 10));
}

/* Reads every dirty session (HGETALL + ZSCORE, one pipeline for all widgets)
 * and sends what changed; a widget's first read (!loaded) sends nothing. */
static int flush(hn_live *l, int64_t now) {
    size_t n = 0;
    lwidget *w, *wt;
    lsess *s, *st;
    HASH_ITER(hh, l->widgets, w, wt) {
        char key[HN_KEY_CAP];
        hn_key_live(key, w->id);
        HASH_ITER(hh, w->sessions, s, st) {
            if (!s->dirty) continue;
            hn_snap_append(l->rc, w->id, s->sid);
            const char *argv[] = {"ZSCORE", key, s->sid};
            size_t len[] = {6, strlen(key), strlen(s->sid)};
            hn_rcl_append_argv(l->rc, 3, argv, len);
            n++;
        }
    }
    if (n == 0) return HN_OK;
    int64_t gone_before = now - l->cfg->live_window_s * 1000;
    HASH_ITER(hh, l->widgets, w, wt) {
        HASH_ITER(hh, w->sessions, s, st) {
            if (!s->dirty) continue;
            redisReply *h = NULL, *z = NULL;
            if (hn_rcl_get_reply(l->rc, (void **)&h) != REDIS_OK || hn_rcl_get_reply(l->rc, (void **)&z) != REDIS_OK) {
                if (h) freeReplyObject(h);
                redis_lost(l, "HGETALL");
                return HN_ERR;
            }
            if (h->type == REDIS_REPLY_ERROR || z->type == REDIS_REPLY_ERROR) {
                /* BUSY, NOPERM…: not "the session is gone". Reconnect; what
                 * is still dirty is read at the next tick */
                hn_warn("event=live_redis_reply_error cmd=HGETALL error='%s'",
                        h->type == REDIS_REPLY_ERROR ? h->str : z->str);
                freeReplyObject(h);
                freeReplyObject(z);
                redis_lost(l, "HGETALL");
                return HN_ERR;
            }
            s->dirty = false;
            int64_t score = z->type == REDIS_REPLY_STRING ? (int64_t)strtod(z->str, NULL) : -1;
            if (score < 0 || score <= gone_before || h->type != REDIS_REPLY_ARRAY) {
                if (s->known && w->loaded)
                    hn_hub_emit_leave(l, w, s, s->end_seen || (score < 0 && ended_mark(h)) ? "end"
                                               : score < 0                           ? "gone"
                                                                                     : "timeout");
                hn_hub_sess_drop(w, s);
            } else {
                char *old[HN_SF__COUNT];
                memcpy(old, s->f, sizeof(old));
                const char *v[HN_SF__COUNT];
                hn_snap_fields(h, v);
                for (int i = 0; i < HN_SF__COUNT; i++) s->f[i] = v[i] ? hn_xstrdup(v[i]) : NULL;
                s->score = score;
                s->end_seen = false;
                const char *status = hn_snap_status(s->f[HN_SF_STATUS], s->f[HN_SF_LAST_SEEN], score,
                                                    now, l->cfg);
                if (!s->known) {
                    s->known = true;
                    w->nknown++;
                    if (w->loaded) hn_hub_emit_enter(l, w, s, now);
                } else if (w->loaded) {
                    hn_hub_emit_update(l, w, s, old, status);
                }
                s->status = status;
                for (int i = 0; i < HN_SF__COUNT; i++) free(old[i]);
            }
            freeReplyObject(h);
            freeReplyObject(z);
        }
    }
    return HN_OK;
}

/* The clock's part: sessions not seen within the live window leave, those
 * quiet longer than HERENOW_ACTIVE_S turn idle. */
static void sweep(hn_live *l, lwidget *w, int64_t now) {
    int64_t gone_before = now - l->cfg->live_window_s * 1000;
    lsess *s, *tmp;
    HASH_ITER(hh, w->sessions, s, tmp) {
        if (!s->known || s->dirty) continue;
        if (s->score <= gone_before) {
            hn_hub_emit_leave(l, w, s, "timeout");
            hn_hub_sess_drop(w, s);
            continue;
        }
        const char *st = hn_snap_status(s->f[HN_SF_STATUS], s->f[HN_SF_LAST_SEEN], s->score, now, l->cfg);
        if (strcmp(st, s->status) != 0) {
            hn_hub_emit_status(l, w, s, st);
        }
    }
}

/* ---- the thread ------------------------------------------------------------------------------------ */

/* Applies the main thread's requests; true when a stream subscribed. */
static bool apply(hn_live *l, req *q) {
    bool subs = false;
    while (q) {
        req *next = q->next;
        lwidget *w = q->op != REQ_UNSUB ? widget_get(l, q->widget_id) : widget_find(l, q->widget_id);
        if (q->op == REQ_PEEK) {
            /* pages/live: load it, and keep it a minute after the last ask */
            w->want_load = true;
            if (w->watchers == 0) w->unwatched_at = hn_mono_ms();
            if (!w->loaded) subs = true;
        } else if (w && q->op == REQ_SUB) {
            subs = true;
            w->watchers++;
            if (w->npending == w->cpending) {
                w->cpending = w->cpending ? 2 * w->cpending : 8;
                w->pending = hn_xrealloc(w->pending, w->cpending * sizeof(*w->pending));
            }
            w->pending[w->npending++] = (pend){q->sub, q->epoch, q->seq};
        } else if (w) {
            for (size_t i = 0; i < w->npending; i++)
                if (w->pending[i].sub == q->sub) {
                    w->pending[i] = w->pending[--w->npending];
                    break;
                }
            if (--w->watchers == 0) w->unwatched_at = hn_mono_ms();
        }
        free(q);
        q = next;
    }
    return subs;
}

/* A widget's first full read: tailing starts before it, nothing is sent. */
static int load(hn_live *l, lwidget *w, int64_t now) {
    int sh = shard_of(l, w->id);
    if (l->shard_id[sh][0] == '\0' && tail_from_now(l, sh) != HN_OK) return HN_ERR;
    char ck[HN_KEY_CAP];
    hn_key_chat(ck, w->id);
    if (newest_id(l, ck, w->chat_id, sizeof(w->chat_id)) != HN_OK) return HN_ERR;
    if (reconcile(l, w, now) != HN_OK) return HN_ERR;
    if (flush(l, now) != HN_OK) return HN_ERR;
    w->loaded = true;
    return HN_OK;
}

/* Loads new widgets and serves waiting streams (also between ticks, so a
 * new stream need not wait for one). */
static int starts(hn_live *l, int64_t now) {
    lwidget *w, *tmp;
    HASH_ITER(hh, l->widgets, w, tmp) {
        if (w->npending == 0 && (w->loaded || !w->want_load)) continue;
        if (!w->loaded && load(l, w, now) != HN_OK) return HN_ERR;
        hn_hub_pages_build(l, w, now);        /* before the STARTs: a new stream's first pages */
        if (w->npending) hn_hub_serve_starts(l, w, now);
    }
    return HN_OK;
}

static void tick(hn_live *l) {
    uint64_t t0 = hn_mono_ms(), t0_us = hn_mono_us();
    int64_t now = now_wall_ms();
    lwidget *w, *tmp;
    if (!connected(l)) {
        hn_hub_fail_starts(l);
        return;
    }
    int rc = read_streams(l);
    HASH_ITER(hh, l->widgets, w, tmp) {
        if (rc != HN_OK) break;
        if (w->loaded && t0 >= w->next_reconcile) rc = reconcile(l, w, now);
    }
    if (rc == HN_OK) rc = flush(l, now);
    HASH_ITER(hh, l->widgets, w, tmp) {
        if (w->loaded) sweep(l, w, now);
        hn_hub_finish(l, w);
        /* pages now: coalesced to one table (and event) a second */
        if (w->loaded && w->pages_dirty && t0 - w->pages_at >= 1000) hn_hub_pages_build(l, w, now);
    }
    if (rc == HN_OK) rc = starts(l, now);
    if (rc != HN_OK) hn_hub_fail_starts(l);
    HASH_ITER(hh, l->widgets, w, tmp)
        if (w->watchers == 0 && w->npending == 0 && t0 - w->unwatched_at >= KEEP_UNWATCHED_MS)
            widget_free(l, w);
    uint64_t sessions = 0, widgets = 0;
    HASH_ITER(hh, l->widgets, w, tmp) {
        widgets++;
        sessions += w->nknown;
    }
    atomic_store(&l->g_widgets, widgets);
    atomic_store(&l->g_sessions, sessions);
    atomic_fetch_add_explicit(&l->ticks, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&l->tick_us, hn_mono_us() - t0_us, memory_order_relaxed);
}

static void *hub_main(void *arg) {
    hn_live *l = arg;
    uint64_t next = hn_mono_ms(), last = 0;     /* the next tick, the start of the last one */
    for (;;) {
        pthread_mutex_lock(&l->mu);
        for (;;) {
            uint64_t now = hn_mono_ms();       /* once: a second read could pass next and wrap */
            if (l->stop || l->inbox != NULL || now >= next) break;
            uint64_t wait = next - now;
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            ts.tv_sec += (time_t)(wait / 1000);
            ts.tv_nsec += (long)(wait % 1000) * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&l->cv, &l->mu, &ts);
        }
        req *q = l->inbox;
        l->inbox = NULL;
        l->inbox_tail = &l->inbox;
        bool stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        if (stop) {
            while (q) {
                req *n = q->next;
                free(q);
                q = n;
            }
            break;
        }
        /* A new stream is served after a tick that began after it
         * subscribed, so its snapshot holds every record Redis had by then,
         * not only what the list had read at the last tick (up to
         * HERENOW_SSE_TICK_MS behind: a visitor who had just arrived came as
         * an enter right after a snapshot without them). That tick is
         * brought forward, but never closer than a quarter tick to the last
         * one: a storm of reconnects costs Redis at most four times the
         * tick rate, and a stream waits at most a quarter tick for it. */
        if (apply(l, q)) {
            uint64_t soon = last + (uint64_t)l->cfg->sse_tick_ms / 4;
            if (soon < next) next = soon;
        }
        if (hn_mono_ms() >= next) {
            last = hn_mono_ms();
            tick(l);
            next = hn_mono_ms() + (uint64_t)l->cfg->sse_tick_ms;
        }
        post(l);
    }
    return NULL;
}

/* ---- life cycle ------------------------------------------------------------------------------------ */

hn_live *hn_live_create(const hn_config *cfg, const hn_redis_cfg *rcfg, struct event_base *base,
                        hn_live_deliver_fn deliver, void *arg) {
    hn_live *l = hn_xcalloc(1, sizeof(*l));
    l->cfg = cfg;
    l->rcfg = *rcfg;
    l->base = base;
    l->deliver = deliver;
    l->arg = arg;
    l->notify = event_new(base, -1, 0, on_notify, l);
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->pmu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->cv, &ca);
    pthread_cond_init(&l->pcv, &ca);
    pthread_condattr_destroy(&ca);
    l->inbox_tail = &l->inbox;
    l->outbox_tail = &l->outbox;
    l->out_tail = &l->out;
    l->nshards = (int)cfg->stream_shards;
    l->shard_id = hn_xcalloc((size_t)l->nshards, sizeof(*l->shard_id));
    l->shard_watch = hn_xcalloc((size_t)l->nshards, sizeof(*l->shard_watch));
    l->dec = hn_decoder_create();
    hn_rng_seed(&l->rng);
    return l;
}

int hn_live_start(hn_live *l, char *err, size_t cap) {
    int rc = pthread_create(&l->thread, NULL, hub_main, l);
    if (rc != 0) {
        snprintf(err, cap, "live hub thread: %s", strerror(rc));
        return HN_ERR;
    }
    l->started = true;
    return HN_OK;
}

static void enqueue(hn_live *l, req *q) {
    pthread_mutex_lock(&l->mu);
    *l->inbox_tail = q;
    l->inbox_tail = &q->next;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void hn_live_subscribe(hn_live *l, int64_t widget_id, uint64_t sub, uint32_t last_epoch,
                       uint64_t last_seq) {
    req *q = hn_xcalloc(1, sizeof(*q));
    *q = (req){NULL, REQ_SUB, widget_id, sub, last_epoch, last_seq};
    enqueue(l, q);
}

void hn_live_unsubscribe(hn_live *l, int64_t widget_id, uint64_t sub) {
    req *q = hn_xcalloc(1, sizeof(*q));
    *q = (req){NULL, REQ_UNSUB, widget_id, sub, 0, 0};
    enqueue(l, q);
}

/* A published table's reader tells the hub it still wants the widget at
 * most once a second (PEEK_EVERY_MS, far below KEEP_UNWATCHED_MS): not at
 * every ask, which under load would queue thousands of requests a second
 * for the hub to apply. */
#define PEEK_EVERY_MS 1000

int hn_live_pages_get(hn_live *l, int64_t widget_id, int64_t wait_ms, hn_live_pages **out) {
    int64_t now = hn_mono_ms();
    bool peek = true;
    lpub *e;
    pthread_mutex_lock(&l->pmu);
    HASH_FIND(hh, l->pubs, &widget_id, sizeof(widget_id), e);
    if (e && now - e->peek_ms < PEEK_EVERY_MS) peek = false;
    else if (e) e->peek_ms = now;
    pthread_mutex_unlock(&l->pmu);
    if (peek) {
        req *q = hn_xcalloc(1, sizeof(*q));
        *q = (req){NULL, REQ_PEEK, widget_id, 0, 0, 0};
        enqueue(l, q);
    }
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += (time_t)(wait_ms / 1000);
    dl.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (dl.tv_nsec >= 1000000000L) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000L;
    }
    int rc = HN_AGAIN;
    pthread_mutex_lock(&l->pmu);
    for (;;) {
        HASH_FIND(hh, l->pubs, &widget_id, sizeof(widget_id), e);
        if (e) {
            atomic_fetch_add_explicit(&e->p->refs, 1, memory_order_relaxed);
            *out = e->p;
            rc = HN_OK;
            break;
        }
        if (pthread_cond_timedwait(&l->pcv, &l->pmu, &dl) != 0) break;
    }
    pthread_mutex_unlock(&l->pmu);
    return rc;
}

void hn_live_destroy(hn_live *l) {
    if (l == NULL) return;
    if (l->started) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    lwidget *w, *tmp;
    HASH_ITER(hh, l->widgets, w, tmp) widget_free(l, w);
    hn_live_out_free(l->outbox);
    hn_live_out_free(l->out);
    req *q = l->inbox;
    while (q) {
        req *n = q->next;
        free(q);
        q = n;
    }
    if (l->rc) hn_rcl_free(l->rc);
    if (l->notify) event_free(l->notify);
    lpub *e, *et;
    HASH_ITER(hh, l->pubs, e, et) {
        HASH_DEL(l->pubs, e);
        hn_live_pages_unref(e->p);
        free(e);
    }
    hn_decoder_destroy(l->dec);
    free(l->shard_id);
    free(l->shard_watch);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->pmu);
    pthread_cond_destroy(&l->pcv);
    free(l);
}

void hn_live_metrics(hn_live *l, hn_buf *out) {
#define LOAD(x) ((uint64_t)atomic_load_explicit(&(x), memory_order_relaxed))
#define C HN_PROM_COUNTER
#define G HN_PROM_GAUGE
    const hn_prom_scalar scalars[] = {
        {.name = "herenow_live_widgets", .type = G, .help = "Widgets the live hub keeps a list of.", .u = LOAD(l->g_widgets)},
        {.name = "herenow_live_sessions", .type = G, .help = "Live sessions in the hub's lists.", .u = LOAD(l->g_sessions)},
        {.name = "herenow_live_ticks_total", .type = C, .help = "Hub ticks run.", .u = LOAD(l->ticks)},
        {.name = "herenow_live_tick_seconds_total", .type = C, .help = "Time spent in hub ticks.",
         .f = (double)LOAD(l->tick_us) / 1e6, .real = true},
        {.name = "herenow_live_records_total", .type = C, .help = "Stream records the hub read.", .u = LOAD(l->records)},
        {.name = "herenow_live_decode_errors_total", .type = C, .help = "Stream entries the hub could not decode.",
         .u = LOAD(l->decode_errors)},
        {.name = "herenow_live_redis_errors_total", .type = C, .help = "Redis failures of the hub (it reconnects).",
         .u = LOAD(l->redis_errors)},
        {.name = "herenow_live_reconciles_total", .type = C, .help = "Comparisons of a list with hn:live.", .u = LOAD(l->reconciles)},
        {.name = "herenow_live_snapshots_total", .type = C,
         .help = "Snapshots made (one serves every stream starting in a round).", .u = LOAD(l->snapshots)},
        {.name = "herenow_live_replays_total", .type = C, .help = "Reconnects served from the replay buffer.", .u = LOAD(l->replays)},
        {.name = "herenow_live_failed_starts_total", .type = C, .help = "Streams refused because Redis was unreachable.",
         .u = LOAD(l->failed_starts)},
        {.name = "herenow_live_capped_total", .type = C,
         .help = "Times a widget's list was at HERENOW_SSE_MAX_SESSIONS and left sessions out (reconcile rounds, new sessions from the stream).",
         .u = LOAD(l->capped)},
    };
    hn_prom_scalars(out, scalars, HN_ARRAY_LEN(scalars));
    hn_prom_family(out, "herenow_live_events_total", C,
                   "Events made, by type (each sent to every stream of its widget).");
    for (int i = 0; i < EV__COUNT; i++)
        hn_prom_u64(out, "herenow_live_events_total", HN_PROM_L1("type", hn_hub_ev_names[i]),
                    LOAD(l->events[i]));
#undef C
#undef G
#undef LOAD
}
