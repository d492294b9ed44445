/* timefmt.h: instants as the API writes them, UTC: "2026-11-24T03:35:23.123Z"
 * (hn_fmt_time_ms, from ms) or with µs "2026-11-24T03:35:23.123456Z"
 * (hn_fmt_time_us: what goes to PostgreSQL as a bound timestamptz, so
 * nothing is lost), or the UTC date "2026-11-24" (hn_fmt_date_us). out
 * holds >= HN_TIME_CAP bytes; returns the length (0: did not fit). Pure. */
#ifndef HN_TIMEFMT_H
#define HN_TIMEFMT_H

#include "common/hn.h"

#define HN_TIME_CAP 32
size_t hn_fmt_time_ms(int64_t ms, char *out);
size_t hn_fmt_time_us(int64_t us, char *out);
size_t hn_fmt_date_us(int64_t us, char *out);

#endif
