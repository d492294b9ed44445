/*
 * auth.c: the api's token cache.
 *
 * A thread of its own (with its own PGconn) reads
 *   SELECT id, token_sha256, widget_id FROM api_tokens WHERE revoked_at IS NULL
 * every HERENOW_TOKEN_REFRESH_MS, builds a table sorted by id and swaps it
 * in under a mutex. The main thread checks a bearer token without any I/O:
 * split "hn_<id>_<secret>", find the id (binary search, under the mutex,
 * copying the row out), then compare the SHA-256 of the whole token with
 * the stored one in constant time. A revoked token therefore stops working
 * within one refresh interval. When PostgreSQL goes away the last table
 * stays in use; when it was never reachable, every check answers
 * HN_AUTH_UNAVAILABLE (503).
 *
 * Neither the token nor its digest is ever logged.
 */
#include "api/internal.h"
#include "common/log.h"
#include "common/token.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct token_row {
    char    id[HN_TOKEN_ID_LEN + 1];
    uint8_t digest[HN_TOKEN_SHA256_LEN];
    int64_t widget_id;          /* -1: every widget */
} token_row;

struct hn_api_auth {
    const hn_config *cfg;
    pthread_t        thread;
    bool             started;
    pthread_mutex_t  mu;        /* guards everything below */
    pthread_cond_t   cv;        /* wakes the thread early to stop */
    bool             stop;
    bool             loaded;
    token_row       *rows;
    size_t           nrows;
    uint64_t         loaded_at;  /* hn_mono_ms() of the last good load */
    uint64_t         refreshes, refresh_errors;
};

static const char *reasons[HN_AUTH__COUNT] = {
    "ok", "missing", "scheme", "malformed", "invalid", "unavailable",
};

const char *hn_auth_reason(hn_auth_result r) {
    return (unsigned)r < HN_AUTH__COUNT ? reasons[r] : "unknown";
}

static int row_cmp(const void *a, const void *b) {
    return strcmp(((const token_row *)a)->id, ((const token_row *)b)->id);
}

/* Reads the table; HN_OK with a new array in *out (sorted), or HN_ERR with
 * a reason. Binary results: bytea and int4 arrive as raw bytes. */
static int load(PGconn *pg, token_row **out, size_t *nout, char *err, size_t cap) {
    PGresult *r = PQexecParams(pg,
                               "SELECT id, token_sha256, widget_id FROM api_tokens"
                               " WHERE revoked_at IS NULL",
                               0, NULL, NULL, NULL, NULL, 1);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        const char *e = PQresultErrorMessage(r);
        snprintf(err, cap, "%.*s", (int)strcspn(e, "\n"), e);
        PQclear(r);
        return HN_ERR;
    }
    int n = PQntuples(r);
    token_row *rows = hn_xcalloc((size_t)(n ? n : 1), sizeof(*rows));
    size_t k = 0, bad = 0;
    for (int i = 0; i < n; i++) {
        const char *id = PQgetvalue(r, i, 0);
        int idlen = PQgetlength(r, i, 0);
        if (!hn_token_id_valid(id, (size_t)idlen) || PQgetlength(r, i, 1) != HN_TOKEN_SHA256_LEN) {
            bad++;
            continue;
        }
        memcpy(rows[k].id, id, HN_TOKEN_ID_LEN);
        rows[k].id[HN_TOKEN_ID_LEN] = '\0';
        memcpy(rows[k].digest, PQgetvalue(r, i, 1), HN_TOKEN_SHA256_LEN);
        rows[k].widget_id = -1;   /* NULL: every widget */
        if (!PQgetisnull(r, i, 2)) {
            /* a scope we cannot read is no scope at all: skip the token
             * (fail closed) rather than let it see every widget */
            uint32_t v;
            if (PQgetlength(r, i, 2) != 4) {
                bad++;
                continue;
            }
            memcpy(&v, PQgetvalue(r, i, 2), 4);
            rows[k].widget_id = (int32_t)ntohl(v);
        }
        k++;
    }
    PQclear(r);
    if (bad) hn_warn("event=tokens_skipped count=%zu reason='bad id, digest or scope'", bad);
    qsort(rows, k, sizeof(*rows), row_cmp);
    *out = rows;
    *nout = k;
    return HN_OK;
}

static void *auth_main(void *arg) {
    hn_api_auth *a = arg;
    PGconn *pg = NULL;
    bool failing = false;
    char err[512];
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        pthread_mutex_unlock(&a->mu);
        token_row *rows = NULL;
        size_t n = 0;
        int rc = HN_ERR;
        if (pg && PQstatus(pg) != CONNECTION_OK) {
            PQfinish(pg);
            pg = NULL;
        }
        if (pg == NULL) pg = hn_pg_connect(a->cfg->database_url, &hn_api_pg_opts(a->cfg, "herenow-api-tokens"), err, sizeof(err));
        if (pg) rc = load(pg, &rows, &n, err, sizeof(err));
        if (rc != HN_OK && failing) {
            hn_debug("event=token_refresh_failed err='%s'", err);
        } else if (rc != HN_OK) {
            hn_warn("event=token_refresh_failed err='%s'", err);
        }
        pthread_mutex_lock(&a->mu);
        if (rc == HN_OK) {
            token_row *old = a->rows;
            if (!a->loaded || failing) hn_info("event=tokens_loaded count=%zu", n);
            a->rows = rows;
            a->nrows = n;
            a->loaded = true;
            a->loaded_at = hn_mono_ms();
            a->refreshes++;
            free(old);
            failing = false;
        } else {
            a->refresh_errors++;
            failing = true;
        }
        if (a->stop) break;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ms = a->cfg->token_refresh_ms;
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!a->stop && pthread_cond_timedwait(&a->cv, &a->mu, &ts) != ETIMEDOUT) {}
    }
    pthread_mutex_unlock(&a->mu);
    if (pg) PQfinish(pg);
    return NULL;
}

hn_api_auth *hn_auth_create(const hn_config *cfg) {
    hn_api_auth *a = hn_xcalloc(1, sizeof(*a));
    a->cfg = cfg;
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->cv, &ca);
    pthread_condattr_destroy(&ca);
    return a;
}

int hn_auth_start(hn_api_auth *a, char *err, size_t cap) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int e = pthread_create(&a->thread, NULL, auth_main, a);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        snprintf(err, cap, "cannot start the token thread: %s", strerror(e));
        return HN_ERR;
    }
    a->started = true;
    return HN_OK;
}

void hn_auth_destroy(hn_api_auth *a) {
    if (a == NULL) return;
    if (a->started) {
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_broadcast(&a->cv);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    free(a->rows);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}

hn_auth_result hn_auth_bearer(const char *h, const char **tok, size_t *n) {
    if (h == NULL) return HN_AUTH_MISSING;
    while (*h == ' ' || *h == '\t') h++;
    if (*h == '\0') return HN_AUTH_MISSING;
    /* RFC 7235: the scheme is case-insensitive, then one or more spaces */
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) return HN_AUTH_SCHEME;
    h += 6;
    while (*h == ' ' || *h == '\t') h++;
    size_t len = strlen(h);
    while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t')) len--;
    *tok = h;
    *n = len;
    return HN_AUTH_OK;
}

hn_auth_result hn_auth_check(hn_api_auth *a, const char *header, hn_principal *who) {
    const char *tok = NULL;
    size_t n = 0;
    hn_auth_result r = hn_auth_bearer(header, &tok, &n);
    if (r != HN_AUTH_OK) return r;
    char id[HN_TOKEN_ID_LEN + 1];
    if (hn_token_split(tok, n, id) != HN_OK) return HN_AUTH_MALFORMED;

    token_row key, found;
    bool hit = false, loaded;
    memcpy(key.id, id, sizeof(key.id));
    pthread_mutex_lock(&a->mu);
    loaded = a->loaded;
    const token_row *row = loaded ? bsearch(&key, a->rows, a->nrows, sizeof(*a->rows), row_cmp) : NULL;
    if (row) {
        found = *row;
        hit = true;
    }
    pthread_mutex_unlock(&a->mu);
    if (!loaded) return HN_AUTH_UNAVAILABLE;

    /* Hash and compare for an unknown id too, against a digest that no
     * token has: both failures take the same path. */
    uint8_t digest[HN_TOKEN_SHA256_LEN];
    hn_token_sha256(tok, n, digest);
    if (!hit) memset(found.digest, 0, sizeof(found.digest));
    bool eq = hn_token_digest_eq(digest, found.digest);
    if (!hit || !eq) return HN_AUTH_INVALID;
    snprintf(who->token_id, sizeof(who->token_id), "%s", found.id);
    who->widget_id = found.widget_id;
    return HN_AUTH_OK;
}

void hn_auth_stats_get(hn_api_auth *a, hn_auth_stats *s) {
    pthread_mutex_lock(&a->mu);
    s->loaded = a->loaded;
    s->tokens = a->nrows;
    s->age_ms = a->loaded ? hn_mono_ms() - a->loaded_at : 0;
    s->refreshes = a->refreshes;
    s->refresh_errors = a->refresh_errors;
    pthread_mutex_unlock(&a->mu);
}

hn_auth_result hn_auth_by_id(hn_api_auth *a, const char *id, hn_principal *who) {
    token_row key;
    hn_auth_result r = HN_AUTH_INVALID;
    if (!hn_token_id_valid(id, strlen(id))) return HN_AUTH_INVALID;
    memcpy(key.id, id, sizeof(key.id));
    pthread_mutex_lock(&a->mu);
    if (!a->loaded) {
        r = HN_AUTH_UNAVAILABLE;
    } else {
        const token_row *row = bsearch(&key, a->rows, a->nrows, sizeof(*a->rows), row_cmp);
        if (row) {
            snprintf(who->token_id, sizeof(who->token_id), "%s", row->id);
            who->widget_id = row->widget_id;
            r = HN_AUTH_OK;
        }
    }
    pthread_mutex_unlock(&a->mu);
    return r;
}
