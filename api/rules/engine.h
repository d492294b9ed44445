/*
 * engine.h: the rules engine (docs/RULES.md §1–3) — one thread per api
 * process that watches every live session of the widgets with enabled rules
 * (or a lifecycle webhook on session events) and acts when a rule matches.
 *
 *   own blocking Redis client (hn_rcl):
 *     at start XREAD every shard hn:stream:<n> from one live window back,
 *     then XREAD BLOCK min(next timer, HERENOW_RULES_RELOAD_MS), each
 *     HERENOW_RULES_READ_MS after the last one ends unless it was full
 *       → per-session state (hn_rule_sess) → the rules whose fields the
 *         record changed are evaluated; LATER → a timer (4-ary heap, far
 *         list); MATCH → queued, claimed after the read's records (or
 *         before the session's next record)
 *   own blocking libpq connection:
 *     every HERENOW_RULES_RELOAD_MS: widget_rules' versions per widget (a
 *       widget whose signature moved is compiled again), widget_webhooks
 *     a match: the claim (INSERT rule_firings … ON CONFLICT DO NOTHING),
 *       and for the claimant, in the same transaction, widget_rules.fired,
 *       the webhook's outbox row and NOTIFY herenow_webhooks
 *     session.started / session.ended: the outbox row, once per session
 *       (the unique index webhook_deliveries_once), NOTIFY
 *   what it needs of the rest of the api comes through hn_rules_host: the
 *   live hub's alert entry, the chat invitation (api/chat_invite.c), so
 *   this room includes no api/ header.
 */
#ifndef HN_RULES_ENGINE_H
#define HN_RULES_ENGINE_H

#include "common/buf.h"
#include "common/config.h"
#include "common/rcl.h"

#include <libpq-fe.h>

/* An auto invitation (docs/RULES.md §3), through the Start Chat path. */
typedef struct hn_rules_invite {
    int64_t     widget_id;
    const char *session_id;
    const char *text;
    const char *agent;        /* NULL or "": the widget's settings.agent_name */
    const char *visitor_id;   /* the session's (the site's id, else the visitor hash) */
} hn_rules_invite;

/* What an invitation came to: the engine counts the skips by reason. */
enum { HN_RINV_SENT = 0, HN_RINV_CHATTING, HN_RINV_GONE, HN_RINV_CHAT_OFF, HN_RINV_BANNED, HN_RINV_ERROR };

typedef struct hn_rules_host {
    void *arg;
    /* Any thread (the engine's): hands an `alert` event's JSON to this
     * process's live streams of widget_id. json is copied. */
    void (*alert)(void *arg, int64_t widget_id, const char *json, size_t len);
    /* The engine's thread, with its own connections (neither in a
     * transaction): sends the invitation, started_by 'rule'. HN_RINV_*;
     * err says why on HN_RINV_ERROR. */
    int  (*invite)(void *arg, PGconn *pg, hn_rcl *rc, const hn_rules_invite *in, char *err,
                   size_t cap);
    /* The engine's thread, every HN_RULES_BANS_CHECK_MS, with its own
     * connections: when Redis has lost the bans (hn:bans:version gone) while
     * PostgreSQL has some, writes every widget's ban set again. HN_ERR on a
     * connection's failure (err says which); NULL: no check. */
    int  (*bans_check)(void *arg, PGconn *pg, hn_rcl *rc, char *err, size_t cap);
} hn_rules_host;

#define HN_RULES_BANS_CHECK_MS 5000

typedef struct hn_rules hn_rules;

/* Starts the thread (NULL when HERENOW_RULES=off). cfg, rcfg and host
 * must outlive it; host is copied. */
hn_rules *hn_rules_start(const hn_config *cfg, const hn_redis_cfg *rcfg, const hn_rules_host *host);
/* Stops and joins the thread, then frees (NULL: nothing). */
void      hn_rules_stop(hn_rules *e);
/* Prometheus text; thread-safe (NULL: the families at zero). */
void      hn_rules_metrics(hn_rules *e, hn_buf *out);

#endif
