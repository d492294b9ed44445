/*
 * bench.c: what the benches' C tools share (bench.h).
 */
#include "bench/lib/bench.h"
#include "bench/lib/sse.h"
#include "common/hn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t clock_us(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t bench_mono_us(void) { return clock_us(CLOCK_MONOTONIC); }
uint64_t bench_real_us(void) { return clock_us(CLOCK_REALTIME); }

uint64_t bench_pace(uint64_t t0, uint64_t m, double rate) {
    uint64_t due = t0 + (uint64_t)((double)m * 1e6 / rate), now = bench_mono_us();
    if (now >= due) return now - due;
    struct timespec ts = {(time_t)((due - now) / 1000000u), (long)((due - now) % 1000000u) * 1000};
    nanosleep(&ts, NULL);
    return 0;
}

int bench_connect_nb(const hn_addr *a) {
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0 && errno != EINPROGRESS) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

void bench_raise_nofile(uint64_t need, const char *who) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need) return;
    rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < need)
        fprintf(stderr, "%s: RLIMIT_NOFILE %llu: fewer descriptors than the %llu wanted\n", who,
                (unsigned long long)rl.rlim_cur, (unsigned long long)need);
}

redisContext *bench_redis_open(const char *hostport, const char *who) {
    char host[256];
    snprintf(host, sizeof(host), "%s", hostport);
    char *colon = strrchr(host, ':');
    if (!colon) {
        fprintf(stderr, "%s: --redis wants HOST:PORT\n", who);
        return NULL;
    }
    *colon = '\0';
    struct timeval tv = {5, 0};
    redisContext *rc = redisConnectWithTimeout(host, atoi(colon + 1), tv);
    if (rc == NULL || rc->err) {
        fprintf(stderr, "%s: redis %s: %s\n", who, hostport, rc ? rc->errstr : "oom");
        if (rc) redisFree(rc);
        return NULL;
    }
    redisSetTimeout(rc, tv);
    return rc;
}

/* ---- a blocking HTTP/1.1 caller ------------------------------------------------------------- */

void bench_http_init(bench_http *c, const hn_addr *a) {
    memset(c, 0, sizeof(*c));
    c->addr = *a;
    c->fd = -1;
}

void bench_http_close(bench_http *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

static int http_dial(const hn_addr *a) {
    int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int bench_http_call(bench_http *c, const char *req, size_t n) {
    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->fd < 0 && (c->fd = http_dial(&c->addr)) < 0) return -1;
        if (write(c->fd, req, n) != (ssize_t)n) goto again;
        char head[4096], buf[8192];
        size_t hlen = 0, used = 0;
        int status = 0, h = 0;
        bool chunked = false;
        ssize_t r = 0;
        while (h == 0) {
            r = read(c->fd, buf, sizeof(buf));
            if (r <= 0) goto again;
            h = hn_http_head(head, sizeof(head), &hlen, buf, (size_t)r, &status, &chunked, &used);
        }
        if (h < 0) goto again;
        /* the body: Content-Length (evhttp's answers have one), none for 204 and 304 */
        int64_t cl = status == 204 || status == 304 ? 0 : -1;
        for (char *p = strstr(head, "\r\n"); p && cl < 0; p = strstr(p + 2, "\r\n"))
            if (strncasecmp(p + 2, "content-length:", 15) == 0) cl = strtoll(p + 17, NULL, 10);
        if (cl < 0 || chunked) goto again;      /* not what our servers send: start over */
        size_t have = (size_t)r - used, keep = have < sizeof(c->body) - 1 ? have : sizeof(c->body) - 1;
        memcpy(c->body, buf + used, keep);
        c->body[keep] = '\0';
        while ((int64_t)have < cl) {
            r = read(c->fd, buf, sizeof(buf));
            if (r <= 0) goto again;
            have += (size_t)r;
        }
        if (strcasestr(head, "connection: close")) bench_http_close(c);
        return status;
    again:
        c->io_errors++;
        bench_http_close(c);
    }
    return -1;
}

/* ---- the stream-tail reference -------------------------------------------------------------- */

/* XREAD reply: [[key, [[id, [field, value, ...]], ...]]] or nil. */
void *bench_tail_main(void *arg) {
    bench_tail *t = arg;
    char id[64] = "$";
    while (!atomic_load(t->stop)) {
        redisReply *rep = redisCommand(t->rc, "XREAD BLOCK 500 COUNT 1000 STREAMS %s %s", t->key, id);
        uint64_t now_us = bench_real_us();
        if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
            t->errors++;
            fprintf(stderr, "%s: XREAD: %s\n", t->who, rep ? rep->str : t->rc->errstr);
            if (rep) freeReplyObject(rep);
            break;
        }
        redisReply *st = rep->type == REDIS_REPLY_ARRAY && rep->elements >= 1 ? rep->element[0] : NULL;
        if (st && st->type == REDIS_REPLY_ARRAY && st->elements == 2 && st->element[1]->type == REDIS_REPLY_ARRAY) {
            redisReply *ents = st->element[1];
            for (size_t i = 0; i < ents->elements; i++) {
                redisReply *e = ents->element[i];
                if (e->type != REDIS_REPLY_ARRAY || e->elements != 2) continue;
                if (e->element[0]->type == REDIS_REPLY_STRING)
                    snprintf(id, sizeof(id), "%s", e->element[0]->str);
                t->entries++;
                redisReply *f = e->element[1];
                for (size_t j = 1; f->type == REDIS_REPLY_ARRAY && j < f->elements; j += 2) {
                    const char *v = f->element[j]->str, *end = v + f->element[j]->len;
                    for (const char *p = v; (p = memmem(p, (size_t)(end - p), "?t=", 3)) != NULL; p += 3) {
                        int64_t ts = hn_find_num(p, (size_t)(end - p), "t=", "?&");
                        if (ts <= 0) continue;
                        t->records++;
                        if ((int64_t)now_us < ts) {
                            t->negative++;
                            h_add(&t->h, 0);
                        } else {
                            h_add(&t->h, now_us - (uint64_t)ts);
                        }
                    }
                }
            }
        }
        freeReplyObject(rep);
    }
    return NULL;
}

double bench_cpu_s(const struct rusage *a, const struct rusage *b) {
    return (double)(b->ru_utime.tv_sec - a->ru_utime.tv_sec + b->ru_stime.tv_sec - a->ru_stime.tv_sec) +
           (double)(b->ru_utime.tv_usec - a->ru_utime.tv_usec + b->ru_stime.tv_usec - a->ru_stime.tv_usec) / 1e6;
}
