/*
 * chatdrive.c: hn-chatdrive, the agents of `make bench-chat`.
 *
 *   1. open: POST /api/visitor-tracking/sessions/<sid>/chat {"text":"bench invite"}
 *      for each of --targets sessions drawn from --sids (the session must be
 *      live: seed it with page views first)
 *   2. messages: POST …/sessions/<sid>/messages {"text":"t=<CLOCK_REALTIME µs> n=<k>"}
 *      at --rate a second for --duration s, each to a random opened session;
 *      k counts from 0 per session
 *
 * --threads threads, each with one blocking keep-alive HTTP/1.1 connection
 * to herenow-api; a thread owns its sessions (target i belongs to thread
 * i mod threads), so one session's messages leave in order, one at a time.
 * Pacing by absolute deadlines: message m (of all) is due at start + m/rate
 * and goes out from thread m mod threads; a thread that falls behind sends
 * at once, and its lateness is reported. t is taken right before the
 * request is written: the delay the visitor's client measures includes the
 * api's whole call (PostgreSQL transaction, XADD).
 *
 * Output: one key=value line on stdout at the end: opened, open_failed,
 * sent, ok (201), the other answers by status, the call's p50/p99, how late;
 * with --convs-out, the conversations opened (for hn-chatdash, whose
 * visitors answer in them).
 * The token comes from HN_CHAT_TOKEN (kept out of ps).
 */
#include "bench/lib/bench.h"
#include "bench/lib/hist.h"
#include "bench/lib/sse.h"
#include "common/hn.h"
#include "common/ids.h"
#include "common/net.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SID_MAX   64
#define HEAD_CAP  4096
#define BODY_CAP  8192
#define THREADS_MAX 64

typedef struct opts {
    const char *to, *token, *sids, *widget, *convs_out;
    uint32_t    targets, threads;
    double      rate, duration;
    uint64_t    seed;
} opts;

typedef struct target {
    const char *sid;
    char        conv[40];  /* the conversation's id (the 201's "id") */
    bool        open;
    uint32_t    n;         /* the next message's number */
} target;

typedef struct worker {
    uint32_t  idx;
    pthread_t th;
    hn_rng    rng;
    target  **mine;        /* its opened sessions */
    uint32_t  nmine;
    bench_http http;       /* its connection to herenow-api */
    hist      call_h;      /* the message calls, µs */
    uint64_t  opened, open_failed, sent, ok, s409, s429, s503, s_other, late_max_us;
} worker;

static opts              o;
static hn_addr           addr;
static target           *tg;
static worker            wk[THREADS_MAX];
static pthread_barrier_t opened_all;
static _Atomic uint64_t  start_mono;     /* the messages' clock, set once every thread has opened */

/* One POST on the worker's connection; the answer's status, or -1 on an
 * I/O error. body: "{...}". */
static int post(worker *w, const char *path, const char *body) {
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "POST %s%s%s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                     "User-Agent: hn-chatdrive\r\n\r\n%s",
                     path, o.widget ? "?widget=" : "", o.widget ? o.widget : "", o.to, o.token,
                     strlen(body), body);
    if (n <= 0 || (size_t)n >= sizeof(req)) return -1;
    return bench_http_call(&w->http, req, (size_t)n);
}

static void *worker_main(void *arg) {
    worker *w = arg;
    char path[160], body[128];
    /* 1. open its sessions */
    w->mine = hn_xcalloc(o.targets / o.threads + 1, sizeof(target *));
    for (uint32_t i = w->idx; i < o.targets; i += o.threads) {
        snprintf(path, sizeof(path), "/api/visitor-tracking/sessions/%s/chat", tg[i].sid);
        int st = post(w, path, "{\"text\":\"bench invite\",\"agent\":\"bench\"}");
        const char *v;
        size_t vl;
        if (st == 201 && hn_json_find_str(w->http.body, strlen(w->http.body), "id", &v, &vl) && vl < sizeof(tg[i].conv))
            memcpy(tg[i].conv, v, vl);
        if (st == 201) {
            tg[i].open = true;
            w->mine[w->nmine++] = &tg[i];
            w->opened++;
        } else {
            w->open_failed++;
            if (w->open_failed <= 3)
                fprintf(stderr, "hn-chatdrive: open %s: %d %s\n", tg[i].sid, st, w->http.body);
        }
    }
    pthread_barrier_wait(&opened_all);
    if (w->idx == 0) atomic_store(&start_mono, bench_mono_us());
    pthread_barrier_wait(&opened_all);
    /* 2. messages m = idx, idx + threads, … due at start + m / rate */
    uint64_t t0 = atomic_load(&start_mono), total = (uint64_t)(o.rate * o.duration);
    for (uint64_t m = w->idx; m < total && w->nmine > 0; m += o.threads) {
        uint64_t late = bench_pace(t0, m, o.rate);
        if (late > w->late_max_us) w->late_max_us = late;
        target *t = w->mine[(hn_rng_next(&w->rng) >> 33) % w->nmine];
        snprintf(path, sizeof(path), "/api/visitor-tracking/sessions/%s/messages", t->sid);
        uint64_t c0 = bench_mono_us();
        snprintf(body, sizeof(body), "{\"text\":\"t=%" PRIu64 " n=%u\",\"agent\":\"bench\"}", bench_real_us(), t->n);
        int st = post(w, path, body);
        h_add(&w->call_h, bench_mono_us() - c0);
        w->sent++;
        /* the number is used up whatever the answer: a 503 may still have been
         * delivered (docs/CHAT.md §6), a failure shows as a gap at the client */
        t->n++;
        if (st == 201) w->ok++;
        else if (st == 409) w->s409++;
        else if (st == 429) w->s429++;
        else if (st == 503) w->s503++;
        else w->s_other++;
        if (st != 201 && w->s409 + w->s429 + w->s503 + w->s_other <= 3)
            fprintf(stderr, "hn-chatdrive: message to %s: %d %s\n", t->sid, st, w->http.body);
    }
    bench_http_close(&w->http);
    return NULL;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: HN_CHAT_TOKEN=… hn-chatdrive --to HOST:PORT --sids FILE [options]\n"
            "  --targets N      sessions to open a conversation on (default 1000)\n"
            "  --rate N         messages/s (default 100)\n"
            "  --duration S     seconds of messages (default 30)\n"
            "  --threads N      connections (default 4)\n"
            "  --seed N         which sessions, which message to which (default 1)\n"
            "  --widget ID      ?widget= on every call (a token of several widgets)\n"
            "  --convs-out FILE the conversations opened, \"<session id> <conversation id>\" a line\n"
            "                   (hn-chatdash: the visitors' answers)\n"
            "prints: targets= opened= open_failed= open_s= sent= ok= s409= s429= s503= s_other=\n"
            "        io_errors= seconds= rate= call_p50_ms= call_p99_ms= call_max_ms= late_max_ms=\n");
}

int main(int argc, char **argv) {
    static const struct option lo[] = {
        {"to", required_argument, NULL, 't'},       {"sids", required_argument, NULL, 's'},
        {"targets", required_argument, NULL, 'n'},  {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'}, {"threads", required_argument, NULL, 'T'},
        {"seed", required_argument, NULL, 'S'},     {"widget", required_argument, NULL, 'w'},
        {"convs-out", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    o = (opts){.targets = 1000, .threads = 4, .rate = 100, .duration = 30, .seed = 1};
    o.token = getenv("HN_CHAT_TOKEN");
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 't': o.to = optarg; break;
        case 's': o.sids = optarg; break;
        case 'w': o.widget = optarg; break;
        case 'c': o.convs_out = optarg; break;
        case 'n': o.targets = (uint32_t)strtoul(optarg, &end, 10); if (*end || o.targets == 0) goto bad; break;
        case 'r': o.rate = strtod(optarg, &end); if (*end || o.rate <= 0) goto bad; break;
        case 'd': o.duration = strtod(optarg, &end); if (*end || o.duration <= 0) goto bad; break;
        case 'T': o.threads = (uint32_t)strtoul(optarg, &end, 10); if (*end || o.threads == 0 || o.threads > THREADS_MAX) goto bad; break;
        case 'S': o.seed = strtoull(optarg, &end, 10); if (*end) goto bad; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !o.to || !o.sids || !o.token || !o.token[0]) {
        usage(stderr);
        return 2;
    }
    char err[256];
    if (hn_addr_parse(o.to, &addr, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "hn-chatdrive: --to %s: %s\n", o.to, err);
        return 2;
    }
    /* the session ids, then a random --targets of them (partial Fisher–Yates) */
    FILE *f = fopen(o.sids, "r");
    if (!f) {
        fprintf(stderr, "hn-chatdrive: %s: %s\n", o.sids, strerror(errno));
        return 2;
    }
    char line[SID_MAX + 2], **all = NULL;
    uint32_t n = 0, cap = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0') continue;
        if (n == cap) all = hn_xrealloc(all, (cap = cap ? cap * 2 : 1024) * sizeof(char *));
        all[n++] = hn_xstrdup(line);
    }
    fclose(f);
    if (o.targets > n) {
        fprintf(stderr, "hn-chatdrive: %s has %u session ids, --targets %u\n", o.sids, n, o.targets);
        return 2;
    }
    hn_rng rng = {{o.seed * 0x9e3779b97f4a7c15ull + 1, 0x5eed, o.seed ^ 0xc4a7, 42}};
    for (uint32_t i = 0; i < o.targets; i++) {
        uint32_t j = i + (uint32_t)((hn_rng_next(&rng) >> 33) % (n - i));
        char *t = all[i];
        all[i] = all[j];
        all[j] = t;
    }
    tg = hn_xcalloc(o.targets, sizeof(target));
    for (uint32_t i = 0; i < o.targets; i++) tg[i].sid = all[i];

    pthread_barrier_init(&opened_all, NULL, o.threads);
    uint64_t t_open = bench_mono_us();
    for (uint32_t i = 0; i < o.threads; i++) {
        wk[i].idx = i;
        bench_http_init(&wk[i].http, &addr);
        wk[i].rng = (hn_rng){{o.seed + i + 1, 0x9e3779b97f4a7c15ull * (i + 1), 7, 0xabcdef}};
        pthread_create(&wk[i].th, NULL, worker_main, &wk[i]);
    }
    for (uint32_t i = 0; i < o.threads; i++) pthread_join(wk[i].th, NULL);
    uint64_t t_end = bench_mono_us();

    worker tot = {0};
    for (uint32_t i = 0; i < o.threads; i++) {
        worker *w = &wk[i];
        h_merge(&tot.call_h, &w->call_h);
        tot.opened += w->opened;
        tot.open_failed += w->open_failed;
        tot.sent += w->sent;
        tot.ok += w->ok;
        tot.s409 += w->s409;
        tot.s429 += w->s429;
        tot.s503 += w->s503;
        tot.s_other += w->s_other;
        tot.http.io_errors += w->http.io_errors;
        if (w->late_max_us > tot.late_max_us) tot.late_max_us = w->late_max_us;
    }
    if (o.convs_out) {
        FILE *cf = fopen(o.convs_out, "w");
        if (!cf) {
            fprintf(stderr, "hn-chatdrive: %s: %s\n", o.convs_out, strerror(errno));
            return 1;
        }
        for (uint32_t i = 0; i < o.targets; i++)
            if (tg[i].open && tg[i].conv[0]) fprintf(cf, "%s %s\n", tg[i].sid, tg[i].conv);
        fclose(cf);
    }
    uint64_t t_msgs = atomic_load(&start_mono);
    double open_s = (double)(t_msgs - t_open) / 1e6, msg_s = (double)(t_end - t_msgs) / 1e6;
    printf("targets=%u opened=%" PRIu64 " open_failed=%" PRIu64 " open_s=%.3f sent=%" PRIu64 " ok=%" PRIu64
           " s409=%" PRIu64 " s429=%" PRIu64 " s503=%" PRIu64 " s_other=%" PRIu64 " io_errors=%" PRIu64
           " seconds=%.3f rate=%.1f call_p50_ms=%.2f call_p99_ms=%.2f call_max_ms=%.2f late_max_ms=%.2f\n",
           o.targets, tot.opened, tot.open_failed, open_s, tot.sent, tot.ok, tot.s409, tot.s429, tot.s503,
           tot.s_other, tot.http.io_errors, msg_s, msg_s > 0 ? (double)tot.sent / msg_s : 0,
           h_ms(&tot.call_h, 0.5), h_ms(&tot.call_h, 0.99), h_max_ms(&tot.call_h),
           (double)tot.late_max_us / 1000.0);
    for (uint32_t i = 0; i < n; i++) free(all[i]);
    free(all);
    free(tg);
    for (uint32_t i = 0; i < o.threads; i++) free(wk[i].mine);
    pthread_barrier_destroy(&opened_all);
    return tot.opened == 0 ? 1 : 0;
bad:
    fprintf(stderr, "hn-chatdrive: bad value '%s'\n", optarg);
    usage(stderr);
    return 2;
}
