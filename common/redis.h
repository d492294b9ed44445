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
#include <stdbool.h>

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

/* A deployment's Redis: one server (redis:// or unix://), or a Redis
 * Cluster given by seed nodes (redis+cluster://[:password@]h1:p1,h2:p2,…;
 * the only db is 0). docs/OPERATIONS.md "Redis Cluster". */
#define HN_REDIS_SEEDS_MAX 16

typedef struct hn_redis_cfg {
    bool          cluster;
    int           nseeds;
    hn_redis_addr seed[HN_REDIS_SEEDS_MAX];  /* standalone: seed[0] is the server */
    int           retry_ms;     /* cluster: the budget for TRYAGAIN, CLUSTERDOWN and lost nodes */
} hn_redis_cfg;

/* Parses either form; a redis:// URL with commas is refused with a hint. */
int hn_redis_cfg_parse(const char *url, hn_redis_cfg *out, char *err, size_t cap);

/* Connects (blocking, with timeout), AUTHs and SELECTs. Returns a context
 * with the given read/write timeout set, or NULL with a reason in err. */
redisContext *hn_redis_connect(const hn_redis_addr *a, int timeout_ms, char *err, size_t cap);

/* Sends AUTH/SELECT on an already connected context (also used by the
 * non-blocking connection, in blocking mode right after connect). */
int hn_redis_handshake(redisContext *c, const hn_redis_addr *a, char *err, size_t cap);

#endif
