/*
 * hn-rcltest: common/rcl.c (the Redis client of the slow paths) against a
 * real Redis Cluster (tests/integration/test_rcl.sh). Each mode prints
 * "ok <what>" or "FAIL <what>: <why>" lines and exits 1 on a failure.
 *
 *   hn-rcltest basic URL       pipelines over every master, replies in order; MULTI … EXEC;
 *                              CROSSSLOT handed back and counted; scripts (NOSCRIPT per node);
 *                              XREAD/XREADGROUP over streams on three masters
 *   hn-rcltest reshard URL     moves a slot with keys between masters by hand (SETSLOT
 *                              IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE): ASK while it moves,
 *                              TRYAGAIN for a multi-key command split by the move, MOVED after
 *   hn-rcltest set URL KEY VAL / get URL KEY     one command (the failover checks of the script)
 *   hn-rcltest failover URL KEY REPLICA_PORT / kill URL KEY MASTER_PID
 *                              the key read, the cluster changed (CLUSTER FAILOVER asked of the
 *                              replica; the master killed), the key read again with the old map
 *   hn-rcltest move URL FROM TO FIRST COUNT [SLOT MS]   slots FIRST.. (COUNT) from master FROM
 *                              (host:port) to master TO, key by key, while the system writes;
 *                              SLOT stays MIGRATING for MS before its keys move
 *   hn-rcltest range URL KEY    "SLOT LO HI host:port": KEY's slot, the run of slots around it
 *                              on the same master, and that master
 *   hn-rcltest node-of URL KEY    host:port of the master of KEY's slot
 */
#include "common/rcl.h"
#include "common/rmap.h"
#include "common/rslot.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failed;

static void check(bool ok, const char *what, const char *why) {
    if (ok) printf("ok %s\n", what);
    else {
        printf("FAIL %s: %s\n", what, why ? why : "");
        failed = 1;
    }
    fflush(stdout);
}

static hn_rcl *open_url(const char *url, int retry_ms) {
    hn_redis_cfg cfg;
    char err[512];
    if (hn_redis_cfg_parse(url, &cfg, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "hn-rcltest: %s\n", err);
        exit(2);
    }
    if (retry_ms) cfg.retry_ms = retry_ms;
    hn_rcl *c = hn_rcl_connect(&cfg, 3000, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "hn-rcltest: %s\n", err);
        exit(2);
    }
    return c;
}

static bool is_str(const redisReply *r, const char *s) {
    return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) && strcmp(r->str, s) == 0;
}

static int metric(const char *name) {
    hn_buf b;
    hn_buf_init(&b, 4096);
    hn_rcl_metrics(&b);
    hn_buf_append(&b, "", 1);
    const char *p = strstr(b.p, name);
    int v = -1;
    while (p) {                     /* the sample line, not HELP or TYPE */
        if (p > b.p && p[-1] == '\n') {
            const char *sp = strchr(p, ' ');
            v = sp ? atoi(sp + 1) : -1;
            break;
        }
        p = strstr(p + 1, name);
    }
    hn_buf_free(&b);
    return v;
}

static void basic(const char *url) {
    hn_rcl *c = open_url(url, 0);
    check(hn_rcl_cluster(c), "a cluster client", NULL);
    check(hn_rcl_masters(c) == 3, "three masters", NULL);

    /* 600 commands over every slot range, replies in command order */
    enum { N = 300 };
    char key[64], val[64];
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "rcl:k%d", i);
        snprintf(val, sizeof(val), "v%d", i);
        hn_rcl_append(c, "SET %s %s", key, val);
        hn_rcl_append(c, "GET %s", key);
    }
    bool inorder = true;
    for (int i = 0; i < N; i++) {
        redisReply *a, *b;
        if (hn_rcl_get_reply(c, (void **)&a) != REDIS_OK || hn_rcl_get_reply(c, (void **)&b) != REDIS_OK) {
            check(false, "pipeline replies", hn_rcl_errstr(c));
            return;
        }
        snprintf(val, sizeof(val), "v%d", i);
        if (!is_str(a, "OK") || !is_str(b, val)) inorder = false;
        freeReplyObject(a);
        freeReplyObject(b);
    }
    check(inorder, "600 pipelined commands over 3 masters, replies in command order", NULL);
    int nodes[3] = {0};
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "rcl:k%d", i);
        const char *n = hn_rcl_node_of(c, key, strlen(key));
        static char seen[3][300];
        for (int k = 0; k < 3; k++) {
            if (!seen[k][0]) snprintf(seen[k], sizeof(seen[k]), "%s", n);
            if (strcmp(seen[k], n) == 0) {
                nodes[k]++;
                break;
            }
        }
    }
    check(nodes[0] > 50 && nodes[1] > 50 && nodes[2] > 50, "the keys spread over the three masters", NULL);

    /* MULTI … EXEC as one unit on its key's node */
    hn_rcl_append(c, "MULTI");
    hn_rcl_append(c, "DEL %s", "rcl:bans:{7}");
    hn_rcl_append(c, "SADD %s %s %s", "rcl:bans:{7}", "a", "b");
    hn_rcl_append(c, "EXEC");
    hn_rcl_append(c, "INCR %s", "rcl:version");
    redisReply *r[5];
    bool ok = true;
    for (int i = 0; i < 5; i++) ok = ok && hn_rcl_get_reply(c, (void **)&r[i]) == REDIS_OK;
    check(ok && is_str(r[0], "OK") && is_str(r[1], "QUEUED") && is_str(r[2], "QUEUED") &&
              r[3]->type == REDIS_REPLY_ARRAY && r[3]->elements == 2 && r[3]->element[1]->integer == 2 &&
              r[4]->type == REDIS_REPLY_INTEGER,
          "MULTI DEL SADD EXEC, then a key on another slot", NULL);
    for (int i = 0; i < 5 && ok; i++) freeReplyObject(r[i]);

    /* CROSSSLOT: handed back, counted, never retried */
    int before = metric("herenow_redis_crossslot_total");
    redisReply *x = hn_rcl_command(c, "DEL %s %s", "rcl:k1", "rcl:k2");
    check(x && x->type == REDIS_REPLY_ERROR && strncmp(x->str, "CROSSSLOT", 9) == 0, "DEL over two slots: CROSSSLOT",
          x && x->str ? x->str : "no reply");
    if (x) freeReplyObject(x);
    check(metric("herenow_redis_crossslot_total") >= before + 1, "CROSSSLOT counted", NULL);
    check(hn_rcl_err(c) == 0, "the client still works after CROSSSLOT", hn_rcl_errstr(c));

    /* a script loaded on one master runs on all three (NOSCRIPT per node) */
    char sha[41];
    check(hn_rcl_script(c, "return redis.call('INCRBY', KEYS[1], ARGV[1])", sha) == HN_OK, "SCRIPT LOAD", NULL);
    int n0 = metric("herenow_redis_noscript_total");
    bool all = true;
    for (int i = 0; i < 30; i++) {
        snprintf(key, sizeof(key), "rcl:script:%d", i);
        hn_rcl_append(c, "EVALSHA %s 1 %s 5", sha, key);
    }
    for (int i = 0; i < 30; i++) {
        redisReply *y;
        if (hn_rcl_get_reply(c, (void **)&y) != REDIS_OK) {
            all = false;
            break;
        }
        all = all && y->type == REDIS_REPLY_INTEGER && y->integer == 5;
        freeReplyObject(y);
    }
    check(all, "EVALSHA on keys of every master", NULL);
    check(metric("herenow_redis_noscript_total") >= n0 + 2, "NOSCRIPT on the two masters that lacked the script",
          NULL);

    /* XREAD over three streams on three masters, merged */
    const char *streams[3] = {"rcl:s:{a}", "rcl:s:{b}", "rcl:s:{c}"};
    for (int i = 0; i < 3; i++) {
        redisReply *y = hn_rcl_command(c, "XADD %s * n %d", streams[i], i);
        if (y) freeReplyObject(y);
    }
    const char *xr[] = {"XREAD", "COUNT", "10", "BLOCK", "100", "STREAMS", streams[0], streams[1], streams[2],
                        "0", "0", "0"};
    x = hn_rcl_xread(c, 12, xr);
    check(x && x->type == REDIS_REPLY_ARRAY && x->elements == 3, "XREAD over three masters: three streams", NULL);
    if (x) freeReplyObject(x);
    const char *xe[] = {"XREAD", "COUNT", "10", "BLOCK", "150", "STREAMS", streams[0], streams[1], streams[2],
                        "$", "$", "$"};
    uint64_t t0 = hn_mono_us();
    x = hn_rcl_xread(c, 12, xe);
    check(x && x->type == REDIS_REPLY_NIL && hn_mono_us() - t0 >= 150000, "XREAD BLOCK with nothing new: nil", NULL);
    if (x) freeReplyObject(x);
    for (int i = 0; i < 3; i++) {
        redisReply *y = hn_rcl_command(c, "XGROUP CREATE %s g 0", streams[i]);
        if (y) freeReplyObject(y);
    }
    const char *xg[] = {"XREADGROUP", "GROUP", "g", "me", "COUNT", "10", "STREAMS",
                        streams[0], streams[1], streams[2], ">", ">", ">"};
    x = hn_rcl_xread(c, 13, xg);
    size_t entries = 0;
    if (x && x->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < x->elements; i++) entries += x->element[i]->element[1]->elements;
    check(entries == 3, "XREADGROUP over three masters: three entries", NULL);
    if (x) freeReplyObject(x);
    check(hn_rcl_err(c) == 0, "no error left", hn_rcl_errstr(c));
    hn_rcl_free(c);
}

/* ---- a slot moved by hand --------------------------------------------- */

static redisContext *admin(const char *hostport) {
    char host[256];
    const char *colon = strrchr(hostport, ':');
    snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
    redisContext *x = redisConnect(host, atoi(colon + 1));
    if (!x || x->err) {
        fprintf(stderr, "hn-rcltest: connect %s failed\n", hostport);
        exit(2);
    }
    return x;
}

static void must(redisContext *x, const char *what, redisReply *r) {
    if (!r || r->type == REDIS_REPLY_ERROR) {
        fprintf(stderr, "hn-rcltest: %s: %s\n", what, r ? r->str : x->errstr);
        exit(2);
    }
    freeReplyObject(r);
}

static void node_id(redisContext *x, char id[41]) {
    redisReply *r = redisCommand(x, "CLUSTER MYID");
    snprintf(id, 41, "%s", r && r->type == REDIS_REPLY_STRING ? r->str : "");
    if (r) freeReplyObject(r);
}

static void reshard(const char *url) {
    hn_rcl *c = open_url(url, 400);
    /* the keys: {mv} … ; the slot moves from its master to the next master */
    const char *k_old = "rcl:{mv}:old", *k_new = "rcl:{mv}:new";
    uint16_t slot = hn_slot(k_old, strlen(k_old));
    char from[300], to[300];
    snprintf(from, sizeof(from), "%s", hn_rcl_node_of(c, k_old, strlen(k_old)));
    for (int i = 0; i < 300; i++) {             /* another master: the node of some other key */
        char k[32];
        snprintf(k, sizeof(k), "rcl:probe:%d", i);
        snprintf(to, sizeof(to), "%s", hn_rcl_node_of(c, k, strlen(k)));
        if (strcmp(to, from) != 0) break;
    }
    redisReply *r = hn_rcl_command(c, "SET %s %s", k_old, "before");
    check(is_str(r, "OK"), "a key in the slot before the move", NULL);
    if (r) freeReplyObject(r);

    redisContext *a = admin(from), *b = admin(to);
    char aid[41], bid[41];
    node_id(a, aid);
    node_id(b, bid);
    must(b, "IMPORTING", redisCommand(b, "CLUSTER SETSLOT %d IMPORTING %s", (int)slot, aid));
    must(a, "MIGRATING", redisCommand(a, "CLUSTER SETSLOT %d MIGRATING %s", (int)slot, bid));

    /* a new key while the slot moves: the old master answers ASK */
    int ask0 = metric("herenow_redis_redirects_total{kind=\"ask\"}");
    r = hn_rcl_command(c, "SET %s %s", k_new, "during");
    check(is_str(r, "OK"), "SET of a new key in a migrating slot", r && r->str ? r->str : hn_rcl_errstr(c));
    if (r) freeReplyObject(r);
    check(metric("herenow_redis_redirects_total{kind=\"ask\"}") >= ask0 + 1, "ASK followed (ASKING on the target)",
          NULL);
    /* a transaction on a new key of the moving slot: ASK, then the whole
     * MULTI … EXEC on the target after one ASKING (EXEC: the two replies) */
    hn_rcl_append(c, "MULTI");
    hn_rcl_append(c, "DEL %s", "rcl:{mv}:set");
    hn_rcl_append(c, "SADD %s %s %s", "rcl:{mv}:set", "a", "b");
    hn_rcl_append(c, "EXEC");
    redisReply *tx[4] = {0};
    bool txok = true;
    for (int i = 0; i < 4; i++) txok = txok && hn_rcl_get_reply(c, (void **)&tx[i]) == REDIS_OK && tx[i];
    check(txok && tx[3]->type == REDIS_REPLY_ARRAY && tx[3]->elements == 2 &&
              tx[3]->element[1]->type == REDIS_REPLY_INTEGER && tx[3]->element[1]->integer == 2,
          "MULTI DEL SADD EXEC in a migrating slot: EXEC answers its two commands", NULL);
    for (int i = 0; i < 4; i++)
        if (tx[i]) freeReplyObject(tx[i]);
    /* the old key is still on the old master: answered there, no redirect */
    r = hn_rcl_command(c, "GET %s", k_old);
    check(is_str(r, "before"), "GET of a key not moved yet", NULL);
    if (r) freeReplyObject(r);
    /* one command over both: TRYAGAIN, retried, then handed back (400 ms budget) */
    int try0 = metric("herenow_redis_retries_total{reason=\"tryagain\"}");
    uint64_t t0 = hn_mono_us();
    r = hn_rcl_command(c, "MGET %s %s", k_old, k_new);
    check(r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "TRYAGAIN", 8) == 0,
          "MGET split by the move: TRYAGAIN after the retry budget", r && r->str ? r->str : hn_rcl_errstr(c));
    if (r) freeReplyObject(r);
    int tries = metric("herenow_redis_retries_total{reason=\"tryagain\"}") - try0;
    double took = (hn_mono_us() - t0) / 1e3;
    printf("# TRYAGAIN %d times in %.0f ms\n", tries, took);
    /* backoffs of 4-8, 8-16, 16-32, … ms: within 400 ms at least 4 tries, ≥ 28 ms apart in all */
    check(tries >= 4 && took >= 28, "TRYAGAIN retried with backoff", NULL);
    check(hn_rcl_err(c) == 0, "the client still works after TRYAGAIN", hn_rcl_errstr(c));

    /* move the old key, then give the slot to the target everywhere */
    const char *colon = strrchr(to, ':');
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - to), to);
    must(a, "MIGRATE", redisCommand(a, "MIGRATE %s %s %s 0 5000 KEYS %s", host, colon + 1, "", k_old));
    must(b, "NODE b", redisCommand(b, "CLUSTER SETSLOT %d NODE %s", (int)slot, bid));
    must(a, "NODE a", redisCommand(a, "CLUSTER SETSLOT %d NODE %s", (int)slot, bid));
    redisFree(a);
    redisFree(b);

    int moved0 = metric("herenow_redis_redirects_total{kind=\"moved\"}");
    r = hn_rcl_command(c, "MGET %s %s", k_old, k_new);
    check(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 && is_str(r->element[0], "before") &&
              is_str(r->element[1], "during"),
          "after the move: both keys, from the new master", r && r->str ? r->str : hn_rcl_errstr(c));
    if (r) freeReplyObject(r);
    check(metric("herenow_redis_redirects_total{kind=\"moved\"}") >= moved0 + 1, "MOVED followed", NULL);
    check(strcmp(hn_rcl_node_of(c, k_old, strlen(k_old)), to) == 0, "the slot map knows the new master", NULL);
    hn_rcl_free(c);
}

/* Moves slots [first, first + count) from the master at from to the master
 * at to, one slot at a time as `redis-cli --cluster reshard` does (SETSLOT
 * IMPORTING and MIGRATING, MIGRATE of its keys in batches, SETSLOT NODE on
 * both and on every other master), while the system writes: its clients see
 * ASK while a slot moves and MOVED after. Prints the time it took. */
static void move_slots(const char *url, const char *from, const char *to, int first, int count, int hold_slot,
                       int hold_ms) {
    hn_rcl *c = open_url(url, 0);
    int nm = hn_rcl_masters(c);
    redisContext *a = admin(from), *b = admin(to);
    char aid[41], bid[41];
    node_id(a, aid);
    node_id(b, bid);
    const char *colon = strrchr(to, ':');
    char host[256];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - to), to);
    uint64_t t0 = hn_mono_us();
    long keys = 0;
    for (int slot = first; slot < first + count; slot++) {
        must(b, "IMPORTING", redisCommand(b, "CLUSTER SETSLOT %d IMPORTING %s", slot, aid));
        must(a, "MIGRATING", redisCommand(a, "CLUSTER SETSLOT %d MIGRATING %s", slot, bid));
        if (slot == hold_slot) {
            /* the slot of the writes stays half-moved for a while: new keys
             * go to the target (ASK), old ones stay (a window for the test,
             * as a slot with many keys takes to move) */
            struct timespec ts = {hold_ms / 1000, (long)(hold_ms % 1000) * 1000000};
            nanosleep(&ts, NULL);
        }
        for (;;) {
            redisReply *r = redisCommand(a, "CLUSTER GETKEYSINSLOT %d 100", slot);
            if (!r || r->type != REDIS_REPLY_ARRAY) {
                fprintf(stderr, "hn-rcltest: GETKEYSINSLOT failed\n");
                exit(2);
            }
            size_t n = r->elements;
            if (n > 0) {
                const char **argv = hn_xcalloc(n + 8, sizeof(char *));
                int k = 0;
                argv[k++] = "MIGRATE";
                argv[k++] = host;
                argv[k++] = colon + 1;
                argv[k++] = "";
                argv[k++] = "0";
                argv[k++] = "10000";
                argv[k++] = "REPLACE";
                argv[k++] = "KEYS";
                for (size_t i = 0; i < n; i++) argv[k++] = r->element[i]->str;
                must(a, "MIGRATE", redisCommandArgv(a, k, argv, NULL));
                free(argv);
                keys += (long)n;
            }
            freeReplyObject(r);
            if (n == 0) break;
        }
        must(b, "NODE", redisCommand(b, "CLUSTER SETSLOT %d NODE %s", slot, bid));
        must(a, "NODE", redisCommand(a, "CLUSTER SETSLOT %d NODE %s", slot, bid));
        for (int m = 0; m < nm; m++) {            /* the other masters too, as redis-cli does */
            redisReply *r = hn_rcl_command_on(c, m, "CLUSTER SETSLOT %d NODE %s", slot, bid);
            if (r) freeReplyObject(r);
        }
    }
    printf("# moved slots %d..%d (%ld keys) from %s to %s in %.1f s\n", first, first + count - 1, keys, from, to,
           (hn_mono_us() - t0) / 1e6);
    check(true, "slots moved", NULL);
    redisFree(a);
    redisFree(b);
    hn_rcl_free(c);
}

/* The slot of key and the contiguous slots around it on the same master:
 * "SLOT LO HI host:port". */
static void range_of(const char *url, const char *key) {
    hn_redis_cfg cfg;
    char err[256];
    if (hn_redis_cfg_parse(url, &cfg, err, sizeof(err)) != HN_OK) exit(2);
    char hp[300];
    snprintf(hp, sizeof(hp), "%s:%d", cfg.seed[0].host, cfg.seed[0].port);
    redisContext *x = admin(hp);
    redisReply *r = redisCommand(x, "CLUSTER SLOTS");
    hn_rmap *m = hn_xmalloc(sizeof(*m));
    if (hn_rmap_parse(r, cfg.seed[0].host, m, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "hn-rcltest: %s\n", err);
        exit(2);
    }
    int slot = hn_slot(key, strlen(key)), node = hn_rmap_master(m, (uint16_t)slot), lo = slot, hi = slot;
    while (lo > 0 && hn_rmap_master(m, (uint16_t)(lo - 1)) == node) lo--;
    while (hi < HN_SLOTS - 1 && hn_rmap_master(m, (uint16_t)(hi + 1)) == node) hi++;
    printf("%d %d %d %s:%d\n", slot, lo, hi, m->nodes[node].host, m->nodes[node].port);
    free(m);
    freeReplyObject(r);
    redisFree(x);
}

/* The client reads key (its map now fresh), then the cluster changes under
 * it (a failover asked of a replica, or a master killed), and it reads the
 * key again with that stale map. */
static void change(const char *url, const char *key, const char *how, const char *arg) {
    hn_rcl *c = open_url(url, 15000);
    redisReply *r = hn_rcl_command(c, "GET %s", key);
    check(r && r->type == REDIS_REPLY_STRING, "read before", r && r->str ? r->str : hn_rcl_errstr(c));
    if (r) freeReplyObject(r);
    hn_buf b;
    hn_buf_init(&b, 4096);
    hn_rcl_metrics(&b);
    hn_buf_free(&b);
    int before = metric("herenow_redis_redirects_total{kind=\"moved\"}") +
                 metric("herenow_redis_retries_total{reason=\"readonly\"}") +
                 metric("herenow_redis_retries_total{reason=\"clusterdown\"}") +
                 metric("herenow_redis_retries_total{reason=\"connection\"}");
    if (strcmp(how, "failover") == 0) {
        char hp[64];
        snprintf(hp, sizeof(hp), "127.0.0.1:%s", arg);
        redisContext *x = admin(hp);
        /* the master it replicates: ROLE → [slave, host, port, …] */
        redisReply *role = redisCommand(x, "ROLE");
        char mp[64] = "";
        if (role && role->type == REDIS_REPLY_ARRAY && role->elements >= 3 && role->element[2]->type == REDIS_REPLY_INTEGER)
            snprintf(mp, sizeof(mp), "127.0.0.1:%lld", role->element[2]->integer);
        if (role) freeReplyObject(role);
        check(mp[0] != '\0', "the replica's master", NULL);
        redisContext *old = admin(mp[0] ? mp : hp);
        must(x, "CLUSTER FAILOVER", redisCommand(x, "CLUSTER FAILOVER"));
        /* it answers before it is done: wait until the replica is a master
         * and the old master a replica */
        bool master = false;
        for (uint64_t end = hn_mono_us() + 10000000; !master && hn_mono_us() < end;) {
            redisReply *a = redisCommand(x, "ROLE"), *rb = redisCommand(old, "ROLE");
            master = a && a->type == REDIS_REPLY_ARRAY && a->elements > 0 && is_str(a->element[0], "master") &&
                     rb && rb->type == REDIS_REPLY_ARRAY && rb->elements > 0 && is_str(rb->element[0], "slave");
            if (a) freeReplyObject(a);
            if (rb) freeReplyObject(rb);
            if (!master) {
                struct timespec ts = {0, 20000000};
                nanosleep(&ts, NULL);
            }
        }
        redisFree(old);
        check(master, "the replica is a master, the old master a replica", NULL);
        redisFree(x);
    } else {
        pid_t pid = (pid_t)atol(arg);
        check(pid > 1 && kill(pid, SIGKILL) == 0, "kill -9 of the master", NULL);
    }
    uint64_t t0 = hn_mono_us();
    r = hn_rcl_command(c, "GET %s", key);
    check(r && r->type == REDIS_REPLY_STRING, "read after, with the map of before",
          r && r->str ? r->str : hn_rcl_errstr(c));
    if (r && r->type == REDIS_REPLY_STRING) printf("# %s; read back in %.0f ms\n", r->str, (hn_mono_us() - t0) / 1e3);
    if (r) freeReplyObject(r);
    int after = metric("herenow_redis_redirects_total{kind=\"moved\"}") +
                metric("herenow_redis_retries_total{reason=\"readonly\"}") +
                metric("herenow_redis_retries_total{reason=\"clusterdown\"}") +
                metric("herenow_redis_retries_total{reason=\"connection\"}");
    check(after > before, "the change was seen (MOVED, READONLY, CLUSTERDOWN or a lost connection) and followed",
          NULL);
    hn_rcl_free(c);
}

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "basic") == 0) basic(argv[2]);
    else if (argc >= 3 && strcmp(argv[1], "reshard") == 0) reshard(argv[2]);
    else if (argc >= 4 && strcmp(argv[1], "range") == 0)
        range_of(argv[2], argv[3]);
    else if (argc >= 7 && strcmp(argv[1], "move") == 0)
        move_slots(argv[2], argv[3], argv[4], atoi(argv[5]), atoi(argv[6]), argc >= 9 ? atoi(argv[7]) : -1,
                   argc >= 9 ? atoi(argv[8]) : 0);
    else if (argc >= 5 && (strcmp(argv[1], "failover") == 0 || strcmp(argv[1], "kill") == 0))
        change(argv[2], argv[3], argv[1], argv[4]);
    else if (argc >= 5 && strcmp(argv[1], "set") == 0) {
        /* SET, then WAIT on the same connection to the key's master: the
         * value is on its replica before the test fails the master over */
        hn_rcl *c = open_url(argv[2], 15000);
        redisContext *x = admin(hn_rcl_node_of(c, argv[3], strlen(argv[3])));
        redisReply *r = redisCommand(x, "SET %s %s", argv[3], argv[4]);
        check(is_str(r, "OK"), "SET", r && r->str ? r->str : x->errstr);
        if (r) freeReplyObject(r);
        r = redisCommand(x, "WAIT 1 5000");
        check(r && r->type == REDIS_REPLY_INTEGER && r->integer == 1, "WAIT: on the replica", NULL);
        if (r) freeReplyObject(r);
        redisFree(x);
        hn_rcl_free(c);
    } else if (argc >= 4 && strcmp(argv[1], "get") == 0) {
        hn_rcl *c = open_url(argv[2], 15000);
        redisReply *r = hn_rcl_command(c, "GET %s", argv[3]);
        if (r && r->type == REDIS_REPLY_STRING) printf("%s\n", r->str);
        else check(false, "GET", r && r->str ? r->str : hn_rcl_errstr(c));
        if (r) freeReplyObject(r);
        hn_rcl_free(c);
    } else if (argc >= 4 && strcmp(argv[1], "node-of") == 0) {
        hn_rcl *c = open_url(argv[2], 0);
        printf("%s\n", hn_rcl_node_of(c, argv[3], strlen(argv[3])));
        hn_rcl_free(c);
    } else {
        fprintf(stderr, "usage: hn-rcltest basic|reshard URL | set URL KEY VAL | get URL KEY | node-of URL KEY\n");
        return 2;
    }
    return failed;
}
