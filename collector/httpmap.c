/*
 * httpmap.c: see httpmap.h.
 */
#include "collector/httpmap.h"

#include <string.h>

void hn_http_forwarded_for(const hn_cidrs *proxies, const char *xff, hn_ip *ip) {
    size_t end = strlen(xff);
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',') start--;
        const char *p = xff + start;
        size_t n = end - start;
        while (n && (*p == ' ' || *p == '\t')) p++, n--;
        while (n && (p[n - 1] == ' ' || p[n - 1] == '\t')) n--;
        hn_ip hop;
        if (n == 0 || !hn_ip_parse(p, n, &hop)) return;
        *ip = hop;
        if (!hn_cidrs_match(proxies, &hop)) return;
        end = start ? start - 1 : 0;
    }
}

int hn_http_verdict(const hn_admitted *a, const char *batch_err, const char **why) {
    if (a->accepted) return 204;
    if (a->backlog) {          /* a good beacon could not be taken: retrying later is right */
        *why = a->backlog_why == HN_R_SPOOL_FULL
                   ? "busy: the collector's spool is full (its store is unreachable)"
                   : "busy: the collector cannot reach its store";
        return 503;
    }
    if (a->msg_banned && a->refused == 0) {    /* docs/RULES.md §5: the script must not retry */
        *why = "banned";
        return 403;
    }
    if (a->msg_limited && a->refused == 0 && a->msg_limited == a->dropped) {
        *why = "chat messages too fast: retry later";
        return 429;
    }
    if (a->refused == 0) return 204;
    *why = a->first == HN_R_UNKNOWN_WIDGET ? "unknown widget key (k)" : batch_err;
    return 400;
}


hn_seed_route hn_http_seed_path(const char *path, hn_str *key) {
    size_t pl = sizeof(HN_SEED_PATH_PREFIX) - 1;
    if (strncmp(path, HN_SEED_PATH_PREFIX, pl) != 0) return HN_SEED_NONE;
    const char *k = path + pl, *slash = strchr(k, '/');
    if (slash == NULL || slash == k || slash - k > HN_SEED_KEY_RAW_MAX) return HN_SEED_NONE;
    *key = (hn_str){k, (uint32_t)(slash - k)};
    return hn_seed_route_parse(slash + 1, strlen(slash + 1));
}

const char *hn_http_seed_error(int code, hn_reason r) {
    switch (code) {
    case 400:
        return r == HN_R_MALFORMED || r == HN_R_NOT_MAP ? "bad_json"
             : r == HN_R_UNKNOWN_WIDGET                 ? "unknown_widget"
             : r == HN_R_TOO_LARGE                      ? "too_large"
                                                        : "bad_field";
    case 413: return "too_large";
    case 429: return "rate_limited";
    case 431: return "headers_too_large";
    default:  return "unavailable";
    }
}
