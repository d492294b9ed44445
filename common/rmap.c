/* rmap.c: see rmap.h. */
#include "common/rmap.h"

#include "common/hn.h"

#include <stdio.h>
#include <string.h>

static int node_index(hn_rmap *m, const char *host, int port, const char *id) {
    for (int i = 0; i < m->nnodes; i++)
        if (m->nodes[i].port == port && strcmp(m->nodes[i].host, host) == 0) {
            if (id && *id && !m->nodes[i].id[0]) snprintf(m->nodes[i].id, sizeof(m->nodes[i].id), "%s", id);
            return i;
        }
    if (m->nnodes == HN_RMAP_NODES_MAX) return -1;
    hn_rmap_node *n = &m->nodes[m->nnodes];
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    snprintf(n->id, sizeof(n->id), "%s", id ? id : "");
    n->master = -1;
    return m->nnodes++;
}

/* A node entry [endpoint, port, id, …]: its index, -1 for an unknown
 * endpoint ("?"), -2 for a reply of another shape or a full map. */
static int read_node(hn_rmap *m, const redisReply *r, const char *asked) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 || r->element[1]->type != REDIS_REPLY_INTEGER) return -2;
    const redisReply *ep = r->element[0];
    const char *host;
    if (ep->type == REDIS_REPLY_NIL || (ep->type == REDIS_REPLY_STRING && ep->len == 0)) host = asked;
    else if (ep->type == REDIS_REPLY_STRING && strcmp(ep->str, "?") == 0) return -1;
    else if (ep->type == REDIS_REPLY_STRING && ep->len < sizeof(m->nodes[0].host)) host = ep->str;
    else return -2;
    long long port = r->element[1]->integer;
    if (port < 1 || port > 65535) return -2;
    const char *id = r->elements > 2 && r->element[2]->type == REDIS_REPLY_STRING && r->element[2]->len == 40
                   ? r->element[2]->str : NULL;
    int i = node_index(m, host, (int)port, id);
    return i < 0 ? -2 : i;
}

int hn_rmap_parse(const redisReply *slots, const char *asked_host, hn_rmap *m, char *err, size_t cap) {
    memset(m, 0, sizeof(*m));
    memset(m->slot, HN_RMAP_NONE, sizeof(m->slot));
    if (slots == NULL || slots->type != REDIS_REPLY_ARRAY) {
        snprintf(err, cap, "CLUSTER SLOTS: not an array");
        return HN_ERR;
    }
    for (size_t e = 0; e < slots->elements; e++) {
        const redisReply *r = slots->element[e];
        if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 || r->element[0]->type != REDIS_REPLY_INTEGER ||
            r->element[1]->type != REDIS_REPLY_INTEGER) {
            snprintf(err, cap, "CLUSTER SLOTS: entry %zu is not [start, end, master, …]", e);
            return HN_ERR;
        }
        long long lo = r->element[0]->integer, hi = r->element[1]->integer;
        if (lo < 0 || hi >= HN_SLOTS || lo > hi) {
            snprintf(err, cap, "CLUSTER SLOTS: entry %zu: slots %lld..%lld", e, lo, hi);
            return HN_ERR;
        }
        int master = read_node(m, r->element[2], asked_host);
        if (master == -2) {
            snprintf(err, cap, "CLUSTER SLOTS: entry %zu: a bad master node (or more than %d nodes)", e,
                     HN_RMAP_NODES_MAX);
            return HN_ERR;
        }
        for (size_t k = 3; k < r->elements; k++) {
            int rep = read_node(m, r->element[k], asked_host);
            if (rep == -2) {
                snprintf(err, cap, "CLUSTER SLOTS: entry %zu: a bad replica node", e);
                return HN_ERR;
            }
            if (rep >= 0 && master >= 0 && rep != master) m->nodes[rep].master = master;
        }
        if (master >= 0)
            for (long long s = lo; s <= hi; s++) m->slot[s] = (uint8_t)master;
    }
    for (int s = 0; s < HN_SLOTS; s++) m->unassigned += m->slot[s] == HN_RMAP_NONE;
    return HN_OK;
}

int hn_rmap_master(const hn_rmap *m, uint16_t slot) {
    return slot < HN_SLOTS && m->slot[slot] != HN_RMAP_NONE ? m->slot[slot] : -1;
}

int hn_rmap_moved(hn_rmap *m, uint16_t slot, const char *host, int port) {
    if (slot >= HN_SLOTS) return -1;
    int i = node_index(m, host, port, NULL);
    if (i < 0) return -1;
    if (m->slot[slot] == HN_RMAP_NONE) m->unassigned--;
    m->slot[slot] = (uint8_t)i;
    m->nodes[i].master = -1;          /* it serves a slot: a master now (a failover) */
    return i;
}

int hn_rmap_node_at(hn_rmap *m, const char *host, int port) {
    return node_index(m, host, port, NULL);
}
