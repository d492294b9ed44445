/*
 * beacon.c: beacon protocol v1 (docs/PROTOCOL.md): both wire forms decoded
 * into hn_beacon, one beacon packed back, and the small tables around them.
 *
 *   msgpack ─► precheck ─► msgpack_unpack (zone) ─► from_map ──┐
 *                                                             ├─► draft ─► validate() ─► reason
 *   query string ─► split on & and = , %-decode into scratch ──┘
 *
 * Both forms first collect the last occurrence of every known key (so
 * "repeated key: last wins" falls out of it), convert the values into a
 * draft (strings straight into the beacon, numbers as uint64 with presence
 * bits), and then one validate() judges the draft, so the two forms cannot
 * drift apart. Pure: no I/O, no global state; msgpack strings are never
 * copied (query strings are decoded into the caller's scratch).
 */
#include "proto/beacon.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define HN_DEPTH_MAX  8            /* open containers in one input */
#define HN_ZONE_CHUNK (HN_UDP_MAX * sizeof(msgpack_object) + 4096)
#define SID_MIN       8
#define PROP_KEY_MAX  64
#define PROP_STR_MAX  256
#define SCREEN_MAX    65535

struct hn_decoder {
    msgpack_zone zone;
};

/* ---- names ------------------------------------------------------------- */

static const char *const reason_names[HN_R__COUNT] = {
    [HN_R_OK]                = "ok",
    [HN_R_MALFORMED]         = "malformed",
    [HN_R_NOT_MAP]           = "not_map",
    [HN_R_BATCH_TOO_LARGE]   = "batch_too_large",
    [HN_R_BAD_VERSION]       = "bad_version",
    [HN_R_MISSING_FIELD]     = "missing_field",
    [HN_R_BAD_TYPE]          = "bad_type",
    [HN_R_TOO_LONG]          = "too_long",
    [HN_R_BAD_VALUE]         = "bad_value",
    [HN_R_BAD_UTF8]          = "bad_utf8",
    [HN_R_TOO_LARGE]         = "too_large",
    [HN_R_UNKNOWN_WIDGET]    = "unknown_widget",
    [HN_R_REDIS_UNAVAILABLE] = "redis_unavailable",
    [HN_R_RATE_LIMITED]      = "rate_limited",
    [HN_R_BOT]               = "bot",
    [HN_R_OPTED_OUT]         = "opted_out",
    [HN_R_SPOOL_FULL]        = "spool_full",
};

const char *hn_reason_name(hn_reason r) {
    if ((unsigned)r >= HN_R__COUNT || reason_names[r] == NULL) return "unknown";
    return reason_names[r];
}

static const char *const btype_names[HN_T__COUNT] = {
    [HN_T_NONE] = "",
    [HN_T_PV] = "pv", [HN_T_HB] = "hb", [HN_T_EV] = "ev", [HN_T_HIDE] = "hide",
    [HN_T_SHOW] = "show", [HN_T_END] = "end", [HN_T_ID] = "id",
};

hn_btype hn_btype_parse(hn_str t) {
    hn_btype found = HN_T_NONE;
    for (int i = HN_T_PV; i < HN_T__COUNT; i++) {
        if (hn_str_eq(t, btype_names[i], strlen(btype_names[i]))) {
            found = (hn_btype)i;
            break;
        }
    }
    return found;
}

/* "" for HN_T_NONE and out-of-range values, so the result is always safe to
 * print or pack. */
const char *hn_btype_name(hn_btype t) {
    return (unsigned)t < HN_T__COUNT ? btype_names[t] : "";
}

/* ---- UTF-8 --------------------------------------------------------------- */

/* Strict per RFC 3629 / Unicode table 3-7: the second byte's range depends on
 * the lead byte, which is what rules out overlongs (C0, C1, E0 80..9F,
 * F0 80..8F), surrogates (ED A0..BF) and code points above U+10FFFF
 * (F4 90.., F5..FF). Beacons are almost all ASCII, hence the 8-byte skip. */
bool hn_utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    bool ok = true;

    while (i < len && ok) {
        if (len - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & UINT64_C(0x8080808080808080)) == 0) {
                i += 8;
                continue;
            }
        }
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t more;
        unsigned lo = 0x80, hi = 0xBF;       /* range of the second byte */
        if (c >= 0xC2 && c <= 0xDF)      more = 1;
        else if (c == 0xE0)              more = 2, lo = 0xA0;
        else if (c == 0xED)              more = 2, hi = 0x9F;
        else if (c >= 0xE1 && c <= 0xEF) more = 2;
        else if (c == 0xF0)              more = 3, lo = 0x90;
        else if (c == 0xF4)              more = 3, hi = 0x8F;
        else if (c >= 0xF1 && c <= 0xF3) more = 3;
        else { ok = false; break; }

        if (len - i - 1 < more || p[i + 1] < lo || p[i + 1] > hi) {
            ok = false;
            break;
        }
        for (size_t j = 2; j <= more; j++) {
            if ((p[i + j] & 0xC0) != 0x80) ok = false;
        }
        i += more + 1;
    }
    return ok;
}

/* ---- the structural pre-check -------------------------------------------- */

/*
 * Why this exists: msgpack-c's msgpack_unpack allocates room for a
 * container's elements as soon as it reads the header, trusting the count.
 * A 5-byte input "dd ff ff ff ff" (an array claiming 4 billion elements)
 * would make it ask the zone for ~100 GB, and a few such datagrams would
 * take the collector down. So before msgpack-c sees any byte, this walks the
 * raw input once, iteratively (no recursion an attacker could deepen), and
 * accepts it only when it is exactly one well-formed object in which every
 * container claims no more elements than there are bytes left after its
 * header (each element takes at least one byte), nested at most
 * HN_DEPTH_MAX deep. That bounds what msgpack_unpack may allocate to about
 * len * sizeof(msgpack_object).
 */
static bool mp_precheck(const unsigned char *p, size_t len) {
    uint64_t left[HN_DEPTH_MAX];    /* elements still to read per open container */
    int depth = 0;
    size_t pos = 0;
    bool ok = false;

    for (;;) {
        if (pos >= len) goto out;                       /* truncated */
        unsigned c = p[pos];
        size_t avail = len - pos, hdr = 1;
        uint64_t body = 0, n = 0;                       /* payload bytes, elements */
        bool container = false;

        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
            /* fixint, nil, false, true: the byte is the whole object */
        } else if (c <= 0x8f) {
            n = 2u * (c & 0x0f), container = true;      /* fixmap */
        } else if (c <= 0x9f) {
            n = c & 0x0f, container = true;             /* fixarray */
        } else if (c <= 0xbf) {
            body = c & 0x1f;                            /* fixstr */
        } else {
            switch (c) {
            case 0xc4: case 0xd9: hdr = 2; break;       /* bin8, str8 */
            case 0xc5: case 0xda: hdr = 3; break;       /* bin16, str16 */
            case 0xc6: case 0xdb: hdr = 5; break;       /* bin32, str32 */
            case 0xc7: hdr = 3; break;                  /* ext8: len, type */
            case 0xc8: hdr = 4; break;
            case 0xc9: hdr = 6; break;
            case 0xca: hdr = 5; break;                  /* float32 */
            case 0xcb: hdr = 9; break;
            case 0xcc: case 0xd0: hdr = 2; break;       /* (u)int8 */
            case 0xcd: case 0xd1: hdr = 3; break;
            case 0xce: case 0xd2: hdr = 5; break;
            case 0xcf: case 0xd3: hdr = 9; break;
            case 0xd4: hdr = 2; body = 1; break;        /* fixext1: type, data */
            case 0xd5: hdr = 2; body = 2; break;
            case 0xd6: hdr = 2; body = 4; break;
            case 0xd7: hdr = 2; body = 8; break;
            case 0xd8: hdr = 2; body = 16; break;
            case 0xdc: case 0xde: hdr = 3; container = true; break;
            case 0xdd: case 0xdf: hdr = 5; container = true; break;
            default: goto out;                          /* 0xc1: never used */
            }
            if (avail < hdr) goto out;
            const unsigned char *h = p + pos + 1;
            uint64_t v = 0;
            switch (c) {
            case 0xc4: case 0xd9: case 0xc7:
                v = h[0]; break;
            case 0xc5: case 0xda: case 0xc8: case 0xdc: case 0xde:
                v = (uint64_t)h[0] << 8 | h[1]; break;
            case 0xc6: case 0xdb: case 0xc9: case 0xdd: case 0xdf:
                v = (uint64_t)h[0] << 24 | (uint64_t)h[1] << 16 | (uint64_t)h[2] << 8 | h[3]; break;
            default: break;
            }
            if (c == 0xde || c == 0xdf) n = 2 * v;
            else if (c == 0xdc || c == 0xdd) n = v;
            else if (v) body = v;
        }
        if (avail < hdr || body > avail - hdr) goto out;
        pos += hdr + (size_t)body;

        if (container) {
            if (n > len - pos || depth == HN_DEPTH_MAX) goto out;
            if (n > 0) {
                left[depth++] = n;
                continue;
            }
        }
        /* one element complete: close every container it completes */
        while (depth > 0 && --left[depth - 1] == 0) depth--;
        if (depth == 0) break;
    }
    ok = pos == len;                                    /* no trailing bytes */
out:
    return ok;
}

hn_decoder *hn_decoder_create(void) {
    hn_decoder *d = hn_xcalloc(1, sizeof *d);
    /* Sized so that any UDP datagram that passes the pre-check unpacks
     * within the first chunk, which msgpack_zone_clear keeps: steady-state
     * decoding does not call malloc. */
    if (!msgpack_zone_init(&d->zone, HN_ZONE_CHUNK)) {
        fprintf(stderr, "level=fatal event=out_of_memory bytes=%zu\n", (size_t)HN_ZONE_CHUNK);
        abort();
    }
    return d;
}

void hn_decoder_destroy(hn_decoder *d) {
    if (d == NULL) return;
    msgpack_zone_destroy(&d->zone);
    free(d);
}

int hn_decoder_unpack(hn_decoder *d, const char *buf, size_t len, msgpack_object *out) {
    int rc = HN_ERR;
    size_t off = 0;

    if (len == 0 || !mp_precheck((const unsigned char *)buf, len)) goto out;
    msgpack_zone_clear(&d->zone);
    if (msgpack_unpack(buf, len, &off, &d->zone, out) != MSGPACK_UNPACK_SUCCESS) goto out;
    rc = HN_OK;
out:
    return rc;
}

/* ---- keys ---------------------------------------------------------------- */

enum {
    K_V, K_K, K_S, K_T, K_Q, K_U, K_TI, K_R, K_N, K_D, K_E, K_TS, K_SW, K_SH,
    K_L, K_VID, K_NM, K_EM, K_PH, K_UA, K_IP, K__COUNT
};

enum { KIND_UINT, KIND_STR, KIND_PROPS };

/* The table order is the order in which values are checked, so that the
 * reason of a beacon with several faults does not depend on key order. */
static const struct key {
    const char *name;
    uint8_t     namelen;
    uint8_t     kind;
    uint16_t    max;         /* KIND_STR: bytes; 0 = no length check (t) */
    uint16_t    off;         /* KIND_STR: offset of the hn_str in hn_beacon */
} keys[K__COUNT] = {
#define S(k, n, m, f) [k] = { n, sizeof(n) - 1, KIND_STR, m, offsetof(hn_beacon, f) }
#define U(k, n)       [k] = { n, sizeof(n) - 1, KIND_UINT, 0, 0 }
    U(K_V, "v"),
    S(K_K, "k", 64, k),
    S(K_S, "s", 64, s),
    S(K_T, "t", 0, t),
    U(K_Q, "q"),
    S(K_U, "u", 2048, u),
    S(K_TI, "ti", 512, ti),
    S(K_R, "r", 2048, r),
    S(K_N, "n", 64, n),
    [K_D] = { "d", 1, KIND_PROPS, 0, 0 },
    U(K_E, "e"),
    U(K_TS, "ts"),
    U(K_SW, "sw"),
    U(K_SH, "sh"),
    S(K_L, "l", 35, l),
    S(K_VID, "vid", 64, vid),
    S(K_NM, "nm", 255, nm),
    S(K_EM, "em", 255, em),
    S(K_PH, "ph", 50, ph),
    S(K_UA, "ua", 512, ua),
    S(K_IP, "ip", 64, ip),
#undef S
#undef U
};

static int key_find(const char *p, size_t len) {
    int found = -1;
    for (int i = 0; len <= 3 && i < K__COUNT; i++) {
        if (keys[i].namelen == len && memcmp(keys[i].name, p, len) == 0) {
            found = i;
            break;
        }
    }
    return found;
}

static hn_str *str_at(hn_beacon *b, int k) {
    return (hn_str *)((char *)b + keys[k].off);
}

/* What one wire form found, before validation. */
typedef struct draft {
    hn_beacon *b;
    uint32_t   have;               /* 1u << K_*: numeric key present */
    uint64_t   num[K__COUNT];
    char       msg[128];           /* why, when the reason is not OK */
} draft;

static hn_reason reject(draft *dr, hn_reason r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static hn_reason reject(draft *dr, hn_reason r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dr->msg, sizeof dr->msg, fmt, ap);
    va_end(ap);
    return r;
}

static bool present(const draft *dr, int k) {
    return keys[k].kind == KIND_UINT ? (dr->have >> k) & 1u
                                     : keys[k].kind == KIND_STR && str_at(dr->b, k)->len > 0;
}

/* Adds p to b's properties, replacing an entry with the same key (the last
 * one wins, as for top-level keys). False when b already has the maximum. */
static bool prop_put(hn_beacon *b, const hn_prop *p) {
    bool ok = true;
    int i;
    for (i = 0; i < b->nprops; i++) {
        if (b->props[i].key.len == p->key.len
                && memcmp(b->props[i].key.p, p->key.p, p->key.len) == 0) break;
    }
    if (i < b->nprops) b->props[i] = *p;
    else if (b->nprops < HN_PROPS_MAX) b->props[b->nprops++] = *p;
    else ok = false;
    return ok;
}

/* ---- validation (shared by both wire forms) ------------------------------ */

static bool sid_chars(hn_str s) {
    bool ok = true;
    for (uint32_t i = 0; i < s.len && ok; i++) {
        unsigned char c = (unsigned char)s.p[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
             || c == '_' || c == '-';
    }
    return ok;
}

/* Length, UTF-8, and no NUL: U+0000 is valid UTF-8 but PostgreSQL text
 * cannot store it, and a record the persister cannot insert must never be
 * accepted in the first place. */
static hn_reason check_text(hn_str s, size_t max) {
    hn_reason r = HN_R_OK;
    if (max && s.len > max) r = HN_R_TOO_LONG;
    else if (!hn_utf8_valid(s.p, s.len)) r = HN_R_BAD_UTF8;
    else if (s.len && memchr(s.p, 0, s.len) != NULL) r = HN_R_BAD_VALUE;
    return r;
}

/* The message for a check_text() failure of `what` (a key, a d entry). */
static hn_reason reject_text(draft *dr, hn_reason r, const char *what, hn_str s, size_t max) {
    if (r == HN_R_TOO_LONG)
        return reject(dr, r, "%s: too long (%u > %zu bytes)", what, s.len, max);
    return reject(dr, r, "%s: %s", what, r == HN_R_BAD_UTF8 ? "not valid UTF-8" : "contains NUL");
}

static hn_reason check_props(draft *dr) {
    hn_reason r = HN_R_OK;
    const hn_beacon *b = dr->b;

    for (int i = 0; i < b->nprops; i++) {
        const hn_prop *p = &b->props[i];
        char what[40];
        if (p->key.len == 0) {
            r = reject(dr, HN_R_BAD_VALUE, "key 'd' entry %d: empty key", i);
            goto out;
        }
        if ((r = check_text(p->key, PROP_KEY_MAX)) != HN_R_OK) {
            snprintf(what, sizeof what, "key 'd' entry %d: key", i);
            r = reject_text(dr, r, what, p->key, PROP_KEY_MAX);
            goto out;
        }
        if (p->type == HN_P_STR && (r = check_text(p->v.s, PROP_STR_MAX)) != HN_R_OK) {
            snprintf(what, sizeof what, "key 'd' entry %d: value", i);
            r = reject_text(dr, r, what, p->v.s, PROP_STR_MAX);
            goto out;
        }
        if (p->type == HN_P_FLOAT && !isfinite(p->v.f)) {
            /* JSON, which the API speaks, has no NaN or Infinity */
            r = reject(dr, HN_R_BAD_VALUE, "key 'd' entry %d: float not finite", i);
            goto out;
        }
    }
out:
    return r;
}

/* Judges a draft and completes its beacon (type, numbers, presence bits).
 * Order: version, required keys, each value in table order, props, the
 * requirements of the type. */
static hn_reason validate(draft *dr) {
    static const int required[] = { K_K, K_S, K_T, K_Q };
    hn_beacon *b = dr->b;
    hn_reason r = HN_R_OK;

    if (!present(dr, K_V)) {
        r = reject(dr, HN_R_MISSING_FIELD, "missing required key 'v'");
        goto out;
    }
    if (dr->num[K_V] != HN_PROTO_VERSION) {
        r = reject(dr, HN_R_BAD_VERSION, "key 'v': version %llu not supported (1)",
                   (unsigned long long)dr->num[K_V]);
        goto out;
    }
    for (size_t i = 0; i < HN_ARRAY_LEN(required); i++) {
        if (!present(dr, required[i])) {
            r = reject(dr, HN_R_MISSING_FIELD, "missing required key '%s'", keys[required[i]].name);
            goto out;
        }
    }
    for (int k = 0; k < K__COUNT; k++) {
        if (keys[k].kind != KIND_STR || !present(dr, k)) continue;
        if ((r = check_text(*str_at(b, k), keys[k].max)) != HN_R_OK) {
            char what[16];
            snprintf(what, sizeof what, "key '%s'", keys[k].name);
            r = reject_text(dr, r, what, *str_at(b, k), keys[k].max);
            goto out;
        }
    }
    if (b->s.len < SID_MIN || !sid_chars(b->s)) {
        r = reject(dr, HN_R_BAD_VALUE, "key 's': must be 8..64 of [A-Za-z0-9_-]");
        goto out;
    }
    if ((b->type = hn_btype_parse(b->t)) == HN_T_NONE) {
        r = reject(dr, HN_R_BAD_VALUE, "key 't': unknown type");
        goto out;
    }
    if ((b->q = dr->num[K_Q]) == 0) {
        r = reject(dr, HN_R_BAD_VALUE, "key 'q': must be >= 1");
        goto out;
    }
    for (int k = K_SW; k <= K_SH; k++) {
        if (present(dr, k) && dr->num[k] > SCREEN_MAX) {
            r = reject(dr, HN_R_BAD_VALUE, "key '%s': must be <= %d", keys[k].name, SCREEN_MAX);
            goto out;
        }
    }
    b->fields = 0;
    if (present(dr, K_E))  b->fields |= HN_F_E, b->e = dr->num[K_E];
    if (present(dr, K_TS)) b->fields |= HN_F_TS, b->ts = dr->num[K_TS];
    if (present(dr, K_SW)) b->fields |= HN_F_SW, b->sw = (uint32_t)dr->num[K_SW];
    if (present(dr, K_SH)) b->fields |= HN_F_SH, b->sh = (uint32_t)dr->num[K_SH];

    if ((r = check_props(dr)) != HN_R_OK) goto out;

    if (b->type == HN_T_PV && !present(dr, K_U)) {
        r = reject(dr, HN_R_MISSING_FIELD, "missing required key 'u' (t=pv)");
        goto out;
    }
    if (b->type == HN_T_EV && !present(dr, K_N)) {
        r = reject(dr, HN_R_MISSING_FIELD, "missing required key 'n' (t=ev)");
        goto out;
    }
out:
    return r;
}

/* ---- msgpack form ---------------------------------------------------------- */

hn_reason hn_prop_from_object(hn_prop *p, const msgpack_object *key, const msgpack_object *val) {
    hn_reason r = HN_R_OK;

    if (key->type != MSGPACK_OBJECT_STR) {
        r = HN_R_BAD_TYPE;
        goto out;
    }
    p->key = (hn_str){ key->via.str.ptr, key->via.str.size };
    switch (val->type) {
    case MSGPACK_OBJECT_STR:
        p->type = HN_P_STR;
        p->v.s = (hn_str){ val->via.str.ptr, val->via.str.size };
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (val->via.u64 <= INT64_MAX) p->type = HN_P_INT, p->v.i = (int64_t)val->via.u64;
        else p->type = HN_P_UINT, p->v.u = val->via.u64;
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        p->type = HN_P_INT;
        p->v.i = val->via.i64;
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        p->type = HN_P_FLOAT;
        p->v.f = val->via.f64;
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        p->type = HN_P_BOOL;
        p->v.b = val->via.boolean;
        break;
    default:                            /* nil, bin, ext, nested containers */
        r = HN_R_BAD_TYPE;
        break;
    }
out:
    return r;
}

static hn_reason props_from_object(draft *dr, const msgpack_object *o) {
    hn_reason r = HN_R_OK;
    hn_beacon *b = dr->b;

    b->nprops = 0;
    if (o->type != MSGPACK_OBJECT_MAP) {
        r = reject(dr, HN_R_BAD_TYPE, "key 'd': expected map");
        goto out;
    }
    if (o->via.map.size > HN_PROPS_MAX) {
        r = reject(dr, HN_R_TOO_LONG, "key 'd': %u entries (max %d)", o->via.map.size, HN_PROPS_MAX);
        goto out;
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        hn_prop p;
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (hn_prop_from_object(&p, &kv->key, &kv->val) != HN_R_OK) {
            r = reject(dr, HN_R_BAD_TYPE, "key 'd' entry %u: expected str key and "
                       "str/int/float/bool value", i);
            goto out;
        }
        prop_put(b, &p);                /* cannot be full: size <= max */
    }
out:
    return r;
}

static hn_reason from_map(draft *dr, const msgpack_object_map *m) {
    const msgpack_object *val[K__COUNT] = { 0 };
    hn_reason r = HN_R_OK;

    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object_kv *kv = &m->ptr[i];
        /* non-string keys are not ours: ignored like any unknown key */
        if (kv->key.type != MSGPACK_OBJECT_STR) continue;
        int k = key_find(kv->key.via.str.ptr, kv->key.via.str.size);
        if (k >= 0) val[k] = &kv->val;
    }
    for (int k = 0; k < K__COUNT; k++) {
        const msgpack_object *o = val[k];
        if (o == NULL) continue;
        if (keys[k].kind == KIND_UINT) {
            if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                r = reject(dr, HN_R_BAD_TYPE, "key '%s': expected uint", keys[k].name);
                goto out;
            }
            dr->num[k] = o->via.u64;
            dr->have |= 1u << k;
        } else if (keys[k].kind == KIND_STR) {
            if (o->type != MSGPACK_OBJECT_STR) {
                r = reject(dr, HN_R_BAD_TYPE, "key '%s': expected str", keys[k].name);
                goto out;
            }
            *str_at(dr->b, k) = (hn_str){ o->via.str.ptr, o->via.str.size };
        } else if ((r = props_from_object(dr, o)) != HN_R_OK) {
            goto out;
        }
    }
    r = validate(dr);
out:
    return r;
}

static void draft_init(draft *dr, hn_beacon *b) {
    dr->b = b;
    dr->have = 0;
    memset(dr->num, 0, sizeof dr->num);
    dr->msg[0] = '\0';
    /* props[] is written before it is read (nprops), no need to clear 1 KB */
    memset(b, 0, offsetof(hn_beacon, props));
}

static void batch_reset(hn_batch *out) {
    out->n = 0;
    out->all = HN_R_OK;
    out->err[0] = '\0';
}

static void batch_fail(hn_batch *out, hn_reason r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void batch_fail(hn_batch *out, hn_reason r, const char *fmt, ...) {
    va_list ap;
    out->n = 0;
    out->all = r;
    va_start(ap, fmt);
    vsnprintf(out->err, sizeof out->err, fmt, ap);
    va_end(ap);
}

/* Records beacon i's verdict; the first rejection names itself in err. */
static int batch_set(hn_batch *out, int i, hn_reason r, const draft *dr) {
    out->reason[i] = (uint8_t)r;
    if (r != HN_R_OK && out->err[0] == '\0')
        snprintf(out->err, sizeof out->err, "beacon %d: %s", i, dr->msg);
    return r == HN_R_OK;
}

static int decode_one(hn_batch *out, int i, const msgpack_object *o) {
    draft dr;
    hn_reason r;

    draft_init(&dr, &out->b[i]);
    if (o->type != MSGPACK_OBJECT_MAP) r = reject(&dr, HN_R_NOT_MAP, "not a map");
    else r = from_map(&dr, &o->via.map);
    return batch_set(out, i, r, &dr);
}

int hn_beacon_decode_msgpack(hn_decoder *d, hn_batch *out, const char *buf, size_t len) {
    msgpack_object top;
    int accepted = 0;

    batch_reset(out);
    if (len > HN_HTTP_BODY_MAX) {
        batch_fail(out, HN_R_TOO_LARGE, "input of %zu bytes (max %d)", len, HN_HTTP_BODY_MAX);
        goto out;
    }
    if (hn_decoder_unpack(d, buf, len, &top) != HN_OK) {
        batch_fail(out, HN_R_MALFORMED, "not one well-formed msgpack object");
        goto out;
    }
    if (top.type == MSGPACK_OBJECT_MAP) {
        out->n = 1;
        accepted = decode_one(out, 0, &top);
    } else if (top.type == MSGPACK_OBJECT_ARRAY) {
        if (top.via.array.size == 0 || top.via.array.size > HN_BATCH_MAX) {
            batch_fail(out, HN_R_BATCH_TOO_LARGE, "batch of %u beacons (1..%d)",
                       top.via.array.size, HN_BATCH_MAX);
            goto out;
        }
        out->n = (int)top.via.array.size;
        for (int i = 0; i < out->n; i++) accepted += decode_one(out, i, &top.via.array.ptr[i]);
    } else {
        batch_fail(out, HN_R_NOT_MAP, "top level is neither a map nor an array of maps");
    }
out:
    return accepted;
}

/* ---- query-string form ------------------------------------------------------ */

static int hexval(unsigned char c) {
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent- and '+'-decodes [p, end) into scratch at *used. */
static hn_reason pct_decode(const char *p, const char *end, char *scratch, size_t cap,
                            size_t *used, hn_str *out) {
    hn_reason r = HN_R_OK;
    char *dst = scratch + *used, *start = dst;

    while (p < end) {
        if ((size_t)(dst - scratch) >= cap) {
            r = HN_R_TOO_LARGE;
            goto out;
        }
        if (*p == '%') {
            int hi, lo;
            if (end - p < 3 || (hi = hexval((unsigned char)p[1])) < 0
                    || (lo = hexval((unsigned char)p[2])) < 0) {
                r = HN_R_MALFORMED;
                goto out;
            }
            *dst++ = (char)(hi << 4 | lo);
            p += 3;
        } else {
            *dst++ = *p == '+' ? ' ' : *p;
            p++;
        }
    }
    *out = (hn_str){ start, (uint32_t)(dst - start) };
    *used = (size_t)(dst - scratch);
out:
    return r;
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
 * parsed here, then the draft goes to the same validate() as msgpack. */
static hn_reason from_query(draft *dr, const char *qs, size_t qlen, char *scratch, size_t cap) {
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
            if (r == HN_R_MALFORMED) reject(dr, r, "bad percent-encoding");
            else reject(dr, r, "scratch buffer too small");
            goto out;
        }
        int k = key.len ? key_find(key.p, key.len) : -1;
        if (k >= 0 && keys[k].kind != KIND_PROPS) {
            raw[k] = val;               /* the last one wins, even when empty */
        } else if (key.len >= 2 && key.p[0] == 'd' && key.p[1] == '.') {
            hn_prop pr = { .key = { key.p + 2, key.len - 2 }, .type = HN_P_STR, .v.s = val };
            if (!prop_put(b, &pr)) overflow = true;
        }
        p = amp < end ? amp + 1 : end;
    }

    for (int k = 0; k < K__COUNT; k++) {
        if (keys[k].kind == KIND_STR) {
            *str_at(b, k) = raw[k];
        } else if (keys[k].kind == KIND_UINT && raw[k].len > 0) {
            if (!parse_dec(raw[k], &dr->num[k])) {
                r = reject(dr, HN_R_BAD_VALUE, "key '%s': not an unsigned decimal number", keys[k].name);
                goto out;
            }
            dr->have |= 1u << k;
        }
    }
    if (!present(dr, K_V)) {            /* optional here: a pixel URL is hand-made */
        dr->num[K_V] = HN_PROTO_VERSION;
        dr->have |= 1u << K_V;
    }
    if (overflow) {
        r = reject(dr, HN_R_TOO_LONG, "key 'd': more than %d entries", HN_PROPS_MAX);
        goto out;
    }
    /* an empty value means absent, for d.<name> as for every other key */
    int n = 0;
    for (int i = 0; i < b->nprops; i++) {
        if (b->props[i].v.s.len > 0) b->props[n++] = b->props[i];
    }
    b->nprops = (uint8_t)n;
    r = validate(dr);
out:
    return r;
}

int hn_beacon_decode_query(hn_batch *out, const char *qs, size_t qlen, char *scratch, size_t cap) {
    draft dr;
    hn_reason r;
    int accepted = 0;

    batch_reset(out);
    if (qlen > HN_HTTP_BODY_MAX) {
        batch_fail(out, HN_R_TOO_LARGE, "query of %zu bytes (max %d)", qlen, HN_HTTP_BODY_MAX);
        goto out;
    }
    draft_init(&dr, &out->b[0]);
    r = from_query(&dr, qs, qlen, scratch, cap);
    if (r == HN_R_MALFORMED || r == HN_R_TOO_LARGE) {
        batch_fail(out, r, "%s", dr.msg);
        goto out;
    }
    out->n = 1;
    accepted = batch_set(out, 0, r, &dr);
out:
    return accepted;
}

/* ---- packing ------------------------------------------------------------------ */

static void pack_str(msgpack_packer *pk, hn_str s) {
    msgpack_pack_str(pk, s.len);
    if (s.len) msgpack_pack_str_body(pk, s.p, s.len);
}

static void pack_key(msgpack_packer *pk, const char *k) {
    pack_str(pk, (hn_str){ k, (uint32_t)strlen(k) });
}

void hn_prop_pack(msgpack_packer *pk, const hn_prop *p) {
    pack_str(pk, p->key);
    switch (p->type) {
    case HN_P_STR:   pack_str(pk, p->v.s); break;
    case HN_P_INT:   msgpack_pack_int64(pk, p->v.i); break;
    case HN_P_UINT:  msgpack_pack_uint64(pk, p->v.u); break;
    case HN_P_FLOAT: msgpack_pack_double(pk, p->v.f); break;
    case HN_P_BOOL:  if (p->v.b) msgpack_pack_true(pk); else msgpack_pack_false(pk); break;
    default:         msgpack_pack_nil(pk); break;
    }
}

static uint64_t packed_num(const hn_beacon *b, int k) {
    switch (k) {
    case K_V:  return HN_PROTO_VERSION;
    case K_Q:  return b->q;
    case K_E:  return b->e;
    case K_TS: return b->ts;
    case K_SW: return b->sw;
    default:   return b->sh;
    }
}

static bool packed_num_set(const hn_beacon *b, int k) {
    switch (k) {
    case K_V:  return true;
    case K_Q:  return b->q > 0;
    case K_E:  return b->fields & HN_F_E;
    case K_TS: return b->fields & HN_F_TS;
    case K_SW: return b->fields & HN_F_SW;
    default:   return b->fields & HN_F_SH;
    }
}

/* t as sent, else the name of type, so a sender may set either. */
static hn_str packed_t(const hn_beacon *b) {
    const char *name = hn_btype_name((hn_btype)b->type);
    return b->t.len ? b->t : (hn_str){ name, (uint32_t)strlen(name) };
}

void hn_beacon_pack(msgpack_packer *pk, const hn_beacon *b) {
    size_t n = 0;
    hn_beacon tmp;

    /* a copy with t filled in lets one loop count and write every key */
    memcpy(&tmp, b, offsetof(hn_beacon, props));
    tmp.t = packed_t(b);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) msgpack_pack_map(pk, n);
        for (int k = 0; k < K__COUNT; k++) {
            bool set = keys[k].kind == KIND_UINT ? packed_num_set(&tmp, k)
                     : keys[k].kind == KIND_STR ? str_at(&tmp, k)->len > 0
                     : b->nprops > 0;
            if (!set) continue;
            if (pass == 0) {
                n++;
                continue;
            }
            pack_key(pk, keys[k].name);
            if (keys[k].kind == KIND_UINT) {
                msgpack_pack_uint64(pk, packed_num(&tmp, k));
            } else if (keys[k].kind == KIND_STR) {
                pack_str(pk, *str_at(&tmp, k));
            } else {
                msgpack_pack_map(pk, b->nprops);
                for (int i = 0; i < b->nprops; i++) hn_prop_pack(pk, &b->props[i]);
            }
        }
    }
}
