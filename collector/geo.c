/* geo.c: see geo.h. */
#include "collector/geo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <maxminddb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hn_geo {
    MMDB_s mmdb;
};

/* MMDB_get_value builds its path array on the heap for every call;
 * MMDB_aget_value takes a ready one. */
static const char *const path_country[] = {"country", "iso_code", NULL};
static const char *const path_region[] = {"subdivisions", "0", "names", "en", NULL};
static const char *const path_city[] = {"city", "names", "en", NULL};

/* Looks ip up; MMDB_SUCCESS with *res, or the libmaxminddb error. */
static int lookup(const MMDB_s *mmdb, const hn_ip *ip, MMDB_lookup_result_s *res) {
    int err = MMDB_SUCCESS;
    if (ip->v4) {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        memcpy(&sin.sin_addr, ip->b + 12, 4);
        *res = MMDB_lookup_sockaddr(mmdb, (const struct sockaddr *)&sin, &err);
    } else {
        struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
        memcpy(&sin6.sin6_addr, ip->b, 16);
        *res = MMDB_lookup_sockaddr(mmdb, (const struct sockaddr *)&sin6, &err);
    }
    return err;
}

/* Copies whole UTF-8 characters of s[0..n) while they fit in dst (cap
 * bytes with the NUL); stops at the first malformed sequence or NUL, so
 * whatever the file holds, dst is valid UTF-8. */
static void copy_utf8(char *dst, size_t cap, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i], len;
        if (c == 0) break;
        else if (c < 0x80) len = 1;
        else if (c >= 0xc2 && c <= 0xdf) len = 2;
        else if (c >= 0xe0 && c <= 0xef) len = 3;
        else if (c >= 0xf0 && c <= 0xf4) len = 4;
        else break;
        if (i + len > n || i + len > cap - 1) break;
        size_t k = 1;
        while (k < len && (p[i + k] & 0xc0) == 0x80) k++;
        if (k < len) break;
        /* overlong forms, surrogates, beyond U+10FFFF */
        unsigned c1 = len > 1 ? p[i + 1] : 0;
        if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) ||
            (c == 0xf0 && c1 < 0x90) || (c == 0xf4 && c1 > 0x8f)) break;
        i += len;
    }
    memcpy(dst, s, i);
    dst[i] = '\0';
}

/* The string at path under entry into dst; "" when absent or not a string. */
static int get_string(MMDB_entry_s *entry, const char *const *path, char *dst, size_t cap) {
    MMDB_entry_data_s d;
    dst[0] = '\0';
    int st = MMDB_aget_value(entry, &d, path);
    if (st == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR) return MMDB_SUCCESS;
    if (st != MMDB_SUCCESS) return st;
    if (d.has_data && d.type == MMDB_DATA_TYPE_UTF8_STRING) {
        if (path == path_country && d.data_size != 2) return MMDB_SUCCESS;   /* not a country code */
        copy_utf8(dst, cap, d.utf8_string, d.data_size);
    }
    return MMDB_SUCCESS;
}

static bool is_alpha(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* One lookup into out (zeroed first); MMDB_SUCCESS also when there is no
 * entry, which *found tells. */
static int geo_find(const MMDB_s *mmdb, const hn_ip *ip, hn_geo_info *out, bool *found) {
    MMDB_lookup_result_s res;
    *found = false;
    memset(out, 0, sizeof(*out));
    int st = lookup(mmdb, ip, &res);
    if (st != MMDB_SUCCESS || !res.found_entry) return st;
    if ((st = get_string(&res.entry, path_country, out->country, sizeof(out->country))) != MMDB_SUCCESS ||
        (st = get_string(&res.entry, path_region, out->region, sizeof(out->region))) != MMDB_SUCCESS ||
        (st = get_string(&res.entry, path_city, out->city, sizeof(out->city))) != MMDB_SUCCESS) {
        memset(out, 0, sizeof(*out));
        return st;
    }
    /* "iso_code" of another length (or with the UTF-8 check cutting it)
     * is not a country code. */
    if (!(is_alpha(out->country[0]) && is_alpha(out->country[1])))
        memset(out->country, 0, sizeof(out->country));
    *found = true;
    return MMDB_SUCCESS;
}

hn_geo *hn_geo_open(const char *path, char *err, size_t cap) {
    hn_geo *g = hn_xcalloc(1, sizeof(*g));
    int st = MMDB_open(path, MMDB_MODE_MMAP, &g->mmdb);
    if (st != MMDB_SUCCESS) {
        /* MMDB_open has already released what it set up, errno kept. */
        if (st == MMDB_IO_ERROR || st == MMDB_FILE_OPEN_ERROR)
            snprintf(err, cap, "cannot open GeoIP database '%s': %s (%s)", path, MMDB_strerror(st),
                     strerror(errno));
        else
            snprintf(err, cap, "cannot open GeoIP database '%s': %s", path, MMDB_strerror(st));
        free(g);
        return NULL;
    }
    /* MMDB_open checks the metadata only; a damaged tree or data section
     * shows at the first lookup. A few probes turn the commonest damage
     * (garbage in the tree or data) into a start-up error instead of every
     * lookup failing. They also make sure the IPv4 start node, which some
     * libmaxminddb versions work out and store at the first IPv4 lookup,
     * is set before threads share the handle. */
    static const char *const probes[] = {"1.1.1.1", "8.8.8.8", "203.0.113.1", "2001:4860::8888", "2a00::1"};
    for (size_t i = 0; i < HN_ARRAY_LEN(probes); i++) {
        hn_ip ip;
        hn_geo_info info;
        bool found;
        hn_ip_parse(probes[i], strlen(probes[i]), &ip);
        if (!ip.v4 && g->mmdb.metadata.ip_version == 4) continue;
        st = geo_find(&g->mmdb, &ip, &info, &found);
        if (st != MMDB_SUCCESS) {
            snprintf(err, cap, "cannot open GeoIP database '%s': damaged: %s", path, MMDB_strerror(st));
            hn_geo_close(g);
            return NULL;
        }
    }
    return g;
}

void hn_geo_close(hn_geo *g) {
    if (g == NULL) return;
    MMDB_close(&g->mmdb);
    free(g);
}

bool hn_geo_lookup(const hn_geo *g, const hn_ip *ip, hn_geo_info *out) {
    if (g == NULL) {
        memset(out, 0, sizeof(*out));
        return false;
    }
    bool found;
    return geo_find(&g->mmdb, ip, out, &found) == MMDB_SUCCESS && found;
}

const char *hn_geo_type(const hn_geo *g) {
    return g->mmdb.metadata.database_type ? g->mmdb.metadata.database_type : "";
}
