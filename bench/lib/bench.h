/*
 * bench.h: small pieces the benches' C tools share (hn-sseclient,
 * hn-chatclient, hn-chatdrive, hn-chatdash): clocks, pacing, a non-blocking
 * connect, a blocking keep-alive HTTP/1.1 caller, the fd limit, a blocking
 * Redis connection for the references and the stream-tail reference.
 */
#ifndef HN_BENCH_BENCH_H
#define HN_BENCH_BENCH_H

#include "bench/lib/hist.h"
#include "common/net.h"

#include <hiredis/hiredis.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

uint64_t bench_mono_us(void);   /* CLOCK_MONOTONIC */
uint64_t bench_real_us(void);   /* CLOCK_REALTIME: send times across processes */

/* Pacing by absolute deadlines: sleeps until item m of a run begun at t0
 * (bench_mono_us) at rate a second is due; returns how late it already was
 * (µs, 0 when on time). */
uint64_t bench_pace(uint64_t t0, uint64_t m, double rate);

/* A TCP socket to a (non-blocking, TCP_NODELAY) with its connect begun: the
 * fd, or -1 and errno. */
int bench_connect_nb(const hn_addr *a);

/* RLIMIT_NOFILE raised to need (up to the hard limit); says so on stderr
 * when that is not enough. */
void bench_raise_nofile(uint64_t need, const char *who);

/* A blocking connection to "HOST:PORT" with 5 s timeouts; NULL (said on
 * stderr) on failure. */
redisContext *bench_redis_open(const char *hostport, const char *who);

/* One blocking keep-alive HTTP/1.1 connection (TCP_NODELAY, 10 s timeouts),
 * made anew when closed. */
typedef struct bench_http {
    hn_addr  addr;
    int      fd;               /* -1: none yet */
    uint64_t io_errors;
    char     body[120];        /* the start of the last answer's body */
} bench_http;

void bench_http_init(bench_http *c, const hn_addr *a);
void bench_http_close(bench_http *c);
/* Writes req[0..n) and reads the answer (its body by Content-Length; none
 * for 204 and 304), once more on a fresh connection if the first fails:
 * the status, or -1. */
int bench_http_call(bench_http *c, const char *req, size_t n);

/* The stream-tail reference (a thread, pthread_create(…, bench_tail_main,
 * &t)): XREAD BLOCK on key from its end on, and for every `?t=<µs>` in the
 * entries' values (msgpack str bytes are the string itself), the delay from
 * that CLOCK_REALTIME send time to the read. Ends within 500 ms of *stop;
 * h and the counts are the thread's until it is joined. */
typedef struct bench_tail {
    redisContext *rc;
    const char   *key, *who;
    atomic_bool  *stop;
    hist          h;
    uint64_t      records, entries, negative, errors;
} bench_tail;

void *bench_tail_main(void *arg);

/* User + system CPU seconds between two getrusage(RUSAGE_SELF). */
double bench_cpu_s(const struct rusage *a, const struct rusage *b);

#endif
