/* pg.c: PostgreSQL sessions set up the same way in every process (pg.h). */
#include "common/pg.h"
#include "common/log.h"

#include <stdio.h>
#include <string.h>

int hn_pg_line(const char *msg) {
    return msg ? (int)strcspn(msg, "\n") : 0;
}

static void quiet_notice(void *arg, const char *msg) {
    (void)arg;
    hn_debug("event=pg_notice msg='%.*s'", hn_pg_line(msg), msg);
}

PGconn *hn_pg_connect(const char *url, const hn_pg_opts *o, char *err, size_t cap) {
    char ct[24], st[24];
    snprintf(ct, sizeof(ct), "%lld", (long long)o->connect_timeout_s);
    snprintf(st, sizeof(st), "%lld", (long long)o->statement_timeout_ms);
    /* connect_timeout before dbname: a value in the URL wins. */
    const char *const keys[] = {"connect_timeout", "dbname", NULL};
    const char *const vals[] = {ct, url, NULL};
    PGconn *pg = PQconnectdbParams(o->connect_timeout_s > 0 ? keys : keys + 1,
                                   o->connect_timeout_s > 0 ? vals : vals + 1, 1);
    if (pg == NULL) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    if (PQstatus(pg) != CONNECTION_OK) {
        const char *e = PQerrorMessage(pg);
        snprintf(err, cap, "%.*s", hn_pg_line(e), e);
        PQfinish(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg, quiet_notice, NULL);
    if (o->statement_timeout_ms <= 0 && o->appname == NULL) return pg;
    /* NULL leaves a setting as it is (set_config's value is then the current one) */
    const char *params[] = {o->statement_timeout_ms > 0 ? st : NULL, o->appname};
    PGresult *r = PQexecParams(pg,
                               "SELECT set_config('statement_timeout',"
                               " coalesce($1, current_setting('statement_timeout')), false),"
                               " set_config('application_name',"
                               " coalesce($2, current_setting('application_name')), false)",
                               2, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *e = PQresultErrorMessage(r);
        snprintf(err, cap, "session setup: %.*s", hn_pg_line(e), e);
        PQclear(r);
        PQfinish(pg);
        return NULL;
    }
    PQclear(r);
    return pg;
}
