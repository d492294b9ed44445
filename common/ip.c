/* ip.c: see ip.h. */
#include "common/ip.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool hn_ip_from_sockaddr(const struct sockaddr *sa, hn_ip *out) {
    memset(out, 0, sizeof(*out));
    if (sa->sa_family == AF_INET) {
        memcpy(out->b, v4prefix, 12);
        memcpy(out->b + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        out->v4 = true;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        memcpy(out->b, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        out->v4 = memcmp(out->b, v4prefix, 12) == 0;
        return true;
    }
    return false;
}

bool hn_ip_parse(const char *s, size_t n, hn_ip *out) {
    char tmp[64];
    if (n == 0 || n >= sizeof(tmp)) return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    memset(out, 0, sizeof(*out));
    struct in_addr a4;
    if (inet_pton(AF_INET, tmp, &a4) == 1) {
        memcpy(out->b, v4prefix, 12);
        memcpy(out->b + 12, &a4, 4);
        out->v4 = true;
        return true;
    }
    if (inet_pton(AF_INET6, tmp, out->b) == 1) {
        out->v4 = memcmp(out->b, v4prefix, 12) == 0;
        return true;
    }
    return false;
}

void hn_ip_format(const hn_ip *ip, char *out, size_t cap) {
    if (ip->v4 && cap >= 16) {
        /* by hand: inet_ntop goes through sprintf, and this runs per datagram */
        char *o = out;
        for (int i = 12; i < 16; i++) {
            unsigned v = ip->b[i];
            if (v >= 100) *o++ = (char)('0' + v / 100);
            if (v >= 10) *o++ = (char)('0' + v / 10 % 10);
            *o++ = (char)('0' + v % 10);
            *o++ = i < 15 ? '.' : '\0';
        }
        return;
    }
    if (ip->v4) inet_ntop(AF_INET, ip->b + 12, out, (socklen_t)cap);
    else inet_ntop(AF_INET6, ip->b, out, (socklen_t)cap);
}

static void mask_bits(uint8_t b[16], unsigned bits) {
    for (unsigned i = 0; i < 16; i++) {
        unsigned lo = i * 8;
        if (bits >= lo + 8) continue;
        b[i] = bits <= lo ? 0 : (uint8_t)(b[i] & (0xff << (8 - (bits - lo))));
    }
}

int hn_cidrs_parse(const char *list, hn_cidrs *out, char *err, size_t cap) {
    out->v = NULL;
    out->n = 0;
    const char *p = list;
    while (p && *p) {
        while (*p == ' ' || *p == ',') p++;
        if (!*p) break;
        const char *end = p;
        while (*end && *end != ',' && *end != ' ') end++;
        const char *slash = memchr(p, '/', (size_t)(end - p));
        hn_cidr c;
        if (!hn_ip_parse(p, (size_t)((slash ? slash : end) - p), &c.ip)) goto bad;
        unsigned maxbits = c.ip.v4 ? 32 : 128;
        unsigned bits = maxbits;
        if (slash) {
            char *e;
            long v = strtol(slash + 1, &e, 10);
            if (e != end || slash + 1 == end || v < 0 || v > (long)maxbits) goto bad;
            bits = (unsigned)v;
        }
        c.bits = (uint8_t)(c.ip.v4 ? bits + 96 : bits);
        mask_bits(c.ip.b, c.bits);
        out->v = hn_xreallocarray(out->v, out->n + 1, sizeof(hn_cidr));
        out->v[out->n++] = c;
        p = end;
        continue;
    bad:
        snprintf(err, cap, "bad CIDR '%.*s' in '%s'", (int)(end - p), p, list);
        hn_cidrs_free(out);
        return HN_ERR;
    }
    return HN_OK;
}

void hn_cidrs_free(hn_cidrs *c) {
    free(c->v);
    c->v = NULL;
    c->n = 0;
}

bool hn_cidrs_match(const hn_cidrs *c, const hn_ip *ip) {
    for (size_t i = 0; i < c->n; i++) {
        hn_ip m = *ip;
        mask_bits(m.b, c->v[i].bits);
        if (memcmp(m.b, c->v[i].ip.b, 16) == 0) return true;
    }
    return false;
}

hn_ipmode hn_ipmode_parse(const char *s) {
    if (strcmp(s, "full") == 0) return HN_IPMODE_FULL;
    if (strcmp(s, "drop") == 0) return HN_IPMODE_DROP;
    return HN_IPMODE_MASK;
}

size_t hn_ip_store_form(const hn_ip *ip, hn_ipmode mode, char *out, size_t cap) {
    if (mode == HN_IPMODE_DROP || cap < 46) {
        if (cap) out[0] = '\0';
        return 0;
    }
    hn_ip m = *ip;
    if (mode == HN_IPMODE_MASK) mask_bits(m.b, m.v4 ? 96 + 24 : 48);
    hn_ip_format(&m, out, cap);
    return strlen(out);
}
