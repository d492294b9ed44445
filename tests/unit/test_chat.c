/* test_chat.c: the chat downlink's pure parts — stream entry ids (parse,
 * order), session ids, and an hn:chat entry as an SSE event (fields of
 * docs/CHAT.md, JSON escapes, entries that are not events). */
#include "collector/chat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static void test_xid(void **state) {
    (void)state;
    static const struct {
        const char *s;
        bool        ok;
        uint64_t    ms, seq;
    } t[] = {
        {"0-0", true, 0, 0},
        {"1733480000000-12", true, 1733480000000ull, 12},
        {"18446744073709551615-18446744073709551615", true, UINT64_MAX, UINT64_MAX},
        {"18446744073709551616-0", false, 0, 0},
        {"12", false, 0, 0},
        {"-1", false, 0, 0},
        {"1-", false, 0, 0},
        {"1-2-3", false, 0, 0},
        {"1x-2", false, 0, 0},
        {" 1-2", false, 0, 0},
        {"", false, 0, 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        hn_xid x = {7, 7};
        bool ok = hn_xid_parse(t[i].s, strlen(t[i].s), &x);
        if (ok != t[i].ok) fail_msg("'%s': %d", t[i].s, ok);
        if (ok && (x.ms != t[i].ms || x.seq != t[i].seq)) fail_msg("'%s': wrong value", t[i].s);
    }
    assert_true(hn_xid_cmp((hn_xid){1, 5}, (hn_xid){2, 0}) < 0);
    assert_true(hn_xid_cmp((hn_xid){2, 1}, (hn_xid){2, 0}) > 0);
    assert_int_equal(hn_xid_cmp((hn_xid){2, 1}, (hn_xid){2, 1}), 0);
}

static void test_sid(void **state) {
    (void)state;
    assert_true(hn_chat_sid_ok("abcdEF09_-", 10));
    assert_true(hn_chat_sid_ok("12345678", 8));
    assert_false(hn_chat_sid_ok("1234567", 7));
    char long_sid[66];
    memset(long_sid, 'a', 65);
    long_sid[65] = '\0';
    assert_true(hn_chat_sid_ok(long_sid, 64));
    assert_false(hn_chat_sid_ok(long_sid, 65));
    assert_false(hn_chat_sid_ok("abcd efgh", 9));
    assert_false(hn_chat_sid_ok("abcd\nefgh", 9));
    assert_false(hn_chat_sid_ok("abcd\xc3\xa9" "fgh", 9));
}

#define S(x) {.type = REDIS_REPLY_STRING, .len = sizeof(x) - 1, .str = (char *)(x)}

static void test_event(void **state) {
    (void)state;
    redisReply f[] = {S("s"), S("sessionone01"), S("e"), S("message"), S("c"), S("conv-1"),
                      S("m"), S("msg-1"), S("a"), S("Ana \"A\""), S("x"), S("line1\nline2\r<b>\\</b>"),
                      S("t"), S("1733480000123")};
    redisReply *els[14];
    for (int i = 0; i < 14; i++) els[i] = &f[i];
    redisReply fields = {.type = REDIS_REPLY_ARRAY, .elements = 14, .element = els};
    hn_buf b;
    hn_buf_init(&b, 64);
    const char *sid = NULL;
    size_t sidlen = 0;
    assert_true(hn_chat_event(&b, "1733480000123-0", 15, &fields, &sid, &sidlen));
    const char *want = "id: 1733480000123-0\nevent: message\n"
                       "data: {\"id\":\"msg-1\",\"conversation\":\"conv-1\",\"agent\":\"Ana \\\"A\\\"\","
                       "\"text\":\"line1\\u000aline2\\u000d<b>\\\\</b>\",\"time\":1733480000123}\n\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.p, want, b.len);
    assert_int_equal(sidlen, 12);
    assert_memory_equal(sid, "sessionone01", 12);
    /* no raw line break inside the event: one data line */
    int lines = 0;
    for (size_t i = 0; i < b.len; i++) lines += b.p[i] == '\n';
    assert_int_equal(lines, 4);   /* id, event, data, the blank line */

    /* not an event: unknown e, no s; a t that is no number is time 0 */
    f[3] = (redisReply)S("typing");
    hn_buf_reset(&b);
    assert_false(hn_chat_event(&b, "1-0", 3, &fields, &sid, &sidlen));
    assert_int_equal(b.len, 0);
    f[3] = (redisReply)S("expire");
    hn_buf_reset(&b);
    assert_true(hn_chat_event(&b, "1-0", 3, &fields, &sid, &sidlen));
    hn_buf_append(&b, "", 1);
    assert_non_null(strstr(b.p, "\nevent: expire\n"));
    hn_buf_reset(&b);
    f[3] = (redisReply)S("close");
    f[13] = (redisReply)S("soon");
    assert_true(hn_chat_event(&b, "1-0", 3, &fields, &sid, &sidlen));
    hn_buf_append(&b, "", 1);
    assert_non_null(strstr(b.p, "\"time\":0}"));
    f[0] = (redisReply)S("z");
    hn_buf_reset(&b);
    assert_false(hn_chat_event(&b, "1-0", 3, &fields, &sid, &sidlen));
    assert_false(hn_chat_event(&b, "1-0", 3, NULL, &sid, &sidlen));
    hn_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xid),
        cmocka_unit_test(test_sid),
        cmocka_unit_test(test_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
