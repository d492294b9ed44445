/*
 * pg.c: the drain's PostgreSQL side (pg.h), over the worker's blocking
 * PGconn: the connection and its temp tables, the batch's one transaction
 * (COPY of batch.c's texts, then sql.c's statements), partitions and the
 * periodic sweep and retention.
 */
#include "api/drain/pg.h"

#include "api/drain/legacy.h"
#include "api/drain/sql.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/pct.h"
#include "common/pg.h"
#include "proto/keys.h"

#include <stdio.h>
#include <stdlib.h>

void hn_drain_pg_close(hn_drain_worker *d) {
    if (d->pg) PQfinish(d->pg);
    d->pg = NULL;
    d->pg_ready = false;
    d->part_lo = d->part_hi = 0;
}

static bool pg_ok(hn_drain_worker *d, PGresult *r, ExecStatusType want, const char *what) {
    if (r && PQresultStatus(r) == want) return true;
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(d->pg);
    hn_warn("event=drain_pg_error what=%s err='%s'", what, msg);
    snprintf(d->last_err, sizeof(d->last_err), "%s: %s", what, msg);
    /* a data exception, a constraint (but the unique key: see copy_in) or
     * a limit: the same batch will fail the same way every time */
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    d->data_error = state && (strncmp(state, "22", 2) == 0 || strncmp(state, "54", 2) == 0 ||
                              (strncmp(state, "23", 2) == 0 && strcmp(state, "23505") != 0));
    return false;
}

static int pg_exec(hn_drain_worker *d, const char *what, const char *sql, int n,
                   const char *const *p) {
    PGresult *r = PQexecParams(d->pg, sql, n, NULL, p, NULL, NULL, 0);
    bool ok = (r && PQresultStatus(r) == PGRES_TUPLES_OK) || pg_ok(d, r, PGRES_COMMAND_OK, what);
    PQclear(r);
    return ok ? HN_OK : HN_ERR;
}

static int ensure_partitions(hn_drain_worker *d, int64_t lo_day, int64_t hi_day) {
    if (d->part_hi && lo_day >= d->part_lo && hi_day <= d->part_hi) return HN_OK;
    char lo[16], hi[16];
    snprintf(lo, sizeof(lo), "%lld", (long long)lo_day);
    snprintf(hi, sizeof(hi), "%lld", (long long)hi_day);
    const char *p[] = {lo, hi};
    if (pg_exec(d, "partitions", hn_drain_sql_partitions, 2, p) != HN_OK) return HN_ERR;
    if (d->part_hi == 0 || lo_day < d->part_lo) d->part_lo = lo_day;
    if (hi_day > d->part_hi) d->part_hi = hi_day;
    return HN_OK;
}

int hn_drain_pg_connect(hn_drain_worker *d) {
    if (d->pg && PQstatus(d->pg) == CONNECTION_OK && d->pg_ready) return HN_OK;
    hn_drain_pg_close(d);
    char err[512];
    d->pg = hn_pg_connect(d->cfg->database_url, &(hn_pg_opts){0}, err,
                          sizeof(err));
    if (d->pg == NULL) {
        hn_warn("event=drain_pg_connect_failed err='%s'", err);
        return HN_ERR;
    }
    PGresult *r = PQexec(d->pg, hn_drain_sql_setup);
    bool ok = pg_ok(d, r, PGRES_COMMAND_OK, "setup");
    PQclear(r);
    if (!ok) { hn_drain_pg_close(d); return HN_ERR; }
    /* the key sealing what it writes (common/datakey.h) is the database's
     * (keys it does not have are the api's start's concern, not the drain's:
     * it reads none of them) */
    if (hn_pg_check_data_keys(d->pg, HN_DK_ENROLL, err, sizeof(err)) != HN_OK) {
        hn_error("event=drain_data_keys_refused err='%s'", err);
        hn_drain_pg_close(d);
        return HN_ERR;
    }
    d->pg_ready = true;
    /* the tombstones are read again from the first: a restored database
     * may number them anew */
    hn_erased_free(&d->erased);
    int64_t today = (int64_t)(hn_now_ms() / 86400000);
    if (ensure_partitions(d, today - 1, today + 7) != HN_OK) { hn_drain_pg_close(d); return HN_ERR; }
    hn_info("event=drain_pg_connected");
    return HN_OK;
}

static int64_t rows_affected(PGresult *r) {
    const char *s = PQcmdTuples(r);
    return s && *s ? atoll(s) : 0;
}

/* COPY … FROM STDIN in three steps: begin, put (any number of times), end.
 * end reads the result: HN_AGAIN on a unique violation (a record of the
 * batch was written meanwhile, by another consumer). abort_msg non-NULL:
 * the COPY is ended as failed (its result is then an error, not logged). */
static int copy_begin(hn_drain_worker *d, const char *sql, const char *what) {
    PGresult *r = PQexec(d->pg, sql);
    bool ok = pg_ok(d, r, PGRES_COPY_IN, what);
    PQclear(r);
    return ok ? HN_OK : HN_ERR;
}

static int copy_put(hn_drain_worker *d, const char *p, size_t len, const char *what) {
    for (size_t off = 0; off < len;) {
        size_t n = len - off > (1u << 20) ? (1u << 20) : len - off;
        if (PQputCopyData(d->pg, p + off, (int)n) != 1) {
            hn_warn("event=drain_pg_error what=%s err='%s'", what, PQerrorMessage(d->pg));
            return HN_ERR;
        }
        off += n;
    }
    return HN_OK;
}

static int copy_end(hn_drain_worker *d, const char *what, const char *abort_msg) {
    if (PQputCopyEnd(d->pg, abort_msg) != 1) {
        hn_warn("event=drain_pg_error what=%s err='%s'", what, PQerrorMessage(d->pg));
        return HN_ERR;
    }
    int rc = HN_OK;
    PGresult *r = PQgetResult(d->pg);
    if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
        const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        if (abort_msg) {
            rc = HN_ERR;
        } else if (state && strcmp(state, "23505") == 0) {
            hn_info("event=drain_conflict what=%s", what);
            rc = HN_AGAIN;
        } else {
            pg_ok(d, r, PGRES_COMMAND_OK, what);
            rc = HN_ERR;
        }
    }
    PQclear(r);
    while ((r = PQgetResult(d->pg)) != NULL) PQclear(r);
    return rc;
}

/* One COPY of the text in b (nothing when it is empty). */
static int copy_in(hn_drain_worker *d, const char *sql, const hn_buf *b, const char *what) {
    if (b->len == 0) return HN_OK;
    if (copy_begin(d, sql, what) != HN_OK) return HN_ERR;
    if (copy_put(d, b->p, b->len, what) != HN_OK) return HN_ERR;
    return copy_end(d, what, NULL);
}

/* The events' rows go out in parts of this size while the batch is built. */
#define STREAM_PART (128u * 1024u)
#define HN_DRAIN_NO_PARTITION 1

static bool partitions_cover(const hn_drain_worker *d, uint64_t min_ts, uint64_t max_ts) {
    int64_t lo = (int64_t)(min_ts / 86400000000ull), hi = (int64_t)(max_ts / 86400000000ull);
    return d->part_hi && lo >= d->part_lo && hi <= d->part_hi;
}

/* A fresh batch, in its open transaction: the events' COPY is open while
 * the batch is built, and gets its rows in parts as they are made, so that
 * PostgreSQL parses and indexes one part while the drain decodes the next
 * (the build's C time runs beside the COPY instead of before it; on two
 * cores that was a fifth of the batch, docs/BENCHMARKS.md). Page views,
 * the aggregates and the rest are built meanwhile and sent after. HN_OK:
 * built, events written; HN_DRAIN_NO_PARTITION: a record's day has no
 * partition yet (the COPY is abandoned: the caller rolls back, makes them
 * and writes the batch the other way); else copy_end's or HN_ERR. */
static int build_streaming(hn_drain_worker *d) {
    hn_drain_batch *b = &d->batch;
    if (copy_begin(d, hn_drain_sql_copy_ev, "copy_events") != HN_OK) return HN_ERR;
    hn_drain_batch_build_begin(b);
    for (size_t i = b->lo; i < b->hi; i++) {
        hn_drain_batch_build_entry(b, i);
        if (b->min_ts && !partitions_cover(d, b->min_ts, b->max_ts)) {
            copy_end(d, "copy_events", "herenow: a day without partitions");
            return HN_DRAIN_NO_PARTITION;
        }
        if (b->ev.len >= STREAM_PART) {
            if (copy_put(d, b->ev.p, b->ev.len, "copy_events") != HN_OK) return HN_ERR;
            hn_buf_reset(&b->ev);
        }
    }
    hn_drain_batch_build_end(b);
    if (copy_put(d, b->ev.p, b->ev.len, "copy_events") != HN_OK) return HN_ERR;
    hn_buf_reset(&b->ev);
    return copy_end(d, "copy_events", NULL);
}

/* Fills the batch's existing with its records that PostgreSQL has already
 * (a redelivered batch: its first delivery may have committed). */
static int find_existing(hn_drain_worker *d) {
    hn_seen_clear(&d->batch.existing);
    int rc = copy_in(d, hn_drain_sql_copy_ids, &d->batch.ids, "copy_ids");
    if (rc != HN_OK) return HN_ERR;
    PGresult *r = PQexec(d->pg, hn_drain_sql_existing);
    if (!pg_ok(d, r, PGRES_TUPLES_OK, "existing")) {
        PQclear(r);
        return HN_ERR;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        uint8_t id[16];
        if (hn_uuid_parse(PQgetvalue(r, i, 0), id)) hn_seen_add(&d->batch.existing, id);
    }
    PQclear(r);
    return HN_OK;
}

/* BEGIN, the erasure lock shared, and the tombstones written since the
 * last read (sql/009_erasures.sql): from here to the end of the
 * transaction no erasure runs, and every one committed before is in
 * d->erased, which the build consults. HN_ERR: no transaction is open. */
static int begin_batch(hn_drain_worker *d) {
    /* read committed whatever the database's default: the tombstones are
     * read by a statement after the lock, with a snapshot taken after it */
    PGresult *r = PQexec(d->pg, "BEGIN ISOLATION LEVEL READ COMMITTED");
    bool ok = pg_ok(d, r, PGRES_COMMAND_OK, "begin");
    PQclear(r);
    if (!ok) return HN_ERR;
    r = PQexec(d->pg, hn_drain_sql_erase_lock);
    ok = pg_ok(d, r, PGRES_TUPLES_OK, "erase_lock");
    PQclear(r);
    if (ok) {
        char seq[24];
        snprintf(seq, sizeof(seq), "%lld", (long long)d->erased.last_seq);
        const char *p[] = {seq};
        r = PQexecParams(d->pg, hn_drain_sql_erasures, 1, NULL, p, NULL, NULL, 0);
        ok = pg_ok(d, r, PGRES_TUPLES_OK, "erasures");
        for (int i = 0; ok && i < PQntuples(r); i++) {
            int64_t s, wid, at;
            uint8_t digest[HN_ERASED_DIGEST];
            const char *hex = PQgetvalue(r, i, 2);
            if (!hn_parse_i64(PQgetvalue(r, i, 0), &s) || !hn_parse_i64(PQgetvalue(r, i, 1), &wid) ||
                !hn_parse_i64(PQgetvalue(r, i, 3), &at) || strlen(hex) != 2 * HN_ERASED_DIGEST ||
                wid < 0 || wid > UINT32_MAX || at < 0)
                continue;
            bool good = true;
            for (int k = 0; k < HN_ERASED_DIGEST && good; k++) {
                int hi = hn_hexval((unsigned char)hex[2 * k]), lo = hn_hexval((unsigned char)hex[2 * k + 1]);
                good = hi >= 0 && lo >= 0;
                if (good) digest[k] = (uint8_t)(hi << 4 | lo);
            }
            if (good) hn_erased_add(&d->erased, (uint32_t)wid, digest, (uint64_t)at);
            if (s > d->erased.last_seq) d->erased.last_seq = s;
        }
        PQclear(r);
    }
    if (ok) return HN_OK;
    r = PQexec(d->pg, "ROLLBACK");
    PQclear(r);
    return HN_ERR;
}

/* Where a batch's time goes, for the debug log. */
enum { ST_ROWS, ST_AGG, ST_SESSIONS, ST_ROLLUP, ST_DIMS, ST_COMMIT, ST__N };

static void step(uint64_t *steps, int i, uint64_t *t) {
    uint64_t n = hn_mono_us();
    steps[i] = n - *t;
    *t = n;
}

/* One transaction for the whole batch (pg.h says what it returns). */
int hn_drain_pg_write_batch(hn_drain_worker *d, int64_t *sessions) {
    hn_drain_batch *b = &d->batch;
    uint64_t steps[ST__N] = {0};
    uint64_t t0 = hn_mono_us(), tt;
    PGresult *r;
    bool ok, streamed = false;
    int rc = HN_OK;
    int64_t erased_seq = 0;
    b->min_ts = b->max_ts = 0;
    d->data_error = false;

    if (!b->redelivered) {
        /* the usual case: built while the events' rows are sent */
        if (begin_batch(d) != HN_OK) goto fail_noroll;
        rc = build_streaming(d);
        d->build_us = hn_mono_us() - t0;
        tt = hn_mono_us();
        if (rc == HN_OK) {
            streamed = true;
            rc = copy_in(d, hn_drain_sql_copy_pv, &b->pv, "copy_page_views");
            if (rc != HN_OK) goto fail;
            goto rows_done;
        }
        if (rc != HN_DRAIN_NO_PARTITION) goto fail;
        /* a record of a day without partitions (a spool replayed long
         * after): they are made outside the batch's transaction, then the
         * batch is built first and written */
        r = PQexec(d->pg, "ROLLBACK");
        ok = pg_ok(d, r, PGRES_COMMAND_OK, "rollback");
        PQclear(r);
        if (!ok) goto fail_noroll;
        hn_info("event=drain_partitions_first min_ts=%llu max_ts=%llu",
                (unsigned long long)b->min_ts, (unsigned long long)b->max_ts);
        rc = HN_OK;
        t0 = hn_mono_us();
    }

    erased_seq = d->erased.last_seq;
    if (b->redelivered) hn_drain_batch_ids(b);
    else hn_drain_batch_build(b);
    d->build_us = hn_mono_us() - t0;
    if (b->min_ts) {
        int64_t lo = (int64_t)(b->min_ts / 86400000000ull);
        int64_t hi = (int64_t)(b->max_ts / 86400000000ull);
        if (ensure_partitions(d, lo, hi) != HN_OK) return HN_ERR;
    }

    /* a fresh batch is built before its transaction (partitions first):
     * the erasures committed since are read in it, so build it again */
    if (begin_batch(d) != HN_OK) goto fail_noroll;
    if (!b->redelivered && d->erased.last_seq != erased_seq) hn_drain_batch_build(b);
    tt = hn_mono_us();
    if (b->redelivered) {
        if (find_existing(d) != HN_OK) goto fail;
        hn_drain_batch_build(b);
    }
    /* events, then page views: the order of the streamed path, so that two
     * consumers writing the same entries (a claim of a slow batch) meet on
     * the same unique key first (23505: HN_AGAIN), never each holding what
     * the other waits for (a deadlock) */
    if ((rc = copy_in(d, hn_drain_sql_copy_ev, &b->ev, "copy_events")) != HN_OK ||
        (rc = copy_in(d, hn_drain_sql_copy_pv, &b->pv, "copy_page_views")) != HN_OK)
        goto fail;
rows_done:
    step(steps, ST_ROWS, &tt);
    if (copy_in(d, hn_drain_sql_copy_agg, &b->agg, "copy_sessions") != HN_OK ||
        copy_in(d, hn_drain_sql_copy_hourly, &b->hourly, "copy_hourly") != HN_OK ||
        copy_in(d, hn_drain_sql_copy_dims, &b->dims, "copy_dims") != HN_OK) {
        rc = HN_ERR;
        goto fail;
    }
    step(steps, ST_AGG, &tt);
    if (b->nsessions > 0) {
        r = PQexec(d->pg, hn_drain_sql_sessions);
        ok = pg_ok(d, r, PGRES_COMMAND_OK, "sessions");
        *sessions = ok ? rows_affected(r) : 0;
        PQclear(r);
        if (!ok) { rc = HN_ERR; goto fail; }
        step(steps, ST_SESSIONS, &tt);
        if (pg_exec(d, "rollup", hn_drain_sql_rollup, 0, NULL) != HN_OK) { rc = HN_ERR; goto fail; }
        step(steps, ST_ROLLUP, &tt);
        if (pg_exec(d, "dims", hn_drain_sql_dims, 0, NULL) != HN_OK) { rc = HN_ERR; goto fail; }
        if (pg_exec(d, "referrer_moved", hn_drain_sql_referrer_moved, 0, NULL) != HN_OK) {
            rc = HN_ERR;
            goto fail;
        }
        step(steps, ST_DIMS, &tt);
    }
    if (b->chat.len > 0) {
        if (copy_in(d, hn_drain_sql_copy_chat, &b->chat, "copy_chat") != HN_OK) {
            rc = HN_ERR;
            goto fail;
        }
        for (int i = 0; hn_drain_sql_chat[i]; i++)
            if (pg_exec(d, "chat", hn_drain_sql_chat[i], 0, NULL) != HN_OK) { rc = HN_ERR; goto fail; }
    }
    for (size_t i = 0; i < b->nrejects; i++) {
        char key[HN_KEY_CAP];
        hn_drain_key(d, b->rejects[i].shard, key);
        /* bytea in hex text form: bound as a parameter like everything else */
        hn_buf hex;
        hn_buf_init(&hex, b->rejects[i].rawlen * 2 + 3);
        hn_buf_append(&hex, "\\x", 2);
        for (size_t k = 0; k < b->rejects[i].rawlen; k++)
            hn_buf_printf(&hex, "%02x", (unsigned char)b->rejects[i].raw[k]);
        hn_buf_append(&hex, "", 1);
        const char *p[] = {key, b->rejects[i].id, b->rejects[i].why,
                           b->rejects[i].raw ? hex.p : NULL};
        int prc = pg_exec(d, "reject", hn_drain_sql_reject, 4, p);
        hn_buf_free(&hex);
        if (prc != HN_OK) { rc = HN_ERR; goto fail; }
    }

    hn_drain_worker_failpoint(d, 1);
    r = PQexec(d->pg, "COMMIT");
    ok = pg_ok(d, r, PGRES_COMMAND_OK, "commit");
    PQclear(r);
    if (!ok) goto fail_noroll;
    step(steps, ST_COMMIT, &tt);
    /* streamed: build_us is the build with the events' COPY beside it,
     * rows_us the page views' COPY alone */
    hn_debug("event=drain_batch records=%zu repeats=%zu sessions=%zu redelivered=%d streamed=%d"
             " read_us=%llu build_us=%llu rows_us=%llu agg_us=%llu sessions_us=%llu rollup_us=%llu"
             " dims_us=%llu commit_us=%llu",
             b->nrecords, b->nrepeats, b->nsessions, b->redelivered, streamed,
             (unsigned long long)d->read_us, (unsigned long long)d->build_us,
             (unsigned long long)steps[ST_ROWS], (unsigned long long)steps[ST_AGG],
             (unsigned long long)steps[ST_SESSIONS], (unsigned long long)steps[ST_ROLLUP],
             (unsigned long long)steps[ST_DIMS], (unsigned long long)steps[ST_COMMIT]);
    hn_drain_worker_failpoint(d, 2);
    return HN_OK;

fail:
    r = PQexec(d->pg, "ROLLBACK");
    PQclear(r);
    if (rc == HN_AGAIN && PQstatus(d->pg) == CONNECTION_OK) return HN_AGAIN;
    if (d->data_error && PQstatus(d->pg) == CONNECTION_OK) return HN_DRAIN_BAD;
fail_noroll:
    if (PQstatus(d->pg) != CONNECTION_OK) hn_drain_pg_close(d);
    return HN_ERR;
}

/* Sessions without `end`, partitions ahead, retention. */
void hn_drain_pg_maintenance(hn_drain_worker *d) {
    uint64_t now = hn_mono_ms();
    if (now - d->last_sweep_ms >= HN_DRAIN_SWEEP_EVERY_MS) {
        d->last_sweep_ms = now;
        char win[24];
        snprintf(win, sizeof(win), "%lld", (long long)d->cfg->live_window_s);
        const char *p[] = {win};
        PGresult *r = PQexecParams(d->pg, hn_drain_sql_sweep, 1, NULL, p, NULL, NULL, 0);
        if (pg_ok(d, r, PGRES_COMMAND_OK, "sweep")) {
            pthread_mutex_lock(&d->mu);
            d->m_swept += (uint64_t)rows_affected(r);
            pthread_mutex_unlock(&d->mu);
        }
        PQclear(r);
        /* the sealing key enrolled again if a `key rotate` run with a newer
         * file released it while this process still seals with it: a start
         * without that key is then refused, not left with values it cannot
         * open */
        char err[512];
        if (d->pg && hn_pg_check_data_keys(d->pg, HN_DK_ENROLL, err, sizeof(err)) != HN_OK)
            hn_error("event=drain_data_keys_refused err='%s'", err);
    }
    if (now - d->last_maint_ms >= HN_DRAIN_MAINT_EVERY_MS) {
        d->last_maint_ms = now;
        int64_t today = (int64_t)(hn_now_ms() / 86400000);
        d->part_hi = 0;   /* re-check: the day moved on */
        ensure_partitions(d, today - 1, today + 7);
        PGresult *r = PQexec(d->pg, hn_drain_sql_retention);
        if (pg_ok(d, r, PGRES_TUPLES_OK, "retention"))
            hn_info("event=drain_retention removed=%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
}

