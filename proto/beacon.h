/*
 * beacon.h: beacon protocol v1 (docs/PROTOCOL.md), decoded into hn_beacon.
 *
 * Two wire forms decode into the same struct:
 *   - msgpack: one map, or an array of 1..HN_BATCH_MAX maps (UDP datagram or
 *     HTTP POST body);
 *   - the pixel's query string (k=...&s=...&t=pv...), one beacon.
 *
 * Decoding is pure: no I/O, no global state. Every hn_str in a decoded beacon
 * points into the input buffer (msgpack) or into the caller's scratch buffer
 * (query string, which needs percent-decoding), so the beacon is valid only
 * while that buffer is. Each beacon of a batch is validated on its own: one
 * bad beacon rejects only itself.
 *
 * The rest of the protocol's API is in the headers included below, so one
 * include gives all of it: proto/mpcheck.h (hn_decoder), proto/query.h (the
 * query-string form), common/utf8.h.
 */
#ifndef HN_BEACON_H
#define HN_BEACON_H

#include "common/hn.h"
#include "proto/mpcheck.h"
#include "proto/query.h"
#include "common/utf8.h"

#include <msgpack.h>

#define HN_PROTO_VERSION   1
#define HN_BATCH_MAX       32      /* beacons in one datagram / body */
#define HN_PROPS_MAX       32      /* entries of the event property map d */
#define HN_UDP_MAX         8192    /* bytes in one UDP datagram */
#define HN_HTTP_BODY_MAX   65536   /* bytes in one HTTP body */
#define HN_CHAT_TEXT_MAX   2000    /* characters (code points) of a chat text x */

typedef enum hn_btype {
    HN_T_NONE = 0,
    HN_T_PV,      /* "pv"   page view */
    HN_T_HB,      /* "hb"   heartbeat */
    HN_T_EV,      /* "ev"   custom event */
    HN_T_HIDE,    /* "hide" tab hidden */
    HN_T_SHOW,    /* "show" tab visible again */
    HN_T_END,     /* "end"  page left */
    HN_T_ID,      /* "id"   identify */
    HN_T_MSG,     /* "msg"  a visitor's chat message (docs/CHAT.md) */
    HN_T__COUNT
} hn_btype;

/* Why a beacon (or a whole input) was rejected. The names (hn_reason_name)
 * are the `reason` label of herenow_beacons_dropped_total, so they are part
 * of the metrics contract: add new ones at the end, never rename. Reasons
 * that the decoder never returns (unknown_widget, ...) live here too so that
 * every drop in the system has one table of names. */
typedef enum hn_reason {
    HN_R_OK = 0,
    HN_R_MALFORMED,        /* not msgpack, truncated, trailing bytes, bad percent-encoding */
    HN_R_NOT_MAP,          /* top level (or batch element) is not a map */
    HN_R_BATCH_TOO_LARGE,  /* array of more than HN_BATCH_MAX, or empty array */
    HN_R_BAD_VERSION,      /* v missing is HN_R_MISSING_FIELD; v != 1 is this */
    HN_R_MISSING_FIELD,    /* a required key is absent */
    HN_R_BAD_TYPE,         /* a key's value has the wrong msgpack type */
    HN_R_TOO_LONG,         /* a string or map over its limit */
    HN_R_BAD_VALUE,        /* right type, invalid content (sid chars, unknown t, q=0, ...) */
    HN_R_BAD_UTF8,         /* a string that is not valid UTF-8 */
    HN_R_TOO_LARGE,        /* datagram / body over its size limit (set by the transport) */
    HN_R_UNKNOWN_WIDGET,   /* k does not name a widget (set by the collector) */
    HN_R_REDIS_UNAVAILABLE,/* accepted-path store unreachable and no spool (collector) */
    HN_R_RATE_LIMITED,
    HN_R_BOT,
    HN_R_OPTED_OUT,
    HN_R_SPOOL_FULL,
    HN_R_CHAT_RATE_LIMITED,/* a session's chat messages (t=msg) over HERENOW_CHAT_MSG_PER_MIN */
    HN_R_BANNED,           /* the visitor is banned on the widget (docs/RULES.md §5) */
    HN_R__COUNT
} hn_reason;

const char *hn_reason_name(hn_reason r);

typedef enum hn_ptype {
    HN_P_STR = 1,
    HN_P_INT,      /* signed 64-bit (msgpack negative or positive int that fits) */
    HN_P_UINT,     /* unsigned above INT64_MAX */
    HN_P_FLOAT,
    HN_P_BOOL
} hn_ptype;

typedef struct hn_prop {
    hn_str  key;           /* 1..64 bytes, UTF-8 */
    uint8_t type;          /* hn_ptype */
    union {
        hn_str   s;        /* <= 256 bytes, UTF-8 */
        int64_t  i;
        uint64_t u;
        double   f;
        bool     b;
    } v;
} hn_prop;

/* Presence bits for the optional numeric fields. */
#define HN_F_E   (1u << 0)
#define HN_F_TS  (1u << 1)
#define HN_F_SW  (1u << 2)
#define HN_F_SH  (1u << 3)
#define HN_F_WD  (1u << 4)    /* wd: the browser reports navigator.webdriver (a bot) */
#define HN_F_SEED (1u << 5)   /* from the seed's JSON routes (proto/seed.h): q is made from
                               * the clock, no beacon is the session's first (q = 1) */

typedef struct hn_beacon {
    uint8_t  type;         /* hn_btype */
    uint32_t fields;       /* HN_F_* presence of e, ts, sw, sh */
    hn_str   t;            /* the type as sent ("pv", ...) */
    hn_str   k;            /* widget key, 1..64 */
    hn_str   s;            /* session id, 8..64 of [A-Za-z0-9_-] */
    uint64_t q;            /* sequence number, >= 1 */
    hn_str   u;            /* page URL <= 2048 (required for pv) */
    hn_str   ti;           /* title <= 512 */
    hn_str   r;            /* referrer <= 2048 */
    hn_str   n;            /* event name <= 64 (required for ev) */
    uint64_t e;            /* engaged ms */
    uint64_t ts;           /* client clock ms */
    uint32_t sw, sh;       /* screen */
    hn_str   l;            /* language tag <= 35 */
    hn_str   vid;          /* persistent visitor id <= 64 */
    hn_str   nm, em, ph;   /* identify: name <= 255, email <= 255, phone <= 50 */
    hn_str   ua, ip;       /* only meaningful from trusted relays: the caller decides */
    hn_str   x;            /* chat text (t=msg, required): 1..2000 characters */
    hn_str   ci;           /* conversation id, a UUID (t=msg, t=ev); else dropped */
                           /* wd (navigator.webdriver) is the HN_F_WD bit of fields */
    uint8_t  nprops;
    hn_prop  props[HN_PROPS_MAX];   /* d */
} hn_beacon;

/* The result of decoding one input. n is the number of beacons the input
 * held (1 for a bare map); reason[i] is HN_R_OK or why beacon i was
 * rejected. When the input as a whole is unusable (garbage, truncated,
 * array over 32, ...) n is 0 and `all` holds the reason. err holds a
 * one-line human readable text for the first rejection (for an HTTP 400),
 * e.g. "beacon 2: missing required key 's'". */
typedef struct hn_batch {
    int       n;
    hn_reason all;
    uint8_t   reason[HN_BATCH_MAX];
    char      err[160];
    hn_beacon b[HN_BATCH_MAX];
} hn_batch;

/* Decodes a msgpack input (len <= HN_HTTP_BODY_MAX; larger inputs are
 * HN_R_TOO_LARGE). Returns the number of accepted beacons (>= 0). The
 * beacons' strings point into buf, which must outlive the use of out. */
int hn_beacon_decode_msgpack(hn_decoder *d, hn_batch *out, const char *buf, size_t len);

/* One entry of d, from or to msgpack; shared by beacons and records.
 * hn_prop_from_object: HN_R_BAD_TYPE unless key is str and val is str, int,
 * float or bool (no limits checked here). Strings point into the buffer. */
hn_reason hn_prop_from_object(hn_prop *p, const msgpack_object *key, const msgpack_object *val);
void      hn_prop_pack(msgpack_packer *pk, const hn_prop *p);

/* Writes one beacon as a msgpack map (for senders: herenowctl, the load
 * generator, tests). Only set fields are written: v=1 always, t as b->t or
 * else the name of b->type, q when >= 1, strings when non-empty, e/ts/sw/sh
 * when flagged in b->fields, d when nprops > 0; so that decoding the bytes
 * gives back b. */
void hn_beacon_pack(msgpack_packer *pk, const hn_beacon *b);

/* Chat text rules (docs/CHAT.md §3), shared with the api's chat routes:
 * HN_R_OK, or HN_R_BAD_VALUE with a reason ("empty", "too long",
 * "control character") / HN_R_BAD_UTF8 ("not valid UTF-8") in *why. */
hn_reason hn_chat_text_check(const char *p, size_t len, const char **why);
/* true when s is a UUID in its 36-character text form (any case). */
bool hn_uuid_text_ok(hn_str s);

/* Maps "pv" → HN_T_PV etc.; HN_T_NONE when unknown. */
hn_btype    hn_btype_parse(hn_str t);
const char *hn_btype_name(hn_btype t);

#endif
