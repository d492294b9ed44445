/*
 * worker.c: one collector worker thread.
 *
 *   UDP socket ──recvmmsg(256)──► decode ─► validate ─► widget ─► record
 *                                   │ drop: counted by reason      │
 *                                   ▼                              ▼
 *                          herenow_beacons_dropped_total   stream shard buffer (msgpack)
 *                                                          + presence commands (RESP)
 *   flush: ZADD/ZREM per widget, one XADD per shard, all of it one pipeline
 *   group on the worker's Redis connection.
 *
 * Reading is event-driven while the socket is quiet and tick-driven while
 * traffic flows: a readiness event switches the socket's event off, reads
 * what is there, and starts a tick of HERENOW_BATCH_WAIT_US; each tick reads
 * everything that arrived meanwhile and flushes it as one pipeline. A tick
 * that finds nothing switches back to the readiness event. So a beacon waits
 * at most one tick, and the system calls and Redis commands per beacon fall
 * as traffic grows (one ZADD per widget and one XADD per tick, not per
 * datagram). A flush also happens whenever HN_FLUSH_RECORDS records are
 * pending, to bound the pipeline.
 */
#include "collector/worker.h"
#include "common/buf.h"
#include "common/ids.h"
#include "common/log.h"
#include "proto/record.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READS_PER_TICK  16        /* recvmmsg calls per tick (fairness between sockets) */
#define HN_FLUSH_RECORDS 1024     /* flush at once when this many records are pending */
#define RESUME_CHECK_MS 5
#define STOP_CHECK_MS   10


/* --- Redis connection callbacks -------------------------------------------- */

static void on_group_done(void *ctx, uint64_t tag, uint32_t ncmds, uint32_t nerr,
                          const char *errtext) {
    hn_worker *w = ctx;
    HN_STAT_ADD(w->st.records_written, tag);
    HN_STAT_ADD(w->st.redis_commands, ncmds);
    HN_STAT_SET(w->st.redis_buffered, hn_rconn_buffered(w->rc));
    if (nerr) {
        HN_STAT_ADD(w->st.redis_errors, nerr);
        uint64_t now = hn_mono_ms();
        if (now - w->last_err_log_ms > 1000) {
            w->last_err_log_ms = now;
            hn_error("event=redis_error_reply worker=%d errors=%u err='%s'", w->id, nerr, errtext);
        }
    }
}

static void on_redis_state(void *ctx, bool up, const char *why) {
    hn_worker *w = ctx;
    HN_STAT_SET(w->st.redis_up, up ? 1 : 0);
    if (!up) {
        HN_STAT_ADD(w->st.redis_disconnects, 1);
        if (strcmp(why, "reply timeout") == 0) HN_STAT_ADD(w->st.redis_timeouts, 1);
    }
    if (up) hn_info("event=redis_connected worker=%d", w->id);
    else hn_warn("event=redis_disconnected worker=%d err='%s' buffered=%zu", w->id, why,
                 hn_rconn_buffered(w->rc));
}

/* --- one datagram ---------------------------------------------------------- */

void hn_worker_drop(hn_worker *w, int tr, hn_reason r, unsigned n) {
    HN_STAT_ADD(w->st.received[tr], n);
    HN_STAT_ADD(w->st.dropped[tr][r], n);
}

void hn_worker_take(hn_worker *w, hn_record *r) {
    uint32_t s = r->widget_id % w->nshards;
    w->pk.data = &w->shard[s];
    hn_record_pack(&w->pk, r);
    w->shard_n[s]++;
    hn_presence_add(w->pres, r, &w->cmds, &w->ncmds);
    w->flush_records++;
}

bool hn_worker_backlogged(const hn_worker *w) {
    return !hn_rconn_up(w->rc) &&
           hn_rconn_buffered(w->rc) > (size_t)w->col->cfg.redis_max_pending;
}

static void handle_datagram(hn_worker *w, const hn_widgets *wt, const char *buf, size_t len,
                            bool truncated, const struct sockaddr *src, uint64_t now_us) {
    const int tr = HN_TR_UDP - 1;
    hn_collector *c = w->col;
    HN_STAT_ADD(w->st.datagrams, 1);
    HN_STAT_ADD(w->st.bytes, len);
    if (truncated) {
        hn_worker_drop(w, tr, HN_R_TOO_LARGE, 1);
        return;
    }
    hn_batch *bt = w->batch;
    hn_beacon_decode_msgpack(w->dec, bt, buf, len);
    if (bt->n == 0) {
        hn_worker_drop(w, tr, bt->all, 1);
        hn_debug("event=beacon_rejected transport=udp reason=%s err='%s'", hn_reason_name(bt->all),
                 bt->err);
        return;
    }
    hn_client cl = {.have_ip = false};
    cl.have_ip = hn_ip_from_sockaddr(src, &cl.ip);
    cl.trusted_relay = cl.have_ip && c->relays.n && hn_cidrs_match(&c->relays, &cl.ip);
    hn_worker_admit(w, wt, bt, HN_TR_UDP, &cl, now_us);
}

/* --- flushing -------------------------------------------------------------- */

static void flush(hn_worker *w) {
    if (w->flush_records == 0) return;
    hn_collector *c = w->col;
    if (w->enr.uctx) {
        HN_STAT_SET(w->st.ua_cache_hits, hn_uap_cache_hits(w->enr.uctx));
        HN_STAT_SET(w->st.ua_cache_misses, hn_uap_cache_misses(w->enr.uctx));
        HN_STAT_SET(w->st.ua_match_errors, hn_uap_match_errors(w->enr.uctx));
    }
    HN_STAT_SET(w->st.no_salt, w->enr.no_salt);
    hn_presence_flush(w->pres, &w->cmds, &w->ncmds);
    for (uint32_t s = 0; s < w->nshards; s++) {
        if (w->shard_n[s] == 0) continue;
        char key[32], hdr[8];
        int kl = snprintf(key, sizeof(key), "hn:stream:%u", s);
        hn_buf hb = {hdr, 0, sizeof(hdr)};
        msgpack_packer hp;
        msgpack_packer_init(&hp, &hb, hn_buf_msgpack_write);
        msgpack_pack_array(&hp, w->shard_n[s]);
        hn_resp_cmd(&w->cmds, 8);
        hn_resp_str(&w->cmds, "XADD");
        hn_resp_arg(&w->cmds, key, (size_t)kl);
        hn_resp_str(&w->cmds, "MAXLEN");
        hn_resp_str(&w->cmds, "~");
        hn_resp_u64(&w->cmds, (uint64_t)c->cfg.stream_maxlen);
        hn_resp_str(&w->cmds, "*");
        hn_resp_str(&w->cmds, HN_STREAM_FIELD);
        hn_resp_arg2(&w->cmds, hb.p, hb.len, w->shard[s].p, w->shard[s].len);
        w->ncmds++;
        hn_buf_reset(&w->shard[s]);
        w->shard_n[s] = 0;
    }
    hn_rconn_send(w->rc, w->cmds.p, w->cmds.len, w->ncmds, w->flush_records);
    unsigned bucket = 0;
    while (bucket < HN_BATCH_BUCKETS - 1 && (1u << bucket) < w->flush_records) bucket++;
    HN_STAT_ADD(w->st.batch_hist[bucket], 1);
    HN_STAT_ADD(w->st.batch_sum, w->flush_records);
    HN_STAT_ADD(w->st.flushes, 1);
    hn_buf_reset(&w->cmds);
    w->ncmds = 0;
    w->flush_records = 0;
    HN_STAT_SET(w->st.redis_buffered, hn_rconn_buffered(w->rc));
}

/* --- reading --------------------------------------------------------------- */

/* Reads and handles one recvmmsg batch; returns the number of datagrams. */
static int read_batch(hn_worker *w, const hn_widgets *wt) {
    for (unsigned i = 0; i < w->nmsg; i++) {
        w->msgs[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        w->msgs[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(w->udp_fd, w->msgs, w->nmsg, MSG_DONTWAIT, NULL);
    if (n <= 0) {
        if (n < 0 && errno != EAGAIN && errno != EINTR)
            hn_warn("event=recvmmsg_failed worker=%d errno=%d err='%s'", w->id, errno,
                    strerror(errno));
        return 0;
    }
    uint64_t now_us = hn_now_us();
    for (int i = 0; i < n; i++) {
        struct msghdr *mh = &w->msgs[i].msg_hdr;
        handle_datagram(w, wt, w->bufs + (size_t)i * HN_UDP_MAX, w->msgs[i].msg_len,
                        (mh->msg_flags & MSG_TRUNC) != 0, (struct sockaddr *)&w->addrs[i], now_us);
    }
    if (w->flush_records >= HN_FLUSH_RECORDS) flush(w);
    return n;
}

/* Reads what the socket holds (up to READS_PER_TICK batches) and flushes it.
 * Returns the number of datagrams read. */
static int drain(hn_worker *w) {
    const hn_widgets *wt = hn_widgets_acquire(w->col->widgets, &w->wref);
    int total = 0;
    for (int k = 0; k < READS_PER_TICK && w->udp_open; k++) {
        int n = read_batch(w, wt);
        total += n;
        if (n < (int)w->nmsg) break;
    }
    flush(w);
    return total;
}

static void on_resume(evutil_socket_t fd, short what, void *arg);

void hn_worker_kick(hn_worker *w) {
    if (w->flush_records >= HN_FLUSH_RECORDS) flush(w);
    if (w->flush_records && !w->paused && !evtimer_pending(w->tick, NULL))
        evtimer_add(w->tick, &w->tick_tv);
}

/* Stops reading while Redis is behind; true when it did. */
static bool maybe_pause(hn_worker *w) {
    if (!hn_rconn_up(w->rc)) return false;
    if (hn_rconn_buffered(w->rc) <= (size_t)w->col->cfg.redis_max_pending) return false;
    w->paused = true;
    HN_STAT_ADD(w->st.paused, 1);
    if (w->udp_open) event_del(w->udp_ev);
    evtimer_del(w->tick);
    struct timeval tv = {0, RESUME_CHECK_MS * 1000};
    evtimer_add(w->resume_timer, &tv);
    return true;
}

static void on_resume(evutil_socket_t fd, short what, void *arg) {
    hn_worker *w = arg;
    (void)fd; (void)what;
    HN_STAT_SET(w->st.redis_buffered, hn_rconn_buffered(w->rc));
    if (hn_rconn_up(w->rc) && hn_rconn_buffered(w->rc) > (size_t)w->col->cfg.redis_max_pending / 2) {
        struct timeval tv = {0, RESUME_CHECK_MS * 1000};
        evtimer_add(w->resume_timer, &tv);
        return;
    }
    w->paused = false;
    if (w->udp_open) event_add(w->udp_ev, NULL);
    hn_worker_kick(w);
}

/* Traffic: keep ticking while there is some, back to events when quiet. */
static void on_tick(evutil_socket_t fd, short what, void *arg) {
    hn_worker *w = arg;
    (void)fd; (void)what;
    int n = drain(w);
    if (maybe_pause(w)) return;
    if (n > 0) {
        evtimer_add(w->tick, &w->tick_tv);
    } else if (w->udp_open) {
        event_add(w->udp_ev, NULL);
    }
}

static void on_udp(evutil_socket_t fd, short what, void *arg) {
    hn_worker *w = arg;
    (void)fd; (void)what;
    event_del(w->udp_ev);
    drain(w);
    if (maybe_pause(w)) return;
    evtimer_add(w->tick, &w->tick_tv);
}

/* --- stopping -------------------------------------------------------------- */

static void on_stop_check(evutil_socket_t fd, short what, void *arg) {
    hn_worker *w = arg;
    (void)fd; (void)what;
    HN_STAT_SET(w->st.redis_buffered, hn_rconn_buffered(w->rc));
    if (hn_rconn_groups(w->rc) == 0 || hn_mono_ms() >= w->stop_deadline_ms) {
        w->unflushed = hn_rconn_buffered(w->rc) ? hn_rconn_groups(w->rc) : 0;
        event_base_loopbreak(w->base);
        return;
    }
    struct timeval tv = {0, STOP_CHECK_MS * 1000};
    evtimer_add(w->stop_timer, &tv);
}

/* Runs on the worker: read what the kernel already holds (those beacons
 * were sent before the stop), flush, then wait for Redis to acknowledge. */
static void on_stop(evutil_socket_t fd, short what, void *arg) {
    hn_worker *w = arg;
    (void)fd; (void)what;
    if (w->stopping) return;
    w->stopping = true;
    w->stop_deadline_ms = hn_mono_ms() + (uint64_t)w->col->cfg.shutdown_timeout_ms;
    hn_http_worker_stop(w);        /* what was answered 204 is in the buffers */
    if (w->udp_open) {
        while (drain(w) > 0) {}
        event_del(w->udp_ev);
        evtimer_del(w->tick);
        HN_STAT_SET(w->st.kernel_drops, hn_udp_drops(w->udp_fd));
        atomic_store(&w->udp_fd_pub, -1);
        close(w->udp_fd);
        w->udp_fd = -1;
        w->udp_open = false;
    }
    flush(w);
    evtimer_del(w->tick);
    evtimer_del(w->resume_timer);
    w->paused = false;
    on_stop_check(-1, 0, w);
}

static void *worker_main(void *arg) {
    hn_worker *w = arg;
    hn_rconn_start(w->rc);
    event_base_dispatch(w->base);
    hn_widgets_release(w->col->widgets, &w->wref);
    atomic_store(&w->done, true);
    return NULL;
}

/* --- lifecycle ------------------------------------------------------------- */

hn_worker *hn_worker_create(hn_collector *c, int id, char *err, size_t cap) {
    hn_worker *w = hn_xcalloc(1, sizeof(*w));
    w->id = id;
    w->col = c;
    w->udp_fd = -1;
    w->udp_fd_pub = -1;
    w->tee_fd = -1;
    /* libevent's default clock is CLOCK_MONOTONIC_COARSE, which moves in
     * jiffies (4 ms at HZ=250): a 1 ms tick would fire after 4 ms, with
     * useless wake-ups in between. The tick needs the precise clock. */
    struct event_config *ec = event_config_new();
    event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
    /* evhttp switches a connection's read and write interest on and off per
     * request; the changelist folds those into one epoll_ctl per fd and loop
     * iteration, or none when they cancel out (bench-http: collector CPU per
     * keep-alive request 44.7 → 33.2 µs). */
    event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    w->base = event_base_new_with_config(ec);
    event_config_free(ec);
    if (w->base == NULL) {
        snprintf(err, cap, "event_base_new failed");
        goto fail;
    }
    if (c->udp_on) {
        w->udp_fd = hn_udp_bind(&c->udp_addr, true, (int)c->cfg.udp_rcvbuf, err, cap);
        if (w->udp_fd < 0) goto fail;
        w->udp_open = true;
        atomic_store(&w->udp_fd_pub, w->udp_fd);
        w->udp_ev = event_new(w->base, w->udp_fd, EV_READ | EV_PERSIST, on_udp, w);
        event_add(w->udp_ev, NULL);
    }
    hn_enricher_init(&w->enr, &c->enrich, (size_t)c->cfg.ua_cache);
    w->stop_ev = event_new(w->base, -1, 0, on_stop, w);
    w->resume_timer = evtimer_new(w->base, on_resume, w);
    w->tick = evtimer_new(w->base, on_tick, w);
    w->tick_tv = (struct timeval){0, (suseconds_t)c->cfg.batch_wait_us};
    w->stop_timer = evtimer_new(w->base, on_stop_check, w);

    hn_rconn_cbs cbs = {on_group_done, on_redis_state};
    w->rc = hn_rconn_create(w->base, &c->raddr, &cbs, w);
    hn_rconn_set_reply_timeout(w->rc, (int)c->cfg.redis_timeout_ms);
    if (c->cfg.redis_tee[0]) {
        char path[600];
        snprintf(path, sizeof(path), "%s.%d", c->cfg.redis_tee, id);
        w->tee_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (w->tee_fd < 0) {
            snprintf(err, cap, "HERENOW_REDIS_TEE: %s: %s", path, strerror(errno));
            goto fail;
        }
        hn_rconn_tee(w->rc, w->tee_fd);
    }
    hn_presence_cfg pc = {hn_presence_safety_ttl((uint32_t)c->cfg.live_window_s)};
    w->pres = hn_presence_create(&pc);
    w->dec = hn_decoder_create();
    w->batch = hn_xmalloc(sizeof(hn_batch));
    hn_rng_seed(&w->rng);

    w->nmsg = (unsigned)c->cfg.recv_batch;
    w->msgs = hn_xcalloc(w->nmsg, sizeof(struct mmsghdr));
    w->iov = hn_xcalloc(w->nmsg, sizeof(struct iovec));
    w->bufs = hn_xmalloc((size_t)w->nmsg * HN_UDP_MAX);
    w->addrs = hn_xcalloc(w->nmsg, sizeof(struct sockaddr_storage));
    for (unsigned i = 0; i < w->nmsg; i++) {
        w->iov[i].iov_base = w->bufs + (size_t)i * HN_UDP_MAX;
        w->iov[i].iov_len = HN_UDP_MAX;
        struct msghdr *mh = &w->msgs[i].msg_hdr;
        mh->msg_iov = &w->iov[i];
        mh->msg_iovlen = 1;
        mh->msg_name = &w->addrs[i];
    }

    hn_buf_init(&w->cmds, 64 * 1024);
    w->nshards = (uint32_t)c->cfg.stream_shards;
    w->shard = hn_xcalloc(w->nshards, sizeof(hn_buf));
    w->shard_n = hn_xcalloc(w->nshards, sizeof(uint32_t));
    for (uint32_t s = 0; s < w->nshards; s++) hn_buf_init(&w->shard[s], 16 * 1024);
    msgpack_packer_init(&w->pk, &w->shard[0], hn_buf_msgpack_write);
    if (c->http_on && hn_http_worker_start(w, err, cap) != HN_OK) goto fail;
    return w;
fail:
    hn_worker_destroy(w);
    return NULL;
}

int hn_worker_start(hn_worker *w) {
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) return HN_ERR;
    w->started = true;
    return HN_OK;
}

void hn_worker_stop(hn_worker *w) {
    event_active(w->stop_ev, EV_READ, 0);
}

void hn_worker_join(hn_worker *w) {
    if (w->started) pthread_join(w->thread, NULL);
    w->started = false;
}

void hn_worker_destroy(hn_worker *w) {
    if (w == NULL) return;
    hn_http_worker_stop(w);
    hn_enricher_free(&w->enr);
    if (w->udp_ev) event_free(w->udp_ev);
    if (w->stop_ev) event_free(w->stop_ev);
    if (w->resume_timer) event_free(w->resume_timer);
    if (w->tick) event_free(w->tick);
    if (w->stop_timer) event_free(w->stop_timer);
    if (w->udp_fd >= 0) close(w->udp_fd);
    hn_rconn_destroy(w->rc);
    if (w->tee_fd >= 0) close(w->tee_fd);
    hn_presence_destroy(w->pres);
    if (w->dec) hn_decoder_destroy(w->dec);
    free(w->batch);
    free(w->msgs);
    free(w->iov);
    free(w->bufs);
    free(w->addrs);
    hn_buf_free(&w->cmds);
    for (uint32_t s = 0; s < w->nshards; s++) hn_buf_free(&w->shard[s]);
    free(w->shard);
    free(w->shard_n);
    if (w->base) event_base_free(w->base);
    free(w);
}

const hn_wstats *hn_worker_stats(const hn_worker *w) { return &w->st; }
bool hn_worker_done(const hn_worker *w) { return atomic_load(&w->done); }

uint64_t hn_worker_kernel_drops(hn_worker *w) {
    int fd = atomic_load(&w->udp_fd_pub);
    return fd >= 0 ? hn_udp_drops(fd) : HN_STAT_GET(w->st.kernel_drops);
}
uint64_t hn_worker_unflushed(const hn_worker *w) { return w->unflushed; }
