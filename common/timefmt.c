/* timefmt.c: see timefmt.h. The calendar is Howard Hinnant's
 * civil_from_days (api/params.c has its inverse, for the parser). */
#include "common/timefmt.h"

#include <stdio.h>

#define US_PER_S   INT64_C(1000000)
#define US_PER_DAY (INT64_C(86400) * US_PER_S)

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* v in exactly n decimal digits (zero-padded; v < 10^n) at *o. */
static void put_digits(char **o, unsigned v, int n) {
    for (int i = n - 1; i >= 0; i--) {
        (*o)[i] = (char)('0' + v % 10);
        v /= 10;
    }
    *o += n;
}

static size_t fmt_time(int64_t us, int digits, char *out) {
    int64_t secs = floor_div(us, US_PER_S), sub = us - secs * US_PER_S;
    int64_t days = floor_div(secs, 86400), sod = secs - days * 86400, y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) {                    /* far from now: the general path */
        int n = snprintf(out, HN_TIME_CAP, "%04lld-%02u-%02uT%02d:%02d:%02d.%0*dZ", (long long)y, m, d,
                         (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), digits,
                         (int)(digits == 3 ? sub / 1000 : sub));
        return n > 0 && n < HN_TIME_CAP ? (size_t)n : 0;
    }
    /* YYYY-MM-DDTHH:MM:SS.fffZ by hand: lists put two of these in each of
     * their rows, and snprintf was a tenth of the live list's CPU */
    char *o = out;
    put_digits(&o, (unsigned)y, 4);
    *o++ = '-';
    put_digits(&o, m, 2);
    *o++ = '-';
    put_digits(&o, d, 2);
    *o++ = 'T';
    put_digits(&o, (unsigned)(sod / 3600), 2);
    *o++ = ':';
    put_digits(&o, (unsigned)(sod / 60 % 60), 2);
    *o++ = ':';
    put_digits(&o, (unsigned)(sod % 60), 2);
    *o++ = '.';
    put_digits(&o, (unsigned)(digits == 3 ? sub / 1000 : sub), digits);
    *o++ = 'Z';
    *o = '\0';
    return (size_t)(o - out);
}

size_t hn_fmt_time_ms(int64_t ms, char *out) { return fmt_time(ms * 1000, 3, out); }
size_t hn_fmt_time_us(int64_t us, char *out) { return fmt_time(us, 6, out); }

size_t hn_fmt_date_us(int64_t us, char *out) {
    int64_t y;
    unsigned m, d;
    civil_from_days(floor_div(us, US_PER_DAY), &y, &m, &d);
    int n = snprintf(out, HN_TIME_CAP, "%04lld-%02u-%02u", (long long)y, m, d);
    return n > 0 && n < HN_TIME_CAP ? (size_t)n : 0;
}
