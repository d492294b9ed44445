/*
 * pg.h: the one way herenow's processes connect to PostgreSQL
 * (HERENOW_DATABASE_URL: a libpq connection string or URI).
 *
 * Blocking libpq; notices go to the debug log; application_name and
 * statement_timeout are set for the session when asked for, a connect
 * timeout before the URL so that one given in the URL wins.
 */
#ifndef HN_PG_H
#define HN_PG_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hn_pg_opts {
    const char *appname;              /* application_name; NULL: as the URL / PGAPPNAME say */
    int64_t     connect_timeout_s;    /* 0: libpq's default (or the URL's) */
    int64_t     statement_timeout_ms; /* 0: as the server, role or URL set it */
} hn_pg_opts;

/* A connected session, or NULL with the first line of libpq's reason in err. */
PGconn *hn_pg_connect(const char *url, const hn_pg_opts *o, char *err, size_t cap);

/* The advisory lock that orders erasures and drain transactions
 * (sql/009_erasures.sql): the erase route takes it, each drain transaction
 * takes it shared before it reads the tombstones. */
#define HN_PG_LOCK_ERASE "29384939580321657"

/* Encryption at rest (common/datakey.h, sql/010_data_at_rest.sql): checks
 * the key ring against hn_data_keys. Always: a key of the ring that the
 * table knows is the same key (its check value opens), and the index key's
 * fingerprint is the table's. HN_DK_ALL: every key the table names is in
 * the ring (a start, herenowctl). HN_DK_ENROLL: first, on its own, the
 * sealing key and the index fingerprint go into the table when missing.
 * HN_ERR with a one-line reason; HN_OK also when the table does not exist
 * yet (a schema before migration 010). */
#define HN_DK_ALL    1
#define HN_DK_ENROLL 2
int hn_pg_check_data_keys(PGconn *pg, int mode, char *err, size_t cap);

/* Length of the first line of a libpq message (they end in '\n' and may
 * carry DETAIL lines that a one-line log does not want). */
int hn_pg_line(const char *msg);

#endif
