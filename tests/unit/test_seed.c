/*
 * test_seed.c: the seed routes' JSON form (proto/seed.h) from a table — each
 * row a route, a body, the reason it must give, the field a rejection names
 * and optionally one beacon field's expected value — then the JSON reader
 * under it (common/jsonread.h) and the path and error names of the HTTP side
 * (collector/httpmap.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "collector/httpmap.h"
#include "common/jsonread.h"
#include "proto/seed.h"

#define NOW 1700000000000ull

typedef struct scase {
    const char   *name;
    hn_seed_route rt;
    const char   *body;
    hn_reason     want;       /* MALFORMED / NOT_MAP: the whole input */
    const char   *field;      /* the seed field a rejection names */
    const char   *check;      /* a beacon field: t s u ti r n l e sw d0 np */
    const char   *value;
} scase;

#define S  HN_SEED_SESSION
#define P  HN_SEED_PAGEVIEW
#define E  HN_SEED_EVENT
#define OK HN_R_OK
#define SID "\"session_id\":\"sess_0001\""

static const scase cases[] = {
    {"session: pv", S, "{" SID ",\"current_page_url\":\"https://x/\"}", OK, NULL, "t", "pv"},
    {"session: url", S, "{" SID ",\"current_page_url\":\"https://x/\"}", OK, NULL, "u", "https://x/"},
    {"session: heartbeat → hb", S, "{" SID ",\"current_page_url\":\"https://x/\",\"heartbeat\":true}", OK, NULL, "t", "hb"},
    {"session: heartbeat false → pv", S, "{" SID ",\"current_page_url\":\"u\",\"heartbeat\":false}", OK, NULL, "t", "pv"},
    {"session: hb needs no url", S, "{" SID ",\"heartbeat\":true}", OK, NULL, "t", "hb"},
    {"session: camelCase", S, "{\"sessionId\":\"sess_0002\",\"currentPageUrl\":\"u\",\"currentPageTitle\":\"T\"}", OK, NULL, "ti", "T"},
    {"session: camel sid", S, "{\"sessionId\":\"sess_0002\",\"currentPageUrl\":\"u\"}", OK, NULL, "s", "sess_0002"},
    {"session: referrer", S, "{" SID ",\"current_page_url\":\"u\",\"referrer_url\":\"https://g/\"}", OK, NULL, "r", "https://g/"},
    {"session: language", S, "{" SID ",\"current_page_url\":\"u\",\"language\":\"de-DE\"}", OK, NULL, "l", "de-DE"},
    {"session: screen", S, "{" SID ",\"current_page_url\":\"u\",\"screen_width\":1920}", OK, NULL, "sw", "1920"},
    {"session: fingerprint ignored", S, "{" SID ",\"current_page_url\":\"u\",\"visitor_fingerprint\":{\"a\":1}}", OK, NULL, "t", "pv"},
    {"session: ip and ua ignored", S, "{" SID ",\"current_page_url\":\"u\",\"ip\":\"1.2.3.4\",\"user_agent\":\"bot\"}", OK, NULL, "ua", ""},
    {"session: null is absent", S, "{" SID ",\"current_page_url\":\"u\",\"referrer_url\":null}", OK, NULL, "r", ""},
    {"session: last one wins", S, "{" SID ",\"current_page_url\":\"a\",\"currentPageUrl\":\"b\"}", OK, NULL, "u", "b"},
    {"session: escapes", S, "{" SID ",\"current_page_url\":\"u\",\"current_page_title\":\"caf\\u00e9 \\\"1\\\"\"}", OK, NULL, "ti", "caf\xc3\xa9 \"1\""},
    {"session: surrogate pair", S, "{" SID ",\"current_page_url\":\"u\",\"current_page_title\":\"\\ud83d\\ude00\"}", OK, NULL, "ti", "\xf0\x9f\x98\x80"},
    {"session: short sid prefixed", S, "{\"session_id\":\"ab\",\"current_page_url\":\"u\"}", OK, NULL, "s", HN_SEED_SID_PREFIX "ab"},
    {"session: 7-char sid prefixed", S, "{\"session_id\":\"abcdefg\",\"current_page_url\":\"u\"}", OK, NULL, "s", HN_SEED_SID_PREFIX "abcdefg"},
    {"session: 8-char sid as is", S, "{\"session_id\":\"abcdefgh\",\"current_page_url\":\"u\"}", OK, NULL, "s", "abcdefgh"},
    {"session: uuid sid as is", S, "{\"session_id\":\"0b7e4b4a-8c1d-4c1e-9a55-2d0d8f0e3c11\",\"current_page_url\":\"u\"}", OK, NULL, "s", "0b7e4b4a-8c1d-4c1e-9a55-2d0d8f0e3c11"},

    {"pageview: pv", P, "{" SID ",\"page_url\":\"https://x/a\"}", OK, NULL, "t", "pv"},
    {"pageview: seconds → ms", P, "{" SID ",\"page_url\":\"u\",\"time_on_previous_page\":12.5}", OK, NULL, "e", "12500"},
    {"pageview: camel seconds", P, "{\"sessionId\":\"sess_0001\",\"pageUrl\":\"u\",\"timeOnPreviousPage\":3}", OK, NULL, "e", "3000"},
    {"pageview: title", P, "{" SID ",\"pageUrl\":\"u\",\"pageTitle\":\"A\"}", OK, NULL, "ti", "A"},
    {"pageview: current_page_url is not its name", P, "{" SID ",\"current_page_url\":\"u\"}", HN_R_MISSING_FIELD, "page_url", NULL, NULL},

    {"event: ev", E, "{" SID ",\"event_type\":\"click\"}", OK, NULL, "n", "click"},
    {"event: camel", E, "{\"sessionId\":\"sess_0001\",\"eventType\":\"chat_opened\"}", OK, NULL, "n", "chat_opened"},
    {"event: data", E, "{" SID ",\"event_type\":\"c\",\"event_data\":{\"a\":\"b\",\"n\":2,\"f\":1.5,\"t\":true,\"z\":null}}", OK, NULL, "np", "4"},
    {"event: data first", E, "{" SID ",\"event_type\":\"c\",\"eventData\":{\"a\":\"b\"}}", OK, NULL, "d0", "a=b"},
    {"event: empty data", E, "{" SID ",\"event_type\":\"c\",\"event_data\":{}}", OK, NULL, "np", "0"},
    {"event: page", E, "{" SID ",\"event_type\":\"c\",\"page_url\":\"https://x/\"}", OK, NULL, "u", "https://x/"},

    {"not json", S, "{", HN_R_MALFORMED, NULL, NULL, NULL},
    {"trailing comma", S, "{" SID ",}", HN_R_MALFORMED, NULL, NULL, NULL},
    {"trailing bytes", S, "{" SID "} x", HN_R_MALFORMED, NULL, NULL, NULL},
    {"bad number", S, "{" SID ",\"screen_width\":01}", HN_R_MALFORMED, NULL, NULL, NULL},
    {"raw control", S, "{\"session_id\":\"a\tb\"}", HN_R_MALFORMED, NULL, NULL, NULL},
    {"bad escape", S, "{\"session_id\":\"\\x\"}", HN_R_MALFORMED, NULL, NULL, NULL},
    {"empty", S, "", HN_R_MALFORMED, NULL, NULL, NULL},
    {"array", S, "[1]", HN_R_NOT_MAP, NULL, NULL, NULL},
    {"string", S, "\"x\"", HN_R_NOT_MAP, NULL, NULL, NULL},
    {"deep", S, "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}", HN_R_MALFORMED, NULL, NULL, NULL},

    {"no sid", S, "{\"current_page_url\":\"u\"}", HN_R_MISSING_FIELD, "session_id", NULL, NULL},
    {"sid number", S, "{\"session_id\":1,\"current_page_url\":\"u\"}", HN_R_BAD_TYPE, "session_id", NULL, NULL},
    {"sid dot", S, "{\"session_id\":\"a.bcdefghi\",\"current_page_url\":\"u\"}", HN_R_BAD_VALUE, "session_id", NULL, NULL},
    {"sid empty", S, "{\"session_id\":\"\",\"current_page_url\":\"u\"}", HN_R_BAD_VALUE, "session_id", NULL, NULL},
    {"sid 65", S, "{\"session_id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"current_page_url\":\"u\"}", HN_R_BAD_VALUE, "session_id", NULL, NULL},
    {"no url", S, "{" SID "}", HN_R_MISSING_FIELD, "current_page_url", NULL, NULL},
    {"url number", S, "{" SID ",\"current_page_url\":5}", HN_R_BAD_TYPE, "current_page_url", NULL, NULL},
    {"heartbeat 1", S, "{" SID ",\"current_page_url\":\"u\",\"heartbeat\":1}", HN_R_BAD_TYPE, "heartbeat", NULL, NULL},
    {"screen float", S, "{" SID ",\"current_page_url\":\"u\",\"screen_width\":1.5}", HN_R_BAD_TYPE, "screen_width", NULL, NULL},
    {"screen big", S, "{" SID ",\"current_page_url\":\"u\",\"screenHeight\":70000}", HN_R_BAD_VALUE, "screen_height", NULL, NULL},
    {"lone surrogate", S, "{" SID ",\"current_page_url\":\"\\udc00\"}", HN_R_BAD_UTF8, "current_page_url", NULL, NULL},
    {"NUL", S, "{" SID ",\"current_page_url\":\"a\\u0000\"}", HN_R_BAD_VALUE, "current_page_url", NULL, NULL},
    {"language long", S, "{" SID ",\"current_page_url\":\"u\",\"language\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}", HN_R_TOO_LONG, "language", NULL, NULL},
    {"seconds negative", P, "{" SID ",\"page_url\":\"u\",\"time_on_previous_page\":-1}", HN_R_BAD_VALUE, "time_on_previous_page", NULL, NULL},
    {"seconds over a day", P, "{" SID ",\"page_url\":\"u\",\"time_on_previous_page\":86401}", HN_R_BAD_VALUE, "time_on_previous_page", NULL, NULL},
    {"seconds huge", P, "{" SID ",\"page_url\":\"u\",\"time_on_previous_page\":1e999}", HN_R_BAD_VALUE, "time_on_previous_page", NULL, NULL},
    {"no event type", E, "{" SID "}", HN_R_MISSING_FIELD, "event_type", NULL, NULL},
    {"data array", E, "{" SID ",\"event_type\":\"c\",\"event_data\":[1]}", HN_R_BAD_TYPE, "event_data", NULL, NULL},
    {"data nested", E, "{" SID ",\"event_type\":\"c\",\"event_data\":{\"a\":{}}}", HN_R_BAD_TYPE, "event_data", NULL, NULL},
    {"data empty key", E, "{" SID ",\"event_type\":\"c\",\"event_data\":{\"\":1}}", HN_R_BAD_VALUE, "event_data", NULL, NULL},
    {"data key 65", E, "{" SID ",\"event_type\":\"c\",\"event_data\":{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\":1}}", HN_R_TOO_LONG, "event_data", NULL, NULL},
};

static char scratch[HN_HTTP_BODY_MAX + 64];
static hn_batch bt;

static void str_of(const hn_beacon *b, const char *f, char *out, size_t cap) {
    hn_str s = {"", 0};
    if (!strcmp(f, "t")) s = b->t;
    else if (!strcmp(f, "s")) s = b->s;
    else if (!strcmp(f, "u")) s = b->u;
    else if (!strcmp(f, "ti")) s = b->ti;
    else if (!strcmp(f, "r")) s = b->r;
    else if (!strcmp(f, "n")) s = b->n;
    else if (!strcmp(f, "l")) s = b->l;
    else if (!strcmp(f, "ua")) s = b->ua;
    if (!strcmp(f, "e")) snprintf(out, cap, "%llu", (unsigned long long)b->e);
    else if (!strcmp(f, "sw")) snprintf(out, cap, "%u", b->sw);
    else if (!strcmp(f, "np")) snprintf(out, cap, "%u", b->nprops);
    else if (!strcmp(f, "d0")) snprintf(out, cap, "%.*s=%.*s", (int)b->props[0].key.len, b->props[0].key.p,
                                        (int)b->props[0].v.s.len, b->props[0].v.s.p);
    else snprintf(out, cap, "%.*s", (int)s.len, s.p ? s.p : "");
}

static void run_case(void **state) {
    const scase *c = *state;
    const char *field = "unset";
    int acc = hn_beacon_decode_seed(&bt, c->rt, HN_STR_LIT("wk_test"), c->body, strlen(c->body), scratch,
                                    sizeof(scratch), NOW, &field);
    if (c->want == HN_R_MALFORMED || c->want == HN_R_NOT_MAP) {
        assert_int_equal(bt.n, 0);
        assert_int_equal(bt.all, c->want);
        assert_null(field);
        return;
    }
    assert_int_equal(bt.n, 1);
    if (bt.reason[0] != c->want) print_error("reason %s: %s\n", hn_reason_name(bt.reason[0]), bt.err);
    assert_int_equal(bt.reason[0], c->want);
    assert_int_equal(acc, c->want == OK);
    if (c->want != OK) {
        assert_non_null(field);
        assert_string_equal(field, c->field);
        assert_non_null(strstr(bt.err, c->field));        /* the reason speaks the seed's names */
        return;
    }
    const hn_beacon *b = &bt.b[0];
    assert_int_equal(b->q, NOW * 16 + 1);
    assert_true(b->fields & HN_F_SEED);
    assert_true(hn_str_eq(b->k, "wk_test", 7));
    if (c->check) {
        char got[256];
        str_of(b, c->check, got, sizeof(got));
        assert_string_equal(got, c->value);
    }
}

static void test_renamed_reason(void **state) {
    (void)state;
    const char *field;
    char body[512];
    snprintf(body, sizeof body, "{" SID ",\"event_type\":\"c\",\"event_data\":{\"v\":\"%0300d\"}}", 0);
    hn_beacon_decode_seed(&bt, E, HN_STR_LIT("k"), body, strlen(body), scratch, sizeof(scratch), NOW, &field);
    assert_string_equal(bt.err, "event_data entry 0: value: too long (300 > 256 bytes)");
    snprintf(body, sizeof body, "{" SID "}");
    hn_beacon_decode_seed(&bt, P, HN_STR_LIT("k"), body, strlen(body), scratch, sizeof(scratch), NOW, &field);
    assert_string_equal(bt.err, "missing required field 'page_url'");
    snprintf(body, sizeof body, "{" SID ",\"event_type\":\"x\"}");
    hn_beacon_decode_seed(&bt, E, (hn_str){"", 0}, body, strlen(body), scratch, sizeof(scratch), NOW,
                          &field);
    assert_string_equal(field, "widgetKey");
}

/* ---- common/jsonread.h ---------------------------------------------------------------- */

static void test_jread_check(void **state) {
    (void)state;
    static const char *good[] = {"{}", " [ ] ", "0", "-0.5e+3", "\"\\u00e9\"", "true", "null",
                                 "{\"a\":[1,{\"b\":false}]}", "1E9"};
    static const char *bad[] = {"", "{", "[1,]", "01", "1.", ".5", "+1", "tru", "nul", "\"\\u12\"",
                                "{\"a\" 1}", "{1:2}", "[1 2]", "\"a", "{}{}", "- 1", "1e", "NaN"};
    for (size_t i = 0; i < HN_ARRAY_LEN(good); i++) {
        if (!hn_jread_check(good[i], strlen(good[i]))) print_error("good: %s\n", good[i]);
        assert_true(hn_jread_check(good[i], strlen(good[i])));
    }
    for (size_t i = 0; i < HN_ARRAY_LEN(bad); i++) {
        if (hn_jread_check(bad[i], strlen(bad[i]))) print_error("bad: %s\n", bad[i]);
        assert_false(hn_jread_check(bad[i], strlen(bad[i])));
    }
}

static void test_jread_num(void **state) {
    (void)state;
    int64_t i = 0;
    double d = 0;
    hn_jval v = {HN_J_NUM, false, "9223372036854775807", 19};
    assert_int_equal(hn_jread_num(&v, &i, &d), 1);
    assert_int_equal(i, INT64_MAX);
    v = (hn_jval){HN_J_NUM, false, "9223372036854775808", 19};
    assert_int_equal(hn_jread_num(&v, &i, &d), 2);
    v = (hn_jval){HN_J_NUM, false, "-2.5", 4};
    assert_int_equal(hn_jread_num(&v, &i, &d), 2);
    assert_true(d == -2.5);
    v = (hn_jval){HN_J_NUM, false, "1e400", 5};
    assert_int_equal(hn_jread_num(&v, &i, &d), 0);
}

/* ---- collector/httpmap.h --------------------------------------------------------------- */

static void test_seed_path(void **state) {
    (void)state;
    hn_str k;
    assert_int_equal(hn_http_seed_path("/api/visitor-tracking/public/widget/abc/track-session", &k), S);
    assert_true(hn_str_eq(k, "abc", 3));
    assert_int_equal(hn_http_seed_path("/api/visitor-tracking/public/widget/a%20b/track-pageview", &k), P);
    assert_true(hn_str_eq(k, "a%20b", 5));
    assert_int_equal(hn_http_seed_path("/api/visitor-tracking/public/widget/abc/track-event", &k), E);
    assert_int_equal(hn_http_seed_path("/api/visitor-tracking/public/widget//track-event", &k), HN_SEED_NONE);
    assert_int_equal(hn_http_seed_path("/api/visitor-tracking/public/widget/abc/track-events", &k), HN_SEED_NONE);
    assert_int_equal(hn_http_seed_path("/api/visitor-tracking/public/widget/abc/x/track-event", &k), HN_SEED_NONE);
    assert_int_equal(hn_http_seed_path("/api/visitor-tracking/public/widget/abc", &k), HN_SEED_NONE);
    assert_int_equal(hn_http_seed_path("/b", &k), HN_SEED_NONE);
    assert_string_equal(hn_http_seed_error(400, HN_R_MALFORMED), "bad_json");
    assert_string_equal(hn_http_seed_error(400, HN_R_NOT_MAP), "bad_json");
    assert_string_equal(hn_http_seed_error(400, HN_R_UNKNOWN_WIDGET), "unknown_widget");
    assert_string_equal(hn_http_seed_error(400, HN_R_BAD_TYPE), "bad_field");
    assert_string_equal(hn_http_seed_error(413, HN_R_TOO_LARGE), "too_large");
    assert_string_equal(hn_http_seed_error(429, HN_R_RATE_LIMITED), "rate_limited");
    assert_string_equal(hn_http_seed_error(503, HN_R_SPOOL_FULL), "unavailable");
}

int main(void) {
    struct CMUnitTest t[HN_ARRAY_LEN(cases) + 4];
    size_t n = 0;
    for (size_t i = 0; i < HN_ARRAY_LEN(cases); i++)
        t[n++] = (struct CMUnitTest){cases[i].name, run_case, NULL, NULL, (void *)&cases[i]};
    t[n++] = (struct CMUnitTest)cmocka_unit_test(test_renamed_reason);
    t[n++] = (struct CMUnitTest)cmocka_unit_test(test_jread_check);
    t[n++] = (struct CMUnitTest)cmocka_unit_test(test_jread_num);
    t[n++] = (struct CMUnitTest)cmocka_unit_test(test_seed_path);
    return _cmocka_run_group_tests("seed", t, n, NULL, NULL);
}
