/*
 * webhook.c: `herenowctl webhook show|set|rm WIDGET_ID …`, a widget's
 * lifecycle webhook (docs/RULES.md §4) straight in PostgreSQL, as
 * `PUT …/webhooks` stores it: the URL checked by hn_rule_url_check with the
 * api's own addresses from the same settings, the events among the five
 * names, a new secret on the first set (printed once, never shown again).
 * The engines read the webhook at their next reload.
 */
#include "ctl/ctl.h"

#include "common/token.h"
#include "proto/rule.h"

#include <stdio.h>
#include <string.h>

void hn_ctl_webhook_usage(FILE *f) {
    fprintf(f,
            "herenowctl webhook show WIDGET_ID\n"
            "  The widget's lifecycle webhook: url, events, enabled (never the secret).\n"
            "herenowctl webhook set WIDGET_ID --url URL --event NAME [--event NAME ...] [--enabled|--disabled]\n"
            "  Sets it (events: session.started, session.ended, chat.started, chat.message,\n"
            "  chat.closed). The first set prints its secret, once.\n"
            "herenowctl webhook rm WIDGET_ID\n"
            "  Removes it.\n");
}

static int hook_show(const hn_config *cfg, int argc, char **argv) {
    char id[1][24];
    if (hn_ctl_ids("webhook show", &argc, &argv, 1, id) != HN_OK || hn_ctl_parse_flags("webhook show", argc, argv, NULL, 0) != HN_OK)
        return HN_CTL_EXIT_USAGE;
    int rc = HN_CTL_EXIT_FAIL;
    PGconn *pg = hn_ctl_pg_connect(cfg);
    if (pg == NULL) return rc;
    const char *p[] = {id[0]};
    PGresult *r = hn_ctl_pg_exec(pg, "webhook show", PGRES_TUPLES_OK,
                                 "SELECT url, array_to_string(events, ','), enabled FROM widget_webhooks"
                                 " WHERE widget_id = $1", 1, p);
    if (r && PQntuples(r) == 0) {
        hn_ctl_errorf("webhook show: widget %s has no webhook", id[0]);
    } else if (r) {
        printf("url: %s\nevents: %s\nenabled: %s\n", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1),
               PQgetvalue(r, 0, 2)[0] == 't' ? "true" : "false");
        rc = HN_CTL_EXIT_OK;
    }
    PQclear(r);
    PQfinish(pg);
    return rc;
}

static int hook_set(const hn_config *cfg, int argc, char **argv) {
    char id[1][24];
    const char *url = NULL;
    hn_ctl_list events = {0};
    bool on = false, off = false;
    hn_ctl_flag flags[] = {
        {.name = "url", .type = HN_CTL_STR, .dst = &url},
        {.name = "event", .type = HN_CTL_LIST, .dst = &events},
        {.name = "enabled", .type = HN_CTL_BOOL, .dst = &on},
        {.name = "disabled", .type = HN_CTL_BOOL, .dst = &off},
    };
    if (hn_ctl_ids("webhook set", &argc, &argv, 1, id) != HN_OK ||
        hn_ctl_parse_flags("webhook set", argc, argv, flags, HN_ARRAY_LEN(flags)) != HN_OK)
        return HN_CTL_EXIT_USAGE;
    if (url == NULL || events.n == 0 || (on && off)) {
        hn_ctl_errorf("webhook set: want --url and at least one --event%s", on && off ? "; --enabled or --disabled" : "");
        return HN_CTL_EXIT_USAGE;
    }
    char host[256], err[300];
    hn_rule_self me = hn_rule_self_of(cfg->api_listen, cfg->api_https_listen, cfg->public_url,
                                      host, sizeof(host));
    if (hn_rule_url_check(url, strlen(url), &me, err, sizeof(err)) != HN_OK) {
        hn_ctl_errorf("webhook set: %s", err);
        return HN_CTL_EXIT_USAGE;
    }
    unsigned want = 0;
    for (int i = 0; i < events.n; i++) {
        int k = hn_webhook_event_index(events.v[i], strlen(events.v[i]));
        if (k < 0) {
            hn_ctl_errorf("webhook set: --event %s: one of session.started, session.ended, chat.started,"
                          " chat.message, chat.closed", events.v[i]);
            return HN_CTL_EXIT_USAGE;
        }
        want |= 1u << k;
    }
    char list[160], secret[41];
    size_t n = 0;
    list[n++] = '{';
    for (int i = 0; i < HN_WEBHOOK_NEVENTS; i++)
        if (want & 1u << i) n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s", n > 1 ? "," : "", hn_webhook_events[i]);
    snprintf(list + n, sizeof(list) - n, "}");
    if (hn_token_random_base62(secret, 40) != HN_OK) {
        hn_ctl_errorf("webhook set: no randomness for the secret");
        return HN_CTL_EXIT_FAIL;
    }
    int rc = HN_CTL_EXIT_FAIL;
    PGconn *pg = hn_ctl_pg_connect(cfg);
    if (pg == NULL) return rc;
    const char *p[] = {id[0], url, secret, list, on ? "true" : off ? "false" : NULL};
    PGresult *r = hn_ctl_pg_exec(pg, "webhook set", PGRES_TUPLES_OK,
                                 "INSERT INTO widget_webhooks AS h (widget_id, url, secret, events, enabled)"
                                 " SELECT $1, $2, $3, $4::text[], coalesce($5::boolean, true)"
                                 " WHERE EXISTS (SELECT 1 FROM widget_configs WHERE id = $1)"
                                 " ON CONFLICT (widget_id) DO UPDATE SET url = excluded.url, events = excluded.events,"
                                 "  enabled = coalesce($5::boolean, h.enabled), updated_at = now()"
                                 " RETURNING xmax = 0, enabled", 5, p);
    if (r && PQntuples(r) == 0) {
        hn_ctl_errorf("webhook set: no widget %s", id[0]);
    } else if (r) {
        if (PQgetvalue(r, 0, 0)[0] == 't') printf("webhook_secret: %s\n", secret);
        printf("set: webhook of widget %s (%s)\n", id[0], PQgetvalue(r, 0, 1)[0] == 't' ? "enabled" : "disabled");
        rc = HN_CTL_EXIT_OK;
    }
    PQclear(r);
    PQfinish(pg);
    return rc;
}

static int hook_rm(const hn_config *cfg, int argc, char **argv) {
    char id[1][24];
    if (hn_ctl_ids("webhook rm", &argc, &argv, 1, id) != HN_OK || hn_ctl_parse_flags("webhook rm", argc, argv, NULL, 0) != HN_OK)
        return HN_CTL_EXIT_USAGE;
    int rc = HN_CTL_EXIT_FAIL;
    PGconn *pg = hn_ctl_pg_connect(cfg);
    if (pg == NULL) return rc;
    const char *p[] = {id[0]};
    PGresult *r = hn_ctl_pg_exec(pg, "webhook rm", PGRES_COMMAND_OK, "DELETE FROM widget_webhooks WHERE widget_id = $1",
                                 1, p);
    if (r && strcmp(PQcmdTuples(r), "0") == 0) {
        hn_ctl_errorf("webhook rm: widget %s has no webhook", id[0]);
    } else if (r) {
        printf("rm: webhook of widget %s\n", id[0]);
        rc = HN_CTL_EXIT_OK;
    }
    PQclear(r);
    PQfinish(pg);
    return rc;
}

int hn_ctl_webhook(const hn_config *cfg, int argc, char **argv) {
    static const hn_ctl_sub subs[] = {{"show", hook_show}, {"set", hook_set}, {"rm", hook_rm}};
    return hn_ctl_dispatch("webhook", subs, HN_ARRAY_LEN(subs), hn_ctl_webhook_usage, cfg, argc, argv);
}
