/* udpsend.c: hn-udpsend HOST PORT — sends standard input as exactly one UDP
 * datagram (tests need byte-exact, possibly oversized or garbage datagrams,
 * which shell redirections to /dev/udp may split). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    static char buf[1 << 16];
    size_t len = 0;
    ssize_t n;
    if (argc != 3) {
        fprintf(stderr, "usage: hn-udpsend HOST PORT < datagram\n");
        return 2;
    }
    while (len < sizeof(buf) && (n = read(0, buf + len, sizeof(buf) - len)) > 0) len += (size_t)n;
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) {
        fprintf(stderr, "hn-udpsend: bad IPv4 address '%s'\n", argv[1]);
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int big = 1 << 17;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    if (fd < 0 || sendto(fd, buf, len, 0, (struct sockaddr *)&a, sizeof(a)) != (ssize_t)len) {
        perror("hn-udpsend");
        return 1;
    }
    close(fd);
    return 0;
}
