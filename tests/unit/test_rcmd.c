/* test_rcmd.c: the RESP command scanner (common/rcmd.h) — the first key
 * and flags of each command shape (EVAL numkeys 0 and 3, XREADGROUP with
 * options, MSET, DEL across slots and in one tag, the subcommand commands,
 * transactions, keyless ones), every spec of the table found in any case,
 * HN_AGAIN at every truncation point of a collector tick's pipeline,
 * HN_ERR cases, the collector's own RESP writer (common/buf.h) against
 * hiredis's redisFormatCommandArgv byte for byte, and random commands
 * formatted by hiredis scanned back to their argc, length and key. */
#include "common/rcmd.h"
#include "common/buf.h"
#include "common/hn.h"
#include "common/rslot.h"

#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define ARGV(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* argv (NULL-terminated C strings) as hiredis formats it; free() it. */
static char *fmt(const char *const *argv, size_t *len) {
    int argc = 0;
    size_t lens[64];
    while (argv[argc]) {
        lens[argc] = strlen(argv[argc]);
        argc++;
    }
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, argc, (const char **)argv, lens);
    assert_true(n > 0);
    *len = (size_t)n;
    return cmd;
}

static int scan_argv(const char *const *argv, hn_rcmd *c) {
    size_t len;
    char *cmd = fmt(argv, &len);
    int rc = hn_rcmd_scan(cmd, len, c);
    if (rc == HN_OK) {
        assert_int_equal(c->len, len);
        assert_true(c->name > cmd && c->name + c->namelen <= cmd + len);
        assert_true(c->key == NULL || (c->key > cmd && c->key + c->keylen <= cmd + len));
        /* key and name point into cmd: copy them out before it goes */
        static char name[64], key[256];
        snprintf(name, sizeof(name), "%.*s", (int)c->namelen, c->name);
        snprintf(key, sizeof(key), "%.*s", (int)c->keylen, c->key ? c->key : "");
        c->name = name;
        c->key = c->key ? key : NULL;
    }
    free(cmd);
    return rc;
}

typedef struct shape {
    const char *const *argv;
    const char        *key;       /* NULL: keyless */
    unsigned           flags;     /* exactly */
} shape;

static void test_first_keys(void **state) {
    (void)state;
    enum { RO = HN_RCMD_READONLY, KL = HN_RCMD_KEYLESS, XS = HN_RCMD_CROSSSLOT };
    const shape shapes[] = {
        { ARGV("GET", "foo"), "foo", RO },
        { ARGV("get", "foo"), "foo", RO },
        { ARGV("GET"), NULL, RO | KL },                                   /* no key: Redis answers the error */
        { ARGV("HSET", "hn:sess:{7}:abc", "status", "live", "url", "/"), "hn:sess:{7}:abc", 0 },
        { ARGV("ZADD", "hn:live:{7}", "1700000000000", "abc"), "hn:live:{7}", 0 },
        { ARGV("XADD", "hn:stream:0", "MAXLEN", "~", "100", "*", "r", "blob"), "hn:stream:0", 0 },
        { ARGV("UNKNOWNCMD", "k", "v"), "k", 0 },                         /* the default: argv[1] */
        /* scripts: keys argv[3 .. 3+numkeys) */
        { ARGV("EVAL", "return 1", "0"), NULL, KL },
        { ARGV("EVAL", "return 1", "0", "notakey"), NULL, KL },
        { ARGV("EVAL", "s", "3", "hn:live:{9}", "hn:ended:{9}", "hn:sess:{9}:x", "arg1"), "hn:live:{9}", 0 },
        { ARGV("evalsha", "abc", "2", "a", "b"), "a", XS },
        { ARGV("EVAL_RO", "s", "1", "k"), "k", RO },
        { ARGV("EVALSHA_RO", "s", "1", "k", "a"), "k", RO },
        { ARGV("FCALL", "f", "1", "k", "a"), "k", 0 },
        { ARGV("FCALL_RO", "f", "0"), NULL, RO | KL },
        /* streams: the first half of what follows STREAMS */
        { ARGV("XREADGROUP", "GROUP", "g", "c", "COUNT", "10", "BLOCK", "5", "STREAMS", "a", "b", "0", "0"), "a", XS },
        { ARGV("XREADGROUP", "GROUP", "g", "c", "NOACK", "STREAMS", "{s}a", "{s}b", ">", ">"), "{s}a", 0 },
        { ARGV("XREADGROUP", "GROUP", "streams", "streams", "STREAMS", "k", ">"), "k", 0 },
        { ARGV("xread", "count", "1", "streams", "hn:stream:0", "0-0"), "hn:stream:0", RO },
        { ARGV("XREAD", "STREAMS", "a", "b", "0"), NULL, RO | KL },       /* odd: a syntax error */
        { ARGV("XREAD", "COUNT", "1"), NULL, RO | KL },
        /* every argument, or every other one */
        { ARGV("MSET", "a", "1", "b", "2"), "a", XS },
        { ARGV("MSET", "{x}a", "1", "{x}b", "2"), "{x}a", 0 },            /* the values are no keys */
        { ARGV("MSETNX", "{x}a", "1"), "{x}a", 0 },
        { ARGV("DEL", "a", "b"), "a", XS },
        { ARGV("DEL", "hn:sess:{7}:a", "hn:sess:{7}:b", "hn:sess:{7}:c"), "hn:sess:{7}:a", 0 },
        { ARGV("DEL", "hn:bans:{3}"), "hn:bans:{3}", 0 },
        { ARGV("UNLINK", "{t}1", "{t}2", "x"), "{t}1", XS },
        { ARGV("EXISTS", "hn:sess:{7}:a"), "hn:sess:{7}:a", RO },
        { ARGV("MGET", "{t}1", "{t}2"), "{t}1", RO },
        { ARGV("SUNION", "a", "{a}x"), "a", RO },
        { ARGV("PFCOUNT", "a", "b"), "a", XS },
        { ARGV("BLPOP", "{q}a", "{q}b", "0"), "{q}a", 0 },                /* the timeout is no key */
        { ARGV("RENAME", "a", "b"), "a", XS },
        { ARGV("ZUNIONSTORE", "{d}dst", "2", "{d}a", "{d}b", "WEIGHTS", "1", "2"), "{d}dst", 0 },
        { ARGV("ZUNIONSTORE", "{d}dst", "2", "{d}a", "b"), "{d}dst", XS },
        { ARGV("BITOP", "AND", "dst", "src"), "dst", XS },
        /* subcommand first */
        { ARGV("OBJECT", "ENCODING", "k"), "k", RO },
        { ARGV("OBJECT", "HELP"), NULL, RO | KL },
        { ARGV("XINFO", "GROUPS", "hn:stream:1"), "hn:stream:1", RO },
        { ARGV("MEMORY", "USAGE", "k"), "k", 0 },
        { ARGV("XGROUP", "CREATE", "hn:stream:0", "drain", "0", "MKSTREAM"), "hn:stream:0", 0 },
        /* transactions */
        { ARGV("MULTI"), NULL, KL | HN_RCMD_MULTI },
        { ARGV("exec"), NULL, KL | HN_RCMD_EXEC },
        { ARGV("DISCARD"), NULL, KL | HN_RCMD_EXEC },
        { ARGV("WATCH", "hn:widgets"), "hn:widgets", HN_RCMD_WATCH },
        { ARGV("WATCH", "a", "b"), "a", HN_RCMD_WATCH | XS },
        { ARGV("UNWATCH"), NULL, KL | HN_RCMD_WATCH },
        /* keyless */
        { ARGV("PING"), NULL, KL },
        { ARGV("CLUSTER", "SLOTS"), NULL, KL },
        { ARGV("SCRIPT", "LOAD", "return 1"), NULL, KL },
        { ARGV("AUTH", "secret"), NULL, KL },
        { ARGV("SELECT", "0"), NULL, KL },
        { ARGV("ECHO", "hello"), NULL, KL },
        { ARGV("Client", "SETNAME", "x"), NULL, KL },
        { ARGV("DBSIZE"), NULL, KL | RO },
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(shapes); i++) {
        hn_rcmd c;
        memset(&c, 0xA5, sizeof(c));
        if (scan_argv(shapes[i].argv, &c) != HN_OK) fail_msg("shape %zu (%s): not HN_OK", i, shapes[i].argv[0]);
        uint32_t argc = 0;
        while (shapes[i].argv[argc]) argc++;
        assert_int_equal(c.argc, argc);
        assert_string_equal(c.name, shapes[i].argv[0]);
        assert_int_equal(c.namelen, strlen(shapes[i].argv[0]));
        if (shapes[i].key == NULL) {
            if (c.key != NULL) fail_msg("shape %zu (%s): key %s, want none", i, shapes[i].argv[0], c.key);
            assert_int_equal(c.keylen, 0);
            assert_int_equal(c.slot, -1);
        } else {
            if (c.key == NULL) fail_msg("shape %zu (%s): no key, want %s", i, shapes[i].argv[0], shapes[i].key);
            assert_string_equal(c.key, shapes[i].key);
            assert_int_equal(c.keylen, strlen(shapes[i].key));
            assert_int_equal(c.slot, hn_slot(shapes[i].key, strlen(shapes[i].key)));
        }
        if (c.flags != shapes[i].flags)
            fail_msg("shape %zu (%s): flags %#x, want %#x", i, shapes[i].argv[0], c.flags, shapes[i].flags);
    }
}

/* Every command with a rule or flags of its own (so every entry that
 * differs from the default), in upper and lower case: a misplaced entry in
 * the sorted table would not be found and fall back to the default. */
static void test_table(void **state) {
    (void)state;
    static const char *const keyless[] = {
        "ACL", "ASKING", "AUTH", "BGREWRITEAOF", "BGSAVE", "CLIENT", "CLUSTER", "COMMAND", "CONFIG", "DBSIZE",
        "DEBUG", "DISCARD", "ECHO", "EXEC", "FAILOVER", "FLUSHALL", "FLUSHDB", "FUNCTION", "HELLO", "INFO", "KEYS",
        "LASTSAVE", "LATENCY", "LOLWUT", "MODULE", "MONITOR", "MULTI", "PING", "PSUBSCRIBE", "PSYNC", "PUBLISH",
        "PUBSUB", "PUNSUBSCRIBE", "QUIT", "RANDOMKEY", "READONLY", "READWRITE", "REPLICAOF", "RESET", "ROLE",
        "SAVE", "SCAN", "SCRIPT", "SELECT", "SHUTDOWN", "SLAVEOF", "SLOWLOG", "SUBSCRIBE", "SWAPDB", "SYNC",
        "TIME", "UNSUBSCRIBE", "UNWATCH", "WAIT",
    };
    static const char *const readonly[] = {
        "BITCOUNT", "BITFIELD_RO", "BITPOS", "DUMP", "EXISTS", "EXPIRETIME", "GEODIST", "GEOHASH", "GEOPOS",
        "GEORADIUSBYMEMBER_RO", "GEORADIUS_RO", "GEOSEARCH", "GET", "GETBIT", "GETRANGE", "HEXISTS", "HGET",
        "HGETALL", "HKEYS", "HLEN", "HMGET", "HRANDFIELD", "HSCAN", "HSTRLEN", "HVALS", "LCS", "LINDEX", "LLEN",
        "LPOS", "LRANGE", "MGET", "PEXPIRETIME", "PTTL", "SCARD", "SDIFF", "SINTER", "SISMEMBER", "SMEMBERS",
        "SMISMEMBER", "SORT_RO", "SRANDMEMBER", "SSCAN", "STRLEN", "SUBSTR", "SUNION", "TOUCH", "TTL", "TYPE",
        "XLEN", "XPENDING", "XRANGE", "XREVRANGE", "ZCARD", "ZCOUNT", "ZLEXCOUNT", "ZMSCORE", "ZRANDMEMBER",
        "ZRANGE", "ZRANGEBYLEX", "ZRANGEBYSCORE", "ZRANK", "ZREVRANGE", "ZREVRANGEBYLEX", "ZREVRANGEBYSCORE",
        "ZREVRANK", "ZSCAN", "ZSCORE",
    };
    for (int lower = 0; lower < 2; lower++) {
        char name[32];
        for (size_t i = 0; i < HN_ARRAY_LEN(keyless); i++) {
            snprintf(name, sizeof(name), "%s", keyless[i]);
            for (char *p = name; lower && *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
            hn_rcmd c;
            assert_int_equal(scan_argv(ARGV(name, "x", "y"), &c), HN_OK);
            if (!(c.flags & HN_RCMD_KEYLESS)) fail_msg("%s: not keyless", name);
        }
        for (size_t i = 0; i < HN_ARRAY_LEN(readonly); i++) {
            snprintf(name, sizeof(name), "%s", readonly[i]);
            for (char *p = name; lower && *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
            hn_rcmd c;
            assert_int_equal(scan_argv(ARGV(name, "k", "{k}y"), &c), HN_OK);
            if (c.flags != HN_RCMD_READONLY) fail_msg("%s: flags %#x, want READONLY", name, c.flags);
            assert_string_equal(c.key, "k");
        }
    }
    /* the rules of the other entries: a lone key each (numkeys 1 where there is one) */
    const struct { const char *const *argv; const char *key; } rules[] = {
        { ARGV("BITOP", "OR", "k", "k"), "k" },          { ARGV("BLMOVE", "k", "k", "LEFT", "RIGHT", "0"), "k" },
        { ARGV("BLMPOP", "0", "1", "k", "LEFT"), "k" },  { ARGV("BRPOP", "k", "0"), "k" },
        { ARGV("BRPOPLPUSH", "k", "k", "0"), "k" },      { ARGV("BZMPOP", "0", "1", "k", "MIN"), "k" },
        { ARGV("BZPOPMAX", "k", "0"), "k" },             { ARGV("BZPOPMIN", "k", "0"), "k" },
        { ARGV("COPY", "k", "k"), "k" },                 { ARGV("EVALSHA", "s", "1", "k"), "k" },
        { ARGV("LMOVE", "k", "k", "LEFT", "LEFT"), "k" }, { ARGV("LMPOP", "1", "k", "LEFT"), "k" },
        { ARGV("MEMORY", "USAGE", "k"), "k" },           { ARGV("PFMERGE", "k", "k"), "k" },
        { ARGV("RENAMENX", "k", "k"), "k" },             { ARGV("RPOPLPUSH", "k", "k"), "k" },
        { ARGV("SDIFFSTORE", "k", "k"), "k" },           { ARGV("SINTERCARD", "1", "k"), "k" },
        { ARGV("SINTERSTORE", "k", "k"), "k" },          { ARGV("SMOVE", "k", "k", "m"), "k" },
        { ARGV("SUNIONSTORE", "k", "k"), "k" },          { ARGV("ZDIFF", "1", "k"), "k" },
        { ARGV("ZDIFFSTORE", "k", "1", "k"), "k" },      { ARGV("ZINTER", "1", "k"), "k" },
        { ARGV("ZINTERCARD", "1", "k"), "k" },           { ARGV("ZINTERSTORE", "k", "1", "k"), "k" },
        { ARGV("ZMPOP", "1", "k", "MIN"), "k" },         { ARGV("ZUNION", "1", "k"), "k" },
        { ARGV("ZUNIONSTORE", "k", "1", "k"), "k" },     { ARGV("XGROUP", "DESTROY", "k", "g"), "k" },
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(rules); i++) {
        hn_rcmd c;
        if (scan_argv(rules[i].argv, &c) != HN_OK) fail_msg("%s: not HN_OK", rules[i].argv[0]);
        if (c.key == NULL || strcmp(c.key, rules[i].key) != 0 || (c.flags & HN_RCMD_CROSSSLOT))
            fail_msg("%s: key %s flags %#x", rules[i].argv[0], c.key ? c.key : "(none)", c.flags);
    }
}

/* A collector tick as the collector writes it (common/buf.h's RESP
 * writer), with a binary record; hiredis must give the same bytes. */
static const char blob[] = "\x92\x01\xc4\x04\r\n\0\xff";     /* msgpack-ish, with CRLF and NUL in it */

static void tick_resp(hn_buf *b) {
    hn_resp_cmd(b, 6);
    hn_resp_str(b, "HSET"), hn_resp_str(b, "hn:sess:{7}:abc"), hn_resp_str(b, "status");
    hn_resp_str(b, "live"), hn_resp_str(b, "url"), hn_resp_str(b, "/pricing");
    hn_resp_cmd(b, 4);
    hn_resp_str(b, "ZADD"), hn_resp_str(b, "hn:live:{7}"), hn_resp_u64(b, 1700000000123ull), hn_resp_str(b, "abc");
    hn_resp_cmd(b, 7);
    hn_resp_str(b, "EVAL"), hn_resp_str(b, "return redis.call('ZREM', KEYS[1], ARGV[1])"), hn_resp_u64(b, 3);
    hn_resp_str(b, "hn:live:{9}"), hn_resp_str(b, "hn:ended:{9}"), hn_resp_str(b, "hn:sess:{9}:x");
    hn_resp_str(b, "x");
    hn_resp_cmd(b, 8);
    hn_resp_str(b, "XADD"), hn_resp_str(b, "hn:stream:0"), hn_resp_str(b, "MAXLEN"), hn_resp_str(b, "~");
    hn_resp_u64(b, 100), hn_resp_str(b, "*"), hn_resp_str(b, "r"), hn_resp_arg(b, blob, sizeof(blob) - 1);
    hn_resp_cmd(b, 1), hn_resp_str(b, "MULTI");
    hn_resp_cmd(b, 2), hn_resp_str(b, "DEL"), hn_resp_str(b, "hn:bans:{3}");
    hn_resp_cmd(b, 3), hn_resp_str(b, "SADD"), hn_resp_str(b, "hn:bans:{3}"), hn_resp_str(b, "v:x");
    hn_resp_cmd(b, 1), hn_resp_str(b, "EXEC");
    hn_resp_cmd(b, 1), hn_resp_str(b, "PING");
}

static const char *const tick_keys[] = {
    "hn:sess:{7}:abc", "hn:live:{7}", "hn:live:{9}", "hn:stream:0", NULL, "hn:bans:{3}", "hn:bans:{3}", NULL, NULL,
};
#define TICK_CMDS 9

static void test_hiredis_bytes(void **state) {
    (void)state;
    hn_buf b;
    hn_buf_init(&b, 256);
    tick_resp(&b);
    /* the same pipeline through hiredis, command by command */
    const char *const *cmds[TICK_CMDS] = {
        ARGV("HSET", "hn:sess:{7}:abc", "status", "live", "url", "/pricing"),
        ARGV("ZADD", "hn:live:{7}", "1700000000123", "abc"),
        ARGV("EVAL", "return redis.call('ZREM', KEYS[1], ARGV[1])", "3", "hn:live:{9}", "hn:ended:{9}",
             "hn:sess:{9}:x", "x"),
        ARGV("XADD", "hn:stream:0", "MAXLEN", "~", "100", "*", "r", "BLOB"),
        ARGV("MULTI"), ARGV("DEL", "hn:bans:{3}"), ARGV("SADD", "hn:bans:{3}", "v:x"), ARGV("EXEC"), ARGV("PING"),
    };
    hn_buf h;
    hn_buf_init(&h, 256);
    for (int i = 0; i < TICK_CMDS; i++) {
        int argc = 0;
        size_t lens[16];
        while (cmds[i][argc]) {
            lens[argc] = strcmp(cmds[i][argc], "BLOB") == 0 ? sizeof(blob) - 1 : strlen(cmds[i][argc]);
            argc++;
        }
        const char *argv[16];
        for (int k = 0; k < argc; k++) argv[k] = strcmp(cmds[i][k], "BLOB") == 0 ? blob : cmds[i][k];
        char *cmd = NULL;
        int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
        assert_true(n > 0);
        hn_buf_append(&h, cmd, (size_t)n);
        redisFreeCommand(cmd);
    }
    assert_int_equal(h.len, b.len);
    assert_memory_equal(h.p, b.p, b.len);
    /* redisFormatCommand's printf-like shape too (%b: binary) */
    char *cmd = NULL;
    int n = redisFormatCommand(&cmd, "ZADD %s %llu %b", "hn:live:{7}", 1700000000123ull, "abc", (size_t)3);
    const char *zadd = strstr(b.p, "*4\r\n$4\r\nZADD");
    assert_non_null(zadd);
    assert_memory_equal(cmd, zadd, (size_t)n);
    redisFreeCommand(cmd);

    /* and the scanner reads it back */
    size_t off = 0;
    for (int i = 0; i < TICK_CMDS; i++) {
        hn_rcmd c;
        assert_int_equal(hn_rcmd_scan(b.p + off, b.len - off, &c), HN_OK);
        if (tick_keys[i]) {
            assert_int_equal(c.keylen, strlen(tick_keys[i]));
            assert_memory_equal(c.key, tick_keys[i], c.keylen);
            assert_ptr_equal(c.key >= b.p && c.key < b.p + b.len, 1);
        } else {
            assert_null(c.key);
        }
        assert_int_equal(c.flags & HN_RCMD_CROSSSLOT, 0);
        off += c.len;
    }
    assert_int_equal(off, b.len);
    hn_buf_free(&h);
    hn_buf_free(&b);
}

/* Every prefix of the pipeline: the commands that are whole scan HN_OK,
 * the one cut short HN_AGAIN, never HN_ERR. */
static void test_truncation(void **state) {
    (void)state;
    hn_buf b;
    hn_buf_init(&b, 256);
    tick_resp(&b);
    size_t ends[TICK_CMDS], off = 0;
    for (int i = 0; i < TICK_CMDS; i++) {
        hn_rcmd c;
        assert_int_equal(hn_rcmd_scan(b.p + off, b.len - off, &c), HN_OK);
        off += c.len;
        ends[i] = off;
    }
    for (size_t p = 0; p <= b.len; p++) {
        char *copy = malloc(p ? p : 1);          /* its own allocation: ASan sees a read past p */
        memcpy(copy, b.p, p);
        size_t at = 0;
        int whole = 0, rc;
        hn_rcmd c;
        while ((rc = hn_rcmd_scan(copy + at, p - at, &c)) == HN_OK) {
            assert_true(whole < TICK_CMDS);
            assert_int_equal(at + c.len, ends[whole]);
            at += c.len;
            whole++;
        }
        if (rc != HN_AGAIN) fail_msg("prefix %zu: %d at byte %zu", p, rc, at);
        int want = 0;
        while (want < TICK_CMDS && ends[want] <= p) want++;
        assert_int_equal(whole, want);
        free(copy);
    }
    hn_buf_free(&b);
}

static void test_errors(void **state) {
    (void)state;
    static const struct { const char *s; const char *why; } bad[] = {
        { "PING\r\n", "inline command" },
        { "*-1\r\n", "null array" },
        { "*0\r\n", "empty array" },
        { "*\r\n", "no count" },
        { "*1x\r\n", "not a number" },
        { "*1\n$4\r\nPING\r\n", "LF without CR" },
        { "*1\r\n$abc\r\n", "bulk length not a number" },
        { "*1\r\n$-1\r\n", "null bulk" },
        { "*1\r\n$\r\n", "no bulk length" },
        { "*1\r\n$4\r\nPINGxx", "no CRLF after the bulk" },
        { "*1\r\n$4\r\nPING\rx", "CR without LF after the bulk" },
        { "*1\r\n$4\r\nPIN\r\n", "a bulk shorter than its length" },
        { "*1\r\n:1\r\n", "an integer, not a bulk" },
        { "*1\r\n*1\r\n$4\r\nPING\r\n", "nested array" },
        { "$4\r\nPING\r\n", "a bare bulk" },
        { "+OK\r\n", "a reply" },
        { "*1048577\r\n", "argc over 1<<20" },
        { "*99999999999999999999999\r\n", "argc overflow" },
        { "*1\r\n$536870913\r\n", "bulk over 512 MiB" },
        { "*4\r\n$4\r\nEVAL\r\n$1\r\ns\r\n$1\r\n2\r\n$1\r\nk\r\n", "numkeys too large" },
        { "*3\r\n$4\r\nEVAL\r\n$1\r\ns\r\n$1\r\n1\r\n", "numkeys 1, no key" },
        { "*4\r\n$7\r\nEVALSHA\r\n$1\r\ns\r\n$2\r\n-1\r\n$1\r\nk\r\n", "negative numkeys" },
        { "*4\r\n$5\r\nFCALL\r\n$1\r\nf\r\n$1\r\nx\r\n$1\r\nk\r\n", "numkeys not a number" },
        { "*4\r\n$11\r\nZUNIONSTORE\r\n$1\r\nd\r\n$1\r\n3\r\n$1\r\nk\r\n", "ZUNIONSTORE numkeys too large" },
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(bad); i++) {
        hn_rcmd c = { .len = 12345 };
        int rc = hn_rcmd_scan(bad[i].s, strlen(bad[i].s), &c);
        if (rc != HN_ERR) fail_msg("%s: %d, want HN_ERR", bad[i].why, rc);
        assert_int_equal(c.len, 12345);          /* not written */
    }
    /* a bulk at the limit is only incomplete */
    hn_rcmd c;
    const char *big = "*1\r\n$536870912\r\nxx";
    assert_int_equal(hn_rcmd_scan(big, strlen(big), &c), HN_AGAIN);
    assert_int_equal(hn_rcmd_scan("", 0, &c), HN_AGAIN);
    assert_int_equal(hn_rcmd_scan("*\r", 2, &c), HN_ERR);             /* no digit: never a count */
    assert_int_equal(hn_rcmd_scan("*1\r\n$\r", 6, &c), HN_ERR);
    assert_int_equal(hn_rcmd_scan("*1048576\r\n", 10, &c), HN_AGAIN);
}

/* Random commands with random argc and binary arguments, formatted by
 * hiredis, scan back to their argc, length and key (the default rule, DEL
 * and EVAL, whose expected keys the test knows). One buffer holds them all
 * so the scan also walks a long pipeline. */
static uint32_t rng = 0x9E3779B9u;
static uint32_t rnd(uint32_t n) {
    rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
    return rng % n;
}

static void test_random(void **state) {
    (void)state;
    enum { N = 1500, ARGS = 12 };
    hn_buf all;
    hn_buf_init(&all, 1 << 16);
    struct want { size_t len; uint32_t argc; size_t keyoff, keylen; int cross, keyless; } *w = calloc(N, sizeof(*w));
    char args[ARGS][300];
    for (int i = 0; i < N; i++) {
        const char *argv[ARGS];
        size_t lens[ARGS];
        int kind = (int)rnd(3);             /* 0: an unknown name, argv[1]; 1: DEL, all keys; 2: EVAL */
        int argc = kind == 2 ? 3 + (int)rnd(ARGS - 3) : 1 + (int)rnd(ARGS);
        for (int a = 0; a < argc; a++) {
            lens[a] = rnd(4) == 0 ? 0 : rnd(sizeof(args[0]));
            for (size_t k = 0; k < lens[a]; k++) args[a][k] = (char)rnd(256);
            if (lens[a] > 0 && rnd(3) == 0) args[a][0] = '{', args[a][lens[a] > 2 ? 2 : 0] = '}';
            argv[a] = args[a];
        }
        int numkeys = 0;
        if (kind == 0) args[0][0] = '#', lens[0] = lens[0] ? lens[0] : 1;   /* never a known name */
        if (kind == 1) argv[0] = "del", lens[0] = 3;
        if (kind == 2) {
            numkeys = (int)rnd((uint32_t)(argc - 3 + 1));
            snprintf(args[2], sizeof(args[2]), "%d", numkeys);
            argv[0] = "EVAL", lens[0] = 4, lens[2] = strlen(args[2]);
        }
        char *cmd = NULL;
        int n = redisFormatCommandArgv(&cmd, argc, argv, lens);
        assert_true(n > 0);
        /* where argv[k] lands in cmd: walk hiredis's own layout */
        size_t pos = (size_t)(strchr(cmd, '\n') - cmd) + 1, keyoff[ARGS];
        for (int a = 0; a < argc; a++) {
            pos = (size_t)((char *)memchr(cmd + pos, '\n', (size_t)n - pos) - cmd) + 1;
            keyoff[a] = all.len + pos;
            pos += lens[a] + 2;
        }
        assert_int_equal(pos, (size_t)n);
        int first = kind == 2 ? (numkeys ? 3 : -1) : (argc > 1 ? 1 : -1);
        int lastk = kind == 0 ? first : kind == 1 ? argc - 1 : 2 + numkeys;
        w[i] = (struct want){ .len = (size_t)n, .argc = (uint32_t)argc, .keyless = first < 0 };
        if (first >= 0) {
            w[i].keyoff = keyoff[first], w[i].keylen = lens[first];
            uint16_t s0 = hn_slot(argv[first], lens[first]);
            for (int a = first + 1; a <= lastk; a++) w[i].cross |= hn_slot(argv[a], lens[a]) != s0;
        }
        hn_buf_append(&all, cmd, (size_t)n);
        redisFreeCommand(cmd);
    }
    size_t off = 0;
    for (int i = 0; i < N; i++) {
        hn_rcmd c;
        assert_int_equal(hn_rcmd_scan(all.p + off, all.len - off, &c), HN_OK);
        assert_int_equal(c.len, w[i].len);
        assert_int_equal(c.argc, w[i].argc);
        if (w[i].keyless) {
            assert_null(c.key);
            assert_true(c.flags & HN_RCMD_KEYLESS);
        } else {
            assert_ptr_equal(c.key, all.p + w[i].keyoff);
            assert_int_equal(c.keylen, w[i].keylen);
            assert_int_equal(c.slot, hn_slot(c.key, c.keylen));
            assert_int_equal(!!(c.flags & HN_RCMD_CROSSSLOT), w[i].cross);
        }
        /* a prefix is never a whole command */
        size_t cut = rnd((uint32_t)c.len);
        assert_int_equal(hn_rcmd_scan(all.p + off, cut, &c), HN_AGAIN);
        off += w[i].len;
    }
    assert_int_equal(off, all.len);
    free(w);
    hn_buf_free(&all);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_keys),
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_hiredis_bytes),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
