/* erased.c: see erased.h. */
#include "api/drain/erased.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hn_erased_free(hn_erased *e) {
    free(e->v);
    free(e->widgets);
    memset(e, 0, sizeof(*e));
}

void hn_erased_digest(uint32_t widget_id, char kind, hn_str id, uint8_t out[HN_ERASED_DIGEST]) {
    char head[24];
    int n = snprintf(head, sizeof(head), "%u:%c:", widget_id, kind);
    size_t len = (size_t)n + id.len;
    char stackbuf[256];
    char *buf = len <= sizeof(stackbuf) ? stackbuf : hn_xmalloc(len);
    memcpy(buf, head, (size_t)n);
    if (id.len) memcpy(buf + n, id.p, id.len);
    SHA256((const unsigned char *)buf, len, out);
    if (buf != stackbuf) free(buf);
}

/* The index of digest in e->v, or where it would go (*found false). */
static size_t find(const hn_erased *e, const uint8_t d[HN_ERASED_DIGEST], bool *found) {
    size_t lo = 0, hi = e->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(e->v[mid].digest, d, HN_ERASED_DIGEST);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    *found = false;
    return lo;
}

void hn_erased_add(hn_erased *e, uint32_t widget_id, const uint8_t d[HN_ERASED_DIGEST],
                   uint64_t at_us) {
    bool found;
    size_t i = find(e, d, &found);
    if (found) {
        if (at_us > e->v[i].at_us) e->v[i].at_us = at_us;
    } else {
        if (e->n == e->cap) {
            e->cap = e->cap ? e->cap * 2 : 64;
            e->v = hn_xreallocarray(e->v, e->cap, sizeof(*e->v));
        }
        memmove(&e->v[i + 1], &e->v[i], (e->n - i) * sizeof(*e->v));
        memcpy(e->v[i].digest, d, HN_ERASED_DIGEST);
        e->v[i].at_us = at_us;
        e->n++;
    }
    for (size_t k = 0; k < e->nwidgets; k++)
        if (e->widgets[k] == widget_id) return;
    if (e->nwidgets == e->cap_widgets) {
        e->cap_widgets = e->cap_widgets ? e->cap_widgets * 2 : 8;
        e->widgets = hn_xreallocarray(e->widgets, e->cap_widgets, sizeof(*e->widgets));
    }
    e->widgets[e->nwidgets++] = widget_id;
}

static bool erased_at_or_after(const hn_erased *e, uint32_t widget_id, char kind, hn_str id,
                               uint64_t recv_us) {
    uint8_t d[HN_ERASED_DIGEST];
    bool found;
    hn_erased_digest(widget_id, kind, id, d);
    size_t i = find(e, d, &found);
    return found && e->v[i].at_us >= recv_us;
}

bool hn_erased_match(const hn_erased *e, uint32_t widget_id, hn_str sid, hn_str vid,
                     uint64_t recv_us) {
    if (e == NULL || e->n == 0) return false;
    size_t k = 0;
    while (k < e->nwidgets && e->widgets[k] != widget_id) k++;
    if (k == e->nwidgets) return false;
    return erased_at_or_after(e, widget_id, 's', sid, recv_us) ||
           (vid.len && erased_at_or_after(e, widget_id, 'v', vid, recv_us));
}
