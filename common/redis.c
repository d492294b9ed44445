/* redis.c: see redis.h. */
#include "common/redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int copy(char *dst, size_t cap, const char *s, size_t n) {
    if (n >= cap) return HN_ERR;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return HN_OK;
}

int hn_redis_addr_parse(const char *url, hn_redis_addr *out, char *err, size_t cap) {
    memset(out, 0, sizeof(*out));
    out->port = 6379;
    if (strncmp(url, "unix://", 7) == 0) {
        const char *p = url + 7;
        const char *q = strchr(p, '?');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (n == 0 || copy(out->path, sizeof(out->path), p, n) != HN_OK) goto bad;
        if (q && strncmp(q, "?db=", 4) == 0) out->db = atoi(q + 4);
        return HN_OK;
    }
    if (strncmp(url, "redis://", 8) != 0) goto bad;
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *pw = colon ? colon + 1 : p;
        if (copy(out->password, sizeof(out->password), pw, (size_t)(at - pw)) != HN_OK) goto bad;
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    size_t hl = slash ? (size_t)(slash - p) : strlen(p);
    const char *hostend = p + hl;
    const char *portsep = NULL;
    if (*p == '[') {                                  /* [v6]:port */
        const char *rb = memchr(p, ']', hl);
        if (!rb) goto bad;
        if (copy(out->host, sizeof(out->host), p + 1, (size_t)(rb - p - 1)) != HN_OK) goto bad;
        if (rb + 1 < hostend && rb[1] == ':') portsep = rb + 1;
    } else {
        portsep = memchr(p, ':', hl);
        size_t n = portsep ? (size_t)(portsep - p) : hl;
        if (copy(out->host, sizeof(out->host), p, n) != HN_OK) goto bad;
    }
    if (portsep) {
        char *end;
        long port = strtol(portsep + 1, &end, 10);
        if (end != hostend || port <= 0 || port > 65535) goto bad;
        out->port = (int)port;
    }
    if (out->host[0] == '\0') strcpy(out->host, "127.0.0.1");
    if (slash && slash[1]) {
        char *end;
        long db = strtol(slash + 1, &end, 10);
        if (*end != '\0' || db < 0 || db > 1000000) goto bad;
        out->db = (int)db;
    }
    return HN_OK;
bad:;
    /* Never echo a password: what is between "://" and "@" is masked. */
    const char *sch = strstr(url, "://"), *at2 = sch ? strrchr(sch + 3, '@') : NULL;
    if (at2)
        snprintf(err, cap, "bad Redis URL '%.*s***%s' (want redis://[:password@]host:port/db or "
                 "unix:///path?db=N)", (int)(sch + 3 - url), url, at2);
    else
        snprintf(err, cap, "bad Redis URL '%s' (want redis://[:password@]host:port/db or "
                 "unix:///path?db=N)", url);
    return HN_ERR;
}

int hn_redis_handshake(redisContext *c, const hn_redis_addr *a, char *err, size_t cap) {
    redisReply *r;
    if (a->password[0]) {
        r = redisCommand(c, "AUTH %s", a->password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) goto fail;
        freeReplyObject(r);
    }
    if (a->db != 0) {
        r = redisCommand(c, "SELECT %d", a->db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) goto fail;
        freeReplyObject(r);
    }
    return HN_OK;
fail:
    snprintf(err, cap, "redis handshake: %s", r ? r->str : c->errstr);
    if (r) freeReplyObject(r);
    return HN_ERR;
}

redisContext *hn_redis_connect(const hn_redis_addr *a, int timeout_ms, char *err, size_t cap) {
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = a->path[0] ? redisConnectUnixWithTimeout(a->path, tv)
                                 : redisConnectWithTimeout(a->host, a->port, tv);
    if (c == NULL || c->err) {
        snprintf(err, cap, "redis connect %s%s:%d: %s", a->path, a->host, a->port,
                 c ? c->errstr : "out of memory");
        if (c) redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (hn_redis_handshake(c, a, err, cap) != HN_OK) {
        redisFree(c);
        return NULL;
    }
    return c;
}

int hn_redis_cfg_parse(const char *url, hn_redis_cfg *out, char *err, size_t cap) {
    memset(out, 0, sizeof(*out));
    out->retry_ms = 3000;
    static const char scheme[] = "redis+cluster://";
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        if (strncmp(url, "redis://", 8) == 0 && strchr(url, ',')) {
            snprintf(err, cap, "bad Redis URL: several nodes are a Redis Cluster: use "
                     "redis+cluster://host:port,host:port");
            return HN_ERR;
        }
        out->nseeds = 1;
        return hn_redis_addr_parse(url, &out->seed[0], err, cap);
    }
    out->cluster = true;
    /* redis+cluster://[:pw@]h1:p1,h2:p2[/0]: each seed parsed as redis:// */
    const char *p = url + sizeof(scheme) - 1;
    const char *at = strrchr(p, '@');
    char pre[160] = "redis://";
    if (at) {
        if ((size_t)(at - p) + 1 >= sizeof(pre) - 8) goto bad;
        memcpy(pre + 8, p, (size_t)(at - p) + 1);
        pre[8 + (at - p) + 1] = '\0';
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    if (slash && strcmp(slash, "/") != 0 && strcmp(slash, "/0") != 0) {
        snprintf(err, cap, "bad Redis URL: a Redis Cluster has only db 0");
        return HN_ERR;
    }
    const char *end = slash ? slash : p + strlen(p);
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        char one[512];
        if (out->nseeds == HN_REDIS_SEEDS_MAX || e == p ||
            snprintf(one, sizeof(one), "%s%.*s", pre, (int)(e - p), p) >= (int)sizeof(one))
            goto bad;
        if (hn_redis_addr_parse(one, &out->seed[out->nseeds], err, cap) != HN_OK) goto bad;
        out->nseeds++;
        p = comma ? comma + 1 : end;
    }
    if (out->nseeds == 0) goto bad;
    return HN_OK;
bad:;
    const char *at2 = strrchr(url, '@');
    snprintf(err, cap, "bad Redis URL '%s%s' (want redis+cluster://[:password@]host:port,host:port, "
             "at most %d nodes)", at2 ? "redis+cluster://***" : url, at2 ? at2 : "", HN_REDIS_SEEDS_MAX);
    return HN_ERR;
}
