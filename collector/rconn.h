/*
 * rconn.h: one worker's non-blocking Redis connection, driven by the
 * worker's event base.
 *
 * The worker hands over whole pipelines ("groups"): a buffer of RESP
 * commands it formatted itself, the number of commands in it, and a tag.
 * When every reply of a group has arrived, done() is called with the tag and
 * the number of error replies. An error that means "not now" (LOADING, OOM,
 * MISCONF, READONLY, BUSY, ...) does not complete a group: the connection is
 * dropped and the group sent again after a backoff. A group's bytes are kept until all of its
 * replies are in; if the connection drops, every unacknowledged group is
 * sent again, in order, once it is back. So a command may run twice (presence
 * counters may over-count after a reconnect; stream records carry event_id
 * and are de-duplicated downstream), but an accepted group is not lost while
 * the process lives. Buffered bytes are bounded by the caller: see
 * hn_rconn_buffered().
 *
 * Replies are parsed by hiredis' reader with object functions that allocate
 * nothing: we only need "ok or error, and the error text".
 *
 * Not thread-safe: everything happens on the owning worker's thread.
 */
#ifndef HN_RCONN_H
#define HN_RCONN_H

#include "common/redis.h"

#include <event2/event.h>

typedef struct hn_rconn hn_rconn;

typedef struct hn_rconn_cbs {
    /* All replies of a group arrived; nerr of them were error replies
     * (errtext: the first one's text, valid during the call). */
    void (*done)(void *ctx, uint64_t tag, uint32_t ncmds, uint32_t nerr, const char *errtext);
    /* The connection went up (true) or down (false, with a reason). */
    void (*state)(void *ctx, bool up, const char *why);
    /* Optional (NULL): each error reply that completes a command, before
     * done: index is the command's within its group (the cluster client
     * reads MOVED and ASK here). */
    void (*error)(void *ctx, uint64_t tag, uint32_t index, const char *errtext);
} hn_rconn_cbs;

hn_rconn *hn_rconn_create(struct event_base *base, const hn_redis_addr *addr,
                          const hn_rconn_cbs *cbs, void *ctx);
/* The same contract on a Redis Cluster (collector/rcluster.c): each group is
 * split per node and done when every node answered its share; up while a
 * slot map is known and every master's connection is up. The process's map
 * comes from common/rshared.h (hn_rshared_start first). */
hn_rconn *hn_rconn_create_cluster(struct event_base *base, const hn_redis_cfg *cfg,
                                  const hn_rconn_cbs *cbs, void *ctx);
void      hn_rconn_destroy(hn_rconn *c);

/* Starts connecting (and reconnects by itself with backoff after a loss). */
void hn_rconn_start(hn_rconn *c);

/* Queues a group: len bytes of ncmds RESP commands (copied). */
void hn_rconn_send(hn_rconn *c, const char *buf, size_t len, uint32_t ncmds, uint64_t tag);

/* Drop the connection (and send everything again on a new one) when no
 * reply came for ms while replies are due; 0: never. Set before start. */
void hn_rconn_set_reply_timeout(hn_rconn *c, int ms);

/* A connect (TCP, then AUTH/SELECT) that takes longer than ms is given
 * up and retried with backoff (default 2000). Set before start. */
void hn_rconn_set_connect_timeout(hn_rconn *c, int ms);

/* While corked, sends only queue; the uncork writes them together (one
 * send, unless the socket is full or the first group after a reconnect goes
 * alone): the cluster client sends a tick's shares to each node with it. */
void hn_rconn_cork(hn_rconn *c, bool on);

/* A cluster node's connection: a TRYAGAIN reply (a multi-key command on a
 * slot being moved) goes to the error callback, which sends that command
 * again alone, instead of sending the whole group again on a new
 * connection. */
void hn_rconn_pass_tryagain(hn_rconn *c);

/* On a Redis Cluster: how long (µs) a group's stream appends, sent once its
 * other commands are done, may wait for the next group to go out in the
 * same writes (the worker's tick, HERENOW_BATCH_WAIT_US); nothing on one
 * server. */
void hn_rconn_set_flush_wait(hn_rconn *c, int us);

/* While the connection is down: hands every unacknowledged group to fn, in
 * order, and forgets them (the caller keeps them elsewhere: the spool).
 * Returns how many; 0 and nothing done while up. */
typedef void (*hn_rconn_take_fn)(void *ctx, const char *buf, size_t len, uint32_t ncmds,
                                 uint64_t tag);
uint32_t hn_rconn_take(hn_rconn *c, hn_rconn_take_fn fn, void *ctx);

/* Closes the connection for good (stop): no reconnect; the groups stay
 * for hn_rconn_take. */
void hn_rconn_halt(hn_rconn *c);

/* Benchmarks only: every group's bytes are also written to fd (-1: off),
 * so the exact command mix can be replayed with `redis-cli --pipe`. */
void hn_rconn_tee(hn_rconn *c, int fd);

bool     hn_rconn_up(const hn_rconn *c);
size_t   hn_rconn_buffered(const hn_rconn *c);   /* bytes not yet acknowledged */
uint32_t hn_rconn_groups(const hn_rconn *c);     /* groups not yet acknowledged */


#endif
