/*
 * bench.h: small pieces the benches' C tools share (hn-sseclient,
 * hn-chatclient, hn-chatdrive): clocks, a non-blocking connect, the fd
 * limit, a blocking Redis connection for the references.
 */
#ifndef HN_BENCH_BENCH_H
#define HN_BENCH_BENCH_H

#include "common/net.h"

#include <hiredis/hiredis.h>
#include <stdint.h>
#include <sys/resource.h>

uint64_t bench_mono_us(void);   /* CLOCK_MONOTONIC */
uint64_t bench_real_us(void);   /* CLOCK_REALTIME: send times across processes */

/* A TCP socket to a (non-blocking, TCP_NODELAY) with its connect begun: the
 * fd, or -1 and errno. */
int bench_connect_nb(const hn_addr *a);

/* RLIMIT_NOFILE raised to need (up to the hard limit); says so on stderr
 * when that is not enough. */
void bench_raise_nofile(uint64_t need, const char *who);

/* A blocking connection to "HOST:PORT" with 5 s timeouts; NULL (said on
 * stderr) on failure. */
redisContext *bench_redis_open(const char *hostport, const char *who);

/* User + system CPU seconds between two getrusage(RUSAGE_SELF). */
double bench_cpu_s(const struct rusage *a, const struct rusage *b);

#endif
