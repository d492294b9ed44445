/* keys.c: the Redis key names of keys.h. */
#include "proto/keys.h"

#include "common/hn.h"
#include "common/rslot.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

const char *const hn_sf_name[HN_SF__COUNT] = {
#define HN_SF_NAME(id, name) [HN_SF_##id] = name,
    HN_SESS_FIELDS(HN_SF_NAME)
#undef HN_SF_NAME
};

const uint8_t hn_sf_len[HN_SF__COUNT] = {
#define HN_SF_LEN(id, name) [HN_SF_##id] = sizeof(name) - 1,
    HN_SESS_FIELDS(HN_SF_LEN)
#undef HN_SF_LEN
};

static size_t fmt(int n) {
    return n < 0 ? 0 : (size_t)n < HN_KEY_CAP ? (size_t)n : HN_KEY_CAP - 1;
}

size_t hn_key_live(char *out, uint64_t widget) {
    return fmt(snprintf(out, HN_KEY_CAP, HN_KEY_LIVE_PREFIX "%llu}",
                             (unsigned long long)widget));
}

size_t hn_key_ended(char *out, uint64_t widget) {
    return fmt(snprintf(out, HN_KEY_CAP, HN_KEY_ENDED_PREFIX "%llu}",
                             (unsigned long long)widget));
}

size_t hn_key_chat(char *out, uint64_t widget) {
    return fmt(snprintf(out, HN_KEY_CAP, HN_KEY_CHAT_PREFIX "%llu}",
                             (unsigned long long)widget));
}

size_t hn_key_bans(char *out, uint64_t widget) {
    return fmt(snprintf(out, HN_KEY_CAP, HN_KEY_BANS_PREFIX "%llu}", (unsigned long long)widget));
}

size_t hn_key_sess_prefix(char *out, uint64_t widget) {
    return fmt(snprintf(out, HN_KEY_CAP, HN_KEY_SESS_PREFIX "%llu}:",
                             (unsigned long long)widget));
}

size_t hn_key_sess(char *out, uint64_t widget, const char *sid, size_t sidlen) {
    return fmt(snprintf(out, HN_KEY_CAP, HN_KEY_SESS_PREFIX "%llu}:%.*s",
                             (unsigned long long)widget, (int)(sidlen > 64 ? 64 : sidlen), sid));
}

/* ---- stream shards ---------------------------------------------------------------------
 *
 * N = 1: "hn:stream:0". N >= 2: "hn:stream:{<n>.<k>}", k the smallest integer
 * whose tag's slot lies within +-max(16384/(8N), 8) of the centre
 * (2n+1)*16384/(2N) of the n-th of N equal slot ranges. The k of every shard
 * of an N is searched once per process: a table per N, in a list that only
 * grows (published with a release store, read lock-free; a writer holds mu),
 * so that the collector's flush pays a lookup, not a search. */

typedef struct ktab {
    struct ktab *next;
    unsigned     nshards;
    uint32_t     k[];                /* nshards entries */
} ktab;

static _Atomic(ktab *)  ktabs;
static pthread_mutex_t  ktabs_mu = PTHREAD_MUTEX_INITIALIZER;

uint32_t hn_key_stream_tag_k(unsigned shard, unsigned nshards) {
    unsigned n = nshards < 2 ? 2 : nshards;
    long centre = (long)(2 * (uint64_t)shard + 1) * HN_SLOTS / (2 * (long)n);
    long win = HN_SLOTS / (8 * (long)n);
    if (win < 8) win = 8;
    char tag[32];
    /* CRC16 is a hash: 17 slots in 16384 are hit within a few thousand k
     * (the unit test checks k < 10000 for N <= 64); the bound only keeps a
     * broken hash from looping, then k = 0 (still a valid, parseable name) */
    for (uint32_t k = 0; k < 100000000u; k++) {
        int len = snprintf(tag, sizeof(tag), "%u.%u", shard, k);
        long d = (long)hn_crc16(tag, (size_t)len) % HN_SLOTS - centre;
        if (d >= -win && d <= win) return k;
    }
    return 0;
}

static const ktab *ktab_get(unsigned nshards) {
    for (const ktab *t = atomic_load_explicit(&ktabs, memory_order_acquire); t; t = t->next)
        if (t->nshards == nshards) return t;
    pthread_mutex_lock(&ktabs_mu);
    ktab *t = atomic_load_explicit(&ktabs, memory_order_relaxed);
    for (; t; t = t->next)
        if (t->nshards == nshards) break;
    if (t == NULL) {
        t = hn_xcalloc(1, sizeof(*t) + nshards * sizeof(uint32_t));
        t->nshards = nshards;
        for (unsigned s = 0; s < nshards; s++) t->k[s] = hn_key_stream_tag_k(s, nshards);
        t->next = atomic_load_explicit(&ktabs, memory_order_relaxed);
        atomic_store_explicit(&ktabs, t, memory_order_release);
    }
    pthread_mutex_unlock(&ktabs_mu);
    return t;
}

size_t hn_key_stream(char *out, unsigned shard, unsigned nshards) {
    if (nshards < 2 || shard >= nshards)  /* shard >= nshards: a caller's bug; a legacy-style name */
        return fmt(snprintf(out, HN_KEY_CAP, HN_KEY_STREAM_PREFIX "%u", shard));
    return fmt(snprintf(out, HN_KEY_CAP, HN_KEY_STREAM_PREFIX "{%u.%u}", shard,
                        (unsigned)ktab_get(nshards)->k[shard]));
}

/* Digits [p, e) as a number below 10^9; -1 when not that. */
static long digits(const char *p, const char *e) {
    if (p >= e || e - p > 9) return -1;
    long v = 0;
    for (; p < e; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

int hn_key_stream_shard(const char *key, size_t len) {
    size_t pl = sizeof(HN_KEY_STREAM_PREFIX) - 1;
    if (len <= pl || memcmp(key, HN_KEY_STREAM_PREFIX, pl) != 0) return -1;
    const char *p = key + pl, *e = key + len;
    if (*p != '{') return (int)digits(p, e);
    /* {<n>.<k>} */
    if (e[-1] != '}') return -1;
    const char *dot = memchr(p + 1, '.', (size_t)(e - 1 - (p + 1)));
    if (dot == NULL || digits(dot + 1, e - 1) < 0) return -1;
    return (int)digits(p + 1, dot);
}

bool hn_key_stream_is_current(const char *key, size_t len, unsigned nshards) {
    int s = hn_key_stream_shard(key, len);
    if (s < 0 || (unsigned)s >= (nshards ? nshards : 1)) return false;
    char name[HN_KEY_CAP];
    size_t n = hn_key_stream(name, (unsigned)s, nshards);
    return n == len && memcmp(name, key, len) == 0;
}

size_t hn_key_salt(char *out, uint32_t yyyymmdd) {
    return fmt(snprintf(out, HN_KEY_CAP, "hn:salt:%08u", (unsigned)yyyymmdd));
}

size_t hn_key_vfirst(char *out, uint64_t widget, const char *visitor, size_t len) {
    if (len <= 64)
        return fmt(snprintf(out, HN_KEY_CAP, "hn:vfirst:{%llu}:%.*s", (unsigned long long)widget, (int)len,
                            visitor));
    /* a longer id (up to 128 bytes): its first 47 bytes, '~' and the
     * FNV-1a 64 of all of it — 64 bytes, and two ids that share their first
     * 64 do not share a mark */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)visitor[i]) * 0x100000001b3ull;
    return fmt(snprintf(out, HN_KEY_CAP, "hn:vfirst:{%llu}:%.47s~%016llx", (unsigned long long)widget, visitor,
                        (unsigned long long)h));
}
