/*
 * sse.c: the benches' Server-Sent Events reader (sse.h).
 */
#include "bench/lib/sse.h"
#include "common/hn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { B_IDENTITY, B_CK_SIZE, B_CK_EXT, B_CK_DATA, B_CK_DATA_END, B_CK_TRAILER, B_DONE };

int hn_http_head(char *hdr, size_t cap, size_t *len, const char *p, size_t n, int *status,
                 bool *chunked, size_t *used) {
    size_t old = *len;
    size_t k = n < cap - 1 - old ? n : cap - 1 - old;
    memcpy(hdr + old, p, k);
    *len = old + k;
    hdr[*len] = '\0';
    char *end = strstr(hdr + (old > 3 ? old - 3 : 0), "\r\n\r\n");
    if (!end) return *len >= cap - 1 ? -1 : 0;
    size_t hlen = (size_t)(end - hdr) + 4;
    if (sscanf(hdr, "HTTP/1.%*d %d", status) != 1) return -1;
    *chunked = false;
    for (char *line = strstr(hdr, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        if (strncasecmp(line + 2, "transfer-encoding:", 18) != 0) continue;
        char *e = strstr(line + 2, "\r\n");
        for (char *q = line + 20; q + 7 <= e; q++)
            if (strncasecmp(q, "chunked", 7) == 0) *chunked = true;
    }
    *used = hlen - old;
    return 1;
}

void hn_sse_rd_init(hn_sse_rd *r, bool chunked, size_t keep) {
    free(r->line);
    *r = (hn_sse_rd){.body = chunked ? B_CK_SIZE : B_IDENTITY, .keep = keep};
}

void hn_sse_rd_free(hn_sse_rd *r) {
    free(r->line);
    r->line = NULL;
    r->line_cap = r->line_len = r->line_total = 0;
}

static void line_out(const char *s, size_t n, size_t total, hn_sse_line_fn *fn, void *arg) {
    if (n > 0 && s[n - 1] == '\r' && n == total) n--, total--;
    fn(arg, s, n, total);
}

/* Body bytes after the transfer coding: split into lines. */
static void lines(hn_sse_rd *r, const char *p, size_t n, hn_sse_line_fn *fn, void *arg) {
    while (n > 0) {
        const char *lf = memchr(p, '\n', n);
        size_t seg = lf ? (size_t)(lf - p) : n;
        if (lf && r->line_total == 0) {
            line_out(p, seg, seg, fn, arg);             /* whole line in this read */
        } else {
            if (r->line_len < r->keep) {
                size_t k = seg < r->keep - r->line_len ? seg : r->keep - r->line_len;
                if (r->line_len + k > r->line_cap) {
                    size_t cap = r->line_cap ? r->line_cap : 256;
                    while (cap < r->line_len + k) cap *= 2;
                    r->line = hn_xrealloc(r->line, cap);
                    r->line_cap = cap;
                }
                memcpy(r->line + r->line_len, p, k);
                r->line_len += k;
            }
            r->line_total += seg;
            if (lf) {
                line_out(r->line, r->line_len, r->line_total, fn, arg);
                r->line_len = r->line_total = 0;
            }
        }
        if (!lf) return;
        p = lf + 1;
        n -= seg + 1;
    }
}

int hn_sse_body(hn_sse_rd *r, const char *p, size_t n, hn_sse_line_fn *fn, void *arg) {
    while (n > 0) {
        switch (r->body) {
        case B_IDENTITY:
            lines(r, p, n, fn, arg);
            return HN_OK;
        case B_CK_DATA: {
            size_t k = n < r->ck_left ? n : (size_t)r->ck_left;
            lines(r, p, k, fn, arg);
            r->ck_left -= k;
            p += k;
            n -= k;
            if (r->ck_left == 0) r->body = B_CK_DATA_END;
            continue;
        }
        case B_DONE:
            return HN_AGAIN;
        default:
            break;
        }
        char ch = *p++;
        n--;
        switch (r->body) {
        case B_CK_SIZE: {
            int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                  : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
            if (d >= 0) {
                if (r->ck_left > (UINT64_MAX >> 4)) return HN_ERR;
                r->ck_left = r->ck_left * 16 + (uint64_t)d;
                r->ck_digits = true;
            } else if (ch == ';' || ch == ' ' || ch == '\t') {
                r->body = B_CK_EXT;
            } else if (ch == '\r') {
                /* wait for the LF */
            } else if (ch == '\n' && r->ck_digits) {
                r->body = r->ck_left ? B_CK_DATA : B_CK_TRAILER;
                r->trailer_line = false;
            } else {
                return HN_ERR;
            }
            break;
        }
        case B_CK_EXT:
            if (ch == '\n') {
                r->body = r->ck_left ? B_CK_DATA : B_CK_TRAILER;
                r->trailer_line = false;
            }
            break;
        case B_CK_DATA_END:
            if (ch == '\n') {
                r->body = B_CK_SIZE;
                r->ck_left = 0;
                r->ck_digits = false;
            } else if (ch != '\r') {
                return HN_ERR;
            }
            break;
        case B_CK_TRAILER:
            if (ch == '\n') {
                if (!r->trailer_line) {
                    r->body = B_DONE;
                    return HN_AGAIN;
                }
                r->trailer_line = false;
            } else if (ch != '\r') {
                r->trailer_line = true;
            }
            break;
        default:
            return HN_ERR;
        }
    }
    return HN_OK;
}

void hn_sse_field(const char *s, size_t n, const char **f, size_t *fl, const char **v, size_t *vl) {
    const char *colon = memchr(s, ':', n);
    *f = s;
    *fl = colon ? (size_t)(colon - s) : n;
    const char *val = colon ? colon + 1 : s + n;
    if (val < s + n && *val == ' ') val++;
    *v = val;
    *vl = (size_t)(s + n - val);
}

int64_t hn_find_num(const char *s, size_t n, const char *key, const char *after) {
    size_t kl = strlen(key);
    for (const char *p = s; (p = memmem(p, n - (size_t)(p - s), key, kl)) != NULL; p += kl) {
        if (p != s && (p[-1] == '\0' || strchr(after, p[-1]) == NULL)) continue;
        const char *d = p + kl, *end = s + n;
        int64_t v = 0;
        int digits = 0;
        while (d < end && *d >= '0' && *d <= '9' && digits < 18) v = v * 10 + (*d++ - '0'), digits++;
        return digits ? v : -1;
    }
    return -1;
}

bool hn_json_find_str(const char *s, size_t n, const char *key, const char **v, size_t *vl) {
    char pat[40];
    int pl = snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = memmem(s, n, pat, (size_t)pl);
    if (!p) return false;
    p += pl;
    const char *q = memchr(p, '"', n - (size_t)(p - s));
    if (!q) q = s + n;
    *v = p;
    *vl = (size_t)(q - p);
    return true;
}

int64_t hn_json_find_int(const char *s, size_t n, const char *key) {
    char pat[40];
    int pl = snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = memmem(s, n, pat, (size_t)pl), *end = s + n;
    if (!p) return -1;
    p += pl;
    int64_t v = 0;
    int digits = 0;
    while (p < end && *p >= '0' && *p <= '9' && digits < 18) v = v * 10 + (*p++ - '0'), digits++;
    return digits ? v : -1;
}
