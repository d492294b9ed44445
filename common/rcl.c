/* rcl.c: see rcl.h. The cluster half: a queue of formatted commands, run
 * in rounds (route, write every node's share, read the replies in command
 * order, redirect or retry what must be), then handed out in order. */
#include "common/rcl.h"

#include "common/log.h"
#include "common/prom.h"
#include "common/rcmd.h"
#include "common/rmap.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define RCL_REDIRECTS      6            /* MOVED/ASK rounds per unit */
#define RCL_REFRESH_GAP_US 300000       /* one map read per 300 ms at most */
#define RCL_BACKOFF_MIN_MS 8
#define RCL_BACKOFF_MAX_MS 512

/* ---- the process's counters (hn_rcl_metrics) --------------------------- */

enum { K_MOVED = HN_RCL_MOVED, K_ASK = HN_RCL_ASK, K_TRYAGAIN = HN_RCL_TRYAGAIN,
       K_CLUSTERDOWN = HN_RCL_CLUSTERDOWN, K_CONNECTION = HN_RCL_CONNECTION, K_READONLY = HN_RCL_READONLY,
       K_LOADING = HN_RCL_LOADING, K_REFRESH = HN_RCL_REFRESH, K_CROSSSLOT = HN_RCL_CROSSSLOT,
       K_NOSCRIPT = HN_RCL_NOSCRIPT, K_COUNT = HN_RCL_EVENTS };
static _Atomic uint64_t counters[K_COUNT];
static atomic_bool      any_cluster;

void hn_rcl_note(hn_rcl_event e) {
    atomic_store(&any_cluster, true);
    if (e < HN_RCL_EVENTS) atomic_fetch_add(&counters[e], 1);
}

#define NODE_STATS_MAX 64
static struct node_stat {
    char             name[300];
    _Atomic uint64_t commands, errors;
} node_stats[NODE_STATS_MAX];
static _Atomic int     nnode_stats;
static pthread_mutex_t node_stats_lock = PTHREAD_MUTEX_INITIALIZER;

static struct node_stat *node_stat(const char *host, int port) {
    char name[300];
    snprintf(name, sizeof(name), "%s:%d", host, port);
    int n = atomic_load(&nnode_stats);
    for (int i = 0; i < n; i++)
        if (strcmp(node_stats[i].name, name) == 0) return &node_stats[i];
    pthread_mutex_lock(&node_stats_lock);
    struct node_stat *s = NULL;
    n = atomic_load(&nnode_stats);
    for (int i = 0; i < n && !s; i++)
        if (strcmp(node_stats[i].name, name) == 0) s = &node_stats[i];
    if (!s && n < NODE_STATS_MAX) {
        s = &node_stats[n];
        snprintf(s->name, sizeof(s->name), "%s", name);
        atomic_store(&nnode_stats, n + 1);
    }
    pthread_mutex_unlock(&node_stats_lock);
    return s;
}

/* ---- the client -------------------------------------------------------- */

typedef struct rcl_cmd {
    char       *buf;
    size_t      len;
    int         slot;               /* -1: keyless */
    unsigned    flags;
    redisReply *reply;
} rcl_cmd;

typedef struct rcl_script {
    char  sha[41];
    char *body;
} rcl_script;

typedef struct rcl_node {
    redisContext     *ctx;
    struct node_stat *stat;
} rcl_node;

struct hn_rcl {
    redisContext *one;                  /* one server */
    hn_redis_cfg  cfg;
    int           timeout_ms;
    int           err;
    char          errstr[256];
    /* a cluster */
    hn_rmap       map;
    rcl_node      node[HN_RMAP_NODES_MAX];
    uint64_t      refreshed_us;
    bool          want_refresh;
    rcl_cmd      *q;
    size_t        nq, qcap, ndone, ntaken;   /* replies: [0, ndone) in; [0, ntaken) handed out */
    rcl_script   *scripts;
    int           nscripts;
    bool          replicas;             /* hn_rcl_read_replicas */
    bool          readonly[HN_RMAP_NODES_MAX];   /* READONLY sent on that node's connection */
    uint64_t      rnd;
    char          nodename[300];
};

/* A unit: one command, or MULTI … EXEC, sent to one node together. */
typedef struct rcl_unit {
    size_t   first, n;
    int      slot;
    int      ask;                       /* node to send ASKING to, or -1 */
    int      redirects, tries, loads;
    uint64_t not_before_us;
    int      sent_to;                   /* -1: not in this round */
    const char *load;                   /* a script body to load first (NOSCRIPT) */
    bool     done;
} rcl_unit;

static void fail(hn_rcl *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(hn_rcl *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errstr, sizeof(c->errstr), fmt, ap);
    va_end(ap);
    c->err = REDIS_ERR_OTHER;
}

static void node_close(hn_rcl *c, int i) {
    if (c->node[i].ctx) redisFree(c->node[i].ctx);
    c->node[i].ctx = NULL;
    c->readonly[i] = false;
}

/* The node's connection, made when missing; NULL when it cannot be. */
static redisContext *node_ctx(hn_rcl *c, int i) {
    if (c->node[i].ctx) return c->node[i].ctx;
    hn_redis_addr a = c->cfg.seed[0];
    snprintf(a.host, sizeof(a.host), "%s", c->map.nodes[i].host);
    a.port = c->map.nodes[i].port;
    a.path[0] = '\0';
    a.db = 0;
    char err[256];
    c->node[i].ctx = hn_redis_connect(&a, c->timeout_ms, err, sizeof(err));
    if (!c->node[i].ctx) hn_debug("event=redis_node_unreachable node=%s:%d err='%s'", a.host, a.port, err);
    c->node[i].stat = node_stat(a.host, a.port);
    return c->node[i].ctx;
}

/* Reads CLUSTER SLOTS from a node we are connected to, else from a seed;
 * keeps the connections of nodes still in the map. */
static int refresh(hn_rcl *c) {
    hn_rmap *nm = hn_xmalloc(sizeof(*nm));
    char err[256] = "no node answered";
    bool got = false;
    for (int i = 0; i < c->map.nnodes && !got; i++) {
        if (!c->node[i].ctx) continue;
        redisReply *r = redisCommand(c->node[i].ctx, "CLUSTER SLOTS");
        if (r && hn_rmap_parse(r, c->map.nodes[i].host, nm, err, sizeof(err)) == HN_OK && nm->nnodes > 0) got = true;
        if (r) freeReplyObject(r);
        else node_close(c, i);
    }
    for (int s = 0; s < c->cfg.nseeds && !got; s++) {
        char e2[256];
        redisContext *x = hn_redis_connect(&c->cfg.seed[s], c->timeout_ms, e2, sizeof(e2));
        if (!x) {
            snprintf(err, sizeof(err), "%s", e2);
            continue;
        }
        redisReply *r = redisCommand(x, "CLUSTER SLOTS");
        if (r && r->type == REDIS_REPLY_ERROR)
            snprintf(err, sizeof(err), "%s:%d: %s", c->cfg.seed[s].host, c->cfg.seed[s].port, r->str);
        else if (r && hn_rmap_parse(r, c->cfg.seed[s].host, nm, err, sizeof(err)) == HN_OK && nm->nnodes > 0)
            got = true;
        if (r) freeReplyObject(r);
        redisFree(x);
    }
    c->refreshed_us = hn_mono_us();
    c->want_refresh = false;
    atomic_fetch_add(&counters[K_REFRESH], 1);
    if (!got) {
        free(nm);
        snprintf(c->errstr, sizeof(c->errstr), "redis cluster slots: %.200s", err);
        return HN_ERR;
    }
    rcl_node keep[HN_RMAP_NODES_MAX] = {0};
    for (int i = 0; i < c->map.nnodes; i++) {
        if (!c->node[i].ctx) continue;
        int j;
        for (j = 0; j < nm->nnodes; j++)
            if (nm->nodes[j].port == c->map.nodes[i].port && strcmp(nm->nodes[j].host, c->map.nodes[i].host) == 0)
                break;
        if (j < nm->nnodes) keep[j] = c->node[i];
        else redisFree(c->node[i].ctx);
    }
    memcpy(c->node, keep, sizeof(keep));
    memset(c->readonly, 0, sizeof(c->readonly));   /* renumbered: READONLY is asked again */
    c->map = *nm;
    free(nm);
    return HN_OK;
}

hn_rcl *hn_rcl_connect(const hn_redis_cfg *cfg, int timeout_ms, char *err, size_t cap) {
    hn_rcl *c = hn_xcalloc(1, sizeof(*c));
    c->cfg = *cfg;
    c->timeout_ms = timeout_ms;
    if (!cfg->cluster) {
        c->one = hn_redis_connect(&cfg->seed[0], timeout_ms, err, cap);
        if (!c->one) {
            free(c);
            return NULL;
        }
        return c;
    }
    atomic_store(&any_cluster, true);
    c->rnd = hn_mono_us() ^ ((uint64_t)(uintptr_t)c << 16);
    if (refresh(c) != HN_OK) {
        snprintf(err, cap, "%s", c->errstr);
        free(c);
        return NULL;
    }
    if (c->map.unassigned > 0)
        hn_warn("event=redis_cluster_incomplete unassigned_slots=%d", c->map.unassigned);
    return c;
}

static void queue_reset(hn_rcl *c) {
    for (size_t i = 0; i < c->nq; i++) {
        free(c->q[i].buf);
        if (c->q[i].reply && i >= c->ntaken) freeReplyObject(c->q[i].reply);
    }
    c->nq = c->ndone = c->ntaken = 0;
}

void hn_rcl_free(hn_rcl *c) {
    if (!c) return;
    if (c->one) redisFree(c->one);
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++) node_close(c, i);
    queue_reset(c);
    free(c->q);
    for (int i = 0; i < c->nscripts; i++) free(c->scripts[i].body);
    free(c->scripts);
    free(c);
}

bool hn_rcl_cluster(const hn_rcl *c) { return c->one == NULL; }

int hn_rcl_fd(const hn_rcl *c) { return c->one ? c->one->fd : -1; }

int hn_rcl_err(const hn_rcl *c) { return c->one ? c->one->err : c->err; }

const char *hn_rcl_errstr(const hn_rcl *c) { return c->one ? c->one->errstr : c->errstr; }

/* ---- queueing ---------------------------------------------------------- */

static int enqueue(hn_rcl *c, char *buf, size_t len) {
    hn_rcmd rc;
    if (hn_rcmd_scan(buf, len, &rc) != HN_OK || rc.len != len) {
        free(buf);
        return REDIS_ERR;
    }
    if (c->ntaken == c->nq && c->nq) queue_reset(c);
    if (c->nq == c->qcap) {
        c->qcap = c->qcap ? 2 * c->qcap : 16;
        c->q = hn_xreallocarray(c->q, c->qcap, sizeof(*c->q));
    }
    c->q[c->nq++] = (rcl_cmd){buf, len, rc.slot, rc.flags, NULL};
    if (rc.flags & HN_RCMD_CROSSSLOT) {
        atomic_fetch_add(&counters[K_CROSSSLOT], 1);
        hn_warn("event=redis_crossslot cmd='%.*s' key='%.*s'", (int)rc.namelen, rc.name, (int)rc.keylen, rc.key);
    }
    return REDIS_OK;
}

static int vappend(hn_rcl *c, const char *fmt, va_list ap) {
    if (c->one) return redisvAppendCommand(c->one, fmt, ap);
    char *cmd;
    int len = redisvFormatCommand(&cmd, fmt, ap);
    if (len < 0) return REDIS_ERR;
    return enqueue(c, cmd, (size_t)len);
}

int hn_rcl_append(hn_rcl *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rv = vappend(c, fmt, ap);
    va_end(ap);
    return rv;
}

int hn_rcl_append_argv(hn_rcl *c, int argc, const char **argv, const size_t *lens) {
    if (c->one) return redisAppendCommandArgv(c->one, argc, argv, lens);
    char *cmd;
    int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
    if (len < 0) return REDIS_ERR;
    return enqueue(c, cmd, (size_t)len);
}

int hn_rcl_append_formatted(hn_rcl *c, const char *cmd, size_t len) {
    if (c->one) return redisAppendFormattedCommand(c->one, cmd, len);
    char *copy = hn_xmalloc(len ? len : 1);
    memcpy(copy, cmd, len);
    return enqueue(c, copy, len);
}

/* ---- a round of the cluster ------------------------------------------- */

void hn_rcl_read_replicas(hn_rcl *c, bool on) { c->replicas = on && c->one == NULL; }

/* A replica of master m that answers, READONLY sent; -1: none. READONLY
 * is asked (blocking) only of a connection nothing was written to in this
 * round, so that no reply is read out of turn. */
static int replica_of(hn_rcl *c, int m, const bool *wrote) {
    for (int j = 0; j < c->map.nnodes; j++) {
        if (c->map.nodes[j].master != m) continue;
        if (!c->readonly[j] && wrote[j]) continue;
        redisContext *x = node_ctx(c, j);
        if (!x) continue;
        if (!c->readonly[j]) {
            redisReply *r = redisCommand(x, "READONLY");
            bool ok = r && r->type == REDIS_REPLY_STATUS;
            if (r) freeReplyObject(r);
            if (!ok) {
                node_close(c, j);
                continue;
            }
            c->readonly[j] = true;
        }
        return j;
    }
    return -1;
}

static int any_master(const hn_rmap *m) {
    for (int s = 0; s < HN_SLOTS; s++)
        if (m->slot[s] != HN_RMAP_NONE) return m->slot[s];
    return -1;
}

/* "MOVED 3999 127.0.0.1:6381" / "ASK …": the slot and target node. */
static int parse_redirect(hn_rcl *c, const char *s, int *slot) {
    const char *sp = strchr(s, ' ');
    if (!sp) return -1;
    char *end;
    long sl = strtol(sp + 1, &end, 10);
    if (*end != ' ' || sl < 0 || sl >= HN_SLOTS) return -1;
    const char *hp = end + 1, *colon = strrchr(hp, ':');
    if (!colon) return -1;
    char host[256];
    size_t hl = (size_t)(colon - hp);
    if (hl >= sizeof(host)) return -1;
    memcpy(host, hp, hl);
    host[hl] = '\0';
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535) return -1;
    *slot = (int)sl;
    /* "" endpoint (cluster-preferred-endpoint-type unknown-endpoint): the node we asked */
    return hl == 0 ? -1 : hn_rmap_node_at(&c->map, host, port);
}

static bool is(const redisReply *r, const char *prefix) {
    return r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, prefix, strlen(prefix)) == 0;
}

static uint64_t backoff_us(hn_rcl *c, int tries) {
    uint64_t ms = RCL_BACKOFF_MIN_MS << (tries < 6 ? tries : 6);
    if (ms > RCL_BACKOFF_MAX_MS) ms = RCL_BACKOFF_MAX_MS;
    c->rnd ^= c->rnd << 13;
    c->rnd ^= c->rnd >> 7;
    c->rnd ^= c->rnd << 17;
    return (ms * 500 + c->rnd % (ms * 500)) ;          /* ms/2 .. ms, in µs */
}

static rcl_script *script_of(hn_rcl *c, const rcl_cmd *q) {
    hn_rcmd rc;
    if (hn_rcmd_scan(q->buf, q->len, &rc) != HN_OK || rc.namelen != 7 || strncasecmp(rc.name, "EVALSHA", 7) != 0)
        return NULL;
    /* argv[1] is the sha: "*N\r\n$7\r\nEVALSHA\r\n$40\r\n<sha>" */
    const char *p = rc.name + 7 + 2;
    if ((size_t)(p - q->buf) + 5 + 40 > q->len || memcmp(p, "$40\r\n", 5) != 0) return NULL;
    for (int i = 0; i < c->nscripts; i++)
        if (memcmp(c->scripts[i].sha, p + 5, 40) == 0) return &c->scripts[i];
    return NULL;
}

/* What the unit's replies ask of us. */
enum { U_FINAL, U_NOW, U_LATER, U_BROKEN };

static int judge(hn_rcl *c, rcl_unit *u) {
    for (size_t k = u->first; k < u->first + u->n; k++) {
        redisReply *r = c->q[k].reply;
        if (!r || r->type != REDIS_REPLY_ERROR) continue;
        int slot, to;
        if (is(r, "MOVED ")) {
            atomic_fetch_add(&counters[K_MOVED], 1);
            if ((to = parse_redirect(c, r->str, &slot)) < 0) return U_FINAL;
            hn_rmap_moved(&c->map, (uint16_t)slot, c->map.nodes[to].host, c->map.nodes[to].port);
            c->want_refresh = true;
            u->ask = -1;
            return ++u->redirects > RCL_REDIRECTS ? U_FINAL : U_NOW;
        }
        if (is(r, "ASK ")) {
            atomic_fetch_add(&counters[K_ASK], 1);
            if ((to = parse_redirect(c, r->str, &slot)) < 0) return U_FINAL;
            u->ask = to;
            return ++u->redirects > RCL_REDIRECTS ? U_FINAL : U_NOW;
        }
        if (is(r, "TRYAGAIN")) { atomic_fetch_add(&counters[K_TRYAGAIN], 1); return U_LATER; }
        if (is(r, "CLUSTERDOWN") || is(r, "MASTERDOWN")) {
            atomic_fetch_add(&counters[K_CLUSTERDOWN], 1);
            c->want_refresh = true;
            return U_LATER;
        }
        if (is(r, "READONLY")) {                /* the node is a replica now: a failover */
            atomic_fetch_add(&counters[K_READONLY], 1);
            c->want_refresh = true;
            return U_LATER;
        }
        if (is(r, "LOADING")) { atomic_fetch_add(&counters[K_LOADING], 1); return U_LATER; }
        if (is(r, "NOSCRIPT")) {
            /* load it there in the next round, just before the unit (the
             * node's other replies of this round are still to be read) */
            atomic_fetch_add(&counters[K_NOSCRIPT], 1);
            rcl_script *s = script_of(c, &c->q[k]);
            if (!s || u->loads++ >= 2) return U_FINAL;
            u->load = s->body;
            return U_NOW;
        }
        if (is(r, "CROSSSLOT")) {
            if (!(c->q[k].flags & HN_RCMD_CROSSSLOT)) {       /* else counted when queued */
                atomic_fetch_add(&counters[K_CROSSSLOT], 1);
                hn_warn("event=redis_crossslot err='%s'", r->str);
            }
            return U_FINAL;
        }
    }
    return U_FINAL;
}

static void unit_clear(hn_rcl *c, rcl_unit *u) {
    for (size_t k = u->first; k < u->first + u->n; k++)
        if (c->q[k].reply) {
            freeReplyObject(c->q[k].reply);
            c->q[k].reply = NULL;
        }
}

/* Reads one reply from a node: HN_OK, HN_AGAIN (the node is lost: retry
 * elsewhere or later), HN_ERR (it did not answer in time: the client is broken). */
static int read_one(hn_rcl *c, int node, redisReply **r) {
    *r = NULL;
    if (redisGetReply(c->node[node].ctx, (void **)r) == REDIS_OK) return HN_OK;
    int e = errno;
    redisContext *x = c->node[node].ctx;
    if (x->err == REDIS_ERR_IO && (e == EAGAIN || e == EWOULDBLOCK)) {
        fail(c, "redis %s:%d: no reply in %d ms", c->map.nodes[node].host, c->map.nodes[node].port, c->timeout_ms);
        return HN_ERR;
    }
    hn_debug("event=redis_node_lost node=%s:%d err='%s'", c->map.nodes[node].host, c->map.nodes[node].port, x->errstr);
    node_close(c, node);
    return HN_AGAIN;
}

static void sleep_us(uint64_t us) {
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static int later(hn_rcl *c, rcl_unit *u, uint64_t deadline) {
    uint64_t at = hn_mono_us() + backoff_us(c, u->tries++);
    if (at > deadline) return HN_ERR;
    u->not_before_us = at;
    return HN_OK;
}

/* Runs q[ndone, nq) to their final replies. */
static int run(hn_rcl *c) {
    size_t nunits = 0;
    rcl_unit *u = hn_xcalloc(c->nq - c->ndone, sizeof(*u));
    for (size_t i = c->ndone; i < c->nq;) {
        rcl_unit *x = &u[nunits++];
        *x = (rcl_unit){.first = i, .n = 1, .slot = c->q[i].slot, .ask = -1, .sent_to = -1};
        if (c->q[i].flags & HN_RCMD_MULTI) {
            while (i + x->n < c->nq && !(c->q[i + x->n - 1].flags & HN_RCMD_EXEC)) x->n++;
            for (size_t k = i; k < i + x->n && x->slot < 0; k++) x->slot = c->q[k].slot;
        }
        i += x->n;
    }
    uint64_t deadline = hn_mono_us() + (uint64_t)c->cfg.retry_ms * 1000;
    size_t left = nunits;
    int rv = HN_OK;
    while (left > 0 && rv == HN_OK) {
        if (c->want_refresh && hn_mono_us() - c->refreshed_us >= RCL_REFRESH_GAP_US) {
            if (refresh(c) != HN_OK) hn_debug("event=redis_refresh_failed err='%s'", c->errstr);
            c->errstr[0] = '\0';
            /* the nodes are numbered anew: an ASK target is asked for again */
            for (size_t j = 0; j < nunits; j++) u[j].ask = -1;
        }
        /* route and write */
        uint64_t now = hn_mono_us(), wake = UINT64_MAX;
        bool wrote[HN_RMAP_NODES_MAX] = {0};
        for (size_t j = 0; j < nunits; j++) {
            rcl_unit *x = &u[j];
            x->sent_to = -1;
            if (x->done) continue;
            if (x->not_before_us > now) {
                if (x->not_before_us < wake) wake = x->not_before_us;
                continue;
            }
            int to = x->ask >= 0 ? x->ask : x->slot >= 0 ? hn_rmap_master(&c->map, (uint16_t)x->slot)
                                                         : any_master(&c->map);
            if (c->replicas && to >= 0 && x->ask < 0 && x->n == 1 && x->redirects == 0 &&
                (c->q[x->first].flags & HN_RCMD_READONLY)) {
                int rep = replica_of(c, to, wrote);
                if (rep >= 0) to = rep;
            }
            redisContext *ctx = to >= 0 ? node_ctx(c, to) : NULL;
            if (!ctx) {
                atomic_fetch_add(&counters[to >= 0 ? K_CONNECTION : K_CLUSTERDOWN], 1);
                c->want_refresh = true;
                if (later(c, x, deadline) != HN_OK) {
                    fail(c, "redis cluster: no node for slot %d within %d ms", x->slot, c->cfg.retry_ms);
                    rv = HN_ERR;
                    break;
                }
                if (x->not_before_us < wake) wake = x->not_before_us;
                continue;
            }
            if (x->load) redisAppendCommand(ctx, "SCRIPT LOAD %s", x->load);
            /* one ASKING: it holds for the next command, and through a
             * MULTI … EXEC (queued commands keep the flag until EXEC) */
            if (x->ask >= 0) redisAppendCommand(ctx, "ASKING");
            for (size_t k = x->first; k < x->first + x->n; k++)
                redisAppendFormattedCommand(ctx, c->q[k].buf, c->q[k].len);
            x->sent_to = to;
            wrote[to] = true;
        }
        if (rv != HN_OK) break;
        for (int i = 0; i < c->map.nnodes; i++) {
            if (!wrote[i]) continue;
            int done = 0;
            while (!done)
                if (redisBufferWrite(c->node[i].ctx, &done) != REDIS_OK) {
                    node_close(c, i);
                    break;
                }
        }
        /* read, in command order */
        bool any = false;
        for (size_t j = 0; j < nunits && rv == HN_OK; j++) {
            rcl_unit *x = &u[j];
            int to = x->sent_to;
            if (to < 0) continue;
            any = true;
            int got = c->node[to].ctx ? HN_OK : HN_AGAIN;
            if (x->load && got == HN_OK) {
                redisReply *r;
                if ((got = read_one(c, to, &r)) == HN_OK) {
                    freeReplyObject(r);
                    x->load = NULL;
                }
            }
            if (x->ask >= 0 && got == HN_OK) {
                redisReply *r;
                if ((got = read_one(c, to, &r)) == HN_OK) freeReplyObject(r);
            }
            for (size_t k = x->first; k < x->first + x->n && got == HN_OK; k++) {
                redisReply *r;
                if ((got = read_one(c, to, &r)) == HN_OK) c->q[k].reply = r;
            }
            if (got == HN_ERR) {
                rv = HN_ERR;
                break;
            }
            int verdict = got == HN_AGAIN ? U_BROKEN : judge(c, x);
            if (c->node[to].stat) {
                atomic_fetch_add(&c->node[to].stat->commands, x->n);
                if (verdict != U_FINAL) atomic_fetch_add(&c->node[to].stat->errors, 1);
            }
            if (verdict == U_FINAL) {
                x->done = true;
                left--;
                continue;
            }
            if (verdict != U_NOW && later(c, x, deadline) != HN_OK) {
                if (verdict == U_BROKEN) {
                    fail(c, "redis cluster: node %s:%d lost, no answer within %d ms", c->map.nodes[to].host,
                         c->map.nodes[to].port, c->cfg.retry_ms);
                    rv = HN_ERR;
                    break;
                }
                x->done = true;             /* out of time: hand back what it answered */
                left--;
                continue;
            }
            unit_clear(c, x);
            if (verdict == U_BROKEN) {
                atomic_fetch_add(&counters[K_CONNECTION], 1);
                c->want_refresh = true;
                x->ask = -1;
            }
        }
        if (rv == HN_OK && !any && left > 0 && wake != UINT64_MAX) {
            uint64_t t = hn_mono_us();
            if (wake > t) sleep_us(wake - t);
        }
    }
    free(u);
    if (rv != HN_OK) {
        for (int i = 0; i < HN_RMAP_NODES_MAX; i++) node_close(c, i);
        return REDIS_ERR;
    }
    c->ndone = c->nq;
    return REDIS_OK;
}

int hn_rcl_get_reply(hn_rcl *c, void **reply) {
    if (c->one) return redisGetReply(c->one, reply);
    *reply = NULL;
    if (c->err) return REDIS_ERR;
    if (c->ntaken == c->ndone) {
        if (c->ndone == c->nq) {
            fail(c, "redis: a reply asked for, no command sent");
            return REDIS_ERR;
        }
        if (run(c) != REDIS_OK) return REDIS_ERR;
    }
    *reply = c->q[c->ntaken].reply;
    c->q[c->ntaken++].reply = NULL;
    if (c->ntaken == c->nq) queue_reset(c);
    return REDIS_OK;
}

redisReply *hn_rcl_command(hn_rcl *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = NULL;
    if (c->one) r = redisvCommand(c->one, fmt, ap);
    else if (vappend(c, fmt, ap) == REDIS_OK) hn_rcl_get_reply(c, (void **)&r);
    va_end(ap);
    return r;
}

redisReply *hn_rcl_command_argv(hn_rcl *c, int argc, const char **argv, const size_t *lens) {
    if (c->one) return redisCommandArgv(c->one, argc, argv, lens);
    redisReply *r = NULL;
    if (hn_rcl_append_argv(c, argc, argv, lens) == REDIS_OK) hn_rcl_get_reply(c, (void **)&r);
    return r;
}

/* ---- scripts, masters, where keys live ---------------------------------- */

int hn_rcl_script(hn_rcl *c, const char *body, char sha[41]) {
    /* SCRIPT LOAD is keyless: on a cluster it goes to some master, and the
     * others load the body when they answer NOSCRIPT */
    redisReply *r = hn_rcl_command(c, "SCRIPT LOAD %s", body);
    if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
        if (r) freeReplyObject(r);
        return HN_ERR;
    }
    memcpy(sha, r->str, 40);
    sha[40] = '\0';
    freeReplyObject(r);
    if (c->one) return HN_OK;
    for (int i = 0; i < c->nscripts; i++)
        if (memcmp(c->scripts[i].sha, sha, 40) == 0) return HN_OK;
    c->scripts = hn_xreallocarray(c->scripts, (size_t)c->nscripts + 1, sizeof(*c->scripts));
    memcpy(c->scripts[c->nscripts].sha, sha, 41);
    c->scripts[c->nscripts].body = hn_xstrdup(body);
    c->nscripts++;
    return HN_OK;
}

static int master_index(hn_rcl *c, int which) {
    bool owns[HN_RMAP_NODES_MAX] = {0};
    for (int s = 0; s < HN_SLOTS; s++)
        if (c->map.slot[s] != HN_RMAP_NONE) owns[c->map.slot[s]] = true;
    for (int i = 0, k = 0; i < c->map.nnodes; i++)
        if (owns[i] && k++ == which) return i;
    return -1;
}

int hn_rcl_masters(hn_rcl *c) {
    if (c->one) return 1;
    int n = 0;
    while (master_index(c, n) >= 0) n++;
    return n;
}

redisReply *hn_rcl_command_on(hn_rcl *c, int master, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = NULL;
    if (c->one) {
        r = master == 0 ? redisvCommand(c->one, fmt, ap) : NULL;
    } else {
        int i = master_index(c, master);
        redisContext *x = i >= 0 ? node_ctx(c, i) : NULL;
        if (x && !(r = redisvCommand(x, fmt, ap))) {
            node_close(c, i);
            c->want_refresh = true;
        }
    }
    va_end(ap);
    return r;
}

const char *hn_rcl_node_of(hn_rcl *c, const char *key, size_t len) {
    if (c->one) {
        const hn_redis_addr *a = &c->cfg.seed[0];
        snprintf(c->nodename, sizeof(c->nodename), "%s:%d", a->path[0] ? a->path : a->host, a->path[0] ? 0 : a->port);
        return c->nodename;
    }
    int i = hn_rmap_master(&c->map, hn_slot(key, len));
    if (i < 0) return "";
    snprintf(c->nodename, sizeof(c->nodename), "%s:%d", c->map.nodes[i].host, c->map.nodes[i].port);
    return c->nodename;
}

/* ---- metrics ------------------------------------------------------------ */

void hn_rcl_metrics(hn_buf *b) {
    if (!atomic_load(&any_cluster)) return;
    static const char *const redirect[] = {"moved", "ask"};
    hn_prom_family(b, "herenow_redis_redirects_total", HN_PROM_COUNTER,
                   "Redis Cluster redirects followed, by kind (MOVED: the slot moved; ASK: it is moving).");
    for (int k = K_MOVED; k <= K_ASK; k++)
        hn_prom_u64(b, "herenow_redis_redirects_total", HN_PROM_L1("kind", redirect[k - K_MOVED]),
                    atomic_load(&counters[k]));
    static const char *const retry[] = {"tryagain", "clusterdown", "connection", "readonly", "loading"};
    hn_prom_family(b, "herenow_redis_retries_total", HN_PROM_COUNTER,
                   "Redis Cluster commands sent again after a backoff, by reason.");
    for (int k = K_TRYAGAIN; k <= K_LOADING; k++)
        hn_prom_u64(b, "herenow_redis_retries_total", HN_PROM_L1("reason", retry[k - K_TRYAGAIN]),
                    atomic_load(&counters[k]));
    hn_prom_family(b, "herenow_redis_slot_refreshes_total", HN_PROM_COUNTER,
                   "Reads of the Redis Cluster slot map (CLUSTER SLOTS).");
    hn_prom_u64(b, "herenow_redis_slot_refreshes_total", HN_PROM_L0, atomic_load(&counters[K_REFRESH]));
    hn_prom_family(b, "herenow_redis_crossslot_total", HN_PROM_COUNTER,
                   "Commands whose keys span slots (a bug of herenow's: never retried).");
    hn_prom_u64(b, "herenow_redis_crossslot_total", HN_PROM_L0, atomic_load(&counters[K_CROSSSLOT]));
    hn_prom_family(b, "herenow_redis_noscript_total", HN_PROM_COUNTER,
                   "NOSCRIPT answers (a script loaded on the node that lacked it).");
    hn_prom_u64(b, "herenow_redis_noscript_total", HN_PROM_L0, atomic_load(&counters[K_NOSCRIPT]));
    int n = atomic_load(&nnode_stats);
    hn_prom_family(b, "herenow_redis_node_commands_total", HN_PROM_COUNTER,
                   "Commands sent to each Redis Cluster node.");
    for (int i = 0; i < n; i++)
        hn_prom_u64(b, "herenow_redis_node_commands_total", HN_PROM_L1("node", node_stats[i].name),
                    atomic_load(&node_stats[i].commands));
    hn_prom_family(b, "herenow_redis_node_redirects_total", HN_PROM_COUNTER,
                   "Commands a Redis Cluster node redirected, refused for now, or lost.");
    for (int i = 0; i < n; i++)
        hn_prom_u64(b, "herenow_redis_node_redirects_total", HN_PROM_L1("node", node_stats[i].name),
                    atomic_load(&node_stats[i].errors));
}
