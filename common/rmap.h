/*
 * rmap.h: a Redis Cluster's slot map, read from CLUSTER SLOTS (Redis 7.0's
 * reply: entries [start, end, master, replica…], a node [endpoint, port,
 * id, {metadata}]; an empty or null endpoint means "the host you asked", a
 * "?" endpoint a node whose address is not known: its slots stay
 * unassigned). Plain data, no I/O: the cluster client (issue 17) owns the
 * connections and asks this map where a slot lives, and updates one slot
 * on a MOVED answer until the next full read.
 */
#ifndef HN_RMAP_H
#define HN_RMAP_H

#include "common/rslot.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>

#define HN_RMAP_NODES_MAX 64
#define HN_RMAP_NONE      0xFF

typedef struct hn_rmap_node {
    char host[256];
    int  port;
    char id[41];          /* "" when not given */
    int  master;          /* the index of its master; -1: it is one */
} hn_rmap_node;

typedef struct hn_rmap {
    int          nnodes;
    hn_rmap_node nodes[HN_RMAP_NODES_MAX];
    uint8_t      slot[HN_SLOTS];      /* master node index, HN_RMAP_NONE: unassigned */
    int          unassigned;          /* slots without a master */
} hn_rmap;

/* Reads a CLUSTER SLOTS reply asked of asked_host. HN_OK, or HN_ERR and a
 * reason (a reply of another shape; more than HN_RMAP_NODES_MAX nodes). */
int hn_rmap_parse(const redisReply *slots, const char *asked_host, hn_rmap *m, char *err, size_t cap);
/* The master of a slot, or -1. */
int hn_rmap_master(const hn_rmap *m, uint16_t slot);
/* A MOVED answer: the slot now lives at host:port (a node added when new).
 * The node's index, or -1 when the map is full. */
int hn_rmap_moved(hn_rmap *m, uint16_t slot, const char *host, int port);

/* The index of the node host:port, added when new (an ASK target); -1 when
 * the map is full. No slot changes. */
int hn_rmap_node_at(hn_rmap *m, const char *host, int port);

#endif
