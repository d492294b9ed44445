/* rslot.c: see rslot.h. A table-driven CRC16-XMODEM (one lookup a byte). */
#include "common/rslot.h"

#include <string.h>

static uint16_t table[256];
static int      ready;

static void build(void) {
    for (int i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)(i << 8);
        for (int k = 0; k < 8; k++) c = (uint16_t)(c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1);
        table[i] = c;
    }
    __atomic_store_n(&ready, 1, __ATOMIC_RELEASE);
}

uint16_t hn_crc16(const char *p, size_t len) {
    if (!__atomic_load_n(&ready, __ATOMIC_ACQUIRE)) build();    /* idempotent: a race builds it twice */
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) crc = (uint16_t)((crc << 8) ^ table[((crc >> 8) ^ (unsigned char)p[i]) & 0xff]);
    return crc;
}

uint16_t hn_slot(const char *key, size_t len) {
    const char *open = memchr(key, '{', len);
    if (open) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = memchr(open + 1, '}', rest);
        if (close && close > open + 1) return hn_crc16(open + 1, (size_t)(close - open - 1)) & (HN_SLOTS - 1);
    }
    return hn_crc16(key, len) & (HN_SLOTS - 1);
}
