/* ratelimit.c: see ratelimit.h. */
#include "collector/ratelimit.h"

#include <stdlib.h>
#include <sys/random.h>

#define WAYS 8
#define DEFAULT_SLOTS 4096
#define MAX_SLOTS ((size_t)1 << 28)

/* A table entry needs no "empty" state: a zeroed key with a full bucket at
 * time 0 is a fresh bucket for whichever client maps to it. */
typedef struct rl_entry {
    uint64_t k[2];           /* the masked address, as it lies in hn_ip.b */
    double   tokens;
    uint64_t last_ms;        /* tokens were counted at this time */
} rl_entry;

struct hn_rl {
    double    rate;          /* tokens per second; <= 0: unlimited */
    double    burst;
    uint64_t  mask4[2], mask6[2];
    uint64_t  seed;
    size_t    setmask;       /* sets - 1 */
    rl_entry *e;             /* (setmask + 1) * WAYS entries */
};

static void make_mask(uint64_t out[2], unsigned bits) {
    uint8_t b[16];
    for (unsigned i = 0; i < 16; i++) {
        unsigned lo = i * 8;
        b[i] = bits >= lo + 8 ? 0xff : bits <= lo ? 0 : (uint8_t)(0xff << (8 - (bits - lo)));
    }
    memcpy(out, b, 16);
}

hn_rl *hn_rl_create(double rate_per_s, double burst, unsigned v4_prefix, unsigned v6_prefix,
                    size_t slots) {
    hn_rl *r = hn_xcalloc(1, sizeof(*r));
    if (!(rate_per_s > 0)) return r;         /* unlimited (also NaN) */
    r->rate = rate_per_s;
    r->burst = burst;
    /* v4 lives in the last 32 bits of the mapped form */
    make_mask(r->mask4, 96 + (v4_prefix < 32 ? v4_prefix : 32));
    make_mask(r->mask6, v6_prefix < 128 ? v6_prefix : 128);
    if (getrandom(&r->seed, sizeof(r->seed), GRND_NONBLOCK) != (ssize_t)sizeof(r->seed))
        r->seed = hn_mono_us() ^ (uint64_t)(uintptr_t)r;

    if (slots == 0) slots = DEFAULT_SLOTS;
    if (slots > MAX_SLOTS) slots = MAX_SLOTS;
    size_t sets = 1;
    while (sets * WAYS < slots) sets <<= 1;
    r->setmask = sets - 1;
    r->e = hn_xcalloc(sets * WAYS, sizeof(rl_entry));
    for (size_t i = 0; i < sets * WAYS; i++) r->e[i].tokens = burst;
    return r;
}

void hn_rl_destroy(hn_rl *r) {
    if (r == NULL) return;
    free(r->e);
    free(r);
}

/* Seeded, so which clients share a set is not predictable from outside. */
static size_t set_of(const hn_rl *r, uint64_t k0, uint64_t k1) {
    uint64_t h = (k0 ^ r->seed) * 0x9e3779b97f4a7c15u;
    h ^= k1 + (h >> 29);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdu;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53u;
    h ^= h >> 33;
    return (size_t)h & r->setmask;
}

/* Tokens of e at now (not stored). */
static double level(const hn_rl *r, const rl_entry *e, uint64_t now_ms) {
    if (now_ms <= e->last_ms) return e->tokens;
    double t = e->tokens + (double)(now_ms - e->last_ms) * r->rate / 1000.0;
    return t < r->burst ? t : r->burst;
}

bool hn_rl_take(hn_rl *r, const hn_ip *ip, uint64_t now_ms, double cost) {
    if (r == NULL || r->e == NULL) return true;
    uint64_t k[2];
    memcpy(k, ip->b, 16);
    const uint64_t *m = ip->v4 ? r->mask4 : r->mask6;
    k[0] &= m[0];
    k[1] &= m[1];

    rl_entry *set = r->e + set_of(r, k[0], k[1]) * WAYS, *e = NULL;
    for (unsigned i = 0; i < WAYS; i++) {
        if (set[i].k[0] == k[0] && set[i].k[1] == k[1]) {
            e = &set[i];
            break;
        }
    }
    if (e) {
        e->tokens = level(r, e, now_ms);
        if (now_ms > e->last_ms) e->last_ms = now_ms;
    } else {
        /* a refilled bucket is free to take; otherwise the least recent */
        rl_entry *lru = &set[0];
        for (unsigned i = 0; i < WAYS && e == NULL; i++) {
            if (level(r, &set[i], now_ms) >= r->burst) e = &set[i];
            else if (set[i].last_ms < lru->last_ms) lru = &set[i];
        }
        if (e == NULL) e = lru;
        e->k[0] = k[0];
        e->k[1] = k[1];
        e->tokens = r->burst;
        e->last_ms = now_ms;
    }
    if (e->tokens < cost) return false;
    e->tokens -= cost;
    return true;
}

size_t hn_rl_capacity(const hn_rl *r) {
    return r && r->e ? (r->setmask + 1) * WAYS : 0;
}

size_t hn_rl_tracked(const hn_rl *r, uint64_t now_ms) {
    size_t n = 0, cap = hn_rl_capacity(r);
    for (size_t i = 0; i < cap; i++) n += level(r, &r->e[i], now_ms) < r->burst;
    return n;
}
