/* alloc.c: the daemons' allocation policy (see hn.h), clocks and integers. */
#include "common/hn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void oom(size_t n) {
    fprintf(stderr, "level=fatal event=out_of_memory bytes=%zu\n", n);
    abort();
}

void *hn_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL) oom(n);
    return p;
}

void *hn_xcalloc(size_t nmemb, size_t size) {
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (p == NULL) oom(nmemb * size);
    return p;
}

void *hn_xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) oom(n);
    return q;
}

void *hn_xreallocarray(void *p, size_t nmemb, size_t size) {
    if (size != 0 && nmemb > SIZE_MAX / size) oom(SIZE_MAX);
    return hn_xrealloc(p, nmemb * size);
}

char *hn_xstrdup(const char *s) {
    return hn_xstrndup(s, strlen(s));
}

char *hn_xstrndup(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *d = hn_xmalloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

uint64_t hn_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t hn_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t hn_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t hn_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

bool hn_parse_i64(const char *s, int64_t *out) {
    if (s == NULL || *s == '\0') return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end != '\0') return false;
    *out = v;
    return true;
}
