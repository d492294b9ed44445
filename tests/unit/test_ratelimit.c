/* test_ratelimit.c: the per-thread token bucket per client prefix, on a
 * synthetic clock: burst then refusal, refill at the rate, which addresses
 * share a bucket, a full table, rate 0. */
#include "collector/ratelimit.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static hn_ip ip(const char *s) {
    hn_ip out;
    if (!hn_ip_parse(s, strlen(s), &out)) fail_msg("cannot parse '%s'", s);
    return out;
}

/* The n-th of many distinct IPv4 clients (10.0.0.0/8 and up). */
static hn_ip nth_v4(uint32_t n) {
    char s[32];
    uint32_t a = 0x0a000000u + n;
    snprintf(s, sizeof(s), "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
    return ip(s);
}

/* How many takes of cost 1 pass in a row at one instant. */
static int drain(hn_rl *r, const hn_ip *a, uint64_t now) {
    int n = 0;
    while (n < 100000 && hn_rl_take(r, a, now, 1.0)) n++;
    return n;
}

static void test_burst_then_refusal(void **state) {
    (void)state;
    hn_rl *r = hn_rl_create(10, 5, 32, 64, 1024);
    hn_ip a = ip("203.0.113.7");
    const uint64_t t = 1000000;
    for (int i = 0; i < 5; i++) assert_true(hn_rl_take(r, &a, t, 1.0));
    assert_false(hn_rl_take(r, &a, t, 1.0));
    assert_false(hn_rl_take(r, &a, t, 1.0));       /* refusals take nothing … */
    assert_true(hn_rl_take(r, &a, t + 100, 1.0));  /* … so 100 ms at 10/s give exactly one */
    assert_false(hn_rl_take(r, &a, t + 100, 1.0));

    /* a cost above what is left fails and leaves the tokens there */
    hn_rl *c = hn_rl_create(1, 10, 32, 64, 64);
    assert_true(hn_rl_take(c, &a, t, 7.0));
    assert_false(hn_rl_take(c, &a, t, 4.0));
    assert_true(hn_rl_take(c, &a, t, 3.0));
    assert_false(hn_rl_take(c, &a, t, 0.5));
    hn_rl_destroy(c);
    hn_rl_destroy(r);
}

static void test_refill_at_rate(void **state) {
    (void)state;
    hn_rl *r = hn_rl_create(20, 100, 32, 64, 1024);
    hn_ip a = ip("198.51.100.1");
    uint64_t t = 5000;
    assert_int_equal(drain(r, &a, t), 100);
    /* 20/s: one token per 50 ms */
    assert_false(hn_rl_take(r, &a, t + 49, 1.0));
    assert_true(hn_rl_take(r, &a, t + 50, 1.0));
    assert_false(hn_rl_take(r, &a, t + 50, 1.0));
    /* 2.5 s later: 50 tokens */
    assert_int_equal(drain(r, &a, t + 2550), 50);
    /* a long pause fills up to burst, not beyond */
    assert_int_equal(drain(r, &a, t + 3600 * 1000), 100);
    /* sustained: one take every 50 ms always passes, one every 40 ms does not */
    t += 3600 * 1000;
    int ok = 0;
    for (int i = 1; i <= 200; i++) ok += hn_rl_take(r, &a, t + 50 * (uint64_t)i, 1.0);
    assert_int_equal(ok, 200);
    t += 50 * 200;
    ok = 0;
    for (int i = 1; i <= 250; i++) ok += hn_rl_take(r, &a, t + 40 * (uint64_t)i, 1.0);
    assert_int_equal(ok, 200);                       /* 10 s at 20/s */
    /* time going backwards gives nothing (and takes nothing) */
    assert_false(hn_rl_take(r, &a, 1, 1.0));
    hn_rl_destroy(r);
}

typedef struct share_case {
    const char *a, *b;
    bool shared;
} share_case;

/* Defaults: /32 for IPv4, /64 for IPv6. */
static const share_case share_cases[] = {
    {"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", true},   /* one /64 */
    {"2001:db8:1:2::1", "2001:db8:1:3::1", false},                   /* next /64 */
    {"203.0.113.1", "203.0.113.1", true},
    {"203.0.113.1", "::ffff:203.0.113.1", true},                     /* v4-mapped is v4 */
    {"203.0.113.1", "203.0.113.2", false},                           /* one /24, but /32 */
    {"203.0.113.1", "203.0.114.1", false},
    {"0.0.0.0", "::", false},
    {"::ffff:0:1", "::1", false},
};

static void test_sharing(void **state) {
    (void)state;
    for (size_t i = 0; i < HN_ARRAY_LEN(share_cases); i++) {
        const share_case *c = &share_cases[i];
        hn_rl *r = hn_rl_create(1, 3, 32, 64, 256);
        hn_ip a = ip(c->a), b = ip(c->b);
        assert_int_equal(drain(r, &a, 1000), 3);
        bool b_passes = hn_rl_take(r, &b, 1000, 1.0);
        if (b_passes == c->shared) fail_msg("%s / %s: shared should be %d", c->a, c->b, c->shared);
        hn_rl_destroy(r);
    }
    /* other prefixes: /24 for IPv4, /48 for IPv6 */
    hn_rl *r = hn_rl_create(1, 2, 24, 48, 256);
    hn_ip a = ip("203.0.113.1"), b = ip("203.0.113.200"), c = ip("203.0.112.1");
    assert_int_equal(drain(r, &a, 1000), 2);
    assert_false(hn_rl_take(r, &b, 1000, 1.0));
    assert_true(hn_rl_take(r, &c, 1000, 1.0));
    a = ip("2001:db8:1:2::1"), b = ip("2001:db8:1:ffff::1"), c = ip("2001:db8:2::1");
    assert_int_equal(drain(r, &a, 1000), 2);
    assert_false(hn_rl_take(r, &b, 1000, 1.0));
    assert_true(hn_rl_take(r, &c, 1000, 1.0));
    hn_rl_destroy(r);
    /* out-of-range prefixes are clamped: /200 is /128 */
    r = hn_rl_create(1, 1, 99, 200, 64);
    a = ip("2001:db8::1"), b = ip("2001:db8::2");
    assert_true(hn_rl_take(r, &a, 1000, 1.0));
    assert_true(hn_rl_take(r, &b, 1000, 1.0));
    hn_rl_destroy(r);
}

/* Many more clients than buckets: every new client still gets its burst,
 * the table stays at its size, and a client being limited that keeps
 * knocking stays limited while the others churn through the table. */
static void test_table_full(void **state) {
    (void)state;
    const size_t slots = 512;
    /* slow refill: nobody's bucket is full again within the test */
    hn_rl *r = hn_rl_create(0.01, 4, 32, 64, slots);
    assert_int_equal(hn_rl_capacity(r), slots);
    hn_ip abuser = ip("192.0.2.66");
    uint64_t t = 10000;
    assert_int_equal(drain(r, &abuser, t), 4);
    int abuser_passed = 0;
    for (uint32_t n = 0; n < 50 * slots; n++, t++) {      /* a new client every ms */
        hn_ip a = nth_v4(n);
        if (!hn_rl_take(r, &a, t, 1.0)) fail_msg("new client %u refused", n);
        if (!hn_rl_take(r, &a, t, 1.0)) fail_msg("new client %u refused its 2nd", n);
        abuser_passed += hn_rl_take(r, &abuser, t, 1.0);
        if (n % 1024 == 0) assert_true(hn_rl_tracked(r, t) <= slots);
    }
    assert_int_equal(hn_rl_tracked(r, t), slots);          /* full, and no bigger */
    assert_int_equal(hn_rl_capacity(r), slots);
    /* 0.01/s over the loop's 25.6 s: less than one token */
    assert_int_equal(abuser_passed, 0);
    hn_rl_destroy(r);

    /* everybody draining their bucket at once: newcomers still pass */
    r = hn_rl_create(1, 1, 32, 64, 64);
    for (uint32_t n = 0; n < 10000; n++) {
        hn_ip a = nth_v4(n);
        if (!hn_rl_take(r, &a, 1000, 1.0)) fail_msg("client %u refused", n);
    }
    assert_int_equal(hn_rl_tracked(r, 1000), 64);
    /* a second later every bucket is full again: nothing is tracked */
    assert_int_equal(hn_rl_tracked(r, 2000), 0);
    hn_rl_destroy(r);

    /* slots rounding */
    r = hn_rl_create(1, 1, 32, 64, 1000);
    assert_int_equal(hn_rl_capacity(r), 1024);
    hn_rl_destroy(r);
    r = hn_rl_create(1, 1, 32, 64, 0);
    assert_int_equal(hn_rl_capacity(r), 4096);
    hn_rl_destroy(r);
    r = hn_rl_create(1, 1, 32, 64, 1);
    assert_int_equal(hn_rl_capacity(r), 8);
    hn_rl_destroy(r);
}

static void test_unlimited(void **state) {
    (void)state;
    hn_rl *r = hn_rl_create(0, 0, 32, 64, 1024);
    assert_non_null(r);
    hn_ip a = ip("203.0.113.7");
    for (int i = 0; i < 100000; i++) assert_true(hn_rl_take(r, &a, 1000, 1.0));
    assert_true(hn_rl_take(r, &a, 1000, 1e9));
    assert_int_equal(hn_rl_capacity(r), 0);         /* nothing allocated for it */
    hn_rl_destroy(r);
    r = hn_rl_create(-1, 10, 32, 64, 1024);
    assert_true(hn_rl_take(r, &a, 0, 1e9));
    hn_rl_destroy(r);
    assert_true(hn_rl_take(NULL, &a, 0, 1.0));
    hn_rl_destroy(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_refusal),
        cmocka_unit_test(test_refill_at_rate),
        cmocka_unit_test(test_sharing),
        cmocka_unit_test(test_table_full),
        cmocka_unit_test(test_unlimited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
