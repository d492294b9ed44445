/* test_ip.c: client addresses — parsing, formatting, the stored form per
 * HERENOW_IP_MODE (IPv4 /24, IPv6 /48), CIDR lists for trusted relays. */
#include "common/ip.h"

#include <arpa/inet.h>
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

typedef struct store_case {
    const char *in, *mask, *full;
} store_case;

static const store_case store_cases[] = {
    {"203.0.113.77", "203.0.113.0", "203.0.113.77"},
    {"10.0.0.1", "10.0.0.0", "10.0.0.1"},
    {"255.255.255.255", "255.255.255.0", "255.255.255.255"},
    {"0.0.0.0", "0.0.0.0", "0.0.0.0"},
    {"2001:db8:1234:5678:9abc::1", "2001:db8:1234::", "2001:db8:1234:5678:9abc::1"},
    {"2001:db8:12ff:ffff::", "2001:db8:12ff::", "2001:db8:12ff:ffff::"},
    {"::1", "::", "::1"},
    {"::ffff:198.51.100.9", "198.51.100.0", "198.51.100.9"},     /* v4-mapped is v4 */
};

static void test_store_forms(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(store_cases) / sizeof(store_cases[0]); i++) {
        hn_ip a = ip(store_cases[i].in);
        char out[64];
        size_t n = hn_ip_store_form(&a, HN_IPMODE_MASK, out, sizeof(out));
        if (n != strlen(out) || strcmp(out, store_cases[i].mask) != 0)
            fail_msg("mask %s: got %s", store_cases[i].in, out);
        n = hn_ip_store_form(&a, HN_IPMODE_FULL, out, sizeof(out));
        if (n != strlen(out) || strcmp(out, store_cases[i].full) != 0)
            fail_msg("full %s: got %s", store_cases[i].in, out);
        assert_int_equal(hn_ip_store_form(&a, HN_IPMODE_DROP, out, sizeof(out)), 0);
        assert_string_equal(out, "");
    }
}

/* The hand-written IPv4 formatter against inet_ntop over a spread of values. */
static void test_v4_format_matches_inet_ntop(void **state) {
    (void)state;
    for (uint64_t x = 0; x < (1ull << 32); x += 65521) {
        struct in_addr a = {htonl((uint32_t)x)};
        char want[INET_ADDRSTRLEN], got[64];
        inet_ntop(AF_INET, &a, want, sizeof(want));
        hn_ip v = ip(want);
        hn_ip_format(&v, got, sizeof(got));
        if (strcmp(want, got) != 0) fail_msg("%s formatted as %s", want, got);
    }
}

static void test_parse_rejects(void **state) {
    (void)state;
    const char *bad[] = {"", "1.2.3", "1.2.3.256", "1.2.3.4.5", "abc", "::g", "1.2.3.4 ",
                         "01234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        hn_ip out;
        if (hn_ip_parse(bad[i], strlen(bad[i]), &out)) fail_msg("'%s' parsed", bad[i]);
    }
}

static void test_cidrs(void **state) {
    (void)state;
    hn_cidrs c;
    char err[128];
    assert_int_equal(hn_cidrs_parse("10.0.0.0/8, 192.168.1.7,2001:db8::/32 ::1", &c, err, sizeof(err)),
                     HN_OK);
    assert_int_equal(c.n, 4);
    hn_ip a;
    a = ip("10.200.3.4");   assert_true(hn_cidrs_match(&c, &a));
    a = ip("11.0.0.1");     assert_false(hn_cidrs_match(&c, &a));
    a = ip("192.168.1.7");  assert_true(hn_cidrs_match(&c, &a));
    a = ip("192.168.1.8");  assert_false(hn_cidrs_match(&c, &a));
    a = ip("2001:db8:ffff::1"); assert_true(hn_cidrs_match(&c, &a));
    a = ip("2001:db9::1");  assert_false(hn_cidrs_match(&c, &a));
    a = ip("::1");          assert_true(hn_cidrs_match(&c, &a));
    a = ip("::ffff:10.1.1.1"); assert_true(hn_cidrs_match(&c, &a));   /* mapped v4 in 10/8 */
    hn_cidrs_free(&c);

    assert_int_equal(hn_cidrs_parse("", &c, err, sizeof(err)), HN_OK);
    assert_int_equal(c.n, 0);
    a = ip("10.0.0.1");
    assert_false(hn_cidrs_match(&c, &a));
    const char *bad[] = {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "nonsense", "::1/129", "1.2.3.4/-1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (hn_cidrs_parse(bad[i], &c, err, sizeof(err)) != HN_ERR || strstr(err, "bad CIDR") == NULL)
            fail_msg("'%s' accepted (err '%s')", bad[i], err);
    }
}

static void test_ipmode_parse(void **state) {
    (void)state;
    assert_int_equal(hn_ipmode_parse("mask"), HN_IPMODE_MASK);
    assert_int_equal(hn_ipmode_parse("full"), HN_IPMODE_FULL);
    assert_int_equal(hn_ipmode_parse("drop"), HN_IPMODE_DROP);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_forms),
        cmocka_unit_test(test_v4_format_matches_inet_ntop),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_cidrs),
        cmocka_unit_test(test_ipmode_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
