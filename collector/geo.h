/*
 * geo.h: IP → country, region, city from a MaxMind DB file (DESIGN §7),
 * with libmaxminddb.
 *
 * The file named by HERENOW_GEOIP_DB (GeoLite2-City, DB-IP City Lite, or a
 * Country database, which gives just the country) is mapped once at start
 * (MMDB_MODE_MMAP) and then only read: one hn_geo is shared by every worker
 * thread without locks. A lookup takes the full address, in memory only
 * (what gets stored is the masked form, ip.h), and neither allocates nor
 * blocks:
 *
 *   hn_ip ─► sockaddr_in / sockaddr_in6 ─► MMDB_lookup_sockaddr ─► entry
 *         ─► MMDB_aget_value("country","iso_code" | "subdivisions","0","names","en"
 *                            | "city","names","en") ─► hn_geo_info
 *
 * IPv4 addresses (also v4-mapped IPv6 ones) are looked up as IPv4, which
 * libmaxminddb finds in ::/96 of an IPv6 database, the usual layout, or in
 * an IPv4-only one. No database given: the caller keeps a NULL hn_geo and
 * records simply have no geo.
 */
#ifndef HN_GEO_H
#define HN_GEO_H

#include "common/hn.h"
#include "common/ip.h"

typedef struct hn_geo hn_geo;

/* Strings are NUL-terminated, valid UTF-8, cut at a character boundary
 * when longer than the field; "" when the database does not say. country
 * is the ISO 3166-1 alpha-2 code (two ASCII letters) or "". */
typedef struct hn_geo_info {
    char country[3];
    char region[80];     /* first subdivision, English name */
    char city[80];       /* English name */
} hn_geo_info;

/* Maps the database at path and checks it can be searched. NULL on failure
 * with a one-line reason in err (missing file, not an MMDB, truncated or
 * corrupt). The result is read-only and thread-safe until hn_geo_close. */
hn_geo *hn_geo_open(const char *path, char *err, size_t cap);
void    hn_geo_close(hn_geo *g);            /* NULL is fine */

/* The location of ip. true when the database has an entry for it (fields it
 * lacks stay ""); false when it has none, on a lookup error (corrupt
 * database) or when g is NULL, and then *out is all "". Thread-safe,
 * allocation-free. */
bool hn_geo_lookup(const hn_geo *g, const hn_ip *ip, hn_geo_info *out);

/* The database's metadata type ("GeoLite2-City", "DBIP-City-Lite", …), for
 * the start-up log line. Valid until hn_geo_close. */
const char *hn_geo_type(const hn_geo *g);

#endif
