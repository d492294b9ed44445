/*
 * hn.h: what every module of herenow shares: status codes, the string slice,
 * and the allocation policy of the daemons.
 *
 * Allocation: hn_xmalloc/hn_xcalloc/hn_xrealloc never return NULL; on OOM or
 * on a size that would overflow they print a message and abort. Daemons have
 * no sensible way to continue without memory, and checking every call site
 * would hide the real error paths among impossible ones.
 */
#ifndef HN_H
#define HN_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

/* The release, from debian/changelog's first line (the Makefile passes it). */
#ifndef HN_VERSION
#define HN_VERSION "unknown"
#endif

#define HN_OK     0
#define HN_ERR   -1
#define HN_AGAIN -2

/* A string slice: not NUL-terminated, owned by whoever owns the buffer it
 * points into. p may be NULL only when len is 0. */
typedef struct hn_str {
    const char *p;
    uint32_t    len;
} hn_str;

#define HN_STR_LIT(s) ((hn_str){ (s), (uint32_t)(sizeof(s) - 1) })
#define HN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static inline bool hn_str_eq(hn_str a, const char *lit, size_t litlen) {
    return a.len == litlen && (litlen == 0 || memcmp(a.p, lit, litlen) == 0);
}

void *hn_xmalloc(size_t n);
void *hn_xcalloc(size_t nmemb, size_t size);
void *hn_xrealloc(void *p, size_t n);
void *hn_xreallocarray(void *p, size_t nmemb, size_t size);
char *hn_xstrdup(const char *s);
char *hn_xstrndup(const char *s, size_t n);

/* s as a signed decimal integer, nothing else (no sign-less overflow, no
 * trailing bytes); false otherwise. */
bool hn_parse_i64(const char *s, int64_t *out);

/* Wall clock in ms / µs since the epoch, and a monotonic clock in ms. */
uint64_t hn_now_ms(void);
uint64_t hn_now_us(void);
uint64_t hn_mono_ms(void);
uint64_t hn_mono_us(void);

#endif
