/*
 * send.c: `herenowctl send`, test beacons over UDP, as a site's server or a
 * relay would send them (DESIGN.md §2). Each beacon is packed with
 * hn_beacon_pack, so what goes out is exactly what proto/ defines; --dry-run
 * packs and runs the result through the collector's decoder instead of
 * sending it.
 *
 * The socket is connected, so an ICMP "port unreachable" from a previous
 * datagram shows up as ECONNREFUSED on the next send: reported as "nothing
 * listens there" instead of silently sending into the void.
 */
#include "ctl/ctl.h"

#include "proto/beacon.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TO  "127.0.0.1:7470"
#define DEFAULT_URL "https://example.com/"
#define SID_LEN     16

/* What the flags asked for; one beacon template. */
typedef struct send_opts {
    const char *key, *to, *type, *session, *url, *title, *referrer, *event;
    const char *lang, *vid, *vname, *email, *phone, *ua, *ip;
    const char *text, *conversation;           /* chat: x (msg), ci (msg, ev) */
    uint64_t    seq, engaged, count, interval_ms;
    bool        script, dry_run;
    hn_ctl_list props;
} send_opts;

void hn_ctl_send_usage(FILE *f) {
    fprintf(f,
            "herenowctl send --key KEY [--to HOST:PORT] [--type pv|hb|ev|hide|show|end|id]\n"
            "                [--session SID] [--seq N] [--url U] [--title T] [--referrer R]\n"
            "                [--event NAME] [--prop NAME=VALUE ...] [--engaged MS] [--lang TAG]\n"
            "                [--vid ID] [--visitor-name N] [--email E] [--phone P]\n"
            "                [--text TEXT (type msg)] [--conversation UUID (types msg, ev)]\n"
            "                [--ua UA] [--ip IP] [--count N] [--interval MS] [--script] [--dry-run]\n"
            "  Sends beacons over UDP to a collector (default " DEFAULT_TO ").\n"
            "  --type pv (default) needs a URL (default " DEFAULT_URL "); ev needs --event.\n"
            "  --session defaults to a new random id; --seq (default 1) is the first q.\n"
            "  --count N sends N beacons with q, q+1, ...; --interval waits between them.\n"
            "  --script sends one whole visit: pv, hb, ev chat_opened, pv of a second page,\n"
            "  hide, show, end, with increasing q and engaged times, and prints each one.\n"
            "  --ua and --ip are only believed from trusted relays (HERENOW_TRUSTED_RELAYS).\n"
            "  --dry-run prints each packed beacon in hex with the decoder's verdict and\n"
            "  sends nothing.\n");
}

static hn_str S(const char *s) {
    return s ? (hn_str){s, (uint32_t)strlen(s)} : (hn_str){NULL, 0};
}

/* ---- validation: the protocol's limits, checked before anything is sent -- */

static int check_len(const char *flag, const char *v, size_t min, size_t max) {
    if (v == NULL) return HN_OK;
    size_t n = strlen(v);
    if (n < min || n > max) {
        if (min > 0)
            hn_ctl_errorf("send: --%s must be %zu..%zu bytes, got %zu", flag, min, max, n);
        else
            hn_ctl_errorf("send: --%s must be at most %zu bytes, got %zu", flag, max, n);
        return HN_ERR;
    }
    return HN_OK;
}

static bool sid_ok(const char *s) {
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return false;
    return true;
}

static int validate(send_opts *o, hn_btype *type) {
    if (o->key == NULL) {
        hn_ctl_errorf("send: --key is required (a widget key, see `herenowctl widget list`)");
        return HN_ERR;
    }
    *type = hn_btype_parse(S(o->type));
    if (*type == HN_T_NONE) {
        hn_ctl_errorf("send: --type '%s' is not one of pv, hb, ev, hide, show, end, id, msg", o->type);
        return HN_ERR;
    }
    if (o->script && (strcmp(o->type, "pv") != 0 || o->event || o->count != 1)) {
        hn_ctl_errorf("send: --script sends its own sequence; it takes no --type, --event "
                      "or --count");
        return HN_ERR;
    }
    if (check_len("key", o->key, 1, 64) || check_len("session", o->session, 8, 64) ||
        check_len("url", o->url, 1, 2048) || check_len("title", o->title, 0, 512) ||
        check_len("referrer", o->referrer, 0, 2048) || check_len("event", o->event, 1, 64) ||
        check_len("lang", o->lang, 1, 35) || check_len("vid", o->vid, 1, 64) ||
        check_len("visitor-name", o->vname, 1, 255) || check_len("email", o->email, 1, 255) ||
        check_len("phone", o->phone, 1, 50))
        return HN_ERR;
    if (o->session && !sid_ok(o->session)) {
        hn_ctl_errorf("send: --session may only hold A-Z a-z 0-9 _ -");
        return HN_ERR;
    }
    if (!o->script && *type == HN_T_EV && o->event == NULL) {
        hn_ctl_errorf("send: --type ev needs --event NAME");
        return HN_ERR;
    }
    if (o->event && *type != HN_T_EV && !o->script) {
        hn_ctl_errorf("send: --event is only for --type ev");
        return HN_ERR;
    }
    if (!o->script && *type == HN_T_MSG && o->text == NULL) {
        hn_ctl_errorf("send: --type msg needs --text TEXT");
        return HN_ERR;
    }
    if (o->text && *type != HN_T_MSG) {
        hn_ctl_errorf("send: --text is only for --type msg");
        return HN_ERR;
    }
    if (o->conversation && *type != HN_T_MSG && *type != HN_T_EV) {
        hn_ctl_errorf("send: --conversation is only for --type msg or ev");
        return HN_ERR;
    }
    if ((o->vname || o->email || o->phone) && *type != HN_T_ID) {
        hn_ctl_errorf("send: --visitor-name, --email and --phone are only for --type id");
        return HN_ERR;
    }
    if (o->props.n > HN_PROPS_MAX) {
        hn_ctl_errorf("send: at most %d --prop", HN_PROPS_MAX);
        return HN_ERR;
    }
    for (int i = 0; i < o->props.n; i++) {
        const char *eq = strchr(o->props.v[i], '=');
        size_t kl = eq ? (size_t)(eq - o->props.v[i]) : 0;
        if (eq == NULL || kl == 0 || kl > 64 || strlen(eq + 1) > 256) {
            hn_ctl_errorf("send: --prop '%s': want NAME=VALUE, NAME 1..64 bytes, VALUE at "
                          "most 256", o->props.v[i]);
            return HN_ERR;
        }
    }
    return HN_OK;
}

/* ---- the destination ------------------------------------------------------- */

/* "host:port" or "[v6]:port" → a connected UDP socket, or -1 (message printed). */
static int open_socket(const char *to) {
    char host[256];
    const char *port;
    const char *colon = strrchr(to, ':');
    if (to[0] == '[') {
        const char *rb = strchr(to, ']');
        if (rb == NULL || rb[1] != ':' || (size_t)(rb - to - 1) >= sizeof(host)) goto bad;
        memcpy(host, to + 1, (size_t)(rb - to - 1));
        host[rb - to - 1] = '\0';
        port = rb + 2;
    } else {
        if (colon == NULL || colon == to || memchr(to, ':', (size_t)(colon - to)) != NULL ||
            (size_t)(colon - to) >= sizeof(host))
            goto bad;
        memcpy(host, to, (size_t)(colon - to));
        host[colon - to] = '\0';
        port = colon + 1;
    }
    char *end = NULL;
    long p = strtol(port, &end, 10);
    if (port[0] < '0' || port[0] > '9' || *end != '\0' || p < 1 || p > 65535) goto bad;

    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICSERV;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        hn_ctl_errorf("send: --to '%s': cannot resolve '%s': %s", to, host, gai_strerror(gai));
        return -1;
    }
    int fd = -1, last_errno = 0;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last_errno = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            last_errno = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0) hn_ctl_errorf("send: --to '%s': %s", to, strerror(last_errno));
    return fd;
bad:
    hn_ctl_errorf("send: bad --to '%s': want HOST:PORT or [IPv6]:PORT, port 1..65535", to);
    return -1;
}

/* ---- building and sending -------------------------------------------------- */

static void fill_common(hn_beacon *b, const send_opts *o, const char *sid, hn_prop *props,
                        int nprops) {
    memset(b, 0, sizeof(*b));
    b->k = S(o->key);
    b->s = S(sid);
    b->ts = hn_now_ms();
    b->fields |= HN_F_TS;
    b->ti = S(o->title);
    b->r = S(o->referrer);
    b->l = S(o->lang);
    b->vid = S(o->vid);
    b->ua = S(o->ua);
    b->ip = S(o->ip);
    b->nprops = (uint8_t)nprops;
    memcpy(b->props, props, (size_t)nprops * sizeof(*props));
}

static void set_type(hn_beacon *b, hn_btype t) {
    b->type = (uint8_t)t;
    b->t = S(hn_btype_name(t));
}

static void set_engaged(hn_beacon *b, uint64_t ms) {
    b->e = ms;
    b->fields |= HN_F_E;
}

static void hexdump(const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) printf("%02x", (unsigned char)p[i]);
    printf("\n");
}

/* Packs b and sends it (or, dry, decodes it). HN_OK or HN_ERR (printed). */
static int emit(int fd, const send_opts *o, hn_decoder *dec, hn_batch *batch,
                const hn_beacon *b) {
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int ret = HN_ERR;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    hn_beacon_pack(&pk, b);

    if (sb.size > HN_UDP_MAX) {
        hn_ctl_errorf("send: the beacon is %zu bytes, over the %d-byte datagram limit", sb.size,
                      HN_UDP_MAX);
        goto out;
    }
    if (!o->dry_run && send(fd, sb.data, sb.size, 0) < 0) {
        if (errno == ECONNREFUSED)
            hn_ctl_errorf("send: nothing listens on UDP %s (connection refused)", o->to);
        else
            hn_ctl_errorf("send: to %s: %s", o->to, strerror(errno));
        goto out;
    }

    printf("%s t=%.*s q=%llu s=%.*s k=%.*s", o->dry_run ? "packed" : "sent", (int)b->t.len,
           b->t.p, (unsigned long long)b->q, (int)b->s.len, b->s.p, (int)b->k.len, b->k.p);
    if (b->u.len) printf(" u=%.*s", (int)b->u.len, b->u.p);
    if (b->n.len) printf(" n=%.*s", (int)b->n.len, b->n.p);
    if (b->fields & HN_F_E) printf(" e=%llu", (unsigned long long)b->e);
    printf(" (%zu bytes)\n", sb.size);

    if (o->dry_run) {
        hexdump(sb.data, sb.size);
        fflush(stdout);
        if (hn_beacon_decode_msgpack(dec, batch, sb.data, sb.size) != 1) {
            hn_ctl_errorf("send: the collector's decoder rejects this beacon: %s",
                          batch->err[0] ? batch->err : hn_reason_name(batch->all));
            goto out;
        }
        printf("decoder: accepted\n");
    }
    ret = HN_OK;
out:
    fflush(stdout);
    msgpack_sbuffer_destroy(&sb);
    return ret;
}

static void pause_ms(uint64_t ms) {
    if (ms == 0) return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* The page of a visit's second page view: the landing URL's origin + /pricing. */
static char *second_page(const char *url) {
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t origin = strcspn(p, "/?#") + (size_t)(p - url);
    char *out = hn_xmalloc(origin + sizeof("/pricing"));
    memcpy(out, url, origin);
    memcpy(out + origin, "/pricing", sizeof("/pricing"));
    return out;
}

int hn_ctl_send(const hn_config *cfg, int argc, char **argv) {
    (void)cfg;
    /* engaged starts at UINT64_MAX, above its flag's bound: "not given". */
    send_opts o = {.to = DEFAULT_TO, .type = "pv", .seq = 1, .count = 1, .engaged = UINT64_MAX};
    const uint64_t qmax = (uint64_t)INT64_MAX;
    hn_ctl_flag flags[] = {
        {.name = "key", .type = HN_CTL_STR, .dst = &o.key},
        {.name = "to", .type = HN_CTL_STR, .dst = &o.to},
        {.name = "type", .type = HN_CTL_STR, .dst = &o.type},
        {.name = "session", .type = HN_CTL_STR, .dst = &o.session},
        {.name = "seq", .type = HN_CTL_U64, .dst = &o.seq, .min = 1, .max = qmax},
        {.name = "url", .type = HN_CTL_STR, .dst = &o.url},
        {.name = "title", .type = HN_CTL_STR, .dst = &o.title},
        {.name = "referrer", .type = HN_CTL_STR, .dst = &o.referrer},
        {.name = "event", .type = HN_CTL_STR, .dst = &o.event},
        {.name = "prop", .type = HN_CTL_LIST, .dst = &o.props},
        {.name = "engaged", .type = HN_CTL_U64, .dst = &o.engaged, .min = 0, .max = qmax},
        {.name = "lang", .type = HN_CTL_STR, .dst = &o.lang},
        {.name = "vid", .type = HN_CTL_STR, .dst = &o.vid},
        {.name = "visitor-name", .type = HN_CTL_STR, .dst = &o.vname},
        {.name = "email", .type = HN_CTL_STR, .dst = &o.email},
        {.name = "phone", .type = HN_CTL_STR, .dst = &o.phone},
        {.name = "text", .type = HN_CTL_STR, .dst = &o.text},
        {.name = "conversation", .type = HN_CTL_STR, .dst = &o.conversation},
        {.name = "ua", .type = HN_CTL_STR, .dst = &o.ua},
        {.name = "ip", .type = HN_CTL_STR, .dst = &o.ip},
        {.name = "count", .type = HN_CTL_U64, .dst = &o.count, .min = 1, .max = 1000000},
        {.name = "interval", .type = HN_CTL_U64, .dst = &o.interval_ms, .min = 0,
         .max = 3600000},
        {.name = "script", .type = HN_CTL_BOOL, .dst = &o.script},
        {.name = "dry-run", .type = HN_CTL_BOOL, .dst = &o.dry_run},
    };
    if (hn_ctl_parse_flags("send", argc - 1, argv + 1, flags, HN_ARRAY_LEN(flags)) != HN_OK)
        return HN_CTL_EXIT_USAGE;
    hn_btype type;
    if (validate(&o, &type) != HN_OK) return HN_CTL_EXIT_USAGE;
    bool engaged_given = o.engaged != UINT64_MAX;

    int rc = HN_CTL_EXIT_FAIL, fd = -1;
    char *page2 = NULL;
    hn_decoder *dec = NULL;
    hn_batch *batch = NULL;
    hn_beacon *b = NULL;
    char sid[SID_LEN + 1];
    hn_prop props[HN_PROPS_MAX];
    if (o.dry_run) {
        dec = hn_decoder_create();
        batch = hn_xmalloc(sizeof(*batch));
    } else {
        fd = open_socket(o.to);
        if (fd < 0) {
            rc = HN_CTL_EXIT_USAGE;
            goto out;
        }
    }

    if (o.session == NULL) {
        if (hn_ctl_random_base62(sid, SID_LEN) != HN_OK) goto out;
        o.session = sid;
    }

    for (int i = 0; i < o.props.n; i++) {
        const char *eq = strchr(o.props.v[i], '=');
        props[i].key = (hn_str){o.props.v[i], (uint32_t)(eq - o.props.v[i])};
        props[i].type = HN_P_STR;
        props[i].v.s = S(eq + 1);
    }

    b = hn_xmalloc(sizeof(*b));
    if (o.script) {
        /* One visit: landing page, a heartbeat, the chat opened, a second
         * page, the tab hidden and shown again, the page left. */
        const char *url = o.url ? o.url : DEFAULT_URL;
        page2 = second_page(url);
        static const struct {
            hn_btype    t;
            int         page;     /* 1 landing, 2 second page */
            const char *title, *event;
            uint64_t    engaged;  /* 0: no e */
        } steps[] = {
            {HN_T_PV, 1, "Home", NULL, 0},
            {HN_T_HB, 1, NULL, NULL, 30000},
            {HN_T_EV, 1, NULL, "chat_opened", 5000},
            {HN_T_PV, 2, "Pricing", NULL, 0},
            {HN_T_HIDE, 2, NULL, NULL, 12000},
            {HN_T_SHOW, 2, NULL, NULL, 0},
            {HN_T_END, 2, NULL, NULL, 4000},
        };
        for (size_t i = 0; i < HN_ARRAY_LEN(steps); i++) {
            fill_common(b, &o, o.session, props, steps[i].t == HN_T_EV ? o.props.n : 0);
            set_type(b, steps[i].t);
            b->q = o.seq + i;
            b->u = S(steps[i].page == 1 ? url : page2);
            if (steps[i].t == HN_T_PV) {
                b->ti = S(o.title && steps[i].page == 1 ? o.title : steps[i].title);
                b->r = S(steps[i].page == 1 ? (o.referrer ? o.referrer : "https://www.google.com/")
                                            : url);
            } else {
                b->ti = (hn_str){NULL, 0};
                b->r = (hn_str){NULL, 0};
            }
            b->n = S(steps[i].event);
            if (steps[i].engaged) set_engaged(b, steps[i].engaged);
            if (emit(fd, &o, dec, batch, b) != HN_OK) goto out;
            if (i + 1 < HN_ARRAY_LEN(steps)) pause_ms(o.interval_ms);
        }
    } else {
        for (uint64_t i = 0; i < o.count; i++) {
            fill_common(b, &o, o.session, props, o.props.n);
            set_type(b, type);
            b->q = o.seq + i;
            b->u = S(o.url ? o.url : (type == HN_T_PV ? DEFAULT_URL : NULL));
            b->n = S(o.event);
            b->nm = S(o.vname);
            b->em = S(o.email);
            b->ph = S(o.phone);
            b->x = S(o.text);
            b->ci = S(o.conversation);
            if (engaged_given) set_engaged(b, o.engaged);
            if (emit(fd, &o, dec, batch, b) != HN_OK) goto out;
            if (i + 1 < o.count) pause_ms(o.interval_ms);
        }
    }
    rc = HN_CTL_EXIT_OK;
out:
    free(b);
    free(page2);
    free(batch);
    if (dec) hn_decoder_destroy(dec);
    if (fd >= 0) close(fd);
    return rc;
}
