/*
 * rule.c: a rule's definition parsed, checked and compiled (rule.h,
 * docs/RULES.md §2), and its evaluation against one session.
 *
 *   JSON ─► hn_jread_members / hn_jread_elements ─► one member at a time:
 *       name, enabled, match, conditions[i] {field, op, value}, actions[i]
 *       ─► each value checked against its field's ops and limits; a regex
 *          compiled (JIT where available) and probed against strings that
 *          make catastrophic patterns explode ─► struct hn_rule (immutable)
 *
 * Every refusal is one line naming the path ("conditions[2].value: …"),
 * fit for a 400. A regex runs with a match context that caps its work
 * (match, depth and heap limits): a pattern that exceeds the caps on a
 * probe is refused at parse; at eval, a subject that exceeds them does not
 * match. The prefilter (a rule's needed literal, its page views) lets the
 * engine rule a rule out without reading it. Webhook URLs: rule_url.c.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "proto/rule.h"
#include "common/jsonread.h"
#include "common/utf8.h"

#include <ctype.h>
#include <fnmatch.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RE_MATCH_LIMIT  100000
#define RE_DEPTH_LIMIT  1000
#define RE_HEAP_LIMIT   1024         /* KiB */
#define RE_PROBE_LEN    64
#define LIST_MAX        64           /* strings of an in / not_in value */
#define AGENT_NAME_MAX  100          /* characters */

typedef enum rule_op {
    OP_EQUALS, OP_NOT_EQUALS, OP_CONTAINS, OP_NOT_CONTAINS, OP_STARTS_WITH, OP_GLOB, OP_REGEX,
    OP_IN, OP_NOT_IN, OP_IS, OP_GTE, OP_LTE, OP__N
} rule_op;

static const char *const op_names[OP__N] = {
    "equals", "not_equals", "contains", "not_contains", "starts_with", "glob", "regex",
    "in", "not_in", "is", "gte", "lte",
};

static const char *const field_names[HN_RF__N] = {
    "url", "title", "referrer", "landing_page", "utm_source", "utm_medium", "utm_campaign",
    "country", "device", "browser", "os", "language",
    "visitor", "page_views", "time_on_page", "time_on_site", "event",
};

#define B(op) (1u << (op))
#define STR_OPS (B(OP_EQUALS) | B(OP_NOT_EQUALS) | B(OP_CONTAINS) | B(OP_NOT_CONTAINS) | \
                 B(OP_STARTS_WITH) | B(OP_GLOB) | B(OP_REGEX))
#define SET_OPS (B(OP_IN) | B(OP_NOT_IN))
#define NAME_OPS (SET_OPS | B(OP_EQUALS) | B(OP_CONTAINS))
static const uint32_t field_ops[HN_RF__N] = {
    STR_OPS, STR_OPS, STR_OPS, STR_OPS, STR_OPS, STR_OPS, STR_OPS,
    SET_OPS, SET_OPS, NAME_OPS, NAME_OPS, NAME_OPS,
    B(OP_IS), B(OP_GTE) | B(OP_LTE), B(OP_GTE), B(OP_GTE), B(OP_EQUALS) | B(OP_IN),
};

static const char *const devices[] = {"desktop", "mobile", "tablet", "bot", "other"};

/* How a glob runs: without '[' or '\\', its pattern split at '*' into
 * pieces of literals and '?' (a prefix, a suffix and pieces found in
 * order); else fnmatch (bracket expressions, escapes). Both answer as
 * fnmatch(pattern, s, 0) does in the C locale. */
enum { GLOB_PIECES, GLOB_FNMATCH };

#define COND_INLINE 48          /* string values up to this many bytes live in the condition */

/* Laid out for evaluation: what a record's evaluation reads comes first,
 * and a short string value is kept inline (sv), so that a condition is
 * read from one or two cache lines of its rule. */
typedef struct cond {
    hn_rule_field field;
    rule_op       op;
    int64_t       n;             /* a number; visitor: 1 returning, 0 new */
    const char   *sv;            /* the string value to compare: sb or s; a list's values one
                                  * NUL-terminated after another */
    uint32_t      slen;
    uint8_t       glob;          /* GLOB_* */
    bool          jit;           /* re is JIT-compiled: pcre2_jit_match, without pcre2_match's checks */
    char          sb[COND_INLINE + 1];
    char         *s;             /* a string value (owned) */
    char        **v;             /* a list's values while it is read */
    int           nv;            /* a list's values */
    pcre2_code   *re;
} cond;

struct hn_rule {
    int                  nconds;
    bool                 enabled, any;
    uint32_t             fields;
    cond                 conds[HN_RULE_CONDS_MAX];
    char                *name;
    hn_rule_action       actions[HN_RULE_ACTIONS_MAX];
    int                  nactions;
    pcre2_match_context *mctx;   /* the limits every regex runs with */
};

/* ---- parse ---------------------------------------------------------------------- */

typedef struct pctx {
    hn_rule            *r;
    const hn_rule_self *self;
    char               *err;
    size_t              cap;
    int                 idx;         /* the condition or action being read */
    unsigned            seen;        /* top-level members seen (bits) */
    bool                in_actions;  /* gathering an action's members */
    /* a condition's or action's members, gathered before they are read */
    const hn_jval      *m[9];
    hn_jval             mv[9];
} pctx;

static int fail(pctx *pc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(pctx *pc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (pc->cap) vsnprintf(pc->err, pc->cap, fmt, ap);
    va_end(ap);
    return HN_ERR;
}

static size_t utf8_chars(const char *s, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

/* The string value v decoded into *out (NUL-terminated, owned by the
 * caller): valid UTF-8, no NUL byte, at most maxb bytes and between minc
 * and maxc characters (0: no bound). */
static int get_str(pctx *pc, const char *path, const hn_jval *v, size_t minc, size_t maxc,
                   size_t maxb, char **out) {
    *out = NULL;
    if (v->type != HN_J_STR) return fail(pc, "%s: must be a string", path);
    char *s = hn_xmalloc(v->len + 1);
    long n = hn_jread_str(v, s, v->len);
    if (n < 0 || !hn_utf8_valid(s, (size_t)n) || memchr(s, 0, (size_t)n)) {
        free(s);
        return fail(pc, "%s: must be valid UTF-8 without NUL", path);
    }
    s[n] = 0;
    size_t chars = utf8_chars(s, (size_t)n);
    if (maxb && (size_t)n > maxb) {
        free(s);
        return fail(pc, "%s: longer than %zu bytes", path, maxb);
    }
    if (chars < minc || (maxc && chars > maxc)) {
        free(s);
        if (minc && !chars) return fail(pc, "%s: must not be empty", path);
        return fail(pc, "%s: must be %zu to %zu characters", path, minc, maxc);
    }
    *out = s;
    return HN_OK;
}

/* c 64 times, "!", then tail (the pattern's characters: a required
 * character, as the "y" of "^(x+x+)+y$", lets the match start). */
static bool probe_fails(const pcre2_code *re, pcre2_match_context *mctx, pcre2_match_data *md,
                        unsigned char c, const char *tail) {
    char probe[RE_PROBE_LEN + 1 + HN_RULE_REGEX_MAX];
    size_t tl = strlen(tail);
    memset(probe, c, RE_PROBE_LEN);
    probe[RE_PROBE_LEN] = '!';
    memcpy(probe + RE_PROBE_LEN + 1, tail, tl);
    for (size_t n = RE_PROBE_LEN + 1; n <= RE_PROBE_LEN + 1 + tl; n += tl ? tl : 1) {
        int rc = pcre2_match(re, (PCRE2_SPTR)probe, n, 0, 0, md, mctx);
        if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
            rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT)
            return true;
    }
    return false;
}

/* Compiles c->s; refuses a pattern that exceeds the limits on a probe: 64
 * times one character then "!", for a few common characters and each
 * printable character of the pattern itself ("(x+x+)+y" explodes on
 * "xxx…x!y"), each alone and followed by the pattern's characters. */
static int compile_regex(pctx *pc, const char *path, cond *c) {
    int ec;
    PCRE2_SIZE eo;
    c->re = pcre2_compile((PCRE2_SPTR)c->s, strlen(c->s), PCRE2_UTF | PCRE2_MATCH_INVALID_UTF,
                          &ec, &eo, NULL);
    if (!c->re) {
        PCRE2_UCHAR msg[120];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        return fail(pc, "%s: regex: %s at offset %zu", path, (char *)msg, (size_t)eo);
    }
    /* the interpreter otherwise; HN_RULE_NO_JIT for valgrind, which cannot
     * follow JIT-made code */
    if (!getenv("HN_RULE_NO_JIT")) c->jit = pcre2_jit_compile(c->re, PCRE2_JIT_COMPLETE) == 0;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    bool seen[256] = {false};
    char tail[HN_RULE_REGEX_MAX + 1];
    size_t tl = 0;
    const char *fixed = "a0 /.-_x";
    for (const char *f = fixed; *f; f++) seen[(unsigned char)*f] = true;
    for (const char *p = c->s; *p; p++)
        if (isprint((unsigned char)*p)) {
            seen[(unsigned char)*p] = true;
            tail[tl++] = *p;
        }
    tail[tl] = 0;
    int rc = HN_OK;
    for (int ch = 0; ch < 256 && rc == HN_OK; ch++)
        if (seen[ch] && probe_fails(c->re, pc->r->mctx, md, (unsigned char)ch, tail))
            rc = fail(pc, "%s: regex: too costly (exceeds the match limit on the probe \"%c…%c!\", "
                      "%d characters)", path, ch, ch, RE_PROBE_LEN + 1);
    pcre2_match_data_free(md);
    return rc;
}

typedef struct listctx {
    pctx       *pc;
    const char *path;
    cond       *c;
    size_t      maxb;
} listctx;

static int list_elem(void *ctx, int i, const hn_jval *v) {
    listctx *lc = ctx;
    char path[64];
    snprintf(path, sizeof(path), "%s[%d]", lc->path, i);
    if (i >= LIST_MAX) return fail(lc->pc, "%s: at most %d values", lc->path, LIST_MAX);
    char *s;
    if (get_str(lc->pc, path, v, 1, 0, lc->maxb, &s) != HN_OK) return HN_ERR;
    lc->c->v[lc->c->nv++] = s;
    if (lc->c->field == HN_RF_COUNTRY) {
        if (strlen(s) != 2 || !isalpha((unsigned char)s[0]) || !isalpha((unsigned char)s[1]))
            return fail(lc->pc, "%s: not an ISO 3166 alpha-2 country code", path);
        s[0] = (char)toupper((unsigned char)s[0]), s[1] = (char)toupper((unsigned char)s[1]);
    } else if (lc->c->field == HN_RF_DEVICE) {
        bool ok = false;
        for (size_t k = 0; k < HN_ARRAY_LEN(devices); k++) ok |= strcmp(s, devices[k]) == 0;
        if (!ok) return fail(lc->pc, "%s: one of desktop, mobile, tablet, bot, other", path);
    }
    return HN_OK;
}

static int cond_value(pctx *pc, const char *path, cond *c, const hn_jval *v) {
    switch (c->op) {
    case OP_IN: case OP_NOT_IN: {
        if (v->type != HN_J_ARR) return fail(pc, "%s: must be an array of strings", path);
        c->v = hn_xcalloc(LIST_MAX, sizeof(char *));
        listctx lc = {pc, path, c, c->field == HN_RF_EVENT ? 64 : HN_RULE_VALUE_MAX};
        if (hn_jread_elements(v->p, v->len, list_elem, &lc) != HN_OK) return HN_ERR;
        if (c->nv == 0) return fail(pc, "%s: must not be empty", path);
        size_t total = 0;                  /* packed into sv: inline when they fit */
        for (int i = 0; i < c->nv; i++) total += strlen(c->v[i]) + 1;
        char *at = total <= sizeof(c->sb) ? c->sb : (c->s = hn_xmalloc(total));
        c->sv = at;
        for (int i = 0; i < c->nv; i++) {
            at = stpcpy(at, c->v[i]) + 1;
            free(c->v[i]);
        }
        free(c->v);
        c->v = NULL;
        return HN_OK;
    }
    case OP_IS:
        if (v->type == HN_J_STR && hn_jread_str_is(v, "new")) c->n = 0;
        else if (v->type == HN_J_STR && hn_jread_str_is(v, "returning")) c->n = 1;
        else return fail(pc, "%s: \"new\" or \"returning\"", path);
        return HN_OK;
    case OP_GTE: case OP_LTE: {
        int64_t i;
        double d;
        bool page = c->field == HN_RF_PAGE_VIEWS;
        int64_t lo = page ? 0 : 1, hi = page ? 100000 : 86400;
        if (v->type != HN_J_NUM || hn_jread_num(v, &i, &d) != 1 || i < lo || i > hi)
            return fail(pc, "%s: an integer %lld..%lld", path, (long long)lo, (long long)hi);
        c->n = i;
        return HN_OK;
    }
    default: {
        size_t maxb = c->op == OP_REGEX ? HN_RULE_REGEX_MAX
                    : c->field == HN_RF_EVENT ? 64 : HN_RULE_VALUE_MAX;
        if (get_str(pc, path, v, c->op == OP_REGEX || c->op == OP_GLOB ? 1 : 0, 0, maxb, &c->s)
            != HN_OK)
            return HN_ERR;
        c->slen = (uint32_t)strlen(c->s);
        c->sv = c->s;
        if (c->slen <= COND_INLINE) {
            memcpy(c->sb, c->s, c->slen + 1);
            c->sv = c->sb;
        }
        c->glob = strpbrk(c->s, "[\\") ? GLOB_FNMATCH : GLOB_PIECES;
        return c->op == OP_REGEX ? compile_regex(pc, path, c) : HN_OK;
    }
    }
}

enum { K_FIELD, K_OP, K_VALUE, K_TYPE, K_URL, K_TEXT, K_AGENT, K_SOUND, K_NOTIFY };
static const char *const sub_names[] = {
    "field", "op", "value", "type", "url", "text", "agent_name", "sound", "notify",
};

/* Gathers an element's members (known names, each once) into pc->m. */
static int gather(void *ctx, const hn_jval *k, const hn_jval *v) {
    pctx *pc = ctx;
    const char *list = pc->in_actions ? "actions" : "conditions";
    for (size_t i = 0; i < HN_ARRAY_LEN(sub_names); i++) {
        if (!hn_jread_str_is(k, sub_names[i])) continue;
        if (pc->m[i]) return fail(pc, "%s[%d].%s: given twice", list, pc->idx, sub_names[i]);
        pc->mv[i] = *v;
        pc->m[i] = &pc->mv[i];
        return HN_OK;
    }
    char name[48];
    long n = hn_jread_str(k, name, sizeof(name) - 1);
    if (n < 0 || !hn_utf8_valid(name, (size_t)n) || memchr(name, 0, (size_t)n)) n = 0;
    name[n] = 0;
    return fail(pc, "%s[%d]: unknown member \"%s\"", list, pc->idx, name);
}

static int cond_elem(void *ctx, int i, const hn_jval *v) {
    pctx *pc = ctx;
    hn_rule *r = pc->r;
    char path[64];
    if (i >= HN_RULE_CONDS_MAX) return fail(pc, "conditions: at most %d", HN_RULE_CONDS_MAX);
    if (v->type != HN_J_OBJ) return fail(pc, "conditions[%d]: must be an object", i);
    pc->idx = i, pc->in_actions = false;
    memset(pc->m, 0, sizeof(pc->m));
    if (hn_jread_members(v->p, v->len, gather, pc) != HN_OK) return HN_ERR;
    for (int k = K_TYPE; k <= K_NOTIFY; k++)
        if (pc->m[k]) return fail(pc, "conditions[%d]: unknown member \"%s\"", i, sub_names[k]);
    for (int k = K_FIELD; k <= K_VALUE; k++)
        if (!pc->m[k]) return fail(pc, "conditions[%d].%s: missing", i, sub_names[k]);
    cond *c = &r->conds[r->nconds++];
    int f = -1, op = -1;
    for (int k = 0; k < HN_RF__N; k++)
        if (pc->m[K_FIELD]->type == HN_J_STR && hn_jread_str_is(pc->m[K_FIELD], field_names[k])) f = k;
    if (f < 0) return fail(pc, "conditions[%d].field: unknown field", i);
    for (int k = 0; k < OP__N; k++)
        if (pc->m[K_OP]->type == HN_J_STR && hn_jread_str_is(pc->m[K_OP], op_names[k])) op = k;
    if (op < 0 || !(field_ops[f] & B(op)))
        return fail(pc, "conditions[%d].op: not an op of the field %s", i, field_names[f]);
    c->field = (hn_rule_field)f, c->op = (rule_op)op;
    r->fields |= 1u << f;
    snprintf(path, sizeof(path), "conditions[%d].value", i);
    return cond_value(pc, path, c, pc->m[K_VALUE]);
}

static int get_bool(pctx *pc, const char *path, const hn_jval *v, bool *out) {
    if (v->type != HN_J_BOOL) return fail(pc, "%s: must be true or false", path);
    *out = v->b;
    return HN_OK;
}

static int action_elem(void *ctx, int i, const hn_jval *v) {
    pctx *pc = ctx;
    hn_rule *r = pc->r;
    char path[64];
    static const char *const types[] = {NULL, "webhook", "alert", "invite"};
    /* the members each type takes */
    static const unsigned takes[] = {0, B(K_TYPE) | B(K_URL),
                                     B(K_TYPE) | B(K_TEXT) | B(K_SOUND) | B(K_NOTIFY),
                                     B(K_TYPE) | B(K_TEXT) | B(K_AGENT)};
    if (i >= HN_RULE_ACTIONS_MAX) return fail(pc, "actions: at most %d", HN_RULE_ACTIONS_MAX);
    if (v->type != HN_J_OBJ) return fail(pc, "actions[%d]: must be an object", i);
    pc->idx = i, pc->in_actions = true;
    memset(pc->m, 0, sizeof(pc->m));
    if (hn_jread_members(v->p, v->len, gather, pc) != HN_OK) return HN_ERR;
    if (!pc->m[K_TYPE]) return fail(pc, "actions[%d].type: missing", i);
    int t = 0;
    for (int k = 1; k <= 3; k++)
        if (pc->m[K_TYPE]->type == HN_J_STR && hn_jread_str_is(pc->m[K_TYPE], types[k])) t = k;
    if (!t) return fail(pc, "actions[%d].type: webhook, alert or invite", i);
    for (int k = 0; k < r->nactions; k++)
        if ((int)r->actions[k].type == t)
            return fail(pc, "actions[%d].type: at most one %s action", i, types[t]);
    for (size_t k = 0; k < HN_ARRAY_LEN(sub_names); k++)
        if (pc->m[k] && !(takes[t] & B(k)))
            return fail(pc, "actions[%d]: unknown member \"%s\" of a %s action", i, sub_names[k],
                        types[t]);
    hn_rule_action *a = &r->actions[r->nactions++];
    a->type = (hn_rule_atype)t;
    if (t == HN_RA_WEBHOOK) {
        snprintf(path, sizeof(path), "actions[%d].url", i);
        if (!pc->m[K_URL]) return fail(pc, "%s: missing", path);
        if (get_str(pc, path, pc->m[K_URL], 1, 0, HN_RULE_URL_MAX, &a->url) != HN_OK)
            return HN_ERR;
        char why[200];
        if (hn_rule_url_check(a->url, strlen(a->url), pc->self, why, sizeof(why)) != HN_OK)
            return fail(pc, "actions[%d]: %s", i, why);
        return HN_OK;
    }
    snprintf(path, sizeof(path), "actions[%d].text", i);
    if (!pc->m[K_TEXT]) return fail(pc, "%s: missing", path);
    if (get_str(pc, path, pc->m[K_TEXT], 1, HN_RULE_TEXT_MAX, 0, &a->text) != HN_OK)
        return HN_ERR;
    if (pc->m[K_AGENT]) {
        snprintf(path, sizeof(path), "actions[%d].agent_name", i);
        if (pc->m[K_AGENT]->type != HN_J_NULL &&
            get_str(pc, path, pc->m[K_AGENT], 1, AGENT_NAME_MAX, 0, &a->agent_name) != HN_OK)
            return HN_ERR;
    }
    snprintf(path, sizeof(path), "actions[%d].sound", i);
    if (pc->m[K_SOUND] && get_bool(pc, path, pc->m[K_SOUND], &a->sound) != HN_OK) return HN_ERR;
    snprintf(path, sizeof(path), "actions[%d].notify", i);
    if (pc->m[K_NOTIFY] && get_bool(pc, path, pc->m[K_NOTIFY], &a->notify) != HN_OK)
        return HN_ERR;
    return HN_OK;
}

static int count_elem(void *ctx, int i, const hn_jval *v) {
    (void)v;
    *(int *)ctx = i + 1;
    return HN_OK;
}

/* The number of elements of the array v (checked: well-formed). */
static int count(const hn_jval *v) {
    int n = 0;
    hn_jread_elements(v->p, v->len, count_elem, &n);
    return n;
}

enum { T_NAME, T_ENABLED, T_MATCH, T_CONDS, T_ACTIONS };
static const char *const top_names[] = {"name", "enabled", "match", "conditions", "actions"};

static int top_member(void *ctx, const hn_jval *k, const hn_jval *v) {
    pctx *pc = ctx;
    hn_rule *r = pc->r;
    int t = -1;
    for (size_t i = 0; i < HN_ARRAY_LEN(top_names); i++)
        if (hn_jread_str_is(k, top_names[i])) t = (int)i;
    if (t < 0) {
        char name[48];
        long n = hn_jread_str(k, name, sizeof(name) - 1);
        if (n < 0 || !hn_utf8_valid(name, (size_t)n) || memchr(name, 0, (size_t)n)) n = 0;
        name[n] = 0;
        return fail(pc, "unknown member \"%s\"", name);
    }
    if (pc->seen & B(t)) return fail(pc, "%s: given twice", top_names[t]);
    pc->seen |= B(t);
    switch (t) {
    case T_NAME:
        if (get_str(pc, "name", v, 1, HN_RULE_NAME_MAX, 0, &r->name) != HN_OK) return HN_ERR;
        for (const char *p = r->name; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f) return fail(pc, "name: no control characters");
        return HN_OK;
    case T_ENABLED:
        return get_bool(pc, "enabled", v, &r->enabled);
    case T_MATCH:
        if (v->type == HN_J_STR && hn_jread_str_is(v, "all")) r->any = false;
        else if (v->type == HN_J_STR && hn_jread_str_is(v, "any")) r->any = true;
        else return fail(pc, "match: \"all\" or \"any\"");
        return HN_OK;
    case T_CONDS:
        if (v->type != HN_J_ARR) return fail(pc, "conditions: must be an array");
        if (count(v) > HN_RULE_CONDS_MAX) return fail(pc, "conditions: at most %d", HN_RULE_CONDS_MAX);
        if (hn_jread_elements(v->p, v->len, cond_elem, pc) != HN_OK) return HN_ERR;
        if (!r->nconds) return fail(pc, "conditions: at least one");
        return HN_OK;
    default:
        if (v->type != HN_J_ARR) return fail(pc, "actions: must be an array");
        if (count(v) > HN_RULE_ACTIONS_MAX) return fail(pc, "actions: at most %d", HN_RULE_ACTIONS_MAX);
        if (hn_jread_elements(v->p, v->len, action_elem, pc) != HN_OK) return HN_ERR;
        if (!r->nactions) return fail(pc, "actions: at least one");
        return HN_OK;
    }
}

int hn_rule_parse(const char *json, size_t len, const hn_rule_self *self, hn_rule **out,
                  char *err, size_t cap) {
    hn_rule *r = NULL;
    pctx pc = {.self = self, .err = err, .cap = cap};
    int rc = HN_ERR;
    *out = NULL;
    if (cap) err[0] = 0;
    if (len > HN_RULE_BODY_MAX) {
        fail(&pc, "body: larger than %d bytes", HN_RULE_BODY_MAX);
        goto out;
    }
    if (!hn_jread_check(json, len)) {
        fail(&pc, "body: not well-formed JSON (or nested deeper than %d)", HN_JREAD_DEPTH);
        goto out;
    }
    r = hn_xcalloc(1, sizeof(*r));
    r->enabled = true;
    r->mctx = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(r->mctx, RE_MATCH_LIMIT);
    pcre2_set_depth_limit(r->mctx, RE_DEPTH_LIMIT);
    pcre2_set_heap_limit(r->mctx, RE_HEAP_LIMIT);
    pc.r = r;
    const char *p = json;
    while (p < json + len && strchr(" \t\r\n", *p)) p++;
    if (p >= json + len || *p != '{') {
        fail(&pc, "body: must be a JSON object");
        goto out;
    }
    if (hn_jread_members(json, len, top_member, &pc) != HN_OK) goto out;
    for (int t = 0; t < (int)HN_ARRAY_LEN(top_names); t++)
        if (t != T_ENABLED && t != T_MATCH && !(pc.seen & B(t))) {
            fail(&pc, "%s: missing", top_names[t]);
            goto out;
        }
    rc = HN_OK;
    *out = r;
    r = NULL;
out:
    hn_rule_free(r);
    return rc;
}

void hn_rule_free(hn_rule *r) {
    if (!r) return;
    for (int i = 0; i < r->nconds; i++) {
        cond *c = &r->conds[i];
        free(c->s);
        for (int k = 0; c->v && k < c->nv; k++) free(c->v[k]);     /* a list whose reading failed */
        free(c->v);
        pcre2_code_free(c->re);
    }
    for (int i = 0; i < r->nactions; i++) {
        free(r->actions[i].url);
        free(r->actions[i].text);
        free(r->actions[i].agent_name);
    }
    pcre2_match_context_free(r->mctx);
    free(r->name);
    free(r);
}

const char *hn_rule_name(const hn_rule *r) { return r->name; }
bool hn_rule_enabled(const hn_rule *r) { return r->enabled; }
int hn_rule_nactions(const hn_rule *r) { return r->nactions; }
uint32_t hn_rule_fields(const hn_rule *r) { return r->fields; }

const hn_rule_action *hn_rule_action_at(const hn_rule *r, int i) {
    return i >= 0 && i < r->nactions ? &r->actions[i] : NULL;
}

/* ---- eval ----------------------------------------------------------------------- */

static inline unsigned char ascii_lower(unsigned char ch) { return ch >= 'A' && ch <= 'Z' ? ch | 0x20 : ch; }

/* Browser, OS, language, country, device: want = have without case
 * (ASCII, as strcasecmp in the C locale); a language also matches its
 * regional forms ("en" matches "en-US"). */
static bool name_eq(hn_rule_field f, const char *want, const char *have) {
    size_t i = 0;
    for (; want[i]; i++)
        if (ascii_lower((unsigned char)want[i]) != ascii_lower((unsigned char)have[i])) return false;
    return have[i] == '\0' || (f == HN_RF_LANGUAGE && have[i] == '-');
}

static bool in_list(const cond *c, const char *have) {
    const char *p = c->sv;
    for (int i = 0; i < c->nv; i++, p += strlen(p) + 1)
        if (name_eq(c->field, p, have)) return true;
    return false;
}

/* The one piece of state: each thread's match data, made at its first
 * regex and kept (one allocation per thread, not one per evaluation). One
 * pair of offsets: a pattern with groups still matches (rc 0). */
static _Thread_local pcre2_match_data *tl_md;

static bool regex_match(const hn_rule *r, const cond *c, const char *s) {
    if (!tl_md) tl_md = pcre2_match_data_create(1, NULL);
    int rc = c->jit ? pcre2_jit_match(c->re, (PCRE2_SPTR)s, strlen(s), 0, 0, tl_md, r->mctx)
                    : pcre2_match(c->re, (PCRE2_SPTR)s, strlen(s), 0, 0, tl_md, r->mctx);
    return rc >= 0;     /* a limit exceeded does not match */
}

/* p[0..m) at s: '?' matches any byte (fnmatch in the C locale). */
static bool piece_at(const char *s, const char *p, size_t m) {
    for (size_t i = 0; i < m; i++)
        if (p[i] != '?' && p[i] != s[i]) return false;
    return true;
}

/* The leftmost place of the piece p[0..m) in [at, end), NULL when none:
 * memchr for its first byte that is not '?', then a comparison. */
static const char *piece_find(const char *at, const char *end, const char *p, size_t m) {
    if ((size_t)(end - at) < m) return NULL;
    size_t j = 0;
    while (j < m && p[j] == '?') j++;
    if (j == m) return at;
    const char *lastq = end - m + j;          /* where p[j] is for the last start */
    for (const char *q = at + j; q <= lastq; q++) {
        q = memchr(q, p[j], (size_t)(lastq - q) + 1);
        if (q == NULL) return NULL;
        if (piece_at(q - j, p, m)) return q - j;
    }
    return NULL;
}

/* fnmatch(p, s, 0) for a pattern of literals, '?' and '*': the piece
 * before the first '*' is a prefix, the one after the last a suffix, and
 * the pieces between are found in order, each at its leftmost place
 * (pieces have fixed lengths, so that is where any match could put it). */
static bool glob_pieces(const char *p, size_t plen, const char *s) {
    size_t sl = strlen(s);
    const char *star = memchr(p, '*', plen);
    if (star == NULL) return sl == plen && piece_at(s, p, plen);
    size_t pre = (size_t)(star - p);
    const char *last = p + plen - 1;
    while (*last != '*') last--;
    size_t suf = plen - (size_t)(last - p) - 1;
    if (pre + suf > sl || !piece_at(s, p, pre) || !piece_at(s + sl - suf, last + 1, suf)) return false;
    const char *at = s + pre, *end = s + sl - suf;
    for (const char *q = star + 1; q < last;) {
        const char *nx = memchr(q, '*', (size_t)(last - q) + 1);
        size_t m = (size_t)(nx - q);
        if (m) {
            const char *f = piece_find(at, end, q, m);
            if (f == NULL) return false;
            at = f + m;
        }
        q = nx + 1;
    }
    return true;
}

static bool glob_match(const cond *c, const char *v) {
    return c->glob == GLOB_PIECES ? glob_pieces(c->sv, c->slen, v) : fnmatch(c->sv, v, 0) == 0;
}

/* A condition other than a time condition. */
static bool cond_holds(const hn_rule *r, const cond *c, const hn_rule_sess *s) {
    if (c->field < HN_RF__STR) {
        const char *v = s->str[c->field] ? s->str[c->field] : "";
        bool named = c->field >= HN_RF_COUNTRY;
        switch (c->op) {
        case OP_EQUALS:       return named ? name_eq(c->field, c->sv, v) : strcmp(v, c->sv) == 0;
        case OP_NOT_EQUALS:   return strcmp(v, c->sv) != 0;
        case OP_CONTAINS:     return named ? strcasestr(v, c->sv) != NULL : strstr(v, c->sv) != NULL;
        case OP_NOT_CONTAINS: return strstr(v, c->sv) == NULL;
        case OP_STARTS_WITH:  return strncmp(v, c->sv, c->slen) == 0;
        case OP_GLOB:         return glob_match(c, v);
        case OP_REGEX:        return regex_match(r, c, v);
        case OP_IN:           return in_list(c, v);
        case OP_NOT_IN:       return !in_list(c, v);
        default:              return false;
        }
    }
    switch (c->field) {
    case HN_RF_VISITOR:    return s->returning >= 0 && s->returning == c->n;
    case HN_RF_PAGE_VIEWS: return c->op == OP_GTE ? s->page_views >= c->n : s->page_views <= c->n;
    case HN_RF_EVENT:
        for (int i = 0; i < s->nevents; i++) {
            if (!s->events[i]) continue;
            if (c->op == OP_EQUALS ? strcmp(s->events[i], c->sv) == 0 : in_list(c, s->events[i]))
                return true;
        }
        return false;
    default:               return false;
    }
}

int hn_rule_eval(const hn_rule *r, const hn_rule_sess *s, int64_t now_ms, int64_t *at_ms) {
    return hn_rule_eval_why(r, s, now_ms, at_ms, NULL);
}

int hn_rule_eval_why(const hn_rule *r, const hn_rule_sess *s, int64_t now_ms, int64_t *at_ms, int *why) {
    if (why) *why = -1;
    bool timed = false;
    int64_t at = 0;     /* all: the latest time instant; any: the soonest */
    for (int i = 0; i < r->nconds; i++) {
        const cond *c = &r->conds[i];
        if (c->field == HN_RF_TIME_ON_PAGE || c->field == HN_RF_TIME_ON_SITE) {
            int64_t from = c->field == HN_RF_TIME_ON_PAGE ? s->page_start_ms : s->session_start_ms;
            if (from <= 0) {            /* not known (yet): never holds, no timer */
                if (r->any) continue;
                if (why) *why = (int)c->field;
                return HN_RULE_NO;
            }
            int64_t when = from + c->n * 1000;
            if (now_ms >= when) {
                if (r->any) return HN_RULE_MATCH;
                continue;
            }
            if (!timed || (r->any ? when < at : when > at)) at = when;
            timed = true;
            continue;
        }
        bool ok = cond_holds(r, c, s);
        if (r->any && ok) return HN_RULE_MATCH;
        if (!r->any && !ok) {
            if (why) *why = (int)c->field;
            return HN_RULE_NO;
        }
    }
    if (timed) {
        if (at_ms) *at_ms = at;
        return HN_RULE_LATER;
    }
    return r->any ? HN_RULE_NO : HN_RULE_MATCH;
}

/* ---- the prefilter -------------------------------------------------------------- */

static uint16_t gram_bit(const unsigned char *p) {
    uint32_t g = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
    return (uint16_t)((g * 2654435761u) >> 22);          /* 10 bits */
}

void hn_rule_grams(const char *s, uint64_t grams[HN_RULE_GRAM_WORDS]) {
    memset(grams, 0, HN_RULE_GRAM_WORDS * sizeof(uint64_t));
    const unsigned char *p = (const unsigned char *)s;
    for (; p[0] && p[1] && p[2]; p++) {
        uint16_t b = gram_bit(p);
        grams[b >> 6] |= 1ull << (b & 63);
    }
}

/* The longest run (3 bytes or more) of literal characters at the top level
 * of a regex, which every match contains; false when there is none, or
 * when the pattern has what this reading does not follow: (?…) groups and
 * flags, \Q…\E, escapes with arguments or back references, alternation at
 * the top level. A run inside a group, and a character a quantifier makes
 * optional, are left out (the answer may be shorter, never wrong). */
static bool regex_literal(const char *p, char *out, size_t *len) {
    char run[HN_RULE_REGEX_MAX + 1];
    size_t rl = 0, best = 0;
    int depth = 0;
    bool prev_lit = false;                       /* the last atom is the run's last character */
#define END_RUN() do { if (rl > best) { memcpy(out, run, rl); best = rl; } rl = 0; prev_lit = false; } while (0)
    for (size_t i = 0; p[i];) {
        unsigned char ch = (unsigned char)p[i];
        if (ch == '(') {
            if (p[i + 1] == '?' || p[i + 1] == '*') return false;
            END_RUN();
            depth++, i++;
        } else if (ch == ')') {
            END_RUN();
            depth--, i++;
        } else if (ch == '|') {
            if (depth == 0) return false;
            END_RUN();
            i++;
        } else if (ch == '[') {
            END_RUN();
            i++;
            if (p[i] == '^') i++;
            if (p[i] == ']') i++;
            while (p[i] && p[i] != ']') i += p[i] == '\\' && p[i + 1] ? 2 : 1;
            if (p[i]) i++;
        } else if (ch == '*' || ch == '?' || ch == '+' || ch == '{') {
            if (ch != '+' && prev_lit) {         /* the last character is optional: out */
                while (rl > 0 && ((unsigned char)run[rl - 1] & 0xC0) == 0x80) rl--;
                if (rl > 0) rl--;
            }
            END_RUN();
            if (ch == '{')
                while (p[i] && p[i] != '}') i++;
            if (p[i]) i++;
        } else if (ch == '.' || ch == '^' || ch == '$') {
            END_RUN();
            i++;
        } else if (ch == '\\') {
            char n = p[i + 1];
            if (n && strchr(".\\/-?+*()[]{}|$^ #&~=:,;'\"@%!<>_", n)) {
                if (depth == 0) run[rl++] = n, prev_lit = true;
                else prev_lit = false;
            } else if (n && strchr("dDwWsSbBhHvVRXAzZG", n)) {
                END_RUN();
            } else {
                return false;                     /* \x, \p, \k, \1, \Q, … */
            }
            i += 2;
        } else {
            size_t n = 1;                          /* a UTF-8 character whole */
            while ((p[i + n] & 0xC0) == 0x80) n++;
            if (depth == 0) {
                memcpy(run + rl, p + i, n);
                rl += n, prev_lit = true;
            } else {
                prev_lit = false;
            }
            i += n;
        }
    }
    END_RUN();
#undef END_RUN
    *len = best;
    return best >= 3;
}

/* A literal every value satisfying c contains, of 3 bytes or more (buf:
 * room for a regex's). */
static bool cond_literal(const cond *c, char *buf, const char **lit, size_t *len) {
    if (c->field >= HN_RF_COUNTRY || c->sv == NULL) return false;   /* not a case-sensitive string field */
    switch (c->op) {
    case OP_REGEX:
        if (!regex_literal(c->sv, buf, len)) return false;
        *lit = buf;
        break;
    case OP_EQUALS: case OP_CONTAINS: case OP_STARTS_WITH:
        *lit = c->sv, *len = c->slen;
        break;
    case OP_GLOB: {
        if (c->glob != GLOB_PIECES) return false;
        *len = 0;
        for (const char *q = c->sv; *q;) {
            size_t n = strcspn(q, "*?");
            if (n > *len) *lit = q, *len = n;
            q += n;
            if (*q) q++;
        }
        break;
    }
    default:
        return false;
    }
    return *len >= 3;
}

uint32_t hn_rule_min_page_views(const hn_rule *r) {
    uint32_t min = 0;
    for (int i = 0; !r->any && i < r->nconds; i++)
        if (r->conds[i].field == HN_RF_PAGE_VIEWS && r->conds[i].op == OP_GTE && (uint32_t)r->conds[i].n > min)
            min = (uint32_t)r->conds[i].n;
    return min;
}

int hn_rule_anchor(const hn_rule *r, int *field, uint16_t bits[HN_RULE_ANCHOR_GRAMS]) {
    if (r->any) return HN_ERR;
    for (int i = 0; i < r->nconds; i++) {
        const char *lit;
        char buf[HN_RULE_REGEX_MAX + 1];
        size_t len;
        if (!cond_literal(&r->conds[i], buf, &lit, &len)) continue;
        *field = (int)r->conds[i].field;
        size_t ng = len - 2;                      /* trigrams in the literal */
        for (int k = 0; k < HN_RULE_ANCHOR_GRAMS; k++)
            bits[k] = gram_bit((const unsigned char *)lit + (ng <= 1 ? 0 : (size_t)k * (ng - 1) / (HN_RULE_ANCHOR_GRAMS - 1)));
        return HN_OK;
    }
    return HN_ERR;
}
