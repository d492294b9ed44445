/*
 * tls.h: HTTPS on the collector's beacon port and on the api, with
 * Debian's OpenSSL under libevent's OpenSSL bufferevents (docs/OPERATIONS.md
 * "HTTPS").
 *
 * One hn_tls per daemon, shared by its threads: it holds the server
 * context made from HERENOW_TLS_CERT (PEM, the chain after the leaf) and
 * HERENOW_TLS_KEY. TLS 1.2 and 1.3 only, Mozilla's "intermediate" ciphers,
 * ALPN http/1.1, no renegotiation, no server session cache: resumption is
 * by session tickets, whose keys this module keeps and rotates
 * (HERENOW_TLS_TICKET_ROTATE_S; a ticket is accepted for two periods).
 *
 * hn_tls_reload (SIGHUP) reads the files again into a new context and swaps
 * it in: new connections get the new certificate, open ones keep theirs
 * (each SSL holds a reference on its context), and the ticket keys carry
 * over. A reload that fails keeps the old context and says why.
 */
#ifndef HN_TLS_H
#define HN_TLS_H

#include "common/hn.h"

#include <event2/bufferevent.h>
#include <event2/event.h>

typedef struct hn_tls hn_tls;

/* A certificate as the operator sees it (herenowctl doctor, metrics). */
typedef struct hn_tls_cert_info {
    int64_t not_before;        /* unix seconds */
    int64_t not_after;
    char    subject[256];      /* one line */
    char    issuer[256];
} hn_tls_cert_info;

/* Reads and checks the pair: the chain parses, the key is the leaf's, the
 * leaf is valid now. NULL with a one-line reason in err otherwise. */
hn_tls *hn_tls_create(const char *cert_file, const char *key_file, int ticket_rotate_s,
                      char *err, size_t cap);
void    hn_tls_free(hn_tls *t);

/* The files read again (SIGHUP). HN_OK: new connections use them. */
int hn_tls_reload(hn_tls *t, char *err, size_t cap);

/* SIGHUP's part: hn_tls_reload and a log line either way (event=tls_reloaded
 * with the leaf's subject and expiry, or event=tls_reload_failed and the
 * reason: the old certificate stays). t NULL: nothing. */
void hn_tls_reload_logged(hn_tls *t);

/* Prometheus: herenow_tls_cert_not_after_seconds (the leaf in use: when
 * it expires) and herenow_tls_reload_failures_total. t NULL: nothing. */
struct hn_buf;
void hn_tls_metrics(hn_tls *t, struct hn_buf *out);

/* The leaf in use now. */
void hn_tls_info(hn_tls *t, hn_tls_cert_info *out);

/* A server-side bufferevent for a connection evhttp is about to accept
 * (fd -1: evhttp sets it), for evhttp_set_bevcb. NULL on failure. */
struct bufferevent *hn_tls_bev(hn_tls *t, struct event_base *base);

/* True when a request's connection is TLS (to send HSTS, say). */
bool hn_tls_is_tls(struct bufferevent *bev);

/* The same checks as hn_tls_create on files alone (no context kept), and
 * the leaf's dates and names. HN_OK, or HN_ERR with the reason. */
int hn_tls_check_files(const char *cert_file, const char *key_file, hn_tls_cert_info *out,
                       char *err, size_t cap);

#endif
