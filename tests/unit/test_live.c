/* test_live.c: the live stream's event ids (what Last-Event-ID may carry)
 * and the shared messages' reference counts. The hub itself runs against
 * real Redis in tests/integration/test_sse.sh. */
#include "api/live/live.h"
#include "api/live/snapshot.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void test_parse_id(void **state) {
    (void)state;
    uint32_t e = 0;
    uint64_t q = 7;
    assert_int_equal(hn_live_parse_id("5f1c09ad-42", &e, &q), HN_OK);
    assert_true(e == 0x5f1c09ad && q == 42);
    assert_int_equal(hn_live_parse_id("00000001-0", &e, &q), HN_OK);
    assert_true(e == 1 && q == 0);
    assert_int_equal(hn_live_parse_id("ffffffff-9999999999999999999", &e, &q), HN_OK);   /* 19 digits: no overflow */
    assert_true(e == 0xffffffffu && q == 9999999999999999999ULL);
    const char *bad[] = {NULL, "", "5f1c09ad", "5f1c09ad-", "5F1C09AD-1", "5f1c09a-1", "5f1c09ad1-1",
                         "5f1c09ad-01", "5f1c09ad--1", "5f1c09ad-1x", "00000000-1", "zzzzzzzz-1",
                         "5f1c09ad-123456789012345678901", "5f1c09ad- 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        e = 9;
        q = 9;
        assert_int_equal(hn_live_parse_id(bad[i], &e, &q), HN_ERR);
        assert_true(e == 9 && q == 9);        /* untouched on error */
    }
}

/* A message lives while any stream still holds it (one unref per ref). */
static void test_msg_refs(void **state) {
    (void)state;
    hn_live_out *o = calloc(1, sizeof(*o));
    hn_live_msg *m = malloc(sizeof(*m) + 4);
    atomic_init(&m->refs, 1);
    m->len = 4;
    memcpy(m->data, "abcd", 4);
    o->msg = m;
    hn_live_msg_ref(m);                       /* a stream's write */
    hn_live_out_free(o);                      /* the hub's reference goes */
    assert_int_equal(atomic_load(&m->refs), 1);
    assert_memory_equal(m->data, "abcd", 4);  /* still readable (ASan would say) */
    hn_live_msg_unref(m);                     /* freed here */
    hn_live_msg_unref(NULL);
}

/* An HGETALL reply's pairs as the snapshot's fields: any order, the
 * collector's "q" and non-strings skipped, an empty hash, an error. */
static void test_snap_fields(void **state) {
    (void)state;
    static const char *const kv[] = {"status", "active", "q", "7", "url", "https://a/", "last_seen",
                                     "1700000000000", "title", "", "email", "x@y.z", "pageviews", "3"};
    enum { N = sizeof(kv) / sizeof(kv[0]) };
    redisReply el[N + 2], *ptr[N + 2];
    for (int i = 0; i < N; i++) {
        el[i] = (redisReply){.type = REDIS_REPLY_STRING, .str = (char *)kv[i], .len = strlen(kv[i])};
        ptr[i] = &el[i];
    }
    el[N] = (redisReply){.type = REDIS_REPLY_STRING, .str = "city", .len = 4};
    el[N + 1] = (redisReply){.type = REDIS_REPLY_NIL};                 /* not a string: absent */
    ptr[N] = &el[N];
    ptr[N + 1] = &el[N + 1];
    redisReply r = {.type = REDIS_REPLY_ARRAY, .elements = N + 2, .element = ptr};
    const char *f[HN_SF__COUNT];
    assert_true(hn_snap_fields(&r, f));
    assert_string_equal(f[HN_SF_STATUS], "active");
    assert_string_equal(f[HN_SF_URL], "https://a/");
    assert_string_equal(f[HN_SF_LAST_SEEN], "1700000000000");
    assert_string_equal(f[HN_SF_TITLE], "");
    assert_string_equal(f[HN_SF_EMAIL], "x@y.z");
    assert_string_equal(f[HN_SF_PAGEVIEWS], "3");
    int set = 0;
    for (int i = 0; i < HN_SF__COUNT; i++) set += f[i] != NULL;
    assert_int_equal(set, 6);                                          /* not q, not city */
    assert_string_equal(hn_snap_field(&r, HN_SF_EMAIL), "x@y.z");
    assert_null(hn_snap_field(&r, HN_SF_CITY));
    assert_null(hn_snap_field(&r, HN_SF_NAME));
    assert_null(hn_snap_field(&r, HN_SF__COUNT));
    /* the same item from the reply and from the fields */
    hn_config cfg = {.active_s = 60};
    hn_buf a = {0}, b = {0};
    bool fa = true, fb = true;
    hn_snap_item_reply(&a, &fa, "s1", &r, 1700000000000, 1700000001000, &cfg);
    hn_snap_item(&b, &fb, "s1", f, 1700000000000, 1700000001000, &cfg);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.p, b.p, a.len);
    hn_buf_free(&a);
    hn_buf_free(&b);
    assert_string_equal(hn_snap_status_reply(&r, 1700000000000, 1700000001000, &cfg), "active");

    r.elements = N + 1;                          /* an odd count: the name alone is no field */
    assert_true(hn_snap_fields(&r, f));
    assert_null(f[HN_SF_CITY]);
    assert_string_equal(f[HN_SF_PAGEVIEWS], "3");
    redisReply empty = {.type = REDIS_REPLY_ARRAY};                    /* the hash is gone */
    assert_true(hn_snap_fields(&empty, f));
    for (int i = 0; i < HN_SF__COUNT; i++) assert_null(f[i]);
    redisReply err = {.type = REDIS_REPLY_ERROR, .str = "ERR", .len = 3};
    f[0] = "x";
    assert_false(hn_snap_fields(&err, f));
    assert_null(f[0]);
    assert_false(hn_snap_fields(NULL, f));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_id),
        cmocka_unit_test(test_msg_refs),
        cmocka_unit_test(test_snap_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
