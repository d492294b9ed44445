/*
 * doctor.c: herenowctl doctor — checks a deployment's configuration and
 * what it reaches, as the daemons would, and prints one line per check:
 *
 *   ok    what: detail
 *   warn  what: detail — fix: …      (works, but look at it)
 *   FAIL  what: detail — fix: …      (exit status 1)
 *
 *   config      every HERENOW_* the collector, the api and herenowctl read,
 *               validated as they validate them (a bad one stops a start)
 *   redis       reached (PING); a cluster: cluster_state ok, every slot
 *               served, as each master sees it
 *   postgresql  reached; the schema at the version of these binaries
 *   clocks      this host against Redis's and PostgreSQL's (live and idle
 *               are decided by comparing times from different hosts)
 *   widgets     PostgreSQL's table and the collectors' copy in Redis agree
 *   drain       the consumer group on every stream shard, and its backlog
 *   spool       HERENOW_SPOOL_DIR a writable directory with room for
 *               HERENOW_SPOOL_MAX_BYTES
 *   geoip       HERENOW_GEOIP_DB a readable MaxMind database file (its
 *               metadata marker: herenowctl does not link libmaxminddb)
 *   tls         with an HTTPS port: HERENOW_TLS_CERT and HERENOW_TLS_KEY
 *               as a daemon loads them (a chain, its key, valid now), and
 *               the leaf's expiry: warn within 14 days, FAIL within 3
 *
 * Read-only: it writes nothing anywhere but one temporary file in the
 * spool directory, removed at once.
 */
#include "ctl/ctl.h"

#include "common/datakey.h"

#include "common/ip.h"
#include "common/net.h"
#include "common/pct.h"
#include "common/pg.h"
#include "common/tls.h"
#include "proto/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define CLOCK_SKEW_MS 1000       /* more than this between hosts: FAIL */
#define DRAIN_BACKLOG_WARN 100000
#define CERT_WARN_DAYS 14        /* as the alert HerenowCertificateExpiresSoon */
#define CERT_FAIL_DAYS 3         /* ... and HerenowCertificateExpiring */

void hn_ctl_doctor_usage(FILE *f) {
    fprintf(f, "doctor\n"
               "    check the configuration (every HERENOW_* of the daemons), Redis (a cluster's\n"
               "    state), PostgreSQL and its schema version, the clocks, the widgets, the drain's\n"
               "    consumer group, the spool directory, the GeoIP database and the HTTPS certificate;\n"
               "    one line per check\n"
               "    (ok, warn, FAIL with the fix); exit 1 when any check fails\n");
}

typedef struct doctor {
    int fails, warns;
} doctor;

static void report(doctor *d, int level, const char *what, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* level 0 ok, 1 warn, 2 FAIL */
static void report(doctor *d, int level, const char *what, const char *fix, const char *fmt, ...) {
    static const char *const tag[] = {"ok  ", "warn", "FAIL"};
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (level == 1) d->warns++;
    if (level == 2) d->fails++;
    if (level > 0 && fix) printf("%s  %s: %s — fix: %s\n", tag[level], what, msg, fix);
    else printf("%s  %s: %s\n", tag[level], what, msg);
}

/* ---- configuration ------------------------------------------------------------------------- */

/* What the daemons check at start beyond the settings table (collector.c,
 * server.c, script.c): addresses, CIDR lists, the ticket secret, paths. */
static bool start_checks(const hn_config *c, char *err, size_t cap) {
    const struct { const char *name, *v; bool may_be_empty; } addrs[] = {
        {"HERENOW_UDP_LISTEN", c->udp_listen, true}, {"HERENOW_HTTP_LISTEN", c->http_listen, true},
        {"HERENOW_HTTPS_LISTEN", c->https_listen, true},
        {"HERENOW_API_HTTPS_LISTEN", c->api_https_listen, true},
        {"HERENOW_ADMIN_LISTEN", c->admin_listen, false}, {"HERENOW_API_LISTEN", c->api_listen, false},
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(addrs); i++) {
        hn_addr a;
        char e[256];
        if (addrs[i].may_be_empty && addrs[i].v[0] == '\0') continue;
        if (hn_addr_parse(addrs[i].v, &a, e, sizeof(e)) != HN_OK) {
            snprintf(err, cap, "%s: %s", addrs[i].name, e);
            return false;
        }
    }
    const struct { const char *name, *v; } cidrs[] = {
        {"HERENOW_TRUSTED_RELAYS", c->trusted_relays}, {"HERENOW_TRUSTED_PROXIES", c->trusted_proxies},
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(cidrs); i++) {
        hn_cidrs l = {0};
        char e[256];
        int rc = hn_cidrs_parse(cidrs[i].v, &l, e, sizeof(e));
        hn_cidrs_free(&l);
        if (rc != HN_OK) {
            snprintf(err, cap, "%s: %s", cidrs[i].name, e);
            return false;
        }
    }
    const char *t = c->api_ticket_secret;
    if (t[0]) {
        size_t n = 0;
        while (t[n] && hn_hexval((unsigned char)t[n]) >= 0) n++;
        if (n != 64 || t[n]) {
            snprintf(err, cap, "HERENOW_API_TICKET_SECRET: want 64 hex digits (openssl rand -hex 32)");
            return false;
        }
    }
    const struct { const char *name, *v; } paths[] = {
        {"HERENOW_HTTP_BEACON_PATH", c->http_beacon_path}, {"HERENOW_HTTP_PIXEL_PATH", c->http_pixel_path},
        {"HERENOW_HTTP_SCRIPT_PATH", c->http_script_path}, {"HERENOW_CHAT_SCRIPT_PATH", c->chat_script_path},
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(paths); i++)
        if (!hn_plain_path_ok(paths[i].v)) {
            snprintf(err, cap, "%s: want a path that starts with / (≤ 200 bytes, no spaces, quotes, "
                               "backslashes, ? or #), not '%.64s'", paths[i].name, paths[i].v);
            return false;
        }
    /* the user-agent regexes the collector loads at start (it stops when it cannot) */
    if (c->ua_regexes[0] && access(c->ua_regexes, R_OK) != 0) {
        snprintf(err, cap, "HERENOW_UA_REGEXES: %s: %s (apt-get install uap-core, or empty: no parsing)",
                 c->ua_regexes, strerror(errno));
        return false;
    }
    return true;
}

static void check_config(doctor *d, hn_config *full, bool *have) {
    char err[512];
    const char *fix = "correct that setting (herenow-collector --help, herenow-api --help)";
    *have = hn_config_load(full, HN_FOR_COLLECTOR | HN_FOR_API | HN_FOR_CTL, 0, NULL, &(int){0},
                           err, sizeof(err)) == HN_OK;
    if (!*have)
        report(d, 2, "config", fix, "%s", err);
    else if (!start_checks(full, err, sizeof(err)))
        report(d, 2, "config", fix, "%s", err);
    else
        report(d, 0, "config", NULL, "every HERENOW_* setting of the collector, the api and herenowctl is valid");
}

/* ---- Redis ----------------------------------------------------------------------------------- */

static const char *info_field(const char *info, const char *name, char *out, size_t cap) {
    const char *p = strstr(info, name);
    if (p == NULL) return NULL;
    p += strlen(name);
    size_t n = strcspn(p, "\r\n");
    if (n >= cap) n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    return out;
}

static hn_rcl *check_redis(doctor *d, const hn_config *cfg) {
    hn_redis_cfg a;
    char err[256];
    if (hn_redis_cfg_parse(cfg->redis_url, &a, err, sizeof(err)) != HN_OK) {
        report(d, 2, "redis", "a URL as herenow-collector --help shows", "HERENOW_REDIS_URL: %s", err);
        return NULL;
    }
    a.retry_ms = 0;
    hn_rcl *c = hn_rcl_connect(&a, 5000, err, sizeof(err));
    if (c == NULL) {
        report(d, 2, "redis", "start Redis or correct HERENOW_REDIS_URL (redis-cli -u URL ping)",
               "cannot connect: %s", err);
        return NULL;
    }
    redisReply *r = hn_rcl_command(c, "PING");
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    if (!ok) {
        report(d, 2, "redis", "redis-cli -u HERENOW_REDIS_URL ping; a password in the URL if it needs one",
               "PING: %s", r && r->type == REDIS_REPLY_ERROR ? r->str : hn_rcl_errstr(c));
        if (r) freeReplyObject(r);
        hn_rcl_free(c);
        return NULL;
    }
    freeReplyObject(r);
    if (!hn_rcl_cluster(c)) {
        report(d, 0, "redis", NULL, "one server answers PING");
        return c;
    }
    int n = hn_rcl_masters(c), bad = 0;
    report(d, 0, "redis", NULL, "a cluster of %d masters; PING answered", n);
    char bad_state[32] = "", bad_slots[32] = "";
    for (int i = 0; i < n; i++) {
        char state[32], slots[32];
        r = hn_rcl_command_on(c, i, "CLUSTER INFO");
        const char *info = r && r->type == REDIS_REPLY_STRING ? r->str : "";
        if (!info_field(info, "cluster_state:", state, sizeof(state))) snprintf(state, sizeof(state), "?");
        if (!info_field(info, "cluster_slots_ok:", slots, sizeof(slots))) snprintf(slots, sizeof(slots), "?");
        if ((strcmp(state, "ok") != 0 || strcmp(slots, "16384") != 0) && bad++ == 0) {
            snprintf(bad_state, sizeof(bad_state), "%s", state);
            snprintf(bad_slots, sizeof(bad_slots), "%s", slots);
        }
        if (r) freeReplyObject(r);
    }
    if (bad)
        report(d, 2, "redis cluster", "redis-cli --cluster check HOST:PORT; CLUSTER INFO on each master",
               "%d of %d masters not ok (the first: cluster_state %s, %s slots ok)", bad, n, bad_state,
               bad_slots);
    else
        report(d, 0, "redis cluster", NULL, "%d masters, cluster_state ok, 16384 slots ok", n);
    return c;
}

/* ---- PostgreSQL ------------------------------------------------------------------------------ */

static PGconn *check_pg(doctor *d, const hn_config *cfg) {
    char err[512];
    PGconn *pg = hn_pg_connect(cfg->database_url, &(hn_pg_opts){.connect_timeout_s = 5}, err, sizeof(err));
    if (pg == NULL) {
        report(d, 2, "postgresql", "start PostgreSQL or correct HERENOW_DATABASE_URL (psql URL)",
               "cannot connect: %s", err);
        return NULL;
    }
    int want = hn_migrations_count ? hn_migrations[hn_migrations_count - 1].version : 0;
    PGresult *r = PQexec(pg, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && state && strcmp(state, "42P01") == 0) {
        report(d, 2, "schema", "herenowctl migrate", "no schema_migrations table: the database is not migrated");
    } else if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *e = PQresultErrorMessage(r);
        bool denied = state && strcmp(state, "42501") == 0;
        report(d, 2, "schema", denied ? "the database user needs to read schema_migrations (GRANT)"
                                      : "see PostgreSQL's log", "%.*s", hn_pg_line(e), e);
    } else {
        int have = atoi(PQgetvalue(r, 0, 0));
        if (have < want)
            report(d, 2, "schema", "herenowctl migrate", "at version %d, these binaries need %d", have, want);
        else if (have > want)
            report(d, 2, "schema", "install the binaries of that schema (the newer herenow release)",
                   "at version %d, newer than these binaries know (%d)", have, want);
        else
            report(d, 0, "schema", NULL, "at version %d, as these binaries", have);
    }
    PQclear(r);
    return pg;
}

/* ---- data keys (encryption at rest) ------------------------------------------------------------ */

static void check_data_keys(doctor *d, PGconn *pg) {
    char err[512], ids[256];
    if (pg && hn_pg_check_data_keys(pg, HN_DK_ALL, err, sizeof(err)) != HN_OK) {
        report(d, 2, "data keys", "HERENOW_DATA_KEY_FILE as the api has it (docs/OPERATIONS.md, Data at rest)", "%s", err);
        return;
    }
    if (!hn_dk_enabled()) {
        report(d, 1, "data keys",
               "herenowctl key new --id k1 > /etc/herenow/data.key (chmod 640), HERENOW_DATA_KEY_FILE on the apis, then herenowctl key rotate",
               "HERENOW_DATA_KEY_FILE is not set: visitors' names, emails, phones and messages are stored in clear");
        return;
    }
    hn_dk_ids(ids, sizeof(ids));
    report(d, 0, "data keys", NULL, "%s in the file, sealing with %s%s", ids, hn_dk_current(),
           pg ? "; every key the database holds values under is there" : "");
}

/* ---- clocks ---------------------------------------------------------------------------------- */

static void check_clock(doctor *d, const char *what, int64_t remote_ms, int64_t t0, int64_t t1) {
    int64_t local = t0 + (t1 - t0) / 2, skew = remote_ms - local;
    int64_t abs_skew = skew < 0 ? -skew : skew;
    if (abs_skew > CLOCK_SKEW_MS)
        report(d, 2, what, "run NTP on every host (systemd-timesyncd or chrony): live and idle compare their clocks",
               "%+lld ms from this host's", (long long)skew);
    else
        report(d, 0, what, NULL, "%+lld ms from this host's (round trip %lld ms)", (long long)skew,
               (long long)(t1 - t0));
}

static void check_clocks(doctor *d, hn_rcl *c, PGconn *pg) {
    if (c) {
        int64_t t0 = (int64_t)hn_now_ms();
        redisReply *r = hn_rcl_command(c, "TIME");
        int64_t t1 = (int64_t)hn_now_ms();
        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
            r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING)
            check_clock(d, "clock redis", atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000,
                        t0, t1);
        else
            report(d, 1, "clock redis", NULL, "TIME did not answer");
        if (r) freeReplyObject(r);
    }
    if (pg) {
        int64_t t0 = (int64_t)hn_now_ms();
        PGresult *r = PQexec(pg, "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint");
        int64_t t1 = (int64_t)hn_now_ms();
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            check_clock(d, "clock postgresql", atoll(PQgetvalue(r, 0, 0)), t0, t1);
        else
            report(d, 1, "clock postgresql", NULL, "clock_timestamp() did not answer");
        PQclear(r);
    }
}

/* ---- widgets and the drain -------------------------------------------------------------------- */

static void check_widgets(doctor *d, hn_rcl *c, PGconn *pg) {
    if (c == NULL || pg == NULL) return;
    PGresult *r = PQexec(pg, "SELECT key FROM widget_configs");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return;       /* the schema check said why */
    }
    int in_pg = PQntuples(r), missing = 0;
    const char *first_missing = NULL;
    redisReply *h = hn_rcl_command(c, "HKEYS %s", HN_KEY_WIDGETS);
    if (h == NULL || h->type != REDIS_REPLY_ARRAY) {
        report(d, 2, "widgets", "redis-cli HKEYS hn:widgets", "cannot read %s: %s", HN_KEY_WIDGETS,
               h && h->type == REDIS_REPLY_ERROR ? h->str : hn_rcl_errstr(c));
        if (h) freeReplyObject(h);
        PQclear(r);
        return;
    }
    long long in_redis = (long long)h->elements;
    for (int i = 0; i < in_pg; i++) {
        const char *k = PQgetvalue(r, i, 0);
        bool found = false;
        for (size_t j = 0; j < h->elements && !found; j++)
            found = h->element[j]->type == REDIS_REPLY_STRING && strcmp(h->element[j]->str, k) == 0;
        if (!found && missing++ == 0) first_missing = k;
    }
    freeReplyObject(h);
    if (missing)
        report(d, 2, "widgets", "herenowctl widget sync",
               "%d of %d in PostgreSQL missing from Redis (%s; the first: %s): the collectors refuse their beacons",
               missing, in_pg, HN_KEY_WIDGETS, first_missing);
    else if (in_redis != in_pg)
        report(d, 2, "widgets", "herenowctl widget sync",
               "%d in PostgreSQL, %lld in Redis (%s): the collectors take beacons of widgets that are gone",
               in_pg, in_redis, HN_KEY_WIDGETS);
    else if (in_pg == 0)
        report(d, 1, "widgets", "herenowctl widget add --name NAME --domain DOMAIN", "none yet");
    else
        report(d, 0, "widgets", NULL, "%d, the same in PostgreSQL and Redis", in_pg);
    PQclear(r);
}

static void check_drain(doctor *d, const hn_config *cfg, hn_rcl *c) {
    if (c == NULL) return;
    int shards = (int)cfg->stream_shards, without = 0, lag_unknown = 0;
    long long pending = 0, lag = 0;
    for (int s = 0; s < shards; s++) {
        char key[HN_KEY_CAP];
        hn_key_stream(key, (unsigned)s, (unsigned)shards);
        redisReply *r = hn_rcl_command(c, "XINFO GROUPS %s", key);
        bool found = false;
        for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            redisReply *g = r->element[i];
            if (g->type != REDIS_REPLY_ARRAY) continue;
            bool is_drain = false, l_known = false;
            long long p = 0, l = 0;
            for (size_t k = 0; k + 1 < g->elements; k += 2) {
                if (g->element[k]->type != REDIS_REPLY_STRING) continue;
                const char *f = g->element[k]->str;
                redisReply *v = g->element[k + 1];
                if (strcmp(f, "name") == 0 && v->type == REDIS_REPLY_STRING) is_drain = strcmp(v->str, "drain") == 0;
                if (strcmp(f, "pending") == 0 && v->type == REDIS_REPLY_INTEGER) p = v->integer;
                if (strcmp(f, "lag") == 0 && v->type == REDIS_REPLY_INTEGER) {
                    l = v->integer;
                    l_known = true;
                }
            }
            if (is_drain) {
                found = true;
                pending += p;
                lag += l;
                lag_unknown += !l_known;   /* Redis 7 answers nil when it cannot tell */
            }
        }
        if (!found) without++;
        if (r) freeReplyObject(r);
    }
    if (without)
        report(d, 1, "drain", "start an api with HERENOW_DRAIN=on (it makes the group)",
               "%d of %d stream shards have no consumer group \"drain\" yet", without, shards);
    else if (lag + pending > DRAIN_BACKLOG_WARN)
        report(d, 1, "drain", "is PostgreSQL up and the drain running? herenow_drain_lag_seconds",
               "%lld entries not read yet, %lld read but not written, over %d shards", lag, pending, shards);
    else if (lag_unknown)
        report(d, 0, "drain", NULL, "group on %d shard(s); %lld pending; how many not read yet is unknown on %d "
               "(Redis cannot tell after a trim or deletion)", shards, pending, lag_unknown);
    else
        report(d, 0, "drain", NULL, "group on %d shard(s); %lld entries not read yet, %lld pending", shards,
               lag, pending);
}

/* ---- files: the spool, the GeoIP database ------------------------------------------------------ */

static void check_spool(doctor *d, const hn_config *full) {
    const char *dir = full->spool_dir;
    if (dir == NULL || dir[0] == '\0') {
        report(d, 1, "spool", "set HERENOW_SPOOL_DIR on the collectors (docs/OPERATIONS.md, The spool)",
               "off: beacons are refused while Redis is unreachable");
        return;
    }
    /* a relative path is the collector's working directory's: checked from
     * here, which is right only when run from there */
    const char *rel = dir[0] == '/' ? "" : " (relative: checked from this directory; the collector resolves "
                                           "it from its own)";
    struct stat st;
    if (stat(dir, &st) != 0) {
        /* the collector makes it at start when its parent exists */
        report(d, errno == ENOENT ? 1 : 2, "spool", "mkdir -p it, owned by the collector's user",
               "%s: %s%s", dir, strerror(errno), rel);
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        report(d, 2, "spool", "point HERENOW_SPOOL_DIR at a directory", "%s is not a directory%s", dir, rel);
        return;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/.herenow-doctor-XXXXXX", dir);
    int fd = mkstemp(path);
    if (fd < 0) {
        report(d, 2, "spool", "make it writable by the collector's user", "%s: cannot write as uid %d: %s%s",
               dir, (int)geteuid(), strerror(errno), rel);
        return;
    }
    close(fd);
    unlink(path);
    /* HERENOW_SPOOL_MAX_BYTES bounds each worker's file */
    long threads = full->threads > 0 ? (long)full->threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    unsigned long long need = (unsigned long long)full->spool_max_bytes * (unsigned long long)threads;
    struct statvfs vs;
    if (statvfs(dir, &vs) != 0) {
        report(d, 1, "spool", NULL, "%s: free space unknown: %s", dir, strerror(errno));
        return;
    }
    unsigned long long avail = (unsigned long long)vs.f_bavail * vs.f_frsize;
    if (avail < need) {
        report(d, 1, "spool", "free disk space, or a smaller HERENOW_SPOOL_MAX_BYTES",
               "%s: %llu MiB free, the spools may take %llu MiB (%ld workers × HERENOW_SPOOL_MAX_BYTES)%s",
               dir, avail >> 20, need >> 20, threads, rel);
        return;
    }
    report(d, 0, "spool", NULL, "%s writable by uid %d, %llu MiB free for %llu MiB of spools (%ld workers)%s",
           dir, (int)geteuid(), avail >> 20, need >> 20, threads, rel);
}

/* A MaxMind DB ends with its metadata, which starts with this marker (the
 * format's spec: within the last 128 KiB). Checked by hand: herenowctl does
 * not link libmaxminddb (enrichment is the collector's, test_layout). */
static const char mmdb_marker[] = "\xab\xcd\xefMaxMind.com";
#define MMDB_META_MAX (128 * 1024)

static void check_geoip(doctor *d, const hn_config *full) {
    const char *path = full->geoip_db;
    if (path == NULL || path[0] == '\0') {
        report(d, 0, "geoip", NULL, "off (HERENOW_GEOIP_DB unset: no country or city)");
        return;
    }
    const char *fix = "a GeoLite2-City or GeoIP2-City .mmdb the collector's user can read (docs/ENRICHMENT.md)";
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        report(d, 2, "geoip", fix, "%s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return;
    }
    size_t n = st.st_size < MMDB_META_MAX ? (size_t)st.st_size : MMDB_META_MAX;
    char *tail = hn_xmalloc(n ? n : 1);
    ssize_t got = n ? pread(fd, tail, n, st.st_size - (off_t)n) : 0;
    close(fd);
    bool ok = got == (ssize_t)n && n >= sizeof(mmdb_marker) - 1 &&
              memmem(tail, n, mmdb_marker, sizeof(mmdb_marker) - 1) != NULL;
    free(tail);
    if (!ok)
        report(d, 2, "geoip", fix, "%s: not a MaxMind database (no metadata marker)", path);
    else
        report(d, 0, "geoip", NULL, "%s: a MaxMind database, %lld MiB", path, (long long)(st.st_size >> 20));
}

/* The HTTPS port's pair, as the daemons load it at start (common/tls.c),
 * and how long the leaf has left. */
static void check_tls(doctor *d, const hn_config *full) {
    bool port = full->https_listen[0] || full->api_https_listen[0];
    bool files = full->tls_cert[0] || full->tls_key[0];
    if (!port && !files) {
        report(d, 0, "tls", NULL, "off (no HTTPS port: plain HTTP, or a proxy in front terminates TLS)");
        return;
    }
    if (!port) {
        report(d, 2, "tls", "set HERENOW_HTTPS_LISTEN (collector) or HERENOW_API_HTTPS_LISTEN (api), or unset the files",
               "HERENOW_TLS_CERT and HERENOW_TLS_KEY are set but no HTTPS port is (a daemon refuses to start)");
        return;
    }
    hn_tls_cert_info ci;
    char err[512];
    memset(&ci, 0, sizeof(ci));
    if (hn_tls_check_files(full->tls_cert, full->tls_key, &ci, err, sizeof(err)) != HN_OK) {
        report(d, 2, "tls", "a PEM chain (the leaf first) and its key, valid now, readable by the daemon's user; then SIGHUP",
               "%s", err);
        return;
    }
    int64_t left = ci.not_after - hn_now_ms() / 1000;
    long long days = (long long)(left / 86400);
    const char *fix = "renew the certificate, then SIGHUP the daemons (docs/OPERATIONS.md HTTPS)";
    int level = left < CERT_FAIL_DAYS * 86400 ? 2 : left < CERT_WARN_DAYS * 86400 ? 1 : 0;
    report(d, level, "tls", fix, "%s: %s, issued by %s, expires in %lld day%s", full->tls_cert, ci.subject,
           ci.issuer, days, days == 1 ? "" : "s");
}

int hn_ctl_doctor(const hn_config *cfg, int argc, char **argv) {
    if (hn_ctl_parse_flags("doctor", argc - 1, argv + 1, NULL, 0) != HN_OK) return HN_CTL_EXIT_USAGE;
    doctor d = {0, 0};
    hn_config full;
    bool have_full;
    check_config(&d, &full, &have_full);
    /* the servers as herenowctl reads them (the environment and its
     * --flags); the daemons' own settings from the environment alone */
    hn_rcl *c = check_redis(&d, cfg);
    PGconn *pg = check_pg(&d, cfg);
    check_data_keys(&d, pg);
    check_clocks(&d, c, pg);
    check_widgets(&d, c, pg);
    check_drain(&d, cfg, c);
    if (have_full) {
        check_spool(&d, &full);
        check_geoip(&d, &full);
        check_tls(&d, &full);
    }
    printf("%s: %d failed, %d to look at\n", d.fails ? "FAIL" : "ok", d.fails, d.warns);
    if (c) hn_rcl_free(c);
    if (pg) PQfinish(pg);
    if (have_full) hn_config_free(&full);
    return d.fails ? HN_CTL_EXIT_FAIL : HN_CTL_EXIT_OK;
}
