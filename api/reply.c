/* reply.c: headers and tracked answers (reply.h). */
#include "api/reply.h"
#include "common/buf.h"
#include "common/httpguard.h"
#include "common/json.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>

void hn_reply_headers(struct evhttp_request *req, const char *content_type) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", content_type ? content_type : "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Frame-Options", "DENY");
    evhttp_add_header(h, "Referrer-Policy", "no-referrer");
}

/* Whichever of the two callbacks comes first uncounts the answer and
 * clears the other. */
typedef struct tracker {
    uint64_t *writing;
} tracker;

static void track_close(struct evhttp_connection *evcon, void *arg) {
    tracker *t = arg;
    (void)evcon;
    (*t->writing)--;
    free(t);
}

static void track_complete(struct evhttp_request *req, void *arg) {
    tracker *t = arg;
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon) hn_httpguard_closecb(evcon, NULL, NULL);
    (*t->writing)--;
    free(t);
}

void hn_reply_track(uint64_t *writing, struct evhttp_request *req) {
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon == NULL) return;
    tracker *t = hn_xmalloc(sizeof(*t));
    t->writing = writing;
    (*writing)++;
    evhttp_request_set_on_complete_cb(req, track_complete, t);
    hn_httpguard_closecb(evcon, track_close, t);
}

void hn_reply_send(uint64_t *writing, bool closing, struct evhttp_request *req, int status,
                   const char *content_type, const char *body, size_t len) {
    if (evhttp_request_get_connection(req) == NULL) {
        evhttp_request_free(req);      /* detached: the client left; ours to free */
        return;
    }
    hn_reply_headers(req, content_type);
    if (closing) evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    struct evbuffer *b = evbuffer_new();
    if (evhttp_request_get_command(req) != EVHTTP_REQ_HEAD) evbuffer_add(b, body, len);
    hn_reply_track(writing, req);
    evhttp_send_reply(req, status, NULL, b);
    evbuffer_free(b);
}

void hn_reply_error(uint64_t *writing, bool closing, struct evhttp_request *req, int status,
                    const char *msg) {
    hn_buf b;
    hn_buf_init(&b, 32 + strlen(msg));
    hn_buf_append(&b, "{\"error\":", 9);
    hn_json_str(&b, msg, strlen(msg));
    hn_buf_append(&b, "}", 1);
    hn_reply_send(writing, closing, req, status, NULL, b.p, b.len);
    hn_buf_free(&b);
}
