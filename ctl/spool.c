/*
 * spool.c: herenowctl spool inspect|replay — the collector's spool files
 * (common/spool.h) for operators: what a stopped or crashed collector left
 * behind, and sending it to Redis by hand (a collector does this itself at
 * its next start; replay is for a node that will not come back).
 */
#include "ctl/ctl.h"

#include "common/rcmd.h"
#include "common/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILES 1024

void hn_ctl_spool_usage(FILE *f) {
    fprintf(f, "spool inspect [--dir DIR | --file FILE]\n"
               "    per spool file (worker-N.spool in HERENOW_SPOOL_DIR, or DIR): entries,\n"
               "    records, bytes, damaged bytes, oldest and newest entry, and whether a\n"
               "    running collector holds it. Reads only.\n"
               "spool replay [--dir DIR | --file FILE]\n"
               "    sends every entry, in order, to HERENOW_REDIS_URL, then removes the file.\n"
               "    Refused for a file a running collector holds (it replays its own).\n");
}

typedef struct file_list {
    char *path[MAX_FILES];
    int   n;
} file_list;

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_files(const char *dir, const char *file, file_list *fl) {
    fl->n = 0;
    if (file) {
        fl->path[fl->n++] = strdup(file);
        return HN_OK;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        if (errno == ENOENT) return HN_OK;       /* never spooled */
        hn_ctl_errorf("spool: %s: %s", dir, strerror(errno));
        return HN_ERR;
    }
    struct dirent *de;
    int id;
    while ((de = readdir(d)) != NULL && fl->n < MAX_FILES) {
        if (!hn_spool_name_id(de->d_name, &id)) continue;
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        fl->path[fl->n++] = strdup(p);
    }
    closedir(d);
    qsort(fl->path, (size_t)fl->n, sizeof(char *), cmp_str);
    return HN_OK;
}

static void free_files(file_list *fl) {
    for (int i = 0; i < fl->n; i++) free(fl->path[i]);
    fl->n = 0;
}

static bool held_by_other(const char *path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool held = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return held;
}

static void fmt_ts(uint64_t ms, char *out, size_t cap) {
    if (ms == 0) {
        snprintf(out, cap, "-");
        return;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int inspect(const hn_config *cfg, int argc, char **argv) {
    const char *dir = cfg->spool_dir, *file = NULL;
    hn_ctl_flag flags[] = {
        {"dir", HN_CTL_STR, &dir, 0, 0, false},
        {"file", HN_CTL_STR, &file, 0, 0, false},
    };
    if (hn_ctl_parse_flags("spool inspect", argc, argv, flags, 2) != HN_OK)
        return HN_CTL_EXIT_USAGE;
    file_list fl;
    if (list_files(dir, file, &fl) != HN_OK) return HN_CTL_EXIT_FAIL;
    int rc = HN_CTL_EXIT_OK;
    uint64_t tot_entries = 0, tot_records = 0, tot_bytes = 0;
    for (int i = 0; i < fl.n; i++) {
        hn_spool sp;
        hn_spool_scan scan;
        char err[700], a[32], b[32];
        if (hn_spool_open(&sp, fl.path[i], false, true, HN_SPOOL_SYNC_NO, &scan, err,
                          sizeof(err)) != HN_OK) {
            hn_ctl_errorf("spool inspect: %s", err);
            rc = HN_CTL_EXIT_FAIL;
            continue;
        }
        fmt_ts(scan.first_ts_ms, a, sizeof(a));
        fmt_ts(scan.last_ts_ms, b, sizeof(b));
        printf("file=%s entries=%llu records=%llu bytes=%llu damaged_bytes=%llu tail_bytes=%llu "
               "oldest=%s newest=%s in_use=%s\n",
               fl.path[i], (unsigned long long)scan.entries, (unsigned long long)scan.records,
               (unsigned long long)sp.end, (unsigned long long)scan.bad_bytes,
               (unsigned long long)scan.tail_bytes, a, b, held_by_other(fl.path[i]) ? "yes" : "no");
        tot_entries += scan.entries;
        tot_records += scan.records;
        tot_bytes += sp.end;
        hn_spool_close(&sp);
    }
    printf("total files=%d entries=%llu records=%llu bytes=%llu\n", fl.n,
           (unsigned long long)tot_entries, (unsigned long long)tot_records,
           (unsigned long long)tot_bytes);
    free_files(&fl);
    return rc;
}

/* Reads n replies; error replies are counted (the first is shown).
 * HN_ERR: the connection broke. */
static int take_replies(hn_rcl *rc, uint32_t n, uint64_t *nerr) {
    for (uint32_t k = 0; k < n; k++) {
        redisReply *r = NULL;
        if (hn_rcl_get_reply(rc, (void **)&r) != REDIS_OK || r == NULL) return HN_ERR;
        if (r->type == REDIS_REPLY_ERROR && (*nerr)++ == 0)
            fprintf(stderr, "herenowctl: spool replay: error reply: %s\n", r->str);
        freeReplyObject(r);
    }
    return HN_OK;
}

/* Appends the entry's commands that are (xadd) or are not XADDs. */
static int append_part(hn_rcl *rc, const hn_spool_entry *e, bool xadd, uint32_t *n) {
    size_t off = 0;
    *n = 0;
    for (uint32_t k = 0; k < e->ncmds; k++) {
        hn_rcmd c;
        if (off >= e->len || hn_rcmd_scan(e->p + off, e->len - off, &c) != HN_OK) return HN_ERR;
        bool is_xadd = c.namelen == 4 && strncasecmp(c.name, "XADD", 4) == 0;
        if (is_xadd == xadd) {
            if (hn_rcl_append_formatted(rc, e->p + off, c.len) != REDIS_OK) return HN_ERR;
            (*n)++;
        }
        off += c.len;
    }
    return off == e->len ? HN_OK : HN_ERR;
}

/* Sends one entry and reads its replies. One server: its bytes as they
 * are, in their order. A cluster: each command to the node of its key,
 * the presence writes first and, once they answered, the stream appends
 * (as the collector does: a stream reader that sees a record finds its
 * session written; the nodes would otherwise run them in any order). */
static int send_entry(hn_rcl *rc, const hn_spool_entry *e, uint64_t *nerr) {
    if (!hn_rcl_cluster(rc)) {
        if (hn_rcl_append_formatted(rc, e->p, e->len) != REDIS_OK) return HN_ERR;
        return take_replies(rc, e->ncmds, nerr);
    }
    uint32_t n;
    for (int xadd = 0; xadd < 2; xadd++)
        if (append_part(rc, e, xadd, &n) != HN_OK || take_replies(rc, n, nerr) != HN_OK) return HN_ERR;
    return HN_OK;
}

/* Sends one file's entries; removes it when Redis took every one. */
static int replay_file(hn_rcl *rc, const char *path, uint64_t *records, uint64_t *errors) {
    hn_spool sp;
    hn_spool_scan scan;
    char err[700];
    if (hn_spool_open(&sp, path, false, false, HN_SPOOL_SYNC_NO, &scan, err, sizeof(err)) != HN_OK) {
        hn_ctl_errorf("spool replay: %s", err);
        return HN_ERR;
    }
    if (scan.tail_bytes)
        fprintf(stderr, "herenowctl: spool replay: %s: %llu damaged bytes at the end moved to %s\n",
                path, (unsigned long long)scan.tail_bytes, scan.tail_file);
    uint64_t off = 0, skipped, n = 0, nrec = 0, nerr = 0;
    hn_spool_entry e;
    while (hn_spool_read(&sp, &off, &e, &skipped) == HN_OK) {
        if (skipped)
            fprintf(stderr, "herenowctl: spool replay: %s: %llu damaged bytes skipped\n", path,
                    (unsigned long long)skipped);
        if (send_entry(rc, &e, &nerr) != HN_OK) goto lost;
        n++;
        nrec += e.nrec;
    }
    *records += nrec;
    *errors += nerr;
    if (nerr) {
        /* Redis refused some (OOM, LOADING, ...): the file stays for a later
         * replay; what went in may run twice, which is harmless. */
        hn_spool_close(&sp);
        hn_ctl_errorf("spool replay: %s: %llu error replies; the file is kept", path,
                      (unsigned long long)nerr);
        return HN_ERR;
    }
    unlink(path);
    hn_spool_close(&sp);
    printf("replayed file=%s entries=%llu records=%llu error_replies=0 (file removed)\n", path,
           (unsigned long long)n, (unsigned long long)nrec);
    return HN_OK;
lost:
    hn_ctl_errorf("spool replay: %s: Redis: %s (after %llu entries; the file is kept, a "
                  "replay again may repeat them, which is harmless)",
                  path, hn_rcl_errstr(rc)[0] ? hn_rcl_errstr(rc) : "no reply", (unsigned long long)n);
    hn_spool_close(&sp);
    return HN_ERR;
}

static int replay(const hn_config *cfg, int argc, char **argv) {
    const char *dir = cfg->spool_dir, *file = NULL;
    hn_ctl_flag flags[] = {
        {"dir", HN_CTL_STR, &dir, 0, 0, false},
        {"file", HN_CTL_STR, &file, 0, 0, false},
    };
    if (hn_ctl_parse_flags("spool replay", argc, argv, flags, 2) != HN_OK)
        return HN_CTL_EXIT_USAGE;
    file_list fl;
    if (list_files(dir, file, &fl) != HN_OK) return HN_CTL_EXIT_FAIL;
    if (fl.n == 0) {
        printf("nothing to replay\n");
        return HN_CTL_EXIT_OK;
    }
    for (int i = 0; i < fl.n; i++) {
        if (held_by_other(fl.path[i])) {
            hn_ctl_errorf("spool replay: %s is in use by a running collector (it replays its own "
                          "spool once Redis is reachable); nothing done", fl.path[i]);
            free_files(&fl);
            return HN_CTL_EXIT_FAIL;
        }
    }
    hn_rcl *rc = hn_ctl_redis_connect(cfg);
    if (rc == NULL) {
        free_files(&fl);
        return HN_CTL_EXIT_FAIL;
    }
    int exit_rc = HN_CTL_EXIT_OK;
    uint64_t records = 0, errors = 0;
    for (int i = 0; i < fl.n; i++)
        if (replay_file(rc, fl.path[i], &records, &errors) != HN_OK) exit_rc = HN_CTL_EXIT_FAIL;
    printf("total records=%llu error_replies=%llu\n", (unsigned long long)records,
           (unsigned long long)errors);
    hn_rcl_free(rc);
    free_files(&fl);
    return exit_rc;
}

int hn_ctl_spool(const hn_config *cfg, int argc, char **argv) {
    static const hn_ctl_sub subs[] = {{"inspect", inspect}, {"replay", replay}};
    return hn_ctl_dispatch("spool", subs, HN_ARRAY_LEN(subs), hn_ctl_spool_usage, cfg, argc, argv);
}
