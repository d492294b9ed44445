/*
 * loadgen.c: hn-loadgen, the UDP load generator of `make bench-udp`.
 *
 *   sessions (spread over widgets) ──pregen──► pool of datagrams (msgpack)
 *                                                │ sendmmsg(batch), paced
 *                                                ▼
 *                                        collector UDP port
 *
 * Beacons are generated before the clock starts, so that the sender's own
 * CPU is one sendmmsg per batch and a clock read: on a small machine the
 * sender shares cores with the collector and Redis, and every cycle it
 * spends is one they do not get.
 *
 * The mix follows a browser's tracker: a session opens with a page view
 * (q=1, url, title, referrer, language, screen), then sends mostly
 * heartbeats (engaged ms), a page view about every fifth beacon, now and
 * then an event (click, chat_opened, with a small d map), hide/show pairs,
 * and rarely `end`, after which the slot starts a new session. Each beacon
 * goes to a random session; sessions are spread over the widgets with
 * Zipf-like weights (the first widget is the biggest site). By default the
 * run meets the sessions at a random point of their life, as a collector
 * joining a busy site does (a real session sends one beacon every ~20 s, so
 * a short run at a realistic concurrency sees each session only a few
 * times); --cold starts every session with its q=1 page view.
 *
 * When the run needs more beacons than the pool holds (--pool), the pool is
 * sent again from its start: the same sessions and sequence numbers
 * repeat, which the collector treats like any other traffic.
 *
 * Reference streams (--emit-naive FILE, --emit-xadd FILE): instead of
 * sending, write as Redis commands (RESP, for `redis-cli --pipe`) the first
 * --count beacons that a send run with the same --widgets, --sessions,
 * --seed, --pool, --beacons-per-datagram, --cold and --ts-base sends, in
 * the order it sends them (the pool's prefix, or the pool round the ring):
 *
 *   naive  per beacon: XADD hn:stream:0 * r <beacon msgpack>
 *                      HSET hn:sess:{w}:<sid> <every field of the beacon>
 *                      EXPIRE hn:sess:{w}:<sid> 360
 *                      ZADD hn:live:{w} <ts ms> <sid>
 *   xadd   per beacon: XADD hn:stream:0 * r <beacon msgpack>
 *
 * The HSET names the beacon's fields as the collector does
 * (docs/PROTOCOL.md §9): last_seen (the beacon's ts) and status always;
 * url, title, referrer, lang, screen, engaged_ms (e, as a plain value),
 * name, email, phone when the beacon has them; has_chatted for a chat
 * event. Widget ids are 1, 2, ... in --widgets order, as bench/udp.sh
 * registers them. These are the bench's same-run references for Redis's
 * cost per beacon: a write-everything-every-beacon baseline, and the
 * stream append alone.
 *
 * Output: one key=value line on stdout at the end (the bench parses it).
 */
#include "common/buf.h"
#include "common/hn.h"
#include "common/ids.h"
#include "common/net.h"
#include "proto/beacon.h"
#include "proto/keys.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PAGES_PER_WIDGET 256
#define SID_LEN          16
#define WIDGETS_MAX      64
#define BATCH_MAX        1024
#define SLEEP_SLICE_NS   (1000 * 1000)      /* never sleep longer than 1 ms at a time */
#define SNDBUF_BYTES     (4 * 1024 * 1024)
#define MAX_FAILS_IN_ROW 100000
#define MEAN_SESSION_BEACONS 40    /* about 1 in 40 beacons of a visible tab ends it */
#define WARM_FRESH_ONE_IN    10    /* --warm: share of sessions that start in the run */

typedef struct page {
    char url[128], title[128];
    uint32_t ulen, tlen;
} page;

typedef struct site {
    hn_str key;
    page   pages[PAGES_PER_WIDGET];
} site;

typedef struct session {
    char     sid[SID_LEN];
    uint16_t widget;
    uint16_t page;
    uint64_t q;          /* last sequence number sent; 0: not started */
    bool     hidden;
    bool     ended;      /* its `end` was made: the slot's next beacon opens a new session */
} session;

typedef struct opts {
    const char *to;
    double      rate;          /* beacons/s, 0: as fast as possible */
    double      duration;      /* s, 0: unbounded (then count bounds) */
    uint64_t    count;         /* beacons, 0: unbounded (then duration bounds) */
    char       *widgets;
    uint32_t    sessions;
    uint32_t    batch;
    uint32_t    per_dgram;
    uint64_t    pool;          /* most beacons generated ahead */
    uint64_t    seed;
    uint64_t    ts_base;       /* ms of the first beacon's ts; 0: now */
    bool        cold;          /* every session starts with its q=1 page view */
    const char *emit_naive;    /* write reference RESP instead of sending */
    const char *emit_xadd;
} opts;

/* The pre-generated datagrams, back to back. */
typedef struct pool {
    char     *data;
    size_t    len, cap;
    uint64_t *off;
    uint32_t *dlen;
    uint64_t  n, beacons;
} pool;

/* --- random ---------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static hn_rng rng;

static uint32_t rnd(uint32_t n) { return (uint32_t)((hn_rng_next(&rng) >> 32) * n >> 32); }
static uint32_t rnd_between(uint32_t lo, uint32_t hi) { return lo + rnd(hi - lo + 1); }

/* --- the sites and their pages --------------------------------------------- */

static const char *words[] = {
    "summer", "sale", "wireless", "headphones", "running", "shoes", "organic", "coffee",
    "beans", "leather", "wallet", "standing", "desk", "garden", "tools", "kids", "backpack",
    "espresso", "machine", "winter", "jacket", "yoga", "mat", "smart", "watch", "ceramic",
    "mug", "travel", "guide", "pricing", "support", "account", "checkout", "blog", "release",
    "notes", "careers", "about", "contact", "docs", "api", "integrations", "security",
};
static const char *sections[] = {"products", "blog", "docs", "help", "shop/category", "pricing"};
static const char *sources[] = {"newsletter", "google", "twitter", "partner", "direct"};
static const char *langs[] = {"en-US", "en-GB", "de-DE", "fr-FR", "es-ES", "pt-BR", "ja-JP"};
static const uint32_t screens[][2] = {{1920, 1080}, {1366, 768}, {1536, 864}, {390, 844},
                                      {414, 896},   {2560, 1440}, {1440, 900}};

/* Appends words joined by sep until out holds at least want bytes. */
static uint32_t fill_words(char *out, uint32_t at, uint32_t want, uint32_t cap, char sep) {
    while (at < want) {
        const char *w = words[rnd(HN_ARRAY_LEN(words))];
        size_t n = strlen(w);
        if (at + n + 2 >= cap) break;
        if (at && out[at - 1] != '/' && out[at - 1] != ' ') out[at++] = sep;
        memcpy(out + at, w, n);
        at += (uint32_t)n;
    }
    return at;
}

/* URLs and titles of 60..100 bytes, like a shop's or a blog's. */
static void make_site(site *s, int idx) {
    for (int i = 0; i < PAGES_PER_WIDGET; i++) {
        page *p = &s->pages[i];
        int n = snprintf(p->url, sizeof(p->url), "https://www.site%d.example/%s/", idx,
                         sections[rnd(HN_ARRAY_LEN(sections))]);
        uint32_t want = rnd_between(60, 84);
        n = (int)fill_words(p->url, (uint32_t)n, want, sizeof(p->url) - 32, '-');
        n += snprintf(p->url + n, sizeof(p->url) - (size_t)n, "-%u?utm_source=%s", rnd(100000),
                      sources[rnd(HN_ARRAY_LEN(sources))]);
        p->ulen = (uint32_t)(n > 100 ? 100 : n);

        want = rnd_between(40, 76);
        n = (int)fill_words(p->title, 0, want, sizeof(p->title) - 32, ' ');
        p->title[0] = (char)(p->title[0] - 'a' + 'A');
        n += snprintf(p->title + n, sizeof(p->title) - (size_t)n, " | Site %d Store", idx);
        p->tlen = (uint32_t)n;
    }
}

/* --- sessions and the beacon mix ------------------------------------------- */

static const char sid_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void new_session(session *ss) {
    for (int i = 0; i < SID_LEN; i++) ss->sid[i] = sid_chars[rnd(64)];
    ss->q = 0;
    ss->hidden = false;
    ss->ended = false;
    ss->page = (uint16_t)rnd(PAGES_PER_WIDGET);
}

/* A session met at a random point of its life, as a collector that joins a
 * running site meets them: most are under way (their next beacon is a
 * heartbeat, page view, ... with q > 1), some are just starting. */
static void warm_session(session *ss) {
    new_session(ss);
    if (rnd(WARM_FRESH_ONE_IN) == 0) return;
    ss->q = rnd_between(1, 2 * MEAN_SESSION_BEACONS);
    ss->hidden = rnd(20) == 0;
}

/* Fills b with the next beacon of ss. Strings point into sites/ss/scratch,
 * which stay valid until the beacon is packed. */
static void next_beacon(session *ss, const site *sites, hn_beacon *b, char *scratch, size_t cap,
                        uint64_t now_ms) {
    /* Renewed here, not right after the `end`: that beacon's s points at
     * ss->sid until the caller has packed it. */
    if (ss->ended) new_session(ss);
    const site *st = &sites[ss->widget];
    memset(b, 0, offsetof(hn_beacon, props));
    b->nprops = 0;
    b->k = st->key;
    b->s = (hn_str){ss->sid, SID_LEN};
    b->ts = now_ms;
    b->fields = HN_F_TS;

    if (ss->q == 0) {
        const page *p = &st->pages[ss->page];
        b->type = HN_T_PV;
        b->u = (hn_str){p->url, p->ulen};
        b->ti = (hn_str){p->title, p->tlen};
        uint32_t r = rnd(10);
        int n = 0;
        if (r < 5)
            n = snprintf(scratch, cap, "https://www.google.com/search?q=%s+%s",
                         words[rnd(HN_ARRAY_LEN(words))], words[rnd(HN_ARRAY_LEN(words))]);
        else if (r < 7)
            n = snprintf(scratch, cap, "https://news.ycombinator.com/item?id=%u",
                         30000000 + rnd(9000000));
        b->r = (hn_str){scratch, (uint32_t)n};
        b->l = (hn_str){langs[rnd(HN_ARRAY_LEN(langs))], 5};
        const uint32_t *sc = screens[rnd(HN_ARRAY_LEN(screens))];
        b->sw = sc[0];
        b->sh = sc[1];
        b->fields |= HN_F_SW | HN_F_SH;
    } else if (ss->hidden) {
        /* A hidden tab sends no heartbeats: it comes back or it leaves. */
        b->type = rnd(10) == 0 ? HN_T_END : HN_T_SHOW;
        ss->hidden = false;
    } else {
        uint32_t r = rnd(100);
        b->e = rnd_between(1000, 30000);
        b->fields |= HN_F_E;
        if (r < 2) {
            b->type = HN_T_END;
        } else if (r < 5) {
            b->type = HN_T_HIDE;
            ss->hidden = true;
        } else if (r < 9) {
            b->type = HN_T_EV;
            b->fields &= ~HN_F_E;
            if (r < 8) {
                static const char *els[] = {"a.buy-now", "button#signup", "nav a.pricing",
                                            "div.card a"};
                const char *el = els[rnd(HN_ARRAY_LEN(els))];
                b->n = HN_STR_LIT("click");
                b->nprops = 2;
                b->props[0] = (hn_prop){.key = HN_STR_LIT("el"), .type = HN_P_STR,
                                        .v.s = {el, (uint32_t)strlen(el)}};
                b->props[1] = (hn_prop){.key = HN_STR_LIT("x"), .type = HN_P_INT,
                                        .v.i = (int64_t)rnd(1920)};
            } else {
                b->n = HN_STR_LIT("chat_opened");
                b->nprops = 1;
                b->props[0] = (hn_prop){.key = HN_STR_LIT("source"), .type = HN_P_STR,
                                        .v.s = HN_STR_LIT("launcher")};
            }
        } else if (r < 29) {
            ss->page = (uint16_t)rnd(PAGES_PER_WIDGET);
            const page *p = &st->pages[ss->page];
            b->type = HN_T_PV;
            b->u = (hn_str){p->url, p->ulen};
            b->ti = (hn_str){p->title, p->tlen};
        } else {
            b->type = HN_T_HB;
        }
    }
    b->q = ++ss->q;
    if (b->type == HN_T_END) ss->ended = true;
}

/* --- pool ------------------------------------------------------------------ */

static void pool_add(pool *p, const char *buf, size_t len) {
    if (p->len + len > p->cap) {
        p->cap = (p->cap ? p->cap * 2 : 1 << 20) + len;
        p->data = hn_xrealloc(p->data, p->cap);
    }
    memcpy(p->data + p->len, buf, len);
    p->off[p->n] = p->len;
    p->dlen[p->n] = (uint32_t)len;
    p->len += len;
    p->n++;
}

static void pregenerate(pool *p, const opts *o, site *sites, int nsites, uint64_t beacons,
                        uint64_t now_ms) {
    /* Zipf-like weights: widget i gets 1/(i+1) of the sessions, relatively. */
    double wsum = 0, acc = 0;
    for (int i = 0; i < nsites; i++) wsum += 1.0 / (i + 1);
    session *ss = hn_xcalloc(o->sessions, sizeof(session));
    int w = 0;
    for (uint32_t i = 0; i < o->sessions; i++) {
        while (w < nsites - 1 && (double)i / o->sessions >= (acc + 1.0 / (w + 1)) / wsum) {
            acc += 1.0 / (w + 1);
            w++;
        }
        ss[i].widget = (uint16_t)w;
        if (o->cold) new_session(&ss[i]);
        else warm_session(&ss[i]);
    }

    uint64_t ndg = (beacons + o->per_dgram - 1) / o->per_dgram;
    p->off = hn_xcalloc(ndg, sizeof(uint64_t));
    p->dlen = hn_xcalloc(ndg, sizeof(uint32_t));
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    hn_beacon *b = hn_xmalloc(sizeof(hn_beacon));
    char scratch[256];
    for (uint64_t d = 0; d < ndg; d++) {
        uint32_t n = o->per_dgram;
        if (beacons - p->beacons < n) n = (uint32_t)(beacons - p->beacons);
        msgpack_sbuffer_clear(&sb);
        if (o->per_dgram > 1) msgpack_pack_array(&pk, n);
        for (uint32_t i = 0; i < n; i++) {
            next_beacon(&ss[rnd(o->sessions)], sites, b, scratch, sizeof(scratch),
                        now_ms + p->beacons / 1000);
            hn_beacon_pack(&pk, b);
        }
        p->beacons += n;
        pool_add(p, sb.data, sb.size);
    }
    msgpack_sbuffer_destroy(&sb);
    free(b);
    free(ss);
}

/* --- reference command streams ---------------------------------------------- */

#define EMIT_FLUSH_BYTES (1 << 20)
#define NAIVE_TTL_S      360

typedef struct emitter {
    FILE    *f;
    hn_buf   buf;
    uint64_t cmds, bytes;
} emitter;

static int emitter_flush(emitter *e) {
    if (e->f == NULL || e->buf.len == 0) return HN_OK;
    if (fwrite(e->buf.p, 1, e->buf.len, e->f) != e->buf.len) return HN_ERR;
    e->bytes += e->buf.len;
    hn_buf_reset(&e->buf);
    return HN_OK;
}

static void xadd(emitter *e, const char *mp, size_t len) {
    hn_resp_cmd(&e->buf, 5);
    hn_resp_str(&e->buf, "XADD");
    hn_resp_str(&e->buf, HN_KEY_STREAM_PREFIX "0");
    hn_resp_str(&e->buf, "*");
    hn_resp_str(&e->buf, "r");
    hn_resp_arg(&e->buf, mp, len);
    e->cmds++;
}

typedef struct field {
    const char *name;
    hn_str      v;
} field;

/* XADD + HSET (every field) + EXPIRE + ZADD for one beacon. */
static void naive(emitter *e, const hn_beacon *b, uint32_t widget, const char *mp, size_t len) {
    char key[HN_KEY_CAP], live[HN_KEY_CAP], ms[24], eng[24], screen[24];
    size_t kl = hn_key_sess(key, widget, b->s.p, b->s.len);
    size_t ll = hn_key_live(live, widget);
    hn_str ms_s = {ms, (uint32_t)hn_u64toa(b->ts, ms)};
    field fs[16];
    int n = 0;
    fs[n++] = (field){hn_sf_name[HN_SF_LAST_SEEN], ms_s};
    fs[n++] = (field){hn_sf_name[HN_SF_STATUS], b->type == HN_T_END    ? HN_STR_LIT("gone")
                                : b->type == HN_T_HIDE ? HN_STR_LIT("idle")
                                                       : HN_STR_LIT("active")};
    if (b->u.len) fs[n++] = (field){hn_sf_name[HN_SF_URL], b->u};
    if (b->ti.len) fs[n++] = (field){hn_sf_name[HN_SF_TITLE], b->ti};
    if (b->r.len) fs[n++] = (field){hn_sf_name[HN_SF_REFERRER], b->r};
    if (b->l.len) fs[n++] = (field){hn_sf_name[HN_SF_LANG], b->l};
    if ((b->fields & (HN_F_SW | HN_F_SH)) == (HN_F_SW | HN_F_SH))
        fs[n++] = (field){hn_sf_name[HN_SF_SCREEN], {screen, (uint32_t)snprintf(screen, sizeof(screen), "%ux%u",
                                                                b->sw, b->sh)}};
    if (b->fields & HN_F_E) fs[n++] = (field){hn_sf_name[HN_SF_ENGAGED_MS], {eng, (uint32_t)hn_u64toa(b->e, eng)}};
    if (b->nm.len) fs[n++] = (field){hn_sf_name[HN_SF_NAME], b->nm};
    if (b->em.len) fs[n++] = (field){hn_sf_name[HN_SF_EMAIL], b->em};
    if (b->ph.len) fs[n++] = (field){hn_sf_name[HN_SF_PHONE], b->ph};
    if (b->type == HN_T_EV &&
        (hn_str_eq(b->n, "chat_opened", 11) || hn_str_eq(b->n, "chat_message_sent", 17)))
        fs[n++] = (field){hn_sf_name[HN_SF_HAS_CHATTED], HN_STR_LIT("1")};

    xadd(e, mp, len);
    hn_resp_cmd(&e->buf, 2 + 2 * (unsigned)n);
    hn_resp_str(&e->buf, "HSET");
    hn_resp_arg(&e->buf, key, kl);
    for (int i = 0; i < n; i++) {
        hn_resp_str(&e->buf, fs[i].name);
        hn_resp_arg(&e->buf, fs[i].v.p, fs[i].v.len);
    }
    hn_resp_cmd(&e->buf, 3);
    hn_resp_str(&e->buf, "EXPIRE");
    hn_resp_arg(&e->buf, key, kl);
    hn_resp_u64(&e->buf, NAIVE_TTL_S);
    hn_resp_cmd(&e->buf, 4);
    hn_resp_str(&e->buf, "ZADD");
    hn_resp_arg(&e->buf, live, ll);
    hn_resp_u64(&e->buf, b->ts);
    hn_resp_arg(&e->buf, b->s.p, b->s.len);
    e->cmds += 3;      /* and the XADD */
}

static emitter emitter_open(const char *path) {
    emitter e = {0};
    if (path == NULL) return e;
    e.f = fopen(path, "we");
    if (e.f == NULL) {
        fprintf(stderr, "hn-loadgen: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    hn_buf_init(&e.buf, EMIT_FLUSH_BYTES + 65536);
    return e;
}

static int emitter_close(emitter *e, const char *path) {
    if (e->f == NULL) return HN_OK;
    int rc = emitter_flush(e);
    if (fclose(e->f) != 0) rc = HN_ERR;
    if (rc != HN_OK) fprintf(stderr, "hn-loadgen: writing %s: %s\n", path, strerror(errno));
    hn_buf_free(&e->buf);
    return rc;
}

/* Writes the reference streams for the first `beacons` beacons of the pool,
 * in send_all's order (whole datagrams round the ring). Each beacon is
 * decoded from the datagram as the collector would and packed again on its
 * own (the same bytes when a datagram holds one beacon). */
static int emit_all(const pool *p, const site *sites, int nsites, uint64_t beacons, uint64_t *emitted,
                    emitter *nv, emitter *xa) {
    hn_decoder *dec = hn_decoder_create();
    hn_batch *bt = hn_xmalloc(sizeof(hn_batch));
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = HN_OK;
    *emitted = 0;
    for (uint64_t pos = 0; *emitted < beacons && rc == HN_OK; pos++) {
        uint64_t d = pos % p->n;
        int n = hn_beacon_decode_msgpack(dec, bt, p->data + p->off[d], p->dlen[d]);
        if (n != bt->n || n <= 0) {
            fprintf(stderr, "hn-loadgen: datagram %" PRIu64 " does not decode: %s\n", d, bt->err);
            rc = HN_ERR;
            break;
        }
        for (int i = 0; i < n; i++) {
            const hn_beacon *b = &bt->b[i];
            uint32_t widget = 0;
            for (int k = 0; k < nsites; k++)
                if (b->k.len == sites[k].key.len && memcmp(b->k.p, sites[k].key.p, b->k.len) == 0)
                    widget = (uint32_t)k + 1;
            msgpack_sbuffer_clear(&sb);
            hn_beacon_pack(&pk, b);
            if (nv->f) naive(nv, b, widget, sb.data, sb.size);
            if (xa->f) xadd(xa, sb.data, sb.size);
        }
        *emitted += (uint64_t)n;
        if (nv->buf.len >= EMIT_FLUSH_BYTES && emitter_flush(nv) != HN_OK) rc = HN_ERR;
        if (xa->buf.len >= EMIT_FLUSH_BYTES && emitter_flush(xa) != HN_OK) rc = HN_ERR;
    }
    msgpack_sbuffer_destroy(&sb);
    free(bt);
    hn_decoder_destroy(dec);
    return rc;
}

/* --- sending --------------------------------------------------------------- */

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double tv_s(const struct timeval *tv) { return (double)tv->tv_sec + tv->tv_usec / 1e6; }

static void sleep_until(uint64_t t_ns) {
    struct timespec ts = {(time_t)(t_ns / 1000000000ull), (long)(t_ns % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

typedef struct result {
    uint64_t beacons, datagrams, bytes, errors;
    uint64_t start_us, end_us;
    double   seconds;
} result;

static int connect_to(const char *to) {
    char err[256];
    hn_addr a;
    if (hn_addr_parse(to, &a, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "hn-loadgen: --to %s: %s\n", to, err);
        return -1;
    }
    int fd = socket(a.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("hn-loadgen: socket");
        return -1;
    }
    int sz = SNDBUF_BYTES;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    if (connect(fd, (struct sockaddr *)&a.ss, a.len) != 0) {
        fprintf(stderr, "hn-loadgen: connect %s: %s\n", to, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends pool datagrams round the ring until `beacons` are out or the
 * deadline passes. Paced: batch k leaves at start + (beacons sent) / rate;
 * a sender that fell behind sends at once (and catches up in bursts). */
static void send_all(int fd, const pool *p, const opts *o, uint64_t beacons, result *res) {
    struct mmsghdr msgs[BATCH_MAX];
    struct iovec iov[BATCH_MAX];
    memset(msgs, 0, sizeof(msgs));
    for (uint32_t i = 0; i < o->batch; i++) {
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const uint64_t per_dg = o->per_dgram;
    const uint64_t t0 = mono_ns();
    const uint64_t deadline = o->duration > 0 ? t0 + (uint64_t)(o->duration * 1e9) : UINT64_MAX;
    const double ns_per_beacon = o->rate > 0 ? 1e9 / o->rate : 0;
    uint64_t next = 0;      /* index into the pool ring */
    uint32_t failed_in_row = 0;
    res->start_us = hn_now_us();
    for (;;) {
        if (beacons && res->beacons >= beacons) break;
        uint64_t now = mono_ns();
        if (now >= deadline) break;
        if (ns_per_beacon > 0) {
            uint64_t due = t0 + (uint64_t)((double)res->beacons * ns_per_beacon);
            if (now < due) {
                uint64_t until = due - now > SLEEP_SLICE_NS ? now + SLEEP_SLICE_NS : due;
                sleep_until(until < deadline ? until : deadline);
                continue;
            }
        }
        uint32_t n = o->batch;
        if (beacons) {
            uint64_t left_dg = (beacons - res->beacons + per_dg - 1) / per_dg;
            if (left_dg < n) n = (uint32_t)left_dg;
        }
        for (uint32_t i = 0; i < n; i++) {
            uint64_t d = (next + i) % p->n;
            iov[i].iov_base = p->data + p->off[d];
            iov[i].iov_len = p->dlen[d];
        }
        int r = sendmmsg(fd, msgs, n, 0);
        if (r < 0) {
            res->errors++;
            /* ECONNREFUSED reports an ICMP error of an earlier datagram and
             * clears it; buffer shortages pass. Other errors skip the
             * datagram (not counted as sent), so the ring always moves; a
             * socket that fails every time ends the run. */
            if (++failed_in_row >= MAX_FAILS_IN_ROW) {
                fprintf(stderr, "hn-loadgen: sendmmsg keeps failing: %s\n", strerror(errno));
                break;
            }
            if (errno != ECONNREFUSED && errno != EINTR && errno != EAGAIN && errno != ENOBUFS)
                next = (next + 1) % p->n;
            continue;
        }
        failed_in_row = 0;
        for (int i = 0; i < r; i++) {
            uint64_t d = (next + (uint64_t)i) % p->n;
            res->bytes += p->dlen[d];
            /* the last datagram of the pool may hold fewer beacons */
            res->beacons += d == p->n - 1 ? p->beacons - (p->n - 1) * per_dg : per_dg;
        }
        res->datagrams += (uint64_t)r;
        next = (next + (uint64_t)r) % p->n;
    }
    res->end_us = hn_now_us();
    res->seconds = (double)(mono_ns() - t0) / 1e9;
}

/* --- main ------------------------------------------------------------------ */

static void usage(FILE *f) {
    fprintf(f,
            "usage: hn-loadgen --to HOST:PORT --widgets K1,K2,... [options]\n"
            "       hn-loadgen --widgets K1,K2,... --count N --emit-naive F --emit-xadd F [options]\n"
            "  --rate N                beacons/s (0: as fast as possible; default 0)\n"
            "  --duration S            seconds to send (default 10 unless --count)\n"
            "  --count N               beacons to send (with --duration: whichever ends first)\n"
            "  --sessions N            concurrent sessions over the widgets (default 20000)\n"
            "  --batch N               datagrams per sendmmsg, 1..%d (default 32)\n"
            "  --beacons-per-datagram N  1..%d; above 1 a msgpack array (default 1)\n"
            "  --pool N                most beacons generated ahead, then reused (default 2000000)\n"
            "  --seed N                random seed (default 1)\n"
            "  --cold                  every session starts in the run with its q=1 page view\n"
            "                          (default: met at a random point of their life)\n"
            "  --ts-base MS            the first beacon's ts, ms since the epoch (default: now)\n"
            "  --emit-naive FILE       do not send: write the first --count beacons a send run\n"
            "                          sends as RESP, XADD+HSET+EXPIRE+ZADD per beacon\n"
            "  --emit-xadd FILE        likewise, one XADD per beacon (either or both)\n"
            "prints: sent_beacons= sent_datagrams= seconds= rate= send_errors= bytes=\n"
            "        start_us= end_us= pregen_s= pool_beacons= cpu_s= ts_base=\n"
            "   or: emitted_beacons= naive_cmds= naive_bytes= xadd_cmds= xadd_bytes= pool_beacons=\n",
            BATCH_MAX, HN_BATCH_MAX);
}

static int parse_u64(const char *name, const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "hn-loadgen: %s '%s' is not an integer in [%" PRIu64 ", %" PRIu64 "]\n",
                name, s, lo, hi);
        return HN_ERR;
    }
    *out = v;
    return HN_OK;
}

static int parse_double(const char *name, const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < 0) {
        fprintf(stderr, "hn-loadgen: %s '%s' is not a number >= 0\n", name, s);
        return HN_ERR;
    }
    *out = v;
    return HN_OK;
}

static int parse_args(int argc, char **argv, opts *o) {
    static const struct option lo[] = {
        {"to", required_argument, NULL, 't'},       {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'}, {"count", required_argument, NULL, 'c'},
        {"widgets", required_argument, NULL, 'w'},  {"sessions", required_argument, NULL, 's'},
        {"batch", required_argument, NULL, 'b'},    {"beacons-per-datagram", required_argument, NULL, 'p'},
        {"pool", required_argument, NULL, 'P'},     {"seed", required_argument, NULL, 'S'},
        {"cold", no_argument, NULL, 'C'},           {"help", no_argument, NULL, 'h'},
        {"ts-base", required_argument, NULL, 'T'},  {"emit-naive", required_argument, NULL, 'N'},
        {"emit-xadd", required_argument, NULL, 'X'},
        {NULL, 0, NULL, 0},
    };
    *o = (opts){.sessions = 20000, .batch = 32, .per_dgram = 1, .pool = 2000000, .seed = 1};
    uint64_t v;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 't': o->to = optarg; break;
        case 'w': o->widgets = optarg; break;
        case 'r': if (parse_double("--rate", optarg, &o->rate)) return HN_ERR; break;
        case 'd': if (parse_double("--duration", optarg, &o->duration)) return HN_ERR; break;
        case 'c': if (parse_u64("--count", optarg, 1, UINT64_MAX / 2, &o->count)) return HN_ERR; break;
        case 's':
            if (parse_u64("--sessions", optarg, 1, 100000000, &v)) return HN_ERR;
            o->sessions = (uint32_t)v;
            break;
        case 'b':
            if (parse_u64("--batch", optarg, 1, BATCH_MAX, &v)) return HN_ERR;
            o->batch = (uint32_t)v;
            break;
        case 'p':
            if (parse_u64("--beacons-per-datagram", optarg, 1, HN_BATCH_MAX, &v)) return HN_ERR;
            o->per_dgram = (uint32_t)v;
            break;
        case 'P': if (parse_u64("--pool", optarg, 1, 1000000000, &o->pool)) return HN_ERR; break;
        case 'S': if (parse_u64("--seed", optarg, 0, UINT64_MAX, &o->seed)) return HN_ERR; break;
        case 'C': o->cold = true; break;
        case 'T': if (parse_u64("--ts-base", optarg, 1, UINT64_MAX / 2, &o->ts_base)) return HN_ERR; break;
        case 'N': o->emit_naive = optarg; break;
        case 'X': o->emit_xadd = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return HN_ERR;
        }
    }
    bool emit = o->emit_naive || o->emit_xadd;
    if (optind != argc || (o->to == NULL && !emit) || o->widgets == NULL || o->widgets[0] == '\0') {
        usage(stderr);
        return HN_ERR;
    }
    if (emit && o->count == 0) {
        fprintf(stderr, "hn-loadgen: --emit-naive/--emit-xadd need --count (the beacons a send run sent)\n");
        return HN_ERR;
    }
    if (o->duration == 0 && o->count == 0) o->duration = 10;
    return HN_OK;
}

int main(int argc, char **argv) {
    opts o;
    if (parse_args(argc, argv, &o) != HN_OK) return 2;

    uint64_t seed = o.seed;
    for (int i = 0; i < 4; i++) rng.s[i] = splitmix(&seed);

    site *sites = hn_xcalloc(WIDGETS_MAX, sizeof(site));
    int nsites = 0;
    char *keys = hn_xstrdup(o.widgets);        /* strtok_r writes; argv stays readable in ps */
    for (char *save = NULL, *k = strtok_r(keys, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
        if (nsites == WIDGETS_MAX) {
            fprintf(stderr, "hn-loadgen: at most %d widgets\n", WIDGETS_MAX);
            return 2;
        }
        sites[nsites].key = (hn_str){k, (uint32_t)strlen(k)};
        make_site(&sites[nsites], nsites + 1);
        nsites++;
    }
    if (nsites == 0) {
        fprintf(stderr, "hn-loadgen: --widgets names no widget\n");
        return 2;
    }

    /* How many beacons the run may send at most: the pool covers them all
     * when it can, so that no beacon repeats. */
    uint64_t need = o.count;
    if (o.rate > 0 && o.duration > 0) {
        uint64_t rd = (uint64_t)(o.rate * o.duration + 0.5);
        if (need == 0 || rd < need) need = rd;
    }
    uint64_t ts_base = o.ts_base ? o.ts_base : hn_now_ms();

    if (o.emit_naive || o.emit_xadd) {
        /* The send run's pool was min(its need, --pool) beacons; generation
         * is sequential, so a pool of min(count, --pool) holds the same
         * beacons in the same places for the first count sent. */
        uint64_t pb = o.count < o.pool ? o.count : o.pool;
        pool p = {0};
        pregenerate(&p, &o, sites, nsites, pb, ts_base);
        emitter nv = emitter_open(o.emit_naive), xa = emitter_open(o.emit_xadd);
        uint64_t emitted = 0;
        int rc = emit_all(&p, sites, nsites, o.count, &emitted, &nv, &xa);
        if (emitter_close(&nv, o.emit_naive) != HN_OK) rc = HN_ERR;
        if (emitter_close(&xa, o.emit_xadd) != HN_OK) rc = HN_ERR;
        printf("emitted_beacons=%" PRIu64 " naive_cmds=%" PRIu64 " naive_bytes=%" PRIu64
               " xadd_cmds=%" PRIu64 " xadd_bytes=%" PRIu64 " pool_beacons=%" PRIu64 "\n",
               emitted, nv.cmds, nv.bytes, xa.cmds, xa.bytes, p.beacons);
        free(p.data);
        free(p.off);
        free(p.dlen);
        free(sites);
        free(keys);
        return rc == HN_OK ? 0 : 1;
    }

    uint64_t pool_beacons = need && need < o.pool ? need : o.pool;
    if (pool_beacons == 0) pool_beacons = 1;

    int fd = connect_to(o.to);
    if (fd < 0) return 1;

    uint64_t g0 = mono_ns();
    pool p = {0};
    pregenerate(&p, &o, sites, nsites, pool_beacons, ts_base);
    double pregen_s = (double)(mono_ns() - g0) / 1e9;

    /* Sleep precisely: the default 50 µs timer slack is a large part of a
     * 160 µs batch interval at 200k beacons/s. */
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    result res = {0};
    send_all(fd, &p, &o, need, &res);
    getrusage(RUSAGE_SELF, &ru1);
    double cpu_s = tv_s(&ru1.ru_utime) + tv_s(&ru1.ru_stime) - tv_s(&ru0.ru_utime) -
                   tv_s(&ru0.ru_stime);

    printf("sent_beacons=%" PRIu64 " sent_datagrams=%" PRIu64 " seconds=%.6f rate=%.0f "
           "send_errors=%" PRIu64 " bytes=%" PRIu64 " start_us=%" PRIu64 " end_us=%" PRIu64
           " pregen_s=%.3f pool_beacons=%" PRIu64 " cpu_s=%.3f ts_base=%" PRIu64 "\n",
           res.beacons, res.datagrams, res.seconds,
           res.seconds > 0 ? (double)res.beacons / res.seconds : 0.0, res.errors, res.bytes,
           res.start_us, res.end_us, pregen_s, p.beacons, cpu_s, ts_base);
    fflush(stdout);
    close(fd);
    free(p.data);
    free(p.off);
    free(p.dlen);
    free(sites);
    free(keys);
    return 0;
}
