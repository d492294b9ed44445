/*
 * rconn.c: see rconn.h.
 *
 *   send() ──► buf [ acked | sent, waiting for replies | not yet sent ]
 *                  ^head          ^                      ^sent       ^len
 *   groups FIFO: one entry per group, oldest first, with the number of
 *   replies still expected. A reply decrements the head group; when it hits
 *   zero the group is done and head moves past its bytes.
 */
#include "collector/rconn.h"
#include "collector/rcluster.h"
#include "common/buf.h"
#include "common/log.h"

#include <errno.h>
#include <netdb.h>
#include <hiredis/read.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BACKOFF_MIN_MS  50
#define BACKOFF_MAX_MS  2000
#define READ_CHUNK (64 * 1024)

typedef struct group {
    size_t   len;
    uint32_t ncmds;
    uint32_t left;       /* replies still expected */
    uint32_t nerr;
    uint64_t tag;
} group;

enum { ST_IDLE, ST_CONNECTING, ST_UP, ST_WAIT };

struct hn_rconn {
    struct event_base *base;
    hn_redis_addr addr;
    hn_rconn_cbs  cbs;
    void         *ctx;
    int           fd;
    int           st;
    struct event *rev, *wev, *timer;
    bool          wev_on;
    int           backoff_ms;
    redisReader  *reader;
    hn_buf        buf;
    size_t        head, sent;
    group        *g;             /* ring of groups */
    uint32_t      gcap, ghead, gcount;
    uint32_t      hello_left;    /* replies of AUTH/SELECT still expected */
    int           tee_fd;
    int           reply_timeout_ms;
    int           connect_timeout_ms;
    uint64_t      progress_ms;   /* last reply, or when waiting for one began */
    struct event *watch;         /* reply-timeout watchdog while up */
    char          errtext[256];
    bool          in_reply_error;
    /* After a lost connection the first group goes out alone: were Redis
     * still refusing (OOM, LOADING...) and then taking writes again while it
     * worked through a pipeline, groups after a refused one would land
     * before it, out of order. One group done, pipelining resumes. */
    bool          probe;
    bool          corked;        /* hn_rconn_cork: sends queue, one write at the uncork */
    bool          pass_tryagain; /* TRYAGAIN goes to the error callback (a cluster node) */
    hn_rcluster  *cl;            /* a cluster: every call goes there */
};

/* --- reply objects that allocate nothing ---------------------------------- */

static char obj_ok, obj_err;

static void *mk_string(const redisReadTask *t, char *s, size_t n) {
    if (t->type == REDIS_REPLY_ERROR && t->parent == NULL) {
        hn_rconn *c = t->privdata;
        if (c && !c->in_reply_error) {
            size_t k = n < sizeof(c->errtext) - 1 ? n : sizeof(c->errtext) - 1;
            memcpy(c->errtext, s, k);
            c->errtext[k] = '\0';
            c->in_reply_error = true;
        }
        return &obj_err;
    }
    return &obj_ok;
}
static void *mk_array(const redisReadTask *t, int n) { (void)t; (void)n; return &obj_ok; }
static void *mk_integer(const redisReadTask *t, long long v) { (void)t; (void)v; return &obj_ok; }
static void *mk_nil(const redisReadTask *t) { (void)t; return &obj_ok; }
static void free_obj(void *o) { (void)o; }

static redisReplyObjectFunctions no_alloc_fns = {mk_string, mk_array, mk_integer, mk_nil, free_obj};

/* Error replies that mean "not now" rather than "never": Redis loading its
 * data after a restart, out of memory (maxmemory), unable to persist, a
 * replica, busy with a script, a cluster in flux. A group that gets one is
 * not done; acknowledging it would throw its records away. */
static bool retryable(const char *err) {
    static const char *const codes[] = {"LOADING", "OOM", "MISCONF", "READONLY", "BUSY",
                                        "TRYAGAIN", "MASTERDOWN", "NOREPLICAS", "CLUSTERDOWN",
                                        "NOTREADY"};
    for (size_t i = 0; i < HN_ARRAY_LEN(codes); i++) {
        size_t n = strlen(codes[i]);
        if (strncmp(err, codes[i], n) == 0 && (err[n] == ' ' || err[n] == '\0')) return true;
    }
    return false;
}

/* --- connection lifecycle -------------------------------------------------- */

static void on_io(evutil_socket_t fd, short what, void *arg);
static void on_timer(evutil_socket_t fd, short what, void *arg);
static int write_pending(hn_rconn *c);

static void want_write(hn_rconn *c, bool on) {
    if (on == c->wev_on || c->wev == NULL) return;
    if (on) event_add(c->wev, NULL);
    else event_del(c->wev);
    c->wev_on = on;
}

static void close_fd(hn_rconn *c) {
    if (c->rev) { event_free(c->rev); c->rev = NULL; }
    if (c->wev) { event_free(c->wev); c->wev = NULL; }
    c->wev_on = false;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    if (c->reader) { redisReaderFree(c->reader); c->reader = NULL; }
}

static void schedule_retry(hn_rconn *c) {
    struct timeval tv = {c->backoff_ms / 1000, (c->backoff_ms % 1000) * 1000};
    c->st = ST_WAIT;
    evtimer_add(c->timer, &tv);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
}

static void lost(hn_rconn *c, const char *why) {
    bool was_up = c->st == ST_UP;
    if (c->watch) event_del(c->watch);
    close_fd(c);
    evtimer_del(c->timer);
    /* Everything unacknowledged goes out again on the next connection. */
    for (uint32_t i = 0; i < c->gcount; i++) {
        group *g = &c->g[(c->ghead + i) % c->gcap];
        g->left = g->ncmds;
        g->nerr = 0;
    }
    c->sent = c->head;
    c->probe = true;
    schedule_retry(c);          /* first: the state callback may hn_rconn_take */
    if (was_up && c->cbs.state) c->cbs.state(c->ctx, false, why);
}

/* AUTH and SELECT go first on every new connection; their replies are
 * consumed here and never reach a group. */
static void send_hello(hn_rconn *c) {
    hn_buf hb;
    hn_buf_init(&hb, 128);
    c->hello_left = 0;
    if (c->addr.password[0]) {
        hn_resp_cmd(&hb, 2);
        hn_resp_str(&hb, "AUTH");
        hn_resp_str(&hb, c->addr.password);
        c->hello_left++;
    }
    if (c->addr.db) {
        hn_resp_cmd(&hb, 2);
        hn_resp_str(&hb, "SELECT");
        hn_resp_u64(&hb, (uint64_t)c->addr.db);
        c->hello_left++;
    }
    if (hb.len) {
        ssize_t w = send(c->fd, hb.p, hb.len, MSG_NOSIGNAL);   /* tiny: fits the socket buffer */
        if (w != (ssize_t)hb.len) c->hello_left = 0;
    }
    hn_buf_free(&hb);
}

static void connected(hn_rconn *c) {
    c->st = ST_UP;
    /* The backoff is reset by the first group done, not here: a Redis that
     * takes connections but refuses writes (LOADING, OOM) is not retried
     * every 50 ms. */
    evtimer_del(c->timer);
    c->reader = redisReaderCreateWithFunctions(&no_alloc_fns);
    if (c->reader == NULL) hn_xmalloc(SIZE_MAX);   /* aborts: out of memory */
    c->reader->maxbuf = 0;     /* keep the read buffer between replies */
    event_del(c->wev);
    c->wev_on = false;
    event_add(c->rev, NULL);
    c->progress_ms = hn_mono_ms();
    if (c->watch && c->reply_timeout_ms > 0) {
        int every = c->reply_timeout_ms / 4 > 100 ? c->reply_timeout_ms / 4 : 100;
        struct timeval tv = {every / 1000, (every % 1000) * 1000};
        event_add(c->watch, &tv);
    }
    send_hello(c);
    if (c->cbs.state) c->cbs.state(c->ctx, true, "connected");
    if (c->sent < c->buf.len) want_write(c, true);
}

static void try_connect(hn_rconn *c) {
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof(ss));
    if (c->addr.path[0]) {
        struct sockaddr_un *un = (struct sockaddr_un *)&ss;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof(un->sun_path), "%.*s", (int)sizeof(un->sun_path) - 1,
                 c->addr.path);
        len = sizeof(*un);
    } else {
        struct addrinfo hints = {0}, *res = NULL;
        char port[8];
        hints.ai_socktype = SOCK_STREAM;
        snprintf(port, sizeof(port), "%d", c->addr.port);
        int rc = getaddrinfo(c->addr.host, port, &hints, &res);
        if (rc != 0 || res == NULL) {
            hn_warn("event=redis_resolve_failed host='%s' err='%s'", c->addr.host, gai_strerror(rc));
            schedule_retry(c);
            return;
        }
        memcpy(&ss, res->ai_addr, res->ai_addrlen);
        len = res->ai_addrlen;
        freeaddrinfo(res);
    }
    c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        schedule_retry(c);
        return;
    }
    if (ss.ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    c->rev = event_new(c->base, c->fd, EV_READ | EV_PERSIST, on_io, c);
    c->wev = event_new(c->base, c->fd, EV_WRITE | EV_PERSIST, on_io, c);
    c->st = ST_CONNECTING;
    if (connect(c->fd, (struct sockaddr *)&ss, len) == 0) {
        connected(c);
        return;
    }
    if (errno != EINPROGRESS) {
        lost(c, strerror(errno));
        return;
    }
    struct timeval tv = {c->connect_timeout_ms / 1000, (c->connect_timeout_ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    event_add(c->wev, NULL);
    c->wev_on = true;
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
    hn_rconn *c = arg;
    (void)fd; (void)what;
    if (c->st == ST_CONNECTING) lost(c, "connect timeout");
    else if (c->st == ST_WAIT) try_connect(c);
}

/* hiredis 0.14 has no reply timeout: a Redis that stops answering (hung,
 * SIGSTOPped, a half-open connection) would hold a worker's pipelines
 * forever. After reply_timeout_ms without a reply while some are due, the
 * connection is dropped and everything unacknowledged goes out again on a
 * new one. Redis may still run what it had received: commands may run
 * twice, as after any connection loss (see rconn.h). */
static void on_watch(evutil_socket_t fd, short what, void *arg) {
    hn_rconn *c = arg;
    (void)fd; (void)what;
    if (c->st != ST_UP || c->gcount == 0) return;
    if (hn_mono_ms() - c->progress_ms > (uint64_t)c->reply_timeout_ms) {
        hn_warn("event=redis_reply_timeout waited_ms=%llu groups=%u",
                (unsigned long long)(hn_mono_ms() - c->progress_ms), c->gcount);
        lost(c, "reply timeout");
    }
}

/* --- data path ------------------------------------------------------------- */

static void group_done(hn_rconn *c) {
    group *g = &c->g[c->ghead];
    group done = *g;
    c->ghead = (c->ghead + 1) % c->gcap;
    c->gcount--;
    c->head += done.len;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->probe = false;
    if (c->head == c->buf.len) {
        c->head = c->sent = c->buf.len = 0;
    } else if (c->head > (1u << 20) && c->head > c->buf.len / 2) {
        memmove(c->buf.p, c->buf.p + c->head, c->buf.len - c->head);
        c->buf.len -= c->head;
        c->sent -= c->head;
        c->head = 0;
    }
    if (c->cbs.done) c->cbs.done(c->ctx, done.tag, done.ncmds, done.nerr, c->errtext);
}

static int read_replies(hn_rconn *c) {
    char chunk[READ_CHUNK];
    for (;;) {
        ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);
        if (n == 0) { lost(c, "connection closed by Redis"); return HN_ERR; }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return HN_OK;
            lost(c, strerror(errno));
            return HN_ERR;
        }
        if (redisReaderFeed(c->reader, chunk, (size_t)n) != REDIS_OK) {
            lost(c, "reader error");
            return HN_ERR;
        }
        for (;;) {
            void *obj = NULL;
            c->reader->privdata = c;
            c->in_reply_error = false;
            if (redisReaderGetReply(c->reader, &obj) != REDIS_OK) {
                lost(c, c->reader->errstr);
                return HN_ERR;
            }
            if (obj == NULL) break;
            c->progress_ms = hn_mono_ms();
            if (c->hello_left) {
                c->hello_left--;
                if (obj == &obj_err) hn_error("event=redis_hello_failed err='%s'", c->errtext);
                continue;
            }
            if (c->gcount == 0) {
                lost(c, "reply without a command");
                return HN_ERR;
            }
            group *g = &c->g[c->ghead];
            if (obj == &obj_err) {
                if (retryable(c->errtext) && !(c->pass_tryagain && strncmp(c->errtext, "TRYAGAIN", 8) == 0)) {
                    /* Not done: Redis cannot take writes now. The group (and
                     * what follows it) goes out again on a new connection. */
                    char why[300];
                    snprintf(why, sizeof(why), "retryable error reply: %.200s", c->errtext);
                    lost(c, why);
                    return HN_ERR;
                }
                g->nerr++;
                if (c->cbs.error) c->cbs.error(c->ctx, g->tag, g->ncmds - g->left, c->errtext);
            }
            if (--g->left == 0) {
                bool probing = c->probe;
                group_done(c);
                if (c->st != ST_UP) return HN_ERR;
                if (probing && c->sent < c->buf.len && write_pending(c) != HN_OK) return HN_ERR;
            }
        }
        if ((size_t)n < sizeof(chunk)) return HN_OK;
    }
}

static int write_pending(hn_rconn *c) {
    size_t end = c->buf.len;
    if (c->probe && c->gcount > 0) end = c->head + c->g[c->ghead].len;   /* the first group alone */
    while (c->sent < end) {
        ssize_t n = send(c->fd, c->buf.p + c->sent, end - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                want_write(c, true);
                return HN_OK;
            }
            lost(c, strerror(errno));
            return HN_ERR;
        }
        c->sent += (size_t)n;
    }
    want_write(c, false);
    return HN_OK;
}

static void on_io(evutil_socket_t fd, short what, void *arg) {
    hn_rconn *c = arg;
    (void)fd;
    if (c->st == ST_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            lost(c, strerror(err));
            return;
        }
        connected(c);
        if (c->st == ST_UP && c->sent < c->buf.len) write_pending(c);
        return;
    }
    if (c->st != ST_UP) return;
    if ((what & EV_READ) && read_replies(c) != HN_OK) return;
    if ((what & EV_WRITE) && c->st == ST_UP) write_pending(c);
}

/* --- public ---------------------------------------------------------------- */

hn_rconn *hn_rconn_create(struct event_base *base, const hn_redis_addr *addr,
                          const hn_rconn_cbs *cbs, void *ctx) {
    hn_rconn *c = hn_xcalloc(1, sizeof(*c));
    c->base = base;
    c->addr = *addr;
    c->cbs = *cbs;
    c->ctx = ctx;
    c->fd = -1;
    c->tee_fd = -1;
    c->backoff_ms = BACKOFF_MIN_MS;
    c->connect_timeout_ms = 2000;
    c->timer = evtimer_new(base, on_timer, c);
    c->watch = event_new(base, -1, EV_PERSIST, on_watch, c);
    hn_buf_init(&c->buf, 256 * 1024);
    c->gcap = 64;
    c->g = hn_xcalloc(c->gcap, sizeof(group));
    return c;
}

void hn_rconn_destroy(hn_rconn *c) {
    if (c == NULL) return;
    if (c->cl) {
        hn_rcluster_destroy(c->cl);
        free(c);
        return;
    }
    close_fd(c);
    if (c->timer) event_free(c->timer);
    if (c->watch) event_free(c->watch);
    hn_buf_free(&c->buf);
    free(c->g);
    free(c);
}

void hn_rconn_start(hn_rconn *c) {
    if (c->cl) {
        hn_rcluster_start(c->cl);
        return;
    }
    if (c->st == ST_IDLE) try_connect(c);
}

void hn_rconn_send(hn_rconn *c, const char *buf, size_t len, uint32_t ncmds, uint64_t tag) {
    if (c->cl) {
        hn_rcluster_send(c->cl, buf, len, ncmds, tag);
        return;
    }
    if (ncmds == 0) return;
    if (c->gcount == c->gcap) {
        group *ng = hn_xcalloc(c->gcap * 2, sizeof(group));
        for (uint32_t i = 0; i < c->gcount; i++) ng[i] = c->g[(c->ghead + i) % c->gcap];
        free(c->g);
        c->g = ng;
        c->ghead = 0;
        c->gcap *= 2;
    }
    if (c->gcount == 0) c->progress_ms = hn_mono_ms();
    group *g = &c->g[(c->ghead + c->gcount) % c->gcap];
    g->len = len;
    g->ncmds = g->left = ncmds;
    g->nerr = 0;
    g->tag = tag;
    c->gcount++;
    hn_buf_append(&c->buf, buf, len);
    if (c->tee_fd >= 0) {
        ssize_t w = write(c->tee_fd, buf, len);
        (void)w;
    }
    if (c->st == ST_UP && !c->corked) write_pending(c);
}

void hn_rconn_cork(hn_rconn *c, bool on) {
    c->corked = on;
    if (!on && c->st == ST_UP && c->sent < c->buf.len) write_pending(c);
}

void hn_rconn_pass_tryagain(hn_rconn *c) { c->pass_tryagain = true; }

void hn_rconn_set_flush_wait(hn_rconn *c, int us) {
    if (c->cl) hn_rcluster_set_flush_wait(c->cl, us);
}

void hn_rconn_tee(hn_rconn *c, int fd) {
    if (c->cl) hn_rcluster_tee(c->cl, fd);
    c->tee_fd = fd;
}
void hn_rconn_set_reply_timeout(hn_rconn *c, int ms) {
    if (c->cl) hn_rcluster_set_timeouts(c->cl, ms, -1);
    c->reply_timeout_ms = ms;
}
void hn_rconn_set_connect_timeout(hn_rconn *c, int ms) {
    if (c->cl) hn_rcluster_set_timeouts(c->cl, -1, ms > 0 ? ms : 1);
    c->connect_timeout_ms = ms > 0 ? ms : 1;
}

uint32_t hn_rconn_take(hn_rconn *c, hn_rconn_take_fn fn, void *ctx) {
    if (c->cl) return hn_rcluster_take(c->cl, fn, ctx);
    if (c->st == ST_UP || c->gcount == 0) return 0;
    /* Moved out first: fn may send new groups on this connection. */
    hn_buf buf = c->buf;
    group *g = c->g;
    uint32_t gcap = c->gcap, ghead = c->ghead, n = c->gcount;
    size_t off = c->head;
    hn_buf_init(&c->buf, 256 * 1024);
    c->gcap = 64;
    c->g = hn_xcalloc(c->gcap, sizeof(group));
    c->ghead = c->gcount = 0;
    c->head = c->sent = 0;
    for (uint32_t i = 0; i < n; i++) {
        const group *gi = &g[(ghead + i) % gcap];
        fn(ctx, buf.p + off, gi->len, gi->ncmds, gi->tag);
        off += gi->len;
    }
    hn_buf_free(&buf);
    free(g);
    return n;
}

void hn_rconn_halt(hn_rconn *c) {
    if (c->cl) {
        hn_rcluster_halt(c->cl);
        return;
    }
    if (c->watch) event_del(c->watch);
    evtimer_del(c->timer);
    close_fd(c);
    c->sent = c->head;
    c->st = ST_IDLE;
}

bool hn_rconn_up(const hn_rconn *c) { return c->cl ? hn_rcluster_up(c->cl) : c->st == ST_UP; }
size_t hn_rconn_buffered(const hn_rconn *c) { return c->cl ? hn_rcluster_buffered(c->cl) : c->buf.len - c->head; }
uint32_t hn_rconn_groups(const hn_rconn *c) { return c->cl ? hn_rcluster_groups(c->cl) : c->gcount; }

hn_rconn *hn_rconn_create_cluster(struct event_base *base, const hn_redis_cfg *cfg,
                                  const hn_rconn_cbs *cbs, void *ctx) {
    hn_rconn *c = hn_xcalloc(1, sizeof(*c));
    c->fd = -1;
    c->tee_fd = -1;
    c->cl = hn_rcluster_create(base, cfg, cbs, ctx);
    return c;
}
