/* pg.c: PostgreSQL sessions set up the same way in every process (pg.h). */
#include "common/pg.h"

#include "common/datakey.h"
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

/* What a key's check value seals (any text would do: it only has to open). */
#define DK_CHECK "herenow data key check"
/* The row of the index key's fingerprint (never a key id: the key file
 * reserves the name). */
#define DK_INDEX "index"

/* HN_OK, HN_ERR with err, or HN_AGAIN when there is no table yet (a schema
 * before migration 010: by its SQLSTATE, not its possibly translated text). */
static int dk_insert(PGconn *pg, const char *id, const char *cv, char *err, size_t cap) {
    const char *p[] = {id, cv};
    PGresult *r = PQexecParams(pg, "INSERT INTO hn_data_keys (id, check_value) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
                               2, NULL, p, NULL, NULL, 0);
    int rc = HN_OK;
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE), *m = PQresultErrorMessage(r);
        snprintf(err, cap, "hn_data_keys: %.*s", hn_pg_line(m), m);
        rc = st && strcmp(st, "42P01") == 0 ? HN_AGAIN : HN_ERR;
    }
    PQclear(r);
    return rc;
}

/* The index fingerprint and the sealing key into hn_data_keys, when missing. */
static int dk_enroll(PGconn *pg, const char *index, char *err, size_t cap) {
    if (!hn_dk_enabled()) return HN_OK;
    hn_buf cv = {0};
    hn_dk_seal(&cv, DK_CHECK, sizeof(DK_CHECK) - 1);
    hn_buf_append(&cv, "", 1);
    int rc = dk_insert(pg, DK_INDEX, index, err, cap);
    if (rc == HN_OK) rc = dk_insert(pg, hn_dk_current(), cv.p, err, cap);
    hn_buf_free(&cv);
    return rc;
}

int hn_pg_check_data_keys(PGconn *pg, int mode, char *err, size_t cap) {
    char index[HN_DK_INDEX_CHECK_LEN + 1], db_index[HN_DK_INDEX_CHECK_LEN + 1] = "";
    hn_dk_index_check(index);
    /* HN_DK_ENROLL without HN_DK_ALL (the drain): enrolment first, on its
     * own — a process whose key is in its file must be known to the
     * database whatever else the table holds (a newer key of a rotation it
     * has not heard of), or a rotate could release that key. With
     * HN_DK_ALL (a start): only once the check passed, so that a refused
     * start leaves nothing behind. */
    if ((mode & HN_DK_ENROLL) && !(mode & HN_DK_ALL)) {
        int rc = dk_enroll(pg, index, err, cap);
        if (rc != HN_OK) return rc == HN_AGAIN ? HN_OK : HN_ERR;
    }
    PGresult *r = PQexec(pg, "SELECT id, check_value FROM hn_data_keys ORDER BY created_at, id");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        bool missing = st && strcmp(st, "42P01") == 0;      /* undefined_table: before 010 */
        if (!missing) {
            const char *m = PQresultErrorMessage(r);
            snprintf(err, cap, "hn_data_keys: %.*s", hn_pg_line(m), m);
        }
        PQclear(r);
        return missing ? HN_OK : HN_ERR;
    }
    int rc = HN_OK;
    /* the keys first (a missing key is the likelier mistake), the index after */
    for (int i = 0; i < PQntuples(r) && rc == HN_OK; i++) {
        const char *id = PQgetvalue(r, i, 0), *cv = PQgetvalue(r, i, 1);
        if (strcmp(id, DK_INDEX) == 0) {
            snprintf(db_index, sizeof(db_index), "%s", cv);
            continue;
        }
        char cid[HN_DK_ID_MAX + 1];
        hn_dk_id_of(cv, strlen(cv), cid);
        if (!hn_dk_enabled()) {
            if (!(mode & HN_DK_ALL)) continue;
            snprintf(err, cap, "the database holds values sealed under key '%s': set HERENOW_DATA_KEY_FILE "
                     "(docs/OPERATIONS.md, Data at rest)", id);
            rc = HN_ERR;
        } else if (!hn_dk_has(id, strlen(id))) {
            if (!(mode & HN_DK_ALL)) continue;
            snprintf(err, cap, "the database holds values sealed under key '%s', which HERENOW_DATA_KEY_FILE "
                     "does not have (keep a key in the file until `herenowctl key rotate` has moved every value off it)", id);
            rc = HN_ERR;
        } else {
            /* a key of the ring: under that id, the same key */
            hn_buf t = {0};
            if (strcmp(cid, id) != 0 || hn_dk_open(&t, cv, strlen(cv)) != HN_OK) {
                snprintf(err, cap, "key '%s' of HERENOW_DATA_KEY_FILE is not the key '%s' the database's values "
                         "were sealed with", id, id);
                rc = HN_ERR;
            }
            hn_buf_free(&t);
        }
    }
    PQclear(r);
    if (rc == HN_OK && hn_dk_enabled() && db_index[0] && strcmp(db_index, index) != 0) {
        snprintf(err, cap, "the email index key of HERENOW_DATA_KEY_FILE is not the database's (its `index` line, "
                 "or without one its first key, must stay as it was: docs/OPERATIONS.md, Data at rest)");
        rc = HN_ERR;
    }
    if (rc == HN_OK && (mode & HN_DK_ENROLL) && (mode & HN_DK_ALL) && hn_dk_enabled()) {
        int er = dk_enroll(pg, index, err, cap);
        if (er != HN_OK) return er == HN_AGAIN ? HN_OK : HN_ERR;
        /* another process enrolled first: what it wrote must agree too */
        return hn_pg_check_data_keys(pg, HN_DK_ALL, err, cap);
    }
    return rc;
}
