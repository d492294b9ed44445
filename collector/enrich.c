/*
 * enrich.c: see enrich.h.
 */
#include "collector/enrich.h"

#include <string.h>

void hn_enricher_init(hn_enricher *e, const hn_enrich_cfg *cfg, size_t ua_cache) {
    memset(e, 0, sizeof(*e));
    e->cfg = cfg;
    if (cfg->uap) e->uctx = hn_uap_ctx_create(cfg->uap, ua_cache);
}

void hn_enricher_free(hn_enricher *e) {
    if (e->uctx) hn_uap_ctx_destroy(e->uctx);
    e->uctx = NULL;
}

static size_t clean_ua(char *dst, hn_str ua) {
    size_t n = ua.len < HN_UA_MAX ? ua.len : HN_UA_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)ua.p[i];
        dst[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    return n;
}

void hn_enrich_client(hn_enricher *e, const hn_ip *ip, hn_str ua) {
    const hn_enrich_cfg *cfg = e->cfg;
    e->vh_valid = false;
    e->have_ip = ip != NULL;
    if (ip) e->ip = *ip;
    e->ualen = (uint32_t)clean_ua(e->ua, ua);

    e->ipstore_len = ip ? (uint32_t)hn_ip_store_form(ip, cfg->ipmode, e->ipstore,
                                                     sizeof(e->ipstore)) : 0;
    memset(&e->geo, 0, sizeof(e->geo));
    if (ip && cfg->geo) hn_geo_lookup(cfg->geo, ip, &e->geo);

    memset(&e->uainfo, 0, sizeof(e->uainfo));
    if (e->ualen && e->uctx) e->uainfo = *hn_uap_lookup(e->uctx, e->ua, e->ualen);
}

bool hn_enrich_is_bot(const hn_enricher *e) {
    return e->uainfo.bot;
}

static hn_str cstr(const char *s) {
    return (hn_str){s, (uint32_t)strlen(s)};
}

/* The visitor hash needs the IP (a relay or the socket gives one). With no
 * salt for the record's day (Redis unreachable since start-up) the record
 * goes without one rather than with a hash nobody else can reproduce. */
static hn_str visitor(hn_enricher *e, uint32_t widget, uint64_t recv_ms) {
    if (!e->have_ip) return (hn_str){NULL, 0};
    uint32_t day = hn_utc_day(recv_ms);
    if (!e->vh_valid || e->vh_widget != widget || e->vh_day != day) {
        hn_salt salt;
        if (!hn_salt_holder_get(e->cfg->salts, day, &salt)) {
            e->no_salt++;
            return (hn_str){NULL, 0};
        }
        hn_vhash(&salt, widget, &e->ip, e->ua, e->ualen, e->vh);
        e->vh_widget = widget;
        e->vh_day = day;
        e->vh_valid = true;
    }
    return (hn_str){e->vh, 32};
}

void hn_enrich_record(hn_enricher *e, hn_record *r) {
    r->ip = (hn_str){e->ipstore, e->ipstore_len};
    r->ua = (hn_str){e->ua, e->ualen};
    r->visitor = visitor(e, r->widget_id, r->recv_ts / 1000);
    r->country = cstr(e->geo.country);
    r->region = cstr(e->geo.region);
    r->city = cstr(e->geo.city);
    r->browser = e->uainfo.browser;
    r->browser_version = e->uainfo.browser_version;
    r->os = e->uainfo.os;
    r->os_version = e->uainfo.os_version;
    r->device = e->uainfo.device;
    r->bot = e->uainfo.bot;
}
