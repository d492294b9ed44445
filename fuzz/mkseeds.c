/* mkseeds.c: writes the seed corpora of fuzz/corpus/ (run by
 * `make fuzz-seeds`; the output is committed). Beacons and records are made
 * with the same packers the senders and the collector use, so the seeds are
 * valid inputs that the fuzzer then mutates. */
#include "collector/collector.h"
#include "proto/beacon.h"
#include "proto/record.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *dir;

static void put(const char *target, const char *name, const void *p, size_t n) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, target);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", dir, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

/* Widget keys the fuzz_ingress target's fake Redis knows (fuzz/fuzz_ingress.c):
 * the first honours DNT, the second ("2 dnt=off") does not. */
#define KEY1 "r4CjscttOmCsGuGr"
#define KEY2 "Dn7OffW1dg3tK3y2"

static hn_str S(const char *s) {
    return (hn_str){s, (uint32_t)strlen(s)};
}

static void beacon(hn_beacon *b, const char *t, int q) {
    memset(b, 0, sizeof(*b));
    b->t = S(t);
    b->type = hn_btype_parse(b->t);
    b->k = S(KEY1);
    b->s = S("k7Qm2xLp9aZ4");
    b->q = (uint64_t)q;
    if (b->type == HN_T_PV) {
        b->u = S("https://example.com/pricing?plan=pro#top");
        b->ti = S("Pricing \xe2\x80\x94 Example");
        b->r = S("https://www.google.com/");
        b->l = S("en-GB");
        b->sw = 1920;
        b->sh = 1080;
        b->fields |= HN_F_SW | HN_F_SH;
    }
    if (b->type == HN_T_EV) {
        b->n = S("signup");
        b->nprops = 3;
        b->props[0] = (hn_prop){.key = S("plan"), .type = HN_P_STR, .v.s = S("pro")};
        b->props[1] = (hn_prop){.key = S("seats"), .type = HN_P_INT, .v.i = 3};
        b->props[2] = (hn_prop){.key = S("trial"), .type = HN_P_BOOL, .v.b = true};
    }
    if (b->type == HN_T_ID) {
        b->nm = S("Ada Lovelace");
        b->em = S("ada@example.org");
    }
    if (b->type == HN_T_HB || b->type == HN_T_END) {
        b->e = 30000;
        b->fields |= HN_F_E;
    }
    b->ts = 1795500000000ULL;
    b->fields |= HN_F_TS;
}

/* --- ingress: whole HTTP requests, as a client sends them ------------------ */

#define UA_CHROME "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
#define UA_IPHONE "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"

typedef struct req {
    char  *p;
    size_t len, cap;
} req;

static void add(req *r, const void *p, size_t n) {
    if (r->len + n > r->cap) {
        r->cap = (r->len + n) * 2;
        r->p = realloc(r->p, r->cap);
        if (r->p == NULL) exit(1);
    }
    memcpy(r->p + r->len, p, n);
    r->len += n;
}

static void addf(req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(req *r, const char *fmt, ...) {
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) exit(1);
    add(r, tmp, (size_t)n);
}

/* POST /b with a msgpack body, and the headers a browser's sendBeacon sends */
static void post(req *r, const char *extra, const void *body, size_t n) {
    addf(r, "POST /b HTTP/1.1\r\nHost: c.example.net\r\nUser-Agent: " UA_CHROME "\r\n"
            "Content-Type: text/plain;charset=UTF-8\r\nOrigin: https://shop.example\r\n"
            "%sContent-Length: %zu\r\n\r\n", extra, n);
    add(r, body, n);
}

static void pack_beacons(msgpack_sbuffer *sb, hn_beacon *b, int n, bool array) {
    msgpack_packer pk;
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (array) msgpack_pack_array(&pk, (size_t)n);
    for (int i = 0; i < n; i++) hn_beacon_pack(&pk, &b[i]);
}

static void put_req(const char *name, req *r) {
    put("ingress", name, r->p, r->len);
    r->len = 0;
}

static void ingress_seeds(hn_beacon *b, int nb) {
    req r = {0};
    msgpack_sbuffer one, all, other;
    pack_beacons(&one, b, 1, false);
    pack_beacons(&all, b, nb, true);
    hn_beacon w2 = b[0];
    w2.k = S(KEY2);
    pack_beacons(&other, &w2, 1, false);

    /* beacons: one, a batch through a proxy, DNT on each widget */
    post(&r, "", one.data, one.size);
    put_req("post-one", &r);
    post(&r, "X-Forwarded-For: 203.0.113.7, 10.0.0.1\r\nX-Forwarded-For: 127.0.0.1\r\n", all.data, all.size);
    put_req("post-batch-xff", &r);
    post(&r, "DNT: 1\r\nSec-GPC: 1\r\n", one.data, one.size);
    put_req("post-dnt", &r);
    post(&r, "DNT: 1\r\nX-Forwarded-For: 2001:db8::7\r\n", other.data, other.size);
    put_req("post-dnt-off-widget", &r);
    /* no User-Agent: a script, dropped as a bot */
    addf(&r, "POST /b HTTP/1.1\r\nHost: c\r\nContent-Length: %zu\r\n\r\n", one.size);
    add(&r, one.data, one.size);
    put_req("post-no-ua", &r);
    /* the body in chunks */
    addf(&r, "POST /b HTTP/1.1\r\nHost: c\r\nUser-Agent: " UA_IPHONE "\r\n"
             "Transfer-Encoding: chunked\r\n\r\n%zx\r\n", all.size / 2);
    add(&r, all.data, all.size / 2);
    addf(&r, "\r\n%zx\r\n", all.size - all.size / 2);   /* no chunk extension: libevent 2.1 answers those 413 */
    add(&r, all.data + all.size / 2, all.size - all.size / 2);
    addf(&r, "\r\n0\r\nTrailer: x\r\n\r\n");
    put_req("post-chunked", &r);
    /* a body over 64 KiB (413) */
    {
        size_t n = 65536 + 64;
        char *big = malloc(n);
        memset(big, 0x90, n);                /* msgpack nil... nonsense, never decoded */
        post(&r, "", big, n);
        free(big);
        put_req("post-413", &r);
    }
    /* cut off: Content-Length promises more than comes */
    addf(&r, "POST /b HTTP/1.1\r\nHost: c\r\nUser-Agent: " UA_CHROME "\r\nContent-Length: %zu\r\n\r\n",
         one.size + 10);
    add(&r, one.data, one.size);
    put_req("post-short", &r);
    /* the body's length said twice (request smuggling): refused, closed */
    addf(&r, "POST /b HTTP/1.1\r\nHost: c\r\nUser-Agent: " UA_CHROME "\r\nContent-Length: %zu\r\n"
             "Content-Length: 5\r\n\r\n", one.size);
    add(&r, one.data, one.size);
    put_req("post-two-lengths", &r);

    /* the pixel: GET and HEAD, HTTP/1.0, a percent-encoded mess */
    addf(&r, "GET /p.gif?v=1&k=" KEY1 "&s=k7Qm2xLp9aZ4&q=1&t=pv&u=https%%3A%%2F%%2Fshop.example%%2F"
             "&ti=Home+%%E2%%80%%94+Shop&r=https%%3A%%2F%%2Fwww.google.com%%2F&sw=1920&sh=1080&l=en-GB HTTP/1.1\r\n"
             "Host: c\r\nUser-Agent: " UA_IPHONE "\r\nReferer: https://shop.example/\r\n"
             "Accept: image/avif,image/webp,*/*\r\n\r\n");
    put_req("pixel-get", &r);
    addf(&r, "HEAD /p.gif?v=1&k=" KEY2 "&s=k7Qm2xLp9aZ4&q=2&t=ev&n=signup&d.plan=pro&d.seats=3 HTTP/1.0\r\n"
             "User-Agent: " UA_CHROME "\r\nSec-GPC: 1\r\n\r\n");
    put_req("pixel-head-10", &r);
    addf(&r, "GET /p.gif?k=%%zz&s=%%&t=pv&&=&q=99999999999999999999999&u=%%00 HTTP/1.1\r\n"
             "User-Agent: x\r\n\r\n");
    put_req("pixel-bad", &r);

    /* the seed's JSON routes (proto/seed.h): a preflight, the three routes, bad JSON, a key no
     * widget has */
    {
        static const char *const seed[][2] = {
            {KEY1 "/track-session", "{\"session_id\":\"k7Qm2xLp9aZ4\",\"current_page_url\":"
             "\"https://shop.example/\",\"referrer_url\":\"https://www.google.com/\",\"screen_width\":1920,"
             "\"screen_height\":1080,\"language\":\"en-GB\",\"heartbeat\":false,\"ip\":\"6.6.6.6\"}"},
            {KEY1 "/track-pageview", "{\"sessionId\":\"k7Qm2xLp9aZ4\",\"pageUrl\":\"https://shop.example/b\","
             "\"pageTitle\":\"caf\\u00e9\",\"timeOnPreviousPage\":12.5}"},
            {KEY2 "/track-event", "{\"session_id\":\"ab12\",\"event_type\":\"chat_opened\","
             "\"event_data\":{\"plan\":\"pro\",\"seats\":3,\"x\":-1.5e3,\"ok\":true,\"n\":null}}"},
            {KEY1 "/track-event", "{\"session_id\":[\"x\"],}"},
            {"nosuchkey/track-session", "{\"session_id\":\"k7Qm2xLp9aZ4\",\"current_page_url\":\"u\"}"},
        };
        addf(&r, "OPTIONS /api/visitor-tracking/public/widget/" KEY1 "/track-session HTTP/1.1\r\n"
                 "Host: c\r\nOrigin: https://www.shop.example\r\nAccess-Control-Request-Method: POST\r\n"
                 "Access-Control-Request-Headers: content-type\r\n\r\n");
        for (size_t i = 0; i < sizeof(seed) / sizeof(seed[0]); i++) {
            addf(&r, "POST /api/visitor-tracking/public/widget/%s HTTP/1.1\r\nHost: c\r\n"
                     "User-Agent: " UA_CHROME "\r\nContent-Type: application/json\r\n"
                     "Origin: https://shop.example\r\nContent-Length: %zu\r\n\r\n%s",
                 seed[i][0], strlen(seed[i][1]), seed[i][1]);
        }
        put_req("seed-routes", &r);
    }

    /* preflights */
    addf(&r, "OPTIONS /b HTTP/1.1\r\nHost: c\r\nOrigin: https://www.shop.example\r\n"
             "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type\r\n\r\n");
    put_req("options-b", &r);
    addf(&r, "OPTIONS /p.gif HTTP/1.1\r\nOrigin: https://evil.example\r\n\r\n");
    put_req("options-p", &r);

    /* the widget script: plain, gzip, and revalidation with each ETag */
    hn_script sc;
    char err[256];
    memset(&sc, 0, sizeof(sc));
    if (hn_script_build(&sc, "/b", "/p.gif", "/h.js", "/hc.js", err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "mkseeds: %s\n", err);
        exit(1);
    }
    addf(&r, "GET /h.js HTTP/1.1\r\nHost: c\r\nUser-Agent: " UA_CHROME "\r\n\r\n");
    put_req("script", &r);
    addf(&r, "GET /h.js HTTP/1.1\r\nHost: c\r\nAccept-Encoding: gzip, deflate, br;q=1.0, *;q=0\r\n\r\n");
    put_req("script-gzip", &r);
    addf(&r, "GET /h.js HTTP/1.1\r\nHost: c\r\nAccept-Encoding: GZIP\r\nIf-None-Match: W/\"x\", %s\r\n\r\n",
         sc.etag_gz);
    put_req("script-304-gz", &r);
    addf(&r, "GET /h.js HTTP/1.1\r\nHost: c\r\nAccept-Encoding: gzip;q=0\r\nIf-None-Match: %s\r\n\r\n",
         sc.etag);
    put_req("script-304", &r);
    hn_script_free(&sc);

    /* keep-alive: everything pipelined on one connection, then close */
    post(&r, "", one.data, one.size);
    addf(&r, "GET /p.gif?v=1&k=" KEY1 "&s=k7Qm2xLp9aZ4&q=3&t=hb&e=30000 HTTP/1.1\r\nHost: c\r\n"
             "User-Agent: " UA_CHROME "\r\n\r\n");
    addf(&r, "OPTIONS /b HTTP/1.1\r\nHost: c\r\n\r\n");
    addf(&r, "GET /h.js HTTP/1.1\r\nHost: c\r\nAccept-Encoding: gzip\r\n\r\n");
    addf(&r, "GET /nothing/here HTTP/1.1\r\nHost: c\r\n\r\n");
    addf(&r, "GET /b HTTP/1.1\r\nHost: c\r\n\r\n");                      /* 405 */
    addf(&r, "DELETE /h.js HTTP/1.1\r\nHost: c\r\n\r\n");                 /* 405 */
    post(&r, "Connection: close\r\n", all.data, all.size);
    put_req("pipelined", &r);

    /* headers over our 8 KiB (431) and over libevent's 16 KiB */
    {
        char pad[20000];
        memset(pad, 'a', sizeof(pad));
        addf(&r, "POST /b HTTP/1.1\r\nHost: c\r\nUser-Agent: " UA_CHROME "\r\nX-Pad: ");
        add(&r, pad, 8300);
        addf(&r, "\r\nContent-Length: %zu\r\n\r\n", one.size);
        add(&r, one.data, one.size);
        put_req("headers-431", &r);
        addf(&r, "GET /p.gif?k=" KEY1 " HTTP/1.1\r\n");
        for (int i = 0; i < 400; i++) addf(&r, "X-H%d: %.40s\r\n", i, pad);
        addf(&r, "\r\n");
        put_req("headers-flood", &r);
    }

    /* not HTTP, or barely */
    static const char tls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";   /* a TLS hello */
    add(&r, tls, sizeof(tls) - 1);
    put_req("garbage-tls", &r);
    addf(&r, "GET /\r\n\r\n");
    put_req("garbage-http09", &r);
    addf(&r, "POST /b HTTP/1.1\r\nContent-Length: -1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    put_req("garbage-length", &r);
    addf(&r, "GET /p.gif?k=\xff\xfe HTTP/9.9\r\nHost: \x01\r\n Folded: line\r\n\r\n");
    put_req("garbage-version", &r);

    msgpack_sbuffer_destroy(&one);
    msgpack_sbuffer_destroy(&all);
    msgpack_sbuffer_destroy(&other);
    free(r.p);
}

int main(int argc, char **argv) {
    dir = argc > 1 ? argv[1] : "fuzz/corpus";
    mkdir(dir, 0755);
    static const char *types[] = {"pv", "hb", "ev", "hide", "show", "end", "id"};
    hn_beacon b[7];
    msgpack_sbuffer sb;
    msgpack_packer pk;

    /* beacons: each type alone, then all seven as one batch */
    for (int i = 0; i < 7; i++) {
        beacon(&b[i], types[i], i + 1);
        msgpack_sbuffer_init(&sb);
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        hn_beacon_pack(&pk, &b[i]);
        put("beacon", types[i], sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
    }
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 7);
    for (int i = 0; i < 7; i++) hn_beacon_pack(&pk, &b[i]);
    put("beacon", "batch", sb.data, sb.size);

    /* records: the same beacons enriched, as one stream entry's array */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_array(&pk, 7);
    for (int i = 0; i < 7; i++) {
        hn_record r;
        memset(&r, 0, sizeof(r));
        for (int j = 0; j < 16; j++) r.event_id[j] = (uint8_t)(j * 17 + i);
        r.recv_ts = 1795500000000000ULL + (uint64_t)i;
        r.widget_id = 1;
        r.transport = HN_TR_HTTP;
        r.b = b[i];
        r.ip = S("203.0.113.0");
        r.ua = S("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36");
        r.visitor = S("c62dcbf34b2bb6aa624fff442a7bac6d");
        r.country = S("DE");
        r.region = S("Berlin");
        r.city = S("Berlin");
        r.browser = S("Chrome");
        r.browser_version = S("131.0");
        r.os = S("Linux");
        r.device = S("desktop");
        hn_record_pack(&pk, &r);
        if (i == 0) {
            msgpack_sbuffer one;
            msgpack_sbuffer_init(&one);
            msgpack_packer p1;
            msgpack_packer_init(&p1, &one, msgpack_sbuffer_write);
            msgpack_pack_array(&p1, 1);
            hn_record_pack(&p1, &r);
            put("record", "one", one.data, one.size);
            msgpack_sbuffer_destroy(&one);
        }
    }
    put("record", "batch", sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);

    /* pixel query strings */
    static const char *qs[] = {
        "v=1&k=r4CjscttOmCsGuGr&s=k7Qm2xLp9aZ4&q=1&t=pv&u=https%3A%2F%2Fexample.com%2F%3Fa%3D1&ti=Home+%E2%80%94+Shop&r=https%3A%2F%2Fwww.google.com%2F&sw=1920&sh=1080&l=en-GB",
        "v=1&k=r4CjscttOmCsGuGr&s=k7Qm2xLp9aZ4&q=2&t=ev&n=signup&d.plan=pro&d.seats=3",
        "k=r4CjscttOmCsGuGr&s=k7Qm2xLp9aZ4&q=3&t=id&nm=Ada&em=ada%40example.org&wd=1",
    };
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof(name), "q%d", i);
        put("query", name, qs[i], strlen(qs[i]));
    }

    /* http: first byte picks X-Forwarded-For / Origin / User-Agent */
    static const char *http[] = {
        "\x00" "203.0.113.7, 10.0.0.1, 127.0.0.1",
        "\x00" "2001:db8::1,fd00::2",
        "\x01" "https://shop.example, https://www.shop.example\nhttps://www.shop.example",
        "\x02" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
        "\x02" "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "\x02" "Googlebot/2.1 (+http://www.google.com/bot.html)",
    };
    for (int i = 0; i < 6; i++) {
        char name[16];
        snprintf(name, sizeof(name), "h%d", i);
        size_t n = 1 + strlen(http[i] + 1);
        put("http", name, http[i], n);
    }
    /* ingress: raw bytes of one client connection (fuzz_ingress) */
    ingress_seeds(b, 7);
    return 0;
}
