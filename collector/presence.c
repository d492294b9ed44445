/*
 * presence.c: see presence.h.
 */
#include "collector/presence.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PAIRS   32

typedef struct zent {
    uint32_t widget;
    uint32_t order;
    uint64_t score;
    uint64_t q;          /* the beacon's number in its session */
    hn_str   sid;        /* into sids; set at flush (the arena may move while adding) */
    uint32_t sid_off;
    bool     remove;
} zent;

/* An `end` applied only when nothing later of its session was applied first.
 * KEYS: hn:live:{w}, hn:ended:{w}, hn:sess:{w}:<sid>; ARGV: sid, q, ms.
 * "Later" is a hash write with a higher q (any beacon but a heartbeat), or a
 * live-set score above the end's time (a heartbeat received after it). */
static const char end_script[] =
    "local q=tonumber(redis.call('HGET',KEYS[3],'" HN_SESS_SEQ "') or 0)\n"
    "if q>tonumber(ARGV[2]) then return 0 end\n"
    "local s=tonumber(redis.call('ZSCORE',KEYS[1],ARGV[1]) or 0)\n"
    "if s>tonumber(ARGV[3]) then return 0 end\n"
    "redis.call('HSET',KEYS[3],'status','gone','last_seen',ARGV[3],'" HN_SESS_ENDED "',ARGV[2])\n"
    "redis.call('ZREM',KEYS[1],ARGV[1])\n"
    "redis.call('ZADD',KEYS[2],ARGV[3],ARGV[1])\n"
    "return 1\n";

typedef struct group {
    uint32_t widget;
    uint32_t n, nrem, start;
    uint32_t slot;       /* its gmap slot, cleared after the flush */
} group;

struct hn_presence {
    hn_presence_cfg cfg;
    hn_buf   sids;       /* copies of the session ids of z: the datagrams are reused */
    zent    *z;
    size_t   nz, zcap;
    /* flush scratch: entries grouped by widget (arrival order kept) */
    zent    *zg;
    uint32_t *gid;       /* group of z[i] */
    group   *g;
    uint32_t *gmap;      /* widget hash → group index + 1; 0 empty */
    size_t   scap, gmap_cap;
};

hn_presence *hn_presence_create(const hn_presence_cfg *cfg) {
    hn_presence *p = hn_xcalloc(1, sizeof(*p));
    p->cfg = *cfg;
    p->zcap = 256;
    p->z = hn_xcalloc(p->zcap, sizeof(zent));
    hn_buf_init(&p->sids, 4096);
    return p;
}

void hn_presence_destroy(hn_presence *p) {
    if (p == NULL) return;
    free(p->z);
    free(p->zg);
    free(p->gid);
    free(p->g);
    free(p->gmap);
    hn_buf_free(&p->sids);
    free(p);
}

typedef struct pairs {
    hn_str f[MAX_PAIRS];
    hn_str v[MAX_PAIRS];
    int    n;
} pairs;

static void put(pairs *ps, int field, hn_str v) {
    if (ps->n >= MAX_PAIRS) return;
    ps->f[ps->n] = (hn_str){hn_sf_name[field], hn_sf_len[field]};
    ps->v[ps->n] = v;
    ps->n++;
}

static void put_if(pairs *ps, int field, hn_str v) {
    if (v.len) put(ps, field, v);
}

static void cmd_key_field_num(hn_buf *b, const char *cmd, hn_str key, int field,
                              uint64_t v) {
    hn_resp_cmd(b, 4);
    hn_resp_str(b, cmd);
    hn_resp_arg(b, key.p, key.len);
    hn_resp_arg(b, hn_sf_name[field], hn_sf_len[field]);
    hn_resp_u64(b, v);
}

static void setnx_if(hn_buf *b, uint32_t *ncmds, hn_str key, int field, hn_str v) {
    if (v.len == 0) return;
    hn_resp_cmd(b, 4);
    hn_resp_str(b, "HSETNX");
    hn_resp_arg(b, key.p, key.len);
    hn_resp_arg(b, hn_sf_name[field], hn_sf_len[field]);
    hn_resp_arg(b, v.p, v.len);
    (*ncmds)++;
}

/* The chat_state a beacon sets (docs/CHAT.md §3), or an empty slice. */
static hn_str chat_state_of(const hn_beacon *b) {
    static const struct { const char *ev; const char *state; } map[] = {
        {"invite_shown", "shown"}, {"invite_accepted", "accepted"},
        {"invite_declined", "declined"}, {"chat_closed", "closed"},
    };
    hn_str st = {NULL, 0};
    if (b->type == HN_T_MSG) {
        st = HN_STR_LIT("chatting");
    } else if (b->type == HN_T_EV) {
        for (size_t i = 0; i < HN_ARRAY_LEN(map); i++)
            if (hn_str_eq(b->n, map[i].ev, strlen(map[i].ev))) {
                st = (hn_str){map[i].state, (uint32_t)strlen(map[i].state)};
                break;
            }
    }
    return st;
}

void hn_presence_add(hn_presence *p, const hn_record *r, hn_buf *cmds, uint32_t *ncmds) {
    const hn_beacon *b = &r->b;
    char keybuf[sizeof(HN_KEY_SESS_PREFIX) + 16 + 64], msbuf[24], screen[24];
    size_t kl = sizeof(HN_KEY_SESS_PREFIX) - 1;
    memcpy(keybuf, HN_KEY_SESS_PREFIX, kl);
    kl += hn_u64toa(r->widget_id, keybuf + kl);
    keybuf[kl++] = '}';
    keybuf[kl++] = ':';
    memcpy(keybuf + kl, b->s.p, b->s.len);     /* s is 8..64 bytes (validated) */
    kl += b->s.len;
    hn_str key = {keybuf, (uint32_t)kl};
    uint64_t ms = r->recv_ts / 1000;
    bool checkpoint = b->q % HN_CHECKPOINT == 1;
    bool end = b->type == HN_T_END;

    bool chat_msg = b->type == HN_T_EV && hn_str_eq(b->n, "chat_message_sent", 17);
    bool chat_open = b->type == HN_T_EV && hn_str_eq(b->n, "chat_opened", 11);
    /* Start Chat (docs/CHAT.md §3): a visitor's message, an invitation's fate */
    bool vmsg = b->type == HN_T_MSG;
    hn_str chat_state = chat_state_of(b);

    /* A heartbeat changes nothing in the hash but the time, which the live
     * set's score carries: no HSET for it, except at checkpoints. An `end`
     * writes its status and time in the end script at flush, and only when
     * nothing later of its session got there first. */
    if (b->type != HN_T_HB || checkpoint) {
        pairs ps = {.n = 0};
        hn_str ms_s = {msbuf, (uint32_t)hn_u64toa(ms, msbuf)};
        char qbuf[24];
        if (!end) {
            put(&ps, HN_SF_LAST_SEEN, ms_s);
            put(&ps, HN_SF_STATUS, b->type == HN_T_HIDE ? HN_STR_LIT("idle")
                                                        : HN_STR_LIT("active"));
            ps.f[ps.n] = HN_STR_LIT(HN_SESS_SEQ);
            ps.v[ps.n++] = (hn_str){qbuf, (uint32_t)hn_u64toa(b->q, qbuf)};
        }
        if (b->type == HN_T_PV) {
            put(&ps, HN_SF_URL, b->u);
            put(&ps, HN_SF_TITLE, b->ti);
        }
        if (b->q == 1) {
            /* The session's first beacon: where it started and came from. */
            put(&ps, HN_SF_STARTED, ms_s);
            if (b->type == HN_T_PV) put(&ps, HN_SF_LANDING, b->u);
            put_if(&ps, HN_SF_REFERRER, b->r);
        }
        if (checkpoint) {
            /* Fields that do not change within a session: written at the
             * start, and again now and then in case the first beacon was lost. */
            put_if(&ps, HN_SF_IP, r->ip);
            put_if(&ps, HN_SF_COUNTRY, r->country);
            put_if(&ps, HN_SF_REGION, r->region);
            put_if(&ps, HN_SF_CITY, r->city);
            put_if(&ps, HN_SF_BROWSER, r->browser);
            put_if(&ps, HN_SF_BROWSER_VERSION, r->browser_version);
            put_if(&ps, HN_SF_OS, r->os);
            put_if(&ps, HN_SF_OS_VERSION, r->os_version);
            put_if(&ps, HN_SF_DEVICE, r->device);
            /* The visitor hash changes with the daily salt: a session that
             * goes on past midnight keeps the one it started with (HSETNX
             * below), so it stays one visitor. */
            if (b->q == 1) put_if(&ps, HN_SF_VISITOR, r->visitor);
            put_if(&ps, HN_SF_LANG, b->l);
            if ((b->fields & (HN_F_SW | HN_F_SH)) == (HN_F_SW | HN_F_SH)) {
                int n = snprintf(screen, sizeof(screen), "%ux%u", b->sw, b->sh);
                put(&ps, HN_SF_SCREEN, (hn_str){screen, (uint32_t)n});
            }
        }
        if (b->type == HN_T_ID) {
            put_if(&ps, HN_SF_NAME, b->nm);
            put_if(&ps, HN_SF_EMAIL, b->em);
            put_if(&ps, HN_SF_PHONE, b->ph);
        }
        if (chat_msg || chat_open || vmsg || hn_str_eq(chat_state, "accepted", 8))
            put(&ps, HN_SF_HAS_CHATTED, HN_STR_LIT("1"));
        if (chat_state.len) put(&ps, HN_SF_CHAT_STATE, chat_state);
        if (vmsg) put_if(&ps, HN_SF_CHAT, b->ci);

        if (ps.n > 0) {
            hn_resp_cmd(cmds, 2 + 2 * (unsigned)ps.n);
            hn_resp_str(cmds, "HSET");
            hn_resp_arg(cmds, key.p, key.len);
            for (int i = 0; i < ps.n; i++) {
                hn_resp_arg(cmds, ps.f[i].p, ps.f[i].len);
                hn_resp_arg(cmds, ps.v[i].p, ps.v[i].len);
            }
            (*ncmds)++;
        }
    }

    if (checkpoint && b->q != 1) {
        /* In case the first beacon was lost: start the session now unless
         * it has a start already. */
        cmd_key_field_num(cmds, "HSETNX", key, HN_SF_STARTED, ms);
        (*ncmds)++;
        setnx_if(cmds, ncmds, key, HN_SF_VISITOR, r->visitor);
    }
    if ((b->fields & HN_F_SEED) && b->type == HN_T_PV) {
        /* The seed's routes number no beacon 1 (proto/seed.h): the first
         * page view that gets here is where the session landed. */
        setnx_if(cmds, ncmds, key, HN_SF_LANDING, b->u);
        setnx_if(cmds, ncmds, key, HN_SF_REFERRER, b->r);
    }
    if (b->type == HN_T_PV) {
        cmd_key_field_num(cmds, "HINCRBY", key, HN_SF_PAGEVIEWS, 1);
        (*ncmds)++;
    }
    if ((b->fields & HN_F_E) && b->e > 0) {
        cmd_key_field_num(cmds, "HINCRBY", key, HN_SF_ENGAGED_MS, b->e);
        (*ncmds)++;
    }
    if (chat_msg || vmsg) {
        cmd_key_field_num(cmds, "HINCRBY", key, HN_SF_MESSAGES_SENT, 1);
        (*ncmds)++;
    }
    if (checkpoint) {
        hn_resp_cmd(cmds, 3);
        hn_resp_str(cmds, "EXPIRE");
        hn_resp_arg(cmds, key.p, key.len);
        hn_resp_u64(cmds, p->cfg.safety_ttl_s);
        (*ncmds)++;
    }

    if (p->nz == p->zcap) {
        p->zcap *= 2;
        p->z = hn_xreallocarray(p->z, p->zcap, sizeof(zent));
    }
    p->z[p->nz] = (zent){r->widget_id, (uint32_t)p->nz, ms, b->q, {NULL, b->s.len},
                         (uint32_t)p->sids.len, end};
    hn_buf_append(&p->sids, b->s.p, b->s.len);
    p->nz++;
}

static int zcmp(const void *a, const void *b) {
    const zent *x = a, *y = b;
    if (x->widget != y->widget) return x->widget < y->widget ? -1 : 1;
    if (x->sid.len != y->sid.len) return x->sid.len < y->sid.len ? -1 : 1;
    int c = memcmp(x->sid.p, y->sid.p, x->sid.len);
    if (c) return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

static bool same_sid(const zent *a, const zent *b) {
    return a->sid.len == b->sid.len && memcmp(a->sid.p, b->sid.p, a->sid.len) == 0;
}

/* A widget with ended sessions in this flush, its entries sorted by (sid,
 * arrival): one ZADD with every member that had any other beacon (its latest
 * score), then the end script for each member whose highest-numbered `end`
 * is above every other beacon of that session in this flush. */
static void emit_widget(zent *z, size_t n, hn_buf *cmds, uint32_t *ncmds) {
    char key[HN_KEY_CAP], ekey[HN_KEY_CAP], skey[HN_KEY_CAP], qbuf[24];
    size_t kl = hn_key_live(key, z[0].widget);
    unsigned nadd = 0;
    /* Per member (a run of equal sids), marks in .order: 1 its latest add,
     * 2 the end to apply. */
    for (size_t i = 0, j; i < n; i = j) {
        size_t add = SIZE_MAX, endi = SIZE_MAX;
        uint64_t addq = 0;
        for (j = i; j < n && same_sid(&z[i], &z[j]); j++) {
            z[j].order = 0;
            if (!z[j].remove) {
                add = j;
                if (z[j].q > addq) addq = z[j].q;
            } else if (endi == SIZE_MAX || z[j].q >= z[endi].q) {
                endi = j;
            }
        }
        if (add != SIZE_MAX) {
            z[add].order = 1;
            nadd++;
        }
        if (endi != SIZE_MAX && (add == SIZE_MAX || z[endi].q > addq)) z[endi].order = 2;
    }
    if (nadd) {
        hn_resp_cmd(cmds, 2 + 2 * nadd);
        hn_resp_str(cmds, "ZADD");
        hn_resp_arg(cmds, key, kl);
        for (size_t i = 0; i < n; i++)
            if (z[i].order == 1) {
                hn_resp_u64(cmds, z[i].score);
                hn_resp_arg(cmds, z[i].sid.p, z[i].sid.len);
            }
        (*ncmds)++;
    }
    size_t el = hn_key_ended(ekey, z[0].widget);
    for (size_t i = 0; i < n; i++) {
        if (z[i].order != 2) continue;
        /* The session leaves the live set now; hn:ended tells the trimmer to
         * delete its hash after a grace period, unless it is back. */
        size_t sl = hn_key_sess(skey, z[i].widget, z[i].sid.p, z[i].sid.len);
        hn_resp_cmd(cmds, 9);
        hn_resp_str(cmds, "EVAL");
        hn_resp_arg(cmds, end_script, sizeof(end_script) - 1);
        hn_resp_str(cmds, "3");
        hn_resp_arg(cmds, key, kl);
        hn_resp_arg(cmds, ekey, el);
        hn_resp_arg(cmds, skey, sl);
        hn_resp_arg(cmds, z[i].sid.p, z[i].sid.len);
        hn_resp_arg(cmds, qbuf, hn_u64toa(z[i].q, qbuf));
        hn_resp_u64(cmds, z[i].score);
        (*ncmds)++;
    }
}

/* The common case: no session of this widget ended in this flush, so one
 * ZADD in arrival order does it (a member given twice keeps the later score). */
static void emit_adds(const zent *z, size_t n, hn_buf *cmds, uint32_t *ncmds) {
    char key[HN_KEY_CAP];
    size_t kl = hn_key_live(key, z[0].widget);
    hn_resp_cmd(cmds, 2 + 2 * (unsigned)n);
    hn_resp_str(cmds, "ZADD");
    hn_resp_arg(cmds, key, kl);
    for (size_t i = 0; i < n; i++) {
        hn_resp_u64(cmds, z[i].score);
        hn_resp_arg(cmds, z[i].sid.p, z[i].sid.len);
    }
    (*ncmds)++;
}

static void scratch_reserve(hn_presence *p) {
    if (p->scap < p->nz) {
        p->scap = p->zcap;
        p->zg = hn_xreallocarray(p->zg, p->scap, sizeof(zent));
        p->gid = hn_xreallocarray(p->gid, p->scap, sizeof(uint32_t));
        p->g = hn_xreallocarray(p->g, p->scap, sizeof(group));
    }
    size_t want = 16;
    while (want < 2 * p->nz) want *= 2;
    if (p->gmap_cap < want) {
        free(p->gmap);
        p->gmap = hn_xcalloc(want, sizeof(uint32_t));
        p->gmap_cap = want;
    }
}

/* Groups the flush's entries by widget with a counting sort (stable, O(n)),
 * then emits each widget's commands. */
void hn_presence_flush(hn_presence *p, hn_buf *cmds, uint32_t *ncmds) {
    if (p->nz == 0) return;
    scratch_reserve(p);
    size_t ng = 0, mask = p->gmap_cap - 1;
    for (size_t i = 0; i < p->nz; i++) {
        zent *e = &p->z[i];
        e->sid.p = p->sids.p + e->sid_off;
        size_t j = (e->widget * 2654435761u) & mask;
        while (p->gmap[j] && p->g[p->gmap[j] - 1].widget != e->widget) j = (j + 1) & mask;
        if (p->gmap[j] == 0) {
            p->g[ng] = (group){e->widget, 0, 0, 0, (uint32_t)j};
            p->gmap[j] = (uint32_t)++ng;
        }
        group *g = &p->g[p->gmap[j] - 1];
        g->n++;
        g->nrem += e->remove;
        p->gid[i] = p->gmap[j] - 1;
    }
    uint32_t at = 0;
    for (size_t k = 0; k < ng; k++) {
        p->g[k].start = at;
        at += p->g[k].n;
        p->g[k].n = 0;
    }
    for (size_t i = 0; i < p->nz; i++) {
        group *g = &p->g[p->gid[i]];
        p->zg[g->start + g->n++] = p->z[i];
    }
    for (size_t k = 0; k < ng; k++) {
        group *g = &p->g[k];
        zent *z = &p->zg[g->start];
        if (g->nrem == 0) {
            emit_adds(z, g->n, cmds, ncmds);
        } else {
            qsort(z, g->n, sizeof(zent), zcmp);
            emit_widget(z, g->n, cmds, ncmds);
        }
    }
    /* Cleared by slot, after every lookup: clearing while probing would cut
     * the probe chains of the widgets after it, and a later flush would meet
     * their stale slots (a group never emitted, writes past zg). */
    for (size_t k = 0; k < ng; k++) p->gmap[p->g[k].slot] = 0;
    p->nz = 0;
    hn_buf_reset(&p->sids);
}
