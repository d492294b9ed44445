/* ids.c: see ids.h. */
#include "common/ids.h"
#include "common/pct.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void hn_rng_seed(hn_rng *r) {
    if (getrandom(r->s, sizeof(r->s), 0) != (ssize_t)sizeof(r->s)) {
        /* getrandom blocks until the pool is ready and cannot fail short
         * for 32 bytes; if it does the system is broken. */
        fprintf(stderr, "level=fatal event=getrandom_failed\n");
        abort();
    }
    if ((r->s[0] | r->s[1] | r->s[2] | r->s[3]) == 0) r->s[0] = 1;
}

uint64_t hn_rng_next(hn_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

void hn_event_id_new(hn_rng *r, uint64_t now_ms, uint8_t out[16]) {
    uint64_t a = hn_rng_next(r), b = hn_rng_next(r);
    for (int i = 0; i < 6; i++) out[i] = (uint8_t)(now_ms >> (40 - 8 * i));
    out[6] = (uint8_t)(0x70 | (a & 0x0f));
    out[7] = (uint8_t)(a >> 8);
    out[8] = (uint8_t)(0x80 | ((a >> 16) & 0x3f));
    for (int i = 9; i < 16; i++) out[i] = (uint8_t)(b >> (8 * (i - 9)));
}

bool hn_uuid_parse(const char *s, uint8_t out[16]) {
    int n = 0;
    for (; *s && n < 32; s++) {
        if (*s == '-') continue;
        int v = hn_hexval((unsigned char)*s);
        if (v < 0) return false;
        if (n % 2 == 0) out[n / 2] = (uint8_t)(v << 4);
        else out[n / 2] |= (uint8_t)v;
        n++;
    }
    return n == 32 && *s == '\0';
}
