/*
 * freeport.c: hn-freeport prints a port number that is free on 127.0.0.1 for
 * both TCP and UDP (the collector listens on both with one number).
 *
 * The kernel picks: bind a TCP socket to port 0 and read the port back (as
 * libevent's regression tests do), then bind a UDP socket to the same number.
 * When UDP is taken, try again with a new TCP port. Both sockets are closed
 * before printing, so the port is free, not reserved: a test should use it
 * right away. An unconnected, never-listening TCP socket leaves no TIME_WAIT
 * behind.
 *
 *   hn-freeport        one port
 *   hn-freeport N      N distinct ports, one per line
 *   hn-freeport --cluster   a port P with P..P+5 and P+10000..P+10005 free for
 *                      TCP (a Redis Cluster of six nodes and their bus ports:
 *                      scripts/redis-cluster.sh), P picked at random in
 *                      20000..29990, below the kernel's ephemeral range
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ATTEMPTS 200

static int bind_lo(int type, int port) {
    struct sockaddr_in a;
    int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A port free for TCP and UDP, or -1. */
static int one_port(void) {
    for (int i = 0; i < ATTEMPTS; i++) {
        int t = bind_lo(SOCK_STREAM, 0);
        if (t < 0) return -1;
        struct sockaddr_in a;
        socklen_t len = sizeof(a);
        if (getsockname(t, (struct sockaddr *)&a, &len) != 0) {
            close(t);
            return -1;
        }
        int port = ntohs(a.sin_port);
        int u = bind_lo(SOCK_DGRAM, port);
        close(t);
        if (u >= 0) {
            close(u);
            return port;
        }
    }
    errno = EADDRINUSE;
    return -1;
}

/* P..P+5 and their bus ports P+10000.. free for TCP, or -1. */
static int cluster_port(void) {
    srand((unsigned)(time(NULL) ^ (getpid() << 8)));
    for (int i = 0; i < ATTEMPTS; i++) {
        int p = 20000 + rand() % 9990, fds[12], n = 0;
        bool ok = true;
        for (int k = 0; k < 12 && ok; k++) {
            int fd = bind_lo(SOCK_STREAM, p + k % 6 + (k >= 6 ? 10000 : 0));
            if (fd < 0) ok = false;
            else fds[n++] = fd;
        }
        while (n > 0) close(fds[--n]);
        if (ok) return p;
    }
    return -1;
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--cluster") == 0) {
        int p = cluster_port();
        if (p < 0) {
            fprintf(stderr, "hn-freeport: no 6 free ports with their bus ports on 127.0.0.1\n");
            return 1;
        }
        printf("%d\n", p);
        return 0;
    }
    long n = 1;
    if (argc > 2 || (argc == 2 && ((n = strtol(argv[1], NULL, 10)) < 1 || n > 100))) {
        fprintf(stderr, "usage: hn-freeport [N (1..100)]\n");
        return 2;
    }
    int got[100];
    for (long i = 0; i < n; i++) {
        int p = -1;
        for (int tries = 0; tries < ATTEMPTS && p < 0; tries++) {
            p = one_port();
            if (p < 0) break;
            for (long j = 0; j < i; j++)
                if (got[j] == p) p = -1;    /* the kernel may hand a port out twice */
        }
        if (p < 0) {
            fprintf(stderr, "hn-freeport: no free TCP+UDP port on 127.0.0.1: %s\n",
                    strerror(errno ? errno : EADDRINUSE));
            return 1;
        }
        got[i] = p;
        printf("%d\n", p);
    }
    return 0;
}
