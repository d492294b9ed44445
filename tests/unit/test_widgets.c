/* test_widgets.c: the collector's widget table built from an HGETALL reply
 * of hn:widgets — ids, the settings words (dnt=off, chat=on, unknown words
 * ignored), entries that are refused and counted. */
#include "collector/widgets.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

typedef struct row {
    const char *key, *value;
    bool        ok;        /* kept in the table */
    uint32_t    id, flags;
} row;

static const row rows[] = {
    {"plain", "11", true, 11, 0},
    {"nodnt", "12 dnt=off", true, 12, HN_WIDGET_IGNORE_DNT},
    {"chat", "13 chat=on", true, 13, HN_WIDGET_CHAT},
    {"both", "14 chat=on dnt=off", true, 14, HN_WIDGET_CHAT | HN_WIDGET_IGNORE_DNT},
    {"spaces", "15   chat=on  ", true, 15, HN_WIDGET_CHAT},
    {"chatoff", "16 chat=off", true, 16, 0},
    {"unknown", "17 future=1 chat=on", true, 17, HN_WIDGET_CHAT},
    {"prefix", "18 chat=onn xchat=on chat=o", true, 18, 0},
    {"caps", "19 CHAT=ON", true, 19, 0},
    {"noid", "chat=on", false, 0, 0},
    {"zero", "0 chat=on", false, 0, 0},
    {"glued", "20chat=on", false, 0, 0},
    {"huge", "4294967296 chat=on", false, 0, 0},
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static void test_settings_table(void **state) {
    (void)state;
    redisReply cells[2 * NROWS], *els[2 * NROWS];
    for (size_t i = 0; i < NROWS; i++) {
        cells[2 * i] = (redisReply){.type = REDIS_REPLY_STRING, .len = strlen(rows[i].key),
                                    .str = (char *)rows[i].key};
        cells[2 * i + 1] = (redisReply){.type = REDIS_REPLY_STRING, .len = strlen(rows[i].value),
                                        .str = (char *)rows[i].value};
        els[2 * i] = &cells[2 * i];
        els[2 * i + 1] = &cells[2 * i + 1];
    }
    redisReply all = {.type = REDIS_REPLY_ARRAY, .elements = 2 * NROWS, .element = els};
    size_t bad = 99, kept = 0;
    hn_widgets *t = hn_widgets_build(&all, &bad);
    for (size_t i = 0; i < NROWS; i++) {
        uint32_t id = 0, flags = 0;
        bool found = hn_widgets_lookup(t, (hn_str){rows[i].key, (uint32_t)strlen(rows[i].key)},
                                       &id, &flags);
        if (found != rows[i].ok) fail_msg("'%s' → '%s': found %d", rows[i].key, rows[i].value, found);
        if (!found) continue;
        kept++;
        if (id != rows[i].id || flags != rows[i].flags)
            fail_msg("'%s': id %u flags %u, want %u %u", rows[i].value, id, flags, rows[i].id,
                     rows[i].flags);
    }
    assert_int_equal(hn_widgets_count(t), kept);
    assert_int_equal(bad, NROWS - kept);
    hn_widgets_build_free(t);
}

/* chat=on changes the digest: a collector publishes the new table when a
 * widget's chat is switched on. */
static void test_digest_sees_chat(void **state) {
    (void)state;
    redisReply k = {.type = REDIS_REPLY_STRING, .len = 3, .str = "key"};
    redisReply v1 = {.type = REDIS_REPLY_STRING, .len = 2, .str = "42"};
    redisReply v2 = {.type = REDIS_REPLY_STRING, .len = 10, .str = "42 chat=on"};
    redisReply *e1[] = {&k, &v1}, *e2[] = {&k, &v2};
    redisReply a1 = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = e1};
    redisReply a2 = {.type = REDIS_REPLY_ARRAY, .elements = 2, .element = e2};
    size_t bad;
    hn_widgets *t1 = hn_widgets_build(&a1, &bad), *t2 = hn_widgets_build(&a2, &bad);
    assert_true(hn_widgets_digest(t1) != hn_widgets_digest(t2));
    hn_widgets_build_free(t1);
    hn_widgets_build_free(t2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings_table),
        cmocka_unit_test(test_digest_sees_chat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
