/*
 * test_drain_batch.c: the drain's batch built in C (api/drain/batch.c) and
 * what it stands on (copy.c, set.c): stream entries of packed records in,
 * the COPY texts of the rows and aggregates out, compared line for line.
 *
 *   decode      one record, a batch of records, entries that do not decode
 *               (rejected whole, with the reason) — a table
 *   aggregate   one session's records in several orders and entry splits:
 *               the same session line (first/latest page, counts, latest
 *               identify and enrichment) whatever the order
 *   COPY text   exact lines: values clamped to their columns, invalid UTF-8,
 *               escapes, NULLs, timestamps, hours and days
 *   redelivery  records twice in a batch, and those PostgreSQL has already
 *               (redelivered batch), left out of the rows and the aggregates
 *   erased      tombstones (erased.c): SQL's digest, the time rule, a batch
 *               leaving an erased visitor's records out
 *
 * The batch's clock is fixed (now_us), so the texts are.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "api/drain/batch.h"
#include "api/drain/copy.h"
#include "api/drain/erased.h"
#include "api/drain/set.h"
#include "common/log.h"

#define S(x) HN_STR_LIT(x)

#define SEC 1000000ull
#define T0  1700000000000000ull   /* 2023-11-14 22:13:20 UTC, µs */

/* ---- building entries ------------------------------------------------------------ */

/* Event id n: "018bcfe5-6800-7000-<n, 2 bytes little endian>-000000000000". */
static void mkid(uint8_t id[16], unsigned n) {
    static const uint8_t head[8] = {0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, 0x70, 0x00};
    memcpy(id, head, 8);
    memset(id + 8, 0, 8);
    id[8] = (uint8_t)n;
    id[9] = (uint8_t)(n >> 8);
}

/* A record of widget 7, session sid, visitor hash "vh1", over HTTP; t is
 * left empty (the packer writes the type's name). */
static hn_record rec(hn_btype type, unsigned id, const char *sid, uint64_t q, uint64_t ts) {
    hn_record r;
    memset(&r, 0, sizeof(r));
    mkid(r.event_id, id);
    r.recv_ts = ts;
    r.widget_id = 7;
    r.transport = HN_TR_HTTP;
    r.b.type = (uint8_t)type;
    r.b.k = S("wk_1");
    r.b.s = (hn_str){sid, (uint32_t)strlen(sid)};
    r.b.q = q;
    r.visitor = S("vh1");
    return r;
}

static void enrich(hn_record *r) {
    r->ip = S("203.0.113.0");
    r->ua = S("Mozilla/5.0");
    r->country = S("BR");
    r->city = S("S\xc3\xa3o Paulo");
    r->browser = S("Firefox");
    r->browser_version = S("120");
    r->os = S("Linux");
    r->device = S("desktop");
}

/* The packed entries of one test: they must outlive the batch's build. */
typedef struct packed {
    msgpack_sbuffer sb[32];
    int             n;
} packed;

static void packed_free(packed *p) {
    for (int i = 0; i < p->n; i++) msgpack_sbuffer_destroy(&p->sb[i]);
    p->n = 0;
}

static msgpack_sbuffer *packed_new(packed *p, msgpack_packer *pk) {
    assert_true(p->n < 32);
    msgpack_sbuffer *sb = &p->sb[p->n++];
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
    return sb;
}

static void add_raw(hn_drain_batch *b, int shard, const char *data, size_t len) {
    hn_drain_entry *e = hn_drain_batch_add(b);
    e->shard = shard;
    snprintf(e->id, sizeof(e->id), "1700000000000-%zu", b->nentries - 1);
    e->data = data;
    e->len = len;
    b->hi = b->nentries;
}

/* One entry holding records rs[0 .. n). */
static void add_entry(hn_drain_batch *b, packed *p, const hn_record *rs, int n) {
    msgpack_packer pk;
    msgpack_sbuffer *sb = packed_new(p, &pk);
    msgpack_pack_array(&pk, (size_t)n);
    for (int i = 0; i < n; i++) hn_record_pack(&pk, &rs[i]);
    add_raw(b, 0, sb->data, sb->size);
}

static void batch_start(hn_drain_batch *b) {
    hn_drain_batch_init(b);
    b->now_us = T0;
}

static void assert_text(const hn_buf *b, const char *want) {
    char *got = strndup(b->p ? b->p : "", b->len);
    assert_string_equal(got, want);
    free(got);
}

/* Column col (0-based) of the first line of the text. */
static void assert_col(const hn_buf *b, int col, const char *want) {
    char *text = strndup(b->p ? b->p : "", b->len);
    char *line = strtok(text, "\n");
    assert_non_null(line);
    char *p = line;
    for (int i = 0; i < col; i++) {
        p = strchr(p, '\t');
        assert_non_null(p);
        p++;
    }
    char *end = strchr(p, '\t');
    if (end) *end = '\0';
    assert_string_equal(p, want);
    free(text);
}

/* The text's lines, sorted, as one string (for texts whose line order
 * follows the records' order). */
static char *sorted_lines(const hn_buf *b) {
    char *text = strndup(b->p ? b->p : "", b->len);
    char *lines[64];
    int n = 0;
    for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
        assert_true(n < 64);
        lines[n++] = l;
    }
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
            char *t = lines[j];
            lines[j] = lines[j - 1];
            lines[j - 1] = t;
        }
    char *out = calloc(1, b->len + 1);
    for (int i = 0; i < n; i++) {
        strcat(out, lines[i]);
        strcat(out, "\n");
    }
    free(text);
    return out;
}

/* ---- decoding entries ---------------------------------------------------------------- */

typedef enum {
    E_ONE, E_THREE, E_NOT_MSGPACK, E_TRUNCATED, E_NOT_ARRAY, E_EMPTY_ARRAY, E_NO_ID,
    E_SECOND_BAD, E_TOO_OLD, E_TOO_NEW, E_WIDGET, E_DELETED,
} entry_kind;

static const struct decode_case {
    const char *name;
    entry_kind  kind;
    size_t      nrecords;
    const char *why;        /* NULL: not rejected */
} decode_cases[] = {
    {"one record", E_ONE, 1, NULL},
    {"a batch of three", E_THREE, 3, NULL},
    {"not msgpack", E_NOT_MSGPACK, 0, "not one well-formed msgpack object"},
    {"truncated", E_TRUNCATED, 0, "not one well-formed msgpack object"},
    {"not an array", E_NOT_ARRAY, 0, "not a non-empty array of records"},
    {"empty array", E_EMPTY_ARRAY, 0, "not a non-empty array of records"},
    {"record without id", E_NO_ID, 0, "record 0: missing key 'id'"},
    /* all or nothing: the good first record is not written either */
    {"second record bad", E_SECOND_BAD, 0, "record 1: key 'rv': value 2 out of range"},
    {"recv_ts 401 days old", E_TOO_OLD, 0, "recv_ts 1665353600000000 out of range"},
    {"recv_ts 2 days ahead", E_TOO_NEW, 0, "recv_ts 1700172800000000 out of range"},
    {"widget id past int32", E_WIDGET, 0, "widget id 2147483648 out of range"},
    {"deleted (no data)", E_DELETED, 0, NULL},
};

static void make_entry(hn_drain_batch *b, packed *p, entry_kind kind) {
    hn_record rs[3] = {rec(HN_T_PV, 1, "s1", 1, T0), rec(HN_T_EV, 2, "s1", 2, T0 + SEC),
                       rec(HN_T_HB, 3, "s1", 3, T0 + 2 * SEC)};
    rs[0].b.u = S("https://ex.com/");
    rs[1].b.n = S("signup");
    msgpack_packer pk;
    msgpack_sbuffer *sb;
    switch (kind) {
    case E_ONE: add_entry(b, p, rs, 1); break;
    case E_THREE: add_entry(b, p, rs, 3); break;
    case E_NOT_MSGPACK: add_raw(b, 2, "\xc1", 1); break;
    case E_TRUNCATED:
        sb = packed_new(p, &pk);
        msgpack_pack_array(&pk, 1);
        hn_record_pack(&pk, &rs[0]);
        add_raw(b, 2, sb->data, sb->size - 1);
        break;
    case E_NOT_ARRAY:
        sb = packed_new(p, &pk);
        hn_record_pack(&pk, &rs[0]);
        add_raw(b, 2, sb->data, sb->size);
        break;
    case E_EMPTY_ARRAY:
        sb = packed_new(p, &pk);
        msgpack_pack_array(&pk, 0);
        add_raw(b, 2, sb->data, sb->size);
        break;
    case E_NO_ID:
        sb = packed_new(p, &pk);
        msgpack_pack_array(&pk, 1);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str(&pk, 2);
        msgpack_pack_str_body(&pk, "rv", 2);
        msgpack_pack_uint64(&pk, 1);
        add_raw(b, 2, sb->data, sb->size);
        break;
    case E_SECOND_BAD:
        sb = packed_new(p, &pk);
        msgpack_pack_array(&pk, 2);
        hn_record_pack(&pk, &rs[0]);
        msgpack_pack_map(&pk, 1);
        msgpack_pack_str(&pk, 2);
        msgpack_pack_str_body(&pk, "rv", 2);
        msgpack_pack_uint64(&pk, 2);
        add_raw(b, 2, sb->data, sb->size);
        break;
    case E_TOO_OLD:
        rs[0].recv_ts = T0 - 401 * 86400 * SEC;
        add_entry(b, p, rs, 1);
        b->entries[b->nentries - 1].shard = 2;
        break;
    case E_TOO_NEW:
        rs[0].recv_ts = T0 + 2 * 86400 * SEC;
        add_entry(b, p, rs, 1);
        b->entries[b->nentries - 1].shard = 2;
        break;
    case E_WIDGET:
        rs[0].widget_id = 2147483648u;
        add_entry(b, p, rs, 1);
        b->entries[b->nentries - 1].shard = 2;
        break;
    case E_DELETED: add_raw(b, 2, NULL, 0); break;
    }
}

static void test_decode(void **state) {
    (void)state;
    for (size_t c = 0; c < HN_ARRAY_LEN(decode_cases); c++) {
        const struct decode_case *dc = &decode_cases[c];
        hn_drain_batch b;
        packed p = {.n = 0};
        batch_start(&b);
        make_entry(&b, &p, dc->kind);
        hn_drain_batch_build(&b);
        printf("  %-22s records=%zu rejects=%zu\n", dc->name, b.nrecords, b.nrejects);
        assert_int_equal(b.nrecords, dc->nrecords);
        assert_int_equal(b.nrepeats, 0);
        if (dc->why == NULL) {
            assert_int_equal(b.nrejects, 0);
            assert_false(b.entries[0].bad);
        } else {
            const hn_drain_entry *e = &b.entries[0];
            assert_int_equal(b.nrejects, 1);
            assert_true(e->bad);
            assert_string_equal(b.rejects[0].why, dc->why);
            assert_int_equal(b.rejects[0].shard, 2);
            assert_string_equal(b.rejects[0].id, "1700000000000-0");
            /* the raw bytes are a copy, kept for drain_rejects */
            assert_int_equal(b.rejects[0].rawlen, e->len);
            assert_true(b.rejects[0].raw != e->data);
            assert_memory_equal(b.rejects[0].raw, e->data, e->len);
            assert_int_equal(b.pv.len + b.ev.len + b.agg.len + b.hourly.len + b.dims.len, 0);
            assert_int_equal(b.nsessions, 0);
            assert_true(b.min_ts == 0);
            /* rejected once: a rebuild (after a conflict) skips it */
            hn_drain_batch_build(&b);
            assert_int_equal(b.nrejects, 1);
        }
        if (dc->nrecords) {
            assert_true(b.min_ts == T0);
            assert_true(b.max_ts == T0 + (dc->nrecords - 1) * SEC);
            assert_int_equal(b.nsessions, 1);
        }
        hn_drain_batch_reset(&b);
        assert_int_equal(b.nentries, 0);
        assert_int_equal(b.nrejects, 0);
        hn_drain_batch_free(&b);
        packed_free(&p);
    }
}

/* A good entry next to a bad one: the good one is written, the bad one kept. */
static void test_decode_mixed(void **state) {
    (void)state;
    hn_drain_batch b;
    packed p = {.n = 0};
    batch_start(&b);
    make_entry(&b, &p, E_ONE);
    make_entry(&b, &p, E_NOT_MSGPACK);
    make_entry(&b, &p, E_THREE);
    hn_drain_batch_build(&b);
    /* E_THREE repeats E_ONE's record: left out once */
    assert_int_equal(b.nrecords, 3);
    assert_int_equal(b.nrepeats, 1);
    assert_int_equal(b.nrejects, 1);
    assert_string_equal(b.rejects[0].id, "1700000000000-1");
    assert_false(b.entries[0].bad);
    assert_true(b.entries[1].bad);
    assert_false(b.entries[2].bad);
    /* an entry alone (isolating) */
    b.lo = 2;
    b.hi = 3;
    hn_drain_batch_build(&b);
    assert_int_equal(b.nrecords, 3);
    assert_int_equal(b.nrepeats, 0);
    hn_drain_batch_free(&b);
    packed_free(&p);
}

/* ---- one session, out of order ----------------------------------------------------- */

enum { NSESS = 11 };

/* Session s9 of widget 3: five page views, two chat events, two identifies,
 * an end. First page: r1 (r10 has the same time, a higher q); latest: r3
 * (r9 has the same time, a lower q); latest record: r8 (the end). */
static void session_records(hn_record rs[NSESS]) {
    static const struct {
        hn_btype type;
        unsigned ts_s;
        uint64_t q;
        const char *u, *ti, *r, *n, *nm;
    } t[NSESS] = {
        {HN_T_PV, 10, 1, "https://ex.com/", "Home", "https://ref.one/", "", ""},
        {HN_T_PV, 20, 2, "https://ex.com/pricing", "Pricing", "https://ref.two/", "", ""},
        {HN_T_PV, 30, 3, "https://ex.com/signup?step=2", "Signup", "", "", ""},
        {HN_T_EV, 15, 4, "", "", "", "chat_message_sent", ""},
        {HN_T_EV, 12, 5, "", "", "", "chat_opened", ""},
        {HN_T_ID, 25, 6, "", "", "", "", "Bo"},
        {HN_T_ID, 26, 7, "", "", "", "", "Bob"},
        {HN_T_END, 31, 8, "", "", "", "", ""},
        {HN_T_PV, 30, 2, "https://ex.com/signup#top", "Top", "", "", ""},
        {HN_T_PV, 10, 5, "https://ex.com/", "Home again", "https://ref.three/", "", ""},
        {HN_T_HB, 29, 9, "", "", "", "", ""},
    };
    for (int i = 0; i < NSESS; i++) {
        rs[i] = rec(t[i].type, 100 + (unsigned)i, "s9", t[i].q, T0 + t[i].ts_s * SEC);
        rs[i].widget_id = 3;
        rs[i].visitor = S("vh9");
        rs[i].country = S("BR");
        rs[i].b.u = (hn_str){t[i].u, (uint32_t)strlen(t[i].u)};
        rs[i].b.ti = (hn_str){t[i].ti, (uint32_t)strlen(t[i].ti)};
        rs[i].b.r = (hn_str){t[i].r, (uint32_t)strlen(t[i].r)};
        rs[i].b.n = (hn_str){t[i].n, (uint32_t)strlen(t[i].n)};
        rs[i].b.nm = (hn_str){t[i].nm, (uint32_t)strlen(t[i].nm)};
        rs[i].b.l = S("en");
    }
    rs[0].b.fields |= HN_F_E;
    rs[0].b.e = 1000;
    rs[1].b.fields |= HN_F_E;
    rs[1].b.e = 2000;
    rs[2].b.l = S("fr");
    rs[2].b.fields |= HN_F_SW | HN_F_SH;
    rs[2].b.sw = 1280;
    rs[2].b.sh = 720;
    rs[7].b.fields |= HN_F_E;
    rs[7].b.e = 500;
    rs[7].b.vid = S("user-42");
    rs[7].country = S("DE");
}

static const char session_agg[] =
    "3\ts9\tuser-42\tvh9"
    "\tBob\t\\N\t\\N\t\\N"                                   /* nm em ek ph */
    "\t\\N\tDE\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N"      /* ip country … device */
    "\tfr\t1280\t720"                                        /* lang sw sh */
    "\thttps://ex.com/\thttps://ref.one/"                    /* landing referrer */
    "\thttps://ex.com/signup?step=2\tSignup"                 /* current page */
    "\t2023-11-14 22:13:30.000000+00\t2023-11-14 22:13:50.000000+00"
    "\t5\t2\t3500\t1\t2"                                     /* pages events engaged msgs chat */
    "\t2023-11-14 22:13:30.000000+00"                        /* started */
    "\t2023-11-14 22:13:51.000000+00"                        /* last active */
    "\t2023-11-14 22:13:51.000000+00\n";                     /* ended */

static const char session_hourly[] = "3\t2023-11-14 22:00:00.000000+00\t5\t2\n";

static const char session_dims[] =   /* sorted */
    "3\tevent\t2023-11-14\tchat_message_sent\t1\n"
    "3\tevent\t2023-11-14\tchat_opened\t1\n"
    "3\tpage\t2023-11-14\thttps://ex.com/\t2\n"
    "3\tpage\t2023-11-14\thttps://ex.com/pricing\t1\n"
    "3\tpage\t2023-11-14\thttps://ex.com/signup\t2\n";

static const struct order_case {
    const char *name;
    int         order[NSESS];
    int         split;      /* records per entry (0: all in one) */
} order_cases[] = {
    {"as made", {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0},
    {"reversed", {10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}, 0},
    {"shuffled", {7, 2, 9, 4, 0, 8, 6, 1, 10, 5, 3}, 0},
    {"latest first, one per entry", {7, 2, 8, 6, 5, 1, 3, 4, 9, 0, 10}, 1},
    {"ties swapped, three per entry", {9, 8, 2, 0, 10, 6, 5, 4, 3, 1, 7}, 3},
};

static void test_aggregate_out_of_order(void **state) {
    (void)state;
    hn_record all[NSESS];
    session_records(all);
    for (size_t c = 0; c < HN_ARRAY_LEN(order_cases); c++) {
        const struct order_case *oc = &order_cases[c];
        hn_record rs[NSESS];
        for (int i = 0; i < NSESS; i++) rs[i] = all[oc->order[i]];
        hn_drain_batch b;
        packed p = {.n = 0};
        batch_start(&b);
        int per = oc->split ? oc->split : NSESS;
        for (int i = 0; i < NSESS; i += per)
            add_entry(&b, &p, rs + i, i + per > NSESS ? NSESS - i : per);
        hn_drain_batch_build(&b);
        printf("  %s\n", oc->name);
        assert_int_equal(b.nrecords, NSESS);
        assert_int_equal(b.nsessions, 1);
        assert_text(&b.agg, session_agg);
        assert_text(&b.hourly, session_hourly);
        char *dims = sorted_lines(&b.dims);
        assert_string_equal(dims, session_dims);
        free(dims);
        hn_drain_batch_free(&b);
        packed_free(&p);
    }
}

/* ---- the COPY text, line for line ---------------------------------------------------- */

static void test_copy_rows(void **state) {
    (void)state;
    hn_record rs[5];
    /* a page view: every limit and escape */
    rs[0] = rec(HN_T_PV, 1, "s1", UINT64_MAX, T0 + 123456);   /* q past bigint */
    enrich(&rs[0]);
    rs[0].b.u = S("https://ex.com/a/b?x=1#f");
    rs[0].b.ti = S("T\tab\nnew\\line\rcr");
    rs[0].b.fields = HN_F_E | HN_F_SW | HN_F_SH;
    rs[0].b.e = 10000000000ull;                                 /* more than a day engaged */
    rs[0].b.sw = 200000;                                        /* wider than any screen */
    rs[0].b.sh = 1080;
    rs[0].b.l = S("pt-BR");
    /* an event: invalid UTF-8 in the visitor id (copied as is) and in a
     * property (JSON says U+FFFD) */
    rs[1] = rec(HN_T_EV, 2, "s1", 2, T0 + 2 * SEC + 5);
    enrich(&rs[1]);
    rs[1].transport = HN_TR_UDP;
    rs[1].b.vid = S("v\xff" "id");
    rs[1].b.n = S("signup");
    rs[1].b.props[0] = (hn_prop){.key = S("plan"), .type = HN_P_STR, .v.s = S("p\xff")};
    rs[1].b.props[1] = (hn_prop){.key = S("seats"), .type = HN_P_INT, .v.i = -3};
    rs[1].b.nprops = 2;
    /* identify: no visitor at all (the session stands in), its fields as data */
    rs[2] = rec(HN_T_ID, 3, "s1", 3, T0 + SEC);
    enrich(&rs[2]);
    rs[2].visitor = (hn_str){NULL, 0};
    rs[2].b.nm = S("Ana");
    rs[2].b.em = S("a@x.io");
    /* the end: the latest record of s1 */
    rs[3] = rec(HN_T_END, 4, "s1", 4, T0 + 3 * SEC);
    enrich(&rs[3]);
    rs[3].transport = HN_TR_PIXEL;
    /* another widget's session, two hours later (the next day): nothing but
     * a heartbeat, nothing known */
    rs[4] = rec(HN_T_HB, 5, "s2", 1, T0 + 7200 * SEC);
    rs[4].widget_id = 8;
    rs[4].visitor = (hn_str){NULL, 0};
    rs[4].transport = HN_TR_UDP;

    hn_drain_batch b;
    packed p = {.n = 0};
    batch_start(&b);
    add_entry(&b, &p, rs, 3);
    add_entry(&b, &p, rs + 3, 2);
    hn_drain_batch_build(&b);
    assert_int_equal(b.nrecords, 5);
    assert_int_equal(b.nrejects, 0);
    assert_int_equal(b.nsessions, 2);
    assert_true(b.min_ts == T0 + 123456);
    assert_true(b.max_ts == T0 + 7200 * SEC);

    /* event_id recv_at widget_id session_id visitor_id seq url path title
     * referrer engaged_ms transport */
    assert_text(&b.pv,
        "018bcfe5-6800-7000-0100-000000000000\t2023-11-14 22:13:20.123456+00\t7\ts1\tvh1"
        "\t9223372036854775807\thttps://ex.com/a/b?x=1#f\thttps://ex.com/a/b"
        "\tT\\tab\\nnew\\\\line\\rcr\t\\N\t86400000\t2\n");
    /* event_id recv_at widget_id session_id visitor_id seq event_type
     * event_name url event_data engaged_ms transport */
    assert_text(&b.ev,
        "018bcfe5-6800-7000-0200-000000000000\t2023-11-14 22:13:22.000005+00\t7\ts1\tv\xff" "id"
        "\t2\tev\tsignup\t\\N\t{\"plan\":\"p\xef\xbf\xbd\",\"seats\":-3}\t0\t1\n"
        "018bcfe5-6800-7000-0300-000000000000\t2023-11-14 22:13:21.000000+00\t7\ts1\ts1"
        "\t3\tid\t\\N\t\\N\t{\"name\":\"Ana\",\"email\":\"a@x.io\"}\t0\t2\n"
        "018bcfe5-6800-7000-0400-000000000000\t2023-11-14 22:13:23.000000+00\t7\ts1\tvh1"
        "\t4\tend\t\\N\t\\N\t\\N\t0\t3\n"
        "018bcfe5-6800-7000-0500-000000000000\t2023-11-15 00:13:20.000000+00\t8\ts2\ts2"
        "\t1\thb\t\\N\t\\N\t\\N\t0\t1\n");
    /* hn_agg: the screen width past its limit is dropped, the height kept */
    assert_text(&b.agg,
        "7\ts1\tvh1\tvh1\tAna\ta@x.io\ta@x.io\t\\N"            /* em, its key (no keys: lower-cased) */
        "\t203.0.113.0\tBR\t\\N\tS\xc3\xa3o Paulo\tMozilla/5.0\tFirefox\t120\tLinux\t\\N\tdesktop"
        "\tpt-BR\t\\N\t1080"
        "\thttps://ex.com/a/b?x=1#f\t\\N\thttps://ex.com/a/b?x=1#f\tT\\tab\\nnew\\\\line\\rcr"
        "\t2023-11-14 22:13:20.123456+00\t2023-11-14 22:13:20.123456+00"
        "\t1\t1\t86400000\t0\t0"
        "\t2023-11-14 22:13:20.123456+00\t2023-11-14 22:13:23.000000+00"
        "\t2023-11-14 22:13:23.000000+00\n"
        "8\ts2\ts2\t\\N\t\\N\t\\N\t\\N\t\\N"
        "\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N\t\\N"
        "\t\\N\t\\N\t\\N"
        "\t\\N\t\\N\t\\N\t\\N"
        "\t\\N\t\\N"
        "\t0\t0\t0\t0\t0"
        "\t2023-11-15 00:13:20.000000+00\t2023-11-15 00:13:20.000000+00"
        "\t\\N\n");
    assert_text(&b.hourly,
        "7\t2023-11-14 22:00:00.000000+00\t1\t1\n"
        "8\t2023-11-15 00:00:00.000000+00\t0\t0\n");
    assert_text(&b.dims,
        "7\tpage\t2023-11-14\thttps://ex.com/a/b\t1\n"
        "7\tevent\t2023-11-14\tsignup\t1\n");

    hn_drain_batch_ids(&b);
    assert_text(&b.ids,
        "018bcfe5-6800-7000-0100-000000000000\t2023-11-14 22:13:20.123456+00\n"
        "018bcfe5-6800-7000-0200-000000000000\t2023-11-14 22:13:22.000005+00\n"
        "018bcfe5-6800-7000-0300-000000000000\t2023-11-14 22:13:21.000000+00\n"
        "018bcfe5-6800-7000-0400-000000000000\t2023-11-14 22:13:23.000000+00\n"
        "018bcfe5-6800-7000-0500-000000000000\t2023-11-15 00:13:20.000000+00\n");
    hn_drain_batch_free(&b);
    packed_free(&p);
}

#define B(s) s, sizeof(s) - 1

static const struct {
    const char *in;
    size_t      len;
    const char *out;
    size_t      outlen;
} bytes_cases[] = {
    {B("plain"), B("plain")},
    {B(""), B("")},
    {B("a\tb"), B("a\\tb")},
    {B("\\"), B("\\\\")},
    {B("\\N"), B("\\\\N")},                /* text that reads \N stays text */
    {B("l1\nl2\r\n"), B("l1\\nl2\\r\\n")},
    {B("\t\t"), B("\\t\\t")},
    {B("x\xff\xfe" "y"), B("x\xff\xfe" "y")},   /* bytes as they are */
    {B("a\0b"), B("a\0b")},
};

static const struct {
    uint64_t    us;
    const char *out;
} ts_cases[] = {
    {0, "\\N"},
    {1, "1970-01-01 00:00:00.000001+00"},
    {T0, "2023-11-14 22:13:20.000000+00"},
    {T0 + 999999, "2023-11-14 22:13:20.999999+00"},   /* the same second: cached text */
    {T0 + 1000000, "2023-11-14 22:13:21.000000+00"},
    {951782400000000ull, "2000-02-29 00:00:00.000000+00"},
    {4102444799999999ull, "2099-12-31 23:59:59.999999+00"},
};

static void test_copy_text(void **state) {
    (void)state;
    hn_buf b;
    hn_buf_init(&b, 16);
    for (size_t i = 0; i < HN_ARRAY_LEN(bytes_cases); i++) {
        hn_buf_reset(&b);
        hn_copy_bytes(&b, bytes_cases[i].in, bytes_cases[i].len);
        assert_int_equal(b.len, bytes_cases[i].outlen);
        assert_memory_equal(b.p, bytes_cases[i].out, b.len);
    }
    for (size_t i = 0; i < HN_ARRAY_LEN(ts_cases); i++) {
        hn_buf_reset(&b);
        hn_copy_ts_raw(&b, ts_cases[i].us);
        assert_text(&b, ts_cases[i].out);
    }
    hn_buf_reset(&b);
    hn_copy_u64_raw(&b, 0);
    hn_copy_u64(&b, UINT64_MAX);
    hn_copy_str(&b, (hn_str){NULL, 0});
    hn_copy_str(&b, S("a\\b"));
    hn_copy_ts(&b, 0);
    hn_copy_day(&b, 0);
    hn_copy_day(&b, 19675);
    assert_text(&b, "0\t18446744073709551615\t\\N\ta\\\\b\t\\N\t1970-01-01\t2023-11-14");
    hn_buf_free(&b);
}

/* ---- redelivery ---------------------------------------------------------------------- */

/* Session s5: page views p1 (id 21), p2 (id 22), event e1 (id 23); entry 0
 * is [p1, p2], entry 1 is [e1, p1 again] (a collector's resend). */
static const struct redeliver_case {
    const char *name;
    bool        redelivered;
    unsigned    existing[3];      /* ids PostgreSQL has (0: none) */
    size_t      nrecords, nrepeats, nsessions;
    const char *pv;               /* the rows' ids, in order */
    const char *pages, *events, *landing, *current;   /* hn_agg columns */
    const char *hourly, *dims;
} redeliver_cases[] = {
    {"first delivery", false, {0}, 3, 1, 1, "21 22", "2", "1", "https://ex.com/p1", "https://ex.com/p2",
     "4\t2023-11-14 22:00:00.000000+00\t2\t1\n",
     "4\tpage\t2023-11-14\thttps://ex.com/p1\t1\n4\tpage\t2023-11-14\thttps://ex.com/p2\t1\n"
     "4\tevent\t2023-11-14\tclick\t1\n"},
    /* existing counts only for a redelivered batch */
    {"first delivery, p2 present", false, {22}, 3, 1, 1, "21 22", "2", "1", "https://ex.com/p1",
     "https://ex.com/p2", "4\t2023-11-14 22:00:00.000000+00\t2\t1\n",
     "4\tpage\t2023-11-14\thttps://ex.com/p1\t1\n4\tpage\t2023-11-14\thttps://ex.com/p2\t1\n"
     "4\tevent\t2023-11-14\tclick\t1\n"},
    {"redelivered, nothing present", true, {0}, 3, 1, 1, "21 22", "2", "1", "https://ex.com/p1",
     "https://ex.com/p2", "4\t2023-11-14 22:00:00.000000+00\t2\t1\n",
     "4\tpage\t2023-11-14\thttps://ex.com/p1\t1\n4\tpage\t2023-11-14\thttps://ex.com/p2\t1\n"
     "4\tevent\t2023-11-14\tclick\t1\n"},
    /* p2 was written: not in the rows, not in the counts, and the current
     * page is p1 again */
    {"redelivered, p2 present", true, {22}, 2, 2, 1, "21", "1", "1", "https://ex.com/p1",
     "https://ex.com/p1", "4\t2023-11-14 22:00:00.000000+00\t1\t1\n",
     "4\tpage\t2023-11-14\thttps://ex.com/p1\t1\n4\tevent\t2023-11-14\tclick\t1\n"},
    {"redelivered, p1 and e1 present", true, {21, 23}, 1, 3, 1, "22", "1", "0", "https://ex.com/p2",
     "https://ex.com/p2", "4\t2023-11-14 22:00:00.000000+00\t1\t0\n",
     "4\tpage\t2023-11-14\thttps://ex.com/p2\t1\n"},
    {"redelivered, all present", true, {21, 22, 23}, 0, 4, 0, "", NULL, NULL, NULL, NULL, "", ""},
};

/* The record numbers (mkid) of the rows, in order: "21 22". */
static void assert_pv_ids(const hn_buf *pv, const char *want) {
    char ids[64] = "";
    char *text = strndup(pv->p ? pv->p : "", pv->len);
    for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
        unsigned n = (unsigned)strtoul(l + 19, NULL, 16) >> 8;   /* byte 8 of the id */
        snprintf(ids + strlen(ids), sizeof(ids) - strlen(ids), "%s%u", ids[0] ? " " : "", n);
    }
    assert_string_equal(ids, want);
    free(text);
}

static void test_redelivery(void **state) {
    (void)state;
    hn_record p1 = rec(HN_T_PV, 21, "s5", 1, T0 + 1 * SEC);
    hn_record p2 = rec(HN_T_PV, 22, "s5", 2, T0 + 2 * SEC);
    hn_record e1 = rec(HN_T_EV, 23, "s5", 3, T0 + 3 * SEC);
    p1.b.u = S("https://ex.com/p1");
    p2.b.u = S("https://ex.com/p2");
    e1.b.n = S("click");
    p1.widget_id = p2.widget_id = e1.widget_id = 4;
    hn_record entry0[2] = {p1, p2}, entry1[2] = {e1, p1};
    for (size_t c = 0; c < HN_ARRAY_LEN(redeliver_cases); c++) {
        const struct redeliver_case *rc = &redeliver_cases[c];
        hn_drain_batch b;
        packed p = {.n = 0};
        batch_start(&b);
        add_entry(&b, &p, entry0, 2);
        add_entry(&b, &p, entry1, 2);
        /* pg.c's order: the ids, what PostgreSQL has of them, the build */
        b.redelivered = rc->redelivered;
        hn_drain_batch_ids(&b);
        assert_int_equal(b.ids.len, 4 * (36 + 1 + 29 + 1));   /* the resend too */
        for (int i = 0; i < 3 && rc->existing[i]; i++) {
            uint8_t id[16];
            mkid(id, rc->existing[i]);
            assert_true(hn_seen_add(&b.existing, id));
        }
        hn_drain_batch_build(&b);
        printf("  %-32s records=%zu repeats=%zu\n", rc->name, b.nrecords, b.nrepeats);
        assert_int_equal(b.nrecords, rc->nrecords);
        assert_int_equal(b.nrepeats, rc->nrepeats);
        assert_int_equal(b.nsessions, rc->nsessions);
        assert_pv_ids(&b.pv, rc->pv);
        if (rc->pages) {
            assert_col(&b.agg, 27, rc->pages);
            assert_col(&b.agg, 28, rc->events);
            assert_col(&b.agg, 21, rc->landing);
            assert_col(&b.agg, 23, rc->current);
        } else {
            assert_int_equal(b.agg.len, 0);
            assert_int_equal(b.ev.len, 0);
        }
        assert_text(&b.hourly, rc->hourly);
        assert_text(&b.dims, rc->dims);
        hn_drain_batch_free(&b);
        packed_free(&p);
    }
}

/* ---- erased visitors (erased.h) --------------------------------------------------------- */

static void test_erased(void **state) {
    (void)state;
    /* the digest is SQL's hn_erasure_digest(7, 'v', 'user-42') (sql/009):
     * sha256('7:v:user-42'), computed with Python's hashlib */
    static const char want[] = "402c6d217802edec4d56d755335c68245770f109dc41004d5acdba53befba20e";
    uint8_t d[HN_ERASED_DIGEST], ds[HN_ERASED_DIGEST];
    char hex[2 * HN_ERASED_DIGEST + 1];
    hn_erased_digest(7, 'v', S("user-42"), d);
    for (int i = 0; i < HN_ERASED_DIGEST; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    assert_string_equal(hex, want);

    hn_erased e = {0};
    assert_false(hn_erased_match(&e, 7, S("sessAAAA1"), S("user-42"), T0));   /* empty */
    hn_erased_add(&e, 7, d, T0 + 10 * SEC);
    hn_erased_digest(7, 's', S("sessBBBB1"), ds);
    hn_erased_add(&e, 7, ds, T0 + 5 * SEC);
    for (unsigned i = 0; i < 200; i++) {       /* others, to sort among */
        uint8_t o[HN_ERASED_DIGEST];
        char id[16];
        snprintf(id, sizeof(id), "other%u", i);
        hn_erased_digest(9, 'v', (hn_str){id, (uint32_t)strlen(id)}, o);
        hn_erased_add(&e, 9, o, T0);
    }
    assert_int_equal(e.n, 202);
    assert_int_equal(e.nwidgets, 2);
    /* the visitor: received at or before the erasure → erased; after → a new visit */
    assert_true(hn_erased_match(&e, 7, S("sessAAAA1"), S("user-42"), T0 + 10 * SEC));
    assert_true(hn_erased_match(&e, 7, S("sessAAAA1"), S("user-42"), T0));
    assert_false(hn_erased_match(&e, 7, S("sessAAAA1"), S("user-42"), T0 + 10 * SEC + 1));
    /* the session, whatever visitor id its record carries */
    assert_true(hn_erased_match(&e, 7, S("sessBBBB1"), S("someone"), T0 + 5 * SEC));
    assert_false(hn_erased_match(&e, 7, S("sessBBBB1"), S("someone"), T0 + 6 * SEC));
    /* the same ids in another widget, and another visitor: not erased */
    assert_false(hn_erased_match(&e, 8, S("sessBBBB1"), S("user-42"), T0));
    assert_false(hn_erased_match(&e, 7, S("sessCCCC1"), S("user-43"), T0));
    assert_true(hn_erased_match(&e, 9, S("x"), S("other150"), T0));
    /* a digest given again keeps the later time */
    hn_erased_add(&e, 7, d, T0 + 20 * SEC);
    hn_erased_add(&e, 7, d, T0 + 1 * SEC);
    assert_int_equal(e.n, 202);
    assert_true(hn_erased_match(&e, 7, S("sessAAAA1"), S("user-42"), T0 + 20 * SEC));

    /* in a batch: the erased visitor's records are left out of the rows and
     * the aggregates, counted; the later one and the other visitor's stay */
    hn_record a1 = rec(HN_T_PV, 31, "sessAAAA1", 1, T0 + 1 * SEC);
    hn_record a2 = rec(HN_T_PV, 32, "sessAAAA1", 2, T0 + 30 * SEC);
    hn_record o1 = rec(HN_T_PV, 33, "sessDDDD1", 1, T0 + 2 * SEC);
    a1.widget_id = a2.widget_id = o1.widget_id = 7;
    a1.b.vid = a2.b.vid = S("user-42");
    a1.b.u = a2.b.u = o1.b.u = S("https://ex.com/");
    hn_record entry[3] = {a1, a2, o1};
    hn_drain_batch b;
    packed p = {.n = 0};
    batch_start(&b);
    b.erased = &e;
    add_entry(&b, &p, entry, 3);
    hn_drain_batch_build(&b);
    assert_int_equal(b.nrecords, 2);
    assert_int_equal(b.nerased, 1);
    assert_int_equal(b.nsessions, 2);
    hn_drain_batch_free(&b);
    packed_free(&p);
    hn_erased_free(&e);
}

/* ---- the hash sets ------------------------------------------------------------------- */

static void test_sets(void **state) {
    (void)state;
    hn_seen_set s = {0};
    uint8_t id[16];
    mkid(id, 1);
    assert_false(hn_seen_has(&s, id));         /* empty, never allocated */
    for (unsigned i = 0; i < 10000; i++) {     /* grows past its first 4096 slots */
        mkid(id, i);
        assert_true(hn_seen_add(&s, id));
    }
    for (unsigned i = 0; i < 10000; i++) {
        mkid(id, i);
        assert_true(hn_seen_has(&s, id));
        assert_false(hn_seen_add(&s, id));
    }
    assert_int_equal(s.n, 10000);
    mkid(id, 10001);
    assert_false(hn_seen_has(&s, id));
    hn_seen_clear(&s);
    mkid(id, 5);
    assert_false(hn_seen_has(&s, id));
    hn_seen_free(&s);

    hn_kmap m = {0};
    bool fresh;
    assert_int_equal(hn_kmap_get(&m, 1, S("a"), &fresh), 0);
    assert_true(fresh);
    assert_int_equal(hn_kmap_get(&m, 1, S("b"), &fresh), 1);
    assert_true(fresh);
    assert_int_equal(hn_kmap_get(&m, 2, S("a"), &fresh), 2);
    assert_true(fresh);
    assert_int_equal(hn_kmap_get(&m, 1, (hn_str){NULL, 0}, &fresh), 3);
    assert_true(fresh);
    assert_int_equal(hn_kmap_get(&m, 1, S(""), &fresh), 3);   /* the same empty string */
    assert_false(fresh);
    assert_int_equal(hn_kmap_get(&m, 1, S("a"), &fresh), 0);
    assert_false(fresh);
    static char keys[5000][8];
    for (int i = 0; i < 5000; i++) {                          /* grows past 1024 */
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        hn_str k = {keys[i], (uint32_t)strlen(keys[i])};
        assert_int_equal(hn_kmap_get(&m, 9, k, &fresh), 4 + (size_t)i);
        assert_true(fresh);
    }
    for (int i = 0; i < 5000; i++) {
        hn_str k = {keys[i], (uint32_t)strlen(keys[i])};
        assert_int_equal(hn_kmap_get(&m, 9, k, &fresh), 4 + (size_t)i);
        assert_false(fresh);
    }
    assert_int_equal(hn_kmap_get(&m, 2, S("a"), &fresh), 2);
    hn_kmap_clear(&m);
    assert_int_equal(hn_kmap_get(&m, 9, S("k7"), &fresh), 0);
    assert_true(fresh);
    hn_kmap_free(&m);
}

static int setup(void **state) {
    (void)state;
    hn_log_min = HN_LOG_ERROR;   /* rejects warn; the table says why */
    return 0;
}

int main(void) {
    static const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_decode_mixed),
        cmocka_unit_test(test_aggregate_out_of_order),
        cmocka_unit_test(test_copy_rows),
        cmocka_unit_test(test_copy_text),
        cmocka_unit_test(test_redelivery),
        cmocka_unit_test(test_erased),
        cmocka_unit_test(test_sets),
    };
    return cmocka_run_group_tests_name("drain_batch", tests, setup, NULL) ? 1 : 0;
}
