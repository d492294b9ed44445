/* json.c: see json.h. */
#include "common/json.h"

#include "common/utf8.h"

#include <stdio.h>

/* Length of the valid UTF-8 sequence at s (<= n), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
    if (len == 0 || len > n) return 0;
    return hn_utf8_valid((const char *)s, len) ? len : 0;
}

void hn_json_str(hn_buf *b, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    hn_buf_reserve(b, n + 2);
    b->p[b->len++] = '"';
    for (size_t i = 0; i < n;) {
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
        } else if (ch < 0x80) {
            hn_buf_append(b, &p[i], 1);
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
