/*
 * routes_chat.c: Start Chat's API (docs/CHAT.md §6, docs/API.md): an
 * agent invites a live visitor, writes to them, closes the chat; the
 * thread and the widget's chats are read back from PostgreSQL.
 *
 * A write is one PostgreSQL transaction around the Redis writes:
 *
 *   BEGIN → INSERT/UPDATE (conversation, message) → XADD hn:chat:{w} +
 *   session hash (HSET chat/chat_state, HINCRBY agent_messages) → COMMIT
 *
 * so a Redis failure rolls the rows back and the call answers 503 with
 * nothing written. (A COMMIT that fails after the XADD leaves an event the
 * page saw without its row: 503 too; docs/CHAT.md §6 says so.)
 *
 * Session routes have no :widgetId: the widget is the token's (a token
 * scoped to one widget), else ?widget=, else the one PostgreSQL knows the
 * session under.
 */
#include "api/routes.h"

#include "api/chat_invite.h"
#include "api/chat_util.h"
#include "common/datakey.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "proto/record.h"
#include "proto/keys.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AGENT_MAX   64        /* characters of an agent's display name */
#define PAGE_DEF    50
#define PAGE_MAX    200

enum { W_INVITE, W_MESSAGE, W_CLOSE, W__N };
static const char *const write_names[W__N] = {"invite", "message", "close"};
static atomic_uint_fast64_t m_writes[W__N], m_limited, m_redis_failed;

void hn_chat_metrics(hn_buf *out) {
    hn_buf_printf(out, "# HELP herenow_api_chat_writes_total chat writes that were committed, by kind\n"
                       "# TYPE herenow_api_chat_writes_total counter\n");
    for (int i = 0; i < W__N; i++)
        hn_buf_printf(out, "herenow_api_chat_writes_total{kind=\"%s\"} %llu\n", write_names[i],
                      (unsigned long long)atomic_load(&m_writes[i]));
    hn_buf_printf(out, "# HELP herenow_api_chat_rate_limited_total chat writes refused with 429 "
                       "(HERENOW_CHAT_RATE_PER_MIN per token)\n"
                       "# TYPE herenow_api_chat_rate_limited_total counter\n"
                       "herenow_api_chat_rate_limited_total %llu\n"
                       "# HELP herenow_api_chat_redis_failed_total chat writes rolled back because "
                       "Redis failed (503)\n"
                       "# TYPE herenow_api_chat_redis_failed_total counter\n"
                       "herenow_api_chat_redis_failed_total %llu\n",
                  (unsigned long long)atomic_load(&m_limited),
                  (unsigned long long)atomic_load(&m_redis_failed));
}

/* ---- answers ---------------------------------------------------------------------- */

/* {"error": error, "reason": reason} */
static void chat_error(hn_api_resp *rs, int status, const char *error, const char *reason) {
    rs->status = status;
    hn_buf_reset(&rs->body);
    hn_buf_append(&rs->body, "{", 1);
    bool first = true;
    hn_json_kstr(&rs->body, &first, "error", error);
    if (reason) hn_json_kstr(&rs->body, &first, "reason", reason);
    hn_buf_append(&rs->body, "}", 1);
}

static void answer(hn_api_resp *rs, int status, hn_buf *b) {
    hn_rt_answer(rs, b);
    rs->status = status;
}

static void new_uuid(char out[37]) {
    static __thread hn_rng rng;
    static __thread bool seeded;
    uint8_t id[16];
    if (!seeded) hn_rng_seed(&rng), seeded = true;
    hn_event_id_new(&rng, hn_now_ms(), id);
    hn_event_id_format(id, out);
}

/* ---- the request ---------------------------------------------------------------- */

typedef struct chat_rq {
    const char *sid;
    int64_t     wid;
    char        wbuf[24];
    hn_chat_field f[2];          /* text, agent */
} chat_rq;

static void chat_rq_free(chat_rq *c) {
    hn_chat_fields_free(c->f, 2);
}

static const char widget_sql[] =
    "SELECT widget_id FROM ("
    " SELECT widget_id, session_started_at AS t FROM widget_visitor_sessions WHERE session_id = $1"
    " UNION ALL SELECT widget_id, created_at FROM widget_conversations WHERE session_id = $1) x"
    " ORDER BY t DESC LIMIT 1";

/* sessionId, the widget, and (writes) the body: HN_OK or answered. */
static int chat_begin(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs, chat_rq *c,
                      bool body, bool text_required) {
    static const char *const allowed_w[] = {"widget"};
    static const char *const allowed_r[] = {"widget", "limit", "before"};
    c->sid = rq->nparams > 0 ? rq->params[0] : "";
    c->f[0] = (hn_chat_field){"text", NULL, 0};
    c->f[1] = (hn_chat_field){"agent", NULL, 0};
    if (!hn_rt_check_keys(rq, rs, body ? allowed_w : allowed_r, body ? 1 : 3)) return HN_ERR;
    if (!hn_param_session_id_ok(c->sid)) {
        hn_api_error(rs, 400, "sessionId: want 8..64 of A-Z a-z 0-9 _ -");
        return HN_ERR;
    }
    if (body) {
        char err[96];
        const char *why;
        if (hn_chat_body_parse(rq->body, rq->body_len, c->f, 2, err, sizeof(err)) != HN_OK) {
            chat_error(rs, 400, "bad_body", err);
            return HN_ERR;
        }
        if (text_required || c->f[0].val) {
            if (c->f[0].val == NULL) {
                chat_error(rs, 400, "bad_text", "missing");
                return HN_ERR;
            }
            if (hn_chat_text_check(c->f[0].val, c->f[0].len, &why) != HN_R_OK) {
                chat_error(rs, 400, "bad_text", why);
                return HN_ERR;
            }
        }
        if (c->f[1].val && c->f[1].len) {
            size_t chars = 0;
            for (size_t i = 0; i < c->f[1].len; i++) chars += (c->f[1].val[i] & 0xc0) != 0x80;
            if (chars > AGENT_MAX || hn_chat_text_check(c->f[1].val, c->f[1].len, &why) != HN_R_OK ||
                memchr(c->f[1].val, '\n', c->f[1].len)) {
                chat_error(rs, 400, "bad_agent", "want 1..64 characters of UTF-8 on one line");
                return HN_ERR;
            }
        }
    }
    /* the widget */
    const char *wq = hn_api_query(rq, "widget");
    if (wq) {
        char err[96];
        if (hn_param_int("widget", wq, 1, INT32_MAX, 0, &c->wid, err, sizeof(err)) != HN_OK) {
            hn_api_error(rs, 400, "%s", err);
            return HN_ERR;
        }
        if (!hn_api_may_see(rq, c->wid)) {
            hn_api_error(rs, 403, "this token may not see widget %lld", (long long)c->wid);
            return HN_ERR;
        }
    } else if (rq->who.widget_id > 0) {
        c->wid = rq->who.widget_id;
    } else {
        const char *p[] = {c->sid};
        PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, widget_sql, 1, p);
        if (res == NULL) return HN_ERR;
        c->wid = PQntuples(res) ? hn_rt_pg_int(res, 0, 0) : 0;
        PQclear(res);
        if (c->wid <= 0) {
            hn_api_error(rs, 404, "session not found (name its widget with ?widget=)");
            return HN_ERR;
        }
    }
    snprintf(c->wbuf, sizeof(c->wbuf), "%lld", (long long)c->wid);
    if (body && !hn_chat_rate_take(rq->who.token_id, rq->cfg->chat_rate_per_min, hn_mono_ms())) {
        atomic_fetch_add(&m_limited, 1);
        chat_error(rs, 429, "rate_limited", "too many chat writes for this token");
        return HN_ERR;
    }
    return HN_OK;
}

/* ---- Redis: the session's live state, the downlink write --------------------------- */

typedef hn_chat_live live;

/* The session's chat state in Redis. HN_OK or answered. */
static int live_state(hn_api_worker *w, hn_api_resp *rs, const chat_rq *c, live *out) {
    hn_rcl *rc = hn_rt_redis(w, rs);
    if (rc == NULL) return HN_ERR;
    if (hn_chat_live_read(rc, c->wid, c->sid, out) != HN_OK) {
        if (hn_rcl_err(rc)) {
            hn_api_redis_broken(w);
            hn_api_error(rs, 503, "redis unavailable");
        } else {
            hn_api_error(rs, 500, "redis hmget: unexpected reply");
        }
        return HN_ERR;
    }
    return HN_OK;
}

#define state_open hn_chat_state_open
typedef hn_chat_down down;

/* The downlink write (chat_invite.h). HN_OK, or HN_ERR when Redis failed
 * (nothing answered yet: the caller rolls back). */
static int downlink(hn_api_worker *w, const chat_rq *c, const down *d, char *entry, size_t cap) {
    hn_rcl *rc = hn_api_redis(w);
    if (rc == NULL) return HN_ERR;
    if (hn_chat_downlink(rc, w->cfg, c->wid, c->sid, d, entry, cap) == HN_OK) return HN_OK;
    if (hn_rcl_err(rc)) hn_api_redis_broken(w);
    return HN_ERR;
}

/* ---- the transaction --------------------------------------------------------------- */

static int tx(hn_api_worker *w, hn_api_resp *rs, const char *what) {
    PGresult *r = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, what, 0, NULL);
    if (r == NULL) return HN_ERR;
    PQclear(r);
    return HN_OK;
}

static void rollback(hn_api_worker *w) {
    if (w->pg == NULL) return;
    PGresult *r = PQexec(w->pg, "ROLLBACK");
    PQclear(r);
}

/* Redis failed inside the transaction: nothing may stay written. */
static void redis_failed(hn_api_worker *w, hn_api_resp *rs) {
    rollback(w);
    atomic_fetch_add(&m_redis_failed, 1);
    hn_api_error(rs, 503, "redis unavailable: nothing was stored (the event may have reached the page)");
}

static int commit(hn_api_worker *w, hn_api_resp *rs, int kind) {
    PGresult *r = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, "COMMIT", 0, NULL);
    if (r == NULL) {
        rollback(w);
        return HN_ERR;
    }
    PQclear(r);
    atomic_fetch_add(&m_writes[kind], 1);
    return HN_OK;
}

/* A lifecycle webhook (docs/RULES.md §4) in the write's transaction, when
 * the widget's webhook is enabled with that event (sql/007_rules.sql's
 * hn_webhook_enqueue: once per subject, NOTIFY at COMMIT). message NULL:
 * an event of the conversation (its subject), else of that message. */
static int lifecycle(hn_api_worker *w, hn_api_resp *rs, const chat_rq *c, const char *event,
                     const char *conv, const char *message) {
    const char *p[] = {c->wbuf, event, message ? message : conv, c->sid, conv, message};
    PGresult *r = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK,
                                 "SELECT hn_webhook_enqueue($1::integer, $2, $3, $4, $5::uuid, $6::uuid)",
                                 6, p);
    if (r == NULL) return HN_ERR;
    PQclear(r);
    return HN_OK;
}

#define AGENT_SQL HN_CHAT_AGENT_SQL

/* A message as JSON: columns id, conversation_id, sender, agent, text, sent_at (ms). */
static const hn_col message_cols[] = {
    {"id", HN_COL_STR}, {"conversation_id", HN_COL_STR}, {"sender", HN_COL_STR},
    {"agent", HN_COL_STR}, {"text", HN_COL_SEALED}, {"sent_at", HN_COL_TIME},
};

/* ---- POST …/sessions/:sessionId/chat ------------------------------------------------- */

void hn_route_chat_invite(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    chat_rq c = {0};
    hn_chat_invite_out o = {0};
    hn_buf out = {0};

    if (chat_begin(w, rq, rs, &c, true, true) != HN_OK) goto out;
    PGconn *pg = hn_api_pg(w);
    hn_rcl *rc = pg ? hn_rt_redis(w, rs) : NULL;
    if (pg == NULL) hn_api_error(rs, 503, "database unavailable");
    if (pg == NULL || rc == NULL) goto out;
    hn_chat_invite_in in = {c.wid, c.sid, c.f[0].val, c.f[1].val, rq->who.token_id, "agent", NULL};
    switch (hn_chat_invite(pg, rc, w->cfg, &in, &o)) {
    case HN_CINV_SENT:
        break;
    case HN_CINV_GONE:
        chat_error(rs, 409, "session_gone", "the session is not live");
        goto out;
    case HN_CINV_CHAT_OFF:
        chat_error(rs, 409, "chat_disabled", "the widget has chat off (herenowctl widget set --chat on)");
        goto out;
    case HN_CINV_CHATTING:
        chat_error(rs, 409, "already_chatting", o.state);
        goto out;
    case HN_CINV_BANNED:
        chat_error(rs, 403, "banned", "the visitor is banned on this widget");
        goto out;
    case HN_CINV_REDIS: {
        bool broken = hn_rcl_err(rc) != 0;      /* read before the broken client is freed */
        if (broken) hn_api_redis_broken(w);
        hn_api_error(rs, broken ? 503 : 500, "%s", broken ? "redis unavailable" : "redis hmget: unexpected reply");
        goto out;
    }
    case HN_CINV_REDIS_TX:
        if (hn_rcl_err(rc)) hn_api_redis_broken(w);
        atomic_fetch_add(&m_redis_failed, 1);
        hn_api_error(rs, 503, "redis unavailable: nothing was stored (the event may have reached the page)");
        goto out;
    case HN_CINV_NOT_WRITTEN:
        hn_api_error(rs, 500, "the invitation was not written");
        goto out;
    default:
        if (PQstatus(pg) != CONNECTION_OK) {
            hn_warn("event=pg_connection_lost worker=%d err='%s'", w->index, o.err);
            hn_api_pg_broken(w);
            hn_api_error(rs, 503, "database unavailable");
        } else {
            hn_error("event=pg_error worker=%d op=invite err='%s'", w->index, o.err);
            hn_api_error(rs, 500, "database error");
        }
        goto out;
    }
    atomic_fetch_add(&m_writes[W_INVITE], 1);
    hn_buf_append(&out, "{", 1);
    bool first = true;
    hn_json_kstr(&out, &first, "id", o.cid);
    hn_json_kint(&out, &first, "widget_id", c.wid);
    hn_json_kstr(&out, &first, "session_id", c.sid);
    hn_json_kstr(&out, &first, "state", "invited");
    hn_json_kstr(&out, &first, "started_by", "agent");
    hn_json_kstr(&out, &first, "agent", PQgetvalue(o.res, 0, 0));
    hn_json_ktime(&out, &first, "created_at", hn_rt_pg_int(o.res, 0, 1));
    hn_json_kstr(&out, &first, "stream_id", o.entry);
    hn_json_kraw(&out, &first, "message", "{", 1);
    bool mf = true;
    hn_rt_pg_row(&out, &mf, o.res, 0, 2, message_cols, (int)HN_ARRAY_LEN(message_cols));
    hn_buf_append(&out, "}}", 2);
    answer(rs, 201, &out);
out:
    if (o.res) PQclear(o.res);
    chat_rq_free(&c);
    hn_buf_free(&out);
}

/* ---- POST …/sessions/:sessionId/messages ------------------------------------------- */

/* A conversation the visitor started may not be drained yet: it exists
 * before the message refers to it (the drain's insert then does nothing). */
static const char ensure_sql[] =
    "INSERT INTO widget_conversations (id, widget_id, session_id, visitor_hash, started_by, state,"
    " chatting_at) VALUES ($3::uuid, $1, $2, nullif($4, ''), 'visitor', 'chatting', now())"
    " ON CONFLICT (id) DO NOTHING";

static const char message_sql[] =
    "WITH a AS (SELECT " AGENT_SQL("$5", "$6", "$1::integer") " AS name),"
    " u AS (UPDATE widget_conversations SET messages = messages + 1, last_message_at = now(),"
    "  state = CASE WHEN hn_chat_state_rank(state) < 4 THEN 'chatting' ELSE state END,"
    "  chatting_at = coalesce(chatting_at, now()), updated_at = now()"
    "  WHERE id = $3::uuid AND widget_id = $1 AND session_id = $2 AND state NOT IN"
    "  ('closed', 'declined', 'expired') RETURNING id),"
    " m AS (INSERT INTO widget_conversation_messages (id, conversation_id, widget_id, sender,"
    "  agent_name, body, sent_at) SELECT $4::uuid, u.id, $1, 'agent', a.name, $7, now() FROM u, a"
    "  RETURNING id, conversation_id, sender, agent_name, body, sent_at)"
    " SELECT m.id, m.conversation_id, m.sender, m.agent_name, m.body, " HN_SQL_MS("m.sent_at")
    " FROM m";

void hn_route_chat_message(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    chat_rq c = {0};
    live lv;
    PGresult *res = NULL, *e = NULL;
    hn_buf out = {0};
    char mid[37], entry[48];

    if (chat_begin(w, rq, rs, &c, true, true) != HN_OK) goto out;
    if (live_state(w, rs, &c, &lv) != HN_OK) goto out;
    if (!lv.live) {
        chat_error(rs, 409, "session_gone", "the session is not live");
        goto out;
    }
    if (!state_open(lv.state) || !hn_uuid_text_ok((hn_str){lv.chat, (uint32_t)strlen(lv.chat)})) {
        chat_error(rs, 409, "no_chat", lv.state[0] ? lv.state : "no conversation");
        goto out;
    }
    new_uuid(mid);
    if (tx(w, rs, "BEGIN") != HN_OK) goto out;
    const char *pe[] = {c.wbuf, c.sid, lv.chat, lv.visitor};
    if ((e = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, ensure_sql, 4, pe)) == NULL) {
        rollback(w);
        goto out;
    }
    hn_buf sealed = {0};
    hn_dk_seal(&sealed, c.f[0].val, strlen(c.f[0].val));
    hn_buf_append(&sealed, "", 1);
    const char *p[] = {c.wbuf, c.sid, lv.chat, mid, c.f[1].val ? c.f[1].val : "",
                       rq->who.token_id, sealed.p};
    res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, message_sql, 7, p);
    hn_dk_buf_wipe(&sealed);
    if (res == NULL) {
        rollback(w);
        goto out;
    }
    if (PQntuples(res) != 1) {
        rollback(w);
        chat_error(rs, 409, "no_chat", "the conversation is over");
        goto out;
    }
    if (lifecycle(w, rs, &c, "chat.started", lv.chat, NULL) != HN_OK ||
        lifecycle(w, rs, &c, "chat.message", lv.chat, mid) != HN_OK) {
        rollback(w);
        goto out;
    }
    down d = {"message", lv.chat, mid, PQgetvalue(res, 0, 3), c.f[0].val, "chatting", true};
    if (downlink(w, &c, &d, entry, sizeof(entry)) != HN_OK) {
        redis_failed(w, rs);
        goto out;
    }
    if (commit(w, rs, W_MESSAGE) != HN_OK) goto out;
    hn_buf_append(&out, "{", 1);
    bool first = true;
    hn_rt_pg_row(&out, &first, res, 0, 0, message_cols, (int)HN_ARRAY_LEN(message_cols));
    hn_json_kint(&out, &first, "widget_id", c.wid);
    hn_json_kstr(&out, &first, "session_id", c.sid);
    hn_json_kstr(&out, &first, "stream_id", entry);
    hn_buf_append(&out, "}", 1);
    answer(rs, 201, &out);
out:
    if (res) PQclear(res);
    if (e) PQclear(e);
    chat_rq_free(&c);
    hn_buf_free(&out);
}

/* ---- POST …/sessions/:sessionId/chat/close ----------------------------------------- */

static const char close_sql[] =
    "WITH a AS (SELECT " AGENT_SQL("$4", "$5", "$1::integer") " AS name)"
    " UPDATE widget_conversations v SET state = 'closed', closed_at = now(), updated_at = now()"
    " FROM a WHERE v.id = (SELECT id FROM widget_conversations WHERE widget_id = $1"
    "  AND session_id = $2 AND ($3 = '' OR id = nullif($3, '')::uuid) AND state <> 'closed'"
    "  ORDER BY created_at DESC LIMIT 1)"
    " RETURNING v.id, a.name, " HN_SQL_MS("v.closed_at");

void hn_route_chat_close(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    chat_rq c = {0};
    live lv;
    PGresult *res = NULL, *e = NULL;
    hn_buf out = {0};
    char mid[37], entry[48];

    if (chat_begin(w, rq, rs, &c, rq->body_len > 0, false) != HN_OK) goto out;
    if (rq->body_len == 0 &&
        !hn_chat_rate_take(rq->who.token_id, rq->cfg->chat_rate_per_min, hn_mono_ms())) {
        atomic_fetch_add(&m_limited, 1);
        chat_error(rs, 429, "rate_limited", "too many chat writes for this token");
        goto out;
    }
    if (live_state(w, rs, &c, &lv) != HN_OK) goto out;
    bool known = hn_uuid_text_ok((hn_str){lv.chat, (uint32_t)strlen(lv.chat)});
    if (!known) lv.chat[0] = '\0';
    new_uuid(mid);
    if (tx(w, rs, "BEGIN") != HN_OK) goto out;
    if (known) {
        const char *pe[] = {c.wbuf, c.sid, lv.chat, lv.visitor};
        if ((e = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, ensure_sql, 4, pe)) == NULL) {
            rollback(w);
            goto out;
        }
    }
    const char *p[] = {c.wbuf, c.sid, lv.chat, c.f[1].val ? c.f[1].val : "", rq->who.token_id};
    res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, close_sql, 5, p);
    if (res == NULL) {
        rollback(w);
        goto out;
    }
    if (PQntuples(res) != 1) {
        rollback(w);
        chat_error(rs, 409, "no_chat", "no open conversation");
        goto out;
    }
    const char *cid = PQgetvalue(res, 0, 0);
    if (lifecycle(w, rs, &c, "chat.closed", cid, NULL) != HN_OK) {
        rollback(w);
        goto out;
    }
    down d = {"close", cid, mid, PQgetvalue(res, 0, 1), "", lv.live ? "closed" : NULL, false};
    if (downlink(w, &c, &d, entry, sizeof(entry)) != HN_OK) {
        redis_failed(w, rs);
        goto out;
    }
    if (commit(w, rs, W_CLOSE) != HN_OK) goto out;
    hn_buf_append(&out, "{", 1);
    bool first = true;
    hn_json_kstr(&out, &first, "id", cid);
    hn_json_kint(&out, &first, "widget_id", c.wid);
    hn_json_kstr(&out, &first, "session_id", c.sid);
    hn_json_kstr(&out, &first, "state", "closed");
    hn_json_ktime(&out, &first, "closed_at", hn_rt_pg_int(res, 0, 2));
    hn_json_kstr(&out, &first, "stream_id", entry);
    hn_buf_append(&out, "}", 1);
    answer(rs, 200, &out);
out:
    if (res) PQclear(res);
    if (e) PQclear(e);
    chat_rq_free(&c);
    hn_buf_free(&out);
}

/* ---- GET …/sessions/:sessionId/messages ---------------------------------------------- */

/* Newest first from the cursor (a message id: the page before it), limit+1
 * to know whether there is more; answered oldest first. */
static const char thread_sql[] =
    "SELECT m.id, m.conversation_id, m.sender, m.agent_name, m.body, " HN_SQL_MS("m.sent_at")
    " FROM widget_conversation_messages m JOIN widget_conversations c ON c.id = m.conversation_id"
    " WHERE c.widget_id = $1 AND c.session_id = $2"
    " AND ($3::uuid IS NULL OR (m.sent_at, m.seq) < (SELECT sent_at, seq"
    "  FROM widget_conversation_messages b WHERE b.id = $3::uuid AND b.widget_id = $1))"
    " ORDER BY m.sent_at DESC, m.seq DESC LIMIT $4::integer + 1";

static int page_limit(const hn_api_req *rq, hn_api_resp *rs, int64_t *limit) {
    char err[96];
    if (hn_param_int("limit", hn_api_query(rq, "limit"), 1, PAGE_MAX, PAGE_DEF, limit, err,
                     sizeof(err)) != HN_OK) {
        hn_api_error(rs, 400, "%s", err);
        return HN_ERR;
    }
    return HN_OK;
}

void hn_route_chat_messages(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    chat_rq c = {0};
    PGresult *res = NULL;
    hn_buf out = {0};
    int64_t limit;
    char lbuf[24];

    if (chat_begin(w, rq, rs, &c, false, false) != HN_OK) goto out;
    if (page_limit(rq, rs, &limit) != HN_OK) goto out;
    const char *before = hn_api_query(rq, "before");
    if (before && !hn_uuid_text_ok((hn_str){before, (uint32_t)strlen(before)})) {
        hn_api_error(rs, 400, "before: want a message id (UUID)");
        goto out;
    }
    snprintf(lbuf, sizeof(lbuf), "%lld", (long long)limit);
    const char *p[] = {c.wbuf, c.sid, before, lbuf};
    if ((res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, thread_sql, 4, p)) == NULL) goto out;
    int n = PQntuples(res);
    bool more = n > limit;
    if (more) n = (int)limit;
    hn_buf_append(&out, "{", 1);
    bool first = true;
    hn_json_kint(&out, &first, "widget_id", c.wid);
    hn_json_kstr(&out, &first, "session_id", c.sid);
    hn_json_kraw(&out, &first, "messages", "[", 1);
    for (int i = n - 1; i >= 0; i--) {
        bool f = true;
        hn_buf_append(&out, i == n - 1 ? "{" : ",{", i == n - 1 ? 1 : 2);
        hn_rt_pg_row(&out, &f, res, i, 0, message_cols, (int)HN_ARRAY_LEN(message_cols));
        hn_buf_append(&out, "}", 1);
    }
    hn_buf_append(&out, "]", 1);
    if (more) hn_json_kstr(&out, &first, "next_before", PQgetvalue(res, n - 1, 0));
    else hn_json_knull(&out, &first, "next_before");
    hn_buf_append(&out, "}", 1);
    hn_rt_answer(rs, &out);
out:
    if (res) PQclear(res);
    chat_rq_free(&c);
    hn_buf_free(&out);
}

/* ---- GET …/widgets/:widgetId/chats ---------------------------------------------------- */

/* cursor: "<created_at µs>_<id>" of the last conversation of the page */
static const char chats_sql[] =
    "SELECT id, session_id, state, started_by, agent_name, messages,"
    " " HN_SQL_MS("created_at") ", " HN_SQL_MS("updated_at") ", " HN_SQL_MS("last_message_at") ","
    " " HN_SQL_MS("closed_at") ","
    " (floor(extract(epoch FROM created_at) * 1000000)::bigint)::text || '_' || id"
    " FROM widget_conversations WHERE widget_id = $1"
    " AND ($2::text IS NULL OR ($2 = 'open') = (state IN ('invited', 'shown', 'accepted', 'chatting')))"
    " AND ($3::bigint IS NULL OR (created_at, id) < (timestamptz 'epoch' + $3::bigint"
    "  * interval '1 microsecond', $4::uuid))"
    " ORDER BY created_at DESC, id DESC LIMIT $5::integer + 1";

static const hn_col chat_cols[] = {
    {"id", HN_COL_STR}, {"session_id", HN_COL_STR}, {"state", HN_COL_STR},
    {"started_by", HN_COL_STR}, {"agent", HN_COL_STR}, {"messages", HN_COL_INT},
    {"created_at", HN_COL_TIME}, {"updated_at", HN_COL_TIME}, {"last_message_at", HN_COL_TIME},
    {"closed_at", HN_COL_TIME},
};

void hn_route_chats(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    static const char *const allowed[] = {"state", "limit", "cursor"};
    static const char *const states[] = {"open", "closed"};
    PGresult *res = NULL;
    hn_buf out = {0};
    int64_t limit;
    int st = -1;
    char wbuf[24], lbuf[24], ubuf[24], err[96], idbuf[40];
    const char *cur_us = NULL, *cur_id = NULL;

    if (!hn_rt_check_keys(rq, rs, allowed, 3)) goto out;
    if (page_limit(rq, rs, &limit) != HN_OK) goto out;
    if (hn_api_query(rq, "state") &&
        hn_param_enum("state", hn_api_query(rq, "state"), states, 2, -1, &st, err, sizeof(err)) !=
            HN_OK) {
        hn_api_error(rs, 400, "%s", err);
        goto out;
    }
    const char *cursor = hn_api_query(rq, "cursor");
    if (cursor) {
        const char *us = strchr(cursor, '_');
        size_t ul = us ? (size_t)(us - cursor) : 0;
        if (us == NULL || ul == 0 || ul > 18 || strspn(cursor, "0123456789") != ul ||   /* a bigint */
            !hn_uuid_text_ok((hn_str){us + 1, (uint32_t)strlen(us + 1)})) {
            hn_api_error(rs, 400, "cursor: want the next_cursor of a previous page");
            goto out;
        }
        memcpy(ubuf, cursor, ul);
        ubuf[ul] = '\0';
        snprintf(idbuf, sizeof(idbuf), "%s", us + 1);
        cur_us = ubuf;
        cur_id = idbuf;
    }
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    snprintf(lbuf, sizeof(lbuf), "%lld", (long long)limit);
    const char *p[] = {wbuf, st >= 0 ? states[st] : NULL, cur_us, cur_id, lbuf};
    if ((res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, chats_sql, 5, p)) == NULL) goto out;
    int n = PQntuples(res);
    bool more = n > limit;
    hn_buf_append(&out, "{", 1);
    bool first = true;
    hn_json_kint(&out, &first, "widget_id", hn_rt_widget_id(rq));
    hn_json_kraw(&out, &first, "chats", "", 0);
    hn_rt_rows_array(&out, res, chat_cols, (int)HN_ARRAY_LEN(chat_cols), (int)limit);
    if (more) hn_json_kstr(&out, &first, "next_cursor", PQgetvalue(res, (int)limit - 1, 10));
    else hn_json_knull(&out, &first, "next_cursor");
    hn_buf_append(&out, "}", 1);
    hn_rt_answer(rs, &out);
out:
    if (res) PQclear(res);
    hn_buf_free(&out);
}
