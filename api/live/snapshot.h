/*
 * snapshot.h: a session's snapshot (hn:sess:{w}:<sid>, docs/PROTOCOL.md §9)
 * as the JSON item of the live list — what the live hub sends in its
 * snapshot, enter and update events, and what the HTTP route "active
 * visitors" (api/routes_live.c) answers with: one spelling of both.
 *
 *   HGETALL hn:sess:{w}:<sid>                   hn_snap_append
 *     → reply, f[HN_SF_*] as strings             hn_snap_fields, hn_snap_field
 *     + the hn:live score, now                   (the caller's)
 *     → session_id, status, last_seen, started, time_on_site_s,
 *       url, title, … (docs/API.md, active visitors)   hn_snap_item
 *
 * Items are written as members into the caller's hn_buf (common/json.h:
 * *first handles the comma, the braces are the caller's). Strings handed
 * in are only read during the call. Pure, apart from hn_snap_append, which
 * only appends to a pipeline.
 */
#ifndef HN_SNAPSHOT_H
#define HN_SNAPSHOT_H

#include "common/buf.h"
#include "common/config.h"
#include "common/rcl.h"
#include "proto/keys.h"

/* Appends "HGETALL hn:sess:{w}:<sid>" to c's pipeline; the reply is read
 * by the caller (an empty array when the hash is gone). */
void hn_snap_append(hn_rcl *c, int64_t widget_id, const char *sid);
/* Every field of that reply at once: f[HN_SF_*], NULL when absent (fields
 * that are not HN_SF_*, such as the collector's "q", are skipped; a name
 * twice, which a Redis hash cannot hold, keeps the last); valid while r
 * is. false (f all NULL) when r is not an array. */
bool hn_snap_fields(const redisReply *r, const char *f[HN_SF__COUNT]);
/* One field of that reply (hn_snap_fields each time: for a reply read once). */
const char *hn_snap_field(const redisReply *r, int field);

/* The status ("active", "idle", "gone") by PROTOCOL §9's reader rule, from
 * the snapshot's status and last_seen fields (NULL: absent) and the
 * session's hn:live score (score_ms -1: not live). A string literal. */
const char *hn_snap_status(const char *status, const char *last_seen, int64_t score_ms,
                           int64_t now_ms, const hn_config *cfg);
/* The same from an HGETALL reply. */
const char *hn_snap_status_reply(const redisReply *r, int64_t score_ms, int64_t now_ms,
                                 const hn_config *cfg);

/* The item's members from the fields as strings (f[HN_SF_*], NULL: absent;
 * what the live hub keeps per session). score_ms: the hn:live score (-1:
 * not live). */
void hn_snap_item(hn_buf *b, bool *first, const char *sid, const char *const *f, int64_t score_ms,
                  int64_t now_ms, const hn_config *cfg);
/* The same item from an HGETALL reply. */
void hn_snap_item_reply(hn_buf *b, bool *first, const char *sid, const redisReply *r,
                        int64_t score_ms, int64_t now_ms, const hn_config *cfg);

/* The item's members that come from one snapshot field each (url, title,
 * …, screen; not the times and the status), in the item's order: the live
 * stream's updates send the ones that changed. */
typedef enum { HN_SNAP_STR, HN_SNAP_COUNT, HN_SNAP_MS_AS_S, HN_SNAP_FLAG } hn_snap_kind;
typedef struct hn_snap_member {
    int          field;      /* HN_SF_* */
    const char  *key;
    hn_snap_kind kind;
} hn_snap_member;
extern const hn_snap_member hn_snap_members[];
extern const int            hn_snap_nmembers;
/* The member m with the field's value v (NULL: absent → null, or 0/false). */
void hn_snap_member_put(hn_buf *b, bool *first, const hn_snap_member *m, const char *v);

#endif
