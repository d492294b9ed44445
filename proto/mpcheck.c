/*
 * mpcheck.c: the structural pre-check and the hn_decoder around it.
 *
 *   buf ─► mp_precheck (one walk, no allocation) ─► msgpack_unpack into
 *          d->zone (cleared, first chunk kept) ─► msgpack_object
 *
 * Nothing here knows what a beacon is: the callers judge the objects.
 */
#include "proto/mpcheck.h"
#include "common/hn.h"
#include "proto/beacon.h"          /* HN_UDP_MAX */

#include <stdio.h>
#include <stdlib.h>

#define HN_DEPTH_MAX  8            /* open containers in one input */
#define HN_ZONE_CHUNK (HN_UDP_MAX * sizeof(msgpack_object) + 4096)

struct hn_decoder {
    msgpack_zone zone;
};

/* ---- the structural pre-check -------------------------------------------- */

/*
 * Why this exists: msgpack-c's msgpack_unpack allocates room for a
 * container's elements as soon as it reads the header, trusting the count.
 * A 5-byte input "dd ff ff ff ff" (an array claiming 4 billion elements)
 * would make it ask the zone for ~100 GB, and a few such datagrams would
 * take the collector down. So before msgpack-c sees any byte, this walks the
 * raw input once, iteratively (no recursion an attacker could deepen), and
 * accepts it only when it is exactly one well-formed object in which every
 * container claims no more elements than there are bytes left after its
 * header (each element takes at least one byte), nested at most
 * HN_DEPTH_MAX deep. That bounds what msgpack_unpack may allocate to about
 * len * sizeof(msgpack_object).
 */
static bool mp_precheck(const unsigned char *p, size_t len) {
    uint64_t left[HN_DEPTH_MAX];    /* elements still to read per open container */
    int depth = 0;
    size_t pos = 0;
    bool ok = false;

    for (;;) {
        if (pos >= len) goto out;                       /* truncated */
        unsigned c = p[pos];
        size_t avail = len - pos, hdr = 1;
        uint64_t body = 0, n = 0;                       /* payload bytes, elements */
        bool container = false;

        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
            /* fixint, nil, false, true: the byte is the whole object */
        } else if (c <= 0x8f) {
            n = 2u * (c & 0x0f), container = true;      /* fixmap */
        } else if (c <= 0x9f) {
            n = c & 0x0f, container = true;             /* fixarray */
        } else if (c <= 0xbf) {
            body = c & 0x1f;                            /* fixstr */
        } else {
            switch (c) {
            case 0xc4: case 0xd9: hdr = 2; break;       /* bin8, str8 */
            case 0xc5: case 0xda: hdr = 3; break;       /* bin16, str16 */
            case 0xc6: case 0xdb: hdr = 5; break;       /* bin32, str32 */
            case 0xc7: hdr = 3; break;                  /* ext8: len, type */
            case 0xc8: hdr = 4; break;
            case 0xc9: hdr = 6; break;
            case 0xca: hdr = 5; break;                  /* float32 */
            case 0xcb: hdr = 9; break;
            case 0xcc: case 0xd0: hdr = 2; break;       /* (u)int8 */
            case 0xcd: case 0xd1: hdr = 3; break;
            case 0xce: case 0xd2: hdr = 5; break;
            case 0xcf: case 0xd3: hdr = 9; break;
            case 0xd4: hdr = 2; body = 1; break;        /* fixext1: type, data */
            case 0xd5: hdr = 2; body = 2; break;
            case 0xd6: hdr = 2; body = 4; break;
            case 0xd7: hdr = 2; body = 8; break;
            case 0xd8: hdr = 2; body = 16; break;
            case 0xdc: case 0xde: hdr = 3; container = true; break;
            case 0xdd: case 0xdf: hdr = 5; container = true; break;
            default: goto out;                          /* 0xc1: never used */
            }
            if (avail < hdr) goto out;
            const unsigned char *h = p + pos + 1;
            uint64_t v = 0;
            switch (c) {
            case 0xc4: case 0xd9: case 0xc7:
                v = h[0]; break;
            case 0xc5: case 0xda: case 0xc8: case 0xdc: case 0xde:
                v = (uint64_t)h[0] << 8 | h[1]; break;
            case 0xc6: case 0xdb: case 0xc9: case 0xdd: case 0xdf:
                v = (uint64_t)h[0] << 24 | (uint64_t)h[1] << 16 | (uint64_t)h[2] << 8 | h[3]; break;
            default: break;
            }
            if (c == 0xde || c == 0xdf) n = 2 * v;
            else if (c == 0xdc || c == 0xdd) n = v;
            else if (v) body = v;
        }
        if (avail < hdr || body > avail - hdr) goto out;
        pos += hdr + (size_t)body;

        if (container) {
            if (n > len - pos || depth == HN_DEPTH_MAX) goto out;
            if (n > 0) {
                left[depth++] = n;
                continue;
            }
        }
        /* one element complete: close every container it completes */
        while (depth > 0 && --left[depth - 1] == 0) depth--;
        if (depth == 0) break;
    }
    ok = pos == len;                                    /* no trailing bytes */
out:
    return ok;
}

/* ---- the decoder ------------------------------------------------------- */

hn_decoder *hn_decoder_create(void) {
    hn_decoder *d = hn_xcalloc(1, sizeof *d);
    /* Sized so that any UDP datagram that passes the pre-check unpacks
     * within the first chunk, which msgpack_zone_clear keeps: steady-state
     * decoding does not call malloc. */
    if (!msgpack_zone_init(&d->zone, HN_ZONE_CHUNK)) {
        fprintf(stderr, "level=fatal event=out_of_memory bytes=%zu\n", (size_t)HN_ZONE_CHUNK);
        abort();
    }
    return d;
}

void hn_decoder_destroy(hn_decoder *d) {
    if (d == NULL) return;
    msgpack_zone_destroy(&d->zone);
    free(d);
}

int hn_decoder_unpack(hn_decoder *d, const char *buf, size_t len, msgpack_object *out) {
    int rc = HN_ERR;
    size_t off = 0;

    if (len == 0 || !mp_precheck((const unsigned char *)buf, len)) goto out;
    msgpack_zone_clear(&d->zone);
    if (msgpack_unpack(buf, len, &off, &d->zone, out) != MSGPACK_UNPACK_SUCCESS) goto out;
    rc = HN_OK;
out:
    return rc;
}
