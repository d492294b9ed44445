/*
 * router.h: the api's route table — every route by name (hn_route_id), its
 * method, path pattern (":name" segments are parameters), handler and
 * whether its first parameter is :widgetId; and the matcher. Pure.
 *
 * Routes without a handler (the live stream and its tickets) are answered
 * on the main thread by server.c; the others run as jobs on a worker.
 */
#ifndef HN_ROUTER_H
#define HN_ROUTER_H

#include "api/api.h"

#define HN_API_WIDGETS  "/api/visitor-tracking/widgets"
#define HN_API_SESSIONS "/api/visitor-tracking/sessions"

typedef enum hn_route_id {
    HN_RT_WIDGETS,
    HN_RT_ACTIVE_VISITORS,
    HN_RT_STREAM,
    HN_RT_STREAM_TICKET,
    HN_RT_SESSION,
    HN_RT_DEACTIVATE,
    HN_RT_STATS,
    HN_RT_TIMESERIES,
    HN_RT_BREAKDOWN,
    HN_RT_SESSIONS,
    HN_RT_EXPORT,
    HN_RT_ERASE_VISITOR,
    HN_RT_CHAT_INVITE,
    HN_RT_CHAT_MESSAGE,
    HN_RT_CHAT_MESSAGES,
    HN_RT_CHAT_CLOSE,
    HN_RT_CHATS,
    HN_RT_PAGES_LIVE,
    HN_RT_CONCURRENCY,
    HN_RT_WEBHOOK_GET,
    HN_RT_WEBHOOK_PUT,
    HN_RT_WEBHOOK_DELETE,
    HN_RT_WEBHOOK_DELIVERIES,
    HN_RT_RULE_DELIVERIES,
    HN_RT_RULES,
    HN_RT_RULE_CREATE,
    HN_RT_RULE,
    HN_RT_RULE_PUT,
    HN_RT_RULE_DELETE,
    HN_RT_RULES_EXPORT,
    HN_RT__API,                     /* the routes above are the table's */
    HN_RT_LIVEZ = HN_RT__API,       /* the ones below are for metrics and the log */
    HN_RT_READYZ,
    HN_RT_METRICS,
    HN_RT_DASHBOARD,
    HN_RT_OTHER,
    HN_RT__COUNT
} hn_route_id;

typedef struct hn_route {
    const char    *name;          /* metric label */
    hn_api_method  method;
    const char    *pattern;
    hn_api_handler handler;       /* NULL: answered on the main thread */
    bool           widget;        /* the first parameter is :widgetId */
} hn_route;

/* A route of the table (id < HN_RT__API). */
const hn_route *hn_route_get(hn_route_id id);

/* The route of path for method m: its id (raw, still encoded parameter
 * segments in params), -1 for an unknown path, -2 for a known path with
 * another method (the right ones in allow, "GET, POST"). */
int hn_api_route_find(const char *path, hn_api_method m, hn_str *params, int *nparams,
                      char *allow, size_t cap);
const char *hn_api_route_name(int route);     /* metric label; "?" out of range */
const char *hn_api_method_name(hn_api_method m);

#endif
