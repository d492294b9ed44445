/*
 * engine_pg.c: the rules engine's PostgreSQL side (engine.h): the rules'
 * loads, the claim of a match and the claimant's outbox row, the
 * invitation's caps and skips, and the lifecycle webhooks' outbox rows.
 * Every statement's parameters are bound.
 */
#include "api/rules/engine_priv.h"

#include "common/datakey.h"
#include "common/json.h"
#include "common/log.h"
#include "common/pg.h"
#include "proto/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MS       1000
#define ALERT_MAX_AGE  10000     /* ms: an older firing shows no alert (a restart's backfill) */

const char *const engine_skip_names[SKIP__N] = {"chatting", "banned", "session_cap", "visitor_cap",
                                                "session_gone", "chat_disabled", "error"};

bool engine_pg_ok(hn_rules *e) {
    if (e->pg) return true;
    if ((int64_t)hn_mono_ms() < e->pg_retry_at) return false;
    char err[256];
    hn_pg_opts o = {"herenow-rules", 5, 10000};
    e->pg = hn_pg_connect(e->cfg->database_url, &o, err, sizeof(err));
    e->claim_prepared = false;
    if (e->pg == NULL) {
        hn_warn("event=rules_pg_connect_failed error='%s'", err);
        atomic_fetch_add(&e->pg_errors, 1);
        e->pg_retry_at = (int64_t)hn_mono_ms() + RETRY_MS;
        return false;
    }
    return true;
}

void engine_pg_lost(hn_rules *e, const char *what, PGresult *r) {
    const char *msg = r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r) : e->pg ? PQerrorMessage(e->pg) : "";
    hn_warn("event=rules_pg_error op=%s error='%.*s'", what, hn_pg_line(msg), msg);
    atomic_fetch_add(&e->pg_errors, 1);
    if (e->pg && PQstatus(e->pg) != CONNECTION_OK) {
        PQfinish(e->pg);
        e->pg = NULL;
        e->pg_retry_at = (int64_t)hn_mono_ms() + RETRY_MS;
    }
}

static PGresult *q(hn_rules *e, const char *what, ExecStatusType want, const char *sql, int n,
                   const char *const *p) {
    if (!engine_pg_ok(e)) return NULL;
    PGresult *r = PQexecParams(e->pg, sql, n, NULL, p, NULL, NULL, 0);
    if (r && PQresultStatus(r) == want) return r;
    engine_pg_lost(e, what, r);
    PQclear(r);
    return NULL;
}

/* ---- loads ------------------------------------------------------------------------- */

void engine_widget_free(ewidget *w) {
    for (int i = 0; i < w->nrules; i++) hn_rule_free(w->rules[i].r);
    free(w->rules);
    free(w->by_field);
    free(w->hook_url);
    free(w);
}

static ewidget *widget_get(hn_rules *e, int64_t wid) {
    ewidget *w;
    HASH_FIND(hh, e->widgets, &wid, sizeof(wid), w);
    if (w) return w;
    w = hn_xcalloc(1, sizeof(*w));
    w->id = wid;
    /* a widget that gets its first rule (or hook) while its visitors are
     * live, or whose load had to wait for PostgreSQL: their sessions are
     * read back from the stream (engine.c; at the start, where the engine
     * has read nothing yet, that range is empty) */
    w->backfill = true;
    e->want_backfill = true;
    HASH_ADD(hh, e->widgets, id, sizeof(w->id), w);
    return w;
}

static const char sig_sql[] =
    "SELECT widget_id, md5(string_agg(id || ':' || version, ',' ORDER BY id))"
    " FROM widget_rules WHERE enabled GROUP BY widget_id";
static const char rules_sql[] =
    "SELECT id, (definition || jsonb_build_object('name', name, 'enabled', enabled))::text"
    " FROM widget_rules WHERE widget_id = $1 AND enabled ORDER BY id LIMIT 1000";
static const char hooks_sql[] =
    "SELECT widget_id, url, 'session.started' = ANY (events), 'session.ended' = ANY (events)"
    " FROM widget_webhooks WHERE enabled AND events && ARRAY['session.started', 'session.ended']";

static void load_rules(hn_rules *e, ewidget *w, const char *sig) {
    char wb[24];
    snprintf(wb, sizeof(wb), "%lld", (long long)w->id);
    const char *p[] = {wb};
    PGresult *r = q(e, "load_rules", PGRES_TUPLES_OK, rules_sql, 1, p);
    if (r == NULL) return;           /* the old rules stay; the next reload tries again */
    for (int i = 0; i < w->nrules; i++) hn_rule_free(w->rules[i].r);
    free(w->rules);
    int n = PQntuples(r);
    w->rules = hn_xcalloc((size_t)(n ? n : 1), sizeof(*w->rules));
    w->nrules = 0;
    w->gen = ++e->rules_gen;
    w->reads_visitor = false;
    for (int i = 0; i < n; i++) {
        if (w->nrules == HN_RULE_PER_WIDGET) {      /* more than the routes let in: written by hand */
            hn_warn("event=rules_over_limit widget=%lld rules=%d loaded=%d", (long long)w->id, n, w->nrules);
            break;
        }
        erule *er = &w->rules[w->nrules];
        char err[256];
        const char *def = PQgetvalue(r, i, 1);
        if (hn_rule_parse(def, strlen(def), NULL, &er->r, err, sizeof(err)) != HN_OK) {
            hn_warn("event=rules_bad_definition widget=%lld rule=%s error='%s'", (long long)w->id,
                    PQgetvalue(r, i, 0), err);
            continue;
        }
        er->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        er->fields = hn_rule_fields(er->r);
        int af;
        er->afield = (int8_t)(hn_rule_anchor(er->r, &af, er->abits) == HN_OK ? af : -1);
        er->min_pv = hn_rule_min_page_views(er->r);
        for (int k = 0; k < hn_rule_nactions(er->r); k++) {
            const hn_rule_action *a = hn_rule_action_at(er->r, k);
            er->webhook |= a->type == HN_RA_WEBHOOK;
            er->alert |= a->type == HN_RA_ALERT;
            er->invite |= a->type == HN_RA_INVITE;
        }
        if (er->fields & (1u << HN_RF_VISITOR)) w->reads_visitor = true;
        w->nrules++;
    }
    PQclear(r);
    free(w->by_field);
    w->nwords = (w->nrules + 63) / 64;
    w->by_field = hn_xcalloc((size_t)HN_RF__N * (size_t)(w->nwords ? w->nwords : 1), sizeof(uint64_t));
    for (int i = 0; i < w->nrules; i++)
        for (uint32_t f = w->rules[i].fields & ((1u << HN_RF__N) - 1); f; f &= f - 1)
            w->by_field[(size_t)__builtin_ctz(f) * (size_t)w->nwords + (size_t)(i >> 6)] |= 1ull << (i & 63);
    snprintf(w->sig, sizeof(w->sig), "%s", sig);
    hn_info("event=rules_loaded widget=%lld rules=%d", (long long)w->id, w->nrules);
    engine_widget_reloaded(e, w);
}

void engine_reload(hn_rules *e) {
    PGresult *r = q(e, "rules_versions", PGRES_TUPLES_OK, sig_sql, 0, NULL);
    if (r == NULL) return;
    PGresult *h = q(e, "webhooks", PGRES_TUPLES_OK, hooks_sql, 0, NULL);
    if (h == NULL) {
        PQclear(r);
        return;
    }
    ewidget *w, *tmp;
    HASH_ITER(hh, e->widgets, w, tmp) {
        w->seen = false;
        w->hook_started = w->hook_ended = false;
    }
    for (int i = 0; i < PQntuples(h); i++) {
        w = widget_get(e, strtoll(PQgetvalue(h, i, 0), NULL, 10));
        free(w->hook_url);
        w->hook_url = hn_xstrdup(PQgetvalue(h, i, 1));
        w->hook_started = PQgetvalue(h, i, 2)[0] == 't';
        w->hook_ended = PQgetvalue(h, i, 3)[0] == 't';
    }
    PQclear(h);
    for (int i = 0; i < PQntuples(r); i++) {
        w = widget_get(e, strtoll(PQgetvalue(r, i, 0), NULL, 10));
        w->seen = true;
        const char *sig = PQgetvalue(r, i, 1);
        if (strcmp(sig, w->sig) != 0) load_rules(e, w, sig);
    }
    PQclear(r);
    uint64_t loaded = 0;
    HASH_ITER(hh, e->widgets, w, tmp) {
        if (!w->seen) {                  /* no enabled rule left */
            for (int i = 0; i < w->nrules; i++) hn_rule_free(w->rules[i].r);
            w->nrules = 0;
            w->nwords = 0;
            w->gen = ++e->rules_gen;
            w->sig[0] = '\0';
            w->reads_visitor = false;
        }
        if (w->nrules == 0 && !w->hook_started && !w->hook_ended) {
            HASH_DEL(e->widgets, w);
            engine_widget_free(w);
            continue;
        }
        loaded += (uint64_t)w->nrules;
    }
    atomic_store(&e->loaded, loaded);
}

/* ---- bodies ------------------------------------------------------------------------- */

void engine_session_json(hn_buf *b, const esess *s) {
    bool f = true;
    hn_buf_append(b, "{", 1);
    hn_json_kstr(b, &f, "session_id", s->sid);
    hn_json_kstr(b, &f, "visitor_id", s->visitor);
    hn_json_kstr(b, &f, "url", s->str[HN_RF_URL]);
    hn_json_kstr(b, &f, "title", s->str[HN_RF_TITLE]);
    hn_json_kstr(b, &f, "referrer", s->str[HN_RF_REFERRER]);
    hn_json_kstr(b, &f, "country", s->str[HN_RF_COUNTRY]);
    hn_json_kstr(b, &f, "device", s->str[HN_RF_DEVICE]);
    hn_json_kstr(b, &f, "browser", s->str[HN_RF_BROWSER]);
    hn_json_kstr(b, &f, "os", s->str[HN_RF_OS]);
    hn_json_kint(b, &f, "page_views", s->page_views);
    hn_json_ktime(b, &f, "started_at", s->start_ms);
    hn_buf_append(b, "}", 1);
}

/* A body for the outbox (NUL-terminated in d): what the visitor's page
 * sent, defused, as the sender opens what looks sealed in a body
 * (common/datakey.h) and nothing here is. */
static void body_defused(hn_buf *d, const char *rest) {
    hn_dk_defuse_json(d, rest, strlen(rest));
    hn_buf_append(d, "", 1);
}

/* A lifecycle event's outbox row; the body's "id" is the row's own (taken
 * from the identity's sequence first). rest: the body after {"id":N. The
 * row's id, 0 when the event's row was there already, -1 on an error. */
static const char outbox_sql[] =
    "WITH n AS (SELECT nextval(pg_get_serial_sequence('webhook_deliveries', 'id')) AS id)"
    " INSERT INTO webhook_deliveries (id, widget_id, event, subject, visitor_id, url, body)"
    " OVERRIDING SYSTEM VALUE SELECT n.id, $1, $2, $3, $4, $5, '{\"id\":' || n.id || $6 FROM n"
    " ON CONFLICT DO NOTHING RETURNING id";

static int64_t outbox(hn_rules *e, const esess *s, const char *event, const char *url, const char *rest) {
    char wb[24];
    snprintf(wb, sizeof(wb), "%lld", (long long)s->wid);
    hn_buf d = {0};
    body_defused(&d, rest);
    const char *p[] = {wb, event, s->sid, s->visitor, url, d.p};
    PGresult *r = q(e, "outbox", PGRES_TUPLES_OK, outbox_sql, 6, p);
    hn_buf_free(&d);
    if (r == NULL) return -1;
    int64_t id = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return id;
}

static void body_head(hn_buf *b, const char *event, int64_t at_ms, int64_t wid) {
    bool f = false;                          /* after {"id":N */
    hn_json_kstr(b, &f, "event", event);
    hn_json_ktime(b, &f, "at", at_ms);
    hn_json_kint(b, &f, "widget_id", wid);
}

void engine_lifecycle(hn_rules *e, ewidget *w, const esess *s, const char *event) {
    if (w->hook_url == NULL) return;
    hn_buf b = {0};
    body_head(&b, event, (int64_t)hn_now_ms(), s->wid);
    hn_json_kraw(&b, &(bool){false}, "session", "", 0);
    engine_session_json(&b, s);
    hn_buf_append(&b, "}", 1);
    hn_buf_append(&b, "", 1);
    int64_t id = outbox(e, s, event, w->hook_url, b.p);
    if (id > 0) {
        PQclear(q(e, "notify", PGRES_COMMAND_OK, "NOTIFY herenow_webhooks", 0, NULL));
        atomic_fetch_add(&e->webhooks_lifecycle, 1);
    }
    hn_buf_free(&b);
}

/* ---- a match --------------------------------------------------------------------------- */

/* The claim and, when it is won, everything that goes with it, in one
 * statement (one round trip, its own transaction): the firing's row (its
 * time the engine's clock, $5 ms, so that the webhook bodies can be built
 * before), the rule's count, the webhook actions' outbox rows ($6 urls, $7
 * the bodies after {"id":N) and their NOTIFY. The rule_firings key makes
 * one api process the winner; a loser reads the winner's time back (NULL
 * when the winner committed after this statement's snapshot: the
 * claimed statement asks again). $1 rule, $2 session, $3 widget, $4 visitor. */
static const char claim_sql[] =
    "WITH c AS (INSERT INTO rule_firings (rule_id, session_id, widget_id, visitor_id, fired_at)"
    "  VALUES ($1::bigint, $2::text, $3::integer, $4::text,"
    "   timestamptz 'epoch' + $5::bigint * interval '1 millisecond')"
    "  ON CONFLICT DO NOTHING RETURNING 1),"
    " f AS (UPDATE widget_rules SET fired = fired + 1,"
    "  last_fired_at = timestamptz 'epoch' + $5::bigint * interval '1 millisecond'"
    "  WHERE id = $1::bigint AND EXISTS (SELECT 1 FROM c)),"
    " n AS (SELECT nextval(pg_get_serial_sequence('webhook_deliveries', 'id')) AS id, x.url, x.rest"
    "  FROM c, unnest($6::text[], $7::text[]) AS x(url, rest)),"
    " o AS (INSERT INTO webhook_deliveries (id, widget_id, rule_id, event, subject, visitor_id, url, body)"
    "  OVERRIDING SYSTEM VALUE SELECT n.id, $3::integer, $1::bigint, 'rule.fired', $2::text, $4::text,"
    "   n.url, '{\"id\":' || n.id || n.rest FROM n ON CONFLICT DO NOTHING RETURNING id)"
    " SELECT EXISTS (SELECT 1 FROM c),"
    "  (SELECT floor(extract(epoch FROM fired_at) * 1000)::bigint FROM rule_firings"
    "   WHERE rule_id = $1::bigint AND session_id = $2::text),"
    "  (SELECT count(pg_notify('herenow_webhooks', '')) FROM o)";
static const char claimed_sql[] =
    "SELECT floor(extract(epoch FROM fired_at) * 1000)::bigint FROM rule_firings"
    " WHERE rule_id = $1 AND session_id = $2";

/* "{…}" of a text[] parameter: each element quoted, \ and " escaped. */
static void pg_array_add(hn_buf *a, const char *v) {
    hn_buf_append(a, a->len ? ",\"" : "{\"", 2);
    for (const char *c = v; *c;) {
        size_t n = strcspn(c, "\"\\");
        hn_buf_append(a, c, n);
        c += n;
        if (*c) {
            hn_buf_append(a, "\\", 1);
            hn_buf_append(a, c++, 1);
        }
    }
    hn_buf_append(a, "\"", 1);
}

#define CLAIM_STMT "hn_rules_claim"

/* Runs the claim, prepared on the connection at its first use (it runs at
 * every match: parsed and planned once). A connection that lost it (a
 * pooler's, a DISCARD ALL) prepares it again, once; one that has it
 * already keeps it. A transaction left open by anything else is rolled
 * back first: the claim must commit on its own. */
static PGresult *claim_exec(hn_rules *e, const char *const *p) {
    if (!engine_pg_ok(e)) return NULL;
    if (PQtransactionStatus(e->pg) != PQTRANS_IDLE) {
        hn_warn("event=rules_pg_open_transaction op=claim action=rollback");
        PQclear(PQexec(e->pg, "ROLLBACK"));
    }
    for (int attempt = 0;; attempt++) {
        PGresult *r;
        const char *st;
        if (!e->claim_prepared) {
            r = PQprepare(e->pg, CLAIM_STMT, claim_sql, 7, NULL);
            st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
            if (!r || (PQresultStatus(r) != PGRES_COMMAND_OK && !(st && strcmp(st, "42P05") == 0))) {
                engine_pg_lost(e, "claim_prepare", r);      /* 42P05: it has it already */
                PQclear(r);
                return NULL;
            }
            PQclear(r);
            e->claim_prepared = true;
        }
        r = PQexecPrepared(e->pg, CLAIM_STMT, 7, p, NULL, NULL, 0);
        if (r && PQresultStatus(r) == PGRES_TUPLES_OK) return r;
        st = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        if (attempt == 0 && st && strcmp(st, "26000") == 0) {     /* not there (any more) */
            PQclear(r);
            e->claim_prepared = false;
            continue;
        }
        engine_pg_lost(e, "claim", r);
        PQclear(r);
        return NULL;
    }
}

/* The claim: HN_OK with *won and *at (the firing's time), or HN_ERR. */
static int claim(hn_rules *e, ewidget *w, const erule *r, const esess *s, bool *won, int64_t *at) {
    char rb[24], wb[24], tb[24];
    int64_t now = (int64_t)hn_now_ms();
    snprintf(rb, sizeof(rb), "%lld", (long long)r->id);
    snprintf(wb, sizeof(wb), "%lld", (long long)w->id);
    snprintf(tb, sizeof(tb), "%lld", (long long)now);
    hn_buf urls = {0}, rests = {0};
    for (int i = 0; i < hn_rule_nactions(r->r); i++) {
        const hn_rule_action *a = hn_rule_action_at(r->r, i);
        if (a->type != HN_RA_WEBHOOK) continue;
        hn_buf b = {0};
        body_head(&b, "rule.fired", now, w->id);
        hn_json_kraw(&b, &(bool){false}, "rule", "{", 1);
        bool f = true;
        hn_json_kint(&b, &f, "id", r->id);
        hn_json_kstr(&b, &f, "name", hn_rule_name(r->r));
        hn_buf_append(&b, "}", 1);
        hn_json_kraw(&b, &(bool){false}, "session", "", 0);
        engine_session_json(&b, s);
        hn_buf_append(&b, "}", 2);             /* with its NUL */
        hn_buf d = {0};
        body_defused(&d, b.p);
        pg_array_add(&urls, a->url);
        pg_array_add(&rests, d.p);
        hn_buf_free(&d);
        hn_buf_free(&b);
    }
    hn_buf_append(&urls, urls.len ? "}" : "{}", urls.len ? 2 : 3);      /* with their NULs */
    hn_buf_append(&rests, rests.len ? "}" : "{}", rests.len ? 2 : 3);
    const char *p[] = {rb, s->sid, wb, s->visitor, tb, urls.p, rests.p};
    PGresult *res = claim_exec(e, p);
    hn_buf_free(&urls);
    hn_buf_free(&rests);
    if (res == NULL) return HN_ERR;
    *won = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    bool known = PQntuples(res) == 1 && !PQgetisnull(res, 0, 1);
    *at = *won ? now : known ? strtoll(PQgetvalue(res, 0, 1), NULL, 10) : 0;
    PQclear(res);
    if (!*won && !known) {
        if ((res = q(e, "claimed", PGRES_TUPLES_OK, claimed_sql, 2, p)) == NULL) return HN_ERR;
        *at = PQntuples(res) ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
        PQclear(res);
    }
    return HN_OK;
}

static const char caps_sql[] =
    "SELECT EXISTS (SELECT 1 FROM visitor_bans WHERE widget_id = $1::integer AND"
    "  ((subject_kind = 'visitor' AND subject IN ($2, $5)) OR (subject_kind = 'email' AND subject = lower($3)))),"
    " (SELECT count(*) FROM widget_conversations WHERE widget_id = $1::integer AND session_id = $4"
    "  AND started_by = 'rule'),"
    " (SELECT count(*) FROM widget_conversations WHERE widget_id = $1::integer"
    "  AND (visitor_id = $2 OR ($2 = $5 AND visitor_hash = $5))"
    "  AND started_by = 'rule' AND created_at > now() - interval '24 hours')";

static const char vlock_sql[] = "SELECT pg_advisory_lock(hashtext('rule-invite:' || $1 || ':' || $2))";
static const char vunlock_sql[] = "SELECT pg_advisory_unlock(hashtext('rule-invite:' || $1 || ':' || $2))";

static void unlock(hn_rules *e, const char *const *p) {
    PQclear(q(e, "invite_unlock", PGRES_TUPLES_OK, vunlock_sql, 2, p));
}

/* The session's identified email (hn:sess hash), "" when none or unknown. */
static void session_email(hn_rules *e, const esess *s, char *out, size_t cap) {
    out[0] = '\0';
    if (e->rc == NULL) return;
    char key[HN_KEY_CAP];
    hn_key_sess(key, (uint64_t)s->wid, s->sid, strlen(s->sid));
    redisReply *r = hn_rcl_command(e->rc, "HGET %s %s", key, hn_sf_name[HN_SF_EMAIL]);
    if (r && r->type == REDIS_REPLY_STRING) snprintf(out, cap, "%s", r->str);
    if (r == NULL) {
        atomic_fetch_add(&e->redis_errors, 1);
        hn_rcl_free(e->rc);
        e->rc = NULL;
    }
    if (r) freeReplyObject(r);
}

static void invite(hn_rules *e, ewidget *w, const hn_rule_action *a, const esess *s) {
    char email[256], wb[24], err[160];
    session_email(e, s, email, sizeof(email));
    snprintf(wb, sizeof(wb), "%lld", (long long)w->id);
    const char *p[] = {wb, s->visitor, email, s->sid, s->vhash};
    /* one rule invitation of a visitor at a time across the engines, so
     * that the caps see the one before (a statement of its own: the caps'
     * snapshot is taken after the lock is held) */
    PGresult *r = q(e, "invite_lock", PGRES_TUPLES_OK, vlock_sql, 2, p);
    if (r == NULL) {
        atomic_fetch_add(&e->skipped[SKIP_ERROR], 1);
        return;
    }
    PQclear(r);
    r = q(e, "invite_caps", PGRES_TUPLES_OK, caps_sql, 5, p);
    if (r == NULL) {
        atomic_fetch_add(&e->skipped[SKIP_ERROR], 1);
        unlock(e, p);
        return;
    }
    bool banned = PQgetvalue(r, 0, 0)[0] == 't';
    long long per_session = atoll(PQgetvalue(r, 0, 1)), per_visitor = atoll(PQgetvalue(r, 0, 2));
    PQclear(r);
    int skip = banned ? SKIP_BANNED
             : per_session >= e->cfg->rule_invites_per_session ? SKIP_SESSION_CAP
             : per_visitor >= e->cfg->rule_invites_per_visitor ? SKIP_VISITOR_CAP : -1;
    if (skip < 0 && (e->rc == NULL || e->host.invite == NULL)) skip = SKIP_ERROR;
    if (skip < 0) {
        hn_rules_invite in = {w->id, s->sid, a->text, a->agent_name, s->visitor};
        int rc = e->host.invite(e->host.arg, e->pg, e->rc, &in, err, sizeof(err));
        skip = rc == HN_RINV_SENT ? -1 : rc == HN_RINV_CHATTING ? SKIP_CHATTING
             : rc == HN_RINV_GONE ? SKIP_GONE : rc == HN_RINV_CHAT_OFF ? SKIP_CHAT_OFF
             : rc == HN_RINV_BANNED ? SKIP_BANNED : SKIP_ERROR;
        if (rc == HN_RINV_ERROR) hn_warn("event=rule_invite_failed widget=%lld session=%s error='%s'",
                                         (long long)w->id, s->sid, err);
    }
    unlock(e, p);
    if (skip >= 0) {
        atomic_fetch_add(&e->skipped[skip], 1);
        hn_info("event=rule_invite_skipped widget=%lld session=%s reason=%s", (long long)w->id, s->sid,
                engine_skip_names[skip]);
    } else {
        atomic_fetch_add(&e->firings[ACT_INVITE], 1);
    }
}

static void alert(hn_rules *e, ewidget *w, const erule *r, const hn_rule_action *a, const esess *s,
                  int64_t at) {
    if (e->host.alert == NULL) return;
    hn_buf b = {0};
    bool f = true;
    hn_buf_append(&b, "{", 1);
    hn_json_kint(&b, &f, "rule_id", r->id);
    hn_json_kstr(&b, &f, "rule", hn_rule_name(r->r));
    hn_json_kstr(&b, &f, "text", a->text);
    hn_json_kstr(&b, &f, "session_id", s->sid);
    hn_json_kstr(&b, &f, "visitor_id", s->visitor);
    hn_json_kstr(&b, &f, "url", s->str[HN_RF_URL]);
    hn_json_ktime(&b, &f, "at", at);
    hn_json_kbool(&b, &f, "sound", a->sound);
    hn_json_kbool(&b, &f, "notify", a->notify);
    hn_buf_append(&b, "}", 1);
    e->host.alert(e->host.arg, w->id, b.p, b.len);
    hn_buf_free(&b);
    atomic_fetch_add(&e->firings[ACT_ALERT], 1);
}

int engine_fire(hn_rules *e, ewidget *w, const erule *r, esess *s) {
    bool won = false;
    int64_t at = 0;
    if (claim(e, w, r, s, &won, &at) != HN_OK) return HN_ERR;
    /* debug: a match is in rule_firings and the counters, and there may be
     * hundreds a second (formatting and writing the line cost the engine
     * thread a sixth of its CPU at 480 a second, bench-rules) */
    hn_debug("event=rule_matched widget=%lld rule=%lld session=%s claimed=%d", (long long)w->id,
             (long long)r->id, s->sid, won);
    if (!won) atomic_fetch_add(&e->claims_lost, 1);
    for (int i = 0; i < hn_rule_nactions(r->r); i++) {
        const hn_rule_action *a = hn_rule_action_at(r->r, i);
        if (a->type == HN_RA_ALERT && (int64_t)hn_now_ms() - at <= ALERT_MAX_AGE) alert(e, w, r, a, s, at);
        if (!won) continue;
        if (a->type == HN_RA_WEBHOOK) atomic_fetch_add(&e->firings[ACT_WEBHOOK], 1);
        if (a->type == HN_RA_INVITE) invite(e, w, a, s);
    }
    return HN_OK;
}
