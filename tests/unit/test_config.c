/* test_config.c: the configuration table — defaults, environment, flags,
 * precedence, bounds, enums, and the messages bad values produce. */
#include "common/config.h"
#include "common/redis.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void clear_env(void) {
    const char *names[] = {"HERENOW_REDIS_URL", "HERENOW_THREADS", "HERENOW_LIVE_WINDOW_S",
                           "HERENOW_ACTIVE_S", "HERENOW_IP_MODE", "HERENOW_LOG_LEVEL",
                           "HERENOW_UDP_LISTEN", "HERENOW_DATABASE_URL"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) unsetenv(names[i]);
}

static int load(hn_config *c, unsigned who, int argc, char **argv, int *argi, char *err) {
    return hn_config_load(c, who, argc, argv, argi, err, 256);
}

static void test_defaults(void **state) {
    (void)state;
    clear_env();
    hn_config c;
    char err[256];
    int argi;
    char *argv[] = {"x"};
    assert_int_equal(load(&c, HN_FOR_COLLECTOR, 1, argv, &argi, err), HN_OK);
    assert_int_equal(argi, 1);
    assert_string_equal(c.redis_url, "redis://127.0.0.1:6379/0");
    assert_string_equal(c.database_url, "postgresql:///herenow");
    assert_string_equal(c.udp_listen, "0.0.0.0:7470");
    assert_string_equal(c.http_listen, "0.0.0.0:7470");
    assert_string_equal(c.admin_listen, "127.0.0.1:7471");
    assert_string_equal(c.api_listen, "127.0.0.1:7480");
    assert_int_equal(c.live_window_s, 300);
    assert_int_equal(c.active_s, 60);
    assert_int_equal(c.stream_shards, 1);
    assert_string_equal(c.ip_mode, "mask");
    assert_string_equal(c.geoip_db, "");
    assert_true(hn_config_threads(&c) >= 1);
    hn_config_free(&c);
}

static void test_env_and_flags(void **state) {
    (void)state;
    clear_env();
    setenv("HERENOW_THREADS", "3", 1);
    setenv("HERENOW_REDIS_URL", "redis://10.0.0.1:7000/2", 1);
    setenv("HERENOW_LIVE_WINDOW_S", "120", 1);
    hn_config c;
    char err[256];
    int argi;
    char *argv[] = {"x", "--threads", "5", "--live-window-s=90", "--ip-mode", "drop"};
    assert_int_equal(load(&c, HN_FOR_COLLECTOR, 6, argv, &argi, err), HN_OK);
    assert_int_equal(c.threads, 5);                       /* flag beats env */
    assert_int_equal(hn_config_threads(&c), 5);
    assert_int_equal(c.live_window_s, 90);
    assert_string_equal(c.redis_url, "redis://10.0.0.1:7000/2");   /* env beats default */
    assert_string_equal(c.ip_mode, "drop");
    hn_config_free(&c);
    clear_env();
}

typedef struct bad_case {
    const char *flag, *value, *expect_in_message;
} bad_case;

static const bad_case bad_cases[] = {
    {"--threads", "-1", "out of range"},
    {"--threads", "257", "out of range"},
    {"--threads", "two", "not an integer"},
    {"--threads", "", "not an integer"},
    {"--threads", "3x", "not an integer"},
    {"--live-window-s", "1", "out of range"},
    {"--live-window-s", "86401", "out of range"},
    {"--active-s", "0", "out of range"},
    {"--ip-mode", "partial", "not one of mask|full|drop"},
    {"--log-level", "loud", "not one of debug|info|warn|error"},
    {"--stream-shards", "0", "out of range"},
    {"--udp-rcvbuf", "99999999999999999999", "not an integer"},
    {"--no-such-flag", "1", "unknown flag"},
};

static void test_bad_values(void **state) {
    (void)state;
    clear_env();
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        hn_config c;
        char err[256] = "";
        int argi;
        char *argv[] = {"x", (char *)bad_cases[i].flag, (char *)bad_cases[i].value};
        int rc = load(&c, HN_FOR_COLLECTOR, 3, argv, &argi, err);
        if (rc != HN_ERR || strstr(err, bad_cases[i].expect_in_message) == NULL)
            fail_msg("%s %s: rc=%d err='%s'", bad_cases[i].flag, bad_cases[i].value, rc, err);
        hn_config_free(&c);
    }
}

static void test_bad_env_names_setting(void **state) {
    (void)state;
    clear_env();
    setenv("HERENOW_LIVE_WINDOW_S", "soon", 1);
    hn_config c;
    char err[256];
    int argi;
    char *argv[] = {"x"};
    assert_int_equal(load(&c, HN_FOR_COLLECTOR, 1, argv, &argi, err), HN_ERR);
    assert_non_null(strstr(err, "HERENOW_LIVE_WINDOW_S='soon'"));
    hn_config_free(&c);
    clear_env();
}

static void test_active_not_above_window(void **state) {
    (void)state;
    clear_env();
    hn_config c;
    char err[256];
    int argi;
    char *argv[] = {"x", "--live-window-s", "30", "--active-s", "31"};
    assert_int_equal(load(&c, HN_FOR_COLLECTOR, 5, argv, &argi, err), HN_ERR);
    assert_non_null(strstr(err, "must not exceed"));
    hn_config_free(&c);
}

static void test_missing_value_and_help(void **state) {
    (void)state;
    clear_env();
    hn_config c;
    char err[256];
    int argi;
    char *argv1[] = {"x", "--threads"};
    assert_int_equal(load(&c, HN_FOR_COLLECTOR, 2, argv1, &argi, err), HN_ERR);
    assert_non_null(strstr(err, "needs a value"));
    hn_config_free(&c);
    char *argv2[] = {"x", "--help"};
    assert_int_equal(load(&c, HN_FOR_COLLECTOR, 2, argv2, &argi, err), HN_OK);
    assert_int_equal(argi, -1);
    hn_config_free(&c);
}

static void test_ctl_stops_at_subcommand(void **state) {
    (void)state;
    clear_env();
    hn_config c;
    char err[256];
    int argi;
    char *argv[] = {"herenowctl", "--redis-url", "redis://h:1/0", "widget", "add", "--name", "n"};
    assert_int_equal(load(&c, HN_FOR_CTL, 7, argv, &argi, err), HN_OK);
    assert_int_equal(argi, 3);
    assert_string_equal(c.redis_url, "redis://h:1/0");
    hn_config_free(&c);
    /* a collector-only flag is not a herenowctl flag */
    char *argv2[] = {"x", "--threads", "2"};
    assert_int_equal(load(&c, HN_FOR_API, 3, argv2, &argi, err), HN_ERR);
    hn_config_free(&c);
}

static void test_usage_lists_only_own(void **state) {
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    hn_config_usage(f, HN_FOR_COLLECTOR);
    fclose(f);
    assert_non_null(strstr(buf, "HERENOW_UDP_LISTEN"));
    assert_non_null(strstr(buf, "--udp-listen"));
    assert_non_null(strstr(buf, "default '0.0.0.0:7470'"));
    assert_null(strstr(buf, "HERENOW_API_LISTEN"));
    assert_null(strstr(buf, "HERENOW_DATABASE_URL"));
    free(buf);
}

/* A bad Redis URL is reported without its password. */
static void test_redis_url_error_hides_password(void **state) {
    (void)state;
    hn_redis_addr a;
    char err[512];
    assert_int_equal(hn_redis_addr_parse("redis://:S3cretPassw0rd@127.0.0.1:notaport/0", &a, err,
                                         sizeof(err)), HN_ERR);
    assert_null(strstr(err, "S3cret"));
    assert_non_null(strstr(err, "redis://***@127.0.0.1:notaport/0"));
    assert_int_equal(hn_redis_addr_parse("redis://user:pw@h:0/0", &a, err, sizeof(err)), HN_ERR);
    assert_null(strstr(err, "pw@"));
    assert_int_equal(hn_redis_addr_parse("redis://h:99999/0", &a, err, sizeof(err)), HN_ERR);
    assert_non_null(strstr(err, "redis://h:99999/0"));
}

/* HERENOW_REDIS_URL: one server, or a cluster's seeds (redis+cluster://) */
static void test_redis_cluster_url(void **state) {
    (void)state;
    hn_redis_cfg c;
    char err[512];
    assert_int_equal(hn_redis_cfg_parse("redis://127.0.0.1:6380/2", &c, err, sizeof(err)), HN_OK);
    assert_false(c.cluster);
    assert_int_equal(c.nseeds, 1);
    assert_int_equal(c.seed[0].port, 6380);
    assert_int_equal(c.seed[0].db, 2);
    assert_int_equal(hn_redis_cfg_parse("redis+cluster://:pw@10.0.0.1:7000,10.0.0.2,[::1]:7002/0", &c, err,
                                        sizeof(err)), HN_OK);
    assert_true(c.cluster);
    assert_int_equal(c.nseeds, 3);
    assert_string_equal(c.seed[0].host, "10.0.0.1");
    assert_int_equal(c.seed[0].port, 7000);
    assert_string_equal(c.seed[1].host, "10.0.0.2");
    assert_int_equal(c.seed[1].port, 6379);
    assert_string_equal(c.seed[2].host, "::1");
    assert_int_equal(c.seed[2].port, 7002);
    for (int i = 0; i < 3; i++) assert_string_equal(c.seed[i].password, "pw");
    assert_int_equal(c.retry_ms, 3000);
    /* several nodes need the cluster scheme; a cluster has only db 0 */
    assert_int_equal(hn_redis_cfg_parse("redis://a:1,b:2", &c, err, sizeof(err)), HN_ERR);
    assert_non_null(strstr(err, "redis+cluster://"));
    assert_int_equal(hn_redis_cfg_parse("redis+cluster://a:1,b:2/3", &c, err, sizeof(err)), HN_ERR);
    assert_non_null(strstr(err, "db 0"));
    assert_int_equal(hn_redis_cfg_parse("redis+cluster://", &c, err, sizeof(err)), HN_ERR);
    assert_int_equal(hn_redis_cfg_parse("redis+cluster://a:1,,b:2", &c, err, sizeof(err)), HN_ERR);
    assert_int_equal(hn_redis_cfg_parse("redis+cluster://:S3cret@a:notaport", &c, err, sizeof(err)), HN_ERR);
    assert_null(strstr(err, "S3cret"));
    char many[1024] = "redis+cluster://";
    for (int i = 0; i < 17; i++) snprintf(many + strlen(many), sizeof(many) - strlen(many), "h%d:1,", i);
    many[strlen(many) - 1] = '\0';
    assert_int_equal(hn_redis_cfg_parse(many, &c, err, sizeof(err)), HN_ERR);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_cluster_url),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_and_flags),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_env_names_setting),
        cmocka_unit_test(test_active_not_above_window),
        cmocka_unit_test(test_missing_value_and_help),
        cmocka_unit_test(test_ctl_stops_at_subcommand),
        cmocka_unit_test(test_usage_lists_only_own),
        cmocka_unit_test(test_redis_url_error_hides_password),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
