/* params.c: see params.h. */
#include "api/params.h"

#include "common/utf8.h"

#include <stdarg.h>
#include <stdio.h>

static int param_fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int param_fail(char *err, size_t cap, const char *fmt, ...) {
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return HN_ERR;
}

const char *hn_param_excerpt(const char *s, char *out) {
    size_t i = 0;
    for (; s[i] && i < 32; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') ? (char)c : '?';
    }
    if (s[i]) memcpy(out + i, "...", 3), i += 3;
    out[i] = '\0';
    return out;
}

int hn_param_check_keys(char *const *keys, int nkeys, const char *const *allowed,
                        int nallowed, char *err, size_t cap) {
    for (int i = 0; i < nkeys; i++) {
        bool known = false;
        for (int j = 0; j < nallowed && !known; j++) known = strcmp(keys[i], allowed[j]) == 0;
        if (known) continue;
        char ex[40], list[160] = "";
        size_t len = 0;
        for (int j = 0; j < nallowed && len < sizeof(list); j++) {
            int k = snprintf(list + len, sizeof(list) - len, "%s%s", j ? ", " : "", allowed[j]);
            if (k > 0) len += (size_t)k;
        }
        return param_fail(err, cap, "unknown parameter '%s' (this route takes: %s)",
                    hn_param_excerpt(keys[i], ex), nallowed ? list : "none");
    }
    return HN_OK;
}

/* Digits only, 1..18 of them (no overflow possible below 10^18). */
static bool parse_digits(const char *s, size_t n, int64_t *out) {
    if (n == 0 || n > 18) return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

int hn_param_int(const char *name, const char *s, int64_t min, int64_t max, int64_t def,
                 int64_t *out, char *err, size_t cap) {
    int64_t v;
    if (s == NULL) {
        *out = def;
        return HN_OK;
    }
    if (!parse_digits(s, strlen(s), &v) || v < min || v > max)
        return param_fail(err, cap, "%s: want an integer %lld..%lld", name, (long long)min,
                    (long long)max);
    *out = v;
    return HN_OK;
}

int hn_param_enum(const char *name, const char *s, const char *const *words, int n, int def,
                  int *out, char *err, size_t cap) {
    if (s != NULL) {
        for (int i = 0; i < n; i++)
            if (strcmp(s, words[i]) == 0) {
                *out = i;
                return HN_OK;
            }
    } else if (def >= 0) {
        *out = def;
        return HN_OK;
    }
    char list[160] = "";
    size_t len = 0;
    for (int i = 0; i < n && len < sizeof(list); i++) {
        int k = snprintf(list + len, sizeof(list) - len, "%s%s", i ? "|" : "", words[i]);
        if (k > 0) len += (size_t)k;
    }
    return param_fail(err, cap, "%s: %s one of %s", name, s ? "want" : "required:", list);
}

int hn_param_bool(const char *name, const char *s, int *out, char *err, size_t cap) {
    static const char *const words[] = {"false", "true"};
    if (s == NULL) {
        *out = -1;
        return HN_OK;
    }
    return hn_param_enum(name, s, words, 2, -1, out, err, cap);
}

bool hn_param_session_id_ok(const char *s) {
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (n >= 64) return false;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return n >= 8;
}

bool hn_param_visitor_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 128) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) return false;
    }
    return hn_utf8_valid(s, n);
}

/* ---- calendar (Howard Hinnant's days_from_civil) ------------------------------ */

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static unsigned days_in_month(int64_t y, unsigned m) {
    static const unsigned dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* Exactly n digits at s into *v. */
static bool fixed_digits(const char *s, int n, int *v) {
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return true;
}

int hn_param_parse_time(const char *s, int64_t *us) {
    int y, mo, d, h = 0, mi = 0, sec = 0;
    int64_t frac = 0;
    const char *p = s;
    if (!fixed_digits(p, 4, &y) || p[4] != '-' || !fixed_digits(p + 5, 2, &mo) || p[7] != '-' ||
        !fixed_digits(p + 8, 2, &d))
        return HN_ERR;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || (unsigned)d > days_in_month(y, (unsigned)mo))
        return HN_ERR;
    p += 10;
    int64_t off_s = 0;
    if (*p != '\0') {
        if (*p != 'T' && *p != 't' && *p != ' ') return HN_ERR;
        p++;
        if (!fixed_digits(p, 2, &h) || p[2] != ':' || !fixed_digits(p + 3, 2, &mi)) return HN_ERR;
        p += 5;
        if (*p == ':') {
            if (!fixed_digits(p + 1, 2, &sec)) return HN_ERR;
            p += 3;
            if (*p == '.' || *p == ',') {
                int nd = 0;
                p++;
                while (*p >= '0' && *p <= '9') {
                    if (nd < 6) frac = frac * 10 + (*p - '0');
                    nd++;
                    p++;
                }
                if (nd == 0 || nd > 9) return HN_ERR;
                for (int i = nd; i < 6; i++) frac *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 59) return HN_ERR;
        /* the zone: required for a date-time */
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-' || *p == ' ') {
            int sign = *p == '-' ? -1 : 1, oh, om = 0;
            p++;
            if (!fixed_digits(p, 2, &oh)) return HN_ERR;
            p += 2;
            if (*p == ':') {
                if (!fixed_digits(p + 1, 2, &om)) return HN_ERR;
                p += 3;
            } else if (*p >= '0' && *p <= '9') {
                if (!fixed_digits(p, 2, &om)) return HN_ERR;
                p += 2;
            }
            if (oh > 23 || om > 59) return HN_ERR;
            off_s = sign * (oh * 3600 + om * 60);
        } else {
            return HN_ERR;
        }
        if (*p != '\0') return HN_ERR;
    }
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    int64_t secs = days * 86400 + h * 3600 + mi * 60 + sec - off_s;
    if (secs < 0) return HN_ERR;
    *us = secs * HN_US_PER_S + frac;
    return HN_OK;
}

/* A duration of at most 6 digits: at most 999999 weeks, no overflow. */
static int parse_duration_max(const char *s, int64_t max_us, int64_t *us) {
    size_t n = strlen(s);
    int64_t v, unit;
    if (n < 2) return HN_ERR;
    switch (s[n - 1]) {
    case 'm': unit = 60 * HN_US_PER_S; break;
    case 'h': unit = HN_US_PER_HOUR; break;
    case 'd': unit = HN_US_PER_DAY; break;
    case 'w': unit = 7 * HN_US_PER_DAY; break;
    default: return HN_ERR;
    }
    if (n - 1 > 6 || !parse_digits(s, n - 1, &v) || v < 1 || v * unit > max_us)
        return HN_ERR;
    *us = v * unit;
    return HN_OK;
}

int hn_param_parse_duration(const char *s, int64_t *us) {
    return parse_duration_max(s, HN_RANGE_MAX_US, us);
}

int hn_param_range_max(const char *from, const char *to, int64_t now_us, int64_t max_us,
                       int64_t *from_us, int64_t *to_us, bool *all, char *err, size_t cap) {
    int64_t t = now_us, f, dur;
    bool is_all = from != NULL && strcmp(from, "all") == 0;
    if (to != NULL && strcmp(to, "now") != 0 && hn_param_parse_time(to, &t) != HN_OK)
        return param_fail(err, cap, "to: want an ISO 8601 date (2026-11-01) or date-time with zone "
                              "(2026-11-01T10:00:00Z, ...+02:00), or 'now'");
    if (from == NULL) {
        f = t - HN_RANGE_DEFAULT_US;
    } else if (is_all) {
        f = 0;
    } else if (parse_duration_max(from, INT64_MAX, &dur) == HN_OK) {   /* the span: below */
        f = t - dur;
    } else if (hn_param_parse_time(from, &f) != HN_OK) {
        return param_fail(err, cap, "from: want an ISO 8601 date (2026-11-01) or date-time with zone "
                              "(2026-11-01T10:00:00Z, ...+02:00), a duration before 'to' "
                              "(90m, 24h, 7d, 2w), or 'all'");
    }
    if (f >= t) return param_fail(err, cap, "from: must be before to");
    if (t - f > max_us)
        return param_fail(err, cap, "from: the range from..to may span at most %lld days on this "
                          "route%s", (long long)(max_us / HN_US_PER_DAY),
                          max_us < HN_RANGE_ROLLUP_MAX_US
                              ? " (visitor-stats, timeseries and breakdown: 36525, or from=all)"
                              : "");
    if (f < 0) return param_fail(err, cap, "from: before 1970-01-01 (from=all starts there)");
    *from_us = f;
    *to_us = t;
    if (all) *all = is_all;
    return HN_OK;
}

int hn_param_range(const char *from, const char *to, int64_t now_us, int64_t *from_us,
                   int64_t *to_us, char *err, size_t cap) {
    return hn_param_range_max(from, to, now_us, HN_RANGE_MAX_US, from_us, to_us, NULL, err, cap);
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t hn_floor_us(int64_t us, int64_t unit) { return floor_div(us, unit) * unit; }

int64_t hn_ceil_us(int64_t us, int64_t unit) {
    int64_t f = hn_floor_us(us, unit);
    return f == us ? us : f + unit;
}

/* ---- cursors ------------------------------------------------------------------- */

static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64u_val(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

size_t hn_cursor_encode(const hn_cursor *c, char *out) {
    char raw[96];
    int n = c->tie_is_sid
                ? snprintf(raw, sizeof(raw), "%c%lld.%s", c->kind, (long long)c->t, c->sid)
                : snprintf(raw, sizeof(raw), "%c%lld.%lld", c->kind, (long long)c->t,
                           (long long)c->id);
    if (n <= 0 || (size_t)n >= sizeof(raw)) n = 0;
    size_t o = 0;
    const unsigned char *r = (const unsigned char *)raw;
    for (int i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)r[i] << 16;
        if (i + 1 < n) v |= (uint32_t)r[i + 1] << 8;
        if (i + 2 < n) v |= r[i + 2];
        out[o++] = b64u[v >> 18 & 63];
        out[o++] = b64u[v >> 12 & 63];
        if (i + 1 < n) out[o++] = b64u[v >> 6 & 63];
        if (i + 2 < n) out[o++] = b64u[v & 63];
    }
    out[o] = '\0';
    return o;
}

/* Canonical non-negative decimal: no leading zeros, 1..18 digits. */
static bool canon_int(const char *s, size_t n, int64_t *v) {
    if (n > 1 && s[0] == '0') return false;
    return parse_digits(s, n, v);
}

int hn_cursor_decode(const char *s, char kind, bool tie_is_sid, hn_cursor *c) {
    size_t n = strlen(s);
    char raw[96];
    size_t r = 0;
    if (n < 4 || n >= HN_CURSOR_CAP || n % 4 == 1) return HN_ERR;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64u_val(s[i]);
        if (v < 0) return HN_ERR;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (r >= sizeof(raw) - 1) return HN_ERR;
            raw[r++] = (char)(acc >> bits & 0xff);
        }
    }
    if (acc & ((1u << bits) - 1)) return HN_ERR;      /* non-zero padding bits: not canonical */
    raw[r] = '\0';
    if (memchr(raw, '\0', r) != NULL || raw[0] != kind) return HN_ERR;
    const char *dot = strchr(raw + 1, '.');
    if (dot == NULL) return HN_ERR;
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->tie_is_sid = tie_is_sid;
    if (!canon_int(raw + 1, (size_t)(dot - raw - 1), &c->t)) return HN_ERR;
    const char *tie = dot + 1;
    if (tie_is_sid) {
        if (!hn_param_session_id_ok(tie)) return HN_ERR;
        memcpy(c->sid, tie, strlen(tie) + 1);
    } else if (!canon_int(tie, strlen(tie), &c->id)) {
        return HN_ERR;
    }
    return HN_OK;
}
