/* mkseeds.c: writes the seed corpora of fuzz/corpus/ (run by
 * `make fuzz-seeds`; the output is committed). Beacons and records are made
 * with the same packers the senders and the collector use, so the seeds are
 * valid inputs that the fuzzer then mutates. */
#include "proto/beacon.h"
#include "proto/record.h"

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

static hn_str S(const char *s) {
    return (hn_str){s, (uint32_t)strlen(s)};
}

static void beacon(hn_beacon *b, const char *t, int q) {
    memset(b, 0, sizeof(*b));
    b->t = S(t);
    b->type = hn_btype_parse(b->t);
    b->k = S("r4CjscttOmCsGuGr");
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
    return 0;
}
