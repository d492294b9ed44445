/* test_spool.c: the collector's spool file — entries read back in order,
 * a truncated tail (crash mid-write) cut off and moved aside with the whole
 * entries before it kept, a damaged entry in the middle skipped with the
 * rest read, the exclusive lock, truncation, names. */
#include "common/spool.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

static char dir[256], path[300];

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof(dir), "%s/hn-spool-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/worker-0.spool", dir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void payload(int i, char *out, size_t *len) {
    *len = (size_t)snprintf(out, 64, "*1\r\n$4\r\nPING\r\n#%d", i);    /* any bytes will do */
}

/* Writes n entries (entry i: payload(i), ncmds i + 1, nrec 2 * i) to a new file. */
static void write_entries(int n) {
    unlink(path);
    hn_spool sp;
    hn_spool_scan scan;
    char err[256], p[64];
    size_t len;
    assert_int_equal(hn_spool_open(&sp, path, true, false, HN_SPOOL_SYNC_ALWAYS, &scan, err,
                                   sizeof(err)), HN_OK);
    assert_int_equal(scan.entries, 0);
    for (int i = 0; i < n; i++) {
        payload(i, p, &len);
        assert_int_equal(hn_spool_append(&sp, p, len, (uint32_t)i + 1, 2 * (uint32_t)i), HN_OK);
    }
    hn_spool_close(&sp);
}

/* Reads every entry and checks they are the ones write_entries wrote,
 * starting at first; returns how many, and the skipped bytes. */
static int read_all(hn_spool *sp, int first, int step_at, uint64_t *skipped_total) {
    uint64_t off = 0, skipped;
    hn_spool_entry e;
    int i = first, n = 0;
    *skipped_total = 0;
    while (hn_spool_read(sp, &off, &e, &skipped) == HN_OK) {
        *skipped_total += skipped;
        if (i == step_at) i++;           /* the damaged one */
        char p[64];
        size_t len;
        payload(i, p, &len);
        assert_int_equal(e.len, len);
        assert_memory_equal(e.p, p, len);
        assert_int_equal(e.ncmds, (uint32_t)i + 1);
        assert_int_equal(e.nrec, 2 * (uint32_t)i);
        assert_true(e.ts_ms > 1700000000000ULL);
        i++;
        n++;
    }
    assert_int_equal(off, sp->end);
    return n;
}

static void test_round_trip(void **state) {
    (void)state;
    write_entries(100);
    hn_spool sp;
    hn_spool_scan scan;
    char err[256];
    uint64_t skipped;
    assert_int_equal(hn_spool_open(&sp, path, false, false, HN_SPOOL_SYNC_NO, &scan, err,
                                   sizeof(err)), HN_OK);
    assert_int_equal(scan.entries, 100);
    assert_int_equal(scan.records, 99 * 100);          /* sum of 2i */
    assert_int_equal(scan.bad_bytes + scan.tail_bytes, 0);
    assert_int_equal(read_all(&sp, 0, -1, &skipped), 100);
    assert_int_equal(skipped, 0);
    /* emptied, then written again from the start */
    assert_int_equal(hn_spool_truncate(&sp), HN_OK);
    assert_int_equal(sp.end, 0);
    assert_int_equal(hn_spool_append(&sp, "x", 1, 1, 1), HN_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, HN_SPOOL_HDR + 1);
    hn_spool_close(&sp);
}

static void test_truncated_tail(void **state) {
    (void)state;
    write_entries(10);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* every cut inside the last entry: the 9 before it survive, the rest is moved aside */
    off_t whole9 = 0;
    {
        hn_spool sp;
        hn_spool_scan scan;
        char err[256];
        assert_int_equal(hn_spool_open(&sp, path, false, true, HN_SPOOL_SYNC_NO, &scan, err,
                                       sizeof(err)), HN_OK);
        uint64_t off = 0, skipped;
        hn_spool_entry e;
        for (int i = 0; i < 9; i++) assert_int_equal(hn_spool_read(&sp, &off, &e, &skipped), HN_OK);
        whole9 = (off_t)off;
        hn_spool_close(&sp);
    }
    for (off_t cut = whole9 + 1; cut < st.st_size; cut += 3) {
        write_entries(10);
        assert_int_equal(truncate(path, cut), 0);
        hn_spool sp;
        hn_spool_scan scan;
        char err[256];
        uint64_t skipped;
        assert_int_equal(hn_spool_open(&sp, path, false, false, HN_SPOOL_SYNC_NO, &scan, err,
                                       sizeof(err)), HN_OK);
        assert_int_equal(scan.entries, 9);
        assert_int_equal(scan.tail_bytes, (uint64_t)(cut - whole9));
        assert_int_equal(sp.end, (uint64_t)whole9);
        struct stat bad;
        assert_int_equal(stat(scan.tail_file, &bad), 0);
        assert_int_equal(bad.st_size, cut - whole9);
        unlink(scan.tail_file);
        assert_int_equal(read_all(&sp, 0, -1, &skipped), 9);
        /* appending after the cut works and reads back */
        assert_int_equal(hn_spool_append(&sp, "tail", 4, 1, 1), HN_OK);
        hn_spool_close(&sp);
        assert_int_equal(hn_spool_open(&sp, path, false, false, HN_SPOOL_SYNC_NO, &scan, err,
                                       sizeof(err)), HN_OK);
        assert_int_equal(scan.entries, 10);
        assert_int_equal(scan.tail_bytes, 0);
        hn_spool_close(&sp);
    }
}

static void test_damage_in_the_middle(void **state) {
    (void)state;
    /* a flipped byte anywhere in entry 4 (header or payload) costs entry 4 only */
    for (int at = 0; at < 40; at++) {
        write_entries(10);
        hn_spool sp;
        hn_spool_scan scan;
        char err[256];
        assert_int_equal(hn_spool_open(&sp, path, false, true, HN_SPOOL_SYNC_NO, &scan, err,
                                       sizeof(err)), HN_OK);
        uint64_t off = 0, skipped, start4 = 0, end4 = 0;
        hn_spool_entry e;
        for (int i = 0; i < 5; i++) {
            if (i == 4) start4 = off;
            assert_int_equal(hn_spool_read(&sp, &off, &e, &skipped), HN_OK);
        }
        end4 = off;
        hn_spool_close(&sp);
        uint64_t pos = start4 + (uint64_t)at % (end4 - start4);
        int fd = open(path, O_RDWR);
        unsigned char b;
        assert_int_equal(pread(fd, &b, 1, (off_t)pos), 1);
        b ^= 0x5a;
        assert_int_equal(pwrite(fd, &b, 1, (off_t)pos), 1);
        close(fd);
        assert_int_equal(hn_spool_open(&sp, path, false, false, HN_SPOOL_SYNC_NO, &scan, err,
                                       sizeof(err)), HN_OK);
        assert_int_equal(scan.entries, 9);
        assert_int_equal(scan.bad_bytes, end4 - start4);
        assert_int_equal(scan.tail_bytes, 0);
        assert_int_equal(read_all(&sp, 0, 4, &skipped), 9);
        assert_int_equal(skipped, end4 - start4);
        hn_spool_close(&sp);
    }
}

static void test_lock(void **state) {
    (void)state;
    write_entries(1);
    hn_spool a, b;
    hn_spool_scan scan;
    char err[256];
    assert_int_equal(hn_spool_open(&a, path, false, false, HN_SPOOL_SYNC_NO, &scan, err,
                                   sizeof(err)), HN_OK);
    assert_int_equal(hn_spool_open(&b, path, false, false, HN_SPOOL_SYNC_NO, &scan, err,
                                   sizeof(err)), HN_ERR);
    assert_non_null(strstr(err, "in use"));
    /* read-only (inspect) opens while it is held */
    assert_int_equal(hn_spool_open(&b, path, false, true, HN_SPOOL_SYNC_NO, &scan, err,
                                   sizeof(err)), HN_OK);
    assert_int_equal(scan.entries, 1);
    hn_spool_close(&b);
    hn_spool_close(&a);
    assert_int_equal(hn_spool_open(&b, path, false, false, HN_SPOOL_SYNC_NO, &scan, err,
                                   sizeof(err)), HN_OK);
    hn_spool_close(&b);
}

static void test_names(void **state) {
    (void)state;
    int id = -1;
    char p[32];
    assert_true(hn_spool_name_id("worker-0.spool", &id));
    assert_int_equal(id, 0);
    assert_true(hn_spool_name_id("worker-17.spool", &id));
    assert_int_equal(id, 17);
    assert_false(hn_spool_name_id("worker-1.spool.bad-1700000000", &id));
    assert_false(hn_spool_name_id("worker--1.spool", &id));
    assert_false(hn_spool_name_id("worker-x.spool", &id));
    assert_false(hn_spool_name_id("other.spool", &id));
    assert_true(hn_spool_path(p, sizeof(p), "/var/spool", 3));
    assert_string_equal(p, "/var/spool/worker-3.spool");
    assert_false(hn_spool_path(p, 10, "/var/spool", 3));
    assert_int_equal(hn_spool_sync_parse("always"), HN_SPOOL_SYNC_ALWAYS);
    assert_int_equal(hn_spool_sync_parse("everysec"), HN_SPOOL_SYNC_EVERYSEC);
    assert_int_equal(hn_spool_sync_parse("no"), HN_SPOOL_SYNC_NO);
    assert_int_equal(hn_spool_sync_parse("sometimes"), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_truncated_tail),
        cmocka_unit_test(test_damage_in_the_middle), cmocka_unit_test(test_lock),
        cmocka_unit_test(test_names),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
