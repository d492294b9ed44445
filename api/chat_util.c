/*
 * chat_util.c: the chat routes' body reader and rate limit (chat_util.h).
 *
 * The body reader knows just enough JSON for {"text": "…", "agent": "…"}:
 * one object, members of any JSON type; nested containers are skipped by
 * counting brackets outside strings. It never allocates more than the
 * strings it returns.
 */
#include "api/chat_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rd {
    const char *p, *end;
} rd;

static void ws(rd *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool hex4(rd *r, unsigned *out) {
    unsigned v = 0;
    if (r->end - r->p < 4) return false;
    for (int i = 0; i < 4; i++) {
        int h = hexval(r->p[i]);
        if (h < 0) return false;
        v = v << 4 | (unsigned)h;
    }
    r->p += 4;
    *out = v;
    return true;
}

static void put_utf8(hn_buf *b, unsigned cp) {
    char t[4];
    size_t n;
    if (cp < 0x80) t[0] = (char)cp, n = 1;
    else if (cp < 0x800) t[0] = (char)(0xc0 | cp >> 6), t[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    else if (cp < 0x10000)
        t[0] = (char)(0xe0 | cp >> 12), t[1] = (char)(0x80 | ((cp >> 6) & 0x3f)),
        t[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    else
        t[0] = (char)(0xf0 | cp >> 18), t[1] = (char)(0x80 | ((cp >> 12) & 0x3f)),
        t[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), t[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    hn_buf_append(b, t, n);
}

/* A string at r->p (the opening quote); decoded into out when not NULL. */
static bool str(rd *r, hn_buf *out) {
    if (r->p >= r->end || *r->p != '"') return false;
    r->p++;
    while (r->p < r->end) {
        char c = *r->p++;
        if (c == '"') return true;
        if ((unsigned char)c < 0x20) return false;         /* JSON: controls must be escaped */
        if (c != '\\') {
            if (out) hn_buf_append(out, &c, 1);
            continue;
        }
        if (r->p >= r->end) return false;
        char e = *r->p++;
        unsigned cp;
        switch (e) {
        case '"': case '\\': case '/': cp = (unsigned char)e; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (!hex4(r, &cp)) return false;
            if (cp >= 0xd800 && cp <= 0xdbff && r->end - r->p >= 6 && r->p[0] == '\\' &&
                r->p[1] == 'u') {
                rd save = *r;
                unsigned lo;
                r->p += 2;
                if (hex4(r, &lo) && lo >= 0xdc00 && lo <= 0xdfff)
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                else
                    *r = save;
            }
            if (cp >= 0xd800 && cp <= 0xdfff) {
                /* a lone surrogate: not a character; bytes no UTF-8 check passes */
                if (out) hn_buf_append(out, "\xff", 1);
                continue;
            }
            break;
        default:
            return false;
        }
        if (out) put_utf8(out, cp);
    }
    return false;
}

/* Any value; strings and containers skipped without decoding. */
static bool skip_value(rd *r) {
    int depth = 0;
    ws(r);
    do {
        if (r->p >= r->end) return false;
        char c = *r->p;
        if (c == '"') {
            if (!str(r, NULL)) return false;
        } else if (c == '{' || c == '[') {
            if (++depth > 32) return false;
            r->p++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) return false;
            depth--;
            r->p++;
        } else if (c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (depth == 0) return false;
            r->p++;
        } else {
            /* a number or a literal: up to the next delimiter */
            const char *s = r->p;
            while (r->p < r->end && strchr(",:]} \t\r\n", *r->p) == NULL) r->p++;
            size_t n = (size_t)(r->p - s);
            bool lit = (n == 4 && (!memcmp(s, "true", 4) || !memcmp(s, "null", 4))) ||
                       (n == 5 && !memcmp(s, "false", 5)) ||
                       (n > 0 && strspn(s, "0123456789+-.eE") == n);
            if (!lit) return false;
        }
    } while (depth > 0);
    return true;
}

int hn_chat_body_parse(const char *body, size_t len, hn_chat_field *f, int n, char *err,
                       size_t cap) {
    rd r = {body, body + len};
    hn_buf key = {0}, val = {0};
    int rc = HN_ERR;
    for (int i = 0; i < n; i++) f[i].val = NULL, f[i].len = 0;
    if (body == NULL || len == 0) {
        snprintf(err, cap, "want a JSON object body");
        goto out;
    }
    ws(&r);
    if (r.p >= r.end || *r.p++ != '{') {
        snprintf(err, cap, "want a JSON object body");
        goto out;
    }
    ws(&r);
    if (r.p < r.end && *r.p == '}') {
        r.p++;
    } else {
        for (;;) {
            hn_buf_reset(&key);
            ws(&r);
            if (!str(&r, &key)) goto bad;
            ws(&r);
            if (r.p >= r.end || *r.p++ != ':') goto bad;
            ws(&r);
            int which = -1;
            for (int i = 0; i < n; i++)
                if (strlen(f[i].name) == key.len && memcmp(f[i].name, key.p, key.len) == 0) which = i;
            if (which >= 0) {
                hn_buf_reset(&val);
                if (r.p >= r.end || *r.p != '"') {
                    snprintf(err, cap, "%s: want a string", f[which].name);
                    goto out;
                }
                if (!str(&r, &val)) goto bad;
                free(f[which].val);
                f[which].val = hn_xmalloc(val.len + 1);
                if (val.len) memcpy(f[which].val, val.p, val.len);
                f[which].val[val.len] = '\0';
                f[which].len = val.len;
            } else if (!skip_value(&r)) {
                goto bad;
            }
            ws(&r);
            if (r.p < r.end && *r.p == ',') {
                r.p++;
                continue;
            }
            if (r.p < r.end && *r.p == '}') {
                r.p++;
                break;
            }
            goto bad;
        }
    }
    ws(&r);
    if (r.p != r.end) goto bad;
    rc = HN_OK;
    goto out;
bad:
    snprintf(err, cap, "the body is not a well-formed JSON object");
out:
    if (rc != HN_OK) hn_chat_fields_free(f, n);
    hn_buf_free(&key);
    hn_buf_free(&val);
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
