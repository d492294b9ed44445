/*
 * copy.c: PostgreSQL's COPY text format (copy.h): escapes, NULLs, numbers,
 * timestamps and days, and event data as JSON.
 */
#include "api/drain/copy.h"

#include "common/datakey.h"
#include "common/json.h"

#include <stdio.h>
#include <time.h>

void hn_copy_sep(hn_buf *b) {
    hn_buf_append(b, "\t", 1);
}

void hn_copy_null(hn_buf *b) {
    hn_buf_append(b, "\\N", 2);
}

void hn_copy_bytes(hn_buf *b, const char *p, size_t n) {
    hn_buf_reserve(b, n + 16);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        char esc;
        switch (p[i]) {
        case '\\': esc = '\\'; break;
        case '\n': esc = 'n'; break;
        case '\r': esc = 'r'; break;
        case '\t': esc = 't'; break;
        default: continue;
        }
        hn_buf_append(b, p + start, i - start);
        char two[2] = {'\\', esc};
        hn_buf_append(b, two, 2);
        start = i + 1;
    }
    hn_buf_append(b, p + start, n - start);
}

void hn_copy_str(hn_buf *b, hn_str s) {
    hn_copy_sep(b);
    if (s.len == 0) hn_copy_null(b);
    else hn_copy_bytes(b, s.p, s.len);
}

void hn_copy_u64_raw(hn_buf *b, uint64_t v) {
    char num[24];
    hn_buf_append(b, num, hn_u64toa(v, num));
}

void hn_copy_u64(hn_buf *b, uint64_t v) {
    hn_copy_sep(b);
    hn_copy_u64_raw(b, v);
}

void hn_copy_ts_raw(hn_buf *b, uint64_t us) {
    if (us == 0) {
        hn_copy_null(b);
        return;
    }
    /* the records of a batch share a handful of seconds: the date and time
     * are formatted once per second (per drain thread), only the µs each time */
    static __thread time_t last_secs = -1;
    static __thread char last_text[64];
    static __thread int last_len;
    time_t secs = (time_t)(us / 1000000);
    if (secs != last_secs) {
        struct tm tm;
        gmtime_r(&secs, &tm);
        last_len = snprintf(last_text, sizeof(last_text), "%04d-%02d-%02d %02d:%02d:%02d.",
                            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                            tm.tm_sec);
        last_secs = secs;
    }
    char frac[9] = "000000+00";   /* µs, then the zone */
    unsigned f = (unsigned)(us % 1000000);
    for (int i = 5; i >= 0; i--, f /= 10) frac[i] = (char)('0' + f % 10);
    hn_buf_append(b, last_text, (size_t)last_len);
    hn_buf_append(b, frac, sizeof(frac));
}

void hn_copy_ts(hn_buf *b, uint64_t us) {
    hn_copy_sep(b);
    hn_copy_ts_raw(b, us);
}

void hn_copy_day(hn_buf *b, uint64_t day) {
    time_t secs = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&secs, &tm);
    hn_copy_sep(b);
    hn_buf_printf(b, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

void hn_copy_sealed(hn_buf *b, hn_str s) {
    if (s.len == 0 || !hn_dk_enabled()) {
        hn_copy_str(b, s);
        return;
    }
    hn_copy_sep(b);
    hn_dk_seal(b, s.p, s.len);              /* base64 and ':': nothing to escape */
}

void hn_copy_email_key(hn_buf *b, hn_str s) {
    if (s.len == 0) {
        hn_copy_str(b, s);
        return;
    }
    hn_buf t = {0};
    hn_dk_email_key(&t, s.p, s.len);
    hn_copy_sep(b);
    hn_copy_bytes(b, t.p, t.len);
    hn_buf_free(&t);
}

/* A JSON string member, its value sealed. */
static void json_sealed(hn_buf *b, bool *first, const char *key, hn_str v) {
    hn_json_key(b, first, key);
    if (!hn_dk_enabled()) {
        hn_json_str(b, v.p, v.len);
        return;
    }
    hn_buf_append(b, "\"", 1);
    hn_dk_seal(b, v.p, v.len);              /* base64 and ':': nothing to escape */
    hn_buf_append(b, "\"", 1);
}

void hn_copy_data(hn_buf *b, const hn_record *r, hn_buf *tmp) {
    hn_copy_sep(b);
    hn_buf_reset(tmp);
    bool first = true;
    if (r->b.type == HN_T_ID) {
        hn_buf_append(tmp, "{", 1);
        if (r->b.nm.len) json_sealed(tmp, &first, "name", r->b.nm);
        if (r->b.em.len) json_sealed(tmp, &first, "email", r->b.em);
        if (r->b.ph.len) json_sealed(tmp, &first, "phone", r->b.ph);
        hn_buf_append(tmp, "}", 1);
    } else if (r->b.nprops > 0) {
        hn_props_json(tmp, r->b.props, r->b.nprops);
    } else {
        hn_copy_null(b);
        return;
    }
    hn_copy_bytes(b, tmp->p, tmp->len);
}
