/* test_ticket.c: the live stream's tickets — round trip, URL-safe shape,
 * expiry, a MAC that catches any altered byte and another key, malformed
 * input, the key setting. */
#include "api/ticket.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static uint8_t key[HN_TICKET_KEY_LEN], other[HN_TICKET_KEY_LEN];
static const hn_ticket T = {.widget_id = 2147483647, .expires_ms = 1795500000000,
                            .nonce = 0x0123456789abcdefULL, .token_id = "AbCdEf012345"};

static int setup(void **state) {
    (void)state;
    for (int i = 0; i < HN_TICKET_KEY_LEN; i++) {
        key[i] = (uint8_t)i;
        other[i] = (uint8_t)(i + 1);
    }
    return 0;
}

static void test_round_trip(void **state) {
    (void)state;
    char s[HN_TICKET_LEN + 1];
    hn_ticket got;
    hn_ticket_mint(key, &T, s);
    assert_int_equal(strlen(s), HN_TICKET_LEN);
    assert_memory_equal(s, "hnt_", 4);
    for (const char *p = s + 4; *p; p++)        /* base64url: nothing to %-escape in a query */
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
    assert_int_equal(hn_ticket_verify(key, s, T.expires_ms - 1, &got), HN_TICKET_OK);
    assert_int_equal(got.widget_id, T.widget_id);
    assert_int_equal(got.expires_ms, T.expires_ms);
    assert_true(got.nonce == T.nonce);
    assert_string_equal(got.token_id, T.token_id);
}

static void test_expired(void **state) {
    (void)state;
    char s[HN_TICKET_LEN + 1];
    hn_ticket got;
    hn_ticket_mint(key, &T, s);
    assert_int_equal(hn_ticket_verify(key, s, T.expires_ms, &got), HN_TICKET_EXPIRED);
    assert_int_equal(hn_ticket_verify(key, s, T.expires_ms + 60000, &got), HN_TICKET_EXPIRED);
}

/* Every single character changed to another of the alphabet: never OK. */
static void test_altered(void **state) {
    (void)state;
    char s[HN_TICKET_LEN + 1];
    hn_ticket got;
    hn_ticket_mint(key, &T, s);
    for (int i = 4; i < HN_TICKET_LEN; i++) {
        char t[HN_TICKET_LEN + 1];
        memcpy(t, s, sizeof(t));
        t[i] = t[i] == 'A' ? 'B' : 'A';
        hn_ticket_result r = hn_ticket_verify(key, t, 0, &got);
        assert_true(r == HN_TICKET_FORGED || r == HN_TICKET_MALFORMED);
    }
    assert_int_equal(hn_ticket_verify(other, s, 0, &got), HN_TICKET_FORGED);
    hn_ticket u = T;
    u.widget_id = 7;
    char s2[HN_TICKET_LEN + 1];
    hn_ticket_mint(key, &u, s2);
    assert_string_not_equal(s, s2);
}

static void test_malformed(void **state) {
    (void)state;
    char s[HN_TICKET_LEN + 1];
    hn_ticket got;
    hn_ticket_mint(key, &T, s);
    const char *bad[] = {NULL, "", "hnt_", "hn_AbCdEf012345_x", "hnt_abc"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(hn_ticket_verify(key, bad[i], 0, &got), HN_TICKET_MALFORMED);
    char t[HN_TICKET_LEN + 2];
    snprintf(t, sizeof(t), "%sA", s);                    /* one too long */
    assert_int_equal(hn_ticket_verify(key, t, 0, &got), HN_TICKET_MALFORMED);
    memcpy(t, s, sizeof(s));
    t[10] = '+';                                           /* standard base64, not URL-safe */
    assert_int_equal(hn_ticket_verify(key, t, 0, &got), HN_TICKET_MALFORMED);
    t[10] = '=';
    assert_int_equal(hn_ticket_verify(key, t, 0, &got), HN_TICKET_MALFORMED);
    memcpy(t, s, sizeof(s));
    t[0] = 'H';
    assert_int_equal(hn_ticket_verify(key, t, 0, &got), HN_TICKET_MALFORMED);
}

static void test_key_parse(void **state) {
    (void)state;
    uint8_t k[HN_TICKET_KEY_LEN];
    assert_int_equal(hn_ticket_key_parse("000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F", k), HN_OK);
    assert_memory_equal(k, key, sizeof(k));
    assert_int_equal(hn_ticket_key_parse("", k), HN_ERR);
    assert_int_equal(hn_ticket_key_parse(NULL, k), HN_ERR);
    assert_int_equal(hn_ticket_key_parse("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1", k), HN_ERR);
    assert_int_equal(hn_ticket_key_parse("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g", k), HN_ERR);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_expired),
        cmocka_unit_test(test_altered),    cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_key_parse),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
