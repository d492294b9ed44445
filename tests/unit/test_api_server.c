/* test_api_server.c: the api server's pure request parsing — routes and
 * their parameters, strict percent-decoding, canonical widget ids, the
 * query string rules, the Authorization header, and what the access log
 * may show. */
#include "api/internal.h"
#include "common/pct.h"
#include "api/request.h"
#include "api/router.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* ---- routes ------------------------------------------------------------------------- */

typedef struct route_case {
    const char   *path;
    hn_api_method m;
    const char   *want;      /* route name, or "404" / "405:<Allow>" */
    const char   *params;    /* the raw parameters joined by '|' */
} route_case;

#define W "/api/visitor-tracking/widgets"
#define S "/api/visitor-tracking/sessions"

static const route_case route_cases[] = {
    {W, HN_GET, "widgets", ""},
    {W "/42/active-visitors", HN_GET, "active_visitors", "42"},
    {W "/42/visitor-stats", HN_GET, "stats", "42"},
    {W "/42/timeseries", HN_GET, "timeseries", "42"},
    {W "/42/breakdown", HN_GET, "breakdown", "42"},
    {W "/42/sessions", HN_GET, "sessions", "42"},
    {W "/42/export.csv", HN_GET, "export", "42"},
    {W "/42/visitors/v%2F1", HN_DELETE, "erase_visitor", "42|v%2F1"},
    {S "/abc", HN_GET, "session", "abc"},
    {S "/abc/deactivate", HN_POST, "deactivate", "abc"},
    {W "/abc/visitor-stats", HN_GET, "stats", "abc"},       /* the id is checked later */
    {W "/42/visitor-stats", HN_POST, "405:GET", ""},
    {S "/abc/deactivate", HN_GET, "405:POST", ""},
    {W "/42/visitors/v1", HN_GET, "405:DELETE", ""},
    {W, 0, "405:GET", ""},                                   /* HEAD, PUT, ... */
    {W "/", HN_GET, "404", ""},
    {W "//visitor-stats", HN_GET, "404", ""},
    {W "/42/visitor-stats/", HN_GET, "404", ""},
    {W "/42/visitor-stats/x", HN_GET, "404", ""},
    {W "/42", HN_GET, "404", ""},
    {S, HN_GET, "404", ""},
    {"/api/visitor-tracking", HN_GET, "404", ""},
    {"/api/visitor-tracking/widgets/42/export.csv.bak", HN_GET, "404", ""},
    {"/API/visitor-tracking/widgets", HN_GET, "404", ""},
    {"", HN_GET, "404", ""},
    {"/", HN_GET, "404", ""},
};

static void test_routes(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]); i++) {
        const route_case *c = &route_cases[i];
        hn_str p[HN_API_MAX_PATH_PARAMS];
        int n = -1;
        char allow[64], got[128], params[256] = "";
        int r = hn_api_route_find(c->path, c->m, p, &n, allow, sizeof(allow));
        if (r == -1) snprintf(got, sizeof(got), "404");
        else if (r == -2) snprintf(got, sizeof(got), "405:%s", allow);
        else {
            snprintf(got, sizeof(got), "%s", hn_api_route_name(r));
            for (int k = 0; k < n; k++) {
                size_t l = strlen(params);
                snprintf(params + l, sizeof(params) - l, "%s%.*s", k ? "|" : "", (int)p[k].len, p[k].p);
            }
        }
        if (strcmp(got, c->want) != 0) fail_msg("%s: got %s, want %s", c->path, got, c->want);
        if (r >= 0 && strcmp(params, c->params) != 0)
            fail_msg("%s: params %s, want %s", c->path, params, c->params);
    }
}

/* ---- percent-decoding ------------------------------------------------------------ */

typedef struct pct_case {
    const char *in;
    bool        plus;
    const char *want;      /* NULL: refused */
} pct_case;

static const pct_case pct_cases[] = {
    {"abc", false, "abc"},
    {"", false, ""},
    {"a%20b", false, "a b"},
    {"a+b", false, "a+b"},
    {"a+b", true, "a b"},
    {"%2B", true, "+"},
    {"%2f%2F", false, "//"},
    {"%e2%82%ac", false, "\xe2\x82\xac"},
    {"%", false, NULL},
    {"%4", false, NULL},
    {"ab%4", false, NULL},
    {"%zz", false, NULL},
    {"%4g", false, NULL},
    {"%g4", false, NULL},
    {"%00", false, NULL},
    {"a%00b", true, NULL},
    {"%%41", false, NULL},
    {"100%", false, NULL},
};

static void test_pct_decode(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(pct_cases) / sizeof(pct_cases[0]); i++) {
        const pct_case *c = &pct_cases[i];
        char out[64];
        long n = hn_pct_decode(c->in, strlen(c->in), out, sizeof(out), HN_PCT_NO_NUL | (c->plus ? HN_PCT_PLUS : 0));
        if (c->want == NULL) {
            if (n >= 0) fail_msg("'%s' decoded as '%s', want refused", c->in, out);
            continue;
        }
        if (n < 0) fail_msg("'%s' refused, want '%s'", c->in, c->want);
        assert_int_equal(n, (long)strlen(c->want));
        assert_string_equal(out, c->want);
    }
    /* never reads past n: "%4" cut out of "%41" is refused */
    char out[8];
    assert_true(hn_pct_decode("%41", 2, out, sizeof(out), HN_PCT_NO_NUL) < 0);
    assert_int_equal(hn_pct_decode("%41", 3, out, sizeof(out), HN_PCT_NO_NUL), 1);
}

/* ---- widget ids ------------------------------------------------------------------- */

static void test_widget_id(void **state) {
    (void)state;
    static const char *good[] = {"1", "9", "10", "42", "2147483647", "1000000000"};
    static const int64_t goodv[] = {1, 9, 10, 42, 2147483647, 1000000000};
    static const char *bad[] = {"", "0", "00", "01", "-1", "+1", " 1", "1 ", "1e3", "0x10",
                                "2147483648", "9999999999", "99999999999", "abc", "1.0", "１"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t v = 0;
        if (!hn_api_widget_id(good[i], &v)) fail_msg("'%s' refused", good[i]);
        assert_int_equal(v, goodv[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = -7;
        if (hn_api_widget_id(bad[i], &v)) fail_msg("'%s' accepted as %lld", bad[i], (long long)v);
        assert_int_equal(v, -7);
    }
}

/* ---- query strings ------------------------------------------------------------------ */

static void free_query(hn_api_req *rq) {
    for (int i = 0; i < rq->nquery; i++) {
        free(rq->qkey[i]);
        free(rq->qval[i]);
    }
    memset(rq, 0, sizeof(*rq));
}

typedef struct query_case {
    const char *q;
    const char *want;     /* "k=v;k=v" decoded, or "!<part of the reason>" */
} query_case;

static const query_case query_cases[] = {
    {NULL, ""},
    {"", ""},
    {"a=1", "a=1"},
    {"a=1&b=two+words&c=%2B", "a=1;b=two words;c=+"},
    {"&&a=1&&", "a=1"},
    {"flag", "flag="},
    {"a=&b", "a=;b="},
    {"a=x=y", "a=x=y"},
    {"k%31=v", "k1=v"},
    {"a=1&a=2", "!'a' given more than once"},
    {"a=1&%61=2", "!'a' given more than once"},
    {"a&a", "!more than once"},
    {"=1", "!empty query parameter name"},
    {"a=%zz", "!bad percent-encoding"},
    {"%zz=1", "!bad percent-encoding"},
    {"a=%00", "!bad percent-encoding"},
    {"a=%4", "!bad percent-encoding"},
};

static void test_query(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(query_cases) / sizeof(query_cases[0]); i++) {
        const query_case *c = &query_cases[i];
        hn_api_req rq;
        memset(&rq, 0, sizeof(rq));
        char why[160] = "", got[256] = "";
        int rc = hn_api_parse_query(c->q, &rq, why, sizeof(why));
        if (c->want[0] == '!') {
            if (rc == HN_OK) fail_msg("'%s' accepted", c->q);
            if (strstr(why, c->want + 1) == NULL) fail_msg("'%s': reason '%s'", c->q, why);
        } else {
            if (rc != HN_OK) fail_msg("'%s' refused: %s", c->q ? c->q : "(null)", why);
            for (int k = 0; k < rq.nquery; k++) {
                size_t l = strlen(got);
                snprintf(got + l, sizeof(got) - l, "%s%s=%s", k ? ";" : "", rq.qkey[k], rq.qval[k]);
            }
            if (strcmp(got, c->want) != 0) fail_msg("'%s': got '%s', want '%s'", c->q, got, c->want);
        }
        free_query(&rq);
    }
}

static void test_query_limits_and_lookup(void **state) {
    (void)state;
    char q[512] = "";
    for (int i = 1; i <= HN_API_MAX_QUERY; i++) {
        size_t l = strlen(q);
        snprintf(q + l, sizeof(q) - l, "%sk%d=v%d", i > 1 ? "&" : "", i, i);
    }
    hn_api_req rq;
    memset(&rq, 0, sizeof(rq));
    char why[160];
    assert_int_equal(hn_api_parse_query(q, &rq, why, sizeof(why)), HN_OK);
    assert_int_equal(rq.nquery, HN_API_MAX_QUERY);
    assert_string_equal(hn_api_query(&rq, "k7"), "v7");
    assert_null(hn_api_query(&rq, "k0"));
    assert_null(hn_api_query(&rq, "K7"));
    free_query(&rq);
    strcat(q, "&one=more");
    assert_int_equal(hn_api_parse_query(q, &rq, why, sizeof(why)), HN_ERR);
    assert_non_null(strstr(why, "too many query parameters"));
    free_query(&rq);
}

/* ---- Authorization ------------------------------------------------------------------ */

static void test_bearer(void **state) {
    (void)state;
    static const struct { const char *h; hn_auth_result r; const char *tok; } cases[] = {
        {NULL, HN_AUTH_MISSING, NULL},
        {"", HN_AUTH_MISSING, NULL},
        {"   ", HN_AUTH_MISSING, NULL},
        {"Bearer abc", HN_AUTH_OK, "abc"},
        {"bearer abc", HN_AUTH_OK, "abc"},
        {"BEARER \t abc \t", HN_AUTH_OK, "abc"},
        {"Bearer ", HN_AUTH_OK, ""},
        {"Bearer", HN_AUTH_SCHEME, NULL},
        {"Bearerabc", HN_AUTH_SCHEME, NULL},
        {"Basic eDp5", HN_AUTH_SCHEME, NULL},
        {"Token abc", HN_AUTH_SCHEME, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *tok = NULL;
        size_t n = 0;
        hn_auth_result r = hn_auth_bearer(cases[i].h, &tok, &n);
        if (r != cases[i].r) fail_msg("'%s': %s", cases[i].h ? cases[i].h : "(null)", hn_auth_reason(r));
        if (r == HN_AUTH_OK && (n != strlen(cases[i].tok) || memcmp(tok, cases[i].tok, n) != 0))
            fail_msg("'%s': token '%.*s'", cases[i].h, (int)n, tok);
    }
}

/* ---- the log ---------------------------------------------------------------------------- */

static void test_log_safe(void **state) {
    (void)state;
    static const struct { const char *in, *want; } cases[] = {
        {"/api/x", "/api/x"},
        {"a b'c\\d\"e", "a%20b%27c%5Cd\"e"},
        {"\x01\x7f\xc3\xa9", "%01%7F%C3%A9"},
        {"t=hn_AbCdEfGhIjKl_0123456789abcdefghijklmnopqrstuv&x=1", "t=hn_AbCdEfGhIjKl_***&x=1"},
        {"hn_AbCdEfGhIjKl_secret", "hn_AbCdEfGhIjKl_***"},
        {"hn_short_x", "hn_short_x"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[128];
        hn_api_log_safe(out, sizeof(out), cases[i].in);
        if (strcmp(out, cases[i].want) != 0) fail_msg("'%s': '%s'", cases[i].in, out);
    }
    char out[16];
    hn_api_log_safe(out, sizeof(out), "\x01\x01\x01\x01\x01\x01\x01\x01");
    assert_true(strlen(out) < sizeof(out));
    hn_api_log_safe(out, sizeof(out), NULL);
    assert_string_equal(out, "");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_pct_decode),
        cmocka_unit_test(test_widget_id),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_query_limits_and_lookup),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_log_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
