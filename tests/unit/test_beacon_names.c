/* test_beacon_names.c: the beacon module's small tables — reason and type
 * names — and the chat text and conversation-id checks (proto/beacon.c). */
#include "proto/beacon.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

static void test_names(void **state) {
    static const char *const want[] = {
        "ok", "malformed", "not_map", "batch_too_large", "bad_version", "missing_field",
        "bad_type", "too_long", "bad_value", "bad_utf8", "too_large", "unknown_widget",
        "redis_unavailable", "rate_limited", "bot", "opted_out", "spool_full", "chat_rate_limited", "banned",
    };
    static const char *const types[] = { "pv", "hb", "ev", "hide", "show", "end", "id", "msg" };
    (void)state;
    assert_int_equal(HN_ARRAY_LEN(want), HN_R__COUNT);
    for (int i = 0; i < HN_R__COUNT; i++) assert_string_equal(hn_reason_name((hn_reason)i), want[i]);
    assert_string_equal(hn_reason_name(HN_R__COUNT), "unknown");
    assert_string_equal(hn_reason_name((hn_reason)-1), "unknown");

    for (int i = 0; i < (int)HN_ARRAY_LEN(types); i++) {
        hn_str t = { types[i], (uint32_t)strlen(types[i]) };
        assert_int_equal(hn_btype_parse(t), HN_T_PV + i);
        assert_string_equal(hn_btype_name((hn_btype)(HN_T_PV + i)), types[i]);
    }
    assert_int_equal(hn_btype_parse(HN_STR_LIT("")), HN_T_NONE);
    assert_int_equal(hn_btype_parse(HN_STR_LIT("p")), HN_T_NONE);
    assert_int_equal(hn_btype_parse(HN_STR_LIT("pvv")), HN_T_NONE);
    assert_int_equal(hn_btype_parse((hn_str){ NULL, 0 }), HN_T_NONE);
    assert_string_equal(hn_btype_name(HN_T_NONE), "");
    assert_string_equal(hn_btype_name(HN_T__COUNT), "");
}

/* Characters, not bytes: 2000 two-byte characters pass, 2001 do not. */
static void test_chat_text(void **state) {
    (void)state;
    static char t[2 * 2001];
    const char *why;
    for (int i = 0; i < 2001; i++) t[2 * i] = (char)0xc3, t[2 * i + 1] = (char)0xa9;
    assert_int_equal(hn_chat_text_check(t, 4000, &why), HN_R_OK);
    assert_int_equal(hn_chat_text_check(t, 4002, &why), HN_R_BAD_VALUE);
    assert_string_equal(why, "too long");
    assert_int_equal(hn_chat_text_check("", 0, &why), HN_R_BAD_VALUE);
    assert_string_equal(why, "empty");
    assert_int_equal(hn_chat_text_check("\xf0\x9f\x98\x80 \xe2\x80\xae", 8, &why), HN_R_OK);
    assert_int_equal(hn_chat_text_check("a\0b", 3, &why), HN_R_BAD_VALUE);
    assert_string_equal(why, "control character");
    assert_true(hn_uuid_text_ok(HN_STR_LIT("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")));
    assert_false(hn_uuid_text_ok(HN_STR_LIT("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5")));
    assert_false(hn_uuid_text_ok(HN_STR_LIT("0190a1b2xc3d4-7e5f-8a9b-0c1d2e3f4a5b")));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_chat_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
