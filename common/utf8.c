/*
 * utf8.c: strict UTF-8 validation. Pure, no state; the decoders call it on
 * every string of every beacon, so the ASCII fast path matters.
 */
#include "common/utf8.h"

#include <stdint.h>
#include <string.h>

/* Strict per RFC 3629 / Unicode table 3-7: the second byte's range depends on
 * the lead byte, which is what rules out overlongs (C0, C1, E0 80..9F,
 * F0 80..8F), surrogates (ED A0..BF) and code points above U+10FFFF
 * (F4 90.., F5..FF). Beacons are almost all ASCII, hence the 8-byte skip. */
bool hn_utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    bool ok = true;

    while (i < len && ok) {
        if (len - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & UINT64_C(0x8080808080808080)) == 0) {
                i += 8;
                continue;
            }
        }
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t more;
        unsigned lo = 0x80, hi = 0xBF;       /* range of the second byte */
        if (c >= 0xC2 && c <= 0xDF)      more = 1;
        else if (c == 0xE0)              more = 2, lo = 0xA0;
        else if (c == 0xED)              more = 2, hi = 0x9F;
        else if (c >= 0xE1 && c <= 0xEF) more = 2;
        else if (c == 0xF0)              more = 3, lo = 0x90;
        else if (c == 0xF4)              more = 3, hi = 0x8F;
        else if (c >= 0xF1 && c <= 0xF3) more = 3;
        else { ok = false; break; }

        if (len - i - 1 < more || p[i + 1] < lo || p[i + 1] > hi) {
            ok = false;
            break;
        }
        for (size_t j = 2; j <= more; j++) {
            if ((p[i + j] & 0xC0) != 0x80) ok = false;
        }
        i += more + 1;
    }
    return ok;
}
