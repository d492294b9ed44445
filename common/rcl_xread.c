/* rcl_xread.c: hn_rcl_xread (rcl.h): XREAD and XREADGROUP over streams
 * that a cluster keeps in several slots. */
#include "common/rcl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Moves the [key, entries] pairs of each reply into one XREAD reply. */
static redisReply *merge(redisReply **r, int n) {
    size_t total = 0;
    for (int i = 0; i < n; i++)
        if (r[i]->type == REDIS_REPLY_ARRAY) total += r[i]->elements;
    redisReply *m = hn_xcalloc(1, sizeof(*m));
    if (total == 0) {
        m->type = REDIS_REPLY_NIL;
    } else {
        m->type = REDIS_REPLY_ARRAY;
        m->element = hn_xcalloc(total, sizeof(redisReply *));
        for (int i = 0; i < n; i++) {
            if (r[i]->type != REDIS_REPLY_ARRAY) continue;
            for (size_t k = 0; k < r[i]->elements; k++) m->element[m->elements++] = r[i]->element[k];
            r[i]->elements = 0;
        }
    }
    for (int i = 0; i < n; i++) freeReplyObject(r[i]);
    return m;
}

redisReply *hn_rcl_xread(hn_rcl *c, int argc, const char **argv) {
    if (!hn_rcl_cluster(c)) return hn_rcl_command_argv(c, argc, argv, NULL);
    int st = -1;
    for (int i = 1; i < argc && st < 0; i++)
        if (strcasecmp(argv[i], "STREAMS") == 0) st = i;
    int n = st < 0 ? 0 : (argc - st - 1) / 2;
    if (n == 0 || st + 1 + 2 * n != argc) return hn_rcl_command_argv(c, argc, argv, NULL);   /* Redis says why */
    /* the options before STREAMS, without BLOCK ms */
    const char **one = hn_xcalloc((size_t)st + 3, sizeof(char *));
    int k = 0;
    long block_ms = -1;
    for (int i = 0; i < st; i++) {
        if (strcasecmp(argv[i], "BLOCK") == 0 && i + 1 < st) {
            block_ms = strtol(argv[++i], NULL, 10);
            continue;
        }
        one[k++] = argv[i];
    }
    one[k] = "STREAMS";
    redisReply **got = hn_xcalloc((size_t)n, sizeof(redisReply *));
    redisReply *out = NULL;
    uint64_t until = hn_mono_us() + (block_ms > 0 ? (uint64_t)block_ms * 1000 : 0);
    for (int round = 0;; round++) {
        for (int s = 0; s < n; s++) {
            one[k + 1] = argv[st + 1 + s];
            one[k + 2] = argv[st + 1 + n + s];
            hn_rcl_append_argv(c, k + 3, one, NULL);
        }
        int have = 0;
        for (; have < n; have++)
            if (hn_rcl_get_reply(c, (void **)&got[have]) != REDIS_OK || !got[have]) break;
        if (have < n) {
            for (int s = 0; s < have; s++) freeReplyObject(got[s]);
            break;                                     /* NULL: the client is broken */
        }
        for (int s = 0; s < n && !out; s++)
            if (got[s]->type == REDIS_REPLY_ERROR) {
                out = got[s];
                got[s] = NULL;
            }
        if (out) {
            for (int s = 0; s < n; s++)
                if (got[s]) freeReplyObject(got[s]);
            break;
        }
        out = merge(got, n);
        if (out->type != REDIS_REPLY_NIL || block_ms < 0 || hn_mono_us() >= until) break;
        /* nothing yet and BLOCK asked: ask again soon (10, 20, 40, 50 ms) */
        freeReplyObject(out);
        out = NULL;
        uint64_t wait = round < 3 ? 10000u << round : 50000u, left = until - hn_mono_us();
        if (wait > left) wait = left;
        struct timespec ts = {0, (long)wait * 1000};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
    }
    free(got);
    free(one);
    return out;
}
