/* test_rsplit.c: one pipeline split by node (common/rsplit.h) over the slot
 * map of a real 3 + 3 cluster (the CLUSTER SLOTS reply test_rmap.c reads):
 * a collector tick (presence, an EVAL, an XADD, a MULTI … EXEC on the bans,
 * a PING) gets the right node per command in command order; transactions
 * are one unit (CROSSSLOT when their keys span slots); a slot without a
 * master gives HN_RMAP_NONE; malformed groups and count mismatches are
 * refused with a reason. */
#include "common/rsplit.h"
#include "common/buf.h"
#include "common/hn.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* CLUSTER SLOTS of a 3 + 3 cluster on loopback (test_rmap.c): node 0 =
 * :31001 serves 0..5460, node 2 = :31002 5461..10922, node 4 = :31003
 * 10923..16383; nodes 1, 3, 5 are their replicas. */
static const char real[] =
    "*3\r\n"
    "*4\r\n:0\r\n:5460\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:31001\r\n$40\r\n00f16e97fb3fe757318d87c24458ce3b70b4202a\r\n*0\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:31006\r\n$40\r\na114e1d295c665ee28c88f6e8f1033c7bb339593\r\n*0\r\n"
    "*4\r\n:5461\r\n:10922\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:31002\r\n$40\r\n36f02976f2a17e5fa6816d25d018109b5314287c\r\n*0\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:31004\r\n$40\r\nd950a86296009d66d526d43854b0f08451aaf84b\r\n*0\r\n"
    "*4\r\n:10923\r\n:16383\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:31003\r\n$40\r\n26a20492f251d5a89f3c9654870cf03374516b1b\r\n*0\r\n"
    "*4\r\n$9\r\n127.0.0.1\r\n:31005\r\n$40\r\n0936618aec29417bdb40ee8ffd4211816bc10481\r\n*0\r\n";

static hn_rmap *map_of(const char *resp, size_t len) {
    redisReader *rd = redisReaderCreate();
    void *r = NULL;
    assert_int_equal(redisReaderFeed(rd, resp, len), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
    assert_non_null(r);
    redisReaderFree(rd);
    hn_rmap *m = calloc(1, sizeof(*m));
    char err[200];
    assert_int_equal(hn_rmap_parse(r, "127.0.0.1", m, err, sizeof(err)), HN_OK);
    freeReplyObject(r);
    return m;
}

/* argv as RESP, appended to b */
static void cmd(hn_buf *b, int argc, ...) {
    va_list ap;
    va_start(ap, argc);
    hn_resp_cmd(b, (unsigned)argc);
    for (int i = 0; i < argc; i++) hn_resp_str(b, va_arg(ap, const char *));
    va_end(ap);
}

static void test_tick(void **state) {
    (void)state;
    hn_rmap *m = map_of(real, sizeof(real) - 1);
    assert_int_equal(m->nodes[0].port, 31001);
    assert_int_equal(m->nodes[2].port, 31002);
    assert_int_equal(m->nodes[4].port, 31003);
    hn_buf b;
    hn_buf_init(&b, 512);
    cmd(&b, 6, "HSET", "hn:sess:{7}:abc", "status", "live", "url", "/");               /* {7}: 1716 */
    cmd(&b, 4, "ZADD", "hn:live:{7}", "1700000000000", "abc");
    cmd(&b, 7, "EVAL", "return 1", "3", "hn:live:{9}", "hn:ended:{9}", "hn:sess:{9}:x", "x");  /* {9}: 10106 */
    cmd(&b, 8, "XADD", "hn:stream:0", "MAXLEN", "~", "100", "*", "r", "blob");       /* 1664 */
    cmd(&b, 1, "MULTI");
    cmd(&b, 2, "DEL", "hn:bans:{3}");                                                   /* {3}: 1584 */
    cmd(&b, 3, "SADD", "hn:bans:{3}", "v:x");
    cmd(&b, 1, "EXEC");
    cmd(&b, 1, "PING");
    cmd(&b, 2, "GET", "foo");                                                           /* 12182 */
    enum { N = 10 };
    const int slots[N] = { 1716, 1716, 10106, 1664, 1584, 1584, 1584, 1584, -1, 12182 };
    const uint8_t nodes[N] = { 0, 0, 2, 0, 0, 0, 0, 0, 4, 4 };
    hn_rsplit_cmd out[N];
    char err[200] = "";
    /* keyless commands to the node of slot 16000 (node 4) */
    if (hn_rsplit(b.p, b.len, N, m, 16000, out, err, sizeof(err)) != HN_OK) fail_msg("%s", err);
    uint32_t off = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(out[i].off, off);
        off += out[i].len;
        if (out[i].slot != slots[i] || out[i].node != nodes[i])
            fail_msg("command %d: slot %d node %d, want %d %d", i, out[i].slot, out[i].node, slots[i], nodes[i]);
        assert_int_equal(out[i].flags & HN_RCMD_CROSSSLOT, 0);
    }
    assert_int_equal(off, b.len);
    assert_true(out[4].flags & HN_RCMD_MULTI);
    assert_true(out[7].flags & HN_RCMD_EXEC);
    assert_true(out[8].flags & HN_RCMD_KEYLESS);
    assert_true(out[9].flags & HN_RCMD_READONLY);
    assert_memory_equal(b.p + out[2].off, "*7\r\n$4\r\nEVAL", 12);
    /* keyless to slot 0: the PING moves to node 0, nothing else */
    assert_int_equal(hn_rsplit(b.p, b.len, N, m, 0, out, err, sizeof(err)), HN_OK);
    for (int i = 0; i < N; i++) assert_int_equal(out[i].node, i == 8 ? 0 : nodes[i]);
    hn_buf_free(&b);
    free(m);
}

static void test_blocks(void **state) {
    (void)state;
    hn_rmap *m = map_of(real, sizeof(real) - 1);
    hn_buf b;
    hn_buf_init(&b, 512);
    hn_rsplit_cmd out[16];
    char err[200];

    /* keys over two slots in one block: the first keyed command's node, CROSSSLOT on all */
    cmd(&b, 1, "multi");
    cmd(&b, 3, "SET", "foo", "1");           /* 12182: node 4 */
    cmd(&b, 3, "SET", "hn:bans:{3}", "1");   /* 1584: node 0 */
    cmd(&b, 1, "exec");
    cmd(&b, 2, "GET", "hn:bans:{3}");        /* after the block: its own node */
    assert_int_equal(hn_rsplit(b.p, b.len, 5, m, 0, out, err, sizeof(err)), HN_OK);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(out[i].node, 4);
        assert_int_equal(out[i].slot, 12182);
        assert_true(out[i].flags & HN_RCMD_CROSSSLOT);
    }
    assert_int_equal(out[4].node, 0);
    assert_int_equal(out[4].flags & HN_RCMD_CROSSSLOT, 0);

    /* keyless commands before the first key, a DISCARD, one slot: no CROSSSLOT */
    hn_buf_reset(&b);
    cmd(&b, 1, "MULTI");
    cmd(&b, 1, "PING");
    cmd(&b, 3, "SADD", "hn:bans:{9}", "v:y");
    cmd(&b, 2, "DEL", "hn:bans:{9}");
    cmd(&b, 1, "DISCARD");
    assert_int_equal(hn_rsplit(b.p, b.len, 5, m, 0, out, err, sizeof(err)), HN_OK);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(out[i].node, 2);
        assert_int_equal(out[i].slot, 10106);
        assert_int_equal(out[i].flags & HN_RCMD_CROSSSLOT, 0);
    }

    /* a block without a key goes where keyless commands go */
    hn_buf_reset(&b);
    cmd(&b, 1, "MULTI");
    cmd(&b, 1, "PING");
    cmd(&b, 1, "EXEC");
    assert_int_equal(hn_rsplit(b.p, b.len, 3, m, 12000, out, err, sizeof(err)), HN_OK);
    for (int i = 0; i < 3; i++) assert_true(out[i].slot == -1 && out[i].node == 4);

    /* a cross-slot command inside marks the block; a nested MULTI stays in it */
    hn_buf_reset(&b);
    cmd(&b, 1, "MULTI");
    cmd(&b, 1, "MULTI");
    cmd(&b, 3, "DEL", "a", "b");
    cmd(&b, 1, "EXEC");
    assert_int_equal(hn_rsplit(b.p, b.len, 4, m, 0, out, err, sizeof(err)), HN_OK);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(out[i].slot, 15495);                                /* "a" */
        assert_true(out[i].flags & HN_RCMD_CROSSSLOT);
    }
    hn_buf_free(&b);
    free(m);
}

static void test_unassigned(void **state) {
    (void)state;
    /* slots 0..99 on one node, the rest without a master */
    static const char resp[] = "*1\r\n*3\r\n:0\r\n:99\r\n*2\r\n$9\r\n127.0.0.1\r\n:7001\r\n";
    hn_rmap *m = map_of(resp, sizeof(resp) - 1);
    hn_buf b;
    hn_buf_init(&b, 128);
    cmd(&b, 2, "GET", "foo");
    cmd(&b, 1, "PING");
    hn_rsplit_cmd out[2];
    char err[200];
    assert_int_equal(hn_rsplit(b.p, b.len, 2, m, 50, out, err, sizeof(err)), HN_OK);
    assert_int_equal(out[0].node, HN_RMAP_NONE);
    assert_int_equal(out[1].node, 0);
    assert_int_equal(hn_rsplit(b.p, b.len, 2, m, 100, out, err, sizeof(err)), HN_OK);
    assert_int_equal(out[1].node, HN_RMAP_NONE);
    hn_buf_free(&b);
    free(m);
}

static void test_errors(void **state) {
    (void)state;
    hn_rmap *m = map_of(real, sizeof(real) - 1);
    hn_buf b;
    hn_buf_init(&b, 128);
    cmd(&b, 2, "GET", "foo");
    cmd(&b, 1, "PING");
    hn_rsplit_cmd out[4];
    char err[200];
    static const struct { uint32_t n; size_t cut; int keyless; const char *has; } bad[] = {
        { 3, 0, 0, "holds 2 commands, not 3" },   /* fewer commands than said */
        { 1, 0, 0, "bytes after" },               /* more */
        { 2, 3, 0, "cut short" },                 /* the last one cut short */
        { 2, 0, -1, "keyless slot" },
        { 2, 0, 16384, "keyless slot" },
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(bad); i++) {
        err[0] = 0;
        int rc = hn_rsplit(b.p, b.len - bad[i].cut, bad[i].n, m, bad[i].keyless, out, err, sizeof(err));
        if (rc != HN_ERR || strstr(err, bad[i].has) == NULL) fail_msg("case %zu: %d, '%s'", i, rc, err);
    }
    /* not RESP; a MULTI without its EXEC */
    hn_buf_reset(&b);
    cmd(&b, 1, "PING");
    hn_buf_append(&b, "PING\r\n", 6);
    assert_int_equal(hn_rsplit(b.p, b.len, 2, m, 0, out, err, sizeof(err)), HN_ERR);
    assert_non_null(strstr(err, "command 1 (byte 14) is not a RESP command"));
    hn_buf_reset(&b);
    cmd(&b, 1, "MULTI");
    cmd(&b, 2, "DEL", "k");
    assert_int_equal(hn_rsplit(b.p, b.len, 2, m, 0, out, err, sizeof(err)), HN_ERR);
    assert_non_null(strstr(err, "no EXEC"));
    /* no room for the reason: still HN_ERR */
    assert_int_equal(hn_rsplit(b.p, b.len, 2, m, 0, out, NULL, 0), HN_ERR);
    /* an empty group */
    assert_int_equal(hn_rsplit(b.p, 0, 0, m, 0, out, err, sizeof(err)), HN_OK);
    hn_buf_free(&b);
    free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tick),
        cmocka_unit_test(test_blocks),
        cmocka_unit_test(test_unassigned),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
