/* test_geo.c: IP → country, region, city on a database built for the test
 * by tests/tools/mkmmdb.pl (run from the repository root, as `make test`
 * does; HN_SRC_DIR overrides), and clean errors on damaged files. */
#include "collector/geo.h"

#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

static char dir[256];
static char db[300];
static hn_geo *geo;

static hn_ip ip(const char *s) {
    hn_ip out;
    if (!hn_ip_parse(s, strlen(s), &out)) fail_msg("cannot parse '%s'", s);
    return out;
}

static int setup(void **state) {
    (void)state;
    const char *src = getenv("HN_SRC_DIR");
    const char *tmp = getenv("TMPDIR");
    char script[512], cmd[1200], err[256];
    snprintf(script, sizeof(script), "%s/tests/tools/mkmmdb.pl", src && *src ? src : ".");
    if (access(script, R_OK) != 0) {
        fprintf(stderr, "cannot find %s: run from the repository root or set HN_SRC_DIR\n", script);
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s/hn-test-geo-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return -1;
    }
    snprintf(db, sizeof(db), "%s/test.mmdb", dir);
    snprintf(cmd, sizeof(cmd), "perl '%s' '%s'", script, db);
    if (system(cmd) != 0) {
        fprintf(stderr, "'%s' failed (is libmaxmind-db-writer-perl installed?)\n", cmd);
        return -1;
    }
    geo = hn_geo_open(db, err, sizeof(err));
    if (geo == NULL) {
        fprintf(stderr, "hn_geo_open: %s\n", err);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    (void)state;
    hn_geo_close(geo);
    geo = NULL;
    if (dir[0]) {
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    }
    return 0;
}

typedef struct geo_case {
    const char *ip;
    bool        found;
    const char *country, *region, *city;
} geo_case;

static const geo_case cases[] = {
    {"203.0.113.7", true, "DE", "Berlin", "Berlin"},
    {"203.0.113.0", true, "DE", "Berlin", "Berlin"},
    {"203.0.113.255", true, "DE", "Berlin", "Berlin"},
    {"::ffff:203.0.113.7", true, "DE", "Berlin", "Berlin"},     /* v4-mapped is v4 */
    {"198.51.100.200", true, "US", "California", "San Francisco"},
    {"2001:db8::1", true, "JP", "Tokyo", "Tokyo"},
    {"2001:db8:ffff:ffff::1", true, "JP", "Tokyo", "Tokyo"},
    {"192.0.2.1", true, "FR", "", ""},                          /* country only */
    {"203.0.114.1", false, "", "", ""},
    {"8.8.8.8", false, "", "", ""},
    {"0.0.0.0", false, "", "", ""},
    {"2001:db9::1", false, "", "", ""},
    {"::1", false, "", "", ""},
    {"::", false, "", "", ""},
};

static void test_lookups(void **state) {
    (void)state;
    for (size_t i = 0; i < HN_ARRAY_LEN(cases); i++) {
        const geo_case *c = &cases[i];
        hn_ip a = ip(c->ip);
        hn_geo_info g;
        memset(&g, 'x', sizeof(g));                 /* everything must be written */
        bool found = hn_geo_lookup(geo, &a, &g);
        if (found != c->found || strcmp(g.country, c->country) != 0 || strcmp(g.region, c->region) != 0 ||
            strcmp(g.city, c->city) != 0)
            fail_msg("%s: found=%d '%.3s' '%.80s' '%.80s'", c->ip, found, g.country, g.region, g.city);
        if (!found) {
            hn_geo_info zero;
            memset(&zero, 0, sizeof(zero));
            assert_memory_equal(&g, &zero, sizeof(g));
        }
    }
    assert_string_equal(hn_geo_type(geo), "herenow-Test-City");
}

/* No database: no geo, all "". */
static void test_no_database(void **state) {
    (void)state;
    hn_ip a = ip("203.0.113.7");
    hn_geo_info g;
    memset(&g, 'x', sizeof(g));
    assert_false(hn_geo_lookup(NULL, &a, &g));
    assert_string_equal(g.country, "");
    assert_string_equal(g.region, "");
    assert_string_equal(g.city, "");
    hn_geo_close(NULL);
}

static bool valid_utf8(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : -1;
        if (n < 0) return false;
        p++;
        while (n--)
            if ((*p++ & 0xc0) != 0x80) return false;
    }
    return true;
}

/* Names longer than the fields are cut before the character that does not
 * fit: region is 40 × "€" (3 bytes), city 100 × "é" (2 bytes); 79 bytes fit. */
static void test_long_names_cut_at_character(void **state) {
    (void)state;
    hn_ip a = ip("100.64.0.1");
    hn_geo_info g;
    assert_true(hn_geo_lookup(geo, &a, &g));
    assert_string_equal(g.country, "ZZ");
    assert_int_equal(strlen(g.region), 78);            /* 26 × 3 */
    assert_int_equal(strlen(g.city), 78);              /* 39 × 2 */
    assert_true(valid_utf8(g.region));
    assert_true(valid_utf8(g.city));
    for (size_t i = 0; i < 78; i += 3) assert_memory_equal(g.region + i, "\xe2\x82\xac", 3);
    for (size_t i = 0; i < 78; i += 2) assert_memory_equal(g.city + i, "\xc3\xa9", 2);
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) fail_msg("cannot write %s", path);
}

static void *read_file(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = malloc((size_t)len);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* The file cannot be opened: NULL and one line that names the file. */
static void expect_open_fails(const char *path, const char *what) {
    char err[256] = "";
    hn_geo *g = hn_geo_open(path, err, sizeof(err));
    if (g != NULL) {
        hn_geo_close(g);
        fail_msg("%s: opened", what);
    }
    if (strstr(err, path) == NULL || strchr(err, '\n') != NULL) fail_msg("%s: err '%s'", what, err);
}

static void test_bad_files(void **state) {
    (void)state;
    char path[400];
    snprintf(path, sizeof(path), "%s/none.mmdb", dir);
    expect_open_fails(path, "missing");
    char err[256];
    hn_geo *g = hn_geo_open(path, err, sizeof(err));
    assert_null(g);
    assert_non_null(strstr(err, "No such file"));

    snprintf(path, sizeof(path), "%s/empty.mmdb", dir);
    write_file(path, "", 0);
    expect_open_fails(path, "empty");

    /* 64 KB of garbage (a fixed LCG, the same every run) */
    static uint8_t junk[65536];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof(junk); i++) junk[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 16);
    snprintf(path, sizeof(path), "%s/junk.mmdb", dir);
    write_file(path, junk, sizeof(junk));
    expect_open_fails(path, "garbage");

    /* garbage ending in the metadata marker and a bogus map */
    static const char marker[] = "\xab\xcd\xefMaxMind.com\xe0";
    memcpy(junk + sizeof(junk) - sizeof(marker), marker, sizeof(marker) - 1);
    write_file(path, junk, sizeof(junk) - 1);
    expect_open_fails(path, "garbage with a marker");

    /* the real file cut short anywhere loses its metadata (at the end) */
    size_t n;
    uint8_t *good = read_file(db, &n);
    snprintf(path, sizeof(path), "%s/cut.mmdb", dir);
    size_t cuts[] = {1, 16, 100, n / 2, n - 200, n - 20, n - 1};
    for (size_t i = 0; i < HN_ARRAY_LEN(cuts); i++) {
        if (cuts[i] >= n) continue;
        write_file(path, good, cuts[i]);
        char what[64];
        snprintf(what, sizeof(what), "cut at %zu of %zu", cuts[i], n);
        expect_open_fails(path, what);
    }

    /* metadata intact, search tree overwritten: either refused at open or
     * every lookup fails cleanly (no crash, no read outside the file) */
    for (int fill = 0; fill < 2; fill++) {
        uint8_t *bad = malloc(n);
        assert_non_null(bad);
        memcpy(bad, good, n);
        memset(bad, fill ? 0xff : 0x7f, n / 2);
        snprintf(path, sizeof(path), "%s/tree.mmdb", dir);
        write_file(path, bad, n);
        free(bad);
        g = hn_geo_open(path, err, sizeof(err));
        if (g) {
            for (size_t i = 0; i < HN_ARRAY_LEN(cases); i++) {
                hn_ip a = ip(cases[i].ip);
                hn_geo_info info;
                if (hn_geo_lookup(g, &a, &info)) {
                    assert_true(valid_utf8(info.region));
                    assert_true(valid_utf8(info.city));
                }
            }
            hn_geo_close(g);
        } else {
            assert_non_null(strstr(err, path));
        }
    }
    free(good);
}

/* One hn_geo, several threads. */
static void *lookups(void *arg) {
    long *bad = arg;
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < HN_ARRAY_LEN(cases); i++) {
            hn_ip a;
            hn_geo_info g;
            hn_ip_parse(cases[i].ip, strlen(cases[i].ip), &a);
            bool found = hn_geo_lookup(geo, &a, &g);
            if (found != cases[i].found || strcmp(g.city, cases[i].city) != 0) (*bad)++;
        }
    }
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    pthread_t th[4];
    long bad[4] = {0};
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&th[i], NULL, lookups, &bad[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(bad[i], 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookups),
        cmocka_unit_test(test_no_database),
        cmocka_unit_test(test_long_names_cut_at_character),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
