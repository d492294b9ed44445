/*
 * stream.h: the drain's Redis side — group "drain" on every shard
 * (hn_key_stream, proto/keys.h), read into the worker's batch. The legacy
 * stream keys (of another N) are legacy.c's.
 *
 * The entries' data points into the replies, which the worker keeps
 * (d->replies) until hn_drain_stream_release, after the batch is written.
 * Every call that fails on the connection closes it (d->rc NULL): the next
 * hn_drain_stream_connect makes it again, and the group with it.
 */
#ifndef HN_DRAIN_STREAM_H
#define HN_DRAIN_STREAM_H

#include "api/drain/worker.h"

/* Connects when not connected; XGROUP CREATE … MKSTREAM on every shard. */
int  hn_drain_stream_connect(hn_drain_worker *d);
void hn_drain_stream_close(hn_drain_worker *d);
/* Frees the replies the batch's entries point into. */
void hn_drain_stream_release(hn_drain_worker *d);

/* XREADGROUP COUNT drain_batch [BLOCK drain_block_ms] over every shard with
 * the same id ("0": own pending, ">": new); the entries go to d->batch. */
int  hn_drain_stream_read(hn_drain_worker *d, const char *id, bool block);
/* XAUTOCLAIM on every shard: entries of consumers that died (idle longer
 * than drain_claim_idle_ms); sets d->claim_more when there are more. */
int  hn_drain_stream_claim(hn_drain_worker *d);
/* XACK entries [lo, hi) of the batch, one command per shard, pipelined. */
int  hn_drain_stream_ack(hn_drain_worker *d);
/* After the commit of a batch whose records an erasure left out, before its
 * ack: each such session's presence (hn:live, hn:ended, hn:sess) goes,
 * unless the session was seen or ended after those records (a visit that
 * goes on after the erasure is a new one: only the erased visitor's name,
 * email and phone leave its snapshot). Best effort, not atomic: a session
 * written between the check and the removal loses its snapshot until its
 * next beacons; an isolated batch (one entry per transaction) removes only
 * its last entry's; what stays expires with the live window. May close
 * d->rc (then the ack fails and the batch is redelivered). */
void hn_drain_stream_forget(hn_drain_worker *d);
/* For legacy.c, which reads the legacy stream keys like shards: one
 * command (NULL: the connection failed and is closed), an XREADGROUP or
 * XAUTOCLAIM entry taken into the batch as the key of index `shard`
 * (legacy.h), a read reply's entries taken (keys by hn_drain_key_index),
 * and a reply kept until hn_drain_stream_release. */
redisReply *hn_drain_stream_cmd(hn_drain_worker *d, int argc, const char **argv, const size_t *lens);
/* The same for an XREADGROUP over keys in several slots (hn_rcl_xread). */
redisReply *hn_drain_stream_xread(hn_drain_worker *d, int argc, const char **argv);
void hn_drain_stream_take_entry(hn_drain_worker *d, int shard, redisReply *e);
void hn_drain_stream_take_reply(hn_drain_worker *d, redisReply *r);
void hn_drain_stream_keep_reply(hn_drain_worker *d, redisReply *r);
/* XTRIM MINID to the group's progress on every shard (never closer to now
 * than stream_keep_ms), and the pending and lag gauges. */
void hn_drain_stream_trim(hn_drain_worker *d);

#endif
