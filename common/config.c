/*
 * config.c: the configuration table (see config.h). One row per setting:
 * name, type, default, bounds, who uses it, and what it does. Adding a
 * setting is adding a row and a field; nothing else parses configuration.
 */
#include "common/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef enum { T_STR, T_INT, T_ENUM } cfg_type;

typedef struct cfg_opt {
    const char *name;      /* env suffix: HERENOW_<name> */
    cfg_type    type;
    size_t      off;
    const char *def;
    int64_t     min, max;  /* T_INT bounds */
    const char *choices;   /* T_ENUM: '|'-separated words */
    unsigned    who;
    const char *help;
} cfg_opt;

#define C  HN_FOR_COLLECTOR
#define A  HN_FOR_API
#define X  HN_FOR_CTL
#define OFF(f) offsetof(hn_config, f)

static const cfg_opt opts[] = {
    {"REDIS_URL", T_STR, OFF(redis_url), "redis://127.0.0.1:6379/0", 0, 0, NULL, C|A|X,
     "Redis URL: redis://[:password@]host:port[/db], unix:///path/redis.sock[?db=N], or a Redis Cluster: redis+cluster://[:password@]host:port,host:port"},
    {"REDIS_RETRY_MS", T_INT, OFF(redis_retry_ms), "3000", 0, 600000, NULL, C|A|X,
     "Redis Cluster: how long a command is retried through TRYAGAIN, CLUSTERDOWN and lost nodes before it fails"},
    {"REDIS_READ_REPLICAS", T_ENUM, OFF(redis_read_replicas), "off", 0, 0, "on|off", A,
     "Redis Cluster: the live visitor list may read from a replica of the widget's master (READONLY; as stale as replication: docs/OPERATIONS.md)"},
    {"DATABASE_URL", T_STR, OFF(database_url), "postgresql:///herenow", 0, 0, NULL, A|X,
     "PostgreSQL connection string or URI (libpq)"},
    {"UDP_LISTEN", T_STR, OFF(udp_listen), "0.0.0.0:7470", 0, 0, NULL, C,
     "UDP beacons: host:port ([v6]:port for IPv6; empty: off)"},
    {"HTTP_LISTEN", T_STR, OFF(http_listen), "0.0.0.0:7470", 0, 0, NULL, C,
     "HTTP beacons, pixel and widget script: host:port (empty: off)"},
    {"ADMIN_LISTEN", T_STR, OFF(admin_listen), "127.0.0.1:7471", 0, 0, NULL, C,
     "collector /metrics, /livez, /readyz: host:port"},
    {"API_LISTEN", T_STR, OFF(api_listen), "127.0.0.1:7480", 0, 0, NULL, A|X,
     "API, dashboard and their /metrics, /livez, /readyz: host:port (herenowctl rule add refuses rule webhooks at it, as the api does)"},
    {"HTTPS_LISTEN", T_STR, OFF(https_listen), "", 0, 0, NULL, C|X,
     "HTTPS beacons, pixel, scripts and chat downlink: host:port, beside or instead of HERENOW_HTTP_LISTEN (needs HERENOW_TLS_CERT and HERENOW_TLS_KEY; empty: off)"},
    {"API_HTTPS_LISTEN", T_STR, OFF(api_https_listen), "", 0, 0, NULL, A|X,
     "the API and dashboard over HTTPS: host:port, beside HERENOW_API_LISTEN (needs HERENOW_TLS_CERT and HERENOW_TLS_KEY; empty: off)"},
    {"TLS_CERT", T_STR, OFF(tls_cert), "", 0, 0, NULL, C|A|X,
     "PEM certificate chain (the leaf first) of this daemon's HTTPS port; reloaded on SIGHUP"},
    {"TLS_KEY", T_STR, OFF(tls_key), "", 0, 0, NULL, C|A|X,
     "PEM private key of HERENOW_TLS_CERT; reloaded on SIGHUP"},
    {"DATA_KEY_FILE", T_STR, OFF(data_key_file), "", 0, 0, NULL, A|X,
     "keys sealing visitor names, emails, phones and chat messages in PostgreSQL (AES-256-GCM): one \"<id> <64 hex>\" line per key, the last seals (docs/OPERATIONS.md, Data at rest; empty: stored in clear)"},
    {"TLS_TICKET_ROTATE_S", T_INT, OFF(tls_ticket_rotate_s), "3600", 1, 604800, NULL, C|A,
     "a new TLS session-ticket key this often; a ticket opens for two periods (resumption is per process)"},
    {"API_HSTS_S", T_INT, OFF(api_hsts_s), "31536000", 0, 63072000, NULL, A,
     "Strict-Transport-Security max-age on the api's HTTPS answers (the dashboard), in seconds (0: no header)"},
    {"THREADS", T_INT, OFF(threads), "0", 0, 256, NULL, C,
     "collector worker threads (0: number of cores)"},
    {"LIVE_WINDOW_S", T_INT, OFF(live_window_s), "300", 2, 86400, NULL, C|A,
     "presence window: a session not seen for this long is gone"},
    {"ACTIVE_S", T_INT, OFF(active_s), "60", 1, 86400, NULL, C|A,
     "a visible session seen within this long is active, else idle"},
    {"STREAM_SHARDS", T_INT, OFF(stream_shards), "1", 1, 1024, NULL, C|A|X,
     "number of hn:stream:<n> shards (n = widget id mod shards)"},
    {"STREAM_MAXLEN", T_INT, OFF(stream_maxlen), "1000000", 1000, 1000000000, NULL, C,
     "out-of-memory guard: approximate MAXLEN of each stream shard, in entries"},
    {"GEOIP_DB", T_STR, OFF(geoip_db), "", 0, 0, NULL, C,
     "MMDB file for IP geolocation (empty: no geo)"},
    {"TRUSTED_RELAYS", T_STR, OFF(trusted_relays), "", 0, 0, NULL, C,
     "comma-separated CIDRs whose UDP beacons may carry ua and ip"},
    {"TRUSTED_PROXIES", T_STR, OFF(trusted_proxies), "", 0, 0, NULL, C,
     "comma-separated CIDRs whose X-Forwarded-For is believed"},
    {"IP_MODE", T_ENUM, OFF(ip_mode), "mask", 0, 0, "mask|full|drop", C,
     "what is stored of a visitor's IP: mask (/24, /48), full, or drop"},
    {"HTTP_BEACON_PATH", T_STR, OFF(http_beacon_path), "/b", 0, 0, NULL, C,
     "path of HTTP beacons (POST, msgpack body)"},
    {"HTTP_PIXEL_PATH", T_STR, OFF(http_pixel_path), "/p.gif", 0, 0, NULL, C,
     "path of the pixel (GET with the beacon as a query string)"},
    {"HTTP_SCRIPT_PATH", T_STR, OFF(http_script_path), "/h.js", 0, 0, NULL, C,
     "path of the widget script"},
    {"CHAT_SCRIPT_PATH", T_STR, OFF(chat_script_path), "/hc.js", 0, 0, NULL, C,
     "path of the chat script (named in beacon answers of chat-enabled widgets)"},
    {"CHAT_PING_S", T_INT, OFF(chat_ping_s), "25", 1, 3600, NULL, C,
     "a `: ping` comment on every chat downlink (GET /v) this often"},
    {"CHAT_MAX_CONNS", T_INT, OFF(chat_max_conns), "10000", 0, 10000000, NULL, C,
     "open chat downlinks (GET /v) per collector process; beyond it they are answered 503"},
    {"CHAT_MSG_PER_MIN", T_INT, OFF(chat_msg_per_min), "20", 0, 100000, NULL, C,
     "a session's chat messages (t=msg) per minute and worker thread; more are dropped as chat_rate_limited (0: no limit)"},
    {"CHAT_MSG_BURST", T_INT, OFF(chat_msg_burst), "10", 1, 100000, NULL, C,
     "chat messages a session may send at once before HERENOW_CHAT_MSG_PER_MIN applies"},
    {"HTTP_TIMEOUT_MS", T_INT, OFF(http_timeout_ms), "5000", 100, 600000, NULL, C,
     "HTTP read and write timeout: a connection that sends or takes nothing for this long is closed"},
    {"HTTP_REQUEST_TIMEOUT_MS", T_INT, OFF(http_request_timeout_ms), "10000", 100, 600000, NULL, C,
     "a request still arriving after this long is cut off (a client dripping bytes to hold a connection)"},
    {"HTTP_BACKLOG", T_INT, OFF(http_backlog), "4096", 16, 65535, NULL, C,
     "listen backlog of each worker's HTTP socket (the kernel caps it at net.core.somaxconn)"},
    {"HTTP_CORS_ORIGINS", T_STR, OFF(http_cors_origins), "*", 0, 0, NULL, C,
     "Access-Control-Allow-Origin of beacon answers: * (any site) or a space-separated list of origins"},
    {"RATE_LIMIT", T_INT, OFF(rate_limit), "20", 0, 1000000, NULL, C,
     "HTTP requests per second allowed per client IP prefix and worker thread (0: no limit)"},
    {"RATE_BURST", T_INT, OFF(rate_burst), "100", 1, 1000000, NULL, C,
     "HTTP requests a client IP prefix may send at once before the rate applies"},
    {"RATE_V4_PREFIX", T_INT, OFF(rate_v4_prefix), "32", 8, 32, NULL, C,
     "IPv4 prefix length that shares one rate-limit bucket"},
    {"RATE_V6_PREFIX", T_INT, OFF(rate_v6_prefix), "64", 16, 128, NULL, C,
     "IPv6 prefix length that shares one rate-limit bucket"},
    {"UA_REGEXES", T_STR, OFF(ua_regexes), "/usr/share/uap-core/regexes.yaml", 0, 0, NULL, C,
     "uap-core regexes for user-agent parsing (empty: no user-agent parsing)"},
    {"UA_CACHE", T_INT, OFF(ua_cache), "4096", 16, 65536, NULL, C,
     "parsed user agents cached per worker thread (about 800 bytes each)"},
    {"WIDGET_REFRESH_MS", T_INT, OFF(widget_refresh_ms), "5000", 50, 3600000, NULL, C,
     "how often the collector re-reads hn:widgets"},
    {"BANS_REFRESH_MS", T_INT, OFF(bans_refresh_ms), "1000", 50, 3600000, NULL, C,
     "how often the collector polls hn:bans:version and reloads the bans that changed"},
    {"TRIM_INTERVAL_MS", T_INT, OFF(trim_interval_ms), "1000", 50, 3600000, NULL, C,
     "how often stale members are trimmed from hn:live:{w} (one node at a time)"},
    {"UDP_RCVBUF", T_INT, OFF(udp_rcvbuf), "8388608", 65536, 1073741824, NULL, C,
     "receive buffer of each UDP socket, bytes (as root SO_RCVBUFFORCE; else capped by net.core.rmem_max)"},
    {"RECV_BATCH", T_INT, OFF(recv_batch), "256", 1, 1024, NULL, C,
     "datagrams read per recvmmsg call"},
    {"BATCH_WAIT_US", T_INT, OFF(batch_wait_us), "4000", 0, 100000, NULL, C,
     "while traffic flows, how long a worker lets beacons gather before it reads and flushes them"},
    {"REDIS_MAX_PENDING", T_INT, OFF(redis_max_pending), "33554432", 65536, 4294967296, NULL, C,
     "bytes of commands in flight per Redis connection before a worker stops reading"},
    {"REDIS_TIMEOUT_MS", T_INT, OFF(redis_timeout_ms), "5000", 100, 600000, NULL, C,
     "a Redis connection that answers nothing for this long while replies are due is dropped and made again"},
    {"REDIS_CONNECT_TIMEOUT_MS", T_INT, OFF(redis_connect_timeout_ms), "2000", 50, 600000, NULL, C,
     "a Redis TCP connect that takes longer than this is given up and retried (with backoff)"},
    {"SPOOL_DIR", T_STR, OFF(spool_dir), "var/spool", 0, 0, NULL, C|X,
     "where each worker spools records while Redis is unreachable or slow (worker-N.spool; empty: no spool, beacons are refused with 503 / redis_unavailable instead)"},
    {"SPOOL_MAX_BYTES", T_INT, OFF(spool_max_bytes), "1073741824", 65536, 1099511627776, NULL, C,
     "largest spool file per worker; beyond it beacons are dropped (reason spool_full)"},
    {"SPOOL_FSYNC", T_ENUM, OFF(spool_fsync), "everysec", 0, 0, "always|everysec|no", C,
     "when spool writes are fsynced: always (every flush), everysec (once a second), no (the kernel decides)"},
    {"SHUTDOWN_TIMEOUT_MS", T_INT, OFF(shutdown_timeout_ms), "10000", 0, 600000, NULL, C|A,
     "on SIGTERM, how long to wait for buffered writes to be acknowledged"},
    {"LOG_LEVEL", T_ENUM, OFF(log_level), "info", 0, 0, NULL, C|A|X,
     "debug|info|warn|error"},
    {"LOG_FILE", T_STR, OFF(log_file), "", 0, 0, NULL, C|A,
     "log file (empty: stderr); reopened on SIGHUP"},
    {"PUBLIC_URL", T_STR, OFF(public_url), "http://127.0.0.1:7470", 0, 0, NULL, C|A|X,
     "the collector's public base URL, as browsers reach it (for the embed snippet; the api refuses rule webhooks that point at it)"},
    {"REDIS_TEE", T_STR, OFF(redis_tee), "", 0, 0, NULL, C,
     "benchmarks only: append every command sent to Redis to this file (RESP)"},
    {"API_THREADS", T_INT, OFF(api_threads), "4", 1, 64, NULL, A,
     "api worker threads, each with one PostgreSQL and one Redis connection"},
    {"API_TIMEOUT_MS", T_INT, OFF(api_timeout_ms), "10000", 100, 600000, NULL, A,
     "api: a request still queued or running after this long is answered 503; also the Redis and PostgreSQL statement timeout of the api's workers"},
    {"API_REQUEST_TIMEOUT_MS", T_INT, OFF(api_request_timeout_ms), "10000", 100, 600000, NULL, A,
     "api: a request still arriving this long after its first bytes is cut off (a client dripping bytes to hold a connection)"},
    {"API_MAX_QUEUE", T_INT, OFF(api_max_queue), "1024", 1, 1000000, NULL, A,
     "api: requests waiting for a worker beyond this are answered 503 at once"},
    {"CHAT_RESUME_S", T_INT, OFF(chat_resume_s), "86400", 60, 2592000, NULL, C|A,
     "chat: how long hn:chat:{w} keeps events for a visitor's page to resume from (the api's XADD MINID; a collector starts no resume further back)"},
    {"CHAT_RATE_PER_MIN", T_INT, OFF(chat_rate_per_min), "120", 1, 1000000, NULL, A,
     "chat: invitations, messages and closes one API token may send per minute (429 above)"},
    {"CHAT_INVITE_TTL_S", T_INT, OFF(chat_invite_ttl_s), "300", 0, 86400, NULL, A,
     "chat: an invitation the visitor has not answered after this long expires (0: never); the drain looks every ttl/10, 0.5 to 10 s"},
    {"RULES", T_ENUM, OFF(rules), "on", 0, 0, "on|off", A,
     "run the rules engine (docs/RULES.md: rules, alerts, auto invitations, session webhooks) in this api process"},
    {"RULES_RELOAD_MS", T_INT, OFF(rules_reload_ms), "1000", 100, 600000, NULL, A,
     "rules: how often the engine checks widget_rules for changed rules (and widget_webhooks)"},
    {"RULES_READ_MS", T_INT, OFF(rules_read_ms), "50", 0, 1000, NULL, A,
     "rules: the engine waits this long after a read of the stream before the next (0: reads at each record; none when a read left entries behind): under load one read brings a batch; a rule acts up to this much later"},
    {"RETURNING_DAYS", T_INT, OFF(returning_days), "30", 1, 3650, NULL, A,
     "rules: a visitor with a session within this many days is `returning` (hn:vfirst TTL)"},
    {"RULE_INVITES_PER_SESSION", T_INT, OFF(rule_invites_per_session), "1", 0, 1000, NULL, A,
     "rules: auto invitations at most per visit (more are skipped and counted)"},
    {"RULE_INVITES_PER_VISITOR", T_INT, OFF(rule_invites_per_visitor), "3", 0, 1000, NULL, A,
     "rules: auto invitations at most per visitor in 24 h"},
    {"TOKEN_REFRESH_MS", T_INT, OFF(token_refresh_ms), "2000", 100, 3600000, NULL, A,
     "how often the api re-reads api_tokens (a revoked token stops working within this)"},
    {"DRAIN", T_ENUM, OFF(drain), "on", 0, 0, "on|off", A,
     "run the drain worker (stream to PostgreSQL) in this api process"},
    {"DRAIN_THREADS", T_INT, OFF(drain_threads), "1", 1, 16, NULL, A,
     "drain consumers (threads, each with its own PostgreSQL and Redis connection) in this api process"},
    {"DRAIN_BATCH", T_INT, OFF(drain_batch), "200", 1, 100000, NULL, A,
     "stream entries read per shard per drain cycle (an entry holds a batch of records)"},
    {"DRAIN_BATCH_BYTES", T_INT, OFF(drain_batch_bytes), "33554432", 65536, 1073741824, NULL, A,
     "a drain batch reads new entries while they come full, up to this many bytes of records"},
    {"DRAIN_BLOCK_MS", T_INT, OFF(drain_block_ms), "1000", 1, 60000, NULL, A,
     "how long a drain read waits for new entries"},
    {"DRAIN_CLAIM_IDLE_MS", T_INT, OFF(drain_claim_idle_ms), "30000", 100, 86400000, NULL, A,
     "entries pending longer than this with another consumer (one that died) are claimed"},
    {"DRAIN_RETRY_MAX_MS", T_INT, OFF(drain_retry_max_ms), "5000", 10, 600000, NULL, A,
     "longest wait between drain retries while PostgreSQL or Redis is down (backoff doubles up to it)"},
    {"DRAIN_FAILPOINT", T_STR, OFF(drain_failpoint), "", 0, 0, NULL, A,
     "tests only: before_commit|after_commit[:N] — the drain kills its process (SIGKILL) there, at the N-th batch"},
    {"STREAM_KEEP_MS", T_INT, OFF(stream_keep_ms), "10000", 0, 3600000, NULL, A,
     "the drain trims the stream only below entries this old, so that live readers tailing it (the live hub of every api node) read them first"},
    {"API_WWW", T_STR, OFF(api_www), "api/www", 0, 0, NULL, A,
     "the dashboard's static files, served at / (read into memory at start and on SIGHUP; empty: no dashboard)"},
    {"API_CORS_ORIGINS", T_STR, OFF(api_cors_origins), "", 0, 0, NULL, A,
     "origins (https://admin.example, space- or comma-separated) whose pages may call the API from a browser (CORS); empty: only the dashboard's own origin"},
    {"API_TICKET_SECRET", T_STR, OFF(api_ticket_secret), "", 0, 0, NULL, A,
     "64 hex digits: the key of the live stream's tickets, the same on every api node behind one load balancer (empty: random at each start)"},
    {"SSE_TICKET_TTL_S", T_INT, OFF(sse_ticket_ttl_s), "60", 5, 3600, NULL, A,
     "how long a live-stream ticket may be used (once)"},
    {"SSE_PING_S", T_INT, OFF(sse_ping_s), "15", 1, 300, NULL, A,
     "a comment ping on every live stream this often (dead clients are noticed and freed)"},
    {"SSE_MAX_LIFETIME_S", T_INT, OFF(sse_max_lifetime_s), "3600", 5, 604800, NULL, A,
     "a live stream is ended (event bye, reason lifetime) after this long; the dashboard reconnects"},
    {"SSE_MAX_CLIENTS", T_INT, OFF(sse_max_clients), "10000", 1, 1000000, NULL, A,
     "live streams open at once per api process; beyond: 503"},
    {"SSE_MAX_BUFFER_KB", T_INT, OFF(sse_max_buffer_kb), "16384", 64, 1048576, NULL, A,
     "a live stream whose client lets more than this wait unread is ended (bye, reason slow)"},
    {"SSE_TICK_MS", T_INT, OFF(sse_tick_ms), "100", 10, 1000, NULL, A,
     "the live hub reads the stream and sends what changed this often"},
    {"SSE_RECONCILE_MS", T_INT, OFF(sse_reconcile_ms), "5000", 200, 600000, NULL, A,
     "the live hub compares its list of a watched widget with hn:live this often"},
    {"SSE_REPLAY", T_INT, OFF(sse_replay), "600", 0, 100000, NULL, A,
     "batches of events kept per watched widget for reconnects with Last-Event-ID"},
    {"SSE_MAX_SESSIONS", T_INT, OFF(sse_max_sessions), "50000", 100, 10000000, NULL, A,
     "live sessions the hub lists per watched widget (the newest); beyond, the stream shows these and its snapshot says capped (a flood of made-up sessions must not take the api's memory)"},
    /* signed webhooks (docs/RULES.md §4): the api's sender thread (api/rules/webhook.c) */
    {"WEBHOOKS", T_ENUM, OFF(webhooks), "on", 0, 0, "on|off", A,
     "run the webhook sender thread (POSTs the outbox webhook_deliveries) in this api process"},
    {"WEBHOOK_SENDERS", T_INT, OFF(webhook_senders), "16", 1, 1024, NULL, A,
     "webhook POSTs in flight per api process"},
    {"WEBHOOK_TIMEOUT_MS", T_INT, OFF(webhook_timeout_ms), "5000", 100, 600000, NULL, A,
     "a webhook POST without a whole answer after this long is a failed attempt"},
    {"WEBHOOK_BACKOFF_MS", T_INT, OFF(webhook_backoff_ms), "1000", 10, 3600000, NULL, A,
     "wait before a webhook's retry: this × 2^(attempt-1), ±20 % jitter"},
    {"WEBHOOK_ATTEMPTS", T_INT, OFF(webhook_attempts), "6", 1, 100, NULL, A,
     "attempts of a webhook delivery before it is failed"},
    {"WEBHOOK_CA_FILE", T_STR, OFF(webhook_ca_file), "", 0, 0, NULL, A,
     "PEM file of CA certificates trusted for https webhooks besides the system's store (a private CA)"},
    {"WEBHOOK_DISABLE_AFTER", T_INT, OFF(webhook_disable_after), "5", 1, 100000, NULL, A,
     "a rule whose webhook deliveries failed this many times in a row is disabled"},
    {"NODE_ID", T_STR, OFF(node_id), "", 0, 0, NULL, C|A,
     "this node's name in logs and consumer names (empty: hostname-pid)"},
};

#undef C
#undef A
#undef X

static const char *log_levels = "debug|info|warn|error";

static const char *choices_of(const cfg_opt *o) {
    if (o->type == T_ENUM && o->choices == NULL) return log_levels;
    return o->choices;
}

static void flag_name(const cfg_opt *o, char *out, size_t cap) {
    size_t i = 0;
    for (const char *p = o->name; *p && i + 1 < cap; p++, i++)
        out[i] = (*p == '_') ? '-' : (char)(*p | 0x20);
    out[i] = '\0';
}

static bool word_in(const char *word, const char *choices) {
    size_t wl = strlen(word);
    const char *p = choices;
    while (*p) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == wl && strncmp(p, word, l) == 0) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

static int set_opt(hn_config *c, const cfg_opt *o, const char *val, const char *src,
                   char *err, size_t cap) {
    char *base = (char *)c + o->off;
    switch (o->type) {
    case T_STR:
    case T_ENUM: {
        if (o->type == T_ENUM && !word_in(val, choices_of(o))) {
            snprintf(err, cap, "%s: HERENOW_%s='%s' is not one of %s", src, o->name, val,
                     choices_of(o));
            return HN_ERR;
        }
        char **slot = (char **)base;
        free(*slot);
        *slot = hn_xstrdup(val);
        return HN_OK;
    }
    case T_INT: {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(val, &end, 10);
        if (errno != 0 || end == val || *end != '\0') {
            snprintf(err, cap, "%s: HERENOW_%s='%s' is not an integer", src, o->name, val);
            return HN_ERR;
        }
        if (v < o->min || v > o->max) {
            snprintf(err, cap, "%s: HERENOW_%s=%lld is out of range [%lld, %lld]", src,
                     o->name, v, (long long)o->min, (long long)o->max);
            return HN_ERR;
        }
        *(int64_t *)base = v;
        return HN_OK;
    }
    }
    return HN_ERR;
}

int hn_config_load(hn_config *c, unsigned who, int argc, char **argv, int *argi,
                   char *err, size_t cap) {
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < HN_ARRAY_LEN(opts); i++)
        if (set_opt(c, &opts[i], opts[i].def, "default", err, cap) != HN_OK) return HN_ERR;

    for (size_t i = 0; i < HN_ARRAY_LEN(opts); i++) {
        if (!(opts[i].who & who)) continue;
        char env[64];
        snprintf(env, sizeof(env), "HERENOW_%s", opts[i].name);
        const char *v = getenv(env);
        if (v != NULL && set_opt(c, &opts[i], v, "environment", err, cap) != HN_OK)
            return HN_ERR;
    }

    int a = 1;
    for (; a < argc; a++) {
        const char *arg = argv[a];
        if (strcmp(arg, "--") == 0) { a++; break; }
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) { *argi = HN_CONFIG_HELP; return HN_OK; }
        if (strcmp(arg, "--version") == 0) { *argi = HN_CONFIG_VERSION; return HN_OK; }
        if (strncmp(arg, "--", 2) != 0) break;
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        const cfg_opt *o = NULL;
        for (size_t i = 0; i < HN_ARRAY_LEN(opts) && o == NULL; i++) {
            char fl[64];
            if (!(opts[i].who & who)) continue;
            flag_name(&opts[i], fl, sizeof(fl));
            if (strlen(fl) == nl && strncmp(fl, name, nl) == 0) o = &opts[i];
        }
        if (o == NULL) {
            /* herenowctl's subcommands have flags of their own: leave them. */
            if (who & HN_FOR_CTL) break;
            snprintf(err, cap, "unknown flag '%.*s' (see --help)", (int)nl + 2, arg);
            return HN_ERR;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (val == NULL) {
            if (a + 1 >= argc) {
                snprintf(err, cap, "flag '%s' needs a value", arg);
                return HN_ERR;
            }
            val = argv[++a];
        }
        if (set_opt(c, o, val, "flag", err, cap) != HN_OK) return HN_ERR;
    }
    *argi = a;

    if (c->active_s > c->live_window_s) {
        snprintf(err, cap, "HERENOW_ACTIVE_S=%lld must not exceed HERENOW_LIVE_WINDOW_S=%lld",
                 (long long)c->active_s, (long long)c->live_window_s);
        return HN_ERR;
    }
    return HN_OK;
}

void hn_config_usage(FILE *f, unsigned who) {
    fprintf(f, "Settings (environment variable, or the --flag beside it; flags win):\n");
    for (size_t i = 0; i < HN_ARRAY_LEN(opts); i++) {
        const cfg_opt *o = &opts[i];
        char fl[64];
        if (!(o->who & who)) continue;
        flag_name(o, fl, sizeof(fl));
        fprintf(f, "  HERENOW_%-20s --%-20s default '%s'", o->name, fl, o->def);
        if (o->type == T_INT) fprintf(f, " [%lld..%lld]", (long long)o->min, (long long)o->max);
        if (o->type == T_ENUM) fprintf(f, " (%s)", choices_of(o));
        fprintf(f, "\n      %s\n", o->help);
    }
}

void hn_config_free(hn_config *c) {
    for (size_t i = 0; i < HN_ARRAY_LEN(opts); i++)
        if (opts[i].type != T_INT) {
            char **slot = (char **)((char *)c + opts[i].off);
            free(*slot);
            *slot = NULL;
        }
}

int hn_config_threads(const hn_config *c) {
    if (c->threads > 0) return (int)c->threads;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
