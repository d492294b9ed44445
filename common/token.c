/* token.c: see token.h. */
#include "common/token.h"

#include <errno.h>
#include <sys/random.h>

static const char base62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static bool is_base62(char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

int hn_token_random_base62(char *out, size_t n) {
    unsigned char buf[64];
    size_t have = 0, used = 0, i = 0;
    while (i < n) {
        if (used == have) {
            ssize_t got = getrandom(buf, sizeof(buf), 0);
            if (got < 0) {
                if (errno == EINTR) continue;
                return HN_ERR;
            }
            have = (size_t)got;
            used = 0;
            continue;
        }
        unsigned char b = buf[used++];
        /* 248 = 4 * 62: rejecting the top 8 values keeps every symbol
         * equally likely. */
        if (b < 248) out[i++] = base62[b % 62];
    }
    out[n] = '\0';
    return HN_OK;
}

int hn_token_make(char tok[HN_TOKEN_LEN + 1], char id[HN_TOKEN_ID_LEN + 1]) {
    /* "hn_" id "_" secret: both drawn in place, then the '_' between them
     * overwrites the NUL that ended the id. */
    memcpy(tok, HN_TOKEN_PREFIX, 3);
    if (hn_token_random_base62(tok + 3, HN_TOKEN_ID_LEN) != HN_OK ||
        hn_token_random_base62(tok + 3 + HN_TOKEN_ID_LEN + 1, HN_TOKEN_SECRET_LEN) != HN_OK) {
        tok[0] = '\0';
        return HN_ERR;
    }
    tok[3 + HN_TOKEN_ID_LEN] = '_';
    memcpy(id, tok + 3, HN_TOKEN_ID_LEN);
    id[HN_TOKEN_ID_LEN] = '\0';
    return HN_OK;
}

bool hn_token_id_valid(const char *s, size_t n) {
    if (s == NULL || n != HN_TOKEN_ID_LEN) return false;
    for (size_t i = 0; i < n; i++)
        if (!is_base62(s[i])) return false;
    return true;
}

int hn_token_split(const char *tok, size_t n, char id[HN_TOKEN_ID_LEN + 1]) {
    /* The length first: everything after reads only tok[0..48). */
    if (tok == NULL || n != HN_TOKEN_LEN) return HN_ERR;
    if (memcmp(tok, HN_TOKEN_PREFIX, 3) != 0 || tok[3 + HN_TOKEN_ID_LEN] != '_') return HN_ERR;
    if (!hn_token_id_valid(tok + 3, HN_TOKEN_ID_LEN)) return HN_ERR;
    for (size_t i = 3 + HN_TOKEN_ID_LEN + 1; i < HN_TOKEN_LEN; i++)
        if (!is_base62(tok[i])) return HN_ERR;
    if (id != NULL) {
        memcpy(id, tok + 3, HN_TOKEN_ID_LEN);
        id[HN_TOKEN_ID_LEN] = '\0';
    }
    return HN_OK;
}
