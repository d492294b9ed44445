/*
 * main.c: herenowctl's wiring. Settings (HERENOW_* or their --flags) come
 * first, then the command and its own flags:
 *
 *   herenowctl [--database-url URL] [--redis-url URL] ... COMMAND [flags]
 */
#include "ctl/ctl.h"

#include "common/config.h"
#include "common/datakey.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name;
    int (*run)(const hn_config *cfg, int argc, char **argv);
    void (*usage)(FILE *f);
    const char *summary;
} command;

static const command commands[] = {
    {"migrate", hn_ctl_migrate, hn_ctl_migrate_usage, "apply the database migrations"},
    {"widget", hn_ctl_widget, hn_ctl_widget_usage, "add, list and sync widgets"},
    {"send", hn_ctl_send, hn_ctl_send_usage, "send test beacons over UDP"},
    {"stream", hn_ctl_stream, hn_ctl_stream_usage, "count or dump the records in the stream, or name a shard's key"},
    {"token", hn_ctl_token, hn_ctl_token_usage, "create, list and revoke API tokens"},
    {"spool", hn_ctl_spool, hn_ctl_spool_usage, "inspect or replay the collector's spool files"},
    {"rule", hn_ctl_rule, hn_ctl_rule_usage, "list, add, show, enable, disable and remove a widget's rules"},
    {"webhook", hn_ctl_webhook, hn_ctl_webhook_usage, "show, set and remove a widget's lifecycle webhook"},
    {"doctor", hn_ctl_doctor, hn_ctl_doctor_usage, "check the configuration, the servers, the schema, the clocks and the files"},
    {"key", hn_ctl_key, hn_ctl_key_usage, "make a data key, show what is sealed, rotate the stored values to the newest key"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: herenowctl [SETTINGS] COMMAND [FLAGS]\n\nCommands:\n");
    for (size_t i = 0; i < HN_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-10s %s\n\n", "help", "this text, or `help COMMAND` for one command");
    for (size_t i = 0; i < HN_ARRAY_LEN(commands); i++) {
        commands[i].usage(f);
        fputc('\n', f);
    }
    fprintf(f, "Exit status: 0 done, 1 failed, 2 bad arguments (nothing done).\n\n");
    hn_config_usage(f, HN_FOR_CTL);
}

static const command *find(const char *name) {
    for (size_t i = 0; i < HN_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static bool wants_help(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) return true;
    return false;
}

int main(int argc, char **argv) {
    hn_config cfg;
    char err[512];
    int argi = 0, rc = HN_CTL_EXIT_USAGE;

    if (hn_config_load(&cfg, HN_FOR_CTL, argc, argv, &argi, err, sizeof(err)) != HN_OK) {
        hn_ctl_errorf("%s", err);
        goto out;
    }
    if (argi == HN_CONFIG_VERSION) {
        printf("herenowctl %s\n", HN_VERSION);
        rc = HN_CTL_EXIT_OK;
        goto out;
    }
    if (argi < 0) {
        usage(stdout);
        rc = HN_CTL_EXIT_OK;
        goto out;
    }
    if (argi >= argc) {
        hn_ctl_errorf("missing command (see --help)");
        goto out;
    }
    /* the data keys (common/datakey.h); `key new` makes the file's first line, so it needs none */
    bool key_new = argi + 1 < argc && strcmp(argv[argi], "key") == 0 && strcmp(argv[argi + 1], "new") == 0;
    if (!key_new && hn_dk_init(cfg.data_key_file, err, sizeof(err)) != HN_OK) {
        hn_ctl_errorf("%s", err);
        goto out;
    }
    hn_log_setup(cfg.log_level, NULL);

    const char *name = argv[argi];
    if (strcmp(name, "help") == 0) {
        const command *c = argi + 1 < argc ? find(argv[argi + 1]) : NULL;
        if (argi + 1 < argc && c == NULL) {
            hn_ctl_errorf("help: unknown command '%s' (see --help)", argv[argi + 1]);
            goto out;
        }
        if (c) c->usage(stdout);
        else usage(stdout);
        rc = HN_CTL_EXIT_OK;
        goto out;
    }
    const command *c = find(name);
    if (c == NULL) {
        if (strncmp(name, "--", 2) == 0)
            hn_ctl_errorf("unknown setting '%s' (settings go before the command; see --help)",
                          name);
        else
            hn_ctl_errorf("unknown command '%s' (see --help)", name);
        goto out;
    }
    if (wants_help(argc - argi, argv + argi)) {
        c->usage(stdout);
        rc = HN_CTL_EXIT_OK;
        goto out;
    }
    rc = c->run(&cfg, argc - argi, argv + argi);
out:
    hn_config_free(&cfg);
    fflush(stdout);
    return rc;
}
