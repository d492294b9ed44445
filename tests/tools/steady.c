/*
 * steady.c: hn-steady — a steady stream of unique beacons at a fixed rate,
 * over UDP and HTTP, counting what became of each (test_outage.sh, soak).
 *
 *   tick (1 ms) ──► beacon n is due at n / rate seconds
 *                      │ beacon n goes to UDP when floor((n+1)·share) > floor(n·share)
 *                      ├──► UDP: one datagram on a connected socket
 *                      └──► HTTP: a POST on a free keep-alive connection (at most
 *                           --conns, one request in flight each); none free: the
 *                           beacon waits for one (http_backlog)
 *
 * Beacon n is a page view of session "<prefix>-<n / 100, 8 digits>" with
 * q = n % 100 + 1, so every beacon of a run, and of runs with different
 * prefixes, has its own (session, q): one row in widget_page_views each, and
 * a duplicate shows up in a GROUP BY session_id, seq.
 *
 * Counts (beacons; one beacon per datagram and per request):
 *   udp_sent      datagrams the kernel took; udp_errors: refused (ECONNREFUSED
 *                 reports an earlier datagram's ICMP error and fails this one)
 *   http_sent     requests made = http_204 + http_503 + http_4xx + http_other
 *                 + http_errors (+ http_inflight while running)
 *   http_errors   no answer: connect failed, connection lost, or nothing
 *                 within --timeout-ms (a stalled collector is an error, never
 *                 a hang); a request is never retried, so no beacon goes twice
 *   max_http_latency_ms  longest request, sent to answered (max_http_latency_at_s:
 *                 when, in seconds since the start)
 *
 * Runs --duration seconds (0: until SIGTERM/SIGINT), then stops making
 * beacons, waits for the requests in flight (each ends within --timeout-ms)
 * and prints one key=value line. --out FILE gets the same line every second
 * (written aside and renamed: a reader never sees half a line), with done=1
 * at the end. Exit status 0; 1 when a request was still unanswered a second
 * past its timeout (libevent did not end it); 2 for bad arguments.
 *
 * It sends only to the addresses it is given (numeric; tests pass 127.0.0.1).
 */
#include "common/buf.h"
#include "common/hn.h"
#include "common/net.h"
#include "proto/beacon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNS_MAX        64
#define PREFIX_MAX       40      /* "<prefix>-" + 8..20 digits stays within 64 */
#define PER_SESSION      100     /* beacons (q = 1..100) per session */
#define TICK_US          1000
#define BROWSER_UA       "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) " \
                         "Chrome/120.0.0.0 Safari/537.36"

typedef struct opts {
    const char *udp, *http, *path, *key, *prefix, *out;
    double      rate, duration, share;
    int         conns, timeout_ms;
} opts;

typedef struct counts {
    uint64_t udp_sent, udp_errors;
    uint64_t http_sent, http_204, http_503, http_4xx, http_other, http_errors;
    uint64_t max_latency_ms;
    double   max_latency_at_s;   /* when the slowest request was answered */
} counts;

struct steady;

typedef struct conn {
    struct steady *st;
    struct evhttp_connection *ev;
    bool     busy;
    uint64_t begun_us;
} conn;

typedef struct steady {
    opts               o;
    struct event_base *base;
    struct event      *tick, *sigterm, *sigint;
    int                udp_fd;
    char               host[INET6_ADDRSTRLEN + 8];   /* the Host header */
    char               http_ip[INET6_ADDRSTRLEN];
    uint16_t           http_port;
    conn               conns[CONNS_MAX];
    int                nconns;
    uint64_t           next;        /* the next beacon due */
    uint64_t           http_next;   /* no HTTP beacon below this one waits */
    uint64_t           backlog;     /* HTTP beacons due, waiting for a connection */
    uint64_t           t0_us, stop_us, last_out_us;
    bool               stopping;
    counts             c;
    hn_buf             body;
    msgpack_packer     pk;
} steady;

/* --- beacons ----------------------------------------------------------------- */

/* Beacon n as msgpack into st->body. */
static void make_beacon(steady *st, uint64_t n) {
    char sid[64], url[64];
    int sl = snprintf(sid, sizeof(sid), "%s-%08" PRIu64, st->o.prefix, n / PER_SESSION);
    int ul = snprintf(url, sizeof(url), "https://steady.example/p/%" PRIu64, n % 50);
    hn_beacon b;
    memset(&b, 0, sizeof(b));
    b.type = HN_T_PV;
    b.k = (hn_str){st->o.key, (uint32_t)strlen(st->o.key)};
    b.s = (hn_str){sid, (uint32_t)sl};
    b.q = n % PER_SESSION + 1;
    b.u = (hn_str){url, (uint32_t)ul};
    b.ts = hn_now_ms();
    b.fields = HN_F_TS;
    hn_buf_reset(&st->body);
    hn_beacon_pack(&st->pk, &b);
}

/* Beacon n goes to UDP: spreads the UDP share evenly over the sequence. */
static bool goes_udp(const steady *st, uint64_t n) {
    if (st->udp_fd < 0) return false;
    if (st->o.http == NULL) return true;
    return floor((double)(n + 1) * st->o.share) > floor((double)n * st->o.share);
}

static void send_udp(steady *st, uint64_t n) {
    make_beacon(st, n);
    if (send(st->udp_fd, st->body.p, st->body.len, 0) == (ssize_t)st->body.len) st->c.udp_sent++;
    else st->c.udp_errors++;
}

/* --- HTTP -------------------------------------------------------------------- */

static void on_answer(struct evhttp_request *req, void *arg) {
    conn *cn = arg;
    steady *st = cn->st;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    uint64_t ms = (hn_mono_us() - cn->begun_us) / 1000;
    if (ms > st->c.max_latency_ms) {
        st->c.max_latency_ms = ms;
        st->c.max_latency_at_s = (double)(hn_mono_us() - st->t0_us) / 1e6;
    }
    if (code == 0) st->c.http_errors++;
    else if (code == 204) st->c.http_204++;
    else if (code == 503) st->c.http_503++;
    else if (code >= 400 && code < 500) st->c.http_4xx++;
    else st->c.http_other++;
    /* the next request goes on the next tick, outside libevent's callback */
    cn->busy = false;
}

static conn *free_conn(steady *st) {
    for (int i = 0; i < st->nconns; i++)
        if (!st->conns[i].busy) return &st->conns[i];
    if (st->nconns == st->o.conns) return NULL;
    conn *cn = &st->conns[st->nconns];
    cn->st = st;
    cn->ev = evhttp_connection_base_new(st->base, NULL, st->http_ip, st->http_port);
    if (cn->ev == NULL) return NULL;
    struct timeval tv = {st->o.timeout_ms / 1000, (st->o.timeout_ms % 1000) * 1000};
    evhttp_connection_set_timeout_tv(cn->ev, &tv);
    evhttp_connection_set_retries(cn->ev, 0);      /* a retried POST could go twice */
    st->nconns++;
    return cn;
}

/* Sends backlogged HTTP beacons while connections are free. */
static void pump_http(steady *st) {
    while (st->backlog > 0) {
        conn *cn = free_conn(st);
        if (cn == NULL) return;
        uint64_t n = st->http_next;               /* the oldest waiting beacon */
        while (goes_udp(st, n)) n++;
        st->http_next = n + 1;
        struct evhttp_request *req = evhttp_request_new(on_answer, cn);
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        evhttp_add_header(h, "Host", st->host);
        evhttp_add_header(h, "User-Agent", BROWSER_UA);
        evhttp_add_header(h, "Content-Type", "text/plain;charset=UTF-8");   /* as sendBeacon */
        make_beacon(st, n);
        evbuffer_add(evhttp_request_get_output_buffer(req), st->body.p, st->body.len);
        cn->busy = true;
        cn->begun_us = hn_mono_us();
        st->backlog--;
        st->c.http_sent++;
        if (evhttp_make_request(cn->ev, req, EVHTTP_REQ_POST, st->o.path) != 0) {
            /* libevent freed req and did not call back */
            cn->busy = false;
            st->c.http_errors++;
        }
    }
}

/* --- the run ----------------------------------------------------------------- */

static uint64_t inflight(const steady *st) {
    uint64_t n = 0;
    for (int i = 0; i < st->nconns; i++) n += st->conns[i].busy;
    return n;
}

static int format_counts(const steady *st, char *out, size_t cap, bool done) {
    const counts *c = &st->c;
    return snprintf(out, cap,
                    "udp_sent=%" PRIu64 " http_sent=%" PRIu64 " http_204=%" PRIu64
                    " http_503=%" PRIu64 " http_4xx=%" PRIu64 " http_other=%" PRIu64
                    " http_errors=%" PRIu64 " max_http_latency_ms=%" PRIu64 " max_http_latency_at_s=%.3f"
                    " udp_errors=%" PRIu64 " http_inflight=%" PRIu64 " http_backlog=%" PRIu64
                    " elapsed_s=%.3f done=%d\n",
                    c->udp_sent, c->http_sent, c->http_204, c->http_503, c->http_4xx, c->http_other,
                    c->http_errors, c->max_latency_ms, c->max_latency_at_s, c->udp_errors, inflight(st),
                    st->backlog,
                    (double)(hn_mono_us() - st->t0_us) / 1e6, done);
}

static void write_out(const steady *st, bool done) {
    if (st->o.out == NULL) return;
    char line[512], tmp[600];
    int n = format_counts(st, line, sizeof(line), done);
    snprintf(tmp, sizeof(tmp), "%s.tmp", st->o.out);
    FILE *f = fopen(tmp, "w");
    if (f == NULL || fwrite(line, 1, (size_t)n, f) != (size_t)n || fclose(f) != 0 ||
        rename(tmp, st->o.out) != 0)
        fprintf(stderr, "hn-steady: cannot write %s: %s\n", st->o.out, strerror(errno));
}

static void stop(steady *st) {
    if (st->stopping) return;
    st->stopping = true;
    st->backlog = 0;            /* due but never sent: not counted anywhere */
    st->stop_us = hn_mono_us();
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    steady *st = arg;
    (void)fd; (void)what;
    uint64_t now = hn_mono_us();
    if (!st->stopping) {
        double el = (double)(now - st->t0_us) / 1e6;
        bool end = st->o.duration > 0 && el >= st->o.duration;
        if (end) el = st->o.duration;
        uint64_t due = (uint64_t)(el * st->o.rate);
        for (; st->next < due; st->next++) {
            if (goes_udp(st, st->next)) send_udp(st, st->next);
            else st->backlog++;
        }
        pump_http(st);
        if (end) stop(st);
    }
    /* every request ends within its timeout; the margin covers a connect
     * (stop_us may be later than now: read the clock again) */
    if (st->stopping && (inflight(st) == 0 ||
                         hn_mono_us() - st->stop_us > (uint64_t)(st->o.timeout_ms + 1000) * 1000)) {
        event_base_loopbreak(st->base);
        return;
    }
    if (now - st->last_out_us >= 1000000) {
        st->last_out_us = now;
        write_out(st, false);
    }
}

static void on_signal(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    stop(arg);
}

/* --- setup ------------------------------------------------------------------- */

static void usage(FILE *f) {
    fprintf(f,
            "usage: hn-steady --key KEY [--udp HOST:PORT] [--http HOST:PORT] [options]\n"
            "  --rate N         beacons/s over both transports (default 100)\n"
            "  --duration S     seconds (0: until SIGTERM/SIGINT; default 10)\n"
            "  --udp-share F    fraction sent over UDP when both are given (default 0.5)\n"
            "  --prefix P       session ids P-<8 digits>, [A-Za-z0-9_-]{1,%d} (default steady)\n"
            "  --path P         the collector's beacon path (default /b)\n"
            "  --conns N        keep-alive HTTP connections, 1..%d (default 4)\n"
            "  --timeout-ms N   an HTTP request unanswered this long is an error (default 2000)\n"
            "  --out FILE       the counts line, rewritten every second (done=1 at the end)\n"
            "prints: udp_sent= http_sent= http_204= http_503= http_4xx= http_other= http_errors=\n"
            "        max_http_latency_ms= max_http_latency_at_s= udp_errors= http_inflight=\n"
            "        http_backlog= elapsed_s= done=\n",
            PREFIX_MAX, CONNS_MAX);
}

static int parse_num(const char *name, const char *s, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "hn-steady: %s '%s' is not a number in [%g, %g]\n", name, s, lo, hi);
        return HN_ERR;
    }
    *out = v;
    return HN_OK;
}

static bool prefix_ok(const char *p) {
    size_t n = strlen(p);
    if (n == 0 || n > PREFIX_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if (!(p[i] >= 'a' && p[i] <= 'z') && !(p[i] >= 'A' && p[i] <= 'Z') &&
            !(p[i] >= '0' && p[i] <= '9') && p[i] != '_' && p[i] != '-')
            return false;
    return true;
}

static int parse_args(int argc, char **argv, opts *o) {
    static const struct option lo[] = {
        {"udp", required_argument, NULL, 'u'},       {"http", required_argument, NULL, 'H'},
        {"path", required_argument, NULL, 'p'},      {"key", required_argument, NULL, 'k'},
        {"prefix", required_argument, NULL, 'P'},    {"out", required_argument, NULL, 'o'},
        {"rate", required_argument, NULL, 'r'},      {"duration", required_argument, NULL, 'd'},
        {"udp-share", required_argument, NULL, 's'}, {"conns", required_argument, NULL, 'c'},
        {"timeout-ms", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *o = (opts){.path = "/b", .prefix = "steady", .rate = 100, .duration = 10, .share = 0.5,
                .conns = 4, .timeout_ms = 2000};
    double v;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'u': o->udp = optarg; break;
        case 'H': o->http = optarg; break;
        case 'p': o->path = optarg; break;
        case 'k': o->key = optarg; break;
        case 'P': o->prefix = optarg; break;
        case 'o': o->out = optarg; break;
        case 'r': if (parse_num("--rate", optarg, 0.001, 1e6, &o->rate)) return HN_ERR; break;
        case 'd': if (parse_num("--duration", optarg, 0, 1e7, &o->duration)) return HN_ERR; break;
        case 's': if (parse_num("--udp-share", optarg, 0, 1, &o->share)) return HN_ERR; break;
        case 'c':
            if (parse_num("--conns", optarg, 1, CONNS_MAX, &v)) return HN_ERR;
            o->conns = (int)v;
            break;
        case 't':
            if (parse_num("--timeout-ms", optarg, 10, 600000, &v)) return HN_ERR;
            o->timeout_ms = (int)v;
            break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return HN_ERR;
        }
    }
    if (optind != argc || o->key == NULL || o->key[0] == '\0' || (o->udp == NULL && o->http == NULL)) {
        usage(stderr);
        return HN_ERR;
    }
    if (!prefix_ok(o->prefix)) {
        fprintf(stderr, "hn-steady: --prefix must be 1..%d of [A-Za-z0-9_-]\n", PREFIX_MAX);
        return HN_ERR;
    }
    if (o->path[0] != '/') {
        fprintf(stderr, "hn-steady: --path must start with /\n");
        return HN_ERR;
    }
    return HN_OK;
}

/* A numeric, non-wildcard address: we send only where we are told. */
static int target(const char *name, const char *s, hn_addr *a) {
    char err[200];
    if (hn_addr_parse(s, a, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "hn-steady: %s: %s\n", name, err);
        return HN_ERR;
    }
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&a->ss;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&a->ss;
    bool any = a->ss.ss_family == AF_INET ? in4->sin_addr.s_addr == htonl(INADDR_ANY)
                                          : IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
    uint16_t port = ntohs(a->ss.ss_family == AF_INET ? in4->sin_port : in6->sin6_port);
    if (any || port == 0) {
        fprintf(stderr, "hn-steady: %s '%s': name one host and a port\n", name, s);
        return HN_ERR;
    }
    return HN_OK;
}

int main(int argc, char **argv) {
    steady *st = hn_xcalloc(1, sizeof(*st));
    int rc = 1;
    st->udp_fd = -1;
    if (parse_args(argc, argv, &st->o) != HN_OK) {
        rc = 2;
        goto out;
    }
    if (st->o.udp) {
        hn_addr a;
        if (target("--udp", st->o.udp, &a) != HN_OK) {
            rc = 2;
            goto out;
        }
        st->udp_fd = socket(a.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (st->udp_fd < 0 || connect(st->udp_fd, (struct sockaddr *)&a.ss, a.len) != 0) {
            fprintf(stderr, "hn-steady: --udp %s: %s\n", st->o.udp, strerror(errno));
            goto out;
        }
    }
    if (st->o.http) {
        hn_addr a;
        if (target("--http", st->o.http, &a) != HN_OK) {
            rc = 2;
            goto out;
        }
        const void *ip = a.ss.ss_family == AF_INET
                             ? (const void *)&((struct sockaddr_in *)&a.ss)->sin_addr
                             : (const void *)&((struct sockaddr_in6 *)&a.ss)->sin6_addr;
        inet_ntop(a.ss.ss_family, ip, st->http_ip, sizeof(st->http_ip));
        st->http_port = ntohs(a.ss.ss_family == AF_INET ? ((struct sockaddr_in *)&a.ss)->sin_port
                                                        : ((struct sockaddr_in6 *)&a.ss)->sin6_port);
        snprintf(st->host, sizeof(st->host), a.ss.ss_family == AF_INET ? "%s:%u" : "[%s]:%u",
                 st->http_ip, st->http_port);
    }
    signal(SIGPIPE, SIG_IGN);
    hn_buf_init(&st->body, 512);
    msgpack_packer_init(&st->pk, &st->body, hn_buf_msgpack_write);

    st->base = event_base_new();
    st->tick = event_new(st->base, -1, EV_PERSIST, on_tick, st);
    st->sigterm = evsignal_new(st->base, SIGTERM, on_signal, st);
    st->sigint = evsignal_new(st->base, SIGINT, on_signal, st);
    struct timeval tv = {0, TICK_US};
    event_add(st->tick, &tv);
    event_add(st->sigterm, NULL);
    event_add(st->sigint, NULL);
    st->t0_us = st->last_out_us = hn_mono_us();
    event_base_dispatch(st->base);

    char line[512];
    format_counts(st, line, sizeof(line), true);
    write_out(st, true);
    fputs(line, stdout);
    fflush(stdout);
    rc = inflight(st) ? 1 : 0;       /* a request outlived its timeout: report, fail */
out:
    for (int i = 0; i < st->nconns; i++) evhttp_connection_free(st->conns[i].ev);
    if (st->tick) event_free(st->tick);
    if (st->sigterm) event_free(st->sigterm);
    if (st->sigint) event_free(st->sigint);
    if (st->base) event_base_free(st->base);
    if (st->udp_fd >= 0) close(st->udp_fd);
    hn_buf_free(&st->body);
    free(st);
    return rc;
}
