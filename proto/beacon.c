/*
 * beacon.c: beacon protocol v1 (docs/PROTOCOL.md): the msgpack form decoded
 * into hn_beacon, the validation both wire forms share, one beacon packed
 * back, and the small tables around them.
 *
 *   msgpack ─► precheck ─► msgpack_unpack (zone) ─► from_map ──┐   (mpcheck.c)
 *                                                             ├─► draft ─► validate() ─► reason
 *   query string ─► split on & and = , %-decode into scratch ──┘   (query.c)
 *
 * Both forms first collect the last occurrence of every known key (so
 * "repeated key: last wins" falls out of it), convert the values into a
 * draft (strings straight into the beacon, numbers as uint64 with presence
 * bits), and then one validate() (hn_draft_validate, beacon_internal.h)
 * judges the draft, so the two forms cannot drift apart. Pure: no I/O, no
 * global state; msgpack strings are never copied (query strings are decoded
 * into the caller's scratch).
 */
#include "proto/beacon.h"
#include "proto/beacon_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define SID_MIN       8
#define PROP_KEY_MAX  64
#define PROP_STR_MAX  256
#define SCREEN_MAX    65535

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
    [HN_R_CHAT_RATE_LIMITED] = "chat_rate_limited",
    [HN_R_BANNED] = "banned",
};

const char *hn_reason_name(hn_reason r) {
    if ((unsigned)r >= HN_R__COUNT || reason_names[r] == NULL) return "unknown";
    return reason_names[r];
}

static const char *const btype_names[HN_T__COUNT] = {
    [HN_T_NONE] = "",
    [HN_T_PV] = "pv", [HN_T_HB] = "hb", [HN_T_EV] = "ev", [HN_T_HIDE] = "hide",
    [HN_T_SHOW] = "show", [HN_T_END] = "end", [HN_T_ID] = "id", [HN_T_MSG] = "msg",
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

/* ---- keys ---------------------------------------------------------------- */

/* The table order is the order in which values are checked, so that the
 * reason of a beacon with several faults does not depend on key order. */
const hn_key hn_keys[K__COUNT] = {
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
    U(K_WD, "wd"),
    /* 2000 characters of up to 4 bytes; the characters are counted in
     * hn_chat_text_check */
    S(K_X, "x", 4 * HN_CHAT_TEXT_MAX, x),
    S(K_CI, "ci", 36, ci),
#undef S
#undef U
};

/* A switch rather than a walk of hn_keys: it runs for every key of every
 * beacon. Keys are 1..3 bytes; anything else is unknown (ignored). */
int hn_key_find(const char *p, size_t len) {
    char a = len > 0 ? p[0] : 0, b = len > 1 ? p[1] : 0;
    switch (len) {
    case 1:
        switch (a) {
        case 'v': return K_V;
        case 'k': return K_K;
        case 's': return K_S;
        case 't': return K_T;
        case 'q': return K_Q;
        case 'u': return K_U;
        case 'r': return K_R;
        case 'n': return K_N;
        case 'd': return K_D;
        case 'e': return K_E;
        case 'l': return K_L;
        case 'x': return K_X;
        }
        return -1;
    case 2:
        if (a == 't' && b == 'i') return K_TI;
        if (a == 't' && b == 's') return K_TS;
        if (a == 's' && b == 'w') return K_SW;
        if (a == 's' && b == 'h') return K_SH;
        if (a == 'n' && b == 'm') return K_NM;
        if (a == 'e' && b == 'm') return K_EM;
        if (a == 'p' && b == 'h') return K_PH;
        if (a == 'u' && b == 'a') return K_UA;
        if (a == 'i' && b == 'p') return K_IP;
        if (a == 'w' && b == 'd') return K_WD;
        if (a == 'c' && b == 'i') return K_CI;
        return -1;
    case 3:
        return (a == 'v' && b == 'i' && p[2] == 'd') ? K_VID : -1;
    }
    return -1;
}

/* ---- drafts --------------------------------------------------------------- */

void hn_draft_init(hn_draft *dr, hn_beacon *b) {
    dr->b = b;
    dr->have = 0;
    memset(dr->num, 0, sizeof dr->num);
    dr->msg[0] = '\0';
    /* props[] is written before it is read (nprops), no need to clear 1 KB */
    memset(b, 0, offsetof(hn_beacon, props));
}

hn_reason hn_draft_reject(hn_draft *dr, hn_reason r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dr->msg, sizeof dr->msg, fmt, ap);
    va_end(ap);
    return r;
}

bool hn_prop_put(hn_beacon *b, const hn_prop *p) {
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
static hn_reason reject_text(hn_draft *dr, hn_reason r, const char *what, hn_str s, size_t max) {
    if (r == HN_R_TOO_LONG)
        return hn_draft_reject(dr, r, "%s: too long (%u > %zu bytes)", what, s.len, max);
    return hn_draft_reject(dr, r, "%s: %s", what,
                           r == HN_R_BAD_UTF8 ? "not valid UTF-8" : "contains NUL");
}

static hn_reason check_props(hn_draft *dr) {
    hn_reason r = HN_R_OK;
    const hn_beacon *b = dr->b;

    for (int i = 0; i < b->nprops; i++) {
        const hn_prop *p = &b->props[i];
        char what[40];
        if (p->key.len == 0) {
            r = hn_draft_reject(dr, HN_R_BAD_VALUE, "key 'd' entry %d: empty key", i);
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
            r = hn_draft_reject(dr, HN_R_BAD_VALUE, "key 'd' entry %d: float not finite", i);
            goto out;
        }
    }
out:
    return r;
}

hn_reason hn_chat_text_check(const char *p, size_t len, const char **why) {
    hn_reason r = HN_R_OK;
    size_t chars = 0;
    *why = NULL;
    if (len == 0) {
        *why = "empty";
        r = HN_R_BAD_VALUE;
        goto out;
    }
    if (!hn_utf8_valid(p, len)) {
        *why = "not valid UTF-8";
        r = HN_R_BAD_UTF8;
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x20 && c != '\n' && c != '\t') {
            *why = "control character";
            r = HN_R_BAD_VALUE;
            goto out;
        }
        chars += (c & 0xc0) != 0x80;
    }
    if (chars > HN_CHAT_TEXT_MAX) {
        *why = "too long";
        r = HN_R_BAD_VALUE;
    }
out:
    return r;
}

bool hn_uuid_text_ok(hn_str s) {
    bool ok = s.len == 36;
    for (uint32_t i = 0; i < s.len && ok; i++) {
        char c = s.p[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) ok = c == '-';
        else ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    }
    return ok;
}

/* The chat keys (docs/CHAT.md §3): x required on msg; ci a UUID; both
 * dropped on the types that do not carry them. */
static hn_reason check_chat(hn_draft *dr) {
    hn_beacon *b = dr->b;
    hn_reason r = HN_R_OK;
    if (b->type != HN_T_MSG) b->x = (hn_str){NULL, 0};
    if (b->type != HN_T_MSG && b->type != HN_T_EV) b->ci = (hn_str){NULL, 0};
    if (b->ci.len && !hn_uuid_text_ok(b->ci)) {
        r = hn_draft_reject(dr, HN_R_BAD_VALUE, "key 'ci': not a UUID");
        goto out;
    }
    if (b->type == HN_T_MSG) {
        const char *why;
        if (b->x.len == 0) {
            r = hn_draft_reject(dr, HN_R_MISSING_FIELD, "missing required key 'x' (t=msg)");
            goto out;
        }
        if ((r = hn_chat_text_check(b->x.p, b->x.len, &why)) != HN_R_OK)
            r = hn_draft_reject(dr, r, "key 'x': %s", why);
    }
out:
    return r;
}

/* Order: version, required keys, each value in table order, props, the
 * requirements of the type. */
hn_reason hn_draft_validate(hn_draft *dr) {
    static const int required[] = { K_K, K_S, K_T, K_Q };
    hn_beacon *b = dr->b;
    hn_reason r = HN_R_OK;

    if (!draft_present(dr, K_V)) {
        r = hn_draft_reject(dr, HN_R_MISSING_FIELD, "missing required key 'v'");
        goto out;
    }
    if (dr->num[K_V] != HN_PROTO_VERSION) {
        r = hn_draft_reject(dr, HN_R_BAD_VERSION, "key 'v': version %llu not supported (1)",
                            (unsigned long long)dr->num[K_V]);
        goto out;
    }
    for (size_t i = 0; i < HN_ARRAY_LEN(required); i++) {
        if (!draft_present(dr, required[i])) {
            r = hn_draft_reject(dr, HN_R_MISSING_FIELD, "missing required key '%s'",
                                hn_keys[required[i]].name);
            goto out;
        }
    }
    for (int k = 0; k < K__COUNT; k++) {
        if (hn_keys[k].kind != KIND_STR || !draft_present(dr, k)) continue;
        if ((r = check_text(*str_at(b, k), hn_keys[k].max)) != HN_R_OK) {
            char what[16];
            snprintf(what, sizeof what, "key '%s'", hn_keys[k].name);
            r = reject_text(dr, r, what, *str_at(b, k), hn_keys[k].max);
            goto out;
        }
    }
    if (b->s.len < SID_MIN || !sid_chars(b->s)) {
        r = hn_draft_reject(dr, HN_R_BAD_VALUE, "key 's': must be 8..64 of [A-Za-z0-9_-]");
        goto out;
    }
    if ((b->type = hn_btype_parse(b->t)) == HN_T_NONE) {
        r = hn_draft_reject(dr, HN_R_BAD_VALUE, "key 't': unknown type");
        goto out;
    }
    if ((b->q = dr->num[K_Q]) == 0) {
        r = hn_draft_reject(dr, HN_R_BAD_VALUE, "key 'q': must be >= 1");
        goto out;
    }
    for (int k = K_SW; k <= K_SH; k++) {
        if (draft_present(dr, k) && dr->num[k] > SCREEN_MAX) {
            r = hn_draft_reject(dr, HN_R_BAD_VALUE, "key '%s': must be <= %d",
                                hn_keys[k].name, SCREEN_MAX);
            goto out;
        }
    }
    b->fields = 0;
    if (draft_present(dr, K_E))  b->fields |= HN_F_E, b->e = dr->num[K_E];
    if (draft_present(dr, K_TS)) b->fields |= HN_F_TS, b->ts = dr->num[K_TS];
    if (draft_present(dr, K_SW)) b->fields |= HN_F_SW, b->sw = (uint32_t)dr->num[K_SW];
    if (draft_present(dr, K_SH)) b->fields |= HN_F_SH, b->sh = (uint32_t)dr->num[K_SH];
    if (draft_present(dr, K_WD) && dr->num[K_WD]) b->fields |= HN_F_WD;

    if ((r = check_props(dr)) != HN_R_OK) goto out;

    if (b->type == HN_T_PV && !draft_present(dr, K_U)) {
        r = hn_draft_reject(dr, HN_R_MISSING_FIELD, "missing required key 'u' (t=pv)");
        goto out;
    }
    if (b->type == HN_T_EV && !draft_present(dr, K_N)) {
        r = hn_draft_reject(dr, HN_R_MISSING_FIELD, "missing required key 'n' (t=ev)");
        goto out;
    }
    r = check_chat(dr);
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

static hn_reason props_from_object(hn_draft *dr, const msgpack_object *o) {
    hn_reason r = HN_R_OK;
    hn_beacon *b = dr->b;

    b->nprops = 0;
    if (o->type != MSGPACK_OBJECT_MAP) {
        r = hn_draft_reject(dr, HN_R_BAD_TYPE, "key 'd': expected map");
        goto out;
    }
    if (o->via.map.size > HN_PROPS_MAX) {
        r = hn_draft_reject(dr, HN_R_TOO_LONG, "key 'd': %u entries (max %d)",
                            o->via.map.size, HN_PROPS_MAX);
        goto out;
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        hn_prop p;
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (hn_prop_from_object(&p, &kv->key, &kv->val) != HN_R_OK) {
            r = hn_draft_reject(dr, HN_R_BAD_TYPE, "key 'd' entry %u: expected str key and "
                       "str/int/float/bool value", i);
            goto out;
        }
        hn_prop_put(b, &p);                /* cannot be full: size <= max */
    }
out:
    return r;
}

static hn_reason from_map(hn_draft *dr, const msgpack_object_map *m) {
    const msgpack_object *val[K__COUNT] = { 0 };
    hn_reason r = HN_R_OK;

    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object_kv *kv = &m->ptr[i];
        /* non-string keys are not ours: ignored like any unknown key */
        if (kv->key.type != MSGPACK_OBJECT_STR) continue;
        int k = hn_key_find(kv->key.via.str.ptr, kv->key.via.str.size);
        if (k >= 0) val[k] = &kv->val;
    }
    for (int k = 0; k < K__COUNT; k++) {
        const msgpack_object *o = val[k];
        if (o == NULL) continue;
        if (k == K_WD && o->type == MSGPACK_OBJECT_BOOLEAN) {
            dr->num[k] = o->via.boolean;         /* wd is a flag: true/false or 1/0 */
            dr->have |= 1u << k;
        } else if (hn_keys[k].kind == KIND_UINT) {
            if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
                r = hn_draft_reject(dr, HN_R_BAD_TYPE, "key '%s': expected uint", hn_keys[k].name);
                goto out;
            }
            dr->num[k] = o->via.u64;
            dr->have |= 1u << k;
        } else if (hn_keys[k].kind == KIND_STR) {
            if (o->type != MSGPACK_OBJECT_STR) {
                r = hn_draft_reject(dr, HN_R_BAD_TYPE, "key '%s': expected str", hn_keys[k].name);
                goto out;
            }
            *str_at(dr->b, k) = (hn_str){ o->via.str.ptr, o->via.str.size };
        } else if ((r = props_from_object(dr, o)) != HN_R_OK) {
            goto out;
        }
    }
    r = hn_draft_validate(dr);
out:
    return r;
}

/* ---- verdicts ------------------------------------------------------------- */

void hn_batch_reset(hn_batch *out) {
    out->n = 0;
    out->all = HN_R_OK;
    out->err[0] = '\0';
}

void hn_batch_fail(hn_batch *out, hn_reason r, const char *fmt, ...) {
    va_list ap;
    out->n = 0;
    out->all = r;
    va_start(ap, fmt);
    vsnprintf(out->err, sizeof out->err, fmt, ap);
    va_end(ap);
}

/* The first rejection names itself in err. */
int hn_batch_set(hn_batch *out, int i, hn_reason r, const hn_draft *dr) {
    out->reason[i] = (uint8_t)r;
    if (r != HN_R_OK && out->err[0] == '\0')
        snprintf(out->err, sizeof out->err, "beacon %d: %s", i, dr->msg);
    return r == HN_R_OK;
}

static int decode_one(hn_batch *out, int i, const msgpack_object *o) {
    hn_draft dr;
    hn_reason r;

    hn_draft_init(&dr, &out->b[i]);
    if (o->type != MSGPACK_OBJECT_MAP) r = hn_draft_reject(&dr, HN_R_NOT_MAP, "not a map");
    else r = from_map(&dr, &o->via.map);
    return hn_batch_set(out, i, r, &dr);
}

int hn_beacon_decode_msgpack(hn_decoder *d, hn_batch *out, const char *buf, size_t len) {
    msgpack_object top;
    int accepted = 0;

    hn_batch_reset(out);
    if (len > HN_HTTP_BODY_MAX) {
        hn_batch_fail(out, HN_R_TOO_LARGE, "input of %zu bytes (max %d)", len, HN_HTTP_BODY_MAX);
        goto out;
    }
    if (hn_decoder_unpack(d, buf, len, &top) != HN_OK) {
        hn_batch_fail(out, HN_R_MALFORMED, "not one well-formed msgpack object");
        goto out;
    }
    if (top.type == MSGPACK_OBJECT_MAP) {
        out->n = 1;
        accepted = decode_one(out, 0, &top);
    } else if (top.type == MSGPACK_OBJECT_ARRAY) {
        if (top.via.array.size == 0 || top.via.array.size > HN_BATCH_MAX) {
            hn_batch_fail(out, HN_R_BATCH_TOO_LARGE, "batch of %u beacons (1..%d)",
                          top.via.array.size, HN_BATCH_MAX);
            goto out;
        }
        out->n = (int)top.via.array.size;
        for (int i = 0; i < out->n; i++) accepted += decode_one(out, i, &top.via.array.ptr[i]);
    } else {
        hn_batch_fail(out, HN_R_NOT_MAP, "top level is neither a map nor an array of maps");
    }
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
    case K_WD: return 1;
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
    case K_WD: return b->fields & HN_F_WD;
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
            bool set = hn_keys[k].kind == KIND_UINT ? packed_num_set(&tmp, k)
                     : hn_keys[k].kind == KIND_STR ? str_at(&tmp, k)->len > 0
                     : b->nprops > 0;
            if (!set) continue;
            if (pass == 0) {
                n++;
                continue;
            }
            pack_key(pk, hn_keys[k].name);
            if (hn_keys[k].kind == KIND_UINT) {
                msgpack_pack_uint64(pk, packed_num(&tmp, k));
            } else if (hn_keys[k].kind == KIND_STR) {
                pack_str(pk, *str_at(&tmp, k));
            } else {
                msgpack_pack_map(pk, b->nprops);
                for (int i = 0; i < b->nprops; i++) hn_prop_pack(pk, &b->props[i]);
            }
        }
    }
}
