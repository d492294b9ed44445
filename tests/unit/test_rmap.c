/* test_rmap.c: the slot map (common/rmap.h) read from a CLUSTER SLOTS
 * reply that a real 3 + 3 cluster (redis-server 7.0.15 on loopback, made by
 * redis-cli --cluster create) answered, and from made-up replies: an empty
 * endpoint (the host asked), a "?" endpoint (slots unassigned), replies of
 * another shape; a MOVED update. */
#include "common/rmap.h"
#include "common/hn.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* CLUSTER SLOTS of the 3 + 3 cluster, byte for byte */
static const char real[] =
    "*3\r\n"
    "*4\r\n"
    ":0\r\n"
    ":5460\r\n"
    "*4\r\n"
    "$9\r\n"
    "127.0.0.1\r\n"
    ":31001\r\n"
    "$40\r\n"
    "00f16e97fb3fe757318d87c24458ce3b70b4202a\r\n"
    "*0\r\n"
    "*4\r\n"
    "$9\r\n"
    "127.0.0.1\r\n"
    ":31006\r\n"
    "$40\r\n"
    "a114e1d295c665ee28c88f6e8f1033c7bb339593\r\n"
    "*0\r\n"
    "*4\r\n"
    ":5461\r\n"
    ":10922\r\n"
    "*4\r\n"
    "$9\r\n"
    "127.0.0.1\r\n"
    ":31002\r\n"
    "$40\r\n"
    "36f02976f2a17e5fa6816d25d018109b5314287c\r\n"
    "*0\r\n"
    "*4\r\n"
    "$9\r\n"
    "127.0.0.1\r\n"
    ":31004\r\n"
    "$40\r\n"
    "d950a86296009d66d526d43854b0f08451aaf84b\r\n"
    "*0\r\n"
    "*4\r\n"
    ":10923\r\n"
    ":16383\r\n"
    "*4\r\n"
    "$9\r\n"
    "127.0.0.1\r\n"
    ":31003\r\n"
    "$40\r\n"
    "26a20492f251d5a89f3c9654870cf03374516b1b\r\n"
    "*0\r\n"
    "*4\r\n"
    "$9\r\n"
    "127.0.0.1\r\n"
    ":31005\r\n"
    "$40\r\n"
    "0936618aec29417bdb40ee8ffd4211816bc10481\r\n"
    "*0\r\n";

static redisReply *reply_of(const char *resp, size_t len) {
    redisReader *rd = redisReaderCreate();
    void *r = NULL;
    assert_int_equal(redisReaderFeed(rd, resp, len), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
    assert_non_null(r);
    redisReaderFree(rd);
    return r;
}

static void test_real_cluster(void **state) {
    (void)state;
    redisReply *r = reply_of(real, sizeof(real) - 1);
    hn_rmap *m = calloc(1, sizeof(*m));
    char err[200];
    assert_int_equal(hn_rmap_parse(r, "127.0.0.1", m, err, sizeof(err)), HN_OK);
    assert_int_equal(m->nnodes, 6);
    assert_int_equal(m->unassigned, 0);
    int masters = 0;
    for (int i = 0; i < m->nnodes; i++) {
        masters += m->nodes[i].master < 0;
        assert_int_equal(strlen(m->nodes[i].id), 40);
        assert_string_equal(m->nodes[i].host, "127.0.0.1");
    }
    assert_int_equal(masters, 3);
    /* the three ranges of redis-cli --cluster create, on three masters */
    int a = hn_rmap_master(m, 0), b = hn_rmap_master(m, 5461), c = hn_rmap_master(m, 16383);
    assert_true(a >= 0 && b >= 0 && c >= 0 && a != b && b != c && a != c);
    assert_int_equal(hn_rmap_master(m, 5460), a);
    assert_int_equal(hn_rmap_master(m, 10922), b);
    assert_int_equal(hn_rmap_master(m, 10923), c);
    assert_int_equal(hn_rmap_master(m, hn_slot("foo", 3)), c);       /* 12182 */
    /* a MOVED: slot 0 now on the node of slot 5461 */
    assert_int_equal(hn_rmap_moved(m, 0, m->nodes[b].host, m->nodes[b].port), b);
    assert_int_equal(hn_rmap_master(m, 0), b);
    /* a MOVED to a node not in the map: added */
    int n = hn_rmap_moved(m, 1, "127.0.0.9", 7000);
    assert_int_equal(n, 6);
    assert_int_equal(hn_rmap_master(m, 1), 6);
    free(m);
    freeReplyObject(r);
}

static void test_made_up(void **state) {
    (void)state;
    /* [0..99] on "" (the host asked), [100..199] on "?", nothing after */
    static const char resp[] =
        "*2\r\n"
        "*3\r\n:0\r\n:99\r\n*3\r\n$0\r\n\r\n:7001\r\n$40\r\n0123456789012345678901234567890123456789\r\n"
        "*3\r\n:100\r\n:199\r\n*2\r\n$1\r\n?\r\n:7002\r\n";
    redisReply *r = reply_of(resp, sizeof(resp) - 1);
    hn_rmap *m = calloc(1, sizeof(*m));
    char err[200];
    assert_int_equal(hn_rmap_parse(r, "10.1.2.3", m, err, sizeof(err)), HN_OK);
    assert_int_equal(m->nnodes, 1);
    assert_string_equal(m->nodes[0].host, "10.1.2.3");
    assert_int_equal(m->nodes[0].port, 7001);
    assert_int_equal(hn_rmap_master(m, 99), 0);
    assert_int_equal(hn_rmap_master(m, 100), -1);
    assert_int_equal(m->unassigned, HN_SLOTS - 100);
    freeReplyObject(r);

    /* other shapes: refused with a reason */
    static const char *const bad[] = {
        ":1\r\n",                                                  /* not an array */
        "*1\r\n*2\r\n:0\r\n:1\r\n",                            /* no master */
        "*1\r\n*3\r\n:5\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n",  /* start > end */
        "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n", /* past the last slot */
        "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:0\r\n",  /* port 0 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = reply_of(bad[i], strlen(bad[i]));
        err[0] = 0;
        if (hn_rmap_parse(r, "h", m, err, sizeof(err)) != HN_ERR) fail_msg("bad reply %zu accepted", i);
        assert_true(strncmp(err, "CLUSTER SLOTS:", 14) == 0);
        freeReplyObject(r);
    }
    free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_cluster),
        cmocka_unit_test(test_made_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
