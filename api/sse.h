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
 */
#ifndef HN_SSE_H
#define HN_SSE_H

#include "api/internal.h"
#include "api/live.h"

typedef struct hn_sse hn_sse;

hn_sse *hn_sse_create(const hn_config *cfg, const hn_redis_addr *raddr, struct event_base *base,
                      hn_api_auth *auth, uint64_t *writing);
int     hn_sse_start(hn_sse *s, char *err, size_t cap);
/* Takes req (auth, scope and parameters checked) as a stream of widget_id
 * for who; last_epoch 0: no Last-Event-ID. HN_OK: req is the stream's now
 * (answered when the hub's START comes). HN_AGAIN: HERENOW_SSE_MAX_CLIENTS
 * are open; the caller answers 503. */
int     hn_sse_open(hn_sse *s, struct evhttp_request *req, int64_t widget_id, const hn_principal *who,
                    uint32_t last_epoch, uint64_t last_seq);
/* The stop: every stream gets `bye` (stopping) and ends. */
void    hn_sse_stop(hn_sse *s);
size_t  hn_sse_open_count(const hn_sse *s);
/* true when hn_sse_open would take a stream now (not stopping, below the cap). */
bool    hn_sse_has_room(const hn_sse *s);
void    hn_sse_metrics(hn_sse *s, hn_buf *out);
void    hn_sse_destroy(hn_sse *s);

#endif
