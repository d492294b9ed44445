/*
 * httpguard.h: what an evhttp server needs besides evhttp — a limit on how
 * long a request may take to arrive (slowloris), the count of connections
 * closed with a request half-read, and a listener that survives running out
 * of file descriptors. Used by the collector's beacon port (one guard per
 * worker thread) and by the api (its main thread).
 *
 * evhttp's timeout is an idle one (a client dripping a byte every few
 * seconds keeps a request open for ever), it offers no hook at accept time
 * and closes connections without telling anyone. So each connection's
 * bufferevent is made here (evhttp_set_bevcb), with a callback on its input
 * buffer (HTTPS: also on each TLS record header read, so that a handshake
 * or a record dripped byte by byte runs the same clock); at the first bytes (evhttp has made its connection by then, and
 * is the bufferevent's callback argument) the guard asks for evhttp's close
 * callback and watches both buffers. A connection is "arriving" from request
 * bytes in until the request is complete (hn_httpguard_arrived, from the
 * request callback) or answer bytes go out. Closed while arriving, it counts
 * as incomplete; still arriving request_timeout_ms after its request began,
 * the sweep (4× a second) closes it. The state is a slot per fd, so a
 * connection that never sends a byte costs nothing.
 *
 * Accept failing for want of descriptors (EMFILE, ENFILE, ENOBUFS, ENOMEM)
 * would make libevent's listener fire again at once, for ever: the guard
 * pauses the listener for 100 ms instead, counts it and logs once a second.
 *
 * At most one plain and one HTTPS guard per thread (the callbacks find
 * theirs through a thread-local, by the kind of the connection's bufferevent);
 * counters are updated with relaxed atomics, for a scraper on another thread.
 */
#ifndef HN_HTTPGUARD_H
#define HN_HTTPGUARD_H

#include "common/hn.h"

#include <event2/event.h>
#include <event2/http.h>

typedef struct hn_httpguard hn_httpguard;

/* Where the guard counts (any may be NULL). */
typedef struct hn_httpguard_counters {
    uint64_t *connections;         /* accepted */
    uint64_t *incomplete;          /* closed with a request begun and not complete */
    uint64_t *request_timeouts;    /* closed by the sweep */
    uint64_t *accept_errors;       /* accept failed (out of descriptors, ...) */
} hn_httpguard_counters;

/* Installs itself on http (evhttp_set_bevcb) and on bound's listener.
 * name tags its log lines ("http", "api"). tls non-NULL: the port speaks
 * HTTPS, each connection's bufferevent is an OpenSSL one (common/tls.h). */
typedef struct hn_tls hn_tls;
hn_httpguard *hn_httpguard_new(struct event_base *base, struct evhttp *http,
                               struct evhttp_bound_socket *bound, int request_timeout_ms,
                               const char *name, const hn_httpguard_counters *counters,
                               hn_tls *tls);
/* Before evhttp_del_accept_socket (which frees the listener): the guard
 * forgets it and its pending resume. */
void hn_httpguard_unlisten(hn_httpguard *g);
/* Before evhttp_free (the close callbacks still find it). */
void hn_httpguard_free(hn_httpguard *g);

/* The request arrived whole: its clock stops. Call first thing in the
 * request callback. */
void hn_httpguard_arrived(struct evhttp_request *req);

/* Instead of evhttp_connection_set_closecb on a guarded connection (the
 * guard's own close callback must stay: it forgets the connection); cb NULL
 * removes the owner's. On the connection's event-base thread. */
typedef void (*hn_httpguard_closefn)(struct evhttp_connection *con, void *arg);
void hn_httpguard_closecb(struct evhttp_connection *con, hn_httpguard_closefn cb, void *arg);

/* True when the request names its body length twice: two Content-Length
 * headers, or Content-Length and Transfer-Encoding together. evhttp takes
 * the first; a proxy in front may take another (request smuggling), so such
 * a request is refused, and its connection closed. */
bool hn_http_ambiguous_length(struct evhttp_request *req);

/* Raises the soft RLIMIT_NOFILE to the hard one (as Redis does): the usual
 * soft 1024 is far below what a busy port holds. Returns the new soft limit. */
uint64_t hn_raise_nofile(void);

#endif
