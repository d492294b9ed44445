/*
 * ids.h: per-thread random numbers and event ids.
 *
 * Event ids use the UUIDv7 layout: 48 bits of Unix ms, version 7, then 74
 * bits from a per-thread xoshiro256** generator seeded from getrandom(2).
 * Time-ordered ids keep PostgreSQL's unique index appends local.
 */
#ifndef HN_IDS_H
#define HN_IDS_H

#include "common/hn.h"

typedef struct hn_rng { uint64_t s[4]; } hn_rng;

void     hn_rng_seed(hn_rng *r);            /* from getrandom(2) */
uint64_t hn_rng_next(hn_rng *r);

void hn_event_id_new(hn_rng *r, uint64_t now_ms, uint8_t out[16]);

/* A UUID's text ("01890a5d-ac96-7…", hyphens anywhere, either case) → its
 * 16 bytes; false on anything else. */
bool hn_uuid_parse(const char *s, uint8_t out[16]);

#endif
