/*
 * key.c: `herenowctl key new|status|rotate`, the keys of encryption at rest
 * (common/datakey.h, docs/OPERATIONS.md "Data at rest").
 *
 *   new      prints a fresh key line ("<id> <64 hex>") for HERENOW_DATA_KEY_FILE
 *   status   the ring, the database's keys (hn_data_keys), and how many
 *            values each column holds per key and in clear
 *   rotate   seals every stored value under the file's last key, in
 *            batches, while the system runs: values in clear (a database
 *            from before the keys) and values under older keys alike. A
 *            batch is one UPDATE … FROM unnest(…) that changes a row only
 *            where it still holds what was read (a drain or api writing
 *            it meanwhile wins; `rotate` again picks it up). When nothing
 *            is left under another key, their hn_data_keys rows go: those
 *            keys may then leave the file.
 */
#include "ctl/ctl.h"

#include "common/buf.h"
#include "common/datakey.h"
#include "common/pg.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void hn_ctl_key_usage(FILE *f) {
    fprintf(f,
            "herenowctl key new [--id ID] [--with-index]\n"
            "  Prints a new key line for HERENOW_DATA_KEY_FILE (append it: the last key seals);\n"
            "  --with-index also an index line first (for a new file: the email index key, kept\n"
            "  while key lines come and go).\n"
            "herenowctl key status\n"
            "  The file's keys, the database's, and the values stored per key and in clear.\n"
            "herenowctl key rotate [--batch N]\n"
            "  Seals every stored name, email, phone and message under the file's last key, in\n"
            "  batches of N (500), while the system runs; then forgets the other keys, which may\n"
            "  leave the file. Exit 1 when some value could not be moved (run it again).\n");
}

static int key_new(const hn_config *cfg, int argc, char **argv) {
    (void)cfg;
    const char *id = NULL;
    bool with_index = false;
    hn_ctl_flag flags[] = {{.name = "id", .type = HN_CTL_STR, .dst = &id},
                           {.name = "with-index", .type = HN_CTL_BOOL, .dst = &with_index}};
    if (hn_ctl_parse_flags("key new", argc, argv, flags, HN_ARRAY_LEN(flags)) != HN_OK) return HN_CTL_EXIT_USAGE;
    char def[32];
    if (id == NULL) {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(def, sizeof(def), "k%Y%m%d%H%M%S", &tm);
        id = def;
    }
    size_t n = strlen(id);
    if (n == 0 || n > HN_DK_ID_MAX || strspn(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") != n ||
        strcmp(id, "index") == 0) {
        hn_ctl_errorf("key new: --id: want 1..16 of A-Z a-z 0-9 _ - (not \"index\")");
        return HN_CTL_EXIT_USAGE;
    }
    unsigned char k[64];
    if (RAND_bytes(k, sizeof(k)) != 1) {
        hn_ctl_errorf("key new: no random bytes");
        return HN_CTL_EXIT_FAIL;
    }
    /* the index line first: it stays when key lines come and go */
    for (int l = with_index ? 0 : 1; l < 2; l++) {
        printf("%s ", l == 0 ? "index" : id);
        for (size_t i = 0; i < 32; i++) printf("%02x", k[32 * l + i]);
        printf("\n");
    }
    OPENSSL_cleanse(k, sizeof(k));
    return HN_CTL_EXIT_OK;
}

/* ---- what is sealed, where -------------------------------------------------------- */

/* One pass of rotate: select_sql reads ($1 cursor, $2 LIKE pattern of the
 * current key, $3 limit) rows of pk then nval values (text, NULL when
 * absent); update_sql takes unnest($1 pk[], then old[] new[] per value,
 * then the email keys[]) and changes a row only where it still holds the
 * old values. email: which value is an email (its key is recomputed), -1
 * none (the pk is selected as it is, not cast: ORDER BY would take a
 * cast column of the same name for the table's). count_sql: the values per key id (or "clear"), for status. */
typedef struct pass {
    const char *what;
    const char *cursor0;
    int         nval;
    int         email;
    const char *select_sql;
    const char *update_sql;
    const char *count_sql;
} pass;

#define KEYID(col) "CASE WHEN " col " LIKE 'hnenc:v1:%' THEN split_part(" col ", ':', 3) ELSE 'clear' END"
#define COUNT(t, col, where) \
    "SELECT " KEYID("v") ", count(*) FROM (SELECT " col " AS v FROM " t " WHERE " where ") x" \
    " WHERE v IS NOT NULL GROUP BY 1 ORDER BY 1"

static const pass passes[] = {
    {"widget_visitor_sessions (visitor_name, visitor_email, visitor_phone)", "0", 3, 1,
     "SELECT id, visitor_name, visitor_email, visitor_phone FROM widget_visitor_sessions"
     " WHERE id > $1::bigint AND (visitor_name NOT LIKE $2 OR visitor_email NOT LIKE $2"
     "  OR visitor_phone NOT LIKE $2 OR (visitor_email IS NOT NULL AND (visitor_email_key IS NULL"
     "  OR visitor_email_key NOT LIKE 'hmac:%')))"
     " ORDER BY id LIMIT $3::integer",
     "UPDATE widget_visitor_sessions s SET visitor_name = u.n1, visitor_email = u.n2,"
     " visitor_phone = u.n3, visitor_email_key = CASE WHEN u.n2 IS NULL THEN s.visitor_email_key ELSE u.k END"
     " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
     "  $8::text[]) AS u(id, o1, n1, o2, n2, o3, n3, k)"
     " WHERE s.id = u.id AND s.visitor_name IS NOT DISTINCT FROM u.o1"
     " AND s.visitor_email IS NOT DISTINCT FROM u.o2 AND s.visitor_phone IS NOT DISTINCT FROM u.o3",
     COUNT("widget_visitor_sessions", "unnest(ARRAY[visitor_name, visitor_email, visitor_phone])", "true")},
    {"widget_visitor_events (event_data of identify)", "00000000-0000-0000-0000-000000000000|0", 3, 1,
     /* the key is "<event_id>|<recv_at in µs since the epoch>" (no text form
      * of a timestamp, which DateStyle and TimeZone would shape): the update
      * finds each row's partition */
     "SELECT event_id || '|' || (extract(epoch FROM recv_at) * 1000000)::bigint, event_data->>'name', event_data->>'email', event_data->>'phone'"
     " FROM widget_visitor_events WHERE event_type = 'id' AND event_id > split_part($1, '|', 1)::uuid"
     " AND (event_data->>'name' NOT LIKE $2 OR event_data->>'email' NOT LIKE $2"
     "  OR event_data->>'phone' NOT LIKE $2)"
     " ORDER BY event_id LIMIT $3::integer",
     "UPDATE widget_visitor_events e SET event_data = jsonb_strip_nulls(jsonb_build_object("
     "  'name', u.n1, 'email', u.n2, 'phone', u.n3))"
     " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],"
     "  $8::text[]) AS u(id, o1, n1, o2, n2, o3, n3, k)"
     " WHERE e.event_id = split_part(u.id, '|', 1)::uuid"
     " AND e.recv_at = 'epoch'::timestamptz + split_part(u.id, '|', 2)::bigint * interval '1 microsecond'"
     " AND e.event_type = 'id'"
     " AND e.event_data->>'name' IS NOT DISTINCT FROM u.o1"
     " AND e.event_data->>'email' IS NOT DISTINCT FROM u.o2"
     " AND e.event_data->>'phone' IS NOT DISTINCT FROM u.o3",
     COUNT("widget_visitor_events",
           "unnest(ARRAY[event_data->>'name', event_data->>'email', event_data->>'phone'])",
           "event_type = 'id'")},
    {"widget_conversation_messages (body)", "00000000-0000-0000-0000-000000000000", 1, -1,
     "SELECT id, body FROM widget_conversation_messages WHERE id > $1::uuid AND body NOT LIKE $2"
     " ORDER BY id LIMIT $3::integer",
     "UPDATE widget_conversation_messages m SET body = u.n1"
     " FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS u(id, o1, n1, k)"
     " WHERE m.id = u.id AND m.body = u.o1",
     COUNT("widget_conversation_messages", "body", "true")},
    {"webhook_deliveries (the message of a body)", "0", 1, -1,
     "SELECT id, body::jsonb #>> '{message,body}' FROM webhook_deliveries"
     " WHERE id > $1::bigint AND body::jsonb #>> '{message,body}' NOT LIKE $2"
     " ORDER BY id LIMIT $3::integer",
     /* in the text: through jsonb, the defused strings of the session
      * (hn_dk_defuse_json) would come back as they were */
     "UPDATE webhook_deliveries d SET body = replace(d.body, to_jsonb(u.o1)::text, to_jsonb(u.n1)::text)"
     " FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) AS u(id, o1, n1, k)"
     " WHERE d.id = u.id AND d.body::jsonb #>> '{message,body}' = u.o1",
     COUNT("webhook_deliveries", "body::jsonb #>> '{message,body}'", "true")},
};

/* An element of a PostgreSQL array literal: NULL, or "…" escaped. */
static void arr_add(hn_buf *a, const char *v, size_t n, bool null) {
    hn_buf_append(a, a->len ? "," : "{", 1);
    if (null) {
        hn_buf_append(a, "NULL", 4);
        return;
    }
    hn_buf_append(a, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '"' || v[i] == '\\') hn_buf_append(a, "\\", 1);
        hn_buf_append(a, v + i, 1);
    }
    hn_buf_append(a, "\"", 1);
}

static const char *arr_end(hn_buf *a) {
    if (a->len == 0) hn_buf_append(a, "{", 1);
    hn_buf_append(a, "}", 2);                 /* and the NUL */
    return a->p;
}

/* true when id is in hn_data_keys now (or the question failed: then the
 * value is left alone). */
static bool enrolled(PGconn *pg, const char *id) {
    const char *p[] = {id};
    PGresult *r = PQexecParams(pg, "SELECT 1 FROM hn_data_keys WHERE id = $1", 1, NULL, p, NULL, NULL, 0);
    bool yes = PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) > 0;
    PQclear(r);
    return yes;
}

typedef struct tally {
    long long moved, failed, skipped;
} tally;

/* One pass, batch by batch. */
static int run_pass(PGconn *pg, const pass *ps, const char *like, long long batch, tally *t) {
    char cursor[128], lim[24];
    snprintf(cursor, sizeof(cursor), "%s", ps->cursor0);
    snprintf(lim, sizeof(lim), "%lld", batch);
    hn_buf a[8] = {{0}}, tmp = {0};
    int rc = HN_CTL_EXIT_OK;
    for (;;) {
        const char *sp[] = {cursor, like, lim};
        PGresult *r = hn_ctl_pg_exec(pg, "key rotate", PGRES_TUPLES_OK, ps->select_sql, 3, sp);
        if (r == NULL) {
            rc = HN_CTL_EXIT_FAIL;
            break;
        }
        int rows = PQntuples(r), narr = 2 + 2 * ps->nval;
        if (rows == 0) {
            PQclear(r);
            break;
        }
        for (int i = 0; i < narr; i++) hn_buf_reset(&a[i]);
        int take = 0;
        for (int i = 0; i < rows; i++) {
            bool ok = true;
            hn_buf nv[3] = {{0}};
            bool null[3] = {false, false, false};
            hn_buf ek = {0};
            for (int c = 0; c < ps->nval; c++) {
                const char *v = PQgetvalue(r, i, 1 + c);
                size_t n = (size_t)PQgetlength(r, i, 1 + c);
                null[c] = PQgetisnull(r, i, 1 + c);
                if (null[c]) continue;
                char id[HN_DK_ID_MAX + 1];
                hn_dk_id_of(v, n, id);
                hn_buf_reset(&tmp);
                /* the database's keys were all in the ring at the start: a
                 * value "sealed" under another id is text that looks sealed
                 * (a visitor's), sealed as it is — unless that id has been
                 * enrolled since (an api started with a newer file): then
                 * it is a value this run cannot open */
                if (id[0] && !hn_dk_has(id, strlen(id)) && !enrolled(pg, id)) {
                    hn_buf_append(&tmp, v, n);
                    id[0] = '\0';
                } else if (hn_dk_open(&tmp, v, n) != HN_OK) {
                    ok = false;
                    break;
                }
                if (strcmp(id, hn_dk_current()) == 0) hn_buf_append(&nv[c], v, n);   /* moved already */
                else hn_dk_seal(&nv[c], tmp.p ? tmp.p : "", tmp.len);
                if (c == ps->email) hn_dk_email_key(&ek, tmp.p ? tmp.p : "", tmp.len);
            }
            if (ok) {
                take++;
                arr_add(&a[0], PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0), false);
                for (int c = 0; c < ps->nval; c++) {
                    arr_add(&a[1 + 2 * c], PQgetvalue(r, i, 1 + c), (size_t)PQgetlength(r, i, 1 + c), null[c]);
                    arr_add(&a[2 + 2 * c], nv[c].p, nv[c].len, null[c]);
                }
                arr_add(&a[narr - 1], ek.p, ek.len, ek.len == 0);
            } else {
                t->failed++;
            }
            for (int c = 0; c < 3; c++) hn_buf_free(&nv[c]);
            if (ek.p) OPENSSL_cleanse(ek.p, ek.cap);
            hn_buf_free(&ek);
        }
        snprintf(cursor, sizeof(cursor), "%s", PQgetvalue(r, rows - 1, 0));
        PQclear(r);
        if (take) {
            const char *up[8];
            for (int i = 0; i < narr; i++) up[i] = arr_end(&a[i]);
            PGresult *u = hn_ctl_pg_exec(pg, "key rotate", PGRES_COMMAND_OK, ps->update_sql, narr, up);
            if (u == NULL) {
                rc = HN_CTL_EXIT_FAIL;
                break;
            }
            long long done = atoll(PQcmdTuples(u));
            PQclear(u);
            t->moved += done;
            t->skipped += take - done;
        }
        if (rows < batch) break;
    }
    if (tmp.p) OPENSSL_cleanse(tmp.p, tmp.cap);
    hn_buf_free(&tmp);
    for (int i = 0; i < 8; i++) hn_buf_free(&a[i]);
    return rc;
}

/* Bans by email: their email key, for a database that had no keys before. */
static int ban_keys(PGconn *pg, tally *t) {
    PGresult *r = hn_ctl_pg_exec(pg, "key rotate", PGRES_TUPLES_OK,
                                 "SELECT id::text, subject FROM visitor_bans WHERE subject_kind = 'email'"
                                 " AND (subject_key IS NULL OR subject_key NOT LIKE 'hmac:%')", 0, NULL);
    if (r == NULL) return HN_CTL_EXIT_FAIL;
    int rc = HN_CTL_EXIT_OK;
    for (int i = 0; i < PQntuples(r) && rc == HN_CTL_EXIT_OK; i++) {
        hn_buf k = {0};
        hn_dk_email_key(&k, PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
        hn_buf_append(&k, "", 1);
        const char *p[] = {PQgetvalue(r, i, 0), k.p};
        PGresult *u = hn_ctl_pg_exec(pg, "key rotate", PGRES_COMMAND_OK,
                                     "UPDATE visitor_bans SET subject_key = $2 WHERE id = $1::bigint", 2, p);
        if (u == NULL) rc = HN_CTL_EXIT_FAIL;
        else t->moved += atoll(PQcmdTuples(u));
        PQclear(u);
        hn_buf_free(&k);
    }
    PQclear(r);
    return rc;
}

static PGconn *connect_checked(const hn_config *cfg, const char *cmd, bool enroll) {
    PGconn *pg = hn_ctl_pg_connect(cfg);
    if (pg == NULL) return NULL;
    char err[512];
    if (hn_pg_check_data_keys(pg, HN_DK_ALL | (enroll ? HN_DK_ENROLL : 0), err, sizeof(err)) != HN_OK) {
        hn_ctl_errorf("%s: %s", cmd, err);
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

static int key_rotate(const hn_config *cfg, int argc, char **argv) {
    uint64_t batch = 500;
    hn_ctl_flag flags[] = {{.name = "batch", .type = HN_CTL_U64, .dst = &batch, .min = 1, .max = 100000}};
    if (hn_ctl_parse_flags("key rotate", argc, argv, flags, HN_ARRAY_LEN(flags)) != HN_OK) return HN_CTL_EXIT_USAGE;
    if (!hn_dk_enabled()) {
        hn_ctl_errorf("key rotate: HERENOW_DATA_KEY_FILE is not set (nothing to seal with)");
        return HN_CTL_EXIT_USAGE;
    }
    PGconn *pg = connect_checked(cfg, "key rotate", true);
    if (pg == NULL) return HN_CTL_EXIT_FAIL;
    /* LIKE: the current key's prefix, its '_' escaped */
    char like[64];
    size_t o = (size_t)snprintf(like, sizeof(like), HN_DK_PREFIX);
    for (const char *c = hn_dk_current(); *c; c++) {
        if (*c == '_') like[o++] = '\\';
        like[o++] = *c;
    }
    snprintf(like + o, sizeof(like) - o, ":%%");
    int rc = HN_CTL_EXIT_OK;
    tally all = {0};
    for (size_t i = 0; i < HN_ARRAY_LEN(passes) && rc == HN_CTL_EXIT_OK; i++) {
        tally t = {0};
        rc = run_pass(pg, &passes[i], like, (long long)batch, &t);
        printf("%s: %lld rows sealed under %s, %lld changed meanwhile, %lld did not open\n", passes[i].what,
               t.moved, hn_dk_current(), t.skipped, t.failed);
        all.moved += t.moved, all.skipped += t.skipped, all.failed += t.failed;
    }
    if (rc == HN_CTL_EXIT_OK) {
        tally t = {0};
        rc = ban_keys(pg, &t);
        printf("visitor_bans (email keys): %lld rows\n", t.moved);
    }
    /* what is under another key now, counted again: an api still sealing
     * with an older file would have added some since the passes */
    long long others = 0;
    for (size_t i = 0; i < HN_ARRAY_LEN(passes) && rc == HN_CTL_EXIT_OK && all.skipped == 0 && all.failed == 0; i++) {
        PGresult *r = hn_ctl_pg_exec(pg, "key rotate", PGRES_TUPLES_OK, passes[i].count_sql, 0, NULL);
        if (r == NULL) {
            rc = HN_CTL_EXIT_FAIL;
            break;
        }
        for (int j = 0; j < PQntuples(r); j++)
            if (strcmp(PQgetvalue(r, j, 0), "clear") != 0 && strcmp(PQgetvalue(r, j, 0), hn_dk_current()) != 0)
                others += atoll(PQgetvalue(r, j, 1));
        PQclear(r);
    }
    if (rc == HN_CTL_EXIT_OK && others > 0) {
        hn_ctl_errorf("key rotate: %lld values were sealed under an older key meanwhile (an api with an older "
                      "HERENOW_DATA_KEY_FILE?): give every api the new key, then run it again (the other keys are kept)",
                      others);
        rc = HN_CTL_EXIT_FAIL;
    } else if (rc == HN_CTL_EXIT_OK && all.skipped == 0 && all.failed == 0) {
        const char *p[] = {hn_dk_current()};
        PGresult *r = hn_ctl_pg_exec(pg, "key rotate", PGRES_TUPLES_OK,
                                     "DELETE FROM hn_data_keys WHERE id <> $1 AND id <> 'index' RETURNING id", 1, p);
        if (r == NULL) {
            rc = HN_CTL_EXIT_FAIL;
        } else {
            for (int i = 0; i < PQntuples(r); i++)
                printf("key %s: no value left under it (it may leave HERENOW_DATA_KEY_FILE)\n", PQgetvalue(r, i, 0));
            PQclear(r);
        }
    } else if (rc == HN_CTL_EXIT_OK) {
        hn_ctl_errorf("key rotate: %lld rows changed meanwhile and %lld did not open: run it again "
                      "(the other keys are kept)", all.skipped, all.failed);
        rc = HN_CTL_EXIT_FAIL;
    }
    PQfinish(pg);
    return rc;
}

static int key_status(const hn_config *cfg, int argc, char **argv) {
    if (hn_ctl_parse_flags("key status", argc, argv, NULL, 0) != HN_OK) return HN_CTL_EXIT_USAGE;
    char ids[1024];
    hn_dk_ids(ids, sizeof(ids));
    printf("file: %s\n", hn_dk_enabled() ? ids : "(none: HERENOW_DATA_KEY_FILE is not set)");
    if (hn_dk_enabled()) printf("sealing with: %s\n", hn_dk_current());
    PGconn *pg = connect_checked(cfg, "key status", false);
    if (pg == NULL) return HN_CTL_EXIT_FAIL;
    int rc = HN_CTL_EXIT_OK;
    PGresult *r = hn_ctl_pg_exec(pg, "key status", PGRES_TUPLES_OK,
                                 "SELECT coalesce(string_agg(id, ',' ORDER BY created_at, id), '') FROM hn_data_keys WHERE id <> 'index'",
                                 0, NULL);
    if (r == NULL) {
        PQfinish(pg);
        return HN_CTL_EXIT_FAIL;
    }
    printf("database: %s\n", PQgetvalue(r, 0, 0)[0] ? PQgetvalue(r, 0, 0) : "(no key)");
    PQclear(r);
    for (size_t i = 0; i < HN_ARRAY_LEN(passes) && rc == HN_CTL_EXIT_OK; i++) {
        r = hn_ctl_pg_exec(pg, "key status", PGRES_TUPLES_OK, passes[i].count_sql, 0, NULL);
        if (r == NULL) {
            rc = HN_CTL_EXIT_FAIL;
            break;
        }
        printf("%s:", passes[i].what);
        for (int j = 0; j < PQntuples(r); j++) printf(" %s=%s", PQgetvalue(r, j, 0), PQgetvalue(r, j, 1));
        printf("%s\n", PQntuples(r) ? "" : " none");
        PQclear(r);
    }
    PQfinish(pg);
    return rc;
}

int hn_ctl_key(const hn_config *cfg, int argc, char **argv) {
    static const hn_ctl_sub subs[] = {
        {"new", key_new},
        {"status", key_status},
        {"rotate", key_rotate},
    };
    return hn_ctl_dispatch("key", subs, HN_ARRAY_LEN(subs), hn_ctl_key_usage, cfg, argc, argv);
}
