/*
 * test_record.c: the stream record (proto/record.c): pack then decode gives
 * the same fields back (with and without optional fields, every prop type),
 * missing or mistyped keys are rejected, unknown keys ignored, and the batch
 * walk stops where it must.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "tests/unit/proto_asserts.h"

#include <stdio.h>
#include <stdlib.h>

#include "proto/record.h"

#define S(x) HN_STR_LIT(x)

static hn_decoder *dec;

typedef struct buf {
    msgpack_sbuffer sb;
    msgpack_packer  pk;
} buf;

static void buf_init(buf *b) {
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
}

static void buf_free(buf *b) {
    msgpack_sbuffer_destroy(&b->sb);
}

static const uint8_t id1[16] = {
    0x01, 0x89, 0x0a, 0x5d, 0xac, 0x96, 0x77, 0x4b, 0xbc, 0xce, 0xb3, 0x02, 0x09, 0x9a, 0x80, 0x57,
};

static void full_record(hn_record *r) {
    memset(r, 0, sizeof *r);
    memcpy(r->event_id, id1, 16);
    r->recv_ts = 1700000000123456u;
    r->widget_id = 4000000000u;
    r->transport = HN_TR_HTTP;
    hn_beacon *b = &r->b;
    b->type = HN_T_EV;
    b->t = S("ev");
    b->k = S("wk_live_1");
    b->s = S("sess_abcdef");
    b->q = UINT64_MAX;
    b->u = S("https://example.com/a?b=c");
    b->ti = S("T\xc3\xadtulo");
    b->r = S("https://ref.example/");
    b->n = S("chat_opened");
    b->fields = HN_F_E | HN_F_TS | HN_F_SW | HN_F_SH;
    b->e = 0;
    b->ts = 1700000000000u;
    b->sw = 1920;
    b->sh = 1080;
    b->l = S("pt-BR");
    b->vid = S("v_1");
    b->nm = S("Ana");
    b->em = S("ana@example.com");
    b->ph = S("+55 11 5555");
    b->props[0] = (hn_prop){ .key = S("plan"), .type = HN_P_STR, .v.s = S("pro") };
    b->props[1] = (hn_prop){ .key = S("seats"), .type = HN_P_INT, .v.i = 3 };
    b->props[2] = (hn_prop){ .key = S("neg"), .type = HN_P_INT, .v.i = INT64_MIN };
    b->props[3] = (hn_prop){ .key = S("big"), .type = HN_P_UINT, .v.u = UINT64_MAX };
    b->props[4] = (hn_prop){ .key = S("f"), .type = HN_P_FLOAT, .v.f = -2.5e-9 };
    b->props[5] = (hn_prop){ .key = S("yes"), .type = HN_P_BOOL, .v.b = true };
    b->props[6] = (hn_prop){ .key = S("no"), .type = HN_P_BOOL, .v.b = false };
    b->props[7] = (hn_prop){ .key = S("empty"), .type = HN_P_STR, .v.s = S("") };
    b->nprops = 8;
    r->ip = S("203.0.113.0");
    r->ua = S("Mozilla/5.0 (X11; Linux x86_64)");
    r->visitor = S("9f86d081884c7d65");
    r->country = S("BR");
    r->region = S("SP");
    r->city = S("S\xc3\xa3o Paulo");
    r->browser = S("Firefox");
    r->browser_version = S("120.0");
    r->os = S("Linux");
    r->os_version = S("6.1");
    r->device = S("desktop");
    r->bot = true;
}

static void minimal_record(hn_record *r) {
    memset(r, 0, sizeof *r);
    memcpy(r->event_id, id1, 16);
    r->recv_ts = 1;
    r->widget_id = 0;
    r->transport = HN_TR_UDP;
    r->b.type = HN_T_HB;
    r->b.t = S("hb");
    r->b.k = S("k");
    r->b.s = S("12345678");
    r->b.q = 1;
}

static void assert_record_same(const hn_record *x, const hn_record *y) {
    assert_memory_equal(x->event_id, y->event_id, 16);
    assert_true(x->recv_ts == y->recv_ts);
    assert_int_equal(x->widget_id, y->widget_id);
    assert_int_equal(x->transport, y->transport);
    assert_beacon_same(&x->b, &y->b, false);
    assert_str_same(x->ip, y->ip);
    assert_str_same(x->ua, y->ua);
    assert_str_same(x->visitor, y->visitor);
    assert_str_same(x->country, y->country);
    assert_str_same(x->region, y->region);
    assert_str_same(x->city, y->city);
    assert_str_same(x->browser, y->browser);
    assert_str_same(x->browser_version, y->browser_version);
    assert_str_same(x->os, y->os);
    assert_str_same(x->os_version, y->os_version);
    assert_str_same(x->device, y->device);
    assert_int_equal(x->bot, y->bot);
    assert_str_same(x->b.x, y->b.x);
    assert_str_same(x->b.ci, y->b.ci);
}

/* Collects what hn_record_decode_batch hands out, comparing as it goes. */
typedef struct seen {
    const hn_record *want;     /* want[i] for the i-th record */
    int              n;
    int              stop_at;  /* return HN_ERR for this record (-1: never) */
} seen;

static int check_cb(const hn_record *r, void *ctx) {
    seen *s = ctx;
    int rc = HN_OK;
    if (s->want) assert_record_same(&s->want[s->n], r);
    if (s->n == s->stop_at) rc = HN_ERR;
    s->n++;
    return rc;
}

static void roundtrip(const hn_record *recs, int n) {
    buf b;
    char err[128];
    seen s = { recs, 0, -1 };
    buf_init(&b);
    msgpack_pack_array(&b.pk, (size_t)n);
    for (int i = 0; i < n; i++) hn_record_pack(&b.pk, &recs[i]);
    int rc = hn_record_decode_batch(dec, b.sb.data, b.sb.size, check_cb, &s, err, sizeof err);
    if (rc != HN_OK) fail_msg("decode failed: %s", err);
    assert_int_equal(s.n, n);
    assert_string_equal(err, "");
    buf_free(&b);
}

static void test_roundtrip_full(void **state) {
    static hn_record r;
    (void)state;
    full_record(&r);
    roundtrip(&r, 1);
}

/* A chat message carries its text and conversation ("x", "cv"). */
static void test_roundtrip_msg(void **state) {
    static hn_record r;
    (void)state;
    minimal_record(&r);
    r.b.type = HN_T_MSG;
    r.b.t = HN_STR_LIT("msg");
    r.b.x = HN_STR_LIT("<img src=x onerror=alert(1)> \xe2\x80\xae\xf0\x9f\x98\x80");
    r.b.ci = HN_STR_LIT("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    roundtrip(&r, 1);
}

static void test_roundtrip_minimal(void **state) {
    static hn_record r;
    (void)state;
    minimal_record(&r);
    roundtrip(&r, 1);
}

static void test_roundtrip_many(void **state) {
    static hn_record r[3];
    (void)state;
    full_record(&r[0]);
    minimal_record(&r[1]);
    full_record(&r[2]);
    r[2].bot = false;
    r[2].country = (hn_str){ NULL, 0 };
    r[2].b.fields = HN_F_TS;                          /* unflagged numbers are not sent */
    r[2].b.sw = r[2].b.sh = 0;
    r[2].b.nprops = 0;
    r[2].event_id[15] ^= 0xff;
    r[2].transport = HN_TR_PIXEL;
    roundtrip(r, 3);
}

/* A type left as a number only is packed by name. */
static void test_t_from_type(void **state) {
    static hn_record r, want;
    (void)state;
    minimal_record(&r);
    r.b.t = (hn_str){ NULL, 0 };
    r.b.type = HN_T_END;
    want = r;
    want.b.t = S("end");
    roundtrip(&want, 1);       /* sanity: the expected form round-trips */
    buf b;
    seen s = { &want, 0, -1 };
    buf_init(&b);
    msgpack_pack_array(&b.pk, 1);
    hn_record_pack(&b.pk, &r);
    assert_int_equal(hn_record_decode_batch(dec, b.sb.data, b.sb.size, check_cb, &s, NULL, 0), HN_OK);
    assert_int_equal(s.n, 1);
    buf_free(&b);
}

/* ---- from_object on edited objects ------------------------------------------------ */

/* Unpacks a packed full record into a heap copy of its map that tests may
 * edit (the zone's own array is left alone). */
typedef struct editable {
    buf                b;
    msgpack_zone       zone;
    msgpack_object     obj;
    msgpack_object_kv *kv;
} editable;

static void editable_init(editable *e, const hn_record *r) {
    size_t off = 0;
    buf_init(&e->b);
    hn_record_pack(&e->b.pk, r);
    msgpack_zone_init(&e->zone, 4096);
    assert_int_equal(msgpack_unpack(e->b.sb.data, e->b.sb.size, &off, &e->zone, &e->obj),
                     MSGPACK_UNPACK_SUCCESS);
    uint32_t n = e->obj.via.map.size;
    e->kv = calloc(n + 1, sizeof *e->kv);                 /* room for one added key */
    memcpy(e->kv, e->obj.via.map.ptr, n * sizeof *e->kv);
    e->obj.via.map.ptr = e->kv;
}

static void editable_free(editable *e) {
    free(e->kv);
    msgpack_zone_destroy(&e->zone);
    buf_free(&e->b);
}

static msgpack_object_kv *find_kv(editable *e, const char *key) {
    for (uint32_t i = 0; i < e->obj.via.map.size; i++) {
        msgpack_object_kv *kv = &e->kv[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(key)
                && memcmp(kv->key.via.str.ptr, key, kv->key.via.str.size) == 0)
            return kv;
    }
    return NULL;
}

static void remove_key(editable *e, const char *key) {
    msgpack_object_kv *kv = find_kv(e, key);
    assert_non_null(kv);
    *kv = e->kv[--e->obj.via.map.size];
}

static void test_missing_required(void **state) {
    static const char *const required[] = { "rv", "id", "rt", "w", "tr", "t", "k", "s", "q" };
    static hn_record r, out;
    (void)state;
    full_record(&r);
    for (size_t i = 0; i < HN_ARRAY_LEN(required); i++) {
        editable e;
        char err[128], want[64];
        editable_init(&e, &r);
        assert_int_equal(hn_record_from_object(&out, &e.obj, err, sizeof err), HN_OK);
        remove_key(&e, required[i]);
        assert_int_equal(hn_record_from_object(&out, &e.obj, err, sizeof err), HN_ERR);
        snprintf(want, sizeof want, "missing key '%s'", required[i]);
        assert_string_equal(err, want);
        editable_free(&e);
    }
    /* optional keys may all go */
    static const char *const optional[] = {
        "u", "ti", "r", "n", "d", "e", "ts", "sw", "sh", "l", "vid", "nm", "em", "ph",
        "ip", "ua", "vh", "co", "rg", "ci", "br", "bv", "os", "ov", "dv", "bot",
    };
    editable e;
    editable_init(&e, &r);
    for (size_t i = 0; i < HN_ARRAY_LEN(optional); i++) remove_key(&e, optional[i]);
    assert_int_equal(e.obj.via.map.size, HN_ARRAY_LEN(required));
    assert_int_equal(hn_record_from_object(&out, &e.obj, NULL, 0), HN_OK);
    assert_int_equal(out.b.fields, 0);
    assert_int_equal(out.b.nprops, 0);
    assert_false(out.bot);
    editable_free(&e);
}

typedef struct badcase {
    const char *key;
    int         kind;       /* what to put there */
    uint64_t    n;
    const char *err;
} badcase;

enum { B_STR, B_UINT, B_NEG, B_BIN, B_NIL, B_MAP };

static void set_val(msgpack_object *o, int kind, uint64_t n) {
    static const char bytes[32] = "0123456789abcdef0123456789abcdef";
    memset(o, 0, sizeof *o);
    switch (kind) {
    case B_STR:  o->type = MSGPACK_OBJECT_STR; o->via.str.ptr = bytes; o->via.str.size = (uint32_t)n; break;
    case B_UINT: o->type = MSGPACK_OBJECT_POSITIVE_INTEGER; o->via.u64 = n; break;
    case B_NEG:  o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER; o->via.i64 = -(int64_t)n; break;
    case B_BIN:  o->type = MSGPACK_OBJECT_BIN; o->via.bin.ptr = bytes; o->via.bin.size = (uint32_t)n; break;
    case B_NIL:  o->type = MSGPACK_OBJECT_NIL; break;
    default:     o->type = MSGPACK_OBJECT_MAP; o->via.map.size = 0; break;
    }
}

static void test_bad_values(void **state) {
    static const badcase rows[] = {
        { "rv", B_UINT, 2, "key 'rv': value 2 out of range" },
        { "rv", B_STR, 1, "key 'rv': expected uint" },
        { "id", B_BIN, 15, "key 'id': expected bin 16" },
        { "id", B_BIN, 17, "key 'id': expected bin 16" },
        { "id", B_STR, 16, "key 'id': expected bin 16" },
        { "rt", B_NEG, 1, "key 'rt': expected uint" },
        { "w", B_UINT, UINT64_C(4294967296), "key 'w': value 4294967296 out of range" },
        { "tr", B_UINT, 256, "key 'tr': value 256 out of range" },
        { "t", B_UINT, 1, "key 't': expected str" },
        { "k", B_BIN, 3, "key 'k': expected str" },
        { "k", B_STR, 0, "missing key 'k'" },
        { "q", B_UINT, 0, "key 'q': value 0 out of range" },
        { "u", B_NIL, 0, "key 'u': expected str" },
        { "d", B_STR, 1, "key 'd': expected a map of at most 32 entries" },
        { "sw", B_UINT, UINT64_C(4294967296), "key 'sw': value 4294967296 out of range" },
        { "bot", B_UINT, 1, "key 'bot': expected bool" },
        { "co", B_MAP, 0, "key 'co': expected str" },
    };
    static hn_record r, out;
    (void)state;
    full_record(&r);
    for (size_t i = 0; i < HN_ARRAY_LEN(rows); i++) {
        editable e;
        char err[128];
        editable_init(&e, &r);
        msgpack_object_kv *kv = find_kv(&e, rows[i].key);
        assert_non_null(kv);
        set_val(&kv->val, rows[i].kind, rows[i].n);
        assert_int_equal(hn_record_from_object(&out, &e.obj, err, sizeof err), HN_ERR);
        assert_string_equal(err, rows[i].err);
        editable_free(&e);
    }
}

/* Unknown keys of any type are skipped; an unknown t is kept as HN_T_NONE. */
static void test_forward_compat(void **state) {
    static hn_record r, out;
    editable e;
    (void)state;
    full_record(&r);
    editable_init(&e, &r);
    msgpack_object_kv *kv = &e.kv[e.obj.via.map.size++];
    kv->key.type = MSGPACK_OBJECT_STR;
    kv->key.via.str.ptr = "zz_new";
    kv->key.via.str.size = 6;
    set_val(&kv->val, B_MAP, 0);
    set_val(&find_kv(&e, "t")->val, B_STR, 5);          /* "01234" */
    assert_int_equal(hn_record_from_object(&out, &e.obj, NULL, 0), HN_OK);
    assert_int_equal(out.b.type, HN_T_NONE);
    assert_true(hn_str_eq(out.b.t, "01234", 5));
    editable_free(&e);
}

/* Empty enrichment strings and bot=false are not written at all. */
static void test_sparse_pack(void **state) {
    static hn_record r;
    editable e;
    (void)state;
    minimal_record(&r);
    r.country = S("");
    editable_init(&e, &r);
    assert_int_equal(e.obj.via.map.size, 9);            /* rv id rt w tr t k s q */
    assert_null(find_kv(&e, "co"));
    assert_null(find_kv(&e, "bot"));
    assert_null(find_kv(&e, "d"));
    assert_null(find_kv(&e, "e"));
    editable_free(&e);
    full_record(&r);
    editable_init(&e, &r);
    assert_int_equal(e.obj.via.map.size, 35);           /* every key */
    assert_int_equal(find_kv(&e, "id")->val.type, MSGPACK_OBJECT_BIN);
    assert_int_equal(find_kv(&e, "bot")->val.type, MSGPACK_OBJECT_BOOLEAN);
    editable_free(&e);
}

/* ---- the batch walk -------------------------------------------------------------- */

static void test_batch_errors(void **state) {
    static hn_record r[3];
    char err[128];
    buf b;
    seen s = { NULL, 0, -1 };
    (void)state;
    full_record(&r[0]);
    full_record(&r[1]);
    r[1].b.k = (hn_str){ NULL, 0 };                   /* packed as "", read as missing */
    full_record(&r[2]);

    buf_init(&b);
    msgpack_pack_array(&b.pk, 3);
    for (int i = 0; i < 3; i++) hn_record_pack(&b.pk, &r[i]);
    assert_int_equal(hn_record_decode_batch(dec, b.sb.data, b.sb.size, check_cb, &s, err, sizeof err), HN_ERR);
    assert_int_equal(s.n, 1);
    assert_string_equal(err, "record 1: missing key 'k'");
    buf_free(&b);

    /* the callback can stop the walk */
    r[1].b.k = S("k2");
    buf_init(&b);
    msgpack_pack_array(&b.pk, 3);
    for (int i = 0; i < 3; i++) hn_record_pack(&b.pk, &r[i]);
    s = (seen){ NULL, 0, 1 };
    assert_int_equal(hn_record_decode_batch(dec, b.sb.data, b.sb.size, check_cb, &s, err, sizeof err), HN_ERR);
    assert_int_equal(s.n, 2);
    assert_string_equal(err, "record 1: the callback failed");

    /* truncated anywhere: malformed, and no callback */
    for (size_t len = 0; len < b.sb.size; len++) {
        char *copy = malloc(len ? len : 1);
        memcpy(copy, b.sb.data, len);
        s = (seen){ NULL, 0, -1 };
        assert_int_equal(hn_record_decode_batch(dec, copy, len, check_cb, &s, err, sizeof err), HN_ERR);
        assert_int_equal(s.n, 0);
        free(copy);
    }
    buf_free(&b);

    /* not an array, an empty array, a record that is not a map, garbage */
    static const struct { const char *p; size_t len; const char *err; } rows[] = {
        { "\x80", 1, "not a non-empty array of records" },
        { "\x90", 1, "not a non-empty array of records" },
        { "\x91\x01", 2, "record 0: not a map" },
        { "\xdd\xff\xff\xff\xff", 5, "not one well-formed msgpack object" },
        { "\x91\x80\x00", 3, "not one well-formed msgpack object" },
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(rows); i++) {
        s = (seen){ NULL, 0, -1 };
        assert_int_equal(hn_record_decode_batch(dec, rows[i].p, rows[i].len, check_cb, &s, err, sizeof err), HN_ERR);
        assert_string_equal(err, rows[i].err);
        assert_int_equal(s.n, 0);
    }
}

static void test_event_id_format(void **state) {
    char out[37];
    static const uint8_t zero[16] = { 0 };
    static const uint8_t ff[16] = {
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    };
    (void)state;
    hn_event_id_format(id1, out);
    assert_string_equal(out, "01890a5d-ac96-774b-bcce-b302099a8057");
    hn_event_id_format(zero, out);
    assert_string_equal(out, "00000000-0000-0000-0000-000000000000");
    hn_event_id_format(ff, out);
    assert_string_equal(out, "ffffffff-ffff-ffff-ffff-ffffffffffff");
}

static int setup(void **state) {
    (void)state;
    dec = hn_decoder_create();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    hn_decoder_destroy(dec);
    return 0;
}

int main(void) {
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_full),
        cmocka_unit_test(test_roundtrip_minimal),
        cmocka_unit_test(test_roundtrip_msg),
        cmocka_unit_test(test_roundtrip_many),
        cmocka_unit_test(test_t_from_type),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_forward_compat),
        cmocka_unit_test(test_sparse_pack),
        cmocka_unit_test(test_batch_errors),
        cmocka_unit_test(test_event_id_format),
    };
    return cmocka_run_group_tests_name("record", tests, setup, teardown) ? 1 : 0;
}
