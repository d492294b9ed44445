/*
 * bans.c: see bans.h. One open-addressing table of (widget, kind, subject)
 * on FNV-1a with the subject copied into an arena, and a small one of the
 * widgets that have bans.
 */
#include "collector/bans.h"
#include "common/log.h"
#include "proto/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBJECT_MAX 256

typedef struct ent {
    uint64_t    h;
    const char *s;           /* in arena; NULL: empty */
    uint32_t    len, widget;
    char        kind;
    uint8_t     flags;
} ent;

struct hn_bans {
    ent      *slots;
    size_t    mask, count;
    uint32_t *widgets;       /* open addressing, 0: empty */
    size_t    wmask;
    char     *arena;
};

static uint64_t hash(uint32_t widget, char kind, const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull ^ widget;
    h = (h ^ (uint8_t)kind) * 1099511628211ull;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)p[i];
        if (kind == 'e' && c >= 'A' && c <= 'Z') c = (uint8_t)(c - 'A' + 'a');
        h = (h ^ c) * 1099511628211ull;
    }
    return h;
}

static uint32_t whash(uint32_t w) { return w * 2654435761u; }

bool hn_bans_widget(const hn_bans *t, uint32_t widget) {
    if (t == NULL || t->count == 0) return false;
    for (size_t j = whash(widget) & t->wmask;; j = (j + 1) & t->wmask) {
        if (t->widgets[j] == widget) return true;
        if (t->widgets[j] == 0) return false;
    }
}

static ent *find(const hn_bans *t, uint32_t widget, char kind, const char *p, size_t n, uint64_t h) {
    for (size_t j = h & t->mask;; j = (j + 1) & t->mask) {
        ent *e = &t->slots[j];
        if (e->s == NULL) return e;
        if (e->h == h && e->widget == widget && e->kind == kind && e->len == n) {
            bool same = true;
            for (size_t i = 0; i < n && same; i++) {
                uint8_t c = (uint8_t)p[i];
                if (kind == 'e' && c >= 'A' && c <= 'Z') c = (uint8_t)(c - 'A' + 'a');
                same = (uint8_t)e->s[i] == c;
            }
            if (same) return e;
        }
    }
}

unsigned hn_bans_check(const hn_bans *t, uint32_t widget, char kind, hn_str s) {
    if (t == NULL || t->count == 0 || s.len == 0 || s.len > SUBJECT_MAX) return 0;
    const ent *e = find(t, widget, kind, s.p, s.len, hash(widget, kind, s.p, s.len));
    return e->s ? (e->flags & HN_BAN_TRACK ? HN_BAN_TRACK : HN_BAN_CHAT) : 0;
}

size_t hn_bans_count(const hn_bans *t) { return t ? t->count : 0; }

hn_bans *hn_bans_build(const uint32_t *widgets, redisReply *const *members, size_t n) {
    hn_bans *t = hn_xcalloc(1, sizeof(*t));
    size_t total = 0, bytes = 0;
    for (size_t i = 0; i < n; i++)
        if (members[i] && members[i]->type == REDIS_REPLY_ARRAY)
            for (size_t j = 0; j < members[i]->elements; j++) total++, bytes += members[i]->element[j]->len + 1;
    size_t cap = 16, wcap = 16;
    while (cap < total * 2) cap *= 2;
    while (wcap < n * 2) wcap *= 2;
    t->slots = hn_xcalloc(cap, sizeof(ent));
    t->mask = cap - 1;
    t->widgets = hn_xcalloc(wcap, sizeof(uint32_t));
    t->wmask = wcap - 1;
    t->arena = hn_xmalloc(bytes + 1);
    char *ap = t->arena;
    for (size_t i = 0; i < n; i++) {
        if (members[i] == NULL || members[i]->type != REDIS_REPLY_ARRAY || widgets[i] == 0) continue;
        bool any = false;
        for (size_t j = 0; j < members[i]->elements; j++) {
            const redisReply *m = members[i]->element[j];
            if (m->type != REDIS_REPLY_STRING) continue;
            const char *p = m->str;
            size_t len = m->len;
            uint8_t flags = HN_BAN_TRACK;
            if (len > 2 && memcmp(p, "c:", 2) == 0) p += 2, len -= 2, flags = HN_BAN_CHAT;
            if (len < 3 || (p[0] != 'v' && p[0] != 'e') || p[1] != ':' || len - 2 > SUBJECT_MAX) continue;
            char kind = p[0];
            p += 2, len -= 2;
            uint64_t h = hash(widgets[i], kind, p, len);
            ent *e = find(t, widgets[i], kind, p, len, h);
            if (e->s) {
                e->flags |= flags;
                continue;
            }
            for (size_t k = 0; k < len; k++)
                ap[k] = (char)(kind == 'e' && p[k] >= 'A' && p[k] <= 'Z' ? p[k] - 'A' + 'a' : p[k]);
            *e = (ent){h, ap, (uint32_t)len, widgets[i], kind, flags};
            ap += len + 1;
            t->count++;
            any = true;
        }
        if (any) {
            size_t k = whash(widgets[i]) & t->wmask;
            while (t->widgets[k] && t->widgets[k] != widgets[i]) k = (k + 1) & t->wmask;
            t->widgets[k] = widgets[i];
        }
    }
    return t;
}

static void table_free(hn_bans *t) {
    if (t == NULL) return;
    free(t->slots);
    free(t->widgets);
    free(t->arena);
    free(t);
}

void hn_bans_build_free(hn_bans *t) { table_free(t); }

static void table_free_any(void *t) { table_free(t); }

hn_bans_pub *hn_bans_pub_create(void) { return hn_snap_pub_create(table_free_any); }

/* ---- the loader ---------------------------------------------------------------- */

typedef struct src {
    uint32_t    widget;
    long long   version;
    redisReply *members;     /* SMEMBERS hn:bans:{w} */
} src;

struct hn_bans_loader {
    long long version;       /* of hn:bans:version at the last load; -1 none */
    bool      kept_warned;
    src      *s;
    size_t    n;
};

hn_bans_loader *hn_bans_loader_create(void) {
    hn_bans_loader *l = hn_xcalloc(1, sizeof(*l));
    l->version = -1;
    return l;
}

static void srcs_free(src *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i].members) freeReplyObject(s[i].members);
    free(s);
}

void hn_bans_loader_destroy(hn_bans_loader *l) {
    if (l == NULL) return;
    srcs_free(l->s, l->n);
    free(l);
}

int hn_bans_refresh(hn_bans_loader *l, hn_rcl *c, hn_bans_pub *pub, char *err, size_t cap) {
    redisReply *v = NULL, *hw = NULL;
    src *ns = NULL;
    size_t nn = 0;
    int rc = HN_ERR;
    v = hn_rcl_command(c, "GET %s", HN_KEY_BANS_VERSION);
    if (v == NULL || (v->type != REDIS_REPLY_STRING && v->type != REDIS_REPLY_NIL)) goto fail;
    long long ver = v->type == REDIS_REPLY_STRING ? strtoll(v->str, NULL, 10) : 0;
    if (ver == l->version || (v->type == REDIS_REPLY_NIL && l->version > 0)) {
        /* No version after one was seen is what a Redis that lost its data
         * looks like: keep the bans we have (the api writes them all again
         * at its next ban change: api/routes_notes.c). */
        if (ver != l->version && !l->kept_warned)
            hn_warn("event=bans_version_missing_kept bans=%zu", l->n);
        l->kept_warned = ver != l->version;
        freeReplyObject(v);
        return HN_OK;
    }
    l->kept_warned = false;
    hw = hn_rcl_command(c, "HGETALL %s", HN_KEY_BANS_WIDGETS);
    if (hw == NULL || hw->type != REDIS_REPLY_ARRAY) goto fail;
    ns = hn_xcalloc(hw->elements / 2 + 1, sizeof(src));
    for (size_t i = 0; i + 1 < hw->elements; i += 2) {
        const redisReply *k = hw->element[i], *val = hw->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || val->type != REDIS_REPLY_STRING) continue;
        long long wid = strtoll(k->str, NULL, 10), wver = strtoll(val->str, NULL, 10);
        if (wid <= 0 || wid > UINT32_MAX) continue;
        src *cur = &ns[nn++];
        *cur = (src){(uint32_t)wid, wver, NULL};
        for (size_t j = 0; j < l->n; j++)     /* unchanged: keep what we read */
            if (l->s[j].widget == cur->widget && l->s[j].version == wver && l->s[j].members) {
                cur->members = l->s[j].members;
                l->s[j].members = NULL;
                break;
            }
        if (cur->members == NULL) {
            char key[HN_KEY_CAP];
            hn_key_bans(key, cur->widget);
            cur->members = hn_rcl_command(c, "SMEMBERS %s", key);
            if (cur->members == NULL || cur->members->type != REDIS_REPLY_ARRAY) goto fail;
        }
    }
    uint32_t *ids = hn_xcalloc(nn + 1, sizeof(uint32_t));
    redisReply **ms = hn_xcalloc(nn + 1, sizeof(*ms));
    for (size_t i = 0; i < nn; i++) ids[i] = ns[i].widget, ms[i] = ns[i].members;
    hn_bans_publish(pub, hn_bans_build(ids, ms, nn));
    free(ids);
    free(ms);
    srcs_free(l->s, l->n);
    l->s = ns, l->n = nn, ns = NULL;
    l->version = ver;
    rc = HN_OK;
    goto out;
fail:
    snprintf(err, cap, "%s", hn_rcl_err(c) ? hn_rcl_errstr(c)
                             : v && v->type == REDIS_REPLY_ERROR ? v->str
                             : hw && hw->type == REDIS_REPLY_ERROR ? hw->str : "unexpected reply");
out:
    /* on failure, what was moved out of l->s is lost: the next load re-reads it */
    if (ns) srcs_free(ns, nn);
    if (v) freeReplyObject(v);
    if (hw) freeReplyObject(hw);
    return rc;
}
