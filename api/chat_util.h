/*
 * chat_util.h: what the chat routes (routes_chat.c) need besides the
 * route handlers: the request body's few string members, and the per-token
 * rate limit of chat writes. Pure except for the limiter's table (one mutex:
 * workers share it).
 */
#ifndef HN_API_CHAT_UTIL_H
#define HN_API_CHAT_UTIL_H

#include "common/buf.h"

#include <stddef.h>
#include <stdint.h>

/* One string member of a JSON object body. */
typedef struct hn_chat_field {
    const char *name;     /* the member's name */
    char       *val;      /* out: decoded (malloc'd, NUL-terminated), NULL when absent */
    size_t      len;      /* out: bytes in val (it may hold NUL: checked later) */
} hn_chat_field;

/* Parses body[0..len) as one JSON object and fills the members named in
 * f[0..n) (strings only; other members of any type are skipped). A \u
 * escape of a lone surrogate decodes to bytes that are not UTF-8, so the
 * text check refuses it. HN_OK, or HN_ERR with a reason in err. The caller
 * frees f[i].val (hn_chat_fields_free). */
int  hn_chat_body_parse(const char *body, size_t len, hn_chat_field *f, int n, char *err,
                        size_t cap);
void hn_chat_fields_free(hn_chat_field *f, int n);

/* A token bucket per token id: `per_min` writes a minute, bursts up to
 * per_min. true when the write may go; false when over (the caller answers
 * 429). now_ms: a monotonic clock. */
bool hn_chat_rate_take(const char *token_id, int64_t per_min, uint64_t now_ms);

#endif
