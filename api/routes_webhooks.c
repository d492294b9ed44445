/*
 * routes_webhooks.c: a widget's lifecycle webhook (GET / PUT / DELETE
 * …/widgets/:widgetId/webhooks) and the delivery logs of the outbox
 * (…/webhooks/deliveries, …/rules/:ruleId/deliveries), docs/RULES.md §4 and
 * §6. The sender that works the outbox is api/rules/webhook.c.
 */
#include "api/routes.h"

#include "common/json.h"
#include "common/jsonread.h"
#include "common/token.h"
#include "proto/rule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE_DEF 50
#define PAGE_MAX 200


/* ---- the URL check (docs/RULES.md §2: proto/rule.h's, shared with the rules) ------------- */

static int url_check(const char *url, size_t len, const hn_config *cfg, char *err, size_t cap) {
    char host[256];
    hn_rule_self me = hn_rule_self_of(cfg->api_listen, cfg->api_https_listen, cfg->public_url,
                                      host, sizeof(host));
    return hn_rule_url_check(url, len, &me, err, cap);
}

/* ---- PUT body ------------------------------------------------------------------------------- */

typedef struct hook_body {
    char *url;
    size_t url_len;
    bool  has_events;
    unsigned events;          /* bit i: hn_webhook_events[i] */
    int   enabled;            /* -1 absent */
    char  err[160];
} hook_body;

static int event_elem(void *ctx, int index, const hn_jval *v) {
    (void)index;
    unsigned *out = ctx;
    for (int i = 0; i < HN_WEBHOOK_NEVENTS; i++)
        if (v->type == HN_J_STR && hn_jread_str_is(v, hn_webhook_events[i])) {
            *out |= 1u << i;
            return HN_OK;
        }
    return HN_AGAIN;          /* not one of the names */
}

/* The events array: strings among the five names. */
static int parse_events(const hn_jval *v, unsigned *out, char *err, size_t cap) {
    *out = 0;
    if (v->type != HN_J_ARR) {
        snprintf(err, cap, "events: want an array of event names");
        return HN_ERR;
    }
    if (hn_jread_elements(v->p, v->len, event_elem, out) != HN_OK) {
        snprintf(err, cap, "events: each one of session.started, session.ended, chat.started, "
                           "chat.message, chat.closed");
        return HN_ERR;
    }
    return HN_OK;
}

static int body_member(void *ctx, const hn_jval *k, const hn_jval *v) {
    hook_body *b = ctx;
    if (hn_jread_str_is(k, "url")) {
        if (v->type != HN_J_STR || b->url) {
            snprintf(b->err, sizeof(b->err), "url: want one string");
            return HN_ERR;
        }
        b->url = hn_xmalloc(v->len + 1);
        long n = hn_jread_str(v, b->url, v->len + 1);
        if (n < 0 || memchr(b->url, '\0', (size_t)n)) {
            snprintf(b->err, sizeof(b->err), "url: want a string");
            return HN_ERR;
        }
        b->url[n] = '\0';
        b->url_len = (size_t)n;
    } else if (hn_jread_str_is(k, "events")) {
        if (parse_events(v, &b->events, b->err, sizeof(b->err)) != HN_OK) return HN_ERR;
        b->has_events = true;
    } else if (hn_jread_str_is(k, "enabled")) {
        if (v->type != HN_J_BOOL) {
            snprintf(b->err, sizeof(b->err), "enabled: want true or false");
            return HN_ERR;
        }
        b->enabled = v->b;
    } else {
        snprintf(b->err, sizeof(b->err), "unknown member (want url, events, enabled)");
        return HN_ERR;
    }
    return HN_OK;
}

/* ---- GET / PUT / DELETE …/webhooks ---------------------------------------------------------- */

#define HOOK_COLS                                                                               \
    " widget_id, url, array_to_json(events), enabled, " HN_SQL_MS("created_at") ", "           \
    HN_SQL_MS("updated_at")
static const hn_col hook_cols[] = {
    {"widget_id", HN_COL_INT}, {"url", HN_COL_STR},       {"events", HN_COL_JSON},
    {"enabled", HN_COL_BOOL},  {"created_at", HN_COL_TIME}, {"updated_at", HN_COL_TIME},
};

static const char hook_get_sql[] = "SELECT" HOOK_COLS " FROM widget_webhooks WHERE widget_id = $1";

static const char hook_put_sql[] =
    "INSERT INTO widget_webhooks AS h (widget_id, url, secret, events, enabled)"
    " SELECT $1, $2, $3, $4::text[], coalesce($5::boolean, true)"
    " WHERE EXISTS (SELECT 1 FROM widget_configs WHERE id = $1)"
    " ON CONFLICT (widget_id) DO UPDATE SET url = excluded.url, events = excluded.events,"
    "  enabled = coalesce($5::boolean, h.enabled), updated_at = now()"
    " RETURNING" HOOK_COLS ", xmax = 0, secret";

static const char hook_delete_sql[] = "DELETE FROM widget_webhooks WHERE widget_id = $1";

static void hook_answer(hn_api_resp *rs, PGresult *res, bool secret, int status) {
    hn_buf out = {0};
    hn_buf_append(&out, "{", 1);
    bool first = true;
    hn_rt_pg_row(&out, &first, res, 0, 0, hook_cols, (int)HN_ARRAY_LEN(hook_cols));
    if (secret) hn_json_kstr(&out, &first, "secret", PQgetvalue(res, 0, 7));
    hn_buf_append(&out, "}", 1);
    hn_rt_answer(rs, &out);
    rs->status = status;
    hn_buf_free(&out);
}

void hn_route_webhook_get(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    char wbuf[24];
    if (!hn_rt_check_keys(rq, rs, NULL, 0)) return;
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    const char *p[] = {wbuf};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, hook_get_sql, 1, p);
    if (res == NULL) return;
    if (PQntuples(res) == 0) hn_api_error(rs, 404, "no webhook for this widget (PUT one)");
    else hook_answer(rs, res, false, 200);
    PQclear(res);
}

void hn_route_webhook_put(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    hook_body b = {.enabled = -1};
    char wbuf[24], secret[41], events[128], err[256];
    PGresult *res = NULL;
    if (!hn_rt_check_keys(rq, rs, NULL, 0)) return;
    if (rq->body == NULL || !hn_jread_check(rq->body, rq->body_len)) {
        hn_api_error(rs, 400, "body: want a JSON object {\"url\", \"events\", \"enabled\"}");
        return;
    }
    if (hn_jread_members(rq->body, rq->body_len, body_member, &b) != HN_OK) {
        hn_api_error(rs, 400, "%s", b.err[0] ? b.err : "body: want a JSON object");
        goto out;
    }
    if (b.url == NULL || !b.has_events) {
        hn_api_error(rs, 400, "%s", b.url ? "events: required" : "url: required");
        goto out;
    }
    if (url_check(b.url, b.url_len, rq->cfg, err, sizeof(err)) != HN_OK) {
        hn_api_error(rs, 400, "%s", err);
        goto out;
    }
    if (hn_token_random_base62(secret, 40) != HN_OK) {
        hn_api_error(rs, 500, "no randomness for the secret");
        goto out;
    }
    size_t el = 0;
    events[el++] = '{';
    for (int i = 0; i < HN_WEBHOOK_NEVENTS; i++)
        if (b.events & (1u << i))
            el += (size_t)snprintf(events + el, sizeof(events) - el, "%s%s", el > 1 ? "," : "", hn_webhook_events[i]);
    snprintf(events + el, sizeof(events) - el, "}");
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    const char *p[] = {wbuf, b.url, secret, events, b.enabled < 0 ? NULL : b.enabled ? "true" : "false"};
    res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, hook_put_sql, 5, p);
    if (res == NULL) goto out;
    if (PQntuples(res) == 0) {
        hn_api_error(rs, 404, "widget not found");
        goto out;
    }
    bool created = PQgetvalue(res, 0, 6)[0] == 't';
    hook_answer(rs, res, created, created ? 201 : 200);
out:
    if (res) PQclear(res);
    free(b.url);
}

void hn_route_webhook_delete(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    char wbuf[24];
    if (!hn_rt_check_keys(rq, rs, NULL, 0)) return;
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    const char *p[] = {wbuf};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, hook_delete_sql, 1, p);
    if (res == NULL) return;
    if (strcmp(PQcmdTuples(res), "0") == 0) hn_api_error(rs, 404, "no webhook for this widget");
    else rs->status = 204;
    PQclear(res);
}

/* ---- delivery logs ------------------------------------------------------------------------------ */

/* $1 widget, $2 rule (NULL: every delivery of the widget), $3 before this id, $4 limit + 1 */
static const char deliveries_sql[] =
    "SELECT d.id, d.event, d.rule_id, d.state, d.attempts, d.last_status, d.last_error, d.last_ms,"
    " " HN_SQL_MS("d.created_at") ", " HN_SQL_MS("d.delivered_at") ","
    " CASE WHEN d.state IN ('pending', 'sending') THEN " HN_SQL_MS("d.next_attempt_at") " END,"
    " d.url, d.body FROM webhook_deliveries d"
    " WHERE d.widget_id = $1 AND ($2::bigint IS NULL OR d.rule_id = $2::bigint)"
    " AND ($3::bigint IS NULL OR d.id < $3::bigint)"
    " ORDER BY d.id DESC LIMIT $4::integer";
static const hn_col delivery_cols[] = {
    {"id", HN_COL_INT},          {"event", HN_COL_STR},        {"rule_id", HN_COL_INT},
    {"state", HN_COL_STR},       {"attempts", HN_COL_INT},     {"last_status", HN_COL_INT},
    {"last_error", HN_COL_STR},  {"last_ms", HN_COL_INT},      {"created_at", HN_COL_TIME},
    {"delivered_at", HN_COL_TIME}, {"next_attempt_at", HN_COL_TIME}, {"url", HN_COL_STR},
    {"body", HN_COL_JSON_SEALED_STR},
};

static void deliveries(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs, const char *rule,
                       char kind) {
    static const char *const allowed[] = {"limit", "cursor"};
    char err[HN_PARAM_ERR_CAP], wbuf[24], cbuf[24], lbuf[24];
    int64_t limit;
    hn_cursor cur;
    bool has_cur = false;
    hn_buf out = {0};
    PGresult *res = NULL;

    if (!hn_rt_check_keys(rq, rs, allowed, 2)) return;
    if (hn_param_int("limit", hn_api_query(rq, "limit"), 1, PAGE_MAX, PAGE_DEF, &limit, err,
                     sizeof(err)) != HN_OK) {
        hn_api_error(rs, 400, "%s", err);
        return;
    }
    const char *cs = hn_api_query(rq, "cursor");
    if (cs) {
        if (hn_cursor_decode(cs, kind, false, &cur) != HN_OK || cur.t < 1 || cur.id != 0) {
            hn_api_error(rs, 400, "cursor: not a cursor of this route (pass next_cursor as given)");
            return;
        }
        has_cur = true;
        snprintf(cbuf, sizeof(cbuf), "%lld", (long long)cur.t);
    }
    int64_t wid = hn_rt_widget_id(rq);
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)wid);
    if (rule) {
        const char *pr[] = {wbuf, rule};
        res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK,
                             "SELECT 1 FROM widget_rules WHERE widget_id = $1 AND id = $2::bigint", 2, pr);
        if (res == NULL) return;
        bool found = PQntuples(res) == 1;
        PQclear(res);
        res = NULL;
        if (!found) {
            hn_api_error(rs, 404, "rule not found");
            return;
        }
    }
    snprintf(lbuf, sizeof(lbuf), "%lld", (long long)limit + 1);
    const char *p[] = {wbuf, rule, has_cur ? cbuf : NULL, lbuf};
    res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, deliveries_sql, 4, p);
    if (res == NULL) return;
    int n = PQntuples(res);
    bool more = n > limit;
    if (more) n = (int)limit;
    hn_buf_append(&out, "{", 1);
    bool first = true;
    hn_json_kint(&out, &first, "widget_id", wid);
    hn_json_kraw(&out, &first, "deliveries", "[", 1);
    for (int i = 0; i < n; i++) {
        hn_buf_append(&out, i ? ",{" : "{", i ? 2 : 1);
        bool bf = true;
        hn_rt_pg_row(&out, &bf, res, i, 0, delivery_cols, (int)HN_ARRAY_LEN(delivery_cols));
        hn_buf_append(&out, "}", 1);
    }
    hn_buf_append(&out, "]", 1);
    hn_cursor next = {.kind = kind};
    if (more) next.t = hn_rt_pg_int(res, n - 1, 0);
    hn_rt_next_cursor(&out, &first, more ? &next : NULL);
    hn_buf_append(&out, "}", 1);
    PQclear(res);
    hn_rt_answer(rs, &out);
    hn_buf_free(&out);
}

void hn_route_webhook_deliveries(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    deliveries(w, rq, rs, NULL, 'D');
}

void hn_route_rule_deliveries(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    const char *rule = rq->nparams > 1 ? rq->params[1] : "";
    int64_t id;
    if (!hn_parse_i64(rule, &id) || id < 1) {
        hn_api_error(rs, 400, "ruleId must be a whole number from 1");
        return;
    }
    deliveries(w, rq, rs, rule, 'E');
}
