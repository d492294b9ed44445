/*
 * collector.c: the collector process — start-up, signals and the orderly
 * stop on the main thread, and the housekeeping thread that runs the jobs
 * that are not per beacon (hn:widgets refresh, the daily salts, trimming
 * stale live-set members) with its own blocking Redis connection, so that a
 * hung Redis never stalls the main thread's /metrics and /readyz.
 */
#include "collector/collector.h"
#include "common/rshared.h"
#include "common/log.h"
#include "common/sdnotify.h"
#include "common/httpguard.h"
#include "common/spool.h"
#include "common/tls.h"
#include "proto/keys.h"

#include <dirent.h>
#include <errno.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REDIS_TIMEOUT_MS 1000
#define TRIM_LOCK_KEY HN_KEY_TRIM_LOCK

static bool main_redis(hn_collector *c) {
    if (c->redis && hn_rcl_err(c->redis) == 0) return true;
    if (c->redis) hn_rcl_free(c->redis);
    char err[256];
    c->redis = hn_rcl_connect(&c->rcfg, REDIS_TIMEOUT_MS, err, sizeof(err));
    if (c->redis == NULL) hn_debug("event=redis_connect_failed role=main err='%s'", err);
    return c->redis != NULL;
}

/* Re-reads hn:widgets; publishes a new table only when the content changed. */
static void refresh_widgets(hn_collector *c) {
    if (!main_redis(c)) {
        HN_STAT_ADD(c->widget_refresh_errors, 1);
        return;
    }
    redisReply *r = hn_rcl_command(c->redis, "HGETALL " HN_KEY_WIDGETS);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        HN_STAT_ADD(c->widget_refresh_errors, 1);
        hn_warn("event=widget_refresh_failed err='%s'",
                r ? (r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply") : hn_rcl_errstr(c->redis));
        if (r) freeReplyObject(r);
        return;
    }
    size_t bad = 0;
    hn_widgets *t = hn_widgets_build(r, &bad);
    freeReplyObject(r);
    HN_STAT_ADD(c->widget_refreshes, 1);
    const hn_widgets *cur = hn_widgets_acquire(c->widgets, &c->hk_wref);
    if (cur && hn_widgets_digest(cur) == hn_widgets_digest(t) &&
        hn_widgets_count(cur) == hn_widgets_count(t)) {
        hn_widgets_build_free(t);
        return;
    }
    if (hn_widgets_count(t) == 0 && hn_widgets_count(cur) > 0) {
        /* All widgets gone at once is what a Redis that lost its data looks
         * like (restarted without persistence, flushed): keep accepting the
         * known widgets until `herenowctl widget sync` restores the hash. */
        if (!c->widgets_empty_warned)
            hn_warn("event=widgets_empty_kept known=%zu hint='run herenowctl widget sync'",
                    hn_widgets_count(cur));
        c->widgets_empty_warned = true;
        hn_widgets_build_free(t);
        return;
    }
    c->widgets_empty_warned = false;
    hn_info("event=widgets_loaded count=%zu bad=%zu", hn_widgets_count(t), bad);
    hn_widgets_publish(c->widgets, t);
}

/* The visitor hash's daily salts: yesterday's (kept from memory), today's,
 * and tomorrow's in the last hour of the day, so that the switch at midnight
 * needs no Redis round trip on a worker. Redis is the one source: each
 * refresh reads the day's key (and creates it with SET NX when it is
 * missing), so if Redis lost its data every node moves to the one new salt
 * within a refresh; while Redis is unreachable the salts in memory serve.
 * The 48 h TTL keeps a day's salt through the day after. */
static bool fetch_salt(hn_collector *c, uint32_t day, hn_salt *out) {
    char key[HN_KEY_CAP];
    hn_key_salt(key, day);
    for (int attempt = 0; attempt < 2; attempt++) {
        redisReply *r = hn_rcl_command(c->redis, "GET %s", key);
        if (r == NULL) return false;
        bool ok = r->type == REDIS_REPLY_STRING && hn_salt_from_hex(out, day, r->str, r->len) == HN_OK;
        bool missing = r->type == REDIS_REPLY_NIL;
        if (!ok && !missing)
            hn_warn("event=salt_refresh_failed key=%s err='%s'", key,
                    r->type == REDIS_REPLY_ERROR ? r->str : "not a salt");
        freeReplyObject(r);
        if (ok || !missing) return ok;
        char fresh[2 * HN_SALT_LEN + 1];
        if (hn_salt_new_hex(fresh) != HN_OK) return false;     /* never SET an empty salt */
        r = hn_rcl_command(c->redis, "SET %s %s NX EX 172800", key, fresh);
        if (r == NULL) return false;
        freeReplyObject(r);       /* set, or another node was first: read what won */
    }
    return false;
}

static void refresh_salts(hn_collector *c) {
    uint64_t now = hn_now_ms();
    uint32_t today = hn_utc_day(now), tomorrow = hn_utc_day(now + 3600 * 1000);
    uint32_t days[3] = {hn_utc_day(now - HN_DAY_MS), today, tomorrow};
    int ndays = tomorrow != today ? 3 : 2;
    bool redis = main_redis(c);
    hn_salt got[HN_SALT_HOLDER_MAX];
    size_t ngot = 0;
    for (int i = 0; i < ndays; i++) {
        bool fetched = i > 0 && redis && fetch_salt(c, days[i], &got[ngot]);
        if (i > 0 && !fetched) HN_STAT_ADD(c->salt_refresh_errors, 1);
        if (fetched || hn_salt_holder_get(c->salts, days[i], &got[ngot])) ngot++;
    }
    if (ngot) hn_salt_holder_set(c->salts, got, ngot);
}

/* Polls hn:bans:version; reloads the bans that changed (bans.h). */
static void refresh_bans(hn_collector *c) {
    char err[160];
    if (!main_redis(c)) {
        HN_STAT_ADD(c->bans_refresh_errors, 1);
        return;
    }
    if (hn_bans_refresh(c->bans_loader, c->redis, c->bans, err, sizeof(err)) != HN_OK) {
        HN_STAT_ADD(c->bans_refresh_errors, 1);
        hn_warn("event=bans_refresh_failed err='%s'", err);
    }
}

static void on_bans(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    refresh_bans(arg);
}

static void on_refresh(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    refresh_widgets(arg);
    refresh_salts(arg);
}

/* One widget's trim, atomic in Redis: sessions not seen within the live
 * window leave the live set and their hashes are deleted; ended sessions
 * (hn:ended) lose their hashes after the grace period unless they came back.
 * Every key has the widget's hash tag, so this works on a cluster slot too.
 * Returns {stale removed, ended cleaned}; either at the limit means "more". */
static const char trim_script[] =
    "local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, ARGV[4])\n"
    "for _, sid in ipairs(stale) do redis.call('UNLINK', ARGV[3] .. sid) end\n"
    "if #stale > 0 then redis.call('ZREM', KEYS[1], unpack(stale)) end\n"
    "local ended = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[2], 'LIMIT', 0, ARGV[4])\n"
    "for _, sid in ipairs(ended) do\n"
    "  if not redis.call('ZSCORE', KEYS[1], sid) then redis.call('UNLINK', ARGV[3] .. sid) end\n"
    "end\n"
    "if #ended > 0 then redis.call('ZREM', KEYS[2], unpack(ended)) end\n"
    "return {#stale, #ended}\n";

#define TRIM_LIMIT  1000
#define TRIM_ROUNDS 100      /* at most TRIM_ROUNDS × TRIM_LIMIT per widget per pass */

/* Trims every widget's live set. One node does it per interval (a short
 * Redis lock), so adding nodes does not multiply the work. Each round is
 * one pipeline of EVALSHA, one per widget that still has work, so a pass
 * over many widgets costs round trips per round, not per widget. */
static void trim_live(hn_collector *c) {
    if (!main_redis(c)) return;
    redisReply *r = hn_rcl_command(c->redis, "SET %s %s NX PX %lld", TRIM_LOCK_KEY, c->node_id,
                                   (long long)c->cfg.trim_interval_ms);
    bool mine = r && r->type == REDIS_REPLY_STATUS;
    if (r) freeReplyObject(r);
    if (!mine) return;
    /* SCRIPT LOAD each pass: cheap, and survives a Redis that lost its script
     * cache; on a cluster a node without it answers NOSCRIPT and hn_rcl loads
     * it there and sends the EVALSHA again. */
    char sha[41];
    if (hn_rcl_script(c->redis, trim_script, sha) != HN_OK) {
        hn_warn("event=trim_failed err='%s'", hn_rcl_err(c->redis) ? hn_rcl_errstr(c->redis) : "SCRIPT LOAD failed");
        return;
    }

    const hn_widgets *t = hn_widgets_acquire(c->widgets, &c->hk_wref);
    size_t n;
    const uint32_t *ids = hn_widgets_ids(t, &n);
    uint64_t now = hn_now_ms();
    uint64_t live_cut = now - (uint64_t)c->cfg.live_window_s * 1000;
    uint64_t grace_s = c->cfg.live_window_s < 60 ? (uint64_t)c->cfg.live_window_s : 60;
    uint64_t ended_cut = now - grace_s * 1000;
    bool *more = hn_xcalloc(n ? n : 1, sizeof(bool));
    for (size_t i = 0; i < n; i++) more[i] = true;
    for (int round = 0; round < TRIM_ROUNDS; round++) {
        size_t sent = 0;
        for (size_t i = 0; i < n; i++) {
            if (!more[i]) continue;
            char live[HN_KEY_CAP], ended[HN_KEY_CAP], prefix[HN_KEY_CAP];
            hn_key_live(live, ids[i]);
            hn_key_ended(ended, ids[i]);
            hn_key_sess_prefix(prefix, ids[i]);
            hn_rcl_append(c->redis, "EVALSHA %s 2 %s %s %llu %llu %s %d", sha, live, ended,
                          (unsigned long long)live_cut, (unsigned long long)ended_cut,
                          prefix, TRIM_LIMIT);
            sent++;
        }
        if (sent == 0) break;
        bool failed = false;
        for (size_t i = 0; i < n; i++) {
            if (!more[i]) continue;
            void *rep = NULL;
            if (hn_rcl_get_reply(c->redis, &rep) != REDIS_OK) {
                hn_warn("event=trim_failed err='%s'", hn_rcl_errstr(c->redis));
                free(more);
                return;                      /* the context is dead: reconnected next time */
            }
            r = rep;
            more[i] = false;
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
                long long stale = r->element[0]->integer, done = r->element[1]->integer;
                HN_STAT_ADD(c->trimmed, (uint64_t)(stale + done));
                more[i] = stale >= TRIM_LIMIT || done >= TRIM_LIMIT;
            } else if (!failed) {
                failed = true;              /* read the other replies, log once */
                hn_warn("event=trim_failed widget=%u err='%s'", ids[i],
                        r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            }
            freeReplyObject(r);
        }
    }
    free(more);
    HN_STAT_ADD(c->trims, 1);
}

static void on_trim(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    trim_live(arg);
}

static void on_stop_check(evutil_socket_t fd, short what, void *arg) {
    hn_collector *c = arg;
    (void)fd; (void)what;
    for (int i = 0; i < c->nworkers; i++)
        if (!hn_worker_done(c->workers[i])) {
            struct timeval tv = {0, 10 * 1000};
            event_base_once(c->base, -1, EV_TIMEOUT, on_stop_check, c, &tv);
            return;
        }
    event_base_loopbreak(c->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    hn_collector *c = arg;
    (void)what;
    if (sig == SIGHUP) {
        hn_log_reopen();
        hn_info("event=log_reopened");
        hn_tls_reload_logged(c->tls);
        return;
    }
    if (atomic_exchange(&c->stopping, true)) return;
    hn_info("event=stopping signal=%d", (int)sig);
    hn_sd_notify("STOPPING=1\nSTATUS=stopping");
    /* /readyz answers 503 from now on; workers close their listeners, read
     * what the kernel holds, flush, and wait for Redis' acknowledgements. */
    for (int i = 0; i < c->nworkers; i++) hn_worker_stop(c->workers[i]);
    on_stop_check(-1, 0, c);
}

/* User-agent regexes and the geo database are loaded once and shared
 * read-only by the workers. A file named but unusable stops the start: an
 * operator who set HERENOW_GEOIP_DB wants geo, not a silent lack of it. */
static int init_enrichment(hn_collector *c, char *err, size_t cap) {
    if (c->cfg.ua_regexes[0]) {
        uint64_t t0 = hn_mono_ms();
        c->uap = hn_uap_load(c->cfg.ua_regexes, err, cap);
        if (c->uap == NULL) return HN_ERR;
        size_t jit, n = hn_uap_regex_count(c->uap, &jit);
        hn_info("event=ua_regexes_loaded path='%s' regexes=%zu jit=%zu ms=%llu", c->cfg.ua_regexes,
                n, jit, (unsigned long long)(hn_mono_ms() - t0));
    }
    if (c->cfg.geoip_db[0]) {
        c->geo = hn_geo_open(c->cfg.geoip_db, err, cap);
        if (c->geo == NULL) return HN_ERR;
        hn_info("event=geoip_loaded path='%s' type='%s'", c->cfg.geoip_db, hn_geo_type(c->geo));
    }
    c->salts = hn_salt_holder_create();
    c->enrich = (hn_enrich_cfg){c->uap, c->geo, c->salts, c->ipmode};
    refresh_salts(c);
    return HN_OK;
}

/* mkdir -p, 0700 for what it creates. */
static int make_dirs(const char *dir, char *err, size_t cap) {
    char p[512];
    if (snprintf(p, sizeof(p), "%s", dir) >= (int)sizeof(p)) {
        snprintf(err, cap, "HERENOW_SPOOL_DIR: path too long");
        return HN_ERR;
    }
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char saved = *s;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            snprintf(err, cap, "HERENOW_SPOOL_DIR: cannot create %s: %s", p, strerror(errno));
            return HN_ERR;
        }
        *s = saved;
        if (saved == '\0') return HN_OK;
    }
}

/* Spool files of worker ids this process does not have (it ran with more
 * threads before) go into worker (id mod threads)'s file. */
static int adopt_spools(hn_collector *c, char *err, size_t cap) {
    DIR *d = opendir(c->cfg.spool_dir);
    if (d == NULL) {
        snprintf(err, cap, "HERENOW_SPOOL_DIR: %s: %s", c->cfg.spool_dir, strerror(errno));
        return HN_ERR;
    }
    struct dirent *de;
    int rc = HN_OK;
    while (rc == HN_OK && (de = readdir(d)) != NULL) {
        int id;
        if (!hn_spool_name_id(de->d_name, &id) || id < c->nworkers) continue;
        char path[600];
        snprintf(path, sizeof(path), "%s/%s", c->cfg.spool_dir, de->d_name);
        rc = hn_worker_adopt_spool(c->workers[id % c->nworkers], path, err, cap);
    }
    closedir(d);
    return rc;
}

int hn_collector_init(hn_collector *c, hn_config *cfg, char *err, size_t cap) {
    memset(c, 0, sizeof(*c));
    c->cfg = *cfg;
    memset(cfg, 0, sizeof(*cfg));       /* c owns the strings now */
    c->start_ms = hn_now_ms();
    if (hn_redis_cfg_parse(c->cfg.redis_url, &c->rcfg, err, cap) != HN_OK) return HN_ERR;
    c->rcfg.retry_ms = (int)c->cfg.redis_retry_ms;
    /* One server: the hot path's address. A cluster: the workers and the
     * chat tail route by slot (collector/rcluster.c, chattail.c), the
     * housekeeping thread through hn_rcl. */
    c->raddr = c->rcfg.seed[0];
    /* A busy beacon port holds many connections: the usual soft 1024 is far too few. */
    hn_info("event=fd_limit nofile=%llu", (unsigned long long)hn_raise_nofile());
    if (c->cfg.node_id[0]) snprintf(c->node_id, sizeof(c->node_id), "%s", c->cfg.node_id);
    else {
        char host[64] = "host";
        gethostname(host, sizeof(host) - 1);
        snprintf(c->node_id, sizeof(c->node_id), "%s-%d", host, (int)getpid());
    }
    if (hn_cidrs_parse(c->cfg.trusted_relays, &c->relays, err, cap) != HN_OK) return HN_ERR;
    if (hn_cidrs_parse(c->cfg.trusted_proxies, &c->proxies, err, cap) != HN_OK) return HN_ERR;
    c->ipmode = hn_ipmode_parse(c->cfg.ip_mode);
    c->udp_on = c->cfg.udp_listen[0] != '\0';
    if (c->udp_on && hn_addr_parse(c->cfg.udp_listen, &c->udp_addr, err, cap) != HN_OK)
        return HN_ERR;
    if (hn_addr_parse(c->cfg.admin_listen, &c->admin_addr, err, cap) != HN_OK) return HN_ERR;
    c->http_on = c->cfg.http_listen[0] != '\0';
    if (c->http_on && hn_addr_parse(c->cfg.http_listen, &c->http_addr, err, cap) != HN_OK)
        return HN_ERR;
    c->https_on = c->cfg.https_listen[0] != '\0';
    if (c->https_on) {
        if (hn_addr_parse(c->cfg.https_listen, &c->https_addr, err, cap) != HN_OK) return HN_ERR;
        /* SO_REUSEPORT would let both bind, and the kernel share connections
         * between plain and TLS at random */
        int p = hn_addr_port(&c->https_addr);
        const char *same = c->http_on && hn_addr_overlap(&c->https_addr, &c->http_addr) ? "HERENOW_HTTP_LISTEN"
                         : hn_addr_overlap(&c->https_addr, &c->admin_addr)               ? "HERENOW_ADMIN_LISTEN"
                                                                                         : NULL;
        if (same) {
            snprintf(err, cap, "HERENOW_HTTPS_LISTEN: port %d is %s's too; give HTTPS a port of its own", p, same);
            return HN_ERR;
        }
        c->tls = hn_tls_create(c->cfg.tls_cert, c->cfg.tls_key, (int)c->cfg.tls_ticket_rotate_s,
                               err, cap);
        if (c->tls == NULL) return HN_ERR;
    } else if (c->cfg.tls_cert[0] || c->cfg.tls_key[0]) {
        snprintf(err, cap, "HERENOW_TLS_CERT and HERENOW_TLS_KEY are set but HERENOW_HTTPS_LISTEN is not");
        return HN_ERR;
    }
    if (hn_script_build(&c->script, c->cfg.http_beacon_path, c->cfg.http_pixel_path,
                        c->cfg.http_script_path, c->cfg.chat_script_path, err, cap) != HN_OK)
        return HN_ERR;
    if (hn_script_build_chat(&c->chat_script, c->cfg.http_beacon_path, c->cfg.http_pixel_path,
                             c->cfg.chat_script_path, err, cap) != HN_OK)
        return HN_ERR;
    if (init_enrichment(c, err, cap) != HN_OK) return HN_ERR;

    evthread_use_pthreads();
    c->base = event_base_new();
    c->widgets = hn_widgets_pub_create();
    refresh_widgets(c);      /* best effort: Redis may come later */
    c->bans = hn_bans_pub_create();
    c->bans_loader = hn_bans_loader_create();
    refresh_bans(c);

    if (c->cfg.spool_dir[0]) {
        if (hn_spool_sync_parse(c->cfg.spool_fsync) < 0) {
            snprintf(err, cap, "HERENOW_SPOOL_FSYNC: always, everysec or no");
            return HN_ERR;
        }
        if (make_dirs(c->cfg.spool_dir, err, cap) != HN_OK) return HN_ERR;
    }
    c->nworkers = hn_config_threads(&c->cfg);
    c->workers = hn_xcalloc((size_t)c->nworkers, sizeof(hn_worker *));
    for (int i = 0; i < c->nworkers; i++) {
        if (i == 0 && c->rcfg.cluster) {
            /* the slot map the workers route by (collector/rcluster.c); a
             * cluster not answering yet is an outage like any: the workers
             * spool until a map is read */
            char e2[256];
            if (hn_rshared_start(&c->rcfg, (int)c->cfg.redis_connect_timeout_ms, 15000, e2, sizeof(e2)) != HN_OK)
                hn_warn("event=redis_cluster_unreachable err='%s'", e2);
        }
        c->workers[i] = hn_worker_create(c, i, err, cap);
        if (c->workers[i] == NULL) return HN_ERR;
    }
    if (c->cfg.spool_dir[0] && adopt_spools(c, err, cap) != HN_OK) return HN_ERR;
    if (hn_admin_start(c, err, cap) != HN_OK) return HN_ERR;

    c->sig_term = evsignal_new(c->base, SIGTERM, on_signal, c);
    c->sig_int = evsignal_new(c->base, SIGINT, on_signal, c);
    c->sig_hup = evsignal_new(c->base, SIGHUP, on_signal, c);
    event_add(c->sig_term, NULL);
    event_add(c->sig_int, NULL);
    event_add(c->sig_hup, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The blocking Redis work (widget table, salts, trims) has a thread of
     * its own: a Redis that hangs must not stall /metrics and /readyz. */
    c->hk_base = event_base_new();
    if (c->hk_base == NULL) {
        snprintf(err, cap, "event_base_new failed");
        return HN_ERR;
    }
    struct timeval rtv = {c->cfg.widget_refresh_ms / 1000, (c->cfg.widget_refresh_ms % 1000) * 1000};
    c->refresh_timer = event_new(c->hk_base, -1, EV_PERSIST, on_refresh, c);
    event_add(c->refresh_timer, &rtv);
    struct timeval ttv = {c->cfg.trim_interval_ms / 1000, (c->cfg.trim_interval_ms % 1000) * 1000};
    c->trim_timer = event_new(c->hk_base, -1, EV_PERSIST, on_trim, c);
    event_add(c->trim_timer, &ttv);
    struct timeval btv = {c->cfg.bans_refresh_ms / 1000, (c->cfg.bans_refresh_ms % 1000) * 1000};
    c->bans_timer = event_new(c->hk_base, -1, EV_PERSIST, on_bans, c);
    event_add(c->bans_timer, &btv);
    return HN_OK;
}

static void *housekeeping_main(void *arg) {
    hn_collector *c = arg;
    event_base_loop(c->hk_base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

int hn_collector_run(hn_collector *c) {
    for (int i = 0; i < c->nworkers; i++) {
        if (hn_worker_start(c->workers[i]) != HN_OK) {
            hn_error("event=thread_start_failed worker=%d errno=%d", i, errno);
            /* the ones running stop and are joined before anything is freed */
            for (int k = 0; k < i; k++) hn_worker_stop(c->workers[k]);
            for (int k = 0; k < i; k++) hn_worker_join(c->workers[k]);
            return 1;
        }
        c->workers_running++;
    }
    if (pthread_create(&c->hk_thread, NULL, housekeeping_main, c) != 0) {
        hn_error("event=thread_start_failed role=housekeeping errno=%d", errno);
        for (int k = 0; k < c->nworkers; k++) hn_worker_stop(c->workers[k]);
        for (int k = 0; k < c->nworkers; k++) hn_worker_join(c->workers[k]);
        return 1;
    }
    hn_info("event=started node=%s workers=%d udp='%s' http='%s' https='%s' admin='%s' redis='%s%s:%d/%d'",
            c->node_id, c->nworkers, c->udp_on ? c->cfg.udp_listen : "off",
            c->http_on ? c->cfg.http_listen : "off", c->https_on ? c->cfg.https_listen : "off",
            c->cfg.admin_listen, c->raddr.path, c->raddr.path[0] ? "" : c->raddr.host, c->raddr.port, c->raddr.db);
    event_base_dispatch(c->base);

    event_base_loopbreak(c->hk_base);
    pthread_join(c->hk_thread, NULL);
    uint64_t unflushed = 0;
    for (int i = 0; i < c->nworkers; i++) {
        hn_worker_join(c->workers[i]);
        unflushed += hn_worker_unflushed(c->workers[i]);
    }
    c->workers_running = 0;
    if (unflushed) {
        hn_error("event=stopped_with_unwritten_data groups=%llu", (unsigned long long)unflushed);
        return 2;
    }
    hn_info("event=stopped clean=1");
    return 0;
}

void hn_collector_free(hn_collector *c) {
    for (int i = 0; i < c->nworkers && c->workers; i++) hn_worker_destroy(c->workers[i]);
    hn_rshared_stop();
    free(c->workers);
    if (c->admin) evhttp_free(c->admin);
    if (c->sd_timer) event_free(c->sd_timer);
    if (c->sig_term) event_free(c->sig_term);
    if (c->sig_int) event_free(c->sig_int);
    if (c->sig_hup) event_free(c->sig_hup);
    if (c->refresh_timer) event_free(c->refresh_timer);
    hn_tls_free(c->tls);      /* after the workers: their connections are closed */
    if (c->trim_timer) event_free(c->trim_timer);
    if (c->bans_timer) event_free(c->bans_timer);
    if (c->hk_base) event_base_free(c->hk_base);
    if (c->widgets) {
        hn_widgets_release(c->widgets, &c->wref);
        hn_widgets_release(c->widgets, &c->hk_wref);
        hn_widgets_pub_destroy(c->widgets);
    }
    if (c->bans) hn_bans_pub_destroy(c->bans);
    hn_bans_loader_destroy(c->bans_loader);
    if (c->redis) hn_rcl_free(c->redis);
    hn_cidrs_free(&c->relays);
    hn_cidrs_free(&c->proxies);
    hn_script_free(&c->script);
    hn_script_free(&c->chat_script);
    hn_uap_free(c->uap);
    if (c->geo) hn_geo_close(c->geo);
    if (c->salts) hn_salt_holder_destroy(c->salts);
    hn_config_free(&c->cfg);
    if (c->base) event_base_free(c->base);
    libevent_global_shutdown();
}
