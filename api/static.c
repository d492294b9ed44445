/*
 * static.c: the dashboard's files, read once at start (see static.h).
 *
 *   dir ──walk (openat, no symlinks below dir)──► files[]: path, identity,
 *        gzip (zlib 9, kept when smaller), ETags from SHA-256
 *   files[] sorted by path ──► hn_static_find: bsearch
 *
 * The walk goes through directory fds (openat/fdopendir with O_NOFOLLOW), so
 * a directory or file swapped for a symlink between the stat and the open
 * is refused rather than followed. Request paths are never decoded: a file
 * is found only by the exact bytes of its name, and names that a browser
 * would percent-encode are skipped at load.
 */
#include "api/static.h"
#include "common/httpcache.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct hn_static {
    hn_static_file *files;      /* sorted by path once loaded */
    size_t          n, cap;
    size_t          bytes;      /* identity bytes of all files */
};

/* ---- content types ------------------------------------------------------------ */

typedef struct ctype_entry {
    const char *ext;
    const char *ctype;
    bool        compress;       /* worth gzipping (not an already compressed format) */
} ctype_entry;

static const ctype_entry ctypes[] = {
    {"html",        "text/html; charset=utf-8",       true},
    {"htm",         "text/html; charset=utf-8",       true},
    {"js",          "text/javascript; charset=utf-8", true},
    {"mjs",         "text/javascript; charset=utf-8", true},
    {"css",         "text/css; charset=utf-8",        true},
    {"svg",         "image/svg+xml",                  true},
    {"json",        "application/json",               true},
    {"map",         "application/json",               true},
    {"webmanifest", "application/manifest+json",      true},
    {"txt",         "text/plain; charset=utf-8",      true},
    {"ico",         "image/x-icon",                   true},   /* mostly raw bitmaps */
    {"png",         "image/png",                      false},
    {"woff2",       "font/woff2",                     false},
};

static const ctype_entry unknown_type = {"", "application/octet-stream", false};

static const ctype_entry *ctype_of(const char *name) {
    const char *dot = strrchr(name, '.');
    if (dot == NULL) return &unknown_type;
    for (size_t i = 0; i < HN_ARRAY_LEN(ctypes); i++)
        if (strcasecmp(dot + 1, ctypes[i].ext) == 0) return &ctypes[i];
    return &unknown_type;
}

/* ---- one file -------------------------------------------------------------------- */

/* Characters a browser sends as they are in a path segment (RFC 3986
 * unreserved, sub-delims, ':' and '@'); a file with any other byte in its
 * name could only be asked for percent-encoded, which find never decodes. */
static bool name_ok(const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("-._~!$&'()*+,;=:@", c) != NULL))
            return false;
    }
    return true;
}

/* s for a log line or an error: at most 64 bytes, anything but printable
 * ASCII, quotes and backslashes as '?'. */
static const char *printable(const char *s, char out[72]) {
    size_t i = 0;
    for (; s[i] && i < 64; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c < 0x20 || c >= 0x7f || c == '\'' || c == '"' || c == '\\') ? '?' : (char)c;
    }
    strcpy(out + i, s[i] ? "..." : "");
    return out;
}

typedef struct walk {
    hn_static  *st;
    const char *dir;            /* as given: the root, for messages */
    char       *err;
    size_t      cap;
} walk;

/* Reads the regular file name (in directory dfd) as URL path upath. */
static int add_file(walk *w, int dfd, const char *name, const char *upath) {
    char pb[72];
    int rc = HN_ERR, fd = -1;
    char *data = NULL;
    struct stat sb;
    if (w->st->n == HN_STATIC_MAX_FILES) {
        snprintf(w->err, w->cap, "static dir %s: more than %d files", w->dir, HN_STATIC_MAX_FILES);
        goto out;
    }
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0) {
        snprintf(w->err, w->cap, "static dir %s: %s: %s", w->dir, printable(upath, pb), strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode)) {             /* swapped since the walk's fstatat */
        rc = HN_OK;
        goto out;
    }
    size_t size = (size_t)sb.st_size;
    if (size > HN_STATIC_MAX_BYTES - w->st->bytes) {
        snprintf(w->err, w->cap, "static dir %s: more than %u bytes in all (at %s)", w->dir,
                 HN_STATIC_MAX_BYTES, printable(upath, pb));
        goto out;
    }
    data = hn_xmalloc(size);
    size_t len = 0;
    while (len < size) {
        ssize_t r = read(fd, data + len, size - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            snprintf(w->err, w->cap, "static dir %s: %s: %s", w->dir, printable(upath, pb), strerror(errno));
            goto out;
        }
        if (r == 0) break;                  /* shrank meanwhile: what is there */
        len += (size_t)r;
    }

    hn_static *st = w->st;
    if (st->n == st->cap) {
        st->cap = st->cap ? st->cap * 2 : 32;
        st->files = hn_xreallocarray(st->files, st->cap, sizeof(*st->files));
    }
    hn_static_file *f = &st->files[st->n++];
    const ctype_entry *ct = ctype_of(name);
    *f = (hn_static_file){.path = hn_xstrdup(upath), .ctype = ct->ctype, .data = data, .len = len};
    data = NULL;
    st->bytes += len;
    hn_http_etags(f->data, f->len, f->etag, f->etag_gz);
    char *gz = NULL;
    size_t gzlen = 0;
    if (ct->compress && hn_gzip(f->data, f->len, &gz, &gzlen) != HN_OK) {
        snprintf(w->err, w->cap, "static dir %s: %s: zlib failed", w->dir, printable(upath, pb));
        goto out;
    }
    if (gz && gzlen < f->len) {
        f->gz = gz;
        f->gzlen = gzlen;
    } else {
        free(gz);
    }
    rc = HN_OK;
out:
    free(data);
    if (fd >= 0) close(fd);
    return rc;
}

/* Walks the directory open as dfd (taken over: closed here), whose URL
 * path is prefix ("" for the root), depth directories below the root. */
static int walk_dir(walk *w, int dfd, const char *prefix, int depth) {
    char pb[72];
    int rc = HN_ERR;
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        snprintf(w->err, w->cap, "static dir %s: %s/: %s", w->dir, printable(prefix, pb), strerror(errno));
        close(dfd);
        return HN_ERR;
    }
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            if (errno != 0) {
                snprintf(w->err, w->cap, "static dir %s: %s/: %s", w->dir, printable(prefix, pb),
                         strerror(errno));
                goto out;
            }
            break;
        }
        if (e->d_name[0] == '.') continue;  /* ".", "..", dot-files and dot-dirs */

        char upath[HN_STATIC_PATH_MAX];
        int n = snprintf(upath, sizeof(upath), "%s/%s", prefix, e->d_name);
        bool too_long = n < 0 || (size_t)n >= sizeof(upath);
        if (too_long || !name_ok(e->d_name)) {
            hn_warn("event=static_skipped dir='%s' path='%s' why=%s", w->dir, printable(upath, pb),
                    too_long ? "path_too_long" : "name_needs_escaping");
            continue;
        }
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
            snprintf(w->err, w->cap, "static dir %s: %s: %s", w->dir, printable(upath, pb), strerror(errno));
            goto out;
        }
        if (S_ISREG(sb.st_mode)) {
            if (add_file(w, dirfd(d), e->d_name, upath) != HN_OK) goto out;
        } else if (S_ISDIR(sb.st_mode)) {
            if (depth == HN_STATIC_MAX_DEPTH) {
                snprintf(w->err, w->cap, "static dir %s: %s/: more than %d directories deep", w->dir,
                         printable(upath, pb), HN_STATIC_MAX_DEPTH);
                goto out;
            }
            int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0) {
                snprintf(w->err, w->cap, "static dir %s: %s/: %s", w->dir, printable(upath, pb), strerror(errno));
                goto out;
            }
            if (walk_dir(w, sub, upath, depth + 1) != HN_OK) goto out;
        }
        /* symlinks, sockets, FIFOs, devices: not served */
    }
    rc = HN_OK;
out:
    closedir(d);
    return rc;
}

static int by_path(const void *a, const void *b) {
    return strcmp(((const hn_static_file *)a)->path, ((const hn_static_file *)b)->path);
}

hn_static *hn_static_load(const char *dir, char *err, size_t cap) {
    hn_static *st = hn_xcalloc(1, sizeof(*st));
    walk w = {.st = st, .dir = dir, .err = err, .cap = cap};
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);   /* dir itself may be a symlink */
    if (dfd < 0) {
        snprintf(err, cap, "static dir %s: %s", dir, strerror(errno));
        goto fail;
    }
    if (walk_dir(&w, dfd, "", 0) != HN_OK) goto fail;
    if (st->n > 1) qsort(st->files, st->n, sizeof(*st->files), by_path);
    return st;
fail:
    hn_static_free(st);
    return NULL;
}

void hn_static_free(hn_static *st) {
    if (st == NULL) return;
    for (size_t i = 0; i < st->n; i++) {
        free((char *)st->files[i].path);
        free((char *)st->files[i].data);
        free((char *)st->files[i].gz);
    }
    free(st->files);
    free(st);
}

void hn_static_stats(const hn_static *st, size_t *files, size_t *bytes) {
    *files = st ? st->n : 0;
    *bytes = st ? st->bytes : 0;
}

/* ---- requests --------------------------------------------------------------------- */

const hn_static_file *hn_static_find(const hn_static *st, const char *path) {
    if (st == NULL || st->n == 0 || path == NULL) return NULL;
    if (path[0] == '\0') path = "/";
    if (path[0] != '/' || strstr(path, "..") || strstr(path, "//") || strpbrk(path, "\\%"))
        return NULL;
    char buf[HN_STATIC_PATH_MAX];
    size_t n = strlen(path);
    if (path[n - 1] == '/') {
        if (n + sizeof("index.html") > sizeof(buf)) return NULL;
        memcpy(buf, path, n);
        memcpy(buf + n, "index.html", sizeof("index.html"));
        path = buf;
    }
    hn_static_file key = {.path = path};
    return bsearch(&key, st->files, st->n, sizeof(*st->files), by_path);
}
