/* test_live.c: the live stream's event ids (what Last-Event-ID may carry)
 * and the shared messages' reference counts. The hub itself runs against
 * real Redis in tests/integration/test_sse.sh. */
#include "api/live/live.h"

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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_id),
        cmocka_unit_test(test_msg_refs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
