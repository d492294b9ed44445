/* test_prom.c: the Prometheus text writer (common/prom.c) — exact text of
 * families, labels (escaped), whole numbers to the last bit, other numbers
 * round-tripping, histograms (cumulative buckets, +Inf, _sum, _count). */
#include "common/prom.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void expect(hn_buf *b, const char *want) {
    hn_buf_append(b, "", 1);
    assert_string_equal(b->p, want);
    hn_buf_free(b);
}

static void test_family_and_labels(void **state) {
    (void)state;
    hn_buf b;
    hn_buf_init(&b, 64);
    hn_prom_family(&b, "herenow_x_total", HN_PROM_COUNTER, "Things\\done\nby kind.");
    hn_prom_u64(&b, "herenow_x_total", HN_PROM_L0, 1);
    hn_prom_u64(&b, "herenow_x_total", HN_PROM_L1("kind", "a\"b\\c\nd"), 2);
    hn_prom_u64(&b, "herenow_x_total", HN_PROM_L2("k", "1", "j", ""), 3);
    expect(&b, "# HELP herenow_x_total Things\\\\done\\nby kind.\n"
               "# TYPE herenow_x_total counter\n"
               "herenow_x_total 1\n"
               "herenow_x_total{kind=\"a\\\"b\\\\c\\nd\"} 2\n"
               "herenow_x_total{k=\"1\",j=\"\"} 3\n");
}

static void test_numbers(void **state) {
    (void)state;
    hn_buf b;
    hn_buf_init(&b, 64);
    hn_prom_u64(&b, "a", HN_PROM_L0, (1ULL << 53) + 1);
    hn_prom_u64(&b, "b", HN_PROM_L0, UINT64_MAX);
    hn_prom_f64(&b, "c", HN_PROM_L0, 1000000000000000.0);
    hn_prom_f64(&b, "d", HN_PROM_L0, 0.1);
    hn_prom_f64(&b, "e", HN_PROM_L0, -1);
    hn_prom_f64(&b, "f", HN_PROM_L0, 1.0 / 3.0);
    hn_prom_f64(&b, "g", HN_PROM_L0, NAN);
    hn_prom_f64(&b, "h", HN_PROM_L0, -INFINITY);
    expect(&b, "a 9007199254740993\n"
               "b 18446744073709551615\n"
               "c 1e+15\n"
               "d 0.1\n"
               "e -1\n"
               "f 0.33333333333333331\n"
               "g NaN\n"
               "h -Inf\n");
}

static void test_scalars(void **state) {
    (void)state;
    hn_buf b;
    hn_buf_init(&b, 64);
    const hn_prom_scalar s[] = {
        {.name = "x_total", .type = HN_PROM_COUNTER, .help = "X.", .u = UINT64_MAX - 1},
        {.name = "y_seconds", .type = HN_PROM_GAUGE, .help = "Y.", .f = 2.5, .real = true},
    };
    hn_prom_scalars(&b, s, 2);
    expect(&b, "# HELP x_total X.\n# TYPE x_total counter\nx_total 18446744073709551614\n"
               "# HELP y_seconds Y.\n# TYPE y_seconds gauge\ny_seconds 2.5\n");
}

static void test_histogram(void **state) {
    (void)state;
    hn_buf b;
    hn_buf_init(&b, 64);
    const double le[] = {0.001, 0.25, 5};
    const uint64_t n[] = {1, 0, 2, 3};     /* per bucket; the last is above 5 */
    hn_prom_family(&b, "t_seconds", HN_PROM_HISTOGRAM, "T.");
    hn_prom_histogram(&b, "t_seconds", HN_PROM_L1("route", "x"), le, n, 3, 12.5);
    hn_prom_histogram(&b, "t_seconds", HN_PROM_L0, le, (const uint64_t[]){0, 0, 0, 0}, 3, 0);
    expect(&b, "# HELP t_seconds T.\n# TYPE t_seconds histogram\n"
               "t_seconds_bucket{route=\"x\",le=\"0.001\"} 1\n"
               "t_seconds_bucket{route=\"x\",le=\"0.25\"} 1\n"
               "t_seconds_bucket{route=\"x\",le=\"5\"} 3\n"
               "t_seconds_bucket{route=\"x\",le=\"+Inf\"} 6\n"
               "t_seconds_sum{route=\"x\"} 12.5\n"
               "t_seconds_count{route=\"x\"} 6\n"
               "t_seconds_bucket{le=\"0.001\"} 0\n"
               "t_seconds_bucket{le=\"0.25\"} 0\n"
               "t_seconds_bucket{le=\"5\"} 0\n"
               "t_seconds_bucket{le=\"+Inf\"} 0\n"
               "t_seconds_sum 0\n"
               "t_seconds_count 0\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_family_and_labels),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
