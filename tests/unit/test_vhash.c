/* test_vhash.c: the visitor hash (layout pinned by known answers computed
 * with `openssl dgst -mac HMAC`), the UTC day, the salts' hex and Redis
 * key, and the salt holder across midnight and under concurrent readers. */
#include "collector/vhash.h"
#include "proto/keys.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

static hn_ip ip(const char *s) {
    hn_ip out;
    if (!hn_ip_parse(s, strlen(s), &out)) fail_msg("cannot parse '%s'", s);
    return out;
}

static hn_salt salt_of(uint32_t day, uint8_t fill) {
    hn_salt s = {.day = day};
    for (size_t i = 0; i < HN_SALT_LEN; i++) s.key[i] = (uint8_t)(fill + i);
    return s;
}

/* ms since the epoch of a UTC date and time */
static uint64_t utc_ms(int y, int mo, int d, int h, int mi, int s, int ms) {
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d,
                    .tm_hour = h, .tm_min = mi, .tm_sec = s};
    return (uint64_t)timegm(&tm) * 1000u + (uint64_t)ms;
}

static void vh(const hn_salt *s, uint32_t w, const char *addr, const char *ua, char out[33]) {
    hn_ip a = ip(addr);
    hn_vhash(s, w, &a, ua, strlen(ua), out);
}

/* The exact bytes hashed, pinned: computed independently with
 *   printf '\x00\x00\x00\x2a' + 10×'\x00' + '\xff\xff\xcb\x00\x71\x07' + UA > m
 *   openssl dgst -sha256 -mac HMAC -macopt hexkey:000102…1f m
 * (and likewise for the second vector: widget 0xdeadbeef, 2001:db8::1, empty
 * UA, key ffeedd…00 twice). The hash is the first 16 bytes. */
static void test_known_answers(void **state) {
    (void)state;
    char out[33];
    hn_salt s1 = salt_of(20261124, 0x00);
    vh(&s1, 42, "203.0.113.7", "Mozilla/5.0 (X11; Linux x86_64) herenow-test", out);
    assert_string_equal(out, "7a1d5a75f3bc72e70115b03cd6e64cb6");
    /* v4-mapped text is the same address, so the same visitor */
    vh(&s1, 42, "::ffff:203.0.113.7", "Mozilla/5.0 (X11; Linux x86_64) herenow-test", out);
    assert_string_equal(out, "7a1d5a75f3bc72e70115b03cd6e64cb6");

    hn_salt s2 = {.day = 20261125};
    assert_int_equal(hn_salt_from_hex(&s2, 20261125,
                                      "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100", 64),
                     HN_OK);
    hn_ip a = ip("2001:db8::1");
    hn_vhash(&s2, 0xdeadbeefu, &a, NULL, 0, out);
    assert_string_equal(out, "f9bba6b1d056ac5cf567ef004e839704");
    /* and once more with the context keyed for s1 in between */
    vh(&s1, 42, "203.0.113.7", "x", out);
    hn_vhash(&s2, 0xdeadbeefu, &a, "", 0, out);
    assert_string_equal(out, "f9bba6b1d056ac5cf567ef004e839704");
}

typedef struct day_case {
    int y, mo, d, h, mi, s, ms;
    uint32_t day;
} day_case;

static const day_case day_cases[] = {
    {1970, 1, 1, 0, 0, 0, 0, 19700101},
    {1970, 1, 1, 23, 59, 59, 999, 19700101},
    {1970, 1, 2, 0, 0, 0, 0, 19700102},
    {2000, 2, 29, 12, 0, 0, 0, 20000229},
    {2024, 2, 29, 23, 59, 59, 999, 20240229},
    {2024, 3, 1, 0, 0, 0, 0, 20240301},
    {2025, 12, 31, 23, 59, 59, 999, 20251231},
    {2026, 1, 1, 0, 0, 0, 0, 20260101},
    {2026, 11, 24, 0, 0, 0, 0, 20261124},
    {2026, 11, 24, 23, 59, 59, 999, 20261124},
    {2100, 2, 28, 23, 59, 59, 999, 21000228},
    {2100, 3, 1, 0, 0, 0, 0, 21000301},   /* 2100 is not a leap year */
};

static void test_utc_day(void **state) {
    (void)state;
    for (size_t i = 0; i < HN_ARRAY_LEN(day_cases); i++) {
        const day_case *c = &day_cases[i];
        uint64_t t = utc_ms(c->y, c->mo, c->d, c->h, c->mi, c->s, c->ms);
        if (hn_utc_day(t) != c->day) fail_msg("case %zu: %u, want %u", i, hn_utc_day(t), c->day);
    }
    /* against gmtime_r from 1970 to 2200, every 7 h 13 min 7 s */
    for (uint64_t s = 0; s < 7258118400u; s += 7 * 3600 + 13 * 60 + 7) {
        time_t tt = (time_t)s;
        struct tm tm;
        gmtime_r(&tt, &tm);
        uint32_t want = (uint32_t)((tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday);
        if (hn_utc_day(s * 1000 + 999) != want) fail_msg("t=%llu: %u, want %u", (unsigned long long)s,
                                                        hn_utc_day(s * 1000 + 999), want);
    }
}

static void test_salt_key_and_hex(void **state) {
    (void)state;
    char key[HN_KEY_CAP];
    hn_key_salt(key, 20261124);
    assert_string_equal(key, "hn:salt:20261124");

    char a[2 * HN_SALT_LEN + 1], b[2 * HN_SALT_LEN + 1];
    assert_int_equal(hn_salt_new_hex(a), HN_OK);
    assert_int_equal(hn_salt_new_hex(b), HN_OK);
    assert_int_equal(strlen(a), 64);
    assert_int_equal(strspn(a, "0123456789abcdef"), 64);
    assert_string_not_equal(a, b);

    hn_salt s;
    assert_int_equal(hn_salt_from_hex(&s, 20261124, a, strlen(a)), HN_OK);
    assert_int_equal(s.day, 20261124);
    char back[65];
    for (size_t i = 0; i < HN_SALT_LEN; i++) snprintf(back + 2 * i, 3, "%02x", s.key[i]);
    assert_string_equal(back, a);

    /* upper case is fine; anything else is not, and leaves *s alone */
    assert_int_equal(hn_salt_from_hex(&s, 1, "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff", 64),
                     HN_OK);
    assert_int_equal(s.key[5], 0x55);
    assert_int_equal(s.key[10], 0xaa);
    hn_salt keep = s;
    const char *bad[] = {
        "",
        "00",
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeef",    /* 63 */
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0",  /* 65 */
        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeefg",
        "0011223344556677 899aabbccddeeff00112233445566778899aabbccddeeff",
        "0x112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(bad); i++) {
        if (hn_salt_from_hex(&s, 2, bad[i], strlen(bad[i])) != HN_ERR) fail_msg("'%s' accepted", bad[i]);
        assert_memory_equal(&s, &keep, sizeof(s));
    }
    /* a NUL inside the 64 bytes (a Redis string may hold one) */
    char nul[65];
    memcpy(nul, a, 65);
    nul[10] = '\0';
    assert_int_equal(hn_salt_from_hex(&s, 2, nul, 64), HN_ERR);
}

/* One salt for the whole UTC day: the same inputs give the same hash at the
 * first and the last millisecond of the day. */
static void test_stable_within_day(void **state) {
    (void)state;
    hn_salt_holder *h = hn_salt_holder_create();
    hn_salt set[] = {salt_of(20261124, 7)};
    hn_salt_holder_set(h, set, 1);
    uint64_t t0 = utc_ms(2026, 11, 24, 0, 0, 0, 0), t1 = utc_ms(2026, 11, 24, 23, 59, 59, 999);
    hn_salt s0, s1;
    assert_true(hn_salt_holder_at(h, t0, &s0));
    assert_true(hn_salt_holder_at(h, t1, &s1));
    char a[33], b[33];
    vh(&s0, 3, "198.51.100.4", "UA", a);
    vh(&s1, 3, "198.51.100.4", "UA", b);
    assert_string_equal(a, b);
    for (int i = 0; i < 3; i++) {         /* repeatable on a reused context */
        vh(&s1, 3, "198.51.100.4", "UA", b);
        assert_string_equal(a, b);
    }
    assert_int_equal(strspn(a, "0123456789abcdef"), 32);
    assert_int_equal(strlen(a), 32);
    hn_salt_holder_destroy(h);
}

/* Every input counts: widget, IP (one bit), UA (one byte, its length), salt. */
static void test_changes_with_each_input(void **state) {
    (void)state;
    hn_salt s = salt_of(20261124, 1), other = salt_of(20261125, 1);
    other.key[31] ^= 1;
    const char *ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)";
    char base[33], x[33];
    vh(&s, 1, "2001:db8:1:2::10", ua, base);

    vh(&s, 2, "2001:db8:1:2::10", ua, x);                     assert_string_not_equal(base, x);
    vh(&s, 0x01000001, "2001:db8:1:2::10", ua, x);            assert_string_not_equal(base, x);
    vh(&s, 1, "2001:db8:1:2::11", ua, x);                     assert_string_not_equal(base, x);
    vh(&s, 1, "2001:db8:1:3::10", ua, x);                     assert_string_not_equal(base, x);
    vh(&s, 1, "2001:db8:1:2::10", "Mozilla/5.0 (Windows NT 10.0; Win64; x65)", x);
    assert_string_not_equal(base, x);
    vh(&s, 1, "2001:db8:1:2::10", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) ", x);
    assert_string_not_equal(base, x);
    vh(&s, 1, "2001:db8:1:2::10", "", x);                     assert_string_not_equal(base, x);
    vh(&other, 1, "2001:db8:1:2::10", ua, x);                 assert_string_not_equal(base, x);
    vh(&s, 1, "2001:db8:1:2::10", ua, x);                     assert_string_equal(base, x);

    /* IPv4: neighbours in one /24 are different visitors (the full IP goes in) */
    vh(&s, 1, "203.0.113.7", ua, base);
    vh(&s, 1, "203.0.113.8", ua, x);                          assert_string_not_equal(base, x);
}

/* The switch at midnight: tomorrow's salt, fetched the evening before, is
 * in force from 00:00:00.000; yesterday's until 23:59:59.999. A day the
 * holder does not know gives no salt. */
static void test_midnight(void **state) {
    (void)state;
    hn_salt_holder *h = hn_salt_holder_create();
    uint64_t midnight = utc_ms(2026, 11, 25, 0, 0, 0, 0);
    hn_salt s;
    assert_false(hn_salt_holder_at(h, midnight, &s));                    /* empty */

    hn_salt today = salt_of(20261124, 0x10), tomorrow = salt_of(20261125, 0x20);
    hn_salt_holder_set(h, &today, 1);
    assert_true(hn_salt_holder_at(h, midnight - 1, &s));
    assert_false(hn_salt_holder_at(h, midnight, &s));      /* not fetched yet: no hash, no wrong one */

    hn_salt both[] = {today, tomorrow};                    /* 23:00: tomorrow's prefetched */
    hn_salt_holder_set(h, both, 2);
    char before[33], after[33], want[33];
    assert_true(hn_salt_holder_at(h, midnight - 1, &s));
    assert_int_equal(s.day, 20261124);
    assert_memory_equal(s.key, today.key, HN_SALT_LEN);
    vh(&s, 9, "203.0.113.5", "UA", before);
    assert_true(hn_salt_holder_at(h, midnight, &s));
    assert_int_equal(s.day, 20261125);
    assert_memory_equal(s.key, tomorrow.key, HN_SALT_LEN);
    vh(&s, 9, "203.0.113.5", "UA", after);
    vh(&tomorrow, 9, "203.0.113.5", "UA", want);
    assert_string_equal(after, want);
    assert_string_not_equal(before, after);                 /* a new day, a new visitor */
    assert_true(hn_salt_holder_at(h, midnight + HN_DAY_MS - 1, &s));
    assert_false(hn_salt_holder_at(h, midnight + HN_DAY_MS, &s));          /* day after tomorrow */
    assert_false(hn_salt_holder_at(h, midnight - HN_DAY_MS - 1, &s));      /* day before yesterday */

    /* the next refresh drops a day: a set replaces, it does not merge */
    hn_salt next[] = {tomorrow, salt_of(20261126, 0x30)};
    hn_salt_holder_set(h, next, 2);
    assert_false(hn_salt_holder_has(h, 20261124));
    assert_true(hn_salt_holder_has(h, 20261125));
    assert_true(hn_salt_holder_has(h, 20261126));
    hn_salt_holder_destroy(h);
}

static void test_holder_edges(void **state) {
    (void)state;
    hn_salt s;
    assert_false(hn_salt_holder_get(NULL, 20261124, &s));
    assert_false(hn_salt_holder_has(NULL, 20261124));
    hn_salt_holder_destroy(NULL);

    hn_salt_holder *h = hn_salt_holder_create();
    assert_false(hn_salt_holder_has(h, 0));                 /* empty slots are day 0 */
    hn_salt many[] = {salt_of(20261123, 1), salt_of(20261124, 2), salt_of(20261124, 99),
                      salt_of(20261125, 3), salt_of(20261126, 4)};
    hn_salt_holder_set(h, many, HN_ARRAY_LEN(many));
    assert_true(hn_salt_holder_get(h, 20261124, &s));
    assert_int_equal(s.key[0], 2);                          /* first of a repeated day */
    assert_true(hn_salt_holder_has(h, 20261123));
    assert_true(hn_salt_holder_has(h, 20261125));
    assert_false(hn_salt_holder_has(h, 20261126));          /* beyond HN_SALT_HOLDER_MAX */
    assert_false(hn_salt_holder_has(h, 0));
    hn_salt_holder_set(h, NULL, 0);
    assert_false(hn_salt_holder_has(h, 20261124));
    hn_salt_holder_destroy(h);
}

/* Readers on other threads while a setter flips between two sets: a reader
 * never sees a torn salt (key bytes all derived from its day) and hashes
 * on worker threads match the main thread's. */
typedef struct reader_arg {
    hn_salt_holder *h;
    _Atomic int    *stop;
    char            want_a[33], want_b[33];
    _Atomic long    reads;
    long            torn, wrong;
} reader_arg;

static hn_salt salt_for_day(uint32_t day) {
    return salt_of(day, (uint8_t)(day * 37));
}

static void *reader(void *p) {
    reader_arg *a = p;
    hn_ip addr = ip("2001:db8::42");
    while (!*a->stop) {
        for (uint32_t day = 20261124; day <= 20261127; day++) {
            hn_salt s;
            if (!hn_salt_holder_get(a->h, day, &s)) continue;
            hn_salt want = salt_for_day(day);
            if (s.day != day || memcmp(s.key, want.key, HN_SALT_LEN) != 0) a->torn++;
            if (day == 20261124 || day == 20261127) {
                char out[33];
                hn_vhash(&s, 5, &addr, "UA", 2, out);
                if (strcmp(out, day == 20261124 ? a->want_a : a->want_b) != 0) a->wrong++;
            }
            a->reads++;
        }
    }
    return NULL;
}

static void test_concurrent_readers(void **state) {
    (void)state;
    hn_salt_holder *h = hn_salt_holder_create();
    _Atomic int stop = 0;
    reader_arg args[3];
    pthread_t th[3];
    hn_salt sa = salt_for_day(20261124), sb = salt_for_day(20261127);
    for (int i = 0; i < 3; i++) {
        args[i] = (reader_arg){.h = h, .stop = &stop};
        vh(&sa, 5, "2001:db8::42", "UA", args[i].want_a);
        vh(&sb, 5, "2001:db8::42", "UA", args[i].want_b);
        assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
    }
    hn_salt set1[] = {salt_for_day(20261124), salt_for_day(20261125), salt_for_day(20261126)};
    hn_salt set2[] = {salt_for_day(20261125), salt_for_day(20261126), salt_for_day(20261127)};
    /* go on until every reader has overlapped many sets */
    for (int i = 0, busy = 1; i < 20000 || busy; i++) {
        hn_salt_holder_set(h, i & 1 ? set2 : set1, 3);
        busy = 0;
        for (int j = 0; j < 3; j++) busy |= args[j].reads < 1000;
    }
    stop = 1;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].torn, 0);
        assert_int_equal(args[i].wrong, 0);
    }
    hn_salt_holder_destroy(h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers),
        cmocka_unit_test(test_utc_day),
        cmocka_unit_test(test_salt_key_and_hex),
        cmocka_unit_test(test_stable_within_day),
        cmocka_unit_test(test_changes_with_each_input),
        cmocka_unit_test(test_midnight),
        cmocka_unit_test(test_holder_edges),
        cmocka_unit_test(test_concurrent_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
