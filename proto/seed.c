/*
 * seed.c: the seed routes' JSON form of a beacon (seed.h).
 *
 *   {"session_id": …, "page_url": …} ─► hn_jread_members: last value per known name
 *       ─► strings decoded into scratch, numbers checked, event_data into props
 *       ─► v, t, q made here ─► hn_draft_validate() (beacon.c) ─► reason
 *
 * Like query.c, everything after the draft is shared with the msgpack form,
 * so limits and rules cannot drift apart; only the names in the error text
 * are translated back into the seed's.
 */
#include "proto/seed.h"
#include "proto/beacon_internal.h"
#include "common/jsonread.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SID_MIN      8
#define SECONDS_MAX  86400.0       /* time_on_previous_page: a day at most */

/* What a member becomes. */
enum { F_SID = K__COUNT, F_HEARTBEAT, F_SECONDS, F_IGNORED };

typedef struct seed_field {
    const char *snake, *camel;
    int         to;                /* a K_* (str, uint or d), or an F_* */
} seed_field;

#define END { NULL, NULL, 0 }
static const seed_field session_fields[] = {
    {"session_id", "sessionId", F_SID},
    {"visitor_fingerprint", "visitorFingerprint", F_IGNORED},
    {"current_page_url", "currentPageUrl", K_U},
    {"current_page_title", "currentPageTitle", K_TI},
    {"referrer_url", "referrerUrl", K_R},
    {"heartbeat", "heartbeat", F_HEARTBEAT},
    {"screen_width", "screenWidth", K_SW},
    {"screen_height", "screenHeight", K_SH},
    {"language", "language", K_L},
    END,
};
static const seed_field pageview_fields[] = {
    {"session_id", "sessionId", F_SID},
    {"page_url", "pageUrl", K_U},
    {"page_title", "pageTitle", K_TI},
    {"referrer_url", "referrerUrl", K_R},
    {"time_on_previous_page", "timeOnPreviousPage", F_SECONDS},
    END,
};
static const seed_field event_fields[] = {
    {"session_id", "sessionId", F_SID},
    {"event_type", "eventType", K_N},
    {"event_data", "eventData", K_D},
    {"page_url", "pageUrl", K_U},
    END,
};
#undef END

#define FIELDS_MAX 10

static const seed_field *fields_of(hn_seed_route rt) {
    return rt == HN_SEED_SESSION ? session_fields
         : rt == HN_SEED_PAGEVIEW ? pageview_fields : event_fields;
}

hn_seed_route hn_seed_route_parse(const char *seg, size_t len) {
    static const struct { const char *name; hn_seed_route rt; } routes[] = {
        {"track-session", HN_SEED_SESSION},
        {"track-pageview", HN_SEED_PAGEVIEW},
        {"track-event", HN_SEED_EVENT},
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(routes); i++)
        if (strlen(routes[i].name) == len && memcmp(routes[i].name, seg, len) == 0)
            return routes[i].rt;
    return HN_SEED_NONE;
}

/* ---- collecting the members ------------------------------------------------ */

typedef struct seen {
    const seed_field *f;
    hn_jval      val[FIELDS_MAX];  /* type 0: absent (null counts as absent) */
} seen;

static int member(void *ctx, const hn_jval *key, const hn_jval *val) {
    seen *s = ctx;
    for (int i = 0; s->f[i].snake; i++) {
        if (hn_jread_str_is(key, s->f[i].snake) || hn_jread_str_is(key, s->f[i].camel)) {
            s->val[i] = *val;                        /* the last one wins */
            if (val->type == HN_J_NULL) s->val[i].type = 0;
            break;
        }
    }
    return HN_OK;
}

/* ---- converting ---------------------------------------------------------------- */

typedef struct conv {
    hn_draft   *dr;
    char       *scratch;
    size_t      cap, used;
    const char *field;             /* the name a rejection is about */
} conv;

static hn_reason reject(conv *c, const char *name, hn_reason r, const char *why) {
    c->field = name;
    return hn_draft_reject(c->dr, r, "%s: %s", name, why);
}

/* A string value decoded into scratch. */
static hn_reason text(conv *c, const char *name, const hn_jval *v, hn_str *out) {
    if (v->type != HN_J_STR) return reject(c, name, HN_R_BAD_TYPE, "expected a string");
    long n = hn_jread_str(v, c->scratch + c->used, c->cap - c->used);
    if (n < 0 || n > UINT32_MAX) return reject(c, name, HN_R_TOO_LARGE, "scratch full");
    *out = (hn_str){c->scratch + c->used, (uint32_t)n};
    c->used += (size_t)n;
    return HN_R_OK;
}

static bool sid_char(unsigned char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

/* session_id: 1..64 of [A-Za-z0-9_-]; shorter than 8 gets the prefix. */
static hn_reason session_id(conv *c, const char *name, const hn_jval *v) {
    hn_str s;
    hn_reason r = text(c, name, v, &s);
    if (r != HN_R_OK) return r;
    bool ok = s.len >= 1 && s.len <= 64;
    for (uint32_t i = 0; i < s.len && ok; i++) ok = sid_char((unsigned char)s.p[i]);
    if (!ok) return reject(c, name, HN_R_BAD_VALUE, "must be 1..64 of [A-Za-z0-9_-]");
    if (s.len < SID_MIN) {
        size_t pl = sizeof(HN_SEED_SID_PREFIX) - 1;
        char *d = (char *)s.p;                       /* the end of scratch: room to grow */
        if (c->cap - c->used < pl) return reject(c, name, HN_R_TOO_LARGE, "scratch full");
        memmove(d + pl, d, s.len);
        memcpy(d, HN_SEED_SID_PREFIX, pl);
        s = (hn_str){d, (uint32_t)(pl + s.len)};
        c->used += pl;
    }
    c->dr->b->s = s;
    return HN_R_OK;
}

static hn_reason event_data(conv *c, const char *name, const hn_jval *v);

static hn_reason convert(conv *c, const seed_field *f, const hn_jval *v) {
    hn_draft *dr = c->dr;
    int64_t i = 0;
    double d = 0;
    int kind;
    switch (f->to) {
    case F_SID:
        return session_id(c, f->snake, v);
    case F_IGNORED:
        return HN_R_OK;
    case F_HEARTBEAT:
        if (v->type != HN_J_BOOL) return reject(c, f->snake, HN_R_BAD_TYPE, "expected true or false");
        dr->b->t = v->b ? HN_STR_LIT("hb") : HN_STR_LIT("pv");
        return HN_R_OK;
    case F_SECONDS:
        if (v->type != HN_J_NUM) return reject(c, f->snake, HN_R_BAD_TYPE, "expected a number");
        kind = hn_jread_num(v, &i, &d);
        if (kind == 1) d = (double)i;
        if (kind == 0 || d < 0 || d > SECONDS_MAX)
            return reject(c, f->snake, HN_R_BAD_VALUE, "must be 0..86400 seconds");
        dr->num[K_E] = (uint64_t)llround(d * 1000);
        dr->have |= 1u << K_E;
        return HN_R_OK;
    case K_D:
        return event_data(c, f->snake, v);
    }
    if (hn_keys[f->to].kind == KIND_UINT) {                 /* screen_width, screen_height */
        if (v->type != HN_J_NUM || hn_jread_num(v, &i, &d) != 1 || i < 0)
            return reject(c, f->snake, HN_R_BAD_TYPE, "expected a whole number >= 0");
        dr->num[f->to] = (uint64_t)i;
        dr->have |= 1u << f->to;
        return HN_R_OK;
    }
    return text(c, f->snake, v, str_at(dr->b, f->to));
}

/* event_data: an object of string, number and bool values (null: left out). */
typedef struct props_ctx {
    conv       *c;
    const char *name;
    hn_reason   r;
} props_ctx;

static int prop(void *ctx, const hn_jval *key, const hn_jval *val) {
    props_ctx *pc = ctx;
    conv *c = pc->c;
    hn_prop p = {0};
    int64_t i;
    double d;
    if (val->type == HN_J_NULL) return HN_OK;
    if ((pc->r = text(c, pc->name, key, &p.key)) != HN_R_OK) return HN_ERR;
    switch (val->type) {
    case HN_J_STR:
        p.type = HN_P_STR;
        if ((pc->r = text(c, pc->name, val, &p.v.s)) != HN_R_OK) return HN_ERR;
        break;
    case HN_J_BOOL:
        p.type = HN_P_BOOL, p.v.b = val->b;
        break;
    case HN_J_NUM:
        switch (hn_jread_num(val, &i, &d)) {
        case 1: p.type = HN_P_INT, p.v.i = i; break;
        case 2: p.type = HN_P_FLOAT, p.v.f = d; break;
        default:
            pc->r = reject(c, pc->name, HN_R_BAD_VALUE, "a number out of range");
            return HN_ERR;
        }
        break;
    default:
        pc->r = reject(c, pc->name, HN_R_BAD_TYPE,
                       "values must be strings, numbers or booleans (no objects or arrays)");
        return HN_ERR;
    }
    if (!hn_prop_put(c->dr->b, &p)) {
        char msg[64];
        snprintf(msg, sizeof msg, "more than %d entries", HN_PROPS_MAX);
        pc->r = reject(c, pc->name, HN_R_TOO_LONG, msg);
        return HN_ERR;
    }
    return HN_OK;
}

static hn_reason event_data(conv *c, const char *name, const hn_jval *v) {
    props_ctx pc = {c, name, HN_R_OK};
    if (v->type != HN_J_OBJ) return reject(c, name, HN_R_BAD_TYPE, "expected an object");
    c->dr->b->nprops = 0;
    hn_jread_members(v->p, v->len, prop, &pc);
    return pc.r;
}

/* ---- the names of the error text -------------------------------------------- */

/* The seed's name of beacon key k on route rt ("widgetKey" for k). */
static const char *seed_name(const seed_field *f, int k) {
    if (k == K_K) return "widgetKey";
    if (k == K_S) return "session_id";
    if (k == K_E) return "time_on_previous_page";
    for (int i = 0; f[i].snake; i++)
        if (f[i].to == k) return f[i].snake;
    return NULL;
}

/* The validator speaks of "key 'u'": the same text with the seed's name. */
static void rename_msg(hn_draft *dr, const seed_field *f, const char **field_out) {
    char out[sizeof dr->msg];
    const char *q = strstr(dr->msg, "key '");
    if (q == NULL) return;
    const char *name = q + 5, *close = strchr(name, '\'');
    if (close == NULL) return;
    int k = hn_key_find(name, (size_t)(close - name));
    const char *seed = k >= 0 ? seed_name(f, k) : NULL;
    if (seed == NULL) return;
    *field_out = seed;
    if (strncmp(dr->msg, "missing required key", 20) == 0)
        snprintf(out, sizeof out, "missing required field '%s'", seed);
    else
        snprintf(out, sizeof out, "%.*s%s%s", (int)(q - dr->msg), dr->msg, seed, close + 1);
    memcpy(dr->msg, out, sizeof out);
}

/* ---- the form ------------------------------------------------------------------ */

int hn_beacon_decode_seed(hn_batch *out, hn_seed_route rt, hn_str key, const char *body,
                          size_t len, char *scratch, size_t cap, uint64_t now_ms,
                          const char **field) {
    hn_draft dr;
    hn_reason r = HN_R_OK;
    seen s = {.f = fields_of(rt)};
    conv c = {&dr, scratch, cap, 0, NULL};
    int accepted = 0;

    *field = NULL;
    hn_batch_reset(out);
    if (len > HN_HTTP_BODY_MAX) {
        hn_batch_fail(out, HN_R_TOO_LARGE, "body of %zu bytes (max %d)", len, HN_HTTP_BODY_MAX);
        goto out;
    }
    if (!hn_jread_check(body, len)) {
        hn_batch_fail(out, HN_R_MALFORMED, "the body is not well-formed JSON");
        goto out;
    }
    if (hn_jread_members(body, len, member, &s) != HN_OK) {
        hn_batch_fail(out, HN_R_NOT_MAP, "the body is not a JSON object");
        goto out;
    }
    hn_draft_init(&dr, &out->b[0]);
    dr.b->k = key;
    dr.b->t = rt == HN_SEED_EVENT ? HN_STR_LIT("ev") : HN_STR_LIT("pv");
    dr.num[K_V] = HN_PROTO_VERSION;
    /* every beacon a checkpoint (q % 16 == 1, collector/presence.h), never
     * the first (1): the seed sends no sequence, so time orders a session */
    dr.num[K_Q] = now_ms * 16 + 1;
    dr.have |= 1u << K_V | 1u << K_Q;
    for (int i = 0; s.f[i].snake && r == HN_R_OK; i++)
        if (s.val[i].type) r = convert(&c, &s.f[i], &s.val[i]);
    if (r == HN_R_OK) {
        r = hn_draft_validate(&dr);
        if (r != HN_R_OK) rename_msg(&dr, s.f, &c.field);
        dr.b->fields |= HN_F_SEED;                  /* validate set the others */
    }
    out->n = 1;
    accepted = hn_batch_set(out, 0, r, &dr);
    if (r != HN_R_OK) {
        snprintf(out->err, sizeof out->err, "%s", dr.msg);
        *field = c.field;
    }
out:
    return accepted;
}
