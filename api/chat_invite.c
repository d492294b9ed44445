/* chat_invite.c: Start Chat's invitation core, see chat_invite.h. */
#include "api/chat_invite.h"

#include "common/datakey.h"
#include "common/ids.h"
#include "common/log.h"
#include "proto/keys.h"
#include "proto/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void new_uuid(char out[37]) {
    static __thread hn_rng rng;
    static __thread bool seeded;
    uint8_t id[16];
    if (!seeded) hn_rng_seed(&rng), seeded = true;
    hn_event_id_new(&rng, hn_now_ms(), id);
    hn_event_id_format(id, out);
}

bool hn_chat_state_open(const char *s) {
    return !strcmp(s, "invited") || !strcmp(s, "shown") || !strcmp(s, "accepted") ||
           !strcmp(s, "chatting");
}

/* n replies, every one read before any is judged (one left unread would
 * answer the connection's next command). */
static int replies(hn_rcl *rc, int n, redisReply **r) {
    for (int i = 0; i < n; i++) r[i] = NULL;
    for (int i = 0; i < n; i++) {
        void *rep = NULL;
        if (hn_rcl_get_reply(rc, &rep) != REDIS_OK || rep == NULL) {
            for (int k = 0; k < i; k++) freeReplyObject(r[k]);
            /* a failed get_reply leaves hn_rcl_err(rc) set: the caller drops it */
            return HN_ERR;
        }
        r[i] = rep;
    }
    return HN_OK;
}

int hn_chat_live_read(hn_rcl *rc, int64_t wid, const char *sid, hn_chat_live *out) {
    redisReply *r[2];
    memset(out, 0, sizeof(*out));
    char lk[HN_KEY_CAP], sk[HN_KEY_CAP];
    hn_key_live(lk, (uint64_t)wid);
    hn_key_sess(sk, (uint64_t)wid, sid, strlen(sid));
    hn_rcl_append(rc, "ZSCORE %s %s", lk, sid);
    hn_rcl_append(rc, "HMGET %s %s %s %s", sk, hn_sf_name[HN_SF_CHAT_STATE], hn_sf_name[HN_SF_CHAT],
                  hn_sf_name[HN_SF_VISITOR]);
    if (replies(rc, 2, r) != HN_OK) return HN_ERR;
    int ret = HN_ERR;
    if (r[1]->type != REDIS_REPLY_ARRAY || r[1]->elements != 3) goto out;
    out->live = r[0]->type == REDIS_REPLY_STRING;
    char *dst[] = {out->state, out->chat, out->visitor};
    size_t cap[] = {sizeof(out->state), sizeof(out->chat), sizeof(out->visitor)};
    for (int i = 0; i < 3; i++)
        if (r[1]->element[i]->type == REDIS_REPLY_STRING) snprintf(dst[i], cap[i], "%s", r[1]->element[i]->str);
    ret = HN_OK;
out:
    freeReplyObject(r[0]);
    freeReplyObject(r[1]);
    return ret;
}

int hn_chat_downlink(hn_rcl *rc, const hn_config *cfg, int64_t wid, const char *sid,
                     const hn_chat_down *d, char *entry, size_t cap) {
    redisReply *r[3] = {NULL, NULL, NULL};
    int n = 0, ret = HN_ERR;
    char ck[HN_KEY_CAP], sk[HN_KEY_CAP], minid[24], now[24];
    uint64_t ms = hn_now_ms(), keep = (uint64_t)cfg->chat_resume_s * 1000u;
    hn_key_chat(ck, (uint64_t)wid);
    hn_key_sess(sk, (uint64_t)wid, sid, strlen(sid));
    snprintf(minid, sizeof(minid), "%llu", (unsigned long long)(ms > keep ? ms - keep : 0));
    snprintf(now, sizeof(now), "%llu", (unsigned long long)ms);
    const char *xa[] = {"XADD", ck, "MINID", "~", minid, "*", "s", sid, "e", d->event,
                        "c", d->conv, "m", d->id, "a", d->agent, "x", d->text, "t", now};
    size_t xl[HN_ARRAY_LEN(xa)];
    for (size_t i = 0; i < HN_ARRAY_LEN(xa); i++) xl[i] = strlen(xa[i]);
    hn_rcl_append_argv(rc, (int)HN_ARRAY_LEN(xa), xa, xl), n++;
    if (d->state) {
        hn_rcl_append(rc, "HSET %s %s %s %s %s", sk, hn_sf_name[HN_SF_CHAT], d->conv,
                      hn_sf_name[HN_SF_CHAT_STATE], d->state), n++;
        if (d->count) hn_rcl_append(rc, "HINCRBY %s %s 1", sk, hn_sf_name[HN_SF_AGENT_MESSAGES]), n++;
    }
    if (replies(rc, n, r) != HN_OK) return HN_ERR;
    for (int i = 0; i < n; i++) {
        if (r[i]->type == REDIS_REPLY_ERROR) {
            hn_warn("event=chat_redis_error err='%s'", r[i]->str);
            goto out;
        }
    }
    if (r[0]->type != REDIS_REPLY_STRING) goto out;
    snprintf(entry, cap, "%s", r[0]->str);
    ret = HN_OK;
out:
    for (int i = 0; i < n; i++) freeReplyObject(r[i]);
    return ret;
}

static const char invite_sql[] =
    "WITH a AS (SELECT " HN_CHAT_AGENT_SQL("$5", "$6", "$1::integer") " AS name),"
    " c AS (INSERT INTO widget_conversations (id, widget_id, session_id, visitor_id, visitor_hash,"
    "  started_by, state, agent_name, invited_at, last_message_at, messages)"
    "  SELECT $3::uuid, $1, $2, coalesce((SELECT visitor_id FROM widget_visitor_sessions"
    "   WHERE widget_id = $1 AND session_id = $2), nullif($10, ''), nullif($7, '')), nullif($7, ''), $9,"
    "   'invited', a.name, now(), now(), 1 FROM a"
    "  RETURNING id, agent_name, created_at),"
    " m AS (INSERT INTO widget_conversation_messages (id, conversation_id, widget_id, sender,"
    "  agent_name, body, sent_at) SELECT $4::uuid, c.id, $1, 'agent', c.agent_name, $8, c.created_at"
    "  FROM c RETURNING id, conversation_id, sender, agent_name, body, sent_at),"
    " s AS (UPDATE widget_visitor_sessions SET conversation_id = $3::uuid"
    "  WHERE widget_id = $1 AND session_id = $2 RETURNING 1)"
    " SELECT c.agent_name, floor(extract(epoch FROM c.created_at) * 1000)::bigint, m.id,"
    "  m.conversation_id, m.sender, m.agent_name, m.body,"
    "  floor(extract(epoch FROM m.sent_at) * 1000)::bigint, (SELECT count(*) FROM s) FROM c, m";

/* In the invitation's transaction: one invitation of a session at a time
 * (two agents, or two api nodes, pressing Start chat together), and what
 * PostgreSQL knows of open conversations (the lock first, in a statement of
 * its own: a statement's snapshot is taken before it waits for the lock, so
 * a check in the same statement would miss the invitation that held it).
 * $1 widget, $2 session, $3 the
 * session hash's conversation ('' none). Answers: an open conversation
 * exists; the hash's conversation is not in PostgreSQL yet (a visitor's chat
 * the drain has not written); the widget has chat on. */
static const char invite_lock_sql[] = "SELECT pg_advisory_xact_lock(hashtext('chat:' || $1 || ':' || $2))";
static const char invite_check_sql[] =
    "SELECT true,"
    " EXISTS (SELECT 1 FROM widget_conversations WHERE widget_id = $1::integer AND session_id = $2"
    "  AND state IN ('invited', 'shown', 'accepted', 'chatting')),"
    " $3 <> '' AND NOT EXISTS (SELECT 1 FROM widget_conversations WHERE id = nullif($3, '')::uuid),"
    " coalesce((SELECT settings->>'chat' = 'on' FROM widget_configs WHERE id = $1::integer), false),"
    /* a banned visitor (docs/RULES.md §5): $4 the session hash's visitor */
    " EXISTS (SELECT 1 FROM visitor_bans b WHERE b.widget_id = $1::integer AND ("
    "  (b.subject_kind = 'visitor' AND (b.subject = $4 OR b.subject IN (SELECT visitor_id"
    "    FROM widget_visitor_sessions WHERE widget_id = $1::integer AND session_id = $2)))"
    "  OR (b.subject_kind = 'email' AND b.subject_key IN (SELECT visitor_email_key"
    "    FROM widget_visitor_sessions WHERE widget_id = $1::integer AND session_id = $2))))";

static PGresult *exec(PGconn *pg, ExecStatusType want, const char *sql, int n, const char *const *p,
                      hn_chat_invite_out *out) {
    PGresult *r = PQexecParams(pg, sql, n, NULL, p, NULL, NULL, 0);
    if (r && PQresultStatus(r) == want) return r;
    const char *msg = r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : PQerrorMessage(pg);
    snprintf(out->err, sizeof(out->err), "%.*s", (int)strcspn(msg, "\n"), msg);
    PQclear(r);
    return NULL;
}

static void rollback(PGconn *pg) {
    if (PQtransactionStatus(pg) != PQTRANS_IDLE) PQclear(PQexec(pg, "ROLLBACK"));
}

int hn_chat_invite(PGconn *pg, hn_rcl *rc, const hn_config *cfg, const hn_chat_invite_in *in,
                   hn_chat_invite_out *out) {
    hn_chat_live lv;
    PGresult *res = NULL;
    char wbuf[24];
    memset(out, 0, sizeof(*out));
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)in->widget_id);
    if (hn_chat_live_read(rc, in->widget_id, in->session_id, &lv) != HN_OK) {
        snprintf(out->err, sizeof(out->err), "redis: %s", hn_rcl_err(rc) ? hn_rcl_errstr(rc) : "unexpected reply");
        return HN_CINV_REDIS;
    }
    if (!lv.live) return HN_CINV_GONE;
    new_uuid(out->cid);
    new_uuid(out->mid);
    if ((res = exec(pg, PGRES_COMMAND_OK, "BEGIN", 0, NULL, out)) == NULL) return HN_CINV_PG;
    PQclear(res);
    /* The hash may say a chat is open when PostgreSQL knows it ended (a
     * visitor's message after the agent closed it sets "chatting" again):
     * PostgreSQL decides, but for a visitor's chat not written yet. */
    bool known = hn_uuid_text_ok((hn_str){lv.chat, (uint32_t)strlen(lv.chat)});
    const char *cp[] = {wbuf, in->session_id, known ? lv.chat : "", lv.visitor};
    if ((res = exec(pg, PGRES_TUPLES_OK, invite_lock_sql, 2, cp, out)) == NULL) {
        rollback(pg);
        return HN_CINV_PG;
    }
    PQclear(res);
    if ((res = exec(pg, PGRES_TUPLES_OK, invite_check_sql, 4, cp, out)) == NULL) {
        rollback(pg);
        return HN_CINV_PG;
    }
    bool pg_open = PQgetvalue(res, 0, 1)[0] == 't', pending = PQgetvalue(res, 0, 2)[0] == 't',
         chat_on = PQgetvalue(res, 0, 3)[0] == 't', banned = PQgetvalue(res, 0, 4)[0] == 't';
    PQclear(res);
    if (!chat_on) {       /* its pages have no chat script: nobody would see it */
        rollback(pg);
        return HN_CINV_CHAT_OFF;
    }
    if (banned) {
        rollback(pg);
        return HN_CINV_BANNED;
    }
    if (pg_open || (hn_chat_state_open(lv.state) && pending)) {
        rollback(pg);
        snprintf(out->state, sizeof(out->state), "%s", lv.state[0] ? lv.state : "invited");
        return HN_CINV_CHATTING;
    }
    hn_buf sealed = {0};
    hn_dk_seal(&sealed, in->text, strlen(in->text));
    hn_buf_append(&sealed, "", 1);
    const char *p[] = {wbuf, in->session_id, out->cid, out->mid, in->agent ? in->agent : "",
                       in->token_id ? in->token_id : "", lv.visitor, sealed.p, in->started_by, in->visitor_id ? in->visitor_id : ""};
    res = exec(pg, PGRES_TUPLES_OK, invite_sql, 10, p, out);
    hn_buf_free(&sealed);
    if (res == NULL || PQntuples(res) != 1) {
        rollback(pg);
        if (res == NULL) return HN_CINV_PG;
        PQclear(res);
        return HN_CINV_NOT_WRITTEN;
    }
    hn_chat_down d = {"invite", out->cid, out->mid, PQgetvalue(res, 0, 0), in->text, "invited", true};
    if (hn_chat_downlink(rc, cfg, in->widget_id, in->session_id, &d, out->entry, sizeof(out->entry)) != HN_OK) {
        rollback(pg);
        PQclear(res);
        snprintf(out->err, sizeof(out->err), "redis: %s", hn_rcl_err(rc) ? hn_rcl_errstr(rc) : "error reply");
        return HN_CINV_REDIS_TX;
    }
    PGresult *c = exec(pg, PGRES_COMMAND_OK, "COMMIT", 0, NULL, out);
    if (c == NULL) {
        rollback(pg);
        PQclear(res);
        return HN_CINV_PG;
    }
    PQclear(c);
    out->res = res;
    return HN_CINV_SENT;
}
