/* rshared.c: see rshared.h. */
#include "common/rshared.h"

#include "common/log.h"
#include "common/rcl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GAP_MS 100

static struct {
    pthread_mutex_t  lock;
    pthread_cond_t   cond;
    hn_redis_cfg     cfg;
    int              timeout_ms, refresh_ms;
    hn_rmap          map;               /* under lock */
    _Atomic uint64_t version;
    bool             want, stop, running;
    pthread_t        thread;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* One read of CLUSTER SLOTS: from a master of the current map, else a seed. */
static int read_map(hn_rmap *out, char *err, size_t cap) {
    hn_redis_addr cand[HN_RMAP_NODES_MAX + HN_REDIS_SEEDS_MAX];
    int n = 0;
    pthread_mutex_lock(&S.lock);
    for (int i = 0; i < S.map.nnodes && n < HN_RMAP_NODES_MAX; i++) {
        cand[n] = S.cfg.seed[0];
        snprintf(cand[n].host, sizeof(cand[n].host), "%s", S.map.nodes[i].host);
        cand[n].port = S.map.nodes[i].port;
        cand[n].path[0] = '\0';
        cand[n].db = 0;
        n++;
    }
    pthread_mutex_unlock(&S.lock);
    for (int i = 0; i < S.cfg.nseeds; i++) cand[n++] = S.cfg.seed[i];
    snprintf(err, cap, "no node answered");
    for (int i = 0; i < n; i++) {
        char e[256];
        redisContext *x = hn_redis_connect(&cand[i], S.timeout_ms, e, sizeof(e));
        if (!x) {
            snprintf(err, cap, "%s", e);
            continue;
        }
        redisReply *r = redisCommand(x, "CLUSTER SLOTS");
        int rv = HN_ERR;
        if (r && r->type == REDIS_REPLY_ERROR) snprintf(err, cap, "%s:%d: %s", cand[i].host, cand[i].port, r->str);
        else if (r) rv = hn_rmap_parse(r, cand[i].host, out, err, cap);
        /* a node that lost touch may answer with holes: keep asking */
        if (rv == HN_OK && out->unassigned > 0 && i + 1 < n) {
            snprintf(err, cap, "%s:%d: %d slots unassigned", cand[i].host, cand[i].port, out->unassigned);
            rv = HN_ERR;
        }
        if (r) freeReplyObject(r);
        redisFree(x);
        if (rv == HN_OK && out->nnodes > 0) return HN_OK;
    }
    return HN_ERR;
}

static void publish(const hn_rmap *m) {
    pthread_mutex_lock(&S.lock);
    bool same = S.map.nnodes == m->nnodes && memcmp(S.map.slot, m->slot, sizeof(m->slot)) == 0 &&
                memcmp(S.map.nodes, m->nodes, sizeof(m->nodes[0]) * (size_t)m->nnodes) == 0;
    if (!same || atomic_load(&S.version) == 0) {
        S.map = *m;
        atomic_fetch_add(&S.version, 1);
    }
    pthread_mutex_unlock(&S.lock);
}

static void *refresher(void *arg) {
    (void)arg;
    hn_rmap *m = hn_xmalloc(sizeof(*m));
    pthread_mutex_lock(&S.lock);
    while (!S.stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += S.refresh_ms / 1000;
        until.tv_nsec += (long)(S.refresh_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) { until.tv_sec++; until.tv_nsec -= 1000000000; }
        while (!S.want && !S.stop)
            if (pthread_cond_timedwait(&S.cond, &S.lock, &until) != 0) break;
        if (S.stop) break;
        S.want = false;
        pthread_mutex_unlock(&S.lock);
        char err[256];
        hn_rcl_note(HN_RCL_REFRESH);
        if (read_map(m, err, sizeof(err)) == HN_OK) publish(m);
        else hn_warn("event=redis_cluster_slots_failed err='%s'", err);
        struct timespec gap = {0, GAP_MS * 1000000L};
        nanosleep(&gap, NULL);
        pthread_mutex_lock(&S.lock);
    }
    pthread_mutex_unlock(&S.lock);
    free(m);
    return NULL;
}

int hn_rshared_start(const hn_redis_cfg *cfg, int timeout_ms, int refresh_ms, char *err, size_t cap) {
    if (S.running) return HN_OK;
    S.cfg = *cfg;
    S.timeout_ms = timeout_ms;
    S.refresh_ms = refresh_ms > 0 ? refresh_ms : 15000;
    S.stop = false;
    hn_rmap *m = hn_xmalloc(sizeof(*m));
    hn_rcl_note(HN_RCL_REFRESH);
    int rv = read_map(m, err, cap);
    if (rv == HN_OK) publish(m);
    free(m);
    if (pthread_create(&S.thread, NULL, refresher, NULL) != 0) {
        snprintf(err, cap, "redis cluster: cannot start the slot map thread");
        return HN_ERR;
    }
    S.running = true;
    return rv;
}

void hn_rshared_stop(void) {
    if (!S.running) return;
    pthread_mutex_lock(&S.lock);
    S.stop = true;
    pthread_cond_signal(&S.cond);
    pthread_mutex_unlock(&S.lock);
    pthread_join(S.thread, NULL);
    S.running = false;
}

void hn_rshared_want(void) {
    pthread_mutex_lock(&S.lock);
    S.want = true;
    pthread_cond_signal(&S.cond);
    pthread_mutex_unlock(&S.lock);
}

uint64_t hn_rshared_version(void) { return atomic_load_explicit(&S.version, memory_order_acquire); }

uint64_t hn_rshared_copy(hn_rmap *m) {
    pthread_mutex_lock(&S.lock);
    uint64_t v = atomic_load(&S.version);
    if (v) *m = S.map;
    pthread_mutex_unlock(&S.lock);
    return v;
}
