/*
 * token.c: `herenowctl token create|list|revoke`, the API's bearer tokens
 * (common/token.h, sql/003_tokens.sql).
 *
 * create draws a token, stores the SHA-256 of its text (a bound binary
 * bytea, never SQL text) and prints the token once, on stdout and nowhere
 * else: the insert commits only after the token was written out, so a token
 * nobody saw is never valid. No message, error or listing ever carries a
 * token or its digest; the id (the 12 characters after "hn_") names a token
 * everywhere else.
 */
#include "ctl/ctl.h"

#include "common/buf.h"
#include "common/json.h"
#include "common/token.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MAX_LEN   200
#define MAKE_ATTEMPTS  3
#define UTC(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

void hn_ctl_token_usage(FILE *f) {
    fprintf(f,
            "herenowctl token create (--widget ID | --all) [--name TEXT] [--json]\n"
            "  Creates an API token for one widget or for every widget and prints it once:\n"
            "  the token alone on stdout (tok=$(herenowctl token create --all)), or with\n"
            "  --json {\"id\",\"token\",\"widget_id\",\"name\",\"created_at\"}. Only its SHA-256 is\n"
            "  stored: a lost token cannot be shown again, only revoked.\n"
            "herenowctl token list [--json]\n"
            "  Lists the tokens: id, scope (widget id or all), name, created_at, revoked_at\n"
            "  (UTC). Never the token itself.\n"
            "herenowctl token revoke --id ID    (or: herenowctl token revoke ID)\n"
            "  Revokes a token by its id (the 12 characters after \"hn_\"; see token list).\n");
}

static bool has_ctl_chars(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

/* The first line of a libpq error text. */
static int first_line_len(const char *s) {
    const char *nl = strchr(s, '\n');
    return (int)(nl ? (size_t)(nl - s) : strlen(s));
}

static void json_field(hn_buf *b, bool *first, const char *key, const char *s) {
    hn_json_key(b, first, key);
    if (s == NULL) hn_buf_append(b, "null", 4);
    else hn_json_str(b, s, strlen(s));
}

/* A number (widget ids are digits from PostgreSQL) or null. */
static void json_raw(hn_buf *b, bool *first, const char *key, const char *s) {
    hn_json_key(b, first, key);
    if (s == NULL) hn_buf_append(b, "null", 4);
    else hn_buf_append(b, s, strlen(s));
}

static const char *get_or_null(const PGresult *r, int row, int col) {
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static bool txn(PGconn *pg, const char *what, const char *sql) {
    PGresult *r = hn_ctl_pg_exec(pg, what, PGRES_COMMAND_OK, sql, 0, NULL);
    bool ok = r != NULL;
    PQclear(r);
    return ok;
}

/* ---- create ------------------------------------------------------------- */

/* Inserts one new token inside the open transaction. Returns the result of
 * the INSERT (one row: created_at) or NULL (message printed); *no_widget is
 * set when the widget does not exist. */
static PGresult *insert_token(PGconn *pg, const char *widget, const char *name,
                              char tok[HN_TOKEN_LEN + 1], char id[HN_TOKEN_ID_LEN + 1],
                              bool *no_widget) {
    *no_widget = false;
    for (int attempt = 0; attempt < MAKE_ATTEMPTS; attempt++) {
        if (hn_token_make(tok, id) != HN_OK) {
            hn_ctl_errorf("token create: getrandom: %s", strerror(errno));
            return NULL;
        }
        uint8_t digest[HN_TOKEN_SHA256_LEN];
        hn_token_sha256(tok, HN_TOKEN_LEN, digest);

        /* The digest goes as a binary parameter: 32 raw bytes, no encoding. */
        const char *const params[] = {id, (const char *)digest, name, widget};
        const int lengths[] = {0, HN_TOKEN_SHA256_LEN, 0, 0};
        const int formats[] = {0, 1, 0, 0};
        /* INSERT … SELECT … WHERE: a widget that does not exist inserts no
         * row, and the foreign key covers one deleted meanwhile. */
        PGresult *r = PQexecParams(
            pg,
            widget != NULL
                ? "INSERT INTO api_tokens (id, token_sha256, name, widget_id)"
                  " SELECT $1::text, $2::bytea, $3::text, w.id FROM widget_configs w"
                  " WHERE w.id = $4::integer RETURNING " UTC("created_at")
                : "INSERT INTO api_tokens (id, token_sha256, name, widget_id)"
                  " VALUES ($1::text, $2::bytea, $3::text, NULL) RETURNING " UTC("created_at"),
            widget != NULL ? 4 : 3, NULL, params, lengths, formats, 0);
        explicit_bzero(digest, sizeof(digest));
        if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK) {
            if (PQntuples(r) == 1) return r;
            PQclear(r);
            *no_widget = true;
            return NULL;
        }
        const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        const char *constraint = r ? PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME) : NULL;
        if (state && strcmp(state, "23503") == 0) {             /* foreign key */
            PQclear(r);
            *no_widget = true;
            return NULL;
        }
        if (state && strcmp(state, "23505") == 0 && constraint &&
            strcmp(constraint, "api_tokens_pkey") == 0) {
            /* A 1 in 62^12 id clash: the failed statement aborted the
             * transaction, so start a new one and draw again. */
            PQclear(r);
            if (!txn(pg, "token create: rollback", "ROLLBACK") ||
                !txn(pg, "token create: begin", "BEGIN"))
                return NULL;
            continue;
        }
        const char *e = r ? PQresultErrorMessage(r) : PQerrorMessage(pg);
        hn_ctl_errorf("token create: insert into api_tokens: %.*s", first_line_len(e), e);
        PQclear(r);
        return NULL;
    }
    hn_ctl_errorf("token create: could not draw an unused id");
    return NULL;
}

static int token_create(const hn_config *cfg, int argc, char **argv) {
    uint64_t widget_id = 0;
    bool all = false, json = false;
    const char *name = "";
    hn_ctl_flag flags[] = {
        {.name = "widget", .type = HN_CTL_U64, .dst = &widget_id, .min = 1, .max = INT32_MAX},
        {.name = "all", .type = HN_CTL_BOOL, .dst = &all},
        {.name = "name", .type = HN_CTL_STR, .dst = &name},
        {.name = "json", .type = HN_CTL_BOOL, .dst = &json},
    };
    if (hn_ctl_parse_flags("token create", argc, argv, flags, HN_ARRAY_LEN(flags)) != HN_OK)
        return HN_CTL_EXIT_USAGE;
    if (flags[0].seen == all) {
        hn_ctl_errorf("token create: give exactly one of --widget ID or --all");
        return HN_CTL_EXIT_USAGE;
    }
    if (strlen(name) > NAME_MAX_LEN || has_ctl_chars(name)) {
        hn_ctl_errorf("token create: --name must be at most %d bytes without control characters",
                      NAME_MAX_LEN);
        return HN_CTL_EXIT_USAGE;
    }
    char widget[24];
    snprintf(widget, sizeof(widget), "%llu", (unsigned long long)widget_id);

    int rc = HN_CTL_EXIT_FAIL;
    bool open = false, no_widget = false;
    char tok[HN_TOKEN_LEN + 1] = "", id[HN_TOKEN_ID_LEN + 1] = "";
    PGresult *r = NULL;
    hn_buf out = {0};
    PGconn *pg = hn_ctl_pg_connect(cfg);
    if (pg == NULL) goto out;
    if (!(open = txn(pg, "token create: begin", "BEGIN"))) goto out;
    r = insert_token(pg, all ? NULL : widget, name, tok, id, &no_widget);
    if (r == NULL) {
        if (no_widget) hn_ctl_errorf("token create: no widget with id %s (see widget list)", widget);
        goto out;
    }

    /* Big enough for any name escaped: no realloc leaves a copy behind. */
    hn_buf_init(&out, 2048);
    if (json) {
        bool first = true;
        hn_buf_append(&out, "{", 1);
        json_field(&out, &first, "id", id);
        json_field(&out, &first, "token", tok);
        json_raw(&out, &first, "widget_id", all ? NULL : widget);
        json_field(&out, &first, "name", name);
        json_field(&out, &first, "created_at", PQgetvalue(r, 0, 0));
        hn_buf_append(&out, "}\n", 2);
    } else {
        hn_buf_printf(&out, "%s\n", tok);
    }
    /* Shown before it is stored: when stdout cannot take it, the rollback
     * leaves no token that nobody has. */
    if (fwrite(out.p, 1, out.len, stdout) != out.len || fflush(stdout) != 0) {
        hn_ctl_errorf("token create: cannot write the token to stdout; nothing was created");
        goto out;
    }
    if (!txn(pg, "token create: commit (the token printed above is NOT valid)", "COMMIT"))
        goto out;
    open = false;
    fprintf(stderr, "herenowctl: token %s created for %s%s; it is shown only once: store it now\n",
            id, all ? "all widgets" : "widget ", all ? "" : widget);
    rc = HN_CTL_EXIT_OK;
out:
    if (open && PQstatus(pg) == CONNECTION_OK) PQclear(PQexec(pg, "ROLLBACK"));
    if (out.p) explicit_bzero(out.p, out.cap);
    hn_buf_free(&out);
    explicit_bzero(tok, sizeof(tok));
    PQclear(r);
    PQfinish(pg);
    return rc;
}

/* ---- list --------------------------------------------------------------- */

/* Columns on a terminal: UTF-8 continuation bytes take none. */
static size_t display_width(const char *s) {
    size_t w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) w++;
    return w;
}

/* The list's columns: the query's, with NULL widget_id shown as "all" and
 * an empty name or a NULL revoked_at as "-". Row -1 is the header. */
enum { NCOL = 5 };
static const char *const list_head[NCOL] = {"ID", "SCOPE", "NAME", "CREATED", "REVOKED"};

static const char *list_cell(const PGresult *r, int row, int col) {
    if (row < 0) return list_head[col];
    if (PQgetisnull(r, row, col)) return col == 1 ? "all" : "-";
    const char *v = PQgetvalue(r, row, col);
    return v[0] == '\0' ? "-" : v;
}

static int token_list(const hn_config *cfg, int argc, char **argv) {
    bool json = false;
    hn_ctl_flag flags[] = {
        {.name = "json", .type = HN_CTL_BOOL, .dst = &json},
    };
    if (hn_ctl_parse_flags("token list", argc, argv, flags, HN_ARRAY_LEN(flags)) != HN_OK)
        return HN_CTL_EXIT_USAGE;

    int rc = HN_CTL_EXIT_FAIL;
    PGresult *r = NULL;
    hn_buf b = {0};
    PGconn *pg = hn_ctl_pg_connect(cfg);
    if (pg == NULL) goto out;
    /* Never token_sha256: nobody needs the digest, and what is never
     * printed cannot end up pasted into a ticket. */
    r = hn_ctl_pg_exec(pg, "token list", PGRES_TUPLES_OK,
                       "SELECT id, widget_id, name, " UTC("created_at") ", " UTC("revoked_at")
                       " FROM api_tokens ORDER BY created_at, id",
                       0, NULL);
    if (r == NULL) goto out;
    int rows = PQntuples(r);

    if (json) {
        /* Compact, one token per line, like widget list --json. */
        hn_buf_init(&b, 256);
        hn_buf_append(&b, "[", 1);
        for (int i = 0; i < rows; i++) {
            bool first = true;
            hn_buf_append(&b, i ? ",\n{" : "{", i ? 3 : 1);
            json_field(&b, &first, "id", PQgetvalue(r, i, 0));
            json_raw(&b, &first, "widget_id", get_or_null(r, i, 1));
            json_field(&b, &first, "name", PQgetvalue(r, i, 2));
            json_field(&b, &first, "created_at", PQgetvalue(r, i, 3));
            json_field(&b, &first, "revoked_at", get_or_null(r, i, 4));
            hn_buf_append(&b, "}", 1);
        }
        hn_buf_append(&b, "]\n", 2);
        fwrite(b.p, 1, b.len, stdout);
        rc = HN_CTL_EXIT_OK;
        goto out;
    }

    size_t width[NCOL];
    for (int c = 0; c < NCOL; c++) width[c] = strlen(list_head[c]);
    for (int i = 0; i < rows; i++)
        for (int c = 0; c < NCOL; c++) {
            size_t w = display_width(list_cell(r, i, c));
            if (w > width[c]) width[c] = w;
        }
    /* Names come from people: a control character must not break the
     * table, so it prints as '?'. */
    for (int i = -1; i < rows; i++) {
        for (int c = 0; c < NCOL; c++) {
            const char *v = list_cell(r, i, c);
            for (const char *p = v; *p; p++)
                putchar(((unsigned char)*p < 0x20 || *p == 0x7f) ? '?' : *p);
            if (c + 1 < NCOL) printf("%*s", (int)(width[c] - display_width(v) + 2), "");
        }
        putchar('\n');
    }
    if (rows == 0) printf("(no tokens: create one with `herenowctl token create`)\n");
    rc = HN_CTL_EXIT_OK;
out:
    hn_buf_free(&b);
    PQclear(r);
    PQfinish(pg);
    return rc;
}

/* ---- revoke ------------------------------------------------------------- */

static int token_revoke(const hn_config *cfg, int argc, char **argv) {
    /* `revoke ID` or `revoke --id ID`: the positional form reads naturally,
     * the flag form matches every other command. */
    const char *id = NULL, *pos = NULL;
    if (argc > 0 && strncmp(argv[0], "--", 2) != 0) {
        pos = argv[0];
        argc--;
        argv++;
    }
    hn_ctl_flag flags[] = {
        {.name = "id", .type = HN_CTL_STR, .dst = &id},
    };
    if (hn_ctl_parse_flags("token revoke", argc, argv, flags, HN_ARRAY_LEN(flags)) != HN_OK)
        return HN_CTL_EXIT_USAGE;
    if ((id == NULL) == (pos == NULL)) {
        hn_ctl_errorf("token revoke: give the token's id once, as --id ID or ID");
        return HN_CTL_EXIT_USAGE;
    }
    if (id == NULL) id = pos;
    /* Not echoed: a user may have pasted the whole token here. */
    if (!hn_token_id_valid(id, strlen(id))) {
        hn_ctl_errorf("token revoke: the id is %d base62 characters (the part after \"hn_\" in "
                      "the token; see token list)", HN_TOKEN_ID_LEN);
        return HN_CTL_EXIT_USAGE;
    }

    int rc = HN_CTL_EXIT_FAIL;
    PGresult *r = NULL;
    PGconn *pg = hn_ctl_pg_connect(cfg);
    if (pg == NULL) goto out;
    const char *const params[] = {id};
    r = hn_ctl_pg_exec(pg, "token revoke", PGRES_TUPLES_OK,
                       "UPDATE api_tokens SET revoked_at = now()"
                       " WHERE id = $1 AND revoked_at IS NULL RETURNING " UTC("revoked_at"),
                       1, params);
    if (r == NULL) goto out;
    if (PQntuples(r) == 1) {
        printf("revoked %s at %s\n", id, PQgetvalue(r, 0, 0));
        rc = HN_CTL_EXIT_OK;
        goto out;
    }
    /* Nothing updated: say why. */
    PQclear(r);
    r = hn_ctl_pg_exec(pg, "token revoke", PGRES_TUPLES_OK,
                       "SELECT " UTC("revoked_at") " FROM api_tokens WHERE id = $1", 1, params);
    if (r == NULL) goto out;
    if (PQntuples(r) == 0)
        hn_ctl_errorf("token revoke: no token with id %s (see token list)", id);
    else
        hn_ctl_errorf("token revoke: token %s was already revoked at %s", id,
                      PQgetvalue(r, 0, 0));
out:
    PQclear(r);
    PQfinish(pg);
    return rc;
}

/* ---- dispatch ------------------------------------------------------------ */

int hn_ctl_token(const hn_config *cfg, int argc, char **argv) {
    static const hn_ctl_sub subs[] = {
        {"create", token_create},
        {"list", token_list},
        {"revoke", token_revoke},
    };
    return hn_ctl_dispatch("token", subs, HN_ARRAY_LEN(subs), hn_ctl_token_usage, cfg, argc, argv);
}
