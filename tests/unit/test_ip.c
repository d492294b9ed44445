/* test_ip.c: client addresses — parsing, formatting, the stored form per
 * HERENOW_IP_MODE (IPv4 /24, IPv6 /48), CIDR lists for trusted relays. */
#include "common/ip.h"
#include "common/net.h"

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

/* --- the stored form (hn_ip_store_form), case by case --------------------- */

static const char *store(const char *addr, hn_ipmode mode, char *out, size_t cap, size_t *n) {
    hn_ip a = ip(addr);
    *n = hn_ip_store_form(&a, mode, out, cap);
    return out;
}

/* IPv4 is cut to its /24 whatever the last octet, over a spread of values. */
static void test_store_v4_mask24(void **state) {
    (void)state;
    for (uint64_t x = 0; x < (1ull << 32); x += 9973 * 7) {
        char in[INET_ADDRSTRLEN], want[INET_ADDRSTRLEN], out[64];
        struct in_addr a = {htonl((uint32_t)x)}, m = {htonl((uint32_t)x & 0xffffff00u)};
        inet_ntop(AF_INET, &a, in, sizeof(in));
        inet_ntop(AF_INET, &m, want, sizeof(want));
        size_t n;
        store(in, HN_IPMODE_MASK, out, sizeof(out), &n);
        if (strcmp(out, want) != 0 || n != strlen(want)) fail_msg("%s masked to %s (%zu)", in, out, n);
    }
    size_t n;
    char out[64];
    assert_string_equal(store("192.0.2.255", HN_IPMODE_MASK, out, sizeof(out), &n), "192.0.2.0");
    assert_int_equal(n, 9);
}

/* IPv6 keeps its first 48 bits (the site), the rest is zero. */
static void test_store_v6_mask48(void **state) {
    (void)state;
    uint32_t x = 7;
    for (int i = 0; i < 20000; i++) {
        uint8_t b[16], m[16];
        for (int k = 0; k < 16; k++) b[k] = (uint8_t)((x = x * 1664525u + 1013904223u) >> 24);
        if (memcmp(b, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0) continue;   /* that is IPv4 */
        memcpy(m, b, 6);
        memset(m + 6, 0, 10);
        char in[INET6_ADDRSTRLEN], want[INET6_ADDRSTRLEN], out[64];
        inet_ntop(AF_INET6, b, in, sizeof(in));
        inet_ntop(AF_INET6, m, want, sizeof(want));
        size_t n;
        store(in, HN_IPMODE_MASK, out, sizeof(out), &n);
        if (strcmp(out, want) != 0 || n != strlen(want)) fail_msg("%s masked to %s", in, out);
    }
    const char *cases[][2] = {
        {"2001:db8:abcd:12:3456:789a:bcde:f012", "2001:db8:abcd::"},
        {"2001:db8:abcd::", "2001:db8:abcd::"},
        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff::"},
        {"fe80::1", "fe80::"},
        {"::203.0.113.77", "::"},                     /* IPv4-compatible is IPv6 */
        {"64:ff9b::203.0.113.77", "64:ff9b::"},       /* NAT64 too */
        {"::ffff:0:203.0.113.77", "::"},              /* SIIT, not v4-mapped */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[64];
        size_t n;
        store(cases[i][0], HN_IPMODE_MASK, out, sizeof(out), &n);
        if (strcmp(out, cases[i][1]) != 0) fail_msg("%s masked to %s", cases[i][0], out);
    }
}

/* A v4-mapped IPv6 address, from text or from an AF_INET6 socket, is
 * stored as the IPv4 address it is: /24, dotted. */
static void test_store_v4_mapped(void **state) {
    (void)state;
    char out[64];
    size_t n;
    assert_string_equal(store("::ffff:203.0.113.77", HN_IPMODE_MASK, out, sizeof(out), &n), "203.0.113.0");
    assert_string_equal(store("::ffff:203.0.113.77", HN_IPMODE_FULL, out, sizeof(out), &n), "203.0.113.77");
    assert_string_equal(store("::FFFF:cb00:714d", HN_IPMODE_MASK, out, sizeof(out), &n), "203.0.113.0");

    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:198.51.100.23", &s6.sin6_addr);
    hn_ip a;
    assert_true(hn_ip_from_sockaddr((const struct sockaddr *)&s6, &a));
    assert_true(a.v4);
    assert_int_equal(hn_ip_store_form(&a, HN_IPMODE_MASK, out, sizeof(out)), 12);
    assert_string_equal(out, "198.51.100.0");
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "198.51.100.23", &s4.sin_addr);
    hn_ip b;
    assert_true(hn_ip_from_sockaddr((const struct sockaddr *)&s4, &b));
    assert_memory_equal(a.b, b.b, 16);             /* one address, one form */
    assert_true(b.v4);
}

static void test_store_full(void **state) {
    (void)state;
    const char *same[] = {"203.0.113.77", "0.0.0.0", "255.255.255.255", "2001:db8:1:2:3:4:5:6", "::1",
                          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "fe80::1"};
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        char out[64];
        size_t n;
        store(same[i], HN_IPMODE_FULL, out, sizeof(out), &n);
        if (strcmp(out, same[i]) != 0 || n != strlen(same[i])) fail_msg("%s stored as %s", same[i], out);
    }
    char out[64];
    size_t n;
    /* the canonical text, not the input's */
    assert_string_equal(store("2001:0db8:0000:0000:0000:0000:0000:0001", HN_IPMODE_FULL, out, sizeof(out), &n),
                        "2001:db8::1");
}

static void test_store_drop(void **state) {
    (void)state;
    const char *addrs[] = {"203.0.113.77", "2001:db8::1", "::ffff:203.0.113.77"};
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        char out[64];
        memset(out, 'x', sizeof(out));
        size_t n;
        store(addrs[i], HN_IPMODE_DROP, out, sizeof(out), &n);
        assert_int_equal(n, 0);
        assert_string_equal(out, "");
        assert_int_equal(out[1], 'x');              /* just the NUL */
    }
}

/* The buffer must hold any address (46 bytes, INET6_ADDRSTRLEN); a smaller
 * one gets "" and 0, even when this address would fit, and nothing is
 * written past cap. */
static void test_store_buffer_limits(void **state) {
    (void)state;
    const char *longest = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    char buf[64];
    size_t n;
    memset(buf, 'x', sizeof(buf));
    store(longest, HN_IPMODE_FULL, buf, 46, &n);
    assert_int_equal(n, 39);
    assert_string_equal(buf, longest);
    assert_int_equal(buf[46], 'x');

    for (size_t cap = 1; cap < 46; cap++) {
        memset(buf, 'x', sizeof(buf));
        store("1.2.3.4", HN_IPMODE_FULL, buf, cap, &n);
        assert_int_equal(n, 0);
        assert_int_equal(buf[0], '\0');
        for (size_t k = 1; k < sizeof(buf); k++)
            if (buf[k] != 'x') fail_msg("cap %zu: byte %zu written", cap, k);
    }
    memset(buf, 'x', sizeof(buf));
    store("2001:db8::1", HN_IPMODE_MASK, buf, 0, &n);   /* cap 0: nothing at all */
    assert_int_equal(n, 0);
    assert_int_equal(buf[0], 'x');
    store("2001:db8::1", HN_IPMODE_DROP, buf, 0, &n);
    assert_int_equal(n, 0);
    assert_int_equal(buf[0], 'x');
}

/* Listen addresses that would take each other's connections (SO_REUSEPORT
 * lets both bind): the collector refuses HTTPS there. */
static void test_addr_overlap(void **state) {
    (void)state;
    hn_addr a, b;
    char err[128];
    const struct { const char *x, *y; bool overlap; } cases[] = {
        {"127.0.0.1:7470", "127.0.0.1:7470", true},  {"0.0.0.0:7470", "127.0.0.1:7470", true},
        {"127.0.0.1:7470", "0.0.0.0:7470", true},    {"[::]:7470", "127.0.0.1:7470", true},
        {"10.0.0.1:8080", "127.0.0.1:8080", false},  {"127.0.0.1:7470", "127.0.0.1:7443", false},
        {"127.0.0.1:0", "127.0.0.1:0", false},       {"[::1]:443", "[::1]:443", true},
        {"[::1]:443", "127.0.0.1:443", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(hn_addr_parse(cases[i].x, &a, err, sizeof(err)), HN_OK);
        assert_int_equal(hn_addr_parse(cases[i].y, &b, err, sizeof(err)), HN_OK);
        assert_int_equal(hn_addr_overlap(&a, &b), cases[i].overlap);
    }
    assert_int_equal(hn_addr_port(&a), 443);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_forms),
        cmocka_unit_test(test_v4_format_matches_inet_ntop),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_cidrs),
        cmocka_unit_test(test_ipmode_parse),
        cmocka_unit_test(test_store_v4_mask24),
        cmocka_unit_test(test_store_v6_mask48),
        cmocka_unit_test(test_store_v4_mapped),
        cmocka_unit_test(test_addr_overlap),
        cmocka_unit_test(test_store_full),
        cmocka_unit_test(test_store_drop),
        cmocka_unit_test(test_store_buffer_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
