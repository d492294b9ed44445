/* engine.c: the rules engine's thread, see engine.h. */
#include "api/rules/engine_priv.h"

#include "common/log.h"
#include "common/pct.h"
#include "common/prom.h"
#include "proto/keys.h"
#include "proto/mpcheck.h"
#include "proto/record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_MS     1000
#define XREAD_COUNT  "500"
#define SWEEP_MS     1000
#define RETRY_FIRE_MS 1000
#define HEAP_COMPACT_MIN 4096    /* timers in the heap before stale ones are worth a pass */
#define FAR_MS           60000   /* timers due later than this go to the far list first
                                  * (HN_RULES_FAR_MS: the tests' shorter horizon) */
/* herenow_rule_eval_record_seconds: 1 µs .. 1 ms (a wall clock: a thread
 * the machine took away in the middle lands in the top buckets) */
static const double eval_le[] = {1e-6, 2e-6, 4e-6, 8e-6, 16e-6, 32e-6, 64e-6, 256e-6, 1e-3};
_Static_assert(HN_ARRAY_LEN(eval_le) == HN_RULES_EVAL_BUCKETS, "eval_hist's size");

static int64_t wall_ms(void) {
    return (int64_t)hn_now_ms();
}

static int64_t mono_ms(void) {
    return (int64_t)hn_mono_ms();
}

/* ---- timers: (at, rule, session), in a heap or the far list ------------------------ */

/* A 4-ary heap of 24-byte entries: a push climbs log4(n) levels, and the
 * upper levels stay in the cache (a binary heap of entries holding the
 * session id, 96 bytes, took microseconds a push at 100k timers). */
#define HEAP_D 4

static void heap_down(etimer *h, size_t n, size_t i) {
    etimer t = h[i];
    for (;;) {
        size_t c = HEAP_D * i + 1, m = c;
        if (c >= n) break;
        for (size_t k = c + 1; k < c + HEAP_D && k < n; k++)
            if (h[k].at < h[m].at) m = k;
        if (h[m].at >= t.at) break;
        h[i] = h[m];
        i = m;
    }
    h[i] = t;
}

static void heap_insert(hn_rules *e, etimer t) {
    if (e->nheap == e->capheap) {
        e->capheap = e->capheap ? e->capheap * 2 : 64;
        e->heap = hn_xreallocarray(e->heap, (size_t)e->capheap, sizeof(*e->heap));
    }
    size_t i = e->nheap++;
    while (i > 0 && e->heap[(i - 1) / HEAP_D].at > t.at) {
        e->heap[i] = e->heap[(i - 1) / HEAP_D];
        i = (i - 1) / HEAP_D;
    }
    e->heap[i] = t;
}

/* A timer due at or after the horizon is appended to the far list (most
 * time conditions wait minutes: their timers cost an append, not a climb
 * through a heap of every session's), and moves into the heap when the
 * horizon passes it (far_advance). */
static void timer_push(hn_rules *e, int64_t at, const esess *s, int64_t rule_id) {
    etimer t = {at, rule_id, s->serial};
    if (at < e->horizon) {
        heap_insert(e, t);
        return;
    }
    if (e->nfar == e->capfar) {
        e->capfar = e->capfar ? e->capfar * 2 : 64;
        e->far = hn_xreallocarray(e->far, (size_t)e->capfar, sizeof(*e->far));
    }
    e->far[e->nfar++] = t;
}

/* Every far_ms / 2: the horizon far_ms ahead, the far timers before it
 * into the heap. A far timer is at least far_ms / 2 away until then. */
static void far_advance(hn_rules *e, int64_t now) {
    if (now < e->horizon - e->far_ms / 2) return;
    e->horizon = now + e->far_ms;
    size_t k = 0;
    for (size_t i = 0; i < e->nfar; i++) {
        if (e->far[i].at < e->horizon) heap_insert(e, e->far[i]);
        else e->far[k++] = e->far[i];
    }
    e->nfar = k;
}

static etimer timer_pop(hn_rules *e) {
    etimer top = e->heap[0];
    e->heap[0] = e->heap[--e->nheap];
    if (e->nheap) heap_down(e->heap, e->nheap, 0);
    return top;
}

/* ---- sessions ----------------------------------------------------------------------- */

static size_t sess_key(char *out, int64_t wid, const char *sid, size_t len) {
    int n = snprintf(out, 96, "%lld:%.*s", (long long)wid, (int)(len > 64 ? 64 : len), sid);
    return n < 0 ? 0 : (size_t)n;
}

static esess *sess_find(hn_rules *e, int64_t wid, const char *sid, size_t len) {
    char key[96];
    size_t n = sess_key(key, wid, sid, len);
    esess *s;
    HASH_FIND(hh, e->sess, key, n, s);
    return s;
}

static void sess_free(hn_rules *e, esess *s) {
    HASH_DEL(e->sess, s);
    HASH_DELETE(hs, e->by_serial, s);
    free(s->visitor);
    free(s->vhash);
    for (int i = 0; i < HN_RF__STR; i++) free(s->str[i]);
    for (int i = 0; i < s->nevents; i++) free(s->events[i]);
    free(s->fired);
    free(s->tm);
    free(s->memo_bits);                 /* memo is in the same allocation */
    free(s);
    atomic_fetch_sub(&e->nsess, 1);
}

static void sess_unmark(esess *s, int64_t rule_id) {
    for (int i = 0; i < s->nfired; i++)
        if (s->fired[i] == rule_id) {
            s->fired[i] = s->fired[--s->nfired];
            return;
        }
}

static bool sess_fired(const esess *s, int64_t rule_id) {
    for (int i = 0; i < s->nfired; i++)
        if (s->fired[i] == rule_id) return true;
    return false;
}

/* Sets rule_id's timer for s at `at` unless one at or before it is
 * pending: true when a heap entry must be pushed. */
static bool sess_timer_set(esess *s, int64_t rule_id, int64_t at) {
    for (int i = 0; i < s->ntm; i++) {
        if (s->tm[i].rule != rule_id) continue;
        if (s->tm[i].at <= at) return false;
        s->tm[i].at = at;
        return true;
    }
    if (s->ntm == s->captm) {
        s->captm = s->captm ? s->captm * 2 : 16;
        s->tm = hn_xreallocarray(s->tm, (size_t)s->captm, sizeof(*s->tm));
    }
    s->tm[s->ntm++] = (struct stimer){rule_id, at};
    return true;
}

/* A popped timer: true when it is s's current one for the rule (which is
 * then cleared), false for a stale entry. */
static bool sess_timer_take(esess *s, int64_t rule_id, int64_t at) {
    for (int i = 0; i < s->ntm; i++) {
        if (s->tm[i].rule != rule_id) continue;
        if (s->tm[i].at != at) return false;
        s->tm[i] = s->tm[--s->ntm];
        return true;
    }
    return false;
}

static void sess_mark(esess *s, int64_t rule_id) {
    if (s->nfired == s->capfired) {
        s->capfired = s->capfired ? s->capfired * 2 : 4;
        s->fired = hn_xreallocarray(s->fired, (size_t)s->capfired, sizeof(*s->fired));
    }
    s->fired[s->nfired++] = rule_id;
}

/* A widget's rules, asked of memory at its first record of a read, while
 * the record is copied: the thread slept in XREAD and other processes
 * ran, so they are no longer in cache, and the first record's
 * evaluation would otherwise wait for them one line after another. */
static void widget_warm(hn_rules *e, ewidget *w) {
    if (w->warmed == e->reads) return;
    w->warmed = e->reads;
    const char *p = (const char *)w->rules;
    for (size_t off = 0; off < (size_t)w->nrules * sizeof(*w->rules); off += 64) __builtin_prefetch(p + off);
    p = (const char *)w->by_field;
    for (size_t off = 0; off < (size_t)HN_RF__N * (size_t)w->nwords * sizeof(uint64_t); off += 64)
        __builtin_prefetch(p + off);
    if (e->nfar < e->capfar) __builtin_prefetch(&e->far[e->nfar], 1);     /* the next far timer's place */
}

/* What the evaluation of s will read of it (its memo and fired bits, its
 * timers), asked of memory while the record's fields are copied (10,000
 * sessions: s's are not in cache). */
static void sess_prefetch(const esess *s, const ewidget *w) {
    if (s->memo_bits && s->memo_gen == w->gen) {
        const char *p = (const char *)s->memo_bits;
        size_t n = (size_t)(HN_RF__N + 1) * (size_t)w->nwords * sizeof(uint64_t) + (size_t)w->nrules;
        for (size_t off = 0; off < n; off += 64) __builtin_prefetch(p + off, 1);
    }
    if (s->tm) __builtin_prefetch(s->tm, 1);
}

/* Sets a string field from a record's value when it differs; true when it changed. */
static bool set_str(char **dst, hn_str v) {
    if (v.len == 0) return false;
    if (*dst && strlen(*dst) == v.len && memcmp(*dst, v.p, v.len) == 0) return false;
    free(*dst);
    *dst = hn_xstrndup(v.p, v.len);
    return true;
}

/* utm_source, utm_medium, utm_campaign of the landing page's query. */
static void parse_utm(esess *s) {
    const char *u = s->str[HN_RF_LANDING];
    const char *q = u ? strchr(u, '?') : NULL;
    if (q == NULL) return;
    static const char *const names[] = {"utm_source", "utm_medium", "utm_campaign"};
    static const int fields[] = {HN_RF_UTM_SOURCE, HN_RF_UTM_MEDIUM, HN_RF_UTM_CAMPAIGN};
    for (const char *p = q + 1; *p && *p != '#';) {
        size_t n = strcspn(p, "&#");
        const char *eq = memchr(p, '=', n);
        for (int i = 0; eq && i < 3; i++) {
            size_t kl = strlen(names[i]);
            if ((size_t)(eq - p) != kl || memcmp(p, names[i], kl) != 0 || s->str[fields[i]]) continue;
            size_t vl = n - kl - 1;
            char *v = hn_xmalloc(vl + 1);
            long dl = hn_pct_decode(eq + 1, vl, v, vl + 1, HN_PCT_PLUS | HN_PCT_NO_NUL);
            if (dl >= 0) s->str[fields[i]] = v;
            else free(v);
        }
        p += n;
        if (*p == '&') p++;
    }
}

/* new / returning: SET hn:vfirst:{w}:<visitor> <sid> NX GET EX <days>. */
static void ask_returning(hn_rules *e, esess *s) {
    if (e->rc == NULL || s->visitor == NULL) return;
    char key[HN_KEY_CAP], ttl[24];
    hn_key_vfirst(key, (uint64_t)s->wid, s->visitor, strlen(s->visitor));
    snprintf(ttl, sizeof(ttl), "%lld", (long long)e->cfg->returning_days * 86400);
    const char *argv[] = {"SET", key, s->sid, "NX", "GET", "EX", ttl};
    size_t len[7];
    for (int i = 0; i < 7; i++) len[i] = strlen(argv[i]);
    redisReply *r = hn_rcl_command_argv(e->rc, 7, argv, len);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        hn_warn("event=rules_redis_error op=SET error='%s'", r ? r->str : hn_rcl_errstr(e->rc));
        atomic_fetch_add(&e->redis_errors, 1);
        if (r == NULL) {
            hn_rcl_free(e->rc);
            e->rc = NULL;
        }
    } else if (r->type == REDIS_REPLY_NIL) {
        s->returning = 0;
    } else if (r->type == REDIS_REPLY_STRING) {
        s->returning = strcmp(r->str, s->sid) != 0;
    }
    if (r) freeReplyObject(r);
}

/* ---- evaluation ------------------------------------------------------------------------- */

static void view(const esess *s, hn_rule_sess *v) {
    memset(v, 0, sizeof(*v));
    for (int i = 0; i < HN_RF__STR; i++) v->str[i] = s->str[i];
    v->returning = s->returning;
    v->page_views = s->page_views;
    v->session_start_ms = s->start_ms;
    v->page_start_ms = s->page_start_ms;
    v->events = (const char *const *)s->events;
    v->nevents = s->nevents;
}

/* The rules s has fired (or is firing), by index in w's rules: the
 * candidates leave them out. Valid while s->memo_gen is w's gen. */
static uint64_t *fired_bits(const esess *s, const ewidget *w) {
    return s->memo_bits + (size_t)HN_RF__N * (size_t)w->nwords;
}

static void fired_bit(esess *s, const ewidget *w, int i, bool on) {
    uint64_t *fb = fired_bits(s, w);
    if (on) fb[i >> 6] |= 1ull << (i & 63);
    else fb[i >> 6] &= ~(1ull << (i & 63));
}

/* Rule i of w is done with for s (fired, or being fired). */
static void mark_fired(esess *s, const ewidget *w, int i) {
    sess_mark(s, w->rules[i].id);
    fired_bit(s, w, i, true);
}

/* s's memo of rule i: 1 + the field it last failed on, 0 none; kept as a
 * byte per rule and as a bitset of rules per field (memo_bits, the
 * candidates' filter). */
static void memo_set(esess *s, int nwords, int i, uint8_t m) {
    uint8_t old = s->memo[i];
    if (old == m) return;
    uint64_t bit = 1ull << (i & 63);
    if (old) s->memo_bits[(size_t)(old - 1) * (size_t)nwords + (size_t)(i >> 6)] &= ~bit;
    if (m) s->memo_bits[(size_t)(m - 1) * (size_t)nwords + (size_t)(i >> 6)] |= bit;
    s->memo[i] = m;
}

/* The rules a record must evaluate, as a bitset: those reading a field in
 * `changed` (the widget's by_field sets), less those whose memo names a
 * field the record did not change. No branch per rule: a record's filter
 * costs the same few word operations whatever the widget's rules are. */
static void candidates(const ewidget *w, const esess *s, uint32_t changed, uint64_t *cand) {
    int nw = w->nwords;
    for (int k = 0; k < nw; k++) cand[k] = 0;
    for (uint32_t c = changed & ((1u << HN_RF__N) - 1); c; c &= c - 1) {
        const uint64_t *bf = &w->by_field[(size_t)__builtin_ctz(c) * (size_t)nw];
        for (int k = 0; k < nw; k++) cand[k] |= bf[k];
    }
    for (uint32_t c = ~changed & ((1u << HN_RF__N) - 1); c; c &= c - 1) {
        const uint64_t *mb = &s->memo_bits[(size_t)__builtin_ctz(c) * (size_t)nw];
        for (int k = 0; k < nw; k++) cand[k] &= ~mb[k];
    }
    const uint64_t *fb = fired_bits(s, w);
    for (int k = 0; k < nw; k++) cand[k] &= ~fb[k];
}

/* Evaluates rule i of w on s; a match is added to e->match. */
static int eval_rule(hn_rules *e, ewidget *w, esess *s, const hn_rule_sess *v, int i, int64_t now,
                     uint64_t (*grams)[HN_RULE_GRAM_WORDS], uint32_t *built, int *nmatch) {
    const erule *r = &w->rules[i];                   /* not fired: the candidates or the caller */
    if (s->page_views < r->min_pv) {                 /* not that many page views yet: no */
        memo_set(s, w->nwords, i, (uint8_t)(HN_RF_PAGE_VIEWS + 1));
        return 0;
    }
    if (r->afield >= 0) {                            /* the literal it needs is not there: no */
        if (!(*built & 1u << r->afield)) {
            hn_rule_grams(v->str[r->afield] ? v->str[r->afield] : "", grams[r->afield]);
            *built |= 1u << r->afield;
        }
        if (!hn_rule_grams_have(grams[r->afield], r->abits)) {
            memo_set(s, w->nwords, i, (uint8_t)(r->afield + 1));
            return 0;
        }
    }
    int64_t at = 0;
    int why;
    int rc = hn_rule_eval_why(r->r, v, now, &at, &why);
    memo_set(s, w->nwords, i, (uint8_t)(rc == HN_RULE_NO && why >= 0 ? why + 1 : 0));
    if (rc == HN_RULE_LATER) {
        if (at <= now) at = now + 1;
        if (sess_timer_set(s, r->id, at)) timer_push(e, at, s, r->id);
    } else if (rc == HN_RULE_MATCH) {
        e->match[(*nmatch)++] = i;
    }
    return 1;
}

/* Evaluates s against w's rules that it has not fired: those reading a
 * field in `changed` (less the ones its memo rules out, and the ones the
 * prefilters rule out: page views, a literal's trigrams), or only rule
 * `only` when it is ≥ 0 (a timer). A stream record's evaluation
 * (`record`) goes in the histogram. The deciding is timed (one clock pair
 * per call, so the figure holds the filters and the timers' bookkeeping,
 * not the clock); the matches are acted on after it, their PostgreSQL
 * round trips outside the measure. */
static void eval_rules(hn_rules *e, ewidget *w, esess *s, uint32_t changed, int64_t only, bool record) {
    if (w->nrules == 0) return;        /* a widget with lifecycle webhooks only */
    if (e->capmatch < w->nrules) {
        e->capmatch = w->nrules;
        e->match = hn_xreallocarray(e->match, (size_t)e->capmatch, sizeof(*e->match));
    }
    if (s->memo_gen != w->gen) {
        free(s->memo_bits);
        /* memo_bits, then the fired bits, then memo */
        size_t nb = (size_t)(HN_RF__N + 1) * (size_t)(w->nwords ? w->nwords : 1);
        s->memo_bits = hn_xcalloc(nb * sizeof(uint64_t) + (size_t)(w->nrules ? w->nrules : 1), 1);
        s->memo = (uint8_t *)(s->memo_bits + nb);
        s->memo_gen = w->gen;
        for (int i = 0; s->nfired && i < w->nrules; i++)
            if (sess_fired(s, w->rules[i].id)) fired_bit(s, w, i, true);
    }
    hn_rule_sess v;
    view(s, &v);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t now = wall_ms();
    int nmatch = 0, nevals = 0;
    uint32_t built = 0;                               /* fields whose trigrams are in grams */
    uint64_t grams[HN_RF_COUNTRY][HN_RULE_GRAM_WORDS];
    if (only >= 0) {
        for (int i = 0; i < w->nrules; i++)
            if (w->rules[i].id == only && !sess_fired(s, only))
                nevals += eval_rule(e, w, s, &v, i, now, grams, &built, &nmatch);
    } else {
        uint64_t cand[HN_RULES_WORDS_MAX];
        candidates(w, s, changed, cand);
        for (int k = 0; k < w->nwords; k++)
            for (uint64_t c = cand[k]; c; c &= c - 1)
                nevals += eval_rule(e, w, s, &v, k * 64 + __builtin_ctzll(c), now, grams, &built, &nmatch);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    uint64_t ns = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    atomic_fetch_add(&e->evals, (uint64_t)nevals);
    atomic_fetch_add(&e->eval_ns, ns);
    if (record) {
        size_t b = 0;
        while (b < HN_ARRAY_LEN(eval_le) && (double)ns > eval_le[b] * 1e9) b++;
        atomic_fetch_add(&e->eval_hist[b], 1);
        atomic_fetch_add(&e->eval_record_ns, ns);
    }
    for (int k = 0; k < nmatch && record; k++) {       /* fired once the records read are decided */
        if (e->npend == e->cappend) {
            e->cappend = e->cappend ? e->cappend * 2 : 64;
            e->pend = hn_xreallocarray(e->pend, e->cappend, sizeof(*e->pend));
        }
        e->pend[e->npend++] = (struct epending){s->serial, w->gen, w->id, w->rules[e->match[k]].id, e->match[k]};
        mark_fired(s, w, e->match[k]);
        s->npending++;
    }
    for (int k = 0; k < nmatch && !record; k++) {
        const erule *r = &w->rules[e->match[k]];
        if (engine_fire(e, w, r, s) == HN_OK) {
            mark_fired(s, w, e->match[k]);
        } else {
            int64_t again = wall_ms() + RETRY_FIRE_MS;     /* after the firings before it */
            if (sess_timer_set(s, r->id, again)) timer_push(e, again, s, r->id);
        }
    }
}

/* The matches of the records read since the last call: their claims and
 * actions (a PostgreSQL round trip each), after the records' evaluations
 * so that those run one after the other, not between round trips. They
 * are fired before a record changes a session with matches waiting (or
 * ends it), so that the bodies show the session as it matched. A session
 * whose claim failed is evaluated again later. */
static void fire_pending(hn_rules *e) {
    for (size_t k = 0; k < e->npend; k++) {
        const struct epending *p = &e->pend[k];
        esess *s;
        ewidget *w;
        HASH_FIND(hs, e->by_serial, &p->serial, sizeof(p->serial), s);
        if (s == NULL) continue;
        s->npending = 0;
        HASH_FIND(hh, e->widgets, &p->wid, sizeof(p->wid), w);
        if (w == NULL || w->gen != p->gen) {         /* its rules changed since: evaluated again */
            sess_unmark(s, p->rule_id);
            s->memo_gen = 0;                          /* the fired bits made again from the ids */
            continue;
        }
        const erule *r = &w->rules[p->rule];
        if (engine_fire(e, w, r, s) != HN_OK) {
            sess_unmark(s, r->id);
            fired_bit(s, w, p->rule, false);
            int64_t again = wall_ms() + RETRY_FIRE_MS;
            if (sess_timer_set(s, r->id, again)) timer_push(e, again, s, r->id);
        }
    }
    e->npend = 0;
}

void engine_widget_reloaded(hn_rules *e, ewidget *w) {
    esess *s, *tmp;
    HASH_ITER(hh, e->sess, s, tmp)
        if (s->wid == w->id) eval_rules(e, w, s, ~0u, -1, false);
}

/* ---- records ------------------------------------------------------------------------------ */

#define F(x) (1u << (x))

static int on_record(const hn_record *rec, void *arg) {
    hn_rules *e = arg;
    ewidget *w;
    int64_t wid = rec->widget_id;
    HASH_FIND(hh, e->widgets, &wid, sizeof(wid), w);
    if (w == NULL || rec->b.s.len == 0 || (e->backfilling && !w->backfill)) return HN_OK;
    int64_t ts = (int64_t)(rec->recv_ts / 1000);
    int type = rec->b.type;
    widget_warm(e, w);
    esess *s = sess_find(e, wid, rec->b.s.p, rec->b.s.len);
    if (s && s->npending) fire_pending(e);          /* its matches, with the session as they saw it */
    if (s) sess_prefetch(s, w);
    uint32_t changed = 0;
    if (s == NULL) {
        if (type == HN_T_END) return HN_OK;
        s = hn_xcalloc(1, sizeof(*s));
        s->wid = wid;
        snprintf(s->sid, sizeof(s->sid), "%.*s", (int)(rec->b.s.len > 64 ? 64 : rec->b.s.len), rec->b.s.p);
        size_t kl = sess_key(s->key, wid, rec->b.s.p, rec->b.s.len);
        hn_str vid = rec->b.vid.len ? rec->b.vid : rec->visitor.len ? rec->visitor : rec->b.s;
        s->visitor = hn_xstrndup(vid.p, vid.len);
        s->vhash = hn_xstrndup(rec->visitor.p, rec->visitor.len);
        s->returning = -1;
        s->start_ms = s->page_start_ms = ts;
        HASH_ADD_KEYPTR(hh, e->sess, s->key, kl, s);
        s->serial = ++e->serials;
        HASH_ADD(hs, e->by_serial, serial, sizeof(s->serial), s);
        atomic_fetch_add(&e->nsess, 1);
        if (w->reads_visitor) ask_returning(e, s);
        if (w->hook_started) engine_lifecycle(e, w, s, "session.started");
        changed = ~0u;
    }
    s->last_ms = ts > s->last_ms ? ts : s->last_ms;
    if (type == HN_T_PV) {
        if (set_str(&s->str[HN_RF_URL], rec->b.u)) changed |= F(HN_RF_URL);
        if (set_str(&s->str[HN_RF_TITLE], rec->b.ti)) changed |= F(HN_RF_TITLE);
        if (s->str[HN_RF_LANDING] == NULL && rec->b.u.len) {
            set_str(&s->str[HN_RF_LANDING], rec->b.u);
            set_str(&s->str[HN_RF_REFERRER], rec->b.r);
            parse_utm(s);
            changed |= F(HN_RF_LANDING) | F(HN_RF_REFERRER) | F(HN_RF_UTM_SOURCE) |
                       F(HN_RF_UTM_MEDIUM) | F(HN_RF_UTM_CAMPAIGN);
        }
        s->page_views++;
        s->page_start_ms = ts;
        changed |= F(HN_RF_PAGE_VIEWS) | F(HN_RF_TIME_ON_PAGE);
    } else if (type == HN_T_EV && rec->b.n.len) {
        bool seen = false;
        for (int i = 0; i < s->nevents && !seen; i++)
            seen = strlen(s->events[i]) == rec->b.n.len && !memcmp(s->events[i], rec->b.n.p, rec->b.n.len);
        if (!seen && s->nevents < HN_RULE_EVENTS_MAX) {
            s->events[s->nevents++] = hn_xstrndup(rec->b.n.p, rec->b.n.len);
            changed |= F(HN_RF_EVENT);
        }
    }
    if (type != HN_T_PV && s->str[HN_RF_TITLE] == NULL && set_str(&s->str[HN_RF_TITLE], rec->b.ti))
        changed |= F(HN_RF_TITLE);
    if (s->str[HN_RF_URL] == NULL && set_str(&s->str[HN_RF_URL], rec->b.u)) changed |= F(HN_RF_URL);
    if (set_str(&s->str[HN_RF_COUNTRY], rec->country)) changed |= F(HN_RF_COUNTRY);
    if (set_str(&s->str[HN_RF_DEVICE], rec->device)) changed |= F(HN_RF_DEVICE);
    if (set_str(&s->str[HN_RF_BROWSER], rec->browser)) changed |= F(HN_RF_BROWSER);
    if (set_str(&s->str[HN_RF_OS], rec->os)) changed |= F(HN_RF_OS);
    if (set_str(&s->str[HN_RF_LANGUAGE], rec->b.l)) changed |= F(HN_RF_LANGUAGE);
    if (changed) eval_rules(e, w, s, changed, -1, true);
    if (type == HN_T_END) {
        if (s->npending) fire_pending(e);          /* its matches before it is gone */
        if (w->hook_ended) engine_lifecycle(e, w, s, "session.ended");
        sess_free(e, s);
    }
    return HN_OK;
}

/* ---- Redis ------------------------------------------------------------------------------- */

static void redis_lost(hn_rules *e, const char *what) {
    hn_warn("event=rules_redis_error op=%s error='%s'", what, e->rc && hn_rcl_err(e->rc) ? hn_rcl_errstr(e->rc) : "error reply");
    atomic_fetch_add(&e->redis_errors, 1);
    if (e->rc) hn_rcl_free(e->rc);
    e->rc = NULL;
    e->retry_at = mono_ms() + RETRY_MS;
}

/* A stream's entries: their records. cursor: where the last one's id goes
 * (NULL: nowhere). The last entry's id, NULL when there was none. */
static const char *entries(hn_rules *e, const redisReply *en_list, char *cursor, size_t cap) {
    const char *last = NULL;
    if (en_list->type == REDIS_REPLY_ARRAY && en_list->elements >= (size_t)atoi(XREAD_COUNT)) e->read_full = true;
    for (size_t j = 0; en_list->type == REDIS_REPLY_ARRAY && j < en_list->elements; j++) {
        const redisReply *en = en_list->element[j];
        if (en->type != REDIS_REPLY_ARRAY || en->elements != 2 || en->element[0]->type != REDIS_REPLY_STRING)
            continue;
        last = en->element[0]->str;
        if (cursor) snprintf(cursor, cap, "%s", last);
        if (e->widgets == NULL) continue;      /* no widget wants records: not decoded */
        const redisReply *fv = en->element[1];
        for (size_t k = 0; fv->type == REDIS_REPLY_ARRAY && k + 1 < fv->elements; k += 2) {
            if (fv->element[k]->type != REDIS_REPLY_STRING || strcmp(fv->element[k]->str, HN_STREAM_FIELD) ||
                fv->element[k + 1]->type != REDIS_REPLY_STRING)
                continue;
            char err[160];
            if (hn_record_decode_batch(e->dec, fv->element[k + 1]->str, fv->element[k + 1]->len, on_record, e,
                                       err, sizeof(err)) != HN_OK)
                atomic_fetch_add(&e->decode_errors, 1);
        }
    }
    return last;
}

static void stream_reply(hn_rules *e, redisReply *r) {
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *kv = r->element[i];
        if (kv->type != REDIS_REPLY_ARRAY || kv->elements != 2 || kv->element[0]->type != REDIS_REPLY_STRING ||
            kv->element[1]->type != REDIS_REPLY_ARRAY)
            continue;
        int sh = hn_key_stream_shard(kv->element[0]->str, kv->element[0]->len);
        if (sh < 0 || sh >= e->nshards) continue;
        entries(e, kv->element[1], e->cursor[sh], sizeof(e->cursor[sh]));
    }
}

/* Widgets that are new since the start (their first enabled rule, or a
 * session webhook): one live window of every shard is read again up to
 * where the engine is, for their records only, so that their live
 * sessions are known with their pages and starts. */
static void backfill(hn_rules *e) {
    e->backfilling = true;
    char from[40];
    int64_t since = wall_ms() - e->cfg->live_window_s * 1000;
    for (int sh = 0; sh < e->nshards && e->rc; sh++) {
        char key[HN_KEY_CAP];
        hn_key_stream(key, (unsigned)sh, (unsigned)e->nshards);
        snprintf(from, sizeof(from), "%lld-0", (long long)(since > 0 ? since : 0));
        for (;;) {
            if (e->rc == NULL) break;        /* lost inside the last batch's records */
            const char *argv[] = {"XRANGE", key, from, e->cursor[sh], "COUNT", XREAD_COUNT};
            size_t len[6];
            for (int i = 0; i < 6; i++) len[i] = strlen(argv[i]);
            redisReply *r = hn_rcl_command_argv(e->rc, 6, argv, len);
            if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
                if (r) freeReplyObject(r);
                redis_lost(e, "XRANGE");
                break;
            }
            const char *last = entries(e, r, NULL, 0);
            fire_pending(e);
            bool more = last && r->elements >= (size_t)atoi(XREAD_COUNT);
            if (last) snprintf(from, sizeof(from), "(%s", last);
            freeReplyObject(r);
            if (!more) break;
        }
    }
    e->backfilling = false;
    e->want_backfill = false;
    ewidget *w, *tmp;
    HASH_ITER(hh, e->widgets, w, tmp) w->backfill = false;
}

/* One XREAD of every shard from its cursor, blocking up to block_ms (0: not). */
static void read_streams(hn_rules *e, int64_t block_ms) {
    int n = e->nshards;
    const char **argv = hn_xcalloc((size_t)(6 + 2 * n), sizeof(*argv));
    char (*keys)[HN_KEY_CAP] = hn_xcalloc((size_t)n, sizeof(*keys));
    char blk[24];
    snprintf(blk, sizeof(blk), "%lld", (long long)block_ms);
    int argc = 0;
    argv[argc++] = "XREAD";
    argv[argc++] = "COUNT";
    argv[argc++] = XREAD_COUNT;
    if (block_ms > 0) {
        argv[argc++] = "BLOCK";
        argv[argc++] = blk;
    }
    argv[argc++] = "STREAMS";
    for (int i = 0; i < n; i++) {
        hn_key_stream(keys[i], (unsigned)i, (unsigned)e->nshards);
        argv[argc++] = keys[i];
    }
    for (int i = 0; i < n; i++) argv[argc++] = e->cursor[i];
    redisReply *r = hn_rcl_xread(e->rc, argc, argv);       /* a cluster: one XREAD per shard */
    e->last_read = mono_ms();         /* what comes in from now waits for the next read */
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        if (r) freeReplyObject(r);
        redis_lost(e, "XREAD");
    } else {
        e->reads++;
        stream_reply(e, r);
        freeReplyObject(r);
    }
    fire_pending(e);
    free(argv);
    free(keys);
}

static bool redis_ok(hn_rules *e) {
    if (e->rc) return true;
    if (mono_ms() < e->retry_at) return false;
    char err[256];
    e->rc = hn_rcl_connect(e->rcfg, (int)(e->cfg->rules_reload_ms + 5000), err, sizeof(err));
    if (e->rc == NULL) {
        hn_warn("event=rules_redis_connect_failed error='%s'", err);
        atomic_fetch_add(&e->redis_errors, 1);
        e->retry_at = mono_ms() + RETRY_MS;
        return false;
    }
    return true;
}

/* ---- the loop ------------------------------------------------------------------------------ */

static void run_timers(hn_rules *e) {
    int64_t now = wall_ms();
    far_advance(e, now);
    while (e->nheap && e->heap[0].at <= now) {
        etimer t = timer_pop(e);
        esess *s;
        ewidget *w = NULL;
        HASH_FIND(hs, e->by_serial, &t.serial, sizeof(t.serial), s);
        if (s) HASH_FIND(hh, e->widgets, &s->wid, sizeof(s->wid), w);
        if (w == NULL || !sess_timer_take(s, t.rule_id, t.at) || sess_fired(s, t.rule_id)) continue;
        eval_rules(e, w, s, 0, t.rule_id, false);
    }
}

/* Whether t is its session's current timer for the rule. */
static bool timer_current(hn_rules *e, const etimer *t) {
    esess *s;
    HASH_FIND(hs, e->by_serial, &t->serial, sizeof(t->serial), s);
    for (int j = 0; s && j < s->ntm; j++)
        if (s->tm[j].rule == t->rule_id && s->tm[j].at == t->at) return true;
    return false;
}

/* Keeps the timers that are some live session's current one (the others:
 * of sessions gone, or of timers set again earlier) and restores the heap
 * order. */
static void heap_compact(hn_rules *e) {
    size_t k = 0;
    for (size_t i = 0; i < e->nheap; i++)
        if (timer_current(e, &e->heap[i])) e->heap[k++] = e->heap[i];
    e->nheap = k;
    for (size_t i = k / HEAP_D + 1; i-- > 0;)
        if (i < k) heap_down(e->heap, k, i);
    k = 0;
    for (size_t i = 0; i < e->nfar; i++)
        if (timer_current(e, &e->far[i])) e->far[k++] = e->far[i];
    e->nfar = k;
}

/* Sessions one live window without a beacon leave (session.ended). The
 * timers of sessions gone stay in the heap until their instant (a
 * time_on_site rule's may be a day away): when they are most of it, it is
 * compacted. */
static void sweep(hn_rules *e) {
    int64_t cut = wall_ms() - e->cfg->live_window_s * 1000;
    size_t live_timers = 0;
    esess *s, *tmp;
    HASH_ITER(hh, e->sess, s, tmp) {
        ewidget *w;
        HASH_FIND(hh, e->widgets, &s->wid, sizeof(s->wid), w);
        if (w == NULL) {             /* its widget has no rules nor hooks any more */
            sess_free(e, s);
            continue;
        }
        if (s->last_ms < cut) {
            if (w->hook_ended) engine_lifecycle(e, w, s, "session.ended");
            sess_free(e, s);
            continue;
        }
        live_timers += (size_t)s->ntm;
    }
    size_t n = e->nheap + e->nfar;
    if (n > HEAP_COMPACT_MIN && n > 2 * live_timers) heap_compact(e);
    atomic_store(&e->timers, e->nheap + e->nfar);
}

static void *engine_main(void *arg) {
    hn_rules *e = arg;
    pthread_setname_np(pthread_self(), "hn-rules");     /* top -H, /proc/<pid>/task/<tid>/comm */
    hn_info("event=rules_started shards=%d reload_ms=%lld", e->nshards, (long long)e->cfg->rules_reload_ms);
    while (!atomic_load(&e->stop)) {
        int64_t now = mono_ms();
        if (now >= e->next_reload) {
            engine_reload(e);
            e->next_reload = now + e->cfg->rules_reload_ms;
        }
        run_timers(e);
        if (now >= e->next_sweep) {
            sweep(e);
            e->next_sweep = now + SWEEP_MS;
        }
        if (now >= e->next_bans_check && e->host.bans_check) {
            e->next_bans_check = now + HN_RULES_BANS_CHECK_MS;
            char err[200];
            if (redis_ok(e) && engine_pg_ok(e) &&
                e->host.bans_check(e->host.arg, e->pg, e->rc, err, sizeof(err)) != HN_OK) {
                hn_warn("event=bans_check_failed error='%s'", err);
                if (hn_rcl_err(e->rc)) redis_lost(e, "bans_check");
                else if (PQstatus(e->pg) != CONNECTION_OK) engine_pg_lost(e, "bans_check", NULL);
                else atomic_fetch_add(strncmp(err, "redis", 5) == 0 ? &e->redis_errors : &e->pg_errors, 1);
            }
        }
        int64_t block = e->next_reload - mono_ms();
        int64_t wnow = wall_ms();
        if (e->nheap && e->heap[0].at - wnow < block) block = e->heap[0].at - wnow;
        if (e->horizon - e->far_ms / 2 - wnow < block) block = e->horizon - e->far_ms / 2 - wnow;
        if (block < 1) block = 1;
        if (!redis_ok(e)) {
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);      /* waiting for the reconnect's turn */
            continue;
        }
        if (e->want_backfill) backfill(e);
        if (e->rc == NULL) continue;          /* the backfill lost Redis */
        /* HERENOW_RULES_READ_MS after a read before the next: under load a
         * read brings a batch of records, each wake-up's cold caches and
         * round trip are shared by them (docs/RULES.md §1) */
        int64_t wait = e->read_full ? 0 : e->last_read + e->cfg->rules_read_ms - mono_ms();
        if (wait > 0) {                       /* … not when the last read left entries behind */
            if (wait > block) wait = block;
            struct timespec ts = {(time_t)(wait / 1000), (long)(wait % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        e->read_full = false;
        read_streams(e, block);
    }
    hn_info("event=rules_stopped sessions=%llu", (unsigned long long)atomic_load(&e->nsess));
    return NULL;
}

hn_rules *hn_rules_start(const hn_config *cfg, const hn_redis_cfg *rcfg, const hn_rules_host *host) {
    if (strcmp(cfg->rules, "on") != 0) return NULL;
    hn_rules *e = hn_xcalloc(1, sizeof(*e));
    e->cfg = cfg;
    e->rcfg = rcfg;
    e->host = *host;
    e->nshards = (int)cfg->stream_shards;
    const char *far = getenv("HN_RULES_FAR_MS");
    e->far_ms = FAR_MS;
    if (far && !hn_parse_i64(far, &e->far_ms)) e->far_ms = FAR_MS;
    if (e->far_ms < 100 || e->far_ms > 86400000) e->far_ms = e->far_ms < 100 ? 100 : 86400000;
    e->cursor = hn_xcalloc((size_t)e->nshards, sizeof(*e->cursor));
    /* one live window back: the sessions already live are rebuilt */
    int64_t from = wall_ms() - cfg->live_window_s * 1000;
    for (int i = 0; i < e->nshards; i++)
        snprintf(e->cursor[i], sizeof(e->cursor[i]), "%lld-0", (long long)(from > 0 ? from : 0));
    e->dec = hn_decoder_create();
    if (pthread_create(&e->thread, NULL, engine_main, e) != 0) {
        hn_error("event=rules_thread_failed");
        hn_decoder_destroy(e->dec);
        free(e->cursor);
        free(e);
        return NULL;
    }
    return e;
}

void hn_rules_stop(hn_rules *e) {
    if (e == NULL) return;
    atomic_store(&e->stop, true);
    pthread_join(e->thread, NULL);
    esess *s, *ts;
    HASH_ITER(hh, e->sess, s, ts) sess_free(e, s);
    ewidget *w, *tw;
    HASH_ITER(hh, e->widgets, w, tw) {
        HASH_DEL(e->widgets, w);
        engine_widget_free(w);
    }
    if (e->rc) hn_rcl_free(e->rc);
    if (e->pg) PQfinish(e->pg);
    hn_decoder_destroy(e->dec);
    free(e->heap);
    free(e->far);
    free(e->match);
    free(e->pend);
    free(e->cursor);
    free(e);
}

void hn_rules_metrics(hn_rules *e, hn_buf *out) {
    static const char *const act[ACT__N] = {"webhook", "alert", "invite"};
    hn_prom_family(out, "herenow_rules_loaded", HN_PROM_GAUGE, "enabled rules compiled by this api's engine");
    hn_prom_u64(out, "herenow_rules_loaded", HN_PROM_L0, e ? atomic_load(&e->loaded) : 0);
    hn_prom_family(out, "herenow_rules_sessions", HN_PROM_GAUGE, "live sessions the rules engine keeps state of");
    hn_prom_u64(out, "herenow_rules_sessions", HN_PROM_L0, e ? atomic_load(&e->nsess) : 0);
    hn_prom_family(out, "herenow_rules_timers", HN_PROM_GAUGE,
                   "the engine's timers (its heap and far list) at its last sweep, stale ones included");
    hn_prom_u64(out, "herenow_rules_timers", HN_PROM_L0, e ? atomic_load(&e->timers) : 0);
    hn_prom_family(out, "herenow_rule_evaluations_total", HN_PROM_COUNTER, "rule evaluations (records and timers)");
    hn_prom_u64(out, "herenow_rule_evaluations_total", HN_PROM_L0, e ? atomic_load(&e->evals) : 0);
    hn_prom_family(out, "herenow_rule_eval_seconds_total", HN_PROM_COUNTER, "time spent in rule evaluations");
    hn_prom_f64(out, "herenow_rule_eval_seconds_total", HN_PROM_L0, e ? (double)atomic_load(&e->eval_ns) / 1e9 : 0);
    uint64_t hc[HN_ARRAY_LEN(eval_le) + 1] = {0};
    for (size_t i = 0; e && i <= HN_ARRAY_LEN(eval_le); i++) hc[i] = atomic_load(&e->eval_hist[i]);
    hn_prom_family(out, "herenow_rule_eval_record_seconds", HN_PROM_HISTOGRAM,
                   "a stream record's evaluation against every rule it concerns (a field the rule reads changed)");
    hn_prom_histogram(out, "herenow_rule_eval_record_seconds", HN_PROM_L0, eval_le, hc, HN_ARRAY_LEN(eval_le),
                      e ? (double)atomic_load(&e->eval_record_ns) / 1e9 : 0);
    hn_prom_family(out, "herenow_rule_firings_total", HN_PROM_COUNTER,
                   "rule actions this process ran (webhook and invite: the claimant; alert: every engine)");
    for (int i = 0; i < ACT__N; i++)
        hn_prom_u64(out, "herenow_rule_firings_total", HN_PROM_L1("action", act[i]),
                    e ? atomic_load(&e->firings[i]) : 0);
    hn_prom_family(out, "herenow_rule_invites_skipped_total", HN_PROM_COUNTER,
                   "auto invitations not sent, by reason");
    for (int i = 0; i < SKIP__N; i++)
        hn_prom_u64(out, "herenow_rule_invites_skipped_total", HN_PROM_L1("reason", engine_skip_names[i]),
                    e ? atomic_load(&e->skipped[i]) : 0);
    hn_prom_family(out, "herenow_rule_claims_lost_total", HN_PROM_COUNTER,
                   "matches another api process had claimed first");
    hn_prom_u64(out, "herenow_rule_claims_lost_total", HN_PROM_L0, e ? atomic_load(&e->claims_lost) : 0);
    hn_prom_family(out, "herenow_rules_errors_total", HN_PROM_COUNTER, "the rules engine's failures, by kind");
    hn_prom_u64(out, "herenow_rules_errors_total", HN_PROM_L1("kind", "pg"), e ? atomic_load(&e->pg_errors) : 0);
    hn_prom_u64(out, "herenow_rules_errors_total", HN_PROM_L1("kind", "redis"), e ? atomic_load(&e->redis_errors) : 0);
    hn_prom_u64(out, "herenow_rules_errors_total", HN_PROM_L1("kind", "decode"), e ? atomic_load(&e->decode_errors) : 0);
    hn_prom_family(out, "herenow_rules_lifecycle_webhooks_total", HN_PROM_COUNTER,
                   "session.started / session.ended deliveries this process wrote to the outbox");
    hn_prom_u64(out, "herenow_rules_lifecycle_webhooks_total", HN_PROM_L0, e ? atomic_load(&e->webhooks_lifecycle) : 0);
}
