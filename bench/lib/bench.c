/*
 * bench.c: what the benches' C tools share (bench.h).
 */
#include "bench/lib/bench.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

double bench_cpu_s(const struct rusage *a, const struct rusage *b) {
    return (double)(b->ru_utime.tv_sec - a->ru_utime.tv_sec + b->ru_stime.tv_sec - a->ru_stime.tv_sec) +
           (double)(b->ru_utime.tv_usec - a->ru_utime.tv_usec + b->ru_stime.tv_usec - a->ru_stime.tv_usec) / 1e6;
}
