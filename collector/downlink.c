/*
 * downlink.c: GET /v, the chat downlink's HTTP side (see chat.h and
 * chat_priv.h): the checks and their JSON errors, the event stream's
 * answer, writing events and pings, and the end of a downlink — the client
 * left (evhttp's close callback), it does not read (cut), or the worker stops.
 */
#include "collector/chat_priv.h"
#include "common/httpguard.h"
#include "common/json.h"
#include "common/log.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <sys/queue.h>
#include <stdlib.h>
#include <string.h>

#define PEND_MAX_BYTES (256 * 1024)   /* entries kept for a downlink not yet live */
#define SLOW_BYTES     (256 * 1024)   /* unread output beyond this: the client is cut */

const char *const hn_chat_refused_names[HN_CHAT_REFUSED__COUNT] = {
    "chat_disabled", "bad_request", "full", "rate_limited", "stopping"};

/* ---- pure helpers ------------------------------------------------------------------ */

static bool parse_u64(const char *s, size_t n, uint64_t *out) {
    uint64_t v = 0;
    if (n == 0 || n > 20) return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool hn_xid_parse(const char *s, size_t n, hn_xid *out) {
    const char *dash = memchr(s, '-', n);
    if (dash == NULL) return false;
    size_t a = (size_t)(dash - s);
    return parse_u64(s, a, &out->ms) && parse_u64(dash + 1, n - a - 1, &out->seq);
}

bool hn_chat_sid_ok(const char *s, size_t n) {
    if (n < 8 || n > CHAT_SID_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

static const redisReply *field(const redisReply *f, const char *name) {
    for (size_t i = 0; i + 1 < f->elements; i += 2) {
        const redisReply *k = f->element[i], *v = f->element[i + 1];
        if (k->type == REDIS_REPLY_STRING && v->type == REDIS_REPLY_STRING && k->len == 1 &&
            k->str[0] == name[0])
            return v;
    }
    return NULL;
}

static void kstr(hn_buf *b, bool *first, const char *key, const redisReply *v) {
    hn_json_kstrn(b, first, key, v ? v->str : "", v ? v->len : 0);
}

bool hn_chat_event(hn_buf *out, const char *id, size_t idlen, const redisReply *fields,
                   const char **sid, size_t *sidlen) {
    if (fields == NULL || fields->type != REDIS_REPLY_ARRAY) return false;
    const redisReply *s = field(fields, "s"), *e = field(fields, "e"), *t = field(fields, "t");
    if (s == NULL || e == NULL) return false;
    if (!((e->len == 6 && memcmp(e->str, "invite", 6) == 0) ||
          (e->len == 7 && memcmp(e->str, "message", 7) == 0) ||
          (e->len == 5 && memcmp(e->str, "close", 5) == 0) ||
          (e->len == 6 && memcmp(e->str, "expire", 6) == 0)))
        return false;
    /* the id is Redis's own: digits and a dash, nothing to escape */
    hn_buf_append(out, "id: ", 4);
    hn_buf_append(out, id, idlen);
    hn_buf_append(out, "\nevent: ", 8);
    hn_buf_append(out, e->str, e->len);
    hn_buf_append(out, "\ndata: {", 8);
    bool first = true;
    kstr(out, &first, "id", field(fields, "m"));
    kstr(out, &first, "conversation", field(fields, "c"));
    kstr(out, &first, "agent", field(fields, "a"));
    kstr(out, &first, "text", field(fields, "x"));
    int64_t ms = 0;
    char tb[24];
    if (t && t->len < sizeof(tb)) {
        memcpy(tb, t->str, t->len);
        tb[t->len] = '\0';
        if (!hn_parse_i64(tb, &ms)) ms = 0;
    }
    hn_json_kint(out, &first, "time", ms);
    hn_buf_append(out, "}\n\n", 3);
    *sid = s->str;
    *sidlen = s->len;
    return true;
}

/* ---- writing ----------------------------------------------------------------------- */

static size_t unread(struct evhttp_request *req) {
    struct evhttp_connection *con = evhttp_request_get_connection(req);
    struct bufferevent *bev = con ? evhttp_connection_get_bufferevent(con) : NULL;
    return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

static void dl_end(dl *d, bool cut);

static void put(dl *d, const char *p, size_t n) {
    if (unread(d->req) > SLOW_BYTES) {
        HN_STAT_ADD(d->ch->w->st.chat_closed_slow, 1);
        dl_end(d, true);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, p, n);
    evhttp_send_reply_chunk(d->req, b);
    evbuffer_free(b);
}

void dl_write(dl *d, hn_xid id, const char *text, size_t n) {
    if (d->dead) return;
    d->pos = id;
    HN_STAT_ADD(d->ch->w->st.chat_events, 1);
    put(d, text, n);
}

void dl_buffer(dl *d, hn_xid id, const char *text, size_t n) {
    if (d->dead) return;
    if (d->pend_bytes + n > PEND_MAX_BYTES) {   /* its start takes too long: it will resume */
        HN_STAT_ADD(d->ch->w->st.chat_closed_slow, 1);
        dl_end(d, true);
        return;
    }
    pend *p = hn_xmalloc(sizeof(*p) + n);
    p->next = NULL;
    p->id = id;
    p->len = n;
    memcpy(p->text, text, n);
    if (d->pt) d->pt->next = p;
    else d->ph = p;
    d->pt = p;
    d->npend++;
    d->pend_bytes += n;
}

static void pend_free(dl *d) {
    for (pend *p = d->ph, *nx; p; p = nx) {
        nx = p->next;
        free(p);
    }
    d->ph = d->pt = NULL;
    d->npend = 0;
    d->pend_bytes = 0;
}

void dl_go_live(dl *d) {
    if (d->dead) return;
    d->live = true;
    /* The start is fixed: events after it come. The page keeps its position
     * (a `ready` event carries it, without an SSE id so EventSource's own
     * Last-Event-ID is untouched), so that a downlink it opens later without
     * having had an event yet resumes from here: nothing sent meanwhile is
     * lost. ": ready" is for tools. */
    char ready[96];
    int n = snprintf(ready, sizeof(ready), "event: ready\ndata: {\"last\":\"%llu-%llu\"}\n\n: ready\n\n",
                     (unsigned long long)d->pos.ms, (unsigned long long)d->pos.seq);
    put(d, ready, (size_t)n);
    for (pend *p = d->ph; p && !d->dead; p = p->next)
        if (hn_xid_cmp(p->id, d->pos) > 0) dl_write(d, p->id, p->text, p->len);
    pend_free(d);
}

/* ---- ending ------------------------------------------------------------------------ */

void dl_maybe_free(dl *d) {
    if (d->dead && !d->inflight && !d->queued) free(d);
}

/* Out of its widget's list and the counts; the struct stays while a
 * request or the queue refers to it. */
static void detach(dl *d) {
    hn_chat *ch = d->ch;
    cwidget *cw = d->cw;
    d->dead = true;
    if (cw) {
        if (d->prev) d->prev->next = d->next;
        else cw->head = d->next;
        if (d->next) d->next->prev = d->prev;
        cw->n--;
        d->cw = NULL;
    }
    pend_free(d);
    ch->open--;
    atomic_fetch_sub(&ch->w->col->chat_open, 1);
    HN_STAT_SET(ch->w->st.chat_open, ch->open);
    chat_kick(ch);     /* an empty widget leaves the tail */
}

/* The client left (a write failed, or evhttp freed the connection). */
static void on_close(struct evhttp_connection *con, void *arg) {
    dl *d = arg;
    (void)con;
    /* libevent 2.1: a request whose answer has not ended is detached from
     * its failing connection and ours to free */
    if (evhttp_request_get_connection(d->req) == NULL) evhttp_request_free(d->req);
    detach(d);
    dl_maybe_free(d);
}

/* Ends the answer: cut (the client does not read) or the chunked end. */
static void dl_end(dl *d, bool cut) {
    if (d->dead) return;
    struct evhttp_connection *con = evhttp_request_get_connection(d->req);
    if (con) hn_httpguard_closecb(con, NULL, NULL);
    if (con == NULL) evhttp_request_free(d->req);
    else if (cut) evhttp_connection_free(con);     /* frees the request with it */
    else evhttp_send_reply_end(d->req);
    detach(d);
    /* the caller may still hold d (a reply being handled): freed by
     * dl_maybe_free once nothing refers to it */
}

/* ---- pings -------------------------------------------------------------------------- */

static void on_ping(evutil_socket_t fd, short what, void *arg) {
    hn_chat *ch = arg;
    (void)fd; (void)what;
    static const char ping[] = ": ping\n\n";
    for (cwidget *cw = ch->widgets; cw; cw = cw->next)
        for (dl *d = cw->head, *nx; d; d = nx) {
            nx = d->next;
            put(d, ping, sizeof(ping) - 1);
            dl_maybe_free(d);     /* cut: nothing else refers to it, unless a request does */
        }
}

/* ---- the request ---------------------------------------------------------------------- */

static void refuse(hn_chat *ch, struct evhttp_request *req, int code, const char *status,
                   int why, const char *error) {
    hn_worker *w = ch->w;
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "Access-Control-Allow-Origin", "*");
    if (code == 503 || code == 429) evhttp_add_header(h, "Retry-After", "5");
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "{\"error\":\"%s\"}", error);
    HN_STAT_ADD(w->st.chat_refused[why], 1);
    HN_STAT_ADD(w->st.http_responses[hn_http_code_index(code)], 1);
    evhttp_send_reply(req, code, status, b);
    evbuffer_free(b);
}

void hn_chat_downlink(hn_chat *ch, struct evhttp_request *req, bool rate_limited) {
    hn_worker *w = ch->w;
    hn_collector *c = w->col;
    if (ch->stopping || w->stopping) {
        refuse(ch, req, 503, "Service Unavailable", HN_CHAT_REF_STOPPING, "stopping");
        return;
    }
    if (rate_limited) {
        refuse(ch, req, 429, "Too Many Requests", HN_CHAT_REF_RATE, "rate_limited");
        return;
    }
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (query && evhttp_parse_query_str(query, &q) != 0) {
        evhttp_clear_headers(&q);
        refuse(ch, req, 400, "Bad Request", HN_CHAT_REF_BAD_REQUEST, "bad_query");
        return;
    }
    const char *k = evhttp_find_header(&q, "k"), *s = evhttp_find_header(&q, "s");
    const char *last = evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Event-ID");
    if (last == NULL || last[0] == '\0') last = evhttp_find_header(&q, "last");
    /* since=<ms>: the page's start, for a page without a position: what was
     * sent to its session since then comes first (an invitation sent while
     * its chat script was still loading is not lost) */
    const char *since = (last == NULL || last[0] == '\0') ? evhttp_find_header(&q, "since") : NULL;
    int64_t since_i = 0;
    bool since_ok = since == NULL || (hn_parse_i64(since, &since_i) && since_i > 0);
    uint64_t since_ms = since_ok ? (uint64_t)since_i : 0;
    uint32_t wid = 0, flags = 0;
    hn_xid from = {0, 0};
    int code = 0, why = 0;
    const char *error = NULL;
    const hn_widgets *wt = hn_widgets_acquire(c->widgets, &w->wref);
    if (k == NULL || !hn_widgets_lookup(wt, (hn_str){k, (uint32_t)strlen(k)}, &wid, &flags) ||
        !(flags & HN_WIDGET_CHAT))
        code = 404, why = HN_CHAT_REF_DISABLED, error = "chat_disabled";
    else if (s == NULL || !hn_chat_sid_ok(s, strlen(s)))
        code = 400, why = HN_CHAT_REF_BAD_REQUEST, error = "bad_session";
    else if (last && last[0] && !hn_xid_parse(last, strlen(last), &from))
        code = 400, why = HN_CHAT_REF_BAD_REQUEST, error = "bad_last_id";
    else if (!since_ok)
        code = 400, why = HN_CHAT_REF_BAD_REQUEST, error = "bad_since";
    else if (atomic_fetch_add(&c->chat_open, 1) >= c->cfg.chat_max_conns) {
        atomic_fetch_sub(&c->chat_open, 1);
        code = 503, why = HN_CHAT_REF_FULL, error = "too_many_downlinks";
    }
    if (code) {
        evhttp_clear_headers(&q);
        refuse(ch, req, code, code == 404 ? "Not Found" : code == 400 ? "Bad Request"
                                                                      : "Service Unavailable",
               why, error);
        return;
    }

    dl *d = hn_xcalloc(1, sizeof(*d));
    d->ch = ch;
    d->req = req;
    d->sidlen = (uint8_t)strlen(s);
    memcpy(d->sid, s, d->sidlen);
    d->resume = last && last[0];
    uint64_t now_ms = hn_now_ms();
    if (!d->resume && since_ms > 0) {     /* everything of the page's: after (since − 1 ms) */
        d->resume = true;
        from = (hn_xid){(since_ms < now_ms ? since_ms : now_ms) - 1, UINT64_MAX};
    }
    /* A resume starts no further back than the resume window: older events
     * are trimmed anyway, and a made-up `last=0-1` must not make the worker
     * read a widget's whole stream for one page. */
    uint64_t floor_ms = now_ms - (uint64_t)c->cfg.chat_resume_s * 1000u;
    if (d->resume && from.ms < floor_ms) from = (hn_xid){floor_ms, 0};
    d->pos = from;
    evhttp_clear_headers(&q);
    cwidget *cw = chat_widget(ch, wid);
    d->cw = cw;
    d->next = cw->head;
    if (cw->head) cw->head->prev = d;
    cw->head = d;
    cw->n++;
    ch->open++;
    HN_STAT_SET(w->st.chat_open, ch->open);
    HN_STAT_ADD(w->st.chat_opened, 1);

    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "text/event-stream; charset=utf-8");
    evhttp_add_header(h, "Cache-Control", "no-store");
    evhttp_add_header(h, "Access-Control-Allow-Origin", "*");
    evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(h, "X-Accel-Buffering", "no");
    HN_STAT_ADD(w->st.http_responses[hn_http_code_index(200)], 1);
    evhttp_send_reply_start(req, 200, "OK");
    /* Held for hours by every visible tab: the headers, both ways, are done
     * with (the answer's are written out) — a few hundred bytes each. */
    evhttp_clear_headers(evhttp_request_get_input_headers(req));
    evhttp_clear_headers(h);
    struct evhttp_connection *con = evhttp_request_get_connection(req);
    hn_httpguard_closecb(con, on_close, d);
    /* quiet between pings: evhttp's idle timeout must not cut it */
    evhttp_connection_set_timeout(con, (int)c->cfg.chat_ping_s * 3 + 10);
    chat_queue(ch, d);
}

/* ---- lifecycle ------------------------------------------------------------------------ */

hn_chat *hn_chat_create(hn_worker *w) {
    hn_chat *ch = hn_xcalloc(1, sizeof(*ch));
    ch->w = w;
    ch->base = w->base;
    hn_buf_init(&ch->scratch, 4096);
    ch->ping = event_new(ch->base, -1, EV_PERSIST, on_ping, ch);
    struct timeval tv = {w->col->cfg.chat_ping_s, 0};
    evtimer_add(ch->ping, &tv);
    chat_tail_init(ch);
    return ch;
}

void hn_chat_destroy(hn_chat *ch) {
    if (ch == NULL) return;
    ch->stopping = true;
    for (cwidget *cw = ch->widgets; cw; cw = cw->next)
        while (cw->head) {
            dl *d = cw->head;
            dl_end(d, false);
            dl_maybe_free(d);
        }
    chat_tail_close(ch);     /* requests answered NULL: the last dead downlinks go */
    for (dl *d = ch->todo_head, *nx; d; d = nx) {
        nx = d->todo_next;
        d->queued = false;
        dl_maybe_free(d);
    }
    for (cwidget *cw = ch->widgets, *nx; cw; cw = nx) {
        nx = cw->next;
        free(cw);
    }
    if (ch->ping) event_free(ch->ping);
    hn_buf_free(&ch->scratch);
    free(ch);
}
