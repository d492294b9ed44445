/*
 * record.c: the record (docs/PROTOCOL.md, "Record"): a validated, enriched
 * beacon as the collector appends it to the stream, packed as a msgpack map
 * and decoded back by the stream's consumers.
 *
 * One table lists every key in the order it is written. Packing writes them
 * in that order (straight-line, see hn_record_pack); decoding first collects the last occurrence of each known key (unknown
 * keys are skipped: newer collectors may add some), then converts. Records
 * are written by our own collector, so decoding checks types and presence,
 * not the beacon limits: those were enforced when the beacon came in.
 */
#include "proto/record.h"

#include "common/buf.h"
#include "common/json.h"

#include <stdarg.h>
#include <stdio.h>

enum {
    R_RV, R_ID, R_RT, R_W, R_TR,
    R_T, R_K, R_S, R_Q, R_U, R_TI, R_R, R_N, R_D, R_E, R_TS, R_SW, R_SH,
    R_L, R_VID, R_NM, R_EM, R_PH,
    R_IP, R_UA, R_VH, R_CO, R_RG, R_CI, R_BR, R_BV, R_OS, R_OV, R_DV, R_BOT,
    R_X, R_CV,
    R__COUNT
};

enum { RK_UINT, RK_STR, RK_ID, RK_PROPS, RK_BOOL };

static const struct rkey {
    const char *name;
    uint8_t     namelen;
    uint8_t     kind;
    bool        required;
    uint16_t    off;        /* RK_STR: offset of the hn_str in hn_record */
} rkeys[R__COUNT] = {
#define S(k, n, f, req) [k] = { n, sizeof(n) - 1, RK_STR, req, offsetof(hn_record, f) }
#define U(k, n, req)    [k] = { n, sizeof(n) - 1, RK_UINT, req, 0 }
    U(R_RV, "rv", true),
    [R_ID] = { "id", 2, RK_ID, true, 0 },
    U(R_RT, "rt", true),
    U(R_W, "w", true),
    U(R_TR, "tr", true),
    S(R_T, "t", b.t, true),
    S(R_K, "k", b.k, true),
    S(R_S, "s", b.s, true),
    U(R_Q, "q", true),
    S(R_U, "u", b.u, false),
    S(R_TI, "ti", b.ti, false),
    S(R_R, "r", b.r, false),
    S(R_N, "n", b.n, false),
    [R_D] = { "d", 1, RK_PROPS, false, 0 },
    U(R_E, "e", false),
    U(R_TS, "ts", false),
    U(R_SW, "sw", false),
    U(R_SH, "sh", false),
    S(R_L, "l", b.l, false),
    S(R_VID, "vid", b.vid, false),
    S(R_NM, "nm", b.nm, false),
    S(R_EM, "em", b.em, false),
    S(R_PH, "ph", b.ph, false),
    S(R_IP, "ip", ip, false),
    S(R_UA, "ua", ua, false),
    S(R_VH, "vh", visitor, false),
    S(R_CO, "co", country, false),
    S(R_RG, "rg", region, false),
    S(R_CI, "ci", city, false),
    S(R_BR, "br", browser, false),
    S(R_BV, "bv", browser_version, false),
    S(R_OS, "os", os, false),
    S(R_OV, "ov", os_version, false),
    S(R_DV, "dv", device, false),
    [R_BOT] = { "bot", 3, RK_BOOL, false, 0 },
    /* chat (docs/CHAT.md): the text and the conversation ("ci" is the city) */
    S(R_X, "x", b.x, false),
    S(R_CV, "cv", b.ci, false),
#undef S
#undef U
};

static hn_str *rstr_at(hn_record *r, int k) {
    return (hn_str *)((char *)r + rkeys[k].off);
}

/* Stores v; false when it does not fit the field. */
static bool rnum_put(hn_record *r, int k, uint64_t v) {
    bool ok = true;
    switch (k) {
    case R_RV: ok = v == HN_RECORD_VERSION; break;
    case R_RT: r->recv_ts = v; break;
    case R_W:  ok = v <= UINT32_MAX; r->widget_id = (uint32_t)v; break;
    case R_TR: ok = v <= UINT8_MAX; r->transport = (uint8_t)v; break;
    case R_Q:  ok = v > 0; r->b.q = v; break;
    case R_E:  r->b.e = v; r->b.fields |= HN_F_E; break;
    case R_TS: r->b.ts = v; r->b.fields |= HN_F_TS; break;
    case R_SW: ok = v <= UINT32_MAX; r->b.sw = (uint32_t)v; r->b.fields |= HN_F_SW; break;
    default:   ok = v <= UINT32_MAX; r->b.sh = (uint32_t)v; r->b.fields |= HN_F_SH; break;
    }
    return ok;
}

static void pack_str(msgpack_packer *pk, hn_str s) {
    msgpack_pack_str(pk, s.len);
    if (s.len) msgpack_pack_str_body(pk, s.p, s.len);
}

/* A key as one write: fixstr header and name (names are <= 3 bytes). */
static void pack_key(msgpack_packer *pk, int k) {
    char tmp[4] = {(char)(0xa0 | rkeys[k].namelen)};
    memcpy(tmp + 1, rkeys[k].name, rkeys[k].namelen);
    pk->callback(pk->data, tmp, 1u + rkeys[k].namelen);
}

static void kv_str(msgpack_packer *pk, int k, hn_str v) {
    if (v.len == 0) return;
    pack_key(pk, k);
    pack_str(pk, v);
}

static void kv_uint(msgpack_packer *pk, int k, uint64_t v) {
    pack_key(pk, k);
    msgpack_pack_uint64(pk, v);
}

/* Straight-line on purpose: the collector packs every beacon it accepts,
 * and walking the key table (twice: count, then write) cost a third of its
 * per-beacon instructions. The keys and their order are still the table's. */
void hn_record_pack(msgpack_packer *pk, const hn_record *r) {
    const hn_beacon *b = &r->b;
    hn_str t = b->t;
    if (t.len == 0) {
        const char *name = hn_btype_name((hn_btype)b->type);
        t = (hn_str){ name, (uint32_t)strlen(name) };
    }
    uint32_t f = b->fields;
    uint32_t n = 9   /* rv id rt w tr t k s q */
        + (b->u.len > 0) + (b->ti.len > 0) + (b->r.len > 0) + (b->n.len > 0) + (b->nprops > 0)
        + !!(f & HN_F_E) + !!(f & HN_F_TS) + !!(f & HN_F_SW) + !!(f & HN_F_SH)
        + (b->l.len > 0) + (b->vid.len > 0) + (b->nm.len > 0) + (b->em.len > 0) + (b->ph.len > 0)
        + (r->ip.len > 0) + (r->ua.len > 0) + (r->visitor.len > 0) + (r->country.len > 0)
        + (r->region.len > 0) + (r->city.len > 0) + (r->browser.len > 0)
        + (r->browser_version.len > 0) + (r->os.len > 0) + (r->os_version.len > 0)
        + (r->device.len > 0) + r->bot + (b->x.len > 0) + (b->ci.len > 0);

    msgpack_pack_map(pk, n);
    kv_uint(pk, R_RV, HN_RECORD_VERSION);
    pack_key(pk, R_ID);
    msgpack_pack_bin(pk, sizeof r->event_id);
    msgpack_pack_bin_body(pk, r->event_id, sizeof r->event_id);
    kv_uint(pk, R_RT, r->recv_ts);
    kv_uint(pk, R_W, r->widget_id);
    kv_uint(pk, R_TR, r->transport);
    pack_key(pk, R_T);
    pack_str(pk, t);
    pack_key(pk, R_K);
    pack_str(pk, b->k);
    pack_key(pk, R_S);
    pack_str(pk, b->s);
    kv_uint(pk, R_Q, b->q);
    kv_str(pk, R_U, b->u);
    kv_str(pk, R_TI, b->ti);
    kv_str(pk, R_R, b->r);
    kv_str(pk, R_N, b->n);
    if (b->nprops > 0) {
        pack_key(pk, R_D);
        msgpack_pack_map(pk, b->nprops);
        for (int i = 0; i < b->nprops; i++) hn_prop_pack(pk, &b->props[i]);
    }
    if (f & HN_F_E) kv_uint(pk, R_E, b->e);
    if (f & HN_F_TS) kv_uint(pk, R_TS, b->ts);
    if (f & HN_F_SW) kv_uint(pk, R_SW, b->sw);
    if (f & HN_F_SH) kv_uint(pk, R_SH, b->sh);
    kv_str(pk, R_L, b->l);
    kv_str(pk, R_VID, b->vid);
    kv_str(pk, R_NM, b->nm);
    kv_str(pk, R_EM, b->em);
    kv_str(pk, R_PH, b->ph);
    kv_str(pk, R_IP, r->ip);
    kv_str(pk, R_UA, r->ua);
    kv_str(pk, R_VH, r->visitor);
    kv_str(pk, R_CO, r->country);
    kv_str(pk, R_RG, r->region);
    kv_str(pk, R_CI, r->city);
    kv_str(pk, R_BR, r->browser);
    kv_str(pk, R_BV, r->browser_version);
    kv_str(pk, R_OS, r->os);
    kv_str(pk, R_OV, r->os_version);
    kv_str(pk, R_DV, r->device);
    if (r->bot) {
        pack_key(pk, R_BOT);
        msgpack_pack_true(pk);
    }
    kv_str(pk, R_X, b->x);
    kv_str(pk, R_CV, b->ci);
}

static int rkey_find(const char *p, size_t len) {
    int found = -1;
    for (int i = 0; len <= 3 && i < R__COUNT; i++) {
        if (rkeys[i].namelen == len && memcmp(rkeys[i].name, p, len) == 0) {
            found = i;
            break;
        }
    }
    return found;
}

static int fail(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t cap, const char *fmt, ...) {
    va_list ap;
    if (err != NULL && cap > 0) {
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return HN_ERR;
}

static int props_from_object(hn_record *r, const msgpack_object *o, char *err, size_t cap) {
    int rc = HN_ERR;

    if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size > HN_PROPS_MAX) {
        fail(err, cap, "key 'd': expected a map of at most %d entries", HN_PROPS_MAX);
        goto out;
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (hn_prop_from_object(&r->b.props[i], &kv->key, &kv->val) != HN_R_OK) {
            fail(err, cap, "key 'd' entry %u: bad type", i);
            goto out;
        }
    }
    r->b.nprops = (uint8_t)o->via.map.size;
    rc = HN_OK;
out:
    return rc;
}

static const char *const kind_names[] = {
    [RK_UINT] = "uint", [RK_STR] = "str", [RK_ID] = "bin 16", [RK_PROPS] = "map", [RK_BOOL] = "bool",
};

static bool type_ok(int k, const msgpack_object *o) {
    switch (rkeys[k].kind) {
    case RK_UINT:  return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
    case RK_STR:   return o->type == MSGPACK_OBJECT_STR;
    case RK_ID:    return o->type == MSGPACK_OBJECT_BIN && o->via.bin.size == 16;
    case RK_PROPS: return true;        /* props_from_object says more */
    default:       return o->type == MSGPACK_OBJECT_BOOLEAN;
    }
}

int hn_record_from_object(hn_record *out, const msgpack_object *o, char *err, size_t cap) {
    const msgpack_object *val[R__COUNT] = { 0 };
    int rc = HN_ERR;

    memset(out, 0, sizeof *out);
    if (o->type != MSGPACK_OBJECT_MAP) {
        fail(err, cap, "not a map");
        goto out;
    }
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR) continue;
        int k = rkey_find(kv->key.via.str.ptr, kv->key.via.str.size);
        if (k >= 0) val[k] = &kv->val;
    }
    for (int k = 0; k < R__COUNT; k++) {
        const msgpack_object *v = val[k];
        if (v == NULL || (rkeys[k].kind == RK_STR && v->type == MSGPACK_OBJECT_STR
                          && v->via.str.size == 0)) {
            if (rkeys[k].required) {
                fail(err, cap, "missing key '%s'", rkeys[k].name);
                goto out;
            }
            continue;
        }
        if (!type_ok(k, v)) {
            fail(err, cap, "key '%s': expected %s", rkeys[k].name, kind_names[rkeys[k].kind]);
            goto out;
        }
        switch (rkeys[k].kind) {
        case RK_UINT:
            if (!rnum_put(out, k, v->via.u64)) {
                fail(err, cap, "key '%s': value %llu out of range", rkeys[k].name,
                     (unsigned long long)v->via.u64);
                goto out;
            }
            break;
        case RK_STR:
            *rstr_at(out, k) = (hn_str){ v->via.str.ptr, v->via.str.size };
            break;
        case RK_ID:
            memcpy(out->event_id, v->via.bin.ptr, sizeof out->event_id);
            break;
        case RK_PROPS:
            if (props_from_object(out, v, err, cap) != HN_OK) goto out;
            break;
        default:
            out->bot = v->via.boolean;
            break;
        }
    }
    /* an unknown t is kept as HN_T_NONE: a newer collector may know more
     * types than this consumer, and t itself stays available */
    out->b.type = (uint8_t)hn_btype_parse(out->b.t);
    rc = HN_OK;
out:
    return rc;
}

int hn_record_decode_batch(hn_decoder *d, const char *buf, size_t len,
                           hn_record_fn fn, void *ctx, char *err, size_t cap) {
    msgpack_object top;
    hn_record rec;
    char why[128];
    int rc = HN_ERR;

    if (err != NULL && cap > 0) err[0] = '\0';
    if (hn_decoder_unpack(d, buf, len, &top) != HN_OK) {
        fail(err, cap, "not one well-formed msgpack object");
        goto out;
    }
    if (top.type != MSGPACK_OBJECT_ARRAY || top.via.array.size == 0) {
        fail(err, cap, "not a non-empty array of records");
        goto out;
    }
    for (uint32_t i = 0; i < top.via.array.size; i++) {
        if (hn_record_from_object(&rec, &top.via.array.ptr[i], why, sizeof why) != HN_OK) {
            fail(err, cap, "record %u: %s", i, why);
            goto out;
        }
        if (fn(&rec, ctx) != HN_OK) {
            fail(err, cap, "record %u: the callback failed", i);
            goto out;
        }
    }
    rc = HN_OK;
out:
    return rc;
}

void hn_event_id_format(const uint8_t id[16], char out[37]) {
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) *p++ = '-';
        *p++ = hex[id[i] >> 4];
        *p++ = hex[id[i] & 0x0f];
    }
    *p = '\0';
}

void hn_props_json(hn_buf *out, const hn_prop *props, int n) {
    hn_buf_append(out, "{", 1);
    for (int i = 0; i < n; i++) {
        const hn_prop *p = &props[i];
        if (i) hn_buf_append(out, ",", 1);
        hn_json_str(out, p->key.p, p->key.len);
        hn_buf_append(out, ":", 1);
        switch (p->type) {
        case HN_P_STR: hn_json_str(out, p->v.s.p, p->v.s.len); break;
        case HN_P_INT: hn_buf_printf(out, "%lld", (long long)p->v.i); break;
        case HN_P_UINT: hn_buf_printf(out, "%llu", (unsigned long long)p->v.u); break;
        case HN_P_FLOAT:
            if (p->v.f != p->v.f || p->v.f > 1.7976931348623157e308 ||
                p->v.f < -1.7976931348623157e308)
                hn_buf_append(out, "null", 4);
            else
                hn_buf_printf(out, "%.17g", p->v.f);
            break;
        case HN_P_BOOL: hn_buf_append(out, p->v.b ? "true" : "false", p->v.b ? 4 : 5); break;
        default: hn_buf_append(out, "null", 4); break;
        }
    }
    hn_buf_append(out, "}", 1);
}
