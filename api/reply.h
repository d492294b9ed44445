/*
 * reply.h: answers on the main thread (evhttp is not thread-safe) — the
 * headers every answer carries, and answers counted until they are out.
 *
 * An answer on its way out is counted in *writing until evhttp reports it
 * complete or its connection goes away, so that a stop waits for answers
 * to reach their clients, not just for handlers to return.
 */
#ifndef HN_REPLY_H
#define HN_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evhttp_request;

/* Content-Type (NULL: application/json), no-store, nosniff, DENY, no-referrer. */
void hn_reply_headers(struct evhttp_request *req, const char *content_type);

/* Counts req's answer in *writing until it is complete or its connection
 * gone (sets req's on-complete callback and its connection's close callback). */
void hn_reply_track(uint64_t *writing, struct evhttp_request *req);

/* Sends a whole answer (no body for HEAD), tracked; `closing`: with
 * Connection: close. A request whose client left is freed. */
void hn_reply_send(uint64_t *writing, bool closing, struct evhttp_request *req, int status,
                   const char *content_type, const char *body, size_t len);

/* {"error": msg} with status. */
void hn_reply_error(uint64_t *writing, bool closing, struct evhttp_request *req, int status,
                    const char *msg);

#endif
