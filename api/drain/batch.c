/*
 * batch.c: the batch built in C (batch.h): entries decoded into records,
 * the records' rows, and their aggregates per session, per hour and per
 * day. Pure: memory in, COPY text out.
 */
#include "api/drain/batch.h"

#include "api/drain/copy.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>

/* Receive times a collector can have made: anything else would ask for
 * partitions decades away. */
#define TS_PAST_US   (400ull * 86400000000ull)
#define TS_FUTURE_US (86400000000ull)
#define ENGAGED_MAX_MS 86400000u   /* engaged time one beacon may report: a day */
#define SCREEN_MAX     100000u

/* One session's share of the batch: what sql.c's sessions adds to its row.
 * "First"/"latest" are by (recv_ts, q). */
typedef struct hn_drain_sess_agg {
    uint32_t widget_id;
    hn_str   sid;
    uint32_t pages, events, msgs, chat;
    uint64_t engaged, started, last_active, ended;          /* µs; ended 0: none */
    uint64_t fpv_ts, fpv_q;                                  /* first page view */
    hn_str   landing, referrer;
    uint64_t lpv_ts, lpv_q;                                  /* latest page view */
    hn_str   cur_url, cur_title, lang;
    uint32_t sw, sh;
    bool     has_sw, has_sh;
    uint64_t lr_ts, lr_q;                                    /* latest record */
    hn_str   visitor_id, vh, ip, country, region, city, ua, browser, bv, os, ov, device;
    uint64_t id_ts, id_q;                                    /* latest identify */
    hn_str   nm, em, ph;
} hn_drain_sess_agg;

typedef struct hn_drain_hour_agg {
    uint64_t page_views, events;
} hn_drain_hour_agg;

void hn_drain_batch_init(hn_drain_batch *bt) {
    memset(bt, 0, sizeof(*bt));
    bt->dec = hn_decoder_create();
    hn_buf *bufs[] = {&bt->pv, &bt->ev, &bt->agg, &bt->hourly, &bt->dims, &bt->ids, &bt->json,
                      &bt->chat};
    for (size_t i = 0; i < HN_ARRAY_LEN(bufs); i++) hn_buf_init(bufs[i], 4096);
}

static void rejects_clear(hn_drain_batch *bt) {
    for (size_t i = 0; i < bt->nrejects; i++) free(bt->rejects[i].raw);
    bt->nrejects = 0;
}

void hn_drain_batch_free(hn_drain_batch *bt) {
    hn_decoder_destroy(bt->dec);
    hn_buf *bufs[] = {&bt->pv, &bt->ev, &bt->agg, &bt->hourly, &bt->dims, &bt->ids, &bt->json,
                      &bt->chat};
    for (size_t i = 0; i < HN_ARRAY_LEN(bufs); i++) hn_buf_free(bufs[i]);
    hn_seen_free(&bt->seen);
    hn_seen_free(&bt->existing);
    hn_kmap_free(&bt->sess_map);
    hn_kmap_free(&bt->hour_map);
    hn_kmap_free(&bt->dim_map);
    free(bt->gone);
    free(bt->sess);
    free(bt->hours);
    free(bt->dim_n);
    free(bt->scratch);
    free(bt->entries);
    rejects_clear(bt);
    free(bt->rejects);
}

hn_drain_entry *hn_drain_batch_add(hn_drain_batch *bt) {
    if (bt->nentries == bt->cap_entries) {
        bt->cap_entries = bt->cap_entries ? bt->cap_entries * 2 : 256;
        bt->entries = hn_xreallocarray(bt->entries, bt->cap_entries, sizeof(*bt->entries));
    }
    hn_drain_entry *de = &bt->entries[bt->nentries++];
    memset(de, 0, sizeof(*de));
    return de;
}

void hn_drain_batch_reset(hn_drain_batch *bt) {
    bt->nentries = 0;
    bt->bytes = 0;
    bt->nrecords = bt->nrepeats = bt->nerased = 0;
    bt->min_ts = bt->max_ts = 0;
    rejects_clear(bt);
}

/* The page's path as breakdowns count it: the URL without query string and
 * fragment. */
static hn_str url_path(hn_str u) {
    for (uint32_t i = 0; i < u.len; i++)
        if (u.p[i] == '?' || u.p[i] == '#') return (hn_str){u.p, i};
    return u;
}

/* ---- decoding an entry --------------------------------------------------------- */

typedef struct scratch_ctx {
    hn_drain_batch *bt;
    uint64_t        now;
    char            err[96];
} scratch_ctx;

static int to_scratch(const hn_record *r, void *arg) {
    scratch_ctx *c = arg;
    hn_drain_batch *bt = c->bt;
    if (r->recv_ts + TS_PAST_US < c->now || r->recv_ts > c->now + TS_FUTURE_US) {
        snprintf(c->err, sizeof(c->err), "recv_ts %llu out of range",
                 (unsigned long long)r->recv_ts);
        return HN_ERR;
    }
    if (r->widget_id > INT32_MAX) {
        snprintf(c->err, sizeof(c->err), "widget id %u out of range", r->widget_id);
        return HN_ERR;
    }
    if (bt->nscratch == bt->cap_scratch) {
        bt->cap_scratch = bt->cap_scratch ? bt->cap_scratch * 2 : 1024;
        bt->scratch = hn_xreallocarray(bt->scratch, bt->cap_scratch, sizeof(*bt->scratch));
    }
    /* the record's strings point into the entry (a Redis reply of the
     * batch), not into the decoder: the copy stays valid */
    hn_record *k = &bt->scratch[bt->nscratch++];
    *k = *r;
    /* what the columns hold (bigint, integer): a sequence number past
     * 2^63, a day of engaged time in one beacon or a screen wider than
     * any would otherwise fail the batch's COPY every time it is tried */
    if (k->b.q > INT64_MAX) k->b.q = INT64_MAX;
    if ((k->b.fields & HN_F_E) && k->b.e > ENGAGED_MAX_MS) k->b.e = ENGAGED_MAX_MS;
    if ((k->b.fields & HN_F_SW) && k->b.sw > SCREEN_MAX) k->b.fields &= ~HN_F_SW;
    if ((k->b.fields & HN_F_SH) && k->b.sh > SCREEN_MAX) k->b.fields &= ~HN_F_SH;
    return HN_OK;
}

void hn_drain_batch_reject(hn_drain_batch *bt, hn_drain_entry *e, const char *why) {
    hn_warn("event=drain_reject shard=%d entry=%s reason='%s'", e->shard, e->id, why);
    e->bad = true;
    if (bt->nrejects == bt->cap_rejects) {
        bt->cap_rejects = bt->cap_rejects ? bt->cap_rejects * 2 : 16;
        bt->rejects = hn_xreallocarray(bt->rejects, bt->cap_rejects, sizeof(*bt->rejects));
    }
    hn_drain_reject *r = &bt->rejects[bt->nrejects++];
    r->shard = e->shard;
    snprintf(r->id, sizeof(r->id), "%s", e->id);
    snprintf(r->why, sizeof(r->why), "%s", why);
    r->rawlen = e->data ? e->len : 0;
    r->raw = e->data ? hn_xmalloc(e->len + 1) : NULL;
    if (e->data) memcpy(r->raw, e->data, e->len);
}

/* Decodes one entry into bt->scratch, all or nothing: an entry that does not
 * decode whole is rejected. false when the entry has nothing to write. */
static bool decode_entry(hn_drain_batch *bt, hn_drain_entry *e) {
    bt->nscratch = 0;
    if (e->bad || e->data == NULL) return false;
    scratch_ctx c = {.bt = bt, .now = bt->now_us ? bt->now_us : hn_now_us()};
    char err[256];
    if (hn_record_decode_batch(bt->dec, e->data, e->len, to_scratch, &c, err, sizeof(err)) !=
        HN_OK) {
        bt->nscratch = 0;
        hn_drain_batch_reject(bt, e, c.err[0] ? c.err : err);
        return false;
    }
    for (size_t i = 0; i < bt->nscratch; i++) {
        uint64_t ts = bt->scratch[i].recv_ts;
        if (bt->min_ts == 0 || ts < bt->min_ts) bt->min_ts = ts;
        if (ts > bt->max_ts) bt->max_ts = ts;
    }
    return true;
}

/* ---- building the batch: rows and aggregates ---------------------------------------- */

/* The record's visitor id, as its rows and its session row take it: the
 * site's persistent id, else the visitor hash, else the session itself. */
static hn_str visitor_id_of(const hn_record *r) {
    return r->b.vid.len ? r->b.vid : r->visitor.len ? r->visitor : r->b.s;
}

static bool later(uint64_t ts, uint64_t q, uint64_t ts0, uint64_t q0) {
    return ts > ts0 || (ts == ts0 && q > q0);
}

static void aggregate(hn_drain_batch *bt, const hn_record *r) {
    bool fresh;
    size_t i = hn_kmap_get(&bt->sess_map, r->widget_id, r->b.s, &fresh);
    if (i >= bt->cap_sess) {
        bt->cap_sess = bt->cap_sess ? bt->cap_sess * 2 : 1024;
        bt->sess = hn_xreallocarray(bt->sess, bt->cap_sess, sizeof(*bt->sess));
    }
    hn_drain_sess_agg *a = &bt->sess[i];
    uint64_t ts = r->recv_ts, q = r->b.q;
    if (fresh) {
        memset(a, 0, sizeof(*a));
        a->widget_id = r->widget_id;
        a->sid = r->b.s;
        a->started = a->last_active = ts;
    }
    if (ts < a->started) a->started = ts;
    if (ts > a->last_active) a->last_active = ts;
    if (r->b.fields & HN_F_E) a->engaged += r->b.e;
    if (fresh || later(ts, q, a->lr_ts, a->lr_q)) {
        a->lr_ts = ts;
        a->lr_q = q;
        a->visitor_id = visitor_id_of(r);
        a->vh = r->visitor;
        a->ip = r->ip;
        a->country = r->country;
        a->region = r->region;
        a->city = r->city;
        a->ua = r->ua;
        a->browser = r->browser;
        a->bv = r->browser_version;
        a->os = r->os;
        a->ov = r->os_version;
        a->device = r->device;
    }
    switch (r->b.type) {
    case HN_T_PV:
        a->pages++;
        if (a->fpv_ts == 0 || later(a->fpv_ts, a->fpv_q, ts, q)) {
            a->fpv_ts = ts;
            a->fpv_q = q;
            a->landing = r->b.u;
            a->referrer = r->b.r;
        }
        if (a->lpv_ts == 0 || later(ts, q, a->lpv_ts, a->lpv_q)) {
            a->lpv_ts = ts;
            a->lpv_q = q;
            a->cur_url = r->b.u;
            a->cur_title = r->b.ti;
            a->lang = r->b.l;
            a->has_sw = (r->b.fields & HN_F_SW) != 0;
            a->has_sh = (r->b.fields & HN_F_SH) != 0;
            a->sw = r->b.sw;
            a->sh = r->b.sh;
        }
        break;
    case HN_T_EV:
        a->events++;
        if (hn_str_eq(r->b.n, "chat_message_sent", 17)) {
            a->msgs++;
            a->chat++;
        } else if (hn_str_eq(r->b.n, "chat_opened", 11) ||
                   hn_str_eq(r->b.n, "invite_accepted", 15)) {
            a->chat++;
        }
        break;
    case HN_T_MSG:                         /* a visitor's chat message */
        a->msgs++;
        a->chat++;
        break;
    case HN_T_END:
        if (ts > a->ended) a->ended = ts;
        break;
    case HN_T_ID:
        if (a->id_ts == 0 || later(ts, q, a->id_ts, a->id_q)) {
            a->id_ts = ts;
            a->id_q = q;
            a->nm = r->b.nm;
            a->em = r->b.em;
            a->ph = r->b.ph;
        }
        break;
    default:
        break;
    }

    /* page views and events per hour */
    uint64_t hour = ts / 3600000000ull;
    size_t h = hn_kmap_get(&bt->hour_map, ((uint64_t)r->widget_id << 32) | hour,
                           (hn_str){NULL, 0}, &fresh);
    if (h >= bt->cap_hours) {
        bt->cap_hours = bt->cap_hours ? bt->cap_hours * 2 : 64;
        bt->hours = hn_xreallocarray(bt->hours, bt->cap_hours, sizeof(*bt->hours));
    }
    if (fresh) bt->hours[h] = (hn_drain_hour_agg){0, 0};
    if (r->b.type == HN_T_PV) bt->hours[h].page_views++;
    else if (r->b.type == HN_T_EV) bt->hours[h].events++;

    /* page and event breakdowns per day: k = widget | day | dim (0 page, 1 event) */
    hn_str value = {NULL, 0};
    uint64_t dim = 0;
    if (r->b.type == HN_T_PV) {
        value = url_path(r->b.u);
    } else if (r->b.type == HN_T_EV && r->b.n.len) {
        value = r->b.n;
        dim = 1;
    } else {
        return;
    }
    uint64_t day = ts / 86400000000ull;
    size_t k = hn_kmap_get(&bt->dim_map, ((uint64_t)r->widget_id << 32) | (day << 1) | dim,
                           value, &fresh);
    if (k >= bt->cap_dims) {
        bt->cap_dims = bt->cap_dims ? bt->cap_dims * 2 : 256;
        bt->dim_n = hn_xreallocarray(bt->dim_n, bt->cap_dims, sizeof(*bt->dim_n));
    }
    if (fresh) bt->dim_n[k] = 0;
    bt->dim_n[k]++;
}

/* The record's row in widget_page_views or widget_visitor_events. */
static void format_row(hn_drain_batch *bt, const hn_record *r) {
    hn_buf *b = r->b.type == HN_T_PV ? &bt->pv : &bt->ev;
    char id[37];
    hn_event_id_format(r->event_id, id);
    hn_buf_append(b, id, 36);
    hn_copy_ts(b, r->recv_ts);
    hn_copy_u64(b, r->widget_id);
    hn_copy_sep(b);
    hn_copy_bytes(b, r->b.s.p, r->b.s.len);
    hn_copy_str(b, visitor_id_of(r));
    hn_copy_u64(b, r->b.q);
    if (r->b.type == HN_T_PV) {
        hn_copy_sep(b);
        hn_copy_bytes(b, r->b.u.p, r->b.u.len);
        hn_str path = url_path(r->b.u);
        hn_copy_sep(b);
        hn_copy_bytes(b, path.p, path.len);
        hn_copy_str(b, r->b.ti);
        hn_copy_str(b, r->b.r);
    } else {
        hn_copy_sep(b);
        hn_copy_bytes(b, r->b.t.p, r->b.t.len);
        hn_copy_str(b, r->b.n);
        hn_copy_str(b, r->b.u);
        hn_copy_data(b, r, &bt->json);
    }
    hn_copy_u64(b, (r->b.fields & HN_F_E) ? r->b.e : 0);
    hn_copy_u64(b, r->transport);
    hn_buf_append(b, "\n", 1);
}

/* The chat events whose record goes to hn_chat (sql.c's chat statements). */
static bool chat_record(const hn_record *r) {
    static const char *const evs[] = {"invite_shown", "invite_accepted", "invite_declined",
                                      "chat_closed"};
    if (r->b.type == HN_T_MSG) return r->b.x.len > 0;
    if (r->b.type != HN_T_EV || r->b.ci.len == 0) return false;
    for (size_t i = 0; i < HN_ARRAY_LEN(evs); i++)
        if (hn_str_eq(r->b.n, evs[i], strlen(evs[i]))) return true;
    return false;
}

/* The record's row in hn_chat: event_id, recv_at, widget, session, visitor
 * id, visitor hash, kind (msg or the event's name), conversation, text. A
 * conversation id that is not a UUID (a foreign writer) is no conversation. */
static void format_chat(hn_drain_batch *bt, const hn_record *r) {
    hn_buf *b = &bt->chat;
    char id[37];
    hn_event_id_format(r->event_id, id);
    hn_buf_append(b, id, 36);
    hn_copy_ts(b, r->recv_ts);
    hn_copy_u64(b, r->widget_id);
    hn_copy_str(b, r->b.s);
    hn_copy_str(b, visitor_id_of(r));
    hn_copy_str(b, r->visitor);
    hn_copy_str(b, r->b.type == HN_T_MSG ? HN_STR_LIT("msg") : r->b.n);
    hn_copy_str(b, hn_uuid_text_ok(r->b.ci) ? r->b.ci : (hn_str){NULL, 0});
    hn_copy_sealed(b, r->b.type == HN_T_MSG ? r->b.x : (hn_str){NULL, 0});
    hn_buf_append(b, "\n", 1);
}

static void format_aggregates(hn_drain_batch *bt) {
    for (size_t i = 0; i < bt->sess_map.n; i++) {
        const hn_drain_sess_agg *a = &bt->sess[i];
        hn_buf *b = &bt->agg;
        hn_copy_u64_raw(b, a->widget_id);
        hn_copy_str(b, a->sid);
        hn_copy_str(b, a->visitor_id);
        hn_copy_str(b, a->vh);
        hn_copy_sealed(b, a->nm);
        hn_copy_sealed(b, a->em);
        hn_copy_email_key(b, a->em);
        hn_copy_sealed(b, a->ph);
        hn_copy_str(b, a->ip);
        hn_copy_str(b, a->country);
        hn_copy_str(b, a->region);
        hn_copy_str(b, a->city);
        hn_copy_str(b, a->ua);
        hn_copy_str(b, a->browser);
        hn_copy_str(b, a->bv);
        hn_copy_str(b, a->os);
        hn_copy_str(b, a->ov);
        hn_copy_str(b, a->device);
        hn_copy_str(b, a->lang);
        if (a->has_sw) hn_copy_u64(b, a->sw);
        else { hn_copy_sep(b); hn_copy_null(b); }
        if (a->has_sh) hn_copy_u64(b, a->sh);
        else { hn_copy_sep(b); hn_copy_null(b); }
        hn_copy_str(b, a->landing);
        hn_copy_str(b, a->referrer);
        hn_copy_str(b, a->cur_url);
        hn_copy_str(b, a->cur_title);
        hn_copy_ts(b, a->fpv_ts);
        hn_copy_ts(b, a->lpv_ts);
        hn_copy_u64(b, a->pages);
        hn_copy_u64(b, a->events);
        hn_copy_u64(b, a->engaged);
        hn_copy_u64(b, a->msgs);
        hn_copy_u64(b, a->chat);
        hn_copy_ts(b, a->started);
        hn_copy_ts(b, a->last_active);
        hn_copy_ts(b, a->ended);
        hn_buf_append(b, "\n", 1);
    }
    for (size_t i = 0; i < bt->hour_map.n; i++) {
        uint64_t k = bt->hour_map.items[i].k;
        hn_copy_u64_raw(&bt->hourly, k >> 32);
        hn_copy_ts(&bt->hourly, (k & 0xffffffffull) * 3600000000ull);
        hn_copy_u64(&bt->hourly, bt->hours[i].page_views);
        hn_copy_u64(&bt->hourly, bt->hours[i].events);
        hn_buf_append(&bt->hourly, "\n", 1);
    }
    for (size_t i = 0; i < bt->dim_map.n; i++) {
        uint64_t k = bt->dim_map.items[i].k;
        hn_copy_u64_raw(&bt->dims, k >> 32);
        hn_copy_sep(&bt->dims);
        hn_buf_append(&bt->dims, (k & 1) ? "event" : "page", (k & 1) ? 5 : 4);
        hn_copy_day(&bt->dims, (k & 0xffffffffull) >> 1);
        hn_copy_sep(&bt->dims);
        hn_copy_bytes(&bt->dims, bt->dim_map.items[i].s.p, bt->dim_map.items[i].s.len);
        hn_copy_u64(&bt->dims, bt->dim_n[i]);
        hn_buf_append(&bt->dims, "\n", 1);
    }
}

/* Builds every COPY text of the batch from its entries, leaving out records
 * that are twice in the batch (a collector resent them after a reconnect)
 * and, for a redelivered batch, those in bt->existing. */
void hn_drain_batch_build(hn_drain_batch *bt) {
    hn_drain_batch_build_begin(bt);
    for (size_t i = bt->lo; i < bt->hi; i++) hn_drain_batch_build_entry(bt, i);
    hn_drain_batch_build_end(bt);
}

void hn_drain_batch_build_begin(hn_drain_batch *bt) {
    hn_buf_reset(&bt->pv);
    hn_buf_reset(&bt->ev);
    hn_buf_reset(&bt->agg);
    hn_buf_reset(&bt->hourly);
    hn_buf_reset(&bt->dims);
    hn_buf_reset(&bt->chat);
    hn_seen_clear(&bt->seen);
    hn_kmap_clear(&bt->sess_map);
    hn_kmap_clear(&bt->hour_map);
    hn_kmap_clear(&bt->dim_map);
    bt->nrecords = bt->nrepeats = bt->nerased = 0;
    bt->ngone = 0;
    bt->min_ts = bt->max_ts = 0;
}

/* Notes the session of a record an erasure left out (once per session). */
static void note_gone(hn_drain_batch *bt, const hn_record *r) {
    hn_str sid = r->b.s;
    if (sid.len == 0 || sid.len > HN_DRAIN_SID_MAX) return;
    uint64_t ms = r->recv_ts / 1000;
    for (size_t i = bt->ngone; i-- > 0;) {
        hn_drain_gone *g = &bt->gone[i];
        if (g->widget_id == r->widget_id && g->len == sid.len && memcmp(g->sid, sid.p, sid.len) == 0) {
            if (ms > g->last_ms) g->last_ms = ms;
            return;
        }
    }
    if (bt->ngone >= HN_DRAIN_GONE_MAX) return;      /* the rest expire with the live window */
    if (bt->ngone == bt->cap_gone) {
        bt->cap_gone = bt->cap_gone ? bt->cap_gone * 2 : 16;
        bt->gone = hn_xreallocarray(bt->gone, bt->cap_gone, sizeof(*bt->gone));
    }
    hn_drain_gone *g = &bt->gone[bt->ngone++];
    g->widget_id = r->widget_id;
    g->len = (uint8_t)sid.len;
    memcpy(g->sid, sid.p, sid.len);
    g->sid[sid.len] = 0;
    g->last_ms = ms;
}

void hn_drain_batch_build_entry(hn_drain_batch *bt, size_t i) {
    if (!decode_entry(bt, &bt->entries[i])) return;
    for (size_t j = 0; j < bt->nscratch; j++) {
        const hn_record *r = &bt->scratch[j];
        if (!hn_seen_add(&bt->seen, r->event_id) ||
            (bt->redelivered && hn_seen_has(&bt->existing, r->event_id))) {
            bt->nrepeats++;
            continue;
        }
        if (bt->erased && hn_erased_match(bt->erased, r->widget_id, r->b.s, visitor_id_of(r), r->recv_ts)) {
            bt->nerased++;
            note_gone(bt, r);
            continue;
        }
        format_row(bt, r);
        if (chat_record(r)) format_chat(bt, r);
        aggregate(bt, r);
        bt->nrecords++;
    }
}

void hn_drain_batch_build_end(hn_drain_batch *bt) {
    format_aggregates(bt);
    bt->nsessions = bt->sess_map.n;
}

/* The (event_id, recv_at) of every record, for sql.c's existing. */
void hn_drain_batch_ids(hn_drain_batch *bt) {
    hn_buf_reset(&bt->ids);
    for (size_t i = bt->lo; i < bt->hi; i++) {
        if (!decode_entry(bt, &bt->entries[i])) continue;
        for (size_t j = 0; j < bt->nscratch; j++) {
            char id[37];
            hn_event_id_format(bt->scratch[j].event_id, id);
            hn_buf_append(&bt->ids, id, 36);
            hn_copy_ts(&bt->ids, bt->scratch[j].recv_ts);
            hn_buf_append(&bt->ids, "\n", 1);
        }
    }
}

