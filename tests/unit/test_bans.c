/* test_bans.c: the collector's ban table built from SMEMBERS replies of
 * hn:bans:{w} (docs/RULES.md §5) — the four member forms, tracking winning
 * over chat, emails compared lower-cased, widgets kept apart, members that
 * are not bans skipped; and the api's subject checks (api/annot.h). */
#include "api/annot.h"
#include "collector/bans.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static redisReply *set_of(redisReply *cells, redisReply **els, const char *const *m, size_t n,
                          redisReply *arr) {
    for (size_t i = 0; i < n; i++) {
        cells[i] = (redisReply){.type = REDIS_REPLY_STRING, .len = strlen(m[i]), .str = (char *)m[i]};
        els[i] = &cells[i];
    }
    *arr = (redisReply){.type = REDIS_REPLY_ARRAY, .elements = n, .element = els};
    return arr;
}

#define S(s) ((hn_str){(s), (uint32_t)strlen(s)})

static void test_members(void **state) {
    (void)state;
    static const char *const a[] = {"v:track1", "c:v:chat1", "e:Bad@Example.com", "c:e:chat@example.com",
                                    "v:both", "c:v:both", "x:junk", "v:", "c:", "c:x:y", "plain"};
    static const char *const b[] = {"c:v:track1"};
    redisReply ca[16], *ea[16], ra, cb[2], *eb[2], rb;
    uint32_t ids[] = {7, 8, 9};
    redisReply *sets[] = {set_of(ca, ea, a, sizeof(a) / sizeof(*a), &ra), set_of(cb, eb, b, 1, &rb), NULL};
    hn_bans *t = hn_bans_build(ids, sets, 3);
    assert_int_equal(hn_bans_count(t), 6);
    assert_true(hn_bans_widget(t, 7));
    assert_true(hn_bans_widget(t, 8));
    assert_false(hn_bans_widget(t, 9));       /* no set */
    assert_false(hn_bans_widget(t, 10));
    static const struct { uint32_t w; char kind; const char *s; unsigned want; } rows[] = {
        {7, 'v', "track1", HN_BAN_TRACK},
        {7, 'v', "chat1", HN_BAN_CHAT},
        {7, 'v', "CHAT1", 0},                   /* visitor ids are exact */
        {7, 'e', "bad@example.com", HN_BAN_TRACK},
        {7, 'e', "BAD@EXAMPLE.COM", HN_BAN_TRACK},
        {7, 'e', "chat@Example.com", HN_BAN_CHAT},
        {7, 'v', "both", HN_BAN_TRACK},         /* tracking wins */
        {7, 'v', "bad@example.com", 0},         /* kinds apart */
        {7, 'e', "track1", 0},
        {7, 'v', "junk", 0},
        {7, 'v', "", 0},
        {8, 'v', "track1", HN_BAN_CHAT},        /* widgets apart */
        {8, 'v', "chat1", 0},
        {9, 'v', "track1", 0},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(*rows); i++) {
        unsigned got = hn_bans_check(t, rows[i].w, rows[i].kind, S(rows[i].s));
        if (got != rows[i].want)
            fail_msg("widget %u %c:%s: %u, want %u", rows[i].w, rows[i].kind, rows[i].s, got, rows[i].want);
    }
    hn_bans_build_free(t);
    assert_int_equal(hn_bans_check(NULL, 7, 'v', S("track1")), 0);
    assert_false(hn_bans_widget(NULL, 7));
}

static void test_publish(void **state) {
    (void)state;
    static const char *const a[] = {"v:x"};
    redisReply c[1], *e[1], r;
    uint32_t id = 3;
    redisReply *sets[] = {set_of(c, e, a, 1, &r)};
    hn_bans_pub *p = hn_bans_pub_create();
    hn_bans_ref ref = {0};
    assert_null(hn_bans_acquire(p, &ref));
    hn_bans_publish(p, hn_bans_build(&id, sets, 1));
    const hn_bans *t = hn_bans_acquire(p, &ref);
    assert_int_equal(hn_bans_check(t, 3, 'v', S("x")), HN_BAN_TRACK);
    hn_bans_publish(p, hn_bans_build(NULL, NULL, 0));      /* lifted: the old one lives on */
    assert_int_equal(hn_bans_check(t, 3, 'v', S("x")), HN_BAN_TRACK);
    t = hn_bans_acquire(p, &ref);
    assert_int_equal(hn_bans_count(t), 0);
    hn_bans_release(p, &ref);
    hn_bans_pub_destroy(p);
    assert_null(hn_bans_acquire(NULL, &ref));
}

static void test_subject_checks(void **state) {
    (void)state;
    static const struct { const char *t; bool ok; } tags[] = {
        {"vip", true}, {"a", true}, {"0-lead_2", true}, {"abcdefghijabcdefghijabcdefghij12", true},
        {"abcdefghijabcdefghijabcdefghij123", false}, {"", false}, {"-x", false}, {"_x", false},
        {"Vip", false}, {"has space", false}, {"é", false},
    };
    for (size_t i = 0; i < sizeof(tags) / sizeof(*tags); i++)
        if (hn_tag_ok(tags[i].t, strlen(tags[i].t)) != tags[i].ok) fail_msg("tag '%s'", tags[i].t);
    static const struct { const char *in, *out; } emails[] = {
        {"Ann@Example.COM", "ann@example.com"}, {"a@b", "a@b"}, {"@b.c", NULL}, {"a@", NULL},
        {"ab", NULL}, {"a b@c.d", NULL}, {"a@b@c", NULL}, {"a\t@b.c", NULL},
    };
    for (size_t i = 0; i < sizeof(emails) / sizeof(*emails); i++) {
        char buf[300];
        snprintf(buf, sizeof(buf), "%s", emails[i].in);
        bool ok = hn_email_norm(buf);
        if (ok != (emails[i].out != NULL) || (ok && strcmp(buf, emails[i].out) != 0))
            fail_msg("email '%s': %d '%s'", emails[i].in, ok, buf);
    }
    assert_int_equal(hn_chars("é€a", strlen("é€a")), 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_publish),
        cmocka_unit_test(test_subject_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
