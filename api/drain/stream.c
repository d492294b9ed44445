/*
 * stream.c: the drain's Redis side (stream.h), over the worker's blocking
 * hn_rcl: the group on every shard, reading entries into the batch,
 * acknowledging them, and trimming what every consumer has written.
 */
#include "api/drain/stream.h"

#include "api/drain/legacy.h"
#include "common/log.h"
#include "proto/keys.h"
#include "proto/record.h"

#include <stdio.h>
#include <stdlib.h>

#define DRAIN_GROUP "drain"

void hn_drain_stream_close(hn_drain_worker *d) {
    if (d->rc) hn_rcl_free(d->rc);
    d->rc = NULL;
}

void hn_drain_stream_release(hn_drain_worker *d) {
    for (size_t i = 0; i < d->nreplies; i++) freeReplyObject(d->replies[i]);
    d->nreplies = 0;
}

/* xread: XREADGROUP over shards in several slots (hn_rcl_xread) */
static redisReply *run_cmd(hn_drain_worker *d, int argc, const char **argv, const size_t *lens, bool xread) {
    redisReply *r = xread ? hn_rcl_xread(d->rc, argc, argv) : hn_rcl_command_argv(d->rc, argc, argv, lens);
    if (r == NULL) {
        hn_warn("event=drain_redis_error err='%s'", hn_rcl_errstr(d->rc));
        hn_drain_stream_close(d);
    }
    return r;
}

redisReply *hn_drain_stream_cmd(hn_drain_worker *d, int argc, const char **argv, const size_t *lens) {
    return run_cmd(d, argc, argv, lens, false);
}

redisReply *hn_drain_stream_xread(hn_drain_worker *d, int argc, const char **argv) {
    return run_cmd(d, argc, argv, NULL, true);
}

int hn_drain_stream_connect(hn_drain_worker *d) {
    if (d->rc) return HN_OK;
    char err[256];
    /* replies to XREADGROUP … BLOCK take up to block ms */
    int timeout = (int)d->cfg->drain_block_ms + (int)d->cfg->api_timeout_ms;
    d->rc = hn_rcl_connect(&d->addr, timeout, err, sizeof(err));
    if (d->rc == NULL) {
        hn_warn("event=drain_redis_connect_failed err='%s'", err);
        return HN_ERR;
    }
    for (int s = 0; s < d->nshards; s++) {
        char key[HN_KEY_CAP];
        hn_key_stream(key, (unsigned)s, (unsigned)d->nshards);
        const char *argv[] = {"XGROUP", "CREATE", key, DRAIN_GROUP, "0", "MKSTREAM"};
        redisReply *r = hn_drain_stream_cmd(d, 6, argv, NULL);
        if (r == NULL) return HN_ERR;
        bool ok = r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSYGROUP", 9) == 0;
        if (!ok) hn_warn("event=drain_xgroup_failed key=%s err='%s'", key, r->str);
        freeReplyObject(r);
        if (!ok) { hn_drain_stream_close(d); return HN_ERR; }
    }
    hn_info("event=drain_redis_connected consumer=%s shards=%d", d->consumer, d->nshards);
    return HN_OK;
}

/* ---- reading entries ---------------------------------------------------------------- */

/* Takes one entry [id, [field, value, …]] (value nil: deleted meanwhile).
 * Its "r" field stays in the reply, which the batch keeps. */
void hn_drain_stream_take_entry(hn_drain_worker *d, int shard, redisReply *e) {
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return;
    hn_drain_entry *de = hn_drain_batch_add(&d->batch);
    de->shard = shard;
    snprintf(de->id, sizeof(de->id), "%s", e->element[0]->str);
    if (e->elements < 2 || e->element[1]->type != REDIS_REPLY_ARRAY) {
        /* pending, but deleted from the stream meanwhile (MAXLEN guard, or
         * an XTRIM by hand): its records are gone; count and say so */
        hn_warn("event=drain_entry_deleted shard=%d entry=%s", shard, de->id);
        pthread_mutex_lock(&d->mu);
        d->m_deleted++;
        pthread_mutex_unlock(&d->mu);
        return;
    }
    redisReply *fv = e->element[1];
    for (size_t j = 0; j + 1 < fv->elements; j += 2) {
        redisReply *k = fv->element[j], *v = fv->element[j + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, HN_STREAM_FIELD) == 0 &&
            v->type == REDIS_REPLY_STRING) {
            de->data = v->str;
            de->len = v->len;
            d->batch.bytes += v->len;
            return;
        }
    }
    hn_drain_batch_reject(&d->batch, de, "no field 'r'");
}

void hn_drain_stream_keep_reply(hn_drain_worker *d, redisReply *r) {
    if (d->nreplies == d->cap_replies) {
        d->cap_replies = d->cap_replies ? d->cap_replies * 2 : 8;
        d->replies = hn_xreallocarray(d->replies, d->cap_replies, sizeof(*d->replies));
    }
    d->replies[d->nreplies++] = r;
}

/* Parses XREADGROUP's reply: [[key, [entry, …]], …]. */
void hn_drain_stream_take_reply(hn_drain_worker *d, redisReply *r) {
    if (r->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *s = r->element[i];
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
            s->element[0]->type != REDIS_REPLY_STRING)
            continue;
        int shard = hn_drain_key_index(d, s->element[0]->str, s->element[0]->len);
        if (shard < 0) continue;
        redisReply *list = s->element[1];
        if (list->type != REDIS_REPLY_ARRAY) continue;
        for (size_t j = 0; j < list->elements; j++) hn_drain_stream_take_entry(d, shard, list->element[j]);
    }
}

/* XREADGROUP over every shard with the same id ("0": own pending, ">": new). */
int hn_drain_stream_read(hn_drain_worker *d, const char *id, bool block) {
    int argc = 0;
    const char **argv = hn_xcalloc((size_t)(10 + 2 * d->nshards), sizeof(char *));
    char (*keys)[HN_KEY_CAP] = hn_xcalloc((size_t)d->nshards, HN_KEY_CAP);
    char count[24], blockms[24];
    snprintf(count, sizeof(count), "%lld", (long long)d->cfg->drain_batch);
    snprintf(blockms, sizeof(blockms), "%lld", (long long)d->cfg->drain_block_ms);
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = DRAIN_GROUP;
    argv[argc++] = d->consumer;
    argv[argc++] = "COUNT";
    argv[argc++] = count;
    if (block) {
        argv[argc++] = "BLOCK";
        argv[argc++] = blockms;
    }
    argv[argc++] = "STREAMS";
    for (int s = 0; s < d->nshards; s++) {
        hn_key_stream(keys[s], (unsigned)s, (unsigned)d->nshards);
        argv[argc++] = keys[s];
    }
    for (int s = 0; s < d->nshards; s++) argv[argc++] = id;
    uint64_t t0 = hn_mono_us();
    redisReply *r = run_cmd(d, argc, argv, NULL, true);
    d->read_us = hn_mono_us() - t0;
    free(argv);
    free(keys);
    if (r == NULL) return HN_ERR;
    if (r->type == REDIS_REPLY_ERROR) {
        hn_warn("event=drain_read_failed err='%s'", r->str);
        /* NOGROUP: the stream or group was deleted (Redis lost its data):
         * make them again on the next connect */
        freeReplyObject(r);
        hn_drain_stream_close(d);
        return HN_ERR;
    }
    hn_drain_stream_take_reply(d, r);
    hn_drain_stream_keep_reply(d, r);
    return HN_OK;
}

/* XAUTOCLAIM on every shard: entries of consumers that died. */
int hn_drain_stream_claim(hn_drain_worker *d) {
    char count[24], idle[24];
    snprintf(count, sizeof(count), "%lld", (long long)d->cfg->drain_batch);
    snprintf(idle, sizeof(idle), "%lld", (long long)d->cfg->drain_claim_idle_ms);
    for (int s = 0; s < d->nshards; s++) {
        char key[HN_KEY_CAP];
        hn_key_stream(key, (unsigned)s, (unsigned)d->nshards);
        const char *argv[] = {"XAUTOCLAIM", key, DRAIN_GROUP, d->consumer, idle, "0-0",
                              "COUNT", count};
        redisReply *r = hn_drain_stream_cmd(d, 8, argv, NULL);
        if (r == NULL) return HN_ERR;
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
            r->element[1]->type == REDIS_REPLY_ARRAY) {
            /* more to claim: again on the next cycle */
            if (r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "0-0") != 0)
                d->claim_more = true;
            size_t before = d->batch.nentries;
            redisReply *list = r->element[1];
            for (size_t j = 0; j < list->elements; j++) hn_drain_stream_take_entry(d, s, list->element[j]);
            size_t n = d->batch.nentries - before;
            if (n) {
                hn_info("event=drain_claimed shard=%d entries=%zu", s, n);
                pthread_mutex_lock(&d->mu);
                d->m_claimed += n;
                pthread_mutex_unlock(&d->mu);
            }
        } else if (r->type == REDIS_REPLY_ERROR) {
            hn_warn("event=drain_claim_failed err='%s'", r->str);
        }
        hn_drain_stream_keep_reply(d, r);
    }
    return HN_OK;
}

/* XACK the batch's entries, one command per shard (and legacy key: its
 * index past the shards, legacy.h), pipelined. */
int hn_drain_stream_ack(hn_drain_worker *d) {
    const hn_drain_batch *b = &d->batch;
    if (d->rc == NULL) return HN_ERR;          /* closed since the read (the batch stays pending) */
    int sent = 0;
    for (int s = 0; s < hn_drain_nkeys(d); s++) {
        size_t n = 0;
        for (size_t i = b->lo; i < b->hi; i++) n += b->entries[i].shard == s;
        if (n == 0) continue;
        const char **argv = hn_xcalloc(n + 3, sizeof(char *));
        char key[HN_KEY_CAP];
        hn_drain_key(d, s, key);
        argv[0] = "XACK";
        argv[1] = key;
        argv[2] = DRAIN_GROUP;
        size_t k = 3;
        for (size_t i = b->lo; i < b->hi; i++)
            if (b->entries[i].shard == s) argv[k++] = b->entries[i].id;
        hn_rcl_append_argv(d->rc, (int)k, argv, NULL);
        free(argv);
        sent++;
    }
    int rc = HN_OK;
    for (int i = 0; i < sent; i++) {
        redisReply *r = NULL;
        if (hn_rcl_get_reply(d->rc, (void **)&r) != REDIS_OK) {
            hn_warn("event=drain_ack_failed err='%s'", hn_rcl_errstr(d->rc));
            hn_drain_stream_close(d);
            return HN_ERR;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            hn_warn("event=drain_ack_failed err='%s'", r->str);
            rc = HN_ERR;
        }
        freeReplyObject(r);
    }
    return rc;
}

static void append3(hn_drain_worker *d, const char *a0, const char *a1, const char *a2) {
    const char *argv[3] = {a0, a1, a2};
    hn_rcl_append_argv(d->rc, a2 ? 3 : 2, argv, NULL);
}

/* Reads n replies; false when the connection failed (then closed). */
static bool drain_replies(hn_drain_worker *d, size_t n, redisReply **out) {
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (hn_rcl_get_reply(d->rc, (void **)&r) != REDIS_OK) {
            hn_warn("event=drain_forget_failed err='%s'", hn_rcl_errstr(d->rc));
            for (size_t k = 0; k < i && out; k++) freeReplyObject(out[k]);
            hn_drain_stream_close(d);
            return false;
        }
        if (out) out[i] = r;
        else freeReplyObject(r);
    }
    return true;
}

/* A score reply later than ms; *bad when the reply is neither a score nor nil. */
static bool later_than(const redisReply *r, uint64_t ms, bool *bad) {
    if (r->type == REDIS_REPLY_NIL) return false;
    if (r->type != REDIS_REPLY_STRING) {
        *bad = true;
        return false;
    }
    return strtoull(r->str, NULL, 10) > ms;
}

void hn_drain_stream_forget(hn_drain_worker *d) {
    const hn_drain_batch *b = &d->batch;
    if (b->ngone == 0 || d->rc == NULL) return;
    char live[HN_KEY_CAP], ended[HN_KEY_CAP], sess[HN_KEY_CAP];
    for (size_t i = 0; i < b->ngone; i++) {
        hn_key_live(live, b->gone[i].widget_id);
        hn_key_ended(ended, b->gone[i].widget_id);
        append3(d, "ZSCORE", live, b->gone[i].sid);
        append3(d, "ZSCORE", ended, b->gone[i].sid);
    }
    size_t n = 2 * b->ngone;
    redisReply **seen = hn_xcalloc(n, sizeof(*seen));
    if (!drain_replies(d, n, seen)) {
        free(seen);
        return;
    }
    size_t sent = 0;
    for (size_t i = 0; i < b->ngone; i++) {
        const hn_drain_gone *g = &b->gone[i];
        /* seen (or ended) after its last erased record: a visit after the
         * erasure, kept, but without the erased visitor's identity; a reply
         * that is an error (a cluster in trouble): left alone */
        bool bad = false;
        bool later = later_than(seen[2 * i], g->last_ms, &bad) | later_than(seen[2 * i + 1], g->last_ms, &bad);
        freeReplyObject(seen[2 * i]);
        freeReplyObject(seen[2 * i + 1]);
        if (bad) continue;
        hn_key_sess(sess, g->widget_id, g->sid, g->len);
        if (later) {
            const char *argv[] = {"HDEL", sess, hn_sf_name[HN_SF_NAME], hn_sf_name[HN_SF_EMAIL],
                                  hn_sf_name[HN_SF_PHONE]};
            hn_rcl_append_argv(d->rc, 5, argv, NULL);
            sent++;
            continue;
        }
        hn_key_live(live, g->widget_id);
        hn_key_ended(ended, g->widget_id);
        append3(d, "ZREM", live, g->sid);
        append3(d, "ZREM", ended, g->sid);
        append3(d, "DEL", sess, NULL);
        sent += 3;
    }
    free(seen);
    if (drain_replies(d, sent, NULL) && sent)
        hn_debug("event=drain_forgot sessions=%zu commands=%zu", b->ngone, sent);
}

/* ---- trimming and lag ---------------------------------------------------------------- */

static uint64_t id_ms(const char *id) { return strtoull(id, NULL, 10); }

/* Orders two stream ids "<ms>-<seq>". */
static int id_cmp(const char *a, const char *b) {
    char *ea, *eb;
    uint64_t ma = strtoull(a, &ea, 10), mb = strtoull(b, &eb, 10);
    if (ma != mb) return ma < mb ? -1 : 1;
    uint64_t sa = *ea == '-' ? strtoull(ea + 1, NULL, 10) : 0;
    uint64_t sb = *eb == '-' ? strtoull(eb + 1, NULL, 10) : 0;
    return sa < sb ? -1 : sa > sb;
}

/* XTRIM MINID to the group's progress: everything below the oldest pending
 * entry (or, none pending, the last delivered one) was written and acked.
 * Also measures pending and lag for the metrics. */
void hn_drain_stream_trim(hn_drain_worker *d) {
    int64_t pending = 0, lag = 0;
    double lag_s = 0;
    uint64_t now = hn_now_ms();
    for (int s = 0; s < d->nshards && d->rc; s++) {
        char key[HN_KEY_CAP];
        hn_key_stream(key, (unsigned)s, (unsigned)d->nshards);
        const char *a1[] = {"XPENDING", key, DRAIN_GROUP};
        const char *a2[] = {"XINFO", "GROUPS", key};
        /* the group's last delivered id first, then the pending list: an
         * entry delivered in between is above that id and stays, while
         * every entry at or below it is either pending (and seen) or
         * acknowledged. The other order could trim entries another
         * consumer read after XPENDING and has not written yet. */
        redisReply *g = hn_drain_stream_cmd(d, 3, a2, NULL);
        if (g == NULL) return;
        redisReply *p = hn_drain_stream_cmd(d, 3, a1, NULL);
        if (p == NULL) { freeReplyObject(g); return; }
        char minid[48] = "", last[48] = "";
        long long npend = 0, nlag = -1;
        if (p->type == REDIS_REPLY_ARRAY && p->elements >= 2) {
            npend = p->element[0]->integer;
            if (npend > 0 && p->element[1]->type == REDIS_REPLY_STRING)
                snprintf(minid, sizeof(minid), "%s", p->element[1]->str);
        }
        if (g->type == REDIS_REPLY_ARRAY) {
            for (size_t i = 0; i < g->elements; i++) {
                redisReply *gi = g->element[i];
                if (gi->type != REDIS_REPLY_ARRAY) continue;
                bool ours = false;
                for (size_t j = 0; j + 1 < gi->elements; j += 2)
                    if (gi->element[j]->type == REDIS_REPLY_STRING &&
                        strcmp(gi->element[j]->str, "name") == 0 &&
                        gi->element[j + 1]->type == REDIS_REPLY_STRING &&
                        strcmp(gi->element[j + 1]->str, DRAIN_GROUP) == 0)
                        ours = true;
                if (!ours) continue;
                for (size_t j = 0; j + 1 < gi->elements; j += 2) {
                    const char *k = gi->element[j]->str;
                    redisReply *v = gi->element[j + 1];
                    if (strcmp(k, "last-delivered-id") == 0 && v->type == REDIS_REPLY_STRING)
                        snprintf(last, sizeof(last), "%s", v->str);
                    else if (strcmp(k, "lag") == 0 && v->type == REDIS_REPLY_INTEGER)
                        nlag = v->integer;
                }
            }
        }
        freeReplyObject(p);
        freeReplyObject(g);
        pending += npend;
        if (nlag > 0) lag += nlag;
        /* the oldest record not yet in PostgreSQL */
        uint64_t oldest = 0;
        if (minid[0]) oldest = id_ms(minid);
        if (nlag > 0 && last[0]) {
            char from[56];
            snprintf(from, sizeof(from), "(%s", last);
            const char *a3[] = {"XRANGE", key, from, "+", "COUNT", "1"};
            redisReply *x = hn_drain_stream_cmd(d, 6, a3, NULL);
            if (x == NULL) return;
            if (x->type == REDIS_REPLY_ARRAY && x->elements == 1 &&
                x->element[0]->type == REDIS_REPLY_ARRAY) {
                uint64_t t = id_ms(x->element[0]->element[0]->str);
                if (oldest == 0 || t < oldest) oldest = t;
            }
            freeReplyObject(x);
        }
        if (oldest && now > oldest && (double)(now - oldest) / 1000.0 > lag_s)
            lag_s = (double)(now - oldest) / 1000.0;

        const char *upto = minid[0] && (!last[0] || id_cmp(minid, last) < 0) ? minid : last;
        /* entries stay HERENOW_STREAM_KEEP_MS at least: live readers tail
         * the stream too (the api's live hub, every api node's), and an
         * entry trimmed before they read it would be an update they miss */
        char keep[48];
        snprintf(keep, sizeof(keep), "%llu-0",
                 (unsigned long long)(now > (uint64_t)d->cfg->stream_keep_ms ? now - (uint64_t)d->cfg->stream_keep_ms : 0));
        if (upto[0] && id_cmp(upto, keep) > 0) upto = keep;
        if (upto[0] && strcmp(upto, "0-0") != 0) {
            const char *a4[] = {"XTRIM", key, "MINID", upto};
            redisReply *t = hn_drain_stream_cmd(d, 4, a4, NULL);
            if (t == NULL) return;
            if (t->type == REDIS_REPLY_INTEGER && t->integer > 0) {
                pthread_mutex_lock(&d->mu);
                d->m_trimmed += (uint64_t)t->integer;
                pthread_mutex_unlock(&d->mu);
            }
            freeReplyObject(t);
        }
    }
    pthread_mutex_lock(&d->mu);
    d->g_pending = pending;
    d->g_lag_entries = lag + pending;
    d->g_lag_s = lag_s;
    pthread_mutex_unlock(&d->mu);
}
