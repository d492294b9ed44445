/*
 * request.h: what the main thread makes of a request before a handler sees
 * it — query strings, :widgetId, log-safe text. Pure (tested).
 */
#ifndef HN_REQUEST_H
#define HN_REQUEST_H

#include "api/api.h"

/* Parses a raw query string (NULL: none) into rq's qkey/qval, decoded
 * ('+' is a space); HN_ERR with the 400 reason in why: a bad %-escape or
 * an encoded NUL, an empty key, a key twice, more than HN_API_MAX_QUERY
 * keys. Empty "&&" segments are skipped; "k" alone is k="". The strings
 * parsed so far stay in rq (hn_job_free frees them). */
int hn_api_parse_query(const char *q, hn_api_req *rq, char *why, size_t cap);

/* For log lines: bytes outside printable ASCII, quotes and backslashes as
 * %XX, the secret of anything shaped like a token masked ("hn_<id>_***"),
 * cut to fit cap. */
void hn_api_log_safe(char *out, size_t cap, const char *s);

/* true when s is a canonical widget id: 1..2147483647, digits only, no
 * leading zero. */
bool hn_api_widget_id(const char *s, int64_t *out);

#endif
