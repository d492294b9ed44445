/* router.c: the route table and the path matcher (router.h). */
#include "api/router.h"

#include <stdio.h>
#include <string.h>

#define WIDGETS  HN_API_WIDGETS
#define SESSIONS HN_API_SESSIONS

static const hn_route routes[HN_RT__API] = {
    [HN_RT_WIDGETS]         = {"widgets", HN_GET, WIDGETS, hn_route_widgets, false},
    [HN_RT_ACTIVE_VISITORS] = {"active_visitors", HN_GET, WIDGETS "/:widgetId/active-visitors",
                               hn_route_active_visitors, true},
    [HN_RT_STREAM]          = {"stream", HN_GET, WIDGETS "/:widgetId/active-visitors/stream", NULL, true},
    [HN_RT_STREAM_TICKET]   = {"stream_ticket", HN_POST,
                               WIDGETS "/:widgetId/active-visitors/stream/ticket", NULL, true},
    [HN_RT_SESSION]         = {"session", HN_GET, SESSIONS "/:sessionId", hn_route_session, false},
    [HN_RT_DEACTIVATE]      = {"deactivate", HN_POST, SESSIONS "/:sessionId/deactivate",
                               hn_route_deactivate, false},
    [HN_RT_STATS]           = {"stats", HN_GET, WIDGETS "/:widgetId/visitor-stats", hn_route_stats, true},
    [HN_RT_TIMESERIES]      = {"timeseries", HN_GET, WIDGETS "/:widgetId/timeseries",
                               hn_route_timeseries, true},
    [HN_RT_BREAKDOWN]       = {"breakdown", HN_GET, WIDGETS "/:widgetId/breakdown", hn_route_breakdown, true},
    [HN_RT_SESSIONS]        = {"sessions", HN_GET, WIDGETS "/:widgetId/sessions", hn_route_sessions, true},
    [HN_RT_EXPORT]          = {"export", HN_GET, WIDGETS "/:widgetId/export.csv", hn_route_export, true},
    [HN_RT_ERASE_VISITOR]   = {"erase_visitor", HN_DELETE, WIDGETS "/:widgetId/visitors/:visitor",
                               hn_route_erase_visitor, true},
    [HN_RT_CHAT_INVITE]     = {"chat_invite", HN_POST, SESSIONS "/:sessionId/chat",
                               hn_route_chat_invite, false},
    [HN_RT_CHAT_MESSAGE]    = {"chat_message", HN_POST, SESSIONS "/:sessionId/messages",
                               hn_route_chat_message, false},
    [HN_RT_CHAT_MESSAGES]   = {"chat_messages", HN_GET, SESSIONS "/:sessionId/messages",
                               hn_route_chat_messages, false},
    [HN_RT_CHAT_CLOSE]      = {"chat_close", HN_POST, SESSIONS "/:sessionId/chat/close",
                               hn_route_chat_close, false},
    [HN_RT_CHATS]           = {"chats", HN_GET, WIDGETS "/:widgetId/chats", hn_route_chats, true},
    [HN_RT_PAGES_LIVE]      = {"pages_live", HN_GET, WIDGETS "/:widgetId/pages/live",
                               hn_route_pages_live, true},
    [HN_RT_CONCURRENCY]     = {"concurrency", HN_GET, WIDGETS "/:widgetId/concurrency",
                               hn_route_concurrency, true},
    [HN_RT_WEBHOOK_GET]     = {"webhook_get", HN_GET, WIDGETS "/:widgetId/webhooks", hn_route_webhook_get, true},
    [HN_RT_WEBHOOK_PUT]     = {"webhook_put", HN_PUT, WIDGETS "/:widgetId/webhooks", hn_route_webhook_put, true},
    [HN_RT_WEBHOOK_DELETE]  = {"webhook_delete", HN_DELETE, WIDGETS "/:widgetId/webhooks",
                               hn_route_webhook_delete, true},
    [HN_RT_WEBHOOK_DELIVERIES] = {"webhook_deliveries", HN_GET, WIDGETS "/:widgetId/webhooks/deliveries",
                                  hn_route_webhook_deliveries, true},
    [HN_RT_RULE_DELIVERIES] = {"rule_deliveries", HN_GET, WIDGETS "/:widgetId/rules/:ruleId/deliveries",
                               hn_route_rule_deliveries, true},
    [HN_RT_RULES]           = {"rules", HN_GET, WIDGETS "/:widgetId/rules", hn_route_rules, true},
    [HN_RT_RULE_CREATE]     = {"rule_create", HN_POST, WIDGETS "/:widgetId/rules",
                               hn_route_rule_create, true},
    [HN_RT_RULE]            = {"rule", HN_GET, WIDGETS "/:widgetId/rules/:ruleId", hn_route_rule, true},
    [HN_RT_RULE_PUT]        = {"rule_put", HN_PUT, WIDGETS "/:widgetId/rules/:ruleId",
                               hn_route_rule_put, true},
    [HN_RT_RULE_DELETE]     = {"rule_delete", HN_DELETE, WIDGETS "/:widgetId/rules/:ruleId",
                               hn_route_rule_delete, true},
    [HN_RT_RULES_EXPORT]    = {"rules_export", HN_GET, WIDGETS "/:widgetId/rules-export",
                               hn_route_rules_export, true},
};

static const char *const extra_names[HN_RT__COUNT - HN_RT__API] = {
    [HN_RT_LIVEZ - HN_RT__API] = "livez",         [HN_RT_READYZ - HN_RT__API] = "readyz",
    [HN_RT_METRICS - HN_RT__API] = "metrics",     [HN_RT_DASHBOARD - HN_RT__API] = "dashboard",
    [HN_RT_OTHER - HN_RT__API] = "other",
};

const hn_route *hn_route_get(hn_route_id id) {
    return id >= 0 && id < HN_RT__API ? &routes[id] : NULL;
}

/* Matches path against pattern; the raw (still encoded) parameter
 * segments go to params. */
static bool match(const char *pattern, const char *path, hn_str *params, int *nparams) {
    int n = 0;
    const char *p = pattern, *s = path;
    while (*p == '/' && *s == '/') {
        p++;
        s++;
        const char *pe = p + strcspn(p, "/"), *se = s + strcspn(s, "/");
        if (*p == ':') {
            if (se == s || n == HN_API_MAX_PATH_PARAMS) return false;
            params[n++] = (hn_str){s, (uint32_t)(se - s)};
        } else if (pe - p != se - s || memcmp(p, s, (size_t)(pe - p)) != 0) {
            return false;
        }
        p = pe;
        s = se;
    }
    if (*p || *s) return false;
    *nparams = n;
    return true;
}

const char *hn_api_method_name(hn_api_method m) {
    return m == HN_GET ? "GET" : m == HN_POST ? "POST" : m == HN_DELETE ? "DELETE"
         : m == HN_PUT ? "PUT" : "OTHER";
}

int hn_api_route_find(const char *path, hn_api_method m, hn_str *params, int *nparams,
                      char *allow, size_t cap) {
    size_t l = 0;
    allow[0] = '\0';
    for (int i = 0; i < HN_RT__API; i++) {
        int n;
        if (!match(routes[i].pattern, path, params, &n)) continue;
        if (routes[i].method == m) {
            *nparams = n;
            return i;
        }
        int w = snprintf(allow + l, cap - l, "%s%s", l ? ", " : "", hn_api_method_name(routes[i].method));
        if (w > 0 && (size_t)w < cap - l) l += (size_t)w;
    }
    return l ? -2 : -1;
}

const char *hn_api_route_name(int route) {
    if (route >= 0 && route < HN_RT__API) return routes[route].name;
    if (route >= HN_RT__API && route < HN_RT__COUNT) return extra_names[route - HN_RT__API];
    return "?";
}
