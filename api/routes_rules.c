/*
 * routes_rules.c: a widget's rules (docs/RULES.md §2, §6) — list, create,
 * read, replace, delete — and the export of its rules, notes, tags and
 * bans.
 *
 *   body ─► hn_rule_parse (proto/rule.h, with this api's own addresses, so
 *   a webhook at the api itself is refused) ─► 400 with its reason
 *        └► widget_rules: name and enabled in columns; match, conditions
 *           and actions as given in definition (jsonb). The engines compile
 *           definition || {name, enabled} again at every load.
 *
 * Create takes the widget's row lock first, so that two creates at once
 * cannot both pass the HN_RULE_PER_WIDGET count. The webhook secret (32
 * bytes from getrandom, hex) is answered once, at creation, never again.
 */
#include "api/routes.h"

#include "common/json.h"
#include "proto/rule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The columns of a rule's answer, in this order in every SELECT. */
#define RULE_COLS                                                                         \
    "id, widget_id, name, enabled, coalesce(definition->'match', '\"all\"'),"             \
    " definition->'conditions', definition->'actions', failing_reason,"                   \
    " consecutive_failures, fired, " HN_SQL_MS("last_fired_at") ", "                      \
    HN_SQL_MS("created_at") ", " HN_SQL_MS("updated_at")
static const hn_col rule_cols[] = {
    {"id", HN_COL_INT}, {"widget_id", HN_COL_INT}, {"name", HN_COL_STR},
    {"enabled", HN_COL_BOOL}, {"match", HN_COL_JSON}, {"conditions", HN_COL_JSON},
    {"actions", HN_COL_JSON}, {"failing_reason", HN_COL_STR},
    {"consecutive_failures", HN_COL_INT}, {"fired", HN_COL_INT},
    {"last_fired_at", HN_COL_TIME}, {"created_at", HN_COL_TIME}, {"updated_at", HN_COL_TIME},
};
#define NRULE_COLS ((int)HN_ARRAY_LEN(rule_cols))

/* The stored definition: the body's match (default all), conditions and
 * actions, as given. */
#define DEFINITION(p)                                                                     \
    "jsonb_build_object('match', coalesce(" p "::jsonb->'match', '\"all\"'),"             \
    " 'conditions', " p "::jsonb->'conditions', 'actions', " p "::jsonb->'actions')"

/* Parses the body as a rule: HN_OK, or 400 with the reason. */
static int check_body(const hn_api_req *rq, hn_api_resp *rs, hn_rule **out) {
    char host[256], err[300];
    hn_rule_self me = hn_rule_self_of(rq->cfg->api_listen, rq->cfg->api_https_listen,
                                      rq->cfg->public_url, host, sizeof(host));
    if (hn_rule_parse(rq->body ? rq->body : "", rq->body_len, &me, out, err, sizeof(err)) != HN_OK) {
        hn_api_error(rs, 400, "%s", err);
        return HN_ERR;
    }
    return HN_OK;
}

/* :ruleId (params[1]): a positive integer, else 400. */
static bool rule_id(const hn_api_req *rq, hn_api_resp *rs, char *out, size_t cap) {
    int64_t id;
    const char *s = rq->nparams > 1 ? rq->params[1] : "";
    if (!hn_parse_i64(s, &id) || id < 1) {
        hn_api_error(rs, 400, "ruleId must be a whole number from 1 to 9223372036854775807");
        return false;
    }
    snprintf(out, cap, "%lld", (long long)id);
    return true;
}

/* One rule's object from res row 0, with extra members (the secret at
 * creation) before the closing brace; answered with status. */
static void answer_rule(hn_api_resp *rs, const PGresult *res, int status, const char *secret) {
    hn_buf out = {0};
    bool first = true;
    hn_buf_append(&out, "{", 1);
    hn_rt_pg_row(&out, &first, res, 0, 0, rule_cols, NRULE_COLS);
    if (secret) hn_json_kstr(&out, &first, "webhook_secret", secret);
    hn_buf_append(&out, "}", 1);
    hn_rt_answer(rs, &out);
    rs->status = status;
    hn_buf_free(&out);
}

/* ---- list, read ------------------------------------------------------------------- */

static const char list_sql[] =
    "SELECT " RULE_COLS " FROM widget_rules WHERE widget_id = $1 ORDER BY id";

void hn_route_rules(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    char wbuf[24];
    hn_buf out = {0};
    if (!hn_rt_check_keys(rq, rs, NULL, 0)) return;
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    const char *p[] = {wbuf};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, list_sql, 1, p);
    if (res == NULL) return;
    bool first = true;
    hn_buf_append(&out, "{", 1);
    hn_json_kraw(&out, &first, "rules", "", 0);
    hn_rt_rows_array(&out, res, rule_cols, NRULE_COLS, INT32_MAX);
    hn_buf_append(&out, "}", 1);
    PQclear(res);
    hn_rt_answer(rs, &out);
    hn_buf_free(&out);
}

static const char get_sql[] =
    "SELECT " RULE_COLS " FROM widget_rules WHERE widget_id = $1 AND id = $2";

void hn_route_rule(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    char wbuf[24], rbuf[24];
    if (!hn_rt_check_keys(rq, rs, NULL, 0) || !rule_id(rq, rs, rbuf, sizeof(rbuf))) return;
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    const char *p[] = {wbuf, rbuf};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, get_sql, 2, p);
    if (res == NULL) return;
    if (PQntuples(res) == 0) hn_api_error(rs, 404, "rule not found");
    else answer_rule(rs, res, 200, NULL);
    PQclear(res);
}

/* ---- create ------------------------------------------------------------------------- */

static const char lock_sql[] = "SELECT 1 FROM widget_configs WHERE id = $1 FOR NO KEY UPDATE";
static const char create_sql[] =
    "INSERT INTO widget_rules (widget_id, name, enabled, definition, webhook_secret)"
    " SELECT $1, $2, $3, " DEFINITION("$4") ", $5"
    " WHERE (SELECT count(*) FROM widget_rules WHERE widget_id = $1) < $6"
    " RETURNING " RULE_COLS;

static void rollback(hn_api_worker *w) {
    if (w->pg == NULL) return;
    PGresult *r = PQexec(w->pg, "ROLLBACK");
    PQclear(r);
}

void hn_route_rule_create(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    hn_rule *rule = NULL;
    PGresult *res = NULL;
    bool intx = false;
    if (!hn_rt_check_keys(rq, rs, NULL, 0) || check_body(rq, rs, &rule) != HN_OK) return;

    char secret[65], wbuf[24], cap[16];
    if (hn_rule_new_secret(secret) != HN_OK) {
        hn_api_error(rs, 500, "no randomness for the webhook secret");
        goto out;
    }
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    snprintf(cap, sizeof(cap), "%d", HN_RULE_PER_WIDGET);

    if ((res = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, "BEGIN", 0, NULL)) == NULL) goto out;
    PQclear(res);
    intx = true;
    const char *lp[] = {wbuf};
    if ((res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, lock_sql, 1, lp)) == NULL) goto out;
    if (PQntuples(res) == 0) {
        hn_api_error(rs, 404, "widget not found");
        goto out;
    }
    PQclear(res);
    const char *p[] = {wbuf, hn_rule_name(rule), hn_rule_enabled(rule) ? "t" : "f", rq->body,
                       secret, cap};
    if ((res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, create_sql, 6, p)) == NULL) goto out;
    if (PQntuples(res) == 0) {
        hn_api_error(rs, 409, "rules: this widget has %d already, the most it may have",
                     HN_RULE_PER_WIDGET);
        goto out;
    }
    PGresult *c = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, "COMMIT", 0, NULL);
    if (c == NULL) goto out;
    PQclear(c);
    intx = false;
    answer_rule(rs, res, 201, secret);
out:
    if (intx) rollback(w);
    if (res) PQclear(res);
    hn_rule_free(rule);
}

/* ---- replace, delete -------------------------------------------------------------------- */

/* Enabling a rule clears why it was disabled (failing webhooks). */
static const char put_sql[] =
    "UPDATE widget_rules SET name = $3, enabled = $4, definition = " DEFINITION("$5") ","
    " failing_reason = CASE WHEN $4 THEN NULL ELSE failing_reason END,"
    " consecutive_failures = CASE WHEN $4 THEN 0 ELSE consecutive_failures END,"
    " version = version + 1, updated_at = now()"
    " WHERE widget_id = $1 AND id = $2 RETURNING " RULE_COLS;

void hn_route_rule_put(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    hn_rule *rule = NULL;
    char wbuf[24], rbuf[24];
    if (!hn_rt_check_keys(rq, rs, NULL, 0) || !rule_id(rq, rs, rbuf, sizeof(rbuf))) return;
    if (check_body(rq, rs, &rule) != HN_OK) return;
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    const char *p[] = {wbuf, rbuf, hn_rule_name(rule), hn_rule_enabled(rule) ? "t" : "f", rq->body};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, put_sql, 5, p);
    hn_rule_free(rule);
    if (res == NULL) return;
    if (PQntuples(res) == 0) hn_api_error(rs, 404, "rule not found");
    else answer_rule(rs, res, 200, NULL);
    PQclear(res);
}

static const char delete_sql[] = "DELETE FROM widget_rules WHERE widget_id = $1 AND id = $2";

void hn_route_rule_delete(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    char wbuf[24], rbuf[24];
    if (!hn_rt_check_keys(rq, rs, NULL, 0) || !rule_id(rq, rs, rbuf, sizeof(rbuf))) return;
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    const char *p[] = {wbuf, rbuf};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, delete_sql, 2, p);
    if (res == NULL) return;
    if (strcmp(PQcmdTuples(res), "0") == 0) {
        hn_api_error(rs, 404, "rule not found");
    } else {
        rs->status = 204;
        hn_buf_reset(&rs->body);
    }
    PQclear(res);
}

/* ---- export ------------------------------------------------------------------------------ */

#define SUBJECT                                                                           \
    "CASE WHEN subject_kind = 'visitor' THEN subject END,"                                \
    " CASE WHEN subject_kind = 'email' THEN subject END"

static const char notes_sql[] =
    "SELECT id, " SUBJECT ", body, author, " HN_SQL_MS("created_at") ", " HN_SQL_MS("updated_at")
    " FROM visitor_notes WHERE widget_id = $1 ORDER BY id";
static const hn_col notes_cols[] = {
    {"id", HN_COL_INT}, {"visitor", HN_COL_STR}, {"email", HN_COL_STR}, {"body", HN_COL_STR},
    {"author", HN_COL_STR}, {"created_at", HN_COL_TIME}, {"updated_at", HN_COL_TIME},
};
static const char tags_sql[] =
    "SELECT " SUBJECT ", json_agg(tag ORDER BY tag)"
    " FROM visitor_tags WHERE widget_id = $1 GROUP BY subject_kind, subject"
    " ORDER BY subject_kind, subject";
static const hn_col tags_cols[] = {
    {"visitor", HN_COL_STR}, {"email", HN_COL_STR}, {"tags", HN_COL_JSON},
};
static const char bans_sql[] =
    "SELECT id, " SUBJECT ", block_tracking, reason, author, " HN_SQL_MS("created_at")
    " FROM visitor_bans WHERE widget_id = $1 ORDER BY id";
static const hn_col bans_cols[] = {
    {"id", HN_COL_INT}, {"visitor", HN_COL_STR}, {"email", HN_COL_STR},
    {"block_tracking", HN_COL_BOOL}, {"reason", HN_COL_STR}, {"author", HN_COL_STR},
    {"created_at", HN_COL_TIME},
};

void hn_route_rules_export(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    static const struct {
        const char   *key, *sql;
        const hn_col *cols;
        int           ncols;
    } parts[] = {
        {"rules", list_sql, rule_cols, NRULE_COLS},
        {"notes", notes_sql, notes_cols, (int)HN_ARRAY_LEN(notes_cols)},
        {"tags", tags_sql, tags_cols, (int)HN_ARRAY_LEN(tags_cols)},
        {"bans", bans_sql, bans_cols, (int)HN_ARRAY_LEN(bans_cols)},
    };
    char wbuf[24];
    hn_buf out = {0};
    bool first = true;
    if (!hn_rt_check_keys(rq, rs, NULL, 0)) return;
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    const char *p[] = {wbuf};
    /* one snapshot for the four reads */
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK,
                                   "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL);
    if (res == NULL) return;
    PQclear(res);
    hn_buf_append(&out, "{", 1);
    for (size_t i = 0; i < HN_ARRAY_LEN(parts); i++) {
        res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, parts[i].sql, 1, p);
        if (res == NULL) goto out;
        hn_json_kraw(&out, &first, parts[i].key, "", 0);
        hn_rt_rows_array(&out, res, parts[i].cols, parts[i].ncols, INT32_MAX);
        PQclear(res);
    }
    hn_buf_append(&out, "}", 1);
    hn_rt_answer(rs, &out);
out:
    rollback(w);
    hn_buf_free(&out);
}
