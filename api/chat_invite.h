/*
 * chat_invite.h: Start Chat's invitation (docs/CHAT.md §6) without an HTTP
 * request — what POST …/sessions/:sessionId/chat (routes_chat.c) and the
 * rules engine's auto invitations (api/rules/engine.c, through its host
 * callback) both run, on the caller's own blocking connections:
 *
 *   ZSCORE hn:live + HMGET chat fields → BEGIN → one invitation at a time
 *   per session (advisory lock), open conversation? chat on? → INSERT the
 *   conversation and its first message → XADD hn:chat:{w} + HSET the
 *   session hash → COMMIT
 *
 * and the two Redis pieces the other chat writes share.
 */
#ifndef HN_API_CHAT_INVITE_H
#define HN_API_CHAT_INVITE_H

#include "common/config.h"
#include "common/rcl.h"

#include <libpq-fe.h>

/* The agent's display name: the body's, else the token's, else the
 * widget's settings.agent_name, else "Agent" (SQL text). */
#define HN_CHAT_AGENT_SQL(body, tok, wid)                                                         \
    "coalesce(nullif(" body ", ''), nullif((SELECT name FROM api_tokens WHERE id = " tok "), ''),"\
    " nullif((SELECT settings->>'agent_name' FROM widget_configs WHERE id = " wid "), ''), 'Agent')"

/* A session's chat state in Redis. */
typedef struct hn_chat_live {
    bool  live;                  /* in hn:live:{w} */
    char  state[16];             /* chat_state */
    char  chat[40];              /* chat: the current conversation id */
    char  visitor[80];
} hn_chat_live;

/* ZSCORE hn:live:{w} sid + HMGET of the chat fields (pipelined). HN_OK, or
 * HN_ERR: hn_rcl_err(rc) set when the connection broke (drop it), else an
 * unexpected reply. */
int hn_chat_live_read(hn_rcl *rc, int64_t wid, const char *sid, hn_chat_live *out);

/* One downlink event (docs/CHAT.md §2) and the session hash, pipelined.
 * state NULL: the hash is not touched. HN_OK with the entry id, or HN_ERR
 * (hn_rcl_err(rc) set when the connection broke). */
typedef struct hn_chat_down {
    const char *event, *conv, *id, *agent, *text, *state;
    bool        count;           /* HINCRBY agent_messages 1 */
} hn_chat_down;
int hn_chat_downlink(hn_rcl *rc, const hn_config *cfg, int64_t wid, const char *sid,
                     const hn_chat_down *d, char *entry, size_t cap);

bool hn_chat_state_open(const char *s);

typedef struct hn_chat_invite_in {
    int64_t     widget_id;
    const char *session_id;
    const char *text;            /* checked by the caller */
    const char *agent;           /* "" or NULL: the token's or the widget's name */
    const char *token_id;        /* "" or NULL: none */
    const char *started_by;      /* "agent" or "rule" */
    const char *visitor_id;      /* NULL: PostgreSQL's session row's, else the hash's */
} hn_chat_invite_in;

enum {
    HN_CINV_SENT = 0,
    HN_CINV_GONE,                /* the session is not live */
    HN_CINV_CHAT_OFF,            /* the widget has chat off */
    HN_CINV_CHATTING,            /* an open conversation (out->state says which state) */
    HN_CINV_BANNED,              /* the visitor is banned on the widget (docs/RULES.md §5) */
    HN_CINV_PG,                  /* PostgreSQL failed (rolled back); out->err */
    HN_CINV_REDIS,               /* Redis failed before anything was written */
    HN_CINV_REDIS_TX,            /* Redis failed inside the transaction: rolled back */
    HN_CINV_NOT_WRITTEN,         /* the insert wrote no row (rolled back) */
};

typedef struct hn_chat_invite_out {
    char      cid[37], mid[37];  /* conversation, message */
    char      entry[48];         /* the hn:chat entry id */
    char      state[16];         /* HN_CINV_CHATTING: the open state */
    char      err[160];
    /* HN_CINV_SENT: the invite's row (agent, created_at ms, then the
     * message: id, conversation_id, sender, agent, text, sent_at ms); the
     * caller PQclears it */
    PGresult *res;
} hn_chat_invite_out;

/* pg and rc: connected, pg outside a transaction. One of HN_CINV_*. */
int hn_chat_invite(PGconn *pg, hn_rcl *rc, const hn_config *cfg, const hn_chat_invite_in *in,
                   hn_chat_invite_out *out);

#endif
