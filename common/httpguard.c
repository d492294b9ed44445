/*
 * httpguard.c: see httpguard.h.
 */
#include "common/httpguard.h"
#include "common/log.h"
#include "common/tls.h"

#include <errno.h>
#include <pthread.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>

#define SWEEP_MS        250
#define ACCEPT_PAUSE_MS 100

typedef struct slot {
    struct evhttp_connection *con;     /* NULL: no request seen on this fd */
    uint64_t begun_ms;                 /* monotonic: when the arriving request began */
    bool     arriving;                 /* the clock runs */
    bool     bytes;                    /* request bytes seen (closed now: incomplete) */
    hn_httpguard_closefn ucb;          /* the owner's close callback (hn_httpguard_closecb) */
    void    *uarg;
} slot;

struct hn_httpguard {
    struct event_base     *base;
    struct evconnlistener *lev;
    struct event          *sweep, *resume;
    hn_httpguard_counters  ctr;
    hn_tls                *tls;                 /* NULL: plain HTTP */
    uint64_t               timeout_ms;
    uint64_t               last_log_ms;
    slot                  *slots;
    size_t                 nslots;
    char                   name[16];
};

/* A thread's guards: [0] its plain port's, [1] its HTTPS port's. A
 * connection's callbacks find theirs by the kind of its bufferevent. */
static _Thread_local hn_httpguard *tl_guard[2];

static hn_httpguard *guard_of(struct bufferevent *bev) {
    return bev ? tl_guard[hn_tls_is_tls(bev)] : NULL;
}

/* The listener's error callback gets evhttp's argument, not ours: the
 * guards are found by their listener. */
#define MAX_GUARDS 1024
static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static hn_httpguard   *reg[MAX_GUARDS];

static void reg_set(hn_httpguard *g, bool add) {
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < MAX_GUARDS; i++) {
        if (add && reg[i] == NULL) { reg[i] = g; break; }
        if (!add && reg[i] == g) { reg[i] = NULL; break; }
    }
    pthread_mutex_unlock(&reg_lock);
}

static hn_httpguard *reg_find(const struct evconnlistener *lev) {
    hn_httpguard *g = NULL;
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < MAX_GUARDS && g == NULL; i++)
        if (reg[i] && reg[i]->lev == lev) g = reg[i];
    pthread_mutex_unlock(&reg_lock);
    return g;
}

static void count(uint64_t *c) {
    if (c) __atomic_fetch_add(c, 1, __ATOMIC_RELAXED);
}

static slot *slot_of(hn_httpguard *g, evutil_socket_t fd) {
    if (g == NULL || fd < 0) return NULL;
    if ((size_t)fd >= g->nslots) {
        size_t n = g->nslots ? g->nslots : 1024;
        while (n <= (size_t)fd) n *= 2;
        g->slots = hn_xreallocarray(g->slots, n, sizeof(slot));
        memset(g->slots + g->nslots, 0, (n - g->nslots) * sizeof(slot));
        g->nslots = n;
    }
    return &g->slots[fd];
}

static void watch_in(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg) {
    (void)b;
    slot *st = slot_of(guard_of(arg), bufferevent_getfd(arg));
    if (st && st->con && info->n_added) {
        if (!st->arriving) {
            st->arriving = true;
            st->begun_ms = hn_mono_ms();
        }
        st->bytes = true;
    }
}

static void watch_out(struct evbuffer *b, const struct evbuffer_cb_info *info, void *arg) {
    (void)b;
    slot *st = slot_of(guard_of(arg), bufferevent_getfd(arg));
    if (st && info->n_added) st->arriving = st->bytes = false;
}

/* The guard's close callback stays on the connection for its whole life:
 * the slot is cleared here, then the owner's callback (if one was set
 * through hn_httpguard_closecb) runs. Replacing it with
 * evhttp_connection_set_closecb once left the slot pointing at a freed
 * connection, which the sweep then freed again. */
static void on_close(struct evhttp_connection *con, void *arg) {
    (void)arg;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(con);
    hn_httpguard *g = guard_of(bev);
    slot *st = slot_of(g, bufferevent_getfd(bev));
    hn_httpguard_closefn ucb = NULL;
    void *uarg = NULL;
    if (st && st->con == con) {
        ucb = st->ucb;
        uarg = st->uarg;
        if (st->arriving && st->bytes) count(g->ctr.incomplete);
        memset(st, 0, sizeof(*st));
    }
    if (ucb) ucb(con, uarg);
}

void hn_httpguard_closecb(struct evhttp_connection *con, hn_httpguard_closefn cb, void *arg) {
    if (con == NULL) return;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(con);
    slot *st = slot_of(guard_of(bev), bufferevent_getfd(bev));
    if (st && st->con == con) {
        st->ucb = cb;
        st->uarg = arg;
    } else {
        evhttp_connection_set_closecb(con, cb, arg);   /* a connection without a guard */
    }
}

/* The connection's slot, made the first time it is needed: evhttp has made
 * its connection by then (the bufferevent's callback argument). */
static slot *track(struct bufferevent *bev) {
    slot *st = slot_of(guard_of(bev), bufferevent_getfd(bev));
    void *con = NULL;
    bufferevent_getcb(bev, NULL, NULL, NULL, &con);
    if (con == NULL || st == NULL) return NULL;
    if (st->con != con) {
        *st = (slot){.con = con};
        evhttp_connection_set_closecb(con, on_close, NULL);
    }
    return st;
}

static void first_bytes(struct evbuffer *in, const struct evbuffer_cb_info *info, void *arg) {
    struct bufferevent *bev = arg;
    if (info->n_added == 0) return;
    evbuffer_remove_cb(in, first_bytes, bev);
    slot *st = track(bev);
    if (st == NULL) return;
    if (!st->arriving) {            /* (HTTPS: the clock may run since the handshake) */
        st->arriving = true;
        st->begun_ms = hn_mono_ms();
    }
    st->bytes = true;
    evbuffer_add_cb(in, watch_in, bev);
    evbuffer_add_cb(bufferevent_get_output(bev), watch_out, bev);
}

/* HTTPS: the input buffer holds what was decrypted, so a client dripping a
 * handshake, or a request whose TLS record never completes, shows nothing
 * there. OpenSSL tells each record header read instead: from there the
 * clock runs, as for the first bytes of a plain request, until the request
 * is complete or the answer goes out. */
static void on_tls_record(int write_p, int version, int content_type, const void *buf, size_t len,
                          SSL *ssl, void *arg) {
    (void)version; (void)buf; (void)len; (void)ssl;
    if (write_p || content_type != SSL3_RT_HEADER) return;
    slot *st = track(arg);
    if (st && !st->arriving) {
        st->arriving = true;
        st->begun_ms = hn_mono_ms();
    }
}

/* The handshake done with no request bytes yet: the clock stops, as for a
 * plain connection that has sent nothing (a browser's preconnect); the next
 * record header starts it again. */
static void on_tls_info(const SSL *ssl, int where, int ret) {
    (void)ret;
    if (!(where & SSL_CB_HANDSHAKE_DONE)) return;
    struct bufferevent *bev = SSL_get_app_data(ssl);
    slot *st = bev ? slot_of(guard_of(bev), bufferevent_getfd(bev)) : NULL;
    if (st && st->con && !st->bytes) st->arriving = false;
}

static struct bufferevent *on_connection(struct event_base *base, void *arg) {
    hn_httpguard *g = arg;
    tl_guard[g->tls != NULL] = g;
    count(g->ctr.connections);
    struct bufferevent *bev;
    if (g->tls) {
        bev = hn_tls_bev(g->tls, base);
        if (bev == NULL) {
            /* evhttp would make a plain bufferevent instead: HTTP in the clear
             * on the HTTPS port. Out of memory, as hn_xmalloc does. */
            hn_error("event=tls_connection_failed (out of memory?)");
            abort();
        }
        SSL *ssl = bufferevent_openssl_get_ssl(bev);
        SSL_set_msg_callback(ssl, on_tls_record);
        SSL_set_msg_callback_arg(ssl, bev);
        SSL_set_app_data(ssl, bev);
        SSL_set_info_callback(ssl, on_tls_info);
    } else {
        bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    }
    if (bev) evbuffer_add_cb(bufferevent_get_input(bev), first_bytes, bev);
    return bev;
}

void hn_httpguard_arrived(struct evhttp_request *req) {
    struct evhttp_connection *con = evhttp_request_get_connection(req);
    if (con == NULL) return;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(con);
    slot *st = slot_of(guard_of(bev), bufferevent_getfd(bev));
    if (st && st->con == con) st->arriving = st->bytes = false;
}

/* Closes connections whose request has been arriving for too long. */
static void on_sweep(evutil_socket_t fd, short what, void *arg) {
    hn_httpguard *g = arg;
    (void)fd; (void)what;
    tl_guard[g->tls != NULL] = g;
    uint64_t now = hn_mono_ms();
    for (size_t i = 0; i < g->nslots; i++) {
        slot *st = &g->slots[i];
        if (st->con && st->arriving && now - st->begun_ms > g->timeout_ms) {
            count(g->ctr.request_timeouts);
            evhttp_connection_free(st->con);      /* its close callback counts and clears */
        }
    }
}

static void on_resume(evutil_socket_t fd, short what, void *arg) {
    hn_httpguard *g = arg;
    (void)fd; (void)what;
    evconnlistener_enable(g->lev);
}

static void on_accept_error(struct evconnlistener *lev, void *arg) {
    (void)arg;
    int e = EVUTIL_SOCKET_ERROR();
    hn_httpguard *g = reg_find(lev);
    if (g == NULL) return;
    count(g->ctr.accept_errors);
    uint64_t now = hn_mono_ms();
    if (now - g->last_log_ms >= 1000) {
        g->last_log_ms = now;
        hn_error("event=accept_failed port=%s errno=%d err='%s' (paused %d ms)", g->name, e,
                 strerror(e), ACCEPT_PAUSE_MS);
    }
    /* Out of descriptors (or memory): the pending connection stays in the
     * backlog; trying again at once would spin. */
    evconnlistener_disable(lev);
    struct timeval tv = {0, ACCEPT_PAUSE_MS * 1000};
    evtimer_add(g->resume, &tv);
}

hn_httpguard *hn_httpguard_new(struct event_base *base, struct evhttp *http,
                               struct evhttp_bound_socket *bound, int request_timeout_ms,
                               const char *name, const hn_httpguard_counters *counters,
                               hn_tls *tls) {
    hn_httpguard *g = hn_xcalloc(1, sizeof(*g));
    g->base = base;
    g->tls = tls;
    g->ctr = *counters;
    g->timeout_ms = (uint64_t)request_timeout_ms;
    snprintf(g->name, sizeof(g->name), "%s", name);
    tl_guard[tls != NULL] = g;
    evhttp_set_bevcb(http, on_connection, g);
    g->sweep = event_new(base, -1, EV_PERSIST, on_sweep, g);
    struct timeval stv = {0, SWEEP_MS * 1000};
    event_add(g->sweep, &stv);
    g->resume = evtimer_new(base, on_resume, g);
    g->lev = bound ? evhttp_bound_socket_get_listener(bound) : NULL;
    if (g->lev) {
        reg_set(g, true);
        evconnlistener_set_error_cb(g->lev, on_accept_error);
    }
    return g;
}

void hn_httpguard_unlisten(hn_httpguard *g) {
    if (g == NULL || g->lev == NULL) return;
    reg_set(g, false);
    evtimer_del(g->resume);
    g->lev = NULL;
}

void hn_httpguard_free(hn_httpguard *g) {
    if (g == NULL) return;
    if (g->lev) reg_set(g, false);
    if (g->sweep) event_free(g->sweep);
    if (g->resume) event_free(g->resume);
    /* evhttp_free, after this, closes the connections: their close callback
     * must not find a freed guard. */
    if (tl_guard[g->tls != NULL] == g) tl_guard[g->tls != NULL] = NULL;
    free(g->slots);
    free(g);
}

bool hn_http_ambiguous_length(struct evhttp_request *req) {
    int cl = 0, te = 0;
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
        if (strcasecmp(kv->key, "Content-Length") == 0) cl++;
        else if (strcasecmp(kv->key, "Transfer-Encoding") == 0) te++;
    }
    return cl > 1 || (cl && te);
}

uint64_t hn_raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = was;
    }
    return (uint64_t)rl.rlim_cur;
}
