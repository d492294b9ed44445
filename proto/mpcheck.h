/*
 * mpcheck.h: msgpack input unpacked safely. A structural pre-check guards
 * msgpack-c against inputs that claim huge containers, then msgpack-c
 * unpacks into a zone that is reused across calls. Used by the beacon
 * decoder (beacon.c) and the record decoder (record.c).
 */
#ifndef HN_MPCHECK_H
#define HN_MPCHECK_H

#include <stddef.h>

#include <msgpack.h>

/* Decoder state reused across calls so that steady-state decoding does not
 * allocate (a msgpack zone). One per thread. */
typedef struct hn_decoder hn_decoder;

hn_decoder *hn_decoder_create(void);
void        hn_decoder_destroy(hn_decoder *d);

/* Runs the structural pre-check (exactly one well-formed object, every
 * container's count <= the bytes left, nesting <= 8) and unpacks buf into
 * d's zone, which it clears first: objects from the previous call on d die.
 * Strings in *out point into buf. HN_ERR when buf fails the check or
 * msgpack-c rejects it. Used by hn_beacon_decode_msgpack and by record.c. */
int hn_decoder_unpack(hn_decoder *d, const char *buf, size_t len, msgpack_object *out);

#endif
