/*
 * rule.h: a rule (docs/RULES.md §2) — its JSON definition parsed, checked
 * and compiled, and its evaluation against one session's state. Pure: no
 * I/O, no global state (only one regex match-data block per thread that
 * evaluates a regex, kept for the thread's life). The api's engine (api/rules/engine.c) keeps the
 * state; the API routes and herenowctl refuse a bad definition with
 * hn_rule_parse's reason, so a definition is checked by the code that runs
 * it. In proto/ because a rule definition is a contract that both the api
 * and herenowctl read.
 */
#ifndef HN_RULE_H
#define HN_RULE_H

#include "common/hn.h"

#define HN_RULE_BODY_MAX     65536
#define HN_RULE_CONDS_MAX    20
#define HN_RULE_ACTIONS_MAX  5
#define HN_RULE_PER_WIDGET   200
#define HN_RULE_REGEX_MAX    256
#define HN_RULE_VALUE_MAX    512
#define HN_RULE_TEXT_MAX     500     /* characters of an alert or invitation text */
#define HN_RULE_NAME_MAX     200
#define HN_RULE_URL_MAX      2048
#define HN_RULE_EVENTS_MAX   32      /* event names a session's state keeps */

/* What a condition reads of a session. The string fields come first. */
typedef enum hn_rule_field {
    HN_RF_URL, HN_RF_TITLE, HN_RF_REFERRER, HN_RF_LANDING,
    HN_RF_UTM_SOURCE, HN_RF_UTM_MEDIUM, HN_RF_UTM_CAMPAIGN,
    HN_RF_COUNTRY, HN_RF_DEVICE, HN_RF_BROWSER, HN_RF_OS, HN_RF_LANGUAGE,
    HN_RF__STR,                          /* the number of string fields */
    HN_RF_VISITOR = HN_RF__STR,          /* new / returning */
    HN_RF_PAGE_VIEWS, HN_RF_TIME_ON_PAGE, HN_RF_TIME_ON_SITE, HN_RF_EVENT,
    HN_RF__N
} hn_rule_field;

/* One session as a rule sees it (the engine's state). Strings are NUL
 * terminated or NULL when unknown. */
typedef struct hn_rule_sess {
    const char        *str[HN_RF__STR];
    int                returning;        /* -1 not known yet, 0 new, 1 returning */
    uint32_t           page_views;
    int64_t            session_start_ms; /* wall clock, ms since the epoch; 0 unknown */
    int64_t            page_start_ms;    /* the current page view's; 0 unknown */
    const char *const *events;           /* event names seen in this session */
    int                nevents;
} hn_rule_sess;

typedef enum hn_rule_atype { HN_RA_WEBHOOK = 1, HN_RA_ALERT, HN_RA_INVITE } hn_rule_atype;

typedef struct hn_rule_action {
    hn_rule_atype type;
    char         *url;         /* webhook */
    char         *text;        /* alert, invite */
    char         *agent_name;  /* invite; NULL: the widget's */
    bool          sound, notify;   /* alert */
} hn_rule_action;

typedef struct hn_rule hn_rule;      /* compiled; immutable once parsed */

/* Where this api answers, so that a webhook URL pointing at it is refused:
 * its listen host and port, HERENOW_PUBLIC_URL's (NULL when unset), and
 * its HTTPS port's (tls_host NULL: none). */
typedef struct hn_rule_self {
    const char *listen_host;
    int         listen_port;
    const char *public_url;
    const char *tls_host;
    int         tls_port;
} hn_rule_self;

/* The self of an api listening on api_listen and api_https_listen
 * ("host:port"; NULL or empty: none) with public_url (NULL: none). host is
 * the caller's buffer (cap bytes) for the listen hosts, which the answer
 * points into. */
hn_rule_self hn_rule_self_of(const char *api_listen, const char *api_https_listen,
                             const char *public_url, char *host, size_t cap);

/* The lifecycle webhook's events (docs/RULES.md §4), in their order; the
 * index of a name (len bytes), -1 when it is none of them. */
#define HN_WEBHOOK_NEVENTS 5
extern const char *const hn_webhook_events[HN_WEBHOOK_NEVENTS];
int hn_webhook_event_index(const char *name, size_t len);

/* A new webhook secret: 32 bytes from getrandom(2) as 64 hex digits.
 * HN_ERR when getrandom fails (errno set). */
int hn_rule_new_secret(char out[65]);

/* Parses and compiles a definition ({"name", "enabled", "match",
 * "conditions", "actions"}; any other member is refused). The API and
 * herenowctl store it in widget_rules as name and enabled (columns) and
 * definition ({"match", "conditions", "actions"} as given): a stored rule
 * compiles from `definition || jsonb_build_object('name', name, 'enabled',
 * enabled)`. HN_OK and *out, or HN_ERR with a one-line
 * reason in err ("conditions[2].value: …") fit for a 400. self may be NULL
 * (no self check). */
int  hn_rule_parse(const char *json, size_t len, const hn_rule_self *self, hn_rule **out,
                   char *err, size_t cap);
void hn_rule_free(hn_rule *r);

const char           *hn_rule_name(const hn_rule *r);
bool                  hn_rule_enabled(const hn_rule *r);
int                   hn_rule_nactions(const hn_rule *r);
const hn_rule_action *hn_rule_action_at(const hn_rule *r, int i);
/* The fields the rule's conditions read (bit 1 << hn_rule_field): the
 * engine evaluates a rule again only when one of them changed, or at its
 * timer. */
uint32_t              hn_rule_fields(const hn_rule *r);

/* Evaluates r on s at now_ms: HN_RULE_MATCH, HN_RULE_NO, or HN_RULE_LATER
 * with *at_ms the wall-clock instant at which its time conditions will
 * hold if nothing else changes (evaluate again then). */
enum { HN_RULE_NO = 0, HN_RULE_MATCH = 1, HN_RULE_LATER = 2 };
int hn_rule_eval(const hn_rule *r, const hn_rule_sess *s, int64_t now_ms, int64_t *at_ms);
/* The same, and on HN_RULE_NO of an `all` rule *why (when not NULL) is the
 * field of the condition that does not hold: the rule cannot match before
 * that field changes. -1 otherwise (an `any` rule, a match, LATER). */
int hn_rule_eval_why(const hn_rule *r, const hn_rule_sess *s, int64_t now_ms, int64_t *at_ms, int *why);

/* The prefilter: an `all` rule whose conditions include a string one that
 * needs a literal of 3 bytes or more in its field (contains, equals,
 * starts_with on url … utm_campaign; a glob's longest run of literals) is
 * given that field and the bits of up to 8 of the literal's trigrams
 * (spread over it). A value whose trigram set (hn_rule_grams) lacks one of
 * them cannot satisfy the rule:
 * the engine skips the rule without reading it. HN_OK when r has one. */
#define HN_RULE_GRAM_WORDS 16                  /* 1024 bits */
#define HN_RULE_ANCHOR_GRAMS 8                 /* trigrams of the literal tested (spread over it) */
int  hn_rule_anchor(const hn_rule *r, int *field, uint16_t bits[HN_RULE_ANCHOR_GRAMS]);
void hn_rule_grams(const char *s, uint64_t grams[HN_RULE_GRAM_WORDS]);
/* The page views an `all` rule needs at least (its page_views gte
 * conditions), 0 when none: below them it cannot match. */
uint32_t hn_rule_min_page_views(const hn_rule *r);
static inline bool hn_rule_grams_have(const uint64_t *grams, const uint16_t bits[HN_RULE_ANCHOR_GRAMS]) {
    for (int i = 0; i < HN_RULE_ANCHOR_GRAMS; i++)
        if (!(grams[bits[i] >> 6] >> (bits[i] & 63) & 1)) return false;
    return true;
}

/* A webhook URL's check (docs/RULES.md §2), shared with the lifecycle
 * webhook's PUT: HN_OK, or HN_ERR and a reason. */
int hn_rule_url_check(const char *url, size_t len, const hn_rule_self *self, char *err,
                      size_t cap);

#endif
