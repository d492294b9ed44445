/*
 * uap.h: user agent → browser, OS, device type, bot (DESIGN §7).
 *
 * ua-parser (https://github.com/ua-parser/uap-core) with the regexes of
 * Debian's uap-core package, compiled once with PCRE2 and JIT:
 *
 *   hn_uap_load(regexes.yaml) ──► hn_uap  (read-only, shared by all threads)
 *                                   │
 *          per thread:  hn_uap_ctx ─┤  match data, JIT stack, scratch,
 *                                   │  a fixed-size cache of recent UAs
 *                                   ▼
 *   hn_uap_lookup(ua) ──hit──► hn_ua (from the cache, no regex, no malloc)
 *                     ──miss─► hn_uap_parse → derive device type/bot → cache
 *
 * Only the first HN_UAP_MAX_UA bytes of a user agent are looked at, by both
 * hn_uap_parse and hn_uap_lookup. Input bytes need not be UTF-8 (matching is
 * bytewise); the strings in hn_ua are always valid UTF-8 without control
 * characters, those of hn_ua_full are the raw ua-parser results.
 * docs/ENRICHMENT.md "User agents" has the rules and the measured figures.
 */
#ifndef HN_UAP_H
#define HN_UAP_H

#include "common/hn.h"

#define HN_UAP_DEFAULT_PATH "/usr/share/uap-core/regexes.yaml"
#define HN_UAP_MAX_UA       512   /* bytes of a user agent that are parsed */

/* The compiled regexes: built once, then shared read-only by all threads. */
typedef struct hn_uap hn_uap;

/* NULL + a one-line reason in err on failure (unreadable file, bad YAML, a
 * regex PCRE2 cannot compile). Takes ~35 ms and ~5 MB (ENRICHMENT.md). */
hn_uap *hn_uap_load(const char *path, char *err, size_t cap);
void    hn_uap_free(hn_uap *u);                 /* NULL is fine */

/* Numbers for the startup log: regexes compiled, how many of them JIT took. */
size_t  hn_uap_regex_count(const hn_uap *u, size_t *jitted);

/* One per thread: PCRE2 match data, JIT stack, the cache. cache_entries is
 * rounded down to a power of two (below 4: no cache, every lookup parses);
 * the cache takes 816 bytes per entry, allocated here and never again
 * (3.3 MB for 4096). u must outlive the context. Never NULL (aborts on OOM
 * like hn_xmalloc). */
typedef struct hn_uap_ctx hn_uap_ctx;
hn_uap_ctx *hn_uap_ctx_create(const hn_uap *u, size_t cache_entries);
void        hn_uap_ctx_destroy(hn_uap_ctx *c);  /* NULL is fine */

/* The full ua-parser result (for the test files). Empty string = null;
 * the families are "Other" when no regex matched. Longer values are cut. */
typedef struct hn_ua_full {
    char ua_family[256], ua_major[32], ua_minor[32], ua_patch[32], ua_patch_minor[32];
    char os_family[256], os_major[32], os_minor[32], os_patch[32], os_patch_minor[32];
    char device_family[256], device_brand[256], device_model[256];
} hn_ua_full;

void hn_uap_parse(hn_uap_ctx *c, const char *ua, size_t len, hn_ua_full *out);

/* The same, limited to some of the three parsers (the others' fields are
 * left empty): the test files check one parser each. */
#define HN_UAP_UA     1u
#define HN_UAP_OS     2u
#define HN_UAP_DEVICE 4u
#define HN_UAP_ALL    (HN_UAP_UA | HN_UAP_OS | HN_UAP_DEVICE)
void hn_uap_parse_parts(hn_uap_ctx *c, const char *ua, size_t len, unsigned parts,
                        hn_ua_full *out);

/* What the collector stores, through the per-thread cache (4-way set
 * associative, keyed by a seeded hash of the UA plus an exact compare,
 * least recently used way evicted).
 * The strings point into c's cache: valid until the next call on c, also in
 * a copy of the struct. */
typedef struct hn_ua {
    hn_str browser, browser_version;   /* "Chrome", "120.0" (major.minor; major alone
                                          when no minor; empty when "Other") */
    hn_str os, os_version;             /* "Windows", "10"; "Mac OS X", "14.1" */
    hn_str device;                     /* "desktop" | "mobile" | "tablet" | "bot" */
    bool   bot;                        /* device is "bot": not a visitor */
} hn_ua;

/* ua may be NULL when len is 0. No user agent at all (empty or blank) gives
 * "Other" and device "bot": browsers always send one. */
const hn_ua *hn_uap_lookup(hn_uap_ctx *c, const char *ua, size_t len);

uint64_t hn_uap_cache_hits(const hn_uap_ctx *c);
uint64_t hn_uap_cache_misses(const hn_uap_ctx *c);
/* Matches abandoned at PCRE2's match limit (counted as no match); expected 0. */
uint64_t hn_uap_match_errors(const hn_uap_ctx *c);

/* The device-type rules on a ua-parser result (for tests): ua is the raw
 * user agent (already cut to HN_UAP_MAX_UA), r its parse. Returns a
 * static string "desktop" | "mobile" | "tablet" | "bot". */
const char *hn_uap_device_type(const hn_ua_full *r, const char *ua, size_t len);

#endif
