/*
 * pages.c: pages now — a loaded widget's live list aggregated by current
 * URL (live.h). The hub rebuilds the table at most once a second when an
 * event changed the list (tick → hn_hub_pages_build), and at once after a
 * widget's first load:
 *
 *   w->sessions (known ones)   url → {live, active, title of the newest}
 *     → sorted array, strings in one block (immutable, refcounted)
 *     → published in l->pubs (pmu): pages/live reads it on a worker
 *     → "event: pages" with the top HN_LIVE_PAGES_TOP, for the streams
 *       that asked (HN_LIVE_PAGES, no id: state, never replayed)
 *
 * O(sessions) per rebuild: 100,000 sessions cost the hub a few ms a second
 * at most, and the route none (docs/BENCHMARKS.md).
 */
#include "api/live/hub_priv.h"
#include "common/json.h"

#include <stdlib.h>
#include <string.h>

typedef struct agg {
    UT_hash_handle hh;
    const char    *url;      /* the session's string (key); "" stands for none */
    bool           none;
    const char    *title;
    int64_t        title_score;
    uint32_t       live, active;
} agg;

static int by_count(const void *a, const void *b) {
    const hn_live_page *x = a, *y = b;
    if (x->live != y->live) return x->live < y->live ? 1 : -1;
    if (x->active != y->active) return x->active < y->active ? 1 : -1;
    if (x->url == NULL || y->url == NULL) return x->url ? 1 : y->url ? -1 : 0;
    return strcmp(x->url, y->url);
}

void hn_live_pages_unref(hn_live_pages *p) {
    if (p == NULL || atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1) return;
    free(p->v);
    free(p->strings);
    free(p);
}

void hn_live_pages_json_head(hn_buf *b, bool *first, const hn_live_pages *p) {
    hn_json_kint(b, first, "widget_id", p->widget_id);
    hn_json_ktime(b, first, "as_of", p->as_of_ms);
    hn_json_kint(b, first, "total_pages", (int64_t)p->n);
    hn_json_kint(b, first, "live", p->live);
    hn_json_kint(b, first, "active", p->active);
    hn_json_kbool(b, first, "capped", p->capped);
}

void hn_live_page_json(hn_buf *b, const hn_live_page *pg) {
    bool f = true;
    hn_buf_append(b, "{", 1);
    hn_json_kstr(b, &f, "url", pg->url);
    hn_json_kstr(b, &f, "title", pg->title);
    hn_json_kint(b, &f, "live", pg->live);
    hn_json_kint(b, &f, "active", pg->active);
    hn_json_kint(b, &f, "idle", (int64_t)pg->live - pg->active);
    hn_buf_append(b, "}", 1);
}

static hn_live_pages *build(hn_live *l, lwidget *w, int64_t now) {
    agg *all = NULL, *a, *tmp;
    lsess *s, *st;
    size_t bytes = 0;
    uint32_t live = 0, active = 0;
    HASH_ITER(hh, w->sessions, s, st) {
        if (!s->known) continue;
        const char *url = s->f[HN_SF_URL] ? s->f[HN_SF_URL] : "";
        bool act = s->status && strcmp(s->status, "active") == 0;
        HASH_FIND_STR(all, url, a);
        if (a == NULL) {
            a = hn_xcalloc(1, sizeof(*a));
            a->url = url;
            a->none = s->f[HN_SF_URL] == NULL;
            a->title_score = -2;
            HASH_ADD_KEYPTR(hh, all, a->url, strlen(a->url), a);
            bytes += strlen(url) + 1;
        }
        a->live++;
        a->active += act;
        live++;
        active += act;
        if (s->score > a->title_score) {
            a->title = s->f[HN_SF_TITLE];
            a->title_score = s->score;
        }
    }
    hn_live_pages *p = hn_xcalloc(1, sizeof(*p));
    atomic_init(&p->refs, 1);
    p->widget_id = w->id;
    p->as_of_ms = now;
    p->live = live;
    p->active = active;
    p->capped = w->capped;
    p->n = HASH_COUNT(all);
    p->v = hn_xcalloc(p->n ? p->n : 1, sizeof(*p->v));
    HASH_ITER(hh, all, a, tmp) bytes += a->title ? strlen(a->title) + 1 : 0;
    p->strings = hn_xmalloc(bytes ? bytes : 1);
    char *o = p->strings;
    size_t i = 0;
    HASH_ITER(hh, all, a, tmp) {
        hn_live_page *pg = &p->v[i++];
        pg->live = a->live;
        pg->active = a->active;
        if (!a->none) {
            size_t n = strlen(a->url) + 1;
            pg->url = memcpy(o, a->url, n);
            o += n;
        }
        if (a->title) {
            size_t n = strlen(a->title) + 1;
            pg->title = memcpy(o, a->title, n);
            o += n;
        }
        HASH_DEL(all, a);
        free(a);
    }
    qsort(p->v, p->n, sizeof(*p->v), by_count);
    (void)l;
    return p;
}

void hn_hub_pages_build(hn_live *l, lwidget *w, int64_t now) {
    hn_live_pages *p = build(l, w, now);
    w->pages_dirty = false;
    w->pages_at = hn_mono_ms();

    /* the streams' event: the top of the table */
    hn_buf b;
    hn_buf_init(&b, 256 + (p->n < HN_LIVE_PAGES_TOP ? p->n : HN_LIVE_PAGES_TOP) * 200);
    hn_buf_append(&b, "event: pages\ndata: {", 20);
    bool first = true;
    hn_live_pages_json_head(&b, &first, p);
    hn_json_ktime(&b, &first, "now", now);
    hn_json_kraw(&b, &first, "pages", "[", 1);
    for (size_t i = 0; i < p->n && i < HN_LIVE_PAGES_TOP; i++) {
        if (i) hn_buf_append(&b, ",", 1);
        hn_live_page_json(&b, &p->v[i]);
    }
    hn_buf_append(&b, "]}\n\n", 4);
    hn_hub_out_push(l, HN_LIVE_PAGES, w->id, 0, hn_hub_msg_new(b.p, b.len, w->epoch, 0, 0), 0);
    hn_buf_free(&b);

    pthread_mutex_lock(&l->pmu);
    lpub *e;
    HASH_FIND(hh, l->pubs, &w->id, sizeof(w->id), e);
    if (e == NULL) {
        e = hn_xcalloc(1, sizeof(*e));
        e->id = w->id;
        HASH_ADD(hh, l->pubs, id, sizeof(e->id), e);
    }
    hn_live_pages *old = e->p;
    e->p = p;
    pthread_cond_broadcast(&l->pcv);
    pthread_mutex_unlock(&l->pmu);
    hn_live_pages_unref(old);
}

void hn_hub_pages_unpublish(hn_live *l, int64_t widget_id) {
    pthread_mutex_lock(&l->pmu);
    lpub *e;
    HASH_FIND(hh, l->pubs, &widget_id, sizeof(widget_id), e);
    if (e) HASH_DEL(l->pubs, e);
    pthread_mutex_unlock(&l->pmu);
    if (e) {
        hn_live_pages_unref(e->p);
        free(e);
    }
}
