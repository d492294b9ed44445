/*
 * hist.h: the benches' latency histogram (hn-sseclient, hn-chatclient,
 * hn-chatdrive): log-linear, 128 steps per power of two (within 0.8 %), in
 * µs up to 2^40 (12 days). 17 KiB each; add, merge, read a quantile.
 */
#ifndef HN_BENCH_HIST_H
#define HN_BENCH_HIST_H

#include <stdint.h>

#define H_SUB_BITS 7
#define H_SUB      (1u << H_SUB_BITS)
#define H_EXP_MAX  40
#define H_BUCKETS  (H_SUB + (H_EXP_MAX - H_SUB_BITS) * H_SUB)

typedef struct hist {
    uint32_t b[H_BUCKETS];
    uint64_t n, max;
} hist;

void h_add(hist *h, uint64_t v);
void h_merge(hist *into, const hist *h);
/* The value at quantile q (0..1), in ms; -1 without samples. */
double h_ms(const hist *h, double q);
/* The largest value in ms; -1 without samples. */
double h_max_ms(const hist *h);

#endif
