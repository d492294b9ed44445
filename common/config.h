/*
 * config.h: herenow's one configuration table.
 *
 * Every setting is an environment variable HERENOW_<NAME> with a matching
 * --<name> flag (lower case, '_' → '-'); flags win over the environment,
 * which wins over the default. Each entry says which binaries use it, so
 * `--help` of each binary lists exactly its own settings. A bad value (not a
 * number, out of bounds, unknown enum word) stops the start with a message
 * naming the setting, the value and what is allowed.
 */
#ifndef HN_CONFIG_H
#define HN_CONFIG_H

#include "common/hn.h"

#include <stdio.h>

#define HN_FOR_COLLECTOR 1u
#define HN_FOR_API       2u
#define HN_FOR_CTL       4u

typedef struct hn_config {
    char   *redis_url;
    int64_t redis_retry_ms;
    char   *redis_read_replicas;    /* on|off: the live list may read replicas (a cluster only) */
    char   *database_url;
    char   *udp_listen;
    char   *http_listen;
    char   *admin_listen;
    char   *api_listen;
    char   *https_listen;           /* the collector's HTTPS port (common/tls.h) */
    char   *api_https_listen;
    char   *tls_cert;
    char   *tls_key;
    char   *data_key_file;
    int64_t tls_ticket_rotate_s;
    int64_t api_hsts_s;
    int64_t threads;
    int64_t live_window_s;
    int64_t active_s;
    int64_t stream_shards;
    int64_t stream_maxlen;
    char   *geoip_db;
    char   *trusted_relays;
    char   *trusted_proxies;
    char   *ip_mode;
    char   *http_beacon_path;
    char   *http_pixel_path;
    char   *http_script_path;
    char   *chat_script_path;
    int64_t chat_ping_s;
    int64_t chat_max_conns;
    int64_t chat_msg_per_min, chat_msg_burst;   /* collector: t=msg per session (admit.c) */
    int64_t http_timeout_ms;
    int64_t http_request_timeout_ms;
    int64_t http_backlog;
    char   *http_cors_origins;
    int64_t rate_limit;
    int64_t rate_burst;
    int64_t rate_v4_prefix;
    int64_t rate_v6_prefix;
    char   *ua_regexes;
    int64_t ua_cache;
    int64_t widget_refresh_ms;
    int64_t bans_refresh_ms;
    int64_t trim_interval_ms;
    int64_t udp_rcvbuf;
    int64_t recv_batch;
    int64_t batch_wait_us;
    int64_t redis_max_pending;
    int64_t redis_timeout_ms;
    int64_t redis_connect_timeout_ms;
    char   *spool_dir;
    int64_t spool_max_bytes;
    char   *spool_fsync;
    int64_t shutdown_timeout_ms;
    char   *log_level;
    char   *log_file;
    char   *node_id;
    char   *public_url;
    char   *redis_tee;
    int64_t api_threads;
    int64_t api_timeout_ms;
    int64_t api_request_timeout_ms;
    int64_t api_max_queue;
    int64_t chat_resume_s;          /* docs/CHAT.md §2 */
    int64_t chat_rate_per_min;      /* chat writes per token per minute */
    int64_t chat_invite_ttl_s;      /* docs/CHAT.md §5: unanswered invitations expire */
    char   *rules;                  /* docs/RULES.md §1: the rules engine thread, on|off */
    int64_t rules_reload_ms;
    int64_t rules_read_ms;
    int64_t returning_days;
    int64_t rule_invites_per_session, rule_invites_per_visitor;
    int64_t token_refresh_ms;
    char   *drain;
    int64_t drain_threads;
    int64_t drain_batch;
    int64_t drain_batch_bytes;
    int64_t drain_block_ms;
    int64_t drain_claim_idle_ms;
    int64_t drain_retry_max_ms;
    char   *drain_failpoint;
    int64_t stream_keep_ms;
    char   *api_www;
    char   *api_cors_origins;
    char   *api_ticket_secret;
    int64_t sse_ticket_ttl_s;
    int64_t sse_ping_s;
    int64_t sse_max_lifetime_s;
    int64_t sse_max_clients;
    int64_t sse_max_buffer_kb;
    int64_t sse_tick_ms;
    int64_t sse_reconcile_ms;
    int64_t sse_replay;
    int64_t sse_max_sessions;
    char   *webhooks;               /* docs/RULES.md §4: the sender thread */
    int64_t webhook_senders, webhook_timeout_ms, webhook_backoff_ms;
    int64_t webhook_attempts, webhook_disable_after;
    char   *webhook_ca_file;
} hn_config;

/* Fills c from defaults, then the environment, then argv[1..]. Flags are
 * `--name=value` or `--name value`; parsing stops at the first argument that
 * is not a flag (or after `--`), whose index goes to *argi (argc when none),
 * so herenowctl can read its subcommand from there. `--help` sets *argi to
 * -1. Returns HN_OK, or HN_ERR with the message in err. */
/* hn_config_load's *argi when the arguments asked for --help (or -h), or
 * for --version: print it and exit 0. */
#define HN_CONFIG_HELP    (-1)
#define HN_CONFIG_VERSION (-2)
int  hn_config_load(hn_config *c, unsigned who, int argc, char **argv, int *argi,
                    char *err, size_t cap);
void hn_config_usage(FILE *f, unsigned who);
void hn_config_free(hn_config *c);

/* HERENOW_THREADS=0 (the default) means: number of online cores. */
int  hn_config_threads(const hn_config *c);

#endif
