/*
 * ssefeed.c: hn-ssefeed, the beacon sender of `make bench-sse`.
 *
 *   --mode seed   one page view per session (N sessions), so that N visitors
 *                 are live; URLs without a send time
 *   --mode end    one `end` beacon per session (N sessions): they leave
 *   --mode feed   --rate beacons/s for --duration s, round-robin over the same
 *                 sessions in a shuffled order (each session once per round of
 *                 N beacons, so two page views of a session never share an api
 *                 tick and every page view makes its own `update`); a page view
 *                 with probability --pv-share, else a heartbeat
 *
 * Every page view's URL carries its send time and its number:
 *
 *   https://bench.example/p/<page>?t=<CLOCK_REALTIME µs>&n=<page view number, from 0>
 *
 * taken right before the datagram is handed to the kernel, so that a
 * watcher on the same machine times beacon → event as now − t. Heartbeats
 * carry no URL (they make no update event).
 *
 * Pacing is by absolute deadlines: beacon k is due at start + k / rate, the
 * sender sleeps (clock_nanosleep, TIMER_ABSTIME) until the next one is due
 * and then sends everything due, so a late wake-up is caught up at once and
 * never accumulates as drift. Lateness (send time − due time) is reported.
 *
 * Session ids are a function of --seed and the index, so a seed run and the
 * feed runs after it talk about the same sessions. Sequence numbers start at
 * --q-start (give every invocation its own range).
 *
 * Output: one key=value line on stdout at the end.
 */
#include "common/hn.h"
#include "common/ids.h"
#include "common/net.h"
#include "proto/beacon.h"

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

#define SID_LEN      16
#define PAGES        100
#define BATCH_MAX    64
#define DGRAM_MAX    1024
#define SNDBUF_BYTES (4 * 1024 * 1024)

typedef struct opts {
    const char *to, *key, *mode, *url_base, *sids_out;
    uint32_t    sessions;
    double      rate, duration, pv_share;
    uint64_t    q_start, seed;
    bool        end;          /* --mode end: seed's order, `end` beacons */
} opts;

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static const char sid_chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* "bs" + 14 characters from (seed, i): the same session in every invocation. */
static void session_id(uint64_t seed, uint32_t i, char out[SID_LEN]) {
    uint64_t x = seed * 0x100000001b3ull + i, a = splitmix(&x), b = splitmix(&x);
    out[0] = 'b';
    out[1] = 's';
    for (int k = 2; k < SID_LEN; k++) {
        uint64_t *w = k < 9 ? &a : &b;
        out[k] = sid_chars[*w & 63];
        *w >>= 6;
    }
}

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t real_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_until_ns(uint64_t t_ns) {
    struct timespec ts = {(time_t)(t_ns / 1000000000ull), (long)(t_ns % 1000000000ull)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
}

static int connect_to(const char *to) {
    char err[256];
    hn_addr a;
    if (hn_addr_parse(to, &a, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "hn-ssefeed: --to %s: %s\n", to, err);
        return -1;
    }
    int fd = socket(a.ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("hn-ssefeed: socket");
        return -1;
    }
    int sz = SNDBUF_BYTES;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    if (connect(fd, (struct sockaddr *)&a.ss, a.len) != 0) {
        fprintf(stderr, "hn-ssefeed: connect %s: %s\n", to, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

typedef struct state {
    int              fd;
    hn_rng           rng;
    char            *sids;        /* sessions × SID_LEN */
    uint64_t        *q;           /* next sequence number per session */
    uint32_t        *order;       /* feed: the round-robin order */
    uint32_t         cursor;
    msgpack_sbuffer  sb;
    msgpack_packer   pk;
    char             dg[BATCH_MAX][DGRAM_MAX];
    struct mmsghdr   msgs[BATCH_MAX];
    struct iovec     iov[BATCH_MAX];
    uint64_t         sent, pv, hb, errors, bytes, pv_n;
} state;

static uint32_t rnd(state *st, uint32_t n) { return (uint32_t)((hn_rng_next(&st->rng) >> 32) * n >> 32); }

/* Packs beacon number k (of this run) into slot i; returns its length. */
static size_t make_beacon(state *st, const opts *o, bool seed, uint32_t slot) {
    uint32_t s = seed ? st->cursor++ : st->order[st->cursor++ % o->sessions];
    hn_beacon b;
    memset(&b, 0, sizeof(b));
    char url[256], title[64];
    b.k = (hn_str){o->key, (uint32_t)strlen(o->key)};
    b.s = (hn_str){st->sids + (size_t)s * SID_LEN, SID_LEN};
    b.q = st->q[s]++;
    uint64_t now = real_us();
    b.ts = now / 1000;
    b.fields = HN_F_TS;
    uint32_t page = rnd(st, PAGES);
    int ul = 0;
    if (seed && o->end) {
        b.type = HN_T_END;
    } else if (seed) {
        b.type = HN_T_PV;
        ul = snprintf(url, sizeof(url), "%s/%u", o->url_base, page);
        b.l = HN_STR_LIT("en-US");
        b.sw = 1920;
        b.sh = 1080;
        b.fields |= HN_F_SW | HN_F_SH;
        st->pv++;
    } else if ((double)(hn_rng_next(&st->rng) >> 11) / 9007199254740992.0 < o->pv_share) {
        b.type = HN_T_PV;
        ul = snprintf(url, sizeof(url), "%s/%u?t=%" PRIu64 "&n=%" PRIu64, o->url_base, page, now,
                      st->pv_n++);
        b.e = 1000 + rnd(st, 14000);
        b.fields |= HN_F_E;
        st->pv++;
    } else {
        b.type = HN_T_HB;
        b.e = 1000 + rnd(st, 14000);
        b.fields |= HN_F_E;
        st->hb++;
    }
    if (b.type == HN_T_PV) {
        b.u = (hn_str){url, (uint32_t)ul};
        int tl = snprintf(title, sizeof(title), "Bench page %u", page);
        b.ti = (hn_str){title, (uint32_t)tl};
    }
    msgpack_sbuffer_clear(&st->sb);
    hn_beacon_pack(&st->pk, &b);
    size_t n = st->sb.size < DGRAM_MAX ? st->sb.size : DGRAM_MAX;
    memcpy(st->dg[slot], st->sb.data, n);
    return n;
}

/* Sends `total` beacons (seed) or until the deadline (feed), paced at o->rate. */
static void run(state *st, const opts *o, bool seed, uint64_t total, double *seconds,
                double *late_max_ms, double *late_avg_ms, uint64_t *first_us, uint64_t *last_us) {
    const double ns_per = 1e9 / o->rate;
    const uint64_t t0 = mono_ns();
    const uint64_t deadline = seed ? UINT64_MAX : t0 + (uint64_t)(o->duration * 1e9);
    uint64_t late_max = 0;
    double late_sum = 0;
    *first_us = real_us();
    for (;;) {
        if (seed && st->sent >= total) break;
        uint64_t now = mono_ns();
        if (now >= deadline) break;
        uint64_t due_at = t0 + (uint64_t)((double)st->sent * ns_per);
        if (now < due_at) {
            sleep_until_ns(due_at < deadline ? due_at : deadline);
            continue;
        }
        /* every beacon due by now, in batches */
        uint64_t due = (uint64_t)((double)(now - t0) / ns_per) + 1;
        if (seed && due > total) due = total;
        uint32_t n = due - st->sent < BATCH_MAX ? (uint32_t)(due - st->sent) : BATCH_MAX;
        if (n == 0) n = 1;       /* due_at and due round differently by a hair */
        for (uint32_t i = 0; i < n; i++) {
            uint64_t k_due = t0 + (uint64_t)((double)(st->sent + i) * ns_per);
            uint64_t late = now > k_due ? now - k_due : 0;
            late_sum += (double)late;
            if (late > late_max) late_max = late;
            st->iov[i].iov_base = st->dg[i];
            st->iov[i].iov_len = make_beacon(st, o, seed, i);
            st->msgs[i].msg_hdr.msg_iov = &st->iov[i];
            st->msgs[i].msg_hdr.msg_iovlen = 1;
        }
        uint32_t off = 0;
        while (off < n) {
            int r = sendmmsg(st->fd, st->msgs + off, n - off, 0);
            if (r < 0) {
                if (errno == EINTR) continue;
                st->errors++;
                off++;           /* that datagram is lost: counted, not retried */
                continue;
            }
            for (int i = 0; i < r; i++) st->bytes += st->iov[off + (uint32_t)i].iov_len;
            off += (uint32_t)r;
        }
        st->sent += n;
    }
    *last_us = real_us();
    *seconds = (double)(mono_ns() - t0) / 1e9;
    *late_max_ms = (double)late_max / 1e6;
    *late_avg_ms = st->sent ? late_sum / (double)st->sent / 1e6 : 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: hn-ssefeed --to HOST:PORT --key WIDGET_KEY --mode seed|end|feed [options]\n"
            "  --sessions N     sessions (default 10000)\n"
            "  --rate N         beacons/s (default 2000; seed: 20000)\n"
            "  --duration S     feed: seconds to send (default 30)\n"
            "  --pv-share F     feed: share of page views, the rest heartbeats (default 0.8)\n"
            "  --q-start N      first sequence number of every session (default 1)\n"
            "  --seed N         sessions' ids and the mix (default 1)\n"
            "  --url-base URL   (default https://bench.example/p)\n"
            "  --sids-out FILE  write the sessions' ids there, one a line (hn-chatclient, hn-chatdrive)\n"
            "prints: mode= sent= pv= hb= pv_n= seconds= rate= late_max_ms= late_avg_ms= errors= bytes=\n"
            "        cpu_s= first_us= last_us=\n");
}

int main(int argc, char **argv) {
    static const struct option lo[] = {
        {"to", required_argument, NULL, 't'},       {"key", required_argument, NULL, 'k'},
        {"mode", required_argument, NULL, 'm'},     {"sessions", required_argument, NULL, 's'},
        {"rate", required_argument, NULL, 'r'},     {"duration", required_argument, NULL, 'd'},
        {"pv-share", required_argument, NULL, 'p'}, {"q-start", required_argument, NULL, 'q'},
        {"seed", required_argument, NULL, 'S'},     {"url-base", required_argument, NULL, 'u'},
        {"sids-out", required_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    opts o = {.sessions = 10000, .duration = 30, .pv_share = 0.8, .q_start = 1, .seed = 1,
              .url_base = "https://bench.example/p"};
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 't': o.to = optarg; break;
        case 'k': o.key = optarg; break;
        case 'm': o.mode = optarg; break;
        case 'u': o.url_base = optarg; break;
        case 'o': o.sids_out = optarg; break;
        case 's': o.sessions = (uint32_t)strtoul(optarg, &end, 10); if (*end || o.sessions == 0) goto bad; break;
        case 'r': o.rate = strtod(optarg, &end); if (*end || o.rate <= 0) goto bad; break;
        case 'd': o.duration = strtod(optarg, &end); if (*end || o.duration <= 0) goto bad; break;
        case 'p': o.pv_share = strtod(optarg, &end); if (*end || o.pv_share < 0 || o.pv_share > 1) goto bad; break;
        case 'q': o.q_start = strtoull(optarg, &end, 10); if (*end || o.q_start == 0) goto bad; break;
        case 'S': o.seed = strtoull(optarg, &end, 10); if (*end) goto bad; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || !o.to || !o.key || !o.mode ||
        (strcmp(o.mode, "seed") != 0 && strcmp(o.mode, "end") != 0 && strcmp(o.mode, "feed") != 0)) {
        usage(stderr);
        return 2;
    }
    o.end = strcmp(o.mode, "end") == 0;
    bool seed = o.end || strcmp(o.mode, "seed") == 0;
    if (o.rate == 0) o.rate = seed ? 20000 : 2000;

    state *st = hn_xcalloc(1, sizeof(state));
    st->fd = connect_to(o.to);
    if (st->fd < 0) return 1;
    uint64_t x = o.seed ^ 0x5eed;
    for (int i = 0; i < 4; i++) st->rng.s[i] = splitmix(&x);
    st->sids = hn_xcalloc(o.sessions, SID_LEN);
    st->q = hn_xcalloc(o.sessions, sizeof(uint64_t));
    st->order = hn_xcalloc(o.sessions, sizeof(uint32_t));
    for (uint32_t i = 0; i < o.sessions; i++) {
        session_id(o.seed, i, st->sids + (size_t)i * SID_LEN);
        st->q[i] = o.q_start;
        st->order[i] = i;
    }
    if (o.sids_out) {
        FILE *f = fopen(o.sids_out, "w");
        if (f == NULL) {
            fprintf(stderr, "hn-ssefeed: %s: %s\n", o.sids_out, strerror(errno));
            return 1;
        }
        for (uint32_t i = 0; i < o.sessions; i++) fprintf(f, "%.*s\n", SID_LEN, st->sids + (size_t)i * SID_LEN);
        if (fclose(f) != 0) {
            fprintf(stderr, "hn-ssefeed: %s: %s\n", o.sids_out, strerror(errno));
            return 1;
        }
    }
    for (uint32_t i = o.sessions - 1; i > 0; i--) {      /* Fisher–Yates */
        uint32_t j = rnd(st, i + 1), t = st->order[i];
        st->order[i] = st->order[j];
        st->order[j] = t;
    }
    msgpack_sbuffer_init(&st->sb);
    msgpack_packer_init(&st->pk, &st->sb, msgpack_sbuffer_write);
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    double seconds, late_max_ms, late_avg_ms;
    uint64_t first_us, last_us;
    run(st, &o, seed, o.sessions, &seconds, &late_max_ms, &late_avg_ms, &first_us, &last_us);
    getrusage(RUSAGE_SELF, &ru1);
    double cpu_s = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                   (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    printf("mode=%s sent=%" PRIu64 " pv=%" PRIu64 " hb=%" PRIu64 " pv_n=%" PRIu64 " seconds=%.3f rate=%.1f"
           " late_max_ms=%.3f late_avg_ms=%.3f errors=%" PRIu64 " bytes=%" PRIu64 " cpu_s=%.3f"
           " first_us=%" PRIu64 " last_us=%" PRIu64 "\n",
           o.mode, st->sent, st->pv, st->hb, st->pv_n, seconds, seconds > 0 ? (double)st->sent / seconds : 0,
           late_max_ms, late_avg_ms, st->errors, st->bytes, cpu_s, first_us, last_us);
    msgpack_sbuffer_destroy(&st->sb);
    close(st->fd);
    free(st->sids);
    free(st->q);
    free(st->order);
    free(st);
    return 0;
bad:
    fprintf(stderr, "hn-ssefeed: bad value '%s'\n", optarg);
    usage(stderr);
    return 2;
}
