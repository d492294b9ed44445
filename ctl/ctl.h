/*
 * ctl.h: herenowctl, the operator's tool. main.c loads the configuration and
 * dispatches to one command module:
 *
 *   migrate.c  herenowctl migrate          the embedded sql/NNN_*.sql, applied once
 *   widget.c   herenowctl widget add|list|sync
 *   send.c     herenowctl send             test beacons over UDP
 *   stream.c   herenowctl stream count|dump|key  a shard's records (read-only), its key name
 *   token.c    herenowctl token create|list|revoke  the API's bearer tokens
 *   spool.c    herenowctl spool inspect|replay  the collector's spool files
 *   rule.c     herenowctl rule list|add|show|enable|disable|rm  a widget's rules
 *   webhook.c  herenowctl webhook show|set|rm                  its lifecycle webhook
 *   doctor.c   herenowctl doctor           a deployment's configuration, servers, schema, clocks, files
 *   key.c      herenowctl key new|status|rotate  the keys of encryption at rest
 *   util.c     what the modules share: flag parsing, connections, random keys
 *
 * Conventions: a command returns its process exit status (HN_CTL_EXIT_*).
 * Results go to stdout; every error goes to stderr as one line starting with
 * "herenowctl: " (hn_ctl_errorf), never to stdout.
 */
#ifndef HN_CTL_H
#define HN_CTL_H

#include "common/config.h"
#include "common/hn.h"
#include "common/rcl.h"

#include <libpq-fe.h>

#define HN_CTL_EXIT_OK    0
#define HN_CTL_EXIT_FAIL  1   /* the command ran and failed (server down, SQL error, ...) */
#define HN_CTL_EXIT_USAGE 2   /* bad arguments: nothing was done */

/* ---- commands: argv[0] is the command's own name ------------------------ */

int hn_ctl_migrate(const hn_config *cfg, int argc, char **argv);
int hn_ctl_widget(const hn_config *cfg, int argc, char **argv);
int hn_ctl_send(const hn_config *cfg, int argc, char **argv);
int hn_ctl_stream(const hn_config *cfg, int argc, char **argv);
int hn_ctl_token(const hn_config *cfg, int argc, char **argv);
int hn_ctl_spool(const hn_config *cfg, int argc, char **argv);
int hn_ctl_rule(const hn_config *cfg, int argc, char **argv);
int hn_ctl_webhook(const hn_config *cfg, int argc, char **argv);
int hn_ctl_doctor(const hn_config *cfg, int argc, char **argv);
int hn_ctl_key(const hn_config *cfg, int argc, char **argv);

void hn_ctl_migrate_usage(FILE *f);
void hn_ctl_widget_usage(FILE *f);
void hn_ctl_send_usage(FILE *f);
void hn_ctl_stream_usage(FILE *f);
void hn_ctl_token_usage(FILE *f);
void hn_ctl_spool_usage(FILE *f);
void hn_ctl_rule_usage(FILE *f);
void hn_ctl_webhook_usage(FILE *f);
void hn_ctl_doctor_usage(FILE *f);
void hn_ctl_key_usage(FILE *f);

/* ---- embedded migrations ($(OUT)/gen/migrations.c, scripts/embed-sql.sh) */

/* One sql/NNN_name.sql file compiled into the binary: version NNN, name
 * "name", the file's bytes NUL-terminated. hn_migrations is sorted by
 * version, versions are unique (the generator refuses anything else). */
typedef struct hn_migration {
    int         version;
    const char *name;
    const char *sql;
    size_t      len;
} hn_migration;

extern const hn_migration hn_migrations[];
extern const size_t       hn_migrations_count;

/* ---- flag parsing ---------------------------------------------------------
 * A command describes its flags as a table; hn_ctl_parse_flags accepts
 * "--name value" and "--name=value", rejects unknown flags, missing values,
 * bad numbers and positional arguments, printing the reason. Strings point
 * into argv. */
typedef enum { HN_CTL_STR, HN_CTL_U64, HN_CTL_BOOL, HN_CTL_LIST } hn_ctl_flag_type;

typedef struct hn_ctl_list {
    const char *v[32];
    int         n;
} hn_ctl_list;

typedef struct hn_ctl_flag {
    const char      *name;      /* without "--" */
    hn_ctl_flag_type type;
    void            *dst;       /* const char **, uint64_t *, bool *, hn_ctl_list * */
    uint64_t         min, max;  /* HN_CTL_U64 bounds */
    bool             seen;      /* set by the parser */
} hn_ctl_flag;

/* cmd names the command in messages ("widget add"). Returns HN_OK or HN_ERR
 * (message printed). */
int hn_ctl_parse_flags(const char *cmd, int argc, char **argv, hn_ctl_flag *flags, size_t n);

/* ---- shared helpers -------------------------------------------------------- */

void hn_ctl_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The positional ids before any flag: want of them (1: WIDGET_ID; 2:
 * WIDGET_ID RULE_ID), checked as whole numbers (a widget id ≤ 2^31 − 1)
 * into ids; argc/argv moved past them. HN_OK, or HN_ERR (message printed,
 * naming cmd). */
int hn_ctl_ids(const char *cmd, int *argc, char ***argv, int want, char ids[][24]);

/* A command made of subcommands (widget add|list|sync, token ...): runs the
 * one named by argv[1] with its own argv (argv[0] = its name), prints the
 * usage for --help/-h/help, and a one-line error (exit HN_CTL_EXIT_USAGE)
 * when it is missing or unknown. */
typedef struct hn_ctl_sub {
    const char *name;
    int (*run)(const hn_config *cfg, int argc, char **argv);
} hn_ctl_sub;

int hn_ctl_dispatch(const char *cmd, const hn_ctl_sub *subs, size_t n, void (*usage)(FILE *),
                    const hn_config *cfg, int argc, char **argv);

/* Connects to cfg->database_url; sets client_min_messages=warning so that
 * "already exists, skipping" notices stay quiet. NULL (message printed) on
 * failure. */
PGconn *hn_ctl_pg_connect(const hn_config *cfg);

/* Runs one statement with every parameter bound (PQexecParams, text
 * format). Returns the result when its status is `want`, else prints the
 * error (prefixed with what), clears it and returns NULL. */
PGresult *hn_ctl_pg_exec(PGconn *pg, const char *what, ExecStatusType want, const char *sql,
                         int nparams, const char *const *params);

/* Connects to cfg->redis_url (blocking, 5 s timeout). NULL (message printed)
 * on failure. */
hn_rcl *hn_ctl_redis_connect(const hn_config *cfg);

/* Fills out[0..n) with uniformly random [0-9A-Za-z] from getrandom(2) and
 * NUL-terminates it (out has n + 1 bytes). HN_ERR when getrandom fails. */
int hn_ctl_random_base62(char *out, size_t n);

#endif
