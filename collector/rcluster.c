/*
 * rcluster.c: a worker's groups on a Redis Cluster (rcluster.h).
 *
 *   send(group) ──► the group's bytes kept until it is done (take gives them
 *                   back for the spool)
 *               ──► split per master (common/rsplit.h over the slot map):
 *                   one "share" per node, sent on that node's hn_rconn (the
 *                   single-server connection, with its reconnects, reply
 *                   timeout and "not now" retries: CLUSTERDOWN, LOADING …
 *                   send a node's shares again after a backoff)
 *   a node's error replies (the rconn error callback): MOVED updates the
 *   slot and sends the command to the new master at once (and asks for a
 *   new map: common/rshared.h); ASK sends ASKING and the command to the node
 *   named; at most HOPS redirects, then the command counts as an error.
 *   TRYAGAIN (a multi-key command on a slot whose keys are half moved: the
 *   session-end script) sends that command alone again after a backoff
 *   (TRYAGAIN_MS doubling to TRYAGAIN_MAX_MS) for as long as the slot's
 *   move may take (HERENOW_REDIS_RETRY_MS, at least TRYAGAIN_BUDGET_MS);
 *   the node's pipeline goes on meanwhile, and later groups' commands for
 *   the slot may run before it (multi-key commands must allow that: the
 *   end script checks the session's sequence and score).
 *   (As a "not now" it would send the node's whole backlog again on a new
 *   connection: megabytes under load, doubled stream entries, MOVED storms.)
 *   a share done ──► its group's count of commands left; groups are done
 *   (the worker's done callback) in the order they were sent.
 *
 * Up means: a slot map is known that names a master for every slot, no
 * command waits for one (parked, below), and every master's connection is
 * up. A master lost turns it down: the worker spools, takes
 * the groups back (hn_rconn_take: whole groups, shares that other nodes
 * already ran included: a command may run twice, as rconn.h allows) and
 * replays them once the replica was promoted and the new map says so.
 * When a new map moves a lost node's slots elsewhere, what it still holds
 * goes to the new owners.
 *
 * A map that leaves a slot without a master (slots deleted, a node
 * forgotten) is down too, until a map covers every slot again: a command
 * for such a slot waits in its group (parked), the group does not complete,
 * and the worker spools it with the rest. A command is never dropped for
 * want of a master.
 */
#include "collector/rcluster.h"

#include "common/buf.h"
#include "common/log.h"
#include "common/rcl.h"
#include "common/rshared.h"
#include "common/rsplit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define HOPS        5
#define POLL_MS     50
#define TRYAGAIN_MS        20
#define TRYAGAIN_MAX_MS    250
#define TRYAGAIN_BUDGET_MS 30000

typedef struct conn {
    char               host[256];
    int                port;
    hn_rconn          *rc;
    struct hn_rcluster *cl;
    int                index;
    bool               up, master;
} conn;

typedef struct retry {               /* a command that got TRYAGAIN, to send again */
    uint64_t seq;
    uint32_t idx;
    int      tries;
    uint64_t due_ms;
} retry;

typedef struct parked {              /* a command that found no master */
    uint64_t seq;
    uint32_t idx;
} parked;

typedef struct outer {               /* a worker's group */
    size_t         off, len;         /* its bytes in cl->buf */
    uint32_t       ncmds, left, nerr;
    uint32_t       left1;            /* commands before its stream appends, not done yet */
    bool           later_ready;      /* left1 is 0: its stream appends may go */
    bool           later_sent;
    uint64_t       tag;
    hn_rsplit_cmd *cmds;             /* NULL until routed */
} outer;

typedef struct share {               /* what one node runs of a group */
    uint32_t  gen;                   /* 0: free */
    uint64_t  seq;                   /* its group */
    int       conn;
    uint32_t  n;
    uint32_t *idx;                   /* the commands' indexes in the group */
    uint8_t  *seen;                  /* 0, SEEN_REDIRECTED (sent on elsewhere), SEEN_ERROR (counted) */
    uint32_t  nerr;
    bool      asking;                /* sent as ASKING, command pairs */
    int       hops;                  /* MOVED and ASK followed */
    int       tries;                 /* TRYAGAIN met */
} share;

/* A command's error reply, once: a share sent again after a reconnect
 * (rconn resends what was not acknowledged) must not redirect or count it
 * twice. */
enum { SEEN_REDIRECTED = 1, SEEN_ERROR = 2 };

/* A tick's stream appends (XADD) go out once the tick's other commands are
 * done: the live hub reads a record, then the session hash it updated, and
 * on one server the pipeline keeps that order; across masters only waiting
 * does (one round trip more for the records, on a cluster only). And they
 * go out in group order (later_next), so that a shard's stream keeps the
 * order of a session's beacons even when an earlier tick's other commands
 * took longer. They wait for the next group (the worker's next tick), or
 * flush_wait when none comes, and go out with it: the shares of a send
 * are written corked, one write per node, so a master receives one pipeline
 * a tick rather than two (every pipeline costs Redis a wake-up, a read and
 * a write). */
#define LATER 0x80000000u

struct hn_rcluster {
    struct event_base *base;
    hn_redis_cfg       cfg;
    hn_rconn_cbs       cbs;
    void              *ctx;
    int                reply_ms, connect_ms;
    hn_rmap           *map;
    uint64_t           mapver;
    conn              *conns[HN_RMAP_NODES_MAX];
    hn_buf             buf;
    size_t             head;
    outer             *o;
    uint32_t           ocap, ohead, ocount;
    uint64_t           first_seq;        /* the seq of o[ohead] */
    share             *sh;
    uint32_t           nsh, shcap, gen;
    struct event      *poll;
    struct event      *state_ev;         /* a node's up/down, told to the worker outside our calls */
    char               state_why[300];
    uint64_t           later_next;       /* the group whose stream appends go next */
    struct event      *later_ev;         /* flush_wait after appends became ready */
    struct timeval     later_tv;
    parked            *pk;               /* commands waiting for a map that names their master */
    uint32_t           npk, pkcap;
    uint8_t            pkslot[HN_SLOTS / 8];  /* slots with a parked command: later ones wait behind it */
    retry             *rt;               /* commands to send again after a TRYAGAIN */
    uint32_t           nrt, rtcap;
    struct event      *retry_ev;
    bool               covered;          /* the map names a master for every slot */
    bool               told_uncovered, told_parked;
    bool               started, halted, was_up;
    int                tee_fd;
    char               errtext[256];
    hn_buf             tmp;
};

static void node_done(void *ctx, uint64_t tag, uint32_t ncmds, uint32_t nerr, const char *errtext);
static void node_state(void *ctx, bool up, const char *why);
static void node_error(void *ctx, uint64_t tag, uint32_t index, const char *errtext);
static void route_later(hn_rcluster *cl, uint64_t seq);
static void route_cmds(hn_rcluster *cl, uint64_t seq, const uint32_t *idx, uint32_t n);

/* ---- connections -------------------------------------------------------- */

static int conn_of(hn_rcluster *cl, const char *host, int port) {
    int freei = -1;
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++) {
        conn *n = cl->conns[i];
        if (!n) {
            if (freei < 0) freei = i;
            continue;
        }
        if (n->port == port && strcmp(n->host, host) == 0) return i;
    }
    if (freei < 0) return -1;
    conn *n = hn_xcalloc(1, sizeof(*n));
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    n->cl = cl;
    n->index = freei;
    hn_redis_addr a = cl->cfg.seed[0];
    snprintf(a.host, sizeof(a.host), "%s", host);
    a.port = port;
    a.path[0] = '\0';
    a.db = 0;
    hn_rconn_cbs cbs = {node_done, node_state, node_error};
    n->rc = hn_rconn_create(cl->base, &a, &cbs, n);
    hn_rconn_pass_tryagain(n->rc);
    hn_rconn_set_reply_timeout(n->rc, cl->reply_ms);
    hn_rconn_set_connect_timeout(n->rc, cl->connect_ms);
    cl->conns[freei] = n;
    if (cl->started && !cl->halted) hn_rconn_start(n->rc);
    return freei;
}

static int conn_of_slot(hn_rcluster *cl, int slot) {
    int node = -1;
    if (slot >= 0) node = hn_rmap_master(cl->map, (uint16_t)slot);
    else
        for (int s = 0; s < HN_SLOTS && node < 0; s++) node = hn_rmap_master(cl->map, (uint16_t)s);
    return node < 0 ? -1 : conn_of(cl, cl->map->nodes[node].host, cl->map->nodes[node].port);
}

/* Where a command for slot goes now: its master's connection, or -1 (park
 * it) when the map names none or an earlier command of that slot is parked
 * (a slot's commands keep their order). */
static int route_of(hn_rcluster *cl, int slot) {
    if (cl->npk > 0 && slot >= 0 && (cl->pkslot[slot >> 3] & (1u << (slot & 7)))) return -1;
    return conn_of_slot(cl, slot);
}

static void conn_free(hn_rcluster *cl, int i) {
    hn_rconn_destroy(cl->conns[i]->rc);
    free(cl->conns[i]);
    cl->conns[i] = NULL;
}

/* ---- groups and shares -------------------------------------------------- */

static outer *outer_of(hn_rcluster *cl, uint64_t seq) {
    if (seq < cl->first_seq || seq - cl->first_seq >= cl->ocount) return NULL;
    return &cl->o[(cl->ohead + (seq - cl->first_seq)) % cl->ocap];
}

static share *share_of(hn_rcluster *cl, uint64_t tag) {
    uint32_t i = (uint32_t)tag, gen = (uint32_t)(tag >> 32);
    return i < cl->nsh && cl->sh[i].gen == gen && gen != 0 ? &cl->sh[i] : NULL;
}

static void share_free(share *s) {
    free(s->idx);
    free(s->seen);
    memset(s, 0, sizeof(*s));
}

/* Sends commands idx[0..n) of group seq to connection ci as one share. */
static void send_share(hn_rcluster *cl, uint64_t seq, const uint32_t *idx, uint32_t n, int ci, bool asking,
                       int hops, int tries) {
    outer *o = outer_of(cl, seq);
    if (!o || n == 0) return;
    uint32_t i;
    for (i = 0; i < cl->nsh && cl->sh[i].gen != 0; i++) {}
    if (i == cl->nsh) {
        if (cl->nsh == cl->shcap) {
            cl->shcap = cl->shcap ? 2 * cl->shcap : 64;
            cl->sh = hn_xreallocarray(cl->sh, cl->shcap, sizeof(share));
        }
        memset(&cl->sh[cl->nsh], 0, sizeof(share));
        cl->nsh++;
    }
    share *s = &cl->sh[i];
    if (++cl->gen == 0) cl->gen = 1;
    *s = (share){.gen = cl->gen, .seq = seq, .conn = ci, .n = n, .asking = asking, .hops = hops, .tries = tries};
    s->idx = hn_xmalloc(n * sizeof(uint32_t));
    memcpy(s->idx, idx, n * sizeof(uint32_t));
    s->seen = hn_xcalloc(n, 1);
    hn_buf_reset(&cl->tmp);
    static const char asking_cmd[] = "*1\r\n$6\r\nASKING\r\n";
    const char *base = cl->buf.p + o->off;
    for (uint32_t k = 0; k < n; k++) {
        if (asking) hn_buf_append(&cl->tmp, asking_cmd, sizeof(asking_cmd) - 1);
        hn_buf_append(&cl->tmp, base + o->cmds[idx[k]].off, o->cmds[idx[k]].len);
    }
    uint64_t tag = (uint64_t)s->gen << 32 | i;
    hn_rconn_send(cl->conns[ci]->rc, cl->tmp.p, cl->tmp.len, asking ? 2 * n : n, tag);
}

/* Commands idx[0..n) of group seq have no master in the map (or no
 * connection to spare for it, or a command for their slot waits already):
 * they wait, still counted in their group, and the cluster is down until
 * on_poll routes them (it asks for maps meanwhile, and tries again each
 * poll). */
static void park(hn_rcluster *cl, uint64_t seq, const uint32_t *idx, uint32_t n) {
    outer *o = outer_of(cl, seq);
    if (cl->npk + n > cl->pkcap) {
        cl->pkcap = cl->npk + n > 2 * cl->pkcap ? cl->npk + n : 2 * cl->pkcap;
        cl->pk = hn_xreallocarray(cl->pk, cl->pkcap, sizeof(parked));
    }
    for (uint32_t j = 0; j < n; j++) {
        cl->pk[cl->npk++] = (parked){seq, idx[j]};
        int slot = o->cmds[idx[j]].slot;
        if (slot >= 0) cl->pkslot[slot >> 3] |= (uint8_t)(1u << (slot & 7));
    }
    if (!cl->told_parked)
        hn_warn("event=redis_cluster_parked commands=%u (no master for their slot: down until one)", n);
    cl->told_parked = true;
    hn_rshared_want();
    if (cl->was_up) {
        snprintf(cl->state_why, sizeof(cl->state_why), "no master for a slot in the slot map");
        event_active(cl->state_ev, 0, 0);
    }
}

/* The parked commands, routed again (in the order they came: a slot's
 * commands keep theirs), a group's together. */
static void unpark(hn_rcluster *cl) {
    if (cl->npk == 0) return;
    parked *pk = cl->pk;
    uint32_t n = cl->npk;
    cl->pk = NULL;
    cl->npk = cl->pkcap = 0;
    memset(cl->pkslot, 0, sizeof(cl->pkslot));
    uint32_t *idx = hn_xmalloc(n * sizeof(uint32_t));
    for (uint32_t j = 0; j < n;) {
        uint32_t m = 0;
        uint64_t seq = pk[j].seq;
        for (; j < n && pk[j].seq == seq; j++) idx[m++] = pk[j].idx;
        route_cmds(cl, seq, idx, m);
    }
    free(idx);
    free(pk);
    if (cl->npk == 0) cl->told_parked = false;
}

/* Sends commands idx[0..n) of group seq by the current map. */
static void route_cmds(hn_rcluster *cl, uint64_t seq, const uint32_t *idx, uint32_t n) {
    outer *o = outer_of(cl, seq);
    if (!o) return;
    uint32_t *mine = hn_xmalloc(n * sizeof(uint32_t));
    int *ci = hn_xmalloc(n * sizeof(int));
    for (uint32_t k = 0; k < n; k++) {
        int slot = o->cmds[idx[k]].slot;
        ci[k] = route_of(cl, slot);
    }
    for (uint32_t k = 0; k < n; k++) {
        if (ci[k] == -2) continue;
        uint32_t m = 0;
        int c = ci[k];
        for (uint32_t j = k; j < n; j++)
            if (ci[j] == c) {
                mine[m++] = idx[j];
                ci[j] = -2;
            }
        if (c >= 0) send_share(cl, seq, mine, m, c, false, 0, 0);
        else park(cl, seq, mine, m);
    }
    free(mine);
    free(ci);
}

/* "*<n>\r\n$4\r\nXADD\r\n…" (hn_rsplit has checked the command's shape):
 * a look at its name, not a second scan. */
static bool is_xadd(const char *p, size_t len) {
    const char *nl = memchr(p, '\n', len < 16 ? len : 16);
    if (!nl || (size_t)(nl + 1 - p) + 10 > len) return false;
    return memcmp(nl + 1, "$4\r\n", 4) == 0 && strncasecmp(nl + 5, "XADD", 4) == 0;
}

/* The group's stream appends, once the rest is done. */
static void route_later(hn_rcluster *cl, uint64_t seq) {
    outer *o = outer_of(cl, seq);
    uint32_t *later = hn_xmalloc(o->ncmds * sizeof(uint32_t)), n = 0;
    for (uint32_t i = 0; i < o->ncmds; i++)
        if (o->cmds[i].flags & LATER) later[n++] = i;
    if (n > 0) route_cmds(cl, seq, later, n);
    free(later);
}

/* Corks every connection, or uncorks it and writes its queue. */
static void cork_all(hn_rcluster *cl, bool on) {
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++)
        if (cl->conns[i]) hn_rconn_cork(cl->conns[i]->rc, on);
}

/* The stream appends of the groups whose other commands are done, in
 * group order. */
static void send_later(hn_rcluster *cl) {
    if (cl->later_next < cl->first_seq) cl->later_next = cl->first_seq;
    for (;;) {
        outer *o = outer_of(cl, cl->later_next);
        if (!o || !o->cmds || !o->later_ready) return;
        if (!o->later_sent) {
            o->later_sent = true;
            route_later(cl, cl->later_next);
        }
        cl->later_next++;
    }
}

/* A group's appends became ready: they go with the next send, or after
 * flush_wait (on_later). */
static void later_arm(hn_rcluster *cl) {
    if (cl->halted) return;
    outer *o = outer_of(cl, cl->later_next > cl->first_seq ? cl->later_next : cl->first_seq);
    if (o && o->cmds && o->later_ready && !o->later_sent && !evtimer_pending(cl->later_ev, NULL))
        evtimer_add(cl->later_ev, &cl->later_tv);
}

static void on_later(evutil_socket_t fd, short what, void *arg) {
    hn_rcluster *cl = arg;
    (void)fd; (void)what;
    if (cl->halted) return;
    cork_all(cl, true);
    send_later(cl);
    cork_all(cl, false);
}

/* Routes the groups not routed yet, in order, while a map is known. */
static void route(hn_rcluster *cl) {
    if (!cl->map || cl->halted) return;
    for (uint32_t k = 0; k < cl->ocount; k++) {
        outer *o = &cl->o[(cl->ohead + k) % cl->ocap];
        if (o->cmds) continue;
        hn_rsplit_cmd *cmds = hn_xcalloc(o->ncmds, sizeof(*cmds));
        char err[160];
        if (hn_rsplit(cl->buf.p + o->off, o->len, o->ncmds, cl->map, 0, cmds, err, sizeof(err)) != HN_OK) {
            hn_error("event=redis_cluster_bad_group err='%s'", err);
            free(cmds);
            o->cmds = hn_xcalloc(1, sizeof(*cmds));
            o->nerr = o->ncmds;
            o->left = 0;
            o->later_ready = o->later_sent = true;   /* nothing to append: later groups' appends may go */
            continue;
        }
        for (uint32_t i = 0; i < o->ncmds; i++)
            if (cmds[i].flags & HN_RCMD_CROSSSLOT) hn_rcl_note(HN_RCL_CROSSSLOT);
        o->cmds = cmds;
        uint32_t *first = hn_xmalloc(o->ncmds * sizeof(uint32_t)), n1 = 0;
        for (uint32_t i = 0; i < o->ncmds; i++) {
            if (is_xadd(cl->buf.p + o->off + cmds[i].off, cmds[i].len)) cmds[i].flags |= LATER;
            else first[n1++] = i;
        }
        o->left1 = n1;
        if (n1 > 0) route_cmds(cl, cl->first_seq + k, first, n1);
        else o->later_ready = true;
        free(first);
    }
    send_later(cl);
}

static void update_state(hn_rcluster *cl, const char *why) {
    bool up = cl->map != NULL && !cl->halted && cl->covered && cl->npk == 0;
    for (int i = 0; i < HN_RMAP_NODES_MAX && up; i++)
        if (cl->conns[i] && cl->conns[i]->master && !cl->conns[i]->up) up = false;
    if (up == cl->was_up) return;
    cl->was_up = up;
    if (cl->cbs.state) cl->cbs.state(cl->ctx, up, why);
}

/* Groups done, in the order they were sent. */
static void complete(hn_rcluster *cl) {
    while (cl->ocount > 0) {
        outer *o = &cl->o[cl->ohead];
        if (!o->cmds || o->left > 0) return;
        outer done = *o;
        cl->ohead = (cl->ohead + 1) % cl->ocap;
        cl->ocount--;
        cl->first_seq++;
        cl->head += done.len;
        if (cl->head == cl->buf.len) cl->head = cl->buf.len = 0;
        else if (cl->head > (1u << 20) && cl->head > cl->buf.len / 2) {
            memmove(cl->buf.p, cl->buf.p + cl->head, cl->buf.len - cl->head);
            for (uint32_t k = 0; k < cl->ocount; k++) cl->o[(cl->ohead + k) % cl->ocap].off -= cl->head;
            cl->buf.len -= cl->head;
            cl->head = 0;
        }
        free(done.cmds);
        if (cl->cbs.done) cl->cbs.done(cl->ctx, done.tag, done.ncmds, done.nerr, cl->errtext);
    }
}

/* ---- a node's callbacks ------------------------------------------------- */

/* The wait before try `tries` (1, 2, …) of a command that got TRYAGAIN,
 * and the waits up to it summed. */
static int tryagain_wait(int tries) {
    int ms = TRYAGAIN_MS;
    for (int i = 1; i < tries && ms < TRYAGAIN_MAX_MS; i++) ms *= 2;
    return ms < TRYAGAIN_MAX_MS ? ms : TRYAGAIN_MAX_MS;
}

static bool tryagain_allowed(const hn_rcluster *cl, int tries) {
    int budget = cl->cfg.retry_ms > TRYAGAIN_BUDGET_MS ? cl->cfg.retry_ms : TRYAGAIN_BUDGET_MS;
    long sum = 0;
    for (int i = 1; i <= tries && sum <= budget; i++) sum += tryagain_wait(i);
    return sum <= budget;
}

static void retry_arm(hn_rcluster *cl) {
    if (cl->nrt == 0) return;
    uint64_t due = cl->rt[0].due_ms, now = hn_mono_ms();
    for (uint32_t j = 1; j < cl->nrt; j++)
        if (cl->rt[j].due_ms < due) due = cl->rt[j].due_ms;
    uint64_t ms = due > now ? due - now : 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(cl->retry_ev, &tv);
}

/* A command that got TRYAGAIN for the tries-th time goes again, alone,
 * after tryagain_wait(tries). */
static void retry_push(hn_rcluster *cl, retry r) {
    if (cl->nrt == cl->rtcap) {
        cl->rtcap = cl->rtcap ? 2 * cl->rtcap : 16;
        cl->rt = hn_xreallocarray(cl->rt, cl->rtcap, sizeof(retry));
    }
    cl->rt[cl->nrt++] = r;
}

static void retry_add(hn_rcluster *cl, uint64_t seq, uint32_t idx, int tries) {
    retry_push(cl, (retry){seq, idx, tries, hn_mono_ms() + (uint64_t)tryagain_wait(tries)});
    retry_arm(cl);              /* at the earliest due: this one may come before the armed one */
}

static void on_retry(evutil_socket_t fd, short what, void *arg) {
    hn_rcluster *cl = arg;
    (void)fd; (void)what;
    if (cl->halted || cl->nrt == 0) return;
    retry *rt = cl->rt;
    uint32_t n = cl->nrt;
    cl->rt = NULL;
    cl->nrt = cl->rtcap = 0;
    uint64_t now = hn_mono_ms();
    cork_all(cl, true);
    for (uint32_t j = 0; j < n; j++) {
        if (rt[j].due_ms > now) {                      /* not yet: kept */
            retry_push(cl, rt[j]);
            continue;
        }
        outer *o = outer_of(cl, rt[j].seq);
        if (!o || !o->cmds) continue;                  /* taken back meanwhile */
        int slot = o->cmds[rt[j].idx].slot;
        int c = route_of(cl, slot);
        if (c >= 0) send_share(cl, rt[j].seq, &rt[j].idx, 1, c, false, 0, rt[j].tries);
        else park(cl, rt[j].seq, &rt[j].idx, 1);
    }
    cork_all(cl, false);
    free(rt);
    retry_arm(cl);
}

/* "MOVED 3999 127.0.0.1:6381": the slot and the node's connection. */
static int redirect_target(hn_rcluster *cl, const char *e, bool moved) {
    const char *sp = strchr(e, ' ');
    if (!sp) return -1;
    char *end;
    long slot = strtol(sp + 1, &end, 10);
    if (*end != ' ' || slot < 0 || slot >= HN_SLOTS) return -1;
    const char *hp = end + 1, *colon = strrchr(hp, ':');
    if (!colon || colon == hp || (size_t)(colon - hp) >= 256) return -1;
    char host[256];
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = '\0';
    int port = atoi(colon + 1);
    if (port <= 0 || port > 65535) return -1;
    if (moved) hn_rmap_moved(cl->map, (uint16_t)slot, host, port);
    return conn_of(cl, host, port);
}

/* An error reply. MOVED and ASK send the command on to the node named at
 * once, in reply order: a later group routed by the updated map cannot
 * overtake it. */
static void node_error(void *ctx, uint64_t tag, uint32_t index, const char *errtext) {
    conn *n = ctx;
    hn_rcluster *cl = n->cl;
    share *s = share_of(cl, tag);
    if (!s) return;
    if (s->asking && index % 2 == 0) return;          /* ASKING itself */
    uint32_t k = s->asking ? index / 2 : index;
    if (k >= s->n || s->seen[k]) return;
    bool moved = strncmp(errtext, "MOVED ", 6) == 0, ask = strncmp(errtext, "ASK ", 4) == 0;
    int to = moved || ask ? redirect_target(cl, errtext, moved) : -1;
    if (to >= 0 && s->hops < HOPS) {
        hn_rcl_note(moved ? HN_RCL_MOVED : HN_RCL_ASK);
        if (moved) hn_rshared_want();
        s->seen[k] = SEEN_REDIRECTED;
        uint64_t seq = s->seq;
        uint32_t i = s->idx[k];
        int hops = s->hops + 1, tries = s->tries;
        send_share(cl, seq, &i, 1, to, ask, hops, tries);     /* may move cl->sh: s is not used after */
        return;
    }
    if (strncmp(errtext, "TRYAGAIN", 8) == 0 && tryagain_allowed(cl, s->tries + 1)) {
        hn_rcl_note(HN_RCL_TRYAGAIN);
        s->seen[k] = SEEN_REDIRECTED;                    /* done in the share it goes again in */
        retry_add(cl, s->seq, s->idx[k], s->tries + 1);
        return;
    }
    s->seen[k] = SEEN_ERROR;
    s->nerr++;
    if (to >= 0) snprintf(cl->errtext, sizeof(cl->errtext), "redis cluster: more than %d redirects", HOPS);
    else snprintf(cl->errtext, sizeof(cl->errtext), "%s", errtext);
    if (strncmp(errtext, "CROSSSLOT", 9) == 0) hn_rcl_note(HN_RCL_CROSSSLOT);
}

static void node_done(void *ctx, uint64_t tag, uint32_t ncmds, uint32_t nerr, const char *errtext) {
    conn *n = ctx;
    hn_rcluster *cl = n->cl;
    (void)ncmds; (void)nerr; (void)errtext;
    share *s = share_of(cl, tag);
    if (!s) return;                              /* its group was taken back */
    outer *o = outer_of(cl, s->seq);
    if (o) {
        o->nerr += s->nerr;
        for (uint32_t k = 0; k < s->n; k++) {
            if (s->seen[k] == SEEN_REDIRECTED) continue;   /* done in the share it went on in */
            o->left--;
            if (!(o->cmds[s->idx[k]].flags & LATER) && --o->left1 == 0) o->later_ready = true;
        }
    }
    share_free(s);
    later_arm(cl);
    complete(cl);
}

static void node_state(void *ctx, bool up, const char *why) {
    conn *n = ctx;
    hn_rcluster *cl = n->cl;
    n->up = up;
    if (!up) {
        hn_rcl_note(HN_RCL_CONNECTION);
        hn_rshared_want();
    }
    /* told to the worker from an event of its own: it may take every group
     * back (the spool), which must not happen inside our own calls (a send
     * that found the connection broken is one) */
    snprintf(cl->state_why, sizeof(cl->state_why), "%s:%d: %s", n->host, n->port, why);
    event_active(cl->state_ev, 0, 0);
}

static void on_state(evutil_socket_t fd, short what, void *arg) {
    hn_rcluster *cl = arg;
    (void)fd; (void)what;
    update_state(cl, cl->state_why);
}

/* ---- the map ------------------------------------------------------------- */

static void take_share(void *ctx, const char *buf, size_t len, uint32_t ncmds, uint64_t tag) {
    hn_rcluster *cl = ctx;
    (void)buf; (void)len; (void)ncmds;
    share *s = share_of(cl, tag);
    if (!s) return;
    uint64_t seq = s->seq;
    uint32_t n = 0, *idx = s->idx;
    for (uint32_t k = 0; k < s->n; k++)         /* not those redirected: they are in another share */
        if (s->seen[k] != SEEN_REDIRECTED) idx[n++] = s->idx[k];
    s->idx = NULL;
    share_free(s);
    route_cmds(cl, seq, idx, n);
    free(idx);
}

static void apply_map(hn_rcluster *cl) {
    if (!cl->map) cl->map = hn_xmalloc(sizeof(hn_rmap));
    cl->mapver = hn_rshared_copy(cl->map);
    bool owns[HN_RMAP_NODES_MAX] = {0};
    cl->covered = true;
    for (int s = 0; s < HN_SLOTS; s++)
        if (cl->map->slot[s] != HN_RMAP_NONE) owns[cl->map->slot[s]] = true;
        else cl->covered = false;
    if (!cl->covered && !cl->told_uncovered)
        hn_warn("event=redis_cluster_incomplete unassigned_slots=%d (down until every slot has a master)",
                cl->map->unassigned);
    cl->told_uncovered = !cl->covered;
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++)
        if (cl->conns[i]) cl->conns[i]->master = false;
    for (int j = 0; j < cl->map->nnodes; j++)
        if (owns[j]) {
            int ci = conn_of(cl, cl->map->nodes[j].host, cl->map->nodes[j].port);
            if (ci >= 0) cl->conns[ci]->master = true;
        }
    /* a node that serves no slot now: what it holds (when it is down) goes
     * to the new owners; it goes when it holds nothing */
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++) {
        conn *n = cl->conns[i];
        if (!n || n->master) continue;
        if (!n->up) hn_rconn_take(n->rc, take_share, cl);
        if (hn_rconn_groups(n->rc) == 0) conn_free(cl, i);
    }
}

static void on_poll(evutil_socket_t fd, short what, void *arg) {
    hn_rcluster *cl = arg;
    (void)fd; (void)what;
    /* no map yet, or a master lost: ask for the map until there is one
     * naming another (its replica promoted after the cluster's node timeout) */
    if (!cl->map || !cl->covered || cl->npk > 0) hn_rshared_want();
    cork_all(cl, true);
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++)
        if (cl->conns[i] && cl->conns[i]->master && !cl->conns[i]->up) {
            hn_rshared_want();
            break;
        }
    bool remap = hn_rshared_version() != cl->mapver, waiting = cl->npk > 0;
    if (remap) apply_map(cl);
    if (remap || waiting) {            /* a new map, or a connection to spare since */
        unpark(cl);
        route(cl);
    }
    cork_all(cl, false);
    if (remap || waiting) {
        complete(cl);
        update_state(cl, "slot map");
    }
}

/* ---- public ------------------------------------------------------------- */

hn_rcluster *hn_rcluster_create(struct event_base *base, const hn_redis_cfg *cfg, const hn_rconn_cbs *cbs,
                                void *ctx) {
    hn_rcluster *cl = hn_xcalloc(1, sizeof(*cl));
    cl->base = base;
    cl->cfg = *cfg;
    cl->cbs = *cbs;
    cl->ctx = ctx;
    cl->reply_ms = 0;
    cl->connect_ms = 2000;
    cl->tee_fd = -1;
    hn_buf_init(&cl->buf, 256 * 1024);
    hn_buf_init(&cl->tmp, 64 * 1024);
    cl->ocap = 64;
    cl->o = hn_xcalloc(cl->ocap, sizeof(outer));
    cl->poll = event_new(base, -1, EV_PERSIST, on_poll, cl);
    cl->state_ev = event_new(base, -1, 0, on_state, cl);
    cl->later_ev = evtimer_new(base, on_later, cl);
    cl->retry_ev = evtimer_new(base, on_retry, cl);
    cl->later_tv = (struct timeval){0, 4000};
    return cl;
}

void hn_rcluster_destroy(hn_rcluster *cl) {
    if (!cl) return;
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++)
        if (cl->conns[i]) conn_free(cl, i);
    for (uint32_t k = 0; k < cl->ocount; k++) free(cl->o[(cl->ohead + k) % cl->ocap].cmds);
    for (uint32_t i = 0; i < cl->nsh; i++)
        if (cl->sh[i].gen) share_free(&cl->sh[i]);
    free(cl->sh);
    free(cl->o);
    free(cl->pk);
    free(cl->map);
    event_free(cl->poll);
    event_free(cl->state_ev);
    event_free(cl->later_ev);
    event_free(cl->retry_ev);
    free(cl->rt);
    hn_buf_free(&cl->buf);
    hn_buf_free(&cl->tmp);
    free(cl);
}

void hn_rcluster_start(hn_rcluster *cl) {
    if (cl->started) return;
    cl->started = true;
    struct timeval tv = {0, POLL_MS * 1000};
    event_add(cl->poll, &tv);
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++)
        if (cl->conns[i]) hn_rconn_start(cl->conns[i]->rc);
    if (hn_rshared_version() != 0) on_poll(-1, 0, cl);
}

void hn_rcluster_send(hn_rcluster *cl, const char *buf, size_t len, uint32_t ncmds, uint64_t tag) {
    if (ncmds == 0) return;
    if (cl->ocount == cl->ocap) {
        outer *no = hn_xcalloc(cl->ocap * 2, sizeof(outer));
        for (uint32_t i = 0; i < cl->ocount; i++) no[i] = cl->o[(cl->ohead + i) % cl->ocap];
        free(cl->o);
        cl->o = no;
        cl->ohead = 0;
        cl->ocap *= 2;
    }
    outer *o = &cl->o[(cl->ohead + cl->ocount) % cl->ocap];
    *o = (outer){.off = cl->buf.len, .len = len, .ncmds = ncmds, .left = ncmds, .tag = tag};
    cl->ocount++;
    hn_buf_append(&cl->buf, buf, len);
    if (cl->tee_fd >= 0) {
        ssize_t w = write(cl->tee_fd, buf, len);
        (void)w;
    }
    cork_all(cl, true);             /* earlier groups' appends and this group: one write per node */
    route(cl);
    cork_all(cl, false);
    evtimer_del(cl->later_ev);      /* what was ready went: no wake-up for nothing */
    later_arm(cl);
    complete(cl);
}

void hn_rcluster_set_timeouts(hn_rcluster *cl, int reply_ms, int connect_ms) {
    if (reply_ms >= 0) cl->reply_ms = reply_ms;
    if (connect_ms >= 0) cl->connect_ms = connect_ms;
}

static void discard(void *ctx, const char *buf, size_t len, uint32_t ncmds, uint64_t tag) {
    (void)ctx; (void)buf; (void)len; (void)ncmds; (void)tag;
}

uint32_t hn_rcluster_take(hn_rcluster *cl, hn_rconn_take_fn fn, void *ctx) {
    if (hn_rcluster_up(cl) || cl->ocount == 0) return 0;
    /* every share is forgotten: a node still up may answer some later
     * (ignored); one that is down drops them */
    for (uint32_t i = 0; i < cl->nsh; i++)
        if (cl->sh[i].gen) share_free(&cl->sh[i]);
    cl->npk = 0;
    cl->nrt = 0;
    memset(cl->pkslot, 0, sizeof(cl->pkslot));
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++)
        if (cl->conns[i] && !hn_rconn_up(cl->conns[i]->rc)) hn_rconn_take(cl->conns[i]->rc, discard, NULL);
    /* moved out first: fn may send new groups */
    hn_buf buf = cl->buf;
    outer *o = cl->o;
    uint32_t ocap = cl->ocap, ohead = cl->ohead, n = cl->ocount;
    hn_buf_init(&cl->buf, 256 * 1024);
    cl->head = 0;
    cl->ocap = 64;
    cl->o = hn_xcalloc(cl->ocap, sizeof(outer));
    cl->ohead = cl->ocount = 0;
    cl->first_seq += n;
    for (uint32_t i = 0; i < n; i++) {
        outer *g = &o[(ohead + i) % ocap];
        fn(ctx, buf.p + g->off, g->len, g->ncmds, g->tag);
        free(g->cmds);
    }
    hn_buf_free(&buf);
    free(o);
    event_active(cl->state_ev, 0, 0);    /* nothing parked now: up again when the rest is */
    return n;
}

void hn_rcluster_halt(hn_rcluster *cl) {
    cl->halted = true;
    cl->was_up = false;
    event_del(cl->poll);
    event_del(cl->later_ev);
    event_del(cl->retry_ev);
    for (int i = 0; i < HN_RMAP_NODES_MAX; i++)
        if (cl->conns[i]) hn_rconn_halt(cl->conns[i]->rc);
}

void hn_rcluster_tee(hn_rcluster *cl, int fd) { cl->tee_fd = fd; }

void hn_rcluster_set_flush_wait(hn_rcluster *cl, int us) {
    if (us < 1) us = 1;
    cl->later_tv = (struct timeval){us / 1000000, us % 1000000};
}

bool hn_rcluster_up(const hn_rcluster *cl) { return cl->was_up; }

size_t hn_rcluster_buffered(const hn_rcluster *cl) { return cl->buf.len - cl->head; }

uint32_t hn_rcluster_groups(const hn_rcluster *cl) { return cl->ocount; }
