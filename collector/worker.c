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
 *
 * The spool (HERENOW_SPOOL_DIR, common/spool.h): when Redis is down, or up
 * but HERENOW_REDIS_MAX_PENDING bytes behind, a flush's pipeline is appended
 * to the worker's spool file instead, and so is every later one while the
 * file holds entries — so nothing overtakes what waits there. When Redis
 * is down the pipelines it had not acknowledged move into the file too
 * (hn_rconn_take). While Redis is up, the pump replays entries in file
 * order, keeping at most SPOOL_WINDOW bytes in flight; the file is emptied
 * only once Redis acknowledged everything in it. Beacons are refused
 * (spool_full) only when the file reaches HERENOW_SPOOL_MAX_BYTES.
 *
 *   flush ──► spool empty and Redis keeping up? ──yes──► rconn (in flight)
 *                          │ no                            ▲
 *                          ▼                               │ pump, in order
 *                   worker-N.spool ────────────────────────┘
 */
#include "collector/worker.h"
#include "common/buf.h"
#include "common/ids.h"
#include "common/log.h"
#include "proto/keys.h"
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
#define SPOOL_TICK_MS   1000
#define MSG_RL_SLOTS    16384     /* chat sessions remembered per worker (t=msg rate) */
#define PUMP_BUDGET     (512 * 1024)   /* spool bytes replayed per turn of the event loop */

/* A group's tag is its record count; a group replayed from the spool also
 * carries SPOOL_TAG and the file offset just past its entry. */
#define SPOOL_TAG          (1ull << 63)
#define TAG_NREC(t)        ((uint32_t)((t) & 0xFFFFF))
#define TAG_END(t)         (((t) & ~SPOOL_TAG) >> 20)
#define TAG_SPOOLED(e, n)  (SPOOL_TAG | ((uint64_t)(e) << 20) | (n))

static void spool_pump(hn_worker *w);
static void spool_begin(hn_worker *w, const char *why);


/* --- Redis connection callbacks -------------------------------------------- */

static void on_group_done(void *ctx, uint64_t tag, uint32_t ncmds, uint32_t nerr,
                          const char *errtext) {
    hn_worker *w = ctx;
    HN_STAT_ADD(w->st.records_written, TAG_NREC(tag));
    if (tag & SPOOL_TAG) {
        HN_STAT_ADD(w->st.spool_replayed, TAG_NREC(tag));
        w->sp_aoff = TAG_END(tag);
        w->sp_records -= TAG_NREC(tag) < w->sp_records ? TAG_NREC(tag) : w->sp_records;
    }
    if (w->sp.end) spool_pump(w);
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
        /* on a cluster `why` starts with the node ("host:port: reply timeout") */
        if (strstr(why, "reply timeout")) HN_STAT_ADD(w->st.redis_timeouts, 1);
        if (strstr(why, "retryable error reply")) HN_STAT_ADD(w->st.redis_retryable, 1);
    }
    if (up) hn_info("event=redis_connected worker=%d", w->id);
    else hn_warn("event=redis_disconnected worker=%d err='%s' buffered=%zu", w->id, why,
                 hn_rconn_buffered(w->rc));
    if (!w->spool_on) return;
    if (up) spool_pump(w);
    else spool_begin(w, "redis down");
}

/* --- the spool -------------------------------------------------------------- */

static void spool_stats(hn_worker *w) {
    HN_STAT_SET(w->st.spool_bytes, w->sp.end - w->sp_aoff);
    HN_STAT_SET(w->st.spool_records, w->sp_records);
    HN_STAT_SET(w->st.spool_active, w->sp.end ? 1 : 0);
    HN_STAT_SET(w->st.spool_full, hn_worker_backlogged(w) == HN_R_SPOOL_FULL ? 1 : 0);
}

static bool spool_put(hn_worker *w, const char *p, size_t len, uint32_t ncmds, uint32_t nrec) {
    if (w->sp.end == 0 && !w->spool_failing)
        hn_warn("event=spool_started worker=%d reason='%s' file='%s'", w->id,
                w->spool_why ? w->spool_why : "redis down", w->sp.path);
    if (hn_spool_append(&w->sp, p, len, ncmds, nrec) != HN_OK) {
        w->spool_failing = true;
        HN_STAT_ADD(w->st.spool_write_errors, 1);
        uint64_t now = hn_mono_ms();
        if (now - w->last_err_log_ms > 1000) {
            w->last_err_log_ms = now;
            hn_error("event=spool_write_failed worker=%d file='%s' err='%s' (kept in memory)",
                     w->id, w->sp.path, strerror(errno));
        }
        return false;
    }
    w->spool_failing = false;
    w->sp_records += nrec;
    HN_STAT_ADD(w->st.spool_written, nrec);
    spool_stats(w);
    return true;
}

/* Pipelines Redis had not acknowledged when it went away, collected by
 * hn_rconn_take: each a header (len, ncmds, nrec) and its bytes. Those that
 * came from the file are skipped: the pump reads them again. */
static void take_group(void *ctx, const char *buf, size_t len, uint32_t ncmds, uint64_t tag) {
    hn_worker *w = ctx;
    if (tag & SPOOL_TAG) return;
    uint64_t h[3] = {len, ncmds, TAG_NREC(tag)};
    hn_buf_append(&w->taken, h, sizeof(h));
    hn_buf_append(&w->taken, buf, len);
}

/* Writes the taken pipelines, then the file's unacknowledged entries, to a
 * new file that replaces the old one: the taken ones are older than
 * everything still waiting in the file (Redis was behind, then went away). */
static int spool_rewrite(hn_worker *w) {
    char tmp[600], err[700];
    snprintf(tmp, sizeof(tmp), "%s.tmp", w->sp.path);
    unlink(tmp);
    hn_spool ns;
    hn_spool_scan scan;
    /* Synced once at the end, not per entry (HERENOW_SPOOL_FSYNC=always). */
    if (hn_spool_open(&ns, tmp, true, false, HN_SPOOL_SYNC_NO, &scan, err, sizeof(err)) != HN_OK) {
        hn_error("event=spool_rewrite_failed worker=%d err='%s'", w->id, err);
        return HN_ERR;
    }
    uint64_t nrec = 0, off = w->sp_aoff, skipped;
    for (size_t p = 0; p < w->taken.len;) {
        uint64_t h[3];
        memcpy(h, w->taken.p + p, sizeof(h));
        p += sizeof(h);
        if (hn_spool_append(&ns, w->taken.p + p, h[0], (uint32_t)h[1], (uint32_t)h[2]) != HN_OK)
            goto fail;
        nrec += h[2];
        p += h[0];
    }
    hn_spool_entry e;
    while (hn_spool_read(&w->sp, &off, &e, &skipped) == HN_OK) {
        if (hn_spool_append(&ns, e.p, e.len, e.ncmds, e.nrec) != HN_OK) goto fail;
        nrec += e.nrec;
    }
    hn_spool_sync_now(&ns);
    if (rename(tmp, w->sp.path) != 0) goto fail;
    hn_spool_sync_dir(w->sp.path);
    ns.sync = w->sp.sync;
    snprintf(ns.path, sizeof(ns.path), "%s", w->sp.path);
    hn_spool_close(&w->sp);
    w->sp = ns;
    w->sp_roff = w->sp_aoff = 0;
    w->sp_records = nrec;
    return HN_OK;
fail:
    hn_error("event=spool_rewrite_failed worker=%d file='%s' err='%s'", w->id, tmp, strerror(errno));
    hn_spool_close(&ns);
    unlink(tmp);
    return HN_ERR;
}

/* Redis is down (or the stop's deadline came): what it had not acknowledged
 * goes into the file, in order. */
static void spool_take(hn_worker *w) {
    hn_buf_reset(&w->taken);
    hn_rconn_take(w->rc, take_group, w);
    w->sp_roff = w->sp_aoff;       /* what was in flight from the file is read again */
    if (w->taken.len == 0) return;
    if (w->sp.end > w->sp_aoff && spool_rewrite(w) == HN_OK) return;
    /* The file had nothing waiting (or could not be rewritten): append. */
    for (size_t p = 0; p < w->taken.len;) {
        uint64_t h[3];
        memcpy(h, w->taken.p + p, sizeof(h));
        p += sizeof(h);
        if (!spool_put(w, w->taken.p + p, h[0], (uint32_t)h[1], (uint32_t)h[2]))
            hn_rconn_send(w->rc, w->taken.p + p, h[0], (uint32_t)h[1], h[2]);
        p += h[0];
    }
}

static void spool_begin(hn_worker *w, const char *why) {
    w->spool_why = why;           /* for spool_put's spool_started line */
    if (!hn_rconn_up(w->rc)) spool_take(w);
    spool_stats(w);
}

/* Replays entries while Redis is up and has room; empties the file once
 * everything in it was acknowledged. */
static void on_pump(evutil_socket_t fd, short what, void *arg) {
    (void)fd; (void)what;
    spool_pump(arg);
}

static void spool_pump(hn_worker *w) {
    if (!w->spool_on || w->sp.end == 0 || !hn_rconn_up(w->rc)) return;
    size_t window = (size_t)w->col->cfg.redis_max_pending / 2;
    /* At most PUMP_BUDGET bytes per call: the rest after the loop has
     * looked at the sockets again (a replay of megabytes in one go held
     * HTTP answers for up to 1.8 s). */
    size_t budget = PUMP_BUDGET;
    while (w->sp_roff < w->sp.end && hn_rconn_buffered(w->rc) < window) {
        if (budget == 0) {
            static const struct timeval now = {0, 0};
            evtimer_add(w->pump_ev, &now);
            break;
        }
        hn_spool_entry e;
        uint64_t skipped = 0;
        int rc = hn_spool_read(&w->sp, &w->sp_roff, &e, &skipped);
        if (skipped) {
            HN_STAT_ADD(w->st.spool_corrupt_bytes, skipped);
            hn_error("event=spool_damage_skipped worker=%d file='%s' bytes=%llu", w->id,
                     w->sp.path, (unsigned long long)skipped);
        }
        if (rc != HN_OK) break;
        hn_rconn_send(w->rc, e.p, e.len, e.ncmds, TAG_SPOOLED(w->sp_roff, e.nrec & 0xFFFFF));
        budget = e.len >= budget ? 0 : budget - e.len;
        if (!hn_rconn_up(w->rc)) return;       /* lost while writing: read again later */
    }
    /* Damage at the very end leaves nothing to acknowledge past it. */
    if (w->sp_roff == w->sp.end && hn_rconn_groups(w->rc) == 0) w->sp_aoff = w->sp.end;
    if (w->sp_aoff == w->sp.end) {
        if (hn_spool_truncate(&w->sp) == HN_OK) {
            hn_info("event=spool_replayed worker=%d file='%s'", w->id, w->sp.path);
            w->sp_roff = w->sp_aoff = 0;
            w->sp_records = 0;
        } else {
            hn_error("event=spool_truncate_failed worker=%d file='%s' err='%s'", w->id, w->sp.path,
                     strerror(errno));
        }
    }
    spool_stats(w);
}

static void on_spool_tick(evutil_socket_t fd, short what, void *arg) {
    hn_worker *w = arg;
    (void)fd; (void)what;
    hn_spool_tick(&w->sp);
    hn_spool_release(&w->sp, w->sp_aoff);
    spool_pump(w);
    spool_stats(w);
}

static int spool_open(hn_worker *w, char *err, size_t cap) {
    hn_collector *c = w->col;
    char path[512];
    if (!hn_spool_path(path, sizeof(path), c->cfg.spool_dir, w->id)) {
        snprintf(err, cap, "HERENOW_SPOOL_DIR: path too long");
        return HN_ERR;
    }
    hn_spool_scan scan;
    char e[600];
    if (hn_spool_open(&w->sp, path, true, false, hn_spool_sync_parse(c->cfg.spool_fsync), &scan, e,
                      sizeof(e)) != HN_OK) {
        snprintf(err, cap, "spool: %s", e);
        return HN_ERR;
    }
    w->spool_on = true;
    w->sp_records = scan.records;
    HN_STAT_SET(w->st.spool_corrupt_bytes, scan.bad_bytes + scan.tail_bytes);
    if (scan.tail_bytes)
        hn_error("event=spool_tail_damaged worker=%d file='%s' bytes=%llu moved_to='%s' "
                 "(a crash mid-write: the entries before it are replayed)", w->id, path,
                 (unsigned long long)scan.tail_bytes, scan.tail_file);
    if (scan.bad_bytes)
        hn_error("event=spool_damaged worker=%d file='%s' bytes=%llu (skipped when replayed)",
                 w->id, path, (unsigned long long)scan.bad_bytes);
    if (scan.entries)
        hn_warn("event=spool_found worker=%d file='%s' entries=%llu records=%llu bytes=%llu "
                "(replayed once Redis is reachable)", w->id, path,
                (unsigned long long)scan.entries, (unsigned long long)scan.records,
                (unsigned long long)w->sp.end);
    spool_stats(w);
    return HN_OK;
}

int hn_worker_adopt_spool(hn_worker *w, const char *path, char *err, size_t cap) {
    hn_spool o;
    hn_spool_scan scan;
    char e[600];
    if (!w->spool_on) return HN_OK;
    if (hn_spool_open(&o, path, false, false, HN_SPOOL_SYNC_NO, &scan, e, sizeof(e)) != HN_OK) {
        snprintf(err, cap, "spool: %s", e);
        return HN_ERR;
    }
    uint64_t off = 0, skipped, n = 0;
    hn_spool_entry en;
    hn_spool_sync policy = w->sp.sync;
    w->sp.sync = HN_SPOOL_SYNC_NO;             /* synced once below */
    while (hn_spool_read(&o, &off, &en, &skipped) == HN_OK) {
        if (hn_spool_append(&w->sp, en.p, en.len, en.ncmds, en.nrec) != HN_OK) {
            w->sp.sync = policy;
            snprintf(err, cap, "spool: cannot move %s into %s: %s", path, w->sp.path,
                     strerror(errno));
            hn_spool_close(&o);
            return HN_ERR;
        }
        w->sp_records += en.nrec;
        n++;
    }
    w->sp.sync = policy;
    hn_spool_sync_now(&w->sp);
    unlink(path);
    hn_spool_close(&o);
    hn_warn("event=spool_adopted worker=%d from='%s' entries=%llu", w->id, path,
            (unsigned long long)n);
    spool_stats(w);
    return HN_OK;
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

hn_reason hn_worker_backlogged(const hn_worker *w) {
    if (w->spool_on) {
        /* What the file holds unacknowledged, and what the next flush adds. */
        uint64_t pending = w->cmds.len;
        for (uint32_t i = 0; i < w->nshards; i++) pending += w->shard[i].len;
        if (w->sp.end - w->sp_aoff + pending >= (uint64_t)w->col->cfg.spool_max_bytes)
            return HN_R_SPOOL_FULL;
        /* The disk refuses writes: what waits is in memory, and bounded. */
        if (w->spool_failing && hn_rconn_buffered(w->rc) > (size_t)w->col->cfg.redis_max_pending)
            return HN_R_SPOOL_FULL;
    }
    /* No spool (or it cannot be written): what waits for Redis is in memory. */
    if (!hn_rconn_up(w->rc) && hn_rconn_buffered(w->rc) > (size_t)w->col->cfg.redis_max_pending)
        return HN_R_REDIS_UNAVAILABLE;
    return HN_R_OK;
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
        char key[HN_KEY_CAP], hdr[8];
        size_t kl = hn_key_stream(key, s, w->nshards);
        hn_buf hb = {hdr, 0, sizeof(hdr)};
        msgpack_packer hp;
        msgpack_packer_init(&hp, &hb, hn_buf_msgpack_write);
        msgpack_pack_array(&hp, w->shard_n[s]);
        hn_resp_cmd(&w->cmds, 8);
        hn_resp_str(&w->cmds, "XADD");
        hn_resp_arg(&w->cmds, key, kl);
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
    bool spooled = false;
    if (w->spool_on) {
        bool slow = hn_rconn_buffered(w->rc) > (size_t)c->cfg.redis_max_pending;
        if (w->sp.end == 0 && (!hn_rconn_up(w->rc) || slow))
            spool_begin(w, hn_rconn_up(w->rc) ? "redis slow" : "redis down");
        if (w->sp.end > 0 || !hn_rconn_up(w->rc) || slow)
            spooled = spool_put(w, w->cmds.p, w->cmds.len, w->ncmds, w->flush_records);
    }
    if (!spooled) hn_rconn_send(w->rc, w->cmds.p, w->cmds.len, w->ncmds, w->flush_records);
    unsigned bucket = 0;
    while (bucket < HN_BATCH_BUCKETS - 1 && (1u << bucket) < w->flush_records) bucket++;
    HN_STAT_ADD(w->st.batch_hist[bucket], 1);
    HN_STAT_ADD(w->st.batch_sum, w->flush_records);
    HN_STAT_ADD(w->st.flushes, 1);
    hn_buf_reset(&w->cmds);
    w->ncmds = 0;
    w->flush_records = 0;
    HN_STAT_SET(w->st.redis_buffered, hn_rconn_buffered(w->rc));
    if (spooled) spool_pump(w);
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
    if (w->spool_on || !hn_rconn_up(w->rc)) return false;    /* the spool takes the excess */
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
    bool up = hn_rconn_up(w->rc);
    if (w->spool_on && !up) spool_begin(w, "stopping");      /* what waits in memory */
    /* Done when Redis has everything, or the spool does (Redis down). */
    bool done = hn_rconn_groups(w->rc) == 0 && (!w->spool_on || w->sp.end == 0 || !up);
    if (done || hn_mono_ms() >= w->stop_deadline_ms) {
        if (w->spool_on && hn_rconn_groups(w->rc)) {
            hn_rconn_halt(w->rc);           /* the deadline: what is in flight goes to the file */
            spool_begin(w, "stopping");
        }
        if (w->spool_on) {
            hn_spool_sync_now(&w->sp);
            if (w->sp.end)
                hn_warn("event=spool_kept worker=%d file='%s' records=%llu (replayed at the next start)",
                        w->id, w->sp.path, (unsigned long long)w->sp_records);
        }
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
    hn_bans_release(w->col->bans, &w->bref);
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
    w->sp.fd = -1;
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

    hn_rconn_cbs cbs = {on_group_done, on_redis_state, NULL};
    w->rc = c->rcfg.cluster ? hn_rconn_create_cluster(w->base, &c->rcfg, &cbs, w)
                            : hn_rconn_create(w->base, &c->raddr, &cbs, w);
    hn_rconn_set_reply_timeout(w->rc, (int)c->cfg.redis_timeout_ms);
    hn_rconn_set_connect_timeout(w->rc, (int)c->cfg.redis_connect_timeout_ms);
    hn_rconn_set_flush_wait(w->rc, (int)c->cfg.batch_wait_us);
    if (c->cfg.spool_dir[0]) {
        if (spool_open(w, err, cap) != HN_OK) goto fail;
        w->pump_ev = evtimer_new(w->base, on_pump, w);
        w->spool_timer = event_new(w->base, -1, EV_PERSIST, on_spool_tick, w);
        struct timeval stv = {SPOOL_TICK_MS / 1000, (SPOOL_TICK_MS % 1000) * 1000};
        event_add(w->spool_timer, &stv);
    }
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
    /* keyed by a hash of (widget key, session) in the IPv6 space, /128 */
    w->msg_rl = hn_rl_create((double)c->cfg.chat_msg_per_min / 60.0, (double)c->cfg.chat_msg_burst,
                             32, 128, MSG_RL_SLOTS);

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
    if ((c->http_on || c->https_on) && hn_http_worker_start(w, err, cap) != HN_OK) goto fail;
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
    hn_rl_destroy(w->msg_rl);
    if (w->udp_ev) event_free(w->udp_ev);
    if (w->stop_ev) event_free(w->stop_ev);
    if (w->resume_timer) event_free(w->resume_timer);
    if (w->tick) event_free(w->tick);
    if (w->stop_timer) event_free(w->stop_timer);
    if (w->udp_fd >= 0) close(w->udp_fd);
    hn_rconn_destroy(w->rc);
    if (w->spool_timer) event_free(w->spool_timer);
    if (w->pump_ev) event_free(w->pump_ev);
    hn_spool_close(&w->sp);
    hn_buf_free(&w->taken);
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
