/*
 * beacon_internal.h: what the two wire forms share, inside proto/ only.
 * beacon.c owns all of it; query.c fills a draft from a query string and
 * hands it to the same hn_draft_validate() as the msgpack form.
 */
#ifndef HN_BEACON_INTERNAL_H
#define HN_BEACON_INTERNAL_H

#include "proto/beacon.h"

enum {
    K_V, K_K, K_S, K_T, K_Q, K_U, K_TI, K_R, K_N, K_D, K_E, K_TS, K_SW, K_SH,
    K_L, K_VID, K_NM, K_EM, K_PH, K_UA, K_IP, K_WD, K_X, K_CI, K__COUNT
};

enum { KIND_UINT, KIND_STR, KIND_PROPS };

/* One known key; hn_keys[] is indexed by K_*. */
typedef struct hn_key {
    const char *name;
    uint8_t     namelen;
    uint8_t     kind;
    uint16_t    max;         /* KIND_STR: bytes; 0 = no length check (t) */
    uint16_t    off;         /* KIND_STR: offset of the hn_str in hn_beacon */
} hn_key;

extern const hn_key hn_keys[K__COUNT];

/* The K_* of the key p[0..len), or -1. */
int hn_key_find(const char *p, size_t len);

static inline hn_str *str_at(hn_beacon *b, int k) {
    return (hn_str *)((char *)b + hn_keys[k].off);
}

/* What one wire form found, before validation. */
typedef struct hn_draft {
    hn_beacon *b;
    uint32_t   have;               /* 1u << K_*: numeric key present */
    uint64_t   num[K__COUNT];
    char       msg[128];           /* why, when the reason is not OK */
} hn_draft;

static inline bool draft_present(const hn_draft *dr, int k) {
    return hn_keys[k].kind == KIND_UINT ? (dr->have >> k) & 1u
                                        : hn_keys[k].kind == KIND_STR && str_at(dr->b, k)->len > 0;
}

/* Clears the draft and b (all but b's props, which nprops guards). */
void      hn_draft_init(hn_draft *dr, hn_beacon *b);
/* Writes the message into dr->msg and returns r. */
hn_reason hn_draft_reject(hn_draft *dr, hn_reason r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Judges a draft and completes its beacon (type, numbers, presence bits). */
hn_reason hn_draft_validate(hn_draft *dr);

/* Adds p to b's properties, replacing an entry with the same key (the last
 * one wins, as for top-level keys). False when b already has the maximum. */
bool hn_prop_put(hn_beacon *b, const hn_prop *p);

/* Verdicts into an hn_batch: reset before decoding; fail rejects the whole
 * input (n = 0); set records beacon i's reason and returns 1 if accepted. */
void hn_batch_reset(hn_batch *out);
void hn_batch_fail(hn_batch *out, hn_reason r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int  hn_batch_set(hn_batch *out, int i, hn_reason r, const hn_draft *dr);

#endif
