/*
 * server_stream.c: the live stream's door on the main thread (server_priv.h)
 * — tickets (minted with a token, single use: the used ones are kept until
 * they expire), the Last-Event-ID, and the hand-over of the request to the
 * SSE connections (api/live/sse.c).
 */
#include "api/server_priv.h"
#include "api/live/live.h"
#include "api/params.h"
#include "api/reply.h"
#include "common/json.h"
#include "common/log.h"
#include "common/timefmt.h"

#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* true when the raw query has a parameter named key (not decoded: a
 * ticket's name is never %-escaped by a client that means it). */
bool hn_srv_query_has(const char *q, const char *key) {
    size_t n = strlen(key);
    while (q && *q) {
        if (strncmp(q, key, n) == 0 && (q[n] == '=' || q[n] == '&' || q[n] == '\0')) return true;
        q = strchr(q, '&');
        if (q) q++;
    }
    return false;
}

static void purge_used(hn_api_server *s, int64_t now) {
    used_ticket *u, *tmp;
    HASH_ITER(hh, s->used, u, tmp) {
        if (u->expires_ms > now) continue;
        HASH_DEL(s->used, u);
        free(u);
        s->nused--;
    }
}

/* The stream's ticket (docs/API.md): the right widget, not used before, its
 * token still valid. Answers 401 (or 503) itself and returns HN_ERR. */
int hn_srv_check_ticket(hn_srv_rctx *c, const char *t, int64_t wid, hn_principal *who) {
    hn_api_server *s = c->s;
    int64_t now = (int64_t)hn_now_ms();
    hn_ticket tk;
    int why;
    switch (hn_ticket_verify(s->ticket_key, t, now, &tk)) {
    case HN_TICKET_OK: why = TK_OK; break;
    case HN_TICKET_FORGED: why = TK_FORGED; break;
    case HN_TICKET_EXPIRED: why = TK_EXPIRED; break;
    default: why = TK_MALFORMED; break;
    }
    used_ticket *u = NULL;
    if (why == TK_OK && tk.widget_id != wid) why = TK_WRONG_WIDGET;
    if (why == TK_OK) {
        HASH_FIND(hh, s->used, &tk.nonce, sizeof(tk.nonce), u);
        if (u) why = TK_REUSED;
    }
    if (why == TK_OK) {
        hn_auth_result ar = hn_auth_by_id(s->auth, tk.token_id, who);
        if (ar == HN_AUTH_UNAVAILABLE) {
            evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", "1");
            hn_srv_fail(c, 503, "API tokens not loaded yet, try again");
            return HN_ERR;
        }
        if (ar != HN_AUTH_OK) why = TK_REVOKED;
    }
    if (why == TK_OK) {
        if (s->nused >= MAX_USED_TICKETS || (s->nused & 255) == 255) purge_used(s, now);
        if (s->nused >= MAX_USED_TICKETS) {
            evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", "1");
            hn_srv_fail(c, 503, "too many live-stream tickets in use, try again");
            return HN_ERR;
        }
        u = hn_xmalloc(sizeof(*u));
        u->nonce = tk.nonce;
        u->expires_ms = tk.expires_ms;
        HASH_ADD(hh, s->used, nonce, sizeof(u->nonce), u);
        s->nused++;
    }
    s->tickets[why]++;
    if (why == TK_OK) return HN_OK;
    evhttp_add_header(evhttp_request_get_output_headers(c->req), "WWW-Authenticate",
                      "Bearer realm=\"herenow\", error=\"invalid_token\"");
    hn_srv_fail(c, 401, why == TK_EXPIRED        ? "ticket expired (ask for a new one)"
                 : why == TK_REUSED       ? "ticket already used (ask for a new one)"
                 : why == TK_WRONG_WIDGET ? "the ticket is for another widget"
                 : why == TK_REVOKED      ? "the ticket's token is revoked"
                                          : "invalid ticket");
    return HN_ERR;
}

void hn_srv_serve_ticket(hn_srv_rctx *c, const hn_api_req *rq, int64_t wid) {
    hn_api_server *s = c->s;
    char err[HN_PARAM_ERR_CAP];
    if (hn_param_check_keys(rq->qkey, rq->nquery, NULL, 0, err, sizeof(err)) != HN_OK) {
        hn_srv_fail(c, 400, err);
        return;
    }
    hn_ticket tk = {.widget_id = wid,
                    .expires_ms = (int64_t)hn_now_ms() + s->cfg->sse_ticket_ttl_s * 1000,
                    .nonce = hn_rng_next(&s->rng)};
    snprintf(tk.token_id, sizeof(tk.token_id), "%.12s", rq->who.token_id);
    char t[HN_TICKET_LEN + 1];
    hn_ticket_mint(s->ticket_key, &tk, t);
    s->tickets[TK_MINTED]++;
    hn_buf b;
    hn_buf_init(&b, 512);
    bool first = true;
    hn_buf_append(&b, "{", 1);
    hn_json_key(&b, &first, "ticket");
    hn_json_str(&b, t, strlen(t));
    char when[HN_TIME_CAP];
    size_t n = hn_fmt_time_ms(tk.expires_ms, when);
    hn_json_key(&b, &first, "expires_at");
    hn_json_str(&b, when, n);
    hn_json_key(&b, &first, "expires_in_s");
    hn_buf_printf(&b, "%lld", (long long)s->cfg->sse_ticket_ttl_s);
    hn_json_key(&b, &first, "stream");
    hn_buf_printf(&b, "\"" HN_API_WIDGETS "/%lld/active-visitors/stream?ticket=%s\"}", (long long)wid, t);
    hn_srv_record(s, c->route, 200, c->t0, c->method, c->path, c->query, c->token, NULL);
    hn_reply_send(&s->writing, s->stopping, c->req, 200, NULL, b.p, b.len);
    hn_buf_free(&b);
}

/* The stream's parameters, checked before a ticket is used up: 400 and
 * HN_ERR on anything wrong. */
int hn_srv_stream_params(hn_srv_rctx *c, const hn_api_req *rq, uint32_t *epoch, uint64_t *seq) {
    static const char *const allowed[] = {"ticket", "last_event_id", "pages"};
    char err[HN_PARAM_ERR_CAP];
    int pages;
    if (hn_param_check_keys(rq->qkey, rq->nquery, allowed, 3, err, sizeof(err)) != HN_OK ||
        hn_param_bool("pages", hn_api_query(rq, "pages"), &pages, err, sizeof(err)) != HN_OK) {
        hn_srv_fail(c, 400, err);
        return HN_ERR;
    }
    *epoch = 0;
    *seq = 0;
    const char *lei = hn_api_query(rq, "last_event_id");
    if (lei) {
        if (*lei && hn_live_parse_id(lei, epoch, seq) != HN_OK) {
            hn_srv_fail(c, 400, "last_event_id: not an event id of this stream (pass the last id: field as received)");
            return HN_ERR;
        }
    } else {
        /* EventSource's own reconnect: a stale or foreign id just means a snapshot */
        const char *h = evhttp_find_header(evhttp_request_get_input_headers(c->req), "Last-Event-ID");
        if (h && hn_live_parse_id(h, epoch, seq) != HN_OK) *epoch = 0;
    }
    return HN_OK;
}

void hn_srv_stream_full(hn_srv_rctx *c) {
    evhttp_add_header(evhttp_request_get_output_headers(c->req), "Retry-After", "5");
    hn_srv_fail(c, 503, c->s->stopping ? "shutting down" : "too many live streams open, try again");
}

void hn_srv_serve_stream(hn_srv_rctx *c, const hn_api_req *rq, int64_t wid, uint32_t epoch, uint64_t seq) {
    hn_api_server *s = c->s;
    int pages = -1;
    char err[HN_PARAM_ERR_CAP];
    hn_param_bool("pages", hn_api_query(rq, "pages"), &pages, err, sizeof(err));   /* checked */
    if (hn_sse_open(s->sse, c->req, wid, rq->who.token_id, epoch, seq, pages == 1) != HN_OK) {
        hn_srv_stream_full(c);
        return;
    }
    hn_srv_record(s, c->route, 200, c->t0, c->method, c->path, c->query, c->token, " stream=opened");
}

/* hn_sse_host: answers counted like every other (reply.h), and the token
 * cache's view of an open stream's token. */
static void sse_track(void *arg, struct evhttp_request *req) {
    hn_api_server *s = arg;
    hn_reply_track(&s->writing, req);
}

static bool sse_token_ok(void *arg, const char *token_id, int64_t widget_id) {
    hn_api_server *s = arg;
    hn_principal who;
    hn_auth_result r = hn_auth_by_id(s->auth, token_id, &who);
    if (r == HN_AUTH_INVALID) return false;
    return r != HN_AUTH_OK || who.widget_id < 0 || who.widget_id == widget_id;
}

hn_sse_host hn_srv_sse_host(hn_api_server *s) {
    return (hn_sse_host){.arg = s, .track = sse_track, .headers = hn_reply_headers,
                         .token_ok = sse_token_ok};
}
