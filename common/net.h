/*
 * net.h: addresses and listening sockets (the parts of Redis' anet.c that
 * herenow needs).
 */
#ifndef HN_NET_H
#define HN_NET_H

#include "common/hn.h"

#include <sys/socket.h>

typedef struct hn_addr {
    struct sockaddr_storage ss;
    socklen_t len;
} hn_addr;

/* Parses "host:port", "[v6]:port" or ":port" (any address). Numeric hosts
 * only, plus "localhost". Returns HN_OK or HN_ERR with a reason in err. */
int hn_addr_parse(const char *s, hn_addr *out, char *err, size_t cap);

/* The port of a parsed address (0: any). */
int hn_addr_port(const hn_addr *a);
/* True when two listen addresses would take the same connections: the same
 * non-zero port, and the same host or either one a wildcard (0.0.0.0, ::). */
bool hn_addr_overlap(const hn_addr *a, const hn_addr *b);

/* Formats an address as "ip:port" / "[ip]:port" into out. */
void hn_addr_format(const struct sockaddr *sa, char *out, size_t cap);

/* Non-blocking, close-on-exec sockets bound to a; reuseport sets
 * SO_REUSEPORT so every worker thread can bind its own socket. rcvbuf > 0
 * sets SO_RCVBUF (SO_RCVBUFFORCE first, which works as root). Return the fd
 * or -1 with a reason in err. */
int hn_udp_bind(const hn_addr *a, bool reuseport, int rcvbuf, char *err, size_t cap);
int hn_tcp_listen(const hn_addr *a, bool reuseport, int backlog, char *err, size_t cap);

/* Datagrams dropped at a socket because its receive buffer was full
 * (SO_MEMINFO's drop counter; 0 when unavailable). */
uint64_t hn_udp_drops(int fd);

/* The port a bound socket got (for ":0" in tests). */
int hn_sock_port(int fd);

/* origin (an Origin header) is one of the words of list (space- or
 * comma-separated): CORS allow-lists of the collector and the api. */
bool hn_origin_allowed(const char *list, const char *origin);

#endif
