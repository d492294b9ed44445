/* test_token.c: API tokens — the format hn_token_make draws, what
 * hn_token_split accepts and rejects, the SHA-256 that is stored, the
 * constant-time digest comparison. */
#include "common/token.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define ID   "AbCdEf012345"                        /* 12 */
#define SEC  "0123456789abcdefghijABCDEFGHIJzZ"    /* 32 */
#define GOOD "hn_" ID "_" SEC

static bool all_base62(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')))
            return false;
    }
    return true;
}

static void test_lengths(void **state) {
    (void)state;
    assert_int_equal(HN_TOKEN_LEN, 48);
    assert_int_equal(strlen(GOOD), HN_TOKEN_LEN);
}

static void test_make_format(void **state) {
    (void)state;
    char tok[HN_TOKEN_LEN + 1], id[HN_TOKEN_ID_LEN + 1];
    memset(tok, 'x', sizeof(tok));
    memset(id, 'x', sizeof(id));
    assert_int_equal(hn_token_make(tok, id), HN_OK);
    assert_int_equal(strlen(tok), HN_TOKEN_LEN);
    assert_memory_equal(tok, "hn_", 3);
    assert_true(all_base62(tok + 3, HN_TOKEN_ID_LEN));
    assert_int_equal(tok[3 + HN_TOKEN_ID_LEN], '_');
    assert_true(all_base62(tok + 3 + HN_TOKEN_ID_LEN + 1, HN_TOKEN_SECRET_LEN));
    assert_int_equal(strlen(id), HN_TOKEN_ID_LEN);
    assert_memory_equal(id, tok + 3, HN_TOKEN_ID_LEN);
    assert_true(hn_token_id_valid(id, strlen(id)));
}

/* Many tokens: all distinct (ids and secrets), all split back to their id,
 * and every base62 symbol shows up in both parts (a biased or truncated
 * alphabet would miss some). */
static void test_make_distinct_and_split(void **state) {
    (void)state;
    enum { N = 200 };
    static char toks[N][HN_TOKEN_LEN + 1];
    bool seen_id[128] = {false}, seen_secret[128] = {false};
    for (int i = 0; i < N; i++) {
        char id[HN_TOKEN_ID_LEN + 1], back[HN_TOKEN_ID_LEN + 1];
        assert_int_equal(hn_token_make(toks[i], id), HN_OK);
        assert_int_equal(hn_token_split(toks[i], strlen(toks[i]), back), HN_OK);
        assert_string_equal(back, id);
        for (int k = 0; k < HN_TOKEN_ID_LEN; k++) seen_id[(unsigned char)id[k]] = true;
        for (int k = 4 + HN_TOKEN_ID_LEN; k < HN_TOKEN_LEN; k++)
            seen_secret[(unsigned char)toks[i][k]] = true;
        for (int j = 0; j < i; j++) {
            if (memcmp(toks[i] + 3, toks[j] + 3, HN_TOKEN_ID_LEN) == 0)
                fail_msg("tokens %d and %d share an id", i, j);
            if (memcmp(toks[i] + 4 + HN_TOKEN_ID_LEN, toks[j] + 4 + HN_TOKEN_ID_LEN,
                       HN_TOKEN_SECRET_LEN) == 0)
                fail_msg("tokens %d and %d share a secret", i, j);
        }
    }
    const char *alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    for (const char *a = alphabet; *a; a++) {
        /* 200 * 12 draws from 62 symbols: P(one missing) < 62 * e^-38.7 */
        if (!seen_id[(unsigned char)*a]) fail_msg("'%c' never in an id", *a);
        if (!seen_secret[(unsigned char)*a]) fail_msg("'%c' never in a secret", *a);
    }
}

static void test_random_base62(void **state) {
    (void)state;
    char out[65];
    memset(out, 'x', sizeof(out));
    assert_int_equal(hn_token_random_base62(out, 16), HN_OK);
    assert_int_equal(strlen(out), 16);
    assert_true(all_base62(out, 16));
    assert_int_equal(hn_token_random_base62(out, 0), HN_OK);
    assert_string_equal(out, "");
}

static void test_split_accepts(void **state) {
    (void)state;
    char id[HN_TOKEN_ID_LEN + 1];
    assert_int_equal(hn_token_split(GOOD, strlen(GOOD), id), HN_OK);
    assert_string_equal(id, ID);
    /* only the first n bytes count: what follows them is not looked at */
    char longer[64];
    snprintf(longer, sizeof(longer), "%s and then some", GOOD);
    assert_int_equal(hn_token_split(longer, HN_TOKEN_LEN, id), HN_OK);
    assert_string_equal(id, ID);
    /* id may be NULL: a check only */
    assert_int_equal(hn_token_split(GOOD, HN_TOKEN_LEN, NULL), HN_OK);
}

/* Well-formed but for one thing, each exactly 48 bytes (checked). */
static const struct {
    const char *why, *tok;
} bad48[] = {
    {"prefix HN_", "HN_" ID "_" SEC},
    {"prefix hn-", "hn-" ID "_" SEC},
    {"prefix xx_", "xx_" ID "_" SEC},
    {"no prefix, 48 base62", ID ID ID ID},
    {"separator -", "hn_" ID "-" SEC},
    {"separator moved left", "hn_AbCdEf01234_5" SEC},
    {"separator moved right", "hn_" ID "0_123456789abcdefghijABCDEFGHIJzZ"},
    {"'_' in the secret", "hn_" ID "_0123456789abcdefghij_BCDEFGHIJzZ"},
    {"'-' in the id", "hn_AbCd-f012345_" SEC},
    {"space in the secret", "hn_" ID "_0123456789abcdefghij BCDEFGHIJzZ"},
    {"'+' in the secret", "hn_" ID "_0123456789abcdefghijABCDEFGHIJz+"},
    {"'=' at the end", "hn_" ID "_0123456789abcdefghijABCDEFGHIJz="},
    {"non-ASCII in the id", "hn_AbCdEf01234\xc3_" SEC},
    {"high byte in the secret", "hn_" ID "_0123456789abcdefghijABCDEFGHIJz\xff"},
    {"trailing newline", "hn_" ID "_0123456789abcdefghijABCDEFGHIJz\n"},
    {"leading space", " hn" ID "_" SEC},
};

/* Wrong lengths: the bytes are fine as far as they go. */
static const struct {
    const char *why, *tok;
    size_t      n;
} badlen[] = {
    {"empty", "", 0},
    {"length 47", "hn_" ID "_0123456789abcdefghijABCDEFGHIJz", 47},
    {"length 49", GOOD "x", 49},
    {"id of 11", "hn_AbCdEf01234_" SEC "x", 48},
    {"n shorter than the string", GOOD, HN_TOKEN_LEN - 1},
    {"n much shorter", GOOD, 3},
    {"n longer than the token", GOOD "x", HN_TOKEN_LEN + 1},
    {"twice", GOOD GOOD, 2 * HN_TOKEN_LEN},
};

static void test_split_rejects(void **state) {
    (void)state;
    char id[HN_TOKEN_ID_LEN + 1];
    for (size_t i = 0; i < HN_ARRAY_LEN(bad48); i++) {
        if (strlen(bad48[i].tok) != HN_TOKEN_LEN)
            fail_msg("test case '%s' is %zu bytes, not 48", bad48[i].why, strlen(bad48[i].tok));
        strcpy(id, "untouched!!");
        if (hn_token_split(bad48[i].tok, HN_TOKEN_LEN, id) != HN_ERR)
            fail_msg("accepted: %s", bad48[i].why);
        if (strcmp(id, "untouched!!") != 0) fail_msg("%s: id written on error", bad48[i].why);
    }
    for (size_t i = 0; i < HN_ARRAY_LEN(badlen); i++) {
        assert_true(badlen[i].n <= strlen(badlen[i].tok));
        if (hn_token_split(badlen[i].tok, badlen[i].n, id) != HN_ERR)
            fail_msg("accepted: %s", badlen[i].why);
    }
    assert_int_equal(hn_token_split(NULL, 0, NULL), HN_ERR);
    assert_int_equal(hn_token_split(NULL, HN_TOKEN_LEN, NULL), HN_ERR);
}

/* n bytes in a buffer of exactly n bytes (no NUL after, nothing readable
 * past it): under ASan a read beyond n would fault. */
static void test_split_reads_only_n(void **state) {
    (void)state;
    for (size_t n = 0; n <= HN_TOKEN_LEN + 1; n++) {
        char *t = malloc(n ? n : 1);
        assert_non_null(t);
        memcpy(t, GOOD "x", n);
        int want = n == HN_TOKEN_LEN ? HN_OK : HN_ERR;
        if (hn_token_split(t, n, NULL) != want) fail_msg("n = %zu", n);
        free(t);
    }
}

/* A NUL anywhere inside the 48 bytes: n says 48, the bytes say otherwise. */
static void test_split_rejects_embedded_nul(void **state) {
    (void)state;
    for (size_t at = 0; at < HN_TOKEN_LEN; at++) {
        char t[HN_TOKEN_LEN + 1];
        memcpy(t, GOOD, sizeof(t));
        t[at] = '\0';
        if (hn_token_split(t, HN_TOKEN_LEN, NULL) != HN_ERR) fail_msg("NUL at %zu accepted", at);
    }
}

/* Every byte value at every position: only [0-9A-Za-z] in the id and secret,
 * and only the exact "hn_" and "_" elsewhere, pass. */
static void test_split_every_byte(void **state) {
    (void)state;
    for (size_t at = 0; at < HN_TOKEN_LEN; at++) {
        for (int b = 0; b < 256; b++) {
            char t[HN_TOKEN_LEN + 1];
            memcpy(t, GOOD, sizeof(t));
            t[at] = (char)b;
            bool want;
            if (at < 3) want = b == "hn_"[at];
            else if (at == 3 + HN_TOKEN_ID_LEN) want = b == '_';
            else want = all_base62(&t[at], 1);
            bool got = hn_token_split(t, HN_TOKEN_LEN, NULL) == HN_OK;
            if (got != want) fail_msg("byte 0x%02x at %zu: got %d, want %d", b, at, got, want);
        }
    }
}

static void test_id_valid(void **state) {
    (void)state;
    assert_true(hn_token_id_valid(ID, 12));
    assert_false(hn_token_id_valid("AbCdEf01234", 11));
    assert_false(hn_token_id_valid("AbCdEf0123456", 13));
    assert_false(hn_token_id_valid("AbCdEf01234_", 12));
    assert_false(hn_token_id_valid("", 0));
    assert_false(hn_token_id_valid(NULL, 12));
    assert_false(hn_token_id_valid(GOOD, HN_TOKEN_LEN));
}

static void hex(const uint8_t *d, size_t n, char *out) {
    for (size_t i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_sha256_vectors(void **state) {
    (void)state;
    /* FIPS 180-2 appendix B.1 and the empty message. */
    static const struct {
        const char *in, *want;
    } v[] = {
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(v); i++) {
        uint8_t d[HN_TOKEN_SHA256_LEN];
        char h[2 * HN_TOKEN_SHA256_LEN + 1];
        hn_token_sha256(v[i].in, strlen(v[i].in), d);
        hex(d, sizeof(d), h);
        assert_string_equal(h, v[i].want);
    }
    /* n bounds the input: "abcd" with n = 3 is "abc" */
    uint8_t a[HN_TOKEN_SHA256_LEN], b[HN_TOKEN_SHA256_LEN];
    hn_token_sha256("abc", 3, a);
    hn_token_sha256("abcd", 3, b);
    assert_memory_equal(a, b, sizeof(a));
}

static void test_digest_eq(void **state) {
    (void)state;
    uint8_t a[HN_TOKEN_SHA256_LEN], b[HN_TOKEN_SHA256_LEN];
    hn_token_sha256(GOOD, HN_TOKEN_LEN, a);
    hn_token_sha256(GOOD, HN_TOKEN_LEN, b);
    assert_true(hn_token_digest_eq(a, b));
    assert_true(hn_token_digest_eq(a, a));
    /* one bit flipped anywhere, first and last byte included */
    for (size_t i = 0; i < sizeof(b); i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(b, a, sizeof(b));
            b[i] ^= (uint8_t)(1u << bit);
            if (hn_token_digest_eq(a, b)) fail_msg("byte %zu bit %d flipped: equal", i, bit);
        }
    /* a different token of the same shape */
    char other[HN_TOKEN_LEN + 1];
    memcpy(other, GOOD, sizeof(other));
    other[HN_TOKEN_LEN - 1] = 'x';
    hn_token_sha256(other, HN_TOKEN_LEN, b);
    assert_false(hn_token_digest_eq(a, b));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_make_format),
        cmocka_unit_test(test_make_distinct_and_split),
        cmocka_unit_test(test_random_base62),
        cmocka_unit_test(test_split_accepts),
        cmocka_unit_test(test_split_rejects),
        cmocka_unit_test(test_split_reads_only_n),
        cmocka_unit_test(test_split_rejects_embedded_nul),
        cmocka_unit_test(test_split_every_byte),
        cmocka_unit_test(test_id_valid),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_digest_eq),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
