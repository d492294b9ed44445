/*
 * test_http.c: the HTTP ingress's mapping from a request to beacons and an
 * answer, without sockets: X-Forwarded-For, the status of a decoded batch,
 * CORS origins, and a worker admitting decoded HTTP/pixel inputs —
 * widget lookup, bot and opt-out drops, enrichment (uap-core, masking,
 * visitor hash), and what lands in the stream buffer and presence commands.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "collector/httpmap.h"
#include "collector/worker.h"
#include "common/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- X-Forwarded-For ---------------------------------------------------------------------- */

static hn_ip ip_of(const char *s) {
    hn_ip ip;
    assert_true(hn_ip_parse(s, strlen(s), &ip));
    return ip;
}

static void xff_case(const char *proxies, const char *xff, const char *peer, const char *want) {
    hn_cidrs c;
    char err[128];
    assert_int_equal(hn_cidrs_parse(proxies, &c, err, sizeof(err)), HN_OK);
    hn_ip ip = ip_of(peer), w = ip_of(want);
    hn_http_forwarded_for(&c, xff, &ip);
    char got[64], exp[64];
    hn_ip_format(&ip, got, sizeof(got));
    hn_ip_format(&w, exp, sizeof(exp));
    if (strcmp(got, exp) != 0) fail_msg("XFF '%s' (proxies %s): got %s, want %s", xff, proxies, got, exp);
    hn_cidrs_free(&c);
}

static void test_xff(void **state) {
    (void)state;
    xff_case("127.0.0.1/32", "203.0.113.7", "127.0.0.1", "203.0.113.7");
    /* each proxy appends what it saw: the client is the rightmost untrusted */
    xff_case("10.0.0.0/8", "198.51.100.1, 203.0.113.7, 10.0.0.2", "10.0.0.3", "203.0.113.7");
    /* a client cannot pass itself off by prepending */
    xff_case("10.0.0.0/8", "1.2.3.4, 203.0.113.7", "10.0.0.3", "203.0.113.7");
    /* all trusted: the leftmost */
    xff_case("10.0.0.0/8", "10.1.1.1, 10.0.0.2", "10.0.0.3", "10.1.1.1");
    /* garbage stops the walk at the last good hop */
    xff_case("10.0.0.0/8", "203.0.113.7, garbage, 10.0.0.2", "10.0.0.3", "10.0.0.2");
    xff_case("10.0.0.0/8", "nonsense", "10.0.0.3", "10.0.0.3");
    xff_case("10.0.0.0/8", "", "10.0.0.3", "10.0.0.3");
    xff_case("10.0.0.0/8", " ,  ", "10.0.0.3", "10.0.0.3");
    /* IPv6 and spaces */
    xff_case("::1/128", "  2001:db8::1  ", "::1", "2001:db8::1");
    xff_case("127.0.0.1/32", "2001:db8::5,127.0.0.1", "127.0.0.1", "2001:db8::5");
}

/* --- the status of a decoded input -------------------------------------------------------- */

static void test_verdict(void **state) {
    (void)state;
    const char *why = "";
    hn_admitted a = {1, 3, 0, HN_R_MISSING_FIELD, false};
    assert_int_equal(hn_http_verdict(&a, "beacon 2: x", &why), 204);      /* one accepted */
    a = (hn_admitted){0, 0, 2, HN_R_OK, false};
    assert_int_equal(hn_http_verdict(&a, "", &why), 204);                 /* bots: told nothing */
    a = (hn_admitted){0, 2, 0, HN_R_MISSING_FIELD, false};
    assert_int_equal(hn_http_verdict(&a, "beacon 1: missing required key 's'", &why), 400);
    assert_string_equal(why, "beacon 1: missing required key 's'");
    a = (hn_admitted){0, 1, 0, HN_R_UNKNOWN_WIDGET, false};
    assert_int_equal(hn_http_verdict(&a, "", &why), 400);
    assert_string_equal(why, "unknown widget key (k)");
    a = (hn_admitted){0, 0, 1, HN_R_OK, true};
    assert_int_equal(hn_http_verdict(&a, "", &why), 503);
}

static void test_origins(void **state) {
    (void)state;
    const char *list = "https://a.example https://b.example,https://c.example";
    assert_true(hn_http_origin_allowed(list, "https://a.example"));
    assert_true(hn_http_origin_allowed(list, "https://b.example"));
    assert_true(hn_http_origin_allowed(list, "https://c.example"));
    assert_false(hn_http_origin_allowed(list, "https://a.exampl"));
    assert_false(hn_http_origin_allowed(list, "https://a.example.evil"));
    assert_false(hn_http_origin_allowed(list, "a.example"));
    assert_false(hn_http_origin_allowed(list, ""));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xff),
        cmocka_unit_test(test_verdict),
        cmocka_unit_test(test_origins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
