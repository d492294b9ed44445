/*
 * chat_util.c: the chat routes' body reader and rate limit (chat_util.h).
 *
 * The body reader takes the string members it is asked for from one JSON
 * object (common/jsonread.h reads it); members of any other name and type
 * are passed over. It allocates only the strings it returns.
 */
#include "api/chat_util.h"
#include "common/jsonread.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The wanted members, as hn_jread_members hands them over. */
typedef struct want {
    hn_chat_field *f;
    int            n;
    char          *err;
    size_t         cap;
} want;

static int member(void *ctx, const hn_jval *key, const hn_jval *val) {
    want *w = ctx;
    for (int i = 0; i < w->n; i++) {
        if (!hn_jread_str_is(key, w->f[i].name)) continue;
        if (val->type != HN_J_STR) {
            snprintf(w->err, w->cap, "%s: want a string", w->f[i].name);
            return HN_AGAIN;
        }
        free(w->f[i].val);                       /* given twice: the last one wins */
        w->f[i].val = hn_xmalloc(val->len + 1);
        long k = hn_jread_str(val, w->f[i].val, val->len);
        w->f[i].len = (size_t)k;                 /* val->len always suffices */
        w->f[i].val[k] = '\0';
    }
    return HN_OK;
}

int hn_chat_body_parse(const char *body, size_t len, hn_chat_field *f, int n, char *err,
                       size_t cap) {
    want w = {f, n, err, cap};
    int rc = HN_ERR;
    for (int i = 0; i < n; i++) f[i].val = NULL, f[i].len = 0;
    const char *p = body;
    size_t left = body ? len : 0;
    while (left && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++, left--;
    if (left == 0 || *p != '{') {
        snprintf(err, cap, "want a JSON object body");
        goto out;
    }
    rc = hn_jread_members(body, len, member, &w);
    if (rc == HN_ERR) snprintf(err, cap, "the body is not a well-formed JSON object");
out:
    if (rc != HN_OK) {
        hn_chat_fields_free(f, n);
        rc = HN_ERR;
    }
    return rc;
}

void hn_chat_fields_free(hn_chat_field *f, int n) {
    for (int i = 0; i < n; i++) {
        free(f[i].val);
        f[i].val = NULL;
        f[i].len = 0;
    }
}

/* ---- rate limit -------------------------------------------------------------------- */

#define BUCKETS 256

typedef struct bucket {
    char     token[16];
    double   level;          /* writes still allowed */
    uint64_t at_ms;          /* when level was computed */
} bucket;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static bucket buckets[BUCKETS];

bool hn_chat_rate_take(const char *token_id, int64_t per_min, uint64_t now_ms) {
    uint64_t h = 1469598103934665603ull;
    for (const char *p = token_id; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ull;
    bool ok;
    pthread_mutex_lock(&mu);
    /* a small table: a token that collides with another takes its slot
     * (and a full bucket), which only ever errs on the lenient side */
    bucket *b = &buckets[h % BUCKETS];
    if (strncmp(b->token, token_id, sizeof(b->token)) != 0) {
        snprintf(b->token, sizeof(b->token), "%s", token_id);
        b->level = (double)per_min;
        b->at_ms = now_ms;
    }
    /* threads read the clock before taking the lock: an earlier reading
     * than the bucket's refills nothing (unsigned, it once refilled all) */
    if (now_ms > b->at_ms) {
        b->level += (double)(now_ms - b->at_ms) * (double)per_min / 60000.0;
        if (b->level > (double)per_min) b->level = (double)per_min;
        b->at_ms = now_ms;
    }
    ok = b->level >= 1.0;
    if (ok) b->level -= 1.0;
    pthread_mutex_unlock(&mu);
    return ok;
}
