/*
 * routes_notes.c: notes, tags and bans on visitors (docs/RULES.md §5).
 *
 * A subject is a visitor id ("visitor") or an identified email ("email",
 * lower-cased). Notes, tags and bans live in PostgreSQL (sql/008); a ban
 * is also written to Redis for the collectors:
 *
 *   BEGIN → change visitor_bans → read the widget's members back →
 *   MULTI DEL hn:bans:{w} SADD … EXEC → HINCRBY hn:bans:widgets w 1 →
 *   INCR hn:bans:version → COMMIT
 *
 * so a ban the api answered for is in Redis, and a failed Redis write rolls
 * the change back (503). The set is rewritten whole from PostgreSQL each
 * time: two api processes changing the same widget's bans at once both
 * leave it right (the later writer reads the earlier commit: the
 * transactions take the widget's advisory lock). Every change also bumps
 * hn:annot:version, which the api's annotations cache (annot.c) watches.
 */
#include "api/annot.h"
#include "api/routes.h"

#include "common/datakey.h"
#include "common/json.h"
#include "common/jsonread.h"
#include "common/log.h"
#include "common/utf8.h"
#include "proto/keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTE_MAX_CHARS   2000
#define TAGS_MAX         20
#define TAG_MAX_LEN      32
#define EMAIL_MAX        254
#define REASON_MAX_CHARS 500
#define LIST_CAP         1000     /* a subject's notes in one answer */
#define SUBJECTS_CAP     10000    /* tagged or banned subjects in one answer */

/* ---- the body ------------------------------------------------------------------ */

typedef struct body {
    char  *visitor, *email, *text, *reason;
    size_t text_len, reason_len;
    bool   has_tags, block_tracking;
    int    ntags;
    char   tags[TAGS_MAX][TAG_MAX_LEN + 1];
    char   err[128];
} body;

static void body_free(body *b) {
    free(b->visitor);
    free(b->email);
    free(b->text);
    free(b->reason);
}

static char *jstr_dup(const hn_jval *v, size_t *len) {
    char *s = hn_xmalloc(v->len + 1);
    long n = hn_jread_str(v, s, v->len + 1);
    if (n < 0) n = 0;
    s[n] = '\0';
    if (len) *len = (size_t)n;
    return s;
}

/* The tags array: strings, lower-cased, checked, duplicates dropped. */
static int parse_tags(body *b, const hn_jval *v) {
    if (v->type != HN_J_ARR) goto bad;
    const char *p = v->p + 1, *end = v->p + v->len - 1;
    for (;;) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',')) p++;
        if (p >= end) break;
        if (*p != '"') goto bad;
        const char *q = p + 1;
        while (q < end && *q != '"') q += *q == '\\' ? 2 : 1;
        hn_jval s = {HN_J_STR, false, p, (size_t)(q - p + 1)};
        p = q + 1;
        char t[TAG_MAX_LEN * 6 + 1];
        long n = s.len > sizeof(t) ? -1 : hn_jread_str(&s, t, sizeof(t));
        if (n < 0) n = TAG_MAX_LEN + 1;
        for (long i = 0; i < n; i++)
            if (t[i] >= 'A' && t[i] <= 'Z') t[i] = (char)(t[i] - 'A' + 'a');
        if (!hn_tag_ok(t, (size_t)n)) {
            snprintf(b->err, sizeof(b->err), "tags: each tag is [a-z0-9][a-z0-9_-]{0,31}");
            return HN_ERR;
        }
        bool dup = false;
        for (int i = 0; i < b->ntags && !dup; i++)
            dup = strlen(b->tags[i]) == (size_t)n && memcmp(b->tags[i], t, (size_t)n) == 0;
        if (dup) continue;
        if (b->ntags == TAGS_MAX) {
            snprintf(b->err, sizeof(b->err), "tags: at most %d per subject", TAGS_MAX);
            return HN_ERR;
        }
        memcpy(b->tags[b->ntags], t, (size_t)n);
        b->tags[b->ntags++][n] = '\0';
    }
    b->has_tags = true;
    return HN_OK;
bad:
    snprintf(b->err, sizeof(b->err), "tags: want an array of strings");
    return HN_ERR;
}

static int on_member(void *ctx, const hn_jval *k, const hn_jval *v) {
    body *b = ctx;
    const char *name = NULL;
    char **dst = NULL;
    size_t *len = NULL;
    if (hn_jread_str_is(k, "visitor")) name = "visitor", dst = &b->visitor;
    else if (hn_jread_str_is(k, "email")) name = "email", dst = &b->email;
    else if (hn_jread_str_is(k, "body")) name = "body", dst = &b->text, len = &b->text_len;
    else if (hn_jread_str_is(k, "reason")) name = "reason", dst = &b->reason, len = &b->reason_len;
    else if (hn_jread_str_is(k, "tags")) return parse_tags(b, v);
    else if (hn_jread_str_is(k, "block_tracking")) {
        if (v->type != HN_J_BOOL) {
            snprintf(b->err, sizeof(b->err), "block_tracking: want true or false");
            return HN_ERR;
        }
        b->block_tracking = v->b;
        return HN_OK;
    } else {
        return HN_OK;                  /* other members are ignored, as everywhere */
    }
    if (v->type == HN_J_NULL && strcmp(name, "reason") == 0) return HN_OK;
    if (v->type != HN_J_STR || *dst) {
        snprintf(b->err, sizeof(b->err), "%s: want one string", name);
        return HN_ERR;
    }
    *dst = jstr_dup(v, len);
    return HN_OK;
}

/* Parses the body and its subject: HN_OK, or answered 400. */
static int read_body(const hn_api_req *rq, hn_api_resp *rs, body *b) {
    if (rq->body == NULL || !hn_jread_check(rq->body, rq->body_len) ||
        hn_jread_members(rq->body, rq->body_len, on_member, b) != HN_OK) {
        hn_api_error(rs, 400, "%s", b->err[0] ? b->err : "body: want a JSON object");
        return HN_ERR;
    }
    if ((b->visitor == NULL) == (b->email == NULL)) {
        hn_api_error(rs, 400, "subject: want exactly one of visitor, email");
        return HN_ERR;
    }
    if (b->visitor && !hn_param_visitor_ok(b->visitor)) {
        hn_api_error(rs, 400, "visitor: want 1..128 bytes of UTF-8 without control characters");
        return HN_ERR;
    }
    if (b->email && !hn_email_norm(b->email)) {
        hn_api_error(rs, 400, "email: want an address (3..254 bytes, one @, no spaces)");
        return HN_ERR;
    }
    return HN_OK;
}

/* ?visitor= or ?email= (exactly one): kind and subject, or answered 400.
 * email is copied into ebuf, lower-cased. */
static int query_subject(const hn_api_req *rq, hn_api_resp *rs, const char **kind, const char **subj,
                         char *ebuf) {
    const char *v = hn_api_query(rq, "visitor"), *e = hn_api_query(rq, "email");
    if ((v == NULL) == (e == NULL)) {
        hn_api_error(rs, 400, "subject: want exactly one of visitor=, email=");
        return HN_ERR;
    }
    if (v) {
        if (!hn_param_visitor_ok(v)) {
            hn_api_error(rs, 400, "visitor: want 1..128 bytes of UTF-8 without control characters");
            return HN_ERR;
        }
        *kind = "visitor", *subj = v;
        return HN_OK;
    }
    if (strlen(e) > EMAIL_MAX) {
        hn_api_error(rs, 400, "email: want an address (3..254 bytes, one @, no spaces)");
        return HN_ERR;
    }
    strcpy(ebuf, e);
    if (!hn_email_norm(ebuf)) {
        hn_api_error(rs, 400, "email: want an address (3..254 bytes, one @, no spaces)");
        return HN_ERR;
    }
    *kind = "email", *subj = ebuf;
    return HN_OK;
}

/* An id path parameter (params[1]): 1..2^63-1, or answered 400. */
static int path_id(const hn_api_req *rq, hn_api_resp *rs, const char *name, char *out, size_t cap) {
    char err[HN_PARAM_ERR_CAP];
    int64_t id;
    if (hn_param_int(name, rq->nparams > 1 ? rq->params[1] : "", 1, INT64_MAX, 0, &id, err,
                     sizeof(err)) != HN_OK) {
        hn_api_error(rs, 400, "%s", err);
        return HN_ERR;
    }
    snprintf(out, cap, "%lld", (long long)id);
    return HN_OK;
}

/* "visitor": …, "email": … (the other null) */
static void subject_members(hn_buf *b, bool *first, const PGresult *res, int row, int col) {
    bool is_email = strcmp(PQgetvalue(res, row, col), "email") == 0;
    const char *s = PQgetvalue(res, row, col + 1);
    hn_json_kstr(b, first, "visitor", is_email ? NULL : s);
    hn_json_kstr(b, first, "email", is_email ? s : NULL);
}

static void answer(hn_api_resp *rs, int status, hn_buf *b) {
    hn_rt_answer(rs, b);
    rs->status = status;
}

static int run(hn_api_worker *w, hn_api_resp *rs, const char *sql) {
    PGresult *r = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, sql, 0, NULL);
    if (r == NULL) return HN_ERR;
    PQclear(r);
    return HN_OK;
}

static void rollback(hn_api_worker *w) {
    PGconn *pg = hn_api_pg(w);
    if (pg) PQclear(PQexec(pg, "ROLLBACK"));
}

/* Answers {"widget_id", "<member>": [obj(row) of each row, at most cap],
 * "truncated": more rows than cap} for a query's rows, and clears them.
 * cap < 0: every row, and no "truncated". */
static void answer_rows(const hn_api_req *rq, hn_api_resp *rs, PGresult *res, const char *member, int cap,
                        void (*obj)(hn_buf *, const PGresult *, int)) {
    hn_buf out = {0};
    bool f = true;
    int n = PQntuples(res);
    hn_buf_append(&out, "{", 1);
    hn_json_kint(&out, &f, "widget_id", hn_rt_widget_id(rq));
    hn_json_kraw(&out, &f, member, "[", 1);
    for (int i = 0; i < n && (cap < 0 || i < cap); i++) {
        if (i) hn_buf_append(&out, ",", 1);
        obj(&out, res, i);
    }
    hn_buf_append(&out, "]", 1);
    if (cap >= 0) hn_json_kbool(&out, &f, "truncated", n > cap);
    hn_buf_append(&out, "}", 1);
    PQclear(res);
    hn_rt_answer(rs, &out);
    hn_buf_free(&out);
}

/* INCR hn:annot:version: the annotations caches of every api reload. Best
 * effort (they also expire). */
void hn_annot_bump(hn_api_worker *w, int64_t widget_id) {
    hn_annot_invalidate(widget_id);
    hn_rcl *c = hn_api_redis(w);
    if (c == NULL) return;
    redisReply *r = hn_rcl_command(c, "INCR %s", HN_KEY_ANNOT_VERSION);
    if (r == NULL) hn_api_redis_broken(w);
    else freeReplyObject(r);
}

/* ---- notes ----------------------------------------------------------------------- */

#define NOTE_COLS "id, subject_kind, subject, body, author, " HN_SQL_MS("created_at")

static const char notes_sql[] =
    "SELECT " NOTE_COLS " FROM visitor_notes"
    " WHERE widget_id = $1 AND subject_kind = $2 AND subject = $3 ORDER BY id DESC LIMIT 1001";
static const char note_add_sql[] =
    "INSERT INTO visitor_notes (widget_id, subject_kind, subject, body, author)"
    " VALUES ($1, $2, $3, $4, nullif((SELECT name FROM api_tokens WHERE id = $5), ''))"
    " RETURNING " NOTE_COLS;
static const char note_del_sql[] =
    "DELETE FROM visitor_notes WHERE widget_id = $1 AND id = $2 RETURNING id";
static const hn_col note_tail[] = {
    {"body", HN_COL_STR}, {"author", HN_COL_STR}, {"created_at", HN_COL_TIME},
};

static void note_obj(hn_buf *b, const PGresult *res, int row) {
    bool f = true;
    hn_buf_append(b, "{", 1);
    hn_json_kint(b, &f, "id", hn_rt_pg_int(res, row, 0));
    subject_members(b, &f, res, row, 1);
    hn_rt_pg_row(b, &f, res, row, 3, note_tail, (int)HN_ARRAY_LEN(note_tail));
    hn_buf_append(b, "}", 1);
}

void hn_route_notes(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    static const char *const allowed[] = {"visitor", "email"};
    const char *kind, *subj;
    char ebuf[EMAIL_MAX + 1], wbuf[24];
    if (!hn_rt_check_keys(rq, rs, allowed, 2)) return;
    if (query_subject(rq, rs, &kind, &subj, ebuf) != HN_OK) return;
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    const char *p[] = {wbuf, kind, subj};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, notes_sql, 3, p);
    if (res) answer_rows(rq, rs, res, "notes", LIST_CAP, note_obj);
}

void hn_route_note_add(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    body b = {0};
    hn_buf out = {0};
    char wbuf[24];
    if (!hn_rt_check_keys(rq, rs, NULL, 0) || read_body(rq, rs, &b) != HN_OK) goto out;
    if (b.text == NULL || b.text_len == 0) {
        hn_api_error(rs, 400, "body: want the note's text (1..%d characters)", NOTE_MAX_CHARS);
        goto out;
    }
    if (!hn_utf8_valid(b.text, b.text_len) || strlen(b.text) != b.text_len) {
        hn_api_error(rs, 400, "body: not valid UTF-8");
        goto out;
    }
    if (hn_chars(b.text, b.text_len) > NOTE_MAX_CHARS) {
        hn_api_error(rs, 400, "body: at most %d characters", NOTE_MAX_CHARS);
        goto out;
    }
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    const char *p[] = {wbuf, b.visitor ? "visitor" : "email", b.visitor ? b.visitor : b.email,
                       b.text, rq->who.token_id};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, note_add_sql, 5, p);
    if (res == NULL) goto out;
    note_obj(&out, res, 0);
    PQclear(res);
    hn_annot_bump(w, hn_rt_widget_id(rq));
    answer(rs, 201, &out);
out:
    body_free(&b);
    hn_buf_free(&out);
}

void hn_route_note_delete(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    char wbuf[24], id[24];
    if (!hn_rt_check_keys(rq, rs, NULL, 0) || path_id(rq, rs, "noteId", id, sizeof(id)) != HN_OK)
        return;
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    const char *p[] = {wbuf, id};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, note_del_sql, 2, p);
    if (res == NULL) return;
    int n = PQntuples(res);
    PQclear(res);
    if (n == 0) {
        hn_api_error(rs, 404, "note not found");
        return;
    }
    hn_annot_bump(w, hn_rt_widget_id(rq));
    rs->status = 204;
}

/* ---- tags ------------------------------------------------------------------------- */

static const char tags_sql[] =
    "SELECT subject_kind, subject, array_to_json(array_agg(tag ORDER BY tag))"
    " FROM visitor_tags WHERE widget_id = $1"
    "  AND ($2::text IS NULL OR (subject_kind, subject) IN"
    "       (SELECT subject_kind, subject FROM visitor_tags WHERE widget_id = $1 AND tag = $2))"
    " GROUP BY 1, 2 ORDER BY 1, 2 LIMIT 10001";
/* Two statements that never touch the same row (a DELETE and an INSERT …
 * ON CONFLICT of one row in one statement would not see each other). */
static const char tags_del_sql[] =
    "DELETE FROM visitor_tags WHERE widget_id = $1 AND subject_kind = $2 AND subject = $3"
    " AND tag <> ALL ($4::text[])";
static const char tags_add_sql[] =
    "INSERT INTO visitor_tags (widget_id, subject_kind, subject, tag)"
    " SELECT $1, $2, $3, t FROM unnest($4::text[]) t ON CONFLICT DO NOTHING";

/* a tagged subject: {"visitor"|"email", "tags"} */
static void tagged_obj(hn_buf *b, const PGresult *res, int row) {
    bool g = true;
    hn_buf_append(b, "{", 1);
    subject_members(b, &g, res, row, 0);
    hn_json_kraw(b, &g, "tags", PQgetvalue(res, row, 2), (size_t)PQgetlength(res, row, 2));
    hn_buf_append(b, "}", 1);
}

void hn_route_tags(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    static const char *const allowed[] = {"tag"};
    char wbuf[24];
    const char *tag = hn_api_query(rq, "tag");
    if (!hn_rt_check_keys(rq, rs, allowed, 1)) return;
    if (tag && !hn_tag_ok(tag, strlen(tag))) {
        hn_api_error(rs, 400, "tag: want [a-z0-9][a-z0-9_-]{0,31}");
        return;
    }
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    const char *p[] = {wbuf, tag};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, tags_sql, 2, p);
    if (res) answer_rows(rq, rs, res, "subjects", SUBJECTS_CAP, tagged_obj);
}

static int cmp_tag(const void *a, const void *b) { return strcmp(a, b); }

void hn_route_tags_set(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    body b = {0};
    hn_buf out = {0}, arr = {0};
    char wbuf[24];
    bool in_tx = false;
    if (!hn_rt_check_keys(rq, rs, NULL, 0) || read_body(rq, rs, &b) != HN_OK) goto out;
    if (!b.has_tags) {
        hn_api_error(rs, 400, "tags: want an array of strings ([] removes them)");
        goto out;
    }
    qsort(b.tags, (size_t)b.ntags, sizeof(b.tags[0]), cmp_tag);
    /* a text[] literal, each tag quoted: [a-z0-9_-] needs no escape, but an
     * unquoted null would be a NULL element */
    hn_buf_append(&arr, "{", 1);
    for (int i = 0; i < b.ntags; i++) {
        if (i) hn_buf_append(&arr, ",", 1);
        hn_buf_append(&arr, "\"", 1);
        hn_buf_append(&arr, b.tags[i], strlen(b.tags[i]));
        hn_buf_append(&arr, "\"", 1);
    }
    hn_buf_append(&arr, "}", 2);           /* with the NUL */
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    const char *p[] = {wbuf, b.visitor ? "visitor" : "email", b.visitor ? b.visitor : b.email, arr.p};
    if (run(w, rs, "BEGIN") != HN_OK) goto out;
    in_tx = true;
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, tags_del_sql, 4, p);
    if (res == NULL) goto out;
    PQclear(res);
    res = hn_api_pg_exec(w, rs, PGRES_COMMAND_OK, tags_add_sql, 4, p);
    if (res == NULL) goto out;
    PQclear(res);
    if (run(w, rs, "COMMIT") != HN_OK) goto out;
    in_tx = false;
    hn_annot_bump(w, hn_rt_widget_id(rq));
    bool f = true;
    hn_buf_append(&out, "{", 1);
    hn_json_kstr(&out, &f, "visitor", b.visitor);
    hn_json_kstr(&out, &f, "email", b.email);
    hn_json_kraw(&out, &f, "tags", "[", 1);
    for (int i = 0; i < b.ntags; i++) {
        if (i) hn_buf_append(&out, ",", 1);
        hn_json_str(&out, b.tags[i], strlen(b.tags[i]));
    }
    hn_buf_append(&out, "]}", 2);
    hn_rt_answer(rs, &out);
out:
    if (in_tx) rollback(w);
    body_free(&b);
    hn_buf_free(&arr);
    hn_buf_free(&out);
}

/* ---- bans ------------------------------------------------------------------------- */

#define BAN_COLS "id, subject_kind, subject, block_tracking, reason, author, " HN_SQL_MS("created_at")

static const char bans_sql[] =
    "SELECT " BAN_COLS " FROM visitor_bans WHERE widget_id = $1 ORDER BY id DESC LIMIT 10001";
static const char ban_lock_sql[] = "SELECT pg_advisory_xact_lock(hashtext('bans:' || $1))";
static const char ban_add_sql[] =
    "INSERT INTO visitor_bans AS b (widget_id, subject_kind, subject, block_tracking, reason, author,"
    "  subject_key)"
    " VALUES ($1, $2, $3, $4, $5, nullif((SELECT name FROM api_tokens WHERE id = $6), ''), $7)"
    " ON CONFLICT (widget_id, subject_kind, subject) DO UPDATE"
    "  SET block_tracking = excluded.block_tracking, reason = excluded.reason, author = excluded.author,"
    "  subject_key = excluded.subject_key"
    " RETURNING " BAN_COLS ", (xmax = 0)";
static const char ban_del_sql[] =
    "DELETE FROM visitor_bans WHERE widget_id = $1 AND id = $2 RETURNING id";
/* The widget's members of hn:bans:{w} (docs/RULES.md §5): its bans, and for
 * a ban by email the visitor ids of the sessions that identified with
 * it. */
static const char ban_members_sql[] =
    "SELECT CASE WHEN block_tracking THEN '' ELSE 'c:' END"
    "       || CASE subject_kind WHEN 'visitor' THEN 'v:' ELSE 'e:' END || subject"
    " FROM visitor_bans WHERE widget_id = $1"
    " UNION SELECT CASE WHEN b.block_tracking THEN '' ELSE 'c:' END || 'v:' || s.visitor_id"
    " FROM visitor_bans b JOIN widget_visitor_sessions s"
    "  ON s.widget_id = b.widget_id AND s.visitor_email_key = b.subject_key"
    " WHERE b.widget_id = $1 AND b.subject_kind = 'email' AND s.visitor_id IS NOT NULL";
static const hn_col ban_tail[] = {
    {"block_tracking", HN_COL_BOOL}, {"reason", HN_COL_STR}, {"author", HN_COL_STR},
    {"created_at", HN_COL_TIME},
};

static void ban_obj(hn_buf *b, const PGresult *res, int row) {
    bool f = true;
    hn_buf_append(b, "{", 1);
    hn_json_kint(b, &f, "id", hn_rt_pg_int(res, row, 0));
    subject_members(b, &f, res, row, 1);
    hn_rt_pg_row(b, &f, res, row, 3, ban_tail, (int)HN_ARRAY_LEN(ban_tail));
    hn_buf_append(b, "}", 1);
}

/* Appends the commands that make hn:bans:{w} the rows of ban_members_sql:
 * MULTI, DEL, SADD (PING when none), EXEC (the fourth reply). The caller
 * reads those four replies before bans_tell: on a Redis Cluster the set
 * and the counters live on different nodes, and a counter bumped before
 * the EXEC ran would have a collector reload the old set and never again. */
#define BANS_TX_REPLIES 4
static void bans_append(hn_rcl *c, int64_t wid, const PGresult *res) {
    char key[HN_KEY_CAP];
    hn_key_bans(key, (uint64_t)wid);
    int n = PQntuples(res);
    const char **argv = hn_xcalloc((size_t)n + 2, sizeof(*argv));
    size_t *len = hn_xcalloc((size_t)n + 2, sizeof(*len));
    hn_rcl_append(c, "MULTI");
    hn_rcl_append(c, "DEL %s", key);
    argv[0] = "SADD", len[0] = 4;
    argv[1] = key, len[1] = strlen(key);
    for (int i = 0; i < n; i++) argv[2 + i] = PQgetvalue(res, i, 0), len[2 + i] = (size_t)PQgetlength(res, i, 0);
    if (n) hn_rcl_append_argv(c, n + 2, argv, len);
    else hn_rcl_append(c, "PING");
    hn_rcl_append(c, "EXEC");
    free(argv);
    free(len);
}

/* After the EXEC's reply: HINCRBY hn:bans:widgets; and with bump, INCR
 * hn:bans:version, which tells the collectors. The number of replies. */
static int bans_tell(hn_rcl *c, int64_t wid, bool bump) {
    char wbuf[24];
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)wid);
    hn_rcl_append(c, "HINCRBY %s %s 1", HN_KEY_BANS_WIDGETS, wbuf);
    if (bump) hn_rcl_append(c, "INCR %s", HN_KEY_BANS_VERSION);
    return bump ? 2 : 1;
}

/* Rewrites hn:bans:{w} from the transaction's view, then tells the
 * collectors (hn:bans:widgets, hn:bans:version). HN_OK or answered. */
int hn_bans_sync(hn_api_worker *w, hn_api_resp *rs, int64_t wid) {
    static __thread bool resyncing;
    char wbuf[24];
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)wid);
    const char *p[] = {wbuf};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, ban_members_sql, 1, p);
    if (res == NULL) return HN_ERR;
    int rc = HN_ERR;
    redisReply *r[6] = {0};
    hn_rcl *c = hn_rt_redis(w, rs);
    if (c == NULL) goto out;
    bans_append(c, wid, res);
    if (hn_rt_redis_replies(w, rs, BANS_TX_REPLIES, r) != HN_OK ||
        !hn_rt_redis_ok(rs, r[3], REDIS_REPLY_ARRAY, "EXEC"))
        goto out;
    bans_tell(c, wid, true);
    if (hn_rt_redis_replies(w, rs, 2, r + 4) != HN_OK ||
        !hn_rt_redis_ok(rs, r[5], REDIS_REPLY_INTEGER, "INCR"))
        goto out;
    rc = HN_OK;
    if (r[5]->integer == 1 && !resyncing) {
        /* hn:bans:version was new: the first ban ever, or a Redis that lost
         * its data — then the other widgets' sets are gone too: write them
         * all again (best effort; the collectors kept what they had). */
        hn_api_resp lrs = {0};
        PGresult *ws = hn_api_pg_exec(w, &lrs, PGRES_TUPLES_OK,
                                      "SELECT DISTINCT widget_id FROM visitor_bans WHERE widget_id <> $1", 1, p);
        hn_buf_free(&lrs.body);
        resyncing = true;
        for (int i = 0; ws && i < PQntuples(ws); i++) {
            hn_api_resp scratch = {0};
            if (hn_bans_sync(w, &scratch, hn_rt_pg_int(ws, i, 0)) != HN_OK)
                hn_warn("event=bans_resync_failed widget=%s", PQgetvalue(ws, i, 0));
            hn_buf_free(&scratch.body);
        }
        resyncing = false;
        if (ws) hn_info("event=bans_resynced widgets=%d", PQntuples(ws) + 1);
        PQclear(ws);
    }
out:
    hn_rt_redis_free(r, 6);
    PQclear(res);
    return rc;
}

/* One statement on the engine's connection; false (err set) on failure. */
static bool resync_exec(PGconn *pg, const char *sql, int np, const char *const *p, ExecStatusType want,
                        PGresult **out, char *err, size_t cap) {
    PGresult *r = PQexecParams(pg, sql, np, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(r) != want) {
        snprintf(err, cap, "postgres: %.*s", hn_pg_line(PQerrorMessage(pg)), PQerrorMessage(pg));
        PQclear(r);
        return false;
    }
    if (out) *out = r;
    else PQclear(r);
    return true;
}

/* Each widget's set in a transaction of its own that holds the widget's
 * ban lock (as the ban routes do: a ban committed meanwhile is not
 * overwritten by an older view), then one INCR of hn:bans:version once
 * every set is written: the collectors reload once, from whole sets, and
 * a resync that fails half way leaves the version missing, so the next
 * check does it all again. */
int hn_bans_resync(PGconn *pg, hn_rcl *rc, char *err, size_t cap) {
    redisReply *x = hn_rcl_command(rc, "EXISTS %s", HN_KEY_BANS_VERSION);
    if (x == NULL || x->type != REDIS_REPLY_INTEGER) {
        snprintf(err, cap, "redis EXISTS: %s", x && x->type == REDIS_REPLY_ERROR ? x->str : hn_rcl_errstr(rc));
        if (x) freeReplyObject(x);
        return HN_ERR;
    }
    bool have = x->integer == 1;
    freeReplyObject(x);
    if (have) return HN_OK;
    PGresult *ws = NULL;
    if (!resync_exec(pg, "SELECT DISTINCT widget_id FROM visitor_bans ORDER BY 1", 0, NULL, PGRES_TUPLES_OK, &ws,
                     err, cap))
        return HN_ERR;
    int rc_ = HN_OK, n = PQntuples(ws);
    for (int i = 0; i < n && rc_ == HN_OK; i++) {
        const char *p[] = {PQgetvalue(ws, i, 0)};
        PGresult *m = NULL;
        if (!resync_exec(pg, "BEGIN", 0, NULL, PGRES_COMMAND_OK, NULL, err, cap) ||
            !resync_exec(pg, ban_lock_sql, 1, p, PGRES_TUPLES_OK, NULL, err, cap) ||
            !resync_exec(pg, ban_members_sql, 1, p, PGRES_TUPLES_OK, &m, err, cap)) {
            rc_ = HN_ERR;
        } else {
            int64_t wid = hn_rt_pg_int(ws, i, 0);
            bans_append(rc, wid, m);
            PQclear(m);
            /* the set's four replies, then (only when they are fine) the HINCRBY's */
            for (int k = 0, nr = BANS_TX_REPLIES; k < nr; k++) {
                redisReply *r = NULL;
                if (hn_rcl_get_reply(rc, (void **)&r) != REDIS_OK) {
                    snprintf(err, cap, "redis: %s", hn_rcl_errstr(rc));
                    rc_ = HN_ERR;
                    break;
                }
                if ((k == 3 && r->type != REDIS_REPLY_ARRAY) || r->type == REDIS_REPLY_ERROR) {
                    snprintf(err, cap, "redis: %s", r->type == REDIS_REPLY_ERROR ? r->str : "EXEC failed");
                    rc_ = HN_ERR;
                }
                freeReplyObject(r);
                if (k == BANS_TX_REPLIES - 1 && rc_ == HN_OK) nr += bans_tell(rc, wid, false);
            }
        }
        PGresult *end = PQexec(pg, rc_ == HN_OK ? "COMMIT" : "ROLLBACK");
        PQclear(end);
    }
    PQclear(ws);
    if (rc_ == HN_OK && n > 0) {
        x = hn_rcl_command(rc, "INCR %s", HN_KEY_BANS_VERSION);
        if (x == NULL || x->type != REDIS_REPLY_INTEGER) {
            snprintf(err, cap, "redis INCR: %s", x && x->type == REDIS_REPLY_ERROR ? x->str : hn_rcl_errstr(rc));
            rc_ = HN_ERR;
        }
        if (x) freeReplyObject(x);
    }
    if (n) hn_warn("event=bans_resynced reason=version_missing widgets=%d ok=%d", n, rc_ == HN_OK);
    return rc_;
}

void hn_route_bans(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    char wbuf[24];
    if (!hn_rt_check_keys(rq, rs, NULL, 0)) return;
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    const char *p[] = {wbuf};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, bans_sql, 1, p);
    if (res) answer_rows(rq, rs, res, "bans", SUBJECTS_CAP, ban_obj);
}

void hn_route_ban_add(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    body b = {0};
    hn_buf out = {0};
    char wbuf[24];
    bool in_tx = false;
    PGresult *res = NULL;
    int64_t wid = hn_rt_widget_id(rq);
    if (!hn_rt_check_keys(rq, rs, NULL, 0) || read_body(rq, rs, &b) != HN_OK) goto out;
    if (b.reason && (!hn_utf8_valid(b.reason, b.reason_len) || strlen(b.reason) != b.reason_len ||
                     hn_chars(b.reason, b.reason_len) > REASON_MAX_CHARS)) {
        hn_api_error(rs, 400, "reason: want at most %d characters of UTF-8", REASON_MAX_CHARS);
        goto out;
    }
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)wid);
    if (run(w, rs, "BEGIN") != HN_OK) goto out;
    in_tx = true;
    const char *lp[] = {wbuf};
    if ((res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, ban_lock_sql, 1, lp)) == NULL) goto out;
    PQclear(res);
    hn_buf ek = {0};                    /* a ban by email finds its sessions by the email key */
    if (b.email) {
        hn_dk_email_key(&ek, b.email, strlen(b.email));
        hn_buf_append(&ek, "", 1);
    }
    const char *p[] = {wbuf, b.visitor ? "visitor" : "email", b.visitor ? b.visitor : b.email,
                       b.block_tracking ? "true" : "false", b.reason, rq->who.token_id, ek.p};
    res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, ban_add_sql, 7, p);
    hn_buf_free(&ek);
    if (res == NULL) goto out;
    if (hn_bans_sync(w, rs, wid) != HN_OK || run(w, rs, "COMMIT") != HN_OK) goto out;
    in_tx = false;
    hn_annot_bump(w, hn_rt_widget_id(rq));
    bool created = PQgetvalue(res, 0, 7)[0] == 't';
    ban_obj(&out, res, 0);
    answer(rs, created ? 201 : 200, &out);
out:
    if (in_tx) rollback(w);
    if (res) PQclear(res);
    body_free(&b);
    hn_buf_free(&out);
}

void hn_route_ban_delete(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    char wbuf[24], id[24];
    bool in_tx = false;
    PGresult *res = NULL;
    int64_t wid = hn_rt_widget_id(rq);
    if (!hn_rt_check_keys(rq, rs, NULL, 0) || path_id(rq, rs, "banId", id, sizeof(id)) != HN_OK)
        return;
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)wid);
    if (run(w, rs, "BEGIN") != HN_OK) return;
    in_tx = true;
    const char *lp[] = {wbuf};
    if ((res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, ban_lock_sql, 1, lp)) == NULL) goto out;
    PQclear(res);
    const char *p[] = {wbuf, id};
    if ((res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, ban_del_sql, 2, p)) == NULL) goto out;
    if (PQntuples(res) == 0) {
        hn_api_error(rs, 404, "ban not found");
        goto out;
    }
    if (hn_bans_sync(w, rs, wid) != HN_OK || run(w, rs, "COMMIT") != HN_OK) goto out;
    in_tx = false;
    hn_annot_bump(w, hn_rt_widget_id(rq));
    rs->status = 204;
out:
    if (in_tx) rollback(w);
    if (res) PQclear(res);
}

/* ---- annotations ------------------------------------------------------------------ */

/* a subject with annotations: {"visitor"|"email", "tags", "notes" (count),
 * "banned", "block_tracking"} */
static void annotated_obj(hn_buf *b, const PGresult *res, int row) {
    bool g = true;
    hn_buf_append(b, "{", 1);
    subject_members(b, &g, res, row, 0);
    hn_json_kraw(b, &g, "tags", PQgetvalue(res, row, 2), (size_t)PQgetlength(res, row, 2));
    hn_json_kint(b, &g, "notes", hn_rt_pg_int(res, row, 3));
    hn_json_kbool(b, &g, "banned", !PQgetisnull(res, row, 4));
    hn_json_kbool(b, &g, "block_tracking", PQgetvalue(res, row, 4)[0] == 't');
    hn_buf_append(b, "}", 1);
}

void hn_route_annotations(hn_api_worker *w, const hn_api_req *rq, hn_api_resp *rs) {
    char wbuf[24];
    if (!hn_rt_check_keys(rq, rs, NULL, 0)) return;
    snprintf(wbuf, sizeof(wbuf), "%lld", (long long)hn_rt_widget_id(rq));
    const char *p[] = {wbuf};
    PGresult *res = hn_api_pg_exec(w, rs, PGRES_TUPLES_OK, hn_annot_sql, 1, p);
    if (res) answer_rows(rq, rs, res, "subjects", -1, annotated_obj);
}
