/* test_presence.c: the Redis commands presence writes for each kind of
 * beacon — which fields, which counters, EXPIRE only at checkpoints, and the
 * per-widget ZADD/ZREM grouping of a flush. The RESP the module produces is
 * parsed back with hiredis' reader (a command is a valid RESP array). */
#include "collector/presence.h"

#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define WINDOW 300
#define SAFETY_TTL "10200"      /* 300 s × (2 × 16 + 2) */

typedef struct cmds {
    redisReply *v[4096];
    int n;
} cmds;

static void parse(hn_buf *b, uint32_t ncmds, cmds *out) {
    redisReader *r = redisReaderCreate();
    redisReaderFeed(r, b->p, b->len);
    out->n = 0;
    void *rep;
    while (redisReaderGetReply(r, &rep) == REDIS_OK && rep != NULL) out->v[out->n++] = rep;
    assert_int_equal((uint32_t)out->n, ncmds);
    redisReaderFree(r);
    hn_buf_reset(b);
}

static void free_cmds(cmds *c) {
    for (int i = 0; i < c->n; i++) freeReplyObject(c->v[i]);
    c->n = 0;
}

static const char *arg(const redisReply *c, size_t i) {
    return i < c->elements ? c->element[i]->str : NULL;
}

/* The value of field f in an HSET command, or NULL. */
static const char *hset_field(const redisReply *c, const char *f) {
    for (size_t i = 2; i + 1 < c->elements; i += 2)
        if (strcmp(c->element[i]->str, f) == 0) return c->element[i + 1]->str;
    return NULL;
}

static const redisReply *find(const cmds *c, const char *name, int nth) {
    for (int i = 0; i < c->n; i++)
        if (strcmp(arg(c->v[i], 0), name) == 0 && nth-- == 0) return c->v[i];
    return NULL;
}

static int count(const cmds *c, const char *name) {
    int n = 0;
    for (int i = 0; i < c->n; i++) n += strcmp(arg(c->v[i], 0), name) == 0;
    return n;
}

static hn_record rec(uint32_t w, const char *sid, const char *t, uint64_t q, uint64_t ms) {
    hn_record r;
    memset(&r, 0, sizeof(r));
    r.widget_id = w;
    r.recv_ts = ms * 1000;
    r.b.s = (hn_str){sid, (uint32_t)strlen(sid)};
    r.b.t = (hn_str){t, (uint32_t)strlen(t)};
    r.b.type = (uint8_t)hn_btype_parse(r.b.t);
    r.b.q = q;
    return r;
}

typedef struct fx {
    hn_presence *p;
    hn_buf b;
    uint32_t n;
    cmds c;
} fx;

static int setup(void **state) {
    fx *f = calloc(1, sizeof(*f));
    hn_presence_cfg cfg = {hn_presence_safety_ttl(WINDOW)};
    f->p = hn_presence_create(&cfg);
    hn_buf_init(&f->b, 1024);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fx *f = *state;
    free_cmds(&f->c);
    hn_presence_destroy(f->p);
    hn_buf_free(&f->b);
    free(f);
    return 0;
}

static void add(fx *f, const hn_record *r) {
    hn_presence_add(f->p, r, &f->b, &f->n);
}

static void flush_and_parse(fx *f) {
    hn_presence_flush(f->p, &f->b, &f->n);
    free_cmds(&f->c);
    parse(&f->b, f->n, &f->c);
    f->n = 0;
}

static void test_first_pageview(void **state) {
    fx *f = *state;
    hn_record r = rec(7, "sessAAAA1", "pv", 1, 1700000000123);
    r.b.u = HN_STR_LIT("https://ex.com/a");
    r.b.ti = HN_STR_LIT("Home");
    r.b.r = HN_STR_LIT("https://google.com/");
    r.ip = HN_STR_LIT("10.1.2.0");
    r.b.l = HN_STR_LIT("en-US");
    r.b.sw = 1920; r.b.sh = 1080; r.b.fields = HN_F_SW | HN_F_SH;
    add(f, &r);
    flush_and_parse(f);
    const redisReply *h = find(&f->c, "HSET", 0);
    assert_non_null(h);
    assert_string_equal(arg(h, 1), "hn:sess:{7}:sessAAAA1");
    assert_string_equal(hset_field(h, "last_seen"), "1700000000123");
    assert_string_equal(hset_field(h, "started"), "1700000000123");
    assert_string_equal(hset_field(h, "status"), "active");
    assert_string_equal(hset_field(h, "url"), "https://ex.com/a");
    assert_string_equal(hset_field(h, "title"), "Home");
    assert_string_equal(hset_field(h, "landing"), "https://ex.com/a");
    assert_string_equal(hset_field(h, "referrer"), "https://google.com/");
    assert_string_equal(hset_field(h, "ip"), "10.1.2.0");
    assert_string_equal(hset_field(h, "lang"), "en-US");
    assert_string_equal(hset_field(h, "screen"), "1920x1080");
    const redisReply *inc = find(&f->c, "HINCRBY", 0);
    assert_non_null(inc);
    assert_string_equal(arg(inc, 2), "pageviews");
    assert_string_equal(arg(inc, 3), "1");
    const redisReply *ex = find(&f->c, "EXPIRE", 0);
    assert_non_null(ex);
    assert_string_equal(arg(ex, 2), SAFETY_TTL);
    assert_int_equal(count(&f->c, "HSETNX"), 0);     /* q=1 sets started itself */
    const redisReply *z = find(&f->c, "ZADD", 0);
    assert_non_null(z);
    assert_string_equal(arg(z, 1), "hn:live:{7}");
    assert_string_equal(arg(z, 2), "1700000000123");
    assert_string_equal(arg(z, 3), "sessAAAA1");
    assert_int_equal(f->c.n, 4);     /* HSET, HINCRBY, EXPIRE, ZADD */
}

static void test_heartbeat_is_cheap(void **state) {
    fx *f = *state;
    hn_record r = rec(7, "sessBBBB1", "pv", 1, 1000);
    r.b.u = HN_STR_LIT("https://ex.com/");
    add(f, &r);
    flush_and_parse(f);
    hn_record hb = rec(7, "sessBBBB1", "hb", 2, 31000);
    hb.b.e = 30000;
    hb.b.fields = HN_F_E;
    add(f, &hb);
    flush_and_parse(f);
    /* a heartbeat: HINCRBY engaged_ms + its share of the ZADD; no HSET, no EXPIRE */
    assert_int_equal(f->c.n, 2);
    assert_int_equal(count(&f->c, "HSET"), 0);
    const redisReply *inc = find(&f->c, "HINCRBY", 0);
    assert_string_equal(arg(inc, 2), "engaged_ms");
    assert_string_equal(arg(inc, 3), "30000");
    assert_int_equal(count(&f->c, "EXPIRE"), 0);
    assert_string_equal(arg(find(&f->c, "ZADD", 0), 2), "31000");   /* last seen */
    /* q = 3..16 without e: nothing but the ZADD */
    for (uint64_t q = 3; q <= 16; q++) {
        hn_record hbq = rec(7, "sessBBBB1", "hb", q, 31000 + q * 30000);
        add(f, &hbq);
    }
    flush_and_parse(f);
    assert_int_equal(f->c.n, 1);
    assert_int_equal(count(&f->c, "ZADD"), 1);
    /* a hide is written (status idle), a show too */
    /* q = 17 is a checkpoint: safety TTL again, and the start if it was lost */
    hn_record hb17 = rec(7, "sessBBBB1", "hb", 17, 600000);
    add(f, &hb17);
    flush_and_parse(f);
    assert_int_equal(count(&f->c, "EXPIRE"), 1);
    assert_string_equal(arg(find(&f->c, "EXPIRE", 0), 2), SAFETY_TTL);
    assert_int_equal(count(&f->c, "HSETNX"), 1);
    const redisReply *h17 = find(&f->c, "HSET", 0);             /* checkpoint: the hash too */
    assert_non_null(h17);
    assert_string_equal(hset_field(h17, "status"), "active");
    assert_string_equal(hset_field(h17, "last_seen"), "600000");
}

static void test_first_beacon_lost(void **state) {
    fx *f = *state;
    hn_record r9 = rec(3, "sessCCCC1", "hb", 9, 5000);       /* no checkpoint: cheap */
    add(f, &r9);
    flush_and_parse(f);
    assert_int_equal(count(&f->c, "HSETNX"), 0);
    assert_int_equal(count(&f->c, "EXPIRE"), 0);
    hn_record r = rec(3, "sessCCCC1", "hb", 33, 6000);       /* checkpoint */
    r.ip = HN_STR_LIT("10.0.0.0");
    add(f, &r);
    flush_and_parse(f);
    const redisReply *nx = find(&f->c, "HSETNX", 0);
    assert_non_null(nx);
    assert_string_equal(arg(nx, 2), "started");
    assert_string_equal(arg(nx, 3), "6000");
    assert_string_equal(hset_field(find(&f->c, "HSET", 0), "ip"), "10.0.0.0");
    assert_int_equal(count(&f->c, "EXPIRE"), 1);
}

/* The seed's routes (proto/seed.h): every beacon a checkpoint, none q = 1; a
 * page view sets landing and referrer only where the session has none. */
static void test_seed_pageview(void **state) {
    fx *f = *state;
    hn_record r = rec(5, "seedsess01", "pv", 1700000000000ull * 16 + 1, 7000);
    r.b.fields |= HN_F_SEED;
    r.b.u = HN_STR_LIT("https://ex.com/land");
    r.b.r = HN_STR_LIT("https://ref.example/");
    add(f, &r);
    flush_and_parse(f);
    const redisReply *h = find(&f->c, "HSET", 0);
    assert_null(hset_field(h, "started"));          /* not q = 1: HSETNX below */
    assert_string_equal(hset_field(h, "url"), "https://ex.com/land");
    assert_int_equal(count(&f->c, "HSETNX"), 3);    /* started, landing, referrer */
    assert_string_equal(arg(find(&f->c, "HSETNX", 0), 2), "started");
    assert_string_equal(arg(find(&f->c, "HSETNX", 1), 2), "landing");
    assert_string_equal(arg(find(&f->c, "HSETNX", 1), 3), "https://ex.com/land");
    assert_string_equal(arg(find(&f->c, "HSETNX", 2), 2), "referrer");
    assert_int_equal(count(&f->c, "EXPIRE"), 1);
    hn_record hb = rec(5, "seedsess01", "hb", 1700000000030ull * 16 + 1, 37000);
    hb.b.fields |= HN_F_SEED;
    add(f, &hb);
    flush_and_parse(f);
    assert_int_equal(count(&f->c, "HSETNX"), 1);    /* a heartbeat: started only */
}

static void test_hide_end_and_grouping(void **state) {
    fx *f = *state;
    hn_record a = rec(1, "sessDDDD1", "hide", 4, 100);
    hn_record b = rec(1, "sessDDDD2", "end", 5, 101);
    hn_record c = rec(1, "sessDDDD3", "pv", 1, 102);
    c.b.u = HN_STR_LIT("/x");
    hn_record d = rec(2, "sessDDDD4", "show", 2, 103);
    hn_record e1 = rec(1, "sessDDDD5", "end", 3, 104);      /* ends, then another tab goes on */
    hn_record e2 = rec(1, "sessDDDD5", "hb", 4, 105);
    hn_record g1 = rec(1, "sessDDDD6", "hb", 3, 106);       /* goes on, then ends */
    hn_record g2 = rec(1, "sessDDDD6", "end", 4, 107);
    const hn_record *all[] = {&a, &b, &c, &d, &e1, &e2, &g1, &g2};
    for (size_t i = 0; i < 8; i++) add(f, all[i]);
    flush_and_parse(f);
    assert_string_equal(hset_field(find(&f->c, "HSET", 0), "status"), "idle");
    assert_string_equal(hset_field(find(&f->c, "HSET", 0), "q"), "4");
    /* an end writes no HSET of its own off a checkpoint: its script does */
    assert_string_equal(hset_field(find(&f->c, "HSET", 1), "url"), "/x");
    assert_int_equal(count(&f->c, "HSET"), 3);   /* hide, pv, show */
    assert_int_equal(count(&f->c, "ZADD"), 2);   /* the live set of each widget */
    assert_int_equal(count(&f->c, "ZREM"), 0);
    const redisReply *z1 = find(&f->c, "ZADD", 0), *z2 = find(&f->c, "ZADD", 1);
    assert_string_equal(arg(z1, 1), "hn:live:{1}");
    /* widget 1 adds DDDD1 (hidden is still live), DDDD3, DDDD5 (hb after
     * end) and DDDD6 (its hb; its later end goes to the script) */
    assert_int_equal(z1->elements, 2 + 2 * 4);
    assert_string_equal(arg(z2, 1), "hn:live:{2}");
    assert_int_equal(z2->elements, 4);
    /* one end script each for DDDD2 and DDDD6, after the ZADD */
    assert_int_equal(count(&f->c, "EVAL"), 2);
    const redisReply *e[2] = {find(&f->c, "EVAL", 0), find(&f->c, "EVAL", 1)};
    const char *want_q[2] = {"5", "4"}, *want_ms[2] = {"101", "107"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(e[i]->elements, 9);
        assert_string_equal(arg(e[i], 2), "3");
        assert_string_equal(arg(e[i], 3), "hn:live:{1}");
        assert_string_equal(arg(e[i], 4), "hn:ended:{1}");
        assert_string_equal(arg(e[i], 5), i == 0 ? "hn:sess:{1}:sessDDDD2" : "hn:sess:{1}:sessDDDD6");
        assert_string_equal(arg(e[i], 6), i == 0 ? "sessDDDD2" : "sessDDDD6");
        assert_string_equal(arg(e[i], 7), want_q[i]);
        assert_string_equal(arg(e[i], 8), want_ms[i]);
    }
    for (int i = 0; i < f->c.n; i++)
        if (strcmp(arg(f->c.v[i], 0), "EVAL") == 0) {
            for (int k = i + 1; k < f->c.n; k++)
                assert_false(strcmp(arg(f->c.v[k], 0), "ZADD") == 0 &&
                             strcmp(arg(f->c.v[k], 1), "hn:live:{1}") == 0);
            break;
        }
}

/* Beacons of one session out of order within a flush: the end script only
 * for an end above every other beacon of the session; a checkpoint end
 * writes its fixed fields but no status. */
static void test_end_order_in_flush(void **state) {
    fx *f = *state;
    hn_record pv = rec(3, "sessFFFF1", "pv", 7, 200);
    pv.b.u = HN_STR_LIT("/next");
    hn_record old_end = rec(3, "sessFFFF1", "end", 6, 201);   /* the page before */
    hn_record pv2 = rec(3, "sessFFFF2", "pv", 7, 202);
    pv2.b.u = HN_STR_LIT("/a");
    hn_record end2 = rec(3, "sessFFFF2", "end", 8, 203);      /* ends after its pv */
    hn_record cp_end = rec(3, "sessFFFF3", "end", 17, 204);   /* a checkpoint */
    cp_end.ip = HN_STR_LIT("10.1.0.0");
    const hn_record *all[] = {&pv, &old_end, &pv2, &end2, &cp_end};
    for (size_t i = 0; i < 5; i++) add(f, all[i]);
    flush_and_parse(f);
    assert_string_equal(hset_field(find(&f->c, "HSET", 0), "q"), "7");
    const redisReply *cp = find(&f->c, "HSET", 2);
    assert_string_equal(arg(cp, 1), "hn:sess:{3}:sessFFFF3");
    assert_string_equal(hset_field(cp, "ip"), "10.1.0.0");
    assert_null(hset_field(cp, "status"));
    assert_null(hset_field(cp, "q"));
    assert_int_equal(count(&f->c, "HSET"), 3);
    const redisReply *z = find(&f->c, "ZADD", 0);
    assert_int_equal(z->elements, 2 + 2 * 2);               /* FFFF1, FFFF2 */
    assert_int_equal(count(&f->c, "EVAL"), 2);              /* FFFF2, FFFF3 */
    assert_string_equal(arg(find(&f->c, "EVAL", 0), 6), "sessFFFF2");
    assert_string_equal(arg(find(&f->c, "EVAL", 0), 7), "8");
    assert_string_equal(arg(find(&f->c, "EVAL", 1), 6), "sessFFFF3");
}

static void test_identify_and_chat(void **state) {
    fx *f = *state;
    hn_record id = rec(5, "sessEEEE1", "id", 2, 10);
    id.b.nm = HN_STR_LIT("Ada");
    id.b.em = HN_STR_LIT("ada@example.com");
    hn_record open = rec(5, "sessEEEE1", "ev", 3, 11);
    open.b.n = HN_STR_LIT("chat_opened");
    hn_record msg = rec(5, "sessEEEE1", "ev", 4, 12);
    msg.b.n = HN_STR_LIT("chat_message_sent");
    hn_record click = rec(5, "sessEEEE1", "ev", 5, 13);
    click.b.n = HN_STR_LIT("click");
    add(f, &id);
    add(f, &open);
    add(f, &msg);
    add(f, &click);
    flush_and_parse(f);
    assert_string_equal(hset_field(find(&f->c, "HSET", 0), "name"), "Ada");
    assert_string_equal(hset_field(find(&f->c, "HSET", 0), "email"), "ada@example.com");
    assert_string_equal(hset_field(find(&f->c, "HSET", 1), "has_chatted"), "1");
    assert_string_equal(hset_field(find(&f->c, "HSET", 2), "has_chatted"), "1");
    assert_null(hset_field(find(&f->c, "HSET", 3), "has_chatted"));
    const redisReply *inc = find(&f->c, "HINCRBY", 0);
    assert_non_null(inc);
    assert_string_equal(arg(inc, 2), "messages_sent");
    assert_int_equal(count(&f->c, "ZADD"), 1);
    /* ZADD applies its pairs in order, so the member ends with the latest score */
    const redisReply *z = find(&f->c, "ZADD", 0);
    assert_int_equal((z->elements - 2) % 2, 0);
    for (size_t i = 3; i < z->elements; i += 2) assert_string_equal(arg(z, i), "sessEEEE1");
    assert_string_equal(arg(z, z->elements - 2), "13");
}

/* Start Chat (docs/CHAT.md §3): a visitor's message counts and moves the
 * state; the invitation's fate sets only the state (accepted: has_chatted). */
static void test_chat_beacons(void **state) {
    static const struct { const char *t, *n, *state, *has_chatted; } cases[] = {
        {"ev", "invite_shown", "shown", NULL},
        {"ev", "invite_accepted", "accepted", "1"},
        {"ev", "invite_declined", "declined", NULL},
        {"ev", "chat_closed", "closed", NULL},
        {"ev", "click", NULL, NULL},
        {"msg", "", "chatting", "1"},
    };
    fx *f = *state;
    const char *ci = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hn_record r = rec(6, "sessCHAT1", cases[i].t, 2 + i, 20);
        r.b.n = (hn_str){cases[i].n, (uint32_t)strlen(cases[i].n)};
        r.b.ci = (hn_str){ci, 36};
        if (r.b.type == HN_T_MSG) r.b.x = HN_STR_LIT("hello");
        add(f, &r);
        flush_and_parse(f);
        const redisReply *h = find(&f->c, "HSET", 0);
        assert_non_null(h);
        const char *st = hset_field(h, "chat_state"), *hc = hset_field(h, "has_chatted");
        if (cases[i].state) assert_string_equal(st, cases[i].state);
        else assert_null(st);
        if (cases[i].has_chatted) assert_string_equal(hc, cases[i].has_chatted);
        else assert_null(hc);
        const redisReply *inc = find(&f->c, "HINCRBY", 0);
        if (r.b.type == HN_T_MSG) {
            assert_string_equal(hset_field(h, "chat"), ci);
            assert_non_null(inc);
            assert_string_equal(arg(inc, 2), "messages_sent");
            assert_string_equal(arg(inc, 3), "1");
        } else {
            assert_null(hset_field(h, "chat"));
            assert_null(inc);
        }
        free_cmds(&f->c);
    }
}

/* Many widgets interleaved in one flush: one ZADD per widget holding exactly
 * its own members, an end script only where a session ended. */
static void test_many_widgets_grouped(void **state) {
    fx *f = *state;
    enum { W = 300, S = 3 };
    static char sids[W * S][16];
    static hn_record rs[W * S];
    for (int s = 0; s < S; s++)
        for (int w = 0; w < W; w++) {
            int i = s * W + w;
            snprintf(sids[i], sizeof sids[i], "sess%05d_%d", w, s);
            bool end = (w % 7 == 0) && s == 2;
            rs[i] = rec((uint32_t)(1000 + w * 13), sids[i], end ? "end" : "hb", 2, 100 + i);
            add(f, &rs[i]);
        }
    flush_and_parse(f);
    int zadd_live = 0, zrem = 0;
    for (int i = 0; i < f->c.n; i++) {
        const redisReply *c = f->c.v[i];
        unsigned w;
        if (strcmp(arg(c, 0), "EVAL") == 0) {
            zrem++;
            assert_int_equal(sscanf(arg(c, 3), "hn:live:{%u}", &w), 1);
            assert_int_equal((w - 1000) / 13 % 7, 0);
            assert_int_equal(c->elements, 9);
        }
        if (strcmp(arg(c, 0), "ZADD") != 0 || sscanf(arg(c, 1), "hn:live:{%u}", &w) != 1) continue;
        zadd_live++;
        int wi = (int)(w - 1000) / 13;
        size_t members = (c->elements - 2) / 2;
        assert_int_equal(members, wi % 7 == 0 ? S - 1 : S);
        for (size_t m = 3; m < c->elements; m += 2) {
            char want[16];
            snprintf(want, sizeof want, "sess%05d_", wi);
            assert_int_equal(strncmp(arg(c, m), want, 10), 0);
        }
    }
    assert_int_equal(zadd_live, W);
    assert_int_equal(zrem, (W + 6) / 7);
}

/* Widgets whose hashes share a probe chain, flush after flush: each flush
 * must write every widget's ZADD (the group map is emptied between flushes
 * without cutting a chain; a stale slot once lost a widget's ZADD and then
 * wrote past the group buffer). Pairs collide in the 16- and 64-slot maps. */
static void test_colliding_widgets_every_flush(void **state) {
    fx *f = *state;
    static const uint32_t pairs[][2] = {{1, 17}, {1, 65}, {3, 19}, {2, 34}};
    for (size_t pi = 0; pi < HN_ARRAY_LEN(pairs); pi++) {
        for (int round = 0; round < 120; round++) {
            static char sids[40][24];
            static hn_record rs[40];
            int nrec = round % 2 ? 2 : 32;           /* small and 64-slot maps */
            for (int i = 0; i < nrec; i++) {
                snprintf(sids[i], sizeof sids[i], "sess%03d_%04d", i, round);
                rs[i] = rec(pairs[pi][i == 0 ? 0 : 1], sids[i], "hb", 2, 1000 + (uint64_t)round);
                add(f, &rs[i]);
            }
            flush_and_parse(f);
            bool seen[2] = {false, false};
            for (int i = 0; i < f->c.n; i++) {
                unsigned w;
                const redisReply *c = f->c.v[i];
                if (strcmp(arg(c, 0), "ZADD") != 0 || sscanf(arg(c, 1), "hn:live:{%u}", &w) != 1)
                    continue;
                for (int k = 0; k < 2; k++)
                    if (w == pairs[pi][k]) {
                        assert_false(seen[k]);
                        seen[k] = true;
                        assert_int_equal((c->elements - 2) / 2, k == 0 ? 1 : nrec - 1);
                    }
            }
            assert_true(seen[0]);
            assert_true(seen[1]);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_pageview, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_is_cheap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_beacon_lost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seed_pageview, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hide_end_and_grouping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_order_in_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_identify_and_chat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chat_beacons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_widgets_grouped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_colliding_widgets_every_flush, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
