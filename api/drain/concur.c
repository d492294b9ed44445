/*
 * concur.c: fills the per-minute concurrency rollup (concur.h).
 *
 * Worker 0 of each api process's drain, every HN_DRAIN_CONC_EVERY_MS:
 *
 *   SELECT hn_fill_concurrency(live window, minutes per widget, budget)
 *
 * one statement, one transaction (sql/006 says how: widgets furthest behind
 * first, each one's mark row locked SKIP LOCKED, a minute range deleted and
 * rewritten). Several api processes at once fill different widgets, and a
 * fill that fails or is run twice leaves the rollup as one that succeeded
 * once. While a backlog is left (the first fill after the upgrade, a long
 * PostgreSQL outage) the next call comes after HN_DRAIN_CONC_MORE_MS, so a
 * backfill goes at about HN_DRAIN_CONC_MINUTES per half second per widget,
 * with the drain's batches in between.
 */
#include "api/drain/concur.h"

#include "api/drain/pg.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>

static const char fill_sql[] = "SELECT hn_fill_concurrency($1::integer, $2::integer, $3::integer)";

int64_t hn_drain_concurrency(hn_drain_worker *d) {
    uint64_t now = hn_mono_ms();
    if (now - d->last_conc_ms < d->conc_every_ms) return 0;
    if (d->pg == NULL) return -1;
    d->last_conc_ms = now;
    char win[24], mins[24], budget[24];
    snprintf(win, sizeof(win), "%lld", (long long)d->cfg->live_window_s);
    snprintf(mins, sizeof(mins), "%d", HN_DRAIN_CONC_MINUTES);
    snprintf(budget, sizeof(budget), "%d", HN_DRAIN_CONC_BUDGET_MS);
    const char *p[] = {win, mins, budget};
    PGresult *r = PQexecParams(d->pg, fill_sql, 3, NULL, p, NULL, NULL, 0);
    if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        hn_warn("event=concurrency_fill_error err='%s'", r ? PQresultErrorMessage(r) : PQerrorMessage(d->pg));
        if (r) PQclear(r);
        d->conc_every_ms = HN_DRAIN_CONC_FAIL_MS;
        if (PQstatus(d->pg) != CONNECTION_OK) hn_drain_pg_close(d);
        return -1;
    }
    int64_t n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    /* a whole chunk for some widget: probably more behind it */
    d->conc_every_ms = n >= HN_DRAIN_CONC_MINUTES ? HN_DRAIN_CONC_MORE_MS : HN_DRAIN_CONC_EVERY_MS;
    if (n > 0) hn_debug("event=concurrency_filled minutes=%lld", (long long)n);
    return n;
}
