/*
 * annot.c: see annot.h. A table is an open-addressing hash of "<kind><subject>"
 * (kind 'v' or 'e') on FNV-1a; entries and their strings are allocated
 * once, freed with the table when the last reader let go of it.
 */
#include "api/annot.h"

#include "common/json.h"
#include "common/log.h"
#include "common/utf8.h"
#include "proto/keys.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG_MAX_LEN 32
#define EMAIL_MAX   254
#define CACHE_SLOTS 256

bool hn_tag_ok(const char *t, size_t len) {
    if (len == 0 || len > TAG_MAX_LEN) return false;
    for (size_t i = 0; i < len; i++) {
        char c = t[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '_' && c != '-'))) return false;
    }
    return true;
}

bool hn_email_norm(char *s) {
    size_t n = strlen(s);
    if (n < 3 || n > EMAIL_MAX || !hn_utf8_valid(s, n)) return false;
    const char *at = strchr(s, '@');
    if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@')) return false;
    for (char *p = s; *p; p++) {
        if ((uint8_t)*p <= ' ' || *p == 0x7f) return false;
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    }
    return true;
}

size_t hn_chars(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += ((uint8_t)s[i] & 0xc0) != 0x80;
    return n;
}

const char hn_annot_sql[] =
    "SELECT s.subject_kind, s.subject,"
    " coalesce((SELECT array_to_json(array_agg(t.tag ORDER BY t.tag)) FROM visitor_tags t"
    "   WHERE t.widget_id = $1 AND t.subject_kind = s.subject_kind AND t.subject = s.subject), '[]'),"
    " (SELECT count(*) FROM visitor_notes n"
    "   WHERE n.widget_id = $1 AND n.subject_kind = s.subject_kind AND n.subject = s.subject),"
    " (SELECT b.block_tracking FROM visitor_bans b"
    "   WHERE b.widget_id = $1 AND b.subject_kind = s.subject_kind AND b.subject = s.subject)"
    " FROM (SELECT subject_kind, subject FROM visitor_tags WHERE widget_id = $1"
    "  UNION SELECT subject_kind, subject FROM visitor_notes WHERE widget_id = $1"
    "  UNION SELECT subject_kind, subject FROM visitor_bans WHERE widget_id = $1) s"
    " ORDER BY 1, 2";

struct hn_annot_ent {
    uint64_t h;
    char    *key;       /* kind letter + subject; NULL: empty slot */
    size_t   klen;
    char    *tags;      /* JSON array */
    size_t   tags_len;
    int64_t  notes;
    bool     banned;
};

struct hn_annot {
    atomic_int    refs;
    size_t        n, mask;
    hn_annot_ent *slots;
};

static uint64_t fnv1a2(char kind, const char *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    h = (h ^ (uint8_t)kind) * 1099511628211ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

static void table_free(hn_annot *a) {
    if (a == NULL) return;
    for (size_t i = 0; a->slots && i <= a->mask; i++) {
        free(a->slots[i].key);
        free(a->slots[i].tags);
    }
    free(a->slots);
    free(a);
}

static hn_annot *table_build(const PGresult *res) {
    hn_annot *a = hn_xcalloc(1, sizeof(*a));
    int n = PQntuples(res);
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap *= 2;
    a->slots = hn_xcalloc(cap, sizeof(*a->slots));
    a->mask = cap - 1;
    for (int i = 0; i < n; i++) {
        char kind = PQgetvalue(res, i, 0)[0] == 'e' ? 'e' : 'v';
        const char *s = PQgetvalue(res, i, 1);
        size_t sl = (size_t)PQgetlength(res, i, 1);
        uint64_t h = fnv1a2(kind, s, sl);
        size_t j = h & a->mask;
        while (a->slots[j].key) j = (j + 1) & a->mask;
        hn_annot_ent *e = &a->slots[j];
        e->h = h;
        e->klen = sl + 1;
        e->key = hn_xmalloc(sl + 2);
        e->key[0] = kind;
        memcpy(e->key + 1, s, sl + 1);
        e->tags = hn_xstrdup(PQgetvalue(res, i, 2));
        e->tags_len = strlen(e->tags);
        e->notes = strtoll(PQgetvalue(res, i, 3), NULL, 10);
        e->banned = !PQgetisnull(res, i, 4);
        a->n++;
    }
    return a;
}

static const hn_annot_ent *lookup(const hn_annot *a, char kind, const char *s) {
    if (a == NULL || a->n == 0 || s == NULL || *s == '\0') return NULL;
    size_t sl = strlen(s);
    uint64_t h = fnv1a2(kind, s, sl);
    for (size_t j = h & a->mask;; j = (j + 1) & a->mask) {
        const hn_annot_ent *e = &a->slots[j];
        if (e->key == NULL) return NULL;
        if (e->h == h && e->klen == sl + 1 && e->key[0] == kind && memcmp(e->key + 1, s, sl) == 0)
            return e;
    }
}

/* ---- the cache ----------------------------------------------------------------- */

typedef struct slot {
    int64_t   wid;            /* 0: free */
    hn_annot *a;              /* holds one reference; NULL after a failed first load */
    char      ver[24];
    uint64_t  loaded_ms;
    uint64_t  checked_ms;     /* hn:annot:version last read */
    uint64_t  retry_ms;       /* after a failed load: not before this */
} slot;

/* hn:annot:version is read at most this often per widget (a change made
 * through this api invalidates at once; another api's within this) */
#define CHECK_MS 100
/* a failed load (PostgreSQL away) is not tried again before this: the live
 * list, which needs only Redis, must not wait for it on every request */
#define RETRY_MS 5000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static slot cache[CACHE_SLOTS];

void hn_annot_release(hn_annot *a) {
    if (a && atomic_fetch_sub(&a->refs, 1) == 1) table_free(a);
}

void hn_annot_invalidate(int64_t widget_id) {
    pthread_mutex_lock(&lock);
    slot *s = &cache[(uint64_t)widget_id % CACHE_SLOTS];
    if (s->wid == widget_id) s->checked_ms = s->loaded_ms = s->retry_ms = 0;
    pthread_mutex_unlock(&lock);
}

hn_annot *hn_annot_get(hn_api_worker *w, int64_t widget_id) {
    char ver[24] = "0";
    bool have_ver = false;
    uint64_t now = hn_mono_ms();
    hn_annot *a = NULL;
    slot *s = &cache[(uint64_t)widget_id % CACHE_SLOTS];
    pthread_mutex_lock(&lock);
    if (s->wid == widget_id && (s->a || now < s->retry_ms) &&
        (now < s->retry_ms || (now - s->checked_ms < CHECK_MS && now - s->loaded_ms < HN_ANNOT_TTL_MS))) {
        a = s->a;
        if (a) atomic_fetch_add(&a->refs, 1);
        pthread_mutex_unlock(&lock);
        return a;
    }
    pthread_mutex_unlock(&lock);

    hn_rcl *c = hn_api_redis(w);
    if (c) {
        redisReply *r = hn_rcl_command(c, "GET %s", HN_KEY_ANNOT_VERSION);
        if (r == NULL) hn_api_redis_broken(w);
        else {
            if (r->type == REDIS_REPLY_STRING) snprintf(ver, sizeof(ver), "%s", r->str);
            have_ver = r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_NIL;
            freeReplyObject(r);
        }
    }
    pthread_mutex_lock(&lock);
    if (s->wid == widget_id && s->a) {
        a = s->a;
        atomic_fetch_add(&a->refs, 1);
        if ((!have_ver || strcmp(s->ver, ver) == 0) && now - s->loaded_ms < HN_ANNOT_TTL_MS) {
            s->checked_ms = now;
            pthread_mutex_unlock(&lock);
            return a;
        }
    }
    pthread_mutex_unlock(&lock);

    PGconn *pg = hn_api_pg(w);
    if (pg == NULL) goto failed;
    char wbuf[24];
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)widget_id);
    const char *p[] = {wbuf};
    PGresult *res = PQexecParams(pg, hn_annot_sql, 1, NULL, p, NULL, NULL, 0);
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
        hn_warn("event=annot_load_failed widget=%lld err='%s'", (long long)widget_id,
                res ? PQresultErrorMessage(res) : PQerrorMessage(pg));
        if (PQstatus(pg) != CONNECTION_OK) hn_api_pg_broken(w);
        PQclear(res);
        goto failed;
    }
    hn_annot *t = table_build(res);
    PQclear(res);
    atomic_store(&t->refs, 2);                  /* the cache's and ours */
    hn_annot *old = NULL;
    pthread_mutex_lock(&lock);
    old = s->a;
    s->wid = widget_id;
    s->a = t;
    snprintf(s->ver, sizeof(s->ver), "%s", ver);
    s->loaded_ms = s->checked_ms = now;
    s->retry_ms = 0;
    pthread_mutex_unlock(&lock);
    hn_annot_release(old);
    hn_annot_release(a);
    return t;

failed:     /* keep what we had (or nothing) for RETRY_MS */
    pthread_mutex_lock(&lock);
    if (s->wid != widget_id) {
        old = s->a;
        s->wid = widget_id;
        s->a = NULL;
        s->ver[0] = '\0';
        s->loaded_ms = 0;
    } else {
        old = NULL;
    }
    s->retry_ms = now + RETRY_MS;
    pthread_mutex_unlock(&lock);
    hn_annot_release(old);
    return a;                                   /* the old table, or none */
}

bool hn_annot_empty(const hn_annot *a) { return a == NULL || a->n == 0; }

bool hn_annot_any_tag(const hn_annot *a, const char *tag) {
    if (hn_annot_empty(a)) return false;
    for (size_t i = 0; i <= a->mask; i++)
        if (a->slots[i].key && hn_annot_has_tag((hn_annot_view){&a->slots[i], NULL}, tag)) return true;
    return false;
}

hn_annot_view hn_annot_find(const hn_annot *a, const char *visitor, const char *email) {
    hn_annot_view m = {NULL, NULL};
    if (hn_annot_empty(a)) return m;
    m.v = lookup(a, 'v', visitor);
    if (email && *email) {
        char e[EMAIL_MAX + 1];
        size_t n = strlen(email);
        if (n <= EMAIL_MAX) {
            for (size_t i = 0; i <= n; i++)
                e[i] = (char)(email[i] >= 'A' && email[i] <= 'Z' ? email[i] - 'A' + 'a' : email[i]);
            m.e = lookup(a, 'e', e);
        }
    }
    return m;
}

static bool ent_has(const hn_annot_ent *e, const char *tag) {
    if (e == NULL) return false;
    char q[TAG_MAX_LEN + 3];
    int n = snprintf(q, sizeof(q), "\"%s\"", tag);
    return n > 0 && memmem(e->tags, e->tags_len, q, (size_t)n) != NULL;
}

bool hn_annot_has_tag(hn_annot_view m, const char *tag) {
    return ent_has(m.v, tag) || ent_has(m.e, tag);
}

bool hn_annot_banned(hn_annot_view m) {
    return (m.v && m.v->banned) || (m.e && m.e->banned);
}

void hn_annot_put(hn_buf *b, bool *first, hn_annot_view m) {
    if (m.v == NULL && m.e == NULL) {
        hn_json_kraw(b, first, "tags", "[]", 2);
    } else if (m.v == NULL || m.e == NULL || m.e->tags_len <= 2) {
        const hn_annot_ent *e = m.v && (m.e == NULL || m.e->tags_len <= 2) ? m.v : m.e;
        hn_json_kraw(b, first, "tags", e->tags, e->tags_len);
    } else if (m.v->tags_len <= 2) {
        hn_json_kraw(b, first, "tags", m.e->tags, m.e->tags_len);
    } else {
        /* both subjects tagged: the union (at most 2 × 20 tags) */
        hn_json_kraw(b, first, "tags", m.v->tags, m.v->tags_len - 1);
        const char *p = m.e->tags + 1, *end = m.e->tags + m.e->tags_len - 1;
        while (p < end) {
            const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
            if (q == NULL) break;
            char tag[TAG_MAX_LEN + 1];
            size_t n = (size_t)(q - p - 1);
            if (n <= TAG_MAX_LEN) {
                memcpy(tag, p + 1, n);
                tag[n] = '\0';
                if (!ent_has(m.v, tag)) {
                    hn_buf_append(b, ",", 1);
                    hn_buf_append(b, p, n + 2);
                }
            }
            p = q + 1;
            while (p < end && *p != '"') p++;
        }
        hn_buf_append(b, "]", 1);
    }
    hn_json_kint(b, first, "notes", (m.v ? m.v->notes : 0) + (m.e ? m.e->notes : 0));
    hn_json_kbool(b, first, "banned", hn_annot_banned(m));
}
