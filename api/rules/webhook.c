/*
 * webhook.c: the webhook sender thread (webhook.h, docs/RULES.md §4).
 *
 *   NOTIFY herenow_webhooks ─┐
 *   tick (1 s) ──────────────┴─▶ claim: due rows → 'sending', lease, attempts+1, COMMIT
 *                                  │ (at most the free slots)
 *                                  ▼
 *                                slot: evhttp POST (plain, or TLS through an OpenSSL
 *                                bufferevent), own timer of HERENOW_WEBHOOK_TIMEOUT_MS
 *                                  │ answer, error or timeout
 *                                  ▼
 *                                finish (deferred out of evhttp's callback):
 *                                  2xx → delivered; else pending again with backoff, or
 *                                  failed at the last attempt (a rule's failures counted,
 *                                  the rule disabled at HERENOW_WEBHOOK_DISABLE_AFTER)
 *
 * One blocking PGconn of its own, which also LISTENs: its socket is
 * watched on the event base, so a NOTIFY wakes the thread at once. The SQL
 * statements are short (index lookups by id); the POSTs never block.
 */
#include "api/rules/webhook.h"

#include "common/ids.h"
#include "common/datakey.h"
#include "common/log.h"
#include "common/pg.h"
#include "common/prom.h"
#include "proto/rule.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BODY_CAP     65536        /* of an answer: read and thrown away */
#define LEASE_MARGIN 5000         /* ms past the timeout before another sender retries */
#define TICK_MS      100
#define POLL_MS      1000
#define DELIVERED_BATCH 64        /* delivered rows written in one statement at most */

/* ---- metrics (process-wide: the thread writes, /metrics reads) ------------------------ */

static const char *const ev_names[] = {"rule.fired", "session.started", "session.ended",
                                       "chat.started", "chat.message", "chat.closed", "other"};
#define NEV ((int)HN_ARRAY_LEN(ev_names))
enum { O_DELIVERED, O_RETRIED, O_FAILED, O__N };
static const char *const out_names[O__N] = {"delivered", "retried", "failed"};
static const double lat_le[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600};
#define NLAT HN_ARRAY_LEN(lat_le)

static atomic_uint_fast64_t m_deliveries[NEV][O__N];
static atomic_uint_fast64_t m_lat[NLAT + 1], m_lat_sum_ms;
static atomic_int_fast64_t  g_inflight, g_queue;

static int ev_index(const char *e) {
    for (int i = 0; i < NEV - 1; i++)
        if (strcmp(ev_names[i], e) == 0) return i;
    return NEV - 1;
}

void hn_webhooks_metrics(hn_buf *out) {
    hn_prom_family(out, "herenow_webhook_deliveries_total", HN_PROM_COUNTER,
                   "Webhook attempts by event and outcome (retried: failed, tried again later).");
    for (int e = 0; e < NEV; e++)
        for (int o = 0; o < O__N; o++)
            hn_prom_u64(out, "herenow_webhook_deliveries_total",
                        HN_PROM_L2("event", ev_names[e], "outcome", out_names[o]),
                        atomic_load(&m_deliveries[e][o]));
    uint64_t c[NLAT + 1];
    for (size_t i = 0; i <= NLAT; i++) c[i] = atomic_load(&m_lat[i]);
    hn_prom_family(out, "herenow_webhook_latency_seconds", HN_PROM_HISTOGRAM,
                   "From the delivery's decision (its row written) to its 2xx answer.");
    hn_prom_histogram(out, "herenow_webhook_latency_seconds", HN_PROM_L0, lat_le, c, NLAT,
                      (double)atomic_load(&m_lat_sum_ms) / 1000.0);
    hn_prom_gauge(out, "herenow_webhook_inflight", "Webhook POSTs in flight in this process.",
                  (double)atomic_load(&g_inflight));
    hn_prom_gauge(out, "herenow_webhook_queue_depth",
                  "Webhook deliveries pending or sending (every process's), as last counted.",
                  (double)atomic_load(&g_queue));
}

/* ---- pure parts ------------------------------------------------------------------------- */

void hn_webhook_sign(const char *secret, const char *ts, const char *body, size_t len,
                     char out[65]) {
    size_t tl = strlen(ts);
    unsigned char *msg = hn_xmalloc(tl + 1 + len + 1), md[EVP_MAX_MD_SIZE];
    memcpy(msg, ts, tl);
    msg[tl] = '.';
    if (len) memcpy(msg + tl + 1, body, len);
    unsigned int mdlen = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), msg, tl + 1 + len, md, &mdlen);
    free(msg);
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < mdlen && i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

int64_t hn_webhook_backoff_ms(int64_t base, int attempt, double r) {
    const int64_t cap = 86400000;
    double ms = (double)base;
    for (int i = 1; i < attempt && ms < cap; i++) ms *= 2;
    ms *= 0.8 + 0.4 * r;
    return ms > cap ? cap : (int64_t)ms;
}

/* ---- the thread ---------------------------------------------------------------------------- */

typedef struct slot {
    struct hn_webhooks *wh;
    bool     busy, done;
    int64_t  id, rule_id, created_ms;
    int      attempt;
    char     event[32];
    uint64_t t0;                          /* monotonic ms, the POST's start */
    struct evhttp_connection *conn;
    struct event *timer;                  /* the timeout */
    struct event *fin;                    /* the deferred finish */
    int      status;                      /* the answer's status, 0 none */
    char     err[96];                     /* why it failed, when it did */
    size_t   got;                         /* body bytes read (and dropped) */
    char    *url, *body, *secret;         /* the delivery's, kept while its host resolves */
    struct evdns_getaddrinfo_request *dns_req;   /* resolving, not yet answered */
    int      port;
} slot;

struct hn_webhooks {
    const hn_config *cfg;
    pthread_t        thread;
    atomic_bool      stop;
    struct event_base *base;
    struct evdns_base *dns;
    SSL_CTX          *ssl;
    PGconn           *pg;
    struct event     *pg_ev;
    struct event     *tick;
    struct event     *retry_ev;           /* at retry_at */
    uint64_t          next_poll, next_connect;
    uint64_t          retry_at;           /* the earliest retry this process scheduled; 0 none */
    int64_t           retry_ms;
    bool              wake;               /* a NOTIFY came: claim again */
    struct event     *after;              /* deferred: flush the delivered, claim (after the finishes) */
    hn_buf            dl_id, dl_st, dl_ms;   /* the delivered not yet written: "{…" array texts */
    int               ndl;
    int               nslots, busy;
    slot             *slots;
    hn_rng            rng;
};

static const char claim_sql[] =
    "WITH due AS (SELECT id FROM webhook_deliveries"
    "  WHERE (state = 'pending' OR (state = 'sending' AND locked_until < now()))"
    "  AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
    " UPDATE webhook_deliveries d SET state = 'sending', attempts = d.attempts + 1,"
    "  locked_until = now() + $2::float8 * interval '1 millisecond'"
    " FROM due WHERE d.id = due.id"
    " RETURNING d.id, d.event, d.url, d.body, d.attempts, coalesce(d.rule_id, 0),"
    "  floor(extract(epoch FROM d.created_at) * 1000)::bigint,"
    "  CASE WHEN d.rule_id IS NULL"
    "   THEN (SELECT secret FROM widget_webhooks w WHERE w.widget_id = d.widget_id)"
    "   ELSE (SELECT webhook_secret FROM widget_rules r WHERE r.id = d.rule_id) END";

/* The deliveries answered 2xx since the last flush, in one statement:
 * $1 ids, $2 statuses, $3 durations (ms), as arrays. */
static const char delivered_sql[] =
    "WITH d AS (UPDATE webhook_deliveries w SET state = 'delivered', delivered_at = now(),"
    "  last_status = u.st, last_ms = u.ms, last_error = NULL, locked_until = NULL"
    "  FROM unnest($1::bigint[], $2::int[], $3::bigint[]) AS u(id, st, ms)"
    "  WHERE w.id = u.id AND w.state = 'sending' RETURNING w.rule_id)"
    " UPDATE widget_rules r SET consecutive_failures = 0 FROM (SELECT DISTINCT rule_id FROM d) x"
    " WHERE r.id = x.rule_id AND r.consecutive_failures <> 0";

/* $1 id, $2 attempt (a lease lost to another sender leaves the row alone),
 * $3 status (NULL none), $4 error, $5 ms, $6 max attempts, $7 backoff ms,
 * $8 disable after, $9 the reason's "last: …" part */
static const char failed_sql[] =
    "WITH d AS (UPDATE webhook_deliveries SET"
    "  state = CASE WHEN attempts >= $6::integer THEN 'failed' ELSE 'pending' END,"
    "  next_attempt_at = CASE WHEN attempts >= $6::integer THEN next_attempt_at"
    "   ELSE now() + $7::float8 * interval '1 millisecond' END,"
    "  last_status = $3::integer, last_error = $4, last_ms = $5::integer, locked_until = NULL"
    "  WHERE id = $1::bigint AND state = 'sending' AND attempts = $2::integer"
    "  RETURNING state, rule_id),"
    " r AS (UPDATE widget_rules r SET consecutive_failures = r.consecutive_failures + 1,"
    "  enabled = r.enabled AND r.consecutive_failures + 1 < $8::integer,"
    "  failing_reason = CASE WHEN r.enabled AND r.consecutive_failures + 1 >= $8"
    "   THEN format('webhook failed %s deliveries in a row (last: %s)',"
    "    r.consecutive_failures + 1, $9::text) ELSE r.failing_reason END,"
    "  version = r.version + CASE WHEN r.enabled AND r.consecutive_failures + 1 >= $8"
    "   THEN 1 ELSE 0 END,"
    "  updated_at = CASE WHEN r.enabled AND r.consecutive_failures + 1 >= $8"
    "   THEN now() ELSE r.updated_at END"
    "  FROM d WHERE d.state = 'failed' AND r.id = d.rule_id"
    "  RETURNING r.id, NOT r.enabled AS disabled)"
    " SELECT (SELECT state FROM d), (SELECT bool_or(disabled) FROM r)";

static const char queue_sql[] =
    "SELECT count(*) FROM webhook_deliveries WHERE state IN ('pending', 'sending')";

static void pg_drop(hn_webhooks *wh) {
    if (wh->pg_ev) event_free(wh->pg_ev);
    wh->pg_ev = NULL;
    if (wh->pg) PQfinish(wh->pg);
    wh->pg = NULL;
}

/* Runs one statement; NULL (and the connection dropped when it broke) on failure. */
static PGresult *exec(hn_webhooks *wh, const char *what, const char *sql, int n,
                      const char *const *p) {
    if (wh->pg == NULL) return NULL;
    PGresult *r = PQexecParams(wh->pg, sql, n, NULL, p, NULL, NULL, 0);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) return r;
    const char *m = r ? PQresultErrorMessage(r) : PQerrorMessage(wh->pg);
    hn_warn("event=webhook_sql_error what=%s err='%.*s'", what, hn_pg_line(m), m);
    PQclear(r);
    if (PQstatus(wh->pg) != CONNECTION_OK) pg_drop(wh);
    return NULL;
}

static void claim(hn_webhooks *wh);

/* The LISTEN connection's socket is readable: take the notifications. */
static void on_pg(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    hn_webhooks *wh = arg;
    if (PQconsumeInput(wh->pg) == 0) {
        hn_warn("event=webhook_pg_lost err='%.*s'", hn_pg_line(PQerrorMessage(wh->pg)),
                PQerrorMessage(wh->pg));
        pg_drop(wh);
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(wh->pg)) != NULL) {
        PQfreemem(n);
        wh->wake = true;
    }
    if (wh->wake) claim(wh);
}

static void pg_connect(hn_webhooks *wh) {
    char err[256];
    hn_pg_opts o = {.appname = "herenow-webhooks", .connect_timeout_s = 5,
                    .statement_timeout_ms = 10000};
    wh->pg = hn_pg_connect(wh->cfg->database_url, &o, err, sizeof(err));
    if (wh->pg == NULL) {
        hn_warn("event=webhook_pg_connect_failed err='%s' retry_ms=%lld", err,
                (long long)wh->retry_ms);
        wh->next_connect = hn_mono_ms() + (uint64_t)wh->retry_ms;
        if (wh->retry_ms < 5000) wh->retry_ms *= 2;
        return;
    }
    PGresult *r = exec(wh, "listen", "LISTEN herenow_webhooks", 0, NULL);
    if (r == NULL) {
        pg_drop(wh);
        wh->next_connect = hn_mono_ms() + (uint64_t)wh->retry_ms;
        return;
    }
    PQclear(r);
    wh->retry_ms = 100;
    wh->pg_ev = event_new(wh->base, PQsocket(wh->pg), EV_READ | EV_PERSIST, on_pg, wh);
    event_add(wh->pg_ev, NULL);
    wh->wake = true;           /* rows may have waited while we were away */
}

/* ---- one POST ---------------------------------------------------------------------------------- */

static void finish_cb(evutil_socket_t fd, short what, void *arg);

/* The outcome is known: record it out of evhttp's callback (the connection
 * may not be freed inside it). */
static void settle(slot *s) {
    if (s->done) return;
    s->done = true;
    evtimer_del(s->timer);
    struct timeval zero = {0, 0};
    evtimer_add(s->fin, &zero);
}

static int on_header(struct evhttp_request *req, void *arg) {
    slot *s = arg;
    s->status = evhttp_request_get_response_code(req);
    return 0;
}

static void on_chunk(struct evhttp_request *req, void *arg) {
    slot *s = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    s->got += n;
    evbuffer_drain(in, n);
}

/* The TLS layer's reason, when it has one ("certificate verify failed"). */
static bool tls_error(slot *s) {
    unsigned long e = 0;
    struct bufferevent *bev = s->conn ? evhttp_connection_get_bufferevent(s->conn) : NULL;
    if (bev) e = bufferevent_get_openssl_error(bev);
    if (e == 0) e = ERR_get_error();
    if (e == 0) return false;
    const char *why = ERR_reason_error_string(e);
    snprintf(s->err, sizeof(s->err), "tls: %s", why ? why : "handshake failed");
    if (bev) while (bufferevent_get_openssl_error(bev)) {}
    ERR_clear_error();
    return true;
}

static void on_error(enum evhttp_request_error e, void *arg) {
    slot *s = arg;
    if (!s->err[0] && s->status == 0 && tls_error(s)) return;
    const char *m = e == EVREQ_HTTP_TIMEOUT         ? "timeout"
                    : e == EVREQ_HTTP_EOF           ? "connection closed"
                    : e == EVREQ_HTTP_INVALID_HEADER ? "invalid answer"
                    : e == EVREQ_HTTP_BUFFER_ERROR   ? "connection failed"
                    : e == EVREQ_HTTP_DATA_TOO_LONG  ? "answer body too long"
                                                     : "request failed";
    if (!s->err[0]) snprintf(s->err, sizeof(s->err), "%s", m);
}

static void on_done(struct evhttp_request *req, void *arg) {
    slot *s = arg;
    if (req && evhttp_request_get_response_code(req) > 0)
        s->status = evhttp_request_get_response_code(req);
    else if (!s->err[0] && !tls_error(s))
        snprintf(s->err, sizeof(s->err), "connection failed");
    settle(s);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    slot *s = arg;
    snprintf(s->err, sizeof(s->err), "timeout after %lld ms", (long long)s->wh->cfg->webhook_timeout_ms);
    s->status = 0;
    settle(s);
}

/* Writes the delivered ones (record) in one statement. On a failure they
 * stay 'sending' until their lease runs out and are sent again (delivery
 * is at least once: receivers dedupe by Herenow-Delivery). */
static void flush_delivered(hn_webhooks *wh) {
    if (wh->ndl == 0) return;
    hn_buf_append(&wh->dl_id, "}", 2);
    hn_buf_append(&wh->dl_st, "}", 2);
    hn_buf_append(&wh->dl_ms, "}", 2);
    const char *p[] = {wh->dl_id.p, wh->dl_st.p, wh->dl_ms.p};
    PGresult *r = wh->pg ? exec(wh, "delivered", delivered_sql, 3, p) : NULL;
    PQclear(r);
    wh->dl_id.len = wh->dl_st.len = wh->dl_ms.len = 0;
    wh->ndl = 0;
}

static void record(hn_webhooks *wh, slot *s) {
    int64_t ms = (int64_t)(hn_mono_ms() - s->t0);
    char id[24], st[16], msb[24], att[16];
    snprintf(id, sizeof(id), "%lld", (long long)s->id);
    snprintf(st, sizeof(st), "%d", s->status);
    snprintf(msb, sizeof(msb), "%lld", (long long)ms);
    snprintf(att, sizeof(att), "%d", s->attempt);
    int ev = ev_index(s->event);
    bool ok = s->status >= 200 && s->status < 300 && !(s->err[0] && s->status == 0);
    if (ok) {
        /* written with the others that finish in this turn of the loop
         * (flush_delivered): one statement, not one per delivery */
        hn_buf_append(&wh->dl_id, wh->ndl ? "," : "{", 1);
        hn_buf_append(&wh->dl_st, wh->ndl ? "," : "{", 1);
        hn_buf_append(&wh->dl_ms, wh->ndl ? "," : "{", 1);
        hn_buf_append(&wh->dl_id, id, strlen(id));
        hn_buf_append(&wh->dl_st, st, strlen(st));
        hn_buf_append(&wh->dl_ms, msb, strlen(msb));
        if (++wh->ndl >= DELIVERED_BATCH) flush_delivered(wh);
        atomic_fetch_add(&m_deliveries[ev][O_DELIVERED], 1);
        int64_t lat = (int64_t)hn_now_ms() - s->created_ms;
        if (lat < 0) lat = 0;
        size_t b = 0;
        while (b < NLAT && (double)lat / 1000.0 > lat_le[b]) b++;
        atomic_fetch_add(&m_lat[b], 1);
        atomic_fetch_add(&m_lat_sum_ms, (uint64_t)lat);
        hn_debug("event=webhook_delivered id=%lld status=%d ms=%lld", (long long)s->id, s->status,
                 (long long)ms);
        return;
    }
    char err[128], last[128], back[24], maxa[16], dis[16];
    if (s->status > 0) {
        snprintf(err, sizeof(err), "HTTP %d", s->status);
        snprintf(last, sizeof(last), "HTTP %d", s->status);
    } else {
        snprintf(err, sizeof(err), "%s", s->err[0] ? s->err : "no answer");
        snprintf(last, sizeof(last), "%s", err);
    }
    double rnd = (double)(hn_rng_next(&wh->rng) >> 11) / 9007199254740992.0;
    int64_t wait = hn_webhook_backoff_ms(wh->cfg->webhook_backoff_ms, s->attempt, rnd);
    snprintf(back, sizeof(back), "%lld", (long long)wait);
    /* wake for the retry (the 1 s poll would round the backoff up) */
    uint64_t due = hn_mono_ms() + (uint64_t)wait + 5;
    if (wh->retry_at == 0 || due < wh->retry_at) {
        wh->retry_at = due;
        struct timeval tv = {(wait + 5) / 1000, ((wait + 5) % 1000) * 1000};
        evtimer_add(wh->retry_ev, &tv);
    }
    snprintf(maxa, sizeof(maxa), "%lld", (long long)wh->cfg->webhook_attempts);
    snprintf(dis, sizeof(dis), "%lld", (long long)wh->cfg->webhook_disable_after);
    const char *p[] = {id, att, s->status > 0 ? st : NULL, err, msb, maxa, back, dis, last};
    PGresult *r = exec(wh, "failed", failed_sql, 9, p);
    if (r == NULL) return;
    bool failed = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) && strcmp(PQgetvalue(r, 0, 0), "failed") == 0;
    bool disabled = PQntuples(r) == 1 && PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    atomic_fetch_add(&m_deliveries[ev][failed ? O_FAILED : O_RETRIED], 1);
    hn_info("event=webhook_attempt_failed id=%lld attempt=%d err='%s' ms=%lld next=%s", (long long)s->id,
            s->attempt, err, (long long)ms, failed ? "failed" : back);
    if (disabled)
        hn_warn("event=webhook_rule_disabled rule=%lld last='%s'", (long long)s->rule_id, last);
}

static void slot_free(hn_webhooks *wh, slot *s) {
    if (s->dns_req) {        /* its callback runs with EVUTIL_EAI_CANCEL and leaves s alone */
        evdns_getaddrinfo_cancel(s->dns_req);
        s->dns_req = NULL;
    }
    free(s->url);
    free(s->body);
    free(s->secret);
    s->url = s->body = s->secret = NULL;
    if (s->timer) event_free(s->timer);
    if (s->fin) event_free(s->fin);
    if (s->conn) evhttp_connection_free(s->conn);
    s->timer = s->fin = NULL;
    s->conn = NULL;
    if (s->busy) {
        s->busy = false;
        wh->busy--;
        atomic_fetch_sub(&g_inflight, 1);
    }
}

/* The delivered written and free slots claimed, once, after everything
 * that finishes in this turn of the loop (after_cb). */
static void claim_soon(hn_webhooks *wh) {
    if (!evtimer_pending(wh->after, NULL)) {
        struct timeval zero = {0, 0};
        evtimer_add(wh->after, &zero);
    }
}

static void finish_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    slot *s = arg;
    hn_webhooks *wh = s->wh;
    if (wh->pg == NULL && hn_mono_ms() >= wh->next_connect) pg_connect(wh);
    if (wh->pg) record(wh, s);   /* else the lease runs out and another attempt comes */
    slot_free(wh, s);
    claim_soon(wh);
}

static void after_cb(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    hn_webhooks *wh = arg;
    flush_delivered(wh);
    claim(wh);
}

/* A failure before anything was sent (bad URL, no secret): recorded now. */
static void fail_now(hn_webhooks *wh, slot *s, const char *why) {
    snprintf(s->err, sizeof(s->err), "%s", why);
    s->status = 0;
    s->done = true;
    record(wh, s);
    slot_free(wh, s);
    claim_soon(wh);             /* (after a lookup's failure, the slot is free again) */
}

/* The POST of s's delivery to addr (a numeric address: the URL's host
 * resolved and checked), or to the URL's host when addr is NULL (the host
 * is an address). The Host header, TLS's SNI and the certificate's check
 * use the URL's host. */
static void post(hn_webhooks *wh, slot *s, const char *addr) {
    struct evhttp_uri *u = NULL;
    struct evhttp_request *req = NULL;
    const char *body = s->body, *secret = s->secret;
    u = evhttp_uri_parse(s->url);
    const char *scheme = u ? evhttp_uri_get_scheme(u) : NULL, *host = u ? evhttp_uri_get_host(u) : NULL;
    bool tls = scheme && strcmp(scheme, "https") == 0;
    if (!u || !scheme || !host || !*host || (!tls && strcmp(scheme, "http") != 0)) {
        fail_now(wh, s, "bad url");
        goto out;
    }
    char h[256];
    size_t hl = strlen(host);
    if (hl >= sizeof(h)) {
        fail_now(wh, s, "bad url");
        goto out;
    }
    if (host[0] == '[' && hl > 2) snprintf(h, sizeof(h), "%.*s", (int)(hl - 2), host + 1);
    else snprintf(h, sizeof(h), "%s", host);
    int port = evhttp_uri_get_port(u);
    if (port <= 0) port = tls ? 443 : 80;

    struct bufferevent *bev = NULL;
    if (tls) {
        SSL *ssl = SSL_new(wh->ssl);
        if (ssl == NULL) {
            fail_now(wh, s, "tls: SSL_new failed");
            goto out;
        }
        /* the name (or address) of the URL must be the certificate's */
        unsigned char ab[16];
        bool ip = inet_pton(AF_INET, h, ab) == 1 || inet_pton(AF_INET6, h, ab) == 1;
        if (ip) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), h);
        } else {
            SSL_set_tlsext_host_name(ssl, h);
            SSL_set1_host(ssl, h);
        }
        bev = bufferevent_openssl_socket_new(wh->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
        if (bev == NULL) {
            SSL_free(ssl);
            fail_now(wh, s, "tls: no bufferevent");
            goto out;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    }
    s->conn = evhttp_connection_base_bufferevent_new(wh->base, wh->dns, bev, addr ? addr : h, (unsigned short)port);
    if (s->conn == NULL) {
        if (bev) bufferevent_free(bev);
        fail_now(wh, s, "connection failed");
        goto out;
    }
    /* our own timer decides; evhttp's is a backstop */
    evhttp_connection_set_timeout(s->conn, (int)(wh->cfg->webhook_timeout_ms / 1000) + 2);
    evhttp_connection_set_retries(s->conn, 0);
    evhttp_connection_set_max_headers_size(s->conn, 16384);
    evhttp_connection_set_max_body_size(s->conn, BODY_CAP);
    req = evhttp_request_new(on_done, s);
    evhttp_request_set_header_cb(req, on_header);
    evhttp_request_set_chunked_cb(req, on_chunk);
    evhttp_request_set_error_cb(req, on_error);
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    char hosthdr[300], ts[24], idb[24], sig[65], sigh[80], clen[24];
    if ((tls && port != 443) || (!tls && port != 80)) snprintf(hosthdr, sizeof(hosthdr), "%s:%d", host, port);
    else snprintf(hosthdr, sizeof(hosthdr), "%s", host);
    snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
    snprintf(idb, sizeof(idb), "%lld", (long long)s->id);
    size_t blen = strlen(body);
    hn_webhook_sign(secret, ts, body, blen, sig);
    snprintf(sigh, sizeof(sigh), "v1=%s", sig);
    snprintf(clen, sizeof(clen), "%zu", blen);
    evhttp_add_header(oh, "Host", hosthdr);
    evhttp_add_header(oh, "Content-Type", "application/json");
    evhttp_add_header(oh, "Content-Length", clen);
    evhttp_add_header(oh, "User-Agent", "herenow-webhook/1");
    evhttp_add_header(oh, "Connection", "close");
    evhttp_add_header(oh, "Herenow-Delivery", idb);
    evhttp_add_header(oh, "Herenow-Event", s->event);
    evhttp_add_header(oh, "Herenow-Timestamp", ts);
    evhttp_add_header(oh, "Herenow-Signature", sigh);
    evbuffer_add(evhttp_request_get_output_buffer(req), body, blen);
    const char *path = evhttp_uri_get_path(u), *q = evhttp_uri_get_query(u);
    char *target = hn_xmalloc(strlen(path ? path : "") + (q ? strlen(q) : 0) + 3);
    sprintf(target, "%s%s%s", path && *path ? path : "/", q ? "?" : "", q ? q : "");
    int rc = evhttp_make_request(s->conn, req, EVHTTP_REQ_POST, target);
    free(target);
    if (rc != 0) {       /* evhttp freed the request */
        fail_now(wh, s, "request failed");
        goto out;
    }
out:
    if (u) evhttp_uri_free(u);
}

/* The URL's host has answered: its first IPv4 address (else its first
 * IPv6 one) is posted to, unless one of its addresses is this api — the
 * check of docs/RULES.md §2 on the resolved address, which the check at
 * creation (no DNS) cannot make. */
static void on_resolved(int err, struct evutil_addrinfo *res, void *arg) {
    if (err == EVUTIL_EAI_CANCEL) {     /* the slot was freed (a timeout): not ours any more */
        if (res) evutil_freeaddrinfo(res);
        return;
    }
    slot *s = arg;
    hn_webhooks *wh = s->wh;
    s->dns_req = NULL;
    char why[96], v4[INET6_ADDRSTRLEN] = "", v6[INET6_ADDRSTRLEN] = "";
    if (s->done) {                      /* timed out while resolving: its finish is due */
        if (res) evutil_freeaddrinfo(res);
        return;
    }
    if (err) {
        snprintf(why, sizeof(why), "dns: %s", evutil_gai_strerror(err));
        fail_now(wh, s, why);
        return;
    }
    char host[256];
    hn_rule_self me = hn_rule_self_of(wh->cfg->api_listen, wh->cfg->api_https_listen,
                                      wh->cfg->public_url, host, sizeof(host));
    for (struct evutil_addrinfo *ai = res; ai; ai = ai->ai_next) {
        char a[INET6_ADDRSTRLEN], probe[INET6_ADDRSTRLEN + 24], e[160];
        bool six = ai->ai_family == AF_INET6;
        const void *ap = six ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                             : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        if ((!six && ai->ai_family != AF_INET) || inet_ntop(ai->ai_family, ap, a, sizeof(a)) == NULL) continue;
        snprintf(probe, sizeof(probe), six ? "http://[%s]:%d/" : "http://%s:%d/", a, s->port);
        if (hn_rule_url_check(probe, strlen(probe), &me, e, sizeof(e)) != HN_OK) {
            snprintf(why, sizeof(why), "webhook url: its host resolves to this api (%s)", a);
            evutil_freeaddrinfo(res);
            fail_now(wh, s, why);
            return;
        }
        if (!six && !v4[0]) snprintf(v4, sizeof(v4), "%s", a);
        if (six && !v6[0]) snprintf(v6, sizeof(v6), "%s", a);
    }
    if (res) evutil_freeaddrinfo(res);
    if (!v4[0] && !v6[0]) {
        fail_now(wh, s, "dns: no address");
        return;
    }
    post(wh, s, v4[0] ? v4 : v6);
}

/* Starts the delivery in s: its timeout from now, then the POST, after
 * resolving the URL's host when it is a name. */
static void start(hn_webhooks *wh, slot *s, const char *url, const char *body, const char *secret) {
    s->t0 = hn_mono_ms();
    s->timer = evtimer_new(wh->base, on_timeout, s);
    s->fin = evtimer_new(wh->base, finish_cb, s);
    struct timeval tv = {wh->cfg->webhook_timeout_ms / 1000, (wh->cfg->webhook_timeout_ms % 1000) * 1000};
    evtimer_add(s->timer, &tv);
    if (secret == NULL) {
        fail_now(wh, s, "no secret (the rule or the widget's webhook was removed)");
        return;
    }
    /* what is sealed at rest (messages: common/datakey.h) is sent opened */
    if (hn_dk_enabled() && strstr(body, "\"" HN_DK_PREFIX) != NULL) {
        hn_buf t = {0};
        int rc = hn_dk_open_json(&t, body, strlen(body));
        hn_buf_append(&t, "", 1);
        if (rc != HN_OK) {
            hn_buf_free(&t);
            fail_now(wh, s, "a sealed value of the body does not open (its key is not in HERENOW_DATA_KEY_FILE?)");
            return;
        }
        s->body = t.p;
    } else {
        s->body = hn_xstrdup(body);
    }
    s->url = hn_xstrdup(url);
    s->secret = hn_xstrdup(secret);
    struct evhttp_uri *u = evhttp_uri_parse(url);
    const char *host = u ? evhttp_uri_get_host(u) : NULL, *scheme = u ? evhttp_uri_get_scheme(u) : NULL;
    unsigned char ab[16];
    char h[256];
    if (host == NULL || scheme == NULL || strlen(host) >= sizeof(h) || host[0] == '[' ||
        inet_pton(AF_INET, host, ab) == 1) {
        if (u) evhttp_uri_free(u);
        post(wh, s, NULL);             /* an address (or a URL post() refuses) */
        return;
    }
    snprintf(h, sizeof(h), "%s", host);
    s->port = evhttp_uri_get_port(u);
    if (s->port <= 0) s->port = strcmp(scheme, "https") == 0 ? 443 : 80;
    evhttp_uri_free(u);
    struct evutil_addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    /* may answer at once (the callback has run when it returns NULL) */
    struct evdns_getaddrinfo_request *rq = evdns_getaddrinfo(wh->dns, h, NULL, &hints, on_resolved, s);
    if (rq) s->dns_req = rq;
}

/* Takes as many due rows as there are free slots and starts them. */
static void claim(hn_webhooks *wh) {
    wh->wake = false;
    if (wh->pg == NULL || atomic_load(&wh->stop)) return;
    int free_slots = wh->nslots - wh->busy;
    if (free_slots <= 0) {
        wh->wake = true;       /* a slot's finish claims again */
        return;
    }
    char lim[16], lease[24];
    snprintf(lim, sizeof(lim), "%d", free_slots);
    snprintf(lease, sizeof(lease), "%lld", (long long)(wh->cfg->webhook_timeout_ms + LEASE_MARGIN));
    const char *p[] = {lim, lease};
    PGresult *r = exec(wh, "claim", claim_sql, 2, p);
    if (r == NULL) return;
    int n = PQntuples(r);
    for (int i = 0, k = 0; i < n; i++) {
        while (k < wh->nslots && wh->slots[k].busy) k++;
        if (k == wh->nslots) break;      /* cannot happen: LIMIT free slots */
        slot *s = &wh->slots[k];
        memset(s, 0, sizeof(*s));
        s->wh = wh;
        s->busy = true;
        wh->busy++;
        atomic_fetch_add(&g_inflight, 1);
        hn_parse_i64(PQgetvalue(r, i, 0), &s->id);
        snprintf(s->event, sizeof(s->event), "%s", PQgetvalue(r, i, 1));
        int64_t a = 0;
        hn_parse_i64(PQgetvalue(r, i, 4), &a);
        s->attempt = (int)a;
        hn_parse_i64(PQgetvalue(r, i, 5), &s->rule_id);
        hn_parse_i64(PQgetvalue(r, i, 6), &s->created_ms);
        start(wh, s, PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
              PQgetisnull(r, i, 7) ? NULL : PQgetvalue(r, i, 7));
    }
    PQclear(r);
    /* a full page may mean more are due */
    if (n == free_slots) wh->wake = true;
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    hn_webhooks *wh = arg;
    if (atomic_load(&wh->stop)) {
        event_base_loopbreak(wh->base);
        return;
    }
    flush_delivered(wh);
    /* notifications that came with a query's answer left the socket quiet */
    for (PGnotify *n; wh->pg && (n = PQnotifies(wh->pg)) != NULL; PQfreemem(n)) wh->wake = true;
    uint64_t now = hn_mono_ms();
    if (wh->pg == NULL && now >= wh->next_connect) pg_connect(wh);
    if (wh->retry_at && now >= wh->retry_at) {     /* (the timer was late) */
        wh->retry_at = 0;
        wh->wake = true;
    }
    if (wh->pg && now >= wh->next_poll) {
        wh->next_poll = now + POLL_MS;
        PGresult *r = exec(wh, "queue", queue_sql, 0, NULL);
        if (r) {
            int64_t q = 0;
            hn_parse_i64(PQgetvalue(r, 0, 0), &q);
            atomic_store(&g_queue, q);
            PQclear(r);
        }
        wh->wake = true;
    }
    if (wh->wake && wh->pg) claim(wh);
}

static void on_retry(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    hn_webhooks *wh = arg;
    wh->retry_at = 0;
    if (wh->pg) claim(wh);
}

static void *run(void *arg) {
    hn_webhooks *wh = arg;
    pthread_setname_np(pthread_self(), "hn-webhooks");
    wh->retry_ms = 100;
    pg_connect(wh);
    struct timeval tv = {0, TICK_MS * 1000};
    event_add(wh->tick, &tv);
    event_base_dispatch(wh->base);
    for (int i = 0; i < wh->nslots; i++) {    /* in flight: dropped, the lease brings them back */
        wh->slots[i].done = true;
        slot_free(wh, &wh->slots[i]);
    }
    event_base_loop(wh->base, EVLOOP_NONBLOCK);   /* the cancelled lookups' callbacks free them */
    flush_delivered(wh);
    pg_drop(wh);
    return NULL;
}

hn_webhooks *hn_webhooks_start(const hn_config *cfg) {
    if (strcmp(cfg->webhooks, "on") != 0) return NULL;
    hn_webhooks *wh = hn_xcalloc(1, sizeof(*wh));
    wh->cfg = cfg;
    wh->nslots = (int)cfg->webhook_senders;
    wh->slots = hn_xcalloc((size_t)wh->nslots, sizeof(*wh->slots));
    hn_rng_seed(&wh->rng);
    wh->base = event_base_new();
    wh->ssl = SSL_CTX_new(TLS_client_method());
    if (wh->base == NULL || wh->ssl == NULL) goto fail;
    wh->dns = evdns_base_new(wh->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
    if (wh->dns == NULL) wh->dns = evdns_base_new(wh->base, 0);
    SSL_CTX_set_default_verify_paths(wh->ssl);
    if (cfg->webhook_ca_file[0] && SSL_CTX_load_verify_locations(wh->ssl, cfg->webhook_ca_file, NULL) != 1) {
        hn_error("event=webhooks_bad_ca_file path='%s'", cfg->webhook_ca_file);
        goto fail;
    }
    SSL_CTX_set_verify(wh->ssl, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_min_proto_version(wh->ssl, TLS1_2_VERSION);
    wh->tick = event_new(wh->base, -1, EV_PERSIST, on_tick, wh);
    wh->retry_ev = evtimer_new(wh->base, on_retry, wh);
    wh->after = evtimer_new(wh->base, after_cb, wh);
    if (pthread_create(&wh->thread, NULL, run, wh) != 0) goto fail;
    hn_info("event=webhooks_started senders=%d timeout_ms=%lld attempts=%lld", wh->nslots,
            (long long)cfg->webhook_timeout_ms, (long long)cfg->webhook_attempts);
    return wh;
fail:
    hn_error("event=webhooks_start_failed");
    if (wh->tick) event_free(wh->tick);
    if (wh->retry_ev) event_free(wh->retry_ev);
    if (wh->after) event_free(wh->after);
    if (wh->dns) evdns_base_free(wh->dns, 0);
    if (wh->ssl) SSL_CTX_free(wh->ssl);
    if (wh->base) event_base_free(wh->base);
    free(wh->slots);
    free(wh);
    return NULL;
}

void hn_webhooks_stop(hn_webhooks *wh) {
    if (wh == NULL) return;
    atomic_store(&wh->stop, true);
    pthread_join(wh->thread, NULL);
    event_free(wh->tick);
    event_free(wh->retry_ev);
    event_free(wh->after);
    hn_buf_free(&wh->dl_id);
    hn_buf_free(&wh->dl_st);
    hn_buf_free(&wh->dl_ms);
    evdns_base_free(wh->dns, 0);
    event_base_free(wh->base);
    SSL_CTX_free(wh->ssl);
    free(wh->slots);
    free(wh);
}
