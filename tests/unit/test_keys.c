/* test_keys.c: the Redis key contract (proto/keys.h) — every name as
 * DESIGN §3 spells it, the widget's hash tag, stream shard names read back,
 * the session-hash field table. */
#include "proto/keys.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void test_names(void **state) {
    (void)state;
    char k[HN_KEY_CAP];
    assert_int_equal(hn_key_live(k, 7), strlen("hn:live:{7}"));
    assert_string_equal(k, "hn:live:{7}");
    hn_key_ended(k, 2147483647);
    assert_string_equal(k, "hn:ended:{2147483647}");
    hn_key_sess_prefix(k, 12);
    assert_string_equal(k, "hn:sess:{12}:");
    assert_int_equal(hn_key_sess(k, 12, "abcdEFGH_-12", 12), strlen("hn:sess:{12}:abcdEFGH_-12"));
    assert_string_equal(k, "hn:sess:{12}:abcdEFGH_-12");
    hn_key_stream(k, 3);
    assert_string_equal(k, "hn:stream:3");
    hn_key_salt(k, 20261124);
    assert_string_equal(k, "hn:salt:20261124");
    assert_int_equal(hn_key_vfirst(k, 9, "visitor-1", 9), strlen("hn:vfirst:{9}:visitor-1"));
    assert_string_equal(k, "hn:vfirst:{9}:visitor-1");
    assert_string_equal(HN_KEY_WIDGETS, "hn:widgets");
    assert_string_equal(HN_KEY_TRIM_LOCK, "hn:trim:lock");
}

/* The longest session id (64) with the largest widget id fits, and a
 * longer one is cut at 64 bytes, never past the buffer. */
static void test_longest(void **state) {
    (void)state;
    char sid[200], k[HN_KEY_CAP];
    memset(sid, 'a', sizeof(sid));
    size_t n = hn_key_sess(k, UINT64_MAX, sid, sizeof(sid));
    assert_int_equal(n, strlen("hn:sess:{18446744073709551615}:") + 64);
    assert_int_equal(strlen(k), n);
    assert_true(n < HN_KEY_CAP);
    n = hn_key_vfirst(k, UINT64_MAX, sid, sizeof(sid));
    assert_int_equal(n, strlen("hn:vfirst:{18446744073709551615}:") + 64);
    assert_true(n < HN_KEY_CAP);
}

static void test_stream_shard(void **state) {
    (void)state;
    static const struct { const char *name; int want; } cases[] = {
        {"hn:stream:0", 0},   {"hn:stream:17", 17}, {"hn:stream:999999999", 999999999},
        {"hn:stream:", -1},   {"hn:stream:x", -1},  {"hn:stream:1x", -1},
        {"hn:stream:-1", -1}, {"hn:live:{1}", -1},  {"hn:stream:1234567890", -1},
        {"", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = hn_key_stream_shard(cases[i].name, strlen(cases[i].name));
        if (got != cases[i].want) fail_msg("%s: got %d, want %d", cases[i].name, got, cases[i].want);
    }
    char k[HN_KEY_CAP];
    for (unsigned s = 0; s < 64; s++)
        assert_int_equal(hn_key_stream_shard(k, hn_key_stream(k, s)), (int)s);
}

static void test_fields(void **state) {
    (void)state;
    assert_string_equal(hn_sf_name[HN_SF_LAST_SEEN], "last_seen");
    assert_string_equal(hn_sf_name[HN_SF_URL], "url");
    assert_string_equal(hn_sf_name[HN_SF_MESSAGES_SENT], "messages_sent");
    for (int i = 0; i < HN_SF__COUNT; i++) {
        assert_non_null(hn_sf_name[i]);
        assert_int_equal(hn_sf_len[i], strlen(hn_sf_name[i]));
        for (int j = 0; j < i; j++) assert_string_not_equal(hn_sf_name[i], hn_sf_name[j]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_longest),
        cmocka_unit_test(test_stream_shard),
        cmocka_unit_test(test_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
