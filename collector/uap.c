/*
 * uap.c: ua-parser on PCRE2 (see uap.h for the data flow).
 *
 * Loading: regexes.yaml is read with libyaml's document API into three rule
 * lists (user_agent_parsers, os_parsers, device_parsers). Every regex is
 * compiled by PCRE2 in byte mode (no PCRE2_UTF: a user agent is whatever
 * bytes a client sent, and byte mode never rejects or mis-steps on invalid
 * UTF-8) and JIT-compiled; a regex JIT refuses runs in the interpreter.
 *
 * Parsing follows the uap-core specification and, where it is vague, the
 * reference implementations (uap-python, ua-parser-js): per list, the first
 * regex that matches wins; a replacement substitutes $1..$9 (an unset group
 * is empty) and is trimmed; a missing replacement takes the regex's groups
 * in order; an empty result is null; a null family is "Other".
 *
 * The cache: 4-way set-associative, sets indexed by a seeded 64-bit hash of
 * the (cut) user agent; a hit needs the hash, the length and the bytes to be
 * equal. The hashes (tags) and last-use stamps sit in small arrays apart from
 * the entries, so a lookup reads one cache line of tags before it touches an
 * entry; the least recently used way is evicted. Each entry holds its key and
 * its finished hn_ua with the strings inline, so a hit returns a pointer into
 * the entry and a miss writes the victim entry in place:
 *
 *   tags[set*4 .. set*4+3]  ── equal hash? ──►  ents[set*4 + way]: len, ua bytes, hn_ua
 *   used[set*4 .. set*4+3]  ── smallest = victim on a miss
 *
 * No allocation after hn_uap_ctx_create, except that
 * PCRE2's interpreter grows its own frame vector in the match data on the
 * first deep match of a regex JIT refused.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "collector/uap.h"

#include <errno.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <yaml.h>

/* ---- the compiled rules ------------------------------------------------------ */

enum { R_FAMILY = 0, R_V1, R_V2, R_V3, R_V4, R_NREPL };
/* for device rules: R_FAMILY = device_replacement, R_V1 = brand, R_V2 = model */
#define R_BRAND R_V1
#define R_MODEL R_V2

typedef struct uap_rule {
    pcre2_code *re;
    bool        jit;
    char       *repl[R_NREPL];     /* NULL: not given (an empty one counts as not given) */
} uap_rule;

typedef struct uap_list {
    uap_rule *v;
    size_t    n;
} uap_list;

struct hn_uap {
    uap_list ua, os, dev;
    uint32_t max_groups;       /* the most capture groups of any regex */
    size_t   jitted;
};

/* Beyond this a match is abandoned (PCRE2_ERROR_MATCHLIMIT) and counted, so
 * that a regex that backtracks badly on some input cannot hold the thread for
 * seconds. The uap-core regexes never reach it on uap-core's test files or on
 * random input (test_uap asserts hn_uap_match_errors() == 0). */
#define UAP_MATCH_LIMIT 1000000u
#define UAP_JIT_STACK_MIN (32u * 1024u)
#define UAP_JIT_STACK_MAX (512u * 1024u)

/* ---- the per-thread context ---------------------------------------------------- */

/* Sizes of the strings kept per cache entry (values are cut at a character
 * boundary to fit, including a NUL). */
#define E_BROWSER 64
#define E_BVER    32
#define E_OS      64
#define E_OSVER   32

#define UAP_WAYS 4

typedef struct cache_entry {
    uint32_t ua_len;
    hn_ua    res;
    char     browser[E_BROWSER], bver[E_BVER], os[E_OS], osver[E_OSVER];
    char     ua[HN_UAP_MAX_UA];
} cache_entry;

struct hn_uap_ctx {
    const hn_uap         *u;
    pcre2_match_data     *md;
    pcre2_match_context  *mctx;
    pcre2_jit_stack      *jstack;
    cache_entry          *ents;      /* nsets * UAP_WAYS; NULL without a cache */
    uint64_t             *tags;      /* per entry: its hash, 0 = empty */
    uint64_t             *used;      /* per entry: clock at its last use */
    size_t                nsets;     /* power of two */
    uint64_t              clock;
    cache_entry           scratch;   /* the result when there is no cache */
    hn_ua_full            full;      /* scratch for a miss */
    uint64_t              seed;
    uint64_t              hits, misses, match_errors;
};

/* ---- loading --------------------------------------------------------------------- */

static void set_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t cap, const char *fmt, ...) {
    if (err == NULL || cap == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static const char *scalar(yaml_node_t *n) {
    return (n != NULL && n->type == YAML_SCALAR_NODE) ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map, const char *key) {
    if (map == NULL || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        const char *k = scalar(yaml_document_get_node(d, p->key));
        if (k != NULL && strcmp(k, key) == 0) return yaml_document_get_node(d, p->value);
    }
    return NULL;
}

static void list_free(uap_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        pcre2_code_free(l->v[i].re);
        for (int k = 0; k < R_NREPL; k++) free(l->v[i].repl[k]);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Compiles the list under key; names are the replacement keys in R_* order. */
static int load_list(hn_uap *u, yaml_document_t *d, yaml_node_t *root, const char *key,
                     const char *const names[R_NREPL], uap_list *out, char *err, size_t cap) {
    yaml_node_t *seq = map_get(d, root, key);
    if (seq == NULL || seq->type != YAML_SEQUENCE_NODE) {
        set_err(err, cap, "uap: no list '%s' in the regexes file", key);
        return HN_ERR;
    }
    size_t n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    out->v = hn_xcalloc(n ? n : 1, sizeof(*out->v));
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(d, seq->data.sequence.items.start[i]);
        const char *re = scalar(map_get(d, item, "regex"));
        unsigned long line = item ? (unsigned long)item->start_mark.line + 1 : 0;
        if (re == NULL) {
            set_err(err, cap, "uap: %s item %zu (line %lu) has no regex", key, i + 1, line);
            return HN_ERR;
        }
        const char *flag = scalar(map_get(d, item, "regex_flag"));
        uint32_t opts = 0;
        if (flag != NULL && strchr(flag, 'i') != NULL) opts |= PCRE2_CASELESS;

        int ec;
        PCRE2_SIZE eo;
        uap_rule *r = &out->v[out->n];
        r->re = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, opts, &ec, &eo, NULL);
        if (r->re == NULL) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof(msg));
            set_err(err, cap, "uap: %s regex at line %lu: %s at offset %zu", key, line,
                    (const char *)msg, (size_t)eo);
            return HN_ERR;
        }
        out->n++;
        /* HN_UAP_NO_JIT=1: interpreted matching only, for valgrind (it
         * cannot follow JIT-made code and reports its reads as uninitialised) */
        r->jit = getenv("HN_UAP_NO_JIT") == NULL && pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE) == 0;
        if (r->jit) u->jitted++;
        uint32_t groups = 0;
        pcre2_pattern_info(r->re, PCRE2_INFO_CAPTURECOUNT, &groups);
        if (groups > u->max_groups) u->max_groups = groups;
        for (int k = 0; k < R_NREPL; k++) {
            const char *s = names[k] ? scalar(map_get(d, item, names[k])) : NULL;
            if (s != NULL && s[0] != '\0') r->repl[k] = hn_xstrdup(s);
        }
    }
    return HN_OK;
}

static const char *const ua_names[R_NREPL] = {
    "family_replacement", "v1_replacement", "v2_replacement", "v3_replacement", "v4_replacement"};
static const char *const os_names[R_NREPL] = {
    "os_replacement", "os_v1_replacement", "os_v2_replacement", "os_v3_replacement",
    "os_v4_replacement"};
static const char *const dev_names[R_NREPL] = {
    "device_replacement", "brand_replacement", "model_replacement", NULL, NULL};

hn_uap *hn_uap_load(const char *path, char *err, size_t cap) {
    hn_uap *u = hn_xcalloc(1, sizeof(*u));
    FILE *f = NULL;
    bool have_parser = false, have_doc = false;
    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = HN_ERR;

    if ((f = fopen(path, "rb")) == NULL) {
        set_err(err, cap, "uap: cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    if (!yaml_parser_initialize(&parser)) {
        set_err(err, cap, "uap: cannot initialize libyaml");
        goto out;
    }
    have_parser = true;
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        set_err(err, cap, "uap: %s line %lu: %s", path, (unsigned long)parser.problem_mark.line + 1,
                parser.problem ? parser.problem : "YAML error");
        goto out;
    }
    have_doc = true;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root == NULL || root->type != YAML_MAPPING_NODE) {
        set_err(err, cap, "uap: %s is not a YAML mapping", path);
        goto out;
    }
    if (load_list(u, &doc, root, "user_agent_parsers", ua_names, &u->ua, err, cap) != HN_OK ||
        load_list(u, &doc, root, "os_parsers", os_names, &u->os, err, cap) != HN_OK ||
        load_list(u, &doc, root, "device_parsers", dev_names, &u->dev, err, cap) != HN_OK)
        goto out;
    rc = HN_OK;
out:
    if (have_doc) yaml_document_delete(&doc);
    if (have_parser) yaml_parser_delete(&parser);
    if (f != NULL) fclose(f);
    if (rc != HN_OK) {
        hn_uap_free(u);
        u = NULL;
    }
    return u;
}

void hn_uap_free(hn_uap *u) {
    if (u == NULL) return;
    list_free(&u->ua);
    list_free(&u->os);
    list_free(&u->dev);
    free(u);
}

size_t hn_uap_regex_count(const hn_uap *u, size_t *jitted) {
    if (jitted != NULL) *jitted = u->jitted;
    return u->ua.n + u->os.n + u->dev.n;
}

/* ---- contexts -------------------------------------------------------------------- */

static uint64_t mix64(uint64_t h) {            /* murmur3's fmix64 */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

hn_uap_ctx *hn_uap_ctx_create(const hn_uap *u, size_t cache_entries) {
    hn_uap_ctx *c = hn_xcalloc(1, sizeof(*c));
    c->u = u;
    c->md = pcre2_match_data_create(u->max_groups + 1, NULL);
    c->mctx = pcre2_match_context_create(NULL);
    c->jstack = pcre2_jit_stack_create(UAP_JIT_STACK_MIN, UAP_JIT_STACK_MAX, NULL);
    if (c->md == NULL || c->mctx == NULL || c->jstack == NULL) {
        fprintf(stderr, "level=fatal event=out_of_memory what=pcre2_match_data\n");
        abort();
    }
    pcre2_jit_stack_assign(c->mctx, NULL, c->jstack);
    pcre2_set_match_limit(c->mctx, UAP_MATCH_LIMIT);

    size_t entries = 1;
    while (entries <= cache_entries / 2) entries *= 2;
    if (cache_entries >= UAP_WAYS) {
        c->nsets = entries / UAP_WAYS;
        c->ents = hn_xcalloc(entries, sizeof(*c->ents));
        c->tags = hn_xcalloc(entries, sizeof(*c->tags));
        c->used = hn_xcalloc(entries, sizeof(*c->used));
    }
    /* Seeded so that colliding user agents cannot be precomputed; the point is
     * spread, not secrecy (unique UAs thrash any cache anyway). */
    c->seed = mix64(hn_mono_us() ^ (uint64_t)(uintptr_t)c ^ 0x9e3779b97f4a7c15ULL);
    return c;
}

void hn_uap_ctx_destroy(hn_uap_ctx *c) {
    if (c == NULL) return;
    pcre2_match_data_free(c->md);
    pcre2_match_context_free(c->mctx);
    pcre2_jit_stack_free(c->jstack);
    free(c->ents);
    free(c->tags);
    free(c->used);
    free(c);
}

uint64_t hn_uap_cache_hits(const hn_uap_ctx *c) { return c->hits; }
uint64_t hn_uap_cache_misses(const hn_uap_ctx *c) { return c->misses; }
uint64_t hn_uap_match_errors(const hn_uap_ctx *c) { return c->match_errors; }

/* ---- matching and replacements --------------------------------------------------- */

/* > 0 on a match (PCRE2's count of the ovector pairs that are set), 0 on none. */
static int match(hn_uap_ctx *c, const uap_rule *r, const char *s, size_t n) {
    int rc = r->jit ? pcre2_jit_match(r->re, (PCRE2_SPTR)s, n, 0, 0, c->md, c->mctx)
                    : pcre2_match(r->re, (PCRE2_SPTR)s, n, 0, 0, c->md, c->mctx);
    if (rc > 0) return rc;
    if (rc != PCRE2_ERROR_NOMATCH) c->match_errors++;
    return 0;
}

/* Group g of the last match as a slice; false when it did not take part. */
static bool group(const hn_uap_ctx *c, int rc, int g, const char *s, const char **p, size_t *n) {
    if (g >= rc) return false;
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
    if (ov[2 * g] == PCRE2_UNSET) return false;
    *p = s + ov[2 * g];
    *n = ov[2 * g + 1] - ov[2 * g];
    return true;
}

static void put(char *out, size_t cap, size_t *at, const char *p, size_t n) {
    if (*at + 1 >= cap) return;
    if (n > cap - 1 - *at) n = cap - 1 - *at;
    memcpy(out + *at, p, n);
    *at += n;
    out[*at] = '\0';
}

static bool is_space(char ch) {
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* out = tmpl with $1..$9 replaced by the groups (unset: empty), trimmed. */
static void subst(const hn_uap_ctx *c, int rc, const char *s, const char *tmpl, char *out, size_t cap) {
    size_t at = 0;
    out[0] = '\0';
    for (const char *t = tmpl; *t != '\0'; t++) {
        if (t[0] == '$' && t[1] >= '1' && t[1] <= '9') {
            const char *p;
            size_t n;
            if (group(c, rc, t[1] - '0', s, &p, &n)) put(out, cap, &at, p, n);
            t++;
        } else {
            put(out, cap, &at, t, 1);
        }
    }
    size_t b = 0;
    while (b < at && is_space(out[b])) b++;
    while (at > b && is_space(out[at - 1])) at--;
    memmove(out, out + b, at - b);
    out[at - b] = '\0';
}

/* The value of a field: its replacement if given, else group g (raw). */
static void field(const hn_uap_ctx *c, int rc, const char *s, const char *repl, int g,
                  char *out, size_t cap) {
    const char *p;
    size_t n, at = 0;
    out[0] = '\0';
    if (repl != NULL)
        subst(c, rc, s, repl, out, cap);
    else if (g > 0 && group(c, rc, g, s, &p, &n))
        put(out, cap, &at, p, n);
}

#define FIELD(c, rc, s, repl, g, arr) field(c, rc, s, repl, g, arr, sizeof(arr))

/* The browser and OS lists have one shape: a family and up to four
 * version parts, each from its replacement or else groups 1 to 5. */
typedef struct out_field {
    char  *p;
    size_t cap;
} out_field;

static void parse_versioned(hn_uap_ctx *c, const uap_list *l, const char *s, size_t n,
                            const out_field f[5]) {
    static const int repl[5] = {R_FAMILY, R_V1, R_V2, R_V3, R_V4};
    for (size_t i = 0; i < l->n; i++) {
        const uap_rule *r = &l->v[i];
        int rc = match(c, r, s, n);
        if (rc == 0) continue;
        for (int k = 0; k < 5; k++) field(c, rc, s, r->repl[repl[k]], k + 1, f[k].p, f[k].cap);
        break;
    }
    if (f[0].p[0] == '\0') strcpy(f[0].p, "Other");
}

#define OUT(arr) {arr, sizeof(arr)}

static void parse_ua(hn_uap_ctx *c, const char *s, size_t n, hn_ua_full *o) {
    const out_field f[5] = {OUT(o->ua_family), OUT(o->ua_major), OUT(o->ua_minor),
                            OUT(o->ua_patch), OUT(o->ua_patch_minor)};
    parse_versioned(c, &c->u->ua, s, n, f);
}

static void parse_os(hn_uap_ctx *c, const char *s, size_t n, hn_ua_full *o) {
    const out_field f[5] = {OUT(o->os_family), OUT(o->os_major), OUT(o->os_minor),
                            OUT(o->os_patch), OUT(o->os_patch_minor)};
    parse_versioned(c, &c->u->os, s, n, f);
}

static void parse_device(hn_uap_ctx *c, const char *s, size_t n, hn_ua_full *o) {
    const uap_list *l = &c->u->dev;
    for (size_t i = 0; i < l->n; i++) {
        const uap_rule *r = &l->v[i];
        int rc = match(c, r, s, n);
        if (rc == 0) continue;
        FIELD(c, rc, s, r->repl[R_FAMILY], 1, o->device_family);
        FIELD(c, rc, s, r->repl[R_BRAND], 0, o->device_brand);
        FIELD(c, rc, s, r->repl[R_MODEL], 1, o->device_model);
        break;
    }
    if (o->device_family[0] == '\0') strcpy(o->device_family, "Other");
}

void hn_uap_parse_parts(hn_uap_ctx *c, const char *ua, size_t len, unsigned parts,
                        hn_ua_full *out) {
    if (ua == NULL) len = 0;
    if (len > HN_UAP_MAX_UA) len = HN_UAP_MAX_UA;
    const char *s = len ? ua : "";
    memset(out, 0, sizeof(*out));
    if (parts & HN_UAP_UA) parse_ua(c, s, len, out);
    if (parts & HN_UAP_OS) parse_os(c, s, len, out);
    if (parts & HN_UAP_DEVICE) parse_device(c, s, len, out);
}

void hn_uap_parse(hn_uap_ctx *c, const char *ua, size_t len, hn_ua_full *out) {
    hn_uap_parse_parts(c, ua, len, HN_UAP_ALL, out);
}

/* ---- device type and bots ---------------------------------------------------------- */

/* Browser families (uap-core's names) that are automation, not people: headless
 * browsers, and the HTTP clients a scripted fake beacon would come from. */
static const char *const bot_families[] = {
    "HeadlessChrome", "PhantomJS",
    "curl", "Wget", "wget2", "Python Requests", "Python-urllib", "Go-http-client",
    "okhttp", "Apache-HttpClient", "axios", "PostmanRuntime", "libwww-perl",
};

/* Mobile operating systems (uap-core's names). */
static const char *const mobile_os[] = {
    "iOS", "Android", "Windows Phone", "Windows Mobile", "BlackBerry OS", "Symbian OS",
    "Symbian^3", "Symbian^3 Anna", "Symbian^3 Belle", "Nokia Series 40",
    "Nokia Series 30 Plus", "Firefox OS", "KaiOS", "Sailfish", "MeeGo", "Maemo", "Bada",
    "Brew MP", "BREW", "WatchOS",
};

static bool in_list(const char *s, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0) return true;
    return false;
}

/* Case-insensitive substring of a NUL-terminated haystack. */
static bool has_ci(const char *hay, const char *needle) {
    return strcasestr(hay, needle) != NULL;
}

/* Substring of the raw (not NUL-terminated) user agent. */
static bool ua_has(const char *ua, size_t len, const char *needle) {
    return len > 0 && memmem(ua, len, needle, strlen(needle)) != NULL;
}

const char *hn_uap_device_type(const hn_ua_full *r, const char *ua, size_t len) {
    size_t b = 0;
    while (b < len && is_space(ua[b])) b++;
    if (b == len) return "bot";                               /* no user agent at all */
    if (strcmp(r->device_family, "Spider") == 0 ||
        in_list(r->ua_family, bot_families, HN_ARRAY_LEN(bot_families)) ||
        has_ci(r->ua_family, "bot") || has_ci(r->ua_family, "spider") ||
        has_ci(r->ua_family, "crawl"))
        return "bot";

    const char *df = r->device_family, *dm = r->device_model;
    if (strstr(df, "iPad") || strstr(df, "Tablet") || strstr(df, "Kindle") ||
        strstr(dm, "iPad") || strstr(dm, "Tablet") || strstr(dm, "Kindle") ||
        strcmp(r->device_brand, "Generic_Android_Tablet") == 0 ||
        (strcmp(r->os_family, "Android") == 0 && !ua_has(ua, len, "Mobi")))
        return "tablet";

    if (in_list(r->os_family, mobile_os, HN_ARRAY_LEN(mobile_os)) ||
        strstr(df, "iPhone") || strstr(df, "iPod") || strcmp(df, "Generic Smartphone") == 0 ||
        strcmp(df, "Generic Feature Phone") == 0 || ua_has(ua, len, "Mobi"))
        return "mobile";
    return "desktop";
}

/* ---- the cache and lookups ---------------------------------------------------------- */

static uint64_t ua_hash(uint64_t seed, const char *s, size_t n) {
    uint64_t h = seed ^ ((uint64_t)n * 0x9e3779b97f4a7c15ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ mix64(w)) * 0x9fb21c651e98df25ULL;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ mix64(w ^ n)) * 0x9fb21c651e98df25ULL;
    return mix64(h);
}

/* Copies src into dst (cap >= 1) as valid UTF-8 without control characters:
 * invalid sequences and C0/DEL bytes are dropped, and the copy stops before a
 * character that would not fit. Returns the length (dst is NUL-terminated). */
static uint32_t copy_clean(char *dst, size_t cap, const char *src) {
    const unsigned char *s = (const unsigned char *)src;
    size_t o = 0;
    while (*s != '\0') {
        unsigned c0 = s[0];
        size_t k;
        if (c0 < 0x80) {
            if (c0 < 0x20 || c0 == 0x7f) { s++; continue; }
            k = 1;
        } else {
            unsigned lo = 0x80, hi = 0xbf;
            if (c0 >= 0xc2 && c0 <= 0xdf) k = 2;
            else if (c0 >= 0xe0 && c0 <= 0xef) {
                k = 3;
                if (c0 == 0xe0) lo = 0xa0;
                if (c0 == 0xed) hi = 0x9f;           /* no UTF-16 surrogates */
            } else if (c0 >= 0xf0 && c0 <= 0xf4) {
                k = 4;
                if (c0 == 0xf0) lo = 0x90;
                if (c0 == 0xf4) hi = 0x8f;           /* <= U+10FFFF */
            } else { s++; continue; }
            bool ok = s[1] >= lo && s[1] <= hi;
            for (size_t i = 2; ok && i < k; i++) ok = s[i] >= 0x80 && s[i] <= 0xbf;
            if (!ok) { s++; continue; }              /* a NUL stops the loop too */
        }
        if (o + k >= cap) break;
        memcpy(dst + o, s, k);
        o += k;
        s += k;
    }
    dst[o] = '\0';
    return (uint32_t)o;
}

/* "major.minor", "major", or "" into dst. */
static uint32_t version(char *dst, size_t cap, const char *major, const char *minor) {
    char v[80];
    if (major[0] == '\0') v[0] = '\0';
    else if (minor[0] == '\0') snprintf(v, sizeof(v), "%.39s", major);
    else snprintf(v, sizeof(v), "%.39s.%.39s", major, minor);
    return copy_clean(dst, cap, v);
}

static void fill(cache_entry *e, const hn_ua_full *r, const char *ua, size_t len) {
    hn_ua *o = &e->res;
    o->browser = (hn_str){e->browser, copy_clean(e->browser, sizeof(e->browser), r->ua_family)};
    o->browser_version = (hn_str){e->bver, 0};
    e->bver[0] = '\0';
    if (strcmp(r->ua_family, "Other") != 0)
        o->browser_version.len = version(e->bver, sizeof(e->bver), r->ua_major, r->ua_minor);
    o->os = (hn_str){e->os, copy_clean(e->os, sizeof(e->os), r->os_family)};
    o->os_version = (hn_str){e->osver, 0};
    e->osver[0] = '\0';
    if (strcmp(r->os_family, "Other") != 0)
        o->os_version.len = version(e->osver, sizeof(e->osver), r->os_major, r->os_minor);
    const char *dt = hn_uap_device_type(r, ua, len);
    o->device = (hn_str){dt, (uint32_t)strlen(dt)};
    o->bot = dt[0] == 'b';
}

const hn_ua *hn_uap_lookup(hn_uap_ctx *c, const char *ua, size_t len) {
    if (ua == NULL) len = 0;
    if (len > HN_UAP_MAX_UA) len = HN_UAP_MAX_UA;
    if (len == 0) ua = "";
    cache_entry *e = &c->scratch;
    if (c->ents != NULL) {
        uint64_t h = ua_hash(c->seed, ua, len);
        uint64_t tag = h != 0 ? h : 1;               /* 0 marks an empty way */
        size_t base = (size_t)(h & (c->nsets - 1)) * UAP_WAYS, victim = base;
        c->clock++;
        for (size_t i = base; i < base + UAP_WAYS; i++) {
            if (c->tags[i] == tag && c->ents[i].ua_len == len &&
                memcmp(c->ents[i].ua, ua, len) == 0) {
                c->hits++;
                c->used[i] = c->clock;
                return &c->ents[i].res;
            }
            if (c->used[i] < c->used[victim]) victim = i;    /* empty ways have 0 */
        }
        e = &c->ents[victim];
        c->tags[victim] = tag;
        c->used[victim] = c->clock;
        e->ua_len = (uint32_t)len;
        memcpy(e->ua, ua, len);
    }
    c->misses++;
    hn_uap_parse(c, ua, len, &c->full);
    fill(e, &c->full, ua, len);
    return &e->res;
}
