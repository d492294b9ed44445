/* test_utf8.c: strict UTF-8 validation (common/utf8.c) — every boundary of
 * the encoding, overlongs, surrogates, truncations, bad continuations. */
#include "common/hn.h"
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
