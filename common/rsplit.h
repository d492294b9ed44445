/*
 * rsplit.h: one pipeline ("group": a buffer of ncmds RESP commands, as the
 * collector's workers and the spool hold them) split by node over a slot
 * map (common/rmap.h). Each command is scanned (common/rcmd.h) and given the
 * master of its first key's slot; the cluster client then sends each node
 * its commands, in command order, and puts the replies back in that order.
 * Pure: no I/O, no allocation.
 *
 *   HSET hn:sess:{7}:a …   slot of "7"   → node 4
 *   EVAL … 3 hn:live:{9} … slot of "9"   → node 0
 *   MULTI                  ┐
 *   DEL hn:bans:{3}        │ one unit: the slot of the block's first keyed
 *   SADD hn:bans:{3} v:x   │ command ("3") for all four
 *   EXEC                   ┘
 *   PING                   keyless       → the node of keyless_slot
 */
#ifndef HN_RSPLIT_H
#define HN_RSPLIT_H

#include "common/rcmd.h"
#include "common/rmap.h"

#include <stddef.h>
#include <stdint.h>

typedef struct hn_rsplit_cmd {
    uint32_t off, len;     /* the command's bytes: buf[off .. off+len) */
    int      slot;         /* the slot it is routed by: its first key's, for every command of a MULTI … EXEC
                              block the block's first keyed command's; -1 when keyless (routed by keyless_slot) */
    uint8_t  node;         /* m->slot[slot]: a node index of m, HN_RMAP_NONE when the slot has no master */
    unsigned flags;        /* HN_RCMD_*; HN_RCMD_CROSSSLOT on every command of a block whose keys span slots */
} hn_rsplit_cmd;

/* Scans ncmds commands from buf[0..len) into out[0..ncmds) and gives each
 * its node (m->slot[slot]; keyless → the node of keyless_slot, the
 * caller's choice, e.g. 0). A MULTI … EXEC (or DISCARD) block is one unit:
 * every command in it gets the node of the block's first keyed command (a
 * block without a key: keyless_slot's), and HN_RCMD_CROSSSLOT when the
 * block's keys span slots. A slot with no master gives HN_RMAP_NONE.
 * HN_OK; HN_ERR and a reason in err (cap bytes) on a malformed buffer, a
 * count mismatch (fewer commands, or bytes left after ncmds), a MULTI
 * without its EXEC, a buffer over 4 GiB or a keyless_slot out of range. */
int hn_rsplit(const char *buf, size_t len, uint32_t ncmds, const hn_rmap *m, int keyless_slot,
              hn_rsplit_cmd *out, char *err, size_t cap);

#endif
