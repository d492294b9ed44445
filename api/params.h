/*
 * params.h: the API's query and path parameters, parsed strictly (pure: no
 * I/O, no clock — "now" is an argument — so every function here is tested
 * from tables in tests/unit/test_params.c).
 *
 * Every parser returns HN_OK, or HN_ERR with a one-line reason in err that
 * names the parameter and never echoes more than a short, printable excerpt
 * of what the client sent (the reason goes into a JSON error answer and the
 * log). Times are µs since the Unix epoch, UTC, throughout.
 *
 *   limit=100          1..max, decimal digits only
 *   from=7d&to=now     ISO 8601 date or date-time with zone, or (from only)
 *                      a duration before `to`; see hn_param_range
 *   cursor=TDE3NjQ...  base64url of "<kind><int>.<int|sid>", see below
 */
#ifndef HN_PARAMS_H
#define HN_PARAMS_H

#include "common/hn.h"

#define HN_PARAM_ERR_CAP 200

#define HN_US_PER_S    INT64_C(1000000)
#define HN_US_PER_HOUR (INT64_C(3600) * HN_US_PER_S)
#define HN_US_PER_DAY  (INT64_C(86400) * HN_US_PER_S)

/* The longest from..to range: routes that read raw rows (past sessions, the
 * CSV export) take 400 days; routes that answer from the rollups (visitor-
 * stats, timeseries, breakdown) take 100 years, i.e. all time: their cost
 * grows with the rollup rows kept (per widget at most 24 hour rows a day,
 * and retention drops old ones), not with the range asked for. */
#define HN_RANGE_MAX_US          (400 * HN_US_PER_DAY)
#define HN_RANGE_ROLLUP_MAX_US   (36525 * HN_US_PER_DAY)
#define HN_RANGE_DEFAULT_US      (24 * HN_US_PER_HOUR)

/* Every key of the query must be one of allowed[0..nallowed); else HN_ERR
 * "unknown parameter 'x' (this route takes: a, b)". */
int hn_param_check_keys(char *const *keys, int nkeys, const char *const *allowed,
                        int nallowed, char *err, size_t cap);

/* A decimal integer in [min, max]: digits only (no sign, no spaces), at
 * most 18 of them. s == NULL: *out = def. */
int hn_param_int(const char *name, const char *s, int64_t min, int64_t max, int64_t def,
                 int64_t *out, char *err, size_t cap);

/* One of words[0..n) (exact, case-sensitive); s == NULL: *out = def (-1 =
 * required: HN_ERR). *out is the index. */
int hn_param_enum(const char *name, const char *s, const char *const *words, int n, int def,
                  int *out, char *err, size_t cap);

/* true|false; s == NULL: *out = -1 (not given). */
int hn_param_bool(const char *name, const char *s, int *out, char *err, size_t cap);

/* A session id as the protocol makes them: 8..64 of [A-Za-z0-9_-]. */
bool hn_param_session_id_ok(const char *s);

/* A visitor id: 1..128 bytes of valid UTF-8 without control characters —
 * every visitor_id the drain can store (a vid is any UTF-8 up to 64 bytes,
 * the visitor hash is hex, the fallback is the session id). */
bool hn_param_visitor_ok(const char *s);

/* An ISO 8601 instant:
 *   YYYY-MM-DD                               midnight UTC
 *   YYYY-MM-DDTHH:MM[:SS[.f{1,9}]]<zone>     zone: Z | ±HH:MM | ±HHMM | ±HH
 * 'T' may be 't' or a space, 'Z' may be 'z'. A space where the zone's sign
 * belongs is read as '+' (an unencoded '+' arrives as a space from a query
 * string). Years 1970..9999; fractions beyond µs are truncated. A date-time
 * without a zone is refused (ambiguous). */
int hn_param_parse_time(const char *s, int64_t *us);

/* A duration "<n>m|h|d|w" (minutes, hours, days, weeks), n >= 1, at most
 * HN_RANGE_MAX_US. */
int hn_param_parse_duration(const char *s, int64_t *us);

/* from/to as the history routes take them (NULL = absent):
 *   to:   an instant or "now"; default now.
 *   from: an instant, a duration meaning to − duration, or "all" (the
 *         epoch, 1970-01-01); default to − HN_RANGE_DEFAULT_US.
 * from < to and to − from <= HN_RANGE_MAX_US. */
int hn_param_range(const char *from, const char *to, int64_t now_us, int64_t *from_us,
                   int64_t *to_us, char *err, size_t cap);
/* The same with the longest span max_us (HN_RANGE_MAX_US or
 * HN_RANGE_ROLLUP_MAX_US); *all (may be NULL): from was "all". */
int hn_param_range_max(const char *from, const char *to, int64_t now_us, int64_t max_us,
                       int64_t *from_us, int64_t *to_us, bool *all, char *err, size_t cap);

/* Rounding to whole UTC units (unit = HN_US_PER_HOUR or HN_US_PER_DAY). */
int64_t hn_floor_us(int64_t us, int64_t unit);
int64_t hn_ceil_us(int64_t us, int64_t unit);

/* ---- cursors ------------------------------------------------------------------
 * A cursor is the position after the last item of a page: a kind letter
 * (one per route, so a cursor of one route is refused by another), a
 * signed 64-bit integer (a time), and a tie-breaker (an integer id or a
 * session id), as "<kind><int>.<tie>" in base64url without padding. It
 * is opaque to clients; decoding is strict (alphabet, length, canonical
 * numbers, the session-id rule), so anything a client made up is a 400. */
#define HN_CURSOR_CAP 128

typedef struct hn_cursor {
    char    kind;
    int64_t t;
    int64_t id;          /* integer tie-breaker, when tie_is_sid is false */
    char    sid[65];     /* session id tie-breaker, when tie_is_sid */
    bool    tie_is_sid;
} hn_cursor;

/* out holds >= HN_CURSOR_CAP bytes; returns the length. */
size_t hn_cursor_encode(const hn_cursor *c, char *out);
/* Decodes s into c; HN_ERR unless it is a cursor of this kind with this
 * kind of tie-breaker. */
int    hn_cursor_decode(const char *s, char kind, bool tie_is_sid, hn_cursor *c);

/* A printable excerpt of s for error messages: at most 32 bytes, anything
 * outside printable ASCII as '?', "..." when cut. out holds >= 40 bytes. */
const char *hn_param_excerpt(const char *s, char *out);

#endif
