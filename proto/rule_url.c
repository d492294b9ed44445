/*
 * rule_url.c: a rule's webhook URL — its check (docs/RULES.md §2: the
 * shape, and never this api itself: its listen address, HERENOW_PUBLIC_URL,
 * loopback and wildcard forms), the api's own address from its settings,
 * and a new webhook secret. Shared by the api's routes, the webhook sender
 * (on resolved addresses) and herenowctl. See proto/rule.h.
 */
#include "proto/rule.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

/* ---- webhook URLs --------------------------------------------------------------- */

typedef struct url_host {
    char host[256];              /* lower case, no brackets, no trailing dot */
    int  port;
} url_host;

static int url_split(const char *url, size_t len, url_host *u, char *err, size_t cap) {
    const char *why = NULL;
    if (len == 0) why = "empty";
    else if (len > HN_RULE_URL_MAX) why = "longer than 2048 bytes";
    for (size_t i = 0; !why && i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f) why = "a space, control or non-ASCII character (percent-encode it)";
        else if (c == '#') why = "a fragment is not allowed";
    }
    size_t sl = 0;
    if (!why) {
        if (len >= 7 && strncasecmp(url, "http://", 7) == 0) sl = 7, u->port = 80;
        else if (len >= 8 && strncasecmp(url, "https://", 8) == 0) sl = 8, u->port = 443;
        else why = "only http:// and https:// URLs";
    }
    const char *a = url + sl, *end = url + len, *ae = a;
    while (!why && ae < end && *ae != '/' && *ae != '?') ae++;
    if (!why && memchr(a, '@', (size_t)(ae - a))) why = "user info is not allowed";
    const char *h = a, *he = ae, *port = NULL;
    if (!why && a < ae && *a == '[') {
        const char *rb = memchr(a, ']', (size_t)(ae - a));
        if (!rb) why = "bad host";
        else {
            h = a + 1, he = rb;
            if (rb + 1 < ae) {
                if (rb[1] != ':') why = "bad host";
                else port = rb + 2;
            }
            char tmp[64];
            struct in6_addr a6;
            size_t hl = (size_t)(he - h);
            if (!why && (hl >= sizeof(tmp) || (memcpy(tmp, h, hl), tmp[hl] = 0,
                                              inet_pton(AF_INET6, tmp, &a6) != 1)))
                why = "bad IPv6 address";
        }
    } else if (!why) {
        const char *colon = memchr(a, ':', (size_t)(ae - a));
        if (colon) he = colon, port = colon + 1;
        for (const char *p = h; !why && p < he; p++)
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
                why = "bad host";
    }
    if (!why && he == h) why = "no host";
    if (!why && (size_t)(he - h) > 253) why = "host longer than 253 bytes";
    if (!why && port) {
        long v = 0;
        const char *p = port;
        for (; p < ae && isdigit((unsigned char)*p) && v <= 65535; p++) v = v * 10 + (*p - '0');
        if (p == port || p != ae || v < 1 || v > 65535) why = "bad port";
        else u->port = (int)v;
    }
    if (why) {
        if (cap) snprintf(err, cap, "webhook url: %s", why);
        return HN_ERR;
    }
    size_t hl = (size_t)(he - h);
    for (size_t i = 0; i < hl; i++) u->host[i] = (char)tolower((unsigned char)h[i]);
    u->host[hl] = 0;
    if (hl > 1 && u->host[hl - 1] == '.') u->host[hl - 1] = 0;
    return HN_OK;
}

/* Loopback or wildcard: 127.0.0.0/8 (in any form inet_aton reads, as a
 * resolver would: "127.1", "2130706433"), 0.0.0.0, ::1, ::, their
 * IPv4-mapped forms, localhost and *.localhost. */
static bool host_local(const char *h) {
    struct in_addr a4;
    struct in6_addr a6;
    size_t n = strlen(h);
    if (strcmp(h, "localhost") == 0 || (n > 10 && strcmp(h + n - 10, ".localhost") == 0))
        return true;
    if (inet_aton(h, &a4)) {
        uint32_t v = ntohl(a4.s_addr);
        return v >> 24 == 127 || v == 0;
    }
    if (inet_pton(AF_INET6, h, &a6) == 1) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        bool zero12 = memcmp(a6.s6_addr, mapped, 10) == 0 && a6.s6_addr[10] == 0 && a6.s6_addr[11] == 0;
        if (zero12 && a6.s6_addr[12] == 0 && a6.s6_addr[13] == 0 && a6.s6_addr[14] == 0 &&
            a6.s6_addr[15] <= 1)
            return true;                                   /* :: and ::1 */
        if (memcmp(a6.s6_addr, mapped, 12) == 0)
            return a6.s6_addr[12] == 127 || (a6.s6_addr[12] | a6.s6_addr[13] | a6.s6_addr[14] |
                                             a6.s6_addr[15]) == 0;
    }
    return false;
}

static bool host_same(const char *a, const char *b) {
    struct in_addr x4, y4;
    struct in6_addr x6, y6;
    if (strcmp(a, b) == 0) return true;
    if (host_local(b)) return host_local(a);
    if (inet_aton(a, &x4) && inet_aton(b, &y4)) return x4.s_addr == y4.s_addr;
    if (inet_pton(AF_INET6, a, &x6) == 1 && inet_pton(AF_INET6, b, &y6) == 1)
        return memcmp(&x6, &y6, sizeof(x6)) == 0;
    return false;
}

int hn_rule_url_check(const char *url, size_t len, const hn_rule_self *self, char *err,
                      size_t cap) {
    url_host u, me;
    if (url_split(url, len, &u, err, cap) != HN_OK) return HN_ERR;
    if (!self) return HN_OK;
    const char *hosts[2] = {self->listen_host, self->tls_host};
    const int ports[2] = {self->listen_port, self->tls_port};
    for (int k = 0; k < 2; k++) {
        const char *h = hosts[k];
        if (h == NULL || ports[k] <= 0) continue;
        size_t hl = strlen(h);
        if (hl && h[0] == '[' && h[hl - 1] == ']') h++, hl -= 2;
        if (hl >= sizeof(me.host)) continue;
        for (size_t i = 0; i < hl; i++) me.host[i] = (char)tolower((unsigned char)h[i]);
        me.host[hl] = 0;
        if (!hl) strcpy(me.host, "0.0.0.0");
        if (u.port == ports[k] && host_same(u.host, me.host)) {
            if (cap) snprintf(err, cap, "webhook url: points at this api itself");
            return HN_ERR;
        }
    }
    char scratch[8];
    if (self->public_url && *self->public_url &&
        url_split(self->public_url, strlen(self->public_url), &me, scratch, sizeof(scratch)) == HN_OK &&
        u.port == me.port && host_same(u.host, me.host)) {
        if (cap) snprintf(err, cap, "webhook url: points at this installation (HERENOW_PUBLIC_URL)");
        return HN_ERR;
    }
    return HN_OK;
}

/* ---- the api's own address, the secret ----------------------------------------------- */

/* "host:port" into host (cap bytes): HN_OK with *port. */
static int split_listen(const char *l, char *host, size_t cap, int *port) {
    const char *colon = l ? strrchr(l, ':') : NULL;
    if (colon == NULL || (size_t)(colon - l) >= cap) return HN_ERR;
    memcpy(host, l, (size_t)(colon - l));
    host[colon - l] = 0;
    *port = atoi(colon + 1);
    return HN_OK;
}

hn_rule_self hn_rule_self_of(const char *api_listen, const char *api_https_listen,
                             const char *public_url, char *host, size_t cap) {
    hn_rule_self me = {NULL, 0, public_url, NULL, 0};
    size_t half = cap / 2;
    if (split_listen(api_listen, host, half, &me.listen_port) == HN_OK) me.listen_host = host;
    if (api_https_listen && *api_https_listen &&
        split_listen(api_https_listen, host + half, cap - half, &me.tls_port) == HN_OK)
        me.tls_host = host + half;
    return me;
}

int hn_rule_new_secret(char out[65]) {
    uint8_t key[32];
    if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) return HN_ERR;
    for (size_t i = 0; i < sizeof(key); i++) snprintf(out + 2 * i, 3, "%02x", key[i]);
    return HN_OK;
}

const char *const hn_webhook_events[HN_WEBHOOK_NEVENTS] = {"session.started", "session.ended", "chat.started",
                                                           "chat.message", "chat.closed"};

int hn_webhook_event_index(const char *name, size_t len) {
    for (int i = 0; i < HN_WEBHOOK_NEVENTS; i++)
        if (strlen(hn_webhook_events[i]) == len && memcmp(hn_webhook_events[i], name, len) == 0) return i;
    return -1;
}
