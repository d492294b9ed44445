/*
 * record.h: the record — a validated, normalized, enriched beacon as the
 * collector appends it to the stream hn:stream:<n> (docs/PROTOCOL.md §record).
 *
 * A record is a msgpack map with short keys. A stream entry carries one field
 * "r" whose value is a msgpack array of one or more records (the collector
 * writes one entry per flushed batch, see collector/). event_id and recv_ts
 * are fixed by the collector before the first XADD and never change after:
 * they make persistence idempotent downstream.
 *
 * As with beacons, a decoded record's strings point into the input buffer.
 */
#ifndef HN_RECORD_H
#define HN_RECORD_H

#include "proto/beacon.h"

#define HN_RECORD_VERSION 1
#define HN_STREAM_FIELD   "r"

typedef enum hn_transport {
    HN_TR_UDP = 1,
    HN_TR_HTTP,
    HN_TR_PIXEL
} hn_transport;

typedef struct hn_record {
    uint8_t   event_id[16];  /* 128-bit, UUIDv7 layout (time-ordered) */
    uint64_t  recv_ts;       /* collector receive time, µs since the epoch */
    uint32_t  widget_id;
    uint8_t   transport;     /* hn_transport */
    hn_beacon b;             /* the beacon's own fields; b.ua/b.ip unused here */
    /* enrichment; empty slices when unknown */
    hn_str    ip;            /* as stored: masked (default), full, or empty (dropped) */
    hn_str    ua;            /* user agent */
    hn_str    visitor;       /* visitor hash, hex */
    hn_str    country, region, city;
    hn_str    browser, browser_version, os, os_version, device;
    bool      bot;
} hn_record;

/* Appends one record as a msgpack map to pk. */
void hn_record_pack(msgpack_packer *pk, const hn_record *r);

/* Decodes one record from an unpacked msgpack object (an element of the "r"
 * array). Strings point into the buffer the object was unpacked from.
 * Returns HN_OK, or HN_ERR with a reason in err (cap bytes). Unknown keys
 * are ignored, as for beacons. */
int hn_record_from_object(hn_record *out, const msgpack_object *o, char *err, size_t cap);

/* Decodes a stream entry's "r" value: a msgpack array of records. Calls fn
 * for each; stops and returns HN_ERR at the first that fails to decode
 * (err says which and why), or when fn returns anything but HN_OK. Uses
 * d's zone; nothing allocated stays behind. The record passed to fn is
 * valid only during the call. */
typedef int (*hn_record_fn)(const hn_record *r, void *ctx);
int hn_record_decode_batch(hn_decoder *d, const char *buf, size_t len,
                           hn_record_fn fn, void *ctx, char *err, size_t cap);

/* Appends the properties as one JSON object ({"key": value, …}); floats
 * that JSON cannot carry (NaN, infinities) become null. */
struct hn_buf;
void hn_props_json(struct hn_buf *out, const hn_prop *props, int n);

/* Formats event_id as the canonical 36-char UUID text (+ NUL, so 37 bytes). */
void hn_event_id_format(const uint8_t id[16], char out[37]);

#endif
