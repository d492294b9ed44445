/*
 * rcmd.c: see rcmd.h. Two passes over a command:
 *
 *   frame()  checks the RESP frame byte by byte ("*<argc>\r\n" then argc
 *            times "$<n>\r\n<n bytes>\r\n"), tells a command cut short
 *            (HN_AGAIN) from one that can never be valid (HN_ERR), and keeps
 *            where the arguments start;
 *   keys()   walks the now-trusted arguments up to the last key the
 *            command's spec names, keeping the first key and comparing the
 *            others' slots with it.
 *
 * The second pass stops at the last key, so a HSET with a 100 KB value costs
 * one walk over its bytes (the first) plus one argument.
 */
#include "common/rcmd.h"

#include <stdlib.h>
#include <string.h>

#define ARGC_MAX  (1u << 20)
#define BULK_MAX  (512ull << 20)
#define SPEC_NAME_CAP 24                  /* longer names are in no spec: GEORADIUSBYMEMBER_RO is 20 */

/* How a spec finds its keys (Redis's legacy first/last/step key spec, plus
 * the two "movable keys" shapes we route). */
enum { K_NONE, K_RANGE, K_NUMKEYS, K_STREAMS };

typedef struct spec {
    char    name[SPEC_NAME_CAP];
    uint8_t rule;
    int8_t  first;      /* K_RANGE: argv[first..last] by step; K_NUMKEYS: a key before numkeys (ZUNIONSTORE's
                           destination), 0: none */
    int8_t  last;       /* K_RANGE: < 0 counts from the end, -1 the last argument */
    uint8_t step;       /* K_RANGE: the step; K_NUMKEYS: the index of numkeys, the keys follow it */
    uint8_t flags;
} spec;

#define RO                     HN_RCMD_READONLY
#define NOKEY(f)               K_NONE, 0, 0, 0, (f)
#define KEY1(f)                K_RANGE, 1, 1, 1, (f)
#define KEYS(first, last, step, f) K_RANGE, first, last, step, (f)
#define NUMKEYS(dest, at, f)   K_NUMKEYS, dest, 0, at, (f)
#define STREAMS(f)             K_STREAMS, 0, 0, 0, (f)

/* Sorted by name (strcmp, upper case: '_' after the letters) for bsearch;
 * tests/unit/test_rcmd.c looks every entry with a rule or flags of its own up.
 * A command not here takes the default: argv[1], no flags. */
static const spec specs[] = {
    {"ACL",               NOKEY(0)},
    {"APPEND",            KEY1(0)},
    {"ASKING",            NOKEY(0)},
    {"AUTH",              NOKEY(0)},
    {"BGREWRITEAOF",      NOKEY(0)},
    {"BGSAVE",            NOKEY(0)},
    {"BITCOUNT",          KEY1(RO)},
    {"BITFIELD_RO",       KEY1(RO)},
    {"BITOP",             KEYS(2, -1, 1, 0)},
    {"BITPOS",            KEY1(RO)},
    {"BLMOVE",            KEYS(1, 2, 1, 0)},
    {"BLMPOP",            NUMKEYS(0, 2, 0)},
    {"BLPOP",             KEYS(1, -2, 1, 0)},
    {"BRPOP",             KEYS(1, -2, 1, 0)},
    {"BRPOPLPUSH",        KEYS(1, 2, 1, 0)},
    {"BZMPOP",            NUMKEYS(0, 2, 0)},
    {"BZPOPMAX",          KEYS(1, -2, 1, 0)},
    {"BZPOPMIN",          KEYS(1, -2, 1, 0)},
    {"CLIENT",            NOKEY(0)},
    {"CLUSTER",           NOKEY(0)},
    {"COMMAND",           NOKEY(0)},
    {"CONFIG",            NOKEY(0)},
    {"COPY",              KEYS(1, 2, 1, 0)},
    {"DBSIZE",            NOKEY(RO)},
    {"DEBUG",             NOKEY(0)},
    {"DEL",               KEYS(1, -1, 1, 0)},
    {"DISCARD",           NOKEY(HN_RCMD_EXEC)},
    {"DUMP",              KEY1(RO)},
    {"ECHO",              NOKEY(0)},
    {"EVAL",              NUMKEYS(0, 2, 0)},
    {"EVALSHA",           NUMKEYS(0, 2, 0)},
    {"EVALSHA_RO",        NUMKEYS(0, 2, RO)},
    {"EVAL_RO",           NUMKEYS(0, 2, RO)},
    {"EXEC",              NOKEY(HN_RCMD_EXEC)},
    {"EXISTS",            KEYS(1, -1, 1, RO)},
    {"EXPIRETIME",        KEY1(RO)},
    {"FAILOVER",          NOKEY(0)},
    {"FCALL",             NUMKEYS(0, 2, 0)},
    {"FCALL_RO",          NUMKEYS(0, 2, RO)},
    {"FLUSHALL",          NOKEY(0)},
    {"FLUSHDB",           NOKEY(0)},
    {"FUNCTION",          NOKEY(0)},
    {"GEODIST",           KEY1(RO)},
    {"GEOHASH",           KEY1(RO)},
    {"GEOPOS",            KEY1(RO)},
    {"GEORADIUSBYMEMBER_RO", KEY1(RO)},
    {"GEORADIUS_RO",      KEY1(RO)},
    {"GEOSEARCH",         KEY1(RO)},
    {"GET",               KEY1(RO)},
    {"GETBIT",            KEY1(RO)},
    {"GETRANGE",          KEY1(RO)},
    {"HELLO",             NOKEY(0)},
    {"HEXISTS",           KEY1(RO)},
    {"HGET",              KEY1(RO)},
    {"HGETALL",           KEY1(RO)},
    {"HKEYS",             KEY1(RO)},
    {"HLEN",              KEY1(RO)},
    {"HMGET",             KEY1(RO)},
    {"HRANDFIELD",        KEY1(RO)},
    {"HSCAN",             KEY1(RO)},
    {"HSTRLEN",           KEY1(RO)},
    {"HVALS",             KEY1(RO)},
    {"INFO",              NOKEY(0)},
    {"KEYS",              NOKEY(RO)},
    {"LASTSAVE",          NOKEY(0)},
    {"LATENCY",           NOKEY(0)},
    {"LCS",               KEYS(1, 2, 1, RO)},
    {"LINDEX",            KEY1(RO)},
    {"LLEN",              KEY1(RO)},
    {"LMOVE",             KEYS(1, 2, 1, 0)},
    {"LMPOP",             NUMKEYS(0, 1, 0)},
    {"LOLWUT",            NOKEY(0)},
    {"LPOS",              KEY1(RO)},
    {"LRANGE",            KEY1(RO)},
    {"MEMORY",            KEYS(2, 2, 1, 0)},
    {"MGET",              KEYS(1, -1, 1, RO)},
    {"MODULE",            NOKEY(0)},
    {"MONITOR",           NOKEY(0)},
    {"MSET",              KEYS(1, -1, 2, 0)},
    {"MSETNX",            KEYS(1, -1, 2, 0)},
    {"MULTI",             NOKEY(HN_RCMD_MULTI)},
    {"OBJECT",            KEYS(2, 2, 1, RO)},
    {"PEXPIRETIME",       KEY1(RO)},
    {"PFCOUNT",           KEYS(1, -1, 1, 0)},
    {"PFMERGE",           KEYS(1, -1, 1, 0)},
    {"PING",              NOKEY(0)},
    {"PSUBSCRIBE",        NOKEY(0)},
    {"PSYNC",             NOKEY(0)},
    {"PTTL",              KEY1(RO)},
    {"PUBLISH",           NOKEY(0)},
    {"PUBSUB",            NOKEY(0)},
    {"PUNSUBSCRIBE",      NOKEY(0)},
    {"QUIT",              NOKEY(0)},
    {"RANDOMKEY",         NOKEY(RO)},
    {"READONLY",          NOKEY(0)},
    {"READWRITE",         NOKEY(0)},
    {"RENAME",            KEYS(1, 2, 1, 0)},
    {"RENAMENX",          KEYS(1, 2, 1, 0)},
    {"REPLICAOF",         NOKEY(0)},
    {"RESET",             NOKEY(0)},
    {"ROLE",              NOKEY(0)},
    {"RPOPLPUSH",         KEYS(1, 2, 1, 0)},
    {"SAVE",              NOKEY(0)},
    {"SCAN",              NOKEY(RO)},
    {"SCARD",             KEY1(RO)},
    {"SCRIPT",            NOKEY(0)},
    {"SDIFF",             KEYS(1, -1, 1, RO)},
    {"SDIFFSTORE",        KEYS(1, -1, 1, 0)},
    {"SELECT",            NOKEY(0)},
    {"SHUTDOWN",          NOKEY(0)},
    {"SINTER",            KEYS(1, -1, 1, RO)},
    {"SINTERCARD",        NUMKEYS(0, 1, RO)},
    {"SINTERSTORE",       KEYS(1, -1, 1, 0)},
    {"SISMEMBER",         KEY1(RO)},
    {"SLAVEOF",           NOKEY(0)},
    {"SLOWLOG",           NOKEY(0)},
    {"SMEMBERS",          KEY1(RO)},
    {"SMISMEMBER",        KEY1(RO)},
    {"SMOVE",             KEYS(1, 2, 1, 0)},
    {"SORT_RO",           KEY1(RO)},
    {"SRANDMEMBER",       KEY1(RO)},
    {"SSCAN",             KEY1(RO)},
    {"STRLEN",            KEY1(RO)},
    {"SUBSCRIBE",         NOKEY(0)},
    {"SUBSTR",            KEY1(RO)},
    {"SUNION",            KEYS(1, -1, 1, RO)},
    {"SUNIONSTORE",       KEYS(1, -1, 1, 0)},
    {"SWAPDB",            NOKEY(0)},
    {"SYNC",              NOKEY(0)},
    {"TIME",              NOKEY(0)},
    {"TOUCH",             KEYS(1, -1, 1, RO)},
    {"TTL",               KEY1(RO)},
    {"TYPE",              KEY1(RO)},
    {"UNLINK",            KEYS(1, -1, 1, 0)},
    {"UNSUBSCRIBE",       NOKEY(0)},
    {"UNWATCH",           NOKEY(HN_RCMD_WATCH)},
    {"WAIT",              NOKEY(0)},
    {"WATCH",             KEYS(1, -1, 1, HN_RCMD_WATCH)},
    {"XGROUP",            KEYS(2, 2, 1, 0)},
    {"XINFO",             KEYS(2, 2, 1, RO)},
    {"XLEN",              KEY1(RO)},
    {"XPENDING",          KEY1(RO)},
    {"XRANGE",            KEY1(RO)},
    {"XREAD",             STREAMS(RO)},
    {"XREADGROUP",        STREAMS(0)},
    {"XREVRANGE",         KEY1(RO)},
    {"ZCARD",             KEY1(RO)},
    {"ZCOUNT",            KEY1(RO)},
    {"ZDIFF",             NUMKEYS(0, 1, RO)},
    {"ZDIFFSTORE",        NUMKEYS(1, 2, 0)},
    {"ZINTER",            NUMKEYS(0, 1, RO)},
    {"ZINTERCARD",        NUMKEYS(0, 1, RO)},
    {"ZINTERSTORE",       NUMKEYS(1, 2, 0)},
    {"ZLEXCOUNT",         KEY1(RO)},
    {"ZMPOP",             NUMKEYS(0, 1, 0)},
    {"ZMSCORE",           KEY1(RO)},
    {"ZRANDMEMBER",       KEY1(RO)},
    {"ZRANGE",            KEY1(RO)},
    {"ZRANGEBYLEX",       KEY1(RO)},
    {"ZRANGEBYSCORE",     KEY1(RO)},
    {"ZRANK",             KEY1(RO)},
    {"ZREVRANGE",         KEY1(RO)},
    {"ZREVRANGEBYLEX",    KEY1(RO)},
    {"ZREVRANGEBYSCORE",  KEY1(RO)},
    {"ZREVRANK",          KEY1(RO)},
    {"ZSCAN",             KEY1(RO)},
    {"ZSCORE",            KEY1(RO)},
    {"ZUNION",            NUMKEYS(0, 1, RO)},
    {"ZUNIONSTORE",       NUMKEYS(1, 2, 0)},
};

static int spec_cmp(const void *name, const void *s) {
    return strcmp(name, ((const spec *)s)->name);
}

/* The spec of argv[0] (any case), or NULL for the default rule. */
static const spec *spec_of(const char *p, size_t n) {
    char up[SPEC_NAME_CAP];
    if (n == 0 || n >= sizeof(up)) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 'a' && ch <= 'z') ch = (unsigned char)(ch - 'a' + 'A');
        else if (!((ch >= 'A' && ch <= 'Z') || ch == '_')) return NULL;    /* no spec has another byte */
        up[i] = (char)ch;
    }
    up[n] = 0;
    return bsearch(up, specs, HN_ARRAY_LEN(specs), sizeof(specs[0]), spec_cmp);
}

static int eq_nocase(const char *p, size_t n, const char *upper) {
    size_t i = 0;
    for (; i < n && upper[i]; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch >= 'a' && ch <= 'z') ch = (unsigned char)(ch - 'a' + 'A');
        if (ch != (unsigned char)upper[i]) return 0;
    }
    return i == n && upper[i] == 0;
}

/* ---- pass 1: the frame ---------------------------------------------------------------- */

/* "<digits>\r\n" at buf[*pos..len), the type byte already read: HN_OK and
 * *v (<= max), *pos past the CRLF; HN_AGAIN; HN_ERR (a sign, no digit,
 * another byte, over max: RESP lengths here are never negative). */
static int read_len(const char *buf, size_t len, size_t *pos, uint64_t max, uint64_t *v) {
    size_t i = *pos;
    uint64_t n = 0;
    for (; i < len && buf[i] != '\r'; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch < '0' || ch > '9') return HN_ERR;
        n = n * 10 + (ch - '0');            /* n <= max before, so no overflow */
        if (n > max) return HN_ERR;
    }
    if (i == len) return HN_AGAIN;
    if (i == *pos) return HN_ERR;                   /* no digit */
    if (i + 1 == len) return HN_AGAIN;
    if (buf[i + 1] != '\n') return HN_ERR;
    *pos = i + 2;
    *v = n;
    return HN_OK;
}

/* The frame of the command at buf[0..len): its length, argc and where
 * argv[1] starts (args1: len when argc is 1); argv[0..2] kept in a[]. */
typedef struct frame {
    size_t   len, args1;
    uint32_t argc;
    hn_str   a[3];
} frame;

static int read_frame(const char *buf, size_t len, frame *f) {
    size_t pos = 1;
    uint64_t v;
    int rc;
    if (len == 0) return HN_AGAIN;
    if (buf[0] != '*') return HN_ERR;                /* an inline command, a reply, garbage */
    if ((rc = read_len(buf, len, &pos, ARGC_MAX, &v)) != HN_OK) return rc;
    if (v == 0) return HN_ERR;                       /* Redis skips "*0": no reply to count */
    f->argc = (uint32_t)v;
    f->args1 = 0;
    for (uint32_t i = 0; i < f->argc; i++) {
        if (i == 1) f->args1 = pos;
        if (pos == len) return HN_AGAIN;
        if (buf[pos] != '$') return HN_ERR;
        pos++;
        if ((rc = read_len(buf, len, &pos, BULK_MAX, &v)) != HN_OK) return rc;
        size_t have = len - pos;
        if (have > v && buf[pos + v] != '\r') return HN_ERR;
        if (have > v + 1 && buf[pos + v + 1] != '\n') return HN_ERR;
        if (have < v + 2) return HN_AGAIN;
        if (i < 3) f->a[i] = (hn_str){ buf + pos, (uint32_t)v };
        pos += v + 2;
    }
    if (f->argc == 1) f->args1 = pos;
    f->len = pos;
    return HN_OK;
}

/* ---- pass 2: the keys ----------------------------------------------------------------- */

/* The next argument of a framed command (read_frame checked it). */
static const char *next_arg(const char **p, size_t *n) {
    const char *q = *p + 1;
    size_t v = 0;
    while (*q != '\r') v = v * 10 + (size_t)(*q++ - '0');
    *n = v;
    *p = q + 2 + v + 2;
    return q + 2;
}

/* A non-negative decimal numkeys, or -1. */
static long numkeys_of(hn_str s) {
    long v = 0;
    if (s.len == 0 || s.len > 9) return -1;
    for (uint32_t i = 0; i < s.len; i++) {
        if (s.p[i] < '0' || s.p[i] > '9') return -1;
        v = v * 10 + (s.p[i] - '0');
    }
    return v;
}

/* XREAD/XREADGROUP: the keys are the first half of what follows STREAMS;
 * the options before it are walked as Redis's xreadGetKeys does (so a group
 * or consumer named "streams" is not taken for the token). The index of
 * the first key and the count, or 0 keys when the command is malformed. */
static void streams_keys(const char *buf, const frame *f, uint32_t *first, uint32_t *nkeys) {
    const char *p = buf + f->args1;
    *first = *nkeys = 0;
    for (uint32_t i = 1; i < f->argc; i++) {
        size_t n;
        const char *a = next_arg(&p, &n);
        uint32_t skip = 0;
        if (eq_nocase(a, n, "BLOCK") || eq_nocase(a, n, "COUNT")) skip = 1;
        else if (eq_nocase(a, n, "GROUP")) skip = 2;
        else if (eq_nocase(a, n, "NOACK")) skip = 0;
        else if (eq_nocase(a, n, "STREAMS")) {
            uint32_t rest = f->argc - i - 1;
            if (rest > 0 && rest % 2 == 0) *first = i + 1, *nkeys = rest / 2;
            return;
        } else return;
        for (; skip > 0 && i + 1 < f->argc; skip--, i++) next_arg(&p, &n);
    }
}

/* The keys of a framed command: argv[extra] (0: none), then argv[first..last]
 * by step. HN_ERR for a bad numkeys. */
static int key_range(const char *buf, const frame *f, const spec *s, uint32_t *extra, uint32_t *first,
                     uint32_t *last, uint32_t *step) {
    uint32_t argc = f->argc;
    *extra = 0, *first = 1, *last = 1, *step = 1;
    if (s == NULL) return HN_OK;
    switch (s->rule) {
    case K_NONE:
        *first = 0, *last = 0;
        break;
    case K_RANGE:
        *first = (uint32_t)s->first;
        *last = s->last >= 0 ? (uint32_t)s->last
              : argc >= (uint32_t)-s->last ? argc - (uint32_t)-s->last : 0;
        *step = s->step;
        break;
    case K_NUMKEYS: {
        uint32_t at = s->step;
        if (argc <= at) {                       /* no numkeys: Redis answers the arity error */
            *first = 0, *last = 0;
            break;
        }
        long nk = numkeys_of(f->a[at]);
        if (nk < 0 || (uint64_t)nk > argc - at - 1) return HN_ERR;
        *extra = (uint32_t)s->first;
        *first = at + 1;
        *last = at + (uint32_t)nk;            /* < first when numkeys is 0 */
        break;
    }
    case K_STREAMS: {
        uint32_t nk;
        streams_keys(buf, f, first, &nk);
        *last = *first + nk - 1;
        if (nk == 0) *first = 0, *last = 0;
        break;
    }
    }
    if (*last >= argc) *last = argc - 1;
    return HN_OK;
}

int hn_rcmd_scan(const char *buf, size_t len, hn_rcmd *c) {
    frame f;
    int rc = read_frame(buf, len, &f);
    if (rc != HN_OK) return rc;
    const spec *s = spec_of(f.a[0].p, f.a[0].len);
    uint32_t extra, first, last, step;
    if (key_range(buf, &f, s, &extra, &first, &last, &step) != HN_OK) return HN_ERR;

    hn_rcmd r = {
        .len = f.len, .argc = f.argc, .name = f.a[0].p, .namelen = f.a[0].len,
        .key = NULL, .keylen = 0, .slot = -1, .flags = s ? s->flags : 0,
    };
    uint32_t end = last >= first && first > 0 ? last : extra;     /* the last argument to look at */
    const char *p = buf + f.args1;
    for (uint32_t i = 1; i <= end && i < f.argc; i++) {
        size_t n;
        const char *a = next_arg(&p, &n);
        if (!(i == extra || (first > 0 && i >= first && i <= last && (i - first) % step == 0))) continue;
        int slot = hn_slot(a, n);
        if (r.key == NULL) {
            r.key = a, r.keylen = n, r.slot = slot;
        } else if (slot != r.slot) {
            r.flags |= HN_RCMD_CROSSSLOT;
            break;
        }
    }
    if (r.key == NULL) r.flags |= HN_RCMD_KEYLESS;
    *c = r;
    return HN_OK;
}
