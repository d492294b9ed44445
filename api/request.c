/* request.c: query strings, widget ids and log-safe text (request.h). */
#include "api/request.h"
#include "api/ticket.h"
#include "common/pct.h"
#include "common/token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool hn_api_widget_id(const char *s, int64_t *out) {
    size_t n = strlen(s);
    if (n == 0 || n > 10 || s[0] == '0') return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    if (v > 2147483647) return false;
    *out = v;
    return true;
}

const char *hn_api_query(const hn_api_req *rq, const char *key) {
    for (int i = 0; i < rq->nquery; i++)
        if (strcmp(rq->qkey[i], key) == 0) return rq->qval[i];
    return NULL;
}

int hn_api_parse_query(const char *q, hn_api_req *rq, char *why, size_t cap) {
    if (q == NULL) return HN_OK;
    while (*q) {
        size_t seg = strcspn(q, "&");
        if (seg == 0) {
            q++;
            continue;
        }
        const char *eq = memchr(q, '=', seg);
        size_t klen = eq ? (size_t)(eq - q) : seg;
        const char *v = eq ? eq + 1 : q + seg;
        size_t vlen = (size_t)(q + seg - v);
        if (klen == 0) {
            snprintf(why, cap, "empty query parameter name");
            return HN_ERR;
        }
        if (rq->nquery == HN_API_MAX_QUERY) {
            snprintf(why, cap, "too many query parameters (at most %d)", HN_API_MAX_QUERY);
            return HN_ERR;
        }
        char *k = hn_xmalloc(klen + 1), *val = hn_xmalloc(vlen + 1);
        if (hn_pct_decode(q, klen, k, klen + 1, HN_PCT_PLUS | HN_PCT_NO_NUL) < 0
                || hn_pct_decode(v, vlen, val, vlen + 1, HN_PCT_PLUS | HN_PCT_NO_NUL) < 0) {
            free(k);
            free(val);
            snprintf(why, cap, "bad percent-encoding in the query string");
            return HN_ERR;
        }
        for (int i = 0; i < rq->nquery; i++)
            if (strcmp(rq->qkey[i], k) == 0) {
                snprintf(why, cap, "query parameter '%.64s' given more than once", k);
                free(k);
                free(val);
                return HN_ERR;
            }
        rq->qkey[rq->nquery] = k;
        rq->qval[rq->nquery] = val;
        rq->nquery++;
        q += seg;
    }
    return HN_OK;
}

static bool is_base62(char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* For the log: bytes outside printable ASCII, quotes and backslashes as
 * %XX, anything shaped like a token's secret masked, cut at cap. */
void hn_api_log_safe(char *out, size_t cap, const char *s) {
    size_t j = 0;
    for (size_t i = 0; s && s[i] && j + 4 < cap;) {
        if (strncmp(s + i, HN_TICKET_PREFIX, 4) == 0) {       /* a stream ticket */
            if (j + 8 >= cap) break;
            memcpy(out + j, "hnt_***", 7);
            j += 7;
            i += 4;
            while (is_base62(s[i]) || s[i] == '-' || s[i] == '_') i++;
            continue;
        }
        if (strncmp(s + i, HN_TOKEN_PREFIX, 3) == 0) {
            size_t k = 3;
            while (k < 3 + HN_TOKEN_ID_LEN && is_base62(s[i + k])) k++;
            if (k == 3 + HN_TOKEN_ID_LEN && s[i + k] == '_') {
                int w = snprintf(out + j, cap - j, "%.*s***", (int)k + 1, s + i);
                if (w < 0 || (size_t)w >= cap - j) break;
                j += (size_t)w;
                i += k + 1;
                while (is_base62(s[i])) i++;
                continue;
            }
        }
        unsigned char c = (unsigned char)s[i++];
        if (c > 0x20 && c < 0x7f && c != '\'' && c != '\\') {
            out[j++] = (char)c;
        } else {
            snprintf(out + j, cap - j, "%%%02X", c);
            j += 3;
        }
    }
    out[j] = '\0';
}
