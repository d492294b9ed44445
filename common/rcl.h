/*
 * rcl.h: the blocking Redis client of every slow path (the api's workers,
 * its live hub, drain and rules engine; the collector's housekeeping;
 * herenowctl), on one Redis server or on a Redis Cluster (issue 17,
 * docs/OPERATIONS.md "Redis Cluster").
 *
 * The calls mirror hiredis's blocking API, so a caller reads as it did
 * with a redisContext: append commands, then take the replies in command
 * order; or one command and its reply. Replies are hiredis replies, freed
 * with freeReplyObject.
 *
 *   hn_rcl *c = hn_rcl_connect(&cfg, 2000, err, sizeof(err));
 *   hn_rcl_append(c, "HGET %s %s", key, field);
 *   hn_rcl_append(c, "ZSCORE %s %s", live, sid);
 *   if (hn_rcl_get_reply(c, (void **)&r) != REDIS_OK) … hn_rcl_free(c), connect again
 *
 * On one server (redis://, unix://) every call is the hiredis call on one
 * context: nothing is added. On a cluster (redis+cluster://):
 *
 *  - each command goes to the master of its first key's slot (common/rcmd.h
 *    finds the key in the formatted bytes; MULTI … EXEC goes as one unit to
 *    the slot of its first keyed command); the commands appended before a
 *    get_reply are sent together, one pipeline per node, and their replies
 *    handed back in command order;
 *  - MOVED updates the slot and resends at once (the map is read again,
 *    at most once per 300 ms); ASK sends ASKING and the command to the
 *    node named, map unchanged; TRYAGAIN, CLUSTERDOWN, a node that became
 *    a replica (READONLY), LOADING and a lost connection are retried with
 *    jittered backoff within cfg->retry_ms; NOSCRIPT on an EVALSHA of a
 *    script made with hn_rcl_script loads it on that node and resends;
 *    CROSSSLOT is a bug of ours: counted, logged, handed back, never
 *    retried. At most 6 rounds per command.
 *  - A command resent after a lost connection may have run once already
 *    (as with the collector's connection: writes here are idempotent or
 *    counted as such).
 *  - Each node connection has the reply timeout given at connect: a node
 *    that does not answer in time breaks the client (get_reply returns
 *    REDIS_ERR), as a dead server does on one server.
 *
 * Not thread-safe: one client per thread. The redirect and retry counters
 * are process-wide (hn_rcl_metrics).
 */
#ifndef HN_RCL_H
#define HN_RCL_H

#include "common/buf.h"
#include "common/redis.h"

typedef struct hn_rcl hn_rcl;

/* Connects to the server, or reads the cluster's slot map from the first
 * seed that answers. NULL and a reason when it cannot. */
hn_rcl *hn_rcl_connect(const hn_redis_cfg *cfg, int timeout_ms, char *err, size_t cap);
void    hn_rcl_free(hn_rcl *c);

bool hn_rcl_cluster(const hn_rcl *c);
/* One server: its socket (for shutdown() from another thread to cut a
 * blocked call short). A cluster: -1 (its node sockets come and go). */
int  hn_rcl_fd(const hn_rcl *c);
/* 0 while usable; otherwise the client is broken: free it, connect again. */
int         hn_rcl_err(const hn_rcl *c);
const char *hn_rcl_errstr(const hn_rcl *c);

int  hn_rcl_append(hn_rcl *c, const char *fmt, ...);
int  hn_rcl_append_argv(hn_rcl *c, int argc, const char **argv, const size_t *lens);
/* Bytes of one RESP command, as hiredis or the collector formats them. */
int  hn_rcl_append_formatted(hn_rcl *c, const char *cmd, size_t len);
int  hn_rcl_get_reply(hn_rcl *c, void **reply);
redisReply *hn_rcl_command(hn_rcl *c, const char *fmt, ...);
redisReply *hn_rcl_command_argv(hn_rcl *c, int argc, const char **argv, const size_t *lens);

/* A cluster: while on, a read-only command alone in its unit (a GET, an
 * HMGET, a ZRANGE…: common/rcmd.h's HN_RCMD_READONLY) goes to a replica of
 * its slot's master when there is one that answers (READONLY sent first on
 * that connection), else to the master. For reads that may be as stale as
 * replication (the live list: docs/OPERATIONS.md). One server: nothing. */
void hn_rcl_read_replicas(hn_rcl *c, bool on);

/* XREAD or XREADGROUP over streams in any slots (argv: the whole command,
 * with STREAMS k1 … kn id1 … idn). One server: that command. A cluster:
 * one command per stream, sent together, without BLOCK; their entries are
 * merged into XREAD's reply shape [[key, [entry…]]…] (nil when none), and
 * when none came and BLOCK ms was asked, asked again every 10–50 ms until
 * ms pass. COUNT then applies per stream. */
redisReply *hn_rcl_xread(hn_rcl *c, int argc, const char **argv);

/* A Lua script run with EVALSHA: sha (41 bytes) is set, and on a cluster
 * the body is kept to load on a node that answers NOSCRIPT. On one server
 * it is loaded now (SCRIPT LOAD). HN_OK or HN_ERR (a broken client). */
int hn_rcl_script(hn_rcl *c, const char *body, char sha[41]);

/* A cluster's masters (one server: 1), for commands every master must run
 * (SCAN): hn_rcl_command_on(c, i, …) sends to the i-th. */
int         hn_rcl_masters(hn_rcl *c);
redisReply *hn_rcl_command_on(hn_rcl *c, int master, const char *fmt, ...);

/* Where a key lives: "host:port" of its master (one server: the server). */
const char *hn_rcl_node_of(hn_rcl *c, const char *key, size_t len);

/* Counts an event of a cluster client of the process (the collector's
 * evented one counts its own redirects here too). */
typedef enum { HN_RCL_MOVED, HN_RCL_ASK, HN_RCL_TRYAGAIN, HN_RCL_CLUSTERDOWN, HN_RCL_CONNECTION, HN_RCL_READONLY,
               HN_RCL_LOADING, HN_RCL_REFRESH, HN_RCL_CROSSSLOT, HN_RCL_NOSCRIPT, HN_RCL_EVENTS } hn_rcl_event;
void hn_rcl_note(hn_rcl_event e);

/* The process's cluster counters (redirects, retries, refreshes,
 * CROSSSLOT, NOSCRIPT) in Prometheus text; nothing on one server. */
void hn_rcl_metrics(hn_buf *b);

#endif
