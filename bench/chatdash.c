/*
 * chatdash.c: hn-chatdash, the dashboard and the visitors' answers of
 * `make bench-chat` (issue 14: visitor → dashboard).
 *
 *   sender threads ──POST /b, beacon t=msg, ci, x "?t=<µs>&n=<k>"──► herenow-collector
 *                                          HINCRBY messages_sent, XADD hn:stream ──► Redis
 *   reader thread ◄──SSE GET …/widgets/:id/active-visitors/stream── herenow-api's live hub (XREAD, every tick)
 *   tail thread   ◄──XREAD BLOCK hn:stream:<shard>── Redis (the reference: when the api could know)
 *
 * 1. Opens the widget's live stream (`Authorization: Bearer`, the token from
 *    HN_CHAT_TOKEN) and reads every event of it; prints `ready` once the
 *    snapshot came.
 * 2. On SIGUSR1, reads --convs (hn-chatdrive --convs-out: "<sid> <conv>" a
 *    line) and sends --rate visitor messages/s for --duration s, each to a
 *    random one of those conversations, the way the chat script sends them:
 *    a beacon t=msg with ci = the conversation and q counting on from
 *    --q-start, one HTTP POST each (a browser's path; UDP is for relays) on
 *    --threads keep-alive connections. A thread owns its sessions (i mod
 *    threads), so one session's messages leave one at a time, in order; the
 *    send time is taken right before the request is written.
 * 3. The stream's items carry messages_sent, the session's count of visitor
 *    messages (the collector's HINCRBY): an event showing the count c for a
 *    session means its messages 1..c have arrived. The hub sends a session at
 *    most once a tick, so a count may grow by several at once: each message
 *    ≤ c not shown before gets its delay, read time − its send time (one
 *    process, one clock: CLOCK_REALTIME, also in the text for the tail).
 * 4. Ends once every accepted message has shown, or --grace s after the last
 *    was sent (what has not shown by then is lost), or on SIGTERM/SIGINT;
 *    prints one `overall …` key=value line.
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
#include <msgpack.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SID_MAX     64
#define CONV_MAX    40
#define THREADS_MAX 64
#define LINE_KEEP   (64 * 1024)      /* an update is < 2 KiB; the snapshot's line is only counted */
#define BROWSER_UA  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) hn-chatdash"

typedef struct opts {
    const char *api, *path, *collector, *beacon_path, *key, *token, *convs, *redis, *tail;
    uint32_t    threads;
    double      rate, duration, grace;
    uint64_t    q_start, seed;
} opts;

typedef struct conv {
    char      sid[SID_MAX + 1], ci[CONV_MAX];
    uint64_t  q;              /* the next beacon's number (sender) */
    uint32_t  nsent, cap;     /* messages accepted or in flight, their send times (under mu) */
    uint64_t *sent_us;
    uint32_t  seen;           /* the highest messages_sent the stream showed (under mu) */
} conv;

typedef struct sender {
    uint32_t   idx;
    pthread_t  th;
    bench_http http;
    hn_rng     rng;
    conv     **mine;
    uint32_t   nmine;
    hist       call_h;
    uint64_t   sent, s200, s204, s_other, late_max_us;
} sender;

static opts            o;
static conv           *cv;             /* sorted by sid; published under mu */
static uint32_t        ncv;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static sender          sd[THREADS_MAX];
static atomic_bool     stop_reader, stop_tail;
static bench_tail      tail = {.who = "hn-chatdash", .stop = &stop_tail};

/* the reader's (its thread until joined) */
static hist     delay_h;
static uint64_t shown, unmatched, jumps, events, updates, counted, bytes, disconnects, ready_us, snap_total;
static int      stream_status;
static char     ev_name[16];
static uint64_t read_us;             /* the read the lines being parsed came in */
static uint64_t t0_us;

/* ---- the dashboard's stream ------------------------------------------------------------ */

static int by_sid(const void *a, const void *b) {
    return strcmp(((const conv *)a)->sid, ((const conv *)b)->sid);
}

/* Under mu: the count c of a session arrived at read_us. */
static void count_shown(const char *sid, size_t sl, int64_t c) {
    conv key;
    if (sl > SID_MAX || cv == NULL) return;
    memcpy(key.sid, sid, sl);
    key.sid[sl] = '\0';
    conv *s = bsearch(&key, cv, ncv, sizeof(conv), by_sid);
    if (s == NULL || c <= (int64_t)s->seen) return;
    counted++;
    if (c - s->seen > 1) jumps++;
    for (uint32_t k = s->seen + 1; k <= (uint64_t)c; k++) {
        if (k > s->nsent) {
            unmatched++;      /* a count above what was sent (an answer lost, the message not) */
            continue;
        }
        uint64_t t = s->sent_us[k - 1];
        h_add(&delay_h, read_us > t ? read_us - t : 0);
        shown++;
    }
    s->seen = (uint32_t)c;
}

static void on_line(void *arg, const char *s, size_t n, size_t total) {
    (void)arg;
    if (total == 0) {                                      /* the end of an event */
        if (strcmp(ev_name, "snapshot") == 0 && ready_us == 0) {
            ready_us = bench_mono_us();
            printf("ready t_ms=%.1f total=%" PRIu64 "\n", (double)(ready_us - t0_us) / 1000.0, snap_total);
            fflush(stdout);
        }
        ev_name[0] = '\0';
        return;
    }
    const char *f, *v;
    size_t fl, vl;
    hn_sse_field(s, n, &f, &fl, &v, &vl);
    if (fl == 5 && memcmp(f, "event", 5) == 0) {
        snprintf(ev_name, sizeof(ev_name), "%.*s", (int)(vl < 15 ? vl : 15), v);
        events++;
        if (strcmp(ev_name, "update") == 0) updates++;
        return;
    }
    if (fl != 4 || memcmp(f, "data", 4) != 0) return;
    if (strcmp(ev_name, "snapshot") == 0) {
        snap_total = (uint64_t)hn_json_find_int(v, vl < 200 ? vl : 200, "total");
        return;
    }
    if (strcmp(ev_name, "update") != 0 && strcmp(ev_name, "enter") != 0) return;
    const char *sid;
    size_t sl;
    int64_t c = hn_json_find_int(v, vl, "messages_sent");
    if (c <= 0 || !hn_json_find_str(v, vl, "session_id", &sid, &sl)) return;
    pthread_mutex_lock(&mu);
    count_shown(sid, sl, c);
    pthread_mutex_unlock(&mu);
}

static void *reader_main(void *arg) {
    int fd = *(int *)arg;
    char *buf = hn_xmalloc(256 * 1024), head[8192];
    size_t hlen = 0;
    bool in_body = false, chunked = false;
    hn_sse_rd rd = {0};
    while (!atomic_load(&stop_reader)) {
        ssize_t r = read(fd, buf, 256 * 1024);
        read_us = bench_real_us();
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
        if (r <= 0) {
            disconnects++;
            fprintf(stderr, "hn-chatdash: the stream ended (%s)\n", r == 0 ? "closed" : strerror(errno));
            break;
        }
        bytes += (uint64_t)r;
        const char *p = buf;
        size_t n = (size_t)r;
        if (!in_body) {
            size_t used = 0;
            int h = hn_http_head(head, sizeof(head), &hlen, p, n, &stream_status, &chunked, &used);
            if (h == 0) continue;
            if (h < 0 || stream_status != 200) {
                fprintf(stderr, "hn-chatdash: the stream answered %d: %.*s\n", stream_status, (int)(n - used), p + used);
                disconnects++;
                break;
            }
            in_body = true;
            hn_sse_rd_init(&rd, chunked, LINE_KEEP);
            p += used;
            n -= used;
        }
        if (hn_sse_body(&rd, p, n, on_line, NULL) != HN_OK) {
            disconnects++;
            fprintf(stderr, "hn-chatdash: the stream's framing broke or ended\n");
            break;
        }
    }
    hn_sse_rd_free(&rd);
    free(buf);
    return NULL;
}

static int open_stream(void) {
    hn_addr a;
    char err[256], req[2048];
    if (hn_addr_parse(o.api, &a, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "hn-chatdash: --api %s: %s\n", o.api, err);
        return -1;
    }
    bench_http c;
    bench_http_init(&c, &a);
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                     "Accept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: hn-chatdash\r\n\r\n",
                     o.path, o.api, o.token);
    int fd = socket(a.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {0, 200000};    /* the reader looks at its stop flag this often */
    if (fd < 0 || connect(fd, (struct sockaddr *)&a.ss, a.len) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 || write(fd, req, (size_t)n) != n) {
        fprintf(stderr, "hn-chatdash: the stream %s%s: %s\n", o.api, o.path, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* ---- the visitors -------------------------------------------------------------------------- */

static int load_convs(void) {
    FILE *f = fopen(o.convs, "r");
    if (!f) {
        fprintf(stderr, "hn-chatdash: %s: %s\n", o.convs, strerror(errno));
        return HN_ERR;
    }
    conv *v = NULL;
    uint32_t n = 0, cap = 0;
    char sid[SID_MAX + 2], ci[CONV_MAX + 2];
    while (fscanf(f, "%65s %41s", sid, ci) == 2) {
        if (strlen(sid) > SID_MAX || strlen(ci) >= CONV_MAX) continue;
        if (n == cap) v = hn_xreallocarray(v, cap = cap ? cap * 2 : 1024, sizeof(conv));
        v[n] = (conv){.q = o.q_start};
        memcpy(v[n].sid, sid, strlen(sid) + 1);
        memcpy(v[n].ci, ci, strlen(ci) + 1);
        n++;
    }
    fclose(f);
    if (n == 0) {
        fprintf(stderr, "hn-chatdash: %s: no conversations\n", o.convs);
        free(v);
        return HN_ERR;
    }
    qsort(v, n, sizeof(conv), by_sid);
    pthread_mutex_lock(&mu);
    cv = v;
    ncv = n;
    pthread_mutex_unlock(&mu);
    return HN_OK;
}

static void pack_str(msgpack_packer *pk, const char *s) {
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* The request of one beacon t=msg of c, written at t (CLOCK_REALTIME µs). */
static size_t make_request(msgpack_sbuffer *sb, char *req, size_t cap, const conv *c, uint64_t t, uint32_t k) {
    char text[64];
    snprintf(text, sizeof(text), "?t=%" PRIu64 "&n=%u", t, k);
    msgpack_sbuffer_clear(sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    pack_str(&pk, "v"); msgpack_pack_uint8(&pk, 1);
    pack_str(&pk, "k"); pack_str(&pk, o.key);
    pack_str(&pk, "s"); pack_str(&pk, c->sid);
    pack_str(&pk, "t"); pack_str(&pk, "msg");
    pack_str(&pk, "q"); msgpack_pack_uint64(&pk, c->q);
    pack_str(&pk, "x"); pack_str(&pk, text);
    pack_str(&pk, "ci"); pack_str(&pk, c->ci);
    int n = snprintf(req, cap,
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain;charset=UTF-8\r\n"
                     "Content-Length: %zu\r\nUser-Agent: " BROWSER_UA "\r\n\r\n",
                     o.beacon_path, o.collector, sb->size);
    if (n <= 0 || (size_t)n + sb->size > cap) return 0;
    memcpy(req + n, sb->data, sb->size);
    return (size_t)n + sb->size;
}

static uint64_t start_mono;

static void *sender_main(void *arg) {
    sender *w = arg;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    char req[2048];
    uint64_t total = (uint64_t)(o.rate * o.duration);
    for (uint64_t m = w->idx; m < total && w->nmine > 0; m += o.threads) {
        uint64_t late = bench_pace(start_mono, m, o.rate);
        if (late > w->late_max_us) w->late_max_us = late;
        conv *c = w->mine[(hn_rng_next(&w->rng) >> 33) % w->nmine];
        uint64_t t = bench_real_us();
        pthread_mutex_lock(&mu);
        if (c->nsent == c->cap) c->sent_us = hn_xreallocarray(c->sent_us, c->cap = c->cap ? c->cap * 2 : 8, sizeof(uint64_t));
        c->sent_us[c->nsent++] = t;
        uint32_t k = c->nsent;
        pthread_mutex_unlock(&mu);
        size_t n = make_request(&sb, req, sizeof(req), c, t, k);
        uint64_t c0 = bench_mono_us();
        int st = n ? bench_http_call(&w->http, req, n) : -1;
        h_add(&w->call_h, bench_mono_us() - c0);
        w->sent++;
        c->q++;
        if (st == 200) w->s200++;
        else if (st == 204) w->s204++;   /* 204 for a chat widget: dropped (bot, opted out) */
        if (st != 200) {
            if (st != 204) w->s_other++;
            pthread_mutex_lock(&mu);
            if (c->seen < c->nsent) c->nsent--;     /* not counted: its number goes to the next */
            pthread_mutex_unlock(&mu);
            if (w->s204 + w->s_other <= 3)
                fprintf(stderr, "hn-chatdash: beacon to %s: %d %s\n", c->sid, st, w->http.body);
        }
    }
    bench_http_close(&w->http);
    msgpack_sbuffer_destroy(&sb);
    return NULL;
}

/* Messages accepted that the stream has not shown yet. */
static uint64_t outstanding(void) {
    uint64_t left = 0;
    pthread_mutex_lock(&mu);
    for (uint32_t i = 0; i < ncv; i++)
        if (cv[i].nsent > cv[i].seen) left += cv[i].nsent - cv[i].seen;
    pthread_mutex_unlock(&mu);
    return left;
}

/* Waits up to ms for SIGUSR1/SIGTERM/SIGINT: the signal, or 0. */
static int wait_signal(const sigset_t *set, uint64_t ms) {
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    siginfo_t si;
    int s = sigtimedwait(set, &si, &ts);
    return s > 0 ? s : 0;
}

/* ---- main ------------------------------------------------------------------------------------ */

static void usage(FILE *f) {
    fprintf(f,
            "usage: HN_CHAT_TOKEN=… hn-chatdash --api HOST:PORT --path STREAM_PATH --collector HOST:PORT\n"
            "                        --key WIDGET_KEY --convs FILE [options]\n"
            "  --rate N          visitor messages/s (default 100)\n"
            "  --duration S      seconds of messages (default 30)\n"
            "  --grace S         after the last, how long its count may take to show (default 2)\n"
            "  --threads N       collector connections (default 4)\n"
            "  --q-start N       the first beacon number of every session (default 2: the seed's page view is 1)\n"
            "  --beacon-path P   the collector's beacon path (default /b)\n"
            "  --seed N          which message to which conversation (default 1)\n"
            "  --redis HOST:PORT --tail KEY   the reference: XREAD BLOCK KEY (hn:stream:<shard>)\n"
            "SIGUSR1 starts the messages (the stream is opened at once; `ready` once its snapshot came).\n"
            "prints: ready t_ms= total=\n"
            "        overall convs= sent= ok= … p50_ms= p99_ms= … lost= unmatched= … tail_p50_ms= …\n");
}

static int parse_args(int argc, char **argv) {
    static const struct option lo[] = {
        {"api", required_argument, NULL, 'a'},       {"path", required_argument, NULL, 'p'},
        {"collector", required_argument, NULL, 'c'}, {"beacon-path", required_argument, NULL, 'b'},
        {"key", required_argument, NULL, 'k'},       {"convs", required_argument, NULL, 'C'},
        {"rate", required_argument, NULL, 'r'},      {"duration", required_argument, NULL, 'd'},
        {"grace", required_argument, NULL, 'g'},     {"threads", required_argument, NULL, 'T'},
        {"q-start", required_argument, NULL, 'q'},   {"seed", required_argument, NULL, 'S'},
        {"redis", required_argument, NULL, 'x'},     {"tail", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},            {NULL, 0, NULL, 0},
    };
    o = (opts){.beacon_path = "/b", .threads = 4, .rate = 100, .duration = 30, .grace = 2, .q_start = 2, .seed = 1};
    o.token = getenv("HN_CHAT_TOKEN");
    int ch;
    char *end;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'a': o.api = optarg; break;
        case 'p': o.path = optarg; break;
        case 'c': o.collector = optarg; break;
        case 'b': o.beacon_path = optarg; break;
        case 'k': o.key = optarg; break;
        case 'C': o.convs = optarg; break;
        case 'x': o.redis = optarg; break;
        case 't': o.tail = optarg; break;
        case 'r': o.rate = strtod(optarg, &end); if (*end || o.rate <= 0) goto bad; break;
        case 'd': o.duration = strtod(optarg, &end); if (*end || o.duration <= 0) goto bad; break;
        case 'g': o.grace = strtod(optarg, &end); if (*end || o.grace < 0) goto bad; break;
        case 'T': o.threads = (uint32_t)strtoul(optarg, &end, 10); if (*end || o.threads == 0 || o.threads > THREADS_MAX) goto bad; break;
        case 'q': o.q_start = strtoull(optarg, &end, 10); if (*end || o.q_start == 0) goto bad; break;
        case 'S': o.seed = strtoull(optarg, &end, 10); if (*end) goto bad; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return HN_ERR;
        }
    }
    if (optind != argc || !o.api || !o.path || !o.collector || !o.key || !o.convs || !o.token || !o.token[0] ||
        (o.tail && !o.redis)) {
        usage(stderr);
        return HN_ERR;
    }
    return HN_OK;
bad:
    fprintf(stderr, "hn-chatdash: bad value '%s'\n", optarg);
    usage(stderr);
    return HN_ERR;
}

/* The visitors' phase: messages, then their counts, until the grace is over
 * or a SIGTERM/SIGINT comes. */
static void run_messages(const sigset_t *set, double *send_s, double *wait_s) {
    hn_addr ca;
    char err[256];
    if (hn_addr_parse(o.collector, &ca, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "hn-chatdash: --collector %s: %s\n", o.collector, err);
        return;
    }
    for (uint32_t i = 0; i < o.threads; i++) {
        sd[i].idx = i;
        bench_http_init(&sd[i].http, &ca);
        sd[i].rng = (hn_rng){{o.seed + i + 1, 0x9e3779b97f4a7c15ull * (i + 1), 11, 0xc4a7da5e}};
        sd[i].mine = hn_xcalloc(ncv / o.threads + 1, sizeof(conv *));
    }
    for (uint32_t i = 0; i < ncv; i++) {
        sender *w = &sd[i % o.threads];
        w->mine[w->nmine++] = &cv[i];
    }
    start_mono = bench_mono_us();
    for (uint32_t i = 0; i < o.threads; i++) pthread_create(&sd[i].th, NULL, sender_main, &sd[i]);
    for (uint32_t i = 0; i < o.threads; i++) pthread_join(sd[i].th, NULL);
    uint64_t t_sent = bench_mono_us(), deadline = t_sent + (uint64_t)(o.grace * 1e6);
    *send_s = (double)(t_sent - start_mono) / 1e6;
    while (outstanding() > 0 && bench_mono_us() < deadline && wait_signal(set, 10) == 0) {}
    *wait_s = (double)(bench_mono_us() - t_sent) / 1e6;
}

int main(int argc, char **argv) {
    if (parse_args(argc, argv) != HN_OK) return 2;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);    /* every thread inherits it: main waits for them */
    signal(SIGPIPE, SIG_IGN);

    t0_us = bench_mono_us();
    int fd = open_stream();
    if (fd < 0) return 1;
    pthread_t rth, tth;
    pthread_create(&rth, NULL, reader_main, &fd);

    int sig = 0;
    while (sig == 0) sig = wait_signal(&set, 1000);
    double send_s = 0, wait_s = 0;
    bool phase = false;
    if (sig == SIGUSR1 && load_convs() == HN_OK) {
        phase = true;
        if (o.tail) {
            if ((tail.rc = bench_redis_open(o.redis, "hn-chatdash")) == NULL) return 1;
            tail.key = o.tail;
            pthread_create(&tth, NULL, bench_tail_main, &tail);
        }
        run_messages(&set, &send_s, &wait_s);
        if (tail.rc) {
            atomic_store(&stop_tail, true);      /* XREAD BLOCK 500: joined within half a second */
            pthread_join(tth, NULL);
            redisFree(tail.rc);
        }
    }
    atomic_store(&stop_reader, true);
    pthread_join(rth, NULL);
    close(fd);

    sender tot = {0};
    for (uint32_t i = 0; phase && i < o.threads; i++) {
        h_merge(&tot.call_h, &sd[i].call_h);
        tot.sent += sd[i].sent;
        tot.s200 += sd[i].s200;
        tot.s204 += sd[i].s204;
        tot.s_other += sd[i].s_other;
        tot.http.io_errors += sd[i].http.io_errors;
        if (sd[i].late_max_us > tot.late_max_us) tot.late_max_us = sd[i].late_max_us;
        free(sd[i].mine);
    }
    uint64_t lost = outstanding();
    printf("overall phase=%d convs=%u sent=%" PRIu64 " ok=%" PRIu64 " s204=%" PRIu64 " s_other=%" PRIu64
           " io_errors=%" PRIu64 " send_s=%.3f rate=%.1f late_max_ms=%.2f call_p50_ms=%.2f call_p99_ms=%.2f"
           " call_max_ms=%.2f shown=%" PRIu64 " lost=%" PRIu64 " unmatched=%" PRIu64 " jumps=%" PRIu64
           " counted=%" PRIu64 " wait_s=%.3f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f",
           phase, ncv, tot.sent, tot.s200, tot.s204, tot.s_other, tot.http.io_errors, send_s,
           send_s > 0 ? (double)tot.sent / send_s : 0, (double)tot.late_max_us / 1000.0,
           h_ms(&tot.call_h, 0.5), h_ms(&tot.call_h, 0.99), h_max_ms(&tot.call_h), shown, lost, unmatched,
           jumps, counted, wait_s, h_ms(&delay_h, 0.5), h_ms(&delay_h, 0.9), h_ms(&delay_h, 0.99),
           h_ms(&delay_h, 0.999), h_max_ms(&delay_h));
    printf(" stream_status=%d snapshot_total=%" PRIu64 " events=%" PRIu64 " updates=%" PRIu64 " bytes=%" PRIu64
           " disconnects=%" PRIu64 " tail_records=%" PRIu64 " tail_entries=%" PRIu64 " tail_negative=%" PRIu64
           " tail_p50_ms=%.2f tail_p99_ms=%.2f tail_max_ms=%.2f\n",
           stream_status, snap_total, events, updates, bytes, disconnects, tail.records, tail.entries,
           tail.negative, h_ms(&tail.h, 0.5), h_ms(&tail.h, 0.99), h_max_ms(&tail.h));
    fflush(stdout);
    for (uint32_t i = 0; i < ncv; i++) free(cv[i].sent_us);
    free(cv);
    return 0;
}
