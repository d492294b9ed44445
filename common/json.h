/* json.h: writing JSON text into an hn_buf (strings escaped per RFC 8259;
 * bytes that are not valid UTF-8 are written as U+FFFD). */
#ifndef HN_JSON_H
#define HN_JSON_H

#include "common/buf.h"

void hn_json_str(hn_buf *b, const char *s, size_t n);       /* "…" with escapes */
void hn_json_key(hn_buf *b, bool *first, const char *key);  /* [,]"key": */

#endif
