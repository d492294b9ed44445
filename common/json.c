/* json.c: see json.h. */
#include "common/json.h"

#include "common/timefmt.h"
#include "common/utf8.h"

#include <math.h>
#include <stdio.h>

/* Length of the valid UTF-8 sequence at s (<= n), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
    if (len == 0 || len > n) return 0;
    return hn_utf8_valid((const char *)s, len) ? len : 0;
}

/* A byte that goes into a JSON string as it is: printable ASCII but '"' and
 * '\\' (control bytes, DEL and non-ASCII take the slow path). */
static inline bool json_plain(unsigned char ch) {
    return ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\';
}

/* Runs of plain bytes are copied at once: most text (URLs, titles, keys)
 * is one run, and a byte at a time cost the live list a quarter of its CPU. */
void hn_json_str(hn_buf *b, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    hn_buf_reserve(b, n + 2);
    b->p[b->len++] = '"';
    for (size_t i = 0; i < n;) {
        size_t run = i;
        while (run < n && json_plain(p[run])) run++;
        if (run > i) {
            hn_buf_append(b, p + i, run - i);
            i = run;
            if (i == n) break;
        }
        unsigned char ch = p[i];
        if (ch == '"' || ch == '\\') {
            char esc[2] = {'\\', (char)ch};
            hn_buf_append(b, esc, 2);
            i++;
        } else if (ch < 0x20 || ch == 0x7f) {
            char esc[8];
            int k = snprintf(esc, sizeof(esc), "\\u%04x", ch);
            hn_buf_append(b, esc, (size_t)k);
            i++;
        } else {
            size_t k = utf8_seq(p + i, n - i);
            if (k) {
                hn_buf_append(b, p + i, k);
                i += k;
            } else {
                hn_buf_append(b, "\xef\xbf\xbd", 3);
                i++;
            }
        }
    }
    hn_buf_append(b, "\"", 1);
}

void hn_json_key(hn_buf *b, bool *first, const char *key) {
    if (!*first) hn_buf_append(b, ",", 1);
    *first = false;
    hn_json_str(b, key, strlen(key));
    hn_buf_append(b, ":", 1);
}

/* ---- members ---------------------------------------------------------------- */

void hn_json_kstrn(hn_buf *b, bool *first, const char *key, const char *s, size_t n) {
    hn_json_key(b, first, key);
    if (s)
        hn_json_str(b, s, n);
    else
        hn_buf_append(b, "null", 4);
}

void hn_json_kstr(hn_buf *b, bool *first, const char *key, const char *s) {
    hn_json_kstrn(b, first, key, s, s ? strlen(s) : 0);
}

void hn_json_kint(hn_buf *b, bool *first, const char *key, int64_t v) {
    hn_json_key(b, first, key);
    hn_buf_reserve(b, 24);
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        b->p[b->len++] = '-';
        u = 0 - u;                              /* INT64_MIN too */
    }
    b->len += hn_u64toa(u, b->p + b->len);
}

void hn_json_kbool(hn_buf *b, bool *first, const char *key, bool v) {
    hn_json_key(b, first, key);
    hn_buf_append(b, v ? "true" : "false", v ? 4 : 5);
}

void hn_json_knull(hn_buf *b, bool *first, const char *key) {
    hn_json_key(b, first, key);
    hn_buf_append(b, "null", 4);
}

void hn_json_ktime(hn_buf *b, bool *first, const char *key, int64_t ms) {
    char t[HN_TIME_CAP];
    size_t n = hn_fmt_time_ms(ms, t);
    hn_json_kstrn(b, first, key, n ? t : NULL, n);
}

void hn_json_kfixed(hn_buf *b, bool *first, const char *key, double v, int decimals) {
    hn_json_key(b, first, key);
    if (!isfinite(v)) v = 0;
    hn_buf_printf(b, "%.*f", decimals, v);
}

void hn_json_kraw(hn_buf *b, bool *first, const char *key, const char *raw, size_t n) {
    hn_json_key(b, first, key);
    hn_buf_append(b, raw, n);
}
