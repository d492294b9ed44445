/* snapshot.c: see snapshot.h. */
#include "api/live/snapshot.h"

#include "common/json.h"

#include <stdlib.h>
#include <string.h>

/* A snapshot counter or time: a non-negative decimal, else -1. */
static int64_t f_int(const char *s) {
    int64_t v;
    return hn_parse_i64(s, &v) && v >= 0 ? v : -1;
}

/* HGETALL, not HMGET of the 29 fields: for a hash in a listpack (every
 * value ≤ 64 bytes) Redis finds each HMGET field by a scan of the whole
 * hash, and for a hash table it hashes and looks up 29 names where HGETALL
 * walks the ~22 present. redis-benchmark on one session's hash of 22
 * fields: HMGET costs 2.3× HGETALL as a listpack (docs/BENCHMARKS.md has
 * the hash-table case); a live list page asks for 100 of these. */
void hn_snap_append(hn_rcl *c, int64_t widget_id, const char *sid) {
    char key[HN_KEY_CAP];
    const char *argv[2] = {"HGETALL", key};
    size_t len[2] = {7, hn_key_sess(key, (uint64_t)widget_id, sid, strlen(sid))};
    hn_rcl_append_argv(c, 2, argv, len);
}

/* HN_SF_* of a field name, -1 for a field that is not in the snapshot (the
 * collector's "q"). hint: the index to try first (the one after the last
 * match: the collector writes some runs of fields in HN_SF_* order, and a
 * listpack keeps them so); a miss scans the names. */
static int sf_index(const char *name, size_t len, int hint) {
    if (hint < HN_SF__COUNT && hn_sf_len[hint] == len && memcmp(hn_sf_name[hint], name, len) == 0)
        return hint;
    for (int i = 0; i < HN_SF__COUNT; i++)
        if (hn_sf_len[i] == len && memcmp(hn_sf_name[i], name, len) == 0) return i;
    return -1;
}

bool hn_snap_fields(const redisReply *r, const char *f[HN_SF__COUNT]) {
    for (int i = 0; i < HN_SF__COUNT; i++) f[i] = NULL;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) return false;
    int hint = 0;
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *k = r->element[i], *v = r->element[i + 1];
        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        int j = sf_index(k->str, k->len, hint);
        if (j < 0) continue;
        f[j] = v->str;
        hint = j + 1;
    }
    return true;
}

const char *hn_snap_field(const redisReply *r, int field) {
    const char *f[HN_SF__COUNT];
    if (field < 0 || field >= HN_SF__COUNT) return NULL;
    hn_snap_fields(r, f);
    return f[field];
}

const char *hn_snap_status(const char *status, const char *last_seen, int64_t score_ms,
                           int64_t now_ms, const hn_config *cfg) {
    int64_t ls;
    if (score_ms < 0) return "gone";
    /* hidden, and no heartbeat since (heartbeats come only from visible tabs) */
    if (status && strcmp(status, "idle") == 0 && hn_parse_i64(last_seen, &ls) && ls >= score_ms)
        return "idle";
    if (score_ms < now_ms - cfg->active_s * 1000) return "idle";
    return "active";
}

const char *hn_snap_status_reply(const redisReply *r, int64_t score_ms, int64_t now_ms,
                                 const hn_config *cfg) {
    return hn_snap_status(hn_snap_field(r, HN_SF_STATUS), hn_snap_field(r, HN_SF_LAST_SEEN),
                          score_ms, now_ms, cfg);
}

/* The item's members after the times, in their order, each from one field. */
const hn_snap_member hn_snap_members[] = {
    {HN_SF_URL, "url", HN_SNAP_STR},
    {HN_SF_TITLE, "title", HN_SNAP_STR},
    {HN_SF_LANDING, "landing", HN_SNAP_STR},
    {HN_SF_REFERRER, "referrer", HN_SNAP_STR},
    {HN_SF_PAGEVIEWS, "page_views", HN_SNAP_COUNT},
    {HN_SF_ENGAGED_MS, "engaged_s", HN_SNAP_MS_AS_S},
    {HN_SF_IP, "ip", HN_SNAP_STR},
    {HN_SF_COUNTRY, "country", HN_SNAP_STR},
    {HN_SF_REGION, "region", HN_SNAP_STR},
    {HN_SF_CITY, "city", HN_SNAP_STR},
    {HN_SF_BROWSER, "browser", HN_SNAP_STR},
    {HN_SF_BROWSER_VERSION, "browser_version", HN_SNAP_STR},
    {HN_SF_OS, "os", HN_SNAP_STR},
    {HN_SF_OS_VERSION, "os_version", HN_SNAP_STR},
    {HN_SF_DEVICE, "device", HN_SNAP_STR},
    {HN_SF_VISITOR, "visitor", HN_SNAP_STR},
    {HN_SF_NAME, "name", HN_SNAP_STR},
    {HN_SF_EMAIL, "email", HN_SNAP_STR},
    {HN_SF_PHONE, "phone", HN_SNAP_STR},
    {HN_SF_HAS_CHATTED, "has_chatted", HN_SNAP_FLAG},
    {HN_SF_MESSAGES_SENT, "messages_sent", HN_SNAP_COUNT},
    /* Start Chat (docs/CHAT.md §4): the dashboard shows messages_sent +
     * agent_messages ("No messages yet" when both are 0) and the state */
    {HN_SF_CHAT, "chat_conversation", HN_SNAP_STR},
    {HN_SF_CHAT_STATE, "chat_state", HN_SNAP_STR},
    {HN_SF_AGENT_MESSAGES, "agent_messages", HN_SNAP_COUNT},
    {HN_SF_LANG, "language", HN_SNAP_STR},
    {HN_SF_SCREEN, "screen", HN_SNAP_STR},
};
const int hn_snap_nmembers = (int)HN_ARRAY_LEN(hn_snap_members);

void hn_snap_member_put(hn_buf *b, bool *first, const hn_snap_member *m, const char *v) {
    int64_t x;
    switch (m->kind) {
    case HN_SNAP_STR: hn_json_kstr(b, first, m->key, v); break;
    case HN_SNAP_COUNT: x = f_int(v); hn_json_kint(b, first, m->key, x < 0 ? 0 : x); break;
    case HN_SNAP_MS_AS_S: x = f_int(v); hn_json_kint(b, first, m->key, x < 0 ? 0 : x / 1000); break;
    case HN_SNAP_FLAG: hn_json_kbool(b, first, m->key, v && strcmp(v, "0") != 0); break;
    }
}

void hn_snap_item(hn_buf *b, bool *first, const char *sid, const char *const *f, int64_t score_ms,
                  int64_t now_ms, const hn_config *cfg) {
    int64_t started = f_int(f[HN_SF_STARTED]);
    hn_json_kstr(b, first, "session_id", sid);
    hn_json_kstr(b, first, "status",
                 hn_snap_status(f[HN_SF_STATUS], f[HN_SF_LAST_SEEN], score_ms, now_ms, cfg));
    if (score_ms >= 0)
        hn_json_ktime(b, first, "last_seen", score_ms);
    else if (f_int(f[HN_SF_LAST_SEEN]) >= 0)
        hn_json_ktime(b, first, "last_seen", f_int(f[HN_SF_LAST_SEEN]));
    else
        hn_json_knull(b, first, "last_seen");
    if (started >= 0) {
        hn_json_ktime(b, first, "started", started);
        hn_json_kint(b, first, "time_on_site_s", now_ms > started ? (now_ms - started) / 1000 : 0);
    } else {
        hn_json_knull(b, first, "started");
        hn_json_knull(b, first, "time_on_site_s");
    }
    for (int i = 0; i < hn_snap_nmembers; i++)
        hn_snap_member_put(b, first, &hn_snap_members[i], f[hn_snap_members[i].field]);
}

void hn_snap_item_reply(hn_buf *b, bool *first, const char *sid, const redisReply *r,
                        int64_t score_ms, int64_t now_ms, const hn_config *cfg) {
    const char *f[HN_SF__COUNT];
    hn_snap_fields(r, f);
    hn_snap_item(b, first, sid, f, score_ms, now_ms, cfg);
}
