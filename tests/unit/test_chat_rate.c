/* test_chat_rate.c: the per-token limit of the chat routes (api/chat_util.c):
 * a bucket of per_min writes refilled per millisecond; clock readings taken
 * by other threads before the lock may come in out of order. */
#include "api/chat_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

static void test_bucket(void **state) {
    (void)state;
    uint64_t t = 1000000;
    assert_true(hn_chat_rate_take("tokenA", 2, t));
    assert_true(hn_chat_rate_take("tokenA", 2, t));
    assert_false(hn_chat_rate_take("tokenA", 2, t));          /* empty */
    assert_false(hn_chat_rate_take("tokenA", 2, t + 29000));  /* 0.97 of a write back */
    assert_true(hn_chat_rate_take("tokenA", 2, t + 31000));
    assert_true(hn_chat_rate_take("tokenB", 2, t));           /* a token of its own */
}

/* Readings 1 ms apart, handed in alternately out of order (two threads): an
 * earlier reading than the bucket's must not refill it (it once refilled it
 * whole: 9 of 10 allowed). */
static void test_clock_out_of_order(void **state) {
    (void)state;
    uint64_t t = 5000000;
    assert_true(hn_chat_rate_take("tokenC", 2, t));
    assert_true(hn_chat_rate_take("tokenC", 2, t));
    int allowed = 0;
    for (int i = 0; i < 10; i++) allowed += hn_chat_rate_take("tokenC", 2, i % 2 ? t + (uint64_t)i : t + (uint64_t)i - 2);
    assert_int_equal(allowed, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_clock_out_of_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
