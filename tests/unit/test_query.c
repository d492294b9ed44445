/*
 * test_query.c: the pixel's query-string decoder (hn_beacon_decode_query),
 * from a table: each row is a query (prefix + n x 'a' + suffix, so limits
 * can be hit exactly), the reason it must give, and optionally one field's
 * expected value. Every row is its own cmocka test.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "proto/beacon.h"

#define BASE "k=wk_test&s=sess_0001&t=pv&q=1&u=https%3A%2F%2Fexample.com%2F"
#define HB   "k=wk_test&s=sess_0001&t=hb&q=1"

typedef struct qcase {
    const char *name;
    const char *pre;        /* the query is pre + rep x 'a' + post */
    size_t      rep;
    const char *post;
    hn_reason   want;       /* HN_R_MALFORMED / HN_R_TOO_LARGE: whole input */
    const char *field;      /* when set: this field must equal value */
    const char *value;
} qcase;

#define OK   HN_R_OK
#define MISS HN_R_MISSING_FIELD
#define LONG HN_R_TOO_LONG
#define VAL  HN_R_BAD_VALUE
#define UTF8 HN_R_BAD_UTF8
#define BAD  HN_R_MALFORMED

static const qcase cases[] = {
    { "base", BASE, 0, "", OK, "u", "https://example.com/" },
    { "v defaults to 1", BASE, 0, "", OK, "v", "1" },
    { "v=1", BASE "&v=1", 0, "", OK, NULL, NULL },
    { "v=2", BASE "&v=2", 0, "", HN_R_BAD_VERSION, NULL, NULL },
    { "v=0", BASE "&v=0", 0, "", HN_R_BAD_VERSION, NULL, NULL },
    { "v empty is absent", BASE "&v=", 0, "", OK, NULL, NULL },
    { "v not a number", BASE "&v=one", 0, "", VAL, NULL, NULL },
    { "type and sequence", HB "&q=17", 0, "", OK, "q", "17" },

    /* percent-encoding and '+' */
    { "utf-8 two-byte", HB "&ti=caf%C3%A9", 0, "", OK, "ti", "caf\xc3\xa9" },
    { "utf-8 lower-case hex", HB "&ti=%e6%97%a5%e6%9c%ac", 0, "", OK, "ti", "\xe6\x97\xa5\xe6\x9c\xac" },
    { "utf-8 four-byte", HB "&ti=%F0%9F%98%80", 0, "", OK, "ti", "\xf0\x9f\x98\x80" },
    { "raw utf-8 passes", HB "&ti=\xc3\xa9t\xc3\xa9", 0, "", OK, "ti", "\xc3\xa9t\xc3\xa9" },
    { "plus is space", HB "&ti=Hello+World%21", 0, "", OK, "ti", "Hello World!" },
    { "encoded plus", HB "&ti=1%2B1", 0, "", OK, "ti", "1+1" },
    { "encoded ampersand", HB "&ti=a%26b&r=x", 0, "", OK, "ti", "a&b" },
    { "equals in value", HB "&ti=a=b", 0, "", OK, "ti", "a=b" },
    { "encoded key", HB "&%74i=x", 0, "", OK, "ti", "x" },
    { "bad hex digit", BASE "&ti=%G1", 0, "", BAD, NULL, NULL },
    { "truncated percent", BASE "&ti=%4", 0, "", BAD, NULL, NULL },
    { "percent at end", BASE "&ti=%", 0, "", BAD, NULL, NULL },
    { "percent percent", BASE "&ti=%%41", 0, "", BAD, NULL, NULL },
    { "bad percent in key", BASE "&%zz=1", 0, "", BAD, NULL, NULL },
    { "bad percent in unknown key", BASE "&foo=%x", 0, "", BAD, NULL, NULL },
    { "invalid utf-8 after decoding", HB "&ti=%FF", 0, "", UTF8, NULL, NULL },
    { "overlong after decoding", HB "&ti=%C0%AF", 0, "", UTF8, NULL, NULL },
    { "surrogate after decoding", HB "&ti=%ED%A0%80", 0, "", UTF8, NULL, NULL },
    { "NUL after decoding", HB "&ti=a%00b", 0, "", VAL, NULL, NULL },

    /* repeated, missing and empty keys */
    { "repeated key last wins", HB "&q=7", 0, "", OK, "q", "7" },
    { "repeated string last wins", HB "&ti=a&ti=b", 0, "", OK, "ti", "b" },
    { "repeated bad then good", HB "&q=x&q=3", 0, "", OK, "q", "3" },
    { "repeated good then bad", HB "&q=3&q=x", 0, "", VAL, NULL, NULL },
    { "last empty value makes absent", BASE "&u=", 0, "", MISS, NULL, NULL },
    { "key without = is absent", HB "&ti=a&ti", 0, "", OK, "ti", "" },
    { "k without =", "k&s=sess_0001&t=hb&q=1", 0, "", MISS, NULL, NULL },
    { "k empty", "k=&s=sess_0001&t=hb&q=1", 0, "", MISS, NULL, NULL },
    { "s missing", "k=x&t=hb&q=1", 0, "", MISS, NULL, NULL },
    { "t missing", "k=x&s=sess_0001&q=1", 0, "", MISS, NULL, NULL },
    { "q missing", "k=x&s=sess_0001&t=hb", 0, "", MISS, NULL, NULL },
    { "empty query", "", 0, "", MISS, NULL, NULL },
    { "only separators", "&&&", 0, "", MISS, NULL, NULL },
    { "empty pairs skipped", "&&" HB "&&", 0, "", OK, NULL, NULL },
    { "empty key skipped", HB "&=x", 0, "", OK, NULL, NULL },
    { "unknown key ignored", HB "&foo=bar&zz", 0, "", OK, NULL, NULL },
    { "t unknown", "k=x&s=sess_0001&q=1&t=xx", 0, "", VAL, NULL, NULL },
    { "t ev needs n", "k=x&s=sess_0001&q=1&t=ev", 0, "", MISS, NULL, NULL },
    { "t ev with n", "k=x&s=sess_0001&q=1&t=ev&n=click", 0, "", OK, "n", "click" },
    { "s bad char", "k=x&t=hb&q=1&s=sess.0001", 0, "", VAL, NULL, NULL },
    { "ua and ip decoded", HB "&ua=Mozilla%2F5.0&ip=203.0.113.7", 0, "", OK, "ua", "Mozilla/5.0" },

    /* numbers */
    { "q max", HB "&q=18446744073709551615", 0, "", OK, "q", "18446744073709551615" },
    { "q overflow", HB "&q=18446744073709551616", 0, "", VAL, NULL, NULL },
    { "q way over", HB "&q=99999999999999999999999", 0, "", VAL, NULL, NULL },
    { "q negative", HB "&q=-1", 0, "", VAL, NULL, NULL },
    { "q plus sign", HB "&q=%2B1", 0, "", VAL, NULL, NULL },
    { "q plus (space)", HB "&q=+1", 0, "", VAL, NULL, NULL },
    { "q zero", HB "&q=0", 0, "", VAL, NULL, NULL },
    { "q trailing junk", HB "&q=1a", 0, "", VAL, NULL, NULL },
    { "q hex", HB "&q=0x10", 0, "", VAL, NULL, NULL },
    { "q leading zeros", HB "&q=007", 0, "", OK, "q", "7" },
    { "e and ts", HB "&e=1500&ts=1700000000000", 0, "", OK, "e", "1500" },
    { "e zero is present", HB "&e=0", 0, "", OK, "e", "0" },
    { "e overflow", HB "&e=18446744073709551616", 0, "", VAL, NULL, NULL },
    { "sw 65535", HB "&sw=65535&sh=1", 0, "", OK, "sw", "65535" },
    { "sw 65536", HB "&sw=65536", 0, "", VAL, NULL, NULL },
    { "sh 65536", HB "&sh=65536", 0, "", VAL, NULL, NULL },

    /* limits, at the edge and one past */
    { "k 64", "s=sess_0001&t=hb&q=1&k=", 64, "", OK, NULL, NULL },
    { "k 65", "s=sess_0001&t=hb&q=1&k=", 65, "", LONG, NULL, NULL },
    { "s 8", "k=x&t=hb&q=1&s=", 8, "", OK, NULL, NULL },
    { "s 7", "k=x&t=hb&q=1&s=", 7, "", VAL, NULL, NULL },
    { "s 64", "k=x&t=hb&q=1&s=", 64, "", OK, NULL, NULL },
    { "s 65", "k=x&t=hb&q=1&s=", 65, "", LONG, NULL, NULL },
    { "u 2048", "k=x&s=sess_0001&t=pv&q=1&u=", 2048, "", OK, NULL, NULL },
    { "u 2049", "k=x&s=sess_0001&t=pv&q=1&u=", 2049, "", LONG, NULL, NULL },
    { "ti 512", HB "&ti=", 512, "", OK, NULL, NULL },
    { "ti 513", HB "&ti=", 513, "", LONG, NULL, NULL },
    { "r 2048", HB "&r=", 2048, "", OK, NULL, NULL },
    { "r 2049", HB "&r=", 2049, "", LONG, NULL, NULL },
    { "n 64", "k=x&s=sess_0001&t=ev&q=1&n=", 64, "", OK, NULL, NULL },
    { "n 65", "k=x&s=sess_0001&t=ev&q=1&n=", 65, "", LONG, NULL, NULL },
    { "l 35", HB "&l=", 35, "", OK, NULL, NULL },
    { "l 36", HB "&l=", 36, "", LONG, NULL, NULL },
    { "vid 64", HB "&vid=", 64, "", OK, NULL, NULL },
    { "vid 65", HB "&vid=", 65, "", LONG, NULL, NULL },
    { "nm 255", HB "&nm=", 255, "", OK, NULL, NULL },
    { "nm 256", HB "&nm=", 256, "", LONG, NULL, NULL },
    { "em 255", HB "&em=", 255, "", OK, NULL, NULL },
    { "em 256", HB "&em=", 256, "", LONG, NULL, NULL },
    { "ph 50", HB "&ph=", 50, "", OK, NULL, NULL },
    { "ph 51", HB "&ph=", 51, "", LONG, NULL, NULL },
    { "l limit counts decoded bytes", HB "&l=%41%41%41%41%41%41%41%41%41%41", 25, "", OK,
      "l", "AAAAAAAAAAaaaaaaaaaaaaaaaaaaaaaaaaa" },
    { "l limit counts decoded bytes, 36", HB "&l=%41%41%41%41%41%41%41%41%41%41", 26, "", LONG, NULL, NULL },

    /* d.<name> properties */
    { "d props", HB "&d.plan=pro&d.seat+count=3", 0, "", OK, "d.seat count", "3" },
    { "d repeated name last wins", HB "&d.plan=free&d.plan=pro", 0, "", OK, "d.plan", "pro" },
    { "d empty value is absent", HB "&d.plan=pro&d.plan=", 0, "", OK, "nprops", "0" },
    { "d without = is absent", HB "&d.plan", 0, "", OK, "nprops", "0" },
    { "d empty name", HB "&d.=x", 0, "", VAL, NULL, NULL },
    { "d name 64", HB "&d.", 64, "=x", OK, NULL, NULL },
    { "d name 65", HB "&d.", 65, "=x", LONG, NULL, NULL },
    { "d value 256", HB "&d.x=", 256, "", OK, NULL, NULL },
    { "d value 257", HB "&d.x=", 257, "", LONG, NULL, NULL },
    { "d name bad utf8", HB "&d.%FF=x", 0, "", UTF8, NULL, NULL },
    { "d value bad utf8", HB "&d.x=%FF", 0, "", UTF8, NULL, NULL },
    { "d value utf8", HB "&d.x=%C3%A9", 0, "", OK, "d.x", "\xc3\xa9" },
    { "bare d ignored", HB "&d=x", 0, "", OK, "nprops", "0" },
};

/* ---- running a row ----------------------------------------------------------- */

static hn_batch batch;

static char *build(const qcase *c, size_t *len) {
    size_t a = strlen(c->pre), b = strlen(c->post);
    char *q = malloc(a + c->rep + b + 1);
    memcpy(q, c->pre, a);
    memset(q + a, 'a', c->rep);
    memcpy(q + a + c->rep, c->post, b + 1);
    *len = a + c->rep + b;
    return q;
}

/* The field named f of b as text, for comparing with a row's value. */
static void field_text(const hn_beacon *b, const char *f, char *out, size_t cap) {
    const struct { const char *name; const hn_str *s; } strs[] = {
        { "t", &b->t }, { "k", &b->k }, { "s", &b->s }, { "u", &b->u }, { "ti", &b->ti },
        { "r", &b->r }, { "n", &b->n }, { "l", &b->l }, { "vid", &b->vid }, { "nm", &b->nm },
        { "em", &b->em }, { "ph", &b->ph }, { "ua", &b->ua }, { "ip", &b->ip },
    };
    out[0] = '\0';
    for (size_t i = 0; i < HN_ARRAY_LEN(strs); i++) {
        if (strcmp(f, strs[i].name) == 0) {
            snprintf(out, cap, "%.*s", (int)strs[i].s->len, strs[i].s->p ? strs[i].s->p : "");
            return;
        }
    }
    if (strcmp(f, "v") == 0) snprintf(out, cap, "1");
    else if (strcmp(f, "q") == 0) snprintf(out, cap, "%" PRIu64, b->q);
    else if (strcmp(f, "e") == 0) snprintf(out, cap, (b->fields & HN_F_E) ? "%" PRIu64 : "-", b->e);
    else if (strcmp(f, "sw") == 0) snprintf(out, cap, (b->fields & HN_F_SW) ? "%u" : "-", b->sw);
    else if (strcmp(f, "nprops") == 0) snprintf(out, cap, "%d", b->nprops);
    else if (strncmp(f, "d.", 2) == 0) {
        for (int i = 0; i < b->nprops; i++) {
            const hn_prop *p = &b->props[i];
            if (p->key.len == strlen(f + 2) && memcmp(p->key.p, f + 2, p->key.len) == 0) {
                assert_int_equal(p->type, HN_P_STR);
                snprintf(out, cap, "%.*s", (int)p->v.s.len, p->v.s.p);
            }
        }
    } else {
        fail_msg("unknown field %s in test table", f);
    }
}

static void test_case(void **state) {
    const qcase *c = *state;
    size_t len;
    char *q = build(c, &len);
    char *scratch = malloc(len ? len : 1);           /* exactly qlen: ASan sees overflows */
    char *exact = malloc(len ? len : 1);             /* the query without a NUL after it */
    memcpy(exact, q, len);

    int accepted = hn_beacon_decode_query(&batch, exact, len, scratch, len);
    if (c->want == HN_R_MALFORMED || c->want == HN_R_TOO_LARGE) {
        assert_int_equal(accepted, 0);
        assert_int_equal(batch.n, 0);
        if (batch.all != c->want)
            fail_msg("got %s, want %s", hn_reason_name(batch.all), hn_reason_name(c->want));
    } else {
        assert_int_equal(batch.n, 1);
        assert_int_equal(batch.all, HN_R_OK);
        if (batch.reason[0] != c->want)
            fail_msg("got %s, want %s (%s)", hn_reason_name(batch.reason[0]),
                     hn_reason_name(c->want), batch.err);
        assert_int_equal(accepted, c->want == HN_R_OK);
        if (c->want != HN_R_OK) assert_memory_equal(batch.err, "beacon 0: ", 10);
    }
    if (c->field) {
        char got[4096];
        field_text(&batch.b[0], c->field, got, sizeof got);
        assert_string_equal(got, c->value);
    }
    free(exact);
    free(scratch);
    free(q);
}

/* ---- fixed tests ----------------------------------------------------------------- */

static void test_props_max(void **state) {
    char q[4096];
    char scratch[4096];
    (void)state;
    for (int n = 31; n <= 34; n++) {
        size_t len = (size_t)snprintf(q, sizeof q, "%s", HB);
        for (int i = 0; i < n; i++) len += (size_t)snprintf(q + len, sizeof q - len, "&d.p%d=v%d", i, i);
        int accepted = hn_beacon_decode_query(&batch, q, len, scratch, sizeof scratch);
        assert_int_equal(batch.n, 1);
        if (n <= HN_PROPS_MAX) {
            char last[8];
            snprintf(last, sizeof last, "v%d", n - 1);
            assert_int_equal(accepted, 1);
            assert_int_equal(batch.b[0].nprops, n);
            assert_true(hn_str_eq(batch.b[0].props[n - 1].v.s, last, strlen(last)));
        } else {
            assert_int_equal(batch.reason[0], HN_R_TOO_LONG);
        }
    }
    /* 32 distinct names plus repeats of them is still 32 */
    size_t len = (size_t)snprintf(q, sizeof q, "%s", HB);
    for (int i = 0; i < 40; i++) len += (size_t)snprintf(q + len, sizeof q - len, "&d.p%d=v", i % 32);
    assert_int_equal(hn_beacon_decode_query(&batch, q, len, scratch, sizeof scratch), 1);
    assert_int_equal(batch.b[0].nprops, 32);
}

static void test_full_fields(void **state) {
    static const char q[] =
        "v=1&k=wk_live&s=Abc_def-123&t=ev&q=3&u=https%3A%2F%2Fx.io%2Fa%3Fb%3D1&ti=T%C3%ADtulo"
        "&r=https%3A%2F%2Fref.example%2F&n=chat_opened&e=250&ts=1700000000000&sw=1920&sh=1080"
        "&l=pt-BR&vid=v1&nm=Ana&em=ana%40x.io&ph=%2B55+11&d.plan=pro";
    char scratch[sizeof q];
    (void)state;
    assert_int_equal(hn_beacon_decode_query(&batch, q, sizeof q - 1, scratch, sizeof scratch), 1);
    const hn_beacon *b = &batch.b[0];
    assert_int_equal(b->type, HN_T_EV);
    assert_true(hn_str_eq(b->u, "https://x.io/a?b=1", 18));
    assert_true(hn_str_eq(b->ti, "T\xc3\xadtulo", 7));
    assert_true(hn_str_eq(b->em, "ana@x.io", 8));
    assert_true(hn_str_eq(b->ph, "+55 11", 6));
    assert_true(hn_str_eq(b->l, "pt-BR", 5));
    assert_int_equal(b->fields, HN_F_E | HN_F_TS | HN_F_SW | HN_F_SH);
    assert_true(b->e == 250 && b->ts == 1700000000000u && b->sw == 1920 && b->sh == 1080);
    assert_int_equal(b->nprops, 1);
    /* strings live in scratch, not in the query */
    assert_true(b->k.p >= scratch && b->k.p < scratch + sizeof scratch);
}

/* Bytes past qlen are not read; a scratch too small is a whole-input error. */
static void test_bounds(void **state) {
    static const char q[] = HB "&ti=hello&ti=world";
    char scratch[sizeof q];
    (void)state;
    size_t cut = strlen(HB "&ti=hello");
    assert_int_equal(hn_beacon_decode_query(&batch, q, cut, scratch, sizeof scratch), 1);
    assert_true(hn_str_eq(batch.b[0].ti, "hello", 5));

    assert_int_equal(hn_beacon_decode_query(&batch, q, sizeof q - 1, scratch, 10), 0);
    assert_int_equal(batch.n, 0);
    assert_int_equal(batch.all, HN_R_TOO_LARGE);

    /* decoding shrinks: cap == qlen is always enough */
    assert_int_equal(hn_beacon_decode_query(&batch, q, sizeof q - 1, scratch, sizeof q - 1), 1);

    assert_int_equal(hn_beacon_decode_query(&batch, NULL, 0, NULL, 0), 0);
    assert_int_equal(batch.reason[0], HN_R_MISSING_FIELD);

    size_t big = HN_HTTP_BODY_MAX + 1;
    char *p = malloc(big);
    memset(p, 'a', big);
    assert_int_equal(hn_beacon_decode_query(&batch, p, big, p, big), 0);
    assert_int_equal(batch.all, HN_R_TOO_LARGE);
    free(p);
}

/* The same beacon through both forms decodes to the same fields. */
static void test_same_as_msgpack(void **state) {
    static const char q[] = "k=wk&s=sess_0001&t=pv&q=5&u=https%3A%2F%2Fa.b%2F&e=10&d.x=y";
    char scratch[sizeof q];
    msgpack_sbuffer sb;
    msgpack_packer pk;
    hn_batch *mb = malloc(sizeof *mb);
    hn_decoder *d = hn_decoder_create();
    (void)state;
    assert_int_equal(hn_beacon_decode_query(&batch, q, sizeof q - 1, scratch, sizeof scratch), 1);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    hn_beacon_pack(&pk, &batch.b[0]);
    assert_int_equal(hn_beacon_decode_msgpack(d, mb, sb.data, sb.size), 1);
    assert_true(hn_str_eq(mb->b[0].u, "https://a.b/", 12));
    assert_true(mb->b[0].q == 5 && mb->b[0].e == 10 && mb->b[0].fields == HN_F_E);
    assert_int_equal(mb->b[0].nprops, 1);
    assert_true(hn_str_eq(mb->b[0].props[0].v.s, "y", 1));
    msgpack_sbuffer_destroy(&sb);
    hn_decoder_destroy(d);
    free(mb);
}

static uint64_t rng = 0x2545F4914F6CDD1Du;

static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_random(void **state) {
    static const char alphabet[] = "kstqvuderi.=&%+0123456789aAfF\xc3\xa9\xff";
    (void)state;
    for (int iter = 0; iter < 100000; iter++) {
        size_t len = next() % 80;
        char *q = malloc(len ? len : 1), *scratch = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++) q[i] = alphabet[next() % (sizeof alphabet - 1)];
        int accepted = hn_beacon_decode_query(&batch, q, len, scratch, len);
        assert_true(accepted == 0 || accepted == 1);
        free(q);
        free(scratch);
    }
}

int main(void) {
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_props_max),
        cmocka_unit_test(test_full_fields),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_same_as_msgpack),
        cmocka_unit_test(test_random),
    };
    size_t n = HN_ARRAY_LEN(cases) + HN_ARRAY_LEN(fixed);
    struct CMUnitTest *tests = calloc(n, sizeof *tests);
    for (size_t i = 0; i < HN_ARRAY_LEN(cases); i++) {
        tests[i] = (struct CMUnitTest){ cases[i].name, test_case, NULL, NULL, (void *)&cases[i] };
    }
    memcpy(tests + HN_ARRAY_LEN(cases), fixed, sizeof fixed);
    int failed = _cmocka_run_group_tests("query", tests, n, NULL, NULL);
    free(tests);
    return failed ? 1 : 0;
}
