/* main.c: herenow-api — wiring only (see api/api.h for the threads). */
#include "api/drain/drain.h"
#include "api/internal.h"
#include "api/rules/webhook.h"
#include "common/datakey.h"
#include "common/log.h"
#include "common/pg.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    hn_config cfg;
    char err[512];
    int argi = 0;
    if (hn_config_load(&cfg, HN_FOR_API, argc, argv, &argi, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "herenow-api: %s\n", err);
        hn_config_free(&cfg);
        return 2;
    }
    if (argi == HN_CONFIG_VERSION) {
        printf("herenow-api %s\n", HN_VERSION);
        hn_config_free(&cfg);
        return 0;
    }
    if (argi < 0) {
        printf("usage: herenow-api [--flag value ...]\n\n"
               "Serves the JSON API (live visitors from Redis, history from PostgreSQL) and\n"
               "drains the record stream into PostgreSQL.\n\n");
        hn_config_usage(stdout, HN_FOR_API);
        hn_config_free(&cfg);
        return 0;
    }
    if (argi < argc) {
        fprintf(stderr, "herenow-api: unexpected argument '%s' (see --help)\n", argv[argi]);
        hn_config_free(&cfg);
        return 2;
    }
    if (hn_dk_init(cfg.data_key_file, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "herenow-api: %s\n", err);
        hn_config_free(&cfg);
        return 2;
    }
    hn_log_setup(cfg.log_level, cfg.log_file);
    /* The keys against the database's, when it answers now (else the
     * drain checks at its connection and writes nothing until they agree). */
    PGconn *pg = hn_pg_connect(cfg.database_url, &(hn_pg_opts){.connect_timeout_s = 5}, err, sizeof(err));
    if (pg == NULL) {
        hn_warn("event=data_keys_unchecked err='%s'", err);
    } else if (hn_pg_check_data_keys(pg, HN_DK_ALL | HN_DK_ENROLL, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "herenow-api: %s\n", err);
        PQfinish(pg);
        hn_config_free(&cfg);
        return 2;
    }
    if (pg) PQfinish(pg);
    hn_api_server *srv = NULL;
    if (hn_server_create(&srv, &cfg, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "herenow-api: %s\n", err);
        hn_server_destroy(srv);
        hn_config_free(&cfg);
        libevent_global_shutdown();
        return 2;
    }
    hn_drain *drain = hn_drain_start(&cfg);
    hn_server_set_drain(srv, drain);
    hn_webhooks *webhooks = hn_webhooks_start(&cfg);
    int rc = hn_server_run(srv);
    hn_webhooks_stop(webhooks);
    if (drain && hn_drain_stop(drain, hn_server_remaining_ms(srv)) != HN_OK) {
        hn_error("event=drain_stop_unclean");
        rc = 2;
    }
    hn_server_destroy(srv);
    hn_info("event=stopped clean=%d", rc == 0);
    hn_config_free(&cfg);
    hn_dk_shutdown();
    libevent_global_shutdown();
    return rc;
}
