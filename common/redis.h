/*
 * redis.h: Redis addresses and blocking connections for the slow paths
 * (herenowctl, the collector's widget refresh and trimming). The collector's
 * hot path does not use these: it drives its own non-blocking connection
 * (collector/rconn.c).
 */
#ifndef HN_REDIS_H
#define HN_REDIS_H

#include "common/hn.h"

#include <hiredis/hiredis.h>

typedef struct hn_redis_addr {
    char host[256];      /* empty when unix socket */
    int  port;
    char path[256];      /* unix socket path, empty for TCP */
    char password[128];
    int  db;
} hn_redis_addr;

/* Parses redis://[:password@]host[:port][/db], redis://[user:password@]...,
 * unix:///path[?db=N]. Returns HN_OK, or HN_ERR with a reason in err. */
int hn_redis_addr_parse(const char *url, hn_redis_addr *out, char *err, size_t cap);

/* Connects (blocking, with timeout), AUTHs and SELECTs. Returns a context
 * with the given read/write timeout set, or NULL with a reason in err. */
redisContext *hn_redis_connect(const hn_redis_addr *a, int timeout_ms, char *err, size_t cap);

/* Sends AUTH/SELECT on an already connected context (also used by the
 * non-blocking connection, in blocking mode right after connect). */
int hn_redis_handshake(redisContext *c, const hn_redis_addr *a, char *err, size_t cap);

#endif
