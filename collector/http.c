/*
 * http.c: the collector's HTTP ingress, on each worker's own event base
 * (docs/PROTOCOL.md §HTTP):
 *
 *   POST    <beacon path>   msgpack body, one beacon or an array, whatever the
 *                           Content-Type (sendBeacon sends text/plain)
 *                           → 204 / 400 reason / 413 / 429 / 431 / 503
 *   GET     <pixel path>?k=…&s=…  the same keys as a query string
 *                           → always the 43-byte GIF (with the status), no-store
 *   GET     <script path>   the widget script: ETag, Cache-Control, gzip
 *   GET     <chat script path>  the chat script, the same way
 *   GET     /v?k=…&s=…      the chat downlink, Server-Sent Events (chat.h)
 *   POST    /api/visitor-tracking/public/widget/<key>/track-session (-pageview,
 *           -event)      the seed's JSON (proto/seed.h), the same way as /b
 *                           → 204 / 400 / 413 / 429 / 431 / 503 with {"error": …}
 *   OPTIONS <beacon|pixel|seed route>  CORS preflight
 *
 * A POST of beacons of a chat-enabled widget is answered 200 with
 * {"chat":"<chat script path>"} instead of 204 (docs/CHAT.md §2).
 *
 * Every worker has its own listening socket (SO_REUSEPORT) and evhttp on its
 * own event base, so the kernel spreads connections over the workers and a
 * request is handled start to finish on one thread (libevent 2.1's evhttp is
 * not thread-safe, and needs not be). Accepted beacons join the UDP ones in
 * the worker's flush (worker.c).
 *
 * Limits: ours are checked in the handler, so that each refusal is answered
 * and counted by reason — headers over 8 KiB (431), a body over 64 KiB
 * (413). libevent's own limits sit above them (HEADERS_HARD, BODY_HARD) and
 * only bound memory: beyond those libevent answers by itself, uncounted.
 */
#include "collector/chat.h"
#include "collector/httpmap.h"
#include "common/httpcache.h"
#include "common/json.h"
#include "common/pct.h"
#include "common/net.h"
#include "collector/worker.h"
#include "common/log.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define HEADERS_MAX   8192                    /* request line excluded */
#define HEADERS_HARD  16384                   /* libevent: request line, and each header block */
#define BODY_HARD     (2 * HN_HTTP_BODY_MAX)  /* libevent: bodies read at all */
#define QUERY_MAX     HEADERS_HARD            /* a query string is shorter than the line holding it */
#define SCRATCH_MAX   (HN_HTTP_BODY_MAX + 64) /* a seed body's strings, decoded (proto/seed.h) */
#define RL_SLOTS      65536                   /* client prefixes remembered per worker */

const int hn_http_codes[HN_HTTP_CODES] = {200, 204, 304, 400, 404, 405, 413, 429, 431, 500, 503, 0};

int hn_http_code_index(int code) {
    for (int i = 0; i < HN_HTTP_CODES - 1; i++)
        if (hn_http_codes[i] == code) return i;
    return HN_HTTP_CODES - 1;
}

/* The smallest transparent GIF, byte for byte nginx's empty_gif. */
static const unsigned char gif[43] = {
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x01, 0x00, 0x00, 0x00,
    0x00, 0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
};

enum route { R_NONE, R_BEACON, R_PIXEL, R_SCRIPT, R_CHAT_SCRIPT, R_CHAT, R_SEED };

/* A request to one of the seed's routes: which, for which widget key. */
typedef struct seed_req {
    hn_seed_route rt;
    hn_str        key;            /* percent-decoded into keybuf */
    char          keybuf[HN_SEED_KEY_RAW_MAX + 1];
    const char   *field;          /* the member a refused body failed on */
} seed_req;

/* --- answers ---------------------------------------------------------------- */

static void reply(hn_worker *w, struct evhttp_request *req, int code, const char *status,
                  struct evbuffer *body) {
    HN_STAT_ADD(w->st.http_responses[hn_http_code_index(code)], 1);
    evhttp_send_reply(req, code, status, body);
}

/* A one-line reason in a text/plain body. */
static void reply_text(hn_worker *w, struct evhttp_request *req, int code, const char *status,
                       const char *why) {
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "%s\n", why);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    reply(w, req, code, status, b);
    evbuffer_free(b);
}

static void reply_gif(hn_worker *w, struct evhttp_request *req, int code, const char *status) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "image/gif");
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_reference(b, gif, sizeof(gif), NULL, NULL);
    reply(w, req, code, status, b);
    evbuffer_free(b);
}

/* Access-Control-Allow-Origin for beacon answers: sendBeacon and the pixel
 * do not need it, fetch with keepalive in cors mode does. */
static void cors(hn_worker *w, struct evhttp_request *req) {
    const char *allow = w->col->cfg.http_cors_origins;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    if (strcmp(allow, "*") == 0) {
        evhttp_add_header(h, "Access-Control-Allow-Origin", "*");
        return;
    }
    const char *origin = evhttp_find_header(evhttp_request_get_input_headers(req), "Origin");
    if (origin && hn_origin_allowed(allow, origin)) evhttp_add_header(h, "Access-Control-Allow-Origin", origin);
    evhttp_add_header(h, "Vary", "Origin");
}

/* --- the client ---------------------------------------------------------------- */

static bool is_1(const char *v) {
    return v[0] == '1' && v[1] == '\0';
}

/* The client of a request, from one pass over its headers; returns the
 * headers' size (for the 8 KiB limit). */
static size_t client_of(hn_worker *w, struct evhttp_request *req, hn_client *cl) {
    const hn_collector *c = w->col;
    struct evhttp_connection *con = evhttp_request_get_connection(req);
    memset(cl, 0, sizeof(*cl));
    const struct sockaddr *sa = evhttp_connection_get_addr(con);
    cl->have_ip = sa && hn_ip_from_sockaddr(sa, &cl->ip);
    if (!cl->have_ip) {
        char *host = NULL;
        ev_uint16_t port;
        evhttp_connection_get_peer(con, &host, &port);
        cl->have_ip = host && hn_ip_parse(host, strlen(host), &cl->ip);
    }
    bool via_proxy = cl->have_ip && c->proxies.n && hn_cidrs_match(&c->proxies, &cl->ip);
    /* Some proxies (HAProxy) add an X-Forwarded-For line of their own rather
     * than append to the client's: all lines, in order, are one list. */
    char xff[HEADERS_MAX];
    size_t nxff = 0, size = 0;
    const struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    for (const struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next) {
        size_t vl = strlen(kv->value);
        size += strlen(kv->key) + vl + 4;
        if (strcasecmp(kv->key, "User-Agent") == 0) {
            cl->ua = (hn_str){kv->value, (uint32_t)(vl < HN_UA_MAX ? vl : HN_UA_MAX)};
        } else if (strcasecmp(kv->key, "Sec-GPC") == 0 || strcasecmp(kv->key, "DNT") == 0) {
            cl->opted_out |= is_1(kv->value);
        } else if (via_proxy && strcasecmp(kv->key, "X-Forwarded-For") == 0 &&
                   nxff + vl + 2 <= sizeof(xff)) {   /* past the limit: refused anyway */
            if (nxff) xff[nxff++] = ',';
            memcpy(xff + nxff, kv->value, vl);
            nxff += vl;
        }
    }
    xff[nxff] = '\0';
    if (nxff) hn_http_forwarded_for(&c->proxies, xff, &cl->ip);
    return size;
}

/* --- beacons ------------------------------------------------------------------ */

static const char *status_text(int code) {
    switch (code) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 413: return "Payload Too Large";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    default:  return "Service Unavailable";
    }
}

/* A seed route's refusal: {"error": …, "field": …, "reason": …} (docs/API.md). */
static void reply_seed_error(hn_worker *w, struct evhttp_request *req, int code, hn_reason r,
                             const char *field, const char *why) {
    hn_buf b = {0};
    bool first = true;
    const char *error = hn_http_seed_error(code, r);
    if (r == HN_R_UNKNOWN_WIDGET) why = "no widget has this key";
    hn_buf_append(&b, "{", 1);
    hn_json_kstr(&b, &first, "error", error);
    if (field && strcmp(error, "bad_field") == 0) hn_json_kstr(&b, &first, "field", field);
    hn_json_kstr(&b, &first, "reason", why);
    hn_buf_append(&b, "}", 1);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, b.p, b.len);
    reply(w, req, code, status_text(code), out);
    evbuffer_free(out);
    hn_buf_free(&b);
}

/* Refusals before decoding: the whole input counts as one dropped beacon. */
static void refuse(hn_worker *w, struct evhttp_request *req, enum route rt, hn_reason r,
                   int code, const char *why) {
    hn_worker_drop(w, (rt == R_PIXEL ? HN_TR_PIXEL : HN_TR_HTTP) - 1, r, 1);
    hn_debug("event=beacon_rejected transport=%s reason=%s err='%s'",
             rt == R_PIXEL ? "pixel" : "http", hn_reason_name(r), why);
    cors(w, req);
    if (code == 429) evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
    if (rt == R_PIXEL) reply_gif(w, req, code, status_text(code));
    else if (rt == R_SEED) reply_seed_error(w, req, code, r, NULL, why);
    else reply_text(w, req, code, status_text(code), why);
}

/* Decodes the request's beacons into w->batch; 0, or the status of a
 * refusal of the whole input (*r, *why say why). */
static int decode(hn_worker *w, struct evhttp_request *req, enum route rt, const hn_client *cl,
                  size_t header_bytes, seed_req *sq, hn_reason *r, const char **why) {
    hn_batch *bt = w->batch;
    if (header_bytes > HEADERS_MAX) {
        *r = HN_R_TOO_LARGE, *why = "request headers over 8192 bytes";
        return 431;
    }
    if (cl->have_ip && !hn_rl_take(w->rl, &cl->ip, hn_mono_ms(), 1.0)) {
        *r = HN_R_RATE_LIMITED, *why = "rate limited: retry later";
        return 429;
    }
    if (w->paused || w->stopping) {
        *r = HN_R_REDIS_UNAVAILABLE, *why = "busy: the collector's store is behind";
        return 503;
    }
    if (rt == R_PIXEL) {
        const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
        size_t qlen = q ? strlen(q) : 0;
        if (qlen > QUERY_MAX) {
            *r = HN_R_TOO_LARGE, *why = "query string too long";
            return 400;
        }
        hn_beacon_decode_query(bt, q ? q : "", qlen, w->qscratch, QUERY_MAX);
    } else {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        if (len > HN_HTTP_BODY_MAX) {
            *r = HN_R_TOO_LARGE, *why = "body over 65536 bytes";
            return 413;
        }
        if (len == 0) {
            *r = HN_R_MALFORMED, *why = "empty body";
            return 400;
        }
        const char *body = (const char *)evbuffer_pullup(in, -1);
        if (rt == R_SEED)
            hn_beacon_decode_seed(bt, sq->rt, sq->key, body, len, w->qscratch, SCRATCH_MAX,
                                  hn_now_ms(), &sq->field);
        else
            hn_beacon_decode_msgpack(w->dec, bt, body, len);
    }
    if (bt->n == 0) {
        *r = bt->all, *why = bt->err;
        return 400;
    }
    return 0;
}

/* 200 {"chat":"<path>"}: the page loads the chat script (its path has no
 * character JSON escapes: script.c's path_ok). */
static void reply_chat(hn_worker *w, struct evhttp_request *req) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "{\"chat\":\"%s\"}", w->col->cfg.chat_script_path);
    reply(w, req, 200, "OK", b);
    evbuffer_free(b);
}

/* 403 {"error":"banned"}: a banned visitor's chat message (docs/RULES.md §5). */
static void reply_banned(hn_worker *w, struct evhttp_request *req) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "{\"error\":\"banned\"}");
    reply(w, req, 403, "Forbidden", b);
    evbuffer_free(b);
}

/* POST /b, GET /p.gif and the seed's routes (sq: NULL for the first two). */
static void on_beacons(hn_worker *w, struct evhttp_request *req, enum route rt, seed_req *sq) {
    const hn_transport tr = rt == R_PIXEL ? HN_TR_PIXEL : HN_TR_HTTP;
    uint64_t now_us = hn_now_us();
    hn_client cl;
    size_t header_bytes = client_of(w, req, &cl);

    hn_reason r = HN_R_OK;
    const char *why = "";
    int code = decode(w, req, rt, &cl, header_bytes, sq, &r, &why);
    if (code) {
        refuse(w, req, rt, r, code, why);
        return;
    }
    const hn_batch *bt = w->batch;
    const hn_widgets *wt = hn_widgets_acquire(w->col->widgets, &w->wref);
    hn_admitted a = hn_worker_admit(w, wt, bt, tr, &cl, now_us);
    hn_worker_kick(w);

    code = hn_http_verdict(&a, bt->err, &why);
    cors(w, req);
    if (code == 429) evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "1");
    if (rt == R_PIXEL) reply_gif(w, req, code == 204 ? 200 : code, code == 204 ? "OK" : status_text(code));
    else if (rt == R_SEED && code != 204) reply_seed_error(w, req, code, a.first, sq->field, why);
    else if (code == 204 && a.chat && rt != R_SEED) reply_chat(w, req);
    else if (code == 204) reply(w, req, 204, "No Content", NULL);
    else if (code == 403) reply_banned(w, req);
    else reply_text(w, req, code, status_text(code), why);
}

static void on_preflight(hn_worker *w, struct evhttp_request *req) {
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    cors(w, req);
    evhttp_add_header(h, "Access-Control-Allow-Methods", "POST, GET, OPTIONS");
    evhttp_add_header(h, "Access-Control-Allow-Headers", "Content-Type");
    evhttp_add_header(h, "Access-Control-Max-Age", "86400");
    reply(w, req, 204, "No Content", NULL);
}

/* --- the widget script ------------------------------------------------------------ */

/* Accept-Encoding names gzip, and not with q=0 (a refusal). */
static void on_script(hn_worker *w, struct evhttp_request *req, const hn_script *s) {
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    bool gz = hn_http_accepts_gzip(evhttp_find_header(in, "Accept-Encoding"));
    /* each encoding is its own representation, with its own strong ETag */
    const char *etag = gz ? s->etag_gz : s->etag;
    evhttp_add_header(h, "ETag", etag);
    evhttp_add_header(h, "Cache-Control", "public, max-age=3600");
    evhttp_add_header(h, "Vary", "Accept-Encoding");
    evhttp_add_header(h, "Access-Control-Allow-Origin", "*");
    if (hn_http_etag_match(evhttp_find_header(in, "If-None-Match"), etag)) {
        reply(w, req, 304, "Not Modified", NULL);
        return;
    }
    evhttp_add_header(h, "Content-Type", "application/javascript; charset=utf-8");
    struct evbuffer *b = evbuffer_new();
    if (gz) {
        evhttp_add_header(h, "Content-Encoding", "gzip");
        evbuffer_add_reference(b, s->gz, s->gz_len, NULL, NULL);
    } else {
        evbuffer_add_reference(b, s->js, s->js_len, NULL, NULL);
    }
    reply(w, req, 200, "OK", b);
    evbuffer_free(b);
}

/* --- routing --------------------------------------------------------------------- */

static void on_request(struct evhttp_request *req, void *arg) {
    hn_worker *w = arg;
    const hn_config *cfg = &w->col->cfg;
    hn_httpguard_arrived(req);
    if (hn_http_ambiguous_length(req)) {
        /* A proxy in front may have framed it differently: request smuggling. */
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        reply_text(w, req, 400, "Bad Request",
                   "ambiguous body length (Content-Length twice, or with Transfer-Encoding)");
        return;
    }
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    seed_req sq = {.rt = HN_SEED_NONE, .field = NULL};
    enum route rt = path == NULL                              ? R_NONE
                    : strcmp(path, cfg->http_beacon_path) == 0 ? R_BEACON
                    : strcmp(path, cfg->http_pixel_path) == 0  ? R_PIXEL
                    : strcmp(path, cfg->http_script_path) == 0 ? R_SCRIPT
                    : strcmp(path, cfg->chat_script_path) == 0 ? R_CHAT_SCRIPT
                    : strcmp(path, HN_CHAT_DOWNLINK_PATH) == 0 ? R_CHAT
                    : (sq.rt = hn_http_seed_path(path, &sq.key)) != HN_SEED_NONE ? R_SEED
                                                               : R_NONE;
    if (rt == R_SEED) {
        /* a key that does not decode is looked up as it is: no widget has it */
        long n = hn_pct_decode(sq.key.p, sq.key.len, sq.keybuf, sizeof(sq.keybuf), HN_PCT_NO_NUL);
        if (n >= 0) sq.key = (hn_str){sq.keybuf, (uint32_t)n};
    }

    if (rt == R_NONE) {
        reply_text(w, req, 404, "Not Found", "not found");
    } else if (m == EVHTTP_REQ_OPTIONS && rt != R_SCRIPT && rt != R_CHAT_SCRIPT) {
        on_preflight(w, req);
    } else if ((rt == R_BEACON || rt == R_SEED) && m == EVHTTP_REQ_POST) {
        on_beacons(w, req, rt, &sq);
    } else if (rt == R_PIXEL && (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD)) {
        on_beacons(w, req, rt, NULL);
    } else if ((rt == R_SCRIPT || rt == R_CHAT_SCRIPT) && (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD)) {
        on_script(w, req, rt == R_SCRIPT ? &w->col->script : &w->col->chat_script);
    } else if (rt == R_CHAT && m == EVHTTP_REQ_GET) {
        hn_client cl;
        client_of(w, req, &cl);
        hn_chat_downlink(w->chat, req, cl.have_ip && !hn_rl_take(w->rl, &cl.ip, hn_mono_ms(), 1.0));
    } else {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                          rt == R_BEACON || rt == R_SEED ? "POST, OPTIONS"
                                         : rt == R_PIXEL ? "GET, HEAD, OPTIONS"
                                         : rt == R_CHAT   ? "GET, OPTIONS"
                                                          : "GET, HEAD");
        reply_text(w, req, 405, "Method Not Allowed", "method not allowed");
    }
}

/* --- lifecycle --------------------------------------------------------------------- */

/* One evhttp on a port of its own (SO_REUSEPORT: each worker listens),
 * with the beacon routes and a guard; tls non-NULL: HTTPS. */
static struct evhttp *listen_on(hn_worker *w, const hn_addr *addr, hn_tls *tls,
                                hn_httpguard **guard, const char *what, char *err, size_t cap) {
    const hn_collector *c = w->col;
    int fd = hn_tcp_listen(addr, true, (int)c->cfg.http_backlog, err, cap);
    if (fd < 0) return NULL;
    struct evhttp *http = evhttp_new(w->base);
    struct evhttp_bound_socket *bound = http ? evhttp_accept_socket_with_handle(http, fd) : NULL;
    if (bound == NULL) {
        close(fd);
        if (http) evhttp_free(http);
        snprintf(err, cap, "%s: evhttp could not take the socket", what);
        return NULL;
    }
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                         EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(http, HEADERS_HARD);
    evhttp_set_max_body_size(http, BODY_HARD);
    struct timeval tv = {c->cfg.http_timeout_ms / 1000, (c->cfg.http_timeout_ms % 1000) * 1000};
    evhttp_set_timeout_tv(http, &tv);
    evhttp_set_default_content_type(http, NULL);
    evhttp_set_gencb(http, on_request, w);
    hn_httpguard_counters ctr = {&w->st.http_connections, &w->st.http_incomplete,
                                 &w->st.http_request_timeouts, &w->st.http_accept_errors};
    *guard = hn_httpguard_new(w->base, http, bound, (int)c->cfg.http_request_timeout_ms,
                              tls ? "https" : "http", &ctr, tls);
    return http;
}

int hn_http_worker_start(hn_worker *w, char *err, size_t cap) {
    const hn_collector *c = w->col;
    if (c->http_on &&
        (w->http = listen_on(w, &c->http_addr, NULL, &w->guard, "HERENOW_HTTP_LISTEN", err, cap)) == NULL)
        return HN_ERR;
    if (c->https_on && (w->https = listen_on(w, &c->https_addr, c->tls, &w->guard_tls,
                                             "HERENOW_HTTPS_LISTEN", err, cap)) == NULL)
        return HN_ERR;
    w->rl = hn_rl_create((double)c->cfg.rate_limit, (double)c->cfg.rate_burst,
                         (unsigned)c->cfg.rate_v4_prefix, (unsigned)c->cfg.rate_v6_prefix, RL_SLOTS);
    w->qscratch = hn_xmalloc(SCRATCH_MAX);
    w->chat = hn_chat_create(w);
    return HN_OK;
}

/* Closes the listener and every connection; idempotent. */
void hn_http_worker_stop(hn_worker *w) {
    hn_chat_destroy(w->chat);       /* ends its streams: before evhttp_free */
    w->chat = NULL;
    hn_httpguard_free(w->guard);
    w->guard = NULL;
    hn_httpguard_free(w->guard_tls);
    w->guard_tls = NULL;
    if (w->http) evhttp_free(w->http);
    w->http = NULL;
    if (w->https) evhttp_free(w->https);
    w->https = NULL;
    if (w->rl) hn_rl_destroy(w->rl);
    w->rl = NULL;
    free(w->qscratch);
    w->qscratch = NULL;
}
