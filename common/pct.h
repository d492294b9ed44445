/*
 * pct.h: hex digits and percent-decoding (RFC 3986 %XX, and '+' as a space
 * in query strings) — for the pixel's query string, the api's paths and
 * query parameters, and ids written in hex. Pure.
 */
#ifndef HN_PCT_H
#define HN_PCT_H

#include <stddef.h>

#define HN_PCT_PLUS   1u    /* '+' decodes to ' ' (query strings) */
#define HN_PCT_NO_NUL 2u    /* a NUL byte, raw or %00, is an error */

#define HN_PCT_BAD  (-1L)   /* a malformed %-escape (or a NUL with HN_PCT_NO_NUL) */
#define HN_PCT_FULL (-2L)   /* dst holds fewer than the decoded bytes */

/* The value of hex digit c, -1 when c is not one. */
static inline int hn_hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes src[0..n) into dst (cap bytes; n + 1 always suffices) and
 * NUL-terminates it when there is room. Returns the decoded length,
 * HN_PCT_BAD or HN_PCT_FULL. */
long hn_pct_decode(const char *src, size_t n, char *dst, size_t cap, unsigned flags);

/* A path the collector serves and writes into its scripts as it is: starts
 * with '/', at most 200 bytes, no space or control character, quote,
 * backslash, '?', '#' or byte ≥ 0x7f (HERENOW_HTTP_*_PATH; herenowctl
 * doctor checks the same). */
#include <stdbool.h>
bool hn_plain_path_ok(const char *p);

#endif
