/*
 * rshared.h: a process's Redis Cluster slot map, shared by the threads that
 * must not block on a refresh (the collector's workers, on their event
 * bases). One thread of its own reads CLUSTER SLOTS — when asked
 * (hn_rshared_want: a MOVED, a node lost), at most once per 100 ms, and
 * every refresh_ms otherwise — from the nodes it knows, then from the seeds,
 * and publishes the map under a version number. Readers poll the version
 * (an atomic load) and copy the map when it changed.
 */
#ifndef HN_RSHARED_H
#define HN_RSHARED_H

#include "common/redis.h"
#include "common/rmap.h"

/* Starts the refresher, after one read of the map now (HN_ERR and a reason
 * when no seed answered; the refresher keeps trying all the same). */
int      hn_rshared_start(const hn_redis_cfg *cfg, int timeout_ms, int refresh_ms, char *err, size_t cap);
void     hn_rshared_stop(void);
void     hn_rshared_want(void);
/* 0 until a map was read. */
uint64_t hn_rshared_version(void);
/* Copies the map; its version (0: none yet, m untouched). */
uint64_t hn_rshared_copy(hn_rmap *m);

#endif
