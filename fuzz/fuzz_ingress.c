/* fuzz_ingress.c: the collector's HTTP ingress, whole. Each input is the
 * bytes one client sends on one TCP connection (any number of pipelined
 * requests, or garbage); they go through libevent's evhttp parser into the
 * collector's own handlers (collector/http.c): routing, limits, CORS, the
 * widget script with its ETags, the pixel's query string, POST bodies
 * through decode → validate → widget lookup → enrichment (uap-core, geo
 * when HERENOW_GEOIP_DB is set, the visitor hash) → the worker's record
 * buffers → a flush to "Redis".
 *
 *   fuzz thread: one real hn_collector (hn_collector_init, HERENOW_THREADS=1),
 *                whose worker's event base this file runs itself (the worker
 *                thread is never started):
 *
 *     client socket ──TCP 127.0.0.1──► worker's evhttp listener ─► http.c
 *     (the input, then SHUT_WR;                                     │ flush
 *      the answers read and dropped)                                ▼
 *                                    fake Redis (below, same base) ◄─ rconn
 *
 * The fake Redis parses each command with hiredis' reader and answers it:
 * HGETALL (hn:widgets) with two widgets — FUZZ_KEY1 → 1 and FUZZ_KEY2 →
 * "2 dnt=off", the keys fuzz/mkseeds.c puts in the seeds —, GET (a day's
 * salt) with a fixed salt, anything else +OK. Acknowledged groups leave the
 * worker's buffers, so memory stays flat across millions of inputs and the
 * path a beacon takes is the one it takes in production (no spool, no 503).
 *
 * Per input: connect, write the input (as the socket takes it), run the
 * worker's base until the collector has read all of it and answered what it
 * will (see quiet()), shut the write side, run until the collector has
 * closed the connection, then until every record taken is flushed and
 * acknowledged. The event loop runs on this thread only, so the run is as
 * deterministic as the kernel's loopback. (libevent 2.1 offers no way to hand
 * evhttp a connected socket — evhttp_get_request is internal — so a loopback
 * connection through its listener it is.)
 * Checked besides "no crash, no sanitizer finding, no leak":
 *   - the collector closes the connection within HN_FUZZ_INGRESS_DEADLINE_MS
 *     (5000; its own timeouts are set to 500 ms below), and what it sends
 *     starts as HTTP ("HTTP/", not "HTTP/1.": libevent answers in the
 *     version of the request, HTTP/0.1 included): a hang or a stuck
 *     connection aborts with the input's state;
 *   - after the drain, beacons counted accepted == records acknowledged by
 *     Redis (nothing accepted is lost inside the worker).
 *
 * Settings the target forces (HERENOW_*): REDIS_URL (the fake), UDP_LISTEN
 * off, HTTP_LISTEN and ADMIN_LISTEN on 127.0.0.1:0, THREADS=1, SPOOL_DIR
 * empty, BATCH_WAIT_US=0, HTTP timeouts 500 ms, rate limit out of reach
 * (1e6/s) but exercised. Defaults it sets unless the environment has them:
 * TRUSTED_PROXIES (loopback, so X-Forwarded-For is walked), HTTP_CORS_ORIGINS
 * (a list, so Origin is matched), LOG_LEVEL=error. GEOIP_DB and UA_REGEXES
 * come from the environment as for the collector.
 */
#include "collector/collector.h"
#include "collector/worker.h"
#include "common/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <hiredis/read.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The widgets hn:widgets holds (also in fuzz/mkseeds.c). */
#define FUZZ_KEY1 "r4CjscttOmCsGuGr"
#define FUZZ_KEY2 "Dn7OffW1dg3tK3y2"
#define FUZZ_SALT "5a17ed5a17ed5a17ed5a17ed5a17ed5a17ed5a17ed5a17ed5a17ed5a17ed5a17"

/* ASan keeps freed memory out of use for a while (the quarantine, 256 MB by
 * default) to catch uses after free. Every request allocates and frees a
 * few dozen libevent buffers, so with the default each allocation lands on
 * fresh pages and page faults dominate: 16 MB still holds the memory of
 * hundreds of inputs (a use after free within one input, or the next, is
 * still caught) and runs the target 3-4 times faster (about 650 → 2300
 * inputs/s on a loaded two-core VM). ASAN_OPTIONS still wins over this. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) {
    return "quarantine_size_mb=16";
}

static void die(const char *what) {
    fprintf(stderr, "fuzz_ingress: %s\n", what);
    abort();
}

/* --- a Redis that acknowledges everything -------------------------------------- */

typedef struct fake_redis fake_redis;

typedef struct fr_conn {
    fake_redis         *fr;
    struct bufferevent *bev;
    redisReader        *rd;
    struct fr_conn     *next;
} fr_conn;

struct fake_redis {
    int                lfd;
    int                port;
    struct event_base *base;
    struct event      *lev;
    fr_conn           *conns;
};

static void fr_answer(struct evbuffer *out, const redisReply *cmd) {
    if (cmd->type != REDIS_REPLY_ARRAY || cmd->elements == 0 ||
        cmd->element[0]->type != REDIS_REPLY_STRING) {
        evbuffer_add_printf(out, "-ERR not a command\r\n");
        return;
    }
    const char *name = cmd->element[0]->str;
    if (strcasecmp(name, "HGETALL") == 0) {
        evbuffer_add_printf(out, "*4\r\n$%zu\r\n%s\r\n$1\r\n1\r\n$%zu\r\n%s\r\n$9\r\n2 dnt=off\r\n",
                            strlen(FUZZ_KEY1), FUZZ_KEY1, strlen(FUZZ_KEY2), FUZZ_KEY2);
    } else if (strcasecmp(name, "GET") == 0) {
        evbuffer_add_printf(out, "$%zu\r\n%s\r\n", strlen(FUZZ_SALT), FUZZ_SALT);
    } else {
        evbuffer_add_printf(out, "+OK\r\n");
    }
}

static void fr_close(fake_redis *fr, fr_conn *c) {
    for (fr_conn **p = &fr->conns; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    bufferevent_free(c->bev);
    redisReaderFree(c->rd);
    free(c);
}

static void fr_read(struct bufferevent *bev, void *arg) {
    fr_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev), *out = bufferevent_get_output(bev);
    size_t n = evbuffer_get_length(in);
    if (redisReaderFeed(c->rd, (const char *)evbuffer_pullup(in, -1), n) != REDIS_OK) die("fake redis: feed");
    evbuffer_drain(in, n);
    for (;;) {
        void *obj = NULL;
        if (redisReaderGetReply(c->rd, &obj) != REDIS_OK) die("fake redis: a command that is not RESP");
        if (obj == NULL) break;
        fr_answer(out, obj);
        freeReplyObject(obj);
    }
}

static void fr_event(struct bufferevent *bev, short what, void *arg) {
    fr_conn *c = arg;
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) fr_close(c->fr, c);
}

static void fr_accept(evutil_socket_t lfd, short what, void *arg) {
    fake_redis *fr = arg;
    (void)what;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    int one = 1;        /* small answers at once, not after the peer's delayed ACK */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fr_conn *c = hn_xcalloc(1, sizeof(*c));
    c->fr = fr;
    c->rd = redisReaderCreate();
    c->bev = bufferevent_socket_new(fr->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, fr_read, NULL, fr_event, c);
    bufferevent_enable(c->bev, EV_READ);
    c->next = fr->conns;
    fr->conns = c;
}

/* Serves the listening socket on base (one base at a time). */
static void fr_attach(fake_redis *fr, struct event_base *base) {
    fr->base = base;
    fr->lev = event_new(base, fr->lfd, EV_READ | EV_PERSIST, fr_accept, fr);
    event_add(fr->lev, NULL);
}

static void fr_detach(fake_redis *fr) {
    while (fr->conns) fr_close(fr, fr->conns);
    event_free(fr->lev);
    fr->lev = NULL;
    fr->base = NULL;
}

/* hn_collector_init reads hn:widgets and the salts with blocking calls on
 * the calling thread: meanwhile the fake Redis runs on a thread of its own. */
static _Atomic bool init_done;

static void wake(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what; (void)arg;
}

static void *fr_thread(void *arg) {
    fake_redis *fr = arg;
    struct event_base *base = event_base_new();
    fr_attach(fr, base);
    struct event *tick = event_new(base, -1, EV_PERSIST, wake, NULL);   /* wakes the loop */
    struct timeval tv = {0, 20 * 1000};
    event_add(tick, &tv);
    while (!atomic_load(&init_done)) event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    fr_detach(fr);
    event_base_free(base);
    return NULL;
}

/* --- the collector ------------------------------------------------------------ */

static struct {
    hn_collector col;
    hn_worker   *w;
    fake_redis   fr;
    struct sockaddr_in http;
    long         deadline_ms;
    struct event *deadline;
    bool         timed_out;
} G;

static void set(const char *name, const char *value, int overwrite) {
    if (setenv(name, value, overwrite) != 0) die("setenv");
}

static void bound_fd(struct evhttp_bound_socket *b, void *arg) {
    *(int *)arg = evhttp_bound_socket_get_fd(b);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what; (void)arg;
    G.timed_out = true;
}

static int listen_loopback(int *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 64) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        die("fake redis: cannot listen on 127.0.0.1");
    *port = ntohs(sa.sin_port);
    return fd;
}

static void setup(void) {
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    G.fr.lfd = listen_loopback(&G.fr.port);

    char v[64];
    snprintf(v, sizeof(v), "redis://127.0.0.1:%d/0", G.fr.port);
    set("HERENOW_REDIS_URL", v, 1);
    set("HERENOW_UDP_LISTEN", "", 1);
    set("HERENOW_HTTP_LISTEN", "127.0.0.1:0", 1);
    set("HERENOW_ADMIN_LISTEN", "127.0.0.1:0", 1);
    set("HERENOW_THREADS", "1", 1);
    set("HERENOW_SPOOL_DIR", "", 1);
    set("HERENOW_BATCH_WAIT_US", "0", 1);
    set("HERENOW_HTTP_TIMEOUT_MS", "500", 1);
    set("HERENOW_HTTP_REQUEST_TIMEOUT_MS", "500", 1);
    set("HERENOW_RATE_LIMIT", "1000000", 1);
    set("HERENOW_RATE_BURST", "1000000", 1);
    set("HERENOW_TRUSTED_PROXIES", "127.0.0.0/8, ::1/128, fd00::/8", 0);
    set("HERENOW_HTTP_CORS_ORIGINS", "https://shop.example https://www.shop.example", 0);
    set("HERENOW_LOG_LEVEL", "error", 0);
    const char *d = getenv("HN_FUZZ_INGRESS_DEADLINE_MS");
    G.deadline_ms = d && atol(d) > 0 ? atol(d) : 5000;

    hn_config cfg;
    char err[512];
    int argi = 0;
    char *argv[] = {"fuzz_ingress", NULL};
    if (hn_config_load(&cfg, HN_FOR_COLLECTOR, 1, argv, &argi, err, sizeof(err)) != HN_OK) die(err);
    hn_log_setup(cfg.log_level, cfg.log_file);

    pthread_t th;
    if (pthread_create(&th, NULL, fr_thread, &G.fr) != 0) die("pthread_create");
    int rc = hn_collector_init(&G.col, &cfg, err, sizeof(err));
    atomic_store(&init_done, true);
    pthread_join(th, NULL);
    if (rc != HN_OK) die(err);
    if (G.col.nworkers != 1 || !G.col.http_on) die("expected one worker with HTTP");
    /* the main thread's base never runs: give SIGINT/SIGTERM back to libFuzzer */
    event_del(G.col.sig_term);
    event_del(G.col.sig_int);
    event_del(G.col.sig_hup);

    G.w = G.col.workers[0];
    fr_attach(&G.fr, G.w->base);
    int hfd = -1;
    evhttp_foreach_bound_socket(G.w->http, bound_fd, &hfd);
    socklen_t sl = sizeof(G.http);
    if (hfd < 0 || getsockname(hfd, (struct sockaddr *)&G.http, &sl) != 0) die("no HTTP listener");

    G.deadline = evtimer_new(G.w->base, on_deadline, NULL);
    struct timeval tv = {5, 0};
    evtimer_add(G.deadline, &tv);
    hn_rconn_start(G.w->rc);
    while (!hn_rconn_up(G.w->rc) && !G.timed_out) event_base_loop(G.w->base, EVLOOP_ONCE);
    evtimer_del(G.deadline);
    if (G.timed_out) die("the worker did not connect to the fake Redis within 5 s");
    const hn_widgets *wt = hn_widgets_acquire(G.col.widgets, &G.w->wref);
    if (wt == NULL || hn_widgets_count(wt) != 2) die("the widget table was not loaded");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc; (void)argv;
    setup();
    return 0;
}

/* --- one input: one client connection ------------------------------------------ */

typedef struct client {
    int            fd;
    int            sfd;          /* the collector's side, once found (-1 before) */
    struct event  *ev;
    const uint8_t *data;
    size_t         size, off;
    bool           written;      /* all of the input is in the socket */
    bool           shut, eof;
    size_t         got;          /* answer bytes read */
    char           head[8];      /* their first bytes */
    char           codes[256];   /* HN_FUZZ_VERBOSE: the statuses answered */
    size_t         ncodes;
} client;

/* HN_FUZZ_VERBOSE=1: one line per input on stderr (statuses, beacons
 * accepted, time), for checking what the seeds do; 2: the answers too. */
static int verbose = -1;

/* The status codes in an answer chunk ("HTTP/1.x NNN"); a status line split
 * across two reads is missed, which only costs the verbose line a code. */
static void note_codes(client *c, const char *p, size_t n) {
    for (const char *q = p; (q = memmem(q, n - (size_t)(q - p), "HTTP/1.", 7)) != NULL; q += 7) {
        if ((size_t)(q - p) + 12 > n || c->ncodes + 5 > sizeof(c->codes)) return;
        memcpy(c->codes + c->ncodes, q + 9, 3);
        c->codes[c->ncodes + 3] = ' ';
        c->ncodes += 4;
        c->codes[c->ncodes] = '\0';
    }
}

static void on_client(evutil_socket_t fd, short what, void *arg);

static void client_events(client *c, short what) {
    event_del(c->ev);
    event_assign(c->ev, G.w->base, c->fd, what | EV_PERSIST, on_client, c);
    event_add(c->ev, NULL);
}

static void client_shut(client *c) {
    c->written = c->shut = true;
    shutdown(c->fd, SHUT_WR);
}

static void client_write(client *c) {
    while (c->off < c->size) {
        ssize_t n = send(c->fd, c->data + c->off, c->size - c->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return;
            client_shut(c);    /* the collector closed on us (EPIPE, ECONNRESET): read what it said */
            break;
        }
        c->off += (size_t)n;
    }
    c->written = true;
    client_events(c, EV_READ);
}

static void client_read(client *c) {
    static char buf[65536];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n > 0) {
            if (c->got < sizeof(c->head))
                memcpy(c->head + c->got, buf,
                       (size_t)n < sizeof(c->head) - c->got ? (size_t)n : sizeof(c->head) - c->got);
            c->got += (size_t)n;
            if (verbose) note_codes(c, buf, (size_t)n);
            if (verbose > 1) fwrite(buf, 1, (size_t)n, stderr);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        c->eof = true;      /* closed (0), or reset: the collector is done with us */
        return;
    }
}

static void on_client(evutil_socket_t fd, short what, void *arg) {
    client *c = arg;
    (void)fd;
    if ((what & EV_WRITE) && !c->written) client_write(c);
    if (what & EV_READ) client_read(c);
}

/* Where the collector stands with this connection, after a pass of its
 * event loop, as the kernel sees it: its socket is found by address (the
 * peer of the client's socket), among the lowest free descriptors, where
 * accept puts it. */
typedef struct server_view {
    int    unread;             /* bytes in its socket it has not read */
    int    unsent;             /* bytes it wrote that are still in its socket */
    size_t answered;           /* bytes the client has read */
    int    unfetched;          /* answer bytes in the client's socket */
} server_view;

static bool same_addr(const struct sockaddr_in *a, const struct sockaddr_in *b) {
    return a->sin_family == b->sin_family && a->sin_port == b->sin_port &&
           a->sin_addr.s_addr == b->sin_addr.s_addr;
}

static void find_server(client *c) {
    struct sockaddr_in me, peer;
    socklen_t sl = sizeof(me);
    if (getsockname(c->fd, (struct sockaddr *)&me, &sl) != 0) return;
    for (int fd = 3; fd < c->fd + 16; fd++) {
        sl = sizeof(peer);
        if (fd == c->fd || getpeername(fd, (struct sockaddr *)&peer, &sl) != 0 ||
            sl != sizeof(peer) || !same_addr(&peer, &me))
            continue;
        sl = sizeof(peer);
        if (getsockname(fd, (struct sockaddr *)&peer, &sl) == 0 && same_addr(&peer, &G.http)) {
            c->sfd = fd;
            return;
        }
    }
}

static server_view view(client *c) {
    server_view v = {.answered = c->got};
    if (c->sfd < 0) find_server(c);
    if (c->sfd >= 0) {     /* closed meanwhile: the ioctls fail, the client sees EOF next */
        ioctl(c->sfd, FIONREAD, &v.unread);
        ioctl(c->sfd, TIOCOUTQ, &v.unsent);
    }
    ioctl(c->fd, FIONREAD, &v.unfetched);
    return v;
}

/* The collector has read everything sent and answered all it will answer
 * for now: whatever is left in its buffer is a request it waits to see the
 * end of. Only then does the client shut its write side — a pipelined
 * request still unread when the EOF arrives would be dropped by evhttp. */
static bool quiet(const client *c, const server_view *v) {
    if (!c->written || v->unread || v->unsent || v->unfetched) return false;
    return c->sfd >= 0 || c->size == 0;
}

static void report(const client *c, const char *what) {
    fprintf(stderr,
            "fuzz_ingress: %s (deadline %ld ms): input %zu bytes, %zu written%s, %zu answer bytes, "
            "records pending %u, groups unacknowledged %u\n",
            what, G.deadline_ms, c->size, c->off, c->shut ? " (write side shut)" : " (still open)", c->got,
            G.w->flush_records, hn_rconn_groups(G.w->rc));
    abort();
}

static uint64_t accepted(void) {
    const hn_wstats *s = hn_worker_stats(G.w);
    return s->accepted[0] + s->accepted[1] + s->accepted[2];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (verbose < 0) verbose = getenv("HN_FUZZ_VERBOSE") ? atoi(getenv("HN_FUZZ_VERBOSE")) : 0;
    uint64_t t0 = hn_mono_ms(), acc0 = accepted();
    client c = {.fd = -1, .sfd = -1, .data = data, .size = size};
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) die("socket");
    if (connect(c.fd, (struct sockaddr *)&G.http, sizeof(G.http)) != 0 && errno != EINPROGRESS)
        die("connect to the collector's HTTP listener");
    c.ev = event_new(G.w->base, c.fd, EV_READ | EV_WRITE | EV_PERSIST, on_client, &c);
    event_add(c.ev, NULL);
    G.timed_out = false;
    struct timeval tv = {G.deadline_ms / 1000, (G.deadline_ms % 1000) * 1000};
    evtimer_add(G.deadline, &tv);

    /* Everything runs on this thread, so a pass of the loop that changes
     * nothing means nothing is on its way: three such passes (evhttp runs
     * some of its work as callbacks deferred to the next pass) and the
     * client is done talking. Then it waits for the collector to close. */
    server_view last = {.unread = -1};
    int still = 0;
    while (!c.eof && !G.timed_out) {
        if (c.shut) {
            event_base_loop(G.w->base, EVLOOP_ONCE);
            continue;
        }
        event_base_loop(G.w->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        server_view v = view(&c);
        bool same = v.unread == last.unread && v.answered == last.answered;
        still = quiet(&c, &v) && same ? still + 1 : 0;
        last = v;
        if (still >= 3) client_shut(&c);
    }
    event_free(c.ev);
    close(c.fd);
    if (G.timed_out) report(&c, "the collector did not close the connection");
    if (c.got && memcmp(c.head, "HTTP/", c.got < 5 ? c.got : 5) != 0)
        report(&c, "an answer that does not start with HTTP/");

    /* every record taken flushed and acknowledged */
    while ((G.w->flush_records || hn_rconn_groups(G.w->rc)) && !G.timed_out)
        event_base_loop(G.w->base, EVLOOP_ONCE);
    evtimer_del(G.deadline);
    if (G.timed_out) report(&c, "records not flushed and acknowledged");
    if (accepted() != hn_worker_stats(G.w)->records_written)
        report(&c, "beacons counted accepted != records acknowledged");
    if (verbose)
        fprintf(stderr, "fuzz_ingress: %zu bytes: answers %s(%zu bytes), %llu beacons accepted, %llu ms\n",
                size, c.ncodes ? c.codes : "none ", c.got, (unsigned long long)(accepted() - acc0),
                (unsigned long long)(hn_mono_ms() - t0));
    return 0;
}
