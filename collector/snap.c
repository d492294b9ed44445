/* snap.c: see snap.h. */
#include "collector/snap.h"

#include "common/hn.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct hn_snap_node {
    void *table;
    int   refs;          /* guarded by the pub lock */
};

struct hn_snap_pub {
    pthread_mutex_t  lock;
    hn_snap_node    *cur;     /* holds one reference */
    _Atomic uint64_t gen;
    void           (*free_table)(void *);
};

static void unref(hn_snap_pub *p, hn_snap_node *n) {
    if (n == NULL || --n->refs > 0) return;
    p->free_table(n->table);
    free(n);
}

hn_snap_pub *hn_snap_pub_create(void (*free_table)(void *)) {
    hn_snap_pub *p = hn_xcalloc(1, sizeof(*p));
    pthread_mutex_init(&p->lock, NULL);
    p->free_table = free_table;
    return p;
}

void hn_snap_pub_destroy(hn_snap_pub *p) {
    if (p == NULL) return;
    unref(p, p->cur);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void hn_snap_publish(hn_snap_pub *p, void *table) {
    hn_snap_node *n = hn_xcalloc(1, sizeof(*n));
    n->table = table;
    n->refs = 1;
    pthread_mutex_lock(&p->lock);
    hn_snap_node *old = p->cur;
    p->cur = n;
    unref(p, old);
    atomic_fetch_add(&p->gen, 1);
    pthread_mutex_unlock(&p->lock);
}

void *hn_snap_acquire(hn_snap_pub *p, hn_snap_ref *ref) {
    if (p == NULL) return NULL;
    uint64_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
    if (g != ref->gen) {
        pthread_mutex_lock(&p->lock);
        unref(p, ref->n);
        ref->n = p->cur;
        if (ref->n) ref->n->refs++;
        ref->gen = atomic_load(&p->gen);
        pthread_mutex_unlock(&p->lock);
    }
    return ref->n ? ref->n->table : NULL;
}

void hn_snap_release(hn_snap_pub *p, hn_snap_ref *ref) {
    if (p == NULL) return;
    pthread_mutex_lock(&p->lock);
    unref(p, ref->n);
    ref->n = NULL;
    ref->gen = 0;
    pthread_mutex_unlock(&p->lock);
}
