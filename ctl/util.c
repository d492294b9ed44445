/* util.c: what herenowctl's commands share (see ctl.h). */
#include "ctl/ctl.h"

#include "common/pg.h"
#include "common/redis.h"
#include "common/token.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void hn_ctl_errorf(const char *fmt, ...) {
    va_list ap;
    fputs("herenowctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int parse_u64(const char *s, uint64_t *out) {
    char *end = NULL;
    if (s[0] < '0' || s[0] > '9') return HN_ERR;     /* no sign, no space */
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') return HN_ERR;
    *out = v;
    return HN_OK;
}

static int set_flag(const char *cmd, hn_ctl_flag *f, const char *val) {
    switch (f->type) {
    case HN_CTL_STR:
        *(const char **)f->dst = val;
        return HN_OK;
    case HN_CTL_U64: {
        uint64_t v;
        if (parse_u64(val, &v) != HN_OK) {
            hn_ctl_errorf("%s: --%s wants a non-negative integer, not '%s'", cmd, f->name, val);
            return HN_ERR;
        }
        if (v < f->min || v > f->max) {
            hn_ctl_errorf("%s: --%s %s is out of range [%llu, %llu]", cmd, f->name, val,
                          (unsigned long long)f->min, (unsigned long long)f->max);
            return HN_ERR;
        }
        *(uint64_t *)f->dst = v;
        return HN_OK;
    }
    case HN_CTL_LIST: {
        hn_ctl_list *l = f->dst;
        if (l->n >= (int)HN_ARRAY_LEN(l->v)) {
            hn_ctl_errorf("%s: --%s given more than %zu times", cmd, f->name,
                          HN_ARRAY_LEN(l->v));
            return HN_ERR;
        }
        l->v[l->n++] = val;
        return HN_OK;
    }
    case HN_CTL_BOOL:
        break;
    }
    return HN_ERR;
}

int hn_ctl_parse_flags(const char *cmd, int argc, char **argv, hn_ctl_flag *flags, size_t n) {
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            hn_ctl_errorf("%s: unexpected argument '%s' (see --help)", cmd, arg);
            return HN_ERR;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        hn_ctl_flag *f = NULL;
        for (size_t j = 0; j < n && f == NULL; j++)
            if (strlen(flags[j].name) == nl && strncmp(flags[j].name, name, nl) == 0)
                f = &flags[j];
        if (f == NULL) {
            hn_ctl_errorf("%s: unknown flag '--%.*s' (see --help)", cmd, (int)nl, name);
            return HN_ERR;
        }
        if (f->seen && f->type != HN_CTL_LIST) {
            hn_ctl_errorf("%s: --%s given twice", cmd, f->name);
            return HN_ERR;
        }
        f->seen = true;
        if (f->type == HN_CTL_BOOL) {
            if (eq != NULL) {
                hn_ctl_errorf("%s: --%s takes no value", cmd, f->name);
                return HN_ERR;
            }
            *(bool *)f->dst = true;
            continue;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (val == NULL) {
            if (i + 1 >= argc) {
                hn_ctl_errorf("%s: --%s needs a value", cmd, f->name);
                return HN_ERR;
            }
            val = argv[++i];
        }
        if (set_flag(cmd, f, val) != HN_OK) return HN_ERR;
    }
    return HN_OK;
}

/* libpq's notices (NOTICE, WARNING from the server) would otherwise go to
 * stderr unprefixed; keep warnings, in our format. */
static void pg_notice(void *arg, const char *message) {
    (void)arg;
    size_t n = strlen(message);
    while (n > 0 && message[n - 1] == '\n') n--;
    fprintf(stderr, "herenowctl: postgresql: %.*s\n", (int)n, message);
}

PGconn *hn_ctl_pg_connect(const hn_config *cfg) {
    char err[512];
    PGconn *pg = hn_pg_connect(cfg->database_url, &(hn_pg_opts){0}, err,
                               sizeof(err));
    if (pg == NULL) {
        hn_ctl_errorf("cannot connect to PostgreSQL (HERENOW_DATABASE_URL): %s", err);
        return NULL;
    }
    PQsetNoticeProcessor(pg, pg_notice, NULL);
    PGresult *r = hn_ctl_pg_exec(pg, "set client_min_messages", PGRES_COMMAND_OK,
                                 "SET client_min_messages = warning", 0, NULL);
    if (r == NULL) {
        PQfinish(pg);
        return NULL;
    }
    PQclear(r);
    return pg;
}

PGresult *hn_ctl_pg_exec(PGconn *pg, const char *what, ExecStatusType want, const char *sql,
                         int nparams, const char *const *params) {
    PGresult *r = PQexecParams(pg, sql, nparams, NULL, params, NULL, NULL, 0);
    if (r != NULL && PQresultStatus(r) == want) return r;
    const char *e = r ? PQresultErrorMessage(r) : PQerrorMessage(pg);
    if (e == NULL || *e == '\0') e = PQerrorMessage(pg);
    hn_ctl_errorf("%s: %.*s", what, hn_pg_line(e), e);
    PQclear(r);
    return NULL;
}

hn_rcl *hn_ctl_redis_connect(const hn_config *cfg) {
    hn_redis_cfg a;
    char err[256];
    if (hn_redis_cfg_parse(cfg->redis_url, &a, err, sizeof(err)) != HN_OK) {
        hn_ctl_errorf("HERENOW_REDIS_URL: %s", err);
        return NULL;
    }
    a.retry_ms = (int)cfg->redis_retry_ms;
    hn_rcl *c = hn_rcl_connect(&a, 5000, err, sizeof(err));
    if (c == NULL) {
        hn_ctl_errorf("cannot connect to Redis (HERENOW_REDIS_URL): %s", err);
        return NULL;
    }
    return c;
}

int hn_ctl_random_base62(char *out, size_t n) {
    if (hn_token_random_base62(out, n) != HN_OK) {
        hn_ctl_errorf("getrandom: %s", strerror(errno));
        return HN_ERR;
    }
    return HN_OK;
}

int hn_ctl_dispatch(const char *cmd, const hn_ctl_sub *subs, size_t n, void (*usage)(FILE *),
                    const hn_config *cfg, int argc, char **argv) {
    char names[128] = "";
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names);
        snprintf(names + l, sizeof(names) - l, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ",
                 subs[i].name);
    }
    if (argc < 2) {
        hn_ctl_errorf("%s: missing subcommand (%s)", cmd, names);
        usage(stderr);
        return HN_CTL_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        usage(stdout);
        return HN_CTL_EXIT_OK;
    }
    for (size_t i = 0; i < n; i++)
        if (strcmp(sub, subs[i].name) == 0) return subs[i].run(cfg, argc - 2, argv + 2);
    hn_ctl_errorf("%s: unknown subcommand '%s' (%s)", cmd, sub, names);
    return HN_CTL_EXIT_USAGE;
}

int hn_ctl_ids(const char *cmd, int *argc, char ***argv, int want, char ids[][24]) {
    int n = 0;
    while (*argc > 0 && strncmp((*argv)[0], "--", 2) != 0 && n < want) {
        int64_t v;
        int64_t max = n == 0 ? 2147483647 : INT64_MAX;
        if (!hn_parse_i64((*argv)[0], &v) || v < 1 || v > max) {
            hn_ctl_errorf("%s: %s must be a whole number from 1 to %lld", cmd, n == 0 ? "WIDGET_ID" : "RULE_ID",
                          (long long)max);
            return HN_ERR;
        }
        snprintf(ids[n++], 24, "%lld", (long long)v);
        (*argc)--, (*argv)++;
    }
    if (n != want) {
        hn_ctl_errorf("%s: want %s", cmd, want == 1 ? "WIDGET_ID" : "WIDGET_ID RULE_ID");
        return HN_ERR;
    }
    return HN_OK;
}
