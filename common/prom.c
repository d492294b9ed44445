/* prom.c: the Prometheus text format of prom.h. */
#include "common/prom.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

static const char *const type_names[] = {"counter", "gauge", "histogram"};

void hn_prom_family(hn_buf *b, const char *name, hn_prom_type type, const char *help) {
    /* HELP text escapes only \ and newline (the exposition format). */
    hn_buf_printf(b, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\') hn_buf_append(b, "\\\\", 2);
        else if (*p == '\n') hn_buf_append(b, "\\n", 2);
        else hn_buf_append(b, p, 1);
    }
    hn_buf_printf(b, "\n# TYPE %s %s\n", name, type_names[type]);
}

static void label_value(hn_buf *b, const char *v) {
    for (const char *p = v; *p; p++) {
        if (*p == '\\') hn_buf_append(b, "\\\\", 2);
        else if (*p == '"') hn_buf_append(b, "\\\"", 2);
        else if (*p == '\n') hn_buf_append(b, "\\n", 2);
        else hn_buf_append(b, p, 1);
    }
}

/* name{k="v",...} with an optional extra pair (a histogram's le) */
static void series(hn_buf *b, const char *name, const char *suffix, const hn_prom_labels *l,
                   const char *ek, const char *ev) {
    hn_buf_printf(b, "%s%s", name, suffix);
    int n = l ? l->n : 0;
    if (n == 0 && ek == NULL) return;
    hn_buf_append(b, "{", 1);
    for (int i = 0; i < n; i++) {
        hn_buf_printf(b, "%s%s=\"", i ? "," : "", l->k[i]);
        label_value(b, l->v[i]);
        hn_buf_append(b, "\"", 1);
    }
    if (ek) {
        hn_buf_printf(b, "%s%s=\"", n ? "," : "", ek);
        label_value(b, ev);
        hn_buf_append(b, "\"", 1);
    }
    hn_buf_append(b, "}", 1);
}

/* The shortest text that reads back as v (integers without a point). */
static void number(hn_buf *b, double v) {
    if (isnan(v)) { hn_buf_append(b, "NaN", 3); return; }
    if (isinf(v)) { hn_buf_printf(b, "%sInf", v < 0 ? "-" : "+"); return; }
    char s[32];
    snprintf(s, sizeof(s), "%.15g", v);
    if (strtod(s, NULL) != v) snprintf(s, sizeof(s), "%.17g", v);
    hn_buf_append(b, s, strlen(s));
}

void hn_prom_u64(hn_buf *b, const char *name, const hn_prom_labels *l, uint64_t v) {
    series(b, name, "", l, NULL, NULL);
    hn_buf_printf(b, " %llu\n", (unsigned long long)v);
}

void hn_prom_f64(hn_buf *b, const char *name, const hn_prom_labels *l, double v) {
    series(b, name, "", l, NULL, NULL);
    hn_buf_append(b, " ", 1);
    number(b, v);
    hn_buf_append(b, "\n", 1);
}

void hn_prom_counter(hn_buf *b, const char *name, const char *help, uint64_t v) {
    hn_prom_family(b, name, HN_PROM_COUNTER, help);
    hn_prom_u64(b, name, HN_PROM_L0, v);
}

void hn_prom_gauge(hn_buf *b, const char *name, const char *help, double v) {
    hn_prom_family(b, name, HN_PROM_GAUGE, help);
    hn_prom_f64(b, name, HN_PROM_L0, v);
}

void hn_prom_scalars(hn_buf *b, const hn_prom_scalar *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        hn_prom_family(b, s[i].name, s[i].type, s[i].help);
        if (s[i].real) hn_prom_f64(b, s[i].name, HN_PROM_L0, s[i].f);
        else hn_prom_u64(b, s[i].name, HN_PROM_L0, s[i].u);
    }
}

void hn_prom_histogram(hn_buf *b, const char *name, const hn_prom_labels *l, const double *le,
                       const uint64_t *count, size_t nb, double sum) {
    uint64_t cum = 0;
    char bound[32];
    for (size_t i = 0; i <= nb; i++) {
        cum += count[i];
        if (i < nb) {
            snprintf(bound, sizeof(bound), "%.15g", le[i]);
        } else {
            snprintf(bound, sizeof(bound), "+Inf");
        }
        series(b, name, "_bucket", l, "le", bound);
        hn_buf_printf(b, " %llu\n", (unsigned long long)cum);
    }
    series(b, name, "_sum", l, NULL, NULL);
    hn_buf_append(b, " ", 1);
    number(b, sum);
    hn_buf_append(b, "\n", 1);
    series(b, name, "_count", l, NULL, NULL);
    hn_buf_printf(b, " %llu\n", (unsigned long long)cum);
}
