/* test_keys.c: the Redis key contract (proto/keys.h) — every name as
 * DESIGN §3 spells it, the widget's hash tag, stream shard names read back,
 * the session-hash field table. */
#include "common/rslot.h"
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
    assert_int_equal(hn_key_stream(k, 0, 1), strlen("hn:stream:0"));
    assert_string_equal(k, "hn:stream:0");
    hn_key_stream(k, 0, 0);              /* 0 shards reads as one */
    assert_string_equal(k, "hn:stream:0");
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
    /* visitor ids longer than 64 bytes that share their first 64 keep apart */
    char k2[HN_KEY_CAP];
    sid[100] = 'b';
    hn_key_vfirst(k2, UINT64_MAX, sid, sizeof(sid));
    assert_string_not_equal(k, k2);
    assert_int_equal(strlen(k2), n);
    hn_key_vfirst(k2, 9, sid, 64);               /* 64 bytes: as they are */
    assert_int_equal(strlen(k2), strlen("hn:vfirst:{9}:") + 64);
    assert_memory_equal(k2 + strlen("hn:vfirst:{9}:"), sid, 64);
}

static void test_stream_shard(void **state) {
    (void)state;
    static const struct { const char *name; int want; } cases[] = {
        {"hn:stream:0", 0},   {"hn:stream:17", 17}, {"hn:stream:999999999", 999999999},
        {"hn:stream:", -1},   {"hn:stream:x", -1},  {"hn:stream:1x", -1},
        {"hn:stream:-1", -1}, {"hn:live:{1}", -1},  {"hn:stream:1234567890", -1},
        {"", -1},
        {"hn:stream:{0.12}", 0}, {"hn:stream:{17.0}", 17}, {"hn:stream:{3.41}", 3},
        {"hn:stream:{3}", -1}, {"hn:stream:{3.}", -1}, {"hn:stream:{.4}", -1},
        {"hn:stream:{3.4", -1}, {"hn:stream:{3.4}x", -1}, {"hn:stream:{3.4.5}", -1},
        {"hn:stream:{}", -1}, {"hn:stream:{", -1}, {"hn:stream:{x.1}", -1},
        {"hn:stream:{1234567890.1}", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int got = hn_key_stream_shard(cases[i].name, strlen(cases[i].name));
        if (got != cases[i].want) fail_msg("%s: got %d, want %d", cases[i].name, got, cases[i].want);
    }
    /* current or legacy */
    char k[HN_KEY_CAP];
    assert_true(hn_key_stream_is_current("hn:stream:0", 11, 1));
    assert_false(hn_key_stream_is_current("hn:stream:1", 11, 1));
    assert_false(hn_key_stream_is_current("hn:stream:0", 11, 2));
    assert_false(hn_key_stream_is_current("hn:stream:1", 11, 2));
    size_t n = hn_key_stream(k, 1, 2);
    assert_true(hn_key_stream_is_current(k, n, 2));
    assert_false(hn_key_stream_is_current(k, n, 3));
    assert_false(hn_key_stream_is_current(k, n, 1));
    assert_false(hn_key_stream_is_current("hn:stream:{1.99999}", 19, 2));
}

/* The tagged names for N = 1..64: the search ends, the N slots are distinct
 * and each near its range's centre, every name reads back as its shard and
 * as current for N only, and balanced ranges of M = 3 and 6 masters (what
 * redis-cli --cluster create makes) get floor(N/M) or ceil(N/M) each. */
static void test_stream_tags(void **state) {
    (void)state;
    char k[HN_KEY_CAP];
    for (unsigned N = 1; N <= 64; N++) {
        uint16_t slots[64];
        for (unsigned s = 0; s < N; s++) {
            size_t n = hn_key_stream(k, s, N);
            assert_int_equal(n, strlen(k));
            if (N == 1) {
                assert_string_equal(k, "hn:stream:0");
                continue;
            }
            uint32_t kk = hn_key_stream_tag_k(s, N);
            if (kk >= 10000) fail_msg("N=%u shard %u: k=%u", N, s, kk);
            char want[HN_KEY_CAP];
            snprintf(want, sizeof(want), "hn:stream:{%u.%u}", s, kk);
            assert_string_equal(k, want);
            assert_int_equal(hn_key_stream_shard(k, n), (int)s);
            assert_true(hn_key_stream_is_current(k, n, N));
            /* current for another N only where that N names the shard the
             * same (a close centre, the same smallest k) */
            if (N > 2) {
                char other[HN_KEY_CAP];
                hn_key_stream(other, s, N - 1);
                assert_int_equal(hn_key_stream_is_current(k, n, N - 1), strcmp(k, other) == 0);
            }
            slots[s] = hn_slot(k, n);
            long centre = (long)(2 * s + 1) * HN_SLOTS / (2 * (long)N);
            long win = HN_SLOTS / (8 * (long)N) < 8 ? 8 : HN_SLOTS / (8 * (long)N);
            if (labs((long)slots[s] - centre) > win)
                fail_msg("N=%u shard %u: slot %u, centre %ld", N, s, slots[s], centre);
            for (unsigned j = 0; j < s; j++)
                if (slots[j] == slots[s]) fail_msg("N=%u: shards %u and %u share slot %u", N, j, s, slots[s]);
        }
        if (N == 1) continue;
        static const unsigned masters[] = {3, 6};
        for (size_t m = 0; m < 2; m++) {
            unsigned M = masters[m], per[6] = {0};
            /* redis-cli's split: master i gets [i*16384/M, (i+1)*16384/M - 1],
             * the last one up to 16383 (0-5460 / 5461-10922 / 10923-16383) */
            for (unsigned s = 0; s < N; s++) {
                unsigned i = 0;
                while (i + 1 < M && slots[s] >= (unsigned)((i + 1) * HN_SLOTS / M)) i++;
                per[i]++;
            }
            for (unsigned i = 0; i < M; i++)
                if (per[i] < N / M || per[i] > (N + M - 1) / M)
                    fail_msg("N=%u M=%u: master %u has %u shards", N, M, i, per[i]);
        }
    }
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
        cmocka_unit_test(test_stream_tags),
        cmocka_unit_test(test_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
