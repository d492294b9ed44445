/*
 * rcluster.h: a worker's Redis writes on a Redis Cluster, behind hn_rconn
 * (collector/rconn.h: the same groups, done callbacks, take and spool
 * contract). See rcluster.c.
 */
#ifndef HN_RCLUSTER_H
#define HN_RCLUSTER_H

#include "collector/rconn.h"

typedef struct hn_rcluster hn_rcluster;

hn_rcluster *hn_rcluster_create(struct event_base *base, const hn_redis_cfg *cfg, const hn_rconn_cbs *cbs,
                                void *ctx);
void     hn_rcluster_destroy(hn_rcluster *c);
void     hn_rcluster_start(hn_rcluster *c);
void     hn_rcluster_send(hn_rcluster *c, const char *buf, size_t len, uint32_t ncmds, uint64_t tag);
void     hn_rcluster_set_timeouts(hn_rcluster *c, int reply_ms, int connect_ms);   /* -1: unchanged */
uint32_t hn_rcluster_take(hn_rcluster *c, hn_rconn_take_fn fn, void *ctx);
void     hn_rcluster_halt(hn_rcluster *c);
void     hn_rcluster_tee(hn_rcluster *c, int fd);
void     hn_rcluster_set_flush_wait(hn_rcluster *c, int us);
bool     hn_rcluster_up(const hn_rcluster *c);
size_t   hn_rcluster_buffered(const hn_rcluster *c);
uint32_t hn_rcluster_groups(const hn_rcluster *c);

#endif
