/*
 * rule.c: `herenowctl rule list|add|show|enable|disable|rm WIDGET_ID …`, a
 * widget's rules (docs/RULES.md) straight in PostgreSQL.
 *
 * add checks the definition with hn_rule_parse (proto/rule.h), the code the
 * API and the rules engine run, with the api's own addresses from the same
 * settings (HERENOW_API_LISTEN, HERENOW_PUBLIC_URL), and stores it as the
 * API does: name and enabled in columns; match, conditions and actions in
 * definition. It prints the webhook secret once. enable and disable bump
 * the rule's version (the engines reload it); enable clears failing_reason.
 */
#include "ctl/ctl.h"

#include "proto/rule.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS(col) "floor(extract(epoch FROM " col ") * 1000)::bigint"
#define UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

void hn_ctl_rule_usage(FILE *f) {
    fprintf(f,
            "herenowctl rule list WIDGET_ID\n"
            "  The widget's rules: id, enabled, fired, last_fired_at, name (tab-separated).\n"
            "herenowctl rule add WIDGET_ID [--file PATH]\n"
            "  Adds a rule: its JSON definition (docs/RULES.md §2) from PATH or stdin, checked\n"
            "  as the API checks it. Prints its id and, once, its webhook secret.\n"
            "herenowctl rule show WIDGET_ID RULE_ID\n"
            "  One rule as JSON (as the API answers it; never the secret).\n"
            "herenowctl rule enable|disable WIDGET_ID RULE_ID\n"
            "  Turns a rule on or off (enable also clears failing_reason).\n"
            "herenowctl rule rm WIDGET_ID RULE_ID\n"
            "  Deletes a rule.\n");
}

/* ---- list, show ------------------------------------------------------------------- */

static int rule_list(const hn_config *cfg, int argc, char **argv) {
    char ids[2][24];
    if (hn_ctl_ids("rule list", &argc, &argv, 1, ids) != HN_OK ||
        hn_ctl_parse_flags("rule list", argc, argv, NULL, 0) != HN_OK)
        return HN_CTL_EXIT_USAGE;
    int rc = HN_CTL_EXIT_FAIL;
    PGresult *r = NULL;
    PGconn *pg = hn_ctl_pg_connect(cfg);
    if (pg == NULL) goto out;
    const char *p[] = {ids[0]};
    r = hn_ctl_pg_exec(pg, "rule list", PGRES_TUPLES_OK,
                       "SELECT id, enabled, fired, coalesce(" UTC("last_fired_at") ", '-'), name"
                       " FROM widget_rules WHERE widget_id = $1 ORDER BY id", 1, p);
    if (r == NULL) goto out;
    printf("id\tenabled\tfired\tlast_fired_at\tname\n");
    for (int i = 0; i < PQntuples(r); i++) {
        /* a name is one line of text (hn_rule_parse refuses control characters) */
        printf("%s\t%s\t%s\t%s\t%s\n", PQgetvalue(r, i, 0),
               PQgetvalue(r, i, 1)[0] == 't' ? "yes" : "no", PQgetvalue(r, i, 2),
               PQgetvalue(r, i, 3), PQgetvalue(r, i, 4));
    }
    rc = HN_CTL_EXIT_OK;
out:
    PQclear(r);
    PQfinish(pg);
    return rc;
}

static int rule_show(const hn_config *cfg, int argc, char **argv) {
    char ids[2][24];
    if (hn_ctl_ids("rule show", &argc, &argv, 2, ids) != HN_OK ||
        hn_ctl_parse_flags("rule show", argc, argv, NULL, 0) != HN_OK)
        return HN_CTL_EXIT_USAGE;
    int rc = HN_CTL_EXIT_FAIL;
    PGresult *r = NULL;
    PGconn *pg = hn_ctl_pg_connect(cfg);
    if (pg == NULL) goto out;
    const char *p[] = {ids[0], ids[1]};
    r = hn_ctl_pg_exec(pg, "rule show", PGRES_TUPLES_OK,
                       "SELECT jsonb_build_object('id', id, 'widget_id', widget_id, 'name', name,"
                       " 'enabled', enabled, 'match', coalesce(definition->'match', '\"all\"'),"
                       " 'conditions', definition->'conditions', 'actions', definition->'actions',"
                       " 'failing_reason', failing_reason, 'consecutive_failures', consecutive_failures,"
                       " 'fired', fired, 'last_fired_at', " UTC("last_fired_at") ","
                       " 'created_at', " UTC("created_at") ", 'updated_at', " UTC("updated_at") ")"
                       " FROM widget_rules WHERE widget_id = $1 AND id = $2", 2, p);
    if (r == NULL) goto out;
    if (PQntuples(r) == 0) {
        hn_ctl_errorf("rule show: widget %s has no rule %s", ids[0], ids[1]);
        goto out;
    }
    printf("%s\n", PQgetvalue(r, 0, 0));
    rc = HN_CTL_EXIT_OK;
out:
    PQclear(r);
    PQfinish(pg);
    return rc;
}

/* ---- add ----------------------------------------------------------------------------- */

/* The whole of f, at most HN_RULE_BODY_MAX + 1 bytes (more is refused by
 * the parse). NULL on a read error. */
static char *slurp(FILE *f, size_t *len) {
    char *b = hn_xmalloc(HN_RULE_BODY_MAX + 2);
    size_t n = fread(b, 1, HN_RULE_BODY_MAX + 1, f);
    if (ferror(f)) {
        free(b);
        return NULL;
    }
    b[n] = 0;
    *len = n;
    return b;
}

static bool tx(PGconn *pg, const char *sql) {
    PGresult *r = hn_ctl_pg_exec(pg, "rule add", PGRES_COMMAND_OK, sql, 0, NULL);
    PQclear(r);
    return r != NULL;
}

static int rule_add(const hn_config *cfg, int argc, char **argv) {
    char ids[2][24];
    const char *file = NULL;
    if (hn_ctl_ids("rule add", &argc, &argv, 1, ids) != HN_OK) return HN_CTL_EXIT_USAGE;
    hn_ctl_flag flags[] = {{.name = "file", .type = HN_CTL_STR, .dst = &file}};
    if (hn_ctl_parse_flags("rule add", argc, argv, flags, HN_ARRAY_LEN(flags)) != HN_OK)
        return HN_CTL_EXIT_USAGE;

    int rc = HN_CTL_EXIT_FAIL;
    PGresult *r = NULL;
    PGconn *pg = NULL;
    hn_rule *rule = NULL;
    size_t len = 0;
    FILE *f = file ? fopen(file, "rb") : stdin;
    if (f == NULL) {
        hn_ctl_errorf("rule add: %s: %s", file, strerror(errno));
        return HN_CTL_EXIT_FAIL;
    }
    char *body = slurp(f, &len);
    if (file) fclose(f);
    if (body == NULL) {
        hn_ctl_errorf("rule add: reading %s failed", file ? file : "stdin");
        return HN_CTL_EXIT_FAIL;
    }
    char host[256], err[300];
    hn_rule_self me = hn_rule_self_of(cfg->api_listen, cfg->api_https_listen, cfg->public_url,
                                      host, sizeof(host));
    if (hn_rule_parse(body, len, &me, &rule, err, sizeof(err)) != HN_OK) {
        hn_ctl_errorf("rule add: %s", err);
        goto out;
    }
    char secret[65], cap[16];
    if (hn_rule_new_secret(secret) != HN_OK) {
        hn_ctl_errorf("rule add: getrandom: %s", strerror(errno));
        goto out;
    }
    snprintf(cap, sizeof(cap), "%d", HN_RULE_PER_WIDGET);

    if ((pg = hn_ctl_pg_connect(cfg)) == NULL || !tx(pg, "BEGIN")) goto out;
    const char *lp[] = {ids[0]};
    r = hn_ctl_pg_exec(pg, "rule add", PGRES_TUPLES_OK,
                       "SELECT 1 FROM widget_configs WHERE id = $1 FOR NO KEY UPDATE", 1, lp);
    if (r == NULL) goto out;
    if (PQntuples(r) == 0) {
        hn_ctl_errorf("rule add: no widget %s", ids[0]);
        goto out;
    }
    PQclear(r);
    const char *p[] = {ids[0], hn_rule_name(rule), hn_rule_enabled(rule) ? "t" : "f", body, secret, cap};
    r = hn_ctl_pg_exec(pg, "rule add", PGRES_TUPLES_OK,
                       "INSERT INTO widget_rules (widget_id, name, enabled, definition, webhook_secret)"
                       " SELECT $1, $2, $3, jsonb_build_object("
                       "   'match', coalesce($4::jsonb->'match', '\"all\"'),"
                       "   'conditions', $4::jsonb->'conditions', 'actions', $4::jsonb->'actions'), $5"
                       " WHERE (SELECT count(*) FROM widget_rules WHERE widget_id = $1) < $6"
                       " RETURNING id", 6, p);
    if (r == NULL) goto out;
    if (PQntuples(r) == 0) {
        hn_ctl_errorf("rule add: widget %s has %d rules already, the most it may have", ids[0],
                      HN_RULE_PER_WIDGET);
        goto out;
    }
    if (!tx(pg, "COMMIT")) goto out;
    printf("id: %s\nwebhook_secret: %s\n", PQgetvalue(r, 0, 0), secret);
    rc = HN_CTL_EXIT_OK;
out:
    PQclear(r);
    PQfinish(pg);      /* an open transaction ends with the connection */
    hn_rule_free(rule);
    free(body);
    return rc;
}

/* ---- enable, disable, rm ---------------------------------------------------------------- */

static int rule_change(const char *cmd, const char *sql, const hn_config *cfg, int argc,
                       char **argv) {
    char ids[2][24], what[32];
    snprintf(what, sizeof(what), "rule %s", cmd);
    if (hn_ctl_ids(what, &argc, &argv, 2, ids) != HN_OK ||
        hn_ctl_parse_flags(what, argc, argv, NULL, 0) != HN_OK)
        return HN_CTL_EXIT_USAGE;
    int rc = HN_CTL_EXIT_FAIL;
    PGresult *r = NULL;
    PGconn *pg = hn_ctl_pg_connect(cfg);
    if (pg == NULL) goto out;
    const char *p[] = {ids[0], ids[1]};
    if ((r = hn_ctl_pg_exec(pg, what, PGRES_COMMAND_OK, sql, 2, p)) == NULL) goto out;
    if (strcmp(PQcmdTuples(r), "1") != 0) {
        hn_ctl_errorf("%s: widget %s has no rule %s", what, ids[0], ids[1]);
        goto out;
    }
    printf("%s: rule %s of widget %s\n", cmd, ids[1], ids[0]);
    rc = HN_CTL_EXIT_OK;
out:
    PQclear(r);
    PQfinish(pg);
    return rc;
}

static int rule_enable(const hn_config *cfg, int argc, char **argv) {
    return rule_change("enable",
                       "UPDATE widget_rules SET enabled = true, failing_reason = NULL,"
                       " consecutive_failures = 0, version = version + 1, updated_at = now()"
                       " WHERE widget_id = $1 AND id = $2", cfg, argc, argv);
}

static int rule_disable(const hn_config *cfg, int argc, char **argv) {
    return rule_change("disable",
                       "UPDATE widget_rules SET enabled = false, version = version + 1,"
                       " updated_at = now() WHERE widget_id = $1 AND id = $2", cfg, argc, argv);
}

static int rule_rm(const hn_config *cfg, int argc, char **argv) {
    return rule_change("rm", "DELETE FROM widget_rules WHERE widget_id = $1 AND id = $2", cfg,
                       argc, argv);
}

int hn_ctl_rule(const hn_config *cfg, int argc, char **argv) {
    static const hn_ctl_sub subs[] = {
        {"list", rule_list}, {"add", rule_add}, {"show", rule_show},
        {"enable", rule_enable}, {"disable", rule_disable}, {"rm", rule_rm},
    };
    return hn_ctl_dispatch("rule", subs, HN_ARRAY_LEN(subs), hn_ctl_rule_usage, cfg, argc, argv);
}
