/*
 * routes_admin.c: erasing a visitor everywhere (Redis, PostgreSQL) and the
 * widget list — the routes that manage rather than watch.
 */
#include "api/annot.h"
#include "api/routes.h"

#include "common/json.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/timefmt.h"
#include "proto/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- erase a visitor ---------------------------------------------------------------- */

/* One statement, in a transaction that holds the erasure lock
 * (sql/009_erasures.sql): the sessions go, and with them their
 * conversations and chat messages, page views and events (found by session id within the sessions' time
 * span, so only those days' partitions are searched) and the visitor's
 * rows in the distinct-visitor sets; tombstones for the visitor id and for
 * each session keep the drain from writing their records still on the way
 * (a stream shard behind, a collector's spool). The rollups keep their
 * counts: they hold no personal data. */
static const char erase_sql[] =
    "WITH s AS ("
    "  DELETE FROM widget_visitor_sessions WHERE widget_id = $1 AND visitor_id = $2"
    "  RETURNING session_id, session_started_at, last_active_at),"
    " b AS (SELECT min(session_started_at) - interval '1 hour' AS lo,"
    "              max(last_active_at) + interval '1 hour' AS hi FROM s),"
    " pv AS ("
    "  DELETE FROM widget_page_views p USING b"
    "  WHERE p.widget_id = $1 AND p.session_id IN (SELECT session_id FROM s)"
    "    AND p.recv_at BETWEEN b.lo AND b.hi RETURNING 1),"
    " ev AS ("
    "  DELETE FROM widget_visitor_events e USING b"
    "  WHERE e.widget_id = $1 AND e.session_id IN (SELECT session_id FROM s)"
    "    AND e.recv_at BETWEEN b.lo AND b.hi RETURNING 1),"
    " vd AS ("
    "  DELETE FROM widget_visitor_days d USING b"
    "  WHERE d.widget_id = $1 AND d.visitor_id = $2"
    "    AND d.day BETWEEN (b.lo AT TIME ZONE 'UTC')::date AND (b.hi AT TIME ZONE 'UTC')::date"
    "  RETURNING 1),"
    " vh AS ("
    "  DELETE FROM widget_visitor_hours h USING b"
    "  WHERE h.widget_id = $1 AND h.visitor_id = $2 AND h.hour BETWEEN b.lo AND b.hi"
    "  RETURNING 1),"
    /* their chats (docs/CHAT.md §5): the messages go with the conversations */
    " cv AS ("
    "  DELETE FROM widget_conversations c"
    "  WHERE c.widget_id = $1 AND (c.visitor_id = $2 OR c.session_id IN (SELECT session_id FROM s))"
    "  RETURNING 1),"
    /* notes, tags and bans on the visitor id, the rules' firings and the
     * webhook deliveries that name it (docs/RULES.md §5) */
    " nt AS (DELETE FROM visitor_notes WHERE widget_id = $1 AND subject_kind = 'visitor'"
    "  AND subject = $2 RETURNING 1),"
    " tg AS (DELETE FROM visitor_tags WHERE widget_id = $1 AND subject_kind = 'visitor'"
    "  AND subject = $2 RETURNING 1),"
    " bn AS (DELETE FROM visitor_bans WHERE widget_id = $1 AND subject_kind = 'visitor'"
    "  AND subject = $2 RETURNING 1),"
    " rf AS (DELETE FROM rule_firings WHERE widget_id = $1 AND visitor_id = $2 RETURNING 1),"
    " wd AS (DELETE FROM webhook_deliveries WHERE widget_id = $1 AND visitor_id = $2 RETURNING 1),"
    /* erased_at: now, after the lock (now() would be the transaction's
     * start, before the wait) */
    " te AS (INSERT INTO visitor_erasures (widget_id, digest, erased_at)"
    "  SELECT $1, hn_erasure_digest($1, 'v', $2), clock_timestamp()"
    "  UNION ALL SELECT $1, hn_erasure_digest($1, 's', session_id), clock_timestamp() FROM s"
    "  RETURNING 1)"
    " SELECT (SELECT count(*) FROM s), (SELECT count(*) FROM pv), (SELECT count(*) FROM ev),"
    "        (SELECT count(*) FROM vd) + (SELECT count(*) FROM vh),"
    "        (SELECT string_agg(session_id, ' ') FROM s), (SELECT count(*) FROM cv),"
    "        (SELECT count(*) FROM nt) + (SELECT count(*) FROM tg) + (SELECT count(*) FROM bn),"
    "        (SELECT count(*) FROM bn), (SELECT count(*) FROM te)";

void hn_route_erase_visitor(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    const char *visitor = rq->nparams > 1 ? rq->params[1] : "";
    int64_t wid = hn_rt_widget_id(rq);
    PGresult *res = NULL;
    redisReply *r[4] = {NULL, NULL, NULL, NULL};
    const char **argv = NULL;
    size_t *len = NULL;
    char **keys = NULL;
    size_t nsids = 0;
    hn_buf out = {0};
    bool cleared = false;

    if (!hn_rt_check_keys(rq, rs, NULL, 0)) return;
    if (!hn_param_visitor_ok(visitor)) {
        hn_api_error(rs, 400, "visitor: want 1..128 bytes of UTF-8 without control characters");
        return;
    }
    char wbuf[24];
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)wid);
    const char *p[] = {wbuf, visitor};
    /* the lock waits for the drain's transactions in flight (a batch takes
     * seconds at most); a batch after it reads the tombstones first */
    PGresult *tx = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, "BEGIN ISOLATION LEVEL READ COMMITTED", 0,
                                  NULL);
    if (tx == NULL) return;
    PQclear(tx);
    /* a backlogged drain's batch may hold the lock a while: give up at half
     * the request's deadline with a clean 503 (nothing done, try again)
     * rather than be cut by the deadline and erase unanswered */
    char lt[32];
    snprintf(lt, sizeof(lt), "%lldms", (long long)(rq->cfg->api_timeout_ms / 2));
    const char *ltp[] = {lt};
    tx = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, "SELECT set_config('lock_timeout', $1, true)", 1, ltp);
    if (tx == NULL) return;
    PQclear(tx);
    tx = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, "SELECT pg_advisory_xact_lock(" HN_PG_LOCK_ERASE ")",
                        0, NULL);
    if (tx == NULL) return;           /* the pool rolls back what a handler leaves open */
    PQclear(tx);
    res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, erase_sql, 2, p);
    if (res == NULL) return;
    tx = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, "COMMIT", 0, NULL);
    if (tx == NULL) goto out;
    PQclear(tx);
    int64_t sessions = hn_rt_pg_int(res, 0, 0);
    int64_t annotations = hn_rt_pg_int(res, 0, 6);
    if (hn_rt_pg_int(res, 0, 7) > 0) {
        /* a ban went: the collectors' set follows (best effort: the
         * erasure itself is done) */
        hn_api_resp scratch = {0};
        if (hn_bans_sync(w, &scratch, wid) != HN_OK)
            hn_warn("event=bans_sync_failed widget=%lld status=%d", (long long)wid, scratch.status);
        hn_buf_free(&scratch.body);
    }
    if (annotations > 0) hn_annot_bump(w, wid);
    if (sessions == 0 && annotations == 0) {
        hn_api_error(rs, 404, "visitor not found");
        goto out;
    }

    /* Their sessions leave Redis too (best effort: a live snapshot also
     * disappears by itself within the live window). */
    hn_rcl *c = hn_api_redis(w);
    const char *sids = PQgetisnull(res, 0, 4) ? "" : PQgetvalue(res, 0, 4);
    if (c) {
        char *copy = hn_xstrdup(sids), *save = NULL;
        size_t cap = (size_t)sessions + 2;
        argv = hn_xcalloc(cap, sizeof(*argv));
        len = hn_xcalloc(cap, sizeof(*len));
        keys = hn_xcalloc(cap, sizeof(*keys));
        char lk[HN_KEY_CAP];
        hn_key_live(lk, wid);
        char **sid = hn_xcalloc(cap, sizeof(*sid));
        for (char *t = strtok_r(copy, " ", &save); t && nsids + 2 < cap; t = strtok_r(NULL, " ", &save)) {
            sid[nsids] = t;
            keys[nsids] = hn_xmalloc(HN_KEY_CAP);
            hn_key_sess(keys[nsids], wid, t, strlen(t));
            nsids++;
        }
        /* the live and ended sets (the trimmer's), the snapshots: every key
         * has the widget's hash tag, one slot; and the rules' first-visit
         * mark of the visitor (new vs returning) */
        char ek[HN_KEY_CAP], vk[HN_KEY_CAP];
        hn_key_ended(ek, wid);
        hn_key_vfirst(vk, (uint64_t)wid, visitor, strlen(visitor));
        int sent = 0;
        if (nsids > 0) {
            const char *set[2] = {lk, ek};
            for (int k = 0; k < 2; k++, sent++) {
                argv[0] = "ZREM";
                argv[1] = set[k];
                for (size_t i = 0; i < nsids; i++) argv[2 + i] = sid[i];
                for (size_t i = 0; i < 2 + nsids; i++) len[i] = strlen(argv[i]);
                hn_rcl_append_argv(c, (int)(2 + nsids), argv, len);
            }
            argv[0] = "DEL";
            for (size_t i = 0; i < nsids; i++) argv[1 + i] = keys[i];
            for (size_t i = 0; i < 1 + nsids; i++) len[i] = strlen(argv[i]);
            hn_rcl_append_argv(c, (int)(1 + nsids), argv, len);
            sent++;
        }
        argv[0] = "DEL";
        argv[1] = vk;
        len[0] = 3;
        len[1] = strlen(vk);
        hn_rcl_append_argv(c, 2, argv, len);
        sent++;
        void *rep;
        cleared = true;
        for (int i = 0; i < sent; i++) {
            if (hn_rcl_get_reply(c, &rep) != REDIS_OK || rep == NULL) {
                hn_api_redis_broken(w);
                cleared = false;
                break;
            }
            r[i] = rep;
            if (r[i]->type != REDIS_REPLY_INTEGER) cleared = false;
        }
        free(sid);
        free(copy);
    }

    hn_buf_append(&out, "{", 1);
    bool first = true;
    hn_json_kstr(&out, &first, "visitor", visitor);
    hn_json_kint(&out, &first, "widget_id", wid);
    hn_json_kint(&out, &first, "sessions", sessions);
    hn_json_kint(&out, &first, "page_views", hn_rt_pg_int(res, 0, 1));
    hn_json_kint(&out, &first, "events", hn_rt_pg_int(res, 0, 2));
    hn_json_kint(&out, &first, "conversations", hn_rt_pg_int(res, 0, 5));
    hn_json_kint(&out, &first, "annotations", annotations);
    hn_json_kbool(&out, &first, "presence_cleared", cleared);
    hn_json_kint(&out, &first, "tombstones", hn_rt_pg_int(res, 0, 8));
    hn_buf_append(&out, "}", 1);
    hn_rt_answer(rs, &out);
out:
    hn_rt_redis_free(r, 4);
    if (keys)
        for (size_t i = 0; i < nsids; i++) free(keys[i]);
    free(keys);
    free(argv);
    free(len);
    if (res) PQclear(res);
    hn_buf_free(&out);
}

/* ---- widgets ------------------------------------------------------------------------------ */

static const char widgets_sql[] =
    "SELECT id, key, name, domain, retention_days, coalesce(settings->>'chat' = 'on', false)"
    " FROM widget_configs"
    " WHERE $1::integer IS NULL OR id = $1::integer ORDER BY id";
static const hn_col widgets_cols[] = {
    {"id", HN_COL_INT}, {"key", HN_COL_STR}, {"name", HN_COL_STR},
    {"domain", HN_COL_STR}, {"retention_days", HN_COL_INT}, {"chat", HN_COL_BOOL},
};

void hn_route_widgets(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    char wbuf[24];
    hn_buf out = {0};
    if (!hn_rt_check_keys(rq, rs, NULL, 0)) return;
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)rq->who.widget_id);
    const char *p[] = {rq->who.widget_id > 0 ? wbuf : NULL};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, widgets_sql, 1, p);
    if (res == NULL) return;
    hn_buf_append(&out, "{", 1);
    bool first = true;
    hn_json_kraw(&out, &first, "widgets", "", 0);
    hn_rt_rows_array(&out, res, widgets_cols, (int)HN_ARRAY_LEN(widgets_cols), INT32_MAX);
    hn_buf_append(&out, "}", 1);
    PQclear(res);
    hn_rt_answer(rs, &out);
    hn_buf_free(&out);
}
