/*
 * rcmd.h: the RESP command scanner a Redis Cluster client routes by.
 *
 * The collector formats its commands itself as raw RESP ("*3\r\n$4\r\nHSET
 * \r\n…", common/buf.h hn_resp_*), the spool stores the same bytes, and
 * hiredis's redisFormatCommandArgv gives the same shape; so the cluster
 * client finds where a command goes by reading those bytes: its length, its
 * name, its first key and that key's slot (common/rslot.h), and a few flags
 * (transactions, keyless, read-only, keys over several slots). Pure: no I/O,
 * no allocation; the result points into the caller's buffer.
 *
 * Which arguments are keys comes from a table of command specs modelled on
 * Redis's own (first, last, step; numkeys; the STREAMS token), matched
 * case-insensitively:
 *   default (a command not in the table)    argv[1]
 *   EVAL, EVALSHA, EVAL_RO, EVALSHA_RO,     argv[3 .. 3+numkeys), numkeys = argv[2];
 *   FCALL, FCALL_RO                         keyless when numkeys is 0
 *   XREAD, XREADGROUP                       the first half of what follows STREAMS
 *   MSET, MSETNX                            argv[1, 3, 5 …]
 *   DEL, UNLINK, EXISTS, MGET, TOUCH,       argv[1 ..]
 *   WATCH, SUNION, SINTER, SDIFF, PFCOUNT, …
 *   OBJECT, XINFO, MEMORY, XGROUP           argv[2] (the subcommand first)
 *   MULTI, EXEC, DISCARD, UNWATCH, PING …   none (keyless)
 * A command missing the arguments its rule names (GET alone; XREAD without
 * a well-formed STREAMS part) is keyless: Redis answers it with the error.
 * A numkeys that is not a number, is negative or names more keys than there
 * are arguments left is HN_ERR, like a broken RESP frame.
 */
#ifndef HN_RCMD_H
#define HN_RCMD_H

#include "common/hn.h"
#include "common/rslot.h"

#include <stddef.h>
#include <stdint.h>

#define HN_RCMD_KEYLESS   0x01u  /* no key: PING, INFO, SCRIPT, CLUSTER, AUTH, SELECT, READONLY, READWRITE, ASKING,
                                    CLIENT, CONFIG, DBSIZE, TIME, ECHO, HELLO, FUNCTION, EVAL/EVALSHA/FCALL with
                                    numkeys 0, MULTI, EXEC, DISCARD, UNWATCH … */
#define HN_RCMD_MULTI     0x02u  /* MULTI */
#define HN_RCMD_EXEC      0x04u  /* EXEC or DISCARD (ends a transaction) */
#define HN_RCMD_READONLY  0x08u  /* a read-only command a replica may serve (GET, HGET, HGETALL, HMGET, ZSCORE,
                                    ZCOUNT, ZRANGE*, ZREVRANGE*, ZCARD, EXISTS, SMEMBERS, SISMEMBER, XRANGE,
                                    XREVRANGE, XREAD (not XREADGROUP), XLEN, XINFO, XPENDING, TYPE, TTL, PTTL,
                                    SCARD, HLEN, STRLEN, MGET, EVAL_RO … ) */
#define HN_RCMD_CROSSSLOT 0x10u  /* a multi-key command whose keys are not all in one slot */
#define HN_RCMD_WATCH     0x20u  /* WATCH or UNWATCH */

typedef struct hn_rcmd {
    size_t      len;               /* bytes of the whole command */
    uint32_t    argc;
    const char *name;   size_t namelen;   /* argv[0], as sent (any case) */
    const char *key;    size_t keylen;    /* the first key; NULL, 0 when keyless */
    int         slot;              /* hn_slot(key) or -1 */
    unsigned    flags;
} hn_rcmd;

/* Scans the command at buf[0..len): HN_OK and *c filled (name and key
 * point into buf); HN_AGAIN when the bytes end inside it; HN_ERR when it is
 * not a RESP array of bulk strings (or an inline command, a negative or
 * absurd length: argc > 1<<20, a bulk > 512 MiB; an empty array; a bad
 * numkeys). *c is written only on HN_OK. */
int hn_rcmd_scan(const char *buf, size_t len, hn_rcmd *c);

#endif
