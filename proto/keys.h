/*
 * keys.h: the Redis key contract (DESIGN §3, docs/PROTOCOL.md §9) — every
 * key name and session-hash field that the collector, the api, herenowctl
 * and the bench tools read or write is spelled here, once.
 *
 *   hn:widgets                 HASH    widget key → id (+ settings)
 *   hn:live:{w}                ZSET    session id → last-seen ms
 *   hn:ended:{w}               ZSET    session id → ms of its `end` (trimmer)
 *   hn:sess:{w}:<sid>          HASH    the session's snapshot (fields below)
 *   hn:chat:{w}                STREAM  agent → visitor chat events (docs/CHAT.md)
 *   hn:salt:<yyyymmdd>         STRING  the day's visitor-hash salt
 *   hn:stream:0                STREAM  records, when there is one shard (N = 1)
 *   hn:stream:{<n>.<k>}        STREAM  records, shard n of N >= 2 (k: below)
 *   hn:trim:lock               STRING  one trimmer at a time
 *   hn:bans:{w}                SET     the widget's bans (docs/RULES.md §5): v:<visitor>,
 *                                      e:<email> (tracking); c:v:…, c:e:… (chat only)
 *   hn:bans:widgets            HASH    widget id → its bans' version (HINCRBY per change)
 *   hn:bans:version            STRING  bumped on every ban change (collectors poll it)
 *   hn:annot:version           STRING  bumped on every note, tag or ban change (api caches)
 *   hn:vfirst:{w}:<visitor>    STRING  the visitor's first session id (rules: new/returning)
 *
 * Every key of one widget carries the hash tag {w}, so a widget lives on one
 * Redis Cluster slot. A stream shard's tag <n>.<k> puts shard n near the
 * centre (2n+1)*16384/(2N) of the n-th of N equal slot ranges (within
 * +-max(16384/(8N), 8) slots; k the smallest such), so N shards spread over
 * a cluster's masters like its slots do (docs/SCALING.md: N a multiple of the
 * masters). Every process with the same N names the same keys. Names of
 * another N, or untagged hn:stream:<n> of N >= 2, are legacy: only the
 * drain reads them, until they are empty (api/drain/legacy.c). The formatters write a NUL-terminated name into out
 * (HN_KEY_CAP bytes) and return its length; they are pure.
 */
#ifndef HN_KEYS_H
#define HN_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HN_KEY_CAP 112             /* any key below, with a 64-byte session id */

#define HN_KEY_WIDGETS       "hn:widgets"
#define HN_KEY_TRIM_LOCK     "hn:trim:lock"
#define HN_KEY_STREAM_PREFIX "hn:stream:"
#define HN_KEY_SESS_PREFIX   "hn:sess:{"
#define HN_KEY_LIVE_PREFIX   "hn:live:{"
#define HN_KEY_ENDED_PREFIX  "hn:ended:{"
#define HN_KEY_CHAT_PREFIX   "hn:chat:{"
#define HN_KEY_BANS_PREFIX   "hn:bans:{"
#define HN_KEY_BANS_WIDGETS  "hn:bans:widgets"
#define HN_KEY_BANS_VERSION  "hn:bans:version"
#define HN_KEY_ANNOT_VERSION "hn:annot:version"

size_t hn_key_live(char *out, uint64_t widget);
size_t hn_key_ended(char *out, uint64_t widget);
size_t hn_key_chat(char *out, uint64_t widget);
size_t hn_key_bans(char *out, uint64_t widget);
/* "hn:sess:{w}:" — what the trimmer prefixes to a session id */
size_t hn_key_sess_prefix(char *out, uint64_t widget);
/* sid: sidlen bytes (at most 64 are used) */
size_t hn_key_sess(char *out, uint64_t widget, const char *sid, size_t sidlen);
/* Shard `shard` of nshards (0 or 1: one shard, "hn:stream:0"); computes the
 * N's tags once per process (thread-safe; 1 ms for N = 64, 70 ms for 1024).
 * A shard >= nshards gets the untagged "hn:stream:<shard>" (a legacy name). */
size_t hn_key_stream(char *out, unsigned shard, unsigned nshards);
/* The k of shard's tag for nshards >= 2 (the search itself, uncached). */
uint32_t hn_key_stream_tag_k(unsigned shard, unsigned nshards);
/* The shard number n of any stream key name of either form ("hn:stream:3",
 * "hn:stream:{3.41}" → 3) whatever N wrote it; -1 when it is not one. */
int    hn_key_stream_shard(const char *key, size_t len);
/* Whether key is exactly this N's name of its shard (a current shard, not a
 * legacy one). */
bool   hn_key_stream_is_current(const char *key, size_t len, unsigned nshards);
size_t hn_key_salt(char *out, uint32_t yyyymmdd);
/* "hn:vfirst:{w}:<visitor>" (docs/RULES.md §2: SET NX of the first session
 * id); a visitor id longer than 64 bytes is written as its first 47 bytes,
 * '~' and 16 hex digits of its FNV-1a 64 */
size_t hn_key_vfirst(char *out, uint64_t widget, const char *visitor, size_t len);

/* The session's highest beacon number seen in a hash write (any beacon but a
 * heartbeat or an `end`): the collector's end script compares it with the
 * end's q, so an `end` that reaches Redis after a later beacon of the same
 * session (another thread or node flushed first) is ignored. Written by the
 * collector only; not part of the snapshot the api reads. */
#define HN_SESS_SEQ "q"

/* The q of the session's last applied `end`: written by the collector's end
 * script, removed by the api's deactivate. While the hash's HN_SESS_SEQ is
 * not above it, the session's latest way out of hn:live was that end (a
 * session back after it has written a higher q; a beacon sent before the
 * end but flushed after it, a lower one): the live hub's leave reason ("end"
 * rather than "gone") when it meets the session gone from hn:live before it
 * has read the end record (on a cluster the stream shard and the widget's
 * keys are on different nodes). */
#define HN_SESS_ENDED "ended"

/* The fields of hn:sess:{w}:<sid> (HN_SF_* indexes; the api reads them all
 * with HGETALL: api/live/snapshot.c). */
#define HN_SESS_FIELDS(X)                                                           \
    X(LAST_SEEN, "last_seen")     X(STATUS, "status")       X(STARTED, "started")     \
    X(LANDING, "landing")         X(REFERRER, "referrer")   X(URL, "url")             \
    X(TITLE, "title")             X(PAGEVIEWS, "pageviews") X(ENGAGED_MS, "engaged_ms") \
    X(IP, "ip")                   X(LANG, "lang")           X(SCREEN, "screen")       \
    X(COUNTRY, "country")         X(REGION, "region")       X(CITY, "city")           \
    X(BROWSER, "browser")         X(BROWSER_VERSION, "browser_version")               \
    X(OS, "os")                   X(OS_VERSION, "os_version") X(DEVICE, "device")     \
    X(VISITOR, "visitor")         X(NAME, "name")           X(EMAIL, "email")         \
    X(PHONE, "phone")             X(HAS_CHATTED, "has_chatted")                       \
    X(MESSAGES_SENT, "messages_sent") X(CHAT, "chat") X(CHAT_STATE, "chat_state")     \
    X(AGENT_MESSAGES, "agent_messages")

enum {
#define HN_SF_ENUM(id, name) HN_SF_##id,
    HN_SESS_FIELDS(HN_SF_ENUM)
#undef HN_SF_ENUM
    HN_SF__COUNT
};

/* hn_sf_name[HN_SF_URL] is "url"; hn_sf_len[...] its length. */
extern const char *const hn_sf_name[HN_SF__COUNT];
extern const uint8_t     hn_sf_len[HN_SF__COUNT];

#endif
