/*
 * sse.h: the live stream's connections, on the main thread (evhttp is not
 * thread-safe): each open stream waits for its START from the live hub
 * (live.h) — headers, `retry:`, then the snapshot or the replay — and from
 * then on gets every message of its widget that is newer than what it has,
 * by reference (the hub's text is shared, never copied per stream).
 *
 * Once a second every stream is looked at: a `: ping` comment after
 * HERENOW_SSE_PING_S without one, `bye` and the end after
 * HERENOW_SSE_MAX_LIFETIME_S, or once its token is revoked; a client that
 * lets more than HERENOW_SSE_MAX_BUFFER_KB wait unread is ended (`slow`).
 * A client that left is noticed when a write fails (a ping at the latest)
 * and freed.
 *
 * The streams know nothing of the server: what they need of it (answers
 * counted until written, the standard headers, whether a token still
 * holds) comes through the callbacks of hn_sse_host.
 */
#ifndef HN_SSE_H
#define HN_SSE_H

#include "api/live/live.h"

struct evhttp_request;

/* What the HTTP server lends the streams; every callback runs on the main
 * thread, from hn_sse_open, hn_sse_stop or the streams' own events. */
typedef struct hn_sse_host {
    void *arg;
    /* req is about to get its final answer: the server counts it until it
     * has been written out or its connection is gone (a stop waits for it). */
    void (*track)(void *arg, struct evhttp_request *req);
    /* Adds the headers every answer carries; content_type NULL: JSON. */
    void (*headers)(struct evhttp_request *req, const char *content_type);
    /* false once the token with this public id is revoked or may no longer
     * see widget_id: its streams end (`revoked`). */
    bool (*token_ok)(void *arg, const char *token_id, int64_t widget_id);
} hn_sse_host;

typedef struct hn_sse hn_sse;

/* host is copied. Nothing runs before hn_sse_start. */
hn_sse *hn_sse_create(const hn_config *cfg, const hn_redis_cfg *rcfg, struct event_base *base,
                      const hn_sse_host *host);
int     hn_sse_start(hn_sse *s, char *err, size_t cap);
/* Takes req (auth, scope and parameters checked) as a stream of widget_id
 * for the token token_id (its public id, copied); last_epoch 0: no
 * Last-Event-ID; pages: the stream gets `pages` events too. HN_OK: req is the stream's now (answered when the hub's
 * START comes). HN_AGAIN: stopping, or
 * HERENOW_SSE_MAX_CLIENTS are open; req is still the caller's, who
 * answers 503. */
int     hn_sse_open(hn_sse *s, struct evhttp_request *req, int64_t widget_id, const char *token_id,
                    uint32_t last_epoch, uint64_t last_seq, bool pages);
/* The live hub behind the streams (pages now: hn_live_pages_get). */
hn_live *hn_sse_live(hn_sse *s);
/* The stop: every stream gets `bye` (stopping) and ends. */
void    hn_sse_stop(hn_sse *s);
/* true when hn_sse_open would take a stream now (not stopping, below the cap). */
bool    hn_sse_has_room(const hn_sse *s);
/* Prometheus text of the streams and of the hub. */
void    hn_sse_metrics(hn_sse *s, hn_buf *out);
/* Joins the hub's thread first (no more output), then frees what is left,
 * without answering. */
void    hn_sse_destroy(hn_sse *s);

#endif
