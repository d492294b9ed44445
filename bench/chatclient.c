/*
 * chatclient.c: hn-chatclient, the visitors of `make bench-chat`.
 *
 *   N × GET /v?k=KEY&s=SID (the collector's chat downlink, one per session id
 *        │                   of --sids, HTTP/1.1, Server-Sent Events)
 *        ▼ read() into one shared buffer
 *   bench/lib/sse.c: head ─► chunked ─► lines ─► events (id:, event:, data:)
 *        │ `message` whose text is "t=<CLOCK_REALTIME µs> n=<k>"
 *        ▼
 *   delay = CLOCK_REALTIME at the read − t;  n per session: lost, duplicated
 *
 *   --redis HOST:PORT (optional; one thread, blocking hiredis): the references,
 *   --ref-rate times a second each, in turn:
 *     pub   PUBLISH on one connection → the message read on a SUBSCRIBEd one
 *     xadd  XREAD BLOCK sent on one connection, XADD on another → its reply
 *   (herenow's own path: the api's XADD hn:chat:{w} → the collector's XREAD
 *   BLOCK → SSE). A timer every 10 ms measures how late the event loop runs.
 *
 * One process, one libevent base, one non-blocking socket per downlink and
 * no bufferevents: small per-connection state (the head's buffer is freed
 * once the head is read), so 10,000 downlinks fit in a few MB here.
 *
 * Per session the agent's numbers n come in order (one driver thread owns a
 * session): n above the next expected is a gap (lost, unless it comes later:
 * then counted again as late), n below it a duplicate. The driver's count of
 * messages sent minus the distinct ones received here is the loss overall.
 *
 * Output (stdout): `ready …` once every downlink is live (its `: ready`
 * comment) or failed, or after --ready-timeout; at the end (--duration, or
 * SIGTERM/SIGINT) one `overall …` key=value line. SIGUSR1 prints a `mark …`
 * line (pings and events so far).
 */
#include "bench/lib/bench.h"
#include "bench/lib/hist.h"
#include "bench/lib/sse.h"
#include "common/hn.h"
#include "common/net.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RBUF_BYTES   (64 * 1024)
#define HDR_CAP      2048
#define LINE_KEEP    4096          /* our events are short: a longer line is not ours */
#define SID_MAX      64
#define LAG_TICK_US  10000
#define ERR_CAP      48

enum { C_IDLE, C_CONNECTING, C_HEADERS, C_BODY, C_CLOSED };

typedef struct client {
    int           fd, status;
    uint8_t       state;
    bool          live, disconnected, ev_has_data;
    char          ev_name[8];    /* invite, message, close (longer: other) */
    struct event *ev;
    char         *hdr;           /* while the head is read */
    size_t        hdr_len;
    hn_sse_rd     rd;
    const char   *sid;
    int64_t       ev_t, ev_n;
    int64_t       next_n;
    uint32_t      messages, timed, invites, closes, pings, other, dups, gaps, late;
    char          err[ERR_CAP];
} client;

typedef struct opts {
    const char *to, *key, *sids, *redis;
    uint32_t    clients;
    double      duration, connect_rate, ready_timeout, ref_rate;
} opts;

static opts               o;
static struct event_base *base;
static client            *cl;
static char             **sid;
static char              *rbuf;
static hn_addr            addr;
static uint64_t           t0_mono, now_us;
static uint32_t           started, settled, live_n;
static bool               ready_printed, stopping;
static struct event      *connect_timer;
static hist               msg_h, lag_h, pub_h, xadd_h;
static uint64_t           lag_last, bytes, negative, ref_errors;
static atomic_bool        refs_stop;

static double since_start_ms(void) { return (double)(bench_mono_us() - t0_mono) / 1000.0; }

static void print_ready(const char *why) {
    if (ready_printed) return;
    ready_printed = true;
    printf("ready why=%s clients=%u live=%u failed=%u t_ms=%.1f\n", why, o.clients, live_n,
           settled - live_n, since_start_ms());
    fflush(stdout);
}

static void settle(void) {
    if (++settled >= o.clients) print_ready("all");
}

static void client_fail(client *c, const char *what, const char *detail) {
    if (c->err[0] != '\0') return;
    snprintf(c->err, sizeof(c->err), "%s%s%s", what, detail ? ":" : "", detail ? detail : "");
    for (char *p = c->err; *p; p++)
        if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t' || *p == '=') *p = '_';
}

static void client_close(client *c) {
    if (c->state == C_CLOSED || c->state == C_IDLE) return;
    if (!stopping) c->disconnected = true;
    if (c->ev) event_free(c->ev);
    c->ev = NULL;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->hdr);
    c->hdr = NULL;
    hn_sse_rd_free(&c->rd);
    c->state = C_CLOSED;
    if (!c->live) {
        if (c->err[0] == '\0') client_fail(c, "closed_before_ready", NULL);
        settle();
    }
}

/* --- events ---------------------------------------------------------------------- */

static void on_message(client *c) {
    c->messages++;
    if (c->ev_t <= 0) return;
    c->timed++;
    if ((int64_t)now_us < c->ev_t) {
        negative++;
        h_add(&msg_h, 0);
    } else {
        h_add(&msg_h, now_us - (uint64_t)c->ev_t);
    }
    int64_t n = c->ev_n;
    if (n < 0) return;
    if (n == c->next_n) {
        c->next_n++;
    } else if (n > c->next_n) {
        c->gaps += (uint32_t)(n - c->next_n);
        c->next_n = n + 1;
    } else {
        c->dups++;
    }
}

static void dispatch(client *c) {
    if (c->ev_has_data) {
        const char *nm = c->ev_name[0] ? c->ev_name : "message";
        if (strcmp(nm, "message") == 0) on_message(c);
        else if (strcmp(nm, "invite") == 0) c->invites++;
        else if (strcmp(nm, "close") == 0) c->closes++;
        else c->other++;
    }
    c->ev_name[0] = '\0';
    c->ev_has_data = false;
    c->ev_t = c->ev_n = -1;
}

static void sse_line(void *arg, const char *s, size_t n, size_t total) {
    client *c = arg;
    if (total == 0) {
        dispatch(c);
        return;
    }
    const char *f, *v;
    size_t fl, vl;
    hn_sse_field(s, n, &f, &fl, &v, &vl);
    if (fl == 0) {                                 /* a comment: `: ready`, `: ping` */
        if (vl == 5 && memcmp(v, "ready", 5) == 0 && !c->live) {
            c->live = true;
            live_n++;
            settle();
        } else if (vl == 4 && memcmp(v, "ping", 4) == 0) {
            c->pings++;
        }
        return;
    }
    if (fl == 5 && memcmp(f, "event", 5) == 0) {
        size_t k = vl < sizeof(c->ev_name) - 1 ? vl : sizeof(c->ev_name) - 1;
        memcpy(c->ev_name, v, k);
        c->ev_name[k] = '\0';
    } else if (fl == 4 && memcmp(f, "data", 4) == 0) {
        c->ev_has_data = true;
        const char *t;
        size_t tl;
        if (n == total && hn_json_find_str(v, vl, "text", &t, &tl)) {
            c->ev_t = hn_find_num(t, tl, "t=", " ");
            c->ev_n = hn_find_num(t, tl, "n=", " ");
        }
    }
    /* id: and retry: need nothing here (the agent's n orders the messages) */
}

/* --- the connections ----------------------------------------------------------------- */

static int head_feed(client *c, const char *p, size_t n) {
    size_t used = 0;
    bool chunked = false;
    int h = hn_http_head(c->hdr, HDR_CAP, &c->hdr_len, p, n, &c->status, &chunked, &used);
    if (h == 0) return HN_OK;
    if (h < 0) {
        client_fail(c, "bad_head", NULL);
        return HN_ERR;
    }
    free(c->hdr);
    c->hdr = NULL;
    if (c->status != 200) {
        char body[40];
        size_t bl = n - used < sizeof(body) - 1 ? n - used : sizeof(body) - 1;
        memcpy(body, p + used, bl);
        body[bl] = '\0';
        char st[16];
        snprintf(st, sizeof(st), "http_%d", c->status);
        client_fail(c, st, body);
        return HN_ERR;
    }
    hn_sse_rd_init(&c->rd, chunked, LINE_KEEP);
    c->state = C_BODY;
    return n > used ? hn_sse_body(&c->rd, p + used, n - used, sse_line, c) : HN_OK;
}

static void on_read(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    client *c = arg;
    now_us = bench_real_us();
    for (int i = 0; i < 4; i++) {
        ssize_t r = read(fd, rbuf, RBUF_BYTES);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            client_fail(c, "read", strerror(errno));
            client_close(c);
            return;
        }
        if (r == 0) {
            client_fail(c, "eof", NULL);
            client_close(c);
            return;
        }
        bytes += (uint64_t)r;
        int rc = c->state == C_HEADERS ? head_feed(c, rbuf, (size_t)r)
                                       : hn_sse_body(&c->rd, rbuf, (size_t)r, sse_line, c);
        if (rc != HN_OK) {
            client_fail(c, rc == HN_AGAIN ? "stream_ended" : "framing", NULL);
            client_close(c);
            return;
        }
        if ((size_t)r < RBUF_BYTES) return;
    }
}

static void on_connected(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    client *c = arg;
    int err = 0;
    socklen_t el = sizeof(err);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0) err = errno;
    if (err) {
        client_fail(c, "connect", strerror(err));
        client_close(c);
        return;
    }
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /v?k=%s&s=%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
                     "User-Agent: hn-chatclient\r\n\r\n",
                     o.key, c->sid, o.to);
    if (n <= 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
        client_fail(c, "write", n > 0 ? strerror(errno) : "too_long");
        client_close(c);
        return;
    }
    event_free(c->ev);
    c->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_read, c);
    event_add(c->ev, NULL);
    c->hdr = hn_xmalloc(HDR_CAP);
    c->hdr_len = 0;
    c->state = C_HEADERS;
}

static void client_start(client *c) {
    c->state = C_CONNECTING;
    if ((c->fd = bench_connect_nb(&addr)) < 0) {
        client_fail(c, "connect", strerror(errno));
        client_close(c);
        return;
    }
    c->ev = event_new(base, c->fd, EV_WRITE, on_connected, c);
    event_add(c->ev, NULL);
}

static void on_connect_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    uint32_t due = o.clients;
    if (o.connect_rate > 0) {
        double n = since_start_ms() / 1000.0 * o.connect_rate + 1;
        if (n < due) due = (uint32_t)n;
    }
    while (started < due) client_start(&cl[started++]);
    if (started == o.clients) event_del(connect_timer);
}

static void on_ready_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    print_ready("timeout");
}

static void on_lag_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    uint64_t now = bench_mono_us();
    if (lag_last) h_add(&lag_h, now - lag_last > LAG_TICK_US ? now - lag_last - LAG_TICK_US : 0);
    lag_last = now;
}

/* --- the references (their own thread, blocking connections) ------------------------ */

static bool reply_ok(redisReply *r) {
    bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (!ok) ref_errors++;
    if (r) freeReplyObject(r);
    return ok;
}

static void *refs_main(void *arg) {
    (void)arg;
    redisContext *a = bench_redis_open(o.redis, "hn-chatclient"), *sub = bench_redis_open(o.redis, "hn-chatclient"),
                 *rd = bench_redis_open(o.redis, "hn-chatclient");
    char chan[64], key[64], last[64] = "0-0";
    snprintf(chan, sizeof(chan), "hn:bench:chat:ref:%d", (int)getpid());
    snprintf(key, sizeof(key), "hn:bench:chat:refx:%d", (int)getpid());
    if (!a || !sub || !rd || !reply_ok(redisCommand(sub, "SUBSCRIBE %s", chan))) goto out;
    uint64_t next = bench_mono_us();
    while (!atomic_load(&refs_stop)) {
        next += (uint64_t)(1e6 / o.ref_rate);
        uint64_t now = bench_mono_us();
        if (next > now) {
            struct timespec ts = {(time_t)((next - now) / 1000000u), (long)((next - now) % 1000000u) * 1000};
            nanosleep(&ts, NULL);
        } else {
            next = now;
        }
        /* PUBLISH → SUBSCRIBE */
        char t[24];
        snprintf(t, sizeof(t), "%" PRIu64, bench_real_us());
        if (!reply_ok(redisCommand(a, "PUBLISH %s %s", chan, t))) break;
        redisReply *m = NULL;
        if (redisGetReply(sub, (void **)&m) != REDIS_OK || m == NULL) {
            ref_errors++;
            break;
        }
        uint64_t got = bench_real_us();
        if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 && m->element[2]->type == REDIS_REPLY_STRING)
            h_add(&pub_h, got - strtoull(m->element[2]->str, NULL, 10));
        freeReplyObject(m);
        /* XREAD BLOCK waiting, then XADD */
        redisAppendCommand(rd, "XREAD BLOCK 2000 STREAMS %s %s", key, last);
        int done = 0;
        while (!done)
            if (redisBufferWrite(rd, &done) != REDIS_OK) break;
        uint64_t t0 = bench_real_us();
        if (!reply_ok(redisCommand(a, "XADD %s MAXLEN ~ 1000 * t %" PRIu64, key, t0))) break;
        redisReply *x = NULL;
        if (redisGetReply(rd, (void **)&x) != REDIS_OK || x == NULL) {
            ref_errors++;
            break;
        }
        got = bench_real_us();
        /* [[key, [[id, [t, v]]]]] */
        if (x->type == REDIS_REPLY_ARRAY && x->elements == 1 && x->element[0]->elements == 2) {
            redisReply *ents = x->element[0]->element[1];
            if (ents->elements >= 1 && ents->element[ents->elements - 1]->elements == 2) {
                redisReply *e = ents->element[ents->elements - 1];
                snprintf(last, sizeof(last), "%s", e->element[0]->str);
                h_add(&xadd_h, got - t0);
            }
        } else {
            ref_errors++;
        }
        freeReplyObject(x);
    }
out:
    if (a) {
        redisReply *r = redisCommand(a, "DEL %s", key);
        if (r) freeReplyObject(r);
        redisFree(a);
    }
    if (sub) redisFree(sub);
    if (rd) redisFree(rd);
    return NULL;
}

/* --- the end --------------------------------------------------------------------------- */

static void on_stop(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    event_base_loopbreak(base);
}

typedef struct totals {
    uint64_t live, failed, disconnected, messages, timed, invites, closes, pings, other, dups, gaps;
    uint32_t pings_min, pings_max;
} totals;

static totals sum(void) {
    totals t = {.pings_min = UINT32_MAX};
    for (uint32_t i = 0; i < o.clients; i++) {
        client *c = &cl[i];
        t.live += c->live;
        t.failed += !c->live;
        t.disconnected += c->disconnected;
        t.messages += c->messages;
        t.timed += c->timed;
        t.invites += c->invites;
        t.closes += c->closes;
        t.pings += c->pings;
        t.other += c->other;
        t.dups += c->dups;
        t.gaps += c->gaps;
        if (c->live && c->pings < t.pings_min) t.pings_min = c->pings;
        if (c->pings > t.pings_max) t.pings_max = c->pings;
    }
    if (t.pings_min == UINT32_MAX) t.pings_min = 0;
    return t;
}

static void on_mark(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    totals t = sum();
    printf("mark t_ms=%.1f live=%" PRIu64 " disconnected=%" PRIu64 " pings=%" PRIu64
           " pings_min=%u messages=%" PRIu64 " invites=%" PRIu64 " bytes=%" PRIu64 "\n",
           since_start_ms(), t.live, t.disconnected, t.pings, t.pings_min, t.messages, t.invites, bytes);
    fflush(stdout);
}

static void report(double wall_s, double cpu_s) {
    totals t = sum();
    char errs[200] = "";
    for (uint32_t i = 0; i < o.clients; i++) {
        const char *e = cl[i].err;
        if (e[0] && strcmp(e, "eof") != 0 && !strstr(errs, e) && strlen(errs) + strlen(e) + 2 < sizeof(errs)) {
            if (errs[0]) strcat(errs, ",");
            strcat(errs, e);
        }
    }
    printf("overall clients=%u live=%" PRIu64 " failed=%" PRIu64 " disconnected=%" PRIu64 " errors=%s"
           " messages=%" PRIu64 " timed=%" PRIu64 " invites=%" PRIu64 " closes=%" PRIu64 " other=%" PRIu64
           " dups=%" PRIu64 " gaps=%" PRIu64 " negative=%" PRIu64 " pings=%" PRIu64 " pings_min=%u"
           " pings_max=%u bytes=%" PRIu64,
           o.clients, t.live, t.failed, t.disconnected, errs[0] ? errs : "-", t.messages, t.timed,
           t.invites, t.closes, t.other, t.dups, t.gaps, negative, t.pings, t.pings_min, t.pings_max,
           bytes);
    printf(" p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f", h_ms(&msg_h, 0.5),
           h_ms(&msg_h, 0.9), h_ms(&msg_h, 0.99), h_ms(&msg_h, 0.999), h_max_ms(&msg_h));
    printf(" pub_n=%" PRIu64 " pub_p50_ms=%.3f pub_p99_ms=%.3f pub_max_ms=%.3f xadd_n=%" PRIu64
           " xadd_p50_ms=%.3f xadd_p99_ms=%.3f xadd_max_ms=%.3f ref_errors=%" PRIu64,
           pub_h.n, h_ms(&pub_h, 0.5), h_ms(&pub_h, 0.99), h_max_ms(&pub_h), xadd_h.n,
           h_ms(&xadd_h, 0.5), h_ms(&xadd_h, 0.99), h_max_ms(&xadd_h), ref_errors);
    printf(" lag_p50_ms=%.2f lag_p99_ms=%.2f lag_max_ms=%.2f wall_s=%.3f cpu_s=%.3f\n", h_ms(&lag_h, 0.5),
           h_ms(&lag_h, 0.99), h_max_ms(&lag_h), wall_s, cpu_s);
    fflush(stdout);
}

/* --- main ------------------------------------------------------------------------------ */

static void usage(FILE *f) {
    fprintf(f,
            "usage: hn-chatclient --to HOST:PORT --key WIDGET_KEY --sids FILE [options]\n"
            "  --clients N          downlinks, one per session id of FILE (default: all of FILE)\n"
            "  --duration S         seconds to run, then report (default 60; SIGTERM/SIGINT end it too)\n"
            "  --connect-rate N     new connections per second (default 2000; 0: all at once)\n"
            "  --ready-timeout S    print the ready line after S s even if some are not live (default 60)\n"
            "  --redis HOST:PORT    the references: PUBLISH → SUBSCRIBE, XADD → XREAD BLOCK\n"
            "  --ref-rate N         references per second, each (default 100)\n"
            "prints: ready why= clients= live= failed= t_ms=\n"
            "        mark … (SIGUSR1)\n"
            "        overall clients= live= … p50_ms= p99_ms= … pub_p99_ms= xadd_p99_ms= lag_p99_ms= …\n");
}

static int parse_args(int argc, char **argv) {
    static const struct option lo[] = {
        {"to", required_argument, NULL, 't'},          {"key", required_argument, NULL, 'k'},
        {"sids", required_argument, NULL, 's'},        {"clients", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},    {"connect-rate", required_argument, NULL, 'r'},
        {"ready-timeout", required_argument, NULL, 'R'}, {"redis", required_argument, NULL, 'x'},
        {"ref-rate", required_argument, NULL, 'f'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    o = (opts){.duration = 60, .connect_rate = 2000, .ready_timeout = 60, .ref_rate = 100};
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 't': o.to = optarg; break;
        case 'k': o.key = optarg; break;
        case 's': o.sids = optarg; break;
        case 'c': o.clients = (uint32_t)strtoul(optarg, &end, 10); if (*end || o.clients == 0 || o.clients > 1000000) goto bad; break;
        case 'd': o.duration = strtod(optarg, &end); if (*end || o.duration <= 0) goto bad; break;
        case 'r': o.connect_rate = strtod(optarg, &end); if (*end || o.connect_rate < 0) goto bad; break;
        case 'R': o.ready_timeout = strtod(optarg, &end); if (*end || o.ready_timeout <= 0) goto bad; break;
        case 'x': o.redis = optarg; break;
        case 'f': o.ref_rate = strtod(optarg, &end); if (*end || o.ref_rate <= 0 || o.ref_rate > 10000) goto bad; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return HN_ERR;
        }
    }
    if (optind != argc || !o.to || !o.key || !o.sids) {
        usage(stderr);
        return HN_ERR;
    }
    return HN_OK;
bad:
    fprintf(stderr, "hn-chatclient: bad value '%s'\n", optarg);
    usage(stderr);
    return HN_ERR;
}

/* The session ids, one a line; *n of them (all if 0). */
static char **read_sids(const char *path, uint32_t *n) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "hn-chatclient: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char line[SID_MAX + 2], **v = NULL;
    uint32_t k = 0, cap = 0;
    while ((*n == 0 || k < *n) && fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (line[0] == '\0') continue;
        if (k == cap) v = hn_xrealloc(v, (cap = cap ? cap * 2 : 1024) * sizeof(char *));
        v[k++] = hn_xstrdup(line);
    }
    fclose(f);
    if (*n && k < *n) {
        fprintf(stderr, "hn-chatclient: %s has %u session ids, %u wanted\n", path, k, *n);
        return NULL;
    }
    *n = k;
    return v;
}

int main(int argc, char **argv) {
    if (parse_args(argc, argv) != HN_OK) return 2;
    char err[256];
    if (hn_addr_parse(o.to, &addr, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "hn-chatclient: --to %s: %s\n", o.to, err);
        return 2;
    }
    if ((sid = read_sids(o.sids, &o.clients)) == NULL || o.clients == 0) return 2;

    bench_raise_nofile((uint64_t)o.clients + 64, "hn-chatclient");
    signal(SIGPIPE, SIG_IGN);

    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!base) return 1;
    rbuf = hn_xmalloc(RBUF_BYTES);
    cl = hn_xcalloc(o.clients, sizeof(client));
    for (uint32_t i = 0; i < o.clients; i++) {
        cl[i].fd = -1;
        cl[i].sid = sid[i];
        cl[i].ev_t = cl[i].ev_n = -1;
    }
    t0_mono = bench_mono_us();

    struct timeval tick = {0, 10000}, lagt = {0, LAG_TICK_US};
    connect_timer = event_new(base, -1, EV_PERSIST, on_connect_timer, NULL);
    event_add(connect_timer, &tick);
    on_connect_timer(-1, 0, NULL);
    struct event *lag = event_new(base, -1, EV_PERSIST, on_lag_timer, NULL);
    event_add(lag, &lagt);
    struct timeval rt = {(time_t)o.ready_timeout, (suseconds_t)((o.ready_timeout - (time_t)o.ready_timeout) * 1e6)};
    struct event *ready_timer = event_new(base, -1, 0, on_ready_timeout, NULL);
    event_add(ready_timer, &rt);
    struct timeval dt = {(time_t)o.duration, (suseconds_t)((o.duration - (time_t)o.duration) * 1e6)};
    struct event *stop = event_new(base, -1, 0, on_stop, NULL);
    event_add(stop, &dt);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_stop, NULL);
    struct event *sigint = evsignal_new(base, SIGINT, on_stop, NULL);
    struct event *sigusr1 = evsignal_new(base, SIGUSR1, on_mark, NULL);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    event_add(sigusr1, NULL);

    pthread_t refs_th;
    if (o.redis) pthread_create(&refs_th, NULL, refs_main, NULL);

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    event_base_dispatch(base);
    getrusage(RUSAGE_SELF, &ru1);
    double wall_s = since_start_ms() / 1000.0;
    double cpu_s = bench_cpu_s(&ru0, &ru1);

    stopping = true;
    atomic_store(&refs_stop, true);
    if (o.redis) pthread_join(refs_th, NULL);
    print_ready("end");
    report(wall_s, cpu_s);
    for (uint32_t i = 0; i < o.clients; i++) {
        client_close(&cl[i]);
        free(sid[i]);
    }
    event_free(sigterm);
    event_free(sigint);
    event_free(sigusr1);
    event_free(stop);
    event_free(ready_timer);
    event_free(lag);
    event_free(connect_timer);
    free(sid);
    free(cl);
    free(rbuf);
    event_base_free(base);
    return 0;
}
