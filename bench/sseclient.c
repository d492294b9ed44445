/*
 * sseclient.c: hn-sseclient, the watchers of `make bench-sse`.
 *
 *   N × GET …/active-visitors/stream (HTTP/1.1, Authorization: Bearer)
 *        │ read() into one shared buffer
 *        ▼
 *   HTTP status + headers ─► chunked decoder ─► SSE lines ─► events
 *                                                   │ update/enter whose url has ?t=<µs>&n=<seq>
 *                                                   ▼
 *                                      delay = CLOCK_REALTIME at the read − t
 *
 *   --redis HOST:PORT (optional; one thread each, blocking hiredis):
 *     --tail KEY   XREAD BLOCK on the collector's stream: the same t= found in the
 *                  raw records, i.e. the delay up to Redis, the floor under the api
 *     --ping-ms N  a PING every N ms: the Redis round trip, machine noise
 *   A timer every 10 ms measures how late the streams' event loop runs: what
 *   the client itself adds to the delays.
 *
 * One process, one libevent base, one non-blocking socket per stream and no
 * bufferevents: every read() lands in one 256 KiB buffer and is parsed in
 * place. A line that spans reads is kept in the client's own buffer, at most
 * LINE_KEEP bytes of it; longer lines (the snapshot: several MB in one
 * `data:` line) are counted, not kept, so memory and time stay linear in
 * the bytes received. Of a long data line only its start is looked at
 * ("total":N of the snapshot).
 *
 * Delays go to a log-linear histogram (128 steps per power of two: within
 * 0.8 %), one per client, summed at the end. A beacon's sequence number n
 * marks a bitmap per client, so that duplicates and, given how many page
 * views the feeder sent, missing events can be counted.
 *
 * Output (stdout): a `ready …` line once every stream has its snapshot (or
 * failed, or --ready-timeout passed), then at the end (after --duration or
 * SIGTERM/SIGINT) one `overall …` key=value line; per-client lines go to
 * --per-client FILE. Only lines terminated by LF (CRLF tolerated) are
 * understood, which is what the api sends.
 */
#include "bench/lib/bench.h"
#include "bench/lib/hist.h"
#include "bench/lib/sse.h"
#include "common/hn.h"
#include "common/net.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF_BYTES   (256 * 1024)
#define READS_PER_EV 8             /* reads per readable event before yielding */
#define LINE_KEEP    (64 * 1024)   /* bytes of a line kept when it spans reads */
#define HDR_MAX      8192
#define ERR_CAP      120
#define LAG_TICK_US  10000

/* --- clients ----------------------------------------------------------------- */

enum { C_IDLE, C_CONNECTING, C_HEADERS, C_BODY, C_CLOSED };

typedef struct client {
    int           idx, fd, state;
    struct event *ev;
    int           status;
    char          hdr[HDR_MAX];
    size_t        hdr_len;
    hn_sse_rd     rd;        /* the body: transfer coding, the line being read */
    uint64_t      now_us;    /* CLOCK_REALTIME of the read being parsed */

    /* the event being read (dispatched at a blank line) */
    char     ev_name[16];
    bool     ev_has_data;
    uint64_t ev_data_bytes;
    int64_t  ev_t_us, ev_n, ev_total;
    char     ev_reason[24];

    /* times, µs since the start of the program (monotonic) */
    uint64_t t_connect, t_first_byte, t_snapshot;

    uint64_t bytes, events, snapshots, updates, enters, leaves, byes, pings, comments, other;
    uint64_t timed, untimed, dups, negative, snapshot_bytes;
    int64_t  snapshot_total, n_max, n_min;
    char     bye_reason[24];
    uint8_t *seen;          /* bitmap of n */
    size_t   seen_cap;      /* bytes */
    uint64_t distinct;
    bool     disconnected;  /* closed by the server or an error, before the end */
    char     err[ERR_CAP];
    hist     h;
} client;

typedef struct opts {
    const char *to, *path, *token, *redis, *tail, *per_client;
    uint32_t    clients;
    double      duration, connect_rate, ready_timeout;
    uint32_t    ping_ms;
} opts;

static opts            o;
static struct event_base *base;
static client         *cl;
static char           *rbuf;
static char            request[2048];
static size_t          request_len;
static hn_addr         addr;
static uint64_t        t0_mono;
static uint32_t        started, finished_setup;   /* connections begun; with a snapshot or failed */
static bool            ready_printed, stopping;
static struct event   *connect_timer, *ready_timer;

static hist     lag_h, ping_h;
static uint64_t ping_errors;
static uint64_t lag_last;

static uint64_t since_start(void) { return bench_mono_us() - t0_mono; }

static void check_ready(void);

static void client_fail(client *c, const char *fmt, const char *detail) {
    if (c->err[0] == '\0') snprintf(c->err, sizeof(c->err), fmt, detail ? detail : "");
    for (char *p = c->err; *p; p++)
        if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') *p = '_';
}

/* Closes the connection; before the end of the run that is a disconnect. */
static void client_close(client *c) {
    if (c->state == C_CLOSED || c->state == C_IDLE) return;
    bool had_setup = c->t_snapshot != 0 || c->err[0] != '\0';
    if (!stopping) c->disconnected = true;
    if (c->ev) {
        event_free(c->ev);
        c->ev = NULL;
    }
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->state = C_CLOSED;
    if (!had_setup) {
        if (c->err[0] == '\0') client_fail(c, "closed_before_snapshot%s", NULL);
        finished_setup++;
        check_ready();
    }
}

/* --- parsing the events ---------------------------------------------------------- */

static void mark_seen(client *c, int64_t n) {
    if (n < 0 || n > (int64_t)1 << 32) return;
    size_t byte = (size_t)(n >> 3);
    if (byte >= c->seen_cap) {
        size_t cap = c->seen_cap ? c->seen_cap : 1024;
        while (cap <= byte) cap *= 2;
        c->seen = hn_xrealloc(c->seen, cap);
        memset(c->seen + c->seen_cap, 0, cap - c->seen_cap);
        c->seen_cap = cap;
    }
    uint8_t bit = (uint8_t)(1u << (n & 7));
    if (c->seen[byte] & bit) {
        c->dups++;
        return;
    }
    c->seen[byte] |= bit;
    c->distinct++;
    if (n > c->n_max) c->n_max = n;
    if (c->n_min < 0 || n < c->n_min) c->n_min = n;
}

static void dispatch_event(client *c, uint64_t now_us) {
    c->events++;
    const char *nm = c->ev_name[0] ? c->ev_name : "message";
    bool timeable = false;
    if (strcmp(nm, "snapshot") == 0) {
        c->snapshots++;
        if (c->t_snapshot == 0) {
            c->t_snapshot = since_start();
            c->snapshot_bytes = c->ev_data_bytes;
            c->snapshot_total = c->ev_total;
            finished_setup++;
            check_ready();
        }
    } else if (strcmp(nm, "update") == 0) {
        c->updates++;
        timeable = true;
    } else if (strcmp(nm, "enter") == 0) {
        c->enters++;
        timeable = true;
    } else if (strcmp(nm, "leave") == 0) {
        c->leaves++;
    } else if (strcmp(nm, "bye") == 0) {
        c->byes++;
        snprintf(c->bye_reason, sizeof(c->bye_reason), "%s", c->ev_reason[0] ? c->ev_reason : "?");
    } else {
        c->other++;
    }
    if (timeable) {
        if (c->ev_t_us > 0) {
            c->timed++;
            if ((int64_t)now_us < c->ev_t_us) {
                c->negative++;
                h_add(&c->h, 0);
            } else {
                h_add(&c->h, now_us - (uint64_t)c->ev_t_us);
            }
            mark_seen(c, c->ev_n);
        } else {
            c->untimed++;
        }
    }
}

/* A blank line: the event ends (SSE: without data, no event). */
static void dispatch(client *c, uint64_t now_us) {
    if (c->ev_has_data) dispatch_event(c, now_us);
    c->ev_name[0] = '\0';
    c->ev_has_data = false;
    c->ev_data_bytes = 0;
    c->ev_t_us = c->ev_n = c->ev_total = -1;
    c->ev_reason[0] = '\0';
}

/* One line without its end (hn_sse_line_fn): s[0..n) is what is known of
 * it (n < total when it was longer than LINE_KEEP). */
static void sse_line(void *arg, const char *s, size_t n, size_t total) {
    client *c = arg;
    if (total == 0) {
        dispatch(c, c->now_us);
        return;
    }
    if (s[0] == ':') {
        c->comments++;
        if (n >= 5 && memmem(s, n, "ping", 4)) c->pings++;
        return;
    }
    const char *f, *v;
    size_t fl, vl;
    hn_sse_field(s, n, &f, &fl, &v, &vl);
    size_t vtotal = total - (size_t)(v - s);
    if (fl == 5 && memcmp(f, "event", 5) == 0) {
        size_t k = vl < sizeof(c->ev_name) - 1 ? vl : sizeof(c->ev_name) - 1;
        memcpy(c->ev_name, v, k);
        c->ev_name[k] = '\0';
    } else if (fl == 4 && memcmp(f, "data", 4) == 0) {
        c->ev_has_data = true;
        c->ev_data_bytes += vtotal;
        /* look only for what this event can carry (the api sends `event:`
         * before `data:`; without a name yet, for everything) */
        const char *nm = c->ev_name;
        bool any = nm[0] == '\0';
        const char *u, *r;
        size_t ul, rl;
        if ((any || strcmp(nm, "update") == 0 || strcmp(nm, "enter") == 0) && c->ev_t_us < 0 &&
            vl < LINE_KEEP && hn_json_find_str(v, vl, "url", &u, &ul)) {
            c->ev_t_us = hn_find_num(u, ul, "t=", "?&");
            c->ev_n = hn_find_num(u, ul, "n=", "?&");
        }
        if ((any || strcmp(nm, "snapshot") == 0) && c->ev_total < 0)
            c->ev_total = hn_json_find_int(v, vl < 4096 ? vl : 4096, "total");
        if ((any || strcmp(nm, "bye") == 0) && c->ev_reason[0] == '\0' && vl < 4096 &&
            hn_json_find_str(v, vl, "reason", &r, &rl)) {
            size_t k = rl < sizeof(c->ev_reason) - 1 ? rl : sizeof(c->ev_reason) - 1;
            memcpy(c->ev_reason, r, k);
            c->ev_reason[k] = '\0';
        }
    }
    /* id, retry and unknown fields: nothing to measure */
}

static int body_feed(client *c, const char *p, size_t n) {
    return hn_sse_body(&c->rd, p, n, sse_line, c);
}

/* Status line and headers; the rest of the buffer is body. */
static int headers_feed(client *c, const char *p, size_t n) {
    size_t used = 0;
    bool chunked = false;
    int h = hn_http_head(c->hdr, HDR_MAX, &c->hdr_len, p, n, &c->status, &chunked, &used);
    if (h == 0) return HN_OK;
    if (h < 0) {
        client_fail(c, c->hdr_len >= HDR_MAX - 1 ? "headers_too_large%s" : "bad_status_line%s", NULL);
        return HN_ERR;
    }
    hn_sse_rd_init(&c->rd, chunked, LINE_KEEP);
    const char *rest = p + used;
    size_t rest_n = n - used;
    if (c->status != 200) {
        /* the JSON error as the reason, as far as it came */
        char body[80];
        size_t bl = rest_n < sizeof(body) - 1 ? rest_n : sizeof(body) - 1;
        memcpy(body, rest, bl);
        body[bl] = '\0';
        char why[ERR_CAP];
        snprintf(why, sizeof(why), "http_%d:%s", c->status, body);
        client_fail(c, "%s", why);
        return HN_ERR;
    }
    c->state = C_BODY;
    return rest_n ? body_feed(c, rest, rest_n) : HN_OK;
}

static void on_read(evutil_socket_t fd, short what, void *arg) {
    (void)what;
    client *c = arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
    for (int i = 0; i < READS_PER_EV; i++) {
        ssize_t r = read(fd, rbuf, RBUF_BYTES);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            client_fail(c, "read:%s", strerror(errno));
            client_close(c);
            return;
        }
        if (r == 0) {
            client_fail(c, "eof%s", NULL);
            client_close(c);
            return;
        }
        if (c->t_first_byte == 0) c->t_first_byte = since_start();
        c->bytes += (uint64_t)r;
        c->now_us = now_us;
        int rc = c->state == C_HEADERS ? headers_feed(c, rbuf, (size_t)r) : body_feed(c, rbuf, (size_t)r);
        if (rc == HN_ERR) {
            client_fail(c, "framing%s", NULL);
            client_close(c);
            return;
        }
        if (rc == HN_AGAIN) {
            client_fail(c, "stream_ended%s", NULL);
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
        client_fail(c, "connect:%s", strerror(err));
        client_close(c);
        return;
    }
    /* the request is small: one write on a fresh socket */
    ssize_t w = write(fd, request, request_len);
    if (w != (ssize_t)request_len) {
        client_fail(c, "write:%s", w < 0 ? strerror(errno) : "short");
        client_close(c);
        return;
    }
    event_free(c->ev);
    c->ev = event_new(base, fd, EV_READ | EV_PERSIST, on_read, c);
    event_add(c->ev, NULL);
    c->state = C_HEADERS;
}

static void client_start(client *c) {
    c->t_connect = since_start();
    c->state = C_CONNECTING;
    if ((c->fd = bench_connect_nb(&addr)) < 0) {
        client_fail(c, "connect:%s", strerror(errno));
        client_close(c);
        return;
    }
    c->ev = event_new(base, c->fd, EV_WRITE, on_connected, c);
    event_add(c->ev, NULL);
}

/* Starts the connections that are due: connect_rate per second (0: all at once). */
static void on_connect_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    uint32_t due = o.clients;
    if (o.connect_rate > 0) {
        double n = (double)since_start() / 1e6 * o.connect_rate + 1;
        if (n < due) due = (uint32_t)n;
    }
    while (started < due) client_start(&cl[started++]);
    if (started == o.clients) event_del(connect_timer);
}

static void print_ready(const char *why) {
    if (ready_printed) return;
    ready_printed = true;
    uint32_t snaps = 0, failed = 0;
    for (uint32_t i = 0; i < o.clients; i++) {
        if (cl[i].t_snapshot) snaps++;
        else if (cl[i].err[0]) failed++;
    }
    printf("ready why=%s clients=%u snapshots=%u failed=%u t_ms=%.1f\n", why, o.clients, snaps,
           failed, (double)since_start() / 1000.0);
    fflush(stdout);
}

static void check_ready(void) {
    if (finished_setup >= o.clients) print_ready("all");
}

static void on_ready_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    print_ready("timeout");
}

/* --- loop lag, Redis tail and ping ------------------------------------------------ */

static void on_lag_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    uint64_t now = bench_mono_us();
    if (lag_last) h_add(&lag_h, now - lag_last > LAG_TICK_US ? now - lag_last - LAG_TICK_US : 0);
    lag_last = now;
}

/* The references run in threads of their own with blocking connections: in
 * the event loop, hiredis reads 16 KiB per readable event, so a large XREAD
 * reply would queue behind hundreds of busy streams and measure the loop
 * instead of Redis (the loop has its own measure, the lag above). Each
 * thread owns its histogram until it is joined. */
static atomic_bool refs_stop;
static bench_tail  tail = {.who = "hn-sseclient", .stop = &refs_stop};

static void *ping_main(void *arg) {
    redisContext *rc = arg;
    uint64_t next = bench_mono_us();
    while (!atomic_load(&refs_stop)) {
        next += o.ping_ms * 1000u;
        uint64_t now = bench_mono_us();
        if (next > now) {
            struct timespec ts = {(time_t)((next - now) / 1000000u), (long)((next - now) % 1000000u) * 1000};
            nanosleep(&ts, NULL);
        } else {
            next = now;      /* late: no catching up in a burst */
        }
        uint64_t t0 = bench_mono_us();
        redisReply *rep = redisCommand(rc, "PING");
        uint64_t t1 = bench_mono_us();
        if (rep == NULL) {
            ping_errors++;
            break;
        }
        if (rep->type == REDIS_REPLY_ERROR) ping_errors++;
        else h_add(&ping_h, t1 - t0);
        freeReplyObject(rep);
    }
    return NULL;
}

/* --- the end ----------------------------------------------------------------------- */

static void on_stop(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what, (void)arg;
    event_base_loopbreak(base);
}

static double ms_of(uint64_t us) { return (double)us / 1000.0; }

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorted copy's element at quantile q, of the values ≥ 0. */
static double quantile(double *v, size_t n, double q) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] >= 0) v[m++] = v[i];
    if (m == 0) return -1;
    qsort(v, m, sizeof(double), cmp_double);
    size_t i = (size_t)(q * (double)(m - 1) + 0.5);
    return v[i];
}

/* The numbers in 0..n_max a client never got, and the first few ranges of
 * them ("a-b,c"): lost events show as holes, late ones as a short tail. */
static uint64_t holes(const client *c, char *out, size_t cap) {
    uint64_t n = 0;
    int ranges = 0;
    size_t at = 0;
    out[0] = '\0';
    for (int64_t i = 0; i <= c->n_max; i++) {
        if (c->seen[i >> 3] & (1u << (i & 7))) continue;
        int64_t j = i;
        while (j + 1 <= c->n_max && !(c->seen[(j + 1) >> 3] & (1u << ((j + 1) & 7)))) j++;
        n += (uint64_t)(j - i + 1);
        if (ranges++ < 8 && at + 48 < cap) {
            at += (size_t)(i == j ? snprintf(out + at, cap - at, "%s%" PRId64, at ? "," : "", i)
                                  : snprintf(out + at, cap - at, "%s%" PRId64 "-%" PRId64, at ? "," : "", i, j));
        }
        i = j;
    }
    if (ranges > 8 && at + 8 < cap) snprintf(out + at, cap - at, ",...");
    if (out[0] == '\0') snprintf(out, cap, "-");
    return n;
}

static void report(double wall_s, double user_s, double sys_s) {
    FILE *pc = NULL;
    if (o.per_client && (pc = fopen(o.per_client, "w")) == NULL)
        fprintf(stderr, "hn-sseclient: %s: %s\n", o.per_client, strerror(errno));
    hist *all = hn_xcalloc(1, sizeof(hist));
    double *snap_ms = hn_xcalloc(o.clients, sizeof(double)), *first_ms = hn_xcalloc(o.clients, sizeof(double));
    double *snap_b = hn_xcalloc(o.clients, sizeof(double)), *snap_t = hn_xcalloc(o.clients, sizeof(double));
    double *cp50 = hn_xcalloc(o.clients, sizeof(double)), *cp99 = hn_xcalloc(o.clients, sizeof(double));
    double *dist = hn_xcalloc(o.clients, sizeof(double));
    uint64_t ok = 0, failed = 0, disc = 0, byes = 0, events = 0, updates = 0, enters = 0, leaves = 0,
             timed = 0, untimed = 0, dups = 0, neg = 0, bytes = 0, pings = 0, snapshots = 0, other = 0,
             holes_total = 0, holes_max = 0;
    char bye_reasons[256] = "";
    for (uint32_t i = 0; i < o.clients; i++) {
        client *c = &cl[i];
        h_merge(all, &c->h);
        snap_ms[i] = c->t_snapshot ? ms_of(c->t_snapshot - c->t_connect) : -1;
        first_ms[i] = c->t_first_byte ? ms_of(c->t_first_byte - c->t_connect) : -1;
        snap_b[i] = c->t_snapshot ? (double)c->snapshot_bytes : -1;
        snap_t[i] = c->t_snapshot ? (double)c->snapshot_total : -1;
        cp50[i] = h_ms(&c->h, 0.50);
        cp99[i] = h_ms(&c->h, 0.99);
        dist[i] = c->t_snapshot ? (double)c->distinct : -1;
        if (c->t_snapshot) ok++;
        else failed++;
        disc += c->disconnected;
        byes += c->byes;
        events += c->events;
        updates += c->updates;
        enters += c->enters;
        leaves += c->leaves;
        timed += c->timed;
        untimed += c->untimed;
        dups += c->dups;
        neg += c->negative;
        bytes += c->bytes;
        pings += c->pings;
        snapshots += c->snapshots;
        other += c->other;
        if (c->byes && strlen(bye_reasons) + strlen(c->bye_reason) + 2 < sizeof(bye_reasons) &&
            !strstr(bye_reasons, c->bye_reason)) {
            if (bye_reasons[0]) strcat(bye_reasons, ",");
            strcat(bye_reasons, c->bye_reason);
        }
        char hole_ranges[480];
        uint64_t nholes = holes(c, hole_ranges, sizeof(hole_ranges));
        holes_total += nholes;
        if (nholes > holes_max) holes_max = nholes;
        if (pc)
            fprintf(pc,
                    "client=%u status=%d first_byte_ms=%.1f snapshot_ms=%.1f snapshot_bytes=%" PRIu64
                    " snapshot_total=%" PRId64 " snapshots=%" PRIu64 " events=%" PRIu64 " updates=%" PRIu64
                    " enters=%" PRIu64 " leaves=%" PRIu64 " byes=%" PRIu64 " bye_reason=%s pings=%" PRIu64
                    " timed=%" PRIu64 " untimed=%" PRIu64 " distinct=%" PRIu64 " dups=%" PRIu64
                    " n_min=%" PRId64 " n_max=%" PRId64 " bytes=%" PRIu64 " disconnected=%d p50_ms=%.1f"
                    " p90_ms=%.1f p99_ms=%.1f max_ms=%.1f holes=%" PRIu64 " hole_ranges=%s err=%s\n",
                    i, c->status, first_ms[i], snap_ms[i], c->snapshot_bytes, c->snapshot_total,
                    c->snapshots, c->events, c->updates, c->enters, c->leaves, c->byes,
                    c->byes ? c->bye_reason : "-", c->pings, c->timed, c->untimed, c->distinct, c->dups,
                    c->n_min, c->n_max, c->bytes, c->disconnected, cp50[i], h_ms(&c->h, 0.90), cp99[i],
                    c->h.n ? ms_of(c->h.max) : -1.0, nholes, hole_ranges, c->err[0] ? c->err : "-");
    }
    if (pc) fclose(pc);
    printf("overall clients=%u ok=%" PRIu64 " failed=%" PRIu64 " disconnected=%" PRIu64 " byes=%" PRIu64
           " bye_reasons=%s snapshots=%" PRIu64 " snapshot_ms_p50=%.1f snapshot_ms_max=%.1f"
           " first_byte_ms_p50=%.1f snapshot_bytes_med=%.0f snapshot_total_med=%.0f snapshot_total_min=%.0f"
           " events=%" PRIu64 " updates=%" PRIu64 " enters=%" PRIu64 " leaves=%" PRIu64 " other=%" PRIu64
           " pings=%" PRIu64 " timed=%" PRIu64 " untimed=%" PRIu64 " dups=%" PRIu64 " negative=%" PRIu64
           " bytes=%" PRIu64 " p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f p999_ms=%.1f max_ms=%.1f"
           " client_p50_med=%.1f client_p99_min=%.1f client_p99_med=%.1f client_p99_max=%.1f",
           o.clients, ok, failed, disc, byes, bye_reasons[0] ? bye_reasons : "-", snapshots,
           quantile(snap_ms, o.clients, 0.5), quantile(snap_ms, o.clients, 1.0),
           quantile(first_ms, o.clients, 0.5), quantile(snap_b, o.clients, 0.5),
           quantile(snap_t, o.clients, 0.5), quantile(snap_t, o.clients, 0.0), events, updates, enters,
           leaves, other, pings, timed, untimed, dups, neg, bytes, h_ms(all, 0.5), h_ms(all, 0.9),
           h_ms(all, 0.99), h_ms(all, 0.999), all->n ? ms_of(all->max) : -1.0,
           quantile(cp50, o.clients, 0.5), quantile(cp99, o.clients, 0.0), quantile(cp99, o.clients, 0.5),
           quantile(cp99, o.clients, 1.0));
    printf(" distinct_min=%.0f distinct_med=%.0f distinct_max=%.0f holes_total=%" PRIu64 " holes_max=%" PRIu64,
           quantile(dist, o.clients, 0.0), quantile(dist, o.clients, 0.5), quantile(dist, o.clients, 1.0),
           holes_total, holes_max);
    printf(" wall_s=%.3f cpu_s=%.3f user_s=%.3f sys_s=%.3f lag_p50_ms=%.2f lag_p99_ms=%.2f lag_max_ms=%.2f", wall_s, user_s + sys_s,
           user_s, sys_s, h_ms(&lag_h, 0.5), h_ms(&lag_h, 0.99), lag_h.n ? ms_of(lag_h.max) : -1.0);
    printf(" tail_records=%" PRIu64 " tail_entries=%" PRIu64 " tail_negative=%" PRIu64
           " tail_p50_ms=%.2f tail_p99_ms=%.2f tail_max_ms=%.2f",
           tail.records, tail.entries, tail.negative, h_ms(&tail.h, 0.5), h_ms(&tail.h, 0.99),
           tail.h.n ? ms_of(tail.h.max) : -1.0);
    printf(" ping_n=%" PRIu64 " ping_errors=%" PRIu64 " ping_p50_ms=%.3f ping_p99_ms=%.3f ping_max_ms=%.3f\n",
           ping_h.n, ping_errors, h_ms(&ping_h, 0.5), h_ms(&ping_h, 0.99),
           ping_h.n ? ms_of(ping_h.max) : -1.0);
    fflush(stdout);
    free(all);
    free(snap_ms);
    free(first_ms);
    free(snap_b);
    free(snap_t);
    free(cp50);
    free(cp99);
    free(dist);
}

/* --- main ---------------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
            "usage: hn-sseclient --to HOST:PORT --path PATH --token TOKEN [options]\n"
            "  --clients N          streams to open (default 500)\n"
            "  --duration S         seconds to run, then report (default 60; SIGTERM/SIGINT end it too)\n"
            "  --connect-rate N     new connections per second (default 0: all at once)\n"
            "  --ready-timeout S    print the ready line after S s even if snapshots are missing (default 120)\n"
            "  --per-client FILE    one key=value line per stream\n"
            "  --redis HOST:PORT    for --tail and --ping-ms\n"
            "  --tail KEY           XREAD BLOCK that stream; delay of the records' t= (the floor)\n"
            "  --ping-ms N          a PING every N ms (Redis round trip; 0: none, default)\n"
            "The token may also come from HN_SSE_TOKEN (keeps it out of ps).\n"
            "prints: ready why= clients= snapshots= failed= t_ms=\n"
            "        overall clients= ok= failed= ... p50_ms= p90_ms= p99_ms= ... tail_p50_ms= ... ping_p50_ms= ...\n");
}

static int parse_args(int argc, char **argv) {
    static const struct option lo[] = {
        {"to", required_argument, NULL, 't'},          {"path", required_argument, NULL, 'p'},
        {"token", required_argument, NULL, 'k'},       {"clients", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},    {"connect-rate", required_argument, NULL, 'r'},
        {"ready-timeout", required_argument, NULL, 'R'}, {"per-client", required_argument, NULL, 'P'},
        {"redis", required_argument, NULL, 'x'},       {"tail", required_argument, NULL, 'T'},
        {"ping-ms", required_argument, NULL, 'i'},      {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    o = (opts){.clients = 500, .duration = 60, .ready_timeout = 120};
    o.token = getenv("HN_SSE_TOKEN");
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 't': o.to = optarg; break;
        case 'p': o.path = optarg; break;
        case 'k': o.token = optarg; break;
        case 'c': o.clients = (uint32_t)strtoul(optarg, &end, 10); if (*end || o.clients == 0 || o.clients > 100000) goto bad; break;
        case 'd': o.duration = strtod(optarg, &end); if (*end || o.duration <= 0) goto bad; break;
        case 'r': o.connect_rate = strtod(optarg, &end); if (*end || o.connect_rate < 0) goto bad; break;
        case 'R': o.ready_timeout = strtod(optarg, &end); if (*end || o.ready_timeout <= 0) goto bad; break;
        case 'P': o.per_client = optarg; break;
        case 'x': o.redis = optarg; break;
        case 'T': o.tail = optarg; break;
        case 'i': o.ping_ms = (uint32_t)strtoul(optarg, &end, 10); if (*end) goto bad; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return HN_ERR;
        }
    }
    if (optind != argc || !o.to || !o.path || !o.token || ((o.tail || o.ping_ms) && !o.redis)) {
        usage(stderr);
        return HN_ERR;
    }
    return HN_OK;
bad:
    fprintf(stderr, "hn-sseclient: bad value '%s'\n", optarg);
    usage(stderr);
    return HN_ERR;
}

int main(int argc, char **argv) {
    if (parse_args(argc, argv) != HN_OK) return 2;
    char err[256];
    if (hn_addr_parse(o.to, &addr, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "hn-sseclient: --to %s: %s\n", o.to, err);
        return 2;
    }
    int n = snprintf(request, sizeof(request),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"
                     "Accept: text/event-stream\r\nCache-Control: no-cache\r\n"
                     "User-Agent: hn-sseclient\r\n\r\n",
                     o.path, o.to, o.token);
    if (n <= 0 || (size_t)n >= sizeof(request)) {
        fprintf(stderr, "hn-sseclient: request too long\n");
        return 2;
    }
    request_len = (size_t)n;

    /* one fd per stream, plus Redis and stdio */
    bench_raise_nofile((uint64_t)o.clients + 64, "hn-sseclient");
    signal(SIGPIPE, SIG_IGN);

    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!base) {
        fprintf(stderr, "hn-sseclient: event_base_new failed\n");
        return 1;
    }
    rbuf = hn_xmalloc(RBUF_BYTES);
    cl = hn_xcalloc(o.clients, sizeof(client));
    for (uint32_t i = 0; i < o.clients; i++) {
        cl[i].idx = (int)i;
        cl[i].fd = -1;
        cl[i].n_min = cl[i].n_max = -1;
        cl[i].ev_t_us = cl[i].ev_n = cl[i].ev_total = -1;
        cl[i].snapshot_total = -1;
    }
    t0_mono = bench_mono_us();

    struct timeval tick = {0, 10000}, lagt = {0, LAG_TICK_US};
    connect_timer = event_new(base, -1, EV_PERSIST, on_connect_timer, NULL);
    event_add(connect_timer, &tick);
    on_connect_timer(-1, 0, NULL);
    struct event *lag = event_new(base, -1, EV_PERSIST, on_lag_timer, NULL);
    event_add(lag, &lagt);
    struct timeval rt = {(time_t)o.ready_timeout, (suseconds_t)((o.ready_timeout - (time_t)o.ready_timeout) * 1e6)};
    ready_timer = event_new(base, -1, 0, on_ready_timeout, NULL);
    event_add(ready_timer, &rt);
    struct timeval dt = {(time_t)o.duration, (suseconds_t)((o.duration - (time_t)o.duration) * 1e6)};
    struct event *stop = event_new(base, -1, 0, on_stop, NULL);
    event_add(stop, &dt);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_stop, NULL);
    struct event *sigint = evsignal_new(base, SIGINT, on_stop, NULL);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);

    redisContext *ping_rc = NULL;
    pthread_t tail_th, ping_th;
    if (o.tail) {
        if ((tail.rc = bench_redis_open(o.redis, "hn-sseclient")) == NULL) return 1;
        tail.key = o.tail;
        pthread_create(&tail_th, NULL, bench_tail_main, &tail);
    }
    if (o.ping_ms) {
        if ((ping_rc = bench_redis_open(o.redis, "hn-sseclient")) == NULL) return 1;
        pthread_create(&ping_th, NULL, ping_main, ping_rc);
    }

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    event_base_dispatch(base);
    getrusage(RUSAGE_SELF, &ru1);
    double wall_s = (double)since_start() / 1e6;
    double user_s = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                    (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6;
    double sys_s = (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                   (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;

    stopping = true;
    atomic_store(&refs_stop, true);       /* XREAD BLOCK 500: joined within half a second */
    if (tail.rc) {
        pthread_join(tail_th, NULL);
        redisFree(tail.rc);
    }
    if (ping_rc) {
        pthread_join(ping_th, NULL);
        redisFree(ping_rc);
    }
    print_ready("end");
    for (uint32_t i = 0; i < o.clients; i++) client_close(&cl[i]);
    report(wall_s, user_s, sys_s);

    event_free(sigterm);
    event_free(sigint);
    event_free(stop);
    event_free(ready_timer);
    event_free(lag);
    event_free(connect_timer);
    for (uint32_t i = 0; i < o.clients; i++) {
        hn_sse_rd_free(&cl[i].rd);
        free(cl[i].seen);
    }
    free(cl);
    free(rbuf);
    event_base_free(base);
    return 0;
}
