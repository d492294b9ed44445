/*
 * spool.c: see spool.h.
 */
#include "common/spool.h"
#include "common/log.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

static const char MAGIC[4] = {'H', 'N', 'S', '1'};

#define SCAN_CHUNK (64 * 1024)

int hn_spool_sync_parse(const char *s) {
    if (strcmp(s, "always") == 0) return HN_SPOOL_SYNC_ALWAYS;
    if (strcmp(s, "everysec") == 0) return HN_SPOOL_SYNC_EVERYSEC;
    if (strcmp(s, "no") == 0) return HN_SPOOL_SYNC_NO;
    return -1;
}

bool hn_spool_path(char *out, size_t cap, const char *dir, int id) {
    int n = snprintf(out, cap, "%s/worker-%d.spool", dir, id);
    return n > 0 && (size_t)n < cap;
}

bool hn_spool_name_id(const char *name, int *id) {
    int n = 0, v = -1;
    if (sscanf(name, "worker-%d.spool%n", &v, &n) != 1 || v < 0) return false;
    if (name[n] != '\0') return false;
    *id = v;
    return true;
}

static uint32_t le32(const unsigned char *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return le32toh(v);
}

static uint64_t le64(const unsigned char *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return le64toh(v);
}

static void put32(unsigned char *p, uint32_t v) { v = htole32(v); memcpy(p, &v, 4); }
static void put64(unsigned char *p, uint64_t v) { v = htole64(v); memcpy(p, &v, 8); }

static int pread_all(int fd, void *buf, size_t n, uint64_t off) {
    char *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n, (off_t)off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return HN_ERR;
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return HN_OK;
}

/* The entry at off, if a whole and intact one is there. */
static bool entry_at(hn_spool *sp, uint64_t off, hn_spool_entry *e) {
    unsigned char h[HN_SPOOL_HDR];
    if (off + HN_SPOOL_HDR > sp->end) return false;
    if (pread_all(sp->fd, h, sizeof(h), off) != HN_OK) return false;
    if (memcmp(h, MAGIC, 4) != 0) return false;
    uint32_t len = le32(h + 4);
    if (len > HN_SPOOL_ENTRY_MAX || off + HN_SPOOL_HDR + len > sp->end) return false;
    hn_buf_reset(&sp->rbuf);
    hn_buf_reserve(&sp->rbuf, len ? len : 1);
    if (len && pread_all(sp->fd, sp->rbuf.p, len, off + HN_SPOOL_HDR) != HN_OK) return false;
    uLong crc = crc32(0L, h + 4, 20);
    crc = crc32(crc, (const Bytef *)sp->rbuf.p, len);
    if ((uint32_t)crc != le32(h + 24)) return false;
    e->len = len;
    e->ncmds = le32(h + 8);
    e->nrec = le32(h + 12);
    e->ts_ms = le64(h + 16);
    e->p = sp->rbuf.p;
    e->size = HN_SPOOL_HDR + (uint64_t)len;
    return true;
}

int hn_spool_read(hn_spool *sp, uint64_t *off, hn_spool_entry *e, uint64_t *skipped) {
    *skipped = 0;
    if (entry_at(sp, *off, e)) {
        *off += e->size;
        return HN_OK;
    }
    /* Damage: look for the next magic whose entry holds. */
    char chunk[SCAN_CHUNK + 3];
    uint64_t pos = *off + 1;
    while (pos + HN_SPOOL_HDR <= sp->end) {
        size_t want = sp->end - pos < sizeof(chunk) ? (size_t)(sp->end - pos) : sizeof(chunk);
        if (pread_all(sp->fd, chunk, want, pos) != HN_OK) break;
        for (size_t i = 0; i + 4 <= want; i++) {
            if (memcmp(chunk + i, MAGIC, 4) != 0) continue;
            if (entry_at(sp, pos + i, e)) {
                *skipped = pos + i - *off;
                *off = pos + i + e->size;
                return HN_OK;
            }
        }
        pos += want > 3 ? want - 3 : want;    /* a magic may straddle two chunks */
    }
    *skipped = sp->end - *off;
    *off = sp->end;
    return HN_SPOOL_END;
}

/* Copies the damaged tail [from, end) to <path>.bad-<time>. */
static void move_tail_aside(hn_spool *sp, uint64_t from, hn_spool_scan *scan) {
    char out[sizeof(scan->tail_file)];
    snprintf(out, sizeof(out), "%s.bad-%lld", sp->path, (long long)time(NULL));
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        hn_warn("event=spool_tail_not_saved file='%s' err='%s'", out, strerror(errno));
        return;
    }
    char buf[SCAN_CHUNK];
    for (uint64_t pos = from; pos < sp->end;) {
        size_t want = sp->end - pos < sizeof(buf) ? (size_t)(sp->end - pos) : sizeof(buf);
        if (pread_all(sp->fd, buf, want, pos) != HN_OK || write(fd, buf, want) != (ssize_t)want) {
            hn_warn("event=spool_tail_not_saved file='%s' err='%s'", out, strerror(errno));
            break;
        }
        pos += want;
    }
    fsync(fd);
    close(fd);
    snprintf(scan->tail_file, sizeof(scan->tail_file), "%s", out);
}

int hn_spool_open(hn_spool *sp, const char *path, bool create, bool read_only, hn_spool_sync sync,
                  hn_spool_scan *scan, char *err, size_t cap) {
    memset(sp, 0, sizeof(*sp));
    memset(scan, 0, sizeof(*scan));
    sp->fd = -1;
    sp->sync = sync;
    snprintf(sp->path, sizeof(sp->path), "%s", path);
    int flags = O_CLOEXEC | (read_only ? O_RDONLY : O_RDWR | O_APPEND | (create ? O_CREAT : 0));
    sp->fd = open(path, flags, 0600);
    if (sp->fd < 0) {
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        return HN_ERR;
    }
    if (!read_only && flock(sp->fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        snprintf(err, cap, "%s: %s", path,
                 e == EWOULDBLOCK ? "in use by another process (a running collector?)" : strerror(e));
        close(sp->fd);
        sp->fd = -1;
        errno = e;
        return HN_ERR;
    }
    struct stat st;
    if (fstat(sp->fd, &st) != 0) {
        snprintf(err, cap, "%s: %s", path, strerror(errno));
        hn_spool_close(sp);
        return HN_ERR;
    }
    sp->end = (uint64_t)st.st_size;
    hn_buf_init(&sp->rbuf, 64 * 1024);

    uint64_t off = 0, good_end = 0, skipped;
    hn_spool_entry e;
    while (hn_spool_read(sp, &off, &e, &skipped) == HN_OK) {
        scan->bad_bytes += skipped;
        scan->entries++;
        scan->records += e.nrec;
        if (scan->first_ts_ms == 0) scan->first_ts_ms = e.ts_ms;
        scan->last_ts_ms = e.ts_ms;
        good_end = off;
    }
    scan->tail_bytes = sp->end - good_end;
    if (scan->tail_bytes && !read_only) {
        move_tail_aside(sp, good_end, scan);
        if (ftruncate(sp->fd, (off_t)good_end) != 0) {
            snprintf(err, cap, "%s: cannot cut the damaged tail: %s", path, strerror(errno));
            hn_spool_close(sp);
            return HN_ERR;
        }
        sp->end = good_end;
        fdatasync(sp->fd);
    }
    return HN_OK;
}

void hn_spool_close(hn_spool *sp) {
    if (sp->fd >= 0) {
        if (sp->dirty) fdatasync(sp->fd);
        close(sp->fd);      /* drops the lock */
    }
    sp->fd = -1;
    hn_buf_free(&sp->rbuf);
}

int hn_spool_append(hn_spool *sp, const char *p, size_t len, uint32_t ncmds, uint32_t nrec) {
    if (len > HN_SPOOL_ENTRY_MAX) {
        errno = EFBIG;
        return HN_ERR;
    }
    unsigned char h[HN_SPOOL_HDR];
    memcpy(h, MAGIC, 4);
    put32(h + 4, (uint32_t)len);
    put32(h + 8, ncmds);
    put32(h + 12, nrec);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    put64(h + 16, (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000);
    uLong crc = crc32(0L, h + 4, 20);
    crc = crc32(crc, (const Bytef *)p, (uInt)len);
    put32(h + 24, (uint32_t)crc);

    struct iovec iov[2] = {{h, sizeof(h)}, {(void *)p, len}};
    size_t want = sizeof(h) + len, done = 0;
    while (done < want) {
        /* O_APPEND: a short write continues where it stopped. */
        struct iovec v[2];
        int nv = 0;
        size_t skip = done;
        for (int i = 0; i < 2; i++) {
            if (skip >= iov[i].iov_len) { skip -= iov[i].iov_len; continue; }
            v[nv].iov_base = (char *)iov[i].iov_base + skip;
            v[nv].iov_len = iov[i].iov_len - skip;
            skip = 0;
            nv++;
        }
        ssize_t n = writev(sp->fd, v, nv);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : ENOSPC;
            if (ftruncate(sp->fd, (off_t)sp->end) != 0) {
                /* The partial entry stays: count it in, so that the next one
                 * lands after it and the reader skips it as damage. */
                struct stat st;
                if (fstat(sp->fd, &st) == 0 && (uint64_t)st.st_size > sp->end)
                    sp->end = (uint64_t)st.st_size;
            }
            errno = e;
            return HN_ERR;
        }
        done += (size_t)n;
    }
    sp->end += want;
    sp->dirty = true;
    if (sp->sync == HN_SPOOL_SYNC_ALWAYS) hn_spool_sync_now(sp);
    return HN_OK;
}

int hn_spool_truncate(hn_spool *sp) {
    if (ftruncate(sp->fd, 0) != 0) return HN_ERR;
    sp->end = 0;
    sp->released = 0;
    sp->dirty = true;
    return HN_OK;
}

void hn_spool_release(hn_spool *sp, uint64_t upto) {
    upto &= ~(uint64_t)4095;
    if (upto < sp->released + (1u << 20)) return;
    if (fallocate(sp->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)upto) == 0)
        sp->released = upto;
    /* A file system without holes keeps the bytes until the file is emptied. */
}

void hn_spool_sync_dir(const char *path) {
    char dir[512];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) snprintf(dir, sizeof(dir), ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

void hn_spool_sync_now(hn_spool *sp) {
    if (sp->fd >= 0 && sp->dirty) {
        fdatasync(sp->fd);
        sp->dirty = false;
    }
}

void hn_spool_tick(hn_spool *sp) {
    if (sp->sync == HN_SPOOL_SYNC_EVERYSEC) hn_spool_sync_now(sp);
}
