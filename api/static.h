/*
 * static.h: the dashboard's static files, read into memory once at start
 * and served from there (no file I/O per request).
 *
 * Every file is kept as read (identity) and, when its type compresses and
 * the result is smaller, gzipped once (zlib level 9). Each encoding is its
 * own representation with its own strong ETag: "<16 hex>" and
 * "<16 hex>-gz", the first 8 bytes of the content's SHA-256 (as the
 * collector's widget script). A loaded hn_static is read-only: any number
 * of threads may call hn_static_find on it; the files it returns are valid
 * until hn_static_free.
 */
#ifndef HN_STATIC_H
#define HN_STATIC_H

#include "common/httpcache.h"

#define HN_STATIC_MAX_DEPTH 4                   /* directories below dir */
#define HN_STATIC_MAX_FILES 256
#define HN_STATIC_MAX_BYTES (8u * 1024 * 1024)  /* identity bytes, all files */
#define HN_STATIC_PATH_MAX  512                 /* URL path, with the leading "/" */

typedef struct hn_static hn_static;

typedef struct hn_static_file {
    const char *path;          /* URL path, "/index.html" */
    const char *ctype;         /* by extension; unknown: "application/octet-stream" */
    const char *data; size_t len;        /* identity */
    const char *gz;   size_t gzlen;      /* gzip, NULL when not worth it (binary type, not smaller) */
    char etag[HN_ETAG_CAP], etag_gz[HN_ETAG_CAP];   /* hn_http_etags */
    bool immutable_name;                 /* unused for now: false */
} hn_static_file;

/* Reads every regular file under dir (recursively, at most
 * HN_STATIC_MAX_DEPTH directories deep, HN_STATIC_MAX_FILES files,
 * HN_STATIC_MAX_BYTES in all) into memory. dir itself may be a symlink;
 * nothing below it is followed. Skipped: dot-files and dot-directories,
 * symlinks, special files, and (with a warning in the log) names that a
 * request could only name percent-encoded (outside [A-Za-z0-9._~!$&'()*+,;=:@-])
 * or paths longer than HN_STATIC_PATH_MAX. NULL with a one-line reason in
 * err on a missing dir, an unreadable file or directory, or a limit exceeded. */
hn_static *hn_static_load(const char *dir, char *err, size_t cap);
void       hn_static_free(hn_static *st);      /* NULL is fine */

/* The file for a raw request path (without the query, not decoded): "/"
 * and "" are "/index.html", a path ending in "/" that directory's
 * index.html, anything else an exact match (case-sensitive). NULL for no
 * such file, and without looking for a path that does not start with "/"
 * or has "..", "//", "\\" or "%" in it (so no escapes, no encoded NUL). A
 * directory without its trailing "/" is not found. st may be NULL (no
 * static dir): NULL. */
const hn_static_file *hn_static_find(const hn_static *st, const char *path);

/* Number of files and their identity bytes (metrics, the start log line);
 * 0 and 0 for st NULL. */
void hn_static_stats(const hn_static *st, size_t *files, size_t *bytes);

#endif
