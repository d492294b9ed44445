/*
 * vhash.h: the visitor hash (DESIGN §7), Plausible-style: who came back
 * today, without a cookie and without storing who it was.
 *
 *   visitor = hex(HMAC-SHA256(key = salt of the UTC day,
 *                             widget id (4 bytes, big-endian) ‖ hn_ip.b (16 bytes,
 *                             IPv4 v4-mapped) ‖ user agent bytes)[0..16))
 *
 * 32 lowercase hex characters. The full IP goes in (in memory only); the
 * stored record keeps just the hash and the masked IP.
 *
 * Salts: 32 random bytes per UTC day, kept only in Redis as
 * hn:salt:<yyyymmdd> (hex, TTL 48 h). A collector creates a day's salt with
 * SET NX EX 172800 and reads it back with GET, so every node hashes with
 * the first one written; once the key expires nobody can recompute a
 * visitor from an IP any more. This module has the pure parts; the Redis
 * round trips are the caller's:
 *
 *   refresher thread: hn_key_salt (proto/keys.h) → SET NX / GET → hn_salt_from_hex
 *                     → hn_salt_holder_set (whole set, published atomically)
 *   worker threads:   hn_salt_holder_get(day of the record) → hn_vhash
 *
 * The holder is a seqlock over a fixed array of atomics: readers take no
 * lock and never see half a set (they retry the rare read that overlaps a
 * set), and nothing is ever freed under them.
 */
#ifndef HN_VHASH_H
#define HN_VHASH_H

#include "common/hn.h"
#include "common/ip.h"

#define HN_SALT_LEN 32
#define HN_SALT_HOLDER_MAX 3     /* yesterday, today, tomorrow */
#define HN_DAY_MS (86400u * 1000u)

typedef struct hn_salt {
    uint32_t day;                /* UTC day as yyyymmdd, e.g. 20261124 */
    uint8_t  key[HN_SALT_LEN];
} hn_salt;

/* The UTC day of a time in ms since the epoch, as yyyymmdd. The days around
 * it are hn_utc_day(t - HN_DAY_MS) and hn_utc_day(t + HN_DAY_MS). */
uint32_t hn_utc_day(uint64_t unix_ms);


/* A new random salt (RAND_bytes) as 64 lowercase hex characters + NUL.
 * HN_ERR (out is "") when the random generator fails: never hash with a
 * guessable salt. */
int hn_salt_new_hex(char out[2 * HN_SALT_LEN + 1]);

/* A salt read from Redis: hex[0..len) must be exactly 64 hex digits (either
 * case). HN_ERR otherwise, *s untouched. */
int hn_salt_from_hex(hn_salt *s, uint32_t day, const char *hex, size_t len);

/* The salts one collector knows. Written by one refresher thread at a time
 * (concurrent setters are serialized, not lost), read by any number of
 * threads without locks; fixed size, no allocation after create. */
typedef struct hn_salt_holder hn_salt_holder;

hn_salt_holder *hn_salt_holder_create(void);            /* empty */
void hn_salt_holder_destroy(hn_salt_holder *h);         /* NULL is fine; no reader may be left */

/* Replaces the whole set with s[0..n): salts not in it are forgotten, so
 * pass the ones to keep again. At most HN_SALT_HOLDER_MAX are kept (the
 * first ones); a day given twice keeps its first salt; day 0 is skipped. */
void hn_salt_holder_set(hn_salt_holder *h, const hn_salt *s, size_t n);

/* Copies the salt of a UTC day (yyyymmdd) to *out: true, or false when the
 * holder does not know that day (the record then goes without a visitor
 * hash). h may be NULL (knows nothing). */
bool hn_salt_holder_get(const hn_salt_holder *h, uint32_t day, hn_salt *out);
bool hn_salt_holder_has(const hn_salt_holder *h, uint32_t day);

/* The same for the UTC day of a time: the salt in force at unix_ms. */
bool hn_salt_holder_at(const hn_salt_holder *h, uint64_t unix_ms, hn_salt *out);

/* The visitor hash of (salt, widget, ip, ua[0..ualen)) as 32 lowercase hex
 * characters + NUL. Thread-safe: each thread keeps one OpenSSL HMAC context,
 * keyed again only when the salt changes (freed when the thread exits).
 * Aborts with a message if OpenSSL fails (out of memory), like hn_xmalloc. */
void hn_vhash(const hn_salt *s, uint32_t widget_id, const hn_ip *ip, const char *ua, size_t ualen,
              char out[33]);

#endif
