/*
 * buf.h: a growable byte buffer, plus the RESP command writer built on it.
 *
 * The collector formats whole pipelines of Redis commands into one hn_buf and
 * hands them to the connection at once: no per-command allocation (hiredis'
 * redisFormatCommandArgv allocates an sds per command).
 */
#ifndef HN_BUF_H
#define HN_BUF_H

#include "common/hn.h"

typedef struct hn_buf {
    char  *p;
    size_t len;
    size_t cap;
} hn_buf;

void hn_buf_init(hn_buf *b, size_t cap);
void hn_buf_free(hn_buf *b);
void hn_buf_grow(hn_buf *b, size_t more);
static inline void hn_buf_reserve(hn_buf *b, size_t more) {
    if (b->len + more > b->cap) hn_buf_grow(b, more);
}
void hn_buf_append(hn_buf *b, const void *p, size_t n);
void hn_buf_printf(hn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline void hn_buf_reset(hn_buf *b) { b->len = 0; }

/* RESP: "*<nargs>\r\n" then each argument as "$<len>\r\n<bytes>\r\n". */
void hn_resp_cmd(hn_buf *b, unsigned nargs);
void hn_resp_arg(hn_buf *b, const void *p, size_t n);
/* One argument made of two pieces (e.g. a msgpack array header + its body). */
void hn_resp_arg2(hn_buf *b, const void *p1, size_t n1, const void *p2, size_t n2);
void hn_resp_str(hn_buf *b, const char *s);
void hn_resp_u64(hn_buf *b, uint64_t v);

/* A msgpack-c write callback appending to the hn_buf given as data. */
int hn_buf_msgpack_write(void *data, const char *buf, size_t len);

/* Writes v in decimal to out (>= 21 bytes), returns the length. */
size_t hn_u64toa(uint64_t v, char *out);

#endif
