/* buf.c: see buf.h. */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void hn_buf_init(hn_buf *b, size_t cap) {
    b->p = hn_xmalloc(cap ? cap : 64);
    b->len = 0;
    b->cap = cap ? cap : 64;
}

void hn_buf_free(hn_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

void hn_buf_grow(hn_buf *b, size_t more) {
    if (b->len + more <= b->cap) return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + more) {
        if (cap > SIZE_MAX / 2) hn_xmalloc(SIZE_MAX);   /* aborts */
        cap *= 2;
    }
    b->p = hn_xrealloc(b->p, cap);
    b->cap = cap;
}

void hn_buf_append(hn_buf *b, const void *p, size_t n) {
    hn_buf_reserve(b, n);
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}

void hn_buf_printf(hn_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= b->cap - b->len) {
        hn_buf_reserve(b, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

size_t hn_u64toa(uint64_t v, char *out) {
    char tmp[20];
    char *e = tmp + sizeof(tmp), *q = e;
    do {
        *--q = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t n = (size_t)(e - q);
    memcpy(out, q, n);
    return n;
}

void hn_resp_cmd(hn_buf *b, unsigned nargs) {
    hn_buf_reserve(b, 24);
    b->p[b->len++] = '*';
    b->len += hn_u64toa(nargs, b->p + b->len);
    b->p[b->len++] = '\r';
    b->p[b->len++] = '\n';
}

void hn_resp_arg(hn_buf *b, const void *p, size_t n) {
    hn_buf_reserve(b, n + 32);
    b->p[b->len++] = '$';
    b->len += hn_u64toa(n, b->p + b->len);
    b->p[b->len++] = '\r';
    b->p[b->len++] = '\n';
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len++] = '\r';
    b->p[b->len++] = '\n';
}

void hn_resp_arg2(hn_buf *b, const void *p1, size_t n1, const void *p2, size_t n2) {
    hn_buf_reserve(b, n1 + n2 + 32);
    b->p[b->len++] = '$';
    b->len += hn_u64toa(n1 + n2, b->p + b->len);
    b->p[b->len++] = '\r';
    b->p[b->len++] = '\n';
    if (n1) memcpy(b->p + b->len, p1, n1);
    b->len += n1;
    if (n2) memcpy(b->p + b->len, p2, n2);
    b->len += n2;
    b->p[b->len++] = '\r';
    b->p[b->len++] = '\n';
}

int hn_buf_msgpack_write(void *data, const char *buf, size_t len) {
    hn_buf *b = data;
    /* msgpack-c calls this for every header byte and every string: keep the
     * common case (room left, a few bytes) free of calls. */
    if (len <= 8 && b->len + 8 <= b->cap) {
        for (size_t i = 0; i < len; i++) b->p[b->len + i] = buf[i];
        b->len += len;
        return 0;
    }
    hn_buf_append(b, buf, len);
    return 0;
}

void hn_resp_str(hn_buf *b, const char *s) {
    hn_resp_arg(b, s, strlen(s));
}

void hn_resp_u64(hn_buf *b, uint64_t v) {
    char tmp[21];
    hn_resp_arg(b, tmp, hn_u64toa(v, tmp));
}

