/*
 * script.c: the widget script as the collector serves it. The minified
 * widget (widget/herenow.min.js, embedded at build time) names the beacon
 * and pixel paths as the tokens @HN_B@ and @HN_P@; they are replaced by
 * the configured paths once at start-up, the result is gzipped once (zlib,
 * level 9) and its ETag is the first 8 bytes of its SHA-256.
 */
#include "collector/collector.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

extern const unsigned char hn_widget_js[];
extern const size_t hn_widget_js_len;

/* Copies src with every `token` replaced by `with`. */
static char *replace(const char *src, size_t n, const char *token, const char *with, size_t *outn) {
    size_t tl = strlen(token), wl = strlen(with), count = 0;
    for (const char *p = src; (p = memmem(p, n - (size_t)(p - src), token, tl)) != NULL; p += tl)
        count++;
    size_t cap = n + count * wl + 1;
    char *out = hn_xmalloc(cap), *o = out;
    const char *p = src, *end = src + n;
    for (const char *hit; (hit = memmem(p, (size_t)(end - p), token, tl)) != NULL; p = hit + tl) {
        memcpy(o, p, (size_t)(hit - p));
        o += hit - p;
        memcpy(o, with, wl);
        o += wl;
    }
    memcpy(o, p, (size_t)(end - p));
    o += end - p;
    *o = '\0';
    *outn = (size_t)(o - out);
    return out;
}

static bool path_ok(const char *p) {
    if (p[0] != '/' || strlen(p) > 200) return false;
    for (; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '\'' || *p == '?' || *p == '#' ||
            (unsigned char)*p >= 0x7f)
            return false;
    return true;
}

int hn_script_build(hn_script *s, const char *beacon_path, const char *pixel_path,
                    const char *script_path, char *err, size_t cap) {
    memset(s, 0, sizeof(*s));
    if (!path_ok(beacon_path) || !path_ok(pixel_path) || !path_ok(script_path)) {
        snprintf(err, cap, "HERENOW_HTTP_*_PATH: a path starts with / and has no spaces, "
                           "quotes, backslashes, ? or #");
        return HN_ERR;
    }
    size_t n1;
    char *step = replace((const char *)hn_widget_js, hn_widget_js_len, "@HN_B@", beacon_path, &n1);
    s->js = replace(step, n1, "@HN_P@", pixel_path, &s->js_len);
    free(step);

    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        snprintf(err, cap, "zlib: deflateInit2 failed");
        return HN_ERR;
    }
    size_t bound = deflateBound(&z, (uLong)s->js_len);
    s->gz = hn_xmalloc(bound);
    z.next_in = (Bytef *)s->js;
    z.avail_in = (uInt)s->js_len;
    z.next_out = (Bytef *)s->gz;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    s->gz_len = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) {
        snprintf(err, cap, "zlib: deflate failed (%d)", rc);
        return HN_ERR;
    }
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)s->js, s->js_len, md);
    snprintf(s->etag, sizeof(s->etag), "\"%02x%02x%02x%02x%02x%02x%02x%02x\"", md[0], md[1],
             md[2], md[3], md[4], md[5], md[6], md[7]);
    snprintf(s->etag_gz, sizeof(s->etag_gz), "%.17s-gz\"", s->etag);
    return HN_OK;
}

void hn_script_free(hn_script *s) {
    free(s->js);
    free(s->gz);
    s->js = s->gz = NULL;
}
