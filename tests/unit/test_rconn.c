/* test_rconn.c: the collector's pipelined Redis connection (collector/rconn.c)
 * after a retryable error reply. A stand-in server on loopback (a socket this
 * test drives by hand, not a Redis) answers the first group with -OOM: the
 * connection is dropped, and on the next one the first group must go out
 * alone, the rest only once it is done. Were Redis taking writes again while
 * it worked through a whole pipeline, a group after a refused one would
 * otherwise land before it (test_spool once saw records out of order). */
#include "collector/rconn.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

typedef struct fx {
    struct event_base *base;
    int lfd, cfd;
    uint32_t done;
    char got[4096];
    size_t ngot;
} fx;

static void on_done(void *ctx, uint64_t tag, uint32_t ncmds, uint32_t nerr, const char *e) {
    (void)tag; (void)ncmds; (void)nerr; (void)e;
    ((fx *)ctx)->done++;
}

static void on_state(void *ctx, bool up, const char *why) { (void)ctx; (void)up; (void)why; }

/* Runs the loop once without blocking, then reads what the server side got. */
static void spin(fx *f) {
    event_base_loop(f->base, EVLOOP_NONBLOCK);
    if (f->cfd < 0) {
        f->cfd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK);
        return;
    }
    ssize_t n = recv(f->cfd, f->got + f->ngot, sizeof(f->got) - 1 - f->ngot, MSG_DONTWAIT);
    if (n > 0) f->ngot += (size_t)n;
    f->got[f->ngot] = '\0';
}

static int commands(const fx *f) {
    int n = 0;
    for (const char *p = f->got; (p = strstr(p, "*1\r\n")) != NULL; p++) n++;
    return n;
}

/* Spins until cond or a generous bound of rounds (each round a short poll). */
#define SPIN_UNTIL(f, cond)                                            \
    for (int r_ = 0; r_ < 20000 && !(cond); r_++) {                    \
        spin(f);                                                       \
        usleep(100);                                                   \
    }

static void test_first_group_alone_after_a_retryable_error(void **state) {
    (void)state;
    fx f = {.cfd = -1};
    f.base = event_base_new();
    f.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(f.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    socklen_t al = sizeof(a);
    getsockname(f.lfd, (struct sockaddr *)&a, &al);
    assert_int_equal(listen(f.lfd, 4), 0);
    char url[64], err[128];
    snprintf(url, sizeof(url), "redis://127.0.0.1:%u/0", ntohs(a.sin_port));
    hn_redis_addr addr;
    assert_int_equal(hn_redis_addr_parse(url, &addr, err, sizeof(err)), HN_OK);
    hn_rconn_cbs cbs = {on_done, on_state, NULL};
    hn_rconn *c = hn_rconn_create(f.base, &addr, &cbs, &f);
    hn_rconn_start(c);
    static const char cmd[] = "*1\r\n$4\r\nPING\r\n";
    for (int i = 0; i < 3; i++) hn_rconn_send(c, cmd, sizeof(cmd) - 1, 1, (uint64_t)i);

    /* the first connection: all three groups pipelined */
    SPIN_UNTIL(&f, commands(&f) == 3);
    assert_int_equal(commands(&f), 3);
    assert_int_equal(send(f.cfd, "-OOM command not allowed\r\n", 26, 0), 26);
    SPIN_UNTIL(&f, recv(f.cfd, f.got, 1, MSG_DONTWAIT | MSG_PEEK) == 0);   /* dropped */
    close(f.cfd);
    f.cfd = -1;
    f.ngot = 0;
    f.got[0] = '\0';

    /* the next one: the first group, and nothing after it until it is done */
    SPIN_UNTIL(&f, commands(&f) >= 1);
    for (int i = 0; i < 200; i++) spin(&f);
    if (commands(&f) != 1) fprintf(stderr, "got %zu bytes: %s\n", f.ngot, f.got);
    assert_int_equal(commands(&f), 1);
    assert_int_equal(f.done, 0);
    assert_int_equal(send(f.cfd, "+PONG\r\n", 7, 0), 7);
    SPIN_UNTIL(&f, commands(&f) == 3);
    assert_int_equal(commands(&f), 3);
    assert_int_equal(f.done, 1);
    assert_int_equal(send(f.cfd, "+PONG\r\n+PONG\r\n", 14, 0), 14);
    SPIN_UNTIL(&f, f.done == 3);
    assert_int_equal(f.done, 3);

    hn_rconn_destroy(c);
    close(f.cfd);
    close(f.lfd);
    event_base_free(f.base);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_group_alone_after_a_retryable_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
