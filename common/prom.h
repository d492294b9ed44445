/*
 * prom.h: the Prometheus text exposition format (version 0.0.4), written
 * into an hn_buf — the one writer behind both daemons' /metrics.
 *
 * A metric family is announced once (HELP and TYPE), then its samples
 * follow, each with up to HN_PROM_MAX_LABELS label pairs whose values are
 * escaped here (\\, \" and \n). Names follow herenow_<what>_<base unit>
 * [_total]; `promtool check metrics` accepts the output (tested).
 *
 *   hn_prom_family(b, "herenow_x_total", HN_PROM_COUNTER, "Things done, by kind.");
 *   hn_prom_u64(b, "herenow_x_total", HN_PROM_L1("kind", "a"), 12);
 *
 * Histograms take per-bucket counts (not cumulative: the writer adds them
 * up), one more than the bounds for the +Inf bucket, and the sum in the
 * metric's unit.
 */
#ifndef HN_PROM_H
#define HN_PROM_H

#include "common/buf.h"

#define HN_PROM_MAX_LABELS 3

typedef enum { HN_PROM_COUNTER, HN_PROM_GAUGE, HN_PROM_HISTOGRAM } hn_prom_type;

typedef struct hn_prom_labels {
    int         n;
    const char *k[HN_PROM_MAX_LABELS];
    const char *v[HN_PROM_MAX_LABELS];
} hn_prom_labels;

#define HN_PROM_L0 ((const hn_prom_labels *)NULL)
#define HN_PROM_L1(k1, v1) (&(hn_prom_labels){1, {k1}, {v1}})
#define HN_PROM_L2(k1, v1, k2, v2) (&(hn_prom_labels){2, {k1, k2}, {v1, v2}})

void hn_prom_family(hn_buf *b, const char *name, hn_prom_type type, const char *help);
/* One sample of the family announced last; l may be HN_PROM_L0. */
void hn_prom_u64(hn_buf *b, const char *name, const hn_prom_labels *l, uint64_t v);
void hn_prom_f64(hn_buf *b, const char *name, const hn_prom_labels *l, double v);

/* A family with one unlabelled sample. */
void hn_prom_counter(hn_buf *b, const char *name, const char *help, uint64_t v);
void hn_prom_gauge(hn_buf *b, const char *name, const char *help, double v);

/* A metric of a table, written in a loop: {.name, .type, .help, .u} for a
 * whole number (printed exactly, every bit of a uint64_t), or with
 * .f = v, .real = true for one that is not. */
typedef struct hn_prom_scalar {
    const char  *name;
    hn_prom_type type;
    const char  *help;
    uint64_t     u;
    double       f;
    bool         real;
} hn_prom_scalar;
void hn_prom_scalars(hn_buf *b, const hn_prom_scalar *s, size_t n);

/* The samples of one histogram series: le[0..nb) bounds, count[0..nb] per
 * bucket (count[nb]: above the last bound), sum. The family is announced by
 * the caller (one family, many label sets). */
void hn_prom_histogram(hn_buf *b, const char *name, const hn_prom_labels *l, const double *le,
                       const uint64_t *count, size_t nb, double sum);

#endif
