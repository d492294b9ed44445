/*
 * legacy.c: the drain's legacy stream keys (legacy.h).
 *
 * Worker 0's cycle, every HN_DRAIN_TRIM_EVERY_MS (worker.c):
 *
 *   hn_drain_legacy_tick
 *     for each known legacy key: EVAL check_and_delete — trims what the
 *       group acknowledged; DEL when XLEN is 0 and 0 pending
 *     SCAN <cursor> MATCH hn:stream:* COUNT 1000 TYPE stream (≤ 10 steps,
 *       the cursor kept across ticks, a new pass after 0)
 *       a stream that is not a current shard name: XGROUP CREATE k drain 0
 *   and, on its turn, a batch of hn_drain_legacy_read instead of the shards'
 *     XREADGROUP … STREAMS <legacy keys> 0 | XAUTOCLAIM | … >
 *     → the same PostgreSQL write (as redelivered: records already there
 *       are left out) and hn_drain_stream_ack (the entries' index says the key)
 *
 * Deleting is safe against a writer: the check and the DEL are one script,
 * and an XADD after it makes a new key (without the group), which the next
 * SCAN pass finds. An entry is acknowledged only after its records are in
 * PostgreSQL, and the script deletes only a key whose every entry the group
 * delivered and whose pending list is empty: nothing unwritten is lost.
 *
 * The SCAN sees one server: on a Redis Cluster a pass walks every master
 * in turn (hn_rcl_command_on), a cursor at a time. The other commands are
 * single-key, routed by slot (the XREADGROUP over several legacy keys is
 * one per key, like the shards': hn_rcl_xread).
 */
#include "api/drain/legacy.h"

#include "api/drain/stream.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DRAIN_GROUP      "drain"      /* stream.c's */
#define SCAN_STEPS       10
#define LEGACY_MATCH     HN_KEY_STREAM_PREFIX "*"

/* KEYS[1]: a legacy stream, ARGV[1]: the group. 1: deleted; 0: records
 * left (pending, or not delivered yet), what was acknowledged trimmed;
 * -1: not a stream with the group (gone, or made again by an XADD). */
static const char check_and_delete[] =
    "if redis.call('TYPE', KEYS[1]).ok ~= 'stream' then return -1 end\n"
    "local last, pending\n"
    "for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do\n"
    "  local f = {}\n"
    "  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end\n"
    "  if f['name'] == ARGV[1] then last, pending = f['last-delivered-id'], f['pending'] end\n"
    "end\n"
    "if last == nil then return -1 end\n"
    "if pending > 0 then\n"
    "  local p = redis.call('XPENDING', KEYS[1], ARGV[1])\n"
    "  redis.call('XTRIM', KEYS[1], 'MINID', p[2])\n"
    "  return 0\n"
    "end\n"
    "if #redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1) > 0 then\n"
    "  redis.call('XTRIM', KEYS[1], 'MINID', last)\n"
    "  return 0\n"
    "end\n"
    /* every entry is at or below last, delivered and acknowledged */
    "redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)\n"
    "if redis.call('XLEN', KEYS[1]) ~= 0 then return 0 end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return 1\n";

int hn_drain_nkeys(const hn_drain_worker *d) { return d->nshards + d->nlegacy; }

size_t hn_drain_key(const hn_drain_worker *d, int idx, char *out) {
    if (idx >= d->nshards && idx - d->nshards < d->nlegacy) {
        size_t n = strlen(d->legacy[idx - d->nshards]);
        memcpy(out, d->legacy[idx - d->nshards], n + 1);
        return n;
    }
    return hn_key_stream(out, (unsigned)idx, (unsigned)d->nshards);
}

int hn_drain_key_index(const hn_drain_worker *d, const char *key, size_t len) {
    if (hn_key_stream_is_current(key, len, (unsigned)d->nshards))
        return hn_key_stream_shard(key, len);
    for (int i = 0; i < d->nlegacy; i++)
        if (strlen(d->legacy[i]) == len && memcmp(d->legacy[i], key, len) == 0)
            return d->nshards + i;
    return -1;
}

void hn_drain_legacy_free(hn_drain_worker *d) {
    free(d->legacy);
    d->legacy = NULL;
    d->nlegacy = 0;
}

static void forget(hn_drain_worker *d, int i) {
    d->nlegacy--;
    if (i != d->nlegacy) memcpy(d->legacy[i], d->legacy[d->nlegacy], HN_KEY_CAP);
}

/* The group on a stream SCAN found (XGROUP CREATE without MKSTREAM: a key
 * deleted meanwhile stays deleted), and the key into the list. */
static int take_key(hn_drain_worker *d, const char *key, size_t len) {
    if (len == 0 || len >= HN_KEY_CAP || memchr(key, '\0', len) != NULL) {
        hn_warn("event=drain_legacy_key_skipped len=%zu", len);
        return HN_OK;
    }
    if (hn_drain_key_index(d, key, len) >= 0) return HN_OK;   /* current, or known */
    if (d->nlegacy == HN_DRAIN_LEGACY_MAX) return HN_OK;        /* a later pass */
    const char *argv[] = {"XGROUP", "CREATE", key, DRAIN_GROUP, "0"};
    size_t lens[] = {6, 6, len, sizeof(DRAIN_GROUP) - 1, 1};
    redisReply *r = hn_drain_stream_cmd(d, 5, argv, lens);
    if (r == NULL) return HN_ERR;
    bool ok = r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSYGROUP", 9) == 0;
    if (!ok) hn_warn("event=drain_legacy_xgroup_failed key='%.*s' err='%s'", (int)len, key, r->str);
    freeReplyObject(r);
    if (!ok) return HN_OK;
    if (d->legacy == NULL) d->legacy = hn_xcalloc(HN_DRAIN_LEGACY_MAX, HN_KEY_CAP);
    memcpy(d->legacy[d->nlegacy], key, len);
    d->legacy[d->nlegacy][len] = '\0';
    d->nlegacy++;
    hn_info("event=drain_legacy_stream key='%s' shards=%d", d->legacy[d->nlegacy - 1], d->nshards);
    return HN_OK;
}

/* Trims, and deletes the legacy keys that are done. */
static int check_all(hn_drain_worker *d) {
    for (int i = d->nlegacy - 1; i >= 0; i--) {
        const char *argv[] = {"EVAL", check_and_delete, "1", d->legacy[i], DRAIN_GROUP};
        redisReply *r = hn_drain_stream_cmd(d, 5, argv, NULL);
        if (r == NULL) return HN_ERR;
        if (r->type == REDIS_REPLY_INTEGER && r->integer != 0) {
            if (r->integer > 0) hn_info("event=drain_legacy_deleted key='%s'", d->legacy[i]);
            else hn_info("event=drain_legacy_gone key='%s'", d->legacy[i]);
            forget(d, i);
        } else if (r->type == REDIS_REPLY_ERROR) {
            hn_warn("event=drain_legacy_check_failed key='%s' err='%s'", d->legacy[i], r->str);
        }
        freeReplyObject(r);
    }
    return HN_OK;
}

/* Up to SCAN_STEPS steps of the SCAN pass. One server: that server's
 * keys. A cluster: SCAN walks one node's keys, so the pass goes over every
 * master in turn (the cursor is the current master's); each XGROUP CREATE
 * then goes to the key's node. */
static int scan(hn_drain_worker *d) {
    if (d->legacy_cursor[0] == '\0') strcpy(d->legacy_cursor, "0");
    for (int step = 0; step < SCAN_STEPS; step++) {
        int masters = hn_rcl_masters(d->rc);
        if (d->legacy_master >= masters) {              /* the cluster has fewer masters now */
            d->legacy_master = 0;
            strcpy(d->legacy_cursor, "0");
        }
        redisReply *r = hn_rcl_command_on(d->rc, d->legacy_master, "SCAN %s MATCH %s COUNT 1000 TYPE stream",
                                          d->legacy_cursor, LEGACY_MATCH);
        if (r == NULL) {
            if (hn_rcl_err(d->rc) || !hn_rcl_cluster(d->rc)) {
                hn_warn("event=drain_redis_error err='%s'", hn_rcl_errstr(d->rc));
                hn_drain_stream_close(d);
                return HN_ERR;
            }
            /* a cluster node not reachable now: the next tick asks again */
            hn_warn("event=drain_legacy_scan_failed master=%d err='node unreachable'", d->legacy_master);
            return HN_OK;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_ARRAY) {
            hn_warn("event=drain_legacy_scan_failed err='%s'",
                    r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            freeReplyObject(r);
            strcpy(d->legacy_cursor, "0");
            return HN_OK;
        }
        snprintf(d->legacy_cursor, sizeof(d->legacy_cursor), "%s", r->element[0]->str);
        redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements; i++) {
            redisReply *k = keys->element[i];
            if (k->type != REDIS_REPLY_STRING) continue;
            if (take_key(d, k->str, k->len) != HN_OK) { freeReplyObject(r); return HN_ERR; }
        }
        freeReplyObject(r);
        if (strcmp(d->legacy_cursor, "0") == 0) {
            /* this master is done: the next one, or the pass is */
            if (++d->legacy_master < masters) continue;
            d->legacy_master = 0;
            break;
        }
    }
    return HN_OK;
}

void hn_drain_legacy_tick(hn_drain_worker *d) {
    if (d->rc == NULL) return;
    if (check_all(d) != HN_OK || scan(d) != HN_OK) return;
    d->legacy_turn = d->nlegacy > 0;
    pthread_mutex_lock(&d->mu);
    d->g_legacy = d->nlegacy;
    pthread_mutex_unlock(&d->mu);
}

/* XREADGROUP over the legacy keys with one id ("0" or ">"), not blocking. */
static int read_all(hn_drain_worker *d, const char *id) {
    int n = d->nlegacy, argc = 0;
    const char **argv = hn_xcalloc((size_t)(7 + 2 * n), sizeof(char *));
    char count[24];
    snprintf(count, sizeof(count), "%lld", (long long)d->cfg->drain_batch);
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = DRAIN_GROUP;
    argv[argc++] = d->consumer;
    argv[argc++] = "COUNT";
    argv[argc++] = count;
    argv[argc++] = "STREAMS";
    /* a cluster: keys of several slots, one XREADGROUP each (hn_rcl_xread) */
    for (int i = 0; i < n; i++) argv[argc++] = d->legacy[i];
    for (int i = 0; i < n; i++) argv[argc++] = id;
    redisReply *r = hn_drain_stream_xread(d, argc, argv);
    free(argv);
    if (r == NULL) return HN_ERR;
    if (r->type == REDIS_REPLY_ERROR) {
        /* NOGROUP: a key deleted and made again meanwhile; the next tick's
         * check forgets it and the SCAN takes it again */
        hn_warn("event=drain_legacy_read_failed err='%s'", r->str);
        freeReplyObject(r);
        return HN_OK;
    }
    hn_drain_stream_take_reply(d, r);
    hn_drain_stream_keep_reply(d, r);
    return HN_OK;
}

/* XAUTOCLAIM on each legacy key: entries of consumers gone (a drain that
 * read the key when it was a shard, then stopped). */
static int claim_all(hn_drain_worker *d) {
    char count[24], idle[24];
    snprintf(count, sizeof(count), "%lld", (long long)d->cfg->drain_batch);
    snprintf(idle, sizeof(idle), "%lld", (long long)d->cfg->drain_claim_idle_ms);
    for (int i = 0; i < d->nlegacy && d->batch.nentries == 0; i++) {
        const char *argv[] = {"XAUTOCLAIM", d->legacy[i], DRAIN_GROUP, d->consumer, idle, "0-0",
                              "COUNT", count};
        redisReply *r = hn_drain_stream_cmd(d, 8, argv, NULL);
        if (r == NULL) return HN_ERR;
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 && r->element[1]->type == REDIS_REPLY_ARRAY) {
            redisReply *list = r->element[1];
            for (size_t j = 0; j < list->elements; j++)
                hn_drain_stream_take_entry(d, d->nshards + i, list->element[j]);
            if (list->elements) {
                hn_info("event=drain_legacy_claimed key='%s' entries=%zu", d->legacy[i], list->elements);
                pthread_mutex_lock(&d->mu);
                d->m_claimed += list->elements;
                pthread_mutex_unlock(&d->mu);
            }
        } else if (r->type == REDIS_REPLY_ERROR) {
            hn_warn("event=drain_legacy_claim_failed key='%s' err='%s'", d->legacy[i], r->str);
        }
        hn_drain_stream_keep_reply(d, r);
    }
    return HN_OK;
}

int hn_drain_legacy_read(hn_drain_worker *d) {
    d->legacy_turn = false;
    if (d->nlegacy == 0) return HN_OK;
    hn_drain_batch *b = &d->batch;
    if (read_all(d, "0") != HN_OK) return HN_ERR;
    if (b->nentries == 0 && claim_all(d) != HN_OK) return HN_ERR;
    if (b->nentries == 0 && read_all(d, ">") != HN_OK) return HN_ERR;
    /* a full batch: more on the next turn, after one of the shards' */
    d->legacy_turn = b->nentries >= (size_t)d->cfg->drain_batch;
    return HN_OK;
}
