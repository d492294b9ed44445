/*
 * enrich.h: what the collector adds to a beacon before it becomes a record
 * (DESIGN §7), per worker thread:
 *
 *   client (IP, User-Agent) ─► UA: browser, OS, device, bot  (collector/uap.h, cached)
 *                           ─► IP: country, region, city      (collector/geo.h, full IP, memory only)
 *                           ─► IP as stored: masked / full / none (HERENOW_IP_MODE)
 *   + widget + day          ─► visitor hash (collector/vhash.h, daily salt from Redis)
 *
 * The beacons of one HTTP request or datagram share their client, so the
 * client's part is worked out once (hn_enrich_client) and each record then
 * takes it (hn_enrich_record). Strings handed to a record point into the
 * enricher and stay valid until the next hn_enrich_client.
 */
#ifndef HN_ENRICH_H
#define HN_ENRICH_H

#include "collector/geo.h"
#include "common/ip.h"
#include "collector/uap.h"
#include "collector/vhash.h"
#include "proto/record.h"

#define HN_UA_MAX 512            /* bytes of a user agent kept (and parsed) */

/* Shared, read-only after start-up (owned by the collector). */
typedef struct hn_enrich_cfg {
    const hn_uap   *uap;         /* NULL: no user-agent parsing */
    const hn_geo   *geo;         /* NULL: no geo */
    hn_salt_holder *salts;       /* the daily salts, refreshed by the housekeeping thread */
    hn_ipmode       ipmode;
} hn_enrich_cfg;

typedef struct hn_enricher {
    const hn_enrich_cfg *cfg;
    hn_uap_ctx *uctx;
    /* the current client */
    hn_ip       ip;
    bool        have_ip;
    char        ua[HN_UA_MAX];
    uint32_t    ualen;
    char        ipstore[64];
    uint32_t    ipstore_len;
    hn_geo_info geo;
    hn_ua       uainfo;          /* copy of the lookup's answer (its strings are static or in uctx) */
    /* the visitor hash of the current client for one widget and day */
    uint32_t    vh_widget, vh_day;
    char        vh[33];
    bool        vh_valid;
    uint64_t    no_salt;         /* records stored without a visitor hash: no salt for their day */
} hn_enricher;

void hn_enricher_init(hn_enricher *e, const hn_enrich_cfg *cfg, size_t ua_cache);
void hn_enricher_free(hn_enricher *e);

/* Sets the current client: ip may be NULL (unknown), ua may be empty. A UA
 * is cut at HN_UA_MAX bytes and any byte outside printable ASCII becomes '?'
 * (a header is not promised to be UTF-8; the record must be). */
void hn_enrich_client(hn_enricher *e, const hn_ip *ip, hn_str ua);

/* The current client looks like a bot (uap-core Spider, headless browser). */
bool hn_enrich_is_bot(const hn_enricher *e);

/* Fills r's enrichment fields (ip, ua, visitor, geo, browser, os, device)
 * from the current client, for r->widget_id at r->recv_ts. */
void hn_enrich_record(hn_enricher *e, hn_record *r);

#endif
