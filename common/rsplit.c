/* rsplit.c: see rsplit.h. */
#include "common/rsplit.h"

#include <stdio.h>

#define NO_BLOCK UINT32_MAX

/* The commands out[from..to] are one MULTI … EXEC unit: routed by slot,
 * CROSSSLOT when cross. */
static void close_block(hn_rsplit_cmd *out, uint32_t from, uint32_t to, int slot, int cross) {
    for (uint32_t j = from; j <= to; j++) {
        out[j].slot = slot;
        if (cross) out[j].flags |= HN_RCMD_CROSSSLOT;
    }
}

int hn_rsplit(const char *buf, size_t len, uint32_t ncmds, const hn_rmap *m, int keyless_slot,
              hn_rsplit_cmd *out, char *err, size_t cap) {
    if (keyless_slot < 0 || keyless_slot >= HN_SLOTS) {
        if (cap) snprintf(err, cap, "rsplit: keyless slot %d is not a slot", keyless_slot);
        return HN_ERR;
    }
    if (len > UINT32_MAX) {
        if (cap) snprintf(err, cap, "rsplit: a group of %zu bytes (at most 4 GiB)", len);
        return HN_ERR;
    }
    size_t off = 0;
    uint32_t block = NO_BLOCK;          /* the index of the open block's MULTI */
    int bslot = -1, bcross = 0;
    for (uint32_t i = 0; i < ncmds; i++) {
        hn_rcmd c;
        int rc = hn_rcmd_scan(buf + off, len - off, &c);
        if (rc != HN_OK) {
            if (!cap) return HN_ERR;
            if (rc == HN_AGAIN && off == len)
                snprintf(err, cap, "rsplit: the group holds %u commands, not %u", i, ncmds);
            else if (rc == HN_AGAIN)
                snprintf(err, cap, "rsplit: command %u (byte %zu) is cut short by the group's end", i, off);
            else
                snprintf(err, cap, "rsplit: command %u (byte %zu) is not a RESP command", i, off);
            return HN_ERR;
        }
        out[i] = (hn_rsplit_cmd){ .off = (uint32_t)off, .len = (uint32_t)c.len, .slot = c.slot,
                                  .node = HN_RMAP_NONE, .flags = c.flags };
        off += c.len;
        if (block == NO_BLOCK) {
            if (c.flags & HN_RCMD_MULTI) block = i, bslot = -1, bcross = 0;
            continue;
        }
        /* inside a block (a nested MULTI stays in it: Redis refuses it and goes on) */
        if (c.slot >= 0 && bslot < 0) bslot = c.slot;
        else if (c.slot >= 0 && c.slot != bslot) bcross = 1;
        if (c.flags & HN_RCMD_CROSSSLOT) bcross = 1;
        if (c.flags & HN_RCMD_EXEC) {
            close_block(out, block, i, bslot, bcross);
            block = NO_BLOCK;
        }
    }
    if (block != NO_BLOCK) {
        if (cap) snprintf(err, cap, "rsplit: the MULTI of command %u has no EXEC in the group", block);
        return HN_ERR;
    }
    if (off != len) {
        if (cap) snprintf(err, cap, "rsplit: %zu bytes after the group's %u commands", len - off, ncmds);
        return HN_ERR;
    }
    for (uint32_t i = 0; i < ncmds; i++)
        out[i].node = m->slot[out[i].slot >= 0 ? out[i].slot : keyless_slot];
    return HN_OK;
}
