/*
 * copy.h: PostgreSQL's COPY text format, appended to a buffer: a tab
 * between columns, \N for NULL, and backslash, newline, CR and tab escaped
 * inside values. Bytes are copied as they are otherwise (no UTF-8 check:
 * the records were checked when their beacons came in).
 *
 * The functions named for a column (str, u64, ts, day, data) write the tab
 * before it; the _raw ones, a row's first column, write none.
 */
#ifndef HN_DRAIN_COPY_H
#define HN_DRAIN_COPY_H

#include "common/buf.h"
#include "proto/record.h"

void hn_copy_sep(hn_buf *b);
void hn_copy_null(hn_buf *b);
/* p[0 .. n), escaped */
void hn_copy_bytes(hn_buf *b, const char *p, size_t n);
/* An optional text column: empty → NULL. */
void hn_copy_str(hn_buf *b, hn_str s);
void hn_copy_u64_raw(hn_buf *b, uint64_t v);
void hn_copy_u64(hn_buf *b, uint64_t v);
/* µs since the epoch as "YYYY-MM-DD HH:MM:SS.ffffff+00" (0: NULL). */
void hn_copy_ts_raw(hn_buf *b, uint64_t us);
void hn_copy_ts(hn_buf *b, uint64_t us);
/* days since the epoch as "YYYY-MM-DD" */
void hn_copy_day(hn_buf *b, uint64_t day);
/* An optional text column sealed (common/datakey.h; in clear without keys). */
void hn_copy_sealed(hn_buf *b, hn_str s);
/* An optional email's key column (hn_dk_email_key): empty → NULL. */
void hn_copy_email_key(hn_buf *b, hn_str s);
/* The event properties of r (identify: its name, email and phone) as one
 * JSON object, or NULL when it has none; tmp is scratch space. */
void hn_copy_data(hn_buf *b, const hn_record *r, hn_buf *tmp);

#endif
