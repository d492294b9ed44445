/* ticket.c: see ticket.h. */
#include "api/ticket.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#define BODY_LEN 32                   /* widget 4 + expiry 8 + nonce 8 + token id 12 */
#define MAC_LEN  16
#define RAW_LEN  (BODY_LEN + MAC_LEN) /* 48 bytes: 64 base64url characters */

static void put_be(uint8_t *p, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

static void mac(const uint8_t key[HN_TICKET_KEY_LEN], const uint8_t *body, uint8_t out[MAC_LEN]) {
    uint8_t full[32];
    unsigned int n = sizeof(full);
    HMAC(EVP_sha256(), key, HN_TICKET_KEY_LEN, body, BODY_LEN, full, &n);
    memcpy(out, full, MAC_LEN);
}

void hn_ticket_mint(const uint8_t key[HN_TICKET_KEY_LEN], const hn_ticket *t,
                    char out[HN_TICKET_LEN + 1]) {
    uint8_t raw[RAW_LEN];
    put_be(raw, (uint64_t)t->widget_id, 4);
    put_be(raw + 4, (uint64_t)t->expires_ms, 8);
    put_be(raw + 12, t->nonce, 8);
    memcpy(raw + 20, t->token_id, HN_TOKEN_ID_LEN);
    mac(key, raw, raw + BODY_LEN);
    /* 48 bytes are 64 base64 characters with no padding; then the URL-safe
     * alphabet (RFC 4648 §5), so the ticket needs no %-escaping in a query */
    memcpy(out, HN_TICKET_PREFIX, 4);
    EVP_EncodeBlock((unsigned char *)out + 4, raw, RAW_LEN);
    for (char *p = out + 4; *p; p++) *p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    out[HN_TICKET_LEN] = '\0';
}

hn_ticket_result hn_ticket_verify(const uint8_t key[HN_TICKET_KEY_LEN], const char *s,
                                  int64_t now_ms, hn_ticket *out) {
    if (s == NULL || strlen(s) != HN_TICKET_LEN || memcmp(s, HN_TICKET_PREFIX, 4) != 0)
        return HN_TICKET_MALFORMED;
    char b64[64 + 1];
    for (int i = 0; i < 64; i++) {
        char c = s[4 + i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_';
        if (!ok) return HN_TICKET_MALFORMED;
        b64[i] = c == '-' ? '+' : c == '_' ? '/' : c;
    }
    b64[64] = '\0';
    uint8_t raw[RAW_LEN + 2];     /* EVP_DecodeBlock writes whole 3-byte groups */
    if (EVP_DecodeBlock(raw, (const unsigned char *)b64, 64) != RAW_LEN) return HN_TICKET_MALFORMED;
    uint8_t want[MAC_LEN];
    mac(key, raw, want);
    if (CRYPTO_memcmp(want, raw + BODY_LEN, MAC_LEN) != 0) return HN_TICKET_FORGED;
    out->widget_id = (int64_t)get_be(raw, 4);
    out->expires_ms = (int64_t)get_be(raw + 4, 8);
    out->nonce = get_be(raw + 12, 8);
    memcpy(out->token_id, raw + 20, HN_TOKEN_ID_LEN);
    out->token_id[HN_TOKEN_ID_LEN] = '\0';
    if (!hn_token_id_valid(out->token_id, HN_TOKEN_ID_LEN)) return HN_TICKET_MALFORMED;
    return now_ms >= out->expires_ms ? HN_TICKET_EXPIRED : HN_TICKET_OK;
}

int hn_ticket_key_parse(const char *hex, uint8_t key[HN_TICKET_KEY_LEN]) {
    if (hex == NULL || strlen(hex) != 2 * HN_TICKET_KEY_LEN) return HN_ERR;
    for (int i = 0; i < HN_TICKET_KEY_LEN; i++) {
        int v = 0;
        for (int j = 0; j < 2; j++) {
            char c = hex[2 * i + j];
            int d = c >= '0' && c <= '9' ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (d < 0) return HN_ERR;
            v = v << 4 | d;
        }
        key[i] = (uint8_t)v;
    }
    return HN_OK;
}
