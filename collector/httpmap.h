/*
 * httpmap.h: the pure parts of the HTTP ingress (http.c), apart so that
 * they are unit-tested without sockets: which client an X-Forwarded-For
 * names, which status a decoded batch gets.
 */
#ifndef HN_HTTPMAP_H
#define HN_HTTPMAP_H

#include "collector/worker.h"
#include "proto/seed.h"

/* X-Forwarded-For from a trusted proxy: *ip becomes the nearest address
 * that is not a trusted proxy itself, read from the right (each proxy
 * appends the address it saw). An entry that does not parse ends the walk
 * at the last good one; *ip is left as it was when the last entry is bad. */
void hn_http_forwarded_for(const hn_cidrs *proxies, const char *xff, hn_ip *ip);

/* The status of a decoded input: 204 when anything was accepted; else 503
 * when a good beacon met a full buffer while Redis is away (retry later);
 * else 400 when a beacon was the sender's fault (*why: batch_err, or the
 * unknown widget); else 204: the drops were the collector's choice (bot,
 * opted out), of which the sender is told nothing. */
int hn_http_verdict(const hn_admitted *a, const char *batch_err, const char **why);

/* The seed's public routes (proto/seed.h): HN_SEED_NONE unless path is
 * HN_SEED_PATH_PREFIX <key> "/track-session" (or -pageview, -event) with a
 * key of 1..HN_SEED_KEY_RAW_MAX bytes and no '/'; *key: its raw (still
 * percent-encoded) text in path. */
#define HN_SEED_PATH_PREFIX "/api/visitor-tracking/public/widget/"
#define HN_SEED_KEY_RAW_MAX 192
hn_seed_route hn_http_seed_path(const char *path, hn_str *key);

/* The "error" of a seed route's JSON answer (docs/API.md): by status, and
 * for a 400 by the reason: "bad_json", "bad_field", "unknown_widget",
 * "too_large", "rate_limited", "headers_too_large", "unavailable". */
const char *hn_http_seed_error(int code, hn_reason r);


#endif
