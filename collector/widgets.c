/*
 * widgets.c: see widgets.h. Open addressing on an FNV-1a hash of the key;
 * keys are copied into one arena so a table is two allocations plus ids.
 */
#include "collector/widgets.h"

#include <stdlib.h>
#include <string.h>

typedef struct slot {
    uint64_t    h;
    const char *key;     /* in arena; NULL: empty slot */
    uint32_t    klen;
    uint32_t    id;
    uint32_t    flags;   /* HN_WIDGET_* */
} slot;

struct hn_widgets {
    slot     *slots;
    size_t    mask;
    size_t    count;
    char     *arena;
    uint32_t *ids;
    size_t    nids;
    uint64_t  digest;
};

static uint64_t fnv1a(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* "<id>[ word...]": the id, then settings words; unknown words are ignored
 * (a newer herenowctl may write settings this collector does not know). */
static bool parse_value(const char *s, size_t n, uint32_t *id, uint32_t *flags) {
    uint64_t v = 0;
    size_t i = 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > UINT32_MAX) return false;
    }
    if (i == 0 || v == 0 || (i < n && s[i] != ' ')) return false;
    *id = (uint32_t)v;
    *flags = 0;
    while (i < n) {
        while (i < n && s[i] == ' ') i++;
        size_t w = i;
        while (i < n && s[i] != ' ') i++;
        if (i - w == 7 && memcmp(s + w, "dnt=off", 7) == 0) *flags |= HN_WIDGET_IGNORE_DNT;
        else if (i - w == 7 && memcmp(s + w, "chat=on", 7) == 0) *flags |= HN_WIDGET_CHAT;
    }
    return true;
}

hn_widgets *hn_widgets_build(const redisReply *r, size_t *bad) {
    hn_widgets *t = hn_xcalloc(1, sizeof(*t));
    size_t pairs = (r && r->type == REDIS_REPLY_ARRAY) ? r->elements / 2 : 0;
    size_t cap = 16;
    while (cap < pairs * 2) cap *= 2;
    t->slots = hn_xcalloc(cap, sizeof(slot));
    t->mask = cap - 1;
    size_t arena = 0;
    for (size_t i = 0; i < pairs; i++) arena += r->element[2 * i]->len + 1;
    t->arena = hn_xmalloc(arena + 1);
    t->ids = hn_xcalloc(pairs + 1, sizeof(uint32_t));
    t->digest = 1469598103934665603ull;
    *bad = 0;
    char *ap = t->arena;
    for (size_t i = 0; i < pairs; i++) {
        const redisReply *k = r->element[2 * i], *v = r->element[2 * i + 1];
        uint32_t id, flags;
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING || k->len == 0 ||
            !parse_value(v->str, v->len, &id, &flags)) {
            (*bad)++;
            continue;
        }
        memcpy(ap, k->str, k->len);
        uint64_t h = fnv1a(ap, k->len);
        size_t j = h & t->mask;
        while (t->slots[j].key) j = (j + 1) & t->mask;
        t->slots[j] = (slot){h, ap, (uint32_t)k->len, id, flags};
        ap += k->len + 1;
        t->count++;
        t->ids[t->nids++] = id;
        /* order-independent digest: HGETALL's order is not stable */
        t->digest += h * 31 + id + ((uint64_t)flags << 32);
    }
    qsort(t->ids, t->nids, sizeof(uint32_t), cmp_u32);
    size_t u = 0;
    for (size_t i = 0; i < t->nids; i++)
        if (u == 0 || t->ids[u - 1] != t->ids[i]) t->ids[u++] = t->ids[i];
    t->nids = u;
    t->digest ^= t->count;
    return t;
}

bool hn_widgets_lookup(const hn_widgets *t, hn_str key, uint32_t *id, uint32_t *flags) {
    if (t == NULL || key.len == 0) return false;
    uint64_t h = fnv1a(key.p, key.len);
    for (size_t j = h & t->mask;; j = (j + 1) & t->mask) {
        const slot *s = &t->slots[j];
        if (s->key == NULL) return false;
        if (s->h == h && s->klen == key.len && memcmp(s->key, key.p, key.len) == 0) {
            *id = s->id;
            *flags = s->flags;
            return true;
        }
    }
}

size_t hn_widgets_count(const hn_widgets *t) { return t ? t->count : 0; }
uint64_t hn_widgets_digest(const hn_widgets *t) { return t ? t->digest : 0; }

const uint32_t *hn_widgets_ids(const hn_widgets *t, size_t *n) {
    *n = t ? t->nids : 0;
    return t ? t->ids : NULL;
}

static void table_free(hn_widgets *t) {
    if (t == NULL) return;
    free(t->slots);
    free(t->arena);
    free(t->ids);
    free(t);
}

void hn_widgets_build_free(hn_widgets *t) { table_free(t); }

static void table_free_any(void *t) { table_free(t); }

hn_widgets_pub *hn_widgets_pub_create(void) { return hn_snap_pub_create(table_free_any); }
