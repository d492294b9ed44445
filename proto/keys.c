/* keys.c: the Redis key names of keys.h. */
#include "proto/keys.h"

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

size_t hn_key_stream(char *out, unsigned shard) {
    return fmt(snprintf(out, HN_KEY_CAP, HN_KEY_STREAM_PREFIX "%u", shard));
}

int hn_key_stream_shard(const char *key, size_t len) {
    size_t pl = sizeof(HN_KEY_STREAM_PREFIX) - 1;
    if (len <= pl || len > pl + 9 || memcmp(key, HN_KEY_STREAM_PREFIX, pl) != 0) return -1;
    int v = 0;
    for (size_t i = pl; i < len; i++) {
        if (key[i] < '0' || key[i] > '9') return -1;
        v = v * 10 + (key[i] - '0');
    }
    return v;
}

size_t hn_key_salt(char *out, uint32_t yyyymmdd) {
    return fmt(snprintf(out, HN_KEY_CAP, "hn:salt:%08u", (unsigned)yyyymmdd));
}

size_t hn_key_vfirst(char *out, uint64_t widget, const char *visitor, size_t len) {
    return fmt(snprintf(out, HN_KEY_CAP, "hn:vfirst:{%llu}:%.*s", (unsigned long long)widget,
                        (int)(len > 64 ? 64 : len), visitor));
}
