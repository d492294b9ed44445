/*
 * jsonread.c: see jsonread.h.
 *
 * One recursive-descent reader (rd) serves every entry point: value()
 * checks a value and says where it ends; hn_jread_members walks the top
 * object with it, handing each member's text to the caller; strings are
 * decoded only when the caller asks (hn_jread_str). Formerly the body reader
 * of the api's chat routes (api/chat_util.c), made strict about numbers and
 * literals when the collector's seed routes came to need their values.
 */
#include "common/jsonread.h"

#include "common/pct.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct rd {
    const char *p, *end;
} rd;

static void ws(rd *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static bool hex4(const char *p, const char *end, unsigned *out) {
    unsigned v = 0;
    if (end - p < 4) return false;
    for (int i = 0; i < 4; i++) {
        int h = hn_hexval((unsigned char)p[i]);
        if (h < 0) return false;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return true;
}

/* A string at r->p (its opening quote), checked: escapes, no raw control. */
static bool str(rd *r) {
    if (r->p >= r->end || *r->p != '"') return false;
    r->p++;
    while (r->p < r->end) {
        unsigned char c = (unsigned char)*r->p++;
        if (c == '"') return true;
        if (c < 0x20) return false;                  /* JSON: controls must be escaped */
        if (c != '\\') continue;
        if (r->p >= r->end) return false;
        char e = *r->p++;
        unsigned cp;
        if (e == 'u') {
            if (!hex4(r->p, r->end, &cp)) return false;
            r->p += 4;
        } else if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' &&
                   e != 'r' && e != 't') {
            return false;
        }
    }
    return false;
}

static bool digits(rd *r) {
    const char *s = r->p;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') r->p++;
    return r->p > s;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool number(rd *r) {
    if (r->p < r->end && *r->p == '-') r->p++;
    if (r->p < r->end && *r->p == '0') r->p++;
    else if (!digits(r)) return false;
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (!digits(r)) return false;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-')) r->p++;
        if (!digits(r)) return false;
    }
    return true;
}

static bool literal(rd *r, const char *lit, size_t n) {
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, lit, n) != 0) return false;
    r->p += n;
    return true;
}

/* One value at r->p (no whitespace before it) into *v; r->p past it. */
static bool value(rd *r, hn_jval *v, int depth) {
    if (r->p >= r->end) return false;
    const char *s = r->p;
    char c = *r->p;
    bool ok;
    v->b = false;
    if (c == '"') {
        v->type = HN_J_STR, ok = str(r);
    } else if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        v->type = c == '{' ? HN_J_OBJ : HN_J_ARR;
        ok = depth < HN_JREAD_DEPTH;
        r->p++;
        ws(r);
        if (ok && r->p < r->end && *r->p == close) {
            r->p++;
        } else {
            while (ok) {
                hn_jval k, x;
                if (c == '{') {
                    ok = r->p < r->end && *r->p == '"' && value(r, &k, depth + 1);
                    ws(r);
                    ok = ok && r->p < r->end && *r->p++ == ':';
                    ws(r);
                }
                ok = ok && value(r, &x, depth + 1);
                ws(r);
                if (!ok || r->p >= r->end) {
                    ok = false;
                } else if (*r->p == ',') {
                    r->p++;
                    ws(r);
                } else {
                    ok = *r->p++ == close;
                    break;
                }
            }
        }
    } else if (c == 't' || c == 'f') {
        v->type = HN_J_BOOL, v->b = c == 't';
        ok = c == 't' ? literal(r, "true", 4) : literal(r, "false", 5);
    } else if (c == 'n') {
        v->type = HN_J_NULL, ok = literal(r, "null", 4);
    } else {
        v->type = HN_J_NUM, ok = number(r);
    }
    v->p = s;
    v->len = (size_t)(r->p - s);
    return ok;
}

bool hn_jread_check(const char *p, size_t len) {
    rd r = {p, p + len};
    hn_jval v;
    if (p == NULL) return false;
    ws(&r);
    bool ok = value(&r, &v, 0);
    ws(&r);
    return ok && r.p == r.end;
}

int hn_jread_members(const char *p, size_t len, hn_jread_member_fn fn, void *ctx) {
    rd r = {p, p + len};
    int rc = HN_ERR;
    if (!hn_jread_check(p, len)) goto out;
    ws(&r);
    if (*r.p++ != '{') goto out;
    rc = HN_OK;
    ws(&r);
    if (*r.p == '}') goto out;
    /* checked already: every step below succeeds */
    while (rc == HN_OK) {
        hn_jval k, v;
        value(&r, &k, 1);
        ws(&r);
        r.p++;                                       /* ':' */
        ws(&r);
        value(&r, &v, 1);
        rc = fn(ctx, &k, &v);
        ws(&r);
        if (*r.p++ == '}') break;
        ws(&r);
    }
out:
    return rc;
}

int hn_jread_elements(const char *p, size_t len, hn_jread_element_fn fn, void *ctx) {
    rd r = {p, p + len};
    int rc = HN_ERR, i = 0;
    if (!hn_jread_check(p, len)) goto out;
    ws(&r);
    if (*r.p++ != '[') goto out;
    rc = HN_OK;
    ws(&r);
    if (*r.p == ']') goto out;
    /* checked already: every step below succeeds */
    while (rc == HN_OK) {
        hn_jval v;
        value(&r, &v, 1);
        rc = fn(ctx, i++, &v);
        ws(&r);
        if (*r.p++ == ']') break;
        ws(&r);
    }
out:
    return rc;
}

static size_t put_utf8(char *t, unsigned cp) {
    if (cp < 0x80) {
        t[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        t[0] = (char)(0xc0 | cp >> 6), t[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        t[0] = (char)(0xe0 | cp >> 12), t[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        t[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    t[0] = (char)(0xf0 | cp >> 18), t[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    t[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), t[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

long hn_jread_str(const hn_jval *s, char *out, size_t cap) {
    const char *p = s->p + 1, *end = s->p + s->len - 1;   /* inside the quotes */
    size_t n = 0;
    while (p < end) {
        char t[4];
        size_t k;
        if (*p != '\\') {
            t[0] = *p++, k = 1;
        } else {
            char e = p[1];
            unsigned cp = (unsigned char)e;
            p += 2;
            switch (e) {
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                hex4(p, end, &cp);
                p += 4;
                if (cp >= 0xd800 && cp <= 0xdbff && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
                    unsigned lo;
                    if (hex4(p + 2, end, &lo) && lo >= 0xdc00 && lo <= 0xdfff) {
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        p += 6;
                    }
                }
                break;
            default: break;                          /* " \ / as themselves */
            }
            if (cp >= 0xd800 && cp <= 0xdfff) t[0] = (char)0xff, k = 1;   /* a lone surrogate */
            else k = put_utf8(t, cp);
        }
        if (n + k > cap) return -1;
        memcpy(out + n, t, k);
        n += k;
    }
    return (long)n;
}

bool hn_jread_str_is(const hn_jval *s, const char *name) {
    char buf[128];
    size_t n = strlen(name);
    if (s->type != HN_J_STR || s->len < n + 2) return false;
    if (memchr(s->p, '\\', s->len) == NULL) return s->len == n + 2 && memcmp(s->p + 1, name, n) == 0;
    long k = n <= sizeof(buf) ? hn_jread_str(s, buf, n) : -1;
    return k == (long)n && memcmp(buf, name, n) == 0;
}

int hn_jread_num(const hn_jval *v, int64_t *i, double *d) {
    char buf[64];
    int rc = 0;
    if (v->len >= sizeof(buf)) goto out;             /* no number anyone sends */
    memcpy(buf, v->p, v->len);
    buf[v->len] = '\0';
    if (strpbrk(buf, ".eE") == NULL && hn_parse_i64(buf, i)) {
        rc = 1;
        goto out;
    }
    /* a fraction, an exponent, or an integer past int64 */
    double x = strtod(buf, NULL);
    if (isfinite(x)) {
        *d = x;
        rc = 2;
    }
out:
    return rc;
}
