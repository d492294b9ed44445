/*
 * ticket.h: the live stream's tickets (docs/API.md, "stream/ticket").
 *
 * A browser's EventSource cannot send an Authorization header, and a token
 * in a URL ends up in access logs, proxies and history. So the dashboard
 * trades its token (POST …/stream/ticket, Bearer) for a ticket that opens
 * one stream of one widget within a minute:
 *
 *   "hnt_" base64url( widget u32 | expiry ms u64 | nonce u64 | token id 12
 *                     | HMAC-SHA256(key, the 32 bytes before)[0..16] )
 *
 * The key lives only in the api's memory (or HERENOW_API_TICKET_SECRET, so
 * that every node takes every node's tickets). A ticket carries nothing
 * secret: the token id is public. That a ticket is used once is the
 * caller's business (the nonce); so is checking that the token is still
 * valid. Pure: no I/O, no allocation.
 */
#ifndef HN_TICKET_H
#define HN_TICKET_H

#include "common/hn.h"
#include "common/token.h"

#define HN_TICKET_PREFIX  "hnt_"
#define HN_TICKET_KEY_LEN 32
#define HN_TICKET_LEN     (4 + 64)     /* 48 bytes in base64url, unpadded */

typedef struct hn_ticket {
    int64_t  widget_id;                     /* 1..2^31-1 */
    int64_t  expires_ms;                    /* wall clock, ms since the epoch */
    uint64_t nonce;                         /* random: the single-use key */
    char     token_id[HN_TOKEN_ID_LEN + 1];
} hn_ticket;

typedef enum hn_ticket_result {
    HN_TICKET_OK = 0,
    HN_TICKET_MALFORMED,    /* not a ticket's shape */
    HN_TICKET_FORGED,       /* the MAC does not match: not ours, or altered */
    HN_TICKET_EXPIRED,
} hn_ticket_result;

/* Writes the ticket of t (NUL-terminated, HN_TICKET_LEN chars) to out. */
void hn_ticket_mint(const uint8_t key[HN_TICKET_KEY_LEN], const hn_ticket *t,
                    char out[HN_TICKET_LEN + 1]);
/* Checks s against key and now_ms; fills *out on HN_TICKET_OK (and on
 * HN_TICKET_EXPIRED, for the log). Compares the MAC in constant time. */
hn_ticket_result hn_ticket_verify(const uint8_t key[HN_TICKET_KEY_LEN], const char *s,
                                  int64_t now_ms, hn_ticket *out);
/* "64 hex digits" → key; HN_ERR on anything else. */
int hn_ticket_key_parse(const char *hex, uint8_t key[HN_TICKET_KEY_LEN]);

#endif
