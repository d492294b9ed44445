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

/* Formatted here (RESP, common/buf.h) rather than by hiredis' argv
 * formatter: that one prints each of the ~30 arguments with sdscatfmt, and
 * a live list page asks for 100 of these. */
void hn_snap_append(hn_rcl *c, int64_t widget_id, const char *sid) {
    char key[HN_KEY_CAP];
    size_t klen = hn_key_sess(key, (uint64_t)widget_id, sid, strlen(sid));
    hn_buf b = {0};
    hn_buf_init(&b, 640 + klen);
    hn_resp_cmd(&b, 2 + HN_SF__COUNT);
    hn_resp_arg(&b, "HMGET", 5);
    hn_resp_arg(&b, key, klen);
    for (int i = 0; i < HN_SF__COUNT; i++) hn_resp_arg(&b, hn_sf_name[i], hn_sf_len[i]);
    hn_rcl_append_formatted(c, b.p, b.len);
    hn_buf_free(&b);
}

const char *hn_snap_field(const redisReply *r, int field) {
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || (size_t)field >= r->elements) return NULL;
    const redisReply *e = r->element[field];
    return e->type == REDIS_REPLY_STRING ? e->str : NULL;
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
    for (int i = 0; i < HN_SF__COUNT; i++) f[i] = hn_snap_field(r, i);
    hn_snap_item(b, first, sid, f, score_ms, now_ms, cfg);
}
