/*
 * sse.h: reading a Server-Sent Events answer off a raw socket, for the
 * benches' clients (hn-sseclient: the dashboard's stream; hn-chatclient:
 * the collector's chat downlink). No allocation per event, no bufferevents.
 *
 *   bytes ─► hn_http_head (status line, headers) ─► hn_sse_body (identity or
 *   chunked, RFC 9112 §7.1) ─► lines (LF, CRLF tolerated) ─► the caller's
 *   hn_sse_line_fn, which splits them with hn_sse_field
 *
 * A line that spans reads is kept in the reader's own buffer, at most `keep`
 * bytes of it; longer lines are counted (total), not kept, so memory and
 * time stay linear in the bytes received.
 */
#ifndef HN_BENCH_SSE_H
#define HN_BENCH_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One line without its end: s[0..n) is what is known of it (n < total when
 * it was longer than the reader keeps). total 0: a blank line, the end of
 * an event. */
typedef void hn_sse_line_fn(void *arg, const char *s, size_t n, size_t total);

typedef struct hn_sse_rd {
    int      body;
    uint64_t ck_left;
    bool     ck_digits, trailer_line;
    char    *line;
    size_t   line_len, line_cap, line_total, keep;
} hn_sse_rd;

/* The answer's head, gathered into hdr[cap] (*len so far) from p[0..n).
 * Returns 0 while incomplete, 1 once complete (*status, *chunked set;
 * *used: bytes of p that were head, the rest is body), -1 if it is too large
 * or its status line is bad. */
int hn_http_head(char *hdr, size_t cap, size_t *len, const char *p, size_t n, int *status,
                 bool *chunked, size_t *used);

void hn_sse_rd_init(hn_sse_rd *r, bool chunked, size_t keep);
void hn_sse_rd_free(hn_sse_rd *r);
/* Body bytes: HN_OK, HN_ERR on a framing error, HN_AGAIN at the last chunk. */
int hn_sse_body(hn_sse_rd *r, const char *p, size_t n, hn_sse_line_fn *fn, void *arg);

/* A line's field and value ("event: x" → "event", "x"); a comment (":…")
 * has the field "" and the rest as its value. */
void hn_sse_field(const char *s, size_t n, const char **f, size_t *fl, const char **v, size_t *vl);

/* The decimal after `key` ("t=") in s[0..n) at its start or after one of
 * `after` ("?&", " "); -1 if none. */
int64_t hn_find_num(const char *s, size_t n, const char *key, const char *after);
/* The JSON string value of "key" (no escapes expected in ours); the value
 * runs to the end of s if cut. */
bool hn_json_find_str(const char *s, size_t n, const char *key, const char **v, size_t *vl);
int64_t hn_json_find_int(const char *s, size_t n, const char *key);

#endif
