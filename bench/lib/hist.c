/*
 * hist.c: the benches' log-linear latency histogram (hist.h).
 */
#include "bench/lib/hist.h"

static unsigned h_index(uint64_t v) {
    if (v < H_SUB) return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    if (e >= H_EXP_MAX) return H_BUCKETS - 1;
    unsigned sub = (unsigned)(v >> (e - H_SUB_BITS)) & (H_SUB - 1);
    return H_SUB + (e - H_SUB_BITS) * H_SUB + sub;
}

static uint64_t h_mid(unsigned i) {
    if (i < H_SUB) return i;
    unsigned e = (i - H_SUB) / H_SUB + H_SUB_BITS, sub = (i - H_SUB) % H_SUB;
    uint64_t lo = ((uint64_t)H_SUB + sub) << (e - H_SUB_BITS);
    return lo + ((1ull << (e - H_SUB_BITS)) >> 1);
}

void h_add(hist *h, uint64_t v) {
    h->b[h_index(v)]++;
    h->n++;
    if (v > h->max) h->max = v;
}

void h_merge(hist *into, const hist *h) {
    for (unsigned i = 0; i < H_BUCKETS; i++) into->b[i] += h->b[i];
    into->n += h->n;
    if (h->max > into->max) into->max = h->max;
}

double h_ms(const hist *h, double q) {
    if (h->n == 0) return -1;
    uint64_t rank = (uint64_t)(q * (double)h->n + 0.999999);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < H_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = h_mid(i);
            return (double)(v > h->max ? h->max : v) / 1000.0;
        }
    }
    return (double)h->max / 1000.0;
}

double h_max_ms(const hist *h) { return h->n ? (double)h->max / 1000.0 : -1.0; }
