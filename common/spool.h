/*
 * spool.h: the collector's spool file — an append-only log of Redis
 * pipelines ("groups": the exact RESP bytes a worker would have sent), kept
 * while Redis is unreachable or too slow, replayed in order when it is back.
 * Used by the collector's workers (collector/worker.c) and by
 * `herenowctl spool inspect|replay`.
 *
 * One file per worker thread, <dir>/worker-<id>.spool. Each entry:
 *
 *   offset  size  field
 *        0     4  magic "HNS1"
 *        4     4  len      payload bytes (little-endian, as every field)
 *        8     4  ncmds    RESP commands in the payload (replies to expect)
 *       12     4  nrec     records (beacons) in the payload
 *       16     8  ts_ms    wall clock when the entry was written
 *       24     4  crc      CRC-32 (zlib) of bytes 4..23 and the payload
 *       28   len  payload
 *
 * A crash mid-write leaves a truncated or unchecked tail; hn_spool_open
 * finds it, moves its bytes aside to <file>.bad-<unix time> and truncates
 * the file to its last whole entry. Damage in the middle of a file (a
 * flipped bit) is skipped while reading: the reader looks for the next
 * entry whose magic and checksum hold (hn_spool_read reports the bytes it
 * skipped), so one bad entry costs that entry, not the rest of the file.
 *
 * The file is locked (flock, exclusive) while open: a second collector on
 * the same directory, or herenowctl while a collector runs, is refused.
 *
 * Not thread-safe: one owner at a time.
 */
#ifndef HN_SPOOL_H
#define HN_SPOOL_H

#include "common/buf.h"
#include "common/hn.h"

#define HN_SPOOL_HDR 28
#define HN_SPOOL_ENTRY_MAX (256u << 20)     /* a larger len is damage, not an entry */

typedef enum hn_spool_sync {
    HN_SPOOL_SYNC_ALWAYS,      /* fdatasync after every append */
    HN_SPOOL_SYNC_EVERYSEC,    /* hn_spool_tick fdatasyncs once a second when dirty */
    HN_SPOOL_SYNC_NO,          /* never: the kernel writes back when it wants */
} hn_spool_sync;

/* Parses always|everysec|no; -1 for anything else. */
int hn_spool_sync_parse(const char *s);

typedef struct hn_spool_entry {
    uint32_t    ncmds, nrec;
    uint64_t    ts_ms;
    const char *p;             /* payload, valid until the next read */
    size_t      len;
    uint64_t    size;          /* bytes in the file: HN_SPOOL_HDR + len */
} hn_spool_entry;

/* What hn_spool_open found in an existing file. */
typedef struct hn_spool_scan {
    uint64_t entries, records;
    uint64_t bad_bytes;        /* damaged bytes in the middle (skipped when read) */
    uint64_t tail_bytes;       /* truncated or damaged tail, moved aside */
    uint64_t first_ts_ms, last_ts_ms;
    char     tail_file[600];   /* where the tail went ("" when none) */
} hn_spool_scan;

typedef struct hn_spool {
    int      fd;
    char     path[512];
    uint64_t end;              /* file size: where the next entry goes */
    hn_spool_sync sync;
    bool     dirty;            /* appended since the last fdatasync */
    uint64_t released;         /* bytes before this given back to the file system (holes) */
    hn_buf   rbuf;             /* the entry being read */
} hn_spool;

/* Opens (creating it when create) and locks path, scans it and cuts off a
 * damaged tail (see above). read_only: no lock taken, nothing cut or moved
 * (inspect). Returns HN_OK; HN_ERR with a reason in err (cannot open, locked
 * by another process: errno EWOULDBLOCK). */
int  hn_spool_open(hn_spool *sp, const char *path, bool create, bool read_only, hn_spool_sync sync,
                   hn_spool_scan *scan, char *err, size_t cap);
void hn_spool_close(hn_spool *sp);

/* Appends one entry (one write(2)); syncs when the policy says so.
 * HN_ERR (errno kept) when the write failed: the file is cut back to its
 * previous end, so a failed append leaves no partial entry. */
int  hn_spool_append(hn_spool *sp, const char *p, size_t len, uint32_t ncmds, uint32_t nrec);

/* Reads the entry at *off. HN_OK: *e is filled and *off moves past it;
 * *skipped counts damaged bytes passed over to find it. HN_SPOOL_END: no whole
 * entry between *off and the end (*off moves past what was skipped). */
#define HN_SPOOL_END 1
int  hn_spool_read(hn_spool *sp, uint64_t *off, hn_spool_entry *e, uint64_t *skipped);

/* Empties the file (everything in it was acknowledged). */
int  hn_spool_truncate(hn_spool *sp);

/* Everything before upto was acknowledged: gives its disk blocks back
 * (a hole; offsets stay), in steps of 1 MiB or more. While Redis keeps up
 * only just, the file may never be empty for long; its unacknowledged part
 * is what takes disk. */
void hn_spool_release(hn_spool *sp, uint64_t upto);

/* fsync the directory holding path (after a rename into it). */
void hn_spool_sync_dir(const char *path);

/* everysec: fdatasync when dirty. Call about once a second. */
void hn_spool_tick(hn_spool *sp);
/* fdatasync now, whatever the policy (stop). */
void hn_spool_sync_now(hn_spool *sp);

/* Names worker-<id>.spool in dir into out; false when it does not fit. */
bool hn_spool_path(char *out, size_t cap, const char *dir, int id);
/* Parses "worker-<id>.spool" (a file name, no directory) into *id. */
bool hn_spool_name_id(const char *name, int *id);

#endif
