/*
 * rulebench.c: hn-rulebench, the same-run reference of `make bench-rules`:
 * the rules' evaluation alone, in a tight loop, on records like the
 * bench's, so that the engine's figure (measured by the clock inside a
 * busy api, on a machine that the bench fills) can be read against what
 * the evaluation itself costs on the same machine at the same moment.
 *
 *   hn-rulebench --rules FILE [--records N] [--sessions N] [--seed N]
 *
 * FILE: one rule definition (JSON) a line, as `herenowctl rule add` takes
 * it. Each record is a page view of a random session (of --sessions): a
 * bench-style URL with its send time and number, a title, the session's
 * page views; the rules evaluated are those reading a field a page view
 * changes (url, title, page views, time on page), every one of them each
 * time (the engine also skips the rules that failed on a field the record
 * did not change: it evaluates fewer). Sessions' strings are allocated
 * apart, as the engine's are.
 *
 * Output (one key=value line): rules, evaluated (rules per record),
 * records, cpu_ns (process CPU time per record: the machine's other work
 * does not count, its contention for the cores does), wall_ns (wall clock
 * per record: preemption counts), matches.
 */
#include "common/hn.h"
#include "proto/rule.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE_MAX_BYTES (HN_RULE_BODY_MAX + 2)
#define RULES_MAX      1000

static double clock_ns(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static uint64_t next(uint64_t *x) {
    *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
    return *x >> 33;
}

/* A page view of a random session: its URL and title written, its page
 * views counted; the session's index. */
static long make_record(uint64_t *x, long sessions, char **urls, char **titles, uint32_t *pvs, int64_t now, long k) {
    long s = (long)(next(x) % (uint64_t)sessions);
    unsigned page = (unsigned)(next(x) % 100);
    snprintf(urls[s], 128, "https://bench.example/p/%u?t=%lld&n=%ld", page, (long long)now * 1000, k);
    snprintf(titles[s], 32, "Bench page %u", page);
    pvs[s]++;
    return s;
}

static int usage(void) {
    fprintf(stderr, "usage: hn-rulebench --rules FILE [--records N (200000)] [--sessions N (10000)] [--seed N]\n");
    return 2;
}

int main(int argc, char **argv) {
    static const struct option lo[] = {
        {"rules", required_argument, NULL, 'r'},    {"records", required_argument, NULL, 'n'},
        {"sessions", required_argument, NULL, 's'}, {"seed", required_argument, NULL, 'S'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL;
    long records = 200000, sessions = 10000;
    uint64_t x = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'r': file = optarg; break;
        case 'n': records = atol(optarg); break;
        case 's': sessions = atol(optarg); break;
        case 'S': x = strtoull(optarg, NULL, 10); break;
        default: return usage();
        }
    }
    if (file == NULL || records <= 0 || sessions <= 0) return usage();

    FILE *f = fopen(file, "r");
    if (f == NULL) {
        perror(file);
        return 1;
    }
    static hn_rule *rules[RULES_MAX];
    int nrules = 0;
    char *line = hn_xmalloc(LINE_MAX_BYTES), err[300];
    while (nrules < RULES_MAX && fgets(line, LINE_MAX_BYTES, f)) {
        size_t l = strlen(line);
        if (l == LINE_MAX_BYTES - 1 && line[l - 1] != '\n') {
            fprintf(stderr, "hn-rulebench: rule %d: longer than %d bytes\n", nrules + 1, HN_RULE_BODY_MAX);
            return 1;
        }
        if (l && line[l - 1] == '\n') line[--l] = 0;
        if (l == 0) continue;
        if (hn_rule_parse(line, l, NULL, &rules[nrules], err, sizeof(err)) != HN_OK) {
            fprintf(stderr, "hn-rulebench: rule %d: %s\n", nrules + 1, err);
            return 1;
        }
        nrules++;
    }
    fclose(f);
    free(line);

    /* the rules a page view makes the engine look at */
    uint32_t pv = 1u << HN_RF_URL | 1u << HN_RF_TITLE | 1u << HN_RF_PAGE_VIEWS | 1u << HN_RF_TIME_ON_PAGE;
    int sel[RULES_MAX], nsel = 0;
    for (int i = 0; i < nrules; i++)
        if (hn_rule_fields(rules[i]) & pv) sel[nsel++] = i;

    /* sessions: a URL buffer and a title each, allocated apart */
    char **urls = hn_xcalloc((size_t)sessions, sizeof(char *)), **titles = hn_xcalloc((size_t)sessions, sizeof(char *));
    uint32_t *pvs = hn_xcalloc((size_t)sessions, sizeof(uint32_t));
    for (long i = 0; i < sessions; i++) {
        urls[i] = hn_xmalloc(128);
        titles[i] = hn_xmalloc(32);
        pvs[i] = 1;
    }
    int64_t now = (int64_t)(clock_ns(CLOCK_REALTIME) / 1e6);
    long matches = 0;
    double c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID), w0 = clock_ns(CLOCK_MONOTONIC);
    for (long k = 0; k < records; k++) {
        long s = make_record(&x, sessions, urls, titles, pvs, now, k);
        hn_rule_sess v;
        memset(&v, 0, sizeof(v));
        v.str[HN_RF_URL] = urls[s];
        v.str[HN_RF_TITLE] = titles[s];
        v.returning = 0;
        v.page_views = pvs[s];
        v.session_start_ms = v.page_start_ms = now - 1000;
        for (int i = 0; i < nsel; i++) {
            int64_t at;
            matches += hn_rule_eval(rules[sel[i]], &v, now, &at) == HN_RULE_MATCH;
        }
    }
    double c1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID), w1 = clock_ns(CLOCK_MONOTONIC);
    /* the record's making (its URL and title) is in the loop: measured alone,
     * in process CPU time, and taken off both figures */
    double m0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    for (long k = 0; k < records; k++) (void)make_record(&x, sessions, urls, titles, pvs, now, k);
    double m1 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    double making = (m1 - m0) / (double)records;
    printf("rules=%d evaluated=%d records=%ld cpu_ns=%.1f wall_ns=%.1f making_ns=%.1f matches=%ld\n", nrules, nsel,
           records, (c1 - c0) / (double)records - making, (w1 - w0) / (double)records - making, making, matches);
    for (int i = 0; i < nrules; i++) hn_rule_free(rules[i]);
    for (long i = 0; i < sessions; i++) free(urls[i]), free(titles[i]);
    free(urls);
    free(titles);
    free(pvs);
    return 0;
}
