/*
 * test_static.c: the dashboard's static files (api/static.c) on a tree
 * made for the test under $TMPDIR: lookup and the paths that are never
 * looked up, content types, gzip (round trip through zlib, not for PNG or
 * when not smaller), ETags (per encoding, stable, following the content),
 * the limits, and the Accept-Encoding / If-None-Match parsers from tables.
 */
#include "api/static.h"
#include "common/log.h"

#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

static char root[256];      /* the group's temp dir; test trees are made below it */
static char site[300];      /* root/site: the dashboard tree of most tests */
static char err[256];

static const char index_html[] =
    "<!doctype html><html><head><title>herenow</title>"
    "<link rel=stylesheet href=app.css><script src=app.js></script></head>"
    "<body><main id=app>loading, loading, loading, loading, loading</main></body></html>\n";
static const char app_js[] =
    "export function visitors(n) { return n + ' visitors'; }\n"
    "export function visitors2(n) { return n + ' visitors'; }\n"
    "export function visitors3(n) { return n + ' visitors'; }\n";
static const char app_css[] =
    "body { margin: 0; font: 14px system-ui; }\n"
    "main { margin: 0 auto; max-width: 960px; }\n"
    "main > p { margin: 0 auto; max-width: 960px; }\n";
static const char sub_index[] = "<!doctype html><p>sub, sub, sub, sub, sub, sub</p>\n";

static unsigned char png[1024];     /* a PNG signature then zeros: compresses well, still not gzipped */

/* ---- helpers ---------------------------------------------------------------------- */

/* out = dir/rel; the test's paths are short, so a cut one is a bug here */
static void join(char *out, size_t cap, const char *dir, const char *rel) {
    int n = snprintf(out, cap, "%s/%s", dir, rel);
    if (n < 0 || (size_t)n >= cap) fail_msg("path too long: %s/%s", dir, rel);
}

static void put(const char *dir, const char *rel, const void *data, size_t len) {
    char p[600];
    join(p, sizeof(p), dir, rel);
    FILE *f = fopen(p, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len || fclose(f) != 0) fail_msg("cannot write %s", p);
}

static void put_str(const char *dir, const char *rel, const char *s) {
    put(dir, rel, s, strlen(s));
}

static void mkdir_in(const char *dir, const char *rel, char *out, size_t cap) {
    join(out, cap, dir, rel);
    if (mkdir(out, 0755) != 0) fail_msg("cannot mkdir %s", out);
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void rm_rf(const char *p) {
    nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static hn_static *load_ok(const char *dir) {
    hn_static *st = hn_static_load(dir, err, sizeof(err));
    if (st == NULL) fail_msg("hn_static_load(%s): %s", dir, err);
    return st;
}

static void inflate_eq(const char *gz, size_t gzlen, const char *want, size_t wantlen) {
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(inflateInit2(&z, 15 + 32), Z_OK);
    char *out = malloc(wantlen + 16);
    z.next_in = (Bytef *)gz;
    z.avail_in = (uInt)gzlen;
    z.next_out = (Bytef *)out;
    z.avail_out = (uInt)(wantlen + 16);
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    assert_int_equal(z.total_out, wantlen);
    assert_memory_equal(out, want, wantlen);
    inflateEnd(&z);
    free(out);
}

static int setup(void **state) {
    (void)state;
    const char *tmp = getenv("TMPDIR");
    snprintf(root, sizeof(root), "%s/hn-test-static-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(root) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    char p[600];
    mkdir_in(root, "site", site, sizeof(site));
    put_str(site, "index.html", index_html);
    put_str(site, "app.js", app_js);
    put_str(site, "app.css", app_css);
    put_str(site, ".hidden", "secret\n");
    put_str(site, "tiny.txt", "x");
    put_str(site, "my file.txt", "unreachable\n");
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    put(site, "logo.png", png, sizeof(png));
    mkdir_in(site, "sub", p, sizeof(p));
    put_str(site, "sub/index.html", sub_index);
    put_str(site, "sub/.hidden.js", "secret\n");
    mkdir_in(site, ".git", p, sizeof(p));
    put_str(site, ".git/config", "secret\n");
    join(p, sizeof(p), site, "link.js");
    if (symlink("app.js", p) != 0) return -1;
    join(p, sizeof(p), site, "linkdir");
    if (symlink("sub", p) != 0) return -1;
    hn_log_min = HN_LOG_ERROR;      /* the skipped "my file.txt" warns */
    return 0;
}

static int teardown(void **state) {
    (void)state;
    rm_rf(root);
    return 0;
}

/* ---- lookup ------------------------------------------------------------------------- */

static void test_find(void **state) {
    (void)state;
    hn_static *st = load_ok(site);
    const hn_static_file *f;

    f = hn_static_find(st, "/");
    assert_non_null(f);
    assert_string_equal(f->path, "/index.html");
    assert_string_equal(f->ctype, "text/html; charset=utf-8");
    assert_int_equal(f->len, strlen(index_html));
    assert_memory_equal(f->data, index_html, f->len);
    assert_false(f->immutable_name);
    assert_ptr_equal(hn_static_find(st, ""), f);
    assert_ptr_equal(hn_static_find(st, "/index.html"), f);

    f = hn_static_find(st, "/app.js");
    assert_non_null(f);
    assert_string_equal(f->ctype, "text/javascript; charset=utf-8");
    assert_int_equal(f->len, strlen(app_js));
    assert_memory_equal(f->data, app_js, f->len);

    f = hn_static_find(st, "/app.css");
    assert_non_null(f);
    assert_string_equal(f->ctype, "text/css; charset=utf-8");

    f = hn_static_find(st, "/sub/");
    assert_non_null(f);
    assert_string_equal(f->path, "/sub/index.html");
    assert_memory_equal(f->data, sub_index, f->len);
    assert_ptr_equal(hn_static_find(st, "/sub/index.html"), f);

    f = hn_static_find(st, "/logo.png");
    assert_non_null(f);
    assert_string_equal(f->ctype, "image/png");
    assert_int_equal(f->len, sizeof(png));
    assert_memory_equal(f->data, png, sizeof(png));

    static const char *const never[] = {
        "/.hidden", "/sub/.hidden.js", "/.git/config",             /* dot-files and dot-dirs */
        "/link.js", "/linkdir/", "/linkdir/index.html",             /* symlinks */
        "/my file.txt", "/my%20file.txt",                           /* a name needing escapes */
        "/sub", "/APP.JS", "/app.js/", "/nope.js", "app.js",        /* no such path */
        "/../etc/passwd", "/sub/../index.html", "/..", "/a//b", "//app.js", "/sub//",
        "/%2e%2e/x", "/app.js%00", "/%61pp.js", "/app.js%", "/\\app.js", "/sub\\index.html",
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(never); i++)
        if (hn_static_find(st, never[i]) != NULL) fail_msg("found '%s'", never[i]);
    assert_null(hn_static_find(st, NULL));
    assert_null(hn_static_find(NULL, "/"));

    size_t files, bytes;
    hn_static_stats(st, &files, &bytes);
    assert_int_equal(files, 6);     /* index.html app.js app.css tiny.txt logo.png sub/index.html */
    assert_int_equal(bytes, strlen(index_html) + strlen(app_js) + strlen(app_css) + 1 + sizeof(png) +
                                strlen(sub_index));
    hn_static_free(st);
}

static void test_ctypes(void **state) {
    (void)state;
    static const struct { const char *name, *ctype; } cases[] = {
        {"a.html", "text/html; charset=utf-8"},
        {"a.HTM", "text/html; charset=utf-8"},
        {"a.mjs", "text/javascript; charset=utf-8"},
        {"a.Js", "text/javascript; charset=utf-8"},
        {"a.svg", "image/svg+xml"},
        {"a.ico", "image/x-icon"},
        {"a.json", "application/json"},
        {"a.js.map", "application/json"},
        {"site.webmanifest", "application/manifest+json"},
        {"robots.txt", "text/plain; charset=utf-8"},
        {"a.woff2", "font/woff2"},
        {"a.PNG", "image/png"},
        {"a.bin", "application/octet-stream"},
        {"README", "application/octet-stream"},
        {"a.", "application/octet-stream"},
        {"a.html.bak", "application/octet-stream"},
    };
    char dir[600], url[64];
    mkdir_in(root, "ctypes", dir, sizeof(dir));
    for (size_t i = 0; i < HN_ARRAY_LEN(cases); i++) put_str(dir, cases[i].name, "{}");
    hn_static *st = load_ok(dir);
    for (size_t i = 0; i < HN_ARRAY_LEN(cases); i++) {
        snprintf(url, sizeof(url), "/%s", cases[i].name);
        const hn_static_file *f = hn_static_find(st, url);
        if (f == NULL) fail_msg("'%s' not found", url);
        if (strcmp(f->ctype, cases[i].ctype) != 0) fail_msg("%s: %s", url, f->ctype);
    }
    hn_static_free(st);
}

/* ---- gzip and ETags -------------------------------------------------------------- */

static void test_gzip(void **state) {
    (void)state;
    hn_static *st = load_ok(site);
    static const char *const zipped[] = {"/", "/app.js", "/app.css", "/sub/"};
    for (size_t i = 0; i < HN_ARRAY_LEN(zipped); i++) {
        const hn_static_file *f = hn_static_find(st, zipped[i]);
        assert_non_null(f);
        if (f->gz == NULL) fail_msg("%s: no gzip", zipped[i]);
        assert_true(f->gzlen < f->len);
        assert_memory_equal(f->gz, "\x1f\x8b", 2);      /* the gzip wrapper, not raw zlib */
        inflate_eq(f->gz, f->gzlen, f->data, f->len);
    }
    /* PNG is compressed already: never gzipped, even zeros that would shrink */
    const hn_static_file *f = hn_static_find(st, "/logo.png");
    assert_null(f->gz);
    assert_int_equal(f->gzlen, 0);
    /* text that gzip would only make longer */
    f = hn_static_find(st, "/tiny.txt");
    assert_null(f->gz);
    hn_static_free(st);
}

static void test_etags(void **state) {
    (void)state;
    hn_static *a = load_ok(site), *b = load_ok(site);
    static const char *const paths[] = {"/", "/app.js", "/app.css", "/sub/", "/logo.png", "/tiny.txt"};
    for (size_t i = 0; i < HN_ARRAY_LEN(paths); i++) {
        const hn_static_file *fa = hn_static_find(a, paths[i]), *fb = hn_static_find(b, paths[i]);
        assert_non_null(fa);
        assert_non_null(fb);
        /* "\"<16 hex>\"" and "\"<16 hex>-gz\"" */
        assert_int_equal(strlen(fa->etag), 18);
        assert_int_equal(fa->etag[0], '"');
        assert_int_equal(fa->etag[17], '"');
        assert_int_equal(strspn(fa->etag + 1, "0123456789abcdef"), 16);
        assert_int_equal(strlen(fa->etag_gz), 21);
        assert_memory_equal(fa->etag_gz, fa->etag, 17);
        assert_string_equal(fa->etag_gz + 17, "-gz\"");
        assert_string_not_equal(fa->etag, fa->etag_gz);
        assert_string_equal(fa->etag, fb->etag);
        assert_string_equal(fa->etag_gz, fb->etag_gz);
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(fa->etag, hn_static_find(a, paths[j])->etag);
    }
    /* SHA-256("x") starts 2d711642b726b044 */
    assert_string_equal(hn_static_find(a, "/tiny.txt")->etag, "\"2d711642b726b044\"");

    char old[24];
    strcpy(old, hn_static_find(a, "/app.js")->etag);
    put_str(site, "app.js", "export const changed = true;\n");
    hn_static *c = load_ok(site);
    const hn_static_file *f = hn_static_find(c, "/app.js");
    assert_string_not_equal(f->etag, old);
    assert_string_equal(hn_static_find(c, "/app.css")->etag, hn_static_find(a, "/app.css")->etag);
    put_str(site, "app.js", app_js);
    hn_static_free(a);
    hn_static_free(b);
    hn_static_free(c);
}

/* ---- loading: errors and limits --------------------------------------------------- */

static void test_missing_dir(void **state) {
    (void)state;
    char dir[600];
    join(dir, sizeof(dir), root, "no-such-dir");
    err[0] = '\0';
    assert_null(hn_static_load(dir, err, sizeof(err)));
    assert_non_null(strstr(err, "no-such-dir"));
    assert_non_null(strstr(err, "No such file"));
    /* a file where the dir should be */
    join(dir, sizeof(dir), site, "index.html");
    assert_null(hn_static_load(dir, err, sizeof(err)));
    assert_non_null(strstr(err, "Not a directory"));
}

static void test_empty_dir(void **state) {
    (void)state;
    char dir[600];
    mkdir_in(root, "empty", dir, sizeof(dir));
    hn_static *st = load_ok(dir);
    size_t files = 1, bytes = 1;
    hn_static_stats(st, &files, &bytes);
    assert_int_equal(files, 0);
    assert_int_equal(bytes, 0);
    assert_null(hn_static_find(st, "/"));
    hn_static_free(st);
    hn_static_free(NULL);
}

static void test_unreadable(void **state) {
    (void)state;
    if (geteuid() == 0) skip();     /* root reads a mode 000 file anyway */
    char dir[600], name[700];
    mkdir_in(root, "unreadable", dir, sizeof(dir));
    put_str(dir, "ok.js", "1");
    put_str(dir, "locked.js", "2");
    join(name, sizeof(name), dir, "locked.js");
    assert_int_equal(chmod(name, 0), 0);
    assert_null(hn_static_load(dir, err, sizeof(err)));
    assert_non_null(strstr(err, "/locked.js"));
    assert_non_null(strstr(err, "Permission denied"));
}

static void test_max_files(void **state) {
    (void)state;
    char dir[600], name[32];
    mkdir_in(root, "many", dir, sizeof(dir));
    for (int i = 0; i < HN_STATIC_MAX_FILES; i++) {
        snprintf(name, sizeof(name), "f%03d.txt", i);
        put_str(dir, name, name);
    }
    hn_static *st = load_ok(dir);
    assert_non_null(hn_static_find(st, "/f000.txt"));
    assert_non_null(hn_static_find(st, "/f255.txt"));
    hn_static_free(st);
    put_str(dir, "one-more.txt", "x");       /* the 257th */
    err[0] = '\0';
    assert_null(hn_static_load(dir, err, sizeof(err)));
    assert_non_null(strstr(err, "more than 256 files"));
}

static void test_max_bytes(void **state) {
    (void)state;
    char dir[600];
    mkdir_in(root, "big", dir, sizeof(dir));
    char *blob = calloc(1, HN_STATIC_MAX_BYTES);
    put(dir, "a.bin", blob, HN_STATIC_MAX_BYTES - 1);
    put(dir, "b.bin", blob, 1);
    hn_static *st = load_ok(dir);
    size_t files, bytes;
    hn_static_stats(st, &files, &bytes);
    assert_int_equal(bytes, HN_STATIC_MAX_BYTES);
    hn_static_free(st);
    put(dir, "c.bin", blob, 1);
    assert_null(hn_static_load(dir, err, sizeof(err)));
    assert_non_null(strstr(err, "more than 8388608 bytes"));
    free(blob);
}

static void test_max_depth(void **state) {
    (void)state;
    char dir[600], p[700];
    mkdir_in(root, "deep", dir, sizeof(dir));
    snprintf(p, sizeof(p), "%s", dir);
    for (int i = 0; i < HN_STATIC_MAX_DEPTH; i++) {
        char next[700];
        mkdir_in(p, "d", next, sizeof(next));
        snprintf(p, sizeof(p), "%s", next);
    }
    put_str(p, "index.html", "deep");
    hn_static *st = load_ok(dir);
    assert_non_null(hn_static_find(st, "/d/d/d/d/"));
    hn_static_free(st);
    char next[700];
    mkdir_in(p, "d", next, sizeof(next));       /* even empty: too deep */
    assert_null(hn_static_load(dir, err, sizeof(err)));
    assert_non_null(strstr(err, "more than 4 directories deep"));
}

/* ---- headers ------------------------------------------------------------------------ */

static void test_accepts_gzip(void **state) {
    (void)state;
    static const struct { const char *in; bool want; } cases[] = {
        {"gzip", true},
        {"GZIP", true},
        {"x-gzip", true},
        {"gzip, deflate, br", true},
        {"deflate, br, gzip", true},
        {"br;q=1, gzip;q=0.5", true},
        {"gzip;q=0.001", true},
        {"gzip ; q=1.0", true},
        {"gzip;Q=0.8", true},
        {"*", true},
        {"br, *;q=0.1", true},
        {"gzip;q=0", false},
        {"gzip;q=0.000", false},
        {"gzip; q=0.0, br", false},
        {"*;q=0", false},
        {"*, gzip;q=0", false},                 /* refused by name: "*" does not bring it back */
        {"gzip;q=0, *", false},
        {"identity", false},
        {"deflate, br", false},
        {"gzipx, xgzip, gzip-ish", false},
        {"gzip;q=", false},                     /* malformed q: the element does not count */
        {"gzip;q=abc", false},
        {"gzip;q=0.5x", false},
        {"gzip;level=9", true},                 /* other parameters are skipped */
        {"", false},
        {" , ,", false},
        {NULL, false},
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(cases); i++)
        if (hn_http_accepts_gzip(cases[i].in) != cases[i].want)
            fail_msg("accepts_gzip(%s) != %d", cases[i].in ? cases[i].in : "NULL", cases[i].want);
}

static void test_etag_match(void **state) {
    (void)state;
    const char *tag = "\"0123456789abcdef\"";
    static const struct { const char *in; bool want; } cases[] = {
        {"\"0123456789abcdef\"", true},
        {"W/\"0123456789abcdef\"", true},
        {"\"aaaa\", \"0123456789abcdef\"", true},
        {"\"aaaa\",W/\"0123456789abcdef\" , \"bbbb\"", true},
        {"\"a,b\", \"0123456789abcdef\"", true},       /* a comma inside a tag */
        {"*", true},
        {" * ", true},
        {"\"0123456789abcdef-gz\"", false},
        {"\"0123456789abcde\"", false},
        {"0123456789abcdef", false},                    /* not quoted */
        {"\"aaaa\", \"bbbb\"", false},
        {"\"x0123456789abcdef\"", false},
        {"\"0123456789abcdef", false},                  /* unterminated */
        {"*\"0123456789abcdef\"", false},
        {"", false},
        {NULL, false},
    };
    for (size_t i = 0; i < HN_ARRAY_LEN(cases); i++)
        if (hn_http_etag_match(cases[i].in, tag) != cases[i].want)
            fail_msg("etag_match(%s) != %d", cases[i].in ? cases[i].in : "NULL", cases[i].want);
    assert_true(hn_http_etag_match("W/\"0123456789abcdef\"", "W/\"0123456789abcdef\""));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),         cmocka_unit_test(test_ctypes),
        cmocka_unit_test(test_gzip),         cmocka_unit_test(test_etags),
        cmocka_unit_test(test_missing_dir),  cmocka_unit_test(test_empty_dir),
        cmocka_unit_test(test_unreadable),   cmocka_unit_test(test_max_files),
        cmocka_unit_test(test_max_bytes),    cmocka_unit_test(test_max_depth),
        cmocka_unit_test(test_accepts_gzip), cmocka_unit_test(test_etag_match),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
