/* vhash.c: see vhash.h. */
#include "collector/vhash.h"
#include "common/pct.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

static const char hexdigits[] = "0123456789abcdef";

static void to_hex(char *out, const uint8_t *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdigits[b[i] >> 4];
        out[2 * i + 1] = hexdigits[b[i] & 15];
    }
    out[2 * n] = '\0';
}


/* Days since 1970-01-01 → civil date: Howard Hinnant's days_from_civil
 * inverse ("chrono-Compatible Low-Level Date Algorithms"), pure arithmetic
 * instead of gmtime_r on the hot path. */
uint32_t hn_utc_day(uint64_t unix_ms) {
    uint64_t z = unix_ms / HN_DAY_MS + 719468;
    uint64_t era = z / 146097;
    uint64_t doe = z - era * 146097;                                   /* [0, 146096] */
    uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;   /* [0, 399] */
    uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);             /* [0, 365] */
    uint64_t mp = (5 * doy + 2) / 153;                                  /* [0, 11], from March */
    uint64_t d = doy - (153 * mp + 2) / 5 + 1;
    uint64_t m = mp < 10 ? mp + 3 : mp - 9;
    uint64_t y = yoe + era * 400 + (m <= 2);
    return (uint32_t)(y * 10000 + m * 100 + d);
}

int hn_salt_new_hex(char out[2 * HN_SALT_LEN + 1]) {
    uint8_t b[HN_SALT_LEN];
    out[0] = '\0';
    if (RAND_bytes(b, sizeof(b)) != 1) return HN_ERR;
    to_hex(out, b, sizeof(b));
    OPENSSL_cleanse(b, sizeof(b));
    return HN_OK;
}

int hn_salt_from_hex(hn_salt *s, uint32_t day, const char *hex, size_t len) {
    uint8_t key[HN_SALT_LEN];
    if (len != 2 * HN_SALT_LEN) return HN_ERR;
    for (size_t i = 0; i < HN_SALT_LEN; i++) {
        int hi = hn_hexval((unsigned char)hex[2 * i]), lo = hn_hexval((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return HN_ERR;
        key[i] = (uint8_t)(hi << 4 | lo);
    }
    s->day = day;
    memcpy(s->key, key, sizeof(key));
    OPENSSL_cleanse(key, sizeof(key));
    return HN_OK;
}

/* --- the holder: a seqlock ---------------------------------------------
 *
 * seq is odd while a setter writes. A reader loads seq (acquire), copies
 * the slots with relaxed atomic loads, fences (acquire) and loads seq
 * again: unchanged and even means the copy is one whole set. Every shared
 * word is an atomic, so the retried racy copies are not data races in the
 * C11 sense (nor for ThreadSanitizer). */

#define KEY_WORDS (HN_SALT_LEN / 8)

struct hn_salt_holder {
    _Atomic uint32_t seq;
    _Atomic uint32_t day[HN_SALT_HOLDER_MAX];          /* 0: empty slot */
    _Atomic uint64_t key[HN_SALT_HOLDER_MAX][KEY_WORDS];
};

hn_salt_holder *hn_salt_holder_create(void) {
    hn_salt_holder *h = hn_xcalloc(1, sizeof(*h));
    atomic_init(&h->seq, 0);
    for (size_t i = 0; i < HN_SALT_HOLDER_MAX; i++) {
        atomic_init(&h->day[i], 0);
        for (size_t w = 0; w < KEY_WORDS; w++) atomic_init(&h->key[i][w], 0);
    }
    return h;
}

void hn_salt_holder_destroy(hn_salt_holder *h) {
    if (h == NULL) return;
    OPENSSL_cleanse(h, sizeof(*h));
    free(h);
}

void hn_salt_holder_set(hn_salt_holder *h, const hn_salt *s, size_t n) {
    /* take the write side: seq even → odd */
    uint32_t seq = atomic_load_explicit(&h->seq, memory_order_relaxed);
    for (;;) {
        if ((seq & 1) == 0 &&
            atomic_compare_exchange_weak_explicit(&h->seq, &seq, seq + 1, memory_order_acquire,
                                                  memory_order_relaxed))
            break;
        seq = atomic_load_explicit(&h->seq, memory_order_relaxed);
    }
    atomic_thread_fence(memory_order_release);

    size_t k = 0;
    for (size_t i = 0; i < n && k < HN_SALT_HOLDER_MAX; i++) {
        if (s[i].day == 0) continue;
        bool dup = false;
        for (size_t j = 0; j < i; j++) dup |= s[j].day == s[i].day;
        if (dup) continue;
        for (size_t w = 0; w < KEY_WORDS; w++) {
            uint64_t v;
            memcpy(&v, s[i].key + 8 * w, 8);
            atomic_store_explicit(&h->key[k][w], v, memory_order_relaxed);
        }
        atomic_store_explicit(&h->day[k], s[i].day, memory_order_relaxed);
        k++;
    }
    for (; k < HN_SALT_HOLDER_MAX; k++) {
        atomic_store_explicit(&h->day[k], 0, memory_order_relaxed);
        for (size_t w = 0; w < KEY_WORDS; w++)
            atomic_store_explicit(&h->key[k][w], 0, memory_order_relaxed);
    }
    atomic_store_explicit(&h->seq, seq + 2, memory_order_release);
}

bool hn_salt_holder_get(const hn_salt_holder *h, uint32_t day, hn_salt *out) {
    if (h == NULL || day == 0) return false;
    /* the atomics are read-only here; C11 wants non-const pointers */
    hn_salt_holder *m = (hn_salt_holder *)h;
    for (unsigned spins = 0;; spins++) {
        /* a setter preempted half-way keeps seq odd: let it run */
        if (spins >= 64) sched_yield();
        uint32_t s1 = atomic_load_explicit(&m->seq, memory_order_acquire);
        if (s1 & 1) continue;
        bool found = false;
        uint64_t key[KEY_WORDS];
        for (size_t i = 0; i < HN_SALT_HOLDER_MAX && !found; i++) {
            if (atomic_load_explicit(&m->day[i], memory_order_relaxed) != day) continue;
            for (size_t w = 0; w < KEY_WORDS; w++)
                key[w] = atomic_load_explicit(&m->key[i][w], memory_order_relaxed);
            found = true;
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&m->seq, memory_order_relaxed) != s1) continue;
        if (found && out) {
            out->day = day;
            memcpy(out->key, key, sizeof(out->key));
        }
        return found;
    }
}

bool hn_salt_holder_has(const hn_salt_holder *h, uint32_t day) {
    return hn_salt_holder_get(h, day, NULL);
}

bool hn_salt_holder_at(const hn_salt_holder *h, uint64_t unix_ms, hn_salt *out) {
    return hn_salt_holder_get(h, hn_utc_day(unix_ms), out);
}

/* --- the hash ----------------------------------------------------------
 *
 * OpenSSL 3.0's one-shot HMAC() fetches the algorithm and builds and frees
 * a context on every call (13 allocations, ≈1.2 µs here). A context kept
 * per thread and keyed once per salt costs 2 allocations per call (the
 * digest-state copies inside OpenSSL's HMAC, which 3.0 cannot avoid) and
 * ≈0.3 µs. The context lives in thread-specific data so that a worker
 * thread's exit frees it. */

typedef struct vh_thread {
    EVP_MAC_CTX *ctx;
    bool         keyed;
    uint8_t      key[HN_SALT_LEN];     /* the salt ctx is keyed with */
} vh_thread;

static pthread_once_t vh_once = PTHREAD_ONCE_INIT;
static pthread_key_t  vh_key;
static EVP_MAC       *vh_mac;            /* fetched once, kept for the process */

static void vh_fatal(const char *what) {
    fprintf(stderr, "level=fatal event=openssl_failed what=%s\n", what);
    abort();
}

static void vh_thread_free(void *p) {
    vh_thread *t = p;
    EVP_MAC_CTX_free(t->ctx);
    OPENSSL_cleanse(t, sizeof(*t));
    free(t);
}

static void vh_init(void) {
    if (pthread_key_create(&vh_key, vh_thread_free) != 0) vh_fatal("pthread_key_create");
    vh_mac = EVP_MAC_fetch(NULL, OSSL_MAC_NAME_HMAC, NULL);
    if (vh_mac == NULL) vh_fatal("EVP_MAC_fetch(HMAC)");
}

static vh_thread *vh_self(void) {
    pthread_once(&vh_once, vh_init);
    vh_thread *t = pthread_getspecific(vh_key);
    if (t) return t;
    t = hn_xcalloc(1, sizeof(*t));
    t->ctx = EVP_MAC_CTX_new(vh_mac);
    if (t->ctx == NULL) vh_fatal("EVP_MAC_CTX_new");
    if (pthread_setspecific(vh_key, t) != 0) vh_fatal("pthread_setspecific");
    return t;
}

void hn_vhash(const hn_salt *s, uint32_t widget_id, const hn_ip *ip, const char *ua, size_t ualen,
              char out[33]) {
    vh_thread *t = vh_self();
    int ok;
    if (t->keyed && memcmp(t->key, s->key, HN_SALT_LEN) == 0) {
        ok = EVP_MAC_init(t->ctx, NULL, 0, NULL);       /* same key: just restart */
    } else {
        OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
            OSSL_PARAM_construct_end(),
        };
        ok = EVP_MAC_init(t->ctx, s->key, HN_SALT_LEN, params);
        t->keyed = ok == 1;
        memcpy(t->key, s->key, HN_SALT_LEN);
    }
    uint8_t head[4 + 16] = {(uint8_t)(widget_id >> 24), (uint8_t)(widget_id >> 16),
                            (uint8_t)(widget_id >> 8), (uint8_t)widget_id};
    memcpy(head + 4, ip->b, 16);
    uint8_t mac[EVP_MAX_MD_SIZE];
    size_t maclen = 0;
    ok = ok == 1 && EVP_MAC_update(t->ctx, head, sizeof(head)) == 1 &&
         (ualen == 0 || EVP_MAC_update(t->ctx, (const uint8_t *)ua, ualen) == 1) &&
         EVP_MAC_final(t->ctx, mac, &maclen, sizeof(mac)) == 1 && maclen >= 16;
    if (!ok) vh_fatal("HMAC-SHA256");
    to_hex(out, mac, 16);
}
