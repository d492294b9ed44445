/* httpcache.c: see httpcache.h. */
#include "common/httpcache.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* gzip (RFC 1952 wrapper, level 9) of in[0..n); HN_ERR only if zlib fails. */
int hn_gzip(const char *in, size_t n, char **out, size_t *outn) {
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) return HN_ERR;
    size_t bound = deflateBound(&z, (uLong)n);
    char *buf = hn_xmalloc(bound);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = (Bytef *)buf;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    *outn = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        free(buf);
        return HN_ERR;
    }
    *out = buf;
    return HN_OK;
}

void hn_http_etags(const char *data, size_t n, char etag[HN_ETAG_CAP], char etag_gz[HN_ETAG_CAP]) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)data, n, md);
    snprintf(etag, HN_ETAG_CAP, "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", md[0], md[1], md[2], md[3],
             md[4], md[5], md[6], md[7]);
    snprintf(etag_gz, HN_ETAG_CAP, "%.17s-gz\"", etag);
}

static const char *skip_ows(const char *p) {
    while (*p == ' ' || *p == '\t') p++;
    return p;
}

/* A qvalue at p ("1", "0.5", "0.000", leniently any digits with one dot):
 * 1 when above zero, 0 when zero, -1 when malformed. *end: after it. */
static int qvalue(const char *p, const char **end) {
    bool digits = false, nonzero = false, dot = false;
    for (;; p++) {
        if (*p >= '0' && *p <= '9') {
            digits = true;
            nonzero |= *p != '0';
        } else if (*p == '.' && !dot) {
            dot = true;
        } else {
            break;
        }
    }
    *end = p;
    p = skip_ows(p);
    if (!digits || (*p != '\0' && *p != ',' && *p != ';')) return -1;
    return nonzero ? 1 : 0;
}

static bool token_is(const char *t, size_t n, const char *word) {
    return n == strlen(word) && strncasecmp(t, word, n) == 0;
}

/*
 * Accept-Encoding = #( codings [ OWS ";" OWS "q=" qvalue ] ), e.g.
 *   "br;q=1, gzip;q=0.5, *;q=0"
 * Each element: coding ──► params (q= read, others skipped) ──► ',' | end.
 */
bool hn_http_accepts_gzip(const char *ae) {
    int gz = -1, star = -1;     /* -1 not named, 0 refused, 1 accepted */
    if (ae == NULL) return false;
    const char *p = ae;
    while (*p) {
        p = skip_ows(p);
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t') p++;
        size_t tn = (size_t)(p - tok);
        int q = 1;
        p = skip_ows(p);
        while (*p == ';') {
            p = skip_ows(p + 1);
            if ((*p == 'q' || *p == 'Q') && p[1] == '=') {
                q = qvalue(p + 2, &p);
            } else {
                while (*p && *p != ',' && *p != ';') p++;
            }
            p = skip_ows(p);
        }
        if (*p && *p != ',') {      /* junk after the coding: the element is malformed */
            q = -1;
            while (*p && *p != ',') p++;
        }
        if (*p == ',') p++;
        int *slot = token_is(tok, tn, "gzip") || token_is(tok, tn, "x-gzip") ? &gz
                    : token_is(tok, tn, "*")                                 ? &star
                                                                             : NULL;
        if (slot && q >= 0 && *slot != 1) *slot = q;
    }
    return gz >= 0 ? gz == 1 : star == 1;
}

/*
 * If-None-Match = "*" / #entity-tag, entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE.
 * Quoted tags are scanned whole (etagc may be a comma); anything else up
 * to the next comma is skipped.
 */
bool hn_http_etag_match(const char *inm, const char *etag) {
    if (inm == NULL || etag == NULL) return false;
    if (strncmp(etag, "W/", 2) == 0) etag += 2;
    size_t en = strlen(etag);
    const char *p = inm;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (*p == '\0') return false;
        if (*p == '*') {
            const char *after = skip_ows(p + 1);
            if (*after == '\0' || *after == ',') return true;
        }
        const char *t = strncmp(p, "W/", 2) == 0 ? p + 2 : p;
        if (*t == '"') {
            const char *close = strchr(t + 1, '"');
            if (close == NULL) return false;
            if ((size_t)(close + 1 - t) == en && memcmp(t, etag, en) == 0) return true;
            p = close + 1;
        }
        while (*p && *p != ',') p++;
    }
}
