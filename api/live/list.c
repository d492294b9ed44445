/*
 * list.c: a watched widget's list in the live hub (hub_priv.h) — its
 * sessions, the SSE text of the events they make (enter, update, leave),
 * the ring of the last messages for replays, and snapshots. The messages
 * are refcounted: one text is shared by every stream of the widget.
 */
#include "api/live/hub_priv.h"
#include "api/live/snapshot.h"
#include "common/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const hn_hub_ev_names[EV__COUNT] = {"enter", "update", "leave"};

/* ---- messages ------------------------------------------------------------------ */

void hn_live_msg_ref(hn_live_msg *m) {
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
}

void hn_live_msg_unref(hn_live_msg *m) {
    if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1) free(m);
}

hn_live_msg *hn_hub_msg_new(const char *p, size_t n, uint32_t epoch, uint64_t first, uint64_t last) {
    hn_live_msg *m = hn_xmalloc(sizeof(*m) + (n ? n : 1));
    atomic_init(&m->refs, 1);
    m->epoch = epoch;
    m->first_seq = first;
    m->last_seq = last;
    m->len = n;
    if (n) memcpy(m->data, p, n);
    return m;
}

void hn_live_out_free(hn_live_out *o) {
    while (o) {
        hn_live_out *next = o->next;
        hn_live_msg_unref(o->msg);
        free(o);
        o = next;
    }
}

int hn_live_parse_id(const char *s, uint32_t *epoch, uint64_t *seq) {
    if (s == NULL || strlen(s) < 10 || s[8] != '-') return HN_ERR;
    uint32_t e = 0;
    for (int i = 0; i < 8; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return HN_ERR;
        e = e << 4 | (uint32_t)d;
    }
    const char *p = s + 9;
    if (strlen(p) > 19 || (p[0] == '0' && p[1] != '\0')) return HN_ERR;
    uint64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return HN_ERR;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (e == 0) return HN_ERR;
    *epoch = e;
    *seq = v;
    return HN_OK;
}

/* ---- sessions ------------------------------------------------------------------------- */

void hn_hub_sess_free_fields(lsess *s) {
    for (int i = 0; i < HN_SF__COUNT; i++) {
        free(s->f[i]);
        s->f[i] = NULL;
    }
}

/* The session's entry, made if new — unless the widget's list is at
 * HERENOW_SSE_MAX_SESSIONS (a flood of made-up session ids for a public
 * widget key must not take the api's memory): then NULL, counted. */
lsess *hn_hub_sess_get(hn_live *l, lwidget *w, const char *sid, size_t n) {
    lsess *s;
    if (n == 0 || n >= SID_CAP) return NULL;
    char key[SID_CAP];
    memcpy(key, sid, n);
    key[n] = '\0';
    HASH_FIND_STR(w->sessions, key, s);
    if (s) return s;
    if (HASH_COUNT(w->sessions) >= (unsigned)l->cfg->sse_max_sessions) {
        atomic_fetch_add_explicit(&l->capped, 1, memory_order_relaxed);
        w->capped = true;
        return NULL;
    }
    s = hn_xcalloc(1, sizeof(*s));
    memcpy(s->sid, key, n + 1);
    s->score = -1;
    HASH_ADD_STR(w->sessions, sid, s);
    return s;
}

void hn_hub_sess_drop(lwidget *w, lsess *s) {
    if (s->known) w->nknown--;
    HASH_DEL(w->sessions, s);
    hn_hub_sess_free_fields(s);
    free(s);
}

/* ---- events ----------------------------------------------------------------------------- */

static void ev_begin(hn_live *l, lwidget *w, int type) {
    w->seq++;
    w->pages_dirty = true;
    if (w->tick.len == 0) w->tick_first = w->seq;
    hn_buf_printf(&w->tick, "id: %08" PRIx32 "-%" PRIu64 "\nevent: %s\ndata: {", w->epoch, w->seq,
                  hn_hub_ev_names[type]);
    atomic_fetch_add_explicit(&l->events[type], 1, memory_order_relaxed);
}

static void ev_end(lwidget *w) {
    hn_buf_append(&w->tick, "}\n\n", 3);
}

void hn_hub_emit_enter(hn_live *l, lwidget *w, lsess *s, int64_t now) {
    bool first = true;
    ev_begin(l, w, EV_ENTER);
    hn_snap_item(&w->tick, &first, s->sid, (const char *const *)s->f, s->score, now, l->cfg);
    ev_end(w);
}

void hn_hub_emit_leave(hn_live *l, lwidget *w, lsess *s, const char *reason) {
    bool first = true;
    ev_begin(l, w, EV_LEAVE);
    hn_json_kstr(&w->tick, &first, "session_id", s->sid);
    hn_json_kstr(&w->tick, &first, "reason", reason);
    ev_end(w);
}

static bool same(const char *a, const char *b) {
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* update: session_id, status, last_seen, engaged_s and the members that
 * changed between old and s->f; nothing when neither the status nor a
 * member (other than engaged time) changed. */
void hn_hub_emit_update(hn_live *l, lwidget *w, lsess *s, char *const *old, const char *status) {
    bool changed = status != s->status && strcmp(status, s->status ? s->status : "") != 0;
    for (int i = 0; i < hn_snap_nmembers && !changed; i++) {
        int f = hn_snap_members[i].field;
        if (f != HN_SF_ENGAGED_MS && !same(old[f], s->f[f])) changed = true;
    }
    if (!changed) return;
    bool first = true;
    ev_begin(l, w, EV_UPDATE);
    hn_json_kstr(&w->tick, &first, "session_id", s->sid);
    hn_json_kstr(&w->tick, &first, "status", status);
    hn_json_ktime(&w->tick, &first, "last_seen", s->score);
    for (int i = 0; i < hn_snap_nmembers; i++) {
        const hn_snap_member *m = &hn_snap_members[i];
        if (m->field == HN_SF_ENGAGED_MS || !same(old[m->field], s->f[m->field]))
            hn_snap_member_put(&w->tick, &first, m, s->f[m->field]);
    }
    ev_end(w);
}

/* update of the status alone: the hub's clock turned the session idle or
 * active again. */
void hn_hub_emit_status(hn_live *l, lwidget *w, lsess *s, const char *status) {
    bool first = true;
    ev_begin(l, w, EV_UPDATE);
    hn_json_kstr(&w->tick, &first, "session_id", s->sid);
    hn_json_kstr(&w->tick, &first, "status", status);
    hn_json_ktime(&w->tick, &first, "last_seen", s->score);
    ev_end(w);
    s->status = status;
}

/* The tick's events become one message: kept for replay, sent to every
 * stream of the widget. */
void hn_hub_finish(hn_live *l, lwidget *w) {
    if (w->tick.len == 0) return;
    hn_live_msg *m = hn_hub_msg_new(w->tick.p, w->tick.len, w->epoch, w->tick_first, w->seq);
    w->tick.len = 0;
    size_t cap = (size_t)l->cfg->sse_replay;
    if (cap > 0) {
        if (w->ring == NULL) w->ring = hn_xcalloc(cap, sizeof(*w->ring));
        if (w->ring_n == cap) {
            hn_live_msg_unref(w->ring[w->ring_head]);
            w->ring_n--;
            w->ring_head = (w->ring_head + 1) % cap;
        }
        hn_live_msg_ref(m);
        w->ring[(w->ring_head + w->ring_n) % cap] = m;
        w->ring_n++;
    }
    hn_hub_out_push(l, HN_LIVE_EVENTS, w->id, 0, m, 0);
}

/* ---- starts: snapshot or replay --------------------------------------------------------------- */

static int by_score_desc(const void *a, const void *b) {
    const lsess *x = *(const lsess *const *)a, *y = *(const lsess *const *)b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    return strcmp(y->sid, x->sid);
}

static hn_live_msg *snapshot(hn_live *l, lwidget *w, int64_t now) {
    lsess **v = hn_xmalloc((w->nknown ? w->nknown : 1) * sizeof(*v));
    size_t n = 0;
    lsess *s, *tmp;
    HASH_ITER(hh, w->sessions, s, tmp) if (s->known) v[n++] = s;
    qsort(v, n, sizeof(*v), by_score_desc);
    hn_buf b;
    hn_buf_init(&b, 256 + n * 700);
    hn_buf_printf(&b, "id: %08" PRIx32 "-%" PRIu64 "\nevent: snapshot\ndata: {", w->epoch, w->seq);
    bool first = true;
    hn_json_kint(&b, &first, "widget_id", w->id);
    hn_json_ktime(&b, &first, "now", now);
    hn_json_kint(&b, &first, "total", (int64_t)n);
    if (w->capped) hn_buf_append(&b, ",\"capped\":true", 14);
    hn_buf_append(&b, ",\"visitors\":[", 13);
    for (size_t i = 0; i < n; i++) {
        hn_buf_append(&b, i ? ",{" : "{", i ? 2 : 1);
        bool f = true;
        hn_snap_item(&b, &f, v[i]->sid, (const char *const *)v[i]->f, v[i]->score, now, l->cfg);
        hn_buf_append(&b, "}", 1);
    }
    hn_buf_append(&b, "]}\n\n", 4);
    free(v);
    hn_live_msg *m = hn_hub_msg_new(b.p, b.len, w->epoch, w->seq, w->seq);
    hn_buf_free(&b);
    atomic_fetch_add_explicit(&l->snapshots, 1, memory_order_relaxed);
    return m;
}

/* The events after seq, when the ring still holds them all; NULL if not. */
static hn_live_msg *replay(hn_live *l, lwidget *w, uint64_t seq) {
    if (seq > w->seq) return NULL;
    size_t cap = (size_t)l->cfg->sse_replay;
    if (seq < w->seq) {
        if (w->ring_n == 0 || w->ring[w->ring_head]->first_seq > seq + 1) return NULL;
    }
    hn_buf b = {0};
    for (size_t i = 0; i < w->ring_n; i++) {
        hn_live_msg *m = w->ring[(w->ring_head + i) % cap];
        if (m->last_seq > seq) hn_buf_append(&b, m->data, m->len);
    }
    hn_live_msg *m = hn_hub_msg_new(b.p, b.len, w->epoch, seq + 1, w->seq);
    hn_buf_free(&b);
    atomic_fetch_add_explicit(&l->replays, 1, memory_order_relaxed);
    return m;
}

void hn_hub_serve_starts(hn_live *l, lwidget *w, int64_t now) {
    /* events made since the last finish (a load's flush reads every
     * widget's dirty sessions) go out first: a replay or a snapshot covers
     * up to w->seq, so they must be in the ring and ahead in the outbox */
    hn_hub_finish(l, w);
    hn_live_msg *snap = NULL;
    for (size_t i = 0; i < w->npending; i++) {
        pend *p = &w->pending[i];
        hn_live_msg *m = p->epoch == w->epoch ? replay(l, w, p->seq) : NULL;
        if (m) {
            hn_hub_out_push(l, HN_LIVE_START, w->id, p->sub, m, HN_START_REPLAY);
            continue;
        }
        if (snap == NULL) snap = snapshot(l, w, now);
        hn_live_msg_ref(snap);
        hn_hub_out_push(l, HN_LIVE_START, w->id, p->sub, snap, HN_START_SNAPSHOT);
    }
    hn_live_msg_unref(snap);
    w->npending = 0;
}

/* Redis unreachable: the waiting streams are told so (503). */
void hn_hub_fail_starts(hn_live *l) {
    lwidget *w, *tmp;
    HASH_ITER(hh, l->widgets, w, tmp) {
        for (size_t i = 0; i < w->npending; i++) {
            hn_hub_out_push(l, HN_LIVE_START, w->id, w->pending[i].sub, NULL, 0);
            atomic_fetch_add_explicit(&l->failed_starts, 1, memory_order_relaxed);
        }
        w->npending = 0;
    }
}

