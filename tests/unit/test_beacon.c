/*
 * test_beacon.c: the msgpack beacon decoder (proto/beacon.c), from a table of
 * inputs built with msgpack_packer: a valid base beacon with some keys
 * replaced, removed or added. Every table row is its own cmocka test, so a
 * failure names the row. Hand-typed bytes only for garbage and edge cases.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "tests/unit/proto_asserts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "proto/beacon.h"

/* ---- building inputs ------------------------------------------------------- */

enum vk {
    V_DEL = 1,   /* remove the base key */
    V_STR,       /* s, NUL-terminated */
    V_BYTES,     /* s, n bytes (for invalid UTF-8 and NUL) */
    V_REP,       /* n bytes of 'a' */
    V_UINT, V_NEG, V_NIL, V_TRUE, V_FLOAT, V_NAN, V_BIN, V_ARR, V_MAP, V_EXT,
    V_NEST,      /* n nested one-element arrays around a 0 */
    V_PROPS,     /* d: n entries "kNN": "x" */
    V_PKEY,      /* d: one entry, key of n bytes */
    V_PVAL,      /* d: one entry "x": value of n bytes */
    V_PTYPE,     /* d: one entry "x": value of kind sub */
    V_PINTKEY,   /* d: one entry with an int key */
    V_PBADKEY,   /* d: one entry, key s (n bytes) */
    V_PBADVAL,   /* d: one entry "x": value s (n bytes) */
    V_PDUP,      /* d: {"x": "1", "x": "2"} */
};

typedef struct val {
    int         kind;
    const char *s;
    uint64_t    n;
    int         sub;
} val;

typedef struct ov {
    const char *key;     /* "#int": an int key instead of a string */
    val         v;
} ov;

#define DEL         { V_DEL, NULL, 0, 0 }
#define STR(x)      { V_STR, x, 0, 0 }
#define BYTES(x)    { V_BYTES, x, sizeof(x) - 1, 0 }
#define REP(k)      { V_REP, NULL, k, 0 }
#define UINT(x)     { V_UINT, NULL, x, 0 }
#define NEG(x)      { V_NEG, NULL, x, 0 }
#define K(kind)     { kind, NULL, 0, 0 }
#define NEST(k)     { V_NEST, NULL, k, 0 }
#define PROPS(k)    { V_PROPS, NULL, k, 0 }
#define PKEY(k)     { V_PKEY, NULL, k, 0 }
#define PVAL(k)     { V_PVAL, NULL, k, 0 }
#define PTYPE(t)    { V_PTYPE, NULL, 0, t }
#define PBADKEY(x)  { V_PBADKEY, x, sizeof(x) - 1, 0 }
#define PBADVAL(x)  { V_PBADVAL, x, sizeof(x) - 1, 0 }

static const ov base[] = {
    { "v", UINT(1) },
    { "k", STR("wk_test") },
    { "s", STR("sess_0001") },
    { "t", STR("pv") },
    { "q", UINT(1) },
    { "u", STR("https://example.com/") },
};

static char big[70000];

static void pack_cstr(msgpack_packer *pk, const char *s, size_t n) {
    msgpack_pack_str(pk, n);
    if (n) msgpack_pack_str_body(pk, s, n);
}

static void pack_val(msgpack_packer *pk, const val *v) {
    switch (v->kind) {
    case V_STR:   pack_cstr(pk, v->s, strlen(v->s)); break;
    case V_BYTES: pack_cstr(pk, v->s, v->n); break;
    case V_REP:   pack_cstr(pk, big, v->n); break;
    case V_UINT:  msgpack_pack_uint64(pk, v->n); break;
    case V_NEG:   msgpack_pack_int64(pk, -(int64_t)v->n); break;
    case V_NIL:   msgpack_pack_nil(pk); break;
    case V_TRUE:  msgpack_pack_true(pk); break;
    case V_FLOAT: msgpack_pack_double(pk, 1.5); break;
    case V_NAN:   msgpack_pack_double(pk, NAN); break;
    case V_BIN:   msgpack_pack_bin(pk, 3); msgpack_pack_bin_body(pk, "abc", 3); break;
    case V_ARR:   msgpack_pack_array(pk, 1); msgpack_pack_uint64(pk, 1); break;
    case V_MAP:   msgpack_pack_map(pk, 1); pack_cstr(pk, "a", 1); msgpack_pack_uint64(pk, 1); break;
    case V_EXT:   msgpack_pack_ext(pk, 2, 7); msgpack_pack_ext_body(pk, "xy", 2); break;
    case V_NEST:
        for (uint64_t i = 0; i < v->n; i++) msgpack_pack_array(pk, 1);
        msgpack_pack_uint64(pk, 0);
        break;
    case V_PROPS:
        msgpack_pack_map(pk, v->n);
        for (uint64_t i = 0; i < v->n; i++) {
            char k[8];
            snprintf(k, sizeof k, "k%02u", (unsigned)i);
            pack_cstr(pk, k, strlen(k));
            pack_cstr(pk, "x", 1);
        }
        break;
    case V_PKEY:
        msgpack_pack_map(pk, 1);
        pack_cstr(pk, big, v->n);
        pack_cstr(pk, "x", 1);
        break;
    case V_PVAL:
        msgpack_pack_map(pk, 1);
        pack_cstr(pk, "x", 1);
        pack_cstr(pk, big, v->n);
        break;
    case V_PTYPE: {
        val sub = { v->sub, NULL, 7, 0 };
        msgpack_pack_map(pk, 1);
        pack_cstr(pk, "x", 1);
        pack_val(pk, &sub);
        break;
    }
    case V_PINTKEY:
        msgpack_pack_map(pk, 1);
        msgpack_pack_uint64(pk, 1);
        pack_cstr(pk, "x", 1);
        break;
    case V_PBADKEY:
        msgpack_pack_map(pk, 1);
        pack_cstr(pk, v->s, v->n);
        pack_cstr(pk, "x", 1);
        break;
    case V_PBADVAL:
        msgpack_pack_map(pk, 1);
        pack_cstr(pk, "x", 1);
        pack_cstr(pk, v->s, v->n);
        break;
    case V_PDUP:
        msgpack_pack_map(pk, 2);
        pack_cstr(pk, "x", 1); pack_cstr(pk, "1", 1);
        pack_cstr(pk, "x", 1); pack_cstr(pk, "2", 1);
        break;
    default:
        fail_msg("bad test value kind %d", v->kind);
    }
}

static void pack_key(msgpack_packer *pk, const char *k) {
    if (strcmp(k, "#int") == 0) msgpack_pack_uint64(pk, 42);
    else pack_cstr(pk, k, strlen(k));
}

static const val *find_ov(const ov *ovs, size_t n, const char *key) {
    const val *v = NULL;
    for (size_t i = 0; i < n; i++) {
        if (ovs[i].key && strcmp(ovs[i].key, key) == 0) v = &ovs[i].v;
    }
    return v;
}

/* The base beacon with ovs applied: base keys replaced (or removed) in
 * place, other keys appended in order (so a key twice means a duplicate). */
static void pack_beacon(msgpack_packer *pk, const ov *ovs, size_t n) {
    size_t count = 0;
    for (size_t i = 0; i < HN_ARRAY_LEN(base); i++) {
        const val *v = find_ov(ovs, n, base[i].key);
        if (v == NULL || v->kind != V_DEL) count++;
    }
    for (size_t i = 0; i < n; i++) {
        if (ovs[i].key && ovs[i].v.kind != V_DEL && find_ov(base, HN_ARRAY_LEN(base), ovs[i].key) == NULL)
            count++;
    }
    msgpack_pack_map(pk, count);
    for (size_t i = 0; i < HN_ARRAY_LEN(base); i++) {
        const val *v = find_ov(ovs, n, base[i].key);
        if (v != NULL && v->kind == V_DEL) continue;
        pack_key(pk, base[i].key);
        pack_val(pk, v ? v : &base[i].v);
    }
    for (size_t i = 0; i < n; i++) {
        if (ovs[i].key && ovs[i].v.kind != V_DEL && find_ov(base, HN_ARRAY_LEN(base), ovs[i].key) == NULL) {
            pack_key(pk, ovs[i].key);
            pack_val(pk, &ovs[i].v);
        }
    }
}

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

static hn_decoder *dec;
static hn_batch batch;

static int decode(const char *p, size_t len) {
    return hn_beacon_decode_msgpack(dec, &batch, p, len);
}

/* ---- the table ---------------------------------------------------------------- */

typedef struct dcase {
    const char *name;
    ov          ov[4];
    hn_reason   want;
} dcase;

#define OK   HN_R_OK
#define MISS HN_R_MISSING_FIELD
#define TYPE HN_R_BAD_TYPE
#define LONG HN_R_TOO_LONG
#define VAL  HN_R_BAD_VALUE
#define UTF8 HN_R_BAD_UTF8

static const dcase cases[] = {
    { "base beacon", { { 0 } }, OK },

    { "v missing", { { "v", DEL } }, MISS },
    { "v = 2", { { "v", UINT(2) } }, HN_R_BAD_VERSION },
    { "v = 0", { { "v", UINT(0) } }, HN_R_BAD_VERSION },
    { "v as str", { { "v", STR("1") } }, TYPE },
    { "v negative", { { "v", NEG(1) } }, TYPE },
    { "v float", { { "v", K(V_FLOAT) } }, TYPE },
    { "v nil", { { "v", K(V_NIL) } }, TYPE },

    { "k missing", { { "k", DEL } }, MISS },
    { "k empty", { { "k", STR("") } }, MISS },
    { "k 1 byte", { { "k", REP(1) } }, OK },
    { "k 64", { { "k", REP(64) } }, OK },
    { "k 65", { { "k", REP(65) } }, LONG },
    { "k uint", { { "k", UINT(5) } }, TYPE },
    { "k bin", { { "k", K(V_BIN) } }, TYPE },
    { "k nil", { { "k", K(V_NIL) } }, TYPE },

    { "s missing", { { "s", DEL } }, MISS },
    { "s empty", { { "s", STR("") } }, MISS },
    { "s 7", { { "s", REP(7) } }, VAL },
    { "s 8", { { "s", REP(8) } }, OK },
    { "s 64", { { "s", REP(64) } }, OK },
    { "s 65", { { "s", REP(65) } }, LONG },
    { "s all allowed chars", { { "s", STR("AZaz09_-") } }, OK },
    { "s with dot", { { "s", STR("abcd.efgh") } }, VAL },
    { "s with space", { { "s", STR("abcdefg ") } }, VAL },
    { "s with non-ascii", { { "s", STR("abcdefg\xc3\xa9") } }, VAL },
    { "s uint", { { "s", UINT(12345678) } }, TYPE },
    { "s bin", { { "s", K(V_BIN) } }, TYPE },

    { "t missing", { { "t", DEL } }, MISS },
    { "t unknown", { { "t", STR("xx") } }, VAL },
    { "t upper case", { { "t", STR("PV") } }, VAL },
    { "t uint", { { "t", UINT(1) } }, TYPE },
    { "t hb without u", { { "t", STR("hb") }, { "u", DEL } }, OK },
    { "t hide", { { "t", STR("hide") } }, OK },
    { "t show", { { "t", STR("show") } }, OK },
    { "t end", { { "t", STR("end") } }, OK },
    { "t id with nm em ph", { { "t", STR("id") }, { "nm", STR("Ann") }, { "em", STR("a@b.c") }, { "ph", STR("+1 555") } }, OK },
    { "t ev without n", { { "t", STR("ev") } }, MISS },
    { "t ev with n", { { "t", STR("ev") }, { "n", STR("chat_opened") } }, OK },
    { "t ev with empty n", { { "t", STR("ev") }, { "n", STR("") } }, MISS },
    { "t pv without u", { { "u", DEL } }, MISS },
    { "t pv with empty u", { { "u", STR("") } }, MISS },

    { "q missing", { { "q", DEL } }, MISS },
    { "q 0", { { "q", UINT(0) } }, VAL },
    { "q max uint64", { { "q", UINT(UINT64_MAX) } }, OK },
    { "q negative", { { "q", NEG(1) } }, TYPE },
    { "q str", { { "q", STR("1") } }, TYPE },
    { "q float", { { "q", K(V_FLOAT) } }, TYPE },

    { "u 2048", { { "u", REP(2048) } }, OK },
    { "u 2049", { { "u", REP(2049) } }, LONG },
    { "u uint", { { "u", UINT(1) } }, TYPE },
    { "u bin", { { "u", K(V_BIN) } }, TYPE },
    { "ti 512", { { "ti", REP(512) } }, OK },
    { "ti 513", { { "ti", REP(513) } }, LONG },
    { "ti uint", { { "ti", UINT(1) } }, TYPE },
    { "ti empty is absent", { { "ti", STR("") } }, OK },
    { "r 2048", { { "r", REP(2048) } }, OK },
    { "r 2049", { { "r", REP(2049) } }, LONG },
    { "r bin", { { "r", K(V_BIN) } }, TYPE },
    { "n 64", { { "t", STR("ev") }, { "n", REP(64) } }, OK },
    { "n 65", { { "t", STR("ev") }, { "n", REP(65) } }, LONG },
    { "n uint", { { "n", UINT(1) } }, TYPE },
    { "l 35", { { "l", REP(35) } }, OK },
    { "l 36", { { "l", REP(36) } }, LONG },
    { "l map", { { "l", K(V_MAP) } }, TYPE },
    { "vid 64", { { "vid", REP(64) } }, OK },
    { "vid 65", { { "vid", REP(65) } }, LONG },
    { "vid uint", { { "vid", UINT(1) } }, TYPE },
    { "nm 255", { { "nm", REP(255) } }, OK },
    { "nm 256", { { "nm", REP(256) } }, LONG },
    { "nm array", { { "nm", K(V_ARR) } }, TYPE },
    { "em 255", { { "em", REP(255) } }, OK },
    { "em 256", { { "em", REP(256) } }, LONG },
    { "em true", { { "em", K(V_TRUE) } }, TYPE },
    { "ph 50", { { "ph", REP(50) } }, OK },
    { "ph 51", { { "ph", REP(51) } }, LONG },
    { "ph uint", { { "ph", UINT(5550100) } }, TYPE },
    { "ua 512", { { "ua", REP(512) } }, OK },
    { "ua 513", { { "ua", REP(513) } }, LONG },
    { "ua bin", { { "ua", K(V_BIN) } }, TYPE },
    { "ip 64", { { "ip", REP(64) } }, OK },
    { "ip 65", { { "ip", REP(65) } }, LONG },
    { "ip uint", { { "ip", UINT(0x7f000001) } }, TYPE },

    { "e uint", { { "e", UINT(1500) } }, OK },
    { "e negative", { { "e", NEG(1) } }, TYPE },
    { "e str", { { "e", STR("1") } }, TYPE },
    { "ts uint", { { "ts", UINT(1700000000000) } }, OK },
    { "ts float", { { "ts", K(V_FLOAT) } }, TYPE },
    { "sw 65535", { { "sw", UINT(65535) } }, OK },
    { "sw 65536", { { "sw", UINT(65536) } }, VAL },
    { "sw negative", { { "sw", NEG(1) } }, TYPE },
    { "sh 65535", { { "sh", UINT(65535) } }, OK },
    { "sh 65536", { { "sh", UINT(65536) } }, VAL },
    { "sh huge", { { "sh", UINT(UINT64_MAX) } }, VAL },
    { "sh str", { { "sh", STR("1") } }, TYPE },

    { "d empty map", { { "d", PROPS(0) } }, OK },
    { "d 32 entries", { { "d", PROPS(32) } }, OK },
    { "d 33 entries", { { "d", PROPS(33) } }, LONG },
    { "d key 64", { { "d", PKEY(64) } }, OK },
    { "d key 65", { { "d", PKEY(65) } }, LONG },
    { "d key empty", { { "d", PKEY(0) } }, VAL },
    { "d value 256", { { "d", PVAL(256) } }, OK },
    { "d value 257", { { "d", PVAL(257) } }, LONG },
    { "d value empty str", { { "d", PVAL(0) } }, OK },
    { "d value uint", { { "d", PTYPE(V_UINT) } }, OK },
    { "d value negative", { { "d", PTYPE(V_NEG) } }, OK },
    { "d value float", { { "d", PTYPE(V_FLOAT) } }, OK },
    { "d value bool", { { "d", PTYPE(V_TRUE) } }, OK },
    { "d value nil", { { "d", PTYPE(V_NIL) } }, TYPE },
    { "d value array", { { "d", PTYPE(V_ARR) } }, TYPE },
    { "d value map", { { "d", PTYPE(V_MAP) } }, TYPE },
    { "d value bin", { { "d", PTYPE(V_BIN) } }, TYPE },
    { "d value ext", { { "d", PTYPE(V_EXT) } }, TYPE },
    { "d value NaN", { { "d", PTYPE(V_NAN) } }, VAL },
    { "d int key", { { "d", K(V_PINTKEY) } }, TYPE },
    { "d key bad utf8", { { "d", PBADKEY("a\xff") } }, UTF8 },
    { "d value bad utf8", { { "d", PBADVAL("a\xc3") } }, UTF8 },
    { "d value with NUL", { { "d", PBADVAL("a\0b") } }, VAL },
    { "d duplicate key", { { "d", K(V_PDUP) } }, OK },
    { "d as str", { { "d", STR("x") } }, TYPE },
    { "d as array", { { "d", K(V_ARR) } }, TYPE },

    { "k overlong utf8", { { "k", BYTES("\xc0\xaf") } }, UTF8 },
    { "u surrogate", { { "u", BYTES("https://x/\xed\xa0\x80") } }, UTF8 },
    { "ti truncated sequence", { { "ti", BYTES("ab\xe2\x82") } }, UTF8 },
    { "r above U+10FFFF", { { "r", BYTES("\xf4\x90\x80\x80") } }, UTF8 },
    { "n lone continuation", { { "t", STR("ev") }, { "n", BYTES("\x80") } }, UTF8 },
    { "l 0xff", { { "l", BYTES("\xff") } }, UTF8 },
    { "nm multibyte ok", { { "nm", STR("Zo\xc3\xab \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80") } }, OK },
    { "ti with NUL", { { "ti", BYTES("a\0b") } }, VAL },
    { "t bad utf8", { { "t", BYTES("\xff") } }, UTF8 },

    { "unknown key str", { { "zz", STR("x") } }, OK },
    { "unknown key nil", { { "zz", K(V_NIL) } }, OK },
    { "unknown key bin", { { "zz", K(V_BIN) } }, OK },
    { "unknown key ext", { { "zz", K(V_EXT) } }, OK },
    { "unknown key nested map", { { "zz", K(V_MAP) } }, OK },
    { "unknown long key", { { "a_longer_key", UINT(1) } }, OK },
    { "int key ignored", { { "#int", STR("x") } }, OK },
    { "nesting depth 8", { { "zz", NEST(7) } }, OK },
    { "nesting depth 9", { { "zz", NEST(8) } }, HN_R_MALFORMED },

    /* chat (docs/CHAT.md §3) */
    { "msg", { { "t", STR("msg") }, { "x", STR("hi \xc3\xa9\n\tthere") } }, OK },
    { "msg with ci", { { "t", STR("msg") }, { "x", STR("a") },
                       { "ci", STR("0190A1B2-c3d4-7e5f-8a9b-0c1d2e3f4a5b") } }, OK },
    { "msg x missing", { { "t", STR("msg") } }, MISS },
    { "msg x empty", { { "t", STR("msg") }, { "x", STR("") } }, MISS },
    { "msg x 2000", { { "t", STR("msg") }, { "x", REP(2000) } }, OK },
    { "msg x 2001", { { "t", STR("msg") }, { "x", REP(2001) } }, VAL },
    { "msg x 8001 bytes", { { "t", STR("msg") }, { "x", REP(8001) } }, LONG },
    { "msg x control", { { "t", STR("msg") }, { "x", STR("a\rb") } }, VAL },
    { "msg x bad utf8", { { "t", STR("msg") }, { "x", BYTES("a\xc3") } }, UTF8 },
    { "msg x uint", { { "t", STR("msg") }, { "x", UINT(1) } }, TYPE },
    { "msg ci not uuid", { { "t", STR("msg") }, { "x", STR("a") }, { "ci", STR("c1") } }, VAL },
    { "ev ci bad", { { "t", STR("ev") }, { "n", STR("invite_shown") }, { "ci", REP(36) } }, VAL },
    { "pv ci ignored", { { "ci", STR("junk") }, { "x", STR("\x01") } }, OK },

    { "duplicate key last wins (ok)", { { "e", UINT(1) }, { "e", UINT(2) } }, OK },
    { "duplicate key last wins (bad)", { { "e", UINT(2) }, { "e", NEG(1) } }, TYPE },
    { "duplicate key bad then good", { { "e", NEG(2) }, { "e", UINT(1) } }, OK },
};

static void test_case(void **state) {
    const dcase *c = *state;
    size_t n = 0;
    buf b;

    while (n < HN_ARRAY_LEN(c->ov) && c->ov[n].key) n++;
    buf_init(&b);
    pack_beacon(&b.pk, c->ov, n);
    int accepted = decode(b.sb.data, b.sb.size);
    if (c->want == HN_R_MALFORMED) {
        assert_int_equal(batch.n, 0);
        assert_string_equal(hn_reason_name(batch.all), "malformed");
    } else {
        assert_int_equal(batch.n, 1);
        assert_int_equal(batch.all, HN_R_OK);
        if (batch.reason[0] != c->want)
            fail_msg("%s: got %s, want %s (%s)", c->name, hn_reason_name(batch.reason[0]),
                     hn_reason_name(c->want), batch.err);
        assert_int_equal(accepted, c->want == HN_R_OK);
        if (c->want == HN_R_OK) assert_string_equal(batch.err, "");
        else assert_memory_equal(batch.err, "beacon 0: ", 10);
    }
    buf_free(&b);
}

/* ---- whole inputs ------------------------------------------------------------ */

static void expect_whole(const char *p, size_t len, hn_reason want) {
    int accepted = decode(p, len);
    assert_int_equal(accepted, 0);
    assert_int_equal(batch.n, 0);
    if (batch.all != want)
        fail_msg("got %s, want %s", hn_reason_name(batch.all), hn_reason_name(want));
    assert_true(batch.err[0] != '\0');
}

static void test_garbage(void **state) {
    static const struct { const char *p; size_t len; } in[] = {
#define B(x) { x, sizeof(x) - 1 }
        B(""), B("\xc1"), B("\x81"), B("\x81\xa1v"), B("\xa5" "ab"), B("hello"), B("{\"v\":1}"),
        B("\x91\xc1"), B("\xc7\x05\x01"), B("\xd9"), B("\xda\x00"), B("\xcb\x00\x00"),
        B("\xdc\x00"), B("\xde\x00\x01"), B("\x82\xa1v\x01"), B("\x80\x80"), B("\xd8\x01"),
        B("\x92\x80"), B("\x00\x00"),
#undef B
    };
    (void)state;
    for (size_t i = 0; i < HN_ARRAY_LEN(in); i++) expect_whole(in[i].p, in[i].len, HN_R_MALFORMED);
}

static void test_truncated(void **state) {
    buf b;
    const ov ovs[] = { { "ti", STR("A title") }, { "d", PROPS(3) }, { "sw", UINT(1920) } };
    (void)state;
    buf_init(&b);
    pack_beacon(&b.pk, ovs, HN_ARRAY_LEN(ovs));
    assert_int_equal(decode(b.sb.data, b.sb.size), 1);
    for (size_t len = 0; len < b.sb.size; len++) {
        char *copy = malloc(len ? len : 1);    /* exact size: ASan sees over-reads */
        memcpy(copy, b.sb.data, len);
        expect_whole(copy, len, HN_R_MALFORMED);
        free(copy);
    }
    buf_free(&b);
}

static void test_trailing(void **state) {
    buf b;
    (void)state;
    buf_init(&b);
    pack_beacon(&b.pk, NULL, 0);
    msgpack_pack_nil(&b.pk);
    expect_whole(b.sb.data, b.sb.size, HN_R_MALFORMED);
    buf_free(&b);

    buf_init(&b);
    pack_beacon(&b.pk, NULL, 0);
    pack_beacon(&b.pk, NULL, 0);
    expect_whole(b.sb.data, b.sb.size, HN_R_MALFORMED);
    buf_free(&b);
}

static void test_not_map(void **state) {
    buf b;
    (void)state;
    buf_init(&b);
    msgpack_pack_uint64(&b.pk, 5);
    expect_whole(b.sb.data, b.sb.size, HN_R_NOT_MAP);
    buf_free(&b);
    buf_init(&b);
    pack_cstr(&b.pk, "v=1", 3);
    expect_whole(b.sb.data, b.sb.size, HN_R_NOT_MAP);
    buf_free(&b);
}

static void test_too_large(void **state) {
    buf b;
    const size_t target = HN_HTTP_BODY_MAX;
    (void)state;
    /* garbage, so that parsing would say malformed: the size check comes first */
    char *p = malloc(target + 1);
    memset(p, 0xc1, target + 1);
    expect_whole(p, target + 1, HN_R_TOO_LARGE);
    free(p);

    /* exactly at the limit is decoded: pad an unknown key to hit 65536 bytes */
    buf_init(&b);
    ov pad[] = { { "zz", REP(0) } };
    pack_beacon(&b.pk, pad, 1);
    size_t overhead = b.sb.size;            /* with "zz": "" (fixstr) */
    buf_free(&b);
    pad[0].v.n = target - overhead - 2;    /* str16 header is 3 bytes, fixstr 1 */
    buf_init(&b);
    pack_beacon(&b.pk, pad, 1);
    assert_int_equal(b.sb.size, target);
    assert_int_equal(decode(b.sb.data, b.sb.size), 1);
    buf_free(&b);
}

static void pack_batch(buf *b, size_t n) {
    msgpack_pack_array(&b->pk, n);
    for (size_t i = 0; i < n; i++) pack_beacon(&b->pk, NULL, 0);
}

static void test_batch_sizes(void **state) {
    static const struct { size_t n; int accepted; hn_reason all; } rows[] = {
        { 0, 0, HN_R_BATCH_TOO_LARGE }, { 1, 1, HN_R_OK }, { 2, 2, HN_R_OK },
        { 32, 32, HN_R_OK }, { 33, 0, HN_R_BATCH_TOO_LARGE }, { 1000, 0, HN_R_BATCH_TOO_LARGE },
    };
    (void)state;
    for (size_t i = 0; i < HN_ARRAY_LEN(rows); i++) {
        buf b;
        buf_init(&b);
        pack_batch(&b, rows[i].n);
        assert_int_equal(decode(b.sb.data, b.sb.size), rows[i].accepted);
        assert_int_equal(batch.all, rows[i].all);
        assert_int_equal(batch.n, rows[i].all == HN_R_OK ? (int)rows[i].n : 0);
        for (int j = 0; j < batch.n; j++) assert_int_equal(batch.reason[j], HN_R_OK);
        buf_free(&b);
    }
}

static void test_batch_mixed(void **state) {
    const ov no_s[] = { { "s", DEL } };
    const ov bad_q[] = { { "q", STR("3") } };
    const ov other[] = { { "k", STR("wk_other") }, { "t", STR("hb") }, { "q", UINT(9) } };
    buf b;
    (void)state;
    buf_init(&b);
    msgpack_pack_array(&b.pk, 5);
    pack_beacon(&b.pk, NULL, 0);
    pack_beacon(&b.pk, no_s, 1);
    pack_beacon(&b.pk, other, 3);
    msgpack_pack_uint64(&b.pk, 5);
    pack_beacon(&b.pk, bad_q, 1);

    assert_int_equal(decode(b.sb.data, b.sb.size), 2);
    assert_int_equal(batch.n, 5);
    assert_int_equal(batch.all, HN_R_OK);
    assert_int_equal(batch.reason[0], HN_R_OK);
    assert_int_equal(batch.reason[1], HN_R_MISSING_FIELD);
    assert_int_equal(batch.reason[2], HN_R_OK);
    assert_int_equal(batch.reason[3], HN_R_NOT_MAP);
    assert_int_equal(batch.reason[4], HN_R_BAD_TYPE);
    assert_string_equal(batch.err, "beacon 1: missing required key 's'");
    assert_true(hn_str_eq(batch.b[0].k, "wk_test", 7));
    assert_true(hn_str_eq(batch.b[2].k, "wk_other", 8));
    assert_int_equal(batch.b[2].type, HN_T_HB);
    assert_int_equal(batch.b[2].q, 9);
    buf_free(&b);

    /* the err names the first bad beacon and its key */
    buf_init(&b);
    msgpack_pack_array(&b.pk, 3);
    pack_beacon(&b.pk, NULL, 0);
    pack_beacon(&b.pk, NULL, 0);
    pack_beacon(&b.pk, bad_q, 1);
    assert_int_equal(decode(b.sb.data, b.sb.size), 2);
    assert_string_equal(batch.err, "beacon 2: key 'q': expected uint");
    buf_free(&b);
}

static void test_last_wins(void **state) {
    const ov dup[] = { { "e", UINT(1) }, { "e", UINT(2) }, { "d", K(V_PDUP) }, { "q", UINT(7) } };
    buf b;
    (void)state;
    buf_init(&b);
    pack_beacon(&b.pk, dup, HN_ARRAY_LEN(dup));
    assert_int_equal(decode(b.sb.data, b.sb.size), 1);
    assert_true(batch.b[0].e == 2);
    assert_true(batch.b[0].q == 7);
    assert_int_equal(batch.b[0].nprops, 1);
    assert_true(hn_str_eq(batch.b[0].props[0].v.s, "2", 1));
    buf_free(&b);
}

/* Positive values sent in signed encodings (int8..int64) are uints too. */
static void test_signed_encodings(void **state) {
    static const struct { const char *p; size_t len; int accepted; } rows[] = {
        /* {"v": int8 1, "k": "k", "s": "12345678", "t": "hb", "q": int64 3} */
        { "\x85\xa1v\xd0\x01\xa1k\xa1k\xa1s\xa8" "12345678\xa1t\xa2hb\xa1q\xd3\0\0\0\0\0\0\0\x03", 36, 1 },
        /* the same with q = int8 -1 */
        { "\x85\xa1v\xd0\x01\xa1k\xa1k\xa1s\xa8" "12345678\xa1t\xa2hb\xa1q\xd0\xff", 29, 0 },
    };
    (void)state;
    for (size_t i = 0; i < HN_ARRAY_LEN(rows); i++) {
        assert_int_equal(decode(rows[i].p, rows[i].len), rows[i].accepted);
        assert_int_equal(batch.n, 1);
    }
    assert_int_equal(batch.reason[0], HN_R_BAD_TYPE);
    decode(rows[0].p, rows[0].len);
    assert_true(batch.b[0].q == 3);
}

/* A container header claiming far more elements than the input holds must
 * be rejected before msgpack-c allocates for it. */
static void test_huge_count(void **state) {
    static const struct { const char *p; size_t len; } in[] = {
        { "\xdd\xff\xff\xff\xff", 5 },               /* array of 4G */
        { "\xdf\x05\xf5\xe1\x00", 5 },               /* map of 100M */
        { "\x91\xdd\xff\xff\xff\xff", 6 },
        { "\xdc\xff\xff", 3 },
        { "\xdb\xff\xff\xff\xff" "abc", 8 },         /* str of 4G */
        { "\xc6\xff\xff\xff\xff", 5 },               /* bin */
        { "\xc9\xff\xff\xff\xff\x01", 6 },           /* ext */
        { "\x93\x01\x02", 3 },                       /* 3 claimed, 2 there */
        { "\x83\xa1v\x01\xa1k", 6 },                 /* 3 pairs = 6 elements, 3 bytes left */
    };
    buf b;
    (void)state;
    clock_t t0 = clock();
    for (int rep = 0; rep < 1000; rep++)
        for (size_t i = 0; i < HN_ARRAY_LEN(in); i++) expect_whole(in[i].p, in[i].len, HN_R_MALFORMED);

    /* and inside an otherwise valid beacon */
    buf_init(&b);
    const ov ovs[] = { { "zz", UINT(0) } };
    pack_beacon(&b.pk, ovs, 1);
    b.sb.size--;                                     /* drop the 0 value */
    msgpack_pack_array(&b.pk, 0xffffffffu);
    msgpack_pack_uint64(&b.pk, 1);
    expect_whole(b.sb.data, b.sb.size, HN_R_MALFORMED);
    buf_free(&b);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 2.0);
}

static void test_deep(void **state) {
    size_t n = 60000;                                /* under the size limit */
    char *p = malloc(n + 1);
    (void)state;
    memset(p, 0x91, n);                              /* [[[[...]]]] */
    p[n] = 0;
    expect_whole(p, n + 1, HN_R_MALFORMED);
    free(p);

    /* batch -> beacon -> unknown key with nesting: 8 containers ok, 9 not */
    for (int extra = 5; extra <= 7; extra++) {
        buf b;
        const ov ovs[] = { { "zz", NEST((uint64_t)extra) } };
        buf_init(&b);
        msgpack_pack_array(&b.pk, 1);
        pack_beacon(&b.pk, ovs, 1);
        int accepted = decode(b.sb.data, b.sb.size);
        if (2 + extra <= 8) assert_int_equal(accepted, 1);
        else assert_int_equal(batch.all, HN_R_MALFORMED);
        buf_free(&b);
    }
}

/* ---- round trip ---------------------------------------------------------------- */

#define S(x) HN_STR_LIT(x)

static void roundtrip(const hn_beacon *in) {
    buf b;
    buf_init(&b);
    hn_beacon_pack(&b.pk, in);
    if (decode(b.sb.data, b.sb.size) != 1) fail_msg("rejected: %s", batch.err);
    assert_beacon_same(in, &batch.b[0], true);
    buf_free(&b);
}

static void test_roundtrip_full(void **state) {
    static hn_beacon in;
    (void)state;
    memset(&in, 0, sizeof in);
    in.type = HN_T_EV;
    in.t = S("ev");
    in.k = S("wk_live_123");
    in.s = S("Zx9_-abcdEF");
    in.q = 42;
    in.u = S("https://example.com/pricing?x=1#y");
    in.ti = S("Pricing \xe2\x80\x94 Example");
    in.r = S("https://google.com/");
    in.n = S("form_submit");
    in.fields = HN_F_E | HN_F_TS | HN_F_SW | HN_F_SH;
    in.e = 0;                                 /* present and zero */
    in.ts = 1700000000123;
    in.sw = 65535;
    in.sh = 0;
    in.l = S("en-US");
    in.vid = S("v_abc");
    in.nm = S("Ann");
    in.em = S("ann@example.com");
    in.ph = S("+1 555 0100");
    in.ua = S("Mozilla/5.0");
    in.ip = S("203.0.113.7");
    in.props[0] = (hn_prop){ .key = S("plan"), .type = HN_P_STR, .v.s = S("pro") };
    in.props[1] = (hn_prop){ .key = S("seats"), .type = HN_P_INT, .v.i = 3 };
    in.props[2] = (hn_prop){ .key = S("delta"), .type = HN_P_INT, .v.i = INT64_MIN };
    in.props[3] = (hn_prop){ .key = S("big"), .type = HN_P_UINT, .v.u = UINT64_MAX };
    in.props[4] = (hn_prop){ .key = S("ratio"), .type = HN_P_FLOAT, .v.f = 0.25 };
    in.props[5] = (hn_prop){ .key = S("ok"), .type = HN_P_BOOL, .v.b = true };
    in.props[6] = (hn_prop){ .key = S("no"), .type = HN_P_BOOL, .v.b = false };
    in.props[7] = (hn_prop){ .key = S("empty"), .type = HN_P_STR, .v.s = S("") };
    in.props[8] = (hn_prop){ .key = S("zero"), .type = HN_P_INT, .v.i = 0 };
    in.nprops = 9;
    roundtrip(&in);
}

static void test_roundtrip_minimal(void **state) {
    static hn_beacon in;
    (void)state;
    memset(&in, 0, sizeof in);
    in.type = HN_T_HB;
    in.t = S("hb");
    in.k = S("k");
    in.s = S("12345678");
    in.q = 1;
    roundtrip(&in);

    /* t left empty: packed from type, decoded as sent */
    buf b;
    in.t = (hn_str){ NULL, 0 };
    buf_init(&b);
    hn_beacon_pack(&b.pk, &in);
    assert_int_equal(decode(b.sb.data, b.sb.size), 1);
    assert_int_equal(batch.b[0].type, HN_T_HB);
    assert_true(hn_str_eq(batch.b[0].t, "hb", 2));
    buf_free(&b);
}

/* every accepted table row decodes to what packing it again gives back */
static void test_roundtrip_table(void **state) {
    (void)state;
    for (size_t i = 0; i < HN_ARRAY_LEN(cases); i++) {
        const dcase *c = &cases[i];
        size_t n = 0;
        buf b;
        static hn_beacon first;
        if (c->want != HN_R_OK) continue;
        while (n < HN_ARRAY_LEN(c->ov) && c->ov[n].key) n++;
        buf_init(&b);
        pack_beacon(&b.pk, c->ov, n);
        assert_int_equal(decode(b.sb.data, b.sb.size), 1);
        first = batch.b[0];
        roundtrip(&first);
        buf_free(&b);
    }
}

/* ---- robustness: mutations and random bytes, for ASan/UBSan ------------------------ */

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint64_t next(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_random(void **state) {
    buf b;
    const ov ovs[] = { { "d", PROPS(4) }, { "ti", STR("T\xc3\xa9") }, { "sw", UINT(300) } };
    unsigned char in[512];
    (void)state;
    buf_init(&b);
    msgpack_pack_array(&b.pk, 2);
    pack_beacon(&b.pk, ovs, 3);
    pack_beacon(&b.pk, NULL, 0);
    assert_true(b.sb.size < sizeof in);
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = b.sb.size;
        memcpy(in, b.sb.data, len);
        int muts = 1 + (int)(next() % 4);
        for (int m = 0; m < muts; m++) {
            switch (next() % 4) {
            case 0: in[next() % len] = (unsigned char)next(); break;
            case 1: in[next() % len] ^= (unsigned char)(1u << (next() % 8)); break;
            case 2: len = 1 + next() % len; break;
            default: in[next() % len] = (unsigned char[]){ 0xdd, 0xdf, 0xc1, 0x91, 0xff, 0 }[next() % 6]; break;
            }
        }
        unsigned char *copy = malloc(len);
        memcpy(copy, in, len);
        int accepted = decode((const char *)copy, len);
        assert_true(accepted >= 0 && accepted <= batch.n && batch.n <= HN_BATCH_MAX);
        free(copy);
    }
    for (int iter = 0; iter < 100000; iter++) {
        size_t len = next() % 64;
        unsigned char *copy = malloc(len ? len : 1);
        for (size_t i = 0; i < len; i++) copy[i] = (unsigned char)next();
        int accepted = decode((const char *)copy, len);
        assert_true(accepted >= 0 && accepted <= batch.n);
        free(copy);
    }
    buf_free(&b);
}

/* decoded strings point into the input, and the decoder can be reused */
static void test_strings_point_into_input(void **state) {
    buf b;
    (void)state;
    buf_init(&b);
    pack_beacon(&b.pk, NULL, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(decode(b.sb.data, b.sb.size), 1);
        const hn_beacon *x = &batch.b[0];
        assert_true(x->k.p > b.sb.data && x->k.p + x->k.len <= b.sb.data + b.sb.size);
        assert_true(hn_str_eq(x->u, "https://example.com/", 20));
        assert_int_equal(x->type, HN_T_PV);
    }
    buf_free(&b);
}

static int setup(void **state) {
    (void)state;
    memset(big, 'a', sizeof big);
    dec = hn_decoder_create();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    hn_decoder_destroy(dec);
    return 0;
}

int main(void) {
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_trailing),
        cmocka_unit_test(test_not_map),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_batch_sizes),
        cmocka_unit_test(test_batch_mixed),
        cmocka_unit_test(test_last_wins),
        cmocka_unit_test(test_signed_encodings),
        cmocka_unit_test(test_huge_count),
        cmocka_unit_test(test_deep),
        cmocka_unit_test(test_roundtrip_full),
        cmocka_unit_test(test_roundtrip_minimal),
        cmocka_unit_test(test_roundtrip_table),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_strings_point_into_input),
    };
    size_t n = HN_ARRAY_LEN(cases) + HN_ARRAY_LEN(fixed);
    struct CMUnitTest *tests = calloc(n, sizeof *tests);
    for (size_t i = 0; i < HN_ARRAY_LEN(cases); i++) {
        tests[i] = (struct CMUnitTest){ cases[i].name, test_case, NULL, NULL, (void *)&cases[i] };
    }
    memcpy(tests + HN_ARRAY_LEN(cases), fixed, sizeof fixed);
    int failed = _cmocka_run_group_tests("beacon", tests, n, setup, teardown);
    free(tests);
    return failed ? 1 : 0;
}
