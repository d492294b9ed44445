/*
 * test_params.c: the API's parameter parsers (api/params.c), from tables:
 * ISO 8601 instants and durations, from/to ranges, integers and words,
 * ids, cursors (round trip and tampering), time formatting.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "api/params.h"
#include "common/timefmt.h"

#define T0 INT64_C(1764000000000000)    /* 2025-11-24T16:00:00Z in µs */

/* ---- instants ------------------------------------------------------------------ */

typedef struct tcase {
    const char *in;
    int         rc;
    int64_t     us;       /* when rc == HN_OK */
} tcase;

static const tcase times[] = {
    { "2026-11-01", HN_OK, INT64_C(1793491200000000) },
    { "2026-11-01T10:00:00Z", HN_OK, INT64_C(1793527200000000) },
    { "2026-11-01t10:00:00z", HN_OK, INT64_C(1793527200000000) },
    { "2026-11-01 10:00:00Z", HN_OK, INT64_C(1793527200000000) },
    { "2026-11-01T10:00Z", HN_OK, INT64_C(1793527200000000) },
    { "2026-11-01T12:00:00+02:00", HN_OK, INT64_C(1793527200000000) },
    { "2026-11-01T12:00:00 02:00", HN_OK, INT64_C(1793527200000000) },   /* '+' sent unencoded */
    { "2026-11-01T12:00:00+0200", HN_OK, INT64_C(1793527200000000) },
    { "2026-11-01T12:00:00+02", HN_OK, INT64_C(1793527200000000) },
    { "2026-11-01T05:30:00-04:30", HN_OK, INT64_C(1793527200000000) },
    { "2026-11-01T10:00:00.5Z", HN_OK, INT64_C(1793527200500000) },
    { "2026-11-01T10:00:00.123Z", HN_OK, INT64_C(1793527200123000) },
    { "2026-11-01T10:00:00,123Z", HN_OK, INT64_C(1793527200123000) },
    { "2026-11-01T10:00:00.123456789Z", HN_OK, INT64_C(1793527200123456) },
    { "1970-01-01", HN_OK, 0 },
    { "2024-02-29", HN_OK, INT64_C(1709164800000000) },
    { "2000-02-29", HN_OK, INT64_C(951782400000000) },
    { "9999-12-31T23:59:59Z", HN_OK, INT64_C(253402300799000000) },
    { "2026-11-01T10:00:00", HN_ERR, 0 },         /* no zone */
    { "2026-11-01T10:00:00.Z", HN_ERR, 0 },
    { "2026-11-01T10:00:00.1234567890Z", HN_ERR, 0 },
    { "2025-02-29", HN_ERR, 0 },
    { "1900-02-29", HN_ERR, 0 },
    { "2026-13-01", HN_ERR, 0 },
    { "2026-00-01", HN_ERR, 0 },
    { "2026-04-31", HN_ERR, 0 },
    { "2026-11-00", HN_ERR, 0 },
    { "2026-11-01T24:00:00Z", HN_ERR, 0 },
    { "2026-11-01T10:60:00Z", HN_ERR, 0 },
    { "2026-11-01T10:00:60Z", HN_ERR, 0 },
    { "2026-11-01T10:00:00+24:00", HN_ERR, 0 },
    { "2026-11-01T10:00:00+02:60", HN_ERR, 0 },
    { "2026-11-01T10:00:00+2", HN_ERR, 0 },
    { "2026-11-01T10:00:00Zjunk", HN_ERR, 0 },
    { "2026-11-01x", HN_ERR, 0 },
    { "2026-11-1", HN_ERR, 0 },
    { "26-11-01", HN_ERR, 0 },
    { "1969-12-31", HN_ERR, 0 },
    { "1970-01-01T00:30:00+01:00", HN_ERR, 0 },  /* before the epoch */
    { "+2026-11-01", HN_ERR, 0 },
    { "", HN_ERR, 0 },
    { "now", HN_ERR, 0 },
    { "1764000000", HN_ERR, 0 },                  /* epoch seconds: not ISO */
    { "' OR 1=1--", HN_ERR, 0 },
    { "2026-11-01'; DROP TABLE x;--", HN_ERR, 0 },
    { "２０２６-11-01", HN_ERR, 0 },
};

static void test_times(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        int64_t us = -1;
        int rc = hn_param_parse_time(times[i].in, &us);
        if (rc != times[i].rc || (rc == HN_OK && us != times[i].us))
            fail_msg("'%s': rc %d us %lld, want rc %d us %lld", times[i].in, rc, (long long)us,
                     times[i].rc, (long long)times[i].us);
    }
}

static void test_durations(void **state) {
    (void)state;
    static const struct { const char *in; int rc; int64_t us; } d[] = {
        { "24h", HN_OK, 24 * HN_US_PER_HOUR }, { "7d", HN_OK, 7 * HN_US_PER_DAY },
        { "90m", HN_OK, 90 * 60 * HN_US_PER_S }, { "2w", HN_OK, 14 * HN_US_PER_DAY },
        { "400d", HN_OK, 400 * HN_US_PER_DAY }, { "401d", HN_ERR, 0 }, { "0h", HN_ERR, 0 },
        { "h", HN_ERR, 0 }, { "-1d", HN_ERR, 0 }, { "1y", HN_ERR, 0 }, { "1.5h", HN_ERR, 0 },
        { "99999999999999999999d", HN_ERR, 0 }, { "1D", HN_ERR, 0 }, { "", HN_ERR, 0 },
    };
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++) {
        int64_t us = -1;
        int rc = hn_param_parse_duration(d[i].in, &us);
        if (rc != d[i].rc || (rc == HN_OK && us != d[i].us))
            fail_msg("'%s': rc %d us %lld", d[i].in, rc, (long long)us);
    }
}

/* ---- ranges --------------------------------------------------------------------- */

static void test_ranges(void **state) {
    (void)state;
    static const struct { const char *from, *to; int rc; int64_t f, t; const char *errpart; } r[] = {
        { NULL, NULL, HN_OK, T0 - 24 * HN_US_PER_HOUR, T0, NULL },
        { "7d", NULL, HN_OK, T0 - 7 * HN_US_PER_DAY, T0, NULL },
        { "24h", "now", HN_OK, T0 - 24 * HN_US_PER_HOUR, T0, NULL },
        { "1d", "2026-11-02", HN_OK, INT64_C(1793491200000000), INT64_C(1793577600000000), NULL },
        { "2026-11-01", "2026-11-02", HN_OK, INT64_C(1793491200000000), INT64_C(1793577600000000), NULL },
        { NULL, "2026-11-02", HN_OK, INT64_C(1793491200000000), INT64_C(1793577600000000), NULL },
        { "2026-11-02", "2026-11-01", HN_ERR, 0, 0, "from: must be before" },
        { "2026-11-01", "2026-11-01", HN_ERR, 0, 0, "from: must be before" },
        { "2024-01-01", "2026-01-01", HN_ERR, 0, 0, "400 days" },
        { "2025-01-01", "2026-02-06", HN_ERR, 0, 0, "400 days" },
        { "2025-01-01", "2026-02-05", HN_OK, INT64_C(1735689600000000), INT64_C(1770249600000000), NULL },
        { "yesterday", NULL, HN_ERR, 0, 0, "from:" },
        { NULL, "tomorrow", HN_ERR, 0, 0, "to:" },
        { "24h", "24h", HN_ERR, 0, 0, "to:" },
        { "' OR 1=1--", NULL, HN_ERR, 0, 0, "from:" },
        { "401d", NULL, HN_ERR, 0, 0, "at most 400 days" },
        { "all", NULL, HN_ERR, 0, 0, "at most 400 days" },
    };
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        int64_t f = -1, t = -1;
        char err[HN_PARAM_ERR_CAP] = "";
        int rc = hn_param_range(r[i].from, r[i].to, T0, &f, &t, err, sizeof(err));
        if (rc != r[i].rc || (rc == HN_OK && (f != r[i].f || t != r[i].t)) ||
            (rc != HN_OK && strstr(err, r[i].errpart) == NULL))
            fail_msg("row %zu (%s, %s): rc %d from %lld to %lld err '%s'", i,
                     r[i].from ? r[i].from : "-", r[i].to ? r[i].to : "-", rc, (long long)f,
                     (long long)t, err);
    }
}

/* The rollup routes' cap: 100 years, from=all; the raw routes' stays 400 days. */
static void test_ranges_rollup(void **state) {
    (void)state;
    static const struct { const char *from, *to; int64_t max; int rc; int64_t f, t; bool all; const char *errpart; } r[] = {
        { "2024-01-01", "2026-01-01", HN_RANGE_ROLLUP_MAX_US, HN_OK, INT64_C(1704067200000000), INT64_C(1767225600000000), false, NULL },
        { "2024-01-01", "2026-01-01", HN_RANGE_MAX_US, HN_ERR, 0, 0, false, "at most 400 days on this route (visitor-stats" },
        { "730d", NULL, HN_RANGE_ROLLUP_MAX_US, HN_OK, T0 - 730 * HN_US_PER_DAY, T0, false, NULL },
        { "104w", NULL, HN_RANGE_ROLLUP_MAX_US, HN_OK, T0 - 728 * HN_US_PER_DAY, T0, false, NULL },
        { "all", NULL, HN_RANGE_ROLLUP_MAX_US, HN_OK, 0, T0, true, NULL },
        { "all", "2026-01-01", HN_RANGE_ROLLUP_MAX_US, HN_OK, 0, INT64_C(1767225600000000), true, NULL },
        { "1970-01-01", "now", HN_RANGE_ROLLUP_MAX_US, HN_OK, 0, T0, false, NULL },
        { "36525d", "2070-01-01", HN_RANGE_ROLLUP_MAX_US, HN_OK, 0, INT64_C(3155760000000000), false, NULL },
        { "30000d", "2026-01-01", HN_RANGE_ROLLUP_MAX_US, HN_ERR, 0, 0, false, "before 1970-01-01" },
        { "36526d", NULL, HN_RANGE_ROLLUP_MAX_US, HN_ERR, 0, 0, false, "at most 36525 days on this route" },
        { "999999w", NULL, HN_RANGE_ROLLUP_MAX_US, HN_ERR, 0, 0, false, "at most 36525 days" },
        { "1970-01-01", "2071-01-01", HN_RANGE_ROLLUP_MAX_US, HN_ERR, 0, 0, false, "at most 36525 days" },
        { "ALL", NULL, HN_RANGE_ROLLUP_MAX_US, HN_ERR, 0, 0, false, "or 'all'" },
        { "all", "all", HN_RANGE_ROLLUP_MAX_US, HN_ERR, 0, 0, false, "to:" },
    };
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        int64_t f = -1, t = -1;
        bool all = !r[i].all;
        char err[HN_PARAM_ERR_CAP] = "";
        int rc = hn_param_range_max(r[i].from, r[i].to, T0, r[i].max, &f, &t, &all, err, sizeof(err));
        if (rc != r[i].rc || (rc == HN_OK && (f != r[i].f || t != r[i].t || all != r[i].all)) ||
            (rc != HN_OK && strstr(err, r[i].errpart) == NULL))
            fail_msg("row %zu (%s, %s): rc %d from %lld to %lld all %d err '%s'", i,
                     r[i].from ? r[i].from : "-", r[i].to ? r[i].to : "-", rc, (long long)f,
                     (long long)t, all, err);
    }
}

static void test_rounding(void **state) {
    (void)state;
    int64_t h = HN_US_PER_HOUR;
    assert_int_equal(hn_floor_us(T0 + 1, h), T0);
    assert_int_equal(hn_ceil_us(T0 + 1, h), T0 + h);
    assert_int_equal(hn_ceil_us(T0, h), T0);
    assert_int_equal(hn_floor_us(T0, HN_US_PER_DAY), INT64_C(1763942400000000));
    assert_int_equal(hn_floor_us(-1, h), -h);
}

/* ---- integers, words, ids ----------------------------------------------------- */

static void test_ints(void **state) {
    (void)state;
    static const struct { const char *in; int rc; int64_t v; } c[] = {
        { NULL, HN_OK, 100 }, { "1", HN_OK, 1 }, { "1000", HN_OK, 1000 }, { "007", HN_OK, 7 },
        { "0", HN_ERR, 0 }, { "1001", HN_ERR, 0 }, { "-1", HN_ERR, 0 }, { "+1", HN_ERR, 0 },
        { " 1", HN_ERR, 0 }, { "1 ", HN_ERR, 0 }, { "", HN_ERR, 0 }, { "1e3", HN_ERR, 0 },
        { "0x10", HN_ERR, 0 }, { "99999999999999999999999", HN_ERR, 0 }, { "10; DROP", HN_ERR, 0 },
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        int64_t v = -1;
        char err[HN_PARAM_ERR_CAP] = "";
        int rc = hn_param_int("limit", c[i].in, 1, 1000, 100, &v, err, sizeof(err));
        if (rc != c[i].rc || (rc == HN_OK && v != c[i].v))
            fail_msg("'%s': rc %d v %lld", c[i].in ? c[i].in : "(null)", rc, (long long)v);
        if (rc != HN_OK) assert_non_null(strstr(err, "limit: want an integer 1..1000"));
    }
}

static void test_words(void **state) {
    (void)state;
    static const char *const w[] = {"hour", "day"};
    char err[HN_PARAM_ERR_CAP];
    int v = -5;
    assert_int_equal(hn_param_enum("interval", "day", w, 2, -1, &v, err, sizeof(err)), HN_OK);
    assert_int_equal(v, 1);
    assert_int_equal(hn_param_enum("interval", NULL, w, 2, 0, &v, err, sizeof(err)), HN_OK);
    assert_int_equal(v, 0);
    assert_int_equal(hn_param_enum("interval", "Day", w, 2, 0, &v, err, sizeof(err)), HN_ERR);
    assert_string_equal(err, "interval: want one of hour|day");
    assert_int_equal(hn_param_enum("by", NULL, w, 2, -1, &v, err, sizeof(err)), HN_ERR);
    assert_string_equal(err, "by: required: one of hour|day");
    assert_int_equal(hn_param_bool("active", "true", &v, err, sizeof(err)), HN_OK);
    assert_int_equal(v, 1);
    assert_int_equal(hn_param_bool("active", NULL, &v, err, sizeof(err)), HN_OK);
    assert_int_equal(v, -1);
    assert_int_equal(hn_param_bool("active", "1", &v, err, sizeof(err)), HN_ERR);
}

static void test_ids(void **state) {
    (void)state;
    char long65[66], long129[130];
    memset(long65, 'a', 65), long65[65] = '\0';
    memset(long129, 'a', 129), long129[129] = '\0';
    assert_true(hn_param_session_id_ok("abcd1234"));
    assert_true(hn_param_session_id_ok("sess_ABC-09"));
    assert_true(hn_param_session_id_ok(long65 + 1));
    assert_false(hn_param_session_id_ok(long65));
    assert_false(hn_param_session_id_ok("abc1234"));
    assert_false(hn_param_session_id_ok("abcd 1234"));
    assert_false(hn_param_session_id_ok("abcd.1234"));
    assert_false(hn_param_session_id_ok("' OR 1=1--"));
    assert_false(hn_param_session_id_ok(""));
    assert_true(hn_param_visitor_ok("3f2a9c"));
    assert_true(hn_param_visitor_ok("user@example.com"));
    assert_true(hn_param_visitor_ok("J\xc3\xa9r\xc3\xb4me D"));     /* a vid may be any UTF-8 */
    assert_true(hn_param_visitor_ok(long129 + 1));
    assert_false(hn_param_visitor_ok(long129));
    assert_false(hn_param_visitor_ok(""));
    assert_false(hn_param_visitor_ok("a\tb"));
    assert_false(hn_param_visitor_ok("a\x7f"));
    assert_false(hn_param_visitor_ok("\xff\xfe"));
    assert_false(hn_param_visitor_ok("\xc0\xaf"));
}

static void test_keys(void **state) {
    (void)state;
    static const char *const allowed[] = {"from", "to"};
    char *ok[] = {"to", "from"}, *bad[] = {"from", "form"}, *ugly[] = {"a'\x01\xff" "bcdefghijklmnopqrstuvwxyz0123456789"};
    char err[HN_PARAM_ERR_CAP];
    assert_int_equal(hn_param_check_keys(ok, 2, allowed, 2, err, sizeof(err)), HN_OK);
    assert_int_equal(hn_param_check_keys(ok, 0, NULL, 0, err, sizeof(err)), HN_OK);
    assert_int_equal(hn_param_check_keys(bad, 2, allowed, 2, err, sizeof(err)), HN_ERR);
    assert_string_equal(err, "unknown parameter 'form' (this route takes: from, to)");
    assert_int_equal(hn_param_check_keys(ok, 1, NULL, 0, err, sizeof(err)), HN_ERR);
    assert_string_equal(err, "unknown parameter 'to' (this route takes: none)");
    assert_int_equal(hn_param_check_keys(ugly, 1, allowed, 2, err, sizeof(err)), HN_ERR);
    assert_string_equal(err, "unknown parameter 'a???bcdefghijklmnopqrstuvwxyz012...' (this route takes: from, to)");
}

/* ---- formatting ------------------------------------------------------------------ */

static void test_format(void **state) {
    (void)state;
    char out[HN_TIME_CAP];
    assert_int_equal(hn_fmt_time_ms(INT64_C(1793527200123), out), 24);
    assert_string_equal(out, "2026-11-01T10:00:00.123Z");
    hn_fmt_time_ms(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    hn_fmt_time_us(INT64_C(1793527200123456), out);
    assert_string_equal(out, "2026-11-01T10:00:00.123456Z");
    hn_fmt_time_us(INT64_C(951868799999999), out);
    assert_string_equal(out, "2000-02-29T23:59:59.999999Z");
    hn_fmt_date_us(INT64_C(1793527200123456), out);
    assert_string_equal(out, "2026-11-01");
    hn_fmt_time_ms(-1, out);                            /* before 1970 */
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    hn_fmt_time_ms(INT64_C(253402300800000), out);      /* year 10000: the general path */
    assert_string_equal(out, "10000-01-01T00:00:00.000Z");
    hn_fmt_time_ms(INT64_C(253402300799999), out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
    hn_fmt_time_us(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999999Z");
    hn_fmt_time_us(INT64_C(253402300800000000), out);
    assert_string_equal(out, "10000-01-01T00:00:00.000000Z");
    /* what the formatter writes, the parser reads back */
    for (int64_t us = 0; us < INT64_C(253402300799000000); us += INT64_C(86399123457) * 97) {
        int64_t back;
        hn_fmt_time_us(us, out);
        assert_int_equal(hn_param_parse_time(out, &back), HN_OK);
        assert_int_equal(back, us);
    }
}

/* ---- cursors ---------------------------------------------------------------------- */

static void test_cursors(void **state) {
    (void)state;
    char enc[HN_CURSOR_CAP];
    hn_cursor c = {.kind = 'L', .t = INT64_C(1764000000123), .tie_is_sid = true}, d;
    strcpy(c.sid, "sess_AbC-0001");
    hn_cursor_encode(&c, enc);
    assert_int_equal(hn_cursor_decode(enc, 'L', true, &d), HN_OK);
    assert_int_equal(d.t, c.t);
    assert_string_equal(d.sid, c.sid);
    assert_int_equal(hn_cursor_decode(enc, 'S', false, &d), HN_ERR);    /* another route's */
    assert_int_equal(hn_cursor_decode(enc, 'L', false, &d), HN_ERR);

    /* every length of sid and integer round-trips (padding cases) */
    for (int n = 8; n <= 64; n++) {
        hn_cursor e = {.kind = 'L', .t = n * INT64_C(1000003), .tie_is_sid = true};
        memset(e.sid, 'x', (size_t)n);
        e.sid[n] = '\0';
        size_t len = hn_cursor_encode(&e, enc);
        assert_true(len > 0 && len < HN_CURSOR_CAP);
        assert_int_equal(hn_cursor_decode(enc, 'L', true, &d), HN_OK);
        assert_string_equal(d.sid, e.sid);
    }
    hn_cursor s = {.kind = 'S', .t = INT64_C(1793527200123456), .id = 987654321};
    hn_cursor_encode(&s, enc);
    assert_int_equal(hn_cursor_decode(enc, 'S', false, &d), HN_OK);
    assert_int_equal(d.t, s.t);
    assert_int_equal(d.id, s.id);

    /* made-up and tampered cursors */
    static const char *const bad[] = {
        "", "x", "abc", "====", "TDE3NjQ=", "TDE3NjQwMDAwMDAwMDAwLnNlc3M",    /* sid too short */
        "' OR 1=1--", "TDE%00", "UzE3OTM1MjcyMDAxMjM0NTYuMDk4", /* "S1793527200123456.098": leading 0 */
        "UzAxLjE", /* "S01.1" */ "Uy0xLjE", /* "S-1.1" */ "UzEuMS4x", /* "S1.1.1" */
        "UzEuYQ", /* "S1.a" */ "UzEu", /* "S1." */ "Uy4x", /* "S.1" */
        "UzEuMR", /* non-zero padding bits */ "UzEuMQ==", /* padding */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (hn_cursor_decode(bad[i], 'S', false, &d) == HN_OK &&
            hn_cursor_decode(bad[i], 'L', true, &d) == HN_OK)
            fail_msg("cursor '%s' decoded", bad[i]);
    assert_int_equal(hn_cursor_decode("UzEuMQ", 'S', false, &d), HN_OK);    /* "S1.1" */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(hn_cursor_decode(bad[i], 'S', false, &d), HN_ERR);
    char big[400];
    memset(big, 'A', sizeof(big) - 1), big[sizeof(big) - 1] = '\0';
    assert_int_equal(hn_cursor_decode(big, 'S', false, &d), HN_ERR);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_times),    cmocka_unit_test(test_durations),
        cmocka_unit_test(test_ranges),   cmocka_unit_test(test_ranges_rollup),
        cmocka_unit_test(test_rounding),
        cmocka_unit_test(test_ints),     cmocka_unit_test(test_words),
        cmocka_unit_test(test_ids),      cmocka_unit_test(test_keys),
        cmocka_unit_test(test_format),   cmocka_unit_test(test_cursors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
