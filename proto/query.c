/*
 * query.c: the pixel's query-string form of a beacon.
 *
 *   k=ab&s=...&d.plan=pro ─► split on & and = ─► %-decode into scratch
 *       ─► raw value per known key (last wins), d.<name> into props
 *       ─► numbers parsed ─► hn_draft_validate() (beacon.c) ─► reason
 *
 * The form has no types: every value arrives as text. Everything after the
 * draft is shared with the msgpack form so the two cannot drift apart.
 */
#include "proto/query.h"
#include "proto/beacon_internal.h"
#include "common/pct.h"

#include <string.h>

/* Percent- and '+'-decodes [p, end) into scratch at *used. */
static hn_reason pct_decode(const char *p, const char *end, char *scratch, size_t cap,
                            size_t *used, hn_str *out) {
    long n = hn_pct_decode(p, (size_t)(end - p), scratch + *used, cap - *used, HN_PCT_PLUS);
    if (n == HN_PCT_BAD) return HN_R_MALFORMED;
    if (n < 0) return HN_R_TOO_LARGE;
    *out = (hn_str){scratch + *used, (uint32_t)n};
    *used += (size_t)n;
    return HN_R_OK;
}

/* Decimal, no sign; false on anything else or on overflow. */
static bool parse_dec(hn_str s, uint64_t *v) {
    uint64_t x = 0;
    bool ok = s.len > 0;
    for (uint32_t i = 0; i < s.len && ok; i++) {
        unsigned d = (unsigned char)s.p[i] - '0';
        if (d > 9 || x > (UINT64_MAX - d) / 10) ok = false;
        else x = x * 10 + d;
    }
    if (ok) *v = x;
    return ok;
}

/* The query form has no types: every value arrives as text, numbers are
 * parsed here, then the draft goes to the same hn_draft_validate() as msgpack. */
static hn_reason from_query(hn_draft *dr, const char *qs, size_t qlen, char *scratch, size_t cap) {
    hn_str raw[K__COUNT] = { { 0 } };
    hn_beacon *b = dr->b;
    size_t used = 0;
    bool overflow = false;
    hn_reason r = HN_R_OK;
    const char *p = qs, *end = qlen ? qs + qlen : qs;

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        if (amp == NULL) amp = end;
        const char *eq = memchr(p, '=', (size_t)(amp - p));
        hn_str key, val = { NULL, 0 };
        if (eq == NULL) eq = amp;
        if ((r = pct_decode(p, eq, scratch, cap, &used, &key)) != HN_R_OK
                || (eq < amp && (r = pct_decode(eq + 1, amp, scratch, cap, &used, &val)) != HN_R_OK)) {
            if (r == HN_R_MALFORMED) hn_draft_reject(dr, r, "bad percent-encoding");
            else hn_draft_reject(dr, r, "scratch buffer too small");
            goto out;
        }
        int k = key.len ? hn_key_find(key.p, key.len) : -1;
        if (k >= 0 && hn_keys[k].kind != KIND_PROPS) {
            raw[k] = val;               /* the last one wins, even when empty */
        } else if (key.len >= 2 && key.p[0] == 'd' && key.p[1] == '.') {
            hn_prop pr = { .key = { key.p + 2, key.len - 2 }, .type = HN_P_STR, .v.s = val };
            if (!hn_prop_put(b, &pr)) overflow = true;
        }
        p = amp < end ? amp + 1 : end;
    }

    for (int k = 0; k < K__COUNT; k++) {
        if (hn_keys[k].kind == KIND_STR) {
            *str_at(b, k) = raw[k];
        } else if (hn_keys[k].kind == KIND_UINT && raw[k].len > 0) {
            if (!parse_dec(raw[k], &dr->num[k])) {
                r = hn_draft_reject(dr, HN_R_BAD_VALUE, "key '%s': not an unsigned decimal number",
                                    hn_keys[k].name);
                goto out;
            }
            dr->have |= 1u << k;
        }
    }
    if (!draft_present(dr, K_V)) {      /* optional here: a pixel URL is hand-made */
        dr->num[K_V] = HN_PROTO_VERSION;
        dr->have |= 1u << K_V;
    }
    if (overflow) {
        r = hn_draft_reject(dr, HN_R_TOO_LONG, "key 'd': more than %d entries", HN_PROPS_MAX);
        goto out;
    }
    /* an empty value means absent, for d.<name> as for every other key */
    int n = 0;
    for (int i = 0; i < b->nprops; i++) {
        if (b->props[i].v.s.len > 0) b->props[n++] = b->props[i];
    }
    b->nprops = (uint8_t)n;
    r = hn_draft_validate(dr);
out:
    return r;
}

int hn_beacon_decode_query(hn_batch *out, const char *qs, size_t qlen, char *scratch, size_t cap) {
    hn_draft dr;
    hn_reason r;
    int accepted = 0;

    hn_batch_reset(out);
    if (qlen > HN_HTTP_BODY_MAX) {
        hn_batch_fail(out, HN_R_TOO_LARGE, "query of %zu bytes (max %d)", qlen, HN_HTTP_BODY_MAX);
        goto out;
    }
    hn_draft_init(&dr, &out->b[0]);
    r = from_query(&dr, qs, qlen, scratch, cap);
    if (r == HN_R_MALFORMED || r == HN_R_TOO_LARGE) {
        hn_batch_fail(out, r, "%s", dr.msg);
        goto out;
    }
    out->n = 1;
    accepted = hn_batch_set(out, 0, r, &dr);
out:
    return accepted;
}
