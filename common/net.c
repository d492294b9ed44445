/* net.c: see net.h. */
#include "common/net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int hn_addr_port(const hn_addr *a) {
    if (a->ss.ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
    if (a->ss.ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
    return 0;
}

static bool addr_any(const hn_addr *a) {
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (a->ss.ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr);
    return false;
}

bool hn_addr_overlap(const hn_addr *a, const hn_addr *b) {
    int p = hn_addr_port(a);
    if (p == 0 || p != hn_addr_port(b)) return false;
    if (addr_any(a) || addr_any(b)) return true;
    if (a->ss.ss_family != b->ss.ss_family) return false;
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)&b->ss)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr,
                  &((const struct sockaddr_in6 *)&b->ss)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

int hn_addr_parse(const char *s, hn_addr *out, char *err, size_t cap) {
    char host[128];
    const char *portstr;
    memset(out, 0, sizeof(*out));
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host)) goto bad;
        memcpy(host, s + 1, (size_t)(rb - s - 1));
        host[rb - s - 1] = '\0';
        portstr = rb + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof(host)) goto bad;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        portstr = colon + 1;
    }
    char *end;
    errno = 0;
    long port = strtol(portstr, &end, 10);
    if (errno || end == portstr || *end || port < 0 || port > 65535) goto bad;
    if (host[0] == '\0' || strcmp(host, "*") == 0) strcpy(host, "0.0.0.0");
    if (strcmp(host, "localhost") == 0) strcpy(host, "127.0.0.1");

    struct sockaddr_in *in4 = (struct sockaddr_in *)&out->ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&out->ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        out->len = sizeof(*in4);
        return HN_OK;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        out->len = sizeof(*in6);
        return HN_OK;
    }
bad:
    snprintf(err, cap, "bad address '%s' (want host:port or [v6]:port, numeric host)", s);
    return HN_ERR;
}

void hn_addr_format(const struct sockaddr *sa, char *out, size_t cap) {
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof(ip));
        snprintf(out, cap, "%s:%u", ip, ntohs(in4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(out, cap, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        snprintf(out, cap, "?");
    }
}

static int sock_open(const hn_addr *a, int type, bool reuseport, char *err, size_t cap) {
    int fd = socket(a->ss.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, cap, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0) {
        snprintf(err, cap, "SO_REUSEPORT: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (a->ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
        char as[80];
        hn_addr_format((const struct sockaddr *)&a->ss, as, sizeof(as));
        snprintf(err, cap, "bind %s: %s", as, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int hn_udp_bind(const hn_addr *a, bool reuseport, int rcvbuf, char *err, size_t cap) {
    int fd = sock_open(a, SOCK_DGRAM, reuseport, err, cap);
    if (fd >= 0 && rcvbuf > 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    return fd;
}

int hn_tcp_listen(const hn_addr *a, bool reuseport, int backlog, char *err, size_t cap) {
    int fd = sock_open(a, SOCK_STREAM, reuseport, err, cap);
    /* Request/response HTTP: Nagle would hold the tail of an answer until
     * the client's delayed ACK (≈ 40 ms). Accepted sockets inherit it. */
    int one = 1;
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
        snprintf(err, cap, "setsockopt TCP_NODELAY: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (fd >= 0 && listen(fd, backlog) < 0) {
        snprintf(err, cap, "listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

uint64_t hn_udp_drops(int fd) {
    uint32_t mem[SK_MEMINFO_VARS];
    socklen_t len = sizeof(mem);
    if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) < 0 ||
        len < (socklen_t)((SK_MEMINFO_DROPS + 1) * sizeof(uint32_t)))
        return 0;
    return mem[SK_MEMINFO_DROPS];
}

int hn_sock_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

bool hn_origin_allowed(const char *list, const char *origin) {
    size_t n = strlen(origin);
    if (n == 0) return false;
    for (const char *p = list; (p = strstr(p, origin)) != NULL; p += n) {
        bool starts = p == list || p[-1] == ' ' || p[-1] == ',';
        bool ends = p[n] == '\0' || p[n] == ' ' || p[n] == ',';
        if (starts && ends) return true;
    }
    return false;
}
