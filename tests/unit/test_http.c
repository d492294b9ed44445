/*
 * test_http.c: the HTTP ingress's mapping from a request to beacons and an
 * answer, without sockets: X-Forwarded-For, the status of a decoded batch,
 * CORS origins, and a worker admitting decoded HTTP/pixel inputs —
 * widget lookup, bot and opt-out drops, enrichment (uap-core, masking,
 * visitor hash), and what lands in the stream buffer and presence commands.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "collector/httpmap.h"
#include "common/net.h"
#include "collector/worker.h"
#include "common/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- X-Forwarded-For ---------------------------------------------------------------------- */

static hn_ip ip_of(const char *s) {
    hn_ip ip;
    assert_true(hn_ip_parse(s, strlen(s), &ip));
    return ip;
}

static void xff_case(const char *proxies, const char *xff, const char *peer, const char *want) {
    hn_cidrs c;
    char err[128];
    assert_int_equal(hn_cidrs_parse(proxies, &c, err, sizeof(err)), HN_OK);
    hn_ip ip = ip_of(peer), w = ip_of(want);
    hn_http_forwarded_for(&c, xff, &ip);
    char got[64], exp[64];
    hn_ip_format(&ip, got, sizeof(got));
    hn_ip_format(&w, exp, sizeof(exp));
    if (strcmp(got, exp) != 0) fail_msg("XFF '%s' (proxies %s): got %s, want %s", xff, proxies, got, exp);
    hn_cidrs_free(&c);
}

static void test_xff(void **state) {
    (void)state;
    xff_case("127.0.0.1/32", "203.0.113.7", "127.0.0.1", "203.0.113.7");
    /* each proxy appends what it saw: the client is the rightmost untrusted */
    xff_case("10.0.0.0/8", "198.51.100.1, 203.0.113.7, 10.0.0.2", "10.0.0.3", "203.0.113.7");
    /* a client cannot pass itself off by prepending */
    xff_case("10.0.0.0/8", "1.2.3.4, 203.0.113.7", "10.0.0.3", "203.0.113.7");
    /* all trusted: the leftmost */
    xff_case("10.0.0.0/8", "10.1.1.1, 10.0.0.2", "10.0.0.3", "10.1.1.1");
    /* garbage stops the walk at the last good hop */
    xff_case("10.0.0.0/8", "203.0.113.7, garbage, 10.0.0.2", "10.0.0.3", "10.0.0.2");
    xff_case("10.0.0.0/8", "nonsense", "10.0.0.3", "10.0.0.3");
    xff_case("10.0.0.0/8", "", "10.0.0.3", "10.0.0.3");
    xff_case("10.0.0.0/8", " ,  ", "10.0.0.3", "10.0.0.3");
    /* IPv6 and spaces */
    xff_case("::1/128", "  2001:db8::1  ", "::1", "2001:db8::1");
    xff_case("127.0.0.1/32", "2001:db8::5,127.0.0.1", "127.0.0.1", "2001:db8::5");
}

/* --- the status of a decoded input -------------------------------------------------------- */

static void test_verdict(void **state) {
    (void)state;
    const char *why = "";
    hn_admitted a = {1, 3, 0, HN_R_MISSING_FIELD, false, HN_R_OK, 0, false, 0};
    assert_int_equal(hn_http_verdict(&a, "beacon 2: x", &why), 204);      /* one accepted */
    a = (hn_admitted){0, 0, 2, HN_R_OK, false, HN_R_OK, 0, false, 0};
    assert_int_equal(hn_http_verdict(&a, "", &why), 204);                 /* bots: told nothing */
    a = (hn_admitted){0, 2, 0, HN_R_MISSING_FIELD, false, HN_R_OK, 0, false, 0};
    assert_int_equal(hn_http_verdict(&a, "beacon 1: missing required key 's'", &why), 400);
    assert_string_equal(why, "beacon 1: missing required key 's'");
    a = (hn_admitted){0, 1, 0, HN_R_UNKNOWN_WIDGET, false, HN_R_OK, 0, false, 0};
    assert_int_equal(hn_http_verdict(&a, "", &why), 400);
    assert_string_equal(why, "unknown widget key (k)");
    a = (hn_admitted){0, 0, 1, HN_R_OK, true, HN_R_REDIS_UNAVAILABLE, 0, false, 0};
    assert_int_equal(hn_http_verdict(&a, "", &why), 503);
    assert_string_equal(why, "busy: the collector cannot reach its store");
    a = (hn_admitted){0, 0, 1, HN_R_OK, true, HN_R_SPOOL_FULL, 0, false, 0};
    assert_int_equal(hn_http_verdict(&a, "", &why), 503);
    assert_string_equal(why, "busy: the collector's spool is full (its store is unreachable)");
    /* a bad beacon next to a good one Redis could not take: retry later, not "never" */
    a = (hn_admitted){0, 1, 1, HN_R_MISSING_FIELD, true, HN_R_REDIS_UNAVAILABLE, 0, false, 0};
    assert_int_equal(hn_http_verdict(&a, "beacon 1: x", &why), 503);
    /* a bad beacon next to a bot: the sender's fault shows */
    a = (hn_admitted){0, 1, 1, HN_R_MISSING_FIELD, false, HN_R_OK, 0, false, 0};
    assert_int_equal(hn_http_verdict(&a, "beacon 1: x", &why), 400);
}

static void test_origins(void **state) {
    (void)state;
    const char *list = "https://a.example https://b.example,https://c.example";
    assert_true(hn_origin_allowed(list, "https://a.example"));
    assert_true(hn_origin_allowed(list, "https://b.example"));
    assert_true(hn_origin_allowed(list, "https://c.example"));
    assert_false(hn_origin_allowed(list, "https://a.exampl"));
    assert_false(hn_origin_allowed(list, "https://a.example.evil"));
    assert_false(hn_origin_allowed(list, "a.example"));
    assert_false(hn_origin_allowed(list, ""));
}

/* --- a worker admitting decoded inputs ----------------------------------------------------- */

#define UA_CHROME "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) " \
                  "Chrome/120.0.0.0 Safari/537.36"
#define UA_BOT    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"

typedef struct fixture {
    hn_collector c;
    hn_worker   *w;
    hn_widgets  *wt;
    hn_decoder  *dec;
    hn_batch     bt;
    hn_record    got[8];
    int          ngot;
    char         qscratch[4096];
} fixture;

/* hn:widgets as HGETALL would answer: key1 → 11, key2 → "12 dnt=off" */
static hn_widgets *widgets(void) {
    static redisReply k1 = {REDIS_REPLY_STRING, 0, 4, "key1", 0, NULL};
    static redisReply v1 = {REDIS_REPLY_STRING, 0, 2, "11", 0, NULL};
    static redisReply k2 = {REDIS_REPLY_STRING, 0, 4, "key2", 0, NULL};
    static redisReply v2 = {REDIS_REPLY_STRING, 0, 10, "12 dnt=off", 0, NULL};
    static redisReply *els[] = {&k1, &v1, &k2, &v2};
    static redisReply all = {REDIS_REPLY_ARRAY, 0, 0, NULL, 4, els};
    size_t bad;
    hn_widgets *t = hn_widgets_build(&all, &bad);
    assert_int_equal(bad, 0);
    return t;
}

static int setup(void **state) {
    fixture *f = calloc(1, sizeof(*f));
    char err[256];
    int argi;
    char *argv[] = {"test", NULL};
    assert_int_equal(hn_config_load(&f->c.cfg, HN_FOR_COLLECTOR, 1, argv, &argi, err, sizeof(err)), HN_OK);
    assert_int_equal(hn_redis_addr_parse(f->c.cfg.redis_url, &f->c.raddr, err, sizeof(err)), HN_OK);
    f->c.udp_on = f->c.http_on = false;
    free(f->c.cfg.spool_dir);            /* no spool: nothing written to the disk here */
    f->c.cfg.spool_dir = strdup("");
    f->c.uap = hn_uap_load(HN_UAP_DEFAULT_PATH, err, sizeof(err));
    assert_non_null(f->c.uap);
    f->c.salts = hn_salt_holder_create();
    char hex[2 * HN_SALT_LEN + 1];
    hn_salt salt;
    assert_int_equal(hn_salt_new_hex(hex), HN_OK);
    assert_int_equal(hn_salt_from_hex(&salt, hn_utc_day(hn_now_ms()), hex, strlen(hex)), HN_OK);
    hn_salt_holder_set(f->c.salts, &salt, 1);
    f->c.enrich = (hn_enrich_cfg){f->c.uap, NULL, f->c.salts, HN_IPMODE_MASK};
    f->w = hn_worker_create(&f->c, 0, err, sizeof(err));
    assert_non_null(f->w);
    f->wt = widgets();
    f->dec = hn_decoder_create();
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    hn_worker_destroy(f->w);
    hn_widgets_build_free(f->wt);
    hn_decoder_destroy(f->dec);
    hn_salt_holder_destroy(f->c.salts);
    hn_uap_free(f->c.uap);
    hn_config_free(&f->c.cfg);
    free(f);
    return 0;
}

/* Packs beacons as a sender would (one map, or an array of n). */
static size_t pack(char *out, size_t cap, const hn_beacon *b, int n) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (n > 1) msgpack_pack_array(&pk, (size_t)n);
    for (int i = 0; i < n; i++) hn_beacon_pack(&pk, &b[i]);
    assert_true(sb.size <= cap);
    memcpy(out, sb.data, sb.size);
    size_t len = sb.size;
    msgpack_sbuffer_destroy(&sb);
    return len;
}

static hn_beacon beacon(const char *key, const char *sid, hn_btype t, uint64_t q) {
    hn_beacon b;
    memset(&b, 0, sizeof(b));
    b.type = (uint8_t)t;
    b.k = (hn_str){key, (uint32_t)strlen(key)};
    b.s = (hn_str){sid, (uint32_t)strlen(sid)};
    b.q = q;
    if (t == HN_T_PV) b.u = HN_STR_LIT("https://example.com/pricing"), b.ti = HN_STR_LIT("Pricing");
    if (t == HN_T_EV) b.n = HN_STR_LIT("signup");
    return b;
}

static int collect(const hn_record *r, void *ctx) {
    fixture *f = ctx;
    assert_true(f->ngot < 8);
    f->got[f->ngot++] = *r;     /* strings point into the worker's shard buffer, kept until reset */
    return HN_OK;
}

/* What the worker queued for the stream, decoded back. */
static int queued(fixture *f) {
    hn_worker *w = f->w;
    f->ngot = 0;
    if (w->shard_n[0] == 0) return 0;
    /* a stream entry is an array of the packed records */
    static char entry[65536];
    char hdr[8];
    hn_buf hb = {hdr, 0, sizeof(hdr)};
    msgpack_packer hp;
    msgpack_packer_init(&hp, &hb, hn_buf_msgpack_write);
    msgpack_pack_array(&hp, w->shard_n[0]);
    assert_true(hb.len + w->shard[0].len <= sizeof(entry));
    memcpy(entry, hdr, hb.len);
    memcpy(entry + hb.len, w->shard[0].p, w->shard[0].len);
    char err[128];
    assert_int_equal(hn_record_decode_batch(f->dec, entry, hb.len + w->shard[0].len, collect, f,
                                            err, sizeof(err)), HN_OK);
    return f->ngot;
}

static void reset(fixture *f) {
    hn_worker *w = f->w;
    hn_buf scratch;
    uint32_t n = 0;
    hn_buf_init(&scratch, 1024);
    hn_presence_flush(w->pres, &scratch, &n);
    hn_buf_free(&scratch);
    hn_buf_reset(&w->shard[0]);
    w->shard_n[0] = 0;
    hn_buf_reset(&w->cmds);
    w->ncmds = 0;
    w->flush_records = 0;
}

static hn_client client(const char *ip, const char *ua, bool opted_out) {
    hn_client cl;
    memset(&cl, 0, sizeof(cl));
    cl.have_ip = ip != NULL;
    if (ip) cl.ip = ip_of(ip);
    cl.ua = (hn_str){ua, (uint32_t)strlen(ua)};
    cl.opted_out = opted_out;
    return cl;
}

static hn_admitted admit_body(fixture *f, const hn_beacon *b, int n, hn_transport tr,
                              const hn_client *cl) {
    static char body[8192];
    reset(f);
    size_t len = pack(body, sizeof(body), b, n);
    hn_beacon_decode_msgpack(f->w->dec, &f->bt, body, len);
    return hn_worker_admit(f->w, f->wt, &f->bt, tr, cl, hn_now_us());
}

static bool str_is(hn_str s, const char *want) {
    return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

static void test_admit_browser(void **state) {
    fixture *f = *state;
    hn_beacon b[2] = {beacon("key1", "sessAAAA0001", HN_T_PV, 1),
                      beacon("key1", "sessAAAA0001", HN_T_EV, 2)};
    hn_client cl = client("203.0.113.77", UA_CHROME, false);
    hn_admitted a = admit_body(f, b, 2, HN_TR_HTTP, &cl);
    assert_int_equal(a.accepted, 2);
    assert_int_equal(a.refused + a.dropped, 0);
    assert_int_equal(queued(f), 2);
    const hn_record *r = &f->got[0];
    assert_int_equal(r->widget_id, 11);
    assert_int_equal(r->transport, HN_TR_HTTP);
    assert_true(str_is(r->b.u, "https://example.com/pricing"));
    assert_true(str_is(r->b.ti, "Pricing"));
    assert_true(str_is(r->ip, "203.0.113.0"));       /* masked before it is stored */
    assert_true(str_is(r->browser, "Chrome"));
    assert_true(str_is(r->browser_version, "120.0"));
    assert_true(str_is(r->os, "Linux"));
    assert_true(str_is(r->device, "desktop"));
    assert_true(str_is(r->ua, UA_CHROME));
    assert_int_equal(r->visitor.len, 32);
    /* both beacons: one visitor; distinct event ids */
    assert_true(r->visitor.len == f->got[1].visitor.len &&
                memcmp(r->visitor.p, f->got[1].visitor.p, 32) == 0);
    assert_memory_not_equal(r->event_id, f->got[1].event_id, 16);
    assert_true(str_is(f->got[1].b.n, "signup"));
    /* nothing of the full address anywhere in what goes to Redis */
    const hn_buf *sh = &f->w->shard[0];
    assert_null(memmem(sh->p, sh->len, "203.0.113.77", 12));
    assert_null(memmem(f->w->cmds.p, f->w->cmds.len, "203.0.113.77", 12));
    assert_non_null(memmem(f->w->cmds.p, f->w->cmds.len, "203.0.113.0", 11));
}

static void test_admit_drops(void **state) {
    fixture *f = *state;
    hn_beacon b = beacon("key1", "sessBBBB0001", HN_T_PV, 1);
    hn_client bot = client("198.51.100.1", UA_BOT, false);
    hn_admitted a = admit_body(f, &b, 1, HN_TR_HTTP, &bot);
    assert_int_equal(a.accepted, 0);
    assert_int_equal(a.dropped, 1);
    assert_int_equal(queued(f), 0);
    const char *why = "";
    assert_int_equal(hn_http_verdict(&a, f->bt.err, &why), 204);

    /* navigator.webdriver: a bot whatever the user agent */
    hn_beacon wd = b;
    wd.fields |= HN_F_WD;
    hn_client chrome = client("198.51.100.1", UA_CHROME, false);
    a = admit_body(f, &wd, 1, HN_TR_HTTP, &chrome);
    assert_int_equal(a.dropped, 1);
    assert_int_equal(queued(f), 0);

    /* no User-Agent over HTTP: a script; over UDP (no relay): a beacon like any other */
    hn_client noua = client("198.51.100.1", "", false);
    a = admit_body(f, &b, 1, HN_TR_HTTP, &noua);
    assert_int_equal(a.dropped, 1);
    a = admit_body(f, &b, 1, HN_TR_UDP, &noua);
    assert_int_equal(a.accepted, 1);
    assert_int_equal(queued(f), 1);
    assert_int_equal(f->got[0].browser.len, 0);

    /* DNT / Sec-GPC: dropped for a widget that honours them (default), kept for dnt=off */
    hn_client gpc = client("198.51.100.1", UA_CHROME, true);
    a = admit_body(f, &b, 1, HN_TR_HTTP, &gpc);
    assert_int_equal(a.dropped, 1);
    assert_int_equal(queued(f), 0);
    hn_beacon b2 = beacon("key2", "sessBBBB0002", HN_T_PV, 1);
    a = admit_body(f, &b2, 1, HN_TR_HTTP, &gpc);
    assert_int_equal(a.accepted, 1);
    assert_int_equal(queued(f), 1);
    assert_int_equal(f->got[0].widget_id, 12);

    /* an unknown key is the sender's fault: 400 */
    hn_beacon u = beacon("nokey", "sessBBBB0003", HN_T_PV, 1);
    a = admit_body(f, &u, 1, HN_TR_HTTP, &chrome);
    assert_int_equal(a.refused, 1);
    assert_int_equal(a.first, HN_R_UNKNOWN_WIDGET);
    assert_int_equal(hn_http_verdict(&a, f->bt.err, &why), 400);
    /* one bad beacon in a batch rejects only itself */
    hn_beacon mix[2] = {beacon("key1", "sessBBBB0004", HN_T_PV, 1), beacon("key1", "bad", HN_T_PV, 1)};
    a = admit_body(f, mix, 2, HN_TR_HTTP, &chrome);
    assert_int_equal(a.accepted, 1);
    assert_int_equal(a.refused, 1);
    assert_int_equal(hn_http_verdict(&a, f->bt.err, &why), 204);
}

static void test_admit_pixel(void **state) {
    fixture *f = *state;
    reset(f);
    const char *qs = "v=1&k=key1&s=pixelSess001&t=pv&q=1&u=https%3A%2F%2Fexample.com%2F%3Fa%3D1"
                     "&ti=Hello+world&r=https%3A%2F%2Fwww.google.com%2F&d.plan=pro";
    assert_int_equal(hn_beacon_decode_query(&f->bt, qs, strlen(qs), f->qscratch, sizeof(f->qscratch)), 1);
    hn_client cl = client("2001:db8:1234:5678::1", UA_CHROME, false);
    hn_admitted a = hn_worker_admit(f->w, f->wt, &f->bt, HN_TR_PIXEL, &cl, hn_now_us());
    assert_int_equal(a.accepted, 1);
    assert_int_equal(queued(f), 1);
    const hn_record *r = &f->got[0];
    assert_int_equal(r->transport, HN_TR_PIXEL);
    assert_true(str_is(r->b.u, "https://example.com/?a=1"));
    assert_true(str_is(r->b.ti, "Hello world"));
    assert_true(str_is(r->b.r, "https://www.google.com/"));
    assert_int_equal(r->b.nprops, 1);
    assert_true(str_is(r->ip, "2001:db8:1234::"));     /* IPv6 masked to /48 */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xff),
        cmocka_unit_test(test_verdict),
        cmocka_unit_test(test_origins),
        cmocka_unit_test_setup_teardown(test_admit_browser, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admit_drops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admit_pixel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
