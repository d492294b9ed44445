/*
 * expire.c: unanswered chat invitations expire (expire.h, docs/CHAT.md §5).
 *
 * Worker 0 of each api process's drain, every ttl/10 (0.5–10 s):
 *
 *   BEGIN
 *   UPDATE widget_conversations SET state = 'expired' WHERE id IN (the
 *     oldest `invited`/`shown` ones past the ttl, LIMIT, FOR UPDATE SKIP
 *     LOCKED) AND state IN ('invited', 'shown') RETURNING id, widget, session
 *   one EVAL per row, pipelined: XADD hn:chat:{w} e=expire, and the session
 *     hash's chat_state = expired if it still shows that invitation
 *   COMMIT
 *
 * Exactly once however many api processes run: a row is expired by the one
 * transaction that locked it (another look skips locked rows, and one that
 * comes after the COMMIT finds the state changed), and its entry is written
 * inside that transaction. Redis unreachable: ROLLBACK, the rows wait for the
 * next look. A COMMIT that fails after the EVALs leaves entries of an expiry
 * PostgreSQL did not keep: the next look expires the rows again and adds a
 * second `expire` entry, which the page and the live hub take twice without
 * harm. A WRONGTYPE answer for one row (a key of another type) is logged
 * and counted; the row stays expired, so one bad key cannot hold up the rest.
 * Any other error answer (LOADING, READONLY, OOM...) wrote nothing: the look
 * is rolled back. A row whose hash shows the visitor answered meanwhile (the
 * answer's record not yet drained) gets no entry: the page hears of no
 * expiry, and the answer, once drained, wins over `expired` (sql_chat.c).
 *
 * The partial index widget_conversations_unanswered (sql/005) holds only
 * the rows still waiting for an answer, so a look reads a few pages.
 */
#include "api/drain/expire.h"

#include "api/drain/pg.h"
#include "api/drain/stream.h"
#include "common/ids.h"
#include "common/log.h"
#include "proto/keys.h"
#include "proto/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* $1 the ttl (s), $2 the batch. */
static const char expire_sql[] =
    "UPDATE widget_conversations SET state = 'expired', expired_at = now(), updated_at = now()"
    " WHERE id IN (SELECT id FROM widget_conversations WHERE state IN ('invited', 'shown')"
    "  AND coalesce(invited_at, created_at) < now() - make_interval(secs => $1::integer)"
    "  ORDER BY coalesce(invited_at, created_at) LIMIT $2::integer FOR UPDATE SKIP LOCKED)"
    " AND state IN ('invited', 'shown')"
    " RETURNING id, widget_id, session_id";

/* KEYS: the session hash, hn:chat:{w}. ARGV: conversation, session, MINID,
 * entry id (m), time (t), the hash's fields chat and chat_state. The reads
 * and the XADD come before the one write that cannot fail, so an error
 * (WRONGTYPE) changes nothing; a hash that is gone stays gone. Answers
 * {entry id, 1 when the hash was set}, or {"", 2} and nothing written when
 * the hash shows the visitor has answered that invitation already. */
static const char expire_lua[] =
    "local h = redis.call('HMGET', KEYS[1], ARGV[6], ARGV[7])\n"
    "if h[1] == ARGV[1] and h[2] and h[2] ~= 'invited' and h[2] ~= 'shown' and h[2] ~= 'expired' then\n"
    "  return {'', 2}\n"
    "end\n"
    "local id = redis.call('XADD', KEYS[2], 'MINID', '~', ARGV[3], '*', 's', ARGV[2],"
    " 'e', 'expire', 'c', ARGV[1], 'm', ARGV[4], 'a', '', 'x', '', 't', ARGV[5])\n"
    "if h[1] == ARGV[1] and (h[2] == 'invited' or h[2] == 'shown') then\n"
    "  redis.call('HSET', KEYS[1], ARGV[7], 'expired')\n"
    "  return {id, 1}\n"
    "end\n"
    "return {id, 0}\n";

uint64_t hn_drain_expire_every_ms(int64_t ttl_s) {
    if (ttl_s <= 0) return 0;
    uint64_t ms = (uint64_t)ttl_s * 100u;
    return ms < 500 ? 500 : ms > 10000 ? 10000 : ms;
}

static void rollback(hn_drain_worker *d) {
    PGresult *r = PQexec(d->pg, "ROLLBACK");
    PQclear(r);
    if (PQstatus(d->pg) != CONNECTION_OK) hn_drain_pg_close(d);
}

static bool pg_ok(hn_drain_worker *d, PGresult *r, ExecStatusType want, const char *what) {
    if (r && PQresultStatus(r) == want) return true;
    hn_warn("event=chat_expire_pg_error what=%s err='%s'", what,
            r ? PQresultErrorMessage(r) : PQerrorMessage(d->pg));
    return false;
}

/* The EVALs of rows [0, n) of res, pipelined; every reply read before any
 * is judged. HN_OK, or HN_ERR when the connection failed (closed). */
static int send_expiries(hn_drain_worker *d, PGresult *res, int n, int *set, int *failed,
                         int *answered) {
    static __thread hn_rng rng;
    static __thread bool seeded;
    if (!seeded) hn_rng_seed(&rng), seeded = true;
    char minid[24], now[24];
    uint64_t ms = hn_now_ms(), keep = (uint64_t)d->cfg->chat_resume_s * 1000u;
    snprintf(minid, sizeof(minid), "%llu", (unsigned long long)(ms > keep ? ms - keep : 0));
    snprintf(now, sizeof(now), "%llu", (unsigned long long)ms);
    for (int i = 0; i < n; i++) {
        const char *conv = PQgetvalue(res, i, 0), *sid = PQgetvalue(res, i, 2);
        uint64_t wid = strtoull(PQgetvalue(res, i, 1), NULL, 10);
        char sk[HN_KEY_CAP], ck[HN_KEY_CAP], mid[37];
        uint8_t id[16];
        size_t sidlen = strlen(sid);
        if (sidlen > 64) sidlen = 64;        /* the api and the drain write 8..64 */
        hn_key_sess(sk, wid, sid, sidlen);
        hn_key_chat(ck, wid);
        hn_event_id_new(&rng, ms, id);
        hn_event_id_format(id, mid);
        const char *argv[] = {"EVAL", expire_lua, "2", sk, ck, conv, sid, minid, mid, now,
                              hn_sf_name[HN_SF_CHAT], hn_sf_name[HN_SF_CHAT_STATE]};
        size_t lens[HN_ARRAY_LEN(argv)];
        for (size_t k = 0; k < HN_ARRAY_LEN(argv); k++) lens[k] = strlen(argv[k]);
        hn_rcl_append_argv(d->rc, (int)HN_ARRAY_LEN(argv), argv, lens);
    }
    int rc = HN_OK;
    for (int i = 0; i < n; i++) {
        void *rep = NULL;
        if (rc != HN_OK || hn_rcl_get_reply(d->rc, &rep) != REDIS_OK || rep == NULL) {
            if (rc == HN_OK) hn_warn("event=chat_expire_redis_error err='%s'", hn_rcl_errstr(d->rc));
            rc = HN_ERR;
            continue;
        }
        redisReply *r = rep;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[1]->type == REDIS_REPLY_INTEGER) {
            *set += r->element[1]->integer == 1;
            *answered += r->element[1]->integer == 2;
        } else if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "WRONGTYPE", 9) != 0) {
            /* LOADING, READONLY, OOM, BUSY...: nothing was written; the
             * whole look is rolled back and made again later */
            hn_warn("event=chat_expire_redis_error err='%s'", r->str);
            rc = HN_ERR;
        } else {
            (*failed)++;
            hn_warn("event=chat_expire_redis_refused conversation=%s err='%s'",
                    PQgetvalue(res, i, 0), r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        }
        freeReplyObject(r);
    }
    if (rc != HN_OK) hn_drain_stream_close(d);
    return rc;
}

int hn_drain_expire(hn_drain_worker *d) {
    uint64_t every = hn_drain_expire_every_ms(d->cfg->chat_invite_ttl_s), now = hn_mono_ms();
    if (every == 0 || now - d->last_expire_ms < every) return 0;
    if (d->pg == NULL || d->rc == NULL) return -1;
    d->last_expire_ms = now;
    char ttl[24], lim[24];
    snprintf(ttl, sizeof(ttl), "%lld", (long long)d->cfg->chat_invite_ttl_s);
    snprintf(lim, sizeof(lim), "%d", HN_DRAIN_EXPIRE_BATCH);
    const char *p[] = {ttl, lim};
    PGresult *r = PQexec(d->pg, "BEGIN");
    bool ok = pg_ok(d, r, PGRES_COMMAND_OK, "begin");
    PQclear(r);
    if (!ok) {
        rollback(d);
        return -1;
    }
    r = PQexecParams(d->pg, expire_sql, 2, NULL, p, NULL, NULL, 0);
    if (!pg_ok(d, r, PGRES_TUPLES_OK, "expire")) {
        PQclear(r);
        rollback(d);
        return -1;
    }
    int n = PQntuples(r), set = 0, failed = 0, answered = 0;
    if (n > 0 && send_expiries(d, r, n, &set, &failed, &answered) != HN_OK) {
        PQclear(r);
        rollback(d);
        return -1;
    }
    PQclear(r);
    r = PQexec(d->pg, "COMMIT");
    ok = pg_ok(d, r, PGRES_COMMAND_OK, "commit");
    PQclear(r);
    if (!ok) {
        rollback(d);
        return -1;
    }
    if (n == 0) return 0;
    pthread_mutex_lock(&d->mu);
    d->m_expired += (uint64_t)n;
    d->m_expire_failed += (uint64_t)failed;
    pthread_mutex_unlock(&d->mu);
    hn_info("event=chat_invitations_expired n=%d hashes=%d refused=%d answered=%d", n, set, failed, answered);
    /* a full batch: more are waiting, look again at the next cycle */
    if (n == HN_DRAIN_EXPIRE_BATCH) d->last_expire_ms = 0;
    return n;
}
