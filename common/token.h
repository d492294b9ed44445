/*
 * token.h: API tokens (DESIGN.md §5, sql/003_tokens.sql).
 *
 * A token is the 48 bytes "hn_<id>_<secret>": id is 12 base62 characters,
 * public (it names the token in `herenowctl token list|revoke` and is how the
 * API finds its row in api_tokens), secret is 32 base62 characters from
 * getrandom(2) (≈ 190 bits). Only the SHA-256 of the whole token text is
 * stored; the API checks a bearer token by
 *
 *   hn_token_split → SELECT token_sha256 … WHERE id = $1 → hn_token_sha256
 *   → hn_token_digest_eq (constant time)
 *
 * Nothing here allocates, logs or keeps a copy of a token.
 */
#ifndef HN_TOKEN_H
#define HN_TOKEN_H

#include "common/hn.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#define HN_TOKEN_PREFIX     "hn_"
#define HN_TOKEN_ID_LEN     12
#define HN_TOKEN_SECRET_LEN 32
#define HN_TOKEN_LEN        (3 + HN_TOKEN_ID_LEN + 1 + HN_TOKEN_SECRET_LEN)   /* 48 */
#define HN_TOKEN_SHA256_LEN 32

/* Makes a new random token (NUL-terminated) and its id. HN_ERR when
 * getrandom fails (errno set). */
int hn_token_make(char tok[HN_TOKEN_LEN + 1], char id[HN_TOKEN_ID_LEN + 1]);

/* HN_OK when tok[0..n) is well-formed ("hn_" + 12 base62 + "_" + 32 base62,
 * exactly 48 bytes); copies the id out (NUL-terminated; id may be NULL to
 * only check). HN_ERR otherwise; never reads past n. */
int hn_token_split(const char *tok, size_t n, char id[HN_TOKEN_ID_LEN + 1]);

/* True when s[0..n) is a well-formed id: exactly 12 base62 characters. */
bool hn_token_id_valid(const char *s, size_t n);

/* The two that need libcrypto are inline: every object of common/ is linked
 * into every binary, and the collector (which never sees a token) should
 * neither link nor load libcrypto. */

/* SHA-256 of tok[0..n), the form stored in api_tokens.token_sha256. The
 * one-shot SHA256() is not deprecated in OpenSSL 3 (SHA256_Init & co are)
 * and cannot fail for an in-memory buffer. */
static inline void hn_token_sha256(const char *tok, size_t n, uint8_t out[HN_TOKEN_SHA256_LEN]) {
    SHA256((const unsigned char *)tok, n, out);
}

/* Constant time (CRYPTO_memcmp): how long it takes says nothing about where
 * the digests differ. */
static inline bool hn_token_digest_eq(const uint8_t a[HN_TOKEN_SHA256_LEN],
                                      const uint8_t b[HN_TOKEN_SHA256_LEN]) {
    return CRYPTO_memcmp(a, b, HN_TOKEN_SHA256_LEN) == 0;
}

/* Fills out[0..n) with uniformly random [0-9A-Za-z] from getrandom(2) and
 * NUL-terminates it (out has n + 1 bytes). HN_ERR when getrandom fails
 * (errno set). Also makes widget keys (herenowctl widget add). */
int hn_token_random_base62(char *out, size_t n);

#endif
