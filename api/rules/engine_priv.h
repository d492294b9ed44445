/*
 * engine_priv.h: what engine.c (the thread, the stream, the sessions and
 * the timers) and engine_pg.c (the rules' loads, the claims, the outbox and
 * the invitations' caps) share. Not for other rooms.
 */
#ifndef HN_RULES_ENGINE_PRIV_H
#define HN_RULES_ENGINE_PRIV_H

#include "api/rules/engine.h"
#include "proto/rule.h"

#include <pthread.h>
#include <stdatomic.h>
#include <uthash.h>

#define HN_RULES_SID_CAP 65
#define HN_RULES_WORDS_MAX ((HN_RULE_PER_WIDGET + 63) / 64)
#define HN_RULES_EVAL_BUCKETS 9     /* engine.c eval_le */

typedef struct erule {
    int64_t  id;
    hn_rule *r;
    uint32_t fields;
    bool     invite, alert, webhook;
    int8_t   afield;                  /* the prefilter's field (hn_rule_anchor), -1 none */
    uint16_t abits[HN_RULE_ANCHOR_GRAMS];   /* … and its literal's trigrams' bits */
    uint32_t min_pv;                  /* the page views it needs (hn_rule_min_page_views) */
} erule;

typedef struct ewidget {
    int64_t        id;
    UT_hash_handle hh;
    erule         *rules;
    int            nrules;
    char           sig[96];           /* md5 of its enabled rules' id:version list */
    bool           seen;              /* in the last reload's answer */
    char          *hook_url;          /* the lifecycle webhook, when it wants session events */
    bool           hook_started, hook_ended;
    bool           reads_visitor;     /* a rule reads `visitor`: new sessions ask hn:vfirst */
    bool           backfill;          /* new: its live sessions are read back first */
    uint64_t       gen;               /* this set of rules (engine-wide counter): sessions' memos */
    int            nwords;            /* 64-bit words of a bitset of its rules */
    uint64_t      *by_field;          /* per field, the rules that read it (HN_RF__N × nwords) */
    uint64_t       warmed;            /* the engine's read (reads) when its rules were last prefetched */
} ewidget;

typedef struct esess {
    char           key[96];           /* "<widget>:<session id>" */
    UT_hash_handle hh;
    uint64_t       serial;            /* this engine's number for it, never reused (the timers') */
    UT_hash_handle hs;                /* in by_serial */
    int64_t        wid;
    char           sid[HN_RULES_SID_CAP];
    char          *visitor;           /* visitor_id: the site's id, else the visitor hash */
    char          *vhash;             /* the visitor hash ("" when none) */
    char          *str[HN_RF__STR];
    int            returning;
    uint32_t       page_views;
    int64_t        start_ms, page_start_ms, last_ms;
    char          *events[HN_RULE_EVENTS_MAX];
    int            nevents;
    int64_t       *fired;             /* rule ids done with for this session */
    int            nfired, capfired;
    int            npending;          /* its matches waiting in hn_rules.pend (fired before it changes) */
    /* per rule of its widget (by index, valid while memo_gen is the
     * widget's gen): 1 + the field the rule last failed on, 0 none. An
     * `all` rule that failed on a field is not evaluated again before that
     * field changes. */
    uint8_t       *memo;
    uint64_t      *memo_bits;         /* per field, the rules whose memo names it (HN_RF__N × nwords);
                                       * then the rules fired (nwords, engine.c fired_bits) and
                                       * memo, in the same allocation */
    uint64_t       memo_gen;
    /* the timer each rule waits on for this session (rule id, instant): one
     * per rule, so that records and reloads do not pile timers up; a heap
     * entry whose instant is not the one here is stale and skipped */
    struct stimer { int64_t rule, at; } *tm;
    int            ntm, captm;
} esess;

/* A match of a record, fired after the records read with it (engine.c). */
struct epending {
    uint64_t serial;                  /* the session's */
    uint64_t gen;                     /* the widget's rules then (rule: an index in them) */
    int64_t  wid;
    int64_t  rule_id;
    int      rule;
};

typedef struct etimer {
    int64_t  at;
    int64_t  rule_id;
    uint64_t serial;                  /* the session's (esess.serial): gone, the entry is stale */
} etimer;

enum { SKIP_CHATTING, SKIP_BANNED, SKIP_SESSION_CAP, SKIP_VISITOR_CAP, SKIP_GONE, SKIP_CHAT_OFF,
       SKIP_ERROR, SKIP__N };
enum { ACT_WEBHOOK, ACT_ALERT, ACT_INVITE, ACT__N };
extern const char *const engine_skip_names[SKIP__N];   /* the metric's reason labels */

struct hn_rules {
    const hn_config     *cfg;
    const hn_redis_cfg  *rcfg;
    hn_rules_host        host;
    pthread_t            thread;
    atomic_bool          stop;
    hn_rcl              *rc;
    PGconn              *pg;
    bool                 claim_prepared;   /* on this pg (engine_pg.c) */
    int64_t              retry_at;    /* mono ms: no Redis reconnect before */
    int64_t              last_read;   /* mono ms: the last XREAD's end */
    bool                 read_full;   /* it brought COUNT entries of a shard: more are waiting */
    int64_t              pg_retry_at; /* mono ms: no PostgreSQL reconnect before */
    ewidget             *widgets;
    esess               *sess;
    esess               *by_serial;   /* the same sessions by serial */
    uint64_t             serials;     /* the last serial given */
    etimer              *heap;        /* the timers due before horizon (engine.c) */
    size_t               nheap, capheap;
    etimer              *far;         /* the others, unordered */
    size_t               nfar, capfar;
    int64_t              horizon;     /* wall ms */
    int64_t              far_ms;      /* engine.c FAR_MS */
    int                  nshards;
    char               (*cursor)[32];
    int64_t              next_reload, next_sweep, next_bans_check;   /* mono ms */
    bool                 want_backfill, backfilling;  /* widgets to read back; only they, now */
    struct hn_decoder   *dec;
    /* metrics */
    int                 *match;       /* eval_rules' matches (rule indexes) */
    struct epending     *pend;        /* matches of the records read, fired after them (engine.c) */
    size_t               npend, cappend;
    uint64_t             rules_gen;   /* the last ewidget.gen given */
    uint64_t             reads;       /* XREAD replies handled (engine.c widget_warm) */
    int                  capmatch;
    atomic_uint_fast64_t loaded, nsess, timers, evals, eval_ns, eval_hist[HN_RULES_EVAL_BUCKETS + 1], eval_record_ns, firings[ACT__N], skipped[SKIP__N],
                         claims_lost, pg_errors, redis_errors, decode_errors, webhooks_lifecycle;
};

/* engine_pg.c */
bool engine_pg_ok(hn_rules *e);
void engine_pg_lost(hn_rules *e, const char *what, PGresult *r);
/* Reloads the rules of the widgets whose signature moved and every
 * widget's lifecycle webhook; drops widgets with neither. */
void engine_reload(hn_rules *e);
/* A match of rule r on s: the claim and the actions. HN_OK (done with the
 * rule for this session, claim won or lost), HN_ERR (PostgreSQL failed:
 * evaluate again later). */
int  engine_fire(hn_rules *e, ewidget *w, const erule *r, esess *s);
/* The lifecycle webhook event ("session.started", "session.ended"). */
void engine_lifecycle(hn_rules *e, ewidget *w, const esess *s, const char *event);
/* {"session_id", …} of a session (the webhook bodies). */
void engine_session_json(hn_buf *b, const esess *s);
void engine_widget_free(ewidget *w);

/* engine.c: a widget's rules were loaded anew: its live sessions are
 * evaluated against the rules they have not fired. */
void engine_widget_reloaded(hn_rules *e, ewidget *w);

#endif
