/*
 * httpcache.h: what the collector's widget script (collector/script.c) and
 * the api's dashboard files (api/static.c) share to be served compressed
 * and cached: gzip made once, a strong ETag per encoding, and the request
 * headers that choose between them. Pure; no I/O.
 */
#ifndef HN_HTTPCACHE_H
#define HN_HTTPCACHE_H

#include "common/hn.h"

#define HN_ETAG_CAP 24     /* "\"<16 hex>-gz\"" and its NUL fit */

/* gzip (RFC 1952 wrapper, zlib level 9) of in[0..n) into a new *out
 * (free it); HN_ERR only if zlib fails. */
int  hn_gzip(const char *in, size_t n, char **out, size_t *outn);
/* Strong ETags of data for each encoding: "<16 hex>" (the first 8 bytes of
 * its SHA-256) and "<16 hex>-gz", quotes included. */
void hn_http_etags(const char *data, size_t n, char etag[HN_ETAG_CAP], char etag_gz[HN_ETAG_CAP]);
/* An Accept-Encoding value (NULL: none) accepts gzip: a "gzip" or "x-gzip"
 * coding (case-insensitive) with q > 0, or else "*" with q > 0. A gzip
 * coding with q=0 is a refusal even when "*" is given. An element with a
 * malformed q counts as not given. */
bool hn_http_accepts_gzip(const char *accept_encoding);
/* An If-None-Match value (NULL: none) matches etag: "*", or a list of
 * entity tags one of which equals etag in the weak comparison (W/"x"
 * matches "x"). */
bool hn_http_etag_match(const char *if_none_match, const char *etag);

#endif
