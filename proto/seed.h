/*
 * seed.h: the seed's public tracking routes' wire form (DESIGN §12,
 * docs/API.md "Public tracking routes"): one JSON object per request,
 * decoded into one hn_beacon, the same as the msgpack and query forms.
 *
 *   track-session   {session_id, current_page_url, heartbeat?, …}  → pv, or hb
 *   track-pageview  {session_id, page_url, time_on_previous_page?, …} → pv
 *   track-event     {session_id, event_type, event_data?, page_url?} → ev
 *
 * Each name is accepted in the seed's snake_case and in camelCase. The
 * widget key comes from the path. Browser, OS, device, IP and location are
 * never read from the body (an `ip` or `user_agent` in it is an unknown
 * member: ignored); nor is visitor_fingerprint used (docs/PROTOCOL.md
 * "Seed-compatible JSON").
 */
#ifndef HN_SEED_H
#define HN_SEED_H

#include "proto/beacon.h"

typedef enum hn_seed_route {
    HN_SEED_NONE = 0,
    HN_SEED_SESSION,        /* …/track-session */
    HN_SEED_PAGEVIEW,       /* …/track-pageview */
    HN_SEED_EVENT,          /* …/track-event */
} hn_seed_route;

/* The route named by the last segment of a path ("track-session", …). */
hn_seed_route hn_seed_route_parse(const char *seg, size_t len);

/* A session_id shorter than the protocol's 8 characters gets this prefix. */
#define HN_SEED_SID_PREFIX "seed-sid-"

/* Decodes body[0..len) of route rt for the widget key `key` into out (n = 1
 * with its reason, or n = 0 and out->all = HN_R_MALFORMED when the body is
 * not JSON / HN_R_NOT_MAP when it is not an object / HN_R_TOO_LARGE). q is
 * made from now_ms (the seed sends none: docs/PROTOCOL.md). Decoded strings
 * go into scratch (cap >= len + 64 is always enough). *field: the seed's name
 * of the member a rejected beacon failed on ("session_id", "widgetKey" for
 * the key), else NULL; out->err says why, in the seed's names. Returns the
 * number of accepted beacons (0 or 1). */
int hn_beacon_decode_seed(hn_batch *out, hn_seed_route rt, hn_str key, const char *body,
                          size_t len, char *scratch, size_t cap, uint64_t now_ms,
                          const char **field);

#endif
