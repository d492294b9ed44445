/*
 * set.c: the batch's hash sets (set.h).
 *
 * hn_seen_set: event ids are random in their low bytes, so those are the
 * hash. hn_kmap: FNV-1a over the string, seeded with k.
 */
#include "api/drain/set.h"

#include <stdlib.h>

void hn_seen_clear(hn_seen_set *s) {
    if (s->n) memset(s->used, 0, s->cap);
    s->n = 0;
}

bool hn_seen_has(const hn_seen_set *s, const uint8_t id[16]) {
    if (s->n == 0) return false;
    uint64_t h;
    memcpy(&h, id + 8, 8);
    size_t j = h & (s->cap - 1);
    while (s->used[j]) {
        if (memcmp(s->slot[j], id, 16) == 0) return true;
        j = (j + 1) & (s->cap - 1);
    }
    return false;
}

bool hn_seen_add(hn_seen_set *s, const uint8_t id[16]) {
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 4096;
        uint8_t (*nslot)[16] = hn_xcalloc(ncap, 16);
        bool *nused = hn_xcalloc(ncap, 1);
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->used[i]) continue;
            uint64_t h;
            memcpy(&h, s->slot[i] + 8, 8);
            size_t j = h & (ncap - 1);
            while (nused[j]) j = (j + 1) & (ncap - 1);
            memcpy(nslot[j], s->slot[i], 16);
            nused[j] = true;
        }
        free(s->slot);
        free(s->used);
        s->slot = nslot;
        s->used = nused;
        s->cap = ncap;
    }
    uint64_t h;
    memcpy(&h, id + 8, 8);
    size_t j = h & (s->cap - 1);
    while (s->used[j]) {
        if (memcmp(s->slot[j], id, 16) == 0) return false;
        j = (j + 1) & (s->cap - 1);
    }
    memcpy(s->slot[j], id, 16);
    s->used[j] = true;
    s->n++;
    return true;
}

void hn_seen_free(hn_seen_set *s) {
    free(s->slot);
    free(s->used);
}

static uint64_t kmap_hash(uint64_t k, hn_str s) {
    uint64_t h = 1469598103934665603ull ^ (k * 0x9e3779b97f4a7c15ull);
    for (uint32_t i = 0; i < s.len; i++) h = (h ^ (unsigned char)s.p[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

void hn_kmap_clear(hn_kmap *m) {
    if (m->n) memset(m->slot, 0, m->cap * sizeof(*m->slot));
    m->n = 0;
}

void hn_kmap_free(hn_kmap *m) {
    free(m->slot);
    free(m->items);
}

size_t hn_kmap_get(hn_kmap *m, uint64_t k, hn_str s, bool *fresh) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 1024;
        uint32_t *nslot = hn_xcalloc(ncap, sizeof(*nslot));
        for (size_t i = 0; i < m->n; i++) {
            size_t j = kmap_hash(m->items[i].k, m->items[i].s) & (ncap - 1);
            while (nslot[j]) j = (j + 1) & (ncap - 1);
            nslot[j] = (uint32_t)(i + 1);
        }
        free(m->slot);
        m->slot = nslot;
        m->cap = ncap;
    }
    size_t j = kmap_hash(k, s) & (m->cap - 1);
    while (m->slot[j]) {
        hn_kmap_item *it = &m->items[m->slot[j] - 1];
        if (it->k == k && it->s.len == s.len && (s.len == 0 || memcmp(it->s.p, s.p, s.len) == 0)) {
            *fresh = false;
            return m->slot[j] - 1;
        }
        j = (j + 1) & (m->cap - 1);
    }
    if (m->n == m->cap_items) {
        m->cap_items = m->cap_items ? m->cap_items * 2 : 1024;
        m->items = hn_xreallocarray(m->items, m->cap_items, sizeof(*m->items));
    }
    m->items[m->n] = (hn_kmap_item){k, s};
    m->slot[j] = (uint32_t)(m->n + 1);
    *fresh = true;
    return m->n++;
}
