/*
 * script.c: the widget scripts as the collector serves them. The minified
 * widget (widget/herenow.min.js, embedded at build time) names the beacon
 * and chat script paths as the tokens @HN_B@ and @HN_C@ (and a script may
 * name the pixel's, @HN_P@); they are replaced by the configured paths once
 * at start-up, the result is gzipped once (zlib,
 * level 9) and its ETag is the first 8 bytes of its SHA-256. The chat script
 * (widget/herenow-chat.min.js, docs/CHAT.md) is made the same way, with
 * @HN_V@ for the chat downlink's path besides.
 */
#include "collector/collector.h"
#include "common/pct.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const unsigned char hn_widget_js[];
extern const size_t hn_widget_js_len;
extern const unsigned char hn_chat_js[];
extern const size_t hn_chat_js_len;

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

static int build(hn_script *s, const unsigned char *src, size_t n, const char *beacon_path,
                 const char *pixel_path, const char *script_path, const char *chat_path,
                 char *err, size_t cap) {
    memset(s, 0, sizeof(*s));
    if (!hn_plain_path_ok(beacon_path) || !hn_plain_path_ok(pixel_path) || !hn_plain_path_ok(script_path) ||
        !hn_plain_path_ok(chat_path)) {
        snprintf(err, cap, "HERENOW_HTTP_*_PATH, HERENOW_CHAT_SCRIPT_PATH: a path starts with / "
                           "and has no spaces, quotes, backslashes, ? or #");
        return HN_ERR;
    }
    static const char *const tokens[] = {"@HN_B@", "@HN_P@", "@HN_C@", "@HN_V@"};
    const char *const with[] = {beacon_path, pixel_path, chat_path, HN_CHAT_DOWNLINK_PATH};
    char *js = hn_xmalloc(n + 1);
    memcpy(js, src, n);
    size_t len = n;
    for (size_t i = 0; i < HN_ARRAY_LEN(tokens); i++) {
        char *next = replace(js, len, tokens[i], with[i], &len);
        free(js);
        js = next;
    }
    s->js = js;
    s->js_len = len;

    if (hn_gzip(s->js, s->js_len, &s->gz, &s->gz_len) != HN_OK) {
        snprintf(err, cap, "zlib: gzip of the widget script failed");
        return HN_ERR;
    }
    hn_http_etags(s->js, s->js_len, s->etag, s->etag_gz);
    return HN_OK;
}

int hn_script_build(hn_script *s, const char *beacon_path, const char *pixel_path,
                    const char *script_path, const char *chat_path, char *err, size_t cap) {
    return build(s, hn_widget_js, hn_widget_js_len, beacon_path, pixel_path, script_path,
                 chat_path, err, cap);
}

int hn_script_build_chat(hn_script *s, const char *beacon_path, const char *pixel_path,
                         const char *chat_path, char *err, size_t cap) {
    return build(s, hn_chat_js, hn_chat_js_len, beacon_path, pixel_path, chat_path, chat_path,
                 err, cap);
}

void hn_script_free(hn_script *s) {
    free(s->js);
    free(s->gz);
    s->js = s->gz = NULL;
}
