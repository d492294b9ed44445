/* test_utf8.c: strict UTF-8 validation (common/utf8.c) — every boundary of
 * the encoding, overlongs, surrogates, truncations, bad continuations — and
 * the JSON strings made of such text (common/json.c: runs of plain bytes
 * copied at once, escapes and replacements between them). */
#include "common/hn.h"
#include "common/json.h"
#include "common/utf8.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void test_utf8(void **state) {
    static const struct { const char *s; size_t len; bool ok; } rows[] = {
#define U8(x, ok) { x, sizeof(x) - 1, ok }
        U8("", true),
        U8("plain ascii, longer than eight bytes", true),
        U8("\x7f", true),
        U8("\xc2\x80", true),                   /* U+0080 */
        U8("\xdf\xbf", true),                   /* U+07FF */
        U8("\xe0\xa0\x80", true),               /* U+0800 */
        U8("\xed\x9f\xbf", true),               /* U+D7FF */
        U8("\xee\x80\x80", true),               /* U+E000 */
        U8("\xef\xbf\xbf", true),               /* U+FFFF */
        U8("\xf0\x90\x80\x80", true),           /* U+10000 */
        U8("\xf4\x8f\xbf\xbf", true),           /* U+10FFFF */
        U8("ascii then \xc3\xa9 then ascii again", true),
        U8("\x80", false),                      /* lone continuation */
        U8("\xbf", false),
        U8("\xc0\x80", false),                  /* overlong NUL */
        U8("\xc1\xbf", false),                  /* overlong */
        U8("\xe0\x80\x80", false),              /* overlong 3 */
        U8("\xe0\x9f\xbf", false),
        U8("\xf0\x80\x80\x80", false),          /* overlong 4 */
        U8("\xf0\x8f\xbf\xbf", false),
        U8("\xed\xa0\x80", false),              /* U+D800 */
        U8("\xed\xbf\xbf", false),              /* U+DFFF */
        U8("\xf4\x90\x80\x80", false),          /* U+110000 */
        U8("\xf5\x80\x80\x80", false),
        U8("\xf8\x88\x80\x80\x80", false),      /* 5-byte form */
        U8("\xfe", false), U8("\xff", false),
        U8("\xc3", false),                      /* truncated */
        U8("\xe2\x82", false),
        U8("\xf0\x9f\x98", false),
        U8("abcdefgh\xf0\x9f\x98", false),      /* truncated after the fast path */
        U8("\xc3\x28", false),                  /* bad continuation */
        U8("\xe2\x28\xa1", false),
        U8("\xe2\x82\x28", false),
        U8("\xf0\x9f\x98\x28", false),
        U8("\xc3\xa9\x80", false),              /* extra continuation */
#undef U8
    };
    (void)state;
    for (size_t i = 0; i < HN_ARRAY_LEN(rows); i++) {
        if (hn_utf8_valid(rows[i].s, rows[i].len) != rows[i].ok)
            fail_msg("row %zu: expected %s", i, rows[i].ok ? "valid" : "invalid");
    }
    assert_true(hn_utf8_valid(NULL, 0));
}

static void test_json_str(void **state) {
    static const struct { const char *in; size_t len; const char *out; } rows[] = {
#define J(x, out) { x, sizeof(x) - 1, out }
        J("", "\"\""),
        J("plain", "\"plain\""),
        J("https://example.com/p?a=1&b=2#x", "\"https://example.com/p?a=1&b=2#x\""),
        J("\"", "\"\\\"\""),
        J("a\\b", "\"a\\\\b\""),
        J("say \"hi\"\n", "\"say \\\"hi\\\"\\u000a\""),
        J("\x00x\x1f\x7f", "\"\\u0000x\\u001f\\u007f\""),
        J("caf\xc3\xa9 ok", "\"caf\xc3\xa9 ok\""),
        J("\xf0\x9f\x98\x80", "\"\xf0\x9f\x98\x80\""),
        J("a\xff" "b\xc3", "\"a\xef\xbf\xbd" "b\xef\xbf\xbd\""),     /* bad bytes: U+FFFD each */
        J("<b>&</b>", "\"<b>&</b>\""),                                /* text, not HTML: as is */
#undef J
    };
    (void)state;
    for (size_t i = 0; i < HN_ARRAY_LEN(rows); i++) {
        hn_buf b = {0};
        hn_buf_append(&b, "x", 1);                      /* after what a buffer holds */
        hn_json_str(&b, rows[i].in, rows[i].len);
        size_t want = strlen(rows[i].out);
        if (b.len != want + 1 || memcmp(b.p + 1, rows[i].out, want) != 0)
            fail_msg("row %zu: got %.*s, want %s", i, (int)b.len - 1, b.p + 1, rows[i].out);
        hn_buf_free(&b);
    }
    hn_buf b = {0};
    bool first = true;
    hn_json_kint(&b, &first, "a", 0);
    hn_json_kint(&b, &first, "b", -42);
    hn_json_kint(&b, &first, "c", INT64_MAX);
    hn_json_kint(&b, &first, "d", INT64_MIN);
    const char *want = "\"a\":0,\"b\":-42,\"c\":9223372036854775807,\"d\":-9223372036854775808";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.p, want, b.len);
    hn_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_json_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
