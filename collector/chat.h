/*
 * chat.h: a worker's chat downlinks (docs/CHAT.md §2) — GET /v answered as
 * Server-Sent Events from the widget's Redis stream hn:chat:{w}.
 *
 *   page ──GET /v?k&s[&last]──▶ downlink.c: checks, the SSE answer, pings
 *                                   │ registers the downlink with its widget
 *                                   ▼
 *   Redis ◀──XREVRANGE / XRANGE── chattail.c ("cmd" connection: where each
 *         │                        downlink starts, the backfill of a resume)
 *         └──XREAD BLOCK─────────▶ chattail.c ("tail" connection: one XREAD over
 *                                   the widgets with downlinks on this worker,
 *                                   a cursor per widget) ──▶ the session's downlinks
 *
 * Everything runs on the worker's thread and event base (libevent's evhttp
 * is not thread-safe: a downlink lives on the worker that accepted it). The
 * two Redis connections are made when the first downlink arrives.
 */
#ifndef HN_CHAT_H
#define HN_CHAT_H

#include "collector/collector.h"

struct evhttp_request;
typedef struct hn_chat hn_chat;

/* Before the worker's loop runs (events on w->base). */
hn_chat *hn_chat_create(hn_worker *w);
/* Ends every downlink (the chunked answer's end) and closes the Redis
 * connections; before evhttp_free. Then frees; NULL is fine. */
void     hn_chat_destroy(hn_chat *ch);

/* GET /v: refuses with a JSON error, or starts the stream. rate_limited:
 * the client's bucket was empty (429). */
void     hn_chat_downlink(hn_chat *ch, struct evhttp_request *req, bool rate_limited);

/* "<ms>-<seq>", the id of a stream entry; false for anything else. */
typedef struct hn_xid {
    uint64_t ms, seq;
} hn_xid;
bool hn_xid_parse(const char *s, size_t n, hn_xid *out);
static inline int hn_xid_cmp(hn_xid a, hn_xid b) {
    return a.ms != b.ms ? (a.ms < b.ms ? -1 : 1) : a.seq != b.seq ? (a.seq < b.seq ? -1 : 1) : 0;
}
/* A session id as beacons carry it: 8..64 of [A-Za-z0-9_-]. */
bool hn_chat_sid_ok(const char *s, size_t n);

/* One hn:chat entry (XRANGE / XREAD: field-value pairs) as an SSE event into
 * out; the target session in *sid. False (out untouched) when the entry is
 * not one: no s, or e not invite | message | close | expire. */
struct redisReply;
bool hn_chat_event(hn_buf *out, const char *id, size_t idlen, const struct redisReply *fields,
                   const char **sid, size_t *sidlen);

#endif
