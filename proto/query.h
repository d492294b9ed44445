/*
 * query.h: the pixel's wire form, a query string (k=...&s=...&t=pv...)
 * decoded into one hn_beacon (proto/beacon.h has the types).
 */
#ifndef HN_QUERY_H
#define HN_QUERY_H

#include <stddef.h>

typedef struct hn_batch hn_batch;

/* Decodes a pixel query string (the part after '?', without it). Repeated
 * keys: the last one wins. Keys of d are given as d.<name>=<value> (string
 * values). Percent-decoding and '+' → ' ' write into scratch (cap bytes;
 * cap >= qlen is always enough). Returns the number of accepted beacons
 * (0 or 1). Strings point into scratch. */
int hn_beacon_decode_query(hn_batch *out, const char *qs, size_t qlen, char *scratch, size_t cap);

#endif
