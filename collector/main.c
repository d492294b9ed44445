/* main.c: herenow-collector — wiring only (see collector/collector.c). */
#include "collector/collector.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    hn_config cfg;
    hn_collector col;
    char err[512];
    int argi = 0;
    if (hn_config_load(&cfg, HN_FOR_COLLECTOR, argc, argv, &argi, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "herenow-collector: %s\n", err);
        hn_config_free(&cfg);
        return 2;
    }
    if (argi == HN_CONFIG_VERSION) {
        printf("herenow-collector %s\n", HN_VERSION);
        hn_config_free(&cfg);
        return 0;
    }
    if (argi < 0) {
        printf("usage: herenow-collector [--flag value ...]\n\n"
               "Takes beacons over UDP, keeps live presence in Redis, streams every record.\n\n");
        hn_config_usage(stdout, HN_FOR_COLLECTOR);
        hn_config_free(&cfg);
        return 0;
    }
    if (argi < argc) {
        fprintf(stderr, "herenow-collector: unexpected argument '%s' (see --help)\n", argv[argi]);
        hn_config_free(&cfg);
        return 2;
    }
    hn_log_setup(cfg.log_level, cfg.log_file);
    if (hn_collector_init(&col, &cfg, err, sizeof(err)) != HN_OK) {
        fprintf(stderr, "herenow-collector: %s\n", err);
        hn_config_free(&cfg);
        hn_collector_free(&col);
        return 2;
    }
    int rc = hn_collector_run(&col);
    hn_collector_free(&col);
    return rc;
}
