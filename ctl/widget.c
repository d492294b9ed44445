/*
 * widget.c: `herenowctl widget add|list|sync`.
 *
 * PostgreSQL's widget_configs is the source of truth; Redis' hn:widgets
 * (widget key → decimal widget id, DESIGN.md §3) is the collectors' cache of
 * it. add writes PostgreSQL first and Redis second, so a widget that a
 * collector can resolve always exists in PostgreSQL; when the Redis write
 * fails, `widget sync` repairs it.
 *
 * sync makes hn:widgets equal to widget_configs with an optimistic
 * transaction (WATCH, read both sides, MULTI/EXEC of the difference, retry
 * when hn:widgets changed meanwhile). A concurrent `widget add` commits to
 * PostgreSQL before its HSET, so either sync's read of PostgreSQL sees the
 * new row, or the HSET lands after the WATCH and aborts the EXEC.
 */
#include "ctl/ctl.h"
#include "common/json.h"
#include "proto/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIDGETS_KEY   HN_KEY_WIDGETS
#define KEY_LEN       16
#define NAME_MAX_LEN  200
#define DOMAIN_MAX_LEN 253
#define SYNC_ATTEMPTS 10
#define SYNC_CHUNK    500     /* fields per HSET / HDEL command */

/* A widget's hn:widgets value, "<id>[ settings]" (collector/widgets.h), as
 * PostgreSQL computes it from widget_configs, so add and sync cannot differ. */
#define WIDGET_VALUE_SQL \
    "id::text || CASE WHEN settings->>'honor_dnt' = 'false' THEN ' dnt=off' ELSE '' END" \
    " || CASE WHEN settings->>'chat' = 'on' THEN ' chat=on' ELSE '' END"

void hn_ctl_widget_usage(FILE *f) {
    fprintf(f,
            "herenowctl widget add --name NAME --domain DOMAIN [--retention-days N] [--honor-dnt yes|no]\n"
            "                     [--chat on|off]\n"
            "  Creates a widget in PostgreSQL with a new random key, publishes it to Redis\n"
            "  (hn:widgets) and prints its key, id and embed snippet. --honor-dnt no: beacons\n"
            "  sent with DNT: 1 or Sec-GPC: 1 are kept (default yes: dropped as opted_out).\n"
            "herenowctl widget set --widget KEY|ID [--chat on|off] [--agent-name NAME]\n"
            "                     [--chat-retention-days N] [--honor-dnt yes|no]\n"
            "  Changes a widget's settings in PostgreSQL and its hn:widgets entry (collectors\n"
            "  see it at their next widget refresh). --chat on: Start Chat (docs/CHAT.md);\n"
            "  --agent-name: the agents' display name when the token has none.\n"
            "herenowctl widget list [--json]\n"
            "  Lists the widgets: id, key, name, domain, created_at (UTC).\n"
            "herenowctl widget sync\n"
            "  Rewrites hn:widgets in Redis from PostgreSQL: adds missing widgets, fixes\n"
            "  ids, removes keys that are no longer in PostgreSQL.\n");
}

/* ---- add ---------------------------------------------------------------- */

static bool has_ctl_chars(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

/* Writes s escaped for an HTML attribute value in double quotes. */
static void put_attr(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void print_snippet(FILE *f, const char *public_url, const char *key) {
    size_t n = strlen(public_url);
    while (n > 0 && public_url[n - 1] == '/') n--;
    char *base = hn_xstrndup(public_url, n);
    fputs("<script src=\"", f);
    put_attr(f, base);
    fprintf(f, "/h.js\" data-widget=\"%s\" async></script>", key);
    free(base);
}

static int hset_widget(hn_rcl *rc, const char *key, const char *value) {
    redisReply *r = hn_rcl_command(rc, "HSET %s %s %s", WIDGETS_KEY, key, value);
    if (r == NULL) {
        hn_ctl_errorf("redis HSET %s: %s", WIDGETS_KEY, hn_rcl_errstr(rc));
        return HN_ERR;
    }
    int ok = r->type != REDIS_REPLY_ERROR;
    if (!ok) hn_ctl_errorf("redis HSET %s: %s", WIDGETS_KEY, r->str);
    freeReplyObject(r);
    return ok ? HN_OK : HN_ERR;
}

static int widget_add(const hn_config *cfg, int argc, char **argv) {
    const char *name = NULL, *domain = NULL, *dnt = "yes", *chat = "off";
    uint64_t retention = 0;
    hn_ctl_flag flags[] = {
        {.name = "name", .type = HN_CTL_STR, .dst = &name},
        {.name = "domain", .type = HN_CTL_STR, .dst = &domain},
        {.name = "honor-dnt", .type = HN_CTL_STR, .dst = &dnt},
        {.name = "chat", .type = HN_CTL_STR, .dst = &chat},
        {.name = "retention-days", .type = HN_CTL_U64, .dst = &retention, .min = 1,
         .max = 36500},
    };
    if (hn_ctl_parse_flags("widget add", argc, argv, flags, HN_ARRAY_LEN(flags)) != HN_OK)
        return HN_CTL_EXIT_USAGE;
    if (name == NULL || domain == NULL) {
        hn_ctl_errorf("widget add: --name and --domain are required");
        return HN_CTL_EXIT_USAGE;
    }
    if (strcmp(chat, "on") != 0 && strcmp(chat, "off") != 0) {
        hn_ctl_errorf("widget add: --chat is on or off");
        return HN_CTL_EXIT_USAGE;
    }
    if (strcmp(dnt, "yes") != 0 && strcmp(dnt, "no") != 0) {
        hn_ctl_errorf("widget add: --honor-dnt is yes or no");
        return HN_CTL_EXIT_USAGE;
    }
    if (name[0] == '\0' || strlen(name) > NAME_MAX_LEN || has_ctl_chars(name)) {
        hn_ctl_errorf("widget add: --name must be 1..%d bytes without control characters",
                      NAME_MAX_LEN);
        return HN_CTL_EXIT_USAGE;
    }
    if (domain[0] == '\0' || strlen(domain) > DOMAIN_MAX_LEN || has_ctl_chars(domain) ||
        strchr(domain, ' ') != NULL) {
        hn_ctl_errorf("widget add: --domain must be 1..%d bytes without spaces or control characters",
                      DOMAIN_MAX_LEN);
        return HN_CTL_EXIT_USAGE;
    }

    int rc = HN_CTL_EXIT_FAIL;
    PGconn *pg = NULL;
    PGresult *res = NULL;
    /* Redis first: when it is down, fail before creating anything. */
    hn_rcl *redis = hn_ctl_redis_connect(cfg);
    if (redis == NULL) goto out;
    pg = hn_ctl_pg_connect(cfg);
    if (pg == NULL) goto out;

    char key[KEY_LEN + 1];
    char days[24];
    snprintf(days, sizeof(days), "%llu", (unsigned long long)retention);
    for (int attempt = 0; attempt < 3 && res == NULL; attempt++) {
        if (hn_ctl_random_base62(key, KEY_LEN) != HN_OK) goto out;
        /* fixed texts only: no outside text reaches the JSON */
        bool nodnt = strcmp(dnt, "no") == 0, chat_on = strcmp(chat, "on") == 0;
        const char *settings = nodnt && chat_on ? "{\"honor_dnt\": false, \"chat\": \"on\"}"
                             : nodnt ? "{\"honor_dnt\": false}"
                             : chat_on ? "{\"chat\": \"on\"}" : "{}";
        const char *const params[] = {key, name, domain, settings, days};
        res = PQexecParams(
            pg,
            retention > 0
                ? "INSERT INTO widget_configs (key, name, domain, settings, retention_days)"
                  " VALUES ($1, $2, $3, $4::jsonb, $5::integer) RETURNING id,"
                  " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                  WIDGET_VALUE_SQL
                : "INSERT INTO widget_configs (key, name, domain, settings)"
                  " VALUES ($1, $2, $3, $4::jsonb) RETURNING id,"
                  " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
                  WIDGET_VALUE_SQL,
            retention > 0 ? 5 : 4, NULL, params, NULL, NULL, 0);
        if (res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK) break;
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
        bool key_clash = state && strcmp(state, "23505") == 0 && constraint &&
                         strstr(constraint, "key") != NULL;
        if (!key_clash) {
            const char *e = res ? PQresultErrorMessage(res) : PQerrorMessage(pg);
            const char *nl = strchr(e, '\n');
            hn_ctl_errorf("widget add: insert into widget_configs: %.*s",
                          (int)(nl ? (size_t)(nl - e) : strlen(e)), e);
            goto out;
        }
        PQclear(res);   /* a 1 in 62^16 clash: draw another key */
        res = NULL;
    }
    if (res == NULL) {
        hn_ctl_errorf("widget add: could not draw an unused key");
        goto out;
    }

    const char *id = PQgetvalue(res, 0, 0);
    if (hset_widget(redis, key, PQgetvalue(res, 0, 2)) != HN_OK) {
        hn_ctl_errorf("widget add: widget %s (key %s) was created in PostgreSQL but not "
                      "published to Redis; run `herenowctl widget sync`", id, key);
        goto out;
    }

    printf("id:      %s\n", id);
    printf("key:     %s\n", key);
    printf("name:    %s\n", name);
    printf("domain:  %s\n", domain);
    printf("created: %s\n", PQgetvalue(res, 0, 1));
    printf("snippet: ");
    print_snippet(stdout, cfg->public_url, key);
    printf("\n");
    rc = HN_CTL_EXIT_OK;
out:
    PQclear(res);
    PQfinish(pg);
    if (redis) hn_rcl_free(redis);
    return rc;
}

/* ---- set ---------------------------------------------------------------- */

/* Changes settings of one widget (by key or id): PostgreSQL, then its
 * hn:widgets value, which collectors pick up at their next widget refresh. */
static int widget_set(const hn_config *cfg, int argc, char **argv) {
    const char *which = NULL, *chat = NULL, *dnt = NULL, *agent = NULL;
    uint64_t chat_days = 0;
    hn_ctl_flag flags[] = {
        {.name = "widget", .type = HN_CTL_STR, .dst = &which},
        {.name = "chat", .type = HN_CTL_STR, .dst = &chat},
        {.name = "honor-dnt", .type = HN_CTL_STR, .dst = &dnt},
        {.name = "agent-name", .type = HN_CTL_STR, .dst = &agent},
        {.name = "chat-retention-days", .type = HN_CTL_U64, .dst = &chat_days, .min = 1,
         .max = 36500},
    };
    if (hn_ctl_parse_flags("widget set", argc, argv, flags, HN_ARRAY_LEN(flags)) != HN_OK)
        return HN_CTL_EXIT_USAGE;
    if (which == NULL || (!chat && !dnt && !agent && !chat_days)) {
        hn_ctl_errorf("widget set: --widget KEY|ID and at least one setting are required");
        return HN_CTL_EXIT_USAGE;
    }
    if (chat && strcmp(chat, "on") != 0 && strcmp(chat, "off") != 0) {
        hn_ctl_errorf("widget set: --chat is on or off");
        return HN_CTL_EXIT_USAGE;
    }
    if (dnt && strcmp(dnt, "yes") != 0 && strcmp(dnt, "no") != 0) {
        hn_ctl_errorf("widget set: --honor-dnt is yes or no");
        return HN_CTL_EXIT_USAGE;
    }
    if (agent && (agent[0] == '\0' || strlen(agent) > 64 || has_ctl_chars(agent))) {
        hn_ctl_errorf("widget set: --agent-name must be 1..64 bytes without control characters");
        return HN_CTL_EXIT_USAGE;
    }

    int rc = HN_CTL_EXIT_FAIL;
    PGconn *pg = NULL;
    PGresult *res = NULL;
    hn_rcl *redis = hn_ctl_redis_connect(cfg);
    if (redis == NULL) goto out;
    if ((pg = hn_ctl_pg_connect(cfg)) == NULL) goto out;
    char days[24];
    snprintf(days, sizeof(days), "%llu", (unsigned long long)chat_days);
    const char *const params[] = {which, chat, dnt ? (strcmp(dnt, "no") == 0 ? "false" : "true") : NULL,
                                  agent, chat_days ? days : NULL};
    /* jsonb_strip_nulls: the settings not given stay as they were */
    res = hn_ctl_pg_exec(pg, "widget set", PGRES_TUPLES_OK,
                         "UPDATE widget_configs SET settings = settings || jsonb_strip_nulls(jsonb_build_object("
                         "'chat', $2::text, 'honor_dnt', $3::boolean, 'agent_name', $4::text,"
                         " 'chat_retention_days', $5::integer))"
                         " WHERE key = $1 OR id::text = $1 RETURNING id, key, settings::text, "
                         WIDGET_VALUE_SQL,
                         5, params);
    if (res == NULL) goto out;
    if (PQntuples(res) != 1) {
        hn_ctl_errorf("widget set: no widget with key or id '%s'", which);
        goto out;
    }
    if (hset_widget(redis, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 3)) != HN_OK) {
        hn_ctl_errorf("widget set: saved in PostgreSQL but not published to Redis; run "
                      "`herenowctl widget sync`");
        goto out;
    }
    printf("id:       %s\n", PQgetvalue(res, 0, 0));
    printf("key:      %s\n", PQgetvalue(res, 0, 1));
    printf("settings: %s\n", PQgetvalue(res, 0, 2));
    rc = HN_CTL_EXIT_OK;
out:
    PQclear(res);
    PQfinish(pg);
    if (redis) hn_rcl_free(redis);
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

/* s as a JSON string (common/json.c: escapes, invalid UTF-8 replaced). */
static void put_json_str(FILE *f, const char *s) {
    hn_buf b;
    hn_buf_init(&b, strlen(s) + 16);
    hn_json_str(&b, s, strlen(s));
    fwrite(b.p, 1, b.len, f);
    hn_buf_free(&b);
}

static int widget_list(const hn_config *cfg, int argc, char **argv) {
    bool json = false;
    hn_ctl_flag flags[] = {
        {.name = "json", .type = HN_CTL_BOOL, .dst = &json},
    };
    if (hn_ctl_parse_flags("widget list", argc, argv, flags, HN_ARRAY_LEN(flags)) != HN_OK)
        return HN_CTL_EXIT_USAGE;

    int rc = HN_CTL_EXIT_FAIL;
    PGresult *r = NULL;
    PGconn *pg = hn_ctl_pg_connect(cfg);
    if (pg == NULL) goto out;
    r = hn_ctl_pg_exec(pg, "widget list", PGRES_TUPLES_OK,
                       "SELECT id, key, name, domain,"
                       " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
                       " FROM widget_configs ORDER BY id",
                       0, NULL);
    if (r == NULL) goto out;

    enum { NCOL = 5 };
    static const char *const head[NCOL] = {"ID", "KEY", "NAME", "DOMAIN", "CREATED"};
    static const char *const jkey[NCOL] = {"id", "key", "name", "domain", "created_at"};
    int rows = PQntuples(r);

    if (json) {
        /* Compact, one widget per line: easy to grep as well as to parse. */
        printf("[");
        for (int i = 0; i < rows; i++) {
            printf(i ? ",\n{" : "{");
            for (int c = 0; c < NCOL; c++) {
                printf("%s\"%s\":", c ? "," : "", jkey[c]);
                if (c == 0) fputs(PQgetvalue(r, i, c), stdout);   /* a number */
                else put_json_str(stdout, PQgetvalue(r, i, c));
            }
            printf("}");
        }
        printf("]\n");
        rc = HN_CTL_EXIT_OK;
        goto out;
    }

    /* Names and domains come from people: a control character in one must
     * not break the table, so they print as '?'. */
    size_t width[NCOL];
    for (int c = 0; c < NCOL; c++) width[c] = strlen(head[c]);
    for (int i = 0; i < rows; i++)
        for (int c = 0; c < NCOL; c++) {
            size_t w = display_width(PQgetvalue(r, i, c));
            if (w > width[c]) width[c] = w;
        }
    for (int i = -1; i < rows; i++) {
        for (int c = 0; c < NCOL; c++) {
            const char *v = i < 0 ? head[c] : PQgetvalue(r, i, c);
            for (const char *p = v; *p; p++)
                putchar(((unsigned char)*p < 0x20 || *p == 0x7f) ? '?' : *p);
            if (c + 1 < NCOL)
                printf("%*s", (int)(width[c] - display_width(v) + 2), "");
        }
        putchar('\n');
    }
    if (rows == 0) printf("(no widgets: add one with `herenowctl widget add`)\n");
    rc = HN_CTL_EXIT_OK;
out:
    PQclear(r);
    PQfinish(pg);
    return rc;
}

/* ---- sync --------------------------------------------------------------- */

/* A field of hn:widgets as read by HGETALL; points into the reply. */
typedef struct field {
    const char *key;
    const char *val;
} field;

static int cmp_field(const void *a, const void *b) {
    return strcmp(((const field *)a)->key, ((const field *)b)->key);
}

/* Appends `CMD hn:widgets f1 [v1] f2 [v2] ...` for fields[from..to). */
static void append_chunk(hn_rcl *rc, const char *cmd, const char **fields,
                         const char **values, size_t from, size_t to) {
    size_t per = values ? 2 : 1;
    size_t argc = 2 + (to - from) * per;
    const char **av = hn_xcalloc(argc, sizeof(*av));
    av[0] = cmd;
    av[1] = WIDGETS_KEY;
    size_t k = 2;
    for (size_t i = from; i < to; i++) {
        av[k++] = fields[i];
        if (values) av[k++] = values[i];
    }
    hn_rcl_append_argv(rc, (int)argc, av, NULL);
    free(av);
}

/* One optimistic round. Returns 1 done, 0 hn:widgets changed (retry), -1 error. */
static int sync_round(PGconn *pg, hn_rcl *rc, size_t *total, size_t *added,
                      size_t *updated, size_t *removed) {
    int ret = -1;
    redisReply *w = NULL, *cur = NULL;
    PGresult *r = NULL;
    const char **set_f = NULL, **set_v = NULL, **del_f = NULL;
    field *have = NULL;
    size_t nset = 0, ndel = 0;

    w = hn_rcl_command(rc, "WATCH %s", WIDGETS_KEY);
    if (w == NULL || w->type == REDIS_REPLY_ERROR) goto redis_err;
    cur = hn_rcl_command(rc, "HGETALL %s", WIDGETS_KEY);
    if (cur == NULL || cur->type == REDIS_REPLY_ERROR) goto redis_err;
    if (cur->type != REDIS_REPLY_ARRAY) {
        hn_ctl_errorf("widget sync: %s is not a hash", WIDGETS_KEY);
        goto out;
    }
    r = hn_ctl_pg_exec(pg, "widget sync: read widget_configs", PGRES_TUPLES_OK,
                       "SELECT key, " WIDGET_VALUE_SQL " FROM widget_configs"
                       " ORDER BY key COLLATE \"C\"",
                       0, NULL);
    if (r == NULL) goto out;

    /* Both sides sorted in byte order (PostgreSQL's by COLLATE "C"), so each
     * lookup is a binary search. */
    size_t nhave = cur->elements / 2;
    have = hn_xcalloc(nhave + 1, sizeof(*have));
    for (size_t i = 0; i < nhave; i++) {
        have[i].key = cur->element[2 * i]->str;
        have[i].val = cur->element[2 * i + 1]->str;
    }
    qsort(have, nhave, sizeof(*have), cmp_field);

    size_t rows = (size_t)PQntuples(r);
    set_f = hn_xcalloc(rows + 1, sizeof(*set_f));
    set_v = hn_xcalloc(rows + 1, sizeof(*set_v));
    del_f = hn_xcalloc(nhave + 1, sizeof(*del_f));
    *total = rows;
    *added = *updated = 0;
    for (size_t i = 0; i < rows; i++) {
        field want = {PQgetvalue(r, (int)i, 0), PQgetvalue(r, (int)i, 1)};
        const field *got = bsearch(&want, have, nhave, sizeof(*have), cmp_field);
        if (got != NULL && strcmp(got->val, want.val) == 0) continue;
        set_f[nset] = want.key;
        set_v[nset++] = want.val;
        if (got == NULL) (*added)++;
        else (*updated)++;
    }
    for (size_t i = 0; i < nhave; i++) {
        size_t lo = 0, hi = rows;
        bool found = false;
        while (lo < hi && !found) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(have[i].key, PQgetvalue(r, (int)mid, 0));
            if (c == 0) found = true;
            else if (c < 0) hi = mid;
            else lo = mid + 1;
        }
        if (!found) del_f[ndel++] = have[i].key;
    }
    *removed = ndel;

    if (nset == 0 && ndel == 0) {
        freeReplyObject(w);
        w = hn_rcl_command(rc, "UNWATCH");
        ret = 1;
        goto out;
    }

    /* MULTI, the chunks, EXEC: pipelined, then the replies in order. */
    size_t ncmds = 2;
    hn_rcl_append(rc, "MULTI");
    for (size_t i = 0; i < nset; i += SYNC_CHUNK, ncmds++)
        append_chunk(rc, "HSET", set_f, set_v, i, i + SYNC_CHUNK < nset ? i + SYNC_CHUNK : nset);
    for (size_t i = 0; i < ndel; i += SYNC_CHUNK, ncmds++)
        append_chunk(rc, "HDEL", del_f, NULL, i, i + SYNC_CHUNK < ndel ? i + SYNC_CHUNK : ndel);
    hn_rcl_append(rc, "EXEC");
    ret = 1;
    for (size_t i = 0; i < ncmds; i++) {
        redisReply *x = NULL;
        if (hn_rcl_get_reply(rc, (void **)&x) != REDIS_OK || x == NULL) {
            hn_ctl_errorf("widget sync: redis: %s", hn_rcl_errstr(rc));
            ret = -1;
            break;
        }
        if (x->type == REDIS_REPLY_ERROR) {
            hn_ctl_errorf("widget sync: redis: %s", x->str);
            ret = -1;
        } else if (i + 1 == ncmds && x->type == REDIS_REPLY_NIL && ret == 1) {
            ret = 0;                        /* EXEC aborted: hn:widgets changed */
        }
        freeReplyObject(x);
    }
    goto out;

redis_err:
    hn_ctl_errorf("widget sync: redis: %s",
                  (w && w->type == REDIS_REPLY_ERROR) ? w->str
                  : (cur && cur->type == REDIS_REPLY_ERROR) ? cur->str
                  : hn_rcl_errstr(rc));
out:
    free(set_f);
    free(set_v);
    free(del_f);
    free(have);
    PQclear(r);
    if (cur) freeReplyObject(cur);
    if (w) freeReplyObject(w);
    return ret;
}

static int widget_sync(const hn_config *cfg, int argc, char **argv) {
    if (hn_ctl_parse_flags("widget sync", argc, argv, NULL, 0) != HN_OK)
        return HN_CTL_EXIT_USAGE;

    int rc = HN_CTL_EXIT_FAIL;
    PGconn *pg = NULL;
    hn_rcl *redis = hn_ctl_redis_connect(cfg);
    if (redis == NULL) goto out;
    pg = hn_ctl_pg_connect(cfg);
    if (pg == NULL) goto out;

    size_t total = 0, added = 0, updated = 0, removed = 0;
    for (int attempt = 0; attempt < SYNC_ATTEMPTS; attempt++) {
        int done = sync_round(pg, redis, &total, &added, &updated, &removed);
        if (done < 0) goto out;
        if (done > 0) {
            printf("%s: %zu widget%s (%zu added, %zu updated, %zu removed)\n", WIDGETS_KEY,
                   total, total == 1 ? "" : "s", added, updated, removed);
            rc = HN_CTL_EXIT_OK;
            goto out;
        }
    }
    hn_ctl_errorf("widget sync: %s kept changing during %d attempts; try again", WIDGETS_KEY,
                  SYNC_ATTEMPTS);
out:
    PQfinish(pg);
    if (redis) hn_rcl_free(redis);
    return rc;
}

/* ---- dispatch ------------------------------------------------------------ */

int hn_ctl_widget(const hn_config *cfg, int argc, char **argv) {
    static const hn_ctl_sub subs[] = {
        {"add", widget_add},
        {"list", widget_list},
        {"set", widget_set},
        {"sync", widget_sync},
    };
    return hn_ctl_dispatch("widget", subs, HN_ARRAY_LEN(subs), hn_ctl_widget_usage, cfg, argc, argv);
}
