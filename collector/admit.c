/*
 * admit.c: from a decoded batch to queued records, the same for every
 * transport: validate → resolve the widget → bot and opt-out checks →
 * enrich → record (stream buffer + presence commands).
 */
#include "collector/worker.h"
#include "common/log.h"

#include <stddef.h>
#include <string.h>

/* A UDP relay speaking for a browser sends the browser's ip and ua in the
 * beacon; an unparsable ip means "no ip", not the relay's. */
static void relay_client(hn_enricher *e, const hn_beacon *b, const hn_client *cl) {
    hn_ip rip;
    bool have = b->ip.len && hn_ip_parse(b->ip.p, b->ip.len, &rip);
    if (b->ip.len == 0) {
        have = cl->have_ip;
        rip = cl->ip;
    }
    hn_enrich_client(e, have ? &rip : NULL, b->ua);
}

/* A visitor's chat messages (t=msg) take a token from their session's
 * bucket: one flooding tab is cut off without touching its neighbours
 * behind the same address. The bucket's key is (widget key, session id)
 * hashed into the rate limiter's IPv6 space (two FNV-1a, 128 bits). Per
 * worker thread, like the per-address limit: a session whose requests
 * spread over N threads gets at most N times the rate. */
static bool msg_allowed(hn_worker *w, const hn_beacon *b) {
    uint64_t h[2] = {14695981039346656037ull, 1099511628211ull * 31};
    const hn_str part[3] = {b->k, {"\0", 1}, b->s};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (size_t n = 0; n < part[j].len; n++)
                h[i] = (h[i] ^ (uint8_t)part[j].p[n]) * 1099511628211ull;
    hn_ip key = {.v4 = false};
    memcpy(key.b, h, sizeof(key.b));
    return hn_rl_take(w->msg_rl, &key, hn_mono_ms(), 1.0);   /* monotonic: a clock step neither refills nor starves */
}

/* The bans of a record's visitor (docs/RULES.md §5): by the site's
 * persistent id, the visitor hash (or, with neither, the session id: the
 * drain's visitor_id), and an identify beacon's email. */
static unsigned ban_of(const hn_bans *bans, const hn_record *r) {
    unsigned f = 0;
    uint32_t wid = r->widget_id;
    if (r->b.vid.len) f |= hn_bans_check(bans, wid, 'v', r->b.vid);
    if (r->visitor.len) f |= hn_bans_check(bans, wid, 'v', r->visitor);
    if (!r->b.vid.len && !r->visitor.len) f |= hn_bans_check(bans, wid, 'v', r->b.s);
    if (r->b.em.len) f |= hn_bans_check(bans, wid, 'e', r->b.em);
    return f & HN_BAN_TRACK ? HN_BAN_TRACK : f;
}

hn_admitted hn_worker_admit(hn_worker *w, const hn_widgets *wt, const hn_batch *bt,
                            hn_transport tr, const hn_client *cl, uint64_t now_us) {
    const int ti = tr - 1;
    hn_admitted a = {0, 0, 0, HN_R_OK, false, HN_R_OK, 0, false, 0};
    /* one atomic load per batch; NULL or empty: no ban costs anything */
    const hn_bans *bans = hn_bans_acquire(w->col->bans, &w->bref);
    if (hn_bans_count(bans) == 0) bans = NULL;
    hn_enricher *e = &w->enr;
    hn_reason backlog = hn_worker_backlogged(w);
    bool client_set = false;

    for (int i = 0; i < bt->n; i++) {
        const hn_beacon *b = &bt->b[i];
        hn_reason why = (hn_reason)bt->reason[i];
        hn_record r;
        uint32_t wflags = 0;
        if (why == HN_R_OK && !hn_widgets_lookup(wt, b->k, &r.widget_id, &wflags))
            why = HN_R_UNKNOWN_WIDGET;
        if (why != HN_R_OK) {
            hn_worker_drop(w, ti, why, 1);
            if (a.refused++ == 0) a.first = why;
            hn_debug("event=beacon_rejected transport=%s reason=%s",
                     tr == HN_TR_UDP ? "udp" : tr == HN_TR_HTTP ? "http" : "pixel", hn_reason_name(why));
            continue;
        }
        if (backlog != HN_R_OK) {
            hn_worker_drop(w, ti, backlog, 1);
            a.dropped++;
            a.backlog = true;
            a.backlog_why = backlog;
            continue;
        }
        if (cl->trusted_relay && (b->ua.len || b->ip.len)) {
            relay_client(e, b, cl);
            client_set = false;             /* the next plain beacon sets the batch's client again */
        } else if (!client_set) {
            hn_enrich_client(e, cl->have_ip ? &cl->ip : NULL, cl->ua);
            client_set = true;
        }
        /* Browsers always send a User-Agent; over HTTP its absence is a script. */
        bool no_ua = tr != HN_TR_UDP && cl->ua.len == 0;
        if (no_ua || hn_enrich_is_bot(e) || (b->fields & HN_F_WD)) {
            hn_worker_drop(w, ti, HN_R_BOT, 1);
            a.dropped++;
            continue;
        }
        if (cl->opted_out && !(wflags & HN_WIDGET_IGNORE_DNT)) {
            hn_worker_drop(w, ti, HN_R_OPTED_OUT, 1);
            a.dropped++;
            continue;
        }
        memset(&r.ip, 0, sizeof(r) - offsetof(hn_record, ip));
        /* the beacon's fields, and only the properties it has */
        memcpy(&r.b, b, offsetof(hn_beacon, props) + (size_t)b->nprops * sizeof(hn_prop));
        r.b.ua = r.b.ip = (hn_str){NULL, 0};
        hn_event_id_new(&w->rng, now_us / 1000, r.event_id);
        r.recv_ts = now_us;
        r.transport = (uint8_t)tr;
        hn_enrich_record(e, &r);
        if (bans && hn_bans_widget(bans, r.widget_id)) {
            unsigned f = ban_of(bans, &r);
            if ((f & HN_BAN_TRACK) || ((f & HN_BAN_CHAT) && b->type == HN_T_MSG)) {
                hn_worker_drop(w, ti, HN_R_BANNED, 1);
                a.dropped++;
                a.msg_banned += b->type == HN_T_MSG;
                continue;
            }
        }
        /* after the ban: a banned visitor's message is refused as banned
         * (403, the script stops) and spends none of the session's tokens */
        if (b->type == HN_T_MSG && !msg_allowed(w, b)) {
            hn_worker_drop(w, ti, HN_R_CHAT_RATE_LIMITED, 1);
            a.dropped++;
            a.msg_limited++;
            continue;
        }
        hn_worker_take(w, &r);
        HN_STAT_ADD(w->st.received[ti], 1);
        HN_STAT_ADD(w->st.accepted[ti], 1);
        a.accepted++;
        a.chat |= (wflags & HN_WIDGET_CHAT) != 0;
    }
    return a;
}
