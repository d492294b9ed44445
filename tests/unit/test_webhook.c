/* test_webhook.c: the pure parts of the webhook sender (api/rules/webhook.c):
 * the signature (docs/RULES.md §4, checked against `openssl dgst -sha256
 * -hmac`) and the retry backoff with its jitter bounds. */
#include "api/rules/webhook.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void test_sign(void **state) {
    (void)state;
    char sig[65];
    /* printf '1700000000.{"id":1}' | openssl dgst -sha256 -hmac s3cret */
    hn_webhook_sign("s3cret", "1700000000", "{\"id\":1}", 8, sig);
    assert_string_equal(sig, "ee0658aa4e37018df69c24227df01e0f680eb3b87c7f1f9bd936e283cfe01d9b");
    hn_webhook_sign("s3cret", "1700000000", "", 0, sig);
    assert_string_equal(sig, "21948100f1d7a89f3338f6b1106fc4f7a702fbe1493b833a3382f80193bde3fe");
    /* another secret, another signature */
    char other[65];
    hn_webhook_sign("s3cret2", "1700000000", "{\"id\":1}", 8, other);
    assert_string_not_equal(sig, other);
}

static void test_backoff(void **state) {
    (void)state;
    static const struct { int64_t base; int attempt; double r; int64_t want; } t[] = {
        {1000, 1, 0.5, 1000}, {1000, 2, 0.5, 2000}, {1000, 3, 0.5, 4000}, {1000, 6, 0.5, 32000},
        {1000, 1, 0.0, 800},  {1000, 1, 0.999999, 1199}, {200, 2, 0.0, 320},
        {3600000, 40, 0.5, 86400000},                    /* capped at a day */
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        assert_int_equal(hn_webhook_backoff_ms(t[i].base, t[i].attempt, t[i].r), t[i].want);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign),
        cmocka_unit_test(test_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
