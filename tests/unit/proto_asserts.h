/* proto_asserts.h: cmocka assertions shared by the proto tests (include
 * after <cmocka.h>). Header-only: each test binary is one translation unit. */
#ifndef HN_PROTO_ASSERTS_H
#define HN_PROTO_ASSERTS_H

#include "proto/beacon.h"

static inline void assert_str_same(hn_str a, hn_str b) {
    assert_int_equal(a.len, b.len);
    if (a.len) assert_memory_equal(a.p, b.p, a.len);
}

/* Every field of two beacons; ua/ip too when relay is true (records do not
 * carry the beacon's own ua/ip). */
static inline void assert_beacon_same(const hn_beacon *a, const hn_beacon *b, bool relay) {
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->fields, b->fields);
    assert_str_same(a->t, b->t);
    assert_str_same(a->k, b->k);
    assert_str_same(a->s, b->s);
    assert_true(a->q == b->q);
    assert_str_same(a->u, b->u);
    assert_str_same(a->ti, b->ti);
    assert_str_same(a->r, b->r);
    assert_str_same(a->n, b->n);
    assert_true(a->e == b->e);
    assert_true(a->ts == b->ts);
    assert_int_equal(a->sw, b->sw);
    assert_int_equal(a->sh, b->sh);
    assert_str_same(a->l, b->l);
    assert_str_same(a->vid, b->vid);
    assert_str_same(a->nm, b->nm);
    assert_str_same(a->em, b->em);
    assert_str_same(a->ph, b->ph);
    if (relay) {
        assert_str_same(a->ua, b->ua);
        assert_str_same(a->ip, b->ip);
    }
    assert_int_equal(a->nprops, b->nprops);
    for (int i = 0; i < a->nprops; i++) {
        const hn_prop *x = &a->props[i], *y = &b->props[i];
        assert_str_same(x->key, y->key);
        assert_int_equal(x->type, y->type);
        switch (x->type) {
        case HN_P_STR:   assert_str_same(x->v.s, y->v.s); break;
        case HN_P_INT:   assert_true(x->v.i == y->v.i); break;
        case HN_P_UINT:  assert_true(x->v.u == y->v.u); break;
        case HN_P_FLOAT: assert_true(x->v.f == y->v.f); break;
        default:         assert_int_equal(x->v.b, y->v.b); break;
        }
    }
}

#endif
