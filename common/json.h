/* json.h: writing JSON text into an hn_buf (strings escaped per RFC 8259;
 * bytes that are not valid UTF-8 are written as U+FFFD).
 *
 * Objects are built as members ("key":value), the comma handled by *first
 * (true before the first member); the braces are the caller's. */
#ifndef HN_JSON_H
#define HN_JSON_H

#include "common/buf.h"

void hn_json_str(hn_buf *b, const char *s, size_t n);       /* "…" with escapes */
void hn_json_key(hn_buf *b, bool *first, const char *key);  /* [,]"key": */

/* ---- members ---------------------------------------------------------------- */

void hn_json_kstr(hn_buf *b, bool *first, const char *key, const char *s);  /* NULL: null */
void hn_json_kstrn(hn_buf *b, bool *first, const char *key, const char *s, size_t n);
void hn_json_kint(hn_buf *b, bool *first, const char *key, int64_t v);
void hn_json_kbool(hn_buf *b, bool *first, const char *key, bool v);
void hn_json_knull(hn_buf *b, bool *first, const char *key);
/* ms since the epoch as an ISO 8601 string, UTC, with ms (common/timefmt.h). */
void hn_json_ktime(hn_buf *b, bool *first, const char *key, int64_t ms);
/* v with `decimals` digits after the point (a JSON number; never NaN). */
void hn_json_kfixed(hn_buf *b, bool *first, const char *key, double v, int decimals);
/* key then raw JSON text as is (a nested object or array the caller built). */
void hn_json_kraw(hn_buf *b, bool *first, const char *key, const char *raw, size_t n);

#endif
