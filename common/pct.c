/* pct.c: percent-decoding (pct.h). */
#include "common/pct.h"

long hn_pct_decode(const char *src, size_t n, char *dst, size_t cap, unsigned flags) {
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (j >= cap) return HN_PCT_FULL;
        char c = src[i];
        if (c == '%') {
            int hi, lo;
            if (n - i < 3 || (hi = hn_hexval((unsigned char)src[i + 1])) < 0
                    || (lo = hn_hexval((unsigned char)src[i + 2])) < 0)
                return HN_PCT_BAD;
            c = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && (flags & HN_PCT_PLUS)) {
            c = ' ';
        }
        if (c == '\0' && (flags & HN_PCT_NO_NUL)) return HN_PCT_BAD;
        dst[j++] = c;
    }
    if (j < cap) dst[j] = '\0';
    return (long)j;
}

bool hn_plain_path_ok(const char *p) {
    size_t n = 0;
    if (p[0] != '/') return false;
    for (; *p; p++, n++)
        if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '\'' || *p == '?' || *p == '#' ||
            (unsigned char)*p >= 0x7f)
            return false;
    return n <= 200;
}
