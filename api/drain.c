/*
 * drain.c: the drain worker — moves records from the Redis streams into
 * PostgreSQL, each exactly once (DESIGN.md §4).
 *
 * HERENOW_DRAIN_THREADS threads per api process, each one consumer of group
 * "drain" on every shard hn:stream:<n>, named "<node>-<pid>-<random>-<i>"
 * so that no two share a consumer. A cycle:
 *
 *   1. entries: own pending ones first (after a failed cycle, `0`), else
 *      stale ones of dead consumers (XAUTOCLAIM, every claim interval), else
 *      new ones (`>`, COUNT, BLOCK);
 *   2. decode them and build, in C, the COPY text of the rows (page views,
 *      other beacons) and of the batch's aggregates: one line per session
 *      (counts, first/latest page, latest enrichment…), page views and
 *      events per hour, pages and events per day (undecodable entries go
 *      to drain_rejects);
 *   3. one transaction: COPY the rows into widget_page_views and
 *      widget_visitor_events, COPY the aggregates into temp tables, upsert
 *      sessions from them (RETURNING old-and-new, which gives exact rollup
 *      deltas), hourly rollups, visitor sets, breakdowns → COMMIT;
 *   4. XACK; every second XTRIM MINID from the group's progress.
 *
 * Exactly once: the rows' unique key is (event_id, recv_at). A batch read
 * for the first time (`>`) is written with plain COPY; a batch that may have
 * been written before (own pending after a failure, claimed from a dead
 * consumer) first looks up which of its records PostgreSQL has (hn_ids →
 * sql_existing) and leaves those out of the rows *and* of the aggregates.
 * If a plain COPY still hits the unique key (a record the collector wrote
 * into two entries read by two consumers), the transaction rolls back and
 * the batch is built again the redelivered way. Before COMMIT a crash
 * writes nothing; after it, redelivery finds everything present and
 * changes nothing. Sessions and rollups therefore move exactly once.
 * PostgreSQL or Redis down: the cycle fails, the entries stay pending, the
 * drain retries with backoff and reads its own pending entries again.
 *
 * The drain thread uses blocking libpq and hiredis: it is its own thread and
 * never touches the api's event loop.
 */
#include "api/api.h"

#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/redis.h"
#include "proto/record.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DRAIN_GROUP        "drain"
#define TRIM_EVERY_MS      1000
#define SWEEP_EVERY_MS     30000
#define MAINT_EVERY_MS     3600000
#define BATCH_BUCKETS      8
#define HN_BAD             (-3)   /* write_batch: PostgreSQL refused the data itself */

static const uint64_t batch_bounds[BATCH_BUCKETS] = {1, 10, 100, 1000, 5000, 20000, 100000,
                                                     UINT64_MAX};

/* ---- SQL ---------------------------------------------------------------------
 * Everything the transaction runs. No statement takes text from outside:
 * records arrive through COPY (rows, and the batch's aggregates made in C),
 * the rest reads the temp tables. */

static const char sql_setup[] =
    "SET application_name = 'herenow-drain';"
    "SET TIME ZONE 'UTC';"
    "SET work_mem = '64MB';"
    "SET temp_buffers = '256MB';"
    /* the batch's sessions, aggregated in C (batch_build) */
    "CREATE TEMP TABLE IF NOT EXISTS hn_agg ("
    " widget_id integer, session_id text, visitor_id text, vh text, nm text, em text, ph text,"
    " ip text, country text, region text, city text, ua text, browser text, bv text, os text,"
    " ov text, device text, lang text, sw integer, sh integer, landing text, referrer text,"
    " cur_url text, cur_title text, first_pv timestamptz, last_pv timestamptz, pages integer,"
    " events integer, engaged bigint, msgs integer, chat integer, started timestamptz,"
    " last_active timestamptz, ended timestamptz) ON COMMIT DELETE ROWS;"
    /* page views and events per hour; page and event breakdowns per day */
    "CREATE TEMP TABLE IF NOT EXISTS hn_hourly (widget_id integer, hour timestamptz,"
    " page_views bigint, events bigint) ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS hn_dimsb (widget_id integer, dim text, day date,"
    " value text, n bigint) ON COMMIT DELETE ROWS;"
    /* the ids of a redelivered batch, to find those already written */
    "CREATE TEMP TABLE IF NOT EXISTS hn_ids (event_id uuid, recv_at timestamptz)"
    " ON COMMIT DELETE ROWS;"
    "CREATE TEMP TABLE IF NOT EXISTS hn_sess ("
    " widget_id integer, session_id text, fresh boolean, visitor_id text,"
    " rollup_hour timestamptz, page_views integer, chat_events integer, referrer text,"
    " referrer_source text,"
    " country text, browser text, os text, device_type text,"
    " d_pages integer, d_engaged bigint, d_chat integer) ON COMMIT DELETE ROWS";

static const char sql_copy_pv[] =
    "COPY widget_page_views (event_id, recv_at, widget_id, session_id, visitor_id, seq, url,"
    " path, title, referrer, engaged_ms, transport) FROM STDIN";
static const char sql_copy_ev[] =
    "COPY widget_visitor_events (event_id, recv_at, widget_id, session_id, visitor_id, seq,"
    " event_type, event_name, url, event_data, engaged_ms, transport) FROM STDIN";
static const char sql_copy_agg[] = "COPY hn_agg FROM STDIN";
static const char sql_copy_hourly[] = "COPY hn_hourly FROM STDIN";
static const char sql_copy_dims[] = "COPY hn_dimsb FROM STDIN";
static const char sql_copy_ids[] = "COPY hn_ids FROM STDIN";

/* Which of a redelivered batch's records are in PostgreSQL already. */
static const char sql_existing[] =
    "SELECT i.event_id FROM hn_ids i"
    " WHERE EXISTS (SELECT 1 FROM widget_page_views p"
    "  WHERE p.event_id = i.event_id AND p.recv_at = i.recv_at)"
    " OR EXISTS (SELECT 1 FROM widget_visitor_events e"
    "  WHERE e.event_id = i.event_id AND e.recv_at = i.recv_at)";

/* Sessions from the batch's aggregates. Counters add; "first"/"latest"
 * fields compare the receive times already stored, so batches may arrive in
 * any order. RETURNING + the batch's own deltas give every rollup delta
 * exactly (old value = new value − delta, the row being locked by the
 * update). xmax = 0 on a RETURNING row means it was inserted, not updated. */
static const char sql_sessions[] =
    "WITH up AS ("
    " INSERT INTO widget_visitor_sessions AS s (widget_id, session_id, visitor_id, visitor_hash,"
    "  visitor_name, visitor_email, visitor_phone, ip_address, country, region, city,"
    "  user_agent, browser, browser_version, os, os_version, device_type, language,"
    "  screen_width, screen_height, landing_page, referrer, referrer_source, current_page_url,"
    "  current_page_title, is_active, page_views, events_count, engaged_ms,"
    "  total_time_seconds, last_active_at, session_started_at, session_ended_at,"
    "  messages_sent, chat_events, has_chatted, first_pv_at, last_pv_at, rollup_hour)"
    " SELECT widget_id, session_id, visitor_id, vh, nm, em, ph, ip, country, region, city,"
    "  ua, browser, bv, os, ov, device, lang, sw, sh, landing, referrer,"
    "  hn_referrer_source(referrer), cur_url, cur_title,"
    "  ended IS NULL OR ended < last_active, pages, events, engaged,"
    "  least(engaged / 1000, 2147483647)::integer,"
    "  last_active, started, ended, msgs, chat, chat > 0, first_pv, last_pv,"
    "  date_trunc('hour', started)"
    " FROM hn_agg ORDER BY widget_id, session_id"
    " ON CONFLICT (widget_id, session_id) DO UPDATE SET"
    "  visitor_hash = coalesce(s.visitor_hash, excluded.visitor_hash),"
    "  visitor_name = coalesce(excluded.visitor_name, s.visitor_name),"
    "  visitor_email = coalesce(excluded.visitor_email, s.visitor_email),"
    "  visitor_phone = coalesce(excluded.visitor_phone, s.visitor_phone),"
    "  ip_address = coalesce(excluded.ip_address, s.ip_address),"
    "  country = coalesce(excluded.country, s.country),"
    "  region = coalesce(excluded.region, s.region),"
    "  city = coalesce(excluded.city, s.city),"
    "  user_agent = coalesce(excluded.user_agent, s.user_agent),"
    "  browser = coalesce(excluded.browser, s.browser),"
    "  browser_version = coalesce(excluded.browser_version, s.browser_version),"
    "  os = coalesce(excluded.os, s.os),"
    "  os_version = coalesce(excluded.os_version, s.os_version),"
    "  device_type = coalesce(excluded.device_type, s.device_type),"
    "  language = coalesce(excluded.language, s.language),"
    "  screen_width = coalesce(excluded.screen_width, s.screen_width),"
    "  screen_height = coalesce(excluded.screen_height, s.screen_height),"
    "  landing_page = CASE WHEN s.first_pv_at IS NULL OR excluded.first_pv_at < s.first_pv_at"
    "   THEN coalesce(excluded.landing_page, s.landing_page) ELSE s.landing_page END,"
    "  first_pv_at = least(s.first_pv_at, excluded.first_pv_at),"
    "  current_page_url = CASE WHEN s.last_pv_at IS NULL OR excluded.last_pv_at >= s.last_pv_at"
    "   THEN coalesce(excluded.current_page_url, s.current_page_url) ELSE s.current_page_url END,"
    "  current_page_title = CASE WHEN s.last_pv_at IS NULL OR excluded.last_pv_at >= s.last_pv_at"
    "   THEN CASE WHEN excluded.last_pv_at IS NULL THEN s.current_page_title"
    "   ELSE excluded.current_page_title END ELSE s.current_page_title END,"
    "  last_pv_at = greatest(s.last_pv_at, excluded.last_pv_at),"
    /* the landing page's referrer: moves with the first page view */
    "  referrer = CASE WHEN excluded.first_pv_at IS NOT NULL AND (s.first_pv_at IS NULL"
    "   OR excluded.first_pv_at < s.first_pv_at) THEN excluded.referrer ELSE s.referrer END,"
    "  page_views = s.page_views + excluded.page_views,"
    "  events_count = s.events_count + excluded.events_count,"
    "  engaged_ms = s.engaged_ms + excluded.engaged_ms,"
    "  total_time_seconds = least((s.engaged_ms + excluded.engaged_ms) / 1000, 2147483647)::integer,"
    "  messages_sent = s.messages_sent + excluded.messages_sent,"
    "  chat_events = s.chat_events + excluded.chat_events,"
    "  has_chatted = s.chat_events + excluded.chat_events > 0,"
    "  session_started_at = least(s.session_started_at, excluded.session_started_at),"
    "  last_active_at = greatest(s.last_active_at, excluded.last_active_at),"
    "  session_ended_at = greatest(s.session_ended_at, excluded.session_ended_at),"
    "  is_active = coalesce(greatest(s.session_ended_at, excluded.session_ended_at)"
    "   < greatest(s.last_active_at, excluded.last_active_at), true),"
    "  updated_at = now()"
    " RETURNING s.widget_id, s.session_id, (s.xmax = 0) AS fresh, s.visitor_id, s.rollup_hour,"
    "  s.page_views, s.chat_events, s.referrer, s.referrer_source, s.country, s.browser, s.os,"
    "  s.device_type)"
    " INSERT INTO hn_sess SELECT up.*, agg.pages, agg.engaged, agg.chat"
    "  FROM up JOIN hn_agg agg USING (widget_id, session_id)";

/* Hourly rollup: page views and events in their own hour; session metrics
 * in the session's rollup hour (page views and events come counted per
 * hour in hn_hourly); visitors through the day/hour sets (a
 * visitor counts in visitors_day the first time it is seen that UTC day). */
static const char sql_rollup[] =
    "WITH vd AS ("
    " INSERT INTO widget_visitor_days (widget_id, day, visitor_id)"
    " SELECT DISTINCT widget_id, (rollup_hour AT TIME ZONE 'UTC')::date, visitor_id"
    "  FROM hn_sess WHERE fresh ORDER BY 1, 2, 3"
    " ON CONFLICT DO NOTHING RETURNING widget_id, day, visitor_id),"
    " vh AS ("
    " INSERT INTO widget_visitor_hours (widget_id, hour, visitor_id)"
    " SELECT DISTINCT widget_id, rollup_hour, visitor_id FROM hn_sess WHERE fresh ORDER BY 1, 2, 3"
    " ON CONFLICT DO NOTHING RETURNING widget_id, hour),"
    " d (widget_id, hour, page_views, events, sessions, visitors_day, visitors_hour,"
    "  session_pages, engaged_ms, bounces, chat_sessions) AS ("
    " SELECT widget_id, hour, page_views, events, 0, 0, 0, 0, 0, 0, 0 FROM hn_hourly"
    " UNION ALL"
    " SELECT widget_id, rollup_hour, 0, 0, count(*) FILTER (WHERE fresh), 0, 0, sum(d_pages),"
    "  sum(d_engaged),"
    "  sum((page_views < 2)::int - CASE WHEN fresh THEN 0 ELSE (page_views - d_pages < 2)::int END),"
    "  sum((chat_events > 0)::int - CASE WHEN fresh THEN 0 ELSE (chat_events - d_chat > 0)::int END)"
    "  FROM hn_sess GROUP BY 1, 2"
    " UNION ALL"
    " SELECT vd.widget_id, min(s.rollup_hour), 0, 0, 0, 1, 0, 0, 0, 0, 0"
    "  FROM vd JOIN hn_sess s ON s.fresh AND s.widget_id = vd.widget_id"
    "   AND s.visitor_id = vd.visitor_id AND (s.rollup_hour AT TIME ZONE 'UTC')::date = vd.day"
    "  GROUP BY vd.widget_id, vd.day, vd.visitor_id"
    " UNION ALL"
    " SELECT widget_id, hour, 0, 0, 0, 0, count(*), 0, 0, 0, 0 FROM vh GROUP BY 1, 2)"
    " INSERT INTO widget_rollup_hourly AS r (widget_id, hour, page_views, events, sessions,"
    "  visitors_day, visitors_hour, session_pages, engaged_ms, bounces, chat_sessions)"
    " SELECT widget_id, hour, sum(page_views), sum(events), sum(sessions), sum(visitors_day),"
    "  sum(visitors_hour), sum(session_pages), sum(engaged_ms), sum(bounces), sum(chat_sessions)"
    "  FROM d GROUP BY 1, 2 ORDER BY 1, 2"
    " ON CONFLICT (widget_id, hour) DO UPDATE SET"
    "  page_views = r.page_views + excluded.page_views,"
    "  events = r.events + excluded.events,"
    "  sessions = r.sessions + excluded.sessions,"
    "  visitors_day = r.visitors_day + excluded.visitors_day,"
    "  visitors_hour = r.visitors_hour + excluded.visitors_hour,"
    "  session_pages = r.session_pages + excluded.session_pages,"
    "  engaged_ms = r.engaged_ms + excluded.engaged_ms,"
    "  bounces = r.bounces + excluded.bounces,"
    "  chat_sessions = r.chat_sessions + excluded.chat_sessions";

/* Breakdowns per UTC day: pages (page views) and events from hn_dimsb,
 * session dimensions (sessions) once, when the session is first seen. */
static const char sql_dims[] =
    "INSERT INTO widget_rollup_dims AS r (widget_id, dim, day, value, n)"
    " SELECT widget_id, dim, day, value, sum(n) FROM ("
    "  SELECT widget_id, dim, day, value, n FROM hn_dimsb"
    "  UNION ALL SELECT widget_id, 'referrer', (rollup_hour AT TIME ZONE 'UTC')::date,"
    "   hn_referrer_source(referrer), 1 FROM hn_sess WHERE fresh"
    /* an earlier first page view arrived late with another referrer: the
     * session moves from the source it was counted under to the new one */
    "  UNION ALL SELECT widget_id, 'referrer', (rollup_hour AT TIME ZONE 'UTC')::date,"
    "   referrer_source, -1 FROM hn_sess"
    "   WHERE NOT fresh AND referrer_source IS DISTINCT FROM hn_referrer_source(referrer)"
    "  UNION ALL SELECT widget_id, 'referrer', (rollup_hour AT TIME ZONE 'UTC')::date,"
    "   hn_referrer_source(referrer), 1 FROM hn_sess"
    "   WHERE NOT fresh AND referrer_source IS DISTINCT FROM hn_referrer_source(referrer)"
    "  UNION ALL SELECT widget_id, 'country', (rollup_hour AT TIME ZONE 'UTC')::date,"
    "   coalesce(country, '(unknown)'), 1 FROM hn_sess WHERE fresh"
    "  UNION ALL SELECT widget_id, 'browser', (rollup_hour AT TIME ZONE 'UTC')::date,"
    "   coalesce(browser, '(unknown)'), 1 FROM hn_sess WHERE fresh"
    "  UNION ALL SELECT widget_id, 'os', (rollup_hour AT TIME ZONE 'UTC')::date,"
    "   coalesce(os, '(unknown)'), 1 FROM hn_sess WHERE fresh"
    "  UNION ALL SELECT widget_id, 'device', (rollup_hour AT TIME ZONE 'UTC')::date,"
    "   coalesce(device_type, '(unknown)'), 1 FROM hn_sess WHERE fresh"
    " ) x GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
    " ON CONFLICT (widget_id, dim, day, value) DO UPDATE SET n = r.n + excluded.n";

/* The sessions whose referrer moved now count under the new source. */
static const char sql_referrer_moved[] =
    "UPDATE widget_visitor_sessions s SET referrer_source = hn_referrer_source(h.referrer)"
    " FROM hn_sess h WHERE NOT h.fresh AND s.widget_id = h.widget_id"
    " AND s.session_id = h.session_id"
    " AND h.referrer_source IS DISTINCT FROM hn_referrer_source(h.referrer)";

static const char sql_reject[] =
    "INSERT INTO drain_rejects (stream, entry_id, reason, raw) VALUES ($1, $2, $3, $4::bytea)"
    " ON CONFLICT DO NOTHING";

/* Sessions that left without an `end` (tab closed, network gone): inactive
 * once the live window has passed, ended at their last beacon. */
static const char sql_sweep[] =
    "UPDATE widget_visitor_sessions SET is_active = false, session_ended_at = last_active_at,"
    " updated_at = now()"
    " WHERE (widget_id, session_id) IN (SELECT widget_id, session_id FROM widget_visitor_sessions"
    "  WHERE is_active AND last_active_at < now() - make_interval(secs => $1::integer)"
    "  LIMIT 10000)";

/* ---- event ids seen in this batch -------------------------------------------------
 * Open addressing over 16-byte ids; event ids are random in their low
 * bytes, so those are the hash. */

typedef struct seen_set {
    uint8_t (*slot)[16];
    bool     *used;
    size_t    cap, n;
} seen_set;

static void seen_clear(seen_set *s) {
    if (s->n) memset(s->used, 0, s->cap);
    s->n = 0;
}

static bool seen_has(const seen_set *s, const uint8_t id[16]) {
    if (s->n == 0) return false;
    uint64_t h;
    memcpy(&h, id + 8, 8);
    size_t j = h & (s->cap - 1);
    while (s->used[j]) {
        if (memcmp(s->slot[j], id, 16) == 0) return true;
        j = (j + 1) & (s->cap - 1);
    }
    return false;
}

/* true when id was new (and is now in the set) */
static bool seen_add(seen_set *s, const uint8_t id[16]) {
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 4096;
        uint8_t (*nslot)[16] = hn_xcalloc(ncap, 16);
        bool *nused = hn_xcalloc(ncap, 1);
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->used[i]) continue;
            uint64_t h;
            memcpy(&h, s->slot[i] + 8, 8);
            size_t j = h & (ncap - 1);
            while (nused[j]) j = (j + 1) & (ncap - 1);
            memcpy(nslot[j], s->slot[i], 16);
            nused[j] = true;
        }
        free(s->slot);
        free(s->used);
        s->slot = nslot;
        s->used = nused;
        s->cap = ncap;
    }
    uint64_t h;
    memcpy(&h, id + 8, 8);
    size_t j = h & (s->cap - 1);
    while (s->used[j]) {
        if (memcmp(s->slot[j], id, 16) == 0) return false;
        j = (j + 1) & (s->cap - 1);
    }
    memcpy(s->slot[j], id, 16);
    s->used[j] = true;
    s->n++;
    return true;
}

/* ---- keyed counters for the batch's aggregates ---------------------------------
 * Open addressing from (k, s) to a dense index: sessions by (widget, session
 * id), hours by (widget, hour), breakdown values by (widget, day, dim, value).
 * The strings point into the batch's Redis replies, which live as long as
 * the batch. */

typedef struct kmap_item {
    uint64_t k;
    hn_str   s;
} kmap_item;

typedef struct kmap {
    uint32_t  *slot;   /* index + 1; 0: empty */
    size_t     cap;
    kmap_item *items;
    size_t     n, cap_items;
} kmap;

static uint64_t kmap_hash(uint64_t k, hn_str s) {
    uint64_t h = 1469598103934665603ull ^ (k * 0x9e3779b97f4a7c15ull);
    for (uint32_t i = 0; i < s.len; i++) h = (h ^ (unsigned char)s.p[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static void kmap_clear(kmap *m) {
    if (m->n) memset(m->slot, 0, m->cap * sizeof(*m->slot));
    m->n = 0;
}

static void kmap_free(kmap *m) {
    free(m->slot);
    free(m->items);
}

/* The index of (k, s), added when new (*fresh set). */
static size_t kmap_get(kmap *m, uint64_t k, hn_str s, bool *fresh) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 1024;
        uint32_t *nslot = hn_xcalloc(ncap, sizeof(*nslot));
        for (size_t i = 0; i < m->n; i++) {
            size_t j = kmap_hash(m->items[i].k, m->items[i].s) & (ncap - 1);
            while (nslot[j]) j = (j + 1) & (ncap - 1);
            nslot[j] = (uint32_t)(i + 1);
        }
        free(m->slot);
        m->slot = nslot;
        m->cap = ncap;
    }
    size_t j = kmap_hash(k, s) & (m->cap - 1);
    while (m->slot[j]) {
        kmap_item *it = &m->items[m->slot[j] - 1];
        if (it->k == k && it->s.len == s.len && (s.len == 0 || memcmp(it->s.p, s.p, s.len) == 0)) {
            *fresh = false;
            return m->slot[j] - 1;
        }
        j = (j + 1) & (m->cap - 1);
    }
    if (m->n == m->cap_items) {
        m->cap_items = m->cap_items ? m->cap_items * 2 : 1024;
        m->items = hn_xreallocarray(m->items, m->cap_items, sizeof(*m->items));
    }
    m->items[m->n] = (kmap_item){k, s};
    m->slot[j] = (uint32_t)(m->n + 1);
    *fresh = true;
    return m->n++;
}

/* One session's share of the batch: what sql_sessions adds to its row.
 * "First"/"latest" are by (recv_ts, q). */
typedef struct sess_agg {
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
} sess_agg;

typedef struct hour_agg {
    uint64_t page_views, events;
} hour_agg;

/* Rejects wait for the transaction; kept as a small list. */
typedef struct drain_reject {
    int    shard;
    char   id[48];
    char   why[160];
    char  *raw;
    size_t rawlen;
} drain_reject;

/* ---- state ----------------------------------------------------------------------- */

typedef struct drain_entry {
    int         shard;
    char        id[48];
    const char *data;     /* the "r" field, in the batch's replies; NULL: none (deleted) */
    size_t      len;
    bool        bad;      /* did not decode: goes to drain_rejects */
} drain_entry;

typedef struct drain_w drain_w;

/* One consumer: a thread with its own connections. */
struct drain_w {
    const hn_config *cfg;
    int              index;           /* 0 also trims, measures and sweeps */
    pthread_t        thread;
    atomic_bool      stop;
    atomic_bool      healthy;
    atomic_bool      stopped;

    char             consumer[160];
    hn_redis_addr    addr;
    int              nshards;
    PGconn          *pg;
    redisContext    *rc;
    bool             pg_ready;        /* temp tables made on this connection */
    hn_decoder      *dec;

    /* this batch */
    redisReply     **replies;         /* kept until the batch is written */
    size_t           nreplies, cap_replies;
    drain_entry     *entries;
    size_t           nentries, cap_entries;
    size_t           batch_bytes;     /* of the entries' records */
    size_t           lo, hi;          /* the entries a write takes: all, or one (isolating) */
    bool             data_error;      /* the latest PostgreSQL error will repeat (see pg_ok) */
    char             last_err[200];
    hn_record       *scratch;         /* one entry's records */
    size_t           nscratch, cap_scratch;
    hn_buf           pv, ev, agg, hourly, dims, ids, json;   /* COPY texts */
    seen_set         seen;            /* event ids in the batch */
    seen_set         existing;        /* of a redelivered batch: in PostgreSQL already */
    kmap             sess_map, hour_map, dim_map;
    sess_agg        *sess;
    size_t           cap_sess;
    hour_agg        *hours;
    size_t           cap_hours;
    uint64_t        *dim_n;
    size_t           cap_dims;
    size_t           nrecords;        /* rows written by this batch */
    size_t           nrepeats;        /* records left out: twice in the batch or already written */
    drain_reject    *rejects;         /* entries that did not decode */
    size_t           nrejects, cap_rejects;
    uint64_t         min_ts, max_ts;  /* recv_ts range of the batch, µs */
    bool             redelivered;     /* own pending / claimed: check what is written already */
    bool             own_pending;     /* read `0` before `>` */
    bool             claim_more;      /* XAUTOCLAIM's cursor did not come back to 0-0 */
    uint64_t         read_us, build_us; /* of the latest batch, for the debug log */
    uint64_t         last_claim_ms, last_trim_ms, last_sweep_ms, last_maint_ms;
    int64_t          part_lo, part_hi; /* days (since epoch) with partitions made */
    uint64_t         backoff_ms;
    long             fail_batch;      /* failpoint: at this batch number */
    int              fail_where;      /* 0 none, 1 before commit, 2 after commit */
    long             batches;

    /* metrics (under mu) */
    pthread_mutex_t  mu;
    uint64_t         m_records, m_dups, m_entries, m_batches, m_sessions, m_claimed;
    uint64_t         m_retry_pg, m_retry_redis, m_rejects, m_trimmed, m_swept, m_conflicts;
    uint64_t         m_deleted;
    uint64_t         m_hist[BATCH_BUCKETS];
    uint64_t         m_hist_sum;
    int64_t          g_pending, g_lag_entries;
    double           g_lag_s, g_rate, g_last_batch_ms;
    uint64_t         rate_t0_ms, rate_n0;
};

/* ---- COPY text ------------------------------------------------------------------
 * PostgreSQL's text format: tab between columns, \N for NULL, and
 * backslash, newline, CR and tab escaped inside values. */

static void copy_sep(hn_buf *b) { hn_buf_append(b, "\t", 1); }
static void copy_null(hn_buf *b) { hn_buf_append(b, "\\N", 2); }

static void copy_bytes(hn_buf *b, const char *p, size_t n) {
    hn_buf_reserve(b, n + 16);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        char esc;
        switch (p[i]) {
        case '\\': esc = '\\'; break;
        case '\n': esc = 'n'; break;
        case '\r': esc = 'r'; break;
        case '\t': esc = 't'; break;
        default: continue;
        }
        hn_buf_append(b, p + start, i - start);
        char two[2] = {'\\', esc};
        hn_buf_append(b, two, 2);
        start = i + 1;
    }
    hn_buf_append(b, p + start, n - start);
}

/* An optional text column, after a tab: empty → NULL. */
static void copy_str(hn_buf *b, hn_str s) {
    copy_sep(b);
    if (s.len == 0) copy_null(b);
    else copy_bytes(b, s.p, s.len);
}

static void copy_u64_raw(hn_buf *b, uint64_t v) {
    char num[24];
    hn_buf_append(b, num, hn_u64toa(v, num));
}

static void copy_u64(hn_buf *b, uint64_t v) {
    copy_sep(b);
    copy_u64_raw(b, v);
}

/* µs since the epoch as "YYYY-MM-DD HH:MM:SS.ffffff+00" (0: NULL). */
static void copy_ts_raw(hn_buf *b, uint64_t us) {
    if (us == 0) {
        copy_null(b);
        return;
    }
    /* the records of a batch share a handful of seconds: the date and time
     * are formatted once per second (per drain thread), only the µs each time */
    static __thread time_t last_secs = -1;
    static __thread char last_text[64];
    static __thread int last_len;
    time_t secs = (time_t)(us / 1000000);
    if (secs != last_secs) {
        struct tm tm;
        gmtime_r(&secs, &tm);
        last_len = snprintf(last_text, sizeof(last_text), "%04d-%02d-%02d %02d:%02d:%02d.",
                            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                            tm.tm_sec);
        last_secs = secs;
    }
    char frac[9] = "000000+00";   /* µs, then the zone */
    unsigned f = (unsigned)(us % 1000000);
    for (int i = 5; i >= 0; i--, f /= 10) frac[i] = (char)('0' + f % 10);
    hn_buf_append(b, last_text, (size_t)last_len);
    hn_buf_append(b, frac, sizeof(frac));
}

static void copy_ts(hn_buf *b, uint64_t us) {
    copy_sep(b);
    copy_ts_raw(b, us);
}

static void copy_day(hn_buf *b, uint64_t day) {
    time_t secs = (time_t)(day * 86400);
    struct tm tm;
    gmtime_r(&secs, &tm);
    copy_sep(b);
    hn_buf_printf(b, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* The event properties d (or identify's fields) as JSON, escaped for COPY. */
static void copy_data(hn_buf *b, const hn_record *r, hn_buf *tmp) {
    copy_sep(b);
    hn_buf_reset(tmp);
    bool first = true;
    if (r->b.type == HN_T_ID) {
        hn_buf_append(tmp, "{", 1);
        if (r->b.nm.len) { hn_json_key(tmp, &first, "name"); hn_json_str(tmp, r->b.nm.p, r->b.nm.len); }
        if (r->b.em.len) { hn_json_key(tmp, &first, "email"); hn_json_str(tmp, r->b.em.p, r->b.em.len); }
        if (r->b.ph.len) { hn_json_key(tmp, &first, "phone"); hn_json_str(tmp, r->b.ph.p, r->b.ph.len); }
        hn_buf_append(tmp, "}", 1);
    } else if (r->b.nprops > 0) {
        hn_props_json(tmp, r->b.props, r->b.nprops);
    } else {
        copy_null(b);
        return;
    }
    copy_bytes(b, tmp->p, tmp->len);
}

/* The page's path as breakdowns count it: the URL without query string and
 * fragment. */
static hn_str url_path(hn_str u) {
    for (uint32_t i = 0; i < u.len; i++)
        if (u.p[i] == '?' || u.p[i] == '#') return (hn_str){u.p, i};
    return u;
}

/* ---- decoding an entry --------------------------------------------------------- */

/* Receive times a collector can have made: anything else would ask for
 * partitions decades away. */
#define TS_PAST_US   (400ull * 86400000000ull)
#define TS_FUTURE_US (86400000000ull)
#define ENGAGED_MAX_MS 86400000u   /* engaged time one beacon may report: a day */
#define SCREEN_MAX     100000u

typedef struct scratch_ctx {
    drain_w *d;
    uint64_t now;
    char     err[96];
} scratch_ctx;

static int to_scratch(const hn_record *r, void *arg) {
    scratch_ctx *c = arg;
    drain_w *d = c->d;
    if (r->recv_ts + TS_PAST_US < c->now || r->recv_ts > c->now + TS_FUTURE_US) {
        snprintf(c->err, sizeof(c->err), "recv_ts %llu out of range",
                 (unsigned long long)r->recv_ts);
        return HN_ERR;
    }
    if (r->widget_id > INT32_MAX) {
        snprintf(c->err, sizeof(c->err), "widget id %u out of range", r->widget_id);
        return HN_ERR;
    }
    if (d->nscratch == d->cap_scratch) {
        d->cap_scratch = d->cap_scratch ? d->cap_scratch * 2 : 1024;
        d->scratch = hn_xreallocarray(d->scratch, d->cap_scratch, sizeof(*d->scratch));
    }
    /* the record's strings point into the entry (a Redis reply of the
     * batch), not into the decoder: the copy stays valid */
    hn_record *k = &d->scratch[d->nscratch++];
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

static void reject(drain_w *d, drain_entry *e, const char *why) {
    hn_warn("event=drain_reject shard=%d entry=%s reason='%s'", e->shard, e->id, why);
    e->bad = true;
    if (d->nrejects == d->cap_rejects) {
        d->cap_rejects = d->cap_rejects ? d->cap_rejects * 2 : 16;
        d->rejects = hn_xreallocarray(d->rejects, d->cap_rejects, sizeof(*d->rejects));
    }
    drain_reject *r = &d->rejects[d->nrejects++];
    r->shard = e->shard;
    snprintf(r->id, sizeof(r->id), "%s", e->id);
    snprintf(r->why, sizeof(r->why), "%s", why);
    r->rawlen = e->data ? e->len : 0;
    r->raw = e->data ? hn_xmalloc(e->len + 1) : NULL;
    if (e->data) memcpy(r->raw, e->data, e->len);
}

static void rejects_clear(drain_w *d) {
    for (size_t i = 0; i < d->nrejects; i++) free(d->rejects[i].raw);
    d->nrejects = 0;
}

/* Decodes one entry into d->scratch, all or nothing: an entry that does not
 * decode whole is rejected. false when the entry has nothing to write. */
static bool decode_entry(drain_w *d, drain_entry *e) {
    d->nscratch = 0;
    if (e->bad || e->data == NULL) return false;
    scratch_ctx c = {.d = d, .now = hn_now_us()};
    char err[256];
    if (hn_record_decode_batch(d->dec, e->data, e->len, to_scratch, &c, err, sizeof(err)) !=
        HN_OK) {
        d->nscratch = 0;
        reject(d, e, c.err[0] ? c.err : err);
        return false;
    }
    for (size_t i = 0; i < d->nscratch; i++) {
        uint64_t ts = d->scratch[i].recv_ts;
        if (d->min_ts == 0 || ts < d->min_ts) d->min_ts = ts;
        if (ts > d->max_ts) d->max_ts = ts;
    }
    return true;
}

/* ---- building the batch: rows and aggregates ---------------------------------------- */

static bool later(uint64_t ts, uint64_t q, uint64_t ts0, uint64_t q0) {
    return ts > ts0 || (ts == ts0 && q > q0);
}

static void aggregate(drain_w *d, const hn_record *r) {
    bool fresh;
    size_t i = kmap_get(&d->sess_map, r->widget_id, r->b.s, &fresh);
    if (i >= d->cap_sess) {
        d->cap_sess = d->cap_sess ? d->cap_sess * 2 : 1024;
        d->sess = hn_xreallocarray(d->sess, d->cap_sess, sizeof(*d->sess));
    }
    sess_agg *a = &d->sess[i];
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
        /* visitor_id: the site's persistent id, else the visitor hash, else
         * the session itself */
        a->visitor_id = r->b.vid.len ? r->b.vid : r->visitor.len ? r->visitor : r->b.s;
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
        } else if (hn_str_eq(r->b.n, "chat_opened", 11)) {
            a->chat++;
        }
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
    size_t h = kmap_get(&d->hour_map, ((uint64_t)r->widget_id << 32) | hour, (hn_str){NULL, 0},
                        &fresh);
    if (h >= d->cap_hours) {
        d->cap_hours = d->cap_hours ? d->cap_hours * 2 : 64;
        d->hours = hn_xreallocarray(d->hours, d->cap_hours, sizeof(*d->hours));
    }
    if (fresh) d->hours[h] = (hour_agg){0, 0};
    if (r->b.type == HN_T_PV) d->hours[h].page_views++;
    else if (r->b.type == HN_T_EV) d->hours[h].events++;

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
    size_t k = kmap_get(&d->dim_map, ((uint64_t)r->widget_id << 32) | (day << 1) | dim, value,
                        &fresh);
    if (k >= d->cap_dims) {
        d->cap_dims = d->cap_dims ? d->cap_dims * 2 : 256;
        d->dim_n = hn_xreallocarray(d->dim_n, d->cap_dims, sizeof(*d->dim_n));
    }
    if (fresh) d->dim_n[k] = 0;
    d->dim_n[k]++;
}

/* The record's row in widget_page_views or widget_visitor_events. */
static void format_row(drain_w *d, const hn_record *r) {
    hn_buf *b = r->b.type == HN_T_PV ? &d->pv : &d->ev;
    char id[37];
    hn_event_id_format(r->event_id, id);
    hn_buf_append(b, id, 36);
    copy_ts(b, r->recv_ts);
    copy_u64(b, r->widget_id);
    copy_sep(b);
    copy_bytes(b, r->b.s.p, r->b.s.len);
    copy_str(b, r->b.vid.len ? r->b.vid : r->visitor.len ? r->visitor : r->b.s);
    copy_u64(b, r->b.q);
    if (r->b.type == HN_T_PV) {
        copy_sep(b);
        copy_bytes(b, r->b.u.p, r->b.u.len);
        hn_str path = url_path(r->b.u);
        copy_sep(b);
        copy_bytes(b, path.p, path.len);
        copy_str(b, r->b.ti);
        copy_str(b, r->b.r);
    } else {
        copy_sep(b);
        copy_bytes(b, r->b.t.p, r->b.t.len);
        copy_str(b, r->b.n);
        copy_str(b, r->b.u);
        copy_data(b, r, &d->json);
    }
    copy_u64(b, (r->b.fields & HN_F_E) ? r->b.e : 0);
    copy_u64(b, r->transport);
    hn_buf_append(b, "\n", 1);
}

static void format_aggregates(drain_w *d) {
    for (size_t i = 0; i < d->sess_map.n; i++) {
        const sess_agg *a = &d->sess[i];
        hn_buf *b = &d->agg;
        copy_u64_raw(b, a->widget_id);
        copy_str(b, a->sid);
        copy_str(b, a->visitor_id);
        copy_str(b, a->vh);
        copy_str(b, a->nm);
        copy_str(b, a->em);
        copy_str(b, a->ph);
        copy_str(b, a->ip);
        copy_str(b, a->country);
        copy_str(b, a->region);
        copy_str(b, a->city);
        copy_str(b, a->ua);
        copy_str(b, a->browser);
        copy_str(b, a->bv);
        copy_str(b, a->os);
        copy_str(b, a->ov);
        copy_str(b, a->device);
        copy_str(b, a->lang);
        if (a->has_sw) copy_u64(b, a->sw);
        else { copy_sep(b); copy_null(b); }
        if (a->has_sh) copy_u64(b, a->sh);
        else { copy_sep(b); copy_null(b); }
        copy_str(b, a->landing);
        copy_str(b, a->referrer);
        copy_str(b, a->cur_url);
        copy_str(b, a->cur_title);
        copy_ts(b, a->fpv_ts);
        copy_ts(b, a->lpv_ts);
        copy_u64(b, a->pages);
        copy_u64(b, a->events);
        copy_u64(b, a->engaged);
        copy_u64(b, a->msgs);
        copy_u64(b, a->chat);
        copy_ts(b, a->started);
        copy_ts(b, a->last_active);
        copy_ts(b, a->ended);
        hn_buf_append(b, "\n", 1);
    }
    for (size_t i = 0; i < d->hour_map.n; i++) {
        uint64_t k = d->hour_map.items[i].k;
        copy_u64_raw(&d->hourly, k >> 32);
        copy_ts(&d->hourly, (k & 0xffffffffull) * 3600000000ull);
        copy_u64(&d->hourly, d->hours[i].page_views);
        copy_u64(&d->hourly, d->hours[i].events);
        hn_buf_append(&d->hourly, "\n", 1);
    }
    for (size_t i = 0; i < d->dim_map.n; i++) {
        uint64_t k = d->dim_map.items[i].k;
        copy_u64_raw(&d->dims, k >> 32);
        copy_sep(&d->dims);
        hn_buf_append(&d->dims, (k & 1) ? "event" : "page", (k & 1) ? 5 : 4);
        copy_day(&d->dims, (k & 0xffffffffull) >> 1);
        copy_sep(&d->dims);
        copy_bytes(&d->dims, d->dim_map.items[i].s.p, d->dim_map.items[i].s.len);
        copy_u64(&d->dims, d->dim_n[i]);
        hn_buf_append(&d->dims, "\n", 1);
    }
}

/* Builds every COPY text of the batch from its entries, leaving out records
 * that are twice in the batch (a collector resent them after a reconnect)
 * and, for a redelivered batch, those in d->existing. */
static void batch_build(drain_w *d) {
    hn_buf_reset(&d->pv);
    hn_buf_reset(&d->ev);
    hn_buf_reset(&d->agg);
    hn_buf_reset(&d->hourly);
    hn_buf_reset(&d->dims);
    seen_clear(&d->seen);
    kmap_clear(&d->sess_map);
    kmap_clear(&d->hour_map);
    kmap_clear(&d->dim_map);
    d->nrecords = d->nrepeats = 0;
    for (size_t i = d->lo; i < d->hi; i++) {
        if (!decode_entry(d, &d->entries[i])) continue;
        for (size_t j = 0; j < d->nscratch; j++) {
            const hn_record *r = &d->scratch[j];
            if (!seen_add(&d->seen, r->event_id) ||
                (d->redelivered && seen_has(&d->existing, r->event_id))) {
                d->nrepeats++;
                continue;
            }
            format_row(d, r);
            aggregate(d, r);
            d->nrecords++;
        }
    }
    format_aggregates(d);
}

/* The (event_id, recv_at) of every record, for sql_existing. */
static void batch_ids(drain_w *d) {
    hn_buf_reset(&d->ids);
    for (size_t i = d->lo; i < d->hi; i++) {
        if (!decode_entry(d, &d->entries[i])) continue;
        for (size_t j = 0; j < d->nscratch; j++) {
            char id[37];
            hn_event_id_format(d->scratch[j].event_id, id);
            hn_buf_append(&d->ids, id, 36);
            copy_ts(&d->ids, d->scratch[j].recv_ts);
            hn_buf_append(&d->ids, "\n", 1);
        }
    }
}

/* ---- connections ------------------------------------------------------------------ */

static void pg_close(drain_w *d) {
    if (d->pg) PQfinish(d->pg);
    d->pg = NULL;
    d->pg_ready = false;
    d->part_lo = d->part_hi = 0;
}

static void redis_close(drain_w *d) {
    if (d->rc) redisFree(d->rc);
    d->rc = NULL;
}

static bool pg_ok(drain_w *d, PGresult *r, ExecStatusType want, const char *what) {
    if (r && PQresultStatus(r) == want) return true;
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(d->pg);
    hn_warn("event=drain_pg_error what=%s err='%s'", what, msg);
    snprintf(d->last_err, sizeof(d->last_err), "%s: %s", what, msg);
    /* a data exception, a constraint (but the unique key: see copy_in) or
     * a limit: the same batch will fail the same way every time */
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    d->data_error = state && (strncmp(state, "22", 2) == 0 || strncmp(state, "54", 2) == 0 ||
                              (strncmp(state, "23", 2) == 0 && strcmp(state, "23505") != 0));
    return false;
}

static int pg_exec(drain_w *d, const char *what, const char *sql, int n, const char *const *p) {
    PGresult *r = PQexecParams(d->pg, sql, n, NULL, p, NULL, NULL, 0);
    bool ok = (r && PQresultStatus(r) == PGRES_TUPLES_OK) || pg_ok(d, r, PGRES_COMMAND_OK, what);
    PQclear(r);
    return ok ? HN_OK : HN_ERR;
}

static int ensure_partitions(drain_w *d, int64_t lo_day, int64_t hi_day) {
    if (d->part_hi && lo_day >= d->part_lo && hi_day <= d->part_hi) return HN_OK;
    char lo[16], hi[16];
    snprintf(lo, sizeof(lo), "%lld", (long long)lo_day);
    snprintf(hi, sizeof(hi), "%lld", (long long)hi_day);
    const char *p[] = {lo, hi};
    if (pg_exec(d, "partitions",
                "SELECT hn_ensure_partitions(date '1970-01-01' + $1::integer,"
                " date '1970-01-01' + $2::integer)", 2, p) != HN_OK)
        return HN_ERR;
    if (d->part_hi == 0 || lo_day < d->part_lo) d->part_lo = lo_day;
    if (hi_day > d->part_hi) d->part_hi = hi_day;
    return HN_OK;
}

static int pg_connect(drain_w *d) {
    if (d->pg && PQstatus(d->pg) == CONNECTION_OK && d->pg_ready) return HN_OK;
    pg_close(d);
    d->pg = PQconnectdb(d->cfg->database_url);
    if (PQstatus(d->pg) != CONNECTION_OK) {
        hn_warn("event=drain_pg_connect_failed err='%s'", PQerrorMessage(d->pg));
        pg_close(d);
        return HN_ERR;
    }
    PGresult *r = PQexec(d->pg, sql_setup);
    bool ok = pg_ok(d, r, PGRES_COMMAND_OK, "setup");
    PQclear(r);
    if (!ok) { pg_close(d); return HN_ERR; }
    d->pg_ready = true;
    int64_t today = (int64_t)(hn_now_ms() / 86400000);
    if (ensure_partitions(d, today - 1, today + 7) != HN_OK) { pg_close(d); return HN_ERR; }
    hn_info("event=drain_pg_connected");
    return HN_OK;
}

static redisReply *rcmd(drain_w *d, int argc, const char **argv, const size_t *lens) {
    redisReply *r = redisCommandArgv(d->rc, argc, argv, lens);
    if (r == NULL) {
        hn_warn("event=drain_redis_error err='%s'", d->rc->errstr);
        redis_close(d);
    }
    return r;
}

static int redis_connect(drain_w *d) {
    if (d->rc) return HN_OK;
    char err[256];
    /* replies to XREADGROUP … BLOCK take up to block ms */
    int timeout = (int)d->cfg->drain_block_ms + (int)d->cfg->api_timeout_ms;
    d->rc = hn_redis_connect(&d->addr, timeout, err, sizeof(err));
    if (d->rc == NULL) {
        hn_warn("event=drain_redis_connect_failed err='%s'", err);
        return HN_ERR;
    }
    for (int s = 0; s < d->nshards; s++) {
        char key[32];
        snprintf(key, sizeof(key), "hn:stream:%d", s);
        const char *argv[] = {"XGROUP", "CREATE", key, DRAIN_GROUP, "0", "MKSTREAM"};
        redisReply *r = rcmd(d, 6, argv, NULL);
        if (r == NULL) return HN_ERR;
        bool ok = r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSYGROUP", 9) == 0;
        if (!ok) hn_warn("event=drain_xgroup_failed key=%s err='%s'", key, r->str);
        freeReplyObject(r);
        if (!ok) { redis_close(d); return HN_ERR; }
    }
    hn_info("event=drain_redis_connected consumer=%s shards=%d", d->consumer, d->nshards);
    return HN_OK;
}

/* ---- reading entries ---------------------------------------------------------------- */

/* Takes one entry [id, [field, value, …]] (value nil: deleted meanwhile).
 * Its "r" field stays in the reply, which the batch keeps. */
static void take_entry(drain_w *d, int shard, redisReply *e) {
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 1 ||
        e->element[0]->type != REDIS_REPLY_STRING)
        return;
    if (d->nentries == d->cap_entries) {
        d->cap_entries = d->cap_entries ? d->cap_entries * 2 : 256;
        d->entries = hn_xreallocarray(d->entries, d->cap_entries, sizeof(*d->entries));
    }
    drain_entry *de = &d->entries[d->nentries++];
    memset(de, 0, sizeof(*de));
    de->shard = shard;
    snprintf(de->id, sizeof(de->id), "%s", e->element[0]->str);
    if (e->elements < 2 || e->element[1]->type != REDIS_REPLY_ARRAY) {
        /* pending, but deleted from the stream meanwhile (MAXLEN guard, or
         * an XTRIM by hand): its records are gone; count and say so */
        hn_warn("event=drain_entry_deleted shard=%d entry=%s", shard, de->id);
        pthread_mutex_lock(&d->mu);
        d->m_deleted++;
        pthread_mutex_unlock(&d->mu);
        return;
    }
    redisReply *fv = e->element[1];
    for (size_t j = 0; j + 1 < fv->elements; j += 2) {
        redisReply *k = fv->element[j], *v = fv->element[j + 1];
        if (k->type == REDIS_REPLY_STRING && strcmp(k->str, HN_STREAM_FIELD) == 0 &&
            v->type == REDIS_REPLY_STRING) {
            de->data = v->str;
            de->len = v->len;
            d->batch_bytes += v->len;
            return;
        }
    }
    reject(d, de, "no field 'r'");
}

static void keep_reply(drain_w *d, redisReply *r) {
    if (d->nreplies == d->cap_replies) {
        d->cap_replies = d->cap_replies ? d->cap_replies * 2 : 8;
        d->replies = hn_xreallocarray(d->replies, d->cap_replies, sizeof(*d->replies));
    }
    d->replies[d->nreplies++] = r;
}

/* Parses XREADGROUP's reply: [[key, [entry, …]], …]. */
static void take_read_reply(drain_w *d, redisReply *r) {
    if (r->type != REDIS_REPLY_ARRAY) return;
    for (size_t i = 0; i < r->elements; i++) {
        redisReply *s = r->element[i];
        if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
            s->element[0]->type != REDIS_REPLY_STRING)
            continue;
        int shard = atoi(s->element[0]->str + strlen("hn:stream:"));
        redisReply *list = s->element[1];
        if (list->type != REDIS_REPLY_ARRAY) continue;
        for (size_t j = 0; j < list->elements; j++) take_entry(d, shard, list->element[j]);
    }
}

/* XREADGROUP over every shard with the same id ("0": own pending, ">": new). */
static int read_group(drain_w *d, const char *id, bool block) {
    int argc = 0;
    const char **argv = hn_xcalloc((size_t)(10 + 2 * d->nshards), sizeof(char *));
    char (*keys)[32] = hn_xcalloc((size_t)d->nshards, 32);
    char count[24], blockms[24];
    snprintf(count, sizeof(count), "%lld", (long long)d->cfg->drain_batch);
    snprintf(blockms, sizeof(blockms), "%lld", (long long)d->cfg->drain_block_ms);
    argv[argc++] = "XREADGROUP";
    argv[argc++] = "GROUP";
    argv[argc++] = DRAIN_GROUP;
    argv[argc++] = d->consumer;
    argv[argc++] = "COUNT";
    argv[argc++] = count;
    if (block) {
        argv[argc++] = "BLOCK";
        argv[argc++] = blockms;
    }
    argv[argc++] = "STREAMS";
    for (int s = 0; s < d->nshards; s++) {
        snprintf(keys[s], 32, "hn:stream:%d", s);
        argv[argc++] = keys[s];
    }
    for (int s = 0; s < d->nshards; s++) argv[argc++] = id;
    uint64_t t0 = hn_mono_us();
    redisReply *r = rcmd(d, argc, argv, NULL);
    d->read_us = hn_mono_us() - t0;
    free(argv);
    free(keys);
    if (r == NULL) return HN_ERR;
    if (r->type == REDIS_REPLY_ERROR) {
        hn_warn("event=drain_read_failed err='%s'", r->str);
        /* NOGROUP: the stream or group was deleted (Redis lost its data):
         * make them again on the next connect */
        freeReplyObject(r);
        redis_close(d);
        return HN_ERR;
    }
    take_read_reply(d, r);
    keep_reply(d, r);
    return HN_OK;
}

/* XAUTOCLAIM on every shard: entries of consumers that died. */
static int claim_stale(drain_w *d) {
    char count[24], idle[24];
    snprintf(count, sizeof(count), "%lld", (long long)d->cfg->drain_batch);
    snprintf(idle, sizeof(idle), "%lld", (long long)d->cfg->drain_claim_idle_ms);
    for (int s = 0; s < d->nshards; s++) {
        char key[32];
        snprintf(key, sizeof(key), "hn:stream:%d", s);
        const char *argv[] = {"XAUTOCLAIM", key, DRAIN_GROUP, d->consumer, idle, "0-0",
                              "COUNT", count};
        redisReply *r = rcmd(d, 8, argv, NULL);
        if (r == NULL) return HN_ERR;
        if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
            r->element[1]->type == REDIS_REPLY_ARRAY) {
            /* more to claim: again on the next cycle */
            if (r->element[0]->type == REDIS_REPLY_STRING && strcmp(r->element[0]->str, "0-0") != 0)
                d->claim_more = true;
            size_t before = d->nentries;
            redisReply *list = r->element[1];
            for (size_t j = 0; j < list->elements; j++) take_entry(d, s, list->element[j]);
            size_t n = d->nentries - before;
            if (n) {
                hn_info("event=drain_claimed shard=%d entries=%zu", s, n);
                pthread_mutex_lock(&d->mu);
                d->m_claimed += n;
                pthread_mutex_unlock(&d->mu);
            }
        } else if (r->type == REDIS_REPLY_ERROR) {
            hn_warn("event=drain_claim_failed err='%s'", r->str);
        }
        keep_reply(d, r);
    }
    return HN_OK;
}

/* ---- writing ---------------------------------------------------------------------- */

static void failpoint(drain_w *d, int where) {
    if (d->fail_where == where && d->batches == d->fail_batch) {
        hn_warn("event=drain_failpoint where=%s batch=%ld",
                where == 1 ? "before_commit" : "after_commit", d->batches);
        kill(getpid(), SIGKILL);
    }
}

static int64_t rows_affected(PGresult *r) {
    const char *s = PQcmdTuples(r);
    return s && *s ? atoll(s) : 0;
}

/* One COPY … FROM STDIN of the text in b. HN_AGAIN on a unique violation:
 * a record of the batch was written meanwhile (by another consumer). */
static int copy_in(drain_w *d, const char *sql, const hn_buf *b, const char *what) {
    if (b->len == 0) return HN_OK;
    PGresult *r = PQexec(d->pg, sql);
    bool ok = pg_ok(d, r, PGRES_COPY_IN, what);
    PQclear(r);
    if (!ok) return HN_ERR;
    for (size_t off = 0; off < b->len;) {
        size_t n = b->len - off > (1u << 20) ? (1u << 20) : b->len - off;
        if (PQputCopyData(d->pg, b->p + off, (int)n) != 1) {
            hn_warn("event=drain_pg_error what=%s err='%s'", what, PQerrorMessage(d->pg));
            return HN_ERR;
        }
        off += n;
    }
    if (PQputCopyEnd(d->pg, NULL) != 1) {
        hn_warn("event=drain_pg_error what=%s err='%s'", what, PQerrorMessage(d->pg));
        return HN_ERR;
    }
    int rc = HN_OK;
    r = PQgetResult(d->pg);
    if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
        const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
        if (state && strcmp(state, "23505") == 0) {
            hn_info("event=drain_conflict what=%s", what);
            rc = HN_AGAIN;
        } else {
            pg_ok(d, r, PGRES_COMMAND_OK, what);
            rc = HN_ERR;
        }
    }
    PQclear(r);
    while ((r = PQgetResult(d->pg)) != NULL) PQclear(r);
    return rc;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* "01890a5d-ac96-…" → 16 bytes */
static bool parse_uuid(const char *s, uint8_t out[16]) {
    int n = 0;
    for (; *s && n < 32; s++) {
        if (*s == '-') continue;
        int v = hexval(*s);
        if (v < 0) return false;
        if (n % 2 == 0) out[n / 2] = (uint8_t)(v << 4);
        else out[n / 2] |= (uint8_t)v;
        n++;
    }
    return n == 32;
}

/* Fills d->existing with the batch's records that PostgreSQL has already
 * (a redelivered batch: its first delivery may have committed). */
static int find_existing(drain_w *d) {
    seen_clear(&d->existing);
    int rc = copy_in(d, sql_copy_ids, &d->ids, "copy_ids");
    if (rc != HN_OK) return HN_ERR;
    PGresult *r = PQexec(d->pg, sql_existing);
    if (!pg_ok(d, r, PGRES_TUPLES_OK, "existing")) {
        PQclear(r);
        return HN_ERR;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        uint8_t id[16];
        if (parse_uuid(PQgetvalue(r, i, 0), id)) seen_add(&d->existing, id);
    }
    PQclear(r);
    return HN_OK;
}

/* Where a batch's time goes, for the debug log. */
enum { ST_ROWS, ST_AGG, ST_SESSIONS, ST_ROLLUP, ST_DIMS, ST_COMMIT, ST__N };

static void step(uint64_t *steps, int i, uint64_t *t) {
    uint64_t n = hn_mono_us();
    steps[i] = n - *t;
    *t = n;
}

/* One transaction for the whole batch: HN_OK after COMMIT, HN_AGAIN when a
 * record turned out to be written already (retry as a redelivered batch),
 * HN_ERR when PostgreSQL failed (nothing written). */
static int write_batch(drain_w *d, int64_t *sessions) {
    uint64_t steps[ST__N] = {0};
    uint64_t t0 = hn_mono_us();
    d->min_ts = d->max_ts = 0;
    d->data_error = false;
    if (d->redelivered) batch_ids(d);
    else batch_build(d);
    d->build_us = hn_mono_us() - t0;
    if (d->min_ts) {
        int64_t lo = (int64_t)(d->min_ts / 86400000000ull);
        int64_t hi = (int64_t)(d->max_ts / 86400000000ull);
        if (ensure_partitions(d, lo, hi) != HN_OK) return HN_ERR;
    }

    PGresult *r = PQexec(d->pg, "BEGIN");
    bool ok = pg_ok(d, r, PGRES_COMMAND_OK, "begin");
    PQclear(r);
    if (!ok) goto fail_noroll;
    uint64_t tt = hn_mono_us();
    int rc = HN_OK;
    if (d->redelivered) {
        if (find_existing(d) != HN_OK) goto fail;
        batch_build(d);
    }
    if ((rc = copy_in(d, sql_copy_pv, &d->pv, "copy_page_views")) != HN_OK ||
        (rc = copy_in(d, sql_copy_ev, &d->ev, "copy_events")) != HN_OK)
        goto fail;
    step(steps, ST_ROWS, &tt);
    if (copy_in(d, sql_copy_agg, &d->agg, "copy_sessions") != HN_OK ||
        copy_in(d, sql_copy_hourly, &d->hourly, "copy_hourly") != HN_OK ||
        copy_in(d, sql_copy_dims, &d->dims, "copy_dims") != HN_OK) {
        rc = HN_ERR;
        goto fail;
    }
    step(steps, ST_AGG, &tt);
    if (d->sess_map.n > 0) {
        r = PQexec(d->pg, sql_sessions);
        ok = pg_ok(d, r, PGRES_COMMAND_OK, "sessions");
        *sessions = ok ? rows_affected(r) : 0;
        PQclear(r);
        if (!ok) { rc = HN_ERR; goto fail; }
        step(steps, ST_SESSIONS, &tt);
        if (pg_exec(d, "rollup", sql_rollup, 0, NULL) != HN_OK) { rc = HN_ERR; goto fail; }
        step(steps, ST_ROLLUP, &tt);
        if (pg_exec(d, "dims", sql_dims, 0, NULL) != HN_OK) { rc = HN_ERR; goto fail; }
        if (pg_exec(d, "referrer_moved", sql_referrer_moved, 0, NULL) != HN_OK) {
            rc = HN_ERR;
            goto fail;
        }
        step(steps, ST_DIMS, &tt);
    }
    for (size_t i = 0; i < d->nrejects; i++) {
        char key[32];
        snprintf(key, sizeof(key), "hn:stream:%d", d->rejects[i].shard);
        /* bytea in hex text form: bound as a parameter like everything else */
        hn_buf hex;
        hn_buf_init(&hex, d->rejects[i].rawlen * 2 + 3);
        hn_buf_append(&hex, "\\x", 2);
        for (size_t k = 0; k < d->rejects[i].rawlen; k++)
            hn_buf_printf(&hex, "%02x", (unsigned char)d->rejects[i].raw[k]);
        hn_buf_append(&hex, "", 1);
        const char *p[] = {key, d->rejects[i].id, d->rejects[i].why,
                           d->rejects[i].raw ? hex.p : NULL};
        int prc = pg_exec(d, "reject", sql_reject, 4, p);
        hn_buf_free(&hex);
        if (prc != HN_OK) { rc = HN_ERR; goto fail; }
    }

    failpoint(d, 1);
    r = PQexec(d->pg, "COMMIT");
    ok = pg_ok(d, r, PGRES_COMMAND_OK, "commit");
    PQclear(r);
    if (!ok) goto fail_noroll;
    step(steps, ST_COMMIT, &tt);
    hn_debug("event=drain_batch records=%zu repeats=%zu sessions=%zu redelivered=%d read_us=%llu"
             " build_us=%llu rows_us=%llu agg_us=%llu sessions_us=%llu rollup_us=%llu"
             " dims_us=%llu commit_us=%llu",
             d->nrecords, d->nrepeats, d->sess_map.n, d->redelivered,
             (unsigned long long)d->read_us, (unsigned long long)d->build_us,
             (unsigned long long)steps[ST_ROWS], (unsigned long long)steps[ST_AGG],
             (unsigned long long)steps[ST_SESSIONS], (unsigned long long)steps[ST_ROLLUP],
             (unsigned long long)steps[ST_DIMS], (unsigned long long)steps[ST_COMMIT]);
    failpoint(d, 2);
    return HN_OK;

fail:
    r = PQexec(d->pg, "ROLLBACK");
    PQclear(r);
    if (rc == HN_AGAIN && PQstatus(d->pg) == CONNECTION_OK) return HN_AGAIN;
    if (d->data_error && PQstatus(d->pg) == CONNECTION_OK) return HN_BAD;
fail_noroll:
    if (PQstatus(d->pg) != CONNECTION_OK) pg_close(d);
    return HN_ERR;
}

/* XACK the batch's entries, one command per shard, pipelined. */
static int ack_batch(drain_w *d) {
    int sent = 0;
    for (int s = 0; s < d->nshards; s++) {
        size_t n = 0;
        for (size_t i = d->lo; i < d->hi; i++) n += d->entries[i].shard == s;
        if (n == 0) continue;
        const char **argv = hn_xcalloc(n + 3, sizeof(char *));
        char key[32];
        snprintf(key, sizeof(key), "hn:stream:%d", s);
        argv[0] = "XACK";
        argv[1] = key;
        argv[2] = DRAIN_GROUP;
        size_t k = 3;
        for (size_t i = d->lo; i < d->hi; i++)
            if (d->entries[i].shard == s) argv[k++] = d->entries[i].id;
        redisAppendCommandArgv(d->rc, (int)k, argv, NULL);
        free(argv);
        sent++;
    }
    int rc = HN_OK;
    for (int i = 0; i < sent; i++) {
        redisReply *r = NULL;
        if (redisGetReply(d->rc, (void **)&r) != REDIS_OK) {
            hn_warn("event=drain_ack_failed err='%s'", d->rc->errstr);
            redis_close(d);
            return HN_ERR;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            hn_warn("event=drain_ack_failed err='%s'", r->str);
            rc = HN_ERR;
        }
        freeReplyObject(r);
    }
    return rc;
}

/* ---- trimming and lag ---------------------------------------------------------------- */

static uint64_t id_ms(const char *id) { return strtoull(id, NULL, 10); }

/* Orders two stream ids "<ms>-<seq>". */
static int id_cmp(const char *a, const char *b) {
    char *ea, *eb;
    uint64_t ma = strtoull(a, &ea, 10), mb = strtoull(b, &eb, 10);
    if (ma != mb) return ma < mb ? -1 : 1;
    uint64_t sa = *ea == '-' ? strtoull(ea + 1, NULL, 10) : 0;
    uint64_t sb = *eb == '-' ? strtoull(eb + 1, NULL, 10) : 0;
    return sa < sb ? -1 : sa > sb;
}

/* XTRIM MINID to the group's progress: everything below the oldest pending
 * entry (or, none pending, the last delivered one) was written and acked.
 * Also measures pending and lag for the metrics. */
static void trim_and_measure(drain_w *d) {
    int64_t pending = 0, lag = 0;
    double lag_s = 0;
    uint64_t now = hn_now_ms();
    for (int s = 0; s < d->nshards && d->rc; s++) {
        char key[32];
        snprintf(key, sizeof(key), "hn:stream:%d", s);
        const char *a1[] = {"XPENDING", key, DRAIN_GROUP};
        const char *a2[] = {"XINFO", "GROUPS", key};
        /* the group's last delivered id first, then the pending list: an
         * entry delivered in between is above that id and stays, while
         * every entry at or below it is either pending (and seen) or
         * acknowledged. The other order could trim entries another
         * consumer read after XPENDING and has not written yet. */
        redisReply *g = rcmd(d, 3, a2, NULL);
        if (g == NULL) return;
        redisReply *p = rcmd(d, 3, a1, NULL);
        if (p == NULL) { freeReplyObject(g); return; }
        char minid[48] = "", last[48] = "";
        long long npend = 0, nlag = -1;
        if (p->type == REDIS_REPLY_ARRAY && p->elements >= 2) {
            npend = p->element[0]->integer;
            if (npend > 0 && p->element[1]->type == REDIS_REPLY_STRING)
                snprintf(minid, sizeof(minid), "%s", p->element[1]->str);
        }
        if (g->type == REDIS_REPLY_ARRAY) {
            for (size_t i = 0; i < g->elements; i++) {
                redisReply *gi = g->element[i];
                if (gi->type != REDIS_REPLY_ARRAY) continue;
                bool ours = false;
                for (size_t j = 0; j + 1 < gi->elements; j += 2)
                    if (gi->element[j]->type == REDIS_REPLY_STRING &&
                        strcmp(gi->element[j]->str, "name") == 0 &&
                        gi->element[j + 1]->type == REDIS_REPLY_STRING &&
                        strcmp(gi->element[j + 1]->str, DRAIN_GROUP) == 0)
                        ours = true;
                if (!ours) continue;
                for (size_t j = 0; j + 1 < gi->elements; j += 2) {
                    const char *k = gi->element[j]->str;
                    redisReply *v = gi->element[j + 1];
                    if (strcmp(k, "last-delivered-id") == 0 && v->type == REDIS_REPLY_STRING)
                        snprintf(last, sizeof(last), "%s", v->str);
                    else if (strcmp(k, "lag") == 0 && v->type == REDIS_REPLY_INTEGER)
                        nlag = v->integer;
                }
            }
        }
        freeReplyObject(p);
        freeReplyObject(g);
        pending += npend;
        if (nlag > 0) lag += nlag;
        /* the oldest record not yet in PostgreSQL */
        uint64_t oldest = 0;
        if (minid[0]) oldest = id_ms(minid);
        if (nlag > 0 && last[0]) {
            char from[56];
            snprintf(from, sizeof(from), "(%s", last);
            const char *a3[] = {"XRANGE", key, from, "+", "COUNT", "1"};
            redisReply *x = rcmd(d, 6, a3, NULL);
            if (x == NULL) return;
            if (x->type == REDIS_REPLY_ARRAY && x->elements == 1 &&
                x->element[0]->type == REDIS_REPLY_ARRAY) {
                uint64_t t = id_ms(x->element[0]->element[0]->str);
                if (oldest == 0 || t < oldest) oldest = t;
            }
            freeReplyObject(x);
        }
        if (oldest && now > oldest && (double)(now - oldest) / 1000.0 > lag_s)
            lag_s = (double)(now - oldest) / 1000.0;

        const char *upto = minid[0] && (!last[0] || id_cmp(minid, last) < 0) ? minid : last;
        /* entries stay HERENOW_STREAM_KEEP_MS at least: live readers tail
         * the stream too (the api's live hub, every api node's), and an
         * entry trimmed before they read it would be an update they miss */
        char keep[48];
        snprintf(keep, sizeof(keep), "%llu-0",
                 (unsigned long long)(now > (uint64_t)d->cfg->stream_keep_ms ? now - (uint64_t)d->cfg->stream_keep_ms : 0));
        if (upto[0] && id_cmp(upto, keep) > 0) upto = keep;
        if (upto[0] && strcmp(upto, "0-0") != 0) {
            const char *a4[] = {"XTRIM", key, "MINID", upto};
            redisReply *t = rcmd(d, 4, a4, NULL);
            if (t == NULL) return;
            if (t->type == REDIS_REPLY_INTEGER && t->integer > 0) {
                pthread_mutex_lock(&d->mu);
                d->m_trimmed += (uint64_t)t->integer;
                pthread_mutex_unlock(&d->mu);
            }
            freeReplyObject(t);
        }
    }
    pthread_mutex_lock(&d->mu);
    d->g_pending = pending;
    d->g_lag_entries = lag + pending;
    d->g_lag_s = lag_s;
    pthread_mutex_unlock(&d->mu);
}

/* Sessions without `end`, partitions ahead, retention. */
static void maintenance(drain_w *d) {
    uint64_t now = hn_mono_ms();
    if (now - d->last_sweep_ms >= SWEEP_EVERY_MS) {
        d->last_sweep_ms = now;
        char win[24];
        snprintf(win, sizeof(win), "%lld", (long long)d->cfg->live_window_s);
        const char *p[] = {win};
        PGresult *r = PQexecParams(d->pg, sql_sweep, 1, NULL, p, NULL, NULL, 0);
        if (pg_ok(d, r, PGRES_COMMAND_OK, "sweep")) {
            pthread_mutex_lock(&d->mu);
            d->m_swept += (uint64_t)rows_affected(r);
            pthread_mutex_unlock(&d->mu);
        }
        PQclear(r);
    }
    if (now - d->last_maint_ms >= MAINT_EVERY_MS) {
        d->last_maint_ms = now;
        int64_t today = (int64_t)(hn_now_ms() / 86400000);
        d->part_hi = 0;   /* re-check: the day moved on */
        ensure_partitions(d, today - 1, today + 7);
        PGresult *r = PQexec(d->pg, "SELECT hn_apply_retention()");
        if (pg_ok(d, r, PGRES_TUPLES_OK, "retention"))
            hn_info("event=drain_retention removed=%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
}

/* ---- the loop -------------------------------------------------------------------------- */

static void batch_reset(drain_w *d) {
    for (size_t i = 0; i < d->nreplies; i++) freeReplyObject(d->replies[i]);
    d->nreplies = 0;
    d->nentries = 0;
    d->batch_bytes = 0;
    d->nrecords = d->nrepeats = 0;
    d->min_ts = d->max_ts = 0;
    rejects_clear(d);
}

static void account(drain_w *d, int64_t inserted, int64_t sessions, double ms) {
    pthread_mutex_lock(&d->mu);
    d->m_batches++;
    d->m_entries += d->nentries;
    d->m_records += (uint64_t)inserted;
    d->m_dups += d->nrepeats;
    d->m_sessions += (uint64_t)sessions;
    d->m_rejects += d->nrejects;
    for (int i = 0; i < BATCH_BUCKETS; i++)
        if (d->nrecords <= batch_bounds[i]) { d->m_hist[i]++; break; }
    d->m_hist_sum += d->nrecords;
    d->g_last_batch_ms = ms;
    uint64_t now = hn_mono_ms();
    if (d->rate_t0_ms == 0) { d->rate_t0_ms = now; d->rate_n0 = d->m_records; }
    if (now - d->rate_t0_ms >= 5000) {
        d->g_rate = (double)(d->m_records - d->rate_n0) * 1000.0 / (double)(now - d->rate_t0_ms);
        d->rate_t0_ms = now;
        d->rate_n0 = d->m_records;
    }
    pthread_mutex_unlock(&d->mu);
}

static void backoff(drain_w *d, bool pg) {
    pthread_mutex_lock(&d->mu);
    if (pg) d->m_retry_pg++;
    else d->m_retry_redis++;
    pthread_mutex_unlock(&d->mu);
    atomic_store(&d->healthy, false);
    d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : 50;
    if (d->backoff_ms > (uint64_t)d->cfg->drain_retry_max_ms)
        d->backoff_ms = (uint64_t)d->cfg->drain_retry_max_ms;
    for (uint64_t waited = 0; waited < d->backoff_ms && !atomic_load(&d->stop); waited += 10)
        usleep(10000);
}

/* A batch that PostgreSQL refuses whole, again and again (write_batch
 * returned HN_BAD): written one entry per transaction, so that only the
 * entries it refuses go to drain_rejects (with the error) and everything
 * else is written. Slow, and only ever for such a batch. HN_OK when every
 * entry was written or rejected and acknowledged. */
static int isolate(drain_w *d, int64_t *sessions) {
    size_t n = d->nentries, records = 0, repeats = 0;
    int rc = HN_OK;
    hn_warn("event=drain_isolating entries=%zu err='%s'", n, d->last_err);
    for (size_t i = 0; i < n; i++) {
        d->lo = i;
        d->hi = i + 1;
        d->redelivered = true;
        int w = write_batch(d, sessions);
        if (w == HN_BAD) {
            reject(d, &d->entries[i], d->last_err);
            w = write_batch(d, sessions);
        }
        if (w != HN_OK || ack_batch(d) != HN_OK) {
            rc = HN_ERR;
            break;
        }
        records += d->nrecords;
        repeats += d->nrepeats;
    }
    d->lo = 0;
    d->hi = n;
    d->nrecords = records;
    d->nrepeats = repeats;
    return rc;
}

/* One cycle. */
static void cycle(drain_w *d) {
    if (redis_connect(d) != HN_OK) { backoff(d, false); return; }
    /* measured (and trimmed) while PostgreSQL is down too: that is when the
     * lag matters */
    uint64_t now = hn_mono_ms();
    if (d->index == 0 && now - d->last_trim_ms >= TRIM_EVERY_MS) {
        d->last_trim_ms = now;
        trim_and_measure(d);
        if (d->rc == NULL) { backoff(d, false); return; }
    }
    if (pg_connect(d) != HN_OK) { backoff(d, true); return; }
    if (d->index == 0 &&
        (now - d->last_sweep_ms >= SWEEP_EVERY_MS || now - d->last_maint_ms >= MAINT_EVERY_MS))
        maintenance(d);

    batch_reset(d);
    now = hn_mono_ms();
    int got;
    if (d->own_pending) {
        got = read_group(d, "0", false);
        d->redelivered = true;
        if (got == HN_OK && d->nentries == 0) d->own_pending = false;
    } else if (d->claim_more || now - d->last_claim_ms >= (uint64_t)d->cfg->drain_claim_idle_ms / 2) {
        d->last_claim_ms = now;
        d->claim_more = false;
        got = claim_stale(d);
        d->redelivered = true;
    } else {
        /* new entries: more reads while they come full, up to the byte
         * budget, so that a batch is large however small the collector's
         * entries are (a session in the batch costs one upsert whatever
         * number of its records the batch holds) */
        d->redelivered = false;
        size_t before = 0;
        got = read_group(d, ">", true);
        while (got == HN_OK && d->nentries - before >= (size_t)d->cfg->drain_batch &&
               d->batch_bytes < (size_t)d->cfg->drain_batch_bytes) {
            before = d->nentries;
            got = read_group(d, ">", false);
        }
    }
    if (got != HN_OK) { d->own_pending = true; backoff(d, false); return; }

    if (d->nentries > 0) {
        uint64_t t0 = hn_mono_ms();
        int64_t sessions = 0;
        d->batches++;
        d->lo = 0;
        d->hi = d->nentries;
        bool acked = false;
        int wrc = write_batch(d, &sessions);
        if (wrc == HN_AGAIN) {
            /* another consumer wrote some of these meanwhile: once more,
             * leaving out what is there */
            pthread_mutex_lock(&d->mu);
            d->m_conflicts++;
            pthread_mutex_unlock(&d->mu);
            d->redelivered = true;
            wrc = write_batch(d, &sessions);
        }
        if (wrc == HN_BAD) {
            wrc = isolate(d, &sessions);
            acked = wrc == HN_OK;
        }
        if (wrc != HN_OK) {
            /* nothing committed: the entries stay pending for us */
            d->own_pending = true;
            backoff(d, true);
            return;
        }
        if (!acked && ack_batch(d) != HN_OK) {
            /* committed but not acked: redelivery inserts nothing */
            d->own_pending = true;
            backoff(d, false);
            return;
        }
        account(d, (int64_t)d->nrecords, sessions, (double)(hn_mono_ms() - t0));
        /* after a claim or own-pending read there may be more of them */
        if (d->nentries >= (size_t)d->cfg->drain_batch) d->own_pending = true;
    }
    d->backoff_ms = 0;
    atomic_store(&d->healthy, true);
}

static void *drain_main(void *arg) {
    drain_w *d = arg;
    while (!atomic_load(&d->stop)) cycle(d);
    batch_reset(d);
    atomic_store(&d->stopped, true);
    return NULL;
}

/* ---- public ------------------------------------------------------------------------------ */

struct hn_drain {
    int       n;
    drain_w **w;
};

static void parse_failpoint(drain_w *d, const char *fp) {
    d->fail_where = 0;
    if (fp == NULL || *fp == '\0') return;
    const char *colon = strchr(fp, ':');
    size_t n = colon ? (size_t)(colon - fp) : strlen(fp);
    if (n == 13 && strncmp(fp, "before_commit", n) == 0) d->fail_where = 1;
    else if (n == 12 && strncmp(fp, "after_commit", n) == 0) d->fail_where = 2;
    d->fail_batch = colon ? atol(colon + 1) : 1;
    if (d->fail_batch < 1) d->fail_batch = 1;
    if (d->fail_where)
        hn_warn("event=drain_failpoint_armed where=%.*s batch=%ld", (int)n, fp, d->fail_batch);
}

static void worker_free(drain_w *d) {
    pg_close(d);
    redis_close(d);
    hn_decoder_destroy(d->dec);
    hn_buf *bufs[] = {&d->pv, &d->ev, &d->agg, &d->hourly, &d->dims, &d->ids, &d->json};
    for (size_t i = 0; i < HN_ARRAY_LEN(bufs); i++) hn_buf_free(bufs[i]);
    free(d->seen.slot);
    free(d->seen.used);
    free(d->existing.slot);
    free(d->existing.used);
    kmap_free(&d->sess_map);
    kmap_free(&d->hour_map);
    kmap_free(&d->dim_map);
    free(d->sess);
    free(d->hours);
    free(d->dim_n);
    free(d->scratch);
    free(d->replies);
    free(d->entries);
    rejects_clear(d);
    free(d->rejects);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

static drain_w *worker_start(const hn_config *cfg, int index, const hn_redis_addr *addr,
                             const char *host, uint64_t tag) {
    drain_w *d = hn_xcalloc(1, sizeof(*d));
    d->cfg = cfg;
    d->index = index;
    d->nshards = (int)cfg->stream_shards;
    d->addr = *addr;
    snprintf(d->consumer, sizeof(d->consumer), "%s-%d-%08llx-%d", host, (int)getpid(),
             (unsigned long long)tag, index);
    parse_failpoint(d, cfg->drain_failpoint);
    d->dec = hn_decoder_create();
    hn_buf *bufs[] = {&d->pv, &d->ev, &d->agg, &d->hourly, &d->dims, &d->ids, &d->json};
    for (size_t i = 0; i < HN_ARRAY_LEN(bufs); i++) hn_buf_init(bufs[i], 4096);
    pthread_mutex_init(&d->mu, NULL);
    /* last_claim_ms = 0: claim on the first cycle, so that a restarted
     * process picks up the work of the one that died */
    if (pthread_create(&d->thread, NULL, drain_main, d) != 0) {
        hn_error("event=drain_thread_failed");
        worker_free(d);
        return NULL;
    }
    return d;
}

hn_drain *hn_drain_start(const hn_config *cfg) {
    if (strcmp(cfg->drain, "on") != 0) return NULL;
    hn_redis_addr addr;
    char err[256];
    if (hn_redis_addr_parse(cfg->redis_url, &addr, err, sizeof(err)) != HN_OK) {
        hn_error("event=drain_bad_redis_url err='%s'", err);
        return NULL;
    }
    char host[64] = "";
    if (cfg->node_id && cfg->node_id[0]) snprintf(host, sizeof(host), "%s", cfg->node_id);
    else if (gethostname(host, sizeof(host) - 1) != 0) snprintf(host, sizeof(host), "api");
    hn_rng rng;
    hn_rng_seed(&rng);
    uint64_t tag = hn_rng_next(&rng) & 0xffffffffu;

    hn_drain *dr = hn_xcalloc(1, sizeof(*dr));
    dr->w = hn_xcalloc((size_t)cfg->drain_threads, sizeof(*dr->w));
    for (int i = 0; i < (int)cfg->drain_threads; i++) {
        drain_w *d = worker_start(cfg, i, &addr, host, tag);
        if (d == NULL) break;
        dr->w[dr->n++] = d;
    }
    if (dr->n == 0) {
        free(dr->w);
        free(dr);
        return NULL;
    }
    hn_info("event=drain_started consumers=%d consumer=%s shards=%lld batch=%lld", dr->n,
            dr->w[0]->consumer, (long long)cfg->stream_shards, (long long)cfg->drain_batch);
    return dr;
}

void hn_drain_request_stop(hn_drain *dr) {
    if (dr == NULL) return;
    for (int i = 0; i < dr->n; i++) atomic_store(&dr->w[i]->stop, true);
}

int hn_drain_stop(hn_drain *dr, int timeout_ms) {
    if (dr == NULL) return HN_OK;
    hn_drain_request_stop(dr);
    int64_t wait = timeout_ms;
    if (wait < dr->w[0]->cfg->drain_block_ms + 500) wait = dr->w[0]->cfg->drain_block_ms + 500;
    uint64_t deadline = hn_mono_ms() + (uint64_t)wait;
    int rc = HN_OK;
    for (int i = 0; i < dr->n; i++) {
        drain_w *d = dr->w[i];
        while (!atomic_load(&d->stopped) && hn_mono_ms() < deadline) usleep(5000);
        if (!atomic_load(&d->stopped)) {
            hn_warn("event=drain_stop_timeout consumer=%s", d->consumer);
            rc = HN_ERR;   /* the thread still runs: leave its memory alone */
            continue;
        }
        pthread_join(d->thread, NULL);
        worker_free(d);
        dr->w[i] = NULL;
    }
    if (rc == HN_OK) {
        free(dr->w);
        free(dr);
    }
    return rc;
}

bool hn_drain_healthy(hn_drain *dr) {
    if (dr == NULL) return true;
    for (int i = 0; i < dr->n; i++)
        if (dr->w[i] && !atomic_load(&dr->w[i]->healthy)) return false;
    return true;
}

void hn_drain_metrics(hn_drain *dr, hn_buf *out) {
    if (dr == NULL) return;
    /* counters summed over the consumers; gauges of the stream from the
     * first, which measures them */
    drain_w t = {0};
    for (int i = 0; i < dr->n; i++) {
        drain_w *d = dr->w[i];
        if (d == NULL) continue;
        pthread_mutex_lock(&d->mu);
        t.m_records += d->m_records;
        t.m_dups += d->m_dups;
        t.m_entries += d->m_entries;
        t.m_batches += d->m_batches;
        t.m_sessions += d->m_sessions;
        t.m_claimed += d->m_claimed;
        t.m_retry_pg += d->m_retry_pg;
        t.m_retry_redis += d->m_retry_redis;
        t.m_rejects += d->m_rejects;
        t.m_trimmed += d->m_trimmed;
        t.m_swept += d->m_swept;
        t.m_conflicts += d->m_conflicts;
        t.m_deleted += d->m_deleted;
        for (int k = 0; k < BATCH_BUCKETS; k++) t.m_hist[k] += d->m_hist[k];
        t.m_hist_sum += d->m_hist_sum;
        t.g_rate += d->g_rate;
        if (d->g_last_batch_ms > t.g_last_batch_ms) t.g_last_batch_ms = d->g_last_batch_ms;
        if (i == 0) {
            t.g_pending = d->g_pending;
            t.g_lag_entries = d->g_lag_entries;
            t.g_lag_s = d->g_lag_s;
        }
        pthread_mutex_unlock(&d->mu);
    }
    drain_w *d = &t;
    hn_buf_printf(out,
        "# HELP herenow_drain_records_total Records written to PostgreSQL (inserted rows).\n"
        "# TYPE herenow_drain_records_total counter\n"
        "herenow_drain_records_total %llu\n"
        "# HELP herenow_drain_duplicates_total Records read again that were already in PostgreSQL (redelivery).\n"
        "# TYPE herenow_drain_duplicates_total counter\n"
        "herenow_drain_duplicates_total %llu\n"
        "# TYPE herenow_drain_entries_total counter\n"
        "herenow_drain_entries_total %llu\n"
        "# TYPE herenow_drain_batches_total counter\n"
        "herenow_drain_batches_total %llu\n"
        "# HELP herenow_drain_consumers Drain consumers (threads) in this process.\n"
        "# TYPE herenow_drain_consumers gauge\n"
        "herenow_drain_consumers %d\n"
        "# HELP herenow_drain_sessions_updated_total Session rows inserted or updated.\n"
        "# TYPE herenow_drain_sessions_updated_total counter\n"
        "herenow_drain_sessions_updated_total %llu\n"
        "# HELP herenow_drain_claimed_total Entries claimed from consumers that stopped (XAUTOCLAIM).\n"
        "# TYPE herenow_drain_claimed_total counter\n"
        "herenow_drain_claimed_total %llu\n"
        "# HELP herenow_drain_retries_total Failed cycles retried, by the server that failed.\n"
        "# TYPE herenow_drain_retries_total counter\n"
        "herenow_drain_retries_total{server=\"postgresql\"} %llu\n"
        "herenow_drain_retries_total{server=\"redis\"} %llu\n"
        "# HELP herenow_drain_rejects_total Stream entries that did not decode (kept in drain_rejects).\n"
        "# TYPE herenow_drain_rejects_total counter\n"
        "herenow_drain_rejects_total %llu\n"
        "# HELP herenow_drain_conflicts_total Batches that met a record written meanwhile and were rebuilt without it.\n"
        "# TYPE herenow_drain_conflicts_total counter\n"
        "herenow_drain_conflicts_total %llu\n"
        "# HELP herenow_drain_entries_deleted_total Pending entries found deleted from the stream (their records are lost: alarm).\n"
        "# TYPE herenow_drain_entries_deleted_total counter\n"
        "herenow_drain_entries_deleted_total %llu\n"
        "# TYPE herenow_drain_trimmed_total counter\n"
        "herenow_drain_trimmed_total %llu\n"
        "# HELP herenow_drain_sessions_swept_total Sessions marked inactive after the live window without an end.\n"
        "# TYPE herenow_drain_sessions_swept_total counter\n"
        "herenow_drain_sessions_swept_total %llu\n"
        "# HELP herenow_drain_pending Entries delivered to the group but not yet acknowledged.\n"
        "# TYPE herenow_drain_pending gauge\n"
        "herenow_drain_pending %lld\n"
        "# HELP herenow_drain_lag_entries Entries not yet in PostgreSQL (undelivered + pending).\n"
        "# TYPE herenow_drain_lag_entries gauge\n"
        "herenow_drain_lag_entries %lld\n"
        "# HELP herenow_drain_lag_seconds Age of the oldest entry not yet in PostgreSQL.\n"
        "# TYPE herenow_drain_lag_seconds gauge\n"
        "herenow_drain_lag_seconds %.3f\n"
        "# HELP herenow_drain_records_per_second Records written per second, over the last 5 s or more.\n"
        "# TYPE herenow_drain_records_per_second gauge\n"
        "herenow_drain_records_per_second %.1f\n"
        "# TYPE herenow_drain_last_batch_ms gauge\n"
        "herenow_drain_last_batch_ms %.1f\n"
        "# HELP herenow_drain_batch_records Records per batch.\n"
        "# TYPE herenow_drain_batch_records histogram\n",
        (unsigned long long)d->m_records, (unsigned long long)d->m_dups,
        (unsigned long long)d->m_entries, (unsigned long long)d->m_batches, dr->n,
        (unsigned long long)d->m_sessions, (unsigned long long)d->m_claimed,
        (unsigned long long)d->m_retry_pg, (unsigned long long)d->m_retry_redis,
        (unsigned long long)d->m_rejects, (unsigned long long)d->m_conflicts,
        (unsigned long long)d->m_deleted, (unsigned long long)d->m_trimmed,
        (unsigned long long)d->m_swept, (long long)d->g_pending, (long long)d->g_lag_entries,
        d->g_lag_s, d->g_rate, d->g_last_batch_ms);
    uint64_t cum = 0;
    for (int i = 0; i < BATCH_BUCKETS; i++) {
        cum += d->m_hist[i];
        if (batch_bounds[i] == UINT64_MAX)
            hn_buf_printf(out, "herenow_drain_batch_records_bucket{le=\"+Inf\"} %llu\n",
                          (unsigned long long)cum);
        else
            hn_buf_printf(out, "herenow_drain_batch_records_bucket{le=\"%llu\"} %llu\n",
                          (unsigned long long)batch_bounds[i], (unsigned long long)cum);
    }
    hn_buf_printf(out, "herenow_drain_batch_records_sum %llu\nherenow_drain_batch_records_count %llu\n",
                  (unsigned long long)d->m_hist_sum, (unsigned long long)cum);
}
