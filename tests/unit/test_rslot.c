/* test_rslot.c: Redis Cluster key slots (common/rslot.h) — the
 * specification's CRC16 vector, slots Redis itself reports (CLUSTER KEYSLOT
 * on Redis 7.0), the hash tag rules (first '{', next '}', an empty tag
 * ignored), and that a widget's keys share one slot. */
#include "common/rslot.h"
#include "proto/keys.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#define S(k) hn_slot(k, strlen(k))

static void test_vectors(void **state) {
    (void)state;
    assert_int_equal(hn_crc16("123456789", 9), 0x31C3);     /* the specification's check value */
    assert_int_equal(S("123456789"), 0x31C3 & 16383);
    assert_int_equal(S("foo"), 12182);                         /* CLUSTER KEYSLOT foo */
    assert_int_equal(S("bar"), 5061);
    assert_int_equal(S(""), 0);
    /* as redis-server 7.0.15 (--cluster-enabled yes) answered CLUSTER KEYSLOT */
    assert_int_equal(S("{user1000}.following"), 3443);
    assert_int_equal(S("foo{}{bar}"), 8363);
    assert_int_equal(S("foo{{bar}}zap"), 4015);
    assert_int_equal(S("foo{bar}{zap}"), 5061);
    assert_int_equal(S("hn:live:{42}"), 8000);
}

static void test_tags(void **state) {
    (void)state;
    assert_int_equal(S("{user1000}.following"), S("user1000"));
    assert_int_equal(S("foo{}{bar}"), S("foo{}{bar}"));        /* an empty tag: the whole key */
    assert_int_not_equal(S("foo{}{bar}"), S("bar"));
    assert_int_equal(S("foo{{bar}}zap"), S("{bar"));           /* the tag is "{bar" */
    assert_int_equal(S("foo{bar}{zap}"), S("bar"));            /* the first tag only */
    assert_int_equal(S("no{tag"), hn_crc16("no{tag", 6) & 16383);
    char bin[] = {'a', 0, '{', 'x', '}', 0};
    assert_int_equal(hn_slot(bin, 5), S("x"));                  /* bytes, not C strings */
}

static void test_widget_keys_share_a_slot(void **state) {
    (void)state;
    char a[HN_KEY_CAP], b[HN_KEY_CAP], c[HN_KEY_CAP];
    hn_key_live(a, 42);
    hn_key_sess(b, 42, "sessABC", 7);
    hn_key_ended(c, 42);
    assert_int_equal(S(a), S(b));
    assert_int_equal(S(a), S(c));
    assert_int_equal(S(a), S("42"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_widget_keys_share_a_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
