/* test_datakey.c: encryption at rest (common/datakey.h) — the key file's
 * refusals, sealing and opening, a value altered or under an unknown key,
 * plain values passing through, JSON and CSV opening, email keys. */
#include "common/datakey.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#define K1 "k1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
#define K2 "k2 ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"

static char path[64];

static int load(const char *text, mode_t mode, char *err) {
    snprintf(path, sizeof(path), "/tmp/hn-dk-%d", (int)getpid());
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
    int rc = hn_dk_init(path, err, 256);
    unlink(path);
    return rc;
}

static char *str(hn_buf *b) {
    hn_buf_append(b, "", 1);
    b->len--;
    return b->p;
}

static void test_file(void **state) {
    (void)state;
    char err[256];
    assert_int_equal(hn_dk_init(NULL, err, sizeof(err)), HN_OK);
    assert_false(hn_dk_enabled());
    assert_int_equal(hn_dk_init("/nonexistent/key", err, sizeof(err)), HN_ERR);
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(load(K1, 0644, err), HN_ERR);
    assert_non_null(strstr(err, "chmod 640"));
    assert_int_equal(load("# only a comment\n", 0600, err), HN_ERR);
    assert_non_null(strstr(err, "no key"));
    assert_int_equal(load(K1 "k2 0011\n", 0600, err), HN_ERR);
    assert_non_null(strstr(err, "line 2"));
    assert_int_equal(load(K1 K1, 0600, err), HN_ERR);
    assert_non_null(strstr(err, "twice"));
    assert_int_equal(load("a-very-long-key-id-x 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n",
                          0600, err), HN_ERR);
    assert_false(hn_dk_enabled());
    assert_int_equal(load("# keys\n\n" K1 K2, 0640, err), HN_OK);
    assert_true(hn_dk_enabled());
    assert_string_equal(hn_dk_current(), "k2");
    char ids[64];
    hn_dk_ids(ids, sizeof(ids));
    assert_string_equal(ids, "k1,k2");
    hn_dk_shutdown();
}

static void test_seal_open(void **state) {
    (void)state;
    char err[256];
    hn_buf s = {0}, s2 = {0}, p = {0};
    /* without keys: values pass through */
    assert_int_equal(hn_dk_init(NULL, err, sizeof(err)), HN_OK);
    hn_dk_seal(&s, "Ada", 3);
    assert_string_equal(str(&s), "Ada");
    hn_buf_reset(&s);

    assert_int_equal(load(K1, 0600, err), HN_OK);
    hn_dk_seal(&s, "Ada Lovelace <ada@example.org>", 30);
    assert_true(hn_dk_is_sealed(s.p, s.len));
    assert_memory_equal(s.p, "hnenc:v1:k1:", 12);
    assert_null(strstr(str(&s), "Ada"));
    char id[HN_DK_ID_MAX + 1];
    hn_dk_id_of(s.p, s.len, id);
    assert_string_equal(id, "k1");
    assert_int_equal(hn_dk_open(&p, s.p, s.len), HN_OK);
    assert_string_equal(str(&p), "Ada Lovelace <ada@example.org>");
    /* a fresh nonce each time */
    hn_dk_seal(&s2, "Ada Lovelace <ada@example.org>", 30);
    assert_string_not_equal(str(&s2), str(&s));
    /* an empty value */
    hn_buf_reset(&s2);
    hn_dk_seal(&s2, "", 0);
    hn_buf_reset(&p);
    assert_int_equal(hn_dk_open(&p, s2.p, s2.len), HN_OK);
    assert_int_equal(p.len, 0);
    /* a plain value opens as itself */
    hn_buf_reset(&p);
    assert_int_equal(hn_dk_open(&p, "plain", 5), HN_OK);
    assert_string_equal(str(&p), "plain");

    /* altered: a ciphertext byte, the id (associated data), truncated */
    uint64_t f0 = hn_dk_failures();
    char *t = strdup(str(&s));
    t[20] = t[20] == 'A' ? 'B' : 'A';
    hn_buf_reset(&p);
    assert_int_equal(hn_dk_open(&p, t, strlen(t)), HN_ERR);
    assert_int_equal(p.len, 0);
    free(t);
    assert_int_equal(hn_dk_open(&p, s.p, s.len - 4), HN_ERR);
    assert_int_equal(hn_dk_open(&p, "hnenc:v1:k1:", 12), HN_ERR);
    assert_int_equal(hn_dk_open(&p, "hnenc:v1:k1:!!!!", 16), HN_ERR);
    assert_int_equal(hn_dk_failures() - f0, 4);

    /* rotation: k2 seals, k1 still opens; a ring without k1 cannot */
    assert_int_equal(load(K1 K2, 0600, err), HN_OK);
    hn_buf_reset(&s2);
    hn_dk_seal(&s2, "x", 1);
    assert_memory_equal(s2.p, "hnenc:v1:k2:", 12);
    hn_buf_reset(&p);
    assert_int_equal(hn_dk_open(&p, s.p, s.len), HN_OK);
    assert_int_equal(load("k1 ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", 0600, err), HN_OK);
    assert_int_equal(hn_dk_open(&p, s.p, s.len), HN_ERR);       /* same id, other key */
    assert_int_equal(load(K2, 0600, err), HN_OK);
    assert_int_equal(hn_dk_open(&p, s.p, s.len), HN_ERR);       /* unknown id */
    hn_dk_shutdown();
    hn_buf_free(&s);
    hn_buf_free(&s2);
    hn_buf_free(&p);
}

static void test_json_csv(void **state) {
    (void)state;
    char err[256];
    hn_buf s = {0}, j = {0}, o = {0};
    assert_int_equal(load(K1, 0600, err), HN_OK);
    hn_dk_seal(&s, "Zoë \"Z\" =1+1", strlen("Zoë \"Z\" =1+1"));
    hn_buf_printf(&j, "{\"name\": \"%.*s\", \"n\": 1, \"x\": \"\\\"hnenc:v1:k1:AAAA\", \"k\": [\"plain\"]}",
                  (int)s.len, s.p);
    assert_int_equal(hn_dk_open_json(&o, j.p, j.len), HN_OK);
    assert_string_equal(str(&o),
                        "{\"name\": \"Zoë \\\"Z\\\" =1+1\", \"n\": 1, \"x\": \"\\\"hnenc:v1:k1:AAAA\", \"k\": [\"plain\"]}");
    /* a string that looks sealed but is not: left as it was, HN_ERR */
    hn_buf_reset(&o);
    assert_int_equal(hn_dk_open_json(&o, "[\"hnenc:v1:k1:AAAA\"]", 20), HN_ERR);
    assert_string_equal(str(&o), "[\"hnenc:v1:k1:AAAA\"]");

    /* defused: the same JSON values, left alone by the opener */
    hn_buf d = {0};
    hn_buf_reset(&o);
    hn_dk_defuse_json(&d, j.p, j.len);
    assert_null(strstr(str(&d), "\"hnenc:"));
    assert_int_equal(hn_dk_open_json(&o, d.p, d.len), HN_OK);
    assert_string_equal(str(&o), str(&d));
    hn_buf_reset(&d);
    static const char raw[] = "{\"t\":\"hnenc:x\",\"u\":\"a\\\"hnenc:y\"}";
    hn_dk_defuse_json(&d, raw, sizeof(raw) - 1);
    assert_string_equal(str(&d), "{\"t\":\"hnenc\\u003ax\",\"u\":\"a\\\"hnenc\\u003ay\"}");
    hn_buf_free(&d);
    /* CSV: a bare sealed field, a JSON field holding one, plain fields */
    hn_buf line = {0};
    hn_buf_printf(&line, "a,%.*s,\"{\"\"name\"\": \"\"%.*s\"\"}\",,\"q,\"\"x\"\"\"\n", (int)s.len, s.p,
                  (int)s.len, s.p);
    hn_buf_reset(&o);
    assert_int_equal(hn_dk_open_csv(&o, line.p, line.len, ~0ull), HN_OK);
    assert_string_equal(str(&o),
                        "a,\"Zoë \"\"Z\"\" =1+1\",\"{\"\"name\"\": \"\"Zoë \\\"\"Z\\\"\" =1+1\"\"}\",,\"q,\"\"x\"\"\"\n");
    /* only the fields asked for: the same line with field 1 left alone */
    hn_buf_reset(&o);
    assert_int_equal(hn_dk_open_csv(&o, line.p, line.len, ~2ull), HN_OK);
    assert_non_null(strstr(str(&o), "a,hnenc:v1:k1:"));
    assert_null(strstr(str(&o) + 14, "hnenc:"));
    /* a formula is guarded */
    hn_buf_reset(&s);
    hn_dk_seal(&s, "=cmd()", 6);
    hn_buf_reset(&line);
    hn_buf_printf(&line, "%.*s\n", (int)s.len, s.p);
    hn_buf_reset(&o);
    assert_int_equal(hn_dk_open_csv(&o, line.p, line.len, ~0ull), HN_OK);
    assert_string_equal(str(&o), "\"'=cmd()\"\n");
    hn_dk_shutdown();
    hn_buf_free(&s);
    hn_buf_free(&j);
    hn_buf_free(&o);
    hn_buf_free(&line);
}

static void test_email_key(void **state) {
    (void)state;
    char err[256];
    hn_buf a = {0}, b = {0};
    assert_int_equal(hn_dk_init(NULL, err, sizeof(err)), HN_OK);
    hn_dk_email_key(&a, "Ada@Example.ORG", 15);
    assert_string_equal(str(&a), "ada@example.org");
    assert_false(hn_dk_is_email_key(a.p, a.len));
    assert_int_equal(load(K1, 0600, err), HN_OK);
    hn_buf_reset(&a);
    hn_dk_email_key(&a, "Ada@Example.ORG", 15);
    hn_dk_email_key(&b, "ada@example.org", 15);
    assert_true(hn_dk_is_email_key(a.p, a.len));
    assert_string_equal(str(&a), str(&b));
    /* the index key does not change when a key is added at the end */
    assert_int_equal(load(K1 K2, 0600, err), HN_OK);
    hn_buf_reset(&b);
    hn_dk_email_key(&b, "ada@example.org", 15);
    assert_string_equal(str(&a), str(&b));
    char fp1[HN_DK_INDEX_CHECK_LEN + 1], fp2[HN_DK_INDEX_CHECK_LEN + 1];
    hn_dk_index_check(fp1);
    assert_int_equal(strlen(fp1), HN_DK_INDEX_CHECK_LEN);
    /* without k1 first, another index key: another fingerprint */
    assert_int_equal(load(K2, 0600, err), HN_OK);
    hn_dk_index_check(fp2);
    assert_string_not_equal(fp1, fp2);
    /* an explicit index key */
    assert_int_equal(load(K1 "index 00000000000000000000000000000000000000000000000000000000000000aa\n", 0600, err),
                     HN_OK);
    hn_buf_reset(&b);
    hn_dk_email_key(&b, "ada@example.org", 15);
    assert_string_not_equal(str(&a), str(&b));
    hn_dk_shutdown();
    hn_buf_free(&a);
    hn_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_seal_open),
        cmocka_unit_test(test_json_csv),
        cmocka_unit_test(test_email_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
