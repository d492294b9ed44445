/*
 * ip.h: client addresses: CIDR lists (trusted relays and proxies) and the
 * masking applied before an IP is stored anywhere (DESIGN §7).
 */
#ifndef HN_IP_H
#define HN_IP_H

#include "common/hn.h"

#include <netinet/in.h>
#include <sys/socket.h>

/* An address in one form for both families: IPv4 is stored v4-mapped. */
typedef struct hn_ip {
    uint8_t b[16];
    bool    v4;
} hn_ip;

typedef struct hn_cidr {
    hn_ip   ip;
    uint8_t bits;        /* prefix length in the 128-bit mapped space */
} hn_cidr;

typedef struct hn_cidrs {
    hn_cidr *v;
    size_t   n;
} hn_cidrs;

bool hn_ip_from_sockaddr(const struct sockaddr *sa, hn_ip *out);
bool hn_ip_parse(const char *s, size_t n, hn_ip *out);        /* text, either family */
void hn_ip_format(const hn_ip *ip, char *out, size_t cap);     /* >= 46 bytes */

/* "10.0.0.0/8, ::1, 192.168.1.7" → list. HN_ERR with a reason on bad input. */
int  hn_cidrs_parse(const char *list, hn_cidrs *out, char *err, size_t cap);
void hn_cidrs_free(hn_cidrs *c);
bool hn_cidrs_match(const hn_cidrs *c, const hn_ip *ip);

typedef enum { HN_IPMODE_MASK = 0, HN_IPMODE_FULL, HN_IPMODE_DROP } hn_ipmode;
hn_ipmode hn_ipmode_parse(const char *s);

/* Writes the address as it may be stored: masked to /24 (IPv4) or /48
 * (IPv6), full, or nothing (drop: returns 0). Returns the length written. */
size_t hn_ip_store_form(const hn_ip *ip, hn_ipmode mode, char *out, size_t cap);

#endif
