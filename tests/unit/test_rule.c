/*
 * test_rule.c: rules (proto/rule.h) — definitions refused with the reason
 * that names their path (a table, hostile inputs among them), every field
 * and op evaluated on a session, all / any with time conditions (LATER and
 * its instant), the fields a rule reads, and webhook URLs (shape, and the
 * api's own addresses). No timing: eval speed belongs in benchmarks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <fnmatch.h>
#include <string.h>

#include "common/jsonread.h"
#include "proto/rule.h"

#define NOW 1800000000000LL

static const hn_rule_self self = {"127.0.0.1", 7471, "https://track.example.com", NULL, 0};

#define WRAP(conds, acts) "{\"name\":\"r\",\"conditions\":[" conds "],\"actions\":[" acts "]}"
#define ALERT "{\"type\":\"alert\",\"text\":\"hi\"}"
#define C(f, o, v) "{\"field\":\"" f "\",\"op\":\"" o "\",\"value\":" v "}"
#define URLC C("url", "contains", "\"x\"")

typedef struct bad { const char *json, *reason; } bad;

static const bad bads[] = {
    {"", "body: not well-formed JSON"},
    {"[]", "body: must be a JSON object"},
    {"{\"name\":", "body: not well-formed JSON"},
    {"{\"name\":\"r\",\"conditions\":[" URLC "]}", "actions: missing"},
    {"{\"conditions\":[" URLC "],\"actions\":[" ALERT "]}", "name: missing"},
    {"{\"name\":\"r\",\"actions\":[" ALERT "]}", "conditions: missing"},
    {"{\"name\":\"\",\"conditions\":[" URLC "],\"actions\":[" ALERT "]}", "name: must not be empty"},
    {"{\"name\":7,\"conditions\":[" URLC "],\"actions\":[" ALERT "]}", "name: must be a string"},
    {"{\"name\":\"a\\u0000b\",\"conditions\":[" URLC "],\"actions\":[" ALERT "]}", "name: must be valid UTF-8 without NUL"},
    {"{\"name\":\"a\\nb\",\"conditions\":[" URLC "],\"actions\":[" ALERT "]}", "name: no control characters"},
    {"{\"name\":\"\\ud800\",\"conditions\":[" URLC "],\"actions\":[" ALERT "]}", "name: must be valid UTF-8"},
    {"{\"name\":\"r\",\"name\":\"s\",\"conditions\":[" URLC "],\"actions\":[" ALERT "]}", "name: given twice"},
    {"{\"name\":\"r\",\"id\":1,\"conditions\":[" URLC "],\"actions\":[" ALERT "]}", "unknown member \"id\""},
    {"{\"name\":\"r\",\"enabled\":1,\"conditions\":[" URLC "],\"actions\":[" ALERT "]}", "enabled: must be true or false"},
    {"{\"name\":\"r\",\"match\":\"some\",\"conditions\":[" URLC "],\"actions\":[" ALERT "]}", "match: \"all\" or \"any\""},
    {"{\"name\":\"r\",\"conditions\":{},\"actions\":[" ALERT "]}", "conditions: must be an array"},
    {WRAP("", ALERT), "conditions: at least one"},
    {WRAP(URLC, ""), "actions: at least one"},
    {WRAP("1", ALERT), "conditions[0]: must be an object"},
    {WRAP(URLC ",{\"field\":\"url\",\"op\":\"equals\"}", ALERT), "conditions[1].value: missing"},
    {WRAP("{\"op\":\"equals\",\"value\":\"x\"}", ALERT), "conditions[0].field: missing"},
    {WRAP("{\"field\":\"url\",\"op\":\"equals\",\"value\":\"x\",\"extra\":1}", ALERT), "conditions[0]: unknown member \"extra\""},
    {WRAP("{\"field\":\"url\",\"op\":\"equals\",\"value\":\"x\",\"text\":\"y\"}", ALERT), "conditions[0]: unknown member \"text\""},
    {WRAP("{\"field\":\"url\",\"field\":\"url\",\"op\":\"equals\",\"value\":\"x\"}", ALERT), "conditions[0].field: given twice"},
    {WRAP(C("urls", "equals", "\"x\""), ALERT), "conditions[0].field: unknown field"},
    {WRAP(C("url", "in", "[\"x\"]"), ALERT), "conditions[0].op: not an op of the field url"},
    {WRAP(C("country", "equals", "\"DE\""), ALERT), "conditions[0].op: not an op of the field country"},
    {WRAP(C("page_views", "equals", "3"), ALERT), "conditions[0].op: not an op of the field page_views"},
    {WRAP(C("time_on_page", "lte", "3"), ALERT), "conditions[0].op: not an op of the field time_on_page"},
    {WRAP(C("url", "equals", "3"), ALERT), "conditions[0].value: must be a string"},
    {WRAP(C("url", "glob", "\"\""), ALERT), "conditions[0].value: must not be empty"},
    {WRAP(C("url", "regex", "\"(\""), ALERT), "conditions[0].value: regex: missing closing parenthesis"},
    {WRAP(C("url", "regex", "\"(a+)+$\""), ALERT), "conditions[0].value: regex: too costly"},
    {WRAP(C("title", "regex", "\"^(x+x+)+y$\""), ALERT), "conditions[0].value: regex: too costly"},
    {WRAP(C("country", "in", "\"DE\""), ALERT), "conditions[0].value: must be an array of strings"},
    {WRAP(C("country", "in", "[]"), ALERT), "conditions[0].value: must not be empty"},
    {WRAP(C("country", "in", "[\"DEU\"]"), ALERT), "conditions[0].value[0]: not an ISO 3166 alpha-2 country code"},
    {WRAP(C("country", "not_in", "[\"DE\",1]"), ALERT), "conditions[0].value[1]: must be a string"},
    {WRAP(C("device", "in", "[\"phone\"]"), ALERT), "conditions[0].value[0]: one of desktop, mobile, tablet, bot, other"},
    {WRAP(C("visitor", "is", "\"old\""), ALERT), "conditions[0].value: \"new\" or \"returning\""},
    {WRAP(C("page_views", "gte", "-1"), ALERT), "conditions[0].value: an integer 0..100000"},
    {WRAP(C("page_views", "gte", "100001"), ALERT), "conditions[0].value: an integer 0..100000"},
    {WRAP(C("page_views", "gte", "1.5"), ALERT), "conditions[0].value: an integer 0..100000"},
    {WRAP(C("time_on_page", "gte", "0"), ALERT), "conditions[0].value: an integer 1..86400"},
    {WRAP(C("time_on_site", "gte", "86401"), ALERT), "conditions[0].value: an integer 1..86400"},
    {WRAP(C("time_on_site", "gte", "\"30\""), ALERT), "conditions[0].value: an integer 1..86400"},
    {WRAP(C("event", "in", "[\"a\",{}]"), ALERT), "conditions[0].value[1]: must be a string"},
    {WRAP(URLC, "{\"type\":\"sms\"}"), "actions[0].type: webhook, alert or invite"},
    {WRAP(URLC, "{\"text\":\"x\"}"), "actions[0].type: missing"},
    {WRAP(URLC, "[]"), "actions[0]: must be an object"},
    {WRAP(URLC, ALERT "," ALERT), "actions[1].type: at most one alert action"},
    {WRAP(URLC, "{\"type\":\"alert\"}"), "actions[0].text: missing"},
    {WRAP(URLC, "{\"type\":\"alert\",\"text\":\"\"}"), "actions[0].text: must not be empty"},
    {WRAP(URLC, "{\"type\":\"alert\",\"text\":\"x\",\"sound\":\"yes\"}"), "actions[0].sound: must be true or false"},
    {WRAP(URLC, "{\"type\":\"alert\",\"text\":\"x\",\"url\":\"https://a/\"}"), "actions[0]: unknown member \"url\" of a alert action"},
    {WRAP(URLC, "{\"type\":\"invite\",\"text\":\"x\",\"agent_name\":\"\"}"), "actions[0].agent_name: must not be empty"},
    {WRAP(URLC, "{\"type\":\"invite\",\"text\":\"x\",\"notify\":true}"), "actions[0]: unknown member \"notify\" of a invite action"},
    {WRAP(URLC, "{\"type\":\"webhook\"}"), "actions[0].url: missing"},
    {WRAP(URLC, "{\"type\":\"webhook\",\"url\":\"ftp://h/x\"}"), "actions[0]: webhook url: only http:// and https:// URLs"},
    {WRAP(URLC, "{\"type\":\"webhook\",\"url\":\"http://127.0.0.1:7471/hook\"}"), "actions[0]: webhook url: points at this api itself"},
    {WRAP(URLC, "{\"type\":\"webhook\",\"url\":\"https://track.example.com/x\"}"), "actions[0]: webhook url: points at this installation"},
    {WRAP(URLC, ALERT "," ALERT "," ALERT "," ALERT "," ALERT "," ALERT), "actions: at most 5"},
};

static void test_bad(void **state) {
    (void)state;
    for (size_t i = 0; i < HN_ARRAY_LEN(bads); i++) {
        hn_rule *r = (hn_rule *)1;
        char err[256];
        int rc = hn_rule_parse(bads[i].json, strlen(bads[i].json), &self, &r, err, sizeof(err));
        if (rc != HN_ERR || strncmp(err, bads[i].reason, strlen(bads[i].reason)) != 0)
            fail_msg("case %zu: %s\n  want \"%s…\"\n  got %d \"%s\"", i, bads[i].json,
                     bads[i].reason, rc, err);
        assert_null(r);
    }
}

static char *repeat(const char *head, const char *item, size_t n, const char *tail) {
    size_t hl = strlen(head), il = strlen(item), tl = strlen(tail);
    char *s = malloc(hl + n * (il + 1) + tl + 1), *p = s;
    memcpy(p, head, hl), p += hl;
    for (size_t i = 0; i < n; i++) {
        if (i) *p++ = ',';
        memcpy(p, item, il), p += il;
    }
    memcpy(p, tail, tl), p += tl;
    *p = 0;
    return s;
}

static void expect_bad(const char *json, size_t len, const char *reason) {
    hn_rule *r = NULL;
    char err[256];
    assert_int_equal(hn_rule_parse(json, len, &self, &r, err, sizeof(err)), HN_ERR);
    if (strncmp(err, reason, strlen(reason)) != 0) fail_msg("want \"%s…\", got \"%s\"", reason, err);
    assert_null(r);
}

/* Hostile sizes: 10,000 conditions, a 1 MB body, nesting, long values. */
static void test_hostile(void **state) {
    (void)state;
    char *s = repeat("{\"name\":\"r\",\"actions\":[" ALERT "],\"conditions\":[", URLC, 10000, "]}");
    expect_bad(s, strlen(s), "body: larger than 65536 bytes");
    free(s);
    s = repeat("{\"name\":\"r\",\"actions\":[" ALERT "],\"conditions\":[", URLC, 21, "]}");
    expect_bad(s, strlen(s), "conditions: at most 20");
    free(s);
    s = repeat("{\"name\":\"r\",\"actions\":[" ALERT "],\"conditions\":[", URLC, 20, "]}");
    hn_rule *r = NULL;
    char err[256];
    assert_int_equal(hn_rule_parse(s, strlen(s), &self, &r, err, sizeof(err)), HN_OK);
    hn_rule_free(r);
    free(s);
    size_t big = 1 << 20;
    s = malloc(big + 1);
    memset(s, ' ', big);
    memcpy(s, "{\"name\":\"", 9);
    memset(s + 9, 'a', big - 20);
    memcpy(s + big - 11, "\"}", 2);
    expect_bad(s, big, "body: larger than 65536 bytes");
    free(s);
    s = repeat("{\"name\":\"r\",\"conditions\":[", "[", 40, "");
    char *t = repeat(s, "]", 40, "],\"actions\":[]}");
    expect_bad(t, strlen(t), "body: not well-formed JSON");
    free(s), free(t);
    s = repeat("{\"name\":\"r\",\"conditions\":[", "[[[1]]]", 10, "],\"actions\":[" ALERT "]}");
    expect_bad(s, strlen(s), "conditions[0]: must be an object");
    free(s);
    char name[300];
    memset(name, 'n', 201);
    name[201] = 0;
    s = repeat("{\"name\":\"", name, 1, "\",\"conditions\":[" URLC "],\"actions\":[" ALERT "]}");
    expect_bad(s, strlen(s), "name: must be 1 to 200 characters");
    free(s);
    /* 200 characters of two bytes each is a good name */
    s = repeat("{\"name\":\"", "\xc3\xa9", 200, "\",\"conditions\":[" URLC "],\"actions\":[" ALERT "]}");
    for (char *p = s; (p = strstr(p, "\xc3\xa9,")); ) memmove(p + 2, p + 3, strlen(p + 3) + 1);
    assert_int_equal(hn_rule_parse(s, strlen(s), &self, &r, err, sizeof(err)), HN_OK);
    assert_int_equal(strlen(hn_rule_name(r)), 400);
    hn_rule_free(r);
    free(s);
    char v[600];
    memset(v, 'v', 513);
    v[513] = 0;
    char json[2000];
    snprintf(json, sizeof(json), WRAP("{\"field\":\"url\",\"op\":\"contains\",\"value\":\"%s\"}", ALERT), v);
    expect_bad(json, strlen(json), "conditions[0].value: longer than 512 bytes");
    v[257] = 0;
    snprintf(json, sizeof(json), WRAP("{\"field\":\"url\",\"op\":\"regex\",\"value\":\"%s\"}", ALERT), v);
    expect_bad(json, strlen(json), "conditions[0].value: longer than 256 bytes");
    memset(v, 'x', 501);
    v[501] = 0;
    snprintf(json, sizeof(json), WRAP(URLC, "{\"type\":\"alert\",\"text\":\"%s\"}"), v);
    expect_bad(json, strlen(json), "actions[0].text: must be 1 to 500 characters");
    s = repeat("{\"name\":\"r\",\"actions\":[" ALERT "],\"conditions\":[{\"field\":\"country\",\"op\":\"in\",\"value\":[",
               "\"DE\"", 65, "]}]}");
    expect_bad(s, strlen(s), "conditions[0].value: at most 64 values");
    free(s);
    /* a huge webhook URL */
    s = repeat(WRAP(URLC, "{\"type\":\"webhook\",\"url\":\"https://h/"), "a", 2100, "\"}]}");
    expect_bad(s, strlen(s), "actions[0].url: longer than 2048 bytes");
    free(s);
}

static hn_rule *parse_ok(const char *json) {
    hn_rule *r = NULL;
    char err[256] = "";
    if (hn_rule_parse(json, strlen(json), &self, &r, err, sizeof(err)) != HN_OK)
        fail_msg("refused: %s\n  %s", json, err);
    return r;
}

static hn_rule_sess sess(void) {
    static const char *const ev[] = {"signup", "chat_opened"};
    hn_rule_sess s = {
        .str = {
            [HN_RF_URL] = "https://shop.example.com/pricing?plan=pro",
            [HN_RF_TITLE] = "Pricing",
            [HN_RF_REFERRER] = NULL,
            [HN_RF_LANDING] = "https://shop.example.com/?utm_source=news",
            [HN_RF_UTM_SOURCE] = "news",
            [HN_RF_COUNTRY] = "DE",
            [HN_RF_DEVICE] = "mobile",
            [HN_RF_BROWSER] = "Chrome",
            [HN_RF_OS] = "Linux",
            [HN_RF_LANGUAGE] = "en-US",
        },
        .returning = 1,
        .page_views = 3,
        .session_start_ms = NOW - 100000,
        .page_start_ms = NOW - 10000,
        .events = ev,
        .nevents = 2,
    };
    return s;
}

typedef struct evcase { const char *cond; int want; } evcase;

/* Every field and op, one condition each, on sess(). */
static const evcase evs[] = {
    {C("url", "equals", "\"https://shop.example.com/pricing?plan=pro\""), 1},
    {C("url", "equals", "\"https://shop.example.com/pricing\""), 0},
    {C("url", "not_equals", "\"https://shop.example.com/\""), 1},
    {C("url", "contains", "\"/pricing\""), 1},
    {C("url", "contains", "\"/PRICING\""), 0},
    {C("url", "not_contains", "\"/pricing\""), 0},
    {C("url", "not_contains", "\"/blog\""), 1},
    {C("url", "starts_with", "\"https://shop.\""), 1},
    {C("url", "starts_with", "\"http://shop.\""), 0},
    {C("url", "glob", "\"*/pricing*\""), 1},
    {C("url", "glob", "\"*/Pricing*\""), 0},
    {C("url", "glob", "\"https://shop.example.co?/*\""), 1},
    {C("url", "regex", "\"plan=(pro|team)$\""), 1},
    {C("url", "regex", "\"PLAN=pro\""), 0},
    {C("url", "regex", "\"(?i)PLAN=pro\""), 1},
    {C("title", "equals", "\"Pricing\""), 1},
    {C("referrer", "equals", "\"\""), 1},                 /* unknown reads as empty */
    {C("referrer", "contains", "\"google\""), 0},
    {C("landing_page", "contains", "utm_source=news"), -1},
    {C("landing_page", "contains", "\"utm_source=news\""), 1},
    {C("utm_source", "equals", "\"news\""), 1},
    {C("utm_medium", "not_equals", "\"email\""), 1},
    {C("utm_campaign", "equals", "\"x\""), 0},
    {C("country", "in", "[\"fr\",\"de\"]"), 1},
    {C("country", "not_in", "[\"DE\"]"), 0},
    {C("device", "in", "[\"desktop\",\"tablet\"]"), 0},
    {C("device", "not_in", "[\"desktop\"]"), 1},
    {C("browser", "in", "[\"chrome\",\"Firefox\"]"), 1},
    {C("browser", "equals", "\"Safari\""), 0},
    {C("os", "contains", "\"lin\""), 1},
    {C("os", "not_in", "[\"Linux\"]"), 0},
    {C("language", "in", "[\"en\"]"), 1},                  /* en matches en-US */
    {C("language", "equals", "\"en-us\""), 1},
    {C("language", "in", "[\"e\"]"), 0},
    {C("visitor", "is", "\"returning\""), 1},
    {C("visitor", "is", "\"new\""), 0},
    {C("page_views", "gte", "3"), 1},
    {C("page_views", "gte", "4"), 0},
    {C("page_views", "lte", "3"), 1},
    {C("page_views", "lte", "2"), 0},
    {C("time_on_page", "gte", "10"), 1},
    {C("time_on_page", "gte", "11"), 2},
    {C("time_on_site", "gte", "100"), 1},
    {C("time_on_site", "gte", "160"), 2},
    {C("event", "equals", "\"signup\""), 1},
    {C("event", "equals", "\"purchase\""), 0},
    {C("event", "in", "[\"purchase\",\"chat_opened\"]"), 1},
    /* lists longer than the condition's inline buffer (49 bytes): packed apart */
    {C("event", "in", "[\"a-rather-long-event-name-one\",\"a-rather-long-event-name-two\",\"signup\"]"), 1},
    {C("event", "in", "[\"a-rather-long-event-name-one\",\"a-rather-long-event-name-two\",\"sign\"]"), 0},
    {C("browser", "not_in", "[\"Safari\",\"Edge\",\"Opera\",\"Vivaldi\",\"Brave\",\"Samsung Internet\",\"Yandex\",\"CHROME\"]"), 0},
};

static void test_eval_fields(void **state) {
    (void)state;
    hn_rule_sess s = sess();
    for (size_t i = 0; i < HN_ARRAY_LEN(evs); i++) {
        char json[1024];
        snprintf(json, sizeof(json), WRAP("%s", ALERT), evs[i].cond);
        hn_rule *r = NULL;
        char err[256];
        int rc = hn_rule_parse(json, strlen(json), &self, &r, err, sizeof(err));
        if (evs[i].want < 0) {
            assert_int_equal(rc, HN_ERR);
            continue;
        }
        if (rc != HN_OK) fail_msg("case %zu refused: %s", i, err);
        int64_t at = 0;
        int got = hn_rule_eval(r, &s, NOW, &at);
        if (got != evs[i].want) fail_msg("case %zu (%s): want %d got %d", i, evs[i].cond, evs[i].want, got);
        hn_rule_free(r);
    }
}

/* Globs are matched without fnmatch when they have no '[' or '\\' (pieces
 * split at '*', or a loop over '*' and '?'): they must answer as
 * fnmatch(pattern, url, 0) does, on random patterns and URLs over a small
 * alphabet (so that pieces overlap, repeat and backtrack), and on a few
 * chosen ones. */
static void test_glob_as_fnmatch(void **state) {
    (void)state;
    static const char pat_alpha[] = "ab/*?*.", str_alpha[] = "ab/.";
    static const char *const fixed[][2] = {
        {"*&n=*3", "https://bench.example/p/5?t=1&n=123"}, {"*&n=*3", "https://x/?n=3"},
        {"a*a", "a"}, {"a*a", "aa"}, {"*a*a*", "aba"}, {"**", ""}, {"*", ""}, {"?", ""},
        {"a*b*c", "abcbc"}, {"*ab*ab", "abab"}, {"*ab*ab", "ab"}, {"a?c*", "abcd"},
        {"*?", ""}, {"*.*", "a.b"}, {"https://shop.example.co?/*", "https://shop.example.com/x"},
    };
    uint64_t x = 42;
    for (int i = 0; i < 20000 + (int)HN_ARRAY_LEN(fixed); i++) {
        char pat[64] = {0}, str[64] = {0};
        if (i < (int)HN_ARRAY_LEN(fixed)) {
            if (strlen(fixed[i][0]) >= sizeof(pat) || strlen(fixed[i][1]) >= sizeof(str))
                fail_msg("fixed case %d does not fit", i);
            snprintf(pat, sizeof(pat), "%s", fixed[i][0]);
            snprintf(str, sizeof(str), "%s", fixed[i][1]);
        } else {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            int pl = 1 + (int)((x >> 33) % 8), sl = (int)((x >> 40) % 12);
            for (int k = 0; k < pl; k++) {
                x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                pat[k] = pat_alpha[(x >> 33) % (sizeof(pat_alpha) - 1)];
            }
            for (int k = 0; k < sl; k++) {
                x = x * 6364136223846793005ULL + 1442695040888963407ULL;
                str[k] = str_alpha[(x >> 33) % (sizeof(str_alpha) - 1)];
            }
        }
        char json[256], err[256];
        snprintf(json, sizeof(json), WRAP(C("url", "glob", "\"%s\""), ALERT), pat);
        hn_rule *r = NULL;
        if (hn_rule_parse(json, strlen(json), &self, &r, err, sizeof(err)) != HN_OK)
            fail_msg("glob %s refused: %s", pat, err);
        hn_rule_sess s;
        memset(&s, 0, sizeof(s));
        s.str[HN_RF_URL] = str;
        int want = fnmatch(pat, str, 0) == 0 ? HN_RULE_MATCH : HN_RULE_NO;
        int got = hn_rule_eval(r, &s, NOW, NULL);
        if (got != want) fail_msg("glob \"%s\" on \"%s\": fnmatch says %d, eval %d", pat, str, want, got);
        hn_rule_free(r);
    }
}

/* hn_rule_eval_why names the field an `all` rule failed on (the engine
 * skips the rule until that field changes), and nothing otherwise. */
static void test_eval_why(void **state) {
    (void)state;
    hn_rule_sess s = sess();
    static const struct { const char *conds; bool any; int want, why; } cases[] = {
        {C("country", "in", "[\"NZ\"]") "," C("url", "contains", "\"/\""), false, HN_RULE_NO, HN_RF_COUNTRY},
        {C("url", "contains", "\"/\"") "," C("page_views", "gte", "1000"), false, HN_RULE_NO, HN_RF_PAGE_VIEWS},
        {C("url", "contains", "\"/nowhere\"") "," C("country", "in", "[\"NZ\"]"), true, HN_RULE_NO, -1},
        {C("url", "contains", "\"/\"") "," C("time_on_page", "gte", "86400"), false, HN_RULE_LATER, -1},
        {C("url", "contains", "\"/\""), false, HN_RULE_MATCH, -1},
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(cases); i++) {
        char json[1024], err[256];
        snprintf(json, sizeof(json), "{\"name\":\"r\",\"match\":\"%s\",\"conditions\":[%s],\"actions\":[" ALERT "]}",
                 cases[i].any ? "any" : "all", cases[i].conds);
        hn_rule *r = NULL;
        if (hn_rule_parse(json, strlen(json), &self, &r, err, sizeof(err)) != HN_OK) fail_msg("case %zu: %s", i, err);
        int64_t at = 0;
        int why = 99;
        int got = hn_rule_eval_why(r, &s, NOW, &at, &why);
        if (got != cases[i].want || why != cases[i].why)
            fail_msg("case %zu: want %d why %d, got %d why %d", i, cases[i].want, cases[i].why, got, why);
        hn_rule_free(r);
    }
}

/* The prefilter: which rules have an anchor, and that a rule never
 * matches (nor waits for its time) on a value whose trigrams lack its
 * anchor's bits — random literals and values over a small alphabet, where
 * literals often occur. */
static void test_anchor(void **state) {
    (void)state;
    static const struct { const char *conds; bool any; int field; } cases[] = {
        {C("url", "contains", "\"/pricing\""), false, HN_RF_URL},
        {C("country", "in", "[\"DE\"]") "," C("title", "equals", "\"Pricing\""), false, HN_RF_TITLE},
        {C("url", "glob", "\"*/p?/checkout*\""), false, HN_RF_URL},
        {C("referrer", "starts_with", "\"https://\""), false, HN_RF_REFERRER},
        {C("url", "regex", "\"/pricing\""), false, HN_RF_URL},
        {C("url", "not_contains", "\"/pricing\""), false, -1},
        {C("url", "contains", "\"/p\""), false, -1},
        {C("url", "glob", "\"*a?b*c\""), false, -1},
        {C("browser", "contains", "\"Firefox\""), false, -1},
        {C("url", "contains", "\"/pricing\""), true, -1},
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(cases); i++) {
        char json[1024], err[256];
        snprintf(json, sizeof(json), "{\"name\":\"r\",\"match\":\"%s\",\"conditions\":[%s],\"actions\":[" ALERT "]}",
                 cases[i].any ? "any" : "all", cases[i].conds);
        hn_rule *r = NULL;
        if (hn_rule_parse(json, strlen(json), &self, &r, err, sizeof(err)) != HN_OK) fail_msg("case %zu: %s", i, err);
        int field = -1;
        uint16_t bits[HN_RULE_ANCHOR_GRAMS];
        if (hn_rule_anchor(r, &field, bits) != HN_OK) field = -1;
        if (field != cases[i].field) fail_msg("case %zu: anchor field %d, want %d", i, field, cases[i].field);
        hn_rule_free(r);
    }
    static const char *const ops[] = {"contains", "equals", "starts_with", "glob"};
    static const char alpha[] = "ab/";
    uint64_t x = 7;
    int anchored = 0;
    for (int i = 0; i < 20000; i++) {
        char lit[12] = {0}, val[24] = {0};
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        const char *op = ops[(x >> 33) % 4];
        int ll = 3 + (int)((x >> 40) % 6), vl = (int)((x >> 50) % 16);
        for (int k = 0; k < ll; k++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            lit[k] = strcmp(op, "glob") == 0 && (x >> 33) % 5 == 0 ? "*?"[(x >> 40) & 1] : alpha[(x >> 33) % 3];
        }
        for (int k = 0; k < vl; k++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            val[k] = alpha[(x >> 33) % 3];
        }
        char json[256], err[256];
        snprintf(json, sizeof(json), WRAP(C("url", "%s", "\"%s\"") "," C("time_on_page", "gte", "%d"), ALERT), op, lit,
                 (int)(x >> 60) % 2 ? 1 : 86400);
        hn_rule *r = NULL;
        if (hn_rule_parse(json, strlen(json), &self, &r, err, sizeof(err)) != HN_OK) fail_msg("%s refused: %s", json, err);
        int field;
        uint16_t bits[HN_RULE_ANCHOR_GRAMS];
        if (hn_rule_anchor(r, &field, bits) == HN_OK) {
            anchored++;
            hn_rule_sess s;
            memset(&s, 0, sizeof(s));
            s.str[HN_RF_URL] = val;
            s.page_start_ms = s.session_start_ms = NOW - 1000;
            uint64_t g[HN_RULE_GRAM_WORDS];
            hn_rule_grams(val, g);
            int got = hn_rule_eval(r, &s, NOW, NULL);
            if (got != HN_RULE_NO && !hn_rule_grams_have(g, bits))
                fail_msg("url %s \"%s\" on \"%s\": eval %d but the prefilter says no", op, lit, val, got);
        }
        hn_rule_free(r);
    }
    assert_true(anchored > 10000);

    /* regexes: a literal run at the top level, or none; and never wrong,
     * on random patterns of literals, '.', classes, groups, alternation,
     * quantifiers and escapes (PCRE2 itself deciding the matches) */
    static const struct { const char *re; int field; } res[] = {
        {"^https://shop\\\\.example/(cart|checkout)/12$", HN_RF_URL},
        {"/pricing(/team)?", HN_RF_URL},
        {"[?&]n=[0-9]*7$", -1},
        {"a|/pricing", -1},
        {"(?i)/pricing", -1},
        {"\\\\x2fpricing", -1},
        {"/pr?icing", HN_RF_URL},           /* "icing" */
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(res); i++) {
        char json[512], err[256];
        snprintf(json, sizeof(json), WRAP(C("url", "regex", "\"%s\""), ALERT), res[i].re);
        hn_rule *r = NULL;
        if (hn_rule_parse(json, strlen(json), &self, &r, err, sizeof(err)) != HN_OK) fail_msg("%s: %s", res[i].re, err);
        int field = -1;
        uint16_t bits[HN_RULE_ANCHOR_GRAMS];
        if (hn_rule_anchor(r, &field, bits) != HN_OK) field = -1;
        if (field != res[i].field) fail_msg("regex %s: anchor field %d, want %d", res[i].re, field, res[i].field);
        hn_rule_free(r);
    }
    static const char *const atoms[] = {"a", "b", "/", "ab", "ba", "\\\\.", ".", "[ab]", "(ab|b)", "(a)", "é", "\\\\d"};
    static const char *const quants[] = {"", "", "", "?", "*", "+", "{0,2}", "{1}"};
    int ranchored = 0;
    for (int i = 0; i < 20000; i++) {
        char re[128] = {0}, val[24] = {0};
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        int na = 2 + (int)((x >> 33) % 7), vl = (int)((x >> 40) % 14);
        for (int k = 0; k < na; k++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            strcat(re, atoms[(x >> 33) % HN_ARRAY_LEN(atoms)]);
            strcat(re, quants[(x >> 45) % HN_ARRAY_LEN(quants)]);
            if ((x >> 55) % 13 == 0) strcat(re, (x >> 60) & 1 ? "|" : "^");
        }
        for (int k = 0; k < vl; k++) {
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
            val[k] = "ab/."[(x >> 33) % 4];
        }
        char json[512], err[256];
        snprintf(json, sizeof(json), WRAP(C("url", "regex", "\"%s\""), ALERT), re);
        hn_rule *r = NULL;
        if (hn_rule_parse(json, strlen(json), &self, &r, err, sizeof(err)) != HN_OK) continue;   /* e.g. too costly */
        int field;
        uint16_t bits[HN_RULE_ANCHOR_GRAMS];
        if (hn_rule_anchor(r, &field, bits) == HN_OK) {
            ranchored++;
            hn_rule_sess s;
            memset(&s, 0, sizeof(s));
            s.str[HN_RF_URL] = val;
            uint64_t g[HN_RULE_GRAM_WORDS];
            hn_rule_grams(val, g);
            if (hn_rule_eval(r, &s, NOW, NULL) == HN_RULE_MATCH && !hn_rule_grams_have(g, bits))
                fail_msg("regex %s on \"%s\": it matches but the prefilter says no", re, val);
        }
        hn_rule_free(r);
    }
    assert_true(ranchored > 2000);

    /* the page views a rule needs */
    static const struct { const char *json; uint32_t want; } pv[] = {
        {WRAP(C("page_views", "gte", "5") "," C("page_views", "gte", "3"), ALERT), 5},
        {WRAP(C("page_views", "lte", "5"), ALERT), 0},
        {WRAP(URLC, ALERT), 0},
        {"{\"name\":\"r\",\"match\":\"any\",\"conditions\":[" C("page_views", "gte", "5") "," URLC "],\"actions\":[" ALERT "]}", 0},
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(pv); i++) {
        char err[256];
        hn_rule *r = NULL;
        if (hn_rule_parse(pv[i].json, strlen(pv[i].json), &self, &r, err, sizeof(err)) != HN_OK) fail_msg("%s", err);
        assert_int_equal(hn_rule_min_page_views(r), pv[i].want);
        hn_rule_free(r);
    }
}

static void test_unknown_visitor(void **state) {
    (void)state;
    hn_rule_sess s = sess();
    s.returning = -1;
    hn_rule *r = parse_ok(WRAP(C("visitor", "is", "\"new\""), ALERT));
    assert_int_equal(hn_rule_eval(r, &s, NOW, NULL), HN_RULE_NO);
    hn_rule_free(r);
    r = parse_ok(WRAP(C("visitor", "is", "\"returning\""), ALERT));
    assert_int_equal(hn_rule_eval(r, &s, NOW, NULL), HN_RULE_NO);
    hn_rule_free(r);
}

/* all: every condition; the time conditions at the latest of their
 * instants. any: one condition; LATER at the soonest. */
static void test_all_any_later(void **state) {
    (void)state;
    hn_rule_sess s = sess();
    int64_t at = 0;
    hn_rule *r = parse_ok(WRAP(C("url", "glob", "\"*/pricing*\"") "," C("time_on_page", "gte", "30") ","
                               C("time_on_site", "gte", "200"), ALERT));
    assert_int_equal(hn_rule_eval(r, &s, NOW, &at), HN_RULE_LATER);
    assert_int_equal(at, s.session_start_ms + 200000);      /* the later of the two */
    assert_int_equal(hn_rule_eval(r, &s, s.session_start_ms + 199999, &at), HN_RULE_LATER);
    assert_int_equal(hn_rule_eval(r, &s, s.session_start_ms + 200000, &at), HN_RULE_MATCH);
    s.str[HN_RF_URL] = "https://shop.example.com/blog";
    assert_int_equal(hn_rule_eval(r, &s, NOW, &at), HN_RULE_NO);  /* no timer: the url fails */
    hn_rule_free(r);
    s = sess();

    r = parse_ok("{\"name\":\"r\",\"match\":\"any\",\"conditions\":[" C("url", "contains", "\"/blog\"") ","
                 C("time_on_page", "gte", "30") "," C("time_on_site", "gte", "200") "],\"actions\":[" ALERT "]}");
    assert_int_equal(hn_rule_eval(r, &s, NOW, &at), HN_RULE_LATER);
    assert_int_equal(at, s.page_start_ms + 30000);           /* the sooner */
    assert_int_equal(hn_rule_eval(r, &s, s.page_start_ms + 30000, &at), HN_RULE_MATCH);
    s.str[HN_RF_URL] = "https://shop.example.com/blog/1";
    assert_int_equal(hn_rule_eval(r, &s, NOW, &at), HN_RULE_MATCH);
    hn_rule_free(r);
    s = sess();

    r = parse_ok("{\"name\":\"r\",\"match\":\"any\",\"conditions\":[" C("url", "contains", "\"/blog\"") ","
                 C("page_views", "gte", "10") "],\"actions\":[" ALERT "]}");
    assert_int_equal(hn_rule_eval(r, &s, NOW, &at), HN_RULE_NO);
    s.page_views = 10;
    assert_int_equal(hn_rule_eval(r, &s, NOW, &at), HN_RULE_MATCH);
    hn_rule_free(r);

    r = parse_ok(WRAP(C("url", "contains", "\"/pricing\"") "," C("page_views", "gte", "2"), ALERT));
    s = sess();
    assert_int_equal(hn_rule_eval(r, &s, NOW, &at), HN_RULE_MATCH);
    hn_rule_free(r);
}

/* A start not known yet: a time condition never holds and sets no timer. */
static void test_unknown_start(void **state) {
    (void)state;
    hn_rule_sess s = sess();
    s.page_start_ms = 0;
    int64_t at = 0;
    hn_rule *r = parse_ok(WRAP(C("url", "contains", "\"/pricing\"") "," C("time_on_page", "gte", "30"), ALERT));
    assert_int_equal(hn_rule_eval(r, &s, NOW, &at), HN_RULE_NO);
    hn_rule_free(r);
    r = parse_ok("{\"name\":\"r\",\"match\":\"any\",\"conditions\":[" C("time_on_page", "gte", "30") ","
                 C("time_on_site", "gte", "200") "],\"actions\":[" ALERT "]}");
    assert_int_equal(hn_rule_eval(r, &s, NOW, &at), HN_RULE_LATER);
    assert_int_equal(at, s.session_start_ms + 200000);     /* only the known one */
    s.session_start_ms = 0;
    assert_int_equal(hn_rule_eval(r, &s, NOW, &at), HN_RULE_NO);
    hn_rule_free(r);
}

static void test_accessors(void **state) {
    (void)state;
    hn_rule *r = parse_ok("{\"name\":\"Pricing, 30 s\",\"enabled\":false,\"match\":\"all\",\"conditions\":["
                          C("url", "glob", "\"*/pricing*\"") "," C("time_on_page", "gte", "30") ","
                          C("event", "in", "[\"a\"]") "],\"actions\":["
                          "{\"type\":\"webhook\",\"url\":\"https://hooks.example.com/herenow\"},"
                          "{\"type\":\"alert\",\"text\":\"A visitor\",\"sound\":true,\"notify\":true},"
                          "{\"type\":\"invite\",\"text\":\"Questions?\",\"agent_name\":\"Ana\"}]}");
    assert_string_equal(hn_rule_name(r), "Pricing, 30 s");
    assert_false(hn_rule_enabled(r));
    assert_int_equal(hn_rule_fields(r),
                     (1u << HN_RF_URL) | (1u << HN_RF_TIME_ON_PAGE) | (1u << HN_RF_EVENT));
    assert_int_equal(hn_rule_nactions(r), 3);
    const hn_rule_action *a = hn_rule_action_at(r, 0);
    assert_int_equal(a->type, HN_RA_WEBHOOK);
    assert_string_equal(a->url, "https://hooks.example.com/herenow");
    a = hn_rule_action_at(r, 1);
    assert_int_equal(a->type, HN_RA_ALERT);
    assert_string_equal(a->text, "A visitor");
    assert_true(a->sound && a->notify);
    a = hn_rule_action_at(r, 2);
    assert_int_equal(a->type, HN_RA_INVITE);
    assert_string_equal(a->agent_name, "Ana");
    assert_null(hn_rule_action_at(r, 3));
    assert_null(hn_rule_action_at(r, -1));
    hn_rule_free(r);
    r = parse_ok(WRAP(URLC, "{\"type\":\"invite\",\"text\":\"Hi\"}"));
    assert_true(hn_rule_enabled(r));
    assert_null(hn_rule_action_at(r, 0)->agent_name);
    assert_false(hn_rule_action_at(r, 0)->sound);
    hn_rule_free(r);
    hn_rule_free(NULL);
}

/* A catastrophic pattern that slips past the probes costs bounded work per
 * record and does not match. */
static void test_regex_limit(void **state) {
    (void)state;
    hn_rule *r = parse_ok(WRAP(C("url", "regex", "\"^(?:a|b|ab)*c$\""), ALERT));
    hn_rule_sess s = sess();
    char url[200];
    for (int i = 0; i < 120; i++) url[i] = "ab"[i % 2];
    strcpy(url + 120, "!c");
    s.str[HN_RF_URL] = url;
    assert_int_equal(hn_rule_eval(r, &s, NOW, NULL), HN_RULE_NO);
    hn_rule_free(r);
}

typedef struct ucase { const char *url; const char *reason; } ucase;

static const ucase urls[] = {
    {"https://hooks.example.com/herenow", NULL},
    {"http://127.0.0.1:9000/hook?x=1", NULL},             /* another port of loopback */
    {"HTTPS://Hooks.Example.com", NULL},
    {"http://[2001:db8::1]:8080/x", NULL},
    {"", "webhook url: empty"},
    {"ftp://h/x", "webhook url: only http:// and https:// URLs"},
    {"javascript:alert(1)", "webhook url: only http"},
    {"http://", "webhook url: no host"},
    {"http:///x", "webhook url: no host"},
    {"http://user:pw@h/", "webhook url: user info is not allowed"},
    {"http://h/x#frag", "webhook url: a fragment is not allowed"},
    {"http://h x/", "webhook url: a space"},
    {"http://h/\xc3\xa9", "webhook url: a space, control or non-ASCII"},
    {"http://h:0/", "webhook url: bad port"},
    {"http://h:65536/", "webhook url: bad port"},
    {"http://h:/", "webhook url: bad port"},
    {"http://h:80x/", "webhook url: bad port"},
    {"http://[::1/", "webhook url: bad host"},
    {"http://[zz]/", "webhook url: bad IPv6 address"},
    {"http://h%41/", "webhook url: bad host"},
    {"http://127.0.0.1:7471/", "webhook url: points at this api itself"},
    {"http://localhost:7471/x", "webhook url: points at this api itself"},
    {"http://LOCALHOST.:7471/x", "webhook url: points at this api itself"},
    {"http://127.3.2.1:7471/x", "webhook url: points at this api itself"},
    {"http://127.1:7471/x", "webhook url: points at this api itself"},
    {"http://2130706433:7471/x", "webhook url: points at this api itself"},
    {"http://0.0.0.0:7471/x", "webhook url: points at this api itself"},
    {"http://[::1]:7471/x", "webhook url: points at this api itself"},
    {"http://[::ffff:127.0.0.1]:7471/x", "webhook url: points at this api itself"},
    {"https://track.example.com/", "webhook url: points at this installation"},
    {"https://TRACK.example.com:443/x", "webhook url: points at this installation"},
    {"http://track.example.com/", NULL},                  /* port 80, not 443 */
};

static void test_urls(void **state) {
    (void)state;
    for (size_t i = 0; i < HN_ARRAY_LEN(urls); i++) {
        char err[200] = "";
        int rc = hn_rule_url_check(urls[i].url, strlen(urls[i].url), &self, err, sizeof(err));
        if (!urls[i].reason ? rc != HN_OK
            : rc != HN_ERR || strncmp(err, urls[i].reason, strlen(urls[i].reason)) != 0)
            fail_msg("case %zu %s: got %d \"%s\"", i, urls[i].url, rc, err);
    }
    char huge[3000] = "https://h/";
    memset(huge + 10, 'a', 2100);
    char err[200];
    assert_int_equal(hn_rule_url_check(huge, strlen(huge), &self, err, sizeof(err)), HN_ERR);
    assert_string_equal(err, "webhook url: longer than 2048 bytes");
    huge[2048] = 0;
    assert_int_equal(hn_rule_url_check(huge, 2048, &self, err, sizeof(err)), HN_OK);
    /* no self: only the shape */
    assert_int_equal(hn_rule_url_check("http://127.0.0.1:7471/", 22, NULL, err, sizeof(err)), HN_OK);
    /* an api on a wildcard address; one on a specific address */
    hn_rule_self wild = {"0.0.0.0", 80, NULL, NULL, 0}, lan = {"10.0.0.5", 8080, NULL, NULL, 0},
                 v6 = {"[::]", 81, "", NULL, 0};
    assert_int_equal(hn_rule_url_check("http://localhost/", 17, &wild, err, sizeof(err)), HN_ERR);
    assert_int_equal(hn_rule_url_check("http://10.0.0.5:8080/", 21, &lan, err, sizeof(err)), HN_ERR);
    assert_int_equal(hn_rule_url_check("http://127.0.0.1:8080/", 22, &lan, err, sizeof(err)), HN_OK);
    assert_int_equal(hn_rule_url_check("http://127.0.0.1:81/", 20, &v6, err, sizeof(err)), HN_ERR);
    /* the api's HTTPS port is itself too (HERENOW_API_HTTPS_LISTEN) */
    char hosts[256];
    hn_rule_self both = hn_rule_self_of("127.0.0.1:7480", "0.0.0.0:7443", NULL, hosts, sizeof(hosts));
    assert_int_equal(both.listen_port, 7480);
    assert_int_equal(both.tls_port, 7443);
    assert_int_equal(hn_rule_url_check("https://localhost:7443/", 23, &both, err, sizeof(err)), HN_ERR);
    assert_string_equal(err, "webhook url: points at this api itself");
    assert_int_equal(hn_rule_url_check("https://127.0.0.1:7480/", 23, &both, err, sizeof(err)), HN_ERR);
    assert_int_equal(hn_rule_url_check("https://127.0.0.1:7444/", 23, &both, err, sizeof(err)), HN_OK);
    hn_rule_self plain = hn_rule_self_of("127.0.0.1:7480", "", NULL, hosts, sizeof(hosts));
    assert_null(plain.tls_host);
}

static int count_el(void *ctx, int i, const hn_jval *v) {
    (void)v;
    *(int *)ctx = i + 1;
    return HN_OK;
}

static void test_jread_elements(void **state) {
    (void)state;
    int n = -1;
    assert_int_equal(hn_jread_elements("[]", 2, count_el, &n), HN_OK);
    assert_int_equal(n, -1);
    const char *arr = " [1, \"a\", {\"b\": [2]}, null] ";
    assert_int_equal(hn_jread_elements(arr, strlen(arr), count_el, &n), HN_OK);
    assert_int_equal(n, 4);
    assert_int_equal(hn_jread_elements("{}", 2, count_el, &n), HN_ERR);
    assert_int_equal(hn_jread_elements("[1,", 3, count_el, &n), HN_ERR);
}

int main(void) {
    const struct CMUnitTest t[] = {
        cmocka_unit_test(test_bad),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_eval_fields),
        cmocka_unit_test(test_glob_as_fnmatch),
        cmocka_unit_test(test_eval_why),
        cmocka_unit_test(test_anchor),
        cmocka_unit_test(test_unknown_visitor),
        cmocka_unit_test(test_all_any_later),
        cmocka_unit_test(test_unknown_start),
        cmocka_unit_test(test_accessors),
        cmocka_unit_test(test_regex_limit),
        cmocka_unit_test(test_urls),
        cmocka_unit_test(test_jread_elements),
    };
    return cmocka_run_group_tests_name("rule", t, NULL, NULL);
}
